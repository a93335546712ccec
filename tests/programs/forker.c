/*
 * forker - fork without exec: both processes go on allocating.
 *   parent: malloc(111) before the fork, freed after waiting for the child:
 *           1 allocation, 1 free, 111 bytes; nothing live at the end.
 *   child:  malloc(222) freed, malloc(333) kept, then exit(0): 2
 *           allocations, 1 free, 555 bytes, 333 bytes live at the end. It
 *           inherits the parent's 111-byte block but never frees it, so
 *           its trace has no unknown free.
 * Prints "child PID" so a test can find the child's trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	char line[64];
	void *kept = malloc(111), *p, *q;
	int status, n;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		p = malloc(222);
		free(p);
		q = malloc(333);
		_exit(q ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	free(kept);
	/* snprintf on a stack buffer allocates nothing. */
	n = snprintf(line, sizeof(line), "child %ld\n", (long)pid);
	if (write(1, line, (size_t)n) != n)
		return 3;
	return 0;
}
