/*
 * stack.c - call stacks: DWARF unwinding through libunwind, frame-pointer
 * walking, and interning of frames into the spool's trie of
 * (parent, ip) -> node id.
 *
 * libunwind is dlopen()ed RTLD_LOCAL on purpose: its shared library exports
 * _Unwind_RaiseException and friends, which in the global scope (where a
 * preload would put them) override libgcc's unwinder and break C++
 * exceptions in the traced program. Debian's libunwind.a is not PIC, so it
 * cannot be linked into this library with its symbols hidden instead.
 *
 * The trie is lock-free: a new node takes the next id from an atomic
 * counter, is filled, marked ready, and then published in an open-addressing
 * hash table by compare-and-swap. A node that loses a race stays as an
 * unused but valid node, so ids remain dense and in creation order (the
 * writer emits STACK records by id). A per-thread cache of the previous
 * stack (shared outer frames are not looked up again) and a small
 * direct-mapped (parent, ip) cache keep the common case off the table.
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "recorder.h"
#include "mstrace.h"

static int (*unw_backtrace_fn)(void **, int);
/* unwind.c's walker in use (MEMSCOPE_DWARF_CFI=0: libunwind only), and
 * MEMSCOPE_DWARF_CHECK=1: every stack also by libunwind, compared */
static int use_cfi = 1, check_cfi;
/* stacks walked by unwind.c, left to libunwind, compared, found different */
static unsigned long n_cfi, n_fallback, n_checked, n_differ;
static uintptr_t self_lo, self_hi;
static struct spool_stack *nodes;
static uint32_t *table;
static uint64_t table_mask, node_cap;

extern uintptr_t ldso_lo, ldso_hi, libc_lo, libc_hi;

/* The code of the dynamic loader and of libc, which free the dynamic TLS
 * blocks the loader allocated (see hooks.c's owned blocks). */
static int find_ldso_libc(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
	uintptr_t *lo, *hi;
	int i;

	(void)size;
	(void)data;
	if (base && !strncmp(base, "/ld-linux", 9)) {
		lo = &ldso_lo;
		hi = &ldso_hi;
	} else if (base && !strncmp(base, "/libc.so", 8)) {
		lo = &libc_lo;
		hi = &libc_hi;
	} else {
		return 0;
	}
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			*lo = info->dlpi_addr + ph->p_vaddr;
			*hi = *lo + ph->p_memsz;
			break;
		}
	}
	return 0;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t addr = (uintptr_t)data;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
		    addr >= lo && addr < lo + ph->p_memsz) {
			self_lo = lo;
			self_hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

void stack_attach_spool(void);
void stack_attach_spool(void)
{
	nodes = (void *)((char *)spool + spool->stacks_off);
	table = (void *)((char *)spool + spool->hash_off);
	table_mask = spool->hash_slots - 1;
	node_cap = spool->stack_capacity;
}

static void __attribute__((destructor)) stack_report(void)
{
	if (cfg.unwind == MST_UNWIND_DWARF && (cfg.debug || check_cfi))
		log_error("dwarf stacks: %lu by CFI, %lu by libunwind, %lu checked, %lu differed",
			  n_cfi, n_fallback, n_checked, n_differ);
}

int stack_init(void)
{
	const char *s;

	if ((s = getenv("MEMSCOPE_DWARF_CFI")) && !strcmp(s, "0"))
		use_cfi = 0;
	if ((s = getenv("MEMSCOPE_DWARF_CHECK")) && !strcmp(s, "1"))
		check_cfi = 1;
	dl_iterate_phdr(find_self, (void *)(uintptr_t)stack_init);
	dl_iterate_phdr(find_ldso_libc, NULL);
	if (cfg.unwind == MST_UNWIND_DWARF) {
		void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
		int (*policy)(void *, int);
		void **as;

		if (!h)
			h = dlopen("libunwind.so", RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			log_error("cannot load libunwind: %s; using frame pointers", dlerror());
			cfg.unwind = MST_UNWIND_FP;
			return 0;
		}
		*(void **)&unw_backtrace_fn = dlsym(h, "unw_backtrace");
		*(void **)&policy = dlsym(h, "_ULx86_64_set_caching_policy");
		as = dlsym(h, "_ULx86_64_local_addr_space");
		if (!unw_backtrace_fn) {
			log_error("libunwind has no unw_backtrace; using frame pointers");
			cfg.unwind = MST_UNWIND_FP;
			return 0;
		}
		if (policy && as)
			policy(*as, 2 /* UNW_CACHE_PER_THREAD */);
	}
	return 0;
}

/* No stack is taken to reach deeper than this below its top. Under
 * `ulimit -s unlimited` glibc bounds the main thread's stack by the end of
 * the heap at that moment: the heap grows past it, and the unmapped gap
 * between the two would pass for stack (a frame pointer walk from a
 * coroutine's stack on the heap read it and faulted). Deeper frames of a
 * stack that big are walked as a foreign stack's (safely, and short). */
#define STACK_TRUSTED ((uintptr_t)256 << 20)

void stack_thread_bounds(struct tstate *t)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;

	/* pthread_getattr_np allocates (and reads /proc for the main thread):
	 * the caller holds the guard. */
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
			t->stack_lo = (uintptr_t)addr;
			t->stack_hi = (uintptr_t)addr + size;
			if (size > STACK_TRUSTED)
				t->stack_lo = t->stack_hi - STACK_TRUSTED;
		}
		pthread_attr_destroy(&attr);
	}
}

/* A thread's first unwind, under the guard, at attach: before the
 * program's own code runs on the thread. */
void stack_warm(struct tstate *t)
{
	void *buf[4];

	if (cfg.unwind != MST_UNWIND_DWARF || !unw_backtrace_fn || t->unw_warm)
		return;
	t->guard++;
	t->capturing = 1;
	unw_backtrace_fn(buf, 4);
	t->capturing = 0;
	t->guard--;
	t->unw_warm = 1;
}

static struct tcache *cache_of(struct tstate *t)
{
	if (unlikely(!t->cache)) {
		void *p = mmap(NULL, sizeof(struct tcache), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return NULL;
		t->cache = p;
	}
	return t->cache;
}

void stack_reset_thread(struct tstate *t)
{
	if (t->cache)
		memset(t->cache, 0, sizeof(*t->cache));
}

static inline uint64_t hash2(uint32_t parent, uint64_t ip)
{
	uint64_t h = (ip ^ ((uint64_t)parent << 40) ^ parent) * 0x9E3779B97F4A7C15ull;

	return h ^ (h >> 29);
}

/* Node id of (parent, ip), creating it; 0 when the table is full. */
static uint32_t intern(uint32_t parent, uint64_t ip)
{
	uint64_t h = hash2(parent, ip) & table_mask;
	uint32_t mine = 0, id, probes;

	for (probes = 0; probes <= table_mask; probes++, h = (h + 1) & table_mask) {
		id = __atomic_load_n(&table[h], __ATOMIC_ACQUIRE);
		if (!id) {
			if (!mine) {
				uint64_t n = __atomic_add_fetch(&spool->stack_count, 1,
								__ATOMIC_RELAXED);

				if (n >= node_cap) {
					static int warned;

					__atomic_sub_fetch(&spool->stack_count, 1, __ATOMIC_RELAXED);
					if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
						log_error("%llu distinct stack frames: new stacks are "
							  "recorded as empty from now on",
							  (unsigned long long)node_cap - 1);
					return 0;
				}
				mine = (uint32_t)n;
				nodes[mine].ip = ip;
				nodes[mine].parent = parent;
				__atomic_store_n(&nodes[mine].ready, 1, __ATOMIC_RELEASE);
			}
			if (__atomic_compare_exchange_n(&table[h], &id, mine, 0,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return mine;
		}
		if (nodes[id].ip == ip && nodes[id].parent == parent)
			return id;
	}
	return 0;
}

static inline uint32_t intern_cached(struct tcache *c, uint32_t parent, uint64_t ip)
{
	uint32_t k = (uint32_t)(hash2(parent, ip) >> 20) & (DCACHE - 1);
	uint32_t id;

	if (c && c->dc_ip[k] == ip && c->dc_parent[k] == parent && c->dc_node[k])
		return c->dc_node[k];
	id = intern(parent, ip);
	if (c && id) {
		c->dc_ip[k] = ip;
		c->dc_parent[k] = parent;
		c->dc_node[k] = id;
	}
	return id;
}

uint32_t stack_one(struct tstate *t, uintptr_t ip)
{
	struct tcache *c;
	uint32_t node;

	if (t->capturing)
		return intern(0, ip);   /* nested: the cache is in use */
	t->capturing = 1;
	c = cache_of(t);
	node = intern_cached(c, 0, ip);
	t->capturing = 0;
	return node;
}

/*
 * Where a frame pointer walk may read: the words from the current frame
 * up to the top of the stack it runs on, which are mapped whatever rbp
 * says. Normally the thread's own stack. On an alternate signal stack,
 * that stack, then the thread's (where the interrupted frames are). On a
 * stack nobody described (a coroutine's, made with makecontext), the page
 * the walk starts on, and the pages above it one at a time once the
 * kernel has read a byte of each (process_vm_readv: a page that is not
 * mapped, or only as a guard, fails it instead of faulting): between such
 * a stack and the thread's lie unmapped gaps that a stray rbp can point
 * into.
 */
struct walk_area {
	uintptr_t lo[2], hi[2];       /* the stack walked on, then the
				       * thread's after an alternate one */
	int probe;                    /* part 0 may grow by checked pages */
};

#define WALK_PROBE_PAGES 16           /* the most a walk checks */

/* Whether the kernel can read a byte at ADDR. */
static int readable(uintptr_t addr)
{
	char c;
	struct iovec local = { &c, 1 }, remote = { (void *)addr, 1 };
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
}

/* Part 0 of A grown to hold [FP, FP + 16), page by checked page. */
static int walk_probe(struct walk_area *a, uintptr_t fp)
{
	if (!a->probe || fp & 7 || fp < a->lo[0] || fp > UINTPTR_MAX - 16)
		return 0;
	while (a->hi[0] < fp + 16) {
		if (a->probe > WALK_PROBE_PAGES || !readable(a->hi[0]))
			return 0;
		a->probe++;
		a->hi[0] += 4096;
	}
	return 1;
}

static void walk_area(const struct tstate *t, uintptr_t here, struct walk_area *a)
{
	stack_t ss;

	a->lo[0] = here;
	a->hi[0] = t->stack_hi;
	a->lo[1] = a->hi[1] = 0;
	a->probe = 0;
	if (here >= t->stack_lo && here < t->stack_hi)
		return;
	a->hi[0] = (here | 4095) + 1;
	if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) &&
	    here >= (uintptr_t)ss.ss_sp && here - (uintptr_t)ss.ss_sp < ss.ss_size) {
		a->hi[0] = (uintptr_t)ss.ss_sp + ss.ss_size;
		a->lo[1] = t->stack_lo;
		a->hi[1] = t->stack_hi;
	} else {
		a->probe = 1;
	}
}

/* FP and the return address above it lie in part I of area A. Not
 * fp + 2 > hi, which wraps to 0 for an rbp near the top of the address
 * space (code without frame pointers keeps any number there: binutils'
 * as crashed at 0xff...f0). */
static int walk_in(const struct walk_area *a, int i, uintptr_t fp)
{
	return !(fp & 7) && a->hi[i] >= a->lo[i] + 16 && fp >= a->lo[i] && fp <= a->hi[i] - 16;
}

static int walk_fp(struct tstate *t, void **frame, uint64_t *ips, int max)
{
	uintptr_t fp = (uintptr_t)frame;
	struct walk_area area;
	int n = 0, part = 0;

	if (!t->stack_hi)
		return 0;
	walk_area(t, (uintptr_t)__builtin_frame_address(0), &area);
	while (n < max) {
		uintptr_t next;

		if (!walk_in(&area, part, fp) && !(part == 0 && walk_probe(&area, fp))) {
			if (part || !walk_in(&area, 1, fp))
				break;
			part = 1;     /* from the alternate stack to the thread's */
		}
		if (!((uintptr_t *)fp)[1])
			break;
		if (((uintptr_t *)fp)[1] < self_lo || ((uintptr_t *)fp)[1] >= self_hi)
			ips[n++] = ((uintptr_t *)fp)[1];
		next = ((uintptr_t *)fp)[0];
		/* callers' frames lie above, but across that step (taken
		 * once: the thread's stack from then on) */
		if (next <= fp) {
			if (part || !walk_in(&area, 1, next))
				break;
			part = 1;
		}
		fp = next;
	}
	return n;
}

#define NESTED_DEPTH 32

/* Inside a signal handler that interrupted a capture on this thread: the
 * cache and libunwind are busy, and the handler may run on a small
 * alternate stack, so: frame pointers, a few frames, no cache. */
static __attribute__((noinline)) uint32_t capture_nested(struct tstate *t, void **frame)
{
	uint64_t ips[NESTED_DEPTH];
	uint32_t node = 0;
	int n, i;

	n = walk_fp(t, frame, ips, cfg.depth < NESTED_DEPTH ? cfg.depth : NESTED_DEPTH);
	for (i = n - 1; i >= 0 && (node = intern(node, ips[i])); i--)
		;
	return node;
}

/* The program's frames by libunwind: its walk, less this library's
 * frames (the hook's, and main_wrapper's or thread_start's outside). */
static __attribute__((noinline)) int libunwind_ips(struct tcache *c, uint64_t *ips, int max)
{
	void **buf = c->scratch_buf;
	int n, i, k = 0;

	/* not under the guard: a signal handler that allocates in the
	 * middle is recorded (capture_nested) */
	n = unw_backtrace_fn(buf, max + 8);
	for (i = 0; i < n && k < max; i++)
		if ((uintptr_t)buf[i] < self_lo || (uintptr_t)buf[i] >= self_hi)
			ips[k++] = (uintptr_t)buf[i];
	return k;
}

/* Counts for MEMSCOPE_LOG=debug; with MEMSCOPE_DWARF_CHECK=1, a CFI walk
 * must equal libunwind's. */
static __attribute__((noinline)) void count_stack(struct tcache *c, const uint64_t *ips,
						  int n, int max, int by_cfi)
{
	int m, i;

	__atomic_add_fetch(by_cfi ? &n_cfi : &n_fallback, 1, __ATOMIC_RELAXED);
	if (!by_cfi || !check_cfi)
		return;
	m = libunwind_ips(c, c->check_ips, max);
	__atomic_add_fetch(&n_checked, 1, __ATOMIC_RELAXED);
	if (m == n && !memcmp(ips, c->check_ips, (size_t)n * sizeof(*ips)))
		return;
	if (__atomic_fetch_add(&n_differ, 1, __ATOMIC_RELAXED) < 10) {
		char buf[640];
		int len = 0;

		for (i = 0; i < n && i < 12 && len < 300; i++)
			len += snprintf(buf + len, sizeof(buf) - len, " %#lx",
					(unsigned long)ips[i]);
		len += snprintf(buf + len, sizeof(buf) - len, " | libunwind:");
		for (i = 0; i < m && i < 12 && len < 600; i++)
			len += snprintf(buf + len, sizeof(buf) - len, " %#lx",
					(unsigned long)c->check_ips[i]);
		log_error("dwarf stacks differ (%d vs %d frames):%s", n, m, buf);
	}
}

/*
 * Interns the calling program's stack; FRAME is the hook's frame address
 * (its saved frame pointer and return address start the fp walk). The
 * frame buffers live in the thread's cache, not on the stack.
 */
uint32_t stack_capture(struct tstate *t, void **frame)
{
	struct tcache *c;
	uint64_t *ips;
	int n = 0, i, max = cfg.depth;
	uint32_t node = 0, start = 0;

	if (t->capturing || !(c = cache_of(t)))
		return capture_nested(t, frame);
	if (max > MAX_DEPTH)
		max = MAX_DEPTH;
	if (cfg.unwind == MST_UNWIND_DWARF && unlikely(!t->unw_warm))
		stack_warm(t);
	t->capturing = 1;
	ips = c->scratch_ips;
	if (cfg.unwind == MST_UNWIND_DWARF && unw_backtrace_fn) {
		int by_cfi = 1;

		n = use_cfi ? cfi_backtrace(t, c, frame, ips, max, self_lo, self_hi) : -1;
		if (n < 0) {
			n = libunwind_ips(c, ips, max);
			by_cfi = 0;
		}
		if (unlikely(check_cfi | cfg.debug))
			count_stack(c, ips, n, max, by_cfi);
	} else {
		n = walk_fp(t, frame, ips, max);
	}
	if (n > 0 && c->w_hit && c->n == (uint32_t)n && cfg.unwind == MST_UNWIND_DWARF) {
		/* the very walk interned last time (unwind.c) */
		node = c->node[n - 1];
	} else if (n > 0) {
		/* ips[] is innermost first; the cache outermost first */
		uint32_t m = c->n < (uint32_t)n ? c->n : (uint32_t)n;

		while (start < m && c->ip[start] == ips[n - 1 - start])
			start++;
		node = start ? c->node[start - 1] : 0;
		for (i = n - 1 - (int)start; i >= 0; i--) {
			uint32_t k = (uint32_t)(n - 1 - i);

			node = intern_cached(c, node, ips[i]);
			if (!node)
				break;
			c->ip[k] = ips[i];
			c->node[k] = node;
		}
		c->n = node ? (uint32_t)n : 0;
	}
	t->capturing = 0;
	return node;
}
