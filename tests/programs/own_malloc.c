/*
 * own_malloc - a program with an allocator of its own compiled in, as
 * rustup's rustc carries jemalloc: malloc, free, calloc and realloc are
 * defined here, so the executable's definitions come first in symbol
 * lookup, before any preloaded library, and every call (libc's own
 * included) lands here. A bump allocator over a static arena: each block
 * has its size in the 16 bytes before it; free does nothing.
 *
 * Makes 100 allocations of 100 bytes, frees them and prints how many calls
 * its malloc served ("own_malloc: N calls", N >= 100). Under ms-record the
 * trace holds none of them and is flagged (MST_FLAG_OWN_MALLOC).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static _Alignas(16) unsigned char arena[4 << 20];
static size_t used;
static unsigned long calls;

void *malloc(size_t n)
{
	size_t need = (n + 15) / 16 * 16 + 16;
	unsigned char *p;

	if (need < n || need > sizeof(arena) - used)
		return NULL;
	p = arena + used;
	used += need;
	memcpy(p, &n, sizeof(n));
	calls++;
	return p + 16;
}

void free(void *p)
{
	(void)p;
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

void *realloc(void *old, size_t n)
{
	unsigned char *o = old;
	size_t had = 0;
	void *p;

	/* only blocks of this arena have a size in front of them */
	if (o >= arena + 16 && o < arena + sizeof(arena))
		memcpy(&had, o - 16, sizeof(had));
	p = malloc(n);
	if (p && old)
		memcpy(p, old, had < n ? had : n);
	return p;
}

int main(void)
{
	void *b[100];
	int i;

	for (i = 0; i < 100; i++)
		b[i] = malloc(100);
	for (i = 0; i < 100; i++)
		free(b[i]);
	printf("own_malloc: %lu calls\n", calls);
	return 0;
}
