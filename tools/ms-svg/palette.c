/*
 * palette.c - series colours and dashes. Okabe & Ito's palette is told apart
 * by the common colour blindnesses; the order alternates dark and light so
 * that neighbouring stacked areas still differ when printed in grey, and
 * line series also differ by dash pattern.
 */
#include "chart.h"

static const struct rgb okabe_ito[] = {
	{ 0x00 / 255.0, 0x72 / 255.0, 0xB2 / 255.0 },   /* blue (dark) */
	{ 0xE6 / 255.0, 0x9F / 255.0, 0x00 / 255.0 },   /* orange (light) */
	{ 0xD5 / 255.0, 0x5E / 255.0, 0x00 / 255.0 },   /* vermillion (mid) */
	{ 0x56 / 255.0, 0xB4 / 255.0, 0xE9 / 255.0 },   /* sky blue (light) */
	{ 0xCC / 255.0, 0x79 / 255.0, 0xA7 / 255.0 },   /* reddish purple (mid) */
	{ 0xF0 / 255.0, 0xE4 / 255.0, 0x42 / 255.0 },   /* yellow (lightest) */
	{ 0x00 / 255.0, 0x9E / 255.0, 0x73 / 255.0 },   /* bluish green (mid-dark) */
	{ 0x99 / 255.0, 0x99 / 255.0, 0x99 / 255.0 },   /* grey: "other" */
};

const struct rgb *palette(size_t i)
{
	return &okabe_ito[i % (sizeof(okabe_ito) / sizeof(okabe_ito[0]))];
}

size_t palette_size(void)
{
	return sizeof(okabe_ito) / sizeof(okabe_ito[0]);
}

void set_rgb(cairo_t *cr, const struct rgb *c, double alpha)
{
	if (alpha >= 1)
		cairo_set_source_rgb(cr, c->r, c->g, c->b);
	else
		cairo_set_source_rgba(cr, c->r, c->g, c->b, alpha);
}

void set_dash(cairo_t *cr, size_t i)
{
	static const double dashed[] = { 7, 4 };
	static const double dotted[] = { 1.5, 3 };
	static const double dashdot[] = { 7, 3, 1.5, 3 };
	switch (i % 4) {
	case 0:
		cairo_set_dash(cr, NULL, 0, 0);
		break;
	case 1:
		cairo_set_dash(cr, dashed, 2, 0);
		break;
	case 2:
		cairo_set_dash(cr, dotted, 2, 0);
		break;
	default:
		cairo_set_dash(cr, dashdot, 4, 0);
		break;
	}
}
