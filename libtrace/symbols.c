/*
 * symbols.c - offline symbolization (mstrace_symbols.h) with elfutils libdw.
 *
 * Each recorded module gets its own Dwfl, reported at the recorded load
 * bias: modules loaded and unloaded over a run may reuse addresses, which
 * one shared Dwfl would refuse. The ELF file is checked against the
 * recorded build-id first; a mismatch gives a warning and no names, never
 * wrong names. Separate debuginfo is found by dwfl's standard callbacks
 * (/usr/lib/debug/.build-id/). C++ names are demangled by libstdc++'s
 * __cxa_demangle, looked up at run time with dlopen so that the tools take
 * no link dependency on libstdc++; without it names stay mangled.
 *
 * Opening a module's debug information is the slow part (a distribution's
 * debug files are compressed: libc's takes tens of ms to inflate, even with
 * libdeflate inflating it ahead of libdw, see own_dwarf), and names
 * are only needed once the trace has been read. mst_symbolizer_prepare lets
 * a caller hand over modules as it learns that frames lie in them; one
 * background thread opens them while the trace is decoded, each into its own
 * Dwfl that no other thread touches until mst_symbolize adopts it. A module
 * the output never names is never adopted, so its warnings (missing file,
 * build-id mismatch) are kept with it and given only when it is used: the
 * names and warnings are exactly those of opening modules on demand.
 */
#include "array.h"
#include "mstrace.h"
#include "debugcache.h"
#include "model_table.h"
#include "symtab.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INLINE 16

struct sym_module {
	uint64_t id;
	Dwfl *dwfl;
	Dwfl_Module *mod;
	int state;                    /* 0 untried, 1 usable, -1 no symbols */
	struct mst__symtab *symtab;   /* read at its first use */
	/* its DWARF read from an inflated copy (own_dwarf), else NULL and
	 * libdwfl's */
	Dwarf *dw;
	Elf *dw_elf;
	struct mst__image image;
	GElf_Addr dw_bias;            /* recorded address - DWARF address */
};

static void module_release(struct sym_module *sm)
{
	mst__symtab_free(sm->symtab);
	if (sm->dw)
		dwarf_end(sm->dw);
	if (sm->dw_elf)
		elf_end(sm->dw_elf);
	mst__image_release(&sm->image);
	if (sm->dwfl)
		dwfl_end(sm->dwfl);
}

/* An embedded table (SYMBOLS records) of one module, sorted by start. */
struct sym_entry {
	uint64_t start, size, line;
	const char *function, *file;
};

struct sym_table {
	uint64_t module;
	struct sym_entry *e;
	size_t n, cap;
	int sorted;
};

/* A module handed to mst_symbolizer_prepare, opened in the background. */
enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_TAKEN };

struct sym_job {
	uint64_t id, base;
	char *path;
	uint8_t *build_id;
	size_t build_id_len;
	int status;                   /* JOB_*, under the symbolizer's lock */
	struct sym_module sm;         /* the result: dwfl, mod, state */
	char *warn;                   /* "what" of the warning to give, or NULL */
};

/* Modules prepared at most: a program that loads hundreds of shared
 * objects names few of them in its top sites, and each one opened for
 * nothing costs CPU time and memory. The first ones are the program and
 * the libraries it starts with, where allocations mostly come from. */
#define MAX_PREPARED 24

struct cache_entry {
	uint32_t first, n;            /* frames in the pool */
};

struct mst_symbolizer {
	const struct mst_reader *r;
	unsigned flags;
	Dwfl_Callbacks cb;
	char *debuginfo_path;

	struct mt_map mod_map;        /* module id -> mods[] */
	struct sym_module *mods;
	size_t nmods, mods_cap;

	struct mt_map table_map;      /* module id -> tables[] */
	struct sym_table *tables;
	size_t ntables, tables_cap;

	struct mt_map cache;          /* ip << 1 | is_return -> entries[] */
	struct cache_entry *entries;
	size_t nentries, entries_cap;
	struct mst_frame *pool;
	size_t npool, pool_cap;

	/* interned strings: open addressing on the string's hash */
	char **strs;
	size_t nstrs, strs_cap;

	char *(*demangle)(const char *, char *, size_t *, int *);
	void *libstdcxx;
	int demangle_tried;

	char *warnings;
	size_t warn_len;

	/* background opening (mst_symbolizer_prepare) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int thread_started, stopping, no_thread;
	struct sym_job *jobs;
	size_t njobs, jobs_cap;
	struct mt_map job_map;        /* module id -> jobs[]: each one once */
	size_t next_job;              /* first job the thread has not looked at */

	/* mst_symbolizer_prepare_sites */
	size_t sites_seen;            /* sites whose modules were prepared */
	uint8_t *seen_nodes;          /* a bit a stack node looked at */
	size_t seen_cap;              /* bytes */
};


static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* Returns one shared copy of S, owned by the symbolizer (NULL stays NULL). */
static const char *intern(struct mst_symbolizer *s, const char *str)
{
	size_t i;
	if (!str)
		return NULL;
	if ((s->nstrs + 1) * 2 > s->strs_cap) {
		size_t ncap = s->strs_cap ? s->strs_cap * 2 : 256, j;
		char **n = calloc(ncap, sizeof(*n));
		if (!n)
			return NULL;
		for (j = 0; j < s->strs_cap; j++) {
			if (!s->strs[j])
				continue;
			for (i = str_hash(s->strs[j]) & (ncap - 1); n[i]; i = (i + 1) & (ncap - 1))
				;
			n[i] = s->strs[j];
		}
		free(s->strs);
		s->strs = n;
		s->strs_cap = ncap;
	}
	for (i = str_hash(str) & (s->strs_cap - 1); s->strs[i];
	     i = (i + 1) & (s->strs_cap - 1))
		if (!strcmp(s->strs[i], str))
			return s->strs[i];
	s->strs[i] = strdup(str);
	if (s->strs[i])
		s->nstrs++;
	return s->strs[i];
}

static void warn(struct mst_symbolizer *s, const char *path, const char *what)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s: %s; symbols skipped", path, what);
	char *p;
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* the same warning once */
	if (s->warnings && strstr(s->warnings, line))
		return;
	p = realloc(s->warnings, s->warn_len + (size_t)n + 2);
	if (!p)
		return;
	s->warnings = p;
	memcpy(p + s->warn_len, line, (size_t)n);
	s->warn_len += (size_t)n;
	p[s->warn_len++] = '\n';
	p[s->warn_len] = 0;
}

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name);

int mst_symbolizer_new(struct mst_symbolizer **out, const struct mst_reader *r,
		       unsigned flags)
{
	struct mst_symbolizer *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return MST_ERR_NOMEM;
	s->r = r;
	s->flags = flags;
	mt_map_init(&s->mod_map);
	mt_map_init(&s->cache);
	mt_map_init(&s->table_map);
	mt_map_init(&s->job_map);
	s->cb.find_elf = dwfl_build_id_find_elf;
	s->cb.find_debuginfo = find_debuginfo;
	s->cb.section_address = dwfl_offline_section_address;
	s->cb.debuginfo_path = &s->debuginfo_path;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	*out = s;
	return MST_OK;
}

void mst_symbolizer_free(struct mst_symbolizer *s)
{
	size_t i;
	if (!s)
		return;
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = 1;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	for (i = 0; i < s->njobs; i++) {
		/* opened and never used */
		if (s->jobs[i].status == JOB_DONE)
			module_release(&s->jobs[i].sm);
		free(s->jobs[i].path);
		free(s->jobs[i].build_id);
		free(s->jobs[i].warn);
	}
	free(s->jobs);
	mt_map_release(&s->job_map);
	free(s->seen_nodes);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	for (i = 0; i < s->nmods; i++)
		module_release(&s->mods[i]);
	free(s->mods);
	mt_map_release(&s->mod_map);
	for (i = 0; i < s->ntables; i++)
		free(s->tables[i].e);
	free(s->tables);
	mt_map_release(&s->table_map);
	mt_map_release(&s->cache);
	free(s->entries);
	free(s->pool);
	for (i = 0; i < s->strs_cap; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->warnings);
	if (s->libstdcxx)
		dlclose(s->libstdcxx);
	free(s);
}

const char *mst_symbolizer_warnings(const struct mst_symbolizer *s)
{
	return s->warnings ? s->warnings : "";
}

static const char *demangled(struct mst_symbolizer *s, const char *name);

int mst_symbolizer_add_symbols(struct mst_symbolizer *s, const struct mst_symbols *syms)
{
	uint32_t ti = mt_map_get(&s->table_map, syms->module);
	struct sym_table *t;
	uint64_t i;
	if (ti == UINT32_MAX) {
		if (mst__grow(&s->tables, &s->tables_cap, s->ntables + 1, sizeof(*s->tables)) < 0 ||
		    mt_map_put(&s->table_map, syms->module, (uint32_t)s->ntables) < 0)
			return MST_ERR_NOMEM;
		ti = (uint32_t)s->ntables++;
		memset(&s->tables[ti], 0, sizeof(s->tables[ti]));
		s->tables[ti].module = syms->module;
	}
	t = &s->tables[ti];
	if (mst__grow(&t->e, &t->cap, t->n + syms->count, sizeof(*t->e)) < 0)
		return MST_ERR_NOMEM;
	for (i = 0; i < syms->count; i++) {
		const struct mst_symbol *x = &syms->items[i];
		struct sym_entry *e = &t->e[t->n++];
		e->start = x->start;
		e->size = x->size;
		e->line = x->line;
		e->function = x->function && *x->function ? demangled(s, x->function) : NULL;
		e->file = x->file && *x->file ? intern(s, x->file) : NULL;
	}
	t->sorted = 0;
	return MST_OK;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct sym_entry *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The embedded entry covering module offset OFF, or NULL. */
static const struct sym_entry *table_lookup(struct mst_symbolizer *s, uint64_t module,
					    uint64_t off)
{
	uint32_t ti = mt_map_get(&s->table_map, module);
	struct sym_table *t;
	size_t lo = 0, hi;
	if (ti == UINT32_MAX)
		return NULL;
	t = &s->tables[ti];
	if (!t->sorted) {
		qsort(t->e, t->n, sizeof(*t->e), cmp_entry);
		t->sorted = 1;
	}
	hi = t->n;
	while (lo < hi) {             /* first entry with start > off */
		size_t mid = lo + (hi - lo) / 2;
		if (t->e[mid].start <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	if (off - t->e[lo - 1].start < (t->e[lo - 1].size ? t->e[lo - 1].size : 1))
		return &t->e[lo - 1];
	return NULL;
}

/* The path of the separate debug file of build-id BID in the standard
 * place (/usr/lib/debug/.build-id/xx/yyyy.debug); 0 if BID is too short. */
static int build_id_debug_path(const uint8_t *bid, size_t bidlen, char *path, size_t size)
{
	size_t i;
	int n;
	if (bidlen < 2)
		return 0;
	n = snprintf(path, size, "/usr/lib/debug/.build-id/%02x/", bid[0]);
	for (i = 1; i < bidlen && n + 3 < (int)size; i++)
		n += snprintf(path + n, size - (size_t)n, "%02x", bid[i]);
	snprintf(path + n, size - (size_t)n, ".debug");
	return 1;
}

/* Whether the file A B/C can be read; a path too long to build counts as
 * one that can (the standard search then decides). */
static int readable(const char *a, const char *b, const char *c)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s/%s", a, b, c);
	return n < 0 || n >= (int)sizeof(path) || access(path, R_OK) == 0;
}

/*
 * libdwfl's search for a separate debug file, but for its last resort:
 * when the build-id tree and the places a debug link (or FILE.debug) names
 * have nothing, libdwfl asks debuginfod, and to do that it loads the
 * debuginfod client, libcurl and a TLS stack (some 6 ms, in every run whose
 * trace names a program without debug information, python3 or bash, say).
 * Without DEBUGINFOD_URLS that client has no server to ask: the search then
 * ends here. With it, libdwfl searches as it always does.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	const char *urls = getenv("DEBUGINFOD_URLS"), *slash;
	const unsigned char *bits;
	GElf_Addr vaddr;
	char path[300], *dir = NULL, *name = NULL;
	int n, found;

	if ((urls && *urls) || !file_name || file_name[0] != '/')
		goto standard;
	n = dwfl_module_build_id(mod, &bits, &vaddr);
	if (n > 0 && build_id_debug_path(bits, (size_t)n, path, sizeof(path)) &&
	    access(path, R_OK) == 0)
		goto standard;
	slash = strrchr(file_name, '/');
	dir = strndup(file_name, (size_t)(slash - file_name));
	if (debuglink_file)
		name = strdup(debuglink_file);
	else if (asprintf(&name, "%s.debug", slash + 1) < 0)
		name = NULL;
	if (!dir || !name) {
		free(dir);
		free(name);
		goto standard;
	}
	/* libdwfl's places: beside the file, in .debug/ there, and under
	 * /usr/lib/debug by the file's folder */
	found = readable(dir, "", name) || readable(dir, "/.debug", name) ||
		readable("/usr/lib/debug", dir, name);
	free(dir);
	free(name);
	if (!found) {
		errno = ENOENT;
		return -1;
	}
standard:
	return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
					    debuglink_file, debuglink_crc, debuginfo_file_name);
}

/* Whether ELF has a section named NAME. */
static int has_section(Elf *elf, const char *name)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *n;
		if (gelf_getshdr(scn, &sh) && (n = elf_strptr(elf, shstrndx, sh.sh_name)) &&
		    !strcmp(n, name))
			return 1;
	}
	return 0;
}

/*
 * The module's DWARF, read by libdw from a copy whose compressed debug
 * sections are inflated already (inflate.c), where it has such sections:
 * in its separate debug file in the build-id tree (a distribution's), else
 * in the file itself. libdwfl would inflate them with zlib, three times
 * slower. Left unset otherwise, or when the debug file's addresses are not
 * the program's (a prelinked library): libdwfl reads those as it always did.
 */
static void own_dwarf(struct sym_module *sm, const char *path, const uint8_t *bid,
		      size_t bidlen)
{
	GElf_Addr bias;
	Elf *main_elf = dwfl_module_getelf(sm->mod, &bias);
	GElf_Phdr a, b;
	char dpath[300];
	int fd = -1, ok;
	size_t i, n;

	if (build_id_debug_path(bid, bidlen, dpath, sizeof(dpath)))
		fd = open(dpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !main_elf)
		goto fail;
	ok = mst__inflate_elf_cached(fd, &sm->image) == 0;
	close(fd);
	fd = -1;
	if (!ok || !(sm->dw_elf = elf_memory(sm->image.base, sm->image.size)) ||
	    has_section(sm->dw_elf, ".gnu_debugaltlink"))
		goto fail;            /* dwz's shared file: libdwfl finds it by path */
	/* the same first loaded segment: the same addresses, the same bias */
	if (elf_getphdrnum(main_elf, &n) != 0)
		goto fail;
	for (i = 0; i < n && gelf_getphdr(main_elf, (int)i, &a) && a.p_type != PT_LOAD; i++)
		;
	if (i == n || !gelf_getphdr(sm->dw_elf, (int)i, &b) || b.p_type != PT_LOAD ||
	    a.p_vaddr != b.p_vaddr)
		goto fail;
	sm->dw = dwarf_begin_elf(sm->dw_elf, DWARF_C_READ, NULL);
	if (!sm->dw)
		goto fail;
	sm->dw_bias = bias;
	return;
fail:
	if (fd >= 0)
		close(fd);
	if (sm->dw_elf)
		elf_end(sm->dw_elf);
	sm->dw_elf = NULL;
	mst__image_release(&sm->image);
}

/*
 * Opens the module's ELF at the recorded bias into SM and checks its
 * build-id. Touches nothing shared but CB (read only), so that the
 * background thread can run it: a warning goes to WHY ("" when none).
 * DEBUG: its debug information will be read (see own_dwarf).
 */
static void open_elf(const Dwfl_Callbacks *cb, struct sym_module *sm, const char *path,
		     uint64_t base, const uint8_t *build_id, size_t build_id_len, int debug,
		     char *why, size_t whylen)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	int n, fd;

	why[0] = 0;
	sm->state = -1;
	if (!path || !path[0] || path[0] == '[')
		return;               /* [vdso] and friends: no file */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return;
	}
	sm->dwfl = dwfl_begin(cb);
	if (!sm->dwfl) {
		close(fd);
		return;
	}
	dwfl_report_begin(sm->dwfl);
	/* dwfl takes FD over */
	sm->mod = dwfl_report_elf(sm->dwfl, path, path, fd, base, false);
	dwfl_report_end(sm->dwfl, NULL, NULL);
	if (!sm->mod) {
		close(fd);            /* consumed only on success */
		snprintf(why, whylen, "cannot read ELF: %s", dwfl_errmsg(-1));
		return;
	}
	if (build_id_len) {
		n = dwfl_module_build_id(sm->mod, &bits, &vaddr);
		if (n != (int)build_id_len || memcmp(bits, build_id, build_id_len)) {
			snprintf(why, whylen, "build-id differs from the recording");
			sm->mod = NULL;
			return;
		}
	}
	sm->state = 1;
	if (debug)
		own_dwarf(sm, path, build_id, build_id_len);
}

static void module_open(struct mst_symbolizer *s, struct sym_module *sm,
			const struct mst_module_load *ml)
{
	char why[300];
	open_elf(&s->cb, sm, ml->path, ml->base, ml->build_id, ml->build_id_len,
		 !(s->flags & MST_SYM_NO_DEBUGINFO), why, sizeof(why));
	if (why[0])
		warn(s, ml->path, why);
}

/* ---- background opening ---- */

/*
 * Whether reading MOD's debug information is worth starting ahead: it is
 * in the file itself or in /usr/lib/debug/.build-id/. Otherwise libdwfl's
 * search ends by loading the debuginfod client (with libcurl and its TLS
 * stack, megabytes mapped), which a module that the output never names
 * must not cost; such a module is left to mst_symbolize.
 */
static int has_debuginfo(Dwfl_Module *mod, const uint8_t *bid, size_t bidlen)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(mod, &bias);
	char path[300];

	if (elf && (has_section(elf, ".debug_info") || has_section(elf, ".zdebug_info")))
		return 1;
	return build_id_debug_path(bid, bidlen, path, sizeof(path)) && access(path, R_OK) == 0;
}

/* The thread: opens each queued module and reads its debug information
 * (dwfl_module_getdwarf inflates and indexes it), in the order given. */
static void *prepare_main(void *arg)
{
	struct mst_symbolizer *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sym_module sm;
		char *path, why[300];
		uint8_t *bid;
		size_t j, bidlen;
		uint64_t base;
		Dwarf_Addr bias;

		while (!s->stopping && s->next_job == s->njobs)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stopping)
			break;
		j = s->next_job++;
		if (s->jobs[j].status != JOB_QUEUED)
			continue;     /* the caller took it over */
		s->jobs[j].status = JOB_RUNNING;
		/* jobs[] may move while unlocked: work on copies */
		path = s->jobs[j].path;
		bid = s->jobs[j].build_id;
		bidlen = s->jobs[j].build_id_len;
		base = s->jobs[j].base;
		pthread_mutex_unlock(&s->lock);

		memset(&sm, 0, sizeof(sm));
		open_elf(&s->cb, &sm, path, base, bid, bidlen,
			 !(s->flags & MST_SYM_NO_DEBUGINFO), why, sizeof(why));
		if (sm.state == 1 && !(s->flags & MST_SYM_NO_DEBUGINFO) && !sm.dw &&
		    has_debuginfo(sm.mod, bid, bidlen))
			dwfl_module_getdwarf(sm.mod, &bias);

		pthread_mutex_lock(&s->lock);
		s->jobs[j].sm = sm;
		s->jobs[j].warn = why[0] ? strdup(why) : NULL;
		s->jobs[j].status = JOB_DONE;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int mst_symbolizer_prepare(struct mst_symbolizer *s, const struct mst_module_load *ml)
{
	struct sym_job *j;
	const char *env;
	int rc = MST_OK;

	if (s->no_thread || (s->flags & MST_SYM_NO_LOOKUP) || !ml->path || !ml->path[0] ||
	    ml->path[0] == '[' || s->njobs >= MAX_PREPARED ||
	    mt_map_get(&s->mod_map, ml->module) != UINT32_MAX ||
	    mt_map_get(&s->job_map, ml->module) != UINT32_MAX)
		return MST_OK;
	/* An embedded table (SYMBOLS before it) names its frames first. */
	if (mt_map_get(&s->table_map, ml->module) != UINT32_MAX)
		return MST_OK;
	if (!s->thread_started) {
		/* One CPU or MEMSCOPE_THREADS=1: modules open on demand. */
		env = getenv("MEMSCOPE_THREADS");
		if ((env && !strcmp(env, "1")) || sysconf(_SC_NPROCESSORS_ONLN) < 2) {
			s->no_thread = 1;
			return MST_OK;
		}
	}
	pthread_mutex_lock(&s->lock);
	if (mst__grow(&s->jobs, &s->jobs_cap, s->njobs + 1, sizeof(*s->jobs)) < 0) {
		rc = MST_ERR_NOMEM;
		goto out;
	}
	j = &s->jobs[s->njobs];
	memset(j, 0, sizeof(*j));
	j->id = ml->module;
	j->base = ml->base;
	j->path = strdup(ml->path);
	j->build_id_len = ml->build_id_len;
	j->build_id = ml->build_id_len ? malloc(ml->build_id_len) : NULL;
	if (!j->path || (ml->build_id_len && !j->build_id)) {
		free(j->path);
		free(j->build_id);
		rc = MST_ERR_NOMEM;
		goto out;
	}
	if (mt_map_put(&s->job_map, ml->module, (uint32_t)s->njobs) < 0) {
		free(j->path);
		free(j->build_id);
		rc = MST_ERR_NOMEM;
		goto out;
	}
	if (ml->build_id_len)
		memcpy(j->build_id, ml->build_id, ml->build_id_len);
	j->status = JOB_QUEUED;
	s->njobs++;
	if (!s->thread_started) {
		if (pthread_create(&s->thread, NULL, prepare_main, s) != 0) {
			/* no thread: nothing is lost, modules open on demand */
			s->no_thread = 1;
			j->status = JOB_TAKEN;
			goto out;
		}
		s->thread_started = 1;
	}
	pthread_cond_signal(&s->cond);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int mst_symbolizer_prepare_sites(struct mst_symbolizer *s, const struct mst_model *m)
{
	const struct mst_site *sites;
	const struct mst_module_load *last = NULL;
	size_t n = mst_model_sites(m, &sites), i;
	uint64_t count = mst_reader_stack_count(s->r);
	int rc;

	if (n > s->sites_seen && count >= s->seen_cap * 8) {
		size_t cap = (size_t)(count / 8 + 1) * 2;
		uint8_t *p = realloc(s->seen_nodes, cap);
		if (!p)
			return MST_OK;        /* no early loading: names come anyway */
		memset(p + s->seen_cap, 0, cap - s->seen_cap);
		s->seen_nodes = p;
		s->seen_cap = cap;
	}
	for (i = s->sites_seen; i < n; i++) {
		uint64_t id = sites[i].stack, parent, ip;
		while (id && id <= count && !(s->seen_nodes[id / 8] & (1u << (id % 8)))) {
			const struct mst_module_load *ml;
			s->seen_nodes[id / 8] |= (uint8_t)(1u << (id % 8));
			if (mst_reader_stack_node(s->r, id, &parent, &ip) != MST_OK)
				break;
			ml = mst_reader_module_at(s->r, ip);
			if (ml && ml != last) {
				last = ml;
				rc = mst_symbolizer_prepare(s, ml);
				if (rc != MST_OK)
					return rc;
			}
			id = parent;
		}
	}
	s->sites_seen = n;
	return MST_OK;
}

/* Opens ML into SM, or adopts what the background thread opened for it
 * (waiting for it to finish when it is at it). */
static void module_open_or_adopt(struct mst_symbolizer *s, struct sym_module *sm,
				 const struct mst_module_load *ml)
{
	struct sym_job *j = NULL;
	char *why = NULL;
	int adopted = 0;
	size_t i;

	if (s->njobs) {
		pthread_mutex_lock(&s->lock);
		i = mt_map_get(&s->job_map, ml->module);
		if (i != UINT32_MAX) {
			struct sym_job *x = &s->jobs[i];
			/* the same module as the one asked about, and not taken */
			if (x->status != JOB_TAKEN && x->base == ml->base &&
			    ml->path && !strcmp(x->path, ml->path) &&
			    x->build_id_len == ml->build_id_len &&
			    (!x->build_id_len || !memcmp(x->build_id, ml->build_id, x->build_id_len)))
				j = x;
		}
		if (j) {
			while (j->status == JOB_RUNNING)
				pthread_cond_wait(&s->cond, &s->lock);
			/* QUEUED: quicker to open it here than to wait */
			if (j->status == JOB_DONE) {
				uint64_t id = sm->id;
				*sm = j->sm;
				sm->id = id;
				why = j->warn;
				j->warn = NULL;
				adopted = 1;
			}
			j->status = JOB_TAKEN;
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (!adopted) {
		module_open(s, sm, ml);
		return;
	}
	if (why)
		warn(s, ml->path, why);
	free(why);
}

static struct sym_module *module_for(struct mst_symbolizer *s,
				     const struct mst_module_load *ml)
{
	uint32_t i = mt_map_get(&s->mod_map, ml->module);
	struct sym_module *sm;
	if (i == UINT32_MAX) {
		if (mst__grow(&s->mods, &s->mods_cap, s->nmods + 1, sizeof(*s->mods)) < 0)
			return NULL;
		i = (uint32_t)s->nmods;
		if (mt_map_put(&s->mod_map, ml->module, i) < 0)
			return NULL;
		s->nmods++;
		memset(&s->mods[i], 0, sizeof(s->mods[i]));
		s->mods[i].id = ml->module;
	}
	sm = &s->mods[i];
	if (!sm->state)
		module_open_or_adopt(s, sm, ml);
	return sm;
}

static const char *demangled(struct mst_symbolizer *s, const char *name)
{
	char *d;
	const char *ret;
	int status = -1;
	/* glibc's internal aliases: "__GI___libc_malloc" is "__libc_malloc"
	 * to its users. */
	if (name && !strncmp(name, "__GI_", 5) && name[5])
		name += 5;
	if (!name || name[0] != '_' || name[1] != 'Z')
		return intern(s, name);
	if (!s->demangle_tried) {
		/* Only traces with C++ names pay for loading libstdc++. */
		s->demangle_tried = 1;
		s->libstdcxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
		if (s->libstdcxx)
			*(void **)&s->demangle = dlsym(s->libstdcxx, "__cxa_demangle");
	}
	if (!s->demangle)
		return intern(s, name);
	d = s->demangle(name, NULL, NULL, &status);
	if (status != 0 || !d) {
		free(d);
		return intern(s, name);
	}
	ret = intern(s, d);
	free(d);
	return ret;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	const char *n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
	if (!n)
		n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
	if (!n)
		n = dwarf_diename(die);
	return n;
}

/* The compile unit holding ADDR by walking every unit: for objects
 * without .debug_aranges (clang does not write them by default), where
 * the lookup by address finds nothing. Results are cached per address. */
static Dwarf_Die *cu_containing(Dwfl_Module *mod, uint64_t addr, Dwarf_Addr *bias)
{
	Dwarf_Die *cu = NULL;
	while ((cu = dwfl_module_nextcu(mod, cu, bias)) != NULL)
		if (dwarf_haspc(cu, addr - *bias) > 0)
			return cu;
	return NULL;
}

/* The same in a module's own DWARF: the unit holding DWARF address A, in
 * *MEM. */
static Dwarf_Die *own_cu(Dwarf *dw, Dwarf_Addr a, Dwarf_Die *mem)
{
	Dwarf_Off off = 0, next;
	size_t hsize;
	if (dwarf_addrdie(dw, a, mem))
		return mem;
	while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		if (dwarf_offdie(dw, off + hsize, mem) && dwarf_haspc(mem, a) > 0)
			return mem;
		off = next;
	}
	return NULL;
}

/* Fills OUT with the inline chain at ADDR (innermost first); returns the
 * count, 0 when DWARF says nothing. */
static size_t resolve_dwarf(struct mst_symbolizer *s, struct sym_module *sm,
			    uint64_t addr, struct mst_frame *out, size_t max)
{
	Dwarf_Addr bias = 0;
	Dwarf_Die cu_mem, *cu;
	Dwarf_Die *scopes = NULL;
	Dwarf_Files *files = NULL;
	size_t nfiles = 0, n = 0;
	const char *file = NULL;
	uint64_t line = 0;
	Dwarf_Line *l;
	int ns, i;

	if (sm->dw) {
		bias = sm->dw_bias;
		cu = own_cu(sm->dw, addr - bias, &cu_mem);
	} else {
		cu = dwfl_module_addrdie(sm->mod, addr, &bias);
		if (!cu)
			cu = cu_containing(sm->mod, addr, &bias);
	}
	if (!cu)
		return 0;
	l = dwarf_getsrc_die(cu, addr - bias);
	if (l) {
		int ln = 0;
		file = dwarf_linesrc(l, NULL, NULL);
		if (dwarf_lineno(l, &ln) == 0 && ln > 0)
			line = (uint64_t)ln;
	}
	ns = dwarf_getscopes(cu, addr - bias, &scopes);
	if (ns <= 0)
		goto only_line;
	/* dwarf_getscopes goes on into an inlined function's abstract
	 * definition; the physical chain of enclosing scopes (inlined
	 * subroutines up to the real function) comes from the innermost
	 * scope's parents, as eu-addr2line --inlines does. */
	{
		Dwarf_Die inner = scopes[0];
		free(scopes);
		scopes = NULL;
		ns = dwarf_getscopes_die(&inner, &scopes);
		if (ns <= 0)
			goto only_line;
	}
	dwarf_getsrcfiles(cu, &files, &nfiles);
	for (i = 0; i < ns && n < max; i++) {
		int tag = dwarf_tag(&scopes[i]);
		Dwarf_Attribute a;
		Dwarf_Word cf = 0, cl = 0;
		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
			continue;
		out[n].function = demangled(s, die_name(&scopes[i]));
		out[n].file = intern(s, file);
		out[n].line = line;
		out[n].inlined = tag == DW_TAG_inlined_subroutine;
		n++;
		if (tag == DW_TAG_subprogram)
			break;
		/* The caller's location is this inlined call's site. */
		file = NULL;
		line = 0;
		if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &cf) == 0 &&
		    files)
			file = dwarf_filesrc(files, cf, NULL, NULL);
		if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &cl) == 0)
			line = cl;
	}
	free(scopes);
	if (n)
		return n;
only_line:
	if (!file)
		return 0;
	out[0].function = NULL;
	out[0].file = intern(s, file);
	out[0].line = line;
	out[0].inlined = 0;
	return 1;
}

static size_t resolve(struct mst_symbolizer *s, uint64_t ip, int is_ret,
		      struct mst_frame *out, size_t max)
{
	const struct mst_module_load *ml = s->r ? mst_reader_module_at(s->r, ip) : NULL;
	uint64_t addr = is_ret && ip ? ip - 1 : ip;
	struct sym_module *sm;
	size_t n = 0, i;
	const char *path;

	memset(out, 0, sizeof(*out));
	if (!ml)
		return 1;
	path = intern(s, ml->path);
	out[0].module = path;
	out[0].module_offset = ip - ml->base;
	if (s->flags & MST_SYM_NO_LOOKUP)
		return 1;
	if (s->ntables) {
		/* The trace's own table first: it needs no file. */
		const struct sym_entry *e = table_lookup(s, ml->module,
							 addr - ml->base);
		if (e && e->function) {
			out[0].function = e->function;
			out[0].file = e->file;
			out[0].line = e->line;
			return 1;
		}
	}
	sm = module_for(s, ml);
	if (!sm || sm->state != 1)
		return 1;
	if (!(s->flags & MST_SYM_NO_DEBUGINFO))
		n = resolve_dwarf(s, sm, addr, out, max);
	if (n == 0 || !out[n - 1].function) {
		/* The symbol table names the real function. */
		const char *name = NULL;
		if (!sm->symtab)
			sm->symtab = mst__symtab_new(sm->mod);
		if (sm->symtab)
			name = mst__symtab_lookup(sm->symtab, addr);
		else {
			/* out of memory for the sorted table: the slow way */
			GElf_Off off;
			GElf_Sym sym;
			name = dwfl_module_addrinfo(sm->mod, addr, &off, &sym, NULL, NULL, NULL);
		}
		if (n == 0) {
			n = 1;
			out[0].file = NULL;
			out[0].line = 0;
			out[0].inlined = 0;
		}
		out[n - 1].function = demangled(s, name);
	}
	for (i = 0; i < n; i++) {
		out[i].module = path;
		out[i].module_offset = ip - ml->base;
	}
	return n;
}

size_t mst_symbolize(struct mst_symbolizer *s, uint64_t ip, int is_return_addr,
		     struct mst_frame *frames, size_t max)
{
	uint64_t key = ip << 1 | (is_return_addr ? 1 : 0);
	uint32_t e = mt_map_get(&s->cache, key);
	struct mst_frame tmp[MAX_INLINE];
	size_t n, i;

	if (!max)
		return 0;
	if (e == UINT32_MAX) {
		n = resolve(s, ip, is_return_addr, tmp, MAX_INLINE);
		if (mst__grow(&s->pool, &s->pool_cap, s->npool + n, sizeof(*s->pool)) == 0 &&
		    mst__grow(&s->entries, &s->entries_cap, s->nentries + 1, sizeof(*s->entries)) == 0 &&
		    mt_map_put(&s->cache, key, (uint32_t)s->nentries) == 0) {
			e = (uint32_t)s->nentries++;
			s->entries[e].first = (uint32_t)s->npool;
			s->entries[e].n = (uint32_t)n;
			memcpy(s->pool + s->npool, tmp, n * sizeof(*tmp));
			s->npool += n;
		} else {
			n = n < max ? n : max;
			memcpy(frames, tmp, n * sizeof(*tmp));
			return n;
		}
	}
	n = s->entries[e].n < max ? s->entries[e].n : max;
	for (i = 0; i < n; i++)
		frames[i] = s->pool[s->entries[e].first + i];
	return n;
}
