/*
 * test_support.c - the runtime's small modules: JSON-lines log escaping,
 * the per-agent key-value store (caps, isolation), the scripted LLM
 * provider (file errors, turn selection), policies parsed from a describe
 * JSON, and the error-code / HTTP-status table.
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
#include "rt/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/af-test-support-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	lab_rmtree(root);
	return 0;
}

static void test_log__escapes_everything_a_guest_can_send(void **state)
{
	char out[256];
	size_t n;

	(void)state;
	n = rt_log_escape(out, "a\"b\\c\nd\x01\x7f", 9, 100);
	assert_int_equal(n, strlen("a\\\"b\\\\c\\nd\\u0001\\u007f"));
	assert_memory_equal(out, "a\\\"b\\\\c\\nd\\u0001\\u007f", n);
	/* Valid UTF-8 passes, invalid bytes become U+FFFD, overlongs and surrogates too. */
	n = rt_log_escape(out, "\xc3\xa9\xff\xc0\xaf\xed\xa0\x80", 8, 100);
	out[n] = 0;
	assert_string_equal(out, "\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd");
	/* A cap cuts the input. */
	assert_int_equal(rt_log_escape(out, "abcdef", 6, 3), 3);
}

/* Every way a UTF-8 sequence can be malformed becomes U+FFFD, byte by byte;
 * the longest valid forms pass. */
static void test_log__malformed_utf8_is_replaced(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},   /* U+1F600 */
		{"\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"},   /* U+10FFFF, the last */
		{"\xef\xbf\xbd", 3, "\xef\xbf\xbd"},           /* U+FFFD itself */
		{"\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* past U+10FFFF */
		{"\xf0\x8f\xbf\xbf", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* overlong 4 */
		{"\xe0\x9f\xbf", 3, "\\ufffd\\ufffd\\ufffd"},             /* overlong 3 */
		{"\xf0\x9f\x98", 3, "\\ufffd\\ufffd\\ufffd"},             /* cut short */
		{"\xe2\x82", 2, "\\ufffd\\ufffd"},                         /* cut short */
		{"\xe2(\xa1", 3, "\\ufffd(\\ufffd"},                      /* bad continuation */
		{"\xf5\x80\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* no such lead */
		{"\xc1\xbf", 2, "\\ufffd\\ufffd"},                         /* overlong 2 */
		{"a\tb\rc", 5, "a\\tb\\rc"},
	};
	char out[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = rt_log_escape(out, cases[i].in, cases[i].len, 100);
		out[n] = '\0';
		if (strcmp(out, cases[i].out) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, out, cases[i].out);
	}
}

/* Missing parts of a line get their defaults; a field without a value is left out. */
static void test_log__missing_fields_get_defaults(void **state)
{
	FILE *fp = tmpfile();
	char line[4096];
	rt_log_field f[2] = {{"gone", NULL, 0}, {"kept", "v", 1}};
	json_t *j;

	(void)state;
	assert_non_null(fp);
	rt_log_emit(fp, NULL, NULL, NULL, NULL, 99, f, 2);
	rewind(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "event")), "log");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "");
	assert_null(json_object_get(j, "gone"));
	assert_null(json_object_get(j, "truncated"));
	assert_string_equal(json_string_value(json_object_get(j, "kept")), "v");
	json_decref(j);
	fclose(fp);
}

static void test_log__lines_are_json_and_capped(void **state)
{
	FILE *fp = tmpfile();
	char *big = malloc(RT_LOG_MSG_MAX * 3);
	char line[65536];
	rt_log_field f = {"reason", "x\"y", 3};
	json_t *j;

	(void)state;
	assert_non_null(fp);
	memset(big, '\n', RT_LOG_MSG_MAX * 3);
	rt_log_emit(fp, "warn", "guest", "a@1.0.0", big, RT_LOG_MSG_MAX * 3, &f, 1);
	rt_log_printf(fp, "info", "x", NULL, "n=%d", 5);
	rewind(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "msg"))), RT_LOG_MSG_MAX);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "x\"y");
	assert_string_equal(json_string_value(json_object_get(j, "agent")), "a@1.0.0");
	assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 24);
	json_decref(j);
	assert_non_null(fgets(line, sizeof(line), fp));
	j = json_loads(line, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "n=5");
	assert_null(json_object_get(j, "agent"));
	json_decref(j);
	free(big);
	fclose(fp);
}

static void test_kv__caps_and_isolation(void **state)
{
	char dir[128], key[RT_KV_KEY_MAX + 2], *v = NULL, *big;
	size_t vlen = 0;
	rt_kv *kv = NULL;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/kv", root);
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	assert_int_equal(rt_kv_put(kv, "a", "k", 1, "1", 1), 0);
	assert_int_equal(rt_kv_put(kv, "ab", "k", 1, "2", 1), 0);
	assert_int_equal(rt_kv_get(kv, "a", "k", 1, &v, &vlen), 0);
	assert_string_equal(v, "1");
	free(v);
	assert_int_equal(rt_kv_get(kv, "ab", "k", 1, &v, &vlen), 0);
	assert_string_equal(v, "2");
	free(v);
	/* "a" + "\0bk" must not reach "ab"'s "k" and the like. */
	assert_int_equal(rt_kv_get(kv, "b", "k", 1, &v, &vlen), AF_ENOTFOUND);
	assert_null(v);
	memset(key, 'k', sizeof(key));
	assert_int_equal(rt_kv_put(kv, "a", key, RT_KV_KEY_MAX + 1, "1", 1), AF_ETOOBIG);
	assert_int_equal(rt_kv_put(kv, "a", key, RT_KV_KEY_MAX, "1", 1), 0);
	assert_int_equal(rt_kv_put(kv, "a", "", 0, "1", 1), AF_EINVAL);
	assert_int_equal(rt_kv_put(kv, "", "k", 1, "1", 1), AF_EINVAL);
	big = calloc(1, RT_KV_VALUE_MAX + 1);
	assert_int_equal(rt_kv_put(kv, "a", "k", 1, big, RT_KV_VALUE_MAX + 1), AF_ETOOBIG);
	assert_int_equal(rt_kv_put(kv, "a", "k", 1, big, RT_KV_VALUE_MAX), 0);
	free(big);
	rt_kv_close(kv);
	/* Reopen: the data is there. */
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	assert_int_equal(rt_kv_get(kv, "ab", "k", 1, &v, &vlen), 0);
	free(v);
	rt_kv_close(kv);
	assert_int_equal(rt_kv_open(&kv, "/proc/no/such/dir"), AF_EIO);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_llm__scripted_provider_replays_by_turn(void **state)
{
	static const char *const bad[] = {"", "[]", "{\"responses\":[]}", "{\"responses\":[1]}",
					  "{\"responses\":{}}", "{\"responses\":[{}],\"responses\":[{}]}"};
	rt_llm_provider *p = NULL;
	char path[128], *resp = NULL;
	size_t len = 0, i;
	const char *req;

	(void)state;
	snprintf(path, sizeof(path), "%s/script.json", root);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i]);
		assert_int_equal(rt_llm_scripted_open(&p, path), AF_ESYNTAX);
		assert_null(p);
	}
	assert_int_equal(rt_llm_scripted_open(&p, "/no/such/file"), AF_ENOTFOUND);
	write_file(path, "{\"responses\":[{\"n\":0},{\"n\":1}]}");
	assert_int_equal(rt_llm_scripted_open(&p, path), 0);
	assert_string_equal(p->name, "scripted");
	req = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
	assert_int_equal(p->chat(p->ctx, req, strlen(req), &resp, &len), 0);
	assert_string_equal(resp, "{\"n\":0}");
	free(resp);
	req = "{\"messages\":[{\"role\":\"assistant\"},{\"role\":\"tool\"},{\"role\":\"assistant\"},{\"role\":\"tool\"}]}";
	assert_int_equal(p->chat(p->ctx, req, strlen(req), &resp, &len), 0);
	assert_string_equal(resp, "{\"n\":1}"); /* past the end: the last one again */
	free(resp);
	assert_int_equal(p->chat(p->ctx, "{", 1, &resp, &len), AF_ESYNTAX);
	assert_null(resp);
	rt_llm_provider_free(p);
	rt_llm_provider_free(NULL);
}

static void test_policy__from_describe_and_manifest_caps(void **state)
{
	static const char describe[] =
		"{\"name\":\"a\",\"version\":\"1.0.0\",\"limits\":{\"max_steps\":3,\"timeout_ms\":50},"
		"\"model\":{\"provider\":\"openai\"},\"tools\":[{\"name\":\"kv_get\"},{\"name\":\"shell\"}],"
		"\"steps\":[{\"id\":\"s\",\"tool\":\"kv_get\"}]}";
	static const char *const caps[] = {"kv.read", "log", "filesystem"};
	rt_policy *p = NULL;

	(void)state;
	assert_int_equal(rt_policy_parse(&p, describe, strlen(describe), caps, 3), 0);
	assert_string_equal(p->ref, "a@1.0.0");
	assert_int_equal(p->caps, RT_CAP_KV_READ | RT_CAP_LOG);
	assert_int_equal(p->max_steps, 3);
	assert_int_equal(p->timeout_ms, 50);
	assert_int_equal(p->memory_pages, 64);
	assert_false(p->llm);
	assert_string_equal(p->provider, "openai");
	assert_int_equal(p->n_tools, 2);
	assert_true(p->tools[0].builtin >= 0);
	assert_int_equal(p->tools[1].builtin, -1);
	rt_policy_free(p);
	assert_int_equal(rt_policy_parse(&p, "[]", 2, NULL, 0), AF_ECORRUPT);
	assert_int_equal(rt_policy_parse(&p, "{\"name\":\"a\"}", 12, NULL, 0), AF_ECORRUPT);
	assert_int_equal(rt_policy_parse(&p, "{\"name\":\"a\",\"version\":\"1\",\"limits\":{\"max_steps\":0}}",
					 strlen("{\"name\":\"a\",\"version\":\"1\",\"limits\":{\"max_steps\":0}}"),
					 NULL, 0), AF_ECORRUPT);
	assert_null(p);
	assert_int_equal(rt_cap_bit("kv.write"), RT_CAP_KV_WRITE);
	assert_int_equal(rt_cap_bit("shell"), 0);
}

static void test_errors__codes_map_to_statuses(void **state)
{
	rt_invoke_result res;
	json_t *j;

	(void)state;
	assert_int_equal(rt_error_status(NULL), 200);
	assert_int_equal(rt_error_status("invalid_json"), 400);
	assert_int_equal(rt_error_status("invalid_input"), 400);
	assert_int_equal(rt_error_status("tool_denied"), 403);
	assert_int_equal(rt_error_status("not_found"), 404);
	assert_int_equal(rt_error_status("payload_too_large"), 413);
	assert_int_equal(rt_error_status("step_limit"), 422);
	assert_int_equal(rt_error_status("memory_limit"), 422);
	assert_int_equal(rt_error_status("oom"), 422);
	assert_int_equal(rt_error_status("step_failed"), 422);
	assert_int_equal(rt_error_status("trap"), 500);
	assert_int_equal(rt_error_status("internal"), 500);
	assert_int_equal(rt_error_status("llm_error"), 502);
	assert_int_equal(rt_error_status("agent_refused"), 503);
	assert_int_equal(rt_error_status("timeout"), 504);
	assert_int_equal(rt_error_status("whatever"), 500);
	memset(&res, 0, sizeof(res));
	assert_int_equal(rt_invoke_result_set_error(&res, "timeout", "took %d \"ms\"", 5), 0);
	assert_string_equal(res.error_code, "timeout");
	assert_int_equal(res.http_status, 504);
	j = json_loadb(res.body, res.body_len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
			    "took 5 \"ms\"");
	json_decref(j);
	/* An unknown code never leaks out: internal. */
	assert_int_equal(rt_invoke_result_set_error(&res, "made_up", "x"), 0);
	assert_string_equal(res.error_code, "internal");
	rt_invoke_result_clear(&res);
	assert_null(res.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log__escapes_everything_a_guest_can_send),
		cmocka_unit_test(test_log__lines_are_json_and_capped),
		cmocka_unit_test(test_log__malformed_utf8_is_replaced),
		cmocka_unit_test(test_log__missing_fields_get_defaults),
		cmocka_unit_test(test_kv__caps_and_isolation),
		cmocka_unit_test(test_llm__scripted_provider_replays_by_turn),
		cmocka_unit_test(test_policy__from_describe_and_manifest_caps),
		cmocka_unit_test(test_errors__codes_map_to_statuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
