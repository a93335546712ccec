/* mscommon.c - messages, parsing and output helpers shared by the tools. */
#include "mscommon.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "memscope";

void msc_set_prog(const char *name)
{
	const char *slash = strrchr(name, '/');
	prog = slash ? slash + 1 : name;
}

const char *msc_prog(void)
{
	return prog;
}

__attribute__((format(printf, 2, 0)))
static void vsay(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", prog, prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void msc_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

void msc_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("warning: ", fmt, ap);
	va_end(ap);
}

void msc_debug(const char *fmt, ...)
{
	const char *lvl = getenv("MEMSCOPE_LOG");
	va_list ap;
	if (!lvl || strcmp(lvl, "debug") != 0)
		return;
	va_start(ap, fmt);
	vsay("debug: ", fmt, ap);
	va_end(ap);
}

int msc_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int msc_parse_double(const char *s, double *out)
{
	char *end;
	double v;
	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int msc_parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *suffix; double mult; } units[] = {
		{ "", 1 }, { "b", 1 }, { "k", 1024.0 }, { "kb", 1024.0 },
		{ "kib", 1024.0 }, { "m", 1048576.0 }, { "mb", 1048576.0 },
		{ "mib", 1048576.0 }, { "g", 1073741824.0 },
		{ "gb", 1073741824.0 }, { "gib", 1073741824.0 },
		{ "t", 1099511627776.0 }, { "tb", 1099511627776.0 },
		{ "tib", 1099511627776.0 },
	};
	char *end;
	double v;
	size_t i;
	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || !isfinite(v) || v < 0)
		return -1;
	while (*end == ' ')
		end++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			double b = v * units[i].mult;
			if (b >= 18446744073709551615.0)
				return -1;
			*out = (uint64_t)(b + 0.5);
			return 0;
		}
	}
	return -1;
}

int msc_detail_names(const char *detail, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = strchr(detail, '\''); p; p = strchr(p + 1, '\''))
		if (strncmp(p + 1, name, n) == 0 && p[1 + n] == '\'')
			return 1;
	return 0;
}

char *msc_format_bytes(uint64_t bytes, char *buf)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, 32, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, unit[u]);
	return buf;
}

FILE *msc_open_output(const char *path, int binary)
{
	FILE *f;
	if (!path || strcmp(path, "-") == 0) {
		if (binary && isatty(STDOUT_FILENO)) {
			msc_error("refusing to write a binary trace to a terminal; use -o FILE or a pipe");
			return NULL;
		}
		return stdout;
	}
	f = fopen(path, "wb");
	if (!f)
		msc_error("cannot open '%s' for writing: %s", path, strerror(errno));
	return f;
}

int msc_close_output(FILE *f, const char *path)
{
	const char *name = (!path || strcmp(path, "-") == 0) ? "standard output" : path;
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		msc_error("cannot write '%s': %s", name, strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}
