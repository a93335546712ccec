/*
 * bench/libtrace.c - writer and reader throughput and the compressed size
 * per event on a synthetic but realistic malloc/free churn: several
 * threads interleaved in bursts, each with its own arena and LIFO free
 * lists per size class (so addresses are reused as glibc's tcache does),
 * a few hundred distinct stacks, power-law sizes, some calloc and realloc,
 * nanosecond times with irregular gaps.
 *
 *     libtrace [--churn-only] [--pattern random|recent] [EVENTS [CHUNK_KIB [LEVEL]]]
 *
 * (defaults 10000000 events, 256 KiB chunks, zstd level 3). "random" frees
 * uniformly random live blocks, the worst case for address deltas;
 * "recent" frees mostly among the 64 latest allocations, as programs with
 * temporal locality do. --churn-only runs the churn and writes nothing, so
 * another tracer (heaptrack) can record the very same work.
 *
 * The writer runs twice, each way three times (best kept): a call per event,
 * and runs of a thread's events as ring slots (mst_writer_put_run, as the
 * recorder's writer thread); writer_run_same_bytes says they agree.
 *
 * Prints one key=value line per figure; bench/libtrace.sh runs it for a few
 * settings side by side.
 */
#include "mstrace.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define STACKS 400
#define SLOTS 4096                  /* live blocks per thread, at most */

struct ev {
	uint64_t time, addr, size, old;
	uint32_t stack;
	uint8_t thread, type, func;
};

static int recent;                  /* --pattern recent */

struct thread {
	int index;
	uint64_t rng;
	uint64_t nevents;             /* to log */
	struct ev *log;
	size_t nlog;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fputs("bench: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

/* Mostly small sizes, a long tail of larger ones. */
static uint64_t pick_size(uint64_t *rng)
{
	uint64_t r = rnd(rng) % 100;
	if (r < 60)
		return 8 + rnd(rng) % 120;
	if (r < 90)
		return 128 + rnd(rng) % 896;
	if (r < 99)
		return 1024 + rnd(rng) % 15360;
	return 16384 + rnd(rng) % 200000;
}

/* Call sites are skewed: a few hot ones, many cold ones. */
static uint32_t pick_stack(uint64_t *rng)
{
	return 1 + (rnd(rng) % 4 ? rnd(rng) % 40 : rnd(rng) % STACKS);
}

/*
 * One thread's churn through the real allocator: random slots are
 * allocated, freed or reallocated, and every event is logged as the
 * recorder would see it (a free's time before the call, an allocation's
 * after it returns).
 */
static void *churn(void *arg)
{
	struct thread *t = arg;
	size_t ring[64] = { 0 }, nring = 0;
	void **slot = calloc(SLOTS, sizeof(void *));
	uint64_t *size = calloc(SLOTS, sizeof(uint64_t));
	uint32_t *stack = calloc(SLOTS, sizeof(uint32_t));

	if (!slot || !size || !stack)
		exit(1);
	while (t->nlog + 2 <= t->nevents) {
		size_t i = rnd(&t->rng) % SLOTS;
		struct ev *e = &t->log[t->nlog];

		if (recent && nring && rnd(&t->rng) % 4)
			i = ring[rnd(&t->rng) % (nring < 64 ? nring : 64)];
		uint64_t r = rnd(&t->rng) % 100;

		memset(e, 0, sizeof(*e));
		e->thread = t->index;
		if (slot[i] && r < 8) {
			uint64_t ns = size[i] + 1 + rnd(&t->rng) % (size[i] + 64);
			uint64_t t0 = now_ns(), old = (uintptr_t)slot[i];
			void *p = realloc(slot[i], ns);
			if (!p)
				exit(1);
			if ((uintptr_t)p != old) {
				/* Moved: the free half first, as FORMAT.md §5.1 says. */
				e->time = t0;
				e->type = MST_REC_FREE;
				e->func = MST_FREE_REALLOC;
				e->addr = old;
				e->stack = stack[i];
				e = &t->log[++t->nlog];
				memset(e, 0, sizeof(*e));
				e->thread = t->index;
			}
			e->time = now_ns();
			e->type = MST_REC_ALLOC;
			e->func = MST_ALLOC_REALLOC;
			e->addr = (uintptr_t)p;
			e->old = old;
			e->size = ns;
			e->stack = stack[i];
			slot[i] = p;
			size[i] = ns;
		} else if (slot[i]) {
			e->time = now_ns();
			e->type = MST_REC_FREE;
			e->func = MST_FREE_FREE;
			e->addr = (uintptr_t)slot[i];
			free(slot[i]);
			slot[i] = NULL;
		} else {
			uint64_t n = pick_size(&t->rng);
			int zero = r % 10 == 0;
			void *p = zero ? calloc(1, n) : malloc(n);
			e->time = now_ns();
			if (!p)
				exit(1);
			e->type = MST_REC_ALLOC;
			e->func = zero ? MST_ALLOC_CALLOC : MST_ALLOC_MALLOC;
			e->addr = (uintptr_t)p;
			e->size = n;
			e->stack = pick_stack(&t->rng);
			slot[i] = p;
			size[i] = n;
			stack[i] = e->stack;
			ring[nring++ % 64] = i;
		}
		t->nlog++;
	}
	for (size_t i = 0; i < SLOTS; i++)
		free(slot[i]);
	free(slot);
	free(size);
	free(stack);
	return NULL;
}

struct sink { uint8_t *p; size_t len, cap; };

static int mem_sink(void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;
	if (s->len + len > s->cap) {
		uint8_t *np;
		s->cap = (s->cap + len) * 2;
		np = realloc(s->p, s->cap);
		if (!np)
			return MST_ERR_NOMEM;
		s->p = np;
	}
	memcpy(s->p + s->len, buf, len);
	s->len += len;
	return 0;
}

static void add(struct mst_writer *w, const struct mst_record *rec)
{
	if (mst_writer_add(w, rec) != MST_OK) {
		fprintf(stderr, "bench: writer: %s\n", mst_writer_error(w));
		exit(1);
	}
}

/* HEADER, the threads and the stacks: the same records for every pass. */
static void prologue(struct mst_writer *w)
{
	static const char *const argv0[] = { "churn" };
	struct mst_record rec;
	uint64_t stack_rng = 42;

	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_HEADER;
	/* Times in ms-record's unit, ticks of 256 ns (FORMAT.md HEADER). */
	rec.u.header = (struct mst_header){ .ticks_per_second = 1000000000 >> 8, .pid = 1,
		.program = "churn", .argc = 1, .argv = argv0, .sample_rate_ppm = 1000000,
		.allocator = "glibc", .hostname = "bench" };
	add(w, &rec);
	for (int i = 1; i <= THREADS; i++) {
		rec = (struct mst_record){ .type = MST_REC_THREAD_START };
		rec.u.thread_start = (struct mst_thread_start){ 0, i, 1000 + i, i > 1 };
		add(w, &rec);
	}
	/* A trie of STACKS nodes: main -> a few callers -> call sites. */
	for (int i = 1; i <= STACKS; i++) {
		rec = (struct mst_record){ .type = MST_REC_STACK };
		rec.u.stack.parent = i <= 8 ? i - 1 : 1 + rnd(&stack_rng) % 8;
		rec.u.stack.ip = 0x555555554000ull + 0x1000 + rnd(&stack_rng) % 0x40000;
		add(w, &rec);
	}
}

/* One event the per-event way, its time clamped to the writer's last
 * (FORMAT.md §8 on late records), as the recorder's emit_one does. */
static int put_event(struct mst_writer *w, const struct ev *e, uint64_t base)
{
	uint64_t t = (e->time - base) >> 8;

	if (t < mst_writer_last_time(w))
		t = mst_writer_last_time(w);
	if (e->type == MST_REC_ALLOC) {
		struct mst_alloc a = { t, e->thread, e->func, e->addr, e->size, e->stack, 0, e->old };
		return mst_writer_alloc(w, &a);
	} else {
		struct mst_free f = { t, e->thread, e->func, e->addr, e->stack };
		return mst_writer_free(w, &f);
	}
}

/* The earliest thread's log and the next front time after it (~0 if none). */
static int earliest(struct thread *th, const size_t *pos, uint64_t *limit)
{
	int best = -1;

	*limit = ~0ull;
	for (int i = 0; i < THREADS; i++) {
		uint64_t f;

		if (pos[i] >= th[i].nlog)
			continue;
		f = th[i].log[pos[i]].time;
		if (best < 0 || f < th[best].log[pos[best]].time) {
			if (best >= 0 && th[best].log[pos[best]].time < *limit)
				*limit = th[best].log[pos[best]].time;
			best = i;
		} else if (f < *limit) {
			*limit = f;
		}
	}
	return best;
}

/*
 * Writes the threads' logs merged by time into S, with a call per event
 * (the recorder's mst_writer_alloc/free) or, with RUNS, as the recorder's
 * writer thread does: each thread's events as 32-byte ring slots handed
 * to mst_writer_put_run a run at a time (up to the next thread's front),
 * the events it leaves one call each. Returns the seconds it took
 * (converting the logs to slots not counted), or -1.
 */
static double write_trace(const struct mst_writer_options *opts, struct sink *s,
			  struct thread *th, uint64_t base, int runs, uint64_t *done)
{
	struct mst_writer_options o = *opts;
	struct mst_event *slots[THREADS] = { 0 };
	size_t *index[THREADS] = { 0 }, pos[THREADS] = { 0 }, nslot[THREADS] = { 0 };
	struct mst_writer *w;
	struct mst_record rec;
	double t0;

	for (int i = 0; runs && i < THREADS; i++) {
		/* a realloc's old address rides in an extension slot */
		slots[i] = xmalloc(2 * th[i].nlog * sizeof(struct mst_event) + 1);
		index[i] = xmalloc((th[i].nlog + 1) * sizeof(size_t));
		for (size_t k = 0; k < th[i].nlog; k++) {
			const struct ev *e = &th[i].log[k];
			struct mst_event *x = &slots[i][nslot[i]];

			index[i][k] = nslot[i];
			*x = (struct mst_event){ e->type == MST_REC_ALLOC ? MST_EVENT_ALLOC : MST_EVENT_FREE,
				e->func, e->func == MST_ALLOC_REALLOC && e->type == MST_REC_ALLOC ? 2 : 1,
				e->stack, e->time, e->addr, e->size };
			if (x->nslots == 2)
				*(struct mst_event_ext *)(x + 1) = (struct mst_event_ext){ e->old, 0, { 0, 0 } };
			nslot[i] += x->nslots;
		}
		index[i][th[i].nlog] = nslot[i];
	}
	/* room for the whole trace, touched now: growing it while timed
	 * would time page faults */
	{
		uint64_t n = 0;

		for (int i = 0; i < THREADS; i++)
			n += th[i].nlog;
		s->cap = n * 8 + (1u << 20);
		s->p = xmalloc(s->cap);
		memset(s->p, 0, s->cap);
		s->len = 0;
	}
	o.sink = mem_sink;
	o.sink_ctx = s;
	if (mst_writer_open(&w, -1, &o) != MST_OK) {
		fprintf(stderr, "bench: %s\n", mst_writer_error(w));
		return -1;
	}
	prologue(w);
	*done = 0;
	t0 = now();
	for (;;) {
		uint64_t limit;
		int b = earliest(th, pos, &limit);

		if (b < 0)
			break;
		if (!runs) {
			if (put_event(w, &th[b].log[pos[b]++], base) != MST_OK)
				break;
			++*done;
			continue;
		}
		if (limit <= th[b].log[pos[b]].time)
			limit = th[b].log[pos[b]].time + 1;
		struct mst_run run = { slots[b], ~0ull, index[b][pos[b]], nslot[b], (uint64_t)b + 1,
				       limit, base, 1ull << 32, 8 };
		long got = mst_writer_put_run(w, &run);

		if (got < 0)
			break;
		pos[b] += (size_t)got;
		*done += (uint64_t)got;
		if (pos[b] < th[b].nlog && th[b].log[pos[b]].time < limit) {
			if (put_event(w, &th[b].log[pos[b]++], base) != MST_OK)
				break;
			++*done;
		}
	}
	/* add() says why an event was refused, if one was. */
	rec = (struct mst_record){ .type = MST_REC_END };
	rec.u.end = (struct mst_end){ mst_writer_last_time(w), MST_END_EXIT, 0, *done, 0 };
	add(w, &rec);
	if (mst_writer_close(w) != MST_OK)
		return -1;
	t0 = now() - t0;
	for (int i = 0; i < THREADS; i++) {
		free(slots[i]);
		free(index[i]);
	}
	return t0;
}

int main(int argc, char **argv)
{
	int churn_only = 0;
	char **args;
	int nargs;

	while (argc > 1 && argv[1][0] == '-') {
		if (strcmp(argv[1], "--churn-only") == 0) {
			churn_only = 1;
		} else if (strcmp(argv[1], "--pattern") == 0 && argc > 2) {
			recent = strcmp(argv[2], "recent") == 0;
			argv++, argc--;
		} else {
			fputs("usage: libtrace [--churn-only] [--pattern random|recent] "
			      "[EVENTS [CHUNK_KIB [LEVEL]]]\n", stderr);
			return 2;
		}
		argv++, argc--;
	}
	args = argv;
	nargs = argc;
	uint64_t nevents = nargs > 1 ? strtoull(args[1], NULL, 10) : 10000000;
	size_t chunk = (nargs > 2 ? strtoull(args[2], NULL, 10) : 256) << 10;
	int level = nargs > 3 ? atoi(args[3]) : 3;
	struct mst_writer_options o = { .chunk_size = chunk, .zstd_level = level };
	struct thread th[THREADS];
	pthread_t tid[THREADS];
	static struct sink s, s2;
	struct mst_reader *r;
	const struct mst_record *got;
	double wtime, wrun, rtime, t0;
	uint64_t done = 0, done2 = 0, nread = 0, base;
	int fd, st, same;

	for (int i = 0; i < THREADS; i++) {
		th[i] = (struct thread){ .index = i + 1, .rng = 0x9e3779b97f4a7c15ull * (i + 1),
					 .nevents = nevents / THREADS };
		th[i].log = xmalloc(th[i].nevents * sizeof(struct ev));
	}
	for (int i = 0; i < THREADS; i++)
		pthread_create(&tid[i], NULL, churn, &th[i]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	if (churn_only)
		return 0;
	base = th[0].log[0].time;
	for (int i = 0; i < THREADS; i++)
		if (th[i].nlog && th[i].log[0].time < base)
			base = th[i].log[0].time;

	/* each way three times, alternately, the best of each kept: the
	 * machine's load moves single runs by more than the difference */
	wtime = wrun = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double a, b;

		free(s.p);
		free(s2.p);
		a = write_trace(&o, &s, th, base, 0, &done);
		b = write_trace(&o, &s2, th, base, 1, &done2);
		if (a < 0 || b < 0)
			return 1;
		if (a < wtime)
			wtime = a;
		if (b < wrun)
			wrun = b;
	}
	same = done == done2 && s.len == s2.len && !memcmp(s.p, s2.p, s.len);

	fd = memfd_create("bench", 0);
	if (fd < 0 || write(fd, s.p, s.len) != (ssize_t)s.len)
		return 1;
	lseek(fd, 0, SEEK_SET);
	t0 = now();
	st = mst_reader_open_fd(&r, fd, "bench");
	while (st == MST_OK && (st = mst_reader_next(r, &got)) == MST_OK)
		nread += got->type == MST_REC_ALLOC || got->type == MST_REC_FREE;
	rtime = now() - t0;
	if (st != MST_END || nread != done) {
		fprintf(stderr, "bench: read back %llu of %llu events: %s\n",
			(unsigned long long)nread, (unsigned long long)done, mst_reader_error(r));
		return 1;
	}
	mst_reader_close(r);
	close(fd);

	printf("pattern=%s events=%llu threads=%d chunk_kib=%zu zstd_level=%d\n",
	       recent ? "recent" : "random", (unsigned long long)done, THREADS,
	       chunk >> 10, level);
	printf("trace_bytes=%zu\n", s.len);
	printf("bytes_per_event=%.3f\n", (double)s.len / done);
	printf("writer_events_per_s=%.0f\n", done / wtime);
	printf("writer_run_events_per_s=%.0f\n", done / wrun);
	printf("writer_run_same_bytes=%d\n", same);
	printf("reader_events_per_s=%.0f\n", done / rtime);
	free(s.p);
	free(s2.p);
	for (int i = 0; i < THREADS; i++)
		free(th[i].log);
	return 0;
}
