/*
 * text.c - ms-stats --text: a human report that fits on one screen, in the
 * spirit of heaptrack_print: summary, top peak sites, top leaks, the
 * allocation functions, threads, and integrity warnings.
 */
#include "stats.h"
#include "mscommon.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 256

/* Frames of the C++ library's allocation plumbing (std::vector's
 * _M_realloc_insert, allocator<T>::allocate, operator new): the site is
 * named after the first frame that is not one of them. */
static int plumbing(const struct mst_frame *f)
{
	static const char *const prefix[] = {
		"std::", "__gnu_cxx::", "operator new", "void std::", NULL,
	};
	size_t i;
	if (!f->function)
		return 0;
	for (i = 0; prefix[i]; i++)
		if (!strncmp(f->function, prefix[i], strlen(prefix[i])))
			return 1;
	return f->file && !strncmp(f->file, "/usr/include/", 13);
}

/* "function (file:line)", "function", or "module+0xoffset" of frame F;
 * 0 when F has nothing to show. */
static int frame_label(const struct mst_frame *f, char *buf, size_t len)
{
	const char *base;

	if (f->function) {
		base = f->file ? strrchr(f->file, '/') : NULL;
		base = base ? base + 1 : f->file;
		if (base)
			snprintf(buf, len, "%s (%s:%" PRIu64 ")", f->function, base, f->line);
		else
			snprintf(buf, len, "%s", f->function);
		return 1;
	}
	if (f->module) {
		base = strrchr(f->module, '/');
		snprintf(buf, len, "%s+0x%" PRIx64, base ? base + 1 : f->module,
			 f->module_offset);
		return 1;
	}
	return 0;
}

/*
 * The first frame outside the allocator, then its caller's function: many
 * sites share their innermost frame (an interpreter's or a library's own
 * malloc wrapper), and the caller is what tells them apart on one line.
 */
static void site_name(const struct trace *t, uint64_t stack, char *buf, size_t len)
{
	uint64_t ips[MAX_FRAMES];
	size_t n = mst_reader_stack_frames(t->r, stack, ips, MAX_FRAMES), i, k, used = 0;
	struct mst_frame fr[16], first = { 0 };
	int have_first = 0;
	if (n > MAX_FRAMES)
		n = MAX_FRAMES;
	if (!n) {
		snprintf(buf, len, "(no stack)");
		return;
	}
	for (i = 0; i < n; i++) {
		size_t nf = mst_symbolize(t->sym, ips[i], i > 0, fr, 16);
		for (k = 0; k < nf && !used && plumbing(&fr[k]); k++) {
			if (!have_first) {
				first = fr[k];
				have_first = 1;
			}
		}
		if (k == nf)
			continue;     /* all plumbing: look further out */
		if (!used) {
			if (!frame_label(&fr[k], buf, len))
				continue;
			used = strlen(buf);
			if (k + 1 < nf && fr[k + 1].function) {
				/* the function this site was inlined into */
				snprintf(buf + used, len - used, " \u2190 %s", fr[k + 1].function);
				return;
			}
			continue;
		}
		if (fr[nf - 1].function || fr[nf - 1].module) {
			char caller[256];
			frame_label(&fr[nf - 1], caller, sizeof(caller));
			if (fr[nf - 1].function)
				snprintf(caller, sizeof(caller), "%s", fr[nf - 1].function);
			snprintf(buf + used, len - used, " \u2190 %s", caller);
			return;
		}
	}
	if (used)
		return;
	if (have_first && first.function)
		snprintf(buf, len, "%s", first.function);
	else
		snprintf(buf, len, "0x%" PRIx64, ips[0]);
}

/* One line of a top list: the sites whose label reads the same, summed. */
struct top_line {
	char name[512];
	uint64_t value, calls, blocks, bytes;
};

static int top_line_cmp(const void *a, const void *b)
{
	const struct top_line *x = a, *y = b;

	return x->value < y->value ? 1 : x->value > y->value ? -1 : strcmp(x->name, y->name);
}

/*
 * The TOP largest sites by peak or leaked bytes. Sites that read the same
 * on one line (the same function and caller reached by deeper stacks that
 * differ) are summed into one line, as heaptrack_print merges by location;
 * the JSON keeps every site apart. Only the largest TOP x 20 sites are
 * named, so a trace with a million sites is not symbolized whole.
 */
static void top_list(FILE *f, const struct trace *t, enum site_order by,
		     unsigned top, const char *title)
{
	const struct mst_site *s;
	size_t n, i, k, nl = 0, want;
	size_t *idx;
	struct top_line *lines;
	char name[512], b1[32], b2[32];

	mst_model_sites(t->m, &s);
	idx = sites_sorted(t, by, &n);
	fprintf(f, "\n%s\n", title);
	want = (size_t)top * 20;
	lines = calloc(want ? want : 1, sizeof(*lines));
	for (i = 0; idx && lines && i < n && i < want; i++) {
		const struct mst_site *x = &s[idx[i]];
		uint64_t v = by == BY_PEAK ? x->peak_bytes : x->leaked_bytes;
		if (!v)
			break;
		site_name(t, x->stack, name, sizeof(name));
		for (k = 0; k < nl && strcmp(lines[k].name, name) != 0; k++)
			;
		if (k == nl)
			snprintf(lines[nl++].name, sizeof(lines[0].name), "%s", name);
		lines[k].value += v;
		lines[k].calls += x->allocations;
		lines[k].blocks += x->leaked_allocations;
		lines[k].bytes += x->bytes;
	}
	if (nl)
		qsort(lines, nl, sizeof(*lines), top_line_cmp);
	for (k = 0; k < nl && k < top; k++) {
		const struct top_line *l = &lines[k];
		if (by == BY_PEAK)
			fprintf(f, "  %10s  %8" PRIu64 " %s  %s\n", msc_format_bytes(l->value, b1),
				l->calls, l->calls == 1 ? "call " : "calls", l->name);
		else
			fprintf(f, "  %10s  in %" PRIu64 " %s (%s allocated)  %s\n",
				msc_format_bytes(l->value, b1), l->blocks,
				l->blocks == 1 ? "block" : "blocks",
				msc_format_bytes(l->bytes, b2), l->name);
	}
	if (!nl)
		fprintf(f, "  (none)\n");
	free(lines);
	free(idx);
}

static void one(FILE *f, const struct trace *t, const struct report_opts *o)
{
	const struct mst_summary *s = mst_model_summary(t->m);
	const struct mst_header *h = mst_reader_header(t->r);
	const struct mst_thread_stats *th;
	struct mst_integrity in;
	char b1[32], b2[32], b3[32];
	size_t nt, i;
	unsigned fn;
	double tps = s->ticks_per_second ? (double)s->ticks_per_second : 1e9;

	mst_model_integrity(t->m, &in);
	fprintf(f, "%s: %s (pid %" PRIu64 "), %.3f s%s\n", t->name,
		h->program ? h->program : "?", h->pid, (double)s->duration / tps,
		s->estimated ? ", SAMPLED: figures are estimates" : "");
	fprintf(f, "  %" PRIu64 " allocations (%" PRIu64 " reallocs), %" PRIu64 " frees, %s allocated, %" PRIu64 " temporary\n",
		s->allocations, s->reallocs, s->frees,
		msc_format_bytes(s->bytes_allocated, b1), s->temporary);
	fprintf(f, "  peak heap %s at %.3f s in %" PRIu64 " blocks; max RSS %s\n",
		msc_format_bytes(s->peak_bytes, b1), (double)s->peak_time / tps,
		s->peak_allocations, s->max_rss ? msc_format_bytes(s->max_rss, b2) : "not recorded");
	fprintf(f, "  leaked %s in %" PRIu64 " blocks\n",
		msc_format_bytes(s->end_bytes, b3), s->end_allocations);

	top_list(f, t, BY_PEAK, o->top, "Top sites at the peak:");
	top_list(f, t, BY_LEAKED, o->top, "Top leaks:");

	fprintf(f, "\nFunctions:\n");
	for (fn = 1; fn <= MST_ALLOC_FUNC_MAX; fn++)
		if (s->alloc_by_func[fn].calls)
			fprintf(f, "  %-22s %10" PRIu64 " calls  %10s\n", mst_alloc_func_name(fn),
				s->alloc_by_func[fn].calls,
				msc_format_bytes(s->alloc_by_func[fn].bytes, b1));
	for (fn = 1; fn <= MST_FREE_FUNC_MAX; fn++)
		if (s->free_by_func[fn])
			fprintf(f, "  %-22s %10" PRIu64 " calls\n", mst_free_func_name(fn),
				s->free_by_func[fn]);
	if (!s->allocations && !s->frees)
		fprintf(f, "  (none)\n");

	nt = mst_model_threads(t->m, &th);
	fprintf(f, "\nThreads:\n");
	for (i = 0; i < nt && i < o->top; i++)
		fprintf(f, "  #%-3" PRIu64 " %-16s %8" PRIu64 " allocs %10s  peak %10s  %" PRIu64 " cross-thread frees\n",
			th[i].thread, th[i].name ? th[i].name : "", th[i].allocations,
			msc_format_bytes(th[i].bytes, b1), msc_format_bytes(th[i].peak_bytes, b2),
			th[i].cross_frees);
	if (nt > o->top)
		fprintf(f, "  ... %zu more\n", nt - o->top);

	if (in.truncated || in.dropped_events || in.double_allocs || in.own_malloc ||
	    (in.unknown_frees && !in.unknown_frees_expected) || in.read_status < 0) {
		fprintf(f, "\nIntegrity:\n");
		if (in.own_malloc)
			fprintf(f, "  malloc and free went to an allocator ahead of the recorder (the program's\n"
				"  own, or one preloaded first): those calls are not in the trace\n");
		if (in.truncated)
			fprintf(f, "  trace is truncated%s%s: figures cover what was recorded\n",
				in.read_error[0] ? ": " : "", in.read_error);
		else if (in.read_status < 0)
			fprintf(f, "  trace is damaged: %s\n", in.read_error);
		if (in.dropped_events)
			fprintf(f, "  %" PRIu64 " events dropped by the recorder\n", in.dropped_events);
		if (in.unknown_frees && !in.unknown_frees_expected)
			fprintf(f, "  %" PRIu64 " frees of addresses never allocated\n", in.unknown_frees);
		if (in.double_allocs && !in.dropped_events)
			fprintf(f, "  %" PRIu64 " allocations of an address already live\n", in.double_allocs);
	}
}

void text_report(FILE *f, const struct trace *ts, size_t n, const struct report_opts *o)
{
	size_t i;
	for (i = 0; i < n; i++) {
		if (i)
			fputc('\n', f);
		one(f, &ts[i], o);
	}
}
