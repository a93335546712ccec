/*
 * threads100 - 100 threads alive at once, each allocating and freeing
 * 50 blocks of 100 + its index bytes and keeping one 1000-byte block that
 * main frees after the join.
 *
 * The program's own calls: 100 x 51 = 5100 allocations and as many frees,
 * 100 x (50 x 100 + 1000) + 50 x (0 + 1 + ... + 99) = 847,500 bytes;
 * nothing of its own is live at the end. glibc adds one allocation per
 * thread for its thread-local storage vector (compared with memcheck in
 * oracle.bats).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define NTHREADS 100

static pthread_barrier_t all_up;

static void *worker(void *arg)
{
	size_t size = 100 + (size_t)(intptr_t)arg;
	void *keep = malloc(1000);
	int i;

	/* Every thread is alive before any allocates: 100 at once. */
	pthread_barrier_wait(&all_up);
	for (i = 0; i < 50; i++) {
		void *p = malloc(size);
		if (!p)
			return NULL;
		*(volatile char *)p = 1;
		free(p);
	}
	return keep;
}

int main(void)
{
	pthread_t t[NTHREADS];
	void *ret;
	intptr_t i;

	pthread_barrier_init(&all_up, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
			return 1;
	for (i = 0; i < NTHREADS; i++) {
		if (pthread_join(t[i], &ret) != 0 || !ret)
			return 1;
		free(ret);
	}
	pthread_barrier_destroy(&all_up);
	if (write(1, "threads100: 100 threads joined\n", 31) < 0)
		return 3;
	return 0;
}
