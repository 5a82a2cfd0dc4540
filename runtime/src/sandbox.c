/*
 * sandbox.c - the runtime's WebAssembly runtime (art_wasm_rt_v1): traps,
 * pooled guard-page memories, funcref tables, the fault handler and the
 * per-thread deadline timer. See rt/sandbox.h for the contract and
 * docs/runtime.md ("Sandbox", "Limits") for the reasoning.
 *
 * Invariants:
 *  - a thread's state (rt_sandbox_thread) is touched by that thread only,
 *    and by signal handlers running on that thread; the flags the handlers
 *    read are volatile sig_atomic_t, written with signal fences around them;
 *  - in_guest is 1 only inside rt_sandbox_run, from before the deadline
 *    timer is (re-)armed until fn returns; in_host is 1 while a host function
 *    or one of the functions below runs (they may allocate, so they must not
 *    be unwound asynchronously);
 *  - the timer is never disarmed: armed_ns says when it fires next; the
 *    handler ignores (or re-arms for the current run) a signal that is not
 *    for the current run's deadline;
 *  - a reservation is either in use by exactly one call, cached by one
 *    thread, in the shared free list, or unmapped; it is reset (the pages
 *    that were read-write dropped and made PROT_NONE) before it leaves a
 *    call, so the next user sees zeroes; a reservation that cannot be reset
 *    is unmapped, never reused.
 */
#include "rt/sandbox.h"

#include "art/error.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <wasm-rt.h>

/* The runtime is built against the wasm-rt.h the modules are built against
 * (docs/abi.md: wasm-rt=wabt-1.0.32); a different layout must not compile. */
_Static_assert(sizeof(wasm_rt_memory_t) == 24 && offsetof(wasm_rt_memory_t, pages) == 8 &&
		       offsetof(wasm_rt_memory_t, size) == 16,
	       "wasm_rt_memory_t is not the wabt 1.0.32 layout");
_Static_assert(sizeof(wasm_rt_funcref_table_t) == 16 && sizeof(wasm_rt_funcref_t) == 24,
	       "wasm_rt_funcref_table_t is not the wabt 1.0.32 layout");
_Static_assert(WASM_RT_TRAP_OOB == RT_TRAP_OOB && WASM_RT_TRAP_UNREACHABLE == RT_TRAP_UNREACHABLE &&
		       WASM_RT_TRAP_EXHAUSTION == RT_TRAP_EXHAUSTION,
	       "wasm-rt trap codes changed");

#define DEADLINE_SIGNAL (SIGRTMIN + 4)
#define ALTSTACK_SIZE ((size_t)64 << 10)
#define ALTSTACK_MIN ((size_t)16 << 10)
/* A fault this close below the bottom of the native stack is an overflow. */
#define STACK_GUARD_SLACK ((uintptr_t)1 << 20)

typedef struct rt_reservation {
	uint8_t *base;
	size_t rw;                   /* bytes from base that are read-write (the high-water mark) */
	size_t keep;                 /* bytes left read-write (zeroed) by a reset: the last
					user's initial size, likely the next user's too */
	struct rt_reservation *next; /* in the free list */
} rt_reservation;

typedef struct rt_sandbox_thread {
	jmp_buf *target;                    /* where a trap unwinds to; NULL outside run */
	volatile sig_atomic_t in_guest;     /* inside rt_sandbox_run's guest section */
	volatile sig_atomic_t in_host;      /* inside a host function (never unwound asynchronously) */
	volatile sig_atomic_t deadline_hit; /* the timer fired for this run */
	int64_t deadline_ns;                /* CLOCK_MONOTONIC; set before in_guest */
	atomic_llong armed_ns;              /* expiry of the pending timer, 0 if none */
	rt_sandbox_call *call;
	timer_t timer;
	bool has_timer;
	void *altstack;                     /* ours, or NULL when the thread had one */
	uintptr_t stack_lo;                 /* lowest address of the native stack; 0 unknown */
	rt_reservation *cached;             /* one reservation kept for this thread */
} rt_sandbox_thread;

static _Thread_local rt_sandbox_thread *tls_thread;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;
static char init_msg[256];
static pthread_key_t thread_key;
static struct sigaction old_segv, old_bus;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static rt_reservation *pool_free;
static size_t pool_n_free;
static atomic_size_t n_reservations;
static atomic_uint_fast64_t n_created, n_reused;

/* ---- time ---------------------------------------------------------------- */

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- reservations --------------------------------------------------------- */

static void reservation_destroy(rt_reservation *r)
{
	if (!r)
		return;
	munmap(r->base, RT_RESERVATION_SIZE);
	free(r);
	atomic_fetch_sub(&n_reservations, 1);
}

/*
 * Drop what the last user wrote: MADV_DONTNEED over the high-water mark
 * (private anonymous pages read back as zeroes), then PROT_NONE again for
 * everything above the last user's initial size. Only what the call used
 * is touched, and the common case (the next memory has the same initial
 * size) needs no mprotect at all: allocate makes exactly [0, initial)
 * read-write, protecting or opening the difference.
 */
static int reservation_reset(rt_reservation *r)
{
	if (!r->rw)
		return 0;
	if (r->keep > r->rw)
		r->keep = r->rw;
	if (madvise(r->base, r->rw, MADV_DONTNEED) != 0 ||
	    (r->rw > r->keep && mprotect(r->base + r->keep, r->rw - r->keep, PROT_NONE) != 0))
		return -1;
	r->rw = r->keep;
	return 0;
}

/* Make exactly [0, bytes) of r read-write. */
static int reservation_open(rt_reservation *r, size_t bytes)
{
	if (bytes > r->rw && mprotect(r->base + r->rw, bytes - r->rw, PROT_READ | PROT_WRITE) != 0)
		return -1;
	if (bytes < r->rw && mprotect(r->base + bytes, r->rw - bytes, PROT_NONE) != 0)
		return -1;
	r->rw = bytes;
	r->keep = bytes;
	return 0;
}

static rt_reservation *reservation_take(rt_sandbox_thread *t)
{
	rt_reservation *r = t->cached;

	if (r) {
		t->cached = NULL;
		atomic_fetch_add(&n_reused, 1);
		return r;
	}
	pthread_mutex_lock(&pool_mu);
	r = pool_free;
	if (r) {
		pool_free = r->next;
		pool_n_free--;
	}
	pthread_mutex_unlock(&pool_mu);
	if (r) {
		r->next = NULL;
		atomic_fetch_add(&n_reused, 1);
		return r;
	}
	if (atomic_fetch_add(&n_reservations, 1) >= RT_RESERVATIONS_MAX) {
		atomic_fetch_sub(&n_reservations, 1);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r)
		r->base = mmap(NULL, RT_RESERVATION_SIZE, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!r || r->base == MAP_FAILED) {
		free(r);
		atomic_fetch_sub(&n_reservations, 1);
		return NULL;
	}
	atomic_fetch_add(&n_created, 1);
	return r;
}

static void reservation_give(rt_sandbox_thread *t, rt_reservation *r)
{
	if (reservation_reset(r) != 0) {
		reservation_destroy(r);
		return;
	}
	if (t && !t->cached) {
		t->cached = r;
		return;
	}
	pthread_mutex_lock(&pool_mu);
	if (pool_n_free < RT_POOL_MAX) {
		r->next = pool_free;
		pool_free = r;
		pool_n_free++;
		r = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	reservation_destroy(r);
}

void rt_sandbox_stats_get(rt_sandbox_stats *out)
{
	pthread_mutex_lock(&pool_mu);
	out->pooled = pool_n_free;
	pthread_mutex_unlock(&pool_mu);
	out->reservations = atomic_load(&n_reservations);
	out->created = atomic_load(&n_created);
	out->reused = atomic_load(&n_reused);
}

void rt_sandbox_pool_trim(void)
{
	rt_reservation *list;

	pthread_mutex_lock(&pool_mu);
	list = pool_free;
	pool_free = NULL;
	pool_n_free = 0;
	pthread_mutex_unlock(&pool_mu);
	while (list) {
		rt_reservation *next = list->next;

		reservation_destroy(list);
		list = next;
	}
}

/* ---- signals -------------------------------------------------------------- */

static void block_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGSEGV);
	sigaddset(set, SIGBUS);
	sigaddset(set, DEADLINE_SIGNAL);
}

/* Unwind from a signal handler. The handler's mask would stay in force after
 * a plain longjmp, so the runtime's signals are unblocked first (only on
 * this path: the normal path never pays a sigprocmask). in_host keeps a
 * deadline signal that arrives in between from jumping on its own. */
static _Noreturn void trap_from_signal(rt_sandbox_thread *t, int code)
{
	sigset_t set;

	t->in_host = 1;
	block_set(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	longjmp(*t->target, code);
}

/* Not ours: the previous handler, or the default action (a real crash must
 * still crash, with its core dump). */
static void chain(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
	struct sigaction dfl;

	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
	    old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	/* A fault re-executes on return and gets the default action; a signal
	 * sent with kill() would not come back, so send it again. */
	if (si->si_code <= 0)
		raise(sig);
}

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	rt_sandbox_thread *t = tls_thread;
	int saved_errno = errno;

	if (t && t->in_guest && !t->in_host && t->target && t->call) {
		uintptr_t a = (uintptr_t)si->si_addr;
		size_t i;

		for (i = 0; i < RT_CALL_MAX_MEMORIES; i++) {
			const rt_reservation *r = t->call->mems[i].r;

			if (r && a - (uintptr_t)r->base < RT_RESERVATION_SIZE)
				trap_from_signal(t, RT_TRAP_OOB);
		}
		if (t->stack_lo && a < t->stack_lo + 4096 && a + STACK_GUARD_SLACK >= t->stack_lo)
			trap_from_signal(t, RT_TRAP_EXHAUSTION);
	}
	errno = saved_errno;
	chain(sig, si, uc);
}

static int arm(rt_sandbox_thread *t, int64_t deadline_ns);

/*
 * The timer is one-shot and left armed after a run (disarming costs a
 * system call per invocation). A signal that comes for an earlier run, or
 * while no guest code runs, is stale: if a run is active with a later
 * deadline the timer is re-armed for it (timer_settime is
 * async-signal-safe), else nothing happens.
 */
static void deadline_handler(int sig, siginfo_t *si, void *uc)
{
	rt_sandbox_thread *t = tls_thread;
	int saved_errno = errno;

	(void)sig;
	(void)si;
	(void)uc;
	if (!t)
		return;
	atomic_store_explicit(&t->armed_ns, 0, memory_order_relaxed);
	if (!t->in_guest || !t->target)
		goto out;
	if (mono_ns() < t->deadline_ns) {
		if (arm(t, t->deadline_ns) == 0)
			atomic_store_explicit(&t->armed_ns, t->deadline_ns, memory_order_relaxed);
		goto out;
	}
	t->deadline_hit = 1;
	if (t->in_host)
		goto out; /* rt_sandbox_host_leave traps once the host function is done */
	errno = saved_errno;
	trap_from_signal(t, RT_TRAP_DEADLINE);
out:
	errno = saved_errno;
}

static void thread_destroy(void *p);

static pthread_mutex_t handlers_mu = PTHREAD_MUTEX_INITIALIZER;

int rt_sandbox_install_handlers(void)
{
	struct sigaction sa, cur;
	int rc = 0;

	pthread_mutex_lock(&handlers_mu);
	memset(&sa, 0, sizeof(sa));
	block_set(&sa.sa_mask);
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	/* Keep the handler found before ours to chain to (not ours again). */
	if (sigaction(SIGSEGV, NULL, &cur) == 0 && cur.sa_sigaction != fault_handler &&
	    sigaction(SIGSEGV, &sa, &old_segv) != 0)
		rc = art_error_set(AF_EIO, "sandbox: cannot install the fault handler: %s", strerror(errno));
	if (rc == 0 && sigaction(SIGBUS, NULL, &cur) == 0 && cur.sa_sigaction != fault_handler &&
	    sigaction(SIGBUS, &sa, &old_bus) != 0)
		rc = art_error_set(AF_EIO, "sandbox: cannot install the fault handler: %s", strerror(errno));
	/* A sanitizer may keep SIGSEGV for itself and silently ignore us. */
	if (rc == 0 && (sigaction(SIGSEGV, NULL, &cur) != 0 || cur.sa_sigaction != fault_handler))
		rc = art_error_set(AF_EIO, "sandbox: the SIGSEGV handler was not installed (under "
				   "AddressSanitizer, run with ASAN_OPTIONS=allow_user_segv_handler=1)");
	if (rc == 0) {
		sa.sa_sigaction = deadline_handler;
		/* SA_RESTART: a host function blocked in a system call is not disturbed. */
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
		if (sigaction(DEADLINE_SIGNAL, &sa, NULL) != 0)
			rc = art_error_set(AF_EIO, "sandbox: cannot install the deadline handler: %s",
					   strerror(errno));
	}
	pthread_mutex_unlock(&handlers_mu);
	return rc;
}

static void do_init(void)
{
	if (pthread_key_create(&thread_key, thread_destroy) != 0) {
		init_rc = AF_EIO;
		snprintf(init_msg, sizeof(init_msg), "sandbox: cannot create a thread key");
		return;
	}
	if ((init_rc = rt_sandbox_install_handlers()) < 0)
		snprintf(init_msg, sizeof(init_msg), "%s", art_error_last());
}

int rt_sandbox_init(void)
{
	pthread_once(&init_once, do_init);
	if (init_rc < 0)
		return art_error_set(init_rc, "%s", init_msg);
	return 0;
}

/* ---- threads --------------------------------------------------------------- */

static void thread_destroy(void *p)
{
	rt_sandbox_thread *t = p;
	stack_t cur;

	if (!t)
		return;
	if (t->has_timer)
		timer_delete(t->timer);
	if (t->altstack) {
		/* Only if it is still ours (a sanitizer may have taken it down). */
		if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == t->altstack &&
		    !(cur.ss_flags & SS_DISABLE)) {
			stack_t off;

			memset(&off, 0, sizeof(off));
			off.ss_flags = SS_DISABLE;
			sigaltstack(&off, NULL);
		}
		munmap((uint8_t *)t->altstack - getpagesize(), ALTSTACK_SIZE + (size_t)getpagesize());
	}
	if (t->cached)
		reservation_give(NULL, t->cached);
	if (tls_thread == t)
		tls_thread = NULL;
	free(t);
}

static int thread_setup(rt_sandbox_thread *t)
{
	struct sigevent sev;
	pthread_attr_t attr;
	stack_t cur;

	/* The fault handler needs a stack of its own: a native stack overflow
	 * leaves none. Keep one the thread already has (e.g. a sanitizer's). */
	if (sigaltstack(NULL, &cur) != 0)
		return art_error_set(AF_EIO, "sandbox: sigaltstack: %s", strerror(errno));
	if ((cur.ss_flags & SS_DISABLE) || cur.ss_size < ALTSTACK_MIN) {
		size_t page = (size_t)getpagesize();
		uint8_t *m = mmap(NULL, ALTSTACK_SIZE + page, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		stack_t ss;

		if (m == MAP_FAILED)
			return art_error_set(AF_ENOMEM, "sandbox: no memory for a signal stack");
		mprotect(m, page, PROT_NONE); /* guard below the signal stack */
		memset(&ss, 0, sizeof(ss));
		ss.ss_sp = m + page;
		ss.ss_size = ALTSTACK_SIZE;
		if (sigaltstack(&ss, NULL) != 0) {
			munmap(m, ALTSTACK_SIZE + page);
			return art_error_set(AF_EIO, "sandbox: sigaltstack: %s", strerror(errno));
		}
		t->altstack = m + page;
	}
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *addr = NULL;
		size_t size = 0;

		if (pthread_attr_getstack(&attr, &addr, &size) == 0)
			t->stack_lo = (uintptr_t)addr;
		pthread_attr_destroy(&attr);
	}
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = DEADLINE_SIGNAL;
	sev._sigev_un._tid = gettid(); /* sigev_notify_thread_id */
	if (timer_create(CLOCK_MONOTONIC, &sev, &t->timer) != 0)
		return art_error_set(AF_EIO, "sandbox: timer_create: %s", strerror(errno));
	t->has_timer = true;
	return 0;
}

static int thread_get(rt_sandbox_thread **out)
{
	rt_sandbox_thread *t = tls_thread;
	int rc;

	*out = NULL;
	if (t) {
		*out = t;
		return 0;
	}
	if ((rc = rt_sandbox_init()) < 0)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t)
		return art_error_set(AF_ENOMEM, "sandbox: out of memory");
	if ((rc = thread_setup(t)) < 0 || pthread_setspecific(thread_key, t) != 0) {
		if (rc == 0)
			rc = art_error_set(AF_EIO, "sandbox: pthread_setspecific failed");
		thread_destroy(t);
		return rc;
	}
	tls_thread = t;
	*out = t;
	return 0;
}

/* ---- calls ------------------------------------------------------------------ */

int rt_sandbox_call_begin(rt_sandbox_call *c, uint32_t max_pages, uint32_t timeout_ms)
{
	rt_sandbox_thread *t;
	int rc;

	if (!c)
		return art_error_set(AF_EINVAL, "sandbox: NULL call");
	memset(c, 0, sizeof(*c));
	if ((rc = thread_get(&t)) < 0)
		return rc;
	if (t->call)
		return art_error_set(AF_EINVAL, "sandbox: a call is already active on this thread");
	c->max_pages = max_pages > RT_MAX_PAGES ? RT_MAX_PAGES : max_pages;
	c->timeout_ms = timeout_ms;
	c->thread = t;
	t->call = c;
	return 0;
}

void rt_sandbox_call_end(rt_sandbox_call *c)
{
	size_t i;

	if (!c || !c->thread)
		return;
	for (i = 0; i < RT_CALL_MAX_MEMORIES; i++) {
		if (c->mems[i].r) {
			wasm_rt_memory_t *m = c->mems[i].mem;

			reservation_give(c->thread, c->mems[i].r);
			m->data = NULL;
			m->pages = m->size = 0;
			c->mems[i].r = NULL;
			c->mems[i].mem = NULL;
		}
	}
	for (i = 0; i < RT_CALL_MAX_TABLES; i++) {
		if (c->tables[i]) {
			wasm_rt_funcref_table_t *tb = c->tables[i];

			free(tb->data);
			tb->data = NULL;
			tb->size = 0;
			c->tables[i] = NULL;
		}
	}
	if (c->thread->call == c)
		c->thread->call = NULL;
	c->thread = NULL;
}

static int arm(rt_sandbox_thread *t, int64_t deadline_ns)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000);
	its.it_value.tv_nsec = (long)(deadline_ns % 1000000000);
	return timer_settime(t->timer, TIMER_ABSTIME, &its, NULL);
}

/* Kept out of line so that nothing of the caller's frame lives across the
 * setjmp: after a longjmp only t and c (never modified) are used. */
static __attribute__((noinline)) int run_guarded(rt_sandbox_thread *t, rt_sandbox_call *c,
						 void (*fn)(void *), void *arg)
{
	jmp_buf jb;
	int code;

	t->target = &jb;
	t->deadline_hit = 0;
	code = setjmp(jb);
	if (code == 0) {
		int64_t armed;

		if (c->timeout_ms)
			t->deadline_ns = mono_ns() + (int64_t)c->timeout_ms * 1000000;
		atomic_signal_fence(memory_order_seq_cst);
		t->in_guest = 1;
		atomic_signal_fence(memory_order_seq_cst);
		/* After in_guest is set, so that a firing timer is never missed:
		 * a pending timer that expires no later than this deadline will
		 * re-arm itself for it; otherwise arm now. */
		armed = atomic_load_explicit(&t->armed_ns, memory_order_relaxed);
		if (c->timeout_ms && (armed == 0 || armed > t->deadline_ns)) {
			if (arm(t, t->deadline_ns) != 0) {
				t->in_guest = 0;
				code = RT_TRAP_RESOURCE;
				goto out;
			}
			atomic_store_explicit(&t->armed_ns, t->deadline_ns, memory_order_relaxed);
		}
		fn(arg);
		atomic_signal_fence(memory_order_seq_cst);
		t->in_guest = 0;
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		t->in_guest = 0;
		t->in_host = 0;
	}
out:
	t->target = NULL;
	return code;
}

int rt_sandbox_run(rt_sandbox_call *c, void (*fn)(void *), void *arg)
{
	rt_sandbox_thread *t = c ? c->thread : NULL;
	int code;

	if (!t || t != tls_thread || t->call != c || t->target) {
		fputs("agentfactory: rt_sandbox_run without its call on this thread\n", stderr);
		abort();
	}
	code = run_guarded(t, c, fn, arg);
	c->trap = code;
	if (t->deadline_hit || code == RT_TRAP_DEADLINE ||
	    (c->timeout_ms && mono_ns() >= t->deadline_ns))
		c->deadline_passed = true;
	return code;
}

void rt_sandbox_host_enter(void)
{
	rt_sandbox_thread *t = tls_thread;

	if (!t || !t->in_guest)
		return;
	t->in_host = 1;
	atomic_signal_fence(memory_order_seq_cst);
	/* Deep guest recursion must not make host code overflow the stack. */
	if (t->stack_lo && (uintptr_t)__builtin_frame_address(0) < t->stack_lo + RT_HOST_STACK_RESERVE)
		rt_sandbox_trap(RT_TRAP_EXHAUSTION);
}

void rt_sandbox_host_leave(void)
{
	rt_sandbox_thread *t = tls_thread;

	if (!t || !t->in_guest)
		return;
	atomic_signal_fence(memory_order_seq_cst);
	t->in_host = 0;
	atomic_signal_fence(memory_order_seq_cst);
	if (t->deadline_hit)
		rt_sandbox_trap(RT_TRAP_DEADLINE);
}

_Noreturn void rt_sandbox_trap(int code)
{
	rt_sandbox_thread *t = tls_thread;

	if (!t || !t->target || !t->in_guest) {
		fputs("agentfactory: trap outside guest code\n", stderr);
		abort();
	}
	t->in_host = 1;
	longjmp(*t->target, code > 0 ? code : RT_TRAP_HOST);
}

const char *rt_sandbox_trap_name(int code)
{
	switch (code) {
	case 0: return "no trap";
	case RT_TRAP_OOB: return "out of bounds memory access";
	case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
	case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
	case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
	case RT_TRAP_UNREACHABLE: return "unreachable executed";
	case WASM_RT_TRAP_CALL_INDIRECT: return "invalid indirect call";
	case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
	case RT_TRAP_EXHAUSTION: return "call stack exhausted";
	case RT_TRAP_DEADLINE: return "deadline exceeded";
	case RT_TRAP_STEP_LIMIT: return "step limit exceeded";
	case RT_TRAP_MEMORY_LIMIT: return "memory limit exceeded";
	case RT_TRAP_RESOURCE: return "the host is out of resources";
	case RT_TRAP_HOST: return "stopped by the host";
	default: return "unknown trap";
	}
}

/* ---- art_wasm_rt_v1 ----------------------------------------------------------- */

static rt_sandbox_call *current_call(const char *what)
{
	rt_sandbox_thread *t = tls_thread;

	if (!t || !t->call) {
		fprintf(stderr, "agentfactory: %s outside a sandbox call\n", what);
		abort();
	}
	return t->call;
}

static void sb_trap(int code)
{
	rt_sandbox_trap(code > 0 ? code : RT_TRAP_HOST);
}

static rt_sandbox_mem *find_mem(rt_sandbox_call *c, void *mem)
{
	size_t i;

	for (i = 0; i < RT_CALL_MAX_MEMORIES; i++)
		if (c->mems[i].r && c->mems[i].mem == mem)
			return &c->mems[i];
	return NULL;
}

static void sb_allocate_memory(void *mem, uint32_t initial, uint32_t max)
{
	wasm_rt_memory_t *m = mem;
	rt_sandbox_call *c = current_call("allocate_memory");
	rt_sandbox_mem *slot = NULL;
	rt_reservation *r;
	uint32_t limit = max < c->max_pages ? max : c->max_pages;
	size_t i;

	rt_sandbox_host_enter();
	memset(m, 0, sizeof(*m));
	for (i = 0; i < RT_CALL_MAX_MEMORIES && !slot; i++)
		if (!c->mems[i].r)
			slot = &c->mems[i];
	if (!slot)
		rt_sandbox_trap(RT_TRAP_RESOURCE);
	if (initial > limit) {
		c->memory_limit_hit = true;
		rt_sandbox_trap(RT_TRAP_MEMORY_LIMIT);
	}
	r = reservation_take(c->thread);
	if (!r)
		rt_sandbox_trap(RT_TRAP_RESOURCE);
	if (reservation_open(r, (size_t)initial * RT_WASM_PAGE) != 0) {
		reservation_give(c->thread, r);
		rt_sandbox_trap(RT_TRAP_RESOURCE);
	}
	slot->r = r;
	slot->mem = m;
	m->data = r->base;
	m->pages = initial;
	m->max_pages = max;
	m->size = initial * RT_WASM_PAGE;
	if (initial > c->peak_pages)
		c->peak_pages = initial;
	rt_sandbox_host_leave();
}

static uint32_t sb_grow_memory(void *mem, uint32_t delta)
{
	wasm_rt_memory_t *m = mem;
	rt_sandbox_call *c = current_call("grow_memory");
	rt_sandbox_mem *slot;
	uint32_t old, limit;
	uint64_t next;

	rt_sandbox_host_enter();
	slot = find_mem(c, mem);
	if (!slot)
		rt_sandbox_trap(RT_TRAP_HOST);
	old = m->pages;
	next = (uint64_t)old + delta;
	limit = m->max_pages < c->max_pages ? m->max_pages : c->max_pages;
	if (next > limit) {
		/* Refused by the cap rather than by the module's own maximum. */
		if (next <= m->max_pages)
			c->memory_limit_hit = true;
		rt_sandbox_host_leave();
		return UINT32_MAX;
	}
	if (delta) {
		size_t from = (size_t)old * RT_WASM_PAGE, to = (size_t)next * RT_WASM_PAGE;

		if (mprotect(m->data + from, to - from, PROT_READ | PROT_WRITE) != 0) {
			rt_sandbox_host_leave();
			return UINT32_MAX;
		}
		if (to > slot->r->rw)
			slot->r->rw = to;
		m->pages = (uint32_t)next;
		m->size = (uint32_t)to;
		if (m->pages > c->peak_pages)
			c->peak_pages = m->pages;
	}
	rt_sandbox_host_leave();
	return old;
}

static void sb_free_memory(void *mem)
{
	wasm_rt_memory_t *m = mem;
	rt_sandbox_call *c = current_call("free_memory");
	rt_sandbox_mem *slot;

	rt_sandbox_host_enter();
	slot = find_mem(c, mem);
	if (slot) {
		reservation_give(c->thread, slot->r);
		slot->r = NULL;
		slot->mem = NULL;
		m->data = NULL;
		m->pages = m->size = 0;
	}
	rt_sandbox_host_leave();
}

static void sb_allocate_funcref_table(void *table, uint32_t elements, uint32_t max)
{
	wasm_rt_funcref_table_t *tb = table;
	rt_sandbox_call *c = current_call("allocate_funcref_table");
	size_t i, slot = RT_CALL_MAX_TABLES;

	rt_sandbox_host_enter();
	memset(tb, 0, sizeof(*tb));
	for (i = 0; i < RT_CALL_MAX_TABLES && slot == RT_CALL_MAX_TABLES; i++)
		if (!c->tables[i])
			slot = i;
	if (slot == RT_CALL_MAX_TABLES || elements > RT_MAX_TABLE_ELEMENTS)
		rt_sandbox_trap(RT_TRAP_RESOURCE);
	tb->data = calloc(elements ? elements : 1, sizeof(wasm_rt_funcref_t));
	if (!tb->data)
		rt_sandbox_trap(RT_TRAP_RESOURCE);
	tb->size = elements;
	tb->max_size = max;
	c->tables[slot] = tb;
	rt_sandbox_host_leave();
}

static void sb_free_funcref_table(void *table)
{
	wasm_rt_funcref_table_t *tb = table;
	rt_sandbox_call *c = current_call("free_funcref_table");
	size_t i;

	rt_sandbox_host_enter();
	for (i = 0; i < RT_CALL_MAX_TABLES; i++) {
		if (c->tables[i] == tb) {
			free(tb->data);
			tb->data = NULL;
			tb->size = 0;
			c->tables[i] = NULL;
		}
	}
	rt_sandbox_host_leave();
}

static const art_wasm_rt_v1 sandbox_rt = {
	sb_trap, sb_allocate_memory, sb_grow_memory, sb_free_memory,
	sb_allocate_funcref_table, sb_free_funcref_table,
};

const art_wasm_rt_v1 *rt_sandbox_wasm_rt(void)
{
	return &sandbox_rt;
}
