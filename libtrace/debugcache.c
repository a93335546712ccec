/*
 * debugcache.c - inflated debug images kept on disk between runs.
 *
 * Inflating a distribution's debug file is most of what naming frames
 * costs a run of ms-stats or ms-svg: libc's 2.4 MiB of zlib streams
 * inflate to 8.6 MiB in some 15 ms of CPU time, and nearly every trace has
 * a frame in libc. The same file inflates to the same bytes every time,
 * so the image inflate.c builds is written to a cache folder once and
 * mapped from there afterwards (the page cache then holds it, shared by
 * every run, and libdw touches only the pages it reads).
 *
 * An entry is the image exactly as mst__inflate_elf builds it, stored
 * sparse (its holes, where the compressed sections were, stay holes),
 * followed by a trailer naming the file it was made from: device, inode,
 * size and modification time. A copy whose trailer does not match the
 * file, or that is cut short, is made again. Entries are written under a
 * temporary name and renamed, so a reader never sees half of one; each
 * use touches the entry's time, and storing one drops the least recently
 * used beyond MST__CACHE_MAX.
 */
#include "debugcache.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "MSDBGC1"               /* 8 bytes with its NUL */
#define BLOCK (64u << 10)             /* sparse writing: zero blocks skipped */

struct trailer {
	char magic[8];
	uint64_t dev, ino, size, mtime_ns;
	uint64_t image_size;
};

/* The cache folder into BUF, or -1 when there is none (or it is off). */
static int cache_dir(char *buf, size_t len)
{
	const char *e = getenv("MEMSCOPE_CACHE");
	int n;

	if (e && *e) {
		if (!strcmp(e, "off"))
			return -1;
		n = snprintf(buf, len, "%s", e);
	} else if ((e = getenv("XDG_CACHE_HOME")) && *e == '/') {
		n = snprintf(buf, len, "%s/memscope", e);
	} else if ((e = getenv("HOME")) && *e == '/') {
		n = snprintf(buf, len, "%s/.cache/memscope", e);
	} else {
		return -1;
	}
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Creates DIR and the folders above it that are missing (mode 0700, as
 * a cache of what a user reads should be). */
static int make_dirs(const char *dir)
{
	char p[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n >= sizeof(p))
		return -1;
	memcpy(p, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		p[i] = 0;
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return -1;
		p[i] = dir[i];
	}
	return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 1099511628211ull;
	return h;
}

/* The entry's path for the file described by T. */
static int entry_path(char *buf, size_t len, const char *dir, const struct trailer *t)
{
	uint64_t h = 1469598103934665603ull;
	int n;

	h = fnv(h, &t->dev, sizeof(t->dev));
	h = fnv(h, &t->ino, sizeof(t->ino));
	h = fnv(h, &t->size, sizeof(t->size));
	h = fnv(h, &t->mtime_ns, sizeof(t->mtime_ns));
	n = snprintf(buf, len, "%s/%016llx.elf", dir, (unsigned long long)h);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Maps the entry at PATH into IMG when its trailer names the file T does. */
static int load(const char *path, const struct trailer *want, struct mst__image *img)
{
	struct trailer t;
	struct stat st;
	uint8_t *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < sizeof(t) + sizeof(Elf64_Ehdr)) {
		close(fd);
		return -1;
	}
	/* private and writable: libelf may write to an image it was given */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return -1;
	}
	memcpy(&t, map + st.st_size - sizeof(t), sizeof(t));
	if (memcmp(t.magic, MAGIC, sizeof(t.magic)) || t.dev != want->dev ||
	    t.ino != want->ino || t.size != want->size || t.mtime_ns != want->mtime_ns ||
	    t.image_size != (uint64_t)st.st_size - sizeof(t) ||
	    memcmp(map, ELFMAG, SELFMAG)) {
		munmap(map, (size_t)st.st_size);
		close(fd);
		return -1;
	}
	(void)futimens(fd, NULL);       /* recently used: kept longest */
	close(fd);
	img->base = (char *)map;
	img->size = (size_t)t.image_size;
	img->mapped = (size_t)st.st_size;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int all_zero(const char *p, size_t n)
{
	static const char zero[BLOCK];

	return !memcmp(p, zero, n);
}

/* Writes IMG and trailer T to FD, skipping whole zero blocks (holes). */
static int write_entry(int fd, const struct mst__image *img, const struct trailer *t)
{
	size_t at;

	for (at = 0; at < img->size; at += BLOCK) {
		size_t n = img->size - at < BLOCK ? img->size - at : BLOCK;

		if (n == BLOCK && all_zero(img->base + at, n)) {
			if (lseek(fd, (off_t)n, SEEK_CUR) < 0)
				return -1;
		} else if (write_all(fd, img->base + at, n) < 0) {
			return -1;
		}
	}
	return write_all(fd, t, sizeof(*t));
}

struct entry {
	char name[64];
	off_t bytes;
	struct timespec used;
};

static int older(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	return (x->used.tv_nsec > y->used.tv_nsec) - (x->used.tv_nsec < y->used.tv_nsec);
}

/*
 * Drops the least recently used entries of DIR until what is left fits
 * MST__CACHE_MAX, and temporary files a run that died left (an hour old).
 */
static void trim(const char *dir)
{
	DIR *d = opendir(dir);
	struct entry *e = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t total = 0;
	struct dirent *de;
	struct timespec now;

	if (!d)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct stat st;

		if (len >= sizeof(e->name) || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (len > 4 && !strcmp(de->d_name + len - 4, ".tmp")) {
			if (st.st_mtim.tv_sec < now.tv_sec - 3600)
				unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (len < 5 || strcmp(de->d_name + len - 4, ".elf"))
			continue;
		if (n == cap) {
			struct entry *ne = realloc(e, (cap = cap ? cap * 2 : 64) * sizeof(*e));

			if (!ne)
				break;
			e = ne;
		}
		memcpy(e[n].name, de->d_name, len + 1);
		e[n].bytes = st.st_blocks * 512;
		e[n].used = st.st_mtim;
		total += (uint64_t)e[n].bytes;
		n++;
	}
	if (total > MST__CACHE_MAX) {
		qsort(e, n, sizeof(*e), older);
		for (i = 0; i < n && total > MST__CACHE_MAX; i++)
			if (unlinkat(dirfd(d), e[i].name, 0) == 0)
				total -= (uint64_t)e[i].bytes;
	}
	free(e);
	closedir(d);
}

/* Stores IMG as the entry at PATH in DIR. */
static void store(const char *dir, const char *path, const struct mst__image *img,
		  const struct trailer *t)
{
	char tmp[PATH_MAX];
	int fd, ok;

	if (make_dirs(dir) != 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ok = write_entry(fd, img, t) == 0;
	if (close(fd) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return;
	}
	trim(dir);
}

int mst__inflate_elf_cached(int fd, struct mst__image *img, int *from_cache)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct trailer t;
	struct stat st;

	*from_cache = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || cache_dir(dir, sizeof(dir)) != 0)
		return mst__inflate_elf(fd, img);
	memset(&t, 0, sizeof(t));
	memcpy(t.magic, MAGIC, sizeof(t.magic));
	t.dev = (uint64_t)st.st_dev;
	t.ino = (uint64_t)st.st_ino;
	t.size = (uint64_t)st.st_size;
	t.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	if (entry_path(path, sizeof(path), dir, &t) != 0)
		return mst__inflate_elf(fd, img);
	if (load(path, &t, img) == 0) {
		*from_cache = 1;
		return 0;
	}
	if (mst__inflate_elf(fd, img) != 0)
		return -1;
	t.image_size = img->size;
	store(dir, path, img, &t);
	return 0;
}
