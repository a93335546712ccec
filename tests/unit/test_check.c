/*
 * test_check.c - ms-stats' --check expressions: precedence, size suffixes,
 * which condition a failure names, and where a syntax error points. The
 * parser is compiled in from tools/ms-stats/check.c (tools are not
 * libraries, and the Makefile links unit tests with libtrace only).
 */
#include "../../tools/ms-stats/check.c"
#include "tap.h"

static const char *const names[] = { "peak_bytes", "leaked_bytes", "frees", "ratio", NULL };
static const struct field fields[] = {
	{ "peak_bytes", 84096204.8L, 1 },     /* 80.2 MiB */
	{ "leaked_bytes", 0, 1 },
	{ "frees", 12, 0 },
	{ "ratio", 0.25L, 0 },
};

static int eval_str(const char *text, char *msg, size_t len)
{
	char err[200];
	size_t pos;
	struct check_expr *e = check_parse(text, names, err, sizeof(err), &pos);
	int r;
	if (!e) {
		snprintf(msg, len, "syntax: %s at %zu", err, pos);
		return -2;
	}
	r = check_eval(e, fields, 4, msg, len);
	check_free(e);
	return r;
}

static void ok(const char *text, int want)
{
	char msg[300] = "";
	int r = eval_str(text, msg, sizeof(msg));
	CHECK(r == want, "'%s' is %s (%s)", text, want ? "true" : "false", msg);
}

static void fails_with(const char *text, const char *want)
{
	char msg[300] = "";
	int r = eval_str(text, msg, sizeof(msg));
	CHECK(r == 0 && !strcmp(msg, want), "'%s' fails naming '%s' (got '%s')", text, want, msg);
}

static void syntax(const char *text, size_t want_pos, const char *want)
{
	char err[200] = "";
	size_t pos = 999;
	struct check_expr *e = check_parse(text, names, err, sizeof(err), &pos);
	CHECK(!e && pos == want_pos && strstr(err, want),
	      "'%s' is a syntax error at %zu: %s (got %zu: %s)", text, want_pos, want, pos, err);
	check_free(e);
}

int main(void)
{
	ok("leaked_bytes == 0", 1);
	ok("peak_bytes < 64MiB", 0);
	ok("peak_bytes < 81MiB", 1);
	ok("peak_bytes >= 80MB && peak_bytes <= 0.1GiB", 1);
	ok("frees == 12 || peak_bytes < 1", 1);
	ok("frees != 12 || peak_bytes < 1", 0);
	ok("!(frees > 100)", 1);
	ok("!frees", 0);
	ok("ratio < 0.5 && ratio > 0.2", 1);
	ok("frees == 12 && (leaked_bytes > 0 || ratio == 0.25)", 1);
	ok("1 || 0 && 0", 1);                        /* && binds tighter */
	ok("(1 || 0) && 0", 0);
	ok("2KiB == 2048 && 2kb == 2048 && 1G == 1073741824 && 3B == 3", 1);
	fails_with("leaked_bytes == 0 && peak_bytes < 64MiB",
		   "peak_bytes < 64MiB (peak_bytes = 80.2 MiB)");
	fails_with("frees < 10 && leaked_bytes == 0", "frees < 10 (frees = 12)");
	fails_with("(frees < 10 || ratio > 1) && 1",
		   "(frees < 10 || ratio > 1) (frees = 12, ratio = 0.250)");
	fails_with("frees == 0 || frees == 1", "frees == 0 || frees == 1 (frees = 12)");
	syntax("peak < 3", 0, "unknown name 'peak'");
	syntax("peak_bytes < 64XB", 15, "unknown size suffix");
	syntax("(frees > 1", 10, "expected ')'");
	syntax("frees = 1", 6, "use '=='");
	syntax("frees > 1 & frees < 3", 10, "use '&&'");
	syntax("frees >", 7, "unexpected end");
	syntax("", 0, "unexpected end");
	syntax("frees > 1 2", 10, "unexpected text");
	syntax("peak_bytes > 80MiB - 1", 19, "unexpected text");  /* no arithmetic */
	return tap_done();
}
