/*
 * threads_serial - threads started one after another, each joined before
 * the next starts, so that each new thread gets the cached stack of the
 * one before. glibc then frees the dynamic TLS blocks the old thread
 * left there, from pthread_create: under --unwind dwarf one of them is
 * libunwind's, which the loader allocated on the thread's first unwind,
 * inside the recorder; that free must not show as a free of an unknown
 * block.
 *
 * The program's own calls: ROUNDS (default 50) threads x 10 blocks of
 * 64 bytes, each freed: ROUNDS x 10 allocations and frees. Prints
 * "threads_serial: N threads".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *worker(void *arg)
{
	void *p[10];
	int i;

	(void)arg;
	for (i = 0; i < 10; i++)
		if (!(p[i] = malloc(64)))
			abort();
	for (i = 0; i < 10; i++)
		free(p[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50, i;

	for (i = 0; i < rounds; i++) {
		pthread_t th;
		if (pthread_create(&th, NULL, worker, NULL) != 0 || pthread_join(th, NULL) != 0)
			return 1;
	}
	printf("threads_serial: %d threads\n", rounds);
	return 0;
}
