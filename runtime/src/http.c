/*
 * http.c - the runtime's HTTP API on libmicrohttpd (see rt/http.h).
 *
 * One request = one `request` struct, allocated when libmicrohttpd first
 * calls the access handler and freed in one place, the completion callback,
 * which also writes the access-log line. Everything a request can be refused
 * for without its body (route, method, token, role, Content-Length,
 * Content-Type) is decided on that first call, before libmicrohttpd reads
 * the body or sends "100 Continue". Bodies are buffered up to the cap; a
 * chunked body that passes the cap is drained (not stored) and answered 413,
 * or the connection is dropped if the client keeps sending.
 *
 * Handlers run on the polling thread that owns the connection, except
 * invocations: those wait on a model, a tool or the disk, so they never run
 * on a polling thread (one slow model call would stall every connection
 * that thread polls). The handler suspends the connection and queues the
 * request for a pool of invocation workers sized for I/O waits; the worker
 * runs it and resumes the connection, and the next handler call sends the
 * answer. The queue is bounded: when it is full the request is answered at
 * once with 503 and Retry-After. A request is queued only after its
 * connection is suspended (both under the queue lock), so a worker can never
 * resume a connection that is not suspended yet.
 */
#include "rt/http.h"

#include "art/error.h"
#include "art/util.h"
#include "rt/metrics.h"
#include "rt/source.h"
#include "rt/sandbox.h"
#include "rt/trace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_MAX_BODY (1u << 20)
#define DEFAULT_MAX_CONNECTIONS 1000
#define DEFAULT_IDLE_TIMEOUT_S 30
#define DEFAULT_WORKERS 64
#define DEFAULT_QUEUE 1024
#define DEFAULT_HEADER_TIMEOUT_S 10
#define DEFAULT_MAX_PER_IP 128
#define REAPER_PERIOD_MS 250
/* Access-log lines of refused requests (4xx) per status per second; past
 * that they are counted, and one summary line per status says how many. */
#define LOG_REFUSED_PER_S 20
/* Request-head limits answered with the JSON error body (414, 431). The
 * connection memory libmicrohttpd reads a head into is set well above them,
 * so that these, not its own HTML replies, are what a client meets. */
#define URI_MAX (8u << 10)
#define HEADERS_MAX (16u << 10)
#define CONNECTION_MEMORY (256u << 10)
/* A chunked upload past the cap is drained up to this much more, then the
 * connection is dropped. */
#define DRAIN_MAX (16u << 20)
#define REQUEST_ID_MAX 64
#define NAME_MAX_LEN 63
#define VERSION_MAX_LEN 128
#define LOG_PATH_MAX 256

static const char OOM_BODY[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}";

struct request;

/* Invocations waiting for (or running on) a worker. */
typedef struct invoke_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct request **ring; /* cap slots; head = oldest */
	unsigned cap, head, count;
	pthread_t *workers;
	unsigned nworkers, started;
	atomic_uint busy;
	bool stopping;
} invoke_pool;

struct rt_http {
	struct MHD_Daemon *daemon;
	invoke_pool pool;
	rt_engine *engine;
	const rt_tokens *tokens;
	size_t max_body;
	FILE *log;
	atomic_bool draining;
	atomic_uint in_flight;
	atomic_uint_fast64_t next_id;
	uint32_t id_prefix;
	char address[INET6_ADDRSTRLEN + 10];
	uint16_t port;
	unsigned threads;
	char start_error[256]; /* last libmicrohttpd message while starting */
	atomic_bool started;
	/* Request-head deadline (slowloris): every open connection, and when
	 * the head of its next request is due; the reaper shuts down the socket
	 * of one that is late (libmicrohttpd's own timeout is an idle timeout,
	 * which a client dripping one header line at a time never trips). */
	pthread_mutex_t conn_mu;
	struct conn_rec *conns;   /* under conn_mu */
	unsigned header_timeout_s;
	pthread_t reaper;
	pthread_cond_t reaper_cv;
	bool reaper_started, reaper_stop; /* under conn_mu */
	/* access-log rate limit of refused requests (under log_mu) */
	pthread_mutex_t log_mu;
	int64_t log_window;               /* the second counted */
	unsigned log_lines[100];          /* lines of status 400+i this second */
	unsigned long log_dropped[100];   /* lines not written, by status 400+i */
};

/* One open connection (libmicrohttpd's socket context). */
typedef struct conn_rec {
	struct conn_rec *prev, *next;
	MHD_socket fd;
	int64_t head_due_ms;  /* monotonic; 0 while a request is being handled */
	bool reaped;
	atomic_bool nul_in_uri; /* the request's URI decodes a %00 */
} conn_rec;

typedef enum route {
	ROUTE_NONE,
	ROUTE_HEALTH,
	ROUTE_READY,
	ROUTE_METRICS,
	ROUTE_LIST,
	ROUTE_DESCRIBE,
	ROUTE_INVOKE
} route;

/* The metric label of each route: the template, never the raw path. */
static const char *const route_label[] = {
	[ROUTE_NONE] = "other",
	[ROUTE_HEALTH] = "/healthz",
	[ROUTE_READY] = "/readyz",
	[ROUTE_METRICS] = "/metrics",
	[ROUTE_LIST] = "/v1/agents",
	[ROUTE_DESCRIBE] = "/v1/agents/{name}",
	[ROUTE_INVOKE] = "/v1/agents/{name}/invoke",
};

typedef struct request {
	rt_http *srv;
	struct timespec start;
	route route;
	char id[REQUEST_ID_MAX + 1];
	char method[8];
	char path[LOG_PATH_MAX + 1];
	char remote[INET6_ADDRSTRLEN];
	char name[NAME_MAX_LEN + 1];
	char version[VERSION_MAX_LEN + 1];
	bool has_version;
	bool nul_in_uri;        /* a %00 in the path or the query */
	const char *url_seen;   /* the decoded path libmicrohttpd passed (its memory) */
	const char *token_name; /* borrowed from the tokens table */
	rt_role role;
	/* body */
	art_buf body;
	bool too_large;
	bool body_oom; /* no memory for the body (within the cap): 503 */
	size_t received;
	/* response */
	bool responded;
	int status;
	const char *code; /* static */
	bool engine_error; /* code came from rt_engine_invoke, which counts it itself */
	size_t bytes_out;
	const char *allow;    /* 405 */
	const char *www_auth; /* 401/403 */
	const char *retry_after; /* 503 when the invocation queue is full */
	/* invocation, run by a worker while the connection is suspended */
	enum { JOB_NONE, JOB_QUEUED, JOB_DONE } job;
	struct MHD_Connection *conn;
	rt_invoke_result res;
	int invoke_rc;
	char timing[96];      /* Server-Timing */
	rt_span span;         /* the server span: parent from traceparent, if valid */
} request;

/* --------------------------------------------------------------------------
 * JSON text and log lines
 */

/* Append s as a JSON string; invalid UTF-8 becomes U+FFFD. */
static int json_str(art_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	int rc = art_buf_append(b, "\"", 1);

	while (rc == 0 && p < end) {
		const unsigned char *run = p;
		size_t len;

		while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			rc = art_buf_append(b, run, (size_t)(p - run));
		if (rc || p == end)
			break;
		if (*p == '"' || *p == '\\') {
			char esc[2] = {'\\', (char)*p};
			rc = art_buf_append(b, esc, 2);
			p++;
		} else if (*p < 0x80) {
			rc = art_buf_printf(b, "\\u%04x", *p);
			p++;
		} else if ((len = art_utf8_decode(p, (size_t)(end - p), NULL)) > 0) {
			rc = art_buf_append(b, p, len);
			p += len;
		} else {
			rc = art_buf_puts(b, "\\ufffd");
			p++;
		}
	}
	if (rc == 0)
		rc = art_buf_append(b, "\"", 1);
	return rc;
}

static int json_cstr(art_buf *b, const char *s)
{
	return s ? json_str(b, s, strlen(s)) : art_buf_puts(b, "null");
}

/* {"ts":"2026-01-02T03:04:05.678Z","level":"info","event":"...","msg":"..."
 * - the shape of rt/log.h's lines, with typed (numeric) fields after it. */
static int log_open(art_buf *b, const char *level, const char *event, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char when[40];
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	rc = art_buf_printf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":\"%s\",\"msg\":",
			    when, ts.tv_nsec / 1000000, level, event);
	return rc ? rc : json_cstr(b, msg);
}

/* Close the object and write the line in one locked write. */
static void log_emit(FILE *f, art_buf *b, int rc)
{
	if (rc == 0)
		rc = art_buf_puts(b, "}\n");
	if (rc == 0 && f) {
		flockfile(f);
		fwrite(b->data, 1, b->len, f);
		fflush(f);
		funlockfile(f);
	}
	art_buf_free(b);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	rt_http *srv = cls;
	char text[512];
	size_t n;
	art_buf b = ART_BUF_INIT;
	int rc;

	vsnprintf(text, sizeof(text), fmt, ap);
	n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	if (!atomic_load(&srv->started)) {
		/* keep the first part of the message: it names the cause */
		size_t keep = n < sizeof(srv->start_error) - 1 ? n : sizeof(srv->start_error) - 1;
		memcpy(srv->start_error, text, keep);
		srv->start_error[keep] = '\0';
	}
	rc = log_open(&b, "warn", "http_server", text);
	log_emit(srv->log, &b, rc);
}

/* --------------------------------------------------------------------------
 * Small parsers
 */

static void log_flush_dropped(rt_http *srv);

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool valid_name(const char *s)
{
	size_t i;

	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (i = 1; s[i]; i++) {
		if (i > NAME_MAX_LEN - 1)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	}
	return true;
}

static bool valid_version(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i >= VERSION_MAX_LEN)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '+'))
			return false;
	}
	return i > 0;
}

static bool valid_request_id(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i >= REQUEST_ID_MAX)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_' ||
		      s[i] == ':'))
			return false;
	}
	return i > 0;
}

/* "application/json", optionally followed by parameters. */
static bool is_json_type(const char *ct)
{
	static const char want[] = "application/json";

	if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int rt_http_parse_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *addr_len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port_s;
	unsigned long port;
	char *end;
	size_t hlen;

	memset(addr, 0, sizeof(*addr));
	if (!listen || !*listen)
		return art_error_set(AF_EINVAL, "empty listen address");
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':')
			return art_error_set(AF_EINVAL,
					     "listen address \"%s\": expected [IPV6]:PORT", listen);
		hlen = (size_t)(close - listen - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return art_error_set(AF_EINVAL, "listen address \"%s\": bad IPv6 address",
					     listen);
		memcpy(host, listen + 1, hlen);
		host[hlen] = '\0';
		port_s = close + 2;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || colon == listen)
			return art_error_set(AF_EINVAL,
					     "listen address \"%s\": expected HOST:PORT, e.g. 127.0.0.1:8080",
					     listen);
		hlen = (size_t)(colon - listen);
		if (hlen >= sizeof(host))
			return art_error_set(AF_EINVAL, "listen address \"%s\": host too long", listen);
		memcpy(host, listen, hlen);
		host[hlen] = '\0';
		port_s = colon + 1;
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port > 65535 || port_s[0] == '-' || port_s[0] == '+')
		return art_error_set(AF_EINVAL, "listen address \"%s\": port must be 0-65535",
				     listen);
	if (listen[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return art_error_set(AF_EINVAL, "listen address \"%s\": bad IPv6 address",
					     listen);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*addr_len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return art_error_set(AF_EINVAL,
					     "listen address \"%s\": the host must be an IPv4 address, "
					     "[IPv6] or localhost",
					     listen);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*addr_len = sizeof(*a4);
	}
	return 0;
}

bool rt_http_is_loopback(const struct sockaddr *addr)
{
	if (!addr)
		return false;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
		return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	}
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
		const uint8_t *b = a6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && b[12] == 127;
	}
	return false;
}

void rt_http_error_for_rc(int rc, int *status, const char **code)
{
	switch (rc) {
	case AF_ENOTFOUND:
		*status = 404, *code = RT_HTTP_E_NOT_FOUND;
		break;
	case AF_ESIGNATURE:
	case AF_EVERSION:
	case AF_ECORRUPT:
		*status = 503, *code = RT_HTTP_E_REFUSED;
		break;
	case AF_ENOMEM:
		*status = 503, *code = RT_HTTP_E_UNAVAILABLE;
		break;
	case AF_EINVAL:
		*status = 400, *code = RT_HTTP_E_INVALID_REQUEST;
		break;
	case AF_EEXPIRED: /* following a channel: its release expired */
		*status = 503, *code = RT_HTTP_E_RELEASE_EXPIRED;
		break;
	case AF_EDENIED: /* following a channel: no valid release */
		*status = 503, *code = RT_HTTP_E_NO_RELEASE;
		break;
	default:
		*status = 500, *code = RT_HTTP_E_INTERNAL;
		break;
	}
}

/* --------------------------------------------------------------------------
 * Responses
 */

static const char *reason_allow(route r)
{
	return r == ROUTE_INVOKE ? "POST" : "GET, HEAD";
}

/* Queue a response; body is freed here in every case when owned. */
static enum MHD_Result respond(request *r, struct MHD_Connection *c, int status,
			       const char *ctype, char *body, size_t len, bool owned)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char label[8];

	if (owned)
		resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	else
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (owned)
			free(body);
		status = 503;
		r->code = RT_HTTP_E_UNAVAILABLE;
		resp = MHD_create_response_from_buffer(sizeof(OOM_BODY) - 1, (void *)OOM_BODY,
						       MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		ctype = "application/json";
		len = sizeof(OOM_BODY) - 1;
	}
	/* Header additions fail only on OOM or bad characters (ours are clean);
	 * the response is still worth sending without them. */
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	(void)MHD_add_response_header(resp, "X-Request-Id", r->id);
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	(void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->allow)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->www_auth)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_auth);
	if (r->retry_after)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
	if (r->timing[0])
		(void)MHD_add_response_header(resp, "Server-Timing", r->timing);
	if (atomic_load_explicit(&r->srv->draining, memory_order_relaxed))
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);

	r->responded = true;
	r->status = status;
	r->bytes_out = len;
	rt_metrics_inc(RT_M_HTTP_REQUESTS);
	snprintf(label, sizeof(label), "%d", status);
	rt_metrics_inc_label(RT_M_HTTP_STATUS, label);
	if (r->code && !r->engine_error)
		rt_metrics_inc_label(RT_M_ERRORS, r->code);
	rt_metrics_http_response(route_label[r->route], status, seconds_since(&r->start));
	if (rt_span_recording(&r->span)) {
		rt_span_set_int(&r->span, "http.response.status_code", status);
		if (r->code)
			rt_span_set_str(&r->span, "error.type", r->code);
		if (status >= 500)
			rt_span_set_error(&r->span, r->code ? r->code : "server error");
	}
	return ret;
}

static enum MHD_Result respond_json(request *r, struct MHD_Connection *c, int status,
				    art_buf *b)
{
	size_t len = b->len;
	char *body = art_buf_detach(b);

	return respond(r, c, status, "application/json", body, len, true);
}

static enum MHD_Result respond_error(request *r, struct MHD_Connection *c, int status,
				     const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static enum MHD_Result respond_error(request *r, struct MHD_Connection *c, int status,
				     const char *code, const char *fmt, ...)
{
	art_buf b = ART_BUF_INIT;
	char message[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	r->code = code;
	rc = art_buf_puts(&b, "{\"error\":{\"code\":");
	if (rc == 0)
		rc = json_cstr(&b, code);
	if (rc == 0)
		rc = art_buf_puts(&b, ",\"message\":");
	if (rc == 0)
		rc = json_cstr(&b, message);
	if (rc == 0)
		rc = art_buf_puts(&b, "}}");
	if (rc) {
		art_buf_free(&b);
		r->code = RT_HTTP_E_UNAVAILABLE;
		return respond(r, c, 503, "application/json", (char *)OOM_BODY,
			       sizeof(OOM_BODY) - 1, false);
	}
	return respond_json(r, c, status, &b);
}

/* --------------------------------------------------------------------------
 * Handlers
 */

/* Following a channel: ,"release":N|null,"channel":{...} (docs/openapi.yaml). */
static int channel_json(art_buf *b, rt_engine *engine)
{
	rt_engine_status st;
	char when[21];
	int rc;

	if (rt_engine_status_get(engine, &st) < 0 || st.state == RT_CHANNEL_OFF)
		return 0;
	rc = st.release ? art_buf_printf(b, ",\"release\":%llu,\"channel\":{\"name\":",
					 (unsigned long long)st.release)
			: art_buf_puts(b, ",\"release\":null,\"channel\":{\"name\":");
	if (rc == 0)
		rc = json_cstr(b, st.channel);
	if (rc == 0)
		rc = art_buf_printf(b, ",\"status\":\"%s\"", rt_channel_state_name(st.state));
	if (rc == 0 && st.release) {
		art_time_format(when, st.expires);
		rc = art_buf_printf(b, ",\"release\":%llu,\"seq\":%llu,\"action\":",
				    (unsigned long long)st.release, (unsigned long long)st.seq);
		if (rc == 0)
			rc = json_cstr(b, st.action);
		if (rc == 0)
			rc = art_buf_printf(b, ",\"expires\":\"%s\",\"digest\":", when);
		if (rc == 0)
			rc = json_cstr(b, st.release_digest);
	}
	if (rc == 0 && st.reason[0]) {
		rc = art_buf_puts(b, ",\"reason\":");
		if (rc == 0)
			rc = json_cstr(b, st.reason);
	}
	if (rc == 0 && st.refused_seq) {
		rc = art_buf_printf(b, ",\"refused\":{\"seq\":%llu,\"release\":%llu,\"reason\":",
				    (unsigned long long)st.refused_seq,
				    (unsigned long long)st.refused_release);
		if (rc == 0)
			rc = json_cstr(b, st.refused);
		if (rc == 0)
			rc = art_buf_puts(b, "}");
	}
	if (rc == 0)
		rc = art_buf_printf(b, ",\"switches\":%llu,\"keyring\":\"sha256:%s\"",
				    (unsigned long long)st.switches, st.keyring_sha256);
	if (rc == 0 && st.keyring_error[0]) {
		rc = art_buf_puts(b, ",\"keyring_error\":");
		if (rc == 0)
			rc = json_cstr(b, st.keyring_error);
	}
	return rc ? rc : art_buf_puts(b, "}");
}

static enum MHD_Result handle_list(request *r, struct MHD_Connection *c)
{
	rt_agent_info *agents = NULL;
	size_t n = 0, i, ok = 0;
	art_buf b = ART_BUF_INIT;
	enum MHD_Result ret;
	int rc, status;
	const char *code;

	rc = rt_engine_list(r->srv->engine, &agents, &n);
	if (rc < 0) {
		rt_http_error_for_rc(rc, &status, &code);
		return respond_error(r, c, status, code, "cannot list agents: %s", art_error_last());
	}
	rc = art_buf_puts(&b, "{\"agents\":[");
	for (i = 0; i < n && rc == 0; i++) {
		const rt_agent_info *a = &agents[i];
		ok += a->ok;
		rc = art_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		if (rc == 0)
			rc = json_cstr(&b, a->name);
		if (rc == 0)
			rc = art_buf_puts(&b, ",\"version\":");
		if (rc == 0)
			rc = json_cstr(&b, a->version);
		if (rc == 0)
			rc = art_buf_puts(&b, ",\"manifest_digest\":");
		if (rc == 0)
			rc = json_cstr(&b, a->manifest_digest);
		if (rc == 0)
			rc = art_buf_puts(&b, a->ok ? ",\"status\":\"ok\"}" : ",\"status\":\"refused\",\"reason\":");
		if (rc == 0 && !a->ok) {
			rc = json_cstr(&b, a->refused_reason ? a->refused_reason : "refused");
			if (rc == 0)
				rc = art_buf_puts(&b, "}");
		}
	}
	if (rc == 0)
		rc = art_buf_printf(&b, "],\"count\":%zu,\"ok\":%zu,\"refused\":%zu", n, ok, n - ok);
	if (rc == 0)
		rc = channel_json(&b, r->srv->engine);
	if (rc == 0)
		rc = art_buf_puts(&b, "}");
	rt_agent_info_free(agents, n);
	if (rc) {
		art_buf_free(&b);
		return respond_error(r, c, 503, RT_HTTP_E_UNAVAILABLE, "out of memory");
	}
	ret = respond_json(r, c, 200, &b);
	return ret;
}

static enum MHD_Result handle_describe(request *r, struct MHD_Connection *c)
{
	char *doc = NULL;
	size_t len = 0;
	int rc, status;
	const char *code;

	rc = rt_engine_describe(r->srv->engine, r->name, r->has_version ? r->version : NULL, &doc,
				&len);
	if (rc < 0) {
		free(doc);
		rt_http_error_for_rc(rc, &status, &code);
		if (rc == AF_ENOTFOUND)
			return respond_error(r, c, status, code, "no agent \"%s\"%s%s in the store",
					     r->name, r->has_version ? " version " : "",
					     r->has_version ? r->version : "");
		return respond_error(r, c, status, code, "%s", art_error_last());
	}
	return respond(r, c, 200, "application/json", doc, len, true);
}

/* Runs on a worker: the invocation itself, then the connection resumes. */
static void invoke_run(request *r)
{
	rt_span *outer = rt_span_set_current(&r->span);

	memset(&r->res, 0, sizeof(r->res));
	r->invoke_rc = rt_engine_invoke(r->srv->engine, r->name, r->has_version ? r->version : NULL,
					r->body.data, r->body.len, &r->res);
	rt_span_set_current(outer);
	r->job = JOB_DONE;
	MHD_resume_connection(r->conn);
}

static void *invoke_worker(void *arg)
{
	invoke_pool *p = arg;
	request *r;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->count == 0) /* stopping, and nothing left to run */
			break;
		r = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		atomic_fetch_add(&p->busy, 1);
		pthread_mutex_unlock(&p->lock);
		invoke_run(r);
		atomic_fetch_sub(&p->busy, 1);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The first half of an invocation, on the polling thread: check, suspend, queue. */
static enum MHD_Result invoke_start(request *r, struct MHD_Connection *c)
{
	invoke_pool *p = &r->srv->pool;
	bool queued = false;

	if (r->body.len == 0)
		return respond_error(r, c, 400, RT_HTTP_E_INVALID_JSON,
				     "empty body: send a JSON object such as {\"inputs\": {}}");
	/* The body is parsed once on the host, by the engine (on the worker:
	 * parsing a large body must not hold a polling thread), and once by the
	 * guest, which checks the schema. */
	pthread_mutex_lock(&p->lock);
	if (p->count < p->cap && !p->stopping) {
		r->job = JOB_QUEUED;
		r->conn = c;
		MHD_suspend_connection(c);
		p->ring[(p->head + p->count) % p->cap] = r;
		p->count++;
		pthread_cond_signal(&p->cond);
		queued = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (queued)
		return MHD_YES;
	r->retry_after = "1";
	return respond_error(r, c, 503, RT_HTTP_E_UNAVAILABLE,
			     "%s: %u invocations are queued (the limit); retry after a second",
			     p->stopping ? "the server is stopping" : "overloaded", p->cap);
}

/* The second half, on the polling thread after the worker resumed us. */
static enum MHD_Result invoke_finish(request *r, struct MHD_Connection *c)
{
	rt_invoke_result *res = &r->res;
	enum MHD_Result ret;
	int status;
	char *copy;

	/* the body is no longer needed: release it before the response goes out */
	art_buf_free(&r->body);
	if (r->invoke_rc < 0) {
		rt_invoke_result_clear(res);
		return respond_error(r, c, 503, RT_HTTP_E_UNAVAILABLE, "out of memory while invoking");
	}
	snprintf(r->timing, sizeof(r->timing), "instantiate;dur=%.3f, invoke;dur=%.3f",
		 res->instantiate_seconds * 1e3, res->invoke_seconds * 1e3);
	status = res->http_status;
	if (status < 200 || status > 599)
		status = res->error_code ? 500 : 200;
	r->code = res->error_code;
	r->engine_error = true;
	if (res->body && res->body_len) {
		copy = malloc(res->body_len);
		if (!copy) {
			rt_invoke_result_clear(res);
			r->engine_error = false;
			return respond_error(r, c, 503, RT_HTTP_E_UNAVAILABLE, "out of memory");
		}
		memcpy(copy, res->body, res->body_len);
		ret = respond(r, c, status, "application/json", copy, res->body_len, true);
	} else if (res->error_code) {
		ret = respond_error(r, c, status, res->error_code, "%s",
				    res->error_message ? res->error_message : res->error_code);
	} else {
		r->engine_error = false;
		ret = respond_error(r, c, 500, RT_HTTP_E_INTERNAL, "the engine returned no answer");
	}
	rt_invoke_result_clear(res);
	return ret;
}

static enum MHD_Result handle_invoke(request *r, struct MHD_Connection *c)
{
	switch (r->job) {
	case JOB_NONE:
		return invoke_start(r, c);
	case JOB_DONE:
		return invoke_finish(r, c);
	case JOB_QUEUED:
	default:
		return MHD_YES; /* not ours yet (a spurious call while queued) */
	}
}

/* The gauges: what is served, the pool, the caches (rt/metrics.h). */
static int render_gauges(art_buf *b, rt_http *srv)
{
	rt_metrics_key_expiry keys[RT_ENGINE_KEYS_MAX];
	rt_metrics_gauges g;
	rt_engine_status st;
	rt_engine_stats es;
	rt_sandbox_stats ss;
	size_t i;

	memset(&g, 0, sizeof(g));
	if (rt_engine_status_get(srv->engine, &st) == 0 && st.state != RT_CHANNEL_OFF) {
		g.channel = st.channel;
		g.release = st.release;
		g.seq = st.seq;
		g.release_expires = st.release ? (int64_t)st.expires : 0;
	}
	if (rt_engine_stats_get(srv->engine, &es) == 0) {
		g.agents_served = es.agents_served;
		g.agents_refused = es.agents_refused;
		g.modules_loaded = es.modules_loaded;
		g.module_cache_capacity = es.module_cache_capacity;
		for (i = 0; i < es.n_keys; i++)
			keys[i] = (rt_metrics_key_expiry){es.keys[i].id, es.keys[i].role,
							  es.keys[i].not_after};
		g.keys = keys;
		g.n_keys = es.n_keys;
	}
	pthread_mutex_lock(&srv->pool.lock);
	g.invocations_queued = srv->pool.count;
	pthread_mutex_unlock(&srv->pool.lock);
	g.invocations_in_flight = atomic_load(&srv->pool.busy);
	g.workers = srv->pool.started;
	g.queue_capacity = srv->pool.cap;
	g.connections_in_flight = atomic_load(&srv->in_flight);
	rt_sandbox_stats_get(&ss);
	g.pool_slots_idle = ss.pooled;
	g.pool_slots_in_use = ss.reservations > ss.pooled ? ss.reservations - ss.pooled : 0;
	return rt_metrics_render_gauges(b, &g);
}

static enum MHD_Result handle_metrics(request *r, struct MHD_Connection *c)
{
	art_buf b = ART_BUF_INIT;
	size_t len;

	if (rt_metrics_render(&b) < 0 || render_gauges(&b, r->srv) < 0) {
		art_buf_free(&b);
		return respond_error(r, c, 503, RT_HTTP_E_UNAVAILABLE, "cannot render metrics");
	}
	len = b.len;
	return respond(r, c, 200, "text/plain; version=0.0.4; charset=utf-8", art_buf_detach(&b),
		       len, true);
}

static enum MHD_Result handle_ready(request *r, struct MHD_Connection *c)
{
	static const char ready[] = "{\"status\":\"ready\"}";
	char source[8192];

	if (atomic_load(&r->srv->draining))
		return respond_error(r, c, 503, RT_HTTP_E_NOT_READY, "shutting down");
	if (!rt_engine_ready(r->srv->engine)) {
		rt_engine_status st;

		if (rt_engine_status_get(r->srv->engine, &st) == 0 && st.store_error[0])
			return respond_error(r, c, 503, RT_HTTP_E_NOT_READY, "%s", st.store_error);
		if (rt_engine_status_get(r->srv->engine, &st) == 0 && st.state != RT_CHANNEL_OFF &&
		    st.state != RT_CHANNEL_OK)
			return respond_error(r, c, 503, RT_HTTP_E_NOT_READY, "%s", st.reason);
		if (rt_source_describe(source, sizeof(source)))
			return respond_error(r, c, 503, RT_HTTP_E_NOT_READY,
					     "no verified release from the registry yet: %s", source);
		return respond_error(r, c, 503, RT_HTTP_E_NOT_READY,
				     "no verified agent is loaded yet");
	}
	if (rt_source_describe(source, sizeof(source))) {
		/* ready, and what the registry source says (unreachable: still serving) */
		art_buf b = ART_BUF_INIT;
		size_t len;

		if (art_buf_printf(&b, "{\"status\":\"ready\",\"source\":%s}", source) == 0) {
			len = b.len;
			return respond(r, c, 200, "application/json", art_buf_detach(&b), len, true);
		}
		art_buf_free(&b);
	}
	return respond(r, c, 200, "application/json", (char *)ready, sizeof(ready) - 1, false);
}

static enum MHD_Result dispatch(request *r, struct MHD_Connection *c)
{
	static const char alive[] = "{\"status\":\"ok\"}";

	switch (r->route) {
	case ROUTE_HEALTH:
		return respond(r, c, 200, "application/json", (char *)alive, sizeof(alive) - 1,
			       false);
	case ROUTE_READY:
		return handle_ready(r, c);
	case ROUTE_METRICS:
		return handle_metrics(r, c);
	case ROUTE_LIST:
		return handle_list(r, c);
	case ROUTE_DESCRIBE:
		return handle_describe(r, c);
	case ROUTE_INVOKE:
		return handle_invoke(r, c);
	case ROUTE_NONE:
	default:
		return respond_error(r, c, 404, RT_HTTP_E_NOT_FOUND, "no such route");
	}
}

/* --------------------------------------------------------------------------
 * Routing and authorisation (first call of a request)
 */

/* Sets r->route (and r->name); ROUTE_NONE for an unknown path. */
static void match_route(request *r, const char *url)
{
	static const char agents[] = "/v1/agents/";
	const char *rest, *slash;
	size_t len;

	r->route = ROUTE_NONE;
	if (strcmp(url, "/healthz") == 0)
		r->route = ROUTE_HEALTH;
	else if (strcmp(url, "/readyz") == 0)
		r->route = ROUTE_READY;
	else if (strcmp(url, "/metrics") == 0)
		r->route = ROUTE_METRICS;
	else if (strcmp(url, "/v1/agents") == 0)
		r->route = ROUTE_LIST;
	else if (strncmp(url, agents, sizeof(agents) - 1) == 0) {
		rest = url + sizeof(agents) - 1;
		slash = strchr(rest, '/');
		len = slash ? (size_t)(slash - rest) : strlen(rest);
		if (len == 0 || len > NAME_MAX_LEN)
			return;
		if (slash && strcmp(slash, "/invoke") != 0)
			return;
		memcpy(r->name, rest, len);
		r->name[len] = '\0';
		r->route = slash ? ROUTE_INVOKE : ROUTE_DESCRIBE;
	}
}

static bool method_allowed(route rt, const char *method)
{
	if (rt == ROUTE_INVOKE)
		return strcmp(method, "POST") == 0;
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static rt_action route_action(route rt)
{
	switch (rt) {
	case ROUTE_METRICS:
		return RT_ACTION_METRICS;
	case ROUTE_LIST:
		return RT_ACTION_LIST;
	case ROUTE_DESCRIBE:
		return RT_ACTION_DESCRIBE;
	case ROUTE_INVOKE:
		return RT_ACTION_INVOKE;
	default:
		return RT_ACTION_ADMIN;
	}
}

static bool route_is_open(route rt)
{
	return rt == ROUTE_HEALTH || rt == ROUTE_READY;
}

static const char *action_name(rt_action a)
{
	switch (a) {
	case RT_ACTION_LIST:
		return "list agents";
	case RT_ACTION_DESCRIBE:
		return "describe agents";
	case RT_ACTION_INVOKE:
		return "invoke agents";
	case RT_ACTION_METRICS:
		return "read metrics";
	default:
		return "administer";
	}
}

/* 0 when allowed, else the error response was queued (*ret set). */
static int authorize(request *r, struct MHD_Connection *c, enum MHD_Result *ret)
{
	const rt_tokens *tokens = r->srv->tokens;
	const char *header, *token;
	size_t len;
	rt_action action;

	if (!tokens || route_is_open(r->route))
		return 0;
	action = route_action(r->route);
	header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!header) {
		r->www_auth = "Bearer realm=\"agentfactory\"";
		*ret = respond_error(r, c, 401, RT_HTTP_E_UNAUTHORIZED,
				     "this endpoint needs a bearer token (Authorization: Bearer TOKEN)");
		return -1;
	}
	if (rt_tokens_bearer(header, &token, &len) < 0 ||
	    rt_tokens_check(tokens, token, len, &r->role, &r->token_name) < 0) {
		r->www_auth = "Bearer realm=\"agentfactory\", error=\"invalid_token\"";
		*ret = respond_error(r, c, 401, RT_HTTP_E_UNAUTHORIZED,
				     "the bearer token is malformed or not known");
		return -1;
	}
	if (!rt_role_allows(r->role, action)) {
		r->www_auth = "Bearer realm=\"agentfactory\", error=\"insufficient_scope\"";
		*ret = respond_error(r, c, 403, RT_HTTP_E_FORBIDDEN,
				     "a token with role \"%s\" may not %s", rt_role_name(r->role),
				     action_name(action));
		return -1;
	}
	return 0;
}

static void request_init(request *r, rt_http *srv, struct MHD_Connection *c, const char *url,
			 const char *method)
{
	const union MHD_ConnectionInfo *info;
	const char *id;

	r->srv = srv;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
	if (id && valid_request_id(id))
		snprintf(r->id, sizeof(r->id), "%s", id);
	else
		snprintf(r->id, sizeof(r->id), "%08x-%012llx", srv->id_prefix,
			 (unsigned long long)atomic_fetch_add(&srv->next_id, 1));
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (info && info->client_addr) {
		const struct sockaddr *sa = info->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->remote,
				  sizeof(r->remote));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
				  r->remote, sizeof(r->remote));
	}
}

/* The server span: a child of the caller's traceparent when it is valid,
 * else the root of a new trace. Named "METHOD route" (never the raw path). */
static void span_begin(request *r, struct MHD_Connection *c)
{
	rt_trace_ctx parent;
	char name[64];
	bool remote = rt_trace_parse(&parent,
				     MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent"),
				     MHD_lookup_connection_value(c, MHD_HEADER_KIND, "tracestate")) == 0;

	snprintf(name, sizeof(name), "%s %s", r->method, route_label[r->route]);
	rt_span_begin(&r->span, name, RT_SPAN_SERVER, remote ? &parent : NULL);
	if (rt_span_recording(&r->span)) {
		rt_span_set_str(&r->span, "http.request.method", r->method);
		rt_span_set_str(&r->span, "http.route", route_label[r->route]);
		rt_span_set_str(&r->span, "url.path", r->path);
		rt_span_set_str(&r->span, "agentfactory.request_id", r->id);
		if (r->remote[0])
			rt_span_set_str(&r->span, "client.address", r->remote);
		if (r->name[0])
			rt_span_set_str(&r->span, "gen_ai.agent.name", r->name);
	}
}

/* Everything decided before the body: route, method, auth, size, type. */
typedef struct head_size {
	size_t uri, headers;
} head_size;

/* MHD_KeyValueIterator: adds "key: value\r\n" (or "&key=value") to *cls. */
static enum MHD_Result add_size(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	size_t *n = cls;

	(void)kind;
	*n += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static enum MHD_Result first_call(request *r, struct MHD_Connection *c)
{
	enum MHD_Result ret;
	const char *v;

	if (r->nul_in_uri)
		return respond_error(r, c, 400, RT_HTTP_E_INVALID_REQUEST,
				     "the URI holds an encoded NUL (%%00): refused, never cut short");
	{
		head_size hs = {0, 0};

		hs.uri = strlen(r->url_seen);
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_size, &hs.uri);
		MHD_get_connection_values(c, MHD_HEADER_KIND, add_size, &hs.headers);
		if (hs.uri > URI_MAX)
			return respond_error(r, c, 414, RT_HTTP_E_URI_TOO_LONG,
					     "the URI is longer than %u bytes", URI_MAX);
		if (hs.headers > HEADERS_MAX)
			return respond_error(r, c, 431, RT_HTTP_E_HEADERS_TOO_LARGE,
					     "the request headers are larger than %u bytes in all",
					     HEADERS_MAX);
	}
	/* Bodies come with Content-Length only: the size is known (and capped)
	 * before a byte is read, and libmicrohttpd's chunk decoder is never fed
	 * (it would wait for a chunk of 2^64-1 bytes, and answers malformed
	 * chunks in HTML). */
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return respond_error(r, c, 411, RT_HTTP_E_LENGTH_REQUIRED,
				     "send the body with Content-Length (Transfer-Encoding is not "
				     "accepted)");
	if (r->route == ROUTE_NONE)
		return respond_error(r, c, 404, RT_HTTP_E_NOT_FOUND, "no route %s", r->path);
	if (!method_allowed(r->route, r->method)) {
		r->allow = reason_allow(r->route);
		return respond_error(r, c, 405, RT_HTTP_E_METHOD, "%s is not allowed here (allowed: %s)",
				     r->method, r->allow);
	}
	if (authorize(r, c, &ret) < 0)
		return ret;
	if (r->route == ROUTE_DESCRIBE || r->route == ROUTE_INVOKE) {
		if (!valid_name(r->name))
			return respond_error(r, c, 404, RT_HTTP_E_NOT_FOUND,
					     "no agent \"%s\": names match ^[a-z][a-z0-9-]{0,62}$",
					     r->name);
		v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "version");
		if (v) {
			if (!valid_version(v))
				return respond_error(r, c, 400, RT_HTTP_E_INVALID_REQUEST,
						     "version must be a semantic version (1-128 "
						     "characters of A-Z a-z 0-9 . + -)");
			snprintf(r->version, sizeof(r->version), "%s", v);
			r->has_version = true;
		}
	}
	/* Answering now would make libmicrohttpd close the connection (it has
	 * not seen the end of the request yet): the handler runs on the next
	 * call, which keeps the connection alive for the next request. */
	r->body.max = r->srv->max_body;
	if (r->route != ROUTE_INVOKE)
		return MHD_YES;

	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (v) {
		char *end;
		unsigned long long n;
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno || *end || n > r->srv->max_body)
			return respond_error(r, c, 413, RT_HTTP_E_TOO_LARGE,
					     "the body is larger than the limit of %zu bytes",
					     r->srv->max_body);
	}
	if (!is_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE)))
		return respond_error(r, c, 415, RT_HTTP_E_MEDIA_TYPE,
				     "send the request as Content-Type: application/json");
	return MHD_YES; /* wait for the body */
}

/* ---- connections: request-head deadline, %00 ------------------------------------- */

static conn_rec *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? (conn_rec *)ci->socket_context : NULL;
}

/* The head of a request arrived: no deadline while it is handled (a slow
 * model, a suspended connection). */
static void head_received(rt_http *srv, conn_rec *cr)
{
	pthread_mutex_lock(&srv->conn_mu);
	cr->head_due_ms = 0;
	pthread_mutex_unlock(&srv->conn_mu);
}

/* The next request's head (keep-alive) is due within the header timeout. */
static void head_expected(rt_http *srv, conn_rec *cr)
{
	pthread_mutex_lock(&srv->conn_mu);
	cr->head_due_ms = mono_ms() + (int64_t)srv->header_timeout_s * 1000;
	pthread_mutex_unlock(&srv->conn_mu);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	rt_http *srv = cls;
	conn_rec *cr = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		/* Without memory for the record the connection simply has no head
		 * deadline (libmicrohttpd's idle timeout still applies). */
		if (!ci || !(cr = calloc(1, sizeof(*cr))))
			return;
		cr->fd = ci->connect_fd;
		atomic_init(&cr->nul_in_uri, false);
		pthread_mutex_lock(&srv->conn_mu);
		cr->head_due_ms = mono_ms() + (int64_t)srv->header_timeout_s * 1000;
		cr->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = cr;
		srv->conns = cr;
		pthread_mutex_unlock(&srv->conn_mu);
		*socket_context = cr;
		return;
	}
	if (!cr) /* MHD_CONNECTION_NOTIFY_CLOSED, before the socket is closed */
		return;
	pthread_mutex_lock(&srv->conn_mu);
	if (cr->prev)
		cr->prev->next = cr->next;
	else
		srv->conns = cr->next;
	if (cr->next)
		cr->next->prev = cr->prev;
	pthread_mutex_unlock(&srv->conn_mu);
	*socket_context = NULL;
	free(cr);
}

/*
 * Every REAPER_PERIOD_MS: shut down the socket of each connection whose
 * request head is overdue. shutdown() (never close(): the descriptor stays
 * libmicrohttpd's, and its record exists until the CLOSED notification,
 * under the same lock) makes the next read see end-of-file, and
 * libmicrohttpd closes the connection and frees its slot.
 */
static void *reaper_main(void *arg)
{
	rt_http *srv = arg;
	struct timespec until;
	unsigned long reaped = 0, logged = 0;

	pthread_mutex_lock(&srv->conn_mu);
	while (!srv->reaper_stop) {
		int64_t now = mono_ms();
		conn_rec *cr;

		for (cr = srv->conns; cr; cr = cr->next)
			if (!cr->reaped && cr->head_due_ms && now >= cr->head_due_ms) {
				shutdown(cr->fd, SHUT_RDWR);
				cr->reaped = true;
				reaped++;
				rt_metrics_inc(RT_M_HTTP_HEAD_TIMEOUTS);
			}
		if (reaped != logged) {
			art_buf b = ART_BUF_INIT;
			int rc = log_open(&b, "warn", "http_head_timeout",
					  "connections closed: no complete request head in time");

			if (rc == 0)
				rc = art_buf_printf(&b, ",\"closed\":%lu,\"header_timeout_s\":%u",
						    reaped - logged, srv->header_timeout_s);
			logged = reaped;
			pthread_mutex_unlock(&srv->conn_mu);
			log_emit(srv->log, &b, rc);
			pthread_mutex_lock(&srv->conn_mu);
		}
		pthread_mutex_unlock(&srv->conn_mu);
		pthread_mutex_lock(&srv->log_mu);
		log_flush_dropped(srv);
		pthread_mutex_unlock(&srv->log_mu);
		pthread_mutex_lock(&srv->conn_mu);
		if (srv->reaper_stop)
			break;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += REAPER_PERIOD_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&srv->reaper_cv, &srv->conn_mu, &until);
	}
	pthread_mutex_unlock(&srv->conn_mu);
	return NULL;
}

/* Decodes %XX like libmicrohttpd, and remembers a decoded NUL: the handler
 * would otherwise see (and log) the path cut short at it. */
static size_t unescape_uri(void *cls, struct MHD_Connection *c, char *uri)
{
	const char *p;

	(void)cls;
	for (p = uri; (p = strchr(p, '%')) != NULL; p++)
		if (p[1] == '0' && p[2] == '0') {
			conn_rec *cr = conn_of(c);

			if (cr)
				atomic_store(&cr->nul_in_uri, true);
			break;
		}
	return MHD_http_unescape(uri);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	rt_http *srv = cls;
	request *r = *con_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			struct MHD_Response *resp = MHD_create_response_from_buffer(
				sizeof(OOM_BODY) - 1, (void *)OOM_BODY, MHD_RESPMEM_PERSISTENT);
			enum MHD_Result ret;
			if (!resp)
				return MHD_NO;
			ret = MHD_queue_response(c, 503, resp);
			MHD_destroy_response(resp);
			return ret;
		}
		*con_cls = r;
		atomic_fetch_add(&srv->in_flight, 1);
		request_init(r, srv, c, url, method);
		r->url_seen = url;
		{
			conn_rec *cr = conn_of(c);

			if (cr) {
				head_received(srv, cr);
				r->nul_in_uri = atomic_exchange(&cr->nul_in_uri, false);
			}
		}
		match_route(r, url);
		span_begin(r, c);
		return first_call(r, c);
	}
	if (r->responded) { /* should not happen: ignore any further data */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		r->received += n;
		*upload_data_size = 0;
		if (r->route != ROUTE_INVOKE) /* a GET with a body: not ours to read */
			r->too_large = r->received > srv->max_body;
		else if (!r->too_large && !r->body_oom) {
			int rc = art_buf_append(&r->body, upload_data, n);
			if (rc == AF_ENOMEM) /* within the cap: 503, the client may retry */
				r->body_oom = true;
			else if (rc < 0) /* past the cap */
				r->too_large = true;
			if (rc < 0)
				art_buf_free(&r->body);
		}
		if (r->too_large && r->received > srv->max_body + DRAIN_MAX)
			return MHD_NO; /* keeps sending: drop the connection */
		return MHD_YES;
	}
	if (r->body_oom)
		return respond_error(r, c, 503, RT_HTTP_E_UNAVAILABLE, "out of memory");
	if (r->too_large)
		return respond_error(r, c, 413, RT_HTTP_E_TOO_LARGE,
				     "the body is larger than the limit of %zu bytes", srv->max_body);
	return dispatch(r, c);
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK:
		return NULL;
	case MHD_REQUEST_TERMINATED_WITH_ERROR:
		return "error";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
		return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
		return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR:
		return "read_error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
		return "client_abort";
	default:
		return "other";
	}
}

/* Writes the summary of access-log lines left out since the last one: one
 * line per status, with the count. Called by the reaper (each quarter second)
 * and when a new second starts. Caller holds log_mu. */
static void log_flush_dropped(rt_http *srv)
{
	unsigned i;

	for (i = 0; i < 100; i++) {
		art_buf b = ART_BUF_INIT;
		int rc;

		if (!srv->log_dropped[i])
			continue;
		rc = log_open(&b, "warn", "http_requests_suppressed",
			      "access-log lines of refused requests left out (rate limit)");
		if (rc == 0)
			rc = art_buf_printf(&b, ",\"status\":%u,\"suppressed\":%lu,\"limit_per_s\":%u",
					    400 + i, srv->log_dropped[i], LOG_REFUSED_PER_S);
		log_emit(srv->log, &b, rc);
		srv->log_dropped[i] = 0;
	}
}

/* May the access-log line of a request answered status be written? Every
 * line of an answer below 400 or of 500 and above is; refused requests (4xx,
 * what a flood of bad requests produces) at most LOG_REFUSED_PER_S a second
 * per status, the rest counted (agentfactory_http_responses_total still
 * counts each). */
static bool log_allowed(rt_http *srv, int status)
{
	int64_t now = mono_ms() / 1000;
	bool ok;

	if (status < 400 || status >= 500)
		return true;
	pthread_mutex_lock(&srv->log_mu);
	if (now != srv->log_window) {
		log_flush_dropped(srv);
		memset(srv->log_lines, 0, sizeof(srv->log_lines));
		srv->log_window = now;
	}
	ok = srv->log_lines[status - 400] < LOG_REFUSED_PER_S;
	if (ok)
		srv->log_lines[status - 400]++;
	else
		srv->log_dropped[status - 400]++;
	pthread_mutex_unlock(&srv->log_mu);
	return ok;
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	rt_http *srv = cls;
	request *r = *con_cls;
	art_buf b = ART_BUF_INIT;
	const char *term = termination_name(toe);
	char summary[256];
	int rc;

	if (c && conn_of(c))
		head_expected(srv, conn_of(c));
	if (!r)
		return;
	*con_cls = NULL;
	if (!log_allowed(srv, r->status))
		goto done;
	snprintf(summary, sizeof(summary), "%s %.*s %d", r->method, 200, r->path, r->status);
	rc = log_open(&b, r->status >= 500 || (term && !r->responded) ? "warn" : "info",
		      "http_request", summary);
	if (rc == 0)
		rc = art_buf_puts(&b, ",\"request_id\":");
	if (rc == 0)
		rc = json_cstr(&b, r->id);
	if (rc == 0)
		rc = art_buf_puts(&b, ",\"method\":");
	if (rc == 0)
		rc = json_cstr(&b, r->method);
	if (rc == 0)
		rc = art_buf_puts(&b, ",\"path\":");
	if (rc == 0)
		rc = json_cstr(&b, r->path);
	if (rc == 0)
		rc = art_buf_printf(&b, ",\"status\":%d,\"bytes_in\":%zu,\"bytes_out\":%zu,\"ms\":%.3f",
				    r->status, r->received, r->bytes_out,
				    seconds_since(&r->start) * 1e3);
	if (rc == 0 && r->code) {
		rc = art_buf_puts(&b, ",\"code\":");
		if (rc == 0)
			rc = json_cstr(&b, r->code);
	}
	if (rc == 0) {
		char tid[33], sid[17];

		rt_trace_id_hex(&r->span.ctx, tid);
		rt_trace_span_hex(&r->span.ctx, sid);
		rc = art_buf_printf(&b, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"", tid, sid);
	}
	if (rc == 0 && r->name[0]) {
		rc = art_buf_puts(&b, ",\"agent\":");
		if (rc == 0)
			rc = json_cstr(&b, r->name);
	}
	if (rc == 0 && r->has_version) {
		rc = art_buf_puts(&b, ",\"version\":");
		if (rc == 0)
			rc = json_cstr(&b, r->version);
	}
	if (rc == 0 && r->token_name) {
		rc = art_buf_printf(&b, ",\"role\":\"%s\",\"token\":", rt_role_name(r->role));
		if (rc == 0)
			rc = json_cstr(&b, r->token_name);
	}
	if (rc == 0 && r->remote[0]) {
		rc = art_buf_puts(&b, ",\"remote\":");
		if (rc == 0)
			rc = json_cstr(&b, r->remote);
	}
	if (rc == 0 && term)
		rc = art_buf_printf(&b, ",\"terminated\":\"%s\"", term);
	log_emit(srv->log, &b, rc);
done:
	if (term && !r->responded)
		rt_span_set_error(&r->span, term);
	rt_span_end(&r->span);
	art_buf_free(&r->body);
	free(r);
	atomic_fetch_sub(&srv->in_flight, 1);
}

/* --------------------------------------------------------------------------
 * Start and stop
 */

static void pool_stop(invoke_pool *p)
{
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* Workers finish what is queued (each invocation is bounded by the
	 * engine's deadline) and resume its connection, then exit. */
	for (i = 0; i < p->started; i++)
		pthread_join(p->workers[i], NULL);
	free(p->workers);
	free(p->ring);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

static int pool_start(invoke_pool *p, unsigned workers, unsigned queue)
{
	pthread_attr_t attr;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->cap = queue;
	p->nworkers = workers;
	p->ring = calloc(queue, sizeof(*p->ring));
	p->workers = calloc(workers, sizeof(*p->workers));
	if (!p->ring || !p->workers)
		return art_error_set(AF_ENOMEM, "out of memory");
	/* Guests run on their own (sandbox) stacks; 1 MiB is plenty for the host side. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, (size_t)1 << 20);
	for (p->started = 0; p->started < workers; p->started++)
		if (pthread_create(&p->workers[p->started], &attr, invoke_worker, p) != 0)
			break;
	pthread_attr_destroy(&attr);
	if (p->started == 0)
		return art_error_set(AF_EIO, "cannot start invocation workers: %s", strerror(errno));
	return 0;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n * 2 < 4 ? 4 : (unsigned)(n * 2);
}

int rt_http_start(rt_http **out, rt_engine *engine, const rt_http_opts *opts)
{
	rt_http *srv = NULL;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const union MHD_DaemonInfo *info;
	unsigned flags, max_conn, idle, per_ip;
	const char *where;
	char host[INET6_ADDRSTRLEN];
	int rc;

	*out = NULL;
	where = opts && opts->listen ? opts->listen : DEFAULT_LISTEN;
	rc = rt_http_parse_listen(where, &addr, &addr_len);
	if (rc < 0)
		return rc;
	if (!(opts && opts->tokens) && !rt_http_is_loopback((struct sockaddr *)&addr))
		return art_error_set(AF_EDENIED,
				     "refusing to listen on %s without bearer tokens: without a "
				     "tokens file only a loopback address (127.0.0.1, [::1]) may be "
				     "used",
				     where);
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return art_error_set(AF_ENOMEM, "out of memory");
	srv->engine = engine;
	srv->tokens = opts ? opts->tokens : NULL;
	srv->max_body = opts && opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
	srv->log = opts && opts->log ? opts->log : stderr;
	srv->threads = opts && opts->threads ? opts->threads : default_threads();
	max_conn = opts && opts->max_connections ? opts->max_connections : DEFAULT_MAX_CONNECTIONS;
	idle = opts && opts->idle_timeout_s ? opts->idle_timeout_s : DEFAULT_IDLE_TIMEOUT_S;
	per_ip = opts && opts->max_per_ip ? opts->max_per_ip : DEFAULT_MAX_PER_IP;
	if (per_ip == RT_HTTP_UNLIMITED)
		per_ip = 0; /* libmicrohttpd: 0 = no per-address limit */
	srv->header_timeout_s = opts && opts->header_timeout_s ? opts->header_timeout_s
							       : DEFAULT_HEADER_TIMEOUT_S;
	pthread_mutex_init(&srv->conn_mu, NULL);
	pthread_mutex_init(&srv->log_mu, NULL);
	pthread_cond_init(&srv->reaper_cv, NULL);
	if (RAND_bytes((unsigned char *)&srv->id_prefix, sizeof(srv->id_prefix)) != 1)
		srv->id_prefix = (uint32_t)getpid() ^ (uint32_t)time(NULL);

	rc = pool_start(&srv->pool, opts && opts->workers ? opts->workers : DEFAULT_WORKERS,
			opts && opts->queue ? opts->queue : DEFAULT_QUEUE);
	if (rc < 0)
		goto cleanup;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC |
		MHD_ALLOW_SUSPEND_RESUME;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	srv->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, access_handler, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, srv, /* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, srv->threads > 1 ? srv->threads : 0u,
		MHD_OPTION_CONNECTION_LIMIT, max_conn,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, idle,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, srv,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape_uri, srv,
		MHD_OPTION_END);
	if (!srv->daemon) {
		rc = art_error_set(AF_EIO, "cannot listen on %s: %s", where,
				   srv->start_error[0] ? srv->start_error : strerror(errno));
		goto cleanup;
	}
	if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
		MHD_stop_daemon(srv->daemon);
		rc = art_error_set(AF_ENOMEM, "cannot start the connection reaper thread");
		goto cleanup;
	}
	srv->reaper_started = true;
	atomic_store(&srv->started, true);
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : 0;
	if (addr.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, host, sizeof(host));
		snprintf(srv->address, sizeof(srv->address), "[%s]:%u", host, srv->port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, host, sizeof(host));
		snprintf(srv->address, sizeof(srv->address), "%s:%u", host, srv->port);
	}
	*out = srv;
	srv = NULL;
cleanup:
	if (srv) {
		pool_stop(&srv->pool);
		pthread_mutex_destroy(&srv->conn_mu);
		pthread_mutex_destroy(&srv->log_mu);
		pthread_cond_destroy(&srv->reaper_cv);
		free(srv);
	}
	return rc;
}

const char *rt_http_address(const rt_http *h)
{
	return h ? h->address : "";
}

uint16_t rt_http_port(const rt_http *h)
{
	return h ? h->port : 0;
}

unsigned rt_http_in_flight(const rt_http *h)
{
	return h ? atomic_load(&((rt_http *)h)->in_flight) : 0;
}

unsigned rt_http_stop(rt_http *h, unsigned grace_ms)
{
	MHD_socket fd;
	struct timespec t0, pause = {0, 5 * 1000 * 1000};
	unsigned left;
	art_buf b = ART_BUF_INIT;
	int rc;

	if (!h)
		return 0;
	atomic_store(&h->draining, true);
	fd = MHD_quiesce_daemon(h->daemon);
	/* libmicrohttpd no longer polls the socket, but it stays bound until
	 * MHD_stop_daemon: shut it down now so new connections are refused at
	 * once rather than left waiting in the backlog. */
	if (fd != MHD_INVALID_SOCKET)
		shutdown(fd, SHUT_RDWR);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&h->in_flight) > 0 && seconds_since(&t0) * 1e3 < grace_ms)
		nanosleep(&pause, NULL);
	left = atomic_load(&h->in_flight);
	/* No connection may stay suspended when the daemon stops: the workers
	 * finish (and resume) everything queued first. */
	pool_stop(&h->pool);
	MHD_stop_daemon(h->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	if (h->reaper_started) {
		pthread_mutex_lock(&h->conn_mu);
		h->reaper_stop = true;
		pthread_cond_signal(&h->reaper_cv);
		pthread_mutex_unlock(&h->conn_mu);
		pthread_join(h->reaper, NULL);
	}
	pthread_mutex_lock(&h->log_mu);
	log_flush_dropped(h); /* what is left of the last second */
	pthread_mutex_unlock(&h->log_mu);
	pthread_mutex_destroy(&h->log_mu);
	pthread_mutex_destroy(&h->conn_mu);
	pthread_cond_destroy(&h->reaper_cv);
	rc = log_open(&b, left ? "warn" : "info", "http_stopped",
		      left ? "stopped; requests still running were cut" : "stopped");
	if (rc == 0)
		rc = art_buf_printf(&b, ",\"abandoned_requests\":%u", left);
	log_emit(h->log, &b, rc);
	free(h);
	return left;
}
