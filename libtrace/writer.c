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
 * Memory: the three lanes of the chunk being filled (FORMAT.md §5; up to
 * chunk_size bytes each), the payload they are joined into and its
 * compressed copy, zstd's context, per-thread address chains, ~768 KiB
 * for FREE_REF (the chunk's latest 65536 allocations and an index to find
 * them) and ~96 KiB for allocations that name a recent free (aa).
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
/* Buckets of the address -> allocation index (see ref_find()). */
#define REF_BUCKETS 65536u
/* Buckets of the address -> free index (see reuse_find()). */
#define REUSE_BUCKETS 16384u

#define DEFAULT_LEVEL 3

struct mst_writer {
	int fd;
	mst_sink_fn sink;
	void *sink_ctx;
	int level;                    /* -1: store every chunk */
	int append;

	size_t chunk_size;            /* target raw bytes per chunk */
	uint8_t *raw;                 /* record lane of the chunk being filled */
	size_t raw_len, raw_cap;
	uint8_t *tl, *al;             /* its time and address lanes */
	size_t tl_len, al_len, lane_cap;
	uint8_t *pay;                 /* the lanes joined into one payload */
	uint8_t *out;                 /* chunk header + encoded payload */
	size_t out_cap;
	ZSTD_CCtx *cctx;

	/* Delta state of the chunk being filled (FORMAT.md §5). */
	uint64_t d_time;
	struct mst__addr_tab addrs;
	size_t last_slot;             /* addrs slot of the current thread */
	uint64_t cur_thread;          /* the chain's current thread */
	uint64_t ref;                 /* where the next FREE_REF is expected */
	uint64_t nallocs;             /* allocation records in the chunk */
	uint64_t *aring;              /* address of allocation n at n % window */
	uint32_t *aidx;               /* address bits -> allocation n + 1 */
	uint64_t nfrees;              /* FREE records in the chunk */
	uint64_t fring[MST__REUSE_WINDOW]; /* address of free n at n % window */
	uint32_t fidx[REUSE_BUCKETS]; /* address bits -> free n + 1 */

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

/* Room for the two lane lengths at the start of a payload. */
#define LANE_HDR 8
/* Bytes an ALLOC or FREE can take at most in all lanes together. */
#define EVENT_MAX_BYTES 96
_Static_assert(EVENT_MAX_BYTES <= 128, "put_run's room: 128 bytes an event");

/*
 * The largest payload for a record lane of RAW_CAP bytes: a full chunk, a
 * record alone in a grown one, or an event alone in a chunk smaller than
 * itself.
 */
static size_t pay_cap_for(size_t raw_cap)
{
	return raw_cap + LANE_HDR + EVENT_MAX_BYTES;
}

/* Sizes the output buffer for a raw buffer of RAW_CAP bytes. */
static size_t out_cap_for(size_t raw_cap)
{
	return MST__CHUNK_HDR_LEN + ZSTD_compressBound(pay_cap_for(raw_cap));
}

/* Bytes of the chunk being filled, as its raw_size will count them. */
static inline size_t chunk_fill(const struct mst_writer *w)
{
	return w->raw_len + w->tl_len + w->al_len;
}

/* Starts a chunk: every delta chain back to zero (FORMAT.md §5). */
static void chunk_reset(struct mst_writer *w)
{
	w->raw_len = w->tl_len = w->al_len = 0;
	w->d_time = 0;
	w->cur_thread = 0;
	w->ref = 0;
	w->nallocs = 0;
	w->nfrees = 0;
	w->last_slot = 0;
	mst__tab_clear(&w->addrs);
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
	if (w->chunk_size > MST__MAX_RAW - LANE_HDR - EVENT_MAX_BYTES)
		return fail(w, MST_ERR_INVALID, "chunk size %zu exceeds the format's %u",
			    w->chunk_size, MST__MAX_RAW - LANE_HDR - EVENT_MAX_BYTES);
	if (w->level > ZSTD_maxCLevel())
		return fail(w, MST_ERR_INVALID, "zstd level %d exceeds %d",
			    w->level, ZSTD_maxCLevel());

	w->raw_cap = w->chunk_size;
	w->lane_cap = w->chunk_size + EVENT_MAX_BYTES;
	w->out_cap = out_cap_for(w->raw_cap);
	w->raw = malloc(w->raw_cap);
	w->tl = malloc(w->lane_cap);
	w->al = malloc(w->lane_cap);
	w->pay = malloc(pay_cap_for(w->raw_cap));
	w->out = malloc(w->out_cap);
	w->addrs.cap = ADDR_TAB;
	w->addrs.slots = calloc(ADDR_TAB, sizeof(*w->addrs.slots));
	w->addrs.used = calloc(ADDR_TAB, sizeof(*w->addrs.used));
	w->aring = calloc(MST__REF_WINDOW, sizeof(uint64_t));
	w->aidx = calloc(REF_BUCKETS, sizeof(uint32_t));
	if (!w->raw || !w->tl || !w->al || !w->pay || !w->out || !w->addrs.slots ||
	    !w->addrs.used || !w->aring || !w->aidx)
		return fail(w, MST_ERR_NOMEM, "cannot allocate %zu bytes of chunk buffers",
			    4 * w->raw_cap + w->out_cap);
	(void)mst_crc32c(0, NULL, 0);     /* build the tables now, not in a handler */
	if (w->level != -1) {
		size_t r;
		w->cctx = ZSTD_createCCtx();
		if (!w->cctx)
			return fail(w, MST_ERR_NOMEM, "cannot create a zstd context");
		/* zstd allocates its workspace on first use, sized for the
		 * input: compress one full chunk of zeros now so that no later
		 * chunk allocates. */
		memset(w->pay, 0, pay_cap_for(w->raw_cap));
		r = ZSTD_compressCCtx(w->cctx, w->out, w->out_cap, w->pay,
				      pay_cap_for(w->raw_cap), w->level);
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

/* Joins the lanes into one payload (FORMAT.md §5): its length. */
static size_t join_lanes(struct mst_writer *w)
{
	struct mst__out o = { w->pay, 0, LANE_HDR, 0 };

	if (!chunk_fill(w))
		return 0;               /* an empty chunk has no lanes */
	mst__put_vu(&o, w->tl_len);
	mst__put_vu(&o, w->al_len);
	memcpy(w->pay + o.len, w->tl, w->tl_len);
	o.len += w->tl_len;
	memcpy(w->pay + o.len, w->al, w->al_len);
	o.len += w->al_len;
	memcpy(w->pay + o.len, w->raw, w->raw_len);
	return o.len + w->raw_len;
}

/* Compresses (or stores) the chunk being filled and hands it on. */
static int write_chunk(struct mst_writer *w)
{
	uint8_t *h = w->out;
	size_t raw = join_lanes(w), stored = raw;
	uint8_t enc = MST__ENC_STORED;
	uint32_t crc;

	if (w->level != -1) {
		size_t r = ZSTD_compressCCtx(w->cctx, h + MST__CHUNK_HDR_LEN,
					     w->out_cap - MST__CHUNK_HDR_LEN,
					     w->pay, raw, w->level);
		if (ZSTD_isError(r)) {
			w->failed = MST_ERR_IO;
			return fail(w, MST_ERR_IO, "zstd: %s", ZSTD_getErrorName(r));
		}
		/* Incompressible data is stored: smaller, and cheaper to read. */
		if (r < raw) {
			stored = r;
			enc = MST__ENC_ZSTD;
		}
	}
	if (enc == MST__ENC_STORED)
		memcpy(h + MST__CHUNK_HDR_LEN, w->pay, raw);
	memcpy(h, MST__SYNC, 4);
	h[4] = enc;
	h[5] = 0;
	h[6] = h[7] = 0;
	mst__put_le32(h + 8, stored);
	mst__put_le32(h + 12, raw);
	crc = mst_crc32c(0, h + 4, 12);
	crc = mst_crc32c(crc, h + MST__CHUNK_HDR_LEN, stored);
	mst__put_le32(h + 16, crc);

	chunk_reset(w);
	return emit(w, h, MST__CHUNK_HDR_LEN + stored);
}

int mst_writer_flush(struct mst_writer *w)
{
	assert(w);
	if (w->failed)
		return w->failed;
	if (!chunk_fill(w))
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
 * Where an event record goes (FORMAT.md §5): the three lanes of the chunk
 * and the delta state it moves. A copy is encoded into, and kept only when
 * the record fitted.
 */
struct enc {
	struct mst__out rec, tl, al;
	uint64_t t;                   /* time chain */
	uint64_t a;                   /* address chain of the event's thread */
	uint64_t cur;                 /* current thread */
	uint64_t ref;                 /* next FREE_REF's expected allocation */
	int64_t n;                    /* a FREE's allocation in the chunk, or -1 */
	int back;                     /* the free an ALLOC's address is, or -1 */
};

/* The type byte of an event record of THREAD; it becomes current. */
static void put_event_type(struct enc *e, unsigned base, unsigned func, uint64_t thread)
{
	if (thread == e->cur) {
		mst__put_u8(&e->rec, base + func);
	} else {
		mst__put_u8(&e->rec, base + func + MST__T_THREAD);
		mst__put_vu(&e->rec, thread);
		e->cur = thread;
	}
}

/*
 * Encodes REC. On overflow a cursor says so and the caller retries in a
 * fresh chunk, re-encoding against the reset state.
 */
static void encode_record(struct enc *e, const struct mst_record *rec)
{
	struct mst__out *o = &e->rec;

	switch (rec->type) {
	case MST_REC_ALLOC: {
		const struct mst_alloc *al = &rec->u.alloc;
		put_event_type(e, MST__T_ALLOC, al->func, al->thread);
		mst__put_vu(o, al->size);
		mst__put_vu(o, al->stack);
		if (mst_alloc_func_has_alignment(al->func))
			mst__put_vu(o, al->alignment);
		put_time(&e->tl, &e->t, al->time);
		mst__put_aa(&e->al, e->back, al->addr - e->a);
		e->a = al->addr;
		if (mst_alloc_func_is_realloc(al->func))
			/* NULL is old address 0 (FORMAT.md §5.1). */
			mst__put_va(&e->al, al->old_addr - al->addr);
		return;
	}
	case MST_REC_FREE: {
		const struct mst_free *f = &rec->u.free;
		put_event_type(e, e->n >= 0 ? MST__T_FREE_REF : MST__T_FREE, f->func,
			       f->thread);
		mst__put_vu(o, f->stack);
		put_time(&e->tl, &e->t, f->time);
		if (e->n >= 0) {
			mst__put_vs(&e->al, e->n - (int64_t)e->ref);
			e->ref = (uint64_t)e->n + 1;
		} else {
			mst__put_va(&e->al, f->addr - e->a);
		}
		e->a = f->addr;
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
		encode_body(o, rec, &e->t);
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

/* Doubles the record lane (up to the format's limit) for one oversized record. */
static int grow(struct mst_writer *w)
{
	size_t cap = w->raw_cap * 2, max = MST__MAX_RAW - LANE_HDR - EVENT_MAX_BYTES;
	uint8_t *raw, *pay, *out;

	if (w->raw_cap >= max)
		return fail(w, MST_ERR_LIMIT, "record larger than the 16 MiB chunk limit");
	if (cap > max)
		cap = max;
	raw = realloc(w->raw, cap);
	if (!raw)
		return fail(w, MST_ERR_NOMEM, "cannot grow the chunk buffer to %zu bytes", cap);
	w->raw = raw;
	pay = realloc(w->pay, pay_cap_for(cap));
	if (!pay)
		return fail(w, MST_ERR_NOMEM, "cannot grow the chunk buffer to %zu bytes", cap);
	w->pay = pay;
	out = realloc(w->out, out_cap_for(cap));
	if (!out)
		return fail(w, MST_ERR_NOMEM, "cannot grow the output buffer");
	w->out = out;
	w->raw_cap = cap;
	w->out_cap = out_cap_for(cap);
	return 0;
}

/*
 * Which of the chunk's allocations a FREE names (FREE_REF), or -1. A
 * direct-mapped index from an address's low bits (not a hash: blocks
 * allocated close together then sit in the same cache lines, which made
 * it several times cheaper) to the number of the allocation that last had
 * it; the ring of the chunk's latest allocations confirms it. Whatever an
 * entry holds (a collision, an earlier chunk's number), an allocation is
 * named only when the ring says it had ADDR, so the reader decodes ADDR;
 * a miss only costs the bytes of an address delta.
 */
static inline size_t ref_bucket(uint64_t addr)
{
	return (size_t)(addr >> 4) & (REF_BUCKETS - 1);
}

static inline int64_t ref_find(const struct mst_writer *w, uint64_t addr)
{
	uint64_t n = w->aidx[ref_bucket(addr)];

	if (!n--)
		return -1;
	if (n >= w->nallocs || w->nallocs - n > MST__REF_WINDOW ||
	    w->aring[n % MST__REF_WINDOW] != addr)
		return -1;
	return (int64_t)n;
}

/*
 * Which of the chunk's latest frees gave back ADDR, as "how far back" (the
 * aa field of an ALLOC, FORMAT.md §2), or -1. Allocators hand out the
 * block freed last of a size first; the same scheme as ref_find.
 */
static inline int reuse_find(const struct mst_writer *w, uint64_t addr)
{
	uint64_t m = w->fidx[(addr >> 4) & (REUSE_BUCKETS - 1)];

	if (!m--)
		return -1;
	if (m >= w->nfrees || w->nfrees - m > MST__REUSE_WINDOW ||
	    w->fring[m % MST__REUSE_WINDOW] != addr)
		return -1;
	return (int)(w->nfrees - 1 - m);
}

/*
 * How an ALLOC at ADDR writes its address: the free BACK frees back when
 * that takes no more bytes than the delta D (a block reused in a
 * sequential walk is often one granule away anyway), else -1 for D.
 */
static inline int reuse_choice(const struct mst_writer *w, uint64_t addr, uint64_t d)
{
	int back = reuse_find(w, addr);

	if (back < 0)
		return -1;
	return mst__vu_len((uint64_t)back << 1 | 1) <=
	       mst__vu_len((mst__zigzag((int64_t)d >> 4) << 1 | ((d & 15) != 0)) << 1) ?
	       back : -1;
}

/* Remembers the chunk's next free, of ADDR. */
static inline void reuse_free(struct mst_writer *w, uint64_t addr)
{
	w->fring[w->nfrees % MST__REUSE_WINDOW] = addr;
	w->fidx[(addr >> 4) & (REUSE_BUCKETS - 1)] = (uint32_t)++w->nfrees;
}

/* Remembers the chunk's next allocation, at ADDR. */
static inline void ref_alloc(struct mst_writer *w, uint64_t addr)
{
	w->aring[w->nallocs % MST__REF_WINDOW] = addr;
	w->aidx[ref_bucket(addr)] = (uint32_t)++w->nallocs;
}



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

/* mst__put_aa without bounds checks. */
static inline uint8_t *fast_aa(uint8_t *p, int back, uint64_t d)
{
	unsigned low = d & 15;

	if (back >= 0)
		return fast_vu(p, (uint64_t)back << 1 | 1);
	p = fast_vu(p, (mst__zigzag((int64_t)d >> 4) << 1 | (low != 0)) << 1);
	if (low)
		*p++ = (uint8_t)low;
	return p;
}

/*
 * The bulk of every trace: an ALLOC or FREE of a thread the chunk already
 * knows, with room to spare in the chunk. They make the same checks and the
 * same bytes as check_record() and encode_record(), without their per-field
 * bounds checks and dispatch; the recorder's writer thread spends most of
 * its time here. Each returns 1 when it wrote the event, 0 to take the
 * general path (which says what is wrong, if anything is).
 */
static inline struct mst__addr_slot *fast_slot(struct mst_writer *w, uint64_t thread,
					       uint64_t time, uint64_t stack)
{
	struct mst__addr_slot *sl;

	if (chunk_fill(w) + EVENT_MAX_BYTES > w->chunk_size ||
	    (!w->header_done && !w->append) || w->failed ||
	    time < w->last_time || stack > w->stacks)
		return NULL;
	sl = &w->addrs.slots[w->last_slot];
	if (__builtin_expect(!sl->busy || sl->thread != thread, 0)) {
		size_t i = mst__tab_find(&w->addrs, thread);
		sl = &w->addrs.slots[i];
		if (!sl->busy)
			return NULL;    /* a thread new to this chunk */
		w->last_slot = i;
	}
	return sl;
}

/* The event's type byte and thread (FORMAT.md §5.1) at P; the thread becomes current. */
static inline uint8_t *fast_type(struct mst_writer *w, uint8_t *p, unsigned type,
				 uint64_t thread)
{
	if (__builtin_expect(thread == w->cur_thread, 1)) {
		*p++ = (uint8_t)type;
		return p;
	}
	*p++ = (uint8_t)(type + MST__T_THREAD);
	w->cur_thread = thread;
	return fast_vu(p, thread);
}

/* The lanes end at P, T and A now. */
static inline void lanes_end(struct mst_writer *w, uint8_t *p, uint8_t *t, uint8_t *a)
{
	w->raw_len = (size_t)(p - w->raw);
	w->tl_len = (size_t)(t - w->tl);
	w->al_len = (size_t)(a - w->al);
}

static inline void fast_done(struct mst_writer *w, struct mst__addr_slot *sl, uint64_t addr,
			     uint64_t time, uint8_t *p, uint8_t *t, uint8_t *a)
{
	sl->addr = addr;
	lanes_end(w, p, t, a);
	w->d_time = time;
	w->last_time = time;
	w->events++;
}

static inline int alloc_fast(struct mst_writer *w, const struct mst_alloc *al)
{
	unsigned func = al->func, x = mst__alloc_extra[func];
	struct mst__addr_slot *sl;
	uint8_t *p, *t, *a;

	if (x & MST__X_BAD)
		return 0;
	sl = fast_slot(w, al->thread, al->time, al->stack);
	if (!sl)
		return 0;
	p = fast_type(w, w->raw + w->raw_len, MST__T_ALLOC + func, al->thread);
	p = fast_vu(p, al->size);
	p = fast_vu(p, al->stack);
	if (x & MST__X_ALIGN)
		p = fast_vu(p, al->alignment);
	t = fast_vu(w->tl + w->tl_len, al->time - w->d_time);
	a = fast_aa(w->al + w->al_len, reuse_choice(w, al->addr, al->addr - sl->addr),
		    al->addr - sl->addr);
	if (x & MST__X_OLD)
		a = fast_va(a, al->old_addr - al->addr);
	ref_alloc(w, al->addr);
	fast_done(w, sl, al->addr, al->time, p, t, a);
	return 1;
}

static inline int free_fast(struct mst_writer *w, const struct mst_free *f)
{
	struct mst__addr_slot *sl;
	uint8_t *p, *t, *a;
	int64_t n;

	if (f->func == 0 || f->func > MST_FREE_FUNC_MAX)
		return 0;
	sl = fast_slot(w, f->thread, f->time, f->stack);
	if (!sl)
		return 0;
	n = ref_find(w, f->addr);
	p = fast_type(w, w->raw + w->raw_len,
		      (n >= 0 ? MST__T_FREE_REF : MST__T_FREE) + f->func, f->thread);
	p = fast_vu(p, f->stack);
	t = fast_vu(w->tl + w->tl_len, f->time - w->d_time);
	a = w->al + w->al_len;
	if (n >= 0) {
		a = fast_vu(a, mst__zigzag(n - (int64_t)w->ref));
		w->ref = (uint64_t)n + 1;
	} else {
		a = fast_va(a, f->addr - sl->addr);
	}
	reuse_free(w, f->addr);
	fast_done(w, sl, f->addr, f->time, p, t, a);
	return 1;
}

/* After an event written by the fast path: a full chunk goes out. */
static inline int fast_after(struct mst_writer *w)
{
	if (chunk_fill(w) >= w->chunk_size)
		return write_chunk(w);
	return MST_OK;
}

static int add_general(struct mst_writer *w, const struct mst_record *rec);

int mst_writer_alloc(struct mst_writer *w, const struct mst_alloc *a)
{
	struct mst_record rec;

	if (alloc_fast(w, a))
		return fast_after(w);
	rec.type = MST_REC_ALLOC;
	rec.u.alloc = *a;
	return add_general(w, &rec);
}

int mst_writer_free(struct mst_writer *w, const struct mst_free *f)
{
	struct mst_record rec;

	if (free_fast(w, f))
		return fast_after(w);
	rec.type = MST_REC_FREE;
	rec.u.free = *f;
	return add_general(w, &rec);
}

int mst_writer_add(struct mst_writer *w, const struct mst_record *rec)
{
	assert(w && rec);
	if (rec->type == MST_REC_ALLOC ? alloc_fast(w, &rec->u.alloc) :
	    rec->type == MST_REC_FREE ? free_fast(w, &rec->u.free) : 0)
		return fast_after(w);
	return add_general(w, rec);
}

/*
 * A run's trace time of raw clock time RAW (struct mst_run's clock), before
 * the clamp to the writer's last time.
 */
static inline uint64_t run_time(uint64_t raw, uint64_t start, uint64_t mult, unsigned shift)
{
	if (raw <= start)
		return 0;
	return (uint64_t)(((unsigned __int128)(raw - start) * mult) >> 32) >> shift;
}

/* fast_type() with the current thread in a register. */
static inline uint8_t *run_type(uint8_t *p, unsigned type, uint64_t thread, uint64_t *cur)
{
	if (__builtin_expect(thread == *cur, 1)) {
		*p++ = (uint8_t)type;
		return p;
	}
	*p++ = (uint8_t)(type + MST__T_THREAD);
	*cur = thread;
	return fast_vu(p, thread);
}

/*
 * The events alloc_fast() and free_fast() would write, a run at a time:
 * the lanes' ends, the time chain and the thread's address chain stay in
 * registers, and what those check per event (a thread the chunk knows,
 * room in the chunk, the header written, no failure) is checked once per
 * stretch of events that surely fits (EVENT_MAX_BYTES each). The hash
 * tables (ref_find, reuse_choice) are shared with them, so the bytes are
 * the same; test_writer_run compares the two.
 */
long mst_writer_put_run(struct mst_writer *w, struct mst_run *run)
{
	const struct mst_event *slots = run->slots;
	uint64_t mask = run->mask, pos = run->pos, end = run->end;
	uint64_t thread = run->thread, limit = run->limit;
	/* in locals: the lanes' stores could alias *run for all GCC knows */
	uint64_t c_start = run->clock_start, c_mult = run->clock_mult;
	unsigned c_shift = run->clock_shift;
	long done = 0;
	int stopped = 0;

	assert(w && run);
	if (w->failed)
		return w->failed;
	if (!w->header_done && !w->append)
		return 0;
	while (pos < end && !stopped) {
		struct mst__addr_slot *sl = &w->addrs.slots[w->last_slot];
		size_t fill = chunk_fill(w), room;
		uint8_t *p, *t, *a;
		uint64_t prev, d_time, last, cur, stacks;
		long n = 0;

		if (!sl->busy || sl->thread != thread) {
			size_t i = mst__tab_find(&w->addrs, thread);

			sl = &w->addrs.slots[i];
			if (!sl->busy)
				break;          /* a thread new to this chunk */
			w->last_slot = i;
		}
		if (fill + EVENT_MAX_BYTES > w->chunk_size)
			break;                  /* the chunk's last events */
		/* (a shift, not a division by EVENT_MAX_BYTES: runs are often
		 * a few events long) */
		room = (w->chunk_size - fill) >> 7;
		if (!room)
			break;
		p = w->raw + w->raw_len;
		t = w->tl + w->tl_len;
		a = w->al + w->al_len;
		prev = sl->addr;
		d_time = w->d_time;
		last = w->last_time;
		cur = w->cur_thread;
		stacks = w->stacks;
		for (; room && pos < end; room--) {
			const struct mst_event *ev = &slots[pos & mask];
			uint64_t raw = ev->time, addr = ev->addr, tt;
			unsigned func = ev->func;

			if (raw >= limit || ev->stack > stacks) {
				stopped = 1;
				break;
			}
			tt = run_time(raw, c_start, c_mult, c_shift);
			if (tt < last)
				tt = last;
			if (ev->type == MST_EVENT_ALLOC) {
				unsigned x = mst__alloc_extra[func];
				uint64_t old = 0, align = 0;

				if (x & MST__X_BAD) {
					stopped = 1;
					break;
				}
				if (x && ev->nslots >= 2) {
					const struct mst_event_ext *e =
						(const void *)&slots[(pos + 1) & mask];

					old = e->old_addr;
					align = e->alignment;
				}
				p = run_type(p, MST__T_ALLOC + func, thread, &cur);
				p = fast_vu(p, ev->size);
				p = fast_vu(p, ev->stack);
				if (x & MST__X_ALIGN)
					p = fast_vu(p, align);
				t = fast_vu(t, tt - d_time);
				a = fast_aa(a, reuse_choice(w, addr, addr - prev), addr - prev);
				if (x & MST__X_OLD)
					a = fast_va(a, old - addr);
				ref_alloc(w, addr);
			} else if (ev->type == MST_EVENT_FREE && func && func <= MST_FREE_FUNC_MAX) {
				int64_t r = ref_find(w, addr);

				p = run_type(p, (r >= 0 ? MST__T_FREE_REF : MST__T_FREE) + func,
					     thread, &cur);
				p = fast_vu(p, ev->stack);
				t = fast_vu(t, tt - d_time);
				if (r >= 0) {
					a = fast_vu(a, mst__zigzag(r - (int64_t)w->ref));
					w->ref = (uint64_t)r + 1;
				} else {
					a = fast_va(a, addr - prev);
				}
				reuse_free(w, addr);
			} else {
				stopped = 1;
				break;
			}
			prev = addr;
			d_time = last = tt;
			pos += ev->nslots ? ev->nslots : 1;
			n++;
		}
		sl->addr = prev;
		lanes_end(w, p, t, a);
		w->d_time = d_time;
		w->last_time = last;
		w->cur_thread = cur;
		w->events += (uint64_t)n;
		done += n;
		if (chunk_fill(w) >= w->chunk_size) {
			int st = write_chunk(w);

			if (st) {
				run->pos = pos;     /* what was encoded stays written */
				return st;
			}
		}
	}
	run->pos = pos;
	return done;
}

/* Any record, with every check; what the fast paths leave. */
static int __attribute__((noinline)) add_general(struct mst_writer *w, const struct mst_record *rec)
{
	int st;

	if (w->failed)
		return w->failed;
	st = check_record(w, rec);
	if (st)
		return st;
	for (;;) {
		/* Fill up to the chunk size; a record alone in its chunk may
		 * use all of a grown buffer. */
		size_t fill = chunk_fill(w), limit = fill ? w->chunk_size : w->raw_cap;
		struct enc e = {
			.rec = { w->raw, w->raw_len, w->raw_cap, 0 },
			.tl = { w->tl, w->tl_len, w->lane_cap, 0 },
			.al = { w->al, w->al_len, w->lane_cap, 0 },
			.t = w->d_time, .cur = w->cur_thread, .ref = w->ref, .n = -1,
			.back = -1,
		};
		uint64_t thread = 0;
		size_t slot = 0;
		int ev = rec->type == MST_REC_ALLOC || rec->type == MST_REC_FREE;

		if (ev) {
			thread = rec->type == MST_REC_ALLOC ? rec->u.alloc.thread : rec->u.free.thread;
			slot = mst__tab_find(&w->addrs, thread);
			if (!w->addrs.slots[slot].busy && w->addrs.nused >= MAX_CHUNK_THREADS) {
				st = write_chunk(w);
				if (st)
					return st;
				continue;
			}
			if (w->addrs.slots[slot].busy)
				e.a = w->addrs.slots[slot].addr;
			if (rec->type == MST_REC_FREE)
				e.n = ref_find(w, rec->u.free.addr);
			else
				e.back = reuse_choice(w, rec->u.alloc.addr, rec->u.alloc.addr - e.a);
		}
		encode_record(&e, rec);
		if (!e.rec.overflow && !e.tl.overflow && !e.al.overflow &&
		    e.rec.len + e.tl.len + e.al.len <= (fill ? limit : limit + EVENT_MAX_BYTES)) {
			w->raw_len = e.rec.len;
			w->tl_len = e.tl.len;
			w->al_len = e.al.len;
			w->d_time = e.t;
			w->cur_thread = e.cur;
			w->ref = e.ref;
			if (ev) {
				mst__tab_set(&w->addrs, slot, thread, e.a);
				w->last_slot = slot;
				if (rec->type == MST_REC_ALLOC)
					ref_alloc(w, e.a);
				else
					reuse_free(w, e.a);
			}
			break;
		}
		if (fill) {
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
	if (chunk_fill(w) >= w->chunk_size)
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
	free(w->aring);
	free(w->aidx);
	free(w->tl);
	free(w->al);
	free(w->pay);
	free(w->raw);
	free(w->out);
	free(w);
	return st;
}
