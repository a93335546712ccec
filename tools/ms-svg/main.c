/*
 * ms-svg - draws a memscope trace as charts: reads a trace (file or stdin)
 * in one streaming pass into the shared analysis model, then draws the
 * timeline, size and lifetime histograms, a flame graph of the stacks
 * holding memory, or per-thread totals, as SVG (stdout or -o FILE.svg), PNG
 * or PDF (by the extension of FILE).
 *
 * Exit status: 0 ok (a truncated trace draws what it holds, with a
 * warning), 1 unreadable or damaged input or a write failure, 2 usage.
 */
#include "mstrace.h"
#include "mscommon.h"
#include "chart.h"
#include "glue.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MEMSCOPE_VERSION
#define MEMSCOPE_VERSION "0.1"
#endif

struct options {
	const char *input;            /* NULL or "-": stdin */
	const char *output;           /* NULL: SVG on stdout */
	enum out_format format;
	enum chart_kind chart;
	int by_thread;
	enum flame_at at;
	double width, height;         /* 0: default for the chart */
	const char *title;
	int no_symbols;
};

static const char usage_text[] =
	"usage: ms-svg [options] [-o FILE] [TRACE]\n"
	"\n"
	"Draws a memscope trace (TRACE, or stdin when absent or '-') as SVG on\n"
	"stdout, or into FILE: .svg, .png or .pdf by its extension.\n"
	"\n"
	"  -o, --output FILE     write FILE instead of SVG on stdout\n"
	"  -c, --chart KIND      timeline (default), sizes, lifetimes, flame,\n"
	"                        threads, or all on one page\n"
	"      --by-thread       timeline: stack the live bytes of each thread\n"
	"      --at WHEN         flame: peak (default, live at the peak), leaks\n"
	"                        (live at the end) or all (allocated in total)\n"
	"  -W, --width W         page width (default 1200)\n"
	"  -H, --height H        page height (default 600; 1600 for 'all')\n"
	"  -t, --title TEXT      title instead of the program and date\n"
	"      --no-symbols      flame: hex addresses, no symbol lookup\n"
	"  -h, --help            show this help\n"
	"      --version         show the version\n"
	"\n"
	"Exit status: 0 ok, 1 unreadable or damaged trace or write error,\n"
	"2 usage error.\n";

enum { OPT_BY_THREAD = 256, OPT_AT, OPT_NO_SYMBOLS, OPT_VERSION };

static const struct option long_options[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "chart", required_argument, NULL, 'c' },
	{ "by-thread", no_argument, NULL, OPT_BY_THREAD },
	{ "at", required_argument, NULL, OPT_AT },
	{ "width", required_argument, NULL, 'W' },
	{ "height", required_argument, NULL, 'H' },
	{ "title", required_argument, NULL, 't' },
	{ "no-symbols", no_argument, NULL, OPT_NO_SYMBOLS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const char *const chart_names[] = {
	[CHART_TIMELINE] = "timeline", [CHART_SIZES] = "sizes",
	[CHART_LIFETIMES] = "lifetimes", [CHART_FLAME] = "flame",
	[CHART_THREADS] = "threads", [CHART_ALL] = "all",
};

static int parse_dim(const char *s, const char *what, double *out)
{
	uint64_t v;
	/* Cairo's image surfaces stop at 32767; keep PNGs sane below that. */
	if (msc_parse_u64(s, &v) < 0 || v < 100 || v > 20000) {
		msc_error("invalid %s '%s': expected a number of pixels from 100 to 20000", what, s);
		return -1;
	}
	*out = (double)v;
	return 0;
}

/* Returns 0 to run, 1 to exit 0 (help, version), -1 for a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
	int c;
	size_t i;
	opterr = 0;                   /* our own messages, named "ms-svg" */
	while ((c = getopt_long(argc, argv, ":o:c:W:H:t:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'c':
			for (i = 0; i < sizeof(chart_names) / sizeof(chart_names[0]); i++)
				if (strcmp(optarg, chart_names[i]) == 0)
					break;
			if (i == sizeof(chart_names) / sizeof(chart_names[0])) {
				msc_error("unknown chart '%s': expected timeline, sizes, lifetimes, flame, threads or all", optarg);
				return -1;
			}
			o->chart = (enum chart_kind)i;
			break;
		case OPT_BY_THREAD:
			o->by_thread = 1;
			break;
		case OPT_AT:
			if (strcmp(optarg, "peak") == 0)
				o->at = AT_PEAK;
			else if (strcmp(optarg, "leaks") == 0)
				o->at = AT_LEAKS;
			else if (strcmp(optarg, "all") == 0)
				o->at = AT_ALL;
			else {
				msc_error("unknown --at '%s': expected peak, leaks or all", optarg);
				return -1;
			}
			break;
		case 'W':
			if (parse_dim(optarg, "width", &o->width) < 0)
				return -1;
			break;
		case 'H':
			if (parse_dim(optarg, "height", &o->height) < 0)
				return -1;
			break;
		case 't':
			o->title = optarg;
			break;
		case OPT_NO_SYMBOLS:
			o->no_symbols = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case OPT_VERSION:
			printf("ms-svg (memscope) %s, trace format %d.%d\n", MEMSCOPE_VERSION,
			       MST_FORMAT_MAJOR, MST_FORMAT_MINOR);
			return 1;
		case ':':
			msc_error("option '%s' needs a value", argv[optind - 1]);
			fputs("Try 'ms-svg --help'.\n", stderr);
			return -1;
		default:
			if (optopt && optopt < 256)
				msc_error("unknown option '-%c'", optopt);
			else
				msc_error("unknown option '%s'", argv[optind - 1]);
			fputs("Try 'ms-svg --help'.\n", stderr);
			return -1;
		}
	}
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc) {
		msc_error("too many arguments: '%s'", argv[optind]);
		fputs("Try 'ms-svg --help'.\n", stderr);
		return -1;
	}
	c = out_format_for(o->output);
	if (c < 0) {
		msc_error("cannot tell the format of '%s': use a .svg, .png or .pdf file name", o->output);
		return -1;
	}
	o->format = (enum out_format)c;
	if (!o->width)
		o->width = 1200;
	if (!o->height)
		o->height = o->chart == CHART_ALL ? 1600 : 600;
	return 0;
}

/*
 * Records other than ALLOC, FREE and STACK, in order: embedded symbol
 * tables go to the symbolizer. (Unlike ms-stats, ms-svg does not start
 * loading the sites' modules while it reads: the flame graph names only
 * the sites it draws, and loading the others cost a small trace a fifth
 * more time.)
 */
static int other_record(void *ctx, const struct mst_record *rec)
{
	if (rec->type == MST_REC_SYMBOLS)
		return mst_symbolizer_add_symbols(ctx, &rec->u.symbols);
	return MST_OK;
}

static int run(const struct options *o)
{
	const char *name = o->input && strcmp(o->input, "-") ? o->input : "standard input";
	struct mst_model_options mo = { 0 };
	struct mst_model *m = NULL;
	struct mst_reader *r = NULL;
	struct mst_symbolizer *sym = NULL;
	struct doc_options dopt = { 0 };
	struct svg_doc doc;
	int have_doc = 0, ret = MSC_EXIT_FAIL, st, damaged = 0;
	char warning[384] = "", err[256];
	FILE *out = NULL;

	st = mst_reader_open(&r, o->input);
	if (st < 0) {
		const char *d = r ? mst_reader_error(r) : mst_status_str(st);

		if (msc_detail_names(d, name))
			msc_error("%s", d);
		else
			msc_error("cannot read '%s': %s", name, d);
		goto out;
	}
	/* Enough buckets for a pixel column each at the widest page; the
	 * model halves them as the trace grows, keeping min and max. */
	mo.timeline_buckets = 4096;
	mo.thread_series = o->by_thread ? 6 : 0;
	if (mst_model_new(&m, &mo) < 0) {
		msc_error("out of memory");
		goto out;
	}
	dopt.flame = o->chart == CHART_FLAME || o->chart == CHART_ALL;
	if (dopt.flame && !o->no_symbols) {
		if (mst_symbolizer_new(&sym, r, 0) < 0) {
			msc_warn("no symbols: showing addresses");
			sym = NULL;
		}
	}
	/* the model's reading: chunks decoded ahead on a second thread */
	if (mst_model_read(m, r, sym ? other_record : NULL, sym, &st) != MST_OK) {
		msc_error("'%s': %s", name, mst_model_error(m));
		goto out;
	}
	if (st == MST_ERR_TRUNCATED) {
		msc_warn("'%s': %s; drawing what it holds", name, mst_reader_error(r));
		snprintf(warning, sizeof(warning), "trace cut short: shows what was recorded");
	} else if (st < 0) {
		/* Damage: still draw every complete chunk before it, but fail. */
		msc_error("'%s': %s", name, mst_reader_error(r));
		snprintf(warning, sizeof(warning), "damaged trace: shows what was read before the damage");
		damaged = 1;
	}
	if (mst_model_finish(m, r, st) < 0) {
		msc_error("'%s': %s", name, mst_model_error(m));
		goto out;
	}

	dopt.at = o->at;
	dopt.title = o->title;
	dopt.sym = sym;
	if (doc_build(&doc, m, r, &dopt, warning, err, sizeof(err)) < 0) {
		msc_error("%s", err);
		goto out;
	}
	have_doc = 1;
	if (sym && *mst_symbolizer_warnings(sym))
		msc_debug("symbols: %s", mst_symbolizer_warnings(sym));
	msc_debug("%s", doc.desc);

	out = msc_open_output(o->output, o->format != OUT_SVG);
	if (!out)
		goto out;
	if (render_page(out, o->format, o->width, o->height, &doc.page, o->chart,
			o->by_thread, doc.title, doc.desc, err, sizeof(err)) < 0) {
		msc_error("cannot write '%s': %s", o->output ? o->output : "standard output", err);
		/* Reported once: close without a second message. */
		fclose(out);
		out = NULL;
		goto out;
	}
	st = msc_close_output(out, o->output);
	out = NULL;
	if (st < 0)
		goto out;
	ret = damaged ? MSC_EXIT_FAIL : MSC_EXIT_OK;
out:
	if (have_doc)
		doc_release(&doc);
	if (sym)
		mst_symbolizer_free(sym);
	if (m)
		mst_model_free(m);
	if (r)
		mst_reader_close(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int rc;

	msc_set_prog("ms-svg");
	rc = parse_args(argc, argv, &o);
	if (rc < 0)
		return MSC_EXIT_USAGE;
	if (rc > 0) /* --help, --version: a failed write to stdout still fails */
		return msc_close_output(stdout, NULL) ? MSC_EXIT_FAIL : MSC_EXIT_OK;
	return run(&o);
}
