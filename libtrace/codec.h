/*
 * codec.h - libtrace's internal byte-level helpers shared by the writer and
 * the reader: the on-disk constants of schema/FORMAT.md, bounded varint
 * encoding into a buffer and bounds-checked decoding out of one.
 *
 * Not installed, not for tools: only libtrace sources include it.
 */
#ifndef MSTRACE_CODEC_H
#define MSTRACE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mstrace.h"

/* ---- on-disk constants (FORMAT.md §3..§5); never renumber ---- */
#define MST__MAGIC "\x89MSC\r\n\x1a\n"
#define MST__MAGIC_LEN 8
#define MST__PREAMBLE_LEN 16
#define MST__SYNC "MSCK"
#define MST__CHUNK_HDR_LEN 20
#define MST__MAX_RAW (16u << 20)
#define MST__MAX_STORED(raw) ((uint64_t)(raw) + (raw) / 128 + 1024)

#define MST__ENC_STORED 0
#define MST__ENC_ZSTD 1

enum {
	MST__T_STACK = 0x03,
	MST__T_SKIP = 0x04,
	/* Event records (FORMAT.md §5.1): base + function, + MST__T_THREAD
	 * when a thread index follows the type. */
	MST__T_ALLOC = 0x05,
	MST__T_FREE = 0x12,
	MST__T_FREE_REF = 0x17,
	MST__T_THREAD = 0x20,
	MST__T_CORE_LAST = 0x3f,
	MST__T_HEADER = 0x40,
	MST__T_MODULE_LOAD = 0x41,
	MST__T_MODULE_UNLOAD = 0x42,
	MST__T_THREAD_START = 0x43,
	MST__T_THREAD_NAME = 0x44,
	MST__T_THREAD_EXIT = 0x45,
	MST__T_COUNTERS = 0x46,
	MST__T_LABEL = 0x47,
	MST__T_TASK_BEGIN = 0x48,
	MST__T_TASK_END = 0x49,
	MST__T_DROPPED = 0x4a,
	MST__T_END = 0x4b,
	MST__T_SYMBOLS = 0x4c,
};

/*
 * The fields an ALLOC has beyond the common ones, by allocation function
 * (FORMAT.md §5.1), as a table: the writer's and reader's fast paths look
 * it up once instead of calling mst_alloc_func_has_alignment and
 * mst_alloc_func_is_realloc per event.
 */
enum { MST__X_ALIGN = 1, MST__X_OLD = 2, MST__X_BAD = 4 };
static const uint8_t mst__alloc_extra[256] = {
	[0] = MST__X_BAD,
	[MST_ALLOC_REALLOC] = MST__X_OLD,
	[MST_ALLOC_REALLOCARRAY] = MST__X_OLD,
	[MST_ALLOC_POSIX_MEMALIGN] = MST__X_ALIGN,
	[MST_ALLOC_ALIGNED_ALLOC] = MST__X_ALIGN,
	[MST_ALLOC_MEMALIGN] = MST__X_ALIGN,
	[MST_ALLOC_VALLOC] = MST__X_ALIGN,
	[MST_ALLOC_PVALLOC] = MST__X_ALIGN,
	[MST_ALLOC_NEW_ALIGNED] = MST__X_ALIGN,
	[MST_ALLOC_NEW_ARRAY_ALIGNED] = MST__X_ALIGN,
	[MST_ALLOC_FUNC_MAX + 1 ... 255] = MST__X_BAD,
};

static inline void mst__put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static inline void mst__put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static inline uint16_t mst__get_le16(const uint8_t *p)
{
	return p[0] | (uint16_t)p[1] << 8;
}

static inline uint32_t mst__get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t mst__zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t mst__unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline size_t mst__vu_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * An output cursor. Writes past cap set .overflow and are dropped, so a
 * record is encoded without a size check per field and the caller looks
 * once at the end whether it fitted.
 */
struct mst__out {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static inline void mst__put_u8(struct mst__out *o, uint8_t v)
{
	if (o->len < o->cap)
		o->p[o->len++] = v;
	else
		o->overflow = 1;
}

static inline void mst__put_vu(struct mst__out *o, uint64_t v)
{
	if (o->cap - o->len >= 10) {
		uint8_t *p = o->p + o->len;
		while (v >= 0x80) {
			*p++ = (uint8_t)v | 0x80;
			v >>= 7;
		}
		*p++ = (uint8_t)v;
		o->len = p - o->p;
		return;
	}
	while (v >= 0x80) {
		mst__put_u8(o, (uint8_t)v | 0x80);
		v >>= 7;
	}
	mst__put_u8(o, (uint8_t)v);
}

static inline void mst__put_vs(struct mst__out *o, int64_t v)
{
	mst__put_vu(o, mst__zigzag(v));
}

/*
 * An address delta (FORMAT.md §2 "va"): allocators return 16-byte aligned
 * blocks, so the 4 low bits of a delta are almost always zero and are
 * written, behind a flag bit, only when they are not.
 */
static inline void mst__put_va(struct mst__out *o, uint64_t d)
{
	unsigned low = d & 15;

	mst__put_vu(o, mst__zigzag((int64_t)d >> 4) << 1 | (low != 0));
	if (low)
		mst__put_u8(o, low);
}

/* N bytes as they are, without a length. */
static inline void mst__put_raw(struct mst__out *o, const void *b, size_t n)
{
	if (o->cap - o->len < n) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, b, n);
	o->len += n;
}

/*
 * An allocation's address (FORMAT.md §2 "aa"): one of the chunk's latest
 * frees named by how far back it is (BACK >= 0: allocators hand a block
 * just freed out again), or else the va delta D, behind a tag bit.
 */
static inline void mst__put_aa(struct mst__out *o, int back, uint64_t d)
{
	unsigned low = d & 15;

	if (back >= 0) {
		mst__put_vu(o, (uint64_t)back << 1 | 1);
		return;
	}
	mst__put_vu(o, (mst__zigzag((int64_t)d >> 4) << 1 | (low != 0)) << 1);
	if (low)
		mst__put_u8(o, low);
}

static inline void mst__put_bytes(struct mst__out *o, const void *b, size_t n)
{
	mst__put_vu(o, n);
	if (o->cap - o->len < n) {
		o->overflow = 1;
		return;
	}
	if (n)
		memcpy(o->p + o->len, b, n);
	o->len += n;
}

/*
 * The per-thread delta state of a chunk (FORMAT.md §5): thread index ->
 * last address written by that thread's event records. Open addressing on
 * a power-of-two table; the used list clears it in time proportional to
 * the threads the chunk saw, not the table size.
 */
/* Threads whose events one chunk may hold (FORMAT.md §5). */
#define MST__MAX_CHUNK_THREADS 4096
/* Allocations of a chunk a FREE_REF may name, counting back from the latest. */
#define MST__REF_WINDOW 65536u
/* Frees of a chunk an allocation's address may name (aa), likewise. */
#define MST__REUSE_WINDOW 4096u

struct mst__addr_slot {
	uint64_t thread, addr;
	int busy;
};

struct mst__addr_tab {
	struct mst__addr_slot *slots;
	uint32_t *used;
	size_t nused, cap;
};

static inline size_t mst__tab_find(const struct mst__addr_tab *t, uint64_t thread)
{
	size_t mask = t->cap - 1, i = (thread * 0x9e3779b97f4a7c15ull) >> 32 & mask;

	while (t->slots[i].busy && t->slots[i].thread != thread)
		i = (i + 1) & mask;
	return i;
}

static inline void mst__tab_set(struct mst__addr_tab *t, size_t i, uint64_t thread,
				uint64_t addr)
{
	if (!t->slots[i].busy) {
		t->slots[i].busy = 1;
		t->slots[i].thread = thread;
		t->used[t->nused++] = i;
	}
	t->slots[i].addr = addr;
}

static inline void mst__tab_clear(struct mst__addr_tab *t)
{
	for (size_t k = 0; k < t->nused; k++)
		t->slots[t->used[k]].busy = 0;
	t->nused = 0;
}

/*
 * An input cursor over one decoded chunk. The first error sticks: later
 * reads return zeros, and the caller checks .err once per record.
 */
struct mst__in {
	const uint8_t *p, *end;
	const char *err;
};

/* The error of reading past the end: for an extension record's body it
 * means "body shorter than its fields". */
static const char mst__err_short[] = "record runs past the end of the chunk";

static inline uint64_t mst__get_vu(struct mst__in *in)
{
	uint64_t v = 0;
	unsigned shift = 0;
	const uint8_t *p = in->p;

	if (in->err)
		return 0;
	for (int i = 0; i < 10; i++) {
		uint8_t b;
		if (p == in->end) {
			in->err = mst__err_short;
			return 0;
		}
		b = *p++;
		if (i == 9 && b > 1) {
			in->err = "varint overflows 64 bits";
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			in->p = p;
			return v;
		}
	}
	in->err = "varint longer than 10 bytes";
	return 0;
}

static inline int64_t mst__get_vs(struct mst__in *in)
{
	return mst__unzigzag(mst__get_vu(in));
}

static inline uint8_t mst__get_u8(struct mst__in *in)
{
	if (in->err)
		return 0;
	if (in->p == in->end) {
		in->err = mst__err_short;
		return 0;
	}
	return *in->p++;
}

static inline uint64_t mst__get_va(struct mst__in *in)
{
	uint64_t u = mst__get_vu(in), d;

	if (!in->err && u >= 1ull << 61) {
		in->err = "address delta out of range";
		return 0;
	}
	d = (uint64_t)mst__unzigzag(u >> 1) << 4;
	if (u & 1) {
		uint8_t low = mst__get_u8(in);
		if (!in->err && (low == 0 || low > 15))
			in->err = "bad low bits of an address delta";
		d |= low & 15;
	}
	return d;
}

/* Reads an aa: 1 with *BACK for a free named, 0 with the delta *D. */
static inline int mst__get_aa(struct mst__in *in, uint64_t *back, uint64_t *d)
{
	uint64_t x = mst__get_vu(in), u = x >> 1;

	*back = *d = 0;
	if (in->err)
		return 0;
	if (x & 1) {
		*back = u;
		return 1;
	}
	if (u >= 1ull << 61) {
		in->err = "address delta out of range";
		return 0;
	}
	*d = (uint64_t)mst__unzigzag(u >> 1) << 4;
	if (u & 1) {
		uint8_t low = mst__get_u8(in);
		if (!in->err && (low == 0 || low > 15))
			in->err = "bad low bits of an address delta";
		*d |= low & 15;
	}
	return 0;
}

/* Returns a pointer to N bytes (after a vu length) or NULL with .err set. */
static inline const uint8_t *mst__get_bytes(struct mst__in *in, size_t *n)
{
	uint64_t len = mst__get_vu(in);
	const uint8_t *b;

	*n = 0;
	if (in->err)
		return NULL;
	if (len > (uint64_t)(in->end - in->p)) {
		in->err = "length runs past the end of the record";
		return NULL;
	}
	b = in->p;
	in->p += len;
	*n = len;
	return b;
}

#endif
