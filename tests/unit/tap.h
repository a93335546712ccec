/*
 * tap.h - the smallest TAP producer the unit tests need: each CHECK prints
 * "ok N - what" or "not ok N - what" with the file and line of a failure;
 * tap_done() returns the exit status.
 */
#ifndef TAP_H
#define TAP_H
#include <stdio.h>

static int tap_n, tap_failed;

#define CHECK(cond, ...) do { \
	int ok_ = !!(cond); \
	printf("%s %d - ", ok_ ? "ok" : "not ok", ++tap_n); \
	printf(__VA_ARGS__); \
	printf("\n"); \
	if (!ok_) { \
		tap_failed++; \
		printf("#   failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
	} \
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
#endif
