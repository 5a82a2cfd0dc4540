/*
 * test_error.c - the per-thread error slot: every code has its own text,
 * a message may quote the slot itself (art_error_prefix, "%s" of
 * art_error_last()), long messages are cut, not overflowed, OpenSSL's
 * queue is drained keeping its oldest error, and each thread has its own
 * message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void test_error__every_code_has_its_text(void **state)
{
	static const struct {
		int rc;
		const char *text;
	} codes[] = {
		{AF_OK, "success"},
		{AF_ENOMEM, "out of memory"},
		{AF_EINVAL, "invalid argument"},
		{AF_ENOTFOUND, "not found"},
		{AF_EEXISTS, "already exists"},
		{AF_EIO, "input/output error"},
		{AF_ECORRUPT, "corrupt data"},
		{AF_EVERSION, "unsupported version"},
		{AF_ETOOBIG, "size limit exceeded"},
		{AF_EDENIED, "permission denied"},
		{AF_ESIGNATURE, "signature verification failed"},
		{AF_EPOLICY, "policy violation"},
		{AF_ECRYPTO, "cryptography error"},
		{AF_EGIT, "git error"},
		{AF_ESYNTAX, "syntax error"},
		{AF_EEXPIRED, "expired or not yet valid"},
		{AF_EREVOKED, "revoked"},
		{AF_EINTERNAL, "internal error"},
		{AF_EDAMAGED, "damaged store"},
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_string_equal(art_strerror(codes[i].rc), codes[i].text);
		/* distinct: no two codes read the same */
		for (j = 0; j < i; j++)
			assert_string_not_equal(art_strerror(codes[i].rc), art_strerror(codes[j].rc));
	}
	assert_string_equal(art_strerror(1), "unknown error");
	assert_string_equal(art_strerror(-1000), "unknown error");
}

static void test_error__set_prefix_and_clear(void **state)
{
	char big[3000];

	(void)state;
	art_error_clear();
	assert_string_equal(art_error_last(), "");
	/* a prefix on an empty slot is the context alone */
	assert_int_equal(art_error_prefix(AF_EIO, "reading %s", "x.json"), AF_EIO);
	assert_string_equal(art_error_last(), "reading x.json");
	assert_int_equal(art_error_set(AF_ECORRUPT, "bad byte at %d", 7), AF_ECORRUPT);
	assert_int_equal(art_error_prefix(AF_ECORRUPT, "%s", "store"), AF_ECORRUPT);
	assert_string_equal(art_error_last(), "store: bad byte at 7");
	/* the slot quoted into itself: no overlap garbage */
	assert_int_equal(art_error_set(AF_EINVAL, "again: %s", art_error_last()), AF_EINVAL);
	assert_string_equal(art_error_last(), "again: store: bad byte at 7");
	/* a message over the slot's size is cut, NUL-terminated */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(art_error_set(AF_ETOOBIG, "%s", big), AF_ETOOBIG);
	assert_true(strlen(art_error_last()) > 100);
	assert_true(strlen(art_error_last()) < sizeof(big) - 1);
	assert_int_equal(art_error_prefix(AF_ETOOBIG, "%s", big), AF_ETOOBIG);
	assert_true(strlen(art_error_last()) < sizeof(big) - 1);
	art_error_clear();
	assert_string_equal(art_error_last(), "");
}

static void test_error__openssl_keeps_the_oldest_error(void **state)
{
	(void)state;
	/* an empty queue: still a message, and the code */
	ERR_clear_error();
	assert_int_equal(art_error_openssl("signing"), AF_ECRYPTO);
	assert_string_equal(art_error_last(), "signing: unknown OpenSSL error");
	/* two errors queued: the first names the cause, and the queue is drained */
	ERR_raise(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM);
	ERR_raise(ERR_LIB_RSA, ERR_R_PASSED_NULL_PARAMETER);
	assert_int_equal(art_error_openssl("loading a key"), AF_ECRYPTO);
	assert_int_equal(strncmp(art_error_last(), "loading a key: error:", 21), 0);
	assert_non_null(strstr(art_error_last(), "unsupported algorithm"));
	assert_null(strstr(art_error_last(), "passed a null parameter"));
	assert_int_equal(ERR_peek_error(), 0);
}

static void *other_thread(void *arg)
{
	(void)arg;
	if (art_error_last()[0] != '\0')
		return (void *)"a new thread sees another thread's message";
	art_error_set(AF_EIO, "thread message");
	return strcmp(art_error_last(), "thread message") == 0 ? NULL : (void *)"not kept";
}

static void test_error__each_thread_has_its_message(void **state)
{
	pthread_t t;
	void *res = (void *)"not run";

	(void)state;
	art_error_set(AF_EINVAL, "main message");
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &res), 0);
	if (res)
		fail_msg("%s", (const char *)res);
	assert_string_equal(art_error_last(), "main message");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error__every_code_has_its_text),
		cmocka_unit_test(test_error__set_prefix_and_clear),
		cmocka_unit_test(test_error__openssl_keeps_the_oldest_error),
		cmocka_unit_test(test_error__each_thread_has_its_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
