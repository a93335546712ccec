/*
 * debugcache.h - inflated debug images (inflate.h) kept on disk between
 * runs, the way debuginfod's client keeps the files it fetched.
 *
 * Internal to libtrace (symbols.c).
 */
#ifndef MSTRACE_DEBUGCACHE_H
#define MSTRACE_DEBUGCACHE_H

#include "inflate.h"

/*
 * mst__inflate_elf for the ELF file open on FD, through the cache: a copy
 * made by an earlier run for the same file (same build-id, device, inode,
 * size and modification time) is mapped instead of inflating again; a new
 * copy is stored for the next run. The cache is $MEMSCOPE_CACHE (an
 * absolute folder, or "off"), else $XDG_CACHE_HOME/memscope, else
 * ~/.cache/memscope, used only when it is the user's own; it keeps
 * at most MST__CACHE_MAX bytes, dropping the least recently used copies.
 * Anything the cache cannot do (no home, a read-only or full disk, a
 * damaged copy) only costs the inflating. Returns 0 or -1 like
 * mst__inflate_elf.
 */
int mst__inflate_elf_cached(int fd, struct mst__image *img);

#ifndef MST__CACHE_MAX                 /* (a test makes it smaller) */
#define MST__CACHE_MAX (512ull << 20)
#endif

#endif
