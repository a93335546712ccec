/*
 * sighandler - malloc and free inside a signal handler, interrupting the
 * main thread while it is itself in the middle of malloc/free calls (a
 * classic recorder deadlock: the handler re-enters the recorder on the
 * same thread). Not async-signal-safe by POSIX, but done by real programs
 * and fine with glibc's allocator in this pattern.
 *
 * main: malloc(32)/free pairs while a 100 us interval timer raises
 * SIGALRM, until the handler has run 200 times; each handler run does
 * malloc(48) and free. main prints "M pairs, handler ran N times".
 * Expected: M + N allocations, as many frees, M x 32 + N x 48 bytes,
 * nothing live at the end (in drop mode, or when a ring is full inside a handler,
 * events may be dropped and counted instead).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t runs;

static void on_alarm(int sig)
{
	void *p = malloc(48);
	(void)sig;
	if (p) {
		*(volatile char *)p = 1;
		free(p);
		runs++;
	}
}

int main(void)
{
	struct itimerval it = { { 0, 100 }, { 0, 100 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa;
	char line[64];
	long i;
	int n;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (i = 0; runs < 200 && i < 100000000; i++) {
		void *p = malloc(32);
		if (!p)
			return 1;
		*(volatile char *)p = 1;
		free(p);
	}
	setitimer(ITIMER_REAL, &off, NULL);
	n = snprintf(line, sizeof(line), "%ld pairs, handler ran %d times\n", i, (int)runs);
	return write(1, line, (size_t)n) == n ? 0 : 3;
}
