/*
 * flame.c - an icicle graph: the stacks holding memory, outermost frame at
 * the top, each box as wide as the bytes below it. Frames are merged by
 * function name at each level (so two call sites of one function in the
 * same caller are one box), which is what people mean by a flame graph.
 *
 * The tree grows with distinct stacks, not with events; drawing skips boxes
 * narrower than half a pixel, so a huge tree still draws in bounded time.
 */
#include "chart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscommon.h"

static uint64_t name_hash(uint32_t parent, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ULL);
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static int hash_grow(struct flame *f)
{
	size_t ncap = f->hcap ? f->hcap * 2 : 256, i;
	uint32_t *nh = calloc(ncap, sizeof(*nh));
	if (!nh)
		return -1;
	for (i = 1; i < f->n; i++) {
		size_t j = name_hash(f->nodes[i].parent, f->nodes[i].name) & (ncap - 1);
		while (nh[j])
			j = (j + 1) & (ncap - 1);
		nh[j] = (uint32_t)i + 1;
	}
	free(f->hash);
	f->hash = nh;
	f->hcap = ncap;
	return 0;
}

int flame_init(struct flame *f)
{
	memset(f, 0, sizeof(*f));
	f->cap = 64;
	f->nodes = calloc(f->cap, sizeof(*f->nodes));
	if (!f->nodes)
		return -1;
	f->n = 1;
	f->nodes[0].name = strdup("all");
	if (!f->nodes[0].name || hash_grow(f) < 0) {
		flame_release(f);
		return -1;
	}
	return 0;
}

/* The child of PARENT named NAME, created when missing; 0 on ENOMEM. */
static uint32_t child_of(struct flame *f, uint32_t parent, const char *name)
{
	size_t j;
	uint32_t idx;
	struct flame_node *nd;
	for (j = name_hash(parent, name) & (f->hcap - 1); f->hash[j];
	     j = (j + 1) & (f->hcap - 1)) {
		nd = &f->nodes[f->hash[j] - 1];
		if (nd->parent == parent && strcmp(nd->name, name) == 0)
			return f->hash[j] - 1;
	}
	if (f->n >= UINT32_MAX - 1)
		return 0;
	if (f->n == f->cap) {
		struct flame_node *nn = realloc(f->nodes, f->cap * 2 * sizeof(*nn));
		if (!nn)
			return 0;
		f->nodes = nn;
		f->cap *= 2;
	}
	idx = (uint32_t)f->n;
	nd = &f->nodes[idx];
	memset(nd, 0, sizeof(*nd));
	nd->name = strdup(name);
	if (!nd->name)
		return 0;
	nd->parent = parent;
	nd->sibling = f->nodes[parent].child;
	f->nodes[parent].child = idx;
	f->n++;
	f->hash[j] = idx + 1;
	if (f->n * 10 > f->hcap * 7 && hash_grow(f) < 0)
		return 0;
	return idx;
}

int flame_add(struct flame *f, const char *const *names, size_t n, uint64_t value)
{
	uint32_t node = 0;
	size_t i;
	if (value == 0)
		return 0;
	f->nodes[0].value += value;
	for (i = 0; i < n; i++) {
		node = child_of(f, node, names[i]);
		if (!node)
			return -1;
		f->nodes[node].value += value;
	}
	if (n > f->max_depth)
		f->max_depth = (unsigned)n;
	return 0;
}

void flame_release(struct flame *f)
{
	size_t i;
	for (i = 0; i < f->n; i++)
		free(f->nodes[i].name);
	free(f->nodes);
	free(f->hash);
	memset(f, 0, sizeof(*f));
}

/* ---- drawing ---- */

struct flame_draw {
	cairo_t *cr;
	const struct flame *f;
	double y0, rowh;
	unsigned rows;
	int text;
};

/* Light tints (Okabe-Ito hues) so black names stay readable; the hue comes
 * from the name, so one function keeps its colour across the graph. */
static void box_colour(cairo_t *cr, const char *name, unsigned depth)
{
	static const struct rgb tint[] = {
		{ 0.98, 0.80, 0.50 }, { 0.70, 0.85, 0.96 }, { 0.95, 0.93, 0.60 },
		{ 0.90, 0.74, 0.86 }, { 0.62, 0.88, 0.78 }, { 0.96, 0.70, 0.58 },
	};
	if (depth == 0) {
		cairo_set_source_rgb(cr, 0.82, 0.82, 0.82);
		return;
	}
	set_rgb(cr, &tint[name_hash(0, name) % (sizeof(tint) / sizeof(tint[0]))], 1);
}

static int by_value_desc(const void *a, const void *b)
{
	const struct flame_node *const *x = a, *const *y = b;
	if ((*x)->value != (*y)->value)
		return (*x)->value < (*y)->value ? 1 : -1;
	return strcmp((*x)->name, (*y)->name);
}

static void draw_node(struct flame_draw *fd, uint32_t idx, const char *label,
		      double x, double w, unsigned depth)
{
	const struct flame_node *nd = &fd->f->nodes[idx];
	const struct flame_node **kids = NULL;
	size_t nk = 0, i;
	uint32_t c;
	double y = fd->y0 + depth * fd->rowh, cx;
	char buf[512];

	box_colour(fd->cr, nd->name, depth);
	cairo_rectangle(fd->cr, x, y, w > 1.5 ? w - 0.5 : w, fd->rowh - 1);
	cairo_fill(fd->cr);
	if (fd->text && w > 24) {
		char full[600], b[32];
		const char *text = label ? label : nd->name;
		cairo_set_source_rgb(fd->cr, 0, 0, 0);
		/* With the bytes when they fit, else the name clipped. */
		if (!label) {
			snprintf(full, sizeof(full), "%s (%s)", nd->name, msc_format_bytes(nd->value, b));
			if (text_width(fd->cr, full) <= w - 6)
				text = full;
		}
		if (text_fit(fd->cr, text, w - 6, buf, sizeof(buf)))
			text_at(fd->cr, x + 3, y + fd->rowh / 2 + 3.5, 0, buf);
	}
	if (depth + 1 >= fd->rows || !nd->child)
		return;
	for (c = nd->child; c; c = fd->f->nodes[c].sibling)
		nk++;
	kids = malloc(nk * sizeof(*kids));
	if (!kids)
		return;
	for (i = 0, c = nd->child; c; c = fd->f->nodes[c].sibling)
		kids[i++] = &fd->f->nodes[c];
	qsort(kids, nk, sizeof(*kids), by_value_desc);
	cx = x;
	for (i = 0; i < nk; i++) {
		double cw = w * (double)kids[i]->value / (double)nd->value;
		/* Sorted by size: once one is too thin, so are the rest. */
		if (cw < 0.5)
			break;
		draw_node(fd, (uint32_t)(kids[i] - fd->f->nodes), NULL, cx, cw, depth + 1);
		cx += cw;
	}
	free(kids);
}

void draw_flame(cairo_t *cr, const struct rect *r, const struct flame *f,
		const char *what)
{
	struct flame_draw fd;
	char heading[256], root[640], b[32];
	double avail;
	uint32_t top = 0;
	unsigned skipped = 0, depth;

	msc_format_bytes(f->n ? f->nodes[0].value : 0, b);
	snprintf(heading, sizeof(heading), "where memory was allocated: %s", what);
	draw_heading(cr, r, heading);
	if (!f->n || f->nodes[0].value == 0) {
		draw_message(cr, r, "no allocations recorded");
		return;
	}
	fd.cr = cr;
	fd.f = f;
	fd.y0 = r->y + 30;
	avail = r->h - 30 - 10;
	/* Rows stay readable (at least 13 px, with names); what does not fit
	 * is first the chain of frames every stack shares (_start, main, the
	 * interpreter's entry), folded into the root box, then the deepest
	 * levels, which are also the thinnest. */
	fd.rows = (unsigned)(avail / 13);
	if (fd.rows < 2)
		fd.rows = 2;
	while (f->max_depth + 1 - skipped > fd.rows) {
		uint32_t c = f->nodes[top].child;
		if (!c || f->nodes[c].sibling || f->nodes[c].value != f->nodes[top].value)
			break;
		top = c;
		skipped++;
	}
	depth = f->max_depth + 1 - skipped;
	if (depth < fd.rows)
		fd.rows = depth;
	fd.rowh = avail / fd.rows;
	if (fd.rowh > 18)
		fd.rowh = 18;
	fd.text = 1;
	if (skipped == 0) {
		snprintf(root, sizeof(root), "all: %s %s", b, what);
	} else {
		/* Outermost and innermost shared frames are enough context. */
		uint32_t first = f->nodes[0].child;
		if (skipped == 1)
			snprintf(root, sizeof(root), "all: %s %s, in %s", b, what,
				 f->nodes[top].name);
		else
			snprintf(root, sizeof(root), "all: %s %s, in %s \xe2\x80\xba \xe2\x80\xa6 \xe2\x80\xba %s (%u shared frames)",
				 b, what, f->nodes[first].name, f->nodes[top].name, skipped);
	}
	text_font(cr, fd.rowh >= 16 ? 11 : 9.5, 0);
	draw_node(&fd, top, root, r->x + 10, r->w - 20, 0);
	if (fd.rows < depth) {
		cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
		text_font(cr, 11, 0);
		snprintf(heading, sizeof(heading), "%u deeper levels not shown",
			 depth - fd.rows);
		text_at(cr, r->x + r->w - 10, r->y + 18, 1, heading);
	}
}
