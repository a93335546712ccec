/*
 * test_svg.c - ms-svg's drawing layer on plain data, no trace and no argv:
 * tick placement and labels, the peak label, text clipping, flame merging,
 * and whole pages rendered to SVG, PNG and PDF in memory-backed files
 * (empty, one event, a thousand threads, ten hours), and the glue from a
 * real trace (written with mst_writer, read back through the model) to the
 * chart data: the figures drawn are the model's.
 *
 * The tool's modules are compiled into this test directly: they are not in
 * libtrace, and main.c is the only file they need besides each other.
 */
#include "tap.h"

#define HIST_N 65

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tools/ms-svg/axis.c"
#include "../../tools/ms-svg/charts.c"
#include "../../tools/ms-svg/flame.c"
#include "../../tools/ms-svg/glue.c"
#include "../../tools/ms-svg/page.c"
#include "../../tools/ms-svg/palette.c"
#include "../../tools/ms-svg/surface.c"

static void test_ticks(void)
{
	struct ticks t;
	char b[64];

	ticks_125(10, 5, &t);
	CHECK(t.n == 6 && t.step == 2 && t.v[5] == 10, "1-2-5 ticks over 0..10: 0,2,..,10 (n=%zu step=%g)", t.n, t.step);
	ticks_125(0.7, 5, &t);
	CHECK(fabs(t.step - 0.2) < 1e-12 && t.n == 4, "ticks over 0..0.7 step 0.2, 4 ticks (n=%zu step=%g)", t.n, t.step);
	ticks_125(1e6, 8, &t);
	CHECK(t.step == 200000 && t.v[t.n - 1] <= 1e6, "ticks over 0..1e6 step 2e5");
	ticks_125(0, 5, &t);
	CHECK(t.n == 1 && t.v[0] == 0, "ticks over an empty range: just 0");
	ticks_125(1e300, 2, &t);
	CHECK(t.n <= TICKS_MAX, "huge range stays within the tick array");

	ticks_bytes(1.25 * 1048576, 6, &t);
	CHECK(t.step == 262144 && t.v[t.n - 1] == 1.25 * 1048576,
	      "byte ticks over 1.25 MiB: 256 KiB steps up to 1.25 MiB (step=%g)", t.step);
	ticks_bytes(1000, 5, &t);
	CHECK(t.step == 256 && t.v[t.n - 1] == 1024, "byte ticks over 1000 B: 256 B steps, top 1 KiB");
	ticks_bytes(0, 5, &t);
	CHECK(t.n >= 2 && t.v[t.n - 1] > 0, "byte ticks of nothing still have a top");

	CHECK(strcmp(fmt_bytes_tick(786432, 262144, 1310720, b, sizeof(b)), "0.75 MiB") == 0,
	      "768 KiB on a MiB axis reads 0.75 MiB (%s)", b);
	CHECK(strcmp(fmt_bytes_tick(1048576, 262144, 1310720, b, sizeof(b)), "1 MiB") == 0,
	      "1 MiB tick (%s)", b);
	CHECK(strcmp(fmt_bytes_tick(0, 262144, 1310720, b, sizeof(b)), "0") == 0,
	      "zero tick is plain 0 (%s)", b);
	CHECK(strcmp(fmt_bytes_tick(768, 256, 1024, b, sizeof(b)), "0.75 KiB") == 0,
	      "768 B on a KiB axis (%s)", b);
	CHECK(strcmp(fmt_bytes_tick(48, 16, 64, b, sizeof(b)), "48 B") == 0,
	      "bytes below 1 KiB (%s)", b);
	CHECK(strcmp(fmt_bytes_tick(32.0 * 1048576, 8.0 * 1048576, 40.0 * 1048576, b, sizeof(b)), "32 MiB") == 0,
	      "32 MiB (%s)", b);
}

static void test_time_labels(void)
{
	char b[64];
	CHECK(strcmp(time_unit_for(0.3)->name, "ms") == 0, "0.3 s trace in ms");
	CHECK(strcmp(time_unit_for(90)->name, "s") == 0, "90 s trace in s");
	CHECK(strcmp(time_unit_for(600)->name, "min") == 0, "10 min trace in min");
	CHECK(strcmp(time_unit_for(36000)->name, "h") == 0, "10 h trace in h");
	CHECK(strcmp(time_unit_for(5e-4)->name, "\xc2\xb5s") == 0, "0.5 ms trace in µs");
	CHECK(strcmp(time_unit_for(0)->name, "ns") == 0, "empty trace in ns");
	CHECK(strcmp(fmt_time_tick(1.5, 0.5, time_unit_for(3), b, sizeof(b)), "1.5 s") == 0,
	      "1.5 s tick (%s)", b);
	CHECK(strcmp(fmt_time_tick(0.25, 0.05, time_unit_for(0.3), b, sizeof(b)), "250 ms") == 0,
	      "250 ms tick (%s)", b);
	CHECK(strcmp(fmt_time_tick(1200, 600, time_unit_for(3600), b, sizeof(b)), "20 min") == 0,
	      "20 min tick (%s)", b);
	CHECK(strcmp(fmt_ns(1000, b, sizeof(b)), "1 \xc2\xb5s") == 0, "1000 ns is 1 µs (%s)", b);
	CHECK(strcmp(fmt_ns(60e9, b, sizeof(b)), "1 min") == 0, "60 s is 1 min (%s)", b);
	CHECK(strcmp(fmt_size_pow2(12, b, sizeof(b)), "4K") == 0, "2^12 is 4K (%s)", b);
	CHECK(strcmp(fmt_size_pow2(0, b, sizeof(b)), "1") == 0, "2^0 is 1 (%s)", b);
	CHECK(strcmp(fmt_size_pow2(30, b, sizeof(b)), "1G") == 0, "2^30 is 1G (%s)", b);
	CHECK(strcmp(fmt_count(12345, b, sizeof(b)), "12.3K") == 0, "12345 is 12.3K (%s)", b);
	CHECK(strcmp(fmt_count(950, b, sizeof(b)), "950") == 0, "950 stays (%s)", b);
	CHECK(strcmp(fmt_count(5000, b, sizeof(b)), "5K") == 0, "5000 is 5K (%s)", b);
}

static void test_labels(void)
{
	char b[128];
	/* 12.3 MiB = 12897484 bytes */
	peak_label(12897484, 1.52, 3.0, b, sizeof(b));
	CHECK(strcmp(b, "peak 12.3 MiB at 1.52 s") == 0, "peak label (%s)", b);
	peak_label(4096, 0.0152, 0.5, b, sizeof(b));
	CHECK(strcmp(b, "peak 4.00 KiB at 15.2 ms") == 0, "peak label in ms (%s)", b);
	peak_label(100, 0, 0, b, sizeof(b));
	CHECK(strcmp(b, "peak 100 B at 0 ns") == 0, "peak at time 0 (%s)", b);
	leak_label(1258291, 3, b, sizeof(b));
	CHECK(strcmp(b, "leaked 1.20 MiB in 3 blocks") == 0, "leak label (%s)", b);
	leak_label(0, 0, b, sizeof(b));
	CHECK(strcmp(b, "nothing leaked") == 0, "no leak (%s)", b);
}

static void test_text_fit(void)
{
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 10, 10);
	cairo_t *cr = cairo_create(s);
	char buf[256];
	const char *name = "a_rather_long_function_name_that_cannot_fit(int, char const*)";
	int ok;
	text_font(cr, 11, 0);
	ok = text_fit(cr, name, 80, buf, sizeof(buf));
	CHECK(ok && text_width(cr, buf) <= 80, "clipped name fits 80 px (%s, %.1f)", buf,
	      text_width(cr, buf));
	CHECK(ok && strstr(buf, "\xe2\x80\xa6") && strncmp(buf, name, 3) == 0,
	      "clipped name keeps its start and ends with an ellipsis");
	ok = text_fit(cr, "main", 200, buf, sizeof(buf));
	CHECK(ok && strcmp(buf, "main") == 0, "a short name is kept whole");
	CHECK(!text_fit(cr, name, 3, buf, sizeof(buf)), "nothing fits 3 px");
	ok = text_fit(cr, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 30, buf, sizeof(buf));
	CHECK(ok && (strlen(buf) - 3) % 2 == 0, "UTF-8 is cut on a character boundary (%s)", buf);
	cairo_destroy(cr);
	cairo_surface_destroy(s);
}

static struct flame_node *find_child(struct flame *f, uint32_t parent, const char *name)
{
	uint32_t c;
	for (c = f->nodes[parent].child; c; c = f->nodes[c].sibling)
		if (strcmp(f->nodes[c].name, name) == 0)
			return &f->nodes[c];
	return NULL;
}

static void test_flame(void)
{
	struct flame f;
	const char *a[] = { "main", "f", "g" };
	const char *b[] = { "main", "f", "h" };
	const char *c[] = { "main", "g" };
	struct flame_node *main_, *fn, *g;
	size_t i;
	char name[32];
	int ok = 1;

	CHECK(flame_init(&f) == 0, "flame_init");
	flame_add(&f, a, 3, 10);
	flame_add(&f, b, 3, 5);
	flame_add(&f, a, 3, 1);
	flame_add(&f, c, 2, 4);
	flame_add(&f, c, 2, 0);
	main_ = find_child(&f, 0, "main");
	fn = main_ ? find_child(&f, (uint32_t)(main_ - f.nodes), "f") : NULL;
	g = fn ? find_child(&f, (uint32_t)(fn - f.nodes), "g") : NULL;
	CHECK(f.nodes[0].value == 20, "root holds every byte (%llu)", (unsigned long long)f.nodes[0].value);
	CHECK(f.n == 6, "frames merged by name per level: 6 nodes (%zu)", f.n);
	CHECK(main_ && main_->value == 20 && fn && fn->value == 16 && g && g->value == 11,
	      "values summed along merged paths");
	CHECK(f.max_depth == 3, "depth 3");
	/* Many siblings: the hash grows and still finds every node. */
	for (i = 0; i < 5000; i++) {
		const char *p[2] = { "main", name };
		snprintf(name, sizeof(name), "fn%zu", i % 2500);
		if (flame_add(&f, p, 2, 1) < 0)
			ok = 0;
	}
	/* Nodes moved when the array grew: look main up again. */
	main_ = find_child(&f, 0, "main");
	g = main_ ? find_child(&f, (uint32_t)(main_ - f.nodes), "fn2499") : NULL;
	CHECK(ok && f.n == 6 + 2500 && g && g->value == 2,
	      "2500 distinct siblings added twice each: %zu nodes", f.n);
	flame_release(&f);
}

/* ---- whole pages ---- */

static struct tl_bucket buckets[1024];

/* A sawtooth that ends with a leak: peak 12 MiB in bucket 700. */
static void make_page(struct page *pg, struct flame *fl)
{
	static uint64_t count[HIST_N], bytes[HIST_N];
	static uint64_t lcount[HIST_N], lbytes[HIST_N];
	static struct thread_row rows[3] = {
		{ "main (100)", 1, 1000, 5000000 },
		{ NULL, 2, 300, 1 << 20 },
		{ "worker-a-with-a-long-name (102)", 3, 10, 4096 },
	};
	static uint64_t s0[1024], s1[1024];
	static const uint64_t *series[2] = { s0, s1 };
	static const char *names[2] = { "main", "other" };
	const char *st1[] = { "main", "parse", "malloc_wrapper" };
	const char *st2[] = { "main", "build_index" };
	size_t i;

	memset(pg, 0, sizeof(*pg));
	for (i = 0; i < 1024; i++) {
		uint64_t v = (i % 100) * 65536 + (i > 900 ? 1 << 20 : 0);
		if (i == 700)
			v = 12 << 20;
		buckets[i].t = (double)i * 0.01;
		buckets[i].min = v / 2;
		buckets[i].max = v;
		buckets[i].last = v;
		buckets[i].rss = (16 << 20) + i * 1000;
		buckets[i].arena = i % 2 ? 0 : (14 << 20);
		s0[i] = v / 3;
		s1[i] = v - v / 3;
	}
	pg->title = "demo, recorded 2026-11-22 17:47 UTC";
	pg->subtitle = "pid 1234 \xc2\xb7 10.24 s \xc2\xb7 1310 allocations";
	pg->tl.duration = 10.24;
	pg->tl.width = 0.01;
	pg->tl.n = 1024;
	pg->tl.b = buckets;
	pg->tl.peak_bytes = 12 << 20;
	pg->tl.peak_time = 7.0;
	pg->tl.end_bytes = (99 * 65536) + (1 << 20);
	pg->tl.end_allocations = 3;
	pg->tl.allocations = 1310;
	pg->tl.nseries = 2;
	pg->tl.series_name = names;
	pg->tl.series = series;
	pg->tl.last_is_other = 1;
	for (i = 0; i < 20; i++) {
		count[i] = 1000 >> (i / 2);
		bytes[i] = count[i] << i;
		lcount[i + 5] = 50 + i;
		lbytes[i + 5] = 4096 * i;
	}
	pg->sizes.n = HIST_N;
	pg->sizes.count = count;
	pg->sizes.bytes = bytes;
	pg->lifetimes.lifetimes = 1;
	pg->lifetimes.n = HIST_N - 1;
	pg->lifetimes.count = lcount;
	pg->lifetimes.bytes = lbytes;
	pg->threads.n = 3;
	pg->threads.rows = rows;
	flame_init(fl);
	flame_add(fl, st1, 3, 8 << 20);
	flame_add(fl, st2, 2, 4 << 20);
	pg->flame = fl;
	pg->flame_what = "live at the peak";
}

/* Renders into a temporary file and returns its bytes (malloc'd). */
static unsigned char *render_mem(const struct page *pg, enum out_format fmt, double w,
				 double h, enum chart_kind chart, int by_thread,
				 const char *desc, size_t *len, char *err)
{
	FILE *f = tmpfile();
	unsigned char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (render_page(f, fmt, w, h, pg, chart, by_thread, pg->title, desc, err, 256) == 0 &&
	    fflush(f) == 0 && (n = ftell(f)) > 0) {
		buf = malloc((size_t)n + 1);
		rewind(f);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = 0;
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_pages(void)
{
	static const char *const chart_name[] = {
		"timeline", "sizes", "lifetimes", "flame", "threads", "all",
	};
	struct page pg, empty;
	struct flame fl;
	unsigned char *out;
	size_t len = 0;
	char err[256] = "";
	int k;

	make_page(&pg, &fl);
	for (k = CHART_TIMELINE; k <= CHART_ALL; k++) {
		double h = k == CHART_ALL ? 1600 : 600;
		out = render_mem(&pg, OUT_PNG, 1200, h, k, 0, "peak_bytes=12582912", &len, err);
		CHECK(out && len > 1000 && memcmp(out, "\x89PNG\r\n\x1a\n", 8) == 0 &&
		      be32(out + 16) == 1200 && be32(out + 20) == (uint32_t)h,
		      "%s as PNG: 1200x%g (%zu bytes) %s", chart_name[k], h, len, err);
		CHECK(out && memmem(out, len, "tEXtDescription\0peak_bytes=12582912", 35),
		      "%s PNG carries the description in a tEXt chunk", chart_name[k]);
		free(out);
		out = render_mem(&pg, OUT_SVG, 1200, h, k, 1, "peak_bytes=12582912 a<b&c", &len, err);
		CHECK(out && strstr((char *)out, "<svg") &&
		      strstr((char *)out, "<desc>peak_bytes=12582912 a&lt;b&amp;c</desc>") &&
		      strstr((char *)out, "</svg>"),
		      "%s as SVG with an escaped <desc> (%zu bytes) %s", chart_name[k], len, err);
		free(out);
		out = render_mem(&pg, OUT_PDF, 1200, h, k, 0, "peak_bytes=12582912", &len, err);
		CHECK(out && len > 1000 && memcmp(out, "%PDF-", 5) == 0,
		      "%s as PDF (%zu bytes) %s", chart_name[k], len, err);
		free(out);
	}

	/* An empty trace: every chart says so, nothing fails. */
	memset(&empty, 0, sizeof(empty));
	empty.title = "empty";
	empty.sizes = pg.sizes;
	empty.sizes.count = empty.sizes.bytes = (const uint64_t[HIST_N]){ 0 };
	empty.lifetimes = empty.sizes;
	empty.lifetimes.lifetimes = 1;
	out = render_mem(&empty, OUT_PNG, 1200, 1600, CHART_ALL, 1, "", &len, err);
	CHECK(out != NULL, "an empty trace renders every chart (%s)", err);
	free(out);

	/* One event at time 0: a zero-length time axis. */
	{
		struct tl_bucket one = { 0, 0, 4096, 4096, 0, 0 };
		struct page p1 = pg;
		p1.tl.n = 1;
		p1.tl.b = &one;
		p1.tl.duration = 0;
		p1.tl.width = 1e-6;
		p1.tl.peak_bytes = 4096;
		p1.tl.peak_time = 0;
		p1.tl.nseries = 0;
		out = render_mem(&p1, OUT_SVG, 1200, 600, CHART_TIMELINE, 0, "", &len, err);
		CHECK(out != NULL, "one event at time 0 renders (%s)", err);
		free(out);
	}

	/* A thousand threads: the rows are summed into "other". */
	{
		struct thread_row *rows = calloc(1000, sizeof(*rows));
		struct page pt = pg;
		size_t i;
		for (i = 0; i < 1000; i++) {
			rows[i].thread = i + 1;
			rows[i].allocations = i * 7 + 1;
			rows[i].bytes = (i * 7919) % 100000 + 1;
		}
		pt.threads.n = 1000;
		pt.threads.rows = rows;
		out = render_mem(&pt, OUT_PNG, 1200, 600, CHART_THREADS, 0, "", &len, err);
		CHECK(out != NULL, "a thousand threads render (%s)", err);
		free(out);
		free(rows);
	}

	/* Ten hours, tiny sizes. */
	{
		struct page ph = pg;
		ph.tl.duration = 36000;
		ph.tl.width = 36000.0 / 1024;
		out = render_mem(&ph, OUT_PNG, 1200, 600, CHART_TIMELINE, 0, "", &len, err);
		CHECK(out != NULL, "ten hours render (%s)", err);
		free(out);
	}
	/* RSS far above the heap: counters on a right-hand axis. */
	{
		static struct tl_bucket big[1024];
		struct page pr = pg;
		size_t i;
		memcpy(big, buckets, sizeof(big));
		for (i = 0; i < 1024; i++)
			big[i].rss = 1ULL << 30;
		pr.tl.b = big;
		out = render_mem(&pr, OUT_SVG, 1200, 600, CHART_TIMELINE, 0, "", &len, err);
		CHECK(out != NULL, "RSS 80x the heap renders on a twin axis (%s)", err);
		free(out);
	}
	/* Small and odd sizes. */
	out = render_mem(&pg, OUT_PNG, 200, 150, CHART_ALL, 1, "", &len, err);
	CHECK(out != NULL, "a 200x150 page of everything renders (%s)", err);
	free(out);
	flame_release(&fl);
}

/* ---- the glue, on a trace written here and read back ---- */

static int wadd(struct mst_writer *w, struct mst_record *rec)
{
	return mst_writer_add(w, rec);
}

/*
 * Thread 1 "main" allocates 1000 B (stack main>a) at 1 ms and 3000 B (stack
 * main>b) at 2 ms; thread 2 "worker" allocates 5000 B (main>b) at 3 ms: the
 * peak, 9000 B at 3 ms. The 5000 B block is freed at 4 ms, the 1000 B at
 * 5 ms; 3000 B leak. Total allocated 9000 B.
 */
static int write_trace(int fd)
{
	static const char *const argv[] = { "./prog" };
	struct mst_writer *w;
	struct mst_record rec;
	int rc = 0;
	if (mst_writer_open(&w, fd, NULL) < 0)
		return -1;
	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_HEADER;
	rec.u.header.ticks_per_second = 1000000000;
	rec.u.header.start_wall_ns = 1795369661000000000ULL;
	rec.u.header.pid = 77;
	rec.u.header.program = "/bin/prog";
	rec.u.header.argc = 1;
	rec.u.header.argv = argv;
	rec.u.header.sample_rate_ppm = 1000000;
	rec.u.header.allocator = "glibc";
	rec.u.header.hostname = "h";
	rc |= wadd(w, &rec);
	for (uint64_t t = 1; t <= 2; t++) {
		memset(&rec, 0, sizeof(rec));
		rec.type = MST_REC_THREAD_START;
		rec.u.thread_start.thread = t;
		rec.u.thread_start.tid = t == 1 ? 77 : 78;
		rc |= wadd(w, &rec);
	}
	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_THREAD_NAME;
	rec.u.thread_name.thread = 2;
	rec.u.thread_name.name = "worker";
	rc |= wadd(w, &rec);
	/* nodes: 1 = main, 2 = main>a, 3 = main>b */
	rec.type = MST_REC_STACK;
	rec.u.stack.parent = 0;
	rec.u.stack.ip = 0x1000;
	rc |= wadd(w, &rec);
	rec.u.stack.parent = 1;
	rec.u.stack.ip = 0x2000;
	rc |= wadd(w, &rec);
	rec.u.stack.ip = 0x3000;
	rc |= wadd(w, &rec);
	{
		static const struct { uint64_t t, th, addr, size, st; } a[] = {
			{ 1000000, 1, 0x10000, 1000, 2 },
			{ 2000000, 1, 0x20000, 3000, 3 },
			{ 3000000, 2, 0x30000, 5000, 3 },
		};
		for (size_t i = 0; i < 3; i++) {
			memset(&rec, 0, sizeof(rec));
			rec.type = MST_REC_ALLOC;
			rec.u.alloc.time = a[i].t;
			rec.u.alloc.thread = a[i].th;
			rec.u.alloc.func = MST_ALLOC_MALLOC;
			rec.u.alloc.addr = a[i].addr;
			rec.u.alloc.size = a[i].size;
			rec.u.alloc.stack = a[i].st;
			rc |= wadd(w, &rec);
		}
	}
	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_FREE;
	rec.u.free.time = 4000000;
	rec.u.free.thread = 2;
	rec.u.free.func = MST_FREE_FREE;
	rec.u.free.addr = 0x30000;
	rc |= wadd(w, &rec);
	rec.u.free.time = 5000000;
	rec.u.free.thread = 1;
	rec.u.free.addr = 0x10000;
	rc |= wadd(w, &rec);
	memset(&rec, 0, sizeof(rec));
	rec.type = MST_REC_END;
	rec.u.end.time = 6000000;
	rec.u.end.reason = MST_END_EXIT;
	rec.u.end.events = 5;
	rc |= wadd(w, &rec);
	rc |= mst_writer_close(w);
	return rc ? -1 : 0;
}

static void test_glue(void)
{
	static const enum flame_at ats[] = { AT_PEAK, AT_LEAKS, AT_ALL };
	static const uint64_t want_root[] = { 9000, 3000, 9000 };
	FILE *f = tmpfile();
	struct mst_reader *r = NULL;
	struct mst_model *m = NULL;
	const struct mst_record *rec;
	struct mst_model_options mo = { 4096, 6 };
	int st = -1, ok;
	size_t i, k;

	CHECK(f && write_trace(fileno(f)) == 0, "a three-allocation trace written");
	if (!f)
		return;
	lseek(fileno(f), 0, SEEK_SET);
	if (mst_reader_open_fd(&r, fileno(f), "glue") < 0 || mst_model_new(&m, &mo) < 0) {
		CHECK(0, "reader and model open: %s", r ? mst_reader_error(r) : "");
		goto out;
	}
	while ((st = mst_reader_next(r, &rec)) == MST_OK)
		mst_model_add(m, r, rec);
	mst_model_finish(m, r, st);
	CHECK(st == MST_END, "trace read to its END (%d)", st);

	for (k = 0; k < 3; k++) {
		struct doc_options o = { 1, ats[k], NULL, NULL };
		struct svg_doc d;
		char err[128];
		uint64_t bmax = 0;
		if (doc_build(&d, m, r, &o, NULL, err, sizeof(err)) < 0) {
			CHECK(0, "doc_build: %s", err);
			continue;
		}
		if (k == 0) {
			CHECK(d.page.tl.peak_bytes == 9000 &&
			      d.page.tl.peak_bytes == mst_model_summary(m)->peak_bytes,
			      "timeline peak is the model's: 9000 (%llu)",
			      (unsigned long long)d.page.tl.peak_bytes);
			CHECK(fabs(d.page.tl.peak_time - 0.003) < 1e-12, "peak at 3 ms (%g)",
			      d.page.tl.peak_time);
			for (i = 0; i < d.page.tl.n; i++)
				if (d.buckets[i].max > bmax)
					bmax = d.buckets[i].max;
			CHECK(bmax == 9000, "the buckets' max reaches the peak (%llu)",
			      (unsigned long long)bmax);
			CHECK(d.page.tl.end_bytes == 3000 && d.page.tl.end_allocations == 1,
			      "3000 B leaked in one block");
			CHECK(strstr(d.desc, "peak 8.79 KiB at 3.00 ms; leaked 2.93 KiB in 1 block; peak_bytes=9000 ") != NULL,
			      "metadata line: %s", d.desc);
			CHECK(strstr(d.title, "prog \xe2\x80\x94 memory, recorded 2026-11-2") == d.title,
			      "title from the header: %s", d.title);
			ok = d.page.threads.n == 2;
			for (i = 0; ok && i < 2; i++) {
				const struct thread_row *t = &d.page.threads.rows[i];
				ok = t->thread == 1 ? strcmp(t->name, "main thread (77)") == 0 &&
					t->bytes == 4000 && t->allocations == 2 :
					strcmp(t->name, "worker (78)") == 0 && t->bytes == 5000;
			}
			CHECK(ok, "thread rows named and counted");
			CHECK(d.page.tl.nseries == 2 && d.page.tl.series[1][d.page.tl.n - 1] == 0 &&
			      d.page.tl.series[0][d.page.tl.n - 1] == 3000,
			      "per-thread series end at 3000 B and 0 B");
			CHECK(d.page.sizes.count[10] == 1 && d.page.sizes.count[12] == 1 &&
			      d.page.sizes.count[13] == 1,
			      "size histogram: 1000 B, 3000 B, 5000 B in buckets 10, 12, 13");
		}
		CHECK(d.has_flame && d.flame.nodes[0].value == want_root[k],
		      "flame --at %s: root holds %llu B (%llu)",
		      k == 0 ? "peak" : k == 1 ? "leaks" : "all",
		      (unsigned long long)want_root[k],
		      (unsigned long long)(d.has_flame ? d.flame.nodes[0].value : 0));
		/* Leaks: only main>b still holds memory. */
		CHECK(d.flame.n == (k == 1 ? 3u : 4u) && d.flame.max_depth == 2,
		      "flame: all > 0x1000 > {0x2000, 0x3000} by name, only live sites (%zu nodes)",
		      d.flame.n);
		doc_release(&d);
	}
out:
	if (m)
		mst_model_free(m);
	if (r)
		mst_reader_close(r);
	fclose(f);
}

static void test_formats(void)
{
	CHECK(out_format_for(NULL) == OUT_SVG && out_format_for("-") == OUT_SVG, "stdout is SVG");
	CHECK(out_format_for("a/b.svg") == OUT_SVG, ".svg");
	CHECK(out_format_for("x.PNG") == OUT_PNG, ".PNG");
	CHECK(out_format_for("r.pdf") == OUT_PDF, ".pdf");
	CHECK(out_format_for("r.jpg") == -1, ".jpg refused");
	CHECK(out_format_for("dir.png/noext") == OUT_SVG, "a dot in a folder name is no extension: SVG");
	CHECK(out_format_for("/dev/full") == OUT_SVG, "no extension: SVG");
}

int main(void)
{
	test_ticks();
	test_time_labels();
	test_labels();
	test_text_fit();
	test_flame();
	test_formats();
	test_pages();
	test_glue();
	return tap_done();
}
