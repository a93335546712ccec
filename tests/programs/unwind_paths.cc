/*
 * unwind_paths - malloc from many paths that reach the same stack depth in
 * different ways, for checking the recorder's own DWARF unwinder (and its
 * per-thread caches) against libunwind: different callers of one leaf,
 * recursion, after a longjmp out of a deep recursion, from a signal
 * handler (also on an alternate signal stack), after C++ exception
 * unwinding (and the exception object's own allocation), from a qsort
 * comparator (frames of optimized libc code), from functions built
 * without frame pointers and with alloca, from inside a library loaded
 * with dlopen (zlib's deflateInit, twice, with a dlclose in between), and
 * all of it again on a second thread. Everything runs in a fixed order, so two runs of the program
 * with address randomization off make the same allocations with the same
 * stacks. Prints "unwind_paths: N allocations".
 */
#include <alloca.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdexcept>
#include <zlib.h>

#define NOFP __attribute__((noinline, optimize("O2", "omit-frame-pointer")))
#define NOINL __attribute__((noinline))

static long count;
static void *keep[64];

static NOINL void leaf(size_t n)
{
	void *p = malloc(n);

	keep[count++ % 64] = p;
	__asm__ volatile("" ::: "memory");
	free(keep[count % 64]);
	keep[count % 64] = NULL;
}

static NOINL void caller_a(int i) { leaf(16 + i); }
static NOINL void caller_b(int i) { leaf(32 + i); }
static NOINL void caller_c(int i) { if (i & 1) caller_a(i); else caller_b(i); }

static NOINL void recurse(int depth)
{
	if (depth > 0) {
		recurse(depth - 1);
		__asm__ volatile("" ::: "memory");
	}
	leaf(8 + depth);
}

/* built optimized without a frame pointer: the CFA is rsp-based */
static NOFP void nofp_leaf(size_t n)
{
	volatile char pad[40];

	pad[0] = 1;
	leaf(n + pad[0]);
}

static NOFP void nofp_mid(int i)
{
	nofp_leaf((size_t)i);
	__asm__ volatile("" ::: "memory");
}

/* alloca: rsp moves by a variable amount, the CFA must come from rbp */
static NOINL void with_alloca(size_t k)
{
	char *b = (char *)alloca(k);

	memset(b, 0, k);
	leaf(k + (size_t)b[0]);
}

static NOFP void nofp_alloca(size_t k)
{
	char *b = (char *)alloca(k);

	memset(b, 1, k);
	nofp_mid((int)b[k - 1]);
}

static jmp_buf jb;

static volatile int jump_now = 1;

static NOINL void deep_jump(int depth)
{
	if (depth > 0)
		deep_jump(depth - 1);
	else if (jump_now)
		longjmp(jb, 1);
	__asm__ volatile("" ::: "memory");
}

static NOINL void after_longjmp(void)
{
	if (setjmp(jb) == 0)
		deep_jump(20);
	caller_c(3);
	caller_c(4);
}

static NOINL void deep_throw(int depth)
{
	if (depth == 0)
		throw std::runtime_error("unwind me");    /* allocates */
	deep_throw(depth - 1);
	__asm__ volatile("" ::: "memory");
}

static NOINL void after_throw(void)
{
	try {
		deep_throw(15);
	} catch (const std::exception &e) {
		caller_c((int)strlen(e.what()));
	}
	caller_c(5);
}

static void on_signal(int sig)
{
	caller_c(sig);
	recurse(3);
}

static NOINL void with_signals(void)
{
	static char altstack[64 * 1024];
	struct sigaction sa;
	stack_t ss;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	ss.ss_flags = 0;
	sigaltstack(&ss, NULL);
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR2, &sa, NULL);
	raise(SIGUSR2);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
}

static int cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	leaf((size_t)(x & 15) + 1);
	return (x > y) - (x < y);
}

static NOINL void from_qsort(void)
{
	int v[24];
	int i;

	for (i = 0; i < 24; i++)
		v[i] = (i * 7919) % 101;
	qsort(v, 24, sizeof(v[0]), cmp);
}

/* zlib's allocations: calloc called from the library's own code */
static NOINL void from_dlopen(void)
{
	int (*init)(z_streamp, int, const char *, int);
	int (*end)(z_streamp);
	void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
	z_stream zs;

	if (!h)
		return;
	*(void **)&init = dlsym(h, "deflateInit_");
	*(void **)&end = dlsym(h, "deflateEnd");
	if (init && end) {
		memset(&zs, 0, sizeof(zs));
		if (init(&zs, 6, ZLIB_VERSION, (int)sizeof(zs)) == Z_OK)
			end(&zs);
	}
	dlclose(h);
}

static NOINL void all_paths(void)
{
	int i;

	for (i = 0; i < 50; i++) {
		caller_a(i);
		caller_b(i);
		caller_c(i);
		recurse(i % 12);
		nofp_mid(i);
		with_alloca(16 + (size_t)i * 8);
		nofp_alloca(8 + (size_t)i);
	}
	after_longjmp();
	after_throw();
	with_signals();
	from_qsort();
	from_dlopen();
	from_dlopen();
	recurse(40);
	caller_a(1);
}

static void *thread_main(void *arg)
{
	(void)arg;
	all_paths();
	return NULL;
}

int main(void)
{
	pthread_t th;
	int i;

	all_paths();
	if (pthread_create(&th, NULL, thread_main, NULL) != 0)
		return 1;
	pthread_join(th, NULL);
	all_paths();
	for (i = 0; i < 64; i++)
		free(keep[i]);
	printf("unwind_paths: %ld allocations\n", count);
	return 0;
}
