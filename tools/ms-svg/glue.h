/*
 * glue.h - from the shared analysis model (and the reader's stack table and
 * the symbolizer) to the plain chart data of chart.h.
 */
#ifndef MS_SVG_GLUE_H
#define MS_SVG_GLUE_H

#include "mstrace.h"
#include "chart.h"

/* What the flame graph's widths are. */
enum flame_at { AT_PEAK, AT_LEAKS, AT_ALL };

struct doc_options {
	int flame;                    /* build the flame tree (costly: symbols) */
	enum flame_at at;
	const char *title;            /* NULL: program and date */
	struct mst_symbolizer *sym;   /* NULL: hex addresses */
};

/* Everything a page needs, owned. */
struct svg_doc {
	struct page page;
	char title[512], subtitle[768], note[96], warning[384];
	char desc[768];               /* metadata: figures as key=value */
	struct tl_bucket *buckets;
	const uint64_t **series;
	const char **series_name;
	char **names;                 /* strings behind series and rows */
	size_t nnames;
	struct thread_row *rows;
	struct flame flame;
	int has_flame;
};

/*
 * Fills D from the finished model M. R (still open) gives the header,
 * stacks and thread names. WARNING, when not NULL, is shown on the page
 * (a truncated or damaged trace). Returns 0, or -1 with ERR on ENOMEM.
 */
int doc_build(struct svg_doc *d, const struct mst_model *m, const struct mst_reader *r,
	      const struct doc_options *o, const char *warning, char *err, size_t errlen);
void doc_release(struct svg_doc *d);

#endif
