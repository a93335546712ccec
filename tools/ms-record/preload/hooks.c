/*
 * hooks.c - the allocation functions the preload library interposes: the C
 * malloc family and C++ operator new/delete in every mangled variant. Each
 * forwards to the next definition in lookup order (RTLD_NEXT, so jemalloc,
 * tcmalloc or mimalloc keep working) and records what happened.
 *
 * Order across threads (FORMAT.md §8): a FREE's time is taken before the
 * real free and the FREE is published before calling it; an ALLOC's time
 * after the real call returned. realloc publishes an in-flight marker (its
 * pre-call time) that holds the writer back until its FREE half is out.
 *
 * operator new is served by the real malloc (one call, recorded once); only
 * when that fails is libstdc++'s operator new called, under the guard, for
 * its new_handler and std::bad_alloc semantics.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recorder.h"
#include "mstrace.h"

struct real_fns real;

/* The C++ entry points, by their mangled names (this file is C). */
void *_Znwm(size_t n);
void *_Znam(size_t n);
void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt);
void *_ZnamRKSt9nothrow_t(size_t n, const void *nt);
void *_ZnwmSt11align_val_t(size_t n, size_t al);
void *_ZnamSt11align_val_t(size_t n, size_t al);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt);
void _ZdlPv(void *p);
void _ZdaPv(void *p);
void _ZdlPvm(void *p, size_t s);
void _ZdaPvm(void *p, size_t s);
void _ZdlPvSt11align_val_t(void *p, size_t a);
void _ZdaPvSt11align_val_t(void *p, size_t a);
void _ZdlPvmSt11align_val_t(void *p, size_t s, size_t a);
void _ZdaPvmSt11align_val_t(void *p, size_t s, size_t a);
void _ZdlPvRKSt9nothrow_t(void *p, const void *nt);
void _ZdaPvRKSt9nothrow_t(void *p, const void *nt);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt);

/*
 * dlsym() may call calloc/malloc before the real ones are known: those
 * calls are served from this arena and never reach the real free.
 */
static char arena[256 * 1024] __attribute__((aligned(64)));
static size_t arena_used;
static int resolving;

static int in_arena(const void *p)
{
	return (const char *)p >= arena && (const char *)p < arena + sizeof(arena);
}

static void *arena_alloc(size_t n, size_t align)
{
	size_t off, *hdr;

	if (align < 16)
		align = 16;
	off = (arena_used + sizeof(size_t) + align - 1) & ~(align - 1);
	if (off + n > sizeof(arena))
		return NULL;
	hdr = (size_t *)(arena + off) - 1;
	*hdr = n;
	arena_used = off + n;
	return arena + off;
}

static size_t arena_size(const void *p)
{
	return ((const size_t *)p)[-1];
}

/*
 * The next definition after this library; when the library was preloaded
 * after the one that defines the symbol (LD_PRELOAD="libc.so.6 this"),
 * there is none after us: take the first one, never our own.
 */
static void *next_def(const char *name, void *self)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		p = dlsym(RTLD_DEFAULT, name);
		if (p == self)
			p = NULL;
	}
	return p;
}

#define RESOLVE(field, name, self) \
	(*(void **)&real.field = next_def(name, (void *)(self)))

void real_resolve(void)
{
	if (resolving)
		return;
	resolving = 1;
	RESOLVE(calloc, "calloc", calloc);
	RESOLVE(malloc, "malloc", malloc);
	RESOLVE(free, "free", free);
	RESOLVE(realloc, "realloc", realloc);
	RESOLVE(reallocarray, "reallocarray", reallocarray);
	RESOLVE(posix_memalign, "posix_memalign", posix_memalign);
	RESOLVE(aligned_alloc, "aligned_alloc", aligned_alloc);
	RESOLVE(memalign, "memalign", memalign);
	RESOLVE(valloc, "valloc", valloc);
	RESOLVE(pvalloc, "pvalloc", pvalloc);
	RESOLVE(new_, "_Znwm", _Znwm);
	RESOLVE(new_array, "_Znam", _Znam);
	RESOLVE(new_aligned, "_ZnwmSt11align_val_t", _ZnwmSt11align_val_t);
	RESOLVE(new_array_aligned, "_ZnamSt11align_val_t", _ZnamSt11align_val_t);
	resolving = 0;
	if (real.free)
		dlerror();   /* frees what failed lookups left, unrecorded */
}

/* libstdc++ may be loaded after us (dlopen of a C++ plugin). */
static void resolve_cxx(void)
{
	struct tstate *t = &tls;

	t->guard++;
	if (!real.new_)
		RESOLVE(new_, "_Znwm", _Znwm);
	if (!real.new_array)
		RESOLVE(new_array, "_Znam", _Znam);
	if (!real.new_aligned)
		RESOLVE(new_aligned, "_ZnwmSt11align_val_t", _ZnwmSt11align_val_t);
	if (!real.new_array_aligned)
		RESOLVE(new_array_aligned, "_ZnamSt11align_val_t", _ZnamSt11align_val_t);
	dlerror();
	t->guard--;
}

/*
 * Blocks the dynamic loader allocates while the recorder holds the guard
 * (the dynamic TLS of libunwind, touched on a thread's first unwind) are
 * the recorder's, but glibc frees them outside the guard: the loader at
 * thread exit, libc when pthread_create gives a new thread the cached
 * stack of one that ended (python3 starting threads one after another
 * under --unwind dwarf showed 1-2 unknown frees). They are remembered
 * here so those frees are not recorded either.
 */
#define OWNED_SLOTS 8192
static uintptr_t owned[OWNED_SLOTS];
static int owned_count;
uintptr_t ldso_lo, ldso_hi, libc_lo, libc_hi;

static inline int from_ldso(const void *ra)
{
	return (uintptr_t)ra - ldso_lo < ldso_hi - ldso_lo;
}

/* A free that may be of such a block: from the loader or libc. */
static inline int from_ldso_libc(const void *ra)
{
	return from_ldso(ra) || (uintptr_t)ra - libc_lo < libc_hi - libc_lo;
}

static void owned_add(void *p)
{
	uint32_t h = (uint32_t)(((uintptr_t)p >> 4) * 2654435761u) % OWNED_SLOTS, i;

	for (i = 0; i < OWNED_SLOTS; i++, h = (h + 1) % OWNED_SLOTS) {
		uintptr_t cur = owned[h];

		if ((cur == 0 || cur == 1) &&
		    __sync_bool_compare_and_swap(&owned[h], cur, (uintptr_t)p)) {
			__atomic_add_fetch(&owned_count, 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

/* (free checks owned_count first, on its fast path) */
static int owned_remove(void *p)
{
	uint32_t h = (uint32_t)(((uintptr_t)p >> 4) * 2654435761u) % OWNED_SLOTS, i;

	for (i = 0; i < OWNED_SLOTS; i++, h = (h + 1) % OWNED_SLOTS) {
		uintptr_t cur = owned[h];

		if (cur == 0)
			return 0;
		if (cur == (uintptr_t)p &&
		    __sync_bool_compare_and_swap(&owned[h], cur, 1)) {
			__atomic_sub_fetch(&owned_count, 1, __ATOMIC_RELAXED);
			return 1;
		}
	}
	return 0;
}

#define NOTE_OWNED(t, p) do { \
	if (unlikely((t)->guard) && (p) && from_ldso(__builtin_return_address(0))) \
		owned_add(p); \
} while (0)

#define READY() (likely(real.free != NULL) || (real_resolve(), real.free != NULL))
/* Recording, or before start-up (early events, replayed at start). */
#define ACTIVE(t) (likely(recording) ? likely(!(t)->guard) && likely(!(t)->dead) \
			       : !init_started && !(t)->guard)

EXPORT void *malloc(size_t n)
{
	struct tstate *t = &tls;
	void *p;

	if (unlikely(!real.malloc)) {
		if (resolving)
			return arena_alloc(n, 16);
		real_resolve();
	}
	p = real.malloc(n);
	if (ACTIVE(t) && p) {
		alloc_fast(t, MST_ALLOC_MALLOC, p, n, __builtin_frame_address(0));
	} else {
		NOTE_OWNED(t, p);
		if (unlikely(malloc_probe))
			malloc_probe++;
	}
	return p;
}

EXPORT void *calloc(size_t nmemb, size_t size)
{
	struct tstate *t = &tls;
	size_t total;
	void *p;

	if (unlikely(!real.calloc)) {
		if (resolving) {
			if (__builtin_mul_overflow(nmemb, size, &total))
				return NULL;
			return arena_alloc(total, 16);   /* static: zeroed */
		}
		real_resolve();
	}
	p = real.calloc(nmemb, size);
	if (ACTIVE(t) && p)
		record_alloc(t, MST_ALLOC_CALLOC, p, nmemb * size, 0, NULL,
			     __builtin_frame_address(0));
	else
		NOTE_OWNED(t, p);
	return p;
}

EXPORT void free(void *p)
{
	struct tstate *t = &tls;

	if (unlikely(!p) || unlikely(in_arena(p)))
		return;
	if (!READY())
		return;
	if (unlikely(__atomic_load_n(&owned_count, __ATOMIC_RELAXED)) &&
	    from_ldso_libc(__builtin_return_address(0)) &&
	    owned_remove(p)) {
		real.free(p);
		return;
	}
	if (ACTIVE(t))
		free_fast(t, MST_FREE_FREE, p, __builtin_return_address(0));
	else if (unlikely(malloc_probe))
		malloc_probe++;
	real.free(p);
}

static void *do_realloc(struct tstate *t, int func, void *old, size_t n,
			void *caller, void **frame, size_t nmemb, size_t size)
{
	uint64_t pre, saved;
	void *p;
	int ffunc = func == MST_ALLOC_REALLOC ? MST_FREE_REALLOC : MST_FREE_REALLOCARRAY;

	/* reallocarray is realloc after an overflow check (as in glibc,
	 * whose reallocarray would call our realloc and record it twice) */
	if (func == MST_ALLOC_REALLOCARRAY && __builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	if (!ACTIVE(t) || (recording && !t->ring && thread_attach(t)))
		return real.realloc(old, n);
	if (!old) {
		p = real.realloc(NULL, n);
		if (p)
			record_alloc(t, func, p, n, 0, NULL, frame);
		return p;
	}
	pre = now_before();
	saved = t->ring ? t->ring->inflight : 0;
	if (t->ring)
		__atomic_store_n(&t->ring->inflight, pre, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	p = real.realloc(old, n);
	if (p == old) {
		record_alloc(t, func, p, n, 0, old, frame);
	} else if (p) {
		record_free(t, ffunc, old, pre, caller);
		record_alloc(t, func, p, n, 0, old, frame);
	} else if (n == 0) {
		/* realloc(p, 0) freed p */
		record_free(t, ffunc, old, pre, caller);
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (t->ring)
		__atomic_store_n(&t->ring->inflight, saved, __ATOMIC_RELEASE);
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	struct tstate *t = &tls;

	if (unlikely(!real.realloc) || unlikely(in_arena(old))) {
		void *p;

		if (!in_arena(old)) {
			if (resolving)
				return arena_alloc(n, 16);
			real_resolve();
			return realloc(old, n);
		}
		p = malloc(n);
		if (p)
			memcpy(p, old, arena_size(old) < n ? arena_size(old) : n);
		return p;
	}
	return do_realloc(t, MST_ALLOC_REALLOC, old, n, __builtin_return_address(0),
			  __builtin_frame_address(0), 0, 0);
}

EXPORT void *reallocarray(void *old, size_t nmemb, size_t size)
{
	struct tstate *t = &tls;
	size_t n;

	if (unlikely(!real.realloc) || in_arena(old)) {
		if (__builtin_mul_overflow(nmemb, size, &n)) {
			errno = ENOMEM;
			return NULL;
		}
		return realloc(old, n);
	}
	n = 0;
	return do_realloc(t, MST_ALLOC_REALLOCARRAY, old, n, __builtin_return_address(0),
			  __builtin_frame_address(0), nmemb, size);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	struct tstate *t = &tls;
	int rc;

	if (!READY()) {
		*out = arena_alloc(n, align);
		return *out ? 0 : ENOMEM;
	}
	rc = real.posix_memalign(out, align, n);
	if (ACTIVE(t) && rc == 0 && *out)
		record_alloc(t, MST_ALLOC_POSIX_MEMALIGN, *out, n, align, NULL,
			     __builtin_frame_address(0));
	return rc;
}

#define ALIGNED_HOOK(name, func, call, alignv) \
EXPORT void *name(size_t align, size_t n) \
{ \
	struct tstate *t = &tls; \
	void *p; \
	if (!READY()) \
		return arena_alloc(n, align); \
	p = call; \
	if (ACTIVE(t) && p) \
		record_alloc(t, func, p, n, alignv, NULL, __builtin_frame_address(0)); \
	return p; \
}
ALIGNED_HOOK(aligned_alloc, MST_ALLOC_ALIGNED_ALLOC, real.aligned_alloc(align, n), align)
ALIGNED_HOOK(memalign, MST_ALLOC_MEMALIGN, real.memalign(align, n), align)

EXPORT void *valloc(size_t n)
{
	struct tstate *t = &tls;
	void *p;

	if (!READY())
		return arena_alloc(n, 4096);
	p = real.valloc(n);
	if (ACTIVE(t) && p)
		record_alloc(t, MST_ALLOC_VALLOC, p, n, (size_t)getpagesize(),
			     NULL, __builtin_frame_address(0));
	return p;
}

EXPORT void *pvalloc(size_t n)
{
	struct tstate *t = &tls;
	void *p;

	if (!READY())
		return arena_alloc(n, 4096);
	p = real.pvalloc(n);
	if (ACTIVE(t) && p)
		record_alloc(t, MST_ALLOC_PVALLOC, p, n, (size_t)getpagesize(),
			     NULL, __builtin_frame_address(0));
	return p;
}

/* ---- C++ ---- */

static void *new_slow(int func, size_t n, size_t align, int nothrow)
{
	struct tstate *t = &tls;
	void *p = NULL;

	resolve_cxx();
	t->guard++;
	if (nothrow) {
		/* the nothrow forms only report failure */
	} else if (func == MST_ALLOC_NEW && real.new_) {
		p = real.new_(n);
	} else if (func == MST_ALLOC_NEW_ARRAY && real.new_array) {
		p = real.new_array(n);
	} else if (func == MST_ALLOC_NEW_ALIGNED && real.new_aligned) {
		p = real.new_aligned(n, align);
	} else if (func == MST_ALLOC_NEW_ARRAY_ALIGNED && real.new_array_aligned) {
		p = real.new_array_aligned(n, align);
	}
	t->guard--;
	return p;
}

static inline void *new_common(int func, size_t n, size_t align, int nothrow,
			       void **frame)
{
	struct tstate *t = &tls;
	void *p;

	if (!READY())
		return arena_alloc(n ? n : 1, align);
	if (align) {
		if (real.posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align,
					n ? n : 1))
			p = NULL;
	} else {
		p = real.malloc(n ? n : 1);
	}
	if (unlikely(!p))
		p = new_slow(func, n, align, nothrow);
	if (ACTIVE(t) && p)
		record_alloc(t, func, p, n, align, NULL, frame);
	return p;
}

static inline void delete_common(int func, void *p, void *caller)
{
	struct tstate *t = &tls;

	if (unlikely(!p) || unlikely(in_arena(p)))
		return;
	if (!READY())
		return;
	if (ACTIVE(t))
		free_fast(t, func, p, caller);
	real.free(p);
}

EXPORT void *_Znwm(size_t n)
{ return new_common(MST_ALLOC_NEW, n, 0, 0, __builtin_frame_address(0)); }
EXPORT void *_Znam(size_t n)
{ return new_common(MST_ALLOC_NEW_ARRAY, n, 0, 0, __builtin_frame_address(0)); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{ (void)nt; return new_common(MST_ALLOC_NEW, n, 0, 1, __builtin_frame_address(0)); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt)
{ (void)nt; return new_common(MST_ALLOC_NEW_ARRAY, n, 0, 1, __builtin_frame_address(0)); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al)
{ return new_common(MST_ALLOC_NEW_ALIGNED, n, al, 0, __builtin_frame_address(0)); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al)
{ return new_common(MST_ALLOC_NEW_ARRAY_ALIGNED, n, al, 0, __builtin_frame_address(0)); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{ (void)nt; return new_common(MST_ALLOC_NEW_ALIGNED, n, al, 1, __builtin_frame_address(0)); }
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{ (void)nt; return new_common(MST_ALLOC_NEW_ARRAY_ALIGNED, n, al, 1, __builtin_frame_address(0)); }

#define DEL(sym, func, ...) \
EXPORT void sym(void *p, ##__VA_ARGS__) \
{ delete_common(func, p, __builtin_return_address(0)); }
DEL(_ZdlPv, MST_FREE_DELETE)
DEL(_ZdaPv, MST_FREE_DELETE_ARRAY)
DEL(_ZdlPvm, MST_FREE_DELETE, size_t s __attribute__((unused)))
DEL(_ZdaPvm, MST_FREE_DELETE_ARRAY, size_t s __attribute__((unused)))
DEL(_ZdlPvSt11align_val_t, MST_FREE_DELETE, size_t a __attribute__((unused)))
DEL(_ZdaPvSt11align_val_t, MST_FREE_DELETE_ARRAY, size_t a __attribute__((unused)))
DEL(_ZdlPvmSt11align_val_t, MST_FREE_DELETE, size_t s __attribute__((unused)),
    size_t a __attribute__((unused)))
DEL(_ZdaPvmSt11align_val_t, MST_FREE_DELETE_ARRAY, size_t s __attribute__((unused)),
    size_t a __attribute__((unused)))
DEL(_ZdlPvRKSt9nothrow_t, MST_FREE_DELETE, const void *nt __attribute__((unused)))
DEL(_ZdaPvRKSt9nothrow_t, MST_FREE_DELETE_ARRAY, const void *nt __attribute__((unused)))
DEL(_ZdlPvSt11align_val_tRKSt9nothrow_t, MST_FREE_DELETE, size_t a __attribute__((unused)),
    const void *nt __attribute__((unused)))
DEL(_ZdaPvSt11align_val_tRKSt9nothrow_t, MST_FREE_DELETE_ARRAY,
    size_t a __attribute__((unused)), const void *nt __attribute__((unused)))
