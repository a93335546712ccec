#!/bin/sh
# bench/recorder.sh - the recorder's overhead, side by side with heaptrack,
# on the malloc/free churn program (tests/programs/churn.c):
#   one thread, and 8 threads whose frees cross threads;
#   without a tracer, under ms-record --unwind none|fp|dwarf, under heaptrack;
#   REPS repetitions interleaved (A B C ... A B C ...) so that drift in the
#   machine's load hits every variant alike; medians of wall time.
# Prints per variant: median seconds, ns of overhead per malloc/free pair
# (median - untraced median, over pairs), the ratio to heaptrack's overhead,
# and trace bytes per event (file size / ALLOC+FREE records; heaptrack: its
# .zst file / (2 x its "calls to allocation functions"), since each
# allocation of churn is freed and heaptrack records both).
# Environment: REPS (default 5), PAIRS (per run, default 2000000).
set -u
O=${1:-build}
REPS=${REPS:-5}
PAIRS=${PAIRS:-2000000}
B=$(cd "$O" && pwd)
CHURN=$B/tests/programs/churn
REC=$B/bin/ms-record
MSDUMP=$B/tests/tools/msdump
for f in "$CHURN" "$REC"; do
	[ -x "$f" ] || { echo "recorder.sh: '$f' is missing: run make test-bins" >&2; exit 1; }
done
HAVE_HT=0
command -v heaptrack >/dev/null 2>&1 && command -v heaptrack_print >/dev/null 2>&1 && HAVE_HT=1
W=$(mktemp -d "${TMPDIR:-/tmp}/ms-bench.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W" || exit 1

now() { date +%s%N; }

# run VARIANT THREADS PER_THREAD -> appends seconds to $W/VARIANT-THREADS.times
run() {
	v=$1 t=$2 n=$3
	rm -f "$W/out.$v.$t"* 2>/dev/null
	s=$(now)
	case $v in
	base) "$CHURN" "$t" "$n" >/dev/null ;;
	none|fp|dwarf) "$REC" -q --unwind "$v" -o "$W/out.$v.$t.memscope" "$CHURN" "$t" "$n" >/dev/null ;;
	heaptrack) heaptrack -o "$W/out.$v.$t" "$CHURN" "$t" "$n" >/dev/null 2>&1 ;;
	esac
	rc=$?
	e=$(now)
	[ $rc -eq 0 ] || echo "recorder.sh: $v with $t threads exited with status $rc" >&2
	echo "$(( (e - s) / 1000 ))" >> "$W/$v-$t.us"
}

median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# events of a trace of ours: ALLOC + FREE records
our_events() {
	[ -x "$MSDUMP" ] && "$MSDUMP" --summary "$1" 2>/dev/null | sed -n 's/^events=//p'
}

VARIANTS="base none fp dwarf"
[ $HAVE_HT -eq 1 ] && VARIANTS="$VARIANTS heaptrack"
echo "churn: $PAIRS malloc/free pairs per run, $REPS interleaved repetitions, medians"
echo "machine: $(nproc) cores, $(uname -r); load: $(cut -d' ' -f1-3 /proc/loadavg)"

for T in 1 8; do
	N=$((PAIRS / T))
	i=0
	while [ $i -lt "$REPS" ]; do
		for v in $VARIANTS; do run "$v" "$T" "$N"; done
		i=$((i + 1))
	done
	base=$(median "$W/base-$T.us")
	ht_over=""
	if [ $HAVE_HT -eq 1 ]; then
		ht=$(median "$W/heaptrack-$T.us")
		ht_over=$((ht - base))
	fi
	echo
	echo "== $T thread(s), $PAIRS pairs in all"
	printf '%-10s %10s %12s %10s %10s %14s\n' variant median_s ns_per_pair vs_heaptrack slowdown bytes_per_event
	for v in $VARIANTS; do
		m=$(median "$W/$v-$T.us")
		bpe="-"
		case $v in
		none|fp|dwarf)
			f="$W/out.$v.$T.memscope"
			ev=$(our_events "$f")
			[ -n "$ev" ] && [ -f "$f" ] && bpe=$(awk -v b="$(stat -c %s "$f")" -v e="$ev" 'BEGIN { printf "%.2f", b / e }')
			;;
		heaptrack)
			f=$(ls "$W"/out.heaptrack.$T* 2>/dev/null | head -1)
			if [ -n "$f" ]; then
				calls=$(heaptrack_print "$f" 2>/dev/null | sed -n 's/^calls to allocation functions: \([0-9]*\).*/\1/p')
				[ -n "$calls" ] && bpe=$(awk -v b="$(stat -c %s "$f")" -v c="$calls" 'BEGIN { printf "%.2f", b / (2 * c) }')
			fi
			;;
		esac
		awk -v v="$v" -v m="$m" -v b="$base" -v p="$PAIRS" -v h="$ht_over" -v bpe="$bpe" 'BEGIN {
			over = (m - b) * 1000 / p
			ratio = (h != "" && m > b) ? sprintf("%.1fx less", h / (m - b)) : "-"
			if (v == "base") { over = 0; ratio = "-" }
			if (v == "heaptrack") ratio = "1.0x"
			printf "%-10s %10.3f %12.1f %10s %9.2fx %14s\n", v, m / 1e6, over, ratio, m / b, bpe
		}'
	done
done
echo
echo "goals: dwarf >= 4x less overhead per pair than heaptrack; 8 threads <= 2x"
echo "slowdown; --unwind none < 25 ns per pair; bytes per event within 2x of heaptrack's"
