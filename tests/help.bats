#!/usr/bin/env bats
# Every command answers --help, --version and a wrong option the same way
# (git's t0012 idea): help on stdout with status 0, a wrong option as one
# line naming the tool and the option plus a hint, with the usage status.

bats_require_minimum_version 1.5.0
load test_helper

tools() {
	local t
	for t in "$MS_BUILD"/bin/*; do
		[ -x "$t" ] && basename "$t"
	done
}

usage_status() { # ms-record reserves 1..124 for the program's own statuses
	if [ "$1" = ms-record ]; then echo 125; else echo 2; fi
}

@test "every tool is built" {
	run tools
	assert_success
	assert_line ms-record
	assert_line ms-stats
	assert_line ms-svg
}

@test "--help prints usage on stdout and exits 0" {
	local t
	for t in $(tools); do
		run --separate-stderr "$t" --help
		assert_success
		[[ "${lines[0]}" == "usage: $t "* ]] || fail "$t --help starts with: ${lines[0]}"
		[ -z "$stderr" ] || fail "$t --help wrote to stderr: $stderr"
	done
}

@test "--version names the tool and memscope" {
	local t
	for t in $(tools); do
		run --separate-stderr "$t" --version
		assert_success
		[[ "$output" == "$t (memscope) "* ]] || fail "$t --version: $output"
	done
}

@test "a wrong option is one line plus a hint, with the usage status" {
	local t
	for t in $(tools); do
		run --separate-stderr "$t" --no-such-option
		[ "$status" -eq "$(usage_status "$t")" ] || fail "$t: status $status"
		[ -z "$output" ] || fail "$t wrote to stdout: $output"
		[ "${#stderr_lines[@]}" -le 2 ] || fail "$t: ${#stderr_lines[@]} lines: $stderr"
		[[ "${stderr_lines[0]}" == "$t: unknown option '--no-such-option'" ]] ||
			fail "$t: ${stderr_lines[0]}"
		[[ "${stderr_lines[1]}" == "Try '$t --help'"* ]] || fail "$t: ${stderr_lines[1]}"
	done
}

@test "writing to a full disk fails with a message" {
	local t
	ms-record -q -o "$BATS_TEST_TMPDIR/t.memscope" "$PROGS/demo" >/dev/null
	for t in ms-stats ms-svg; do
		run --separate-stderr "$t" "$BATS_TEST_TMPDIR/t.memscope" -o /dev/full
		[ "$status" -eq 1 ] || fail "$t > /dev/full: status $status: $stderr"
		[[ "$stderr" == "$t: "*"No space left on device"* ]] || fail "$t: $stderr"
	done
	run --separate-stderr ms-stats "$BATS_TEST_TMPDIR/t.memscope"
	assert_success
	run bash -c "ms-stats '$BATS_TEST_TMPDIR/t.memscope' > /dev/full"
	assert_failure 1
}

@test "--help into a full disk fails" {
	local t
	for t in $(tools); do
		run --separate-stderr bash -c "$t --help > /dev/full"
		[ "$status" -ne 0 ] || fail "$t --help > /dev/full: status 0"
		[[ "$stderr" == "$t: "*"No space left on device"* ]] || fail "$t: $stderr"
	done
}
