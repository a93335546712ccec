#!/bin/sh
# make bench: runs every bench/*.sh in turn; each prints its own figures as
# ratios measured side by side in the same run.
O=${1:-build}
for b in bench/*.sh; do
	[ "$b" = bench/run.sh ] && continue
	echo "== $b"
	sh "$b" "$O" || echo "($b failed with status $?)"
done
