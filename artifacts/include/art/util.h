/*
 * art/util.h - small shared helpers: capped growable buffers, SHA-256, hex,
 * base64, whole-file I/O with atomic replace, RFC 3339 time.
 *
 * Every buffer fed by untrusted input has a hard cap: art_buf refuses to grow
 * past its max and frees nothing on failure (the caller still owns it and
 * frees it once with art_buf_free).
 */
#ifndef ART_UTIL_H
#define ART_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ART_SHA256_LEN 32
#define ART_SHA256_HEX_LEN 64

/** A growable byte buffer with a hard size cap. data is always NUL-terminated. */
typedef struct art_buf {
	char *data;   /* owned; NULL until the first append */
	size_t len;   /* bytes used, excluding the terminating NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* hard cap on len; 0 means 64 MiB */
} art_buf;

#define ART_BUF_INIT {NULL, 0, 0, 0}

/**
 * Append n bytes. @return 0, AF_ENOMEM, or AF_ETOOBIG when len would pass max.
 * On failure the buffer is unchanged.
 */
int art_buf_append(art_buf *b, const void *data, size_t n);

/** Append a NUL-terminated string. Same errors as art_buf_append. */
int art_buf_puts(art_buf *b, const char *s);

/** Append printf-formatted text. Same errors as art_buf_append. */
int art_buf_printf(art_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Take ownership of the data (never NULL on success: "" for empty); resets b. */
char *art_buf_detach(art_buf *b);

/** Free the data and reset b. NULL-safe. */
void art_buf_free(art_buf *b);

/** SHA-256 of data into out[32]. Cannot fail. */
void art_sha256(const void *data, size_t len, uint8_t out[ART_SHA256_LEN]);

/** Lower-case hex of n bytes into out (2n+1 bytes including the NUL). */
void art_hex(char *out, const uint8_t *in, size_t n);

/** SHA-256 of data as 64 lower-case hex digits + NUL into out[65]. */
void art_sha256_hex(const void *data, size_t len, char out[ART_SHA256_HEX_LEN + 1]);

/**
 * Base64 (RFC 4648, with padding, no newlines).
 * @param[out] out  caller owns; free()
 * @return 0 or AF_ENOMEM
 */
int art_base64_encode(char **out, const void *data, size_t len);

/**
 * Decode strict base64 (padding required, no whitespace).
 * @param[out] out, out_len  caller owns out; free()
 * @return 0, AF_ENOMEM, or AF_ECORRUPT on invalid input
 */
int art_base64_decode(uint8_t **out, size_t *out_len, const char *b64);

/**
 * Read a whole file, refusing files larger than max bytes.
 * @param[out] out      caller owns; free(). NUL-terminated (not counted in len).
 * @param[out] out_len  file size
 * @return 0, AF_ENOTFOUND, AF_EIO, AF_ETOOBIG or AF_ENOMEM (message names path)
 */
int art_file_read(char **out, size_t *out_len, const char *path, size_t max);

/**
 * Replace path atomically: write a temporary file beside it, fsync, rename,
 * fsync the directory. A crash leaves either the old or the new content.
 * @param[in] mode  permission bits of the new file (e.g. 0600 for keys)
 * @return 0 or AF_EIO (message names path)
 */
int art_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);

/**
 * Parse a time: RFC 3339 UTC ("2026-11-21T10:00:00Z"), a date
 * ("2026-11-21", midnight UTC), "now", or a duration relative to now
 * ("+24h", "+30m", "+7d", "-1h", "+90s").
 * @return 0 or AF_EINVAL
 */
int art_time_parse(time_t *out, const char *s);

/** Format t as RFC 3339 UTC ("2026-11-21T10:00:00Z") into out[21]. */
void art_time_format(char out[21], time_t t);

/**
 * The current time. Honours AF_NOW (an RFC 3339 time) when set, so tests can
 * move the clock without sleeping.
 */
time_t art_time_now(void);

/* ---- UTF-8 (the one decoder, art/utf8.h: artifacts, pipeline, runtime and guest) */

/**
 * Decode one strict UTF-8 sequence at the start of s[0..len): shortest form
 * only (no overlongs), no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequence.
 * @param[out] cp  the code point (when the return is not 0); may be NULL
 * @return the sequence length, 1..4, or 0 when s does not start with a
 *         valid sequence (or len is 0)
 */
size_t art_utf8_decode(const void *s, size_t len, uint32_t *cp);

/** Whether s[0..len) is strict UTF-8 (art_utf8_decode over all of it). */
int art_utf8_valid(const void *s, size_t len);

/**
 * The length of s[0..len) without a sequence cut short at its end: for text
 * truncated at a byte count, the whole sequences before the cut. Only a
 * proper prefix of a valid sequence is dropped (at most 3 bytes); any other
 * bytes, valid or not, are kept, so invalid text stays invalid.
 * @return len, or len less 1..3
 */
size_t art_utf8_whole(const void *s, size_t len);

#endif
