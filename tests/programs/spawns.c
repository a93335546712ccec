/*
 * spawns - starts children the ways libc does it inside itself, which the
 * recorder's exec and posix_spawn hooks never see: system() and popen()
 * (both run /bin/sh with the environment as it is). Prints what the
 * children print, then "spawns: system 0, popen 0" (their statuses).
 * Program's own calls: one malloc(100) and its free around them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int main(void)
{
	char line[64];
	void *p = malloc(100);
	int rs, rp = -1;
	FILE *f;

	if (!p)
		return 1;
	fflush(stdout);
	rs = system("echo from system");
	f = popen("echo from popen", "r");
	if (f) {
		if (fgets(line, sizeof(line), f))
			fputs(line, stdout);
		rp = pclose(f);
	}
	free(p);
	printf("spawns: system %d, popen %d\n", WEXITSTATUS(rs), WEXITSTATUS(rp));
	return 0;
}
