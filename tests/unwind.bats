#!/usr/bin/env bats
# The recorder's own DWARF unwinder (preload/unwind.c, default for
# --unwind dwarf) must give the stacks libunwind gives: every stack of
# unwind_paths (callers, recursion, longjmp, signal handlers, exceptions,
# qsort, code without frame pointers, alloca, a second thread) and of a
# multi-threaded churn is walked both ways and compared
# (MEMSCOPE_DWARF_CHECK=1), and whole traces with and without it
# (MEMSCOPE_DWARF_CFI=0) are compared record by record.

load test_helper
bats_require_minimum_version 1.5.0

LIB="$MS_BUILD/lib/libmsrecord.so"

setup() {
	setup_scratch
	unset MEMSCOPE_OUTPUT MEMSCOPE_SAMPLE_RATE MEMSCOPE_STACK_DEPTH MEMSCOPE_LOG \
		MEMSCOPE_DROP MEMSCOPE_DWARF_CFI MEMSCOPE_DWARF_CHECK
	export MEMSCOPE_UNWIND=dwarf
}

rec() {
	env LD_PRELOAD="$LIB" MEMSCOPE_OUTPUT="$SCRATCH/t.memscope" "$@"
}

# "dwarf stacks: A by CFI, B by libunwind, C checked, D differed" -> "A B C D"
counts() {
	sed -n 's/^memscope: dwarf stacks: \([0-9]*\) by CFI, \([0-9]*\) by libunwind, \([0-9]*\) checked, \([0-9]*\) differed$/\1 \2 \3 \4/p'
}

@test "unwind: every stack of unwind_paths equals libunwind's" {
	run --separate-stderr rec MEMSCOPE_DWARF_CHECK=1 "$PROGS/unwind_paths"
	assert_success
	assert_output --regexp '^unwind_paths: [0-9]+ allocations$'
	[[ "$stderr" != *"differ ("* ]]
	read -r cfi lu checked differ <<< "$(counts <<< "$stderr")"
	echo "$stderr"
	# most stacks by the CFI walk, all of them checked, none different;
	# signal-handler stacks (sigreturn frames) are libunwind's
	[ "$cfi" -gt 2000 ]
	[ "$checked" -eq "$cfi" ]
	[ "$differ" -eq 0 ]
	[ "$lu" -gt 0 ]
	[ "$lu" -lt 100 ]
	msdump --summary "$SCRATCH/t.memscope" >/dev/null
}

@test "unwind: cross-thread churn stacks equal libunwind's" {
	run --separate-stderr rec MEMSCOPE_DWARF_CHECK=1 "$PROGS/churn" 4 5000
	assert_success
	read -r cfi lu checked differ <<< "$(counts <<< "$stderr")"
	echo "$stderr"
	[ "$cfi" -ge 20000 ]
	[ "$checked" -eq "$cfi" ]
	[ "$differ" -eq 0 ]
}

@test "unwind: traces with and without the CFI walk are the same" {
	setarch -R true 2>/dev/null || skip "cannot turn address randomization off"
	for m in 0 1; do
		env LD_PRELOAD="$LIB" MEMSCOPE_OUTPUT="$SCRATCH/t$m.memscope" \
			MEMSCOPE_DWARF_CFI=$m setarch -R "$PROGS/unwind_paths" >/dev/null
		msdump "$SCRATCH/t$m.memscope" | grep -E '^(stack|alloc|free) ' |
			sed 's/ t=[0-9]*//' > "$SCRATCH/t$m.txt"
	done
	# thousands of events with deep, varied stacks, record for record
	[ "$(grep -c '^alloc ' "$SCRATCH/t1.txt")" -gt 2000 ]
	[ "$(grep -c '^stack ' "$SCRATCH/t1.txt")" -gt 200 ]
	run diff "$SCRATCH/t0.txt" "$SCRATCH/t1.txt"
	assert_success
}

@test "unwind: MEMSCOPE_DWARF_CFI=0 leaves every stack to libunwind" {
	run --separate-stderr rec MEMSCOPE_LOG=debug MEMSCOPE_DWARF_CFI=0 "$PROGS/unwind_paths"
	assert_success
	read -r cfi lu checked differ <<< "$(counts <<< "$stderr")"
	[ "$cfi" -eq 0 ]
	[ "$lu" -gt 2000 ]
}

@test "unwind: a shallow stack depth cuts the CFI walk like libunwind's" {
	run --separate-stderr rec MEMSCOPE_DWARF_CHECK=1 MEMSCOPE_STACK_DEPTH=3 "$PROGS/unwind_paths"
	assert_success
	read -r cfi lu checked differ <<< "$(counts <<< "$stderr")"
	echo "$stderr"
	[ "$cfi" -gt 2000 ]
	[ "$differ" -eq 0 ]
}
