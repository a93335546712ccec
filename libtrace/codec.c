/*
 * codec.c - the small shared pieces of libtrace's format code: CRC-32C
 * (the SSE4.2 crc32 instruction where the CPU has it, else a table-driven
 * one, so the library needs no dependency for it), status phrases,
 * allocation-function names and the per-record time accessor.
 */
#include "mstrace.h"
#include "codec.h"

#include <pthread.h>
#include <string.h>

/* Castagnoli polynomial, reflected. */
#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/*
 * SSE4.2's crc32 computes exactly CRC-32C (same polynomial, reflected, no
 * final xor of its own), 8 bytes an instruction: several times the table
 * version's speed, and the reader checks every byte of a trace with it.
 */
#define HAVE_CRC_HW 1
__attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

static void crc_init(void)
{
#ifdef HAVE_CRC_HW
	/* Explicitly: this may run before the constructors that would. */
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][i] = c;
	}
	/* Slicing-by-8 tables: the reader checks every chunk, so the crc
	 * must not be the slow part of reading a trace. */
	for (unsigned i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* The table version, also on CPUs with the instruction: the unit test
 * holds each path to the bitwise definition. */
uint32_t mst__crc32c_table(uint32_t crc, const void *buf, size_t len);

uint32_t mst__crc32c_table(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint32_t lo = crc ^ mst__get_le32(p);
		uint32_t hi = mst__get_le32(p + 4);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t mst_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
#ifdef HAVE_CRC_HW
	if (crc_hw)
		return ~crc_sse42(~crc, buf, len);
#endif
	return mst__crc32c_table(crc, buf, len);
}

const char *mst_status_str(int status)
{
	switch (status) {
	case MST_OK: return "ok";
	case MST_END: return "end of trace";
	case MST_ERR_IO: return "i/o error";
	case MST_ERR_NOT_TRACE: return "not a memscope trace";
	case MST_ERR_VERSION: return "unsupported trace version";
	case MST_ERR_CORRUPT: return "corrupt trace";
	case MST_ERR_TRUNCATED: return "truncated trace";
	case MST_ERR_NOMEM: return "out of memory";
	case MST_ERR_INVALID: return "invalid argument";
	case MST_ERR_LIMIT: return "limit exceeded";
	}
	return "unknown status";
}

static const char *const alloc_names[] = {
	[MST_ALLOC_MALLOC] = "malloc",
	[MST_ALLOC_CALLOC] = "calloc",
	[MST_ALLOC_REALLOC] = "realloc",
	[MST_ALLOC_REALLOCARRAY] = "reallocarray",
	[MST_ALLOC_POSIX_MEMALIGN] = "posix_memalign",
	[MST_ALLOC_ALIGNED_ALLOC] = "aligned_alloc",
	[MST_ALLOC_MEMALIGN] = "memalign",
	[MST_ALLOC_VALLOC] = "valloc",
	[MST_ALLOC_PVALLOC] = "pvalloc",
	[MST_ALLOC_NEW] = "operator new",
	[MST_ALLOC_NEW_ARRAY] = "operator new[]",
	[MST_ALLOC_NEW_ALIGNED] = "aligned operator new",
	[MST_ALLOC_NEW_ARRAY_ALIGNED] = "aligned operator new[]",
};

static const char *const free_names[] = {
	[MST_FREE_FREE] = "free",
	[MST_FREE_DELETE] = "operator delete",
	[MST_FREE_DELETE_ARRAY] = "operator delete[]",
	[MST_FREE_REALLOC] = "realloc",
	[MST_FREE_REALLOCARRAY] = "reallocarray",
};

const char *mst_alloc_func_name(unsigned func)
{
	if (func == 0 || func > MST_ALLOC_FUNC_MAX)
		return "?";
	return alloc_names[func];
}

const char *mst_free_func_name(unsigned func)
{
	if (func == 0 || func > MST_FREE_FUNC_MAX)
		return "?";
	return free_names[func];
}

int mst_alloc_func_has_alignment(unsigned func)
{
	switch (func) {
	case MST_ALLOC_POSIX_MEMALIGN:
	case MST_ALLOC_ALIGNED_ALLOC:
	case MST_ALLOC_MEMALIGN:
	case MST_ALLOC_VALLOC:
	case MST_ALLOC_PVALLOC:
	case MST_ALLOC_NEW_ALIGNED:
	case MST_ALLOC_NEW_ARRAY_ALIGNED:
		return 1;
	}
	return 0;
}

int mst_alloc_func_is_realloc(unsigned func)
{
	return func == MST_ALLOC_REALLOC || func == MST_ALLOC_REALLOCARRAY;
}

uint64_t mst_record_time(const struct mst_record *rec)
{
	switch (rec->type) {
	case MST_REC_ALLOC: return rec->u.alloc.time;
	case MST_REC_FREE: return rec->u.free.time;
	case MST_REC_MODULE_LOAD: return rec->u.module_load.time;
	case MST_REC_MODULE_UNLOAD: return rec->u.module_unload.time;
	case MST_REC_THREAD_START: return rec->u.thread_start.time;
	case MST_REC_THREAD_NAME: return rec->u.thread_name.time;
	case MST_REC_THREAD_EXIT: return rec->u.thread_exit.time;
	case MST_REC_COUNTERS: return rec->u.counters.time;
	case MST_REC_LABEL: return rec->u.label.time;
	case MST_REC_TASK_BEGIN: return rec->u.task_begin.time;
	case MST_REC_TASK_END: return rec->u.task_end.time;
	case MST_REC_DROPPED: return rec->u.dropped.time;
	case MST_REC_END: return rec->u.end.time;
	case MST_REC_HEADER:
	case MST_REC_STACK:
	case MST_REC_SYMBOLS:
		break;
	}
	return 0;
}
