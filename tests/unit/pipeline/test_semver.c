/*
 * test_semver.c - semantic version parsing, precedence (semver.org 2.0.0
 * section 11) and the exact and caret pins of `extends`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "pipe/semver.h"

#include <stdbool.h>
#include <string.h>

static void test_semver__parses_parts(void **state)
{
	pipe_semver v;

	(void)state;
	assert_int_equal(pipe_semver_parse(&v, "1.22.333-rc.1+build.007"), 0);
	assert_true(v.major == 1 && v.minor == 22 && v.patch == 333);
	assert_int_equal(v.pre_len, 4);
	assert_memory_equal(v.pre, "rc.1", 4);
	assert_int_equal(v.build_len, 9);
	assert_memory_equal(v.build, "build.007", 9);

	assert_int_equal(pipe_semver_parse(&v, "0.0.0"), 0);
	assert_int_equal(v.pre_len, 0);
	assert_int_equal(v.build_len, 0);
	assert_int_equal(pipe_semver_parse(&v, "18446744073709551615.0.0"), 0);
	assert_true(v.major == UINT64_MAX);
	assert_true(pipe_semver_valid("1.0.0-0A.is.legal"));
	assert_true(pipe_semver_valid("1.0.0+21AF26D3----117B344092BD"));
	assert_true(pipe_semver_valid("1.0.0-x-y-z.--"));
}

static void test_semver__refuses_invalid(void **state)
{
	static const char *const bad[] = {
		"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "v1.2.3", " 1.2.3",
		"1.2.3 ", "1.2.3-", "1.2.3+", "1.2.3-01", "1.2.3-a..b", "1.2.3-a.", "1.2.3+a..b",
		"1.2.3-ä", "1.2.-3", "-1.2.3", "1.2.3-rc+", "18446744073709551616.0.0",
		"1.2.3+b+c", "1.2.3_4", "^1.2.3",
	};
	pipe_semver v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pipe_semver_parse(&v, bad[i]), AF_EINVAL);
		assert_false(pipe_semver_valid(bad[i]));
	}
	assert_false(pipe_semver_valid(NULL));
	assert_non_null(strstr(art_error_last(), "not a semantic version"));
}

static int cmp(const char *a, const char *b)
{
	pipe_semver x, y;

	assert_int_equal(pipe_semver_parse(&x, a), 0);
	assert_int_equal(pipe_semver_parse(&y, b), 0);
	return pipe_semver_cmp(&x, &y);
}

static void test_semver__precedence_follows_the_spec(void **state)
{
	/* The example chain of semver.org section 11, strictly increasing. */
	static const char *const order[] = {
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0",
		"2.0.0", "10.0.0",
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		for (j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
			int c = cmp(order[i], order[j]);

			if (i < j)
				assert_true(c < 0);
			else if (i > j)
				assert_true(c > 0);
			else
				assert_int_equal(c, 0);
		}
	/* build metadata is ignored */
	assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0);
	assert_int_equal(cmp("1.0.0-rc.1+x", "1.0.0-rc.1"), 0);
	/* numeric identifiers compare as numbers, of any length */
	assert_true(cmp("1.0.0-2", "1.0.0-10") < 0);
	assert_true(cmp("1.0.0-99999999999999999999999", "1.0.0-100000000000000000000000") < 0);
	/* numeric lower than alphanumeric; ASCII order for alphanumeric */
	assert_true(cmp("1.0.0-999", "1.0.0-a") < 0);
	assert_true(cmp("1.0.0-Z", "1.0.0-a") < 0);
	assert_true(cmp("1.0.0-a-b", "1.0.0-a") > 0);
}

static bool sat(const char *version, const char *pin)
{
	bool ok = false;

	assert_int_equal(pipe_semver_satisfies(&ok, version, pin), 0);
	return ok;
}

static void test_semver__exact_and_caret_pins(void **state)
{
	bool ok;

	(void)state;
	assert_true(sat("1.2.3", "1.2.3"));
	assert_true(sat("1.2.3+build", "1.2.3"));
	assert_false(sat("1.2.4", "1.2.3"));
	assert_false(sat("1.2.3-rc.1", "1.2.3"));

	assert_true(sat("1.2.3", "^1.2.3"));
	assert_true(sat("1.9.0", "^1.2.3"));
	assert_true(sat("1.3.0-rc.1", "^1.2.3"));
	assert_false(sat("1.2.2", "^1.2.3"));
	assert_false(sat("1.2.3-rc.1", "^1.2.3"));
	assert_false(sat("2.0.0", "^1.2.3"));
	assert_false(sat("2.0.0-alpha", "^1.2.3"));
	assert_false(sat("0.9.0", "^1.0.0"));
	/* 0.x: the minor is the breaking part */
	assert_true(sat("0.2.5", "^0.2.3"));
	assert_false(sat("0.3.0", "^0.2.3"));
	assert_false(sat("0.2.2", "^0.2.3"));
	assert_true(sat("0.0.4", "^0.0.3"));
	assert_true(sat("1.0.0-beta.2", "^1.0.0-beta"));

	assert_int_equal(pipe_semver_satisfies(&ok, "1.0", "^1.0.0"), AF_EINVAL);
	assert_int_equal(pipe_semver_satisfies(&ok, "1.0.0", "~1.0.0"), AF_EINVAL);
	assert_int_equal(pipe_semver_satisfies(&ok, "1.0.0", "^^1.0.0"), AF_EINVAL);
	assert_int_equal(pipe_semver_satisfies(&ok, "1.0.0", ">=1.0.0"), AF_EINVAL);
	assert_true(pipe_semver_pin_valid("^1.0.0"));
	assert_true(pipe_semver_pin_valid("1.0.0"));
	assert_false(pipe_semver_pin_valid("^"));
	assert_false(pipe_semver_pin_valid("^1.0"));
	assert_false(pipe_semver_pin_valid(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semver__parses_parts),
		cmocka_unit_test(test_semver__refuses_invalid),
		cmocka_unit_test(test_semver__precedence_follows_the_spec),
		cmocka_unit_test(test_semver__exact_and_caret_pins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
