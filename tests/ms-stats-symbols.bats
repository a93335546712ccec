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

# entry_of FILE: the cache entry made from FILE (its trailer, the last 120
# bytes, names the file's inode at offset 16), or nothing
entry_of() {
	local ino e n
	ino=$(stat -c %i "$1")
	for e in cache/*.elf; do
		[ -f "$e" ] || continue
		n=$(stat -c %s "$e")
		[ "$(od -An -t u8 -j $((n - 104)) -N 8 "$e" | tr -d ' ')" = "$ino" ] && echo "$e"
	done
	return 0
}

@test "inflated debug images are kept in MEMSCOPE_CACHE, reused, and made again when damaged" {
	# libtrace/debugcache.c: a compressed debug file is inflated once; later
	# runs map the copy (same report), touch its time and leave it whole.
	objcopy --compress-debug-sections=zlib "$PROGS/stats_leaks" ./zprog
	ms-record -q -o z.memscope ./zprog
	MEMSCOPE_CACHE=off ms-stats -s leaks z.memscope > off.json
	grep -q '"file":	".*stats_leaks.c"' off.json
	export MEMSCOPE_CACHE="$SCRATCH/cache"
	ms-stats -s leaks z.memscope > first.json
	cmp off.json first.json
	e=$(entry_of zprog)
	[ -n "$e" ]
	[ -f "$e" ]
	[ "$(stat -c %a cache)" = 700 ]
	[ "$(stat -c %a "$e")" = 400 ]
	# used, not made again: the same file (inode), its time touched
	ino=$(stat -c %i "$e")
	touch -d '2001-01-01' "$e"
	ms-stats -s leaks z.memscope > second.json 2> second.err
	cmp off.json second.json
	[ ! -s second.err ]
	[ "$(stat -c %i "$e")" = "$ino" ]
	[ "$(stat -c %Y "$e")" -gt "$(date -d 2002-01-01 +%s)" ]
	# cut short: not used; a whole copy replaces it
	size=$(stat -c %s "$e")
	chmod u+w "$e"
	truncate -s 4000 "$e"
	ms-stats -s leaks z.memscope > third.json
	cmp off.json third.json
	[ "$(stat -c %s "$e")" = "$size" ]
	# the same length, other bytes in its trailer: not used either
	chmod u+w "$e"
	printf 'XXXXXXXX' | dd of="$e" bs=1 seek=$((size - 120)) conv=notrunc 2>/dev/null
	ms-stats -s leaks z.memscope > fourth.json
	cmp off.json fourth.json
	[ "$(tail -c 120 "$e" | head -c 7)" = MSDBGC2 ]
	# not an ELF image where one should start: not used
	ino=$(stat -c %i "$e")
	chmod u+w "$e"
	printf 'XXXX' | dd of="$e" bs=1 conv=notrunc 2>/dev/null
	ms-stats -s leaks z.memscope > fourth.json
	cmp off.json fourth.json
	[ "$(stat -c %i "$e")" != "$ino" ]
	[ "$(head -c 4 "$e" | tail -c 3)" = ELF ]
	# another file in its place (a new inode, the same bytes and time):
	# a copy of its own
	before=$(ls cache | wc -l)
	cp --preserve=timestamps zprog zprog.new
	mv zprog.new zprog
	ms-stats -s leaks z.memscope > fifth.json
	cmp off.json fifth.json
	[ "$(ls cache | wc -l)" -eq $((before + 1)) ]
	[ -n "$(entry_of zprog)" ]
	# no cache to be had: the same report and not a word about it
	MEMSCOPE_CACHE=/proc/self/no/such/folder ms-stats -s leaks z.memscope > nowhere.json 2> nowhere.err
	cmp off.json nowhere.json
	[ ! -s nowhere.err ]
	# nothing but entries left behind (no temporary files)
	! ls cache | grep -v '\.elf$'
}

@test "the debug cache is used only in a folder of the user's own, and follows no links" {
	objcopy --compress-debug-sections=zlib "$PROGS/stats_leaks" ./zprog
	ms-record -q -o z.memscope ./zprog
	MEMSCOPE_CACHE=off ms-stats -s leaks z.memscope > off.json
	# a folder others may write to: neither read nor written
	mkdir open
	chmod 777 open
	MEMSCOPE_CACHE="$SCRATCH/open" ms-stats -s leaks z.memscope > open.json 2> open.err
	cmp off.json open.json
	[ ! -s open.err ]
	[ -z "$(ls open)" ]
	# the folder given as a link to one: not used either
	mkdir real
	chmod 700 real
	ln -s real link
	MEMSCOPE_CACHE="$SCRATCH/link" ms-stats -s leaks z.memscope > link.json
	cmp off.json link.json
	[ -z "$(ls real)" ]
	# an entry's name planted as a link to another file: the file is left
	# alone (the entry replaces the link)
	MEMSCOPE_CACHE="$SCRATCH/real" ms-stats -s leaks z.memscope > /dev/null
	names=$(cd real && ls *.elf)
	[ -n "$names" ]
	rm -f real/*.elf
	echo precious > victim
	for f in $names; do ln -s "$SCRATCH/victim" "real/$f"; done
	MEMSCOPE_CACHE="$SCRATCH/real" ms-stats -s leaks z.memscope > planted.json
	cmp off.json planted.json
	[ "$(cat victim)" = precious ]
	for f in $names; do [ -f "real/$f" ]; [ ! -L "real/$f" ]; done
	# missing folders are made only inside one of the user's own
	if [ "$(id -u)" = 0 ]; then
		mkdir theirs
		chown nobody theirs
		HOME="$SCRATCH/theirs" XDG_CACHE_HOME= MEMSCOPE_CACHE= ms-stats -s leaks z.memscope > theirs.json
		cmp off.json theirs.json
		[ ! -e theirs/.cache ]
	fi
}

@test "a debug cache entry is never taken for a file rewritten in place with the same size and time" {
	# the entry's name and trailer carry the file's build-id, so that
	# the same inode, size and time with other contents is not the old file
	command -v cc >/dev/null || skip "no C compiler"
	for v in alpha omega; do
		printf '#include <stdlib.h>\nvoid *volatile keep;\n__attribute__((noinline)) void *alloc_%s(void) { return malloc(4096); }\nint main(void) { keep = alloc_%s(); return 0; }\n' $v $v > $v.c
		cc -g -O0 -o $v $v.c
		objcopy --compress-debug-sections=zlib $v
	done
	# the same length: pad both to the larger (bytes after the section
	# headers are ignored by ELF readers)
	n=$(( $(stat -c %s alpha) > $(stat -c %s omega) ? $(stat -c %s alpha) : $(stat -c %s omega) ))
	truncate -s $((n + 64)) alpha omega
	export MEMSCOPE_CACHE="$SCRATCH/cache"
	cp alpha prog
	ms-record -q -o a.memscope ./prog
	ms-stats -s leaks a.memscope | grep -q '"function":	"alloc_alpha"'
	[ -n "$(entry_of prog)" ]
	touch -r prog prog.time
	ino=$(stat -c %i prog)
	cat omega > prog
	touch -r prog.time prog
	[ "$(stat -c %i prog)" = "$ino" ]
	ms-record -q -o o.memscope ./prog
	ms-stats -s leaks o.memscope > o.json
	grep -q '"function":	"alloc_omega"' o.json
	! grep -q alloc_alpha o.json
}

@test "several ms-stats at once fill the debug cache once, each with the same report" {
	objcopy --compress-debug-sections=zlib "$PROGS/stats_leaks" ./zprog
	ms-record -q -o z.memscope ./zprog
	MEMSCOPE_CACHE=off ms-stats -s leaks z.memscope > off.json
	export MEMSCOPE_CACHE="$SCRATCH/cache"
	for i in 1 2 3 4; do ms-stats -s leaks z.memscope > run$i.json 2> run$i.err & done
	wait
	for i in 1 2 3 4; do
		cmp off.json run$i.json
		[ ! -s run$i.err ]
	done
	# one entry a file, whole, and no temporary file left behind
	e=$(entry_of zprog)
	[ "$(echo "$e" | wc -l)" = 1 ]
	[ "$(tail -c 120 "$e" | head -c 7)" = MSDBGC2 ]
	! ls cache | grep -v '\.elf$'
	ms-stats -s leaks z.memscope > after.json
	cmp off.json after.json
}
