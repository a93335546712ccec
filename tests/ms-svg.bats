#!/usr/bin/env bats
# ms-svg end to end: every chart in every format is a valid file of the
# asked size, the peak it labels is the trace's (msdump --summary, ms-stats),
# odd traces (empty, one event, a thousand threads, ten hours, sampled,
# cut short, damaged) still draw, and errors exit 1 or 2 with one line.
# Synthetic traces come from tests/tools/svggen.c.

load test_helper

setup() {
	setup_scratch
}

# The value of KEY=N in the metadata line ms-svg embeds (SVG <desc>).
desc_value() { # key, svg file
	sed -n 's/.*<desc>\(.*\)<\/desc>.*/\1/p' "$2" | tr ' ;' '\n\n' |
		sed -n "s/^$1=//p"
}

summary_value() { # key, trace
	msdump --summary "$2" | sed -n "s/^$1=//p"
}

@test "ms-svg --help prints the usage on stdout and exits 0" {
	run ms-svg --help
	assert_success
	assert_line --index 0 "usage: ms-svg [options] [-o FILE] [TRACE]"
	assert_output --partial "--chart KIND"
}

@test "ms-svg --version" {
	run ms-svg --version
	assert_success
	assert_output --regexp '^ms-svg \(memscope\) [0-9]'
}

@test "usage errors exit 2 with one message" {
	svggen sawtooth -o t.memscope
	run ms-svg --chart pie t.memscope
	assert_failure 2
	assert_output --partial "ms-svg: unknown chart 'pie'"
	run ms-svg -o chart.jpg t.memscope
	assert_failure 2
	assert_output "ms-svg: cannot tell the format of 'chart.jpg': use a .svg, .png or .pdf file name"
	assert_file_not_exists chart.jpg
	run ms-svg --width 20 t.memscope
	assert_failure 2
	assert_output --partial "invalid width '20'"
	run ms-svg --at sometime t.memscope
	assert_failure 2
	run ms-svg t.memscope extra
	assert_failure 2
	assert_line --index 0 "ms-svg: too many arguments: 'extra'"
	run ms-svg --bogus
	assert_failure 2
	assert_output "ms-svg: unknown option '--bogus'
Try 'ms-svg --help'."
	run ms-svg t.memscope --chart
	assert_failure 2
	assert_line --index 0 "ms-svg: option '--chart' needs a value"
}

@test "an output without extension is SVG" {
	svggen sawtooth -o t.memscope
	ms-svg -o plain t.memscope
	xmllint --noout plain
	ms-svg -o /dev/stdout t.memscope | xmllint --noout -
}

@test "a missing file or a file that is not a trace exits 1, and writes nothing" {
	run ms-svg -o out.svg nope.memscope
	assert_failure 1
	assert_output "ms-svg: cannot open 'nope.memscope': No such file or directory"
	assert_output --partial "No such file or directory"
	assert_file_not_exists out.svg
	echo "hello" > text.memscope
	run ms-svg text.memscope
	assert_failure 1
	assert_output --partial "ms-svg: cannot read 'text.memscope':"
}

@test "SVG on stdout parses and labels the trace's own peak" {
	svggen sawtooth -o t.memscope
	ms-svg t.memscope > t.svg
	xmllint --noout t.svg
	peak=$(summary_value peak_bytes t.memscope)
	[ "$peak" = 13559808 ]
	[ "$(desc_value peak_bytes t.svg)" = "$peak" ]
	[ "$(desc_value leaked_bytes t.svg)" = "$(summary_value live_bytes_at_end t.memscope)" ]
	[ "$(desc_value allocations t.svg)" = "$(summary_value allocs t.memscope)" ]
	# The label drawn at the peak, as the desc repeats it.
	grep -q '<desc>peak 12.9 MiB at 7.55 s; leaked 6.00 KiB in 3 blocks;' t.svg
	grep -q '<title>synthetic — memory, recorded 2026-11-22' t.svg
}

@test "the peak agrees with ms-stats' JSON" {
	command -v ms-stats >/dev/null || skip "ms-stats not built"
	svggen sawtooth -o t.memscope
	ms-svg -o t.svg t.memscope
	json=$(ms-stats t.memscope | jq .summary.peak_bytes)
	[ "$(desc_value peak_bytes t.svg)" = "$json" ]
}

@test "stdin and '-' read the trace" {
	svggen sawtooth -o t.memscope
	ms-svg < t.memscope > a.svg
	ms-svg - < t.memscope > b.svg
	cat t.memscope | ms-svg -o c.svg
	xmllint --noout a.svg b.svg c.svg
	cmp a.svg b.svg
	[ "$(desc_value peak_bytes c.svg)" = 13559808 ]
}

@test "every chart as PNG is 1200 x 600 (all: 1200 x 1600)" {
	svggen sawtooth -o t.memscope
	for c in timeline sizes lifetimes flame threads; do
		ms-svg --chart "$c" -o "$c.png" t.memscope
		run file "$c.png"
		assert_output --partial "PNG image data, 1200 x 600"
	done
	ms-svg --chart all -o all.png t.memscope
	run file all.png
	assert_output --partial "PNG image data, 1200 x 1600"
	ms-svg --width 800 --height 400 --by-thread -o small.png t.memscope
	run file small.png
	assert_output --partial "PNG image data, 800 x 400"
}

@test "every chart as SVG parses, as PDF is a valid 1200 x 600 document" {
	svggen sawtooth -o t.memscope
	for c in timeline sizes lifetimes flame threads all; do
		ms-svg --chart "$c" -o "$c.svg" t.memscope
		xmllint --noout "$c.svg"
		ms-svg --chart "$c" -o "$c.pdf" t.memscope
		run pdfinfo "$c.pdf"
		assert_success
		assert_line --regexp '^Pages: +1$'
	done
	run pdfinfo timeline.pdf
	assert_line --regexp '^Page size: +1200 x 600 pts'
	assert_line --regexp '^Subject: .*peak_bytes=13559808 '
}

@test "flame graph: --at peak, leaks, all and --no-symbols" {
	svggen sawtooth -o t.memscope
	for at in peak leaks all; do
		ms-svg --chart flame --at "$at" --no-symbols -o "f-$at.svg" t.memscope
		xmllint --noout "f-$at.svg"
	done
	# Different widths, different pictures.
	run cmp -s f-peak.svg f-leaks.svg
	assert_failure
	run cmp -s f-leaks.svg f-all.svg
	assert_failure
}

@test "--title replaces the program and date" {
	svggen sawtooth -o t.memscope
	ms-svg --title 'nightly <run> & co' -o t.svg t.memscope
	xmllint --noout t.svg
	grep -q '<title>nightly &lt;run&gt; &amp; co</title>' t.svg
}

@test "an empty trace draws 'no allocations recorded' and exits 0" {
	svggen empty -o e.memscope
	run ms-svg --chart all -o e.svg e.memscope
	assert_success
	assert_output ""
	xmllint --noout e.svg
	[ "$(desc_value allocations e.svg)" = 0 ]
	ms-svg -o e.png e.memscope
	run file e.png
	assert_output --partial "PNG image data, 1200 x 600"
}

@test "one event, a thousand threads, ten hours: valid pictures" {
	svggen one -o one.memscope
	ms-svg -o one.svg one.memscope
	xmllint --noout one.svg
	[ "$(desc_value peak_bytes one.svg)" = 4096 ]
	svggen threads -o thr.memscope
	ms-svg --chart all --by-thread -o thr.svg thr.memscope
	xmllint --noout thr.svg
	[ "$(desc_value peak_bytes thr.svg)" = "$(summary_value peak_bytes thr.memscope)" ]
	svggen long -o long.memscope
	ms-svg -o long.png long.memscope
	run file long.png
	assert_output --partial "PNG image data, 1200 x 600"
	[ "$(desc_value peak_bytes <(ms-svg long.memscope))" = "$(summary_value peak_bytes long.memscope)" ]
}

@test "a sampled trace is drawn as an estimate" {
	svggen sampled -o s.memscope
	ms-svg -o s.svg s.memscope
	[ "$(desc_value estimated s.svg)" = 1 ]
	# Scaled by 1 / 10%.
	[ "$(desc_value peak_bytes s.svg)" = 135598080 ]
	svggen sawtooth -o t.memscope
	[ "$(desc_value estimated <(ms-svg t.memscope))" = 0 ]
}

@test "a truncated trace draws what it holds with a warning, exit 0" {
	svggen sawtooth --no-end -o cut.memscope
	run ms-svg -o cut.svg cut.memscope
	assert_success
	assert_output --partial "ms-svg: warning: 'cut.memscope':"
	assert_output --partial "drawing what it holds"
	xmllint --noout cut.svg
	[ "$(desc_value peak_bytes cut.svg)" = 13559808 ]
}

@test "a damaged trace fails with exit 1 and says where" {
	svggen long -o long.memscope
	size=$(stat -c %s long.memscope)
	# Flip a byte in the middle of the (only) chunk's payload.
	cp long.memscope bad.memscope
	printf '\377' | dd of=bad.memscope bs=1 seek=$((size / 2)) conv=notrunc status=none
	run ms-svg -o bad.svg bad.memscope
	assert_failure 1
	assert_output --regexp "^ms-svg: .*bad.memscope.*(corrupt|damage)"
}

@test "a write error exits 1: /dev/full and an unwritable folder" {
	svggen sawtooth -o t.memscope
	run bash -c 'ms-svg t.memscope > /dev/full'
	assert_failure 1
	assert_output "ms-svg: cannot write 'standard output': No space left on device"
	run ms-svg -o /dev/full t.memscope
	assert_failure 1
	assert_output "ms-svg: cannot write '/dev/full': No space left on device"
	# PNG and PDF through a link to the full device (a name with the
	# extension; /dev itself is not ours to write in).
	ln -s /dev/full full.png
	ln -s /dev/full full.pdf
	for f in full.png full.pdf; do
		run ms-svg -o "$f" t.memscope
		assert_failure 1
		assert_output --partial "No space left on device"
	done
	run ms-svg -o no/such/dir/x.png t.memscope
	assert_failure 1
	assert_output --partial "ms-svg: cannot open 'no/such/dir/x.png' for writing"
}

@test "PNG output to a file carries the figures in a tEXt chunk" {
	svggen sawtooth -o t.memscope
	ms-svg -o t.png t.memscope
	grep -a -q 'peak_bytes=13559808 ' t.png
}

@test "flame graph: an embedded SYMBOLS table names the frames" {
	# (as PDF: cairo writes text there, glyph outlines in SVG)
	mkgolden symbols s.memscope
	ms-svg --chart flame --at leaks -o f.pdf s.memscope
	run pdftotext f.pdf -
	assert_output --partial 'parse_config (64 B)'
	assert_output --partial 'foo::bar() (64 B)'
}
