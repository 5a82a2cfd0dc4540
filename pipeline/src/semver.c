/*
 * semver.c - semantic versions 2.0.0: strict parsing, precedence, pins.
 *
 * Nothing here allocates: a parsed version points into the caller's string.
 * Numeric prerelease identifiers are compared as digit strings (length
 * first, then bytes; valid ones have no leading zeros), so they may be
 * arbitrarily long without overflow.
 */
#include "pipe/semver.h"

#include "art/error.h"

#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-';
}

/* A numeric core part: "0" or [1-9][0-9]*, fitting in 64 bits. */
static int parse_number(uint64_t *out, const char **p, const char *what, const char *s)
{
	const char *q = *p;
	uint64_t v = 0;

	if (!is_digit(*q))
		return art_error_set(AF_EINVAL, "'%s' is not a semantic version: %s is not a number", s, what);
	if (*q == '0' && is_digit(q[1]))
		return art_error_set(AF_EINVAL, "'%s' is not a semantic version: %s has a leading zero", s, what);
	while (is_digit(*q)) {
		unsigned d = (unsigned)(*q - '0');

		if (v > (UINT64_MAX - d) / 10)
			return art_error_set(AF_EINVAL, "'%s' is not a semantic version: %s is too large", s, what);
		v = v * 10 + d;
		q++;
	}
	*out = v;
	*p = q;
	return 0;
}

/* Dot-separated identifiers up to '+' or the end. numeric_rule: refuse
 * numeric identifiers with leading zeros (prerelease, not build). */
static int parse_idents(const char **p, size_t *len, bool numeric_rule, const char *what,
			const char *s)
{
	const char *start = *p, *q = *p;

	for (;;) {
		const char *id = q;
		bool all_digits = true;

		while (is_ident_char(*q)) {
			if (!is_digit(*q))
				all_digits = false;
			q++;
		}
		if (q == id)
			return art_error_set(AF_EINVAL, "'%s' is not a semantic version: empty %s identifier", s, what);
		if (numeric_rule && all_digits && *id == '0' && q - id > 1)
			return art_error_set(AF_EINVAL, "'%s' is not a semantic version: %s identifier '%.*s' has a leading zero",
					     s, what, (int)(q - id), id);
		if (*q != '.')
			break;
		q++;
	}
	*len = (size_t)(q - start);
	*p = q;
	return 0;
}

int pipe_semver_parse(pipe_semver *out, const char *s)
{
	pipe_semver v;
	const char *p = s;
	int rc;

	if (!out || !s)
		return art_error_set(AF_EINVAL, "no version given");
	memset(&v, 0, sizeof(v));
	if ((rc = parse_number(&v.major, &p, "MAJOR", s)) < 0)
		return rc;
	if (*p++ != '.')
		return art_error_set(AF_EINVAL, "'%s' is not a semantic version: expected MAJOR.MINOR.PATCH", s);
	if ((rc = parse_number(&v.minor, &p, "MINOR", s)) < 0)
		return rc;
	if (*p++ != '.')
		return art_error_set(AF_EINVAL, "'%s' is not a semantic version: expected MAJOR.MINOR.PATCH", s);
	if ((rc = parse_number(&v.patch, &p, "PATCH", s)) < 0)
		return rc;
	if (*p == '-') {
		p++;
		v.pre = p;
		if ((rc = parse_idents(&p, &v.pre_len, true, "prerelease", s)) < 0)
			return rc;
	}
	if (*p == '+') {
		p++;
		v.build = p;
		if ((rc = parse_idents(&p, &v.build_len, false, "build", s)) < 0)
			return rc;
	}
	if (*p != '\0')
		return art_error_set(AF_EINVAL, "'%s' is not a semantic version: unexpected '%c'", s, *p);
	*out = v;
	return 0;
}

bool pipe_semver_valid(const char *s)
{
	pipe_semver v;

	return s && pipe_semver_parse(&v, s) == 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_ident(const char *a, size_t alen, const char *b, size_t blen)
{
	bool anum = true, bnum = true;
	size_t i;
	int c;

	for (i = 0; i < alen; i++)
		anum = anum && is_digit(a[i]);
	for (i = 0; i < blen; i++)
		bnum = bnum && is_digit(b[i]);
	if (anum && bnum) {
		if (alen != blen)
			return alen < blen ? -1 : 1;
		c = memcmp(a, b, alen);
		return c < 0 ? -1 : c > 0;
	}
	if (anum != bnum)
		return anum ? -1 : 1;
	c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}

int pipe_semver_cmp(const pipe_semver *a, const pipe_semver *b)
{
	const char *pa, *pb, *ea, *eb;
	int c;

	if ((c = cmp_u64(a->major, b->major)) || (c = cmp_u64(a->minor, b->minor)) ||
	    (c = cmp_u64(a->patch, b->patch)))
		return c;
	if (!a->pre_len || !b->pre_len)
		return a->pre_len ? -1 : b->pre_len ? 1 : 0;
	pa = a->pre;
	pb = b->pre;
	ea = a->pre + a->pre_len;
	eb = b->pre + b->pre_len;
	for (;;) {
		const char *da = memchr(pa, '.', (size_t)(ea - pa));
		const char *db = memchr(pb, '.', (size_t)(eb - pb));

		if (!da)
			da = ea;
		if (!db)
			db = eb;
		if ((c = cmp_ident(pa, (size_t)(da - pa), pb, (size_t)(db - pb))))
			return c;
		if (da == ea || db == eb)
			return da == ea ? (db == eb ? 0 : -1) : 1;
		pa = da + 1;
		pb = db + 1;
	}
}

int pipe_semver_satisfies(bool *out, const char *version, const char *pin)
{
	pipe_semver v, p;
	bool caret;
	int rc;

	if (!out || !version || !pin)
		return art_error_set(AF_EINVAL, "no version or pin given");
	if ((rc = pipe_semver_parse(&v, version)) < 0)
		return rc;
	caret = pin[0] == '^';
	if ((rc = pipe_semver_parse(&p, pin + (caret ? 1 : 0))) < 0)
		return rc;
	if (!caret) {
		*out = pipe_semver_cmp(&v, &p) == 0;
		return 0;
	}
	*out = pipe_semver_cmp(&v, &p) >= 0 && v.major == p.major &&
	       (p.major > 0 || v.minor == p.minor);
	return 0;
}

bool pipe_semver_pin_valid(const char *pin)
{
	if (!pin)
		return false;
	return pipe_semver_valid(pin[0] == '^' ? pin + 1 : pin);
}
