/*
 * rt/log.h - structured logs: one JSON object per line.
 *
 *   {"ts":"2026-11-21T10:00:00.123Z","level":"info","event":"guest",
 *    "agent":"backup-manager@1.0.0","msg":"step now: clock_now", ...}
 *
 * Text from agents is untrusted: every string is escaped (control
 * characters as \u00XX, invalid UTF-8 as U+FFFD) and cut at a length cap,
 * so a guest cannot forge a line, a field or a terminal escape. A line is
 * written with one fwrite under the stream's lock, so lines from many
 * threads never interleave.
 */
#ifndef RT_LOG_H
#define RT_LOG_H

#include <stddef.h>
#include <stdio.h>

/** Bytes of a message kept (before escaping); the rest is cut, "truncated":true. */
#define RT_LOG_MSG_MAX 2048u
/** Bytes of one extra field value kept (before escaping). */
#define RT_LOG_VALUE_MAX 512u

/** An extra string field of a line. value need not be NUL-terminated. */
typedef struct rt_log_field {
	const char *key;   /* a plain ASCII identifier, written as is */
	const char *value;
	size_t len;
} rt_log_field;

/**
 * Write one line.
 * @param[in] fp      the stream; NULL = stderr
 * @param[in] level   "debug", "info", "warn" or "error"
 * @param[in] event   what happened ("guest", "refused", "denied", ...)
 * @param[in] agent   "name@version" or NULL (omitted)
 * @param[in] msg     msg_len bytes, any content
 * @param[in] extra   n_extra more fields, may be NULL
 */
void rt_log_emit(FILE *fp, const char *level, const char *event, const char *agent,
		 const char *msg, size_t msg_len, const rt_log_field *extra, size_t n_extra);

/** rt_log_emit with a printf-formatted message (cut at RT_LOG_MSG_MAX). */
void rt_log_printf(FILE *fp, const char *level, const char *event, const char *agent,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/**
 * Append s[0..len) to out as JSON string content (no quotes): escapes,
 * \u00XX for control characters and DEL, U+FFFD for invalid UTF-8.
 * At most cap bytes of s are read.
 * @param[out] out  needs room for 6 * min(len, cap) + 1 bytes
 * @return bytes written (without a NUL; out is not terminated)
 */
size_t rt_log_escape(char *out, const char *s, size_t len, size_t cap);

#endif
