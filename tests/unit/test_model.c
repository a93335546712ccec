/*
 * test_model.c - the analysis model against a brute-force reference on
 * seeded random streams (peak attribution through the peak-epoch trick,
 * leaks, temporaries, cross-thread frees, realloc accounting), the live-set
 * hash table under churn, and the timeline's merging of buckets.
 */
#include "mstrace.h"
#include "model_table.h"
#include "tap.h"
#include "trace_gen.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? rng % n : 0;
}

/* ---- reference ---- */
#define NSITES 6
#define NTHREADS 3
#define MAXLIVE 400

struct ref_block { uint64_t addr, size, site, thread; };

struct ref {
	struct ref_block live[MAXLIVE];
	int nlive;
	uint64_t site_live[NSITES + 1], site_at_peak[NSITES + 1], site_leak[NSITES + 1];
	uint64_t site_temp[NSITES + 1], site_max[NSITES + 1];
	uint64_t live_bytes, peak, peak_time, allocs, frees, bytes, temporary;
	uint64_t last_alloc[NTHREADS + 1];
	uint64_t cross[NTHREADS + 1], thread_peak[NTHREADS + 1], thread_live[NTHREADS + 1];
};

static void feed(struct mst_model *m, const struct mst_record *rec)
{
	mst_model_add(m, NULL, rec);
}

static void ref_alloc(struct ref *rf, struct mst_model *m, uint64_t t, uint64_t th,
		      uint64_t addr, uint64_t size, uint64_t site)
{
	struct mst_record rec = { .type = MST_REC_ALLOC };
	struct ref_block *b = &rf->live[rf->nlive++];
	b->addr = addr;
	b->size = size;
	b->site = site;
	b->thread = th;
	rf->site_live[site] += size;
	if (rf->site_live[site] > rf->site_max[site])
		rf->site_max[site] = rf->site_live[site];
	rf->thread_live[th] += size;
	if (rf->thread_live[th] > rf->thread_peak[th])
		rf->thread_peak[th] = rf->thread_live[th];
	rf->live_bytes += size;
	rf->allocs++;
	rf->bytes += size;
	rf->last_alloc[th] = addr;
	if (rf->live_bytes > rf->peak) {
		rf->peak = rf->live_bytes;
		rf->peak_time = t;
		memcpy(rf->site_at_peak, rf->site_live, sizeof(rf->site_live));
	}
	rec.u.alloc.time = t;
	rec.u.alloc.thread = th;
	rec.u.alloc.func = MST_ALLOC_MALLOC;
	rec.u.alloc.addr = addr;
	rec.u.alloc.size = size;
	rec.u.alloc.stack = site;
	feed(m, &rec);
}

static void ref_free(struct ref *rf, struct mst_model *m, uint64_t t, uint64_t th, int i)
{
	struct mst_record rec = { .type = MST_REC_FREE };
	struct ref_block b = rf->live[i];
	rf->live[i] = rf->live[--rf->nlive];
	rf->site_live[b.site] -= b.size;
	rf->thread_live[b.thread] -= b.size;
	rf->live_bytes -= b.size;
	rf->frees++;
	if (b.thread == th && rf->last_alloc[th] == b.addr) {
		rf->temporary++;
		rf->site_temp[b.site]++;
	}
	if (rf->last_alloc[th] == b.addr)
		rf->last_alloc[th] = 0;
	if (rf->last_alloc[b.thread] == b.addr)
		rf->last_alloc[b.thread] = 0;
	if (b.thread != th)
		rf->cross[th]++;
	rec.u.free.time = t;
	rec.u.free.thread = th;
	rec.u.free.func = MST_FREE_FREE;
	rec.u.free.addr = b.addr;
	feed(m, &rec);
}

static void random_stream(int seed)
{
	struct mst_model *m;
	struct mst_model_options o = { .timeline_buckets = 8, .thread_series = 2 };
	struct mst_record hdr = { .type = MST_REC_HEADER };
	struct ref *rf = calloc(1, sizeof(*rf));
	const struct mst_summary *s;
	const struct mst_site *sites;
	const struct mst_thread_stats *th;
	struct mst_timeline tl;
	size_t ns, nt, i;
	uint64_t t = 0, next_addr = 0x1000, hmax = 0, tl_allocs = 0;
	int ok_sites = 1, ok_threads = 1, n;

	rng = 88172645463325252ull + (uint64_t)seed * 7919;
	mst_model_new(&m, &o);
	hdr.u.header.ticks_per_second = 1000000000;
	hdr.u.header.sample_rate_ppm = 1000000;
	feed(m, &hdr);
	for (n = 0; n < 5000; n++) {
		uint64_t thr = 1 + rnd(NTHREADS);
		t += rnd(2000);
		if (rf->nlive < MAXLIVE && (rf->nlive == 0 || rnd(100) < 55)) {
			/* reuse freed addresses now and then, like an allocator */
			uint64_t addr = next_addr += 16 * (1 + rnd(8));
			ref_alloc(rf, m, t, thr, addr, 1 + rnd(5000), 1 + rnd(NSITES));
		} else {
			ref_free(rf, m, t, thr, (int)rnd((uint64_t)rf->nlive));
		}
	}
	mst_model_finish(m, NULL, MST_END);
	s = mst_model_summary(m);
	CHECK(s->allocations == rf->allocs && s->frees == rf->frees &&
	      s->bytes_allocated == rf->bytes, "seed %d: totals", seed);
	CHECK(s->peak_bytes == rf->peak && s->peak_time == rf->peak_time,
	      "seed %d: peak %llu at %llu", seed, (unsigned long long)s->peak_bytes,
	      (unsigned long long)s->peak_time);
	CHECK(s->end_bytes == rf->live_bytes && s->end_allocations == (uint64_t)rf->nlive,
	      "seed %d: leaks", seed);
	CHECK(s->temporary == rf->temporary, "seed %d: temporary %llu == %llu", seed,
	      (unsigned long long)s->temporary, (unsigned long long)rf->temporary);
	ns = mst_model_sites(m, &sites);
	for (i = 0; i < ns; i++) {
		uint64_t k = sites[i].stack;
		if (sites[i].peak_bytes != rf->site_at_peak[k] ||
		    sites[i].leaked_bytes != rf->site_live[k] ||
		    sites[i].max_live_bytes != rf->site_max[k] ||
		    sites[i].temporary != rf->site_temp[k])
			ok_sites = 0;
	}
	CHECK(ns == NSITES && ok_sites, "seed %d: per-site peak, leak, max live, temporary", seed);
	nt = mst_model_threads(m, &th);
	for (i = 0; i < nt; i++)
		if (th[i].cross_frees != rf->cross[th[i].thread] ||
		    th[i].peak_bytes != rf->thread_peak[th[i].thread] ||
		    th[i].live_bytes != rf->thread_live[th[i].thread])
			ok_threads = 0;
	CHECK(nt == NTHREADS && ok_threads, "seed %d: per-thread cross frees, peaks, live", seed);

	mst_model_timeline(m, &tl);
	for (i = 0; i < tl.count; i++) {
		if (tl.buckets[i].heap_max > hmax)
			hmax = tl.buckets[i].heap_max;
		tl_allocs += tl.buckets[i].allocations;
	}
	CHECK(tl.count <= 8 && tl.count >= 4, "seed %d: timeline keeps at most 8 buckets (%zu)",
	      seed, tl.count);
	CHECK(hmax == rf->peak, "seed %d: merging buckets keeps the peak", seed);
	CHECK(tl_allocs == rf->allocs, "seed %d: bucket allocations add up", seed);
	CHECK(tl.count && tl.buckets[tl.count - 1].heap_last == rf->live_bytes,
	      "seed %d: last bucket ends at the final live heap", seed);
	CHECK(tl.width * 8 > t && tl.width * 4 <= t + tl.width,
	      "seed %d: bucket width %llu covers the trace (%llu)", seed,
	      (unsigned long long)tl.width, (unsigned long long)t);
	CHECK(tl.nthreads == 2 && tl.other != NULL &&
	      tl.series[0][tl.count - 1] + tl.series[1][tl.count - 1] + tl.other[tl.count - 1] ==
	      rf->live_bytes, "seed %d: per-thread series add up to the live heap", seed);
	mst_model_free(m);
	free(rf);
}

static void live_table_churn(void)
{
	struct mt_live l;
	uint64_t *addrs = malloc(100000 * sizeof(*addrs));
	size_t n = 0, i, bad = 0;
	mt_live_init(&l);
	rng = 42;
	for (i = 0; i < 1000000; i++) {
		if (n < 100000 && (n == 0 || rnd(2))) {
			uint64_t a = (rnd(1u << 30) + 1) << 4;
			struct mt_block *b;
			if (mt_live_find(&l, a))
				continue;
			b = mt_live_insert(&l, a);
			mt_block_set(b, a >> 4, 1);
			addrs[n++] = a;
		} else {
			size_t k = (size_t)rnd(n);
			struct mt_block *b = mt_live_find(&l, addrs[k]);
			if (!b || mt_block_size(b) != addrs[k] >> 4 || mt_block_func(b) != 1)
				bad++;
			else
				mt_live_remove(&l, b);
			addrs[k] = addrs[--n];
		}
	}
	CHECK(bad == 0, "live set finds every live block after a million inserts/removes");
	CHECK(l.len == n, "live set length %zu == %zu", l.len, n);
	for (i = 0; i < n; i++)
		if (!mt_live_find(&l, addrs[i]))
			bad++;
	CHECK(bad == 0, "every remaining block is still found");
	mt_live_release(&l);
	free(addrs);
}

/* Strided addresses (blocks 64 bytes apart, as allocators hand them out)
 * must not pile up in runs: a hash from the low bits of the product once
 * gave ~60 probes per lookup here. */
static void live_table_strides(void)
{
	struct mt_live l;
	size_t i, n = 1u << 18;
	uint64_t disp = 0, worst = 0;
	mt_live_init(&l);
	for (i = 0; i < n; i++)
		mt_block_set(mt_live_insert(&l, 0x10000000 + i * 0x40), 1, 1);
	for (i = 0; i < l.cap; i++) {
		uint64_t d;
		if (!l.e[i].key)
			continue;
		d = (i - mt_hash(l.e[i].key, l.shift)) & (l.cap - 1);
		disp += d;
		if (d > worst)
			worst = d;
	}
	CHECK((double)disp / n < 2.0 && worst < 64,
	      "strided addresses: %.2f probes on average, %llu at worst",
	      (double)disp / n, (unsigned long long)worst);
	mt_live_release(&l);
}

/* ---- growing the live set in place ---- */

/* The multiplicative inverse of mt_hash's multiplier (Newton's method):
 * a key whose product is P is P times it. */
static uint64_t hash_inverse(void)
{
	uint64_t a = 0x9E3779B97F4A7C15ull, x = a;
	int i;
	for (i = 0; i < 6; i++)
		x *= 2 - a * x;
	return x;
}

/* A key whose home slot in L is HOME (its low bits from the generator). */
static uint64_t key_at(const struct mt_live *l, size_t home)
{
	uint64_t product = ((uint64_t)home << l->shift) | (rnd(UINT64_MAX) >> (64 - l->shift));
	uint64_t key = product * hash_inverse();
	return key ? key : key_at(l, home);
}

/* Inserts key K into L with a block made of it (live_table_valid checks
 * it); 0 when K is there already. */
static int add_key(struct mt_live *l, uint64_t k)
{
	struct mt_block *b;
	if (mt_live_find(l, k))
		return 0;
	b = mt_live_insert(l, k);
	mt_block_set(b, k & 0xffffff, 1);
	b->time = ~k;
	return 1;
}

/* Every key reachable (the slots from its home to it all taken), the
 * count right, each block's contents its key's. */
static int live_table_valid(const struct mt_live *l, const uint64_t *keys, size_t n)
{
	size_t i, taken = 0;
	for (i = 0; i < l->cap; i++) {
		size_t j;
		if (!l->e[i].key)
			continue;
		taken++;
		for (j = mt_hash(l->e[i].key, l->shift); j != i; j = (j + 1) & (l->cap - 1))
			if (!l->e[j].key)
				return 0;
	}
	if (taken != n || l->len != n)
		return 0;
	for (i = 0; i < n; i++) {
		const struct mt_block *b = mt_live_find(l, keys[i]);
		if (!b || mt_block_size(b) != (keys[i] & 0xffffff) || b->time != ~keys[i])
			return 0;
	}
	return 1;
}

/* Doubling moves the entries in place, run by run from the top; the
 * layouts that could trip it: runs out of home order, a run longer than
 * the positions it computes at a time, runs at slot 0 that land on their
 * own old slots, a run wrapping from the end to the start. Each is built
 * on a 4096-slot table, doubled twice, then half its keys removed. */
static void live_table_grow_in_place(void)
{
	static const char *const names[] = {
		"random keys", "runs out of home order", "a run of 300 keys with one home",
		"runs near slot 0 that land on their own old slots", "a run wrapping from the end", "all of these at once",
	};
	size_t sc;
	for (sc = 0; sc < sizeof(names) / sizeof(names[0]); sc++) {
		struct mt_live l;
		uint64_t keys[1024];
		size_t n = 0, i, g;
		int ok = 1;

		mt_live_init(&l);
		while (l.cap < 4096)
			mt_live_grow(&l);
#define ADD(home) do { keys[n] = key_at(&l, (home) & (l.cap - 1)); n++; } while (0)
		if (sc == 0 || sc == 5)
			for (i = 0; i < 300; i++)
				ADD(rnd(l.cap));
		if (sc == 1 || sc == 5)
			for (i = 0; i < 20; i++) {        /* homes 1007, 1006, ... 1000, twice */
				ADD(1000 + 7 - i % 8);
				ADD(2000 + i % 3 * 5);
			}
		if (sc == 2 || sc == 5)
			for (i = 0; i < 300; i++)
				ADD(rnd(2) ? 1500 : 1500 + rnd(200));
		if (sc == 3 || sc == 5)
			for (i = 0; i < 43; i++)   /* runs [0, 2] and [5, 44] */
				ADD(i < 3 ? 0 : 5 + rnd(4));
		if (sc == 4 || sc == 5)
			for (i = 0; i < 60; i++)
				ADD(i % 2 ? l.cap - 1 - rnd(5) : rnd(3));
#undef ADD
		for (i = 0; i < n; i++)
			if (!add_key(&l, keys[i]))  /* (a repeat: drop it) */
				keys[i--] = keys[--n];
		ok = l.cap == 4096 && live_table_valid(&l, keys, n);
		for (g = 0; g < 2 && ok; g++)
			ok = mt_live_grow(&l) == 0 && live_table_valid(&l, keys, n);
		for (i = 0; i < n / 2 && ok; i++)
			mt_live_remove(&l, mt_live_find(&l, keys[n - 1 - i]));
		ok = ok && live_table_valid(&l, keys, n - n / 2);
		CHECK(ok && l.cap == 16384, "live set grows in place: %s (%zu keys)", names[sc], n);
		mt_live_release(&l);
	}
}

/* The same past 4 MiB, where the table is a mapping of its own that
 * mremap extends (below, a heap block copied into a larger one): 100,000
 * random keys grow it from the smallest size through both kinds, then a
 * run wrapping from its end and a long one, and two more doublings. */
static void live_table_grow_mapped(void)
{
	struct mt_live l;
	size_t n = 0, cap = 100000 + 400, i, g;
	uint64_t *keys = malloc(cap * sizeof(*keys));
	int ok;

	mt_live_init(&l);
	while (n < 100000)
		if (add_key(&l, keys[n] = rnd(UINT64_MAX) | 1))
			n++;
	ok = l.cap == 262144 && live_table_valid(&l, keys, n);
	for (i = 0; i < 400 && ok; i++)
		if (add_key(&l, keys[n] = key_at(&l, i % 2 ? l.cap - 1 - rnd(8) : 70000 + rnd(4))))
			n++;
	ok = ok && l.e[l.cap - 1].key && l.e[0].key && live_table_valid(&l, keys, n);
	for (g = 0; g < 2 && ok; g++)
		ok = mt_live_grow(&l) == 0 && live_table_valid(&l, keys, n);
	CHECK(ok && l.cap == 1048576, "live set grows in place past 4 MiB too (%zu keys, a run "
	      "wrapping from the end, one of 200 keys with 4 homes)", n);
	mt_live_release(&l);
	free(keys);
}

static void map_basics(void)
{
	struct mt_map m;
	uint32_t i, bad = 0;
	mt_map_init(&m);
	CHECK(mt_map_get(&m, 0) == UINT32_MAX, "empty map has no key 0");
	for (i = 0; i < 50000; i++)
		mt_map_put(&m, (uint64_t)i * 977, i);
	for (i = 0; i < 50000; i++)
		if (mt_map_get(&m, (uint64_t)i * 977) != i)
			bad++;
	CHECK(bad == 0 && mt_map_get(&m, 1) == UINT32_MAX, "map keeps 50000 keys, key 0 included");
	mt_map_release(&m);
}

/* Labels and tasks ride in a side table beside the live set (the live
 * block only has a flag): their counts and live bytes through relabelling,
 * frees, an address allocated again while live, and the run paths. */
static void labels_and_tasks(void)
{
	struct mst_model *m;
	struct mst_record r = { .type = MST_REC_HEADER };
	const struct mst_label_stats *lb;
	const struct mst_task_stats *tk;
	uint64_t t = 1;
	size_t nl, nt, i;
	uint64_t buf_live = 0, other_live = 0;

#define ALLOC(addr, size) do { r.type = MST_REC_ALLOC; \
	r.u.alloc = (struct mst_alloc){ t++, 1, MST_ALLOC_MALLOC, addr, size, 1, 0, 0 }; feed(m, &r); } while (0)
#define FREE(addr) do { r.type = MST_REC_FREE; \
	r.u.free = (struct mst_free){ t++, 1, MST_FREE_FREE, addr, 0 }; feed(m, &r); } while (0)
#define LABEL(addr, name) do { r.type = MST_REC_LABEL; \
	r.u.label = (struct mst_label){ t++, 1, addr, name, "t" }; feed(m, &r); } while (0)
	mst_model_new(&m, NULL);
	r.u.header.ticks_per_second = 1000000000;
	r.u.header.sample_rate_ppm = 1000000;
	feed(m, &r);
	r.type = MST_REC_TASK_BEGIN;
	r.u.task_begin = (struct mst_task_begin){ t++, 1, 7, "job" };
	feed(m, &r);
	ALLOC(0x1000, 100);
	ALLOC(0x2000, 200);
	r.type = MST_REC_TASK_END;
	r.u.task_end = (struct mst_task_end){ t++, 1, 7 };
	feed(m, &r);
	ALLOC(0x3000, 50);
	LABEL(0x3000, "buf");
	LABEL(0x1000, "buf");
	LABEL(0x1000, "other");              /* relabelled: moves its bytes */
	LABEL(0x9000, "buf");                /* not live: nothing */
	FREE(0x1000);                        /* task 200 left, other 0 */
	ALLOC(0x2000, 30);                   /* live again: the task's block ends */
	LABEL(0x2000, "buf");                /* buf: 50 + 30 */
	/* many plain blocks between, through the run paths, so that the
	 * live set moves entries around the labelled ones */
	for (i = 0; i < 5000; i++)
		ALLOC(0x100000 + i * 32, 16);
	for (i = 0; i < 5000; i += 2)
		FREE(0x100000 + i * 32);
	mst_model_finish(m, NULL, MST_ERR_TRUNCATED);
	nl = mst_model_labels(m, &lb);
	nt = mst_model_tasks(m, &tk);
	for (i = 0; i < nl; i++) {
		if (!strcmp(lb[i].name, "buf"))
			buf_live = lb[i].live_bytes;
		if (!strcmp(lb[i].name, "other"))
			other_live = lb[i].live_bytes;
	}
	CHECK(nl == 2 && buf_live == 80 && other_live == 0,
	      "label live bytes follow relabelling, frees and reuse (buf %llu, other %llu)",
	      (unsigned long long)buf_live, (unsigned long long)other_live);
	CHECK(nt == 1 && tk[0].allocations == 2 && tk[0].bytes == 300 && tk[0].live_bytes == 0,
	      "the task's blocks: 2, 300 bytes, none live at the end (%llu live)",
	      nt ? (unsigned long long)tk[0].live_bytes : 0ull);
	mst_model_free(m);
	/* the same blocks freed: nothing labelled is live */
	mst_model_new(&m, NULL);
	r.type = MST_REC_HEADER;
	feed(m, &r);
	ALLOC(0x1000, 10);
	LABEL(0x1000, "x");
	FREE(0x1000);
	ALLOC(0x1000, 20);                   /* the same address, no label now */
	ALLOC(0x2000, 40);
	LABEL(0x2000, "x");
	ALLOC(0x2000, 50);                   /* again while live: a new block */
	LABEL(0x2000, "x");                  /* labelled anew: counted again */
	mst_model_finish(m, NULL, MST_ERR_TRUNCATED);
	nl = mst_model_labels(m, &lb);
	CHECK(nl == 1 && lb[0].allocations == 3 && lb[0].bytes == 100 && lb[0].live_bytes == 50,
	      "a label ends with its block, not with the next at its address (%llu, %llu, %llu)",
	      nl ? (unsigned long long)lb[0].allocations : 0ull,
	      nl ? (unsigned long long)lb[0].bytes : 0ull,
	      nl ? (unsigned long long)lb[0].live_bytes : 0ull);
	mst_model_free(m);
#undef ALLOC
#undef FREE
#undef LABEL
}

/* One record into M: an allocation (OLD: a realloc's old address) or a free. */
static void put_alloc(struct mst_model *m, uint64_t t, uint64_t th, uint8_t func,
		      uint64_t addr, uint64_t size, uint64_t old)
{
	struct mst_record r = { .type = MST_REC_ALLOC };
	r.u.alloc = (struct mst_alloc){ t, th, func, addr, size, 1, 0, old };
	feed(m, &r);
}

static void put_free(struct mst_model *m, uint64_t t, uint64_t th, uint8_t func, uint64_t addr)
{
	struct mst_record r = { .type = MST_REC_FREE };
	r.u.free = (struct mst_free){ t, th, func, addr, 0 };
	feed(m, &r);
}

/* A model fed a header of sample rate PPM. */
static struct mst_model *model_at(uint64_t ppm)
{
	struct mst_model *m;
	struct mst_record r = { .type = MST_REC_HEADER };
	mst_model_new(&m, NULL);
	r.u.header.ticks_per_second = 1000000000;
	r.u.header.sample_rate_ppm = ppm;
	feed(m, &r);
	return m;
}

/* A realloc that moves is one call, not a free; realloc(p, 0) is a free. */
static void realloc_rules(void)
{
	struct mst_model *m = model_at(1000000);
	const struct mst_summary *s;
	struct mst_integrity in;

	put_alloc(m, 1, 1, MST_ALLOC_MALLOC, 0x100, 10, 0);
	put_free(m, 2, 1, MST_FREE_REALLOC, 0x100);
	put_alloc(m, 3, 1, MST_ALLOC_REALLOC, 0x200, 20, 0x100);
	put_free(m, 4, 1, MST_FREE_REALLOC, 0x200);
	mst_model_finish(m, NULL, MST_ERR_TRUNCATED);
	s = mst_model_summary(m);
	CHECK(s->allocations == 2 && s->reallocs == 1, "realloc counted once as an allocation");
	CHECK(s->frees == 1 && s->free_by_func[MST_FREE_REALLOC] == 1,
	      "only realloc(p, 0) counts as a free");
	CHECK(s->end_bytes == 0 && s->peak_bytes == 20, "moved block replaced the old one");
	mst_model_integrity(m, &in);
	CHECK(in.truncated && !in.complete, "reader status truncated is reported");
	mst_model_free(m);

	/* Thread 1's realloc moves 0x100 (its FREE half first); before its
	 * ALLOC half, thread 2 is given 0x100 and keeps it (perl ithreads,
	 * glibc's mremap of a large block, a thread descheduled in between):
	 * that block is thread 2's, not the realloc's old one. */
	m = model_at(1000000);
	put_alloc(m, 1, 1, MST_ALLOC_MALLOC, 0x100, 10, 0);
	put_free(m, 2, 1, MST_FREE_REALLOC, 0x100);
	put_alloc(m, 3, 2, MST_ALLOC_MALLOC, 0x100, 30, 0);
	put_alloc(m, 4, 1, MST_ALLOC_REALLOC, 0x200, 20, 0x100);
	mst_model_finish(m, NULL, MST_ERR_TRUNCATED);
	s = mst_model_summary(m);
	CHECK(s->end_bytes == 50 && s->end_allocations == 2 && s->frees == 0,
	      "a moved realloc leaves the block another thread got at its old address "
	      "(%llu bytes in %llu blocks live, %llu frees)", (unsigned long long)s->end_bytes,
	      (unsigned long long)s->end_allocations, (unsigned long long)s->frees);
	mst_model_free(m);

	/* The same in a sampled trace whose realloc'd block was left out:
	 * its FREE half is unknown, and thread 2's block still not the
	 * realloc's; thread 2 frees it later. */
	m = model_at(500000);
	put_free(m, 2, 1, MST_FREE_REALLOC, 0x100);
	put_alloc(m, 3, 2, MST_ALLOC_MALLOC, 0x100, 30, 0);
	put_alloc(m, 4, 1, MST_ALLOC_REALLOC, 0x200, 20, 0x100);
	put_free(m, 5, 2, MST_FREE_FREE, 0x100);
	mst_model_finish(m, NULL, MST_ERR_TRUNCATED);
	s = mst_model_summary(m);
	mst_model_integrity(m, &in);
	CHECK(in.unknown_frees == 1 && s->end_allocations == 2 && s->frees == 2,
	      "sampled: the realloc's unknown FREE half leaves thread 2's block, whose "
	      "free is known (%llu unknown, %llu live estimated, %llu frees estimated)",
	      (unsigned long long)in.unknown_frees, (unsigned long long)s->end_allocations,
	      (unsigned long long)s->frees);
	mst_model_free(m);
}

static void count_live(void *ctx, const struct mst_live_block *b)
{
	uint64_t *sum = ctx;
	sum[0] += b->size;
	sum[1]++;
}

/* Every record type, random but valid (trace_gen.h), WIDE: values of
 * every width. The figures must agree with one another. */
static void all_records(uint64_t seed, int wide)
{
	struct mst_model_options o = { .timeline_buckets = 64, .thread_series = 3 };
	struct mst_model *m;
	struct mst_record rec;
	struct gen g;
	const struct mst_summary *sum;
	const struct mst_histograms *h;
	const struct mst_site *sites;
	const struct mst_thread_stats *th;
	const struct mst_module_stats *mods;
	const struct mst_module_cross *cross;
	const struct mst_label_stats *labels;
	const struct mst_task_stats *tasks;
	struct mst_timeline tl;
	struct mst_fragmentation fr;
	struct mst_integrity in;
	uint64_t sa = 0, sl = 0, ta = 0, hc = 0, live[2] = { 0, 0 };
	size_t n, i;

	gen_init(&g, seed);
	mst_model_new(&m, &o);
	gen_header(&g, &rec);
	rec.u.header.sample_rate_ppm = 1000000;
	mst_model_add(m, NULL, &rec);
	for (i = 0; i < 100000; i++) {
		gen_next(&g, &rec, wide);
		if (rec.type == MST_REC_END)
			continue;
		if (mst_model_add(m, NULL, &rec) != MST_OK)
			break;
	}
	CHECK(i == 100000, "seed %llu%s: 100000 random records added",
	      (unsigned long long)seed, wide ? " (wide)" : "");
	mst_model_finish(m, NULL, MST_ERR_TRUNCATED);
	sum = mst_model_summary(m);
	h = mst_model_histograms(m);
	n = mst_model_sites(m, &sites);
	for (i = 0; i < n; i++) {
		sa += sites[i].allocations;
		sl += sites[i].leaked_bytes;
	}
	for (i = 0; i < MST_SIZE_BUCKETS; i++)
		hc += h->size_count[i];
	n = mst_model_threads(m, &th);
	for (i = 0; i < n; i++)
		ta += th[i].allocations;
	mst_model_each_live(m, count_live, live);
	mst_model_modules(m, &mods);
	mst_model_module_cross(m, &cross);
	mst_model_labels(m, &labels);
	mst_model_tasks(m, &tasks);
	mst_model_timeline(m, &tl);
	mst_model_fragmentation(m, &fr);
	mst_model_integrity(m, &in);
	if (!wide) {
		CHECK(sa == sum->allocations && ta == sum->allocations && hc == sum->allocations,
		      "seed %llu: sites, threads and the size histogram add up to the allocations",
		      (unsigned long long)seed);
		CHECK(sl == sum->end_bytes && live[0] == sum->end_bytes &&
		      live[1] == sum->end_allocations && sum->peak_bytes >= sum->end_bytes,
		      "seed %llu: leaks agree (sites, live blocks, summary)", (unsigned long long)seed);
	}
	CHECK(tl.count >= 1 && tl.count <= 64 && in.truncated, "seed %llu%s: timeline bounded, truncation noted",
	      (unsigned long long)seed, wide ? " (wide)" : "");
	mst_model_free(m);
}

int main(void)
{
	int seed;
	live_table_grow_in_place();   /* first: the model's tests rest on it */
	live_table_grow_mapped();
	live_table_churn();
	live_table_strides();
	for (seed = 1; seed <= 6; seed++)
		random_stream(seed);
	map_basics();
	realloc_rules();
	labels_and_tasks();
	all_records(1, 0);
	all_records(2, 0);
	all_records(3, 1);
	return tap_done();
}
