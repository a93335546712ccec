/*
 * record.h - what the pieces of the ms-record launcher share: the program
 * checks done before anything runs (program.c) and what is done after the
 * program exits (finish.c: salvage of spools, the closing summary line).
 * main.c parses options, sets up the environment and waits for the child.
 */
#ifndef MSRECORD_RECORD_H
#define MSRECORD_RECORD_H
#include <stddef.h>
#include <stdint.h>

/* ms-record's own statuses, as env(1) and timeout(1) use them. */
enum {
	REC_EXIT_FAILED = 125,   /* ms-record itself failed, usage errors too */
	REC_EXIT_CANNOT_RUN = 126, /* found but cannot be traced or run */
	REC_EXIT_NOT_FOUND = 127,
};

/*
 * Finds NAME the way execvp does (a name with a slash is used as is, else
 * each PATH entry in turn) and checks that the recorder can trace it: an
 * executable regular file, not set-user-ID or set-group-ID, dynamically
 * linked (for a "#!" script: its interpreter). On success stores the path
 * (malloc'd) in *path and returns 0; otherwise prints one line and returns
 * the status to exit with (126 or 127).
 */
int program_resolve(const char *name, char **path);

/* Where libmsrecord.so is, next to this executable (build tree or
 * PREFIX/lib/memscope); malloc'd, or NULL after printing why. */
char *program_find_preload(void);

struct trace_info {
	uint64_t events;         /* ALLOC + FREE records */
	uint64_t bytes;          /* file size */
	int complete;            /* END read */
	int status;              /* last mst_reader_next status */
	char error[256];         /* reader's detail when status < 0 */
};

/* What summary_print takes from a trace's header. */
struct trace_head {
	uint8_t session[16];
	uint64_t flags;          /* MST_FLAG_* */
	char program[256];
};

/* Reads PATH through libtrace: its header into HEAD (may be NULL) and,
 * when INFO is not NULL, its event count. Returns 0, -1 when it is not a
 * readable trace. */
int trace_inspect(const char *path, struct trace_head *head, struct trace_info *info);

/*
 * Finishes every "*.spool" file left in SPOOL_DIR by processes that died
 * without finishing their trace, through memscope_salvage() of the preload
 * library PRELOAD (contract: spool.h). Prints a warning per failure;
 * returns the number of spools salvaged, or -1 when the library could not
 * be loaded. *ALIVE: spools whose process still runs (a daemon), left
 * alone: their folder must stay.
 */
int spools_salvage(const char *preload, const char *spool_dir, int *alive);

/* Removes SPOOL_DIR and what is left in it; 0, or -1 (errno set) when
 * something in it could not be removed. */
int spool_dir_remove(const char *spool_dir);

/*
 * The closing line on stderr: the main trace (the output template with %p
 * replaced by PID), its events and size, and how many other traces of this
 * session (forked children, earlier exec images) sit next to it. Returns 0,
 * or -1 when no trace of this session was found at all.
 */
int summary_print(const char *template, const char *others_tmpl, long pid,
		  const uint8_t session[16], int quiet);

#endif
