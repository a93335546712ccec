/*
 * test_damage.c - a small multi-chunk trace cut at every byte offset and
 * with every byte flipped in turn: the reader must deliver exactly the
 * records of the complete chunks before the damage, equal to what was
 * written, then report a truncated or corrupt chunk naming its number and
 * byte offset; it must never crash, hang or deliver a damaged chunk.
 */
#include "mstrace.h"
#include "tap.h"
#include "trace_io.h"

#define SEED 4242
#define NREC 120

static struct membuf trace;
/* through[k]: records delivered once chunk k (1-based) has been read. */
static uint64_t through[4096];
static size_t nchunks;

/* Byte offset where chunk K (1-based) starts. */
static size_t chunk_start(size_t k)
{
	return trace.chunk_ends[k - 1];
}

static void setup(void)
{
	struct mst_reader *r;
	const struct mst_record *rec;
	struct mst_reader_stats st;
	int fd;

	/* Tiny zstd chunks: many chunk boundaries in a few kB. */
	write_random_trace(&trace, SEED, NREC, 96, 0, 0, 1);
	nchunks = trace.ncalls - 1;
	open_bytes(&r, &fd, trace.p, trace.len);
	while (mst_reader_next(r, &rec) == MST_OK) {
		mst_reader_stats(r, &st);
		through[st.chunks] = st.records;
	}
	for (size_t k = 1; k <= nchunks; k++)
		if (through[k] < through[k - 1])
			through[k] = through[k - 1];
	close_bytes(r, fd);
}

/*
 * Reads BUF..LEN to the end, comparing every record with the generated
 * stream. Returns the final status; *n = records delivered, *bad = records
 * that differ from what was written.
 */
static int read_all(const uint8_t *buf, size_t len, uint64_t *n, int *bad,
		    char *detail, size_t dlen)
{
	struct mst_reader *r;
	const struct mst_record *rec;
	struct mst_record want;
	struct gen g;
	char why[64];
	int fd, st;

	*n = 0;
	*bad = 0;
	gen_init(&g, SEED);
	st = open_bytes(&r, &fd, buf, len);
	if (st == MST_OK) {
		int i = 0;
		while ((st = mst_reader_next(r, &rec)) == MST_OK) {
			if (i == 0)
				gen_header(&g, &want);
			else if (i <= NREC)
				gen_next(&g, &want, 0);
			else
				gen_end(&g, &want, 0);
			if (i <= NREC && rec_diff(&want, rec, why, sizeof(why)))
				(*bad)++;
			i++;
			(*n)++;
		}
		/* An error is sticky. */
		if (st < 0 && mst_reader_next(r, &rec) != st)
			(*bad)++;
	}
	snprintf(detail, dlen, "%s", r ? mst_reader_error(r) : "");
	close_bytes(r, fd);
	return st;
}

static void test_truncation(void)
{
	int wrong = 0, checked = 0;

	for (size_t len = 0; len <= trace.len; len++) {
		char detail[512], want[128];
		uint64_t n;
		int bad, st = read_all(trace.p, len, &n, &bad, detail, sizeof(detail));
		size_t k = 0;                   /* complete chunks in the cut */
		int ok;

		while (k < nchunks && trace.chunk_ends[k + 1] <= len)
			k++;
		if (len == 0) {
			ok = st == MST_ERR_NOT_TRACE && strcmp(detail, "empty input") == 0;
		} else if (len < 16) {
			ok = st == MST_ERR_TRUNCATED && strstr(detail, "inside the preamble");
		} else if (len == trace.len) {
			ok = st == MST_END && n == through[nchunks];
		} else if (len == trace.chunk_ends[k]) {
			snprintf(want, sizeof(want), k ? "no end-of-trace record after chunk %zu " :
				 "no chunk after the preamble", k);
			ok = st == MST_ERR_TRUNCATED && strstr(detail, want) && n == through[k];
		} else {
			snprintf(want, sizeof(want), "truncated chunk %zu at byte %zu: stream ends after %zu of ",
				 k + 1, chunk_start(k + 1), len - chunk_start(k + 1));
			ok = st == MST_ERR_TRUNCATED && strstr(detail, want) && n == through[k];
		}
		ok = ok && !bad;
		if (!ok && wrong++ < 5)
			printf("# cut at %zu: status %d, %llu records (want %llu), %d differ: %s\n",
			       len, st, (unsigned long long)n, (unsigned long long)through[k], bad, detail);
		checked++;
	}
	CHECK(nchunks >= 8, "the trace has %zu chunks in %zu bytes", nchunks, trace.len);
	CHECK(wrong == 0, "cut at each of %d offsets: exactly the complete chunks' records, then the right status and detail", checked);
}

static void test_flips(uint8_t mask)
{
	uint8_t *buf = malloc(trace.len);
	int wrong = 0;

	for (size_t off = 0; off < trace.len; off++) {
		char detail[512], want[64];
		uint64_t n;
		int bad, st, ok;
		size_t k = 1;

		memcpy(buf, trace.p, trace.len);
		buf[off] ^= mask;
		st = read_all(buf, trace.len, &n, &bad, detail, sizeof(detail));
		if (off < 8) {
			ok = st == MST_ERR_NOT_TRACE;
		} else if (off < 10) {
			ok = st == MST_ERR_VERSION && strstr(detail, "trace format ");
		} else if (off < 16) {
			/* Minor version and reserved bytes: read as usual. */
			ok = st == MST_END && n == through[nchunks];
		} else {
			while (k < nchunks && trace.chunk_ends[k] <= off)
				k++;
			snprintf(want, sizeof(want), "chunk %zu at byte %zu", k, chunk_start(k));
			ok = (st == MST_ERR_CORRUPT || st == MST_ERR_TRUNCATED) &&
			     strstr(detail, want) && n == through[k - 1];
		}
		ok = ok && !bad;
		if (!ok && wrong++ < 5)
			printf("# flip 0x%02x at %zu (chunk %zu): status %d, %llu records: %s\n",
			       mask, off, k, st, (unsigned long long)n, detail);
	}
	CHECK(wrong == 0, "each of %zu bytes xor 0x%02x: the chunks before it, then corrupt or truncated naming the chunk",
	      trace.len, mask);
	free(buf);
}

/* Bit flips in stored chunks too: the crc covers their payload as well. */
static void test_stored_flips(void)
{
	struct membuf m = { 0 };
	uint8_t *buf;
	int wrong = 0;

	write_random_trace(&m, 77, 40, 64, -1, 0, 1);
	buf = malloc(m.len);
	for (size_t off = 16; off < m.len; off++) {
		for (int bit = 0; bit < 8; bit++) {
			struct mst_reader *r;
			const struct mst_record *rec;
			int fd, st;
			memcpy(buf, m.p, m.len);
			buf[off] ^= 1u << bit;
			st = open_bytes(&r, &fd, buf, m.len);
			while (st == MST_OK)
				st = mst_reader_next(r, &rec);
			if (st != MST_ERR_CORRUPT && st != MST_ERR_TRUNCATED)
				wrong++;
			close_bytes(r, fd);
		}
	}
	CHECK(wrong == 0, "every single-bit flip in a stored-chunk trace (%zu bytes) is caught", m.len - 16);
	free(buf);
	membuf_free(&m);
}

int main(void)
{
	setup();
	test_truncation();
	test_flips(0xff);
	test_flips(0x01);
	test_stored_flips();
	membuf_free(&trace);
	return tap_done();
}
