/*
 * charts.c - the timeline, histogram and threads charts, drawn with cairo
 * into a rectangle from the plain data of chart.h.
 *
 * Every chart is reduced to pixel columns or rows before it is drawn, so
 * the drawing costs the same for a trace of ten events or ten hours, and
 * the vector output (SVG, PDF) stays small.
 */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscommon.h"

#define FONT_TICK 11.0
#define FONT_LABEL 12.0
#define FONT_HEADING 14.0
#define FONT_TITLE 19.0

static const struct rgb ink = { 0.13, 0.13, 0.13 };
static const struct rgb grid = { 0.88, 0.88, 0.88 };
static const struct rgb muted = { 0.40, 0.40, 0.40 };

/* ---- text ---- */

void text_font(cairo_t *cr, double size, int bold)
{
	cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

double text_width(cairo_t *cr, const char *s)
{
	cairo_text_extents_t e;
	cairo_text_extents(cr, s, &e);
	return e.x_advance;
}

void text_at(cairo_t *cr, double x, double y, double xalign, const char *s)
{
	cairo_move_to(cr, x - xalign * text_width(cr, s), y);
	cairo_show_text(cr, s);
}

int text_fit(cairo_t *cr, const char *s, double maxw, char *buf, size_t len)
{
	static const char ell[] = "\xe2\x80\xa6";   /* … */
	size_t lo = 0, hi = strlen(s), cut;
	if (len < sizeof(ell) + 1)
		return 0;
	if (hi < len && text_width(cr, s) <= maxw) {
		memcpy(buf, s, hi + 1);
		return 1;
	}
	if (hi > len - sizeof(ell))
		hi = len - sizeof(ell);
	/* Largest prefix (on a UTF-8 boundary) that fits with the ellipsis. */
	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;
		while (mid > 0 && ((unsigned char)s[mid] & 0xC0) == 0x80)
			mid--;
		if (mid <= lo) {
			hi = lo;
			break;
		}
		memcpy(buf, s, mid);
		memcpy(buf + mid, ell, sizeof(ell));
		if (text_width(cr, buf) <= maxw)
			lo = mid;
		else
			hi = mid - 1;
	}
	cut = lo;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	if (cut == 0)
		return 0;
	memcpy(buf, s, cut);
	memcpy(buf + cut, ell, sizeof(ell));
	return 1;
}

/* Text on a translucent white box, so a label stays readable over areas. */
static void text_halo(cairo_t *cr, double x, double y, double xalign, const char *s)
{
	cairo_font_extents_t fe;
	double w = text_width(cr, s), x0 = x - xalign * w;
	cairo_font_extents(cr, &fe);
	cairo_save(cr);
	cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
	cairo_rectangle(cr, x0 - 3, y - fe.ascent - 1, w + 6, fe.ascent + fe.descent + 2);
	cairo_fill(cr);
	cairo_restore(cr);
	cairo_move_to(cr, x0, y);
	cairo_show_text(cr, s);
}

void draw_title(cairo_t *cr, const struct rect *r, const char *title,
		const char *subtitle)
{
	char buf[512];
	set_rgb(cr, &ink, 1);
	text_font(cr, FONT_TITLE, 1);
	if (text_fit(cr, title, r->w - 20, buf, sizeof(buf)))
		text_at(cr, r->x + 10, r->y + 26, 0, buf);
	if (subtitle && *subtitle) {
		set_rgb(cr, &muted, 1);
		text_font(cr, FONT_LABEL, 0);
		if (text_fit(cr, subtitle, r->w - 20, buf, sizeof(buf)))
			text_at(cr, r->x + 10, r->y + 46, 0, buf);
	}
}

void draw_heading(cairo_t *cr, const struct rect *r, const char *text)
{
	char buf[256];
	set_rgb(cr, &ink, 1);
	text_font(cr, FONT_HEADING, 1);
	if (text_fit(cr, text, r->w - 20, buf, sizeof(buf)))
		text_at(cr, r->x + 10, r->y + 18, 0, buf);
}

void draw_message(cairo_t *cr, const struct rect *r, const char *text)
{
	set_rgb(cr, &muted, 1);
	text_font(cr, FONT_HEADING, 0);
	text_at(cr, r->x + r->w / 2, r->y + r->h / 2, 0.5, text);
}

/* ---- plots: a data range mapped onto a pixel rectangle ---- */

struct plot {
	struct rect a;                /* plotting area, inside the axes */
	double x0, x1, y0, y1;        /* data range */
};

static double px(const struct plot *p, double x)
{
	return p->a.x + (x - p->x0) / (p->x1 - p->x0) * p->a.w;
}

static double py(const struct plot *p, double y)
{
	return p->a.y + p->a.h - (y - p->y0) / (p->y1 - p->y0) * p->a.h;
}

enum { AXIS_BYTES, AXIS_COUNT };

/* Horizontal grid lines and labels of a value axis on the left; returns
 * after setting the plot's y range to the ticks'. */
static void y_axis(cairo_t *cr, struct plot *p, const struct ticks *t, int kind)
{
	char buf[64];
	size_t i;
	double top = t->v[t->n - 1];
	p->y0 = 0;
	p->y1 = top > 0 ? top : 1;
	text_font(cr, FONT_TICK, 0);
	cairo_set_line_width(cr, 1);
	for (i = 0; i < t->n; i++) {
		double y = round(py(p, t->v[i])) + 0.5;
		set_rgb(cr, &grid, 1);
		cairo_move_to(cr, p->a.x, y);
		cairo_line_to(cr, p->a.x + p->a.w, y);
		cairo_stroke(cr);
		if (kind == AXIS_BYTES)
			fmt_bytes_tick(t->v[i], t->step, top, buf, sizeof(buf));
		else
			fmt_count(t->v[i], buf, sizeof(buf));
		set_rgb(cr, &ink, 1);
		text_at(cr, p->a.x - 6, y + 4, 1, buf);
	}
}

/* A second value axis on the right (labels only, no grid: the grid is the
 * left axis'), for series of another magnitude; sets P's y range. */
static void right_axis(cairo_t *cr, struct plot *p, const struct ticks *t,
		       double title_x)
{
	char buf[64];
	size_t i;
	double top = t->v[t->n - 1], x = p->a.x + p->a.w;
	p->y0 = 0;
	p->y1 = top > 0 ? top : 1;
	text_font(cr, FONT_TICK, 0);
	set_rgb(cr, &muted, 1);
	cairo_set_line_width(cr, 1);
	cairo_move_to(cr, x + 0.5, p->a.y);
	cairo_line_to(cr, x + 0.5, p->a.y + p->a.h);
	cairo_stroke(cr);
	for (i = 0; i < t->n; i++) {
		double y = round(py(p, t->v[i])) + 0.5;
		cairo_move_to(cr, x, y);
		cairo_line_to(cr, x + 4, y);
		cairo_stroke(cr);
		fmt_bytes_tick(t->v[i], t->step, top, buf, sizeof(buf));
		text_at(cr, x + 12, y + 4, 0, buf);
	}
	text_font(cr, FONT_LABEL, 0);
	cairo_save(cr);
	cairo_translate(cr, title_x, p->a.y + p->a.h / 2);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, 0.5, "RSS, arena");
	cairo_restore(cr);
}

/* The frame's left and bottom edges. */
static void axes_frame(cairo_t *cr, const struct plot *p)
{
	set_rgb(cr, &ink, 1);
	cairo_set_line_width(cr, 1);
	cairo_set_dash(cr, NULL, 0, 0);
	cairo_move_to(cr, p->a.x + 0.5, p->a.y);
	cairo_line_to(cr, p->a.x + 0.5, p->a.y + p->a.h + 0.5);
	cairo_line_to(cr, p->a.x + p->a.w, p->a.y + p->a.h + 0.5);
	cairo_stroke(cr);
}

static void x_tick(cairo_t *cr, const struct plot *p, double x, const char *label)
{
	double bx = round(x) + 0.5, by = p->a.y + p->a.h;
	set_rgb(cr, &ink, 1);
	cairo_set_line_width(cr, 1);
	cairo_move_to(cr, bx, by);
	cairo_line_to(cr, bx, by + 4);
	cairo_stroke(cr);
	text_at(cr, x, by + 17, 0.5, label);
}

/* Time ticks in 1-2-5 steps of the unit chosen for the range. */
static void x_time_axis(cairo_t *cr, const struct plot *p)
{
	const struct time_unit *u = time_unit_for(p->x1);
	struct ticks t;
	char buf[64];
	size_t i;
	int target = (int)(p->a.w / 90);
	ticks_125(p->x1 / u->seconds, target < 2 ? 2 : target, &t);
	text_font(cr, FONT_TICK, 0);
	for (i = 0; i < t.n; i++) {
		double v = t.v[i] * u->seconds;
		fmt_time_tick(v, t.step * u->seconds, u, buf, sizeof(buf));
		x_tick(cr, p, px(p, v), buf);
	}
}

/* Axis titles: X below the tick labels, Y rotated along the left edge. */
static void axis_titles(cairo_t *cr, const struct plot *p, const char *xt,
			const char *yt, double ylabel_x)
{
	set_rgb(cr, &muted, 1);
	text_font(cr, FONT_LABEL, 0);
	if (xt)
		text_at(cr, p->a.x + p->a.w / 2, p->a.y + p->a.h + 34, 0.5, xt);
	if (yt) {
		cairo_save(cr);
		cairo_translate(cr, ylabel_x, p->a.y + p->a.h / 2);
		cairo_rotate(cr, -M_PI / 2);
		text_at(cr, 0, 0, 0.5, yt);
		cairo_restore(cr);
	}
}

/* ---- legends ---- */

enum { KEY_AREA, KEY_LINE };

struct legend_item {
	const char *label;
	const struct rgb *color;
	int kind;
	size_t dash;
	int hatch;                    /* area drawn with fill_hatch */
};

/* White diagonal hatching over the current path (then cleared): marks the
 * summed "other" area apart from every colour, in grey print too. */
static void fill_hatch(cairo_t *cr)
{
	double x1, y1, x2, y2, x;
	/* Lines clipped to the area rather than a pattern tile: plain vector
	 * strokes in SVG and PDF (cairo 1.16's SVG surface leaks a
	 * similar-surface tile). */
	cairo_save(cr);
	cairo_clip(cr);
	cairo_clip_extents(cr, &x1, &y1, &x2, &y2);
	cairo_set_source_rgba(cr, 1, 1, 1, 0.7);
	cairo_set_line_width(cr, 1.2);
	for (x = x1 - (y2 - y1); x < x2; x += 6) {
		cairo_move_to(cr, x, y2);
		cairo_line_to(cr, x + (y2 - y1), y1);
	}
	cairo_stroke(cr);
	cairo_restore(cr);
}

/* Lays items out left to right from (X, Y), wrapping within W; returns the
 * height used. */
static double draw_legend(cairo_t *cr, double x, double y, double w,
			  const struct legend_item *it, size_t n)
{
	double cx = x, cy = y, row = 16;
	char buf[128];
	size_t i;
	text_font(cr, FONT_LABEL, 0);
	for (i = 0; i < n; i++) {
		double tw;
		if (!text_fit(cr, it[i].label, 160, buf, sizeof(buf)))
			continue;
		tw = 22 + text_width(cr, buf) + 14;
		if (cx > x && cx + tw > x + w) {
			cx = x;
			cy += row;
		}
		if (it[i].kind == KEY_AREA) {
			set_rgb(cr, it[i].color, 0.85);
			cairo_rectangle(cr, cx, cy + 3, 16, 10);
			if (it[i].hatch) {
				cairo_fill_preserve(cr);
				fill_hatch(cr);
			} else {
				cairo_fill(cr);
			}
		} else {
			set_rgb(cr, it[i].color, 1);
			cairo_set_line_width(cr, 2);
			set_dash(cr, it[i].dash);
			cairo_move_to(cr, cx, cy + 8);
			cairo_line_to(cr, cx + 16, cy + 8);
			cairo_stroke(cr);
			cairo_set_dash(cr, NULL, 0, 0);
		}
		set_rgb(cr, &ink, 1);
		text_at(cr, cx + 22, cy + 12, 0, buf);
		cx += tw;
	}
	return cy - y + row;
}

/* ---- timeline ---- */

static int overlaps(const struct rect *a, const struct rect *b)
{
	return a->x < b->x + b->w && b->x < a->x + a->w &&
		a->y < b->y + b->h && b->y < a->y + a->h;
}

/* Per pixel column: heap min/max over the buckets it covers, the stacked
 * thread values at its last bucket's end, and counter peaks. */
struct column {
	int set;
	uint64_t min, max;
	size_t last_bucket;
	uint64_t rss, arena;
};

static void reduce_columns(const struct tl_data *d, const struct plot *p,
			   struct column *col, size_t ncol)
{
	double dt = (p->x1 - p->x0) / (double)ncol;
	size_t i, c;
	memset(col, 0, ncol * sizeof(*col));
	for (i = 0; i < d->n; i++) {
		const struct tl_bucket *b = &d->b[i];
		double a = (b->t - p->x0) / dt, z = (b->t + d->width - p->x0) / dt;
		size_t ca, cz;
		if (a >= (double)ncol)
			break;
		ca = a <= 0 ? 0 : (size_t)a;
		/* A bucket ending exactly on a column edge stays out of the
		 * next column. */
		cz = z <= 0 ? 0 : (size_t)ceil(z) - 1;
		if (cz < ca)
			cz = ca;
		if (cz >= ncol)
			cz = ncol - 1;
		for (c = ca; c <= cz; c++) {
			struct column *k = &col[c];
			if (!k->set || b->min < k->min)
				k->min = b->min;
			if (!k->set || b->max > k->max)
				k->max = b->max;
			k->set = 1;
			k->last_bucket = i;
			if (b->rss > k->rss)
				k->rss = b->rss;
			if (b->arena > k->arena)
				k->arena = b->arena;
		}
	}
}

/* A polyline through the column centres of the heap max (WHICH 0), or of
 * the RSS (1) or arena (2) samples. Counters are sampled sparsely (every
 * 100 ms, say), so the line joins sample to sample across empty columns;
 * the heap has a value in every column the trace covers. */
static void column_line(cairo_t *cr, const struct plot *p, const struct column *col,
			size_t ncol, int which)
{
	size_t c;
	int pen = 0;
	for (c = 0; c < ncol; c++) {
		uint64_t v = which == 0 ? col[c].max : which == 1 ? col[c].rss : col[c].arena;
		double x = p->a.x + (double)c + 0.5;
		if (!col[c].set) {
			pen = 0;
			continue;
		}
		if (which != 0 && v == 0)
			continue;
		if (!pen) {
			cairo_move_to(cr, which == 0 && c == 0 ? p->a.x : x, py(p, (double)v));
			pen = 1;
		} else {
			cairo_line_to(cr, x, py(p, (double)v));
		}
	}
}

/* The "other" row is grey; named threads take the palette in order. */
static const struct rgb *series_color(const struct tl_data *d, size_t s)
{
	if (d->last_is_other && s + 1 == d->nseries)
		return palette(palette_size() - 1);
	return palette(s % (palette_size() - 1));
}

static void stacked_threads(cairo_t *cr, const struct plot *p, const struct tl_data *d,
			    const struct column *col, size_t ncol)
{
	double *lower = calloc(ncol, sizeof(double));
	double *upper = calloc(ncol, sizeof(double));
	size_t s, c;
	if (!lower || !upper)
		goto out;
	for (s = 0; s < d->nseries; s++) {
		int pen = 0;
		for (c = 0; c < ncol; c++)
			if (col[c].set)
				upper[c] = lower[c] + (double)d->series[s][col[c].last_bucket];
		/* Upper edge left to right, lower edge back. */
		for (c = 0; c < ncol; c++) {
			if (!col[c].set)
				continue;
			if (!pen++)
				cairo_move_to(cr, p->a.x + c, py(p, upper[c]));
			cairo_line_to(cr, p->a.x + c, py(p, upper[c]));
			cairo_line_to(cr, p->a.x + c + 1, py(p, upper[c]));
		}
		for (c = ncol; c-- > 0;) {
			if (!col[c].set)
				continue;
			cairo_line_to(cr, p->a.x + c + 1, py(p, lower[c]));
			cairo_line_to(cr, p->a.x + c, py(p, lower[c]));
		}
		cairo_close_path(cr);
		set_rgb(cr, series_color(d, s), 0.85);
		if (d->last_is_other && s + 1 == d->nseries) {
			cairo_fill_preserve(cr);
			fill_hatch(cr);
		} else {
			cairo_fill(cr);
		}
		memcpy(lower, upper, ncol * sizeof(double));
	}
out:
	free(lower);
	free(upper);
}

void draw_timeline(cairo_t *cr, const struct rect *r, const struct tl_data *d,
		   int by_thread)
{
	struct legend_item key[16] = { { NULL, NULL, 0, 0, 0 } };
	size_t nkey = 0, ncol, c, s;
	struct column *col;
	struct plot p;
	struct ticks t;
	uint64_t ymax = 0, cmax = 0;
	int has_rss = 0, has_arena = 0, twin;
	double top, xspan;
	struct plot q;
	struct rect peak_box = { 0, 0, 0, 0 };
	char buf[128];
	size_t i;

	draw_heading(cr, r, by_thread ? "heap in use over time, by thread" :
		     "heap in use over time");
	for (i = 0; i < d->n; i++) {
		if (d->b[i].max > ymax)
			ymax = d->b[i].max;
		if (d->b[i].rss) {
			has_rss = 1;
			if (d->b[i].rss > cmax)
				cmax = d->b[i].rss;
		}
		if (d->b[i].arena) {
			has_arena = 1;
			if (d->b[i].arena > cmax)
				cmax = d->b[i].arena;
		}
	}
	/* RSS of a process with a small heap (an interpreter, a program
	 * with big static data) would flatten the heap to a line: past 4x
	 * the heap, the counters get their own axis on the right. */
	twin = ymax > 0 && cmax > 4 * ymax;
	if (!twin && cmax > ymax)
		ymax = cmax;
	if (d->n == 0 || (d->allocations == 0 && !has_rss && !has_arena)) {
		draw_message(cr, r, "no allocations recorded");
		return;
	}

	/* Legend under the heading, then the plot below it. */
	by_thread = by_thread && d->nseries > 0;
	if (by_thread) {
		for (s = 0; s < d->nseries && nkey < 12; s++) {
			key[nkey].label = d->series_name[s];
			key[nkey].color = series_color(d, s);
			key[nkey].hatch = d->last_is_other && s + 1 == d->nseries;
			key[nkey++].kind = KEY_AREA;
		}
		key[nkey].label = "heap (max)";
		key[nkey].color = &ink;
		key[nkey].kind = KEY_LINE;
		key[nkey++].dash = 0;
	} else {
		key[nkey].label = "heap in use";
		key[nkey].color = palette(0);
		key[nkey++].kind = KEY_AREA;
	}
	if (has_rss) {
		key[nkey].label = twin ? "RSS (right axis)" : "RSS";
		key[nkey].color = palette(2);
		key[nkey].kind = KEY_LINE;
		key[nkey++].dash = 1;
	}
	if (has_arena) {
		key[nkey].label = twin ? "allocator arena (right axis)" : "allocator arena";
		key[nkey].color = palette(6);
		key[nkey].kind = KEY_LINE;
		key[nkey++].dash = 2;
	}
	top = r->y + 28;
	if (nkey > 1)
		top += draw_legend(cr, r->x + 90, top, r->w - 110, key, nkey) + 4;

	p.a.x = r->x + 90;
	p.a.y = top + 8;
	p.a.w = floor(r->w - 90 - (twin ? 84 : 24));
	p.a.h = r->y + r->h - 44 - p.a.y;
	if (p.a.w < 20 || p.a.h < 20)
		return;
	/* To the end of the last bucket, so a last event at the very end (or
	 * a single event) still shows as a band; for a long trace that adds
	 * less than a pixel column. */
	xspan = d->duration;
	if (d->width * (double)d->n > xspan)
		xspan = d->width * (double)d->n;
	if (!(xspan > 0))
		xspan = 1e-6;
	p.x0 = 0;
	p.x1 = xspan;
	/* Headroom so the peak label sits above the peak. */
	ticks_bytes((double)ymax * 1.12, (int)(p.a.h / 45) < 2 ? 2 : (int)(p.a.h / 45), &t);
	y_axis(cr, &p, &t, AXIS_BYTES);
	q = p;
	if (twin) {
		ticks_bytes((double)cmax * 1.05, (int)(p.a.h / 45) < 2 ? 2 : (int)(p.a.h / 45), &t);
		right_axis(cr, &q, &t, r->x + r->w - 8);
	}

	ncol = (size_t)p.a.w;
	col = calloc(ncol, sizeof(*col));
	if (!col)
		return;
	reduce_columns(d, &p, col, ncol);

	cairo_save(cr);
	cairo_rectangle(cr, p.a.x, p.a.y - 1, p.a.w, p.a.h + 1);
	cairo_clip(cr);
	if (by_thread) {
		stacked_threads(cr, &p, d, col, ncol);
	} else {
		/* Area under the max envelope, then the min..max band of every
		 * column darker: where the heap swung within a column, the
		 * band shows by how much. */
		int pen = 0;
		for (c = 0; c < ncol; c++) {
			if (!col[c].set)
				continue;
			if (!pen++)
				cairo_move_to(cr, p.a.x + c, py(&p, 0));
			cairo_line_to(cr, p.a.x + c, py(&p, (double)col[c].max));
			cairo_line_to(cr, p.a.x + c + 1, py(&p, (double)col[c].max));
			if (c + 1 == ncol || !col[c + 1].set) {
				cairo_line_to(cr, p.a.x + c + 1, py(&p, 0));
				cairo_close_path(cr);
				pen = 0;
			}
		}
		set_rgb(cr, palette(0), 0.30);
		cairo_fill(cr);
		for (c = 0; c < ncol; c++) {
			double y1, y0;
			if (!col[c].set || col[c].max == col[c].min)
				continue;
			y1 = py(&p, (double)col[c].max);
			y0 = py(&p, (double)col[c].min);
			cairo_rectangle(cr, p.a.x + c, y1, 1, y0 - y1);
		}
		set_rgb(cr, palette(0), 0.55);
		cairo_fill(cr);
	}
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	cairo_set_line_width(cr, by_thread ? 1.0 : 1.5);
	column_line(cr, &p, col, ncol, 0);
	set_rgb(cr, by_thread ? &ink : palette(0), 1);
	cairo_stroke(cr);
	cairo_set_line_width(cr, 1.5);
	if (has_rss) {
		column_line(cr, &q, col, ncol, 1);
		set_rgb(cr, palette(2), 1);
		set_dash(cr, 1);
		cairo_stroke(cr);
	}
	if (has_arena) {
		column_line(cr, &q, col, ncol, 2);
		set_rgb(cr, palette(6), 1);
		set_dash(cr, 2);
		cairo_stroke(cr);
	}
	cairo_set_dash(cr, NULL, 0, 0);
	cairo_restore(cr);
	free(col);

	axes_frame(cr, &p);
	x_time_axis(cr, &p);
	axis_titles(cr, &p, "time since start", "bytes", r->x + 16);

	/* The peak: a ring on it, the label above, kept inside the plot. */
	if (d->peak_bytes > 0) {
		double x = px(&p, d->peak_time), y = py(&p, (double)d->peak_bytes);
		double w, xa, lx;
		if (x > p.a.x + p.a.w)
			x = p.a.x + p.a.w;
		set_rgb(cr, &ink, 1);
		cairo_set_line_width(cr, 1.5);
		cairo_new_sub_path(cr);
		cairo_arc(cr, x, y, 4.5, 0, 2 * M_PI);
		cairo_stroke(cr);
		text_font(cr, FONT_LABEL, 1);
		peak_label(d->peak_bytes, d->peak_time, p.x1, buf, sizeof(buf));
		w = text_width(cr, buf);
		xa = x + w / 2 > p.a.x + p.a.w ? 1 : x - w / 2 < p.a.x ? 0 : 0.5;
		lx = xa == 1 ? x + 6 : xa == 0 ? x - 6 : x;
		text_halo(cr, lx, y - 10, xa, buf);
		peak_box.x = lx - xa * w - 3;
		peak_box.y = y - 10 - 14;
		peak_box.w = w + 6;
		peak_box.h = 18;
	}
	/* Leaks: a bracket at the right edge from 0 to what was still live,
	 * labelled on the plot's side, above the level or else below it,
	 * wherever it does not cover the peak's label. */
	text_font(cr, FONT_LABEL, 0);
	leak_label(d->end_bytes, d->end_allocations, buf, sizeof(buf));
	if (d->end_bytes > 0) {
		double x = p.a.x + p.a.w + 5, y = py(&p, (double)d->end_bytes);
		double y0 = py(&p, 0), w = text_width(cr, buf), ly = y - 6;
		double tries[4] = { y - 6, y + 16, y + 34, peak_box.y - 4 };
		int k;
		set_rgb(cr, palette(2), 1);
		cairo_set_line_width(cr, 2);
		cairo_move_to(cr, x - 3, y);
		cairo_line_to(cr, x, y);
		cairo_line_to(cr, x, y0);
		cairo_line_to(cr, x - 3, y0);
		cairo_stroke(cr);
		for (k = 0; k < 4; k++) {
			struct rect b = { p.a.x + p.a.w - 4 - w - 3, tries[k] - 14, w + 6, 18 };
			if (tries[k] < p.a.y + 12 || tries[k] > p.a.y + p.a.h - 4)
				continue;
			ly = tries[k];
			if (!overlaps(&b, &peak_box))
				break;
		}
		set_rgb(cr, &ink, 1);
		text_halo(cr, p.a.x + p.a.w - 4, ly, 1, buf);
	} else {
		set_rgb(cr, &muted, 1);
		text_at(cr, p.a.x + p.a.w - 4, p.a.y + p.a.h - 6, 1, buf);
	}
}

/* ---- histograms ---- */

/* One panel of bars over log2 x positions: bar i spans [i-1, i). */
static void hist_panel(cairo_t *cr, const struct plot *pin, const uint64_t *v,
		       size_t lo, size_t hi, int kind, const struct rgb *color,
		       const char *name)
{
	struct plot p = *pin;
	struct ticks t;
	uint64_t vmax = 0;
	size_t i;
	int target = (int)(p.a.h / 40);
	for (i = lo; i <= hi; i++)
		if (v[i] > vmax)
			vmax = v[i];
	if (target < 2)
		target = 2;
	if (kind == AXIS_BYTES) {
		ticks_bytes((double)vmax, target, &t);
	} else {
		/* Counts: 1-2-5 ticks, the last at or above the max. */
		ticks_125((double)vmax, target, &t);
		if (t.v[t.n - 1] < (double)vmax && t.n < TICKS_MAX) {
			t.v[t.n] = t.v[t.n - 1] + t.step;
			t.n++;
		}
	}
	y_axis(cr, &p, &t, kind);
	set_rgb(cr, color, 0.9);
	for (i = lo; i <= hi; i++) {
		double xa = px(&p, (double)i - 1), xb = px(&p, (double)i);
		double gap = (xb - xa) * 0.12, y = py(&p, (double)v[i]);
		if (v[i] == 0)
			continue;
		/* At least a hairline, so one allocation in a million shows. */
		if (py(&p, 0) - y < 1)
			y = py(&p, 0) - 1;
		cairo_rectangle(cr, xa + gap, y, xb - xa - 2 * gap, py(&p, 0) - y);
	}
	cairo_fill(cr);
	axes_frame(cr, &p);
	set_rgb(cr, &ink, 1);
	text_font(cr, FONT_LABEL, 1);
	text_at(cr, p.a.x + 4, p.a.y - 8, 0, name);
}

/* Size buckets: the lower bound under each bar ("0", "1", "2", ... "4K"),
 * every k-th when they would overlap. */
static void size_labels(cairo_t *cr, const struct plot *p, size_t lo, size_t hi)
{
	char buf[32];
	double barw = px(p, 1) - px(p, 0);
	size_t i, stride = 1;
	text_font(cr, FONT_TICK, 0);
	while (barw * (double)stride < text_width(cr, "512K") + 6)
		stride *= 2;
	for (i = lo; i <= hi; i++) {
		if (i % stride)
			continue;
		if (i == 0)
			strcpy(buf, "0");
		else
			fmt_size_pow2((unsigned)(i - 1), buf, sizeof(buf));
		x_tick(cr, p, px(p, (double)i - 0.5), buf);
	}
}

/* Lifetime axis: decimal ticks (1 ns, 10 ns, ... 1 s, 1 min, 1 h) placed
 * on the log2 scale of the buckets; the bar of lifetimes shorter than the
 * clock's tick stands in slot ZERO_SLOT (see draw_histogram) and reads
 * "< 256 ns" for ms-record's clock, "0" for a nanosecond one. */
static void life_labels(cairo_t *cr, const struct plot *p, double tick_ns,
			size_t zero_slot)
{
	static const double marks[] = {
		1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 60e9,
		600e9, 3600e9, 36000e9, 86400e9, 864000e9,
	};
	char buf[32];
	double last = -1e9, minw;
	size_t i;
	text_font(cr, FONT_TICK, 0);
	minw = text_width(cr, "100 \xc2\xb5s") + 8;
	if (p->x0 < (double)zero_slot - 0.5) {
		double x = (double)zero_slot - 0.5;
		if (tick_ns > 1) {
			char t[32];
			snprintf(buf, sizeof(buf), "< %s", fmt_ns(tick_ns, t, sizeof(t)));
		} else {
			strcpy(buf, "0");
		}
		x_tick(cr, p, px(p, x), buf);
		last = px(p, x) + text_width(cr, buf) / 2;
	}
	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		double x = log2(marks[i]);
		if (x < p->x0 || x > p->x1 || marks[i] < tick_ns)
			continue;
		if (px(p, x) - last < minw)
			continue;
		last = px(p, x);
		x_tick(cr, p, px(p, x), fmt_ns(marks[i], buf, sizeof(buf)));
	}
}

void draw_histogram(cairo_t *cr, const struct rect *r, const struct hist_data *d)
{
	struct plot p;
	size_t i, lo = SIZE_MAX, hi = 0, zero_slot = 0;
	double panel_h, gap = 58;
	const uint64_t *count = d->count, *bytes = d->bytes;
	uint64_t c2[80], b2[80];

	draw_heading(cr, r, d->lifetimes ? "allocation lifetimes (freed blocks)" :
		     "allocation sizes (power-of-two buckets)");
	/* Lifetimes are whole ticks: with ticks of 256 ns the buckets below
	 * it ([1, 2) .. [128, 256) ns) are always empty. The bar of lifetimes
	 * under a tick then takes the last of them, next to [256, 512). */
	if (d->lifetimes && d->tick_ns >= 2 && d->n <= 80) {
		size_t k = (size_t)floor(log2(d->tick_ns)), j;
		for (j = 1; j <= k && j < d->n; j++)
			if (d->count[j] || d->bytes[j])
				break;
		if (k < d->n && j > k) {
			memcpy(c2, d->count, d->n * sizeof(*c2));
			memcpy(b2, d->bytes, d->n * sizeof(*b2));
			c2[k] = c2[0];
			b2[k] = b2[0];
			c2[0] = b2[0] = 0;
			count = c2;
			bytes = b2;
			zero_slot = k;
		}
	}
	for (i = 0; i < d->n; i++) {
		if (count[i] || bytes[i]) {
			if (lo == SIZE_MAX)
				lo = i;
			hi = i;
		}
	}
	if (lo == SIZE_MAX) {
		draw_message(cr, r, d->lifetimes ? "no freed allocations recorded" :
			     "no allocations recorded");
		return;
	}
	/* At least a few buckets wide, so one bar is not a wall. */
	while (hi - lo < 7) {
		if (lo > 0)
			lo--;
		if (hi - lo < 7 && hi + 1 < d->n)
			hi++;
		if (lo == 0 && hi + 1 >= d->n)
			break;
	}
	panel_h = (r->h - 48 - gap - 40) / 2;
	p.a.x = r->x + 90;
	p.a.w = r->w - 90 - 24;
	p.a.h = panel_h;
	p.x0 = (double)lo - 1;
	p.x1 = (double)hi;
	if (p.a.w < 20 || p.a.h < 20)
		return;
	for (i = 0; i < 2; i++) {
		p.a.y = r->y + 48 + (double)i * (panel_h + gap);
		hist_panel(cr, &p, i ? bytes : count, lo, hi,
			   i ? AXIS_BYTES : AXIS_COUNT, palette(i ? 2 : 0),
			   i ? "bytes" : "allocations");
		p.y0 = 0;
		p.y1 = 1;
		if (d->lifetimes)
			life_labels(cr, &p, d->tick_ns, zero_slot);
		else
			size_labels(cr, &p, lo, hi);
	}
	axis_titles(cr, &p, d->lifetimes ? "lifetime (allocation to free)" :
		    "requested size, bytes (bucket [n, 2n))", NULL, 0);
}

/* ---- threads ---- */

static int by_bytes_desc(const void *a, const void *b)
{
	const struct thread_row *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->allocations != y->allocations)
		return x->allocations < y->allocations ? 1 : -1;
	return x->thread < y->thread ? -1 : x->thread > y->thread;
}

/* Horizontal bars of one figure per row, with the value at the bar's end.
 * When the summed "other" row (index OTHER, or n) dwarfs the named ones,
 * the axis fits the named rows and the other bar is cut at the edge with
 * a break mark: its number is printed, and the named bars stay readable. */
static void bar_panel(cairo_t *cr, const struct rect *a, const struct thread_row *rows,
		      size_t n, size_t other, double rowh, int bytes, const char *name)
{
	struct plot p;
	struct ticks t;
	uint64_t vmax = 0, omax = 0;
	size_t i;
	char buf[64];
	int target = (int)(a->w / 80);
	p.a = *a;
	for (i = 0; i < n; i++) {
		uint64_t v = bytes ? rows[i].bytes : rows[i].allocations;
		if (i == other)
			omax = v;
		else if (v > vmax)
			vmax = v;
	}
	if (omax <= 4 * vmax || vmax == 0)
		vmax = omax > vmax ? omax : vmax;
	if (target < 2)
		target = 2;
	if (bytes) {
		ticks_bytes((double)vmax, target, &t);
	} else {
		ticks_125((double)vmax, target, &t);
		if (t.v[t.n - 1] < (double)vmax && t.n < TICKS_MAX) {
			t.v[t.n] = t.v[t.n - 1] + t.step;
			t.n++;
		}
	}
	p.x0 = 0;
	p.x1 = t.v[t.n - 1] > 0 ? t.v[t.n - 1] : 1;
	p.y0 = 0;
	p.y1 = 1;
	text_font(cr, FONT_TICK, 0);
	for (i = 0; i < t.n; i++) {
		double x = round(px(&p, t.v[i])) + 0.5;
		set_rgb(cr, &grid, 1);
		cairo_set_line_width(cr, 1);
		cairo_move_to(cr, x, p.a.y);
		cairo_line_to(cr, x, p.a.y + p.a.h);
		cairo_stroke(cr);
		if (bytes)
			fmt_bytes_tick(t.v[i], t.step, p.x1, buf, sizeof(buf));
		else
			fmt_count(t.v[i], buf, sizeof(buf));
		/* Only the ends and ticks with room between them. */
		if (t.n <= (size_t)target + 1 || i % 2 == 0)
			x_tick(cr, &p, px(&p, t.v[i]), buf);
	}
	for (i = 0; i < n; i++) {
		uint64_t v = bytes ? rows[i].bytes : rows[i].allocations;
		double w = px(&p, (double)v) - p.a.x, y = p.a.y + (double)i * rowh;
		int cut = w > p.a.w;
		if (v && w < 1)
			w = 1;
		if (cut)
			w = p.a.w;
		set_rgb(cr, palette(bytes ? 0 : 2), 0.9);
		cairo_rectangle(cr, p.a.x, y + rowh * 0.15, w, rowh * 0.7);
		cairo_fill(cr);
		if (cut) {
			/* A white slash across the bar: it goes on. */
			cairo_set_source_rgb(cr, 1, 1, 1);
			cairo_set_line_width(cr, 3);
			cairo_move_to(cr, p.a.x + w - 18, y + rowh);
			cairo_line_to(cr, p.a.x + w - 10, y);
			cairo_stroke(cr);
		}
		if (rowh < 11)
			continue;
		if (bytes)
			msc_format_bytes(v, buf);
		else
			fmt_count((double)v, buf, sizeof(buf));
		text_font(cr, FONT_TICK, 0);
		if (cut || w + 6 + text_width(cr, buf) > p.a.w) {
			cairo_set_source_rgb(cr, 1, 1, 1);
			text_at(cr, p.a.x + w - (cut ? 24 : 4), y + rowh / 2 + 4, 1, buf);
		} else {
			set_rgb(cr, &ink, 1);
			text_at(cr, p.a.x + w + 4, y + rowh / 2 + 4, 0, buf);
		}
	}
	axes_frame(cr, &p);
	set_rgb(cr, &ink, 1);
	text_font(cr, FONT_LABEL, 1);
	text_at(cr, p.a.x, p.a.y - 6, 0, name);
}

void draw_threads(cairo_t *cr, const struct rect *r, const struct threads_data *d)
{
	struct thread_row *rows;
	size_t n, shown, i, other = SIZE_MAX;
	double rowh, namew = 0, panel_w, x;
	char buf[160];
	char other_name[64];
	struct rect a;

	draw_heading(cr, r, "threads: bytes and allocations");
	for (i = 0; i < d->n; i++)
		if (d->rows[i].allocations || d->rows[i].bytes)
			break;
	if (i == d->n) {
		draw_message(cr, r, "no allocations recorded");
		return;
	}
	/* Rows of at least 16 px; the rest summed into one "other" row. */
	rows = malloc((d->n + 1) * sizeof(*rows));
	if (!rows)
		return;
	memcpy(rows, d->rows, d->n * sizeof(*rows));
	qsort(rows, d->n, sizeof(*rows), by_bytes_desc);
	n = d->n;
	shown = (size_t)((r->h - 80) / 16);
	if (shown < 1)
		shown = 1;
	if (shown > 40)
		shown = 40;
	if (n > shown) {
		struct thread_row o = { NULL, 0, 0, 0 };
		for (i = shown - 1; i < n; i++) {
			o.allocations += rows[i].allocations;
			o.bytes += rows[i].bytes;
		}
		snprintf(other_name, sizeof(other_name), "other (%zu threads)", n - shown + 1);
		o.name = other_name;
		rows[shown - 1] = o;
		n = shown;
		other = n - 1;
	}
	rowh = (r->h - 80) / (double)n;
	if (rowh > 28)
		rowh = 28;

	text_font(cr, FONT_LABEL, 0);
	for (i = 0; i < n; i++) {
		const char *nm = rows[i].name;
		char tmp[64];
		if (!nm) {
			snprintf(tmp, sizeof(tmp), "thread %llu", (unsigned long long)rows[i].thread);
			nm = tmp;
		}
		if (text_width(cr, nm) > namew)
			namew = text_width(cr, nm);
	}
	if (namew > 200)
		namew = 200;
	x = r->x + 16 + namew + 10;
	panel_w = (r->x + r->w - 24 - x - 40) / 2;
	a.y = r->y + 54;
	a.h = rowh * (double)n;
	for (i = 0; i < n; i++) {
		const char *nm = rows[i].name;
		char tmp[64];
		if (!nm) {
			snprintf(tmp, sizeof(tmp), "thread %llu", (unsigned long long)rows[i].thread);
			nm = tmp;
		}
		text_font(cr, rowh < 14 ? FONT_TICK : FONT_LABEL, 0);
		set_rgb(cr, &ink, 1);
		if (text_fit(cr, nm, namew, buf, sizeof(buf)))
			text_at(cr, x - 8, a.y + ((double)i + 0.5) * rowh + 4, 1, buf);
	}
	if (panel_w < 40) {
		free(rows);
		return;
	}
	a.x = x;
	a.w = panel_w;
	bar_panel(cr, &a, rows, n, other, rowh, 1, "bytes allocated");
	a.x = x + panel_w + 40;
	bar_panel(cr, &a, rows, n, other, rowh, 0, "allocations");
	free(rows);
}
