/*
 * test_util.c - capped buffers, encodings, atomic file replace, time parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/utf8.h"
#include "art/util.h"

#include <stdbool.h>
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

/* The decoder as RFC 3629 states it (by code point value), as an oracle. */
static size_t utf8_by_value(const uint8_t *b, size_t len)
{
	size_t need = b[0] < 0x80 ? 0 : (b[0] & 0xe0) == 0xc0 ? 1 : (b[0] & 0xf0) == 0xe0 ? 2
			     : (b[0] & 0xf8) == 0xf0 ? 3 : 4, k;
	uint32_t v = need == 0 ? b[0] : need == 1 ? b[0] & 0x1fu : need == 2 ? b[0] & 0x0fu : b[0] & 0x07u;

	if (need == 4 || len <= need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((b[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (b[k] & 0x3fu);
	}
	if ((need == 1 && v < 0x80) || (need == 2 && v < 0x800) || (need == 3 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return need + 1;
}

/* Every sequence of up to 3 bytes, and 4 with the last byte at each edge of
 * the continuation range: the table-driven decoder (art/utf8.h) agrees with
 * the oracle, and says "cut" exactly for the proper prefixes of valid
 * sequences (the 4th byte of a valid one is any of 80..bf, so 80 stands for
 * all of them). */
static void test_util__utf8_decode_matches_the_rfc(void **state)
{
	static const uint8_t last[] = {0x7f, 0x80, 0xbf, 0xc0};
	static bool prefix1[256], prefix2[256][256];
	uint8_t b[4];
	unsigned x, y, z, w;
	size_t got;
	int cut;

	(void)state;
	for (x = 0; x < 256; x++)
		for (y = 0; y < 256; y++)
			for (z = 0; z < 256; z++) {
				b[0] = (uint8_t)x, b[1] = (uint8_t)y, b[2] = (uint8_t)z, b[3] = 0x80;
				got = utf8_by_value(b, 4);
				prefix1[x] |= got >= 2;
				prefix2[x][y] |= got >= 3;
			}
	for (x = 0; x < 256; x++) {
		b[0] = (uint8_t)x;
		got = art_utf8__decode(b, 1, NULL, &cut);
		if (got != utf8_by_value(b, 1) || cut != (!got && prefix1[x]))
			fail_msg("%02x: %zu, cut %d", x, got, cut);
		for (y = 0; y < 256; y++) {
			b[1] = (uint8_t)y;
			got = art_utf8__decode(b, 2, NULL, &cut);
			if (got != utf8_by_value(b, 2) || cut != (!got && prefix2[x][y]))
				fail_msg("%02x %02x: %zu, cut %d", x, y, got, cut);
			for (z = 0; z < 256; z++) {
				b[2] = (uint8_t)z;
				b[3] = 0x80;
				got = art_utf8__decode(b, 3, NULL, &cut);
				if (got != utf8_by_value(b, 3) || cut != (!got && utf8_by_value(b, 4) == 4))
					fail_msg("%02x %02x %02x: %zu, cut %d", x, y, z, got, cut);
				for (w = 0; w < sizeof(last); w++) {
					b[3] = last[w];
					got = art_utf8__decode(b, 4, NULL, &cut);
					if (got != utf8_by_value(b, 4) || cut)
						fail_msg("%02x %02x %02x %02x: %zu, cut %d", x, y, z, b[3],
							 got, cut);
				}
			}
		}
	}
}

/* Truncated text loses only a sequence cut short at its end. */
static void test_util__utf8_whole(void **state)
{
	static const struct {
		const char *bytes;
		size_t len, want;
	} cases[] = {
		{"", 0, 0},
		{"abc", 3, 3},
		{"a\xc3", 2, 1},
		{"a\xc3\xa9", 3, 3},
		{"a\xe2\x82", 3, 1},
		{"a\xe2", 2, 1},
		{"a\xf0\x9f\x98", 4, 1},
		{"a\xf0\x9f\x98\x80", 5, 5},
		{"\xf4\x8f", 2, 0},
		{"\xc3", 1, 0},
		{"a\xe0\x80", 3, 3},     /* not a prefix of anything valid: kept */
		{"a\xed\xa0", 3, 3},     /* a surrogate's start: kept */
		{"a\xf4\x90", 3, 3},     /* past U+10FFFF: kept */
		{"a\x80\x80\x80", 4, 4},
		{"\x80\x80", 2, 2},
		{"a\xff", 2, 2},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (art_utf8_whole(cases[i].bytes, cases[i].len) != cases[i].want)
			fail_msg("case %zu: %zu, want %zu", i,
				 art_utf8_whole(cases[i].bytes, cases[i].len), cases[i].want);
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
		cmocka_unit_test(test_util__utf8_decode_matches_the_rfc),
		cmocka_unit_test(test_util__utf8_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
