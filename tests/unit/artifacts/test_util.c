/*
 * test_util.c - capped buffers, encodings, atomic file replace, time parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_util__buf_cap_is_hard(void **state)
{
	art_buf b = ART_BUF_INIT;

	(void)state;
	b.max = 8;
	assert_int_equal(art_buf_puts(&b, "12345"), 0);
	assert_int_equal(art_buf_printf(&b, "%d", 678), 0);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(art_buf_puts(&b, "9"), AF_ETOOBIG);
	assert_string_equal(b.data, "12345678"); /* unchanged on failure */
	assert_int_equal(art_buf_printf(&b, "%s", "x"), AF_ETOOBIG);
	assert_int_equal(b.len, 8);
	art_buf_free(&b);
	assert_null(b.data);
	art_buf_free(NULL);
}

static void test_util__sha256_known_vector(void **state)
{
	char hex[65];

	(void)state;
	art_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_util__base64_round_trip_and_strictness(void **state)
{
	const char *inputs[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	const char *expect[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	uint8_t *dec;
	size_t i, len;
	char *enc;

	(void)state;
	for (i = 0; i < 7; i++) {
		assert_int_equal(art_base64_encode(&enc, inputs[i], strlen(inputs[i])), 0);
		assert_string_equal(enc, expect[i]);
		assert_int_equal(art_base64_decode(&dec, &len, enc), 0);
		assert_int_equal(len, strlen(inputs[i]));
		assert_memory_equal(dec, inputs[i], len);
		free(enc);
		free(dec);
	}
	assert_int_equal(art_base64_decode(&dec, &len, "Zm9"), AF_ECORRUPT);
	assert_int_equal(art_base64_decode(&dec, &len, "Zm9v\n"), AF_ECORRUPT);
	assert_int_equal(art_base64_decode(&dec, &len, "Z=9v"), AF_ECORRUPT);
	assert_int_equal(art_base64_decode(&dec, &len, "Zm9*"), AF_ECORRUPT);
	assert_null(dec);
}

static void test_util__file_read_and_atomic_write(void **state)
{
	char dir[] = "/tmp/af-util-XXXXXX";
	char path[128];
	struct stat st;
	char *data;
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(art_file_read(&data, &len, path, 100), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), path));
	assert_int_equal(art_file_write_atomic(path, "hello", 5, 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(art_file_read(&data, &len, path, 100), 0);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	free(data);
	assert_int_equal(art_file_write_atomic(path, "bye", 3, 0644), 0);
	assert_int_equal(art_file_read(&data, &len, path, 100), 0);
	assert_string_equal(data, "bye");
	free(data);
	assert_int_equal(art_file_read(&data, &len, path, 2), AF_ETOOBIG);
	assert_null(data);
	/* writing into a missing directory fails and leaves nothing behind */
	snprintf(path, sizeof(path), "%s/missing/f", dir);
	assert_int_equal(art_file_write_atomic(path, "x", 1, 0600), AF_EIO);
	snprintf(path, sizeof(path), "%s/f", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* no temporary file left over */
}

static void test_util__time_parse_formats(void **state)
{
	time_t t, now;
	char out[21];

	(void)state;
	assert_int_equal(art_time_parse(&t, "2026-11-21T10:00:00Z"), 0);
	art_time_format(out, t);
	assert_string_equal(out, "2026-11-21T10:00:00Z");
	assert_int_equal(art_time_parse(&t, "2026-11-21"), 0);
	art_time_format(out, t);
	assert_string_equal(out, "2026-11-21T00:00:00Z");
	setenv("AF_NOW", "2030-01-01T00:00:00Z", 1);
	now = art_time_now();
	assert_int_equal(art_time_parse(&t, "+24h"), 0);
	assert_int_equal(t - now, 86400);
	assert_int_equal(art_time_parse(&t, "-30m"), 0);
	assert_int_equal(now - t, 1800);
	assert_int_equal(art_time_parse(&t, "+7d"), 0);
	assert_int_equal(t - now, 7 * 86400);
	unsetenv("AF_NOW");
	assert_int_equal(art_time_parse(&t, "2026-13-01"), AF_EINVAL);
	assert_int_equal(art_time_parse(&t, "2026-11-21T10:00:00+02:00"), AF_EINVAL);
	assert_int_equal(art_time_parse(&t, "+5y"), AF_EINVAL);
	assert_int_equal(art_time_parse(&t, "+"), AF_EINVAL);
	assert_int_equal(art_time_parse(&t, "tomorrow"), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "RFC 3339"));
}

static void test_util__error_slot(void **state)
{
	(void)state;
	assert_int_equal(art_error_set(AF_EIO, "disk %s", "gone"), AF_EIO);
	assert_string_equal(art_error_last(), "disk gone");
	art_error_clear();
	assert_string_equal(art_error_last(), "");
	assert_string_equal(art_strerror(AF_ESIGNATURE), "signature verification failed");
	assert_string_equal(art_strerror(12345), "unknown error");
}

/* A message built from the slot's own previous message is whole: the slot
 * is never both the source and the destination of one format. */
static void test_util__error_message_from_itself(void **state)
{
	char longer[2000];

	(void)state;
	art_error_set(AF_EINVAL, "host entry 'x': not a host name");
	assert_int_equal(art_error_set(AF_ECORRUPT, "manifest hosts: %s", art_error_last()),
			 AF_ECORRUPT);
	assert_string_equal(art_error_last(), "manifest hosts: host entry 'x': not a host name");
	art_error_set(AF_EINVAL, "bad key");
	assert_int_equal(art_error_prefix(AF_EDENIED, "builder key %s", "ab12"), AF_EDENIED);
	assert_string_equal(art_error_last(), "builder key ab12: bad key");
	/* Nothing before: just the context. */
	art_error_clear();
	art_error_prefix(AF_EIO, "reading %s", "f");
	assert_string_equal(art_error_last(), "reading f");
	/* Over-long: truncated at the cap, still terminated, context first. */
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	art_error_set(AF_EIO, "%s", longer);
	art_error_prefix(AF_EIO, "ctx");
	assert_true(strncmp(art_error_last(), "ctx: aaaa", 9) == 0);
	assert_int_equal(strlen(art_error_last()), 1023);
}

/* The one UTF-8 decoder: strict (shortest form, no surrogates, <= U+10FFFF). */
static void test_util__utf8_decode_is_strict(void **state)
{
	static const struct {
		const char *bytes;
		size_t len, want_len;
		uint32_t want_cp;
	} cases[] = {
		{"A", 1, 1, 0x41},
		{"\xc3\xa9", 2, 2, 0xe9},
		{"\xe2\x82\xac", 3, 3, 0x20ac},
		{"\xf0\x9f\x98\x80", 4, 4, 0x1f600},
		{"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff},
		{"\xef\xbf\xbf", 3, 3, 0xffff},
		{"\xc0\x80", 2, 0, 0},             /* overlong NUL */
		{"\xc1\xbf", 2, 0, 0},             /* overlong */
		{"\xe0\x80\x80", 3, 0, 0},         /* overlong */
		{"\xf0\x8f\xbf\xbf", 4, 0, 0},     /* overlong */
		{"\xed\xa0\x80", 3, 0, 0},         /* surrogate U+D800 */
		{"\xed\xbf\xbf", 3, 0, 0},         /* surrogate U+DFFF */
		{"\xf4\x90\x80\x80", 4, 0, 0},     /* above U+10FFFF */
		{"\xf5\x80\x80\x80", 4, 0, 0},
		{"\x80", 1, 0, 0},                 /* a lone continuation byte */
		{"\xe2\x82", 2, 0, 0},             /* truncated */
		{"\xe2\x28\xa1", 3, 0, 0},         /* bad continuation */
		{"", 0, 0, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t cp = 0xdeadbeef;
		size_t n = art_utf8_decode(cases[i].bytes, cases[i].len, &cp);

		if (n != cases[i].want_len || (n && cp != cases[i].want_cp))
			fail_msg("case %zu: length %zu code point %x", i, n, cp);
		assert_int_equal(art_utf8_valid(cases[i].bytes, cases[i].len), n == cases[i].len);
	}
	assert_true(art_utf8_valid("plain ascii \xc3\xa9t\xc3\xa9", 15));
	assert_false(art_utf8_valid("ok then \xff", 9));
	assert_int_equal(art_utf8_decode("\xc3\xa9", 2, NULL), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util__buf_cap_is_hard),
		cmocka_unit_test(test_util__sha256_known_vector),
		cmocka_unit_test(test_util__base64_round_trip_and_strictness),
		cmocka_unit_test(test_util__file_read_and_atomic_write),
		cmocka_unit_test(test_util__time_parse_formats),
		cmocka_unit_test(test_util__error_slot),
		cmocka_unit_test(test_util__error_message_from_itself),
		cmocka_unit_test(test_util__utf8_decode_is_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
