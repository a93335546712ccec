/*
 * mstrace_model.h - the shared analysis model (part of mstrace.h; tools
 * include mstrace.h only).
 *
 * One streaming pass over a trace builds every figure that ms-stats, ms-svg
 * and ms-html report, so a number is the same in every output. Memory grows
 * with live allocations, distinct stacks and threads, never with the number
 * of events: the timeline is a fixed number of buckets whose width doubles
 * as the trace grows (min/max kept per bucket, so no peak is lost).
 *
 * Usage:
 *     mst_model_new(&m, &opts);
 *     while ((st = mst_reader_next(r, &rec)) == MST_OK)
 *         mst_model_add(m, r, rec);
 *     mst_model_finish(m, r, st);
 *     ... read the results through the accessors below ...
 *     mst_model_free(m);
 *
 * All times in results are ticks relative to the trace start (divide by
 * header.ticks_per_second). Sampled traces: every count and byte figure is
 * already scaled to an estimate (summary.estimated says so).
 */
#ifndef MSTRACE_MODEL_H
#define MSTRACE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mst_reader;
struct mst_record;
struct mst_model;

struct mst_model_options {
	uint32_t timeline_buckets;    /* 0 = 1024 */
	uint32_t thread_series;       /* per-thread timelines kept for the
				       * first N threads, the rest summed as
				       * "other"; 0 = none */
};

int mst_model_new(struct mst_model **out, const struct mst_model_options *opts);
/* Feed every record the reader delivers, HEADER included (STACK records
 * may be left out: the model reads stacks from R at the end). Adding a
 * record never calls the reader. */
int mst_model_add(struct mst_model *m, const struct mst_reader *r,
		  const struct mst_record *rec);
/* After the last record: READ_STATUS is what mst_reader_next returned last
 * (MST_END, MST_ERR_TRUNCATED, ...), recorded in the integrity section.
 * R resolves the sites' and frees' stacks to modules here. */
int mst_model_finish(struct mst_model *m, const struct mst_reader *r, int read_status);
/*
 * The loop above in one call, decoding on a second thread while records
 * are added (when the machine has more than one CPU and MEMSCOPE_THREADS
 * is not 1). OTHER, when not NULL, is called in the caller's thread, in
 * trace order, with the reader paused, for every record but ALLOC, FREE
 * and STACK (e.g. to feed SYMBOLS to a symbolizer); its nonzero return
 * stops the reading and is returned. *READ_STATUS gets the reader's last
 * status, for mst_model_finish. Returns MST_OK, or the model's or OTHER's
 * error.
 */
int mst_model_read(struct mst_model *m, struct mst_reader *r,
		   int (*other)(void *ctx, const struct mst_record *rec), void *ctx,
		   int *read_status);
const char *mst_model_error(const struct mst_model *m);
void mst_model_free(struct mst_model *m);

/* ---- results (borrowed until mst_model_free) ---- */

struct mst_func_totals {
	uint64_t calls;
	uint64_t bytes;               /* requested bytes (allocations only) */
};

struct mst_summary {
	uint64_t ticks_per_second;
	uint64_t duration;            /* last record's time */
	int estimated;                /* sampled trace: figures are estimates */
	double sample_rate;           /* 1.0 when not sampled */

	uint64_t allocations;         /* ALLOC records (realloc counts once) */
	uint64_t frees;               /* calls that gave memory back (free,
				       * delete, realloc(p,0)), not the free
				       * half of a moved realloc */
	uint64_t reallocs;            /* realloc/reallocarray calls */
	uint64_t bytes_allocated;     /* sum of requested sizes */
	struct mst_func_totals alloc_by_func[16]; /* index: enum mst_alloc_func */
	uint64_t free_by_func[8];     /* index: enum mst_free_func */

	uint64_t peak_bytes;          /* largest live requested bytes */
	uint64_t peak_time;
	uint64_t peak_allocations;    /* live blocks at that moment */

	uint64_t end_bytes;           /* live at the end = leaked */
	uint64_t end_allocations;

	uint64_t temporary;           /* see mst_site.temporary */
	uint64_t max_rss;             /* largest RSS counter, 0 if none */
};

/* Valid after mst_model_finish. */
const struct mst_summary *mst_model_summary(const struct mst_model *m);

/* Powers of two: bucket i holds sizes in [2^(i-1), 2^i), bucket 0 size 0. */
#define MST_SIZE_BUCKETS 65
/* Lifetimes in ns, log2 buckets the same way: bucket i in [2^(i-1), 2^i) ns. */
#define MST_LIFE_BUCKETS 64

struct mst_histograms {
	uint64_t size_count[MST_SIZE_BUCKETS];
	uint64_t size_bytes[MST_SIZE_BUCKETS];
	uint64_t life_count[MST_LIFE_BUCKETS]; /* freed allocations only */
	uint64_t life_bytes[MST_LIFE_BUCKETS];
};

const struct mst_histograms *mst_model_histograms(const struct mst_model *m);

/*
 * A site is one distinct stack (its leaf node id). "Temporary": freed by the
 * thread that allocated it before that thread allocated anything else
 * (heaptrack's definition).
 */
struct mst_site {
	uint64_t stack;               /* leaf node id; 0 = no stack recorded */
	uint64_t allocations;
	uint64_t bytes;
	uint64_t peak_bytes;          /* live bytes of this site at the global peak */
	uint64_t max_live_bytes;      /* this site's own largest live bytes */
	uint64_t leaked_bytes;        /* live at the end */
	uint64_t leaked_allocations;
	uint64_t temporary;
	uint64_t median_lifetime_ns;  /* from a log2 histogram (bucket midpoint);
				       * 0 when nothing was freed */
	uint64_t module;              /* module of the innermost frame, 0 unknown */
};

/* Sites in no particular order. While mst_model_read runs (from OTHER),
 * the sites so far, each new one after the old, stack set, figures not
 * final: ms-stats finds there the modules whose symbols to load early. */
size_t mst_model_sites(const struct mst_model *m, const struct mst_site **sites);

struct mst_thread_stats {
	uint64_t thread;              /* index from the trace */
	uint64_t tid;
	const char *name;             /* may be NULL */
	uint64_t start_time, exit_time; /* exit_time 0: did not exit */
	uint64_t allocations, bytes, frees;
	uint64_t live_bytes;          /* at the end */
	uint64_t peak_bytes;          /* this thread's allocations' own peak */
	uint64_t cross_frees;         /* frees of memory another thread allocated */
	uint64_t cross_free_bytes;
};
size_t mst_model_threads(const struct mst_model *m,
			 const struct mst_thread_stats **threads);

struct mst_module_stats {
	uint64_t module;
	const char *path;
	uint64_t allocations, bytes;  /* allocated by code of this module */
	uint64_t frees;               /* frees called from this module */
	uint64_t leaked_bytes;
};
size_t mst_model_modules(const struct mst_model *m,
			 const struct mst_module_stats **modules);

/* Memory crossing a boundary: allocated by one module, freed by another. */
struct mst_module_cross {
	uint64_t alloc_module, free_module;
	uint64_t count, bytes;
};
size_t mst_model_module_cross(const struct mst_model *m,
			      const struct mst_module_cross **pairs);

/*
 * Timeline: buckets of equal width (ticks) from time 0. Every bucket keeps
 * the live heap's min, max and value at its end, so reductions never lose
 * the peak; counters are the last sample that fell in the bucket (0: none).
 */
struct mst_bucket {
	uint64_t start;               /* ticks */
	uint64_t heap_min, heap_max, heap_last;
	uint64_t allocations, frees, bytes_allocated; /* ALLOC and FREE records:
				       * a moved realloc counts in both */
	uint64_t rss, arena, in_use;  /* counters; 0 when none recorded */
	int has_data;                 /* some record fell in this bucket */
};
struct mst_timeline {
	uint64_t width;               /* ticks per bucket */
	size_t count;                 /* buckets up to the last record */
	const struct mst_bucket *buckets;
	/* Per-thread live bytes at each bucket's end: series[t][b], for the
	 * first nthreads threads (thread index thread_ids[t]), then one
	 * "other" row when there were more threads. */
	size_t nthreads;
	const uint64_t *thread_ids;
	const uint64_t *const *series;
	const uint64_t *other;        /* NULL when not needed */
};
void mst_model_timeline(const struct mst_model *m, struct mst_timeline *tl);

struct mst_fragmentation {
	uint64_t live_bytes;          /* at the end */
	uint64_t span_bytes;          /* highest live end - lowest live address */
	uint64_t peak_rss;            /* largest RSS sample */
	uint64_t rss_at_peak;         /* RSS sample nearest the heap peak */
	uint64_t arena_at_peak;       /* allocator arena nearest the peak */
	uint64_t last_rss, last_arena, last_in_use;
	uint64_t samples;             /* COUNTERS records seen */
};
void mst_model_fragmentation(const struct mst_model *m, struct mst_fragmentation *f);

/* Labels from memscope.h, grouped by (name, type). */
struct mst_label_stats {
	const char *name, *type;
	uint64_t allocations, bytes;
	uint64_t live_bytes;          /* labelled blocks still live at the end */
};
size_t mst_model_labels(const struct mst_model *m, const struct mst_label_stats **labels);

struct mst_task_stats {
	uint64_t task;
	const char *name;
	uint64_t thread;
	uint64_t begin_time, end_time;
	uint64_t allocations, bytes, live_bytes;
};
size_t mst_model_tasks(const struct mst_model *m, const struct mst_task_stats **tasks);

struct mst_integrity {
	uint64_t dropped_events, dropped_bytes;
	uint64_t unknown_frees;       /* frees of addresses never allocated */
	uint64_t double_allocs;       /* allocations of an address already live */
	int truncated;                /* no END record / stream cut short */
	int complete;                 /* an END record was read */
	int end_reason;               /* enum mst_end_reason, 0 if none */
	int64_t end_status;
	int read_status;              /* final mst_reader_next status */
	char read_error[256];         /* its detail, "" when none */
	int forked;                   /* header flag: inherited heap */
	int own_malloc;               /* header flag: malloc and free went to an
				       * allocator ahead of the recorder */
	int unknown_frees_expected;   /* frees of unrecorded blocks: sampled out,
				       * inherited by a fork, or dropped */
};
void mst_model_integrity(const struct mst_model *m, struct mst_integrity *in);

/* The live allocations at the end (leaks), for exporters. Calls FN once per
 * block in no particular order. */
struct mst_live_block {
	uint64_t addr, size, stack, time, thread;
	uint8_t func;
};
void mst_model_each_live(const struct mst_model *m,
			 void (*fn)(void *ctx, const struct mst_live_block *b),
			 void *ctx);

#ifdef __cplusplus
}
#endif
#endif
