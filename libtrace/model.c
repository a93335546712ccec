/*
 * model.c - the shared analysis model (mstrace_model.h): one streaming pass
 * over the records of a trace builds every figure ms-stats, ms-svg and
 * ms-html report.
 *
 * Memory grows with live blocks (the live set), distinct stacks (sites),
 * threads, modules, labels and tasks; never with the number of events. Every
 * per-event step is O(1): hash lookups, counters, and the peak-epoch trick
 * below for "bytes of each site at the global peak".
 */
#include "array.h"
#include "mstrace.h"
#include "model_table.h"
#include "model_feed.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NO_INDEX UINT32_MAX

/* add_run stores an ALLOC event's word as its block's size and function */
_Static_assert(MST__EV_SIZE_MAX == MT_SIZE_MAX && MST__EV_FREE == MT_EXTRA,
	       "an event's word and a live block's size_func share their layout");

/*
 * Peak epoch: each new global peak starts a new epoch. A site's live bytes
 * at the latest peak equal its current live bytes until the site changes,
 * so a site snapshots them lazily, on its first change in a new epoch; at
 * the end, a site untouched since the last peak reads its current value.
 */
struct site_x {
	uint64_t live_bytes, live_count;
	uint64_t epoch, at_peak;
	uint32_t module;              /* module index, NO_INDEX unknown */
	uint32_t *life;               /* MST_LIFE_BUCKETS counts, lazily */
	uint64_t life_n;
};

struct thread_x {
	uint64_t live_bytes;
	uint64_t last_alloc;          /* address of its latest allocation while
				       * still live: a free of it is temporary */
	uint64_t pending_realloc;     /* address freed by a realloc FREE of this
				       * thread, until its ALLOC arrives */
	uint8_t pending_func;
	uint8_t pending_counted;      /* that FREE counted as a free (not one of
				       * a block a sampled trace left out) */
	int row;                      /* timeline series row, -1 "other" */
	uint32_t *tasks;              /* stack of open task indexes */
	size_t ntasks, tasks_cap;
};

struct mst_model {
	struct mst_model_options opts;
	char error[256];
	double scale;                 /* 1e6 / sample_rate_ppm */
	uint64_t ns_per_tick;         /* 1e9 / ticks_per_second if whole (1 for
				       * none given), else 0 */
	uint64_t flags;

	struct mst_summary sum;
	struct mst_histograms hist;
	struct mt_live live;
	struct mt_live side;          /* labels and tasks of live blocks */
	uint64_t live_bytes, live_count;
	uint64_t epoch;

	struct mt_map site_map;       /* stack id -> site index */
	uint64_t last_site_stack;     /* one-entry cache of site_get */
	uint32_t last_site;
	struct mst_site *sites;
	struct site_x *sitex;
	size_t nsites, sites_cap, sitex_cap;

	struct mt_map thread_map;     /* thread index -> threads[] */
	uint64_t last_thread_idx;     /* one-entry cache of thread_get */
	uint32_t last_thread;
	struct mst_thread_stats *threads;
	struct thread_x *threadx;
	size_t nthreads, threads_cap, threadx_cap;

	struct mt_map module_map;     /* module id -> modules[] */
	struct mst_module_stats *modules;
	size_t nmodules, modules_cap;
	/*
	 * Modules are attributed at the end (mst_model_finish), so that adding
	 * ALLOC and FREE records never reads the reader's tables: frees are
	 * counted per free stack, and (allocating site, free stack) pairs
	 * carry what may turn out to cross a module boundary.
	 */
	struct mt_map free_stack_map; /* free stack id -> free_stacks[] */
	struct free_stack { uint64_t stack, frees; } *free_stacks;
	size_t nfree_stacks, free_stacks_cap;
	uint64_t last_free_stack;     /* one-entry cache, stack 0 never */
	uint32_t last_free_index;
	struct mt_map pair_map;       /* site << 32 | free stack -> pairs[] */
	struct site_pair { uint32_t site, fs; uint64_t count, bytes; } *pairs;
	size_t npairs, pairs_cap;
	uint64_t last_pair_key;
	uint32_t last_pair;
	struct mt_map cross_map;      /* alloc idx << 32 | free idx -> cross[] */
	struct mst_module_cross *cross;
	size_t ncross, cross_cap;

	struct mst_label_stats *labels;
	size_t nlabels, labels_cap;

	struct mt_map task_map;
	struct mst_task_stats *tasks;
	size_t ntasks, tasks_cap;

	/* timeline */
	struct mst_bucket *buckets;
	size_t nb, cur;               /* bucket count, current bucket */
	uint64_t cur_end;             /* first time after the current bucket */
	struct mst_bucket *bk;        /* &buckets[cur], for timeline_at */
	uint64_t width;
	int started;
	uint64_t **series;            /* opts.thread_series rows + other */
	uint64_t *series_ids;
	size_t nseries;
	uint64_t other_live;
	int other_used;

	/* fragmentation */
	struct mst_fragmentation frag;
	uint64_t rss_time, arena_time, last_arena;
	int have_rss, have_arena;
	int peak_rss_pending, peak_arena_pending;
	uint64_t rss_dist, arena_dist;

	struct mst_integrity integ;
	uint64_t end_dropped;
	int finished;
};

static int fail(struct mst_model *m, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct mst_model *m, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->error, sizeof(m->error), fmt, ap);
	va_end(ap);
	return status;
}


int mst_model_new(struct mst_model **out, const struct mst_model_options *opts)
{
	struct mst_model *m = calloc(1, sizeof(*m));
	size_t i;
	*out = NULL;
	if (!m)
		return MST_ERR_NOMEM;
	if (opts)
		m->opts = *opts;
	if (!m->opts.timeline_buckets)
		m->opts.timeline_buckets = 1024;
	if (m->opts.timeline_buckets < 2)
		m->opts.timeline_buckets = 2;
	/* An even count keeps merging pairs simple. */
	m->opts.timeline_buckets &= ~1u;
	m->nb = m->opts.timeline_buckets;
	m->scale = 1.0;
	m->sum.sample_rate = 1.0;
	m->width = 1;
	m->last_thread = NO_INDEX;
	m->last_site = NO_INDEX;
	mt_live_init(&m->live);
	mt_live_init(&m->side);
	mt_map_init(&m->site_map);
	mt_map_init(&m->thread_map);
	mt_map_init(&m->module_map);
	mt_map_init(&m->free_stack_map);
	mt_map_init(&m->pair_map);
	m->last_pair = NO_INDEX;
	mt_map_init(&m->cross_map);
	mt_map_init(&m->task_map);
	m->buckets = calloc(m->nb, sizeof(*m->buckets));
	if (!m->buckets)
		goto nomem;
	if (m->opts.thread_series) {
		m->series = calloc(m->opts.thread_series + 1, sizeof(*m->series));
		m->series_ids = calloc(m->opts.thread_series, sizeof(uint64_t));
		if (!m->series || !m->series_ids)
			goto nomem;
		for (i = 0; i <= m->opts.thread_series; i++) {
			m->series[i] = calloc(m->nb, sizeof(uint64_t));
			if (!m->series[i])
				goto nomem;
		}
	}
	*out = m;
	return MST_OK;
nomem:
	mst_model_free(m);
	return MST_ERR_NOMEM;
}

void mst_model_free(struct mst_model *m)
{
	size_t i;
	if (!m)
		return;
	mt_live_release(&m->live);
	mt_live_release(&m->side);
	mt_map_release(&m->site_map);
	mt_map_release(&m->thread_map);
	mt_map_release(&m->module_map);
	mt_map_release(&m->free_stack_map);
	mt_map_release(&m->pair_map);
	free(m->free_stacks);
	free(m->pairs);
	mt_map_release(&m->cross_map);
	mt_map_release(&m->task_map);
	for (i = 0; i < m->nsites; i++)
		free(m->sitex[i].life);
	free(m->sites);
	free(m->sitex);
	for (i = 0; i < m->nthreads; i++) {
		free((char *)m->threads[i].name);
		free(m->threadx[i].tasks);
	}
	free(m->threads);
	free(m->threadx);
	for (i = 0; i < m->nmodules; i++)
		free((char *)m->modules[i].path);
	free(m->modules);
	free(m->cross);
	for (i = 0; i < m->nlabels; i++) {
		free((char *)m->labels[i].name);
		free((char *)m->labels[i].type);
	}
	free(m->labels);
	for (i = 0; i < m->ntasks; i++)
		free((char *)m->tasks[i].name);
	free(m->tasks);
	free(m->buckets);
	if (m->series)
		for (i = 0; i <= m->opts.thread_series; i++)
			free(m->series[i]);
	free(m->series);
	free(m->series_ids);
	free(m);
}

const char *mst_model_error(const struct mst_model *m)
{
	return m->error;
}

/* ---- tables ---- */

static uint32_t module_get(struct mst_model *m, uint64_t id, const char *path)
{
	uint32_t i = mt_map_get(&m->module_map, id);
	if (i != NO_INDEX) {
		if (path && !m->modules[i].path)
			m->modules[i].path = strdup(path);
		return i;
	}
	if (mst__grow(&m->modules, &m->modules_cap, m->nmodules + 1, sizeof(*m->modules)) < 0)
		return NO_INDEX;
	i = (uint32_t)m->nmodules;
	if (mt_map_put(&m->module_map, id, i) < 0)
		return NO_INDEX;
	m->nmodules++;
	m->modules[i].module = id;
	m->modules[i].path = path ? strdup(path) : NULL;
	return i;
}

/* Module index of the code at IP, from the reader's maps. */
static uint32_t module_of_ip(struct mst_model *m, const struct mst_reader *r,
			     uint64_t ip)
{
	const struct mst_module_load *ml;
	if (!r || !ip)
		return NO_INDEX;
	ml = mst_reader_module_at(r, ip);
	if (!ml)
		return NO_INDEX;
	return module_get(m, ml->module, ml->path);
}

static uint32_t module_of_stack(struct mst_model *m, const struct mst_reader *r,
				uint64_t stack)
{
	uint64_t parent, ip;
	if (!r || !stack || mst_reader_stack_node(r, stack, &parent, &ip) != MST_OK)
		return NO_INDEX;
	return module_of_ip(m, r, ip);
}

static uint32_t site_new(struct mst_model *m, uint64_t stack);

static inline uint32_t site_get(struct mst_model *m, uint64_t stack)
{
	uint32_t i;
	/* Allocations come in runs from one place: remember the last. */
	if (stack == m->last_site_stack && m->last_site != NO_INDEX)
		return m->last_site;
	i = mt_map_get(&m->site_map, stack);
	if (i == NO_INDEX)
		i = site_new(m, stack);
	m->last_site_stack = stack;
	m->last_site = i;
	return i;
}

static uint32_t site_new(struct mst_model *m, uint64_t stack)
{
	uint32_t i;
	if (mst__grow(&m->sites, &m->sites_cap, m->nsites + 1, sizeof(*m->sites)) < 0 ||
	    mst__grow(&m->sitex, &m->sitex_cap, m->nsites + 1, sizeof(*m->sitex)) < 0)
		return NO_INDEX;
	i = (uint32_t)m->nsites;
	if (mt_map_put(&m->site_map, stack, i) < 0)
		return NO_INDEX;
	m->nsites++;
	m->sites[i].stack = stack;
	m->sitex[i].module = NO_INDEX;    /* known at the end */
	m->sitex[i].epoch = m->epoch;
	return i;
}

static uint32_t thread_lookup(struct mst_model *m, uint64_t idx);

static inline uint32_t thread_get(struct mst_model *m, uint64_t idx)
{
	/* Consecutive events mostly come from the same thread. */
	if (m->last_thread_idx == idx && m->last_thread != NO_INDEX)
		return m->last_thread;
	return thread_lookup(m, idx);
}

static uint32_t thread_lookup(struct mst_model *m, uint64_t idx)
{
	uint32_t i = mt_map_get(&m->thread_map, idx);
	if (i != NO_INDEX) {
		m->last_thread_idx = idx;
		m->last_thread = i;
		return i;
	}
	if (mst__grow(&m->threads, &m->threads_cap, m->nthreads + 1, sizeof(*m->threads)) < 0 ||
	    mst__grow(&m->threadx, &m->threadx_cap, m->nthreads + 1, sizeof(*m->threadx)) < 0)
		return NO_INDEX;
	i = (uint32_t)m->nthreads;
	if (mt_map_put(&m->thread_map, idx, i) < 0)
		return NO_INDEX;
	m->nthreads++;
	m->threads[i].thread = idx;
	if (i < m->opts.thread_series) {
		m->threadx[i].row = (int)i;
		m->series_ids[i] = idx;
		m->nseries = i + 1;
	} else {
		m->threadx[i].row = -1;
	}
	return i;
}

static uint32_t task_get(struct mst_model *m, uint64_t id)
{
	uint32_t i = mt_map_get(&m->task_map, id);
	if (i != NO_INDEX)
		return i;
	if (mst__grow(&m->tasks, &m->tasks_cap, m->ntasks + 1, sizeof(*m->tasks)) < 0)
		return NO_INDEX;
	i = (uint32_t)m->ntasks;
	if (mt_map_put(&m->task_map, id, i) < 0)
		return NO_INDEX;
	m->ntasks++;
	m->tasks[i].task = id;
	return i;
}

/* Labels are few distinct (name, type) pairs: a linear search is enough. */
static uint32_t label_get(struct mst_model *m, const char *name, const char *type)
{
	size_t i;
	name = name ? name : "";
	type = type ? type : "";
	for (i = 0; i < m->nlabels; i++)
		if (!strcmp(m->labels[i].name, name) && !strcmp(m->labels[i].type, type))
			return (uint32_t)i;
	if (mst__grow(&m->labels, &m->labels_cap, m->nlabels + 1, sizeof(*m->labels)) < 0)
		return NO_INDEX;
	m->labels[i].name = strdup(name);
	m->labels[i].type = strdup(type);
	if (!m->labels[i].name || !m->labels[i].type)
		return NO_INDEX;
	m->nlabels++;
	return (uint32_t)i;
}

/* ---- timeline ---- */

static void series_set(struct mst_model *m, size_t b)
{
	size_t t;
	for (t = 0; t < m->nseries; t++)
		m->series[t][b] = m->threadx[t].live_bytes;
	if (m->series)
		m->series[m->opts.thread_series][b] = m->other_live;
}

/* Halves the resolution: bucket i becomes buckets 2i and 2i+1 merged. */
static void timeline_merge(struct mst_model *m)
{
	size_t i, n = m->cur / 2 + 1, t;
	for (i = 0; i < n; i++) {
		struct mst_bucket a = m->buckets[2 * i], b;
		if (2 * i + 1 <= m->cur) {
			b = m->buckets[2 * i + 1];
			if (b.heap_min < a.heap_min)
				a.heap_min = b.heap_min;
			if (b.heap_max > a.heap_max)
				a.heap_max = b.heap_max;
			a.heap_last = b.heap_last;
			a.allocations += b.allocations;
			a.frees += b.frees;
			a.bytes_allocated += b.bytes_allocated;
			if (b.rss)
				a.rss = b.rss;
			if (b.arena)
				a.arena = b.arena;
			if (b.in_use)
				a.in_use = b.in_use;
			a.has_data |= b.has_data;
		}
		m->buckets[i] = a;
		m->buckets[i].start = i * m->width * 2;
		if (m->series)
			for (t = 0; t <= m->opts.thread_series; t++)
				m->series[t][i] = m->series[t][2 * i + 1 <= m->cur ? 2 * i + 1 : 2 * i];
	}
	memset(m->buckets + n, 0, (m->nb - n) * sizeof(*m->buckets));
	m->width *= 2;
	m->cur = n - 1;
}

/* Moves the current bucket to the one holding time T (timeline_at). */
static __attribute__((noinline)) struct mst_bucket *timeline_move(struct mst_model *m,
								  uint64_t t)
{
	uint64_t b;
	if (!m->started) {
		m->started = 1;
		m->cur = 0;
		memset(&m->buckets[0], 0, sizeof(m->buckets[0]));
	}
	if (t > m->sum.duration)
		m->sum.duration = t;
	b = t / m->width;
	while (b >= m->nb) {
		timeline_merge(m);
		b = t / m->width;
	}
	/* Times never decrease, but be robust: stay in the current bucket. */
	while (m->cur < b) {
		struct mst_bucket *nb = &m->buckets[++m->cur];
		memset(nb, 0, sizeof(*nb));
		nb->start = m->cur * m->width;
		nb->heap_min = nb->heap_max = nb->heap_last = m->live_bytes;
		series_set(m, m->cur);
	}
	m->cur_end = (m->cur + 1) * m->width;
	m->bk = &m->buckets[m->cur];
	return m->bk;
}

/* The bucket of time T: every timed record asks, so the common case (still
 * inside the current bucket, no division) is inline. */
static inline struct mst_bucket *timeline_at(struct mst_model *m, uint64_t t)
{
	/* cur_end stays 0 until the timeline has started */
	if (t >= m->sum.duration && t < m->cur_end) {
		m->sum.duration = t;
		return m->bk;
	}
	return timeline_move(m, t);
}

/* Bucket B's live heap figures after a change to LIVE bytes. */
static inline void bucket_heap(struct mst_bucket *b, uint64_t live)
{
	b->heap_last = live;
	if (live > b->heap_max)
		b->heap_max = live;
	if (live < b->heap_min)
		b->heap_min = live;
	b->has_data = 1;
}

static inline void timeline_heap(struct mst_model *m, struct mst_bucket *b)
{
	bucket_heap(b, m->live_bytes);
}

static inline __attribute__((always_inline)) void
thread_live_at(struct mst_model *m, struct thread_x *x, struct mst_thread_stats *ts,
	       int64_t delta)
{
	x->live_bytes += (uint64_t)delta;
	if (x->live_bytes > ts->peak_bytes)
		ts->peak_bytes = x->live_bytes;
	/* Without series (ms-stats) "other" is never read: skip it. */
	if (m->series) {
		if (x->row >= 0) {
			m->series[x->row][m->cur] = x->live_bytes;
		} else {
			m->other_live += (uint64_t)delta;
			m->other_used = 1;
			m->series[m->opts.thread_series][m->cur] = m->other_live;
		}
	}
}

static inline void thread_live(struct mst_model *m, uint32_t ti, int64_t delta)
{
	thread_live_at(m, &m->threadx[ti], &m->threads[ti], delta);
}

/* ---- the live set ---- */

static inline void site_touch(struct mst_model *m, struct site_x *sx)
{
	if (sx->epoch != m->epoch) {
		sx->at_peak = sx->live_bytes;
		sx->epoch = m->epoch;
	}
}

static inline unsigned log2_bucket(uint64_t v)
{
	return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

static inline uint64_t ticks_to_ns(const struct mst_model *m, uint64_t ticks)
{
	uint64_t tps = m->sum.ticks_per_second;
	double ns;
	/*
	 * Every free asks, and a division is slow. Where a tick is a whole
	 * number of ns and ticks x 1e9 stays below 2^53, the division below
	 * is exact, so the product gives the same result. (ns_per_tick is 1
	 * for ns ticks and for none given, where ticks are ns anyway.)
	 */
	if (ticks < (1ull << 53) / 1000000000ull && m->ns_per_tick)
		return ticks * m->ns_per_tick;
	if (!tps || tps == 1000000000ull)
		return ticks;
	ns = (double)ticks * 1e9 / (double)tps;
	return ns >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)ns;
}

/* A block's label and task (the side set) end with it. */
static void extra_forget(struct mst_model *m, const struct mt_block *b, uint64_t size)
{
	struct mt_block *x = mt_live_find(&m->side, mt_live_addr(&m->live, b));

	if (!x)
		return;
	if (x->label)
		m->labels[x->label - 1].live_bytes -= size;
	if (x->task)
		m->tasks[x->task - 1].live_bytes -= size;
	mt_live_remove(&m->side, x);
}

/* Takes block B out of the live set and every live figure. LIFETIME: the
 * block was given back at time T (recorded in the lifetime histograms). */
static inline __attribute__((always_inline)) void
block_forget(struct mst_model *m, struct mt_block *b, uint64_t t, int lifetime)
{
	struct site_x *sx = &m->sitex[b->site];
	uint64_t size = mt_block_size(b);
	site_touch(m, sx);
	sx->live_bytes -= size;
	sx->live_count--;
	if (lifetime) {
		uint64_t ns = ticks_to_ns(m, t >= b->time ? t - b->time : 0);
		unsigned lb = log2_bucket(ns);
		if (lb >= MST_LIFE_BUCKETS)
			lb = MST_LIFE_BUCKETS - 1;
		m->hist.life_count[lb]++;
		m->hist.life_bytes[lb] += size;
		if (!sx->life)
			sx->life = calloc(MST_LIFE_BUCKETS, sizeof(*sx->life));
		if (sx->life) {
			sx->life[lb]++;
			sx->life_n++;
		}
	}
	thread_live(m, b->thread, -(int64_t)size);
	if (b->size_func & MT_EXTRA)
		extra_forget(m, b, size);
	m->live_bytes -= size;
	m->live_count--;
}

static inline __attribute__((always_inline)) void
block_remove(struct mst_model *m, struct mt_block *b, uint64_t t, int lifetime)
{
	block_forget(m, b, t, lifetime);
	mt_live_remove(&m->live, b);
}

static inline void peak_check(struct mst_model *m, uint64_t t)
{
	if (m->live_bytes <= m->sum.peak_bytes)
		return;
	m->sum.peak_bytes = m->live_bytes;
	m->sum.peak_time = t;
	m->sum.peak_allocations = m->live_count;
	m->epoch++;
	/* The counters sample nearest the peak: the last one before it, unless
	 * the first one after it comes nearer (or there was none before). */
	m->frag.rss_at_peak = m->have_rss ? m->frag.last_rss : 0;
	m->rss_dist = m->have_rss ? t - m->rss_time : UINT64_MAX;
	m->peak_rss_pending = 1;
	m->frag.arena_at_peak = m->have_arena ? m->last_arena : 0;
	m->arena_dist = m->have_arena ? t - m->arena_time : UINT64_MAX;
	m->peak_arena_pending = 1;
}

/* add_run repeats this function's common case in its loop, figures kept in
 * registers: a change here is a change there (test_model_read compares
 * the two). */
static inline __attribute__((always_inline)) int add_alloc(struct mst_model *m,
							    const struct mst_alloc *a)
{
	struct mst_bucket *bk = timeline_at(m, a->time);
	uint32_t ti = thread_get(m, a->thread), si;
	struct mst_thread_stats *ts;
	struct thread_x *tx;
	struct mt_block *b;
	struct site_x *sx;
	struct mst_site *s;
	unsigned hb;
	int existed;

	if (ti == NO_INDEX)
		return fail(m, MST_ERR_NOMEM, "out of memory");
	tx = &m->threadx[ti];
	ts = &m->threads[ti];
	/* sum.allocations, bytes_allocated and frees are the threads'
	 * totals, added up in mst_model_finish. */
	if (a->func < 16) {
		m->sum.alloc_by_func[a->func].calls++;
		m->sum.alloc_by_func[a->func].bytes += a->size;
	}
	if (a->func == MST_ALLOC_REALLOC || a->func == MST_ALLOC_REALLOCARRAY) {
		m->sum.reallocs++;
		if (a->old_addr && a->old_addr != a->addr &&
		    tx->pending_realloc == a->old_addr) {
			/* The FREE half of a moved realloc: one call, no free.
			 * It ended the old block already (or found none, in a
			 * sampled trace); another thread may have been given
			 * its address since (the call can take a while: mremap,
			 * a thread descheduled), and that block is not this
			 * realloc's to end. */
			if (tx->pending_counted) {
				m->sum.free_by_func[tx->pending_func]--;
				ts->frees--;
			}
		} else if (a->old_addr) {
			/* In place (old == new) or a FREE that never came:
			 * the old block ends here without being a free. */
			b = mt_live_find(&m->live, a->old_addr);
			if (b)
				block_remove(m, b, a->time, 0);
		}
	}
	tx->pending_realloc = 0;

	si = site_get(m, a->stack);
	if (si == NO_INDEX)
		return fail(m, MST_ERR_NOMEM, "out of memory");
	b = mt_live_upsert(&m->live, a->addr, &existed);
	if (!b)
		return fail(m, MST_ERR_NOMEM, "out of memory for %zu live blocks",
			    m->live.len);
	if (existed) {
		/* An address already live: the old block is replaced. */
		m->integ.double_allocs++;
		block_forget(m, b, a->time, 0);
		memset(b, 0, sizeof(*b));
	}
	mt_block_set(b, a->size, a->func);
	b->time = a->time;
	b->site = si;
	b->thread = ti;
	if (tx->ntasks) {
		uint32_t k = tx->tasks[tx->ntasks - 1];
		int had;
		struct mt_block *x = mt_live_upsert(&m->side, a->addr, &had);

		if (!x)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		x->task = k + 1;
		b->size_func |= MT_EXTRA;
		m->tasks[k].allocations++;
		m->tasks[k].bytes += a->size;
		m->tasks[k].live_bytes += a->size;
	}

	s = &m->sites[si];
	sx = &m->sitex[si];
	site_touch(m, sx);
	s->allocations++;
	s->bytes += a->size;
	sx->live_bytes += a->size;
	sx->live_count++;
	if (sx->live_bytes > s->max_live_bytes)
		s->max_live_bytes = sx->live_bytes;

	/* ts and tx still point at the thread: only thread_lookup moves them */
	ts->allocations++;
	ts->bytes += a->size;
	thread_live_at(m, tx, ts, (int64_t)a->size);
	tx->last_alloc = a->addr;

	hb = log2_bucket(a->size);
	m->hist.size_count[hb]++;
	m->hist.size_bytes[hb] += a->size;

	m->live_bytes += a->size;
	m->live_count++;
	bk->allocations++;
	bk->bytes_allocated += a->size;
	timeline_heap(m, bk);
	peak_check(m, a->time);
	return MST_OK;
}

/* Index of free stack STACK in free_stacks (created on first use). */
static __attribute__((noinline)) uint32_t free_stack_lookup(struct mst_model *m, uint64_t stack)
{
	uint32_t v = mt_map_get(&m->free_stack_map, stack);
	if (v == NO_INDEX) {
		if (mst__grow(&m->free_stacks, &m->free_stacks_cap, m->nfree_stacks + 1,
			 sizeof(*m->free_stacks)) < 0 ||
		    mt_map_put(&m->free_stack_map, stack, (uint32_t)m->nfree_stacks) < 0)
			return NO_INDEX;
		v = (uint32_t)m->nfree_stacks++;
		m->free_stacks[v].stack = stack;
	}
	m->last_free_stack = stack;
	m->last_free_index = v;
	return v;
}

static inline uint32_t free_stack_index(struct mst_model *m, uint64_t stack)
{
	/* Frees come from few places: remember the last one. */
	if (stack == m->last_free_stack)
		return m->last_free_index;
	return free_stack_lookup(m, stack);
}

/* Counts a block of SITE freed from free stack FS, for the modules'
 * crossing figures. */
static inline void pair_add(struct mst_model *m, uint32_t site, uint32_t fs, uint64_t bytes)
{
	uint64_t key = (uint64_t)site << 32 | fs;
	uint32_t v;
	if (key == m->last_pair_key && m->last_pair != NO_INDEX) {
		v = m->last_pair;
	} else {
		v = mt_map_get(&m->pair_map, key);
		if (v == NO_INDEX) {
			if (mst__grow(&m->pairs, &m->pairs_cap, m->npairs + 1, sizeof(*m->pairs)) < 0 ||
			    mt_map_put(&m->pair_map, key, (uint32_t)m->npairs) < 0) {
				/* out of memory: crossing figures only */
				m->free_stacks[fs].frees++;
				return;
			}
			v = (uint32_t)m->npairs++;
			m->pairs[v].site = site;
			m->pairs[v].fs = fs;
		}
		m->last_pair_key = key;
		m->last_pair = v;
	}
	m->pairs[v].count++;
	m->pairs[v].bytes += bytes;
}

/* add_run repeats this function's common case too (see add_alloc). */
static inline __attribute__((always_inline)) int add_free(struct mst_model *m,
							   const struct mst_free *f)
{
	struct mst_bucket *bk = timeline_at(m, f->time);
	uint32_t ti = thread_get(m, f->thread), fs = NO_INDEX;
	struct mst_thread_stats *ts;
	struct thread_x *tx;
	struct mt_block *b;
	int is_realloc = f->func == MST_FREE_REALLOC || f->func == MST_FREE_REALLOCARRAY;

	if (ti == NO_INDEX)
		return fail(m, MST_ERR_NOMEM, "out of memory");
	tx = &m->threadx[ti];
	ts = &m->threads[ti];
	/* Counted as a free now; a realloc ALLOC that follows on this thread
	 * with this old address takes it back (one realloc call). */
	if (f->func < 8)
		m->sum.free_by_func[f->func]++;
	ts->frees++;
	bk->frees++;
	bk->has_data = 1;
	tx->pending_realloc = is_realloc ? f->addr : 0;
	tx->pending_func = f->func < 8 ? f->func : 0;
	tx->pending_counted = 1;
	if (!f->addr)
		return MST_OK;        /* free(NULL): a call, no block */

	if (f->stack) {
		fs = free_stack_index(m, f->stack);
		if (fs == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		/* free_stacks[fs].frees: counted here for an unknown free,
		 * else in its pair (added up in attribute_modules) */
	}
	b = mt_live_find(&m->live, f->addr);
	if (!b) {
		if (fs != NO_INDEX)
			m->free_stacks[fs].frees++;
		m->integ.unknown_frees++;
		if (m->sum.estimated) {
			/* Sampled: most likely the free of an allocation the
			 * recorder did not keep; not a call to scale up. */
			if (f->func < 8)
				m->sum.free_by_func[f->func]--;
			ts->frees--;
			bk->frees--;
			tx->pending_counted = 0;
		}
		return MST_OK;
	}
	if (!is_realloc && b->thread == ti && tx->last_alloc == f->addr) {
		m->sum.temporary++;
		m->sites[b->site].temporary++;
	}
	if (tx->last_alloc == f->addr)
		tx->last_alloc = 0;
	if (b->thread != ti) {
		ts->cross_frees++;
		ts->cross_free_bytes += mt_block_size(b);
		if (m->threadx[b->thread].last_alloc == f->addr)
			m->threadx[b->thread].last_alloc = 0;
	}
	if (fs != NO_INDEX)
		pair_add(m, b->site, fs, mt_block_size(b));
	block_remove(m, b, f->time, 1);
	timeline_heap(m, bk);
	return MST_OK;
}

static void add_counters(struct mst_model *m, const struct mst_counters *c)
{
	struct mst_bucket *bk = timeline_at(m, c->time);
	uint32_t i;
	m->frag.samples++;
	for (i = 0; i < c->count; i++) {
		uint64_t v = c->items[i].value;
		switch (c->items[i].key) {
		case MST_CTR_RSS:
			bk->rss = v;
			m->frag.last_rss = v;
			if (v > m->frag.peak_rss)
				m->frag.peak_rss = v;
			if (m->peak_rss_pending) {
				if (c->time - m->sum.peak_time < m->rss_dist)
					m->frag.rss_at_peak = v;
				m->peak_rss_pending = 0;
			}
			m->have_rss = 1;
			m->rss_time = c->time;
			break;
		case MST_CTR_ARENA:
			bk->arena = v;
			m->frag.last_arena = m->last_arena = v;
			if (m->peak_arena_pending) {
				if (c->time - m->sum.peak_time < m->arena_dist)
					m->frag.arena_at_peak = v;
				m->peak_arena_pending = 0;
			}
			m->have_arena = 1;
			m->arena_time = c->time;
			break;
		case MST_CTR_IN_USE:
			bk->in_use = v;
			m->frag.last_in_use = v;
			break;
		default:
			break;
		}
	}
	bk->has_data = 1;
}

static void task_end(struct mst_model *m, uint32_t ti, uint32_t k)
{
	struct thread_x *tx = &m->threadx[ti];
	size_t i;
	/* Tasks nest: close K and anything opened inside it and left open. */
	for (i = tx->ntasks; i-- > 0;) {
		if (tx->tasks[i] == k) {
			tx->ntasks = i;
			return;
		}
	}
}

int mst_model_add(struct mst_model *m, const struct mst_reader *r,
		  const struct mst_record *rec)
{
	uint32_t i;
	/* The reader's tables are read in mst_model_finish only: adding a
	 * record never touches them, so mst_model_read may run the reader on
	 * another thread. */
	(void)r;
	switch (rec->type) {
	case MST_REC_HEADER: {
		const struct mst_header *h = &rec->u.header;
		m->sum.ticks_per_second = h->ticks_per_second;
		m->ns_per_tick = !h->ticks_per_second ? 1 :
			1000000000ull % h->ticks_per_second == 0 ?
			1000000000ull / h->ticks_per_second : 0;
		m->flags = h->flags;
		m->integ.forked = !!(h->flags & MST_FLAG_FORKED);
		m->integ.own_malloc = !!(h->flags & MST_FLAG_OWN_MALLOC);
		if (h->sample_rate_ppm && h->sample_rate_ppm < 1000000) {
			m->sum.estimated = 1;
			m->sum.sample_rate = (double)h->sample_rate_ppm / 1e6;
			m->scale = 1e6 / (double)h->sample_rate_ppm;
		}
		/* Start at 1 µs buckets; they double as the trace grows. */
		m->width = h->ticks_per_second >= 1000000 ?
			h->ticks_per_second / 1000000 : 1;
		return MST_OK;
	}
	case MST_REC_ALLOC:
		return add_alloc(m, &rec->u.alloc);
	case MST_REC_FREE:
		return add_free(m, &rec->u.free);
	case MST_REC_STACK:
	case MST_REC_SYMBOLS:
		return MST_OK;
	case MST_REC_MODULE_LOAD:
		timeline_at(m, rec->u.module_load.time);
		if (module_get(m, rec->u.module_load.module, rec->u.module_load.path) == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		return MST_OK;
	case MST_REC_MODULE_UNLOAD:
		timeline_at(m, rec->u.module_unload.time);
		return MST_OK;
	case MST_REC_THREAD_START:
		timeline_at(m, rec->u.thread_start.time);
		i = thread_get(m, rec->u.thread_start.thread);
		if (i == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		m->threads[i].tid = rec->u.thread_start.tid;
		m->threads[i].start_time = rec->u.thread_start.time;
		return MST_OK;
	case MST_REC_THREAD_NAME:
		timeline_at(m, rec->u.thread_name.time);
		i = thread_get(m, rec->u.thread_name.thread);
		if (i == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		free((char *)m->threads[i].name);
		m->threads[i].name = strdup(rec->u.thread_name.name ? rec->u.thread_name.name : "");
		return MST_OK;
	case MST_REC_THREAD_EXIT:
		timeline_at(m, rec->u.thread_exit.time);
		i = thread_get(m, rec->u.thread_exit.thread);
		if (i == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		m->threads[i].exit_time = rec->u.thread_exit.time;
		return MST_OK;
	case MST_REC_COUNTERS:
		add_counters(m, &rec->u.counters);
		return MST_OK;
	case MST_REC_LABEL: {
		const struct mst_label *l = &rec->u.label;
		struct mt_block *b;
		struct mt_block *x;
		int existed;
		timeline_at(m, l->time);
		b = mt_live_find(&m->live, l->addr);
		if (!b)
			return MST_OK;    /* untracked (sampled out) memory */
		i = label_get(m, l->name, l->type);
		if (i == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		x = mt_live_upsert(&m->side, l->addr, &existed);
		if (!x)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		b->size_func |= MT_EXTRA;
		if (x->label == i + 1)
			return MST_OK;
		if (x->label)
			m->labels[x->label - 1].live_bytes -= mt_block_size(b);
		x->label = i + 1;
		m->labels[i].allocations++;
		m->labels[i].bytes += mt_block_size(b);
		m->labels[i].live_bytes += mt_block_size(b);
		return MST_OK;
	}
	case MST_REC_TASK_BEGIN: {
		const struct mst_task_begin *tb = &rec->u.task_begin;
		uint32_t ti = thread_get(m, tb->thread), k;
		struct thread_x *tx;
		timeline_at(m, tb->time);
		k = task_get(m, tb->task);
		if (ti == NO_INDEX || k == NO_INDEX)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		tx = &m->threadx[ti];
		if (!m->tasks[k].name)
			m->tasks[k].name = strdup(tb->name ? tb->name : "");
		m->tasks[k].thread = tb->thread;
		m->tasks[k].begin_time = tb->time;
		if (mst__grow(&tx->tasks, &tx->tasks_cap, tx->ntasks + 1, sizeof(*tx->tasks)) < 0)
			return fail(m, MST_ERR_NOMEM, "out of memory");
		tx->tasks[tx->ntasks++] = k;
		return MST_OK;
	}
	case MST_REC_TASK_END: {
		const struct mst_task_end *te = &rec->u.task_end;
		uint32_t ti = thread_get(m, te->thread), k;
		timeline_at(m, te->time);
		k = mt_map_get(&m->task_map, te->task);
		if (ti == NO_INDEX || k == NO_INDEX)
			return MST_OK;
		m->tasks[k].end_time = te->time;
		task_end(m, ti, k);
		return MST_OK;
	}
	case MST_REC_DROPPED:
		timeline_at(m, rec->u.dropped.time);
		m->integ.dropped_events += rec->u.dropped.events;
		m->integ.dropped_bytes += rec->u.dropped.bytes;
		return MST_OK;
	case MST_REC_END:
		timeline_at(m, rec->u.end.time);
		m->integ.complete = 1;
		m->integ.end_reason = rec->u.end.reason;
		m->integ.end_status = rec->u.end.status;
		m->end_dropped = rec->u.end.dropped;
		return MST_OK;
	}
	return MST_OK;
}

/* ---- finish: derive, then scale sampled figures ---- */

static uint64_t median_life(const struct site_x *sx)
{
	uint64_t half, acc = 0;
	unsigned i;
	if (!sx->life || !sx->life_n)
		return 0;
	half = (sx->life_n + 1) / 2;
	for (i = 0; i < MST_LIFE_BUCKETS; i++) {
		acc += sx->life[i];
		if (acc >= half)
			break;
	}
	if (i == 0)
		return 0;
	if (i == 1)
		return 1;
	/* midpoint of [2^(i-1), 2^i) */
	return (1ull << (i - 1)) + (1ull << (i - 2));
}

static inline uint64_t sc(const struct mst_model *m, uint64_t v)
{
	double x = (double)v * m->scale + 0.5;
	/* a conversion out of range would be undefined */
	return x >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)x;
}

static void scale_all(struct mst_model *m)
{
	size_t i, b, t;
	struct mst_summary *s = &m->sum;
#define S(x) ((x) = sc(m, (x)))
	S(s->allocations); S(s->frees); S(s->reallocs); S(s->bytes_allocated);
	for (i = 0; i < 16; i++) {
		S(s->alloc_by_func[i].calls);
		S(s->alloc_by_func[i].bytes);
	}
	for (i = 0; i < 8; i++)
		S(s->free_by_func[i]);
	S(s->peak_bytes); S(s->peak_allocations); S(s->end_bytes);
	S(s->end_allocations); S(s->temporary);
	for (i = 0; i < MST_SIZE_BUCKETS; i++) {
		S(m->hist.size_count[i]);
		S(m->hist.size_bytes[i]);
	}
	for (i = 0; i < MST_LIFE_BUCKETS; i++) {
		S(m->hist.life_count[i]);
		S(m->hist.life_bytes[i]);
	}
	for (i = 0; i < m->nsites; i++) {
		struct mst_site *x = &m->sites[i];
		S(x->allocations); S(x->bytes); S(x->peak_bytes); S(x->max_live_bytes);
		S(x->leaked_bytes); S(x->leaked_allocations); S(x->temporary);
	}
	for (i = 0; i < m->nthreads; i++) {
		struct mst_thread_stats *x = &m->threads[i];
		S(x->allocations); S(x->bytes); S(x->frees); S(x->live_bytes);
		S(x->peak_bytes); S(x->cross_frees); S(x->cross_free_bytes);
	}
	for (i = 0; i < m->nmodules; i++) {
		S(m->modules[i].allocations); S(m->modules[i].bytes);
		S(m->modules[i].frees); S(m->modules[i].leaked_bytes);
	}
	for (i = 0; i < m->ncross; i++) {
		S(m->cross[i].count); S(m->cross[i].bytes);
	}
	for (i = 0; i < m->nlabels; i++) {
		S(m->labels[i].allocations); S(m->labels[i].bytes);
		S(m->labels[i].live_bytes);
	}
	for (i = 0; i < m->ntasks; i++) {
		S(m->tasks[i].allocations); S(m->tasks[i].bytes);
		S(m->tasks[i].live_bytes);
	}
	for (b = 0; b < m->nb; b++) {
		struct mst_bucket *x = &m->buckets[b];
		S(x->heap_min); S(x->heap_max); S(x->heap_last);
		S(x->allocations); S(x->frees); S(x->bytes_allocated);
		if (m->series)
			for (t = 0; t <= m->opts.thread_series; t++)
				S(m->series[t][b]);
	}
	S(m->frag.live_bytes);
#undef S
}

/* Modules of every site and free stack, now that the reader knows every
 * module and stack; then the per-module figures and the crossings. */
static void attribute_modules(struct mst_model *m, const struct mst_reader *r)
{
	uint32_t *fsm = calloc(m->nfree_stacks ? m->nfree_stacks : 1, sizeof(*fsm));
	size_t i;
	for (i = 0; i < m->nsites; i++) {
		struct mst_site *s = &m->sites[i];
		struct site_x *sx = &m->sitex[i];
		sx->module = module_of_stack(m, r, s->stack);
		if (sx->module == NO_INDEX)
			continue;
		s->module = m->modules[sx->module].module;
		m->modules[sx->module].allocations += s->allocations;
		m->modules[sx->module].bytes += s->bytes;
		m->modules[sx->module].leaked_bytes += sx->live_bytes;
	}
	if (!fsm)
		return;
	/* A pair counts its frees of a known block, the free stack only the
	 * rest (one counter less a free while reading). */
	for (i = 0; i < m->npairs; i++)
		m->free_stacks[m->pairs[i].fs].frees += m->pairs[i].count;
	for (i = 0; i < m->nfree_stacks; i++) {
		fsm[i] = module_of_stack(m, r, m->free_stacks[i].stack);
		if (fsm[i] != NO_INDEX)
			m->modules[fsm[i]].frees += m->free_stacks[i].frees;
	}
	for (i = 0; i < m->npairs; i++) {
		uint32_t am = m->sitex[m->pairs[i].site].module, fm = fsm[m->pairs[i].fs], ci;
		uint64_t key;
		if (am == NO_INDEX || fm == NO_INDEX || am == fm)
			continue;
		key = (uint64_t)am << 32 | fm;
		ci = mt_map_get(&m->cross_map, key);
		if (ci == NO_INDEX) {
			if (mst__grow(&m->cross, &m->cross_cap, m->ncross + 1, sizeof(*m->cross)) < 0 ||
			    mt_map_put(&m->cross_map, key, (uint32_t)m->ncross) < 0)
				break;
			ci = (uint32_t)m->ncross++;
			m->cross[ci].alloc_module = m->modules[am].module;
			m->cross[ci].free_module = m->modules[fm].module;
		}
		m->cross[ci].count += m->pairs[i].count;
		m->cross[ci].bytes += m->pairs[i].bytes;
	}
	free(fsm);
}

int mst_model_finish(struct mst_model *m, const struct mst_reader *r, int read_status)
{
	size_t i;
	uint64_t lo = UINT64_MAX, hi = 0;

	if (m->finished)
		return MST_OK;
	m->finished = 1;
	if (!m->started)
		timeline_at(m, 0);
	m->integ.read_status = read_status;
	if (read_status < 0 && r)
		snprintf(m->integ.read_error, sizeof(m->integ.read_error), "%s",
			 mst_reader_error(r));
	m->integ.truncated = read_status == MST_ERR_TRUNCATED ||
		(read_status >= 0 && !m->integ.complete);
	if (m->end_dropped > m->integ.dropped_events)
		m->integ.dropped_events = m->end_dropped;
	/* Kept per thread only while reading: one counter less an event. */
	m->sum.allocations = m->sum.bytes_allocated = m->sum.frees = 0;
	for (i = 0; i < m->nthreads; i++) {
		m->sum.allocations += m->threads[i].allocations;
		m->sum.bytes_allocated += m->threads[i].bytes;
		m->sum.frees += m->threads[i].frees;
	}

	for (i = 0; i < m->nsites; i++) {
		struct mst_site *s = &m->sites[i];
		struct site_x *sx = &m->sitex[i];
		s->peak_bytes = sx->epoch == m->epoch ? sx->at_peak : sx->live_bytes;
		s->leaked_bytes = sx->live_bytes;
		s->leaked_allocations = sx->live_count;
		s->median_lifetime_ns = median_life(sx);
	}
	attribute_modules(m, r);
	for (i = 0; i < m->nthreads; i++)
		m->threads[i].live_bytes = m->threadx[i].live_bytes;
	for (i = 0; i < m->live.cap; i++) {
		uint64_t addr = m->live.e[i].key;
		if (!addr)
			continue;
		if (addr < lo)
			lo = addr;
		if (addr + mt_block_size(&m->live.e[i].b) > hi)
			hi = addr + mt_block_size(&m->live.e[i].b);
	}
	m->frag.live_bytes = m->live_bytes;
	m->frag.span_bytes = hi > lo ? hi - lo : 0;
	m->sum.end_bytes = m->live_bytes;
	m->sum.end_allocations = m->live_count;
	m->sum.max_rss = m->frag.peak_rss;
	if (m->sum.estimated)
		scale_all(m);
	return MST_OK;
}

/* ---- accessors ---- */

const struct mst_summary *mst_model_summary(const struct mst_model *m)
{
	return &m->sum;
}

const struct mst_histograms *mst_model_histograms(const struct mst_model *m)
{
	return &m->hist;
}

size_t mst_model_sites(const struct mst_model *m, const struct mst_site **sites)
{
	*sites = m->sites;
	return m->nsites;
}

size_t mst_model_threads(const struct mst_model *m,
			 const struct mst_thread_stats **threads)
{
	*threads = m->threads;
	return m->nthreads;
}

size_t mst_model_modules(const struct mst_model *m,
			 const struct mst_module_stats **modules)
{
	*modules = m->modules;
	return m->nmodules;
}

size_t mst_model_module_cross(const struct mst_model *m,
			      const struct mst_module_cross **pairs)
{
	*pairs = m->cross;
	return m->ncross;
}

void mst_model_timeline(const struct mst_model *m, struct mst_timeline *tl)
{
	memset(tl, 0, sizeof(*tl));
	tl->width = m->width;
	tl->count = m->started ? m->cur + 1 : 0;
	tl->buckets = m->buckets;
	if (m->series) {
		tl->nthreads = m->nseries;
		tl->thread_ids = m->series_ids;
		tl->series = (const uint64_t *const *)m->series;
		tl->other = m->other_used ? m->series[m->opts.thread_series] : NULL;
	}
}

void mst_model_fragmentation(const struct mst_model *m, struct mst_fragmentation *f)
{
	*f = m->frag;
}

size_t mst_model_labels(const struct mst_model *m, const struct mst_label_stats **labels)
{
	*labels = m->labels;
	return m->nlabels;
}

size_t mst_model_tasks(const struct mst_model *m, const struct mst_task_stats **tasks)
{
	*tasks = m->tasks;
	return m->ntasks;
}

void mst_model_integrity(const struct mst_model *m, struct mst_integrity *in)
{
	*in = m->integ;
	in->unknown_frees_expected = m->sum.estimated || in->forked || in->dropped_events;
}

void mst_model_each_live(const struct mst_model *m,
			 void (*fn)(void *ctx, const struct mst_live_block *b),
			 void *ctx)
{
	size_t i;
	for (i = 0; i < m->live.cap; i++) {
		const struct mt_block *s = &m->live.e[i].b;
		struct mst_live_block b;
		if (!m->live.e[i].key)
			continue;
		b.addr = m->live.e[i].key;
		b.size = mt_block_size(s);
		b.stack = m->sites[s->site].stack;
		b.time = s->time;
		b.thread = m->threads[s->thread].thread;
		b.func = (uint8_t)mt_block_func(s);
		fn(ctx, &b);
	}
}

/* ---- reading a whole trace ---- */

/*
 * A second thread reads, checks, decompresses and decodes the chunks
 * ahead (mst__reader_prefetch; STACK and other records stay for this
 * thread, in order); this one takes the ALLOC and FREE events in place, a
 * batch at a time (mst__reader_events_view), and everything else through
 * mst_reader_next. The two carry about the same work an event.
 */
#define READ_BATCH 256
#define READ_AHEAD 16                 /* events whose live slots are prefetched */
#define EVENTS_AHEAD 24               /* events whose lines are prefetched */
/* Below this many slots (40 bytes each, key and block) the live set stays
 * in the second-level cache and prefetching is only work. */
#define PREFETCH_MIN_SLOTS 8192
#define RUN_SKIP 8                    /* events not tried in add_run after it took none */

static inline __attribute__((always_inline)) int add_event(struct mst_model *m,
							    const struct mst__event *e)
{
	if (mst__ev_type(e) == MST_REC_ALLOC) {
		struct mst_alloc a = {
			.time = e->time, .thread = e->thread, .func = mst__ev_func(e),
			.addr = e->addr, .size = mst__ev_size(e), .stack = e->stack,
		};
		return add_alloc(m, &a);
	} else {
		struct mst_free f = {
			.time = e->time, .thread = e->thread, .func = mst__ev_func(e),
			.addr = e->addr, .stack = e->stack,
		};
		return add_free(m, &f);
	}
}

/*
 * The events of a batch that need none of add_alloc's and add_free's
 * rarer cases, in one loop: a thread seen before with no task open, a
 * site, free stack and pair seen before (a program with many call sites,
 * perl's, switches at almost every event), no realloc, no new bucket,
 * table or lifetime histogram, no block unknown or live already, no
 * series (ms-svg). The checks those cases take are made once a batch
 * rather than an event, and the figures every event moves (live bytes and
 * blocks, the table, the trace's duration, the last thread, site and free
 * stack) stay in registers: in add_alloc and add_free each store of a
 * counter might alias them, so they were loaded again after each. Each
 * event has exactly add_event's effect. Takes the events from EV[K] on
 * and returns the index of the first it did not take (K itself when it
 * took none); PF: prefetch the live slots READ_AHEAD events ahead.
 */
static inline __attribute__((always_inline)) size_t add_run(struct mst_model *m,
							     const struct mst__event *ev,
							     size_t k, size_t n, int pf)
{
	struct mt_live lv = m->live;
	size_t mask = lv.cap - 1;
	uint64_t live_bytes = m->live_bytes, live_count = m->live_count;
	uint64_t duration = m->sum.duration, cur_end = m->cur_end, epoch = m->epoch;
	uint64_t tidx = m->last_thread_idx, site_stack = m->last_site_stack;
	uint64_t fs_stack = m->last_free_stack, pair_key = m->last_pair_key;
	struct mst_bucket *bk = m->bk;
	struct thread_x *tx;
	struct mst_thread_stats *ts;
	struct site_pair *pair = NULL;
	uint32_t ti = m->last_thread, si = m->last_site, fs = m->last_free_index;
	uint32_t pi = m->last_pair;

	if (m->series || ti == NO_INDEX || si == NO_INDEX || !m->started || !lv.cap)
		return k;
	tx = &m->threadx[ti];
	ts = &m->threads[ti];
	if (tx->ntasks)
		return k;
	if (pi != NO_INDEX)
		pair = &m->pairs[pi];
	for (; k < n; k++) {
		const struct mst__event *e = &ev[k];
		uint64_t t = e->time, addr = e->addr, w = e->word, size;
		unsigned func = (unsigned)(w >> 56) & 0x7f;
		size_t i;

		if (t < duration || t >= cur_end || !addr)
			break;
		if (e->thread != tidx) {
			/* a thread seen before (thread_get's lookup) */
			uint32_t x = mt_map_get(&m->thread_map, e->thread);
			if (x == NO_INDEX || m->threadx[x].ntasks)
				break;
			tidx = e->thread;
			ti = x;
			tx = &m->threadx[x];
			ts = &m->threads[x];
		}
		if (k + EVENTS_AHEAD < n)
			__builtin_prefetch(&ev[k + EVENTS_AHEAD]);
		if (pf && k + READ_AHEAD < n)
			mt_live_prefetch(&lv, ev[k + READ_AHEAD].addr);
		if (!(w & MST__EV_FREE)) {
			struct mst_site *s = &m->sites[si];
			struct site_x *sx = &m->sitex[si];
			struct mt_block *b;
			unsigned hb;

			size = w & MST__EV_SIZE_MAX;
			if (func == MST_ALLOC_REALLOC || func == MST_ALLOC_REALLOCARRAY ||
			    lv.len >= lv.grow_at)
				break;
			if (e->stack != site_stack) {
				/* a site seen before (site_get's lookup) */
				uint32_t x = mt_map_get(&m->site_map, e->stack);
				if (x == NO_INDEX)
					break;
				si = x;
				site_stack = e->stack;
				s = &m->sites[si];
				sx = &m->sitex[si];
			}
			for (i = mt_hash(addr, lv.shift); lv.e[i].key; i = (i + 1) & mask)
				if (lv.e[i].key == addr)
					break;
			if (lv.e[i].key)
				break;        /* live already: add_alloc says so */
			duration = t;
			m->sum.alloc_by_func[func].calls++;
			m->sum.alloc_by_func[func].bytes += size;
			tx->pending_realloc = 0;
			lv.e[i].key = addr;
			lv.len++;
			b = &lv.e[i].b;
			/* the event's word is the block's size and function */
			*b = (struct mt_block){ .size_func = w, .time = t, .site = si, .thread = ti };
			if (sx->epoch != epoch) {
				sx->at_peak = sx->live_bytes;
				sx->epoch = epoch;
			}
			s->allocations++;
			s->bytes += size;
			sx->live_bytes += size;
			sx->live_count++;
			if (sx->live_bytes > s->max_live_bytes)
				s->max_live_bytes = sx->live_bytes;
			ts->allocations++;
			ts->bytes += size;
			tx->live_bytes += size;
			if (tx->live_bytes > ts->peak_bytes)
				ts->peak_bytes = tx->live_bytes;
			tx->last_alloc = addr;
			hb = log2_bucket(size);
			m->hist.size_count[hb]++;
			m->hist.size_bytes[hb] += size;
			live_bytes += size;
			live_count++;
			bk->allocations++;
			bk->bytes_allocated += size;
			bucket_heap(bk, live_bytes);
			if (live_bytes > m->sum.peak_bytes) {
				m->live_bytes = live_bytes;
				m->live_count = live_count;
				peak_check(m, t);
				epoch = m->epoch;
			}
		} else {
			struct mt_block *b;
			struct site_x *sx;
			struct thread_x *bx;
			uint64_t ns;
			unsigned lb;

			if (func == MST_FREE_REALLOC || func == MST_FREE_REALLOCARRAY)
				break;
			if (e->stack && e->stack != fs_stack) {
				/* a free stack seen before (free_stack_index's) */
				uint32_t x = mt_map_get(&m->free_stack_map, e->stack);
				if (x == NO_INDEX)
					break;
				fs = x;
				fs_stack = e->stack;
			}
			b = mt_live_find(&lv, addr);
			if (!b)
				break;        /* unknown: add_free counts it */
			sx = &m->sitex[b->site];
			if (!sx->life)
				break;
			if (e->stack && (!pair || ((uint64_t)b->site << 32 | fs) != pair_key)) {
				/* a pair seen before (pair_add's lookup) */
				uint64_t key = (uint64_t)b->site << 32 | fs;
				uint32_t x = mt_map_get(&m->pair_map, key);
				if (x == NO_INDEX)
					break;
				pi = x;
				pair_key = key;
				pair = &m->pairs[pi];
			}
			duration = t;
			m->sum.free_by_func[func]++;
			ts->frees++;
			bk->frees++;
			tx->pending_realloc = 0;
			tx->pending_func = func;
			size = mt_block_size(b);
			if (b->thread == ti && tx->last_alloc == addr) {
				m->sum.temporary++;
				m->sites[b->site].temporary++;
			}
			if (tx->last_alloc == addr)
				tx->last_alloc = 0;
			if (b->thread != ti) {
				ts->cross_frees++;
				ts->cross_free_bytes += size;
				if (m->threadx[b->thread].last_alloc == addr)
					m->threadx[b->thread].last_alloc = 0;
			}
			if (e->stack) {
				pair->count++;
				pair->bytes += size;
			}
			/* block_remove(), the live figures local */
			if (sx->epoch != epoch) {
				sx->at_peak = sx->live_bytes;
				sx->epoch = epoch;
			}
			sx->live_bytes -= size;
			sx->live_count--;
			ns = ticks_to_ns(m, t >= b->time ? t - b->time : 0);
			lb = log2_bucket(ns);
			if (lb >= MST_LIFE_BUCKETS)
				lb = MST_LIFE_BUCKETS - 1;
			m->hist.life_count[lb]++;
			m->hist.life_bytes[lb] += size;
			sx->life[lb]++;
			sx->life_n++;
			bx = &m->threadx[b->thread];
			bx->live_bytes -= size;
			if (bx->live_bytes > m->threads[b->thread].peak_bytes)
				m->threads[b->thread].peak_bytes = bx->live_bytes;
			if (b->size_func & MT_EXTRA)
				extra_forget(m, b, size);
			live_bytes -= size;
			live_count--;
			mt_live_remove(&lv, b);
			bucket_heap(bk, live_bytes);
		}
	}
	m->live.len = lv.len;
	m->last_thread_idx = tidx;
	m->last_thread = ti;
	m->last_site_stack = site_stack;
	m->last_site = si;
	m->last_free_stack = fs_stack;
	m->last_free_index = fs;
	m->last_pair_key = pair_key;
	m->last_pair = pi;
	m->live_bytes = live_bytes;
	m->live_count = live_count;
	m->sum.duration = duration;
	return k;
}

/* add_run compiled twice: the prefetches' code in its loop, even not
 * taken, made the loop without them 8% slower (churn 1 1000000). */
static __attribute__((noinline)) size_t add_run_near(struct mst_model *m,
						     const struct mst__event *ev,
						     size_t k, size_t n)
{
	return add_run(m, ev, k, n, 0);
}

static __attribute__((noinline)) size_t add_run_far(struct mst_model *m,
						    const struct mst__event *ev,
						    size_t k, size_t n)
{
	return add_run(m, ev, k, n, 1);
}

int mst_model_read(struct mst_model *m, struct mst_reader *r,
		   int (*other)(void *ctx, const struct mst_record *rec), void *ctx,
		   int *read_status)
{
	const char *env = getenv("MEMSCOPE_THREADS");
	struct mst__event buf[READ_BATCH];
	const struct mst__event *ev;
	unsigned skip = 0;
	const struct mst_record *rec;
	int st, rc;

	*read_status = MST_ERR_IO;
	if (!(env && !strcmp(env, "1")) && sysconf(_SC_NPROCESSORS_ONLN) >= 2)
		mst__reader_prefetch(r);      /* or read on this thread */
	for (;;) {
		size_t n = mst__reader_events_view(r, &ev, buf, READ_BATCH), k = 0;

		while (k < n) {
			/* After add_run took nothing, the next few events go
			 * to add_event directly: where it takes few (a trace
			 * of reallocs, of many sites) its start would cost
			 * more than it saves. */
			if (skip) {
				skip--;
			} else {
				size_t k0 = k;
				k = m->live.cap >= PREFETCH_MIN_SLOTS ?
					add_run_far(m, ev, k, n) : add_run_near(m, ev, k, n);
				if (k == n)
					break;
				if (k == k0)
					skip = RUN_SKIP;
			}
			/* events decoded on the other core: ask for their
			 * lines ahead (4% of the wall time on churn traces);
			 * live slots too, while the live set is too big for
			 * the cache */
			if (k + EVENTS_AHEAD < n)
				__builtin_prefetch(&ev[k + EVENTS_AHEAD]);
			if (k + READ_AHEAD < n && m->live.cap >= PREFETCH_MIN_SLOTS)
				mt_live_prefetch(&m->live, ev[k + READ_AHEAD].addr);
			rc = add_event(m, &ev[k++]);
			if (rc != MST_OK)
				return rc;
		}
		if (n)
			continue;
		/* a record the batch stops at: any type, or the end */
		st = mst_reader_next(r, &rec);
		if (st != MST_OK)
			break;
		rc = mst_model_add(m, r, rec);
		if (rc == MST_OK && other && rec->type != MST_REC_ALLOC &&
		    rec->type != MST_REC_FREE && rec->type != MST_REC_STACK)
			rc = other(ctx, rec);
		if (rc != MST_OK)
			return rc;
	}
	*read_status = st;
	if ((env = getenv("MEMSCOPE_LOG")) && !strcmp(env, "debug")) {
		struct timespec cpu;

		if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu))
			fprintf(stderr, "memscope: read with %.3f s of CPU on the analysing "
				"thread, %.3f s on the read-ahead thread\n",
				(double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9,
				(double)mst__reader_ahead_cpu_ns(r) / 1e9);
	}
	return MST_OK;
}
