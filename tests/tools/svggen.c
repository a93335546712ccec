/*
 * svggen - writes synthetic traces through libtrace's writer for ms-svg's
 * tests: the shapes a chart must survive (no events, one event, a thousand
 * threads, ten hours, a sampled trace, a cut-short one) with figures known
 * in advance, so a test can compare what ms-svg labels with msdump
 * --summary on the same file.
 *
 *   svggen KIND [-o FILE] [--no-end]
 *   KIND: empty, one, sawtooth, threads, long, sampled
 *
 * Writes to FILE or stdout. --no-end leaves the END record out (a
 * truncated trace). Exit 0, 1 on a write error, 2 usage.
 */
#include "mstrace.h"
#include "mscommon.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TPS 1000000000ULL

static struct mst_writer *w;
static uint64_t now, events;
static int failed;

static void add(struct mst_record *rec)
{
	if (!failed && mst_writer_add(w, rec) < 0) {
		msc_error("cannot write the trace: %s", mst_writer_error(w));
		failed = 1;
	}
}

static void header(uint64_t sample_ppm)
{
	static const char *const argv[] = { "./synthetic", "--shape" };
	struct mst_record rec = { .type = MST_REC_HEADER };
	struct mst_header *h = &rec.u.header;
	h->ticks_per_second = TPS;
	h->start_wall_ns = 1795369661000000000ULL;  /* 2026-11-22 17:47:41 UTC */
	h->pid = 4242;
	h->ppid = 1;
	memcpy(h->session_id, "svggen-session-1", 16);
	h->program = "/usr/local/bin/synthetic";
	h->argc = 2;
	h->argv = argv;
	h->sample_rate_ppm = sample_ppm;
	h->unwinder = MST_UNWIND_FP;
	h->stack_depth = 8;
	h->allocator = "glibc";
	h->hostname = "testhost";
	add(&rec);
}

static void thread(uint64_t t, uint64_t idx, const char *name)
{
	struct mst_record rec = { .type = MST_REC_THREAD_START };
	rec.u.thread_start.time = t;
	rec.u.thread_start.thread = idx;
	rec.u.thread_start.tid = 4241 + idx;
	rec.u.thread_start.parent = idx > 1 ? 1 : 0;
	add(&rec);
	if (name) {
		rec.type = MST_REC_THREAD_NAME;
		rec.u.thread_name.time = t;
		rec.u.thread_name.thread = idx;
		rec.u.thread_name.name = name;
		add(&rec);
	}
}

/* Stack nodes 1..: a main -> work -> leaf chain per leaf. */
static void stack(uint64_t parent, uint64_t ip)
{
	struct mst_record rec = { .type = MST_REC_STACK };
	rec.u.stack.parent = parent;
	rec.u.stack.ip = ip;
	add(&rec);
}

static void alloc(uint64_t t, uint64_t th, uint64_t addr, uint64_t size, uint64_t st)
{
	struct mst_record rec = { .type = MST_REC_ALLOC };
	rec.u.alloc.time = now = t;
	rec.u.alloc.thread = th;
	rec.u.alloc.func = MST_ALLOC_MALLOC;
	rec.u.alloc.addr = addr;
	rec.u.alloc.size = size;
	rec.u.alloc.stack = st;
	add(&rec);
	events++;
}

static void release(uint64_t t, uint64_t th, uint64_t addr)
{
	struct mst_record rec = { .type = MST_REC_FREE };
	rec.u.free.time = now = t;
	rec.u.free.thread = th;
	rec.u.free.func = MST_FREE_FREE;
	rec.u.free.addr = addr;
	add(&rec);
	events++;
}

static void rss(uint64_t t, uint64_t bytes)
{
	struct mst_counter c[2] = { { MST_CTR_RSS, bytes }, { MST_CTR_ARENA, bytes * 3 / 4 } };
	struct mst_record rec = { .type = MST_REC_COUNTERS };
	rec.u.counters.time = now = t;
	rec.u.counters.count = 2;
	rec.u.counters.items = c;
	add(&rec);
}

static void end(void)
{
	struct mst_record rec = { .type = MST_REC_END };
	rec.u.end.time = now;
	rec.u.end.reason = MST_END_EXIT;
	rec.u.end.status = 0;
	rec.u.end.events = events;
	add(&rec);
}

/*
 * Ten one-second cycles: 100 blocks of (i+1) KiB from three threads, all
 * freed at 0.6 s into the cycle, but in cycle 7 an 8 MiB block lives from
 * 7.55 s to 7.56 s (the peak: 5050 KiB + 8 MiB = 13559808 bytes), and the
 * first three blocks of the last cycle are never freed (6 KiB leaked).
 */
static void sawtooth(uint64_t sample_ppm)
{
	uint64_t c, i, live = 0;
	header(sample_ppm);
	thread(0, 1, "main");
	thread(0, 2, "worker");
	thread(0, 3, "io");
	/* main(0x401000) -> parse(0x401100) -> leaf 0x401200 + k */
	stack(0, 0x401000);
	stack(1, 0x401100);
	stack(1, 0x401300);
	for (i = 0; i < 4; i++)
		stack(i < 2 ? 2 : 3, 0x401200 + i * 0x10);
	for (c = 0; c < 10; c++) {
		uint64_t base = c * TPS;
		for (i = 0; i < 100; i++) {
			alloc(base + i * 5000000, i % 3 + 1, 0x10000000 + i * 0x100000,
			      (i + 1) * 1024, 4 + i % 4);
			live += (i + 1) * 1024;
			if (i % 20 == 0)
				rss(now, (20ULL << 20) + live);
		}
		if (c == 7) {
			alloc(base + 550000000, 2, 0x20000000, 8ULL << 20, 5);
			release(base + 560000000, 2, 0x20000000);
		}
		for (i = 0; i < 100; i++) {
			if (c == 9 && i < 3)
				continue;
			release(base + 600000000 + i * 1000000, i % 3 + 1,
				0x10000000 + i * 0x100000);
			live -= (i + 1) * 1024;
		}
		rss(now, (20ULL << 20) + live);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "no-end", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *kind;
	struct mst_writer_options wo = { 0 };
	int c, fd = STDOUT_FILENO, no_end = 0;
	uint64_t i, j;

	msc_set_prog("svggen");
	while ((c = getopt_long(argc, argv, "o:n", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 'n')
			no_end = 1;
		else
			return 2;
	}
	if (optind + 1 != argc) {
		fputs("usage: svggen empty|one|sawtooth|threads|long|sampled [-o FILE] [--no-end]\n", stderr);
		return 2;
	}
	kind = argv[optind];
	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		perror(out);
		return 1;
	}
	if (mst_writer_open(&w, fd, &wo) < 0) {
		msc_error("cannot open the writer");
		return 1;
	}
	if (strcmp(kind, "empty") == 0) {
		header(1000000);
		thread(0, 1, "main");
	} else if (strcmp(kind, "one") == 0) {
		header(1000000);
		thread(0, 1, "main");
		alloc(1000, 1, 0x1000, 4096, 0);
	} else if (strcmp(kind, "sawtooth") == 0) {
		sawtooth(1000000);
	} else if (strcmp(kind, "sampled") == 0) {
		sawtooth(100000);
	} else if (strcmp(kind, "threads") == 0) {
		/* A thousand threads, thread k allocating k blocks of 64 B then
		 * freeing all but one. */
		header(1000000);
		for (i = 1; i <= 1000; i++) {
			char name[32];
			snprintf(name, sizeof(name), "pool-%llu", (unsigned long long)i);
			thread(i * 1000, i, name);
		}
		for (i = 1; i <= 1000; i++)
			for (j = 0; j < i % 50 + 1; j++)
				alloc(1000000 + i * 10000 + j, i, (i << 20) + j * 64, 64, 0);
		for (i = 1; i <= 1000; i++)
			for (j = 1; j < i % 50 + 1; j++)
				release(20000000 + i * 10000 + j, i, (i << 20) + j * 64);
	} else if (strcmp(kind, "long") == 0) {
		/* Ten hours, a block a second, a slow leak of one in ten. */
		header(1000000);
		thread(0, 1, "main");
		for (i = 0; i < 36000; i++) {
			alloc(i * TPS, 1, 0x100000 + i * 4096, 1000 + i % 3000, 0);
			if (i % 10)
				release(i * TPS + TPS / 2, 1, 0x100000 + i * 4096);
		}
	} else {
		msc_error("unknown kind '%s'", kind);
		return 2;
	}
	if (!no_end)
		end();
	if (mst_writer_close(w) < 0 && !failed) {
		msc_error("cannot write the trace");
		failed = 1;
	}
	if (out && close(fd) < 0)
		failed = 1;
	return failed ? 1 : 0;
}
