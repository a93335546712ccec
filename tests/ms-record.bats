#!/usr/bin/env bats
# ms-record end to end: the launcher's checks and statuses, exact figures
# of the test programs (tests/programs/*.c, each documents what it does)
# read back through msdump --summary, every way a process can end, fork,
# exec, daemons, signals, options reaching the recorder, and real programs
# whose output must not change under the recorder.

bats_require_minimum_version 1.5.0
load test_helper

setup() {
	setup_scratch
	# Spool folders (and a daemon's leftover one) stay in the scratch.
	export TMPDIR="$SCRATCH"
	unset MEMSCOPE_OUTPUT MEMSCOPE_SAMPLE_RATE MEMSCOPE_UNWIND MEMSCOPE_STACK_DEPTH \
		MEMSCOPE_MAX_OVERHEAD MEMSCOPE_DROP MEMSCOPE_RSS_INTERVAL MEMSCOPE_FOLLOW \
		MEMSCOPE_SESSION MEMSCOPE_SPOOL_DIR MEMSCOPE_LOG MEMSCOPE_CLOCK LD_PRELOAD
}

# A test that starts ms-record in the background sets bg to its pid: if
# the test fails half-way, the program and ms-record must not linger.
teardown() {
	if [ -n "${bg:-}" ] && kill -0 "$bg" 2>/dev/null; then
		pkill -9 -P "$bg" 2>/dev/null
		kill -9 "$bg" 2>/dev/null
	fi
	true
}

# The one closing line for trace NAME (a regex fragment).
wrote_re() {
	printf '%s' "ms-record: wrote $1 \\([0-9,]+ events, [0-9.]+ (B|KiB|MiB|GiB)\\)( and [0-9]+ more traces? of this run)?; try: ms-stats --text $1"
}

# stderr must match the extended regex $1 as a whole.
stderr_matches() {
	if ! [[ "$stderr" =~ ^$1$ ]]; then
		printf 'stderr:   %s\nexpected: %s\n' "$stderr" "$1" >&2
		return 1
	fi
}

# The single file matching glob $1 (unquoted on purpose), or fail.
one_file() {
	local f=( $1 )
	if [ "${#f[@]}" -ne 1 ] || [ ! -e "${f[0]}" ]; then
		echo "expected one file for '$1', found: ${f[*]}" >&2
		return 1
	fi
	printf '%s\n' "${f[0]}"
}

# Checks msdump --summary FILE against key=value pairs.
assert_summary() {
	local file=$1 kv
	shift
	run --separate-stderr msdump --summary "$file"
	assert_success
	[ -z "$stderr" ] || { echo "msdump stderr: $stderr" >&2; return 1; }
	for kv in "$@"; do
		assert_line "$kv"
	done
}

# Value of KEY in msdump --summary FILE.
sumval() {
	msdump --summary "$1" | sed -n "s/^$2=//p"
}

# Events reported in the closing line must equal the trace's own count.
assert_line_events() {
	local file=$1 shown
	shown=$(printf '%s' "$stderr" | sed -n 's/.*(\([0-9,]*\) events.*/\1/p' | tr -d ,)
	[ "$shown" = "$(sumval "$file" events)" ] || {
		echo "line says $shown events, trace has $(sumval "$file" events)" >&2
		return 1
	}
}

# ---- the command line ----

@test "--help prints the usage on stdout and exits 0" {
	run --separate-stderr ms-record --help
	assert_success
	assert_line --index 0 "usage: ms-record [options] [--] PROGRAM [ARGS...]"
	assert_line --partial "--sample-rate R"
	[ -z "$stderr" ]
}

@test "--version names the tool" {
	run --separate-stderr ms-record --version
	assert_success
	assert_output --regexp '^ms-record \(memscope\) [0-9]'
	[ -z "$stderr" ]
}

@test "a write error on stdout is ms-record's failure: 125" {
	run --separate-stderr bash -c 'ms-record --help > /dev/full'
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: cannot write 'standard output': No space left on device"
}

@test "no program is a usage error: 125" {
	run --separate-stderr ms-record
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: no program given
Try 'ms-record --help' for more information."
}

@test "an unknown option is a usage error: 125" {
	run --separate-stderr ms-record --bogus "$PROGS/leak"
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: unknown option '--bogus'
Try 'ms-record --help' for more information."
}

@test "a missing option value, an unknown short option in a cluster: 125" {
	run --separate-stderr ms-record -o
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: option '-o' needs a value
Try 'ms-record --help' for more information."
	run --separate-stderr ms-record -qx "$PROGS/leak"
	assert_failure 125
	stderr_matches "ms-record: unknown option '-x'
Try 'ms-record --help' for more information."
}

@test "bad option values: one line each, 125, nothing run" {
	local bad
	for bad in "--sample-rate 0" "--sample-rate 1.5" "--sample-rate abc" \
		"--unwind lbr" "--stack-depth 0" "--max-overhead 0" "--rss-interval -1"; do
		run --separate-stderr ms-record $bad "$PROGS/leak"
		assert_failure 125
		assert_output ""
		stderr_matches "ms-record: invalid ${bad% *} '${bad#* }': [^
]*
Try 'ms-record --help' for more information."
	done
	[ -z "$(ls)" ]
}

@test "a missing program: 127, like env" {
	run -127 --separate-stderr ms-record no-such-program-xyz
	assert_failure 127
	assert_output ""
	stderr_matches "ms-record: 'no-such-program-xyz': command not found"
	run -127 --separate-stderr ms-record ./nothing-here
	assert_failure 127
	stderr_matches "ms-record: './nothing-here': No such file or directory"
}

@test "a static binary is refused: 126" {
	# Debian's ldconfig is static-pie (a PT_DYNAMIC but no interpreter).
	run --separate-stderr ms-record /sbin/ldconfig -p
	assert_failure 126
	assert_output ""
	stderr_matches "ms-record: '/sbin/ldconfig' is statically linked: LD_PRELOAD cannot trace it"
	if [ -e /usr/lib/x86_64-linux-gnu/libc.a ]; then
		printf 'int main(void) { return 0; }\n' > s.c
		cc -static -o static-prog s.c
		run --separate-stderr ms-record ./static-prog
		assert_failure 126
		stderr_matches "ms-record: './static-prog' is statically linked: LD_PRELOAD cannot trace it"
	fi
}

@test "a set-user-ID program is refused: 126" {
	cp "$PROGS/leak" suid-prog
	chmod u+s suid-prog
	run --separate-stderr ms-record ./suid-prog
	assert_failure 126
	assert_output ""
	stderr_matches "ms-record: './suid-prog' is set-user-ID: the dynamic loader ignores LD_PRELOAD for it"
	chmod u-s,g+s suid-prog
	run --separate-stderr ms-record ./suid-prog
	assert_failure 126
	stderr_matches "ms-record: './suid-prog' is set-group-ID: the dynamic loader ignores LD_PRELOAD for it"
}

@test "a file that is not executable, or a folder: 126" {
	printf 'data\n' > plain
	run --separate-stderr ms-record ./plain
	assert_failure 126
	assert_output ""
	stderr_matches "ms-record: cannot run './plain': Permission denied"
	mkdir folder
	run --separate-stderr ms-record ./folder
	assert_failure 126
	stderr_matches "ms-record: cannot run './folder': Is a directory"
}

@test "an unwritable -o location fails before running: 125" {
	run --separate-stderr ms-record -o /nonexistent/dir/x.memscope "$PROGS/argv_alloc" ran
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: cannot write '/nonexistent/dir/x.memscope': No such file or directory"
	mkdir out
	run --separate-stderr ms-record -o out "$PROGS/argv_alloc" ran
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: cannot write 'out': Is a directory"
}

@test "options after PROGRAM are the program's own" {
	ms-record -q "$PROGS/argv_alloc" -q --help -- -o > out 2> err
	# argv_alloc writes its arguments back, each NUL-terminated
	printf -- '-q\0--help\0--\0-o\0' | cmp - out
	[ ! -s err ]
	one_file 'argv_alloc.*.memscope'
}

@test "PROGRAM is searched in PATH; a script without #! runs through /bin/sh" {
	PATH="$PROGS:$PATH" run --separate-stderr ms-record leak
	assert_success
	assert_output "leak: 10521 bytes in 12 blocks"
	stderr_matches "$(wrote_re 'leak\.[0-9]+\.memscope')"
	assert_summary "$(one_file 'leak.*.memscope')" allocs=22 live_bytes_at_end=10521 complete=1
	# as execvp does: ENOEXEC means a shell script
	printf 'echo "no shebang: $1"\n' > noshebang
	chmod +x noshebang
	run --separate-stderr ms-record ./noshebang arg
	assert_success
	assert_output "no shebang: arg"
	stderr_matches "$(wrote_re 'noshebang\.[0-9]+\.memscope')"
	run msdump "$(one_file 'noshebang.*.memscope')"
	assert_line --index 0 --regexp ' program=/(usr/)?bin/(dash|bash|sh) '
}

@test "the user's LD_PRELOAD entries are kept, after the recorder" {
	local z=/lib/x86_64-linux-gnu/libz.so.1
	# ms-record inherits it too: an ASan build (SANITIZE=) must not mind
	LD_PRELOAD=$z ASAN_OPTIONS=verify_asan_link_order=0 \
		run --separate-stderr ms-record -q sh -c 'printf "%s\n" "$LD_PRELOAD"'
	assert_success
	assert_output --regexp "^/.*/libmsrecord\\.so:$z\$"
	[ -z "$stderr" ]
}

@test "the installed layout finds PREFIX/lib/memscope/libmsrecord.so" {
	mkdir -p prefix/bin prefix/lib/memscope
	cp "$MS_BUILD/bin/ms-record" prefix/bin/
	cp "$MS_BUILD/lib/libmsrecord.so" prefix/lib/memscope/
	run --separate-stderr prefix/bin/ms-record -o inst.memscope "$PROGS/leak"
	assert_success
	assert_output "leak: 10521 bytes in 12 blocks"
	stderr_matches "$(wrote_re 'inst\.memscope')"
	assert_summary inst.memscope allocs=22 complete=1
	rm prefix/lib/memscope/libmsrecord.so
	run --separate-stderr prefix/bin/ms-record "$PROGS/leak"
	assert_failure 125
	assert_output ""
	stderr_matches "ms-record: cannot find the recorder library: no '.*/prefix/bin/../lib/libmsrecord.so' nor '.*/prefix/bin/../lib/memscope/libmsrecord.so'"
}

# ---- exact figures ----

@test "C: every allocation function, exact figures" {
	run --separate-stderr ms-record "$PROGS/alloc_basic"
	assert_success
	assert_output "alloc_basic: done"
	stderr_matches "$(wrote_re 'alloc_basic\.[0-9]+\.memscope')"
	t=$(one_file 'alloc_basic.*.memscope')
	assert_line_events "$t"
	run msdump "$t"
	# FORMAT.md 5.1: realloc(NULL, n) is one ALLOC of func realloc, old 0;
	# reallocarray is one ALLOC of its own (not also a realloc)
	assert_line --regexp '^alloc .* func=realloc .* size=50 .* old=0x0( |$)'
	[ "$(printf '%s\n' "$output" | grep -c '^alloc .* size=300 ')" -eq 1 ]
	# 14 ALLOC records (4 of the realloc family), 11 frees (realloc(p, 0)
	# included), free(NULL) is no event; see alloc_basic.c.
	assert_summary "$t" allocs=14 frees=11 reallocs=4 bytes_allocated=1011162 \
		peak_bytes=1007072 live_bytes_at_end=0 live_allocs_at_end=0 \
		unknown_frees=0 double_allocs=0 threads=1 complete=1
	run msdump "$t"
	assert_line --regexp '^alloc .* func=posix_memalign .* size=1000 .* align=64'
	assert_line --regexp '^alloc .* func=aligned_alloc .* size=256 .* align=128'
	assert_line --regexp '^alloc .* func=memalign .* size=100 .* align=32'
	assert_line --regexp '^alloc .* func=valloc .* size=5000 '
	assert_line --regexp '^alloc .* func=pvalloc .* size=100 '
	assert_line --regexp '^alloc .* func=calloc .* size=200 '
	assert_line --regexp '^alloc .* func=reallocarray .* size=300 '
	assert_line --regexp '^alloc .* func=malloc .* size=0 '
	assert_line --regexp '^end .*reason=exit status=0 '
}

@test "C++: new/delete, arrays, vector growth, exception caught" {
	run --separate-stderr ms-record "$PROGS/alloc_cxx"
	assert_success
	assert_output "alloc_cxx: caught 42"
	stderr_matches "$(wrote_re 'alloc_cxx\.[0-9]+\.memscope')"
	t=$(one_file 'alloc_cxx.*.memscope')
	# 13 of the program's own + libstdc++'s 72,704-byte emergency pool,
	# never freed outside valgrind; see alloc_cxx.cc.
	assert_summary "$t" allocs=14 frees=13 reallocs=0 bytes_allocated=76932 \
		peak_bytes=76472 live_bytes_at_end=72704 live_allocs_at_end=1 \
		unknown_frees=0 double_allocs=0 complete=1
	run msdump "$t"
	assert_line --regexp '^alloc .* func=operator_new\[\] .* size=32 '
	assert_line --regexp '^alloc .* func=operator_new .* size=4 '
	assert_line --regexp '^alloc .* func=operator_new .* size=512 '
	assert_line --regexp '^free .* func=operator_delete\[\] '
}

@test "a program that leaks: the leak is exact" {
	run --separate-stderr ms-record -o leak.memscope "$PROGS/leak"
	assert_success
	assert_output "leak: 10521 bytes in 12 blocks"
	stderr_matches "$(wrote_re 'leak\.memscope')"
	assert_summary leak.memscope allocs=22 frees=10 bytes_allocated=20521 \
		peak_bytes=20521 live_bytes_at_end=10521 live_allocs_at_end=12 complete=1
}

@test "threads that exit early, cross-thread frees" {
	run --separate-stderr ms-record -o t.memscope "$PROGS/threads_early"
	assert_success
	assert_output "threads_early: 4 threads joined"
	stderr_matches "$(wrote_re 't\.memscope')"
	# The program's own blocks, each allocated once, all freed; glibc's
	# own (TLS vectors, libgcc_s for pthread_exit) come on top.
	assert_summary t.memscope threads=5 unknown_frees=0 double_allocs=0 complete=1
	run msdump t.memscope
	for size in 64 100 200 300 400 1000 2000 3000 4000; do
		[ "$(printf '%s\n' "$output" | grep -c "^alloc .* func=malloc .* size=$size ")" -eq 1 ]
	done
	[ "$(printf '%s\n' "$output" | grep -c '^thread_exit ')" -ge 4 ]
	# The 100..400-byte blocks were freed by main, not by their thread.
	run msdump t.memscope
	addr=$(printf '%s\n' "$output" | sed -n 's/^alloc .*thread=\([0-9]*\) func=malloc addr=\(0x[0-9a-f]*\) size=300 .*/\1 \2/p')
	[ -n "$addr" ]
	freer=$(printf '%s\n' "$output" | grep " addr=${addr#* }" | sed -n 's/^free .*thread=\([0-9]*\) .*/\1/p' | tail -1)
	[ -n "$freer" ]
	[ "$freer" != "${addr% *}" ]
}

@test "100 threads at once" {
	run --separate-stderr ms-record -o t100.memscope "$PROGS/threads100"
	assert_success
	assert_output "threads100: 100 threads joined"
	stderr_matches "$(wrote_re 't100\.memscope')"
	assert_summary t100.memscope threads=101 unknown_frees=0 double_allocs=0 dropped=0 complete=1
	run msdump t100.memscope
	[ "$(printf '%s\n' "$output" | grep -c '^alloc .* func=malloc .* size=1000 ')" -eq 100 ]
	[ "$(printf '%s\n' "$output" | grep -Ec '^alloc .* func=malloc .* size=1[0-9][0-9] ')" -eq 5000 ]
	[ "$(printf '%s\n' "$output" | grep -c '^thread_start ')" -ge 100 ]
}

@test "a program that grows its environment with setenv frees no block the trace missed" {
	run ms-record -q -o env.memscope "$PROGS/setenv_grow"
	assert_success
	assert_summary env.memscope unknown_frees=0 double_allocs=0 complete=1
}

@test "dlopen/dlclose: the module is recorded, loaded and unloaded" {
	run --separate-stderr ms-record -o d.memscope "$PROGS/dlopen_mod"
	assert_success
	assert_output "dlopen_mod: loaded and unloaded libz.so.1"
	stderr_matches "$(wrote_re 'd\.memscope')"
	assert_summary d.memscope unknown_frees=0 double_allocs=0 complete=1
	run msdump d.memscope
	assert_line --regexp '^module .* path=/[^ ]*libz\.so\.1 '
	assert_line --regexp '^module_unload '
	assert_line --regexp '^alloc .* func=malloc .* size=777 '
	assert_line --regexp '^alloc .* func=malloc .* size=888 '
}

@test "argv with newlines, quotes and non-UTF-8 bytes is recorded exactly" {
	ms-record -o a.memscope "$PROGS/argv_alloc" $'a\nb' "it's \"q\"" $'\xff\xfe' '' > out 2> err
	# the program got them unchanged (it writes each back, NUL-terminated)
	printf 'a\nb\0it'"'"'s "q"\0\377\376\0\0' > expected
	cmp out expected
	stderr=$(cat err)
	stderr_matches "$(wrote_re 'a\.memscope')"
	run msdump a.memscope
	assert_success
	expected=' argc=5 argv[0]='"$PROGS"'/argv_alloc argv[1]="a\x0ab" argv[2]="it'"'"'s \"q\"" argv[3]="\xff\xfe" argv[4]="" '
	printf '%s\n' "${lines[0]}" | grep -qF -- "$expected" || {
		printf 'header:   %s\nexpected: %s\n' "${lines[0]}" "$expected" >&2
		return 1
	}
	# one block of strlen + 1 per argument: 4 + 9 + 3 + 1
	assert_summary a.memscope allocs=4 frees=4 bytes_allocated=17 complete=1
}

# ---- every way to end ----

@test "exit status passes through; return from main keeps every event" {
	run --separate-stderr ms-record -o e.memscope "$PROGS/ends" exit
	assert_failure 3
	assert_output "ends: 10 allocations, 5 frees, 500 bytes live"
	stderr_matches "$(wrote_re 'e\.memscope')"
	assert_summary e.memscope allocs=10 frees=5 live_bytes_at_end=500 complete=1
	run msdump e.memscope
	assert_line --regexp '^end .*reason=exit status=3 events=15 '
}

@test "_exit keeps every event" {
	run --separate-stderr ms-record -o e.memscope "$PROGS/ends" _exit
	assert_failure 4
	assert_output "ends: 10 allocations, 5 frees, 500 bytes live"
	stderr_matches "$(wrote_re 'e\.memscope')"
	assert_summary e.memscope allocs=10 frees=5 live_bytes_at_end=500 complete=1
	run msdump e.memscope
	assert_line --regexp '^end .*reason=exit status=4 '
}

@test "abort: 134, the trace ends with the signal" {
	run --separate-stderr ms-record -o e.memscope "$PROGS/ends" abort
	assert_failure 134
	assert_output "ends: 10 allocations, 5 frees, 500 bytes live"
	stderr_matches "$(wrote_re 'e\.memscope')"
	assert_summary e.memscope allocs=10 frees=5 live_bytes_at_end=500 complete=1
	run msdump e.memscope
	assert_line --regexp '^end .*reason=signal status=6 '
}

@test "SIGSEGV: 139, the trace ends with the signal" {
	run --separate-stderr ms-record -o e.memscope "$PROGS/ends" segv
	assert_failure 139
	assert_output "ends: 10 allocations, 5 frees, 500 bytes live"
	stderr_matches "$(wrote_re 'e\.memscope')"
	assert_summary e.memscope allocs=10 frees=5 live_bytes_at_end=500 complete=1
	run msdump e.memscope
	assert_line --regexp '^end .*reason=signal status=11 '
}

@test "raise(SIGKILL): 137, ms-record salvages every event" {
	run --separate-stderr ms-record -o e.memscope "$PROGS/ends" kill
	assert_failure 137
	assert_output "ends: 10 allocations, 5 frees, 500 bytes live"
	stderr_matches "$(wrote_re 'e\.memscope')"
	assert_summary e.memscope allocs=10 frees=5 live_bytes_at_end=500 complete=1
	run msdump e.memscope
	assert_line --regexp '^end .*reason=salvaged status=-1 events=15 '
	# the private spool folder is gone
	[ -z "$(ls -d ms-record.* 2>/dev/null)" ]
}

@test "kill -9 from outside: salvaged, every event kept" {
	ms-record -o e.%p.memscope "$PROGS/ends" wait > out 2> err &
	rec=$! bg=$!
	for i in $(seq 100); do grep -q ready out 2>/dev/null && break; sleep 0.1; done
	grep -q ready out
	prog=$(pgrep -P "$rec")
	kill -9 "$prog"
	status=0
	wait "$rec" || status=$?
	[ "$status" -eq 137 ]
	[ "$(cat out)" = "ends: 10 allocations, 5 frees, 500 bytes live
ready" ]
	stderr=$(cat err)
	stderr_matches "$(wrote_re "e\\.$prog\\.memscope")"
	assert_summary "e.$prog.memscope" allocs=10 frees=5 live_bytes_at_end=500 complete=1
	run msdump "e.$prog.memscope"
	assert_line --regexp '^end .*reason=salvaged '
}

@test "a program killed with SIGKILL by its parent, which then kills itself (timeout -s KILL): both salvaged" {
	# timeout sends its command SIGKILL and then kills itself likewise:
	# ms-record sees timeout gone while churn's four threads are still
	# being torn down, and must wait for it before finishing its trace
	run --separate-stderr ms-record -q -o k.%p.memscope timeout -s KILL 0.3 "$PROGS/churn" 4 100000000
	assert_failure 137
	for t in k.*.memscope; do
		case $t in *.exec0.*) continue ;; esac
		run msdump --summary "$t"
		assert_line complete=1
		run msdump "$t"
		assert_line --regexp '^end .*reason=salvaged '
	done
	[ "$(ls k.*.memscope | grep -vc exec0)" -eq 2 ]
	[ -z "$(ls -d ms-record.* 2>/dev/null)" ]
}

@test "SIGTERM and SIGHUP to ms-record are forwarded; 128+N" {
	# (SIGINT and SIGQUIT cannot be tested from here: a non-interactive
	# shell starts background jobs with them ignored, and ms-record keeps
	# ignored signals ignored, for the program too.)
	for sig in TERM:143 HUP:129; do
		rm -f e.memscope out err
		# default dispositions, even under a runner that ignores SIGHUP
		# (nohup): ms-record keeps ignored signals ignored
		env --default-signal=TERM,HUP ms-record -o e.memscope "$PROGS/ends" wait > out 2> err &
		rec=$! bg=$!
		for i in $(seq 100); do grep -q ready out 2>/dev/null && break; sleep 0.1; done
		grep -q ready out
		kill -"${sig%:*}" "$rec"
		status=0
		wait "$rec" || status=$?
		[ "$status" -eq "${sig#*:}" ]
		[ "$(cat out)" = "ends: 10 allocations, 5 frees, 500 bytes live
ready" ]
		stderr=$(cat err)
		stderr_matches "$(wrote_re 'e\.memscope')"
		# the program died of the signal; whatever the recorder did
		# then, the trace holds every event
		assert_summary e.memscope allocs=10 frees=5 live_bytes_at_end=500 complete=1
	done
}

# ---- processes ----

@test "fork without exec: the child's trace has the child's pid" {
	run --separate-stderr ms-record "$PROGS/forker"
	assert_success
	assert_output --regexp '^child [0-9]+$'
	child=${output#child }
	stderr_matches "ms-record: wrote forker\\.[0-9]+\\.memscope \\([0-9,]+ events, [0-9.]+ (B|KiB)\\) and 1 more trace of this run; try: ms-stats --text forker\\.[0-9]+\\.memscope"
	parent=$(ls forker.*.memscope | grep -v "forker.$child.memscope")
	assert_summary "$parent" allocs=1 frees=1 bytes_allocated=111 live_bytes_at_end=0 complete=1
	assert_summary "forker.$child.memscope" allocs=2 frees=1 bytes_allocated=555 \
		live_bytes_at_end=333 unknown_frees=0 complete=1
	run msdump "forker.$child.memscope"
	assert_line --index 0 --regexp " pid=$child .* flags=0x[0-9a-f]*[13579bdf] "
	# one session for the whole run
	s1=$(msdump "$parent" | sed -n '1s/.* session=\([0-9a-f]*\) .*/\1/p')
	s2=$(msdump "forker.$child.memscope" | sed -n '1s/.* session=\([0-9a-f]*\) .*/\1/p')
	[ -n "$s1" ]
	[ "$s1" = "$s2" ]
}

@test "fork with a fixed -o name: the child writes NAME-minus-.memscope.PID.memscope" {
	run --separate-stderr ms-record -o f.memscope "$PROGS/forker"
	assert_success
	child=${output#child }
	stderr_matches "ms-record: wrote f\\.memscope \\([0-9,]+ events, [0-9.]+ (B|KiB)\\) and 1 more trace of this run; try: ms-stats --text f\\.memscope"
	assert_summary f.memscope allocs=1 frees=1 complete=1
	assert_summary "f.$child.memscope" allocs=2 frees=1 live_bytes_at_end=333 complete=1
}

@test "--no-follow: the forked child writes nothing" {
	run --separate-stderr ms-record --no-follow "$PROGS/forker"
	assert_success
	child=${output#child }
	stderr_matches "$(wrote_re 'forker\.[0-9]+\.memscope')"
	[ ! -e "forker.$child.memscope" ]
	[ "$(ls forker.*.memscope | wc -l)" -eq 1 ]
}

@test "--no-follow: children of system() and popen() write nothing either" {
	# followed (the default), each shell writes a trace of its own
	run --separate-stderr ms-record -o f.%p.memscope "$PROGS/spawns"
	assert_success
	assert_line "spawns: system 0, popen 0"
	[ "$(ls f.*.memscope | wc -l)" -eq 3 ]
	# libc spawns these inside itself, past the recorder's hooks
	run --separate-stderr ms-record --no-follow -o n.%p.memscope "$PROGS/spawns"
	assert_success
	assert_output "from system
from popen
spawns: system 0, popen 0"
	[ "$(ls n.*.memscope | wc -l)" -eq 1 ]
	# as valgrind counts them: malloc(100), popen's FILE and buffer, system's
	# argv, stdout's buffer (live at the end)
	assert_summary n.*.memscope allocs=5 frees=4 bytes_allocated=8804 complete=1
	# by hand, with the environment's setting
	MEMSCOPE_FOLLOW=0 MEMSCOPE_OUTPUT="$PWD/h.%p.memscope" LD_PRELOAD="$MS_BUILD/lib/libmsrecord.so" \
		"$PROGS/spawns" > /dev/null
	[ "$(ls h.*.memscope | wc -l)" -eq 1 ]
}

@test "the disk fills up (a file size limit): one line, the program runs on unrecorded" {
	# before, the program's threads waited for a writer that had stopped
	run --separate-stderr timeout 60 ms-record -o fl.memscope "$PROGS/fsize_limit"
	assert_success
	assert_output "fsize_limit: done"
	[[ "$stderr" == *"memscope: cannot write '$PWD/fl.memscope': File too large; recording stops, the trace ends there"* ]]
	# the trace holds its whole chunks, and says it was cut short
	run --separate-stderr msdump --summary fl.memscope
	assert_line complete=0
	[ "$(sumval fl.memscope events)" -gt 1000 ]
	# nothing left for a salvage to write into the same disk
	[ -z "$(ls "$TMPDIR"/ms-record.* 2>/dev/null)" ]
}

@test "the spool's filesystem fills up: recording goes on in memory, the trace is whole" {
	mkdir small
	mount -t tmpfs -o size=4m tmpfs small 2>/dev/null || skip "cannot mount a tmpfs here"
	# the spool is sparse: a write to a page the full filesystem cannot
	# back faults (SIGBUS), which killed the program before
	run --separate-stderr env TMPDIR="$PWD/small" ms-record -o s.memscope "$PROGS/churn" 4 200000
	umount small
	assert_success
	assert_output "churn: 4 threads, 800000 pairs"
	[[ "$stderr" == *"memscope: the spool's filesystem is full: recording goes on in memory"* ]]
	assert_summary s.memscope allocs=800007 complete=1 unknown_frees=0
}

@test "exec in the same pid: the new image owns the name" {
	run --separate-stderr ms-record "$PROGS/exec_self"
	assert_success
	assert_output --regexp '^second image, pid [0-9]+$'
	pid=${output##* }
	stderr_matches "$(wrote_re "exec_self\\.$pid\\.memscope")"
	assert_summary "exec_self.$pid.memscope" allocs=1 frees=1 bytes_allocated=4321 complete=1
	run msdump "exec_self.$pid.memscope"
	assert_line --index 0 --regexp ' exec_generation=1 '
	# spool.h: the image that exec'd is renamed .exec<its generation>
	assert_summary "exec_self.$pid.exec0.memscope" allocs=1 frees=0 live_bytes_at_end=1234 complete=1
	run msdump "exec_self.$pid.exec0.memscope"
	assert_line --regexp '^end .*reason=exec '
}

@test "a shell wrapper that execs the real program" {
	printf '#!/bin/sh\nexec "%s" "$@"\n' "$PROGS/leak" > wrapper
	chmod +x wrapper
	run --separate-stderr ms-record ./wrapper
	assert_success
	assert_output "leak: 10521 bytes in 12 blocks"
	stderr_matches "$(wrote_re 'wrapper\.[0-9]+\.memscope')"
	t=$(ls wrapper.*.memscope | grep -v exec)
	assert_summary "$t" allocs=22 frees=10 live_bytes_at_end=10521 complete=1
	one_file 'wrapper.*.exec0.memscope'
}

@test "exec of a static program: the last traced image is the one reported" {
	run --separate-stderr ms-record sh -c 'exec /sbin/ldconfig -p > /dev/null'
	assert_success
	assert_output ""
	# sh's trace was renamed at the exec; ldconfig itself records nothing
	stderr_matches "$(wrote_re 'sh\.[0-9]+\.exec0\.memscope')"
	t=$(one_file 'sh.*.exec0.memscope')
	assert_summary "$t" complete=1
	run msdump "$t"
	assert_line --regexp '^end .*reason=exec '
	[ -z "$(ls sh.*.memscope | grep -v exec0)" ]
}

@test "a program with a malloc of its own runs; its trace is flagged and a warning names it" {
	run --separate-stderr ms-record "$PROGS/own_malloc"
	assert_success
	assert_output --regexp '^own_malloc: [0-9]+ calls$'
	t=$(one_file 'own_malloc.*.memscope')
	local warn="ms-record: warning: '$t': $PROGS/own_malloc: malloc and free went to an allocator ahead of the recorder (the program's own, or one preloaded first): those calls are not in the trace"
	[ "${stderr%%$'\n'*}" = "$warn" ] || { printf 'stderr: %s\n' "$stderr" >&2; false; }
	[[ "${stderr#*$'\n'}" =~ ^$(wrote_re 'own_malloc\.[0-9]+\.memscope')$ ]]
	assert_summary "$t" allocs=0 frees=0 complete=1
	run msdump "$t"
	assert_line --index 0 --regexp ' flags=0x8 '
	run ms-stats -s integrity "$t"
	assert_success
	assert_output --partial '"own_malloc":	true'
	run ms-stats --text "$t"
	assert_output --partial "malloc and free went to an allocator ahead of the recorder"
	# an ordinary program's trace is not flagged
	run --separate-stderr ms-record "$PROGS/leak"
	assert_success
	stderr_matches "$(wrote_re 'leak\.[0-9]+\.memscope')"
	run ms-stats -s integrity "$(one_file 'leak.*.memscope')"
	assert_output --partial '"own_malloc":	false'
}

@test "a program whose own malloc forwards to the next one is recorded, not flagged" {
	run --separate-stderr ms-record "$PROGS/malloc_forward"
	assert_success
	assert_output --regexp '^malloc_forward: [0-9]+ calls forwarded$'
	stderr_matches "$(wrote_re 'malloc_forward\.[0-9]+\.memscope')"
	t=$(one_file 'malloc_forward.*.memscope')
	run msdump "$t"
	assert_line --index 0 --regexp ' flags=0x0 '
	assert_line --regexp '^alloc .* func=malloc .* size=100 '
	assert_line --regexp '^alloc .* func=malloc .* size=200 '
}

@test "a position-dependent program that takes malloc's address is not taken for one with its own" {
	# the premise: malloc is undefined in it, with its PLT entry as value
	run readelf -W --dyn-syms "$PROGS/malloc_pointer"
	assert_line --regexp ' 0*[1-9a-f][0-9a-f]* +0 FUNC +GLOBAL +DEFAULT +UND malloc'
	run --separate-stderr ms-record "$PROGS/malloc_pointer"
	assert_success
	assert_output "malloc_pointer: done"
	stderr_matches "$(wrote_re 'malloc_pointer\.[0-9]+\.memscope')"
	t=$(one_file 'malloc_pointer.*.memscope')
	assert_summary "$t" allocs=3 frees=2 complete=1
	run msdump "$t"
	assert_line --index 0 --regexp ' flags=0x0 '
}

@test "a daemon that closes every fd and chdirs to / still writes its trace" {
	run --separate-stderr ms-record "$PROGS/daemon" "$SCRATCH/daemon.pid"
	assert_success
	assert_output ""
	# ms-record returns when the first process exits; the daemon may still run.
	still='ms-record: warning: processes of this run are still running: each finishes its own trace when it exits'
	stderr_matches "($still
)?$(wrote_re 'daemon\.[0-9]+\.memscope')"
	for i in $(seq 100); do [ -s daemon.pid ] && break; sleep 0.1; done
	dpid=$(cat daemon.pid)
	for i in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$dpid" 2>/dev/null
	assert_summary "daemon.$dpid.memscope" allocs=5 frees=2 bytes_allocated=5000 \
		live_bytes_at_end=3000 complete=1
}

@test "malloc inside a signal handler: no deadlock, nothing lost silently" {
	run --separate-stderr timeout 120 ms-record -o s.memscope "$PROGS/sighandler"
	assert_success
	assert_output --regexp '^[0-9]+ pairs, handler ran 200 times$'
	pairs=${output%% pairs*}
	stderr_matches "$(wrote_re 's\.memscope')"
	events=$(sumval s.memscope events)
	dropped=$(sumval s.memscope dropped)
	[ $((events + dropped)) -eq $((2 * (pairs + 200))) ]
	if [ "$dropped" -eq 0 ]; then
		assert_summary s.memscope allocs=$((pairs + 200)) frees=$((pairs + 200)) \
			bytes_allocated=$((pairs * 32 + 200 * 48)) live_bytes_at_end=0 complete=1
	fi
}

# ---- options reach the recorder ----

@test "--unwind, --stack-depth, --sample-rate, --drop land in the header" {
	run --separate-stderr ms-record -q -o n.memscope --unwind none "$PROGS/leak"
	assert_success
	[ -z "$stderr" ]
	run msdump n.memscope
	assert_line --index 0 --regexp ' unwinder=0 '
	assert_summary n.memscope stacks=0 allocs=22
	run --separate-stderr ms-record -q -o f.memscope --unwind fp --stack-depth 7 "$PROGS/leak"
	assert_success
	run msdump f.memscope
	assert_line --index 0 --regexp ' unwinder=1 stack_depth=7 '
	run --separate-stderr ms-record -q -o d.memscope "$PROGS/leak"
	assert_success
	run msdump d.memscope
	assert_line --index 0 --regexp ' unwinder=2 '
	run --separate-stderr ms-record -q -o s.memscope --sample-rate 0.5 --drop "$PROGS/leak"
	assert_success
	run msdump s.memscope
	assert_line --index 0 --regexp ' sample_rate_ppm=500000 .* flags=0x[0-9a-f]*[4567cdef] '
}

@test "--rss-interval and --max-overhead run and record counters" {
	run --separate-stderr ms-record -q -o r.memscope --rss-interval 1 --max-overhead 1 "$PROGS/churn" 1 300000
	assert_success
	assert_output "churn: 1 threads, 300000 pairs"
	[ -z "$stderr" ]
	# 300,000 pairs + 2 callocs + stdout's buffer (one thread: no worker
	# thread, no TLS vector)
	assert_summary r.memscope allocs=300003 frees=300002 complete=1
	run msdump r.memscope
	assert_line --regexp '^counters .* rss=[1-9]'
}

@test "a run shorter than the sampling interval still ends with its memory figures" {
	# the last COUNTERS record comes just before END, whatever the interval
	run --separate-stderr ms-record -q -o r.memscope --rss-interval 60000 "$PROGS/leak"
	assert_success
	run msdump r.memscope
	assert_line --regexp '^counters .* rss=[1-9]'
	run bash -c "msdump r.memscope | tail -2 | head -1"
	assert_output --regexp '^counters '
	run ms-stats --text r.memscope
	refute_output --partial 'max RSS not recorded'
	# and none without sampling
	ms-record -q -o n.memscope --rss-interval 0 "$PROGS/leak"
	run msdump n.memscope
	refute_line --regexp '^counters '
}

@test "--sample-rate 0.5 keeps about half the allocations" {
	run --separate-stderr ms-record -q -o s.memscope --sample-rate 0.5 "$PROGS/churn" 1 300000
	assert_success
	assert_output "churn: 1 threads, 300000 pairs"
	[ -z "$stderr" ]
	# binomial(300000, 0.5): standard deviation 274; allow 6 of them
	allocs=$(sumval s.memscope allocs)
	[ "$allocs" -gt 148350 ]
	[ "$allocs" -lt 151650 ]
	run msdump s.memscope
	assert_line --index 0 --regexp ' sample_rate_ppm=500000 '
}

@test "--max-overhead 1 --drop, 8 threads: every event written or counted" {
	# the same run without --drop gives the count to account for
	run --separate-stderr ms-record -q -o all.memscope --max-overhead 1 "$PROGS/churn" 8 200000
	assert_success
	assert_output "churn: 8 threads, 1600000 pairs"
	[ -z "$stderr" ]
	assert_summary all.memscope allocs=1600011 dropped=0 complete=1
	want=$(sumval all.memscope events)
	run --separate-stderr ms-record -q -o drop.memscope --max-overhead 1 --drop "$PROGS/churn" 8 200000
	assert_success
	[ -z "$stderr" ]
	got=$(( $(sumval drop.memscope events) + $(sumval drop.memscope dropped) ))
	# glibc frees a few more or fewer of its thread vectors from run to
	# run (its stack cache): allow 16 events either way, no more
	echo "events + dropped = $got, without --drop: $want" >&2
	[ "$got" -ge $((want - 16)) ]
	[ "$got" -le $((want + 16)) ]
	# a thread's exit is never dropped, full buffers or not
	[ "$(msdump drop.memscope | grep -c '^thread_exit ')" -eq 8 ]
}

@test "-o with %p, relative to the current folder; -q prints nothing" {
	mkdir sub
	run --separate-stderr ms-record -o sub/run.%p.memscope "$PROGS/leak"
	assert_success
	stderr_matches "$(wrote_re 'sub/run\.[0-9]+\.memscope')"
	one_file 'sub/run.*.memscope'
	run --separate-stderr ms-record -q "$PROGS/leak"
	assert_success
	assert_output "leak: 10521 bytes in 12 blocks"
	[ -z "$stderr" ]
	one_file 'leak.*.memscope'
}

# ---- real programs: same output with and without the recorder ----
# (REC_OPTS: more options for ms-record, such as --unwind fp)

same_output() {
	local plain traced
	plain=$("$@" 2>&1; echo "status $?")
	# shellcheck disable=SC2086 # REC_OPTS: options for ms-record, split
	traced=$(ms-record -q ${REC_OPTS:-} -o real.%p.memscope "$@" 2>&1; echo "status $?")
	[ "$plain" = "$traced" ] || {
		printf 'without: %s\nwith:    %s\n' "$plain" "$traced" >&2
		return 1
	}
	[ -n "$(ls real.*.memscope)" ]
	for f in real.*.memscope; do
		[ "$(sumval "$f" complete)" = 1 ] || { echo "$f incomplete" >&2; return 1; }
	done
}

@test "real program: /usr/bin/python3 -c" {
	same_output /usr/bin/python3 -c 'import json, sys; print(json.dumps({"a": [1, 2, 3]}), sum(range(10**5)))'
	[ "$(sumval "$(ls real.*.memscope | head -1)" allocs)" -gt 1000 ]
}

@test "real program: the pyenv shim python3 (a bash script that execs)" {
	command -v python3 >/dev/null || skip "no python3 on PATH"
	same_output python3 -c 'print("hello from", "python")'
	[ -n "$(ls real.*.exec*.memscope 2>/dev/null)" ] || [ "$(head -c2 "$(command -v python3)")" != '#!' ]
}

@test "real program: sqlite3" {
	same_output sqlite3 :memory: 'create table t(a); insert into t values (1), (2), (3); select sum(a), count(*) from t;'
}

@test "real program: perl" {
	same_output perl -e 'my %h = map { $_ => $_ * 2 } 1..10000; print scalar(keys %h), "\n";'
}

@test "real program: gcc compiles a small file" {
	printf '#include <stdio.h>\nint main(void) { puts("built"); return 0; }\n' > hello.c
	same_output gcc -O1 -o hello hello.c
	run ./hello
	assert_output built
	[ "$(ls real.*.memscope | wc -l)" -ge 3 ]
}

@test "real program: gcc with each unwinder (as keeps any number in rbp)" {
	printf '#include <stdio.h>\nint main(void) { puts("built"); return 0; }\n' > hello.c
	for u in fp none; do
		rm -f real.*.memscope hello
		REC_OPTS="--unwind $u" same_output gcc -O1 -o hello hello.c
		run ./hello
		assert_output built
	done
}

@test "real program: git --version and git log" {
	same_output git --version
	rm -f real.*.memscope
	git init -q repo
	git -C repo -c user.name=t -c user.email=t@e commit -q --allow-empty -m first
	git -C repo -c user.name=t -c user.email=t@e commit -q --allow-empty -m second
	same_output git -C repo log --format=%s
}

@test "an address-space limit too low for the recorder's buffers: one line naming --max-overhead; a smaller one records" {
	# the spool is some 176 MiB of address space at the default 64 MiB
	# overhead, 120 at 8; leak itself needs about 20
	run --separate-stderr bash -c 'ulimit -v 160000 && exec "$@"' - ms-record -o l.memscope "$PROGS/leak"
	assert_failure 125
	assert_output "leak: 10521 bytes in 12 blocks"
	[[ "$stderr" == *"memscope: cannot map '"*"l.memscope.spool' (176 MiB): Cannot allocate memory; a smaller --max-overhead (MEMSCOPE_MAX_OVERHEAD, now 64 MiB) needs less address space"* ]] || fail "$stderr"
	run --separate-stderr bash -c 'ulimit -v 160000 && exec "$@"' - ms-record -q --max-overhead 8 -o l.memscope "$PROGS/leak"
	assert_success
	assert_summary l.memscope live_bytes_at_end=10521 complete=1
}

@test "a folder that takes no files is refused before the program runs" {
	cd /proc
	run --separate-stderr ms-record "$PROGS/leak"
	assert_failure 125
	assert_output ""
	[ "$stderr" = "ms-record: cannot write a trace in '/proc': No such file or directory (choose another place with -o FILE)" ] || fail "$stderr"
	run --separate-stderr ms-record -o /dev/full "$PROGS/leak"
	assert_failure 125
	[ "$stderr" = "ms-record: cannot write '/dev/full': not a regular file" ] || fail "$stderr"
}

@test "other programs of a run are named after themselves; -o names them all" {
	cat > wrap.sh <<'SH'
#!/bin/sh
env true
exec "$1"
SH
	chmod +x wrap.sh
	run --separate-stderr ms-record ./wrap.sh "$PROGS/leak"
	assert_success
	local envs mains
	envs=$(ls env.*.memscope 2>/dev/null | wc -l)
	[ "$envs" -ge 1 ] || fail "no env.PID.memscope among: $(ls)"
	mains=$(ls wrap.sh.*.memscope | grep -v '\.exec[0-9]*\.memscope$')
	[ "$(printf '%s\n' "$mains" | wc -l)" -eq 1 ] || fail "main traces: $mains"
	msdump "$mains" | head -1 | grep -q "program=$PROGS/leak" || fail "$mains is not leak's trace"
	rm -f ./*.memscope
	run --separate-stderr ms-record -o 'run.%p.memscope' ./wrap.sh "$PROGS/leak"
	assert_success
	[ -z "$(ls env.*.memscope 2>/dev/null)" ] || fail "-o ignored: $(ls)"
}

@test "a library set up before the recorder: its many early calls and its exit handler's frees are in the trace" {
	# A library the program links is set up before the preloaded
	# recorder: its calls are kept until the recorder starts (clang's
	# LLVM made 4,446; past 4,096 they were lost), and its exit handlers
	# run after the recorder's own library destructor: a trace ended
	# there lost their frees (LLVM's: some 1,900, reported live at exit).
	cat > early.c <<'C'
#include <stdlib.h>
static void *blocks[100];
static void release(void) { for (int i = 0; i < 100; i++) free(blocks[i]); }
__attribute__((constructor)) static void grab(void)
{
	for (int i = 0; i < 5000; i++)
		free(malloc(16));
	for (int i = 0; i < 100; i++)
		blocks[i] = malloc(100 + i);
	atexit(release);
}
C
	printf 'int main(void) { return 0; }\n' > main.c
	gcc -shared -fPIC -o libearly.so early.c
	gcc -o early main.c -Wl,--no-as-needed -L. -learly -Wl,-rpath,"$PWD"
	run --separate-stderr ms-record -q -o early.memscope ./early
	assert_success
	[ -z "$stderr" ] || fail "$stderr"
	assert_summary early.memscope live_allocs_at_end=0 live_bytes_at_end=0 unknown_frees=0 \
		double_allocs=0 complete=1
	[ "$(sumval early.memscope frees)" -ge 5100 ]
	[ "$(sumval early.memscope allocs)" -ge 5100 ]
}
