/*
 * chart.h - ms-svg's drawing layer: charts drawn with cairo from plain data
 * (no trace, no argv), so unit tests can call every function directly.
 *
 * main.c reads the trace into the shared analysis model; glue.c turns the
 * model into the structs below; charts.c and flame.c draw them into a
 * rectangle of any cairo surface (SVG, PNG, PDF: surface.c).
 *
 * Times here are seconds (double) relative to the trace start, bytes are
 * exact 64-bit counts.
 */
#ifndef MS_SVG_CHART_H
#define MS_SVG_CHART_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cairo.h>

struct rect {
	double x, y, w, h;
};

/* ---- axis.c: ticks, units and labels (no cairo) ---- */

#define TICKS_MAX 40

struct ticks {
	size_t n;
	double step;
	double v[TICKS_MAX];
};

/* The unit a time axis of DURATION seconds is labelled in: ns, µs, ms, s,
 * min or h. */
struct time_unit {
	const char *name;
	double seconds;               /* one unit in seconds */
};
const struct time_unit *time_unit_for(double duration);

/* Round ticks in 1-2-5 steps covering [0, HI], about TARGET of them; every
 * tick is <= HI. */
void ticks_125(double hi, int target, struct ticks *t);
/* Byte ticks in power-of-two steps from 0 up to the first tick >= HI, about
 * TARGET of them (so the axis top is t->v[t->n - 1]). */
void ticks_bytes(double hi, int target, struct ticks *t);

/* "1.5 s", "250 ms": V seconds in unit U with as many decimals as STEP
 * (seconds) needs. Returns BUF. */
char *fmt_time_tick(double v, double step, const struct time_unit *u,
		    char *buf, size_t len);
/* "1.52 s", "12.3 ms": three significant digits in unit U. */
char *fmt_time(double v, const struct time_unit *u, char *buf, size_t len);
/* "768 KiB", "1.25 MiB": one tick of a byte axis whose step is STEP, in
 * one unit for the whole axis. */
char *fmt_bytes_tick(double v, double step, double top, char *buf, size_t len);
/* "950", "12.3K", "4.5M": a count. */
char *fmt_count(double v, char *buf, size_t len);
/* "1 ns", "10 µs", "1 min": a lifetime in nanoseconds, compact. */
char *fmt_ns(double ns, char *buf, size_t len);
/* "1", "512", "4K", "1M", "2G": a power-of-two size, compact. */
char *fmt_size_pow2(unsigned log2, char *buf, size_t len);

/* The label drawn at the timeline's peak: "peak 12.3 MiB at 1.52 s". */
char *peak_label(uint64_t bytes, double t, double duration, char *buf, size_t len);
/* "leaked 1.20 MiB" (or "nothing leaked"). */
char *leak_label(uint64_t bytes, uint64_t blocks, char *buf, size_t len);

/* ---- palette.c: colours that survive greyscale and colour blindness ---- */

struct rgb {
	double r, g, b;
};
/* Okabe-Ito colours, ordered so neighbours differ in lightness too. */
const struct rgb *palette(size_t i);
size_t palette_size(void);
void set_rgb(cairo_t *cr, const struct rgb *c, double alpha);
/* Line series: solid, dashed, dotted, dash-dot..., by index. */
void set_dash(cairo_t *cr, size_t i);

/* ---- charts.c ---- */

/* Heap, counters and per-thread values at one timeline bucket. */
struct tl_bucket {
	double t;                     /* bucket start, seconds */
	uint64_t min, max, last;      /* live heap bytes */
	uint64_t rss, arena;          /* counters; 0 = no sample here */
};

struct tl_data {
	double duration;              /* seconds; 0 is allowed (one event) */
	double width;                 /* seconds per bucket */
	size_t n;
	const struct tl_bucket *b;
	uint64_t peak_bytes;
	double peak_time;
	uint64_t end_bytes, end_allocations;
	uint64_t allocations;         /* 0: "no allocations recorded" */
	/* --by-thread: NSERIES rows of N live-byte values at each bucket's
	 * end, drawn stacked in this order. */
	size_t nseries;
	const char *const *series_name;
	const uint64_t *const *series;
	int last_is_other;            /* the last series sums the other threads */
};

struct hist_data {
	int lifetimes;                /* 0: sizes (bytes), 1: lifetimes (ns) */
	size_t n;                     /* buckets: bucket i is [2^(i-1), 2^i) */
	const uint64_t *count;
	const uint64_t *bytes;
	double tick_ns;               /* lifetimes: the trace's clock resolution */
};

struct thread_row {
	const char *name;             /* "main (1234)"; NULL: "thread N" */
	uint64_t thread;
	uint64_t allocations, bytes;
};

struct threads_data {
	size_t n;
	const struct thread_row *rows; /* any order; drawn by bytes */
};

/* Page title band: TITLE large, SUBTITLE (may be NULL) small. */
void draw_title(cairo_t *cr, const struct rect *r, const char *title,
		const char *subtitle);
/* A chart's own heading and centred "no allocations recorded"-like text. */
void draw_heading(cairo_t *cr, const struct rect *r, const char *text);
void draw_message(cairo_t *cr, const struct rect *r, const char *text);

void draw_timeline(cairo_t *cr, const struct rect *r, const struct tl_data *d,
		   int by_thread);
void draw_histogram(cairo_t *cr, const struct rect *r, const struct hist_data *d);
void draw_threads(cairo_t *cr, const struct rect *r, const struct threads_data *d);

/* Text helpers shared with flame.c. */
void text_font(cairo_t *cr, double size, int bold);
double text_width(cairo_t *cr, const char *s);
/* Draws S at (X, Y baseline) aligned by XALIGN (0 left, 0.5 centre, 1
 * right). */
void text_at(cairo_t *cr, double x, double y, double xalign, const char *s);
/* Copies S into BUF shortened with "…" so it is at most MAXW wide; returns
 * 0 when not even one character fits. */
int text_fit(cairo_t *cr, const char *s, double maxw, char *buf, size_t len);

/* ---- flame.c: an icicle graph of stacks, merged by name per level ---- */

struct flame_node {
	char *name;
	uint64_t value;
	uint32_t parent, child, sibling;  /* indexes; 0 = none (0 is the root) */
};

struct flame {
	struct flame_node *nodes;
	size_t n, cap;
	uint32_t *hash;               /* (parent, name) -> node index + 1 */
	size_t hcap;
	unsigned max_depth;
};

int flame_init(struct flame *f);
/* Adds VALUE along NAMES[0..n-1], outermost frame first. -1 on ENOMEM. */
int flame_add(struct flame *f, const char *const *names, size_t n, uint64_t value);
void flame_release(struct flame *f);

/* WHAT says what the widths are: "live at the peak", ... */
void draw_flame(cairo_t *cr, const struct rect *r, const struct flame *f,
		const char *what);


/* ---- page.c: one page of one chart, or of all of them ---- */

enum chart_kind {
	CHART_TIMELINE,
	CHART_SIZES,
	CHART_LIFETIMES,
	CHART_FLAME,
	CHART_THREADS,
	CHART_ALL,
};

struct page {
	const char *title;
	const char *subtitle;         /* may be NULL */
	const char *note;             /* "estimated (sampled at 10%)", NULL */
	const char *warning;          /* "trace cut short ...", NULL */
	struct tl_data tl;
	struct hist_data sizes, lifetimes;
	struct threads_data threads;
	const struct flame *flame;    /* NULL: "no stacks" */
	const char *flame_what;
};

void draw_page(cairo_t *cr, double w, double h, const struct page *pg,
	       enum chart_kind chart, int by_thread);

/* ---- surface.c: the output file ---- */

enum out_format { OUT_SVG, OUT_PNG, OUT_PDF };

/* The format an output path asks for by its extension (NULL, "-" or no
 * extension: SVG), or -1 for an extension ms-svg does not write. */
int out_format_for(const char *path);

/*
 * Draws PG on a W x H surface of FORMAT and writes it to F. TITLE and DESC
 * go into the document's metadata (SVG <title>/<desc>, PDF info, PNG tEXt)
 * so tools and tests can read what the picture shows. Returns 0, or -1 with
 * a reason in ERR.
 */
int render_page(FILE *f, enum out_format format, double w, double h,
		const struct page *pg, enum chart_kind chart, int by_thread,
		const char *title, const char *desc, char *err, size_t errlen);

#endif
