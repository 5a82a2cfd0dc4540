/*
 * rt/tools.h - the runtime's builtin tool catalogue: the only tools a
 * template can name (docs/tools.md is the reference for each one).
 *
 *   tool          capability     does
 *   clock_now     clock          the time in UTC, RFC 3339 with milliseconds
 *   kv_get        kv.read        a value of the agent's own key-value namespace
 *   kv_put        kv.write       store a value there
 *   http_fetch    http_fetch     GET a URL whose host is on the allow-list the
 *                                policy granted when the agent was built (the
 *                                manifest's "hosts"); redirects followed by
 *                                hand and each target checked again
 *   agent_invoke  agent_invoke   run another agent of the store, with ITS own
 *                                verified artifact, capabilities and limits,
 *                                under a depth limit and a cycle guard, within
 *                                the caller's remaining time
 *
 * A tool answers an envelope ({"ok":true,"result":...} or
 * {"ok":false,"error":{"code":...,"message":...}}) that the guest sees, or
 * is denied: the host call then returns -1 and the agent answers
 * tool_denied. Denials, and the refusals of agent_invoke's guards, are
 * logged and counted by the caller (rt_tool_result.what / .why).
 *
 * http_fetch, strictly: only http and https; https to any host of the list,
 * plain http only to a loopback host (localhost, *.localhost, 127.0.0.0/8,
 * [::1]); no userinfo, no backslash, no percent-encoded or numeric-looking
 * host names (2130706433, 0177.0.0.1, 0x7f.1, 127.1), no IPv6 zone, no
 * bytes outside printable ASCII. The address curl connects to is checked
 * too (at socket creation, so DNS rebinding cannot slip past): never
 * unspecified, link-local (169.254.0.0/16, fe80::/10: cloud metadata),
 * multicast or broadcast; loopback exactly when the URL's host is a
 * loopback host. No proxy, no cookies, no credentials, a size cap and a
 * deadline.
 *
 * Thread-safe: every function may run on any thread at once.
 */
#ifndef RT_TOOLS_H
#define RT_TOOLS_H

#include "rt/exec.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** The catalogue, in a fixed order (an index is an rt_tool.builtin). */
typedef enum rt_builtin {
	RT_TOOL_CLOCK_NOW,
	RT_TOOL_KV_GET,
	RT_TOOL_KV_PUT,
	RT_TOOL_HTTP_FETCH,
	RT_TOOL_AGENT_INVOKE,
	RT_TOOL_COUNT
} rt_builtin;

/* ---- limits (docs/tools.md) ------------------------------------------------ */

/** Body bytes http_fetch keeps; the rest is not read ("truncated": true). */
#define RT_FETCH_BODY_MAX ((size_t)256 << 10)
/** Redirects http_fetch follows (each one checked) before giving up. */
#define RT_FETCH_MAX_REDIRECTS 5u
/** Whole fetch, redirects included (also bounded by the invocation's deadline). */
#define RT_FETCH_TIMEOUT_MS 10000u
/** Connecting (DNS + TCP + TLS handshake start) per hop. */
#define RT_FETCH_CONNECT_TIMEOUT_MS 5000u
/** Longest URL accepted. */
#define RT_URL_MAX 2048u
/** Agents on one call chain by default (the outermost invocation counts). */
#define RT_INVOKE_DEPTH_DEFAULT 4u
/** Largest configurable depth. */
#define RT_INVOKE_DEPTH_MAX 16u

/* ---- the catalogue --------------------------------------------------------- */

/** The catalogue index of a tool name, or -1. */
int rt_tool_find(const char *name);

/** The name of catalogue entry tool (< RT_TOOL_COUNT). Static string. */
const char *rt_tool_name(int tool);

/** The capability bit (RT_CAP_*) catalogue entry tool needs. */
uint32_t rt_tool_capability(int tool);

/** Its capability name ("kv.read", ...). Static string. */
const char *rt_tool_capability_name(int tool);

/* ---- running a tool -------------------------------------------------------- */

/**
 * The chain of agents an invocation belongs to: the outermost first, the
 * invocation's own agent last. Names are borrowed from the policies of the
 * invocations on the chain (each waits for its callee, so they outlive it).
 */
typedef struct rt_call_chain {
	const char *names[RT_INVOKE_DEPTH_MAX];
	uint32_t depth;                /* entries in names, >= 1 */
	int64_t deadline_ns;           /* CLOCK_MONOTONIC; the invocation's deadline */
} rt_call_chain;

/** What a tool runs for. Borrowed for the call. */
typedef struct rt_tool_ctx {
	const rt_policy *policy;       /* the calling agent's */
	const rt_host_env *env;
	const rt_call_chain *chain;    /* the calling invocation's; NULL = a lone invocation */
} rt_tool_ctx;

/** What a tool did. */
typedef struct rt_tool_result {
	char *answer;                  /* the envelope (malloc'd; caller frees); NULL when denied */
	size_t answer_len;
	bool denied;                   /* refused: the host call returns -1 (tool_denied) */
	char what[40];                 /* when not empty: a denial or guard refusal to count
					  (agentfactory_denials_total{what=...}) and log */
	char why[512];                 /* its log message */
} rt_tool_result;

/**
 * Run catalogue tool `tool` with args (a JSON object or NULL). The caller
 * has already checked that the tool is in the agent's table and that its
 * capability is granted. The envelope is at most RT_MAX_HOST_REQUEST bytes
 * (a larger answer becomes a too_large error).
 * @param[out] out  filled in every case; out->answer is the caller's
 * @return 0; AF_ENOMEM when not even an error envelope could be built
 */
int rt_tool_run(rt_tool_result *out, int tool, const rt_tool_ctx *ctx, json_t *args);

/**
 * The chain of the invocation that called agent_invoke on this thread's
 * behalf, or NULL for an invocation that nobody called (HTTP, `run`).
 * rt_exec_invoke extends it and bounds its deadline by it. Internal: set by
 * agent_invoke around the callee's invocation (rt_host_env.invoke) on the
 * thread it starts.
 */
const rt_call_chain *rt_tools__parent_chain(void);

/* ---- URLs and the allow-list (exposed for tests) -------------------------- */

/** A URL http_fetch accepted, in the normalised form it is fetched with. */
typedef struct rt_url {
	char scheme[8];                /* "http" or "https" */
	char host[256];                /* lower case, no trailing dot; "[v6]" canonical */
	uint16_t port;                 /* the explicit one, else 80 / 443 */
	bool explicit_port;
	bool ip;                       /* host is an IPv4 or IPv6 literal */
	bool loopback;                 /* localhost, *.localhost, 127/8, ::1 (also v4-mapped) */
	char path[RT_URL_MAX + 1];     /* "/..." with the query, without the fragment */
} rt_url;

/**
 * Parse a URL strictly (rules at the top of this file).
 * @param[out] out  filled on success
 * @param[in]  text, len  need not be NUL-terminated; a NUL inside is refused
 * @return 0, or AF_EINVAL with a message saying what was refused
 */
int rt_url_parse(rt_url *out, const char *text, size_t len);

/**
 * The URL as fetched: scheme://host[:port]path.
 * @return the length, or -1 when it does not fit in n bytes
 */
int rt_url_format(const rt_url *u, char *out, size_t n);

/**
 * Whether u may be fetched under the allow-list: its host equals an entry
 * or is a DNS name strictly below a "*.domain" entry (never an IP literal
 * under a wildcard), and its scheme is https or the host is loopback.
 * @param[in] hosts  entries as rt_policy_set_hosts normalised them
 * @return 0, or AF_EDENIED with a message saying why
 */
int rt_url_allowed(const rt_url *u, const char *const *hosts, size_t n_hosts);

/**
 * Whether http_fetch may connect to address sa (see the top of this file).
 * @param[in] loopback_host  whether the URL's host is a loopback host
 */
bool rt_fetch_address_allowed(const struct sockaddr *sa, bool loopback_host);

/**
 * Normalise an allow-list entry (a manifest "hosts" entry): lower case, no
 * trailing dot, IPv6 in canonical form.
 * @param[out] out  at least 256 bytes
 * @return 0, or AF_EINVAL for an entry that is not a DNS name, "*.name",
 *         a dotted-quad IPv4 address or [IPv6]
 */
int rt_host_entry_normalize(char *out, size_t n, const char *entry);

#endif
