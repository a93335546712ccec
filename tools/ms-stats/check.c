/*
 * check.c - --check expressions: a recursive-descent parser and evaluator.
 *
 *   expr    = or
 *   or      = and { "||" and }
 *   and     = unary { "&&" unary }
 *   unary   = "!" unary | primary
 *   primary = "(" expr ")" | operand [ cmpop operand ]
 *   operand = NAME | NUMBER[suffix]
 *   cmpop   = "==" | "!=" | "<" | "<=" | ">" | ">="
 *
 * Suffixes: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB; KB and KiB both mean
 * 1024, as in every memscope option (msc_parse_size). A bare operand is
 * true when nonzero. Each node keeps its span of the text, so a failure
 * names the condition that failed: for "a && b" the first false operand.
 */
#include "stats.h"
#include "mscommon.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum node_kind { N_NUM, N_NAME, N_CMP, N_AND, N_OR, N_NOT };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

struct check_expr {
	enum node_kind kind;
	enum cmp_op op;
	long double num;
	char name[48];
	struct check_expr *a, *b;
	size_t start, end;            /* span in the source text */
	const char *src;
};

struct parser {
	const char *s;
	size_t pos;
	const char *const *names;
	char *err;
	size_t errlen;
	size_t errpos;
	int failed;
};

static void perr(struct parser *p, size_t pos, const char *msg)
{
	if (p->failed)
		return;
	p->failed = 1;
	p->errpos = pos;
	snprintf(p->err, p->errlen, "%s", msg);
}

static void skip_ws(struct parser *p)
{
	while (isspace((unsigned char)p->s[p->pos]))
		p->pos++;
}

static struct check_expr *node(struct parser *p, enum node_kind k, size_t start)
{
	struct check_expr *e = calloc(1, sizeof(*e));
	if (!e) {
		perr(p, start, "out of memory");
		return NULL;
	}
	e->kind = k;
	e->start = start;
	e->src = p->s;
	return e;
}

static struct check_expr *parse_or(struct parser *p);

static struct check_expr *parse_operand(struct parser *p)
{
	static const struct { const char *s; long double m; } units[] = {
		{ "b", 1 }, { "k", 1024.0L }, { "kb", 1024.0L }, { "kib", 1024.0L },
		{ "m", 1048576.0L }, { "mb", 1048576.0L }, { "mib", 1048576.0L },
		{ "g", 1073741824.0L }, { "gb", 1073741824.0L }, { "gib", 1073741824.0L },
		{ "t", 1099511627776.0L }, { "tb", 1099511627776.0L },
		{ "tib", 1099511627776.0L },
	};
	size_t start, i;
	struct check_expr *e;
	skip_ws(p);
	start = p->pos;
	if (isdigit((unsigned char)p->s[p->pos]) || p->s[p->pos] == '.') {
		char *end;
		long double v = strtold(p->s + p->pos, &end);
		size_t ulen = 0;
		if (end == p->s + p->pos) {
			perr(p, start, "expected a number");
			return NULL;
		}
		p->pos = (size_t)(end - p->s);
		while (isalpha((unsigned char)p->s[p->pos + ulen]))
			ulen++;
		if (ulen) {
			int found = 0;
			for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
				if (strlen(units[i].s) == ulen &&
				    !strncasecmp(units[i].s, p->s + p->pos, ulen)) {
					v *= units[i].m;
					found = 1;
				}
			}
			if (!found) {
				perr(p, p->pos, "unknown size suffix (use KiB, MiB, GiB, KB, MB or GB)");
				return NULL;
			}
			p->pos += ulen;
		}
		e = node(p, N_NUM, start);
		if (e)
			e->num = v;
	} else if (isalpha((unsigned char)p->s[p->pos]) || p->s[p->pos] == '_') {
		size_t len = 0;
		int known = 0;
		while (isalnum((unsigned char)p->s[p->pos + len]) || p->s[p->pos + len] == '_')
			len++;
		for (i = 0; p->names[i]; i++)
			if (strlen(p->names[i]) == len && !strncmp(p->names[i], p->s + p->pos, len))
				known = 1;
		if (!known || len >= sizeof(e->name)) {
			char msg[160];
			snprintf(msg, sizeof(msg), "unknown name '%.*s'", (int)(len > 64 ? 64 : len),
				 p->s + p->pos);
			perr(p, start, msg);
			return NULL;
		}
		e = node(p, N_NAME, start);
		if (e)
			memcpy(e->name, p->s + p->pos, len);
		p->pos += len;
	} else {
		perr(p, start, p->s[start] ? "expected a number, a name or '('" :
			       "unexpected end of expression");
		return NULL;
	}
	if (e)
		e->end = p->pos;
	return e;
}

static int parse_cmpop(struct parser *p, enum cmp_op *op)
{
	const char *c = p->s + p->pos;
	skip_ws(p);
	c = p->s + p->pos;
	if (c[0] == '=' && c[1] == '=') { *op = OP_EQ; p->pos += 2; return 1; }
	if (c[0] == '!' && c[1] == '=') { *op = OP_NE; p->pos += 2; return 1; }
	if (c[0] == '<' && c[1] == '=') { *op = OP_LE; p->pos += 2; return 1; }
	if (c[0] == '>' && c[1] == '=') { *op = OP_GE; p->pos += 2; return 1; }
	if (c[0] == '<') { *op = OP_LT; p->pos += 1; return 1; }
	if (c[0] == '>') { *op = OP_GT; p->pos += 1; return 1; }
	if (c[0] == '=') {
		perr(p, p->pos, "'=' is not an operator; use '=='");
		return -1;
	}
	return 0;
}

static struct check_expr *parse_primary(struct parser *p)
{
	struct check_expr *a, *e;
	enum cmp_op op;
	size_t start;
	int r;
	skip_ws(p);
	start = p->pos;
	if (p->s[p->pos] == '(') {
		p->pos++;
		e = parse_or(p);
		if (!e)
			return NULL;
		skip_ws(p);
		if (p->s[p->pos] != ')') {
			perr(p, p->pos, "expected ')'");
			check_free(e);
			return NULL;
		}
		p->pos++;
		e->start = start;
		e->end = p->pos;
		return e;
	}
	a = parse_operand(p);
	if (!a)
		return NULL;
	r = parse_cmpop(p, &op);
	if (r < 0) {
		check_free(a);
		return NULL;
	}
	if (!r)
		return a;
	e = node(p, N_CMP, start);
	if (!e) {
		check_free(a);
		return NULL;
	}
	e->op = op;
	e->a = a;
	e->b = parse_operand(p);
	if (!e->b) {
		check_free(e);
		return NULL;
	}
	e->end = p->pos;
	return e;
}

static struct check_expr *parse_unary(struct parser *p)
{
	size_t start;
	struct check_expr *e;
	skip_ws(p);
	start = p->pos;
	if (p->s[p->pos] == '!' && p->s[p->pos + 1] != '=') {
		p->pos++;
		e = node(p, N_NOT, start);
		if (!e)
			return NULL;
		e->a = parse_unary(p);
		if (!e->a) {
			check_free(e);
			return NULL;
		}
		e->end = p->pos;
		return e;
	}
	return parse_primary(p);
}

static struct check_expr *parse_binary(struct parser *p, int is_or)
{
	struct check_expr *l = is_or ? parse_binary(p, 0) : parse_unary(p);
	const char *tok = is_or ? "||" : "&&";
	while (l) {
		struct check_expr *e;
		skip_ws(p);
		if (strncmp(p->s + p->pos, tok, 2) != 0)
			break;
		p->pos += 2;
		e = node(p, is_or ? N_OR : N_AND, l->start);
		if (!e) {
			check_free(l);
			return NULL;
		}
		e->a = l;
		e->b = is_or ? parse_binary(p, 0) : parse_unary(p);
		if (!e->b) {
			check_free(e);
			return NULL;
		}
		e->end = p->pos;
		l = e;
	}
	return l;
}

static struct check_expr *parse_or(struct parser *p)
{
	return parse_binary(p, 1);
}

struct check_expr *check_parse(const char *text, const char *const *names,
			       char *err, size_t errlen, size_t *pos)
{
	struct parser p = { text, 0, names, err, errlen, 0, 0 };
	struct check_expr *e = parse_or(&p);
	if (e) {
		skip_ws(&p);
		if (p.s[p.pos]) {
			perr(&p, p.pos, p.s[p.pos] == '&' || p.s[p.pos] == '|' ?
			     "use '&&' and '||'" : "unexpected text after the expression");
			check_free(e);
			e = NULL;
		}
	}
	if (!e)
		*pos = p.errpos;
	return e;
}

void check_free(struct check_expr *e)
{
	if (!e)
		return;
	check_free(e->a);
	check_free(e->b);
	free(e);
}

/* ---- evaluation ---- */

struct eval {
	const struct field *f;
	size_t n;
	char *msg;
	size_t msglen;
	int missing;
};

static const struct field *lookup(struct eval *ev, const char *name)
{
	size_t i;
	for (i = 0; i < ev->n; i++)
		if (!strcmp(ev->f[i].name, name))
			return &ev->f[i];
	return NULL;
}

static long double value(struct eval *ev, const struct check_expr *e)
{
	const struct field *f;
	if (e->kind == N_NUM)
		return e->num;
	f = lookup(ev, e->name);
	if (!f) {
		if (!ev->missing)
			snprintf(ev->msg, ev->msglen, "'%s' has no value here", e->name);
		ev->missing = 1;
		return 0;
	}
	return f->value;
}

static int eval(struct eval *ev, const struct check_expr *e)
{
	long double a, b;
	switch (e->kind) {
	case N_NUM:
	case N_NAME:
		return value(ev, e) != 0;
	case N_NOT:
		return !eval(ev, e->a);
	case N_AND:
		return eval(ev, e->a) && eval(ev, e->b);
	case N_OR:
		return eval(ev, e->a) || eval(ev, e->b);
	case N_CMP:
		a = value(ev, e->a);
		b = value(ev, e->b);
		switch (e->op) {
		case OP_EQ: return a == b;
		case OP_NE: return a != b;
		case OP_LT: return a < b;
		case OP_LE: return a <= b;
		case OP_GT: return a > b;
		case OP_GE: return a >= b;
		}
	}
	return 0;
}

/* The smallest false part that explains why E is false. */
static const struct check_expr *culprit(struct eval *ev, const struct check_expr *e)
{
	if (e->kind == N_AND)
		return eval(ev, e->a) ? culprit(ev, e->b) : culprit(ev, e->a);
	return e;
}

static void format_value(const struct field *f, char *buf, size_t len)
{
	char b[32];
	long double v = f->value;
	if (f->is_bytes && v >= 1024) {
		msc_format_bytes((uint64_t)v, b);
		snprintf(buf, len, "%s", b);
	} else if (v == floorl(v) && fabsl(v) < 1e19L) {
		snprintf(buf, len, "%.0Lf", v);
	} else {
		snprintf(buf, len, "%.3Lf", v);
	}
}

/* Appends "name = value" for every name under E, once each. */
static void values(struct eval *ev, const struct check_expr *e, char *buf,
		   size_t len, size_t *at)
{
	const struct field *f;
	char v[48];
	int n;
	if (!e)
		return;
	if (e->kind != N_NAME) {
		values(ev, e->a, buf, len, at);
		values(ev, e->b, buf, len, at);
		return;
	}
	f = lookup(ev, e->name);
	if (!f)
		return;
	snprintf(v, sizeof(v), "%s = ", f->name);
	if (strstr(buf, v))
		return;
	format_value(f, v + strlen(v), sizeof(v) - strlen(v));
	n = snprintf(buf + *at, len - *at, "%s%s", *at ? ", " : "", v);
	if (n > 0 && (size_t)n < len - *at)
		*at += (size_t)n;
}

int check_eval(const struct check_expr *e, const struct field *fields,
	       size_t nfields, char *msg, size_t msglen)
{
	struct eval ev = { fields, nfields, msg, msglen, 0 };
	const struct check_expr *c;
	char vals[512] = "";
	size_t at = 0;
	int r = eval(&ev, e);
	if (ev.missing)
		return -1;
	if (r)
		return 1;
	c = culprit(&ev, e);
	values(&ev, c, vals, sizeof(vals), &at);
	if (at)
		snprintf(msg, msglen, "%.*s (%s)", (int)(c->end - c->start),
			 c->src + c->start, vals);
	else
		snprintf(msg, msglen, "%.*s", (int)(c->end - c->start), c->src + c->start);
	return 0;
}
