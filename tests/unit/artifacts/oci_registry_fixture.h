/*
 * oci_registry_fixture.h - a small OCI registry for unit tests, in memory,
 * on 127.0.0.1 (libmicrohttpd, one thread): blobs (monolithic, chunked and
 * mounted uploads), manifests by tag and digest, the referrers API (or, off,
 * the tag-schema fallback), tags/list; and misbehaviour on demand: basic or
 * bearer authentication, 5xx, redirects to the same or another host,
 * tampered blobs and manifests, oversized manifests, failures after N
 * requests. Include it in one test file. Its own memory goes through
 * REG_MALLOC/REG_CALLOC/REG_REALLOC (a fault-injection test defines them as
 * the __real_ allocators so that the registry never fails).
 */
#ifndef AF_OCI_REGISTRY_FIXTURE_H
#define AF_OCI_REGISTRY_FIXTURE_H

#include "art/oci.h"
#include "art/util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The token the fake token server hands out. */
#ifndef TOKEN
#define TOKEN "tok-0123456789"
#endif

#ifndef REG_MALLOC
#define REG_MALLOC malloc
#define REG_CALLOC calloc
#define REG_REALLOC realloc
#endif

/* ---- the fake registry ----------------------------------------------------- */

typedef struct blob {
	char repo[128], digest[72];
	uint8_t *data;
	size_t len;
} blob;

typedef struct manifest {
	char repo[128], digest[72], media_type[128];
	char *data;
	size_t len;
} manifest;

typedef struct tag {
	char repo[128], name[140], digest[72];
} tag;

typedef struct upload {
	char repo[128];
	uint8_t *data;
	size_t len;
	bool used;
} upload;

enum { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };
enum { REDIRECT_NONE, REDIRECT_SAME_HOST, REDIRECT_OTHER_HOST, REDIRECT_LOOP };

typedef struct registry {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t mu;
	blob blobs[256];
	size_t n_blobs;
	manifest manifests[256];
	size_t n_manifests;
	tag tags[256];
	size_t n_tags;
	upload uploads[64];
	size_t n_uploads;
	/* behaviour */
	bool referrers_api;
	int auth;
	const char *basic;        /* the expected "Basic ..." header */
	int fail_status;          /* every /v2 request answers this (0: none) */
	int fail_count;           /* ... this many times (0: always) */
	bool tamper_blobs;        /* GET of a blob: first byte flipped */
	bool tamper_manifests;    /* GET of a manifest by tag: another byte */
	bool oversize_manifests;  /* GET of a manifest: a body over the cap */
	int redirect_blobs;
	size_t fail_after;        /* requests after this many answer 500 (0: never) */
	const char *challenge;    /* bearer: the WWW-Authenticate to send (NULL: a good one) */
	int token_mode;           /* 0: {"token"}, 1: {"access_token"}, 2: HTTP 500, 3: {} */
	int upload_location;      /* 0: relative, 1: absolute on "localhost", 2: none */
	size_t requests, patches, mounts;
} registry;

typedef struct conn {
	char *body;
	size_t len;
} conn;

static registry reg;

static blob *find_blob(const char *repo, const char *digest)
{
	size_t i;

	for (i = 0; i < reg.n_blobs; i++)
		if (!strcmp(reg.blobs[i].repo, repo) && !strcmp(reg.blobs[i].digest, digest))
			return &reg.blobs[i];
	return NULL;
}

static void add_blob(const char *repo, const char *digest, const void *data, size_t len)
{
	blob *b;

	if (find_blob(repo, digest) || reg.n_blobs == sizeof(reg.blobs) / sizeof(reg.blobs[0]))
		return;
	b = &reg.blobs[reg.n_blobs++];
	snprintf(b->repo, sizeof(b->repo), "%s", repo);
	snprintf(b->digest, sizeof(b->digest), "%s", digest);
	b->data = REG_MALLOC(len ? len : 1);
	if (len)
		memcpy(b->data, data, len);
	b->len = len;
}

static manifest *find_manifest(const char *repo, const char *ref)
{
	size_t i;

	if (strncmp(ref, "sha256:", 7) != 0) {
		for (i = 0; i < reg.n_tags; i++)
			if (!strcmp(reg.tags[i].repo, repo) && !strcmp(reg.tags[i].name, ref))
				return find_manifest(repo, reg.tags[i].digest);
		return NULL;
	}
	for (i = 0; i < reg.n_manifests; i++)
		if (!strcmp(reg.manifests[i].repo, repo) && !strcmp(reg.manifests[i].digest, ref))
			return &reg.manifests[i];
	return NULL;
}

static void set_tag(const char *repo, const char *name, const char *digest)
{
	size_t i;
	tag *t = NULL;

	for (i = 0; i < reg.n_tags && !t; i++)
		if (!strcmp(reg.tags[i].repo, repo) && !strcmp(reg.tags[i].name, name))
			t = &reg.tags[i];
	if (!t && reg.n_tags < sizeof(reg.tags) / sizeof(reg.tags[0]))
		t = &reg.tags[reg.n_tags++];
	if (!t)
		return;
	snprintf(t->repo, sizeof(t->repo), "%s", repo);
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->digest, sizeof(t->digest), "%s", digest);
}

static void digest_of(char out[72], const void *data, size_t len)
{
	char hex[ART_SHA256_HEX_LEN + 1];

	art_sha256_hex(data, len, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     const void *body, size_t len, const char *const *headers)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(r, headers[0], headers[1]);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text,
				  const char *const *headers)
{
	return reply(c, status, "application/json", text, strlen(text), headers);
}

static enum MHD_Result serve_referrers(struct MHD_Connection *c, const char *repo,
				       const char *digest)
{
	json_t *idx, *list;
	const char *filter = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "artifactType");
	char *text;
	size_t i;
	enum MHD_Result ret;

	if (!reg.referrers_api)
		return reply_text(c, 404, "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}", NULL);
	idx = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType",
			"application/vnd.oci.image.index.v1+json", "manifests");
	list = json_object_get(idx, "manifests");
	for (i = 0; i < reg.n_manifests; i++) {
		manifest *m = &reg.manifests[i];
		json_t *o = json_loadb(m->data, m->len, 0, NULL), *d;
		const char *subject = json_string_value(
			json_object_get(json_object_get(o, "subject"), "digest"));
		const char *type = json_string_value(json_object_get(o, "artifactType"));

		if (!type)
			type = json_string_value(
				json_object_get(json_object_get(o, "config"), "mediaType"));
		if (strcmp(m->repo, repo) || !subject || strcmp(subject, digest) ||
		    (filter && type && strcmp(filter, type))) {
			json_decref(o);
			continue;
		}
		d = json_pack("{s:s,s:s,s:I}", "mediaType", m->media_type, "digest", m->digest,
			      "size", (json_int_t)m->len);
		if (type)
			json_object_set_new(d, "artifactType", json_string(type));
		if (json_object_get(o, "annotations"))
			json_object_set(d, "annotations", json_object_get(o, "annotations"));
		json_array_append_new(list, d);
		json_decref(o);
	}
	text = json_dumps(idx, JSON_COMPACT);
	json_decref(idx);
	ret = reply(c, 200, "application/vnd.oci.image.index.v1+json", text, strlen(text), NULL);
	free(text);
	return ret;
}

static enum MHD_Result serve_tags(struct MHD_Connection *c, const char *repo)
{
	json_t *o = json_pack("{s:s,s:[]}", "name", repo, "tags");
	char *text;
	size_t i;
	enum MHD_Result ret;

	for (i = 0; i < reg.n_tags; i++)
		if (!strcmp(reg.tags[i].repo, repo))
			json_array_append_new(json_object_get(o, "tags"),
					      json_string(reg.tags[i].name));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ret = reply_text(c, 200, text, NULL);
	free(text);
	return ret;
}

static enum MHD_Result serve_blob(struct MHD_Connection *c, const char *method, const char *repo,
				  const char *digest)
{
	blob *b = find_blob(repo, digest);
	char loc[512], port[16];
	const char *h[] = {"Docker-Content-Digest", digest, NULL};

	if (!b)
		return reply_text(c, 404, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}", NULL);
	if (reg.redirect_blobs && strcmp(method, "GET") == 0) {
		const char *lh[] = {"Location", loc, NULL};

		snprintf(port, sizeof(port), "%u", reg.port);
		if (reg.redirect_blobs == REDIRECT_SAME_HOST)
			snprintf(loc, sizeof(loc), "/storage/%s/%s", repo, digest);
		else if (reg.redirect_blobs == REDIRECT_OTHER_HOST)
			snprintf(loc, sizeof(loc), "http://localhost:%s/storage/%s/%s", port, repo,
				 digest);
		else
			snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", repo, digest);
		return reply(c, 307, NULL, "", 0, lh);
	}
	if (reg.tamper_blobs && strcmp(method, "GET") == 0 && b->len > 0) {
		uint8_t *copy = REG_MALLOC(b->len);
		enum MHD_Result ret;

		memcpy(copy, b->data, b->len);
		copy[0] ^= 0x20;
		ret = reply(c, 200, "application/octet-stream", copy, b->len, h);
		free(copy);
		return ret;
	}
	return reply(c, 200, "application/octet-stream", b->data, b->len, h);
}

static enum MHD_Result serve_manifest(struct MHD_Connection *c, const char *method,
				      const char *repo, const char *ref, const conn *cc)
{
	if (strcmp(method, "PUT") == 0) {
		const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		char digest[72];
		manifest *m;
		json_t *o;
		const char *subject;
		const char *h[] = {"Docker-Content-Digest", digest, NULL, NULL, NULL};

		digest_of(digest, cc->body, cc->len);
		if (!strncmp(ref, "sha256:", 7) && strcmp(ref, digest))
			return reply_text(c, 400, "{\"errors\":[{\"code\":\"DIGEST_INVALID\"}]}",
					  NULL);
		if (!(m = find_manifest(repo, digest)) &&
		    reg.n_manifests < sizeof(reg.manifests) / sizeof(reg.manifests[0])) {
			m = &reg.manifests[reg.n_manifests++];
			snprintf(m->repo, sizeof(m->repo), "%s", repo);
			snprintf(m->digest, sizeof(m->digest), "%s", digest);
			snprintf(m->media_type, sizeof(m->media_type), "%s",
				 type ? type : "application/vnd.oci.image.manifest.v1+json");
			m->data = REG_MALLOC(cc->len + 1);
			memcpy(m->data, cc->body ? cc->body : "", cc->len);
			m->len = cc->len;
		}
		if (strncmp(ref, "sha256:", 7) != 0)
			set_tag(repo, ref, digest);
		o = json_loadb(cc->body ? cc->body : "", cc->len, 0, NULL);
		subject = json_string_value(json_object_get(json_object_get(o, "subject"), "digest"));
		if (subject && reg.referrers_api) {
			h[2] = "OCI-Subject";
			h[3] = subject;
		}
		{
			enum MHD_Result ret = reply_text(c, 201, "", h);

			json_decref(o);
			return ret;
		}
	}
	{
		manifest *m = find_manifest(repo, ref);
		const char *h[3];

		if (!m)
			return reply_text(c, 404, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}",
					  NULL);
		h[0] = "Docker-Content-Digest";
		h[1] = m->digest;
		h[2] = NULL;
		if (reg.oversize_manifests && strcmp(method, "GET") == 0) {
			size_t n = ART_OCI_MANIFEST_MAX + 16;
			char *big = REG_MALLOC(n);
			enum MHD_Result ret;

			memset(big, ' ', n);
			ret = reply(c, 200, m->media_type, big, n, h);
			free(big);
			return ret;
		}
		if (reg.tamper_manifests && strcmp(method, "GET") == 0 &&
		    strncmp(ref, "sha256:", 7) == 0) {
			/* still valid JSON, but not the bytes the digest names */
			char *copy = REG_MALLOC(m->len + 1);
			enum MHD_Result ret;

			memcpy(copy, m->data, m->len);
			copy[m->len] = ' ';
			ret = reply(c, 200, m->media_type, copy, m->len + 1, h);
			free(copy);
			return ret;
		}
		return reply(c, 200, m->media_type, m->data, m->len, h);
	}
}

static enum MHD_Result serve_upload(struct MHD_Connection *c, const char *method,
				    const char *repo, const char *rest, const conn *cc)
{
	char loc[512];
	const char *h[] = {"Location", loc, NULL};

	if (strcmp(method, "POST") == 0) {
		const char *mount = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mount");
		const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
		blob *b;

		if (mount && from && (b = find_blob(from, mount))) {
			uint8_t *data = b->data;

			add_blob(repo, mount, data, b->len);
			reg.mounts++;
			snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", repo, mount);
			return reply_text(c, 201, "", h);
		}
		if (reg.n_uploads == sizeof(reg.uploads) / sizeof(reg.uploads[0]))
			return reply_text(c, 500, "{}", NULL);
		snprintf(reg.uploads[reg.n_uploads].repo, sizeof(reg.uploads[0].repo), "%s", repo);
		/* a Location with a query of its own, as Docker Distribution's */
		if (reg.upload_location == 1)
			snprintf(loc, sizeof(loc), "http://localhost:%u/v2/%s/blobs/uploads/%zu",
				 reg.port, repo, reg.n_uploads);
		else
			snprintf(loc, sizeof(loc), "/v2/%s/blobs/uploads/%zu?_state=s%zu", repo,
				 reg.n_uploads, reg.n_uploads);
		reg.n_uploads++;
		return reply_text(c, 202, "", reg.upload_location == 2 ? NULL : h);
	}
	{
		size_t id = (size_t)strtoul(rest, NULL, 10);
		upload *u = id < reg.n_uploads ? &reg.uploads[id] : NULL;
		const char *digest = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "digest");
		char got[72];

		if (!u || u->used || strcmp(u->repo, repo))
			return reply_text(c, 404, "{\"errors\":[{\"code\":\"BLOB_UPLOAD_UNKNOWN\"}]}",
					  NULL);
		if (cc->len) {
			u->data = REG_REALLOC(u->data, u->len + cc->len);
			memcpy(u->data + u->len, cc->body, cc->len);
			u->len += cc->len;
		}
		if (strcmp(method, "PATCH") == 0) {
			reg.patches++;
			snprintf(loc, sizeof(loc), "/v2/%s/blobs/uploads/%zu", repo, id);
			return reply_text(c, 202, "", h);
		}
		digest_of(got, u->data, u->len);
		if (!digest || strcmp(digest, got))
			return reply_text(c, 400, "{\"errors\":[{\"code\":\"DIGEST_INVALID\"}]}", NULL);
		add_blob(repo, got, u->data, u->len);
		u->used = true;
		free(u->data);
		u->data = NULL;
		snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", repo, got);
		return reply_text(c, 201, "", h);
	}
}

static bool authorized(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

	if (reg.auth == AUTH_BASIC)
		return a && !strcmp(a, reg.basic);
	if (reg.auth == AUTH_BEARER)
		return a && !strcmp(a, "Bearer " TOKEN);
	return true;
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
			     const conn *cc)
{
	char repo[128], realm[256];
	const char *p;
	size_t n;

	reg.requests++;
	if (!strcmp(url, "/token")) {
		const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

		if (reg.basic && (!a || strcmp(a, reg.basic)))
			return reply_text(c, 401, "{\"details\":\"bad credentials\"}", NULL);
		if (reg.token_mode == 1)
			return reply_text(c, 200, "{\"access_token\":\"" TOKEN "\"}", NULL);
		if (reg.token_mode == 2)
			return reply_text(c, 500, "{\"errors\":[{\"code\":\"BROKEN\"}]}", NULL);
		if (reg.token_mode == 3)
			return reply_text(c, 200, "{}", NULL);
		return reply_text(c, 200, "{\"token\":\"" TOKEN "\",\"expires_in\":300}", NULL);
	}
	if (!strncmp(url, "/storage/", 9)) {
		/* blob storage behind a redirect: /storage/<repo>/<digest> */
		const char *slash = strrchr(url, '/');

		n = (size_t)(slash - (url + 9));
		if (n >= sizeof(repo))
			return reply_text(c, 404, "{}", NULL);
		memcpy(repo, url + 9, n);
		repo[n] = '\0';
		reg.redirect_blobs = REDIRECT_NONE;
		{
			enum MHD_Result ret = serve_blob(c, method, repo, slash + 1);

			return ret;
		}
	}
	if (strncmp(url, "/v2/", 4) != 0)
		return reply_text(c, 404, "{}", NULL);
	if (reg.fail_after && reg.requests > reg.fail_after)
		return reply_text(c, 500, "{}", NULL);
	if (reg.fail_status) {
		int status = reg.fail_status;

		if (reg.fail_count > 0 && --reg.fail_count == 0)
			reg.fail_status = 0;
		return reply_text(c, (unsigned)status,
				  "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"try later\"}]}",
				  NULL);
	}
	if (!authorized(c)) {
		const char *h[] = {"WWW-Authenticate", realm, NULL};

		if (reg.auth == AUTH_BASIC)
			snprintf(realm, sizeof(realm), "Basic realm=\"fake\"");
		else if (reg.challenge)
			snprintf(realm, sizeof(realm), "%s", reg.challenge);
		else
			snprintf(realm, sizeof(realm),
				 "Bearer realm=\"http://127.0.0.1:%u/token\",service=\"fake\","
				 "scope=\"repository:x:pull\"", reg.port);
		return reply_text(c, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", h);
	}
	if (!strcmp(url, "/v2/"))
		return reply_text(c, 200, "{}", NULL);
	url += 4;
	if ((p = strstr(url, "/blobs/uploads/")) || (p = strstr(url, "/blobs/")) ||
	    (p = strstr(url, "/manifests/")) || (p = strstr(url, "/referrers/")) ||
	    (p = strstr(url, "/tags/list"))) {
		n = (size_t)(p - url);
		if (n >= sizeof(repo))
			return reply_text(c, 404, "{}", NULL);
		memcpy(repo, url, n);
		repo[n] = '\0';
		if (!strncmp(p, "/blobs/uploads/", 15))
			return serve_upload(c, method, repo, p + 15, cc);
		if (!strncmp(p, "/blobs/", 7))
			return serve_blob(c, method, repo, p + 7);
		if (!strncmp(p, "/manifests/", 11))
			return serve_manifest(c, method, repo, p + 11, cc);
		if (!strncmp(p, "/referrers/", 11))
			return serve_referrers(c, repo, p + 11);
		return serve_tags(c, repo);
	}
	return reply_text(c, 404, "{}", NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	conn *cc = *con_cls;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (!cc) {
		if (!(cc = REG_CALLOC(1, sizeof(*cc))))
			return MHD_NO;
		*con_cls = cc;
		return MHD_YES;
	}
	if (*upload_size) {
		char *p = REG_REALLOC(cc->body, cc->len + *upload_size + 1);

		if (!p)
			return MHD_NO;
		memcpy(p + cc->len, upload_data, *upload_size);
		cc->body = p;
		cc->len += *upload_size;
		p[cc->len] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&reg.mu);
	ret = route(c, url, method, cc);
	pthread_mutex_unlock(&reg.mu);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	conn *cc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cc) {
		free(cc->body);
		free(cc);
		*con_cls = NULL;
	}
}

static void registry_clear(void)
{
	size_t i;

	pthread_mutex_lock(&reg.mu);
	for (i = 0; i < reg.n_blobs; i++)
		free(reg.blobs[i].data);
	for (i = 0; i < reg.n_manifests; i++)
		free(reg.manifests[i].data);
	for (i = 0; i < reg.n_uploads; i++)
		free(reg.uploads[i].data);
	reg.n_blobs = reg.n_manifests = reg.n_tags = reg.n_uploads = 0;
	memset(reg.uploads, 0, sizeof(reg.uploads));
	reg.referrers_api = true;
	reg.auth = AUTH_NONE;
	reg.basic = NULL;
	reg.fail_status = reg.fail_count = 0;
	reg.tamper_blobs = reg.tamper_manifests = reg.oversize_manifests = false;
	reg.redirect_blobs = REDIRECT_NONE;
	reg.fail_after = 0;
	reg.challenge = NULL;
	reg.token_mode = 0;
	reg.upload_location = 0;
	reg.requests = reg.patches = reg.mounts = 0;
	pthread_mutex_unlock(&reg.mu);
}

static int registry_start(void)
{
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;

	pthread_mutex_init(&reg.mu, NULL);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	reg.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
				 MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_NOTIFY_COMPLETED, completed,
				 NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!reg.d || !(info = MHD_get_daemon_info(reg.d, MHD_DAEMON_INFO_BIND_PORT)))
		return -1;
	reg.port = info->port;
	registry_clear();
	return 0;
}

/* Under the lock: the test thread changes behaviour between calls. */
#define REG_SET(stmt)                          \
	do {                                   \
		pthread_mutex_lock(&reg.mu);   \
		stmt;                          \
		pthread_mutex_unlock(&reg.mu); \
	} while (0)

#endif
