/*
 * stats_leaks - a subject for ms-stats' accuracy tests (tests/ms-stats.bats):
 * known totals, one peak, temporaries and leaks from two named functions,
 * compared with valgrind's figures for the same program. It prints nothing
 * (stdio would allocate a buffer).
 *
 * Expected: 1007 allocations, 1001 frees, 68,696 bytes allocated; peak
 * 4,760 bytes (leaks 4,596 + the calloc'd 100 + one 64-byte temporary);
 * 1000 temporary allocations; leaked 4,596 bytes in 6 blocks: 5 x 100 from
 * parse_record() and 4096 from make_buffer(). memcheck: 1,007 allocs,
 * 1,001 frees, 68,696 bytes allocated; both sites definitely lost.
 */
#include <stdlib.h>
#include <string.h>

/* noinline: each leak keeps its own function in the stack */
__attribute__((noinline)) static char *parse_record(int i)
{
	char *p = malloc(100);
	if (p)
		memset(p, 'a' + i, 100);
	return p;
}

__attribute__((noinline)) static void make_buffer(void)
{
	char *volatile b = malloc(4096);
	if (b)
		b[0] = 1;
	b = NULL;                     /* lost */
}

__attribute__((noinline)) static void churn(void)
{
	for (int i = 0; i < 1000; i++) {
		char *volatile t = malloc(64);
		if (t)
			t[0] = (char)i;
		free(t);
	}
}

int main(void)
{
	char *volatile held = calloc(10, 10);
	char *volatile r;
	for (int i = 0; i < 5; i++) {
		r = parse_record(i);
		r = NULL;
	}
	make_buffer();
	churn();
	free(held);
	(void)r;
	return 0;
}
