/*
 * test_symbols.c - the symbolizer on this very test program: a trace
 * records this process's modules as the recorder would (dl_iterate_phdr:
 * path, load bias, build-id, segments); resolving a known function's
 * address must give its name, file and line; a wrong build-id must give a
 * warning and no name; --no-symbols mode only module and offset.
 */
#include "mstrace.h"
#include "tap.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) int target_function(int x);
__attribute__((noinline)) int target_function(int x)
{
	return x * 3 + 1;
}

/* An inlined call: the return address inside outer_function lies in
 * inlined_helper's inlined body. */
__attribute__((noinline)) static uint64_t where(void)
{
	uint64_t ra = (uint64_t)(uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
	return ra;
}

static inline __attribute__((always_inline)) uint64_t inlined_helper(void)
{
	return where() + 0;           /* INLINE_CALL */
}

__attribute__((noinline)) uint64_t outer_function(void);
__attribute__((noinline)) uint64_t outer_function(void)
{
	uint64_t ra = inlined_helper();   /* OUTER_CALL */
	__asm__ volatile("" ::: "memory");
	return ra;
}

/* The line of this file holding TAG, for the expected frames. */
static uint64_t line_of(const char *tag)
{
	FILE *f = fopen(__FILE__, "r");
	char buf[512], want[64];
	uint64_t n = 0;
	snprintf(want, sizeof(want), "/* %s */", tag);
	while (f && fgets(buf, sizeof(buf), f)) {
		n++;
		if (strstr(buf, want) && !strstr(buf, "snprintf")) {
			fclose(f);
			return n;
		}
	}
	if (f)
		fclose(f);
	return 0;
}

struct mod {
	char path[4096];
	uint64_t base;
	uint8_t build_id[64];
	size_t build_id_len;
	struct mst_segment segs[16];
	uint32_t nsegs;
};

static struct mod mods[64];
static int nmods;

static int each(struct dl_phdr_info *info, size_t size, void *ctx)
{
	struct mod *m;
	int i;
	(void)size;
	(void)ctx;
	if (nmods == 64)
		return 1;
	m = &mods[nmods];
	memset(m, 0, sizeof(*m));
	if (!info->dlpi_name[0]) {
		ssize_t n = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
		if (n <= 0)
			return 0;
		m->path[n] = 0;
	} else {
		snprintf(m->path, sizeof(m->path), "%s", info->dlpi_name);
	}
	m->base = info->dlpi_addr;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && m->nsegs < 16) {
			struct mst_segment *s = &m->segs[m->nsegs++];
			s->vaddr = ph->p_vaddr;
			s->memsz = ph->p_memsz;
			s->offset = ph->p_offset;
			s->flags = (ph->p_flags & PF_X ? MST_SEG_EXEC : 0) |
				   (ph->p_flags & PF_W ? MST_SEG_WRITE : 0) |
				   (ph->p_flags & PF_R ? MST_SEG_READ : 0);
		} else if (ph->p_type == PT_NOTE) {
			const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
			const char *end = p + ph->p_memsz;
			while (p + sizeof(ElfW(Nhdr)) <= end) {
				const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
				const char *desc = p + sizeof(*nh) + ((nh->n_namesz + 3) & ~3u);
				if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
				    !memcmp(p + sizeof(*nh), "GNU", 4) && nh->n_descsz <= 64) {
					memcpy(m->build_id, desc, nh->n_descsz);
					m->build_id_len = nh->n_descsz;
				}
				p = desc + ((nh->n_descsz + 3) & ~3u);
			}
		}
	}
	nmods++;
	return 0;
}

/* Writes a trace with this process's modules to PATH; CORRUPT_ID flips a
 * byte of the main program's build-id. */
static void write_trace(const char *path, int corrupt_id)
{
	struct mst_writer *w;
	struct mst_record r;
	static const char *argv[] = { "test_symbols" };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), i;
	mst_writer_open(&w, fd, NULL);
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_HEADER;
	r.u.header.ticks_per_second = 1000000000;
	r.u.header.sample_rate_ppm = 1000000;
	r.u.header.program = mods[0].path;
	r.u.header.argc = 1;
	r.u.header.argv = argv;
	r.u.header.allocator = "glibc";
	r.u.header.hostname = "test";
	mst_writer_add(w, &r);
	for (i = 0; i < nmods; i++) {
		uint8_t id[64];
		memcpy(id, mods[i].build_id, sizeof(id));
		if (corrupt_id && i == 0)
			id[0] ^= 0xff;
		memset(&r, 0, sizeof(r));
		r.type = MST_REC_MODULE_LOAD;
		r.u.module_load.module = (uint64_t)i + 1;
		r.u.module_load.base = mods[i].base;
		r.u.module_load.path = mods[i].path;
		r.u.module_load.build_id = id;
		r.u.module_load.build_id_len = mods[i].build_id_len;
		r.u.module_load.nsegs = mods[i].nsegs;
		r.u.module_load.segs = mods[i].segs;
		mst_writer_add(w, &r);
	}
	memset(&r, 0, sizeof(r));
	r.type = MST_REC_END;
	r.u.end.reason = MST_END_EXIT;
	mst_writer_add(w, &r);
	mst_writer_close(w);
	close(fd);
}

static struct mst_reader *read_all(const char *path)
{
	struct mst_reader *r = NULL;
	const struct mst_record *rec;
	if (mst_reader_open(&r, path) != MST_OK)
		return r;
	while (mst_reader_next(r, &rec) == MST_OK)
		;
	return r;
}

int main(void)
{
	char path[] = "/tmp/test_symbols.XXXXXX";
	struct mst_symbolizer *s;
	struct mst_reader *r;
	struct mst_frame fr[16];
	uint64_t ip = (uint64_t)(uintptr_t)&target_function;
	size_t n;
	int fd = mkstemp(path);

	close(fd);
	dl_iterate_phdr(each, NULL);
	CHECK(nmods > 1 && mods[0].build_id_len > 0, "found %d modules, program has a build-id", nmods);

	write_trace(path, 0);
	r = read_all(path);
	CHECK(mst_symbolizer_new(&s, r, 0) == MST_OK, "symbolizer opens");
	n = mst_symbolize(s, ip, 0, fr, 16);
	CHECK(n >= 1 && fr[n - 1].function && !strcmp(fr[n - 1].function, "target_function"),
	      "resolves target_function (got %s)", n ? fr[n - 1].function : "nothing");
	CHECK(fr[0].file && strstr(fr[0].file, "test_symbols.c") && fr[0].line >= 17 && fr[0].line <= 21,
	      "file and line from DWARF (%s:%llu)", fr[0].file ? fr[0].file : "?",
	      (unsigned long long)fr[0].line);
	CHECK(fr[0].module && !strcmp(fr[0].module, mods[0].path) &&
	      fr[0].module_offset == ip - mods[0].base, "module and offset");
	n = mst_symbolize(s, ip + 1, 1, fr, 16);
	CHECK(n >= 1 && fr[n - 1].function && !strcmp(fr[n - 1].function, "target_function"),
	      "a return address looks up the call before it");
	n = mst_symbolize(s, (uint64_t)(uintptr_t)&malloc, 0, fr, 16);
	CHECK(n >= 1 && fr[n - 1].function && strstr(fr[n - 1].function, "malloc"),
	      "libc's malloc resolves from the symbol table (%s)",
	      n && fr[n - 1].function ? fr[n - 1].function : "?");
	{
		uint64_t ra = outer_function();
		n = mst_symbolize(s, ra, 1, fr, 16);
		CHECK(n == 2 && fr[0].inlined && fr[0].function &&
		      !strcmp(fr[0].function, "inlined_helper") && !fr[1].inlined &&
		      fr[1].function && !strcmp(fr[1].function, "outer_function"),
		      "an inlined call gives the inline chain (%zu frames: %s, %s)", n,
		      n > 0 && fr[0].function ? fr[0].function : "?",
		      n > 1 && fr[1].function ? fr[1].function : "?");
		CHECK(n == 2 && fr[0].line == line_of("INLINE_CALL") &&
		      fr[1].line == line_of("OUTER_CALL"),
		      "inline frame at its line, caller at the call site (%llu, %llu)",
		      (unsigned long long)fr[0].line, (unsigned long long)(n > 1 ? fr[1].line : 0));
	}
	n = mst_symbolize(s, 0x10, 0, fr, 16);
	CHECK(n == 1 && !fr[0].function && !fr[0].module, "an address in no module: one empty frame");
	CHECK(!strcmp(mst_symbolizer_warnings(s), ""), "no warnings (%s)", mst_symbolizer_warnings(s));
	mst_symbolizer_free(s);

	CHECK(mst_symbolizer_new(&s, r, MST_SYM_NO_LOOKUP) == MST_OK, "no-lookup symbolizer");
	n = mst_symbolize(s, ip, 0, fr, 16);
	CHECK(n == 1 && !fr[0].function && fr[0].module && fr[0].module_offset == ip - mods[0].base,
	      "no lookup: module and offset only");
	mst_symbolizer_free(s);
	mst_reader_close(r);

	write_trace(path, 1);
	r = read_all(path);
	mst_symbolizer_new(&s, r, 0);
	n = mst_symbolize(s, ip, 0, fr, 16);
	CHECK(n == 1 && !fr[0].function, "a build-id mismatch gives no name, never a wrong one");
	CHECK(strstr(mst_symbolizer_warnings(s), "build-id differs from the recording; symbols skipped") != NULL,
	      "and a warning: %s", mst_symbolizer_warnings(s));
	mst_symbolizer_free(s);
	mst_reader_close(r);
	unlink(path);
	return tap_done();
}
