/*
 * test_http_faults.c - the HTTP layer when allocations fail: every malloc,
 * calloc, realloc and strdup of the server (tests/unit/faultinject.h; the
 * Makefile links this binary with --wrap for them) fails in turn while a
 * server starts, answers a round of requests (every route, the error
 * answers, the access log, /metrics, spans exported over OTLP) and stops.
 * Each request must get its normal answer or a 503 "unavailable" (the
 * runtime never aborts on OOM: docs/runtime.md), never a wrong answer, a
 * dropped connection, a crash, or (under CONFIG=asan) a leak.
 *
 * A scripted engine stands in for the real one (this file defines the
 * rt_engine_* functions, as test_http.c does); its own allocations are
 * wrapped too, and it reports AF_ENOMEM when one fails. The client uses
 * only stack buffers, so every counted allocation is the server's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "faultinject.h"
#include "rt/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <time.h>

/* The collector (llm_fixture.h) is the test's: its allocations are not counted. */
#define malloc(n) __real_malloc(n)
#define calloc(n, size) __real_calloc(n, size)
#define realloc(p, n) __real_realloc(p, n)
#define strdup(s) __real_strdup(s)
#include "llm_fixture.h"
#undef malloc
#undef calloc
#undef realloc
#undef strdup

#include "art/error.h"
#include "art/util.h"
#include "rt/engine.h"
#include "rt/http.h"
#include "rt/metrics.h"
#include "rt/tokens.h"
#include "rt/trace.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* --------------------------------------------------------------------------
 * A scripted engine: "echo" answers {"ok":true,"output":<request>},
 * "failing" a 504 without a body, "broken" is refused; anything else is 404.
 */
struct rt_engine {
	int unused;
};

static rt_engine the_engine;

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

static bool fill_agent(rt_agent_info *a, const char *name, const char *reason)
{
	a->name = strdup(name);
	a->version = strdup("1.0.0");
	a->manifest_digest = strdup("sha256:0123");
	a->ok = !reason;
	a->refused_reason = reason ? strdup(reason) : NULL;
	return a->name && a->version && a->manifest_digest && (!reason || a->refused_reason);
}

int rt_engine_list(rt_engine *e, rt_agent_info **out, size_t *n)
{
	rt_agent_info *a = calloc(2, sizeof(*a));

	(void)e;
	if (!a)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!fill_agent(&a[0], "broken", "signature: \"builder\" key does not verify") ||
	    !fill_agent(&a[1], "echo", NULL)) {
		rt_agent_info_free(a, 2);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	*out = a;
	*n = 2;
	return 0;
}

int rt_engine_describe(rt_engine *e, const char *name, const char *version, char **out,
		       size_t *out_len)
{
	(void)e;
	(void)version;
	*out = NULL;
	if (strcmp(name, "echo") != 0)
		return art_error_set(AF_ENOTFOUND, "no agent %s", name);
	if (!(*out = strdup("{\"name\":\"echo\",\"version\":\"1.0.0\"}")))
		return art_error_set(AF_ENOMEM, "out of memory");
	*out_len = strlen(*out);
	return 0;
}

int rt_engine_invoke(rt_engine *e, const char *name, const char *version, const char *input,
		     size_t input_len, rt_invoke_result *res)
{
	(void)e;
	(void)version;
	memset(res, 0, sizeof(*res));
	if (strcmp(name, "echo") == 0) {
		if (!(res->body = malloc(input_len + 32)))
			return art_error_set(AF_ENOMEM, "out of memory");
		res->http_status = 200;
		res->body_len = (size_t)snprintf(res->body, input_len + 32,
						 "{\"ok\":true,\"output\":%.*s}", (int)input_len, input);
		res->instantiate_seconds = 2e-6;
		res->invoke_seconds = 1e-5;
		return 0;
	}
	if (strcmp(name, "failing") == 0) {
		res->http_status = 504;
		res->error_code = "timeout";
		if (!(res->error_message = strdup("stopped at the 10 ms deadline")))
			return art_error_set(AF_ENOMEM, "out of memory");
		return 0;
	}
	res->http_status = 404;
	res->error_code = "not_found";
	res->error_message = NULL; /* the code stands for the message */
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
	return true;
}

/* A channel with every part the list renders: a release, a refusal, a
 * keyring error. */
int rt_engine_status_get(rt_engine *e, rt_engine_status *out)
{
	(void)e;
	memset(out, 0, sizeof(*out));
	out->state = RT_CHANNEL_OK;
	snprintf(out->channel, sizeof(out->channel), "blue");
	out->release = 7;
	out->seq = 12;
	snprintf(out->action, sizeof(out->action), "promote");
	out->expires = 1795341600;
	snprintf(out->release_digest, sizeof(out->release_digest), "sha256:ab");
	out->refused_seq = 13;
	out->refused_release = 8;
	snprintf(out->refused, sizeof(out->refused), "release 8 expired");
	out->switches = 3;
	snprintf(out->keyring_sha256, sizeof(out->keyring_sha256), "cd");
	snprintf(out->keyring_error, sizeof(out->keyring_error), "bad \"file\"");
	return 0;
}

int rt_engine_stats_get(rt_engine *e, rt_engine_stats *out)
{
	(void)e;
	memset(out, 0, sizeof(*out));
	out->agents_served = 1;
	out->agents_refused = 1;
	out->n_keys = 2;
	snprintf(out->keys[0].id, sizeof(out->keys[0].id), "0123456789abcdef");
	snprintf(out->keys[0].role, sizeof(out->keys[0].role), "builder");
	out->keys[0].not_after = 1795341600;
	snprintf(out->keys[1].id, sizeof(out->keys[1].id), "fedcba9876543210");
	snprintf(out->keys[1].role, sizeof(out->keys[1].role), "release");
	out->keys[1].not_after = 1795341601;
	return 0;
}

const char *rt_channel_state_name(rt_channel_state s)
{
	static const char *const names[] = {"off", "ok", "no_release", "expired"};

	return (unsigned)s < 4 ? names[s] : "off";
}

/* --------------------------------------------------------------------------
 * A client with stack buffers only (its allocations would be counted).
 */

#define RESP_MAX 65536

typedef struct response {
	int status;
	char text[RESP_MAX]; /* head and body, NUL-terminated */
	const char *body;
} response;

/* One request with "Connection: close"; 0, or -1 when the connection gave
 * no complete answer. */
static int http(uint16_t port, const char *method, const char *path, const char *headers,
		const char *body, response *r)
{
	struct sockaddr_in a;
	struct timeval tv = {20, 0};
	char head[2048];
	size_t len = 0, off;
	ssize_t n;
	int s, hl;
	char *sep;

	memset(r, 0, sizeof(*r) - sizeof(r->text) + 1);
	r->text[0] = '\0';
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(s);
		return -1;
	}
	hl = snprintf(head, sizeof(head),
		      "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
		      method, path, headers, body ? strlen(body) : 0);
	if (body) {
		assert_true((size_t)hl + strlen(body) < sizeof(head));
		memcpy(head + hl, body, strlen(body));
		hl += (int)strlen(body);
	}
	for (off = 0; off < (size_t)hl; off += (size_t)n)
		if ((n = send(s, head + off, (size_t)hl - off, MSG_NOSIGNAL)) <= 0)
			break;
	while (len < sizeof(r->text) - 1 &&
	       (n = recv(s, r->text + len, sizeof(r->text) - 1 - len, 0)) > 0)
		len += (size_t)n;
	close(s);
	r->text[len] = '\0';
	if (sscanf(r->text, "HTTP/1.1 %d", &r->status) != 1 || !(sep = strstr(r->text, "\r\n\r\n")))
		return -1;
	r->body = sep + 4;
	return 0;
}

/* --------------------------------------------------------------------------
 * One round: start, every kind of request, stop.
 */

#define JSON_CT "Content-Type: application/json\r\n"
#define AUTH_READ "Authorization: Bearer tok-read\r\n"
#define AUTH_INVOKE "Authorization: Bearer tok-invoke\r\n"
#define AUTH_ADMIN "Authorization: Bearer tok-admin\r\n"
#define PARENT "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"

typedef struct probe {
	const char *method, *path, *headers, *body;
	int status;        /* the answer without any failure */
	const char *needle; /* in the body of that answer */
} probe;

static const probe probes[] = {
	{"GET", "/healthz", "", NULL, 200, "{\"status\":\"ok\"}"},
	{"GET", "/readyz", "", NULL, 200, "ready"},
	{"GET", "/v1/agents", AUTH_READ PARENT, NULL, 200,
	 "\"keyring_error\":\"bad \\\"file\\\"\""},
	{"GET", "/v1/agents/echo", AUTH_READ, NULL, 200, "\"name\":\"echo\""},
	{"GET", "/v1/agents/nope", AUTH_READ, NULL, 404, "not_found"},
	{"POST", "/v1/agents/echo/invoke",
	 AUTH_INVOKE JSON_CT PARENT "X-Request-Id: req-\xc3\xa9-1\r\n", "{\"q\":\"caf\xc3\xa9\"}", 200,
	 "\"output\":{\"q\":\"caf\xc3\xa9\"}"},
	{"POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT "X-Request-Id: ok-1\r\n",
	 "{\"q\":1}", 200, "\"output\":{\"q\":1}"},
	{"POST", "/v1/agents/failing/invoke", AUTH_INVOKE JSON_CT, "{}", 504,
	 "stopped at the 10 ms deadline"},
	{"POST", "/v1/agents/gone/invoke", AUTH_INVOKE JSON_CT, "{}", 404, "not_found"},
	{"POST", "/v1/agents/echo/invoke", JSON_CT, "{}", 401, "unauthorized"},
	{"POST", "/v1/agents/echo/invoke", AUTH_READ JSON_CT, "{}", 403, "forbidden"},
	{"POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT, "", 400, "invalid_json"},
	{"POST", "/v1/agents/echo/invoke",
	 AUTH_INVOKE "Content-Type: application/json \t; charset=utf-8\r\n", "[2]", 200,
	 "\"output\":[2]"},
	{"POST", "/v1/agents/echo/invoke", AUTH_INVOKE "Content-Type: text/plain\r\n", "{}", 415,
	 "unsupported_media_type"},
	{"POST", "/v1/agents/echo/invoke", AUTH_INVOKE JSON_CT,
	 "{\"pad\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
	 413, "payload_too_large"},
	{"DELETE", "/v1/agents", AUTH_ADMIN, NULL, 405, "method_not_allowed"},
	{"GET", "/nowhere", AUTH_ADMIN, NULL, 404, "no route /nowhere"},
	{"GET", "/metrics", AUTH_ADMIN, NULL, 200, "agentfactory_http_requests_total"},
};

static const char oom_body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}";

typedef struct round_ctx {
	rt_tokens *tokens;
	FILE *log;
	unsigned answered_503; /* over the torture: requests answered "out of memory" */
} round_ctx;

static void trace_warn(void *log, const char *event, const char *message)
{
	rt_log_printf(log, "warn", event, NULL, "%s", message);
}

static int run_round(void *arg)
{
	round_ctx *ctx = arg;
	rt_http *srv = NULL;
	rt_http_opts o;
	response *r = __real_malloc(sizeof(*r)); /* the test's: not counted */
	size_t i;
	int rc = 0;

	assert_non_null(r);
	memset(&o, 0, sizeof(o));
	o.listen = "127.0.0.1:0";
	o.tokens = ctx->tokens;
	o.max_body = 64;
	o.threads = 2;
	o.workers = 2;
	o.queue = 4;
	o.log = ctx->log;
	rc = rt_http_start(&srv, &the_engine, &o);
	if (rc < 0) {
		free(r);
		return rc;
	}
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const probe *p = &probes[i];

		if (http(rt_http_port(srv), p->method, p->path, p->headers, p->body, r) != 0) {
			rc = art_error_set(AF_EIO, "%s %s: no complete answer: \"%s\"", p->method,
					   p->path, r->text);
			break;
		}
		if (r->status == 503 && strcmp(r->body, oom_body) == 0) {
			ctx->answered_503++;
			rc = art_error_set(AF_ENOMEM, "%s %s: out of memory", p->method, p->path);
			continue;
		}
		if (r->status == 503 && p->status != 503 && strstr(r->body, "\"unavailable\"")) {
			ctx->answered_503++;
			rc = art_error_set(AF_ENOMEM, "%s %s: %s", p->method, p->path, r->body);
			continue;
		}
		if (r->status != p->status || !strstr(r->body, p->needle)) {
			rc = art_error_set(AF_EIO, "%s %s: status %d, want %d with %s: %s", p->method,
					   p->path, r->status, p->status, p->needle, r->body);
			break;
		}
	}
	if (rt_http_stop(srv, 5000) != 0 && rc == 0)
		rc = art_error_set(AF_EIO, "requests left in flight at stop");
	free(r);
	return rc;
}

static void test_http_faults__allocation_failures_answer_503_or_succeed(void **state)
{
	char text[512], h1[RT_TOKEN_HASH_LEN], h2[RT_TOKEN_HASH_LEN], h3[RT_TOKEN_HASH_LEN], url[128];
	static const llmfx_reply collector[] = {{200, "{}", NULL, 0, 0}};
	rt_trace_config tc;
	round_ctx ctx;
	llmfx *fx = NULL;
	long points;

	(void)state;
	memset(&ctx, 0, sizeof(ctx));
	rt_token_hash(h1, "tok-read", 8);
	rt_token_hash(h2, "tok-invoke", 10);
	rt_token_hash(h3, "tok-admin", 9);
	snprintf(text, sizeof(text), "%s read grafana\n%s invoke ci\n%s admin ops\n", h1, h2, h3);
	assert_int_equal(rt_tokens_parse(&ctx.tokens, text, strlen(text), "t"), 0);
	ctx.log = tmpfile();
	assert_non_null(ctx.log);
	/* Spans recorded (and exported to a collector), so their paths count too. */
	assert_int_equal(llmfx_start(&fx, collector, 1), 0);
	memset(&tc, 0, sizeof(tc));
	tc.endpoint = llmfx_url(fx, url, sizeof(url), "");
	tc.delay_ms = 50;
	tc.warn = trace_warn;
	tc.warn_ctx = ctx.log;
	assert_int_equal(rt_trace_start(&tc), 0);

	/* Without failures: every probe gets its answer. */
	if (run_round(&ctx) != 0)
		fail_msg("without failures: %s", art_error_last());
	{
		const fi_op op = {"http start + requests + stop", run_round, NULL, &ctx};

		points = fi_torture(&op);
		if (points < 0)
			fail_msg("see above");
	}
	/* Some failures must have been answered 503, not all absorbed. */
	assert_true(ctx.answered_503 > 0);
	printf("http: %u requests answered 503 out of memory\n", ctx.answered_503);
	rt_trace_stop();
	/* The collector got spans of the server's requests. */
	assert_true(llmfx_count(fx) > 0);
	{
		const llmfx_request *q = llmfx_request_at(fx, 0);

		assert_non_null(q);
		assert_non_null(strstr(q->path, "/v1/traces"));
		assert_non_null(strstr(q->body, "\"resourceSpans\""));
	}
	llmfx_stop(fx);
	fclose(ctx.log);
	rt_tokens_free(ctx.tokens);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_faults__allocation_failures_answer_503_or_succeed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
