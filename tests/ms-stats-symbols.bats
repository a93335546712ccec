#!/usr/bin/env bats
# ms-stats opens the modules' debug information on a background thread
# while the trace is read (mst_symbolizer_prepare): the names and the
# warnings must be exactly those of opening modules on demand, as with
# MEMSCOPE_THREADS=1, and a module the report never names must not warn.

load test_helper

setup() {
	setup_scratch
	[ -x "$MS_BUILD/bin/ms-record" ] || skip "ms-record is not built"
}

# same_both ARGS...: ms-stats ARGS on one thread and with threads, byte for byte
same_both() {
	MEMSCOPE_THREADS=1 ms-stats "$@" > one.out 2> one.err
	ms-stats "$@" > two.out 2> two.err
	cmp one.out two.out
	cmp one.err two.err
}

@test "background symbols: the same report on one thread and with threads" {
	cp "$PROGS/stats_leaks" ./prog
	ms-record -q -o trace.memscope ./prog
	same_both trace.memscope
	same_both --text trace.memscope
	same_both --top 50 -s sites trace.memscope
	# the names are there, not just equally missing
	grep -q '"make_buffer"' two.out
	ms-record -q -o mt.memscope "$PROGS/churn" 4 20000 > /dev/null
	same_both mt.memscope
	same_both --text trace.memscope mt.memscope
	same_both --diff trace.memscope mt.memscope
}

@test "background symbols: a rebuilt binary warns once, as on one thread" {
	cp "$PROGS/stats_leaks" ./prog
	ms-record -q -o trace.memscope ./prog
	cc -O0 -g -o prog -x c - <<<'int main(void){return 0;}'
	same_both trace.memscope
	assert_equal "$(cat two.err)" \
		"ms-stats: warning: $PWD/prog: build-id differs from the recording; symbols skipped"
	rm prog
	same_both --text trace.memscope
	assert_equal "$(cat two.err)" \
		"ms-stats: warning: $PWD/prog: cannot open: No such file or directory; symbols skipped"
}

@test "background symbols: a module the report never names does not warn" {
	# A site in a library that is deleted after the run: its module is
	# opened ahead (and fails) while the trace is read, but with --top 1
	# no frame of the report lies in it.
	cc -shared -fPIC -g -o libidle.so -x c - <<<'#include <stdlib.h>
void *idle_alloc(void) { return malloc(24); }'
	cc -g -O0 -o prog -x c - -L. -lidle -Wl,-rpath,"$PWD" <<<'#include <stdlib.h>
void *idle_alloc(void);
int main(void)
{
	char *keep;
	free(idle_alloc());
	keep = malloc(1 << 20);
	/* long enough for counters records to follow the first site */
	for (int i = 0; i < 300000; i++)
		free(malloc(16 + (i & 63)));
	keep[0] = 1;
	return keep[0] - 1;
}'
	ms-record -q -o trace.memscope ./prog
	run msdump trace.memscope
	assert_output --partial "path=$PWD/libidle.so"
	assert_output --partial "counters t="
	rm libidle.so
	same_both --top 1 trace.memscope
	[ ! -s two.err ]
	same_both --text --top 1 trace.memscope
	[ ! -s two.err ]
	# named, it warns, the same either way
	same_both -s sites --top 100 trace.memscope
	grep -q "libidle.so: cannot open: No such file or directory; symbols skipped" two.err
}

@test "compressed debug sections (zlib, zstd): the same names, files and lines" {
	# Distributions compress their debug files; ms-stats inflates them
	# itself (libtrace/inflate.c), zstd too, which this libelf cannot read.
	cp "$PROGS/stats_leaks" ./plain
	ms-record -q -o plain.memscope ./plain
	ms-stats -s leaks plain.memscope > plain.json
	grep -q '"file":	".*stats_leaks.c"' plain.json
	for kind in zlib zstd; do
		objcopy --compress-debug-sections=$kind "$PROGS/stats_leaks" ./$kind 2>/dev/null ||
			{ [ $kind = zstd ] && continue; false; }
		readelf -SW ./$kind | grep -q ' \.debug_info .* C '
		ms-record -q -o $kind.memscope ./$kind
		ms-stats -s leaks $kind.memscope > $kind.json
		# the same report but for the program's name and its addresses
		diff <(grep -E '"(function|file|line)"' plain.json) \
		     <(grep -E '"(function|file|line)"' $kind.json)
	done
}

@test "separate debug files named by a debug link are found (beside the program, in .debug/)" {
	# Without DEBUGINFOD_URLS, ms-stats ends libdwfl's search before it
	# would load the debuginfod client: the local places must still serve.
	cp "$PROGS/stats_leaks" ./prog
	objcopy --only-keep-debug prog prog.dbg
	strip --strip-debug prog
	objcopy --add-gnu-debuglink=prog.dbg prog
	! readelf -SW prog | grep -q ' \.debug_info '
	ms-record -q -o trace.memscope ./prog
	DEBUGINFOD_URLS= ms-stats -s leaks trace.memscope > beside.json
	grep -q '"file":	".*stats_leaks.c"' beside.json
	mkdir .debug
	mv prog.dbg .debug/
	DEBUGINFOD_URLS= ms-stats -s leaks trace.memscope > dotdebug.json
	cmp beside.json dotdebug.json
	rm .debug/prog.dbg
	DEBUGINFOD_URLS= ms-stats -s leaks trace.memscope > none.json
	! grep -q '"file":	".*stats_leaks.c"' none.json
	grep -q '"function":	"make_buffer"' none.json
}
