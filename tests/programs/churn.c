/*
 * churn - the recorder benchmark's subject: malloc/free pairs as fast as
 * the allocator allows, sizes 16..527 from a fixed pseudo-random sequence.
 *   churn [THREADS [PAIRS_PER_THREAD [BATCH]]]
 *   (default 1 thread, 2,000,000 pairs, batches of 1000)
 * One thread: batches of BATCH allocations, then their frees, on the main
 * thread (a single-threaded program, as most are). Several threads: in each round every thread allocates a batch, waits at a
 * barrier, then frees the batch its neighbour allocated (cross-thread
 * frees, the case that needs ordering across threads). Prints
 * "churn: T threads, P pairs" (P = THREADS x PAIRS_PER_THREAD, rounded
 * down to whole batches). A large BATCH keeps that many blocks live at
 * once, as a program building a big structure does (the analysis then
 * works on a large live set).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int nthreads = 1;
static long rounds, batch = 1000;
static void **slots;                /* [thread][2][batch] */
static pthread_barrier_t barrier;

static void *worker(void *arg)
{
	long t = (long)(intptr_t)arg, r;
	uint32_t seed = 2463534242u + (uint32_t)t;
	long i;

	for (r = 0; r < rounds; r++) {
		void **mine = slots + (t * 2 + (r & 1)) * batch;
		void **theirs = slots + (((t + 1) % nthreads) * 2 + (r & 1)) * batch;

		for (i = 0; i < batch; i++) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			mine[i] = malloc(16 + (seed & 511));
			if (!mine[i])
				abort();
		}
		if (nthreads > 1)
			pthread_barrier_wait(&barrier);
		for (i = 0; i < batch; i++)
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
	if (argc > 3)
		batch = atol(argv[3]);
	if (nthreads < 1 || nthreads > 256 || batch < 1 || pairs < batch) {
		fprintf(stderr, "usage: churn [THREADS [PAIRS_PER_THREAD [BATCH]]]\n");
		return 2;
	}
	rounds = pairs / batch;
	slots = calloc((size_t)nthreads * 2 * (size_t)batch, sizeof(*slots));
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
	printf("churn: %d threads, %ld pairs\n", nthreads, rounds * batch * nthreads);
	free(tids);
	free(slots);
	return 0;
}
