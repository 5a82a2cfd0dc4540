/*
 * test_cgen.c - the C generator: golden output for the fixtures, byte for
 * byte (regenerate with AF_UPDATE_GOLDEN=1), determinism, escaping of
 * hostile template text (a lexer over the output and a decoder of its
 * string literals), and every error the generator reports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/util.h"
#include "gen/cgen.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fixtures[] = {"backup-manager", "security-expert", "hostile", "typed-steps"};

static char *fixture_path(const char *name, const char *ext)
{
	const char *src = getenv("AF_SRCDIR");
	char *p = NULL;

	assert_true(asprintf(&p, "%s/tests/fixtures/codegen/%s.%s", src ? src : ".", name, ext) > 0);
	return p;
}

static char *read_fixture(const char *name, const char *ext, size_t *len)
{
	char *path = fixture_path(name, ext), *data = NULL;

	assert_int_equal(art_file_read(&data, len, path, 1 << 24), 0);
	free(path);
	return data;
}

static char *generate(const char *name, size_t *len)
{
	size_t jlen;
	char *json = read_fixture(name, "json", &jlen), *c = NULL;
	int rc = gen_c_generate(&c, len, json, jlen);

	if (rc != 0)
		fail_msg("%s: %s", name, art_error_last());
	free(json);
	return c;
}

static void test_cgen__matches_golden_files(void **state)
{
	const char *update = getenv("AF_UPDATE_GOLDEN");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		size_t len, glen;
		char *c = generate(fixtures[i], &len), *golden;

		if (update && strcmp(update, "1") == 0) {
			char *path = fixture_path(fixtures[i], "c");

			assert_int_equal(art_file_write_atomic(path, c, len, 0644), 0);
			free(path);
		}
		golden = read_fixture(fixtures[i], "c", &glen);
		if (glen != len || memcmp(golden, c, len) != 0)
			fail_msg("%s.c differs from the generated code; if the change is intended, "
				 "regenerate with AF_UPDATE_GOLDEN=1", fixtures[i]);
		free(golden);
		free(c);
	}
}

static void test_cgen__is_deterministic(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		size_t l1, l2;
		char *a = generate(fixtures[i], &l1), *b = generate(fixtures[i], &l2);

		assert_int_equal(l1, l2);
		assert_memory_equal(a, b, l1);
		free(a);
		free(b);
	}
}

/*
 * Lex the generated C: string literals may hold only printable ASCII, with
 * `?` escaped and escapes among \" \\ \? \n \t \ooo; comments and code
 * only printable ASCII without `"` in comments; no "??" anywhere. If any
 * template text broke out of a literal, this fails.
 */
static void check_c_lexically(const char *c, size_t len)
{
	size_t i = 0;

	assert_null(strstr(c, "??"));
	while (i < len) {
		unsigned char ch = (unsigned char)c[i];

		if (ch == '/' && i + 1 < len && c[i + 1] == '*') {
			const char *end = strstr(c + i + 2, "*/");

			assert_non_null(end);
			for (; c + i < end; i++) {
				assert_true(c[i] == '\n' || (c[i] >= 0x20 && c[i] < 0x7f));
				assert_true(c[i] != '"');
			}
			i += 2;
			continue;
		}
		if (ch == '"') {
			for (i++; i < len && c[i] != '"'; i++) {
				assert_true(c[i] >= 0x20 && c[i] < 0x7f);
				assert_true(c[i] != '?');
				if (c[i] == '\\') {
					char e = c[++i];

					if (e >= '0' && e <= '7') {
						assert_true(c[i + 1] >= '0' && c[i + 1] <= '7');
						assert_true(c[i + 2] >= '0' && c[i + 2] <= '7');
						i += 2;
					} else {
						assert_non_null(strchr("\"\\?nt", e));
					}
				}
			}
			assert_true(i < len);
			i++;
			continue;
		}
		assert_true(ch == '\n' || ch == '\t' || (ch >= 0x20 && ch < 0x7f));
		i++;
	}
}

/* The bytes of the adjacent string literals that follow `after` up to ';'. */
static char *decode_literals(const char *c, const char *after, size_t *out_len)
{
	const char *p = strstr(c, after);
	art_buf b = ART_BUF_INIT;

	assert_non_null(p);
	p += strlen(after);
	while (*p && *p != ';') {
		if (*p != '"') {
			p++;
			continue;
		}
		for (p++; *p != '"'; p++) {
			char ch = *p;

			if (ch == '\\') {
				p++;
				if (*p >= '0' && *p <= '7') {
					ch = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
					p += 2;
				} else {
					ch = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
				}
			}
			assert_int_equal(art_buf_append(&b, &ch, 1), 0);
		}
		p++;
	}
	*out_len = b.len;
	return b.data ? art_buf_detach(&b) : strdup("");
}

static void test_cgen__hostile_strings_stay_inside_literals(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		size_t len, jlen, dlen;
		char *c = generate(fixtures[i], &len);
		char *json = read_fixture(fixtures[i], "json", &jlen);
		char *describe;

		check_c_lexically(c, len);
		/* describe_json decodes to the template, byte for byte. */
		describe = decode_literals(c, "static const char describe_json[] =", &dlen);
		assert_int_equal(dlen, jlen);
		assert_memory_equal(describe, json, jlen);
		free(describe);
		free(json);
		free(c);
	}
}

static void test_cgen__hostile_request_parts_are_valid_json(void **state)
{
	size_t len, hlen, tlen;
	char *c = generate("hostile", &len);
	char *head = decode_literals(c, "static const char request_head[] =", &hlen);
	char *tail = decode_literals(c, "static const char request_tail[] =", &tlen);
	char *req = NULL;
	json_t *j, *tool;
	json_error_t err;

	(void)state;
	/* head + (no messages) + tail is a complete request. */
	assert_true(asprintf(&req, "%.*s%.*s", (int)hlen, head, (int)tlen, tail) > 0);
	j = json_loads(req, 0, &err);
	if (!j)
		fail_msg("request is not JSON: %s: %s", err.text, req);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "model \"x\" */");
	assert_int_equal(json_array_size(json_object_get(j, "messages")), 0);
	tool = json_object_get(json_array_get(json_object_get(j, "tools"), 0), "function");
	assert_string_equal(json_string_value(json_object_get(tool, "description")), "Read */ \"k\" ?\?/");
	assert_false(json_is_true(json_object_get(json_object_get(tool, "parameters"), "additionalProperties")));
	assert_true(json_real_value(json_object_get(j, "temperature")) == 0.3);
	assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 256);
	json_decref(j);
	free(req);
	free(head);
	free(tail);
	free(c);
}

static void test_cgen__lone_placeholder_keeps_json_type(void **state)
{
	size_t len;
	char *c = generate("typed-steps", &len);

	(void)state;
	/* limit is an integer parameter: the input goes in as a JSON value ... */
	assert_non_null(strstr(c, "af_put_input(r, b, \"n\", 1, AF_PUT_RAW);"));
	assert_non_null(strstr(c, "af_put_step(r, b, 0, \"count\", 5, AF_PUT_RAW);"));
	/* ... key is a string parameter and note a nested string: spliced as text. */
	assert_non_null(strstr(c, "af_put_input(r, b, \"who\", 3, AF_PUT_STR);"));
	assert_non_null(strstr(c, "af_put_step(r, b, 0, \"next\", 4, AF_PUT_STR);"));
	assert_non_null(strstr(c, "af_put_input(r, b, \"n\", 1, AF_PUT_STR);"));
	/* {{ name }} is resolved at build time. */
	assert_non_null(strstr(c, "typed-steps \\\\\\\""));
	free(c);
}

static void test_cgen__agent_parse_reads_capabilities_and_limits(void **state)
{
	size_t jlen;
	char *json = read_fixture("backup-manager", "json", &jlen);
	gen_agent *a = NULL;

	(void)state;
	assert_int_equal(gen_agent_parse(&a, json, jlen), 0);
	assert_string_equal(a->name, "backup-manager");
	assert_string_equal(a->version, "1.0.0");
	assert_int_equal(a->n_capabilities, 5);
	assert_string_equal(a->capabilities[3], "kv.read");
	assert_int_equal(a->abi_caps, GEN_CAP_LOG | GEN_CAP_CLOCK | GEN_CAP_TOOL_CALL);
	assert_int_equal(a->max_steps, 16);
	assert_int_equal(a->timeout_ms, 10000);
	assert_int_equal(a->memory_pages, 32);
	assert_int_equal(a->n_steps, 4);
	assert_int_equal(a->n_tools, 3);
	assert_false(a->llm);
	gen_agent_free(a);
	gen_agent_free(NULL);
	free(json);
}

/* A minimal LLM template with one field replaced by `patch` (a JSON object
 * merged at the top level; a null value deletes). */
static char *llm_template(const char *patch)
{
	const char *base =
		"{\"name\":\"t\",\"version\":\"1.0.0\",\"role\":\"r\",\"goal\":\"g\","
		"\"capabilities\":[\"llm_chat\",\"tool_call\",\"kv.read\"],"
		"\"instructions\":\"Hi {{ name }} {{ inputs.x }}\",\"model\":{\"name\":\"m\"},"
		"\"inputs\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\"}}},"
		"\"tools\":[{\"name\":\"kv_get\",\"capability\":\"kv.read\",\"parameters\":{\"type\":\"object\"}}]}";
	json_t *b = json_loads(base, 0, NULL), *p = json_loads(patch, JSON_ALLOW_NUL, NULL);
	const char *key;
	json_t *v;
	char *out;

	assert_non_null(b);
	assert_non_null(p);
	json_object_foreach(p, key, v) {
		if (json_is_null(v))
			json_object_del(b, key);
		else
			json_object_set(b, key, v);
	}
	out = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(b);
	json_decref(p);
	return out;
}

static void expect_error(const char *patch, int rc, const char *needle)
{
	char *json = llm_template(patch), *c = (char *)1;
	size_t len = 99;
	int got = gen_c_generate(&c, &len, json, strlen(json));

	if (got != rc || !strstr(art_error_last(), needle))
		fail_msg("patch %s: got %d '%s', wanted %d with '%s'", patch, got, art_error_last(), rc,
			 needle);
	assert_null(c);
	assert_int_equal(len, 0);
	free(json);
}

static void test_cgen__refuses_what_cannot_run(void **state)
{
	char *json;
	char *c;
	size_t len;

	(void)state;
	json = llm_template("{}");
	assert_int_equal(gen_c_generate(&c, &len, json, strlen(json)), 0);
	free(c);
	free(json);

	expect_error("{\"instructions\":null}", AF_EINVAL, "nothing to run");
	expect_error("{\"model\":{\"provider\":\"x\"}}", AF_EINVAL, "nothing to run");
	expect_error("{\"capabilities\":[\"tool_call\",\"kv.read\"]}", AF_EINVAL, "needs the llm_chat capability");
	expect_error("{\"capabilities\":[\"llm_chat\",\"tool_call\"]}", AF_EINVAL,
		     "tool 'kv_get' needs capability 'kv.read', which the template does not grant");
	expect_error("{\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\",\"args\":{}}],\"capabilities\":[\"llm_chat\",\"kv.read\"]}",
		     AF_EINVAL, "needs the tool_call capability");
	expect_error("{\"steps\":[{\"id\":\"a\",\"tool\":\"nope\",\"args\":{}}]}", AF_EINVAL,
		     "step 'a' uses tool 'nope', which the template does not declare");
	expect_error("{\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\"},{\"id\":\"a\",\"tool\":\"kv_get\"}]}",
		     AF_EINVAL, "step id 'a' is used twice");
	expect_error("{\"limits\":{\"max_steps\":1},\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\"},{\"id\":\"b\",\"tool\":\"kv_get\"}]}",
		     AF_EINVAL, "2 steps but limits.max_steps is 1");
	expect_error("{\"limits\":{\"memory_pages\":0}}", AF_EINVAL, "limits.memory_pages must be an integer from 2 to 65536");
	expect_error("{\"limits\":{\"timeout_ms\":\"1\"}}", AF_EINVAL, "limits.timeout_ms");
	expect_error("{\"tools\":[{\"name\":\"a\",\"capability\":\"kv.read\"},{\"name\":\"a\",\"capability\":\"kv.read\"}]}",
		     AF_EINVAL, "tool 'a' is declared twice");
	expect_error("{\"tools\":[{\"name\":\"a\"}]}", AF_EINVAL, "tool 'a' declares no capability");
	expect_error("{\"name\":null}", AF_EINVAL, "no name or version");
}

static void test_cgen__refuses_bad_placeholders(void **state)
{
	(void)state;
	expect_error("{\"instructions\":\"{{ nope }}\"}", AF_EINVAL, "placeholder '{{ nope }}' in instructions names nothing");
	expect_error("{\"instructions\":\"{{ inputs.y }}\"}", AF_EINVAL, "'{{ inputs.y }}'");
	expect_error("{\"instructions\":\"{{ inputs.x.z }}\"}", AF_EINVAL, "names nothing");
	expect_error("{\"instructions\":\"{{ steps.a }}\"}", AF_EINVAL, "names nothing");
	expect_error("{\"instructions\":\"a {{ x\"}", AF_EINVAL, "malformed placeholder in instructions at byte 2");
	expect_error("{\"instructions\":\"{{ 1x }}\"}", AF_EINVAL, "malformed placeholder");
	expect_error("{\"instructions\":\"{{ role }}\",\"role\":\"\"}", AF_EINVAL, "'{{ role }}'");
	/* steps.ID must name an earlier step. */
	expect_error("{\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\",\"args\":{\"k\":\"{{ steps.b }}\"}},"
		     "{\"id\":\"b\",\"tool\":\"kv_get\",\"args\":{}}]}",
		     AF_EINVAL, "'{{ steps.b }}' in the args of step 'a' names nothing");
	expect_error("{\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\",\"args\":{\"k\":\"{{ steps.a }}\"}}]}",
		     AF_EINVAL, "names nothing");
	expect_error("{\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\"},{\"id\":\"b\",\"tool\":\"kv_get\",\"args\":{\"k\":\"{{ steps.a.b.c }}\"}}]}",
		     AF_EINVAL, "names nothing");
}

static void test_cgen__refuses_unsupported_schemas_and_nul(void **state)
{
	char deep[4096];
	size_t i, o = 0;

	(void)state;
	expect_error("{\"inputs\":{\"type\":\"strnig\"}}", AF_EINVAL, "unsupported JSON-schema type 'strnig' at inputs");
	expect_error("{\"inputs\":{\"properties\":{\"a\":{\"type\":[\"string\",7]}}}}", AF_EINVAL, "at inputs.a");
	expect_error("{\"inputs\":{\"properties\":{\"a\":{\"type\":[]}}}}", AF_EINVAL, "must be a name or a list");
	expect_error("{\"inputs\":{\"required\":\"a\"}}", AF_EINVAL, "required a list");
	expect_error("{\"inputs\":{\"required\":[1]}}", AF_EINVAL, "required must list names");
	expect_error("{\"inputs\":[]}", AF_EINVAL, "inputs must be a JSON schema map");
	expect_error("{\"instructions\":\"a\\u0000b\"}", AF_EINVAL, "the string at instructions contains a NUL");
	expect_error("{\"tools\":[{\"name\":\"kv_get\",\"capability\":\"kv.read\",\"description\":\"\\u0000\"}]}",
		     AF_EINVAL, "the string at tools[0].description contains a NUL");
	expect_error("{\"tools\":[{\"name\":\"kv_get\",\"capability\":\"kv.read\",\"parameters\":[]}]}",
		     AF_EINVAL, "must be a JSON schema object");
	/* Schema nesting past GEN_MAX_SCHEMA_DEPTH. */
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"inputs\":");
	for (i = 0; i < GEN_MAX_SCHEMA_DEPTH + 2; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"properties\":{\"a\":");
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"type\":\"string\"}");
	for (i = 0; i < GEN_MAX_SCHEMA_DEPTH + 2; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "}}");
	snprintf(deep + o, sizeof(deep) - o, "}");
	expect_error(deep, AF_EINVAL, "nested deeper than 16");
}

static void test_cgen__refuses_malformed_json_and_null_args(void **state)
{
	char *c = NULL;
	size_t len;

	(void)state;
	assert_int_equal(gen_c_generate(&c, &len, "{", 1), AF_ESYNTAX);
	assert_int_equal(gen_c_generate(&c, &len, "[1]", 3), AF_ESYNTAX);
	assert_int_equal(gen_c_generate(&c, &len, "{\"a\":1,\"a\":2}", 13), AF_ESYNTAX);
	assert_int_equal(gen_c_generate(&c, &len, NULL, 0), AF_EINVAL);
	assert_int_equal(gen_c_generate(NULL, &len, "{}", 2), AF_EINVAL);
	assert_int_equal(gen_agent_parse(NULL, "{}", 2), AF_EINVAL);
}

/* Every shape the generator refuses in the template's lists and steps. */
static void test_cgen__refuses_malformed_lists_and_steps(void **state)
{
	(void)state;
	expect_error("{\"capabilities\":\"llm_chat\"}", AF_EINVAL, "capabilities must be a list");
	expect_error("{\"capabilities\":[\"llm_chat\",7]}", AF_EINVAL, "capabilities must be strings");
	expect_error("{\"capabilities\":[\"llm_chat\",\"a\\u0000b\"]}", AF_EINVAL,
		     "the string at capabilities[1] contains a NUL");
	expect_error("{\"tools\":{}}", AF_EINVAL, "tools must be a list");
	expect_error("{\"tools\":[{\"capability\":\"kv.read\"}]}", AF_EINVAL, "tool 1 has no name");
	expect_error("{\"tools\":[{\"name\":\"\",\"capability\":\"kv.read\"}]}", AF_EINVAL,
		     "tool 1 has no name");
	expect_error("{\"tools\":[{\"name\":\"a\\u0000\",\"capability\":\"kv.read\"}]}", AF_EINVAL,
		     "the string at tools[0].name contains a NUL");
	expect_error("{\"tools\":[{\"name\":\"a\",\"capability\":\"\"}]}", AF_EINVAL,
		     "tool 'a' declares no capability");
	expect_error("{\"steps\":{}}", AF_EINVAL, "steps must be a list");
	expect_error("{\"capabilities\":[\"tool_call\",\"kv.read\"],\"steps\":[{\"tool\":\"kv_get\"}]}",
		     AF_EINVAL, "step 1 has no id");
	expect_error("{\"capabilities\":[\"tool_call\",\"kv.read\"],\"steps\":[{\"id\":\"a\\u0000\","
		     "\"tool\":\"kv_get\"}]}",
		     AF_EINVAL, "the string at steps[0].id contains a NUL");
	expect_error("{\"capabilities\":[\"tool_call\",\"kv.read\"],\"steps\":[{\"id\":\"a\"}]}",
		     AF_EINVAL, "step 'a' uses tool '(none)'");
	expect_error("{\"capabilities\":[\"tool_call\",\"kv.read\"],\"steps\":[{\"id\":\"a\","
		     "\"tool\":\"kv_get\",\"args\":[1]}]}",
		     AF_EINVAL, "the args of step 'a' must be a map");
	expect_error("{\"outputs\":[]}", AF_EINVAL, "outputs must be a JSON schema map");
	expect_error("{\"inputs\":{\"properties\":[]}}", AF_EINVAL, "properties must be a map");
	expect_error("{\"inputs\":{\"required\":[\"a\\u0000\"]}}", AF_EINVAL,
		     "contains a NUL");
	expect_error("{\"inputs\":{\"properties\":{\"a\":7}}}", AF_EINVAL,
		     "the JSON schema at inputs.a must be a map");
}

/* Steps whose args hold lists and lone placeholders of inputs that allow a
 * string among other types; outputs asking for an object by properties. */
static void test_cgen__args_lists_and_typed_placeholders(void **state)
{
	char *json = llm_template(
		"{\"capabilities\":[\"tool_call\",\"kv.read\"],\"instructions\":null,\"model\":null,"
		"\"inputs\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":[\"null\",\"string\"]},"
		"\"n\":{\"type\":[\"integer\",\"null\"]}}},"
		"\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\",\"args\":{\"k\":\"{{ inputs.x }}\","
		"\"m\":\"{{ inputs.n }}\",\"list\":[\"p\",\"{{ inputs.x }}\",[1,{\"q\":true}]]}}]}");
	char *c = NULL, *llm = NULL, *c2 = NULL;
	size_t len = 0, len2 = 0;

	(void)state;
	if (gen_c_generate(&c, &len, json, strlen(json)) != 0)
		fail_msg("%s", art_error_last());
	check_c_lexically(c, len);
	/* the list is copied as JSON around the placeholder */
	assert_non_null(strstr(c, "\\\"list\\\":[\\\"p\\\",\\\""));
	assert_non_null(strstr(c, "[1,{\\\"q\\\":true}]]"));
	free(c);
	free(json);
	/* outputs: properties without a type ask for an object */
	llm = llm_template("{\"outputs\":{\"properties\":{\"answer\":{\"type\":\"string\"}},"
			   "\"required\":[\"answer\"]}}");
	assert_int_equal(gen_c_generate(&c2, &len2, llm, strlen(llm)), 0);
	assert_non_null(strstr(c2, "validate_output"));
	assert_non_null(strstr(c2, "It must match this JSON Schema"));
	free(c2);
	free(llm);
}

/* Control characters in a tool's description and reals in its parameters
 * reach the request as the same JSON values; nesting past the limits is
 * refused. */
static void test_cgen__request_escapes_and_nesting_limits(void **state)
{
	char *json = llm_template(
		"{\"temperature\":null,\"model\":{\"name\":\"m\",\"temperature\":0.1},"
		"\"tools\":[{\"name\":\"kv_get\",\"capability\":\"kv.read\","
		"\"description\":\"a\\b\\f\\r\\n\\t\\u0001\\\"\\\\z\","
		"\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\","
		"\"default\":1.0000000000000002,\"minimum\":-2.5e-7}}}}]}");
	char *c = NULL, *head, *tail, *req = NULL, deep[2048];
	size_t len = 0, hlen, tlen, i, o = 0;
	json_t *j, *tool, *x;
	json_error_t err;

	(void)state;
	if (gen_c_generate(&c, &len, json, strlen(json)) != 0)
		fail_msg("%s", art_error_last());
	check_c_lexically(c, len);
	head = decode_literals(c, "static const char request_head[] =", &hlen);
	tail = decode_literals(c, "static const char request_tail[] =", &tlen);
	assert_true(asprintf(&req, "%.*s%.*s", (int)hlen, head, (int)tlen, tail) > 0);
	j = json_loads(req, 0, &err);
	if (!j)
		fail_msg("request is not JSON: %s: %s", err.text, req);
	tool = json_object_get(json_array_get(json_object_get(j, "tools"), 0), "function");
	assert_string_equal(json_string_value(json_object_get(tool, "description")),
			    "a\b\f\r\n\t\001\"\\z");
	x = json_object_get(json_object_get(json_object_get(tool, "parameters"), "properties"), "x");
	assert_true(json_real_value(json_object_get(x, "default")) == 1.0000000000000002);
	assert_true(json_real_value(json_object_get(x, "minimum")) == -2.5e-7);
	assert_true(json_real_value(json_object_get(j, "temperature")) == 0.1);
	json_decref(j);
	free(req);
	free(head);
	free(tail);
	free(c);
	free(json);

	/* step args nested deeper than 32 */
	o += (size_t)snprintf(deep + o, sizeof(deep) - o,
			      "{\"capabilities\":[\"tool_call\",\"kv.read\"],\"instructions\":null,"
			      "\"model\":null,\"steps\":[{\"id\":\"a\",\"tool\":\"kv_get\",\"args\":");
	for (i = 0; i < 34; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"k\":");
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "1");
	for (i = 0; i < 34; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "}");
	snprintf(deep + o, sizeof(deep) - o, "}]}");
	expect_error(deep, AF_EINVAL, "the args of step 'a' nested too deeply");
	/* a tool's parameters nested deeper than 64 */
	o = (size_t)snprintf(deep, sizeof(deep),
			     "{\"tools\":[{\"name\":\"kv_get\",\"capability\":\"kv.read\","
			     "\"parameters\":{\"type\":\"object\",\"x\":");
	for (i = 0; i < 66; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "[");
	for (i = 0; i < 66; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "]");
	snprintf(deep + o, sizeof(deep) - o, "}}]}");
	expect_error(deep, AF_EINVAL, "JSON nested too deeply");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgen__matches_golden_files),
		cmocka_unit_test(test_cgen__is_deterministic),
		cmocka_unit_test(test_cgen__hostile_strings_stay_inside_literals),
		cmocka_unit_test(test_cgen__hostile_request_parts_are_valid_json),
		cmocka_unit_test(test_cgen__lone_placeholder_keeps_json_type),
		cmocka_unit_test(test_cgen__agent_parse_reads_capabilities_and_limits),
		cmocka_unit_test(test_cgen__refuses_what_cannot_run),
		cmocka_unit_test(test_cgen__refuses_bad_placeholders),
		cmocka_unit_test(test_cgen__refuses_unsupported_schemas_and_nul),
		cmocka_unit_test(test_cgen__refuses_malformed_json_and_null_args),
		cmocka_unit_test(test_cgen__refuses_malformed_lists_and_steps),
		cmocka_unit_test(test_cgen__args_lists_and_typed_placeholders),
		cmocka_unit_test(test_cgen__request_escapes_and_nesting_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
