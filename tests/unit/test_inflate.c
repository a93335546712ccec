/*
 * test_inflate.c - the inflated copy of an ELF file (libtrace/inflate.c)
 * against the file it stands for. This test program (built with -g) is
 * copied by objcopy with its debug sections compressed (zlib, and zstd
 * where objcopy can); libdw must then tell, for every address of every
 * line-table row, the same file, line and chain of scopes from the
 * inflated copy as from the uncompressed original. Damaged copies must be
 * refused (-1), never read past their end.
 */
#include "inflate.h"
#include "tap.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libdw on a file, or on an inflated copy */
struct dw {
	int fd;
	struct mst__image img;
	Elf *elf;
	Dwarf *dw;
};

static int dw_open(struct dw *d, int fd)
{
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	d->dw = d->elf ? dwarf_begin_elf(d->elf, DWARF_C_READ, NULL) : NULL;
	return d->dw ? 0 : -1;
}

/* The inflated copy of the file on FD; -1 when none is made. */
static int dw_inflated(struct dw *d, int fd)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	if (mst__inflate_elf(fd, &d->img) != 0)
		return -1;
	d->elf = elf_memory(d->img.base, d->img.size);
	d->dw = d->elf ? dwarf_begin_elf(d->elf, DWARF_C_READ, NULL) : NULL;
	return d->dw ? 0 : -1;
}

static void dw_close(struct dw *d)
{
	if (d->dw)
		dwarf_end(d->dw);
	if (d->elf)
		elf_end(d->elf);
	if (d->fd >= 0)
		close(d->fd);
	mst__image_release(&d->img);
}

/* Whether an inflated copy of the file on FD is made. */
static int inflates(int fd)
{
	struct mst__image img;
	int rc = mst__inflate_elf(fd, &img);
	mst__image_release(&img);
	return rc == 0;
}

/* What libdw says of ADDR, as one string: file:line and the scopes. */
static void describe(Dwarf *dw, Dwarf_Addr addr, char *out, size_t size)
{
	Dwarf_Die cu, *scopes = NULL;
	Dwarf_Line *l;
	size_t n = 0;
	int ns, i, line = 0;

	out[0] = 0;
	if (!dwarf_addrdie(dw, addr, &cu)) {
		snprintf(out, size, "no cu");
		return;
	}
	l = dwarf_getsrc_die(&cu, addr);
	if (l) {
		const char *f = dwarf_linesrc(l, NULL, NULL);
		dwarf_lineno(l, &line);
		n = (size_t)snprintf(out, size, "%s:%d", f ? f : "?", line);
	}
	ns = dwarf_getscopes(&cu, addr, &scopes);
	for (i = 0; i < ns && n < size; i++) {
		const char *name = dwarf_diename(&scopes[i]);
		n += (size_t)snprintf(out + n, size - n, " <%d %s>", dwarf_tag(&scopes[i]),
				      name ? name : "-");
	}
	free(scopes);
}

/* Compares ORIG and COPY at every line-table address of ORIG; returns the
 * addresses compared, -1 at the first difference. */
static long compare(Dwarf *orig, Dwarf *copy)
{
	Dwarf_Off off = 0, next;
	size_t hsize;
	long n = 0;

	while (dwarf_nextcu(orig, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		Dwarf_Lines *lines;
		size_t nl, i;
		if (dwarf_offdie(orig, off + hsize, &cu) && dwarf_getsrclines(&cu, &lines, &nl) == 0) {
			for (i = 0; i < nl; i++) {
				Dwarf_Addr a;
				char x[2048], y[2048];
				if (dwarf_lineaddr(dwarf_onesrcline(lines, i), &a) != 0)
					continue;
				describe(orig, a, x, sizeof(x));
				describe(copy, a, y, sizeof(y));
				if (strcmp(x, y)) {
					printf("# %#llx: %s\n#   copy: %s\n", (unsigned long long)a, x, y);
					return -1;
				}
				n++;
			}
		}
		off = next;
	}
	return n;
}

/* Compares the bytes of every .debug_* section of ORIG with the same
 * section of COPY, where the copy keeps it (location lists and macros are
 * left out); returns the sections compared, -1 at a difference. */
static int same_sections(Elf *orig, Elf *copy)
{
	size_t so, sc;
	Elf_Scn *scn = NULL;
	int n = 0;
	if (elf_getshdrstrndx(orig, &so) != 0 || elf_getshdrstrndx(copy, &sc) != 0)
		return -1;
	while ((scn = elf_nextscn(orig, scn)) != NULL) {
		GElf_Shdr sh, ch;
		Elf_Scn *cs = elf_getscn(copy, elf_ndxscn(scn));
		const char *name;
		Elf_Data *a, *b;
		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(orig, so, sh.sh_name)) ||
		    strncmp(name, ".debug_", 7))
			continue;
		if (!cs || !gelf_getshdr(cs, &ch))
			return -1;
		if (ch.sh_type == SHT_NOBITS && (!strcmp(name, ".debug_loclists") ||
		    !strcmp(name, ".debug_loc") || !strncmp(name, ".debug_mac", 10)))
			continue;
		a = elf_getdata(scn, NULL);
		b = elf_getdata(cs, NULL);
		if (!a || !b || (ch.sh_flags & SHF_COMPRESSED) || a->d_size != b->d_size ||
		    memcmp(a->d_buf, b->d_buf, a->d_size)) {
			printf("# section %s differs\n", name);
			return -1;
		}
		n++;
	}
	return n;
}

static int run(const char *cmd)
{
	int rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

/* Where compressed section NAME of the file at PATH lies. */
static int section_at(const char *path, const char *name, off_t *off, size_t *size)
{
	int fd = open(path, O_RDONLY), found = 0;
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0)
		while (!found && (scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr sh;
			const char *n;
			if (gelf_getshdr(scn, &sh) && (n = elf_strptr(elf, shstrndx, sh.sh_name)) &&
			    !strcmp(n, name) && (sh.sh_flags & SHF_COMPRESSED)) {
				*off = (off_t)sh.sh_offset;
				*size = sh.sh_size;
				found = 1;
			}
		}
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
	return found;
}

/* Copies of the zlib-compressed file at PATH, damaged: refused, never read
 * past their end. */
static void damaged(const char *dir, const char *path)
{
	char cpath[800], cmd[2048];
	struct stat st;
	off_t off = 0;
	size_t size = 0;
	int cut, refused = 0, fd;

	snprintf(cpath, sizeof(cpath), "%s/damaged", dir);
	stat(path, &st);
	/* cut short: the section headers (at the end) are gone, or point past it */
	for (cut = 1; cut < 16; cut++) {
		snprintf(cmd, sizeof(cmd), "head -c %lld '%s' > '%s'",
			 (long long)st.st_size * cut / 16, path, cpath);
		if (run(cmd) != 0)
			continue;
		fd = open(cpath, O_RDONLY);
		refused += !inflates(fd);
		close(fd);
	}
	CHECK(refused == 15, "cut copies are refused (%d of 15)", refused);
	/* a byte of the compressed .debug_info flipped: the stream's check
	 * (or its structure) fails */
	CHECK(section_at(path, ".debug_info", &off, &size) && size > 64,
	      ".debug_info is compressed in the copy");
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, cpath);
	if (run(cmd) == 0 && (fd = open(cpath, O_RDWR)) >= 0) {
		unsigned char b;
		off_t at = off + (off_t)size / 2;
		if (pread(fd, &b, 1, at) == 1) {
			b ^= 0x5a;
			if (pwrite(fd, &b, 1, at) != 1)
				b = 0;
		}
		CHECK(!inflates(fd), "a damaged compressed section is refused");
		close(fd);
	}
}

int main(void)
{
	char self[512], dir[] = "/tmp/test_inflate.XXXXXX", path[700], cmd[2048];
	static const char *kinds[] = { "zlib", "zstd" };
	struct dw orig;
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int k, fd;

	elf_version(EV_CURRENT);
	if (len <= 0 || !mkdtemp(dir)) {
		CHECK(0, "set-up");
		return tap_done();
	}
	self[len] = 0;
	CHECK(dw_open(&orig, open(self, O_RDONLY)) == 0, "this program has DWARF");
	fd = open(self, O_RDONLY);
	CHECK(!inflates(fd), "a file without compressed sections: nothing to do");
	close(fd);

	for (k = 0; k < 2; k++) {
		struct dw copy;
		long n;
		int in;
		snprintf(path, sizeof(path), "%s/%s", dir, kinds[k]);
		snprintf(cmd, sizeof(cmd), "objcopy --compress-debug-sections=%s '%s' '%s' 2>/dev/null",
			 kinds[k], self, path);
		if (run(cmd) != 0) {
			/* objcopy built without zstd: nothing to compare */
			CHECK(k == 1, "objcopy compresses with %s", kinds[k]);
			continue;
		}
		/* every length modulo 16: the inflated sections are placed at
		 * the 16-aligned end of the file's bytes */
		fd = open(path, O_RDWR);
		if (fd >= 0) {
			struct stat st;
			int pad, same = 0;
			fstat(fd, &st);
			for (pad = 0; pad < 16; pad++) {
				if (ftruncate(fd, st.st_size + pad) != 0)
					break;
				if (dw_inflated(&copy, fd) == 0 &&
				    same_sections(orig.elf, copy.elf) >= 4)
					same++;
				dw_close(&copy);
			}
			CHECK(same == 16, "%s: at every length modulo 16, the copy's debug sections "
			      "are the original's bytes (%d of 16)", kinds[k], same);
		}
		in = dw_inflated(&copy, fd);
		close(fd);
		CHECK(in == 0, "%s: an inflated copy is made, and libdw opens it", kinds[k]);
		if (in != 0) {
			dw_close(&copy);
			continue;
		}
		n = compare(orig.dw, copy.dw);
		CHECK(n > 100, "%s: libdw reads the same from the copy (%ld addresses)", kinds[k], n);
		dw_close(&copy);

		if (k == 0)
			damaged(dir, path);
	}
	dw_close(&orig);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	run(cmd);
	return tap_done();
}
