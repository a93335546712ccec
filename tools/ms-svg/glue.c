/*
 * glue.c - turns the finished analysis model into chart data: timeline
 * buckets in seconds, per-thread series with names, histograms, thread rows,
 * the flame tree (stacks of the sites resolved through the symbolizer), the
 * page title from the trace header, and a metadata line of exact figures.
 *
 * Nothing here draws; nothing in charts.c knows the model.
 */
#include "glue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mscommon.h"

#define MAX_FRAMES 512
#define MAX_INLINE 16

static char *keep(struct svg_doc *d, const char *s)
{
	char *c = strdup(s);
	if (c)
		d->names[d->nnames++] = c;
	return c;
}

static const struct mst_thread_stats *thread_by_index(const struct mst_thread_stats *ts,
						      size_t n, uint64_t thread)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (ts[i].thread == thread)
			return &ts[i];
	return NULL;
}

/* "worker (1234)", "thread 3 (1240)"; an unnamed thread whose tid is the
 * pid is the process's first thread: "main thread (1234)". */
static void thread_label(const struct mst_thread_stats *t, uint64_t thread,
			 uint64_t pid, char *buf, size_t len)
{
	if (t && t->name && *t->name)
		snprintf(buf, len, "%s (%" PRIu64 ")", t->name, t->tid);
	else if (t && t->tid && t->tid == pid)
		snprintf(buf, len, "main thread (%" PRIu64 ")", t->tid);
	else if (t && t->tid)
		snprintf(buf, len, "thread %" PRIu64 " (%" PRIu64 ")", thread, t->tid);
	else
		snprintf(buf, len, "thread %" PRIu64, thread);
}

static int build_timeline(struct svg_doc *d, const struct mst_model *m,
			  const struct mst_summary *sum, const struct mst_thread_stats *ts,
			  size_t nts, uint64_t pid)
{
	struct mst_timeline tl;
	double tps = sum->ticks_per_second ? (double)sum->ticks_per_second : 1e9;
	size_t i, s;
	char buf[160];

	mst_model_timeline(m, &tl);
	d->buckets = calloc(tl.count ? tl.count : 1, sizeof(*d->buckets));
	if (!d->buckets)
		return -1;
	for (i = 0; i < tl.count; i++) {
		const struct mst_bucket *b = &tl.buckets[i];
		struct tl_bucket *o = &d->buckets[i];
		o->t = (double)b->start / tps;
		o->min = b->heap_min;
		o->max = b->heap_max;
		o->last = b->heap_last;
		o->rss = b->rss;
		o->arena = b->arena;
	}
	d->page.tl.b = d->buckets;
	d->page.tl.n = tl.count;
	d->page.tl.width = (double)tl.width / tps;
	d->page.tl.duration = (double)sum->duration / tps;
	d->page.tl.peak_bytes = sum->peak_bytes;
	d->page.tl.peak_time = (double)sum->peak_time / tps;
	d->page.tl.end_bytes = sum->end_bytes;
	d->page.tl.end_allocations = sum->end_allocations;
	d->page.tl.allocations = sum->allocations;

	if (!tl.nthreads || !tl.series)
		return 0;
	d->series = calloc(tl.nthreads + 1, sizeof(*d->series));
	d->series_name = calloc(tl.nthreads + 1, sizeof(*d->series_name));
	if (!d->series || !d->series_name)
		return -1;
	for (s = 0; s < tl.nthreads; s++) {
		thread_label(thread_by_index(ts, nts, tl.thread_ids[s]), tl.thread_ids[s],
			     pid, buf, sizeof(buf));
		d->series[s] = tl.series[s];
		if (!(d->series_name[s] = keep(d, buf)))
			return -1;
	}
	if (tl.other) {
		snprintf(buf, sizeof(buf), "other %zu threads", nts > tl.nthreads ?
			 nts - tl.nthreads : 0);
		d->series[s] = tl.other;
		if (!(d->series_name[s] = keep(d, buf)))
			return -1;
		s++;
		d->page.tl.last_is_other = 1;
	}
	d->page.tl.nseries = s;
	d->page.tl.series = d->series;
	d->page.tl.series_name = d->series_name;
	return 0;
}

static int build_threads(struct svg_doc *d, const struct mst_thread_stats *ts, size_t n,
			 uint64_t pid)
{
	size_t i;
	char buf[160];
	d->rows = calloc(n ? n : 1, sizeof(*d->rows));
	if (!d->rows)
		return -1;
	for (i = 0; i < n; i++) {
		thread_label(&ts[i], ts[i].thread, pid, buf, sizeof(buf));
		d->rows[i].thread = ts[i].thread;
		d->rows[i].allocations = ts[i].allocations;
		d->rows[i].bytes = ts[i].bytes;
		if (!(d->rows[i].name = keep(d, buf)))
			return -1;
	}
	d->page.threads.n = n;
	d->page.threads.rows = d->rows;
	return 0;
}

/* The names of one frame, outermost (the real function) first, then the
 * functions inlined into it. Returns how many were written to NAMES. */
static size_t frame_names(struct mst_symbolizer *sym, uint64_t ip, int is_return,
			  char **names, size_t room, char (*scratch)[64])
{
	struct mst_frame fr[MAX_INLINE];
	size_t n, i, k = 0;
	if (sym && room) {
		n = mst_symbolize(sym, ip, is_return, fr, MAX_INLINE);
		if (n > MAX_INLINE)
			n = MAX_INLINE;
		for (i = n; i-- > 0 && k < room;) {
			if (fr[i].function) {
				names[k++] = (char *)fr[i].function;
			} else if (fr[i].module) {
				const char *base = strrchr(fr[i].module, '/');
				snprintf(scratch[k], 64, "%s+0x%" PRIx64,
					 base ? base + 1 : fr[i].module, fr[i].module_offset);
				names[k] = scratch[k];
				k++;
			} else {
				snprintf(scratch[k], 64, "0x%" PRIx64, ip);
				names[k] = scratch[k];
				k++;
			}
		}
		if (k)
			return k;
	}
	if (!room)
		return 0;
	snprintf(scratch[0], 64, "0x%" PRIx64, ip);
	names[0] = scratch[0];
	return 1;
}

static int build_flame(struct svg_doc *d, const struct mst_model *m,
		       const struct mst_reader *r, const struct doc_options *o)
{
	const struct mst_site *sites;
	size_t ns = mst_model_sites(m, &sites), i;
	uint64_t *ips = malloc(MAX_FRAMES * sizeof(*ips));
	char **names = malloc(MAX_FRAMES * sizeof(*names));
	char (*scratch)[64] = malloc(MAX_FRAMES * sizeof(*scratch));
	int rc = -1;

	if (!ips || !names || !scratch || flame_init(&d->flame) < 0)
		goto out;
	d->has_flame = 1;
	for (i = 0; i < ns; i++) {
		const struct mst_site *s = &sites[i];
		uint64_t v = o->at == AT_PEAK ? s->peak_bytes :
			o->at == AT_LEAKS ? s->leaked_bytes : s->bytes;
		size_t nf, k = 0, j;
		if (!v)
			continue;
		nf = mst_reader_stack_frames(r, s->stack, ips, MAX_FRAMES);
		if (nf > MAX_FRAMES)
			nf = MAX_FRAMES;
		if (nf == 0) {
			names[k++] = (char *)"[no stack recorded]";
		} else {
			/* Outermost first; every frame but the innermost is a
			 * return address. */
			for (j = nf; j-- > 0 && k < MAX_FRAMES;)
				k += frame_names(o->sym, ips[j], j > 0, names + k,
						 MAX_FRAMES - k, scratch + k);
		}
		if (flame_add(&d->flame, (const char *const *)names, k, v) < 0)
			goto out;
	}
	d->page.flame = &d->flame;
	rc = 0;
out:
	free(ips);
	free(names);
	free(scratch);
	return rc;
}

static void build_text(struct svg_doc *d, const struct mst_reader *r,
		       const struct mst_summary *sum, const struct doc_options *o,
		       const char *warning)
{
	const struct mst_header *h = mst_reader_header(r);
	const char *prog = h && h->program && *h->program ? h->program : "unknown program";
	const char *base = strrchr(prog, '/');
	double tps = sum->ticks_per_second ? (double)sum->ticks_per_second : 1e9;
	char when[64] = "", dur[64], peak[32], alloc[32], cmd[256] = "";
	time_t t;
	struct tm tm;
	size_t i, used = 0;

	base = base && base[1] ? base + 1 : prog;
	if (h && h->start_wall_ns) {
		t = (time_t)(h->start_wall_ns / 1000000000u);
		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	}
	if (o->title)
		snprintf(d->title, sizeof(d->title), "%s", o->title);
	else if (*when)
		snprintf(d->title, sizeof(d->title), "%s \xe2\x80\x94 memory, recorded %s", base, when);
	else
		snprintf(d->title, sizeof(d->title), "%s \xe2\x80\x94 memory", base);

	/* The command line as run, then the headline figures. */
	for (i = 0; h && h->argv && i < h->argc && used + 2 < sizeof(cmd); i++) {
		int n = snprintf(cmd + used, sizeof(cmd) - used, "%s%s", i ? " " : "",
				 h->argv[i] ? h->argv[i] : "");
		if (n < 0)
			break;
		used += (size_t)n;
		if (used >= sizeof(cmd))
			used = sizeof(cmd) - 1;
	}
	fmt_time((double)sum->duration / tps, time_unit_for((double)sum->duration / tps),
		 dur, sizeof(dur));
	msc_format_bytes(sum->peak_bytes, peak);
	msc_format_bytes(sum->bytes_allocated, alloc);
	/* Scripts passed with -c hold newlines and tabs: one line of text. */
	for (i = 0; cmd[i]; i++)
		if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f)
			cmd[i] = ' ';
	/* The figures first: a long command line is what gets clipped. */
	snprintf(d->subtitle, sizeof(d->subtitle),
		 "%s \xc2\xb7 %" PRIu64 " allocations (%s) \xc2\xb7 peak %s \xc2\xb7 pid %" PRIu64 "%s%s%s%s",
		 dur, sum->allocations, alloc, peak, h ? h->pid : 0,
		 h && h->hostname && *h->hostname ? " on " : "",
		 h && h->hostname ? h->hostname : "", *cmd ? " \xc2\xb7 " : "", cmd);
	d->page.title = d->title;
	d->page.subtitle = d->subtitle;
	if (sum->estimated) {
		snprintf(d->note, sizeof(d->note), "estimated (sampled at %g%%)",
			 sum->sample_rate * 100);
		d->page.note = d->note;
	}
	if (warning && *warning) {
		snprintf(d->warning, sizeof(d->warning), "%s", warning);
		d->page.warning = d->warning;
	}

	{
		char pl[128], ll[128];
		peak_label(sum->peak_bytes, (double)sum->peak_time / tps,
			   (double)sum->duration / tps, pl, sizeof(pl));
		leak_label(sum->end_bytes, sum->end_allocations, ll, sizeof(ll));
		snprintf(d->desc, sizeof(d->desc),
			 "%s; %s; peak_bytes=%" PRIu64 " peak_time_ns=%.0f leaked_bytes=%" PRIu64
			 " leaked_allocations=%" PRIu64 " allocations=%" PRIu64 " frees=%" PRIu64
			 " bytes_allocated=%" PRIu64 " duration_ns=%.0f estimated=%d",
			 pl, ll, sum->peak_bytes, (double)sum->peak_time / tps * 1e9,
			 sum->end_bytes, sum->end_allocations, sum->allocations, sum->frees,
			 sum->bytes_allocated, (double)sum->duration / tps * 1e9, sum->estimated);
	}
}

int doc_build(struct svg_doc *d, const struct mst_model *m, const struct mst_reader *r,
	      const struct doc_options *o, const char *warning, char *err, size_t errlen)
{
	const struct mst_summary *sum = mst_model_summary(m);
	const struct mst_histograms *hist = mst_model_histograms(m);
	const struct mst_thread_stats *ts;
	size_t nts = mst_model_threads(m, &ts);

	const struct mst_header *h = mst_reader_header(r);
	uint64_t pid = h ? h->pid : 0;

	memset(d, 0, sizeof(*d));
	/* Series names and row names, at most one each per thread. */
	d->names = calloc(2 * nts + 2, sizeof(*d->names));
	if (!d->names || build_timeline(d, m, sum, ts, nts, pid) < 0 ||
	    build_threads(d, ts, nts, pid) < 0 || (o->flame && build_flame(d, m, r, o) < 0)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->page.sizes.lifetimes = 0;
	d->page.sizes.n = MST_SIZE_BUCKETS;
	d->page.sizes.count = hist->size_count;
	d->page.sizes.bytes = hist->size_bytes;
	d->page.lifetimes.lifetimes = 1;
	d->page.lifetimes.n = MST_LIFE_BUCKETS;
	d->page.lifetimes.count = hist->life_count;
	d->page.lifetimes.bytes = hist->life_bytes;
	d->page.lifetimes.tick_ns = sum->ticks_per_second ?
				    1e9 / (double)sum->ticks_per_second : 1;
	d->page.flame_what = o->at == AT_PEAK ? "live at the peak" :
		o->at == AT_LEAKS ? "still live at the end (leaked)" : "allocated in total";
	build_text(d, r, sum, o, warning);
	return 0;
}

void doc_release(struct svg_doc *d)
{
	size_t i;
	for (i = 0; i < d->nnames; i++)
		free(d->names[i]);
	free(d->names);
	free(d->buckets);
	free(d->series);
	free(d->series_name);
	free(d->rows);
	if (d->has_flame)
		flame_release(&d->flame);
	memset(d, 0, sizeof(*d));
}
