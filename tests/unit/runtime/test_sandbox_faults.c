/*
 * test_sandbox_faults.c - the sandbox when the kernel says no: mmap,
 * mprotect, madvise, sigaltstack and timer_create fail in turn (link-time
 * --wrap, see TEST_WRAP in the Makefile) while a call allocates, grows,
 * frees and re-allocates guest memory and tables through the wasm runtime
 * the native modules use (rt_sandbox_wasm_rt). Each failure must come back
 * as a trap (RT_TRAP_RESOURCE), a refused grow or a call_begin error: never
 * a crash, never memory handed out that is not read-write. Every attempt
 * runs on a fresh thread, so that the per-thread set-up is exercised too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "rt/sandbox.h"

#include "art/error.h"
#include "art/wasm.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <wasm-rt.h>

static long fail_at, calls;
static int failed;
static const char *failed_call;

static bool should_fail(const char *call)
{
	long at = __atomic_load_n(&fail_at, __ATOMIC_SEQ_CST);

	if (at <= 0 || __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST) != at)
		return false;
	failed_call = call;
	__atomic_store_n(&failed, 1, __ATOMIC_SEQ_CST);
	return true;
}

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_mprotect(void *addr, size_t len, int prot);
int __real_madvise(void *addr, size_t len, int advice);
int __real_sigaltstack(const stack_t *ss, stack_t *old);
int __real_timer_create(clockid_t clock, struct sigevent *sev, timer_t *timer);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_mprotect(void *addr, size_t len, int prot);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_sigaltstack(const stack_t *ss, stack_t *old);
int __wrap_timer_create(clockid_t clock, struct sigevent *sev, timer_t *timer);

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (should_fail("mmap")) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
	if (should_fail("mprotect")) {
		errno = ENOMEM;
		return -1;
	}
	return __real_mprotect(addr, len, prot);
}

int __wrap_madvise(void *addr, size_t len, int advice)
{
	if (should_fail("madvise")) {
		errno = EAGAIN;
		return -1;
	}
	return __real_madvise(addr, len, advice);
}

/* Only a change fails: querying (ss == NULL) always works. */
int __wrap_sigaltstack(const stack_t *ss, stack_t *old)
{
	if (ss && should_fail("sigaltstack")) {
		errno = ENOMEM;
		return -1;
	}
	return __real_sigaltstack(ss, old);
}

int __wrap_timer_create(clockid_t clock, struct sigevent *sev, timer_t *timer)
{
	if (should_fail("timer_create")) {
		errno = EAGAIN;
		return -1;
	}
	return __real_timer_create(clock, sev, timer);
}

/* ---- the guest's work ------------------------------------------------------ */

typedef struct work {
	wasm_rt_memory_t mem, mem2;
	wasm_rt_funcref_table_t table;
	uint32_t grown;
	bool freed;
} work;

static void guest(void *arg)
{
	const art_wasm_rt_v1 *rt = rt_sandbox_wasm_rt();
	work *w = arg;

	rt->allocate_memory(&w->mem, 1, 8);
	w->mem.data[0] = 1;                    /* read-write, or we crash here */
	w->mem.data[w->mem.size - 1] = 1;
	w->grown = rt->grow_memory(&w->mem, 2);
	if (w->grown != UINT32_MAX)
		w->mem.data[w->mem.size - 1] = 2;  /* the grown pages are read-write */
	rt->allocate_funcref_table(&w->table, 4, 16);
	rt->free_funcref_table(&w->table);
	rt->free_memory(&w->mem);
	w->freed = true;
	/* The reservation just given back is reused (and was reset). */
	rt->allocate_memory(&w->mem2, 2, 8);
	w->mem2.data[2 * 65536 - 1] = 3;
	rt->free_memory(&w->mem2);
}

typedef struct attempt {
	int begin_rc, run_rc;
	work w;
} attempt;

static void *attempt_thread(void *arg)
{
	attempt *a = arg;
	rt_sandbox_call c;

	memset(&c, 0, sizeof(c));
	a->begin_rc = rt_sandbox_call_begin(&c, 16, 0);
	if (a->begin_rc == 0) {
		a->run_rc = rt_sandbox_run(&c, guest, &a->w);
		rt_sandbox_call_end(&c);
	}
	return NULL;
}

static void test_sandbox_faults__kernel_refusals_are_traps_or_errors(void **state)
{
	long n;
	int points = 0, traps = 0, begin_errors = 0, refused_grows = 0, survived = 0;

	(void)state;
	assert_int_equal(rt_sandbox_init(), 0);
	for (n = 1; n < 1000; n++) {
		attempt a;
		pthread_t th;
		bool hit;

		memset(&a, 0, sizeof(a));
		__atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&failed, 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&fail_at, n, __ATOMIC_SEQ_CST);
		assert_int_equal(pthread_create(&th, NULL, attempt_thread, &a), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		__atomic_store_n(&fail_at, 0, __ATOMIC_SEQ_CST);
		hit = __atomic_load_n(&failed, __ATOMIC_SEQ_CST) != 0;
		if (!hit) {
			/* Nothing left to fail: the whole call must have worked. */
			assert_int_equal(a.begin_rc, 0);
			assert_int_equal(a.run_rc, 0);
			assert_int_not_equal(a.w.grown, UINT32_MAX);
			break;
		}
		points++;
		if (a.begin_rc != 0) {
			/* Per-thread set-up failed: an error, not a crash. */
			if (a.begin_rc != AF_EIO && a.begin_rc != AF_ENOMEM)
				fail_msg("%s failed: call_begin said %d", failed_call, a.begin_rc);
			begin_errors++;
		} else if (a.run_rc != 0) {
			if (a.run_rc != RT_TRAP_RESOURCE)
				fail_msg("%s failed: the run trapped with %d (%s)", failed_call, a.run_rc,
					 rt_sandbox_trap_name(a.run_rc));
			traps++;
		} else if (a.w.grown == UINT32_MAX) {
			refused_grows++; /* memory.grow answers -1, as the spec allows */
		} else {
			survived++; /* e.g. a failed reset: the reservation was dropped */
		}
	}
	printf("sandbox: %d failure points: %d begin errors, %d traps, %d refused grows, "
	       "%d absorbed\n", points, begin_errors, traps, refused_grows, survived);
	assert_true(points >= 5);
	assert_true(traps >= 1);
	assert_true(begin_errors >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox_faults__kernel_refusals_are_traps_or_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
