/*
 * test_limits.c - the one table of a template's limits (art/limits.h): its
 * reader, and the agreement of its three users on every edge of every
 * range: the template checker (YAML, pipeline), the code generator and the
 * runtime (the resolved template as JSON).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/limits.h"
#include "gen/cgen.h"
#include "pipe/node.h"
#include "pipe/template.h"
#include "rt/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_limits__table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ART_LIMIT_COUNT; i++) {
		const art_limit *l = &art_limits[i];

		assert_ptr_equal(art_limits_find(l->name), l);
		assert_true(l->min <= l->def && l->def <= l->max);
		assert_true(art_limit_in_range(l, l->min));
		assert_true(art_limit_in_range(l, l->max));
		assert_false(art_limit_in_range(l, (long long)l->min - 1));
		assert_false(art_limit_in_range(l, (long long)l->max + 1));
		assert_non_null(l->meaning);
	}
	/* The values of docs/templates.md. */
	assert_int_equal(art_limits[ART_LIMIT_MAX_STEPS].def, 8);
	assert_int_equal(art_limits[ART_LIMIT_MAX_STEPS].max, 1000);
	assert_int_equal(art_limits[ART_LIMIT_TIMEOUT_MS].def, 30000);
	assert_int_equal(art_limits[ART_LIMIT_TIMEOUT_MS].max, 600000);
	assert_int_equal(art_limits[ART_LIMIT_MEMORY_PAGES].def, 64);
	assert_int_equal(art_limits[ART_LIMIT_MEMORY_PAGES].min, 2);
	assert_int_equal(art_limits[ART_LIMIT_MEMORY_PAGES].max, 65536);
	assert_null(art_limits_find("max_step"));
	assert_null(art_limits_find(NULL));
	assert_false(art_limit_in_range(&art_limits[0], -9223372036854775807LL - 1));
}

static int read_text(art_limit_values *v, const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	assert_non_null(j);
	rc = art_limits_read(v, j, AF_EINVAL, "test");
	json_decref(j);
	return rc;
}

static void test_limits__read(void **state)
{
	art_limit_values v;

	(void)state;
	/* Missing: the defaults. */
	assert_int_equal(art_limits_read(&v, NULL, AF_EINVAL, "test"), 0);
	assert_int_equal(v.max_steps, 8);
	assert_int_equal(v.timeout_ms, 30000);
	assert_int_equal(v.memory_pages, 64);
	assert_int_equal(art_limits_read(&v, json_null(), AF_EINVAL, "test"), 0);
	assert_int_equal(v.memory_pages, 64);
	assert_int_equal(read_text(&v, "{}"), 0);
	assert_int_equal(v.timeout_ms, 30000);
	/* A null key is unset; set ones are taken; other keys are not ours. */
	assert_int_equal(read_text(&v, "{\"max_steps\":null,\"timeout_ms\":1,\"memory_pages\":65536,"
				       "\"other\":\"x\"}"), 0);
	assert_int_equal(v.max_steps, 8);
	assert_int_equal(v.timeout_ms, 1);
	assert_int_equal(v.memory_pages, 65536);
	/* Out of range: the message names the key, the range and the unit. */
	assert_int_equal(read_text(&v, "{\"memory_pages\":1}"), AF_EINVAL);
	assert_string_equal(art_error_last(),
			    "test: limits.memory_pages must be an integer from 2 to 65536 "
			    "(64 KiB pages of guest memory; the stack takes one)");
	assert_int_equal(v.memory_pages, 64); /* the defaults on error */
	assert_int_equal(read_text(&v, "{\"max_steps\":1001}"), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "limits.max_steps must be an integer from 1 to 1000"));
	assert_int_equal(read_text(&v, "{\"timeout_ms\":-1}"), AF_EINVAL);
	assert_int_equal(read_text(&v, "{\"timeout_ms\":9223372036854775807}"), AF_EINVAL);
	/* Wrong types. */
	assert_int_equal(read_text(&v, "{\"timeout_ms\":\"5\"}"), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "limits.timeout_ms must be an integer"));
	assert_int_equal(read_text(&v, "{\"max_steps\":1.5}"), AF_EINVAL);
	assert_int_equal(read_text(&v, "{\"max_steps\":true}"), AF_EINVAL);
	assert_int_equal(read_text(&v, "[1]"), AF_EINVAL);
	assert_string_equal(art_error_last(), "test: limits must be a map");
	/* The caller's code. */
	{
		json_t *j = json_pack("{s:i}", "max_steps", 0);

		assert_int_equal(art_limits_read(&v, j, AF_ECORRUPT, "describe"), AF_ECORRUPT);
		assert_non_null(strstr(art_error_last(), "describe: limits.max_steps"));
		json_decref(j);
	}
}

/* ---- the three users agree ------------------------------------------------- */

/* Whether the template checker accepts `limits: {name: value}`. */
static bool template_accepts(const char *name, const char *value)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	char *yaml = NULL;
	int rc;

	assert_true(asprintf(&yaml, "kind: AgentTemplate\nname: t\nversion: 1.0.0\n"
				    "limits: {%s: %s}\n", name, value) > 0);
	rc = pipe_template_parse(&t, "t.yaml", yaml, strlen(yaml), &d);
	assert_true(rc == 0 || rc == AF_ESYNTAX);
	assert_int_equal(rc == 0, d.n == 0);
	if (rc != 0) {
		assert_int_equal(d.n, 1);
		assert_true(strcmp(d.items[0].rule, "template.range") == 0 ||
			    strcmp(d.items[0].rule, "template.type") == 0);
		assert_int_equal(d.items[0].line, 4); /* file:line of the value */
	}
	pipe_template_free(t);
	pipe_diags_free(&d);
	free(yaml);
	return rc == 0;
}

/* The codegen's value (0 when it refuses). */
static uint32_t codegen_value(art_limit_id id, const char *json)
{
	gen_agent *a = NULL;
	uint32_t v;
	int rc = gen_agent_parse(&a, json, strlen(json));

	if (rc != 0) {
		if (rc != AF_EINVAL || !strstr(art_error_last(), art_limits[id].name))
			fail_msg("codegen: %d %s", rc, art_error_last());
		assert_non_null(strstr(art_error_last(), art_limits[id].name));
		assert_null(a);
		return 0;
	}
	v = id == ART_LIMIT_MAX_STEPS ? a->max_steps : id == ART_LIMIT_TIMEOUT_MS ? a->timeout_ms
										 : a->memory_pages;
	gen_agent_free(a);
	return v;
}

/* The runtime's value (0 when it refuses). */
static uint32_t runtime_value(art_limit_id id, const char *json)
{
	rt_policy *p = NULL;
	uint32_t v;
	int rc = rt_policy_parse(&p, json, strlen(json), NULL, 0);

	if (rc != 0) {
		assert_int_equal(rc, AF_ECORRUPT);
		assert_non_null(strstr(art_error_last(), art_limits[id].name));
		assert_null(p);
		return 0;
	}
	v = id == ART_LIMIT_MAX_STEPS ? p->max_steps : id == ART_LIMIT_TIMEOUT_MS ? p->timeout_ms
										 : p->memory_pages;
	rt_policy_free(p);
	return v;
}

static void agree(art_limit_id id, const char *value, uint32_t expected)
{
	const char *name = art_limits[id].name;
	char *json = NULL;

	assert_true(asprintf(&json,
			     "{\"name\":\"t\",\"version\":\"1.0.0\",\"capabilities\":[\"llm_chat\"],"
			     "\"instructions\":\"i\",\"model\":{\"name\":\"m\"},"
			     "\"limits\":{\"%s\":%s}}",
			     name, value) > 0);
	if (template_accepts(name, value) != (expected != 0) ||
	    codegen_value(id, json) != expected || runtime_value(id, json) != expected)
		fail_msg("limits.%s: %s: template %d, codegen %u, runtime %u, wanted %u", name, value,
			 template_accepts(name, value), codegen_value(id, json),
			 runtime_value(id, json), expected);
	free(json);
}

static void test_limits__template_codegen_and_runtime_agree(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ART_LIMIT_COUNT; i++) {
		const art_limit *l = &art_limits[i];
		art_limit_id id = (art_limit_id)i;
		char v[32];

		snprintf(v, sizeof(v), "%u", l->min);
		agree(id, v, l->min);
		snprintf(v, sizeof(v), "%u", l->max);
		agree(id, v, l->max);
		snprintf(v, sizeof(v), "%lld", (long long)l->min - 1);
		agree(id, v, 0);
		snprintf(v, sizeof(v), "%lld", (long long)l->max + 1);
		agree(id, v, 0);
		agree(id, "null", l->def); /* unset: the default */
		agree(id, "\"5\"", 0);
		agree(id, "1.5", 0);
		agree(id, "true", 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits__table),
		cmocka_unit_test(test_limits__read),
		cmocka_unit_test(test_limits__template_codegen_and_runtime_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
