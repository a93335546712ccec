# Loaded by every tests/*.bats: the bats helpers (Debian's packages), the
# built tools on PATH, and a scratch folder per test.
load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash
load /usr/lib/bats/bats-file/load.bash

: "${MS_BUILD:=$(cd "$BATS_TEST_DIRNAME/../build" && pwd)}"
export MS_BUILD
PATH="$MS_BUILD/bin:$MS_BUILD/tests/tools:$PATH"
PROGS="$MS_BUILD/tests/programs"
FIXTURES="$BATS_TEST_DIRNAME/fixtures"
SCHEMA="$BATS_TEST_DIRNAME/../schema"
export PROGS FIXTURES SCHEMA

setup_scratch() {
	SCRATCH="$BATS_TEST_TMPDIR/work"
	mkdir -p "$SCRATCH"
	cd "$SCRATCH" || return 1
}

# The inflated debug images ms-stats and ms-svg keep between runs go to
# a folder of this run of bats, never to the home folder of whoever runs
# the tests (a test about the cache sets its own).
export MEMSCOPE_CACHE="$BATS_RUN_TMPDIR/debug-cache"
