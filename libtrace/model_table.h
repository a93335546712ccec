/*
 * model_table.h - private hash tables of the analysis model (not installed):
 * an open-addressing map from a 64-bit key to a 32-bit index, used for
 * sites, threads, modules and tasks, and the live set of allocations, which
 * must absorb tens of millions of inserts and deletes a second.
 *
 * Both use linear probing on a power-of-two table with Fibonacci hashing
 * and backward-shift deletion (no tombstones, so a long churn never
 * degrades the table), and grow at 5/8 load (the live set of a small
 * program at 1/4).
 */
#ifndef MODEL_TABLE_H
#define MODEL_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- u64 -> u32 index map; every key is allowed (stored as key + 1 with
 * 0 meaning empty; UINT64_MAX is not a valid key) ---- */
struct mt_map {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap, len;
	unsigned shift;               /* 64 - log2(cap), for mt_hash */
};

void mt_map_init(struct mt_map *m);
void mt_map_release(struct mt_map *m);
/* Stores KEY -> VAL (replacing); -1 when out of memory. */
int mt_map_put(struct mt_map *m, uint64_t key, uint32_t val);

/* ---- the live set: one entry per live block, keyed by its address ---- */
/* 24 bytes, in one 32-byte entry with its address: a lookup in the live
 * set of a big program (a table of 100 MiB and more) costs one cache miss,
 * where a key array beside a block array cost two. The rare label and
 * task (the annotation API) live in a second, side live set keyed by the
 * same address, whose blocks hold them in place of site and thread; the
 * block in the main set says so with MT_EXTRA. */
struct mt_block {
	uint64_t size_func;           /* size in the low 56 bits, func in the
				       * next 7, MT_EXTRA in the top one */
	uint64_t time;
	union {
		struct {
			uint32_t site;        /* index into the model's sites */
			uint32_t thread;      /* index into the model's threads */
		};
		struct {                      /* in the side set (below) */
			uint32_t label;       /* 1 + label index, 0 none */
			uint32_t task;        /* 1 + task index, 0 none */
		};
	};
};

#define MT_SIZE_MAX ((1ull << 56) - 1)
#define MT_EXTRA (1ull << 63)         /* a label or task in the side table */

static inline uint64_t mt_block_size(const struct mt_block *b)
{
	return b->size_func & MT_SIZE_MAX;
}

static inline unsigned mt_block_func(const struct mt_block *b)
{
	return (unsigned)(b->size_func >> 56) & 0x7f;
}

static inline void mt_block_set(struct mt_block *b, uint64_t size, unsigned func)
{
	b->size_func = (size > MT_SIZE_MAX ? MT_SIZE_MAX : size) | (uint64_t)(func & 0x7f) << 56;
}

struct mt_entry {
	uint64_t key;                 /* the block's address, 0 = empty */
	struct mt_block b;
};

struct mt_live {
	struct mt_entry *e;
	size_t cap, len;
	size_t grow_at;               /* len that makes it grow: 5/8 of cap */
	unsigned shift;               /* 64 - log2(cap), for mt_hash */
};

static inline size_t mt_hash(uint64_t key, unsigned shift)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> shift);
}

/* Index stored for KEY, or UINT32_MAX when absent. */
static inline uint32_t mt_map_get(const struct mt_map *m, uint64_t key)
{
	size_t i;
	uint64_t k = key + 1;
	if (!m->cap)
		return UINT32_MAX;
	for (i = mt_hash(k, m->shift);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == k)
			return m->vals[i];
		if (!m->keys[i])
			return UINT32_MAX;
	}
}

void mt_live_init(struct mt_live *l);
void mt_live_release(struct mt_live *l);
/* Doubles the table; -1 when out of memory. */
int mt_live_grow(struct mt_live *l);

/*
 * The per-event operations are inline: the model calls them twice an
 * event, and a call's register saves cost as much as the probe itself on
 * a live set that stays in the cache.
 */

/* The block at ADDR, or NULL. The pointer is valid until the next insert
 * or removal. */
static inline struct mt_block *mt_live_find(const struct mt_live *l, uint64_t addr)
{
	size_t i, mask = l->cap - 1;
	if (!l->cap || !addr)
		return NULL;
	for (i = mt_hash(addr, l->shift);; i = (i + 1) & mask) {
		if (l->e[i].key == addr)
			return &l->e[i].b;
		if (!l->e[i].key)
			return NULL;
	}
}

/* The entry holding block B (from mt_live_find, _upsert or _insert). */
static inline struct mt_entry *mt_live_entry(const struct mt_live *l, const struct mt_block *b)
{
	(void)l;
	return (struct mt_entry *)(void *)((char *)b - offsetof(struct mt_entry, b));
}

/* The address of block B. */
static inline uint64_t mt_live_addr(const struct mt_live *l, const struct mt_block *b)
{
	return mt_live_entry(l, b)->key;
}

/* A slot for ADDR (addr != 0), not present yet; the caller fills it.
 * NULL when out of memory. */
struct mt_block *mt_live_insert(struct mt_live *l, uint64_t addr);

/* The slot for ADDR (addr != 0) in one probe: the live block when there
 * is one (*EXISTED = 1, contents kept), else a new zeroed slot. */
static inline struct mt_block *mt_live_upsert(struct mt_live *l, uint64_t addr,
					      int *existed)
{
	size_t i, mask;
	if (l->len >= l->grow_at && mt_live_grow(l) < 0)
		return NULL;
	mask = l->cap - 1;
	for (i = mt_hash(addr, l->shift); l->e[i].key; i = (i + 1) & mask) {
		if (l->e[i].key == addr) {
			*existed = 1;
			return &l->e[i].b;
		}
	}
	*existed = 0;
	l->e[i].key = addr;
	memset(&l->e[i].b, 0, sizeof(l->e[i].b));
	l->len++;
	return &l->e[i].b;
}

/* Asks the CPU to start loading ADDR's home slot and the line after it:
 * the live set of a big program is far larger than the caches, and a
 * batch of events known in advance can hide that latency. The next line
 * too, because a removal reads on to the end of the probe run (which the
 * next slot begins half the time, 32-byte entries two to a line): unloaded,
 * it was a third of the time of a trace keeping a million blocks live.
 * Always inline: GCC splits the body off
 * (fnsplit), finds the part without side effects (a prefetch is none to
 * it) and deletes its calls, so that nothing was ever prefetched. */
static inline __attribute__((always_inline)) void mt_live_prefetch(const struct mt_live *l,
								   uint64_t addr)
{
	if (l->cap) {
		size_t i = mt_hash(addr, l->shift);
		__builtin_prefetch(&l->e[i]);
		__builtin_prefetch(&l->e[(i + 2) & (l->cap - 1)]);
	}
}

/* Removes the block B points to (from mt_live_find). */
static inline void mt_live_remove(struct mt_live *l, struct mt_block *b)
{
	size_t mask = l->cap - 1, i = (size_t)(mt_live_entry(l, b) - l->e), j = i;
	/* Backward-shift deletion: move later members of the probe run into
	 * the hole when their home slot does not lie between hole and them. */
	for (;;) {
		size_t home;
		j = (j + 1) & mask;
		if (!l->e[j].key)
			break;
		home = mt_hash(l->e[j].key, l->shift);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			l->e[i] = l->e[j];
			i = j;
		}
	}
	l->e[i].key = 0;
	l->len--;
}

#endif
