/*
 * test_prefetch.c - the reader's read-ahead thread (mst__reader_prefetch,
 * model_feed.h): a reader whose chunks are read, checked and decompressed
 * on another thread delivers exactly the records of one reading on the
 * calling thread, then the same status, the same error text and the same
 * statistics, on intact traces and on traces damaged in a late chunk
 * (a bad CRC, cut short inside a chunk, garbage after the end); and a
 * reader closed while the thread is ahead neither hangs nor leaks.
 */
#include "mstrace.h"
#include "model_feed.h"
#include "tap.h"
#include "trace_io.h"

struct side {
	struct mst_reader *r;
	int fd, status;
};

/* Number of differences between reading B plainly and with read-ahead. */
static int compare_reads(const struct membuf *m, size_t *nrec)
{
	struct side a = { 0 }, b = { 0 };
	struct mst_reader_stats sa, sb;
	char why[64];
	int bad = 0;

	*nrec = 0;
	a.status = open_bytes(&a.r, &a.fd, m->p, m->len);
	b.status = open_bytes(&b.r, &b.fd, m->p, m->len);
	if (b.status == MST_OK && mst__reader_prefetch(b.r) != 0) {
		printf("# the read-ahead thread did not start\n");
		bad++;
	}
	while (a.status == MST_OK && b.status == MST_OK) {
		const struct mst_record *ra, *rb;
		a.status = mst_reader_next(a.r, &ra);
		b.status = mst_reader_next(b.r, &rb);
		if (a.status != MST_OK || b.status != MST_OK)
			break;
		/* compared at once: strings are borrowed until the next call */
		if (rec_diff(ra, rb, why, sizeof(why))) {
			if (bad < 5)
				printf("# record %zu differs: %s\n", *nrec, why);
			bad++;
		}
		(*nrec)++;
	}
	if (a.status != b.status ||
	    strcmp(a.r ? mst_reader_error(a.r) : "", b.r ? mst_reader_error(b.r) : "")) {
		printf("# status %d/%d, '%s' / '%s'\n", a.status, b.status,
		       a.r ? mst_reader_error(a.r) : "", b.r ? mst_reader_error(b.r) : "");
		bad++;
	}
	if (a.r && b.r) {
		mst_reader_stats(a.r, &sa);
		mst_reader_stats(b.r, &sb);
		if (memcmp(&sa, &sb, sizeof(sa)) != 0) {
			printf("# stats differ: chunks %llu/%llu bytes %llu/%llu records %llu/%llu\n",
			       (unsigned long long)sa.chunks, (unsigned long long)sb.chunks,
			       (unsigned long long)sa.bytes, (unsigned long long)sb.bytes,
			       (unsigned long long)sa.records, (unsigned long long)sb.records);
			bad++;
		}
	}
	close_bytes(a.r, a.fd);
	close_bytes(b.r, b.fd);
	return bad;
}

enum damage { INTACT, BAD_CRC, CUT, GARBAGE, NDAMAGE };

static void damage(struct membuf *m, enum damage d)
{
	switch (d) {
	case INTACT:
		break;
	case BAD_CRC:
		m->p[m->len * 2 / 3] ^= 0x5a;
		break;
	case CUT:
		m->len = m->len * 3 / 5;
		break;
	case GARBAGE:
		membuf_sink(m, "garbage", 7);
		break;
	case NDAMAGE:
		break;
	}
}

static void test_same(void)
{
	static const char *names[NDAMAGE] = { "intact", "a bad CRC", "cut short", "garbage after" };

	for (int d = INTACT; d < NDAMAGE; d++) {
		int bad = 0, errors = 0;
		size_t most = 0;

		for (int level = -1; level <= 1; level += 2) {
			for (uint64_t seed = 1; seed <= 3; seed++) {
				struct membuf m = { 0 };
				size_t n;

				if (write_random_trace(&m, seed * 11 + d, 20000, 4096, level,
						       seed == 2, 1)) {
					bad++;
					continue;
				}
				damage(&m, (enum damage)d);
				bad += compare_reads(&m, &n);
				if (n > most)
					most = n;
				membuf_free(&m);
				errors++;
			}
		}
		CHECK(bad == 0 && errors == 6 && most > 10000,
		      "%s: read-ahead gives the same records, status, error and stats (%zu records)",
		      names[d], most);
	}
}

/* Closing a reader whose thread is ahead (or waiting for a free slot). */
static void test_close_early(void)
{
	struct membuf m = { 0 };
	const struct mst_record *rec;
	struct mst_reader *r;
	int fd, st, got = 0;

	CHECK(write_random_trace(&m, 99, 20000, 4096, 1, 0, 1) == 0, "a trace is written");
	st = open_bytes(&r, &fd, m.p, m.len);
	CHECK(st == MST_OK && mst__reader_prefetch(r) == 0, "read-ahead starts");
	CHECK(mst__reader_prefetch(r) == 0, "starting it again is harmless");
	while (got < 100 && mst_reader_next(r, &rec) == MST_OK)
		got++;
	close_bytes(r, fd);
	CHECK(got == 100, "a reader closed after 100 records, its thread ahead, ends");
	membuf_free(&m);
}

int main(void)
{
	test_same();
	test_close_early();
	return tap_done();
}
