#!/usr/bin/env bats
# The oracle: the same programs under valgrind's memcheck, whose
# "total heap usage: N allocs, M frees, B bytes allocated" and "in use at
# exit" lines must agree with the figures of our trace of the same program
# and arguments (the programs are deterministic; tests/programs/*.c).
#
# memcheck's counting rules, checked against alloc_basic.c's documented
# calls, and how ours map onto them:
#   allocs      every call that returned a block: malloc, calloc, each
#               realloc/reallocarray that returned one (also in place),
#               the aligned family, new/new[]    = our ALLOC records
#   frees       free/delete of a block, realloc(p, 0), and one more for
#               every realloc of a non-NULL pointer (memcheck always moves
#               the block)                       = our frees + realloc
#               ALLOCs whose old address is not NULL
#   bytes       sum of requested sizes           = our bytes_allocated
#   in use      live at exit                     = our live bytes/blocks
# Inherent differences, removed rather than allowed for:
#   - at exit valgrind runs __libc_freeres and __gnu_cxx::__freeres,
#     freeing glibc's and libstdc++'s internal blocks (the 72,704-byte
#     exception pool) that a normal run never frees: run it with
#     --run-libc-freeres=no --run-cxx-freeres=no;
#   - valgrind 3.19 aborts the program at pvalloc(): alloc_basic runs with
#     "no-pvalloc" here (ms-record.bats checks pvalloc);
#   - glibc gives each new thread a TLS vector (DTV) by calloc, one 16-byte
#     slot per loaded module with thread-local storage (+ spares). The
#     recorder is such a module (libmsrecord.so has a PT_TLS segment), so
#     under it the DTV is calloc(18, 16) = 288 bytes where memcheck sees
#     calloc(17, 16) = 272: 16 bytes more per DTV, in bytes allocated
#     (one per thread created; fewer when a thread starts on the cached
#     stack of one that ended, whose DTV it keeps) and, for DTVs glibc
#     keeps with its cached stacks, in bytes live at exit (the counts of
#     allocations, frees and live blocks are equal). With --unwind dwarf the recorder also loads libunwind (one
#     more TLS module, 32 bytes per thread), so the oracle records with
#     --unwind fp. The comparison allows exactly that: bytes differ by 16 x
#     between 1 and the threads created, live bytes by 16 x at most that
#     many.
# free(NULL) and malloc(0) count alike in both (no free; one 0-byte alloc).

bats_require_minimum_version 1.5.0
load test_helper

setup() {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	setup_scratch
	export TMPDIR="$SCRATCH"
	unset LD_PRELOAD MEMSCOPE_SAMPLE_RATE MEMSCOPE_DROP
}

# oracle PROGRAM [ARGS...]: records it, runs it under memcheck, compares.
oracle() {
	local prog=$1
	shift
	ms-record -q --unwind fp -o ours.memscope "$PROGS/$prog" "$@" > ours.out 2> ours.err || true
	[ ! -s ours.err ] || { cat ours.err >&2; return 1; }
	valgrind --tool=memcheck --run-libc-freeres=no --run-cxx-freeres=no \
		--log-file=vg.log "$PROGS/$prog" "$@" > vg.out 2> vg.err || true
	# the program's own output is the same with either tool
	cmp ours.out vg.out

	local s allocs frees bytes live blocks moved dropped
	s=$(msdump --summary ours.memscope)
	allocs=$(printf '%s\n' "$s" | sed -n 's/^allocs=//p')
	frees=$(printf '%s\n' "$s" | sed -n 's/^frees=//p')
	bytes=$(printf '%s\n' "$s" | sed -n 's/^bytes_allocated=//p')
	live=$(printf '%s\n' "$s" | sed -n 's/^live_bytes_at_end=//p')
	blocks=$(printf '%s\n' "$s" | sed -n 's/^live_allocs_at_end=//p')
	dropped=$(printf '%s\n' "$s" | sed -n 's/^dropped=//p')
	[ "$(printf '%s\n' "$s" | sed -n 's/^complete=//p')" = 1 ]
	[ "$dropped" = 0 ]
	moved=$(msdump ours.memscope | grep -Ec '^alloc .* func=(realloc|reallocarray) .* old=0x[0-9a-f]*[1-9a-f][0-9a-f]*( |$)' || true)

	local vg_allocs vg_frees vg_bytes vg_live vg_blocks
	read -r vg_allocs vg_frees vg_bytes < <(sed -n 's/.*total heap usage: \([0-9,]*\) allocs, \([0-9,]*\) frees, \([0-9,]*\) bytes allocated.*/\1 \2 \3/p' vg.log | tr -d ,)
	read -r vg_live vg_blocks < <(sed -n 's/.*in use at exit: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' vg.log | tr -d ,)

	printf '%-8s %10s %10s %12s %10s %8s\n' "" allocs frees bytes live blocks \
		ours "$allocs" "$((frees + moved))" "$bytes" "$live" "$blocks" \
		memcheck "$vg_allocs" "$vg_frees" "$vg_bytes" "$vg_live" "$vg_blocks" >&2
	[ -n "$vg_allocs" ]
	[ "$allocs" = "$vg_allocs" ]
	[ "$((frees + moved))" = "$vg_frees" ]
	[ "$blocks" = "$vg_blocks" ]
	local created=$(( $(printf '%s\n' "$s" | sed -n 's/^threads=//p') - 1 ))
	local dbytes=$((bytes - vg_bytes))
	[ $((dbytes % 16)) -eq 0 ]
	[ "$dbytes" -le $((16 * created)) ]
	[ "$created" -eq 0 ] || [ "$dbytes" -ge 16 ]
	local dlive=$((live - vg_live))
	[ "$dlive" -ge 0 ]
	[ $((dlive % 16)) -eq 0 ]
	[ "$dlive" -le $((16 * created)) ]
}

@test "oracle: alloc_basic (every C allocation function but pvalloc)" {
	oracle alloc_basic no-pvalloc
	# and both equal the figures documented in alloc_basic.c
	grep -q 'total heap usage: 13 allocs, 13 frees, 1,011,062 bytes allocated' vg.log
}

@test "oracle: alloc_cxx (new/delete, vector, exception)" {
	oracle alloc_cxx
	grep -q 'total heap usage: 14 allocs, 13 frees, 76,932 bytes allocated' vg.log
}

@test "oracle: leak" {
	oracle leak
	grep -q 'in use at exit: 10,521 bytes in 12 blocks' vg.log
}

@test "oracle: threads_early (glibc's own thread and unwinder allocations included)" {
	oracle threads_early
}

@test "oracle: threads100" {
	oracle threads100
}

@test "oracle: dlopen_mod (dlopen's own allocations included)" {
	oracle dlopen_mod
}

@test "oracle: argv_alloc" {
	oracle argv_alloc one two three
	grep -q 'total heap usage: 3 allocs, 3 frees, 14 bytes allocated' vg.log
}

@test "oracle: ends exit" {
	oracle ends exit
	grep -q 'total heap usage: 10 allocs, 5 frees, 1,000 bytes allocated' vg.log
}

@test "oracle: demo (stdio, threads, a hash table growing)" {
	oracle demo
}

@test "oracle: ends _exit, abort, segv (the trace of a dying process agrees too)" {
	local how
	for how in _exit abort segv; do
		oracle ends "$how"
		grep -q 'total heap usage: 10 allocs, 5 frees, 1,000 bytes allocated' vg.log
	done
}

# Not compared here, and why: forker (memcheck's child starts with the
# parent's counters, ours with an empty trace flagged "forked"),
# exec_self (memcheck does not follow exec without --trace-children),
# sighandler (the handler's count depends on timing, so two runs differ),
# daemon (memcheck's log of a process that closed every fd).

@test "oracle: threads_serial (each thread on the cached stack of the last), the same with --unwind dwarf" {
	oracle threads_serial
	# glibc frees the old thread's dynamic TLS from pthread_create; under
	# dwarf libunwind's is among it, allocated inside the recorder: not
	# the program's, not recorded, and its free not either
	local fp dw
	fp=$(msdump --summary ours.memscope | grep -E '^(allocs|frees|unknown_frees)=')
	ms-record -q --unwind dwarf -o dwarf.memscope "$PROGS/threads_serial" > /dev/null
	dw=$(msdump --summary dwarf.memscope | grep -E '^(allocs|frees|unknown_frees)=')
	echo "fp: $fp / dwarf: $dw" >&2
	[ "$dw" = "$fp" ]
	grep -qx 'unknown_frees=0' <<< "$dw"
}
