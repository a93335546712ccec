/*
 * bad_rbp - malloc called with rbp holding whatever a function built
 * without frame pointers left in it, as binutils' as does: the top of the
 * address space (where a frame pointer walk that added 16 to it wrapped
 * around to 0 and read there), a word just under the stack's top, an odd
 * number, a heap address, a stack address below the caller's frame, and
 * 0; then from stacks other than the thread's, with rbp pointing into an
 * unmapped gap between them and it: a signal handler on an alternate
 * signal stack, and a coroutine (makecontext). A frame pointer walk must
 * stop at each, never fault (under `ulimit -s unlimited` too). Prints
 * "bad_rbp: N allocations" (N = 7 x ROUNDS + 4, ROUNDS default 1000),
 * each freed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* malloc(size) with rbp = bp for the call (x86-64 System V: size in rdi,
 * bp in rsi; rbp saved and restored around it). */
void *malloc_with_rbp(size_t size, uintptr_t bp);
#if defined(__x86_64__)
__asm__(".text\n"
	".globl malloc_with_rbp\n"
	".type malloc_with_rbp, @function\n"
	"malloc_with_rbp:\n"
	"	push %rbp\n"
	"	mov %rsi, %rbp\n"
	"	call malloc@PLT\n"
	"	pop %rbp\n"
	"	ret\n"
	".size malloc_with_rbp, .-malloc_with_rbp\n");
#else
void *malloc_with_rbp(size_t size, uintptr_t bp)
{
	(void)bp;
	return malloc(size);
}
#endif

static uintptr_t gap;                 /* unmapped, between heap and stack */
static long n;

/* A word-aligned address between A and B that nothing maps. */
static uintptr_t unmapped_between(uintptr_t a, uintptr_t b)
{
	unsigned char v;
	uintptr_t lo = a < b ? a : b, hi = a < b ? b : a, p;
	for (p = lo / 2 + hi / 2; p > lo; p -= (hi - lo) / 64)
		if (mincore((void *)(p & ~4095ul), 4096, &v) < 0)
			return (p & ~4095ul) + 64;
	return 0;
}

/* malloc twice: with the stray rbp, then with the frames as they are */
static void allocate_here(void)
{
	void *p = malloc_with_rbp(40, gap), *q = malloc(48);
	free(p);
	free(q);
	n += 2;
}

static void on_signal(int sig)
{
	(void)sig;
	allocate_here();
}

/* The signal comes in syscall(), a few instructions that leave rbp
 * alone: the handler's frames lead back through this one to main. */
static __attribute__((noinline)) void signal_self(void)
{
	syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGUSR1);
}

static ucontext_t main_ctx, co_ctx;

static void coroutine(void)
{
	allocate_here();
	swapcontext(&co_ctx, &main_ctx);
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 1000, r;
	char here;
	void *heap = malloc(64);
	uintptr_t top = ((uintptr_t)&here | 0xfff) + 1;   /* a page above this frame */
	uintptr_t bps[] = {
		UINT64_MAX - 15, UINT64_MAX - 7, top - 8, 0x12345, (uintptr_t)heap,
		(uintptr_t)&here - 4096, 0,
	};
	void *grown[64];
	size_t i;

	if (!heap)
		return 1;
	for (r = 0; r < rounds; r++)
		for (i = 0; i < sizeof(bps) / sizeof(bps[0]); i++) {
			void *p = malloc_with_rbp(16 + i, bps[i]);
			if (!p)
				return 1;
			free(p);
			n++;
		}

	/* an alternate signal stack and a coroutine's, both on the heap,
	 * above where it ended at the start (under `ulimit -s unlimited`
	 * glibc's bound of the main thread's stack) */
	for (i = 0; i < 64; i++)
		if (!(grown[i] = malloc(60000)))
			return 1;
	gap = unmapped_between((uintptr_t)heap, (uintptr_t)&here);
	if (!gap)
		return 1;
	{
		stack_t ss = { .ss_sp = malloc(65536), .ss_size = 65536 };
		struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_ONSTACK };
		if (!ss.ss_sp || sigaltstack(&ss, NULL) < 0 || sigaction(SIGUSR1, &sa, NULL) < 0)
			return 1;
		signal_self();
	}
	{
		void *stack = malloc(65536);
		if (!stack || getcontext(&co_ctx) < 0)
			return 1;
		co_ctx.uc_stack.ss_sp = stack;
		co_ctx.uc_stack.ss_size = 65536;
		co_ctx.uc_link = &main_ctx;
		makecontext(&co_ctx, coroutine, 0);
		if (swapcontext(&main_ctx, &co_ctx) < 0)
			return 1;
	}
	for (i = 0; i < 64; i++)
		free(grown[i]);
	free(heap);
	printf("bad_rbp: %ld allocations\n", n);
	return 0;
}
