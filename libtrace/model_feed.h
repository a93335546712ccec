/*
 * model_feed.h - the private path by which mst_model_read (model.c) takes
 * ALLOC and FREE events from the reader (reader.c) in batches: decoded
 * straight into the model's array, without a call and a copy per event.
 * Not installed; only those two files include it.
 */
#ifndef MODEL_FEED_H
#define MODEL_FEED_H

#include "mstrace.h"

/*
 * An ALLOC or FREE in 40 bytes rather than a record's 72: the batches
 * cross from one core to the other, and their size is what that costs.
 * The fields are those of struct mst_alloc / mst_free; an ALLOC with an
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
 * Decodes up to MAX consecutive ALLOC, FREE and FREE_RECENT records into
 * EV, each as mst_reader_next would deliver it (FREE_RECENT as a FREE).
 * Returns how many; 0 means the next record needs mst_reader_next (another
 * type, one that is not compact, an error to report, the end of a chunk
 * or of the trace).
 */
size_t mst__reader_events(struct mst_reader *r, struct mst__event *ev, size_t max);

#endif
