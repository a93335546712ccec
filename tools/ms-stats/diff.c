/*
 * diff.c - ms-stats --diff BASE: compares a trace against a base trace
 * (schema/ms-stats-diff.schema.json). Sites are matched by their
 * symbolized stack, never by node id: ids differ between runs, names and
 * module offsets do not.
 */
#include "stats.h"
#include "mscommon.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 4096

struct entry {
	char *key;
	int side;                     /* 0 base, 1 new */
	uint64_t stack;
	uint64_t allocations, bytes, peak_bytes, leaked_bytes;
};

struct merged {
	const char *key;
	uint64_t stack[2];
	int present[2];
	uint64_t v[2][4];             /* allocations, bytes, peak, leaked */
	int64_t order;                /* sort figure */
};

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : x->side - y->side;
}

static int cmp_merged(const void *a, const void *b)
{
	const struct merged *x = a, *y = b;
	if (x->order != y->order)
		return x->order < y->order ? 1 : -1;
	return strcmp(x->key, y->key);
}

static int collect(const struct trace *t, int side, struct entry **arr, size_t *n,
		   size_t *cap)
{
	const struct mst_site *s;
	size_t ns = mst_model_sites(t->m, &s), i;
	char key[KEY_MAX];
	for (i = 0; i < ns; i++) {
		struct entry *e;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			struct entry *p = realloc(*arr, nc * sizeof(*p));
			if (!p)
				return -1;
			*arr = p;
			*cap = nc;
		}
		stack_key(t, s[i].stack, key, sizeof(key));
		e = &(*arr)[(*n)++];
		e->key = strdup(key);
		if (!e->key)
			return -1;
		e->side = side;
		e->stack = s[i].stack;
		e->allocations = s[i].allocations;
		e->bytes = s[i].bytes;
		e->peak_bytes = s[i].peak_bytes;
		e->leaked_bytes = s[i].leaked_bytes;
	}
	return 0;
}

static cJSON *figures(const uint64_t *v)
{
	cJSON *o = cJSON_CreateObject();
	json_add_u64(o, "allocations", v[0]);
	json_add_u64(o, "bytes", v[1]);
	json_add_u64(o, "peak_bytes", v[2]);
	json_add_u64(o, "leaked_bytes", v[3]);
	return o;
}

static cJSON *site_diff(const struct trace *base, const struct trace *cur,
			const struct merged *m)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "key", json_string(m->key));
	cJSON_AddItemToObject(o, "stack", m->present[1] ? stack_json(cur, m->stack[1]) :
			      stack_json(base, m->stack[0]));
	if (m->present[0])
		cJSON_AddItemToObject(o, "base", figures(m->v[0]));
	else
		cJSON_AddNullToObject(o, "base");
	if (m->present[1])
		cJSON_AddItemToObject(o, "new", figures(m->v[1]));
	else
		cJSON_AddNullToObject(o, "new");
	cJSON_AddItemToObject(o, "allocations_delta", json_i64((int64_t)(m->v[1][0] - m->v[0][0])));
	cJSON_AddItemToObject(o, "bytes_delta", json_i64((int64_t)(m->v[1][1] - m->v[0][1])));
	cJSON_AddItemToObject(o, "peak_bytes_delta", json_i64((int64_t)(m->v[1][2] - m->v[0][2])));
	cJSON_AddItemToObject(o, "leaked_bytes_delta", json_i64((int64_t)(m->v[1][3] - m->v[0][3])));
	return o;
}

/* Field names for --check in diff mode: X (new), base_X and X_delta. */
#define NSUM 21
static char diff_names_buf[NSUM * 3][48];
static const char *diff_names_arr[NSUM * 3 + 1];

static const char *const *diff_names(void)
{
	size_t i, n = 0;
	if (diff_names_arr[0])
		return diff_names_arr;
	for (i = 0; summary_field_names[i] && i < NSUM; i++) {
		snprintf(diff_names_buf[n], 48, "%s", summary_field_names[i]);
		diff_names_arr[n] = diff_names_buf[n];
		n++;
		snprintf(diff_names_buf[n], 48, "base_%s", summary_field_names[i]);
		diff_names_arr[n] = diff_names_buf[n];
		n++;
		snprintf(diff_names_buf[n], 48, "%s_delta", summary_field_names[i]);
		diff_names_arr[n] = diff_names_buf[n];
		n++;
	}
	diff_names_arr[n] = NULL;
	return diff_names_arr;
}

const char *const *diff_field_list(void)
{
	return diff_names();
}

static cJSON *side_json(const struct trace *t, const struct report_opts *o)
{
	struct report_opts so = *o;
	cJSON *x;
	so.sections = SEC_SUMMARY;
	x = report_trace(t, &so);
	cJSON_AddItemToObjectCS(x, "file", json_string(t->name));
	return x;
}

cJSON *diff_report(const struct trace *base, const struct trace *cur,
		   const struct report_opts *o, struct field *fields, size_t *nfields)
{
	struct field fb[MAX_FIELDS], fn[MAX_FIELDS];
	size_t nb = summary_fields(base, fb), nn = summary_fields(cur, fn), i, j, n = 0;
	struct entry *ents = NULL;
	struct merged *ms = NULL;
	size_t ne = 0, cap = 0, nm = 0, unchanged = 0;
	cJSON *r = cJSON_CreateObject(), *delta = cJSON_CreateObject(), *sites;
	cJSON *lists[4];
	static const char *const list_names[4] = { "grown", "shrunk", "new", "gone" };
	size_t counts[4] = { 0 };
	(void)nb;

	for (i = 0; i < nn; i++) {
		char name[64];
		long double d = fn[i].value - fb[i].value;
		fields[n++] = fn[i];
		snprintf(name, sizeof(name), "base_%s", fn[i].name);
		fields[n] = fb[i];
		fields[n].name = diff_names()[3 * i + 1];
		n++;
		fields[n].name = diff_names()[3 * i + 2];
		fields[n].value = d;
		fields[n].is_bytes = fn[i].is_bytes;
		n++;
		snprintf(name, sizeof(name), "%s_delta", fn[i].name);
		if (d == (long double)(int64_t)d)
			cJSON_AddItemToObject(delta, name, json_i64((int64_t)d));
		else
			cJSON_AddNumberToObject(delta, name, (double)d);
	}
	*nfields = n;

	cJSON_AddItemToObject(r, "base", side_json(base, o));
	cJSON_AddItemToObject(r, "new", side_json(cur, o));
	cJSON_AddItemToObject(r, "delta", delta);

	if (collect(base, 0, &ents, &ne, &cap) < 0 || collect(cur, 1, &ents, &ne, &cap) < 0)
		goto out;
	qsort(ents, ne, sizeof(*ents), cmp_entry);
	ms = calloc(ne ? ne : 1, sizeof(*ms));
	if (!ms)
		goto out;
	for (i = 0; i < ne; i = j) {
		struct merged *m = &ms[nm++];
		m->key = ents[i].key;
		for (j = i; j < ne && !strcmp(ents[j].key, ents[i].key); j++) {
			int sd = ents[j].side;
			if (!m->present[sd])
				m->stack[sd] = ents[j].stack;
			m->present[sd] = 1;
			m->v[sd][0] += ents[j].allocations;
			m->v[sd][1] += ents[j].bytes;
			m->v[sd][2] += ents[j].peak_bytes;
			m->v[sd][3] += ents[j].leaked_bytes;
		}
	}
	for (i = 0; i < 4; i++)
		lists[i] = cJSON_CreateArray();
	/* Classify by bytes allocated, then peak bytes, then leaked bytes:
	 * the first figure that changed decides grown or shrunk. */
	for (int pass = 0; pass < 4; pass++) {
		struct merged **sel = malloc((nm ? nm : 1) * sizeof(*sel));
		struct merged *tmp;
		size_t ns = 0;
		if (!sel)
			break;
		for (i = 0; i < nm; i++) {
			struct merged *m = &ms[i];
			int64_t d = 0;
			int cls;
			for (j = 1; j < 4 && !d; j++)
				d = (int64_t)(m->v[1][j] - m->v[0][j]);
			if (!m->present[0])
				cls = 2;
			else if (!m->present[1])
				cls = 3;
			else if (d > 0)
				cls = 0;
			else if (d < 0)
				cls = 1;
			else
				cls = -1;
			if (pass == 0 && cls < 0)
				unchanged++;
			if (cls != pass)
				continue;
			m->order = cls == 1 ? -d : cls == 3 ? (int64_t)m->v[0][1] :
				   cls == 2 ? (int64_t)m->v[1][1] : d;
			sel[ns++] = m;
		}
		counts[pass] = ns;
		tmp = malloc((ns ? ns : 1) * sizeof(*tmp));
		if (tmp) {
			for (i = 0; i < ns; i++)
				tmp[i] = *sel[i];
			qsort(tmp, ns, sizeof(*tmp), cmp_merged);
			for (i = 0; i < ns && i < o->top; i++)
				cJSON_AddItemToArray(lists[pass], site_diff(base, cur, &tmp[i]));
			free(tmp);
		}
		free(sel);
	}
	sites = cJSON_CreateObject();
	for (i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%s_count", list_names[i]);
		json_add_u64(sites, name, counts[i]);
	}
	json_add_u64(sites, "unchanged_count", unchanged);
	for (i = 0; i < 4; i++)
		cJSON_AddItemToObject(sites, list_names[i], lists[i]);
	cJSON_AddItemToObject(r, "sites", sites);
out:
	for (i = 0; i < ne; i++)
		free(ents[i].key);
	free(ents);
	free(ms);
	return r;
}

/* The integer a raw JSON number holds (the report writes them exactly). */
static long long raw_int(const cJSON *v)
{
	return v && v->valuestring ? strtoll(v->valuestring, NULL, 10) : 0;
}

/* "+1.50 MiB", "-272 B" */
static char *signed_bytes(long long x, char *buf, size_t len)
{
	char b[32];

	msc_format_bytes(x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x, b);
	snprintf(buf, len, "%s%s", x < 0 ? "-" : "+", b);
	return buf;
}

/* The first frames of a site key ("f;g;h;..."), innermost first, as
 * "f \u2190 g \u2190 h \u2026". */
static void key_frames(const char *key, char *buf, size_t len)
{
	size_t o = 0;
	int frames = 0;

	buf[0] = 0;
	while (*key && frames < 3 && o + 8 < len) {
		size_t n = strcspn(key, ";");
		o += (size_t)snprintf(buf + o, len - o, "%s%.*s", frames ? " \u2190 " : "",
				      (int)n, key);
		if (o >= len)
			return;
		frames++;
		key += n;
		if (*key == ';')
			key++;
	}
	if (*key && o + 8 < len)
		snprintf(buf + o, len - o, " \u2190 \u2026");
}

void diff_text(FILE *f, const cJSON *d)
{
	const cJSON *delta = cJSON_GetObjectItemCaseSensitive(d, "delta");
	const cJSON *sites = cJSON_GetObjectItemCaseSensitive(d, "sites");
	static const char *const keys[] = {
		"allocations_delta", "bytes_allocated_delta", "peak_bytes_delta",
		"leaked_bytes_delta", "leaked_allocations_delta", "temporary_delta", NULL,
	};
	static const struct { const char *key, *what; } figs[] = {
		{ "bytes_delta", "allocated" }, { "peak_bytes_delta", "at the peak" },
		{ "leaked_bytes_delta", "leaked" },
	};
	static const char *const lists[] = { "grown", "shrunk", "new", "gone", NULL };
	char b[40], name[600], what[160];
	size_t i, k, o;

	fprintf(f, "Changes from base to new:\n");
	for (i = 0; keys[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(delta, keys[i]);
		if (!v || !v->valuestring)
			continue;
		if (strstr(keys[i], "bytes"))
			fprintf(f, "  %-26s %s\n", keys[i], signed_bytes(raw_int(v), b, sizeof(b)));
		else
			fprintf(f, "  %-26s %+lld\n", keys[i], raw_int(v));
	}
	for (i = 0; lists[i]; i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(sites, lists[i]), *e;
		fprintf(f, "\nSites %s:\n", lists[i]);
		if (!cJSON_GetArraySize(a))
			fprintf(f, "  (none)\n");
		cJSON_ArrayForEach(e, a) {
			const cJSON *key = cJSON_GetObjectItemCaseSensitive(e, "key");
			/* every figure that changed, named */
			for (k = 0, o = 0, what[0] = 0; k < sizeof(figs) / sizeof(figs[0]); k++) {
				long long x = raw_int(cJSON_GetObjectItemCaseSensitive(e, figs[k].key));
				if (!x || o + 1 >= sizeof(what))
					continue;
				o += (size_t)snprintf(what + o, sizeof(what) - o, "%s%s %s",
						      o ? ", " : "", signed_bytes(x, b, sizeof(b)),
						      figs[k].what);
			}
			key_frames(key && key->valuestring ? key->valuestring : "?", name, sizeof(name));
			fprintf(f, "  %-40s  %s\n", what[0] ? what : "(same bytes)", name);
		}
	}
}
