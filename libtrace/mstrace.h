/*
 * mstrace.h - the one public header of libtrace (installed as libmstrace,
 * since Debian already ships an unrelated "libtrace").
 *
 * libtrace is the only code that knows the bytes of a .memscope trace
 * (schema/FORMAT.md). Tools read and write traces through this API and never
 * parse the format themselves.
 *
 * Contract (as in babeltrace2's API fundamentals):
 * - Functions returning int return an mst_status: 0 ok, 1 end of stream,
 *   negative an error. The numeric values never change.
 * - The library never prints, never exits, never aborts on bad data. After an
 *   error, *_error() returns a one-line detail such as
 *   "corrupt chunk 12 at byte 81920: varint longer than 10 bytes".
 * - Programming errors (NULL where an object is required) are assert()s.
 * - Pointers returned by a reader are borrowed: valid until the next call
 *   on the same reader, or until close, as each function says.
 */
#ifndef MSTRACE_H
#define MSTRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MST_FORMAT_MAJOR 2
#define MST_FORMAT_MINOR 0

enum mst_status {
	MST_OK = 0,
	MST_END = 1,             /* end of stream, complete trace */
	MST_ERR_IO = -1,         /* read/write failed; errno-style detail */
	MST_ERR_NOT_TRACE = -2,  /* no memscope magic: not a trace at all */
	MST_ERR_VERSION = -3,    /* a major version this library cannot read */
	MST_ERR_CORRUPT = -4,    /* damaged chunk: bad crc, bad varint, ... */
	MST_ERR_TRUNCATED = -5,  /* stream ends mid-chunk or without END */
	MST_ERR_NOMEM = -6,
	MST_ERR_INVALID = -7,    /* a bad argument or record given to the API */
	MST_ERR_LIMIT = -8,      /* a documented limit was exceeded */
};

/* A constant lowercase phrase for a status: "corrupt trace", ... */
const char *mst_status_str(int status);

/* ---- records (in-memory; on-disk codes live in the implementation) ---- */

enum mst_record_type {
	MST_REC_HEADER = 1,
	MST_REC_ALLOC,
	MST_REC_FREE,
	MST_REC_STACK,
	MST_REC_MODULE_LOAD,
	MST_REC_MODULE_UNLOAD,
	MST_REC_THREAD_START,
	MST_REC_THREAD_NAME,
	MST_REC_THREAD_EXIT,
	MST_REC_COUNTERS,
	MST_REC_LABEL,
	MST_REC_TASK_BEGIN,
	MST_REC_TASK_END,
	MST_REC_DROPPED,
	MST_REC_END,
	MST_REC_SYMBOLS,
};

/* Allocation functions (FORMAT.md §5.1). */
enum mst_alloc_func {
	MST_ALLOC_MALLOC = 1,
	MST_ALLOC_CALLOC,
	MST_ALLOC_REALLOC,
	MST_ALLOC_REALLOCARRAY,
	MST_ALLOC_POSIX_MEMALIGN,
	MST_ALLOC_ALIGNED_ALLOC,
	MST_ALLOC_MEMALIGN,
	MST_ALLOC_VALLOC,
	MST_ALLOC_PVALLOC,
	MST_ALLOC_NEW,
	MST_ALLOC_NEW_ARRAY,
	MST_ALLOC_NEW_ALIGNED,
	MST_ALLOC_NEW_ARRAY_ALIGNED,
	MST_ALLOC_FUNC_MAX = MST_ALLOC_NEW_ARRAY_ALIGNED,
};

enum mst_free_func {
	MST_FREE_FREE = 1,
	MST_FREE_DELETE,
	MST_FREE_DELETE_ARRAY,
	MST_FREE_REALLOC,
	MST_FREE_REALLOCARRAY,
	MST_FREE_FUNC_MAX = MST_FREE_REALLOCARRAY,
};

/* "malloc", "operator new[]", ...; "?" for an unknown value. */
const char *mst_alloc_func_name(unsigned func);
const char *mst_free_func_name(unsigned func);
/* Nonzero when the alloc func carries an alignment / an old address. */
int mst_alloc_func_has_alignment(unsigned func);
int mst_alloc_func_is_realloc(unsigned func);

enum mst_unwinder { MST_UNWIND_NONE = 0, MST_UNWIND_FP = 1, MST_UNWIND_DWARF = 2 };

#define MST_FLAG_FORKED 0x1u
#define MST_FLAG_EXECED 0x2u
#define MST_FLAG_DROP_MODE 0x4u
#define MST_FLAG_OWN_MALLOC 0x8u     /* malloc and free went to an allocator
					* ahead of the recorder */

struct mst_header {
	uint16_t major, minor;        /* filled by the reader; ignored by the writer */
	uint64_t ticks_per_second;
	uint64_t start_wall_ns;
	uint64_t pid, ppid;
	uint8_t session_id[16];
	const char *program;
	uint64_t argc;
	const char *const *argv;
	uint64_t sample_rate_ppm;     /* 1000000 = not sampled */
	uint8_t unwinder;             /* enum mst_unwinder */
	uint64_t stack_depth;
	uint64_t flags;               /* MST_FLAG_* */
	uint64_t exec_generation;
	const char *allocator;
	const char *hostname;
};

struct mst_alloc {
	uint64_t time;
	uint64_t thread;
	uint8_t func;                 /* enum mst_alloc_func */
	uint64_t addr;
	uint64_t size;
	uint64_t stack;
	uint64_t alignment;           /* 0 unless mst_alloc_func_has_alignment */
	uint64_t old_addr;            /* realloc family only; 0 = was NULL */
};

struct mst_free {
	uint64_t time;
	uint64_t thread;
	uint8_t func;                 /* enum mst_free_func */
	uint64_t addr;
	uint64_t stack;
};

struct mst_stack {
	uint64_t id;                  /* reader: the node's id; writer: ignored */
	uint64_t parent;
	uint64_t ip;
};

#define MST_MAX_SEGMENTS 256
#define MST_SEG_EXEC 0x1u
#define MST_SEG_WRITE 0x2u
#define MST_SEG_READ 0x4u

struct mst_segment {
	uint64_t vaddr, memsz, offset;
	uint8_t flags;
};

struct mst_module_load {
	uint64_t time;
	uint64_t module;
	uint64_t base;
	const char *path;
	const uint8_t *build_id;
	size_t build_id_len;
	uint32_t nsegs;
	const struct mst_segment *segs;
};

struct mst_module_unload { uint64_t time, module; };
struct mst_thread_start { uint64_t time, thread, tid, parent; };
struct mst_thread_name { uint64_t time, thread; const char *name; };
struct mst_thread_exit { uint64_t time, thread; };

enum mst_counter_key {
	MST_CTR_RSS = 1,
	MST_CTR_ARENA = 2,
	MST_CTR_MMAP = 3,
	MST_CTR_IN_USE = 4,
	MST_CTR_FREE = 5,
	MST_CTR_VSIZE = 6,
	MST_CTR_RECORDER = 7,
};
#define MST_MAX_COUNTERS 64

struct mst_counter { uint64_t key, value; };
struct mst_counters {
	uint64_t time;
	uint32_t count;
	const struct mst_counter *items;
};

struct mst_label { uint64_t time, thread, addr; const char *name, *type; };
struct mst_task_begin { uint64_t time, thread, task; const char *name; };
struct mst_task_end { uint64_t time, thread, task; };
struct mst_dropped { uint64_t time, thread, events, bytes; };

enum mst_end_reason {
	MST_END_EXIT = 1,
	MST_END_EXEC = 2,
	MST_END_SIGNAL = 3,
	MST_END_SALVAGED = 4,
	MST_END_DETACHED = 5,
};

struct mst_end {
	uint64_t time;
	uint8_t reason;               /* enum mst_end_reason */
	int64_t status;
	uint64_t events;
	uint64_t dropped;
};

struct mst_symbol {
	uint64_t start;               /* module-relative */
	uint64_t size;
	const char *function, *file;
	uint64_t line;
};

struct mst_symbols {
	uint64_t module;
	uint64_t count;
	const struct mst_symbol *items;
};

struct mst_record {
	enum mst_record_type type;
	union {
		struct mst_header header;
		struct mst_alloc alloc;
		struct mst_free free;
		struct mst_stack stack;
		struct mst_module_load module_load;
		struct mst_module_unload module_unload;
		struct mst_thread_start thread_start;
		struct mst_thread_name thread_name;
		struct mst_thread_exit thread_exit;
		struct mst_counters counters;
		struct mst_label label;
		struct mst_task_begin task_begin;
		struct mst_task_end task_end;
		struct mst_dropped dropped;
		struct mst_end end;
		struct mst_symbols symbols;
	} u;
};

/* Time of any timed record, 0 for untimed ones (HEADER, STACK, SYMBOLS). */
uint64_t mst_record_time(const struct mst_record *rec);

/* ---- reader: streams a trace from a file or a pipe ---- */

struct mst_reader;

/*
 * Opens PATH ("-" or NULL: standard input) and reads up to and including the
 * HEADER record, so mst_reader_header() is valid on success. On failure
 * *out is still set (unless MST_ERR_NOMEM) so the caller can read
 * mst_reader_error(); close it afterwards.
 */
int mst_reader_open(struct mst_reader **out, const char *path);
/* Same on an open descriptor, which the reader does not close. NAME is
 * used in error details only. */
int mst_reader_open_fd(struct mst_reader **out, int fd, const char *name);

/*
 * Delivers the next record in *rec (borrowed until the next call). HEADER is
 * delivered too, first. Returns MST_OK, MST_END after an END record and a
 * clean end of stream, or an error. MST_ERR_TRUNCATED means every complete
 * chunk was delivered and the stream ends inside a chunk or without END; the
 * detail says where. After an error, further calls return the same error.
 */
int mst_reader_next(struct mst_reader *r, const struct mst_record **rec);

const struct mst_header *mst_reader_header(const struct mst_reader *r);
const char *mst_reader_error(const struct mst_reader *r);

/*
 * The reader keeps the tables every consumer needs, so tools need not:
 * stack nodes (grows with distinct stacks), modules and thread names.
 */
/* Frames of stack ID, innermost first, into IPS (at most MAX); returns the
 * number of frames of the whole stack (may exceed MAX), or 0 for id 0 or an
 * unknown id. */
size_t mst_reader_stack_frames(const struct mst_reader *r, uint64_t id,
			       uint64_t *ips, size_t max);
/* Parent and ip of node ID; MST_ERR_INVALID for an unknown id. */
int mst_reader_stack_node(const struct mst_reader *r, uint64_t id,
			  uint64_t *parent, uint64_t *ip);
uint64_t mst_reader_stack_count(const struct mst_reader *r);
/* The module whose segments contain absolute address IP (loaded at that
 * point of the stream, or unloaded since), or NULL. Borrowed until close. */
const struct mst_module_load *mst_reader_module_at(const struct mst_reader *r,
						   uint64_t ip);
const struct mst_module_load *mst_reader_module(const struct mst_reader *r,
						uint64_t module);
/* Last name given to THREAD, or NULL. Borrowed until close. */
const char *mst_reader_thread_name(const struct mst_reader *r, uint64_t thread);

struct mst_reader_stats {
	uint64_t chunks;              /* complete chunks read */
	uint64_t records;             /* records delivered */
	uint64_t skipped_records;     /* unknown extension records skipped */
	uint64_t skipped_chunks;      /* chunks of unknown encoding skipped */
	uint64_t bytes;               /* bytes consumed from the stream */
	int complete;                 /* an END record was read */
};
void mst_reader_stats(const struct mst_reader *r, struct mst_reader_stats *st);

void mst_reader_close(struct mst_reader *r);

/* ---- writer: encodes records into chunks ---- */

struct mst_writer;

/*
 * Where chunks go. The default writes to an fd, retrying short writes and
 * EINTR. A custom sink lets the recorder note the file size after each
 * chunk (for crash recovery). Return 0 or a negative mst_status.
 */
typedef int (*mst_sink_fn)(void *ctx, const void *buf, size_t len);

struct mst_writer_options {
	size_t chunk_size;            /* raw bytes per chunk; 0 = 256 KiB */
	int zstd_level;               /* 0 = default (3); -1 = store, no zstd */
	int append;                   /* nonzero: write no preamble (continue a
				       * trace whose earlier chunks exist) */
	mst_sink_fn sink;             /* NULL = write(2) to fd */
	void *sink_ctx;
};

/*
 * Opens a writer on FD (unused when a sink is given). Allocates its buffers
 * and compression context here, once: adding records never allocates
 * (except once for a single record larger than the chunk size).
 * The caller adds the HEADER record first (unless appending). On failure
 * *out is still set (unless MST_ERR_NOMEM) so that mst_writer_error()
 * works; close it afterwards.
 */
int mst_writer_open(struct mst_writer **out, int fd,
		    const struct mst_writer_options *opts);

/* Encodes one record. Times must not decrease (MST_ERR_INVALID if they do).
 * A full chunk is compressed and written before this returns. */
int mst_writer_add(struct mst_writer *w, const struct mst_record *rec);

/* mst_writer_add for the two records that are nearly all of a trace,
 * without building a struct mst_record: what a recorder calls per event. */
int mst_writer_alloc(struct mst_writer *w, const struct mst_alloc *a);
int mst_writer_free(struct mst_writer *w, const struct mst_free *f);

/*
 * Runs of events, as a recorder keeps them before they are encoded: one
 * thread's ALLOCs and FREEs in an array of 32-byte slots (a ring: slot
 * i is slots[i & mask]), with raw clock times. mst_writer_put_run encodes
 * them in one loop, the checks that mst_writer_alloc/free make per event
 * made once per run, and writes the same bytes as those calls would.
 */
enum { MST_EVENT_ALLOC = 1, MST_EVENT_FREE = 2 };

struct mst_event {
	uint8_t type;                 /* MST_EVENT_ALLOC or MST_EVENT_FREE */
	uint8_t func;                 /* enum mst_alloc_func / mst_free_func */
	uint16_t nslots;              /* slots the event takes: 1, or 2 when an
				       * mst_event_ext follows (realloc's old
				       * address, an alignment) */
	uint32_t stack;
	uint64_t time;                /* raw clock (struct mst_run converts) */
	uint64_t addr;
	uint64_t size;                /* ALLOC: requested bytes */
};

struct mst_event_ext {
	uint64_t old_addr;            /* realloc family: 0 = was NULL */
	uint64_t alignment;
	uint64_t reserved[2];
};

struct mst_run {
	const struct mst_event *slots;
	uint64_t mask;                /* a ring's slot count - 1 (a power of
				       * two); ~0 for a plain array */
	uint64_t pos, end;            /* slots [pos, end); pos moves on */
	uint64_t thread;              /* the events' thread index */
	uint64_t limit;               /* stop before a raw time >= limit */
	/* trace time = ((raw - clock_start) * clock_mult >> 32) >> clock_shift,
	 * 0 for a raw time at or before clock_start, and never below the
	 * writer's last time (a late event takes that time) */
	uint64_t clock_start, clock_mult;
	unsigned clock_shift;
};

/*
 * Encodes RUN's events from run->pos on, moving run->pos past each, and
 * stops at run->end, at a raw time >= run->limit, or before an event it
 * leaves to the caller: one that is not an ALLOC or FREE, names a stack
 * not yet written, is the thread's first in the chunk, or falls where the
 * chunk ends. The caller hands that one to mst_writer_alloc/free or
 * mst_writer_add (after writing its stacks) and calls again. Returns the
 * events written (0 is not an error), or a negative mst_status.
 */
long mst_writer_put_run(struct mst_writer *w, struct mst_run *run);

/* Ends the current chunk (if it holds records) and writes it. */
int mst_writer_flush(struct mst_writer *w);

/* Bytes handed to the sink so far, preamble included. */
uint64_t mst_writer_bytes(const struct mst_writer *w);
/* ALLOC and FREE records added so far. */
uint64_t mst_writer_events(const struct mst_writer *w);
/* Last time written (the time chain's value), to clamp late records. */
uint64_t mst_writer_last_time(const struct mst_writer *w);
/* When appending, the next record's time must be at least this. */
void mst_writer_set_last_time(struct mst_writer *w, uint64_t t);

const char *mst_writer_error(const struct mst_writer *w);

/* Flushes and frees. Returns the flush's status. Does not close the fd. */
int mst_writer_close(struct mst_writer *w);

/* CRC-32C, exported for tests and the recorder's spool. */
uint32_t mst_crc32c(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

/* The shared analysis model and the symbolizer extend this header. */
#include "mstrace_model.h"
#include "mstrace_symbols.h"

#endif
