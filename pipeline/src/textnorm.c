/*
 * textnorm.c - the normalised form of a text for the policy's text rules
 * (docs/policies.md, "Normalisation"). Rules run on the text as written and
 * on this form; a match on either is a finding. The steps, in order:
 *
 *  1. {{placeholders}} are removed (a placeholder inside a phrase must not
 *     split it);
 *  2. default-ignorable code points (zero-width spaces and joiners, soft
 *     hyphens, bidi controls, variation selectors) are removed;
 *  3. NFKC with case folding (ICU's NFKC_Casefold): fullwidth, mathematical
 *     and other compatibility letters become plain ones, case disappears;
 *  4. every remaining non-ASCII character whose Unicode TR39 confusable
 *     skeleton (ICU uspoof) is ASCII is replaced by it (Cyrillic and Greek
 *     homoglyphs); ASCII itself is left alone (the skeleton of "m" is "rn");
 *  5. ASCII clean-up: a word broken by "-" and a line break is joined;
 *     leetspeak digits and symbols next to letters become letters
 *     (0→o 1→i 3→e 4→a 5→s 7→t @→a $→s); "_", "*", "~", "|", "+" and "-"
 *     between letters become spaces; runs of single letters separated by
 *     single spaces ("i g n o r e") are joined; whitespace runs (newlines
 *     included) become one space.
 *
 * This widens what the rules see; it does not make them complete (a
 * paraphrase is still a paraphrase). The runtime never links this file:
 * ICU stays in the pipeline.
 */
#include "textnorm.h"

#include "art/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

/* Step 1: copy without {{ name }} placeholders. */
static size_t strip_placeholders(char *dst, const char *s, size_t len)
{
	size_t i, o = 0, j;

	for (i = 0; i < len; i++) {
		if (i + 1 < len && s[i] == '{' && s[i + 1] == '{') {
			for (j = i + 2; j + 1 < len && j - i < 80 && !(s[j] == '}' && s[j + 1] == '}') &&
					s[j] != '\n' && s[j] != '{';
			     j++)
				;
			if (j + 1 < len && s[j] == '}' && s[j + 1] == '}') {
				dst[o++] = ' ';
				i = j + 1;
				continue;
			}
		}
		dst[o++] = s[i];
	}
	dst[o] = '\0';
	return o;
}

/* Steps 2-4 over UTF-16; returns a new UTF-8 string, or NULL: not UTF-8 (or
 * ICU refused it), or out of memory, which sets *oom (the caller must not
 * fall back to the ASCII steps then: that would let a full-width or
 * look-alike evasion through whenever memory is short). */
static char *unicode_fold(const char *s, size_t len, size_t *out_len, bool *oom)
{
	UErrorCode err = U_ZERO_ERROR;
	const UNormalizer2 *nfkc_cf = unorm2_getNFKCCasefoldInstance(&err);
	USpoofChecker *sc = NULL;
	UChar *a = NULL, *b = NULL, *c = NULL;
	int32_t na = 0, nb = 0, cap, i, o;
	char *out = NULL;
	int32_t n8 = 0;

	if (U_FAILURE(err) || len > (size_t)INT32_MAX / 4)
		return NULL;
	u_strFromUTF8(NULL, 0, &na, s, (int32_t)len, &err);
	if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
		return NULL;
	err = U_ZERO_ERROR;
	if (!(a = malloc(((size_t)na + 1) * sizeof(UChar)))) {
		*oom = true;
		return NULL;
	}
	u_strFromUTF8(a, na + 1, &na, s, (int32_t)len, &err);
	if (U_FAILURE(err))
		goto fail;
	/* 2: drop default-ignorable code points */
	for (i = 0, o = 0; i < na;) {
		UChar32 ch;
		int32_t start = i;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion" /* inside ICU's macro */
		U16_NEXT(a, i, na, ch);
#pragma GCC diagnostic pop
		if (u_hasBinaryProperty(ch, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
			continue;
		while (start < i)
			a[o++] = a[start++];
	}
	na = o;
	/* 3: NFKC_Casefold */
	cap = na * 4 + 16;
	if (!(b = malloc((size_t)cap * sizeof(UChar))))
		goto nomem;
	nb = unorm2_normalize(nfkc_cf, a, na, b, cap, &err);
	if (U_FAILURE(err))
		goto fail;
	/* 4: non-ASCII characters with an ASCII skeleton */
	sc = uspoof_open(&err);
	if (U_FAILURE(err))
		goto fail;
	if (!(c = malloc(((size_t)nb * 4 + 16) * sizeof(UChar))))
		goto nomem;
	for (i = 0, o = 0; i < nb;) {
		UChar32 ch;
		UChar one[2], skel[16];
		int32_t start = i, ns, k, n1 = 0;
		bool ascii = true;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion" /* inside ICU's macro */
		U16_NEXT(b, i, nb, ch);
#pragma GCC diagnostic pop
		if (ch < 0x80) {
			c[o++] = (UChar)ch;
			continue;
		}
		U16_APPEND_UNSAFE(one, n1, ch);
		err = U_ZERO_ERROR;
		ns = uspoof_getSkeleton(sc, 0, one, n1, skel, 16, &err);
		for (k = 0; U_SUCCESS(err) && k < ns; k++)
			ascii = ascii && skel[k] < 0x80 && skel[k] > 0x20;
		if (U_SUCCESS(err) && ascii && ns > 0) {
			for (k = 0; k < ns; k++)
				c[o++] = (UChar)u_tolower(skel[k]);
		} else {
			while (start < i)
				c[o++] = b[start++];
		}
	}
	err = U_ZERO_ERROR;
	u_strToUTF8(NULL, 0, &n8, c, o, &err);
	if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
		goto fail;
	err = U_ZERO_ERROR;
	if (!(out = malloc((size_t)n8 + 1)))
		goto nomem;
	u_strToUTF8(out, n8 + 1, &n8, c, o, &err);
	if (U_FAILURE(err)) {
		free(out);
		out = NULL;
		goto fail;
	}
	*out_len = (size_t)n8;
	goto fail;
nomem:
	*oom = true;
fail:
	if (err == U_MEMORY_ALLOCATION_ERROR)
		*oom = true;
	uspoof_close(sc);
	free(a);
	free(b);
	free(c);
	return out;
}

static bool is_alpha(char ch)
{
	return ch >= 'a' && ch <= 'z';
}

static char leet(char ch)
{
	switch (ch) {
	case '0': return 'o';
	case '1': return 'i';
	case '3': return 'e';
	case '4': return 'a';
	case '5': return 's';
	case '7': return 't';
	case '@': return 'a';
	case '$': return 's';
	default: return 0;
	}
}

/* Step 5, in place; returns the new length. */
static size_t ascii_clean(char *s, size_t n)
{
	size_t i, o, j;

	/* leetspeak next to a letter (the original neighbours decide) */
	for (i = 0; i < n; i++) {
		char l = leet(s[i]);
		bool left = i > 0 && (is_alpha(s[i - 1]) || leet(s[i - 1])),
		     right = i + 1 < n && (is_alpha(s[i + 1]) || leet(s[i + 1]));

		if (l && (left || right) &&
		    ((i > 0 && is_alpha(s[i - 1])) || (i + 1 < n && is_alpha(s[i + 1])) ||
		     (i > 1 && is_alpha(s[i - 2])) || (i + 2 < n && is_alpha(s[i + 2]))))
			s[i] = l;
	}
	/* hyphenation across a line break: "ig-\n  nore" */
	for (i = 0, o = 0; i < n; i++) {
		if (s[i] == '-' && o > 0 && is_alpha(s[o - 1])) {
			j = i + 1;
			while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
				j++;
			if (j < n && s[j] == '\n') {
				j++;
				while (j < n && (s[j] == ' ' || s[j] == '\t'))
					j++;
				if (j < n && is_alpha(s[j])) {
					i = j - 1;
					continue;
				}
			}
		}
		s[o++] = s[i];
	}
	n = o;
	/* separators between letters, and whitespace runs */
	for (i = 0, o = 0; i < n; i++) {
		char ch = s[i];

		if (strchr("_*~|+-", ch) && o > 0 && is_alpha(s[o - 1]) && i + 1 < n &&
		    is_alpha(s[i + 1]))
			ch = ' ';
		if (ch == '\n' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v')
			ch = ' ';
		if (ch == ' ' && o > 0 && s[o - 1] == ' ')
			continue;
		s[o++] = ch;
	}
	n = o;
	/* runs of at least three single letters: "i g n o r e" */
	for (i = 0, o = 0; i < n;) {
		size_t k = i, letters = 0;

		while (k < n && is_alpha(s[k]) && (k == 0 || !is_alpha(s[k - 1])) &&
		       (k + 1 == n || s[k + 1] == ' ') && (k == i || s[k - 1] == ' ')) {
			letters++;
			k += k + 1 < n ? 2 : 1;
		}
		if (letters >= 3 && (i == 0 || s[i - 1] == ' ')) {
			for (j = i; j < k; j += 2)
				s[o++] = s[j];
			s[o++] = ' ';
			i = k;
			continue;
		}
		s[o++] = s[i++];
	}
	s[o] = '\0';
	return o;
}

int pipe_text_normalize(char **out, size_t *out_len, const char *text, size_t len)
{
	char *stripped, *folded;
	size_t n, nf = 0;
	bool oom = false;

	*out = NULL;
	*out_len = 0;
	if (!(stripped = malloc(len + 1)))
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	n = strip_placeholders(stripped, text, len);
	folded = unicode_fold(stripped, n, &nf, &oom);
	if (oom) {
		free(stripped);
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	}
	if (folded) {
		free(stripped);
	} else { /* not UTF-8 (or ICU failed): the ASCII steps still apply */
		size_t i;

		for (i = 0; i < n; i++)
			if (stripped[i] >= 'A' && stripped[i] <= 'Z')
				stripped[i] = (char)(stripped[i] - 'A' + 'a');
		folded = stripped;
		nf = n;
	}
	*out_len = ascii_clean(folded, nf);
	*out = folded;
	return 0;
}
