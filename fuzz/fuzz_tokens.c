/*
 * fuzz_tokens.c - the runtime's bearer-token file parser (rt_tokens_parse),
 * the Authorization header parser (rt_tokens_bearer) and the lookup. The
 * input is split at its first NUL byte: before it a tokens file, after it an
 * Authorization header value. Invariants: a parsed header's token lies
 * inside the header; a token that matches has a real role.
 */
#include "fuzz.h"

#include "rt/tokens.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const uint8_t *nul = memchr(data, 0, size);
	size_t file_len = nul ? (size_t)(nul - data) : size;
	rt_tokens *t = NULL;
	char *header = NULL;
	const char *token = NULL;
	size_t token_len = 0;
	rt_role role;

	if (rt_tokens_parse(&t, text, file_len, "fuzz") != 0)
		FUZZ_CHECK(!t, "a failed parse left tokens");
	if (nul) {
		size_t hlen = size - file_len - 1;

		header = malloc(hlen + 1);
		FUZZ_CHECK(header != NULL, "malloc");
		memcpy(header, nul + 1, hlen);
		header[hlen] = '\0';
		if (rt_tokens_bearer(header, &token, &token_len) == 0) {
			FUZZ_CHECK(token >= header && token + token_len <= header + strlen(header),
				   "token outside its header");
			if (t && rt_tokens_check(t, token, token_len, &role, NULL) == 0)
				FUZZ_CHECK(role != RT_ROLE_NONE, "a matching token has no role");
		}
	}
	if (nul && rt_role_parse(&role, text) == 0)
		FUZZ_CHECK(strcmp(rt_role_name(role), text) == 0, "role %s parsed from %s", rt_role_name(role), text);
	free(header);
	rt_tokens_free(t);
	return 0;
}
