/*
 * mkgolden - writes the small synthetic traces whose figures are computed
 * by hand in tests/golden/ (one .json per scenario) (see tests/golden/README): each scenario
 * exercises one rule of the analysis model.
 *
 *   mkgolden SCENARIO FILE      scenarios: basic realloc threads sampled
 *                               unknown dropped truncated modules symbols churn
 *                               realloc-reuse (figures in its comment)
 *   mkgolden churn FILE N       N rounds of a steady allocation churn, for
 *                               throughput and flat-memory benchmarks
 *   mkgolden bulk FILE K        2^K blocks live at once, then all freed
 *
 * Times are in nanoseconds (ticks_per_second 1e9); MS(x) is x milliseconds.
 */
#include "mstrace.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS(x) ((uint64_t)((x) * 1000000.0))

static struct mst_writer *w;
static uint64_t nstacks;

static void add(const struct mst_record *r)
{
	int s = mst_writer_add(w, r);
	if (s != MST_OK) {
		fprintf(stderr, "mkgolden: %s\n", mst_writer_error(w));
		exit(1);
	}
}

static void header(uint64_t ppm, uint8_t unwinder)
{
	static const char *argv[] = { "/golden/app", "--golden" };
	struct mst_record r = { .type = MST_REC_HEADER };
	struct mst_header *h = &r.u.header;
	int i;
	h->ticks_per_second = 1000000000ull;
	h->start_wall_ns = 1767225600ull * 1000000000ull + 250000000ull; /* 2026-01-01T00:00:00.250Z */
	h->pid = 4242;
	h->ppid = 1;
	for (i = 0; i < 16; i++)
		h->session_id[i] = (uint8_t)(0xa0 + i);
	h->program = "/golden/app";
	h->argc = 2;
	h->argv = argv;
	h->sample_rate_ppm = ppm;
	h->unwinder = unwinder;
	h->stack_depth = 64;
	h->allocator = "glibc";
	h->hostname = "golden";
	add(&r);
}

static uint64_t stack(uint64_t parent, uint64_t ip)
{
	struct mst_record r = { .type = MST_REC_STACK };
	r.u.stack.parent = parent;
	r.u.stack.ip = ip;
	add(&r);
	return ++nstacks;
}

static void alloc_f(uint64_t t, uint64_t th, uint8_t func, uint64_t addr,
		    uint64_t size, uint64_t st, uint64_t old)
{
	struct mst_record r = { .type = MST_REC_ALLOC };
	r.u.alloc.time = t;
	r.u.alloc.thread = th;
	r.u.alloc.func = func;
	r.u.alloc.addr = addr;
	r.u.alloc.size = size;
	r.u.alloc.stack = st;
	r.u.alloc.old_addr = old;
	add(&r);
}

static void alloc(uint64_t t, uint64_t th, uint64_t addr, uint64_t size, uint64_t st)
{
	alloc_f(t, th, MST_ALLOC_MALLOC, addr, size, st, 0);
}

static void free_f(uint64_t t, uint64_t th, uint8_t func, uint64_t addr, uint64_t st)
{
	struct mst_record r = { .type = MST_REC_FREE };
	r.u.free.time = t;
	r.u.free.thread = th;
	r.u.free.func = func;
	r.u.free.addr = addr;
	r.u.free.stack = st;
	add(&r);
}

static void release(uint64_t t, uint64_t th, uint64_t addr)
{
	free_f(t, th, MST_FREE_FREE, addr, 0);
}

static void thread(uint64_t t, uint64_t th, uint64_t tid, const char *name)
{
	struct mst_record r = { .type = MST_REC_THREAD_START };
	r.u.thread_start.time = t;
	r.u.thread_start.thread = th;
	r.u.thread_start.tid = tid;
	add(&r);
	if (name) {
		r.type = MST_REC_THREAD_NAME;
		r.u.thread_name.time = t;
		r.u.thread_name.thread = th;
		r.u.thread_name.name = name;
		add(&r);
	}
}

static void end(uint64_t t)
{
	struct mst_record r = { .type = MST_REC_END };
	r.u.end.time = t;
	r.u.end.reason = MST_END_EXIT;
	r.u.end.status = 0;
	r.u.end.events = mst_writer_events(w);
	add(&r);
}

static void module(uint64_t t, uint64_t id, const char *path, uint64_t base)
{
	struct mst_segment seg = { 0, 0x10000, 0, MST_SEG_EXEC | MST_SEG_READ };
	struct mst_record r = { .type = MST_REC_MODULE_LOAD };
	r.u.module_load.time = t;
	r.u.module_load.module = id;
	r.u.module_load.base = base;
	r.u.module_load.path = path;
	r.u.module_load.nsegs = 1;
	r.u.module_load.segs = &seg;
	add(&r);
}

/* Peak attribution, leaks, temporaries, histograms, lifetimes. */
static void basic(void)
{
	uint64_t a, b, c;
	header(1000000, MST_UNWIND_FP);
	thread(0, 1, 100, "main");
	a = stack(0, 0x1000);
	b = stack(0, 0x2000);
	c = stack(a, 0x3000);
	alloc(MS(1), 1, 0x10000, 100, a);
	alloc(MS(2), 1, 0x20000, 200, b);
	alloc(MS(3), 1, 0x30000, 300, c);
	release(MS(4), 1, 0x20000);
	alloc(MS(5), 1, 0x40000, 150, a);
	release(MS(6), 1, 0x30000);
	alloc(MS(7), 1, 0x50000, 500, b);
	release(MS(8), 1, 0x50000);
	release(MS(9), 1, 0x10000);
	end(MS(10));
}

/* Realloc in place, moved (another thread's record in between),
 * realloc(NULL, n) and realloc(p, 0). */
static void realloc_scn(void)
{
	uint64_t s;
	header(1000000, MST_UNWIND_DWARF);
	thread(0, 1, 100, NULL);
	thread(0, 2, 101, NULL);
	s = stack(0, 0x1000);
	alloc(MS(1), 1, 0x1000, 100, s);
	alloc_f(MS(2), 1, MST_ALLOC_REALLOC, 0x1000, 200, s, 0x1000);
	free_f(MS(3), 1, MST_FREE_REALLOC, 0x1000, 0);
	alloc(MS(4), 2, 0x9000, 50, s);
	alloc_f(MS(5), 1, MST_ALLOC_REALLOC, 0x2000, 400, s, 0x1000);
	alloc_f(MS(6), 1, MST_ALLOC_REALLOC, 0x3000, 10, s, 0);
	free_f(MS(7), 1, MST_FREE_REALLOC, 0x3000, 0);
	release(MS(8), 2, 0x9000);
	end(MS(9));
}

/* A realloc that moves, and another thread given its old address between
 * the realloc's FREE and its ALLOC (the call took a while: glibc's mremap
 * of a large block, the thread descheduled), holding it past the ALLOC.
 * Figures (not in tests/golden): allocations 3 (1 realloc), frees 1,
 * 330 bytes allocated, peak 230 (30 + 200), 200 bytes live at the end in
 * 1 block (0x2000), no unknown free, no double allocation. */
static void realloc_reuse(void)
{
	uint64_t s;
	header(1000000, MST_UNWIND_FP);
	thread(0, 1, 100, NULL);
	thread(0, 2, 101, NULL);
	s = stack(0, 0x1000);
	alloc(MS(1), 1, 0x1000, 100, s);
	free_f(MS(2), 1, MST_FREE_REALLOC, 0x1000, 0);
	alloc(MS(3), 2, 0x1000, 30, s);
	alloc_f(MS(4), 1, MST_ALLOC_REALLOC, 0x2000, 200, s, 0x1000);
	release(MS(5), 2, 0x1000);
	end(MS(6));
}

/* Frees of memory another thread allocated. */
static void threads(void)
{
	uint64_t s;
	header(1000000, MST_UNWIND_FP);
	thread(0, 1, 100, "main");
	thread(MS(0.5), 2, 101, "worker");
	s = stack(0, 0x1000);
	alloc(MS(1), 1, 0x1000, 100, s);
	alloc(MS(2), 1, 0x2000, 200, s);
	release(MS(3), 2, 0x1000);
	release(MS(4), 1, 0x2000);
	alloc(MS(5), 2, 0x3000, 300, s);
	release(MS(6), 1, 0x3000);
	{
		struct mst_record r = { .type = MST_REC_THREAD_EXIT };
		r.u.thread_exit.time = MS(7);
		r.u.thread_exit.thread = 2;
		add(&r);
	}
	end(MS(8));
}

/* 25% sampling: every figure is scaled by 4; the free of an address the
 * trace never allocated is expected. */
static void sampled(void)
{
	uint64_t s;
	header(250000, MST_UNWIND_FP);
	thread(0, 1, 100, NULL);
	s = stack(0, 0x1000);
	alloc(MS(1), 1, 0x1000, 100, s);
	alloc(MS(2), 1, 0x2000, 300, s);
	release(MS(3), 1, 0x1000);
	release(MS(4), 1, 0x7777);
	end(MS(5));
}

/* A free of an unknown address and an allocation of a live address; with
 * DROPPED (drop mode: events the recorder dropped, counted), the same
 * sequence, where both are expected (the dropped events may have been the
 * allocation freed and the free of the block allocated again). */
static void unknown(int dropped)
{
	struct mst_record r = { .type = MST_REC_DROPPED };
	uint64_t s;
	header(1000000, MST_UNWIND_NONE);
	thread(0, 1, 100, NULL);
	s = stack(0, 0x1000);
	alloc(MS(1), 1, 0x1000, 100, s);
	if (dropped) {
		r.u.dropped.time = MS(1.5);
		r.u.dropped.thread = 1;
		r.u.dropped.events = 5;
		r.u.dropped.bytes = 500;
		add(&r);
	}
	release(MS(2), 1, 0x5000);
	alloc(MS(3), 1, 0x1000, 50, s);
	release(MS(4), 1, 0x1000);
	end(MS(5));
}

/* Two chunks; the file is cut inside the second (see main). */
static void truncated(void)
{
	uint64_t s;
	header(1000000, MST_UNWIND_FP);
	thread(0, 1, 100, NULL);
	s = stack(0, 0x1000);
	alloc(MS(1), 1, 0x1000, 100, s);
	alloc(MS(2), 1, 0x2000, 200, s);
	mst_writer_flush(w);
	release(MS(3), 1, 0x1000);
	alloc(MS(4), 1, 0x3000, 1000, s);
	end(MS(5));
	mst_writer_flush(w);
}

/* Modules (memory crossing a boundary), labels, tasks, counters. */
static void modules(void)
{
	uint64_t s1, s2, f1;
	struct mst_record r;
	struct mst_counter ctr[2];
	header(1000000, MST_UNWIND_DWARF);
	thread(0, 1, 100, NULL);
	module(0, 1, "/golden/app", 0x400000);
	module(0, 2, "/golden/libx.so", 0x7f0000000000ull);
	s1 = stack(0, 0x401000);
	s2 = stack(0, 0x7f0000001000ull);
	f1 = stack(0, 0x402000);

	memset(&r, 0, sizeof(r));
	r.type = MST_REC_TASK_BEGIN;
	r.u.task_begin.time = MS(0.5);
	r.u.task_begin.thread = 1;
	r.u.task_begin.task = 1;
	r.u.task_begin.name = "load";
	add(&r);
	alloc(MS(1), 1, 0x1000, 100, s1);
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_LABEL;
	r.u.label.time = MS(1);
	r.u.label.thread = 1;
	r.u.label.addr = 0x1000;
	r.u.label.name = "buf";
	r.u.label.type = "char[]";
	add(&r);
	alloc(MS(2), 1, 0x2000, 200, s2);
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_TASK_END;
	r.u.task_end.time = MS(2.5);
	r.u.task_end.thread = 1;
	r.u.task_end.task = 1;
	add(&r);

	ctr[0].key = MST_CTR_RSS;
	ctr[0].value = 1048576;
	ctr[1].key = MST_CTR_ARENA;
	ctr[1].value = 524288;
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_COUNTERS;
	r.u.counters.time = MS(3);
	r.u.counters.count = 2;
	r.u.counters.items = ctr;
	add(&r);

	free_f(MS(4), 1, MST_FREE_FREE, 0x2000, f1);
	free_f(MS(5), 1, MST_FREE_FREE, 0x1000, f1);
	alloc(MS(6), 1, 0x3000, 300, s2);

	ctr[0].value = 2097152;
	r.u.counters.time = MS(7);
	r.u.counters.count = 1;
	add(&r);
	end(MS(8));
}

/* An embedded symbol table (as ms-convert --symbolize writes) for a
 * module whose file does not exist: names come from the trace alone. */
static void symbols(void)
{
	static const struct mst_symbol tab[] = {
		{ 0x1000, 0x100, "parse_config", "src/config.c", 42 },
		{ 0x2000, 0x80, "_ZN3foo3barEv", "src/foo.cc", 7 },
	};
	struct mst_record r = { .type = MST_REC_SYMBOLS };
	uint64_t outer, leaf;
	header(1000000, MST_UNWIND_DWARF);
	thread(0, 1, 100, NULL);
	module(0, 1, "/nonexistent/golden/app", 0x400000);
	r.u.symbols.module = 1;
	r.u.symbols.count = 2;
	r.u.symbols.items = tab;
	add(&r);
	outer = stack(0, 0x402005);   /* a return address: looked up at 0x402004 */
	leaf = stack(outer, 0x401010);
	alloc(MS(1), 1, 0x1000, 64, leaf);
	end(MS(2));
}

/* A steady churn: each round allocates 8 blocks from 16 sites and frees
 * them again, with a slowly growing set of 1000 long-lived blocks. */
static void churn(uint64_t rounds)
{
	uint64_t st[16], t = 0, i, k;
	header(1000000, MST_UNWIND_FP);
	thread(0, 1, 100, NULL);
	for (k = 0; k < 16; k++)
		st[k] = stack(k ? st[k - 1] : 0, 0x401000 + k * 0x40);
	for (i = 0; i < rounds; i++) {
		uint64_t base = 0x10000000 + (i % 4096) * 0x1000;
		for (k = 0; k < 8; k++)
			alloc(t += 50, 1, base + k * 0x80, 16 + (k * 24 + i) % 200, st[(i + k) % 16]);
		for (k = 0; k < 8; k++)
			release(t += 30, 1, base + k * 0x80);
		if (i % 1024 == 0) {
			uint64_t a = 0x80000000ull + (i / 1024 % 1000) * 0x100;
			if (i / 1024 >= 1000)
				release(t += 10, 1, a);
			alloc(t += 10, 1, a, 64, st[15]);
		}
	}
	end(t + 100);
}

/* N blocks live at once from 64 sites, then freed in a scrambled order:
 * the live set at its largest. */
static void bulk(uint64_t n)
{
	uint64_t st[64], t = 0, i, k;
	header(1000000, MST_UNWIND_FP);
	thread(0, 1, 100, NULL);
	for (k = 0; k < 64; k++)
		st[k] = stack(0, 0x401000 + k * 0x40);
	for (i = 0; i < n; i++)
		alloc(t += 20, 1, 0x10000000 + i * 0x40, 16 + i % 48, st[i % 64]);
	/* i * 0x9E3779B1 mod 2^k visits every index once when n is 2^k */
	for (i = 0; i < n; i++)
		release(t += 20, 1, 0x10000000 + ((i * 0x9E3779B1ull) & (n - 1)) * 0x40);
	end(t + 100);
}

int main(int argc, char **argv)
{
	struct mst_writer_options o = { 0 };
	const char *scn;
	int fd;
	if (argc < 3) {
		fprintf(stderr, "usage: mkgolden SCENARIO FILE [ROUNDS]\n");
		return 2;
	}
	scn = argv[1];
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	if (mst_writer_open(&w, fd, &o) != MST_OK) {
		fprintf(stderr, "mkgolden: cannot open writer\n");
		return 1;
	}
	if (!strcmp(scn, "basic"))
		basic();
	else if (!strcmp(scn, "realloc"))
		realloc_scn();
	else if (!strcmp(scn, "realloc-reuse"))
		realloc_reuse();
	else if (!strcmp(scn, "threads"))
		threads();
	else if (!strcmp(scn, "sampled"))
		sampled();
	else if (!strcmp(scn, "unknown"))
		unknown(0);
	else if (!strcmp(scn, "dropped"))
		unknown(1);
	else if (!strcmp(scn, "truncated"))
		truncated();
	else if (!strcmp(scn, "modules"))
		modules();
	else if (!strcmp(scn, "symbols"))
		symbols();
	else if (!strcmp(scn, "bulk"))
		bulk(1ull << (argc > 3 ? strtoull(argv[3], NULL, 10) : 20));
	else if (!strcmp(scn, "churn"))
		churn(argc > 3 ? strtoull(argv[3], NULL, 10) : 100000);
	else {
		fprintf(stderr, "mkgolden: unknown scenario '%s'\n", scn);
		return 2;
	}
	if (mst_writer_close(w) != MST_OK) {
		fprintf(stderr, "mkgolden: write failed\n");
		return 1;
	}
	if (!strcmp(scn, "truncated")) {
		/* Cut the last chunk short: only the first chunk stays whole. */
		struct stat stt;
		if (fstat(fd, &stt) < 0 || ftruncate(fd, stt.st_size - 5) < 0) {
			perror(argv[2]);
			return 1;
		}
	}
	close(fd);
	return 0;
}
