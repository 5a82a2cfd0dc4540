/*
 * test_sandbox.c - the sandbox and the host functions, driven by the
 * test-only lab guest (tests/fixtures/runtime/lab_guest.c) loaded through
 * the runtime's memfd loader (rt_module_from_bytes), without a store:
 * a while(1) is stopped at its deadline, a memory bomb at the memory cap,
 * unreachable and native stack overflow trap, and after each of them the
 * next invocation on the same thread works; reused memory is zeroed;
 * capabilities are enforced at run time; guest logs cannot forge lines;
 * a fault outside guest code still crashes the process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"

#include "art/error.h"
#include "rt/exec.h"
#include "rt/kv.h"
#include "rt/llm.h"
#include "rt/loader.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const all_caps[] = {"clock", "kv.read", "kv.write", "llm_chat",
				       "log", "random", "tool_call"};

static struct {
	char root[64];
	lab_build lab;
	rt_module *mod;
	rt_host_env env;
	FILE *log;
	rt_kv *kv;
	rt_llm_provider *llm;
} g;

static int setup(void **state)
{
	char dir[128], script[128];
	const char *reason = NULL;
	FILE *fp;

	(void)state;
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-sandbox-XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	snprintf(dir, sizeof(dir), "%s/lab", g.root);
	if (lab_build_module(&g.lab, dir, "lab") != 0)
		return -1;
	g.log = tmpfile();
	snprintf(dir, sizeof(dir), "%s/data", g.root);
	snprintf(script, sizeof(script), "%s/script.json", g.root);
	fp = fopen(script, "w");
	if (!g.log || !fp || rt_kv_open(&g.kv, dir) != 0)
		return -1;
	fputs("{\"responses\":[{\"role\":\"assistant\",\"content\":\"first\"},"
	      "{\"role\":\"assistant\",\"content\":\"second\"}]}", fp);
	fclose(fp);
	if (rt_llm_scripted_open(&g.llm, script) != 0)
		return -1;
	g.env.log = g.log;
	g.env.kv = g.kv;
	g.env.llm = g.llm;
	g.env.max_memory_pages = 256; /* 16 MiB */
	g.env.max_timeout_ms = 5000;
	if (rt_module_from_bytes(&g.mod, &reason, g.lab.so, g.lab.so_len, g.lab.so_digest, all_caps,
				 7, "lab", "1.0.0", &g.env) != 0) {
		fprintf(stderr, "load: %s (%s)\n", art_error_last(), reason ? reason : "");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rt_module_unref(g.mod);
	rt_kv_close(g.kv);
	rt_llm_provider_free(g.llm);
	if (g.log)
		fclose(g.log);
	lab_build_free(&g.lab);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

/* cmocka swaps SIGSEGV handlers around every test: put the sandbox's back. */
static void handlers(void)
{
	assert_int_equal(rt_sandbox_install_handlers(), 0);
}

static void run_with(rt_invoke_result *res, const rt_policy *pol, const char *req)
{
	assert_int_equal(rt_exec_invoke(res, g.mod->native, pol, &g.env, req, strlen(req)), 0);
}

static void run(rt_invoke_result *res, const char *req)
{
	run_with(res, g.mod->policy, req);
}

static json_t *body_json(const rt_invoke_result *res)
{
	json_t *j = json_loadb(res->body, res->body_len, 0, NULL);

	if (!j)
		fail_msg("body is not JSON: %.*s", (int)res->body_len, res->body);
	return j;
}

static void expect_error(const char *req, const char *code, int status, const char *needle)
{
	rt_invoke_result res;
	json_t *j;

	run(&res, req);
	if (!res.error_code || strcmp(res.error_code, code) != 0)
		fail_msg("%s: wanted %s, got %s: %s", req, code,
			 res.error_code ? res.error_code : "ok", res.body);
	assert_int_equal(res.http_status, status);
	if (needle && !strstr(res.error_message, needle))
		fail_msg("'%s' not in '%s'", needle, res.error_message);
	j = body_json(&res);
	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), code);
	json_decref(j);
	rt_invoke_result_clear(&res);
}

/* A normal request answers normally. */
static void expect_healthy(void)
{
	rt_invoke_result res;

	run(&res, "{\"cmd\":\"state\"}");
	assert_null(res.error_code);
	assert_int_equal(res.http_status, 200);
	/* A fresh instance: its counter starts again every time. */
	assert_string_equal(res.body, "{\"ok\":true,\"output\":1}");
	rt_invoke_result_clear(&res);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- tests ---- */

static void test_sandbox__echo_in_a_fresh_instance_each_time(void **state)
{
	rt_invoke_result res;

	(void)state;
	handlers();
	run(&res, "{\"cmd\":\"echo\",\"x\":\"\\u00e9\"}");
	assert_null(res.error_code);
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"cmd\":\"echo\",\"x\":\"\\u00e9\"}}");
	assert_true(res.instantiate_seconds > 0 && res.invoke_seconds >= res.instantiate_seconds);
	rt_invoke_result_clear(&res);
	expect_healthy();
	expect_healthy();
}

static void test_sandbox__while_true_is_stopped_at_the_deadline(void **state)
{
	double t0;

	(void)state;
	handlers();
	t0 = now_s();
	/* limits.timeout_ms of the lab agent is 400. */
	expect_error("{\"cmd\":\"loop\"}", "timeout", 504, "deadline of 400 ms");
	assert_true(now_s() - t0 < 30); /* it stopped (no timing assertion beyond that) */
	expect_healthy();
	expect_error("{\"cmd\":\"loop\"}", "timeout", 504, NULL);
	expect_healthy();
}

static void test_sandbox__deadlines_of_successive_runs_are_independent(void **state)
{
	rt_policy quick = *g.mod->policy;
	rt_invoke_result res;
	struct timespec nap = {0, 100 * 1000 * 1000};

	(void)state;
	handlers();
	quick.timeout_ms = 30;
	/* The timer is left armed after a run: its late signal must not hurt. */
	run_with(&res, &quick, "{\"cmd\":\"state\"}");
	assert_null(res.error_code);
	rt_invoke_result_clear(&res);
	nanosleep(&nap, NULL); /* the stale signal arrives while no guest runs */
	expect_healthy();
	/* A pending timer earlier than this run's deadline re-arms itself... */
	run_with(&res, &quick, "{\"cmd\":\"state\"}");
	rt_invoke_result_clear(&res);
	expect_error("{\"cmd\":\"loop\"}", "timeout", 504, "deadline of 400 ms");
	/* ... and a later one (400 ms, still pending) is moved forward. */
	expect_healthy();
	run_with(&res, &quick, "{\"cmd\":\"loop\"}");
	assert_string_equal(res.error_code, "timeout");
	assert_non_null(strstr(res.error_message, "deadline of 30 ms"));
	rt_invoke_result_clear(&res);
	expect_healthy();
}

static void test_sandbox__deadline_passing_in_host_calls_stops_after_the_call(void **state)
{
	(void)state;
	handlers();
	expect_error("{\"cmd\":\"hostloop\"}", "timeout", 504, NULL);
	expect_healthy();
}

static void test_sandbox__memory_bomb_fails_cleanly_at_the_cap(void **state)
{
	rt_sandbox_stats before, after;

	(void)state;
	handlers();
	rt_sandbox_stats_get(&before);
	expect_error("{\"cmd\":\"bomb\"}", "memory_limit", 422, "more than 256 pages");
	expect_healthy();
	expect_error("{\"cmd\":\"bomb\"}", "memory_limit", 422, NULL);
	expect_healthy();
	rt_sandbox_stats_get(&after);
	/* Reservations come back to the pool: a bomb does not leak one. */
	assert_true(after.reservations <= before.reservations + 1);
	assert_true(after.reused > before.reused);
}

static void test_sandbox__guest_oom_is_its_own_answer(void **state)
{
	(void)state;
	handlers();
	expect_error("{\"cmd\":\"oom\"}", "oom", 422, "out of guest memory");
	expect_healthy();
}

static void test_sandbox__unreachable_traps(void **state)
{
	(void)state;
	handlers();
	expect_error("{\"cmd\":\"trap\"}", "trap", 500, "unreachable");
	expect_healthy();
}

static void test_sandbox__native_stack_overflow_traps(void **state)
{
	(void)state;
	handlers();
	expect_error("{\"cmd\":\"recurse\"}", "trap", 500, "call stack exhausted");
	expect_healthy();
	expect_error("{\"cmd\":\"recurse\"}", "trap", 500, "call stack exhausted");
	expect_healthy();
}

static void test_sandbox__reused_memory_is_zeroed(void **state)
{
	rt_invoke_result res;
	rt_sandbox_stats before, after;
	int i;

	(void)state;
	handlers();
	rt_sandbox_stats_get(&before);
	for (i = 0; i < 3; i++) {
		run(&res, "{\"cmd\":\"dirty\"}");
		assert_null(res.error_code);
		rt_invoke_result_clear(&res);
		run(&res, "{\"cmd\":\"peek\"}");
		assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"zero\":true}}");
		rt_invoke_result_clear(&res);
	}
	rt_sandbox_stats_get(&after);
	assert_true(after.reused >= before.reused + 6);
	assert_true(after.created <= before.created + 1);
}

static void test_sandbox__bad_answers_are_internal_errors(void **state)
{
	(void)state;
	handlers();
	expect_error("{\"cmd\":\"garbage\"}", "internal", 500, "not a JSON object");
	expect_error("{\"cmd\":\"weird\"}", "internal", 500, "unknown error code 'pwned'");
	expect_error("{\"cmd\":\"badptr\"}", "internal", 500, "outside the agent's memory");
	expect_healthy();
}

static void test_sandbox__host_pointer_outside_memory_traps(void **state)
{
	(void)state;
	handlers();
	expect_error("{\"cmd\":\"badlog\"}", "trap", 500, "out of bounds");
	expect_healthy();
}

static void test_sandbox__guest_logs_cannot_forge_lines(void **state)
{
	rt_invoke_result res;
	char line[16384];
	size_t n_lines = 0, n_hostile = 0;

	(void)state;
	handlers();
	assert_int_equal(fflush(g.log), 0);
	assert_int_equal(ftruncate(fileno(g.log), 0), 0);
	rewind(g.log);
	run(&res, "{\"cmd\":\"log\"}");
	assert_null(res.error_code);
	rt_invoke_result_clear(&res);
	rewind(g.log);
	while (fgets(line, sizeof(line), g.log)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *msg;

		if (!j)
			fail_msg("log line is not JSON: %s", line);
		n_lines++;
		msg = json_string_value(json_object_get(j, "msg"));
		assert_null(json_object_get(j, "forged"));
		if (msg && strstr(msg, "hostile")) {
			n_hostile++;
			assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
			assert_string_equal(json_string_value(json_object_get(j, "event")), "guest");
			assert_string_equal(json_string_value(json_object_get(j, "agent")), "lab@1.0.0");
			assert_non_null(strstr(msg, "\"forged\":1}"));
			assert_non_null(strstr(msg, "\xef\xbf\xbd")); /* bad UTF-8 -> U+FFFD */
		}
		/* No raw control character reaches the log file. */
		assert_null(strchr(line, '\x1b'));
		json_decref(j);
	}
	assert_int_equal(n_hostile, 1);
	assert_int_equal(n_lines, 1);
}

static void test_sandbox__capabilities_are_enforced_at_run_time(void **state)
{
	static const char *const read_only[] = {"kv.read", "tool_call"};
	rt_policy *none = NULL, *ro = NULL;
	rt_invoke_result res;
	uint64_t denied;

	(void)state;
	handlers();
	assert_int_equal(rt_policy_parse(&none, g.mod->describe, g.mod->describe_len, NULL, 0), 0);
	assert_int_equal(rt_policy_parse(&ro, g.mod->describe, g.mod->describe_len, read_only, 2), 0);

	denied = rt_metrics_get_label(RT_M_DENIALS, "tool_call");
	run_with(&res, none, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"clock_now\",\"args\":{}}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-1,\"result\":null}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "tool_call"), denied + 1);

	run_with(&res, none, "{\"cmd\":\"random\"}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":-1}");
	rt_invoke_result_clear(&res);
	run_with(&res, none, "{\"cmd\":\"clock\"}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":0}");
	rt_invoke_result_clear(&res);
	run_with(&res, none, "{\"cmd\":\"llm\",\"call\":{\"messages\":[]}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-1,\"result\":null}}");
	rt_invoke_result_clear(&res);

	/* kv.read only: kv_put is in the tool table but its capability is not granted. */
	denied = rt_metrics_get_label(RT_M_DENIALS, "kv.write");
	run_with(&res, ro, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"kv_put\",\"args\":{\"key\":\"k\",\"value\":1}}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-1,\"result\":null}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "kv.write"), denied + 1);
	/* ... and clock_now needs clock. */
	run_with(&res, ro, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"clock_now\",\"args\":{}}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-1,\"result\":null}}");
	rt_invoke_result_clear(&res);

	/* In the table but not in the runtime's catalogue; not in the table at all. */
	denied = rt_metrics_get_label(RT_M_DENIALS, "tool:unknown");
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"shell_exec\",\"args\":{\"cmd\":\"id\"}}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-1,\"result\":null}}");
	rt_invoke_result_clear(&res);
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"web_search\",\"args\":{}}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-1,\"result\":null}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "tool:unknown"), denied + 2);
	/* A malformed request is a failure, not a denial. */
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":1}}");
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-2,\"result\":null}}");
	rt_invoke_result_clear(&res);

	rt_policy_free(none);
	rt_policy_free(ro);
}

static void test_sandbox__builtin_tools_and_kv_isolation(void **state)
{
	rt_invoke_result res;
	json_t *j, *r;
	char *v = NULL;
	size_t vlen = 0;

	(void)state;
	handlers();
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"kv_get\",\"args\":{\"key\":\"nothing\"}}}");
	assert_non_null(strstr(res.body, "\"code\":\"not_found\""));
	rt_invoke_result_clear(&res);
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"kv_put\",\"args\":{\"key\":\"a/b\",\"value\":{\"n\":[1,\"x\"]}}}}");
	assert_non_null(strstr(res.body, "\"result\":{\"ok\":true,\"result\":{\"stored\":true}}"));
	rt_invoke_result_clear(&res);
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"kv_get\",\"args\":{\"key\":\"a/b\"}}}");
	j = body_json(&res);
	r = json_object_get(json_object_get(json_object_get(j, "output"), "result"), "result");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "n"), 0)), 1);
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* Stored under the agent's name: another agent cannot see it. */
	assert_int_equal(rt_kv_get(g.kv, "lab", "a/b", 3, &v, &vlen), 0);
	free(v);
	assert_int_equal(rt_kv_get(g.kv, "other", "a/b", 3, &v, &vlen), AF_ENOTFOUND);
	/* Bad arguments are the tool's answer, not a crash. */
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"kv_get\",\"args\":{\"key\":5}}}");
	assert_non_null(strstr(res.body, "invalid_args"));
	rt_invoke_result_clear(&res);
	run(&res, "{\"cmd\":\"tool\",\"call\":{\"tool\":\"clock_now\",\"args\":{}}}");
	j = body_json(&res);
	r = json_object_get(json_object_get(json_object_get(j, "output"), "result"), "result");
	assert_true(json_is_string(r) && strlen(json_string_value(r)) == 24);
	json_decref(j);
	rt_invoke_result_clear(&res);
}

static void test_sandbox__scripted_llm_and_the_step_cap(void **state)
{
	rt_invoke_result res;
	rt_host_env no_llm = g.env;

	(void)state;
	handlers();
	run(&res, "{\"cmd\":\"llm\",\"call\":{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}");
	assert_non_null(strstr(res.body, "\"content\":\"first\""));
	rt_invoke_result_clear(&res);
	/* One assistant turn already in the conversation: the second response. */
	run(&res, "{\"cmd\":\"llm\",\"call\":{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}}");
	assert_non_null(strstr(res.body, "\"content\":\"second\""));
	rt_invoke_result_clear(&res);
	/* More model calls than limits.max_steps (4): stopped by the host. */
	expect_error("{\"cmd\":\"llmloop\",\"call\":{\"messages\":[]}}", "step_limit", 422,
		     "more than 4 model calls");
	/* No provider: a failure the guest sees. */
	no_llm.llm = NULL;
	{
		static const char req[] = "{\"cmd\":\"llm\",\"call\":{\"messages\":[]}}";

		assert_int_equal(rt_exec_invoke(&res, g.mod->native, g.mod->policy, &no_llm, req,
						strlen(req)), 0);
	}
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"status\":-2,\"result\":null}}");
	rt_invoke_result_clear(&res);
	expect_healthy();
}

static void test_sandbox__sealed_memfd_refuses_other_bytes(void **state)
{
	const char *reason = NULL;
	rt_module *m = NULL;
	char wrong[ART_DIGEST_STR_LEN + 1];

	(void)state;
	handlers();
	art_manifest_digest(wrong, "other", 5);
	assert_int_equal(rt_module_from_bytes(&m, &reason, g.lab.so, g.lab.so_len, wrong, all_caps, 7,
					      "lab", "1.0.0", &g.env), AF_ESIGNATURE);
	assert_string_equal(reason, "digest");
	assert_null(m);
	/* Not a shared object at all. */
	art_manifest_digest(wrong, "not an ELF file", 15);
	assert_int_equal(rt_module_from_bytes(&m, &reason, "not an ELF file", 15, wrong, all_caps, 7,
					      "lab", "1.0.0", &g.env), AF_EIO);
	assert_string_equal(reason, "load");
	/* The right bytes describing another agent. */
	assert_int_equal(rt_module_from_bytes(&m, &reason, g.lab.so, g.lab.so_len, g.lab.so_digest,
					      all_caps, 7, "other", "1.0.0", &g.env), AF_ECORRUPT);
	assert_string_equal(reason, "describe");
	/* The same bytes again: a second, independent copy loads fine. */
	assert_int_equal(rt_module_from_bytes(&m, &reason, g.lab.so, g.lab.so_len, g.lab.so_digest,
					      all_caps, 7, "lab", "1.0.0", &g.env), 0);
	assert_ptr_not_equal(m->dl, g.mod->dl);
	rt_module_unref(m);
}

/* Several threads, each with its own deadline timer and trap target. */
static void *thread_mix(void *arg)
{
	static const char *const reqs[] = {"{\"cmd\":\"state\"}", "{\"cmd\":\"trap\"}",
					   "{\"cmd\":\"bomb\"}", "{\"cmd\":\"loop\"}"};
	static const char *const codes[] = {NULL, "trap", "memory_limit", "timeout"};
	long id = (long)(intptr_t)arg, i;
	long bad = 0;

	for (i = 0; i < 8; i++) {
		rt_invoke_result res;
		size_t k = (size_t)((id + i) % 4);

		if (rt_exec_invoke(&res, g.mod->native, g.mod->policy, &g.env, reqs[k], strlen(reqs[k])) != 0)
			bad++;
		else if (codes[k] ? !res.error_code || strcmp(res.error_code, codes[k]) != 0 : res.error_code != NULL)
			bad++;
		rt_invoke_result_clear(&res);
	}
	return (void *)(intptr_t)bad;
}

static void test_sandbox__threads_trap_independently(void **state)
{
	pthread_t t[4];
	long i;

	(void)state;
	handlers();
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_mix, (void *)(intptr_t)i), 0);
	for (i = 0; i < 4; i++) {
		void *bad;

		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((long)(intptr_t)bad, 0);
	}
	expect_healthy();
}

static void test_sandbox__fault_outside_guest_code_still_crashes(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	handlers();
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction dfl;
		struct rlimit no_core = {0, 0};

		setrlimit(RLIMIT_CORE, &no_core); /* no core file in the source tree */
		/* The child starts from the sandbox's handler chained to the default. */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGSEGV, &dfl, NULL);
		rt_sandbox_install_handlers();
		{
			volatile uintptr_t where = 16;

			*(volatile int *)where = 1;
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox__echo_in_a_fresh_instance_each_time),
		cmocka_unit_test(test_sandbox__while_true_is_stopped_at_the_deadline),
		cmocka_unit_test(test_sandbox__deadlines_of_successive_runs_are_independent),
		cmocka_unit_test(test_sandbox__deadline_passing_in_host_calls_stops_after_the_call),
		cmocka_unit_test(test_sandbox__memory_bomb_fails_cleanly_at_the_cap),
		cmocka_unit_test(test_sandbox__guest_oom_is_its_own_answer),
		cmocka_unit_test(test_sandbox__unreachable_traps),
		cmocka_unit_test(test_sandbox__native_stack_overflow_traps),
		cmocka_unit_test(test_sandbox__reused_memory_is_zeroed),
		cmocka_unit_test(test_sandbox__bad_answers_are_internal_errors),
		cmocka_unit_test(test_sandbox__host_pointer_outside_memory_traps),
		cmocka_unit_test(test_sandbox__guest_logs_cannot_forge_lines),
		cmocka_unit_test(test_sandbox__capabilities_are_enforced_at_run_time),
		cmocka_unit_test(test_sandbox__builtin_tools_and_kv_isolation),
		cmocka_unit_test(test_sandbox__scripted_llm_and_the_step_cap),
		cmocka_unit_test(test_sandbox__sealed_memfd_refuses_other_bytes),
		cmocka_unit_test(test_sandbox__threads_trap_independently),
		cmocka_unit_test(test_sandbox__fault_outside_guest_code_still_crashes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
