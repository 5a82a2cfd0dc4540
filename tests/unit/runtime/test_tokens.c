/*
 * test_tokens.c - tokens files (parsing and every refusal), hashing, bearer
 * header parsing, constant-time lookup results, the role matrix, and token
 * generation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "rt/tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* sha256("read-secret"), sha256("invoke-secret"), sha256("admin-secret") */
static char h_read[RT_TOKEN_HASH_LEN], h_invoke[RT_TOKEN_HASH_LEN], h_admin[RT_TOKEN_HASH_LEN];

static int setup(void **state)
{
	(void)state;
	rt_token_hash(h_read, "read-secret", 11);
	rt_token_hash(h_invoke, "invoke-secret", 13);
	rt_token_hash(h_admin, "admin-secret", 12);
	return 0;
}

static rt_tokens *parse_ok(const char *text)
{
	rt_tokens *t = NULL;
	int rc = rt_tokens_parse(&t, text, strlen(text), "tokens.txt");

	if (rc != 0)
		fail_msg("parse failed: %s", art_error_last());
	return t;
}

static void expect_syntax(const char *text, const char *needle)
{
	rt_tokens *t = (rt_tokens *)0x1;
	int rc = rt_tokens_parse(&t, text, strlen(text), "tokens.txt");

	assert_int_equal(rc, AF_ESYNTAX);
	assert_null(t);
	if (!strstr(art_error_last(), needle))
		fail_msg("message \"%s\" lacks \"%s\"", art_error_last(), needle);
}

static void test_tokens__hash_is_sha256_hex_with_prefix(void **state)
{
	char h[RT_TOKEN_HASH_LEN];

	(void)state;
	rt_token_hash(h, "abc", 3);
	assert_string_equal(h, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_tokens__parse_file_with_comments_blank_lines_and_crlf(void **state)
{
	char text[1024];
	rt_tokens *t;
	rt_role role;
	const char *name;

	(void)state;
	snprintf(text, sizeof(text),
		 "# tokens of the test cluster\n"
		 "\n"
		 "%s read grafana\r\n"
		 "   \t\n"
		 "  %s\tinvoke   ci-bot@team.example\n"
		 "%s admin\n",
		 h_read, h_invoke, h_admin);
	t = parse_ok(text);
	assert_int_equal(rt_tokens_count(t), 3);

	assert_int_equal(rt_tokens_check(t, "read-secret", 11, &role, &name), 0);
	assert_int_equal(role, RT_ROLE_READ);
	assert_string_equal(name, "grafana");
	assert_int_equal(rt_tokens_check(t, "invoke-secret", 13, &role, &name), 0);
	assert_int_equal(role, RT_ROLE_INVOKE);
	assert_string_equal(name, "ci-bot@team.example");
	assert_int_equal(rt_tokens_check(t, "admin-secret", 12, &role, &name), 0);
	assert_int_equal(role, RT_ROLE_ADMIN);
	/* unnamed: the hash prefix names it in logs, never the secret */
	assert_true(strncmp(name, "sha256:", 7) == 0);
	assert_true(strncmp(name + 7, h_admin + 7, 12) == 0);
	assert_int_equal(strlen(name), 7 + 12);
	rt_tokens_free(t);
}

static void test_tokens__unknown_empty_and_oversized_tokens_are_denied(void **state)
{
	char text[256], *big;
	rt_tokens *t;
	rt_role role = RT_ROLE_ADMIN;
	const char *name = "x";

	(void)state;
	snprintf(text, sizeof(text), "%s admin root\n", h_admin);
	t = parse_ok(text);
	assert_int_equal(rt_tokens_check(t, "admin-secreT", 12, &role, &name), AF_EDENIED);
	assert_int_equal(role, RT_ROLE_NONE);
	assert_null(name);
	assert_int_equal(rt_tokens_check(t, "admin-secret", 11, &role, NULL), AF_EDENIED);
	assert_int_equal(rt_tokens_check(t, "", 0, &role, NULL), AF_EDENIED);
	assert_int_equal(rt_tokens_check(t, NULL, 5, &role, NULL), AF_EDENIED);
	/* the hash itself is not a token */
	assert_int_equal(rt_tokens_check(t, h_admin, strlen(h_admin), &role, NULL), AF_EDENIED);
	big = malloc(RT_TOKEN_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', RT_TOKEN_MAX + 1);
	assert_int_equal(rt_tokens_check(t, big, RT_TOKEN_MAX + 1, &role, NULL), AF_EDENIED);
	free(big);
	assert_int_equal(rt_tokens_check(NULL, "admin-secret", 12, &role, NULL), AF_EDENIED);
	rt_tokens_free(t);
}

static void test_tokens__empty_file_is_valid_and_denies_everything(void **state)
{
	rt_tokens *t = parse_ok("# nobody yet\n\n");
	rt_role role;

	(void)state;
	assert_int_equal(rt_tokens_count(t), 0);
	assert_int_equal(rt_tokens_check(t, "anything", 8, &role, NULL), AF_EDENIED);
	rt_tokens_free(t);
}

static void test_tokens__malformed_lines_refuse_the_file_with_line_numbers(void **state)
{
	char text[512], upper[RT_TOKEN_HASH_LEN];
	size_t i;

	(void)state;
	expect_syntax("plain-token admin\n", "tokens.txt:1:");
	expect_syntax("# ok\nsha256:abcd admin\n", "tokens.txt:2:");
	snprintf(text, sizeof(text), "%s\n", h_read);
	expect_syntax(text, "missing role");
	snprintf(text, sizeof(text), "%s root\n", h_read);
	expect_syntax(text, "unknown role \"root\"");
	snprintf(text, sizeof(text), "%s Admin\n", h_read);
	expect_syntax(text, "unknown role");
	snprintf(text, sizeof(text), "%s read bad/name\n", h_read);
	expect_syntax(text, "name may only use");
	snprintf(text, sizeof(text), "%s read one two\n", h_read);
	expect_syntax(text, "unexpected text");
	snprintf(text, sizeof(text), "%s read %s\n", h_read,
		 "a-name-that-is-far-too-long-for-any-log-line-0123456789-0123456789");
	expect_syntax(text, "longer than");
	/* upper-case hex is refused: one spelling per hash */
	memcpy(upper, h_read, sizeof(upper));
	for (i = 7; upper[i]; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] = (char)(upper[i] - 'a' + 'A');
	snprintf(text, sizeof(text), "%s read\n", upper);
	expect_syntax(text, "lower-case hex");
	snprintf(text, sizeof(text), "sha512:%s read\n", h_read + 7);
	expect_syntax(text, "expected \"sha256:");
	/* the same token twice, even with another role */
	snprintf(text, sizeof(text), "%s read a\n%s admin b\n", h_read, h_read);
	expect_syntax(text, "tokens.txt:2: the same token hash");
}

static void test_tokens__nul_byte_refused(void **state)
{
	char text[256];
	size_t n;
	rt_tokens *t = NULL;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "%s read x\n", h_read);
	text[n - 2] = '\0';
	assert_int_equal(rt_tokens_parse(&t, text, n, "f"), AF_ESYNTAX);
	assert_null(t);
	assert_non_null(strstr(art_error_last(), "NUL"));
}

static void test_tokens__load_from_file_and_missing_file(void **state)
{
	char path[] = "/tmp/test-tokens-XXXXXX", line[256];
	rt_tokens *t = NULL;
	rt_role role;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	snprintf(line, sizeof(line), "%s invoke ci\n", h_invoke);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	assert_int_equal(rt_tokens_load(&t, path), 0);
	assert_int_equal(rt_tokens_check(t, "invoke-secret", 13, &role, NULL), 0);
	assert_int_equal(role, RT_ROLE_INVOKE);
	rt_tokens_free(t);
	unlink(path);
	assert_int_equal(rt_tokens_load(&t, path), AF_ENOTFOUND);
	assert_null(t);
}

static void test_tokens__bearer_header_parsing(void **state)
{
	const char *tok;
	size_t len;

	(void)state;
	assert_int_equal(rt_tokens_bearer("Bearer abc.DEF-1_~+/", &tok, &len), 0);
	assert_int_equal(len, 13);
	assert_memory_equal(tok, "abc.DEF-1_~+/", 13);
	assert_int_equal(rt_tokens_bearer("bearer   xyz==", &tok, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(tok, "xyz==", 5);
	assert_int_equal(rt_tokens_bearer("BEARER q", &tok, &len), 0);

	assert_int_equal(rt_tokens_bearer(NULL, &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Basic dXNlcjpwdw==", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearer", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearer ", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearerabc", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearer a b", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearer a=b", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearer a\"", &tok, &len), AF_EINVAL);
	assert_int_equal(rt_tokens_bearer("Bearer ====", &tok, &len), AF_EINVAL);
	assert_null(tok);
	assert_int_equal(len, 0);
}

static void test_tokens__role_matrix(void **state)
{
	static const struct {
		rt_role role;
		bool list, describe, invoke, metrics, admin;
	} m[] = {
		{RT_ROLE_NONE, false, false, false, false, false},
		{RT_ROLE_READ, true, true, false, true, false},
		{RT_ROLE_INVOKE, true, true, true, false, false},
		{RT_ROLE_ADMIN, true, true, true, true, true},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		assert_int_equal(rt_role_allows(m[i].role, RT_ACTION_LIST), m[i].list);
		assert_int_equal(rt_role_allows(m[i].role, RT_ACTION_DESCRIBE), m[i].describe);
		assert_int_equal(rt_role_allows(m[i].role, RT_ACTION_INVOKE), m[i].invoke);
		assert_int_equal(rt_role_allows(m[i].role, RT_ACTION_METRICS), m[i].metrics);
		assert_int_equal(rt_role_allows(m[i].role, RT_ACTION_ADMIN), m[i].admin);
	}
	assert_false(rt_role_allows((rt_role)42, RT_ACTION_LIST));
}

static void test_tokens__role_names_round_trip(void **state)
{
	rt_role r = RT_ROLE_NONE;

	(void)state;
	assert_int_equal(rt_role_parse(&r, "read"), 0);
	assert_int_equal(r, RT_ROLE_READ);
	assert_string_equal(rt_role_name(r), "read");
	assert_int_equal(rt_role_parse(&r, "invoke"), 0);
	assert_string_equal(rt_role_name(r), "invoke");
	assert_int_equal(rt_role_parse(&r, "admin"), 0);
	assert_string_equal(rt_role_name(r), "admin");
	assert_int_equal(rt_role_parse(&r, "root"), AF_EINVAL);
	assert_int_equal(rt_role_parse(&r, NULL), AF_EINVAL);
	assert_int_equal(r, RT_ROLE_ADMIN);
	assert_string_equal(rt_role_name(RT_ROLE_NONE), "none");
}

static void test_tokens__generated_tokens_are_random_valid_bearer_tokens(void **state)
{
	char a[RT_TOKEN_GENERATED_LEN + 1], b[RT_TOKEN_GENERATED_LEN + 1], header[64], line[128];
	char hash[RT_TOKEN_HASH_LEN];
	const char *tok;
	size_t len;
	rt_tokens *t;
	rt_role role;

	(void)state;
	assert_int_equal(rt_token_generate(a), 0);
	assert_int_equal(rt_token_generate(b), 0);
	assert_int_equal(strlen(a), RT_TOKEN_GENERATED_LEN);
	assert_string_not_equal(a, b);
	snprintf(header, sizeof(header), "Bearer %s", a);
	assert_int_equal(rt_tokens_bearer(header, &tok, &len), 0);
	assert_int_equal(len, RT_TOKEN_GENERATED_LEN);
	/* what `token new` writes reads back */
	rt_token_hash(hash, a, strlen(a));
	snprintf(line, sizeof(line), "%s invoke gen\n", hash);
	t = parse_ok(line);
	assert_int_equal(rt_tokens_check(t, a, strlen(a), &role, NULL), 0);
	assert_int_equal(role, RT_ROLE_INVOKE);
	assert_int_equal(rt_tokens_check(t, b, strlen(b), &role, NULL), AF_EDENIED);
	rt_tokens_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens__hash_is_sha256_hex_with_prefix),
		cmocka_unit_test(test_tokens__parse_file_with_comments_blank_lines_and_crlf),
		cmocka_unit_test(test_tokens__unknown_empty_and_oversized_tokens_are_denied),
		cmocka_unit_test(test_tokens__empty_file_is_valid_and_denies_everything),
		cmocka_unit_test(test_tokens__malformed_lines_refuse_the_file_with_line_numbers),
		cmocka_unit_test(test_tokens__nul_byte_refused),
		cmocka_unit_test(test_tokens__load_from_file_and_missing_file),
		cmocka_unit_test(test_tokens__bearer_header_parsing),
		cmocka_unit_test(test_tokens__role_matrix),
		cmocka_unit_test(test_tokens__role_names_round_trip),
		cmocka_unit_test(test_tokens__generated_tokens_are_random_valid_bearer_tokens),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
