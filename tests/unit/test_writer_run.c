/*
 * test_writer_run.c - mst_writer_put_run writes the bytes that
 * mst_writer_alloc/free write for the same events.
 *
 * Several threads' events sit in rings (wrapping, realloc and aligned
 * events with an extension slot, other event types between, stacks not
 * yet written, functions the format does not know, raw times that go
 * back or fall before the clock's start). A merge like the recorder's
 * writer thread drains them with put_run, handing each event put_run
 * leaves to the per-event calls, and notes the order it emitted; the
 * reference writer then gets the same events in that order one call at a
 * time. Both traces must be byte for byte the same, in several chunk
 * sizes, and must read back with every event.
 */
#include "mstrace.h"
#include "tap.h"
#include "trace_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 5
#define RING 256                 /* slots a ring (a power of two) */
#define OTHER_TYPE 7             /* an event type put_run leaves alone */

struct ring {
	struct mst_event slots[RING];
	uint64_t head, rd;           /* slot positions, never wrapped */
	uint64_t thread;
};

struct clockp {
	uint64_t start, mult;
	unsigned shift;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Appends events to ring R until it holds about FILL slots. */
static void fill_ring(struct ring *r, uint64_t *raw_time, uint64_t *next_stack,
		      uint64_t fill)
{
	while (r->head - r->rd + 2 <= fill) {
		struct mst_event *ev = &r->slots[r->head & (RING - 1)];
		uint64_t k = rnd() % 100;
		unsigned nslots = 1;

		memset(ev, 0, sizeof(*ev));
		/* mostly forward, now and then back (a late event) */
		if (rnd() % 50 == 0)
			*raw_time -= rnd() % 4000;
		else
			*raw_time += rnd() % 3000;
		ev->time = *raw_time;
		ev->addr = 0x5550000000ull + r->thread * 0x10000000ull + (rnd() % 4096) * 16;
		if (rnd() % 97 == 0)
			ev->addr += 1 + rnd() % 15;   /* unaligned */
		ev->stack = (uint32_t)(rnd() % (*next_stack + 1));
		if (rnd() % 40 == 0)
			ev->stack = (uint32_t)++*next_stack;   /* not yet written */
		if (k < 45) {
			ev->type = MST_EVENT_ALLOC;
			ev->func = MST_ALLOC_MALLOC;
			ev->size = rnd() % 3 ? rnd() % 512 : rnd();
		} else if (k < 52) {
			ev->type = MST_EVENT_ALLOC;
			ev->func = (uint8_t)(MST_ALLOC_REALLOC + rnd() % 2);
			ev->size = rnd() % 100000;
			nslots = rnd() % 8 ? 2 : 1;
		} else if (k < 56) {
			ev->type = MST_EVENT_ALLOC;
			ev->func = (uint8_t)(MST_ALLOC_POSIX_MEMALIGN + rnd() % 5);
			ev->size = rnd() % 4096;
			nslots = 2;
		} else if (k < 58) {
			ev->type = MST_EVENT_ALLOC;
			ev->func = rnd() % 2 ? 0 : 200;   /* unknown: refused */
		} else if (k < 96) {
			ev->type = MST_EVENT_FREE;
			ev->func = (uint8_t)(1 + rnd() % MST_FREE_FUNC_MAX);
			if (rnd() % 60 == 0)
				ev->func = rnd() % 2 ? 0 : 9;   /* unknown */
		} else {
			ev->type = OTHER_TYPE;
		}
		ev->nslots = (uint16_t)nslots;
		if (nslots == 2) {
			struct mst_event_ext *x = (void *)&r->slots[(r->head + 1) & (RING - 1)];

			memset(x, 0, sizeof(*x));
			x->old_addr = rnd() % 4 ? ev->addr - 16 * (rnd() % 64) : 0;
			x->alignment = 16u << (rnd() % 8);
		}
		r->head += nslots;
	}
}

static uint64_t trace_time(const struct clockp *c, uint64_t raw)
{
	if (raw <= c->start)
		return 0;
	return (uint64_t)(((unsigned __int128)(raw - c->start) * c->mult) >> 32) >> c->shift;
}

/* The stacks up to ID, as the recorder writes them before an event. */
static int put_stacks(struct mst_writer *w, uint64_t *written, uint64_t id)
{
	while (*written < id) {
		struct mst_record rec = { .type = MST_REC_STACK };

		rec.u.stack.parent = *written / 2;
		rec.u.stack.ip = 0x400000 + *written * 7;
		if (mst_writer_add(w, &rec))
			return -1;
		++*written;
	}
	return 0;
}

/* One event the per-event way (the recorder's emit_one). Events the
 * format refuses (unknown functions) return an error and write nothing:
 * both writers see the same refusal, so it is not a failure here. */
static void put_one(struct mst_writer *w, const struct clockp *c, const struct ring *r,
		    uint64_t pos, uint64_t *stacks)
{
	const struct mst_event *ev = &r->slots[pos & (RING - 1)];
	uint64_t t = trace_time(c, ev->time);

	if (ev->type != MST_EVENT_ALLOC && ev->type != MST_EVENT_FREE)
		return;
	if (put_stacks(w, stacks, ev->stack))
		return;
	if (t < mst_writer_last_time(w))
		t = mst_writer_last_time(w);
	if (ev->type == MST_EVENT_ALLOC) {
		struct mst_alloc a = { .time = t, .thread = r->thread, .func = ev->func,
				       .addr = ev->addr, .size = ev->size, .stack = ev->stack };

		if (ev->nslots >= 2) {
			const struct mst_event_ext *x = (const void *)&r->slots[(pos + 1) & (RING - 1)];

			a.old_addr = x->old_addr;
			a.alignment = x->alignment;
		}
		(void)mst_writer_alloc(w, &a);
	} else {
		struct mst_free f = { .time = t, .thread = r->thread, .func = ev->func,
				      .addr = ev->addr, .stack = ev->stack };

		(void)mst_writer_free(w, &f);
	}
}

static int put_end(struct mst_writer *w)
{
	struct mst_record rec = { .type = MST_REC_END };

	rec.u.end.time = mst_writer_last_time(w);
	rec.u.end.reason = MST_END_EXIT;
	rec.u.end.events = mst_writer_events(w);
	return mst_writer_add(w, &rec);
}

static int open_writer(struct mst_writer **w, struct membuf *m, size_t chunk)
{
	struct mst_writer_options o = { .chunk_size = chunk, .zstd_level = 1,
					.sink = membuf_sink, .sink_ctx = m };
	struct mst_record rec = { .type = MST_REC_HEADER };

	rec.u.header.ticks_per_second = 3906250;
	rec.u.header.program = "test";
	rec.u.header.sample_rate_ppm = 1000000;
	if (mst_writer_open(w, -1, &o))
		return -1;
	return mst_writer_add(*w, &rec);
}

struct emitted {
	uint32_t ring;
	uint64_t pos;
};

static uint64_t slot_time(const struct ring *r)
{
	return r->rd < r->head ? r->slots[r->rd & (RING - 1)].time : ~0ull;
}

/* Empty rings and the random sequence for SEED, as both writers start. */
static void rings_start(struct ring *rings, uint64_t *raw_time, uint64_t *next_stack,
			const struct clockp *c, uint64_t seed)
{
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	memset(rings, 0, THREADS * sizeof(*rings));
	*next_stack = 3;
	for (int i = 0; i < THREADS; i++) {
		rings[i].thread = 1 + i * (i == 4 ? 100 : 1);  /* one index needs two bytes */
		rings[i].head = rings[i].rd = RING - 3 - i;     /* wraps early */
		raw_time[i] = c->start - 50000 + rnd() % 100000;  /* some before start */
	}
}

/*
 * One trace both ways; returns 1 when the bytes agree. *EVENTS gets the
 * ALLOC and FREE records written, *BATCHED those put_run wrote.
 */
static int one_case(uint64_t seed, size_t chunk, int rounds, struct emitted *order,
		    size_t order_cap, uint64_t *events, uint64_t *batched, int *read_ok,
		    uint64_t *past_limit)
{
	static struct membuf ma, mb;
	static struct ring rings[THREADS];
	/* a tick of 1.5 ns, trace times of 256 ns */
	struct clockp c = { 1000000, (uint64_t)3 << 31, 8 };
	struct mst_writer *wa = NULL, *wb = NULL;
	uint64_t raw_time[THREADS], next_stack, stacks_b = 0, stacks_a = 0;
	size_t n = 0;
	int same, i;

	memset(&ma, 0, sizeof(ma));
	memset(&mb, 0, sizeof(mb));
	*batched = 0;
	rings_start(rings, raw_time, &next_stack, &c, seed);
	if (open_writer(&wb, &mb, chunk) || open_writer(&wa, &ma, chunk))
		return 0;
	for (int round = 0; round < rounds; round++) {
		for (i = 0; i < THREADS; i++)
			fill_ring(&rings[i], &raw_time[i], &next_stack, 1 + rnd() % RING);
		/* merge: the ring with the earliest front, up to the next one's */
		for (;;) {
			uint64_t best = ~0ull, limit = ~0ull;
			int b = -1;

			for (i = 0; i < THREADS; i++) {
				uint64_t f = slot_time(&rings[i]);

				if (f == ~0ull)
					continue;
				if (f < best) {
					if (best < limit)
						limit = best;
					best = f;
					b = i;
				} else if (f < limit) {
					limit = f;
				}
			}
			if (b < 0)
				break;
			if (limit <= best)
				limit = best + 1;
			struct ring *r = &rings[b];
			struct mst_run run = { r->slots, RING - 1, r->rd, r->head, r->thread,
					       limit, c.start, c.mult, c.shift };
			long got = mst_writer_put_run(wb, &run);

			if (got < 0)
				return 0;
			*batched += (uint64_t)got;
			while (r->rd < run.pos) {
				const struct mst_event *ev = &r->slots[r->rd & (RING - 1)];

				/* the run stopped at its limit (else ORDER, which
				 * the reference follows, would hide it) */
				if (ev->time >= limit)
					++*past_limit;

				if (n < order_cap)
					order[n++] = (struct emitted){ (uint32_t)b, r->rd };
				r->rd += ev->nslots ? ev->nslots : 1;
			}
			if (r->rd < r->head && r->slots[r->rd & (RING - 1)].time < limit) {
				/* an event put_run leaves: the per-event way */
				const struct mst_event *ev = &r->slots[r->rd & (RING - 1)];

				put_one(wb, &c, r, r->rd, &stacks_b);
				if (n < order_cap)
					order[n++] = (struct emitted){ (uint32_t)b, r->rd };
				r->rd += ev->nslots ? ev->nslots : 1;
			}
		}
		for (i = 0; i < THREADS; i++)
			rings[i].head = rings[i].rd;
	}
	if (n >= order_cap)
		return 0;
	*events = mst_writer_events(wb);
	if (put_end(wb) || mst_writer_close(wb))
		return 0;
	/* Replay: regenerate the rings with the same seed and walk ORDER. */
	rings_start(rings, raw_time, &next_stack, &c, seed);
	{
		size_t k = 0;

		for (int round = 0; round < rounds; round++) {
			for (i = 0; i < THREADS; i++)
				fill_ring(&rings[i], &raw_time[i], &next_stack, 1 + rnd() % RING);
			/* this round's events are those of ORDER before any ring
			 * runs dry: every slot below the heads */
			while (k < n && order[k].pos < rings[order[k].ring].head &&
			       order[k].pos >= rings[order[k].ring].rd) {
				put_one(wa, &c, &rings[order[k].ring], order[k].pos, &stacks_a);
				k++;
			}
			for (i = 0; i < THREADS; i++)
				rings[i].rd = rings[i].head;
		}
		if (k != n)
			return 0;
	}
	if (put_end(wa) || mst_writer_close(wa))
		return 0;
	same = ma.len == mb.len && !memcmp(ma.p, mb.p, ma.len);
	/* what put_run wrote reads back: every record, no damage */
	{
		struct mst_reader *rd;
		const struct mst_record *rec;
		uint64_t got = 0;
		int fd, st;

		*read_ok = 0;
		if (open_bytes(&rd, &fd, mb.p, mb.len) == 0) {
			while ((st = mst_reader_next(rd, &rec)) == MST_OK)
				got += rec->type == MST_REC_ALLOC || rec->type == MST_REC_FREE;
			*read_ok = st == MST_END && got == *events;
			if (!*read_ok)
				printf("# read back %llu of %llu events, status %d\n",
				       (unsigned long long)got, (unsigned long long)*events, st);
		}
		close_bytes(rd, fd);
	}
	membuf_free(&ma);
	membuf_free(&mb);
	return same;
}

int main(void)
{
	static struct emitted order[1 << 20];
	static const size_t chunks[] = { 1024, 4096, 65536, 1 << 20 };
	uint64_t total_batched = 0, total_events = 0, past_limit = 0;

	for (size_t ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
		for (uint64_t seed = 1; seed <= 4; seed++) {
			uint64_t events = 0, batched = 0;
			int read_ok = 0;
			int same = one_case(seed * 7919 + ci, chunks[ci], 300, order,
					    sizeof(order) / sizeof(order[0]), &events, &batched,
					    &read_ok, &past_limit);

			CHECK(same, "chunk %zu, seed %llu: put_run's %llu of %llu events make the "
			      "per-event bytes", chunks[ci], (unsigned long long)seed,
			      (unsigned long long)batched, (unsigned long long)events);
			CHECK(read_ok, "chunk %zu, seed %llu: the trace reads back whole",
			      chunks[ci], (unsigned long long)seed);
			total_batched += batched;
			total_events += events;
		}
	}
	CHECK(past_limit == 0, "put_run took no event at or after its limit (%llu did)",
	      (unsigned long long)past_limit);
	/* the fast loop did the bulk (else the comparison proves little) */
	CHECK(total_batched * 10 > total_events * 7, "put_run wrote %llu of %llu events",
	      (unsigned long long)total_batched, (unsigned long long)total_events);
	return tap_done();
}
