/*
 * program.c - ms-record's checks before it runs anything: find the program
 * as execvp would, and refuse, with one line and env(1)'s statuses, what
 * LD_PRELOAD cannot trace (static binaries, set-user-ID programs) so that
 * the user never gets a run without a trace and no word why. Also finds
 * the preload library relative to /proc/self/exe.
 */
#include "record.h"
#include "mscommon.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* execvp's search path when PATH is unset (glibc's confstr default). */
#define DEFAULT_PATH "/bin:/usr/bin"

enum link_kind { LINK_DYNAMIC, LINK_STATIC, LINK_NOT_ELF, LINK_SCRIPT };

/*
 * Reads the ELF program headers of FD: a dynamic executable names an
 * interpreter (PT_INTERP). Without one the kernel starts the program
 * itself (static, or static-pie with a PT_DYNAMIC of its own) and no
 * dynamic loader is there to honour LD_PRELOAD.
 */
static enum link_kind elf_kind(int fd)
{
	unsigned char ident[EI_NIDENT];
	uint64_t phoff;
	unsigned phnum, phentsize, i;

	if (pread(fd, ident, sizeof(ident), 0) != (ssize_t)sizeof(ident))
		return LINK_NOT_ELF;
	if (ident[0] == '#' && ident[1] == '!')
		return LINK_SCRIPT;
	if (memcmp(ident, ELFMAG, SELFMAG) != 0)
		return LINK_NOT_ELF;
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return LINK_NOT_ELF;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
		if (phentsize < sizeof(Elf64_Phdr))
			return LINK_NOT_ELF;
	} else if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;
		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return LINK_NOT_ELF;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
		if (phentsize < sizeof(Elf32_Phdr))
			return LINK_NOT_ELF;
	} else {
		return LINK_NOT_ELF;
	}
	/* Both classes keep p_type in the first 4 bytes of a header. */
	for (i = 0; i < phnum; i++) {
		uint32_t type;
		if (pread(fd, &type, sizeof(type), (off_t)(phoff + (uint64_t)i * phentsize))
		    != (ssize_t)sizeof(type))
			return LINK_NOT_ELF;
		if (type == PT_INTERP)
			return LINK_DYNAMIC;
	}
	return LINK_STATIC;
}

/* The interpreter of a "#!" script into BUF ("" when the line has none). */
static void script_interpreter(int fd, char *buf, size_t len)
{
	char line[256];
	ssize_t n = pread(fd, line, sizeof(line) - 1, 0);
	char *p, *end;

	buf[0] = '\0';
	if (n < 2)
		return;
	line[n] = '\0';
	p = line + 2;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strcspn(p, " \t\n");
	*end = '\0';
	snprintf(buf, len, "%s", p);
}

/*
 * Checks one candidate. Returns 0 when it can be traced, or the exit
 * status after printing why not. NAME is what the user typed, for
 * messages. DEPTH limits "#!" interpreters checked in turn.
 */
static int check_program(const char *name, const char *path, int depth)
{
	struct stat st;
	enum link_kind kind;
	int fd;

	if (stat(path, &st) != 0) {
		msc_error("'%s': %s", name, strerror(errno));
		return errno == ENOENT || errno == ENOTDIR ? REC_EXIT_NOT_FOUND
							    : REC_EXIT_CANNOT_RUN;
	}
	if (S_ISDIR(st.st_mode)) {
		msc_error("cannot run '%s': %s", name, strerror(EISDIR));
		return REC_EXIT_CANNOT_RUN;
	}
	if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
		msc_error("cannot run '%s': %s", name, strerror(EACCES));
		return REC_EXIT_CANNOT_RUN;
	}
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		msc_error("'%s' is set-%s-ID: the dynamic loader ignores LD_PRELOAD for it",
			  name, st.st_mode & S_ISUID ? "user" : "group");
		return REC_EXIT_CANNOT_RUN;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		msc_error("cannot read '%s': %s", name, strerror(errno));
		return REC_EXIT_CANNOT_RUN;
	}
	kind = elf_kind(fd);
	if (kind == LINK_STATIC) {
		close(fd);
		msc_error("'%s' is statically linked: LD_PRELOAD cannot trace it", name);
		return REC_EXIT_CANNOT_RUN;
	}
	if (kind == LINK_SCRIPT && depth < 4) {
		char interp[PATH_MAX];
		int rc = 0;
		script_interpreter(fd, interp, sizeof(interp));
		/* A missing interpreter is left to exec to report. */
		if (interp[0] == '/' && access(interp, F_OK) == 0) {
			rc = check_program(interp, interp, depth + 1);
			if (rc)
				msc_error("'%s' runs '%s', which cannot be traced", name, interp);
		}
		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

int program_resolve(const char *name, char **path)
{
	const char *search, *p;
	char buf[PATH_MAX];
	int saw_eacces = 0;

	*path = NULL;
	if (!*name) {
		msc_error("'': %s", strerror(ENOENT));
		return REC_EXIT_NOT_FOUND;
	}
	if (strchr(name, '/')) {
		int rc = check_program(name, name, 0);
		if (rc)
			return rc;
		*path = strdup(name);
		return *path ? 0 : REC_EXIT_FAILED;
	}
	search = getenv("PATH");
	if (!search)
		search = DEFAULT_PATH;
	/* Like execvp: the first executable file wins; a match that is not
	 * executable is remembered for the error. Empty entries mean ".". */
	for (p = search;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		struct stat st;

		if (dlen == 0)
			snprintf(buf, sizeof(buf), "%s", name);
		else
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)dlen, p, name);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(buf, X_OK) == 0) {
				int rc = check_program(name, buf, 0);
				if (rc)
					return rc;
				*path = strdup(buf);
				return *path ? 0 : REC_EXIT_FAILED;
			}
			saw_eacces = 1;
		}
		if (!*end)
			break;
		p = end;
	}
	if (saw_eacces) {
		msc_error("cannot run '%s': %s", name, strerror(EACCES));
		return REC_EXIT_CANNOT_RUN;
	}
	msc_error("'%s': %s", name, "command not found");
	return REC_EXIT_NOT_FOUND;
}

char *program_find_preload(void)
{
	/* build/bin/ms-record -> build/lib/; PREFIX/bin -> PREFIX/lib/memscope/ */
	static const char *const rel[] = {
		"/../lib/libmsrecord.so",
		"/../lib/memscope/libmsrecord.so",
	};
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash, *found;
	size_t i;

	if (n <= 0) {
		msc_error("cannot read '/proc/self/exe': %s", strerror(errno));
		return NULL;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
		if (access(cand, R_OK) == 0) {
			found = realpath(cand, NULL);
			if (found)
				return found;
		}
	}
	msc_error("cannot find the recorder library: no '%s/../lib/libmsrecord.so' "
		  "nor '%s/../lib/memscope/libmsrecord.so'", exe, exe);
	return NULL;
}
