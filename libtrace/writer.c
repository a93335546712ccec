/*
 * writer.c - encodes records into chunks (schema/FORMAT.md §4, §5) and
 * hands each finished chunk to a sink or write(2).
 *
 * The writer runs inside the recorder's preload library, in its writer
 * thread and possibly in a fatal-signal handler, so every buffer and the
 * zstd context are allocated at open and reused: adding a record never
 * allocates. The one exception is a single record larger than the chunk
 * size (a huge argv, an embedded symbol table), which grows the buffers
 * once, up to the format's 16 MiB chunk limit.
 *
 * Memory: the chunk buffer (chunk_size), its compressed copy (a little
 * more), zstd's context, and ~300 KiB of per-thread delta state (address
 * chains and the FREE_RECENT windows of up to 512 threads per chunk).
 */
#include "mstrace.h"
#include "codec.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define DEFAULT_CHUNK (256u << 10)
/* Threads one chunk may hold; a chunk with more ends early (state resets). */
#define ADDR_TAB 1024
#define MAX_CHUNK_THREADS (ADDR_TAB / 2)
#define RECENT_BUCKETS 256            /* per window, see recent_find() */
#define RECENT_SHIFT (64 - __builtin_ctz(RECENT_BUCKETS))

#define DEFAULT_LEVEL 3

struct mst_writer {
	int fd;
	mst_sink_fn sink;
	void *sink_ctx;
	int level;                    /* -1: store every chunk */
	int append;

	size_t chunk_size;            /* target raw bytes per chunk */
	uint8_t *raw;                 /* the chunk being filled */
	size_t raw_len, raw_cap;
	uint8_t *out;                 /* chunk header + encoded payload */
	size_t out_cap;
	ZSTD_CCtx *cctx;

	/* Delta state of the chunk being filled (FORMAT.md §5). */
	uint64_t d_time;
	struct mst__addr_tab addrs;
	uint8_t *recent;              /* per window: bucket -> ring position + 1 */
	size_t last_slot;             /* addrs slot of the last event's thread */

	uint64_t last_time;           /* time order across chunks */
	uint64_t bytes, events, stacks;
	int header_done;
	int failed;                   /* sticky I/O status */
	char err[256];
};

static int fail(struct mst_writer *w, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct mst_writer *w, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	return status;
}

static int fd_sink(void *ctx, const void *buf, size_t len)
{
	struct mst_writer *w = ctx;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail(w, MST_ERR_IO, "write failed: %s", strerror(errno));
		}
		if (n == 0)
			return fail(w, MST_ERR_IO, "write failed: wrote nothing");
		p += n;
		len -= n;
	}
	return 0;
}

static int emit(struct mst_writer *w, const void *buf, size_t len)
{
	int st;

	if (w->sink) {
		st = w->sink(w->sink_ctx, buf, len);
		if (st < 0 && !w->err[0])
			fail(w, st, "sink failed: %s", mst_status_str(st));
	} else {
		st = fd_sink(w, buf, len);
	}
	if (st < 0) {
		w->failed = st;
		return st;
	}
	w->bytes += len;
	return 0;
}

/* Sizes the output buffer for a raw buffer of RAW_CAP bytes. */
static size_t out_cap_for(size_t raw_cap)
{
	return MST__CHUNK_HDR_LEN + ZSTD_compressBound(raw_cap);
}

int mst_writer_open(struct mst_writer **out, int fd,
		    const struct mst_writer_options *opts)
{
	struct mst_writer_options def = { 0 };
	struct mst_writer *w;
	int st;

	assert(out);
	*out = NULL;
	if (!opts)
		opts = &def;
	w = calloc(1, sizeof(*w));
	if (!w)
		return MST_ERR_NOMEM;
	*out = w;
	w->fd = fd;
	w->sink = opts->sink;
	w->sink_ctx = opts->sink_ctx;
	w->append = opts->append;
	w->level = opts->zstd_level ? opts->zstd_level : DEFAULT_LEVEL;
	w->chunk_size = opts->chunk_size ? opts->chunk_size : DEFAULT_CHUNK;
	if (w->chunk_size > MST__MAX_RAW)
		return fail(w, MST_ERR_INVALID, "chunk size %zu exceeds the format's %u",
			    w->chunk_size, MST__MAX_RAW);
	if (w->level > ZSTD_maxCLevel())
		return fail(w, MST_ERR_INVALID, "zstd level %d exceeds %d",
			    w->level, ZSTD_maxCLevel());

	w->raw_cap = w->chunk_size;
	w->out_cap = out_cap_for(w->raw_cap);
	w->raw = malloc(w->raw_cap);
	w->out = malloc(w->out_cap);
	w->addrs.cap = ADDR_TAB;
	w->addrs.slots = calloc(ADDR_TAB, sizeof(*w->addrs.slots));
	w->addrs.used = calloc(ADDR_TAB, sizeof(*w->addrs.used));
	w->addrs.ring = calloc((size_t)MAX_CHUNK_THREADS * MST__WINDOW, sizeof(uint64_t));
	w->addrs.ring_n = calloc(MAX_CHUNK_THREADS, sizeof(uint64_t));
	w->recent = calloc((size_t)MAX_CHUNK_THREADS * RECENT_BUCKETS, 1);
	if (!w->raw || !w->out || !w->addrs.slots || !w->addrs.used ||
	    !w->addrs.ring || !w->addrs.ring_n || !w->recent)
		return fail(w, MST_ERR_NOMEM, "cannot allocate %zu bytes of chunk buffers",
			    w->raw_cap + w->out_cap);
	(void)mst_crc32c(0, NULL, 0);     /* build the tables now, not in a handler */
	if (w->level != -1) {
		size_t r;
		w->cctx = ZSTD_createCCtx();
		if (!w->cctx)
			return fail(w, MST_ERR_NOMEM, "cannot create a zstd context");
		/* zstd allocates its workspace on first use, sized for the
		 * input: compress one full chunk of zeros now so that no later
		 * chunk allocates. */
		memset(w->raw, 0, w->raw_cap);
		r = ZSTD_compressCCtx(w->cctx, w->out, w->out_cap, w->raw,
				      w->raw_cap, w->level);
		if (ZSTD_isError(r))
			return fail(w, MST_ERR_INVALID, "zstd: %s", ZSTD_getErrorName(r));
	}
	if (!w->append) {
		uint8_t pre[MST__PREAMBLE_LEN] = { 0 };
		memcpy(pre, MST__MAGIC, MST__MAGIC_LEN);
		mst__put_le16(pre + 8, MST_FORMAT_MAJOR);
		mst__put_le16(pre + 10, MST_FORMAT_MINOR);
		st = emit(w, pre, sizeof(pre));
		if (st < 0)
			return st;
	}
	return MST_OK;
}

/* Compresses (or stores) the chunk being filled and hands it on. */
static int write_chunk(struct mst_writer *w)
{
	uint8_t *h = w->out;
	size_t stored = w->raw_len;
	uint8_t enc = MST__ENC_STORED;
	uint32_t crc;

	if (w->level != -1) {
		size_t r = ZSTD_compressCCtx(w->cctx, h + MST__CHUNK_HDR_LEN,
					     w->out_cap - MST__CHUNK_HDR_LEN,
					     w->raw, w->raw_len, w->level);
		if (ZSTD_isError(r)) {
			w->failed = MST_ERR_IO;
			return fail(w, MST_ERR_IO, "zstd: %s", ZSTD_getErrorName(r));
		}
		/* Incompressible data is stored: smaller, and cheaper to read. */
		if (r < w->raw_len) {
			stored = r;
			enc = MST__ENC_ZSTD;
		}
	}
	if (enc == MST__ENC_STORED)
		memcpy(h + MST__CHUNK_HDR_LEN, w->raw, w->raw_len);
	memcpy(h, MST__SYNC, 4);
	h[4] = enc;
	h[5] = 0;
	h[6] = h[7] = 0;
	mst__put_le32(h + 8, stored);
	mst__put_le32(h + 12, w->raw_len);
	crc = mst_crc32c(0, h + 4, 12);
	crc = mst_crc32c(crc, h + MST__CHUNK_HDR_LEN, stored);
	mst__put_le32(h + 16, crc);

	w->raw_len = 0;
	w->d_time = 0;
	mst__tab_clear(&w->addrs);
	return emit(w, h, MST__CHUNK_HDR_LEN + stored);
}

int mst_writer_flush(struct mst_writer *w)
{
	assert(w);
	if (w->failed)
		return w->failed;
	if (!w->raw_len)
		return MST_OK;
	return write_chunk(w);
}

static void put_str(struct mst__out *o, const char *s)
{
	if (!s)
		s = "";
	mst__put_bytes(o, s, strlen(s));
}

/* Encodes the body of a timed record's time field and moves the chain. */
static void put_time(struct mst__out *o, uint64_t *t, uint64_t time)
{
	mst__put_vu(o, time - *t);
	*t = time;
}

static void encode_body(struct mst__out *o, const struct mst_record *rec,
			uint64_t *t)
{
	switch (rec->type) {
	case MST_REC_HEADER: {
		const struct mst_header *h = &rec->u.header;
		mst__put_vu(o, h->ticks_per_second);
		mst__put_vu(o, h->start_wall_ns);
		mst__put_vu(o, h->pid);
		mst__put_vu(o, h->ppid);
		mst__put_bytes(o, h->session_id, sizeof(h->session_id));
		put_str(o, h->program);
		mst__put_vu(o, h->argc);
		for (uint64_t i = 0; i < h->argc && !o->overflow; i++)
			put_str(o, h->argv[i]);
		mst__put_vu(o, h->sample_rate_ppm);
		mst__put_u8(o, h->unwinder);
		mst__put_vu(o, h->stack_depth);
		mst__put_vu(o, h->flags);
		mst__put_vu(o, h->exec_generation);
		put_str(o, h->allocator);
		put_str(o, h->hostname);
		break;
	}
	case MST_REC_MODULE_LOAD: {
		const struct mst_module_load *m = &rec->u.module_load;
		put_time(o, t, m->time);
		mst__put_vu(o, m->module);
		mst__put_vu(o, m->base);
		put_str(o, m->path);
		mst__put_bytes(o, m->build_id, m->build_id_len);
		mst__put_vu(o, m->nsegs);
		for (uint32_t i = 0; i < m->nsegs; i++) {
			mst__put_vu(o, m->segs[i].vaddr);
			mst__put_vu(o, m->segs[i].memsz);
			mst__put_vu(o, m->segs[i].offset);
			mst__put_u8(o, m->segs[i].flags);
		}
		break;
	}
	case MST_REC_MODULE_UNLOAD:
		put_time(o, t, rec->u.module_unload.time);
		mst__put_vu(o, rec->u.module_unload.module);
		break;
	case MST_REC_THREAD_START:
		put_time(o, t, rec->u.thread_start.time);
		mst__put_vu(o, rec->u.thread_start.thread);
		mst__put_vu(o, rec->u.thread_start.tid);
		mst__put_vu(o, rec->u.thread_start.parent);
		break;
	case MST_REC_THREAD_NAME:
		put_time(o, t, rec->u.thread_name.time);
		mst__put_vu(o, rec->u.thread_name.thread);
		put_str(o, rec->u.thread_name.name);
		break;
	case MST_REC_THREAD_EXIT:
		put_time(o, t, rec->u.thread_exit.time);
		mst__put_vu(o, rec->u.thread_exit.thread);
		break;
	case MST_REC_COUNTERS:
		put_time(o, t, rec->u.counters.time);
		mst__put_vu(o, rec->u.counters.count);
		for (uint32_t i = 0; i < rec->u.counters.count; i++) {
			mst__put_vu(o, rec->u.counters.items[i].key);
			mst__put_vu(o, rec->u.counters.items[i].value);
		}
		break;
	case MST_REC_LABEL:
		put_time(o, t, rec->u.label.time);
		mst__put_vu(o, rec->u.label.thread);
		mst__put_vu(o, rec->u.label.addr);
		put_str(o, rec->u.label.name);
		put_str(o, rec->u.label.type);
		break;
	case MST_REC_TASK_BEGIN:
		put_time(o, t, rec->u.task_begin.time);
		mst__put_vu(o, rec->u.task_begin.thread);
		mst__put_vu(o, rec->u.task_begin.task);
		put_str(o, rec->u.task_begin.name);
		break;
	case MST_REC_TASK_END:
		put_time(o, t, rec->u.task_end.time);
		mst__put_vu(o, rec->u.task_end.thread);
		mst__put_vu(o, rec->u.task_end.task);
		break;
	case MST_REC_DROPPED:
		put_time(o, t, rec->u.dropped.time);
		mst__put_vu(o, rec->u.dropped.thread);
		mst__put_vu(o, rec->u.dropped.events);
		mst__put_vu(o, rec->u.dropped.bytes);
		break;
	case MST_REC_END:
		put_time(o, t, rec->u.end.time);
		mst__put_u8(o, rec->u.end.reason);
		mst__put_vs(o, rec->u.end.status);
		mst__put_vu(o, rec->u.end.events);
		mst__put_vu(o, rec->u.end.dropped);
		break;
	case MST_REC_SYMBOLS: {
		const struct mst_symbols *s = &rec->u.symbols;
		uint64_t prev = 0;
		mst__put_vu(o, s->module);
		mst__put_vu(o, s->count);
		for (uint64_t i = 0; i < s->count && !o->overflow; i++) {
			mst__put_vu(o, s->items[i].start - prev);
			prev = s->items[i].start;
			mst__put_vu(o, s->items[i].size);
			put_str(o, s->items[i].function);
			put_str(o, s->items[i].file);
			mst__put_vu(o, s->items[i].line);
		}
		break;
	}
	default:
		break;
	}
}

static const uint8_t ext_code[] = {
	[MST_REC_HEADER] = MST__T_HEADER,
	[MST_REC_MODULE_LOAD] = MST__T_MODULE_LOAD,
	[MST_REC_MODULE_UNLOAD] = MST__T_MODULE_UNLOAD,
	[MST_REC_THREAD_START] = MST__T_THREAD_START,
	[MST_REC_THREAD_NAME] = MST__T_THREAD_NAME,
	[MST_REC_THREAD_EXIT] = MST__T_THREAD_EXIT,
	[MST_REC_COUNTERS] = MST__T_COUNTERS,
	[MST_REC_LABEL] = MST__T_LABEL,
	[MST_REC_TASK_BEGIN] = MST__T_TASK_BEGIN,
	[MST_REC_TASK_END] = MST__T_TASK_END,
	[MST_REC_DROPPED] = MST__T_DROPPED,
	[MST_REC_END] = MST__T_END,
	[MST_REC_SYMBOLS] = MST__T_SYMBOLS,
};

/*
 * Encodes REC at the cursor with delta state *T and *A, the last address
 * of the record's thread; BACK >= 0 makes a FREE a FREE_RECENT. On overflow the cursor says so and the caller
 * retries in a fresh chunk, re-encoding against the reset state.
 */
static void encode_record(struct mst__out *o, const struct mst_record *rec,
			  uint64_t *t, uint64_t *a, int back)
{
	switch (rec->type) {
	case MST_REC_ALLOC: {
		const struct mst_alloc *al = &rec->u.alloc;
		mst__put_u8(o, MST__T_ALLOC);
		put_time(o, t, al->time);
		mst__put_vu(o, al->thread);
		mst__put_u8(o, al->func);
		mst__put_va(o, al->addr - *a);
		*a = al->addr;
		mst__put_vu(o, al->size);
		mst__put_vu(o, al->stack);
		if (mst_alloc_func_has_alignment(al->func))
			mst__put_vu(o, al->alignment);
		if (mst_alloc_func_is_realloc(al->func))
			/* NULL is old address 0 (FORMAT.md §5.1). */
			mst__put_va(o, al->old_addr - *a);
		return;
	}
	case MST_REC_FREE: {
		const struct mst_free *f = &rec->u.free;
		/* A free of one of the thread's latest allocations names it
		 * by its distance back: a byte instead of an address delta. */
		mst__put_u8(o, back >= 0 ? MST__T_FREE_RECENT : MST__T_FREE);
		put_time(o, t, f->time);
		mst__put_vu(o, f->thread);
		mst__put_u8(o, f->func);
		if (back >= 0)
			mst__put_vu(o, back);
		else
			mst__put_va(o, f->addr - *a);
		*a = f->addr;
		mst__put_vu(o, f->stack);
		return;
	}
	case MST_REC_STACK:
		mst__put_u8(o, MST__T_STACK);
		mst__put_vu(o, rec->u.stack.parent);
		mst__put_vu(o, rec->u.stack.ip);
		return;
	default: {
		/* Extension record: the body goes 4 bytes on (room for any
		 * length up to 16 MiB), then slides back behind its length. */
		size_t start = o->len, body, len, ll;
		mst__put_u8(o, ext_code[rec->type]);
		if (o->overflow || o->cap - o->len < 4) {
			o->overflow = 1;
			return;
		}
		body = o->len + 4;
		o->len = body;
		encode_body(o, rec, t);
		if (o->overflow)
			return;
		len = o->len - body;
		ll = mst__vu_len(len);
		o->len = start + 1;
		mst__put_vu(o, len);
		memmove(o->p + start + 1 + ll, o->p + body, len);
		o->len = start + 1 + ll + len;
		return;
	}
	}
}

static int timed(enum mst_record_type type)
{
	return type != MST_REC_HEADER && type != MST_REC_STACK &&
	       type != MST_REC_SYMBOLS;
}

/* Refuses records the format cannot carry or a reader would reject. */
static int check_record(struct mst_writer *w, const struct mst_record *rec)
{
	if (rec->type < MST_REC_HEADER || rec->type > MST_REC_SYMBOLS)
		return fail(w, MST_ERR_INVALID, "unknown record type %d", (int)rec->type);
	if (rec->type == MST_REC_HEADER) {
		if (w->header_done || w->append)
			return fail(w, MST_ERR_INVALID, "a trace has exactly one HEADER, first");
		if (rec->u.header.argc && !rec->u.header.argv)
			return fail(w, MST_ERR_INVALID, "HEADER has argc %llu but no argv",
				    (unsigned long long)rec->u.header.argc);
	} else if (!w->header_done && !w->append) {
		return fail(w, MST_ERR_INVALID, "the first record must be the HEADER");
	}
	if (timed(rec->type) && mst_record_time(rec) < w->last_time)
		return fail(w, MST_ERR_INVALID,
			    "record time %llu is before the last written time %llu",
			    (unsigned long long)mst_record_time(rec),
			    (unsigned long long)w->last_time);
	switch (rec->type) {
	case MST_REC_ALLOC:
		if (rec->u.alloc.func == 0 || rec->u.alloc.func > MST_ALLOC_FUNC_MAX)
			return fail(w, MST_ERR_INVALID, "unknown allocation function %u",
				    rec->u.alloc.func);
		if (!w->append && rec->u.alloc.stack > w->stacks)
			return fail(w, MST_ERR_INVALID, "ALLOC uses stack %llu before it was written",
				    (unsigned long long)rec->u.alloc.stack);
		break;
	case MST_REC_FREE:
		if (rec->u.free.func == 0 || rec->u.free.func > MST_FREE_FUNC_MAX)
			return fail(w, MST_ERR_INVALID, "unknown free function %u",
				    rec->u.free.func);
		if (!w->append && rec->u.free.stack > w->stacks)
			return fail(w, MST_ERR_INVALID, "FREE uses stack %llu before it was written",
				    (unsigned long long)rec->u.free.stack);
		break;
	case MST_REC_STACK:
		if (!w->append && rec->u.stack.parent > w->stacks)
			return fail(w, MST_ERR_INVALID, "STACK parent %llu is not yet written",
				    (unsigned long long)rec->u.stack.parent);
		break;
	case MST_REC_MODULE_LOAD:
		if (rec->u.module_load.nsegs > MST_MAX_SEGMENTS)
			return fail(w, MST_ERR_LIMIT, "module has %u segments, at most %d",
				    rec->u.module_load.nsegs, MST_MAX_SEGMENTS);
		if (rec->u.module_load.nsegs && !rec->u.module_load.segs)
			return fail(w, MST_ERR_INVALID, "module has segments but no array");
		break;
	case MST_REC_COUNTERS:
		if (rec->u.counters.count > MST_MAX_COUNTERS)
			return fail(w, MST_ERR_LIMIT, "%u counters, at most %d",
				    rec->u.counters.count, MST_MAX_COUNTERS);
		break;
	case MST_REC_SYMBOLS:
		for (uint64_t i = 1; i < rec->u.symbols.count; i++)
			if (rec->u.symbols.items[i].start < rec->u.symbols.items[i - 1].start)
				return fail(w, MST_ERR_INVALID, "SYMBOLS entries are not sorted by start");
		break;
	default:
		break;
	}
	return 0;
}

/* Doubles the buffers (up to the format's limit) for one oversized record. */
static int grow(struct mst_writer *w)
{
	size_t cap = w->raw_cap * 2;
	uint8_t *raw, *out;

	if (w->raw_cap >= MST__MAX_RAW)
		return fail(w, MST_ERR_LIMIT, "record larger than the 16 MiB chunk limit");
	if (cap > MST__MAX_RAW)
		cap = MST__MAX_RAW;
	raw = realloc(w->raw, cap);
	if (!raw)
		return fail(w, MST_ERR_NOMEM, "cannot grow the chunk buffer to %zu bytes", cap);
	w->raw = raw;
	out = realloc(w->out, out_cap_for(cap));
	if (!out)
		return fail(w, MST_ERR_NOMEM, "cannot grow the output buffer");
	w->out = out;
	w->raw_cap = cap;
	w->out_cap = out_cap_for(cap);
	return 0;
}

/*
 * Which of a thread's latest ALLOCs a FREE names (FREE_RECENT). A scan of
 * the 64-address window cost more than the rest of the encoding together,
 * so the writer keeps, per window, a direct-mapped index from an address's
 * hash to the ring position that last held it. A collision only loses a
 * byte or two (the FREE is written with its address delta instead); it can
 * never name a wrong block, since a position is used only when the ring
 * still holds ADDR there, and any position holding ADDR decodes to ADDR.
 */
static inline size_t recent_slot(uint32_t win, uint64_t addr)
{
	return (size_t)win * RECENT_BUCKETS +
	       (size_t)(((addr >> 4) * 0x9e3779b97f4a7c15ull) >> RECENT_SHIFT);
}

static inline int recent_find(const struct mst_writer *w, uint32_t win, uint64_t addr)
{
	uint64_t n = w->addrs.ring_n[win];
	unsigned p = w->recent[recent_slot(win, addr)];

	if (!p--)
		return -1;
	if (p >= (n < MST__WINDOW ? n : MST__WINDOW) ||
	    w->addrs.ring[(size_t)win * MST__WINDOW + p] != addr)
		return -1;
	return (int)((n - 1 - p) & (MST__WINDOW - 1));
}

static inline void recent_push(struct mst_writer *w, uint32_t win, uint64_t addr)
{
	w->recent[recent_slot(win, addr)] =
		(uint8_t)(w->addrs.ring_n[win] % MST__WINDOW + 1);
	mst__ring_push(&w->addrs, win, addr);
}

/* Bytes an ALLOC or FREE can take at most (type, 6 varints, 2 flag bytes). */
#define EVENT_MAX_BYTES 96

static inline uint8_t *fast_vu(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)v | 0x80;
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *fast_va(uint8_t *p, uint64_t d)
{
	unsigned low = d & 15;

	p = fast_vu(p, mst__zigzag((int64_t)d >> 4) << 1 | (low != 0));
	if (low)
		*p++ = (uint8_t)low;
	return p;
}

/*
 * The bulk of every trace: an ALLOC or FREE of a thread the chunk already
 * knows, with room to spare in the chunk. It makes the same checks and the
 * same bytes as check_record() and encode_record(), without their per-field
 * bounds checks and dispatch; the recorder's writer thread spends most of
 * its time here. Returns 1 when it handled REC, 0 to take the general path.
 */
static inline int add_event_fast(struct mst_writer *w, const struct mst_record *rec)
{
	uint64_t thread, time, addr, stack;
	struct mst__addr_slot *sl;
	unsigned func;
	uint8_t *p, *start;
	size_t i;

	if (w->raw_len + EVENT_MAX_BYTES > w->chunk_size || (!w->header_done && !w->append))
		return 0;
	if (rec->type == MST_REC_ALLOC) {
		thread = rec->u.alloc.thread;
		time = rec->u.alloc.time;
		func = rec->u.alloc.func;
		stack = rec->u.alloc.stack;
		if (func == 0 || func > MST_ALLOC_FUNC_MAX)
			return 0;
	} else if (rec->type == MST_REC_FREE) {
		thread = rec->u.free.thread;
		time = rec->u.free.time;
		func = rec->u.free.func;
		stack = rec->u.free.stack;
		if (func == 0 || func > MST_FREE_FUNC_MAX)
			return 0;
	} else {
		return 0;
	}
	if (time < w->last_time || stack > w->stacks)
		return 0;               /* the general path says what is wrong */
	i = w->last_slot;
	sl = &w->addrs.slots[i];
	if (!sl->busy || sl->thread != thread) {
		i = mst__tab_find(&w->addrs, thread);
		sl = &w->addrs.slots[i];
		if (!sl->busy)
			return 0;       /* a thread new to this chunk */
		w->last_slot = i;
	}
	start = p = w->raw + w->raw_len;
	if (rec->type == MST_REC_ALLOC) {
		const struct mst_alloc *al = &rec->u.alloc;

		addr = al->addr;
		*p++ = MST__T_ALLOC;
		p = fast_vu(p, time - w->d_time);
		p = fast_vu(p, thread);
		*p++ = (uint8_t)func;
		p = fast_va(p, addr - sl->addr);
		p = fast_vu(p, al->size);
		p = fast_vu(p, stack);
		if (mst_alloc_func_has_alignment(func))
			p = fast_vu(p, al->alignment);
		if (mst_alloc_func_is_realloc(func))
			p = fast_va(p, al->old_addr - addr);
		recent_push(w, sl->win, addr);
	} else {
		int back;

		addr = rec->u.free.addr;
		back = recent_find(w, sl->win, addr);
		*p++ = back >= 0 ? MST__T_FREE_RECENT : MST__T_FREE;
		p = fast_vu(p, time - w->d_time);
		p = fast_vu(p, thread);
		*p++ = (uint8_t)func;
		if (back >= 0)
			p = fast_vu(p, (uint64_t)back);
		else
			p = fast_va(p, addr - sl->addr);
		p = fast_vu(p, stack);
	}
	sl->addr = addr;
	w->raw_len += (size_t)(p - start);
	w->d_time = time;
	w->last_time = time;
	w->events++;
	return 1;
}

int mst_writer_add(struct mst_writer *w, const struct mst_record *rec)
{
	int st;

	assert(w && rec);
	if (!w->failed && add_event_fast(w, rec)) {
		if (w->raw_len >= w->chunk_size)
			return write_chunk(w);
		return MST_OK;
	}
	if (w->failed)
		return w->failed;
	st = check_record(w, rec);
	if (st)
		return st;
	for (;;) {
		/* Fill up to the chunk size; a record alone in its chunk may
		 * use all of a grown buffer. */
		size_t cap = w->raw_len ? w->chunk_size : w->raw_cap;
		struct mst__out o = { w->raw, w->raw_len, cap > w->raw_len ? cap : w->raw_len, 0 };
		uint64_t t = w->d_time, a = 0, thread = 0;
		size_t slot = 0;
		int ev = rec->type == MST_REC_ALLOC || rec->type == MST_REC_FREE;
		int back = -1;

		if (ev) {
			thread = rec->type == MST_REC_ALLOC ? rec->u.alloc.thread : rec->u.free.thread;
			slot = mst__tab_find(&w->addrs, thread);
			if (!w->addrs.slots[slot].busy && w->addrs.nused >= MAX_CHUNK_THREADS) {
				st = write_chunk(w);
				if (st)
					return st;
				continue;
			}
			if (w->addrs.slots[slot].busy) {
				a = w->addrs.slots[slot].addr;
				if (rec->type == MST_REC_FREE)
					back = recent_find(w, w->addrs.slots[slot].win,
							   rec->u.free.addr);
			}
		}
		encode_record(&o, rec, &t, &a, back);
		if (!o.overflow) {
			w->raw_len = o.len;
			w->d_time = t;
			if (ev) {
				mst__tab_set(&w->addrs, slot, thread, a);
				if (rec->type == MST_REC_ALLOC)
					recent_push(w, w->addrs.slots[slot].win, a);
			}
			break;
		}
		if (w->raw_len) {
			st = write_chunk(w);
			if (st)
				return st;
		} else {
			st = grow(w);
			if (st)
				return st;
		}
	}
	if (timed(rec->type))
		w->last_time = mst_record_time(rec);
	switch (rec->type) {
	case MST_REC_HEADER: w->header_done = 1; break;
	case MST_REC_STACK: w->stacks++; break;
	case MST_REC_ALLOC:
	case MST_REC_FREE: w->events++; break;
	default: break;
	}
	if (w->raw_len >= w->chunk_size)
		return write_chunk(w);
	return MST_OK;
}

uint64_t mst_writer_bytes(const struct mst_writer *w)
{
	return w->bytes;
}

uint64_t mst_writer_events(const struct mst_writer *w)
{
	return w->events;
}

uint64_t mst_writer_last_time(const struct mst_writer *w)
{
	return w->last_time;
}

void mst_writer_set_last_time(struct mst_writer *w, uint64_t t)
{
	w->last_time = t;
}

const char *mst_writer_error(const struct mst_writer *w)
{
	return w->err[0] ? w->err : "no error";
}

int mst_writer_close(struct mst_writer *w)
{
	int st;

	if (!w)
		return MST_OK;
	st = w->failed ? w->failed : mst_writer_flush(w);
	ZSTD_freeCCtx(w->cctx);
	free(w->addrs.slots);
	free(w->addrs.used);
	free(w->addrs.ring);
	free(w->addrs.ring_n);
	free(w->recent);
	free(w->raw);
	free(w->out);
	free(w);
	return st;
}
