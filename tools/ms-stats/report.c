/*
 * report.c - loads a trace into the shared model and builds ms-stats' JSON
 * report (schema/ms-stats.schema.json) from it: one object per trace, or
 * "processes" and a "total" for several.
 */
#include "stats.h"
#include "mscommon.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FRAMES 256
#define MAX_INLINE 16

/* Records other than ALLOC, FREE and STACK, in order: embedded symbol
 * tables go to the symbolizer. Each is also a moment when the reader is
 * paused, so its stacks and modules can be read: symbols start loading
 * (counters come every few ms of the run, modules and threads at start). */
static int other_record(void *ctx, const struct mst_record *rec)
{
	struct trace *t = ctx;
	if (rec->type == MST_REC_SYMBOLS)
		return mst_symbolizer_add_symbols(t->sym, &rec->u.symbols);
	if (t->prepare)
		return mst_symbolizer_prepare_sites(t->sym, t->m);
	return MST_OK;
}

int trace_load(struct trace *t, const char *path, unsigned sym_flags,
	       char *err, size_t errlen)
{
	struct mst_reader_stats st;
	int s;

	memset(t, 0, sizeof(*t));
	t->name = path ? path : "-";
	t->fd = -1;
	if (strcmp(t->name, "-") != 0) {
		/* Open it here so the message names the file as the user wrote it. */
		t->fd = open(t->name, O_RDONLY | O_CLOEXEC);
		if (t->fd < 0) {
			snprintf(err, errlen, "cannot open '%s': %s", t->name, strerror(errno));
			return -1;
		}
	}
	if (t->fd < 0)
		t->name = "standard input";
	s = mst_reader_open_fd(&t->r, t->fd >= 0 ? t->fd : 0, t->name);
	if (s != MST_OK) {
		const char *d = t->r ? mst_reader_error(t->r) : NULL;
		if (!d || !*d)
			d = mst_status_str(s);
		if (msc_detail_names(d, t->name))
			snprintf(err, errlen, "%s", d);
		else
			snprintf(err, errlen, "%s: %s", t->name, d);
		return -1;
	}
	s = mst_model_new(&t->m, &(struct mst_model_options){ 0 });
	if (s != MST_OK) {
		snprintf(err, errlen, "%s: %s", t->name, mst_status_str(s));
		return -1;
	}
	t->prepare = !!(sym_flags & LOAD_NAMES);
	s = mst_symbolizer_new(&t->sym, t->r, sym_flags & ~LOAD_NAMES);
	if (s != MST_OK) {
		snprintf(err, errlen, "%s: %s", t->name, mst_status_str(s));
		return -1;
	}
	s = mst_model_read(t->m, t->r, other_record, t, &t->read_status);
	if (s != MST_OK) {
		const char *d = mst_model_error(t->m);
		snprintf(err, errlen, "%s: %s", t->name, *d ? d : mst_status_str(s));
		return -1;
	}
	s = t->read_status;
	mst_model_finish(t->m, t->r, s);
	mst_reader_stats(t->r, &st);
	t->bytes_read = st.bytes;
	return 0;
}

void trace_release(struct trace *t)
{
	mst_symbolizer_free(t->sym);
	mst_model_free(t->m);
	if (t->r)
		mst_reader_close(t->r);
	if (t->fd >= 0)
		close(t->fd);
	memset(t, 0, sizeof(*t));
}

/* ---- JSON helpers ---- */

cJSON *json_u64(uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cJSON_CreateRaw(buf);
}

cJSON *json_i64(int64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cJSON_CreateRaw(buf);
}

void json_add_u64(cJSON *o, const char *key, uint64_t v)
{
	cJSON_AddItemToObject(o, key, json_u64(v));
}

static double ticks_ms(const struct trace *t, uint64_t ticks)
{
	uint64_t tps = mst_model_summary(t->m)->ticks_per_second;
	return tps ? (double)ticks * 1000.0 / (double)tps : 0.0;
}

/* Milliseconds with microsecond resolution, as a plain number. */
void json_add_ms(cJSON *o, const char *key, const struct trace *t, uint64_t ticks)
{
	char buf[40];
	snprintf(buf, sizeof(buf), "%.3f", ticks_ms(t, ticks));
	cJSON_AddItemToObject(o, key, cJSON_CreateRaw(buf));
}

/* Length of the valid UTF-8 sequence at S, 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t c;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string of S; paths, argv and names need not be UTF-8 (FORMAT.md
 * allows any bytes), so invalid bytes become U+FFFD and the JSON stays
 * valid. */
cJSON *json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, o = 0, n;
	char *buf;
	cJSON *j;
	while (p[i] && (n = utf8_len(p + i)))
		i += n;
	if (!p[i])
		return cJSON_CreateString(s);
	buf = malloc(len * 3 + 1);
	if (!buf)
		return cJSON_CreateString("");
	for (i = 0; p[i];) {
		n = utf8_len(p + i);
		if (n) {
			memcpy(buf + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	buf[o] = 0;
	j = cJSON_CreateString(buf);
	free(buf);
	return j;
}

static void add_hex(cJSON *o, const char *key, uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	cJSON_AddStringToObject(o, key, buf);
}

static void add_str(cJSON *o, const char *key, const char *s)
{
	if (s)
		cJSON_AddItemToObject(o, key, json_string(s));
	else
		cJSON_AddNullToObject(o, key);
}

static void add_double(cJSON *o, const char *key, double v, int decimals)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	cJSON_AddItemToObject(o, key, cJSON_CreateRaw(buf));
}

/* ---- sections ---- */

static const char *const section_names[] = {
	"summary", "program", "functions", "peak", "leaks", "sites",
	"histograms", "threads", "modules", "fragmentation", "labels",
	"tasks", "integrity", NULL,
};

unsigned section_by_name(const char *name)
{
	unsigned i;
	for (i = 0; section_names[i]; i++)
		if (!strcmp(name, section_names[i]))
			return 1u << i;
	return 0;
}

static const char *strategy(const struct mst_header *h)
{
	if (h->sample_rate_ppm && h->sample_rate_ppm < 1000000)
		return "sampled";
	switch (h->unwinder) {
	case MST_UNWIND_FP:
		return "preload-fp";
	case MST_UNWIND_DWARF:
		return "preload-dwarf";
	default:
		return "preload-none";
	}
}

const char *const summary_field_names[] = {
	"allocations", "total_allocations", "frees", "reallocs",
	"bytes_allocated", "peak_bytes", "peak_time_ms", "peak_allocations",
	"peak_memory_mb", "leaked_bytes", "leaked_allocations", "temporary",
	"duration_ms", "data_size_bytes", "max_rss_bytes", "sample_rate",
	"dropped_events", "unknown_frees", "double_allocs", "truncated",
	"estimated", NULL,
};

size_t summary_fields(const struct trace *t, struct field *out)
{
	const struct mst_summary *s = mst_model_summary(t->m);
	struct mst_integrity in;
	size_t n = 0;
	mst_model_integrity(t->m, &in);
#define F(nm, v, b) (out[n].name = (nm), out[n].value = (long double)(v), out[n].is_bytes = (b), n++)
	F("allocations", s->allocations, 0);
	F("total_allocations", s->allocations, 0);
	F("frees", s->frees, 0);
	F("reallocs", s->reallocs, 0);
	F("bytes_allocated", s->bytes_allocated, 1);
	F("peak_bytes", s->peak_bytes, 1);
	F("peak_time_ms", ticks_ms(t, s->peak_time), 0);
	F("peak_allocations", s->peak_allocations, 0);
	F("peak_memory_mb", (long double)s->peak_bytes / 1048576.0L, 0);
	F("leaked_bytes", s->end_bytes, 1);
	F("leaked_allocations", s->end_allocations, 0);
	F("temporary", s->temporary, 0);
	F("duration_ms", ticks_ms(t, s->duration), 0);
	F("data_size_bytes", t->bytes_read, 1);
	F("max_rss_bytes", s->max_rss, 1);
	F("sample_rate", s->sample_rate, 0);
	F("dropped_events", in.dropped_events, 0);
	F("unknown_frees", in.unknown_frees, 0);
	F("double_allocs", in.double_allocs, 0);
	F("truncated", in.truncated, 0);
	F("estimated", s->estimated, 0);
#undef F
	return n;
}

static cJSON *summary_json(const struct trace *t)
{
	const struct mst_summary *s = mst_model_summary(t->m);
	const struct mst_header *h = mst_reader_header(t->r);
	struct mst_integrity in;
	cJSON *o = cJSON_CreateObject();
	char sid[33];
	int i;
	mst_model_integrity(t->m, &in);
	for (i = 0; i < 16; i++)
		snprintf(sid + 2 * i, 3, "%02x", h->session_id[i]);
	cJSON_AddStringToObject(o, "session_id", sid);
	json_add_ms(o, "duration_ms", t, s->duration);
	cJSON_AddStringToObject(o, "strategy_used", strategy(h));
	json_add_u64(o, "total_allocations", s->allocations);
	add_double(o, "peak_memory_mb", (double)s->peak_bytes / 1048576.0, 6);
	json_add_u64(o, "data_size_bytes", t->bytes_read);
	json_add_u64(o, "allocations", s->allocations);
	json_add_u64(o, "frees", s->frees);
	json_add_u64(o, "reallocs", s->reallocs);
	json_add_u64(o, "bytes_allocated", s->bytes_allocated);
	json_add_u64(o, "peak_bytes", s->peak_bytes);
	json_add_ms(o, "peak_time_ms", t, s->peak_time);
	json_add_u64(o, "peak_allocations", s->peak_allocations);
	json_add_u64(o, "leaked_bytes", s->end_bytes);
	json_add_u64(o, "leaked_allocations", s->end_allocations);
	json_add_u64(o, "temporary", s->temporary);
	json_add_u64(o, "max_rss_bytes", s->max_rss);
	cJSON_AddBoolToObject(o, "estimated", s->estimated);
	add_double(o, "sample_rate", s->sample_rate, 6);
	cJSON_AddBoolToObject(o, "truncated", in.truncated);
	return o;
}

static const char *unwinder_name(unsigned u)
{
	return u == MST_UNWIND_FP ? "frame-pointers" :
	       u == MST_UNWIND_DWARF ? "dwarf" : "none";
}

static cJSON *program_json(const struct trace *t)
{
	const struct mst_header *h = mst_reader_header(t->r);
	cJSON *o = cJSON_CreateObject(), *argv = cJSON_CreateArray();
	char iso[64], fmt[16];
	time_t secs = (time_t)(h->start_wall_ns / 1000000000ull);
	struct tm tm;
	uint64_t i;
	add_str(o, "path", h->program);
	for (i = 0; i < h->argc; i++)
		cJSON_AddItemToArray(argv, json_string(h->argv[i] ? h->argv[i] : ""));
	cJSON_AddItemToObject(o, "argv", argv);
	json_add_u64(o, "pid", h->pid);
	json_add_u64(o, "ppid", h->ppid);
	gmtime_r(&secs, &tm);
	strftime(iso, sizeof(iso) - 8, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(fmt, sizeof(fmt), ".%03uZ",
		 (unsigned)(h->start_wall_ns / 1000000ull % 1000));
	strcat(iso, fmt);
	cJSON_AddStringToObject(o, "start_time", iso);
	add_str(o, "hostname", h->hostname);
	add_str(o, "allocator", h->allocator);
	cJSON_AddStringToObject(o, "unwinder", unwinder_name(h->unwinder));
	json_add_u64(o, "stack_depth", h->stack_depth);
	json_add_u64(o, "sample_rate_ppm", h->sample_rate_ppm);
	add_double(o, "sample_rate", mst_model_summary(t->m)->sample_rate, 6);
	cJSON_AddBoolToObject(o, "forked", !!(h->flags & MST_FLAG_FORKED));
	json_add_u64(o, "exec_generation", h->exec_generation);
	snprintf(fmt, sizeof(fmt), "%u.%u", h->major, h->minor);
	cJSON_AddStringToObject(o, "format_version", fmt);
	return o;
}

static cJSON *functions_json(const struct trace *t)
{
	const struct mst_summary *s = mst_model_summary(t->m);
	cJSON *a = cJSON_CreateArray();
	unsigned f;
	for (f = 1; f <= MST_ALLOC_FUNC_MAX; f++) {
		cJSON *o;
		if (!s->alloc_by_func[f].calls)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "function", mst_alloc_func_name(f));
		cJSON_AddStringToObject(o, "kind", "allocate");
		json_add_u64(o, "calls", s->alloc_by_func[f].calls);
		json_add_u64(o, "bytes", s->alloc_by_func[f].bytes);
		cJSON_AddItemToArray(a, o);
	}
	for (f = 1; f <= MST_FREE_FUNC_MAX; f++) {
		cJSON *o;
		if (!s->free_by_func[f])
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "function", mst_free_func_name(f));
		cJSON_AddStringToObject(o, "kind", "free");
		json_add_u64(o, "calls", s->free_by_func[f]);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

/* ---- stacks ---- */

cJSON *stack_json(const struct trace *t, uint64_t stack)
{
	uint64_t ips[MAX_FRAMES];
	size_t n = mst_reader_stack_frames(t->r, stack, ips, MAX_FRAMES), i, k, nf;
	cJSON *a = cJSON_CreateArray();
	if (n > MAX_FRAMES)
		n = MAX_FRAMES;
	for (i = 0; i < n; i++) {
		struct mst_frame fr[MAX_INLINE];
		nf = mst_symbolize(t->sym, ips[i], i > 0, fr, MAX_INLINE);
		for (k = 0; k < nf; k++) {
			cJSON *o = cJSON_CreateObject();
			add_hex(o, "address", ips[i]);
			add_str(o, "function", fr[k].function);
			add_str(o, "file", fr[k].file);
			if (fr[k].line)
				json_add_u64(o, "line", fr[k].line);
			else
				cJSON_AddNullToObject(o, "line");
			add_str(o, "module", fr[k].module);
			if (fr[k].module)
				add_hex(o, "offset", fr[k].module_offset);
			cJSON_AddBoolToObject(o, "inlined", fr[k].inlined);
			cJSON_AddItemToArray(a, o);
		}
	}
	return a;
}

static size_t append(char *buf, size_t len, size_t at, const char *s)
{
	size_t l = strlen(s);
	if (at + l + 1 < len) {
		memcpy(buf + at, s, l + 1);
		return at + l;
	}
	return at;
}

size_t stack_key(const struct trace *t, uint64_t stack, char *buf, size_t len)
{
	uint64_t ips[MAX_FRAMES];
	size_t n = mst_reader_stack_frames(t->r, stack, ips, MAX_FRAMES), i, k, nf, at = 0;
	char part[512];
	if (len)
		buf[0] = 0;
	if (n > MAX_FRAMES)
		n = MAX_FRAMES;
	if (!n)
		return append(buf, len, 0, "(no stack)");
	for (i = 0; i < n; i++) {
		struct mst_frame fr[MAX_INLINE];
		nf = mst_symbolize(t->sym, ips[i], i > 0, fr, MAX_INLINE);
		for (k = 0; k < nf; k++) {
			const char *mod = fr[k].module ? strrchr(fr[k].module, '/') : NULL;
			mod = mod ? mod + 1 : fr[k].module;
			/* Names are stable between runs; module offsets too (ASLR
			 * moves only the bias); raw addresses are the last resort. */
			if (fr[k].function)
				snprintf(part, sizeof(part), "%s", fr[k].function);
			else if (mod)
				snprintf(part, sizeof(part), "%s+0x%" PRIx64, mod, fr[k].module_offset);
			else
				snprintf(part, sizeof(part), "0x%" PRIx64, ips[i]);
			if (at)
				at = append(buf, len, at, ";");
			at = append(buf, len, at, part);
		}
	}
	return at;
}

/* ---- sites ---- */

static int cmp_sites(const void *a, const void *b, void *ctx)
{
	const struct mst_site *s = ((const void **)ctx)[0];
	enum site_order by = *(const enum site_order *)((const void **)ctx)[1];
	const struct mst_site *x = &s[*(const size_t *)a], *y = &s[*(const size_t *)b];
	uint64_t vx, vy;
	switch (by) {
	case BY_PEAK:
		vx = x->peak_bytes, vy = y->peak_bytes;
		break;
	case BY_LEAKED:
		vx = x->leaked_bytes, vy = y->leaked_bytes;
		break;
	default:
		vx = x->bytes, vy = y->bytes;
		break;
	}
	if (vx != vy)
		return vx < vy ? 1 : -1;
	if (x->allocations != y->allocations)
		return x->allocations < y->allocations ? 1 : -1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

size_t *sites_sorted(const struct trace *t, enum site_order by, size_t *n)
{
	const struct mst_site *s;
	size_t ns = mst_model_sites(t->m, &s), i;
	size_t *idx = malloc((ns ? ns : 1) * sizeof(*idx));
	const void *ctx[2] = { s, &by };
	*n = 0;
	if (!idx)
		return NULL;
	for (i = 0; i < ns; i++)
		idx[i] = i;
	qsort_r(idx, ns, sizeof(*idx), cmp_sites, ctx);
	*n = ns;
	return idx;
}

static const char *module_path(const struct trace *t, uint64_t module)
{
	const struct mst_module_load *ml = module ? mst_reader_module(t->r, module) : NULL;
	return ml ? ml->path : NULL;
}

static cJSON *site_json(const struct trace *t, const struct mst_site *s)
{
	cJSON *o = cJSON_CreateObject();
	json_add_u64(o, "id", s->stack);
	json_add_u64(o, "allocations", s->allocations);
	json_add_u64(o, "bytes", s->bytes);
	json_add_u64(o, "peak_bytes", s->peak_bytes);
	json_add_u64(o, "max_live_bytes", s->max_live_bytes);
	json_add_u64(o, "leaked_bytes", s->leaked_bytes);
	json_add_u64(o, "leaked_allocations", s->leaked_allocations);
	json_add_u64(o, "temporary", s->temporary);
	json_add_u64(o, "median_lifetime_ns", s->median_lifetime_ns);
	add_str(o, "module", module_path(t, s->module));
	cJSON_AddItemToObject(o, "stack", stack_json(t, s->stack));
	return o;
}

/* The top sites by BY with a nonzero figure, at most TOP. */
static cJSON *top_sites(const struct trace *t, enum site_order by, unsigned top)
{
	const struct mst_site *s;
	size_t n, i, *idx;
	cJSON *a = cJSON_CreateArray();
	mst_model_sites(t->m, &s);
	idx = sites_sorted(t, by, &n);
	for (i = 0; idx && i < n && i < top; i++) {
		const struct mst_site *x = &s[idx[i]];
		uint64_t v = by == BY_PEAK ? x->peak_bytes :
			     by == BY_LEAKED ? x->leaked_bytes : x->allocations;
		if (!v)
			break;
		cJSON_AddItemToArray(a, site_json(t, x));
	}
	free(idx);
	return a;
}

static cJSON *peak_json(const struct trace *t, unsigned top)
{
	const struct mst_summary *s = mst_model_summary(t->m);
	struct mst_fragmentation f;
	cJSON *o = cJSON_CreateObject();
	mst_model_fragmentation(t->m, &f);
	json_add_u64(o, "bytes", s->peak_bytes);
	json_add_ms(o, "time_ms", t, s->peak_time);
	json_add_u64(o, "allocations", s->peak_allocations);
	json_add_u64(o, "rss_bytes", f.rss_at_peak);
	cJSON_AddItemToObject(o, "sites", top_sites(t, BY_PEAK, top));
	return o;
}

static cJSON *leaks_json(const struct trace *t, unsigned top)
{
	const struct mst_summary *s = mst_model_summary(t->m);
	const struct mst_site *sites;
	size_t ns = mst_model_sites(t->m, &sites), i, nl = 0;
	cJSON *o = cJSON_CreateObject();
	for (i = 0; i < ns; i++)
		nl += sites[i].leaked_bytes || sites[i].leaked_allocations;
	json_add_u64(o, "bytes", s->end_bytes);
	json_add_u64(o, "allocations", s->end_allocations);
	json_add_u64(o, "site_count", nl);
	cJSON_AddItemToObject(o, "sites", top_sites(t, BY_LEAKED, top));
	return o;
}

static cJSON *sites_json(const struct trace *t, unsigned top)
{
	const struct mst_site *s;
	cJSON *o = cJSON_CreateObject();
	json_add_u64(o, "count", mst_model_sites(t->m, &s));
	cJSON_AddItemToObject(o, "top", top_sites(t, BY_BYTES, top));
	return o;
}

/* Nanoseconds in one tick of the trace's clock (at least 1). */
static uint64_t tick_ns(const struct trace *t)
{
	uint64_t tps = mst_model_summary(t->m)->ticks_per_second;

	return tps && tps < 1000000000ull ? (1000000000ull + tps - 1) / tps : 1;
}

/* ZERO_MAX: the largest value bucket 0 stands for: 0 for sizes; for
 * lifetimes, what is below one clock tick (255 ns with ms-record's 256 ns
 * ticks), which a trace can only record as 0. */
static cJSON *hist_array(const uint64_t *count, const uint64_t *bytes, size_t n,
			 uint64_t zero_max)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;
	for (i = 0; i < n; i++) {
		cJSON *o;
		if (!count[i])
			continue;
		o = cJSON_CreateObject();
		/* bucket i: [2^(i-1), 2^i); bucket 0: [0, zero_max] */
		json_add_u64(o, "min", i ? 1ull << (i - 1) : 0);
		if (i < 64)
			json_add_u64(o, "max", i ? (1ull << i) - 1 : zero_max);
		else
			json_add_u64(o, "max", UINT64_MAX);
		json_add_u64(o, "count", count[i]);
		json_add_u64(o, "bytes", bytes[i]);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *histograms_json(const struct trace *t)
{
	const struct mst_histograms *h = mst_model_histograms(t->m);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "size_bytes",
			      hist_array(h->size_count, h->size_bytes, MST_SIZE_BUCKETS, 0));
	cJSON_AddItemToObject(o, "lifetime_ns",
			      hist_array(h->life_count, h->life_bytes, MST_LIFE_BUCKETS,
					 tick_ns(t) > 1 ? tick_ns(t) - 1 : 0));
	return o;
}

static cJSON *threads_json(const struct trace *t)
{
	const struct mst_thread_stats *th;
	size_t n = mst_model_threads(t->m, &th), i;
	cJSON *a = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		json_add_u64(o, "thread", th[i].thread);
		json_add_u64(o, "tid", th[i].tid);
		add_str(o, "name", th[i].name);
		json_add_ms(o, "start_ms", t, th[i].start_time);
		if (th[i].exit_time)
			json_add_ms(o, "exit_ms", t, th[i].exit_time);
		else
			cJSON_AddNullToObject(o, "exit_ms");
		json_add_u64(o, "allocations", th[i].allocations);
		json_add_u64(o, "bytes", th[i].bytes);
		json_add_u64(o, "frees", th[i].frees);
		json_add_u64(o, "live_bytes", th[i].live_bytes);
		json_add_u64(o, "peak_bytes", th[i].peak_bytes);
		json_add_u64(o, "cross_thread_frees", th[i].cross_frees);
		json_add_u64(o, "cross_thread_free_bytes", th[i].cross_free_bytes);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *modules_json(const struct trace *t)
{
	const struct mst_module_stats *ms;
	const struct mst_module_cross *cr;
	size_t n = mst_model_modules(t->m, &ms), nc = mst_model_module_cross(t->m, &cr), i;
	cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray(), *c = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		cJSON *x = cJSON_CreateObject();
		json_add_u64(x, "module", ms[i].module);
		add_str(x, "path", ms[i].path);
		json_add_u64(x, "allocations", ms[i].allocations);
		json_add_u64(x, "bytes", ms[i].bytes);
		json_add_u64(x, "frees", ms[i].frees);
		json_add_u64(x, "leaked_bytes", ms[i].leaked_bytes);
		cJSON_AddItemToArray(a, x);
	}
	for (i = 0; i < nc; i++) {
		cJSON *x = cJSON_CreateObject();
		add_str(x, "allocated_in", module_path(t, cr[i].alloc_module));
		add_str(x, "freed_in", module_path(t, cr[i].free_module));
		json_add_u64(x, "count", cr[i].count);
		json_add_u64(x, "bytes", cr[i].bytes);
		cJSON_AddItemToArray(c, x);
	}
	cJSON_AddItemToObject(o, "loaded", a);
	cJSON_AddItemToObject(o, "crossing", c);
	return o;
}

/* At most OVER_TIME points of the model's timeline: the live heap's
 * largest value in each span against the counters last sampled by then. */
#define OVER_TIME 32
static cJSON *over_time(const struct trace *t, uint64_t samples)
{
	struct mst_timeline tl;
	cJSON *a = cJSON_CreateArray();
	size_t per, i, k;
	/* counters hold their last sample until the next one */
	uint64_t rss = 0, arena = 0, in_use = 0;
	mst_model_timeline(t->m, &tl);
	if (!samples || !tl.count)
		return a;
	per = (tl.count + OVER_TIME - 1) / OVER_TIME;
	for (i = 0; i < tl.count; i += per) {
		uint64_t heap = 0;
		cJSON *o;
		for (k = i; k < i + per && k < tl.count; k++) {
			const struct mst_bucket *b = &tl.buckets[k];
			if (b->heap_max > heap)
				heap = b->heap_max;
			if (b->rss)
				rss = b->rss;
			if (b->arena)
				arena = b->arena;
			if (b->in_use)
				in_use = b->in_use;
		}
		o = cJSON_CreateObject();
		json_add_ms(o, "time_ms", t, tl.buckets[i].start);
		json_add_u64(o, "heap_bytes", heap);
		json_add_u64(o, "rss_bytes", rss);
		json_add_u64(o, "arena_bytes", arena);
		json_add_u64(o, "in_use_bytes", in_use);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *fragmentation_json(const struct trace *t)
{
	struct mst_fragmentation f;
	const struct mst_summary *s = mst_model_summary(t->m);
	cJSON *o = cJSON_CreateObject();
	mst_model_fragmentation(t->m, &f);
	json_add_u64(o, "live_bytes", f.live_bytes);
	json_add_u64(o, "span_bytes", f.span_bytes);
	if (f.live_bytes)
		add_double(o, "span_over_live", (double)f.span_bytes / (double)f.live_bytes, 3);
	else
		cJSON_AddNullToObject(o, "span_over_live");
	json_add_u64(o, "samples", f.samples);
	json_add_u64(o, "peak_rss_bytes", f.peak_rss);
	json_add_u64(o, "rss_at_peak_bytes", f.rss_at_peak);
	json_add_u64(o, "arena_at_peak_bytes", f.arena_at_peak);
	if (f.rss_at_peak && s->peak_bytes)
		add_double(o, "rss_over_heap_at_peak",
			   (double)f.rss_at_peak / (double)s->peak_bytes, 3);
	else
		cJSON_AddNullToObject(o, "rss_over_heap_at_peak");
	json_add_u64(o, "last_rss_bytes", f.last_rss);
	json_add_u64(o, "last_arena_bytes", f.last_arena);
	json_add_u64(o, "last_in_use_bytes", f.last_in_use);
	cJSON_AddItemToObject(o, "over_time", over_time(t, f.samples));
	return o;
}

static cJSON *labels_json(const struct trace *t)
{
	const struct mst_label_stats *l;
	size_t n = mst_model_labels(t->m, &l), i;
	cJSON *a = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		add_str(o, "name", l[i].name);
		add_str(o, "type", l[i].type);
		json_add_u64(o, "allocations", l[i].allocations);
		json_add_u64(o, "bytes", l[i].bytes);
		json_add_u64(o, "live_bytes", l[i].live_bytes);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *tasks_json(const struct trace *t)
{
	const struct mst_task_stats *k;
	size_t n = mst_model_tasks(t->m, &k), i;
	cJSON *a = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		json_add_u64(o, "task", k[i].task);
		add_str(o, "name", k[i].name);
		json_add_u64(o, "thread", k[i].thread);
		json_add_ms(o, "begin_ms", t, k[i].begin_time);
		if (k[i].end_time)
			json_add_ms(o, "end_ms", t, k[i].end_time);
		else
			cJSON_AddNullToObject(o, "end_ms");
		json_add_u64(o, "allocations", k[i].allocations);
		json_add_u64(o, "bytes", k[i].bytes);
		json_add_u64(o, "live_bytes", k[i].live_bytes);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static const char *end_reason(int r)
{
	switch (r) {
	case MST_END_EXIT: return "exit";
	case MST_END_EXEC: return "exec";
	case MST_END_SIGNAL: return "signal";
	case MST_END_SALVAGED: return "salvaged";
	case MST_END_DETACHED: return "detached";
	default: return NULL;
	}
}

static cJSON *integrity_json(const struct trace *t)
{
	struct mst_integrity in;
	cJSON *o = cJSON_CreateObject();
	mst_model_integrity(t->m, &in);
	cJSON_AddBoolToObject(o, "complete", in.complete);
	cJSON_AddBoolToObject(o, "truncated", in.truncated);
	add_str(o, "end_reason", end_reason(in.end_reason));
	if (in.complete)
		cJSON_AddItemToObject(o, "end_status", json_i64(in.end_status));
	else
		cJSON_AddNullToObject(o, "end_status");
	cJSON_AddStringToObject(o, "read_status", mst_status_str(in.read_status));
	add_str(o, "read_error", in.read_error[0] ? in.read_error : NULL);
	json_add_u64(o, "dropped_events", in.dropped_events);
	json_add_u64(o, "dropped_bytes", in.dropped_bytes);
	json_add_u64(o, "unknown_frees", in.unknown_frees);
	cJSON_AddBoolToObject(o, "unknown_frees_expected", in.unknown_frees_expected);
	json_add_u64(o, "double_allocations", in.double_allocs);
	cJSON_AddBoolToObject(o, "forked", in.forked);
	cJSON_AddBoolToObject(o, "own_malloc", in.own_malloc);
	cJSON_AddStringToObject(o, "note",
		"on a complete, unsampled recording of a process that did not fork "
		"and dropped no events, "
		"unknown_frees and double_allocations are 0");
	return o;
}

cJSON *report_trace(const struct trace *t, const struct report_opts *o)
{
	cJSON *r = cJSON_CreateObject();
	unsigned sec = o->sections;
	if (sec & SEC_SUMMARY)
		cJSON_AddItemToObject(r, "summary", summary_json(t));
	if (sec & SEC_PROGRAM)
		cJSON_AddItemToObject(r, "program", program_json(t));
	if (sec & SEC_FUNCTIONS)
		cJSON_AddItemToObject(r, "functions", functions_json(t));
	if (sec & SEC_PEAK)
		cJSON_AddItemToObject(r, "peak", peak_json(t, o->top));
	if (sec & SEC_LEAKS)
		cJSON_AddItemToObject(r, "leaks", leaks_json(t, o->top));
	if (sec & SEC_SITES)
		cJSON_AddItemToObject(r, "sites", sites_json(t, o->top));
	if (sec & SEC_HISTOGRAMS)
		cJSON_AddItemToObject(r, "histograms", histograms_json(t));
	if (sec & SEC_THREADS)
		cJSON_AddItemToObject(r, "threads", threads_json(t));
	if (sec & SEC_MODULES)
		cJSON_AddItemToObject(r, "modules", modules_json(t));
	if (sec & SEC_FRAGMENTATION)
		cJSON_AddItemToObject(r, "fragmentation", fragmentation_json(t));
	if (sec & SEC_LABELS)
		cJSON_AddItemToObject(r, "labels", labels_json(t));
	if (sec & SEC_TASKS)
		cJSON_AddItemToObject(r, "tasks", tasks_json(t));
	if (sec & SEC_INTEGRITY)
		cJSON_AddItemToObject(r, "integrity", integrity_json(t));
	return r;
}

cJSON *report_many(const struct trace *ts, size_t n, const struct report_opts *o)
{
	cJSON *r = cJSON_CreateObject(), *procs = cJSON_CreateArray(), *tot = cJSON_CreateObject();
	uint64_t allocs = 0, frees = 0, bytes = 0, peak = 0, leaked = 0, nleaked = 0, data = 0;
	size_t i;
	for (i = 0; i < n; i++) {
		const struct mst_summary *s = mst_model_summary(ts[i].m);
		cJSON *p = report_trace(&ts[i], o);
		cJSON_AddItemToObjectCS(p, "file", json_string(ts[i].name));
		json_add_u64(p, "pid", mst_reader_header(ts[i].r)->pid);
		cJSON_AddItemToArray(procs, p);
		allocs += s->allocations;
		frees += s->frees;
		bytes += s->bytes_allocated;
		peak += s->peak_bytes;
		leaked += s->end_bytes;
		nleaked += s->end_allocations;
		data += ts[i].bytes_read;
	}
	json_add_u64(tot, "processes", n);
	json_add_u64(tot, "allocations", allocs);
	json_add_u64(tot, "frees", frees);
	json_add_u64(tot, "bytes_allocated", bytes);
	json_add_u64(tot, "peak_bytes_sum", peak);
	json_add_u64(tot, "leaked_bytes", leaked);
	json_add_u64(tot, "leaked_allocations", nleaked);
	json_add_u64(tot, "data_size_bytes", data);
	cJSON_AddItemToObject(r, "processes", procs);
	cJSON_AddItemToObject(r, "total", tot);
	return r;
}
