/*
 * daemon - turns into a daemon the classic way: fork (the parent exits at
 * once), setsid, fork again, chdir("/"), close every descriptor, then
 * allocates while ms-record has already returned. The trace must still be
 * written (by absolute path, reopened if need be) and complete.
 * Usage: daemon PIDFILE   - the daemon writes its pid there, then
 *   allocates 5 blocks of 1000 bytes, frees 2, sleeps 300 ms and exits 0:
 *   5 allocations, 2 frees, 5000 bytes, 3000 bytes live at the end.
 * The two short-lived parents allocate nothing of their own.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	char line[32], tmp[4096];
	void *p[5];
	int fd, i, n;

	if (argc < 2 || argv[1][0] != '/')
		return 2;
	if (fork() != 0)
		_exit(0);
	setsid();
	if (fork() != 0)
		_exit(0);
	if (chdir("/") != 0)
		_exit(1);
	umask(022);
	for (fd = 0; fd < 1024; fd++)
		close(fd);
	/* Written under a temporary name and renamed: the test waits for it. */
	n = snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	if (n < 0 || n >= (int)sizeof(tmp))
		_exit(1);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		_exit(1);
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n || close(fd) != 0 || rename(tmp, argv[1]) != 0)
		_exit(1);
	for (i = 0; i < 5; i++)
		p[i] = malloc(1000);
	free(p[0]);
	free(p[1]);
	nanosleep(&ts, NULL);
	return 0;
}
