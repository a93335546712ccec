/*
 * xthread_reuse - a stress test of cross-thread order: THREADS threads in
 * a ring, each allocating blocks and handing them through a lock-free
 * single-producer/single-consumer queue to the next thread, which frees
 * them. Blocks are freed by a thread other than their allocator all the
 * time, and the allocator hands the same addresses out again on other
 * threads, so a recorder that orders a FREE after the ALLOC that reuses its
 * address shows up as double allocations and unknown frees.
 *
 * Usage: xthread_reuse [THREADS [BLOCKS_PER_THREAD]]   (default 8 20000)
 * Each thread allocates BLOCKS blocks of 1000 + (k % 1000) bytes (k its
 * running count) and passes every one on; at the end each thread also
 * keeps one block of 2000 + its index bytes, which main frees after the
 * join except the one of thread 0, left live on purpose.
 * So the program's own calls, in the 1000..2999-byte range: THREADS x
 * (BLOCKS + 1) allocations, one fewer frees, 2000 bytes live at the end.
 * Prints "THREADS threads, N blocks passed".
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define QSIZE 256

struct queue {
	_Alignas(64) atomic_size_t head;
	_Alignas(64) atomic_size_t tail;
	void *slot[QSIZE];
	atomic_int done;              /* the producer has pushed everything */
};

static struct queue *queues;
static int nthreads;
static long blocks;
static void **kept;
static atomic_long passed;

static int push(struct queue *q, void *p)
{
	size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);

	if (h - t == QSIZE)
		return 0;
	q->slot[h % QSIZE] = p;
	atomic_store_explicit(&q->head, h + 1, memory_order_release);
	return 1;
}

static void *pop(struct queue *q)
{
	size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	void *p;

	if (t == h)
		return NULL;
	p = q->slot[t % QSIZE];
	atomic_store_explicit(&q->tail, t + 1, memory_order_release);
	return p;
}

static void *worker(void *arg)
{
	int me = (int)(long)arg;
	struct queue *out = &queues[me];
	struct queue *in = &queues[(me + nthreads - 1) % nthreads];
	long k = 0;
	void *p;

	while (k < blocks) {
		p = malloc(1000 + (size_t)(k % 1000));
		if (!p)
			abort();
		*(volatile char *)p = (char)k;
		while (!push(out, p)) {
			/* full: free what we were handed, then retry */
			void *q = pop(in);

			if (q) {
				free(q);
				atomic_fetch_add(&passed, 1);
			} else
				sched_yield();
		}
		k++;
		if ((p = pop(in)) != NULL) {
			free(p);
			atomic_fetch_add(&passed, 1);
		}
	}
	atomic_store(&out->done, 1);
	for (;;) {
		p = pop(in);
		if (p) {
			free(p);
			atomic_fetch_add(&passed, 1);
			continue;
		}
		if (atomic_load(&in->done) && !(p = pop(in)))
			break;
		if (p) {
			free(p);
			atomic_fetch_add(&passed, 1);
		}
		sched_yield();
	}
	kept[me] = malloc(2000 + (size_t)me);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t *th;
	int i;

	nthreads = argc > 1 ? atoi(argv[1]) : 8;
	blocks = argc > 2 ? atol(argv[2]) : 20000;
	if (nthreads < 2 || nthreads > 256 || blocks < 1) {
		fprintf(stderr, "usage: xthread_reuse [THREADS(2..256) [BLOCKS]]\n");
		return 2;
	}
	/* the set-up blocks are freed, and their sizes are outside the
	 * 1000..2999 range the test counts (queues: 2 KiB each, >= 2) */
	queues = aligned_alloc(64, sizeof(*queues) * (size_t)nthreads);
	th = calloc((size_t)nthreads, sizeof(*th));
	kept = calloc((size_t)nthreads, sizeof(*kept));
	if (!queues || !th || !kept)
		return 1;
	for (i = 0; i < nthreads; i++) {
		atomic_init(&queues[i].head, 0);
		atomic_init(&queues[i].tail, 0);
		atomic_init(&queues[i].done, 0);
	}
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			return 1;
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	for (i = 1; i < nthreads; i++)
		free(kept[i]);
	printf("%d threads, %ld blocks passed\n", nthreads, (long)atomic_load(&passed));
	free(queues);
	free(th);
	free(kept);
	return 0;
}
