/*
 * inflate.h - an ELF file's compressed debug sections, inflated ahead of
 * libdw (inflate.c). Internal to libtrace.
 */
#ifndef MSTRACE_INFLATE_H
#define MSTRACE_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/* A copy of an ELF file in memory, for elf_memory(). */
struct mst__image {
	char *base;
	size_t size;                  /* of the ELF image */
	size_t mapped;                /* of the mapping */
};

/*
 * Makes in IMG a copy of the ELF file open on FD in which every compressed
 * .debug_* section is stored inflated, and the location lists and macros,
 * which symbolization never reads, are left out. Returns 0, or -1 when
 * there is nothing to gain or it cannot be done (no compressed debug
 * section, not a 64-bit little-endian ELF file, damage, no memory): IMG is
 * then empty. FD stays the caller's.
 */
int mst__inflate_elf(int fd, struct mst__image *img);
/* The same for the file's bytes MAP (SIZE bytes), already mapped. */
int mst__inflate_map(const uint8_t *map, size_t size, struct mst__image *img);
/* Maps the file open on FD (a regular file that can hold an ELF header;
 * -1 otherwise, IMG empty) and returns what BUILD makes of its bytes and
 * status: mst__inflate_elf with a step of the caller's in between. */
struct stat;
int mst__inflate_with(int fd, struct mst__image *img,
		      int (*build)(const uint8_t *map, size_t size, const struct stat *st,
				   struct mst__image *img));
void mst__image_release(struct mst__image *img);

#endif
