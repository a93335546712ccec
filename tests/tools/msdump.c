/*
 * msdump - a test and debug tool: reads a trace (file or stdin) through
 * libtrace and prints one line per record, or with --summary exact totals
 * as key=value lines, so tests can check a recording before the analysis
 * tools exist and independently of them.
 *
 * Exit status: 0 a complete trace, 1 damaged or truncated (after printing
 * every record before the damage), 2 usage error.
 */
#include "mstrace.h"
#include "mscommon.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
	const char *input;            /* NULL or "-": stdin */
	int summary;
	int frames;                   /* print each alloc's frames */
};

static const char usage_text[] =
	"usage: msdump [--summary] [--frames] [FILE]\n"
	"\n"
	"Prints every record of a memscope trace, one per line, or with\n"
	"--summary exact totals as key=value lines. Reads stdin without FILE\n"
	"or with '-'. Exit status: 0 complete trace, 1 damaged or truncated,\n"
	"2 usage error.\n";

/* ---- a small open-addressing map for the summary (addr -> size) ---- */

struct map {
	uint64_t *keys, *vals;        /* key 0 = empty: address 0 is never live */
	size_t cap, n;
};

static size_t map_slot(const struct map *m, uint64_t key)
{
	size_t i = (key * 0x9e3779b97f4a7c15ull) >> 17 & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int map_grow(struct map *m)
{
	struct map nm = { 0 };
	nm.cap = m->cap ? m->cap * 2 : 1024;
	nm.keys = calloc(nm.cap, sizeof(uint64_t));
	nm.vals = calloc(nm.cap, sizeof(uint64_t));
	if (!nm.keys || !nm.vals) {
		free(nm.keys);
		free(nm.vals);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i]) {
			size_t j = map_slot(&nm, m->keys[i]);
			nm.keys[j] = m->keys[i];
			nm.vals[j] = m->vals[i];
		}
	}
	nm.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = nm;
	return 0;
}

/* Returns 1 and *val when KEY is present. */
static int map_get(const struct map *m, uint64_t key, uint64_t *val)
{
	size_t i;
	if (!m->cap)
		return 0;
	i = map_slot(m, key);
	if (!m->keys[i])
		return 0;
	if (val)
		*val = m->vals[i];
	return 1;
}

static int map_put(struct map *m, uint64_t key, uint64_t val)
{
	size_t i;
	if ((m->n + 1) * 2 > m->cap && map_grow(m))
		return -1;
	i = map_slot(m, key);
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

/* Linear probing deletion by shifting later entries back. */
static void map_del(struct map *m, uint64_t key)
{
	size_t mask = m->cap - 1, i, j;
	if (!m->cap)
		return;
	i = map_slot(m, key);
	if (!m->keys[i])
		return;
	m->keys[i] = 0;
	m->n--;
	for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		size_t home = (m->keys[j] * 0x9e3779b97f4a7c15ull) >> 17 & mask;
		/* Move j back to i when i lies cyclically in [home, j). */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->keys[j] = 0;
			i = j;
		}
	}
}

static void map_free(struct map *m)
{
	free(m->keys);
	free(m->vals);
}

/* ---- printing ---- */

/* Strings are printed bare when safe, else quoted with C escapes. */
static void put_str(FILE *f, const char *s)
{
	int plain = *s != 0;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
			plain = 0;
	if (plain) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < ' ' || *p >= 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void put_hex(FILE *f, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
	if (!n)
		fputc('-', f);
}

static const char *counter_name(uint64_t key)
{
	switch (key) {
	case MST_CTR_RSS: return "rss";
	case MST_CTR_ARENA: return "arena";
	case MST_CTR_MMAP: return "mmap";
	case MST_CTR_IN_USE: return "in_use";
	case MST_CTR_FREE: return "free";
	case MST_CTR_VSIZE: return "vsize";
	case MST_CTR_RECORDER: return "recorder";
	}
	return NULL;
}

static const char *end_reason(unsigned r)
{
	static const char *const names[] = {
		[MST_END_EXIT] = "exit", [MST_END_EXEC] = "exec",
		[MST_END_SIGNAL] = "signal", [MST_END_SALVAGED] = "salvaged",
		[MST_END_DETACHED] = "detached",
	};
	return r >= 1 && r <= MST_END_DETACHED ? names[r] : "?";
}

/* Function names as one word: "operator new[]" -> "operator_new[]". */
static void put_func(FILE *f, const char *name)
{
	for (; *name; name++)
		fputc(*name == ' ' ? '_' : *name, f);
}

static void print_record(FILE *f, const struct mst_reader *r,
			 const struct mst_record *rec, int frames)
{
	const struct mst_header *h;
	const struct mst_module_load *m;

	switch (rec->type) {
	case MST_REC_HEADER:
		h = &rec->u.header;
		fprintf(f, "header version=%u.%u ticks_per_second=%" PRIu64
			" start_wall_ns=%" PRIu64 " pid=%" PRIu64 " ppid=%" PRIu64
			" session=", h->major, h->minor, h->ticks_per_second,
			h->start_wall_ns, h->pid, h->ppid);
		put_hex(f, h->session_id, sizeof(h->session_id));
		fputs(" program=", f);
		put_str(f, h->program);
		fprintf(f, " argc=%" PRIu64, h->argc);
		for (uint64_t i = 0; i < h->argc; i++) {
			fprintf(f, " argv[%" PRIu64 "]=", i);
			put_str(f, h->argv[i]);
		}
		fprintf(f, " sample_rate_ppm=%" PRIu64 " unwinder=%u stack_depth=%" PRIu64
			" flags=0x%" PRIx64 " exec_generation=%" PRIu64 " allocator=",
			h->sample_rate_ppm, h->unwinder, h->stack_depth, h->flags,
			h->exec_generation);
		put_str(f, h->allocator);
		fputs(" hostname=", f);
		put_str(f, h->hostname);
		break;
	case MST_REC_ALLOC: {
		const struct mst_alloc *a = &rec->u.alloc;
		fprintf(f, "alloc t=%" PRIu64 " thread=%" PRIu64 " func=", a->time, a->thread);
		put_func(f, mst_alloc_func_name(a->func));
		fprintf(f, " addr=0x%" PRIx64 " size=%" PRIu64 " stack=%" PRIu64,
			a->addr, a->size, a->stack);
		if (mst_alloc_func_has_alignment(a->func))
			fprintf(f, " align=%" PRIu64, a->alignment);
		if (mst_alloc_func_is_realloc(a->func))
			fprintf(f, " old=0x%" PRIx64, a->old_addr);
		if (frames && a->stack) {
			uint64_t ips[64];
			size_t n = mst_reader_stack_frames(r, a->stack, ips, 64);
			fputs(" frames=", f);
			for (size_t i = 0; i < n && i < 64; i++)
				fprintf(f, "%s0x%" PRIx64, i ? "," : "", ips[i]);
		}
		break;
	}
	case MST_REC_FREE: {
		const struct mst_free *fr = &rec->u.free;
		fprintf(f, "free t=%" PRIu64 " thread=%" PRIu64 " func=", fr->time, fr->thread);
		put_func(f, mst_free_func_name(fr->func));
		fprintf(f, " addr=0x%" PRIx64 " stack=%" PRIu64, fr->addr, fr->stack);
		break;
	}
	case MST_REC_STACK:
		fprintf(f, "stack id=%" PRIu64 " parent=%" PRIu64 " ip=0x%" PRIx64,
			rec->u.stack.id, rec->u.stack.parent, rec->u.stack.ip);
		break;
	case MST_REC_MODULE_LOAD:
		m = &rec->u.module_load;
		fprintf(f, "module t=%" PRIu64 " id=%" PRIu64 " base=0x%" PRIx64 " path=",
			m->time, m->module, m->base);
		put_str(f, m->path);
		fputs(" build_id=", f);
		put_hex(f, m->build_id, m->build_id_len);
		fprintf(f, " segs=%u", m->nsegs);
		for (uint32_t i = 0; i < m->nsegs; i++)
			fprintf(f, " seg=0x%" PRIx64 "+0x%" PRIx64 "@0x%" PRIx64 ":%c%c%c",
				m->segs[i].vaddr, m->segs[i].memsz, m->segs[i].offset,
				m->segs[i].flags & MST_SEG_READ ? 'r' : '-',
				m->segs[i].flags & MST_SEG_WRITE ? 'w' : '-',
				m->segs[i].flags & MST_SEG_EXEC ? 'x' : '-');
		break;
	case MST_REC_MODULE_UNLOAD:
		fprintf(f, "module_unload t=%" PRIu64 " id=%" PRIu64,
			rec->u.module_unload.time, rec->u.module_unload.module);
		break;
	case MST_REC_THREAD_START:
		fprintf(f, "thread_start t=%" PRIu64 " thread=%" PRIu64 " tid=%" PRIu64
			" parent=%" PRIu64, rec->u.thread_start.time,
			rec->u.thread_start.thread, rec->u.thread_start.tid,
			rec->u.thread_start.parent);
		break;
	case MST_REC_THREAD_NAME:
		fprintf(f, "thread_name t=%" PRIu64 " thread=%" PRIu64 " name=",
			rec->u.thread_name.time, rec->u.thread_name.thread);
		put_str(f, rec->u.thread_name.name);
		break;
	case MST_REC_THREAD_EXIT:
		fprintf(f, "thread_exit t=%" PRIu64 " thread=%" PRIu64,
			rec->u.thread_exit.time, rec->u.thread_exit.thread);
		break;
	case MST_REC_COUNTERS:
		fprintf(f, "counters t=%" PRIu64, rec->u.counters.time);
		for (uint32_t i = 0; i < rec->u.counters.count; i++) {
			const struct mst_counter *c = &rec->u.counters.items[i];
			const char *name = counter_name(c->key);
			if (name)
				fprintf(f, " %s=%" PRIu64, name, c->value);
			else
				fprintf(f, " key%" PRIu64 "=%" PRIu64, c->key, c->value);
		}
		break;
	case MST_REC_LABEL:
		fprintf(f, "label t=%" PRIu64 " thread=%" PRIu64 " addr=0x%" PRIx64 " name=",
			rec->u.label.time, rec->u.label.thread, rec->u.label.addr);
		put_str(f, rec->u.label.name);
		fputs(" type=", f);
		put_str(f, rec->u.label.type);
		break;
	case MST_REC_TASK_BEGIN:
		fprintf(f, "task_begin t=%" PRIu64 " thread=%" PRIu64 " task=%" PRIu64 " name=",
			rec->u.task_begin.time, rec->u.task_begin.thread,
			rec->u.task_begin.task);
		put_str(f, rec->u.task_begin.name);
		break;
	case MST_REC_TASK_END:
		fprintf(f, "task_end t=%" PRIu64 " thread=%" PRIu64 " task=%" PRIu64,
			rec->u.task_end.time, rec->u.task_end.thread, rec->u.task_end.task);
		break;
	case MST_REC_DROPPED:
		fprintf(f, "dropped t=%" PRIu64 " thread=%" PRIu64 " events=%" PRIu64
			" bytes=%" PRIu64, rec->u.dropped.time, rec->u.dropped.thread,
			rec->u.dropped.events, rec->u.dropped.bytes);
		break;
	case MST_REC_END:
		fprintf(f, "end t=%" PRIu64 " reason=%s status=%" PRId64 " events=%" PRIu64
			" dropped=%" PRIu64, rec->u.end.time, end_reason(rec->u.end.reason),
			rec->u.end.status, rec->u.end.events, rec->u.end.dropped);
		break;
	case MST_REC_SYMBOLS:
		fprintf(f, "symbols module=%" PRIu64 " count=%" PRIu64,
			rec->u.symbols.module, rec->u.symbols.count);
		for (uint64_t i = 0; i < rec->u.symbols.count; i++) {
			const struct mst_symbol *s = &rec->u.symbols.items[i];
			fprintf(f, " sym=0x%" PRIx64 "+%" PRIu64 ":", s->start, s->size);
			put_str(f, s->function);
			fputc(':', f);
			put_str(f, s->file);
			fprintf(f, ":%" PRIu64, s->line);
		}
		break;
	}
	fputc('\n', f);
}

/*
 * ---- the summary ----
 * allocs: ALLOC records (a realloc call is one alloc); reallocs: ALLOCs of
 * the realloc family; frees: FREE records of free/delete, plus realloc(p, 0)
 * calls (a realloc-family FREE with no ALLOC naming it as old address), but
 * not the free half of a moved realloc; frees of address 0 are ignored.
 * unknown_frees: frees of an address not live; double_allocs: an ALLOC of
 * a live address (other than realloc in place). threads: distinct thread
 * indexes seen in THREAD_START, ALLOC or FREE.
 */

struct summary {
	uint64_t allocs, frees, reallocs, bytes_allocated;
	uint64_t live_bytes, peak_bytes, unknown_frees, double_allocs;
	uint64_t events, dropped_events;
	struct map live;              /* addr -> size */
	struct map pending;           /* freed by realloc, new block not yet seen */
	struct map threads;
};

static int note_thread(struct summary *s, uint64_t thread)
{
	if (thread && !map_get(&s->threads, thread, NULL))
		return map_put(&s->threads, thread, 1);
	return 0;
}

static int sum_record(struct summary *s, const struct mst_record *rec)
{
	uint64_t size;

	switch (rec->type) {
	case MST_REC_ALLOC: {
		const struct mst_alloc *a = &rec->u.alloc;
		s->events++;
		s->allocs++;
		s->bytes_allocated += a->size;
		if (mst_alloc_func_is_realloc(a->func)) {
			s->reallocs++;
			if (a->old_addr && a->old_addr != a->addr) {
				/* Moved without a FREE first: end the old block.
				 * After its FREE, a block live at the old address
				 * is another one (another thread got the address
				 * back while this call ran). */
				int freed = map_get(&s->pending, a->old_addr, NULL);

				map_del(&s->pending, a->old_addr);
				if (!freed && map_get(&s->live, a->old_addr, &size)) {
					s->live_bytes -= size;
					map_del(&s->live, a->old_addr);
				}
			}
		}
		if (map_get(&s->live, a->addr, &size)) {
			/* realloc in place replaces its block; anything else
			 * returning a live address is a recorder bug. */
			if (!(mst_alloc_func_is_realloc(a->func) && a->old_addr == a->addr))
				s->double_allocs++;
			s->live_bytes -= size;
		}
		if (map_put(&s->live, a->addr, a->size))
			return -1;
		s->live_bytes += a->size;
		if (s->live_bytes > s->peak_bytes)
			s->peak_bytes = s->live_bytes;
		return note_thread(s, a->thread);
	}
	case MST_REC_FREE: {
		const struct mst_free *f = &rec->u.free;
		int by_realloc = f->func == MST_FREE_REALLOC || f->func == MST_FREE_REALLOCARRAY;
		s->events++;
		if (!f->addr)
			return note_thread(s, f->thread);
		if (map_get(&s->live, f->addr, &size)) {
			s->live_bytes -= size;
			map_del(&s->live, f->addr);
		} else {
			s->unknown_frees++;
		}
		/* The free half of a moved realloc is not a free call; a
		 * realloc(p, 0) that only freed is (settled at the end). */
		if (by_realloc) {
			if (map_put(&s->pending, f->addr, 1))
				return -1;
		} else {
			s->frees++;
		}
		return note_thread(s, f->thread);
	}
	case MST_REC_THREAD_START:
		return note_thread(s, rec->u.thread_start.thread);
	case MST_REC_DROPPED:
		s->dropped_events += rec->u.dropped.events;
		return 0;
	default:
		return 0;
	}
}

static void print_summary(FILE *f, struct summary *s, const struct mst_reader *r)
{
	struct mst_reader_stats st;

	mst_reader_stats(r, &st);
	fprintf(f, "allocs=%" PRIu64 "\n", s->allocs);
	fprintf(f, "frees=%" PRIu64 "\n", s->frees + s->pending.n);
	fprintf(f, "reallocs=%" PRIu64 "\n", s->reallocs);
	fprintf(f, "bytes_allocated=%" PRIu64 "\n", s->bytes_allocated);
	fprintf(f, "live_bytes_at_end=%" PRIu64 "\n", s->live_bytes);
	fprintf(f, "live_allocs_at_end=%zu\n", s->live.n);
	fprintf(f, "peak_bytes=%" PRIu64 "\n", s->peak_bytes);
	fprintf(f, "unknown_frees=%" PRIu64 "\n", s->unknown_frees);
	fprintf(f, "double_allocs=%" PRIu64 "\n", s->double_allocs);
	fprintf(f, "threads=%zu\n", s->threads.n);
	fprintf(f, "stacks=%" PRIu64 "\n", mst_reader_stack_count(r));
	fprintf(f, "events=%" PRIu64 "\n", s->events);
	fprintf(f, "dropped=%" PRIu64 "\n", s->dropped_events);
	fprintf(f, "records=%" PRIu64 "\n", st.records);
	fprintf(f, "chunks=%" PRIu64 "\n", st.chunks);
	fprintf(f, "skipped_records=%" PRIu64 "\n", st.skipped_records);
	fprintf(f, "skipped_chunks=%" PRIu64 "\n", st.skipped_chunks);
	fprintf(f, "complete=%d\n", st.complete);
}

static int run(const struct options *opt)
{
	struct mst_reader *r = NULL;
	const struct mst_record *rec;
	struct summary s = { 0 };
	int st, ret = MSC_EXIT_FAIL;

	st = mst_reader_open(&r, opt->input);
	if (st != MST_OK) {
		msc_error("%s", r ? mst_reader_error(r) : mst_status_str(st));
		goto out;
	}
	while ((st = mst_reader_next(r, &rec)) == MST_OK) {
		if (opt->summary) {
			if (sum_record(&s, rec)) {
				msc_error("out of memory");
				goto out;
			}
		} else {
			print_record(stdout, r, rec, opt->frames);
		}
	}
	if (opt->summary)
		print_summary(stdout, &s, r);
	if (st == MST_END) {
		ret = MSC_EXIT_OK;
	} else {
		msc_error("%s", mst_reader_error(r));
	}
out:
	mst_reader_close(r);
	map_free(&s.live);
	map_free(&s.pending);
	map_free(&s.threads);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "summary", no_argument, NULL, 's' },
		{ "frames", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct options opt = { 0 };
	int c, ret;

	msc_set_prog("msdump");
	while ((c = getopt_long(argc, argv, "sfh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opt.summary = 1; break;
		case 'f': opt.frames = 1; break;
		case 'h': fputs(usage_text, stdout); return MSC_EXIT_OK;
		default: fputs(usage_text, stderr); return MSC_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fputs(usage_text, stderr);
		return MSC_EXIT_USAGE;
	}
	opt.input = optind < argc ? argv[optind] : NULL;
	ret = run(&opt);
	if (fclose(stdout) != 0) {
		msc_error("cannot write standard output: %m");
		return MSC_EXIT_FAIL;
	}
	return ret;
}
