#!/bin/sh
# bench/stats.sh - ms-stats' throughput and memory, side by side with
# heaptrack_print, on recordings of the same run of tests/programs/churn
# (malloc/free pairs), then memory as the trace grows tenfold.
#   1. record churn PAIRS with ms-record (--unwind fp) and with heaptrack;
#   2. analyse each REPS times, interleaved; report the median wall time
#      and CPU time (user+sys; on a shared machine CPU time is the steadier
#      figure; ms-stats decodes on a second thread, so its wall time is
#      below its CPU time when a second core is free), events per second
#      by each (ALLOC+FREE records; heaptrack: 2 x its "calls to allocation
#      functions") and the largest maximum RSS;
#   3. record churn 10 x PAIRS and compare ms-stats' maximum RSS: it must
#      stay flat (memory grows with live blocks and stacks, not events);
#   4. the side-by-side comparison again on that tenfold trace (heaptrack
#      recording it too). Why both: on PAIRS the fixed costs weigh a lot,
#      and they are not alike. ms-stats names frames while it analyses
#      (libdw inflating libc's compressed debug information alone is some
#      45 ms of CPU time, on a thread of its own while the trace is read),
#      where heaptrack resolves names while recording (heaptrack_interpret)
#      and heaptrack_print only reads them. Ten times the events show the
#      per-event throughput that fixed costs hide; the first figure stays,
#      as the one a short run gets. (HT_BIG=0 skips step 4.)
#   5. the side-by-side comparison on a run that keeps PAIRS blocks live at
#      once (churn's third argument), where ms-stats is at its slowest;
#   6. and on real programs, whose events come from many call sites:
#      perl building and dropping small hashes, strings and arrays, and
#      sqlite3 filling a table of 200,000 rows and indexing it.
# Without ms-record, synthetic traces from tests/tools/mkgolden are used.
# Environment: REPS (default 5), PAIRS (default 1000000), HT_BIG (default 1).
set -u
O=${1:-build}
REPS=${REPS:-5}
PAIRS=${PAIRS:-1000000}
HT_BIG=${HT_BIG:-1}
B=$(cd "$O" && pwd)
STATS=$B/bin/ms-stats
REC=$B/bin/ms-record
CHURN=$B/tests/programs/churn
GEN=$B/tests/tools/mkgolden
RUNTIME=$B/bench/runtime
[ -x "$STATS" ] || { echo "stats.sh: '$STATS' is missing: run make" >&2; exit 1; }
[ -x "$RUNTIME" ] || { echo "stats.sh: '$RUNTIME' is missing: run make bench" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/ms-stats-bench.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W" || exit 1

HAVE_REC=0
[ -x "$REC" ] && [ -x "$CHURN" ] && HAVE_REC=1
HAVE_HT=0
command -v heaptrack >/dev/null 2>&1 && command -v heaptrack_print >/dev/null 2>&1 && HAVE_HT=1

# measure OUTFILE CMD... -> "cpu_seconds max_rss_kb wall_seconds" appended,
# to the microsecond (bench/runtime: /usr/bin/time's hundredths of a second
# were a fifth of a 2M-event run)
measure() {
	f=$1
	shift
	"$RUNTIME" "$f" "$@" >/dev/null 2>"$W/err.tmp" ||
		{ echo "stats.sh: '$*' failed:" >&2; cat "$W/err.tmp" >&2; return 1; }
}

median() { # file [column] -> median of that column (default 1)
	awk -v c="${2:-1}" '{ print $c }' "$1" | sort -n |
		awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

rate() { # events seconds -> millions a second
	awk -v e="$1" -v t="$2" 'BEGIN { printf "%.1f", (t > 0 ? e / t / 1e6 : 0) }'
}

maxrss() { # file -> largest column 2
	sort -n -k2 "$1" | tail -1 | awk '{ print $2 }'
}

events_of() { # trace -> ALLOC + FREE records
	"$STATS" --no-symbols -s summary "$1" | awk -F'[:,]' '
		/"allocations"/ { a = $2 } /"frees"/ { f = $2 } END { printf "%d\n", a + f }'
}

make_trace() { # name pairs [batch]
	if [ $HAVE_REC = 1 ]; then
		"$REC" -q --unwind fp -o "$1" "$CHURN" 1 "$2" ${3:-} >/dev/null
	else
		"$GEN" churn "$1" $(( $2 / 8 ))
	fi
}

echo "ms-stats vs heaptrack_print, churn with $PAIRS malloc/free pairs, median of $REPS"
make_trace small.memscope "$PAIRS" || exit 1
if [ $HAVE_REC = 0 ]; then
	echo "(ms-record not built: synthetic trace from mkgolden; heaptrack skipped)"
	HAVE_HT=0
fi
# compare MS_TRACE HT_TRACE: REPS interleaved runs of each, then the table
# and the ratios; sets MS_RSS (ms-stats' largest max RSS).
compare() {
	EV=$(events_of "$1")
	: > ms.times
	: > ht.times
	i=0
	while [ $i -lt "$REPS" ]; do
		measure ms.times "$STATS" "$1" || exit 1
		[ -n "$2" ] && { measure ht.times heaptrack_print "$2" || exit 1; }
		i=$((i + 1))
	done
	MS_T=$(median ms.times)
	MS_W=$(median ms.times 3)
	MS_RSS=$(maxrss ms.times)
	MS_EPS=$(rate "$EV" "$MS_T")
	printf '%-16s %10s %8s %8s %12s %12s %12s\n' tool events "cpu s" "wall s" "M ev/s cpu" "M ev/s wall" "max RSS"
	printf '%-16s %10d %8.3f %8.3f %12s %12s %8d KiB\n' ms-stats "$EV" "$MS_T" "$MS_W" "$MS_EPS" \
		"$(rate "$EV" "$MS_W")" "$MS_RSS"
	[ -n "$2" ] || return 0
	CALLS=$(heaptrack_print "$2" 2>/dev/null | sed -n 's/^calls to allocation functions: \([0-9]*\).*/\1/p')
	HEV=$((2 * ${CALLS:-0}))
	HT_T=$(median ht.times)
	HT_W=$(median ht.times 3)
	HT_RSS=$(maxrss ht.times)
	HT_EPS=$(rate "$HEV" "$HT_T")
	printf '%-16s %10d %8.3f %8.3f %12s %12s %8d KiB\n' heaptrack_print "$HEV" "$HT_T" "$HT_W" \
		"$HT_EPS" "$(rate "$HEV" "$HT_W")" "$HT_RSS"
	awk -v a="$MS_EPS" -v b="$HT_EPS" -v w1="$(rate "$EV" "$MS_W")" -v w2="$(rate "$HEV" "$HT_W")" \
	    -v c="$MS_RSS" -v d="$HT_RSS" 'BEGIN {
		if (b > 0 && w2 > 0)
			printf "ms-stats: %.1fx the events/s of heaptrack_print by CPU time, %.1fx by wall time, %.2fx its memory\n", a / b, w1 / w2, c / d }'
}

ht_record() { # pairs [batch] -> path of heaptrack's recording, or ""
	ht_record_cmd "$CHURN" 1 "$1" ${2:-}
}

ht_record_cmd() { # program args... -> path of heaptrack's recording, or ""
	rm -f "$W"/ht*.zst
	heaptrack -o "$W/ht" "$@" >/dev/null 2>&1
	ls "$W"/ht*.zst 2>/dev/null | head -1
}

# ms-stats keeps inflated debug files (libtrace/debugcache.c): in a folder
# of the bench's own, filled by a first run, as on a machine where it ran
# before; the figures of a first run follow the table.
export MEMSCOPE_CACHE="$W/debug-cache"
"$STATS" small.memscope > /dev/null || exit 1
HT=
[ $HAVE_HT = 1 ] && HT=$(ht_record "$PAIRS")
compare small.memscope "$HT"
SMALL_RSS=$MS_RSS
: > cold.times
i=0
while [ $i -lt "$REPS" ]; do
	measure cold.times env MEMSCOPE_CACHE=off "$STATS" small.memscope || exit 1
	i=$((i + 1))
done
printf 'a first run (MEMSCOPE_CACHE=off: debug files inflated): %.3f s CPU, %.3f s wall, %d KiB' \
	"$(median cold.times)" "$(median cold.times 3)" "$(maxrss cold.times)"
if [ -n "$HT" ]; then
	awk -v w="$(median cold.times 3)" -v h="$HT_W" 'BEGIN { printf "; %.1fx heaptrack_print by wall time", h / w }'
fi
echo

echo
echo "memory as the trace grows tenfold (ms-stats max RSS)"
make_trace big.memscope $((PAIRS * 10)) || exit 1
EVB=$(events_of big.memscope)
: > big.times
measure big.times "$STATS" big.memscope || exit 1
BIG_RSS=$(maxrss big.times)
printf '%12d events: %8d KiB\n%12d events: %8d KiB  (ratio %s)\n' "$EV" "$SMALL_RSS" "$EVB" "$BIG_RSS" \
	"$(awk -v a="$BIG_RSS" -v b="$SMALL_RSS" 'BEGIN { printf "%.2f", a / b }')"
# Without symbols the model's own memory shows (libdw's debug data is gone).
: > ns-small.times
: > ns-big.times
measure ns-small.times "$STATS" --no-symbols small.memscope || exit 1
measure ns-big.times "$STATS" --no-symbols big.memscope || exit 1
A=$(maxrss ns-small.times)
Z=$(maxrss ns-big.times)
printf 'with --no-symbols: %d KiB, then %d KiB (ratio %s); %d events in %.3f s CPU, %.3f s wall\n' "$A" "$Z" \
	"$(awk -v a="$Z" -v b="$A" 'BEGIN { printf "%.2f", a / b }')" "$EVB" "$(median ns-big.times)" \
	"$(median ns-big.times 3)"

if [ $HAVE_HT = 1 ] && [ "$HT_BIG" != 0 ]; then
	echo
	echo "ms-stats vs heaptrack_print again, churn with $((PAIRS * 10)) pairs (fixed costs amortized)"
	HT=$(ht_record $((PAIRS * 10)))
	[ -n "$HT" ] && compare big.memscope "$HT"
fi

# The churn above keeps at most 1000 blocks live. A program that builds a
# big structure keeps millions: every free then looks its block up in a
# large table, a cache miss each (heaptrack_print has no such table: its
# recorder turned addresses into allocation numbers while recording).
if [ $HAVE_HT = 1 ] && [ $HAVE_REC = 1 ]; then
	echo
	echo "ms-stats vs heaptrack_print, $PAIRS blocks live at once (churn 1 $PAIRS $PAIRS)"
	make_trace live.memscope "$PAIRS" "$PAIRS" || exit 1
	HT=$(ht_record "$PAIRS" "$PAIRS")
	[ -n "$HT" ] && compare live.memscope "$HT"
fi

# Real programs: call sites change at almost every event (churn has one).
real_compare() { # name program args...
	name=$1
	shift
	"$REC" -q --unwind fp -o "$name.memscope" "$@" >/dev/null 2>&1 || return 0
	HT=$(ht_record_cmd "$@")
	[ -n "$HT" ] && compare "$name.memscope" "$HT"
}
if [ $HAVE_HT = 1 ] && [ $HAVE_REC = 1 ]; then
	if command -v perl >/dev/null 2>&1; then
		echo
		echo "ms-stats vs heaptrack_print, perl making 300,000 small hashes, strings and arrays"
		real_compare perl perl -e 'my $n = 0; for my $i (1 .. 300000) {
			my %h = (a => $i, b => [1, 2, $i]); my $s = "x" x ($i % 100);
			$n += length($s) + scalar(keys %h) } print "$n\n"'
	fi
	if command -v sqlite3 >/dev/null 2>&1; then
		echo
		echo "ms-stats vs heaptrack_print, sqlite3 filling and indexing a table of 200,000 rows"
		real_compare sqlite sqlite3 :memory: 'create table t(a integer, b text);
			with recursive c(x) as (select 1 union all select x + 1 from c where x < 200000)
			insert into t select x, hex(randomblob(16)) from c; create index ti on t(b);
			select count(*) from t;'
	fi
fi
