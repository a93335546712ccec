/*
 * spool.h - the contract between the recorder library (libmsrecord.so) and
 * the launcher (ms-record): the layout of the spool file the recorder keeps
 * its event buffers in, and how a launcher finishes ("salvages") the trace of
 * a process that died without finishing it.
 *
 * WHY A SPOOL
 * Each traced process maps one spool file MAP_SHARED. Its threads publish
 * fixed-layout events into per-thread single-producer/single-consumer rings
 * living in that mapping; the writer thread merges them by time, encodes
 * them with libtrace and appends chunks to the trace. Because the rings live
 * in a shared file mapping, the kernel keeps every published event even when
 * the process is SIGKILLed, and a launcher that outlives it can finish the
 * trace from the spool.
 *
 * NAMES
 * The spool of a process writing trace T is "<spool dir>/<basename of T>.spool";
 * the spool dir is $MEMSCOPE_SPOOL_DIR, else T's folder. A launcher that
 * wants to find every spool of its run (children included) sets
 * MEMSCOPE_SPOOL_DIR to a private folder and, once the program is gone,
 * calls memscope_salvage() on each "*.spool" file in it.
 *
 * SALVAGE
 *   int memscope_salvage(const char *spool_path, char *err, size_t errlen);
 * exported (default visibility) by libmsrecord.so. The launcher dlopen()s
 * the library RTLD_LOCAL with MEMSCOPE_SALVAGE=1 in its own environment: that
 * variable keeps the library's constructor inert (no recording in the
 * launcher). Returns
 *    0  the spool was handled and unlinked: the trace was finished with an
 *       END record (reason 4 "salvaged", status -1), or the spool belonged to
 *       a process that had already finished its trace (state FINISHED);
 *    1  left alone: its process is still alive (a daemon that outlived the
 *       launcher); the process will finish and unlink it itself;
 *   -1  error, a one-line reason in ERR ("cannot open 'x': ...").
 * Salvage truncates the trace to the checkpointed length, then replays every
 * event published after the checkpointed ring tails, so that no event is
 * lost and none is written twice.
 *
 * WHAT EACH WAY OF ENDING KEEPS (for the README)
 *   exit / return from main  every event; END reason 1 with the exit status
 *                            (main's return value is captured by wrapping
 *                            main through __libc_start_main).
 *   _exit / _Exit            every event; END reason 1 with the status.
 *   abort, SIGSEGV, SIGBUS,  every event published before the signal; END
 *   SIGILL, SIGFPE           reason 3 with the signal number; then the
 *                            previous disposition is restored and the signal
 *                            re-raised (programs' own handlers stay chained).
 *   SIGKILL (or any death    every event published before the kill: the
 *   without finishing)       launcher salvages the spool, END reason 4.
 *                            An allocation call interrupted half-way (between
 *                            the real call and publishing) is lost.
 *   thread exit              THREAD_EXIT after the thread's last event; its
 *                            ring is reused once drained.
 *   fork without exec        the child writes its own trace (%p = its pid)
 *                            with the FORKED flag; MEMSCOPE_FOLLOW=0: the
 *                            child records nothing.
 *   exec in the same pid     END reason 2; the trace is renamed to
 *                            "<name minus .memscope>.exec<N>.memscope" and the
 *                            new image writes the original name with
 *                            exec_generation N+1. A failed exec renames back
 *                            and recording goes on in the same file (and
 *                            spool). The old image's spool stays, FINISHED,
 *                            until the new image (MEMSCOPE_OLD_SPOOL) or the
 *                            launcher removes it.
 *   vfork child              exec and _exit in a vfork child (same memory)
 *                            leave the parent's trace alone; the exec'd
 *                            program records itself under its own pid.
 *   closed fds, chdir        the trace is reopened by absolute path.
 *   drop mode, full buffers  events are dropped and counted (DROPPED
 *                            records, END's dropped total); never silently.
 *   signal handler that      recorded like any other call; if the thread's
 *   allocates                ring is full at that moment the event is
 *                            dropped and counted (waiting could deadlock).
 *
 * LAYOUT (native byte order and alignment: a spool is only ever read on the
 * machine that wrote it, by the same library build: spool_version guards)
 *   [0, SPOOL_HEADER_SIZE)           struct spool_header
 *   rings_off                        struct spool_ring[SPOOL_MAX_RINGS]
 *   stacks_off                       struct spool_stack[stack_capacity]
 *   hash_off                         uint32_t[hash_slots] (node ids)
 *   data_off                         ring slot storage, carved on demand
 */
#ifndef MEMSCOPE_SPOOL_H
#define MEMSCOPE_SPOOL_H

#include <stdint.h>
#include <stddef.h>

#define SPOOL_MAGIC "MSSPOOL1"
#define SPOOL_VERSION 1u
#define SPOOL_MAX_RINGS 1024u
#define SPOOL_PATH_MAX 4096

/* spool_header.state */
enum spool_state {
	SPOOL_RUNNING = 1,
	SPOOL_FINISHED = 2,   /* trace complete (END written); just unlink */
};

/* spool_ring.state */
enum spool_ring_state {
	RING_FREE = 0,        /* never used, or drained and reclaimed */
	RING_LIVE = 1,        /* owned by a running thread */
	RING_DEAD = 2,        /* its thread exited; drained then reclaimed */
};

/* Event types stored in rings (internal, not the trace's codes). */
enum spool_ev_type {
	EV_PAD = 0,           /* filler to the end of the ring */
	EV_ALLOC,             /* addr, size, stack; ext slot: old, alignment */
	EV_FREE,              /* addr, stack */
	EV_THREAD_START,      /* addr = tid, size = parent thread index */
	EV_THREAD_NAME,       /* payload: name */
	EV_THREAD_EXIT,
	EV_MODULE_LOAD,       /* payload: see recorder.h (module blob) */
	EV_MODULE_UNLOAD,     /* addr = module id */
	EV_LABEL,             /* addr; payload "name\0type" */
	EV_TASK_BEGIN,        /* addr = task id; payload: name */
	EV_TASK_END,          /* addr = task id */
	EV_DROPPED,           /* addr = events, size = bytes */
};

/* One 32-byte ring slot. An event is one slot plus ext slots (nslots in
 * all): ALLOC of the realloc and aligned families carries one ext slot
 * {old_addr, alignment}; blob events carry `size` bytes of payload. */
struct spool_ev {
	uint8_t type;
	uint8_t func;
	uint16_t nslots;
	uint32_t stack;
	uint64_t time;        /* raw clock ticks (see spool_header clock) */
	uint64_t addr;
	uint64_t size;
};
#define SPOOL_SLOT 32u

/* A ring's control block. head is written only by its thread, tail only by
 * the writer (after the chunk holding the events is in the trace file);
 * positions count slots and never wrap (index = pos & (nslots - 1)). */
struct spool_ring {
	_Alignas(64) volatile uint64_t head;
	volatile uint64_t inflight;   /* realloc in progress: pre-call ticks */
	_Alignas(64) volatile uint64_t tail;
	volatile uint32_t state;      /* enum spool_ring_state */
	uint32_t thread;              /* thread index of the current owner */
	uint64_t slots_off;           /* offset of the slots in the spool */
	uint32_t nslots;              /* power of two */
	uint32_t tid;
	/* drop mode: dropped since the thread's last DROPPED event (written by
	 * the thread; the writer emits what is left when the trace ends) */
	volatile uint64_t drop_events, drop_bytes;
};

/* An interned stack node; ready is set last (release) by its creator. */
struct spool_stack {
	uint64_t ip;
	uint32_t parent;
	volatile uint32_t ready;
};

/* Written by the writer after each flush; two copies, the valid one is
 * cp[gen & 1] (gen is bumped after the copy is complete). */
struct spool_checkpoint {
	uint64_t trace_len;           /* bytes of the trace file that count */
	uint64_t stacks_emitted;      /* STACK records written */
	uint64_t events;              /* ALLOC + FREE records written */
	uint64_t dropped;             /* events dropped so far (all threads) */
	uint64_t last_time;           /* last time written, ns */
	uint64_t tails[SPOOL_MAX_RINGS];
};

struct spool_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t total_size;
	volatile uint32_t state;      /* enum spool_state */
	uint32_t pid;
	uint64_t start_ticks;         /* ticks at trace time 0 */
	uint64_t mult;                /* ns = (ticks - start_ticks) * mult >> 32 */
	uint64_t rings_off, stacks_off, hash_off, data_off;
	uint64_t stack_capacity;      /* nodes, id 1..capacity-1 */
	uint64_t hash_slots;          /* power of two */
	volatile uint64_t stack_count;  /* last node id handed out */
	volatile uint64_t data_used;  /* bytes of the data area carved */
	volatile uint64_t next_thread;  /* thread indexes handed out */
	volatile uint64_t cp_gen;
	struct spool_checkpoint cp[2];
	char trace_path[SPOOL_PATH_MAX];
	uint8_t session[16];
};

#define SPOOL_HEADER_SIZE ((sizeof(struct spool_header) + 4095) & ~(size_t)4095)

#ifdef __cplusplus
extern "C" {
#endif
int memscope_salvage(const char *spool_path, char *err, size_t errlen);
#ifdef __cplusplus
}
#endif

#endif
