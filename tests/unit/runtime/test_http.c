/*
 * test_http.c - the HTTP layer against a real libmicrohttpd server on a free
 * loopback port, with a scripted engine standing in for the real one (this
 * file defines the rt_engine_* functions, so the linker never pulls the real
 * engine in): routing, 404/405 with Allow, bearer tokens and the role matrix
 * (401 with WWW-Authenticate, 403), body checks before the body is read
 * (413 by Content-Length, 415), chunked bodies past the cap, invalid JSON,
 * mapping of engine answers and errors, request ids, the access log,
 * /metrics, draining on stop, and listen-address rules.
 *
 * The client is a few lines of socket code speaking HTTP/1.1 with
 * "Connection: close", so each request sees exactly what a client would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/util.h"
#include "rt/engine.h"
#include "rt/http.h"
#include "rt/metrics.h"
#include "rt/tokens.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* --------------------------------------------------------------------------
 * A scripted engine. Agents:
 *   echo     ok; answers {"ok":true,"output":<request>}
 *   broken   refused (signature); describe and invoke refuse it
 *   failing  ok in the list; invoke answers 504 timeout without a body
 *   hold     ok; invoke waits on `release` (to test concurrency and draining)
 *   nomem    invoke returns AF_ENOMEM
 */
struct rt_engine {
	int unused;
};

static rt_engine the_engine;
static atomic_bool engine_ready = true;
static sem_t held, release;
static atomic_int invocations;
static char last_input[256];

int rt_engine_open(rt_engine **out, const rt_engine_opts *opts)
{
	(void)opts;
	*out = &the_engine;
	return 0;
}

void rt_engine_close(rt_engine *e)
{
	(void)e;
}

static void fill_agent(rt_agent_info *a, const char *name, bool ok, const char *reason)
{
	a->name = strdup(name);
	a->version = strdup("1.0.0");
	a->manifest_digest = strdup("sha256:0123");
	a->ok = ok;
	a->refused_reason = reason ? strdup(reason) : NULL;
}

int rt_engine_list(rt_engine *e, rt_agent_info **out, size_t *n)
{
	rt_agent_info *a = calloc(3, sizeof(*a));

	(void)e;
	if (!a)
		return AF_ENOMEM;
	fill_agent(&a[0], "broken", false, "signature: \"builder\" key does not verify");
	fill_agent(&a[1], "echo", true, NULL);
	fill_agent(&a[2], "hold", true, NULL);
	*out = a;
	*n = 3;
	return 0;
}

void rt_agent_info_free(rt_agent_info *a, size_t n)
{
	size_t i;

	for (i = 0; a && i < n; i++) {
		free(a[i].name);
		free(a[i].version);
		free(a[i].manifest_digest);
		free(a[i].refused_reason);
	}
	free(a);
}

int rt_engine_describe(rt_engine *e, const char *name, const char *version, char **out,
		       size_t *out_len)
{
	(void)e;
	*out = NULL;
	if (strcmp(name, "broken") == 0)
		return art_error_set(AF_ESIGNATURE, "broken@1.0.0 refused: signature does not verify");
	if (strcmp(name, "echo") != 0 || (version && strcmp(version, "1.0.0") != 0))
		return art_error_set(AF_ENOTFOUND, "no agent %s", name);
	*out = strdup("{\"name\":\"echo\",\"version\":\"1.0.0\"}");
	*out_len = strlen(*out);
	return 0;
}

int rt_engine_invoke(rt_engine *e, const char *name, const char *version, const char *input,
		     size_t input_len, rt_invoke_result *res)
{
	(void)e;
	(void)version;
	memset(res, 0, sizeof(*res));
	atomic_fetch_add(&invocations, 1);
	snprintf(last_input, sizeof(last_input), "%.*s", (int)input_len, input);
	if (strcmp(name, "nomem") == 0)
		return AF_ENOMEM;
	if (strcmp(name, "hold") == 0) {
		sem_post(&held);
		sem_wait(&release);
	}
	if (strcmp(name, "echo") == 0 || strcmp(name, "hold") == 0) {
		res->http_status = 200;
		res->body = malloc(input_len + 32);
		res->body_len = (size_t)snprintf(res->body, input_len + 32,
						 "{\"ok\":true,\"output\":%.*s}", (int)input_len, input);
		res->instantiate_seconds = 2e-6;
		res->invoke_seconds = 1e-5;
		return 0;
	}
	if (strcmp(name, "odd-status") == 0) { /* outside 200..599, with an error code */
		res->http_status = 42;
		res->error_code = "odd";
		return 0;
	}
	if (strcmp(name, "no-status") == 0) { /* a body, no status: taken as 200 */
		res->body = strdup("{\"ok\":true}");
		res->body_len = strlen(res->body);
		return 0;
	}
	if (strcmp(name, "empty") == 0) { /* neither a body nor an error */
		res->http_status = 200;
		return 0;
	}
	if (strcmp(name, "failing") == 0) {
		res->http_status = 504;
		res->error_code = "timeout";
		res->error_message = strdup("stopped at the 10 ms deadline");
		return 0;
	}
	if (strcmp(name, "broken") == 0) {
		static const char body[] =
			"{\"error\":{\"code\":\"agent_refused\",\"message\":\"signature\"}}";
		res->http_status = 503;
		res->error_code = "agent_refused";
		res->body = strdup(body);
		res->body_len = sizeof(body) - 1;
		return 0;
	}
	res->http_status = 404;
	res->error_code = "not_found";
	res->error_message = strdup("no such agent");
	return 0;
}

void rt_invoke_result_clear(rt_invoke_result *res)
{
	if (!res)
		return;
	free(res->error_message);
	free(res->body);
	memset(res, 0, sizeof(*res));
}

bool rt_engine_ready(const rt_engine *e)
{
	(void)e;
	return atomic_load(&engine_ready);
}

/* The channel state the fake engine reports (RT_CHANNEL_OFF by default). */
static rt_engine_status fake_status;

int rt_engine_status_get(rt_engine *e, rt_engine_status *out)
{
	(void)e;
	*out = fake_status;
	return 0;
}

int rt_engine_stats_get(rt_engine *e, rt_engine_stats *out)
{
	(void)e;
	memset(out, 0, sizeof(*out));
	out->agents_served = 2;
	out->agents_refused = 1;
	return 0;
}

const char *rt_channel_state_name(rt_channel_state s)
{
	static const char *const names[] = {"off", "ok", "no_release", "expired"};

	return (unsigned)s < 4 ? names[s] : "off";
}

/* --------------------------------------------------------------------------
 * Fixture: a server with tokens (read, invoke, admin), logging to a file.
 */

typedef struct fixture {
	rt_http *http;
	rt_tokens *tokens;
	FILE *log;
	char log_path[64];
	uint16_t port;
} fixture;

typedef struct response {
	int status;
	char head[8192];
	char *body;
	size_t body_len;
} response;

static int start_server(void **state, bool with_tokens, size_t max_body)
{
	fixture *f = calloc(1, sizeof(*f));
	char text[512], h1[RT_TOKEN_HASH_LEN], h2[RT_TOKEN_HASH_LEN], h3[RT_TOKEN_HASH_LEN];
	rt_http_opts o;
	int fd;

	assert_non_null(f);
	rt_metrics_reset();
	atomic_store(&engine_ready, true);
	if (with_tokens) {
		rt_token_hash(h1, "tok-read", 8);
		rt_token_hash(h2, "tok-invoke", 10);
		rt_token_hash(h3, "tok-admin", 9);
		snprintf(text, sizeof(text), "%s read grafana\n%s invoke ci\n%s admin ops\n", h1, h2,
			 h3);
		assert_int_equal(rt_tokens_parse(&f->tokens, text, strlen(text), "t"), 0);
	}
	snprintf(f->log_path, sizeof(f->log_path), "/tmp/test-http-log-XXXXXX");
	fd = mkstemp(f->log_path);
	assert_true(fd >= 0);
	f->log = fdopen(fd, "w+");
	assert_non_null(f->log);
	memset(&o, 0, sizeof(o));
	o.listen = "127.0.0.1:0";
	o.tokens = f->tokens;
	o.max_body = max_body;
	o.threads = 4;
	o.log = f->log;
	if (rt_http_start(&f->http, &the_engine, &o) != 0)
		fail_msg("start: %s", art_error_last());
	f->port = rt_http_port(f->http);
	assert_true(f->port > 0);
	*state = f;
	return 0;
}

static int setup_tokens(void **state)
{
	return start_server(state, true, 1024);
}

static int setup_open(void **state)
{
	return start_server(state, false, 1024);
}

static int teardown(void **state)
{
	fixture *f = *state;

	if (f->http)
		assert_int_equal(rt_http_stop(f->http, 2000), 0);
	rt_tokens_free(f->tokens);
	fclose(f->log);
	unlink(f->log_path);
	free(f);
	return 0;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in a;
	struct timeval tv = {10, 0};
	int s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(s);
		return -1;
	}
	return s;
}

static void send_all(int s, const char *data, size_t len)
{
	while (len) {
		ssize_t w = send(s, data, len, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the server may close early (413): the answer tells */
		data += w;
		len -= (size_t)w;
	}
}

/* Read the whole response (the server closes: we asked for it). */
static void read_response(int s, response *r)
{
	char *buf = NULL, *sep;
	size_t len = 0, cap = 0;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = recv(s, buf + len, cap - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	assert_non_null(buf);
	buf[len] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (!sep)
		fail_msg("no complete response: \"%s\"", buf);
	assert_true((size_t)(sep - buf) < sizeof(r->head));
	memcpy(r->head, buf, (size_t)(sep - buf));
	r->head[sep - buf] = '\0';
	assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &r->status), 1);
	r->body_len = len - (size_t)(sep + 4 - buf);
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, sep + 4, r->body_len);
	r->body[r->body_len] = '\0';
	free(buf);
}

/* One request; extra_headers end with \r\n each (or ""). body may be NULL. */
static void http(fixture *f, const char *method, const char *path, const char *extra_headers,
		 const char *body, response *r)
{
	size_t cap = strlen(path) + strlen(extra_headers) + 256;
	char *head = malloc(cap);
	int s = connect_to(f->port), n;

	assert_true(s >= 0);
	assert_non_null(head);
	if (body)
		n = snprintf(head, cap,
			     "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
			     "Content-Length: %zu\r\n\r\n",
			     method, path, extra_headers, strlen(body));
	else
		n = snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n",
			     method, path, extra_headers);
	send_all(s, head, (size_t)n);
	free(head);
	if (body)
		send_all(s, body, strlen(body));
	read_response(s, r);
	close(s);
}

#define JSON_CT "Content-Type: application/json\r\n"
#define AUTH_READ "Authorization: Bearer tok-read\r\n"
#define AUTH_INVOKE "Authorization: Bearer tok-invoke\r\n"
#define AUTH_ADMIN "Authorization: Bearer tok-admin\r\n"

/* The value of a response header (case-insensitive name), "" if absent. */
static const char *header(const response *r, const char *name, char *out, size_t n)
{
	const char *p = r->head;
	size_t nl = strlen(name);

	out[0] = '\0';
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *end = strstr(v, "\r\n");
			size_t len;
			while (*v == ' ')
				v++;
			len = end ? (size_t)(end - v) : strlen(v);
			if (len >= n)
				len = n - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			break;
		}
	}
	return out;
}

static void expect_error(const response *r, int status, const char *code)
{
	char want[128];

	if (r->status != status)
		fail_msg("status %d, want %d: %s", r->status, status, r->body);
	snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
	if (strncmp(r->body, want, strlen(want)) != 0)
		fail_msg("body %s does not start with %s", r->body, want);
	if (!strstr(r->head, "Content-Type: application/json"))
		fail_msg("error without a JSON content type:\n%s", r->head);
}

static void done(response *r)
{
	free(r->body);
	r->body = NULL;
}

/* --------------------------------------------------------------------------
 * Tests
 */

static void test_http__health_and_ready_need_no_token(void **state)
{
	fixture *f = *state;
	response r;

	http(f, "GET", "/healthz", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	done(&r);
	http(f, "GET", "/readyz", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ready\"}");
	done(&r);
	atomic_store(&engine_ready, false);
	http(f, "GET", "/readyz", "", NULL, &r);
	expect_error(&r, 503, "not_ready");
	done(&r);
	http(f, "HEAD", "/healthz", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	done(&r);
}

/* A decoded NUL is refused, never served or logged as the path cut at it. */
static void test_http__encoded_nul_in_the_uri_is_400(void **state)
{
	static const char *const paths[] = {"/metrics%00junk", "/healthz%00", "/%00",
					    "/v1/agents/echo%00x", "/healthz?x=%00",
					    "/readyz?%00=1"};
	fixture *f = *state;
	char line[4096];
	size_t i;
	response r;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		http(f, "GET", paths[i], AUTH_ADMIN, NULL, &r);
		if (r.status != 400)
			fail_msg("%s: status %d, want 400: %s", paths[i], r.status, r.body);
		expect_error(&r, 400, "invalid_request");
		assert_non_null(strstr(r.body, "%00"));
		done(&r);
	}
	/* The next request on a fresh connection is not affected. */
	http(f, "GET", "/metrics", AUTH_ADMIN, NULL, &r);
	assert_int_equal(r.status, 200);
	done(&r);
	/* The access log shows /metrics answered 200 at most once (the request
	 * above), never for the NUL path. */
	fflush(f->log);
	{
		FILE *fp = fopen(f->log_path, "r");
		int served = 0;

		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp))
			served += strstr(line, "\"path\":\"/metrics\"") && strstr(line, "\"status\":200");
		fclose(fp);
		assert_true(served <= 1);
	}
}

/* Oversized request heads get the JSON error body every other error has. */
static void test_http__oversized_uri_and_headers_are_json(void **state)
{
	fixture *f = *state;
	size_t sizes[] = {9000, 60000, 120000}, i;
	char *big = malloc(120000 + 64);
	response r;

	assert_non_null(big);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* a URI over the 8 KiB limit */
		memcpy(big, "/healthz?x=", 11);
		memset(big + 11, 'a', sizes[i]);
		big[11 + sizes[i]] = '\0';
		http(f, "GET", big, "", NULL, &r);
		expect_error(&r, 414, "uri_too_long");
		done(&r);
		/* headers over the 16 KiB limit */
		memcpy(big, "X-Big: ", 7);
		memset(big + 7, 'b', sizes[i] * 2 > 120000 ? 120000 : sizes[i] * 2);
		memcpy(big + 7 + (sizes[i] * 2 > 120000 ? 120000 : sizes[i] * 2), "\r\n", 3);
		http(f, "GET", "/healthz", big, NULL, &r);
		expect_error(&r, 431, "headers_too_large");
		done(&r);
	}
	free(big);
	/* Many small headers add up the same way. */
	{
		char *many = malloc(2000 * 16 + 1), *p;
		int k;

		assert_non_null(many);
		for (p = many, k = 0; k < 2000; k++)
			p += snprintf(p, 17, "X-H%05d: vvvv\r\n", k);
		http(f, "GET", "/healthz", many, NULL, &r);
		expect_error(&r, 431, "headers_too_large");
		done(&r);
		free(many);
	}
}

/* A chunk size no body can have, or a malformed one, is refused at once
 * (not waited for) with the JSON error body. */
static void test_http__absurd_chunk_size_is_refused(void **state)
{
	static const char *const sizes[] = {"ffffffffffffffff", "fffffffffffffffff0", "7fffffffffffffff",
					    "100000000", "zz", "-1", "7\r\n{\"a\":1}\r\n0"};
	fixture *f = *state;
	response r;
	size_t i;
	int s;

	atomic_store(&invocations, 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char req[512];
		int n = snprintf(req, sizeof(req),
				 "POST /v1/agents/echo/invoke HTTP/1.1\r\nHost: t\r\n"
				 "Connection: close\r\n" AUTH_INVOKE JSON_CT
				 "Transfer-Encoding: chunked\r\n\r\n%s\r\n{\"a\":1}", sizes[i]);

		s = connect_to(f->port);
		assert_true(s >= 0);
		send_all(s, req, (size_t)n);
		read_response(s, &r); /* the socket times out after 10 s: a hang fails here */
		close(s);
		expect_error(&r, 411, "length_required");
		done(&r);
	}
	assert_int_equal(atomic_load(&invocations), 0);
}

/* A flood of refused requests does not flood the log: per status, at most
 * 20 access-log lines a second, the rest counted in summary lines; every
 * request is accounted for (lines + suppressed = requests). */
static void test_http__refused_request_log_is_rate_limited(void **state)
{
	enum { N = 600 };
	fixture *f = *state;
	char line[4096];
	unsigned long lines = 0, suppressed = 0;
	response r;
	int i, tries;

	for (i = 0; i < N; i++) {
		http(f, "GET", "/no-such-route", "", NULL, &r);
		assert_int_equal(r.status, 404);
		done(&r);
	}
	/* The summaries are written within a quarter second or so. */
	for (tries = 0; tries < 200; tries++) {
		FILE *fp;

		fflush(f->log);
		fp = fopen(f->log_path, "r");
		assert_non_null(fp);
		lines = suppressed = 0;
		while (fgets(line, sizeof(line), fp)) {
			const char *p;

			if (strstr(line, "\"event\":\"http_request\"") && strstr(line, "\"status\":404"))
				lines++;
			if (strstr(line, "\"event\":\"http_requests_suppressed\"") &&
			    strstr(line, "\"status\":404") && (p = strstr(line, "\"suppressed\":")))
				suppressed += strtoul(p + 13, NULL, 10);
		}
		fclose(fp);
		if (lines + suppressed == N)
			break;
		usleep(50 * 1000);
	}
	print_message("%d refused requests: %lu log lines, %lu counted in summaries\n", N, lines,
		      suppressed);
	assert_int_equal(lines + suppressed, N);
	assert_true(suppressed > 0);
	assert_true(lines < N);
}

static void test_http__unknown_routes_are_404_and_wrong_methods_405_with_allow(void **state)
{
	fixture *f = *state;
	char v[64];
	response r;

	http(f, "GET", "/nope", AUTH_ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	http(f, "GET", "/v1/agents/", AUTH_ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	http(f, "GET", "/v1/agents/echo/invoke/more", AUTH_ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	/* not a possible agent name: 404 before the engine is asked */
	http(f, "GET", "/v1/agents/Echo", AUTH_ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	/* even without a token, a route that does not exist is 404 */
	http(f, "GET", "/admin", "", NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);

	http(f, "DELETE", "/v1/agents", AUTH_ADMIN, NULL, &r);
	expect_error(&r, 405, "method_not_allowed");
	assert_string_equal(header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
	done(&r);
	http(f, "GET", "/v1/agents/echo/invoke", AUTH_ADMIN, NULL, &r);
	expect_error(&r, 405, "method_not_allowed");
	assert_string_equal(header(&r, "Allow", v, sizeof(v)), "POST");
	done(&r);
	http(f, "POST", "/metrics", AUTH_ADMIN, "{}", &r);
	expect_error(&r, 405, "method_not_allowed");
	done(&r);
}

static void test_http__missing_or_bad_token_is_401_with_www_authenticate(void **state)
{
	fixture *f = *state;
	char v[128];
	response r;

	http(f, "GET", "/v1/agents", "", NULL, &r);
	expect_error(&r, 401, "unauthorized");
	assert_string_equal(header(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer realm=\"agentfactory\"");
	done(&r);
	http(f, "GET", "/v1/agents", "Authorization: Bearer tok-wrong\r\n", NULL, &r);
	expect_error(&r, 401, "unauthorized");
	assert_non_null(strstr(header(&r, "WWW-Authenticate", v, sizeof(v)), "invalid_token"));
	done(&r);
	http(f, "GET", "/v1/agents", "Authorization: Basic dG9rLXJlYWQ6\r\n", NULL, &r);
	expect_error(&r, 401, "unauthorized");
	done(&r);
	/* the stored hash is not a credential */
	{
		char h[RT_TOKEN_HASH_LEN], hdr[128];
		rt_token_hash(h, "tok-admin", 9);
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", h + 7);
		http(f, "GET", "/v1/agents", hdr, NULL, &r);
		expect_error(&r, 401, "unauthorized");
		done(&r);
	}
	/* invoke without a token is refused before the engine runs */
	atomic_store(&invocations, 0);
	http(f, "POST", "/v1/agents/echo/invoke", JSON_CT, "{\"inputs\":{}}", &r);
	expect_error(&r, 401, "unauthorized");
	done(&r);
	assert_int_equal(atomic_load(&invocations), 0);
}

static void test_http__role_matrix_over_http(void **state)
{
	static const struct {
		const char *auth;
		int list, describe, invoke, metrics;
	} m[] = {
		{AUTH_READ, 200, 200, 403, 200},
		{AUTH_INVOKE, 200, 200, 200, 403},
		{AUTH_ADMIN, 200, 200, 200, 200},
	};
	fixture *f = *state;
	char hdr[256], v[128];
	response r;
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		http(f, "GET", "/v1/agents", m[i].auth, NULL, &r);
		assert_int_equal(r.status, m[i].list);
		done(&r);
		http(f, "GET", "/v1/agents/echo", m[i].auth, NULL, &r);
		assert_int_equal(r.status, m[i].describe);
		done(&r);
		snprintf(hdr, sizeof(hdr), "%s%s", m[i].auth, JSON_CT);
		http(f, "POST", "/v1/agents/echo/invoke", hdr, "{\"inputs\":{}}", &r);
		assert_int_equal(r.status, m[i].invoke);
		if (r.status == 403) {
			expect_error(&r, 403, "forbidden");
			assert_non_null(strstr(r.body, "role \\\"read\\\" may not invoke"));
			assert_non_null(strstr(header(&r, "WWW-Authenticate", v, sizeof(v)),
					       "insufficient_scope"));
		}
		done(&r);
		http(f, "GET", "/metrics", m[i].auth, NULL, &r);
		assert_int_equal(r.status, m[i].metrics);
		done(&r);
	}
}

static void test_http__list_shows_ok_and_refused_agents(void **state)
{
	fixture *f = *state;
	response r;

	http(f, "GET", "/v1/agents", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "{\"name\":\"echo\",\"version\":\"1.0.0\",\"manifest_digest\":"
				       "\"sha256:0123\",\"status\":\"ok\"}"));
	assert_non_null(strstr(r.body, "\"name\":\"broken\""));
	assert_non_null(strstr(r.body, "\"status\":\"refused\",\"reason\":\"signature: \\\"builder\\\" "
				       "key does not verify\"}"));
	assert_non_null(strstr(r.body, "\"count\":3,\"ok\":2,\"refused\":1}"));
	done(&r);
}

static void test_http__list_and_readyz_show_the_channel(void **state)
{
	fixture *f = *state;
	response r;

	memset(&fake_status, 0, sizeof(fake_status));
	fake_status.state = RT_CHANNEL_OK;
	snprintf(fake_status.channel, sizeof(fake_status.channel), "blue");
	fake_status.release = 7;
	fake_status.seq = 12;
	snprintf(fake_status.action, sizeof(fake_status.action), "rollback");
	fake_status.expires = 1795341600; /* 2026-11-22T10:00:00Z */
	snprintf(fake_status.release_digest, sizeof(fake_status.release_digest), "sha256:ab");
	fake_status.refused_seq = 13;
	fake_status.refused_release = 8;
	snprintf(fake_status.refused, sizeof(fake_status.refused), "release 8 expired");
	fake_status.switches = 3;
	snprintf(fake_status.keyring_sha256, sizeof(fake_status.keyring_sha256), "cd");
	http(f, "GET", "/v1/agents", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"count\":3,\"ok\":2,\"refused\":1,\"release\":7,"
				       "\"channel\":{\"name\":\"blue\",\"status\":\"ok\",\"release\":7,"
				       "\"seq\":12,\"action\":\"rollback\",\"expires\":"
				       "\"2026-11-22T10:00:00Z\",\"digest\":\"sha256:ab\",\"refused\":"
				       "{\"seq\":13,\"release\":8,\"reason\":\"release 8 expired\"},"
				       "\"switches\":3,\"keyring\":\"sha256:cd\"}}"));
	done(&r);

	/* Nothing served: the list says why, /readyz too. */
	fake_status.state = RT_CHANNEL_EXPIRED;
	fake_status.release = 0;
	fake_status.refused_seq = 0;
	snprintf(fake_status.reason, sizeof(fake_status.reason), "release 7 expired at X");
	snprintf(fake_status.keyring_error, sizeof(fake_status.keyring_error), "bad \"file\"");
	atomic_store(&engine_ready, false);
	http(f, "GET", "/v1/agents", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"release\":null,\"channel\":{\"name\":\"blue\","
				       "\"status\":\"expired\",\"reason\":\"release 7 expired at X\","
				       "\"switches\":3,\"keyring\":\"sha256:cd\",\"keyring_error\":"
				       "\"bad \\\"file\\\"\"}}"));
	done(&r);
	http(f, "GET", "/readyz", "", NULL, &r);
	expect_error(&r, 503, "not_ready");
	assert_non_null(strstr(r.body, "release 7 expired at X"));
	done(&r);
	atomic_store(&engine_ready, true);
	memset(&fake_status, 0, sizeof(fake_status));
}

static void test_http__describe_maps_engine_errors(void **state)
{
	fixture *f = *state;
	response r;

	http(f, "GET", "/v1/agents/echo", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"name\":\"echo\",\"version\":\"1.0.0\"}");
	done(&r);
	http(f, "GET", "/v1/agents/echo?version=1.0.0", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	done(&r);
	http(f, "GET", "/v1/agents/echo?version=9.9.9", AUTH_READ, NULL, &r);
	expect_error(&r, 404, "not_found");
	assert_non_null(strstr(r.body, "version 9.9.9"));
	done(&r);
	http(f, "GET", "/v1/agents/echo?version=1.0.0%22%3E", AUTH_READ, NULL, &r);
	expect_error(&r, 400, "invalid_request");
	done(&r);
	http(f, "GET", "/v1/agents/no-such-agent", AUTH_READ, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	http(f, "GET", "/v1/agents/broken", AUTH_READ, NULL, &r);
	expect_error(&r, 503, "agent_refused");
	assert_non_null(strstr(r.body, "signature does not verify"));
	done(&r);
}

static void test_http__invoke_passes_json_through_with_request_id(void **state)
{
	fixture *f = *state;
	char v[128];
	response r;

	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT "X-Request-Id: abc-123\r\n",
	     "{\"inputs\":{\"release\":\"r1\"}}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"ok\":true,\"output\":{\"inputs\":{\"release\":\"r1\"}}}");
	assert_string_equal(last_input, "{\"inputs\":{\"release\":\"r1\"}}");
	assert_string_equal(header(&r, "X-Request-Id", v, sizeof(v)), "abc-123");
	assert_string_equal(header(&r, "Content-Type", v, sizeof(v)), "application/json");
	assert_non_null(strstr(header(&r, "Server-Timing", v, sizeof(v)), "instantiate;dur="));
	done(&r);
	/* a charset parameter is fine */
	http(f, "POST", "/v1/agents/echo/invoke",
	     AUTH_INVOKE "Content-Type: application/json; charset=utf-8\r\n", "{}", &r);
	assert_int_equal(r.status, 200);
	done(&r);
	/* an unusable request id is replaced by a generated one */
	http(f, "GET", "/healthz", "X-Request-Id: <script>\r\n", NULL, &r);
	header(&r, "X-Request-Id", v, sizeof(v));
	assert_true(strlen(v) > 8);
	assert_null(strchr(v, '<'));
	done(&r);
}

static void test_http__invoke_maps_engine_answers(void **state)
{
	fixture *f = *state;
	response r;

	/* an engine error without a body becomes the standard error object */
	http(f, "POST", "/v1/agents/failing/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	expect_error(&r, 504, "timeout");
	assert_non_null(strstr(r.body, "10 ms deadline"));
	done(&r);
	/* a body from the engine is passed as it is */
	http(f, "POST", "/v1/agents/broken/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	expect_error(&r, 503, "agent_refused");
	done(&r);
	http(f, "POST", "/v1/agents/unknown/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	http(f, "POST", "/v1/agents/nomem/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	expect_error(&r, 503, "unavailable");
	done(&r);
	/* the engine counts its own errors (agentfactory_errors_total): not twice */
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "timeout"), 0);
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "agent_refused"), 0);
	assert_int_equal(rt_metrics_get_label(RT_M_HTTP_STATUS, "504"), 1);
}

static void test_http__bad_bodies_are_refused_before_the_engine(void **state)
{
	fixture *f = *state;
	response r;

	/* the HTTP layer owns the media type; JSON validity is the engine's
	 * (parsed once, on the invocation worker: test_loader covers it) */
	atomic_store(&invocations, 0);
	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE "Content-Type: text/plain\r\n", "{}",
	     &r);
	expect_error(&r, 415, "unsupported_media_type");
	done(&r);
	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE, "{}", &r);
	expect_error(&r, 415, "unsupported_media_type");
	done(&r);
	assert_int_equal(atomic_load(&invocations), 0);
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "unsupported_media_type"), 2);
	/* a malformed body reaches the engine byte for byte, once */
	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT, "{\"inputs\": {", &r);
	assert_int_equal(atomic_load(&invocations), 1);
	assert_string_equal(last_input, "{\"inputs\": {");
	done(&r);
}

static void test_http__oversized_body_is_413_without_reading_it(void **state)
{
	fixture *f = *state;
	const char *head = "POST /v1/agents/echo/invoke HTTP/1.1\r\nHost: t\r\n"
			   "Connection: close\r\n" AUTH_INVOKE JSON_CT
			   "Content-Length: 1000000000\r\n\r\n";
	response r;
	int s;

	/* the limit is 1024 here: announce a gigabyte, send none of it */
	s = connect_to(f->port);
	assert_true(s >= 0);
	send_all(s, head, strlen(head));
	read_response(s, &r);
	close(s);
	expect_error(&r, 413, "payload_too_large");
	assert_non_null(strstr(r.body, "1024 bytes"));
	done(&r);
}

/* Chunked bodies are refused before libmicrohttpd decodes a chunk: 411. */
static void test_http__chunked_body_is_411(void **state)
{
	fixture *f = *state;
	char chunk[600 + 16], big[600];
	response r;
	int s, i;
	const char *head = "POST /v1/agents/echo/invoke HTTP/1.1\r\nHost: t\r\n"
			   "Connection: close\r\n" AUTH_INVOKE JSON_CT
			   "Transfer-Encoding: chunked\r\n\r\n";

	atomic_store(&invocations, 0);
	memset(big, ' ', sizeof(big));
	s = connect_to(f->port);
	assert_true(s >= 0);
	send_all(s, head, strlen(head));
	for (i = 0; i < 4; i++) { /* 2400 bytes > 1024 */
		int n = snprintf(chunk, sizeof(chunk), "%zx\r\n", sizeof(big));
		memcpy(chunk + n, big, sizeof(big));
		memcpy(chunk + n + sizeof(big), "\r\n", 2);
		send_all(s, chunk, (size_t)n + sizeof(big) + 2);
	}
	send_all(s, "0\r\n\r\n", 5);
	read_response(s, &r);
	close(s);
	expect_error(&r, 411, "length_required");
	done(&r);
	assert_int_equal(atomic_load(&invocations), 0);
}

static void test_http__body_at_the_cap_is_accepted(void **state)
{
	fixture *f = *state;
	char body[1025];
	response r;

	/* {"inputs":{"p":"xxx..."}} of exactly 1024 bytes */
	memset(body, 'x', sizeof(body));
	memcpy(body, "{\"inputs\":{\"p\":\"", 16);
	memcpy(body + 1024 - 3, "\"}}", 3);
	body[1024] = '\0';
	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT, body, &r);
	assert_int_equal(r.status, 200);
	done(&r);
}

static void test_http__metrics_text_counts_requests_and_errors(void **state)
{
	fixture *f = *state;
	char v[128];
	response r;

	http(f, "GET", "/nope", "", NULL, &r);
	done(&r);
	http(f, "GET", "/v1/agents", "", NULL, &r);
	done(&r);
	http(f, "GET", "/metrics", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Type", v, sizeof(v)),
			    "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body, "# TYPE agentfactory_http_requests_total counter"));
	assert_non_null(strstr(r.body, "agentfactory_errors_total{code=\"not_found\"} 1"));
	assert_non_null(strstr(r.body, "agentfactory_errors_total{code=\"unauthorized\"} 1"));
	assert_non_null(strstr(r.body, "agentfactory_http_responses_total{code=\"401\"} 1"));
	assert_non_null(strstr(r.body, "# TYPE agentfactory_invoke_seconds histogram"));
	assert_non_null(strstr(r.body, "# TYPE agentfactory_instantiate_seconds histogram"));
	assert_non_null(strstr(r.body, "agentfactory_http_request_seconds_count{route=\"other\",code=\"404\"} 1"));
	assert_non_null(strstr(r.body, "agentfactory_http_request_seconds_count{route=\"/v1/agents\",code=\"401\"} 1"));
	assert_null(strstr(r.body, "/nope"));
	assert_non_null(strstr(r.body, "agentfactory_build_info{version="));
	assert_non_null(strstr(r.body, "agentfactory_agents{state=\"served\"} 2\n"));
	assert_non_null(strstr(r.body, "agentfactory_invocations_in_flight 0"));
	assert_non_null(strstr(r.body, "process_open_fds "));
	done(&r);
}

static void test_http__access_log_is_json_lines_without_secrets(void **state)
{
	fixture *f = *state;
	char line[4096];
	response r;
	int lines = 0, found = 0;

	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT "X-Request-Id: log-test-1\r\n",
	     "{}", &r);
	done(&r);
	http(f, "GET", "/v1/agents/%22%0a", AUTH_READ, NULL, &r);
	done(&r);
	/* the completion callback may run just after the client saw the answer */
	for (int tries = 0; tries < 200 && rt_http_in_flight(f->http); tries++)
		usleep(5000);
	fflush(f->log);
	rewind(f->log);
	while (fgets(line, sizeof(line), f->log)) {
		json_t *j;
		json_error_t e;
		lines++;
		assert_non_null(strchr(line, '\n'));
		assert_null(strstr(line, "tok-invoke"));
		assert_null(strstr(line, "tok-read"));
		/* every line parses as JSON, whatever the path held */
		j = json_loads(line, 0, &e);
		if (!j)
			fail_msg("not JSON (%s): %s", e.text, line);
		json_decref(j);
		if (strstr(line, "\"request_id\":\"log-test-1\"")) {
			found++;
			assert_non_null(strstr(line, "\"event\":\"http_request\",\"msg\":\"POST /v1/agents/echo/invoke 200\""));
			assert_non_null(strstr(line, "\"method\":\"POST\""));
			assert_non_null(strstr(line, "\"status\":200"));
			assert_non_null(strstr(line, "\"agent\":\"echo\""));
			assert_non_null(strstr(line, "\"role\":\"invoke\",\"token\":\"ci\""));
			assert_non_null(strstr(line, "\"remote\":\"127.0.0.1\""));
		}
		if (strstr(line, "\"status\":404")) {
			found++;
			/* the decoded path's quote and newline are escaped */
			assert_non_null(strstr(line, "\"path\":\"/v1/agents/\\\"\\u000a\""));
		}
	}
	assert_int_equal(found, 2);
	assert_true(lines >= 2);
}

static void *invoke_hold(void *arg)
{
	fixture *f = arg;
	response *r = malloc(sizeof(*r));

	http(f, "POST", "/v1/agents/hold/invoke", AUTH_INVOKE JSON_CT, "{\"inputs\":{}}", r);
	return r;
}

static void test_http__a_busy_invocation_does_not_block_other_requests(void **state)
{
	fixture *f = *state;
	pthread_t t;
	response r, *held_r;

	sem_init(&held, 0, 0);
	sem_init(&release, 0, 0);
	assert_int_equal(pthread_create(&t, NULL, invoke_hold, f), 0);
	sem_wait(&held); /* the invocation is inside the engine now */
	http(f, "GET", "/healthz", "", NULL, &r);
	assert_int_equal(r.status, 200);
	done(&r);
	http(f, "POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	assert_int_equal(r.status, 200);
	done(&r);
	assert_true(rt_http_in_flight(f->http) >= 1);
	sem_post(&release);
	pthread_join(t, (void **)&held_r);
	assert_int_equal(held_r->status, 200);
	done(held_r);
	free(held_r);
	sem_destroy(&held);
	sem_destroy(&release);
}

typedef struct stopper {
	rt_http *http;
	unsigned grace, left;
} stopper;

static void *stop_thread(void *arg)
{
	stopper *s = arg;

	s->left = rt_http_stop(s->http, s->grace);
	return NULL;
}

static void test_http__stop_lets_requests_in_progress_finish(void **state)
{
	fixture *f = *state;
	pthread_t client, st;
	stopper s = {f->http, 10000, 99};
	response *held_r;
	int tries;

	sem_init(&held, 0, 0);
	sem_init(&release, 0, 0);
	assert_int_equal(pthread_create(&client, NULL, invoke_hold, f), 0);
	sem_wait(&held);
	assert_int_equal(pthread_create(&st, NULL, stop_thread, &s), 0);
	/* once draining, new connections are refused (the listener is shut) */
	for (tries = 0; tries < 400; tries++) {
		int c = connect_to(f->port);
		if (c < 0)
			break;
		close(c);
		usleep(5000);
	}
	assert_true(tries < 400);
	sem_post(&release);
	pthread_join(client, (void **)&held_r);
	pthread_join(st, NULL);
	assert_int_equal(held_r->status, 200); /* the request in progress got its answer */
	assert_non_null(strstr(held_r->head, "Connection: close"));
	assert_int_equal(s.left, 0);
	done(held_r);
	free(held_r);
	f->http = NULL; /* stopped */
	sem_destroy(&held);
	sem_destroy(&release);
}

static void test_http__no_tokens_means_no_auth_on_loopback_only(void **state)
{
	fixture *f = *state;
	rt_http *h = NULL;
	rt_http_opts o;
	response r;

	http(f, "POST", "/v1/agents/echo/invoke", JSON_CT, "{}", &r);
	assert_int_equal(r.status, 200);
	done(&r);
	http(f, "GET", "/metrics", "", NULL, &r);
	assert_int_equal(r.status, 200);
	done(&r);

	memset(&o, 0, sizeof(o));
	o.listen = "0.0.0.0:0";
	assert_int_equal(rt_http_start(&h, &the_engine, &o), AF_EDENIED);
	assert_null(h);
	assert_non_null(strstr(art_error_last(), "loopback"));
	o.listen = "192.0.2.1:8080";
	assert_int_equal(rt_http_start(&h, &the_engine, &o), AF_EDENIED);
	o.listen = "[::]:0";
	assert_int_equal(rt_http_start(&h, &the_engine, &o), AF_EDENIED);
}

static void test_http__port_in_use_is_a_clear_error(void **state)
{
	fixture *f = *state;
	rt_http *h = NULL;
	rt_http_opts o;
	char where[32];

	memset(&o, 0, sizeof(o));
	snprintf(where, sizeof(where), "127.0.0.1:%u", f->port);
	o.listen = where;
	o.log = f->log;
	assert_int_equal(rt_http_start(&h, &the_engine, &o), AF_EIO);
	assert_null(h);
	assert_non_null(strstr(art_error_last(), where));
}

static void test_http__listen_addresses(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	assert_int_equal(rt_http_parse_listen("127.0.0.1:8080", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_true(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("localhost:0", &ss, &len), 0);
	assert_true(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("127.8.9.10:1", &ss, &len), 0);
	assert_true(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("[::1]:443", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_true(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("[::ffff:127.0.0.1]:1", &ss, &len), 0);
	assert_true(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("0.0.0.0:80", &ss, &len), 0);
	assert_false(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("10.1.2.3:80", &ss, &len), 0);
	assert_false(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("[::]:80", &ss, &len), 0);
	assert_false(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_false(rt_http_is_loopback(NULL));

	assert_int_equal(rt_http_parse_listen("", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen(NULL, &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("8080", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen(":8080", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("127.0.0.1:", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("127.0.0.1:65536", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("127.0.0.1:-1", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("127.0.0.1:80x", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("example.com:80", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("::1:80", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("[::1]80", &ss, &len), AF_EINVAL);
	assert_int_equal(rt_http_parse_listen("[nope]:80", &ss, &len), AF_EINVAL);
}

/* Agent names, versions and request ids from the client are checked before
 * anything reaches the engine or the log. */
static void test_http__names_versions_and_request_ids_are_checked(void **state)
{
	static const char *const bad_names[] = {"/v1/agents/Echo", "/v1/agents/e_x",
						"/v1/agents/9lives", "/v1/agents/echo.x/invoke"};
	fixture *f = *state;
	char v[128], path[512];
	response r;
	size_t i;

	atomic_store(&invocations, 0);
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		bool invoke = strstr(bad_names[i], "/invoke") != NULL;

		http(f, invoke ? "POST" : "GET", bad_names[i], AUTH_ADMIN JSON_CT, invoke ? "{}" : NULL,
		     &r);
		expect_error(&r, 404, "not_found");
		assert_non_null(strstr(r.body, "names match ^[a-z][a-z0-9-]{0,62}$"));
		done(&r);
	}
	/* 63 characters is a name, 64 is no route at all */
	snprintf(path, sizeof(path), "/v1/agents/%s", "e123456789012345678901234567890123456789012345678901234567890ab");
	http(f, "GET", path, AUTH_READ, NULL, &r);
	expect_error(&r, 404, "not_found");
	assert_non_null(strstr(r.body, "no agent \\\"e1234"));
	done(&r);
	snprintf(path, sizeof(path), "/v1/agents/%s", "e123456789012345678901234567890123456789012345678901234567890abc");
	http(f, "GET", path, AUTH_READ, NULL, &r);
	expect_error(&r, 404, "not_found");
	assert_non_null(strstr(r.body, "no route /v1/agents/e1234"));
	done(&r);
	assert_int_equal(atomic_load(&invocations), 0);

	/* versions: a semantic version is passed on, anything else is 400 */
	http(f, "GET", "/v1/agents/echo?version=1.0.0", AUTH_READ, NULL, &r);
	assert_int_equal(r.status, 200);
	done(&r);
	http(f, "GET", "/v1/agents/echo?version=2.0.0-rc.1%2Bb7", AUTH_READ, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	http(f, "GET", "/v1/agents/echo?version=1.0%2F0", AUTH_READ, NULL, &r);
	expect_error(&r, 400, "invalid_request");
	assert_non_null(strstr(r.body, "semantic version"));
	done(&r);
	http(f, "GET", "/v1/agents/echo?version=", AUTH_READ, NULL, &r);
	expect_error(&r, 400, "invalid_request");
	done(&r);
	memset(v, 'A', sizeof(v));
	v[sizeof(v) - 1] = '\0'; /* 127 characters: fine */
	snprintf(path, sizeof(path), "/v1/agents/echo?version=%s", v);
	http(f, "GET", path, AUTH_READ, NULL, &r);
	expect_error(&r, 404, "not_found");
	done(&r);
	snprintf(path, sizeof(path), "/v1/agents/echo?version=%sBB", v); /* 129 */
	http(f, "GET", path, AUTH_READ, NULL, &r);
	expect_error(&r, 400, "invalid_request");
	done(&r);

	/* request ids: [A-Za-z0-9._:-]{1,64} is kept, anything else replaced */
	http(f, "GET", "/healthz", "X-Request-Id: Trace.01_a:b-Z\r\n", NULL, &r);
	assert_string_equal(header(&r, "X-Request-Id", v, sizeof(v)), "Trace.01_a:b-Z");
	done(&r);
	http(f, "GET", "/healthz", "X-Request-Id: a b\r\n", NULL, &r);
	assert_string_not_equal(header(&r, "X-Request-Id", v, sizeof(v)), "a b");
	assert_null(strchr(v, ' '));
	done(&r);
	http(f, "GET", "/healthz",
	     "X-Request-Id: 0123456789012345678901234567890123456789012345678901234567890123\r\n",
	     NULL, &r); /* 64: kept */
	assert_int_equal(strlen(header(&r, "X-Request-Id", v, sizeof(v))), 64);
	done(&r);
	http(f, "GET", "/healthz",
	     "X-Request-Id: 01234567890123456789012345678901234567890123456789012345678901234\r\n",
	     NULL, &r); /* 65: replaced */
	assert_true(strlen(header(&r, "X-Request-Id", v, sizeof(v))) < 64);
	assert_non_null(strchr(v, '-'));
	done(&r);
}

/* An engine answer outside the HTTP status range, or with nothing in it. */
static void test_http__odd_engine_answers_are_mapped(void **state)
{
	fixture *f = *state;
	response r;

	http(f, "POST", "/v1/agents/odd-status/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	expect_error(&r, 500, "odd");
	assert_non_null(strstr(r.body, "\"message\":\"odd\"")); /* no message: the code */
	done(&r);
	http(f, "POST", "/v1/agents/no-status/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"ok\":true}");
	done(&r);
	http(f, "POST", "/v1/agents/empty/invoke", AUTH_INVOKE JSON_CT, "{}", &r);
	expect_error(&r, 500, "internal");
	assert_non_null(strstr(r.body, "the engine returned no answer"));
	done(&r);
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "internal"), 1);
}

/* A damaged store file: not ready, and /readyz says why. */
static void test_http__readyz_reports_a_damaged_store(void **state)
{
	fixture *f = *state;
	response r;

	memset(&fake_status, 0, sizeof(fake_status));
	snprintf(fake_status.store_error, sizeof(fake_status.store_error),
		 "data.mdb is truncated (4096 of 8192 bytes)");
	atomic_store(&engine_ready, false);
	http(f, "GET", "/readyz", "", NULL, &r);
	expect_error(&r, 503, "not_ready");
	assert_non_null(strstr(r.body, "data.mdb is truncated (4096 of 8192 bytes)"));
	done(&r);
	/* not ready, no channel, no registry: nothing loaded yet */
	memset(&fake_status, 0, sizeof(fake_status));
	http(f, "GET", "/readyz", "", NULL, &r);
	expect_error(&r, 503, "not_ready");
	assert_non_null(strstr(r.body, "no verified agent is loaded yet"));
	done(&r);
	atomic_store(&engine_ready, true);
	http(f, "GET", "/readyz", "", NULL, &r);
	assert_int_equal(r.status, 200);
	done(&r);
}

/* An IPv6 loopback listener: its address, and the client's in the log. */
static void test_http__ipv6_loopback_listener(void **state)
{
	struct sockaddr_in6 a;
	struct timeval tv = {10, 0};
	rt_http *h = NULL;
	rt_http_opts o;
	FILE *log = tmpfile();
	char buf[4096], line[4096];
	ssize_t n;
	size_t len = 0;
	int s, rc;

	(void)state;
	assert_non_null(log);
	memset(&o, 0, sizeof(o));
	o.listen = "[::1]:0";
	o.log = log;
	rc = rt_http_start(&h, &the_engine, &o);
	if (rc != 0) { /* no IPv6 here (a container without ::1) */
		fclose(log);
		skip();
	}
	assert_int_equal(strncmp(rt_http_address(h), "[::1]:", 6), 0);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	assert_true(s >= 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(rt_http_port(h));
	a.sin6_addr = in6addr_loopback;
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	{
		static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

		send_all(s, req, sizeof(req) - 1);
	}
	while (len < sizeof(buf) - 1 && (n = recv(s, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(s);
	assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
	assert_int_equal(rt_http_stop(h, 2000), 0);
	rewind(log);
	rc = 0;
	while (fgets(line, sizeof(line), log))
		if (strstr(line, "\"path\":\"/healthz\"") && strstr(line, "\"remote\":\"::1\""))
			rc = 1;
	fclose(log);
	assert_int_equal(rc, 1);
}

static void test_http__more_listen_address_errors(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_un un;
	socklen_t len;
	char longer[128];

	(void)state;
	assert_int_equal(rt_http_parse_listen("[::1", &ss, &len), AF_EINVAL);
	assert_string_equal(art_error_last(), "listen address \"[::1\": expected [IPV6]:PORT");
	assert_int_equal(rt_http_parse_listen("[]:80", &ss, &len), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "bad IPv6 address"));
	memset(longer, 'a', sizeof(longer));
	memcpy(longer, "[", 1);
	memcpy(longer + 100, "]:80", 5);
	assert_int_equal(rt_http_parse_listen(longer, &ss, &len), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "bad IPv6 address"));
	memset(longer, '1', sizeof(longer));
	memcpy(longer + 100, ":80", 4);
	assert_int_equal(rt_http_parse_listen(longer, &ss, &len), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "host too long"));
	assert_int_equal(rt_http_parse_listen("127.0.0.1:+80", &ss, &len), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "port must be 0-65535"));
	assert_int_equal(rt_http_parse_listen("127.0.0.1:99999999999999999999", &ss, &len), AF_EINVAL);

	/* loopback: ::1 and v4-mapped 127/8 only */
	assert_int_equal(rt_http_parse_listen("[::ffff:10.0.0.1]:1", &ss, &len), 0);
	assert_false(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(rt_http_parse_listen("[2001:db8::1]:1", &ss, &len), 0);
	assert_false(rt_http_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(ntohs(a6->sin6_port), 1);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_false(rt_http_is_loopback((struct sockaddr *)&un));
}

static void test_http__error_mapping_of_engine_return_codes(void **state)
{
	static const struct {
		int rc, status;
		const char *code;
	} m[] = {
		{AF_ENOTFOUND, 404, "not_found"},    {AF_ESIGNATURE, 503, "agent_refused"},
		{AF_EVERSION, 503, "agent_refused"}, {AF_ECORRUPT, 503, "agent_refused"},
		{AF_ENOMEM, 503, "unavailable"},            {AF_EINVAL, 400, "invalid_request"},
		{AF_EIO, 500, "internal"},           {AF_EINTERNAL, 500, "internal"},
		{AF_EEXPIRED, 503, "release_expired"}, {AF_EDENIED, 503, "no_release"},
	};
	size_t i;
	int status;
	const char *code;

	(void)state;
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		rt_http_error_for_rc(m[i].rc, &status, &code);
		assert_int_equal(status, m[i].status);
		assert_string_equal(code, m[i].code);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_http__health_and_ready_need_no_token, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__unknown_routes_are_404_and_wrong_methods_405_with_allow, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__missing_or_bad_token_is_401_with_www_authenticate, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__role_matrix_over_http, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__list_shows_ok_and_refused_agents, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__list_and_readyz_show_the_channel, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__describe_maps_engine_errors, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__invoke_passes_json_through_with_request_id, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__invoke_maps_engine_answers, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__bad_bodies_are_refused_before_the_engine, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__oversized_body_is_413_without_reading_it, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__chunked_body_is_411, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__body_at_the_cap_is_accepted, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__metrics_text_counts_requests_and_errors, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__access_log_is_json_lines_without_secrets, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__a_busy_invocation_does_not_block_other_requests, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__stop_lets_requests_in_progress_finish, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__no_tokens_means_no_auth_on_loopback_only, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_http__port_in_use_is_a_clear_error, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_http__encoded_nul_in_the_uri_is_400, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__oversized_uri_and_headers_are_json, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__absurd_chunk_size_is_refused, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__refused_request_log_is_rate_limited, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__names_versions_and_request_ids_are_checked, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__odd_engine_answers_are_mapped, setup_tokens, teardown),
		cmocka_unit_test_setup_teardown(test_http__readyz_reports_a_damaged_store, setup_tokens, teardown),
		cmocka_unit_test(test_http__ipv6_loopback_listener),
		cmocka_unit_test(test_http__more_listen_address_errors),
		cmocka_unit_test(test_http__listen_addresses),
		cmocka_unit_test(test_http__error_mapping_of_engine_return_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
