/*
 * util.c - capped buffers, digests, encodings, file I/O and time helpers.
 */
#include "art/util.h"

#include "art/error.h"
#include "art/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ART_BUF_DEFAULT_MAX ((size_t)64 << 20)

static size_t buf_max(const art_buf *b)
{
	return b->max ? b->max : ART_BUF_DEFAULT_MAX;
}

static int buf_reserve(art_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > buf_max(b) || b->len > buf_max(b) - extra)
		return art_error_set(AF_ETOOBIG, "buffer limit of %zu bytes exceeded", buf_max(b));
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return art_error_set(AF_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int art_buf_append(art_buf *b, const void *data, size_t n)
{
	int rc = buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int art_buf_puts(art_buf *b, const char *s)
{
	return art_buf_append(b, s, strlen(s));
}

int art_buf_printf(art_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return art_error_set(AF_EINVAL, "bad format string");
	rc = buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *art_buf_detach(art_buf *b)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void art_buf_free(art_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void art_sha256(const void *data, size_t len, uint8_t out[ART_SHA256_LEN])
{
	SHA256(data, len, out);
}

void art_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void art_sha256_hex(const void *data, size_t len, char out[ART_SHA256_HEX_LEN + 1])
{
	uint8_t md[ART_SHA256_LEN];

	art_sha256(data, len, md);
	art_hex(out, md, sizeof(md));
}

int art_base64_encode(char **out, const void *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3) + 1;
	char *s;

	*out = NULL;
	if (len > (size_t)INT32_MAX / 2)
		return art_error_set(AF_ETOOBIG, "base64 input too large");
	s = malloc(n);
	if (!s)
		return art_error_set(AF_ENOMEM, "out of memory");
	EVP_EncodeBlock((unsigned char *)s, data, (int)len);
	*out = s;
	return 0;
}

int art_base64_decode(uint8_t **out, size_t *out_len, const char *b64)
{
	size_t len = strlen(b64), i, pad = 0;
	uint8_t *buf;
	int n;

	*out = NULL;
	*out_len = 0;
	if (len % 4 != 0 || len > (size_t)INT32_MAX / 2)
		return art_error_set(AF_ECORRUPT, "invalid base64: length %zu is not a multiple of 4", len);
	for (i = 0; i < len; i++) {
		char c = b64[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || c == '+' || c == '/';
		if (c == '=' && i >= len - 2) {
			pad++;
			continue;
		}
		if (!ok || pad)
			return art_error_set(AF_ECORRUPT, "invalid base64 character at offset %zu", i);
	}
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return art_error_set(AF_ENOMEM, "out of memory");
	n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		free(buf);
		return art_error_set(AF_ECORRUPT, "invalid base64");
	}
	*out = buf;
	*out_len = (size_t)n - pad;
	return 0;
}

int art_file_read(char **out, size_t *out_len, const char *path, size_t max)
{
	art_buf b = ART_BUF_INIT;
	char chunk[65536];
	int fd, rc = 0;
	ssize_t n;

	*out = NULL;
	*out_len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return art_error_set(errno == ENOENT ? AF_ENOTFOUND : AF_EIO,
				     "%s: cannot open: %s", path, strerror(errno));
	b.max = max;
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = art_error_set(AF_EIO, "%s: read failed: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		rc = art_buf_append(&b, chunk, (size_t)n);
		if (rc == AF_ETOOBIG) {
			rc = art_error_set(AF_ETOOBIG, "%s: file is larger than the %zu-byte limit", path, max);
			break;
		}
		if (rc < 0)
			break;
	}
	close(fd);
	if (rc < 0) {
		art_buf_free(&b);
		return rc;
	}
	*out_len = b.len;
	*out = art_buf_detach(&b);
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int art_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	art_buf tmp = ART_BUF_INIT;
	char *dir_copy = NULL;
	int fd = -1, dfd, rc = 0;

	if ((rc = art_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid())) < 0)
		return rc;
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = art_error_set(AF_EIO, "%s: cannot create: %s", tmp.data, strerror(errno));
		goto cleanup;
	}
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		rc = art_error_set(AF_EIO, "%s: write failed: %s", tmp.data, strerror(errno));
		goto cleanup;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = art_error_set(AF_EIO, "%s: close failed: %s", tmp.data, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp.data, path) < 0) {
		rc = art_error_set(AF_EIO, "%s: rename failed: %s", path, strerror(errno));
		goto cleanup;
	}
	dir_copy = strdup(path);
	if (dir_copy && (dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp.data)
		unlink(tmp.data);
	free(dir_copy);
	art_buf_free(&tmp);
	return rc;
}

static int parse_uint(const char **s, int digits, int *out)
{
	int v = 0, i;

	for (i = 0; i < digits; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += digits;
	*out = v;
	return 0;
}

int art_time_parse(time_t *out, const char *s)
{
	struct tm tm;
	const char *p = s;
	int year, mon, day, hh = 0, mm = 0, ss = 0;
	time_t t;

	if (strcmp(s, "now") == 0) {
		*out = art_time_now();
		return 0;
	}
	if (s[0] == '+' || s[0] == '-') {
		char *end;
		long long n;
		long long unit;

		errno = 0;
		n = strtoll(s + 1, &end, 10);
		if (errno || end == s + 1 || end[0] == '\0' || end[1] != '\0' || n < 0 || n > 100000000)
			goto bad;
		switch (end[0]) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: goto bad;
		}
		*out = art_time_now() + (time_t)(s[0] == '-' ? -n * unit : n * unit);
		return 0;
	}
	if (parse_uint(&p, 4, &year) || *p++ != '-' || parse_uint(&p, 2, &mon) ||
	    *p++ != '-' || parse_uint(&p, 2, &day))
		goto bad;
	if (*p == 'T') {
		p++;
		if (parse_uint(&p, 2, &hh) || *p++ != ':' || parse_uint(&p, 2, &mm) ||
		    *p++ != ':' || parse_uint(&p, 2, &ss) || *p++ != 'Z')
			goto bad;
	}
	if (*p != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		goto bad;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	if (t == (time_t)-1)
		goto bad;
	*out = t;
	return 0;
bad:
	return art_error_set(AF_EINVAL,
			     "invalid time '%s': use RFC 3339 UTC (2026-11-21T10:00:00Z), a date "
			     "(2026-11-21), 'now', or a relative duration (+24h, +7d, -30m)", s);
}

void art_time_format(char out[21], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

time_t art_time_now(void)
{
	const char *fake = getenv("AF_NOW");
	time_t t;

	if (fake && *fake && strcmp(fake, "now") != 0 && fake[0] != '+' && fake[0] != '-' &&
	    art_time_parse(&t, fake) == 0)
		return t;
	return time(NULL);
}

size_t art_utf8_decode(const void *s, size_t len, uint32_t *cp)
{
	return art_utf8__decode(s, len, cp, NULL);
}

int art_utf8_valid(const void *s, size_t len)
{
	const uint8_t *b = s;
	size_t i = 0, n;

	while (i < len) {
		if (b[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = art_utf8_decode(b + i, len - i, NULL)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

size_t art_utf8_whole(const void *s, size_t len)
{
	const uint8_t *b = s;
	size_t i = len;
	int cut = 0;

	/* The last sequence starts at most 3 continuation bytes back. */
	while (i > 0 && len - i < 3 && (b[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return len;
	i--;
	(void)art_utf8__decode(b + i, len - i, NULL, &cut);
	return cut ? i : len;
}
