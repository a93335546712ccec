/*
 * demo - the program `make demo` records: a small "service" whose memory
 * has a story to tell in every memscope view.
 *   1. load: builds a word index (a hash table of strings that grows by
 *      realloc) from generated text;
 *   2. cache: fills a cache of 64 KiB pages up to a peak of about 8 MiB,
 *      then trims it to a quarter;
 *   3. work: four worker threads parse "requests" with short-lived buffers
 *      and hand results back to the main thread, which frees them
 *      (cross-thread frees);
 *   4. shutdown: frees almost everything, but forgets the trimmed cache
 *      pages and one index bucket array (the leaks the reports point at).
 * Runs in well under a second; output is one line per phase.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct word {
	char *text;
	unsigned count;
	struct word *next;
};

struct index {
	struct word **buckets;
	size_t nbuckets, nwords;
};

/* Per thread: the workers draw their own sequence, so the figures do not
 * depend on how the threads interleave. */
static __thread uint32_t rng = 12345;

static uint32_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static size_t hash(const char *s)
{
	size_t h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static void index_grow(struct index *ix)
{
	size_t n = ix->nbuckets ? ix->nbuckets * 2 : 64, i;
	struct word **b = calloc(n, sizeof(*b));

	if (!b)
		abort();
	for (i = 0; i < ix->nbuckets; i++) {
		struct word *w = ix->buckets[i], *nx;
		for (; w; w = nx) {
			size_t h = hash(w->text) & (n - 1);
			nx = w->next;
			w->next = b[h];
			b[h] = w;
		}
	}
	free(ix->buckets);
	ix->buckets = b;
	ix->nbuckets = n;
}

static void index_add(struct index *ix, const char *text)
{
	struct word *w;
	size_t h;

	if (ix->nwords >= ix->nbuckets)
		index_grow(ix);
	h = hash(text) & (ix->nbuckets - 1);
	for (w = ix->buckets[h]; w; w = w->next) {
		if (strcmp(w->text, text) == 0) {
			w->count++;
			return;
		}
	}
	w = malloc(sizeof(*w));
	if (!w || !(w->text = strdup(text)))
		abort();
	w->count = 1;
	w->next = ix->buckets[h];
	ix->buckets[h] = w;
	ix->nwords++;
}

static void index_free(struct index *ix)
{
	size_t i;
	for (i = 0; i < ix->nbuckets; i++) {
		struct word *w = ix->buckets[i], *nx;
		for (; w; w = nx) {
			nx = w->next;
			free(w->text);
			free(w);
		}
	}
	/* The leak: the bucket array itself is forgotten. */
	ix->buckets = NULL;
}

static void *worker(void *arg)
{
	size_t id = (size_t)(uintptr_t)arg, i, total = 0;
	char *result;

	for (i = 0; i < 20000; i++) {
		size_t n = 32 + next_random() % 2048;
		char *req = malloc(n);
		if (!req)
			abort();
		memset(req, 'a' + (int)(i % 26), n);
		total += (unsigned char)req[n / 2];
		free(req);
	}
	result = malloc(256);
	if (result)
		snprintf(result, 256, "worker %zu: checksum %zu", id, total);
	return result;
}

int main(void)
{
	struct index ix = { 0 };
	char word[16], *pages[128];
	pthread_t t[4];
	void *res;
	size_t i, j;

	for (i = 0; i < 50000; i++) {
		size_t len = 2 + next_random() % 6;
		for (j = 0; j < len; j++)
			word[j] = (char)('a' + next_random() % 6);
		word[len] = '\0';
		index_add(&ix, word);
	}
	printf("load: %zu distinct words in %zu buckets\n", ix.nwords, ix.nbuckets);

	for (i = 0; i < 128; i++) {
		pages[i] = malloc(64 * 1024);
		if (!pages[i])
			abort();
		memset(pages[i], (int)i, 64 * 1024);
	}
	for (i = 32; i < 128; i++)
		free(pages[i]);
	printf("cache: 128 pages of 64 KiB, trimmed to 32\n");

	for (i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) != 0)
			abort();
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &res);
		if (res)
			printf("work: %s\n", (char *)res);
		free(res);
	}

	index_free(&ix);
	printf("shutdown: 32 cache pages and the index buckets left behind\n");
	return 0;
}
