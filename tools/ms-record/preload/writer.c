/*
 * writer.c - the recorder's writer: creates the spool, drains the threads'
 * rings, merges their events by time, encodes them with libtrace and
 * appends chunks to the trace; checkpoints progress in the spool; finishes
 * the trace (END) and, from the launcher, salvages the spool of a process
 * that died without finishing (spool.h says the contract).
 *
 * Ordering (FORMAT.md §8): a round takes T0 (lfence; rdtsc) before reading
 * any ring head and only emits events earlier than the cutoff
 * min(T0, in-flight realloc markers). An ALLOC that reuses an address freed
 * on another thread was timed after that free was published, so when the
 * ALLOC is below the cutoff its FREE was visible when the heads were read,
 * and the merge puts it first. Later events wait for the next round.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "recorder.h"
#include "mstrace.h"

int trace_fd = -1;
static dev_t trace_dev;
static ino_t trace_ino;
static uint64_t trace_base;        /* file length when this writer opened */
static struct mst_writer *mw;
static uint64_t base_events;       /* events written before mw (append) */
static uint64_t dropped_total;
static uint64_t emitted_stacks;
static uint64_t rd[SPOOL_MAX_RINGS];
static int spool_fd = -1;
static char spool_path[2 * SPOOL_PATH_MAX + 16];

static pthread_t writer_tid;
static volatile int writer_running, writer_stop;
static volatile int finishing;
static volatile int write_failed;  /* the trace took no more: recording stopped */
static unsigned long writer_sleeps;
static uint64_t writer_cpu_ns;     /* the writer thread's, when it ended */
static uint64_t last_flush_ns, last_counters_ns;
static int statm_fd = -1;
static struct mallinfo2 (*mallinfo2_fn)(void);

/* The header's strings, kept for the whole run. */
extern char hdr_program[], hdr_allocator[], hdr_hostname[];
extern int hdr_own_malloc;
extern char *hdr_argbuf;
extern size_t hdr_arglen;

uint64_t ticks_to_ns(const struct spool_header *h, uint64_t ticks)
{
	if (ticks <= h->start_ticks)
		return 0;
	return (uint64_t)(((unsigned __int128)(ticks - h->start_ticks) * h->mult) >> 32);
}

/* ---- the spool ---- */

/*
 * Trace times are in ticks of 256 ns (HEADER ticks_per_second 3906250):
 * the low bits of a nanosecond clock are noise to zstd and nothing a memory
 * profile needs, and saying so in the header tells readers the real
 * resolution (a lifetime under 256 ns reads 0 ticks, not "0 ns"), while
 * every time delta is a byte shorter. Order is kept: the shift is monotonic
 * and the merge orders by the raw clock.
 */
#define TIME_SHIFT 8
#define STACK_CAP (1u << 21)
#define HASH_SLOTS (1u << 22)

static uint64_t align_up(uint64_t v)
{
	return (v + 4095) & ~(uint64_t)4095;
}

static void spool_name(char *out, size_t len)
{
	const char *base = strrchr(cfg.trace_path, '/');

	base = base ? base + 1 : cfg.trace_path;
	snprintf(out, len, "%s/%s.spool", cfg.spool_dir, base);
}

void stack_attach_spool(void);

static uint8_t *fault_map;         /* spool_fault(): a bit a spool page, replaced */
static size_t fault_page;          /* the system's page size */
static volatile int fault_lock;

int spool_create(void)
{
	uint64_t rings_off = SPOOL_HEADER_SIZE;
	uint64_t stacks_off = align_up(rings_off + SPOOL_MAX_RINGS * sizeof(struct spool_ring));
	uint64_t hash_off = align_up(stacks_off + (uint64_t)STACK_CAP * sizeof(struct spool_stack));
	uint64_t data_off = align_up(hash_off + (uint64_t)HASH_SLOTS * 4);
	uint64_t total = data_off + cfg.max_overhead + SPOOL_MAX_RINGS * 2048ull * SPOOL_SLOT;
	struct spool_header *h;
	void *p;

	spool_name(spool_path, sizeof(spool_path));
	spool_fd = open(spool_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (spool_fd < 0) {
		log_error("cannot create '%s': %s", spool_path, strerror(errno));
		return -1;
	}
	if (ftruncate(spool_fd, (off_t)total) < 0) {
		log_error("cannot size '%s': %s", spool_path, strerror(errno));
		goto fail;
	}
	p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, spool_fd, 0);
	if (p == MAP_FAILED && errno == ENOMEM) {
		/* most likely a limit on the address space (ulimit -v), which
		 * the recorder's buffers count against */
		log_error("cannot map '%s' (%llu MiB): %s; a smaller --max-overhead "
			  "(MEMSCOPE_MAX_OVERHEAD, now %llu MiB) needs less address space",
			  spool_path, (unsigned long long)(total >> 20), strerror(ENOMEM),
			  (unsigned long long)(cfg.max_overhead >> 20));
		goto fail;
	}
	if (p == MAP_FAILED) {
		log_error("cannot map '%s': %s", spool_path, strerror(errno));
		goto fail;
	}
	/* No read-ahead: the spool starts as one hole and its pages are
	 * first touched by writes, which in a shared file mapping fault the
	 * page in as a read would, with read-ahead around it: the kernel
	 * filled the page cache with zeroed pages nobody touched and evicted
	 * them at the end (some 20 ms of kernel time a process on ext4, most
	 * of a short program's cost, a shell script's child processes each
	 * paying it). */
	madvise(p, total, MADV_RANDOM);
	/* spool_fault()'s bitmap; without it a full filesystem still kills */
	fault_page = (size_t)sysconf(_SC_PAGESIZE);
	fault_map = mmap(NULL, total / fault_page / 8 + 1, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fault_map == MAP_FAILED)
		fault_map = NULL;
	h = p;
	memcpy(h->magic, SPOOL_MAGIC, 8);
	h->version = SPOOL_VERSION;
	h->header_size = SPOOL_HEADER_SIZE;
	h->total_size = total;
	h->state = SPOOL_RUNNING;
	h->pid = (uint32_t)getpid();
	h->rings_off = rings_off;
	h->stacks_off = stacks_off;
	h->hash_off = hash_off;
	h->data_off = data_off;
	h->stack_capacity = STACK_CAP;
	h->hash_slots = HASH_SLOTS;
	snprintf(h->trace_path, sizeof(h->trace_path), "%s", cfg.trace_path);
	memcpy(h->session, cfg.session, 16);
	spool = h;
	stack_attach_spool();
	/* the mapping needs no descriptor: none for a daemon to close */
	close(spool_fd);
	spool_fd = -1;
	return 0;
fail:
	close(spool_fd);
	spool_fd = -1;
	unlink(spool_path);
	return -1;
}

/*
 * The spool is a sparse file: a page gets its storage when first written.
 * When the spool's filesystem is full that write faults (SIGBUS) and
 * would kill the program. fatal_handler() asks here first: a fault inside
 * the spool puts a page of memory in the file page's place (it was a hole,
 * so zeros either way), the write is retried, and recording goes on; only
 * a salvage after SIGKILL would miss those pages. Returns 1 when handled.
 * Async-signal-safe: a spin lock and a bitmap, so that two threads
 * faulting on one page do not replace it twice.
 */
int spool_fault(const void *addr)
{
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)spool;
	static const char msg[] = "memscope: the spool's filesystem is full: recording "
				  "goes on in memory (a SIGKILL now would lose the trace's end)\n";
	static int told;
	size_t page = fault_page, i;

	if (!spool || !fault_map || a < base || a >= base + spool->total_size)
		return 0;
	i = (a - base) / page;
	while (__atomic_exchange_n(&fault_lock, 1, __ATOMIC_ACQUIRE))
		;
	if (!(fault_map[i / 8] & (1u << (i % 8)))) {
		void *p = mmap((void *)(base + i * page), page, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p == MAP_FAILED) {
			__atomic_store_n(&fault_lock, 0, __ATOMIC_RELEASE);
			return 0;
		}
		fault_map[i / 8] |= (uint8_t)(1u << (i % 8));
		if (!told++ && write(2, msg, sizeof(msg) - 1) < 0)
			told = 1;
	}
	__atomic_store_n(&fault_lock, 0, __ATOMIC_RELEASE);
	return 1;
}

void spool_unmap(void)
{
	if (spool)
		munmap(spool, spool->total_size);
	spool = NULL;
	if (spool_fd >= 0)
		close(spool_fd);
	spool_fd = -1;
}

/* ---- the trace file ---- */

/* Keeps the descriptor away from the low numbers programs reuse. */
static int high_fd(int fd)
{
	int h = fcntl(fd, F_DUPFD_CLOEXEC, 700);

	if (h < 0)
		return fd;
	close(fd);
	return h;
}

static int trace_reopen(void)
{
	struct stat st;
	int fd = open(cfg.trace_path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0)
		return -1;
	fd = high_fd(fd);
	if (fstat(fd, &st) == 0) {
		trace_dev = st.st_dev;
		trace_ino = st.st_ino;
	}
	trace_fd = fd;
	return 0;
}

/* Closes the trace descriptor only if it still is the trace: after a
 * daemon closed it, its number may name one of the program's files. */
static void trace_close(void)
{
	struct stat st;

	if (trace_fd >= 0 && fstat(trace_fd, &st) == 0 &&
	    st.st_dev == trace_dev && st.st_ino == trace_ino)
		close(trace_fd);
	trace_fd = -1;
}

/*
 * The sink: a daemon may have closed every descriptor (and the number may
 * now name another file), so the file is checked before each chunk and
 * reopened by its absolute path when it is not ours any more.
 */
static int sink_errno;              /* why the trace could not be written */

static int trace_sink(void *ctx, const void *buf, size_t len)
{
	const char *p = buf;
	struct stat st;

	(void)ctx;
	if (trace_fd < 0 || fstat(trace_fd, &st) < 0 ||
	    st.st_dev != trace_dev || st.st_ino != trace_ino) {
		if (trace_reopen() < 0)
			return MST_ERR_IO;
	}
	while (len) {
		ssize_t n = write(trace_fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EBADF && trace_reopen() == 0)
			continue;
		if (n <= 0) {
			sink_errno = n < 0 ? errno : ENOSPC;
			return MST_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int writer_open_trace(int append)
{
	struct mst_writer_options o = { 0 };
	struct stat st;
	int fd, rc;

	fd = open(cfg.trace_path, O_WRONLY | O_CREAT | O_CLOEXEC |
		  (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0) {
		log_error("cannot create '%s': %s", cfg.trace_path, strerror(errno));
		return -1;
	}
	fd = high_fd(fd);
	if (fstat(fd, &st) == 0) {
		trace_dev = st.st_dev;
		trace_ino = st.st_ino;
	}
	trace_fd = fd;
	trace_base = append ? (uint64_t)st.st_size : 0;
	/* 256 KiB chunks: readers decode a few chunks ahead, each into a
	 * buffer its events' size (32 bytes an event), so the largest chunk
	 * sets their memory. With 1 MiB ones (filled by 8-thread programs,
	 * while one-thread ones flushed at 170-600 KiB) ms-stats took 13 to
	 * 22 MiB depending on the trace, growing with its length as larger
	 * chunks turned up; traces are within 1% of the size. */
	o.chunk_size = 256u << 10;
	o.zstd_level = cfg.zstd_level;
	o.append = append;
	o.sink = trace_sink;
	rc = mst_writer_open(&mw, fd, &o);
	if (rc) {
		log_error("cannot start the trace writer: %s", mst_status_str(rc));
		close(fd);
		trace_fd = -1;
		mw = NULL;
		return -1;
	}
	return 0;
}

static void writer_fail(int rc)
{
	static int warned;

	if (!warned++)
		log_error("cannot write '%s': %s; recording stops, the trace ends there",
			  cfg.trace_path, sink_errno ? strerror(sink_errno) :
			  mw ? mst_writer_error(mw) : mst_status_str(rc));
}

static int add(const struct mst_record *r)
{
	int rc;

	if (!mw)
		return -1;
	rc = mst_writer_add(mw, r);
	if (rc)
		writer_fail(rc);
	return rc;
}

int writer_header(void);
int writer_header(void)
{
	struct mst_record r = { .type = MST_REC_HEADER };
	struct mst_header *h = &r.u.header;
	const char *argv[4096];
	size_t i, argc = 0;
	struct timespec rt;

	for (i = 0; i < hdr_arglen && argc < 4096; i += strlen(hdr_argbuf + i) + 1)
		argv[argc++] = hdr_argbuf + i;
	clock_gettime(CLOCK_REALTIME, &rt);
	h->ticks_per_second = 1000000000ull >> TIME_SHIFT;
	/* wall time at trace time 0, estimated from now */
	h->start_wall_ns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec -
			   ticks_to_ns(spool, use_tsc ? rdtsc_raw() : clock_slow());
	h->pid = (uint64_t)getpid();
	h->ppid = (uint64_t)getppid();
	memcpy(h->session_id, cfg.session, 16);
	h->program = hdr_program;
	h->argc = argc;
	h->argv = argv;
	h->sample_rate_ppm = cfg.sample_ppm;
	h->unwinder = (uint8_t)cfg.unwind;
	h->stack_depth = (uint64_t)cfg.depth;
	h->flags = (cfg.forked ? MST_FLAG_FORKED : 0) |
		   (cfg.exec_generation ? MST_FLAG_EXECED : 0) |
		   (cfg.drop ? MST_FLAG_DROP_MODE : 0) |
		   (hdr_own_malloc ? MST_FLAG_OWN_MALLOC : 0);
	h->exec_generation = (uint64_t)cfg.exec_generation;
	h->allocator = hdr_allocator;
	h->hostname = hdr_hostname;
	return add(&r);
}

/* ---- draining ---- */

static struct spool_ring *ring_at(struct spool_header *h, uint32_t i)
{
	return (struct spool_ring *)((char *)h + h->rings_off) + i;
}

struct cursor {
	uint32_t ring;
	uint64_t head;
	uint64_t front;               /* time of the next event, ~0 = none */
};

struct drain_ctx {
	struct spool_header *h;
	struct mst_writer *w;
	uint64_t *rd;
	uint64_t *emitted;
	uint64_t *dropped;
	int salvage;
};

static struct spool_ev *ev_at(struct spool_header *h, struct spool_ring *r, uint64_t pos)
{
	struct spool_ev *slots = (void *)((char *)h + r->slots_off);

	return &slots[pos & (r->nslots - 1)];
}

/* Skips padding; returns the next real event's time or ~0. */
static inline __attribute__((always_inline)) uint64_t front_time(struct drain_ctx *d,
							      struct cursor *c)
{
	struct spool_ring *r = ring_at(d->h, c->ring);

	while (d->rd[c->ring] < c->head) {
		struct spool_ev *ev = ev_at(d->h, r, d->rd[c->ring]);

		if (ev->type != EV_PAD)
			return ev->time;
		d->rd[c->ring] += ev->nslots ? ev->nslots : 1;
	}
	return ~0ull;
}

static int emit_stacks(struct drain_ctx *d, uint64_t upto)
{
	struct spool_stack *nodes = (void *)((char *)d->h + d->h->stacks_off);
	struct mst_record r = { .type = MST_REC_STACK };

	while (*d->emitted < upto) {
		uint64_t id = *d->emitted + 1;
		int spins = 0;

		/* its creator is a few instructions from marking it ready */
		while (!__atomic_load_n(&nodes[id].ready, __ATOMIC_ACQUIRE) &&
		       !d->salvage && spins++ < 100000)
			sched_yield();
		r.u.stack.parent = nodes[id].ready ? nodes[id].parent : 0;
		r.u.stack.ip = nodes[id].ready ? nodes[id].ip : 0;
		if (r.u.stack.parent >= id)
			r.u.stack.parent = 0;
		if (mst_writer_add(d->w, &r))
			return -1;
		*d->emitted = id;
	}
	return 0;
}

/* Module blob layout inside an EV_MODULE_LOAD payload. */
struct module_blob {
	uint64_t base;
	uint32_t path_len, build_id_len, nsegs, pad;
	/* path, build-id, then (8-aligned) struct mst_segment-like quads */
};

/* An ALLOC or FREE event of ring R at trace time T, its stack written. */
static inline int put_alloc_free(struct drain_ctx *d, const struct spool_ring *r,
				 const struct spool_ev *ev, uint64_t t)
{
	if (ev->type == EV_ALLOC) {
		struct mst_alloc a = { .time = t, .thread = r->thread, .func = ev->func,
				       .addr = ev->addr, .size = ev->size, .stack = ev->stack };

		if (ev->nslots >= 2) {
			const uint64_t *x = (const uint64_t *)(ev + 1);

			a.old_addr = x[0];
			a.alignment = x[1];
		}
		return mst_writer_alloc(d->w, &a);
	} else {
		struct mst_free f = { .time = t, .thread = r->thread, .func = ev->func,
				      .addr = ev->addr, .stack = ev->stack };

		return mst_writer_free(d->w, &f);
	}
}

static int emit_event(struct drain_ctx *d, struct spool_ring *r, struct spool_ev *ev)
{
	struct mst_record rec;
	uint64_t t = ticks_to_ns(d->h, ev->time) >> TIME_SHIFT;
	uint64_t last = mst_writer_last_time(d->w);
	const char *payload = (const char *)(ev + 1);

	if (t < last)
		t = last;
	switch (ev->type) {
	case EV_ALLOC:
	case EV_FREE:
		if (ev->stack > *d->emitted && emit_stacks(d, ev->stack))
			return -1;
		return put_alloc_free(d, r, ev, t);
	case EV_THREAD_START:
		rec.type = MST_REC_THREAD_START;
		rec.u.thread_start = (struct mst_thread_start){ t, r->thread, ev->addr, ev->size };
		break;
	case EV_THREAD_NAME: {
		char name[256];
		size_t n = ev->size < sizeof(name) - 1 ? ev->size : sizeof(name) - 1;

		memcpy(name, payload, n);
		name[n] = 0;
		rec.type = MST_REC_THREAD_NAME;
		rec.u.thread_name.time = t;
		rec.u.thread_name.thread = ev->addr ? ev->addr : r->thread;
		rec.u.thread_name.name = name;
		return mst_writer_add(d->w, &rec);
	}
	case EV_THREAD_EXIT:
		rec.type = MST_REC_THREAD_EXIT;
		rec.u.thread_exit.time = t;
		rec.u.thread_exit.thread = r->thread;
		break;
	case EV_MODULE_LOAD: {
		const struct module_blob *b = (const void *)payload;
		const char *s = payload + sizeof(*b);
		char path[SPOOL_PATH_MAX];
		struct mst_segment segs[MST_MAX_SEGMENTS];
		const uint64_t *q;
		size_t off;
		uint32_t i;

		if (b->path_len >= sizeof(path) || b->nsegs > MST_MAX_SEGMENTS)
			return 0;
		memcpy(path, s, b->path_len);
		path[b->path_len] = 0;
		off = sizeof(*b) + b->path_len + b->build_id_len;
		off = (off + 7) & ~(size_t)7;
		q = (const uint64_t *)(payload + off);
		for (i = 0; i < b->nsegs; i++) {
			segs[i].vaddr = q[4 * i];
			segs[i].memsz = q[4 * i + 1];
			segs[i].offset = q[4 * i + 2];
			segs[i].flags = (uint8_t)q[4 * i + 3];
		}
		rec.type = MST_REC_MODULE_LOAD;
		rec.u.module_load.time = t;
		rec.u.module_load.module = ev->addr;
		rec.u.module_load.base = b->base;
		rec.u.module_load.path = path;
		rec.u.module_load.build_id = (const uint8_t *)s + b->path_len;
		rec.u.module_load.build_id_len = b->build_id_len;
		rec.u.module_load.nsegs = b->nsegs;
		rec.u.module_load.segs = segs;
		return mst_writer_add(d->w, &rec);
	}
	case EV_MODULE_UNLOAD:
		rec.type = MST_REC_MODULE_UNLOAD;
		rec.u.module_unload.time = t;
		rec.u.module_unload.module = ev->addr;
		break;
	case EV_LABEL: {
		char buf[1024];
		size_t n = ev->size < sizeof(buf) - 2 ? ev->size : sizeof(buf) - 2;

		memcpy(buf, payload, n);
		buf[n] = buf[n + 1] = 0;
		rec.type = MST_REC_LABEL;
		rec.u.label.time = t;
		rec.u.label.thread = r->thread;
		rec.u.label.addr = ev->addr;
		rec.u.label.name = buf;
		rec.u.label.type = buf + strlen(buf) + 1;
		if (rec.u.label.type > buf + n)
			rec.u.label.type = "";
		return mst_writer_add(d->w, &rec);
	}
	case EV_TASK_BEGIN: {
		char name[512];
		size_t n = ev->size < sizeof(name) - 1 ? ev->size : sizeof(name) - 1;

		memcpy(name, payload, n);
		name[n] = 0;
		rec.type = MST_REC_TASK_BEGIN;
		rec.u.task_begin.time = t;
		rec.u.task_begin.thread = r->thread;
		rec.u.task_begin.task = ev->addr;
		rec.u.task_begin.name = name;
		return mst_writer_add(d->w, &rec);
	}
	case EV_TASK_END:
		rec.type = MST_REC_TASK_END;
		rec.u.task_end = (struct mst_task_end){ t, r->thread, ev->addr };
		break;
	case EV_DROPPED:
		rec.type = MST_REC_DROPPED;
		rec.u.dropped = (struct mst_dropped){ t, r->thread, ev->addr, ev->size };
		*d->dropped += ev->addr;
		break;
	default:
		return 0;                     /* unknown: skip */
	}
	return mst_writer_add(d->w, &rec);
}

/*
 * emit_event, with the fast way for what nearly every event is: an ALLOC
 * or FREE whose stack was written already. *LAST is the writer's last
 * time, kept here between calls (a call into libtrace an event, and
 * emit_event's frame, were a tenth of the writer).
 */
static inline int emit_one(struct drain_ctx *d, struct spool_ring *r,
			   struct spool_ev *ev, uint64_t *last)
{
	uint64_t t;
	int rc;

	if (ev->stack > *d->emitted || (ev->type != EV_ALLOC && ev->type != EV_FREE)) {
		rc = emit_event(d, r, ev);
		*last = mst_writer_last_time(d->w);
		return rc;
	}
	t = ticks_to_ns(d->h, ev->time) >> TIME_SHIFT;
	if (t < *last)
		t = *last;
	*last = t;
	return put_alloc_free(d, r, ev, t);
}

/* The ring slot is libtrace's in-memory event (mst_writer_put_run). */
_Static_assert(sizeof(struct spool_ev) == sizeof(struct mst_event) &&
	       offsetof(struct spool_ev, type) == offsetof(struct mst_event, type) &&
	       offsetof(struct spool_ev, func) == offsetof(struct mst_event, func) &&
	       offsetof(struct spool_ev, nslots) == offsetof(struct mst_event, nslots) &&
	       offsetof(struct spool_ev, stack) == offsetof(struct mst_event, stack) &&
	       offsetof(struct spool_ev, time) == offsetof(struct mst_event, time) &&
	       offsetof(struct spool_ev, addr) == offsetof(struct mst_event, addr) &&
	       offsetof(struct spool_ev, size) == offsetof(struct mst_event, size) &&
	       sizeof(struct mst_event_ext) == SPOOL_SLOT &&
	       (int)EV_ALLOC == (int)MST_EVENT_ALLOC && (int)EV_FREE == (int)MST_EVENT_FREE,
	       "spool_ev must be struct mst_event");

/*
 * Encodes ring R's events from *POS (up to HEAD, before raw time LIMIT)
 * in one libtrace loop, moving *POS past them; stops before an event the
 * per-event way must take (emit_one). Returns the events written or -1.
 */
static long put_run(struct drain_ctx *d, const struct spool_ring *r, uint64_t *pos,
		    uint64_t head, uint64_t limit)
{
	struct mst_run run = {
		.slots = (const struct mst_event *)((char *)d->h + r->slots_off),
		.mask = r->nslots - 1, .pos = *pos, .end = head, .thread = r->thread,
		.limit = limit, .clock_start = d->h->start_ticks, .clock_mult = d->h->mult,
		.clock_shift = TIME_SHIFT,
	};
	long got = mst_writer_put_run(d->w, &run);

	*pos = run.pos;
	return got < 0 ? -1 : got;
}

/*
 * One round: merges every ring's events below CUTOFF (all of them when
 * cutoff is ~0) into the writer. Returns the number of events emitted, or
 * -1 on a write error.
 */
static long drain_rings(struct drain_ctx *d, uint64_t cutoff, uint32_t nrings)
{
	struct cursor cur[SPOOL_MAX_RINGS];
	uint32_t n = 0, i, best;
	long count = 0;

	for (i = 0; i < nrings; i++) {
		struct spool_ring *r = ring_at(d->h, i);
		uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
		uint64_t head;

		if (st != RING_LIVE && st != RING_DEAD)
			continue;
		head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		if (d->rd[i] < r->tail)
			d->rd[i] = r->tail;
		if (head <= d->rd[i])
			continue;
		cur[n].ring = i;
		cur[n].head = head;
		cur[n].front = front_time(d, &cur[n]);
		if (cur[n].front != ~0ull)
			n++;
	}
	if (n == 1)
		goto single;
	while (n) {
		/* The earliest ring, then a run of its events up to the second
		 * earliest ring's front (threads' events come in runs: one scan
		 * of the rings a run, not an event). */
		uint64_t limit = ~0ull, last;
		struct spool_ring *r;

		best = 0;
		for (i = 1; i < n; i++) {
			if (cur[i].front < cur[best].front) {
				if (cur[best].front < limit)
					limit = cur[best].front;
				best = i;
			} else if (cur[i].front < limit) {
				limit = cur[i].front;
			}
		}
		if (cur[best].front >= cutoff && cutoff != ~0ull)
			break;
		if (cutoff < limit)
			limit = cutoff;
		r = ring_at(d->h, cur[best].ring);
		/* the run goes on while its events come before every other
		 * ring's; a tie still takes the front event */
		if (limit <= cur[best].front)
			limit = cur[best].front + 1;
		for (;;) {
			uint64_t *at = &d->rd[cur[best].ring];
			struct spool_ev *ev;
			long got = put_run(d, r, at, cur[best].head, limit);

			if (got < 0)
				return -1;
			count += got;
			cur[best].front = front_time(d, &cur[best]);
			if (cur[best].front >= limit)
				break;
			/* an event the run leaves to the per-event way */
			ev = ev_at(d->h, r, *at);
			last = mst_writer_last_time(d->w);
			if (emit_one(d, r, ev, &last))
				return -1;
			*at += ev->nslots ? ev->nslots : 1;
			count++;
		}
		if (cur[best].front == ~0ull)
			cur[best] = cur[--n];
		if (n == 1)
			goto single;
	}
	return count;
single:
	/* one ring left: no merge, just its events up to the cutoff */
	{
		struct spool_ring *r = ring_at(d->h, cur[0].ring);
		uint64_t pos = d->rd[cur[0].ring], head = cur[0].head;
		uint64_t last;

		while (pos < head) {
			struct spool_ev *ev;
			long got = put_run(d, r, &pos, head, cutoff);

			if (got < 0) {
				d->rd[cur[0].ring] = pos;
				return -1;
			}
			count += got;
			if (pos >= head)
				break;
			/* an event the run leaves to the per-event way */
			ev = ev_at(d->h, r, pos);
			if (ev->type != EV_PAD) {
				if (ev->time >= cutoff && cutoff != ~0ull)
					break;
				last = mst_writer_last_time(d->w);
				if (emit_one(d, r, ev, &last)) {
					d->rd[cur[0].ring] = pos;
					return -1;
				}
				count++;
			}
			pos += ev->nslots ? ev->nslots : 1;
		}
		d->rd[cur[0].ring] = pos;
	}
	return count;
}

extern uint32_t ring_hwm;

/* Drops no later event of their thread reported: at the end (every
 * ring), or once an exited thread's ring is drained (before its reuse). */
static void drops_left(struct drain_ctx *d, uint32_t nrings, int dead_only)
{
	uint32_t i;

	for (i = 0; i < nrings; i++) {
		struct spool_ring *r = ring_at(d->h, i);
		struct mst_record rec = { .type = MST_REC_DROPPED };
		uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);

		if (st == RING_FREE || !r->drop_events)
			continue;
		if (dead_only && (st != RING_DEAD ||
				  __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) != d->rd[i]))
			continue;
		rec.u.dropped = (struct mst_dropped){ mst_writer_last_time(d->w), r->thread,
						      r->drop_events, r->drop_bytes };
		if (mst_writer_add(d->w, &rec) == 0)
			*d->dropped += r->drop_events;
		r->drop_events = r->drop_bytes = 0;
	}
}

static void checkpoint(void)
{
	struct spool_header *h = spool;
	uint64_t gen = h->cp_gen;
	struct spool_checkpoint *cp = &h->cp[(gen + 1) & 1];
	uint32_t i, n = ring_hwm + 1;

	if (n > SPOOL_MAX_RINGS)
		n = SPOOL_MAX_RINGS;
	cp->trace_len = trace_base + mst_writer_bytes(mw);
	cp->stacks_emitted = emitted_stacks;
	cp->events = base_events + mst_writer_events(mw);
	cp->dropped = dropped_total;
	cp->last_time = mst_writer_last_time(mw);
	for (i = 0; i < SPOOL_MAX_RINGS; i++)
		cp->tails[i] = i < n ? rd[i] : ring_at(h, i)->tail;
	__atomic_store_n(&h->cp_gen, gen + 1, __ATOMIC_RELEASE);
	for (i = 0; i < n; i++) {
		struct spool_ring *r = ring_at(h, i);

		if (r->tail < rd[i])
			__atomic_store_n(&r->tail, rd[i], __ATOMIC_RELEASE);
		/* a dead thread's ring, drained and in the file: reuse it,
		 * but not before drops_left() has reported the drops its
		 * thread made after its last event (the thread may have died
		 * between that call and this one), or they would be lost */
		if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) == RING_DEAD &&
		    __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == rd[i] &&
		    !r->drop_events)
			__atomic_store_n(&r->state, RING_FREE, __ATOMIC_RELEASE);
	}
}

static int flush_and_checkpoint(void)
{
	int rc = mst_writer_flush(mw);

	if (rc) {
		writer_fail(rc);
		return rc;
	}
	checkpoint();
	return 0;
}

static uint64_t now_ns(void)
{
	return ticks_to_ns(spool, use_tsc ? rdtsc_raw() : clock_slow());
}

/* One COUNTERS record: RSS and virtual size, the recorder's own memory,
 * and with ARENA glibc's arena figures (mallinfo2 takes the arenas'
 * locks: not at the end, which may come in a signal handler that
 * interrupted malloc). */
static void counters(int arena)
{
	struct mst_counter items[8];
	struct mst_record r = { .type = MST_REC_COUNTERS };
	uint32_t n = 0;
	char buf[128];
	ssize_t len;
	uint64_t t = now_ns() >> TIME_SHIFT;
	long page = sysconf(_SC_PAGESIZE);

	/* opened each time: a daemon that closes every descriptor could
	 * hand a kept one's number to a file of its own */
	statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	len = statm_fd >= 0 ? read(statm_fd, buf, sizeof(buf) - 1) : -1;
	if (statm_fd >= 0)
		close(statm_fd);
	statm_fd = -1;
	if (len > 0) {
		unsigned long long vs = 0, rss = 0;

		buf[len] = 0;
		if (sscanf(buf, "%llu %llu", &vs, &rss) == 2) {
			items[n++] = (struct mst_counter){ MST_CTR_RSS, rss * page };
			items[n++] = (struct mst_counter){ MST_CTR_VSIZE, vs * page };
		}
	}
	if (arena && mallinfo2_fn) {
		struct mallinfo2 mi = mallinfo2_fn();

		items[n++] = (struct mst_counter){ MST_CTR_ARENA, mi.arena };
		items[n++] = (struct mst_counter){ MST_CTR_MMAP, mi.hblkhd };
		items[n++] = (struct mst_counter){ MST_CTR_IN_USE, mi.uordblks + mi.hblkhd };
		items[n++] = (struct mst_counter){ MST_CTR_FREE, mi.fordblks };
	}
	items[n++] = (struct mst_counter){ MST_CTR_RECORDER,
		spool->data_used + spool->stack_count * sizeof(struct spool_stack) };
	if (t < mst_writer_last_time(mw))
		t = mst_writer_last_time(mw);
	r.u.counters.time = t;
	r.u.counters.count = n;
	r.u.counters.items = items;
	add(&r);
}

static struct drain_ctx live_ctx(void)
{
	struct drain_ctx d = { spool, mw, rd, &emitted_stacks, &dropped_total, 0 };

	return d;
}

/* One writer round; returns events emitted. */
static long round_once(int final)
{
	struct drain_ctx d = live_ctx();
	uint64_t cutoff = ~0ull;
	uint32_t i, n = ring_hwm + 1;
	long got;

	if (!mw || !spool)
		return 0;
	if (n > SPOOL_MAX_RINGS)
		n = SPOOL_MAX_RINGS;
	if (!final) {
		cutoff = now_after();
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		for (i = 0; i < n; i++) {
			struct spool_ring *r = ring_at(spool, i);
			uint64_t m = __atomic_load_n(&r->inflight, __ATOMIC_ACQUIRE);

			/* (a ring filled by signal handlers during the realloc
			 * must still drain, or its thread could wait forever) */
			if (m && m < cutoff && r->head - r->tail < r->nslots / 2)
				cutoff = m;
		}
	}
	got = drain_rings(&d, cutoff, n);
	if (got < 0)
		return -1;
	drops_left(&d, n, !final);
	return got;
}

static int ring_pressure(void)
{
	uint32_t i, n = ring_hwm + 1;

	for (i = 0; i < n && i < SPOOL_MAX_RINGS; i++) {
		struct spool_ring *r = ring_at(spool, i);

		if (r->state != RING_FREE && rd[i] - r->tail > r->nslots / 4)
			return 1;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	sigset_t all;
	uint64_t pending = 0;

	(void)arg;
	tls.guard = 1;
	tls.dead = 1;
	sigfillset(&all);
	/* a fault of its own is handled (SIGBUS: a full spool filesystem,
	 * spool_fault) or kills as it would anyway; blocked, it kills at once */
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	while (!writer_stop) {
		long got = round_once(0);
		uint64_t now = now_ns();

		if (got < 0) {
			writer_fail(MST_ERR_IO);
			write_failed = 1;
			break;
		}
		pending += (uint64_t)got;
		if (cfg.rss_interval_ms > 0 &&
		    now - last_counters_ns >= (uint64_t)cfg.rss_interval_ms * 1000000ull) {
			last_counters_ns = now;
			counters(1);
			pending++;
		}
		if (pending && (ring_pressure() || now - last_flush_ns > 200000000ull)) {
			if (flush_and_checkpoint()) {
				write_failed = 1;
				break;
			}
			pending = 0;
			last_flush_ns = now;
		}
		if (got < 64) {
			struct timespec ts = { 0, got ? 200000 : 1000000 };

			writer_sleeps++;
			nanosleep(&ts, NULL);
		}
	}
	{
		struct timespec cpu;

		if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
			writer_cpu_ns = (uint64_t)cpu.tv_sec * 1000000000ull + (uint64_t)cpu.tv_nsec;
	}
	/* The trace cannot take more (a full disk, say): the program goes on
	 * unrecorded rather than waiting for a writer that is gone (threads
	 * waiting for room in their rings see this and return). */
	if (write_failed) {
		recording = 0;
		/* nothing for the launcher to salvage into the same full disk:
		 * the trace ends with its last whole chunk */
		spool->state = SPOOL_FINISHED;
		unlink(spool_path);
	}
	__atomic_store_n(&writer_running, 0, __ATOMIC_RELEASE);
	return NULL;
}

int writer_start(void)
{
	pthread_attr_t a;
	extern int (*real_pthread_create)(pthread_t *, const pthread_attr_t *,
					  void *(*)(void *), void *);
	sigset_t all, old;
	int rc;

	tls.guard++;    /* the thread's TLS and stack are the recorder's */
	if (!mallinfo2_fn && !strcmp(hdr_allocator, "glibc")) {
		*(void **)&mallinfo2_fn = dlsym(RTLD_DEFAULT, "mallinfo2");
		dlerror();
	}
	last_flush_ns = last_counters_ns = 0;
	writer_stop = 0;
	writer_running = 1;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 1u << 20);
	/* the writer starts with every signal blocked: a program's handler
	 * must never run on it, not even before writer_main's first line */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = real_pthread_create(&writer_tid, &a, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	tls.guard--;
	if (rc) {
		writer_running = 0;
		log_error("cannot start the writer thread: %s", strerror(rc));
		return -1;
	}
	return 0;
}

/* Stops the writer thread; safe from a signal handler (no join). */
void writer_stop_thread(void)
{
	int i;

	if (!writer_running)
		return;
	if (tls.dead && pthread_equal(pthread_self(), writer_tid))
		return;
	writer_stop = 1;
	for (i = 0; i < 5000 && __atomic_load_n(&writer_running, __ATOMIC_ACQUIRE); i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
}

/*
 * Finishes the trace: stops the writer, drains every ring, writes END,
 * marks the spool finished. Called on exit, _exit, exec and fatal signals.
 * For exec the spool mapping is kept (recording may resume if exec fails).
 */
void writer_finish(int reason, long status)
{
	struct mst_record r = { .type = MST_REC_END };
	uint64_t t;

	struct timespec cpu;
	double finisher_cpu = 0;

	if (__atomic_exchange_n(&finishing, 1, __ATOMIC_ACQ_REL))
		return;
	/* the finishing thread's CPU time so far: the program's own part,
	 * for MEMSCOPE_LOG=debug (on the main thread, with the recorder's
	 * cost on its calls) */
	if (cfg.debug && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
		finisher_cpu = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
	tls.guard++;
	writer_stop_thread();
	if (writer_running) {
		/* the writer is stuck or is us (crashed in the writer): leave
		 * the spool for the launcher to salvage */
		recording = 0;
		tls.guard--;
		return;
	}
	recording = 0;
	if (mw && spool) {
		round_once(1);
		/* the memory at the end: a run shorter than the sampling
		 * interval has a figure too */
		if (cfg.rss_interval_ms > 0 && reason != MST_END_SIGNAL)
			counters(0);
		t = now_ns() >> TIME_SHIFT;
		if (t < mst_writer_last_time(mw))
			t = mst_writer_last_time(mw);
		r.u.end.time = t;
		r.u.end.reason = (uint8_t)reason;
		r.u.end.status = status;
		r.u.end.events = base_events + mst_writer_events(mw);
		r.u.end.dropped = dropped_total;
		add(&r);
		flush_and_checkpoint();
		spool->state = SPOOL_FINISHED;
		base_events += mst_writer_events(mw);
		mst_writer_close(mw);
		mw = NULL;
	}
	trace_close();
	/* The mapping stays: threads still running may touch their rings
	 * (no one reads them any more), and a failed exec resumes on it. On
	 * exec the file stays too, marked finished, so that a failed exec
	 * can still be salvaged later; the new image removes it. */
	if (reason != MST_END_EXEC)
		unlink(spool_path);
	{
		extern unsigned long stat_full, stat_sleeps;

		log_debug("trace '%s' finished (reason %d, status %ld); rings found full "
			  "%lu times, %lu sleeps; writer slept %lu times, used %.3f s of CPU "
			  "(the finishing thread %.3f s before finishing)",
			  cfg.trace_path, reason, status, stat_full, stat_sleeps, writer_sleeps,
			  (double)writer_cpu_ns / 1e9, finisher_cpu);
	}
	tls.guard--;
}

/* exec failed: continue the same trace. */
void writer_resume(void);
void writer_resume(void)
{
	uint64_t last;
	struct stat st;

	tls.guard++;
	if (writer_open_trace(1) == 0) {
		last = spool->cp[spool->cp_gen & 1].last_time;
		mst_writer_set_last_time(mw, last);
		if (fstat(trace_fd, &st) == 0)
			trace_base = (uint64_t)st.st_size;
		spool->state = SPOOL_RUNNING;
		finishing = 0;
		recording = 1;
		writer_start();
	}
	tls.guard--;
}

/* In a fork child: forget the parent's writer without touching its file. */
void writer_after_fork_child(void)
{
	/* mw's buffers hold the parent's pending records: never flush them
	 * here (the descriptor shares the parent's file offset). Leak it. */
	mw = NULL;
	trace_close();
	if (statm_fd >= 0)
		close(statm_fd);
	statm_fd = -1;
	if (spool)
		munmap(spool, spool->total_size);
	spool = NULL;
	if (spool_fd >= 0)
		close(spool_fd);
	spool_fd = -1;
	memset(rd, 0, sizeof(rd));
	emitted_stacks = 0;
	dropped_total = 0;
	base_events = 0;
	writer_running = 0;
	finishing = 0;
}

/* ---- salvage (called by the launcher, in its own process) ---- */

static int salvage_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int salvage_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

struct salvage_sink {
	int fd;
	int err;                      /* errno of a failed write */
};

static int salvage_write(void *ctx, const void *buf, size_t len)
{
	struct salvage_sink *s = ctx;
	const char *p = buf;

	while (len) {
		ssize_t n = write(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->err = n < 0 ? errno : ENOSPC;
			return MST_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int pid_alive(uint32_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

EXPORT int memscope_salvage(const char *path, char *err, size_t errlen)
{
	struct spool_header *h;
	struct stat st;
	struct salvage_sink sink;
	struct mst_writer_options o = { 0 };
	struct mst_writer *w = NULL;
	struct mst_record r = { .type = MST_REC_END };
	const struct spool_checkpoint *cp;
	uint64_t *srd = NULL, emitted, dropped, events;
	struct drain_ctx d;
	int fd, tfd = -1, rc = -1;
	char tpath[SPOOL_PATH_MAX];

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return salvage_err(err, errlen, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < SPOOL_HEADER_SIZE) {
		close(fd);
		return salvage_err(err, errlen, "'%s' is not a memscope spool", path);
	}
	h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED)
		return salvage_err(err, errlen, "cannot map '%s': %s", path, strerror(errno));
	if (memcmp(h->magic, SPOOL_MAGIC, 8) || h->version != SPOOL_VERSION ||
	    h->total_size != (uint64_t)st.st_size) {
		salvage_err(err, errlen, "'%s' is not a memscope spool of this version", path);
		goto out;
	}
	if (h->state == SPOOL_FINISHED) {
		unlink(path);
		rc = 0;
		goto out;
	}
	if (h->pid != (uint32_t)getpid() && pid_alive(h->pid)) {
		char pid[24];

		snprintf(pid, sizeof(pid), "%u", h->pid);
		salvage_err(err, errlen, "'%s': process %s is still running", path, pid);
		rc = 1;
		goto out;
	}
	if (!h->cp_gen) {
		salvage_err(err, errlen, "'%s': the trace was never started", path);
		unlink(path);
		goto out;
	}
	cp = &h->cp[h->cp_gen & 1];
	memcpy(tpath, h->trace_path, sizeof(tpath));
	tpath[sizeof(tpath) - 1] = 0;
	tfd = open(tpath, O_WRONLY | O_CLOEXEC);
	if (tfd < 0) {
		salvage_err(err, errlen, "cannot open '%s': %s", tpath, strerror(errno));
		goto out;
	}
	if (ftruncate(tfd, (off_t)cp->trace_len) < 0 ||
	    lseek(tfd, (off_t)cp->trace_len, SEEK_SET) < 0) {
		salvage_err(err, errlen, "cannot truncate '%s': %s", tpath, strerror(errno));
		goto out;
	}
	sink.fd = tfd;
	sink.err = 0;
	o.append = 1;
	o.zstd_level = 1;
	o.sink = salvage_write;
	o.sink_ctx = &sink;
	if (mst_writer_open(&w, tfd, &o)) {
		salvage_err(err, errlen, "cannot write '%s': %s", tpath, "out of memory");
		goto out;
	}
	mst_writer_set_last_time(w, cp->last_time);
	srd = calloc(SPOOL_MAX_RINGS, sizeof(*srd));
	if (!srd)
		goto out;
	memcpy(srd, cp->tails, sizeof(cp->tails));
	emitted = cp->stacks_emitted;
	dropped = cp->dropped;
	d = (struct drain_ctx){ h, w, srd, &emitted, &dropped, 1 };
	/* ring tails may be behind the checkpoint only by a moment: use the
	 * checkpoint's, the ground truth for what the file holds */
	{
		uint32_t i;

		for (i = 0; i < SPOOL_MAX_RINGS; i++)
			ring_at(h, i)->tail = srd[i];
	}
	if (drain_rings(&d, ~0ull, SPOOL_MAX_RINGS) < 0) {
		salvage_err(err, errlen, "cannot write '%s': %s", tpath,
			    sink.err ? strerror(sink.err) : mst_writer_error(w));
		goto out;
	}
	drops_left(&d, SPOOL_MAX_RINGS, 0);
	events = cp->events + mst_writer_events(w);
	r.u.end.time = mst_writer_last_time(w);
	r.u.end.reason = MST_END_SALVAGED;
	r.u.end.status = -1;
	r.u.end.events = events;
	r.u.end.dropped = dropped;
	if (mst_writer_add(w, &r) || mst_writer_flush(w)) {
		salvage_err(err, errlen, "cannot write '%s': %s", tpath,
			    sink.err ? strerror(sink.err) : mst_writer_error(w));
		goto out;
	}
	h->state = SPOOL_FINISHED;
	unlink(path);
	rc = 0;
out:
	if (w)
		mst_writer_close(w);
	if (tfd >= 0)
		close(tfd);
	free(srd);
	munmap(h, (size_t)st.st_size);
	return rc;
}

/* After the HEADER: a first checkpoint, so salvage always has one. */
void writer_checkpoint_now(void);
void writer_checkpoint_now(void)
{
	if (mw && spool)
		flush_and_checkpoint();
}

/* The spool could not be made: close the (empty) trace again. */
void writer_abandon(void);
void writer_abandon(void)
{
	if (mw)
		mst_writer_close(mw);
	mw = NULL;
	trace_close();
	unlink(cfg.trace_path);
}

const char *writer_spool_path(void);
const char *writer_spool_path(void)
{
	return spool_path;
}

/* The new image of an exec removes the finished spool of the old one. */
void spool_remove_finished(const char *path);
void spool_remove_finished(const char *path)
{
	struct spool_header h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
	    !memcmp(h.magic, SPOOL_MAGIC, 8) && h.state == SPOOL_FINISHED &&
	    h.pid == (uint32_t)getpid())
		unlink(path);
	close(fd);
}
