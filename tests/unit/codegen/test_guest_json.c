/*
 * test_guest_json.c - the guest's JSON reader (codegen/guest/af_json.c),
 * compiled natively: keys are compared decoded ("chang\u0065" is "change"),
 * duplicates are found decoded, integers are recognised without pointer
 * arithmetic on NULL, and nesting past the guest's depth says "too deep".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The guest source itself, with its allocator mapped onto malloc. */
#include "../../../codegen/guest/af_json.c"

static void *allocs[4096];
static size_t n_allocs;

/* > 0: the allocation with this number (1, 2, ...) fails. */
static int fail_alloc_at, alloc_calls;

void *af_mem_alloc(size_t n)
{
	void *p;

	if (fail_alloc_at && ++alloc_calls == fail_alloc_at)
		return NULL;
	p = malloc(n ? n : 1);

	if (p && n_allocs < sizeof(allocs) / sizeof(allocs[0]))
		allocs[n_allocs++] = p;
	return p;
}

static int free_all(void **state)
{
	(void)state;
	while (n_allocs)
		free(allocs[--n_allocs]);
	return 0;
}

static int parse(af_json *j, const char *text)
{
	return af_json_parse(j, text, strlen(text));
}

static void test_guest_json__escaped_keys_match_decoded(void **state)
{
	af_json j;
	int v;

	(void)state;
	assert_int_equal(parse(&j, "{\"chang\\u0065\":1,\"a\\\"b\":2,\"c\\\\d\":3,\"e\\/f\":4,"
				   "\"t\\tab\":5,\"\\u00e9t\\u00E9\":6,\"\\ud83d\\ude00\":7}"), 0);
	v = af_json_member(&j, 0, "change", 6);
	assert_true(v > 0);
	assert_true(af_json_streq(&j, v - 1, "change", 6));
	assert_false(af_json_streq(&j, v - 1, "chang", 5));
	assert_false(af_json_streq(&j, v - 1, "changes", 7));
	assert_true(af_json_member(&j, 0, "a\"b", 3) > 0);
	assert_true(af_json_member(&j, 0, "c\\d", 3) > 0);
	assert_true(af_json_member(&j, 0, "e/f", 3) > 0);
	assert_true(af_json_member(&j, 0, "t\tab", 4) > 0);
	assert_true(af_json_member(&j, 0, "\xc3\xa9t\xc3\xa9", 5) > 0);
	assert_true(af_json_member(&j, 0, "\xf0\x9f\x98\x80", 4) > 0);
	/* Escapes are not matched as written. */
	assert_int_equal(af_json_member(&j, 0, "chang\\u0065", 11), -1);
	assert_int_equal(af_json_member(&j, 0, "a\\\"b", 4), -1);
	/* A value string compares decoded too. */
	assert_int_equal(parse(&j, "[\"x\\u0079z\"]"), 0);
	assert_true(af_json_streq(&j, 1, "xyz", 3));
}

static void test_guest_json__duplicates_found_decoded(void **state)
{
	static const char *const dups[] = {
		"{\"change\":1,\"chang\\u0065\":2}",
		"{\"\\u0061\":1,\"a\":2}",
		"{\"a/b\":1,\"a\\/b\":2}",
		"{\"x\":0,\"\\ud83d\\ude00\":1,\"y\":0,\"\\uD83D\\uDE00\":2}",
		"{\"\\ud800\":1,\"\\ufffd\":2}", /* a lone surrogate reads as U+FFFD */
		"{\"k\":{\"q\\n\":1,\"q\\u000a\":2}}",
	};
	static const char *const fine[] = {
		"{\"change\":1,\"chang\\u0066\":2}",
		"{\"a\":1,\"\\u0062\":2,\"ab\":3,\"a\\u0000\":4}",
		"{\"\":1,\"\\u0000\":2}",
	};
	af_json j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dups) / sizeof(dups[0]); i++)
		if (parse(&j, dups[i]) != AF_JSON_EINVAL)
			fail_msg("duplicate keys accepted: %s", dups[i]);
	for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
		if (parse(&j, fine[i]) != 0)
			fail_msg("distinct keys refused: %s", fine[i]);
}

static void test_guest_json__integers(void **state)
{
	static const char *const ints[] = {"[1]", "[0]", "[-0]", "[10]", "[1.0]", "[1e2]",
					   "[1.50e1]", "[0.0]", "[2E+0]", "[100e-2]"};
	static const char *const non[] = {"[1.5]", "[1e-1]", "[0.1]", "[15e-1]"};
	af_json j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		assert_int_equal(parse(&j, ints[i]), 0);
		if (!af_json_is_integer(&j, 1))
			fail_msg("not an integer: %s", ints[i]);
	}
	for (i = 0; i < sizeof(non) / sizeof(non[0]); i++) {
		assert_int_equal(parse(&j, non[i]), 0);
		if (af_json_is_integer(&j, 1))
			fail_msg("an integer: %s", non[i]);
	}
}

static void test_guest_json__too_deep_is_not_invalid(void **state)
{
	char deep[300], bad[8];
	af_json j;
	int k;

	(void)state;
	for (k = 0; k < 64; k++)
		deep[k] = '[';
	for (k = 0; k < 64; k++)
		deep[64 + k] = ']';
	deep[128] = '\0';
	assert_int_equal(parse(&j, deep), 0);
	for (k = 0; k < 65; k++)
		deep[k] = '[';
	for (k = 0; k < 65; k++)
		deep[65 + k] = ']';
	deep[130] = '\0';
	assert_int_equal(parse(&j, deep), AF_JSON_EDEPTH);
	assert_string_equal(af_json_why(AF_JSON_EDEPTH), "is nested too deep (more than 64 levels)");
	snprintf(bad, sizeof(bad), "%s", "[1 2]");
	assert_int_equal(parse(&j, bad), AF_JSON_EINVAL);
	assert_string_equal(af_json_why(AF_JSON_EINVAL), "is not valid JSON");
}

/* The grammar, strictly: what is accepted and what is refused. */
static void test_guest_json__strict_grammar(void **state)
{
	static const char *const good[] = {
		"true", "false", "null", " [true, false, null] ", "0", "-0", "-0.5e-3", "12E+2",
		"1.25", "\"\"", "\"\\b\\f\\n\\r\\t\\/\\\\\\\"\"", "\"\\u00e9\\uD83D\\uDE00\"",
		"\"\xc3\xa9\"", "\"\xe2\x82\xac\"", "\"\xf0\x9f\x98\x80\"", "\"\xf4\x8f\xbf\xbf\"",
		"{}", "[]", "{\"a\":{\"b\":[1,{\"c\":null}]}}", "\t\r\n[1]\n",
	};
	static const char *const bad[] = {
		"", " ", "tru", "nul", "fals", "truex", "-", "01", "1.", "1.e1", "1e", "1e+", "+1",
		".5", "\"abc", "\"a\\x\"", "\"a\\", "\"\\u12\"", "\"\\u12G4\"", "\"a\x01\"",
		"\"\xc0\x80\"", "\"\xc1\xbf\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"",
		"\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xc3\"", "\"\xe2\x82\"",
		"\"\xc3\x28\"", "\"\x80\"", "\"\xff\"", "1 2", "{,}", "[1,]", "[,1]", "{\"a\" 1}",
		"{\"a\":1,}", "{1:2}", "]", "[", "{\"a\":}", "[1}", "{\"a\":1]", "{\"a\"}", "[\"a\":1]",
		"nulll", "[true false]",
	};
	af_json j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (parse(&j, good[i]) != 0)
			fail_msg("refused: %s", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(&j, bad[i]);

		if (rc != AF_JSON_EINVAL)
			fail_msg("case %zu '%s': %d, not refused as invalid", i, bad[i], rc);
		assert_null(j.tok);
		assert_int_equal(j.n, 0);
	}
	/* a NUL inside the text is not valid JSON either */
	assert_int_equal(af_json_parse(&j, "[1]\0", 4), AF_JSON_EINVAL);
	assert_int_equal(af_json_parse(&j, "\"a\0b\"", 5), AF_JSON_EINVAL);
	assert_int_equal(af_json_parse(&j, NULL, 0), AF_JSON_EINVAL);
	/* the literals' token types */
	assert_int_equal(parse(&j, "[true,false,null]"), 0);
	assert_int_equal(j.n, 4);
	assert_int_equal(j.tok[1].type, AF_J_TRUE);
	assert_int_equal(j.tok[2].type, AF_J_FALSE);
	assert_int_equal(j.tok[3].type, AF_J_NULL);
}

/* Unescaping: every escape, pairs, lone surrogates as U+FFFD. */
static void test_guest_json__unescape(void **state)
{
	static const struct {
		const char *json, *want;
		size_t len;
	} cases[] = {
		{"[\"plain\"]", "plain", 5},
		{"[\"\\b\\f\\n\\r\\t\\/\\\\\\\"\"]", "\b\f\n\r\t/\\\"", 8},
		{"[\"\\u0041\\u00e9\\u20AC\"]", "A\xc3\xa9\xe2\x82\xac", 6},
		{"[\"\\ud83d\\ude00!\"]", "\xf0\x9f\x98\x80!", 5},
		{"[\"\\ud83dx\"]", "\xef\xbf\xbdx", 4},           /* lone high */
		{"[\"\\ude00\"]", "\xef\xbf\xbd", 3},              /* lone low */
		{"[\"\\ud83d\\u0041\"]", "\xef\xbf\xbd" "A", 4},   /* high, then no low */
		{"[\"\\u0000x\"]", "\0x", 2},
	};
	af_json j;
	size_t i, len;
	char *out;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&j, cases[i].json), 0);
		out = af_json_unescape(&j, 1, &len);
		assert_non_null(out);
		if (len != cases[i].len || memcmp(out, cases[i].want, len) != 0)
			fail_msg("case %zu: %zu bytes", i, len);
		assert_int_equal(out[len], '\0');
	}
	/* not a string, out of range */
	assert_int_equal(parse(&j, "[1,\"a\"]"), 0);
	assert_null(af_json_unescape(&j, 0, &len));
	assert_null(af_json_unescape(&j, 1, &len));
	assert_null(af_json_unescape(&j, 3, &len));
	assert_null(af_json_unescape(&j, -1, &len));
	assert_false(af_json_streq(&j, 7, "a", 1));
	assert_false(af_json_streq(&j, 1, "a", 1)); /* a number */
	assert_true(af_json_streq(&j, 2, "a", 1));
	assert_int_equal(af_json_member(&j, 0, "a", 1), -1); /* not an object */
	assert_int_equal(af_json_member(&j, 9, "a", 1), -1);
	assert_false(af_json_is_integer(&j, 2));
	assert_false(af_json_is_integer(&j, 5));
	/* without memory */
	assert_int_equal(parse(&j, "[\"abc\"]"), 0);
	fail_alloc_at = 1;
	alloc_calls = 0;
	assert_null(af_json_unescape(&j, 1, &len));
	fail_alloc_at = 0;
}

/* Out of memory while tokenizing: ENOMEM, and no tokens. */
static void test_guest_json__out_of_memory(void **state)
{
	af_json j;
	int at;

	(void)state;
	for (at = 1; at <= 2; at++) {
		fail_alloc_at = at;
		alloc_calls = 0;
		assert_int_equal(parse(&j, "{\"a\":[1,2]}"), AF_JSON_ENOMEM);
		assert_null(j.tok);
		assert_int_equal(j.n, 0);
	}
	fail_alloc_at = 0;
	assert_int_equal(parse(&j, "{\"a\":[1,2]}"), 0);
	assert_int_equal(j.n, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_guest_json__escaped_keys_match_decoded, free_all),
		cmocka_unit_test_teardown(test_guest_json__duplicates_found_decoded, free_all),
		cmocka_unit_test_teardown(test_guest_json__integers, free_all),
		cmocka_unit_test_teardown(test_guest_json__too_deep_is_not_invalid, free_all),
		cmocka_unit_test_teardown(test_guest_json__strict_grammar, free_all),
		cmocka_unit_test_teardown(test_guest_json__unescape, free_all),
		cmocka_unit_test_teardown(test_guest_json__out_of_memory, free_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
