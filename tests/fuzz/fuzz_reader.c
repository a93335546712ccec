/*
 * fuzz_reader.c - libFuzzer target for libtrace's streaming reader: the
 * input goes through a memfd (a real descriptor, as files and pipes are),
 * is read to the end, and every table the reader keeps is queried the way
 * tools do (stack frames and module_at per frame, modules, thread names).
 * Built with `make fuzz` (clang, -fsanitize=fuzzer) and, with
 * replay_driver.c, as a plain program that `make test` runs on the corpus
 * (tests/fuzz/corpus/reader: seeds from `mkfixtures --corpus`, and fuzzed-*
 * inputs that a `make fuzz` run found adding coverage). Each input is also
 * read the way mst_model_read reads (events in batches, decoded ahead on
 * the read-ahead thread), which must give the same events, status and error.
 */
#include "mstrace.h"
#include "model_feed.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

static void query(const struct mst_reader *r, const struct mst_record *rec)
{
	uint64_t ips[32], stack = 0, addr = 0, thread = 0;
	size_t n;

	switch (rec->type) {
	case MST_REC_ALLOC:
		stack = rec->u.alloc.stack;
		addr = rec->u.alloc.addr;
		thread = rec->u.alloc.thread;
		break;
	case MST_REC_FREE:
		stack = rec->u.free.stack;
		addr = rec->u.free.addr;
		thread = rec->u.free.thread;
		break;
	case MST_REC_STACK:
		stack = rec->u.stack.id;
		break;
	case MST_REC_MODULE_LOAD:
		(void)mst_reader_module(r, rec->u.module_load.module);
		addr = rec->u.module_load.base;
		break;
	default:
		return;
	}
	n = mst_reader_stack_frames(r, stack, ips, 32);
	for (size_t i = 0; i < n && i < 32; i++) {
		const struct mst_module_load *m = mst_reader_module_at(r, ips[i]);
		if (m && !m->path)
			abort();        /* a module always has a path */
	}
	(void)mst_reader_stack_node(r, stack, &addr, &addr);
	(void)mst_reader_module_at(r, addr);
	(void)mst_reader_thread_name(r, thread);
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Mutated chunks almost never keep a matching crc, which would stop the
 * fuzzer at the crc check. Unless bit 0 of the preamble's last reserved
 * byte is set (so crc failures are fuzzed too), rewrite each whole chunk's
 * crc. It depends on the input only, so a replay does the same.
 */
static void fix_crcs(uint8_t *d, size_t size)
{
	size_t off = 16;

	if (size < 16 || (d[15] & 1))
		return;
	while (off + 20 <= size) {
		uint32_t stored = le32(d + off + 8), crc;
		if (stored > size - off - 20)
			break;
		crc = mst_crc32c(0, d + off + 4, 12);
		crc = mst_crc32c(crc, d + off + 20, stored);
		d[off + 16] = crc;
		d[off + 17] = crc >> 8;
		d[off + 18] = crc >> 16;
		d[off + 19] = crc >> 24;
		off += 20 + stored;
	}
}

/* What a reading gave: a digest of its events in order, and how it ended. */
struct outcome {
	uint64_t digest, events, records;
	int status;
	char err[400];
};

static void mix(struct outcome *o, uint64_t v)
{
	o->digest = (o->digest ^ v) * 0x100000001b3ull;
}

static void mix_event(struct outcome *o, int type, uint64_t time, uint64_t thread,
		      unsigned func, uint64_t addr, uint64_t size, uint64_t stack)
{
	mix(o, (uint64_t)type);
	mix(o, time);
	mix(o, thread);
	mix(o, func);
	mix(o, addr);
	mix(o, size);
	mix(o, stack);
	o->events++;
}

static void mix_record(struct outcome *o, const struct mst_record *rec)
{
	if (rec->type == MST_REC_ALLOC)
		mix_event(o, rec->type, rec->u.alloc.time, rec->u.alloc.thread, rec->u.alloc.func,
			  rec->u.alloc.addr, rec->u.alloc.size, rec->u.alloc.stack);
	else if (rec->type == MST_REC_FREE)
		mix_event(o, rec->type, rec->u.free.time, rec->u.free.thread, rec->u.free.func,
			  rec->u.free.addr, 0, rec->u.free.stack);
	else
		mix(o, 1000 + rec->type);
}

static void finish(struct outcome *o, struct mst_reader *r, int status)
{
	struct mst_reader_stats st;

	o->status = status;
	snprintf(o->err, sizeof(o->err), "%s", r ? mst_reader_error(r) : "");
	if (r) {
		mst_reader_stats(r, &st);
		o->records = st.records;
	}
}

/* Reads the input at memfd as mst_model_read does. */
static void read_ahead(struct outcome *o)
{
	static struct mst__event ev[256];
	const struct mst_record *rec;
	struct mst_reader *r;
	int s;

	if (lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	s = mst_reader_open_fd(&r, memfd, "fuzz");
	if (s == MST_OK)
		mst__reader_prefetch(r);
	while (s == MST_OK) {
		size_t n = mst__reader_events(r, ev, 256);
		for (size_t i = 0; i < n; i++)
			mix_event(o, mst__ev_type(&ev[i]), ev[i].time, ev[i].thread, mst__ev_func(&ev[i]),
				  ev[i].addr, mst__ev_size(&ev[i]), ev[i].stack);
		if (n)
			continue;
		if ((s = mst_reader_next(r, &rec)) == MST_OK)
			mix_record(o, rec);
	}
	finish(o, r, s);
	mst_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome plain = { 0 }, ahead = { 0 };
	struct mst_reader *r;
	const struct mst_record *rec;
	struct mst_reader_stats st;
	uint8_t *copy = malloc(size ? size : 1);
	int s;

	if (!copy)
		abort();
	memcpy(copy, data, size);
	fix_crcs(copy, size);
	data = copy;
	if (memfd < 0)
		memfd = memfd_create("fuzz", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 0) != 0 ||
	    (size && pwrite(memfd, data, size, 0) != (ssize_t)size) ||
	    lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	s = mst_reader_open_fd(&r, memfd, "fuzz");
	if (s == MST_OK) {
		if (!mst_reader_header(r))
			abort();
		while ((s = mst_reader_next(r, &rec)) == MST_OK) {
			query(r, rec);
			mix_record(&plain, rec);
		}
		/* Errors and the end are sticky. */
		if (mst_reader_next(r, &rec) != s)
			abort();
	}
	finish(&plain, r, s);
	if (r) {
		mst_reader_stats(r, &st);
		if (st.bytes > size)
			abort();
		(void)mst_reader_error(r);
	}
	mst_reader_close(r);
	read_ahead(&ahead);
	if (plain.digest != ahead.digest || plain.events != ahead.events ||
	    plain.records != ahead.records || plain.status != ahead.status ||
	    strcmp(plain.err, ahead.err) != 0) {
		fprintf(stderr, "read ahead differs: %llu/%llu events, %llu/%llu records, "
			"status %d/%d, '%s' / '%s'\n",
			(unsigned long long)plain.events, (unsigned long long)ahead.events,
			(unsigned long long)plain.records, (unsigned long long)ahead.records,
			plain.status, ahead.status, plain.err, ahead.err);
		abort();
	}
	free(copy);
	return 0;
}
