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
 * An ALLOC or FREE in 40 bytes rather than a record's 72, so that a batch
 * stays in the first-level cache while the model takes it. The fields are those of struct mst_alloc / mst_free; an ALLOC with an
 * alignment or an old address, or a thread or stack number above 32 bits,
 * is not made compact (mst__reader_events stops before it).
 */
struct mst__event {
	uint64_t time, addr;
	uint64_t size;                /* ALLOC; 0 for a FREE */
	uint32_t thread, stack;
	uint8_t type;                 /* MST_REC_ALLOC or MST_REC_FREE */
	uint8_t func;
};

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
