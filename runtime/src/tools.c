/*
 * tools.c - the builtin tool catalogue (rt/tools.h, docs/tools.md):
 * clock_now, kv_get, kv_put, http_fetch and agent_invoke.
 *
 * http_fetch trusts nothing it is given: the URL is parsed by the strict
 * parser below (not by curl), checked against the allow-list recorded in
 * the agent's signed manifest, and handed to curl re-assembled from the
 * parsed parts, so curl fetches exactly what was checked. curl follows no
 * redirect itself: each Location goes through the same parser and check,
 * as the raw header value (never libcurl's normalised redirect URL, which
 * turns 0x7f000001, 127.1 or a percent-encoded host into 127.0.0.1); only
 * a relative reference is resolved, by libcurl's URL API against the
 * request URL, and only its path and query are taken from the result.
 * The address curl connects to is checked at socket creation (after DNS),
 * which closes the gap DNS rebinding would use between a check and the
 * connect. No proxy (the environment's proxy variables are ignored), no
 * cookies, no .netrc, no credentials; a body cap and a deadline bounded by
 * the invocation's.
 *
 * agent_invoke runs the callee through the environment's invoke callback,
 * which the engine sets to rt_engine_invoke (the callee's own verified
 * artifact, capabilities and limits): the engine depends on this file and
 * this file calls no engine code. It runs on a thread of its own: a sandbox
 * call belongs to one thread, and the caller's is busy inside this host
 * function. The caller's chain reaches the callee's rt_exec_invoke through
 * a thread-local set on that thread only.
 */
#include "rt/trace.h"
#include "rt/tools.h"

#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"
#include "rt/kv.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef AF_VERSION
#define AF_VERSION "0.0.0"
#endif

#define CONTENT_TYPE_MAX 256u

/* ---- the catalogue ---------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t cap;
	const char *cap_name;
} catalogue[RT_TOOL_COUNT] = {
	[RT_TOOL_CLOCK_NOW] = {"clock_now", RT_CAP_CLOCK, "clock"},
	[RT_TOOL_KV_GET] = {"kv_get", RT_CAP_KV_READ, "kv.read"},
	[RT_TOOL_KV_PUT] = {"kv_put", RT_CAP_KV_WRITE, "kv.write"},
	[RT_TOOL_HTTP_FETCH] = {"http_fetch", RT_CAP_HTTP_FETCH, "http_fetch"},
	[RT_TOOL_AGENT_INVOKE] = {"agent_invoke", RT_CAP_AGENT_INVOKE, "agent_invoke"},
};

int rt_tool_find(const char *name)
{
	int i;

	for (i = 0; name && i < RT_TOOL_COUNT; i++)
		if (strcmp(name, catalogue[i].name) == 0)
			return i;
	return -1;
}

const char *rt_tool_name(int tool)
{
	return tool >= 0 && tool < RT_TOOL_COUNT ? catalogue[tool].name : "unknown";
}

uint32_t rt_tool_capability(int tool)
{
	return tool >= 0 && tool < RT_TOOL_COUNT ? catalogue[tool].cap : 0;
}

const char *rt_tool_capability_name(int tool)
{
	return tool >= 0 && tool < RT_TOOL_COUNT ? catalogue[tool].cap_name : "unknown";
}

/* ---- envelopes ------------------------------------------------------------------ */

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The envelope j (stolen) as the answer. */
static int answer_json(rt_tool_result *out, json_t *j)
{
	free(out->answer);
	out->answer = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	out->answer_len = out->answer ? strlen(out->answer) : 0;
	json_decref(j);
	return out->answer ? 0 : art_error_set(AF_ENOMEM, "out of memory");
}

/* {"ok":true,"result":result}; result is stolen. */
static int answer_ok(rt_tool_result *out, json_t *result)
{
	if (!result)
		return answer_json(out, NULL);
	return answer_json(out, json_pack("{s:b, s:o}", "ok", 1, "result", result));
}

static int answer_error(rt_tool_result *out, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int answer_error(rt_tool_result *out, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return answer_json(out, json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code,
					  "message", msg));
}

static void note(rt_tool_result *out, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A refusal to count and log (the caller does both). */
static void note(rt_tool_result *out, const char *what, const char *fmt, ...)
{
	va_list ap;

	snprintf(out->what, sizeof(out->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
}

/* ---- clock_now, kv_get, kv_put ------------------------------------------------------ */

static int tool_clock_now(rt_tool_result *out)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp) - 6, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), 6, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
	return answer_ok(out, json_string(stamp));
}

static int tool_kv(rt_tool_result *out, const rt_tool_ctx *ctx, int tool, json_t *args)
{
	json_t *key = json_object_get(args, "key"), *value = json_object_get(args, "value");
	char *text = NULL;
	size_t text_len = 0;
	int rc;

	if (!json_is_string(key) || (tool == RT_TOOL_KV_PUT && !value))
		return answer_error(out, "invalid_args", "%s",
				    tool == RT_TOOL_KV_PUT ? "kv_put needs a string key and a value"
							   : "kv_get needs a string key");
	if (!ctx->env->kv)
		return answer_error(out, "unavailable",
				    "the key-value store is off (the runtime has no data directory)");
	if (tool == RT_TOOL_KV_GET) {
		json_t *v;

		rc = rt_kv_get(ctx->env->kv, ctx->policy->name, json_string_value(key),
			       json_string_length(key), &text, &text_len);
		if (rc == AF_ENOTFOUND)
			return answer_error(out, "not_found", "no such key");
		if (rc < 0)
			return answer_error(out, rc == AF_ETOOBIG ? "too_large" : "kv_error", "%s",
					    art_error_last());
		v = json_loadb(text, text_len, JSON_DECODE_ANY, NULL);
		if (!v)
			v = json_stringn(text, text_len);
		free(text);
		return answer_ok(out, v);
	}
	text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return answer_json(out, NULL);
	rc = rt_kv_put(ctx->env->kv, ctx->policy->name, json_string_value(key),
		       json_string_length(key), text, strlen(text));
	free(text);
	if (rc < 0)
		return answer_error(out, rc == AF_ETOOBIG ? "too_large" : "kv_error", "%s",
				    art_error_last());
	return answer_ok(out, json_pack("{s:b}", "stored", 1));
}

/* ---- hosts and URLs ------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/*
 * Normalise a host (not a wildcard) into out (>= 256 bytes): lower case,
 * one trailing dot removed, IPv6 canonical in brackets. ip / loopback say
 * what it is. @return NULL, or why it is refused (a static string).
 */
static const char *host_normalize(char *out, const char *h, size_t n, bool *ip, bool *loopback)
{
	size_t i;

	*ip = *loopback = false;
	out[0] = '\0';
	if (n >= 2 && h[0] == '[') {
		struct in6_addr a6;
		char inner[64], canon[INET6_ADDRSTRLEN];

		if (h[n - 1] != ']')
			return "an IPv6 address needs both brackets";
		if (n - 2 == 0 || n - 2 >= sizeof(inner))
			return "the IPv6 address is empty or too long";
		memcpy(inner, h + 1, n - 2);
		inner[n - 2] = '\0';
		if (strchr(inner, '%'))
			return "an IPv6 zone (%) is not allowed";
		if (inet_pton(AF_INET6, inner, &a6) != 1 || !inet_ntop(AF_INET6, &a6, canon, sizeof(canon)))
			return "not an IPv6 address";
		snprintf(out, 256, "[%s]", canon);
		*ip = true;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6) ||
			    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
		return NULL;
	}
	if (memchr(h, '[', n) || memchr(h, ']', n))
		return "brackets around anything but an IPv6 address";
	if (n > 0 && h[n - 1] == '.')
		n--;
	if (n == 0)
		return "the host is empty";
	if (n > 253)
		return "the host name is longer than 253 bytes";
	for (i = 0; i < n; i++) {
		char c = h[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	/* Whether it is a host at all is the manifest's rule (art_manifest_host_valid,
	 * the one for the hosts a manifest lists; a wildcard is none here, a NUL
	 * would end the name early); the messages say which part is wrong. */
	if (strspn(out, "0123456789.") == n) {
		if (!art_manifest_host_valid(out)) {
			out[0] = '\0';
			return "a numeric host must be a dotted-quad IPv4 address without leading "
			       "zeros (not 2130706433, 0177.0.0.1 or 127.1)";
		}
		*ip = true;
		*loopback = strncmp(out, "127.", 4) == 0; /* 127.0.0.0/8 */
		return NULL;
	}
	if (out[0] == '*' || strlen(out) != n || !art_manifest_host_valid(out)) {
		const char *last = strrchr(out, '.');
		bool numeric_end;

		last = last ? last + 1 : out;
		numeric_end = *last >= '0' && *last <= '9';
		out[0] = '\0';
		if (numeric_end)
			return "a host name whose last label starts with a digit reads as a number "
			       "(0x7f.1, 1.2.3.4.5)";
		return "not a valid host name (letters, digits, '-' and '.' only)";
	}
	*loopback = strcmp(out, "localhost") == 0 || ends_with(out, ".localhost");
	return NULL;
}

int rt_host_entry_normalize(char *out, size_t n, const char *entry)
{
	char buf[256];
	const char *why;
	bool ip, loopback;
	size_t len;

	if (!out || n < 256 || !entry)
		return art_error_set(AF_EINVAL, "host entry: bad argument");
	len = strlen(entry);
	if (len >= 2 && strncmp(entry, "*.", 2) == 0) {
		why = host_normalize(buf, entry + 2, len - 2, &ip, &loopback);
		if (why || ip)
			return art_error_set(AF_EINVAL, "host entry '%.80s': %s", entry,
					     why ? why : "a wildcard needs a DNS name");
		snprintf(out, n, "*.%s", buf);
		return 0;
	}
	why = host_normalize(buf, entry, len, &ip, &loopback);
	if (why)
		return art_error_set(AF_EINVAL, "host entry '%.80s': %s", entry, why);
	snprintf(out, n, "%s", buf);
	return 0;
}

static bool url_byte_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '\\';
}

int rt_url_parse(rt_url *out, const char *text, size_t len)
{
	const char *end, *sep, *auth, *auth_end, *host, *host_end, *port = NULL, *rest, *why;
	size_t i, scheme_len;

	if (!out)
		return art_error_set(AF_EINVAL, "url: NULL argument");
	memset(out, 0, sizeof(*out));
	if (!text || len == 0)
		return art_error_set(AF_EINVAL, "the URL is empty");
	if (len > RT_URL_MAX)
		return art_error_set(AF_EINVAL, "the URL is longer than %u bytes", RT_URL_MAX);
	for (i = 0; i < len; i++)
		if (!url_byte_ok((unsigned char)text[i]))
			return art_error_set(AF_EINVAL, text[i] == '\\'
						 ? "a backslash in a URL is not allowed"
						 : "the URL has a space, a control character or a "
						   "non-ASCII byte at offset %zu (percent-encode it)", i);
	end = text + len;
	sep = memmem(text, len, "://", 3);
	if (!sep)
		return art_error_set(AF_EINVAL, "not an absolute URL (scheme://host/...)");
	scheme_len = (size_t)(sep - text);
	if (scheme_len == 4 && strncasecmp(text, "http", 4) == 0)
		memcpy(out->scheme, "http", 5);
	else if (scheme_len == 5 && strncasecmp(text, "https", 5) == 0)
		memcpy(out->scheme, "https", 6);
	else
		return art_error_set(AF_EINVAL, "only http and https URLs can be fetched (not '%.*s')",
				     (int)(scheme_len < 16 ? scheme_len : 16), text);
	auth = sep + 3;
	for (auth_end = auth; auth_end < end && !strchr("/?#", *auth_end); auth_end++)
		;
	if (auth == auth_end)
		return art_error_set(AF_EINVAL, "the URL has no host");
	if (memchr(auth, '@', (size_t)(auth_end - auth)))
		return art_error_set(AF_EINVAL, "credentials in a URL (user@host) are not allowed");
	if (memchr(auth, '%', (size_t)(auth_end - auth)))
		return art_error_set(AF_EINVAL, "a percent-encoded host is not allowed");
	host = auth;
	if (*auth == '[') {
		const char *close = memchr(auth, ']', (size_t)(auth_end - auth));

		if (!close)
			return art_error_set(AF_EINVAL, "an IPv6 address needs both brackets");
		host_end = close + 1;
		if (host_end < auth_end) {
			if (*host_end != ':')
				return art_error_set(AF_EINVAL, "unexpected characters after ']'");
			port = host_end + 1;
		}
	} else {
		const char *colon = memchr(auth, ':', (size_t)(auth_end - auth));

		host_end = colon ? colon : auth_end;
		if (colon) {
			if (memchr(colon + 1, ':', (size_t)(auth_end - colon - 1)))
				return art_error_set(AF_EINVAL, "more than one ':' in the host (an IPv6 "
						     "address needs brackets)");
			port = colon + 1;
		}
	}
	why = host_normalize(out->host, host, (size_t)(host_end - host), &out->ip, &out->loopback);
	if (why)
		return art_error_set(AF_EINVAL, "%s", why);
	out->port = strcmp(out->scheme, "https") == 0 ? 443 : 80;
	if (port) {
		size_t plen = (size_t)(auth_end - port);
		unsigned long v = 0;

		if (plen == 0 || plen > 5 || port[0] == '0')
			return art_error_set(AF_EINVAL, "the port must be a number 1..65535");
		for (i = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				return art_error_set(AF_EINVAL, "the port must be a number 1..65535");
			v = v * 10 + (unsigned long)(port[i] - '0');
		}
		if (v > 65535)
			return art_error_set(AF_EINVAL, "the port must be a number 1..65535");
		out->port = (uint16_t)v;
		out->explicit_port = true;
	}
	rest = auth_end;
	{
		const char *hash = memchr(rest, '#', (size_t)(end - rest));
		size_t rlen = (size_t)((hash ? hash : end) - rest), o = 0;

		if (rlen == 0 || rest[0] == '?')
			out->path[o++] = '/';
		memcpy(out->path + o, rest, rlen);
		out->path[o + rlen] = '\0';
	}
	return 0;
}

int rt_url_format(const rt_url *u, char *out, size_t n)
{
	int w;

	if (u->explicit_port)
		w = snprintf(out, n, "%s://%s:%u%s", u->scheme, u->host, (unsigned)u->port, u->path);
	else
		w = snprintf(out, n, "%s://%s%s", u->scheme, u->host, u->path);
	return w < 0 || (size_t)w >= n ? -1 : w;
}

int rt_url_allowed(const rt_url *u, const char *const *hosts, size_t n_hosts)
{
	size_t i, hl = strlen(u->host);
	bool listed = false;

	for (i = 0; i < n_hosts && !listed; i++) {
		const char *e = hosts[i];

		if (strncmp(e, "*.", 2) == 0) {
			size_t el = strlen(e + 1); /* ".domain" */

			listed = !u->ip && hl > el && memcmp(u->host + hl - el, e + 1, el) == 0;
		} else {
			listed = strcmp(e, u->host) == 0;
		}
	}
	if (!listed)
		return art_error_set(AF_EDENIED, "host %s is not on the allow-list this agent was "
				     "built with (%zu %s)", u->host, n_hosts,
				     n_hosts == 1 ? "entry" : "entries");
	if (strcmp(u->scheme, "http") == 0 && !u->loopback)
		return art_error_set(AF_EDENIED, "plain http is only allowed to a loopback host; "
				     "use https://%s", u->host);
	return 0;
}

/* The IPv4 rules; v in host order. */
static bool v4_allowed(uint32_t v, bool loopback_host)
{
	uint8_t a = (uint8_t)(v >> 24), b = (uint8_t)(v >> 16);

	if (a == 0 || a >= 224)                  /* this network, multicast, reserved, broadcast */
		return false;
	if (a == 169 && b == 254)                /* link-local: cloud metadata services */
		return false;
	if (a == 127)
		return loopback_host;
	return !loopback_host;
}

bool rt_fetch_address_allowed(const struct sockaddr *sa, bool loopback_host)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return v4_allowed(ntohl(in->sin_addr.s_addr), loopback_host);
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
		uint32_t v4;

		if (IN6_IS_ADDR_V4MAPPED(a) || memcmp(a->s6_addr, nat64, 12) == 0) {
			memcpy(&v4, a->s6_addr + 12, 4);
			return v4_allowed(ntohl(v4), loopback_host);
		}
		if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
		    IN6_IS_ADDR_V4COMPAT(a))
			return false;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return loopback_host;
		return !loopback_host;
	}
	return false;
}

/* ---- http_fetch ------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct fetch_state {
	char *body;
	size_t len, cap;
	bool truncated, oom;
	char content_type[CONTENT_TYPE_MAX + 1];
	bool loopback_host;
	bool addr_refused;
	char addr[INET6_ADDRSTRLEN];
	char location[RT_URL_MAX + 1];  /* the raw Location of the last response */
	bool has_location, location_too_long;
} fetch_state;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	fetch_state *f = userp;
	size_t n = size * nmemb, take = n;

	if (f->len + take > RT_FETCH_BODY_MAX) {
		take = RT_FETCH_BODY_MAX - f->len;
		f->truncated = true;
	}
	if (f->len + take > f->cap) {
		size_t cap = f->cap ? f->cap : 16384;
		char *nb;

		while (cap < f->len + take)
			cap *= 2;
		if (cap > RT_FETCH_BODY_MAX)
			cap = RT_FETCH_BODY_MAX;
		if (!(nb = realloc(f->body, cap))) {
			f->oom = true;
			return 0;
		}
		f->body = nb;
		f->cap = cap;
	}
	memcpy(f->body + f->len, data, take);
	f->len += take;
	return f->truncated ? 0 : n; /* 0 stops the transfer: nothing past the cap is read */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	fetch_state *f = userp;
	size_t n = size * nmemb, i, o = 0;

	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		f->content_type[0] = '\0'; /* a new response (after 100 Continue) */
		f->has_location = f->location_too_long = false;
	} else if (n > 9 && strncasecmp(data, "location:", 9) == 0) {
		size_t end = n;

		for (i = 9; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
			;
		while (end > i && (data[end - 1] == '\r' || data[end - 1] == '\n' ||
				   data[end - 1] == ' ' || data[end - 1] == '\t'))
			end--;
		f->has_location = true;
		f->location_too_long = end - i > RT_URL_MAX;
		if (!f->location_too_long) {
			memcpy(f->location, data + i, end - i);
			f->location[end - i] = '\0';
		}
	} else if (n > 13 && strncasecmp(data, "content-type:", 13) == 0) {
		for (i = 13; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
			;
		for (; i < n && o < CONTENT_TYPE_MAX; i++)
			if ((unsigned char)data[i] >= 0x20 && (unsigned char)data[i] < 0x7f)
				f->content_type[o++] = data[i];
		while (o > 0 && f->content_type[o - 1] == ' ')
			o--;
		f->content_type[o] = '\0';
	}
	return n;
}

/* Every address curl connects to, after DNS: see rt_fetch_address_allowed. */
static curl_socket_t on_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	fetch_state *f = clientp;

	(void)purpose;
	if (!rt_fetch_address_allowed(&a->addr, f->loopback_host)) {
		const void *bytes = a->family == AF_INET6
					    ? (const void *)&((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr
					    : (const void *)&((struct sockaddr_in *)(void *)&a->addr)->sin_addr;

		if (!inet_ntop(a->family == AF_INET6 ? AF_INET6 : AF_INET, bytes, f->addr,
			       sizeof(f->addr)))
			snprintf(f->addr, sizeof(f->addr), "(family %d)", a->family);
		f->addr_refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Text (UTF-8 without control characters but tab, CR, LF) or base64. */
static json_t *body_json(const fetch_state *f, const char **encoding)
{
	size_t n = f->truncated ? art_utf8_whole(f->body, f->len) : f->len, i;
	unsigned char *b64;
	json_t *s;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)f->body[i];

		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
			break;
	}
	if (i == n && (s = json_stringn(n ? f->body : "", n)) != NULL) {
		*encoding = "text";
		return s;
	}
	*encoding = "base64";
	b64 = malloc(4 * ((f->len + 2) / 3) + 1);
	if (!b64)
		return NULL;
	EVP_EncodeBlock(b64, (const unsigned char *)(f->len ? f->body : ""), (int)f->len);
	s = json_string((const char *)b64);
	free(b64);
	return s;
}

static bool is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/*
 * The target of a redirect from base, from the raw Location value, parsed by
 * rt_url_parse exactly as a URL given by the agent would be. An absolute
 * (scheme://) or scheme-relative (//host) reference is parsed as written: its
 * host is never taken from libcurl. A relative reference keeps base's scheme,
 * host and port; libcurl's URL API resolves its path (dot segments) and
 * query against base, without decoding them.
 */
static int redirect_target(rt_url *out, const rt_url *base, const char *location)
{
	char buf[RT_URL_MAX + 300], *path = NULL, *query = NULL;
	size_t len = strlen(location), i;
	CURLU *h = NULL;
	int rc;

	for (i = 0; i < len && location[i] != '/' && location[i] != '?' && location[i] != '#'; i++)
		if (location[i] == ':')
			return rt_url_parse(out, location, len); /* scheme: absolute */
	if (len >= 2 && location[0] == '/' && location[1] == '/') {
		rc = snprintf(buf, sizeof(buf), "%s:%s", base->scheme, location);
		if (rc < 0 || (size_t)rc >= sizeof(buf))
			return art_error_set(AF_EINVAL, "the redirect URL is too long");
		return rt_url_parse(out, buf, (size_t)rc);
	}
	/* Relative: the bytes must pass the strict parser's rules first. */
	if (rt_url_format(base, buf, sizeof(buf)) < 0)
		return art_error_set(AF_EINVAL, "the URL is too long");
	if (!(h = curl_url())) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < len; i++)
		if (!url_byte_ok((unsigned char)location[i])) {
			rc = art_error_set(AF_EINVAL, "the redirect has a space, a control character, "
					   "a backslash or a non-ASCII byte at offset %zu", i);
			goto cleanup;
		}
	if (curl_url_set(h, CURLUPART_URL, buf, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_URL, location, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		rc = art_error_set(AF_EINVAL, "the redirect '%.200s' is not a valid reference",
				   location);
		goto cleanup;
	}
	if (curl_url_get(h, CURLUPART_QUERY, &query, 0) != CURLUE_OK)
		query = NULL;
	if (base->explicit_port)
		rc = snprintf(buf, sizeof(buf), "%s://%s:%u%s%s%s", base->scheme, base->host,
			      (unsigned)base->port, path, query ? "?" : "", query ? query : "");
	else
		rc = snprintf(buf, sizeof(buf), "%s://%s%s%s%s", base->scheme, base->host, path,
			      query ? "?" : "", query ? query : "");
	if (rc < 0 || (size_t)rc >= sizeof(buf)) {
		rc = art_error_set(AF_EINVAL, "the redirect URL is too long");
		goto cleanup;
	}
	rc = rt_url_parse(out, buf, (size_t)rc);
cleanup:
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(h);
	return rc;
}

static int tool_http_fetch(rt_tool_result *out, const rt_tool_ctx *ctx, json_t *args)
{
	json_t *url = json_object_get(args, "url"), *res, *body, *headers;
	const rt_policy *pol = ctx->policy;
	char where[RT_URL_MAX + 300], errbuf[CURL_ERROR_SIZE];
	const char *encoding = "text";
	fetch_state f;
	rt_url *u = NULL, *next = NULL;
	CURL *c = NULL;
	struct curl_slist *trace_headers = NULL;
	CURLcode cc;
	int64_t deadline = mono_ns() + (int64_t)RT_FETCH_TIMEOUT_MS * 1000000;
	long status = 0;
	unsigned hop;
	int rc = 0;

	memset(&f, 0, sizeof(f));
	if (!json_is_string(url))
		return answer_error(out, "invalid_args", "http_fetch needs a string url");
	if (!(u = malloc(sizeof(*u))) || !(next = malloc(sizeof(*next)))) {
		rc = answer_error(out, "internal", "out of memory");
		goto done;
	}
	if (rt_url_parse(u, json_string_value(url), json_string_length(url)) < 0) {
		out->denied = true;
		note(out, "http_fetch:url", "http_fetch refused a URL: %s", art_error_last());
		goto done;
	}
	if (rt_url_allowed(u, (const char *const *)pol->hosts, pol->n_hosts) < 0) {
		out->denied = true;
		note(out, "http_fetch:host", "http_fetch: %s", art_error_last());
		goto done;
	}
	if (ctx->chain && ctx->chain->deadline_ns && ctx->chain->deadline_ns < deadline)
		deadline = ctx->chain->deadline_ns;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK || !(c = curl_easy_init())) {
		rc = answer_error(out, "unavailable", "http_fetch: the HTTP client cannot start");
		goto done;
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");          /* ignore http_proxy & co */
	curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "agentfactory-runtime/" AF_VERSION " http_fetch");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &f);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	/* W3C trace context: the fetch continues the invocation's trace */
	if (rt_span_current()) {
		char header[RT_TRACESTATE_MAX + 32];
		struct curl_slist *more;

		snprintf(header, sizeof(header), "traceparent: ");
		rt_trace_format(&rt_span_current()->ctx, header + strlen(header));
		trace_headers = curl_slist_append(NULL, header);
		if (trace_headers && rt_span_current()->ctx.state[0]) {
			snprintf(header, sizeof(header), "tracestate: %s", rt_span_current()->ctx.state);
			if ((more = curl_slist_append(trace_headers, header)))
				trace_headers = more;
		}
		if (trace_headers)
			curl_easy_setopt(c, CURLOPT_HTTPHEADER, trace_headers);
		rt_span_set_str(rt_span_current(), "http.request.method", "GET");
	}

	for (hop = 0;; hop++) {
		int64_t left_ms = (deadline - mono_ns()) / 1000000;

		if (left_ms < 1) {
			rc = answer_error(out, "timeout", "http_fetch: out of time (%u ms per fetch, and "
					  "the invocation's deadline)", RT_FETCH_TIMEOUT_MS);
			goto done;
		}
		if (rt_url_format(u, where, sizeof(where)) < 0) {
			rc = answer_error(out, "invalid_args", "http_fetch: the URL is too long");
			goto done;
		}
		f.len = 0;
		f.truncated = f.oom = f.addr_refused = false;
		f.has_location = f.location_too_long = false;
		f.content_type[0] = '\0';
		f.loopback_host = u->loopback;
		errbuf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_URL, where);
		rt_span_set_str(rt_span_current(), "url.full", where);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left_ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)(left_ms < RT_FETCH_CONNECT_TIMEOUT_MS ? left_ms
									 : RT_FETCH_CONNECT_TIMEOUT_MS));
		cc = curl_easy_perform(c);
		if (f.addr_refused) {
			out->denied = true;
			note(out, hop ? "http_fetch:redirect" : "http_fetch:address",
			     "http_fetch: %s resolves to %s, which is refused (%s)", u->host, f.addr,
			     u->loopback ? "a loopback host must connect to a loopback address"
					 : "loopback, link-local, multicast and unspecified addresses "
					   "are never fetched for a non-loopback host");
			goto done;
		}
		if (f.oom) {
			rc = answer_error(out, "internal", "http_fetch: out of memory");
			goto done;
		}
		if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && f.truncated)) {
			rc = answer_error(out, cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "fetch_failed",
					  "http_fetch %s: %s", where,
					  errbuf[0] ? errbuf : curl_easy_strerror(cc));
			goto done;
		}
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		rt_span_set_int(rt_span_current(), "http.response.status_code", status);
		if (!is_redirect(status) || !f.has_location)
			break;
		if (hop == RT_FETCH_MAX_REDIRECTS) {
			rc = answer_error(out, "too_many_redirects",
					  "http_fetch: more than %u redirects (last: %s)",
					  RT_FETCH_MAX_REDIRECTS, where);
			goto done;
		}
		if (f.location_too_long) {
			out->denied = true;
			note(out, "http_fetch:redirect", "http_fetch: %s redirects to a URL longer "
			     "than %u bytes", where, RT_URL_MAX);
			goto done;
		}
		if (redirect_target(next, u, f.location) < 0 ||
		    rt_url_allowed(next, (const char *const *)pol->hosts, pol->n_hosts) < 0) {
			out->denied = true;
			note(out, "http_fetch:redirect", "http_fetch: %s redirects to a refused URL: %s",
			     where, art_error_last());
			goto done;
		}
		memcpy(u, next, sizeof(*u));
	}

	body = body_json(&f, &encoding);
	headers = json_object();
	if (headers && f.content_type[0])
		json_object_set_new(headers, "content-type", json_string(f.content_type));
	res = body && headers ? json_pack("{s:I, s:s, s:o, s:s, s:o, s:b, s:I}", "status",
					  (json_int_t)status, "url", where, "headers", headers,
					  "encoding", encoding, "body", body, "truncated",
					  f.truncated, "bytes", (json_int_t)f.len)
			      : NULL;
	if (!res) {
		json_decref(body);
		json_decref(headers);
		rc = answer_error(out, "internal", "http_fetch: out of memory");
		goto done;
	}
	rc = answer_ok(out, res);
done:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(trace_headers);
	free(f.body);
	free(u);
	free(next);
	return rc;
}

/* ---- agent_invoke --------------------------------------------------------------------- */

static _Thread_local const rt_call_chain *tls_parent;

const rt_call_chain *rt_tools__parent_chain(void)
{
	return tls_parent;
}

typedef struct invoke_job {
	rt_invoke_fn invoke;
	void *invoke_ctx;
	const char *name;
	const char *req;
	size_t req_len;
	const rt_call_chain *parent;
	rt_span *span;             /* the caller's current span: the callee's parent */
	rt_invoke_result res;
	int rc;
} invoke_job;

static void *invoke_main(void *arg)
{
	invoke_job *j = arg;

	tls_parent = j->parent;
	rt_span_set_current(j->span); /* the trace goes on in this thread */
	j->rc = j->invoke(j->invoke_ctx, j->name, j->req, j->req_len, &j->res);
	rt_span_set_current(NULL);
	tls_parent = NULL;
	return NULL;
}

/* "a -> b -> c" */
static void chain_text(char *out, size_t n, const rt_call_chain *chain, const char *then)
{
	size_t o = 0;
	uint32_t i;

	out[0] = '\0';
	for (i = 0; chain && i < chain->depth && o < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%s%s", i ? " -> " : "", chain->names[i]);
	if (then && o < n)
		snprintf(out + o, n - o, " -> %s", then);
}

static int tool_agent_invoke(rt_tool_result *out, const rt_tool_ctx *ctx, json_t *args)
{
	json_t *agent = json_object_get(args, "agent"), *input = json_object_get(args, "input"),
	       *inputs = json_object_get(args, "inputs"), *req_json, *answer, *output;
	const rt_host_env *env = ctx->env;
	rt_call_chain lone;
	const rt_call_chain *chain = ctx->chain;
	uint32_t max_depth = env->max_invoke_depth ? env->max_invoke_depth : RT_INVOKE_DEPTH_DEFAULT;
	const char *name;
	char path[600];
	invoke_job job;
	pthread_t thread;
	uint32_t i;
	int rc;

	if (max_depth > RT_INVOKE_DEPTH_MAX)
		max_depth = RT_INVOKE_DEPTH_MAX;
	if (!chain) {
		memset(&lone, 0, sizeof(lone));
		lone.names[0] = ctx->policy->name;
		lone.depth = 1;
		chain = &lone;
	}
	name = json_string_value(agent);
	if (!name || !art_manifest_name_valid(name))
		return answer_error(out, "invalid_args",
				    "agent_invoke needs \"agent\": the name of an agent of the store");
	if (input && inputs)
		return answer_error(out, "invalid_args",
				    "agent_invoke takes \"input\" or \"inputs\", not both");
	if (!input)
		input = inputs;
	if (input && !json_is_object(input))
		return answer_error(out, "invalid_args", "agent_invoke: \"input\" must be an object");
	for (i = 0; i < chain->depth; i++)
		if (strcmp(chain->names[i], name) == 0) {
			chain_text(path, sizeof(path), chain, name);
			note(out, "agent_invoke:cycle", "agent_invoke refused a cycle: %s", path);
			return answer_error(out, "cycle", "agent_invoke: %s is already on the call chain "
					    "(%s): a cycle is refused", name, path);
		}
	if (chain->depth >= max_depth) {
		chain_text(path, sizeof(path), chain, name);
		note(out, "agent_invoke:depth", "agent_invoke refused %s: over the depth limit of %u",
		     path, max_depth);
		return answer_error(out, "depth_limit", "agent_invoke: %s would be agent %u of the "
				    "call chain %s; the limit is %u", name, chain->depth + 1, path,
				    max_depth);
	}
	if (chain->deadline_ns && chain->deadline_ns - mono_ns() < 1000000)
		return answer_error(out, "timeout", "agent_invoke: the caller's deadline has passed");
	if (!env->invoke)
		return answer_error(out, "unavailable", "agent_invoke: this runtime has no engine to "
				    "run other agents with");

	memset(&job, 0, sizeof(job));
	req_json = input ? json_pack("{s:O}", "inputs", input) : json_pack("{s:{}}", "inputs");
	job.req = req_json ? json_dumps(req_json, JSON_COMPACT) : NULL;
	json_decref(req_json);
	if (!job.req)
		return answer_error(out, "internal", "out of memory");
	job.invoke = env->invoke;
	job.invoke_ctx = env->invoke_ctx;
	job.name = name;
	job.req_len = strlen(job.req);
	job.parent = chain;
	job.span = rt_span_current();
	if (pthread_create(&thread, NULL, invoke_main, &job) != 0) {
		free((char *)job.req);
		return answer_error(out, "unavailable", "agent_invoke: cannot start a thread for %s",
				    name);
	}
	pthread_join(thread, NULL);
	free((char *)job.req);
	if (job.rc < 0 && !job.res.body) {
		rc = answer_error(out, "internal", "agent_invoke: %s could not run: out of memory",
				  name);
	} else if (!job.res.error_code) {
		answer = json_loadb(job.res.body, job.res.body_len, 0, NULL);
		output = json_object_get(answer, "output");
		if (output) {
			json_incref(output);
			rc = answer_ok(out, output);
		} else {
			rc = answer_error(out, "internal", "agent_invoke: %s answered without output",
					  name);
		}
		json_decref(answer);
	} else {
		rc = answer_error(out, job.res.error_code, "%s: %s", name,
				  job.res.error_message ? job.res.error_message : job.res.error_code);
	}
	rt_invoke_result_clear(&job.res);
	return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

int rt_tool_run(rt_tool_result *out, int tool, const rt_tool_ctx *ctx, json_t *args)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (args && !json_is_object(args))
		return answer_error(out, "invalid_args", "args must be an object");
	switch (tool) {
	case RT_TOOL_CLOCK_NOW:
		rc = tool_clock_now(out);
		break;
	case RT_TOOL_KV_GET:
	case RT_TOOL_KV_PUT:
		rc = tool_kv(out, ctx, tool, args);
		break;
	case RT_TOOL_HTTP_FETCH:
		rc = tool_http_fetch(out, ctx, args);
		break;
	case RT_TOOL_AGENT_INVOKE:
		rc = tool_agent_invoke(out, ctx, args);
		break;
	default:
		out->denied = true;
		note(out, "tool:unknown", "no such tool in the catalogue");
		return 0;
	}
	if (rc == 0 && out->answer && out->answer_len > RT_MAX_HOST_REQUEST) {
		size_t len = out->answer_len;

		rc = answer_error(out, "too_large", "the tool's answer has %zu bytes, over the limit "
				  "of %zu", len, RT_MAX_HOST_REQUEST);
	}
	return rc;
}
