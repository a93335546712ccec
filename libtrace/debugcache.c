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
 * followed by a trailer naming the file it was made from: its build-id
 * (what its contents are) and its device, inode, size and modification
 * time (so that a file rewritten in place, build-id and all, is not taken
 * for the old one). A file without a build-id is not cached. A copy whose
 * trailer does not match, or that is cut short, is made again.
 *
 * The folder is trusted only when it is the user's own and nobody else
 * may write to it; entries are opened without following links, made under
 * a new random name (O_EXCL) and renamed into place, so a reader never
 * sees half of one and nobody can steer the writing elsewhere. Missing
 * folders are created only inside one of the user's own (root with
 * another user's HOME makes no ~/.cache there). Each use touches an
 * entry's time; storing one drops the least recently used beyond
 * MST__CACHE_MAX, never the one just stored, and an image larger than a
 * quarter of that is not stored at all.
 */
#include "debugcache.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "MSDBGC2"               /* 8 bytes with its NUL */
#define BLOCK (64u << 10)             /* sparse writing: zero blocks skipped */
#define BID_MAX 64

struct trailer {
	char magic[8];
	uint64_t dev, ino, size, mtime_ns;
	uint64_t bid_len;
	uint8_t bid[BID_MAX];
	uint64_t image_size;          /* last: the entry is image + trailer */
};

/* The cache folder's path into BUF, or -1 when there is none (or it is off). */
static int cache_path(char *buf, size_t len)
{
	const char *e = getenv("MEMSCOPE_CACHE");
	int n;

	if (e && *e) {
		if (!strcmp(e, "off") || *e != '/')
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

/* A folder only this user may change. */
static int own_folder(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & 022);
}

/*
 * Opens the cache folder PATH (O_DIRECTORY), creating what is missing of
 * it (mode 0700) where the folder above is the user's own; -1 when it
 * cannot be had or is not one this user alone may change.
 */
static int open_folder(const char *path, int create)
{
	char p[PATH_MAX];
	size_t i, n = strlen(path);
	struct stat st;
	int fd;

	if (n >= sizeof(p))
		return -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		memcpy(p, path, n + 1);
		for (i = 1; i <= n; i++) {
			if (p[i] != '/' && p[i] != 0)
				continue;
			p[i] = 0;
			if (stat(p, &st) != 0) {
				/* missing: made only in a folder of the user's own */
				char *slash = strrchr(p, '/');
				struct stat up;
				int ok;

				*slash = 0;
				ok = stat(slash == p ? "/" : p, &up) == 0 && up.st_uid == geteuid();
				*slash = '/';
				if (!ok || (mkdir(p, 0700) != 0 && errno != EEXIST))
					return -1;
			}
			p[i] = path[i];
		}
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !own_folder(&st)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The GNU build-id note of the ELF file MAP (SIZE bytes) into T, from its
 * SHT_NOTE sections; -1 when it has none.
 */
static int build_id(const uint8_t *map, size_t size, struct trailer *t)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;
	const Elf64_Shdr *sh;
	size_t i;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shoff % 8 || eh->e_shoff > size ||
	    (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum)
		return -1;
	sh = (const Elf64_Shdr *)(map + eh->e_shoff);
	for (i = 0; i < eh->e_shnum; i++) {
		uint64_t at, end;

		if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset > size ||
		    sh[i].sh_size > size - sh[i].sh_offset)
			continue;
		at = sh[i].sh_offset;
		end = at + sh[i].sh_size;
		while (end - at >= sizeof(Elf64_Nhdr)) {
			Elf64_Nhdr nh;
			uint64_t name, desc;

			memcpy(&nh, map + at, sizeof(nh));
			name = (nh.n_namesz + 3) & ~3ull;
			desc = (nh.n_descsz + 3) & ~3ull;
			if (name > end - at - sizeof(nh) || desc > end - at - sizeof(nh) - name)
				break;
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp(map + at + sizeof(nh), "GNU", 4) &&
			    nh.n_descsz && nh.n_descsz <= BID_MAX) {
				t->bid_len = nh.n_descsz;
				memcpy(t->bid, map + at + sizeof(nh) + name, nh.n_descsz);
				return 0;
			}
			at += sizeof(nh) + name + desc;
		}
	}
	return -1;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 1099511628211ull;
	return h;
}

/* The entry's name for the file T describes. */
static void entry_name(char *buf, size_t len, const struct trailer *t)
{
	uint64_t h = fnv(1469598103934665603ull, t, offsetof(struct trailer, image_size));

	snprintf(buf, len, "%016llx.elf", (unsigned long long)h);
}

/* Maps entry NAME of folder DFD into IMG when its trailer is WANT's. */
static int load(int dfd, const char *name, const struct trailer *want,
		struct mst__image *img)
{
	struct trailer t;
	struct stat st;
	uint8_t *map;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
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
	if (memcmp(&t, want, offsetof(struct trailer, image_size)) ||
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
	uint64_t bytes;
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
 * Drops the least recently used entries of folder DFD until what is left
 * fits MST__CACHE_MAX (never KEEP, the one just stored), and temporary
 * files that a run which died left (an hour old).
 */
static void trim(int dfd, const char *keep)
{
	/* a description of its own: a dup would share (and move) DFD's offset */
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct entry *e = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t total = 0;
	struct dirent *de;
	struct timespec now;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct stat st;

		if (len >= sizeof(e->name) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (len > 4 && !strcmp(de->d_name + len - 4, ".tmp")) {
			if (st.st_mtim.tv_sec < now.tv_sec - 3600)
				unlinkat(dfd, de->d_name, 0);
			continue;
		}
		if (len < 5 || strcmp(de->d_name + len - 4, ".elf"))
			continue;
		total += (uint64_t)st.st_blocks * 512;
		if (!strcmp(de->d_name, keep))
			continue;
		if (n == cap) {
			struct entry *ne = realloc(e, (cap = cap ? cap * 2 : 64) * sizeof(*e));

			if (!ne)
				break;
			e = ne;
		}
		memcpy(e[n].name, de->d_name, len + 1);
		e[n].bytes = (uint64_t)st.st_blocks * 512;
		e[n].used = st.st_mtim;
		n++;
	}
	if (total > MST__CACHE_MAX) {
		qsort(e, n, sizeof(*e), older);
		for (i = 0; i < n && total > MST__CACHE_MAX; i++)
			if (unlinkat(dfd, e[i].name, 0) == 0)
				total -= e[i].bytes;
	}
	free(e);
	closedir(d);
}

/* Stores IMG as entry NAME of folder DFD: written under a new name of
 * its own, then renamed into place. */
static void store(int dfd, const char *name, const struct mst__image *img,
		  const struct trailer *t)
{
	char tmp[96];
	int fd = -1, ok, tries;

	if (img->size > MST__CACHE_MAX / 4)
		return;
	for (tries = 0; tries < 8 && fd < 0; tries++) {
		uint64_t r;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint64_t)getpid() << 32 ^ (uint64_t)clock();
		snprintf(tmp, sizeof(tmp), "%s.%016llx.tmp", name, (unsigned long long)r);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (fd < 0 && errno != EEXIST)
			return;
	}
	if (fd < 0)
		return;
	ok = write_entry(fd, img, t) == 0;
	if (close(fd) != 0)
		ok = 0;
	if (!ok || renameat(dfd, tmp, dfd, name) != 0) {
		unlinkat(dfd, tmp, 0);
		return;
	}
	trim(dfd, name);
}

/* mst__inflate_elf_cached for the file MAP (SIZE bytes) that ST describes. */
static int through_cache(const uint8_t *map, size_t size, const struct stat *st,
			 struct mst__image *img)
{
	char path[PATH_MAX], name[64];
	struct trailer t;
	int dfd;

	memset(&t, 0, sizeof(t));
	/* what the file holds now: its build-id (a few pages read) */
	if (cache_path(path, sizeof(path)) != 0 || build_id(map, size, &t) != 0)
		return mst__inflate_map(map, size, img);
	memcpy(t.magic, MAGIC, sizeof(t.magic));
	t.dev = (uint64_t)st->st_dev;
	t.ino = (uint64_t)st->st_ino;
	t.size = (uint64_t)st->st_size;
	t.mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
	entry_name(name, sizeof(name), &t);
	dfd = open_folder(path, 0);
	if (dfd >= 0 && load(dfd, name, &t, img) == 0) {
		close(dfd);
		return 0;
	}
	if (mst__inflate_map(map, size, img) != 0) {
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	if (dfd < 0)
		dfd = open_folder(path, 1);
	if (dfd >= 0) {
		t.image_size = img->size;
		store(dfd, name, img, &t);
		close(dfd);
	}
	return 0;
}

int mst__inflate_elf_cached(int fd, struct mst__image *img)
{
	/* mapped once, for the build-id and for the inflating */
	return mst__inflate_with(fd, img, through_cache);
}
