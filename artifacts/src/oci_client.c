/*
 * oci_client.c - an OCI Distribution Spec v1.1 client on libcurl
 * (art/oci.h, oci_internal.h, docs/registry.md).
 *
 * Invariants:
 *  - one curl easy handle per client, reset before every request (the
 *    connection cache survives the reset); redirects are followed by hand so
 *    that each hop is checked (no https -> http, another host only with
 *    allow_redirect, never with our Authorization header);
 *  - every response body has a cap: a Content-Length over it stops the
 *    transfer before the body is read, a body that grows past it is cut off;
 *  - authentication follows the registry's challenge: anonymous first, then
 *    Basic, or the bearer-token flow (GET realm?service=&scope= with the basic
 *    credentials when there are any); a token is reused until a 401 asks for
 *    another (expired) or another scope is needed (push);
 *  - GET and HEAD are retried on transport errors and 5xx (3 attempts with
 *    a short backoff); uploads are not (a failed upload starts again).
 */
#include "art/oci.h"

#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"
#include "oci_internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define URL_MAX 4096
#define AUTH_MAX 8192
#define ERR_BODY_MAX (64u * 1024u)
#define TOKEN_BODY_MAX (256u * 1024u)
#define AUTH_FILE_MAX (1u * 1024u * 1024u)
#define MAX_REDIRECTS 5
#define MAX_ATTEMPTS 3

struct art_oci_client {
	art_oci_ref ref;
	art_oci_opts opts;
	char scheme[8];
	char base[URL_MAX];        /* scheme://host/v2/repo */
	char basic[AUTH_MAX];      /* "Basic <b64>" or "" */
	char bearer[AUTH_MAX];     /* "Bearer <token>" or "" */
	char bearer_scope[64];     /* the actions the token was asked for */
	bool use_basic;            /* the registry asked for Basic */
	CURL *curl;
	art_oci_stats stats;
};

/* ---- references ---------------------------------------------------------- */

static bool repo_component_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			continue;
		if (ch == '.' || ch == '_' || ch == '-')
			continue;
		return false;
	}
	return true;
}

bool art_oci_tag_valid(const char *tag)
{
	size_t i, n = tag ? strlen(tag) : 0;

	if (n == 0 || n > ART_OCI_TAG_MAX || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
		return false;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)tag[i]) || tag[i] == '_' || tag[i] == '.' ||
		      tag[i] == '-'))
			return false;
	return true;
}

int art_oci_artifact_tag(char out[ART_OCI_TAG_MAX + 1], const char *name, const char *version)
{
	char tmp[512];
	size_t i;

	out[0] = '\0';
	if (!art_manifest_name_valid(name) || !art_manifest_version_valid(version))
		return art_error_set(AF_EINVAL, "not a valid name@version");
	snprintf(tmp, sizeof(tmp), "%s-%s", name, version);
	for (i = 0; tmp[i]; i++)
		if (tmp[i] == '+')
			tmp[i] = '_';
	if (!art_oci_tag_valid(tmp))
		return art_error_set(AF_EINVAL, "%s@%s makes no valid OCI tag (over %u characters)",
				     name, version, ART_OCI_TAG_MAX);
	memcpy(out, tmp, strlen(tmp) + 1);
	return 0;
}

int art_oci_ref_parse(art_oci_ref *out, const char *url)
{
	const char *p, *slash, *colon, *c;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!url || strncmp(url, "oci://", 6) != 0)
		return art_error_set(AF_EINVAL, "'%.200s' is not a registry reference: use "
				     "oci://HOST[:PORT]/REPO", url ? url : "");
	p = url + 6;
	if (!(slash = strchr(p, '/')) || slash == p || (size_t)(slash - p) >= sizeof(out->host))
		return art_error_set(AF_EINVAL, "'%.200s': no host or no repository (use "
				     "oci://HOST[:PORT]/REPO)", url);
	memcpy(out->host, p, (size_t)(slash - p));
	for (c = out->host; *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == ':' || *c == '[' ||
		      *c == ']'))
			return art_error_set(AF_EINVAL, "'%.200s': invalid host", url);
	p = slash + 1;
	/* a tag follows the last ':' after the last '/' */
	colon = strrchr(p, ':');
	if (colon && strchr(colon, '/'))
		colon = NULL;
	n = colon ? (size_t)(colon - p) : strlen(p);
	if (n == 0 || n >= sizeof(out->repo))
		return art_error_set(AF_EINVAL, "'%.200s': empty or over-long repository", url);
	memcpy(out->repo, p, n);
	for (c = out->repo; *c;) {
		const char *end = strchr(c, '/');
		size_t len = end ? (size_t)(end - c) : strlen(c);

		if (!repo_component_valid(c, len))
			return art_error_set(AF_EINVAL, "'%.200s': repository '%s' is not valid (lower "
					     "case letters, digits and . _ - between '/')", url,
					     out->repo);
		c += len + (end ? 1 : 0);
		if (end && !*c)
			return art_error_set(AF_EINVAL, "'%.200s': repository ends with '/'", url);
	}
	if (colon) {
		if (!art_oci_tag_valid(colon + 1))
			return art_error_set(AF_EINVAL, "'%.200s': invalid tag", url);
		snprintf(out->tag, sizeof(out->tag), "%s", colon + 1);
	}
	return 0;
}

void art_oci__fallback_tag(char out[72], const char *digest)
{
	snprintf(out, 72, "sha256-%.64s", strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest);
}

static bool host_is_loopback(const char *hostport)
{
	char h[256];
	char *colon;

	snprintf(h, sizeof(h), "%s", hostport);
	if (h[0] == '[') {
		char *end = strchr(h, ']');

		if (end)
			*end = '\0';
		return strcmp(h + 1, "::1") == 0;
	}
	if ((colon = strchr(h, ':')))
		*colon = '\0';
	return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0;
}

/* ---- credentials --------------------------------------------------------- */

static int set_basic(art_oci_client *c, const char *user, const char *pass)
{
	char plain[AUTH_MAX / 2], *b64 = NULL;
	int rc;

	if ((size_t)snprintf(plain, sizeof(plain), "%s:%s", user, pass) >= sizeof(plain))
		return art_error_set(AF_EINVAL, "credentials are too long");
	if ((rc = art_base64_encode(&b64, plain, strlen(plain))) < 0)
		return rc;
	snprintf(c->basic, sizeof(c->basic), "Basic %s", b64);
	free(b64);
	return 0;
}

/* The auths key for the client's host: "host", "https://host", "host/v2/"... */
static bool auth_key_matches(const char *key, const char *host)
{
	size_t n = strlen(host);

	if (strncmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncmp(key, "http://", 7) == 0)
		key += 7;
	return strncmp(key, host, n) == 0 && (key[n] == '\0' || key[n] == '/');
}

/* Credentials from a docker-style config.json (missing file: none). */
static int load_auth_file(art_oci_client *c)
{
	const char *path = c->opts.auth_file, *env;
	char buf[4096], *text = NULL;
	json_t *root = NULL, *auths, *entry;
	const char *key;
	uint8_t *dec = NULL;
	size_t len, dec_len;
	int rc = 0;

	if (!path && (env = getenv("REGISTRY_AUTH_FILE")) && *env)
		path = env;
	if (!path && (env = getenv("DOCKER_CONFIG")) && *env) {
		snprintf(buf, sizeof(buf), "%s/config.json", env);
		path = buf;
	}
	if (!path && (env = getenv("HOME")) && *env) {
		snprintf(buf, sizeof(buf), "%s/.docker/config.json", env);
		path = buf;
	}
	if (!path)
		return 0;
	rc = art_file_read(&text, &len, path, AUTH_FILE_MAX);
	if (rc == AF_ENOTFOUND) {
		art_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	if (!(root = json_loadb(text, len, 0, NULL))) {
		rc = art_error_set(AF_ESYNTAX, "credentials file %s is not JSON", path);
		goto cleanup;
	}
	auths = json_object_get(root, "auths");
	json_object_foreach(auths, key, entry) {
		const char *b64 = json_string_value(json_object_get(entry, "auth"));
		char *colon;

		if (!auth_key_matches(key, c->ref.host) || !b64)
			continue;
		if (art_base64_decode(&dec, &dec_len, b64) < 0 || !(colon = memchr(dec, ':', dec_len))) {
			rc = art_error_set(AF_ESYNTAX, "credentials file %s: the auth of %s is not "
					   "base64 of user:password", path, key);
			goto cleanup;
		}
		if (dec_len + 8 > AUTH_MAX / 2) {
			rc = art_error_set(AF_EINVAL, "credentials file %s: credentials too long", path);
			goto cleanup;
		}
		{
			char *plain = calloc(1, dec_len + 1);
			char *b;

			if (!plain) {
				rc = art_error_set(AF_ENOMEM, "out of memory");
				goto cleanup;
			}
			memcpy(plain, dec, dec_len);
			rc = art_base64_encode(&b, plain, dec_len);
			memset(plain, 0, dec_len);
			free(plain);
			if (rc < 0)
				goto cleanup;
			snprintf(c->basic, sizeof(c->basic), "Basic %s", b);
			free(b);
		}
		break;
	}
cleanup:
	if (dec)
		memset(dec, 0, dec_len);
	free(dec);
	if (text)
		memset(text, 0, len);
	free(text);
	json_decref(root);
	return rc;
}

/* ---- the client ---------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int art_oci_client_new(art_oci_client **out, const char *url, const art_oci_opts *opts)
{
	art_oci_client *c;
	const char *env;
	int rc;

	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return art_error_set(AF_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	if (!(c = calloc(1, sizeof(*c))))
		return art_error_set(AF_ENOMEM, "out of memory");
	if (opts)
		c->opts = *opts;
	if (c->opts.timeout_s <= 0)
		c->opts.timeout_s = 30;
	if ((env = getenv("AF_OCI_CHUNK")) && *env)
		c->opts.chunk_size = (size_t)strtoull(env, NULL, 10);
	if (c->opts.chunk_size == 0)
		c->opts.chunk_size = ART_OCI_CHUNK_DEFAULT;
	if ((rc = art_oci_ref_parse(&c->ref, url)) < 0)
		goto fail;
	if (c->opts.plain_http || (host_is_loopback(c->ref.host) && !c->opts.ca_file))
		snprintf(c->scheme, sizeof(c->scheme), "http");
	else
		snprintf(c->scheme, sizeof(c->scheme), "https");
	snprintf(c->base, sizeof(c->base), "%s://%s/v2/%s", c->scheme, c->ref.host, c->ref.repo);
	if (c->opts.username || c->opts.password) {
		if (!c->opts.username || !c->opts.password) {
			rc = art_error_set(AF_EINVAL, "give both a username and a password");
			goto fail;
		}
		if ((rc = set_basic(c, c->opts.username, c->opts.password)) < 0)
			goto fail;
	} else if ((rc = load_auth_file(c)) < 0) {
		goto fail;
	}
	if (!(c->curl = curl_easy_init())) {
		rc = art_error_set(AF_ENOMEM, "cannot start libcurl");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	art_oci_client_free(c);
	return rc;
}

void art_oci_client_free(art_oci_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	memset(c->basic, 0, sizeof(c->basic));
	memset(c->bearer, 0, sizeof(c->bearer));
	free(c);
}

const art_oci_stats *art_oci_client_stats(const art_oci_client *c)
{
	return &c->stats;
}

void art_oci_client_reset_stats(art_oci_client *c)
{
	memset(&c->stats, 0, sizeof(c->stats));
}

const art_oci_ref *art_oci_client_ref(const art_oci_client *c)
{
	return &c->ref;
}

const art_oci_opts *art_oci__opts(const art_oci_client *c)
{
	return &c->opts;
}

art_oci_stats *art_oci__stats(art_oci_client *c)
{
	return &c->stats;
}

/* ---- one HTTP exchange --------------------------------------------------- */

typedef struct resp {
	long status;
	art_buf body;
	bool too_big;
	bool no_memory;  /* the body could not be kept: out of memory, not too big */
	bool head;            /* a HEAD: Content-Length describes what a GET would send */
	char content_type[128];
	char digest[72];
	char location[URL_MAX];
	char www_auth[2048];
	bool oci_subject;
	long long content_length;
	char curl_error[CURL_ERROR_SIZE];
} resp;

static void resp_reset(resp *r, size_t max)
{
	art_buf_free(&r->body);
	memset(r, 0, sizeof(*r));
	r->body.max = max ? max : 1;
	r->content_length = -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	resp *r = ud;

	int rc = art_buf_append(&r->body, data, size * n);

	if (rc < 0) {
		if (rc == AF_ENOMEM)
			r->no_memory = true;
		else
			r->too_big = true;
		return 0;
	}
	return size * n;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	resp *r = ud;
	size_t len = size * n;
	const char *colon = memchr(data, ':', len);
	size_t name_len, vlen;
	const char *v;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget the previous headers */
		r->content_type[0] = r->digest[0] = r->location[0] = r->www_auth[0] = '\0';
		r->oci_subject = false;
		r->content_length = -1;
		return len;
	}
	if (!colon)
		return len;
	name_len = (size_t)(colon - data);
	v = colon + 1;
	vlen = len - name_len - 1;
#define IS(h) (name_len == sizeof(h) - 1 && strncasecmp(data, h, name_len) == 0)
	if (IS("content-type"))
		copy_value(r->content_type, sizeof(r->content_type), v, vlen);
	else if (IS("docker-content-digest"))
		copy_value(r->digest, sizeof(r->digest), v, vlen);
	else if (IS("location"))
		copy_value(r->location, sizeof(r->location), v, vlen);
	else if (IS("www-authenticate") && !r->www_auth[0])
		copy_value(r->www_auth, sizeof(r->www_auth), v, vlen);
	else if (IS("oci-subject"))
		r->oci_subject = true;
	else if (IS("content-length")) {
		char num[32];

		copy_value(num, sizeof(num), v, vlen);
		r->content_length = strtoll(num, NULL, 10);
		/* refuse a body over the cap before reading it */
		if (!r->head && r->content_length > 0 &&
		    (unsigned long long)r->content_length > r->body.max) {
			r->too_big = true;
			return 0;
		}
	}
#undef IS
	return len;
}

/* What a request sends. */
typedef struct req {
	const char *method;
	char url[URL_MAX];
	const char *content_type;
	const char *accept;
	const char *extra_header;   /* e.g. Content-Range */
	const void *body;
	size_t body_len;
	size_t max_body;
	const char *scope_actions;  /* "pull" or "pull,push" */
	const char *what;           /* for messages */
	bool idempotent;            /* may be retried */
} req;

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct {
		const uint8_t *p;
		size_t left;
	} *src = ud;
	size_t len = size * n < src->left ? size * n : src->left;

	memcpy(buf, src->p, len);
	src->p += len;
	src->left -= len;
	return len;
}

/* host[:port] of an absolute URL into out; false if not http(s). */
static bool url_host(const char *url, char *scheme, size_t scheme_cap, char *out, size_t cap)
{
	const char *p = strstr(url, "://"), *end;
	size_t n;

	if (!p || (size_t)(p - url) >= scheme_cap)
		return false;
	memcpy(scheme, url, (size_t)(p - url));
	scheme[p - url] = '\0';
	if (strcmp(scheme, "http") && strcmp(scheme, "https"))
		return false;
	p += 3;
	end = p + strcspn(p, "/?#");
	n = (size_t)(end - p);
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* snprintf for URLs: a truncated URL is cut (and then fails), never overflows. */
static void url_fmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void url_fmt(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, cap, fmt, ap);
	va_end(ap);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A one-line summary of a registry error body ({"errors":[{code,message}]}). */
static void error_summary(char *out, size_t cap, const resp *r)
{
	json_t *root = r->body.data ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
	json_t *e = json_array_get(json_object_get(root, "errors"), 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	size_t i;

	out[0] = '\0';
	if (code || msg)
		snprintf(out, cap, " (%.40s%s%.160s)", code ? code : "", code && msg ? ": " : "",
			 msg ? msg : "");
	for (i = 0; out[i]; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
	json_decref(root);
}

static int fetch_token(art_oci_client *c, const char *challenge, const char *actions);

/* Value of param in a WWW-Authenticate challenge ('key="value"'). */
static bool challenge_param(const char *ch, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = ch;

	while ((p = strstr(p, key))) {
		if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[klen] == '=') {
			const char *v = p + klen + 1, *end;

			if (*v == '"') {
				v++;
				end = strchr(v, '"');
			} else {
				end = v + strcspn(v, ",");
			}
			if (!end || (size_t)(end - v) >= cap)
				return false;
			memcpy(out, v, (size_t)(end - v));
			out[end - v] = '\0';
			return true;
		}
		p += klen;
	}
	return false;
}

/*
 * Perform one request with authentication, redirects and retries.
 * rsp is reset here; on return it holds the final response (any status).
 * Fails only when no HTTP answer came (transport), a cap was hit, or the
 * registry refused our credentials.
 */
static int perform(art_oci_client *c, req *q, resp *rsp)
{
	char url[URL_MAX], auth_header[AUTH_MAX + 32], host[256], scheme[8], prev_scheme[8];
	char ctype[160], accept[600], summary[256];
	struct curl_slist *headers = NULL;
	int attempt = 0, auths = 0, redirects = 0, rc = 0;
	bool same_host = true;
	CURLcode cc;

	snprintf(url, sizeof(url), "%s", q->url);
	snprintf(prev_scheme, sizeof(prev_scheme), "%s", c->scheme);
	for (;;) {
		struct {
			const uint8_t *p;
			size_t left;
		} src = {q->body, q->body_len};
		CURL *h = c->curl;

		resp_reset(rsp, q->max_body);
		rsp->head = strcmp(q->method, "HEAD") == 0;
		curl_easy_reset(h);
		curl_slist_free_all(headers);
		headers = NULL;
		headers = curl_slist_append(headers, "Expect:");
		if (q->content_type) {
			snprintf(ctype, sizeof(ctype), "Content-Type: %s", q->content_type);
			headers = curl_slist_append(headers, ctype);
		}
		if (q->accept) {
			snprintf(accept, sizeof(accept), "Accept: %s", q->accept);
			headers = curl_slist_append(headers, accept);
		}
		if (q->extra_header)
			headers = curl_slist_append(headers, q->extra_header);
		if (same_host) {
			if (c->bearer[0])
				snprintf(auth_header, sizeof(auth_header), "Authorization: %s", c->bearer);
			else if (c->use_basic && c->basic[0])
				snprintf(auth_header, sizeof(auth_header), "Authorization: %s", c->basic);
			else
				auth_header[0] = '\0';
			if (auth_header[0])
				headers = curl_slist_append(headers, auth_header);
		}
		if (!headers) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			break;
		}
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_USERAGENT, "agentfactory/" AF_VERSION);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->opts.timeout_s);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->opts.timeout_s);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, rsp);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, rsp);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rsp->curl_error);
		if (c->opts.ca_file)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->opts.ca_file);
		if (strcmp(q->method, "HEAD") == 0) {
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
			c->stats.heads++;
		} else if (strcmp(q->method, "GET") != 0) {
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
			curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, &src);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
		}
		c->stats.requests++;
		cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rsp->status);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
		if (rsp->no_memory) {
			rc = art_error_set(AF_ENOMEM, "registry %s: %s: out of memory reading the "
					   "answer", c->ref.host, q->what);
			break;
		}
		if (rsp->too_big) {
			rc = art_error_set(AF_ETOOBIG, "registry %s: %s: the answer is over %zu bytes "
					   "(announced %lld): refused", c->ref.host, q->what,
					   q->max_body, rsp->content_length);
			break;
		}
		if (cc != CURLE_OK) {
			if (q->idempotent && ++attempt < MAX_ATTEMPTS) {
				sleep_ms(200L * attempt * attempt);
				continue;
			}
			rc = art_error_set(AF_EIO, "registry %s: %s/%s: %s: %s (is the registry up and "
					   "the address right? for TLS give --ca-file, for a plain-HTTP "
					   "registry --plain-http)", c->ref.host, c->ref.host,
					   c->ref.repo, q->what,
					   rsp->curl_error[0] ? rsp->curl_error : curl_easy_strerror(cc));
			break;
		}
		if (rsp->status >= 500 && q->idempotent && ++attempt < MAX_ATTEMPTS) {
			sleep_ms(200L * attempt * attempt);
			continue;
		}
		if (rsp->status == 401 && same_host && auths < 2) {
			auths++;
			if (strncasecmp(rsp->www_auth, "Bearer", 6) == 0) {
				if ((rc = fetch_token(c, rsp->www_auth, q->scope_actions)) < 0)
					break;
				continue;
			}
			if (strncasecmp(rsp->www_auth, "Basic", 5) == 0) {
				if (!c->basic[0]) {
					rc = art_error_set(AF_EDENIED, "registry %s: %s: credentials "
							   "required: give --username/--password or "
							   "a config.json with an 'auths' entry for %s "
							   "(REGISTRY_AUTH_FILE, DOCKER_CONFIG)",
							   c->ref.host, q->what, c->ref.host);
					break;
				}
				if (c->use_basic) {
					rc = art_error_set(AF_EDENIED, "registry %s: %s: the credentials "
							   "were refused (wrong username or password)",
							   c->ref.host, q->what);
					break;
				}
				c->use_basic = true;
				continue;
			}
		}
		if (rsp->status == 401 && !c->basic[0]) {
			error_summary(summary, sizeof(summary), rsp);
			rc = art_error_set(AF_EDENIED, "registry %s: %s: HTTP 401%s: credentials "
					   "required: give --username/--password or a config.json "
					   "with an 'auths' entry for %s (REGISTRY_AUTH_FILE, "
					   "DOCKER_CONFIG)", c->ref.host, q->what, summary,
					   c->ref.host);
			break;
		}
		if (rsp->status == 401 || (rsp->status == 403 && same_host)) {
			error_summary(summary, sizeof(summary), rsp);
			rc = art_error_set(AF_EDENIED, "registry %s: %s: HTTP %ld%s: the credentials "
					   "were refused or do not allow this (check --username/"
					   "--password or the auths of config.json)", c->ref.host,
					   q->what, rsp->status, summary);
			break;
		}
		if ((rsp->status == 301 || rsp->status == 302 || rsp->status == 303 ||
		     rsp->status == 307 || rsp->status == 308) &&
		    (strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0)) {
			char next[URL_MAX];

			if (++redirects > MAX_REDIRECTS || !rsp->location[0]) {
				rc = art_error_set(AF_EIO, "registry %s: %s: too many redirects",
						   c->ref.host, q->what);
				break;
			}
			if (rsp->location[0] == '/')
				url_fmt(next, sizeof(next), "%s://%s%s", prev_scheme,
					 same_host ? c->ref.host : host, rsp->location);
			else
				snprintf(next, sizeof(next), "%s", rsp->location);
			if (!url_host(next, scheme, sizeof(scheme), host, sizeof(host))) {
				rc = art_error_set(AF_EIO, "registry %s: %s: redirect to an unusable "
						   "location '%.200s'", c->ref.host, q->what, next);
				break;
			}
			if (strcmp(prev_scheme, "https") == 0 && strcmp(scheme, "https") != 0) {
				rc = art_error_set(AF_EDENIED, "registry %s: %s: refusing a redirect from "
						   "https to http (%.200s)", c->ref.host, q->what, next);
				break;
			}
			same_host = strcmp(host, c->ref.host) == 0;
			if (!same_host && !c->opts.allow_redirect) {
				rc = art_error_set(AF_EDENIED, "registry %s: %s: redirected to another "
						   "host (%s); refused: pass --allow-redirect to follow "
						   "redirects to blob storage (content is still checked by "
						   "digest; credentials are not sent there)", c->ref.host,
						   q->what, host);
				break;
			}
			snprintf(prev_scheme, sizeof(prev_scheme), "%s", scheme);
			snprintf(url, sizeof(url), "%s", next);
			continue;
		}
		break;
	}
	curl_slist_free_all(headers);
	return rc;
}

/* The bearer-token flow: GET realm?service=..&scope=.. (with basic creds). */
static int fetch_token(art_oci_client *c, const char *challenge, const char *actions)
{
	char realm[1024], service[256], scope[512], url[URL_MAX], *esc_s = NULL, *esc_sc = NULL;
	char host[256], scheme[8], summary[256];
	const char *tok;
	json_t *root = NULL;
	resp r;
	req q;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	if (!challenge_param(challenge, "realm", realm, sizeof(realm)))
		return art_error_set(AF_EIO, "registry %s: a bearer challenge without a realm",
				     c->ref.host);
	if (!challenge_param(challenge, "service", service, sizeof(service)))
		service[0] = '\0';
	/* ask for what we need, whatever scope the challenge names */
	snprintf(scope, sizeof(scope), "repository:%s:%s", c->ref.repo,
		 actions ? actions : "pull");
	if (!url_host(realm, scheme, sizeof(scheme), host, sizeof(host)))
		return art_error_set(AF_EIO, "registry %s: token realm '%.200s' is not an http(s) URL",
				     c->ref.host, realm);
	if (strcmp(scheme, "http") == 0 && !host_is_loopback(host) && !c->opts.plain_http)
		return art_error_set(AF_EDENIED, "registry %s: the token server %s is plain HTTP: "
				     "refused (credentials would travel in clear; --plain-http "
				     "allows it)", c->ref.host, host);
	esc_s = curl_easy_escape(c->curl, service, 0);
	esc_sc = curl_easy_escape(c->curl, scope, 0);
	if (!esc_s || !esc_sc) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	url_fmt(url, sizeof(url), "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
		 esc_s, esc_sc);
	{
		/* the token request carries the basic credentials, never a token */
		char saved[AUTH_MAX];
		bool saved_basic = c->use_basic;

		snprintf(saved, sizeof(saved), "%s", c->bearer);
		c->bearer[0] = '\0';
		c->use_basic = c->basic[0] != '\0';
		q.method = "GET";
		url_fmt(q.url, sizeof(q.url), "%s", url);
		q.max_body = TOKEN_BODY_MAX;
		q.what = "token request";
		q.idempotent = true;
		/* the realm may be another host: perform() treats its URL as given */
		rc = perform(c, &q, &r);
		c->use_basic = saved_basic;
		(void)saved;
	}
	if (rc < 0)
		goto cleanup;
	if (r.status == 401 || r.status == 403) {
		rc = art_error_set(AF_EDENIED, "registry %s: the token server %s refused the "
				   "credentials (HTTP %ld): check --username/--password or the "
				   "auths of config.json", c->ref.host, host, r.status);
		goto cleanup;
	}
	if (r.status != 200) {
		error_summary(summary, sizeof(summary), &r);
		rc = art_error_set(AF_EIO, "registry %s: the token server %s answered HTTP %ld%s",
				   c->ref.host, host, r.status, summary);
		goto cleanup;
	}
	root = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
	tok = json_string_value(json_object_get(root, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(root, "access_token"));
	if (!tok || !*tok || strlen(tok) + 8 > sizeof(c->bearer) || strpbrk(tok, "\r\n ")) {
		rc = art_error_set(AF_EIO, "registry %s: the token server %s sent no usable token",
				   c->ref.host, host);
		goto cleanup;
	}
	snprintf(c->bearer, sizeof(c->bearer), "Bearer %s", tok);
	snprintf(c->bearer_scope, sizeof(c->bearer_scope), "%s", actions ? actions : "pull");
	rc = 0;
cleanup:
	curl_free(esc_s);
	curl_free(esc_sc);
	json_decref(root);
	art_buf_free(&r.body);
	return rc;
}

/* A request to the registry; a token for a narrower scope is dropped first. */
static int call(art_oci_client *c, req *q, resp *r)
{
	if (q->scope_actions && c->bearer[0] && strcmp(c->bearer_scope, q->scope_actions) != 0 &&
	    strcmp(c->bearer_scope, "pull,push") != 0)
		c->bearer[0] = '\0';
	return perform(c, q, r);
}

static int unexpected(art_oci_client *c, const resp *r, const char *what, const char *hint)
{
	char summary[256];

	error_summary(summary, sizeof(summary), r);
	return art_error_set(r->status >= 500 ? AF_EIO : r->status == 404 ? AF_ENOTFOUND : AF_EIO,
			     "registry %s: %s/%s: %s: HTTP %ld%s%s%s", c->ref.host, c->ref.host,
			     c->ref.repo, what, r->status, summary, hint ? ": " : "",
			     hint ? hint : "");
}

/* ---- blobs --------------------------------------------------------------- */

static bool digest_valid(const char *d)
{
	size_t i;

	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (i = 7; i < 71; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return true;
}

int art_oci__blob_exists(art_oci_client *c, const char *digest, bool *exists)
{
	char what[128];
	resp r;
	req q;
	int rc;

	*exists = false;
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	if (!digest_valid(digest))
		return art_error_set(AF_EINVAL, "invalid digest");
	snprintf(what, sizeof(what), "blob %.19s...", digest);
	q.method = "HEAD";
	url_fmt(q.url, sizeof(q.url), "%s/blobs/%s", c->base, digest);
	q.max_body = 1;
	q.what = what;
	q.scope_actions = "pull";
	q.idempotent = true;
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status == 200)
		*exists = true;
	else if (r.status != 404)
		rc = unexpected(c, &r, what, NULL);
cleanup:
	art_buf_free(&r.body);
	return rc;
}

int art_oci__blob_get(art_oci_client *c, const char *digest, uint64_t size, uint8_t **out)
{
	char what[128], got[ART_DIGEST_STR_LEN + 1];
	resp r;
	req q;
	int rc;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	if (!digest_valid(digest))
		return art_error_set(AF_EINVAL, "invalid digest");
	if (size > ART_PART_MAX_SIZE)
		return art_error_set(AF_ETOOBIG, "registry %s: blob %.19s... is said to be %llu bytes, "
				     "over the %u-byte cap", c->ref.host, digest,
				     (unsigned long long)size, ART_PART_MAX_SIZE);
	snprintf(what, sizeof(what), "blob %.19s...", digest);
	q.method = "GET";
	url_fmt(q.url, sizeof(q.url), "%s/blobs/%s", c->base, digest);
	q.max_body = (size_t)size;
	q.what = what;
	q.scope_actions = "pull";
	q.idempotent = true;
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status != 200) {
		rc = unexpected(c, &r, what, r.status == 404 ? "the blob is missing from the "
				"repository (push it again)" : NULL);
		goto cleanup;
	}
	art_manifest_digest(got, r.body.data ? r.body.data : "", r.body.len);
	if (r.body.len != size || strcmp(got, digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "registry %s: %s/%s: blob %.19s... does not match "
				   "its digest (%zu bytes, %llu expected; got %.19s...): tampered "
				   "or damaged in the registry, refused", c->ref.host, c->ref.host,
				   c->ref.repo, digest, r.body.len, (unsigned long long)size, got);
		goto cleanup;
	}
	*out = (uint8_t *)art_buf_detach(&r.body);
	c->stats.blobs_down++;
	c->stats.bytes_down += size;
cleanup:
	art_buf_free(&r.body);
	return rc;
}

/* Resolve an upload Location against the registry. */
static int upload_url(art_oci_client *c, char *out, size_t cap, const char *location,
		      const char *query)
{
	char host[256], scheme[8];
	const char *sep;

	if (!location[0])
		return art_error_set(AF_EIO, "registry %s: an upload without a Location", c->ref.host);
	if (location[0] == '/') {
		snprintf(out, cap, "%s://%s%s", c->scheme, c->ref.host, location);
	} else {
		if (!url_host(location, scheme, sizeof(scheme), host, sizeof(host)) ||
		    (strcmp(host, c->ref.host) != 0 && !c->opts.allow_redirect))
			return art_error_set(AF_EDENIED, "registry %s: upload location on another "
					     "host ('%.200s'): refused (--allow-redirect)",
					     c->ref.host, location);
		snprintf(out, cap, "%s", location);
	}
	if (query) {
		sep = strchr(out, '?') ? "&" : "?";
		if (strlen(out) + strlen(sep) + strlen(query) + 1 > cap)
			return art_error_set(AF_EIO, "registry %s: upload location too long",
					     c->ref.host);
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", sep, query);
	}
	return 0;
}

int art_oci__blob_upload(art_oci_client *c, const char *digest, const void *data, size_t len,
			 const char *mount_from, bool *mounted)
{
	char what[128], query[400], location[URL_MAX], range[96];
	size_t off = 0;
	struct timespec t0, t1;
	resp r;
	req q;
	int rc;

	if (mounted)
		*mounted = false;
	memset(&r, 0, sizeof(r));
	if (!digest_valid(digest))
		return art_error_set(AF_EINVAL, "invalid digest");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(what, sizeof(what), "upload of blob %.19s...", digest);
	memset(&q, 0, sizeof(q));
	q.method = "POST";
	if (mount_from)
		url_fmt(q.url, sizeof(q.url), "%s/blobs/uploads/?mount=%s&from=%s", c->base, digest,
			 mount_from);
	else
		url_fmt(q.url, sizeof(q.url), "%s/blobs/uploads/", c->base);
	q.max_body = ERR_BODY_MAX;
	q.what = what;
	q.scope_actions = "pull,push";
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status == 201 && mount_from) {
		if (mounted)
			*mounted = true;
		c->stats.blobs_mounted++;
		goto cleanup;
	}
	if (r.status != 202) {
		rc = unexpected(c, &r, what, "the registry refused to start an upload");
		goto cleanup;
	}
	snprintf(location, sizeof(location), "%s", r.location);
	if (len > c->opts.chunk_size) {
		while (off < len) {
			size_t n = len - off < c->opts.chunk_size ? len - off : c->opts.chunk_size;

			memset(&q, 0, sizeof(q));
			q.method = "PATCH";
			if ((rc = upload_url(c, q.url, sizeof(q.url), location, NULL)) < 0)
				goto cleanup;
			snprintf(range, sizeof(range), "Content-Range: %zu-%zu", off, off + n - 1);
			q.extra_header = range;
			q.content_type = "application/octet-stream";
			q.body = (const uint8_t *)data + off;
			q.body_len = n;
			q.max_body = ERR_BODY_MAX;
			q.what = what;
			q.scope_actions = "pull,push";
			if ((rc = call(c, &q, &r)) < 0)
				goto cleanup;
			if (r.status != 202) {
				rc = unexpected(c, &r, what, "a chunk was refused");
				goto cleanup;
			}
			snprintf(location, sizeof(location), "%s", r.location);
			off += n;
		}
	}
	memset(&q, 0, sizeof(q));
	q.method = "PUT";
	snprintf(query, sizeof(query), "digest=%s", digest);
	if ((rc = upload_url(c, q.url, sizeof(q.url), location, query)) < 0)
		goto cleanup;
	q.content_type = "application/octet-stream";
	q.body = off < len ? (const uint8_t *)data + off : NULL;
	q.body_len = len - off;
	q.max_body = ERR_BODY_MAX;
	q.what = what;
	q.scope_actions = "pull,push";
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status != 201) {
		rc = unexpected(c, &r, what, "the registry refused the blob");
		goto cleanup;
	}
	c->stats.blobs_up++;
	c->stats.bytes_up += len;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (c->opts.progress)
		fprintf(c->opts.progress, "  pushed blob %.19s... %zu bytes in %.0f ms%s\n", digest,
			len, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
			len > c->opts.chunk_size ? " (chunked)" : "");
cleanup:
	art_buf_free(&r.body);
	return rc;
}

/* ---- manifests ----------------------------------------------------------- */

#define MANIFEST_ACCEPT \
	"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " \
	"application/vnd.docker.distribution.manifest.v2+json, " \
	"application/vnd.docker.distribution.manifest.list.v2+json"

int art_oci_manifest_head(art_oci_client *c, const char *reference, char digest[72],
			  bool *exists)
{
	char what[200];
	resp r;
	req q;
	int rc;

	digest[0] = '\0';
	*exists = false;
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	snprintf(what, sizeof(what), "manifest %.130s", reference);
	q.method = "HEAD";
	url_fmt(q.url, sizeof(q.url), "%s/manifests/%s", c->base, reference);
	q.accept = MANIFEST_ACCEPT;
	q.max_body = 1;
	q.what = what;
	q.scope_actions = "pull";
	q.idempotent = true;
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status == 200) {
		*exists = true;
		if (digest_valid(r.digest))
			snprintf(digest, 72, "%s", r.digest);
	} else if (r.status != 404) {
		rc = unexpected(c, &r, what, NULL);
	}
cleanup:
	art_buf_free(&r.body);
	return rc;
}

int art_oci__manifest_get(art_oci_client *c, const char *reference, char **out, size_t *len,
			  char media_type[128], char digest[72])
{
	char what[200], got[ART_DIGEST_STR_LEN + 1];
	resp r;
	req q;
	int rc;

	*out = NULL;
	*len = 0;
	media_type[0] = digest[0] = '\0';
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	snprintf(what, sizeof(what), "manifest %.130s", reference);
	q.method = "GET";
	url_fmt(q.url, sizeof(q.url), "%s/manifests/%s", c->base, reference);
	q.accept = MANIFEST_ACCEPT;
	q.max_body = ART_OCI_MANIFEST_MAX;
	q.what = what;
	q.scope_actions = "pull";
	q.idempotent = true;
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status != 200) {
		rc = unexpected(c, &r, what, r.status == 404 ? "no such tag or manifest in the "
				"repository (push it first)" : NULL);
		goto cleanup;
	}
	art_manifest_digest(got, r.body.data ? r.body.data : "", r.body.len);
	if (strncmp(reference, "sha256:", 7) == 0 && strcmp(reference, got) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "registry %s: %s/%s: manifest %.19s... does not "
				   "match its digest (got %.19s...): tampered in the registry, "
				   "refused", c->ref.host, c->ref.host, c->ref.repo, reference, got);
		goto cleanup;
	}
	snprintf(media_type, 128, "%s", r.content_type);
	{
		char *semi = strchr(media_type, ';');

		if (semi)
			*semi = '\0';
	}
	snprintf(digest, 72, "%s", got);
	*len = r.body.len;
	*out = art_buf_detach(&r.body);
	c->stats.manifests_down++;
cleanup:
	art_buf_free(&r.body);
	return rc;
}

int art_oci__manifest_put(art_oci_client *c, const char *reference, const char *media_type,
			  const void *data, size_t len, bool *oci_subject)
{
	char what[200];
	resp r;
	req q;
	int rc;

	if (oci_subject)
		*oci_subject = false;
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	snprintf(what, sizeof(what), "push of manifest %.130s", reference);
	q.method = "PUT";
	url_fmt(q.url, sizeof(q.url), "%s/manifests/%s", c->base, reference);
	q.content_type = media_type;
	q.body = data;
	q.body_len = len;
	q.max_body = ERR_BODY_MAX;
	q.what = what;
	q.scope_actions = "pull,push";
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status != 201) {
		rc = unexpected(c, &r, what, "the registry refused the manifest");
		goto cleanup;
	}
	if (oci_subject)
		*oci_subject = r.oci_subject;
	c->stats.manifests_up++;
cleanup:
	art_buf_free(&r.body);
	return rc;
}

/* ---- referrers and tags -------------------------------------------------- */

int art_oci__referrers(art_oci_client *c, const char *digest, json_t **out, bool *from_fallback)
{
	char what[128], tag[72], mt[128], got[72], *text = NULL;
	json_t *root = NULL;
	size_t len;
	resp r;
	req q;
	int rc;

	*out = NULL;
	if (from_fallback)
		*from_fallback = false;
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	if (!digest_valid(digest))
		return art_error_set(AF_EINVAL, "invalid digest");
	snprintf(what, sizeof(what), "referrers of %.19s...", digest);
	q.method = "GET";
	url_fmt(q.url, sizeof(q.url), "%s/referrers/%s", c->base, digest);
	q.accept = "application/vnd.oci.image.index.v1+json";
	q.max_body = ART_OCI_MANIFEST_MAX;
	q.what = what;
	q.scope_actions = "pull";
	q.idempotent = true;
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status == 200 && strncmp(r.content_type, "application/vnd.oci.image.index.v1+json",
				       39) == 0) {
		root = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
		if (!json_is_array(json_object_get(root, "manifests"))) {
			rc = art_error_set(AF_ECORRUPT, "registry %s: %s: not an image index",
					   c->ref.host, what);
			goto cleanup;
		}
		*out = root;
		root = NULL;
		goto cleanup;
	}
	if (r.status != 404 && r.status != 400 && r.status != 405) {
		rc = unexpected(c, &r, what, NULL);
		goto cleanup;
	}
	/* no referrers API: the tag schema */
	art_oci__fallback_tag(tag, digest);
	if (from_fallback)
		*from_fallback = true;
	rc = art_oci__manifest_get(c, tag, &text, &len, mt, got);
	if (rc == AF_ENOTFOUND) {
		art_error_clear();
		*out = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType",
				 "application/vnd.oci.image.index.v1+json", "manifests");
		rc = *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (rc < 0)
		goto cleanup;
	root = json_loadb(text, len, 0, NULL);
	if (!json_is_array(json_object_get(root, "manifests"))) {
		rc = art_error_set(AF_ECORRUPT, "registry %s: %s: the fallback tag %s is not an image "
				   "index", c->ref.host, what, tag);
		goto cleanup;
	}
	*out = root;
	root = NULL;
cleanup:
	free(text);
	json_decref(root);
	art_buf_free(&r.body);
	return rc;
}

int art_oci__tags(art_oci_client *c, json_t **out)
{
	json_t *root = NULL, *tags;
	resp r;
	req q;
	int rc;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	memset(&q, 0, sizeof(q));
	q.method = "GET";
	url_fmt(q.url, sizeof(q.url), "%s/tags/list?n=10000", c->base);
	q.max_body = ART_OCI_MANIFEST_MAX;
	q.what = "tag list";
	q.scope_actions = "pull";
	q.idempotent = true;
	if ((rc = call(c, &q, &r)) < 0)
		goto cleanup;
	if (r.status == 404) {
		*out = json_array();
		rc = *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (r.status != 200) {
		rc = unexpected(c, &r, "tag list", NULL);
		goto cleanup;
	}
	root = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
	tags = json_object_get(root, "tags");
	if (json_is_null(tags) || !tags) {
		*out = json_array();
	} else if (json_is_array(tags)) {
		*out = json_incref(tags);
	} else {
		rc = art_error_set(AF_ECORRUPT, "registry %s: a malformed tag list", c->ref.host);
		goto cleanup;
	}
	rc = *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	json_decref(root);
	art_buf_free(&r.body);
	return rc;
}
