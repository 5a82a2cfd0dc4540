/*
 * provenance.c - the facts a build's provenance and SBOM need from outside
 * the manifest (pipe/provenance.h): source URI, builder id, invocation id,
 * template files, toolchain components.
 */
#include "pipe/provenance.h"

#include "art/error.h"
#include "art/util.h"
#include "pipe/source.h"

#include <git2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DPKG_STATUS_MAX (64u * 1024u * 1024u)

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static bool printable(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static int dup_out(char **out, const char *s)
{
	if (!(*out = strdup(s)))
		return art_error_set(AF_ENOMEM, "out of memory");
	return 0;
}

/* "https://user:pw@host/x" -> "https://host/x"; NULL when url is no URL. */
static char *url_clean(const char *url)
{
	const char *scheme = strstr(url, "://"), *host, *at, *slash;
	char *out;

	if (!scheme) {
		/* scp-like "git@host:path" is a remote; "/path" or "C:..." is not */
		const char *colon = strchr(url, ':'), *first_slash = strchr(url, '/');

		if (url[0] == '/' || url[0] == '.' || !colon || colon == url ||
		    (first_slash && first_slash < colon))
			return NULL;
		/* a drive letter: "C:\\repos\\agents" or "C:/repos" is a path */
		if (colon == url + 1 && ((url[0] >= 'A' && url[0] <= 'Z') ||
					 (url[0] >= 'a' && url[0] <= 'z')) &&
		    (colon[1] == '\\' || colon[1] == '/'))
			return NULL;
		at = strchr(url, '@');
		host = at && at < colon ? at + 1 : url;
		if (asprintf(&out, "ssh://%.*s/%s", (int)(colon - host), host, colon + 1) < 0)
			return NULL;
		return out;
	}
	if (!strncmp(url, "file:", 5))
		return NULL;
	host = scheme + 3;
	slash = strchr(host, '/');
	at = strchr(host, '@');
	if (at && (!slash || at < slash))
		host = at + 1;
	if (asprintf(&out, "%.*s%s", (int)(scheme + 3 - url), url, host) < 0)
		return NULL;
	return out;
}

int pipe_provenance_source_uri(char **out, const char *repo_dir, const char *explicit_uri)
{
	const char *a, *b;
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	char *clean = NULL;
	int rc;

	*out = NULL;
	if (explicit_uri) {
		if (!*explicit_uri || !printable(explicit_uri) || strlen(explicit_uri) > 2048)
			return art_error_set(AF_EINVAL, "--source-uri must be a URI (printable ASCII, "
					     "no spaces)");
		return dup_out(out, explicit_uri);
	}
	if ((a = env_nonempty("GITHUB_SERVER_URL")) && (b = env_nonempty("GITHUB_REPOSITORY"))) {
		if (asprintf(out, "%s/%s", a, b) < 0) {
			*out = NULL;
			return art_error_set(AF_ENOMEM, "out of memory");
		}
		return 0;
	}
	if ((a = env_nonempty("CI_PROJECT_URL")))
		return dup_out(out, a);
	if (repo_dir && git_libgit2_init() >= 0) {
		if (git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
		    git_remote_lookup(&remote, repo, "origin") == 0 && git_remote_url(remote) &&
		    printable(git_remote_url(remote)))
			clean = url_clean(git_remote_url(remote));
		git_remote_free(remote);
		git_repository_free(repo);
		git_libgit2_shutdown();
	}
	if (clean) {
		*out = clean;
		return 0;
	}
	rc = dup_out(out, PIPE_SOURCE_URI_LOCAL);
	return rc;
}

int pipe_provenance_builder_id(char **out, const char *explicit_id)
{
	const char *a, *b;

	*out = NULL;
	if (explicit_id) {
		if (!*explicit_id || !printable(explicit_id) || strlen(explicit_id) > 1024)
			return art_error_set(AF_EINVAL, "--builder-id must be a URI (printable ASCII, "
					     "no spaces)");
		return dup_out(out, explicit_id);
	}
	if ((a = env_nonempty("AF_BUILDER_ID")) && printable(a))
		return dup_out(out, a);
	if (env_nonempty("GITHUB_ACTIONS") && (a = env_nonempty("GITHUB_SERVER_URL")) &&
	    (b = env_nonempty("GITHUB_WORKFLOW_REF")) && printable(b)) {
		if (asprintf(out, "%s/%s", a, b) < 0)
			goto oom;
		return 0;
	}
	if (env_nonempty("GITLAB_CI") && (a = env_nonempty("CI_PROJECT_URL"))) {
		b = env_nonempty("CI_CONFIG_PATH");
		if (asprintf(out, "%s/-/ci/%s", a, b && printable(b) ? b : ".gitlab-ci.yml") < 0)
			goto oom;
		return 0;
	}
	return dup_out(out, PIPE_BUILDER_ID_LOCAL);
oom:
	*out = NULL;
	return art_error_set(AF_ENOMEM, "out of memory");
}

int pipe_provenance_invocation_id(char **out)
{
	const char *a, *b, *c, *d;

	*out = NULL;
	if ((a = env_nonempty("AF_INVOCATION_ID")) && printable(a))
		return dup_out(out, a);
	if (env_nonempty("GITHUB_ACTIONS") && (a = env_nonempty("GITHUB_SERVER_URL")) &&
	    (b = env_nonempty("GITHUB_REPOSITORY")) && (c = env_nonempty("GITHUB_RUN_ID"))) {
		d = env_nonempty("GITHUB_RUN_ATTEMPT");
		if (asprintf(out, "%s/%s/actions/runs/%s/attempts/%s", a, b, c, d ? d : "1") < 0) {
			*out = NULL;
			return art_error_set(AF_ENOMEM, "out of memory");
		}
		return 0;
	}
	if (env_nonempty("GITLAB_CI") && (a = env_nonempty("CI_JOB_URL")) && printable(a))
		return dup_out(out, a);
	return 0;
}

/* ---- owned strings -------------------------------------------------------- */

static const char *keep(pipe_provenance_lists *l, char *s)
{
	char **grown;

	if (!s)
		return NULL;
	if (l->n_strings == l->cap_strings) {
		size_t cap = l->cap_strings ? l->cap_strings * 2 : 32;

		if (!(grown = realloc(l->strings, cap * sizeof(*grown)))) {
			free(s);
			return NULL;
		}
		l->strings = grown;
		l->cap_strings = cap;
	}
	l->strings[l->n_strings++] = s;
	return s;
}

static const char *keepf(pipe_provenance_lists *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const char *keepf(pipe_provenance_lists *l, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : keep(l, s);
}

void pipe_provenance_lists_free(pipe_provenance_lists *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n_strings; i++)
		free(l->strings[i]);
	free(l->strings);
	free(l->templates);
	free(l->components);
	memset(l, 0, sizeof(*l));
}

/* ---- templates ----------------------------------------------------------- */

static bool blob_object_id(char out[41], const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char header[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;
	int hl = snprintf(header, sizeof(header), "blob %zu", len);

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, header, (size_t)hl + 1) == 1 && /* with its NUL */
	     EVP_DigestUpdate(ctx, data, len) == 1 && EVP_DigestFinal_ex(ctx, md, &md_len) == 1 &&
	     md_len == 20;
	EVP_MD_CTX_free(ctx);
	if (ok)
		art_hex(out, md, 20);
	return ok;
}

int pipe_provenance_templates(pipe_provenance_lists *l, const pipe_frontend *fe,
			      const pipe_resolved *r)
{
	size_t i;

	free(l->templates);
	l->n_templates = 0;
	if (!(l->templates = calloc(r->chain_len ? r->chain_len : 1, sizeof(*l->templates))))
		return art_error_set(AF_ENOMEM, "out of memory");
	for (i = 0; i < r->chain_len; i++) {
		char name[256], blob[41];
		const pipe_template *t;
		const pipe_file *f;
		char *at;

		snprintf(name, sizeof(name), "%s", r->chain[i]);
		if ((at = strchr(name, '@')))
			*at = '\0';
		if (!(t = pipe_catalog_find(fe->catalog, name)) || !t->path)
			continue;
		art_provenance_file *pf = &l->templates[l->n_templates];
		pf->path = t->path;
		pf->sha256_hex = t->file_sha256;
		pf->git_blob = NULL;
		f = pipe_source_find(fe->source, t->path);
		if (f && blob_object_id(blob, f->data, f->len) &&
		    !(pf->git_blob = keep(l, strdup(blob))))
			return art_error_set(AF_ENOMEM, "out of memory");
		l->n_templates++;
	}
	return 0;
}

/* ---- components ---------------------------------------------------------- */

/* The value of "key=" in a "k=v; k=v" id, copied (NULL if absent, or out of
 * memory: then *oom is set). */
static char *id_field(const char *id, const char *key, bool *oom)
{
	size_t kl = strlen(key);
	const char *p = id, *end;

	while ((p = strstr(p, key))) {
		if (p[kl] == '=' && (p == id || p[-1] == ' ')) {
			p += kl + 1;
			end = strstr(p, "; ");
			char *v = strndup(p, end ? (size_t)(end - p) : strlen(p));

			if (!v)
				*oom = true;
			return v;
		}
		p += kl;
	}
	return NULL;
}

/* "Debian clang version 19.1.7 (3)" -> "19.1.7"; else the last word (NULL if
 * none, or out of memory: then *oom is set). */
static char *version_word(const char *line, bool *oom)
{
	char *w;
	const char *p = strstr(line, "version "), *end;

	if (p) {
		p += 8;
	} else {
		p = strrchr(line, ' ');
		p = p ? p + 1 : line;
	}
	for (end = p; *end && *end != ' '; end++)
		;
	if (end == p)
		return NULL;
	if (!(w = strndup(p, (size_t)(end - p))))
		*oom = true;
	return w;
}

/* Version and architecture of an installed Debian package from a status
 * file; out of memory sets *oom (and answers false). */
static bool dpkg_lookup(const char *status, const char *pkg, char **version, char **arch,
			bool *oom)
{
	char want[128];
	const char *p = status;

	*version = *arch = NULL;
	if (!status)
		return false;
	snprintf(want, sizeof(want), "Package: %s\n", pkg);
	while ((p = strstr(p, want))) {
		const char *para_end = strstr(p, "\n\n"), *v, *a, *st;
		size_t span;

		if (p != status && p[-1] != '\n') {
			p += strlen(want);
			continue;
		}
		span = para_end ? (size_t)(para_end - p) : strlen(p);
		st = strstr(p, "\nStatus: install ok installed");
		v = strstr(p, "\nVersion: ");
		a = strstr(p, "\nArchitecture: ");
		if (st && (size_t)(st - p) < span && v && (size_t)(v - p) < span) {
			bool has_arch = a && (size_t)(a - p) < span;

			v += 10;
			*version = strndup(v, strcspn(v, "\n"));
			if (has_arch) {
				a += 15;
				*arch = strndup(a, strcspn(a, "\n"));
			}
			if (*version && (*arch || !has_arch))
				return true;
			free(*version);
			free(*arch);
			*version = *arch = NULL;
			*oom = true;
			return false;
		}
		p += strlen(want);
	}
	return false;
}

/* pkg:deb/debian/NAME@VERSION?arch=ARCH, the epoch colon percent-encoded. */
static const char *deb_purl(pipe_provenance_lists *l, const char *pkg, const char *version,
			    const char *arch)
{
	char enc[256];
	size_t i, o = 0;

	for (i = 0; version[i] && o + 4 < sizeof(enc); i++) {
		if (version[i] == ':') {
			memcpy(enc + o, "%3A", 3);
			o += 3;
		} else if (version[i] == '+') {
			memcpy(enc + o, "%2B", 3);
			o += 3;
		} else {
			enc[o++] = version[i];
		}
	}
	enc[o] = '\0';
	return arch ? keepf(l, "pkg:deb/debian/%s@%s?arch=%s", pkg, enc, arch)
		    : keepf(l, "pkg:deb/debian/%s@%s", pkg, enc);
}

typedef struct comp_spec {
	const char *type, *name, *deb, *id_key;
} comp_spec;

int pipe_provenance_components(pipe_provenance_lists *l, const char *toolchain_id,
			       const char *dpkg_status_path)
{
	static const comp_spec specs[] = {
		{"library", "wasi-libc", "wasi-libc", "wasm-sysroot"},
		{"library", "compiler-rt-wasm32", "libclang-rt-19-dev-wasm32", NULL},
		{"application", "clang", "clang-19", "clang"},
		{"application", "wasm-ld", "lld-19", NULL},
		{"application", "wasm2c", "wabt", "wasm2c"},
		{"application", "cc", NULL, "cc"},
	};
	char *status = NULL, *guest = NULL;
	size_t status_len = 0, i;
	bool use_dpkg = !getenv("WASI_SDK_PATH");
	bool oom = false; /* an SBOM with a component missing is not recorded */
	int rc;

	free(l->components);
	l->n_components = 0;
	if (!(l->components = calloc(1 + sizeof(specs) / sizeof(specs[0]), sizeof(*l->components))))
		return art_error_set(AF_ENOMEM, "out of memory");
	if (use_dpkg && dpkg_status_path &&
	    (rc = art_file_read(&status, &status_len, dpkg_status_path, DPKG_STATUS_MAX)) < 0) {
		status = NULL;
		if (rc == AF_ENOMEM) /* unlike no status file, not a smaller SBOM */
			return rc;
		art_error_clear();
	}
	/* The guest library compiled into every agent. */
	guest = id_field(toolchain_id, "guest-src", &oom);
	{
		art_sbom_component *c = &l->components[l->n_components++];
		const char *abi = NULL;
		char *ga = id_field(toolchain_id, "guest-abi", &oom);

		c->type = "library";
		c->name = "agentfactory-guest";
		c->version = AF_VERSION;
		if (ga && !(abi = keepf(l, "the agent loop, JSON and host ABI linked into every "
					"agent (guest ABI %s)", ga)))
			oom = true;
		free(ga);
		c->description = abi;
		if (guest && !strncmp(guest, "sha256:", 7) && strlen(guest) == 71 &&
		    !(c->sha256_hex = keep(l, strdup(guest + 7))))
			oom = true;
	}
	free(guest);
	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		const comp_spec *sp = &specs[i];
		art_sbom_component *c = &l->components[l->n_components];
		char *field = sp->id_key ? id_field(toolchain_id, sp->id_key, &oom) : NULL;
		char *dv = NULL, *da = NULL;

		memset(c, 0, sizeof(*c));
		c->type = sp->type;
		c->name = sp->name;
		if (sp->deb && use_dpkg && dpkg_lookup(status, sp->deb, &dv, &da, &oom)) {
			/* keep() frees dv when it fails */
			if (!(c->version = keep(l, dv)) ||
			    !(c->purl = deb_purl(l, sp->deb, dv, da)))
				oom = true;
			dv = NULL;
		}
		free(dv);
		free(da);
		if (field && !strncmp(field, "sha256:", 7)) {
			if (!(c->description = keepf(l, "sysroot %s", field)))
				oom = true;
		} else if (field) {
			char *word;

			if (!c->version && (word = version_word(field, &oom)) &&
			    !(c->version = keep(l, word)))
				oom = true;
			if (!(c->description = keep(l, strdup(field))))
				oom = true;
		}
		free(field);
		/* Keep a component only when something is known about it. */
		if (c->version || c->purl || c->description)
			l->n_components++;
	}
	free(status);
	if (oom)
		return art_error_set(AF_ENOMEM, "out of memory listing the toolchain's components");
	return 0;
}
