/*
 * model_feed.h - the private path by which mst_model_read (model.c) takes
 * ALLOC and FREE events from the reader (reader.c) in batches, without a
 * call and a copy per event, and has the reader read its chunks ahead on
 * a second thread. Not installed; only those two files include it.
 */
#ifndef MODEL_FEED_H
#define MODEL_FEED_H

#include "mstrace.h"

/*
 * An ALLOC or FREE in 32 bytes rather than a record's 72, so that a batch
 * stays in the first-level cache while the model takes it, two to a cache
 * line (the read-ahead thread writes them on one core and the model reads
 * them on the other). The fields are those of struct mst_alloc /
 * mst_free, the size, function and kind in one word laid out as the live
 * set's blocks hold size and function (model_table.h). An ALLOC with an
 * alignment, an old address or a size over MST__EV_SIZE_MAX, or a thread
 * or stack number above 32 bits, is not made compact (mst__reader_events
 * stops before it).
 */
#define MST__EV_SIZE_MAX ((1ull << 56) - 1)
#define MST__EV_FREE (1ull << 63)

struct mst__event {
	uint64_t time, addr;
	uint64_t word;                /* ALLOC: size in the low 56 bits; the
				       * function in the next 7; MST__EV_FREE
				       * set for a FREE (size 0) */
	uint32_t thread, stack;
};

static inline uint64_t mst__ev_word(int type, unsigned func, uint64_t size)
{
	return (type == MST_REC_FREE ? MST__EV_FREE : size) | (uint64_t)(func & 0x7f) << 56;
}

static inline int mst__ev_type(const struct mst__event *e)
{
	return e->word & MST__EV_FREE ? MST_REC_FREE : MST_REC_ALLOC;
}

static inline unsigned mst__ev_func(const struct mst__event *e)
{
	return (unsigned)(e->word >> 56) & 0x7f;
}

static inline uint64_t mst__ev_size(const struct mst__event *e)
{
	return e->word & MST__EV_FREE ? 0 : e->word & MST__EV_SIZE_MAX;
}

/*
 * Decodes up to MAX consecutive event records (ALLOC, FREE, FREE_REF) into
 * EV, each as mst_reader_next would deliver it (FREE_REF as a FREE).
 * Returns how many; 0 means the next record needs mst_reader_next (another
 * type, one that is not compact, an error to report, the end of a chunk
 * or of the trace).
 */
size_t mst__reader_events(struct mst_reader *r, struct mst__event *ev, size_t max);

/*
 * mst__reader_events without a copy where it can: *EV points to the events,
 * in BUF (room for MAX) or in the reader's own chunk decoded ahead, valid
 * until the next call on R.
 */
size_t mst__reader_events_view(struct mst_reader *r, const struct mst__event **ev,
			       struct mst__event *buf, size_t max);

/*
 * Starts a thread that reads, checks and decompresses the chunks ahead of
 * the one being decoded, until the end of the stream, an error or
 * mst_reader_close. Records, statuses and error messages stay exactly
 * those of reading on one thread: an error in a chunk is given after every
 * record before it. 0, or -1 (out of memory, no thread, a reader already
 * in error) when reading simply goes on on the calling thread.
 */
int mst__reader_prefetch(struct mst_reader *r);

/* The read-ahead thread's CPU time, in ns, once it has read the end (0
 * before, or without one): for diagnostics (MEMSCOPE_LOG=debug). */
uint64_t mst__reader_ahead_cpu_ns(const struct mst_reader *r);

#endif
