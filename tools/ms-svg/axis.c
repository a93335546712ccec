/*
 * axis.c - where ticks go and how axis labels read: time axes in 1-2-5 steps
 * of a unit chosen from the trace's duration, byte axes in power-of-two
 * steps (allocation sizes are powers of two more often than not, so
 * "256 KiB" beats "250 KiB"), and the peak and leak labels.
 *
 * Pure arithmetic and snprintf: unit tests check it without cairo.
 */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mscommon.h"

static const struct time_unit time_units[] = {
	{ "ns", 1e-9 },
	{ "\xc2\xb5s", 1e-6 },        /* µs */
	{ "ms", 1e-3 },
	{ "s", 1.0 },
	{ "min", 60.0 },
	{ "h", 3600.0 },
};

const struct time_unit *time_unit_for(double duration)
{
	/* The largest unit in which the duration is still at least 1, except
	 * that seconds stay up to 2 minutes and minutes up to 2 hours: "90 s"
	 * reads better than "1.5 min". */
	if (!(duration >= 1e-6))
		return &time_units[0];
	if (duration < 1e-3)
		return &time_units[1];
	if (duration < 1.0)
		return &time_units[2];
	if (duration < 120.0)
		return &time_units[3];
	if (duration < 7200.0)
		return &time_units[4];
	return &time_units[5];
}

/* Fills T with multiples of STEP from 0 while <= HI (plus one more tick when
 * CEIL, so the last tick covers HI). */
static void fill_ticks(struct ticks *t, double step, double hi, int ceil_last)
{
	size_t i;
	t->step = step;
	t->n = 0;
	for (i = 0; i < TICKS_MAX; i++) {
		double v = step * (double)i;
		/* A tolerance so 0.3 is not lost to 0.1 * 3 rounding. */
		if (v > hi * (1 + 1e-9) + 1e-300) {
			if (ceil_last && (t->n == 0 || t->v[t->n - 1] < hi))
				t->v[t->n++] = v;
			break;
		}
		t->v[t->n++] = v;
	}
}

void ticks_125(double hi, int target, struct ticks *t)
{
	double raw, mag, norm, step;
	if (target < 1)
		target = 1;
	if (!(hi > 0) || !isfinite(hi)) {
		t->n = 1;
		t->step = 1;
		t->v[0] = 0;
		return;
	}
	raw = hi / target;
	mag = pow(10, floor(log10(raw)));
	norm = raw / mag;
	if (norm <= 1)
		step = mag;
	else if (norm <= 2)
		step = 2 * mag;
	else if (norm <= 5)
		step = 5 * mag;
	else
		step = 10 * mag;
	/* Never more ticks than fit in the array. */
	while (hi / step >= TICKS_MAX - 1)
		step *= 2;
	fill_ticks(t, step, hi, 0);
}

void ticks_bytes(double hi, int target, struct ticks *t)
{
	double step = 1;
	if (target < 1)
		target = 1;
	if (!(hi > 0) || !isfinite(hi))
		hi = 1;
	while (hi / step > target)
		step *= 2;
	fill_ticks(t, step, hi, 1);
}

/* Decimals that show STEP exactly enough: 0.25 -> 2, 5 -> 0. */
static int decimals_for(double step)
{
	int d = 0;
	while (d < 6 && fabs(step * pow(10, d) - round(step * pow(10, d))) > 1e-6 * step * pow(10, d))
		d++;
	return d;
}

/* Prints V with D decimals, then drops trailing zeros ("1.50" -> "1.5"). */
static void print_trimmed(char *buf, size_t len, double v, int d)
{
	char *dot, *end;
	snprintf(buf, len, "%.*f", d, v);
	dot = strchr(buf, '.');
	if (!dot)
		return;
	end = buf + strlen(buf);
	while (end > dot + 1 && end[-1] == '0')
		*--end = '\0';
	if (end == dot + 1)
		*dot = '\0';
	if (strcmp(buf, "-0") == 0)
		strcpy(buf, "0");
}

char *fmt_time_tick(double v, double step, const struct time_unit *u,
		    char *buf, size_t len)
{
	char num[64];
	print_trimmed(num, sizeof(num), v / u->seconds, decimals_for(step / u->seconds));
	snprintf(buf, len, "%s %s", num, u->name);
	return buf;
}

char *fmt_time(double v, const struct time_unit *u, char *buf, size_t len)
{
	double x = v / u->seconds;
	/* Thresholds after rounding, so 9.9997 prints "10.0", not "10.00". */
	int d = x >= 99.95 ? 0 : x >= 9.995 ? 1 : 2;
	if (x == 0)
		d = 0;
	snprintf(buf, len, "%.*f %s", d, x, u->name);
	return buf;
}

static const char *const byte_units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

char *fmt_bytes_tick(double v, double step, double top, char *buf, size_t len)
{
	/* One unit for the whole axis: the top's, unless the step is so small
	 * in it that labels need more than two decimals. */
	int k = 0;
	double unit = 1;
	char num[64];
	if (v == 0) {
		snprintf(buf, len, "0");
		return buf;
	}
	while (k < 6 && top >= unit * 1024) {
		unit *= 1024;
		k++;
	}
	while (k > 0 && step < unit / 4) {
		unit /= 1024;
		k--;
	}
	print_trimmed(num, sizeof(num), v / unit, decimals_for(step / unit));
	snprintf(buf, len, "%s %s", num, byte_units[k]);
	return buf;
}

char *fmt_count(double v, char *buf, size_t len)
{
	static const char *const suffix[] = { "", "K", "M", "G", "T", "P", "E" };
	int k = 0;
	char num[64];
	if (v < 1000) {
		print_trimmed(buf, len, v, v == floor(v) ? 0 : 2);
		return buf;
	}
	while (k < 6 && v >= 1000) {
		v /= 1000;
		k++;
	}
	print_trimmed(num, sizeof(num), v, v >= 100 ? 0 : v >= 10 ? 1 : 2);
	snprintf(buf, len, "%s%s", num, suffix[k]);
	return buf;
}

char *fmt_ns(double ns, char *buf, size_t len)
{
	static const struct { const char *name; double ns; } u[] = {
		{ "ns", 1 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
		{ "min", 60e9 }, { "h", 3600e9 }, { "d", 86400e9 },
	};
	size_t i = 0;
	char num[64];
	while (i + 1 < sizeof(u) / sizeof(u[0]) && ns >= u[i + 1].ns)
		i++;
	print_trimmed(num, sizeof(num), ns / u[i].ns, 2);
	snprintf(buf, len, "%s %s", num, u[i].name);
	return buf;
}

char *fmt_size_pow2(unsigned log2, char *buf, size_t len)
{
	static const char *const suffix[] = { "", "K", "M", "G", "T", "P", "E" };
	unsigned k = log2 / 10;
	if (k > 6)
		k = 6;
	snprintf(buf, len, "%llu%s", 1ULL << (log2 - 10 * k), suffix[k]);
	return buf;
}

char *peak_label(uint64_t bytes, double t, double duration, char *buf, size_t len)
{
	char b[32], tm[64];
	msc_format_bytes(bytes, b);
	fmt_time(t, time_unit_for(duration), tm, sizeof(tm));
	snprintf(buf, len, "peak %s at %s", b, tm);
	return buf;
}

char *leak_label(uint64_t bytes, uint64_t blocks, char *buf, size_t len)
{
	char b[32];
	if (bytes == 0 && blocks == 0) {
		snprintf(buf, len, "nothing leaked");
		return buf;
	}
	msc_format_bytes(bytes, b);
	snprintf(buf, len, "leaked %s in %llu block%s", b,
		 (unsigned long long)blocks, blocks == 1 ? "" : "s");
	return buf;
}
