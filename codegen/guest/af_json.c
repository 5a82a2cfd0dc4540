/*
 * af_json.c - strict JSON tokenizer for the guest (RFC 8259).
 *
 * Two passes over the text: the first validates and counts tokens, the
 * second fills the token array (allocated once, exactly sized). No
 * recursion: open containers live on a fixed stack of AF_JSON_MAX_DEPTH.
 * Everything the host or a model sends passes through here before the guest
 * looks at it, so the guest never forwards text that is not valid JSON.
 * (jsmn was considered: it accepts `[1 2]`, `{"a"}`, `[01]` and control
 * characters in strings even in strict mode.)
 */
#include "af_guest.h"
#include "art/utf8.h" /* the one decoder, shared with the host */

#include <string.h>

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* *pos at the opening quote; on success *pos is past the closing quote and
 * *end is the index of the closing quote. */
static int scan_string(const char *s, size_t len, size_t *pos, size_t *end)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = *pos + 1, n, k;

	while (i < len) {
		unsigned char c = u[i];

		if (c == '"') {
			*end = i;
			*pos = i + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (i + 1 >= len)
				return -1;
			switch (s[i + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				i += 2;
				continue;
			case 'u':
				if (len - i < 6)
					return -1;
				for (k = 2; k < 6; k++)
					if (hex_val(s[i + k]) < 0)
						return -1;
				i += 6;
				continue;
			default:
				return -1;
			}
		}
		if (c >= 0x80) {
			n = art_utf8__decode(u + i, len - i, NULL, NULL);
			if (!n)
				return -1;
			i += n;
			continue;
		}
		i++;
	}
	return -1;
}

static int scan_number(const char *s, size_t len, size_t *pos)
{
	size_t i = *pos;

	if (s[i] == '-')
		i++;
	if (i >= len)
		return -1;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < len && is_digit(s[i]))
			i++;
	} else {
		return -1;
	}
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || !is_digit(s[i]))
			return -1;
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || !is_digit(s[i]))
			return -1;
		while (i < len && is_digit(s[i]))
			i++;
	}
	*pos = i;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp);
static uint32_t hex4(const char *s);

/*
 * The decoded bytes of a string token, one at a time: keys and strings are
 * compared as decoded, so "chang\u0065" is "change" (as it is to every other
 * JSON reader, the host's included). Decoding is af_json_unescape's: a lone
 * surrogate is U+FFFD. The text was validated by scan_string.
 */
typedef struct dec_iter {
	const char *s;
	size_t i, n;
	char buf[4];
	size_t bi, bn;
} dec_iter;

static void dec_init(dec_iter *it, const af_json *j, uint32_t t)
{
	it->s = j->text + j->tok[t].start;
	it->i = 0;
	it->n = j->tok[t].end - j->tok[t].start;
	it->bi = it->bn = 0;
}

/* The next decoded byte (0..255), or -1 at the end. */
static int dec_next(dec_iter *it)
{
	const char *s = it->s;
	uint32_t cp;

	if (it->bi < it->bn)
		return (unsigned char)it->buf[it->bi++];
	if (it->i >= it->n)
		return -1;
	if (s[it->i] != '\\')
		return (unsigned char)s[it->i++];
	switch (s[it->i + 1]) {
	case 'b': it->i += 2; return '\b';
	case 'f': it->i += 2; return '\f';
	case 'n': it->i += 2; return '\n';
	case 'r': it->i += 2; return '\r';
	case 't': it->i += 2; return '\t';
	case 'u': break;
	default: it->i += 2; return (unsigned char)s[it->i - 1];
	}
	cp = hex4(s + it->i + 2);
	it->i += 6;
	if (cp >= 0xd800 && cp <= 0xdbff && it->i + 6 <= it->n && s[it->i] == '\\' &&
	    s[it->i + 1] == 'u') {
		uint32_t lo = hex4(s + it->i + 2);

		if (lo >= 0xdc00 && lo <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			it->i += 6;
		}
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd;
	it->bn = put_utf8(it->buf, cp);
	it->bi = 1;
	return (unsigned char)it->buf[0];
}

/* Has string token t an escape? (Else its text is its value.) */
static int has_escape(const af_json *j, uint32_t t)
{
	return memchr(j->text + j->tok[t].start, '\\', j->tok[t].end - j->tok[t].start) != NULL;
}

/* Decoded string token t against raw bytes s[0..n): 0 when equal. */
static int dec_cmp_raw(const af_json *j, uint32_t t, const char *s, size_t n)
{
	dec_iter it;
	size_t k;
	int c;

	if (!has_escape(j, t)) {
		uint32_t l = j->tok[t].end - j->tok[t].start;

		return l == n && memcmp(j->text + j->tok[t].start, s, n) == 0 ? 0 : 1;
	}
	dec_init(&it, j, t);
	for (k = 0; k < n; k++)
		if ((c = dec_next(&it)) < 0 || c != (unsigned char)s[k])
			return 1;
	return dec_next(&it) < 0 ? 0 : 1;
}

/* Two keys in byte order of their decoded values. */
static int key_cmp(const af_json *j, uint32_t a, uint32_t b)
{
	const af_tok *x = &j->tok[a], *y = &j->tok[b];
	dec_iter ia, ib;
	int ca, cb;

	if (!has_escape(j, a) && !has_escape(j, b)) {
		uint32_t lx = x->end - x->start, ly = y->end - y->start;
		int c = memcmp(j->text + x->start, j->text + y->start, lx < ly ? lx : ly);

		return c ? c : lx == ly ? 0 : lx < ly ? -1 : 1;
	}
	dec_init(&ia, j, a);
	dec_init(&ib, j, b);
	do {
		ca = dec_next(&ia);
		cb = dec_next(&ib);
	} while (ca == cb && ca >= 0);
	return ca < cb ? -1 : ca > cb ? 1 : 0;
}

/* Any two keys of object obj equal once decoded? scratch holds >= size entries. */
static int has_duplicate_keys(const af_json *j, uint32_t obj, uint32_t *scratch)
{
	uint32_t size = j->tok[obj].size, k = obj + 1, m, gap, a, b;

	if (size < 2)
		return 0;
	for (m = 0; m < size; m++) {
		scratch[m] = k;
		k = j->tok[k + 1].next;
	}
	/* Shell sort (no recursion, no extra memory). */
	for (gap = size / 2; gap > 0; gap /= 2)
		for (a = gap; a < size; a++) {
			uint32_t v = scratch[a];

			for (b = a; b >= gap && key_cmp(j, scratch[b - gap], v) > 0; b -= gap)
				scratch[b] = scratch[b - gap];
			scratch[b] = v;
		}
	for (m = 1; m < size; m++)
		if (key_cmp(j, scratch[m - 1], scratch[m]) == 0)
			return 1;
	return 0;
}

enum { S_VALUE, S_KEY, S_COLON, S_AFTER };

/* One pass: validate (and fill j->tok when it is not NULL). */
static int scan(af_json *j, uint32_t *count, uint32_t *scratch)
{
	const char *s = j->text;
	size_t len = j->len, i = 0, end;
	af_tok *tok = j->tok;
	uint32_t stack[AF_JSON_MAX_DEPTH];
	uint8_t kind[AF_JSON_MAX_DEPTH];
	uint32_t n = 0, idx;
	int depth = 0, st = S_VALUE, first = 0, closing;

	for (;;) {
		char c;

		while (i < len && is_ws(s[i]))
			i++;
		if (st == S_AFTER && depth == 0) {
			if (i != len)
				return -1;
			*count = n;
			return 0;
		}
		if (i >= len)
			return -1;
		c = s[i];
		closing = 0;
		switch (st) {
		case S_VALUE:
			if (first && c == ']') {
				closing = 1;
				break;
			}
			first = 0;
			if (n == 0x7fffffff)
				return -1;
			if (depth > 0 && kind[depth - 1] == AF_J_ARRAY && tok)
				tok[stack[depth - 1]].size++;
			idx = n++;
			if (c == '{' || c == '[') {
				if (depth == AF_JSON_MAX_DEPTH)
					return -2; /* not invalid: deeper than the guest reads */
				if (tok) {
					tok[idx].type = c == '{' ? AF_J_OBJECT : AF_J_ARRAY;
					tok[idx].start = (uint32_t)i;
					tok[idx].size = 0;
				}
				stack[depth] = idx;
				kind[depth] = c == '{' ? AF_J_OBJECT : AF_J_ARRAY;
				depth++;
				i++;
				first = 1;
				st = c == '{' ? S_KEY : S_VALUE;
				continue;
			}
			if (c == '"') {
				size_t start = i + 1;

				if (scan_string(s, len, &i, &end) < 0)
					return -1;
				if (tok) {
					tok[idx].type = AF_J_STRING;
					tok[idx].start = (uint32_t)start;
					tok[idx].end = (uint32_t)end;
				}
			} else if (c == 't' || c == 'f' || c == 'n') {
				const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
				size_t l = strlen(lit);

				if (len - i < l || memcmp(s + i, lit, l) != 0)
					return -1;
				if (tok) {
					tok[idx].type = c == 't' ? AF_J_TRUE : c == 'f' ? AF_J_FALSE : AF_J_NULL;
					tok[idx].start = (uint32_t)i;
					tok[idx].end = (uint32_t)(i + l);
				}
				i += l;
			} else if (c == '-' || is_digit(c)) {
				size_t start = i;

				if (scan_number(s, len, &i) < 0)
					return -1;
				if (tok) {
					tok[idx].type = AF_J_NUMBER;
					tok[idx].start = (uint32_t)start;
					tok[idx].end = (uint32_t)i;
				}
			} else {
				return -1;
			}
			if (tok) {
				tok[idx].size = 0;
				tok[idx].next = n;
			}
			st = S_AFTER;
			continue;
		case S_KEY:
			if (first && c == '}') {
				closing = 1;
				break;
			}
			first = 0;
			if (c != '"' || n == 0x7fffffff)
				return -1;
			if (tok)
				tok[stack[depth - 1]].size++;
			idx = n++;
			{
				size_t start = i + 1;

				if (scan_string(s, len, &i, &end) < 0)
					return -1;
				if (tok) {
					tok[idx].type = AF_J_STRING;
					tok[idx].start = (uint32_t)start;
					tok[idx].end = (uint32_t)end;
					tok[idx].size = 0;
					tok[idx].next = n;
				}
			}
			st = S_COLON;
			continue;
		case S_COLON:
			if (c != ':')
				return -1;
			i++;
			st = S_VALUE;
			continue;
		default: /* S_AFTER inside a container */
			if (c == ',') {
				i++;
				st = kind[depth - 1] == AF_J_OBJECT ? S_KEY : S_VALUE;
				continue;
			}
			if ((c == '}' && kind[depth - 1] == AF_J_OBJECT) ||
			    (c == ']' && kind[depth - 1] == AF_J_ARRAY)) {
				closing = 1;
				break;
			}
			return -1;
		}
		if (!closing)
			return -1;
		depth--;
		if (tok) {
			tok[stack[depth]].end = (uint32_t)(i + 1);
			tok[stack[depth]].next = n;
			if (kind[depth] == AF_J_OBJECT && has_duplicate_keys(j, stack[depth], scratch))
				return -1;
		}
		i++;
		first = 0;
		st = S_AFTER;
	}
}

int af_json_parse(af_json *j, const char *text, size_t len)
{
	uint32_t n = 0, n2 = 0, *scratch;
	int rc;

	j->text = text;
	j->len = len;
	j->tok = NULL;
	j->n = 0;
	if (!text || len >= 0x7fffffff)
		return AF_JSON_EINVAL;
	if ((rc = scan(j, &n, NULL)) < 0)
		return rc == -2 ? AF_JSON_EDEPTH : AF_JSON_EINVAL;
	j->tok = af_mem_alloc((size_t)n * sizeof(af_tok));
	scratch = af_mem_alloc((size_t)n * sizeof(uint32_t));
	if (!j->tok || !scratch) {
		j->tok = NULL;
		return AF_JSON_ENOMEM;
	}
	if (scan(j, &n2, scratch) < 0 || n2 != n) {
		j->tok = NULL;
		return AF_JSON_EINVAL;
	}
	j->n = n;
	return 0;
}

_Static_assert(AF_JSON_MAX_DEPTH == 64, "af_json_why names the depth");

const char *af_json_why(int rc)
{
	/* The literal follows AF_JSON_MAX_DEPTH (64). */
	return rc == AF_JSON_EDEPTH ? "is nested too deep (more than 64 levels)"
				    : "is not valid JSON";
}

int af_json_member(const af_json *j, int obj, const char *key, size_t klen)
{
	uint32_t k, m;

	if (obj < 0 || (uint32_t)obj >= j->n || j->tok[obj].type != AF_J_OBJECT)
		return -1;
	k = (uint32_t)obj + 1;
	for (m = 0; m < j->tok[obj].size; m++) {
		if (dec_cmp_raw(j, k, key, klen) == 0)
			return (int)k + 1;
		k = j->tok[k + 1].next;
	}
	return -1;
}

int af_json_streq(const af_json *j, int t, const char *s, size_t n)
{
	const af_tok *k;

	if (t < 0 || (uint32_t)t >= j->n)
		return 0;
	k = &j->tok[t];
	return k->type == AF_J_STRING && dec_cmp_raw(j, (uint32_t)t, s, n) == 0;
}

int af_json_is_integer(const af_json *j, int t)
{
	const char *p, *e, *ib, *ie, *fb = NULL, *fe = NULL, *d;
	long exp = 0, zeros = 0, frac_len;
	int neg_exp = 0, all_zero = 1;

	if (t < 0 || (uint32_t)t >= j->n || j->tok[t].type != AF_J_NUMBER)
		return 0;
	p = j->text + j->tok[t].start;
	e = j->text + j->tok[t].end;
	if (p < e && *p == '-')
		p++;
	ib = p;
	while (p < e && is_digit(*p))
		p++;
	ie = p;
	if (p < e && *p == '.') {
		fb = ++p;
		while (p < e && is_digit(*p))
			p++;
		fe = p;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			neg_exp = *p++ == '-';
		while (p < e && is_digit(*p)) {
			if (exp < 100000000L)
				exp = exp * 10 + (*p - '0');
			p++;
		}
	}
	if (neg_exp)
		exp = -exp;
	/* value = digits(ib..ie fb..fe) * 10^(exp - frac_len); count trailing zeros. */
	frac_len = fb ? (long)(fe - fb) : 0;
	for (d = fb ? fe : ie; d > ib;) {
		d--;
		if (fb && d == fb - 1) /* skip the '.' (fb first: NULL - 1 is undefined) */
			continue;
		if (*d != '0') {
			all_zero = 0;
			break;
		}
		zeros++;
	}
	if (all_zero)
		return 1;
	return exp - frac_len + zeros >= 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static uint32_t hex4(const char *s)
{
	return (uint32_t)(hex_val(s[0]) << 12 | hex_val(s[1]) << 8 | hex_val(s[2]) << 4 |
			  hex_val(s[3]));
}

char *af_json_unescape(const af_json *j, int t, size_t *out_len)
{
	const char *s;
	size_t n, i = 0, o = 0;
	char *out;

	if (t < 0 || (uint32_t)t >= j->n || j->tok[t].type != AF_J_STRING)
		return NULL;
	s = j->text + j->tok[t].start;
	n = j->tok[t].end - j->tok[t].start;
	/* Unescaping never grows the text: \uXXXX (6) -> <= 3 bytes, pairs (12) -> 4. */
	out = af_mem_alloc(n + 1);
	if (!out)
		return NULL;
	while (i < n) {
		uint32_t cp;

		if (s[i] != '\\') {
			out[o++] = s[i++];
			continue;
		}
		switch (s[i + 1]) {
		case 'b': out[o++] = '\b'; i += 2; continue;
		case 'f': out[o++] = '\f'; i += 2; continue;
		case 'n': out[o++] = '\n'; i += 2; continue;
		case 'r': out[o++] = '\r'; i += 2; continue;
		case 't': out[o++] = '\t'; i += 2; continue;
		case 'u': break;
		default: out[o++] = s[i + 1]; i += 2; continue;
		}
		cp = hex4(s + i + 2);
		i += 6;
		if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
			uint32_t lo = hex4(s + i + 2);

			if (lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
		}
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = 0xfffd;
		o += put_utf8(out + o, cp);
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}
