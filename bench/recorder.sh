#!/bin/sh
# bench/recorder.sh - the recorder's overhead, side by side with heaptrack,
# on the malloc/free churn program (tests/programs/churn.c):
#   one thread, and 8 threads whose frees cross threads;
#   without a tracer, under ms-record --unwind none|fp|dwarf, under heaptrack;
#   REPS repetitions interleaved (A B C ... A B C ...) so that drift in the
#   machine's load hits every variant alike; medians of wall time.
# Each variant also runs a tiny churn (SMALL pairs) so that the fixed cost
# of starting a tracer (loading libraries, spool, writer thread, heaptrack's
# interpreter) is measured apart from the cost per call.
# Prints per variant: median seconds, the fixed start cost (small run minus
# untraced small run), ns of overhead per malloc/free pair (the marginal
# cost: (big - small) of the variant minus (big - small) untraced, over the
# extra pairs), the ratio of heaptrack's per-pair overhead to ours,
# and trace bytes per event (file size / ALLOC+FREE records; heaptrack: its
# .zst file / (2 x its "calls to allocation functions"), since each
# allocation of churn is freed and heaptrack records both).
# Then a shell loop running /bin/true PROCS times, untraced, under ms-record
# and under heaptrack: ms of overhead per process a tracer follows.
# Environment: REPS (default 5), PAIRS (per run, default 2000000), SMALL
# (default 8000 pairs), PROCS (default 100).
set -u
O=${1:-build}
REPS=${REPS:-5}
PAIRS=${PAIRS:-2000000}
SMALL=${SMALL:-8000}
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

# run VARIANT THREADS PER_THREAD TAG -> appends microseconds to $W/VARIANT-THREADS[TAG].us
run() {
	v=$1 t=$2 n=$3 tag=${4:-}
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
	echo "$(( (e - s) / 1000 ))" >> "$W/$v-$t$tag.us"
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
	NS=$((SMALL / T))
	i=0
	while [ $i -lt "$REPS" ]; do
		for v in $VARIANTS; do
			run "$v" "$T" "$NS" .small
			run "$v" "$T" "$N"
		done
		i=$((i + 1))
	done
	base=$(median "$W/base-$T.us")
	base_s=$(median "$W/base-$T.small.us")
	ht_pp=""
	if [ $HAVE_HT -eq 1 ]; then
		ht=$(median "$W/heaptrack-$T.us")
		ht_s=$(median "$W/heaptrack-$T.small.us")
		ht_pp=$(( (ht - ht_s) - (base - base_s) ))
	fi
	echo
	echo "== $T thread(s), $PAIRS pairs in all (small run: $SMALL)"
	printf '%-10s %9s %9s %12s %13s %9s %15s\n' variant median_s start_ms ns_per_pair heaptrack/ours slowdown bytes_per_event
	for v in $VARIANTS; do
		m=$(median "$W/$v-$T.us")
		ms=$(median "$W/$v-$T.small.us")
		bpe="-"
		case $v in
		none|fp|dwarf)
			f="$W/out.$v.$T.memscope"
			ev=$(our_events "$f")
			[ -n "$ev" ] && [ -f "$f" ] && bpe=$(awk -v b="$(stat -c %s "$f")" -v e="$ev" 'BEGIN { printf "%.2f", b / e }')
			;;
		heaptrack)
			f=$(ls "$W"/out.heaptrack.$T.zst "$W"/out.heaptrack.$T 2>/dev/null | head -1)
			if [ -n "$f" ]; then
				calls=$(heaptrack_print "$f" 2>/dev/null | sed -n 's/^calls to allocation functions: \([0-9]*\).*/\1/p')
				[ -n "$calls" ] && bpe=$(awk -v b="$(stat -c %s "$f")" -v c="$calls" 'BEGIN { printf "%.2f", b / (2 * c) }')
			fi
			;;
		esac
		awk -v v="$v" -v m="$m" -v ms="$ms" -v b="$base" -v bs="$base_s" -v p="$PAIRS" -v sp="$SMALL" \
		    -v h="$ht_pp" -v bpe="$bpe" 'BEGIN {
			pp = (m - ms) - (b - bs)
			over = pp * 1000 / (p - sp)
			ratio = (h != "" && pp > 0) ? sprintf("%.1fx", h / pp) : "-"
			if (v == "base") { over = 0; ratio = "-" }
			printf "%-10s %9.3f %9.1f %12.1f %13s %8.2fx %15s\n", v, m / 1e6, (ms - bs) / 1000, over, ratio, m / b, bpe
		}'
	done
done
# A shell script's commands: every process a tracer follows pays its
# start (libraries, spool and trace files, clock, writer thread) and end.
PROCS=${PROCS:-100}
script() { # variant
	rm -rf "$W/sh" && mkdir "$W/sh"
	s=$(now)
	case $1 in
	base) sh -c "i=0; while [ \$i -lt $PROCS ]; do /bin/true; i=\$((i + 1)); done" ;;
	dwarf) "$REC" -q -o "$W/sh/t.%p.memscope" sh -c "i=0; while [ \$i -lt $PROCS ]; do /bin/true; i=\$((i + 1)); done" ;;
	heaptrack) heaptrack -o "$W/sh/ht" sh -c "i=0; while [ \$i -lt $PROCS ]; do /bin/true; i=\$((i + 1)); done" >/dev/null 2>&1 ;;
	esac
	rc=$?
	e=$(now)
	[ $rc -eq 0 ] || echo "recorder.sh: the shell loop under $1 exited with status $rc" >&2
	echo "$(( (e - s) / 1000 ))" >> "$W/script-$1.us"
}
SV="base dwarf"
[ $HAVE_HT -eq 1 ] && SV="$SV heaptrack"
i=0
while [ $i -lt "$REPS" ]; do
	for v in $SV; do script "$v"; done
	i=$((i + 1))
done
echo
echo "== a shell loop running /bin/true $PROCS times (each run a process to follow)"
printf '%-10s %9s %16s\n' variant median_s ms_per_process
sb=$(median "$W/script-base.us")
for v in $SV; do
	awk -v v="$v" -v m="$(median "$W/script-$v.us")" -v b="$sb" -v n="$PROCS" 'BEGIN {
		printf "%-10s %9.3f %16.2f\n", v, m / 1e6, (m - b) / 1000 / n }'
done
echo "(ms-record writes a trace for each process; heaptrack records the shell alone)"

echo
echo "goals: dwarf >= 4x less overhead per pair than heaptrack; 8 threads <= 2x"
echo "slowdown; --unwind none < 25 ns per pair; bytes per event within 2x of heaptrack's"
