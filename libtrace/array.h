/*
 * array.h - libtrace's internal growable arrays (not part of the API).
 */
#ifndef MST_ARRAY_H
#define MST_ARRAY_H
#include <stddef.h>

/*
 * Grows *ARRP (an array of *CAP elements of SIZE bytes) to hold at least N,
 * doubling, and zeroes the new part. Returns 0, or -1 when out of memory or
 * when the size would overflow (*ARRP is then unchanged).
 */
int mst__grow(void *arrp, size_t *cap, size_t n, size_t size);
#endif
