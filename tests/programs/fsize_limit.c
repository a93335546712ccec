/*
 * fsize_limit - the disk fills up under a recording: the program lowers
 * its file size limit to 1 MiB (ignoring SIGXFSZ, so that writes past it
 * fail with EFBIG as on a full disk), then makes 1,000,000 malloc/free
 * pairs of pseudo-random sizes, whose trace needs some 3.6 MiB: whole
 * chunks (at most some 350 KiB each) fit before the limit, however the
 * writer cut them. Prints "fsize_limit: done".
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

int main(void)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	uint32_t seed = 2463534242u;
	void *p[64];
	long i;

	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl))
		return 1;
	for (i = 0; i < 1000000; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		p[i % 64] = malloc(16 + (seed & 1023));
		if (!p[i % 64])
			return 1;
		if (i % 64 == 63)
			for (int k = 0; k < 64; k++)
				free(p[k]);
	}
	printf("fsize_limit: done\n");
	return 0;
}
