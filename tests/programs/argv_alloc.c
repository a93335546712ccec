/*
 * argv_alloc - allocates one block per argument (strlen + 1 bytes, freed)
 * so a test can check that argv with newlines, quotes and bytes that are
 * not UTF-8 reaches the program unchanged and is recorded exactly in the
 * trace header. Writes each argument back, NUL-terminated, on stdout.
 *
 * Expected with N arguments after the program name: N allocations and
 * N frees of strlen(arg) + 1 bytes each.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;
		char *copy = malloc(n);
		if (!copy)
			return 1;
		memcpy(copy, argv[i], n);
		if (write(1, copy, n) != (ssize_t)n)
			return 3;
		free(copy);
	}
	return 0;
}
