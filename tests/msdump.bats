#!/usr/bin/env bats
# msdump (tests/tools/msdump.c), the test/debug dumper the recorder's tests
# rely on, run against the committed fixtures (tests/fixtures/README.md).

load test_helper

@test "msdump: valid-small prints one line per record and exits 0" {
	run msdump "$FIXTURES/valid-small.memscope"
	assert_success
	assert_equal "${#lines[@]}" 27
	assert_line --index 0 --partial "header version=2.0 "
	assert_line --index 0 --partial " pid=4242 ppid=1 session=000102030405060708090a0b0c0d0e0f program=/usr/bin/demo argc=2 argv[0]=demo argv[1]=--fast "
	assert_line "module t=120 id=1 base=0x555555554000 path=/usr/bin/demo build_id=0102030405060708090a0b0c0d0e0f1011121314 segs=2 seg=0x0+0x1000@0x0:r-- seg=0x1000+0x2000@0x1000:r-x"
	assert_line "stack id=2 parent=1 ip=0x555555555200"
	assert_line "alloc t=200 thread=1 func=malloc addr=0x5555555a0010 size=100 stack=2"
	assert_line "alloc t=220 thread=1 func=posix_memalign addr=0x5555555a1000 size=64 stack=2 align=64"
	assert_line "alloc t=270 thread=1 func=realloc addr=0x5555555a2000 size=200 stack=3 old=0x5555555a0010"
	assert_line "free t=300 thread=2 func=operator_delete addr=0x7ffff0000b70 stack=0"
	assert_line "counters t=320 rss=1048576 arena=135168"
	assert_line "label t=330 thread=1 addr=0x5555555a2000 name=buffer type=char[200]"
	assert_line --index 26 "end t=390 reason=exit status=0 events=13 dropped=0"
}

@test "msdump --summary: exact totals of valid-small" {
	run msdump --summary "$FIXTURES/valid-small.memscope"
	assert_success
	assert_line allocs=8
	assert_line frees=4
	assert_line reallocs=3
	assert_line bytes_allocated=1918
	assert_line live_bytes_at_end=1264
	assert_line live_allocs_at_end=3
	assert_line peak_bytes=1664
	assert_line unknown_frees=1
	assert_line double_allocs=0
	assert_line threads=2
	assert_line stacks=3
	assert_line complete=1
}

@test "msdump --summary: another thread given a moving realloc's old address keeps its block" {
	mkgolden realloc-reuse "$BATS_TEST_TMPDIR/r.memscope"
	run msdump --summary "$BATS_TEST_TMPDIR/r.memscope"
	assert_success
	assert_line allocs=3
	assert_line frees=1
	assert_line reallocs=1
	assert_line bytes_allocated=330
	assert_line live_bytes_at_end=200
	assert_line live_allocs_at_end=1
	assert_line peak_bytes=230
	assert_line unknown_frees=0
	assert_line double_allocs=0
}

@test "msdump: reads standard input, with no argument and with -" {
	run sh -c 'msdump --summary < "$1" | grep ^allocs=; msdump - < "$1" | wc -l' sh "$FIXTURES/valid-small.memscope"
	assert_success
	assert_output "allocs=8
27"
}

@test "msdump: truncated chunk prints the records before it, then fails" {
	run msdump "$FIXTURES/truncated-chunk.memscope"
	assert_failure 1
	assert_line "msdump: truncated chunk 4 at byte 439: stream ends after 23 of 50 bytes"
	assert_line "alloc t=350 thread=1 func=malloc addr=0x5555555a3000 size=1000 stack=2"
	refute_line --partial "task_end"
}

@test "msdump --summary: a trace without END says complete=0 and fails" {
	run msdump --summary "$FIXTURES/no-end-record.memscope"
	assert_failure 1
	assert_line "msdump: truncated: no end-of-trace record after chunk 4 (the recording was cut short)"
	assert_line complete=0
	assert_line allocs=8
}

@test "msdump: damaged and foreign inputs fail with the reader's detail" {
	run msdump "$FIXTURES/bad-crc.memscope"
	assert_failure 1
	assert_line "msdump: corrupt chunk 2 at byte 143: crc mismatch"
	run msdump "$FIXTURES/future-major.memscope"
	assert_failure 1
	assert_output "msdump: trace format 3.0 is newer than this reader's 2.x: upgrade memscope"
	run msdump "$FIXTURES/not-a-trace.txt"
	assert_failure 1
	assert_output "msdump: not a memscope trace (bad magic)"
	run msdump "$FIXTURES/empty.memscope"
	assert_failure 1
	assert_output "msdump: empty input"
	run msdump "$BATS_TEST_TMPDIR/missing.memscope"
	assert_failure 1
	assert_output "msdump: cannot open '$BATS_TEST_TMPDIR/missing.memscope': No such file or directory"
}

@test "msdump: a newer minor version with unknown parts reads completely" {
	run msdump --summary "$FIXTURES/future-minor-unknown-record.memscope"
	assert_success
	assert_line skipped_records=1
	assert_line skipped_chunks=1
	assert_line complete=1
	run msdump "$FIXTURES/future-minor-unknown-record.memscope"
	assert_line "thread_start t=205 thread=5 tid=4299 parent=1"
}

@test "msdump: usage errors exit 2, --help exits 0, a full stdout fails" {
	run msdump --bogus
	assert_failure 2
	assert_output --partial "usage: msdump"
	run msdump a b
	assert_failure 2
	run msdump --help
	assert_success
	assert_output --partial "usage: msdump"
	run sh -c 'msdump "$1" > /dev/full' sh "$FIXTURES/valid-small.memscope"
	assert_failure 1
}
