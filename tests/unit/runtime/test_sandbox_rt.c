/*
 * test_sandbox_rt.c - the sandbox's WebAssembly runtime interface
 * (rt_sandbox_wasm_rt, rt/sandbox.h) called directly inside
 * rt_sandbox_run, without any guest: the per-call caps on memories and
 * tables, an initial size over the cap, growth refused by the module's own
 * maximum or by the call's cap (only the latter is a memory-limit hit),
 * growth by zero, freeing and reusing memories (the reused pages read back
 * as zeroes, shrunk and grown again), memories and tables a call left
 * behind released by rt_sandbox_call_end, trap codes and their names, the
 * call protocol's errors, and a SIGSEGV outside guest code handed to the
 * handler that was there before the sandbox's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "rt/sandbox.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasm-rt.h>

static const art_wasm_rt_v1 *wrt;
static volatile sig_atomic_t earlier_handler_calls;

static void earlier_handler(int sig)
{
	(void)sig;
	earlier_handler_calls++;
}

static volatile sig_atomic_t earlier_code;

static void earlier_siginfo_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	earlier_code = si->si_code;
	earlier_handler_calls++;
}

static int setup(void **state)
{
	(void)state;
	if (rt_sandbox_init() < 0)
		return -1;
	wrt = rt_sandbox_wasm_rt();
	return 0;
}

/* Run fn in a fresh call with the cap max_pages; its trap code. */
static int run(void (*fn)(void *), void *arg, uint32_t max_pages, rt_sandbox_call *out)
{
	rt_sandbox_call c;
	int trap;

	assert_int_equal(rt_sandbox_call_begin(&c, max_pages, 0), 0);
	trap = rt_sandbox_run(&c, fn, arg);
	assert_int_equal(c.trap, trap);
	if (out)
		*out = c;
	rt_sandbox_call_end(&c);
	return trap;
}

typedef struct mems {
	wasm_rt_memory_t m[RT_CALL_MAX_MEMORIES + 1];
	wasm_rt_funcref_table_t t[RT_CALL_MAX_TABLES + 1];
	uint32_t got[8];
	int n;
	uint8_t first_byte;
} mems;

static void alloc_too_many_memories(void *arg)
{
	mems *x = arg;

	for (x->n = 0; x->n <= RT_CALL_MAX_MEMORIES; x->n++)
		wrt->allocate_memory(&x->m[x->n], 1, 10);
}

static void alloc_too_many_tables(void *arg)
{
	mems *x = arg;

	for (x->n = 0; x->n <= RT_CALL_MAX_TABLES; x->n++)
		wrt->allocate_funcref_table(&x->t[x->n], 4, 8);
}

static void alloc_huge_table(void *arg)
{
	mems *x = arg;

	wrt->allocate_funcref_table(&x->t[0], RT_MAX_TABLE_ELEMENTS + 1, UINT32_MAX);
}

static void alloc_over_cap(void *arg)
{
	mems *x = arg;

	wrt->allocate_memory(&x->m[0], 9, 100);
}

static void tables_and_memories_left_behind(void *arg)
{
	mems *x = arg;

	wrt->allocate_funcref_table(&x->t[0], 0, 0);
	wrt->allocate_funcref_table(&x->t[1], 3, 3);
	memset(&x->t[1].data[2], 0x5A, sizeof(x->t[1].data[2])); /* it is writable */
	wrt->free_funcref_table(&x->t[0]);
	wrt->free_funcref_table(&x->t[0]); /* twice: nothing */
	wrt->allocate_memory(&x->m[0], 1, 4);
	wrt->allocate_memory(&x->m[1], 0, 4);
}

static void test_sandbox_rt__per_call_caps(void **state)
{
	mems x;
	rt_sandbox_call c;

	(void)state;
	memset(&x, 0, sizeof(x));
	assert_int_equal(run(alloc_too_many_memories, &x, 64, &c), RT_TRAP_RESOURCE);
	assert_int_equal(x.n, RT_CALL_MAX_MEMORIES);
	assert_false(c.memory_limit_hit);
	/* rt_sandbox_call_end released them all. */
	assert_null(x.m[0].data);
	assert_int_equal(x.m[0].size, 0);

	memset(&x, 0, sizeof(x));
	assert_int_equal(run(alloc_too_many_tables, &x, 64, NULL), RT_TRAP_RESOURCE);
	assert_int_equal(x.n, RT_CALL_MAX_TABLES);
	assert_null(x.t[0].data);
	assert_int_equal(run(alloc_huge_table, &x, 64, NULL), RT_TRAP_RESOURCE);

	assert_int_equal(run(alloc_over_cap, &x, 8, &c), RT_TRAP_MEMORY_LIMIT);
	assert_true(c.memory_limit_hit);
	assert_int_equal(c.peak_pages, 0);

	memset(&x, 0, sizeof(x));
	assert_int_equal(run(tables_and_memories_left_behind, &x, 8, &c), 0);
	assert_null(x.t[1].data);
	assert_int_equal(x.t[1].size, 0);
	assert_null(x.m[0].data);
	assert_int_equal(c.peak_pages, 1);
}

static void grow_and_reuse(void *arg)
{
	mems *x = arg;
	wasm_rt_memory_t *m = &x->m[0];

	wrt->allocate_memory(m, 1, 6);
	x->got[0] = wrt->grow_memory(m, 0);   /* 1: nothing to do */
	x->got[1] = wrt->grow_memory(m, 3);   /* 1 -> 4 */
	memset(m->data, 0xAA, m->size);
	x->got[2] = wrt->grow_memory(m, 3);   /* 7 > the module's 6: refused, not a cap hit */
	x->got[3] = wrt->grow_memory(m, 2);   /* 6 > the call's 5: refused by the cap */
	x->got[4] = m->pages;
	wrt->free_memory(m);
	x->got[5] = m->data == NULL && m->size == 0;
	wrt->free_memory(m);                  /* not allocated (any more): nothing */
	/* The same reservation again, smaller: zeroed, and only [0, 1 page) open. */
	wrt->allocate_memory(&x->m[1], 1, 6);
	x->first_byte = x->m[1].data[0] | x->m[1].data[RT_WASM_PAGE - 1];
	x->got[6] = wrt->grow_memory(&x->m[1], 1);
}

static void grow_unknown_memory(void *arg)
{
	mems *x = arg;

	memset(&x->m[2], 0, sizeof(x->m[2]));
	wrt->grow_memory(&x->m[2], 1);
}

static void test_sandbox_rt__memory_growth(void **state)
{
	mems x;
	rt_sandbox_call c;

	(void)state;
	memset(&x, 0, sizeof(x));
	assert_int_equal(run(grow_and_reuse, &x, 5, &c), 0);
	assert_int_equal(x.got[0], 1);
	assert_int_equal(x.got[1], 1);
	assert_int_equal(x.got[2], UINT32_MAX);
	assert_int_equal(x.got[3], UINT32_MAX);
	assert_int_equal(x.got[4], 4);
	assert_int_equal(x.got[5], 1);
	assert_int_equal(x.first_byte, 0);
	assert_int_equal(x.got[6], 1);
	assert_true(c.memory_limit_hit);
	assert_int_equal(c.peak_pages, 4);

	/* Growing a memory the call did not allocate: the host stops the guest. */
	assert_int_equal(run(grow_unknown_memory, &x, 5, &c), RT_TRAP_HOST);
}

static void sb_trap_zero(void *arg)
{
	(void)arg;
	wrt->trap(0);
}

static void sb_trap_five(void *arg)
{
	(void)arg;
	wrt->trap(5);
}

static void host_trap_negative(void *arg)
{
	(void)arg;
	rt_sandbox_trap(-3);
}

static void test_sandbox_rt__traps_and_names(void **state)
{
	static const struct {
		int code;
		const char *name;
	} names[] = {
		{0, "no trap"}, {RT_TRAP_OOB, "out of bounds memory access"},
		{WASM_RT_TRAP_INT_OVERFLOW, "integer overflow"},
		{WASM_RT_TRAP_DIV_BY_ZERO, "integer divide by zero"},
		{WASM_RT_TRAP_INVALID_CONVERSION, "invalid conversion to integer"},
		{RT_TRAP_UNREACHABLE, "unreachable executed"},
		{WASM_RT_TRAP_CALL_INDIRECT, "invalid indirect call"},
		{WASM_RT_TRAP_UNCAUGHT_EXCEPTION, "uncaught exception"},
		{RT_TRAP_EXHAUSTION, "call stack exhausted"}, {RT_TRAP_DEADLINE, "deadline exceeded"},
		{RT_TRAP_STEP_LIMIT, "step limit exceeded"},
		{RT_TRAP_MEMORY_LIMIT, "memory limit exceeded"},
		{RT_TRAP_RESOURCE, "the host is out of resources"},
		{RT_TRAP_HOST, "stopped by the host"}, {99, "unknown trap"}, {-1, "unknown trap"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(rt_sandbox_trap_name(names[i].code), names[i].name);
	assert_int_equal(run(sb_trap_zero, NULL, 1, NULL), RT_TRAP_HOST);
	assert_int_equal(run(sb_trap_five, NULL, 1, NULL), 5);
	assert_int_equal(run(host_trap_negative, NULL, 1, NULL), RT_TRAP_HOST);
	/* Outside guest code, entering and leaving the host is nothing. */
	rt_sandbox_host_enter();
	rt_sandbox_host_leave();
}

static void test_sandbox_rt__call_protocol(void **state)
{
	rt_sandbox_call c, other;
	rt_sandbox_stats st;

	(void)state;
	assert_int_equal(rt_sandbox_call_begin(NULL, 1, 0), AF_EINVAL);
	assert_int_equal(rt_sandbox_call_begin(&c, RT_MAX_PAGES + 100, 0), 0);
	assert_int_equal(c.max_pages, RT_MAX_PAGES);
	assert_int_equal(rt_sandbox_call_begin(&other, 1, 0), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "already active"));
	rt_sandbox_call_end(&c);
	rt_sandbox_call_end(&c); /* ended: nothing */
	rt_sandbox_call_end(NULL);
	/* The thread is free again. */
	assert_int_equal(rt_sandbox_call_begin(&other, 1, 0), 0);
	rt_sandbox_call_end(&other);

	/* Pooled reservations can be given back to the system. */
	rt_sandbox_pool_trim();
	rt_sandbox_stats_get(&st);
	assert_int_equal(st.pooled, 0);
}

static void test_sandbox_rt__foreign_faults_go_to_the_earlier_handler(void **state)
{
	struct sigaction sa;

	(void)state;
	/* A handler installed before the sandbox's (cmocka keeps its own while
	 * a test runs: both are installed here, in that order). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = earlier_handler;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	earlier_handler_calls = 0;
	raise(SIGSEGV); /* not in guest code: not the sandbox's */
	assert_int_equal(earlier_handler_calls, 1);

	/* The same with an SA_SIGINFO handler: it gets the signal's details. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = earlier_siginfo_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	earlier_handler_calls = 0;
	raise(SIGSEGV);
	assert_int_equal(earlier_handler_calls, 1);
	assert_int_equal(earlier_code, SI_TKILL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox_rt__per_call_caps),
		cmocka_unit_test(test_sandbox_rt__memory_growth),
		cmocka_unit_test(test_sandbox_rt__traps_and_names),
		cmocka_unit_test(test_sandbox_rt__call_protocol),
		cmocka_unit_test(test_sandbox_rt__foreign_faults_go_to_the_earlier_handler),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
