/*
 * malloc_pointer - built without -fPIE (see the Makefile), and takes the
 * addresses of malloc and free, as python3 does: its PLT entries then
 * stand for those functions' addresses in the whole process, so a lookup
 * of "malloc" finds the program's entry (an undefined symbol with a
 * value), while its calls still reach the recorder. The recorder must not
 * take that for a malloc of the program's own (tests/programs/own_malloc).
 *
 * Expected: 2 allocations (100 and 200 bytes, one through the pointer),
 * both freed; the trace is not flagged.
 */
#include <stdio.h>
#include <stdlib.h>

static void *(*volatile alloc_fn)(size_t);
static void (*volatile free_fn)(void *);

int main(void)
{
	void *a, *b;

	/* in code, not a data initializer: position-dependent code takes
	 * the address as a constant, which needs the canonical PLT entry */
	alloc_fn = malloc;
	free_fn = free;
	a = alloc_fn(100);
	b = malloc(200);

	if (!a || !b)
		return 1;
	free_fn(a);
	free(b);
	puts("malloc_pointer: done");
	return 0;
}
