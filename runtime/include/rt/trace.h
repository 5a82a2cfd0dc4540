/*
 * rt/trace.h - OpenTelemetry tracing: W3C trace context in and out, spans,
 * and an OTLP/HTTP JSON exporter on a background thread.
 *
 * A span lives in the caller's memory (usually the stack). Its ids and
 * flags always exist, so the trace context is propagated and the trace id
 * logged whether or not the span is recorded; only a sampled span with the
 * exporter running allocates a record, filled by the rt_span_set_*
 * functions and queued for export when the span ends. The queue is bounded
 * (OTEL_BSP_MAX_QUEUE_SIZE): when it is full the span is dropped and
 * counted, so a slow or absent collector never blocks or grows a request.
 *
 * Each thread has a current span (rt_span_start makes the new span current,
 * rt_span_end restores the one before); outgoing calls (the model, http_fetch)
 * send the current span's context as `traceparent`/`tracestate`, and
 * rt/log.h adds its trace_id and span_id to every log line.
 */
#ifndef RT_TRACE_H
#define RT_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RT_TRACESTATE_MAX 512
#define RT_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

typedef struct rt_trace_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags;                          /* bit 0: sampled */
	char state[RT_TRACESTATE_MAX + 1];      /* tracestate as received; "" none */
} rt_trace_ctx;

typedef enum rt_span_kind {
	RT_SPAN_INTERNAL = 1,
	RT_SPAN_SERVER = 2,
	RT_SPAN_CLIENT = 3
} rt_span_kind;

typedef struct rt_span_rec rt_span_rec;

typedef struct rt_span {
	rt_trace_ctx ctx;                       /* this span's ids (its children's parent) */
	rt_span_rec *rec;                       /* NULL: not recorded */
	struct rt_span *prev;                   /* the thread's current span before rt_span_start */
	bool pushed;
} rt_span;

/**
 * Parse a W3C traceparent (version 00; a higher version is read by its
 * first four fields, as the spec asks) and tracestate (kept verbatim when
 * at most RT_TRACESTATE_MAX bytes of printable ASCII, else dropped).
 * @return 0; AF_EINVAL for a missing or malformed traceparent, or an
 *         all-zero trace or span id (the caller then starts a new trace)
 */
int rt_trace_parse(rt_trace_ctx *out, const char *traceparent, const char *tracestate);

/** "00-<trace id>-<span id>-<flags>" into out (RT_TRACEPARENT_LEN + 1 bytes). */
void rt_trace_format(const rt_trace_ctx *c, char *out);

/** The trace id as 32 lower-case hex digits into out (33 bytes). */
void rt_trace_id_hex(const rt_trace_ctx *c, char *out);

/** The span id as 16 lower-case hex digits into out (17 bytes). */
void rt_trace_span_hex(const rt_trace_ctx *c, char *out);

/**
 * Begin a span whose parent is parent (a remote context from a request, or
 * a local span's ctx), or a new trace when parent is NULL. The sampler
 * decides from the parent's flag or the trace id. Does not change the
 * thread's current span (see rt_span_start). Never fails: without memory
 * the span is simply not recorded.
 */
void rt_span_begin(rt_span *s, const char *name, rt_span_kind kind, const rt_trace_ctx *parent);

/** Begin a child of the thread's current span (a new trace if none) and
 * make it current until rt_span_end. */
void rt_span_start(rt_span *s, const char *name, rt_span_kind kind);

/** End s: queue its record for export (or drop it when the queue is full)
 * and, if rt_span_start made it current, restore the span before it. */
void rt_span_end(rt_span *s);

/** The thread's current span, or NULL. */
rt_span *rt_span_current(void);

/** Make s the thread's current span (NULL: none); returns the one before. */
rt_span *rt_span_set_current(rt_span *s);

/** true when s is recorded (worth computing attributes for). NULL-safe. */
bool rt_span_recording(const rt_span *s);

/* Attributes (keys must be static strings; values are copied, truncated to
 * 255 bytes; at most 24 per span, later ones are dropped). NULL-safe, no-ops
 * on a span that is not recorded. */
void rt_span_set_str(rt_span *s, const char *key, const char *value);
void rt_span_set_int(rt_span *s, const char *key, int64_t value);
void rt_span_set_bool(rt_span *s, const char *key, bool value);
/** A string-array attribute holding one element (e.g. finish reasons). */
void rt_span_add_list(rt_span *s, const char *key, const char *value);
/** An event at this moment (name: a static string), e.g. a host call too
 * cheap for a span of its own; at most 32 a span, the rest are counted in
 * droppedEventsCount. */
void rt_span_add_event(rt_span *s, const char *name);
/** Status ERROR with a message. */
void rt_span_set_error(rt_span *s, const char *message);

typedef struct rt_trace_config {
	const char *endpoint;        /* OTLP/HTTP base URL (…/v1/traces is appended unless the
					URL already ends with it); NULL = no export */
	const char *service_name;    /* default "agentfactory-runtime" */
	const char *resource_attrs;  /* "k=v,k2=v2" (OTEL_RESOURCE_ATTRIBUTES) */
	const char *sampler;         /* always_on, always_off, traceidratio,
					parentbased_always_on (default), parentbased_always_off,
					parentbased_traceidratio */
	const char *sampler_arg;     /* the ratio, 0 .. 1 (default 1) */
	unsigned queue_max;          /* spans waiting; default 2048 */
	unsigned batch_max;          /* spans per export; default 512 */
	unsigned delay_ms;           /* export at least this often; default 5000 */
	unsigned timeout_ms;         /* one export; default 10000 */
	/* Export failures are reported here (rate-limited), e.g. to the log
	 * (rt_log_printf); NULL: a line on stderr. A callback, not a log file, so
	 * that trace.c does not depend on log.c, which depends on it. */
	void (*warn)(void *warn_ctx, const char *event, const char *message);
	void *warn_ctx;
} rt_trace_config;

/**
 * Fill every field left NULL/0 in c from the environment:
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or
 * OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
 * (its service.name applies when OTEL_SERVICE_NAME is unset),
 * OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_MAX_QUEUE_SIZE,
 * OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY,
 * OTEL_EXPORTER_OTLP_TIMEOUT. The strings stay borrowed from the environment.
 */
void rt_trace_config_env(rt_trace_config *c);

/**
 * Set the sampler and, with an endpoint, start the exporter thread.
 * Call once, before serving.
 * @return 0; AF_EINVAL (unknown sampler, a ratio outside 0 .. 1, an
 *         endpoint that is not http(s)://); AF_EIO (no thread, no libcurl)
 */
int rt_trace_start(const rt_trace_config *c);

/** Export what is queued (waiting up to the export timeout) and stop the
 * thread. Spans ended afterwards are not recorded. */
void rt_trace_stop(void);

#endif
