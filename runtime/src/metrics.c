/*
 * metrics.c - lock-free counters and histograms (see rt/metrics.h).
 *
 * Labeled counters use a fixed open table per metric; a slot's label is
 * claimed once with a compare-and-swap on its state and never changes, so
 * readers and writers need no lock.
 */
#include "rt/metrics.h"

#include "art/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define LABEL_SLOTS 128
#define LABEL_MAX 48

typedef struct label_slot {
	atomic_int state; /* 0 free, 1 being claimed, 2 ready */
	char label[LABEL_MAX];
	atomic_uint_fast64_t value;
} label_slot;

/* Histogram buckets in seconds: 1 us .. 30 s. */
static const double bucket_bounds[] = {
	1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
	5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

typedef struct histogram {
	atomic_uint_fast64_t buckets[N_BUCKETS + 1]; /* last = +Inf */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_ns;
} histogram;

static atomic_uint_fast64_t counters[RT_M_COUNTER_COUNT];
static label_slot labeled[RT_M_LABELED_COUNT][LABEL_SLOTS];
/* Slots claimed per metric; one is always left for "other". */
static atomic_int labels_used[RT_M_LABELED_COUNT];
static histogram histograms[RT_M_HISTOGRAM_COUNT];

static const struct {
	const char *name, *help;
} counter_meta[RT_M_COUNTER_COUNT] = {
	{"agentfactory_invocations_total", "Agent invocations started."},
	{"agentfactory_instantiations_total", "Sandboxed agent instances created."},
	{"agentfactory_module_cache_hits_total", "Invocations served by an already loaded module."},
	{"agentfactory_module_cache_misses_total", "Modules loaded (and verified) from the store."},
	{"agentfactory_http_requests_total", "HTTP requests answered."},
};

static const struct {
	const char *name, *label, *help;
} labeled_meta[RT_M_LABELED_COUNT] = {
	{"agentfactory_errors_total", "code", "Failed invocations and requests, by stable error code."},
	{"agentfactory_signature_failures_total", "reason", "Artifacts refused at load: signature, digest or compatibility."},
	{"agentfactory_denials_total", "what", "Host calls refused at run time (capability or tool not granted)."},
	{"agentfactory_http_responses_total", "status", "HTTP responses by status code."},
};

static const struct {
	const char *name, *help;
} histogram_meta[RT_M_HISTOGRAM_COUNT] = {
	{"agentfactory_instantiate_seconds", "Time to create a fresh instance (instantiate + _initialize)."},
	{"agentfactory_invoke_seconds", "Time of a whole invocation, instance creation to response."},
	{"agentfactory_http_request_seconds", "Time from request received to response queued."},
};

void rt_metrics_inc(rt_counter c)
{
	if ((unsigned)c < RT_M_COUNTER_COUNT)
		atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

static unsigned label_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static label_slot *find_slot(rt_labeled c, const char *label, int create)
{
	unsigned i, start = label_hash(label) % LABEL_SLOTS;

	for (i = 0; i < LABEL_SLOTS; i++) {
		label_slot *s = &labeled[c][(start + i) % LABEL_SLOTS];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == 0 && create) {
			int expected = 0;
			if (strcmp(label, "other") != 0 &&
			    atomic_fetch_add(&labels_used[c], 1) >= LABEL_SLOTS - 1) {
				atomic_fetch_sub(&labels_used[c], 1);
				return NULL;
			}
			if (atomic_compare_exchange_strong(&s->state, &expected, 1)) {
				snprintf(s->label, LABEL_MAX, "%s", label); /* truncates */
				atomic_store_explicit(&s->state, 2, memory_order_release);
				return s;
			}
			if (strcmp(label, "other") != 0)
				atomic_fetch_sub(&labels_used[c], 1);
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		}
		while (st == 1)
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == 0)
			return NULL;
		if (strncmp(s->label, label, LABEL_MAX - 1) == 0)
			return s;
	}
	return NULL;
}

void rt_metrics_inc_label(rt_labeled c, const char *label)
{
	label_slot *s;

	if ((unsigned)c >= RT_M_LABELED_COUNT)
		return;
	s = find_slot(c, label ? label : "", 1);
	if (!s)
		s = find_slot(c, "other", 1);
	if (s)
		atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

void rt_metrics_observe(rt_histogram h, double seconds)
{
	histogram *hist;
	size_t i;

	if ((unsigned)h >= RT_M_HISTOGRAM_COUNT)
		return;
	hist = &histograms[h];
	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < N_BUCKETS && seconds > bucket_bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&hist->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hist->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hist->sum_ns, (uint_fast64_t)(seconds * 1e9), memory_order_relaxed);
}

uint64_t rt_metrics_get(rt_counter c)
{
	return (unsigned)c < RT_M_COUNTER_COUNT ? atomic_load(&counters[c]) : 0;
}

uint64_t rt_metrics_get_label(rt_labeled c, const char *label)
{
	label_slot *s;

	if ((unsigned)c >= RT_M_LABELED_COUNT)
		return 0;
	s = find_slot(c, label, 0);
	return s ? atomic_load(&s->value) : 0;
}

/* Label values come from our own code (codes, reasons, names), but escape
 * anyway: the Prometheus format needs \\, \" and \n escaped. */
static int put_label_value(art_buf *out, const char *v)
{
	int rc = 0;

	for (; *v && rc == 0; v++) {
		if (*v == '\\' || *v == '"')
			rc = art_buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			rc = art_buf_puts(out, "\\n");
		else
			rc = art_buf_append(out, v, 1);
	}
	return rc;
}

int rt_metrics_render(art_buf *out)
{
	size_t i, j;
	int rc = 0;

	for (i = 0; i < RT_M_COUNTER_COUNT && rc == 0; i++)
		rc = art_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
				    counter_meta[i].name, counter_meta[i].help, counter_meta[i].name,
				    counter_meta[i].name,
				    (unsigned long long)atomic_load(&counters[i]));
	for (i = 0; i < RT_M_LABELED_COUNT && rc == 0; i++) {
		rc = art_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", labeled_meta[i].name,
				    labeled_meta[i].help, labeled_meta[i].name);
		for (j = 0; j < LABEL_SLOTS && rc == 0; j++) {
			label_slot *s = &labeled[i][j];
			if (atomic_load(&s->state) != 2)
				continue;
			rc = art_buf_printf(out, "%s{%s=\"", labeled_meta[i].name, labeled_meta[i].label);
			if (rc == 0)
				rc = put_label_value(out, s->label);
			if (rc == 0)
				rc = art_buf_printf(out, "\"} %llu\n",
						    (unsigned long long)atomic_load(&s->value));
		}
	}
	for (i = 0; i < RT_M_HISTOGRAM_COUNT && rc == 0; i++) {
		histogram *h = &histograms[i];
		uint64_t cum = 0;

		rc = art_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", histogram_meta[i].name,
				    histogram_meta[i].help, histogram_meta[i].name);
		for (j = 0; j <= N_BUCKETS && rc == 0; j++) {
			cum += atomic_load(&h->buckets[j]);
			if (j < N_BUCKETS)
				rc = art_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", histogram_meta[i].name,
						    bucket_bounds[j], (unsigned long long)cum);
			else
				rc = art_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n",
						    histogram_meta[i].name, (unsigned long long)cum);
		}
		if (rc == 0)
			rc = art_buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", histogram_meta[i].name,
					    (double)atomic_load(&h->sum_ns) / 1e9, histogram_meta[i].name,
					    (unsigned long long)atomic_load(&h->count));
	}
	return rc;
}

void rt_metrics_reset(void)
{
	memset(counters, 0, sizeof(counters));
	memset(labeled, 0, sizeof(labeled));
	memset(labels_used, 0, sizeof(labels_used));
	memset(histograms, 0, sizeof(histograms));
}
