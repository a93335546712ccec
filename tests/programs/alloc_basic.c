/*
 * alloc_basic - every C allocation function once, with exactly known
 * figures, for ms-record's tests and the valgrind oracle. No stdio (its
 * buffer would be one more malloc): output goes through write(2).
 *
 * Calls, in order (live requested bytes after each):
 *    1 malloc(100)                  100
 *    2 malloc(0)                    100
 *    3 calloc(10, 20)               300
 *    4 realloc(NULL, 50)            350
 *    5 malloc(16)   (blocks 4 from growing in place)   366
 *    6 realloc(r, 40)   shrink      356
 *    7 realloc(r, 4000) grow, moves 4316
 *    8 reallocarray(r, 10, 30)      616
 *    9 posix_memalign(64, 1000)     1616
 *   10 aligned_alloc(128, 256)      1872
 *   11 memalign(32, 100)            1972
 *   12 valloc(5000)                 6972
 *   13 pvalloc(100)                 7072 (requested size; glibc gives a page)
 *   14 malloc(1000000)              1007072  <- the peak
 *   15 free(big)                    7072
 *   16 free(NULL)                   not an event
 *   17 realloc(r, 0)  frees r       6772
 *   18 free() of the 9 others       0
 *
 * Expected: 14 allocations, 4 + 1 realloc-family calls (steps 4, 6, 7, 8
 * and the freeing realloc of step 17), 11 frees (9 free + big + realloc(r, 0)),
 * 1,011,162 bytes allocated, peak 1,007,072 bytes, nothing live at the end.
 * memcheck counts it as 14 allocs, 14 frees (the three reallocs of a
 * non-NULL pointer each free the old block; realloc(r, 0) is one free),
 * 1,011,162 bytes allocated.
 *
 * With the argument "no-pvalloc" step 13 is left out, because valgrind
 * 3.19 aborts the program at pvalloc: then 13 allocations, 10 frees,
 * 1,011,062 bytes, peak 1,006,972; memcheck: 13 allocs, 13 frees,
 * 1,011,062 bytes.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(3);
}

int main(int argc, char **argv)
{
	int no_pvalloc = argc > 1 && strcmp(argv[1], "no-pvalloc") == 0;
	void *a, *z, *c, *r, *blk, *pm = NULL, *aa, *ma, *va, *pv = NULL, *big;
	void *volatile nothing = NULL;

	a = malloc(100);
	z = malloc(0);
	c = calloc(10, 20);
	/* volatile: gcc turns a literal realloc(NULL, n) into malloc(n) */
	r = realloc(nothing, 50);
	blk = malloc(16);
	r = realloc(r, 40);
	r = realloc(r, 4000);
	r = reallocarray(r, 10, 30);
	if (posix_memalign(&pm, 64, 1000) != 0)
		return 1;
	aa = aligned_alloc(128, 256);
	ma = memalign(32, 100);
	va = valloc(5000);
	if (!no_pvalloc)
		pv = pvalloc(100);
	big = malloc(1000000);
	if (!a || !z || !c || !r || !blk || !aa || !ma || !va || (!pv && !no_pvalloc) || !big)
		return 1;
	memset(big, 1, 1000000);
	free(big);
	free(NULL);
	r = realloc(r, 0);
	free(a);
	free(z);
	free(c);
	free(blk);
	free(pm);
	free(aa);
	free(ma);
	free(va);
	free(pv);
	say("alloc_basic: done\n");
	return r != NULL;
}
