/*
 * test_roundtrip.c - seeded random writer -> reader round trips of every
 * record type: tiny chunk sizes (so records land on every chunk boundary),
 * stored and zstd chunks, wide values, append mode, a pipe fed by a thread,
 * and the reader's tables (stacks, modules, thread names).
 */
#include "mstrace.h"
#include "tap.h"
#include "trace_io.h"

#include <pthread.h>

/*
 * Reads BUF back and compares every record with the stream regenerated
 * from SEED. Returns the number of mismatches (0 = perfect round trip).
 */
static int compare_stream(struct mst_reader *r, uint64_t seed, int nrec,
			  int wide, int with_end, int *final)
{
	const struct mst_record *got;
	struct mst_record want;
	struct gen g;
	char why[64];
	int bad = 0, st;

	gen_init(&g, seed);
	gen_header(&g, &want);
	st = mst_reader_next(r, &got);
	if (st != MST_OK || rec_diff(&want, got, why, sizeof(why))) {
		printf("# header differs (status %d)\n", st);
		bad++;
	}
	for (int i = 0; i < nrec && st == MST_OK; i++) {
		gen_next(&g, &want, wide);
		st = mst_reader_next(r, &got);
		if (st != MST_OK) {
			printf("# record %d: status %d: %s\n", i, st, mst_reader_error(r));
			bad++;
			break;
		}
		if (rec_diff(&want, got, why, sizeof(why))) {
			if (bad < 5)
				printf("# record %d (type %d): %s differs\n", i, want.type, why);
			bad++;
		}
	}
	if (with_end && st == MST_OK) {
		gen_end(&g, &want, 0);
		st = mst_reader_next(r, &got);
		if (st != MST_OK || got->type != MST_REC_END)
			bad++;
	}
	*final = st == MST_OK ? mst_reader_next(r, &got) : st;
	return bad;
}

static void test_matrix(void)
{
	static const size_t chunks[] = { 1, 16, 37, 100, 1000, 65536, 0 };
	static const int levels[] = { -1, 0, 1, 19 };
	int total = 0, failures = 0;

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
			for (int wide = 0; wide < 2; wide++) {
				uint64_t seed = 1000 + c * 100 + l * 10 + wide;
				struct membuf m = { 0 };
				struct mst_reader *r;
				int fd, st, final;
				st = write_random_trace(&m, seed, 1500, chunks[c], levels[l], wide, 1);
				if (st) {
					printf("# write failed: chunk %zu level %d: %d\n",
					       chunks[c], levels[l], st);
					failures++;
					continue;
				}
				st = open_bytes(&r, &fd, m.p, m.len);
				if (st || compare_stream(r, seed, 1500, wide, 1, &final) ||
				    final != MST_END) {
					printf("# chunk %zu level %d wide %d: open %d: %s\n",
					       chunks[c], levels[l], wide, st, mst_reader_error(r));
					failures++;
				}
				total++;
				close_bytes(r, fd);
				membuf_free(&m);
			}
		}
	}
	CHECK(failures == 0, "%d round trips (chunk sizes x stored/zstd levels x wide values) all equal", total);
}

/* Chunk size 1: every record is a chunk of its own. */
static void test_one_record_per_chunk(void)
{
	struct membuf m = { 0 };
	struct mst_reader *r;
	struct mst_reader_stats st;
	const struct mst_record *rec;
	int fd, n = 0, s;

	CHECK(write_random_trace(&m, 7, 300, 1, 0, 0, 1) == 0, "tiny-chunk trace written");
	open_bytes(&r, &fd, m.p, m.len);
	while ((s = mst_reader_next(r, &rec)) == MST_OK)
		n++;
	mst_reader_stats(r, &st);
	CHECK(s == MST_END && st.complete, "read to a complete end");
	CHECK(st.chunks == (uint64_t)n, "one chunk per record (%llu chunks, %d records)",
	      (unsigned long long)st.chunks, n);
	CHECK(st.bytes == m.len, "reader consumed every byte (%llu of %zu)",
	      (unsigned long long)st.bytes, m.len);
	CHECK(st.records == (uint64_t)n, "stats count the records delivered");
	close_bytes(r, fd);
	membuf_free(&m);
}

static int fail_sink(void *ctx, const void *buf, size_t len)
{
	(void)ctx; (void)buf; (void)len;
	return MST_ERR_IO;
}

static void test_writer_rules(void)
{
	struct membuf m = { 0 };
	struct mst_writer_options o = { .chunk_size = 256, .sink = membuf_sink, .sink_ctx = &m };
	struct mst_writer *w;
	struct mst_record rec = { 0 }, h;
	struct gen g;

	gen_init(&g, 3);
	CHECK(mst_writer_open(&w, -1, &o) == MST_OK, "writer opens on a sink");
	CHECK(m.len == 16, "preamble written at open (%zu bytes)", m.len);
	rec.type = MST_REC_THREAD_START;
	rec.u.thread_start.thread = 1;
	CHECK(mst_writer_add(w, &rec) == MST_ERR_INVALID, "a record before the HEADER is refused");
	gen_header(&g, &h);
	CHECK(mst_writer_add(w, &h) == MST_OK, "HEADER accepted");
	CHECK(mst_writer_add(w, &h) == MST_ERR_INVALID, "a second HEADER is refused");
	rec.u.thread_start.time = 100;
	CHECK(mst_writer_add(w, &rec) == MST_OK, "record at t=100");
	rec.u.thread_start.time = 99;
	CHECK(mst_writer_add(w, &rec) == MST_ERR_INVALID &&
	      strstr(mst_writer_error(w), "before the last written time"),
	      "a decreasing time is refused: %s", mst_writer_error(w));
	CHECK(mst_writer_last_time(w) == 100, "last time stays 100");
	rec.u.thread_start.time = 100;
	CHECK(mst_writer_add(w, &rec) == MST_OK, "an equal time is fine (clamped late record)");
	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_ALLOC;
	rec.u.alloc.time = 200;
	rec.u.alloc.func = 0;
	CHECK(mst_writer_add(w, &rec) == MST_ERR_INVALID, "alloc func 0 refused");
	rec.u.alloc.func = MST_ALLOC_MALLOC;
	rec.u.alloc.stack = 1;
	CHECK(mst_writer_add(w, &rec) == MST_ERR_INVALID, "an undefined stack is refused");
	rec.u.alloc.stack = 0;
	rec.u.alloc.addr = 0x1000;
	CHECK(mst_writer_add(w, &rec) == MST_OK, "valid alloc accepted");
	CHECK(mst_writer_events(w) == 1, "one event counted");
	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_COUNTERS;
	rec.u.counters.time = 300;
	rec.u.counters.count = 65;
	CHECK(mst_writer_add(w, &rec) == MST_ERR_LIMIT, "65 counters refused");
	CHECK(mst_writer_flush(w) == MST_OK, "flush");
	CHECK(mst_writer_bytes(w) == m.len && m.len > 16, "bytes counts what the sink got (%zu)", m.len);
	CHECK(mst_writer_close(w) == MST_OK, "close");
	membuf_free(&m);

	o.sink = fail_sink;
	CHECK(mst_writer_open(&w, -1, &o) == MST_ERR_IO, "a failing sink fails the open");
	mst_writer_close(w);

	o.sink = NULL;
	o.chunk_size = 32u << 20;
	CHECK(mst_writer_open(&w, -1, &o) == MST_ERR_INVALID, "a chunk size over 16 MiB is refused");
	mst_writer_close(w);
}

/* A record larger than the chunk size still goes out, alone in its chunk. */
static void test_big_record(void)
{
	struct membuf m = { 0 };
	struct mst_writer_options o = { .chunk_size = 64, .sink = membuf_sink, .sink_ctx = &m };
	static char big[100000];
	const char *argv[2] = { big, "x" };
	struct mst_writer *w;
	struct mst_reader *r;
	const struct mst_record *rec;
	struct mst_record h;
	struct gen g;
	int fd;

	memset(big, 'a', sizeof(big) - 1);
	gen_init(&g, 4);
	gen_header(&g, &h);
	h.u.header.argc = 2;
	h.u.header.argv = argv;
	mst_writer_open(&w, -1, &o);
	CHECK(mst_writer_add(w, &h) == MST_OK, "a 100 kB HEADER fits with chunk size 64");
	gen_end(&g, &h, 0);
	mst_writer_add(w, &h);
	CHECK(mst_writer_close(w) == MST_OK, "closed");
	CHECK(open_bytes(&r, &fd, m.p, m.len) == MST_OK, "read back");
	CHECK(strlen(mst_reader_header(r)->argv[0]) == sizeof(big) - 1, "argv[0] intact");
	CHECK(mst_reader_next(r, &rec) == MST_OK && rec->type == MST_REC_HEADER, "HEADER first");
	CHECK(mst_reader_next(r, &rec) == MST_OK && rec->type == MST_REC_END, "then END");
	CHECK(mst_reader_next(r, &rec) == MST_END, "then the end");
	CHECK(mst_reader_next(r, &rec) == MST_END, "and the end again");
	close_bytes(r, fd);
	membuf_free(&m);
}

/* Append: a second writer continues the trace without a preamble. */
static void test_append(void)
{
	struct membuf m = { 0 };
	struct mst_writer_options o = { .chunk_size = 100, .sink = membuf_sink, .sink_ctx = &m };
	struct mst_writer *w;
	struct mst_reader *r;
	const struct mst_record *rec;
	struct mst_record x;
	struct gen g;
	int fd, n = 0, st;
	size_t before;
	uint64_t stacks;

	gen_init(&g, 5);
	mst_writer_open(&w, -1, &o);
	gen_header(&g, &x);
	mst_writer_add(w, &x);
	for (int i = 0; i < 200; i++) {
		gen_next(&g, &x, 0);
		mst_writer_add(w, &x);
	}
	mst_writer_close(w);
	before = m.len;

	o.append = 1;
	CHECK(mst_writer_open(&w, -1, &o) == MST_OK, "append writer opens");
	CHECK(m.len == before, "no preamble when appending");
	mst_writer_set_last_time(w, g.time);
	x.type = MST_REC_THREAD_START;
	x.u.thread_start.time = g.time ? g.time - 1 : 0;
	CHECK(g.time == 0 || mst_writer_add(w, &x) == MST_ERR_INVALID,
	      "appending refuses a time before set_last_time");
	stacks = g.stacks;             /* what the first writer wrote */
	gen_next(&g, &x, 0);           /* (only to move the time on) */
	memset(&x, 0, sizeof(x));
	x.type = MST_REC_FREE;
	x.u.free.time = g.time;
	x.u.free.func = MST_FREE_FREE;
	x.u.free.addr = 0x1234560;
	x.u.free.stack = stacks;
	CHECK(mst_writer_add(w, &x) == MST_OK, "appended a FREE using an earlier stack");
	gen_end(&g, &x, 0);
	mst_writer_add(w, &x);
	mst_writer_close(w);

	open_bytes(&r, &fd, m.p, m.len);
	while ((st = mst_reader_next(r, &rec)) == MST_OK) {
		n++;
		if (rec->type == MST_REC_FREE && rec->u.free.addr == 0x1234560)
			CHECK(rec->u.free.stack == stacks, "appended FREE read back");
	}
	CHECK(st == MST_END, "appended trace is complete: %s", mst_reader_error(r));
	CHECK(n == 203, "all records of both writers read (%d)", n);
	close_bytes(r, fd);
	membuf_free(&m);
}

struct feeder { int fd; const uint8_t *p; size_t len; };

static void *feed(void *arg)
{
	struct feeder *f = arg;
	/* Small, uneven writes so reads see partial chunks. */
	for (size_t off = 0; off < f->len;) {
		size_t n = f->len - off < 777 ? f->len - off : 777;
		ssize_t k = write(f->fd, f->p + off, n);
		if (k <= 0)
			break;
		off += k;
	}
	close(f->fd);
	return NULL;
}

static void test_pipe(void)
{
	struct membuf m = { 0 };
	struct mst_reader *r;
	pthread_t t;
	int p[2], final;

	write_random_trace(&m, 99, 5000, 4096, 0, 0, 1);
	CHECK(pipe(p) == 0, "pipe");
	struct feeder f = { p[1], m.p, m.len };
	pthread_create(&t, NULL, feed, &f);
	CHECK(mst_reader_open_fd(&r, p[0], "pipe") == MST_OK, "reader opens on a pipe");
	CHECK(compare_stream(r, 99, 5000, 0, 1, &final) == 0 && final == MST_END,
	      "a trace through a pipe reads back equal and complete");
	pthread_join(t, NULL);
	mst_reader_close(r);
	close(p[0]);
	membuf_free(&m);
}

static void test_tables(void)
{
	struct membuf m = { 0 };
	struct mst_writer_options o = { .chunk_size = 64, .sink = membuf_sink, .sink_ctx = &m };
	struct mst_writer *w;
	struct mst_reader *r;
	const struct mst_record *rec;
	struct mst_record x;
	struct gen g;
	struct mst_segment segs[2] = {
		{ .vaddr = 0, .memsz = 0x1000, .flags = MST_SEG_READ },
		{ .vaddr = 0x2000, .memsz = 0x3000, .flags = MST_SEG_READ | MST_SEG_EXEC },
	};
	uint64_t ips[8], parent, ip;
	int fd;

	gen_init(&g, 6);
	mst_writer_open(&w, -1, &o);
	gen_header(&g, &x);
	mst_writer_add(w, &x);
	/* Stack 1 <- 2 <- 3 (3 innermost), and 4 a sibling of 2. */
	for (int i = 1; i <= 4; i++) {
		memset(&x, 0, sizeof(x));
		x.type = MST_REC_STACK;
		x.u.stack.parent = i == 4 ? 1 : i - 1;
		x.u.stack.ip = 0x1000 * i;
		mst_writer_add(w, &x);
	}
	for (int i = 0; i < 3; i++) {
		memset(&x, 0, sizeof(x));
		x.type = MST_REC_MODULE_LOAD;
		x.u.module_load.time = 10;
		x.u.module_load.module = i == 2 ? 1 : i + 1;   /* id 1 reloaded */
		x.u.module_load.base = i == 1 ? 0x100000 : 0x7000000;
		x.u.module_load.path = i == 0 ? "/lib/a.so" : i == 1 ? "/bin/main" : "/lib/a2.so";
		x.u.module_load.nsegs = 2;
		x.u.module_load.segs = segs;
		mst_writer_add(w, &x);
	}
	memset(&x, 0, sizeof(x));
	x.type = MST_REC_THREAD_NAME;
	x.u.thread_name.time = 20;
	x.u.thread_name.thread = 3;
	x.u.thread_name.name = "worker";
	mst_writer_add(w, &x);
	x.u.thread_name.name = "renamed";
	mst_writer_add(w, &x);
	mst_writer_close(w);

	open_bytes(&r, &fd, m.p, m.len);
	while (mst_reader_next(r, &rec) == MST_OK)
		;
	CHECK(mst_reader_stack_count(r) == 4, "four stack nodes");
	CHECK(mst_reader_stack_frames(r, 3, ips, 8) == 3 && ips[0] == 0x3000 &&
	      ips[1] == 0x2000 && ips[2] == 0x1000, "stack 3 is 3,2,1 innermost first");
	CHECK(mst_reader_stack_frames(r, 3, ips, 1) == 3 && ips[0] == 0x3000,
	      "a short array gets the innermost frames and the full depth");
	CHECK(mst_reader_stack_frames(r, 0, ips, 8) == 0, "stack 0 is empty");
	CHECK(mst_reader_stack_frames(r, 5, ips, 8) == 0, "an unknown stack is empty");
	CHECK(mst_reader_stack_node(r, 4, &parent, &ip) == MST_OK && parent == 1 && ip == 0x4000,
	      "node 4 is (1, 0x4000)");
	CHECK(mst_reader_stack_node(r, 9, &parent, &ip) == MST_ERR_INVALID, "node 9 unknown");
	CHECK(mst_reader_module_at(r, 0x100000 + 0x2500) &&
	      strcmp(mst_reader_module_at(r, 0x102500)->path, "/bin/main") == 0,
	      "ip in main's second segment");
	CHECK(mst_reader_module_at(r, 0x101500) == NULL, "ip between segments: no module");
	CHECK(mst_reader_module_at(r, 0x105000) == NULL, "ip at a segment's end: no module");
	CHECK(mst_reader_module_at(r, 0x7000010) &&
	      strcmp(mst_reader_module_at(r, 0x7000010)->path, "/lib/a2.so") == 0,
	      "overlapping reload: the latest module wins");
	CHECK(mst_reader_module(r, 1) && strcmp(mst_reader_module(r, 1)->path, "/lib/a2.so") == 0,
	      "module 1 is its latest definition");
	CHECK(mst_reader_module(r, 2) && mst_reader_module(r, 2)->nsegs == 2 &&
	      mst_reader_module(r, 2)->segs[1].memsz == 0x3000, "module 2 keeps its segments");
	CHECK(mst_reader_module(r, 3) == NULL, "module 3 unknown");
	CHECK(mst_reader_thread_name(r, 3) && strcmp(mst_reader_thread_name(r, 3), "renamed") == 0,
	      "thread 3's last name");
	CHECK(mst_reader_thread_name(r, 4) == NULL, "thread 4 has no name");
	close_bytes(r, fd);
	membuf_free(&m);
}

/*
 * Address chains are per thread within a chunk; a chunk holds at most 512
 * threads' chains, so 2000 threads in a row must split chunks and still
 * read back exactly, unaligned and far-apart addresses included.
 */
static void test_many_threads(void)
{
	struct membuf m = { 0 };
	struct mst_writer_options o = { .chunk_size = 1 << 20, .sink = membuf_sink, .sink_ctx = &m };
	struct mst_writer *w;
	struct mst_reader *r;
	struct mst_reader_stats st;
	const struct mst_record *rec;
	struct mst_record x;
	struct gen g;
	int fd, bad = 0, n = 0, s;

	gen_init(&g, 12);
	mst_writer_open(&w, -1, &o);
	gen_header(&g, &x);
	mst_writer_add(w, &x);
	for (int round = 0; round < 3; round++) {
		for (uint64_t t = 0; t < 2000; t++) {
			memset(&x, 0, sizeof(x));
			x.type = round == 1 ? MST_REC_FREE : MST_REC_ALLOC;
			if (round == 1) {
				x.u.free = (struct mst_free){ 10 + round, t * 7919, MST_FREE_FREE,
							      0x7f0000000000ull + t * 4096 + (t & 15), 0 };
			} else {
				x.u.alloc = (struct mst_alloc){ 10 + round, t * 7919, MST_ALLOC_REALLOC,
								0x7f0000000000ull + t * 4096 + (t & 15) + round,
								t, 0, 0, round ? 0x1008 : 0 };
			}
			if (mst_writer_add(w, &x) != MST_OK)
				bad++;
		}
	}
	mst_writer_close(w);
	open_bytes(&r, &fd, m.p, m.len);
	while ((s = mst_reader_next(r, &rec)) == MST_OK) {
		uint64_t t = n % 2000;
		int round = n / 2000;
		if (rec->type == MST_REC_HEADER)
			continue;
		if (round == 1) {
			if (rec->type != MST_REC_FREE || rec->u.free.thread != t * 7919 ||
			    rec->u.free.addr != 0x7f0000000000ull + t * 4096 + (t & 15))
				bad++;
		} else if (rec->type != MST_REC_ALLOC || rec->u.alloc.thread != t * 7919 ||
			   rec->u.alloc.addr != 0x7f0000000000ull + t * 4096 + (t & 15) + round ||
			   rec->u.alloc.old_addr != (round ? 0x1008u : 0)) {
			bad++;
		}
		n++;
	}
	mst_reader_stats(r, &st);
	CHECK(bad == 0 && n == 6000, "2000 threads x 3 rounds read back exactly (%d records, %d bad)", n, bad);
	CHECK(st.chunks >= 12, "a chunk ends after 512 threads' chains (%llu chunks)",
	      (unsigned long long)st.chunks);
	CHECK(s == MST_ERR_TRUNCATED, "no END: truncated");
	close_bytes(r, fd);
	membuf_free(&m);
}

int main(void)
{
	test_matrix();
	test_one_record_per_chunk();
	test_writer_rules();
	test_big_record();
	test_append();
	test_pipe();
	test_tables();
	test_many_threads();
	return tap_done();
}
