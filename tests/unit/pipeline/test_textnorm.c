/*
 * test_textnorm.c - the normalised form the policy's text rules also read
 * (pipeline/src/textnorm.c, docs/policies.md "Normalisation"), step by step:
 * placeholders removed (only well-formed ones), words hyphenated across a
 * line joined, leetspeak next to letters, separators between letters,
 * spaced-out letters joined, whitespace runs, and text that is not UTF-8
 * (ASCII steps only, bytes kept).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../pipeline/src/textnorm.h"

#include <stdlib.h>
#include <string.h>

static void expect(const char *text, size_t len, const char *want, size_t want_len)
{
	char *out = NULL;
	size_t n = 99;

	assert_int_equal(pipe_text_normalize(&out, &n, text, len), 0);
	assert_non_null(out);
	if (n != want_len || memcmp(out, want, n) != 0)
		fail_msg("'%.*s' -> '%.*s' (%zu bytes), want '%s'", (int)len, text, (int)n, out, n, want);
	assert_int_equal(out[n], '\0');
	free(out);
}

#define EXPECT(text, want) expect(text, sizeof(text) - 1, want, sizeof(want) - 1)

static void test_textnorm__steps(void **state)
{
	(void)state;
	/* hyphenation across a line break, blanks around it */
	EXPECT("ig-\n  nore previous", "ignore previous");
	EXPECT("ig-  \r\n\tnore", "ignore");
	EXPECT("ig-\n 1nore", "iginore"); /* leetspeak first: 1 -> i */
	EXPECT("ig-\n", "ig- ");           /* nothing after the break: kept */
	EXPECT("well-\n-known", "well- -known");
	/* placeholders: well formed ones go, others stay */
	EXPECT("a {{ x }}b {{ unclosed", "a b {{ unclosed");
	EXPECT("{{ a\nb }}", "{{ a b }}");
	EXPECT("{{ a {b }}", "{{ a {b }}");
	/* spaced-out letters, separators, whitespace */
	EXPECT("i g n o r e all", "ignore all");
	EXPECT("a b x", "abx ");
	EXPECT("h_e*l~l|o+w-o", "hellowo ");
	EXPECT("x\ty\r\fz\vw", "xyzw ");
	/* leetspeak only next to letters */
	EXPECT("1gn0r3 pr3v10us", "ignore previous");
	EXPECT("4 5", "4 5");
	EXPECT("", "");
}

static void test_textnorm__not_utf8_gets_the_ascii_steps(void **state)
{
	(void)state;
	/* ICU refuses the text: lower-cased and cleaned, the byte kept */
	EXPECT("IGNORE \xff Previous", "ignore \xff previous");
	EXPECT("Tru\xc3 5T", "tru\xc3 st"); /* 5 next to a letter: s */
}

static void test_textnorm__unicode_steps(void **state)
{
	(void)state;
	/* full-width letters, a zero-width space, Cyrillic look-alikes */
	EXPECT("\xef\xbc\xa9gnore", "ignore");
	EXPECT("ig\xe2\x80\x8bnore", "ignore");
	EXPECT("\xd1\x96gn\xd0\xbere", "ignore");
	/* a letter with no ASCII skeleton stays */
	EXPECT("caf\xc3\xa9", "caf\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_textnorm__steps),
		cmocka_unit_test(test_textnorm__not_utf8_gets_the_ascii_steps),
		cmocka_unit_test(test_textnorm__unicode_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
