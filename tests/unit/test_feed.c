/*
 * test_feed.c - the reader's batch path for the model (model_feed.h):
 * mst__reader_events, with mst_reader_next for what it stops at, delivers
 * exactly the records mst_reader_next alone does, in the same order, with
 * the same final status and error, on random traces (realistic and wide
 * values, stored and zstd chunks, cut short or not), and stops before an
 * event a compact event cannot hold (a thread index above 32 bits).
 */
#include "mstrace.h"
#include "model_feed.h"
#include "tap.h"
#include "trace_io.h"

#define MAXREC 40000

struct run {
	struct mst_record *recs;      /* ALLOC and FREE records, in order */
	size_t n;
	size_t compact;               /* of them, delivered by the batch */
	int status;
	char err[384];
	uint64_t records;             /* mst_reader_stats */
};

static void keep(struct run *x, const struct mst_record *rec)
{
	if (x->n < MAXREC)
		x->recs[x->n] = *rec;
	x->n++;
}

/* Every record through mst_reader_next. */
static void read_plain(const struct membuf *m, struct run *x)
{
	const struct mst_record *rec;
	struct mst_reader_stats st;
	struct mst_reader *r;
	int fd;

	x->status = open_bytes(&r, &fd, m->p, m->len);
	while (x->status == MST_OK && (x->status = mst_reader_next(r, &rec)) == MST_OK)
		if (rec->type == MST_REC_ALLOC || rec->type == MST_REC_FREE)
			keep(x, rec);
	snprintf(x->err, sizeof(x->err), "%s", r ? mst_reader_error(r) : "");
	if (r) {
		mst_reader_stats(r, &st);
		x->records = st.records;
	}
	mst_reader_close(r);
	close(fd);
}

/*
 * Batches of BATCH events, mst_reader_next where a batch comes back empty;
 * AHEAD: with the read-ahead thread, which decodes the events of chunks
 * ahead (as mst_model_read reads).
 */
static void read_batched(const struct membuf *m, struct run *x, size_t batch, int ahead)
{
	static struct mst__event ev[512];
	const struct mst_record *rec;
	struct mst_reader_stats st;
	struct mst_reader *r;
	int fd;

	x->status = open_bytes(&r, &fd, m->p, m->len);
	if (ahead && x->status == MST_OK && mst__reader_prefetch(r) != 0)
		x->status = -999;
	while (x->status == MST_OK) {
		size_t k = mst__reader_events(r, ev, batch);
		for (size_t i = 0; i < k; i++) {
			struct mst_record c = { .type = mst__ev_type(&ev[i]) };
			if (mst__ev_type(&ev[i]) == MST_REC_ALLOC)
				c.u.alloc = (struct mst_alloc){
					.time = ev[i].time, .thread = ev[i].thread,
					.func = mst__ev_func(&ev[i]), .addr = ev[i].addr,
					.size = mst__ev_size(&ev[i]), .stack = ev[i].stack,
				};
			else
				c.u.free = (struct mst_free){
					.time = ev[i].time, .thread = ev[i].thread,
					.func = mst__ev_func(&ev[i]), .addr = ev[i].addr,
					.stack = ev[i].stack,
				};
			keep(x, &c);
		}
		x->compact += k;
		if (k)
			continue;
		if ((x->status = mst_reader_next(r, &rec)) != MST_OK)
			break;
		if (rec->type == MST_REC_ALLOC || rec->type == MST_REC_FREE)
			keep(x, rec);
	}
	snprintf(x->err, sizeof(x->err), "%s", r ? mst_reader_error(r) : "");
	if (r) {
		mst_reader_stats(r, &st);
		x->records = st.records;
	}
	mst_reader_close(r);
	close(fd);
}

/* Number of differences between the two runs (0: the same). */
static int compare(const struct run *a, const struct run *b)
{
	char why[64];
	int bad = 0;

	if (a->n != b->n || a->status != b->status || strcmp(a->err, b->err) != 0 ||
	    a->records != b->records) {
		printf("# %zu/%zu events, status %d/%d, records %llu/%llu, '%s' / '%s'\n",
		       a->n, b->n, a->status, b->status, (unsigned long long)a->records,
		       (unsigned long long)b->records, a->err, b->err);
		bad++;
	}
	for (size_t i = 0; i < a->n && i < b->n && i < MAXREC; i++) {
		if (rec_diff(&a->recs[i], &b->recs[i], why, sizeof(why))) {
			if (bad < 5)
				printf("# event %zu differs: %s\n", i, why);
			bad++;
		}
	}
	return bad;
}

static void test_random(int ahead)
{
	struct run a = { 0 }, b = { 0 };
	int bad = 0, some_compact = 1, some_whole = 0;

	a.recs = calloc(MAXREC, sizeof(*a.recs));
	b.recs = calloc(MAXREC, sizeof(*b.recs));
	if (!a.recs || !b.recs)
		abort();
	for (int wide = 0; wide < 2; wide++) {
		for (int level = -1; level <= 1; level += 2) {
			for (uint64_t seed = 1; seed <= 3; seed++) {
				struct membuf m = { 0 };
				int with_end = seed != 3;      /* one cut short */
				size_t batch = seed == 2 ? 1 : 512;

				if (write_random_trace(&m, seed * 7 + wide, 30000, 1 << 16,
						       level, wide, with_end)) {
					bad++;
					continue;
				}
				/* damage in a late chunk: a flipped byte */
				if (ahead && seed == 1)
					m.p[m.len * 3 / 4] ^= 0x21;
				a.n = b.n = b.compact = 0;
				read_plain(&m, &a);
				read_batched(&m, &b, batch, ahead);
				bad += compare(&a, &b);
				if (b.compact == 0)
					some_compact = 0;
				if (b.compact < b.n)
					some_whole = 1;
				membuf_free(&m);
			}
		}
	}
	CHECK(bad == 0, "batches%s deliver what mst_reader_next does: same events, status, error",
	      ahead ? " decoded ahead" : "");
	CHECK(some_compact && some_whole,
	      "each trace has compact events, and some events (reallocs, aligned) travel whole");
	free(a.recs);
	free(b.recs);
}

/* A thread index above 32 bits: the batch stops, mst_reader_next has it. */
static void test_wide_thread(void)
{
	struct mst_writer_options o = { .chunk_size = 4096, .zstd_level = -1,
					.sink = membuf_sink, .sink_ctx = NULL };
	struct membuf m = { 0 };
	struct mst_writer *w;
	struct mst_record rec;
	struct gen g;
	struct run a = { 0 }, b = { 0 };
	uint64_t threads[3] = { 1, 1ull << 40, 2 };

	o.sink_ctx = &m;
	gen_init(&g, 5);
	mst_writer_open(&w, -1, &o);
	gen_header(&g, &rec);
	mst_writer_add(w, &rec);
	for (int i = 0; i < 30; i++) {
		memset(&rec, 0, sizeof(rec));
		rec.type = i % 2 ? MST_REC_FREE : MST_REC_ALLOC;
		if (i % 2) {
			rec.u.free = (struct mst_free){ .time = 100 + i, .thread = threads[i / 2 % 3],
							.func = MST_FREE_FREE,
							.addr = 0x1000 + 16 * (i / 2) };
		} else {
			rec.u.alloc = (struct mst_alloc){ .time = 100 + i, .thread = threads[i / 2 % 3],
							  .func = MST_ALLOC_MALLOC,
							  .addr = 0x1000 + 16 * (i / 2), .size = 24 };
		}
		mst_writer_add(w, &rec);
	}
	gen_end(&g, &rec, mst_writer_events(w));
	rec.u.end.time = 1000;
	mst_writer_add(w, &rec);
	CHECK(mst_writer_close(w) == MST_OK, "a trace with a thread index of 2^40 is written");
	a.recs = calloc(MAXREC, sizeof(*a.recs));
	b.recs = calloc(MAXREC, sizeof(*b.recs));
	if (!a.recs || !b.recs)
		abort();
	read_plain(&m, &a);
	read_batched(&m, &b, 512, 0);
	CHECK(compare(&a, &b) == 0 && a.n == 30 && a.status == MST_END,
	      "events of a thread above 32 bits come whole, in order, the same");
	/* (the last records of a chunk take mst_reader_next too) */
	CHECK(b.compact > 0 && b.compact <= 20,
	      "only the other threads' events are compact (%zu of 30)", b.compact);
	free(a.recs);
	free(b.recs);
	membuf_free(&m);
}

int main(void)
{
	test_random(0);
	test_random(1);
	test_wide_thread();
	return tap_done();
}
