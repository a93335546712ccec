/*
 * test_codec.c - libtrace's byte-level pieces: varint and zigzag edge
 * cases (every length, 10-byte limits, overlong and truncated encodings),
 * the CRC-32C against its published check value, names and status phrases.
 */
#include "mstrace.h"
#include "codec.h"
#include "tap.h"

#include <stdlib.h>

static int vu_roundtrip(uint64_t v, size_t want_len)
{
	uint8_t buf[16];
	struct mst__out o = { buf, 0, sizeof(buf), 0 };
	struct mst__in in;

	mst__put_vu(&o, v);
	if (o.overflow || o.len != want_len || mst__vu_len(v) != want_len)
		return 0;
	in = (struct mst__in){ buf, buf + o.len, NULL };
	return mst__get_vu(&in) == v && !in.err && in.p == buf + o.len;
}

static const char *decode_err(const uint8_t *b, size_t n, uint64_t *v)
{
	struct mst__in in = { b, b + n, NULL };
	*v = mst__get_vu(&in);
	return in.err;
}

static void test_varints(void)
{
	uint64_t v;
	int ok = 1;

	CHECK(vu_roundtrip(0, 1) && vu_roundtrip(127, 1), "0 and 127 take one byte");
	CHECK(vu_roundtrip(128, 2) && vu_roundtrip(16383, 2) && vu_roundtrip(16384, 3),
	      "128, 16383 (2 bytes) and 16384 (3 bytes)");
	for (int bits = 1; bits <= 64; bits++) {
		uint64_t hi = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
		size_t len = (bits + 6) / 7;
		if (!vu_roundtrip(hi, len) || !vu_roundtrip(1ull << (bits - 1), (bits + 6) / 7))
			ok = 0;
	}
	CHECK(ok, "every bit length 1..64 round-trips with the right length");
	CHECK(vu_roundtrip(UINT64_MAX, 10), "UINT64_MAX takes 10 bytes");

	{
		static const uint8_t max[10] = { 0xff, 0xff, 0xff, 0xff, 0xff,
						 0xff, 0xff, 0xff, 0xff, 0x01 };
		static const uint8_t over[10] = { 0xff, 0xff, 0xff, 0xff, 0xff,
						  0xff, 0xff, 0xff, 0xff, 0x02 };
		static const uint8_t eleven[11] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
						    0x80, 0x80, 0x80, 0x81, 0x00 };
		static const uint8_t cut[3] = { 0x80, 0x80, 0x80 };
		static const uint8_t padded[3] = { 0x81, 0x80, 0x00 };
		CHECK(!decode_err(max, 10, &v) && v == UINT64_MAX, "10-byte maximum decodes");
		CHECK(decode_err(over, 10, &v) != NULL, "10th byte above 1 is corrupt (%s)",
		      decode_err(over, 10, &v) ? decode_err(over, 10, &v) : "-");
		CHECK(decode_err(eleven, 11, &v) != NULL, "an 11-byte varint is corrupt");
		CHECK(decode_err(cut, 3, &v) != NULL, "a varint cut by the end is an error");
		CHECK(decode_err(cut, 0, &v) != NULL, "no bytes at all is an error");
		CHECK(!decode_err(padded, 3, &v) && v == 1,
		      "a padded (non-minimal) varint still decodes");
	}

	ok = 1;
	static const int64_t sv[] = { 0, -1, 1, -2, 63, -64, 64, INT64_MAX, INT64_MIN,
				      INT64_MIN + 1, 0x5555555a0010ll, -0x5555555a0010ll };
	for (size_t i = 0; i < sizeof(sv) / sizeof(sv[0]); i++) {
		uint8_t buf[16];
		struct mst__out o = { buf, 0, sizeof(buf), 0 };
		struct mst__in in;
		mst__put_vs(&o, sv[i]);
		in = (struct mst__in){ buf, buf + o.len, NULL };
		if (mst__get_vs(&in) != sv[i] || in.err)
			ok = 0;
	}
	CHECK(ok, "signed varints round-trip, INT64_MIN/MAX included");
	CHECK(mst__zigzag(0) == 0 && mst__zigzag(-1) == 1 && mst__zigzag(1) == 2 &&
	      mst__zigzag(-2) == 3 && mst__zigzag(INT64_MIN) == UINT64_MAX,
	      "zigzag maps 0,-1,1,-2 to 0,1,2,3 and INT64_MIN to UINT64_MAX");

	/* Overflowing output cursors drop bytes and say so. */
	{
		uint8_t buf[3];
		struct mst__out o = { buf, 0, sizeof(buf), 0 };
		mst__put_vu(&o, UINT64_MAX);
		CHECK(o.overflow && o.len <= 3, "writing past the cursor's end sets overflow");
		o = (struct mst__out){ buf, 0, sizeof(buf), 0 };
		mst__put_bytes(&o, "abcdef", 6);
		CHECK(o.overflow, "bytes longer than the room overflow");
	}

	/* Random values: decode(encode(v)) == v for 100000 values. */
	ok = 1;
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 100000 && ok; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t val = x >> (x & 63);
		if (!vu_roundtrip(val, mst__vu_len(val)))
			ok = 0;
	}
	CHECK(ok, "100000 random varints round-trip");
}

static int va_roundtrip(uint64_t d, size_t *len)
{
	uint8_t buf[16];
	struct mst__out o = { buf, 0, sizeof(buf), 0 };
	struct mst__in in;
	uint64_t got;

	mst__put_va(&o, d);
	*len = o.len;
	in = (struct mst__in){ buf, buf + o.len, NULL };
	got = mst__get_va(&in);
	return !o.overflow && got == d && !in.err && in.p == buf + o.len;
}

static void test_address_deltas(void)
{
	static const uint64_t v[] = { 0, 16, -16ull, 8, -8ull, 1, 15, -1ull,
				      0x5555555a0010ull, -0x5555555a0010ull,
				      UINT64_MAX, 1ull << 63, (1ull << 63) + 16, INT64_MAX };
	size_t len;
	int ok = 1;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!va_roundtrip(v[i], &len))
			ok = 0;
	CHECK(ok, "address deltas round-trip: aligned, unaligned, negative, 64-bit extremes");
	CHECK(va_roundtrip(16, &len) && len == 1, "+16 takes one byte");
	CHECK(va_roundtrip(-512ull, &len) && len == 1 && va_roundtrip(-1024ull, &len) && len == 2, "-512 takes one byte, -1024 two");
	CHECK(va_roundtrip(1 << 20, &len) && len == 3, "+1 MiB takes 3 bytes");
	CHECK(va_roundtrip(8, &len) && len == 2, "an unaligned +8 takes a flag and a byte");
	ok = 1;
	for (uint64_t x = 1; x < 200000 && ok; x = x * 3 + 7)
		for (unsigned low = 0; low < 16; low++)
			if (!va_roundtrip((x << 4) | low, &len) || !va_roundtrip(-((x << 4) | low), &len))
				ok = 0;
	CHECK(ok, "every low nibble with many magnitudes and both signs");
	{
		static const uint8_t zero_low[] = { 0x01, 0x00 };
		static const uint8_t big_low[] = { 0x03, 0x10 };
		static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
		struct mst__in in = { zero_low, zero_low + 2, NULL };
		mst__get_va(&in);
		CHECK(in.err != NULL, "a flagged delta with zero low bits is corrupt");
		in = (struct mst__in){ big_low, big_low + 2, NULL };
		mst__get_va(&in);
		CHECK(in.err != NULL, "low bits above 15 are corrupt");
		in = (struct mst__in){ huge, huge + sizeof(huge), NULL };
		mst__get_va(&in);
		CHECK(in.err != NULL, "a delta value of 2^61 or more is corrupt");
		in = (struct mst__in){ zero_low, zero_low + 1, NULL };
		mst__get_va(&in);
		CHECK(in.err != NULL, "a flagged delta cut before its low byte is an error");
	}
}

static void test_bytes_bounds(void)
{
	static const uint8_t b[] = { 0x05, 'a', 'b' };
	struct mst__in in = { b, b + sizeof(b), NULL };
	size_t n;
	CHECK(mst__get_bytes(&in, &n) == NULL && in.err,
	      "a length past the end is refused before use: %s", in.err ? in.err : "-");
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	in = (struct mst__in){ huge, huge + sizeof(huge), NULL };
	CHECK(mst__get_bytes(&in, &n) == NULL && in.err, "a 2^64-1 length is refused");
}

/* libtrace/codec.c's table-driven crc, which the CPU's instruction may replace. */
uint32_t mst__crc32c_table(uint32_t crc, const void *buf, size_t len);

static void test_crc(void)
{
	static const char check[] = "123456789";
	uint8_t buf[1000];
	uint32_t whole, parts;

	CHECK(mst_crc32c(0, check, 9) == 0xe3069283u, "CRC-32C check value of 123456789 is e3069283");
	CHECK(mst_crc32c(0, NULL, 0) == 0, "crc of nothing is 0");
	for (int i = 0; i < 1000; i++)
		buf[i] = i * 7 + 3;
	whole = mst_crc32c(0, buf, 1000);
	parts = mst_crc32c(mst_crc32c(mst_crc32c(0, buf, 1), buf + 1, 500), buf + 501, 499);
	CHECK(whole == parts, "crc is incremental across unaligned pieces");
	/* Bitwise reference for a few lengths and alignments. */
	int ok = 1;
	for (int off = 0; off < 8; off++) {
		for (int len = 0; len < 40; len++) {
			uint32_t c = ~0u;
			for (int i = 0; i < len; i++) {
				c ^= buf[off + i];
				for (int k = 0; k < 8; k++)
					c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			}
			if (~c != mst_crc32c(0, buf + off, len) ||
			    ~c != mst__crc32c_table(0, buf + off, len))
				ok = 0;
		}
	}
	CHECK(ok, "crc (instruction and table) equals the bitwise definition at every alignment");
	CHECK(mst__crc32c_table(0, buf, 1000) == whole &&
	      mst__crc32c_table(mst_crc32c(0, buf, 3), buf + 3, 997) == whole,
	      "table and instruction crcs agree and chain into one another");
}

static void test_names(void)
{
	CHECK(strcmp(mst_alloc_func_name(MST_ALLOC_MALLOC), "malloc") == 0 &&
	      strcmp(mst_alloc_func_name(MST_ALLOC_NEW_ARRAY_ALIGNED), "aligned operator new[]") == 0,
	      "allocation function names");
	CHECK(strcmp(mst_alloc_func_name(0), "?") == 0 && strcmp(mst_alloc_func_name(14), "?") == 0,
	      "unknown allocation functions are ?");
	CHECK(strcmp(mst_free_func_name(MST_FREE_DELETE_ARRAY), "operator delete[]") == 0 &&
	      strcmp(mst_free_func_name(6), "?") == 0, "free function names");
	CHECK(mst_alloc_func_has_alignment(MST_ALLOC_VALLOC) &&
	      !mst_alloc_func_has_alignment(MST_ALLOC_CALLOC), "alignment-carrying functions");
	CHECK(mst_alloc_func_is_realloc(MST_ALLOC_REALLOCARRAY) &&
	      !mst_alloc_func_is_realloc(MST_ALLOC_MALLOC), "realloc family");
	CHECK(strcmp(mst_status_str(MST_ERR_TRUNCATED), "truncated trace") == 0 &&
	      strcmp(mst_status_str(MST_ERR_CORRUPT), "corrupt trace") == 0 &&
	      strcmp(mst_status_str(12345), "unknown status") == 0, "status phrases");
	CHECK(MST_OK == 0 && MST_END == 1 && MST_ERR_IO == -1 && MST_ERR_NOT_TRACE == -2 &&
	      MST_ERR_VERSION == -3 && MST_ERR_CORRUPT == -4 && MST_ERR_TRUNCATED == -5 &&
	      MST_ERR_NOMEM == -6 && MST_ERR_INVALID == -7 && MST_ERR_LIMIT == -8,
	      "status values are pinned");
	struct mst_record r = { .type = MST_REC_END };
	r.u.end.time = 77;
	CHECK(mst_record_time(&r) == 77, "record time of END");
	r.type = MST_REC_STACK;
	CHECK(mst_record_time(&r) == 0, "STACK is untimed");
}

int main(void)
{
	test_varints();
	test_address_deltas();
	test_bytes_bounds();
	test_crc();
	test_names();
	return tap_done();
}
