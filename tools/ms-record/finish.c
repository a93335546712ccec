/*
 * finish.c - what ms-record does once the program has exited: finish the
 * spool files of processes that died without writing their trace (SIGKILL)
 * through the preload library's memscope_salvage(), remove the session's
 * spool folder, and print the one closing line that says where the trace
 * is, how big it is and what to run next.
 */
#include "record.h"
#include "mscommon.h"
#include "mstrace.h"
#include "spool.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* memscope_salvage() of spool.h, looked up at run time: the launcher does
 * not link the recorder library. */
typedef __typeof__(memscope_salvage) *salvage_fn;

int trace_inspect(const char *path, struct trace_head *head, struct trace_info *info)
{
	struct mst_reader *r = NULL;
	const struct mst_record *rec;
	struct mst_reader_stats rs;
	struct stat st;
	int status;

	status = mst_reader_open(&r, path);
	if (status != MST_OK) {
		if (info) {
			info->status = status;
			snprintf(info->error, sizeof(info->error), "%s",
				 r ? mst_reader_error(r) : mst_status_str(status));
		}
		mst_reader_close(r);
		return -1;
	}
	if (head) {
		const struct mst_header *h = mst_reader_header(r);

		memcpy(head->session, h->session_id, 16);
		head->flags = h->flags;
		snprintf(head->program, sizeof(head->program), "%s", h->program ? h->program : "");
	}
	if (info) {
		memset(info, 0, sizeof(*info));
		while ((status = mst_reader_next(r, &rec)) == MST_OK) {
			if (rec->type == MST_REC_ALLOC || rec->type == MST_REC_FREE)
				info->events++;
		}
		info->status = status;
		if (status < 0)
			snprintf(info->error, sizeof(info->error), "%s", mst_reader_error(r));
		mst_reader_stats(r, &rs);
		info->complete = rs.complete;
		if (stat(path, &st) == 0)
			info->bytes = (uint64_t)st.st_size;
	}
	mst_reader_close(r);
	return 0;
}

int spools_salvage(const char *preload, const char *spool_dir, int *alive)
{
	char path[PATH_MAX], err[512];
	struct dirent *de;
	void *lib = NULL;
	salvage_fn salvage = NULL;
	int done = 0, rc;
	size_t len;
	DIR *d;

	*alive = 0;
	d = opendir(spool_dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 7 || strcmp(de->d_name + len - 6, ".spool") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", spool_dir, de->d_name);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (!lib) {
			/* Keeps the library's constructor from starting a
			 * recording inside the launcher. */
			setenv("MEMSCOPE_SALVAGE", "1", 1);
			lib = dlopen(preload, RTLD_NOW | RTLD_LOCAL);
			if (!lib) {
				msc_warn("cannot load '%s' to finish interrupted traces: %s",
					 preload, dlerror());
				break;
			}
			*(void **)&salvage = dlsym(lib, "memscope_salvage");
			if (!salvage) {
				msc_warn("'%s' has no memscope_salvage(): cannot finish interrupted traces",
					 preload);
				break;
			}
		}
		err[0] = '\0';
		rc = salvage(path, err, sizeof(err));
		/* Gone meanwhile: its process finished and unlinked it. */
		if (rc < 0 && access(path, F_OK) != 0 && errno == ENOENT)
			continue;
		if (rc < 0) {
			/* A process of the run that is starting (a daemon's
			 * fork) may have created its spool and not yet
			 * written its header: look again a moment later. */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			err[0] = '\0';
			rc = salvage(path, err, sizeof(err));
			if (rc < 0 && access(path, F_OK) != 0 && errno == ENOENT)
				continue;
		}
		if (rc == 0)
			done++;
		else if (rc == 1)
			(*alive)++;
		else
			msc_warn("cannot finish the trace of spool '%s': %s", path,
				 err[0] ? err : "unknown error");
	}
	closedir(d);
	/* The library stays loaded: -z nodelete, and its threads, if any,
	 * must not lose their code. */
	if (lib && !salvage)
		return -1;
	return done;
}

int spool_dir_remove(const char *spool_dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	int rc = 0;
	DIR *d;

	d = opendir(spool_dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", spool_dir, de->d_name);
		if (unlink(path) != 0)
			rc = -1;
	}
	closedir(d);
	if (rmdir(spool_dir) != 0)
		rc = -1;
	return rc;
}

/* TEMPLATE with %p (and %e, the program name) replaced by REPL, glob
 * metacharacters of the rest escaped when ESCAPE. */
static void expand(const char *template, const char *repl, int escape,
		   char *out, size_t len)
{
	size_t o = 0;
	const char *p;

	for (p = template; *p && o + 1 < len; p++) {
		if (p[0] == '%' && (p[1] == 'p' || p[1] == 'e')) {
			size_t n = strlen(repl);
			if (o + n >= len)
				break;
			memcpy(out + o, repl, n);
			o += n;
			p++;
			continue;
		}
		if (escape && strchr("*?[]\\", *p)) {
			if (o + 2 >= len)
				break;
			out[o++] = '\\';
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

/* 1234567 -> "1,234,567" */
static char *thousands(uint64_t v, char *buf, size_t len)
{
	char digits[32];
	size_t n, i, o = 0;

	snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	n = strlen(digits);
	for (i = 0; i < n && o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* PATH as a shell word, for the command we suggest. */
static void shell_quote(const char *path, char *out, size_t len)
{
	size_t o = 0;
	const char *p;

	if (path[0] && strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			     "0123456789._/-+,:=@%") == strlen(path)) {
		snprintf(out, len, "%s", path);
		return;
	}
	out[o++] = '\'';
	for (p = path; *p && o + 6 < len; p++) {
		if (*p == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *p;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
}

/* A trace whose program's calls to malloc and free went to an allocator
 * ahead of the recorder lacks them: say so rather than let it look like a
 * program that allocates little. */
static void warn_own_malloc(const char *path, const struct trace_head *h)
{
	if (h->flags & MST_FLAG_OWN_MALLOC)
		msc_warn("'%s': %s: malloc and free went to an allocator ahead of the recorder "
			 "(the program's own, or one preloaded first): those calls are not in "
			 "the trace", path, h->program[0] ? h->program : "the program");
}

/* Adds the matches of PATTERN not seen yet to *seen (a glob_t). */
static void collect(const char *pattern, glob_t *g, int *first)
{
	if (glob(pattern, *first ? 0 : GLOB_APPEND, NULL, g) == 0)
		*first = 0;
}

int summary_print(const char *template, const char *others_tmpl, long pid,
		  const uint8_t session[16], int quiet)
{
	char main_path[PATH_MAX], pat[PATH_MAX + 32], pidbuf[32], stem[PATH_MAX];
	char evbuf[32], szbuf[32], quoted[PATH_MAX + 16];
	struct trace_head head;
	struct trace_info info;
	const char *shown;
	glob_t g;
	size_t i, j, tlen;
	int first = 1, others = 0, have_main;

	memset(&g, 0, sizeof(g));
	snprintf(pidbuf, sizeof(pidbuf), "%ld", pid);
	expand(template, pidbuf, 0, main_path, sizeof(main_path));

	/* Other traces of the session: children (%p) and earlier exec
	 * images ("<name minus .memscope>.exec<N>.memscope"). */
	expand(template, "*", 1, pat, sizeof(pat));
	if (strstr(template, "%p"))
		collect(pat, &g, &first);
	if (others_tmpl) {
		expand(others_tmpl, "*", 1, pat, sizeof(pat));
		collect(pat, &g, &first);
	}
	tlen = strlen(pat);
	if (tlen > 9 && strcmp(pat + tlen - 9, ".memscope") == 0) {
		snprintf(stem, sizeof(stem), "%.*s", (int)(tlen - 9), pat);
		snprintf(pat, sizeof(pat), "%s.exec*.memscope", stem);
		collect(pat, &g, &first);
		if (!strstr(template, "%p")) {
			snprintf(pat, sizeof(pat), "%s.*.memscope", stem);
			collect(pat, &g, &first);
		}
	}
	/* -q reads no more than the header: no line to print the counts on. */
	memset(&info, 0, sizeof(info));
	have_main = trace_inspect(main_path, &head, quiet ? NULL : &info) == 0;
	if (have_main && !quiet)
		warn_own_malloc(main_path, &head);
	shown = main_path;
	for (i = 0; !first && i < g.gl_pathc; i++) {
		const char *p = g.gl_pathv[i];
		int dup = strcmp(p, main_path) == 0;
		for (j = 0; j < i && !dup; j++)
			dup = strcmp(p, g.gl_pathv[j]) == 0;
		if (dup || trace_inspect(p, &head, NULL) != 0 || memcmp(head.session, session, 16) != 0)
			continue;
		if (!quiet)
			warn_own_malloc(p, &head);
		if (!have_main && others == 0) {
			/* The program's own image left no trace (it exec'd
			 * something untraceable): report the first one found. */
			snprintf(stem, sizeof(stem), "%s", p);
			shown = stem;
			if (trace_inspect(shown, NULL, quiet ? NULL : &info) == 0)
				have_main = 1;
			continue;
		}
		others++;
	}
	if (!first)
		globfree(&g);
	if (!have_main) {
		msc_error("no trace was written to '%s'%s%s", main_path,
			  info.status < 0 ? ": " : "", info.status < 0 ? info.error : "");
		return -1;
	}
	if (quiet)
		return 0;
	if (info.status < 0 && info.status != MST_ERR_TRUNCATED)
		msc_warn("'%s' is damaged: %s", shown, info.error);
	else if (!info.complete && info.error[0])
		msc_warn("'%s': %s", shown, info.error);
	else if (!info.complete)
		msc_warn("'%s' is truncated: it has no END record", shown);
	shell_quote(shown, quoted, sizeof(quoted));
	fprintf(stderr, "%s: wrote %s (%s events, %s)", msc_prog(), shown,
		thousands(info.events, evbuf, sizeof(evbuf)),
		msc_format_bytes(info.bytes, szbuf));
	if (others)
		fprintf(stderr, " and %d more trace%s of this run", others,
			others == 1 ? "" : "s");
	fprintf(stderr, "; try: ms-stats --text %s\n", quoted);
	return 0;
}
