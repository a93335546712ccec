/*
 * inflate.c - an ELF file's compressed debug sections, inflated ahead of
 * libdw.
 *
 * A distribution's debug files keep their .debug_* sections compressed
 * (SHF_COMPRESSED, zlib), and libdw inflates every one of them with zlib
 * when it opens the file: for libc that was some 40 ms of every ms-stats run,
 * the largest part of its time on a trace of a few million events.
 * libdeflate inflates the same streams about 2.5 times as fast, and the
 * location lists (a sixth of the work) are never read by symbolization. So
 * the symbolizer hands libdw (elf_memory) a copy of the file whose debug
 * sections are stored inflated: the file's bytes where they were, but for
 * the compressed sections, which are left as holes, then the inflated
 * sections, and the section headers pointing there. The copy is anonymous
 * memory in huge pages where the kernel gives them: in 4 KiB pages, faulting
 * in and clearing some 3,000 of them for libc cost half as much as the
 * inflating. Sections compressed with zstd, which this libelf cannot read at
 * all, are inflated too.
 */
#include "inflate.h"

#include <elf.h>
#include <libdeflate.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define HUGE_PAGE (2u << 20)

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2
#endif

/* A section larger than this inflated is left to libdw. */
#define MAX_INFLATED (1ull << 30)

/* Sections symbolization never reads: left out of the copy. */
static int unused(const char *name)
{
	return !strcmp(name, ".debug_loclists") || !strcmp(name, ".debug_loc") ||
	       !strcmp(name, ".debug_macro") || !strcmp(name, ".debug_macinfo");
}

/* The compression header of section SH (named NAME), when it is a
 * compressed debug section the copy inflates; NULL otherwise. */
static const Elf64_Chdr *compressed(const uint8_t *map, size_t size, const Elf64_Shdr *sh,
				    const char *name)
{
	const Elf64_Chdr *ch;
	if (!(sh->sh_flags & SHF_COMPRESSED) || sh->sh_type == SHT_NOBITS ||
	    strncmp(name, ".debug_", 7) || sh->sh_offset > size ||
	    sh->sh_size > size - sh->sh_offset || sh->sh_size < sizeof(*ch) ||
	    sh->sh_offset % 8)
		return NULL;
	ch = (const Elf64_Chdr *)(map + sh->sh_offset);
	if ((ch->ch_type != ELFCOMPRESS_ZLIB && ch->ch_type != ELFCOMPRESS_ZSTD) ||
	    ch->ch_size > MAX_INFLATED)
		return NULL;
	return ch;
}

/* Inflates section SH (header CH) of MAP into OUT (CH->ch_size bytes). */
static int inflate_one(struct libdeflate_decompressor *d, const uint8_t *map,
		       const Elf64_Shdr *sh, const Elf64_Chdr *ch, uint8_t *out)
{
	const uint8_t *in = map + sh->sh_offset + sizeof(*ch);
	size_t in_len = sh->sh_size - sizeof(*ch), got = 0;

	if (ch->ch_type == ELFCOMPRESS_ZSTD) {
		size_t n = ZSTD_decompress(out, ch->ch_size, in, in_len);
		return !ZSTD_isError(n) && n == ch->ch_size ? 0 : -1;
	}
	if (libdeflate_zlib_decompress(d, in, in_len, out, ch->ch_size, &got) !=
	    LIBDEFLATE_SUCCESS || got != ch->ch_size)
		return -1;
	return 0;
}

/* Maps SIZE bytes of anonymous memory into IMG, on huge pages if it may. */
static int image_map(struct mst__image *img, size_t size)
{
	size_t len = (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
	char *p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t lead;

	if (p == MAP_FAILED)
		return -1;
	/* a start on a huge-page boundary, the slack given back */
	lead = (size_t)(-(uintptr_t)p & (HUGE_PAGE - 1));
	if (lead)
		munmap(p, lead);
	munmap(p + lead + len, HUGE_PAGE - lead);
	img->base = p + lead;
	img->size = size;
	img->mapped = len;
	madvise(img->base, len, MADV_HUGEPAGE);
	return 0;
}

void mst__image_release(struct mst__image *img)
{
	if (img->base)
		munmap(img->base, img->mapped);
	img->base = NULL;
	img->size = img->mapped = 0;
}

int mst__inflate_map(const uint8_t *map, size_t size, struct mst__image *img)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;
	const Elf64_Shdr *sh;
	const char *names;
	struct libdeflate_decompressor *d = NULL;
	uint64_t total = (size + 15) & ~15ull, at, from = 0;
	Elf64_Shdr *nsh;
	size_t i, n, nsz;
	int found = 0, rc = -1;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || !eh->e_shnum ||
	    eh->e_shstrndx == SHN_UNDEF || eh->e_shstrndx >= eh->e_shnum ||
	    eh->e_shoff % 8 || eh->e_shoff > size ||
	    (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum)
		return -1;
	n = eh->e_shnum;
	sh = (const Elf64_Shdr *)(map + eh->e_shoff);
	if (sh[eh->e_shstrndx].sh_offset > size ||
	    sh[eh->e_shstrndx].sh_size > size - sh[eh->e_shstrndx].sh_offset ||
	    (sh[eh->e_shstrndx].sh_flags & SHF_COMPRESSED))
		return -1;
	names = (const char *)map + sh[eh->e_shstrndx].sh_offset;
	nsz = sh[eh->e_shstrndx].sh_size;
	if (!nsz || names[nsz - 1])
		return -1;            /* names must end inside their table */
	for (i = 0; i < n; i++) {
		const char *name = sh[i].sh_name < nsz ? names + sh[i].sh_name : "";
		const Elf64_Chdr *ch = compressed(map, size, &sh[i], name);
		if (!ch)
			continue;
		found = 1;
		if (!unused(name))
			total += (ch->ch_size + 15) & ~15ull;
	}
	if (!found || total > SIZE_MAX / 2 || image_map(img, (size_t)total) < 0)
		return -1;
	d = libdeflate_alloc_decompressor();
	if (!d)
		goto out;
	/* the file's bytes, but for the compressed sections' (a compressed
	 * section may share no byte with another section: checked as it goes) */
	for (i = 0; i < n; i++) {
		const char *name = sh[i].sh_name < nsz ? names + sh[i].sh_name : "";
		if (!compressed(map, size, &sh[i], name))
			continue;
		if (sh[i].sh_offset < from)
			goto out;     /* out of order or overlapping: left to libdw */
		memcpy(img->base + from, map + from, sh[i].sh_offset - from);
		from = sh[i].sh_offset + sh[i].sh_size;
	}
	memcpy(img->base + from, map + from, size - from);
	nsh = (Elf64_Shdr *)(img->base + eh->e_shoff);
	at = (size + 15) & ~15ull;      /* the inflated sections follow */
	for (i = 0; i < n; i++) {
		const char *name = sh[i].sh_name < nsz ? names + sh[i].sh_name : "";
		const Elf64_Chdr *ch = compressed(map, size, &sh[i], name);
		if (!ch)
			continue;
		if (unused(name)) {
			/* libdw does not look into a section without bits */
			nsh[i].sh_type = SHT_NOBITS;
			nsh[i].sh_flags &= ~(uint64_t)SHF_COMPRESSED;
			nsh[i].sh_size = 0;
			continue;
		}
		if (inflate_one(d, map, &sh[i], ch, (uint8_t *)img->base + at) < 0)
			goto out;
		nsh[i].sh_offset = at;
		nsh[i].sh_size = ch->ch_size;
		nsh[i].sh_addralign = ch->ch_addralign;
		nsh[i].sh_flags &= ~(uint64_t)SHF_COMPRESSED;
		at += (ch->ch_size + 15) & ~15ull;
	}
	rc = 0;
out:
	if (d)
		libdeflate_free_decompressor(d);
	if (rc < 0)
		mst__image_release(img);
	return rc;
}

int mst__inflate_with(int fd, struct mst__image *img,
		      int (*build)(const uint8_t *map, size_t size, const struct stat *st,
				   struct mst__image *img))
{
	struct stat st;
	void *map;
	int rc;

	img->base = NULL;
	img->size = img->mapped = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr))
		return -1;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -1;
	rc = build(map, (size_t)st.st_size, &st, img);
	munmap(map, (size_t)st.st_size);
	return rc;
}

static int build_plain(const uint8_t *map, size_t size, const struct stat *st,
		       struct mst__image *img)
{
	(void)st;
	return mst__inflate_map(map, size, img);
}

int mst__inflate_elf(int fd, struct mst__image *img)
{
	return mst__inflate_with(fd, img, build_plain);
}
