/*
 * ends - allocates a known amount, then ends the way argv[1] says, to test
 * what the trace keeps in each case:
 *   exit     return from main with status 3
 *   _exit    _exit(4), no atexit handlers, no stdio flush
 *   abort    abort(): SIGABRT (status 134 in a shell)
 *   segv     a write through a NULL pointer: SIGSEGV (139)
 *   kill     raise(SIGKILL): no handler can run; ms-record salvages (137)
 *   wait     prints "ready" and sleeps until killed from outside (kill -9)
 * Before ending it has made 10 allocations of 100 bytes and freed 5 of
 * them: 10 allocations, 5 frees, 1000 bytes allocated, peak 1000, 500 bytes
 * in 5 blocks live; it says so on stdout (write(2), no stdio allocation)
 * so the figures are known even when it dies.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(3);
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "exit";
	void *p[10];
	int i;

	for (i = 0; i < 10; i++)
		p[i] = malloc(100);
	for (i = 0; i < 10; i += 2)
		free(p[i]);
	say("ends: 10 allocations, 5 frees, 500 bytes live\n");
	if (strcmp(how, "exit") == 0)
		return 3;
	if (strcmp(how, "_exit") == 0)
		_exit(4);
	if (strcmp(how, "abort") == 0)
		abort();
	if (strcmp(how, "segv") == 0) {
		*(volatile int *)(p[0] ? NULL : p[1]) = 1;
		return 1;
	}
	if (strcmp(how, "kill") == 0)
		raise(SIGKILL);
	if (strcmp(how, "wait") == 0) {
		say("ready\n");
		for (;;)
			pause();
	}
	say("ends: unknown way to end\n");
	return 2;
}
