/*
 * reader.c - streams a trace (schema/FORMAT.md) from a file or a pipe,
 * chunk by chunk, and keeps the tables every consumer needs: stack nodes,
 * modules with their segments, thread names.
 *
 * Reading uses read(2) only (no seek, no mmap) so pipes work. Every length
 * taken from the stream is checked against the format's limits or what is
 * left of the chunk before anything is allocated; the reader's memory is
 * one chunk's payload and decoded bytes (at most 16 MiB each), or five
 * chunks' with read-ahead (mst__reader_prefetch) and the events of four
 * decoded ahead (at most 12 MiB each), 512 KiB for the addresses FREE_REF
 * records may name, plus tables that grow with distinct stacks, modules
 * and threads.
 */
#include "mstrace.h"
#include "codec.h"
#include "model_feed.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* A module as kept for the whole read: one block, never moved. */
struct module {
	struct mst_module_load m;
	uint64_t seq;                 /* load order, later wins in module_at */
};

/* One PT_LOAD segment's absolute range, sorted by start. */
struct interval {
	uint64_t start, end;
	const struct module *mod;
};

/*
 * Where the reading of chunks stands. The reader's own (io) is what its
 * caller has been given; the prefetch thread keeps another that runs ahead
 * and reaches io with each chunk taken, so figures and messages are those
 * of reading on one thread.
 */
struct cpos {
	uint64_t offset;              /* bytes consumed from the stream */
	uint64_t chunk_no;            /* 1-based number of the current chunk */
	uint64_t chunk_off;           /* its byte offset in the stream */
	uint64_t chunks, skipped;     /* chunks checked; of unknown encoding */
};

/* A chunk's payload as stored, and decoded when it is compressed. */
struct cbuf {
	uint8_t *payload, *raw;
	size_t payload_cap, raw_cap;
};

/* Zeros after every payload, so that predecode() may read a little past
 * a lane's end (it then checks that nothing past it was used). */
#define PAYLOAD_PAD 64

/* read_chunk's status where the stream ends before a chunk's first byte:
 * an END or a truncation, which only the decoding side can tell. */
#define CHUNK_EOF 2

/*
 * Where the decoding of a chunk stands: its lanes (FORMAT.md §5) and their
 * delta state. The reader has one; so does the read-ahead thread, which
 * decodes events ahead (see predecode()).
 */
struct dstate {
	uint8_t *rp, *rend;           /* record lane */
	const uint8_t *tp, *tend;     /* time lane */
	const uint8_t *ap, *aend;     /* address lane */
	uint64_t d_time;              /* the chunk's time chain */
	uint64_t last_time;           /* times never decrease across chunks */
	struct mst__addr_tab addrs;   /* threads' address chains */
	uint64_t cur_thread;          /* thread of the last event record */
	uint64_t ref;                 /* where the next FREE_REF is expected */
	uint64_t nallocs;             /* allocation records in the chunk */
	uint64_t *aring;              /* address of allocation n at n % window */
	uint64_t nfrees;              /* FREE records in the chunk */
	uint64_t fring[MST__REUSE_WINDOW]; /* address of free n at n % window */
	size_t c_slot;                /* addr_slot of cur_thread, or SIZE_MAX */
};

/* A core event as fast_event decodes it. */
struct fast_out {
	enum mst_record_type type;
	unsigned func;
	uint64_t time, thread, addr, size, stack, align, old;
};

/*
 * A chunk decoded ahead on the read-ahead thread (predecode()): its events
 * as the model takes them, and, between them, what is left to the reader's
 * own thread ("breaks"): records that touch the reader's tables or give an
 * error (STACK, SKIP, extension records, decoded there from their offset
 * with the time chain as it stood), and events struct mst__event cannot
 * hold. A chunk the thread cannot decode whole is not decoded ahead at all.
 */
enum { PD_RECORD, PD_EVENT };

struct pd_break {
	size_t at;                    /* events of the chunk before it */
	int kind;
	uint32_t off;                 /* PD_RECORD: payload offset */
	int timed;                    /* a timed record came before it in the chunk */
	uint64_t d_time;              /* the time chain before it */
	struct fast_out ev;           /* PD_EVENT */
};

struct pd_chunk {
	int ok;                       /* decoded ahead: the rest is valid */
	struct mst__event *ev;
	size_t nev, ev_cap;
	size_t ev_mapped;             /* bytes of ev's mapping (ev_reserve) */
	struct pd_break *brk;
	size_t nbrk, brk_cap;
	int timed;                    /* the chunk has a timed record */
	uint64_t first_time;          /* its first, checked against the last chunk's */
	uint64_t d_time;              /* its last */
};

/*
 * A slot's decoded events: a mapping of its own, on huge pages where the
 * kernel gives them. Its contents are not kept when it grows (each chunk
 * is decoded from the start). In 4 KiB pages, the first touches of the
 * four slots' buffers (some 20 MiB) were a fixed ~10 ms of CPU time on
 * this kind of VM, a sixth of reading a trace of 2 M events.
 */
#define EV_HUGE (2u << 20)

static int ev_reserve(struct pd_chunk *pd, size_t n)
{
	size_t len;
	char *p;
	uintptr_t lead;

	if (n <= pd->ev_cap)
		return 0;
	if (n > SIZE_MAX / 2 / sizeof(*pd->ev))
		return -1;
	len = (n * sizeof(*pd->ev) + EV_HUGE - 1) & ~(size_t)(EV_HUGE - 1);
	p = mmap(NULL, len + EV_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* a start on a huge-page boundary; the slack given back */
	lead = -(uintptr_t)p & (EV_HUGE - 1);
	if (lead)
		munmap(p, lead);
	munmap(p + lead + len, EV_HUGE - lead);
	/* huge pages for the whole 2 MiB the events fill, small ones for
	 * the rest: a buffer just over a huge page would otherwise take two
	 * (the slots' memory jumped by 8 MiB from one trace to the next) */
	{
		size_t need = n * sizeof(*pd->ev) & ~(size_t)(EV_HUGE - 1);

		if (need)
			madvise(p + lead, need, MADV_HUGEPAGE);
	}
	if (pd->ev)
		munmap(pd->ev, pd->ev_mapped);
	pd->ev = (struct mst__event *)(void *)(p + lead);
	pd->ev_cap = len / sizeof(*pd->ev);
	pd->ev_mapped = len;
	return 0;
}

static void ev_release(struct pd_chunk *pd)
{
	if (pd->ev)
		munmap(pd->ev, pd->ev_mapped);
	pd->ev = NULL;
	pd->ev_cap = pd->ev_mapped = 0;
}

/*
 * Read-ahead: a thread reads, checks and decompresses the next chunks into
 * a small ring while the caller decodes the current one. Only raw chunk
 * bytes cross cores (a few per event); the records are decoded where they
 * are used. A slot's buffer stays the caller's until it takes the next.
 */
#define PF_SLOTS 4

struct pf_slot {
	struct cbuf buf;
	uint8_t *rbase;
	size_t len;
	struct cpos pos;              /* the position after this chunk */
	int status;                   /* MST_OK, CHUNK_EOF or an error */
	int full;                     /* under mu: the caller's to take */
	char err[384];                /* the error's detail */
	struct pd_chunk pd;           /* its events, decoded ahead */
};

struct prefetch {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int abort;
	int cur;                      /* slot being decoded, -1 for none */
	size_t next;                  /* slot to take next */
	struct cpos pos;              /* the thread's own, ahead of io */
	struct pf_slot slot[PF_SLOTS];
	/* predecode(): the thread's decoding state, the stack nodes defined
	 * up to the chunk it decodes, and whether it still decodes ahead. */
	struct dstate ds;
	uint64_t nstacks;
	int pd_on;
	uint64_t cpu_ns;              /* the thread's CPU time once it ended */
};

struct thread_slot {
	uint64_t thread;              /* 0 = empty slot: indexes start at 1 */
	char *name;
};


struct mst_reader {
	int fd, own_fd;
	char *name;
	int status;                   /* sticky: MST_OK until an error or END */
	char err[384];

	struct cpos io;
	struct cbuf buf;              /* chunks read on this thread */
	ZSTD_DCtx *dctx;              /* the prefetch thread's once it runs */
	struct prefetch *pf;          /* NULL: chunks read on this thread */
	uint8_t *rbase;               /* payload of the current chunk */
	struct dstate ds;             /* where its decoding stands */
	struct pd_chunk *pd;          /* its events decoded ahead, or NULL: */
	size_t pd_i, pd_b;            /* the next event and break to give */
	uint64_t pd_last0;            /* last_time before the chunk */

	struct mst_record rec;
	const char **argv;            /* per-record arrays, reused */
	size_t argv_cap;
	struct mst_symbol *syms;
	size_t syms_cap;
	struct mst_segment segs[MST_MAX_SEGMENTS];
	struct mst_counter ctrs[MST_MAX_COUNTERS];

	struct mst_header header;     /* kept until close */
	void *header_mem;
	int have_header, header_pending;
	int ended;                    /* last record delivered was END */

	uint64_t *stk;                /* node n: stk[2n-2] parent, stk[2n-1] ip */
	uint64_t nstacks, stk_cap;

	struct module **mods;         /* in load order */
	size_t nmods, mods_cap;
	struct module **by_id;        /* sorted by module id, latest per id */
	size_t nby_id, by_id_cap;
	struct interval *iv;
	uint64_t *iv_maxend;          /* max end of iv[0..i]: stops the scan */
	size_t niv, iv_cap, iv_maxend_cap;

	struct thread_slot *thr;
	size_t thr_cap, nthr;
	char **old_names;             /* replaced names stay valid until close */
	size_t nold, old_cap;

	struct mst_reader_stats st;
};

static int set_err(struct mst_reader *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_err(struct mst_reader *r, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->status = status;
	return status;
}

/* As set_err, into ERR: chunks may be read on another thread. */
static int fmt_err(char *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fmt_err(char *err, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, sizeof(((struct mst_reader *)0)->err), fmt, ap);
	va_end(ap);
	return status;
}

static int chunk_corrupt(char *err, const struct cpos *pos, const char *what)
{
	return fmt_err(err, MST_ERR_CORRUPT, "corrupt chunk %llu at byte %llu: %s",
		       (unsigned long long)pos->chunk_no,
		       (unsigned long long)pos->chunk_off, what);
}

static int corrupt(struct mst_reader *r, const char *what)
{
	r->status = chunk_corrupt(r->err, &r->io, what);
	return r->status;
}

static int corrupt_rec(struct mst_reader *r, const uint8_t *at, const char *what)
{
	return set_err(r, MST_ERR_CORRUPT,
		       "corrupt chunk %llu at byte %llu: %s (record at payload byte %zu)",
		       (unsigned long long)r->io.chunk_no,
		       (unsigned long long)r->io.chunk_off, what, (size_t)(at - r->rbase));
}

/* Grows *P to at least N elements of SIZE; never shrinks. */
static int reserve(void *p, size_t *cap, size_t n, size_t size)
{
	void **pp = p;
	size_t c = *cap ? *cap : 16;
	void *np;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	np = realloc(*pp, c * size);
	if (!np)
		return -1;
	*pp = np;
	*cap = c;
	return 0;
}

static int nomem(struct mst_reader *r)
{
	return set_err(r, MST_ERR_NOMEM, "out of memory");
}

/* Reads up to N bytes, fewer only at end of stream; -1 on error (in ERR). */
static ssize_t read_full(const struct mst_reader *r, struct cpos *pos, char *err,
			 void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = read(r->fd, (uint8_t *)buf + got, n - got);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			fmt_err(err, MST_ERR_IO, "cannot read '%s': %s", r->name,
				strerror(errno));
			return -1;
		}
		if (k == 0)
			break;
		got += k;
	}
	pos->offset += got;
	return got;
}

static int eof_status(struct mst_reader *r)
{
	if (r->ended) {
		r->status = MST_END;
		return MST_END;
	}
	if (r->io.chunks == 0)
		return set_err(r, MST_ERR_TRUNCATED,
			       "truncated: no chunk after the preamble (the recording was cut short)");
	return set_err(r, MST_ERR_TRUNCATED,
		       "truncated: no end-of-trace record after chunk %llu (the recording was cut short)",
		       (unsigned long long)r->io.chunk_no);
}

/*
 * Reads and checks the next chunk at POS into B, skipping unknown
 * encodings: MST_OK with its records at *RBASE, CHUNK_EOF, or an error
 * status with its detail in ERR. Touches nothing of R but what stays put
 * while chunks are read (fd, name) and dctx, so that it can run on the
 * prefetch thread.
 */
static int read_chunk(const struct mst_reader *r, struct cpos *pos, struct cbuf *b,
		      char *err, uint8_t **rbase, size_t *len)
{
	for (;;) {
		uint8_t h[MST__CHUNK_HDR_LEN];
		uint32_t stored, raw, crc;
		ssize_t n;
		uint8_t enc;

		pos->chunk_off = pos->offset;
		n = read_full(r, pos, err, h, sizeof(h));
		if (n < 0)
			return MST_ERR_IO;
		if (n == 0)
			return CHUNK_EOF;
		pos->chunk_no++;
		if (n < (ssize_t)sizeof(h))
			return fmt_err(err, MST_ERR_TRUNCATED,
				       "truncated chunk %llu at byte %llu: stream ends after %zd of %d header bytes",
				       (unsigned long long)pos->chunk_no,
				       (unsigned long long)pos->chunk_off, n, MST__CHUNK_HDR_LEN);
		if (memcmp(h, MST__SYNC, 4) != 0)
			return chunk_corrupt(err, pos, "bad sync bytes (no chunk starts here)");
		enc = h[4];
		stored = mst__get_le32(h + 8);
		raw = mst__get_le32(h + 12);
		if (raw > MST__MAX_RAW)
			return chunk_corrupt(err, pos, "raw size exceeds the 16 MiB limit");
		if (stored > MST__MAX_STORED(raw))
			return chunk_corrupt(err, pos, "stored size too large for the raw size");
		if (reserve(&b->payload, &b->payload_cap, (size_t)stored + PAYLOAD_PAD, 1))
			return fmt_err(err, MST_ERR_NOMEM, "out of memory");
		n = read_full(r, pos, err, b->payload, stored);
		if (n < 0)
			return MST_ERR_IO;
		if (n < stored)
			return fmt_err(err, MST_ERR_TRUNCATED,
				       "truncated chunk %llu at byte %llu: stream ends after %zd of %u bytes",
				       (unsigned long long)pos->chunk_no,
				       (unsigned long long)pos->chunk_off,
				       n + MST__CHUNK_HDR_LEN, stored + MST__CHUNK_HDR_LEN);
		crc = mst_crc32c(0, h + 4, 12);
		crc = mst_crc32c(crc, b->payload, stored);
		if (crc != mst__get_le32(h + 16))
			return chunk_corrupt(err, pos, "crc mismatch");
		pos->chunks++;
		if (enc == MST__ENC_STORED) {
			if (stored != raw)
				return chunk_corrupt(err, pos, "stored chunk whose stored and raw sizes differ");
			memset(b->payload + raw, 0, PAYLOAD_PAD);
			*rbase = b->payload;
		} else if (enc == MST__ENC_ZSTD) {
			size_t k;
			if (reserve(&b->raw, &b->raw_cap, (size_t)raw + PAYLOAD_PAD, 1))
				return fmt_err(err, MST_ERR_NOMEM, "out of memory");
			k = ZSTD_findFrameCompressedSize(b->payload, stored);
			if (ZSTD_isError(k) || k != stored)
				return chunk_corrupt(err, pos, "payload is not exactly one zstd frame");
			k = ZSTD_decompressDCtx(r->dctx, b->raw, raw, b->payload, stored);
			if (ZSTD_isError(k))
				return chunk_corrupt(err, pos, "zstd cannot decode the payload");
			if (k != raw)
				return chunk_corrupt(err, pos, "decoded size differs from the raw size");
			memset(b->raw + raw, 0, PAYLOAD_PAD);
			*rbase = b->raw;
		} else {
			pos->skipped++;
			continue;
		}
		*len = raw;
		return MST_OK;
	}
}

static void predecode(struct prefetch *p, struct pf_slot *s);
static int count_stacks(const struct dstate *ds, uint64_t *n);

static void *prefetch_main(void *arg)
{
	const struct mst_reader *r = arg;
	struct prefetch *p = r->pf;

	for (size_t i = 0;; i = (i + 1) % PF_SLOTS) {
		struct pf_slot *s = &p->slot[i];
		int st;

		pthread_mutex_lock(&p->mu);
		while (s->full && !p->abort)
			pthread_cond_wait(&p->cv, &p->mu);
		st = p->abort;
		pthread_mutex_unlock(&p->mu);
		if (st)
			return NULL;
		st = read_chunk(r, &p->pos, &s->buf, s->err, &s->rbase, &s->len);
		s->status = st;
		s->pos = p->pos;
		s->pd.ok = 0;
		if (st == MST_OK)
			predecode(p, s);
		if (st != MST_OK) {
			struct timespec cpu;

			if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu))
				p->cpu_ns = (uint64_t)cpu.tv_sec * 1000000000ull +
					    (uint64_t)cpu.tv_nsec;
		}
		pthread_mutex_lock(&p->mu);
		s->full = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (st != MST_OK)
			return NULL;  /* the end, or an error: nothing after it */
	}
}

uint64_t mst__reader_ahead_cpu_ns(const struct mst_reader *r)
{
	return r->pf ? r->pf->cpu_ns : 0;
}

/*
 * The prefetch thread's next chunk, as read_chunk would have read it here;
 * the chunk decoded until now goes back to the thread. A last status
 * (the end or an error) stays in its slot, and is given again if asked.
 */
static int prefetch_take(struct mst_reader *r, uint8_t **rbase, size_t *len,
			 struct pd_chunk **pd)
{
	struct prefetch *p = r->pf;
	struct pf_slot *s = &p->slot[p->next];

	pthread_mutex_lock(&p->mu);
	if (p->cur >= 0) {
		p->slot[p->cur].full = 0;
		p->cur = -1;
		pthread_cond_broadcast(&p->cv);
	}
	while (!s->full)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	r->io = s->pos;
	if (s->status != MST_OK) {
		if (s->status != CHUNK_EOF)
			memcpy(r->err, s->err, sizeof(r->err));
		return s->status;
	}
	p->cur = (int)p->next;
	p->next = (p->next + 1) % PF_SLOTS;
	*rbase = s->rbase;
	*len = s->len;
	*pd = s->pd.ok ? &s->pd : NULL;
	return MST_OK;
}

int mst__reader_prefetch(struct mst_reader *r)
{
	struct prefetch *p;

	if (r->pf || r->status != MST_OK)
		return r->pf ? 0 : -1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->cur = -1;
	p->pos = r->io;
	/* Events are decoded ahead from the next chunk on, given the stack
	 * nodes the current one defines after where reading stands. */
	p->ds.aring = malloc(MST__REF_WINDOW * sizeof(uint64_t));
	p->ds.c_slot = SIZE_MAX;
	p->nstacks = r->nstacks;
	p->pd_on = p->ds.aring && r->have_header && !r->pd &&
		   count_stacks(&r->ds, &p->nstacks) == 0;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	r->pf = p;
	if (pthread_create(&p->th, NULL, prefetch_main, r) != 0) {
		r->pf = NULL;
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p->ds.aring);
		free(p);
		return -1;
	}
	return 0;
}

/* Ends the prefetch thread; waits for a read(2) it is blocked in. */
static void prefetch_stop(struct mst_reader *r)
{
	struct prefetch *p = r->pf;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->abort = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	for (size_t i = 0; i < PF_SLOTS; i++) {
		free(p->slot[i].buf.payload);
		free(p->slot[i].buf.raw);
		ev_release(&p->slot[i].pd);
		free(p->slot[i].pd.brk);
	}
	free(p->ds.aring);
	free(p->ds.addrs.slots);
	free(p->ds.addrs.used);
	free(p);
	r->pd = NULL;
	r->pf = NULL;
}

/* Makes the next chunk's records current: read here or by the prefetch
 * thread, with the same results and the same errors either way. */
/*
 * Starts decoding the chunk of LEN bytes at RBASE: its lanes (FORMAT.md
 * §5: two lengths, then times, addresses, and the records in the rest) and
 * a zero delta state. -1 when the lane lengths exceed the chunk.
 */
static int lanes_open(struct dstate *ds, uint8_t *rbase, size_t len)
{
	ds->rp = rbase;
	ds->rend = rbase + len;
	ds->tp = ds->tend = ds->ap = ds->aend = rbase;
	if (len) {
		struct mst__in in = { rbase, rbase + len, NULL };
		uint64_t tlen = mst__get_vu(&in), alen = mst__get_vu(&in);
		size_t left = (size_t)(in.end - in.p);

		if (in.err || tlen > left || alen > left - tlen)
			return -1;
		ds->tp = in.p;
		ds->tend = ds->ap = in.p + tlen;
		ds->aend = ds->ap + alen;
		ds->rp = (uint8_t *)ds->aend;
	}
	ds->d_time = 0;
	ds->cur_thread = 0;
	ds->ref = 0;
	ds->nallocs = 0;
	ds->nfrees = 0;
	mst__tab_clear(&ds->addrs);
	ds->c_slot = SIZE_MAX;
	return 0;
}

static int next_chunk(struct mst_reader *r)
{
	struct pd_chunk *pd = NULL;
	uint8_t *rbase = NULL;
	size_t len = 0;
	int st;

	if (r->pf)
		st = prefetch_take(r, &rbase, &len, &pd);
	else
		st = read_chunk(r, &r->io, &r->buf, r->err, &rbase, &len);
	if (st == CHUNK_EOF)
		return eof_status(r);
	if (st != MST_OK)
		return r->status = st;
	r->rbase = rbase;
	/* Decoded ahead: given from there, unless its first time goes back
	 * from the last chunk's (which the thread did not know): then it is
	 * decoded here, which says so. */
	if (pd && !(pd->timed && pd->first_time < r->ds.last_time)) {
		r->pd = pd;
		r->pd_i = r->pd_b = 0;
		r->pd_last0 = r->ds.last_time;
		r->ds.rp = r->ds.rend = rbase + len;
		r->ds.tp = r->ds.tend = r->ds.ap = r->ds.aend = rbase;
		return MST_OK;
	}
	if (lanes_open(&r->ds, rbase, len))
		return corrupt(r, "lane lengths exceed the chunk");
	return MST_OK;
}

/*
 * Reads a str in place: the bytes move back over their length varint and
 * get a NUL, so no string is ever copied out of the chunk buffer. The
 * chunk is never parsed twice, so clobbering the varint is harmless.
 */
static const char *get_str(struct mst__in *in)
{
	uint8_t *at = (uint8_t *)in->p;
	size_t n;
	const uint8_t *b = mst__get_bytes(in, &n);

	if (!b)
		return NULL;
	if (memchr(b, 0, n)) {
		in->err = "string contains a NUL byte";
		return NULL;
	}
	memmove(at, b, n);
	at[n] = 0;
	return (const char *)at;
}

static uint64_t get_time(struct mst_reader *r, struct mst__in *in)
{
	uint64_t d = mst__get_vu(in), t = r->ds.d_time + d;

	if (in->err)
		return 0;
	if (t < r->ds.d_time) {
		in->err = "time overflows 64 bits";
		return 0;
	}
	if (t < r->ds.last_time) {
		in->err = "time goes backwards";
		return 0;
	}
	r->ds.d_time = t;
	r->ds.last_time = t;
	return t;
}

/*
 * The address chain of THREAD: the slot to update after decoding. The
 * table grows with the threads of one chunk, which its size bounds.
 */
static int addr_slot(struct dstate *ds, uint64_t thread, size_t *slot)
{
	struct mst__addr_tab *t = &ds->addrs;

	/* FORMAT.md §5 bounds the threads of a chunk, and so this memory. */
	if (t->nused >= MST__MAX_CHUNK_THREADS && !t->slots[mst__tab_find(t, thread)].busy)
		return 1;

	if (2 * (t->nused + 1) > t->cap) {
		struct mst__addr_tab n = { 0 };
		n.cap = t->cap ? 2 * t->cap : 64;
		n.slots = calloc(n.cap, sizeof(*n.slots));
		n.used = calloc(n.cap / 2 + 1, sizeof(*n.used));
		if (!n.slots || !n.used) {
			free(n.slots);
			free(n.used);
			return -1;
		}
		/* Same threads, same order: only the hash positions move. */
		for (size_t k = 0; k < t->nused; k++) {
			const struct mst__addr_slot *o = &t->slots[t->used[k]];
			size_t i = mst__tab_find(&n, o->thread);
			n.slots[i] = *o;
			n.used[n.nused++] = i;
		}
		free(t->slots);
		free(t->used);
		*t = n;
		ds->c_slot = SIZE_MAX;          /* the slots moved */
	}
	*slot = mst__tab_find(t, thread);
	return 0;
}

static int stack_ok(struct mst_reader *r, struct mst__in *in, uint64_t id)
{
	if (id > r->nstacks && !in->err)
		in->err = "record uses a stack node not yet defined";
	return !in->err;
}

/* ---- tables ---- */

static int add_stack(struct mst_reader *r, uint64_t parent, uint64_t ip)
{
	if (reserve(&r->stk, &r->stk_cap, 2 * (r->nstacks + 1), sizeof(uint64_t)))
		return -1;
	r->stk[2 * r->nstacks] = parent;
	r->stk[2 * r->nstacks + 1] = ip;
	r->nstacks++;
	return 0;
}

static int add_module(struct mst_reader *r, const struct mst_module_load *m)
{
	size_t plen = strlen(m->path) + 1, lo, hi;
	size_t segsz = m->nsegs * sizeof(struct mst_segment);
	struct module *mod;
	uint8_t *p;

	mod = malloc(sizeof(*mod) + segsz + plen + m->build_id_len);
	if (!mod)
		return -1;
	if (reserve(&r->mods, &r->mods_cap, r->nmods + 1, sizeof(*r->mods)) ||
	    reserve(&r->by_id, &r->by_id_cap, r->nby_id + 1, sizeof(*r->by_id)) ||
	    reserve(&r->iv, &r->iv_cap, r->niv + m->nsegs, sizeof(*r->iv)) ||
	    reserve(&r->iv_maxend, &r->iv_maxend_cap, r->niv + m->nsegs, sizeof(uint64_t))) {
		free(mod);
		return -1;
	}
	p = (uint8_t *)(mod + 1);
	mod->m = *m;
	mod->m.segs = (struct mst_segment *)p;
	memcpy(p, m->segs, segsz);
	p += segsz;
	mod->m.path = (char *)p;
	memcpy(p, m->path, plen);
	p += plen;
	mod->m.build_id = m->build_id_len ? p : NULL;
	if (m->build_id_len)
		memcpy(p, m->build_id, m->build_id_len);
	mod->seq = r->nmods;
	r->mods[r->nmods++] = mod;

	/* By id: ids are unique in a valid trace; a repeated one replaces the
	 * earlier for mst_reader_module (its segments stay findable). */
	lo = 0, hi = r->nby_id;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->by_id[mid]->m.module < m->module)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nby_id && r->by_id[lo]->m.module == m->module) {
		r->by_id[lo] = mod;
	} else {
		memmove(r->by_id + lo + 1, r->by_id + lo,
			(r->nby_id - lo) * sizeof(*r->by_id));
		r->by_id[lo] = mod;
		r->nby_id++;
	}

	for (uint32_t i = 0; i < m->nsegs; i++) {
		uint64_t start = m->base + m->segs[i].vaddr;
		uint64_t end = start + m->segs[i].memsz;
		size_t at;
		if (!m->segs[i].memsz || end < start)
			continue;
		lo = 0, hi = r->niv;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (r->iv[mid].start <= start)
				lo = mid + 1;
			else
				hi = mid;
		}
		at = lo;
		memmove(r->iv + at + 1, r->iv + at, (r->niv - at) * sizeof(*r->iv));
		r->iv[at] = (struct interval){ start, end, mod };
		r->niv++;
		for (size_t k = at; k < r->niv; k++) {
			uint64_t prev = k ? r->iv_maxend[k - 1] : 0;
			r->iv_maxend[k] = r->iv[k].end > prev ? r->iv[k].end : prev;
		}
	}
	return 0;
}

static struct thread_slot *thread_slot(const struct mst_reader *r, uint64_t thread)
{
	size_t mask = r->thr_cap - 1, i;

	if (!r->thr_cap)
		return NULL;
	i = (thread * 0x9e3779b97f4a7c15ull) >> 20 & mask;
	while (r->thr[i].thread && r->thr[i].thread != thread)
		i = (i + 1) & mask;
	return &r->thr[i];
}

static int set_thread_name(struct mst_reader *r, uint64_t thread, const char *name)
{
	struct thread_slot *s;
	char *copy;

	if (thread == 0)
		return 0;             /* 0 is "unknown", never a thread */
	if (r->nthr + 1 > r->thr_cap / 2) {
		struct thread_slot *old = r->thr;
		size_t oldcap = r->thr_cap;
		r->thr_cap = oldcap ? oldcap * 2 : 64;
		r->thr = calloc(r->thr_cap, sizeof(*r->thr));
		if (!r->thr) {
			r->thr = old;
			r->thr_cap = oldcap;
			return -1;
		}
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].thread)
				*thread_slot(r, old[i].thread) = old[i];
		free(old);
	}
	s = thread_slot(r, thread);
	if (s->thread && strcmp(s->name, name) == 0)
		return 0;
	copy = strdup(name);
	if (!copy)
		return -1;
	if (s->thread) {
		if (reserve(&r->old_names, &r->old_cap, r->nold + 1, sizeof(char *))) {
			free(copy);
			return -1;
		}
		r->old_names[r->nold++] = s->name;
	} else {
		r->nthr++;
	}
	s->thread = thread;
	s->name = copy;
	return 0;
}

/* Keeps the HEADER for mst_reader_header(): strings copied out of the chunk. */
static int keep_header(struct mst_reader *r, const struct mst_header *h)
{
	size_t need = (h->argc + 1) * sizeof(char *), lens[3];
	const char *s[3] = { h->program, h->allocator, h->hostname };
	const char **argv;
	char *p;

	for (int i = 0; i < 3; i++)
		need += lens[i] = strlen(s[i]) + 1;
	for (uint64_t i = 0; i < h->argc; i++)
		need += strlen(h->argv[i]) + 1;
	r->header_mem = malloc(need);
	if (!r->header_mem)
		return -1;
	r->header = *h;
	argv = r->header_mem;
	p = (char *)(argv + h->argc + 1);
	for (uint64_t i = 0; i < h->argc; i++) {
		size_t n = strlen(h->argv[i]) + 1;
		argv[i] = memcpy(p, h->argv[i], n);
		p += n;
	}
	argv[h->argc] = NULL;
	r->header.argv = argv;
	r->header.program = memcpy(p, s[0], lens[0]);
	p += lens[0];
	r->header.allocator = memcpy(p, s[1], lens[1]);
	p += lens[1];
	r->header.hostname = memcpy(p, s[2], lens[2]);
	return 0;
}

/* ---- records ---- */

static int decode_header(struct mst_reader *r, struct mst__in *in)
{
	struct mst_header *h = &r->rec.u.header;
	const uint8_t *sid;
	size_t n;

	memset(h, 0, sizeof(*h));
	h->ticks_per_second = mst__get_vu(in);
	h->start_wall_ns = mst__get_vu(in);
	h->pid = mst__get_vu(in);
	h->ppid = mst__get_vu(in);
	sid = mst__get_bytes(in, &n);
	if (sid)
		memcpy(h->session_id, sid, n < 16 ? n : 16);
	h->program = get_str(in);
	h->argc = mst__get_vu(in);
	if (in->err)
		return 0;
	/* Each argument takes at least its length byte. */
	if (h->argc > (uint64_t)(in->end - in->p)) {
		in->err = "argc larger than the record";
		return 0;
	}
	if (reserve(&r->argv, &r->argv_cap, h->argc + 1, sizeof(char *)))
		return -1;
	for (uint64_t i = 0; i < h->argc; i++)
		r->argv[i] = get_str(in);
	r->argv[h->argc] = NULL;
	h->argv = r->argv;
	h->sample_rate_ppm = mst__get_vu(in);
	h->unwinder = mst__get_u8(in);
	h->stack_depth = mst__get_vu(in);
	h->flags = mst__get_vu(in);
	h->exec_generation = mst__get_vu(in);
	h->allocator = get_str(in);
	h->hostname = get_str(in);
	return 0;
}

static int decode_symbols(struct mst_reader *r, struct mst__in *in)
{
	struct mst_symbols *s = &r->rec.u.symbols;
	uint64_t start = 0;

	s->module = mst__get_vu(in);
	s->count = mst__get_vu(in);
	s->items = NULL;
	if (in->err)
		return 0;
	/* An entry is at least 5 bytes: bound the array by the record. */
	if (s->count > (uint64_t)(in->end - in->p) / 5) {
		in->err = "symbol count larger than the record";
		return 0;
	}
	if (reserve(&r->syms, &r->syms_cap, s->count ? s->count : 1, sizeof(*r->syms)))
		return -1;
	for (uint64_t i = 0; i < s->count && !in->err; i++) {
		struct mst_symbol *e = &r->syms[i];
		start += mst__get_vu(in);
		e->start = start;
		e->size = mst__get_vu(in);
		e->function = get_str(in);
		e->file = get_str(in);
		e->line = mst__get_vu(in);
	}
	s->items = r->syms;
	return 0;
}

/*
 * Decodes the body of known extension record TYPE from IN. Returns -1 when
 * out of memory; decoding errors are left in in->err.
 */
static int decode_ext(struct mst_reader *r, uint64_t type, struct mst__in *in)
{
	struct mst_record *x = &r->rec;

	switch (type) {
	case MST__T_HEADER:
		r->rec.type = MST_REC_HEADER;
		return decode_header(r, in);
	case MST__T_MODULE_LOAD: {
		struct mst_module_load *m = &x->u.module_load;
		r->rec.type = MST_REC_MODULE_LOAD;
		m->time = get_time(r, in);
		m->module = mst__get_vu(in);
		m->base = mst__get_vu(in);
		m->path = get_str(in);
		m->build_id = mst__get_bytes(in, &m->build_id_len);
		uint64_t nsegs = mst__get_vu(in);
		if (in->err)
			return 0;
		if (nsegs > MST_MAX_SEGMENTS) {
			in->err = "module has more than 256 segments";
			return 0;
		}
		m->nsegs = nsegs;
		for (uint32_t i = 0; i < m->nsegs; i++) {
			r->segs[i].vaddr = mst__get_vu(in);
			r->segs[i].memsz = mst__get_vu(in);
			r->segs[i].offset = mst__get_vu(in);
			r->segs[i].flags = mst__get_u8(in);
		}
		m->segs = r->segs;
		if (in->err)
			return 0;
		return add_module(r, m);
	}
	case MST__T_MODULE_UNLOAD:
		r->rec.type = MST_REC_MODULE_UNLOAD;
		x->u.module_unload.time = get_time(r, in);
		x->u.module_unload.module = mst__get_vu(in);
		return 0;
	case MST__T_THREAD_START:
		r->rec.type = MST_REC_THREAD_START;
		x->u.thread_start.time = get_time(r, in);
		x->u.thread_start.thread = mst__get_vu(in);
		x->u.thread_start.tid = mst__get_vu(in);
		x->u.thread_start.parent = mst__get_vu(in);
		return 0;
	case MST__T_THREAD_NAME:
		r->rec.type = MST_REC_THREAD_NAME;
		x->u.thread_name.time = get_time(r, in);
		x->u.thread_name.thread = mst__get_vu(in);
		x->u.thread_name.name = get_str(in);
		if (in->err)
			return 0;
		return set_thread_name(r, x->u.thread_name.thread, x->u.thread_name.name);
	case MST__T_THREAD_EXIT:
		r->rec.type = MST_REC_THREAD_EXIT;
		x->u.thread_exit.time = get_time(r, in);
		x->u.thread_exit.thread = mst__get_vu(in);
		return 0;
	case MST__T_COUNTERS: {
		uint64_t count;
		r->rec.type = MST_REC_COUNTERS;
		x->u.counters.time = get_time(r, in);
		count = mst__get_vu(in);
		if (!in->err && count > MST_MAX_COUNTERS)
			in->err = "more than 64 counters";
		if (in->err)
			return 0;
		x->u.counters.count = count;
		for (uint32_t i = 0; i < count; i++) {
			r->ctrs[i].key = mst__get_vu(in);
			r->ctrs[i].value = mst__get_vu(in);
		}
		x->u.counters.items = r->ctrs;
		return 0;
	}
	case MST__T_LABEL:
		r->rec.type = MST_REC_LABEL;
		x->u.label.time = get_time(r, in);
		x->u.label.thread = mst__get_vu(in);
		x->u.label.addr = mst__get_vu(in);
		x->u.label.name = get_str(in);
		x->u.label.type = get_str(in);
		return 0;
	case MST__T_TASK_BEGIN:
		r->rec.type = MST_REC_TASK_BEGIN;
		x->u.task_begin.time = get_time(r, in);
		x->u.task_begin.thread = mst__get_vu(in);
		x->u.task_begin.task = mst__get_vu(in);
		x->u.task_begin.name = get_str(in);
		return 0;
	case MST__T_TASK_END:
		r->rec.type = MST_REC_TASK_END;
		x->u.task_end.time = get_time(r, in);
		x->u.task_end.thread = mst__get_vu(in);
		x->u.task_end.task = mst__get_vu(in);
		return 0;
	case MST__T_DROPPED:
		r->rec.type = MST_REC_DROPPED;
		x->u.dropped.time = get_time(r, in);
		x->u.dropped.thread = mst__get_vu(in);
		x->u.dropped.events = mst__get_vu(in);
		x->u.dropped.bytes = mst__get_vu(in);
		return 0;
	case MST__T_END:
		r->rec.type = MST_REC_END;
		x->u.end.time = get_time(r, in);
		x->u.end.reason = mst__get_u8(in);
		x->u.end.status = mst__get_vs(in);
		x->u.end.events = mst__get_vu(in);
		x->u.end.dropped = mst__get_vu(in);
		return 0;
	case MST__T_SYMBOLS:
		r->rec.type = MST_REC_SYMBOLS;
		return decode_symbols(r, in);
	}
	return 1;                     /* unknown: skip */
}

/*
 * What an event record's type says (FORMAT.md §5.1): its kind, its
 * function, and whether a thread index follows. 0 for any other type.
 */
enum { EV_ALLOC = 1, EV_FREE = 2, EV_REF = 3, EV_THREAD = 0x20 };
#define EV_KIND(info) ((info) >> 6)
#define EV_FUNC(info) ((info) & 0x1f)
#define EVT(kind, base, f) \
	[(base) + (f)] = (kind) << 6 | (f), \
	[(base) + (f) + MST__T_THREAD] = (kind) << 6 | EV_THREAD | (f)
/* every FREE and FREE_REF, the same in both tables below */
#define EVT_FREES \
	EVT(EV_FREE, MST__T_FREE, 1), EVT(EV_FREE, MST__T_FREE, 2), \
	EVT(EV_FREE, MST__T_FREE, 3), EVT(EV_FREE, MST__T_FREE, 4), \
	EVT(EV_FREE, MST__T_FREE, 5), \
	EVT(EV_REF, MST__T_FREE_REF, 1), EVT(EV_REF, MST__T_FREE_REF, 2), \
	EVT(EV_REF, MST__T_FREE_REF, 3), EVT(EV_REF, MST__T_FREE_REF, 4), \
	EVT(EV_REF, MST__T_FREE_REF, 5)
static const uint8_t ev_info[256] = {
	EVT(EV_ALLOC, MST__T_ALLOC, 1), EVT(EV_ALLOC, MST__T_ALLOC, 2),
	EVT(EV_ALLOC, MST__T_ALLOC, 3), EVT(EV_ALLOC, MST__T_ALLOC, 4),
	EVT(EV_ALLOC, MST__T_ALLOC, 5), EVT(EV_ALLOC, MST__T_ALLOC, 6),
	EVT(EV_ALLOC, MST__T_ALLOC, 7), EVT(EV_ALLOC, MST__T_ALLOC, 8),
	EVT(EV_ALLOC, MST__T_ALLOC, 9), EVT(EV_ALLOC, MST__T_ALLOC, 10),
	EVT(EV_ALLOC, MST__T_ALLOC, 11), EVT(EV_ALLOC, MST__T_ALLOC, 12),
	EVT(EV_ALLOC, MST__T_ALLOC, 13),
	EVT_FREES,
};
_Static_assert(MST_ALLOC_FUNC_MAX == 13 && MST_FREE_FUNC_MAX == 5,
	       "ev_info knows every function");

/*
 * ev_info of the events pd_run takes whole: all but the ALLOCs with an
 * alignment or an old address (mst__alloc_extra), which it leaves to
 * fast_event. One look-up for both; the function looked up again in
 * mst__alloc_extra was a byte spilled and reloaded whole, which the CPU
 * cannot forward (a fifth of pd_run's time).
 */
static const uint8_t pd_info[256] = {
	EVT(EV_ALLOC, MST__T_ALLOC, MST_ALLOC_MALLOC),
	EVT(EV_ALLOC, MST__T_ALLOC, MST_ALLOC_CALLOC),
	EVT(EV_ALLOC, MST__T_ALLOC, MST_ALLOC_NEW),
	EVT(EV_ALLOC, MST__T_ALLOC, MST_ALLOC_NEW_ARRAY),
	EVT_FREES,
};

/* The error of a lane cursor that ran out, said as which lane. */
static const char *lane_err(const char *err, const char *short_msg)
{
	return err == mst__err_short ? short_msg : err;
}

/* An ALLOC's address (aa) from the address lane; BASE is the thread's chain. */
static uint64_t get_aa(struct mst_reader *r, struct mst__in *ain, uint64_t base)
{
	uint64_t back, d;

	if (!mst__get_aa(ain, &back, &d))
		return base + d;
	if (back >= MST__REUSE_WINDOW || back >= r->ds.nfrees) {
		ain->err = "an allocation names a free the chunk does not hold";
		return 0;
	}
	return r->ds.fring[(r->ds.nfrees - 1 - back) % MST__REUSE_WINDOW];
}

/*
 * Decodes the event record of type TYPE whose record-lane fields IN reads
 * (the type already taken) into r->rec, its time and address from their
 * lanes. 0, or an error status.
 */
static int decode_event(struct mst_reader *r, struct mst__in *in, unsigned type)
{
	static const char too_many_threads[] = "events of more than 4096 threads in one chunk";
	const uint8_t *at = r->ds.rp;
	unsigned info = ev_info[type], kind = EV_KIND(info), func = EV_FUNC(info);
	struct mst__in tin = { r->ds.tp, r->ds.tend, NULL }, ain = { r->ds.ap, r->ds.aend, NULL };
	uint64_t thread = r->ds.cur_thread, addr, base, time;
	size_t slot;
	int rs;

	if (info & EV_THREAD)
		thread = mst__get_vu(in);
	if (in->err)
		return corrupt_rec(r, at, in->err);
	if ((rs = addr_slot(&r->ds, thread, &slot)) != 0)
		return rs < 0 ? nomem(r) : corrupt_rec(r, at, too_many_threads);
	base = r->ds.addrs.slots[slot].busy ? r->ds.addrs.slots[slot].addr : 0;
	if (kind == EV_ALLOC) {
		struct mst_alloc *a = &r->rec.u.alloc;
		r->rec.type = MST_REC_ALLOC;
		a->thread = thread;
		a->func = func;
		a->size = mst__get_vu(in);
		a->stack = mst__get_vu(in);
		a->alignment = mst_alloc_func_has_alignment(func) ? mst__get_vu(in) : 0;
		time = get_time(r, &tin);
		addr = get_aa(r, &ain, base);
		a->old_addr = mst_alloc_func_is_realloc(func) ? addr + mst__get_va(&ain) : 0;
		a->time = time;
		a->addr = addr;
		stack_ok(r, in, a->stack);
	} else {
		struct mst_free *f = &r->rec.u.free;
		r->rec.type = MST_REC_FREE;
		f->thread = thread;
		f->func = func;
		f->stack = mst__get_vu(in);
		time = get_time(r, &tin);
		if (kind == EV_FREE) {
			addr = base + mst__get_va(&ain);
		} else {
			int64_t d = mst__unzigzag(mst__get_vu(&ain));
			uint64_t n = r->ds.ref + (uint64_t)d;
			if (!ain.err && (n >= r->ds.nallocs || r->ds.nallocs - n > MST__REF_WINDOW))
				ain.err = "FREE_REF names an allocation the chunk does not hold";
			addr = ain.err ? 0 : r->ds.aring[n % MST__REF_WINDOW];
			r->ds.ref = n + 1;
		}
		f->time = time;
		f->addr = addr;
		stack_ok(r, in, f->stack);
	}
	if (in->err)
		return corrupt_rec(r, at, in->err);
	if (tin.err)
		return corrupt_rec(r, at, lane_err(tin.err, "the time lane ends before its records"));
	if (ain.err)
		return corrupt_rec(r, at, lane_err(ain.err, "the address lane ends before its records"));
	if (kind == EV_ALLOC)
		r->ds.aring[r->ds.nallocs++ % MST__REF_WINDOW] = addr;
	else
		r->ds.fring[r->ds.nfrees++ % MST__REUSE_WINDOW] = addr;
	mst__tab_set(&r->ds.addrs, slot, thread, addr);
	r->ds.c_slot = SIZE_MAX;
	r->ds.cur_thread = thread;
	r->ds.tp = tin.p;
	r->ds.ap = ain.p;
	return 0;
}

/*
 * Decodes the next record of the current chunk into r->rec. Returns MST_OK
 * with a record, 1 when the record was skipped, or an error status.
 */
static int decode_record(struct mst_reader *r)
{
	const uint8_t *at = r->ds.rp;
	struct mst__in in = { r->ds.rp, r->ds.rend, NULL };
	uint64_t type = mst__get_vu(&in);

	if (in.err)
		return corrupt_rec(r, at, in.err);
	if (type <= MST__T_CORE_LAST && ev_info[type]) {
		int st = decode_event(r, &in, (unsigned)type);
		if (st)
			return st;
	} else if (type == MST__T_STACK) {
		struct mst_stack *s = &r->rec.u.stack;
		r->rec.type = MST_REC_STACK;
		s->parent = mst__get_vu(&in);
		s->ip = mst__get_vu(&in);
		s->id = r->nstacks + 1;
		if (!in.err && s->parent >= s->id)
			in.err = "stack node's parent is not an earlier node";
		if (!in.err && add_stack(r, s->parent, s->ip))
			return nomem(r);
	} else if (type == MST__T_SKIP) {
		size_t n;
		mst__get_bytes(&in, &n);
		if (in.err)
			return corrupt_rec(r, at, in.err);
		r->ds.rp = (uint8_t *)in.p;
		return 1;
	} else if (type <= MST__T_CORE_LAST) {
		char what[64];
		snprintf(what, sizeof(what), "unknown core record type 0x%02llx",
			 (unsigned long long)type);
		return corrupt_rec(r, at, what);
	} else {
		size_t len;
		const uint8_t *body = mst__get_bytes(&in, &len);
		struct mst__in bin = { body, body + len, NULL };
		int st;

		if (in.err)
			return corrupt_rec(r, at, in.err);
		r->ds.rp = (uint8_t *)in.p;
		if (type == MST__T_HEADER && r->have_header)
			return corrupt_rec(r, at, "a second HEADER record");
		st = decode_ext(r, type, &bin);
		if (st < 0)
			return nomem(r);
		if (st > 0) {
			r->st.skipped_records++;
			return 1;
		}
		if (bin.err) {
			/* Known bodies are never shorter than their fields;
			 * longer is a later minor version's addition. */
			if (bin.err == mst__err_short)
				return corrupt_rec(r, at, "record body shorter than its fields");
			return corrupt_rec(r, at, bin.err);
		}
		if (!r->have_header && type != MST__T_HEADER)
			return corrupt_rec(r, at, "the first record is not a HEADER");
		return MST_OK;
	}
	if (in.err)
		return corrupt_rec(r, at, in.err);
	if (!r->have_header)
		return corrupt_rec(r, at, "the first record is not a HEADER");
	r->ds.rp = (uint8_t *)in.p;
	return MST_OK;
}

/*
 * ---- the fast path for event records ----
 *
 * Nearly every record of a trace is one of these three, and decoding them
 * through the general cursor (a bounds and sticky-error check per byte,
 * the delta state written field by field) was most of the reader's time.
 * Far enough from the end of the chunk no field can run past it, so the
 * fields are read without bounds checks into locals; the record is checked
 * whole, and only then is the delta state updated. Anything unusual (an
 * error, a type written in more than one byte, the last bytes of a chunk,
 * no HEADER yet) returns 0 and decode_record() decodes the record again,
 * giving the same record or the same error as it always did.
 */

/*
 * Bytes each lane must still hold for fast_event to read without bounds
 * checks: the longest ALLOC's type, thread, size, stack and alignment; a
 * time; an address and an old address.
 */
#define FAST_ROOM 41
#define FAST_TIME_ROOM 10
#define FAST_ADDR_ROOM 22

static inline int fast_room(const struct dstate *ds)
{
	return (size_t)(ds->rend - ds->rp) >= FAST_ROOM &&
	       (size_t)(ds->tend - ds->tp) >= FAST_TIME_ROOM &&
	       (size_t)(ds->aend - ds->ap) >= FAST_ADDR_ROOM;
}

/*
 * How many events fast_event may decode in a row without a fast_room check:
 * each takes at least a byte of every lane, so after K of them each lane
 * has lost at most K times its longest event.
 */
static inline size_t fast_run(const struct dstate *ds)
{
	size_t k = (size_t)(ds->rend - ds->rp) / FAST_ROOM,
	       kt = (size_t)(ds->tend - ds->tp) / FAST_TIME_ROOM,
	       ka = (size_t)(ds->aend - ds->ap) / FAST_ADDR_ROOM;

	if (kt < k)
		k = kt;
	return ka < k ? ka : k;
}

/* Reads a vu at P, which has at least 10 bytes after it; NULL when it is
 * not a valid 64-bit varint. */
static const uint8_t *fast_vu_long(const uint8_t *p, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 10; i++) {
		uint64_t b = p[i];
		if (i == 9 && b > 1)
			return NULL;
		v |= (b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*out = v;
			return p + i + 1;
		}
	}
	return NULL;
}

/*
 * Sizes and time deltas are one or two bytes at random, and a
 * mispredicted branch on the length costs more than the arithmetic that
 * takes either without one; longer varints take the loop.
 */
static inline const uint8_t *fast_vu(const uint8_t *p, uint64_t *out)
{
	uint64_t b0 = p[0], b1 = p[1], two = b0 >> 7;

	if (__builtin_expect(two & b1 >> 7, 0))
		return fast_vu_long(p, out);
	*out = (b0 & 0x7f) | (b1 << 7 & -two);
	return p + 1 + two;
}

/* Thread indexes and stack ids: nearly always one byte, and a branch
 * that is nearly always taken is cheaper than arithmetic. */
static inline const uint8_t *fast_vu1(const uint8_t *p, uint64_t *out)
{
	if (__builtin_expect(p[0] < 0x80, 1)) {
		*out = p[0];
		return p + 1;
	}
	return fast_vu_long(p, out);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * Address deltas are one to three bytes at random: up to 8 bytes without
 * a branch on the length. The
 * stop byte is the first without its top bit; the 7-bit groups up to it
 * are packed together in three steps.
 */
static inline const uint8_t *fast_vu8(const uint8_t *p, uint64_t *out)
{
	uint64_t w, stop, x;
	unsigned bits;

	memcpy(&w, p, 8);
	stop = ~w & 0x8080808080808080ull;
	if (__builtin_expect(!stop, 0))
		return fast_vu_long(p, out);
	bits = (unsigned)__builtin_ctzll(stop) + 1;     /* 8 x bytes */
	x = w << (64 - bits) >> (64 - bits) & 0x7f7f7f7f7f7f7f7full;
	x = (x & 0x007f007f007f007full) | (x >> 1 & 0x3f803f803f803f80ull);
	x = (x & 0x00003fff00003fffull) | (x >> 2 & 0x0fffc0000fffc000ull);
	x = (x & 0x000000000fffffffull) | (x >> 4 & 0x00fffffff0000000ull);
	*out = x;
	return p + bits / 8;
}
#else
#define fast_vu8 fast_vu
#endif

/* The rest of a va (FORMAT.md §2) whose vu U was read, up to P. */
static inline const uint8_t *fast_va_u(const uint8_t *p, uint64_t u, uint64_t *out)
{
	uint64_t d;

	if (u >= 1ull << 61)
		return NULL;
	d = (uint64_t)mst__unzigzag(u >> 1) << 4;
	if (u & 1) {
		uint8_t low = *p++;
		if (low == 0 || low > 15)
			return NULL;
		d |= low;
	}
	*out = d;
	return p;
}

/* A va (FORMAT.md §2) at P, as mst__get_va reads it. */
static inline const uint8_t *fast_va(const uint8_t *p, uint64_t *out)
{
	uint64_t u;

	p = fast_vu8(p, &u);
	return p ? fast_va_u(p, u, out) : NULL;
}


/*
 * Decodes the event record at r->ds.rp into *O: 1; or 0 for decode_record.
 * COMPACT: also 0 for an event that struct mst__event cannot hold (wide
 * thread or stack numbers, a size over MST__EV_SIZE_MAX, an alignment or
 * an old address), before the delta state moves, so that mst_reader_next
 * takes it whole. The caller has checked fast_room().
 */
static inline __attribute__((always_inline)) int
fast_event(struct dstate *ds, uint64_t nstacks, struct fast_out *o, int compact)
{
	const uint8_t *p = ds->rp, *tp, *ap;
	unsigned info = ev_info[p[0]], kind = EV_KIND(info), func = EV_FUNC(info);
	uint64_t dt, t, thread = ds->cur_thread, addr, stack;
	struct mst__addr_slot *sl;
	size_t slot;

	if (!info)
		return 0;
	p++;
	if (info & EV_THREAD) {
		p = fast_vu1(p, &thread);
		if (!p)
			return 0;
	}
	if (compact && thread > UINT32_MAX)
		return 0;
	tp = fast_vu1(ds->tp, &dt);  /* time deltas: one byte but after a pause */
	if (!tp)
		return 0;
	t = ds->d_time + dt;
	/* d_time <= last_time always, so this also catches a t that wrapped */
	if (t < ds->last_time)
		return 0;
	if (thread == ds->cur_thread && ds->c_slot != SIZE_MAX) {
		slot = ds->c_slot;
	} else if (addr_slot(ds, thread, &slot) != 0) {
		return 0;
	}
	sl = &ds->addrs.slots[slot];

	if (kind == EV_ALLOC) {
		uint64_t d, size, align = 0, old = 0;
		unsigned x = mst__alloc_extra[func];

		if (compact && x & (MST__X_ALIGN | MST__X_OLD))
			return 0;
		p = fast_vu(p, &size);
		if (p)
			p = fast_vu1(p, &stack);
		if (p && x & MST__X_ALIGN)
			p = fast_vu(p, &align);
		ap = fast_vu8(ds->ap, &d);
		if (!p || !ap || stack > nstacks)
			return 0;
		if (d & 1) {
			/* one of the chunk's latest frees, D >> 1 back */
			if (d >> 1 >= MST__REUSE_WINDOW || d >> 1 >= ds->nfrees)
				return 0;
			addr = ds->fring[(ds->nfrees - 1 - (d >> 1)) % MST__REUSE_WINDOW];
		} else {
			ap = fast_va_u(ap, d >> 1, &d);
			if (!ap)
				return 0;
			addr = (sl->busy ? sl->addr : 0) + d;
		}
		if (x & MST__X_OLD) {
			ap = fast_va(ap, &old);
			if (!ap)
				return 0;
			old += addr;
		}
		if (compact && (stack > UINT32_MAX || size > MST__EV_SIZE_MAX))
			return 0;
		ds->aring[ds->nallocs++ % MST__REF_WINDOW] = addr;
		o->type = MST_REC_ALLOC;
		o->size = size;
		o->align = align;
		o->old = old;
	} else {
		p = fast_vu1(p, &stack);
		if (!p || stack > nstacks || (compact && stack > UINT32_MAX))
			return 0;
		if (kind == EV_FREE) {
			uint64_t d;
			ap = fast_va(ds->ap, &d);
			if (!ap)
				return 0;
			addr = (sl->busy ? sl->addr : 0) + d;
		} else {
			uint64_t u, n;
			ap = fast_vu1(ds->ap, &u);
			if (!ap)
				return 0;
			n = ds->ref + (uint64_t)mst__unzigzag(u);
			if (n >= ds->nallocs || ds->nallocs - n > MST__REF_WINDOW)
				return 0;
			addr = ds->aring[n % MST__REF_WINDOW];
			ds->ref = n + 1;
		}
		ds->fring[ds->nfrees++ % MST__REUSE_WINDOW] = addr;
		o->type = MST_REC_FREE;
		o->size = 0;
	}
	if (__builtin_expect(sl->busy, 1))
		sl->addr = addr;
	else
		mst__tab_set(&ds->addrs, slot, thread, addr);
	o->func = func;
	o->time = t;
	o->thread = thread;
	o->addr = addr;
	o->stack = stack;
	ds->cur_thread = thread;
	ds->c_slot = slot;
	ds->d_time = t;
	ds->last_time = t;
	ds->rp = (uint8_t *)p;
	ds->tp = tp;
	ds->ap = ap;
	return 1;
}

/* ---- decoding ahead, on the read-ahead thread ---- */

/*
 * pd_run's varints: the value and where it ends come back in two
 * registers. With fast_vu's pointer to the value, the call to
 * fast_vu_long on the rare long path kept every field in memory.
 */
struct vu_at {
	const uint8_t *p;             /* NULL: not a valid varint */
	uint64_t v;
};

static __attribute__((noinline)) struct vu_at vu_long_at(const uint8_t *p)
{
	struct vu_at r;
	r.p = fast_vu_long(p, &r.v);
	return r;
}

/* As fast_vu1 (one byte, nearly always). */
static inline struct vu_at vu1_at(const uint8_t *p)
{
	if (__builtin_expect(p[0] < 0x80, 1))
		return (struct vu_at){ p + 1, p[0] };
	return vu_long_at(p);
}

/* As fast_vu (one or two bytes without a branch). */
static inline struct vu_at vu2_at(const uint8_t *p)
{
	uint64_t b0 = p[0], b1 = p[1], two = b0 >> 7;

	if (__builtin_expect(two & b1 >> 7, 0))
		return vu_long_at(p);
	return (struct vu_at){ p + 1 + two, (b0 & 0x7f) | (b1 << 7 & -two) };
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* As fast_vu8 (up to 8 bytes without a branch on the length). */
static inline struct vu_at vu8_at(const uint8_t *p)
{
	uint64_t w, stop, x;
	unsigned bits;

	memcpy(&w, p, 8);
	stop = ~w & 0x8080808080808080ull;
	if (__builtin_expect(!stop, 0))
		return vu_long_at(p);
	bits = (unsigned)__builtin_ctzll(stop) + 1;     /* 8 x bytes */
	x = w << (64 - bits) >> (64 - bits) & 0x7f7f7f7f7f7f7f7full;
	x = (x & 0x007f007f007f007full) | (x >> 1 & 0x3f803f803f803f80ull);
	x = (x & 0x00003fff00003fffull) | (x >> 2 & 0x0fffc0000fffc000ull);
	x = (x & 0x000000000fffffffull) | (x >> 4 & 0x00fffffff0000000ull);
	return (struct vu_at){ p + bits / 8, x };
}
#else
#define vu8_at vu2_at
#endif

/*
 * Decodes up to MAX (at most fast_run()) events at DS into OUT as fast_event
 * would, with the delta state in registers: fast_event keeps it in DS,
 * which each store of an event might alias, so that every field was
 * loaded and stored again an event (a third of the thread's instructions).
 * Only events that struct mst__event holds whole, of threads that already
 * have an address chain in the chunk; it stops before any other record,
 * and before anything fast_event would refuse, for the caller to take as
 * ever. DS->c_slot must be cur_thread's. Returns how many it decoded.
 */
static __attribute__((noinline)) size_t pd_run(struct dstate *ds, uint64_t nstacks, struct mst__event *out, size_t max)
{
	const uint8_t *p = ds->rp, *tp = ds->tp, *ap = ds->ap;
	uint64_t t = ds->d_time, ref = ds->ref, nallocs = ds->nallocs, nfrees = ds->nfrees;
	uint64_t *aring = ds->aring, *fring = ds->fring;
	struct mst__addr_slot *sl = &ds->addrs.slots[ds->c_slot];
	uint64_t base = sl->addr;
	uint32_t thread = (uint32_t)ds->cur_thread;
	struct mst__event *e = out, *end = out + max;

	if (!sl->busy || ds->cur_thread > UINT32_MAX)
		return 0;
	/* a wider stack id stops the run: the caller makes it a break */
	if (nstacks > UINT32_MAX)
		nstacks = UINT32_MAX;
	for (; e < end; e++) {
		const uint8_t *q = p, *tq, *aq;
		unsigned info = pd_info[*q++], kind = EV_KIND(info);
		uint64_t dt, stack, addr, size = 0;

		if (!info)
			break;
		if (info & EV_THREAD) {
			struct vu_at x = vu1_at(q);
			uint64_t th = x.v;

			if (!x.p || th > UINT32_MAX)
				break;
			q = x.p;
			if (th != thread) {
				/* another thread's chain, one it has in this
				 * chunk: current from now on, whether this
				 * event is taken here or not (the record
				 * names it again) */
				struct mst__addr_slot *s = &ds->addrs.slots[mst__tab_find(&ds->addrs, th)];
				if (!s->busy)
					break;
				sl->addr = base;
				sl = s;
				base = s->addr;
				thread = (uint32_t)th;
			}
		}
		{
			struct vu_at x = vu1_at(tp);

			if (!x.p || t + x.v < t)
				break;
			tq = x.p;
			dt = x.v;
		}
		if (kind == EV_ALLOC) {
			struct vu_at x = vu2_at(q), y;
			uint64_t d;

			if (!x.p)
				break;
			y = vu1_at(x.p);
			if (!y.p || y.v > nstacks || x.v > MST__EV_SIZE_MAX)
				break;
			size = x.v;
			stack = y.v;
			q = y.p;
			x = vu8_at(ap);
			if (!x.p)
				break;
			aq = x.p;
			d = x.v;
			if (d & 1) {
				/* one of the chunk's latest frees, D >> 1 back */
				if (d >> 1 >= MST__REUSE_WINDOW || d >> 1 >= nfrees)
					break;
				addr = fring[(nfrees - 1 - (d >> 1)) % MST__REUSE_WINDOW];
			} else {
				aq = fast_va_u(aq, d >> 1, &d);
				if (!aq)
					break;
				addr = base + d;
			}
			aring[nallocs++ % MST__REF_WINDOW] = addr;
		} else {
			struct vu_at x = vu1_at(q);

			if (!x.p || x.v > nstacks)
				break;
			q = x.p;
			stack = x.v;
			if (kind == EV_FREE) {
				uint64_t d;

				x = vu8_at(ap);
				if (!x.p || !(aq = fast_va_u(x.p, x.v, &d)))
					break;
				addr = base + d;
			} else {
				uint64_t n;

				x = vu1_at(ap);
				if (!x.p)
					break;
				aq = x.p;
				n = ref + (uint64_t)mst__unzigzag(x.v);
				if (n >= nallocs || nallocs - n > MST__REF_WINDOW)
					break;
				addr = aring[n % MST__REF_WINDOW];
				ref = n + 1;
			}
			fring[nfrees++ % MST__REUSE_WINDOW] = addr;
		}
		t += dt;
		base = addr;
		p = q;
		tp = tq;
		ap = aq;
		e->time = t;
		e->addr = addr;
		e->word = (kind == EV_ALLOC ? size : MST__EV_FREE) | (uint64_t)EV_FUNC(info) << 56;
		e->thread = thread;
		e->stack = (uint32_t)stack;
	}
	sl->addr = base;
	ds->c_slot = (size_t)(sl - ds->addrs.slots);
	ds->cur_thread = thread;
	if (e != out) {
		ds->rp = (uint8_t *)p;
		ds->tp = tp;
		ds->ap = ap;
		ds->d_time = ds->last_time = t;
		ds->ref = ref;
		ds->nallocs = nallocs;
		ds->nfrees = nfrees;
	}
	return (size_t)(e - out);
}

/* Largest chunk decoded ahead (ms-record writes 256 KiB ones, earlier
 * versions 1 MiB, and a record may end a chunk a little past that), so
 * that its events take at most about 12 MiB a slot. A larger one ends
 * decoding ahead. */
#define PD_MAX_RAW ((1u << 20) + (64u << 10))

/* Whether extension record TYPE has a time as its first field (§5.2). */
static int ext_timed(uint64_t type)
{
	return type > MST__T_HEADER && type <= MST__T_END;
}

/*
 * Counts the STACK records from where DS stands to the end of its chunk,
 * into *N; -1 when a record there does not parse (the reader will say so).
 */
static int count_stacks(const struct dstate *ds, uint64_t *n)
{
	struct mst__in in = { ds->rp, ds->rend, NULL };

	while (!in.err && in.p < in.end) {
		uint64_t type = mst__get_vu(&in);
		unsigned info = type < 256 ? ev_info[type] : 0;
		size_t len;

		if (info) {
			if (info & EV_THREAD)
				mst__get_vu(&in);
			if (EV_KIND(info) == EV_ALLOC) {
				mst__get_vu(&in);
				mst__get_vu(&in);
				if (mst__alloc_extra[EV_FUNC(info)] & MST__X_ALIGN)
					mst__get_vu(&in);
			} else {
				mst__get_vu(&in);
			}
		} else if (type == MST__T_STACK) {
			mst__get_vu(&in);
			mst__get_vu(&in);
			(*n)++;
		} else if (type == MST__T_SKIP || type > MST__T_CORE_LAST) {
			mst__get_bytes(&in, &len);
		} else {
			return -1;
		}
	}
	return in.err ? -1 : 0;
}

static struct pd_break *pd_add_break(struct pd_chunk *pd, int kind)
{
	struct pd_break *b;

	if (reserve(&pd->brk, &pd->brk_cap, pd->nbrk + 1, sizeof(*pd->brk)))
		return NULL;
	b = &pd->brk[pd->nbrk++];
	b->at = pd->nev;
	b->kind = kind;
	return b;
}

/*
 * Decodes chunk S's events ahead into S->pd with the thread's own state,
 * leaving STACK, SKIP and extension records, in order, to the reader's
 * thread. Anything it does not take whole (damage, an event the fast path
 * refuses, a record it does not know, a chunk too large) leaves the chunk,
 * and every later one, to the reader's thread, which decodes them as ever
 * and so gives the same records and the same errors.
 */
static void predecode(struct prefetch *p, struct pf_slot *s)
{
	struct pd_chunk *pd = &s->pd;
	struct dstate *ds = &p->ds;
	uint64_t nstacks = p->nstacks;
	int timed = 0;
	size_t safe = 0;

	pd->ok = 0;
	pd->nev = pd->nbrk = 0;
	pd->timed = 0;
	if (!p->pd_on)
		return;
	p->pd_on = 0;                 /* until this chunk is decoded whole */
	if (s->len > PD_MAX_RAW || lanes_open(ds, s->rbase, s->len))
		return;
	ds->last_time = 0;            /* the last chunk's: checked on taking */
	/* every event takes a byte of each lane at least, so the events of
	 * the chunk fit (no check per event) */
	{
		size_t most = (size_t)(ds->tend - ds->tp);
		if ((size_t)(ds->aend - ds->ap) < most)
			most = (size_t)(ds->aend - ds->ap);
		if ((size_t)(ds->rend - ds->rp) < most)
			most = (size_t)(ds->rend - ds->rp);
		if (ev_reserve(pd, most + 1))
			return;
	}
	while (ds->rp < ds->rend) {
		unsigned type = ds->rp[0];
		struct fast_out o;

		if (ev_info[type]) {
			if (!safe)
				safe = fast_run(ds);
			/* not for a record it would stop at at once (a realloc
			 * between two runs): its start costs about an event */
			if (pd_info[type] && ds->c_slot != SIZE_MAX) {
				size_t k = pd_run(ds, nstacks, pd->ev + pd->nev, safe);

				if (k) {
					if (!timed)
						pd->first_time = pd->ev[pd->nev].time;
					timed = 1;
					pd->nev += k;
					safe -= k;
					continue;
				}
			}
			if (!fast_event(ds, nstacks, &o, 0))
				return;
			/* past the run that fast_run() vouched for, the payload's
			 * zero padding let it read beyond a lane's end: was any
			 * of it used? */
			if (safe)
				safe--;
			else if (ds->rp > ds->rend || ds->tp > ds->tend || ds->ap > ds->aend)
				return;
			if (!timed)
				pd->first_time = o.time;
			timed = 1;
			/* what mst__reader_events would stop at */
			if ((o.thread | o.stack) > UINT32_MAX ||
			    (o.type == MST_REC_ALLOC &&
			     (mst__alloc_extra[o.func] & (MST__X_ALIGN | MST__X_OLD) ||
			      o.size > MST__EV_SIZE_MAX))) {
				struct pd_break *b = pd_add_break(pd, PD_EVENT);
				if (!b)
					return;
				b->ev = o;
				continue;
			}
			pd->ev[pd->nev++] = (struct mst__event){ o.time, o.addr,
				mst__ev_word(o.type, o.func, o.size), (uint32_t)o.thread, (uint32_t)o.stack };
		} else {
			struct mst__in in = { ds->rp, ds->rend, NULL };
			uint64_t t = mst__get_vu(&in), n = 0;
			struct pd_break *b;
			size_t len;

			if (t == MST__T_STACK) {
				uint64_t parent = mst__get_vu(&in);
				mst__get_vu(&in);
				if (in.err || parent > nstacks)
					return;
				nstacks++;
				safe = 0;
			} else if (t == MST__T_SKIP || t > MST__T_CORE_LAST) {
				const uint8_t *body = mst__get_bytes(&in, &len);

				safe = 0;
				if (in.err)
					return;
				if (t > MST__T_CORE_LAST && ext_timed(t)) {
					/* its time moves the chain the next events use */
					struct mst__in bin = { body, body + len, NULL };
					uint64_t d = mst__get_vu(&bin);
					n = ds->d_time + d;
					if (bin.err || n < ds->d_time || n < ds->last_time)
						return;
				}
			} else {
				return;         /* damage: left whole */
			}
			b = pd_add_break(pd, PD_RECORD);
			if (!b)
				return;
			b->off = (uint32_t)(ds->rp - s->rbase);
			b->timed = timed;
			b->d_time = ds->d_time;
			if (t > MST__T_CORE_LAST && ext_timed(t)) {
				if (!timed)
					pd->first_time = n;
				timed = 1;
				ds->d_time = ds->last_time = n;
			}
			ds->rp = (uint8_t *)in.p;
		}
	}
	if (ds->rp != ds->rend || ds->tp != ds->tend || ds->ap != ds->aend)
		return;
	pd->timed = timed;
	pd->d_time = ds->d_time;
	pd->ok = 1;
	p->nstacks = nstacks;
	p->pd_on = 1;
}

/* ---- giving what was decoded ahead ---- */

/* Sets r->rec to event O, as mst_reader_next gives it. */
static void rec_from_event(struct mst_reader *r, const struct fast_out *o)
{
	r->rec.type = o->type;
	if (o->type == MST_REC_ALLOC) {
		struct mst_alloc *a = &r->rec.u.alloc;
		a->time = o->time;
		a->thread = o->thread;
		a->func = o->func;
		a->addr = o->addr;
		a->size = o->size;
		a->stack = o->stack;
		a->alignment = o->align;
		a->old_addr = o->old;
	} else {
		struct mst_free *f = &r->rec.u.free;
		f->time = o->time;
		f->thread = o->thread;
		f->func = o->func;
		f->addr = o->addr;
		f->stack = o->stack;
	}
}

/*
 * The next record of a chunk decoded ahead into r->rec: MST_OK, an error
 * status, or 1 at the chunk's end (the reader then stands at its end, with
 * the time chain the chunk left).
 */
static int pd_next(struct mst_reader *r)
{
	struct pd_chunk *pd = r->pd;

	for (;;) {
		if (r->pd_b < pd->nbrk && pd->brk[r->pd_b].at == r->pd_i) {
			const struct pd_break *b = &pd->brk[r->pd_b++];
			int st;

			if (b->kind == PD_EVENT) {
				rec_from_event(r, &b->ev);
				r->st.records++;
				return MST_OK;
			}
			r->ds.rp = r->rbase + b->off;
			r->ds.d_time = b->d_time;
			r->ds.last_time = b->timed ? b->d_time : r->pd_last0;
			st = decode_record(r);
			if (st == 1)
				continue;
			if (st == MST_OK)
				r->st.records++;
			return st;
		}
		if (r->pd_i < pd->nev) {
			const struct mst__event *e = &pd->ev[r->pd_i++];
			struct fast_out o = { mst__ev_type(e), mst__ev_func(e), e->time, e->thread,
					      e->addr, mst__ev_size(e), e->stack, 0, 0 };
			rec_from_event(r, &o);
			r->st.records++;
			return MST_OK;
		}
		r->ds.rp = r->ds.rend;
		r->ds.d_time = pd->d_time;
		if (pd->timed)
			r->ds.last_time = pd->d_time;
		else
			r->ds.last_time = r->pd_last0;
		r->pd = NULL;
		return 1;
	}
}

_Static_assert(sizeof(struct mst__event) == 32, "a compact event is four words");

/* Up to MAX events of a chunk decoded ahead, at *EV: those before its next
 * break, which mst_reader_next gives. */
static size_t pd_events(struct mst_reader *r, const struct mst__event **ev, size_t max)
{
	const struct pd_chunk *pd = r->pd;
	size_t lim = r->pd_b < pd->nbrk ? pd->brk[r->pd_b].at : pd->nev;
	size_t n = lim - r->pd_i < max ? lim - r->pd_i : max;

	*ev = pd->ev + r->pd_i;
	r->pd_i += n;
	if (n) {
		r->st.records += n;
		r->ended = 0;
	}
	return n;
}

size_t mst__reader_events_view(struct mst_reader *r, const struct mst__event **ev,
			       struct mst__event *buf, size_t max)
{
	if (r->pd && r->status == MST_OK && !r->header_pending)
		return pd_events(r, ev, max);
	*ev = buf;
	return mst__reader_events(r, buf, max);
}

size_t mst__reader_events(struct mst_reader *r, struct mst__event *ev, size_t max)
{
	size_t n = 0;

	if (r->status != MST_OK || r->header_pending || !r->have_header)
		return 0;
	if (r->pd) {
		const struct mst__event *pe;

		n = pd_events(r, &pe, max);
		memcpy(ev, pe, n * sizeof(*ev));
		return n;
	}
	while (n < max) {
		size_t run = fast_run(&r->ds), k;

		if (run > max - n)
			run = max - n;
		for (k = 0; k < run; k++) {
			struct fast_out o;
			if (!fast_event(&r->ds, r->nstacks, &o, 1))
				break;
			ev[n].time = o.time;
			ev[n].addr = o.addr;
			ev[n].word = mst__ev_word(o.type, o.func, o.size);
			ev[n].thread = (uint32_t)o.thread;
			ev[n].stack = (uint32_t)o.stack;
			n++;
		}
		if (k < run || !run)
			break;
	}
	if (n) {
		r->st.records += n;
		r->ended = 0;
	}
	return n;
}

/* The next record from the stream, chunks loaded as needed. */
static int fetch(struct mst_reader *r)
{
	for (;;) {
		int st;
		if (r->pd) {
			st = pd_next(r);
			if (st != 1)
				return st;
		}
		if (r->ds.rp == r->ds.rend) {
			if (r->ds.tp != r->ds.tend)
				return corrupt(r, "the time lane holds bytes no record uses");
			if (r->ds.ap != r->ds.aend)
				return corrupt(r, "the address lane holds bytes no record uses");
			st = next_chunk(r);
			if (st != MST_OK)
				return st;
			continue;
		}
		st = decode_record(r);
		if (st == 1)
			continue;
		if (st == MST_OK)
			r->st.records++;
		return st;
	}
}

int mst_reader_next(struct mst_reader *r, const struct mst_record **rec)
{
	struct fast_out o;
	int st;

	assert(r && rec);
	*rec = NULL;
	if (r->status != MST_OK)
		return r->status;
	if (!r->pd && !r->header_pending && r->have_header && fast_room(&r->ds) &&
	    fast_event(&r->ds, r->nstacks, &o, 0)) {
		rec_from_event(r, &o);
		r->st.records++;
		r->ended = 0;
		*rec = &r->rec;
		return MST_OK;
	}
	if (r->header_pending) {
		r->header_pending = 0;
		r->rec.type = MST_REC_HEADER;
		r->rec.u.header = r->header;
		*rec = &r->rec;
		return MST_OK;
	}
	st = fetch(r);
	if (st != MST_OK)
		return st;
	r->ended = r->rec.type == MST_REC_END;
	*rec = &r->rec;
	return MST_OK;
}

/* ---- open and close ---- */

static int open_stream(struct mst_reader *r)
{
	uint8_t pre[MST__PREAMBLE_LEN];
	ssize_t n = read_full(r, &r->io, r->err, pre, sizeof(pre));
	unsigned major, minor;
	int st;

	if (n < 0)
		return r->status = MST_ERR_IO;
	if (n == 0)
		return set_err(r, MST_ERR_NOT_TRACE, "empty input");
	if (memcmp(pre, MST__MAGIC, n < MST__MAGIC_LEN ? n : MST__MAGIC_LEN) != 0)
		return set_err(r, MST_ERR_NOT_TRACE, "not a memscope trace (bad magic)");
	if (n < (ssize_t)sizeof(pre))
		return set_err(r, MST_ERR_TRUNCATED,
			       "truncated: stream ends inside the preamble after %zd of %d bytes",
			       n, MST__PREAMBLE_LEN);
	major = mst__get_le16(pre + 8);
	minor = mst__get_le16(pre + 10);
	if (major > MST_FORMAT_MAJOR)
		return set_err(r, MST_ERR_VERSION,
			       "trace format %u.%u is newer than this reader's %d.x: upgrade memscope",
			       major, minor, MST_FORMAT_MAJOR);
	if (major < MST_FORMAT_MAJOR)
		return set_err(r, MST_ERR_VERSION,
			       "trace format %u.%u is older than this reader's %d.x and cannot be read",
			       major, minor, MST_FORMAT_MAJOR);

	st = fetch(r);
	if (st != MST_OK) {
		if (st == MST_END)      /* cannot happen: no END before HEADER */
			st = set_err(r, MST_ERR_TRUNCATED, "truncated: no HEADER record");
		return st;
	}
	if (r->rec.type != MST_REC_HEADER)
		return corrupt(r, "the first record is not a HEADER");
	if (keep_header(r, &r->rec.u.header))
		return nomem(r);
	r->header.major = major;
	r->header.minor = minor;
	r->have_header = 1;
	r->header_pending = 1;
	return MST_OK;
}

static int reader_new(struct mst_reader **out, int fd, int own, const char *name)
{
	struct mst_reader *r = calloc(1, sizeof(*r));

	*out = r;
	if (!r) {
		if (own)
			close(fd);
		return MST_ERR_NOMEM;
	}
	r->fd = fd;
	r->own_fd = own;
	r->ds.c_slot = SIZE_MAX;
	r->name = strdup(name ? name : "standard input");
	r->dctx = ZSTD_createDCtx();
	r->ds.aring = malloc(MST__REF_WINDOW * sizeof(uint64_t));
	if (!r->name || !r->dctx || !r->ds.aring)
		return nomem(r);
	return MST_OK;
}

int mst_reader_open_fd(struct mst_reader **out, int fd, const char *name)
{
	int st;

	assert(out);
	st = reader_new(out, fd, 0, name);
	if (st != MST_OK)
		return st;
	return open_stream(*out);
}

int mst_reader_open(struct mst_reader **out, const char *path)
{
	int fd, st;

	assert(out);
	if (!path || strcmp(path, "-") == 0)
		return mst_reader_open_fd(out, 0, "standard input");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		st = reader_new(out, -1, 0, path);
		if (st == MST_OK)
			st = set_err(*out, MST_ERR_IO, "cannot open '%s': %s", path, strerror(e));
		return st;
	}
	st = reader_new(out, fd, 1, path);
	if (st != MST_OK)
		return st;
	return open_stream(*out);
}

void mst_reader_close(struct mst_reader *r)
{
	if (!r)
		return;
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	prefetch_stop(r);
	ZSTD_freeDCtx(r->dctx);
	free(r->name);
	free(r->buf.payload);
	free(r->buf.raw);
	free(r->argv);
	free(r->syms);
	free(r->header_mem);
	free(r->stk);
	free(r->ds.addrs.slots);
	free(r->ds.addrs.used);
	free(r->ds.aring);
	for (size_t i = 0; i < r->nmods; i++)
		free(r->mods[i]);
	free(r->mods);
	free(r->by_id);
	free(r->iv);
	free(r->iv_maxend);
	for (size_t i = 0; i < r->thr_cap; i++)
		free(r->thr[i].name);
	free(r->thr);
	for (size_t i = 0; i < r->nold; i++)
		free(r->old_names[i]);
	free(r->old_names);
	free(r);
}

/* ---- accessors ---- */

const struct mst_header *mst_reader_header(const struct mst_reader *r)
{
	return r->have_header ? &r->header : NULL;
}

const char *mst_reader_error(const struct mst_reader *r)
{
	return r->err[0] ? r->err : "no error";
}

size_t mst_reader_stack_frames(const struct mst_reader *r, uint64_t id,
			       uint64_t *ips, size_t max)
{
	size_t n = 0;

	if (id > r->nstacks)
		return 0;
	/* Parents are always earlier nodes, so the walk ends. */
	while (id) {
		if (n < max)
			ips[n] = r->stk[2 * id - 1];
		n++;
		id = r->stk[2 * id - 2];
	}
	return n;
}

int mst_reader_stack_node(const struct mst_reader *r, uint64_t id,
			  uint64_t *parent, uint64_t *ip)
{
	if (id == 0 || id > r->nstacks)
		return MST_ERR_INVALID;
	if (parent)
		*parent = r->stk[2 * id - 2];
	if (ip)
		*ip = r->stk[2 * id - 1];
	return MST_OK;
}

uint64_t mst_reader_stack_count(const struct mst_reader *r)
{
	return r->nstacks;
}

const struct mst_module_load *mst_reader_module_at(const struct mst_reader *r,
						   uint64_t ip)
{
	const struct module *best = NULL;
	size_t lo = 0, hi = r->niv;

	/* Last interval starting at or before ip, then back while an earlier
	 * one could still reach ip; the latest loaded of those wins. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->iv[mid].start <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i-- > 0 && r->iv_maxend[i] > ip;) {
		if (r->iv[i].end > ip && (!best || r->iv[i].mod->seq > best->seq))
			best = r->iv[i].mod;
	}
	return best ? &best->m : NULL;
}

const struct mst_module_load *mst_reader_module(const struct mst_reader *r,
						uint64_t module)
{
	size_t lo = 0, hi = r->nby_id;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->by_id[mid]->m.module < module)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nby_id && r->by_id[lo]->m.module == module)
		return &r->by_id[lo]->m;
	return NULL;
}

const char *mst_reader_thread_name(const struct mst_reader *r, uint64_t thread)
{
	const struct thread_slot *s;

	if (thread == 0)
		return NULL;
	s = thread_slot(r, thread);
	return s && s->thread ? s->name : NULL;
}

void mst_reader_stats(const struct mst_reader *r, struct mst_reader_stats *st)
{
	*st = r->st;
	st->chunks = r->io.chunks;
	st->skipped_chunks = r->io.skipped;
	st->bytes = r->io.offset;
	st->complete = r->ended;
}
