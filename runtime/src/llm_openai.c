/*
 * llm_openai.c - the "openai" model provider (rt/llm.h, docs/llm.md): one
 * POST {base}/chat/completions per model call, over libcurl.
 *
 * Invariants:
 *  - The API key comes from a file (re-read when it changes) or the
 *    environment, never from a template; it is only ever copied into the
 *    Authorization header. Error messages that quote the endpoint's answer
 *    have any occurrence of the key replaced by "***".
 *  - A call ends by the invocation's deadline: each attempt's timeout is
 *    clamped to the time left, and no retry starts (or waits) past it.
 *  - Retries: at most c->retries, on 408 / 429 / 500 / 502 / 503 / 504,
 *    timeouts and connection errors; the wait doubles from backoff_ms (cap
 *    max_backoff_ms) with jitter in [wait/2, wait], or is exactly what
 *    Retry-After / retry-after-ms asks (a longer wait than
 *    max_retry_after_ms ends the call instead).
 *  - The response body is capped (max_response): the transfer is cut when
 *    it passes the cap. A usable answer is the first choice's message
 *    object, which is what the guest gets (at most RT_LLM_RESPONSE_MAX).
 *  - libcurl is initialised once per process; each thread keeps one easy
 *    handle (reset before each call, so its live connections are reused
 *    and nothing else carries over), freed when the thread exits.
 *    CURLOPT_NOSIGNAL is set: the sandbox owns the signals.
 */
#include "rt/trace.h"
#include "rt/llm.h"

#include "art/error.h"
#include "art/util.h"
#include "rt/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#ifndef AF_VERSION
#define AF_VERSION "0.0.0"
#endif

#define ENDPOINT_MAX 2048u
#define AUTH_PREFIX "Authorization: Bearer "
/* An attempt needs at least this much time before the deadline to start. */
#define MIN_ATTEMPT_MS 10

typedef struct openai {
	char *endpoint;                /* .../chat/completions */
	char *model;                   /* override, or NULL */
	bool legacy_max_tokens;        /* send max_tokens, not max_completion_tokens */
	char *key_file;                /* or NULL */
	uint32_t timeout_ms, connect_timeout_ms, retries, backoff_ms, max_backoff_ms,
		max_retry_after_ms;
	size_t max_response;
	FILE *log;
	void (*sleep_ms)(void *arg, uint32_t ms);
	void *sleep_arg;
	/* the key: from the environment (fixed) or the file (reloaded) */
	pthread_mutex_t key_mu;
	char *key;                     /* NULL: no Authorization header */
	struct timespec key_mtime;
	dev_t key_dev;
	ino_t key_ino;
	off_t key_size;
	char description[ENDPOINT_MAX + 256];
} openai;

/* ---- libcurl, once per process; a handle per thread -------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static pthread_key_t handle_key;

static void handle_destroy(void *h)
{
	curl_easy_cleanup(h);
}

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (curl_init_rc == CURLE_OK && pthread_key_create(&handle_key, handle_destroy) != 0)
		curl_init_rc = CURLE_FAILED_INIT;
}

static int curl_ready(void)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return art_error_set(AF_EIO, "openai: libcurl cannot start: %s",
				     curl_easy_strerror(curl_init_rc));
	return 0;
}

/* The calling thread's handle, reset; NULL on out of memory. */
static CURL *thread_handle(void)
{
	CURL *h = pthread_getspecific(handle_key);

	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && pthread_setspecific(handle_key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	return h;
}

/* ---- small helpers --------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void default_sleep(void *arg, uint32_t ms)
{
	struct timespec until;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	/* Signals (the sandbox's deadline timer) interrupt the sleep: go on. */
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}

static uint32_t jitter(uint32_t wait)
{
	uint32_t r = 0;

	if (wait < 2)
		return wait;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)now_ms() * 2654435761u;
	return wait / 2 + r % (wait - wait / 2 + 1);
}

/* Is c a byte that may appear in a bearer token (RFC 6750 b64token, plus
 * the other visible ASCII some servers use)? No space, control or non-ASCII:
 * nothing that could end or split the header. */
static bool key_byte_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Trim ASCII whitespace around text[0..*len) in place. */
static char *trim(char *text, size_t *len)
{
	char *p = text;
	size_t n = *len;

	while (n && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	*len = n;
	return p;
}

static int check_key(const char *key, size_t len, const char *source)
{
	size_t i;

	if (len == 0)
		return art_error_set(AF_EINVAL, "openai: %s is empty", source);
	for (i = 0; i < len; i++)
		if (!key_byte_ok((unsigned char)key[i]))
			return art_error_set(AF_EINVAL,
					     "openai: %s holds a character that cannot go in an HTTP header "
					     "(byte %zu): it must be one line of visible ASCII",
					     source, i + 1);
	return 0;
}

/* (Re)read the key file when its identity, size or mtime changed. Called
 * with key_mu held. */
static int key_file_load(openai *o)
{
	struct stat st;
	char *text = NULL, *k, *copy;
	size_t len = 0;
	int rc;

	if (stat(o->key_file, &st) != 0)
		return art_error_set(errno == ENOENT ? AF_ENOTFOUND : AF_EIO,
				     "openai: API key file %s: %s", o->key_file, strerror(errno));
	if (o->key && st.st_dev == o->key_dev && st.st_ino == o->key_ino &&
	    st.st_size == o->key_size && st.st_mtim.tv_sec == o->key_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == o->key_mtime.tv_nsec)
		return 0;
	if ((rc = art_file_read(&text, &len, o->key_file, RT_LLM_KEY_FILE_MAX)) < 0)
		return rc;
	k = trim(text, &len);
	rc = check_key(k, len, "the API key file");
	copy = rc == 0 ? strndup(k, len) : NULL;
	if (rc == 0 && !copy)
		rc = art_error_set(AF_ENOMEM, "out of memory");
	memset(text, 0, strlen(text));
	free(text);
	if (rc < 0)
		return rc;
	if (o->key) {
		memset(o->key, 0, strlen(o->key));
		free(o->key);
	}
	o->key = copy;
	o->key_dev = st.st_dev;
	o->key_ino = st.st_ino;
	o->key_size = st.st_size;
	o->key_mtime = st.st_mtim;
	return 0;
}

/* "Authorization: Bearer KEY" for this call, or NULL without a key. A key
 * file that vanished or went bad keeps the last good key (and logs). */
static int auth_header(openai *o, char **out, FILE *log, const char *agent)
{
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&o->key_mu);
	if (o->key_file && key_file_load(o) < 0) {
		if (!o->key)
			rc = AF_EIO;
		else
			rt_log_printf(log, "warn", "llm", agent,
				      "openai: cannot reload the API key file, keeping the last key: %s",
				      art_error_last());
	}
	if (rc == 0 && o->key && asprintf(out, AUTH_PREFIX "%s", o->key) < 0) {
		*out = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&o->key_mu);
	return rc;
}

static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/* Copy text for a message, every occurrence of key replaced by "***". */
static void scrub(char *dst, size_t cap, const char *text, size_t len, const char *key)
{
	size_t klen = key ? strlen(key) : 0, i = 0, o = 0;

	while (i < len && o + 1 < cap) {
		if (klen >= 4 && i + klen <= len && memcmp(text + i, key, klen) == 0) {
			size_t k;

			for (k = 0; k < 3 && o + 1 < cap; k++)
				dst[o++] = '*';
			i += klen;
			continue;
		}
		dst[o++] = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
		i++;
	}
	dst[o] = '\0';
}

static int add_header(struct curl_slist **list, const char *header)
{
	struct curl_slist *next = curl_slist_append(*list, header);

	if (!next)
		return art_error_set(AF_ENOMEM, "out of memory");
	*list = next;
	return 0;
}

/* ---- base URL ---------------------------------------------------------------------------- */

/*
 * {base}/chat/completions. A base without a path (http://host:port) gets
 * /v1 first, so "http://localhost:11434" and "http://localhost:11434/v1"
 * both work; a base that already ends in /chat/completions is taken as is.
 */
static int make_endpoint(char **out, const char *base)
{
	const char *scheme_end, *path;
	size_t len;
	int rc;

	*out = NULL;
	if (strncasecmp(base, "http://", 7) != 0 && strncasecmp(base, "https://", 8) != 0)
		return art_error_set(AF_EINVAL, "openai: base URL '%.200s' must start with http:// or https://",
				     base);
	len = strlen(base);
	if (len > ENDPOINT_MAX - 32)
		return art_error_set(AF_EINVAL, "openai: base URL is longer than %u bytes", ENDPOINT_MAX - 32);
	if (strpbrk(base, " \t\r\n?#"))
		return art_error_set(AF_EINVAL,
				     "openai: base URL '%.200s' must have no spaces, query or fragment", base);
	while (len && base[len - 1] == '/')
		len--;
	scheme_end = strstr(base, "://") + 3;
	if ((size_t)(scheme_end - base) >= len)
		return art_error_set(AF_EINVAL, "openai: base URL '%.200s' has no host", base);
	path = memchr(scheme_end, '/', len - (size_t)(scheme_end - base));
	if (len >= 17 && memcmp(base + len - 17, "/chat/completions", 17) == 0)
		rc = asprintf(out, "%.*s", (int)len, base);
	else
		rc = asprintf(out, "%.*s%s/chat/completions", (int)len, base, path ? "" : "/v1");
	if (rc < 0) {
		*out = NULL;
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	return 0;
}

/* Does the endpoint talk plain HTTP to a host other than loopback? */
static bool cleartext_remote(const char *endpoint)
{
	const char *h = endpoint + 7;
	size_t n;

	if (strncasecmp(endpoint, "http://", 7) != 0)
		return false;
	n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
	return !((n == 9 && strncasecmp(h, "localhost", 9) == 0) || (n == 5 && memcmp(h, "[::1]", 5) == 0) ||
		 (n >= 7 && strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == n));
}

/* ---- one attempt ---------------------------------------------------------------------------- */

typedef struct attempt {
	art_buf body;
	long status;
	int64_t retry_after_ms;        /* -1: none given */
	CURLcode cc;
	char curl_error[CURL_ERROR_SIZE];
	bool oom;                      /* the body was cut for want of memory, not by the cap */
} attempt;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	attempt *a = arg;

	/* Refusing the bytes makes curl stop the transfer (CURLE_WRITE_ERROR). */
	int rc = art_buf_append(&a->body, p, size * n);

	if (rc < 0) {
		a->oom = rc == AF_ENOMEM;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	attempt *a = arg;
	size_t len = size * n;
	char value[64];
	size_t vlen;
	bool ms;

	if (len > 15 && strncasecmp(p, "retry-after-ms:", 15) == 0) {
		ms = true;
		p += 15;
		len -= 15;
	} else if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		ms = false;
		p += 12;
		len -= 12;
	} else {
		return size * n;
	}
	vlen = len < sizeof(value) - 1 ? len : sizeof(value) - 1;
	memcpy(value, p, vlen);
	value[vlen] = '\0';
	{
		char *v = value, *end;
		double d;

		vlen = strlen(v);
		v = trim(v, &vlen);
		v[vlen] = '\0';
		d = strtod(v, &end);
		if (end != v && *end == '\0' && d >= 0 && d < 1e7) {
			int64_t w = (int64_t)(ms ? d : d * 1000.0);

			/* retry-after-ms is the finer of the two: it wins. */
			if (ms || a->retry_after_ms < 0)
				a->retry_after_ms = w;
		} else if (!ms && a->retry_after_ms < 0) {
			time_t when = curl_getdate(v, NULL);

			if (when != (time_t)-1) {
				time_t now = time(NULL);

				a->retry_after_ms = when > now ? (int64_t)(when - now) * 1000 : 0;
			}
		}
	}
	return size * n;
}

static void attempt_run(const openai *o, CURL *h, struct curl_slist *headers, const char *req,
			size_t len, uint32_t timeout_ms, attempt *a)
{
	a->status = 0;
	a->retry_after_ms = -1;
	a->curl_error[0] = '\0';
	a->oom = false;
	art_buf_free(&a->body);
	a->body.max = o->max_response;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, o->endpoint);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "agentfactory-runtime/" AF_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(o->connect_timeout_ms < timeout_ms ? o->connect_timeout_ms : timeout_ms));
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_response);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->curl_error);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	a->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	/* The handle keeps pointers into this call's data: drop them now. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
}

static bool status_retryable(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static bool curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* The endpoint's own error text ({"error":{"message":...}} or a string),
 * scrubbed of the key, into msg. */
static void endpoint_error(const attempt *a, const char *key, char *msg, size_t cap)
{
	json_t *root = json_loadb(a->body.data ? a->body.data : "", a->body.len, 0, NULL);
	json_t *err = json_object_get(root, "error");
	const char *text = json_string_value(json_object_get(err, "message"));

	if (!text)
		text = json_string_value(err);
	if (!text)
		text = json_string_value(json_object_get(root, "message"));
	if (text)
		scrub(msg, cap, text, strlen(text), key);
	else if (a->body.len && !root)
		scrub(msg, cap, a->body.data, a->body.len < 200 ? a->body.len : 200, key);
	else
		msg[0] = '\0';
	json_decref(root);
}

static json_t *request_message(json_t *msg);

/* A 2xx body: the first choice's message, compact, for the guest. */
static int take_message(const openai *o, attempt *a, const char *key, char **resp, size_t *resp_len)
{
	json_error_t jerr;
	json_t *root = json_loadb(a->body.data ? a->body.data : "", a->body.len, JSON_REJECT_DUPLICATES,
				  &jerr);
	json_t *choices = json_object_get(root, "choices"), *msg;
	char detail[240];
	int rc = 0;

	if (!json_is_object(root)) {
		rc = art_error_set(AF_ESYNTAX, "openai: %s answered HTTP %ld with a body that is not a JSON "
					       "object (%s at byte %d)",
				   o->endpoint, a->status, root ? "not an object" : jerr.text,
				   root ? 0 : jerr.position);
		goto cleanup;
	}
	msg = json_object_get(json_array_get(choices, 0), "message");
	if (rt_span_recording(rt_span_current())) { /* OpenTelemetry GenAI response attributes */
		rt_span *span = rt_span_current();
		json_t *usage = json_object_get(root, "usage"), *v;
		const char *s;

		if ((s = json_string_value(json_object_get(root, "model"))))
			rt_span_set_str(span, "gen_ai.response.model", s);
		if ((s = json_string_value(json_object_get(root, "id"))))
			rt_span_set_str(span, "gen_ai.response.id", s);
		if (json_is_integer(v = json_object_get(usage, "prompt_tokens")))
			rt_span_set_int(span, "gen_ai.usage.input_tokens", json_integer_value(v));
		if (json_is_integer(v = json_object_get(usage, "completion_tokens")))
			rt_span_set_int(span, "gen_ai.usage.output_tokens", json_integer_value(v));
		if ((s = json_string_value(json_object_get(json_array_get(choices, 0), "finish_reason"))))
			rt_span_add_list(span, "gen_ai.response.finish_reasons", s);
		rt_span_set_int(span, "http.response.status_code", a->status);
	}
	if (!json_is_object(msg)) {
		endpoint_error(a, key, detail, sizeof(detail));
		rc = art_error_set(AF_ESYNTAX, "openai: %s answered HTTP %ld without choices[0].message%s%s",
				   o->endpoint, a->status, detail[0] ? ": " : "", detail);
		goto cleanup;
	}
	{
		json_t *clean = request_message(msg);

		*resp = clean ? json_dumps(clean, JSON_COMPACT) : NULL;
		json_decref(clean);
	}
	if (!*resp) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	*resp_len = strlen(*resp);
	if (*resp_len > RT_LLM_RESPONSE_MAX) {
		free(*resp);
		*resp = NULL;
		*resp_len = 0;
		rc = art_error_set(AF_ETOOBIG, "openai: the model's message has more than %zu bytes",
				   RT_LLM_RESPONSE_MAX);
	}
cleanup:
	json_decref(root);
	return rc;
}

/* An assistant message as the API takes it back: what a request may carry
 * (role, content, name, tool_calls with id, type, function), without the
 * response-only fields (refusal, annotations, audio, reasoning ...).
 * Returns a new reference, or NULL without memory. */
static json_t *request_message(json_t *msg)
{
	static const char *const keep[] = {"role", "content", "name", "tool_calls", "tool_call_id"};
	json_t *out = json_object(), *calls, *v;
	size_t i, k;

	for (k = 0; out && k < sizeof(keep) / sizeof(keep[0]); k++)
		if ((v = json_object_get(msg, keep[k])) && !json_is_null(v) &&
		    strcmp(keep[k], "tool_calls") != 0)
			json_object_set(out, keep[k], v);
	if (out && !json_object_get(out, "content") && json_object_get(msg, "content"))
		json_object_set_new(out, "content", json_null()); /* a tool-call turn: content null */
	calls = json_object_get(msg, "tool_calls");
	if (out && json_is_array(calls) && json_array_size(calls)) {
		json_t *list = json_array();

		for (i = 0; list && i < json_array_size(calls); i++) {
			json_t *c = json_array_get(calls, i), *f = json_object_get(c, "function");
			json_t *one = json_pack("{s:O?, s:s, s:{s:O?, s:O?}}", "id", json_object_get(c, "id"),
						"type", "function", "function", "name",
						json_object_get(f, "name"), "arguments",
						json_object_get(f, "arguments"));
			if (!one || json_array_append_new(list, one) < 0) {
				json_decref(list);
				list = NULL;
			}
		}
		if (!list || json_object_set_new(out, "tool_calls", list) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

/*
 * The request to send (OpenAI chat completions, as reasoning models take
 * it): "model" replaced when configured; "stream": false explicit; the
 * token cap as max_completion_tokens (max_tokens with
 * --llm-max-tokens-field max_tokens); assistant messages sent back without
 * their response-only fields. temperature and top_p go out only when the
 * agent's request has them (its template set them).
 */
static int request_body(const openai *o, const char *req, size_t len, char **owned)
{
	json_t *root, *msgs, *cap;
	size_t i;
	int rc = 0;

	*owned = NULL;
	root = json_loadb(req, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return art_error_set(AF_ESYNTAX, "openai: the agent's request is not a JSON object");
	}
	if (o->model && json_object_set_new(root, "model", json_string(o->model)) != 0)
		rc = AF_ENOMEM;
	if (rc == 0 && json_object_set_new(root, "stream", json_false()) != 0)
		rc = AF_ENOMEM;
	cap = json_object_get(root, "max_completion_tokens");
	if (!cap)
		cap = json_object_get(root, "max_tokens");
	if (rc == 0 && cap) {
		json_incref(cap);
		json_object_del(root, "max_tokens");
		json_object_del(root, "max_completion_tokens");
		if (json_object_set_new(root, o->legacy_max_tokens ? "max_tokens" : "max_completion_tokens",
					cap) != 0)
			rc = AF_ENOMEM;
	}
	msgs = json_object_get(root, "messages");
	for (i = 0; rc == 0 && json_is_array(msgs) && i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i), *clean;

		if (!json_is_object(m) ||
		    !json_string_value(json_object_get(m, "role")) ||
		    strcmp(json_string_value(json_object_get(m, "role")), "assistant") != 0)
			continue;
		if (!(clean = request_message(m)) || json_array_set_new(msgs, i, clean) != 0)
			rc = AF_ENOMEM;
	}
	if (rc == 0 && !(*owned = json_dumps(root, JSON_COMPACT)))
		rc = AF_ENOMEM;
	json_decref(root);
	return rc ? art_error_set(AF_ENOMEM, "out of memory") : 0;
}

static void log_retry(const openai *o, const rt_llm_call *call, uint32_t n, const char *why,
		      uint32_t wait_ms)
{
	char attempt_s[16], wait_s[16];
	char msg[400];
	rt_log_field f[3] = {{"provider", "openai", 6}, {"attempt", attempt_s, 0}, {"wait_ms", wait_s, 0}};

	f[1].len = (size_t)snprintf(attempt_s, sizeof(attempt_s), "%u", n + 1);
	f[2].len = (size_t)snprintf(wait_s, sizeof(wait_s), "%u", wait_ms);
	snprintf(msg, sizeof(msg), "openai: %.300s; retrying in %u ms (attempt %u of %u)", why, wait_ms,
		 n + 2, o->retries + 1);
	rt_log_emit(call && call->log ? call->log : o->log, "warn", "llm", call ? call->agent : NULL,
		    msg, strlen(msg), f, 3);
}

static int openai_call(void *ctx, const rt_llm_call *call, const char *req, size_t len, char **resp,
		       size_t *resp_len)
{
	openai *o = ctx;
	FILE *log = call && call->log ? call->log : o->log;
	const char *agent = call ? call->agent : NULL;
	int64_t deadline = call && call->deadline_ms > 0 ? call->deadline_ms : 0, t0 = now_ms();
	struct curl_slist *headers = NULL;
	char *auth = NULL, *owned = NULL, why[512], detail[240];
	const char *key;
	attempt a;
	CURL *h;
	uint32_t n;
	int rc;

	*resp = NULL;
	*resp_len = 0;
	memset(&a, 0, sizeof(a));
	if ((rc = curl_ready()) < 0)
		return rc;
	if (!(h = thread_handle()))
		return art_error_set(AF_ENOMEM, "openai: out of memory for a connection");
	if ((rc = request_body(o, req, len, &owned)) < 0)
		return rc;
	if ((rc = auth_header(o, &auth, log, agent)) < 0)
		goto cleanup;
	/* No "Expect: 100-continue": it costs a round trip (or a 1 s stall). */
	if ((rc = add_header(&headers, "Content-Type: application/json")) < 0 ||
	    (rc = add_header(&headers, "Accept: application/json")) < 0 ||
	    (rc = add_header(&headers, "Expect:")) < 0 || (auth && (rc = add_header(&headers, auth)) < 0))
		goto cleanup;
	/* W3C trace context: the model call continues the invocation's trace */
	if (rt_span_current()) {
		char tp[RT_TRACESTATE_MAX + 32];

		snprintf(tp, sizeof(tp), "traceparent: ");
		rt_trace_format(&rt_span_current()->ctx, tp + strlen(tp));
		if ((rc = add_header(&headers, tp)) < 0)
			goto cleanup;
		if (rt_span_current()->ctx.state[0]) {
			snprintf(tp, sizeof(tp), "tracestate: %s", rt_span_current()->ctx.state);
			if ((rc = add_header(&headers, tp)) < 0)
				goto cleanup;
		}
	}
	/* This call's copy of the key (the file may be reloaded meanwhile). */
	key = auth ? auth + strlen(AUTH_PREFIX) : NULL;

	for (n = 0;; n++) {
		uint32_t timeout = o->timeout_ms, wait;
		bool retry;

		if (deadline) {
			int64_t left = deadline - now_ms();

			if (left < MIN_ATTEMPT_MS) {
				rc = art_error_set(AF_EIO, "openai: the invocation's deadline passed%s%s",
						   n ? " while retrying after: " : "", n ? why : "");
				goto cleanup;
			}
			if ((int64_t)timeout > left)
				timeout = (uint32_t)left;
		}
		attempt_run(o, h, headers, owned, strlen(owned), timeout, &a);
		if (a.cc == CURLE_OK && a.status >= 200 && a.status < 300) {
			rc = take_message(o, &a, key, resp, resp_len);
			goto cleanup;
		}
		if (a.cc == CURLE_WRITE_ERROR && a.oom) {
			rc = art_error_set(AF_ENOMEM, "openai: out of memory for the answer of %s",
					   o->endpoint);
			goto cleanup;
		}
		if (a.cc == CURLE_WRITE_ERROR || a.cc == CURLE_FILESIZE_EXCEEDED) {
			rc = art_error_set(AF_ETOOBIG, "openai: %s answered more than %zu bytes: the transfer "
						       "was cut", o->endpoint, o->max_response);
			goto cleanup;
		}
		if (a.cc != CURLE_OK) {
			retry = curl_retryable(a.cc);
			snprintf(why, sizeof(why), "%s: %s", o->endpoint,
				 a.cc == CURLE_OPERATION_TIMEDOUT
					 ? "no complete answer within the timeout"
					 : a.curl_error[0] ? a.curl_error : curl_easy_strerror(a.cc));
			if (a.cc == CURLE_OPERATION_TIMEDOUT)
				snprintf(why + strlen(why), sizeof(why) - strlen(why), " (%u ms)", timeout);
		} else {
			retry = status_retryable(a.status);
			endpoint_error(&a, key, detail, sizeof(detail));
			snprintf(why, sizeof(why), "%s answered HTTP %ld%s%s%s", o->endpoint, a.status,
				 a.status == 401 || a.status == 403 ? " (the API key was refused)"
				 : a.status == 404 ? " (check the base URL and the model name)" : "",
				 detail[0] ? ": " : "", detail);
		}
		if (!retry || n >= o->retries) {
			if (retry && n)
				rc = art_error_set(AF_EIO, "openai: %s (gave up after %u attempts in %lld ms)",
						   why, n + 1, (long long)(now_ms() - t0));
			else
				rc = art_error_set(AF_EIO, "openai: %s", why);
			goto cleanup;
		}
		if (a.retry_after_ms >= 0) {
			if (a.retry_after_ms > (int64_t)o->max_retry_after_ms) {
				rc = art_error_set(AF_EIO, "openai: %s; it asks to retry after %lld ms, longer than "
							   "the %u ms the runtime waits",
						   why, (long long)a.retry_after_ms, o->max_retry_after_ms);
				goto cleanup;
			}
			wait = (uint32_t)a.retry_after_ms;
		} else {
			uint64_t base = (uint64_t)o->backoff_ms << (n < 20 ? n : 20);

			wait = jitter((uint32_t)(base < o->max_backoff_ms ? base : o->max_backoff_ms));
		}
		if (deadline && now_ms() + wait + MIN_ATTEMPT_MS >= deadline) {
			rc = art_error_set(AF_EIO, "openai: %s; no time is left before the invocation's "
						   "deadline for another attempt", why);
			goto cleanup;
		}
		log_retry(o, call, n, why, wait);
		(o->sleep_ms ? o->sleep_ms : default_sleep)(o->sleep_arg, wait);
	}
cleanup:
	art_buf_free(&a.body);
	curl_slist_free_all(headers);
	free_secret(auth);
	free(owned);
	return rc;
}

static int openai_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	return openai_call(ctx, NULL, req, len, resp, resp_len);
}

static void openai_free(void *ctx)
{
	openai *o = ctx;
	CURL *h;

	if (!o)
		return;
	/* The calling thread's handle (usually the main thread, which runs no
	 * key destructor); other threads free theirs when they exit. */
	if (curl_init_rc == CURLE_OK && (h = pthread_getspecific(handle_key))) {
		pthread_setspecific(handle_key, NULL);
		curl_easy_cleanup(h);
	}
	free(o->endpoint);
	free(o->model);
	free(o->key_file);
	free_secret(o->key);
	pthread_mutex_destroy(&o->key_mu);
	free(o);
}

int rt_llm_openai_open(rt_llm_provider **out, const rt_llm_config *c)
{
	rt_llm_provider *p = NULL;
	openai *o = NULL;
	const char *env_key = NULL, *env_name = NULL;
	int rc;

	if (!out || !c)
		return art_error_set(AF_EINVAL, "openai: NULL argument");
	*out = NULL;
	if ((rc = curl_ready()) < 0)
		return rc;
	o = calloc(1, sizeof(*o));
	p = calloc(1, sizeof(*p));
	if (!o || !p) {
		free(o);
		free(p);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&o->key_mu, NULL);
	o->timeout_ms = c->timeout_ms ? c->timeout_ms : RT_LLM_DEFAULT_TIMEOUT_MS;
	o->connect_timeout_ms = c->connect_timeout_ms ? c->connect_timeout_ms
						      : RT_LLM_DEFAULT_CONNECT_TIMEOUT_MS;
	o->retries = c->retries;
	o->backoff_ms = c->backoff_ms ? c->backoff_ms : RT_LLM_DEFAULT_BACKOFF_MS;
	o->max_backoff_ms = c->max_backoff_ms ? c->max_backoff_ms : RT_LLM_DEFAULT_MAX_BACKOFF_MS;
	o->max_retry_after_ms = c->max_retry_after_ms ? c->max_retry_after_ms
						      : RT_LLM_DEFAULT_MAX_RETRY_AFTER_MS;
	o->max_response = c->max_response ? c->max_response : RT_LLM_DEFAULT_MAX_RESPONSE;
	o->log = c->log;
	o->sleep_ms = c->sleep_ms;
	o->sleep_arg = c->sleep_arg;
	if ((rc = make_endpoint(&o->endpoint, c->base_url ? c->base_url : RT_LLM_DEFAULT_BASE_URL)) < 0)
		goto cleanup;
	o->legacy_max_tokens = c->max_tokens_field && strcmp(c->max_tokens_field, "max_tokens") == 0;
	if ((c->model && !(o->model = strdup(c->model))) ||
	    (c->api_key_file && !(o->key_file = strdup(c->api_key_file)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (o->key_file) {
		if ((rc = key_file_load(o)) < 0)
			goto cleanup;
	} else {
		env_name = "AF_LLM_API_KEY";
		env_key = getenv(env_name);
		if (!env_key || !*env_key) {
			env_name = "OPENAI_API_KEY";
			env_key = getenv(env_name);
		}
		if (env_key && *env_key) {
			size_t klen = strlen(env_key);
			char what[64];

			snprintf(what, sizeof(what), "$%s", env_name);
			if ((rc = check_key(env_key, klen, what)) < 0)
				goto cleanup;
			if (!(o->key = strdup(env_key))) {
				rc = art_error_set(AF_ENOMEM, "out of memory");
				goto cleanup;
			}
		} else {
			env_name = NULL;
		}
	}
	snprintf(o->description, sizeof(o->description),
		 "openai: POST %s, model %s, API key %s%s, timeout %u ms (connect %u ms), %u retries",
		 o->endpoint, o->model ? o->model : "from each template",
		 o->key_file ? "from " : env_name ? "from $" : "none",
		 o->key_file ? o->key_file : env_name ? env_name : "", o->timeout_ms,
		 o->connect_timeout_ms, o->retries);
	if (o->key && cleartext_remote(o->endpoint))
		rt_log_printf(o->log, "warn", "llm", NULL,
			      "openai: the API key goes over plain http to %s: use https outside the "
			      "machine or the cluster",
			      o->endpoint);
	p->name = "openai";
	p->chat = openai_chat;
	p->chat_call = openai_call;
	p->ctx = o;
	p->destroy = openai_free;
	p->description = o->description;
	*out = p;
	return 0;
cleanup:
	openai_free(o);
	free(p);
	return rc;
}
