/*
 * setenv_grow - sets 32 new environment variables. glibc's setenv keeps
 * the environment array on the heap and reallocs it as it grows, so a
 * recorder that had called setenv itself before the program ran (allocating
 * that array unseen) would record frees of a block it never saw allocated.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char name[32];

	for (int i = 0; i < 32; i++) {
		snprintf(name, sizeof(name), "SETENV_GROW_%d", i);
		if (setenv(name, "x", 1) != 0)
			return 1;
	}
	return getenv("SETENV_GROW_31") ? 0 : 1;
}
