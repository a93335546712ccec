/*
 * test_writer.c - the writer's promises to the recorder: no allocation
 * after open (malloc is interposed and counted), write(2) output through
 * short writes and a full disk, and chunks that never split a record.
 */
#include "mstrace.h"
#include "tap.h"
#include "trace_io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#if !defined(__SANITIZE_ADDRESS__) && !defined(__has_feature)
#define COUNT_MALLOC 1
#elif !defined(__SANITIZE_ADDRESS__) && defined(__has_feature)
#if !__has_feature(address_sanitizer)
#define COUNT_MALLOC 1
#endif
#endif

#ifdef COUNT_MALLOC
/* Every allocation of the process, libzstd's included, passes here. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile long allocs;

void *malloc(size_t n)
{
	allocs++;
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	allocs++;
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	allocs++;
	return __libc_realloc(p, n);
}

void *aligned_alloc(size_t al, size_t n)
{
	allocs++;
	return __libc_memalign(al, n);
}

int posix_memalign(void **p, size_t al, size_t n)
{
	allocs++;
	*p = __libc_memalign(al, n);
	return *p ? 0 : ENOMEM;
}

static int null_sink(void *ctx, const void *buf, size_t len)
{
	(void)ctx; (void)buf; (void)len;
	return 0;
}

static void test_no_allocation(int level)
{
	struct mst_writer_options o = { .chunk_size = 4096, .zstd_level = level,
					.sink = null_sink };
	struct mst_writer *w;
	struct mst_record rec;
	struct gen g;
	long before, made;
	int bad = 0;

	gen_init(&g, 9);
	mst_writer_open(&w, -1, &o);
	gen_header(&g, &rec);
	mst_writer_add(w, &rec);
	before = allocs;
	for (int i = 0; i < 200000; i++) {
		gen_next(&g, &rec, 0);
		if (rec.type == MST_REC_SYMBOLS)
			continue;       /* may be large; not a recorder record */
		if (mst_writer_add(w, &rec) != MST_OK)
			bad++;
	}
	mst_writer_flush(w);
	made = allocs - before;         /* before printing: stdio allocates */
	CHECK(bad == 0 && made == 0,
	      "level %d: 200000 records and %llu bytes of chunks without one allocation (%ld made)",
	      level, (unsigned long long)mst_writer_bytes(w), made);
	mst_writer_close(w);
}
#endif

struct drain { int fd; size_t got; };

static void *drain_pipe(void *arg)
{
	struct drain *d = arg;
	char buf[1000];
	ssize_t n;

	/* Slow, small reads: the writer sees short writes and blocks. */
	while ((n = read(d->fd, buf, sizeof(buf))) > 0)
		d->got += n;
	return NULL;
}

static void test_fd_output(void)
{
	struct mst_writer_options o = { .chunk_size = 1 << 20, .zstd_level = -1 };
	struct mst_writer *w;
	struct mst_record rec;
	struct gen g;
	struct drain d;
	pthread_t t;
	int p[2], st = 0, fd;
	uint64_t total;

	CHECK(pipe(p) == 0, "pipe");
	d = (struct drain){ p[0], 0 };
	pthread_create(&t, NULL, drain_pipe, &d);
	gen_init(&g, 10);
	mst_writer_open(&w, p[1], &o);
	gen_header(&g, &rec);
	mst_writer_add(w, &rec);
	for (int i = 0; i < 50000 && !st; i++) {
		gen_next(&g, &rec, 0);
		st = mst_writer_add(w, &rec);
	}
	gen_end(&g, &rec, mst_writer_events(w));
	mst_writer_add(w, &rec);
	st = mst_writer_flush(w) || st;
	total = mst_writer_bytes(w);
	st = mst_writer_close(w) || st;
	close(p[1]);
	pthread_join(t, NULL);
	close(p[0]);
	CHECK(st == 0, "1 MiB stored chunks through a pipe read in 1000-byte pieces");
	CHECK(d.got == total && total > 100000, "every byte arrived (%zu of %llu)", d.got,
	      (unsigned long long)total);

	fd = open("/dev/full", O_WRONLY);
	if (fd >= 0) {
		o.chunk_size = 0;
		st = mst_writer_open(&w, fd, &o);
		CHECK(st == MST_ERR_IO && strstr(mst_writer_error(w), "No space left on device"),
		      "a full disk fails at the preamble: %s", mst_writer_error(w));
		mst_writer_close(w);
		o.append = 1;
		mst_writer_open(&w, fd, &o);
		mst_writer_set_last_time(w, 0);
		rec.type = MST_REC_THREAD_EXIT;
		rec.u.thread_exit = (struct mst_thread_exit){ 1, 1 };
		mst_writer_add(w, &rec);
		st = mst_writer_flush(w);
		CHECK(st == MST_ERR_IO, "a full disk fails the flush");
		CHECK(mst_writer_add(w, &rec) == MST_ERR_IO, "and the error sticks");
		CHECK(mst_writer_close(w) == MST_ERR_IO, "close reports it");
		close(fd);
	}
}

/* Every chunk holds whole records: each sink call alone decodes. */
static void test_whole_records(void)
{
	struct membuf m = { 0 };
	int ok = 1;

	write_random_trace(&m, 11, 2000, 50, 0, 1, 1);
	for (size_t k = 1; k < m.ncalls && k < 4096; k++) {
		/* Preamble + the HEADER chunk + chunk k alone must read. */
		struct membuf one = { 0 };
		struct mst_reader *r;
		const struct mst_record *rec;
		int fd, st;
		membuf_sink(&one, m.p, m.chunk_ends[1]);
		if (k > 1)
			membuf_sink(&one, m.p + m.chunk_ends[k - 1], m.chunk_ends[k] - m.chunk_ends[k - 1]);
		st = open_bytes(&r, &fd, one.p, one.len);
		while (st == MST_OK)
			st = mst_reader_next(r, &rec);
		/* Stacks and times refer to earlier chunks, so a lone chunk
		 * may be refused as corrupt for those reasons, never because
		 * a record is cut. */
		if (st != MST_END && st != MST_ERR_TRUNCATED &&
		    !(st == MST_ERR_CORRUPT && (strstr(mst_reader_error(r), "stack") ||
						strstr(mst_reader_error(r), "backwards"))))
			ok = 0;
		close_bytes(r, fd);
		membuf_free(&one);
	}
	CHECK(ok, "each of %zu chunks decodes on its own: no record spans chunks", m.ncalls - 1);
	membuf_free(&m);
}

/*
 * Stored bytes of N malloc/free pairs on one thread, in batches of 100:
 * blocks 32 bytes apart, freed in the order they were allocated (FIFO) or
 * the reverse (LIFO), and written stored so the encoding itself is measured.
 * Also checks that every free reads back with its address.
 */
static double bytes_per_pair(int lifo, int n)
{
	struct mst_writer_options o = { .chunk_size = 1 << 20, .zstd_level = -1,
					.sink = membuf_sink };
	struct membuf m = { 0 }, base = { 0 };
	struct mst_writer *w;
	struct mst_record rec;
	struct mst_reader *r;
	const struct mst_record *got;
	struct gen g;
	uint64_t t = 0, bad = 0, frees = 0;
	int fd, st;

	gen_init(&g, 3);
	for (int pass = 0; pass < 2; pass++) {
		o.sink_ctx = pass ? &m : &base;
		mst_writer_open(&w, -1, &o);
		gen_header(&g, &rec);
		mst_writer_add(w, &rec);
		memset(&rec, 0, sizeof(rec));
		rec.type = MST_REC_THREAD_START;
		rec.u.thread_start.thread = 1;
		mst_writer_add(w, &rec);
		for (int b = 0; pass && b < n / 100; b++) {
			for (int i = 0; i < 200; i++) {
				int k = i < 100 ? i : lifo ? 199 - i : i - 100;
				uint64_t addr = 0x555555560000ull + 32 * (uint64_t)k;
				memset(&rec, 0, sizeof(rec));
				if (i < 100) {
					rec.type = MST_REC_ALLOC;
					rec.u.alloc = (struct mst_alloc){ .time = ++t, .thread = 1,
						.func = MST_ALLOC_MALLOC, .addr = addr, .size = 24 };
				} else {
					rec.type = MST_REC_FREE;
					rec.u.free = (struct mst_free){ .time = ++t, .thread = 1,
						.func = MST_FREE_FREE, .addr = addr };
				}
				mst_writer_add(w, &rec);
			}
		}
		mst_writer_close(w);
	}
	st = open_bytes(&r, &fd, m.p, m.len);
	t = 0;
	while (st == MST_OK && (st = mst_reader_next(r, &got)) == MST_OK) {
		if (got->type == MST_REC_ALLOC)
			t++;
		if (got->type != MST_REC_FREE)
			continue;
		uint64_t i = frees++ % 100, k = lifo ? 99 - i : i;
		bad += got->u.free.addr != 0x555555560000ull + 32 * k;
	}
	CHECK(st == MST_ERR_TRUNCATED && bad == 0 && frees == (uint64_t)n && t == (uint64_t)n,
	      "%s frees read back with their addresses (%llu wrong)", lifo ? "LIFO" : "FIFO",
	      (unsigned long long)bad);
	close_bytes(r, fd);
	double per = (double)(m.len - base.len) / n;
	membuf_free(&m);
	membuf_free(&base);
	return per;
}

/* FREE_REF: a free in allocation order, or its reverse, takes 4 bytes. */
static void test_free_ref_size(void)
{
	double fifo = bytes_per_pair(0, 10000), lifo = bytes_per_pair(1, 10000);

	/* ALLOC: type, size, stack, time, address (5 bytes); FREE_REF: type,
	 * stack, time, reference (4); an address delta would take 2 more. */
	CHECK(fifo <= 9.05, "FIFO frees by reference: %.2f stored bytes per pair", fifo);
	CHECK(lifo <= 9.05, "LIFO frees by reference: %.2f stored bytes per pair", lifo);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
#ifdef COUNT_MALLOC
	test_no_allocation(0);
	test_no_allocation(-1);
	test_no_allocation(19);
#endif
	test_fd_output();
	test_whole_records();
	test_free_ref_size();
	return tap_done();
}
