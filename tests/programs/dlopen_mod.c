/*
 * dlopen_mod - loads a shared library at run time, allocates around it,
 * unloads it. The trace must hold the module's MODULE_LOAD (and UNLOAD)
 * records so stacks into it can be symbolized, and dlopen's own
 * allocations (glibc's link map, scope arrays) are recorded like any other.
 *
 * The program's own calls: malloc(777) before dlopen and malloc(888) after
 * dlclose, both freed: 2 allocations, 2 frees, 1665 bytes. dlopen/dlclose
 * add glibc's allocations (compared with memcheck in oracle.bats).
 * Usage: dlopen_mod [LIBRARY]   (default libz.so.1)
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(3);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "libz.so.1";
	void *before = malloc(777), *after, *h;

	h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		say("dlopen_mod: dlopen failed\n");
		return 1;
	}
	if (dlclose(h) != 0)
		return 1;
	after = malloc(888);
	free(before);
	free(after);
	say("dlopen_mod: loaded and unloaded ");
	say(name);
	say("\n");
	return 0;
}
