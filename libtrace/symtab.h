/*
 * symtab.h - a module's ELF symbol table, sorted for lookups by address
 * (symtab.c). Internal to libtrace: the symbolizer names a frame from it
 * when DWARF does not.
 */
#ifndef MSTRACE_SYMTAB_H
#define MSTRACE_SYMTAB_H

#include <elfutils/libdwfl.h>
#include <stdint.h>

struct mst__symtab;

/* Reads MOD's symbol table (its .symtab, else .dynsym) once. NULL when out
 * of memory; a module without symbols gives an empty table. The names
 * belong to MOD's Dwfl and live as long as it does. */
struct mst__symtab *mst__symtab_new(Dwfl_Module *mod);
void mst__symtab_free(struct mst__symtab *t);

/* The name of the symbol that ADDR (bias applied, as dwfl_module_addrinfo
 * takes it) lies in, or NULL. */
const char *mst__symtab_lookup(const struct mst__symtab *t, uint64_t addr);

#endif
