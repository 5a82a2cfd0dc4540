/*
 * rt/sandbox.h - the runtime's own implementation of the WebAssembly
 * runtime interface that wasm2c code needs (art_wasm_rt_v1, wasm-rt.h of
 * wabt 1.0.32), built for many threads and many short-lived instances:
 *
 *  - traps unwind with longjmp to a per-thread target set by rt_sandbox_run;
 *  - linear memories live in 8 GiB reservations (4 GiB addressable + 4 GiB
 *    guard, PROT_NONE, MAP_NORESERVE) taken from a pool and given back
 *    reset: only the pages that were made read-write (the high-water mark)
 *    are dropped with MADV_DONTNEED and made PROT_NONE again;
 *  - grow_memory refuses to pass min(module max, the call's cap);
 *  - a SIGSEGV/SIGBUS handler on an alternate signal stack turns a fault
 *    inside a live reservation of the current call (or on the guard page of
 *    the thread's native stack) into a trap while the thread runs guest
 *    code; any other fault gets the previous handler or the default action;
 *  - a per-thread POSIX timer (SIGEV_THREAD_ID, RT_SANDBOX_DEADLINE_SIGNAL)
 *    stops guest code at its deadline. It never interrupts host code: host
 *    functions run between rt_sandbox_host_enter and _leave, and a deadline
 *    that passes meanwhile traps in _leave, once the host function is done.
 *
 * Why unwinding out of guest code is safe (docs/runtime.md, "Sandbox"):
 * an instance is discarded after its call, never resumed, so its state may
 * be left inconsistent; guest code holds no locks and owns no host memory
 * (it only touches its linear memory and calls memcpy-like libc functions);
 * host code is never interrupted (the timer handler does nothing while a
 * host function runs) and the resources the runtime hands out during a call
 * (memories, tables) are tracked in the call and released by
 * rt_sandbox_call_end, whatever state the instance was left in.
 *
 * Thread-safety: every function may be called from any thread; a call
 * (rt_sandbox_call) belongs to the thread that began it.
 */
#ifndef RT_SANDBOX_H
#define RT_SANDBOX_H

#include "art/wasm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_WASM_PAGE 65536u
/** Address space reserved per linear memory: 4 GiB + 4 GiB guard. */
#define RT_RESERVATION_SIZE ((size_t)8 << 30)
/** The largest linear memory (pages) any call may have: 4 GiB - 64 KiB. */
#define RT_MAX_PAGES 65535u
/** Reservations kept in the pool for reuse (the rest are unmapped). */
#define RT_POOL_MAX 64u
/** Reservations that may exist at once (address space: 8 GiB each). */
#define RT_RESERVATIONS_MAX 2048u
/** Memories and tables one call may allocate. */
#define RT_CALL_MAX_MEMORIES 4
#define RT_CALL_MAX_TABLES 4
/** Elements a funcref table may have. */
#define RT_MAX_TABLE_ELEMENTS (1u << 20)
/** Native stack a host function needs; less left at host entry traps. */
#define RT_HOST_STACK_RESERVE ((size_t)128 << 10)

/*
 * Trap codes. 1..8 are wasm-rt's (WASM_RT_TRAP_OOB .. _EXHAUSTION): the
 * guest's own traps. The runtime's start at 64.
 */
#define RT_TRAP_OOB 1
#define RT_TRAP_UNREACHABLE 5
#define RT_TRAP_EXHAUSTION 8
#define RT_TRAP_DEADLINE 64     /* the call's deadline passed */
#define RT_TRAP_STEP_LIMIT 65   /* a host function saw too many steps */
#define RT_TRAP_MEMORY_LIMIT 66 /* initial memory over the cap */
#define RT_TRAP_RESOURCE 67     /* no reservation or table memory for the call */
#define RT_TRAP_HOST 68         /* a host function stopped the guest */

/** One tracked memory of a call (private). */
typedef struct rt_sandbox_mem {
	void *mem;                /* wasm_rt_memory_t * */
	struct rt_reservation *r;
} rt_sandbox_mem;

/**
 * One guest call: the limits it runs under and what happened. Fill with
 * rt_sandbox_call_begin; the fields under "results" are read after
 * rt_sandbox_run; the rest is private.
 */
typedef struct rt_sandbox_call {
	uint32_t max_pages;       /* memory cap (pages) */
	uint32_t timeout_ms;      /* deadline of each rt_sandbox_run; 0 = none */
	/* results */
	int trap;                 /* 0, or the trap code of the last run */
	bool memory_limit_hit;    /* a grow or an allocation was refused by max_pages */
	bool deadline_passed;     /* the deadline passed (trap or not) */
	uint32_t peak_pages;      /* the largest memory size reached */
	/* private */
	rt_sandbox_mem mems[RT_CALL_MAX_MEMORIES];
	void *tables[RT_CALL_MAX_TABLES];
	struct rt_sandbox_thread *thread;
} rt_sandbox_call;

/** Reservation pool figures (for tests and benchmarks). */
typedef struct rt_sandbox_stats {
	size_t reservations;      /* mapped now (in use + pooled + thread caches) */
	size_t pooled;            /* in the shared free list */
	uint64_t created;         /* mmap calls since start */
	uint64_t reused;          /* allocations served from the pool or a thread cache */
} rt_sandbox_stats;

/**
 * Install the signal handlers (once per process; later calls return the
 * first result). Called by rt_sandbox_call_begin; call it early to fail
 * early.
 * @return 0; AF_EIO when a handler cannot be installed (the message says
 *         why, e.g. a sanitizer that keeps SIGSEGV for itself)
 */
int rt_sandbox_init(void);

/**
 * (Re)install the SIGSEGV/SIGBUS and deadline handlers. rt_sandbox_init
 * does it once; call it again only if something replaced them since (a
 * test harness that swaps signal handlers around each test, as cmocka
 * does). The handler found in place is kept and chained to for faults that
 * are not the sandbox's.
 * @return 0 or AF_EIO
 */
int rt_sandbox_install_handlers(void);

/** The runtime to pass to a native module's init. Static, never NULL. */
const art_wasm_rt_v1 *rt_sandbox_wasm_rt(void);

/**
 * Start a call on the calling thread: set up the thread (alternate signal
 * stack, deadline timer) on first use and make c the thread's current call.
 * @param[in] max_pages   memory cap, at most RT_MAX_PAGES (larger is clamped)
 * @param[in] timeout_ms  deadline of each rt_sandbox_run; 0 = none
 * @return 0; AF_EIO (signal handlers, timer or signal stack could not be
 *         set up), AF_ENOMEM, AF_EINVAL (a call is already active on this
 *         thread)
 */
int rt_sandbox_call_begin(rt_sandbox_call *c, uint32_t max_pages, uint32_t timeout_ms);

/**
 * Run fn(arg) as guest code: a trap (from the guest, a fault in its memory,
 * a native stack overflow, the deadline, or a host function) unwinds to
 * here. fn must only call into a native module and touch guest memory: it
 * may be stopped at any instruction outside host functions.
 * @return 0 when fn returned, else the trap code (also in c->trap)
 */
int rt_sandbox_run(rt_sandbox_call *c, void (*fn)(void *arg), void *arg);

/**
 * End the call: give back every memory and table still tracked (after a
 * trap the instance's own free is never called; after a normal run, call
 * the module's free before this). The thread has no current call after it.
 * NULL-safe.
 */
void rt_sandbox_call_end(rt_sandbox_call *c);

/**
 * Bracket every host function the guest calls. enter marks the thread as in
 * host code (the deadline no longer interrupts it) and traps with
 * RT_TRAP_EXHAUSTION when less than RT_HOST_STACK_RESERVE of native stack
 * is left; leave clears the mark and traps with RT_TRAP_DEADLINE when the
 * deadline passed in between. Outside rt_sandbox_run both do nothing.
 */
void rt_sandbox_host_enter(void);
void rt_sandbox_host_leave(void);

/**
 * Stop the guest: unwind to rt_sandbox_run with code (> 0). Only valid
 * while rt_sandbox_run runs on this thread; anywhere else it aborts (a bug).
 */
_Noreturn void rt_sandbox_trap(int code);

/** A static name for a trap code ("out of bounds memory access", ...). */
const char *rt_sandbox_trap_name(int code);

/** The current pool figures. */
void rt_sandbox_stats_get(rt_sandbox_stats *out);

/** Unmap every pooled reservation (tests; thread caches are kept). */
void rt_sandbox_pool_trim(void);

#endif
