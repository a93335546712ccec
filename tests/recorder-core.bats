#!/usr/bin/env bats
# The recorder library itself (libmsrecord.so), preloaded by hand the way
# people without the launcher use it: cross-thread order under address
# reuse, back-pressure and drop mode, signal handlers, salvage of a
# SIGKILLed process through memscope_salvage(), annotations, the symbols
# the library exports, and the settings it reads from MEMSCOPE_*.

load test_helper

LIB="$MS_BUILD/lib/libmsrecord.so"

setup() {
	setup_scratch
	unset MEMSCOPE_OUTPUT MEMSCOPE_SAMPLE_RATE MEMSCOPE_UNWIND MEMSCOPE_STACK_DEPTH \
		MEMSCOPE_MAX_OVERHEAD MEMSCOPE_DROP MEMSCOPE_RSS_INTERVAL MEMSCOPE_FOLLOW \
		MEMSCOPE_SESSION MEMSCOPE_SPOOL_DIR MEMSCOPE_LOG MEMSCOPE_SALVAGE \
		MEMSCOPE_PID0 MEMSCOPE_EXEC_GENERATION MEMSCOPE_CLOCK
}

# A test that failed half-way must not leave a paused program holding
# bats's output open: bats would then wait for it forever.
teardown() {
	if [ -n "${bg:-}" ] && kill -0 "$bg" 2>/dev/null; then
		pkill -9 -P "$bg" 2>/dev/null
		kill -9 "$bg" 2>/dev/null
	fi
	true
}

# rec [VAR=value...] PROGRAM ARGS: run PROGRAM with the library preloaded,
# the trace going to $SCRATCH/t.PID.memscope.
rec() {
	env LD_PRELOAD="$LIB" MEMSCOPE_OUTPUT="$SCRATCH/t.%p.memscope" "$@"
}

the_trace() {
	local f=("$SCRATCH"/t.*.memscope)
	[ -f "${f[0]}" ] || { echo "no trace in $SCRATCH" >&2; return 1; }
	printf '%s\n' "${f[0]}"
}

sumval() {
	msdump --summary "$1" | sed -n "s/^$2=//p"
}

# Program-owned figures of xthread_reuse: blocks of 1000..2999 bytes.
# Prints "allocs frees live_bytes cross" where cross counts allocations of
# an address last freed by another thread (the case that needs ordering).
reuse_figures() {
	msdump "$1" | awk '
	function val(k,   i) { for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
	$1 == "alloc" { a = val("addr"); s = val("size") + 0
		if (s >= 1000 && s < 3000) { n++; live[a] = s; if ((a in by) && by[a] != val("thread")) cross++ } }
	$1 == "free" { a = val("addr"); by[a] = val("thread")
		if (a in live) { f++; delete live[a] } }
	END { b = 0; for (a in live) b += live[a]; printf "%d %d %d %d\n", n, f, b, cross }'
}

@test "exports: the hooks and memscope_salvage, and no unwinder symbol" {
	run nm -D --defined-only "$LIB"
	assert_success
	for sym in malloc free calloc realloc reallocarray posix_memalign aligned_alloc \
		memalign valloc pvalloc _Znwm _ZdlPv _ZnamSt11align_val_t \
		_ZdaPvmSt11align_val_t memscope_salvage memscope_label_v1 \
		memscope_task_begin_v1 memscope_task_end_v1; do
		assert_line --regexp " T $sym\$"
	done
	# libunwind's _Unwind_* would replace libgcc's unwinder in the program
	refute_line --regexp ' _Unwind_|unw_|backtrace'
}

@test "cross-thread frees with constant address reuse: causal order, nothing lost" {
	run rec "$PROGS/xthread_reuse" 8 20000
	assert_success
	assert_output "8 threads, 160000 blocks passed"
	t=$(the_trace)
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	[ "$(sumval "$t" double_allocs)" = 0 ]
	[ "$(sumval "$t" complete)" = 1 ]
	[ "$(sumval "$t" dropped)" = 0 ]
	read -r n f live cross < <(reuse_figures "$t")
	[ "$n" = $((8 * 20001)) ]
	[ "$f" = $((8 * 20001 - 1)) ]
	[ "$live" = 2000 ]
	# the test is only worth something if addresses did move across threads
	[ "$cross" -gt 1000 ]
}

@test "cross-thread order holds with every unwinder" {
	for u in none fp; do
		rm -f "$SCRATCH"/t.*.memscope
		run rec MEMSCOPE_UNWIND=$u "$PROGS/xthread_reuse" 4 10000
		assert_success
		t=$(the_trace)
		[ "$(sumval "$t" unknown_frees)" = 0 ]
		[ "$(sumval "$t" double_allocs)" = 0 ]
		read -r n f live cross < <(reuse_figures "$t")
		[ "$n" = 40004 ]
		[ "$f" = 40003 ]
		[ "$live" = 2000 ]
	done
}

@test "a small overhead bound makes threads wait, never drop" {
	run rec MEMSCOPE_MAX_OVERHEAD=1 "$PROGS/xthread_reuse" 4 20000
	assert_success
	t=$(the_trace)
	[ "$(sumval "$t" dropped)" = 0 ]
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	read -r n f live cross < <(reuse_figures "$t")
	[ "$n" = 80004 ]
	[ "$f" = 80003 ]
	[ "$live" = 2000 ]
}

@test "drop mode: every event is written or counted as dropped" {
	run rec MEMSCOPE_UNWIND=none "$PROGS/churn" 1 300000
	assert_success
	t=$(the_trace)
	total=$(sumval "$t" events)
	rm -f "$t"
	run rec MEMSCOPE_UNWIND=none MEMSCOPE_DROP=1 MEMSCOPE_MAX_OVERHEAD=1 "$PROGS/churn" 1 300000
	assert_success
	t=$(the_trace)
	run msdump "$t"
	assert_line --regexp '^header .*flags=0x4 '
	end=$(msdump "$t" | grep '^end ')
	ev=$(sed 's/.* events=\([0-9]*\).*/\1/' <<<"$end")
	dr=$(sed 's/.* dropped=\([0-9]*\).*/\1/' <<<"$end")
	counted=$(msdump "$t" | awk '$1 == "dropped" { for (i = 2; i <= NF; i++) if ($i ~ /^events=/) s += substr($i, 8) } END { print s + 0 }')
	[ "$dr" = "$counted" ]
	[ $((ev + dr)) = "$total" ]
}

@test "malloc in a signal handler that interrupts the recorder: exact, no drops" {
	run rec "$PROGS/sighandler"
	assert_success
	m=$(sed -n 's/^\([0-9]*\) pairs, handler ran \([0-9]*\) times$/\1/p' <<<"$output")
	h=$(sed -n 's/^\([0-9]*\) pairs, handler ran \([0-9]*\) times$/\2/p' <<<"$output")
	t=$(the_trace)
	[ "$(sumval "$t" dropped)" = 0 ]
	run msdump "$t"
	[ "$(grep -c '^alloc .* size=32 ' <<<"$output")" = "$m" ]
	[ "$(grep -c '^alloc .* size=48 ' <<<"$output")" = "$h" ]
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	[ "$(sumval "$t" live_allocs_at_end)" = 0 ]
}

salvage() { # SPOOL -> prints "rc err"
	MEMSCOPE_SALVAGE=1 /usr/bin/python3 - "$LIB" "$1" <<'EOF'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_LOCAL)
err = ctypes.create_string_buffer(512)
rc = lib.memscope_salvage(sys.argv[2].encode(), err, len(err))
print(rc, err.value.decode())
EOF
}

@test "SIGKILL: the spool survives and memscope_salvage finishes the trace" {
	mkdir spool
	run rec MEMSCOPE_SPOOL_DIR="$SCRATCH/spool" "$PROGS/ends" kill
	[ "$status" -eq 137 ]
	t=$(the_trace)
	s=("$SCRATCH"/spool/*.spool)
	[ -f "${s[0]}" ]
	[ "$(sumval "$t" complete)" = 0 ]
	run salvage "${s[0]}"
	assert_output --regexp '^0 '
	[ ! -e "${s[0]}" ]
	[ "$(sumval "$t" allocs)" = 10 ]
	[ "$(sumval "$t" frees)" = 5 ]
	[ "$(sumval "$t" live_bytes_at_end)" = 500 ]
	[ "$(sumval "$t" complete)" = 1 ]
	run msdump "$t"
	assert_line --regexp '^end .*reason=salvaged status=-1 events=15 dropped=0$'
}

@test "salvage leaves a live process's spool alone, and reports bad spools" {
	mkdir spool
	rec MEMSCOPE_SPOOL_DIR="$SCRATCH/spool" "$PROGS/ends" wait > out 3>&- &
	bg=$!
	for i in $(seq 100); do grep -q ready out 2>/dev/null && break; sleep 0.1; done
	grep -q ready out
	s=("$SCRATCH"/spool/*.spool)
	[ -f "${s[0]}" ]
	pid=$(sed 's/.*t\.\([0-9]*\)\.memscope\.spool$/\1/' <<<"${s[0]}")
	run salvage "${s[0]}"
	assert_output --regexp "^1 .*process $pid is still running"
	kill -9 $pid
	wait $pid || true
	run salvage "${s[0]}"
	assert_output --regexp '^0 '
	[ "$(sumval "$(the_trace)" allocs)" = 10 ]
	run salvage "$SCRATCH/nope.spool"
	assert_output "-1 cannot open '$SCRATCH/nope.spool': No such file or directory"
	echo "not a spool at all, just some text that is long enough" > bad.spool
	run salvage bad.spool
	assert_output --regexp "^-1 'bad.spool' is not a memscope spool"
}

@test "a cleanly finished process removes its own spool" {
	mkdir spool
	run rec MEMSCOPE_SPOOL_DIR="$SCRATCH/spool" "$PROGS/ends" exit
	[ "$status" -eq 3 ]
	run ls spool
	assert_output ""
	run msdump "$(the_trace)"
	assert_line --regexp '^end .*reason=exit status=3 '
}

@test "annotations: labels, nested tasks, thread names (also by prctl); no-ops without the recorder" {
	run "$PROGS/xthread_tasks"
	assert_success
	assert_output "tasks: 4 workers, task ids nonzero: 0"
	run rec "$PROGS/xthread_tasks"
	assert_success
	assert_output "tasks: 4 workers, task ids nonzero: 4"
	run msdump "$(the_trace)"
	assert_line --regexp '^label .* name=buf type="struct buffer"$'
	[ "$(grep -c '^label .* name=block type=char\[\]$' <<<"$output")" = 4 ]
	[ "$(grep -c '^task_begin ' <<<"$output")" = 4 ]
	[ "$(grep -c '^task_end ' <<<"$output")" = 4 ]
	for n in 0 1 2 3; do
		assert_line --regexp "^thread_name .* name=worker-$n\$"
	done
	assert_line --regexp '^thread_name .* name=renamed-3$'
	# prctl(PR_SET_NAME), as the kernel keeps it (15 bytes)
	assert_line --regexp '^thread_name .* thread=1 name=main-by-prctl-a$'
	[ "$(grep -c '^thread_exit ' <<<"$output")" = 4 ]
	# a label names an address the trace allocated, on the labelling thread
	lab=$(grep -m1 'name=buf ' <<<"$output" | sed 's/.* addr=\([^ ]*\).*/\1/')
	assert_line --regexp "^alloc .* thread=1 func=malloc addr=$lab size=64 "
}

@test "C++ exceptions still unwind under the recorder (libunwind kept local)" {
	run rec "$PROGS/alloc_cxx"
	assert_success
	assert_output --partial "caught 42"
	t=$(the_trace)
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	run msdump "$t"
	assert_line --regexp '^alloc .* func=operator_new\[\] '
	assert_line --regexp '^free .* func=operator_delete '
}

# Depth of the first allocation's stack, and how many of its frames lie in
# the program's own module.
stack_shape() {
	msdump "$1" | /usr/bin/python3 -c '
import sys
prog = sys.argv[1]
par, ip, base, depth, own = {}, {}, None, 0, 0
for line in sys.stdin:
	f = line.split()
	if not f:
		continue
	kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
	if f[0] == "module" and kv.get("path") == prog:
		base = int(kv["base"], 16)
	elif f[0] == "stack":
		par[kv["id"]] = kv["parent"]
		ip[kv["id"]] = int(kv["ip"], 16)
	elif f[0] == "alloc":
		s = kv["stack"]
		while s != "0":
			depth += 1
			own += base is not None and base <= ip[s] < base + 65536
			s = par[s]
		break
print(depth, own)' "$2"
}

@test "unwinders: dwarf and fp reach main, none records no stack" {
	for u in dwarf fp; do
		rm -f "$SCRATCH"/t.*.memscope
		run rec MEMSCOPE_UNWIND=$u "$PROGS/leak"
		assert_success
		t=$(the_trace)
		run msdump "$t"
		assert_line --regexp "^header .*unwinder=$([ $u = fp ] && echo 1 || echo 2) "
		read -r depth own < <(stack_shape "$t" "$PROGS/leak")
		# DWARF: main and _start (through libc); frame pointers: main,
		# where glibc's frames without a frame pointer end the walk
		[ "$own" -ge $([ $u = fp ] && echo 1 || echo 2) ]
		[ "$depth" -ge "$own" ]
		run msdump "$t"
		lib=$(grep -m1 'path=.*libmsrecord.so' <<<"$output" | sed 's/.* base=\(0x[0-9a-f]*\).*/\1/')
		[ -n "$lib" ]
	done
	rm -f "$SCRATCH"/t.*.memscope
	run rec MEMSCOPE_UNWIND=none "$PROGS/leak"
	t=$(the_trace)
	run msdump "$t"
	refute_line --regexp '^stack '
	refute_line --regexp '^(alloc|free) .* stack=[1-9]'
}

@test "stack walks stop at any rbp, on any stack, and never fault" {
	# binutils' as keeps a number near the top of the address space in
	# rbp: the frame pointer walk read there and crashed it. Under
	# `ulimit -s unlimited` glibc's bound of the main thread's stack lies
	# at the heap, below the coroutine's and the alternate stack.
	local u t
	for u in fp dwarf none fp-unlimited; do
		rm -f "$SCRATCH"/t.*.memscope
		if [ $u = fp-unlimited ]; then
			run bash -c 'ulimit -s unlimited && exec "$@"' - \
				env LD_PRELOAD="$LIB" MEMSCOPE_OUTPUT="$SCRATCH/t.%p.memscope" \
				MEMSCOPE_UNWIND=fp "$PROGS/bad_rbp" 100
		else
			run rec MEMSCOPE_UNWIND=$u "$PROGS/bad_rbp" 100
		fi
		assert_success
		assert_output "bad_rbp: 704 allocations"
		t=$(the_trace)
		# and every allocation is in the trace (the program's own 68 too)
		[ "$(sumval "$t" allocs)" -eq 772 ]
		[ "$(sumval "$t" frees)" -eq 769 ]
		[ "$(sumval "$t" complete)" -eq 1 ]
		cp "$t" "$SCRATCH/$u.memscope"
	done
	# frame pointers from the alternate signal stack lead back through the
	# thread's stack to main; on the coroutine's, the walk stays on its page
	run ms-stats "$SCRATCH/fp.memscope"
	assert_success
	printf '%s' "$output" | jq -r '.sites | .. | objects | select(has("stack")) |
		[.stack[].function] | join(" < ")' > "$SCRATCH/stacks"
	grep -x 'allocate_here < on_signal < .* < main' "$SCRATCH/stacks"
	grep '^allocate_here < coroutine' "$SCRATCH/stacks"
}

@test "counters every MEMSCOPE_RSS_INTERVAL ms with glibc arena figures; 0 turns them off" {
	run rec MEMSCOPE_RSS_INTERVAL=1 "$PROGS/threads100"
	assert_success
	run msdump "$(the_trace)"
	assert_line --regexp '^counters .*rss=[1-9][0-9]* .*arena=[0-9]+ .*in_use=[0-9]+'
	rm -f "$SCRATCH"/t.*.memscope
	run rec MEMSCOPE_RSS_INTERVAL=0 "$PROGS/threads100"
	run msdump "$(the_trace)"
	refute_line --regexp '^counters '
}

@test "sampling keeps about R of the allocations and every free" {
	run rec MEMSCOPE_SAMPLE_RATE=0.25 MEMSCOPE_UNWIND=none "$PROGS/churn" 1 100000
	assert_success
	t=$(the_trace)
	run msdump "$t"
	assert_line --regexp '^header .*sample_rate_ppm=250000 '
	a=$(sumval "$t" allocs)
	f=$(sumval "$t" frees)
	[ "$a" -gt 20000 ]
	[ "$a" -lt 30000 ]
	[ "$f" -ge 100000 ]
}

@test "settings: bad values are reported once and ignored; the header says what ran" {
	run rec MEMSCOPE_UNWIND=sideways MEMSCOPE_STACK_DEPTH=7 MEMSCOPE_SAMPLE_RATE=2 "$PROGS/leak"
	assert_success
	assert_output --partial "memscope: ignoring MEMSCOPE_UNWIND='sideways': not dwarf, fp or none"
	assert_output --partial "memscope: ignoring MEMSCOPE_SAMPLE_RATE='2': not in (0, 1]"
	run msdump "$(the_trace)"
	assert_line --regexp '^header .*sample_rate_ppm=1000000 unwinder=2 stack_depth=7 '
}

@test "MEMSCOPE_SESSION lands in the header; MEMSCOPE_SALVAGE=1 keeps the library inert" {
	run rec MEMSCOPE_SESSION=00112233445566778899aabbccddeeff "$PROGS/leak"
	assert_success
	run msdump "$(the_trace)"
	assert_line --regexp '^header .*session=00112233445566778899aabbccddeeff '
	rm -f "$SCRATCH"/t.*.memscope
	run rec MEMSCOPE_SALVAGE=1 "$PROGS/leak"
	assert_success
	run ls "$SCRATCH"
	refute_output --partial memscope
}

@test "an unwritable trace: one error line, the program runs unchanged" {
	run env LD_PRELOAD="$LIB" MEMSCOPE_OUTPUT=/nonexistent/dir/t.memscope "$PROGS/xthread_tasks"
	assert_success
	assert_line "tasks: 4 workers, task ids nonzero: 0"
	assert_line "memscope: cannot create '/nonexistent/dir/t.memscope': No such file or directory"
	[ "${#lines[@]}" = 2 ]
}

@test "a failed exec keeps recording in the same trace, under the same name" {
	run rec perl -e 'exec("/nonexistent/prog") or print "exec failed\n"; my @a = map { "x" x $_ } (1..1000); print scalar(@a), "\n"'
	assert_success
	assert_output "exec failed
1000"
	run ls "$SCRATCH"
	assert_output --regexp '^t\.[0-9]+\.memscope$'
	t=$(the_trace)
	[ "$(sumval "$t" complete)" = 1 ]
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	run msdump "$t"
	[ "$(grep -c '^end ' <<<"$output")" = 2 ]
	assert_line --regexp '^end .*reason=exec status=0 '
	[[ "${lines[-1]}" =~ ^end\ .*reason=exit\ status=0 ]]
}

@test "MEMSCOPE_FOLLOW=0: an exec'd program gets LD_PRELOAD without the recorder" {
	run env LD_PRELOAD="/lib/x86_64-linux-gnu/libz.so.1 $LIB" MEMSCOPE_OUTPUT="$SCRATCH/t.%p.memscope" \
		MEMSCOPE_FOLLOW=0 /bin/sh -c 'exec /usr/bin/env'
	assert_success
	assert_line "LD_PRELOAD=/lib/x86_64-linux-gnu/libz.so.1"
	refute_output --partial libmsrecord
	run env LD_PRELOAD="$LIB" MEMSCOPE_OUTPUT="$SCRATCH/u.%p.memscope" /bin/sh -c 'exec /usr/bin/env'
	assert_line "LD_PRELOAD=$LIB"
	# followed: the exec'd image writes the name, the shell's trace moved
	u=("$SCRATCH"/u.*.exec0.memscope)
	run msdump "${u[0]}"
	assert_line --regexp '^end .*reason=exec '
	run msdump "${u[0]%.exec0.memscope}.memscope"
	assert_line --regexp '^header .*program=/usr/bin/env .*flags=0x2 exec_generation=1 '
}

@test "preloaded after libc itself: no crash (the program's calls never reach us)" {
	run env LD_PRELOAD="/lib/x86_64-linux-gnu/libc.so.6 $LIB" MEMSCOPE_OUTPUT="$SCRATCH/t.%p.memscope" \
		"$PROGS/xthread_tasks"
	assert_success
	assert_output "tasks: 4 workers, task ids nonzero: 4"
	[ "$(sumval "$(the_trace)" complete)" = 1 ]
}

@test "another allocator (jemalloc) answers: forwarded to, named in the header" {
	J=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
	[ -e "$J" ] || skip "libjemalloc2 is not installed"
	run env LD_PRELOAD="$LIB $J" MEMSCOPE_OUTPUT="$SCRATCH/t.%p.memscope" MEMSCOPE_RSS_INTERVAL=1 \
		"$PROGS/xthread_reuse" 4 5000
	assert_success
	t=$(the_trace)
	run msdump "$t"
	assert_line --regexp '^header .*allocator=jemalloc '
	# glibc's arena figures mean nothing for jemalloc
	refute_line --regexp '^counters .*arena='
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	[ "$(sumval "$t" double_allocs)" = 0 ]
	read -r n f live cross < <(reuse_figures "$t")
	[ "$n" = 20004 ]
	[ "$f" = 20003 ]
	[ "$live" = 2000 ]
}

@test "vfork children that exec or _exit do not end the parent's trace" {
	# Python's subprocess starts children with vfork(); a failed exec in
	# the child ends in _exit(), both in the parent's memory
	run rec /usr/bin/python3 -c '
import subprocess
subprocess.run(["/bin/true"])
try:
    subprocess.run(["/nonexistent/prog"])
except OSError:
    pass
x = [str(i) * 10 for i in range(20000)]
print(len(x))'
	assert_success
	assert_output 20000
	run ls "$SCRATCH"
	# python3 and true: two traces, no ".exec" rename of the parent's
	[ "${#lines[@]}" = 2 ]
	refute_output --partial exec
	for f in "$SCRATCH"/t.*.memscope; do
		[ "$(sumval "$f" complete)" = 1 ]
		[ "$(sumval "$f" unknown_frees)" = 0 ]
	done
	run msdump "$(ls -S "$SCRATCH"/t.*.memscope | head -1)"
	assert_line --regexp '^header .*program=/usr/bin/python3'
	[ "$(grep -c '^end ' <<<"$output")" = 1 ]
	assert_line --regexp '^end .*reason=exit status=0 '
}

@test "exec: no spool left after a successful exec; a failed one can still be salvaged" {
	mkdir spool
	run rec MEMSCOPE_SPOOL_DIR="$SCRATCH/spool" "$PROGS/exec_self"
	assert_success
	run ls spool
	assert_output ""
	rm -f "$SCRATCH"/t.*
	run rec MEMSCOPE_SPOOL_DIR="$SCRATCH/spool" perl -e 'exec("/nonexistent/prog") or print "exec failed\n"; my @a = (1..100); kill 9, $$'
	[ "$status" -eq 137 ]
	s=("$SCRATCH"/spool/*.spool)
	run salvage "${s[0]}"
	assert_output --regexp '^0 '
	t=$(the_trace)
	run msdump "$t"
	assert_line --regexp '^end .*reason=exec status=0 '
	[[ "${lines[-1]}" =~ ^end\ .*reason=salvaged\ status=-1 ]]
	[ "$(sumval "$t" unknown_frees)" = 0 ]
}

# duration_ms of trace $1, in whole ms
duration_of() {
	ms-stats --no-symbols -s summary "$1" | sed -n 's/.*"duration_ms":[^0-9]*\([0-9]*\).*/\1/p'
}

@test "the clock's rate passes to the processes the program runs (MEMSCOPE_CLOCK), a bad value is measured anew" {
	run rec sh -c 'echo "$MEMSCOPE_CLOCK"'
	assert_success
	assert_output --regexp '^(tsc [0-9]+|mono)$'
	[[ "$output" == tsc* ]] || skip "no usable TSC: the monotonic clock needs no measurement"
	mult=${output#tsc }
	rm -f "$SCRATCH"/t.*.memscope
	# a rate taken from the variable, not measured: ticks twice as long,
	# a run twice as long
	run rec MEMSCOPE_CLOCK="tsc $((mult * 2))" sleep 0.3
	assert_success
	d=$(duration_of "$(the_trace)")
	[ "$d" -ge 540 ] && [ "$d" -le 900 ] || { echo "duration $d ms" >&2; false; }
	rm -f "$SCRATCH"/t.*.memscope
	run rec MEMSCOPE_CLOCK="tsc 5" sleep 0.3
	assert_success
	d=$(duration_of "$(the_trace)")
	[ "$d" -ge 270 ] && [ "$d" -le 450 ] || { echo "duration $d ms" >&2; false; }
}

@test "preloaded by hand, the recorder adds its variables to the environment without an allocation the program later frees unseen" {
	run rec "$PROGS/setenv_grow"
	assert_success
	t=$(the_trace)
	[ "$(sumval "$t" unknown_frees)" = 0 ]
	[ "$(sumval "$t" double_allocs)" = 0 ]
	# and the run's children still learn who the first process was
	run rec sh -c 'echo "$MEMSCOPE_PID0 $$"'
	assert_success
	read -r pid0 self <<<"$output"
	[ "$pid0" = "$self" ]
}
