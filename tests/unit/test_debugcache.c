/*
 * test_debugcache.c - the debug image cache's bookkeeping, with a cap of
 * 1 MiB so that it can be reached: entries stored and mapped back byte
 * for byte (holes kept as holes), the least recently used dropped first
 * but never the one just stored, an image over a quarter of the cap not
 * stored, temporary files of dead runs cleared, links neither followed
 * nor counted, a trailer that names another file refused, and the
 * build-id read from an ELF file's notes.
 */
#define MST__CACHE_MAX (1ull << 20)
#include "../../libtrace/debugcache.c"
#include "tap.h"

#include <sys/stat.h>

static char dir[] = "/tmp/test_debugcache.XXXXXX";

/* A file NAME of BYTES real bytes, last used SECONDS ago. */
static void make_file(int dfd, const char *name, size_t bytes, long seconds)
{
	static char buf[64 << 10];
	struct timespec ts[2];
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	memset(buf, 'x', sizeof(buf));
	for (size_t at = 0; at < bytes; at += sizeof(buf))
		if (write(fd, buf, bytes - at < sizeof(buf) ? bytes - at : sizeof(buf)) < 0)
			break;
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= seconds;
	ts[1] = ts[0];
	futimens(fd, ts);
	close(fd);
}

static int exists(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static struct trailer trailer_for(uint64_t ino)
{
	struct trailer t;

	memset(&t, 0, sizeof(t));
	memcpy(t.magic, MAGIC, sizeof(t.magic));
	t.dev = 1;
	t.ino = ino;
	t.size = 1000;
	t.mtime_ns = 42;
	t.bid_len = 20;
	memset(t.bid, 0xab, 20);
	return t;
}

int main(void)
{
	struct mst__image img = { 0 }, back = { 0 };
	struct trailer t = trailer_for(7), other;
	struct stat st;
	char name[64];
	int dfd, fd;

	if (!mkdtemp(dir))
		return 1;
	chmod(dir, 0700);
	dfd = open_folder(dir, 0);
	CHECK(dfd >= 0, "a folder of the user's own, 0700, is taken");

	/* an image of 240 KiB: an ELF header, a hole of 128 KiB, bytes */
	img.size = img.mapped = 240 << 10;
	img.base = calloc(1, img.size);
	memcpy(img.base, ELFMAG, SELFMAG);
	for (size_t i = 192 << 10; i < img.size; i++)
		img.base[i] = (char)(i * 7);
	t.image_size = img.size;
	entry_name(name, sizeof(name), &t);
	store(dfd, name, &img, &t);
	CHECK(fstatat(dfd, name, &st, 0) == 0 && (uint64_t)st.st_size == img.size + sizeof(t),
	      "stored: image and trailer");
	CHECK((uint64_t)st.st_blocks * 512 < img.size - (64 << 10), "the hole stays a hole (%lld bytes on disk)",
	      (long long)st.st_blocks * 512);
	CHECK((st.st_mode & 0777) == 0400, "the entry is read-only (%o)", st.st_mode & 0777);
	CHECK(load(dfd, name, &t, &back) == 0 && back.size == img.size &&
	      !memcmp(back.base, img.base, img.size), "mapped back byte for byte");
	mst__image_release(&back);
	other = trailer_for(8);
	other.image_size = img.size;
	CHECK(load(dfd, name, &other, &back) != 0, "a trailer naming another file is refused");
	other = trailer_for(7);
	other.bid[3] ^= 1;
	CHECK(load(dfd, name, &other, &back) != 0, "another build-id is refused");

	/* over the cap: oldest first, never the one just stored */
	make_file(dfd, "a.elf", 400 << 10, 400);
	make_file(dfd, "b.elf", 400 << 10, 300);
	make_file(dfd, "c.elf", 400 << 10, 200);
	make_file(dfd, "old.x.tmp", 10, 7200);
	make_file(dfd, "new.x.tmp", 10, 10);
	CHECK(symlinkat("/etc/passwd", dfd, "link.elf") == 0, "a link among the entries");
	/* NAME (just stored, but 'used' before the others) and a, b, c:
	 * some 1.3 MiB; without a, 0.9 */
	{
		struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
		utimensat(dfd, name, ts, 0);
	}
	trim(dfd, name);
	CHECK(exists(dfd, name), "the entry just stored is kept, however old");
	CHECK(!exists(dfd, "a.elf") && exists(dfd, "b.elf") && exists(dfd, "c.elf"),
	      "the least recently used go first, until it fits (a %d b %d c %d)",
	      exists(dfd, "a.elf"), exists(dfd, "b.elf"), exists(dfd, "c.elf"));
	CHECK(!exists(dfd, "old.x.tmp") && exists(dfd, "new.x.tmp"),
	      "a dead run's temporary file is cleared, a live one's is not");
	CHECK(exists(dfd, "link.elf") && access("/etc/passwd", F_OK) == 0,
	      "a link is neither counted, followed nor removed");

	/* an image over a quarter of the cap is not stored */
	free(img.base);
	img.size = img.mapped = (MST__CACHE_MAX / 4) + 1;
	img.base = calloc(1, img.size);
	memcpy(img.base, ELFMAG, SELFMAG);
	t = trailer_for(9);
	t.image_size = img.size;
	entry_name(name, sizeof(name), &t);
	store(dfd, name, &img, &t);
	CHECK(!exists(dfd, name), "an image over a quarter of the cap is not stored");
	free(img.base);

	/* folders others may write to are not taken */
	close(dfd);
	chmod(dir, 0777);
	CHECK(open_folder(dir, 0) < 0, "a folder others may write to is refused");
	chmod(dir, 0700);

	/* the build-id of this program, from its notes */
	fd = open("/proc/self/exe", O_RDONLY);
	if (fd >= 0 && fstat(fd, &st) == 0) {
		void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		struct trailer b;

		memset(&b, 0, sizeof(b));
		CHECK(map != MAP_FAILED && build_id(map, (size_t)st.st_size, &b) == 0 &&
		      b.bid_len == 20, "the build-id note is found (%llu bytes)",
		      (unsigned long long)b.bid_len);
		munmap(map, (size_t)st.st_size);
		close(fd);
	}

	/* clean up */
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	{
		DIR *d = fdopendir(dup(dfd));
		struct dirent *de;

		while (d && (de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlinkat(dfd, de->d_name, 0);
		if (d)
			closedir(d);
	}
	close(dfd);
	rmdir(dir);
	return tap_done();
}
