#!/usr/bin/env bats
# ms-stats end to end: golden figures of synthetic traces (tests/golden),
# schema validation, --check, --diff, --text, errors and exit statuses, and
# real recordings compared with valgrind when ms-record is built.

load test_helper
bats_require_minimum_version 1.5.0

GOLDEN="$BATS_TEST_DIRNAME/golden"

setup() {
	setup_scratch
}

golden() { # scenario
	mkgolden "$1" "$1.memscope"
}

validate() { # schema-name json-file
	/usr/bin/python3 "$GOLDEN/validate.py" "$SCHEMA/$1" "$2"
}

@test "golden: every scenario matches its hand-computed figures and the schema" {
	for s in basic realloc threads sampled unknown dropped truncated modules; do
		golden "$s"
		ms-stats --no-symbols "$s.memscope" > "$s.json" 2>/dev/null
		run /usr/bin/python3 "$GOLDEN/subset.py" "$GOLDEN/$s.json" "$s.json"
		[ "$status" -eq 0 ] || { echo "scenario $s:"; echo "$output"; false; }
		run validate ms-stats.schema.json "$s.json"
		assert_success
	done
}

@test "64-bit counters are written as exact integers" {
	golden basic
	run ms-stats --no-symbols -s summary basic.memscope
	assert_success
	assert_output --partial '"bytes_allocated":	1250,'
	refute_output --partial 'e+'
}

@test "realloc: a moved realloc is one call and not a free" {
	golden realloc
	run ms-stats --no-symbols --check 'reallocs == 3 && frees == 2 && allocations == 5' realloc.memscope
	assert_success
	assert_output ''
}

@test "realloc: another thread given a moving realloc's old address keeps its block" {
	golden realloc-reuse
	run ms-stats --no-symbols --check 'reallocs == 1 && frees == 1 && allocations == 3 && peak_bytes == 230 && leaked_bytes == 200 && unknown_frees == 0 && double_allocs == 0' realloc-reuse.memscope
	assert_success
	assert_output ''
}

@test "a truncated trace warns and exits 0; --strict fails with 1" {
	golden truncated
	run --separate-stderr ms-stats --no-symbols -s summary truncated.memscope
	assert_success
	# byte figures depend on the encoding; the shape of the line does not
	[[ "$stderr" =~ ^ms-stats:\ warning:\ truncated\.memscope:\ truncated\ chunk\ 2\ at\ byte\ [0-9]+:\ .+:\ figures\ cover\ what\ was\ recorded$ ]]
	run --separate-stderr ms-stats --strict -s summary truncated.memscope
	assert_failure 1
	[[ "$stderr" =~ ^ms-stats:\ truncated\.memscope:\ truncated\ chunk\ 2\ at\ byte\ [0-9]+:\ [^:]+$ ]]
}

@test "reads standard input when no file or '-' is given" {
	golden basic
	run sh -c 'ms-stats --no-symbols -s summary < basic.memscope'
	assert_success
	assert_output --partial '"peak_bytes":	750'
	run sh -c 'cat basic.memscope | ms-stats --no-symbols -s summary -'
	assert_success
	assert_output --partial '"peak_bytes":	750'
}

@test "--section keeps only the named sections" {
	golden basic
	ms-stats --no-symbols -s leaks -s integrity basic.memscope > out.json
	run /usr/bin/python3 -c 'import json,sys; print(sorted(json.load(open("out.json"))))'
	assert_output "['integrity', 'leaks']"
	run ms-stats -s nosuch basic.memscope
	assert_failure 2
	assert_output "ms-stats: unknown section 'nosuch'; see --help"
}

@test "--top limits the listed sites" {
	golden basic
	ms-stats --no-symbols --top 1 -s sites basic.memscope > out.json
	run /usr/bin/python3 -c 'import json; d=json.load(open("out.json")); print(d["sites"]["count"], len(d["sites"]["top"]))'
	assert_output "3 1"
}

@test "--check: passes quietly, fails naming the condition and its value" {
	golden basic
	run ms-stats --check 'leaked_bytes <= 150 && peak_bytes < 64MiB' basic.memscope
	assert_success
	assert_output ''
	run ms-stats --check 'leaked_bytes == 0 && peak_bytes < 64MiB' basic.memscope
	assert_failure 1
	assert_output 'ms-stats: check failed: leaked_bytes == 0 (leaked_bytes = 150)'
	run ms-stats --check 'peak_bytes < 0.5KiB' basic.memscope
	assert_failure 1
	assert_output 'ms-stats: check failed: peak_bytes < 0.5KiB (peak_bytes = 750)'
	run ms-stats --check '!(temporary == 1) || frees > 4' basic.memscope
	assert_failure 1
	assert_output 'ms-stats: check failed: !(temporary == 1) || frees > 4 (temporary = 1, frees = 4)'
}

@test "--check: a size in MiB is shown in MiB" {
	mkgolden churn churn.memscope 3000
	run ms-stats --check 'bytes_allocated < 1MiB' churn.memscope
	assert_failure 1
	assert_output --regexp '^ms-stats: check failed: bytes_allocated < 1MiB \(bytes_allocated = [0-9.]+ MiB\)$'
}

@test "--check: a malformed expression is a usage error with a pointer" {
	golden basic
	run ms-stats --check 'peak_bytes < 64XB' basic.memscope
	assert_failure 2
	assert_line --index 0 'ms-stats: invalid --check expression: unknown size suffix (use KiB, MiB, GiB, KB, MB or GB) at position 16:'
	assert_line --index 1 '  peak_bytes < 64XB'
	assert_line --index 2 '                 ^'
	run ms-stats --check 'peak < 3' basic.memscope
	assert_failure 2
	assert_line --index 0 "ms-stats: invalid --check expression: unknown name 'peak' at position 1:"
	run ms-stats --check '(frees > 1' basic.memscope
	assert_failure 2
	assert_line --index 0 "ms-stats: invalid --check expression: expected ')' at position 11:"
	run ms-stats --check 'frees = 1' basic.memscope
	assert_failure 2
}

@test "--diff: sites matched by stack, its own schema, checks on deltas" {
	golden basic
	golden threads
	ms-stats --no-symbols --diff basic.memscope threads.memscope > diff.json
	run validate ms-stats-diff.schema.json diff.json
	assert_success
	run /usr/bin/python3 -c '
import json; d = json.load(open("diff.json")); s = d["sites"]
print(d["delta"]["peak_bytes_delta"], s["grown_count"], s["gone_count"], s["new_count"],
      s["grown"][0]["key"], s["grown"][0]["bytes_delta"], [g["key"] for g in s["gone"]])'
	assert_output "-450 1 2 0 0x1000 350 ['0x2000', '0x3000;0x1000']"
	run ms-stats --no-symbols --diff basic.memscope threads.memscope --check 'peak_bytes_delta <= 0'
	assert_success
	run ms-stats --no-symbols --diff basic.memscope threads.memscope --check 'leaked_bytes_delta > 0'
	assert_failure 1
	assert_output 'ms-stats: check failed: leaked_bytes_delta > 0 (leaked_bytes_delta = -150)'
	run ms-stats --diff basic.memscope a b
	assert_failure 2
}

@test "several traces: processes and a total" {
	golden basic
	golden threads
	ms-stats --no-symbols basic.memscope threads.memscope > many.json
	run validate ms-stats.schema.json many.json
	assert_success
	run /usr/bin/python3 -c '
import json; d = json.load(open("many.json")); t = d["total"]
print(len(d["processes"]), t["allocations"], t["bytes_allocated"], t["leaked_bytes"], d["processes"][1]["file"])'
	assert_output "2 8 1850 150 threads.memscope"
}

@test "--text: a short human report" {
	golden basic
	run ms-stats --no-symbols --text basic.memscope
	assert_success
	assert_line --index 0 'basic.memscope: /golden/app (pid 4242), 0.010 s'
	assert_line --index 1 '  5 allocations (0 reallocs), 4 frees, 1.22 KiB allocated, 1 temporary'
	assert_line --index 2 '  peak heap 750 B at 0.007 s in 3 blocks; max RSS not recorded'
	assert_output --partial 'Top leaks:'
	[ "$(printf '%s\n' "$output" | wc -l)" -lt 40 ]
}

@test "--text warns about integrity problems" {
	golden unknown
	run ms-stats --no-symbols --text unknown.memscope
	assert_success
	assert_output --partial '1 frees of addresses never allocated'
	assert_output --partial '1 allocations of an address already live'
	# with events dropped, those are what dropping does: it says so alone
	golden dropped
	run ms-stats --no-symbols --text dropped.memscope
	assert_success
	assert_output --partial '5 events dropped by the recorder'
	refute_output --partial 'never allocated'
	refute_output --partial 'already live'
}

@test "errors: missing file, not a trace, unknown option, full output" {
	run ms-stats nope.memscope
	assert_failure 1
	assert_output "ms-stats: cannot open 'nope.memscope': No such file or directory"
	echo garbage > bad.memscope
	run ms-stats bad.memscope
	assert_failure 1
	assert_output --regexp "^ms-stats: bad.memscope: "
	run sh -c 'ms-stats < /dev/null'
	assert_failure 1
	assert_output --regexp "^ms-stats: standard input: [a-z]"
	run ms-stats "$BATS_TEST_TMPDIR"
	assert_failure 1
	assert_output --regexp "^ms-stats: cannot read '$BATS_TEST_TMPDIR': Is a directory$"
	run ms-stats --bogus
	assert_failure 2
	assert_line --index 0 "ms-stats: unknown option '--bogus'"
	golden basic
	run sh -c 'ms-stats --no-symbols basic.memscope > /dev/full'
	assert_failure 1
	assert_output --partial "ms-stats: cannot write 'standard output'"
}

@test "--help and --version" {
	run ms-stats --help
	assert_success
	assert_line --index 0 'usage: ms-stats [options] [TRACE...]'
	run ms-stats --version
	assert_success
	assert_output --regexp '^ms-stats \(memscope\) [0-9.]+, trace format 2\.0$'
	run sh -c 'ms-stats --help > /dev/full'
	assert_failure 1
}

@test "-o writes the report to a file" {
	golden basic
	run ms-stats --no-symbols -o report.json basic.memscope
	assert_success
	assert_output ''
	run validate ms-stats.schema.json report.json
	assert_success
}

# ---- real recordings, compared with valgrind ----

record() { # program -> trace.memscope
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	ms-record -q -o trace.memscope "$PROGS/$1"
}

@test "real recording: totals and leak sites equal valgrind's" {
	command -v valgrind > /dev/null || skip "valgrind is not installed"
	record stats_leaks
	valgrind --leak-check=full "$PROGS/stats_leaks" 2> vg.txt
	# "total heap usage: 1,007 allocs, 1,001 frees, 68,696 bytes allocated"
	vg=$(sed -n 's/.*total heap usage: \([0-9,]*\) allocs, \([0-9,]*\) frees, \([0-9,]*\) bytes allocated.*/\1 \2 \3/p' vg.txt | tr -d ,)
	[ -n "$vg" ]
	ms-stats -o stats.json trace.memscope
	ours=$(/usr/bin/python3 -c 'import json; s = json.load(open("stats.json"))["summary"]; print(s["allocations"], s["frees"], s["bytes_allocated"])')
	assert_equal "$ours" "$vg"
	assert_equal "$ours" "1007 1001 68696"
	# leaked bytes: "in use at exit: 4,596 bytes in 6 blocks"
	vgleak=$(sed -n 's/.*in use at exit: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' vg.txt | tr -d ,)
	run /usr/bin/python3 -c 'import json; s = json.load(open("stats.json"))["summary"]; print(s["leaked_bytes"], s["leaked_allocations"], s["peak_bytes"], s["temporary"])'
	assert_output "$vgleak 4760 1000"
	# Leak sites: valgrind's "by 0x...: FUNC (FILE:LINE)" under each definitely
	# lost record, innermost two frames, against ours.
	vgsites=$(awk '/definitely lost in loss record/ {grab=2; next}
		grab && /by 0x/ {sub(/.*: /, ""); printf "%s%s", $0, (grab == 2 ? " < " : "\n"); grab--}' vg.txt | sort)
	ours=$(/usr/bin/python3 -c '
import json, os
for s in json.load(open("stats.json"))["leaks"]["sites"]:
    f = [x for x in s["stack"] if x["function"]][:2]
    print(" < ".join("%s (%s:%d)" % (x["function"], os.path.basename(x["file"]), x["line"]) for x in f))' | sort)
	assert_equal "$ours" "$vgsites"
}

@test "real recording: symbolized peak sites name the program's functions" {
	record stats_leaks
	run ms-stats --text trace.memscope
	assert_success
	assert_output --partial 'make_buffer (stats_leaks.c:'
	assert_output --partial 'parse_record (stats_leaks.c:'
	assert_output --partial 'churn (stats_leaks.c:'
	run ms-stats --no-symbols -s leaks trace.memscope
	assert_success
	refute_output --partial 'make_buffer'
}

@test "real recording: a rebuilt binary's symbols are skipped with a warning" {
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	cp "$PROGS/stats_leaks" ./prog
	ms-record -q -o trace.memscope ./prog
	# Same path, another build-id: names would be wrong, so none are given.
	cc -O0 -g -o prog -x c - <<<'int main(void){return 0;}'
	run --separate-stderr ms-stats -s leaks trace.memscope
	assert_success
	assert_equal "$stderr" "ms-stats: warning: $PWD/prog: build-id differs from the recording; symbols skipped"
	refute_output --partial '"make_buffer"'
	assert_output --partial '"offset":'
}

@test "embedded SYMBOLS tables name frames without the files (C++ demangled)" {
	golden symbols
	run --separate-stderr ms-stats -s leaks symbols.memscope
	assert_success
	assert_equal "$stderr" ""
	run /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print([(f["function"], f["file"], f["line"], f["offset"]) for f in d["leaks"]["sites"][0]["stack"]])' "$output"
	assert_output "[('parse_config', 'src/config.c', 42, '0x1010'), ('foo::bar()', 'src/foo.cc', 7, '0x2005')]"
}

@test "real recording: C++ names are demangled" {
	record alloc_cxx
	run ms-stats --text trace.memscope
	assert_success
	assert_output --partial 'main (alloc_cxx.cc:'
	assert_output --partial 'operator new[]'
	refute_output --partial '_ZN'
	# sites are named after the program's frame, not std::allocator's
	refute_output --partial 'std::__new_allocator'
	run ms-stats -s peak trace.memscope
	assert_output --partial '"function":	"std::__new_allocator<int>::allocate'
}

@test "real recording: a program and its forked child, one report each and a total" {
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	ms-record -q "$PROGS/forker" > child.txt
	child=$(sed -n 's/^child \([0-9]*\)$/\1/p' child.txt)
	[ -n "$child" ]
	ms-stats -o all.json forker.*.memscope
	run validate ms-stats.schema.json all.json
	assert_success
	run /usr/bin/python3 -c '
import json, sys
d = json.load(open("all.json")); child = int(sys.argv[1])
for p in sorted(d["processes"], key=lambda p: p["pid"] != child):
    s = p["summary"]
    print(p["pid"] == child, s["allocations"], s["frees"], s["bytes_allocated"], s["leaked_bytes"], p["integrity"]["forked"])
t = d["total"]; print(t["processes"], t["allocations"], t["leaked_bytes"])' "$child"
	assert_line --index 0 "True 2 1 555 333 True"
	assert_line --index 1 "False 1 1 111 0 False"
	assert_line --index 2 "2 3 333"
	run ms-stats --check 'leaked_bytes == 0' forker.*.memscope
	assert_failure 1
	assert_output "ms-stats: forker.$child.memscope: check failed: leaked_bytes == 0 (leaked_bytes = 333)"
}

@test "real recording: a sampled trace is scaled and marked as estimates" {
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	ms-record -q --sample-rate 0.5 -o trace.memscope "$PROGS/stats_leaks"
	ms-stats -o s.json trace.memscope
	run /usr/bin/python3 -c '
import json; d = json.load(open("s.json")); s = d["summary"]
# 1007 allocations sampled at 50%: the estimate is within 20% (6 sigma)
print(s["estimated"], s["strategy_used"], s["sample_rate"], abs(s["allocations"] - 1007) < 202,
      d["integrity"]["unknown_frees_expected"])'
	assert_output "True sampled 0.5 True True"
}

@test "real recording: argv bytes that are not UTF-8 still give valid JSON" {
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	ms-record -q -o trace.memscope "$PROGS/argv_alloc" "$(printf 'a\377b')" "é" > /dev/null
	ms-stats -s program -o p.json trace.memscope
	run /usr/bin/python3 -c 'import json; print(ascii(json.load(open("p.json", encoding="utf-8"))["program"]["argv"][1:]))'
	assert_output "['a\ufffdb', '\xe9']"
}

@test "fragmentation over time: at most 32 spans, the peak kept, counters carried" {
	golden modules
	ms-stats --no-symbols -s fragmentation -o f.json modules.memscope
	run /usr/bin/python3 -c '
import json; p = json.load(open("f.json"))["fragmentation"]["over_time"]
print(len(p) <= 32, p[0]["time_ms"], max(x["heap_bytes"] for x in p), p[-1]["rss_bytes"],
      [x["rss_bytes"] for x in p if x["time_ms"] <= 3.0][-1] in (0, 1048576))'
	assert_output "True 0.0 300 2097152 True"
	golden basic
	ms-stats --no-symbols -s fragmentation -o f.json basic.memscope
	run /usr/bin/python3 -c 'import json; print(json.load(open("f.json"))["fragmentation"]["over_time"])'
	assert_output "[]"
}

@test "the schemas reject what ms-stats must not write" {
	golden basic
	ms-stats --no-symbols -o good.json basic.memscope
	for edit in 'd["summary"]["peak_bytes"] = "750"' 'd["summary"]["peak_bytes"] = 750.5' \
		    'd["summary"]["bogus"] = 1' 'd["peak"]["sites"][0]["stack"][0]["address"] = 4096' \
		    'd["integrity"]["end_reason"] = "crash"' 'del d["summary"]["session_id"]'; do
		/usr/bin/python3 -c "import json; d = json.load(open('good.json')); $edit; json.dump(d, open('bad.json', 'w'))"
		run validate ms-stats.schema.json bad.json
		[ "$status" -ne 0 ] || { echo "schema accepted: $edit"; false; }
	done
}

@test "decoding on a second thread gives the same report as one thread" {
	for s in basic realloc threads modules symbols truncated; do
		golden "$s"
		MEMSCOPE_THREADS=1 ms-stats "$s.memscope" > one.json 2> one.err || true
		ms-stats "$s.memscope" > two.json 2> two.err || true
		cmp one.json two.json
		cmp one.err two.err
	done
	mkgolden churn churn.memscope 20000
	MEMSCOPE_THREADS=1 ms-stats churn.memscope > one.json
	ms-stats churn.memscope > two.json
	cmp one.json two.json
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	ms-record -q -o mt.memscope "$PROGS/churn" 4 20000 > /dev/null
	MEMSCOPE_THREADS=1 ms-stats mt.memscope > one.json
	ms-stats mt.memscope > two.json
	cmp one.json two.json
}

@test "real recording: a clang-built program (no .debug_aranges) gets files and lines" {
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
	command -v clang > /dev/null || skip "clang is not installed"
	clang -O0 -g -o prog "$BATS_TEST_DIRNAME/programs/stats_leaks.c"
	ms-record -q -o trace.memscope ./prog
	run ms-stats --text trace.memscope
	assert_success
	assert_output --regexp 'make_buffer \(stats_leaks\.c:[0-9]+\)'
	assert_output --regexp 'parse_record \(stats_leaks\.c:[0-9]+\)'
}

@test "--text never lists the same site line twice, and names its caller" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	cd "$BATS_TEST_TMPDIR"
	ms-record -q -o s.memscope sqlite3 :memory: 'create table t(x); insert into t values(1);' >/dev/null
	run --separate-stderr ms-stats --text s.memscope
	assert_success
	# the site part of each line of each top list, figures cut off
	local list sites all=""
	for list in "Top sites at the peak:" "Top leaks:"; do
		sites=$(printf '%s\n' "$output" | awk -v t="$list" '$0 == t {on=1; next} /^$/{on=0} on' |
			sed -E 's/^ +[0-9.]+ [KMG]?i?B +(in )?[0-9]+ (calls?|blocks?)( \([^)]*\))? +//')
		[ -n "$sites" ] || fail "no lines under '$list' in: $output"
		dups=$(printf '%s\n' "$sites" | sort | uniq -d)
		[ -z "$dups" ] || fail "listed twice under '$list': $dups"
		all="$all$sites"
	done
	sites=$all
	printf '%s\n' "$sites" | grep -q ' ← ' || fail "no caller named: $sites"
	if printf '%s\n' "$output" | grep -qE ' 1 (calls|blocks) '; then fail "plural after 1: $output"; fi
}

@test "lifetimes under one tick of the clock are labelled as such" {
	cd "$BATS_TEST_TMPDIR"
	ms-record -q -o d.memscope "$PROGS/demo" >/dev/null
	run --separate-stderr ms-stats -s histograms d.memscope
	assert_success
	# ms-record ticks are 256 ns: bucket 0 is [0, 255], then [256, 511]
	[ "$(printf '%s' "$output" | jq -c '.histograms.lifetime_ns[0] | [.min, .max]')" = "[0,255]" ]
	[ "$(printf '%s' "$output" | jq -c '.histograms.size_bytes[0] | select(.min == 0) | .max')" != "255" ]
}

@test "--diff --text speaks in sizes and names what changed" {
	cd "$BATS_TEST_TMPDIR"
	ms-record -q -o a.memscope "$PROGS/leak" >/dev/null
	ms-record -q -o b.memscope "$PROGS/demo" >/dev/null
	run --separate-stderr ms-stats --diff a.memscope --text b.memscope
	assert_success
	assert_line --regexp '^  bytes_allocated_delta +\+[0-9.]+ (B|KiB|MiB|GiB)$'
	assert_line --regexp '^  allocations_delta +\+[0-9]+$'
	# site lines: signed sizes, each named, then frames joined by arrows
	assert_line --regexp '^  \+[0-9.]+ (B|KiB|MiB)( allocated| at the peak| leaked)'
	refute_line --regexp ' bytes  '
}
