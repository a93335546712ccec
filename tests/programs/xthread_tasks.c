/*
 * xthread_tasks - the annotation API (memscope.h) across threads: each of
 * 4 workers names itself "worker-N", opens a task "job N", allocates three
 * blocks of 100 * (N + 1) bytes, labels the first one ("block", "char[]"),
 * frees them and closes the task. main names worker 3 again from outside
 * ("renamed-3"), renames itself with prctl(PR_SET_NAME) to
 * "main-by-prctl-and-cut" (the kernel keeps "main-by-prctl-a"), labels one
 * block of its own with MEMSCOPE_LABEL(buf, struct buffer) and frees it.
 *
 * Without the recorder every memscope_* call is a no-op and the output is
 * the same: "tasks: 4 workers, task ids nonzero: N" (N = 4 under the
 * recorder, 0 without).
 * Program's own calls: 4 x 3 + 1 = 13 allocations, 13 frees,
 * 3 x (100 + 200 + 300 + 400) + 64 = 3064 bytes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "memscope.h"

struct buffer {
	char data[64];
};

static int nonzero;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t named;

static void *worker(void *arg)
{
	int n = (int)(long)arg;
	char name[16];
	void *b[3];
	uint64_t task;
	int i;

	snprintf(name, sizeof(name), "worker-%d", n);
	pthread_setname_np(pthread_self(), name);
	snprintf(name, sizeof(name), "job %d", n);
	task = memscope_task_begin(name);
	for (i = 0; i < 3; i++)
		b[i] = malloc(100 * (size_t)(n + 1));
	memscope_label(b[0], "block", "char[]");
	for (i = 0; i < 3; i++)
		free(b[i]);
	memscope_task_end(task);
	pthread_mutex_lock(&lock);
	nonzero += task != 0;
	pthread_mutex_unlock(&lock);
	pthread_barrier_wait(&named);   /* main renames us while we live */
	pthread_barrier_wait(&named);
	return NULL;
}

int main(void)
{
	pthread_t th[4];
	struct buffer *buf;
	int i;

	pthread_barrier_init(&named, NULL, 5);
	for (i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			return 1;
	pthread_barrier_wait(&named);
	pthread_setname_np(th[3], "renamed-3");
	pthread_barrier_wait(&named);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	if (prctl(PR_SET_NAME, "main-by-prctl-and-cut", 0, 0, 0))
		return 1;
	buf = malloc(sizeof(*buf));
	if (!buf)
		return 1;
	MEMSCOPE_LABEL(buf, struct buffer);
	memset(buf, 0, sizeof(*buf));
	free(buf);
	printf("tasks: 4 workers, task ids nonzero: %d\n", nonzero);
	return 0;
}
