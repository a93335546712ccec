/*
 * memscope.h - annotate a program for memscope: give allocations a name
 * and a type, and tag the allocations of a stretch of work as a task.
 *
 * Header-only. A program built with it runs unchanged without the
 * recorder: the first call looks the recorder up with dlsym() (link with
 * -ldl on glibc older than 2.34) and every call is a cheap no-op when
 * ms-record's library is not loaded.
 *
 *   #include <memscope.h>
 *
 *   struct point *p = malloc(sizeof(*p));
 *   MEMSCOPE_LABEL(p, struct point);         // name "p", type "struct point"
 *   memscope_label(buf, "frame buffer", "uint8_t[]");
 *
 *   uint64_t task = memscope_task_begin("parse request");
 *   ...                                      // this thread's allocations
 *   memscope_task_end(task);                 // belong to the task
 *
 * Labels land in the trace as LABEL records (FORMAT.md 0x47), tasks as
 * TASK_BEGIN/TASK_END; tasks nest per thread. Names and types are copied
 * (at most 500 bytes each); the pointers need not outlive the call.
 */
#ifndef MEMSCOPE_H
#define MEMSCOPE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The recorder's entry points (libmsrecord.so). */
void memscope_label_v1(void *ptr, const char *name, const char *type);
uint64_t memscope_task_begin_v1(const char *name);
void memscope_task_end_v1(uint64_t task);

#ifndef MEMSCOPE_IMPLEMENTATION
#include <dlfcn.h>
#ifndef RTLD_DEFAULT
#define RTLD_DEFAULT ((void *)0)     /* glibc's, hidden without _GNU_SOURCE */
#endif

struct memscope_api_ {
	int looked;
	void (*label)(void *, const char *, const char *);
	uint64_t (*task_begin)(const char *);
	void (*task_end)(uint64_t);
};

static inline struct memscope_api_ *memscope_api_(void)
{
	static struct memscope_api_ api;

	if (!__atomic_load_n(&api.looked, __ATOMIC_ACQUIRE)) {
		*(void **)&api.label = dlsym(RTLD_DEFAULT, "memscope_label_v1");
		*(void **)&api.task_begin = dlsym(RTLD_DEFAULT, "memscope_task_begin_v1");
		*(void **)&api.task_end = dlsym(RTLD_DEFAULT, "memscope_task_end_v1");
		__atomic_store_n(&api.looked, 1, __ATOMIC_RELEASE);
	}
	return &api;
}

/* Names the allocation at PTR (as returned by malloc/new). */
static inline void memscope_label(void *ptr, const char *name, const char *type)
{
	struct memscope_api_ *a = memscope_api_();

	if (a->label)
		a->label(ptr, name, type);
}

/* Starts a task on this thread; returns its id (0 without the recorder). */
static inline uint64_t memscope_task_begin(const char *name)
{
	struct memscope_api_ *a = memscope_api_();

	return a->task_begin ? a->task_begin(name) : 0;
}

/* Ends the task ID returned by memscope_task_begin (0 is ignored). */
static inline void memscope_task_end(uint64_t task)
{
	struct memscope_api_ *a = memscope_api_();

	if (a->task_end && task)
		a->task_end(task);
}

/* MEMSCOPE_LABEL(p, T): label p with its own name and the type T. */
#define MEMSCOPE_LABEL(ptr, type) memscope_label((void *)(ptr), #ptr, #type)
#endif

#ifdef __cplusplus
}
#endif

#endif
