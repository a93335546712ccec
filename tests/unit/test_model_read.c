/*
 * test_model_read.c - the model's fast reading against its plain one.
 * mst_model_read takes runs of ordinary events through fast paths of its
 * own (the read-ahead thread's pd_run in reader.c, the analysing thread's
 * add_run in model.c) that keep state in registers and fall back to the
 * per-record code for anything unusual. Every figure must be what feeding
 * the same records one by one to mst_model_add gives. The traces here are
 * churn-like (long runs of one thread, site and free stack, which the fast
 * paths take) broken by everything that must stop a run, and by what a
 * run takes in its stride: thread switches (known and new threads), sites
 * and free stacks (known, which add_run looks up, and new), reallocs, tasks,
 * labels, frees of unknown or NULL addresses, allocations of a live
 * address, counters, drops, time jumps that merge timeline buckets, and
 * live sets large enough for the prefetching variant; with and without
 * per-thread series (ms-svg --by-thread), on one thread and on two.
 */
#include "mstrace.h"
#include "tap.h"
#include "trace_io.h"

#include <stdlib.h>
#include <string.h>

#define MOD_BASE 0x7f1000000000ull

struct churn {
	struct mst_writer *w;
	uint64_t rng, time, stacks, threads, task, tasks_open[64];
	int st;
	uint64_t *live;               /* addresses live now */
	uint64_t *live_thread;
	size_t nlive, cap;
	uint64_t next_addr;
};

static uint64_t rnd(struct churn *c, uint64_t n)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return n ? c->rng % n : 0;
}

static void put(struct churn *c, struct mst_record *r)
{
	if (!c->st)
		c->st = mst_writer_add(c->w, r);
}

static void tick(struct churn *c)
{
	/* mostly a few ticks; now and then a long pause (the timeline's
	 * buckets merge as the trace grows) */
	c->time += rnd(c, 50) ? rnd(c, 300) : rnd(c, 200) ? rnd(c, 100000) : 50000000;
}

static uint64_t new_stack(struct churn *c)
{
	struct mst_record r = { .type = MST_REC_STACK };
	r.u.stack.parent = c->stacks ? rnd(c, c->stacks + 1) : 0;
	/* in the two modules, so that module figures and crossing move */
	r.u.stack.ip = MOD_BASE + rnd(c, 2) * 0x100000 + rnd(c, 0x8000);
	put(c, &r);
	return ++c->stacks;
}

static uint64_t new_thread(struct churn *c)
{
	struct mst_record r = { .type = MST_REC_THREAD_START };
	r.u.thread_start.time = c->time;
	r.u.thread_start.thread = ++c->threads;
	r.u.thread_start.tid = 5000 + c->threads;
	r.u.thread_start.parent = c->threads > 1 ? 1 : 0;
	put(c, &r);
	return c->threads;
}

static void alloc_at(struct churn *c, uint64_t thread, uint64_t stack, uint64_t addr,
		     uint64_t size, int func)
{
	struct mst_record r = { .type = MST_REC_ALLOC };
	tick(c);
	r.u.alloc.time = c->time;
	r.u.alloc.thread = thread;
	r.u.alloc.func = (uint8_t)func;
	r.u.alloc.addr = addr;
	r.u.alloc.size = size;
	r.u.alloc.stack = stack;
	if (mst_alloc_func_has_alignment((uint8_t)func))
		r.u.alloc.alignment = 64;
	put(c, &r);
}

static void alloc(struct churn *c, uint64_t thread, uint64_t stack)
{
	uint64_t addr;
	/* freed addresses come back, as allocators hand them out */
	if (c->nlive < c->cap) {
		addr = c->next_addr;
		c->next_addr += 16 * (1 + rnd(c, 40));
		c->live[c->nlive] = addr;
		c->live_thread[c->nlive++] = thread;
		alloc_at(c, thread, stack, addr, rnd(c, 8) ? 16 + rnd(c, 512) : rnd(c, 1 << 20),
			 rnd(c, 6) ? MST_ALLOC_MALLOC : 1 + (int)rnd(c, MST_ALLOC_FUNC_MAX));
	}
}

static void free_at(struct churn *c, uint64_t thread, uint64_t stack, uint64_t addr, int func)
{
	struct mst_record r = { .type = MST_REC_FREE };
	tick(c);
	r.u.free.time = c->time;
	r.u.free.thread = thread;
	r.u.free.func = (uint8_t)func;
	r.u.free.addr = addr;
	r.u.free.stack = stack;
	put(c, &r);
}

/* Frees live block I (by THREAD: another thread's free, now and then). */
static void free_live(struct churn *c, size_t i, uint64_t thread, uint64_t stack)
{
	uint64_t addr = c->live[i];
	c->live[i] = c->live[--c->nlive];
	c->live_thread[i] = c->live_thread[c->nlive];
	free_at(c, thread, stack, addr, rnd(c, 8) ? MST_FREE_FREE : MST_FREE_DELETE);
}

/* One of the records that must break a run. */
static void odd_one(struct churn *c, uint64_t thread, uint64_t stack)
{
	struct mst_record r;
	struct mst_counter ctr[3];
	memset(&r, 0, sizeof(r));
	switch (rnd(c, 12)) {
	case 0: /* a realloc that moves a live block */
		if (c->nlive) {
			size_t i = rnd(c, c->nlive);
			uint64_t old = c->live[i], addr = c->next_addr;
			c->next_addr += 64;
			free_at(c, thread, stack, old, MST_FREE_REALLOC);
			c->live[i] = addr;
			alloc_at(c, thread, stack, addr, 100 + rnd(c, 1000), MST_ALLOC_REALLOC);
			/* alloc_at wrote old_addr 0: a realloc of NULL; the
			 * moved one follows */
		}
		if (c->nlive) {
			size_t i = rnd(c, c->nlive);
			struct mst_record a = { .type = MST_REC_ALLOC };
			tick(c);
			a.u.alloc.time = c->time;
			a.u.alloc.thread = thread;
			a.u.alloc.func = MST_ALLOC_REALLOC;
			a.u.alloc.old_addr = c->live[i];
			a.u.alloc.addr = c->live[i];      /* in place */
			a.u.alloc.size = 1 + rnd(c, 5000);
			a.u.alloc.stack = stack;
			put(c, &a);
		}
		return;
	case 1: /* a task around a few allocations */
		if (c->task < 64) {
			r.type = MST_REC_TASK_BEGIN;
			r.u.task_begin.time = c->time;
			r.u.task_begin.thread = thread;
			r.u.task_begin.task = ++c->task;
			r.u.task_begin.name = "job";
			put(c, &r);
			alloc(c, thread, stack);
			alloc(c, thread, stack);
			memset(&r, 0, sizeof(r));
			r.type = MST_REC_TASK_END;
			r.u.task_end.time = c->time;
			r.u.task_end.thread = thread;
			r.u.task_end.task = c->task;
			put(c, &r);
		}
		return;
	case 2: /* a label on a live block */
		if (c->nlive) {
			r.type = MST_REC_LABEL;
			r.u.label.time = c->time;
			r.u.label.thread = thread;
			r.u.label.addr = c->live[rnd(c, c->nlive)];
			r.u.label.name = rnd(c, 2) ? "buffer" : "node";
			r.u.label.type = "char[]";
			put(c, &r);
		}
		return;
	case 3: /* a free of an address never allocated */
		free_at(c, thread, stack, 0x10 + rnd(c, 1000) * 16, MST_FREE_FREE);
		return;
	case 4: /* free(NULL) */
		free_at(c, thread, stack, 0, MST_FREE_FREE);
		return;
	case 5: /* an allocation of an address already live */
		if (c->nlive)
			alloc_at(c, thread, stack, c->live[rnd(c, c->nlive)], 32, MST_ALLOC_MALLOC);
		return;
	case 6:
		ctr[0] = (struct mst_counter){ MST_CTR_RSS, 1000000 + rnd(c, 1u << 30) };
		ctr[1] = (struct mst_counter){ MST_CTR_ARENA, rnd(c, 1u << 28) };
		ctr[2] = (struct mst_counter){ MST_CTR_IN_USE, rnd(c, 1u << 28) };
		r.type = MST_REC_COUNTERS;
		r.u.counters.time = c->time;
		r.u.counters.count = 3;
		r.u.counters.items = ctr;
		put(c, &r);
		return;
	case 7:
		r.type = MST_REC_DROPPED;
		r.u.dropped.time = c->time;
		r.u.dropped.thread = thread;
		r.u.dropped.events = 1 + rnd(c, 9);
		r.u.dropped.bytes = rnd(c, 4096);
		put(c, &r);
		return;
	case 8:
		r.type = MST_REC_THREAD_NAME;
		r.u.thread_name.time = c->time;
		r.u.thread_name.thread = thread;
		r.u.thread_name.name = rnd(c, 2) ? "worker" : "io";
		put(c, &r);
		return;
	case 9: /* a free with no stack */
		if (c->nlive)
			free_live(c, rnd(c, c->nlive), thread, 0);
		return;
	case 10: /* an allocation with no stack */
		alloc(c, thread, 0);
		return;
	default: /* a new site */
		alloc(c, thread, new_stack(c));
		return;
	}
}

/*
 * Writes into M a churn-like trace of ROUNDS rounds (seed SEED) whose live
 * set grows to LIVE blocks at most; ODD: one record in ODD breaks a run.
 */
static int write_churn(struct membuf *m, uint64_t seed, int rounds, size_t live, int odd)
{
	struct mst_writer_options o = { .chunk_size = 1 << 20, .zstd_level = 1,
					.sink = membuf_sink, .sink_ctx = m };
	struct churn c;
	struct mst_record r;
	struct mst_segment seg[2] = { { 0, 0x100000, 0, MST_SEG_EXEC | MST_SEG_READ },
				      { 0x100000, 0x100000, 0x100000, MST_SEG_EXEC | MST_SEG_READ } };
	static const char *argv[] = { "churn" };
	uint64_t sites[6], frees[3];
	int i, k;

	memset(&c, 0, sizeof(c));
	c.rng = seed * 2654435761u + 88172645463325252ull;
	c.cap = live;
	c.live = calloc(live, sizeof(*c.live));
	c.live_thread = calloc(live, sizeof(*c.live_thread));
	c.next_addr = 0x555555560000ull;
	if (!c.live || !c.live_thread || mst_writer_open(&c.w, -1, &o) != MST_OK)
		return -1;
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_HEADER;
	r.u.header.ticks_per_second = 3906250;    /* ms-record's 256 ns ticks */
	r.u.header.pid = 4242;
	r.u.header.program = "/usr/bin/churn";
	r.u.header.argc = 1;
	r.u.header.argv = argv;
	r.u.header.sample_rate_ppm = 1000000;
	r.u.header.unwinder = MST_UNWIND_FP;
	r.u.header.allocator = "glibc";
	r.u.header.hostname = "test";
	put(&c, &r);
	for (i = 0; i < 2; i++) {
		memset(&r, 0, sizeof(r));
		r.type = MST_REC_MODULE_LOAD;
		r.u.module_load.module = (uint64_t)i + 1;
		r.u.module_load.base = MOD_BASE + (uint64_t)i * 0x100000 - seg[i].vaddr;
		r.u.module_load.path = i ? "/lib/libb.so" : "/usr/bin/churn";
		r.u.module_load.nsegs = 1;
		r.u.module_load.segs = &seg[i];
		put(&c, &r);
	}
	new_thread(&c);
	for (k = 0; k < 6; k++)
		sites[k] = new_stack(&c);
	for (k = 0; k < 3; k++)
		frees[k] = new_stack(&c);
	for (i = 0; i < rounds && !c.st; i++) {
		/* a run: one thread allocates a batch at one site, then it or
		 * another thread frees a batch from one place */
		uint64_t th = 1 + rnd(&c, c.threads), fth = rnd(&c, 3) ? th : 1 + rnd(&c, c.threads);
		uint64_t site = sites[rnd(&c, 6)], fs = rnd(&c, 10) ? frees[rnd(&c, 3)] : 0;
		size_t batch = 1 + rnd(&c, 400), j;
		int order = (int)rnd(&c, 3);

		if (c.threads < 8 && !rnd(&c, 20))
			th = new_thread(&c);
		for (j = 0; j < batch; j++) {
			alloc(&c, th, site);
			if (odd && !rnd(&c, (uint64_t)odd))
				odd_one(&c, rnd(&c, 4) ? th : 1 + rnd(&c, c.threads), site);
		}
		batch = c.nlive > 100 ? 1 + rnd(&c, c.nlive - 50) : c.nlive / 2;
		for (j = 0; j < batch && c.nlive; j++) {
			/* LIFO, FIFO-ish or anywhere */
			size_t at = order == 0 ? c.nlive - 1 : order == 1 ? 0 : rnd(&c, c.nlive);
			free_live(&c, at, fth, fs);
			if (odd && !rnd(&c, (uint64_t)odd))
				odd_one(&c, rnd(&c, 4) ? fth : 1 + rnd(&c, c.threads), fs);
		}
	}
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_END;
	r.u.end.time = c.time;
	r.u.end.reason = MST_END_EXIT;
	r.u.end.events = mst_writer_events(c.w);
	put(&c, &r);
	if (c.st)
		fprintf(stderr, "# writer: %s\n", mst_writer_error(c.w));
	i = mst_writer_close(c.w);
	free(c.live);
	free(c.live_thread);
	return c.st ? c.st : i;
}

/* Builds a model of the trace in M: by mst_model_read (FAST) or record by
 * record through mst_model_add. */
static struct mst_model *model_of(const struct membuf *m, int fast, uint32_t series,
				  struct mst_reader **rp, int *fdp)
{
	struct mst_model_options mo = { .timeline_buckets = 256, .thread_series = series };
	const struct mst_record *rec;
	struct mst_model *md = NULL;
	int st = MST_OK;

	if (open_bytes(rp, fdp, m->p, m->len) != MST_OK || mst_model_new(&md, &mo) != MST_OK)
		return NULL;
	if (fast) {
		if (mst_model_read(md, *rp, NULL, NULL, &st) != MST_OK)
			return NULL;
	} else {
		while ((st = mst_reader_next(*rp, &rec)) == MST_OK)
			if (mst_model_add(md, *rp, rec) != MST_OK)
				return NULL;
	}
	mst_model_finish(md, *rp, st);
	return md;
}

static int cmp_site(const void *a, const void *b)
{
	const struct mst_site *x = a, *y = b;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

struct blocks {
	struct mst_live_block *b;
	size_t n, cap;
};

static void keep_block(void *ctx, const struct mst_live_block *b)
{
	struct blocks *k = ctx;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 1024;
		k->b = realloc(k->b, k->cap * sizeof(*k->b));
	}
	if (k->b)
		k->b[k->n++] = *b;
}

static int cmp_block(const void *a, const void *b)
{
	const struct mst_live_block *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

#define SAME(f) do { if ((x)->f != (y)->f) { \
	printf("# %s: %s %llu != %llu\n", what, #f, (unsigned long long)(x)->f, \
	       (unsigned long long)(y)->f); return 0; } } while (0)

static int same_summary(const char *what, const struct mst_summary *x, const struct mst_summary *y)
{
	SAME(ticks_per_second); SAME(duration); SAME(estimated); SAME(allocations);
	SAME(frees); SAME(reallocs); SAME(bytes_allocated); SAME(peak_bytes);
	SAME(peak_time); SAME(peak_allocations); SAME(end_bytes); SAME(end_allocations);
	SAME(temporary); SAME(max_rss);
	return !memcmp(x->alloc_by_func, y->alloc_by_func, sizeof(x->alloc_by_func)) &&
	       !memcmp(x->free_by_func, y->free_by_func, sizeof(x->free_by_func));
}

static int same_thread(const char *what, const struct mst_thread_stats *x,
		       const struct mst_thread_stats *y)
{
	SAME(thread); SAME(tid); SAME(start_time); SAME(exit_time); SAME(allocations);
	SAME(bytes); SAME(frees); SAME(live_bytes); SAME(peak_bytes); SAME(cross_frees);
	SAME(cross_free_bytes);
	return str_same(x->name, y->name);
}

static int same_bucket(const char *what, const struct mst_bucket *x, const struct mst_bucket *y)
{
	SAME(start); SAME(heap_min); SAME(heap_max); SAME(heap_last); SAME(allocations);
	SAME(frees); SAME(bytes_allocated); SAME(rss); SAME(arena); SAME(in_use); SAME(has_data);
	return 1;
}

static int same_integrity(const char *what, const struct mst_integrity *x,
			  const struct mst_integrity *y)
{
	SAME(dropped_events); SAME(dropped_bytes); SAME(unknown_frees); SAME(double_allocs);
	SAME(truncated); SAME(complete); SAME(end_reason); SAME(end_status); SAME(read_status);
	SAME(forked);
	return !strcmp(x->read_error, y->read_error);
}
#undef SAME

/* Every figure of models A and B, compared; 1 when all are the same. */
static int same_models(const struct mst_model *a, const struct mst_model *b)
{
	const struct mst_site *sa, *sb;
	const struct mst_thread_stats *ta, *tb;
	const struct mst_module_stats *ma, *mb;
	const struct mst_module_cross *ca, *cb;
	const struct mst_label_stats *la, *lb;
	const struct mst_task_stats *ka, *kb;
	struct mst_timeline tla, tlb;
	struct mst_fragmentation fa, fb;
	struct mst_integrity ia, ib;
	struct blocks ba = { 0 }, bb = { 0 };
	struct mst_site *xa, *xb;
	size_t n, i, t;
	int ok = 1;

	if (!same_summary("summary", mst_model_summary(a), mst_model_summary(b)) ||
	    memcmp(mst_model_histograms(a), mst_model_histograms(b), sizeof(struct mst_histograms))) {
		printf("# summary or histograms differ\n");
		return 0;
	}
	n = mst_model_sites(a, &sa);
	if (n != mst_model_sites(b, &sb)) {
		printf("# sites: %zu != %zu\n", n, mst_model_sites(b, &sb));
		return 0;
	}
	xa = malloc((n + 1) * sizeof(*xa));
	xb = malloc((n + 1) * sizeof(*xb));
	memcpy(xa, sa, n * sizeof(*xa));
	memcpy(xb, sb, n * sizeof(*xb));
	qsort(xa, n, sizeof(*xa), cmp_site);
	qsort(xb, n, sizeof(*xb), cmp_site);
	if (memcmp(xa, xb, n * sizeof(*xa))) {
		printf("# a site differs\n");
		ok = 0;
	}
	free(xa);
	free(xb);
	n = mst_model_threads(a, &ta);
	if (n != mst_model_threads(b, &tb))
		return 0;
	for (i = 0; ok && i < n; i++)
		ok = same_thread("thread", &ta[i], &tb[i]);
	n = mst_model_modules(a, &ma);
	if (n != mst_model_modules(b, &mb))
		return 0;
	for (i = 0; ok && i < n; i++)
		if (ma[i].module != mb[i].module || ma[i].allocations != mb[i].allocations ||
		    ma[i].bytes != mb[i].bytes || ma[i].frees != mb[i].frees ||
		    ma[i].leaked_bytes != mb[i].leaked_bytes || !str_same(ma[i].path, mb[i].path)) {
			printf("# module %zu differs\n", i);
			ok = 0;
		}
	n = mst_model_module_cross(a, &ca);
	if (n != mst_model_module_cross(b, &cb) || (n && memcmp(ca, cb, n * sizeof(*ca)))) {
		printf("# module crossing differs\n");
		return 0;
	}
	mst_model_timeline(a, &tla);
	mst_model_timeline(b, &tlb);
	if (tla.width != tlb.width || tla.count != tlb.count || tla.nthreads != tlb.nthreads ||
	    !tla.other != !tlb.other) {
		printf("# timeline shape differs\n");
		return 0;
	}
	for (i = 0; ok && i < tla.count; i++) {
		ok = same_bucket("bucket", &tla.buckets[i], &tlb.buckets[i]);
		for (t = 0; ok && t < tla.nthreads; t++)
			ok = tla.series[t][i] == tlb.series[t][i];
		if (ok && tla.other)
			ok = tla.other[i] == tlb.other[i];
	}
	mst_model_fragmentation(a, &fa);
	mst_model_fragmentation(b, &fb);
	if (memcmp(&fa, &fb, sizeof(fa))) {
		printf("# fragmentation differs\n");
		ok = 0;
	}
	n = mst_model_labels(a, &la);
	if (n != mst_model_labels(b, &lb))
		return 0;
	for (i = 0; ok && i < n; i++)
		ok = str_same(la[i].name, lb[i].name) && str_same(la[i].type, lb[i].type) &&
		     la[i].allocations == lb[i].allocations && la[i].bytes == lb[i].bytes &&
		     la[i].live_bytes == lb[i].live_bytes;
	n = mst_model_tasks(a, &ka);
	if (n != mst_model_tasks(b, &kb))
		return 0;
	for (i = 0; ok && i < n; i++)
		ok = ka[i].task == kb[i].task && str_same(ka[i].name, kb[i].name) &&
		     ka[i].thread == kb[i].thread && ka[i].begin_time == kb[i].begin_time &&
		     ka[i].end_time == kb[i].end_time && ka[i].allocations == kb[i].allocations &&
		     ka[i].bytes == kb[i].bytes && ka[i].live_bytes == kb[i].live_bytes;
	mst_model_integrity(a, &ia);
	mst_model_integrity(b, &ib);
	ok = ok && same_integrity("integrity", &ia, &ib);
	mst_model_each_live(a, keep_block, &ba);
	mst_model_each_live(b, keep_block, &bb);
	if (ba.n != bb.n) {
		ok = 0;
	} else if (ba.n) {
		qsort(ba.b, ba.n, sizeof(*ba.b), cmp_block);
		qsort(bb.b, bb.n, sizeof(*bb.b), cmp_block);
		for (i = 0; ok && i < ba.n; i++)
			ok = ba.b[i].addr == bb.b[i].addr && ba.b[i].size == bb.b[i].size &&
			     ba.b[i].stack == bb.b[i].stack && ba.b[i].time == bb.b[i].time &&
			     ba.b[i].thread == bb.b[i].thread && ba.b[i].func == bb.b[i].func;
	}
	free(ba.b);
	free(bb.b);
	return ok;
}

static void check(const char *what, uint64_t seed, int rounds, size_t live, int odd)
{
	struct membuf m = { 0 };
	uint32_t series;
	int ok = write_churn(&m, seed, rounds, live, odd) == MST_OK, fast_took = 0;

	for (series = 0; ok && series <= 3; series += 3) {
		struct mst_reader *ra = NULL, *rb = NULL;
		int fa = -1, fb = -1;
		struct mst_model *a = model_of(&m, 1, series, &ra, &fa);
		struct mst_model *b = model_of(&m, 0, series, &rb, &fb);
		ok = a && b && same_models(a, b);
		if (a && !series)
			fast_took = mst_model_summary(a)->allocations > 1000;
		mst_model_free(a);
		mst_model_free(b);
		close_bytes(ra, fa);
		close_bytes(rb, fb);
	}
	CHECK(ok && fast_took, "%s (seed %llu, %zu bytes): the fast reading's figures are the "
	      "plain reading's, with and without thread series", what,
	      (unsigned long long)seed, m.len);
	membuf_free(&m);
}

int main(void)
{
	uint64_t seed;
	for (seed = 1; seed <= 4; seed++) {
		check("long runs, rarely broken", seed, 300, 3000, 2000);
		check("runs broken often", seed, 300, 3000, 20);
	}
	/* a live set past the point where the live slots are prefetched */
	check("a large live set", 7, 400, 40000, 500);
	return tap_done();
}
