/*
 * ms-record - run a program with the memscope recorder preloaded.
 *
 *     ms-record [options] [--] PROGRAM [ARGS...]
 *
 * Writes PROGRAM.PID.memscope (or -o FILE, %p = pid) through libmsrecord.so,
 * which reads its settings from MEMSCOPE_* variables set here. ms-record
 * outlives the program: it finishes the spools of processes killed before
 * they could write their trace, then says on one line where the trace is.
 * Exit status: the program's, 128+N when it died of signal N; 125 when
 * ms-record itself fails (usage errors included), 126 when the program
 * cannot be traced or run, 127 when it is not found (as env(1) does).
 */
#include "record.h"
#include "mscommon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* After the program: 10 ms waits, at most, for processes of the run that
 * are still exiting (see run) */
#define ORPHAN_WAITS 50

#ifndef MEMSCOPE_VERSION
#define MEMSCOPE_VERSION "0.1"
#endif

struct options {
	const char *output;       /* -o: NULL = PROGRAM.%p.memscope */
	const char *sample_rate;  /* checked, passed as given */
	const char *unwind;       /* dwarf | fp | none */
	const char *stack_depth;
	const char *max_overhead; /* MB */
	const char *rss_interval; /* ms */
	int drop;
	int no_follow;
	int quiet;
	char **argv;              /* PROGRAM ARGS..., NULL-terminated */
};

static const char usage_text[] =
	"usage: ms-record [options] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Runs PROGRAM with the memscope recorder and writes PROGRAM.PID.memscope.\n"
	"\n"
	"  -o, --output FILE       write the trace to FILE (%p: the process id)\n"
	"      --sample-rate R     record each allocation with probability R (0 < R <= 1)\n"
	"      --unwind MODE       stacks: dwarf (default), fp (frame pointers), none\n"
	"      --stack-depth N     record at most N frames per stack (1..1024)\n"
	"      --max-overhead MB   bound the recorder's own memory to MB megabytes\n"
	"      --drop              when that bound is reached, drop (and count) events\n"
	"                          instead of making the program wait\n"
	"      --rss-interval MS   sample RSS and allocator figures every MS ms (0: never)\n"
	"      --no-follow         do not trace child processes\n"
	"  -q, --quiet             print nothing of ms-record's own on success\n"
	"  -h, --help              show this help\n"
	"      --version           show the version\n"
	"\n"
	"Exit status: PROGRAM's own, 128+N if it died of signal N; 125 if ms-record\n"
	"failed, 126 if PROGRAM cannot be traced or run, 127 if it was not found.\n";

enum {
	OPT_SAMPLE_RATE = 256, OPT_UNWIND, OPT_STACK_DEPTH, OPT_MAX_OVERHEAD,
	OPT_DROP, OPT_RSS_INTERVAL, OPT_NO_FOLLOW, OPT_VERSION,
};

static const struct option long_options[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "sample-rate", required_argument, NULL, OPT_SAMPLE_RATE },
	{ "unwind", required_argument, NULL, OPT_UNWIND },
	{ "stack-depth", required_argument, NULL, OPT_STACK_DEPTH },
	{ "max-overhead", required_argument, NULL, OPT_MAX_OVERHEAD },
	{ "drop", no_argument, NULL, OPT_DROP },
	{ "rss-interval", required_argument, NULL, OPT_RSS_INTERVAL },
	{ "no-follow", no_argument, NULL, OPT_NO_FOLLOW },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", msc_prog());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ms-record --help' for more information.\n");
	return REC_EXIT_FAILED;
}

/* Returns -1 to go on, or the status to exit with. */
static int parse_options(int argc, char **argv, struct options *o)
{
	uint64_t n;
	double d;
	int c;

	opterr = 0;
	/* "+": stop at PROGRAM; its options are its own. */
	while ((c = getopt_long(argc, argv, "+:o:qh", long_options, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case OPT_SAMPLE_RATE:
			if (msc_parse_double(optarg, &d) || !(d > 0 && d <= 1))
				return usage_error("invalid --sample-rate '%s': expected a number in (0, 1]",
						   optarg);
			o->sample_rate = optarg;
			break;
		case OPT_UNWIND:
			if (strcmp(optarg, "dwarf") && strcmp(optarg, "fp") && strcmp(optarg, "none"))
				return usage_error("invalid --unwind '%s': expected dwarf, fp or none",
						   optarg);
			o->unwind = optarg;
			break;
		case OPT_STACK_DEPTH:
			if (msc_parse_u64(optarg, &n) || n < 1 || n > 1024)
				return usage_error("invalid --stack-depth '%s': expected 1 to 1024",
						   optarg);
			o->stack_depth = optarg;
			break;
		case OPT_MAX_OVERHEAD:
			if (msc_parse_u64(optarg, &n) || n < 1 || n > (1u << 20))
				return usage_error("invalid --max-overhead '%s': expected megabytes, 1 to 1048576",
						   optarg);
			o->max_overhead = optarg;
			break;
		case OPT_DROP:
			o->drop = 1;
			break;
		case OPT_RSS_INTERVAL:
			if (msc_parse_u64(optarg, &n) || n > 86400000)
				return usage_error("invalid --rss-interval '%s': expected milliseconds",
						   optarg);
			o->rss_interval = optarg;
			break;
		case OPT_NO_FOLLOW:
			o->no_follow = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("ms-record (memscope) %s\n", MEMSCOPE_VERSION);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			/* optopt names a short option even inside "-qx". */
			if (optopt)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s", "no program given");
	o->argv = argv + optind;
	return -1;
}


/*
 * Whether files can be created in DIR, found by creating one: access(2)
 * says yes to root in read-only places such as /proc. Checked before the
 * program runs, so a run is never wasted on a trace that cannot be written.
 */
static int dir_takes_files(const char *dir, int *err)
{
	char probe[PATH_MAX + 64];
	struct stat st;
	int fd;

	if (stat(dir, &st) != 0) {
		*err = errno;
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		*err = ENOTDIR;
		return 0;
	}
	snprintf(probe, sizeof(probe), "%s/.ms-record-probe.%ld", dir, (long)getpid());
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = errno;
		return 0;
	}
	close(fd);
	unlink(probe);
	return 1;
}

/*
 * The absolute output template: the recorder writes it from wherever the
 * program has chdir'd to. Checks that its folder exists and is writable so
 * that a typo fails now rather than after an hour-long run.
 */
static char *output_template(const struct options *o)
{
	char cwd[PATH_MAX], dir[PATH_MAX], *abs;
	const char *base, *slash;
	struct stat st;
	size_t n;
	int e = 0;

	if (!getcwd(cwd, sizeof(cwd))) {
		msc_error("cannot get the current folder: %s", strerror(errno));
		return NULL;
	}
	if (!o->output) {
		base = strrchr(o->argv[0], '/');
		base = base ? base + 1 : o->argv[0];
		if (asprintf(&abs, "%s/%s.%%p.memscope", cwd, base) < 0)
			return NULL;
	} else {
		if (!*o->output || o->output[strlen(o->output) - 1] == '/') {
			msc_error("cannot write '%s': %s", o->output, strerror(EISDIR));
			return NULL;
		}
		if (o->output[0] == '/')
			abs = strdup(o->output);
		else if (asprintf(&abs, "%s/%s", cwd, o->output) < 0)
			abs = NULL;
		if (!abs)
			return NULL;
	}
	slash = strrchr(abs, '/');
	n = (size_t)(slash - abs);
	snprintf(dir, sizeof(dir), "%.*s", (int)(n ? n : 1), abs);
	if (!dir_takes_files(dir, &e)) {
		if (o->output)
			msc_error("cannot write '%s': %s", o->output, strerror(e));
		else
			msc_error("cannot write a trace in '%s': %s (choose another place with -o FILE)",
				  dir, strerror(e));
		free(abs);
		return NULL;
	}
	if (!strstr(abs, "%p") && stat(abs, &st) == 0 && !S_ISREG(st.st_mode)) {
		msc_error("cannot write '%s': %s", o->output,
			  S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		free(abs);
		return NULL;
	}
	return abs;
}

static volatile sig_atomic_t child_pid;

/*
 * Passes a signal on to the program. One typed at the terminal (^C) has
 * already reached the program through the process group; only signals
 * sent to ms-record alone (kill PID) are forwarded.
 */
static void forward_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (child_pid > 0 && si->si_code <= 0)
		kill(child_pid, sig);
}

static void setenv_opt(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
}

/* In the child: the recorder's settings, then exec. Reports exec's errno
 * through FD (close-on-exec, so a successful exec reports nothing). */
static void child_exec(const struct options *o, const char *path, const char *preload,
		       const char *template, const char *spool_dir, const char *session,
		       int fd)
{
	const char *old = getenv("LD_PRELOAD");
	char *preload_var;
	int e;

	if (old && *old) {
		if (asprintf(&preload_var, "%s:%s", preload, old) < 0)
			preload_var = NULL;
	} else {
		preload_var = strdup(preload);
	}
	if (preload_var)
		setenv("LD_PRELOAD", preload_var, 1);
	setenv("MEMSCOPE_OUTPUT", template, 1);
	if (!o->output) {
		/* Other processes of the run are named after themselves
		 * (the recorder's %e), beside the main trace. */
		char *others = NULL;
		const char *slash = strrchr(template, '/');

		if (asprintf(&others, "%.*s/%%e.%%p.memscope", (int)(slash - template),
			     template) >= 0)
			setenv("MEMSCOPE_OUTPUT_OTHERS", others, 1);
		free(others);
	} else {
		unsetenv("MEMSCOPE_OUTPUT_OTHERS");
	}
	setenv("MEMSCOPE_SESSION", session, 1);
	setenv("MEMSCOPE_SPOOL_DIR", spool_dir, 1);
	setenv_opt("MEMSCOPE_SAMPLE_RATE", o->sample_rate);
	setenv_opt("MEMSCOPE_UNWIND", o->unwind);
	setenv_opt("MEMSCOPE_STACK_DEPTH", o->stack_depth);
	setenv_opt("MEMSCOPE_MAX_OVERHEAD", o->max_overhead);
	setenv_opt("MEMSCOPE_RSS_INTERVAL", o->rss_interval);
	if (o->drop)
		setenv("MEMSCOPE_DROP", "1", 1);
	if (o->no_follow)
		setenv("MEMSCOPE_FOLLOW", "0", 1);
	/* The recorder's own bookkeeping across fork and exec: a run of
	 * ms-record inside a traced program starts afresh. The run's first
	 * process is this one, which says so here: the recorder would
	 * otherwise setenv it in the program, whose environment array the
	 * program may later realloc (setenv does): a block it never saw
	 * allocated, counted as an unknown free. */
	unsetenv("MEMSCOPE_SALVAGE");
	/* the run's first process measures the clock for the others: a
	 * value an earlier run or a person left is not taken on trust */
	unsetenv("MEMSCOPE_CLOCK");
	{
		char pid0[24];

		snprintf(pid0, sizeof(pid0), "%d", (int)getpid());
		setenv("MEMSCOPE_PID0", pid0, 1);
	}
	unsetenv("MEMSCOPE_EXEC_GENERATION");

	execv(path, o->argv);
	if (errno == ENOEXEC) {
		/* As execvp does: a file without a "#!" line is a shell script. */
		int n = 0;
		char **args;
		while (o->argv[n])
			n++;
		args = calloc((size_t)n + 2, sizeof(*args));
		if (args) {
			args[0] = (char *)"/bin/sh";
			args[1] = (char *)path;
			memcpy(args + 2, o->argv + 1, (size_t)n * sizeof(*args));
			execv("/bin/sh", args);
		}
	}
	e = errno;
	if (write(fd, &e, sizeof(e)) < 0)
		_exit(REC_EXIT_CANNOT_RUN);
	_exit(e == ENOENT ? REC_EXIT_NOT_FOUND : REC_EXIT_CANNOT_RUN);
}

static int run(const struct options *o)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	char *path = NULL, *preload = NULL, *template = NULL, *spool_dir = NULL;
	char session[33], tmpl[PATH_MAX];
	uint8_t sid[16];
	const char *tmpdir;
	struct sigaction sa, saved[4];
	int pipefd[2] = { -1, -1 };
	int status = REC_EXIT_FAILED, wstatus, reaped, e, i, alive = 0, descendants;
	pid_t pid;
	ssize_t n;

	status = program_resolve(o->argv[0], &path);
	if (status)
		goto out;
	status = REC_EXIT_FAILED;
	template = output_template(o);
	if (!template)
		goto out;
	preload = program_find_preload();
	if (!preload)
		goto out;
	if (strpbrk(preload, " :")) {
		msc_error("cannot preload '%s': LD_PRELOAD cannot hold a path with a space or colon",
			  preload);
		goto out;
	}
	if (getrandom(sid, sizeof(sid), 0) != (ssize_t)sizeof(sid)) {
		msc_error("cannot make a session id: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < 16; i++)
		snprintf(session + 2 * i, 3, "%02x", sid[i]);

	tmpdir = getenv("TMPDIR");
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/ms-record.XXXXXX", tmpdir);
	if (!mkdtemp(tmpl)) {
		msc_error("cannot create a spool folder in '%s': %s", tmpdir, strerror(errno));
		goto out;
	}
	spool_dir = strdup(tmpl);
	if (!spool_dir || pipe2(pipefd, O_CLOEXEC) != 0) {
		msc_error("cannot start '%s': %s", o->argv[0], strerror(errno));
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++) {
		sigaction(forwarded[i], NULL, &saved[i]);
		/* A signal ignored by whoever started us (nohup, "&" in a
		 * script) stays ignored, for the program too. */
		if (saved[i].sa_handler != SIG_IGN)
			sigaction(forwarded[i], &sa, NULL);
	}

	msc_debug("program '%s', recorder '%s', output '%s', spool folder '%s', session %s",
		  path, preload, template, spool_dir, session);

	/* Descendants orphaned during the run (a daemon's double fork) become
	 * our children, so that we know whether any is still running. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		msc_error("cannot start '%s': %s", o->argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(pipefd[0]);
		for (i = 0; i < 4; i++)
			sigaction(forwarded[i], &saved[i], NULL);
		child_exec(o, path, preload, template, spool_dir, session, pipefd[1]);
	}
	child_pid = pid;
	close(pipefd[1]);
	pipefd[1] = -1;
	do
		n = read(pipefd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);

	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR) {
			msc_error("cannot wait for '%s': %s", o->argv[0], strerror(errno));
			goto out;
		}
	}
	child_pid = 0;
	if (n == (ssize_t)sizeof(e)) {
		msc_error("cannot run '%s': %s", o->argv[0], strerror(e));
		status = e == ENOENT ? REC_EXIT_NOT_FOUND : REC_EXIT_CANNOT_RUN;
		goto out;
	}
	if (WIFEXITED(wstatus))
		status = WEXITSTATUS(wstatus);
	else if (WIFSIGNALED(wstatus))
		status = 128 + WTERMSIG(wstatus);

	/* Orphans of the run (daemons) were reparented to us: any child
	 * left means a process of the run still runs and may still create or
	 * use its spool, so the folder stays. Zombies are reaped here. A
	 * process may also be on its way out: killed with the program (a
	 * SIGKILL that `timeout -s KILL` sent its command before killing
	 * itself), its threads still being torn down; its trace can only be
	 * finished from its spool once it is gone, so it gets a moment. */
	for (i = 0; i < ORPHAN_WAITS; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		while ((n = waitpid(-1, &reaped, WNOHANG)) > 0)
			;
		if (n != 0)
			break;
		nanosleep(&ts, NULL);
	}
	descendants = n == 0;
	n = spools_salvage(preload, spool_dir, &alive);
	msc_debug("status %d; %zd spool(s) salvaged, %d still in use%s", status, n, alive,
		  descendants ? ", processes of the run still running" : "");
	if (alive || descendants) {
		if (!o->quiet)
			msc_warn("%s", "processes of this run are still running: each finishes its own trace when it exits");
		free(spool_dir);
		spool_dir = NULL;
	}
	if (summary_print(o->output ? o->output : template + strlen(template)
			  - strlen(strrchr(template, '/') + 1),
			  o->output ? NULL : "%e.%p.memscope", (long)pid, sid, o->quiet) != 0
	    && status == 0)
		status = REC_EXIT_FAILED;
out:
	if (spool_dir && spool_dir_remove(spool_dir) != 0)
		msc_warn("cannot remove the spool folder '%s': %s", spool_dir, strerror(errno));
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	free(spool_dir);
	free(template);
	free(preload);
	free(path);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int status;

	msc_set_prog("ms-record");
	status = parse_options(argc, argv, &o);
	if (status < 0)
		status = run(&o);
	if (fclose(stdout) != 0 && status == 0) {
		msc_error("cannot write 'standard output': %s", strerror(errno));
		status = REC_EXIT_FAILED;
	}
	return status;
}
