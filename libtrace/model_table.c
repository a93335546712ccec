/*
 * model_table.c - the open-addressing tables behind the analysis model
 * (see model_table.h for why they look the way they do).
 */
#include "model_table.h"

#include <stdlib.h>
#include <string.h>

#define MT_MIN_CAP 64
#define MT_SMALL_CAP 65536

_Static_assert(sizeof(struct mt_block) == 24 && sizeof(struct mt_entry) == 32,
	       "a live block and its address fit a 32-byte entry");

/* log2 of a power of two */
static unsigned log2_cap(size_t cap)
{
	return 63u - (unsigned)__builtin_clzll((unsigned long long)cap);
}

/* ---- map ---- */

void mt_map_init(struct mt_map *m)
{
	memset(m, 0, sizeof(*m));
}

void mt_map_release(struct mt_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static void map_place(struct mt_map *m, uint64_t k, uint32_t v)
{
	size_t i;
	for (i = mt_hash(k, m->shift); m->keys[i] && m->keys[i] != k;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i])
		m->len++;
	m->keys[i] = k;
	m->vals[i] = v;
}

static int map_grow(struct mt_map *m)
{
	struct mt_map n;
	size_t i;
	n.cap = m->cap ? m->cap * 2 : MT_MIN_CAP;
	n.shift = 64 - log2_cap(n.cap);
	n.len = 0;
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = malloc(n.cap * sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -1;
	}
	for (i = 0; i < m->cap; i++)
		if (m->keys[i])
			map_place(&n, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

int mt_map_put(struct mt_map *m, uint64_t key, uint32_t val)
{
	if ((m->len + 1) * 8 > m->cap * 5 && map_grow(m) < 0)
		return -1;
	map_place(m, key + 1, val);
	return 0;
}

/* ---- live set ---- */

void mt_live_init(struct mt_live *l)
{
	memset(l, 0, sizeof(*l));
}

void mt_live_release(struct mt_live *l)
{
	free(l->e);
	memset(l, 0, sizeof(*l));
}

/* The empty slot where ADDR goes (not present). */
static size_t live_slot(const struct mt_live *l, uint64_t addr)
{
	size_t i;
	for (i = mt_hash(addr, l->shift); l->e[i].key; i = (i + 1) & (l->cap - 1))
		;
	return i;
}

int mt_live_grow(struct mt_live *l)
{
	size_t cap = l->cap ? l->cap * 2 : MT_MIN_CAP, i;
	struct mt_entry *old = l->e, *n;
	size_t oldcap = l->cap;

	/* 32-byte entries on 64-byte lines: an entry never straddles two */
	if (posix_memalign((void **)&n, 64, cap * sizeof(*n)) != 0)
		return -1;
	for (i = 0; i < cap; i++)
		n[i].key = 0;
	l->e = n;
	l->cap = cap;
	/* cap is a power of two, 64 and up. Probe runs vary less at a
	 * quarter full, and a wrongly predicted end of run costs more than
	 * the probe: small tables (under 2 MB, in the second-level cache)
	 * grow at 1/4, larger ones at 5/8, where memory counts more. */
	l->grow_at = cap < MT_SMALL_CAP ? cap / 4 : cap / 8 * 5;
	l->shift = 64 - log2_cap(cap);
	for (i = 0; i < oldcap; i++)
		if (old[i].key)
			n[live_slot(l, old[i].key)] = old[i];
	free(old);
	return 0;
}

struct mt_block *mt_live_insert(struct mt_live *l, uint64_t addr)
{
	struct mt_block *b;
	size_t i;
	if (l->len >= l->grow_at && mt_live_grow(l) < 0)
		return NULL;
	i = live_slot(l, addr);
	l->e[i].key = addr;
	b = &l->e[i].b;
	memset(b, 0, sizeof(*b));
	l->len++;
	return b;
}
