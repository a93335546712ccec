/*
 * malloc_forward - defines malloc and calloc itself, as a program that
 * counts or tags its allocations does, but forwards malloc to the next
 * definition (dlsym RTLD_NEXT: the recorder's, under ms-record), and
 * builds calloc on malloc. Its calls reach the recorder: it must not be
 * taken for a program with an allocator of its own (tests/programs/
 * own_malloc), whose calls never do.
 *
 * Expected: its own 2 allocations (malloc(100), calloc(10, 20)) among
 * the recorded ones, both freed; prints how many calls its malloc
 * forwarded; the trace is not flagged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long forwarded;

void *malloc(size_t n)
{
	static void *(*next)(size_t);

	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "malloc");
	forwarded++;
	return next(n);
}

void *calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > (size_t)-1 / size)
		return NULL;
	p = malloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

int main(void)
{
	void *a = malloc(100), *b = calloc(10, 20);

	if (!a || !b)
		return 1;
	free(a);
	free(b);
	printf("malloc_forward: %lu calls forwarded\n", forwarded);
	return 0;
}
