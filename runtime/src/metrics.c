/*
 * metrics.c - lock-free counters and histograms (see rt/metrics.h).
 *
 * Labeled counters use a fixed open table per metric; a slot's label is
 * claimed once with a compare-and-swap on its state and never changes, so
 * readers and writers need no lock.
 */
#include "rt/metrics.h"

#include "art/error.h"
#include "rt/compat.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef AF_VERSION
#define AF_VERSION "0.0.0"
#endif

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
	{"agentfactory_source_polls_total", "Registry source: channel tag checks (one HEAD each when unchanged)."},
	{"agentfactory_source_pulls_total", "Registry source: new releases pulled and verified."},
	{"agentfactory_trace_spans_exported_total", "Spans the OTLP collector accepted."},
	{"agentfactory_trace_spans_dropped_total", "Spans dropped because the export queue was full."},
	{"agentfactory_trace_export_failures_total", "OTLP exports that failed (their spans are lost)."},
	{"agentfactory_store_corrupt_total", "Times the store file (data.mdb) was found damaged: shorter than its LMDB meta pages claim. Restore it."},
	{"agentfactory_http_head_timeouts_total", "Connections closed because their request head (request line and headers) was not complete within --header-timeout."},
};

static const struct {
	const char *name, *label, *help;
} labeled_meta[RT_M_LABELED_COUNT] = {
	{"agentfactory_errors_total", "code", "Failed invocations and requests, by stable error code."},
	{"agentfactory_signature_failures_total", "reason", "Artifacts refused at load: signature, digest or compatibility."},
	{"agentfactory_denials_total", "what", "Host calls refused at run time (capability or tool not granted)."},
	{"agentfactory_http_responses_total", "code", "HTTP responses by status code."},
	{"agentfactory_source_errors_total", "state", "Registry source: changes to a failing state (unreachable, refused); the pod keeps serving."},
};

static const struct {
	const char *name, *help;
} histogram_meta[RT_M_HISTOGRAM_COUNT] = {
	{"agentfactory_instantiate_seconds", "Time to create a fresh instance (instantiate + _initialize)."},
	{"agentfactory_invoke_seconds", "Time of a whole invocation, instance creation to response."},
};

/* Labeled histograms (per agent, per route): a fixed table of series, each
 * claimed once like a label slot. The key is the label values joined by
 * US (0x1f); a series that does not fit is observed under "other". */
#define SERIES_KEY_MAX 200
#define SERIES_SEP '\x1f'

typedef struct series {
	atomic_int state; /* 0 free, 1 being claimed, 2 ready */
	char key[SERIES_KEY_MAX];
	histogram h;
} series;

typedef struct series_table {
	const char *name, *help, *counter_name, *counter_help;
	const char *labels[3];
	unsigned n_labels;
	atomic_int used;
	series slots[RT_METRICS_SERIES_MAX];
} series_table;

static series_table agent_series = {
	"agentfactory_agent_invoke_seconds",
	"Time of an invocation of an agent of the served release, by agent, version and code "
	"(ok or the stable error code).",
	"agentfactory_agent_invocations_total",
	"Invocations of the agents of the served release, by agent, version and code.",
	{"agent", "version", "code"}, 3, 0, {{0}}};
static series_table http_series = {
	"agentfactory_http_request_seconds",
	"Time from request received to response queued, by templated route and status code.",
	NULL, NULL, {"route", "code"}, 2, 0, {{0}}};

static void hist_observe(histogram *hist, double seconds);

static int series_key(char *key, const char *const *values, unsigned n)
{
	size_t o = 0, len;
	unsigned i;

	for (i = 0; i < n; i++) {
		const char *v = values[i] ? values[i] : "";
		len = strlen(v);
		if (memchr(v, SERIES_SEP, len) || o + len + 1 >= SERIES_KEY_MAX)
			return -1;
		memcpy(key + o, v, len);
		o += len;
		key[o++] = i + 1 < n ? SERIES_SEP : '\0';
	}
	return 0;
}

static unsigned label_hash(const char *s);

static series *series_find(series_table *t, const char *key, int create)
{
	unsigned i, start = label_hash(key) % RT_METRICS_SERIES_MAX;
	bool overflow = strncmp(key, "other", 5) == 0 && (key[5] == SERIES_SEP || !key[5]);

	for (i = 0; i < RT_METRICS_SERIES_MAX; i++) {
		series *s = &t->slots[(start + i) % RT_METRICS_SERIES_MAX];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == 0 && create) {
			int expected = 0;
			if (!overflow && atomic_fetch_add(&t->used, 1) >= RT_METRICS_SERIES_MAX - 1) {
				atomic_fetch_sub(&t->used, 1);
				return NULL;
			}
			if (atomic_compare_exchange_strong(&s->state, &expected, 1)) {
				memcpy(s->key, key, SERIES_KEY_MAX);
				atomic_store_explicit(&s->state, 2, memory_order_release);
				return s;
			}
			if (!overflow)
				atomic_fetch_sub(&t->used, 1);
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		}
		while (st == 1)
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == 0)
			return NULL;
		if (memcmp(s->key, key, SERIES_KEY_MAX) == 0)
			return s;
	}
	return NULL;
}

static void series_observe(series_table *t, const char *const *values, double seconds)
{
	static const char *const others[3] = {"other", "other", "other"};
	char key[SERIES_KEY_MAX];
	series *s = NULL;

	memset(key, 0, sizeof(key));
	if (series_key(key, values, t->n_labels) == 0)
		s = series_find(t, key, 1);
	if (!s) {
		memset(key, 0, sizeof(key));
		series_key(key, others, t->n_labels);
		s = series_find(t, key, 1);
	}
	if (s)
		hist_observe(&s->h, seconds);
}

static uint64_t series_count(series_table *t, const char *const *values)
{
	char key[SERIES_KEY_MAX];
	series *s;

	memset(key, 0, sizeof(key));
	if (series_key(key, values, t->n_labels) < 0 || !(s = series_find(t, key, 0)))
		return 0;
	return atomic_load(&s->h.count);
}

void rt_metrics_agent_invocation(const char *agent, const char *version, const char *code,
				 double seconds)
{
	const char *v[3] = {agent, version, code ? code : "ok"};

	series_observe(&agent_series, v, seconds);
}

uint64_t rt_metrics_get_agent(const char *agent, const char *version, const char *code)
{
	const char *v[3] = {agent, version, code ? code : "ok"};

	return series_count(&agent_series, v);
}

void rt_metrics_http_response(const char *route, int status, double seconds)
{
	char code[12];
	const char *v[2] = {route ? route : "other", code};

	snprintf(code, sizeof(code), "%d", status);
	series_observe(&http_series, v, seconds);
}

uint64_t rt_metrics_get_http(const char *route, int status)
{
	char code[12];
	const char *v[2] = {route, code};

	snprintf(code, sizeof(code), "%d", status);
	return series_count(&http_series, v);
}

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

void rt_metrics_touch_label(rt_labeled c, const char *label)
{
	if ((unsigned)c < RT_M_LABELED_COUNT && label)
		(void)find_slot(c, label, 1);
}

void rt_metrics_observe(rt_histogram h, double seconds)
{
	if ((unsigned)h < RT_M_HISTOGRAM_COUNT)
		hist_observe(&histograms[h], seconds);
}

static void hist_observe(histogram *hist, double seconds)
{
	size_t i;

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

/* {a="x",b="y" - the labels of a series key, without the closing brace;
 * nothing when there are none. */
static int put_labels(art_buf *out, const char *const *names, unsigned n, const char *key)
{
	unsigned i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		const char *end = strchr(key, SERIES_SEP);
		size_t len = end ? (size_t)(end - key) : strlen(key);
		char value[SERIES_KEY_MAX];

		memcpy(value, key, len);
		value[len] = '\0';
		rc = art_buf_printf(out, "%s%s=\"", i ? "," : "{", names[i]);
		if (rc == 0)
			rc = put_label_value(out, value);
		if (rc == 0)
			rc = art_buf_puts(out, "\"");
		key += len + (end ? 1 : 0);
	}
	return rc;
}

static int render_hist(art_buf *out, const char *name, const char *const *names, unsigned n,
		       const char *key, histogram *h)
{
	uint64_t cum = 0;
	size_t j;
	int rc = 0;

	for (j = 0; j <= N_BUCKETS && rc == 0; j++) {
		cum += atomic_load(&h->buckets[j]);
		rc = art_buf_printf(out, "%s_bucket", name);
		if (rc == 0)
			rc = n ? put_labels(out, names, n, key) : art_buf_puts(out, "{");
		if (rc == 0 && j < N_BUCKETS)
			rc = art_buf_printf(out, "%sle=\"%g\"} %llu\n", n ? "," : "", bucket_bounds[j],
					    (unsigned long long)cum);
		else if (rc == 0)
			rc = art_buf_printf(out, "%sle=\"+Inf\"} %llu\n", n ? "," : "",
					    (unsigned long long)cum);
	}
	if (rc == 0)
		rc = art_buf_printf(out, "%s_sum", name);
	if (rc == 0 && n && (rc = put_labels(out, names, n, key)) == 0)
		rc = art_buf_puts(out, "}");
	if (rc == 0)
		rc = art_buf_printf(out, " %.9f\n%s_count", (double)atomic_load(&h->sum_ns) / 1e9, name);
	if (rc == 0 && n && (rc = put_labels(out, names, n, key)) == 0)
		rc = art_buf_puts(out, "}");
	if (rc == 0)
		rc = art_buf_printf(out, " %llu\n", (unsigned long long)atomic_load(&h->count));
	return rc;
}

static int render_series(art_buf *out, series_table *t)
{
	size_t j;
	int rc = art_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", t->name, t->help, t->name);

	for (j = 0; j < RT_METRICS_SERIES_MAX && rc == 0; j++)
		if (atomic_load(&t->slots[j].state) == 2)
			rc = render_hist(out, t->name, t->labels, t->n_labels, t->slots[j].key,
					 &t->slots[j].h);
	if (rc || !t->counter_name)
		return rc;
	rc = art_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", t->counter_name,
			    t->counter_help, t->counter_name);
	for (j = 0; j < RT_METRICS_SERIES_MAX && rc == 0; j++) {
		series *s = &t->slots[j];

		if (atomic_load(&s->state) != 2)
			continue;
		rc = art_buf_puts(out, t->counter_name);
		if (rc == 0)
			rc = put_labels(out, t->labels, t->n_labels, s->key);
		if (rc == 0)
			rc = art_buf_printf(out, "} %llu\n", (unsigned long long)atomic_load(&s->h.count));
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
		rc = art_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", histogram_meta[i].name,
				    histogram_meta[i].help, histogram_meta[i].name);
		if (rc == 0)
			rc = render_hist(out, histogram_meta[i].name, NULL, 0, NULL, &histograms[i]);
	}
	if (rc == 0)
		rc = render_series(out, &agent_series);
	if (rc == 0)
		rc = render_series(out, &http_series);
	return rc;
}

void rt_metrics_reset(void)
{
	memset(counters, 0, sizeof(counters));
	memset(labeled, 0, sizeof(labeled));
	memset(labels_used, 0, sizeof(labels_used));
	memset(histograms, 0, sizeof(histograms));
	memset(agent_series.slots, 0, sizeof(agent_series.slots));
	atomic_store(&agent_series.used, 0);
	memset(http_series.slots, 0, sizeof(http_series.slots));
	atomic_store(&http_series.used, 0);
}

/* ---- gauges, build info, process ------------------------------------------- */

static int gauge(art_buf *out, const char *name, const char *help, const char *labels, double v)
{
	return art_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s%s %.17g\n", name, help, name,
			      name, labels ? labels : "", v);
}

/*
 * Field i (0 = the state, the field after the command name) of the rest of
 * a /proc/PID/stat line, s pointing just after the command's last ')'.
 * Every field read here is a non-negative decimal number.
 */
static int stat_field(const char *s, unsigned i, unsigned long long *out)
{
	char *end;

	for (;;) {
		while (*s == ' ')
			s++;
		if (!*s)
			return -1;
		if (i-- == 0)
			break;
		while (*s && *s != ' ')
			s++;
	}
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || (*end != ' ' && *end != '\n' && *end != '\0') ? -1 : 0;
}

/* /proc/self/stat: utime, stime (ticks), starttime (ticks since boot), rss (pages). */
static int proc_stat(double *cpu, double *start, double *rss)
{
	char buf[1024], *p;
	unsigned long long utime, stime, starttime, rss_pages;
	size_t n;
	FILE *f = fopen("/proc/self/stat", "re");
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double btime = 0;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: skip to the last ')' */
	if (!(p = strrchr(buf, ')')) || tick <= 0 || page <= 0)
		return -1;
	if (stat_field(p + 1, 11, &utime) < 0 || stat_field(p + 1, 12, &stime) < 0 ||
	    stat_field(p + 1, 19, &starttime) < 0 || stat_field(p + 1, 21, &rss_pages) < 0)
		return -1;
	*cpu = (double)(utime + stime) / (double)tick;
	*rss = (double)rss_pages * (double)page;
	f = fopen("/proc/stat", "re");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "btime ", 6) == 0) {
				btime = strtod(line + 6, NULL);
				break;
			}
		fclose(f);
	}
	*start = btime > 0 ? btime + (double)starttime / (double)tick : 0;
	return 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static int render_process(art_buf *out)
{
	double cpu, start, rss;
	struct rlimit rl;
	int fds = count_fds(), rc = 0;

	if (proc_stat(&cpu, &start, &rss) == 0) {
		rc = art_buf_printf(out, "# HELP process_cpu_seconds_total Total user and system CPU "
					 "time spent in seconds.\n# TYPE process_cpu_seconds_total "
					 "counter\nprocess_cpu_seconds_total %.2f\n", cpu);
		if (rc == 0)
			rc = gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
				   NULL, rss);
		if (rc == 0 && start > 0)
			rc = gauge(out, "process_start_time_seconds",
				   "Start time of the process since unix epoch in seconds.", NULL, start);
	}
	if (rc == 0 && fds >= 0)
		rc = gauge(out, "process_open_fds", "Number of open file descriptors.", NULL, fds);
	if (rc == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		rc = gauge(out, "process_max_fds", "Maximum number of open file descriptors.", NULL,
			   (double)rl.rlim_cur);
	return rc;
}

int rt_metrics_render_gauges(art_buf *out, const rt_metrics_gauges *g)
{
	static const rt_metrics_gauges none;
	char labels[200];
	size_t i;
	int rc;

	if (!g)
		g = &none;
	rc = art_buf_puts(out, "# HELP agentfactory_build_info The runtime's version and the native "
			       "compatibility id it loads.\n# TYPE agentfactory_build_info gauge\n"
			       "agentfactory_build_info{version=\"");
	if (rc == 0)
		rc = put_label_value(out, AF_VERSION);
	if (rc == 0)
		rc = art_buf_puts(out, "\",compat=\"");
	if (rc == 0)
		rc = put_label_value(out, rt_compat_expected());
	if (rc == 0)
		rc = art_buf_puts(out, "\"} 1\n");
	labels[0] = '\0';
	if (g->channel && *g->channel) {
		art_buf l = ART_BUF_INIT;
		if (art_buf_puts(&l, "{channel=\"") == 0 && put_label_value(&l, g->channel) == 0 &&
		    art_buf_puts(&l, "\"}") == 0 && l.len < sizeof(labels))
			memcpy(labels, l.data, l.len + 1);
		art_buf_free(&l);
	}
	if (rc == 0)
		rc = gauge(out, "agentfactory_release_served",
			   "The release number served (following a channel); 0 when none.", labels,
			   (double)g->release);
	if (rc == 0)
		rc = gauge(out, "agentfactory_channel_sequence_served",
			   "The sequence number of the channel record served; 0 when none.", labels,
			   (double)g->seq);
	if (rc == 0)
		rc = gauge(out, "agentfactory_release_expiry_timestamp_seconds",
			   "When the release served expires (Unix time); 0 when none or no expiry.",
			   labels, (double)g->release_expires);
	if (rc == 0)
		rc = art_buf_puts(out, "# HELP agentfactory_keyring_key_expiry_timestamp_seconds When a "
				       "trusted key expires (Unix time), keys with an expiry only.\n"
				       "# TYPE agentfactory_keyring_key_expiry_timestamp_seconds gauge\n");
	for (i = 0; rc == 0 && i < g->n_keys; i++) {
		char id[17];
		snprintf(id, sizeof(id), "%s", g->keys[i].key_id ? g->keys[i].key_id : "");
		rc = art_buf_puts(out, "agentfactory_keyring_key_expiry_timestamp_seconds{key=\"");
		if (rc == 0)
			rc = put_label_value(out, id);
		if (rc == 0)
			rc = art_buf_puts(out, "\",role=\"");
		if (rc == 0)
			rc = put_label_value(out, g->keys[i].role ? g->keys[i].role : "");
		if (rc == 0)
			rc = art_buf_printf(out, "\"} %lld\n", (long long)g->keys[i].not_after);
	}
	if (rc == 0)
		rc = gauge(out, "agentfactory_invocations_in_flight",
			   "Invocations running on a worker now.", NULL, g->invocations_in_flight);
	if (rc == 0)
		rc = gauge(out, "agentfactory_invocations_queued",
			   "Invocations waiting for a worker now.", NULL, g->invocations_queued);
	if (rc == 0)
		rc = gauge(out, "agentfactory_invocation_workers", "Invocation workers started.", NULL,
			   g->workers);
	if (rc == 0)
		rc = gauge(out, "agentfactory_invocation_queue_capacity",
			   "Invocations that may wait for a worker before 503.", NULL, g->queue_capacity);
	if (rc == 0)
		rc = gauge(out, "agentfactory_http_requests_in_flight",
			   "HTTP requests received and not yet completed.", NULL,
			   g->connections_in_flight);
	if (rc == 0)
		rc = art_buf_printf(out, "# HELP agentfactory_agents Agents of the snapshot served, by "
					 "state (served: verified; refused).\n# TYPE agentfactory_agents "
					 "gauge\nagentfactory_agents{state=\"served\"} %zu\n"
					 "agentfactory_agents{state=\"refused\"} %zu\n",
				    g->agents_served, g->agents_refused);
	if (rc == 0)
		rc = gauge(out, "agentfactory_module_cache_modules", "Verified modules loaded now.",
			   NULL, (double)g->modules_loaded);
	if (rc == 0)
		rc = gauge(out, "agentfactory_module_cache_capacity",
			   "Modules the cache keeps loaded at most.", NULL,
			   (double)g->module_cache_capacity);
	if (rc == 0)
		rc = art_buf_printf(out, "# HELP agentfactory_sandbox_slots Sandbox memory reservations, "
					 "by state (in_use: taken by an instance or a thread cache; "
					 "pooled: ready for reuse).\n# TYPE agentfactory_sandbox_slots "
					 "gauge\nagentfactory_sandbox_slots{state=\"in_use\"} %zu\n"
					 "agentfactory_sandbox_slots{state=\"pooled\"} %zu\n",
				    g->pool_slots_in_use, g->pool_slots_idle);
	if (rc == 0)
		rc = render_process(out);
	return rc;
}
