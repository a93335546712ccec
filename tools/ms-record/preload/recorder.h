/*
 * recorder.h - what the parts of the preload library share: the real
 * allocator functions, per-thread state, the global configuration and the
 * event-publishing primitives. Nothing here is visible outside the library.
 */
#ifndef MSRECORD_RECORDER_H
#define MSRECORD_RECORDER_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "../spool.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define EXPORT __attribute__((visibility("default")))

#define MAX_DEPTH 256

/* The next definitions in lookup order (RTLD_NEXT), never __libc_*. */
struct real_fns {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	void (*free)(void *);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	void *(*new_)(size_t);
	void *(*new_array)(size_t);
	void *(*new_aligned)(size_t, size_t);
	void *(*new_array_aligned)(size_t, size_t);
};
extern struct real_fns real;
void real_resolve(void);

/* Per-thread state; only its own thread touches it, except that the writer
 * reads the ring it points to. */
struct tstate {
	int guard;                  /* >0: calls go straight to the real ones */
	int depth;                  /* nesting of publishing (signal handlers) */
	int dead;                   /* thread exit handled: record no more */
	int must_wait;              /* drop mode, but this record waits for room */
	int exits;                  /* key destructor rounds seen */
	int slow;                   /* SLOW_*: events take the full path */
	struct spool_ring *ring;
	struct spool_ev *slots;
	uint64_t wpos;              /* next slot to reserve (>= ring->head) */
	uint64_t tail_seen;         /* last tail read: avoids reading it often */
	uint32_t mask;
	uint32_t thread;            /* thread index, 0 = not attached */
	uint64_t prng;
	uint32_t parent;            /* creating thread's index */
	uintptr_t stack_lo, stack_hi;  /* the thread's stack, for walks */
	int capturing;              /* inside stack_capture (signal nesting) */
	int unw_warm;               /* libunwind used once on this thread */
	struct tcache *cache;       /* mmap'd: TLS stays small for dlopen */
};

/* Unwinding rule of one return address (unwind.c): 16 bytes. */
struct cfi_rule {
	uint64_t ip;                /* the key; 0: empty */
	int32_t cfa_off;            /* CFA = (rbp or rsp) + cfa_off */
	int16_t rbp_off;            /* CFI_RBP_SAVED: rbp saved at CFA + rbp_off */
	uint8_t cfa_rbp;            /* CFA from rbp, not rsp */
	uint8_t flags;              /* CFI_* below; return address at CFA - 8 */
};
#define CFI_RBP_SAVED 1             /* else rbp is kept... */
#define CFI_RBP_LOST 2              /* ...or not known in the caller */
#define CFI_END 4                   /* outermost frame: no return address */
#define CFI_BAD 8                   /* not modelled: libunwind walks the stack */
#define CFI_CACHE 2048
#define WALK_FRAMES (MAX_DEPTH + 16)  /* frames a remembered walk may read */

/* tstate.slow: why an attached thread's events take the full path */
#define SLOW_SAMPLE 1               /* sampling: each event draws its fate */
#define SLOW_DROPS 2                /* drops to report (DROPPED) first */

/* Per-thread stack cache, kept out of TLS. */
#define DCACHE 1024
struct tcache {
	/* last stack interned, outermost frame first, for prefix reuse */
	uint32_t n;
	uint64_t ip[MAX_DEPTH];
	uint32_t node[MAX_DEPTH];
	/* direct-mapped (parent, ip) -> node */
	uint64_t dc_ip[DCACHE];
	uint32_t dc_parent[DCACHE];
	uint32_t dc_node[DCACHE];
	/* frame buffers of stack_capture, off the (maybe small) stack */
	void *scratch_buf[MAX_DEPTH + 16];
	uint64_t scratch_ips[MAX_DEPTH];
	uint64_t check_ips[MAX_DEPTH];
	/* direct-mapped return address -> unwinding rule, valid while
	 * cfi_gen is unwind.c's generation (a dlclose moves it on) */
	uint32_t cfi_gen;
	struct cfi_rule cfi[CFI_CACHE];
	/* the last CFI walk (unwind.c): where it started, every stack word
	 * it read, and what it gave; the same start and the same words give
	 * the same walk, checked at a load and a compare a word */
	uint32_t w_valid, w_gen, w_nreads;
	uint32_t w_hit;                     /* this walk was the last one again */
	int w_n;
	uintptr_t w_ip, w_sp, w_bp;
	struct { uintptr_t at, val; } w_read[2 * WALK_FRAMES];
	uint64_t w_ips[MAX_DEPTH];
};
extern TLS struct tstate tls;

struct config {
	char trace_path[SPOOL_PATH_MAX];    /* absolute, %p resolved */
	char spool_dir[SPOOL_PATH_MAX];
	uint64_t sample_threshold;          /* keep when prng < threshold */
	uint32_t sample_ppm;
	int unwind;                         /* enum mst_unwinder */
	int depth;
	uint64_t max_overhead;              /* bytes */
	int drop;
	int rss_interval_ms;
	int follow;
	int debug;
	int exec_generation;
	int forked;
	uint8_t session[16];
	uint32_t ring_slots;                /* slots of a full-size ring */
	int zstd_level;
};
extern struct config cfg;

/* 0 before init and after finishing: hooks only forward. */
extern volatile int recording;
/* Set when start-up begins: before it, allocations are kept as early
 * events (libraries' constructors that run before ours) and replayed. */
extern volatile int init_started;
/* own_malloc()'s probe: while nonzero, the malloc and free hooks add one
 * each time they are entered */
extern volatile int malloc_probe;
void early_replay(struct tstate *t);
extern struct spool_header *spool;
extern int use_tsc;

static inline uint64_t rdtsc_raw(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

uint64_t clock_slow(void);

/*
 * Time of an event that happens before the next instruction (a FREE).
 * Plain rdtsc is enough: it may run early (a smaller time, harmless) but
 * it retires before the real free's stores, which only become visible to
 * other threads after they retire.
 */
static inline uint64_t now_before(void)
{
	if (likely(use_tsc))
		return rdtsc_raw();
	return clock_slow();
}

/*
 * Time of an event that happened (an ALLOC): rdtscp waits until every
 * earlier load is globally visible, so the time is after the allocator
 * read the free list that handed out a block another thread freed (plain
 * rdtsc could run ahead of that load). Cheaper here than lfence; rdtsc.
 */
static inline uint64_t now_after(void)
{
	if (likely(use_tsc)) {
		uint32_t lo, hi, aux;

		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux) :: "memory");
		return ((uint64_t)hi << 32) | lo;
	}
	return clock_slow();
}

/* Set once a second thread of this process starts recording (core.c,
 * thread_attach; cleared in a forked child, which has one thread). */
extern int several_threads;
extern unsigned threads_attached;

/*
 * Time of an ALLOC, read after the real call returned. Only a block that
 * another thread freed needs rdtscp's wait (now_after); until a second
 * thread records, none can have, and plain rdtsc is enough (same-thread
 * order is the ring's). The flag is read after the allocator's loads (x86
 * keeps loads in order): a thread sets it before its first free, so an
 * allocator that handed out a block that thread freed has seen it set.
 */
static inline uint64_t now_alloc(void)
{
	if (likely(use_tsc) &&
	    likely(!__atomic_load_n(&several_threads, __ATOMIC_ACQUIRE)))
		return rdtsc_raw();
	return now_after();
}

/* core.c */
int thread_attach(struct tstate *t);
int ring_wait(struct tstate *t, uint64_t need_end, uint32_t margin);
void note_drop(struct tstate *t, uint64_t size);
void alloc_full(struct tstate *t, int func, void *p, size_t size, size_t align,
		void *old, void **frame);
void free_full(struct tstate *t, int func, void *p, uint64_t time, void *caller);
void thread_detach(struct tstate *t);
struct spool_ev *ev_reserve(struct tstate *t, uint32_t nslots);
void ev_commit(struct tstate *t);
void ev_blob(struct tstate *t, int type, uint64_t addr, uint64_t size2,
	     const void *payload, size_t len);
void record_alloc(struct tstate *t, int func, void *p, size_t size,
		  size_t align, void *old, void **frame);
void record_free(struct tstate *t, int func, void *p, uint64_t time,
		 void *caller);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint32_t thread_index_of(struct tstate *t);

/* stack.c */
int stack_init(void);
uint32_t stack_capture(struct tstate *t, void **frame);
uint32_t stack_one(struct tstate *t, uintptr_t ip);
void stack_thread_bounds(struct tstate *t);
void stack_warm(struct tstate *t);
void stack_reset_thread(struct tstate *t);

/* unwind.c */
int cfi_backtrace(struct tstate *t, struct tcache *c, void **frame,
		  uint64_t *ips, int max, uintptr_t self_lo, uintptr_t self_hi);
void cfi_modules_changed(void);

/* writer.c */
int writer_start(void);
int writer_open_trace(int append);
void writer_finish(int reason, long status);
void writer_stop_thread(void);
void writer_kick_modules(void);
void writer_after_fork_child(void);
uint64_t ticks_to_ns(const struct spool_header *h, uint64_t ticks);
int spool_fault(const void *addr);
int spool_create(void);
void spool_unmap(void);
extern int trace_fd;

/* process.c */
void modules_scan(struct tstate *t);
void modules_reset(void);
int recorder_init_child(void);
void recorder_set_exit_status(int status);

/* ---- the hot path, inlined into the hooks ---- */

/* Slots kept free for events published from signal handlers (depth > 1),
 * which must never wait for the writer. */
#define NESTED_MARGIN 64u

static inline uint64_t xadd_local(uint64_t *p, uint64_t n)
{
	/* No lock prefix: only this thread (and its signal handlers, which
	 * run between instructions) touch *p. */
	__asm__ volatile("xaddq %0, %1" : "+r"(n), "+m"(*p) :: "memory");
	return n;
}


/* The common fields of an ALLOC or FREE event, as the writer reads them. */
static inline __attribute__((always_inline)) void
ev_fill(struct spool_ev *ev, int type, int func, unsigned nslots, uint32_t stack,
	uint64_t ts, const void *p, uint64_t size)
{
	ev->type = (uint8_t)type;
	ev->func = (uint8_t)func;
	ev->nslots = (uint16_t)nslots;
	ev->stack = stack;
	ev->time = ts;
	ev->addr = (uintptr_t)p;
	ev->size = size;
}
/* One slot, outermost (depth 1), attached: no straddling the end, and the
 * margin for signal handlers kept. */
static inline __attribute__((always_inline)) struct spool_ev *reserve1(struct tstate *t)
{
	uint64_t cap = (uint64_t)t->mask + 1;
	uint64_t pos = t->wpos;

	if (likely(pos + 1 + NESTED_MARGIN - t->tail_seen <= cap)) {
		pos = xadd_local(&t->wpos, 1);
		/* a signal handler may have taken slots in between */
		if (likely(pos + 1 - t->tail_seen <= cap))
			return &t->slots[pos & t->mask];
		ring_wait(t, pos + 1, 0);
		return &t->slots[pos & t->mask];
	}
	return ev_reserve(t, 1);
}

/* Publishes the thread's events: ring->head = wpos. */
static inline __attribute__((always_inline)) void publish_head(struct tstate *t)
{
	uint64_t h;

	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	h = *(volatile uint64_t *)&t->wpos;
	__atomic_store_n(&t->ring->head, h, __ATOMIC_RELEASE);
	/* A signal handler may have published a later head between the
	 * load and the store; put it back (the writer ignores a head that
	 * goes backwards). */
	if (unlikely(*(volatile uint64_t *)&t->wpos != h))
		__atomic_store_n(&t->ring->head, t->wpos, __ATOMIC_RELEASE);
}

/* ev_commit() of the hot path: outermost, attached. */
static inline __attribute__((always_inline)) void commit1(struct tstate *t)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->depth = 0;
	publish_head(t);
}

/* The common case (an attached thread, nothing to report first, no
 * sampling, not nested in a signal handler's publishing) of an ALLOC
 * without alignment or old address; the rest goes to alloc_full().
 * The time is read after the stack: still after the real call returned
 * (what the order across threads needs), and rdtscp (once several threads
 * record, now_alloc), which waits for the allocator's loads to complete,
 * then finds them done while the unwinding ran instead of stalling first. */
static inline __attribute__((always_inline)) void
alloc_fast(struct tstate *t, int func, void *p, size_t size, void **frame)
{
	struct spool_ev *ev;
	uint32_t stack;
	uint64_t ts;

	if (unlikely(!recording) || unlikely(!t->ring) || unlikely(t->slow) ||
	    unlikely(t->depth)) {
		alloc_full(t, func, p, size, 0, NULL, frame);
		return;
	}
	stack = cfg.unwind ? stack_capture(t, frame) : 0;
	ts = now_alloc();
	t->depth = 1;
	ev = reserve1(t);
	if (likely(ev != NULL)) {
		ev_fill(ev, EV_ALLOC, func, 1, stack, ts, p, size);
	} else {
		note_drop(t, size);
	}
	commit1(t);
}

/* The common case of a FREE (frees are not sampled); the time is read
 * after the caller's frame, before the real free. */
static inline __attribute__((always_inline)) void
free_fast(struct tstate *t, int func, void *p, void *caller)
{
	struct spool_ev *ev;
	uint32_t stack;
	uint64_t ts;

	if (unlikely(!recording) || unlikely(!t->ring) ||
	    unlikely(t->slow & SLOW_DROPS) || unlikely(t->depth)) {
		free_full(t, func, p, 0, caller);
		return;
	}
	stack = cfg.unwind ? stack_one(t, (uintptr_t)caller) : 0;
	ts = now_before();
	t->depth = 1;
	ev = reserve1(t);
	if (likely(ev != NULL)) {
		ev_fill(ev, EV_FREE, func, 1, stack, ts, p, 0);
	} else {
		note_drop(t, 0);
	}
	commit1(t);
}

#endif
