/*
 * rt/tokens.h - bearer tokens with roles for the runtime's HTTP API.
 *
 * The server never stores a token, only its SHA-256. A tokens file has one
 * entry per line:
 *
 *     sha256:<64 lower-case hex digits> ROLE [NAME]
 *
 * ROLE is read, invoke or admin; NAME (optional, [A-Za-z0-9._@-]{1,64})
 * names the holder in the access log. Blank lines and lines starting with
 * '#' are ignored. A malformed line, an unknown role or the same hash twice
 * refuses the whole file (file:line in the message): a half-read tokens file
 * would silently lock someone out or let someone in.
 *
 * A presented token is hashed and compared with every entry in constant
 * time (CRYPTO_memcmp, no early exit), so the answer's timing does not tell
 * which entry, or how much of one, matched.
 *
 * Role matrix (rt_role_allows):
 *
 *     action     read  invoke  admin
 *     list        yes   yes     yes
 *     describe    yes   yes     yes
 *     invoke      -     yes     yes
 *     metrics     yes   -       yes
 *     admin       -     -       yes
 *
 * An invoker may list and describe (it needs an agent's input schema), but
 * not read metrics; a reader never runs an agent; admin may do everything.
 */
#ifndef RT_TOKENS_H
#define RT_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

/** The roles a token can have. */
typedef enum rt_role {
	RT_ROLE_NONE = 0, /* no valid token */
	RT_ROLE_READ,
	RT_ROLE_INVOKE,
	RT_ROLE_ADMIN
} rt_role;

/** What a request wants to do; see the matrix above. */
typedef enum rt_action {
	RT_ACTION_LIST,
	RT_ACTION_DESCRIBE,
	RT_ACTION_INVOKE,
	RT_ACTION_METRICS,
	RT_ACTION_ADMIN
} rt_action;

/** "sha256:" + 64 hex digits + NUL */
#define RT_TOKEN_HASH_LEN (7 + 64 + 1)
/** Longest token accepted from a request or to hash (bytes). */
#define RT_TOKEN_MAX 4096
/** Length of a token made by rt_token_generate (32 random bytes, base64url, no padding). */
#define RT_TOKEN_GENERATED_LEN 43

typedef struct rt_tokens rt_tokens;

/** true when a token of this role may do this action (the matrix above). */
bool rt_role_allows(rt_role role, rt_action action);

/** "read", "invoke", "admin", or "none". Static string. */
const char *rt_role_name(rt_role role);

/**
 * Parse a role name (exact, lower case).
 * @return 0, or AF_EINVAL for anything else (*out untouched)
 */
int rt_role_parse(rt_role *out, const char *s);

/**
 * Parse the text of a tokens file.
 * @param[out] out     caller owns; rt_tokens_free()
 * @param[in]  text    the file's bytes (need not be NUL-terminated)
 * @param[in]  origin  file name used in error messages ("tokens" if NULL)
 * @return 0; AF_ESYNTAX (message names origin:line and what is wrong: a bad
 *         hash, an unknown role, a bad name, a duplicate hash, a NUL byte);
 *         AF_ENOMEM. A file with no entry at all is valid (then every
 *         request is refused with 401).
 */
int rt_tokens_parse(rt_tokens **out, const char *text, size_t len, const char *origin);

/**
 * Read and parse a tokens file (at most 1 MiB).
 * @return 0, AF_ENOTFOUND, AF_EIO, AF_ETOOBIG, AF_ESYNTAX, AF_ENOMEM
 */
int rt_tokens_load(rt_tokens **out, const char *path);

/** Number of entries. NULL-safe (0). */
size_t rt_tokens_count(const rt_tokens *t);

/** Free. NULL-safe. */
void rt_tokens_free(rt_tokens *t);

/**
 * Look a presented token up.
 * @param[in]  token      the secret as sent (not NUL-terminated necessarily)
 * @param[out] role       its role, RT_ROLE_NONE when unknown
 * @param[out] name       the entry's name (borrowed, valid while t lives), or
 *                        NULL when unknown; may be NULL
 * @return 0 when known; AF_EDENIED when unknown, empty or longer than
 *         RT_TOKEN_MAX. Sets no error message (called per request).
 */
int rt_tokens_check(const rt_tokens *t, const char *token, size_t len, rt_role *role,
		    const char **name);

/**
 * Take the token out of an Authorization header value: the scheme "Bearer"
 * (any case), one or more spaces, then a token of RFC 6750 characters
 * (A-Z a-z 0-9 - . _ ~ + / and trailing '=') with nothing after it.
 * @param[out] token, len  borrowed slice of header
 * @return 0, or AF_EINVAL when header is NULL, another scheme, or malformed
 */
int rt_tokens_bearer(const char *header, const char **token, size_t *len);

/** "sha256:<hex>" of a token into out, the form a tokens file stores. */
void rt_token_hash(char out[RT_TOKEN_HASH_LEN], const char *token, size_t len);

/**
 * A fresh random token: 32 bytes from the OpenSSL CSPRNG, base64url without
 * padding (43 characters, all valid bearer characters).
 * @return 0 or AF_ECRYPTO
 */
int rt_token_generate(char out[RT_TOKEN_GENERATED_LEN + 1]);

#endif
