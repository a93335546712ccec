/*
 * model_feed.h - the private path by which mst_model_read (model.c) takes
 * ALLOC and FREE events from the reader (reader.c) in batches: decoded
 * straight into the model's array, without a call and a copy per event.
 * Not installed; only those two files include it.
 */
#ifndef MODEL_FEED_H
#define MODEL_FEED_H

#include "mstrace.h"

struct mst__event {
	uint8_t type;                 /* MST_REC_ALLOC or MST_REC_FREE */
	union {
		struct mst_alloc a;
		struct mst_free f;
	} u;
};

/*
 * Decodes up to MAX consecutive ALLOC, FREE and FREE_RECENT records into
 * EV, each exactly as mst_reader_next would deliver it (FREE_RECENT as a
 * FREE). Returns how many; 0 means the next record needs mst_reader_next
 * (another type, an error to report, the end of a chunk or of the trace).
 */
size_t mst__reader_events(struct mst_reader *r, struct mst__event *ev, size_t max);

#endif
