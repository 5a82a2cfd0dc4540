/*
 * trace.c - W3C trace context, spans and the OTLP/HTTP JSON exporter (see
 * rt/trace.h).
 *
 * Invariants: a request thread only ever takes the queue lock for a few
 * pointer moves (never while exporting); the queue holds at most queue_max
 * records, anything more is dropped and counted
 * (agentfactory_trace_spans_dropped_total); the exporter thread owns a
 * batch once it took it off the queue. Ids come from a per-thread
 * xoshiro256** generator seeded by getrandom(): they must be unique, not
 * secret.
 */
#include "rt/trace.h"

#include "art/error.h"
#include "art/util.h"
#include "rt/log.h"
#include "rt/metrics.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#ifndef AF_VERSION
#define AF_VERSION "0.0.0"
#endif

#define ATTR_MAX 24
#define VALUE_MAX 256
#define NAME_MAX_SPAN 128
#define RESOURCE_MAX 16
#define EVENT_MAX 32

enum { A_STR, A_INT, A_BOOL, A_LIST };

typedef struct span_attr {
	const char *key;
	int type;
	int64_t i;
	char s[VALUE_MAX];
} span_attr;

struct rt_span_rec {
	struct rt_span_rec *next;
	uint8_t trace_id[16], span_id[8], parent_id[8];
	bool has_parent;
	int kind;
	char name[NAME_MAX_SPAN];
	char state[RT_TRACESTATE_MAX + 1];
	int64_t start_ns, end_ns;
	bool error;
	char status_msg[VALUE_MAX];
	unsigned n_attrs;
	span_attr attrs[ATTR_MAX];
	unsigned n_events, dropped_events;
	struct {
		const char *name;
		int64_t at_ns;
	} events[EVENT_MAX];
};

/* ---- sampler ---------------------------------------------------------------------------- */

enum { S_ON, S_OFF, S_RATIO };
static int root_sampler = S_ON;       /* for a new trace */
static bool parent_based = true;      /* follow the parent's flag when there is one */
static uint64_t ratio_bound = UINT64_MAX; /* sampled when the id's low 8 bytes < bound */
static bool ratio_all = true;

/* ---- the exporter ---------------------------------------------------------------------- */

typedef struct exporter {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	rt_span_rec *head, *tail;
	unsigned count, queue_max, batch_max, delay_ms, timeout_ms;
	bool stopping;
	pthread_t thread;
	char *url;
	json_t *resource;          /* the resource's attributes array */
	void (*warn)(void *warn_ctx, const char *event, const char *message);
	void *warn_ctx;
	uint64_t failures_logged;
} exporter;

static exporter ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
static atomic_bool exporting; /* the thread runs: spans are recorded */

static _Thread_local rt_span *current;

/* ---- ids --------------------------------------------------------------------------------- */

static _Thread_local uint64_t rng[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_random(void)
{
	uint64_t r, t;

	if (!rng_seeded) {
		if (getrandom(rng, sizeof(rng), 0) != (ssize_t)sizeof(rng)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			rng[0] = (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts;
			rng[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ull;
			rng[2] = (uint64_t)(uintptr_t)&rng;
			rng[3] = 0x2545f4914f6cdd1dull;
		}
		rng_seeded = true;
	}
	r = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

static void random_id(uint8_t *out, size_t n)
{
	size_t i;
	bool zero = true;

	while (zero) {
		for (i = 0; i < n; i += 8) {
			uint64_t v = next_random();
			memcpy(out + i, &v, n - i < 8 ? n - i : 8);
		}
		for (i = 0; i < n && zero; i++)
			zero = out[i] == 0;
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(uint8_t *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < 2 * n; i++) {
		int v;
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1; /* upper case is invalid in traceparent */
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

/* ---- context ------------------------------------------------------------------------------ */

int rt_trace_parse(rt_trace_ctx *out, const char *tp, const char *ts)
{
	uint8_t version[1], flags[1];
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!tp)
		return AF_EINVAL;
	while (*tp == ' ' || *tp == '\t')
		tp++;
	len = strlen(tp);
	while (len && (tp[len - 1] == ' ' || tp[len - 1] == '\t'))
		len--;
	if (len < RT_TRACEPARENT_LEN || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
	    unhex(version, tp, 1) < 0 || version[0] == 0xff || unhex(out->trace_id, tp + 3, 16) < 0 ||
	    unhex(out->span_id, tp + 36, 8) < 0 || unhex(flags, tp + 53, 1) < 0)
		goto bad;
	/* version 00 is exactly 55 bytes; a later version may append "-..." */
	if ((version[0] == 0 && len != RT_TRACEPARENT_LEN) ||
	    (len > RT_TRACEPARENT_LEN && tp[RT_TRACEPARENT_LEN] != '-'))
		goto bad;
	if (all_zero(out->trace_id, 16) || all_zero(out->span_id, 8))
		goto bad;
	out->flags = flags[0] & 1;
	if (ts) {
		size_t n = strlen(ts), i;
		bool ok = n <= RT_TRACESTATE_MAX;

		for (i = 0; ok && i < n; i++)
			ok = ts[i] >= 0x20 && ts[i] < 0x7f;
		if (ok)
			memcpy(out->state, ts, n + 1);
	}
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return AF_EINVAL;
}

void rt_trace_format(const rt_trace_ctx *c, char *out)
{
	char tid[33], sid[17];

	hex(tid, c->trace_id, 16);
	hex(sid, c->span_id, 8);
	snprintf(out, RT_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", tid, sid, c->flags & 1);
}

void rt_trace_id_hex(const rt_trace_ctx *c, char *out)
{
	hex(out, c->trace_id, 16);
}

void rt_trace_span_hex(const rt_trace_ctx *c, char *out)
{
	hex(out, c->span_id, 8);
}

/* ---- spans ---------------------------------------------------------------------------------- */

static int64_t now_unix_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static bool sample_root(const uint8_t *trace_id)
{
	uint64_t low = 0;
	int i;

	if (root_sampler == S_ON)
		return true;
	if (root_sampler == S_OFF)
		return false;
	if (ratio_all)
		return true;
	for (i = 8; i < 16; i++)
		low = low << 8 | trace_id[i];
	return low < ratio_bound;
}

void rt_span_begin(rt_span *s, const char *name, rt_span_kind kind, const rt_trace_ctx *parent)
{
	bool sampled;

	memset(s, 0, sizeof(*s));
	if (parent) {
		memcpy(s->ctx.trace_id, parent->trace_id, 16);
		memcpy(s->ctx.state, parent->state, sizeof(s->ctx.state));
		sampled = parent_based ? (parent->flags & 1) : sample_root(parent->trace_id);
	} else {
		random_id(s->ctx.trace_id, 16);
		sampled = sample_root(s->ctx.trace_id);
	}
	random_id(s->ctx.span_id, 8);
	s->ctx.flags = sampled ? 1 : 0;
	if (!sampled || !atomic_load_explicit(&exporting, memory_order_relaxed))
		return;
	s->rec = malloc(sizeof(*s->rec));
	if (!s->rec)
		return;
	s->rec->next = NULL;
	memcpy(s->rec->trace_id, s->ctx.trace_id, 16);
	memcpy(s->rec->span_id, s->ctx.span_id, 8);
	s->rec->has_parent = parent != NULL;
	if (parent)
		memcpy(s->rec->parent_id, parent->span_id, 8);
	s->rec->kind = kind;
	snprintf(s->rec->name, sizeof(s->rec->name), "%s", name ? name : "span");
	memcpy(s->rec->state, s->ctx.state, sizeof(s->rec->state));
	s->rec->start_ns = now_unix_ns();
	s->rec->end_ns = 0;
	s->rec->error = false;
	s->rec->status_msg[0] = '\0';
	s->rec->n_attrs = 0;
	s->rec->n_events = 0;
	s->rec->dropped_events = 0;
}

void rt_span_start(rt_span *s, const char *name, rt_span_kind kind)
{
	rt_span *parent = current;

	rt_span_begin(s, name, kind, parent ? &parent->ctx : NULL);
	s->prev = parent;
	s->pushed = true;
	current = s;
}

rt_span *rt_span_current(void)
{
	return current;
}

rt_span *rt_span_set_current(rt_span *s)
{
	rt_span *old = current;

	current = s;
	return old;
}

bool rt_span_recording(const rt_span *s)
{
	return s && s->rec;
}

static void enqueue(rt_span_rec *r)
{
	bool dropped = false;

	pthread_mutex_lock(&ex.mu);
	if (ex.stopping || ex.count >= ex.queue_max) {
		dropped = true;
	} else {
		if (ex.tail)
			ex.tail->next = r;
		else
			ex.head = r;
		ex.tail = r;
		if (++ex.count >= ex.batch_max)
			pthread_cond_signal(&ex.cond);
	}
	pthread_mutex_unlock(&ex.mu);
	if (dropped) {
		free(r);
		rt_metrics_inc(RT_M_TRACE_DROPPED);
	}
}

void rt_span_end(rt_span *s)
{
	if (!s)
		return;
	if (s->pushed && current == s)
		current = s->prev;
	s->pushed = false;
	if (!s->rec)
		return;
	s->rec->end_ns = now_unix_ns();
	if (atomic_load_explicit(&exporting, memory_order_relaxed))
		enqueue(s->rec);
	else
		free(s->rec);
	s->rec = NULL;
}

static span_attr *attr_slot(rt_span *s, const char *key, int type)
{
	rt_span_rec *r = s ? s->rec : NULL;
	unsigned i;

	if (!r || !key)
		return NULL;
	for (i = 0; i < r->n_attrs; i++)
		if (strcmp(r->attrs[i].key, key) == 0)
			break;
	if (i == ATTR_MAX)
		return NULL;
	if (i == r->n_attrs)
		r->n_attrs++;
	r->attrs[i].key = key;
	r->attrs[i].type = type;
	return &r->attrs[i];
}

void rt_span_set_str(rt_span *s, const char *key, const char *value)
{
	span_attr *a = attr_slot(s, key, A_STR);

	if (a)
		snprintf(a->s, VALUE_MAX, "%s", value ? value : "");
}

void rt_span_set_int(rt_span *s, const char *key, int64_t value)
{
	span_attr *a = attr_slot(s, key, A_INT);

	if (a)
		a->i = value;
}

void rt_span_set_bool(rt_span *s, const char *key, bool value)
{
	span_attr *a = attr_slot(s, key, A_BOOL);

	if (a)
		a->i = value;
}

void rt_span_add_list(rt_span *s, const char *key, const char *value)
{
	span_attr *a = attr_slot(s, key, A_LIST);

	if (a)
		snprintf(a->s, VALUE_MAX, "%s", value ? value : "");
}

void rt_span_add_event(rt_span *s, const char *name)
{
	rt_span_rec *r = s ? s->rec : NULL;

	if (!r || !name)
		return;
	if (r->n_events == EVENT_MAX) {
		r->dropped_events++;
		return;
	}
	r->events[r->n_events].name = name;
	r->events[r->n_events].at_ns = now_unix_ns();
	r->n_events++;
}

void rt_span_set_error(rt_span *s, const char *message)
{
	if (!s || !s->rec)
		return;
	s->rec->error = true;
	snprintf(s->rec->status_msg, sizeof(s->rec->status_msg), "%s", message ? message : "");
}

/* ---- OTLP/JSON --------------------------------------------------------------------------- */

static json_t *kv_str(const char *key, const char *value)
{
	return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", value);
}

static json_t *span_json(const rt_span_rec *r)
{
	char tid[33], sid[17], pid[17], start[24], end[24];
	json_t *attrs = json_array(), *o;
	unsigned i;

	hex(tid, r->trace_id, 16);
	hex(sid, r->span_id, 8);
	snprintf(start, sizeof(start), "%lld", (long long)r->start_ns);
	snprintf(end, sizeof(end), "%lld", (long long)r->end_ns);
	for (i = 0; attrs && i < r->n_attrs; i++) {
		json_t *a;
		char num[24];

		switch (r->attrs[i].type) {
		case A_INT:
			snprintf(num, sizeof(num), "%lld", (long long)r->attrs[i].i);
			a = json_pack("{s:s, s:{s:s}}", "key", r->attrs[i].key, "value", "intValue", num);
			break;
		case A_BOOL:
			a = json_pack("{s:s, s:{s:b}}", "key", r->attrs[i].key, "value", "boolValue",
				      (int)r->attrs[i].i);
			break;
		case A_LIST:
			a = json_pack("{s:s, s:{s:{s:[{s:s}]}}}", "key", r->attrs[i].key, "value",
				      "arrayValue", "values", "stringValue", r->attrs[i].s);
			break;
		default:
			a = kv_str(r->attrs[i].key, r->attrs[i].s);
			break;
		}
		if (a)
			json_array_append_new(attrs, a);
	}
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "traceId", tid, "spanId", sid, "name",
		      r->name, "kind", r->kind, "startTimeUnixNano", start, "endTimeUnixNano", end,
		      "attributes", attrs ? attrs : json_array());
	if (!o)
		return NULL;
	if (r->has_parent) {
		hex(pid, r->parent_id, 8);
		json_object_set_new(o, "parentSpanId", json_string(pid));
	}
	if (r->state[0])
		json_object_set_new(o, "traceState", json_string(r->state));
	if (r->n_events) {
		json_t *events = json_array();

		for (i = 0; events && i < r->n_events; i++) {
			char at[24];
			snprintf(at, sizeof(at), "%lld", (long long)r->events[i].at_ns);
			json_array_append_new(events, json_pack("{s:s, s:s}", "timeUnixNano", at, "name",
								r->events[i].name));
		}
		if (events)
			json_object_set_new(o, "events", events);
		if (r->dropped_events)
			json_object_set_new(o, "droppedEventsCount", json_integer(r->dropped_events));
	}
	if (r->error)
		json_object_set_new(o, "status",
				    json_pack("{s:i, s:s}", "code", 2, "message", r->status_msg));
	return o;
}

static char *batch_json(const rt_span_rec *list)
{
	json_t *spans = json_array(), *root;
	char *text;

	for (; spans && list; list = list->next) {
		json_t *s = span_json(list);
		if (s)
			json_array_append_new(spans, s);
	}
	root = json_pack("{s:[{s:{s:O}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource",
			 "attributes", ex.resource, "scopeSpans", "scope", "name",
			 "agentfactory-runtime", "version", AF_VERSION, "spans",
			 spans ? spans : json_array());
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return text;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static void export_batch(CURL *h, rt_span_rec *list, unsigned n)
{
	struct curl_slist *headers = NULL;
	char *body = batch_json(list), err[CURL_ERROR_SIZE];
	long status = 0;
	CURLcode cc = CURLE_OUT_OF_MEMORY;

	err[0] = '\0';
	if (body && h) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, ex.url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ex.timeout_ms);
		curl_easy_setopt(h, CURLOPT_USERAGENT, "agentfactory-runtime/" AF_VERSION " otlp");
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
		cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	}
	if (cc == CURLE_OK && status >= 200 && status < 300) {
		unsigned i;
		for (i = 0; i < n; i++)
			rt_metrics_inc(RT_M_TRACE_EXPORTED);
	} else {
		rt_metrics_inc(RT_M_TRACE_EXPORT_FAILURES);
		/* the first failures, then one in a hundred: a collector that is down
		 * must not flood the log */
		if (ex.failures_logged++ < 5 || ex.failures_logged % 100 == 0) {
			char msg[CURL_ERROR_SIZE + 512];

			snprintf(msg, sizeof(msg), "exporting %u spans to %s failed: %s", n, ex.url,
				 cc != CURLE_OK ? (err[0] ? err : curl_easy_strerror(cc))
				 : status ? "the collector answered an error status"
					  : "no answer");
			if (ex.warn)
				ex.warn(ex.warn_ctx, "otlp_export", msg);
			else
				fprintf(stderr, "agentfactory-runtime: warning: %s\n", msg);
		}
	}
	curl_slist_free_all(headers);
	free(body);
}

static void *exporter_main(void *arg)
{
	CURL *h = curl_easy_init();

	(void)arg;
	pthread_mutex_lock(&ex.mu);
	for (;;) {
		rt_span_rec *batch, *last;
		unsigned n = 0;

		if (ex.count < ex.batch_max && !ex.stopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += ex.delay_ms / 1000;
			until.tv_nsec += (long)(ex.delay_ms % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&ex.cond, &ex.mu, &until);
		}
		if (ex.count == 0) {
			if (ex.stopping)
				break;
			continue;
		}
		batch = last = ex.head;
		for (n = 1; n < ex.batch_max && last->next; n++)
			last = last->next;
		ex.head = last->next;
		if (!ex.head)
			ex.tail = NULL;
		last->next = NULL;
		ex.count -= n;
		pthread_mutex_unlock(&ex.mu);
		export_batch(h, batch, n);
		while (batch) {
			rt_span_rec *next = batch->next;
			free(batch);
			batch = next;
		}
		pthread_mutex_lock(&ex.mu);
	}
	pthread_mutex_unlock(&ex.mu);
	if (h)
		curl_easy_cleanup(h);
	return NULL;
}

/* ---- configuration ----------------------------------------------------------------------- */

static const char *env_or(const char *v, const char *name)
{
	const char *e;

	if (v)
		return v;
	e = getenv(name);
	return e && *e ? e : NULL;
}

static unsigned env_uint(unsigned v, const char *name)
{
	const char *e = getenv(name);
	char *end;
	unsigned long n;

	if (v || !e || !*e)
		return v;
	errno = 0;
	n = strtoul(e, &end, 10);
	return errno || *end || n == 0 || n > 1000000 ? 0 : (unsigned)n;
}

void rt_trace_config_env(rt_trace_config *c)
{
	const char *traces = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");

	if (!c->endpoint && traces && *traces)
		c->endpoint = traces; /* a full URL: /v1/traces is not appended */
	c->endpoint = env_or(c->endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT");
	c->service_name = env_or(c->service_name, "OTEL_SERVICE_NAME");
	c->resource_attrs = env_or(c->resource_attrs, "OTEL_RESOURCE_ATTRIBUTES");
	c->sampler = env_or(c->sampler, "OTEL_TRACES_SAMPLER");
	c->sampler_arg = env_or(c->sampler_arg, "OTEL_TRACES_SAMPLER_ARG");
	c->queue_max = env_uint(c->queue_max, "OTEL_BSP_MAX_QUEUE_SIZE");
	c->batch_max = env_uint(c->batch_max, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
	c->delay_ms = env_uint(c->delay_ms, "OTEL_BSP_SCHEDULE_DELAY");
	c->timeout_ms = env_uint(c->timeout_ms, "OTEL_EXPORTER_OTLP_TIMEOUT");
}

static int set_sampler(const char *name, const char *arg)
{
	double ratio = 1.0;
	char *end;

	if (arg) {
		errno = 0;
		ratio = strtod(arg, &end);
		if (errno || *end || end == arg || !(ratio >= 0.0 && ratio <= 1.0))
			return art_error_set(AF_EINVAL, "trace sampler argument \"%s\": expected a ratio "
					     "from 0 to 1", arg);
	}
	if (!name || strcmp(name, "parentbased_always_on") == 0)
		parent_based = true, root_sampler = S_ON;
	else if (strcmp(name, "always_on") == 0)
		parent_based = false, root_sampler = S_ON;
	else if (strcmp(name, "always_off") == 0)
		parent_based = false, root_sampler = S_OFF;
	else if (strcmp(name, "parentbased_always_off") == 0)
		parent_based = true, root_sampler = S_OFF;
	else if (strcmp(name, "traceidratio") == 0)
		parent_based = false, root_sampler = S_RATIO;
	else if (strcmp(name, "parentbased_traceidratio") == 0)
		parent_based = true, root_sampler = S_RATIO;
	else
		return art_error_set(AF_EINVAL, "unknown trace sampler \"%s\" (always_on, always_off, "
				     "traceidratio, parentbased_always_on, parentbased_always_off, "
				     "parentbased_traceidratio)", name);
	ratio_all = ratio >= 1.0;
	ratio_bound = (uint64_t)(ratio * 18446744073709551615.0);
	if (ratio >= 1.0)
		ratio_bound = UINT64_MAX;
	return 0;
}

/* OTEL_RESOURCE_ATTRIBUTES: k=v,k2=v2 (percent-encoding is not decoded). */
static json_t *resource_attributes(const char *service, const char *list)
{
	json_t *attrs = json_array();
	const char *p = list, *svc = service;
	char svc_from_list[VALUE_MAX] = "";
	unsigned n = 0;

	while (attrs && p && *p && n < RESOURCE_MAX) {
		const char *comma = strchr(p, ','), *eq = strchr(p, '=');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char key[128], value[VALUE_MAX];

		if (eq && eq < p + len && eq > p && (size_t)(eq - p) < sizeof(key) &&
		    len - (size_t)(eq - p) - 1 < sizeof(value)) {
			memcpy(key, p, (size_t)(eq - p));
			key[eq - p] = '\0';
			memcpy(value, eq + 1, len - (size_t)(eq - p) - 1);
			value[len - (size_t)(eq - p) - 1] = '\0';
			if (strcmp(key, "service.name") == 0)
				snprintf(svc_from_list, sizeof(svc_from_list), "%s", value);
			else
				json_array_append_new(attrs, kv_str(key, value)), n++;
		}
		p = comma ? comma + 1 : NULL;
	}
	if (!svc)
		svc = svc_from_list[0] ? svc_from_list : "agentfactory-runtime";
	if (attrs) {
		json_array_append_new(attrs, kv_str("service.name", svc));
		json_array_append_new(attrs, kv_str("service.version", AF_VERSION));
		json_array_append_new(attrs, kv_str("telemetry.sdk.name", "agentfactory"));
		json_array_append_new(attrs, kv_str("telemetry.sdk.language", "c"));
	}
	return attrs;
}

int rt_trace_start(const rt_trace_config *c)
{
	const char *ep = c ? c->endpoint : NULL;
	size_t len;
	int rc;

	if ((rc = set_sampler(c ? c->sampler : NULL, c ? c->sampler_arg : NULL)) < 0)
		return rc;
	if (!ep)
		return 0;
	if (atomic_load(&exporting))
		return art_error_set(AF_EINVAL, "OTLP export is already running");
	if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
		return art_error_set(AF_EINVAL, "OTLP endpoint \"%s\": expected an http:// or https:// "
				     "URL", ep);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return art_error_set(AF_EIO, "OTLP export: libcurl cannot start");
	len = strlen(ep);
	while (len && ep[len - 1] == '/')
		len--;
	if (len >= 10 && strncmp(ep + len - 10, "/v1/traces", 10) == 0)
		rc = asprintf(&ex.url, "%.*s", (int)len, ep);
	else
		rc = asprintf(&ex.url, "%.*s/v1/traces", (int)len, ep);
	if (rc < 0) {
		ex.url = NULL;
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	ex.resource = resource_attributes(c->service_name, c->resource_attrs);
	if (!ex.resource) {
		free(ex.url);
		ex.url = NULL;
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	ex.queue_max = c->queue_max ? c->queue_max : 2048;
	ex.batch_max = c->batch_max ? c->batch_max : 512;
	if (ex.batch_max > ex.queue_max)
		ex.batch_max = ex.queue_max;
	ex.delay_ms = c->delay_ms ? c->delay_ms : 5000;
	ex.timeout_ms = c->timeout_ms ? c->timeout_ms : 10000;
	ex.warn = c->warn;
	ex.warn_ctx = c->warn_ctx;
	ex.failures_logged = 0; /* each start reports its first failures */
	ex.stopping = false;
	if (pthread_create(&ex.thread, NULL, exporter_main, NULL) != 0) {
		free(ex.url);
		ex.url = NULL;
		json_decref(ex.resource);
		ex.resource = NULL;
		return art_error_set(AF_EIO, "OTLP export: cannot start a thread");
	}
	atomic_store(&exporting, true);
	return 0;
}

void rt_trace_stop(void)
{
	if (!atomic_load(&exporting))
		return;
	atomic_store(&exporting, false);
	pthread_mutex_lock(&ex.mu);
	ex.stopping = true;
	pthread_cond_signal(&ex.cond);
	pthread_mutex_unlock(&ex.mu);
	pthread_join(ex.thread, NULL);
	free(ex.url);
	ex.url = NULL;
	json_decref(ex.resource);
	ex.resource = NULL;
}
