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

/* core.c */
int thread_attach(struct tstate *t);
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
int spool_create(void);
void spool_unmap(void);
extern int trace_fd;

/* process.c */
void modules_scan(struct tstate *t);
void modules_reset(void);
int recorder_init_child(void);
void recorder_set_exit_status(int status);

#endif
