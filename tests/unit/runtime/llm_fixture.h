/*
 * llm_fixture.h - a chat-completions fixture server for the tests: an
 * HTTP server (libmicrohttpd, one thread per connection) on 127.0.0.1 and
 * a port of its own (port 0), answering POSTs from a script of replies —
 * status codes (429 with Retry-After, 500, 503), delays (for timeouts),
 * malformed and oversized bodies — and recording every request it got
 * (method, path, headers that matter, body, arrival time) so that a test
 * can check what the runtime sent: the rendered system prompt, the tools,
 * the tool results fed back, the Authorization header.
 *
 * Header-only (the unit tests are single files); also built into the
 * standalone server of tests/integration/test_llm_cli.sh
 * (tests/fixtures/llm/fixture_server.c).
 *
 * Reply i answers request i; past the end, the last reply repeats (or,
 * with cycle set, reply i % n answers request i). A reply
 * with a delay waits before answering; llmfx_stop cuts every wait short.
 */
#ifndef LLM_FIXTURE_H
#define LLM_FIXTURE_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct llmfx_reply {
	unsigned status;              /* 0 = 200 */
	const char *body;             /* NULL = empty */
	const char *retry_after;      /* Retry-After value, or NULL */
	unsigned delay_ms;            /* wait this long before answering */
	size_t big;                   /* > 0: a body of this many bytes instead of body */
} llmfx_reply;

typedef struct llmfx_request {
	char *method, *path, *auth, *content_type, *expect;
	char *body;
	size_t body_len;
	int64_t at_ms;                /* CLOCK_MONOTONIC ms when the body was complete */
} llmfx_request;

#define LLMFX_MAX_REQUESTS 4096u
#define LLMFX_MAX_BODY ((size_t)8 << 20)

typedef struct llmfx {
	struct MHD_Daemon *d;
	uint16_t port;
	llmfx_reply *replies;
	size_t n_replies;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	llmfx_request *requests[LLMFX_MAX_REQUESTS];
	size_t n_requests;
	size_t served;                /* requests answered (also past LLMFX_MAX_REQUESTS) */
	void (*on_request)(void *arg, const llmfx_request *r, size_t index);
	void *on_request_arg;
	int cycle;                    /* set: reply i % n answers request i (benchmarks) */
} llmfx;

static inline int64_t llmfx_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline char *llmfx_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static inline void llmfx_request_free(llmfx_request *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->path);
	free(r->auth);
	free(r->content_type);
	free(r->expect);
	free(r->body);
	free(r);
}

/* Per connection: the request being read. */
typedef struct llmfx_conn {
	llmfx_request *r;
	int too_big;
} llmfx_conn;

static inline void llmfx_completed(void *cls, struct MHD_Connection *c, void **con_cls,
				   enum MHD_RequestTerminationCode toe)
{
	llmfx_conn *cc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cc) {
		llmfx_request_free(cc->r);
		free(cc);
		*con_cls = NULL;
	}
}

static inline enum MHD_Result llmfx_handler(void *cls, struct MHD_Connection *c, const char *url,
					    const char *method, const char *version,
					    const char *upload, size_t *upload_size, void **con_cls)
{
	llmfx *fx = cls;
	llmfx_conn *cc = *con_cls;
	const llmfx_reply *rep;
	struct MHD_Response *resp;
	size_t index;
	char *body;
	size_t body_len;
	enum MHD_Result ret;

	(void)version;
	if (!cc) {
		cc = calloc(1, sizeof(*cc));
		if (!cc || !(cc->r = calloc(1, sizeof(*cc->r))))
			return MHD_NO;
		*con_cls = cc;
		cc->r->method = llmfx_strdup(method);
		cc->r->path = llmfx_strdup(url);
		cc->r->auth = llmfx_strdup(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
		cc->r->content_type =
			llmfx_strdup(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
		cc->r->expect = llmfx_strdup(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect"));
		return MHD_YES;
	}
	if (*upload_size) {
		if (cc->r->body_len + *upload_size > LLMFX_MAX_BODY) {
			cc->too_big = 1;
		} else {
			char *p = realloc(cc->r->body, cc->r->body_len + *upload_size + 1);

			if (!p)
				return MHD_NO;
			memcpy(p + cc->r->body_len, upload, *upload_size);
			cc->r->body = p;
			cc->r->body_len += *upload_size;
			p[cc->r->body_len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	/* The whole request is here: record it, pick the reply. */
	cc->r->at_ms = llmfx_now_ms();
	if (!cc->r->body && !(cc->r->body = calloc(1, 1)))
		return MHD_NO;
	pthread_mutex_lock(&fx->mu);
	index = fx->served++;
	if (fx->n_requests < LLMFX_MAX_REQUESTS) {
		fx->requests[fx->n_requests++] = cc->r;
		if (fx->on_request)
			fx->on_request(fx->on_request_arg, cc->r, index);
		cc->r = NULL;
	}
	rep = &fx->replies[fx->cycle ? index % fx->n_replies
				     : index < fx->n_replies ? index : fx->n_replies - 1];
	if (rep->delay_ms) {
		struct timespec until;
		int64_t end = llmfx_now_ms() + rep->delay_ms;

		until.tv_sec = (time_t)(end / 1000);
		until.tv_nsec = (long)(end % 1000) * 1000000L;
		while (!fx->stopping && llmfx_now_ms() < end)
			pthread_cond_timedwait(&fx->cv, &fx->mu, &until);
	}
	pthread_mutex_unlock(&fx->mu);
	if (rep->big) {
		body_len = rep->big;
		body = malloc(body_len);
		if (!body)
			return MHD_NO;
		memset(body, ' ', body_len);
		body[0] = '{';
		body[body_len - 1] = '}';
	} else {
		body_len = rep->body ? strlen(rep->body) : 0;
		body = malloc(body_len + 1);
		if (!body)
			return MHD_NO;
		memcpy(body, rep->body ? rep->body : "", body_len);
	}
	resp = MHD_create_response_from_buffer(body_len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (rep->retry_after)
		MHD_add_response_header(resp, "Retry-After", rep->retry_after);
	ret = MHD_queue_response(c, cc->too_big ? 413 : rep->status ? rep->status : 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * Start a server on 127.0.0.1, port 0, answering with replies[0..n). The
 * array is copied; its strings are borrowed (they must outlive the server).
 * @return 0, or -1 (n == 0, out of memory, cannot listen)
 */
static inline int llmfx_start(llmfx **out, const llmfx_reply *replies, size_t n)
{
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;
	llmfx *fx;

	*out = NULL;
	if (n == 0 || !(fx = calloc(1, sizeof(*fx))))
		return -1;
	fx->replies = malloc(n * sizeof(*replies));
	if (!fx->replies) {
		free(fx);
		return -1;
	}
	memcpy(fx->replies, replies, n * sizeof(*replies));
	fx->n_replies = n;
	pthread_mutex_init(&fx->mu, NULL);
	{
		pthread_condattr_t ca;

		/* Delays are measured on CLOCK_MONOTONIC. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fx->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fx->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
				 NULL, NULL, llmfx_handler, fx, MHD_OPTION_SOCK_ADDR, &sin,
				 MHD_OPTION_NOTIFY_COMPLETED, llmfx_completed, fx,
				 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!fx->d || !(info = MHD_get_daemon_info(fx->d, MHD_DAEMON_INFO_BIND_PORT))) {
		if (fx->d)
			MHD_stop_daemon(fx->d);
		free(fx->replies);
		free(fx);
		return -1;
	}
	fx->port = info->port;
	*out = fx;
	return 0;
}

/* Requests received so far. */
static inline size_t llmfx_count(llmfx *fx)
{
	size_t n;

	pthread_mutex_lock(&fx->mu);
	n = fx->n_requests;
	pthread_mutex_unlock(&fx->mu);
	return n;
}

/* Request i (borrowed until llmfx_stop), or NULL. */
static inline const llmfx_request *llmfx_request_at(llmfx *fx, size_t i)
{
	const llmfx_request *r;

	pthread_mutex_lock(&fx->mu);
	r = i < fx->n_requests ? fx->requests[i] : NULL;
	pthread_mutex_unlock(&fx->mu);
	return r;
}

/* "http://127.0.0.1:PORT" + suffix, into buf. */
static inline const char *llmfx_url(const llmfx *fx, char *buf, size_t cap, const char *suffix)
{
	snprintf(buf, cap, "http://127.0.0.1:%u%s", (unsigned)fx->port, suffix ? suffix : "");
	return buf;
}

/* Stop: cut waits short, close every connection, free. NULL-safe. */
static inline void llmfx_stop(llmfx *fx)
{
	size_t i;

	if (!fx)
		return;
	pthread_mutex_lock(&fx->mu);
	fx->stopping = 1;
	pthread_cond_broadcast(&fx->cv);
	pthread_mutex_unlock(&fx->mu);
	MHD_stop_daemon(fx->d);
	for (i = 0; i < fx->n_requests; i++)
		llmfx_request_free(fx->requests[i]);
	pthread_cond_destroy(&fx->cv);
	pthread_mutex_destroy(&fx->mu);
	free(fx->replies);
	free(fx);
}

#endif
