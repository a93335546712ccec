/*
 * process.c - the recorder's life in the traced process: settings from the
 * environment, start-up (clock, spool, trace, header), modules (at start and
 * after dlopen/dlclose), threads (creation, names), and every way a process
 * can end or change: exit, _exit, fatal signals, fork, exec. spool.h says
 * what the trace keeps in each case.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "recorder.h"
#include "mstrace.h"
#define MEMSCOPE_IMPLEMENTATION
#include "memscope.h"

/* header strings, shared with writer.c */
char hdr_program[SPOOL_PATH_MAX];
char hdr_allocator[16] = "unknown";
char hdr_hostname[256];
int hdr_own_malloc;                 /* MST_FLAG_OWN_MALLOC */
char *hdr_argbuf;
size_t hdr_arglen;

static char out_template[SPOOL_PATH_MAX];   /* absolute, %p unresolved */
/* The pid whose trace this is. Another pid running this code shares our
 * memory: a vfork child, which must not finish or rename our trace. */
static pid_t rec_pid;

static int in_owner(void)
{
	return getpid() == rec_pid;
}
static char self_path[SPOOL_PATH_MAX];      /* this library, for LD_PRELOAD */
static int exit_status, have_status;
static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;

int (*real_pthread_create)(pthread_t *, const pthread_attr_t *,
			   void *(*)(void *), void *);
static int (*real_setname)(pthread_t, const char *);
static int (*real_prctl)(int, unsigned long, unsigned long, unsigned long,
			 unsigned long);
static void *(*real_dlopen)(const char *, int);
static int (*real_dlclose)(void *);
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);
static void (*real__exit)(int) __attribute__((noreturn));
static void (*real__Exit)(int) __attribute__((noreturn));
static void (*real_exit)(int) __attribute__((noreturn));
static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			       const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				const posix_spawnattr_t *, char *const[], char *const[]);

void core_init_keys(void);
void stack_attach_spool(void);
int writer_header(void);
void writer_resume(void);
void writer_checkpoint_now(void);
void writer_abandon(void);
const char *writer_spool_path(void);
void spool_remove_finished(const char *path);

/* dlsym under the guard: a failed lookup allocates its error message and
 * a later dlsym/dlerror frees it, neither of which is the program's. */
static void *next_sym(const char *name)
{
	struct tstate *t = &tls;
	void *p;

	t->guard++;
	p = dlsym(RTLD_NEXT, name);
	if (!p) {
		/* preloaded after the defining library: take the first
		 * definition, unless it is ours */
		Dl_info a, b;

		p = dlsym(RTLD_DEFAULT, name);
		if (p && dladdr(p, &a) && dladdr((void *)next_sym, &b) &&
		    a.dli_fbase == b.dli_fbase)
			p = NULL;
	}
	dlerror();
	t->guard--;
	return p;
}

/* ---- settings ---- */

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		log_error("ignoring %s='%s': not a number in %d..%d", name, s, lo, hi);
		return def;
	}
	return (int)v;
}

static void random_session(uint8_t *out)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	uint64_t x = rdtsc_raw() ^ ((uint64_t)getpid() << 32);
	int i;

	if (fd >= 0) {
		if (read(fd, out, 16) == 16) {
			close(fd);
			return;
		}
		close(fd);
	}
	for (i = 0; i < 16; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		out[i] = (uint8_t)(x >> 56);
	}
}

static int parse_hex16(const char *s, uint8_t *out)
{
	int i;

	if (!s || strlen(s) != 32)
		return -1;
	for (i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/*
 * The trace path for this pid from the (absolute) template: %p is the pid,
 * %e this program's name. With the launcher's default name, processes other
 * than the launched one (and the images it execs in its pid) take
 * MEMSCOPE_OUTPUT_OTHERS ("%e.%p.memscope"), so the helpers a shell script
 * runs are named after themselves, not after the script.
 */
static void resolve_path(void)
{
	char *o = cfg.trace_path, *end = cfg.trace_path + sizeof(cfg.trace_path) - 1;
	const char *s, *tmpl = out_template;
	int has_p = 0;
	const char *pid0 = getenv("MEMSCOPE_PID0");
	const char *others = getenv("MEMSCOPE_OUTPUT_OTHERS");

	if (others && others[0] == '/' && pid0 && atoi(pid0) != getpid())
		tmpl = others;
	for (s = tmpl; *s && o < end; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			o += snprintf(o, end - o, "%d", (int)getpid());
			if (o > end)
				o = end;
			has_p = 1;
			s++;
		} else if (s[0] == '%' && s[1] == 'e') {
			const char *e = program_invocation_short_name;

			for (; *e && o < end; e++)
				*o++ = *e == '/' ? '_' : *e;
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	/* A fixed name and a child process: keep the parent's file. */
	if (!has_p && pid0 && atoi(pid0) != getpid()) {
		char tmp[SPOOL_PATH_MAX];
		size_t n = strlen(cfg.trace_path);

		if (n > 9 && !strcmp(cfg.trace_path + n - 9, ".memscope"))
			n -= 9;
		snprintf(tmp, sizeof(tmp), "%.*s.%d.memscope", (int)n, cfg.trace_path,
			 (int)getpid());
		memcpy(cfg.trace_path, tmp, sizeof(tmp));
	}
}

/*
 * setenv, in memory of the recorder's own. setenv
 * would malloc the program a new environment array unseen (the recorder's
 * allocations are not recorded) that the program's own setenv later
 * reallocs: a free of a block the trace never saw. Here the array and the
 * string live in an anonymous mapping glibc never frees; its next setenv
 * copies the array into one it allocates, which the trace sees.
 */
static void env_add(const char *name, const char *value)
{
	extern char **environ;
	size_t n = 0, len = strlen(name) + strlen(value) + 2, size;
	char **env, *str;

	unsetenv(name);         /* set but unusable: moves entries, allocates nothing */
	while (environ && environ[n])
		n++;
	size = (n + 2) * sizeof(char *) + len;
	env = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (env == MAP_FAILED)
		return;
	str = (char *)(env + n + 2);
	snprintf(str, len, "%s=%s", name, value);
	if (n)
		memcpy(env, environ, n * sizeof(char *));
	env[n] = str;
	env[n + 1] = NULL;
	environ = env;
}

static void parse_config(void)
{
	const char *s;
	char cwd[SPOOL_PATH_MAX];
	double rate = 1.0;
	int mb;

	cfg.debug = (s = getenv("MEMSCOPE_LOG")) && !strcmp(s, "debug");
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, ".");
	s = getenv("MEMSCOPE_OUTPUT");
	if (s && *s) {
		if (s[0] == '/')
			snprintf(out_template, sizeof(out_template), "%s", s);
		else
			snprintf(out_template, sizeof(out_template), "%s/%s", cwd, s);
	} else {
		snprintf(out_template, sizeof(out_template), "%s/%s.%%p.memscope", cwd,
			 program_invocation_short_name);
	}
	resolve_path();

	s = getenv("MEMSCOPE_SPOOL_DIR");
	if (s && *s) {
		snprintf(cfg.spool_dir, sizeof(cfg.spool_dir), "%s", s);
	} else {
		char *slash;

		snprintf(cfg.spool_dir, sizeof(cfg.spool_dir), "%s", cfg.trace_path);
		slash = strrchr(cfg.spool_dir, '/');
		if (slash && slash != cfg.spool_dir)
			*slash = 0;
	}

	s = getenv("MEMSCOPE_SAMPLE_RATE");
	if (s && *s) {
		char *end;

		rate = strtod(s, &end);
		if (*end || !(rate > 0 && rate <= 1)) {
			log_error("ignoring MEMSCOPE_SAMPLE_RATE='%s': not in (0, 1]", s);
			rate = 1.0;
		}
	}
	cfg.sample_ppm = (uint32_t)(rate * 1000000.0 + 0.5);
	if (!cfg.sample_ppm)
		cfg.sample_ppm = 1;
	cfg.sample_threshold = (uint64_t)(rate * 9007199254740992.0);

	cfg.unwind = MST_UNWIND_DWARF;
	s = getenv("MEMSCOPE_UNWIND");
	if (s && *s) {
		if (!strcmp(s, "none"))
			cfg.unwind = MST_UNWIND_NONE;
		else if (!strcmp(s, "fp"))
			cfg.unwind = MST_UNWIND_FP;
		else if (strcmp(s, "dwarf"))
			log_error("ignoring MEMSCOPE_UNWIND='%s': not dwarf, fp or none", s);
	}
	cfg.depth = env_int("MEMSCOPE_STACK_DEPTH", 64, 1, 1 << 20);
	if (cfg.depth > MAX_DEPTH)
		cfg.depth = MAX_DEPTH;   /* deeper frames are cut */
	mb = env_int("MEMSCOPE_MAX_OVERHEAD", 64, 1, 1 << 20);
	cfg.max_overhead = (uint64_t)mb << 20;
	{
		/* a full ring is 1/16 of the bound: the first 16 threads get
		 * one, later ones small rings (core.c) */
		uint64_t slots = cfg.max_overhead / 16 / SPOOL_SLOT;
		uint32_t p = 2048;

		while ((uint64_t)p * 2 <= slots && p < (1u << 20))
			p *= 2;
		cfg.ring_slots = p;
	}
	cfg.drop = env_int("MEMSCOPE_DROP", 0, 0, 1);
	/* not documented: for measuring the writer's trade-offs */
	cfg.zstd_level = env_int("MEMSCOPE_ZSTD_LEVEL", 1, -7, 19);
	cfg.rss_interval_ms = env_int("MEMSCOPE_RSS_INTERVAL", 10, 0, 86400000);
	cfg.follow = env_int("MEMSCOPE_FOLLOW", 1, 0, 1);
	cfg.exec_generation = env_int("MEMSCOPE_EXEC_GENERATION", 0, 0, 1 << 30);
	if (parse_hex16(getenv("MEMSCOPE_SESSION"), cfg.session)) {
		char hex[33];
		int i;

		random_session(cfg.session);
		for (i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", cfg.session[i]);
		env_add("MEMSCOPE_SESSION", hex);
	}
	if (!getenv("MEMSCOPE_PID0")) {
		char pid[24];

		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		env_add("MEMSCOPE_PID0", pid);
	}
	/* the exec'd image reads these; they are ours, not its */
	unsetenv("MEMSCOPE_EXEC_GENERATION");
	if ((s = getenv("MEMSCOPE_OLD_SPOOL")) != NULL) {
		spool_remove_finished(s);
		unsetenv("MEMSCOPE_OLD_SPOOL");
	}
}

/* ---- the clock ---- */

static int tsc_usable(void)
{
	char buf[65536];
	int fd;
	ssize_t n;
	int ok = 0;

	fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		  O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, 16);
	close(fd);
	if (n < 3 || strncmp(buf, "tsc", 3))
		return 0;
	fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		/* rdtscp orders allocation times (recorder.h) */
		ok = strstr(buf, " constant_tsc") && strstr(buf, " rdtscp");
	}
	return ok;
}

/*
 * Which clock, and the TSC's rate, from MEMSCOPE_CLOCK ("tsc MULT" or
 * "mono"), which the first process of a run sets for the ones it execs:
 * the rate is the machine's, and measuring it is a 2 ms busy wait, which
 * was a third of what recording a short process costs (a shell script's
 * every command paid it). 1 when the variable holds a usable answer.
 */
static int clock_from_env(uint64_t *mult)
{
	const char *s = getenv("MEMSCOPE_CLOCK");
	char *end;
	unsigned long long m;

	if (!s)
		return 0;
	if (!strcmp(s, "mono")) {
		use_tsc = 0;
		return 1;
	}
	if (strncmp(s, "tsc ", 4))
		return 0;
	errno = 0;
	m = strtoull(s + 4, &end, 10);
	/* 0.1 to 4 ns a tick: a TSC between 250 MHz and 10 GHz */
	if (errno || *end || m < (1ull << 32) / 10 || m > (1ull << 32) * 4)
		return 0;
	use_tsc = 1;
	*mult = m;
	return 1;
}

static void clock_init(struct spool_header *h)
{
	static uint64_t start, mult;

	if (!mult) {
		char val[32];

		if (!clock_from_env(&mult)) {
			use_tsc = tsc_usable();
			if (use_tsc) {
				uint64_t t0 = clock_slow(), c0 = rdtsc_raw(), t1, c1;

				do {
					t1 = clock_slow();
				} while (t1 - t0 < 2000000);
				c1 = rdtsc_raw();
				mult = (uint64_t)((((unsigned __int128)(t1 - t0)) << 32) / (c1 - c0));
				snprintf(val, sizeof(val), "tsc %llu", (unsigned long long)mult);
			} else {
				snprintf(val, sizeof(val), "mono");
			}
			env_add("MEMSCOPE_CLOCK", val);
		}
		if (use_tsc) {
			start = rdtsc_raw();
		} else {
			mult = 1ull << 32;
			start = clock_slow();
		}
	}
	h->start_ticks = start;
	h->mult = mult;
}

/* ---- header strings ---- */

static void read_cmdline(void)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	size_t cap = 4096;
	ssize_t n;

	hdr_arglen = 0;
	if (fd < 0)
		return;
	hdr_argbuf = malloc(cap);
	while (hdr_argbuf && (n = read(fd, hdr_argbuf + hdr_arglen, cap - hdr_arglen)) > 0) {
		hdr_arglen += (size_t)n;
		if (hdr_arglen == cap) {
			char *p = realloc(hdr_argbuf, cap * 2);

			if (!p)
				break;
			hdr_argbuf = p;
			cap *= 2;
		}
	}
	close(fd);
}

/* OWN: the program's own malloc answers (own_malloc), not the one the
 * hooks would call. */
static void detect_allocator(int own)
{
	Dl_info info;
	const char *name = NULL;

	if (!own && dladdr((void *)real.malloc, &info) && info.dli_fname)
		name = info.dli_fname;
	if (name && strstr(name, "jemalloc"))
		strcpy(hdr_allocator, "jemalloc");
	else if (name && strstr(name, "tcmalloc"))
		strcpy(hdr_allocator, "tcmalloc");
	else if (name && strstr(name, "mimalloc"))
		strcpy(hdr_allocator, "mimalloc");
	else if (dlsym(RTLD_DEFAULT, "mallctl") || dlsym(RTLD_DEFAULT, "je_mallctl"))
		strcpy(hdr_allocator, "jemalloc");
	else if (dlsym(RTLD_DEFAULT, "tc_malloc"))
		strcpy(hdr_allocator, "tcmalloc");
	else if (dlsym(RTLD_DEFAULT, "mi_malloc"))
		strcpy(hdr_allocator, "mimalloc");
	else if (name && strstr(name, "libc.so"))
		strcpy(hdr_allocator, "glibc");
}

volatile int malloc_probe;

/*
 * Whether calls to malloc or free bypass the hooks. An executable is
 * searched before the preloaded libraries, so one that defines malloc
 * itself (a statically linked jemalloc, as rustc's) gets those calls,
 * libc's included, and the hooks none (a library preloaded ahead of the
 * recorder likewise): the trace then says so, rather than show a program
 * that seems to allocate little. When the global lookup of malloc or free
 * lands outside the recorder, one call of each through it tells, counted
 * if it reaches the hooks: a program's malloc may forward to the next one
 * (RTLD_NEXT), and a program built without -fPIE that takes malloc's
 * address (python3 does) has a PLT entry that stands for malloc's address
 * everywhere, which is what the lookup finds, and which leads on to
 * whichever malloc comes first.
 */
static int own_malloc(void)
{
	void *(*m)(size_t);
	void (*f)(void *);
	Dl_info self, at;
	int hits;
	void *p;

	*(void **)&m = dlsym(RTLD_DEFAULT, "malloc");
	*(void **)&f = dlsym(RTLD_DEFAULT, "free");
	if (!m || !f || !dladdr((void *)own_malloc, &self))
		return 0;
	if (dladdr(*(void **)&m, &at) && at.dli_fbase == self.dli_fbase &&
	    dladdr(*(void **)&f, &at) && at.dli_fbase == self.dli_fbase)
		return 0;
	malloc_probe = 1;
	p = m(16);
	if (p)
		f(p);
	hits = malloc_probe - 1;
	malloc_probe = 0;
	log_debug("malloc and free are looked up outside the recorder; %d of %d calls "
		  "through them reached it", hits, p ? 2 : 1);
	return hits < (p ? 2 : 1);
}

static void header_strings(void)
{
	ssize_t n = readlink("/proc/self/exe", hdr_program, sizeof(hdr_program) - 1);

	hdr_program[n > 0 ? n : 0] = 0;
	if (gethostname(hdr_hostname, sizeof(hdr_hostname) - 1))
		hdr_hostname[0] = 0;
	read_cmdline();
	hdr_own_malloc = own_malloc();
	detect_allocator(hdr_own_malloc);
}

/* ---- modules ---- */

#define MAX_MODULES 4096
struct known_module {
	uintptr_t base;
	uint64_t key;                 /* hash of the path */
	uint32_t id;
	int seen;
};
static struct known_module modules[MAX_MODULES];
static uint32_t nmodules, next_module;

struct module_blob {
	uint64_t base;
	uint32_t path_len, build_id_len, nsegs, pad;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static size_t build_id(struct dl_phdr_info *info, const uint8_t **out)
{
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const uint8_t *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const void *)p;
			const uint8_t *name = p + sizeof(*nh);
			const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);

			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(name, "GNU", 4)) {
				*out = desc;
				return nh->n_descsz;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

static int module_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct tstate *t = data;
	const char *path = info->dlpi_name;
	uint64_t key;
	uint32_t i;
	char buf[sizeof(struct module_blob) + SPOOL_PATH_MAX + 256 + 8 + 32 * 64];
	struct module_blob *b = (void *)buf;
	const uint8_t *bid = NULL;
	size_t bidlen, off;
	uint64_t *q;

	(void)size;
	if (!path || !*path)
		path = hdr_program;
	else if (!strncmp(path, "linux-vdso", 10) || !strncmp(path, "linux-gate", 10))
		path = "[vdso]";
	key = str_hash(path);
	for (i = 0; i < nmodules; i++) {
		if (modules[i].base == info->dlpi_addr && modules[i].key == key) {
			modules[i].seen = 1;
			return 0;
		}
	}
	if (nmodules == MAX_MODULES)
		return 0;
	modules[nmodules] = (struct known_module){ info->dlpi_addr, key, ++next_module, 1 };
	nmodules++;

	bidlen = build_id(info, &bid);
	if (bidlen > 256)
		bidlen = 0;
	memset(b, 0, sizeof(*b));
	b->base = info->dlpi_addr;
	b->path_len = (uint32_t)strnlen(path, SPOOL_PATH_MAX - 1);
	b->build_id_len = (uint32_t)bidlen;
	memcpy(buf + sizeof(*b), path, b->path_len);
	if (bidlen)
		memcpy(buf + sizeof(*b) + b->path_len, bid, bidlen);
	off = (sizeof(*b) + b->path_len + bidlen + 7) & ~(size_t)7;
	q = (uint64_t *)(buf + off);
	for (i = 0; i < info->dlpi_phnum && b->nsegs < 64; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		q[0] = ph->p_vaddr;
		q[1] = ph->p_memsz;
		q[2] = ph->p_offset;
		q[3] = ((ph->p_flags & PF_X) ? MST_SEG_EXEC : 0) |
		       ((ph->p_flags & PF_W) ? MST_SEG_WRITE : 0) |
		       ((ph->p_flags & PF_R) ? MST_SEG_READ : 0);
		q += 4;
		b->nsegs++;
	}
	ev_blob(t, EV_MODULE_LOAD, next_module, 0, buf, (size_t)((char *)q - buf));
	return 0;
}

/* Diffs the loaded objects against what the trace knows. */
void modules_scan(struct tstate *t)
{
	uint32_t i, j;

	if (!recording || t->dead)
		return;
	t->guard++;
	pthread_mutex_lock(&module_lock);
	for (i = 0; i < nmodules; i++)
		modules[i].seen = 0;
	dl_iterate_phdr(module_cb, t);
	for (i = j = 0; i < nmodules; i++) {
		if (!modules[i].seen) {
			ev_blob(t, EV_MODULE_UNLOAD, modules[i].id, 0, NULL, 0);
			continue;
		}
		modules[j++] = modules[i];
	}
	nmodules = j;
	pthread_mutex_unlock(&module_lock);
	t->guard--;
}

void modules_reset(void)
{
	nmodules = 0;
	next_module = 0;
	pthread_mutex_init(&module_lock, NULL);
}

/* ---- threads ---- */

#define NAME_SLOTS 4096
static struct { volatile uintptr_t self; volatile uint32_t index; } thread_map[NAME_SLOTS];

static void thread_map_put(pthread_t self, uint32_t index)
{
	uint32_t h = (uint32_t)(((uintptr_t)self >> 12) * 2654435761u) % NAME_SLOTS, i;

	for (i = 0; i < NAME_SLOTS; i++, h = (h + 1) % NAME_SLOTS) {
		uintptr_t cur = thread_map[h].self;

		if (cur == (uintptr_t)self ||
		    (cur == 0 && __sync_bool_compare_and_swap(&thread_map[h].self, 0,
							      (uintptr_t)self))) {
			thread_map[h].index = index;
			return;
		}
	}
}

static uint32_t thread_map_get(pthread_t th)
{
	uint32_t h = (uint32_t)(((uintptr_t)th >> 12) * 2654435761u) % NAME_SLOTS, i;

	for (i = 0; i < NAME_SLOTS; i++, h = (h + 1) % NAME_SLOTS) {
		if (thread_map[h].self == (uintptr_t)th)
			return thread_map[h].index;
		if (!thread_map[h].self)
			return 0;
	}
	return 0;
}

struct start_arg {
	void *(*fn)(void *);
	void *arg;
	uint32_t parent;
};

static void *thread_start(void *p)
{
	struct start_arg a = *(struct start_arg *)p;
	struct tstate *t = &tls;

	t->guard++;
	real.free(p);
	t->guard--;
	t->parent = a.parent;
	if (recording && thread_attach(t) == 0)
		thread_map_put(pthread_self(), t->thread);
	return a.fn(a.arg);
}

EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	struct tstate *t = &tls;
	struct start_arg *a;

	if (!real_pthread_create)
		*(void **)&real_pthread_create = next_sym("pthread_create");
	if (!recording || t->guard)
		return real_pthread_create(th, attr, fn, arg);
	t->guard++;
	a = real.malloc(sizeof(*a));
	t->guard--;
	if (!a)
		return real_pthread_create(th, attr, fn, arg);
	a->fn = fn;
	a->arg = arg;
	a->parent = thread_index_of(t);
	if (t->thread)
		thread_map_put(pthread_self(), t->thread);
	{
		int rc = real_pthread_create(th, attr, thread_start, a);

		if (rc) {
			t->guard++;
			real.free(a);
			t->guard--;
		}
		return rc;
	}
}

EXPORT int pthread_setname_np(pthread_t th, const char *name)
{
	struct tstate *t = &tls;
	int rc;

	if (!real_setname)
		*(void **)&real_setname = next_sym("pthread_setname_np");
	rc = real_setname(th, name);
	if (rc == 0 && recording && !t->guard && !t->dead) {
		uint32_t idx = pthread_equal(th, pthread_self()) ? thread_index_of(t)
								 : thread_map_get(th);

		if (idx)
			ev_blob(t, EV_THREAD_NAME, idx, 0, name, strnlen(name, 255));
	}
	return rc;
}

/*
 * prctl(PR_SET_NAME) names the calling thread without pthread_setname_np
 * (glibc's own call to it is internal and does not come here). prctl is
 * variadic: like glibc's, this passes on four more words whatever the
 * option takes.
 */
EXPORT int prctl(int option, ...)
{
	struct tstate *t = &tls;
	unsigned long a[4];
	va_list ap;
	int rc;

	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (!real_prctl)
		*(void **)&real_prctl = next_sym("prctl");
	rc = real_prctl(option, a[0], a[1], a[2], a[3]);
	if (rc == 0 && option == PR_SET_NAME && a[0] && recording && !t->guard &&
	    !t->dead) {
		uint32_t idx = thread_index_of(t);

		/* the kernel keeps 15 bytes of it */
		if (idx)
			ev_blob(t, EV_THREAD_NAME, idx, 0, (const char *)a[0],
				strnlen((const char *)a[0], 15));
	}
	return rc;
}

/* ---- dlopen / dlclose ---- */

EXPORT void *dlopen(const char *file, int mode)
{
	struct tstate *t = &tls;
	void *h;

	if (!real_dlopen)
		*(void **)&real_dlopen = next_sym("dlopen");
	h = real_dlopen(file, mode);
	if (h && recording && !t->guard && !t->dead)
		modules_scan(t);
	return h;
}

EXPORT int dlclose(void *h)
{
	struct tstate *t = &tls;
	int rc;

	if (!real_dlclose)
		*(void **)&real_dlclose = next_sym("dlclose");
	rc = real_dlclose(h);
	if (rc == 0)
		cfi_modules_changed();
	if (rc == 0 && recording && !t->guard && !t->dead)
		modules_scan(t);
	return rc;
}

/* ---- fatal signals ---- */

static const int fatal_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
static struct sigaction prog_act[NSIG];    /* what the program asked for */
static int hooked[NSIG];

static void fatal_handler(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *pa = &prog_act[sig];
	struct sigaction dfl;
	int saved = errno;

	/* a write into the spool on a full filesystem: not the program's */
	if (sig == SIGBUS && si && spool_fault(si->si_addr)) {
		errno = saved;
		return;
	}

	if (pa->sa_handler != SIG_DFL && pa->sa_handler != SIG_IGN) {
		/* the program's handler decides; it may well recover */
		if (pa->sa_flags & SA_SIGINFO) {
			void (*h)(int, siginfo_t *, void *) = pa->sa_sigaction;

			if (pa->sa_flags & SA_RESETHAND)
				pa->sa_handler = SIG_DFL;
			h(sig, si, uc);
		} else {
			void (*h)(int) = pa->sa_handler;

			if (pa->sa_flags & SA_RESETHAND)
				pa->sa_handler = SIG_DFL;
			h(sig);
		}
		errno = saved;
		return;
	}
	if (pa->sa_handler == SIG_IGN && sig != SIGABRT) {
		errno = saved;
		return;
	}
	if (recording)
		writer_finish(MST_END_SIGNAL, sig);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	real_sigaction(sig, &dfl, NULL);
	hooked[sig] = 0;
	raise(sig);
	errno = saved;
}

static void signals_install(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fatal_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(fatal_sigs) / sizeof(fatal_sigs[0]); i++) {
		int s = fatal_sigs[i];

		if (real_sigaction(s, &sa, &prog_act[s]) == 0)
			hooked[s] = 1;
	}
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real_sigaction)
		*(void **)&real_sigaction = next_sym("sigaction");
	if (sig > 0 && sig < NSIG && hooked[sig]) {
		struct sigaction prev = prog_act[sig];

		if (act)
			prog_act[sig] = *act;
		if (old)
			*old = prev;
		return 0;
	}
	return real_sigaction(sig, act, old);
}

EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	if (!real_signal)
		*(void **)&real_signal = next_sym("signal");
	if (sig > 0 && sig < NSIG && hooked[sig]) {
		sighandler_t prev = prog_act[sig].sa_handler;

		memset(&prog_act[sig], 0, sizeof(prog_act[sig]));
		prog_act[sig].sa_handler = h;
		prog_act[sig].sa_flags = SA_RESTART;
		return prev;
	}
	return real_signal(sig, h);
}

/* ---- exit ---- */

void recorder_set_exit_status(int status)
{
	exit_status = status;
	have_status = 1;
}

EXPORT void exit(int status)
{
	if (!real_exit)
		*(void **)&real_exit = next_sym("exit");
	recorder_set_exit_status(status);
	real_exit(status);
}

EXPORT void _exit(int status)
{
	if (!real__exit)
		*(void **)&real__exit = next_sym("_exit");
	if (recording && in_owner())
		writer_finish(MST_END_EXIT, status);
	real__exit(status);
}

EXPORT void _Exit(int status)
{
	if (!real__Exit)
		*(void **)&real__Exit = next_sym("_Exit");
	if (recording && in_owner())
		writer_finish(MST_END_EXIT, status);
	real__Exit(status);
}

static int (*real_main)(int, char **, char **);

static int main_wrapper(int argc, char **argv, char **envp)
{
	int rc = real_main(argc, argv, envp);

	recorder_set_exit_status(rc);
	return rc;
}

int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
		      void (*init)(void), void (*fini)(void),
		      void (*rtld_fini)(void), void *stack_end);

/* Wraps main so that its return value reaches END (libc's own call of
 * exit() after main is internal and cannot be interposed). */
EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
			     void (*init)(void), void (*fini)(void),
			     void (*rtld_fini)(void), void *stack_end)
{
	int (*next)(int (*)(int, char **, char **), int, char **, void (*)(void),
		    void (*)(void), void (*)(void), void *);

	*(void **)&next = next_sym("__libc_start_main");
	real_main = main;
	return next(main_wrapper, argc, argv, init, fini, rtld_fini, stack_end);
}

int __cxa_atexit(void (*func)(void *), void *arg, void *dso_handle);

static void recorder_late_fini(void *arg)
{
	(void)arg;
	if (recording)
		writer_finish(MST_END_EXIT, have_status ? exit_status : -1);
}

/*
 * At exit the dynamic loader runs the libraries' destructors in turn, and
 * those of libraries set up before this one run after it: clang's LLVM
 * frees some 1,900 blocks there, which a trace ended here lost (memcheck
 * counted them). So the trace ends in an exit handler registered now,
 * which exit runs once the loader's destructors are all done; with no
 * library's handle (a null one), so that this library's own finalization
 * does not run it at once. Where registering fails (not from exit), now.
 */
__attribute__((destructor)) static void recorder_fini(void)
{
	if (recording && __cxa_atexit(recorder_late_fini, NULL, NULL) == 0)
		return;
	recorder_late_fini(NULL);
}

/* ---- exec ---- */

static char **exec_env(char *const envp[], int stay)
{
	size_t n = 0, i, j;
	char **env;
	char gen[48], out[SPOOL_PATH_MAX + 32];

	while (envp && envp[n])
		n++;
	env = real.malloc((n + 5) * sizeof(char *) + sizeof(gen) + sizeof(out) +
			  SPOOL_PATH_MAX * 5);
	if (!env)
		return NULL;
	{
		char *pool = (char *)(env + n + 5);
		char *gen_s = pool, *out_s = pool + sizeof(gen), *pre_s = out_s + sizeof(out);
		char *old_s = pre_s + SPOOL_PATH_MAX * 2;

		snprintf(gen_s, sizeof(gen), "MEMSCOPE_EXEC_GENERATION=%d", cfg.exec_generation + 1);
		snprintf(out_s, sizeof(out), "MEMSCOPE_OUTPUT=%s", out_template);
		snprintf(old_s, SPOOL_PATH_MAX * 3, "MEMSCOPE_OLD_SPOOL=%s", writer_spool_path());
		pre_s[0] = 0;
		for (i = j = 0; i < n; i++) {
			if (!strncmp(envp[i], "MEMSCOPE_EXEC_GENERATION=", 25) ||
			    !strncmp(envp[i], "MEMSCOPE_OLD_SPOOL=", 19) ||
			    !strncmp(envp[i], "MEMSCOPE_OUTPUT=", 16))
				continue;
			if (!cfg.follow && !strncmp(envp[i], "LD_PRELOAD=", 11)) {
				/* drop this library from the list */
				const char *s = envp[i] + 11;
				char *o = pre_s + snprintf(pre_s, SPOOL_PATH_MAX * 2, "LD_PRELOAD=");

				while (*s) {
					size_t len = strcspn(s, ": ");

					if (len && !(len >= 15 && memmem(s, len, "libmsrecord", 11)) &&
					    o + len + 2 < pre_s + SPOOL_PATH_MAX * 2) {
						if (o[-1] != '=')
							*o++ = ':';
						memcpy(o, s, len);
						o += len;
					}
					s += len;
					while (*s == ':' || *s == ' ')
						s++;
				}
				*o = 0;
				env[j++] = pre_s;
				continue;
			}
			env[j++] = envp[i];
		}
		if (stay) {
			env[j++] = gen_s;
			env[j++] = out_s;
			if (recording && in_owner())
				env[j++] = old_s;
		}
		env[j] = NULL;
	}
	return env;
}

static char exec_renamed[SPOOL_PATH_MAX + 64];

/* Before an exec in this pid: finish the trace and free its name. */
static void exec_before(void)
{
	size_t n;

	exec_renamed[0] = 0;
	if (!recording || !in_owner())
		return;   /* a vfork child execs: the new process records itself */
	writer_finish(MST_END_EXEC, 0);
	if (!cfg.follow)
		return;
	n = strlen(cfg.trace_path);
	if (n > 9 && !strcmp(cfg.trace_path + n - 9, ".memscope"))
		n -= 9;
	snprintf(exec_renamed, sizeof(exec_renamed), "%.*s.exec%d.memscope", (int)n,
		 cfg.trace_path, cfg.exec_generation);
	if (rename(cfg.trace_path, exec_renamed))
		exec_renamed[0] = 0;
}

static void exec_failed(int was_recording)
{
	int saved = errno;

	if (!in_owner())
		return;
	if (exec_renamed[0])
		rename(exec_renamed, cfg.trace_path);
	if (was_recording)
		writer_resume();
	errno = saved;
}

static int do_exec(int kind, const char *path, int fd, char *const argv[], char *const envp[])
{
	struct tstate *t = &tls;
	int was = recording, rc;
	char **env;

	if (!real_execve) {
		*(void **)&real_execve = next_sym("execve");
		*(void **)&real_execvpe = next_sym("execvpe");
		*(void **)&real_fexecve = next_sym("fexecve");
	}
	t->guard++;
	env = exec_env(envp, cfg.follow);
	exec_before();
	t->guard--;
	if (!env)
		env = (char **)envp;
	if (kind == 0)
		rc = real_execve(path, argv, env);
	else if (kind == 1)
		rc = real_execvpe(path, argv, env);
	else
		rc = real_fexecve(fd, argv, env);
	exec_failed(was);
	if (env != envp) {
		t->guard++;
		real.free(env);
		t->guard--;
	}
	return rc;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_exec(0, path, -1, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
	return do_exec(0, path, -1, argv, environ);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return do_exec(1, file, -1, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_exec(1, file, -1, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return do_exec(2, NULL, fd, argv, envp);
}

#define MAX_EXECL_ARGS 4096

static int execl_common(int kind, const char *path, const char *arg0, va_list ap,
			int with_env)
{
	char *argv[MAX_EXECL_ARGS];
	char *const *envp = environ;
	size_t n = 0;

	argv[n++] = (char *)arg0;
	while (arg0 && n < MAX_EXECL_ARGS - 1 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	argv[n] = NULL;
	if (with_env)
		envp = va_arg(ap, char *const *);
	if (n >= MAX_EXECL_ARGS - 1) {
		errno = E2BIG;
		return -1;
	}
	return do_exec(kind, path, -1, argv, envp);
}

EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = execl_common(0, path, arg, ap, 0);
	va_end(ap);
	return rc;
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = execl_common(1, file, arg, ap, 0);
	va_end(ap);
	return rc;
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = execl_common(0, path, arg, ap, 1);
	va_end(ap);
	return rc;
}

/* posix_spawn makes a new process: it records itself through the inherited
 * environment; only --no-follow needs this library taken out. */
static int spawn_common(int p, pid_t *pid, const char *path,
			const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
			char *const argv[], char *const envp[])
{
	struct tstate *t = &tls;
	char **env = (char **)envp;
	int rc;

	if (!real_posix_spawn) {
		*(void **)&real_posix_spawn = next_sym("posix_spawn");
		*(void **)&real_posix_spawnp = next_sym("posix_spawnp");
	}
	if (!cfg.follow) {
		t->guard++;
		env = exec_env(envp, 0);
		t->guard--;
		if (!env)
			env = (char **)envp;
	}
	rc = p ? real_posix_spawnp(pid, path, fa, at, argv, env)
	       : real_posix_spawn(pid, path, fa, at, argv, env);
	if (env != envp) {
		t->guard++;
		real.free(env);
		t->guard--;
	}
	return rc;
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	return spawn_common(0, pid, path, fa, at, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	return spawn_common(1, pid, file, fa, at, argv, envp);
}

/* ---- start-up ---- */

/* The first thread is named after the process (/proc/self/comm). */
static void main_thread_name(void)
{
	char name[64];
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, name, sizeof(name) - 1) : -1;

	if (fd >= 0)
		close(fd);
	while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == 0))
		n--;
	if (n > 0 && tls.thread)
		ev_blob(&tls, EV_THREAD_NAME, tls.thread, 0, name, (size_t)n);
}

static int start_trace(void)
{
	rec_pid = getpid();
	if (writer_open_trace(0))
		return -1;
	if (spool_create()) {
		writer_abandon();
		return -1;
	}
	clock_init(spool);
	if (writer_header()) {
		spool_unmap();
		return -1;
	}
	writer_checkpoint_now();
	recording = 1;
	thread_attach(&tls);
	main_thread_name();
	modules_scan(&tls);
	early_replay(&tls);
	if (writer_start()) {
		recording = 0;
		return -1;
	}
	log_debug("recording pid %d into '%s' (spool in '%s')", (int)getpid(),
		  cfg.trace_path, cfg.spool_dir);
	return 0;
}

extern uint32_t ring_hwm;

/* Around fork: the forking thread records nothing until the child has
 * its own spool (other libraries' fork handlers may allocate, and the
 * child must never write into the parent's shared rings). */
static void atfork_prepare(void)
{
	tls.guard++;
}

static void atfork_parent(void)
{
	tls.guard--;
}

static void atfork_child(void)
{
	struct tstate *t = &tls;

	if (!recording && !spool) {
		t->guard--;
		return;
	}
	recording = 0;
	writer_after_fork_child();
	ring_hwm = 0;
	/* the forking thread is the child's only one */
	threads_attached = 0;
	several_threads = 0;
	t->ring = NULL;
	t->thread = 0;
	t->wpos = t->tail_seen = 0;
	t->depth = 0;
	t->dead = 0;
	t->exits = 0;
	t->parent = 0;
	t->capturing = 0;
	stack_reset_thread(t);
	memset(thread_map, 0, sizeof(thread_map));
	modules_reset();
	if (!cfg.follow) {
		t->dead = 1;
		t->guard--;
		return;
	}
	cfg.forked = 1;
	cfg.exec_generation = 0;
	resolve_path();
	if (start_trace())
		log_error("cannot record the child process %d", (int)getpid());
	t->guard--;
}

__attribute__((constructor(101))) static void recorder_init(void)
{
	struct tstate *t = &tls;
	const char *s;

	init_started = 1;
	if ((s = getenv("MEMSCOPE_SALVAGE")) && *s && strcmp(s, "0"))
		return;    /* loaded by the launcher to salvage: stay inert */
	t->guard++;
	if (!real.free)
		real_resolve();
	*(void **)&real_pthread_create = next_sym("pthread_create");
	*(void **)&real_sigaction = next_sym("sigaction");
	{
		Dl_info info;

		if (dladdr((void *)recorder_init, &info) && info.dli_fname)
			snprintf(self_path, sizeof(self_path), "%s", info.dli_fname);
	}
	next_sym("exit");
	*(void **)&real_exit = next_sym("exit");
	*(void **)&real__exit = next_sym("_exit");
	*(void **)&real__Exit = next_sym("_Exit");
	*(void **)&real_dlopen = next_sym("dlopen");
	*(void **)&real_dlclose = next_sym("dlclose");
	*(void **)&real_setname = next_sym("pthread_setname_np");
	*(void **)&real_prctl = next_sym("prctl");
	*(void **)&real_signal = next_sym("signal");
	parse_config();
	if (!cfg.follow && (s = getenv("MEMSCOPE_PID0")) && atoi(s) != getpid()) {
		/* --no-follow, and a process the traced one started without
		 * going through our exec or posix_spawn (system() and popen()
		 * spawn inside libc, passing the environment whole): inert */
		log_debug("pid %d: a child process, not followed", (int)getpid());
		t->guard--;
		return;
	}
	header_strings();
	stack_init();
	core_init_keys();
	signals_install();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	dlerror();
	t->guard--;
	if (start_trace())
		log_debug("not recording");
}

/* ---- annotations (memscope.h finds these with dlsym) ---- */

EXPORT void memscope_label_v1(void *ptr, const char *name, const char *type)
{
	struct tstate *t = &tls;
	char buf[1024];
	size_t a, b;

	if (!recording || t->guard || t->dead)
		return;
	a = name ? strnlen(name, 500) : 0;
	b = type ? strnlen(type, 500) : 0;
	if (a)
		memcpy(buf, name, a);
	buf[a] = 0;
	if (b)
		memcpy(buf + a + 1, type, b);
	ev_blob(t, EV_LABEL, (uintptr_t)ptr, 0, buf, a + 1 + b);
}

static volatile uint64_t next_task;

EXPORT uint64_t memscope_task_begin_v1(const char *name)
{
	struct tstate *t = &tls;
	uint64_t id;

	if (!recording || t->guard || t->dead)
		return 0;
	id = __atomic_add_fetch(&next_task, 1, __ATOMIC_RELAXED);
	ev_blob(t, EV_TASK_BEGIN, id, 0, name ? name : "", name ? strnlen(name, 500) : 0);
	return id;
}

EXPORT void memscope_task_end_v1(uint64_t id)
{
	struct tstate *t = &tls;

	if (!id || !recording || t->guard || t->dead)
		return;
	ev_blob(t, EV_TASK_END, id, 0, NULL, 0);
}
