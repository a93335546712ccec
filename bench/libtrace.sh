#!/bin/sh
# bench/libtrace.sh - libtrace's writer and reader throughput and bytes per
# event on a real malloc/free churn of EVENTS events (default ten million),
# for two free patterns, with heaptrack recording the very same churn side
# by side when it is installed (it keeps neither addresses nor per-event
# times, so it is the floor to compare with, not a like-for-like format;
# the ratio uses what ms-record writes: 256 KiB chunks at zstd level 1, times
# in ticks of 256 ns). The writer is timed twice: a call per event
# (mst_writer_alloc/free) and, as the recorder's writer thread does, runs
# of one thread's events from 32-byte slots (mst_writer_put_run; the four
# synthetic threads interleave closely, so runs are about two events long:
# its worst case); both must write the same bytes.
#
#     sh bench/libtrace.sh [BUILD_DIR [EVENTS]]
O=${1:-build}
N=${2:-10000000}
B=$O/bench/libtrace
[ -x "$B" ] || { echo "libtrace.sh: $B is not built (make $B)" >&2; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for pattern in random recent; do
	for cfg in "256 1" "256 3" "1024 1"; do
		set -- $cfg
		"$B" --pattern $pattern "$N" "$1" "$2" > "$tmp/out" || exit 1
		bpe=$(sed -n 's/^bytes_per_event=//p' "$tmp/out")
		w=$(sed -n 's/^writer_events_per_s=//p' "$tmp/out")
		wr=$(sed -n 's/^writer_run_events_per_s=//p' "$tmp/out")
		same=$(sed -n 's/^writer_run_same_bytes=//p' "$tmp/out")
		r=$(sed -n 's/^reader_events_per_s=//p' "$tmp/out")
		[ "$same" = 1 ] || { echo "libtrace.sh: put_run wrote other bytes than the per-event calls" >&2; exit 1; }
		printf 'memscope  %-6s chunk=%4s KiB zstd=%s: %6s B/event  writer %9s events/s (runs %9s)  reader %9s events/s\n' \
			"$pattern" "$1" "$2" "$bpe" "$w" "$wr" "$r"
		[ "$cfg" = "256 1" ] && echo "$bpe" > "$tmp/ms-$pattern"
	done
	if command -v heaptrack >/dev/null 2>&1; then
		heaptrack -o "$tmp/ht" "$B" --churn-only --pattern $pattern "$N" > /dev/null 2>&1
		f=$(ls "$tmp"/ht*.zst "$tmp"/ht*.gz 2>/dev/null | head -1)
		if [ -n "$f" ]; then
			size=$(stat -c %s "$f")
			awk -v s="$size" -v n="$N" -v ms="$(cat "$tmp/ms-$pattern")" -v p=$pattern 'BEGIN {
				h = s / n
				printf "heaptrack %-6s (no addresses, no per-event times): %6.3f B/event; memscope/heaptrack = %.2fx\n", p, h, ms / h }'
			rm -f "$f"
		fi
	fi
done
