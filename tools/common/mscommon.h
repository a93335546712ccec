/*
 * mscommon.h - the helpers every memscope tool shares: messages in git's
 * style ("ms-stats: cannot open 'x': No such file or directory"), number
 * and size parsing, and opening "-" or a file for output.
 */
#ifndef MSCOMMON_H
#define MSCOMMON_H
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of the analysis tools (README "Exit status"). */
enum { MSC_EXIT_OK = 0, MSC_EXIT_FAIL = 1, MSC_EXIT_USAGE = 2 };

void msc_set_prog(const char *name);
const char *msc_prog(void);
/* "prog: message\n" on stderr. */
void msc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Debug lines, shown when MEMSCOPE_LOG=debug. */
void msc_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "64MiB", "1.5G", "4096", "10KB" (KB/KiB/K all mean 1024) -> bytes.
 * Returns 0, or -1 for text that is not a size. */
int msc_parse_size(const char *s, uint64_t *out);
/* A whole decimal number; -1 unless the whole text is one. */
int msc_parse_u64(const char *s, uint64_t *out);
int msc_parse_double(const char *s, double *out);

/* Whether DETAIL (a libtrace error detail) already quotes NAME, as in
 * "cannot open 'x': ...", so a message need not name the file twice. */
int msc_detail_names(const char *detail, const char *name);

/* "1.5 MiB" into BUF (at least 32 bytes); returns BUF. */
char *msc_format_bytes(uint64_t bytes, char *buf);

/*
 * Opens PATH for writing ("-" or NULL: stdout). When BINARY and the output
 * is a terminal, refuses with a message. Returns NULL after printing the
 * error.
 */
FILE *msc_open_output(const char *path, int binary);
/* Closes what msc_open_output returned; reports a write error (a full disk,
 * /dev/full) and returns -1. Closes stdout too, so call it once. */
int msc_close_output(FILE *f, const char *path);
#endif
