/*
 * test_llm_config.c - the provider layer of rt/llm.h without a model
 * server: every --llm-* option and AF_LLM_* variable refused with a message
 * naming it (no value, out of range, not a number, unknown), the choice of
 * a provider (conflicting options, a provider without what it needs),
 * rt_llm_chat's argument checks, the scripted provider's refusals of a bad
 * script (missing, not JSON, wrong shape, an entry too large, a "responses"
 * key the scanner cannot find) and its byte spans across nested values,
 * and the recorder (file content, a failing inner provider, a file that
 * can no longer be written).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"

#include "art/error.h"
#include "art/util.h"
#include "rt/llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/af-test-llm-config-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	lab_rmtree(root);
	return 0;
}

static const char *write_file(const char *name, const char *text, size_t len)
{
	static char path[4][160];
	static int k;
	char *p = path[k++ % 4];
	FILE *fp;

	snprintf(p, sizeof(path[0]), "%s/%s", root, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	return p;
}

static void expect_msg(const char *want)
{
	if (!strstr(art_error_last(), want))
		fail_msg("'%s' lacks '%s'", art_error_last(), want);
}

/* ---- options -------------------------------------------------------------------------------- */

static void expect_option_refused(int option, const char *value, const char *want)
{
	rt_llm_config c;

	rt_llm_config_init(&c);
	assert_int_equal(rt_llm_config_option(&c, option, value), AF_EINVAL);
	expect_msg(want);
	assert_int_equal(c.set, 0);
	assert_int_equal(c.timeout_ms, RT_LLM_DEFAULT_TIMEOUT_MS);
	assert_int_equal(c.retries, RT_LLM_DEFAULT_RETRIES);
}

static void test_llm_config__options(void **state)
{
	rt_llm_config c;

	(void)state;
	assert_int_equal(rt_llm_config_option(NULL, RT_LLM_OPT_MODEL, "m"), AF_EINVAL);
	expect_option_refused(-1, "x", "unknown model provider option -1");
	expect_option_refused(RT_LLM_OPT_COUNT, "x", "unknown model provider option");
	expect_option_refused(RT_LLM_OPT_MODEL, NULL, "--llm-model: needs a value");
	expect_option_refused(RT_LLM_OPT_MODEL, "", "--llm-model: needs a value");
	expect_option_refused(RT_LLM_OPT_PROVIDER, "claude", "'claude' is not a provider");
	expect_option_refused(RT_LLM_OPT_TIMEOUT_MS, "0", "--llm-timeout-ms: expected 1 .. 3600000");
	expect_option_refused(RT_LLM_OPT_TIMEOUT_MS, "3600001", "got '3600001'");
	expect_option_refused(RT_LLM_OPT_TIMEOUT_MS, "12a", "got '12a'");
	expect_option_refused(RT_LLM_OPT_TIMEOUT_MS, "-5", "got '-5'");
	expect_option_refused(RT_LLM_OPT_TIMEOUT_MS, "99999999999", "got '99999999999'");
	expect_option_refused(RT_LLM_OPT_CONNECT_TIMEOUT_MS, "600001",
			      "--llm-connect-timeout-ms: expected 1 .. 600000");
	expect_option_refused(RT_LLM_OPT_RETRIES, "11", "--llm-retries: expected 0 .. 10");
	expect_option_refused(RT_LLM_OPT_MAX_TOKENS_FIELD, "tokens",
			      "expected max_completion_tokens or max_tokens");

	rt_llm_config_init(&c);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_PROVIDER, "none"), 0);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_TIMEOUT_MS, "3600000"), 0);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_CONNECT_TIMEOUT_MS, "1"), 0);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_RETRIES, "0"), 0);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_MAX_TOKENS_FIELD, "max_tokens"), 0);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_API_KEY_FILE, "/k"), 0);
	assert_string_equal(c.provider, "none");
	assert_int_equal(c.timeout_ms, 3600000);
	assert_int_equal(c.connect_timeout_ms, 1);
	assert_int_equal(c.retries, 0);
	assert_string_equal(c.max_tokens_field, "max_tokens");
	assert_string_equal(c.api_key_file, "/k");
	assert_int_equal(c.set, (1u << RT_LLM_OPT_PROVIDER) | (1u << RT_LLM_OPT_TIMEOUT_MS) |
					(1u << RT_LLM_OPT_CONNECT_TIMEOUT_MS) |
					(1u << RT_LLM_OPT_RETRIES) |
					(1u << RT_LLM_OPT_MAX_TOKENS_FIELD) |
					(1u << RT_LLM_OPT_API_KEY_FILE));
}

static void test_llm_config__environment(void **state)
{
	rt_llm_config c;

	(void)state;
	assert_int_equal(rt_llm_config_env(NULL), AF_EINVAL);
	/* A flag given wins over the variable; empty variables are ignored. */
	rt_llm_config_init(&c);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_RETRIES, "2"), 0);
	setenv("AF_LLM_RETRIES", "9", 1);
	setenv("AF_LLM_MODEL", "", 1);
	setenv("AF_LLM_TIMEOUT_MS", "1500", 1);
	assert_int_equal(rt_llm_config_env(&c), 0);
	assert_int_equal(c.retries, 2);
	assert_null(c.model);
	assert_int_equal(c.timeout_ms, 1500);
	/* A bad variable is named. */
	rt_llm_config_init(&c);
	setenv("AF_LLM_TIMEOUT_MS", "soon", 1);
	assert_int_equal(rt_llm_config_env(&c), AF_EINVAL);
	expect_msg("AF_LLM_TIMEOUT_MS: expected 1 .. 3600000 milliseconds, got 'soon'");
	unsetenv("AF_LLM_RETRIES");
	unsetenv("AF_LLM_MODEL");
	unsetenv("AF_LLM_TIMEOUT_MS");
}

static void expect_open_refused(const rt_llm_config *c, const char *want)
{
	rt_llm_provider *p = (rt_llm_provider *)1;

	assert_int_equal(rt_llm_open(&p, c), AF_EINVAL);
	assert_null(p);
	expect_msg(want);
}

static void test_llm_config__choosing_a_provider(void **state)
{
	static const char script[] = "{\"responses\":[{\"role\":\"assistant\",\"content\":\"x\"}]}";
	rt_llm_config c;
	rt_llm_provider *p = (rt_llm_provider *)1;
	const char *path = write_file("one.json", script, sizeof(script) - 1);

	(void)state;
	rt_llm_config_init(&c);
	assert_int_equal(rt_llm_open(NULL, &c), AF_EINVAL);
	assert_int_equal(rt_llm_open(&p, NULL), AF_EINVAL);
	/* Nothing configured: no provider, not an error. */
	assert_int_equal(rt_llm_open(&p, &c), 0);
	assert_null(p);
	c.script = path;
	c.base_url = "http://127.0.0.1:1/v1";
	expect_open_refused(&c, "both --llm-script and --llm-base-url are given");
	c.provider = "scripted";
	expect_open_refused(&c, "are for the openai provider");
	c.base_url = NULL;
	c.model = "m";
	expect_open_refused(&c, "are for the openai provider");
	c.model = NULL;
	c.script = NULL;
	expect_open_refused(&c, "needs --llm-script FILE");
	c.provider = "openai";
	c.script = path;
	expect_open_refused(&c, "--llm-script is for the scripted provider");
	c.provider = "mystery";
	expect_open_refused(&c, "model provider 'mystery' is unknown");
	/* The script alone picks the scripted provider. */
	c.provider = NULL;
	assert_int_equal(rt_llm_open(&p, &c), 0);
	assert_non_null(p);
	assert_string_equal(p->name, "scripted");
	assert_non_null(strstr(p->description, "(1 responses)"));
	rt_llm_provider_free(p);
	rt_llm_provider_free(NULL);
	c.provider = "none";
	assert_int_equal(rt_llm_open(&p, &c), 0);
	assert_null(p);
}

static void test_llm_config__chat_arguments(void **state)
{
	static const rt_llm_provider empty = {.name = "empty"};
	char *resp = (char *)1;
	size_t len = 5;

	(void)state;
	assert_int_equal(rt_llm_chat(&empty, NULL, "{}", 2, NULL, &len), AF_EINVAL);
	assert_int_equal(rt_llm_chat(&empty, NULL, "{}", 2, &resp, NULL), AF_EINVAL);
	assert_int_equal(rt_llm_chat(NULL, NULL, "{}", 2, &resp, &len), AF_EINVAL);
	expect_msg("no model provider");
	assert_null(resp);
	assert_int_equal(len, 0);
	resp = (char *)1;
	assert_int_equal(rt_llm_chat(&empty, NULL, "{}", 2, &resp, &len), AF_EINVAL);
	assert_null(resp);
}

/* ---- the scripted provider --------------------------------------------------------------- */

static void expect_script_refused(const char *text, int rc, const char *want)
{
	rt_llm_provider *p = (rt_llm_provider *)1;
	const char *path = write_file("bad.json", text, strlen(text));

	assert_int_equal(rt_llm_scripted_open(&p, path), rc);
	assert_null(p);
	expect_msg(want);
}

static void test_llm_config__scripts_refused(void **state)
{
	rt_llm_provider *p = (rt_llm_provider *)1;
	char path[200], *big;
	size_t n = RT_LLM_RESPONSE_MAX + 64, i;

	(void)state;
	assert_int_equal(rt_llm_scripted_open(NULL, "x"), AF_EINVAL);
	assert_int_equal(rt_llm_scripted_open(&p, NULL), AF_EINVAL);
	snprintf(path, sizeof(path), "%s/missing.json", root);
	assert_int_equal(rt_llm_scripted_open(&p, path), AF_ENOTFOUND);
	assert_null(p);
	expect_script_refused("{\"responses\": [", AF_ESYNTAX, ":1:");
	expect_script_refused("{\"responses\": [{}], \"responses\": [{}]}", AF_ESYNTAX, "not JSON");
	expect_script_refused("[{\"responses\": []}]", AF_ESYNTAX, "expected {\"responses\"");
	expect_script_refused("{\"responses\": []}", AF_ESYNTAX, "1..10000 response objects");
	expect_script_refused("{\"responses\": {}}", AF_ESYNTAX, "expected {\"responses\"");
	expect_script_refused("{\"responses\": [{}, 3]}", AF_ESYNTAX, "responses[1] is not an object");
	/* Found by jansson, not by the byte scanner: an escaped key. */
	expect_script_refused("{\"respons\\u0065s\": [{}]}", AF_ESYNTAX,
			      "cannot locate the entries of \"responses\"");

	/* One entry over RT_LLM_RESPONSE_MAX. */
	big = malloc(n + 1);
	assert_non_null(big);
	memcpy(big, "{\"responses\":[{\"c\":\"", 20);
	for (i = 20; i < n - 4; i++)
		big[i] = 'a';
	memcpy(big + n - 4, "\"}]}", 4);
	big[n] = '\0';
	expect_script_refused(big, AF_ETOOBIG, "responses[0] is over 1048576 bytes");
	free(big);
}

static void test_llm_config__script_spans_across_nested_values(void **state)
{
	/* Members before "responses" with every kind of value the scanner skips:
	 * strings with escaped quotes and brackets, nested arrays and objects,
	 * numbers and literals; entries with the same inside. */
	static const char text[] =
		"{ \"comment\" : \"a \\\"quoted\\\" ] } string\",\n"
		"  \"n\": -12.5e3, \"flag\": true, \"none\": null,\n"
		"  \"nested\": {\"a\": [1, [2, {\"b\": \"]\"}]], \"c\": {}},\n"
		"  \"responses\" : [ {\"role\":\"assistant\",\"content\":\"first ]\"} ,\n"
		"     {\"role\":\"assistant\",\"content\":\"{\\\"k\\\": [1]}\"},{\"x\":[[]]} ],\n"
		"  \"after\": 1 }";
	rt_llm_provider *p = NULL;
	char *resp = NULL;
	size_t len = 0;
	const char *path = write_file("nested.json", text, sizeof(text) - 1);
	static const char turn0[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}";
	static const char turn1[] = "{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"},{\"role\":\"tool\"}]}";
	static const char turn9[] =
		"{\"messages\":[{\"role\":\"assistant\"},{\"role\":\"assistant\"},{\"role\":\"assistant\"},"
		"{\"role\":\"assistant\"}]}";

	(void)state;
	assert_int_equal(rt_llm_scripted_open(&p, path), 0);
	assert_int_equal(rt_llm_chat(p, NULL, turn0, strlen(turn0), &resp, &len), 0);
	assert_string_equal(resp, "{\"role\":\"assistant\",\"content\":\"first ]\"}");
	assert_int_equal(len, strlen(resp));
	free(resp);
	assert_int_equal(rt_llm_chat(p, NULL, turn1, strlen(turn1), &resp, &len), 0);
	assert_string_equal(resp, "{\"role\":\"assistant\",\"content\":\"{\\\"k\\\": [1]}\"}");
	free(resp);
	/* Past the last entry: the last one again. */
	assert_int_equal(rt_llm_chat(p, NULL, turn9, strlen(turn9), &resp, &len), 0);
	assert_string_equal(resp, "{\"x\":[[]]}");
	free(resp);
	/* A request that is not a conversation. */
	resp = (char *)1;
	assert_int_equal(rt_llm_chat(p, NULL, "[1]", 3, &resp, &len), AF_ESYNTAX);
	assert_null(resp);
	assert_int_equal(len, 0);
	expect_msg("no messages array");
	assert_int_equal(rt_llm_chat(p, NULL, "{\"messages\":", 12, &resp, &len), AF_ESYNTAX);
	rt_llm_provider_free(p);
}

/* ---- the recorder ---------------------------------------------------------------------- */

static const char *inner_answer;

static int inner_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	(void)ctx;
	(void)req;
	(void)len;
	if (!inner_answer)
		return art_error_set(AF_EIO, "inner model down");
	*resp = strdup(inner_answer);
	*resp_len = strlen(inner_answer);
	return *resp ? 0 : AF_ENOMEM;
}

static void test_llm_config__recorder(void **state)
{
	static const rt_llm_provider inner = {.name = "inner", .chat = inner_chat};
	rt_llm_provider *rec = (rt_llm_provider *)1;
	char path[300], dir[200], *text = NULL, *resp = NULL;
	size_t len = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/rec", root);
	snprintf(path, sizeof(path), "%s/session.json", dir);
	assert_int_equal(rt_llm_record_open(NULL, &inner, path), AF_EINVAL);
	assert_int_equal(rt_llm_record_open(&rec, NULL, path), AF_EINVAL);
	assert_int_equal(rt_llm_record_open(&rec, &inner, NULL), AF_EINVAL);
	/* A directory that does not exist: refused at once. */
	assert_int_equal(rt_llm_record_open(&rec, &inner, path), AF_EIO);
	assert_null(rec);

	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(rt_llm_record_open(&rec, &inner, path), 0);
	assert_string_equal(rec->name, "inner");
	assert_non_null(strstr(rec->description, "inner, recorded to"));
	assert_int_equal(art_file_read(&text, &len, path, 1 << 20), 0);
	assert_string_equal(text, "{\"responses\":[]}\n");
	free(text);

	inner_answer = "{\"n\":1}";
	assert_int_equal(rt_llm_chat(rec, NULL, "{}", 2, &resp, &len), 0);
	assert_string_equal(resp, "{\"n\":1}");
	free(resp);
	/* The inner provider fails: passed on, nothing recorded. */
	inner_answer = NULL;
	assert_int_equal(rt_llm_chat(rec, NULL, "{}", 2, &resp, &len), AF_EIO);
	expect_msg("inner model down");
	inner_answer = "{\"n\":2}";
	assert_int_equal(rec->chat(rec->ctx, "{}", 2, &resp, &len), 0);
	free(resp);
	assert_int_equal(art_file_read(&text, &len, path, 1 << 20), 0);
	assert_string_equal(text, "{\"responses\":[\n  {\"n\":1},\n  {\"n\":2}\n]}\n");
	free(text);

	/* The file can no longer be written: the answers still flow. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	inner_answer = "{\"n\":3}";
	assert_int_equal(rt_llm_chat(rec, NULL, "{}", 2, &resp, &len), 0);
	assert_string_equal(resp, "{\"n\":3}");
	free(resp);
	assert_int_equal(rt_llm_chat(rec, NULL, "{}", 2, &resp, &len), 0);
	free(resp);
	assert_int_equal(access(path, F_OK), -1);
	rt_llm_provider_free(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llm_config__options),
		cmocka_unit_test(test_llm_config__environment),
		cmocka_unit_test(test_llm_config__choosing_a_provider),
		cmocka_unit_test(test_llm_config__chat_arguments),
		cmocka_unit_test(test_llm_config__scripts_refused),
		cmocka_unit_test(test_llm_config__script_spans_across_nested_values),
		cmocka_unit_test(test_llm_config__recorder),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
