/*
 * leak - leaks a known amount. Allocates twenty 1000-byte blocks, then
 * malloc(500) and calloc(3, 7), frees the ten even-numbered 1000-byte
 * blocks and exits without freeing the rest.
 *
 * Expected: 22 allocations, 10 frees, 20,521 bytes allocated, peak 20,521
 * (everything is live just before the frees), 10,521 bytes in 12 blocks
 * live at the end (ten 1000-byte blocks, 500, 21). memcheck: 22 allocs,
 * 10 frees, 20,521 bytes allocated, 10,521 bytes in 12 blocks in use at
 * exit.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *blocks[20];

int main(void)
{
	void *a, *b;
	int i;

	for (i = 0; i < 20; i++)
		blocks[i] = malloc(1000);
	a = malloc(500);
	b = calloc(3, 7);
	for (i = 0; i < 20; i += 2)
		free(blocks[i]);
	if (!a || !b)
		return 1;
	if (write(1, "leak: 10521 bytes in 12 blocks\n", 31) < 0)
		return 3;
	return 0;
}
