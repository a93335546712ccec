/*
 * mstrace_symbols.h - offline symbolization (part of mstrace.h; include that).
 *
 * Resolves instruction pointers recorded in a trace to function, file and
 * line, inlined frames included, from the module maps the trace recorded
 * (path, load bias, build-id), with elfutils libdw. An embedded SYMBOLS
 * table (ms-convert --symbolize) is used first when the trace has one.
 * Results are cached per address: a big trace never resolves the same
 * address twice.
 */
#ifndef MSTRACE_SYMBOLS_H
#define MSTRACE_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mst_reader;
struct mst_symbolizer;
struct mst_module_load;
struct mst_model;

struct mst_frame {
	const char *function;         /* demangled when possible; NULL unknown */
	const char *file;             /* NULL unknown */
	uint64_t line;                /* 0 unknown */
	const char *module;           /* path of the module, NULL unknown */
	uint64_t module_offset;       /* ip relative to the module's load bias */
	int inlined;                  /* an inlined frame inside the next one */
};

#define MST_SYM_NO_DEBUGINFO 0x1u     /* names only, from ELF symbol tables */
#define MST_SYM_NO_LOOKUP 0x2u        /* no files at all: addresses only */

/* R supplies the module table; it must outlive the symbolizer. */
int mst_symbolizer_new(struct mst_symbolizer **out, const struct mst_reader *r,
		       unsigned flags);

/*
 * Resolves IP into FRAMES (at most MAX), innermost inlined frame first and
 * the real function last. Returns the number of frames (>= 1: an unknown
 * address still yields one frame with function NULL and, when the module is
 * known, module and module_offset). Strings are borrowed until free.
 * IS_RETURN_ADDR: IP is a return address (all frames but the innermost of a
 * stack), so the call instruction before it is looked up.
 */
size_t mst_symbolize(struct mst_symbolizer *s, uint64_t ip, int is_return_addr,
		     struct mst_frame *frames, size_t max);

/*
 * Adds an embedded SYMBOLS table (a record as the reader delivers it; the
 * contents are copied). Feed every SYMBOLS record the trace holds: its
 * entries are used before the module's ELF file. Returns 0 or
 * MST_ERR_NOMEM.
 */
int mst_symbolizer_add_symbols(struct mst_symbolizer *s, const struct mst_symbols *syms);

/*
 * Optional: starts opening ML's ELF and debug information on a background
 * thread, so that mst_symbolize finds it ready. Call it while the trace is
 * read for the modules whose frames will be named (ms-stats: those of its
 * sites' stacks so far); ML's contents are copied. The slow part of
 * symbolizing then overlaps the reading. Results and warnings are exactly
 * those without it; a module never asked about is dropped silently, having
 * cost CPU time for nothing. Does nothing with MST_SYM_NO_LOOKUP, on one CPU
 * or with MEMSCOPE_THREADS=1. Returns 0 or MST_ERR_NOMEM.
 */
int mst_symbolizer_prepare(struct mst_symbolizer *s, const struct mst_module_load *ml);

/*
 * mst_symbolizer_prepare for the modules of the frames of the sites model M
 * has met since the last call: those a report may name (every module of
 * the run would load some that no frame of the report is in, libm's or the
 * dynamic loader's debug files, say). Call it from mst_model_read's OTHER
 * callback: it reads the stacks from the symbolizer's reader, which is then
 * paused. Each stack node is looked at once, so the work is bounded by the
 * trace's stack nodes, whatever the sites. Returns 0 or MST_ERR_NOMEM.
 */
int mst_symbolizer_prepare_sites(struct mst_symbolizer *s, const struct mst_model *m);

/* Warnings met so far (build-id mismatch, missing file), one a line, or "". */
const char *mst_symbolizer_warnings(const struct mst_symbolizer *s);

void mst_symbolizer_free(struct mst_symbolizer *s);

#ifdef __cplusplus
}
#endif
#endif
