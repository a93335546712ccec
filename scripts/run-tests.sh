#!/bin/sh
# Runs every test and prints one closing line "N passed, N failed".
# Unit tests, fuzz replays and bats files all speak TAP; this counts the
# "ok" and "not ok" lines of each and keeps the full log in $O/test.log.
O=${1:-build}
LOG=$O/test.log
: > "$LOG"
# count runs at the end of pipelines, in subshells: it appends its figures
# to a file, summed at the end.
TALLY=$O/test.tally
: > "$TALLY"
# The symbolizer's cache of inflated debug images (libtrace/debugcache.c):
# one of the tests' own, emptied first, not the home folder's.
MEMSCOPE_CACHE=$(cd "$O" && pwd)/test-debug-cache
rm -rf "$MEMSCOPE_CACHE"
export MEMSCOPE_CACHE

count() { # name, then TAP on stdin
	name=$1
	out=$(cat)
	printf '%s\n' "$out" >> "$LOG"
	p=$(printf '%s\n' "$out" | grep -c '^ok ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok ')
	echo "$p $f" >> "$TALLY"
	printf '%-40s %4d passed, %d failed\n' "$name" "$p" "$f"
	if [ "$f" -gt 0 ]; then printf '%s\n' "$out" | grep -A15 '^not ok ' | head -60; fi
}

for t in "$O"/tests/unit/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1); rc=$?
	[ $rc -ne 0 ] && out="$out
not ok - $(basename "$t") exited with status $rc"
	printf '%s\n' "$out" | count "unit/$(basename "$t")"
done

for f in "$O"/tests/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f"); corpus=tests/fuzz/corpus/${name#fuzz_}
	if out=$("$f" "$corpus" 2>&1); then
		echo "ok - $name replays $corpus"
	else
		printf '%s\nnot ok - %s replay of %s\n' "$out" "$name" "$corpus"
	fi | count "fuzz/$name"
done

if ls tests/*.bats >/dev/null 2>&1; then
	for b in tests/*.bats; do
		MS_BUILD=$(cd "$O" && pwd) bats --tap "$b" 2>&1 | count "bats/$(basename "$b")"
	done
fi

pass=$(awk '{ s += $1 } END { print s + 0 }' "$TALLY")
fail=$(awk '{ s += $2 } END { print s + 0 }' "$TALLY")
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
