/*
 * bench/runtime.c - runs a command and appends one line to FILE:
 * "CPU_SECONDS MAX_RSS_KIB WALL_SECONDS" (user + system time of the
 * command and its children, their largest resident set, the elapsed
 * time), to the microsecond.
 *
 *     runtime FILE COMMAND [ARG...]
 *
 * The benchmarks' timer: /usr/bin/time prints hundredths of a second, a
 * fifth of a 50 ms run. The command's output goes where runtime's goes;
 * the exit status is the command's (127 when it cannot be started, 128+N
 * when it died of signal N).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	FILE *out;
	pid_t pid;
	int status;

	if (argc < 3) {
		fputs("usage: runtime FILE COMMAND [ARG...]\n", stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "runtime: fork: %s\n", strerror(errno));
		return 126;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "runtime: cannot run '%s': %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "runtime: wait: %s\n", strerror(errno));
			return 126;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out = fopen(argv[1], "a");
	if (!out) {
		fprintf(stderr, "runtime: cannot open '%s': %s\n", argv[1], strerror(errno));
		return 126;
	}
	fprintf(out, "%.6f %ld %.6f\n", seconds(ru.ru_utime) + seconds(ru.ru_stime),
		ru.ru_maxrss, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (fclose(out) != 0)
		return 126;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
