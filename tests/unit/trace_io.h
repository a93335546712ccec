/*
 * trace_io.h - helpers for libtrace's tests: a writer sink into memory,
 * writing a seeded random trace (trace_gen.h) into it, and opening a reader
 * on bytes through a memfd. Header-only, static, like trace_gen.h.
 */
#ifndef TRACE_IO_H
#define TRACE_IO_H

#include "mstrace.h"
#include "trace_gen.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct membuf {
	uint8_t *p;
	size_t len, cap;
	size_t chunk_ends[4096];      /* stream offset after each sink call */
	size_t ncalls;
};

static inline int membuf_sink(void *ctx, const void *buf, size_t len)
{
	struct membuf *m = ctx;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + len)
			cap *= 2;
		m->p = realloc(m->p, cap);
		if (!m->p)
			return MST_ERR_NOMEM;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	if (m->ncalls < 4096)
		m->chunk_ends[m->ncalls] = m->len;
	m->ncalls++;
	return 0;
}

static inline void membuf_free(struct membuf *m)
{
	free(m->p);
	memset(m, 0, sizeof(*m));
}

/*
 * Writes HEADER, NREC random records (seed SEED) and, when WITH_END, an
 * END, into M. Returns 0 or the first failing status.
 */
static inline int write_random_trace(struct membuf *m, uint64_t seed, int nrec,
				     size_t chunk_size, int level, int wide, int with_end)
{
	struct mst_writer_options o = { .chunk_size = chunk_size, .zstd_level = level,
					.sink = membuf_sink, .sink_ctx = m };
	struct mst_writer *w;
	struct mst_record rec;
	struct gen g;
	int st;

	gen_init(&g, seed);
	st = mst_writer_open(&w, -1, &o);
	if (st)
		goto out;
	gen_header(&g, &rec);
	st = mst_writer_add(w, &rec);
	for (int i = 0; i < nrec && !st; i++) {
		gen_next(&g, &rec, wide);
		st = mst_writer_add(w, &rec);
	}
	if (!st && with_end) {
		gen_end(&g, &rec, mst_writer_events(w));
		st = mst_writer_add(w, &rec);
	}
	if (st)
		fprintf(stderr, "# writer: %s\n", mst_writer_error(w));
out:
	if (!st)
		st = mst_writer_close(w);
	else
		mst_writer_close(w);
	return st;
}

/* A reader on a copy of BUF..LEN through a memfd (a real fd, not a file);
 * *FD is closed by close_bytes() after the reader. */
static inline int open_bytes(struct mst_reader **r, int *fd, const void *buf, size_t len)
{
	*r = NULL;
	*fd = memfd_create("trace", MFD_CLOEXEC);
	if (*fd < 0)
		return MST_ERR_IO;
	if (len && write(*fd, buf, len) != (ssize_t)len)
		return MST_ERR_IO;
	lseek(*fd, 0, SEEK_SET);
	return mst_reader_open_fd(r, *fd, "memfd");
}

static inline void close_bytes(struct mst_reader *r, int fd)
{
	mst_reader_close(r);
	if (fd >= 0)
		close(fd);
}

#endif
