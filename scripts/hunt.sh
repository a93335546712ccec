#!/bin/sh
# scripts/hunt.sh - look for recorder and model bugs on a real program.
#
#   scripts/hunt.sh [-n RUNS] [-b BUILD] -- COMMAND [ARGS...]
#
# Runs COMMAND once untraced, then RUNS times (default 3) under ms-record
# with each unwinder (dwarf, fp, none), and reports, one line each:
#   - an exit status or standard output that differs from the untraced run
#     (commands whose output varies from run to run show up here too);
#   - a trace that is cut short, dropped events, frees of addresses never
#     allocated or allocations of a live address (msdump --summary), except
#     in forked children, which free blocks they inherited;
#   - a trace flagged "malloc and free went to an allocator ahead of the
#     recorder" (header flag 8), which only programs with an allocator of
#     their own should be.
# Each of the bugs these found on python3, perl (threads), clang, as and
# rustc was intermittent or needed a real program's habits (see git log).
# Exit status 0 when nothing was found, 1 otherwise, 2 on a usage error.
set -u
RUNS=3
B=build
while [ $# -gt 0 ]; do
	case $1 in
	-n) RUNS=$2; shift 2 ;;
	-b) B=$2; shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: scripts/hunt.sh [-n RUNS] [-b BUILD] -- COMMAND [ARGS...]" >&2; exit 2; }
B=$(cd "$B" && pwd) || exit 2
REC=$B/bin/ms-record
DUMP=$B/tests/tools/msdump
[ -x "$REC" ] && [ -x "$DUMP" ] || { echo "hunt.sh: build first (make test-bins)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/ms-hunt.XXXXXX") || exit 2
trap 'rm -rf "$W"' EXIT INT TERM
found=0

"$@" > "$W/plain.out" 2>/dev/null < /dev/null
plain=$?
i=1
while [ "$i" -le "$RUNS" ]; do
	for u in dwarf fp none; do
		d=$W/$u.$i
		mkdir "$d"
		"$REC" -q --unwind "$u" -o "$d/t.%p.memscope" "$@" > "$d.out" 2>/dev/null < /dev/null
		st=$?
		[ "$st" -eq "$plain" ] || { echo "$u run $i: exit status $st, untraced $plain"; found=1; }
		cmp -s "$W/plain.out" "$d.out" || { echo "$u run $i: standard output differs"; found=1; }
		for t in "$d"/t.*.memscope; do
			[ -e "$t" ] || { echo "$u run $i: no trace"; found=1; continue; }
			flags=$("$DUMP" "$t" 2>/dev/null | sed -n '1s/.* flags=\(0x[0-9a-f]*\) .*/\1/p')
			prog=$("$DUMP" "$t" 2>/dev/null | sed -n '1s/.* program=\([^ ]*\) .*/\1/p')
			f=$((flags))
			if [ $((f & 8)) -ne 0 ]; then
				echo "$u run $i: $prog: flagged as having an allocator ahead of the recorder"
				found=1
			fi
			"$DUMP" --summary "$t" > "$W/sum" 2>/dev/null
			bad=$(awk -F= -v forked=$((f & 1)) '
				$1 == "complete" && $2 != 1 { printf "cut short; " }
				$1 == "dropped" && $2 != 0 { printf "%s events dropped; ", $2 }
				$1 == "unknown_frees" && $2 != 0 && !forked { printf "%s unknown frees; ", $2 }
				$1 == "double_allocs" && $2 != 0 { printf "%s double allocations; ", $2 }' "$W/sum")
			[ -z "$bad" ] || { echo "$u run $i: $prog: $bad"; found=1; }
		done
	done
	i=$((i + 1))
done
[ "$found" -eq 0 ] && echo "hunt.sh: nothing found in $RUNS runs x 3 unwinders of: $*"
exit "$found"
