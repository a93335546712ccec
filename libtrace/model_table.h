/*
 * model_table.h - private hash tables of the analysis model (not installed):
 * an open-addressing map from a 64-bit key to a 32-bit index, used for
 * sites, threads, modules and tasks, and the live set of allocations, which
 * must absorb tens of millions of inserts and deletes a second.
 *
 * Both use linear probing on a power-of-two table with Fibonacci hashing
 * and backward-shift deletion (no tombstones, so a long churn never
 * degrades the table), and grow at 5/8 load.
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
/* 32 bytes, beside an 8-byte key: the live set of a big program is most of
 * the model's memory. */
struct mt_block {
	uint64_t size_func;           /* size in the low 56 bits, func above */
	uint64_t time;
	uint32_t site;                /* index into the model's sites */
	uint32_t thread;              /* index into the model's threads */
	uint32_t label;               /* 1 + label index, 0 none */
	uint32_t task;                /* 1 + task index, 0 none */
};

#define MT_SIZE_MAX ((1ull << 56) - 1)

static inline uint64_t mt_block_size(const struct mt_block *b)
{
	return b->size_func & MT_SIZE_MAX;
}

static inline unsigned mt_block_func(const struct mt_block *b)
{
	return (unsigned)(b->size_func >> 56);
}

/* Sizes of 2^56 bytes and more (never granted) are kept as 2^56 - 1. */
static inline void mt_block_set(struct mt_block *b, uint64_t size, unsigned func)
{
	b->size_func = (size > MT_SIZE_MAX ? MT_SIZE_MAX : size) | (uint64_t)func << 56;
}

/*
 * The addresses apart from the blocks: probing reads only keys, eight to a
 * cache line (a live set of thousands then probes in the first-level
 * cache), and the block is touched once, where the key is found.
 */
struct mt_live {
	uint64_t *keys;               /* block addresses, 0 = empty slot */
	struct mt_block *slots;       /* the block of keys[i] at slots[i] */
	size_t cap, len;
	size_t grow_at;               /* len that makes it grow: 5/8 of cap */
	unsigned shift;               /* 64 - log2(cap), for mt_hash */
};

/*
 * Fibonacci hashing: the top bits of the product depend on every bit of
 * the key, so aligned and strided addresses spread well. (Lower bits of the
 * product do not: they gave runs of ~60 probes for blocks 64 bytes apart.)
 */
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
		if (l->keys[i] == addr)
			return &l->slots[i];
		if (!l->keys[i])
			return NULL;
	}
}

/* The address of block B (from mt_live_find, _upsert or _insert). */
static inline uint64_t mt_live_addr(const struct mt_live *l, const struct mt_block *b)
{
	return l->keys[b - l->slots];
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
	for (i = mt_hash(addr, l->shift); l->keys[i]; i = (i + 1) & mask) {
		if (l->keys[i] == addr) {
			*existed = 1;
			return &l->slots[i];
		}
	}
	*existed = 0;
	l->keys[i] = addr;
	memset(&l->slots[i], 0, sizeof(l->slots[i]));
	l->len++;
	return &l->slots[i];
}

/* Asks the CPU to start loading ADDR's home slot: the live set of a big
 * program is far larger than the caches, and a batch of events known in
 * advance can hide that latency. Always inline: GCC splits the body off
 * (fnsplit), finds the part without side effects (a prefetch is none to
 * it) and deletes its calls, so that nothing was ever prefetched. */
static inline __attribute__((always_inline)) void mt_live_prefetch(const struct mt_live *l,
								   uint64_t addr)
{
	if (l->cap) {
		size_t i = mt_hash(addr, l->shift);
		__builtin_prefetch(&l->keys[i]);
		__builtin_prefetch(&l->slots[i]);
	}
}

/* Removes the block B points to (from mt_live_find). */
static inline void mt_live_remove(struct mt_live *l, struct mt_block *b)
{
	size_t mask = l->cap - 1, i = (size_t)(b - l->slots), j = i;
	/* Backward-shift deletion: move later members of the probe run into
	 * the hole when their home slot does not lie between hole and them. */
	for (;;) {
		size_t home;
		j = (j + 1) & mask;
		if (!l->keys[j])
			break;
		home = mt_hash(l->keys[j], l->shift);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			l->keys[i] = l->keys[j];
			l->slots[i] = l->slots[j];
			i = j;
		}
	}
	l->keys[i] = 0;
	l->len--;
}
#endif
