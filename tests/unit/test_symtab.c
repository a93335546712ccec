/*
 * test_symtab.c - the sorted symbol table (libtrace/symtab.c) against the
 * lookup it replaces, dwfl_module_addrinfo, address by address: on every
 * module of this process (the test itself, libc, libdw, libelf, libzstd,
 * ...) and on a few large programs of the system when they are there
 * (gcc's cc1: stripped, tens of thousands of symbols). The addresses are
 * spread over each module's loaded extent (what the symbolizer asks about), and put on and around symbol
 * boundaries (start - 1, start, end - 1, end), where the choice between
 * neighbours, aliases and sizeless labels is made.
 */
#include "symtab.h"
#include "tap.h"

#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char paths[64][512];
static uint64_t bases[64];
static int npaths;

static int each(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	if (npaths == 64)
		return 1;
	if (!info->dlpi_name[0]) {
		ssize_t n = readlink("/proc/self/exe", paths[npaths], sizeof(paths[0]) - 1);
		if (n <= 0)
			return 0;
		paths[npaths][n] = 0;
	} else if (info->dlpi_name[0] == '/') {
		snprintf(paths[npaths], sizeof(paths[0]), "%s", info->dlpi_name);
	} else {
		return 0;             /* linux-vdso.so.1: no file */
	}
	bases[npaths++] = info->dlpi_addr;
	return 0;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Compares the two lookups on PATH loaded at BASE; returns the addresses
 * compared, and counts differences in *DIFF (printing the first few). */
static long compare_module(const char *path, uint64_t base, long *diff)
{
	static char *debuginfo_path;
	static const Dwfl_Callbacks cb = {
		.find_elf = dwfl_build_id_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &debuginfo_path,
	};
	Dwfl *dwfl = dwfl_begin(&cb);
	Dwfl_Module *mod;
	struct mst__symtab *t;
	GElf_Addr bias, lo = UINT64_MAX, hi = 0;
	Elf *elf;
	GElf_Phdr ph;
	size_t nph, i;
	long n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), nsym, k;

	if (fd < 0 || !dwfl) {
		if (fd >= 0)
			close(fd);
		dwfl_end(dwfl);
		return 0;
	}
	dwfl_report_begin(dwfl);
	mod = dwfl_report_elf(dwfl, path, path, fd, base, false);
	dwfl_report_end(dwfl, NULL, NULL);
	if (!mod) {
		close(fd);
		dwfl_end(dwfl);
		return 0;
	}
	t = mst__symtab_new(mod);
	elf = dwfl_module_getelf(mod, &bias);
	if (!t || !elf || elf_getphdrnum(elf, &nph) != 0) {
		mst__symtab_free(t);
		dwfl_end(dwfl);
		return 0;
	}
	for (i = 0; i < nph; i++)
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
			if (ph.p_vaddr + bias < lo)
				lo = ph.p_vaddr + bias;
			if (ph.p_vaddr + ph.p_memsz + bias > hi)
				hi = ph.p_vaddr + ph.p_memsz + bias;
		}
#define TRY(a) do { \
		uint64_t a_ = (a); \
		GElf_Off off_; \
		GElf_Sym sym_; \
		const char *want; \
		if (a_ < lo || a_ >= hi) \
			break; \
		want = dwfl_module_addrinfo(mod, a_, &off_, &sym_, NULL, NULL, NULL); \
		const char *got = mst__symtab_lookup(t, a_); \
		n++; \
		if (!same(want, got) && ++*diff <= 10) \
			printf("# %s %#llx (bias %#llx): libdwfl %s, symtab %s\n", path, (unsigned long long)a_, (unsigned long long)bias, \
			       want ? want : "(none)", \
			       got ? got : "(none)"); \
	} while (0)
	/* spread over the loaded extent (the symbolizer asks only about
	 * addresses in a module's segments) */
	for (k = 0; k < 300 && hi > lo; k++)
		TRY(lo + next_rand() % (hi - lo));
	/* on and around symbols' boundaries */
	nsym = dwfl_module_getsymtab(mod);
	for (k = 0; k < 150 && nsym > 1; k++) {
		GElf_Sym sym;
		GElf_Addr a;
		int ndx = 1 + (int)(next_rand() % (uint64_t)(nsym - 1));
		if (!dwfl_module_getsym_info(mod, ndx, &sym, &a, NULL, NULL, NULL))
			continue;
		TRY(a - 1);
		TRY(a);
		TRY(a + (sym.st_size ? sym.st_size - 1 : 1));
		TRY(a + sym.st_size);
	}
#undef TRY
	mst__symtab_free(t);
	dwfl_end(dwfl);
	return n;
}

int main(void)
{
	static const char *system_programs[] = {
		"/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
		"/usr/bin/perl",
		"/usr/bin/git",
		"/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
	};
	long diff = 0, n = 0;
	int i, modules = 0;

	dl_iterate_phdr(each, NULL);
	for (i = 0; i < npaths; i++) {
		long m = compare_module(paths[i], bases[i], &diff);
		modules += m > 0;
		n += m;
	}
	CHECK(modules >= 3 && n > 0, "compared %ld addresses in %d modules of this process",
	      n, modules);
	for (i = 0; i < (int)(sizeof(system_programs) / sizeof(system_programs[0])); i++)
		if (access(system_programs[i], R_OK) == 0)
			n += compare_module(system_programs[i], 0x555555554000ull, &diff);
	CHECK(diff == 0, "the sorted table names what dwfl_module_addrinfo names "
	      "(%ld addresses, %ld differ)", n, diff);
	return tap_done();
}
