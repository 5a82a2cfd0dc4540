/*
 * rt/http.h - the runtime's HTTP API (libmicrohttpd) in front of an engine.
 *
 * Routes (docs/openapi.yaml is the reference):
 *
 *     GET  /healthz                     process alive            open
 *     GET  /readyz                      engine ready, not draining  open
 *     GET  /metrics                     Prometheus text 0.0.4    read, admin
 *     GET  /v1/agents                   list, ok or refused      read, invoke, admin
 *     GET  /v1/agents/{name}[?version=] resolved template        read, invoke, admin
 *     POST /v1/agents/{name}/invoke[?version=]  JSON in/out       invoke, admin
 *
 * (HEAD is accepted wherever GET is.) Roles apply only when a tokens table
 * is given; without one the server refuses to bind anything but a loopback
 * address. Every error is {"error":{"code":"...","message":"..."}} with a
 * stable code; every response carries X-Request-Id (the client's, when it
 * is 1-64 characters of A-Z a-z 0-9 . _ : -, else a generated one); every
 * request is logged as one JSON line. Requests are refused before their
 * body is read when the route, method, token, role, Content-Length or
 * Content-Type is wrong, so an oversized or unauthorised upload costs the
 * server nothing.
 *
 * Threads: a pool of libmicrohttpd polling threads (epoll) reads requests
 * and writes answers; invocations run on a separate pool of workers sized
 * for I/O waits (a model, a tool, a synced kv write), with the connection
 * suspended meanwhile, so a slow invocation never holds a polling thread
 * that other connections need. Invocations beyond the workers wait in a
 * bounded queue; past it the answer is 503 with Retry-After.
 */
#ifndef RT_HTTP_H
#define RT_HTTP_H

#include "rt/engine.h"
#include "rt/tokens.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

typedef struct rt_http rt_http;

typedef struct rt_http_opts {
	const char *listen;        /* "HOST:PORT" or "[V6]:PORT"; HOST an address or
				      "localhost"; port 0 picks a free port. NULL = 127.0.0.1:8080 */
	const rt_tokens *tokens;   /* borrowed, must outlive the server; NULL = no authentication,
				      and then only a loopback address may be bound */
	size_t max_body;           /* request body cap in bytes; 0 = 1 MiB */
	unsigned threads;          /* polling threads; 0 = 2 per core, at least 4 */
	unsigned max_connections;  /* 0 = 1000 */
	unsigned idle_timeout_s;   /* a connection idle this long is closed; 0 = 30 */
	unsigned header_timeout_s; /* a request head (request line and headers) not
				      complete this long after the connection opened (or
				      the previous response) closes it; 0 = 10 */
	unsigned max_per_ip;       /* connections from one address; 0 = 128,
				      RT_HTTP_UNLIMITED = no limit */
	unsigned workers;          /* invocation workers (they wait on models, tools,
				      disk); 0 = 64 */
	unsigned queue;            /* invocations waiting for a worker before 503 +
				      Retry-After; 0 = 1024 */
	FILE *log;                 /* JSON lines (access log, server messages); NULL = stderr */
} rt_http_opts;

/** rt_http_opts.max_per_ip: no per-address connection limit. */
#define RT_HTTP_UNLIMITED 0xffffffffu

/** Well-known stable error codes of the HTTP layer (the engine adds its own). */
#define RT_HTTP_E_UNAUTHORIZED "unauthorized"
#define RT_HTTP_E_FORBIDDEN "forbidden"
#define RT_HTTP_E_NOT_FOUND "not_found"
#define RT_HTTP_E_METHOD "method_not_allowed"
#define RT_HTTP_E_TOO_LARGE "payload_too_large"
#define RT_HTTP_E_MEDIA_TYPE "unsupported_media_type"
#define RT_HTTP_E_INVALID_JSON "invalid_json"
#define RT_HTTP_E_INVALID_REQUEST "invalid_request"
#define RT_HTTP_E_REFUSED "agent_refused"
#define RT_HTTP_E_NOT_READY "not_ready"
#define RT_HTTP_E_RELEASE_EXPIRED "release_expired" /* 503: the channel's release expired */
#define RT_HTTP_E_NO_RELEASE "no_release"      /* 503: the channel has no valid release */
#define RT_HTTP_E_UNAVAILABLE "unavailable" /* 503: the server is out of memory; retry */
#define RT_HTTP_E_INTERNAL "internal"
#define RT_HTTP_E_URI_TOO_LONG "uri_too_long"           /* 414 */
#define RT_HTTP_E_LENGTH_REQUIRED "length_required"     /* 411: Transfer-Encoding */
#define RT_HTTP_E_HEADERS_TOO_LARGE "headers_too_large" /* 431 */

/**
 * Bind and start serving. On success the server runs on its own threads
 * until rt_http_stop.
 * @param[out] out     caller owns; rt_http_stop()
 * @param[in]  engine  borrowed; must outlive the server
 * @return 0; AF_EINVAL (malformed listen address); AF_EDENIED (no tokens and
 *         a non-loopback address); AF_EIO (cannot bind: the message says
 *         why, e.g. address in use); AF_ENOMEM
 */
int rt_http_start(rt_http **out, rt_engine *engine, const rt_http_opts *opts);

/** The bound address, "127.0.0.1:41234" or "[::1]:41234" (usable in a URL). Borrowed. */
const char *rt_http_address(const rt_http *h);

/** The bound port (the real one when 0 was asked). */
uint16_t rt_http_port(const rt_http *h);

/**
 * Requests begun and not yet completed (for draining and tests).
 */
unsigned rt_http_in_flight(const rt_http *h);

/**
 * Stop cleanly and free: stop accepting (the listening socket is shut down
 * at once, so new connections are refused rather than queued), answer "not
 * ready" on /readyz and "Connection: close" from now on,
 * wait up to grace_ms for requests in progress to finish, then stop the
 * threads and close every connection. NULL-safe. Does not close the engine.
 * @return the number of requests still in progress when the grace ran out
 */
unsigned rt_http_stop(rt_http *h, unsigned grace_ms);

/**
 * Parse a listen address.
 * @param[out] addr, addr_len  the socket address
 * @return 0 or AF_EINVAL (message says what is wrong)
 */
int rt_http_parse_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *addr_len);

/** true for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool rt_http_is_loopback(const struct sockaddr *addr);

/**
 * The HTTP status and stable code for an AF_E* return of rt_engine_describe
 * or rt_engine_list: AF_ENOTFOUND 404 not_found; AF_ESIGNATURE, AF_EVERSION,
 * AF_ECORRUPT 503 agent_refused; AF_ENOMEM 503 unavailable; AF_EINVAL 400
 * invalid_request; anything else 500 internal.
 */
void rt_http_error_for_rc(int rc, int *status, const char **code);

#endif
