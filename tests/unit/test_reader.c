/*
 * test_reader.c - the reader's contract on inputs the writer never makes:
 * open errors (missing file, empty, not a trace, directory), versions
 * (newer major refused naming both, newer minor read), unknown extension
 * records and chunk encodings skipped and counted, extra trailing fields,
 * limits rejected before allocating, sticky errors, and a pipe fed by a
 * child process that dies mid-trace.
 */
#include "mstrace.h"
#include "codec.h"
#include "tap.h"
#include "trace_io.h"

#include <fcntl.h>
#include <assert.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zstd.h>

/* Preamble and a stored chunk holding the HEADER. */
static void start_trace(struct membuf *m, unsigned major, unsigned minor)
{
	struct mst_writer_options o = { .chunk_size = 4096, .zstd_level = -1,
					.sink = membuf_sink, .sink_ctx = m };
	struct mst_writer *w;
	struct mst_record h;
	struct gen g;

	memset(m, 0, sizeof(*m));
	gen_init(&g, 1);
	mst_writer_open(&w, -1, &o);
	gen_header(&g, &h);
	mst_writer_add(w, &h);
	mst_writer_close(w);
	mst__put_le16(m->p + 8, major);
	mst__put_le16(m->p + 10, minor);
}

static void hand_chunk(struct membuf *m, uint8_t enc, const void *payload,
		       uint32_t stored, uint32_t raw)
{
	uint8_t h[MST__CHUNK_HDR_LEN] = { 'M', 'S', 'C', 'K', enc };
	uint32_t crc;

	mst__put_le32(h + 8, stored);
	mst__put_le32(h + 12, raw);
	crc = mst_crc32c(0, h + 4, 12);
	crc = mst_crc32c(crc, payload, stored);
	mst__put_le32(h + 16, crc);
	membuf_sink(m, h, sizeof(h));
	membuf_sink(m, payload, stored);
}

/*
 * The payload of a chunk (FORMAT.md §5) in BUF: lane lengths, then the time
 * lane TL, the address lane AL (either may be NULL: empty) and the records.
 */
static size_t join(uint8_t *buf, size_t cap, const struct mst__out *rec,
		   const struct mst__out *tl, const struct mst__out *al)
{
	struct mst__out o = { buf, 0, cap, 0 };

	mst__put_vu(&o, tl ? tl->len : 0);
	mst__put_vu(&o, al ? al->len : 0);
	if (tl && tl->len)
		mst__put_raw(&o, tl->p, tl->len);
	if (al && al->len)
		mst__put_raw(&o, al->p, al->len);
	mst__put_raw(&o, rec->p, rec->len);
	assert(!o.overflow);
	return o.len;
}

/* A stored chunk of the records in O (no event records: empty lanes). */
static void out_chunk(struct membuf *m, struct mst__out *o)
{
	static uint8_t pay[1 << 16];
	size_t len = join(pay, sizeof(pay), o, NULL, NULL);

	hand_chunk(m, MST__ENC_STORED, pay, len, len);
}

static void end_trace(struct membuf *m, uint64_t t)
{
	struct mst_writer_options o = { .chunk_size = 4096, .append = 1,
					.sink = membuf_sink, .sink_ctx = m };
	struct mst_writer *w;
	struct mst_record e = { .type = MST_REC_END };

	mst_writer_open(&w, -1, &o);
	e.u.end.time = t;
	e.u.end.reason = MST_END_EXIT;
	mst_writer_add(w, &e);
	mst_writer_close(w);
}

/* Reads M to the end: final status, records, stats and the error detail. */
static int drain(struct membuf *m, uint64_t *n, struct mst_reader_stats *st,
		 char *detail, size_t dlen)
{
	struct mst_reader *r;
	const struct mst_record *rec;
	int fd, s;

	*n = 0;
	s = open_bytes(&r, &fd, m->p, m->len);
	while (s == MST_OK) {
		s = mst_reader_next(r, &rec);
		if (s == MST_OK)
			(*n)++;
	}
	if (st && r)
		mst_reader_stats(r, st);
	snprintf(detail, dlen, "%s", r ? mst_reader_error(r) : "");
	close_bytes(r, fd);
	return s;
}

static void test_open_errors(void)
{
	struct mst_reader *r;
	char dir[] = "/tmp/mst-test-XXXXXX";
	const struct mst_record *rec;
	int fd;

	CHECK(mst_reader_open(&r, "/nonexistent/x.memscope") == MST_ERR_IO &&
	      strcmp(mst_reader_error(r), "cannot open '/nonexistent/x.memscope': No such file or directory") == 0,
	      "missing file: %s", mst_reader_error(r));
	CHECK(mst_reader_next(r, &rec) == MST_ERR_IO && rec == NULL, "next after a failed open repeats the error");
	mst_reader_close(r);

	CHECK(open_bytes(&r, &fd, "", 0) == MST_ERR_NOT_TRACE &&
	      strcmp(mst_reader_error(r), "empty input") == 0, "empty input");
	CHECK(mst_reader_header(r) == NULL, "no header after a failed open");
	close_bytes(r, fd);

	CHECK(open_bytes(&r, &fd, "hello, world\n", 13) == MST_ERR_NOT_TRACE &&
	      strcmp(mst_reader_error(r), "not a memscope trace (bad magic)") == 0, "text: bad magic");
	close_bytes(r, fd);
	CHECK(open_bytes(&r, &fd, "\x89MS", 3) == MST_ERR_TRUNCATED, "3 bytes of the magic: truncated");
	close_bytes(r, fd);
	CHECK(open_bytes(&r, &fd, "\x89MX", 3) == MST_ERR_NOT_TRACE, "3 wrong bytes: not a trace");
	close_bytes(r, fd);

	if (mkdtemp(dir)) {
		CHECK(mst_reader_open(&r, dir) == MST_ERR_IO && strstr(mst_reader_error(r), "Is a directory"),
		      "a directory: %s", mst_reader_error(r));
		mst_reader_close(r);
		rmdir(dir);
	}
	mst_reader_close(NULL);
}

/* Reads a trace of just a HEADER and an END whose preamble says MAJOR.MINOR:
 * the final status, records and stats, and the error detail in D. */
static int read_version(unsigned major, unsigned minor, uint64_t *n,
			struct mst_reader_stats *st, char *d, size_t dlen)
{
	struct membuf m;
	int s;

	start_trace(&m, major, minor);
	end_trace(&m, 1);
	s = drain(&m, n, st, d, dlen);
	membuf_free(&m);
	return s;
}

static void test_versions(void)
{
	char d[512];
	uint64_t n;
	struct mst_reader_stats st;

	CHECK(read_version(3, 0, &n, NULL, d, sizeof(d)) == MST_ERR_VERSION &&
	      strcmp(d, "trace format 3.0 is newer than this reader's 2.x: upgrade memscope") == 0,
	      "major 3 refused: %s", d);
	CHECK(read_version(1, 0, &n, NULL, d, sizeof(d)) == MST_ERR_VERSION &&
	      strcmp(d, "trace format 1.0 is older than this reader's 2.x and cannot be read") == 0,
	      "major 1 refused: %s", d);
	CHECK(read_version(7, 3, &n, NULL, d, sizeof(d)) == MST_ERR_VERSION && strstr(d, "7.3 is newer"),
	      "major 7.3 names both versions: %s", d);
	CHECK(read_version(0, 9, &n, NULL, d, sizeof(d)) == MST_ERR_VERSION, "major 0 refused: %s", d);
	CHECK(read_version(MST_FORMAT_MAJOR, 200, &n, &st, d, sizeof(d)) == MST_END && n == 2 &&
	      st.complete, "minor 200 of this major reads");
}

static void test_extensions(void)
{
	struct membuf m;
	struct mst_reader_stats st;
	struct mst_reader *r;
	const struct mst_record *rec;
	uint8_t p[256], b[64];
	struct mst__out o = { p, 0, sizeof(p), 0 }, ob = { b, 0, sizeof(b), 0 };
	uint64_t n;
	char d[512];
	int fd, s, saw = 0;

	start_trace(&m, MST_FORMAT_MAJOR, 1);
	/* Unknown extension records of several sizes and type widths. */
	mst__put_vu(&o, 0x40 + 50);
	mst__put_bytes(&o, "abc", 3);
	mst__put_vu(&o, 1000000);
	mst__put_bytes(&o, "", 0);
	mst__put_vu(&o, UINT64_MAX);
	mst__put_bytes(&o, "xyzxyzxyz", 9);
	/* THREAD_START with two fields from a later minor version. */
	mst__put_vu(&ob, 50);
	mst__put_vu(&ob, 9);
	mst__put_vu(&ob, 777);
	mst__put_vu(&ob, 1);
	mst__put_vu(&ob, 12345);
	mst__put_bytes(&ob, "more", 4);
	mst__put_vu(&o, MST__T_THREAD_START);
	mst__put_bytes(&o, b, ob.len);
	/* SKIP padding. */
	mst__put_vu(&o, MST__T_SKIP);
	mst__put_bytes(&o, "\0\0\0\0", 4);
	out_chunk(&m, &o);
	hand_chunk(&m, 2, "zz", 2, 2);
	hand_chunk(&m, 255, "", 0, 0);
	hand_chunk(&m, MST__ENC_STORED, "", 0, 0);     /* an empty chunk */
	end_trace(&m, 60);

	s = open_bytes(&r, &fd, m.p, m.len);
	while (s == MST_OK && (s = mst_reader_next(r, &rec)) == MST_OK) {
		if (rec->type == MST_REC_THREAD_START)
			saw = rec->u.thread_start.time == 50 && rec->u.thread_start.thread == 9 &&
			      rec->u.thread_start.tid == 777 && rec->u.thread_start.parent == 1;
	}
	mst_reader_stats(r, &st);
	CHECK(s == MST_END, "a 1.1 trace with unknown parts reads to the end: %s", mst_reader_error(r));
	CHECK(saw, "a known record with extra trailing fields reads its known fields");
	CHECK(st.skipped_records == 3, "3 unknown extension records skipped (%llu)",
	      (unsigned long long)st.skipped_records);
	CHECK(st.skipped_chunks == 2, "2 chunks of unknown encodings skipped (%llu)",
	      (unsigned long long)st.skipped_chunks);
	CHECK(st.records == 3 && st.chunks == 6, "3 records from 6 chunks (%llu, %llu)",
	      (unsigned long long)st.records, (unsigned long long)st.chunks);
	close_bytes(r, fd);
	membuf_free(&m);

	/* An unknown-encoding chunk still has its crc checked. */
	start_trace(&m, MST_FORMAT_MAJOR, 1);
	hand_chunk(&m, 9, "abcd", 4, 4);
	m.p[m.len - 1] ^= 1;
	end_trace(&m, 1);
	CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "chunk 2 ") &&
	      strstr(d, "crc mismatch"), "a damaged unknown chunk is corrupt: %s", d);
	membuf_free(&m);
}

/* One hand-made chunk of payload B after the HEADER; returns the status. */
static int try_raw(const uint8_t *b, size_t len, char *d, size_t dlen)
{
	struct membuf m;
	uint64_t n;
	int s;

	start_trace(&m, MST_FORMAT_MAJOR, 0);
	hand_chunk(&m, MST__ENC_STORED, b, len, len);
	end_trace(&m, UINT64_MAX);
	s = drain(&m, &n, NULL, d, dlen);
	membuf_free(&m);
	return s;
}

/* try_raw on a chunk of three lanes (FORMAT.md §5). */
static int try_lanes(const struct mst__out *rec, const struct mst__out *tl,
		     const struct mst__out *al, char *d, size_t dlen)
{
	static uint8_t pay[1 << 16];

	return try_raw(pay, join(pay, sizeof(pay), rec, tl, al), d, dlen);
}

/* try_raw on a chunk of the records B, with no event records. */
static int try_chunk(const uint8_t *b, size_t len, char *d, size_t dlen)
{
	struct mst__out o = { (uint8_t *)b, len, len, 0 };

	return try_lanes(&o, NULL, NULL, d, dlen);
}

static void test_bad_records(void)
{
	char d[512];
	uint8_t p[128];
	struct mst__out o;

	uint8_t tb_[64], ab_[64];
	struct mst__out t, a;

#define RESET() (o = (struct mst__out){ p, 0, sizeof(p), 0 }, \
		 t = (struct mst__out){ tb_, 0, sizeof(tb_), 0 }, \
		 a = (struct mst__out){ ab_, 0, sizeof(ab_), 0 })
	RESET();
	mst__put_vu(&o, 0x05);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "unknown core record type 0x05"),
	      "core type 0x05 (FREE_RECENT in 1.0) is corrupt: %s", d);
	RESET();
	mst__put_vu(&o, 0x1d);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "unknown core record type 0x1d"),
	      "core type 0x1d (after the last FREE_REF) is corrupt: %s", d);
	RESET();
	mst__put_vu(&o, 0x3d);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "unknown core record type 0x3d"),
	      "core type 0x3d is corrupt: %s", d);
	RESET();
	mst__put_vu(&o, 0x23);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "unknown core record type 0x23"),
	      "STACK + the thread bit is no event: %s", d);
	RESET();        /* FREE_REF with no allocation in the chunk */
	mst__put_vu(&o, MST__T_FREE_REF + MST_FREE_FREE + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 0);
	mst__put_vu(&t, 1);
	mst__put_vs(&a, 0);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "FREE_REF"),
	      "FREE_REF without an allocation is corrupt: %s", d);
	RESET();        /* one ALLOC, then FREE_REF 1 past it, then 1 before it */
	for (int k = 0; k < 2; k++) {
		RESET();
		mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
		mst__put_vu(&o, 1); mst__put_vu(&o, 8); mst__put_vu(&o, 0);
		mst__put_vu(&t, 1);
		mst__put_aa(&a, -1, 0x1000);
		mst__put_vu(&o, MST__T_FREE_REF + MST_FREE_FREE);
		mst__put_vu(&o, 0);
		mst__put_vu(&t, 1);
		mst__put_vs(&a, k ? -1 : 1);
		CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "FREE_REF"),
		      "FREE_REF %s the chunk's allocations is corrupt: %s", k ? "before" : "past", d);
	}
	{
		/* ALLOCs on threads 1, 1, 2; thread 2 frees thread 1's first
		 * by reference (0), then the next one (delta 0 again), then
		 * thread 1 the last (delta 0): each names its own block. */
		struct membuf m;
		struct mst_reader *r;
		const struct mst_record *rec;
		uint64_t got[3] = { 0 }, want[3] = { 0x1000, 0x1040, 0x9000 }, thr[3] = { 0 };
		int fd, s, nf = 0;
		uint8_t pay[256];
		RESET();
		for (int i = 0; i < 3; i++) {
			mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC + (i != 1 ? MST__T_THREAD : 0));
			if (i != 1)
				mst__put_vu(&o, i == 2 ? 2 : 1);
			mst__put_vu(&o, 8); mst__put_vu(&o, 0);
			mst__put_vu(&t, 1);
			mst__put_aa(&a, -1, i == 1 ? 0x40 : i == 2 ? 0x9000 : 0x1000);
		}
		for (int i = 0; i < 3; i++) {
			mst__put_vu(&o, MST__T_FREE_REF + MST_FREE_FREE + (i != 1 ? MST__T_THREAD : 0));
			if (i != 1)
				mst__put_vu(&o, i == 2 ? 1 : 2);
			mst__put_vu(&o, 0);
			mst__put_vu(&t, 1);
			mst__put_vs(&a, 0);
		}
		start_trace(&m, MST_FORMAT_MAJOR, 0);
		size_t len = join(pay, sizeof(pay), &o, &t, &a);
		hand_chunk(&m, MST__ENC_STORED, pay, len, len);
		end_trace(&m, 100);
		s = open_bytes(&r, &fd, m.p, m.len);
		while (s == MST_OK && (s = mst_reader_next(r, &rec)) == MST_OK)
			if (rec->type == MST_REC_FREE && nf < 3) {
				thr[nf] = rec->u.free.thread;
				got[nf++] = rec->u.free.addr;
			}
		CHECK(s == MST_END && nf == 3 && !memcmp(got, want, sizeof(got)) &&
		      thr[0] == 2 && thr[1] == 2 && thr[2] == 1,
		      "FREE_REF names allocations of any thread in order (0x%llx 0x%llx 0x%llx): %s",
		      (unsigned long long)got[0], (unsigned long long)got[1],
		      (unsigned long long)got[2], mst_reader_error(r));
		close_bytes(r, fd);
		membuf_free(&m);
	}
	RESET();        /* an ALLOC at the address of a free the chunk does not hold */
	mst__put_vu(&o, MST__T_FREE + MST_FREE_FREE + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 0);
	mst__put_vu(&t, 1);
	mst__put_va(&a, 0x1000);
	mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC);
	mst__put_vu(&o, 8); mst__put_vu(&o, 0);
	mst__put_vu(&t, 1);
	mst__put_aa(&a, 1, 0);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "names a free"),
	      "an allocation naming a free beyond the chunk's is corrupt: %s", d);
	{
		/* Frees of 0x1000 (thread 1) then 0x2000 (thread 2); thread 1
		 * allocates "1 free back", then "0 back": 0x1000, 0x2000. */
		struct membuf m;
		struct mst_reader *r;
		const struct mst_record *rec;
		uint64_t got[2] = { 0 };
		int fd, s, na = 0;
		uint8_t pay[256];
		RESET();
		for (int i = 0; i < 2; i++) {
			mst__put_vu(&o, MST__T_FREE + MST_FREE_FREE + MST__T_THREAD);
			mst__put_vu(&o, 1 + i); mst__put_vu(&o, 0);
			mst__put_vu(&t, 1);
			mst__put_va(&a, 0x1000 * (i + 1));
		}
		for (int i = 0; i < 2; i++) {
			mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
			mst__put_vu(&o, 1); mst__put_vu(&o, 8); mst__put_vu(&o, 0);
			mst__put_vu(&t, 1);
			mst__put_aa(&a, 1 - i, 0);
		}
		start_trace(&m, MST_FORMAT_MAJOR, 0);
		size_t len = join(pay, sizeof(pay), &o, &t, &a);
		hand_chunk(&m, MST__ENC_STORED, pay, len, len);
		end_trace(&m, 100);
		s = open_bytes(&r, &fd, m.p, m.len);
		while (s == MST_OK && (s = mst_reader_next(r, &rec)) == MST_OK)
			if (rec->type == MST_REC_ALLOC && na < 2)
				got[na++] = rec->u.alloc.addr;
		CHECK(s == MST_END && got[0] == 0x1000 && got[1] == 0x2000,
		      "allocations name the chunk's frees, latest first (0x%llx 0x%llx): %s",
		      (unsigned long long)got[0], (unsigned long long)got[1], mst_reader_error(r));
		close_bytes(r, fd);
		membuf_free(&m);
	}
	RESET();
	mst__put_vu(&o, 0);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT, "type 0 is corrupt");

	RESET();        /* ALLOC naming stack 5 before any STACK */
	mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 8); mst__put_vu(&o, 5);
	mst__put_vu(&t, 1);
	mst__put_aa(&a, -1, 16);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "stack node not yet defined"),
	      "an undefined stack is corrupt: %s", d);
	RESET();        /* ALLOC whose time lane is empty */
	mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 8); mst__put_vu(&o, 0);
	mst__put_aa(&a, -1, 16);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "time lane ends"),
	      "an event without its time is corrupt: %s", d);
	RESET();        /* FREE whose address lane is empty */
	mst__put_vu(&o, MST__T_FREE + MST_FREE_FREE + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 0);
	mst__put_vu(&t, 1);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "address lane ends"),
	      "an event without its address is corrupt: %s", d);
	RESET();        /* a time left over in its lane */
	mst__put_vu(&o, MST__T_FREE + MST_FREE_FREE + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 0);
	mst__put_vu(&t, 1); mst__put_vu(&t, 1);
	mst__put_va(&a, 16);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "time lane holds bytes"),
	      "bytes left in the time lane are corrupt: %s", d);
	RESET();        /* an address left over in its lane */
	mst__put_vu(&o, MST__T_FREE + MST_FREE_FREE + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 0);
	mst__put_vu(&t, 1);
	mst__put_va(&a, 16); mst__put_va(&a, 16);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "address lane holds bytes"),
	      "bytes left in the address lane are corrupt: %s", d);
	{
		/* lane lengths longer than the payload */
		uint8_t bad[] = { 5, 5, 1, 2, 3 };
		CHECK(try_raw(bad, sizeof(bad), d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "lane lengths"),
		      "lanes longer than the chunk are corrupt: %s", d);
	}
	RESET();        /* STACK whose parent is itself */
	mst__put_vu(&o, MST__T_STACK);
	mst__put_vu(&o, 1); mst__put_vu(&o, 0x1000);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "parent"),
	      "a stack node that is its own parent is corrupt: %s", d);
	RESET();        /* ALLOC cut short by the chunk end */
	mst__put_vu(&o, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
	mst__put_vu(&o, 1); mst__put_vu(&o, 1);
	mst__put_vu(&t, 1);
	mst__put_aa(&a, -1, 16);
	CHECK(try_lanes(&o, &t, &a, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "past the end"),
	      "a record cut by the chunk end is corrupt: %s", d);
	RESET();        /* THREAD_START body one field short */
	mst__put_vu(&o, MST__T_THREAD_START);
	mst__put_bytes(&o, "\x01\x01\x01", 3);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "shorter than its fields"),
	      "a known body shorter than its fields is corrupt: %s", d);
	RESET();        /* A second HEADER */
	mst__put_vu(&o, MST__T_HEADER);
	mst__put_bytes(&o, "", 0);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "second HEADER"),
	      "a second HEADER is corrupt: %s", d);
	{
		/* 4097 threads' events in one chunk: corrupt, memory bounded. */
		static uint8_t big[4097 * 8], bt[4097], ba[4097 * 2];
		struct mst__out ob = { big, 0, sizeof(big), 0 }, tb = { bt, 0, sizeof(bt), 0 },
				ab = { ba, 0, sizeof(ba), 0 };
		for (uint64_t th = 1; th <= 4097; th++) {
			mst__put_vu(&ob, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
			mst__put_vu(&ob, th); mst__put_vu(&ob, 8); mst__put_vu(&ob, 0);
			mst__put_vu(&tb, 0);
			mst__put_aa(&ab, -1, 16);
		}
		CHECK(try_lanes(&ob, &tb, &ab, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "4096 threads"),
		      "events of 4097 threads in one chunk are corrupt: %s", d);
		ob.len = tb.len = ab.len = 0;
		for (uint64_t th = 1; th <= 4096; th++) {
			mst__put_vu(&ob, MST__T_ALLOC + MST_ALLOC_MALLOC + MST__T_THREAD);
			mst__put_vu(&ob, th); mst__put_vu(&ob, 8); mst__put_vu(&ob, 0);
			mst__put_vu(&tb, 0);
			mst__put_aa(&ab, -1, 16);
		}
		CHECK(try_lanes(&ob, &tb, &ab, d, sizeof(d)) == MST_END, "4096 threads are fine: %s", d);
	}
	RESET();        /* An extension length past the chunk */
	mst__put_vu(&o, 0x41);
	mst__put_vu(&o, 1ull << 60);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT, "a huge record length is corrupt: %s", d);
	RESET();        /* THREAD_NAME with a 2^62-byte name */
	mst__put_vu(&o, MST__T_THREAD_NAME);
	mst__put_vu(&o, 12);
	mst__put_vu(&o, 1); mst__put_vu(&o, 1); mst__put_vu(&o, 1ull << 62);
	while (o.len < 14) mst__put_u8(&o, 'a');
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT, "a huge string length is corrupt: %s", d);
	RESET();        /* A string holding a NUL */
	mst__put_vu(&o, MST__T_THREAD_NAME);
	mst__put_vu(&o, 5);
	mst__put_vu(&o, 1); mst__put_vu(&o, 1); mst__put_vu(&o, 2);
	mst__put_u8(&o, 'a'); mst__put_u8(&o, 0);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "NUL"),
	      "a NUL inside a string is corrupt: %s", d);
	RESET();        /* MODULE_LOAD with 257 segments */
	{
		uint8_t b[32];
		struct mst__out ob = { b, 0, sizeof(b), 0 };
		mst__put_vu(&ob, 1); mst__put_vu(&ob, 1); mst__put_vu(&ob, 0);
		mst__put_bytes(&ob, "m", 1); mst__put_bytes(&ob, "", 0);
		mst__put_vu(&ob, 257);
		mst__put_vu(&o, MST__T_MODULE_LOAD);
		mst__put_bytes(&o, b, ob.len);
	}
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "256"),
	      "257 segments are corrupt: %s", d);
	RESET();        /* COUNTERS with 65 entries */
	mst__put_vu(&o, MST__T_COUNTERS);
	mst__put_bytes(&o, "\x01\x41", 2);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "64"),
	      "65 counters are corrupt: %s", d);
	RESET();        /* HEADER-like argc larger than the record */
	mst__put_vu(&o, MST__T_SYMBOLS);
	mst__put_bytes(&o, "\x01\xff\xff\xff\xff\x0f", 6);
	CHECK(try_chunk(p, o.len, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "symbol count"),
	      "a symbol count beyond the record is corrupt: %s", d);
	RESET();        /* time going backwards across chunks (HEADER chunk ends at 0; END at max) */
	mst__put_vu(&o, MST__T_THREAD_EXIT);
	mst__put_bytes(&o, "\x05\x01", 2);
	{
		struct membuf m;
		uint64_t n;
		start_trace(&m, MST_FORMAT_MAJOR, 0);
		out_chunk(&m, &o);
		p[1 + 1] = 0x03;        /* the next chunk goes back to t=3 */
		out_chunk(&m, &o);
		end_trace(&m, 10);
		CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "backwards") && n == 2,
		      "time going back across chunks is corrupt after the good records: %s", d);
		membuf_free(&m);
	}
#undef RESET
}

static void test_limits(void)
{
	struct membuf m;
	uint8_t h[MST__CHUNK_HDR_LEN] = { 'M', 'S', 'C', 'K', 0 };
	struct rlimit old;
	char d[512];
	uint64_t n;

	/* Limit the address space so an attempt to allocate a file-given
	 * size would fail as NOMEM instead of succeeding lazily. */
	getrlimit(RLIMIT_AS, &old);
#ifndef __SANITIZE_ADDRESS__            /* ASan reserves terabytes of shadow */
	{
		struct rlimit lim = old;
		lim.rlim_cur = 1ull << 30;
		setrlimit(RLIMIT_AS, &lim);
	}
#endif

	start_trace(&m, MST_FORMAT_MAJOR, 0);
	mst__put_le32(h + 8, 100);
	mst__put_le32(h + 12, MST__MAX_RAW + 1);
	membuf_sink(&m, h, sizeof(h));
	CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "16 MiB") && n == 1,
	      "raw_size 16 MiB + 1 is corrupt: %s", d);
	membuf_free(&m);

	start_trace(&m, MST_FORMAT_MAJOR, 0);
	mst__put_le32(h + 8, 0xfffffff0u);
	mst__put_le32(h + 12, MST__MAX_RAW);
	membuf_sink(&m, h, sizeof(h));
	CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "stored size"),
	      "stored_size far above raw_size is corrupt: %s", d);
	membuf_free(&m);

	start_trace(&m, MST_FORMAT_MAJOR, 0);
	mst__put_le32(h + 8, MST__MAX_RAW + MST__MAX_RAW / 128 + 1024);
	mst__put_le32(h + 12, MST__MAX_RAW);
	membuf_sink(&m, h, sizeof(h));
	CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_TRUNCATED && strstr(d, "stream ends after 20 of"),
	      "the largest legal chunk is read as far as it goes: %s", d);
	membuf_free(&m);

	start_trace(&m, MST_FORMAT_MAJOR, 0);
	mst__put_le32(h + 8, 4);
	mst__put_le32(h + 12, 4);
	memcpy(h, "MSCX", 4);
	membuf_sink(&m, h, sizeof(h));
	membuf_sink(&m, "abcd", 4);
	CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "sync"),
	      "bad sync bytes are corrupt: %s", d);
	membuf_free(&m);

	/* A zstd chunk whose frame decodes to more than raw_size. */
	{
		uint8_t src[1000], dst[2000];
		size_t k;
		memset(src, 'q', sizeof(src));
		k = ZSTD_compress(dst, sizeof(dst), src, sizeof(src), 3);
		start_trace(&m, MST_FORMAT_MAJOR, 0);
		hand_chunk(&m, MST__ENC_ZSTD, dst, k, 999);
		CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "zstd"),
		      "a frame larger than raw_size is corrupt: %s", d);
		membuf_free(&m);
		start_trace(&m, MST_FORMAT_MAJOR, 0);
		hand_chunk(&m, MST__ENC_ZSTD, dst, k, 1001);
		CHECK(drain(&m, &n, NULL, d, sizeof(d)) == MST_ERR_CORRUPT && strstr(d, "decoded size"),
		      "a frame smaller than raw_size is corrupt: %s", d);
		membuf_free(&m);
	}
	setrlimit(RLIMIT_AS, &old);
}

/* A child writes a trace into a pipe; the reader streams it. */
static void test_child_pipe(void)
{
	struct membuf m = { 0 };
	struct mst_reader *r;
	const struct mst_record *rec;
	int p[2], s, status;
	uint64_t n = 0;
	pid_t pid;

	write_random_trace(&m, 31, 3000, 1024, 0, 0, 1);
	for (int cut = 0; cut < 2; cut++) {
		if (pipe(p))
			break;
		pid = fork();
		if (pid == 0) {
			size_t len = cut ? m.len / 2 : m.len;
			close(p[0]);
			for (size_t off = 0; off < len;) {
				ssize_t k = write(p[1], m.p + off, len - off < 1000 ? len - off : 1000);
				if (k <= 0)
					_exit(1);
				off += k;
			}
			_exit(0);       /* a "killed" writer: the pipe just ends */
		}
		close(p[1]);
		n = 0;
		s = mst_reader_open_fd(&r, p[0], "pipe");
		while (s == MST_OK && (s = mst_reader_next(r, &rec)) == MST_OK)
			n++;
		if (cut)
			CHECK(s == MST_ERR_TRUNCATED && n > 100 && n < 3002,
			      "a child dying mid-trace: %llu records, then %s",
			      (unsigned long long)n, mst_reader_error(r));
		else
			CHECK(s == MST_END && n == 3002, "a child's whole trace through a pipe (%llu records)",
			      (unsigned long long)n);
		mst_reader_close(r);
		close(p[0]);
		waitpid(pid, &status, 0);
	}
	membuf_free(&m);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_open_errors();
	test_versions();
	test_extensions();
	test_bad_records();
	test_limits();
	test_child_pipe();
	return tap_done();
}
