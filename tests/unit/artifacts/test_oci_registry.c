/*
 * test_oci_registry.c - the registry client and the registry layout of a
 * store (art/oci.h) against a small in-test OCI registry on loopback
 * (libmicrohttpd): an in-memory Distribution API (blobs with monolithic,
 * chunked and mounted uploads, manifests by tag and digest, the referrers
 * API or its tag-schema fallback, tags/list) that can also misbehave on
 * purpose: basic and bearer authentication, server errors, redirects to the
 * same and to another host, tampered blobs and manifests, oversized bodies.
 *
 * A push then a pull must give the same release on the channel, every
 * byte verified; every misbehaviour must be refused with its error code and
 * a message naming the registry, and leave the pulling store unchanged.
 * A real registry (Docker Distribution) is used by tests/integration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/oci.h"
#include "art/release.h"
#include "art/store.h"
#include "art/util.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define DAY ((time_t)86400)
#define LATER (NOW + 30 * DAY)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1"
#define TOKEN "tok-0123456789"

#include "oci_registry_fixture.h"

/* ---- stores ------------------------------------------------------------------ */

static struct {
	art_key *builder, *rm1, *rm2;
	art_keyring *kr;
	char *src;       /* alpha 1.0.0 + 1.1.0, beta 1.0.0; releases 1, 2; blue -> 2 */
	char *tmp;
	char url[128];
} fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/af-test-ocireg-XXXXXX");

	if (!d || !mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static void remove_tree(const char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int put_agent(art_store_txn *t, const char *name, const char *version, size_t big)
{
	const char *caps[] = {"log"};
	art_manifest_import imports[] = {{"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}};
	char resolved[72], text[128], native[256], source[256];
	char *wasm;
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_provenance_extra extra;
	art_build_parts parts;
	size_t i, wasm_len = 64 + big;
	int rc;

	snprintf(text, sizeof(text), "%s@%s", name, version);
	art_manifest_digest(resolved, text, strlen(text));
	wasm = malloc(wasm_len);
	if (!wasm)
		return AF_ENOMEM;
	for (i = 0; i < wasm_len; i++)
		wasm[i] = (char)(i * 31 + strlen(text));
	memcpy(wasm, "\0asm", 4);
	snprintf(native, sizeof(native), "ELF native code of %s", text);
	snprintf(source, sizeof(source), "/* generated C of %s */", text);
	memset(&info, 0, sizeof(info));
	info.name = name;
	info.version = version;
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "clang-19/wasi-libc/wabt-1.0.32";
	info.native_compat_id = COMPAT;
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 1;
	info.exports = exports;
	info.n_exports = 1;
	info.capabilities = caps;
	info.n_capabilities = 1;
	memset(&extra, 0, sizeof(extra));
	extra.invocation_id = "https://ci.example.com/jobs/1";
	extra.started_on = T_2026;
	extra.finished_on = T_2026 + 5;
	parts.wasm = wasm;
	parts.wasm_len = wasm_len;
	parts.native = native;
	parts.native_len = strlen(native);
	parts.source = source;
	parts.source_len = strlen(source);
	rc = art_store_put_build_ex(t, NULL, &info, &prov, &extra, &parts, fx.builder);
	free(wasm);
	return rc;
}

static int make_source(void)
{
	static const char *const r1[] = {"alpha@1.0.0", "beta@1.0.0"};
	static const char *const r2[] = {"alpha@1.1.0", "beta@1.0.0"};
	const art_key *keys[] = {fx.rm1};
	art_store *s = NULL;
	art_store_txn *t = NULL;
	int rc;

	if ((rc = art_store_open(&s, fx.src, ART_STORE_CREATE)) < 0)
		return rc;
	if ((rc = art_store_txn_begin(&t, s)) == 0) {
		if ((rc = put_agent(t, "alpha", "1.0.0", 0)) == 0 &&
		    (rc = put_agent(t, "alpha", "1.1.0", 5000)) == 0 &&
		    (rc = put_agent(t, "beta", "1.0.0", 0)) == 0)
			rc = art_store_txn_commit(t);
		else
			art_store_txn_abort(t);
	}
	if (rc == 0)
		rc = art_release_create(NULL, s, fx.kr, fx.rm1, r1, 2, LATER, NOW);
	if (rc == 0)
		rc = art_release_create(NULL, s, fx.kr, fx.rm1, r2, 2, LATER, NOW);
	if (rc == 0)
		rc = art_release_promote(NULL, s, fx.kr, keys, 1, "blue", 1, NOW);
	if (rc == 0)
		rc = art_release_promote(NULL, s, fx.kr, keys, 1, "blue", 2, NOW);
	art_store_close(s);
	return rc;
}

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.rm1, 2048) < 0 ||
	    art_key_generate(&fx.rm2, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm2, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0)
		return -1;
	if (!(fx.src = temp_dir()) || !(fx.tmp = temp_dir()) || make_source() < 0) {
		fprintf(stderr, "fixture: %s\n", art_error_last());
		return -1;
	}
	if (registry_start() < 0)
		return -1;
	snprintf(fx.url, sizeof(fx.url), "oci://127.0.0.1:%u/team/agents", reg.port);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	MHD_stop_daemon(reg.d);
	registry_clear();
	art_key_free(fx.builder);
	art_key_free(fx.rm1);
	art_key_free(fx.rm2);
	art_keyring_free(fx.kr);
	remove_tree(fx.src);
	remove_tree(fx.tmp);
	free(fx.src);
	free(fx.tmp);
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	registry_clear();
	return 0;
}

/* A fresh empty store under fx.tmp (caller frees the path). */
static char *empty_store(const char *name)
{
	char *dir = NULL;
	art_store *s = NULL;

	if (asprintf(&dir, "%s/%s", fx.tmp, name) < 0)
		fail_msg("asprintf");
	remove_tree(dir);
	if (art_store_open(&s, dir, ART_STORE_CREATE) < 0)
		fail_msg("%s: %s", dir, art_error_last());
	art_store_close(s);
	return dir;
}

static art_oci_client *client(const art_oci_opts *o)
{
	art_oci_client *c = NULL;

	if (art_oci_client_new(&c, fx.url, o) < 0)
		fail_msg("client: %s", art_error_last());
	return c;
}

static int push_all(art_oci_client *c, art_oci_stats *st)
{
	art_store *s = NULL;
	int rc;

	if ((rc = art_store_open(&s, fx.src, ART_STORE_RDONLY)) < 0)
		return rc;
	rc = art_oci_push(st, c, s, NULL, 0, 0, "blue", NULL);
	art_store_close(s);
	return rc;
}

/* Pull channel blue (or what opts says) into dir. */
static int pull_into(const char *dir, art_oci_client *c, const art_oci_pull_opts *o,
		     art_oci_stats *st)
{
	art_store *s = NULL;
	int rc;

	if ((rc = art_store_open(&s, dir, 0)) < 0)
		return rc;
	rc = art_oci_pull(st, c, s, fx.kr, NOW, o);
	art_store_close(s);
	return rc;
}

/* The release blue resolves to in dir (0: none), and the artifact count. */
static uint64_t blue_in(const char *dir, size_t *artifacts)
{
	art_store *s = NULL;
	art_release *r = NULL;
	art_store_entry *e = NULL;
	size_t n = 0;
	uint64_t number = 0;

	if (art_store_open(&s, dir, ART_STORE_RDONLY) < 0)
		fail_msg("%s: %s", dir, art_error_last());
	if (art_release_channel_resolve(s, fx.kr, "blue", NOW, &r) == 0)
		number = r->number;
	if (artifacts) {
		assert_int_equal(art_store_list(&e, &n, s), 0);
		*artifacts = n;
		art_store_list_free(e, n);
	}
	art_release_free(r);
	art_store_close(s);
	return number;
}

/* ---- tests ----------------------------------------------------------------------- */

static void push_then_pull(bool referrers_api, size_t chunk)
{
	art_oci_opts o;
	art_oci_client *c;
	art_oci_stats st;
	art_oci_pull_opts po;
	char *dir = empty_store("pulled"), digest[72];
	bool exists = false;
	size_t n = 0;
	uint64_t first;

	memset(&o, 0, sizeof(o));
	o.chunk_size = chunk;
	REG_SET(reg.referrers_api = referrers_api);
	c = client(&o);
	memset(&st, 0, sizeof(st));
	if (push_all(c, &st) < 0)
		fail_msg("push: %s", art_error_last());
	assert_int_equal(st.release, 2);
	assert_int_equal(st.channel_seq, 2);
	assert_true(st.blobs_up > 0);
	assert_true(st.manifests_up > 0);
	if (chunk)
		assert_true(reg.patches > 0);
	/* the tags the layout promises */
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_true(exists);
	assert_int_equal(strncmp(digest, "sha256:", 7), 0);
	assert_int_equal(art_oci_manifest_head(c, "release-2", digest, &exists), 0);
	assert_true(exists);
	assert_int_equal(art_oci_manifest_head(c, "alpha-1.1.0", digest, &exists), 0);
	assert_true(exists);
	assert_int_equal(art_oci_manifest_head(c, "no-such-tag", digest, &exists), 0);
	assert_false(exists);
	/* a second push uploads no part again */
	first = st.blobs_up;
	memset(&st, 0, sizeof(st));
	assert_int_equal(push_all(c, &st), 0);
	assert_true(st.blobs_up < first);
	assert_true(st.blobs_skipped > 0);
	/* pull the channel: same release, every artifact of it */
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	memset(&st, 0, sizeof(st));
	if (pull_into(dir, c, &po, &st) < 0)
		fail_msg("pull: %s", art_error_last());
	assert_int_equal(st.release, 2);
	assert_int_equal(st.channel_seq, 2);
	assert_int_equal(st.artifacts, 2);
	assert_false(st.up_to_date);
	assert_int_equal(blue_in(dir, &n), 2);
	assert_int_equal(n, 2);
	/* again: nothing new */
	first = st.blobs_down;
	memset(&st, 0, sizeof(st));
	assert_int_equal(pull_into(dir, c, &po, &st), 0);
	assert_true(st.up_to_date);
	assert_true(st.blobs_down < first);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

static void test_oci_registry__push_pull_with_referrers_api(void **state)
{
	(void)state;
	push_then_pull(true, 0);
}

static void test_oci_registry__push_pull_with_fallback_tags_and_chunks(void **state)
{
	(void)state;
	push_then_pull(false, 1000);
	/* the fallback tags exist: sha256-<hex> of each subject */
	{
		size_t i, fallback = 0;

		for (i = 0; i < reg.n_tags; i++)
			fallback += strncmp(reg.tags[i].name, "sha256-", 7) == 0;
		assert_true(fallback > 0);
	}
}

static void test_oci_registry__pull_by_release_refs_and_all_channels(void **state)
{
	art_oci_client *c = client(NULL);
	art_oci_pull_opts po;
	art_oci_stats st;
	static const char *const refs[] = {"alpha@1.0.0"};
	char *dir = empty_store("by-ref");
	size_t n = 0;

	(void)state;
	assert_int_equal(push_all(c, NULL), 0);
	{
		art_store *s = NULL;
		static const char *const more[] = {"alpha@1.0.0"};

		assert_int_equal(art_store_open(&s, fx.src, ART_STORE_RDONLY), 0);
		assert_int_equal(art_oci_push(NULL, c, s, more, 1, 1, NULL, NULL), 0);
		art_store_close(s);
	}
	memset(&po, 0, sizeof(po));
	po.refs = refs;
	po.n_refs = 1;
	memset(&st, 0, sizeof(st));
	if (pull_into(dir, c, &po, &st) < 0)
		fail_msg("pull refs: %s", art_error_last());
	assert_int_equal(st.artifacts, 1);
	assert_int_equal(blue_in(dir, &n), 0);
	assert_int_equal(n, 1);
	/* release 1 (alpha@1.0.0 already there, beta new) */
	memset(&po, 0, sizeof(po));
	po.release = 1;
	memset(&st, 0, sizeof(st));
	if (pull_into(dir, c, &po, &st) < 0)
		fail_msg("pull release: %s", art_error_last());
	assert_int_equal(st.release, 1);
	assert_int_equal(st.artifacts, 1);
	assert_true(st.blobs_skipped > 0);
	/* everything: each channel-* tag */
	memset(&po, 0, sizeof(po));
	memset(&st, 0, sizeof(st));
	if (pull_into(dir, c, &po, &st) < 0)
		fail_msg("pull all: %s", art_error_last());
	assert_int_equal(blue_in(dir, &n), 2);
	assert_int_equal(n, 3);
	/* a release the registry lacks */
	memset(&po, 0, sizeof(po));
	po.release = 9;
	assert_int_equal(pull_into(dir, c, &po, NULL), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "127.0.0.1"));
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

static void test_oci_registry__mount_from_another_repository(void **state)
{
	art_oci_client *c = client(NULL), *other;
	art_oci_stats st;
	art_store *s = NULL;
	char url[160];

	(void)state;
	assert_int_equal(push_all(c, NULL), 0);
	snprintf(url, sizeof(url), "oci://127.0.0.1:%u/team/copy", reg.port);
	assert_int_equal(art_oci_client_new(&other, url, NULL), 0);
	assert_string_equal(art_oci_client_ref(other)->repo, "team/copy");
	assert_int_equal(art_store_open(&s, fx.src, ART_STORE_RDONLY), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(art_oci_push(&st, other, s, NULL, 0, 0, "blue", "team/agents"), 0);
	assert_true(st.blobs_mounted > 0);
	assert_int_equal(st.blobs_up, 0);
	assert_true(reg.mounts > 0);
	assert_int_equal(art_oci_client_stats(other)->blobs_mounted, st.blobs_mounted);
	art_oci_client_reset_stats(other);
	assert_int_equal(art_oci_client_stats(other)->requests, 0);
	art_store_close(s);
	art_oci_client_free(other);
	art_oci_client_free(c);
}

/* A pull that must fail with rc, naming the registry, the store unchanged. */
static void pull_refused(const char *what, int rc_expected, const char *needle)
{
	art_oci_client *c = client(NULL);
	art_oci_pull_opts po;
	char *dir = empty_store("refused");
	size_t n = 9;
	int rc;

	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	rc = pull_into(dir, c, &po, NULL);
	if (rc != rc_expected)
		fail_msg("%s: pull said %d (%s), not %d", what, rc, art_error_last(), rc_expected);
	if (needle && !strstr(art_error_last(), needle))
		fail_msg("%s: the message '%s' does not say '%s'", what, art_error_last(), needle);
	assert_int_equal(blue_in(dir, &n), 0);
	assert_int_equal(n, 0);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

static void test_oci_registry__tampered_blob_refused(void **state)
{
	art_oci_client *c = client(NULL);

	(void)state;
	assert_int_equal(push_all(c, NULL), 0);
	art_oci_client_free(c);
	REG_SET(reg.tamper_blobs = true);
	pull_refused("tampered blob", AF_ESIGNATURE, "127.0.0.1");
}

static void test_oci_registry__tampered_manifest_refused(void **state)
{
	art_oci_client *c = client(NULL);

	(void)state;
	assert_int_equal(push_all(c, NULL), 0);
	art_oci_client_free(c);
	REG_SET(reg.tamper_manifests = true);
	pull_refused("tampered manifest", AF_ESIGNATURE, NULL);
}

static void test_oci_registry__oversized_manifest_refused(void **state)
{
	art_oci_client *c = client(NULL);

	(void)state;
	assert_int_equal(push_all(c, NULL), 0);
	art_oci_client_free(c);
	REG_SET(reg.oversize_manifests = true);
	pull_refused("oversized manifest", AF_ETOOBIG, "over");
}

static void test_oci_registry__missing_channel_and_server_errors(void **state)
{
	art_oci_client *c = client(NULL);
	char digest[72];
	bool exists = true;

	(void)state;
	/* nothing pushed: no such channel */
	pull_refused("empty registry", AF_ENOTFOUND, "channel-blue");
	/* a registry that answers 500: retried, then AF_EIO naming it */
	REG_SET(reg.fail_status = 500);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EIO);
	assert_false(exists);
	assert_non_null(strstr(art_error_last(), "127.0.0.1"));
	assert_non_null(strstr(art_error_last(), "500"));
	/* a push refused at its first upload */
	REG_SET(reg.fail_status = 403);
	assert_int_equal(push_all(c, NULL), AF_EDENIED);
	/* one transient 503: the retry succeeds */
	REG_SET((reg.fail_status = 503, reg.fail_count = 1));
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_false(exists);
	art_oci_client_free(c);
}

static void test_oci_registry__basic_auth(void **state)
{
	art_oci_client *c;
	art_oci_opts o;
	char digest[72];
	bool exists;
	char hdr[128], *b64 = NULL;

	(void)state;
	assert_int_equal(art_base64_encode(&b64, "agent:s3cret", 12), 0);
	snprintf(hdr, sizeof(hdr), "Basic %s", b64);
	free(b64);
	REG_SET((reg.auth = AUTH_BASIC, reg.basic = hdr));
	memset(&o, 0, sizeof(o));
	o.auth_file = "/nonexistent/config.json";
	/* no credentials */
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "credentials required"));
	art_oci_client_free(c);
	/* wrong ones */
	o.username = "agent";
	o.password = "wrong";
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "refused"));
	art_oci_client_free(c);
	/* the right ones: a push and a pull go through */
	o.password = "s3cret";
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_false(exists);
	if (push_all(c, NULL) < 0)
		fail_msg("push with basic auth: %s", art_error_last());
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_true(exists);
	art_oci_client_free(c);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Credentials from a docker-style config.json: the explicit file, then
 * REGISTRY_AUTH_FILE, then DOCKER_CONFIG/config.json; auths keys written as
 * host, https://host or host/v2/. */
static void test_oci_registry__credentials_from_config_json(void **state)
{
	art_oci_client *c;
	art_oci_opts o;
	char hdr[128], *b64 = NULL, path[300], text[8000], digest[72], long_auth[5000];
	char *long_b64 = NULL;
	bool exists;

	(void)state;
	assert_int_equal(art_base64_encode(&b64, "agent:s3cret", 12), 0);
	snprintf(hdr, sizeof(hdr), "Basic %s", b64);
	REG_SET((reg.auth = AUTH_BASIC, reg.basic = hdr));
	memset(&o, 0, sizeof(o));
	snprintf(path, sizeof(path), "%s/config.json", fx.tmp);
	o.auth_file = path;
	snprintf(text, sizeof(text),
		 "{\"auths\":{\"other.example\":{\"auth\":\"!!\"},"
		 "\"https://127.0.0.1:%u/v2/\":{\"auth\":\"%s\"}}}", reg.port, b64);
	write_file(path, text);
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	art_oci_client_free(c);
	/* the same file through REGISTRY_AUTH_FILE, then DOCKER_CONFIG */
	o.auth_file = NULL;
	setenv("REGISTRY_AUTH_FILE", path, 1);
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	art_oci_client_free(c);
	unsetenv("REGISTRY_AUTH_FILE");
	setenv("DOCKER_CONFIG", fx.tmp, 1);
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	art_oci_client_free(c);
	unsetenv("DOCKER_CONFIG");
	/* credentials over the limit (4 KiB) */
	memset(long_auth, 'u', sizeof(long_auth) - 1);
	long_auth[sizeof(long_auth) - 1] = '\0';
	long_auth[10] = ':';
	assert_int_equal(art_base64_encode(&long_b64, long_auth, strlen(long_auth)), 0);
	snprintf(text, sizeof(text), "{\"auths\":{\"127.0.0.1:%u\":{\"auth\":\"%s\"}}}",
		 reg.port, long_b64);
	write_file(path, text);
	o.auth_file = path;
	assert_int_equal(art_oci_client_new(&c, fx.url, &o), AF_EINVAL);
	assert_null(c);
	/* a username without a password */
	memset(&o, 0, sizeof(o));
	o.password = "only";
	assert_int_equal(art_oci_client_new(&c, fx.url, &o), AF_EINVAL);
	unlink(path);
	free(long_b64);
	free(b64);
}

/* AF_OCI_CHUNK: uploads in chunks of that size; localhost is plain HTTP. */
static void test_oci_registry__chunk_size_from_the_environment(void **state)
{
	art_oci_client *c = NULL;
	art_oci_stats st;
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "oci://localhost:%u/team/agents", reg.port);
	setenv("AF_OCI_CHUNK", "512", 1);
	assert_int_equal(art_oci_client_new(&c, url, NULL), 0);
	unsetenv("AF_OCI_CHUNK");
	memset(&st, 0, sizeof(st));
	if (push_all(c, &st) < 0)
		fail_msg("push in chunks: %s", art_error_last());
	assert_true(reg.patches >= 5000 / 512);
	assert_int_equal(st.release, 2);
	art_oci_client_free(c);
}

static void test_oci_registry__bearer_token(void **state)
{
	art_oci_client *c;
	art_oci_opts o;
	art_oci_pull_opts po;
	char digest[72], hdr[128], *b64 = NULL, *dir;
	bool exists;

	(void)state;
	assert_int_equal(art_base64_encode(&b64, "agent:s3cret", 12), 0);
	snprintf(hdr, sizeof(hdr), "Basic %s", b64);
	free(b64);
	REG_SET((reg.auth = AUTH_BEARER, reg.basic = hdr));
	memset(&o, 0, sizeof(o));
	o.auth_file = "/nonexistent/config.json";
	/* the token server refuses anonymous requests */
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "token request"));
	assert_non_null(strstr(art_error_last(), "credentials required"));
	art_oci_client_free(c);
	/* ... and wrong credentials */
	o.username = "agent";
	o.password = "wrong";
	c = client(&o);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "token request"));
	assert_non_null(strstr(art_error_last(), "refused"));
	art_oci_client_free(c);
	o.password = "s3cret";
	c = client(&o);
	if (push_all(c, NULL) < 0)
		fail_msg("push with a bearer token: %s", art_error_last());
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_true(exists);
	dir = empty_store("bearer");
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	if (pull_into(dir, c, &po, NULL) < 0)
		fail_msg("pull with a bearer token: %s", art_error_last());
	assert_int_equal(blue_in(dir, NULL), 2);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

/* What a token server or a challenge can get wrong. */
static void test_oci_registry__token_server_failures(void **state)
{
	art_oci_client *c;
	char digest[72], challenge[256];
	bool exists;

	(void)state;
	REG_SET(reg.auth = AUTH_BEARER);
	/* "access_token" is a token too */
	REG_SET(reg.token_mode = 1);
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	art_oci_client_free(c);
	/* the token server fails, or answers without a token */
	REG_SET(reg.token_mode = 2);
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EIO);
	assert_non_null(strstr(art_error_last(), "token server"));
	assert_non_null(strstr(art_error_last(), "500"));
	art_oci_client_free(c);
	REG_SET(reg.token_mode = 3);
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EIO);
	assert_non_null(strstr(art_error_last(), "no usable token"));
	art_oci_client_free(c);
	REG_SET(reg.token_mode = 0);
	/* challenges: no realm, a realm that is not http(s), a plain-HTTP realm
	 * on another host (credentials would travel in clear) */
	REG_SET(reg.challenge = "Bearer service=\"fake\"");
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EIO);
	assert_non_null(strstr(art_error_last(), "without a realm"));
	art_oci_client_free(c);
	REG_SET(reg.challenge = "Bearer realm=\"ftp://127.0.0.1/token\"");
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EIO);
	assert_non_null(strstr(art_error_last(), "not an http(s) URL"));
	art_oci_client_free(c);
	REG_SET(reg.challenge = "Bearer realm=\"http://auth.example.com/token\",service=\"x\"");
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "plain HTTP"));
	art_oci_client_free(c);
	/* a realm with a query of its own: the parameters are appended to it */
	snprintf(challenge, sizeof(challenge),
		 "Bearer realm=\"http://127.0.0.1:%u/token?x=1\",service=\"fake\"", reg.port);
	REG_SET(reg.challenge = challenge);
	c = client(NULL);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_false(exists);
	art_oci_client_free(c);
	REG_SET(reg.challenge = NULL);
}

/* Upload locations: on another host (refused unless redirects are allowed), or none. */
static void test_oci_registry__upload_locations(void **state)
{
	art_oci_client *c;
	art_oci_opts o;

	(void)state;
	REG_SET(reg.upload_location = 1);
	c = client(NULL);
	assert_int_equal(push_all(c, NULL), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "another host"));
	art_oci_client_free(c);
	memset(&o, 0, sizeof(o));
	o.allow_redirect = true;
	c = client(&o);
	if (push_all(c, NULL) < 0)
		fail_msg("push with uploads on another host: %s", art_error_last());
	art_oci_client_free(c);
	registry_clear();
	REG_SET(reg.upload_location = 2);
	c = client(NULL);
	assert_int_equal(push_all(c, NULL), AF_EIO);
	assert_non_null(strstr(art_error_last(), "without a Location"));
	art_oci_client_free(c);
}

static void test_oci_registry__redirects(void **state)
{
	art_oci_client *c = client(NULL);
	art_oci_opts o;
	art_oci_pull_opts po;
	char *dir;

	(void)state;
	assert_int_equal(push_all(c, NULL), 0);
	art_oci_client_free(c);
	/* to another host without --allow-redirect: refused */
	REG_SET(reg.redirect_blobs = REDIRECT_OTHER_HOST);
	pull_refused("redirect to another host", AF_EDENIED, "another host");
	/* a redirect loop: too many redirects */
	REG_SET(reg.redirect_blobs = REDIRECT_LOOP);
	pull_refused("redirect loop", AF_EIO, "too many redirects");
	/* to another host with allow_redirect: followed, content still checked */
	REG_SET(reg.redirect_blobs = REDIRECT_OTHER_HOST);
	memset(&o, 0, sizeof(o));
	o.allow_redirect = true;
	c = client(&o);
	dir = empty_store("redirected");
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	if (pull_into(dir, c, &po, NULL) < 0)
		fail_msg("pull through a redirect: %s", art_error_last());
	assert_int_equal(blue_in(dir, NULL), 2);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
	/* same host: followed without asking */
	REG_SET(reg.redirect_blobs = REDIRECT_SAME_HOST);
	c = client(NULL);
	dir = empty_store("redirected-same");
	if (pull_into(dir, c, &po, NULL) < 0)
		fail_msg("pull through a same-host redirect: %s", art_error_last());
	assert_int_equal(blue_in(dir, NULL), 2);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

static void test_oci_registry__replayed_channel_refused(void **state)
{
	art_oci_client *c = client(NULL);
	art_oci_pull_opts po;
	art_store *s = NULL;
	char *dir = empty_store("replay"), *newer = NULL;
	const art_key *keys[] = {fx.rm1};
	art_channel *ch = NULL;

	(void)state;
	/* the registry holds blue at seq 2; this store already has seq 3 */
	assert_int_equal(push_all(c, NULL), 0);
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	assert_int_equal(pull_into(dir, c, &po, NULL), 0);
	assert_int_equal(art_store_open(&s, dir, 0), 0);
	assert_int_equal(art_release_set_threshold(&ch, s, fx.kr, keys, 1, "blue", 1, NOW), 0);
	assert_int_equal(ch->seq, 3);
	art_channel_free(ch);
	art_store_close(s);
	assert_int_equal(pull_into(dir, c, &po, NULL), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "replay"));
	free(newer);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

/* ---- a registry that lies: its content rewritten between push and pull ---------- */

#define REPO "team/agents"

/* Point tag `name` at what tag `from` points at. */
static void retag(const char *name, const char *from)
{
	manifest *m;

	pthread_mutex_lock(&reg.mu);
	m = find_manifest(REPO, from);
	if (m)
		set_tag(REPO, name, m->digest);
	pthread_mutex_unlock(&reg.mu);
	assert_non_null(m);
}

/* Forget every manifest whose artifactType is type (its referrers vanish). */
static size_t drop_manifests(const char *type)
{
	size_t i, kept = 0, dropped = 0;

	pthread_mutex_lock(&reg.mu);
	for (i = 0; i < reg.n_manifests; i++) {
		json_t *o = json_loadb(reg.manifests[i].data, reg.manifests[i].len, 0, NULL);
		const char *t = json_string_value(json_object_get(o, "artifactType"));

		if (t && !strcmp(t, type)) {
			free(reg.manifests[i].data);
			dropped++;
		} else {
			reg.manifests[kept++] = reg.manifests[i];
		}
		json_decref(o);
	}
	reg.n_manifests = kept;
	pthread_mutex_unlock(&reg.mu);
	return dropped;
}

/* Store manifest text (by digest) in the registry; its digest into digest. */
static void add_manifest(const char *type, char *text, char digest[72])
{
	manifest *m;

	digest_of(digest, text, strlen(text));
	assert_true(reg.n_manifests < sizeof(reg.manifests) / sizeof(reg.manifests[0]));
	m = &reg.manifests[reg.n_manifests++];
	snprintf(m->repo, sizeof(m->repo), "%s", REPO);
	snprintf(m->digest, sizeof(m->digest), "%s", digest);
	snprintf(m->media_type, sizeof(m->media_type), "%s", type);
	m->data = text;
	m->len = strlen(text);
}

/* Rewrite the manifest tag `name` points at through edit(), store it under
 * its new digest and move the tag there; its referrers (the signatures of
 * the signed config it carries) are attached to the new one too, as a
 * registry that rewrites content would. */
static void rewrite_tagged(const char *name, void (*edit)(json_t *o))
{
	manifest *m;
	json_t *o;
	char *text, digest[72], old[72], type[128];
	size_t i, n;

	pthread_mutex_lock(&reg.mu);
	m = find_manifest(REPO, name);
	assert_non_null(m);
	snprintf(old, sizeof(old), "%s", m->digest);
	snprintf(type, sizeof(type), "%s", m->media_type);
	o = json_loadb(m->data, m->len, 0, NULL);
	assert_non_null(o);
	edit(o);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	add_manifest(type, text, digest);
	n = reg.n_manifests;
	for (i = 0; i < n; i++) {
		json_t *r = json_loadb(reg.manifests[i].data, reg.manifests[i].len, 0, NULL);
		json_t *subject = json_object_get(r, "subject");
		const char *sd = json_string_value(json_object_get(subject, "digest"));
		char copy_digest[72];

		if (sd && !strcmp(sd, old)) {
			json_object_set_new(subject, "digest", json_string(digest));
			json_object_set_new(subject, "size", json_integer((json_int_t)strlen(text)));
			snprintf(type, sizeof(type), "%s", reg.manifests[i].media_type);
			add_manifest(type, json_dumps(r, JSON_COMPACT), copy_digest);
		}
		json_decref(r);
	}
	set_tag(REPO, name, digest);
	pthread_mutex_unlock(&reg.mu);
}

static void edit_artifact_type(json_t *o)
{
	json_object_set_new(o, "artifactType", json_string("application/x-other"));
}

static void edit_drop_layer(json_t *o)
{
	json_array_remove(json_object_get(o, "layers"), 0);
}

static void edit_layer_digest(json_t *o)
{
	json_t *l = json_array_get(json_object_get(o, "layers"), 0);

	json_object_set_new(l, "digest", json_string("sha256:"
						     "0000000000000000000000000000000000000000000000000000000000000000"));
}

/* Pull refs or a release that must fail with rc and needle; store unchanged. */
static void pull_ref_refused(const char *what, const char *ref, uint64_t release,
			     const art_keyring *kr, time_t now, int rc_expected, const char *needle)
{
	art_oci_client *c = client(NULL);
	art_oci_pull_opts po;
	art_store *s = NULL;
	art_store_entry *e = NULL;
	char *dir = empty_store("lied");
	const char *refs[] = {ref};
	size_t n = 9;
	int rc;

	memset(&po, 0, sizeof(po));
	if (ref) {
		po.refs = refs;
		po.n_refs = 1;
	} else if (release) {
		po.release = release;
	} else {
		po.channel = "blue";
	}
	assert_int_equal(art_store_open(&s, dir, 0), 0);
	rc = art_oci_pull(NULL, c, s, kr, now, &po);
	if (rc != rc_expected)
		fail_msg("%s: pull said %d (%s), not %d", what, rc, art_error_last(), rc_expected);
	if (needle && !strstr(art_error_last(), needle))
		fail_msg("%s: the message '%s' does not say '%s'", what, art_error_last(), needle);
	assert_int_equal(art_store_list(&e, &n, s), 0);
	assert_int_equal(n, 0);
	art_store_list_free(e, n);
	art_store_close(s);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

static void pushed(void)
{
	art_oci_client *c = client(NULL);
	art_store *s = NULL;
	static const char *const r1[] = {"alpha@1.0.0"};

	assert_int_equal(push_all(c, NULL), 0);
	assert_int_equal(art_store_open(&s, fx.src, ART_STORE_RDONLY), 0);
	assert_int_equal(art_oci_push(NULL, c, s, r1, 1, 1, NULL, NULL), 0);
	art_store_close(s);
	art_oci_client_free(c);
}

static void test_oci_registry__a_lying_registry_is_refused(void **state)
{
	(void)state;
	pushed();
	/* another artifact under a tag */
	retag("alpha-1.1.0", "alpha-1.0.0");
	pull_ref_refused("artifact under another tag", "alpha@1.1.0", 0, fx.kr, NOW, AF_ESIGNATURE,
			 "under");
	/* another release under a release tag */
	retag("release-2", "release-1");
	pull_ref_refused("release under another tag", NULL, 2, fx.kr, NOW, AF_ESIGNATURE,
			 "release");
	/* a manifest that is not an agentfactory artifact */
	rewrite_tagged("beta-1.0.0", edit_artifact_type);
	pull_ref_refused("not an artifact", "beta@1.0.0", 0, fx.kr, NOW, AF_ECORRUPT,
			 "not an agentfactory artifact");
}

static void test_oci_registry__layers_must_be_the_signed_parts(void **state)
{
	(void)state;
	pushed();
	rewrite_tagged("alpha-1.0.0", edit_drop_layer);
	pull_ref_refused("a layer missing", "alpha@1.0.0", 0, fx.kr, NOW, AF_ECORRUPT, "layers");
	rewrite_tagged("beta-1.0.0", edit_layer_digest);
	pull_ref_refused("a layer replaced", "beta@1.0.0", 0, fx.kr, NOW, AF_ESIGNATURE,
			 "not the signed part");
}

static void test_oci_registry__signatures_and_trust(void **state)
{
	art_keyring *no_builder = NULL;

	(void)state;
	pushed();
	/* a keyring without the builder: nothing verifies */
	assert_int_equal(art_keyring_new(&no_builder), 0);
	assert_int_equal(art_keyring_add(no_builder, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0),
			 0);
	pull_ref_refused("unknown builder", "alpha@1.0.0", 0, no_builder, NOW, AF_ENOTFOUND, NULL);
	art_keyring_free(no_builder);
	/* the release has expired at the puller's clock (freeze protection) */
	pull_ref_refused("expired release", NULL, 2, fx.kr, LATER + DAY, AF_EEXPIRED, NULL);
	pull_ref_refused("expired release on the channel", NULL, 0, fx.kr, LATER + DAY, AF_EEXPIRED,
			 NULL);
	/* the builder signatures gone from the referrers */
	assert_true(drop_manifests("application/vnd.dsse.envelope.v1+json") > 0);
	pull_ref_refused("no builder signature", "alpha@1.0.0", 0, fx.kr, NOW, AF_ESIGNATURE,
			 "no builder signature");
}

static void test_oci_registry__channel_threshold_and_expected_digest(void **state)
{
	art_oci_client *c;
	art_oci_pull_opts po;
	char *dir = empty_store("threshold"), digest[72];
	bool exists = false;

	(void)state;
	pushed();
	c = client(NULL);
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	/* a runtime that requires two signatures refuses a one-signature record */
	po.min_threshold = 2;
	assert_int_equal(pull_into(dir, c, &po, NULL), AF_EDENIED);
	assert_int_equal(blue_in(dir, NULL), 0);
	/* the digest a HEAD just gave: used as is; a stale one is not the tag's */
	po.min_threshold = 0;
	assert_int_equal(art_oci_manifest_head(c, "release-1", digest, &exists), 0);
	assert_true(exists);
	po.expect_digest = digest;
	assert_true(pull_into(dir, c, &po, NULL) < 0);
	assert_int_equal(blue_in(dir, NULL), 0);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), 0);
	assert_int_equal(pull_into(dir, c, &po, NULL), 0);
	assert_int_equal(blue_in(dir, NULL), 2);
	art_oci_client_free(c);
	remove_tree(dir);
	free(dir);
}

static void test_oci_registry__push_refusals(void **state)
{
	art_oci_client *c = client(NULL);
	art_store *s = NULL;
	static const char *const missing[] = {"gamma@1.0.0"};
	static const char *const bad[] = {"Not A Name"};
	const art_key *keys[] = {fx.rm1};
	char *dir;

	(void)state;
	assert_int_equal(art_store_open(&s, fx.src, ART_STORE_RDONLY), 0);
	/* nothing to push */
	assert_int_equal(art_oci_push(NULL, c, s, NULL, 0, 0, NULL, NULL), AF_EINVAL);
	/* not in the store */
	assert_int_equal(art_oci_push(NULL, c, s, missing, 1, 0, NULL, NULL), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "gamma"));
	assert_true(art_oci_push(NULL, c, s, bad, 1, 0, NULL, NULL) < 0);
	assert_int_equal(art_oci_push(NULL, c, s, NULL, 0, 9, NULL, NULL), AF_ENOTFOUND);
	assert_int_equal(art_oci_push(NULL, c, s, NULL, 0, 0, "green", NULL), AF_ENOTFOUND);
	assert_int_equal(reg.n_tags, 0);
	art_store_close(s);
	/* a channel with no release yet (only a threshold) has nothing to push */
	dir = empty_store("threshold-only");
	assert_int_equal(art_store_open(&s, dir, 0), 0);
	assert_int_equal(art_release_set_threshold(NULL, s, fx.kr, keys, 1, "green", 1, NOW), 0);
	assert_true(art_oci_push(NULL, c, s, NULL, 0, 0, "green", NULL) < 0);
	assert_non_null(strstr(art_error_last(), "green"));
	art_store_close(s);
	remove_tree(dir);
	free(dir);
	art_oci_client_free(c);
}

static void test_oci_registry__pull_arguments_and_up_to_date(void **state)
{
	art_oci_client *c;
	art_oci_pull_opts po;
	art_oci_stats st;
	art_store *s = NULL;
	static const char *const bad[] = {"alpha"};
	static const char *const one[] = {"alpha@1.0.0"};
	char *dir = empty_store("args");

	(void)state;
	pushed();
	c = client(NULL);
	/* no keyring: nothing can be verified */
	assert_int_equal(art_store_open(&s, dir, 0), 0);
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	assert_int_equal(art_oci_pull(NULL, c, s, NULL, NOW, &po), AF_EINVAL);
	/* a ref without a version */
	memset(&po, 0, sizeof(po));
	po.refs = bad;
	po.n_refs = 1;
	assert_int_equal(art_oci_pull(NULL, c, s, fx.kr, NOW, &po), AF_EINVAL);
	/* pulled, then again: up to date, nothing downloaded */
	po.refs = one;
	assert_int_equal(art_oci_pull(NULL, c, s, fx.kr, NOW, &po), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(art_oci_pull(&st, c, s, fx.kr, NOW, &po), 0);
	assert_true(st.up_to_date);
	assert_int_equal(st.blobs_down, 0);
	/* the same for a release */
	memset(&po, 0, sizeof(po));
	po.release = 1;
	assert_int_equal(art_oci_pull(NULL, c, s, fx.kr, NOW, &po), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(art_oci_pull(&st, c, s, fx.kr, NOW, &po), 0);
	assert_true(st.up_to_date);
	assert_int_equal(st.release, 1);
	art_store_close(s);
	art_oci_client_free(c);
	/* a channel tag that points at an artifact, not an index */
	retag("channel-blue", "alpha-1.0.0");
	pull_refused("channel tag on an artifact", AF_ECORRUPT, "is not an");
	remove_tree(dir);
	free(dir);
}

/* An interrupted pull keeps its verified blobs in the partial directory;
 * the next pull takes them from there instead of the registry. */
static void test_oci_registry__interrupted_pull_resumes(void **state)
{
	art_oci_client *c;
	art_oci_pull_opts po;
	art_oci_stats st;
	char *dir = empty_store("resume"), partial[300];
	static const char *const one[] = {"alpha@1.1.0"};
	size_t before;
	uint64_t first;
	int rc;

	(void)state;
	pushed();
	snprintf(partial, sizeof(partial), "%s/partial", fx.tmp);
	remove_tree(partial);
	c = client(NULL);
	memset(&po, 0, sizeof(po));
	po.refs = one;
	po.n_refs = 1;
	po.partial_dir = partial;
	/* a complete pull elsewhere, to count its downloads */
	{
		char *other = empty_store("resume-count");

		memset(&st, 0, sizeof(st));
		assert_int_equal(pull_into(other, c, &po, &st), 0);
		first = st.blobs_down;
		remove_tree(other);
		free(other);
		remove_tree(partial);
	}
	assert_true(first >= 3);
	/* the registry fails after the first blobs */
	pthread_mutex_lock(&reg.mu);
	before = reg.requests;
	reg.fail_after = before + 6;
	pthread_mutex_unlock(&reg.mu);
	rc = pull_into(dir, c, &po, NULL);
	assert_int_equal(rc, AF_EIO);
	assert_int_equal(blue_in(dir, &before), 0);
	assert_int_equal(before, 0);
	REG_SET(reg.fail_after = 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(pull_into(dir, c, &po, &st), 0);
	assert_true(st.blobs_down < first);
	assert_int_equal(st.artifacts, 1);
	art_oci_client_free(c);
	remove_tree(partial);
	remove_tree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_oci_registry__push_pull_with_referrers_api, test_setup),
		cmocka_unit_test_setup(test_oci_registry__push_pull_with_fallback_tags_and_chunks,
				       test_setup),
		cmocka_unit_test_setup(test_oci_registry__pull_by_release_refs_and_all_channels,
				       test_setup),
		cmocka_unit_test_setup(test_oci_registry__mount_from_another_repository, test_setup),
		cmocka_unit_test_setup(test_oci_registry__tampered_blob_refused, test_setup),
		cmocka_unit_test_setup(test_oci_registry__tampered_manifest_refused, test_setup),
		cmocka_unit_test_setup(test_oci_registry__oversized_manifest_refused, test_setup),
		cmocka_unit_test_setup(test_oci_registry__missing_channel_and_server_errors,
				       test_setup),
		cmocka_unit_test_setup(test_oci_registry__basic_auth, test_setup),
		cmocka_unit_test_setup(test_oci_registry__bearer_token, test_setup),
		cmocka_unit_test_setup(test_oci_registry__credentials_from_config_json, test_setup),
		cmocka_unit_test_setup(test_oci_registry__chunk_size_from_the_environment,
				       test_setup),
		cmocka_unit_test_setup(test_oci_registry__token_server_failures, test_setup),
		cmocka_unit_test_setup(test_oci_registry__upload_locations, test_setup),
		cmocka_unit_test_setup(test_oci_registry__redirects, test_setup),
		cmocka_unit_test_setup(test_oci_registry__replayed_channel_refused, test_setup),
		cmocka_unit_test_setup(test_oci_registry__a_lying_registry_is_refused, test_setup),
		cmocka_unit_test_setup(test_oci_registry__layers_must_be_the_signed_parts,
				       test_setup),
		cmocka_unit_test_setup(test_oci_registry__signatures_and_trust, test_setup),
		cmocka_unit_test_setup(test_oci_registry__channel_threshold_and_expected_digest,
				       test_setup),
		cmocka_unit_test_setup(test_oci_registry__push_refusals, test_setup),
		cmocka_unit_test_setup(test_oci_registry__pull_arguments_and_up_to_date, test_setup),
		cmocka_unit_test_setup(test_oci_registry__interrupted_pull_resumes, test_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
