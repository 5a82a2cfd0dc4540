/*
 * utf8.h - the one strict UTF-8 decoder.
 *
 * Dependency-free on purpose (<stddef.h> and <stdint.h> only, no library
 * call): besides the artifacts library (art_utf8_decode and friends in
 * art/util.h, which everything on the host calls), the guest library compiles
 * this very file: codegen/codegen.mk embeds it beside the guest sources as
 * art/utf8.h, so codegen/guest/af_json.c, built for wasm32 into every agent
 * (where the artifacts library cannot be linked), decodes with the same code,
 * and the guest sources digest (the guest object cache key, the toolchain id)
 * covers it.
 *
 * Strict means RFC 3629 (Unicode Table 3-7): shortest form only (no
 * overlongs), no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. The
 * range of the second byte is what rules each of them out.
 */
#ifndef ART_UTF8_H
#define ART_UTF8_H

#include <stddef.h>
#include <stdint.h>

/**
 * Decode one sequence at the start of s[0..len).
 * @param[out] cp   the code point (when the return is not 0); may be NULL
 * @param[out] cut  may be NULL; set to 1 when the return is 0 only because
 *                  len ends the sequence early (s[0..len) is a proper prefix
 *                  of a valid sequence), else to 0
 * @return the sequence length, 1..4, or 0 when s does not start with a
 *         whole valid sequence (or len is 0)
 */
static inline size_t art_utf8__decode(const void *s, size_t len, uint32_t *cp, int *cut)
{
	const uint8_t *b = (const uint8_t *)s;
	uint8_t lo = 0x80, hi = 0xbf; /* the range of the next continuation byte */
	uint32_t v;
	size_t need, k;

	if (cut)
		*cut = 0;
	if (len == 0)
		return 0;
	if (b[0] < 0x80) {
		v = b[0];
		need = 0;
	} else if (b[0] >= 0xc2 && b[0] <= 0xdf) {
		v = b[0] & 0x1fu;
		need = 1;
	} else if (b[0] >= 0xe0 && b[0] <= 0xef) {
		v = b[0] & 0x0fu;
		need = 2;
		if (b[0] == 0xe0)
			lo = 0xa0; /* below: overlong */
		else if (b[0] == 0xed)
			hi = 0x9f; /* above: a surrogate */
	} else if (b[0] >= 0xf0 && b[0] <= 0xf4) {
		v = b[0] & 0x07u;
		need = 3;
		if (b[0] == 0xf0)
			lo = 0x90; /* below: overlong */
		else if (b[0] == 0xf4)
			hi = 0x8f; /* above: past U+10FFFF */
	} else {
		return 0; /* a continuation byte, an overlong lead (c0, c1) or f5..ff */
	}
	for (k = 1; k <= need; k++) {
		if (k >= len) {
			if (cut)
				*cut = 1;
			return 0;
		}
		if (b[k] < lo || b[k] > hi)
			return 0;
		v = (v << 6) | (b[k] & 0x3fu);
		lo = 0x80;
		hi = 0xbf;
	}
	if (cp)
		*cp = v;
	return need + 1;
}

#endif
