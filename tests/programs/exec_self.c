/*
 * exec_self - execs itself in the same pid. The first image leaks
 * malloc(1234) and calls execv("/proc/self/exe", {"exec_self", "second"});
 * the second allocates and frees malloc(4321) and prints its pid.
 * The trace at the expected name is the second image's (exec_generation
 * 1: 1 allocation, 1 free, 4321 bytes); the first image's is renamed
 * "<name minus .memscope>.exec0.memscope" (".exec<generation of the image
 * that exec'd>", as tools/ms-record/spool.h says; 1 allocation, 1234 bytes
 * live, END reason exec).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char line[64];
	int n;

	if (argc > 1 && strcmp(argv[1], "second") == 0) {
		void *p = malloc(4321);
		free(p);
		n = snprintf(line, sizeof(line), "second image, pid %ld\n", (long)getpid());
		return write(1, line, (size_t)n) == n ? 0 : 3;
	}
	if (!malloc(1234))
		return 1;
	execl("/proc/self/exe", "exec_self", "second", (char *)NULL);
	return 127;
}
