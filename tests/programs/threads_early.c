/*
 * threads_early - four threads, two of which leave early through
 * pthread_exit(), and memory freed by a thread other than its allocator.
 *
 * main: malloc(64); then per worker i (0..3): malloc(1000 * (i + 1)),
 * free it, malloc(100 * (i + 1)) handed back to main, which frees it after
 * pthread_join (a cross-thread free). Odd workers hand it back through
 * pthread_exit(). main frees its 64 bytes last.
 *
 * The program's own calls: 9 allocations, 9 frees, 11,064 bytes. glibc
 * adds its own: the thread-local storage vector of each new thread, and
 * pthread_exit() loads libgcc_s to unwind, through dlopen's allocations.
 * Those are compared with memcheck's figures for the same run in
 * oracle.bats; ms-record.bats checks the program's own blocks by size.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg)
{
	intptr_t i = (intptr_t)arg;
	void *p = malloc(1000 * (size_t)(i + 1));
	void *q;

	if (!p)
		return NULL;
	memset(p, 0, 1000 * (size_t)(i + 1));
	free(p);
	q = malloc(100 * (size_t)(i + 1));
	if (i % 2)
		pthread_exit(q);
	return q;
}

int main(void)
{
	pthread_t t[4];
	void *mine = malloc(64), *ret;
	intptr_t i;

	for (i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
			return 1;
	for (i = 0; i < 4; i++) {
		if (pthread_join(t[i], &ret) != 0 || !ret)
			return 1;
		free(ret);
	}
	free(mine);
	if (write(1, "threads_early: 4 threads joined\n", 32) < 0)
		return 3;
	return 0;
}
