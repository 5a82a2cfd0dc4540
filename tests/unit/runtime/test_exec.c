/*
 * test_exec.c - one invocation (rt/exec.h) of a hand-made native module
 * (fake_native.h: plain C behind the art_wasm_native_v1 ABI, its memory a
 * real sandbox reservation), so every way a guest can answer or misbehave is
 * one command: answers that are not JSON, lack "ok", carry an unknown error
 * code, point outside memory or are too long; traps of every kind; failed
 * allocations; memory growth refused; and each `af` host function with its
 * capability missing, its arguments out of bounds or over a limit, and its
 * per-invocation caps (model calls, tool calls, log lines, denial lines).
 * Also the policy parser and the error helpers. No timing: deadlines are
 * raised as traps by the guest itself. The Makefile links this binary with
 * the allocation wraps (tests/unit/faultinject.h) and --wrap=getrandom: a
 * describe and invocations that call every host function run under
 * allocation torture, and random_get sees the kernel fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "faultinject.h"
#include "fake_native.h"

#include "art/error.h"
#include "rt/exec.h"
#include "rt/llm.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* getrandom: fails once when armed. */
static int getrandom_fail;
ssize_t __real_getrandom(void *buf, size_t n, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags);

ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags)
{
	if (getrandom_fail > 0) {
		getrandom_fail--;
		errno = EAGAIN;
		return -1;
	}
	return __real_getrandom(buf, n, flags);
}

static const char *const all_caps[] = {"clock", "kv.read", "llm_chat", "log", "random",
				       "tool_call"};

static struct {
	FILE *log;
	long log_mark;
	rt_host_env env;
	rt_policy *pol;
	const char *llm_answer;    /* NULL: the provider fails */
	size_t llm_answer_len;     /* 0: strlen */
	unsigned llm_calls;
} g;

/* ---- a model provider the test scripts ------------------------------------------------ */

static int test_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	(void)ctx;
	(void)req;
	(void)len;
	g.llm_calls++;
	if (!g.llm_answer)
		return art_error_set(AF_EIO, "the model is down");
	*resp_len = g.llm_answer_len ? g.llm_answer_len : strlen(g.llm_answer);
	*resp = calloc(1, *resp_len + 1);
	if (!*resp)
		return AF_ENOMEM;
	memcpy(*resp, g.llm_answer, strlen(g.llm_answer));
	return 0;
}

static const rt_llm_provider test_llm = {.name = "test", .chat = test_chat};

/* ---- helpers ------------------------------------------------------------------------------ */

static rt_policy *policy_with(const char *const *caps, size_t n)
{
	rt_policy *p = NULL;
	const char *d = FAKE_DESCRIBE;

	assert_int_equal(rt_policy_parse(&p, d, strlen(d), caps, n), 0);
	return p;
}

/* The log lines written since the last call (static buffer). */
static const char *new_log(void)
{
	static char buf[1 << 18];
	size_t n;

	fflush(g.log);
	fseek(g.log, g.log_mark, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, g.log);
	buf[n] = '\0';
	g.log_mark = ftell(g.log);
	fseek(g.log, 0, SEEK_END);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Run cmd; the result's code (NULL: ok) and status must be as given. */
static void run_expect(const char *cmd, const char *code, int status, const char *in_message)
{
	rt_invoke_result res;

	fake.cmd = cmd;
	fake.n_rc = 0;
	fake.read[0] = '\0';
	assert_int_equal(rt_exec_invoke(&res, &fake_module, g.pol, &g.env, "{}", 2), 0);
	if (code ? !res.error_code || strcmp(res.error_code, code) != 0 : res.error_code != NULL)
		fail_msg("%s: wanted %s, got %s: %s", cmd, code ? code : "ok",
			 res.error_code ? res.error_code : "ok", res.body ? res.body : "");
	assert_int_equal(res.http_status, status);
	assert_non_null(res.body);
	assert_int_equal(res.body_len, strlen(res.body));
	if (code) {
		assert_non_null(strstr(res.body, "\"ok\":false"));
		assert_non_null(strstr(res.body, code));
		assert_non_null(res.error_message);
	}
	if (in_message && !strstr(res.error_message ? res.error_message : res.body, in_message))
		fail_msg("%s: '%s' lacks '%s'", cmd, res.error_message ? res.error_message : res.body,
			 in_message);
	rt_invoke_result_clear(&res);
}

static int setup(void **state)
{
	(void)state;
	if (rt_sandbox_init() < 0 || fake_init(rt_sandbox_wasm_rt()) != 0)
		return -1;
	g.log = tmpfile();
	if (!g.log)
		return -1;
	g.env.log = g.log;
	g.env.llm = &test_llm;
	g.pol = policy_with(all_caps, sizeof(all_caps) / sizeof(all_caps[0]));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rt_policy_free(g.pol);
	fclose(g.log);
	return 0;
}

/* Each test: all capabilities, the scripted model answering, fresh controls. */
static int reset(void **state)
{
	(void)state;
	g.pol->caps = 0;
	{
		size_t i;

		for (i = 0; i < sizeof(all_caps) / sizeof(all_caps[0]); i++)
			g.pol->caps |= rt_cap_bit(all_caps[i]);
	}
	g.env.llm = &test_llm;
	g.llm_answer = "{\"role\":\"assistant\",\"content\":\"hi\"}";
	g.llm_answer_len = 0;
	g.llm_calls = 0;
	memset(&fake, 0, sizeof(fake));
	new_log();
	return 0;
}

/* ---- policies and helpers ---------------------------------------------------------------- */

static void expect_policy_refused(const char *describe, const char *why)
{
	rt_policy *p = (rt_policy *)1;

	assert_int_equal(rt_policy_parse(&p, describe, strlen(describe), NULL, 0), AF_ECORRUPT);
	assert_null(p);
	if (!strstr(art_error_last(), why))
		fail_msg("'%s' lacks '%s'", art_error_last(), why);
}

static void test_exec__policy_parse_refuses_malformed_describes(void **state)
{
	rt_policy *p = NULL;
	static const char *const hosts[] = {"api.example.com", "Docs.Example.COM."};
	static const char *const bad_hosts[] = {"ok.example.com", "http://no/path"};
	static const char minimal[] = "{\"name\":\"a\",\"version\":\"1\"}";
	static const char *const caps[] = {"log", "no-such-capability", "http_fetch"};

	(void)state;
	expect_policy_refused("[1,2]", "not a JSON object");
	expect_policy_refused("{\"name\":\"a\",\"name\":\"b\",\"version\":\"1\"}", "not a JSON object");
	expect_policy_refused("{\"name\":\"a\"}", "no name or version");
	expect_policy_refused("{\"name\":1,\"version\":\"1\"}", "no name or version");
	expect_policy_refused("{\"name\":\"a\",\"version\":\"1\",\"tools\":{}}", "tools must be an array");
	expect_policy_refused("{\"name\":\"a\",\"version\":\"1\",\"limits\":[]}", "limits an object");
	expect_policy_refused("{\"name\":\"a\",\"version\":\"1\",\"tools\":[{\"capability\":\"x\"}]}",
			      "tools[0] has no name");
	expect_policy_refused("{\"name\":\"a\",\"version\":\"1\",\"limits\":{\"max_steps\":\"many\"}}",
			      "max_steps");

	/* The smallest describe: no tools, no limits, no model; an LLM agent. */
	assert_int_equal(rt_policy_parse(&p, minimal, strlen(minimal), caps, 3), 0);
	assert_string_equal(p->ref, "a@1");
	assert_int_equal(p->n_tools, 0);
	assert_null(p->provider);
	assert_true(p->llm);
	assert_int_equal(p->caps, RT_CAP_LOG | RT_CAP_HTTP_FETCH);
	assert_int_equal(p->n_hosts, 0);

	/* Hosts: normalised, replaced as a whole; a bad entry leaves them as they were. */
	assert_int_equal(rt_policy_set_hosts(p, hosts, 2), 0);
	assert_int_equal(p->n_hosts, 2);
	assert_string_equal(p->hosts[0], "api.example.com");
	assert_string_equal(p->hosts[1], "docs.example.com");
	assert_int_equal(rt_policy_set_hosts(p, bad_hosts, 2), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "manifest hosts"));
	assert_int_equal(p->n_hosts, 2);
	assert_string_equal(p->hosts[0], "api.example.com");
	assert_int_equal(rt_policy_set_hosts(p, NULL, 0), 0);
	assert_int_equal(p->n_hosts, 0);
	assert_int_equal(rt_policy_set_hosts(NULL, hosts, 2), AF_EINVAL);
	rt_policy_free(p);
	rt_policy_free(NULL);

	/* A steps agent is not an LLM agent. */
	{
		static const char steps[] = "{\"name\":\"w\",\"version\":\"2\",\"steps\":[{\"id\":\"s\"}]}";

		assert_int_equal(rt_policy_parse(&p, steps, strlen(steps), NULL, 0), 0);
		assert_false(p->llm);
		assert_int_equal(p->caps, 0);
		rt_policy_free(p);
	}
}

static void test_exec__error_helpers(void **state)
{
	rt_invoke_result res;

	(void)state;
	assert_int_equal(rt_cap_bit(NULL), 0);
	assert_int_equal(rt_cap_bit("shell"), 0);
	assert_int_equal(rt_cap_bit("agent_invoke"), RT_CAP_AGENT_INVOKE);
	assert_int_equal(rt_error_status(NULL), 200);
	assert_int_equal(rt_error_status("timeout"), 504);
	assert_int_equal(rt_error_status("store_corrupt"), 503);
	assert_int_equal(rt_error_status("made_up"), 500);

	memset(&res, 0, sizeof(res));
	assert_int_equal(rt_invoke_result_set_error(&res, "tool_denied", "no %s", "shell"), 0);
	assert_string_equal(res.error_code, "tool_denied");
	assert_int_equal(res.http_status, 403);
	assert_string_equal(res.error_message, "no shell");
	assert_string_equal(res.body, "{\"ok\":false,\"error\":{\"code\":\"tool_denied\",\"message\":\"no shell\"}}");
	/* An unknown code becomes internal; what res held is replaced. */
	assert_int_equal(rt_invoke_result_set_error(&res, "made_up", "x"), 0);
	assert_string_equal(res.error_code, "internal");
	assert_int_equal(res.http_status, 500);
	assert_int_equal(res.body_len, strlen(res.body));
	rt_invoke_result_clear(&res);
}

/* ---- describe --------------------------------------------------------------------------- */

static void test_exec__describe(void **state)
{
	art_wasm_native_v1 bad = fake_module;
	char *doc = (char *)1;
	size_t len = 7;

	(void)state;
	assert_int_equal(rt_exec_describe(&doc, &len, &fake_module, &g.env), 0);
	assert_int_equal(len, strlen(FAKE_DESCRIBE));
	assert_string_equal(doc, FAKE_DESCRIBE);
	free(doc);
	assert_int_equal(fake.instantiated, 1);
	assert_int_equal(fake.freed, 1);

	fake.describe = "trap";
	assert_int_equal(rt_exec_describe(&doc, &len, &fake_module, &g.env), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "af_describe trapped"));
	assert_null(doc);
	assert_int_equal(fake.freed, 1); /* a trapped instance is discarded, not freed by it */

	fake.describe = "huge";
	assert_int_equal(rt_exec_describe(&doc, &len, &fake_module, &g.env), AF_ETOOBIG);
	assert_null(doc);
	assert_int_equal(len, 0);

	fake.describe = NULL;
	fake.alloc_fail_at = 1;
	assert_int_equal(rt_exec_describe(&doc, &len, &fake_module, &g.env), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "could not allocate"));
	assert_null(doc);
	fake.alloc_fail_at = 0;

	/* The descriptor's instance size and alignment are checked before use. */
	{
		static const uint32_t sizes[][2] = {{0, 8}, {(1u << 24) + 1, 8}, {64, 24}, {64, 8192}};
		size_t i;

		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			bad.instance_size = sizes[i][0];
			bad.instance_align = sizes[i][1];
			assert_int_equal(rt_exec_describe(&doc, &len, &bad, &g.env), AF_ECORRUPT);
			assert_non_null(strstr(art_error_last(), "instance size or alignment"));
			assert_null(doc);
		}
		/* An alignment under a pointer's is raised to it. */
		bad.instance_size = (uint32_t)sizeof(fake_instance);
		bad.instance_align = 1;
		assert_int_equal(rt_exec_describe(&doc, &len, &bad, &g.env), 0);
		free(doc);
	}
}

/* ---- the guest's answer ------------------------------------------------------------------ */

static void test_exec__answers_are_checked(void **state)
{
	(void)state;
	run_expect("echo", NULL, 200, NULL);
	run_expect("answer:{\"ok\":true,\"output\":{\"n\":1}}", NULL, 200, "\"n\":1");
	run_expect("answer:not json", "internal", 500, "not a JSON object with \"ok\"");
	run_expect("answer:[true]", "internal", 500, "not a JSON object");
	run_expect("answer:{\"ok\":1}", "internal", 500, "with \"ok\"");
	run_expect("answer:{\"ok\":true,\"ok\":false}", "internal", 500, "not a JSON object");
	/* Guest error codes map to the stable ones. */
	run_expect("answer:{\"ok\":false,\"error\":{\"code\":\"max_steps\",\"message\":\"enough\"}}",
		   "step_limit", 422, "enough");
	run_expect("answer:{\"ok\":false,\"error\":{\"code\":\"invalid_input\"}}", "invalid_input", 400,
		   "invalid_input");
	run_expect("answer:{\"ok\":false,\"error\":{\"code\":\"llm_error\",\"message\":\"m\"}}",
		   "llm_error", 502, "m");
	run_expect("answer:{\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":\"slow\"}}",
		   "timeout", 504, "slow");
	run_expect("answer:{\"ok\":false,\"error\":{\"code\":\"pwned\",\"message\":\"boo\"}}", "internal",
		   500, "unknown error code 'pwned': boo");
	run_expect("answer:{\"ok\":false}", "internal", 500, "unknown error code '(none)'");
	/* Out of bounds, too long. */
	run_expect("oob_answer", "internal", 500, "the answer is outside the agent's memory");
	run_expect("bad_len_ptr", "internal", 500, "length is outside the agent's memory");
	run_expect("too_long", "internal", 500, "over the limit");
}

static void test_exec__requests_that_do_not_fit(void **state)
{
	rt_invoke_result res;
	char *big;
	size_t big_len = (size_t)5 << 20; /* over the 64 pages (4 MiB) of the describe */

	(void)state;
	/* Refused before anything runs. */
	assert_int_equal(rt_exec_invoke(&res, &fake_module, g.pol, &g.env, "{}", (size_t)UINT32_MAX),
			 0);
	assert_string_equal(res.error_code, "payload_too_large");
	assert_int_equal(res.http_status, 413);
	assert_int_equal(fake.instantiated, 0);
	rt_invoke_result_clear(&res);

	/* The guest cannot allocate the request / the answer's length slot. */
	fake.alloc_fail_at = 1;
	run_expect("echo", "oom", 422, "does not fit in the agent's memory");
	fake.alloc_fail_at = 2;
	run_expect("echo", "oom", 422, "does not fit");
	fake.alloc_fail_at = 0;

	/* A request larger than the memory cap: the growth is refused. */
	big = malloc(big_len);
	assert_non_null(big);
	memset(big, ' ', big_len);
	fake.cmd = "echo";
	assert_int_equal(rt_exec_invoke(&res, &fake_module, g.pol, &g.env, big, big_len), 0);
	assert_string_equal(res.error_code, "memory_limit");
	assert_int_equal(res.http_status, 422);
	rt_invoke_result_clear(&res);
	free(big);

	/* An initial memory over the cap traps at instantiation. */
	fake.initial_pages = 65;
	run_expect("echo", "memory_limit", 422, "more than 64 pages");
	fake.initial_pages = 0;
	/* The env's cap is lower than the agent's: it wins. */
	g.env.max_memory_pages = 8;
	run_expect("grow:16", "oom", 422, "no memory");
	g.env.max_memory_pages = 0;
	run_expect("grow:16", NULL, 200, NULL);
	run_expect("grow:100", "oom", 422, NULL);
}

static void test_exec__traps_map_to_stable_codes(void **state)
{
	const char *log;

	(void)state;
	run_expect("trap:5", "trap", 500, "the agent trapped");
	log = new_log();
	assert_non_null(strstr(log, "\"stopped\""));
	assert_non_null(strstr(log, "\"error\""));
	run_expect("trap:1", "trap", 500, NULL);
	run_expect("trap:8", "trap", 500, NULL);
	run_expect("trap:64", "timeout", 504, "past its deadline");
	assert_non_null(strstr(new_log(), "\"warn\""));
	run_expect("trap:65", "step_limit", 422, NULL);
	assert_null(strstr(new_log(), "stopped")); /* said by the step's own error */
	run_expect("trap:66", "memory_limit", 422, "more than 64 pages");
	run_expect("trap:67", "internal", 500, "out of resources");
	run_expect("trap:68", "trap", 500, NULL);
	assert_int_equal(fake.freed, 0); /* a trapped instance is never asked to free itself */
}

/* ---- the host functions ------------------------------------------------------------------- */

static void test_exec__log(void **state)
{
	const char *log;
	uint64_t denials = rt_metrics_get_label(RT_M_DENIALS, "log");

	(void)state;
	run_expect("log:3", NULL, 200, NULL);
	log = new_log();
	assert_non_null(strstr(log, "hello"));
	assert_non_null(strstr(log, "\"error\""));
	run_expect("log:77", NULL, 200, NULL); /* an unknown level is info */
	log = new_log();
	assert_non_null(strstr(log, "hello"));
	assert_non_null(strstr(log, "\"info\""));
	run_expect("log_oob", "trap", 500, "out of bounds");

	/* At most RT_MAX_LOG_LINES lines, then one line saying the rest is dropped. */
	run_expect("logs:1003", NULL, 200, NULL);
	log = new_log();
	assert_int_equal(count(log, "\"line\""), RT_MAX_LOG_LINES);
	assert_int_equal(count(log, "the rest are dropped"), 1);

	/* Not granted: refused, counted, not written. */
	g.pol->caps &= ~(uint32_t)RT_CAP_LOG;
	run_expect("log:1", NULL, 200, NULL);
	log = new_log();
	assert_null(strstr(log, "hello"));
	assert_non_null(strstr(log, "log is not granted"));
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "log"), denials + 1);
}

static void test_exec__clock_random_and_denial_flood(void **state)
{
	const char *log;
	uint64_t denials = rt_metrics_get_label(RT_M_DENIALS, "clock");

	(void)state;
	run_expect("clock", NULL, 200, NULL);
	assert_true(fake.clock > 0);
	run_expect("random:16", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], 0);
	run_expect("random:0", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], 0);
	run_expect("random:70000", NULL, 200, NULL); /* over 64 KiB: refused, no trap */
	assert_int_equal(fake.rc[0], -2);
	run_expect("random_oob", "trap", 500, "out of bounds");
	/* The kernel has no randomness to give: -2, not a trap. */
	getrandom_fail = 1;
	run_expect("random:16", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	assert_int_equal(getrandom_fail, 0);

	/* Not granted: 0 / -1, and a guest looping on a refusal floods nothing. */
	g.pol->caps &= ~(uint32_t)(RT_CAP_CLOCK | RT_CAP_RANDOM);
	run_expect("random:16", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	new_log();
	run_expect("clocks:150", NULL, 200, NULL);
	assert_int_equal(fake.clock, 0);
	log = new_log();
	assert_int_equal(count(log, "clock is not granted"), RT_MAX_DENIAL_LINES);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "clock"), denials + 150);
}

static void test_exec__llm_chat(void **state)
{
	const char *log;

	(void)state;
	run_expect("llm:1", NULL, 200, NULL);
	assert_int_equal(g.llm_calls, 1);
	assert_true(fake.rc[0] > 0);
	assert_string_equal(fake.read, g.llm_answer);
	assert_int_equal(fake.rc[1], (int32_t)strlen(g.llm_answer));
	assert_non_null(strstr(new_log(), "llm_chat answered"));

	/* limits.max_steps is 2: the third call stops the agent. */
	run_expect("llm:2", NULL, 200, NULL);
	run_expect("llm:3", "step_limit", 422, "more than 2 model calls");
	assert_int_equal(g.llm_calls, 1 + 2 + 2);

	/* The provider fails: -2 for the guest, the reason in the log. */
	g.llm_answer = NULL;
	run_expect("llm:1", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	assert_non_null(strstr(new_log(), "the model is down"));

	/* An answer over RT_LLM_RESPONSE_MAX is not handed to the guest. */
	g.llm_answer = "{}";
	g.llm_answer_len = RT_LLM_RESPONSE_MAX + 1;
	run_expect("llm:1", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	g.llm_answer_len = 0;

	/* A request over RT_MAX_HOST_REQUEST never reaches the provider. */
	g.llm_calls = 0;
	run_expect("llm_big", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	assert_int_equal(g.llm_calls, 0);

	/* No provider configured. */
	g.env.llm = NULL;
	run_expect("llm:1", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	log = new_log();
	assert_non_null(strstr(log, "no model provider is configured"));
	assert_non_null(strstr(log, "openai"));

	/* Not granted. */
	g.env.llm = &test_llm;
	g.pol->caps &= ~(uint32_t)RT_CAP_LLM_CHAT;
	run_expect("llm:1", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	assert_int_equal(g.llm_calls, 0);
}

static void test_exec__tool_call(void **state)
{
	const char *log;

	(void)state;
	run_expect("tool:{\"tool\":\"clock_now\",\"args\":{}}", NULL, 200, NULL);
	assert_true(fake.rc[0] > 0);
	assert_non_null(strstr(fake.read, "\"ok\":true"));
	/* kv_get with no store configured: an answer, not a refusal. */
	run_expect("tool:{\"tool\":\"kv_get\",\"args\":{\"key\":\"k\"}}", NULL, 200, NULL);
	assert_true(fake.rc[0] > 0);
	/* Malformed requests: -2. */
	run_expect("tool:not json", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	run_expect("tool:{\"args\":{}}", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	run_expect("tool:{\"tool\":\"a\",\"tool\":\"b\"}", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -2);
	/* Refusals: -1, said in the log. */
	new_log();
	run_expect("tool:{\"tool\":\"http_fetch\",\"args\":{}}", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	assert_non_null(strstr(new_log(), "not in the agent's tool table"));
	run_expect("tool:{\"tool\":\"shell_exec\",\"args\":{}}", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	assert_non_null(strstr(new_log(), "not offered by this runtime"));
	run_expect("tool:{\"tool\":\"kv_put\",\"args\":{\"key\":\"k\",\"value\":1}}", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	log = new_log();
	assert_non_null(strstr(log, "needs capability kv.write"));

	/* Tool calls per invocation: max_steps (2) * RT_TOOL_CALLS_PER_STEP. */
	run_expect("tools:32", NULL, 200, NULL);
	run_expect("tools:33", "step_limit", 422, "more than 32 tool calls");

	/* result_read with nothing pending; a pending result read out of bounds. */
	run_expect("read_nothing", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	run_expect("read_oob", "trap", 500, "out of bounds");

	g.pol->caps &= ~(uint32_t)RT_CAP_TOOL_CALL;
	run_expect("tool:{\"tool\":\"clock_now\",\"args\":{}}", NULL, 200, NULL);
	assert_int_equal(fake.rc[0], -1);
	assert_non_null(strstr(new_log(), "tool_call is not granted"));
}

/* ---- allocation failures -------------------------------------------------------------- */

/* Failing allocations: an answer that says so, or the normal one. */
static int invoke_classified(const char *cmd)
{
	rt_invoke_result res;
	int rc;

	fake.cmd = cmd;
	rc = rt_exec_invoke(&res, &fake_module, g.pol, &g.env, "{}", 2);
	if (rc == 0 && res.error_code) {
		const char *m = res.error_message ? res.error_message : "";

		rc = strstr(m, "out of memory") || strstr(m, "out of resources")
			     ? AF_ENOMEM
			     : art_error_set(AF_EINTERNAL, "%s: %s: %s", cmd, res.error_code, m);
	} else if (rc == 0 && (!res.body || !strstr(res.body, "\"ok\":true"))) {
		rc = art_error_set(AF_EINTERNAL, "%s: %s", cmd, res.body ? res.body : "(no body)");
	}
	rt_invoke_result_clear(&res);
	return rc;
}

static int run_exec_cycle(void *ctx)
{
	static const char *const hosts[] = {"api.example.com", "*.example.org"};
	rt_policy *p = NULL;
	char *doc = NULL;
	size_t len = 0;
	int rc;

	(void)ctx;
	if ((rc = rt_policy_parse(&p, FAKE_DESCRIBE, strlen(FAKE_DESCRIBE), all_caps, 6)) == 0)
		rc = rt_policy_set_hosts(p, hosts, 2);
	rt_policy_free(p);
	if (rc < 0)
		return rc;
	if ((rc = rt_exec_describe(&doc, &len, &fake_module, &g.env)) == 0 &&
	    strcmp(doc, FAKE_DESCRIBE) != 0)
		rc = art_error_set(AF_EINTERNAL, "describe: %s", doc);
	free(doc);
	if (rc < 0)
		return rc;
	if ((rc = invoke_classified("log:1")) < 0 ||
	    (rc = invoke_classified("tool:{\"tool\":\"clock_now\",\"args\":{}}")) < 0 ||
	    (rc = invoke_classified("llm:1")) < 0 ||
	    (rc = invoke_classified("tool:{\"tool\":\"http_fetch\"}")) < 0)
		return rc;
	return invoke_classified("answer:{\"ok\":true,\"n\":1}");
}

static void test_exec__allocation_failures(void **state)
{
	const fi_op op = {"rt_policy_parse+rt_exec_describe+rt_exec_invoke", run_exec_cycle, NULL,
			  NULL};

	(void)state;
	if (fi_torture(&op) < 0)
		fail_msg("%s: see above", op.name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_exec__policy_parse_refuses_malformed_describes, reset),
		cmocka_unit_test_setup(test_exec__error_helpers, reset),
		cmocka_unit_test_setup(test_exec__describe, reset),
		cmocka_unit_test_setup(test_exec__answers_are_checked, reset),
		cmocka_unit_test_setup(test_exec__requests_that_do_not_fit, reset),
		cmocka_unit_test_setup(test_exec__traps_map_to_stable_codes, reset),
		cmocka_unit_test_setup(test_exec__log, reset),
		cmocka_unit_test_setup(test_exec__clock_random_and_denial_flood, reset),
		cmocka_unit_test_setup(test_exec__llm_chat, reset),
		cmocka_unit_test_setup(test_exec__tool_call, reset),
		cmocka_unit_test_setup(test_exec__allocation_failures, reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
