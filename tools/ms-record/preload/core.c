/*
 * core.c - the recorder's hot path: per-thread state, the thread's ring in
 * the spool, reserving and publishing events, and what an allocation or a
 * free turns into. No lock, no system call and no allocation through the
 * program's malloc on the common path.
 *
 * Publishing is signal-safe on one thread: a slot range is reserved with a
 * single (unlocked, so cheap) xadd on the thread's write position, so a
 * signal handler that allocates between two instructions of an outer hook
 * gets its own range; ring->head is stored only when the outermost
 * publisher finishes, so the writer never sees a half-written event.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "recorder.h"
#include "mstrace.h"

TLS struct tstate tls;
struct config cfg;
volatile int recording;
volatile int init_started;

/* Events from before start-up, from constructors that ran before ours:
 * mostly few (a C++ runtime's pool, locale data), but clang's LLVM
 * registers its thousands of command-line options so (4,446 calls: the
 * 350 past a fixed 4,096 were lost, and their blocks' frees showed as
 * unknown, their addresses allocated again as double). The first
 * EARLY_MAX go in a static array, the rest in a mapping reserved when it
 * fills, whose pages are touched only as events come. */
#define EARLY_MAX 4096
#define EARLY_MORE (1u << 22)             /* 4 M events more, 192 MiB reserved */
struct early_ev {
	volatile int ready;
	uint8_t type, func;
	uint64_t addr, size, old, align;
};
static struct early_ev early[EARLY_MAX];
static struct early_ev *early_more;
static unsigned early_n;

/* Slot I of the early events, or NULL when there is none. */
static struct early_ev *early_slot(unsigned i)
{
	struct early_ev *more;

	if (i < EARLY_MAX)
		return &early[i];
	if (i - EARLY_MAX >= EARLY_MORE)
		return NULL;
	more = __atomic_load_n(&early_more, __ATOMIC_ACQUIRE);
	if (!more) {
		struct early_ev *m = mmap(NULL, EARLY_MORE * sizeof(*m), PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		if (__atomic_compare_exchange_n(&early_more, &more, m, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			more = m;
		else
			munmap(m, EARLY_MORE * sizeof(*m));     /* another thread's won */
	}
	return &more[i - EARLY_MAX];
}

static void early_note(int type, int func, void *p, size_t size, void *old, size_t align)
{
	struct early_ev *e = early_slot(__atomic_fetch_add(&early_n, 1, __ATOMIC_RELAXED));

	if (!e)
		return;
	e->type = (uint8_t)type;
	e->func = (uint8_t)func;
	e->addr = (uintptr_t)p;
	e->size = size;
	e->old = (uintptr_t)old;
	e->align = align;
	__atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
}

/* Publishes the early events in T's ring, timed now, stackless. */
void early_replay(struct tstate *t)
{
	unsigned i, n = early_n < EARLY_MAX + EARLY_MORE ? early_n : EARLY_MAX + EARLY_MORE;

	for (i = 0; i < n; i++) {
		struct early_ev *e = i < EARLY_MAX ? &early[i] :
				     early_more ? &early_more[i - EARLY_MAX] : NULL;

		if (!e)
			break;
		uint32_t k = (e->type == EV_ALLOC &&
			      (e->align || e->func == MST_ALLOC_REALLOC ||
			       e->func == MST_ALLOC_REALLOCARRAY)) ? 2 : 1;
		struct spool_ev *ev;

		if (!e->ready)
			continue;
		t->depth++;
		ev = ev_reserve(t, k);
		if (ev) {
			ev->type = e->type;
			ev->func = e->func;
			ev->nslots = (uint16_t)k;
			ev->stack = 0;
			ev->time = now_after();
			ev->addr = e->addr;
			ev->size = e->size;
			if (k == 2) {
				uint64_t *x = (uint64_t *)(ev + 1);

				x[0] = e->old;
				x[1] = e->align;
			}
		}
		ev_commit(t);
	}
	if (early_n > i)
		log_error("%u allocation calls before start-up were not recorded",
			  early_n - i);
	early_n = 0;    /* a fork child must not replay them again */
	if (early_more) {
		munmap(early_more, EARLY_MORE * sizeof(*early_more));
		early_more = NULL;
	}
}
struct spool_header *spool;
int use_tsc;
int several_threads;
unsigned threads_attached;

/* Slots kept free for events published from signal handlers (depth > 1),
 * which must never wait for the writer. */
#define SMALL_RING_SLOTS 2048u

uint32_t ring_hwm;                  /* highest ring index ever claimed */
static pthread_key_t exit_key;
static int exit_key_ok;

uint64_t clock_slow(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void log_v(const char *level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void log_v(const char *level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n, m;

	n = snprintf(buf, sizeof(buf), "memscope%s: ", level);
	m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* write(2), not stdio: this may run inside malloc or a signal. */
	if (write(2, buf, n) < 0)
		return;
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!cfg.debug)
		return;
	va_start(ap, fmt);
	log_v(" debug", fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v("", fmt, ap);
	va_end(ap);
}

static void thread_exit_cb(void *arg)
{
	struct tstate *t = &tls;

	(void)arg;
	/* Ask to be called again while other keys' destructors still run,
	 * so frees they make are recorded before THREAD_EXIT. */
	if (++t->exits < PTHREAD_DESTRUCTOR_ITERATIONS - 1) {
		t->guard++;
		pthread_setspecific(exit_key, t);
		t->guard--;
		return;
	}
	thread_detach(t);
}

void core_init_keys(void);
void core_init_keys(void)
{
	if (!exit_key_ok && pthread_key_create(&exit_key, thread_exit_cb) == 0)
		exit_key_ok = 1;
}

static struct spool_ring *ring_claim(void)
{
	struct spool_ring *rings = (void *)((char *)spool + spool->rings_off);
	uint64_t full = (uint64_t)cfg.ring_slots * SPOOL_SLOT;
	uint32_t i;

	for (i = 0; i < SPOOL_MAX_RINGS; i++) {
		struct spool_ring *r = &rings[i];
		uint32_t expect = RING_FREE;

		if (r->state != RING_FREE)
			continue;
		if (!__atomic_compare_exchange_n(&r->state, &expect, 3u, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		if (i > __atomic_load_n(&ring_hwm, __ATOMIC_RELAXED))
			__atomic_store_n(&ring_hwm, i, __ATOMIC_RELAXED);
		if (!r->slots_off) {
			/* Full-size rings while the overhead bound allows,
			 * then small ones: threads beyond the bound still
			 * get recorded, just with tighter back-pressure. */
			uint64_t want = full;
			uint64_t used = __atomic_load_n(&spool->data_used, __ATOMIC_RELAXED);

			if (used + want > cfg.max_overhead)
				want = SMALL_RING_SLOTS * SPOOL_SLOT;
			used = __atomic_fetch_add(&spool->data_used, want, __ATOMIC_RELAXED);
			if (spool->data_off + used + want > spool->total_size) {
				__atomic_store_n(&r->state, RING_FREE, __ATOMIC_RELEASE);
				return NULL;
			}
			r->slots_off = spool->data_off + used;
			r->nslots = want / SPOOL_SLOT;
		}
		return r;
	}
	return NULL;
}

uint32_t thread_index_of(struct tstate *t)
{
	if (!t->thread && !t->dead && recording)
		thread_attach(t);
	return t->thread;
}

/* First event of a thread: take a ring, announce the thread. Returns 0
 * when the thread can record. */
int thread_attach(struct tstate *t)
{
	struct spool_ring *r;
	struct spool_ev *ev;

	if (t->dead || !spool)
		return -1;
	t->guard++;
	/* Before this thread's first event, so before its first free
	 * (now_alloc in recorder.h). */
	if (__atomic_add_fetch(&threads_attached, 1, __ATOMIC_RELAXED) >= 2)
		__atomic_store_n(&several_threads, 1, __ATOMIC_SEQ_CST);
	r = ring_claim();
	if (!r) {
		static int warned;

		if (!warned++)
			log_error("too many threads: %u rings in use, threads beyond are not recorded",
				  SPOOL_MAX_RINGS);
		t->dead = 1;
		t->guard--;
		return -1;
	}
	t->slots = (void *)((char *)spool + r->slots_off);
	t->mask = r->nslots - 1;
	t->wpos = r->head;
	t->tail_seen = r->tail;
	r->thread = (uint32_t)__atomic_add_fetch(&spool->next_thread, 1, __ATOMIC_RELAXED);
	r->tid = (uint32_t)syscall(SYS_gettid);
	r->inflight = 0;
	r->drop_events = r->drop_bytes = 0;
	t->thread = r->thread;
	t->ring = r;
	t->slow = cfg.sample_ppm < 1000000 ? SLOW_SAMPLE : 0;
	__atomic_store_n(&r->state, RING_LIVE, __ATOMIC_RELEASE);
	if (!t->prng)
		t->prng = (0x9E3779B97F4A7C15ull * (t->thread + 1)) ^ rdtsc_raw() ^ 1;
	if (exit_key_ok)
		pthread_setspecific(exit_key, t);
	if (cfg.unwind != MST_UNWIND_NONE)
		stack_thread_bounds(t);    /* fp walks, also in signal handlers */
	t->guard--;
	stack_warm(t);

	t->depth++;
	ev = ev_reserve(t, 1);
	if (ev) {
		ev->type = EV_THREAD_START;
		ev->nslots = 1;
		ev->stack = 0;
		ev->time = now_after();
		ev->addr = r->tid;
		ev->size = t->parent;
	}
	ev_commit(t);
	log_debug("thread %u (tid %u) recording", t->thread, r->tid);
	return 0;
}

/* The thread is going: THREAD_EXIT, then hand the ring to the writer,
 * which reclaims it once drained. */
void thread_detach(struct tstate *t)
{
	struct spool_ev *ev;

	if (!t->ring || t->dead)
		return;
	t->depth++;
	t->must_wait = 1;       /* in drop mode too: a thread ends once */
	ev = ev_reserve(t, 1);
	t->must_wait = 0;
	if (ev) {
		ev->type = EV_THREAD_EXIT;
		ev->nslots = 1;
		ev->stack = 0;
		ev->time = now_after();
		ev->addr = ev->size = 0;
	}
	ev_commit(t);
	t->dead = 1;
	__atomic_store_n(&t->ring->state, RING_DEAD, __ATOMIC_RELEASE);
	t->ring = NULL;
}

/* times producers found their ring full, and slept (MEMSCOPE_LOG=debug) */
unsigned long stat_full, stat_sleeps;

int ring_wait(struct tstate *t, uint64_t need_end, uint32_t margin)
{
	struct spool_ring *r = t->ring;
	uint64_t cap = (uint64_t)t->mask + 1;
	int spins = 0;

	__atomic_add_fetch(&stat_full, 1, __ATOMIC_RELAXED);
	for (;;) {
		t->tail_seen = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		if (need_end + margin - t->tail_seen <= cap)
			return 0;
		if (!recording)
			return -1;
		if (spins++ < 16) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 50000 };

			__atomic_add_fetch(&stat_sleeps, 1, __ATOMIC_RELAXED);
			nanosleep(&ts, NULL);
		}
	}
}

/*
 * Reserves NSLOTS contiguous slots; NULL when the event must be dropped
 * (drop mode, or a full ring inside a signal handler). The caller has
 * raised t->depth and calls ev_commit() in every case.
 */
struct spool_ev *ev_reserve(struct tstate *t, uint32_t nslots)
{
	uint64_t cap = (uint64_t)t->mask + 1;
	uint32_t margin = t->depth > 1 ? 0 : NESTED_MARGIN;
	uint64_t pos;
	struct spool_ev *ev;

	if (unlikely(!t->ring))
		return NULL;
	for (;;) {
		pos = t->wpos;
		if (unlikely(pos + nslots + margin - t->tail_seen > cap)) {
			t->tail_seen = __atomic_load_n(&t->ring->tail, __ATOMIC_ACQUIRE);
			if (pos + nslots + margin - t->tail_seen > cap) {
				if ((cfg.drop && !t->must_wait) || t->depth > 1 || !recording)
					return NULL;
				if (ring_wait(t, pos + nslots, margin))
					return NULL;
			}
		}
		pos = xadd_local(&t->wpos, nslots);
		if (unlikely(pos + nslots - t->tail_seen > cap)) {
			/* A signal handler took the space in between: our
			 * slots are ours now, wait until they are free. */
			ring_wait(t, pos + nslots, 0);
		}
		ev = &t->slots[pos & t->mask];
		if (likely((pos & t->mask) + nslots <= cap))
			return ev;
		/* Would straddle the end: the range becomes padding. */
		ev->type = EV_PAD;
		ev->nslots = (uint16_t)nslots;
	}
}

static inline __attribute__((always_inline)) void commit(struct tstate *t)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (--t->depth > 0 || unlikely(!t->ring))
		return;
	publish_head(t);
}

void ev_commit(struct tstate *t)
{
	commit(t);
}

static void flush_drops(struct tstate *t)
{
	struct spool_ev *ev;

	if (!t->ring->drop_events) {
		t->slow &= ~SLOW_DROPS;
		return;
	}
	ev = ev_reserve(t, 1);
	if (!ev)
		return;
	ev->type = EV_DROPPED;
	ev->nslots = 1;
	ev->stack = 0;
	ev->time = now_after();
	ev->addr = t->ring->drop_events;
	ev->size = t->ring->drop_bytes;
	t->ring->drop_events = t->ring->drop_bytes = 0;
	t->slow &= ~SLOW_DROPS;
}

void note_drop(struct tstate *t, uint64_t size)
{
	if (t->ring) {
		t->ring->drop_events++;
		t->ring->drop_bytes += size;
		t->slow |= SLOW_DROPS;
	}
}

/* Generic event with a payload of LEN bytes after the first slot. */
void ev_blob(struct tstate *t, int type, uint64_t addr, uint64_t size2,
	     const void *payload, size_t len)
{
	uint32_t n = 1 + (uint32_t)((len + SPOOL_SLOT - 1) / SPOOL_SLOT);
	struct spool_ev *ev;

	if (!t->thread && thread_attach(t))
		return;
	if (n > (t->mask + 1) / 4)
		return;
	t->depth++;
	ev = ev_reserve(t, n);
	if (ev) {
		ev->func = 0;
		ev->nslots = (uint16_t)n;
		ev->stack = (uint32_t)size2;
		ev->time = now_after();
		ev->addr = addr;
		ev->size = len;
		if (len)
			memcpy(ev + 1, payload, len);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		ev->type = (uint8_t)type;
	}
	ev_commit(t);
}

static inline int sample_keep(struct tstate *t)
{
	uint64_t x = t->prng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->prng = x;
	return ((x * 0x2545F4914F6CDD1Dull) >> 11) < cfg.sample_threshold;
}

/*
 * The hot path (an attached thread, nothing to report first, no sampling,
 * not nested in a signal handler's publishing) is inlined in the two
 * functions below; everything else goes through the full one.
 */
__attribute__((noinline)) void alloc_full(struct tstate *t, int func, void *p,
					 size_t size, size_t align, void *old, void **frame)
{
	uint32_t stack, n;
	uint64_t ts;
	struct spool_ev *ev;

	if (unlikely(!recording)) {
		early_note(EV_ALLOC, func, p, size, old, align);
		return;
	}
	if (unlikely(!t->thread) && thread_attach(t))
		return;
	if (unlikely(t->slow & SLOW_SAMPLE) && !sample_keep(t))
		return;
	stack = cfg.unwind ? stack_capture(t, frame) : 0;
	ts = now_alloc();
	n = (align || func == MST_ALLOC_REALLOC ||
	     func == MST_ALLOC_REALLOCARRAY) ? 2 : 1;
	t->depth++;
	if (unlikely(t->slow & SLOW_DROPS) && t->ring)
		flush_drops(t);
	ev = ev_reserve(t, n);
	if (likely(ev != NULL)) {
		ev_fill(ev, EV_ALLOC, func, n, stack, ts, p, size);
		if (n == 2) {
			uint64_t *x = (uint64_t *)(ev + 1);

			x[0] = (uintptr_t)old;
			x[1] = align;
		}
	} else {
		note_drop(t, size);
	}
	commit(t);
}

void record_alloc(struct tstate *t, int func, void *p, size_t size,
		  size_t align, void *old, void **frame)
{
	if (align || old || func == MST_ALLOC_REALLOC || func == MST_ALLOC_REALLOCARRAY)
		alloc_full(t, func, p, size, align, old, frame);
	else
		alloc_fast(t, func, p, size, frame);
}

__attribute__((noinline)) void free_full(struct tstate *t, int func, void *p,
					uint64_t ts, void *caller)
{
	uint32_t stack;
	struct spool_ev *ev;

	if (unlikely(!recording)) {
		early_note(EV_FREE, func, p, 0, NULL, 0);
		return;
	}
	if (unlikely(!t->thread) && thread_attach(t))
		return;
	stack = cfg.unwind ? stack_one(t, (uintptr_t)caller) : 0;
	if (!ts)
		ts = now_before();
	t->depth++;
	if (unlikely(t->slow & SLOW_DROPS) && t->ring)
		flush_drops(t);
	ev = ev_reserve(t, 1);
	if (likely(ev != NULL)) {
		ev_fill(ev, EV_FREE, func, 1, stack, ts, p, 0);
	} else {
		note_drop(t, 0);
	}
	commit(t);
}

/* TS 0: the time is read here (after the caller's frame; before the real
 * free in any case). */
void record_free(struct tstate *t, int func, void *p, uint64_t ts, void *caller)
{
	if (ts)
		free_full(t, func, p, ts, caller);
	else
		free_fast(t, func, p, caller);
}
