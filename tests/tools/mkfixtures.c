/*
 * mkfixtures - remakes tests/fixtures/: small traces named for their
 * defect (tests/fixtures/README.md says what a reader must do with each).
 * Valid parts are written through libtrace's writer; defects are made by
 * editing the bytes afterwards or by building chunks by hand with the
 * format's constants, so the fixtures stay byte-for-byte reproducible.
 *
 *     mkfixtures DIR             the fixtures
 *     mkfixtures --corpus DIR    the fixtures plus random traces, the
 *                                seeds of tests/fuzz/corpus/reader/
 */
#include "mstrace.h"
#include "codec.h"
#include "../unit/trace_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outdir;
static int failed;

/* Fuzz seeds are named without ".memscope", like libFuzzer's own inputs:
 * they are test data, not traces anyone should open. */
static int corpus_names;

static void save(const char *name, const void *buf, size_t len)
{
	char path[4096];
	size_t n = strlen(name);
	FILE *f;

	if (corpus_names && n > 9 && strcmp(name + n - 9, ".memscope") == 0)
		n -= 9;
	snprintf(path, sizeof(path), "%s/%.*s", outdir, (int)n, name);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(buf, 1, len, f) != len) || fclose(f) != 0) {
		fprintf(stderr, "mkfixtures: cannot write '%s': %s\n", path, strerror(errno));
		failed = 1;
	}
}

static void add(struct mst_writer *w, const struct mst_record *rec)
{
	if (mst_writer_add(w, rec) != MST_OK) {
		fprintf(stderr, "mkfixtures: writer: %s\n", mst_writer_error(w));
		exit(1);
	}
}

#define A0 0x5555555a0010ull

static void rec_alloc(struct mst_writer *w, uint64_t t, uint64_t thread, int func,
		      uint64_t addr, uint64_t size, uint64_t stack, uint64_t extra)
{
	struct mst_record r = { .type = MST_REC_ALLOC };
	r.u.alloc = (struct mst_alloc){ t, thread, func, addr, size, stack, 0, 0 };
	if (mst_alloc_func_has_alignment(func))
		r.u.alloc.alignment = extra;
	if (mst_alloc_func_is_realloc(func))
		r.u.alloc.old_addr = extra;
	add(w, &r);
}

static void rec_free(struct mst_writer *w, uint64_t t, uint64_t thread, int func,
		     uint64_t addr, uint64_t stack)
{
	struct mst_record r = { .type = MST_REC_FREE };
	r.u.free = (struct mst_free){ t, thread, func, addr, stack };
	add(w, &r);
}

static void rec_thread(struct mst_writer *w, uint64_t t, uint64_t thread,
		       uint64_t tid, uint64_t parent)
{
	struct mst_record r = { .type = MST_REC_THREAD_START };
	r.u.thread_start = (struct mst_thread_start){ t, thread, tid, parent };
	add(w, &r);
}

static void write_header(struct mst_writer *w)
{
	static const char *const argv[] = { "demo", "--fast" };
	struct mst_record r = { .type = MST_REC_HEADER };
	struct mst_header *h = &r.u.header;

	h->ticks_per_second = 1000000000;
	h->start_wall_ns = 1763800000000000000ull;
	h->pid = 4242;
	h->ppid = 1;
	for (int i = 0; i < 16; i++)
		h->session_id[i] = i;
	h->program = "/usr/bin/demo";
	h->argc = 2;
	h->argv = argv;
	h->sample_rate_ppm = 1000000;
	h->unwinder = MST_UNWIND_FP;
	h->stack_depth = 64;
	h->allocator = "glibc";
	h->hostname = "fixture-host";
	add(w, &r);
}

/*
 * The events of valid-small (figures in tests/fixtures/README.md), up to
 * time UNTIL; END when WITH_END.
 */
static void write_body(struct mst_writer *w, uint64_t from, uint64_t until, int with_end)
{
	static const uint8_t bid[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
					 13, 14, 15, 16, 17, 18, 19, 20 };
	static const struct mst_segment segs[2] = {
		{ 0, 0x1000, 0, MST_SEG_READ },
		{ 0x1000, 0x2000, 0x1000, MST_SEG_READ | MST_SEG_EXEC },
	};
	static const struct mst_counter ctrs[2] = { { MST_CTR_RSS, 1048576 },
						    { MST_CTR_ARENA, 135168 } };
	struct mst_record r;

#define AT(t) if ((t) >= from && (t) <= until)
	AT(100) rec_thread(w, 100, 1, 4242, 0);
	AT(110) {
		r = (struct mst_record){ .type = MST_REC_THREAD_NAME };
		r.u.thread_name = (struct mst_thread_name){ 110, 1, "main" };
		add(w, &r);
	}
	AT(120) {
		r = (struct mst_record){ .type = MST_REC_MODULE_LOAD };
		r.u.module_load = (struct mst_module_load){ 120, 1, 0x555555554000ull,
			"/usr/bin/demo", bid, sizeof(bid), 2, segs };
		add(w, &r);
		for (int i = 1; i <= 3; i++) {
			r = (struct mst_record){ .type = MST_REC_STACK };
			r.u.stack.parent = i == 1 ? 0 : 1;
			r.u.stack.ip = 0x555555555000ull + 0x100 * i;
			add(w, &r);
		}
	}
	AT(200) rec_alloc(w, 200, 1, MST_ALLOC_MALLOC, A0, 100, 2, 0);
	AT(210) rec_alloc(w, 210, 1, MST_ALLOC_CALLOC, 0x5555555a0080ull, 400, 3, 0);
	AT(220) rec_alloc(w, 220, 1, MST_ALLOC_POSIX_MEMALIGN, 0x5555555a1000ull, 64, 2, 64);
	AT(230) rec_free(w, 230, 1, MST_FREE_FREE, A0, 0);
	AT(240) rec_alloc(w, 240, 1, MST_ALLOC_REALLOC, A0, 50, 3, 0);
	AT(250) rec_alloc(w, 250, 1, MST_ALLOC_REALLOC, A0, 80, 3, A0);
	AT(260) rec_free(w, 260, 1, MST_FREE_REALLOC, A0, 3);
	AT(270) rec_alloc(w, 270, 1, MST_ALLOC_REALLOC, 0x5555555a2000ull, 200, 3, A0);
	AT(280) rec_thread(w, 280, 2, 4243, 1);
	AT(290) rec_alloc(w, 290, 2, MST_ALLOC_NEW, 0x7ffff0000b70ull, 24, 2, 0);
	AT(300) rec_free(w, 300, 2, MST_FREE_DELETE, 0x7ffff0000b70ull, 0);
	AT(310) rec_free(w, 310, 1, MST_FREE_FREE, 0x1234, 0);
	AT(320) {
		r = (struct mst_record){ .type = MST_REC_COUNTERS };
		r.u.counters = (struct mst_counters){ 320, 2, ctrs };
		add(w, &r);
	}
	AT(330) {
		r = (struct mst_record){ .type = MST_REC_LABEL };
		r.u.label = (struct mst_label){ 330, 1, 0x5555555a2000ull, "buffer", "char[200]" };
		add(w, &r);
	}
	AT(340) {
		r = (struct mst_record){ .type = MST_REC_TASK_BEGIN };
		r.u.task_begin = (struct mst_task_begin){ 340, 1, 1, "load" };
		add(w, &r);
	}
	AT(350) rec_alloc(w, 350, 1, MST_ALLOC_MALLOC, 0x5555555a3000ull, 1000, 2, 0);
	AT(360) {
		r = (struct mst_record){ .type = MST_REC_TASK_END };
		r.u.task_end = (struct mst_task_end){ 360, 1, 1 };
		add(w, &r);
	}
	AT(370) rec_free(w, 370, 1, MST_FREE_REALLOC, 0x5555555a0080ull, 3);
	AT(380) {
		r = (struct mst_record){ .type = MST_REC_THREAD_EXIT };
		r.u.thread_exit = (struct mst_thread_exit){ 380, 2 };
		add(w, &r);
	}
	if (with_end) {
		r = (struct mst_record){ .type = MST_REC_END };
		r.u.end = (struct mst_end){ 390, MST_END_EXIT, 0, 13, 0 };
		add(w, &r);
	}
#undef AT
}

static struct mst_writer *open_mem(struct membuf *m, int append)
{
	struct mst_writer_options o = { .chunk_size = 128, .sink = membuf_sink,
					.sink_ctx = m, .append = append };
	struct mst_writer *w;

	if (mst_writer_open(&w, -1, &o) != MST_OK) {
		fprintf(stderr, "mkfixtures: writer: %s\n", mst_writer_error(w));
		exit(1);
	}
	return w;
}

static void close_mem(struct mst_writer *w)
{
	if (mst_writer_close(w) != MST_OK) {
		fprintf(stderr, "mkfixtures: cannot finish a trace\n");
		exit(1);
	}
}

/* A chunk built by hand (for encodings and records the writer never makes). */
static void hand_chunk(struct membuf *m, uint8_t enc, const uint8_t *payload,
		       uint32_t stored, uint32_t raw)
{
	uint8_t h[MST__CHUNK_HDR_LEN] = { 'M', 'S', 'C', 'K', enc };
	uint32_t crc;

	mst__put_le32(h + 8, stored);
	mst__put_le32(h + 12, raw);
	crc = mst_crc32c(0, h + 4, 12);
	crc = mst_crc32c(crc, payload, stored);
	mst__put_le32(h + 16, crc);
	membuf_sink(m, h, sizeof(h));
	membuf_sink(m, payload, stored);
}

/* Random traces of every record type, stored and zstd, small and wide
 * values, for the fuzzer to start from. */
static void write_corpus(void)
{
	static const size_t chunks[] = { 48, 200, 1024 };
	for (int i = 0; i < 6; i++) {
		struct membuf m = { 0 };
		char name[64];
		if (write_random_trace(&m, 100 + i, 150, chunks[i % 3], i & 1 ? -1 : 0,
				       i >= 3, i != 5)) {
			failed = 1;
			return;
		}
		snprintf(name, sizeof(name), "random-%d.memscope", i);
		save(name, m.p, m.len);
		membuf_free(&m);
	}
}

int main(int argc, char **argv)
{
	struct membuf m = { 0 }, t = { 0 };
	struct mst_writer *w;

	if (argc == 3 && strcmp(argv[1], "--corpus") == 0) {
		outdir = argv[2];
		corpus_names = 1;
		write_corpus();
	} else if (argc == 2) {
		outdir = argv[1];
	} else {
		fputs("usage: mkfixtures [--corpus] DIR\n", stderr);
		return 2;
	}

	w = open_mem(&m, 0);
	write_header(w);
	write_body(w, 0, 1000, 1);
	close_mem(w);
	save("valid-small.memscope", m.p, m.len);
	if (m.ncalls < 4) {
		fprintf(stderr, "mkfixtures: valid-small has too few chunks\n");
		return 1;
	}

	/* Cut inside the last chunk: its header is there, its payload is not whole. */
	save("truncated-chunk.memscope", m.p, m.chunk_ends[m.ncalls - 2] + MST__CHUNK_HDR_LEN + 3);
	/* Cut inside a chunk header. */
	save("truncated-chunk-header.memscope", m.p, m.chunk_ends[m.ncalls - 2] + 7);
	save("truncated-preamble.memscope", m.p, 10);

	/* A payload byte of chunk 2 flipped: crc mismatch at chunk 2. */
	memcpy(t.p = malloc(m.len), m.p, t.len = m.len);
	t.p[m.chunk_ends[1] + MST__CHUNK_HDR_LEN + 2] ^= 0x40;
	save("bad-crc.memscope", t.p, t.len);
	/* Chunk 3's sync bytes damaged. */
	memcpy(t.p, m.p, m.len);
	t.p[m.chunk_ends[2]] = 'X';
	save("bad-sync.memscope", t.p, t.len);
	/* Chunk 2 claims a 2 GiB raw size (a reader must not allocate it). */
	memcpy(t.p, m.p, m.len);
	mst__put_le32(t.p + m.chunk_ends[1] + 12, 0x7fffffff);
	mst__put_le32(t.p + m.chunk_ends[1] + 8, 0x7fffffff);
	save("oversized-chunk.memscope", t.p, t.len);
	/* A newer major version. */
	memcpy(t.p, m.p, m.len);
	mst__put_le16(t.p + 8, MST_FORMAT_MAJOR + 1);
	save("future-major.memscope", t.p, t.len);
	free(t.p);
	membuf_free(&m);

	/* No END record: the stream ends cleanly after a chunk. */
	w = open_mem(&m, 0);
	write_header(w);
	write_body(w, 0, 1000, 0);
	close_mem(w);
	save("no-end-record.memscope", m.p, m.len);
	membuf_free(&m);

	/* Only the HEADER. */
	w = open_mem(&m, 0);
	write_header(w);
	close_mem(w);
	save("header-only.memscope", m.p, m.len);
	membuf_free(&m);

	/*
	 * Minor version x.1: an unknown extension record (0x60), a known
	 * THREAD_START with an extra trailing field, a SKIP record and a
	 * chunk of unknown encoding 7. An x.0 reader reads it whole.
	 */
	w = open_mem(&m, 0);
	write_header(w);
	write_body(w, 0, 200, 0);
	close_mem(w);
	mst__put_le16(m.p + 10, 1);
	{
		uint8_t p[64], b[16];
		struct mst__out o = { p, 0, sizeof(p), 0 }, ob = { b, 0, sizeof(b), 0 };
		mst__put_vu(&o, 0);             /* empty time lane */
		mst__put_vu(&o, 0);             /* empty address lane */
		mst__put_vu(&o, 0x60);
		mst__put_bytes(&o, "abc", 3);
		mst__put_vu(&ob, 205);          /* time, absolute at chunk start */
		mst__put_vu(&ob, 5);            /* thread */
		mst__put_vu(&ob, 4299);         /* tid */
		mst__put_vu(&ob, 1);            /* parent */
		mst__put_vu(&ob, 77);           /* a field from the future */
		mst__put_vu(&o, MST__T_THREAD_START);
		mst__put_bytes(&o, b, ob.len);
		mst__put_vu(&o, MST__T_SKIP);
		mst__put_bytes(&o, "\0\0", 2);
		hand_chunk(&m, MST__ENC_STORED, p, o.len, o.len);
		hand_chunk(&m, 7, (const uint8_t *)"future encoding", 15, 15);
	}
	w = open_mem(&m, 1);
	mst_writer_set_last_time(w, 205);
	write_body(w, 201, 1000, 1);
	close_mem(w);
	save("future-minor-unknown-record.memscope", m.p, m.len);
	membuf_free(&m);

	save("not-a-trace.txt", "this is not a memscope trace\n", 29);
	save("empty.memscope", "", 0);
	return failed;
}
