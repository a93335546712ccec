/*
 * trace_gen.h - seeded random record streams for libtrace's tests, the
 * fixture generator and the fuzz corpus: every record type with valid
 * contents (defined stacks, non-decreasing times, realistic addresses),
 * plus a deep comparison of two records.
 *
 * Header-only with static functions so that it adds nothing to the unit
 * tests of other modules that do not include it.
 */
#ifndef TRACE_GEN_H
#define TRACE_GEN_H

#include "mstrace.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct gen {
	uint64_t rng;
	uint64_t time, stacks, threads, modules, tasks;
	uint64_t live[64];            /* a few live addresses to free */
	uint64_t live_thread[64];     /* and the threads that allocated them */
	int nlive;
	uint64_t freed[8];            /* the latest addresses freed, to reuse */
	unsigned nfreed;
	/* Storage for the pointers of the last generated record. */
	char s1[64], s2[64], s3[64];
	const char *argv[4];
	uint8_t build_id[20];
	struct mst_segment segs[4];
	struct mst_counter ctrs[8];
	struct mst_symbol syms[4];
};

static inline uint64_t gen_rand(struct gen *g)
{
	/* xorshift64*: deterministic across platforms for a given seed. */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 2685821657736338717ull;
}

static inline uint64_t gen_below(struct gen *g, uint64_t n)
{
	return n ? gen_rand(g) % n : 0;
}

/* Values of every varint length, biased towards small ones. */
static inline uint64_t gen_value(struct gen *g)
{
	switch (gen_below(g, 6)) {
	case 0: return gen_below(g, 2);
	case 1: return gen_below(g, 128);
	case 2: return gen_below(g, 1u << 20);
	case 3: return gen_rand(g);
	case 4: return UINT64_MAX - gen_below(g, 3);
	default: return gen_below(g, 1ull << 40);
	}
}

static inline void gen_init(struct gen *g, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->rng = seed * 0x9e3779b97f4a7c15ull + 1;
}

static inline void gen_string(struct gen *g, char *buf, size_t cap)
{
	size_t n = gen_below(g, cap - 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = 1 + gen_below(g, 255);    /* any byte but NUL */
	buf[n] = 0;
}

static inline void gen_header(struct gen *g, struct mst_record *rec)
{
	struct mst_header *h = &rec->u.header;

	memset(rec, 0, sizeof(*rec));
	rec->type = MST_REC_HEADER;
	h->ticks_per_second = 1000000000;
	h->start_wall_ns = 1700000000000000000ull + gen_below(g, 1000000);
	h->pid = 1000 + gen_below(g, 30000);
	h->ppid = 1;
	for (int i = 0; i < 16; i++)
		h->session_id[i] = gen_rand(g);
	snprintf(g->s1, sizeof(g->s1), "/usr/bin/prog%u", (unsigned)gen_below(g, 100));
	gen_string(g, g->s2, sizeof(g->s2));
	g->argv[0] = g->s1;
	g->argv[1] = g->s2;
	g->argv[2] = "";
	h->program = g->s1;
	h->argc = 3;
	h->argv = g->argv;
	h->sample_rate_ppm = 1000000;
	h->unwinder = MST_UNWIND_FP;
	h->stack_depth = 64;
	h->allocator = "glibc";
	h->hostname = "testhost";
}

/* A realistic heap address: 16-aligned, in a few MiB. */
static inline uint64_t gen_addr(struct gen *g)
{
	return 0x555555560000ull + gen_below(g, 1u << 22) * 16;
}

/*
 * The next random record after the HEADER. WIDE: every field takes values
 * of every width (round-trip tests); otherwise realistic values.
 */
static inline void gen_next(struct gen *g, struct mst_record *rec, int wide)
{
	unsigned kind = gen_below(g, 40);

	memset(rec, 0, sizeof(*rec));
	g->time += gen_below(g, 4) == 0 ? 0 : gen_below(g, wide ? 1u << 30 : 5000);
	if (g->threads == 0)
		kind = 100;
	if (kind < 12) {
		struct mst_alloc *a = &rec->u.alloc;
		rec->type = MST_REC_ALLOC;
		a->time = g->time;
		a->thread = 1 + gen_below(g, g->threads);
		a->func = 1 + gen_below(g, MST_ALLOC_FUNC_MAX);
		a->addr = wide ? gen_value(g) : gen_addr(g);
		/* Allocators hand recently freed blocks out again: an ALLOC
		 * names one of the latest frees, or its address delta. */
		if (g->nfreed && gen_below(g, 3) == 0)
			a->addr = g->freed[gen_below(g, g->nfreed < 8 ? g->nfreed : 8)];
		a->size = wide ? gen_value(g) : gen_below(g, 4096);
		a->stack = gen_below(g, g->stacks + 1);
		if (mst_alloc_func_has_alignment(a->func))
			a->alignment = wide ? gen_value(g) : 64;
		if (mst_alloc_func_is_realloc(a->func))
			a->old_addr = gen_below(g, 3) == 0 ? 0 :
				      wide ? gen_value(g) : gen_addr(g);
		if (g->nlive < 64) {
			g->live_thread[g->nlive] = a->thread;
			g->live[g->nlive++] = a->addr;
		}
	} else if (kind < 22) {
		struct mst_free *f = &rec->u.free;
		rec->type = MST_REC_FREE;
		f->time = g->time;
		f->thread = 1 + gen_below(g, g->threads);
		f->func = 1 + gen_below(g, MST_FREE_FUNC_MAX);
		if (g->nlive) {
			/* Mostly freed by the allocating thread, sometimes by
			 * another (FREE_REF and FREE both get exercised). */
			int i = gen_below(g, g->nlive);
			f->addr = g->live[i];
			if (gen_below(g, 4))
				f->thread = g->live_thread[i];
			g->nlive--;
			g->live[i] = g->live[g->nlive];
			g->live_thread[i] = g->live_thread[g->nlive];
		} else {
			f->addr = wide ? gen_value(g) : gen_addr(g);
		}
		f->stack = gen_below(g, g->stacks + 1);
		g->freed[g->nfreed++ % 8] = f->addr;
	} else if (kind < 28) {
		rec->type = MST_REC_STACK;
		rec->u.stack.id = ++g->stacks;
		rec->u.stack.parent = gen_below(g, g->stacks);
		rec->u.stack.ip = wide ? gen_value(g) : 0x400000 + gen_below(g, 1u << 20);
	} else {
		switch (kind == 100 ? 0 : gen_below(g, 13)) {
		case 0:
			rec->type = MST_REC_THREAD_START;
			rec->u.thread_start.time = g->time;
			rec->u.thread_start.thread = ++g->threads;
			rec->u.thread_start.tid = 1000 + gen_below(g, 1u << 20);
			rec->u.thread_start.parent = gen_below(g, g->threads);
			break;
		case 1: {
			struct mst_module_load *m = &rec->u.module_load;
			rec->type = MST_REC_MODULE_LOAD;
			m->time = g->time;
			m->module = ++g->modules;
			m->base = 0x7f0000000000ull + g->modules * 0x1000000;
			snprintf(g->s1, sizeof(g->s1), "/lib/libm%u.so", (unsigned)g->modules);
			m->path = g->s1;
			m->build_id_len = gen_below(g, 21);
			for (size_t i = 0; i < m->build_id_len; i++)
				g->build_id[i] = gen_rand(g);
			m->build_id = g->build_id;
			m->nsegs = gen_below(g, 5);
			for (uint32_t i = 0; i < m->nsegs; i++) {
				g->segs[i].vaddr = i * 0x10000;
				g->segs[i].memsz = 0x1000 + gen_below(g, 0x8000);
				g->segs[i].offset = i * 0x10000;
				g->segs[i].flags = gen_below(g, 8);
			}
			m->segs = g->segs;
			break;
		}
		case 2:
			rec->type = MST_REC_MODULE_UNLOAD;
			rec->u.module_unload.time = g->time;
			rec->u.module_unload.module = gen_below(g, g->modules + 1);
			break;
		case 3:
			rec->type = MST_REC_THREAD_NAME;
			rec->u.thread_name.time = g->time;
			rec->u.thread_name.thread = 1 + gen_below(g, g->threads);
			gen_string(g, g->s1, sizeof(g->s1));
			rec->u.thread_name.name = g->s1;
			break;
		case 4:
			rec->type = MST_REC_THREAD_EXIT;
			rec->u.thread_exit.time = g->time;
			rec->u.thread_exit.thread = 1 + gen_below(g, g->threads);
			break;
		case 5:
			rec->type = MST_REC_COUNTERS;
			rec->u.counters.time = g->time;
			rec->u.counters.count = gen_below(g, 8);
			for (uint32_t i = 0; i < rec->u.counters.count; i++) {
				g->ctrs[i].key = 1 + gen_below(g, 9);
				g->ctrs[i].value = gen_value(g);
			}
			rec->u.counters.items = g->ctrs;
			break;
		case 6:
			rec->type = MST_REC_LABEL;
			rec->u.label.time = g->time;
			rec->u.label.thread = 1 + gen_below(g, g->threads);
			rec->u.label.addr = gen_value(g);
			gen_string(g, g->s1, sizeof(g->s1));
			gen_string(g, g->s2, sizeof(g->s2));
			rec->u.label.name = g->s1;
			rec->u.label.type = g->s2;
			break;
		case 7:
			rec->type = MST_REC_TASK_BEGIN;
			rec->u.task_begin.time = g->time;
			rec->u.task_begin.thread = 1 + gen_below(g, g->threads);
			rec->u.task_begin.task = ++g->tasks;
			gen_string(g, g->s1, sizeof(g->s1));
			rec->u.task_begin.name = g->s1;
			break;
		case 8:
			rec->type = MST_REC_TASK_END;
			rec->u.task_end.time = g->time;
			rec->u.task_end.thread = 1 + gen_below(g, g->threads);
			rec->u.task_end.task = gen_below(g, g->tasks + 1);
			break;
		case 9:
			rec->type = MST_REC_DROPPED;
			rec->u.dropped.time = g->time;
			rec->u.dropped.thread = 1 + gen_below(g, g->threads);
			rec->u.dropped.events = gen_value(g);
			rec->u.dropped.bytes = gen_value(g);
			break;
		case 10: {
			uint64_t start = gen_below(g, 1000);
			rec->type = MST_REC_SYMBOLS;
			rec->u.symbols.module = gen_below(g, g->modules + 1);
			rec->u.symbols.count = gen_below(g, 5);
			for (uint64_t i = 0; i < rec->u.symbols.count; i++) {
				g->syms[i].start = start;
				start += gen_below(g, 500);
				g->syms[i].size = gen_below(g, 500);
				g->syms[i].function = i & 1 ? "main" : "do_work";
				g->syms[i].file = i & 2 ? "" : "src/work.c";
				g->syms[i].line = gen_value(g);
			}
			rec->u.symbols.items = g->syms;
			break;
		}
		case 11:
			/* END mid-stream is legal (an exec that failed). */
			rec->type = MST_REC_END;
			rec->u.end.time = g->time;
			rec->u.end.reason = MST_END_EXEC;
			rec->u.end.status = -(int64_t)gen_below(g, 3);
			rec->u.end.events = gen_value(g);
			rec->u.end.dropped = gen_value(g);
			break;
		default:
			rec->type = MST_REC_THREAD_START;
			rec->u.thread_start.time = g->time;
			rec->u.thread_start.thread = ++g->threads;
			rec->u.thread_start.tid = gen_value(g);
			rec->u.thread_start.parent = gen_below(g, g->threads);
			break;
		}
	}
}

static inline void gen_end(struct gen *g, struct mst_record *rec, uint64_t events)
{
	memset(rec, 0, sizeof(*rec));
	rec->type = MST_REC_END;
	rec->u.end.time = g->time;
	rec->u.end.reason = MST_END_EXIT;
	rec->u.end.status = 0;
	rec->u.end.events = events;
}

static inline int str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Nonzero when the records differ; WHY gets the first difference. */
static inline int rec_diff(const struct mst_record *a, const struct mst_record *b,
			   char *why, size_t whylen)
{
#define DIFF(cond, name) do { if (cond) { snprintf(why, whylen, "%s", name); return 1; } } while (0)
	DIFF(a->type != b->type, "type");
	switch (a->type) {
	case MST_REC_HEADER: {
		const struct mst_header *x = &a->u.header, *y = &b->u.header;
		DIFF(x->ticks_per_second != y->ticks_per_second, "ticks_per_second");
		DIFF(x->start_wall_ns != y->start_wall_ns, "start_wall_ns");
		DIFF(x->pid != y->pid || x->ppid != y->ppid, "pid");
		DIFF(memcmp(x->session_id, y->session_id, 16), "session_id");
		DIFF(!str_eq(x->program, y->program), "program");
		DIFF(x->argc != y->argc, "argc");
		for (uint64_t i = 0; i < x->argc; i++)
			DIFF(!str_eq(x->argv[i], y->argv[i]), "argv");
		DIFF(x->sample_rate_ppm != y->sample_rate_ppm, "sample_rate_ppm");
		DIFF(x->unwinder != y->unwinder || x->stack_depth != y->stack_depth, "unwinder");
		DIFF(x->flags != y->flags || x->exec_generation != y->exec_generation, "flags");
		DIFF(!str_eq(x->allocator, y->allocator), "allocator");
		DIFF(!str_eq(x->hostname, y->hostname), "hostname");
		return 0;
	}
	case MST_REC_ALLOC: {
		const struct mst_alloc *x = &a->u.alloc, *y = &b->u.alloc;
		DIFF(x->time != y->time, "alloc.time");
		DIFF(x->thread != y->thread, "alloc.thread");
		DIFF(x->func != y->func, "alloc.func");
		DIFF(x->addr != y->addr, "alloc.addr");
		DIFF(x->size != y->size, "alloc.size");
		DIFF(x->stack != y->stack, "alloc.stack");
		DIFF(x->alignment != y->alignment, "alloc.alignment");
		DIFF(x->old_addr != y->old_addr, "alloc.old_addr");
		return 0;
	}
	case MST_REC_FREE: {
		const struct mst_free *x = &a->u.free, *y = &b->u.free;
		DIFF(x->time != y->time || x->thread != y->thread || x->func != y->func ||
		     x->addr != y->addr || x->stack != y->stack, "free");
		return 0;
	}
	case MST_REC_STACK:
		DIFF(a->u.stack.id != b->u.stack.id, "stack.id");
		DIFF(a->u.stack.parent != b->u.stack.parent || a->u.stack.ip != b->u.stack.ip, "stack");
		return 0;
	case MST_REC_MODULE_LOAD: {
		const struct mst_module_load *x = &a->u.module_load, *y = &b->u.module_load;
		DIFF(x->time != y->time || x->module != y->module || x->base != y->base, "module");
		DIFF(!str_eq(x->path, y->path), "module.path");
		DIFF(x->build_id_len != y->build_id_len ||
		     (x->build_id_len && memcmp(x->build_id, y->build_id, x->build_id_len)), "build_id");
		DIFF(x->nsegs != y->nsegs, "nsegs");
		for (uint32_t i = 0; i < x->nsegs; i++)
			DIFF(x->segs[i].vaddr != y->segs[i].vaddr || x->segs[i].memsz != y->segs[i].memsz ||
			     x->segs[i].offset != y->segs[i].offset || x->segs[i].flags != y->segs[i].flags,
			     "segment");
		return 0;
	}
	case MST_REC_MODULE_UNLOAD:
		DIFF(memcmp(&a->u.module_unload, &b->u.module_unload, sizeof(a->u.module_unload)), "module_unload");
		return 0;
	case MST_REC_THREAD_START:
		DIFF(memcmp(&a->u.thread_start, &b->u.thread_start, sizeof(a->u.thread_start)), "thread_start");
		return 0;
	case MST_REC_THREAD_NAME:
		DIFF(a->u.thread_name.time != b->u.thread_name.time ||
		     a->u.thread_name.thread != b->u.thread_name.thread ||
		     !str_eq(a->u.thread_name.name, b->u.thread_name.name), "thread_name");
		return 0;
	case MST_REC_THREAD_EXIT:
		DIFF(memcmp(&a->u.thread_exit, &b->u.thread_exit, sizeof(a->u.thread_exit)), "thread_exit");
		return 0;
	case MST_REC_COUNTERS:
		DIFF(a->u.counters.time != b->u.counters.time || a->u.counters.count != b->u.counters.count, "counters");
		for (uint32_t i = 0; i < a->u.counters.count; i++)
			DIFF(a->u.counters.items[i].key != b->u.counters.items[i].key ||
			     a->u.counters.items[i].value != b->u.counters.items[i].value, "counter");
		return 0;
	case MST_REC_LABEL:
		DIFF(a->u.label.time != b->u.label.time || a->u.label.thread != b->u.label.thread ||
		     a->u.label.addr != b->u.label.addr || !str_eq(a->u.label.name, b->u.label.name) ||
		     !str_eq(a->u.label.type, b->u.label.type), "label");
		return 0;
	case MST_REC_TASK_BEGIN:
		DIFF(a->u.task_begin.time != b->u.task_begin.time || a->u.task_begin.thread != b->u.task_begin.thread ||
		     a->u.task_begin.task != b->u.task_begin.task ||
		     !str_eq(a->u.task_begin.name, b->u.task_begin.name), "task_begin");
		return 0;
	case MST_REC_TASK_END:
		DIFF(memcmp(&a->u.task_end, &b->u.task_end, sizeof(a->u.task_end)), "task_end");
		return 0;
	case MST_REC_DROPPED:
		DIFF(memcmp(&a->u.dropped, &b->u.dropped, sizeof(a->u.dropped)), "dropped");
		return 0;
	case MST_REC_END:
		DIFF(a->u.end.time != b->u.end.time || a->u.end.reason != b->u.end.reason ||
		     a->u.end.status != b->u.end.status || a->u.end.events != b->u.end.events ||
		     a->u.end.dropped != b->u.end.dropped, "end");
		return 0;
	case MST_REC_SYMBOLS:
		DIFF(a->u.symbols.module != b->u.symbols.module || a->u.symbols.count != b->u.symbols.count, "symbols");
		for (uint64_t i = 0; i < a->u.symbols.count; i++) {
			const struct mst_symbol *x = &a->u.symbols.items[i], *y = &b->u.symbols.items[i];
			DIFF(x->start != y->start || x->size != y->size || x->line != y->line ||
			     !str_eq(x->function, y->function) || !str_eq(x->file, y->file), "symbol");
		}
		return 0;
	}
	return 0;
#undef DIFF
}

#endif
