/*
 * kernels.c - three compute-heavy kernels measured natively, as wasm2c
 * output (the agents' path) and in V8 (bench/overhead.sh). No libc: the same
 * source compiles for the host and for wasm32 without WASI imports.
 *
 *   sha256_run   SHA-256 over a 64 KiB buffer, N times (chained)
 *   json_run     serialise a ~1 MB JSON document, then parse it back
 *                (a full tokenizer: strings with escapes, numbers, nesting)
 *   match_run    a regex-like matcher ('.', '*', '?', '[a-z]' classes,
 *                backtracking) over 4096 lines against 8 patterns
 *
 * Each returns a checksum so the work cannot be optimised away; the driver
 * checks that native, wasm2c and V8 agree.
 */
#include <stddef.h>
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(#name))) __attribute__((visibility("default")))
#ifndef __wasm__
#undef EXPORT
#define EXPORT(name)
#endif

static void *k_memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

/* ---- SHA-256 ---------------------------------------------------------- */

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (i = 0; i < 64; i++) {
		t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static unsigned char sha_buf[65536];

static void sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	unsigned char tail[128];
	size_t i, r;
	uint64_t bits = (uint64_t)n * 8;

	for (i = 0; i + 64 <= n; i += 64)
		sha256_block(h, p + i);
	r = n - i;
	k_memset(tail, 0, sizeof(tail));
	for (size_t j = 0; j < r; j++)
		tail[j] = p[i + j];
	tail[r] = 0x80;
	r = r < 56 ? 64 : 128;
	for (i = 0; i < 8; i++)
		tail[r - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha256_block(h, tail);
	if (r == 128)
		sha256_block(h, tail + 64);
	for (i = 0; i < 8; i++)
		out[4 * i] = (unsigned char)(h[i] >> 24), out[4 * i + 1] = (unsigned char)(h[i] >> 16),
			out[4 * i + 2] = (unsigned char)(h[i] >> 8), out[4 * i + 3] = (unsigned char)h[i];
}

EXPORT(sha256_run) uint32_t sha256_run(uint32_t iters)
{
	unsigned char d[32] = {0};
	uint32_t i;

	for (i = 0; i < sizeof(sha_buf); i++)
		sha_buf[i] = (unsigned char)(i * 131u + 7u);
	for (i = 0; i < iters; i++) {
		sha256(sha_buf, sizeof(sha_buf), d);
		sha_buf[i % sizeof(sha_buf)] ^= d[0];
	}
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

/* ---- JSON serialise + parse ------------------------------------------- */

#define JSON_CAP (1200 * 1024)
static char json_doc[JSON_CAP];

typedef struct {
	const char *p, *end;
	uint32_t sum;
	int depth;
} jparser;

static size_t put_str(char *o, size_t n, const char *s)
{
	while (*s)
		o[n++] = *s++;
	return n;
}

static size_t put_u(char *o, size_t n, uint32_t v)
{
	char t[12];
	int k = 0;

	do
		t[k++] = (char)('0' + v % 10), v /= 10;
	while (v);
	while (k)
		o[n++] = t[--k];
	return n;
}

/* ~1 MB: an array of records with strings (some escaped), numbers, nested arrays */
static size_t json_write(uint32_t seed)
{
	size_t n = 0;
	uint32_t i, j;

	json_doc[n++] = '[';
	for (i = 0; n < JSON_CAP - 4096 && i < 100000; i++) {
		if (i)
			json_doc[n++] = ',';
		n = put_str(json_doc, n, "{\"id\":");
		n = put_u(json_doc, n, i ^ seed);
		n = put_str(json_doc, n, ",\"name\":\"agent-");
		n = put_u(json_doc, n, i * 7u);
		n = put_str(json_doc, n, " \\\"quoted\\\" \\u00e9\\n\",\"tags\":[");
		for (j = 0; j < 4; j++) {
			if (j)
				json_doc[n++] = ',';
			n = put_u(json_doc, n, (i + j) * 2654435761u);
		}
		n = put_str(json_doc, n, "],\"ok\":true,\"ratio\":-12.5e3}");
	}
	json_doc[n++] = ']';
	return n;
}

static int jvalue(jparser *j);

static void jws(jparser *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

static int jstring(jparser *j)
{
	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\') {
			j->p++;
			if (j->p >= j->end)
				return -1;
			if (*j->p == 'u') {
				uint32_t cp = 0;
				for (int k = 1; k <= 4; k++) {
					char c = j->p[k];
					cp = cp * 16 + (uint32_t)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
				}
				j->sum = j->sum * 31 + cp;
				j->p += 4;
			} else {
				j->sum = j->sum * 31 + (unsigned char)*j->p;
			}
		} else {
			j->sum = j->sum * 31 + (unsigned char)*j->p;
		}
		j->p++;
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	return 0;
}

static int jnumber(jparser *j)
{
	uint32_t v = 0;
	const char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
				 *j->p == 'E' || *j->p == '+' || *j->p == '-'))
		v = v * 10 + (uint32_t)(*j->p++ - '0');
	j->sum += v;
	return j->p > s ? 0 : -1;
}

static int jvalue(jparser *j)
{
	jws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
	case '[': {
		char close = *j->p == '{' ? '}' : ']';
		int obj = close == '}';
		if (++j->depth > 64)
			return -1;
		j->p++;
		jws(j);
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		for (;;) {
			if (obj) {
				jws(j);
				if (jstring(j) < 0)
					return -1;
				jws(j);
				if (j->p >= j->end || *j->p++ != ':')
					return -1;
			}
			if (jvalue(j) < 0)
				return -1;
			jws(j);
			if (j->p >= j->end)
				return -1;
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p++ != close)
				return -1;
			j->depth--;
			return 0;
		}
	}
	case '"':
		return jstring(j);
	case 't':
		j->p += 4;
		j->sum += 1;
		return 0;
	case 'f':
		j->p += 5;
		return 0;
	case 'n':
		j->p += 4;
		return 0;
	default:
		return jnumber(j);
	}
}

EXPORT(json_run) uint32_t json_run(uint32_t iters)
{
	uint32_t sum = 0, i;

	for (i = 0; i < iters; i++) {
		size_t n = json_write(i);
		jparser j = {json_doc, json_doc + n, 0, 0};
		if (jvalue(&j) < 0)
			return 0xffffffffu;
		sum = sum * 33 + j.sum + (uint32_t)n;
	}
	return sum;
}

/* ---- regex-like matcher ----------------------------------------------- */

static char lines[4096][80];

static int match_class(const char **pp, char c)
{
	const char *p = *pp + 1;
	int ok = 0, neg = 0;

	if (*p == '^')
		neg = 1, p++;
	while (*p && *p != ']') {
		if (p[1] == '-' && p[2] && p[2] != ']') {
			if (c >= p[0] && c <= p[2])
				ok = 1;
			p += 3;
		} else {
			if (c == *p)
				ok = 1;
			p++;
		}
	}
	*pp = *p ? p + 1 : p;
	return ok ^ neg;
}

static int match_here(const char *re, const char *s);

static int match_one(const char *re, char c, const char **next)
{
	if (*re == '[')
		return *next = re, c && match_class(next, c);
	*next = re + 1;
	return c && (*re == '.' || *re == c);
}

static int match_star(const char *re, const char *after, const char *s)
{
	const char *next;

	do {
		if (match_here(after, s))
			return 1;
	} while (match_one(re, *s, &next) && *s++);
	return 0;
}

static int match_here(const char *re, const char *s)
{
	const char *next;

	for (;;) {
		if (!*re)
			return 1;
		if (*re == '$' && !re[1])
			return !*s;
		/* find the end of this atom to see if a '*' or '?' follows */
		const char *atom_end = re;
		if (*atom_end == '[') {
			while (*atom_end && *atom_end != ']')
				atom_end++;
			if (*atom_end)
				atom_end++;
		} else {
			atom_end++;
		}
		if (*atom_end == '*')
			return match_star(re, atom_end + 1, s);
		if (*atom_end == '?') {
			if (match_one(re, *s, &next) && match_here(atom_end + 1, s + 1))
				return 1;
			re = atom_end + 1;
			continue;
		}
		if (!match_one(re, *s, &next))
			return 0;
		re = atom_end;
		s++;
	}
}

static int match(const char *re, const char *s)
{
	if (*re == '^')
		return match_here(re + 1, s);
	do
		if (match_here(re, s))
			return 1;
	while (*s++);
	return 0;
}

EXPORT(match_run) uint32_t match_run(uint32_t iters)
{
	static const char *const pats[] = {
		"ag[a-z]*nt-[0-9]*7$", "^[a-m]*x?y", "e.*r.*o.*r", "[0-9][0-9][0-9]-[a-f]*z",
		"^tool_[a-z_]*:.*fetch", "q.*u.*o.*t.*e", "[^a-z ]+", "zz*y?x$"};
	uint32_t hits = 0, i, l;

	for (l = 0; l < 4096; l++) {
		uint32_t x = l * 2654435761u;
		int n = 0;
		const char *pre = (l % 3 == 0) ? "tool_http_fetch:" : (l % 3 == 1) ? "agent-" : "";
		while (*pre)
			lines[l][n++] = *pre++;
		while (n < 72) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			lines[l][n++] = (char)((x % 5 == 0) ? ' ' : 'a' + (char)(x % 26));
		}
		lines[l][n] = 0;
	}
	for (i = 0; i < iters; i++)
		for (l = 0; l < 4096; l++)
			hits += (uint32_t)match(pats[(l + i) % 8], lines[l]) * (l + 1);
	return hits;
}
