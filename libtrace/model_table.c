/*
 * model_table.c - the open-addressing tables behind the analysis model
 * (see model_table.h for why they look the way they do).
 */
#include "model_table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MT_MIN_CAP 64
#define MT_LIVE_MIN_CAP 128          /* a 4 KiB page */
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

/*
 * Growing doubles the live set's table in place: the old entries stay in
 * its first half, then spread out into the whole in one pass from the top
 * down. A large table is an anonymous mapping of its own, extended by
 * mremap (which moves pages, copying nothing). A table of a million blocks
 * is 64 MiB: allocating a second one, faulting it in and scattering the
 * entries into it was a third of the time of a trace that keeps that many
 * blocks live, and the old table and the new were both held at the end
 * (96 MiB for a 64 MiB table). A small one is a heap block copied into one
 * twice its size: mremap takes the address space's lock and has the other
 * threads' CPUs flush their TLBs, which cost more than copying some
 * kilobytes while the read-ahead thread faulted pages in.
 */
#define MT_MAP_BYTES (4u << 20)

static size_t table_bytes(size_t cap)
{
	return cap * sizeof(struct mt_entry);
}

/* A table of CAP entries, all empty; NULL when out of memory. */
static struct mt_entry *table_alloc(size_t cap)
{
	void *p;
	if (table_bytes(cap) >= MT_MAP_BYTES) {
		p = mmap(NULL, table_bytes(cap), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	/* 32-byte entries on 64-byte lines: an entry never straddles two */
	if (posix_memalign(&p, 64, table_bytes(cap)) != 0)
		return NULL;
	return memset(p, 0, table_bytes(cap));
}

static void table_free(struct mt_entry *e, size_t cap)
{
	if (table_bytes(cap) >= MT_MAP_BYTES)
		munmap(e, table_bytes(cap));
	else
		free(e);
}

/* Table E of OLDCAP entries, twice as large: its entries first, then
 * empty ones; NULL (and E as it was) when out of memory. */
static struct mt_entry *table_double(struct mt_entry *e, size_t oldcap)
{
	struct mt_entry *n;
	if (table_bytes(oldcap) >= MT_MAP_BYTES) {
		n = mremap(e, table_bytes(oldcap), table_bytes(oldcap * 2), MREMAP_MAYMOVE);
		return n == MAP_FAILED ? NULL : n;
	}
	if (!(n = table_alloc(oldcap * 2)))
		return NULL;
	memcpy(n, e, table_bytes(oldcap));
	table_free(e, oldcap);
	return n;
}

void mt_live_init(struct mt_live *l)
{
	memset(l, 0, sizeof(*l));
}

void mt_live_release(struct mt_live *l)
{
	if (l->e)
		table_free(l->e, l->cap);
	memset(l, 0, sizeof(*l));
}

static void live_set_cap(struct mt_live *l, size_t cap)
{
	l->cap = cap;
	/* cap is a power of two, 128 and up. Probe runs vary less at a
	 * quarter full, and a wrongly predicted end of run costs more than
	 * the probe: small tables (under 2 MB, in the second-level cache)
	 * grow at 1/4, larger ones at 5/8, where memory counts more. */
	l->grow_at = cap < MT_SMALL_CAP ? cap / 4 : cap / 8 * 5;
	l->shift = 64 - log2_cap(cap);
}

/* The empty slot where ADDR goes (not present). */
static size_t live_slot(const struct mt_live *l, uint64_t addr)
{
	size_t i;
	for (i = mt_hash(addr, l->shift); l->e[i].key; i = (i + 1) & (l->cap - 1))
		;
	return i;
}

/* The full product mt_hash takes its top bits from: entries in this order
 * are in the order of their home slots at every table size. */
static uint64_t hash_order(uint64_t key)
{
	return key * 0x9E3779B97F4A7C15ull;
}

#define RUN_CHUNK 64

/*
 * Moves the run of entries in old slots [A, A + LEN) (the slot before A
 * empty, none of them wrapped around the table's end) to their places in
 * the doubled table L now describes. Sorted by home, each goes to its new
 * home or just after the one before, whichever is later: a valid linear
 * probing layout, in new slots [2A, 2(A + LEN) - 1], so this run lands
 * clear of every other; and the K-th lands at 2A + K or later, never
 * below its old slot A + K, so moving them from the last down overwrites
 * nothing still to move. Positions come a chunk at a time (a run longer
 * than RUN_CHUNK, rare, recomputes its prefix once a chunk).
 */
static void move_run(struct mt_live *l, size_t a, size_t len)
{
	struct mt_entry *e = l->e + a;
	size_t pos[RUN_CHUNK], k, end;

	for (k = 1; k < len; k++) {   /* insertion sort: runs are short and
				       * nearly sorted already */
		struct mt_entry x = e[k];
		uint64_t hx = hash_order(x.key);
		size_t j = k;
		for (; j > 0 && hash_order(e[j - 1].key) > hx; j--)
			e[j] = e[j - 1];
		e[j] = x;
	}
	for (end = len; end > 0;) {
		size_t begin = end > RUN_CHUNK ? end - RUN_CHUNK : 0, p = 0;
		for (k = 0; k < end; k++) {
			size_t home = mt_hash(e[k].key, l->shift);
			p = k && p + 1 > home ? p + 1 : home;
			if (k >= begin)
				pos[k - begin] = p;
		}
		for (k = end; k-- > begin;) {
			size_t to = pos[k - begin];
			if (to != a + k) {
				l->e[to] = e[k];
				e[k].key = 0;
			}
		}
		end = begin;
	}
}

int mt_live_grow(struct mt_live *l)
{
	size_t oldcap = l->cap, cap = oldcap ? oldcap * 2 : MT_LIVE_MIN_CAP, lo = 0, hi = oldcap;
	struct mt_entry *e, *wrapped = NULL;
	size_t nwrapped = 0, i;

	if (!oldcap) {
		if (!(e = table_alloc(cap)))
			return -1;
		l->e = e;
		live_set_cap(l, cap);
		return 0;
	}
	/* The run that wraps from the table's end to its start would move
	 * towards both ends: it is set aside (before anything changes, so
	 * that running out of memory leaves the table as it was) and its
	 * entries are inserted last. The table is never full, so it ends. */
	if (l->e[oldcap - 1].key) {
		for (hi = oldcap - 1; l->e[hi - 1].key; hi--)
			;
		while (l->e[lo].key)
			lo++;
		nwrapped = oldcap - hi + lo;
		wrapped = malloc(nwrapped * sizeof(*wrapped));
		if (!wrapped)
			return -1;
		memcpy(wrapped, l->e + hi, (oldcap - hi) * sizeof(*wrapped));
		memcpy(wrapped + oldcap - hi, l->e, lo * sizeof(*wrapped));
	}
	if (!(e = table_double(l->e, oldcap))) {
		free(wrapped);
		return -1;
	}
	l->e = e;
	live_set_cap(l, cap);
	for (i = hi; i < oldcap; i++)
		e[i].key = 0;
	for (i = 0; i < lo; i++)
		e[i].key = 0;
	/* the other runs, from the top down (the new half is zero) */
	for (i = hi; i > lo;) {
		size_t end = i;
		if (!e[i - 1].key) {
			i--;
			continue;
		}
		while (i > lo && e[i - 1].key)
			i--;
		move_run(l, i, end - i);
	}
	for (i = 0; i < nwrapped; i++)
		e[live_slot(l, wrapped[i].key)] = wrapped[i];
	free(wrapped);
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
