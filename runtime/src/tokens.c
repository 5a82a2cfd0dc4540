/*
 * tokens.c - hashed bearer tokens and the role matrix (see rt/tokens.h).
 *
 * Entries are kept as raw 32-byte digests; a lookup hashes the presented
 * token once and compares it with every entry, never stopping early, so the
 * time taken depends only on the number of entries.
 */
#include "rt/tokens.h"

#include "art/error.h"
#include "art/util.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKENS_FILE_MAX (1u << 20)
#define TOKEN_NAME_MAX 64

typedef struct token_entry {
	uint8_t digest[ART_SHA256_LEN];
	rt_role role;
	char name[TOKEN_NAME_MAX + 1];
} token_entry;

struct rt_tokens {
	token_entry *entries;
	size_t n, cap;
};

bool rt_role_allows(rt_role role, rt_action action)
{
	switch (role) {
	case RT_ROLE_ADMIN:
		return true;
	case RT_ROLE_READ:
		return action == RT_ACTION_LIST || action == RT_ACTION_DESCRIBE ||
		       action == RT_ACTION_METRICS;
	case RT_ROLE_INVOKE:
		return action == RT_ACTION_LIST || action == RT_ACTION_DESCRIBE ||
		       action == RT_ACTION_INVOKE;
	case RT_ROLE_NONE:
	default:
		return false;
	}
}

const char *rt_role_name(rt_role role)
{
	switch (role) {
	case RT_ROLE_READ:
		return "read";
	case RT_ROLE_INVOKE:
		return "invoke";
	case RT_ROLE_ADMIN:
		return "admin";
	case RT_ROLE_NONE:
	default:
		return "none";
	}
}

int rt_role_parse(rt_role *out, const char *s)
{
	if (!s)
		return AF_EINVAL;
	if (strcmp(s, "read") == 0)
		*out = RT_ROLE_READ;
	else if (strcmp(s, "invoke") == 0)
		*out = RT_ROLE_INVOKE;
	else if (strcmp(s, "admin") == 0)
		*out = RT_ROLE_ADMIN;
	else
		return AF_EINVAL;
	return 0;
}

void rt_tokens_free(rt_tokens *t)
{
	if (!t)
		return;
	OPENSSL_cleanse(t->entries, t->cap * sizeof(*t->entries));
	free(t->entries);
	free(t);
}

size_t rt_tokens_count(const rt_tokens *t)
{
	return t ? t->n : 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '@';
}

/* Split the next whitespace-separated field of [*p, end); NULL when none. */
static const char *next_field(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *start;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s == end) {
		*p = s;
		return NULL;
	}
	start = s;
	while (s < end && *s != ' ' && *s != '\t')
		s++;
	*len = (size_t)(s - start);
	*p = s;
	return start;
}

/* One non-comment, non-blank line [line, end) into e. */
static int parse_line(token_entry *e, const char *line, const char *end, const char *origin,
		      size_t lineno)
{
	const char *p = line, *f;
	char role_name[16];
	size_t len, i;

	f = next_field(&p, end, &len);
	if (!f || len != 7 + 2 * ART_SHA256_LEN || memcmp(f, "sha256:", 7) != 0)
		return art_error_set(AF_ESYNTAX,
				     "%s:%zu: expected \"sha256:<64 lower-case hex digits> ROLE [NAME]\" "
				     "(make the hash with: agentfactory-runtime token hash)",
				     origin, lineno);
	for (i = 0; i < ART_SHA256_LEN; i++) {
		int hi = hex_value(f[7 + 2 * i]), lo = hex_value(f[7 + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return art_error_set(AF_ESYNTAX,
					     "%s:%zu: the hash must be 64 lower-case hex digits",
					     origin, lineno);
		e->digest[i] = (uint8_t)(hi << 4 | lo);
	}
	f = next_field(&p, end, &len);
	if (!f)
		return art_error_set(AF_ESYNTAX, "%s:%zu: missing role (read, invoke or admin)",
				     origin, lineno);
	if (len >= sizeof(role_name))
		len = sizeof(role_name) - 1;
	memcpy(role_name, f, len);
	role_name[len] = '\0';
	if (rt_role_parse(&e->role, role_name) != 0)
		return art_error_set(AF_ESYNTAX,
				     "%s:%zu: unknown role \"%s\" (read, invoke or admin)", origin,
				     lineno, role_name);
	f = next_field(&p, end, &len);
	if (f) {
		if (len > TOKEN_NAME_MAX)
			return art_error_set(AF_ESYNTAX, "%s:%zu: name longer than %d characters",
					     origin, lineno, TOKEN_NAME_MAX);
		for (i = 0; i < len; i++)
			if (!name_char(f[i]))
				return art_error_set(AF_ESYNTAX,
						     "%s:%zu: name may only use A-Z a-z 0-9 . _ @ -",
						     origin, lineno);
		memcpy(e->name, f, len);
		e->name[len] = '\0';
	} else {
		/* Unnamed: the log shows the hash prefix, which names the entry
		 * without revealing anything usable. */
		snprintf(e->name, sizeof(e->name), "sha256:%.12s", line + 7);
	}
	if (next_field(&p, end, &len))
		return art_error_set(AF_ESYNTAX, "%s:%zu: unexpected text after the name", origin,
				     lineno);
	return 0;
}

int rt_tokens_parse(rt_tokens **out, const char *text, size_t len, const char *origin)
{
	rt_tokens *t = NULL;
	const char *p = text, *end = text + len;
	size_t lineno = 0, i;
	int rc = 0;

	*out = NULL;
	if (!origin)
		origin = "tokens";
	if (len && memchr(text, '\0', len))
		return art_error_set(AF_ESYNTAX, "%s: contains a NUL byte", origin);
	t = calloc(1, sizeof(*t));
	if (!t)
		return art_error_set(AF_ENOMEM, "out of memory");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end, *s = p;
		token_entry e;

		lineno++;
		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		while (s < line_end && (*s == ' ' || *s == '\t'))
			s++;
		if (s == line_end || *s == '#')
			goto next;
		memset(&e, 0, sizeof(e));
		rc = parse_line(&e, s, line_end, origin, lineno);
		if (rc < 0)
			goto cleanup;
		for (i = 0; i < t->n; i++)
			if (memcmp(t->entries[i].digest, e.digest, ART_SHA256_LEN) == 0) {
				rc = art_error_set(AF_ESYNTAX,
						   "%s:%zu: the same token hash is already listed "
						   "(as \"%s\"): one role per token",
						   origin, lineno, t->entries[i].name);
				goto cleanup;
			}
		if (t->n == t->cap) {
			size_t ncap = t->cap ? t->cap * 2 : 8;
			token_entry *ne = calloc(ncap, sizeof(*ne));
			if (!ne) {
				rc = art_error_set(AF_ENOMEM, "out of memory");
				goto cleanup;
			}
			if (t->n)
				memcpy(ne, t->entries, t->n * sizeof(*ne));
			OPENSSL_cleanse(t->entries, t->cap * sizeof(*t->entries));
			free(t->entries);
			t->entries = ne;
			t->cap = ncap;
		}
		t->entries[t->n++] = e;
	next:
		if (!nl)
			break;
		p = nl + 1;
	}
	*out = t;
	t = NULL;
cleanup:
	rt_tokens_free(t);
	return rc;
}

int rt_tokens_load(rt_tokens **out, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = art_file_read(&text, &len, path, TOKENS_FILE_MAX);
	if (rc < 0)
		return rc;
	rc = rt_tokens_parse(out, text, len, path);
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

int rt_tokens_check(const rt_tokens *t, const char *token, size_t len, rt_role *role,
		    const char **name)
{
	uint8_t digest[ART_SHA256_LEN];
	size_t i, found = SIZE_MAX;

	*role = RT_ROLE_NONE;
	if (name)
		*name = NULL;
	if (!t || !token || len == 0 || len > RT_TOKEN_MAX)
		return AF_EDENIED;
	art_sha256(token, len, digest);
	for (i = 0; i < t->n; i++) {
		/* no break: every entry is compared whatever matched before */
		size_t hit = (size_t)(CRYPTO_memcmp(digest, t->entries[i].digest, ART_SHA256_LEN) == 0);
		found = hit ? i : found;
	}
	OPENSSL_cleanse(digest, sizeof(digest));
	if (found == SIZE_MAX)
		return AF_EDENIED;
	*role = t->entries[found].role;
	if (name)
		*name = t->entries[found].name;
	return 0;
}

static bool bearer_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int rt_tokens_bearer(const char *header, const char **token, size_t *len)
{
	const char *p, *start;

	*token = NULL;
	*len = 0;
	if (!header || strncasecmp(header, "bearer", 6) != 0 || header[6] != ' ')
		return AF_EINVAL;
	p = header + 6;
	while (*p == ' ')
		p++;
	start = p;
	while (bearer_char(*p))
		p++;
	if (p == start)
		return AF_EINVAL;
	while (*p == '=')
		p++;
	if (*p != '\0' || (size_t)(p - start) > RT_TOKEN_MAX)
		return AF_EINVAL;
	*token = start;
	*len = (size_t)(p - start);
	return 0;
}

void rt_token_hash(char out[RT_TOKEN_HASH_LEN], const char *token, size_t len)
{
	memcpy(out, "sha256:", 7);
	art_sha256_hex(token, len, out + 7);
}

int rt_token_generate(char out[RT_TOKEN_GENERATED_LEN + 1])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[33];
	size_t i, o = 0;

	if (RAND_bytes(raw, 32) != 1)
		return art_error_openssl("token: random bytes");
	raw[32] = 0;
	/* 32 bytes = 10 groups of 3 (40 chars) + 2 bytes (3 chars) */
	for (i = 0; i < 33 && o < RT_TOKEN_GENERATED_LEN; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 |
			     (i + 2 < 33 ? raw[i + 2] : 0);
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		if (o < RT_TOKEN_GENERATED_LEN)
			out[o++] = alphabet[(v >> 6) & 63];
		if (o < RT_TOKEN_GENERATED_LEN)
			out[o++] = alphabet[v & 63];
	}
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}
