/*
 * symtab.c - a module's ELF symbol table, sorted by address.
 *
 * dwfl_module_addrinfo reads every symbol of the module at each call: in a
 * large stripped program that is about a millisecond an address (gcc's cc1),
 * and it was most of ms-stats' time on such traces. Here the table is read
 * once and sorted; a lookup is a binary search and a short walk back over
 * the symbols whose range may still cover the address.
 *
 * The symbol chosen is the one libdwfl would choose, so that names do not
 * depend on which of the two looked them up (tests/unit/test_symbols.c
 * compares them address by address on real libraries):
 *  - global symbols are searched first, local ones only when no sized
 *    global covers the address (and no sizeless global sits right on it);
 *  - of the sized symbols covering the address, taken in table order, one
 *    replaces the one chosen so far when it starts later or binds more
 *    strongly (global, weak, local), or starts at the same place and is
 *    smaller without binding more weakly;
 *  - without one, a sizeless symbol (an assembly label): the nearest one
 *    below the address, in the same section, when no symbol's range
 *    passes it (the last of several at that place, in table order).
 */
#include "symtab.h"

#include <gelf.h>
#include <stdlib.h>
#include <string.h>

struct fsym {
	uint64_t start, size;
	const char *name;
	uint32_t order;           /* index in the module's table */
	uint32_t shndx;           /* section index (extended indexes resolved) */
	int bind;                 /* binding_value() */
};

/* The global or the local symbols, sorted by start, then table order. */
struct part {
	struct fsym *s;
	uint64_t *max_end;        /* the largest start + size of s[0..i] */
	size_t n, cap;
};

struct mst__symtab {
	struct part part[2];      /* [0] global symbols, [1] local ones */
	int has_locals;           /* libdwfl searches them (first_global > 1) */
	/* SHF_ALLOC sections of the module's ELF, by address (bias applied),
	 * for a sizeless symbol's "same section as the address" */
	struct scn_range { uint64_t lo, hi; uint32_t ndx; } *scn;
	size_t nscn;
};

/* GELF_ST_BIND as higher-is-better, libdwfl's order. */
static int binding_value(const GElf_Sym *sym)
{
	switch (GELF_ST_BIND(sym->st_info)) {
	case STB_GLOBAL:
		return 3;
	case STB_WEAK:
		return 2;
	case STB_LOCAL:
		return 1;
	default:
		return 0;
	}
}

static int cmp_fsym(const void *a, const void *b)
{
	const struct fsym *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int part_add(struct part *p, const struct fsym *f)
{
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		struct fsym *n = realloc(p->s, ncap * sizeof(*n));
		if (!n)
			return -1;
		p->s = n;
		p->cap = ncap;
	}
	p->s[p->n++] = *f;
	return 0;
}

static int part_finish(struct part *p)
{
	uint64_t m = 0;
	size_t i;
	if (!p->n)
		return 0;
	qsort(p->s, p->n, sizeof(*p->s), cmp_fsym);
	p->max_end = malloc(p->n * sizeof(*p->max_end));
	if (!p->max_end)
		return -1;
	for (i = 0; i < p->n; i++) {
		uint64_t end = p->s[i].start + p->s[i].size;
		if (end > m)
			m = end;
		p->max_end[i] = m;
	}
	return 0;
}

static int cmp_scn(const void *a, const void *b)
{
	const struct scn_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->ndx < y->ndx ? -1 : x->ndx > y->ndx;
}

/* The module's allocated sections as libdwfl's own section lookup sees
 * them: sh_addr plus the module's bias, sorted by address. */
static int read_sections(struct mst__symtab *t, Dwfl_Module *mod)
{
	GElf_Addr bias = 0;
	Elf *elf = dwfl_module_getelf(mod, &bias);
	Elf_Scn *scn = NULL;
	size_t cap = 0;
	if (!elf)
		return 0;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC))
			continue;
		if (t->nscn == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct scn_range *n = realloc(t->scn, ncap * sizeof(*n));
			if (!n)
				return -1;
			t->scn = n;
			cap = ncap;
		}
		t->scn[t->nscn].lo = sh.sh_addr + bias;
		t->scn[t->nscn].hi = sh.sh_addr + sh.sh_size + bias;
		t->scn[t->nscn].ndx = (uint32_t)elf_ndxscn(scn);
		t->nscn++;
	}
	qsort(t->scn, t->nscn, sizeof(*t->scn), cmp_scn);
	return 0;
}

struct mst__symtab *mst__symtab_new(Dwfl_Module *mod)
{
	struct mst__symtab *t = calloc(1, sizeof(*t));
	int n, first, i;

	if (!t)
		return NULL;
	n = dwfl_module_getsymtab(mod);
	first = n > 0 ? dwfl_module_getsymtab_first_global(mod) : -1;
	if (first < 0)
		return t;             /* no symbols: every lookup finds none */
	t->has_locals = first > 1;
	if (first == 0)
		first = 1;            /* a .dynsym read through the phdrs: one part */
	for (i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		Elf *elf;
		Dwarf_Addr bias;
		const char *name = dwfl_module_getsym_info(mod, i, &sym, &addr, &shndx,
							   &elf, &bias);
		int type = GELF_ST_TYPE(sym.st_info);
		struct fsym f;

		if (!name || !name[0] || sym.st_shndx == SHN_UNDEF || type == STT_SECTION ||
		    type == STT_FILE || type == STT_TLS)
			continue;
		f.start = addr;
		f.size = sym.st_size;
		f.name = name;
		f.order = (uint32_t)i;
		f.shndx = shndx;
		f.bind = binding_value(&sym);
		if (part_add(&t->part[i >= first ? 0 : 1], &f) < 0)
			goto fail;
	}
	if (part_finish(&t->part[0]) < 0 || part_finish(&t->part[1]) < 0 ||
	    read_sections(t, mod) < 0)
		goto fail;
	return t;
fail:
	mst__symtab_free(t);
	return NULL;
}

void mst__symtab_free(struct mst__symtab *t)
{
	int i;
	if (!t)
		return;
	for (i = 0; i < 2; i++) {
		free(t->part[i].s);
		free(t->part[i].max_end);
	}
	free(t->scn);
	free(t);
}

/* How many symbols of P start at or below ADDR. */
static size_t count_upto(const struct part *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->s[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index of the allocated section holding A, 0 (SHN_UNDEF) if none.
 * As libdwfl has it, a section's end address is inside it, unless it is
 * where the next one starts. */
static uint32_t section_of(const struct mst__symtab *t, uint64_t a)
{
	size_t lo = 0, hi = t->nscn;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a < t->scn[mid].lo) {
			hi = mid;
		} else if (a > t->scn[mid].hi) {
			lo = mid + 1;
		} else {
			if (a == t->scn[mid].hi && mid + 1 < t->nscn && a == t->scn[mid + 1].lo)
				mid++;
			return t->scn[mid].ndx;
		}
	}
	return 0;
}

static int same_section(const struct mst__symtab *t, const struct fsym *f, uint64_t addr)
{
	if (f->shndx >= SHN_LORESERVE)
		return f->start == addr;  /* absolute and the like: exact only */
	return section_of(t, f->start) == section_of(t, addr);
}

/* Whether sized symbol F, met after CUR in table order, replaces it. */
static int replaces(const struct fsym *cur, const struct fsym *f)
{
	if (!cur || cur->start < f->start || cur->bind < f->bind)
		return 1;
	return cur->start == f->start &&
	       ((cur->size > f->size && cur->bind <= f->bind) ||
		(cur->size >= f->size && cur->bind < f->bind));
}

/* Searches part P for ADDR: returns the sized symbol chosen, or NULL; raises
 * *MIN_LABEL to the largest end of P's symbols at or below ADDR, and *K to
 * how many of them there are. */
static const struct fsym *search_sized(const struct part *p, uint64_t addr,
				       uint64_t *min_label, size_t *k)
{
	const struct fsym *best = NULL;
	uint32_t next = 0;
	size_t i;

	*k = count_upto(p, addr);
	if (!*k)
		return NULL;
	if (p->max_end[*k - 1] > *min_label)
		*min_label = p->max_end[*k - 1];
	/*
	 * The symbols covering ADDR, in table order: each round takes the one
	 * of lowest order above the last one taken (covering symbols are few;
	 * the walk stops where no earlier symbol reaches past ADDR).
	 */
	for (;;) {
		const struct fsym *f = NULL;
		for (i = *k; i-- > 0 && p->max_end[i] > addr;) {
			const struct fsym *c = &p->s[i];
			if (c->size && addr - c->start < c->size && c->order >= next &&
			    (!f || c->order < f->order))
				f = c;
		}
		if (!f)
			return best;
		if (replaces(best, f))
			best = f;
		next = f->order + 1;
	}
}

/* The last sizeless symbol of P (in table order) starting at V, in ADDR's
 * section. */
static const struct fsym *sizeless_at(const struct mst__symtab *t, const struct part *p,
				      uint64_t v, uint64_t addr)
{
	const struct fsym *f = NULL;
	size_t i;
	for (i = count_upto(p, v); i-- > 0 && p->s[i].start == v;)
		if (!p->s[i].size && (!f || p->s[i].order > f->order) &&
		    same_section(t, &p->s[i], addr))
			f = &p->s[i];
	return f;
}

/* The largest start of a sizeless symbol among P's first K, or 0 with
 * *FOUND clear. */
static uint64_t sizeless_top(const struct part *p, size_t k, int *found)
{
	size_t i;
	for (i = k; i-- > 0;)
		if (!p->s[i].size) {
			*found = 1;
			return p->s[i].start;
		}
	*found = 0;
	return 0;
}

const char *mst__symtab_lookup(const struct mst__symtab *t, uint64_t addr)
{
	const struct part *g = &t->part[0], *l = &t->part[1];
	const struct fsym *f, *sg = NULL, *sl = NULL;
	uint64_t min_label = 0, vg = 0, vl = 0, v;
	size_t kg, kl = 0;
	int hg, hl = 0;

	f = search_sized(g, addr, &min_label, &kg);
	if (f)
		return f->name;
	vg = sizeless_top(g, kg, &hg);
	if (hg)
		sg = sizeless_at(t, g, vg, addr);
	/* the locals, unless a sizeless global sits right on the address */
	if (t->has_locals && !(sg && sg->start == addr)) {
		f = search_sized(l, addr, &min_label, &kl);
		if (f)
			return f->name;
		vl = sizeless_top(l, kl, &hl);
	}
	if (!hg && !hl)
		return NULL;
	v = !hl || (hg && vg >= vl) ? vg : vl;
	if (v < min_label)
		return NULL;          /* a sized symbol's range passes it */
	/* the last in search order: locals come after globals */
	if (hl && vl == v && (sl = sizeless_at(t, l, v, addr)) != NULL)
		return sl->name;
	return hg && vg == v && sg ? sg->name : NULL;
}
