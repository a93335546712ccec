/*
 * ms-stats - reads one or more .memscope traces (files, or standard input)
 * and writes their figures as JSON (schema/ms-stats.schema.json) or a text
 * report; checks them against --check expressions for CI, or compares a
 * trace with a base trace (--diff, schema/ms-stats-diff.schema.json).
 */
#include "stats.h"
#include "mscommon.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#ifndef MEMSCOPE_VERSION
#define MEMSCOPE_VERSION "0.1"
#endif
#define MAX_CHECKS 16

struct options {
	int text;
	unsigned top;
	unsigned sections;            /* 0: all */
	int no_symbols;
	int strict;
	const char *checks[MAX_CHECKS];
	int nchecks;
	const char *diff_base;
	const char *output;
	char **inputs;
	int ninputs;
};

static const char usage_text[] =
	"usage: ms-stats [options] [TRACE...]\n"
	"Reports heap figures of memscope traces (standard input when no TRACE or '-').\n"
	"\n"
	"  -t, --text            a human-readable report instead of JSON\n"
	"  -n, --top N           sites listed per section (default 10)\n"
	"  -s, --section NAME    only this section (repeatable): summary, program,\n"
	"                        functions, peak, leaks, sites, histograms, threads,\n"
	"                        modules, fragmentation, labels, tasks, integrity\n"
	"      --no-symbols      keep addresses; do not read ELF or debug files\n"
	"      --strict          a truncated trace is a failure, not a warning\n"
	"  -c, --check EXPR      fail (status 1) unless EXPR holds, e.g.\n"
	"                        'leaked_bytes == 0 && peak_bytes < 64MiB'\n"
	"  -d, --diff BASE       compare TRACE against the base trace BASE\n"
	"  -o, --output FILE     write the report to FILE\n"
	"  -h, --help            show this help\n"
	"      --version         show the version\n";

enum { OPT_NO_SYMBOLS = 256, OPT_STRICT, OPT_VERSION };

static const struct option long_opts[] = {
	{ "text", no_argument, NULL, 't' },
	{ "top", required_argument, NULL, 'n' },
	{ "section", required_argument, NULL, 's' },
	{ "no-symbols", no_argument, NULL, OPT_NO_SYMBOLS },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "check", required_argument, NULL, 'c' },
	{ "diff", required_argument, NULL, 'd' },
	{ "output", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, else the exit status. */
static int parse_args(struct options *o, int argc, char **argv)
{
	uint64_t v;
	int c;
	unsigned sec;
	opterr = 0;                   /* our own messages, named "ms-stats" */
	while ((c = getopt_long(argc, argv, ":tn:s:c:d:o:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->text = 1;
			break;
		case 'n':
			if (msc_parse_u64(optarg, &v) < 0 || v > 1000000) {
				msc_error("invalid --top '%s': expected a whole number", optarg);
				return MSC_EXIT_USAGE;
			}
			o->top = (unsigned)v;
			break;
		case 's':
			sec = section_by_name(optarg);
			if (!sec) {
				msc_error("unknown section '%s'; see --help", optarg);
				return MSC_EXIT_USAGE;
			}
			o->sections |= sec;
			break;
		case OPT_NO_SYMBOLS:
			o->no_symbols = 1;
			break;
		case OPT_STRICT:
			o->strict = 1;
			break;
		case 'c':
			if (o->nchecks == MAX_CHECKS) {
				msc_error("at most %d --check options", MAX_CHECKS);
				return MSC_EXIT_USAGE;
			}
			o->checks[o->nchecks++] = optarg;
			break;
		case 'd':
			o->diff_base = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return MSC_EXIT_OK;
		case OPT_VERSION:
			printf("ms-stats (memscope) %s, trace format %d.%d\n", MEMSCOPE_VERSION,
			       MST_FORMAT_MAJOR, MST_FORMAT_MINOR);
			return MSC_EXIT_OK;
		case ':':
			msc_error("option '%s' needs a value", argv[optind - 1]);
			fprintf(stderr, "Try 'ms-stats --help'.\n");
			return MSC_EXIT_USAGE;
		default:
			if (optopt && optopt < 256)
				msc_error("unknown option '-%c'", optopt);
			else
				msc_error("unknown option '%s'", argv[optind - 1]);
			fprintf(stderr, "Try 'ms-stats --help'.\n");
			return MSC_EXIT_USAGE;
		}
	}
	o->inputs = argv + optind;
	o->ninputs = argc - optind;
	if (o->diff_base && o->ninputs > 1) {
		msc_error("--diff compares one trace with the base; %d given", o->ninputs);
		return MSC_EXIT_USAGE;
	}
	return -1;
}

static struct check_expr **parse_checks(const struct options *o, int *rc)
{
	const char *const *names = o->diff_base ? diff_field_list() : summary_field_names;
	struct check_expr **ex = calloc((size_t)o->nchecks + 1, sizeof(*ex));
	int i;
	*rc = ex ? -1 : MSC_EXIT_FAIL;
	for (i = 0; ex && i < o->nchecks; i++) {
		char err[200];
		size_t pos = 0;
		ex[i] = check_parse(o->checks[i], names, err, sizeof(err), &pos);
		if (!ex[i]) {
			msc_error("invalid --check expression: %s at position %zu:", err, pos + 1);
			fprintf(stderr, "  %s\n  %*s^\n", o->checks[i], (int)pos, "");
			*rc = MSC_EXIT_USAGE;
			break;
		}
	}
	return ex;
}

/* Warnings and errors about how a trace was read; returns the exit status
 * it calls for. */
static int read_verdict(const struct trace *t, const struct options *o)
{
	const char *detail = mst_reader_error(t->r);
	if (t->read_status == MST_END)
		return MSC_EXIT_OK;
	if (t->read_status == MST_ERR_TRUNCATED) {
		if (o->strict) {
			msc_error("%s: %s", t->name, detail);
			return MSC_EXIT_FAIL;
		}
		msc_warn("%s: %s: figures cover what was recorded", t->name, detail);
		return MSC_EXIT_OK;
	}
	msc_error("%s: %s: figures cover what was read before the damage", t->name,
		  detail && *detail ? detail : mst_status_str(t->read_status));
	return MSC_EXIT_FAIL;
}

static void symbol_warnings(const struct trace *t)
{
	const char *w = mst_symbolizer_warnings(t->sym), *nl;
	for (; *w; w = nl + 1) {
		nl = strchr(w, '\n');
		if (!nl)
			break;
		msc_warn("%.*s", (int)(nl - w), w);
	}
}

static int run_checks(struct check_expr **ex, const struct options *o,
		      const struct field *f, size_t nf, const char *prefix)
{
	int i, rc = MSC_EXIT_OK;
	for (i = 0; i < o->nchecks; i++) {
		char msg[700];
		int r = check_eval(ex[i], f, nf, msg, sizeof(msg));
		if (r == 1)
			continue;
		if (r < 0)
			msc_error("%scannot check: %s", prefix, msg);
		else
			msc_error("%scheck failed: %s", prefix, msg);
		rc = MSC_EXIT_FAIL;
	}
	return rc;
}

static int run(struct options *o)
{
	struct report_opts ro = { o->sections ? o->sections : SEC_ALL, o->top };
	unsigned symflags = o->no_symbols ? MST_SYM_NO_LOOKUP : 0;
	struct trace *ts = NULL, base = { 0 };
	struct check_expr **ex = NULL;
	int n = o->ninputs ? o->ninputs : 1, i, rc = MSC_EXIT_OK, crc, loaded = 0;
	int have_base = 0;
	/* With --check alone the verdict is the output (a quiet CI step). */
	int want_report = !o->nchecks || o->text || o->output || o->sections;
	char err[600];
	cJSON *json = NULL;
	FILE *out = NULL;

	/* Frames are named by the sections with stacks, the text report,
	 * --diff and several traces (sites matched by name). */
	if (want_report && (o->text || o->diff_base || n > 1 ||
			    (ro.sections & (SEC_PEAK | SEC_LEAKS | SEC_SITES))))
		symflags |= LOAD_NAMES;
	ex = parse_checks(o, &crc);
	if (crc >= 0) {
		rc = crc;
		goto out;
	}
	ts = calloc((size_t)n, sizeof(*ts));
	if (!ts) {
		msc_error("out of memory");
		rc = MSC_EXIT_FAIL;
		goto out;
	}
	if (o->diff_base) {
		if (trace_load(&base, o->diff_base, symflags, err, sizeof(err)) < 0) {
			msc_error("%s", err);
			rc = MSC_EXIT_FAIL;
			goto out;
		}
		have_base = 1;
		crc = read_verdict(&base, o);
		if (crc > rc)
			rc = crc;
	}
	for (i = 0; i < n; i++, loaded++) {
		if (trace_load(&ts[i], o->ninputs ? o->inputs[i] : "-", symflags,
			       err, sizeof(err)) < 0) {
			msc_error("%s", err);
			rc = MSC_EXIT_FAIL;
			loaded++;
			goto out;
		}
		crc = read_verdict(&ts[i], o);
		if (crc > rc)
			rc = crc;
	}

	if (want_report) {
		out = msc_open_output(o->output, 0);
		if (!out) {
			rc = MSC_EXIT_FAIL;
			goto out;
		}
	}
	if (have_base) {
		struct field f[MAX_DIFF_FIELDS];
		size_t nf = 0;
		json = diff_report(&base, &ts[0], &ro, f, &nf);
		if (out && o->text)
			diff_text(out, json);
		crc = run_checks(ex, o, f, nf, "");
		if (crc > rc)
			rc = crc;
	} else {
		for (i = 0; i < n; i++) {
			struct field f[MAX_FIELDS];
			size_t nf = summary_fields(&ts[i], f);
			char prefix[300] = "";
			if (n > 1)
				snprintf(prefix, sizeof(prefix), "%s: ", ts[i].name);
			crc = run_checks(ex, o, f, nf, prefix);
			if (crc > rc)
				rc = crc;
		}
		if (out && o->text)
			text_report(out, ts, (size_t)n, &ro);
		else if (out)
			json = n == 1 ? report_trace(&ts[0], &ro) : report_many(ts, (size_t)n, &ro);
	}
	if (out && !o->text) {
		char *s = json ? cJSON_Print(json) : NULL;
		if (!s) {
			msc_error("out of memory");
			rc = MSC_EXIT_FAIL;
		} else {
			fputs(s, out);
			fputc('\n', out);
			free(s);
		}
	}
	if (have_base)
		symbol_warnings(&base);
	for (i = 0; i < n; i++)
		symbol_warnings(&ts[i]);
out:
	if (out && msc_close_output(out, o->output) < 0)
		rc = MSC_EXIT_FAIL;
	cJSON_Delete(json);
	if (have_base)
		trace_release(&base);
	for (i = 0; ts && i < loaded && i < n; i++)
		trace_release(&ts[i]);
	free(ts);
	for (i = 0; ex && i < o->nchecks; i++)
		check_free(ex[i]);
	free(ex);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { .top = 10 };
	int rc;
	msc_set_prog("ms-stats");
	rc = parse_args(&o, argc, argv);
	if (rc >= 0) {
		/* --help and --version print to stdout: check it too */
		if (fflush(stdout) != 0 || ferror(stdout))
			return msc_close_output(stdout, NULL) < 0 ? MSC_EXIT_FAIL : rc;
		return rc;
	}
	return run(&o);
}
