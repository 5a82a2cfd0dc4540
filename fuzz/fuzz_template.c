/*
 * fuzz_template.c - pipe_template_parse (YAML + the template schema) and the
 * placeholder scanner over every string of an accepted template.
 * Invariants: a parse either succeeds with a tree, or fails with a code and
 * at least one finding (never silently); placeholder offsets stay inside
 * the string they were found in.
 */
#include "fuzz.h"

#include "art/error.h"
#include "pipe/node.h"
#include "pipe/template.h"

#include <string.h>

static void scan_placeholders(const char *s, size_t len)
{
	pipe_placeholder ph;
	size_t pos = 0, guard = 0;
	int rc;

	while ((rc = pipe_placeholder_next(s, len, &pos, &ph)) != 0) {
		FUZZ_CHECK(ph.start <= len && ph.len <= len - ph.start, "placeholder out of string");
		if (rc == 1)
			FUZZ_CHECK(ph.name_off >= ph.start && ph.name_len > 0 &&
					   ph.name_off + ph.name_len <= ph.start + ph.len,
				   "placeholder name out of its braces");
		FUZZ_CHECK(++guard <= len + 1, "placeholder scan does not advance");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pipe_diags diags = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	int rc;

	/* The scanner on raw bytes too: it must not need a template around. */
	scan_placeholders((const char *)data, size);
	rc = pipe_template_parse(&t, "fuzz.yaml", (const char *)data, size, &diags);
	if (rc == 0) {
		FUZZ_CHECK(t && t->root && t->name && t->version, "accepted without a tree");
		FUZZ_CHECK(pipe_template_name_valid(t->name), "accepted an invalid name '%s'",
			   t->name);
		FUZZ_CHECK(pipe_diags_errors(&diags) == 0, "accepted with error findings");
	} else {
		FUZZ_CHECK(!t, "a failed parse left a template");
		FUZZ_CHECK(rc == AF_ENOMEM || rc == AF_EINVAL || diags.n > 0,
			   "refused (%d) without a finding", rc);
	}
	pipe_template_free(t);
	pipe_diags_free(&diags);
	return 0;
}
