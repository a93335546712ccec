#!/bin/sh
# Installs the Debian packages memscope needs to build, test and demo, when
# any is missing. Needs root (or sudo) only when something is missing.
set -eu
PKGS="make gcc g++ pkg-config libzstd-dev libcjson-dev libcairo2-dev
libunwind-dev libdw-dev libelf-dev libdeflate-dev bats bats-assert bats-support bats-file
jq libxml2-utils valgrind zstd file python3-jsonschema
poppler-utils sqlite3 git procps time"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
