/*
 * page.c - lays charts out on a page: the title band (program, date,
 * sampling note, warnings), then one chart, or for --chart all the
 * timeline, sizes and lifetimes side by side, the flame graph and the
 * threads, in proportions that read well from 1200x1600 up.
 */
#include "chart.h"

#include <stdio.h>

void draw_page(cairo_t *cr, double w, double h, const struct page *pg,
	       enum chart_kind chart, int by_thread)
{
	struct rect band = { 0, 0, w, 58 }, body, a;
	static const struct flame empty_flame;
	const struct flame *fl = pg->flame ? pg->flame : &empty_flame;
	const char *what = pg->flame_what ? pg->flame_what : "live at the peak";

	double notew = 0;

	cairo_save(cr);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	/* Notes at the top right, where the eye finds them before reading
	 * the figures; the title gives way to them. */
	text_font(cr, 12, 1);
	if (pg->note)
		notew = text_width(cr, pg->note);
	if (pg->warning && text_width(cr, pg->warning) > notew)
		notew = text_width(cr, pg->warning);
	if (notew > 0 && notew < w / 2)
		band.w = w - notew - 16;
	draw_title(cr, &band, pg->title, pg->subtitle);
	text_font(cr, 12, 1);
	if (pg->note) {
		cairo_set_source_rgb(cr, 0.60, 0.25, 0.0);
		text_at(cr, w - 10, 24, 1, pg->note);
	}
	if (pg->warning) {
		cairo_set_source_rgb(cr, 0.70, 0.10, 0.10);
		text_at(cr, w - 10, pg->note ? 44 : 24, 1, pg->warning);
	}
	body.x = 0;
	body.y = band.h;
	body.w = w;
	body.h = h - band.h;

	switch (chart) {
	case CHART_TIMELINE:
		draw_timeline(cr, &body, &pg->tl, by_thread);
		break;
	case CHART_SIZES:
		draw_histogram(cr, &body, &pg->sizes);
		break;
	case CHART_LIFETIMES:
		draw_histogram(cr, &body, &pg->lifetimes);
		break;
	case CHART_FLAME:
		draw_flame(cr, &body, fl, what);
		break;
	case CHART_THREADS:
		draw_threads(cr, &body, &pg->threads);
		break;
	case CHART_ALL: {
		/* A shallow flame graph gives its unused rows to the timeline. */
		double flame_h = body.h * 0.26;
		double need = 40 + 18.0 * (fl->max_depth + 1);
		if (need < flame_h && fl->n)
			flame_h = need < 80 ? 80 : need;
		a = body;
		a.h = body.h * 0.30 + (body.h * 0.26 - flame_h);
		draw_timeline(cr, &a, &pg->tl, by_thread);
		a.y += a.h;
		a.h = body.h * 0.24;
		a.w = w / 2;
		draw_histogram(cr, &a, &pg->sizes);
		a.x = w / 2;
		draw_histogram(cr, &a, &pg->lifetimes);
		a.x = 0;
		a.w = w;
		a.y += a.h;
		a.h = flame_h;
		draw_flame(cr, &a, fl, what);
		a.y += a.h;
		a.h = body.y + body.h - a.y;
		draw_threads(cr, &a, &pg->threads);
		break;
	}
	}
	cairo_restore(cr);
}
