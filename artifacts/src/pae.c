/*
 * pae.c - the DSSE pre-authentication encoding (art_sig_pae, declared in
 * art/sig.h): "DSSEv1 <len(type)> <type> <len(body)> <body>", the bytes a
 * DSSE signature covers. A leaf of its own so that keyring.c (which checks
 * a keyring document's signatures itself) and sig.c (which verifies
 * envelopes against a keyring) both use it without depending on each other
 * (ci/lint/deps.sh).
 */
#include "art/sig.h"

#include "art/util.h"

#include <string.h>

int art_sig_pae(uint8_t **out, size_t *out_len, const char *payload_type,
		const void *body, size_t body_len)
{
	art_buf b = ART_BUF_INIT;
	int rc;

	*out = NULL;
	*out_len = 0;
	b.max = 2 * (size_t)ART_SIG_ENVELOPE_MAX;
	if ((rc = art_buf_printf(&b, "DSSEv1 %zu %s %zu ", strlen(payload_type), payload_type,
				 body_len)) < 0 ||
	    (rc = art_buf_append(&b, body, body_len)) < 0) {
		art_buf_free(&b);
		return rc;
	}
	*out_len = b.len;
	*out = (uint8_t *)art_buf_detach(&b);
	return 0;
}
