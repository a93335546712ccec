/*
 * churn - the recorder benchmark's subject: malloc/free pairs as fast as
 * the allocator allows, sizes 16..527 from a fixed pseudo-random sequence.
 *   churn [THREADS [PAIRS_PER_THREAD]]   (default 1 thread, 2,000,000 pairs)
 * One thread: batches of 1000 allocations, then their frees, on the main
 * thread (a single-threaded program, as most are). Several threads: in each round every thread allocates a batch, waits at a
 * barrier, then frees the batch its neighbour allocated (cross-thread
 * frees, the case that needs ordering across threads). Prints
 * "churn: T threads, P pairs" (P = THREADS x PAIRS_PER_THREAD, rounded
 * down to whole batches).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BATCH 1000

static int nthreads = 1;
static long rounds;
static void *(*slots)[2][BATCH];
static pthread_barrier_t barrier;

static void *worker(void *arg)
{
	long t = (long)(intptr_t)arg, r;
	uint32_t seed = 2463534242u + (uint32_t)t;
	int i;

	for (r = 0; r < rounds; r++) {
		void **mine = slots[t][r & 1];
		void **theirs = slots[(t + 1) % nthreads][r & 1];

		for (i = 0; i < BATCH; i++) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			mine[i] = malloc(16 + (seed & 511));
			if (!mine[i])
				abort();
		}
		if (nthreads > 1)
			pthread_barrier_wait(&barrier);
		for (i = 0; i < BATCH; i++)
			free(nthreads > 1 ? theirs[i] : mine[i]);
		/* The neighbour must be done with our slots of this round
		 * before we fill them again two rounds on. */
		if (nthreads > 1)
			pthread_barrier_wait(&barrier);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long pairs = 2000000, t;
	pthread_t *tids;

	if (argc > 1)
		nthreads = atoi(argv[1]);
	if (argc > 2)
		pairs = atol(argv[2]);
	if (nthreads < 1 || nthreads > 256 || pairs < BATCH) {
		fprintf(stderr, "usage: churn [THREADS [PAIRS_PER_THREAD]]\n");
		return 2;
	}
	rounds = pairs / BATCH;
	slots = calloc((size_t)nthreads, sizeof(*slots));
	tids = calloc((size_t)nthreads, sizeof(*tids));
	if (!slots || !tids)
		return 1;
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
	if (nthreads == 1)
		worker((void *)0);
	for (t = 0; nthreads > 1 && t < nthreads; t++)
		if (pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t) != 0)
			return 1;
	for (t = 0; nthreads > 1 && t < nthreads; t++)
		pthread_join(tids[t], NULL);
	printf("churn: %d threads, %ld pairs\n", nthreads, rounds * BATCH * nthreads);
	free(tids);
	free(slots);
	return 0;
}
