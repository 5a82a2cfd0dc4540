/*
 * log.c - JSON-lines logging (see rt/log.h). A line is assembled in one
 * heap buffer sized for the worst case of its capped fields, then written
 * with a single fwrite under flockfile and flushed.
 */
#include "rt/log.h"

#include "art/util.h"
#include "rt/trace.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t rt_log_escape(char *out, const char *s, size_t len, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, n = len < cap ? len : cap;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
			i++;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
			i++;
		} else if ((k = art_utf8_decode(p + i, n - i, NULL)) > 0) {
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		} else {
			memcpy(out + o, "\\ufffd", 6);
			o += 6;
			i++;
		}
	}
	return o;
}

static size_t put(char *out, size_t o, const char *s)
{
	size_t n = strlen(s);

	memcpy(out + o, s, n);
	return o + n;
}

static size_t put_field(char *out, size_t o, const char *key, const char *v, size_t len,
			size_t cap)
{
	o = put(out, o, ",\"");
	o = put(out, o, key);
	o = put(out, o, "\":\"");
	o += rt_log_escape(out + o, v, len, cap);
	out[o++] = '"';
	return o;
}

void rt_log_emit(FILE *fp, const char *level, const char *event, const char *agent,
		 const char *msg, size_t msg_len, const rt_log_field *extra, size_t n_extra)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	size_t need, o = 0, i;
	char *line;

	if (!fp)
		fp = stderr;
	if (!msg)
		msg_len = 0;
	/* Worst case: every input byte escaped to 6 bytes, plus keys and punctuation. */
	need = 256 + 6 * (size_t)RT_LOG_MSG_MAX + 6 * (size_t)RT_LOG_VALUE_MAX * (n_extra + 1);
	for (i = 0; i < n_extra; i++)
		need += strlen(extra[i].key) + 8;
	line = malloc(need);
	if (!line)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp) - 6, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), 6, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
	o = put(line, o, "{\"ts\":\"");
	o = put(line, o, stamp);
	o = put(line, o, "\"");
	o = put_field(line, o, "level", level ? level : "info", strlen(level ? level : "info"), 16);
	o = put_field(line, o, "event", event ? event : "log", strlen(event ? event : "log"), 64);
	if (agent)
		o = put_field(line, o, "agent", agent, strlen(agent), RT_LOG_VALUE_MAX);
	if (rt_span_current()) { /* the trace of the request this line belongs to */
		char tid[33], sid[17];

		rt_trace_id_hex(&rt_span_current()->ctx, tid);
		rt_trace_span_hex(&rt_span_current()->ctx, sid);
		o = put_field(line, o, "trace_id", tid, 32, 32);
		o = put_field(line, o, "span_id", sid, 16, 16);
	}
	o = put_field(line, o, "msg", msg ? msg : "", msg_len, RT_LOG_MSG_MAX);
	if (msg_len > RT_LOG_MSG_MAX)
		o = put(line, o, ",\"truncated\":true");
	for (i = 0; i < n_extra; i++)
		if (extra[i].key && extra[i].value)
			o = put_field(line, o, extra[i].key, extra[i].value, extra[i].len,
				      RT_LOG_VALUE_MAX);
	line[o++] = '}';
	line[o++] = '\n';
	flockfile(fp);
	fwrite_unlocked(line, 1, o, fp);
	fflush_unlocked(fp);
	funlockfile(fp);
	free(line);
}

void rt_log_printf(FILE *fp, const char *level, const char *event, const char *agent,
		   const char *fmt, ...)
{
	char msg[RT_LOG_MSG_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	rt_log_emit(fp, level, event, agent, msg,
		    (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, NULL, 0);
}
