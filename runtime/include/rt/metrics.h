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
	RT_M_STORE_CORRUPT,        /* times the store file was found damaged */
	RT_M_HTTP_HEAD_TIMEOUTS,   /* connections closed: request head not complete in time */
	RT_M_COUNTER_COUNT
} rt_counter;

typedef enum rt_labeled {
	RT_M_ERRORS,               /* label: stable error code */
	RT_M_SIGNATURE_FAILURES,   /* label: reason (signature, digest, compat, ...) */
	RT_M_DENIALS,              /* label: capability or tool denied at run time */
	RT_M_HTTP_STATUS,          /* label: HTTP status code */
	RT_M_LABELED_COUNT
} rt_labeled;

typedef enum rt_histogram {
	RT_M_INSTANTIATE_SECONDS,  /* instantiate + _initialize */
	RT_M_INVOKE_SECONDS,       /* whole invocation, instantiate to response */
	RT_M_HTTP_SECONDS,         /* request received to response queued */
	RT_M_HISTOGRAM_COUNT
} rt_histogram;

/** Add 1 to a counter. Thread-safe, never fails. */
void rt_metrics_inc(rt_counter c);

/** Add 1 to a labeled counter. label is copied on first use. Thread-safe. */
void rt_metrics_inc_label(rt_labeled c, const char *label);

/** Record an observation in seconds. Thread-safe, never fails. */
void rt_metrics_observe(rt_histogram h, double seconds);

/** The current value of a counter (for tests and /readyz). */
uint64_t rt_metrics_get(rt_counter c);

/** The current value of a labeled counter, 0 if the label was never seen. */
uint64_t rt_metrics_get_label(rt_labeled c, const char *label);

/**
 * Append the Prometheus text exposition (version 0.0.4) of every metric.
 * @return 0, AF_ENOMEM or AF_ETOOBIG
 */
int rt_metrics_render(art_buf *out);

/** Reset everything to zero (tests only; not thread-safe). */
void rt_metrics_reset(void);

#endif
