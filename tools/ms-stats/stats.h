/*
 * stats.h - the parts of ms-stats, shared between its files: loading a
 * trace into the model, the JSON report, the text report, --check
 * expressions and --diff. Each part takes plain data (no argv) so unit
 * tests can call it.
 */
#ifndef MS_STATS_H
#define MS_STATS_H

#include "mstrace.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>

/* One trace read into the model; reader and symbolizer stay open so the
 * report can walk stacks and names. */
struct trace {
	const char *name;             /* as given; "-" is standard input */
	struct mst_reader *r;
	struct mst_model *m;
	struct mst_symbolizer *sym;
	int read_status;              /* the last mst_reader_next status */
	uint64_t bytes_read;
	int fd;                       /* our descriptor, -1 for stdin */
	int prepare;                  /* LOAD_NAMES was given */
};

/* trace_load flag beside the MST_SYM_* ones: the report will name frames,
 * so symbols may start loading while the trace is read. */
#define LOAD_NAMES 0x100u

/* Opens and streams PATH through the model. Returns 0, or -1 after setting
 * ERR to a message (without the program name) for a trace that cannot be
 * opened or read at all. A trace damaged or cut short part way is loaded:
 * t->read_status says so. */
int trace_load(struct trace *t, const char *path, unsigned sym_flags,
	       char *err, size_t errlen);
void trace_release(struct trace *t);

/* Summary figures by name, for --check and --diff. */
struct field {
	const char *name;
	long double value;
	int is_bytes;                 /* shown as "80.2 MiB" in messages */
};
#define MAX_FIELDS 48
size_t summary_fields(const struct trace *t, struct field *out);
/* Names every trace has, so --check can be validated before reading. */
extern const char *const summary_field_names[];

enum section {
	SEC_SUMMARY = 1u << 0,
	SEC_PROGRAM = 1u << 1,
	SEC_FUNCTIONS = 1u << 2,
	SEC_PEAK = 1u << 3,
	SEC_LEAKS = 1u << 4,
	SEC_SITES = 1u << 5,
	SEC_HISTOGRAMS = 1u << 6,
	SEC_THREADS = 1u << 7,
	SEC_MODULES = 1u << 8,
	SEC_FRAGMENTATION = 1u << 9,
	SEC_LABELS = 1u << 10,
	SEC_TASKS = 1u << 11,
	SEC_INTEGRITY = 1u << 12,
	SEC_ALL = (1u << 13) - 1,
};
/* The section's bit for NAME, 0 when there is no such section. */
unsigned section_by_name(const char *name);

struct report_opts {
	unsigned sections;
	unsigned top;
};

/* JSON numbers: 64-bit counters are written exactly, as raw text. */
cJSON *json_u64(uint64_t v);
cJSON *json_i64(int64_t v);
/* A string that is valid UTF-8 (invalid bytes become U+FFFD). */
cJSON *json_string(const char *s);
void json_add_u64(cJSON *o, const char *key, uint64_t v);
void json_add_ms(cJSON *o, const char *key, const struct trace *t, uint64_t ticks);

cJSON *report_trace(const struct trace *t, const struct report_opts *o);
/* "processes" and "total" for several traces. */
cJSON *report_many(const struct trace *ts, size_t n, const struct report_opts *o);

/* Stack of SITE as symbolized frames (JSON array) and as a one-line key
 * "f;g;main" that is stable between runs (for --diff). */
cJSON *stack_json(const struct trace *t, uint64_t stack);
size_t stack_key(const struct trace *t, uint64_t stack, char *buf, size_t len);

/* Sites sorted by a figure, largest first; returns a malloc'd index array. */
enum site_order { BY_BYTES, BY_PEAK, BY_LEAKED };
size_t *sites_sorted(const struct trace *t, enum site_order by, size_t *n);

void text_report(FILE *f, const struct trace *ts, size_t n, const struct report_opts *o);

/* ---- --check ---- */
struct check_expr;
/* Parses TEXT. On a syntax error returns NULL with ERR set and *POS the
 * 0-based offset of the problem. NAMES (NULL-terminated) are the known
 * identifiers. */
struct check_expr *check_parse(const char *text, const char *const *names,
			       char *err, size_t errlen, size_t *pos);
/* 1 true, 0 false (MSG names the failed condition and its values), -1 an
 * identifier without a value (MSG says which). */
int check_eval(const struct check_expr *e, const struct field *fields,
	       size_t nfields, char *msg, size_t msglen);
void check_free(struct check_expr *e);

/* ---- --diff ---- */
/* Compares NEW against BASE; FIELDS gets the new figures, base_* and
 * *_delta for --check. */
cJSON *diff_report(const struct trace *base, const struct trace *cur,
		   const struct report_opts *o, struct field *fields, size_t *nfields);
const char *const *diff_field_list(void);
#define MAX_DIFF_FIELDS (3 * MAX_FIELDS)
void diff_text(FILE *f, const cJSON *diff);
#endif
