/*
 * rt/metrics.h - process-wide runtime metrics in the Prometheus text format.
 *
 * Counters and fixed-bucket histograms, updated lock-free (C11 atomics) from
 * any thread, rendered by GET /metrics. Counters with a label (error code,
 * agent name, reason) live in a small fixed table: the label set is bounded
 * (stable error codes, agents of the store), and a label that does not fit
 * is counted under "other" instead of allocating.
 */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "art/util.h"

typedef enum rt_counter {
	RT_M_INVOCATIONS,          /* agent invocations started */
	RT_M_INSTANTIATIONS,       /* instances created */
	RT_M_MODULE_CACHE_HITS,    /* loaded-module LRU hits */
	RT_M_MODULE_CACHE_MISSES,  /* loads from the store */
	RT_M_HTTP_REQUESTS,        /* HTTP requests answered */
	RT_M_SOURCE_POLLS,         /* registry source: channel tag checks */
	RT_M_SOURCE_PULLS,         /* registry source: new releases pulled and verified */
	RT_M_TRACE_EXPORTED,       /* spans the OTLP collector accepted */
	RT_M_TRACE_DROPPED,        /* spans dropped: the export queue was full */
	RT_M_TRACE_EXPORT_FAILURES, /* OTLP exports that failed (their spans are lost) */
	RT_M_STORE_CORRUPT,        /* times the store file was found damaged */
	RT_M_HTTP_HEAD_TIMEOUTS,   /* connections closed: request head not complete in time */
	RT_M_COUNTER_COUNT
} rt_counter;

typedef enum rt_labeled {
	RT_M_ERRORS,               /* label: stable error code */
	RT_M_SIGNATURE_FAILURES,   /* label: reason (signature, digest, compat, ...) */
	RT_M_DENIALS,              /* label: capability or tool denied at run time */
	RT_M_HTTP_STATUS,          /* label "code": HTTP status code */
	RT_M_SOURCE_ERRORS,        /* label: registry source state (unreachable, refused) */
	RT_M_LABELED_COUNT
} rt_labeled;

typedef enum rt_histogram {
	RT_M_INSTANTIATE_SECONDS,  /* instantiate + _initialize */
	RT_M_INVOKE_SECONDS,       /* whole invocation, instantiate to response */
	RT_M_HISTOGRAM_COUNT
} rt_histogram;

/** Add 1 to a counter. Thread-safe, never fails. */
void rt_metrics_inc(rt_counter c);

/** Add 1 to a labeled counter. label is copied on first use. Thread-safe. */
void rt_metrics_inc_label(rt_labeled c, const char *label);

/** Create a labeled counter's series at 0 if it does not exist yet, so a
 * rate() or increase() over it has data before the first event. */
void rt_metrics_touch_label(rt_labeled c, const char *label);

/** Record an observation in seconds. Thread-safe, never fails. */
void rt_metrics_observe(rt_histogram h, double seconds);

/** The current value of a counter (for tests and /readyz). */
uint64_t rt_metrics_get(rt_counter c);

/** The current value of a labeled counter, 0 if the label was never seen. */
uint64_t rt_metrics_get_label(rt_labeled c, const char *label);

/**
 * One finished invocation of an agent of the served snapshot: counted in
 * agentfactory_agent_invocations_total{agent,version,code} and observed in
 * agentfactory_agent_invoke_seconds{agent,version,code}. The caller passes
 * only names and versions of agents it serves (bounded cardinality); code is
 * "ok" or a stable error code. Series past the table's capacity
 * (RT_METRICS_SERIES_MAX) are counted with every label "other".
 * Thread-safe, never fails; the strings are copied on first use.
 */
void rt_metrics_agent_invocation(const char *agent, const char *version, const char *code,
				 double seconds);

/** The count of agent invocations so far for these labels (tests). */
uint64_t rt_metrics_get_agent(const char *agent, const char *version, const char *code);

/**
 * One HTTP response: agentfactory_http_request_seconds{route,code}, where
 * route is the templated route ("/v1/agents/{name}/invoke", never the raw
 * path; "other" for no route) and code the HTTP status. Thread-safe.
 */
void rt_metrics_http_response(const char *route, int status, double seconds);

/** The count of HTTP responses so far for route and status (tests). */
uint64_t rt_metrics_get_http(const char *route, int status);

#define RT_METRICS_SERIES_MAX 256

/** What the server serves now, sampled when /metrics is rendered. */
typedef struct rt_metrics_key_expiry {
	const char *key_id;            /* the first 16 hex digits are shown */
	const char *role;
	int64_t not_after;             /* Unix seconds */
} rt_metrics_key_expiry;

typedef struct rt_metrics_gauges {
	const char *channel;           /* "" or NULL when not following a channel */
	uint64_t release, seq;         /* the release served and its channel record; 0 none */
	int64_t release_expires;       /* Unix seconds; 0 none */
	const rt_metrics_key_expiry *keys; /* keyring keys with an expiry */
	size_t n_keys;
	unsigned invocations_in_flight, invocations_queued;
	unsigned workers, queue_capacity;
	unsigned connections_in_flight;
	size_t agents_served, agents_refused;
	size_t modules_loaded, module_cache_capacity;
	size_t pool_slots_in_use, pool_slots_idle;
} rt_metrics_gauges;

/**
 * Append the gauges of g, agentfactory_build_info and the process metrics
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds, read from
 * /proc/self; a file that cannot be read leaves its metric out).
 * @return 0, AF_ENOMEM or AF_ETOOBIG
 */
int rt_metrics_render_gauges(art_buf *out, const rt_metrics_gauges *g);

/**
 * Append the Prometheus text exposition (version 0.0.4) of every metric.
 * @return 0, AF_ENOMEM or AF_ETOOBIG
 */
int rt_metrics_render(art_buf *out);

/** Reset everything to zero (tests only; not thread-safe). */
void rt_metrics_reset(void);

#endif
