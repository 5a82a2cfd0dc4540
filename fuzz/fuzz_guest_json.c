/*
 * fuzz_guest_json.c - the guest's strict JSON tokenizer (codegen/guest/
 * af_json.c), compiled natively here: in a built agent it is the first code
 * that sees what the host and a model send. af_mem_alloc (the guest heap)
 * is a bump allocator over malloc'd blocks released after each input.
 * Invariants of accepted text: every token lies inside the text, `next`
 * indices move forward and stay in range, a container's members fit before
 * its `next`, every string unescapes, and jansson accepts the same text
 * (af_json is the stricter of the two, except where the guest deliberately
 * differs: lone surrogate escapes are accepted and become U+FFFD, keys are
 * compared as written; and jansson refuses numbers it cannot represent and
 * "\u0000" in object keys).
 */
#include "fuzz.h"

/* The guest source itself (a guest file, not part of any host library). */
#include "../codegen/guest/af_json.c"

#include <jansson.h>
#include <stdlib.h>

static void **blocks;
static size_t n_blocks, cap_blocks;

void *af_mem_alloc(size_t n)
{
	void *p;

	if (n_blocks == cap_blocks) {
		size_t cap = cap_blocks ? cap_blocks * 2 : 16;
		void **grown = realloc(blocks, cap * sizeof(*blocks));

		if (!grown)
			return NULL;
		blocks = grown;
		cap_blocks = cap;
	}
	p = malloc(n ? n : 1);
	if (p)
		blocks[n_blocks++] = p;
	return p;
}

static void release_all(void)
{
	while (n_blocks)
		free(blocks[--n_blocks]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_error_t error;
	json_t *doc;
	af_json j;
	uint32_t i;
	size_t len;
	char *s;

	if (af_json_parse(&j, text, size) != 0)
		goto done;
	FUZZ_CHECK(j.n > 0, "accepted with no token");
	FUZZ_CHECK(j.tok[0].next == j.n, "the root does not span every token");
	for (i = 0; i < j.n; i++) {
		const af_tok *t = &j.tok[i];

		FUZZ_CHECK(t->type >= AF_J_OBJECT && t->type <= AF_J_NULL, "token %u type %u", i,
			   t->type);
		FUZZ_CHECK(t->start <= t->end && t->end <= size, "token %u [%u,%u) outside %zu", i,
			   t->start, t->end, size);
		FUZZ_CHECK(t->next > i && t->next <= j.n, "token %u next %u", i, t->next);
		if (t->type == AF_J_OBJECT)
			FUZZ_CHECK((size_t)t->size * 2 <= t->next - i - 1, "object %u too small", i);
		if (t->type == AF_J_ARRAY)
			FUZZ_CHECK(t->size <= t->next - i - 1, "array %u too small", i);
		if (t->type == AF_J_STRING) {
			s = af_json_unescape(&j, (int)i, &len);
			FUZZ_CHECK(s != NULL, "string %u does not unescape", i);
			FUZZ_CHECK(s[len] == '\0', "unescaped string %u not terminated", i);
		}
		if (t->type == AF_J_NUMBER)
			(void)af_json_is_integer(&j, (int)i);
	}
	if (j.tok[0].type == AF_J_OBJECT)
		(void)af_json_member(&j, 0, "type", 4);
	/* jansson must agree that this is JSON (see the header comment). */
	doc = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			 &error);
	if (!doc)
		FUZZ_CHECK(strstr(error.text, "too big") || strstr(error.text, "overflow") ||
				   strstr(error.text, "duplicate") ||
				   strstr(error.text, "invalid Unicode '\\u") ||
				   strstr(error.text, "NUL byte in object key"),
			   "af_json accepts what jansson refuses: %s (%.*s)", error.text,
			   (int)(size < 200 ? size : 200), text);
	json_decref(doc);
done:
	release_all();
	return 0;
}
