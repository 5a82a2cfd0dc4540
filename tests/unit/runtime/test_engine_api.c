/*
 * test_engine_api.c - the engine's API (rt/engine.h) in "latest" mode on a
 * real store of lab guests (tests/fixtures/runtime/lab_guest.c): alpha and
 * charlie signed by the trusted builder, bravo by a key the keyring does
 * not know. Covers the argument checks of every entry point, requests
 * refused before any agent runs (too large, empty, not JSON, no such agent
 * or version), describe of a loaded / not yet loaded / refused agent, the
 * list and stats (served and refused agents, keys with an expiry), a module
 * cache of one (eviction and reload), open failures (no keyring, no store,
 * a bad data directory or model script), and the watcher thread following
 * a keyring change (waiting for the observable reload, bounded, never a
 * fixed sleep). And the whole cycle (open, invoke, list, describe, stats)
 * under allocation torture (tests/unit/faultinject.h; the Makefile links
 * this binary with the allocation wraps): each failure is reported as out
 * of memory, and none leaves an agent refused (the next request works).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "faultinject.h"
#include "labguest.h"
#include "keyring_fixture.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/release.h"
#include "art/store.h"
#include "gen/toolchain.h"
#include "rt/compat.h"
#include "rt/engine.h"
#include "rt/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { ALPHA, BRAVO, CHARLIE, N_LAB };
static const char *const names[N_LAB] = {"alpha", "bravo", "charlie"};
static const char ECHO[] = "{\"cmd\":\"echo\"}";

static struct {
	char root[64], store[128], keyring[128], logpath[128], rm_keyring[128], rm_keyring2[128],
		rm_link[128];
	gen_toolchain *tc;
	art_key *builder, *stranger, *expiring, *rm;
	lab_build lab[N_LAB];
	time_t t0;
	FILE *log;
} g;

static int put_lab(art_store_txn *t, int i, const art_key *key)
{
	static const char *const caps[] = {"clock", "kv.read", "kv.write", "llm_chat",
					   "log", "random", "tool_call"};
	static const art_manifest_import imports[] = {
		{"af", "clock_now_ms", "func"}, {"af", "llm_chat", "func"}, {"af", "log", "func"},
		{"af", "random_get", "func"},   {"af", "result_read", "func"},
		{"af", "tool_call", "func"}};
	static const art_manifest_export exports[] = {
		{"_initialize", "func"}, {"af_abi_version", "func"}, {"af_alloc", "func"},
		{"af_describe", "func"}, {"af_handle", "func"},      {"memory", "memory"}};
	art_provenance_info prov = {"https://git.example.invalid/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	const lab_build *b = &g.lab[i];
	art_manifest_info info;
	art_build_parts parts;
	char resolved[ART_DIGEST_STR_LEN + 1];

	art_manifest_digest(resolved, names[i], strlen(names[i]));
	memset(&info, 0, sizeof(info));
	info.name = names[i];
	info.version = "1.0.0";
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "test-toolchain";
	info.native_compat_id = gen_toolchain_compat_id(g.tc);
	info.target_triple = rt_compat_target();
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 6;
	info.exports = exports;
	info.n_exports = 6;
	info.capabilities = caps;
	info.n_capabilities = 7;
	parts.wasm = b->wasm;
	parts.wasm_len = b->wasm_len;
	parts.native = b->so;
	parts.native_len = b->so_len;
	parts.source = b->source;
	parts.source_len = b->source_len;
	return art_store_put_build(t, NULL, &info, &prov, &parts, key);
}

/* The keyring: the builder; with_expiring, a second key valid for a day. */
static void write_keyring(bool with_expiring)
{
	art_keyring *kr = NULL;

	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	if (with_expiring)
		assert_int_equal(art_keyring_add(kr, g.expiring, ART_ROLE_BUILDER, g.t0 - 86400,
						 g.t0 + 86400), 0);
	assert_int_equal(keyring_fixture_save(kr, g.keyring), 0);
	art_keyring_free(kr);
}

static int setup(void **state)
{
	art_store *s = NULL;
	art_store_txn *t = NULL;
	char dir[160];
	int i, rc;

	(void)state;
	g.t0 = time(NULL);
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-engine-api-XXXXXX");
	if (!mkdtemp(g.root) || gen_toolchain_discover(&g.tc) != 0)
		return -1;
	snprintf(g.store, sizeof(g.store), "%s/store", g.root);
	snprintf(g.keyring, sizeof(g.keyring), "%s/keyring.json", g.root);
	snprintf(g.logpath, sizeof(g.logpath), "%s/runtime.log", g.root);
	snprintf(g.rm_keyring, sizeof(g.rm_keyring), "%s/keyring-rm.json", g.root);
	snprintf(g.rm_keyring2, sizeof(g.rm_keyring2), "%s/keyring-rm2.json", g.root);
	snprintf(g.rm_link, sizeof(g.rm_link), "%s/keyring-live.json", g.root);
	if (!(g.log = fopen(g.logpath, "a")))
		return -1;
	for (i = 0; i < N_LAB; i++) {
		snprintf(dir, sizeof(dir), "%s/build-%s", g.root, names[i]);
		if (lab_build_module(&g.lab[i], dir, names[i]) != 0)
			return -1;
	}
	if (art_key_generate(&g.builder, 2048) || art_key_generate(&g.stranger, 2048) ||
	    art_key_generate(&g.expiring, 2048) || art_key_generate(&g.rm, 2048))
		return -1;
	if ((rc = art_store_open(&s, g.store, ART_STORE_CREATE)) < 0 ||
	    (rc = art_store_txn_begin(&t, s)) < 0)
		return -1;
	rc = put_lab(t, ALPHA, g.builder);
	if (rc == 0)
		rc = put_lab(t, BRAVO, g.stranger);
	if (rc == 0)
		rc = put_lab(t, CHARLIE, g.builder);
	rc = rc == 0 ? art_store_txn_commit(t) : (art_store_txn_abort(t), rc);
	/* Channel "green": a release of alpha and charlie, signed by rm. */
	if (rc == 0) {
		static const char *const refs[] = {"alpha", "charlie"};
		const art_key *keys[1] = {g.rm};
		art_keyring *kr = NULL;
		art_release *r = NULL;

		if (art_keyring_new(&kr) < 0 ||
		    art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0) < 0 ||
		    art_keyring_add(kr, g.rm, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0) < 0 ||
		    art_release_create(&r, s, kr, g.rm, refs, 2, g.t0 + 7 * 86400, g.t0) < 0 ||
		    art_release_promote(NULL, s, kr, keys, 1, "green", r->number, g.t0) < 0 ||
		    keyring_fixture_save(kr, g.rm_keyring) < 0)
			rc = -1;
		art_release_free(r);
		art_keyring_free(kr);
		kr = NULL;
		/* The next version of the same keys. */
		if (rc == 0 &&
		    (art_keyring_new(&kr) < 0 ||
		     art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0) < 0 ||
		     art_keyring_add(kr, g.rm, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0) < 0 ||
		     keyring_fixture_save(kr, g.rm_keyring2) < 0))
			rc = -1;
		art_keyring_free(kr);
	}
	art_store_close(s);
	return rc;
}

static int teardown(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < N_LAB; i++)
		lab_build_free(&g.lab[i]);
	art_key_free(g.builder);
	art_key_free(g.stranger);
	art_key_free(g.expiring);
	art_key_free(g.rm);
	gen_toolchain_free(g.tc);
	if (g.log)
		fclose(g.log);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

static int reset_keyring(void **state)
{
	(void)state;
	write_keyring(false);
	return 0;
}

static void opts_init(rt_engine_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->store_dir = g.store;
	o->keyring_path = g.keyring;
	o->max_memory_pages = 128;
	o->log = g.log;
}

static rt_engine *open_engine(size_t cache, size_t max_request)
{
	rt_engine_opts o;
	rt_engine *e = NULL;

	opts_init(&o);
	o.module_cache = cache;
	o.max_request_bytes = max_request;
	if (rt_engine_open(&e, &o) != 0)
		fail_msg("rt_engine_open: %s", art_error_last());
	return e;
}

static void invoke_expect(rt_engine *e, const char *name, const char *version, const char *req,
			  size_t len, const char *code, int status, const char *in_message)
{
	rt_invoke_result res;

	assert_int_equal(rt_engine_invoke(e, name, version, req, len, &res), 0);
	if (code ? !res.error_code || strcmp(res.error_code, code) != 0 : res.error_code != NULL)
		fail_msg("%s: wanted %s, got %s: %s", name ? name : "(null)", code ? code : "ok",
			 res.error_code ? res.error_code : "ok", res.body ? res.body : "");
	assert_int_equal(res.http_status, status);
	assert_non_null(res.body);
	if (in_message && !strstr(res.body, in_message))
		fail_msg("'%s' lacks '%s'", res.body, in_message);
	rt_invoke_result_clear(&res);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_engine_api__null_arguments(void **state)
{
	rt_engine_opts o;
	rt_engine *e = (rt_engine *)1;
	rt_engine_status st;
	rt_engine_stats stats;
	rt_invoke_result res;
	rt_agent_info *list = NULL;
	char *doc = NULL;
	size_t n = 0;

	(void)state;
	opts_init(&o);
	assert_int_equal(rt_engine_open(NULL, &o), AF_EINVAL);
	assert_int_equal(rt_engine_open(&e, NULL), AF_EINVAL);
	o.keyring_path = NULL;
	assert_int_equal(rt_engine_open(&e, &o), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "a store directory and a keyring are required"));
	o.keyring_path = g.keyring;
	o.store_dir = NULL;
	assert_int_equal(rt_engine_open(&e, &o), AF_EINVAL);

	assert_int_equal(rt_engine_refresh(NULL, 0), AF_EINVAL);
	assert_int_equal(rt_engine_status_get(NULL, &st), AF_EINVAL);
	assert_int_equal(rt_engine_stats_get(NULL, &stats), AF_EINVAL);
	assert_int_equal(rt_engine_list(NULL, &list, &n), AF_EINVAL);
	assert_int_equal(rt_engine_describe(NULL, "alpha", NULL, &doc, &n), AF_EINVAL);
	assert_false(rt_engine_ready(NULL));
	rt_engine_close(NULL);
	rt_agent_info_free(NULL, 3);
	assert_int_equal(rt_engine_invoke(NULL, "alpha", NULL, ECHO, strlen(ECHO), NULL), AF_EINVAL);
	/* No engine: an answer saying so, not a crash. */
	assert_int_equal(rt_engine_invoke(NULL, "alpha", NULL, ECHO, strlen(ECHO), &res), 0);
	assert_string_equal(res.error_code, "internal");
	assert_non_null(strstr(res.body, "no engine"));
	rt_invoke_result_clear(&res);

	e = open_engine(0, 0);
	assert_int_equal(rt_engine_status_get(e, NULL), AF_EINVAL);
	assert_int_equal(rt_engine_stats_get(e, NULL), AF_EINVAL);
	assert_int_equal(rt_engine_list(e, NULL, &n), AF_EINVAL);
	assert_int_equal(rt_engine_list(e, &list, NULL), AF_EINVAL);
	assert_int_equal(rt_engine_describe(e, NULL, NULL, &doc, &n), AF_EINVAL);
	assert_int_equal(rt_engine_describe(e, "alpha", NULL, NULL, &n), AF_EINVAL);
	assert_int_equal(rt_engine_describe(e, "alpha", NULL, &doc, NULL), AF_EINVAL);
	rt_engine_close(e);
}

static void test_engine_api__open_failures(void **state)
{
	rt_engine_opts o;
	rt_engine *e = (rt_engine *)1;
	char path[200];
	FILE *fp;

	(void)state;
	opts_init(&o);
	snprintf(path, sizeof(path), "%s/no-keyring.json", g.root);
	o.keyring_path = path;
	assert_int_equal(rt_engine_open(&e, &o), AF_ENOTFOUND);
	assert_null(e);

	opts_init(&o);
	snprintf(path, sizeof(path), "%s/no-store", g.root);
	o.store_dir = path;
	assert_true(rt_engine_open(&e, &o) < 0);
	assert_null(e);

	/* A data directory that is a file. */
	opts_init(&o);
	snprintf(path, sizeof(path), "%s/a-file", g.root);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	o.data_dir = path;
	assert_true(rt_engine_open(&e, &o) < 0);
	assert_null(e);

	/* A model script that does not exist / does not parse. */
	opts_init(&o);
	snprintf(path, sizeof(path), "%s/no-script.json", g.root);
	o.llm_script = path;
	assert_true(rt_engine_open(&e, &o) < 0);
	assert_null(e);
	snprintf(path, sizeof(path), "%s/a-file", g.root);
	o.llm_script = path;
	assert_true(rt_engine_open(&e, &o) < 0);
	assert_null(e);
}

static void test_engine_api__requests_refused_before_running(void **state)
{
	rt_engine *e = open_engine(0, 64);
	char big[65];

	(void)state;
	memset(big, ' ', sizeof(big));
	invoke_expect(e, "alpha", NULL, big, sizeof(big), "payload_too_large", 413, "over the limit of 64");
	invoke_expect(e, "alpha", NULL, NULL, 0, "invalid_json", 400, "the request is empty");
	invoke_expect(e, "alpha", NULL, "{\"cmd\":", 7, "invalid_json", 400, "not valid JSON");
	invoke_expect(e, "alpha", NULL, "{\"a\":1,\"a\":2}", 13, "invalid_json", 400, NULL);
	invoke_expect(e, NULL, NULL, ECHO, strlen(ECHO), "not_found", 404, "no agent (none)");
	invoke_expect(e, "zulu", NULL, ECHO, strlen(ECHO), "not_found", 404, "no agent zulu");
	invoke_expect(e, "alpha", "9.9.9", ECHO, strlen(ECHO), "not_found", 404, "no agent alpha@9.9.9");
	/* The version served, named: fine. */
	invoke_expect(e, "alpha", "1.0.0", ECHO, strlen(ECHO), NULL, 200, "\"ok\":true");
	rt_engine_close(e);
}

static void test_engine_api__describe_list_and_stats(void **state)
{
	rt_engine *e;
	rt_engine_stats stats;
	rt_agent_info *list = NULL;
	char *doc = NULL, *again = NULL;
	size_t n = 0, len = 0, len2 = 0, i;

	(void)state;
	write_keyring(true);
	e = open_engine(0, 0);
	/* bravo's builder is not trusted: refused, said in the list. */
	assert_int_equal(rt_engine_list(e, &list, &n), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		assert_string_equal(list[i].version, "1.0.0");
		assert_true(strncmp(list[i].manifest_digest, "sha256:", 7) == 0);
		if (strcmp(list[i].name, "bravo") == 0) {
			assert_false(list[i].ok);
			assert_non_null(list[i].refused_reason);
			assert_true(strncmp(list[i].refused_reason, "signature: ", 11) == 0);
		} else {
			assert_true(list[i].ok);
			assert_null(list[i].refused_reason);
		}
	}
	rt_agent_info_free(list, n);

	assert_int_equal(rt_engine_stats_get(e, &stats), 0);
	assert_int_equal(stats.agents_served, 2);
	assert_int_equal(stats.agents_refused, 1);
	assert_int_equal(stats.module_cache_capacity, 64);
	assert_int_equal(stats.n_keys, 1); /* only the key with an expiry */
	assert_string_equal(stats.keys[0].role, ART_ROLE_BUILDER);
	assert_int_equal(stats.keys[0].not_after, (int64_t)(g.t0 + 86400));
	assert_int_equal(strlen(stats.keys[0].id), 16);
	assert_true(strncmp(stats.keys[0].id, art_key_id(g.expiring), 16) == 0);

	/* describe: the resolved template, the same bytes twice; refused and unknown agents. */
	assert_int_equal(rt_engine_describe(e, "alpha", NULL, &doc, &len), 0);
	assert_int_equal(len, strlen(doc));
	assert_non_null(strstr(doc, "\"name\":\"alpha\""));
	assert_int_equal(rt_engine_describe(e, "alpha", "1.0.0", &again, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(doc, again, len);
	free(doc);
	free(again);
	doc = (char *)1;
	assert_int_equal(rt_engine_describe(e, "bravo", NULL, &doc, &len), AF_ESIGNATURE);
	assert_null(doc);
	assert_int_equal(len, 0);
	assert_non_null(strstr(art_error_last(), "bravo@1.0.0 is refused (signature)"));
	assert_int_equal(rt_engine_describe(e, "zulu", NULL, &doc, &len), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "no agent zulu"));
	assert_int_equal(rt_engine_describe(e, "alpha", "2.0.0", &doc, &len), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "no agent alpha@2.0.0"));
	invoke_expect(e, "bravo", NULL, ECHO, strlen(ECHO), "agent_refused", 503, "signature");
	rt_engine_close(e);
}

static void test_engine_api__a_cache_of_one_module(void **state)
{
	rt_engine *e = open_engine(1, 0);
	rt_engine_stats stats;
	int round;

	(void)state;
	for (round = 0; round < 3; round++) {
		invoke_expect(e, "alpha", NULL, ECHO, strlen(ECHO), NULL, 200, NULL);
		assert_int_equal(rt_engine_stats_get(e, &stats), 0);
		assert_int_equal(stats.modules_loaded, 1);
		invoke_expect(e, "charlie", NULL, ECHO, strlen(ECHO), NULL, 200, NULL);
		assert_int_equal(rt_engine_stats_get(e, &stats), 0);
		assert_int_equal(stats.modules_loaded, 1);
		assert_int_equal(stats.module_cache_capacity, 1);
	}
	/* describe after eviction: served from the agent's copy. */
	{
		char *doc = NULL;
		size_t len = 0;

		assert_int_equal(rt_engine_describe(e, "alpha", NULL, &doc, &len), 0);
		assert_non_null(strstr(doc, "\"name\":\"alpha\""));
		free(doc);
	}
	assert_true(rt_engine_ready(e));
	rt_engine_close(e);
}

/* The watcher thread takes a new keyring by itself: wait (bounded) for the reload. */
static bool wait_reloads(rt_engine *e, uint64_t want)
{
	rt_engine_status st;
	int i;

	for (i = 0; i < 2000; i++) { /* up to 20 s: a loaded machine, not a timing assumption */
		assert_int_equal(rt_engine_status_get(e, &st), 0);
		if (st.keyring_reloads >= want)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_engine_api__the_watcher_follows_the_keyring(void **state)
{
	rt_engine_opts o;
	rt_engine *e = NULL;
	const char *saved = getenv("AF_WATCH_INOTIFY");
	int pass;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		/* pass 1: AF_WATCH_INOTIFY=0, polling only */
		if (pass == 1)
			setenv("AF_WATCH_INOTIFY", "0", 1);
		opts_init(&o);
		o.watch_ms = pass == 0 ? 60000 : 20; /* inotify wakes it long before 60 s */
		assert_int_equal(rt_engine_open(&e, &o), 0);
		invoke_expect(e, "alpha", NULL, ECHO, strlen(ECHO), NULL, 200, NULL);
		write_keyring(pass == 0);
		if (!wait_reloads(e, 1))
			fail_msg("the watcher did not reload the keyring (pass %d)", pass);
		invoke_expect(e, "alpha", NULL, ECHO, strlen(ECHO), NULL, 200, NULL);
		rt_engine_close(e);
	}
	if (saved)
		setenv("AF_WATCH_INOTIFY", saved, 1);
	else
		unsetenv("AF_WATCH_INOTIFY");
}

/* data.mdb truncated under a running engine (a restore gone wrong): nothing
 * more is read from it, requests that need it get 503 store_corrupt, the
 * engine is not ready; the file whole again, everything works again. */
static void test_engine_api__a_truncated_store_file(void **state)
{
	char dir[160], src[200], dst[200], *data = NULL;
	size_t len = 0;
	rt_engine_opts o;
	rt_engine_status st;
	rt_engine *e = NULL;
	FILE *fp;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/damaged", g.root);
	snprintf(src, sizeof(src), "%s/data.mdb", g.store);
	snprintf(dst, sizeof(dst), "%s/data.mdb", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(art_file_read(&data, &len, src, (size_t)256 << 20), 0);
	fp = fopen(dst, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);

	opts_init(&o);
	o.store_dir = dir;
	o.module_cache = 1;
	assert_int_equal(rt_engine_open(&e, &o), 0);
	invoke_expect(e, "alpha", NULL, ECHO, strlen(ECHO), NULL, 200, NULL); /* charlie evicted */
	assert_true(rt_engine_ready(e));

	assert_int_equal(truncate(dst, 8192), 0);
	invoke_expect(e, "charlie", NULL, ECHO, strlen(ECHO), "store_corrupt", 503, "data.mdb");
	assert_false(rt_engine_ready(e));
	assert_int_equal(rt_engine_status_get(e, &st), 0);
	assert_non_null(strstr(st.store_error, "data.mdb"));
	assert_int_equal(rt_engine_refresh(e, 0), 0); /* reads nothing, says nothing new */
	invoke_expect(e, "charlie", NULL, ECHO, strlen(ECHO), "store_corrupt", 503, NULL);
	/* The module in memory still serves. */
	invoke_expect(e, "alpha", NULL, ECHO, strlen(ECHO), NULL, 200, NULL);

	/* Whole again (the same inode, rewritten). */
	fp = fopen(dst, "r+");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	invoke_expect(e, "charlie", NULL, ECHO, strlen(ECHO), NULL, 200, NULL);
	assert_true(rt_engine_ready(e));
	assert_int_equal(rt_engine_status_get(e, &st), 0);
	assert_string_equal(st.store_error, "");
	rt_engine_close(e);
	free(data);
	/* Said once when it broke, once when it healed. */
	fflush(g.log);
	assert_int_equal(art_file_read(&data, &len, g.logpath, (size_t)64 << 20), 0);
	assert_non_null(strstr(data, "\"store_corrupt\""));
	assert_null(strstr(strstr(data, "\"store_corrupt\"") + 1, "\"store_corrupt\""));
	assert_non_null(strstr(data, "the store file is whole again"));
	free(data);
}

/* ---- allocation failures -------------------------------------------------------------- */

/* An answer under allocation failure: ok, or saying it ran out of memory. */
static int classify(int rc, const rt_invoke_result *res, const char *what)
{
	const char *msg = res->error_message ? res->error_message : "";

	if (rc < 0)
		return rc;
	if (!res->error_code)
		return res->http_status == 200 && res->body && strstr(res->body, "\"ok\":true")
			       ? 0
			       : art_error_set(AF_EINTERNAL, "%s: no error, but %s", what,
					       res->body ? res->body : "no body");
	if (strstr(msg, "out of memory") || strstr(msg, "out of resources"))
		return AF_ENOMEM;
	return art_error_set(AF_EINTERNAL, "%s: %s: %s", what, res->error_code, msg);
}

static int run_engine_cycle(void *ctx)
{
	rt_engine *e = NULL;
	rt_engine_opts o;
	rt_invoke_result res;
	rt_agent_info *list = NULL;
	rt_engine_stats stats;
	char *doc = NULL;
	size_t n = 0, len = 0;
	int rc, worst = 0;

	(void)ctx;
	opts_init(&o);
	if ((rc = rt_engine_open(&e, &o)) < 0)
		return rc;
	rc = classify(rt_engine_invoke(e, "alpha", NULL, ECHO, strlen(ECHO), &res), &res, "invoke");
	rt_invoke_result_clear(&res);
	if (rc < 0 && rc != AF_ENOMEM)
		goto done;
	worst = rc;
	if ((rc = rt_engine_list(e, &list, &n)) == 0)
		rt_agent_info_free(list, n);
	if (rc < 0)
		goto done;
	if ((rc = rt_engine_describe(e, "charlie", NULL, &doc, &len)) == 0 &&
	    !strstr(doc, "\"name\":\"charlie\""))
		rc = art_error_set(AF_EINTERNAL, "describe: %s", doc);
	free(doc);
	if (rc < 0)
		goto done;
	if ((rc = rt_engine_stats_get(e, &stats)) < 0)
		goto done;
	/* Whatever failed above was not a verdict on the agents: both work now. */
	rc = classify(rt_engine_invoke(e, "alpha", NULL, ECHO, strlen(ECHO), &res), &res,
		      "alpha afterwards");
	rt_invoke_result_clear(&res);
	if (rc == 0) {
		rc = classify(rt_engine_invoke(e, "charlie", NULL, ECHO, strlen(ECHO), &res), &res,
			      "charlie afterwards");
		rt_invoke_result_clear(&res);
	}
	if (rc == 0)
		rc = worst;
done:
	rt_engine_close(e);
	return rc;
}

/* Following channel "green": a release not taken for want of memory says so. */
static int run_channel_cycle(void *ctx)
{
	rt_engine *e = NULL;
	rt_engine_opts o;
	rt_engine_status st;
	rt_invoke_result res;
	int rc;

	uint64_t refused = rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release");

	(void)ctx;
	opts_init(&o);
	o.keyring_path = g.rm_keyring;
	o.channel = "green";
	if ((rc = rt_engine_open(&e, &o)) < 0)
		return rc;
	if ((rc = rt_engine_status_get(e, &st)) == 0 && st.state != RT_CHANNEL_OK) {
		rc = strstr(st.reason, "out of memory") ? AF_ENOMEM
			: art_error_set(AF_EINTERNAL, "not serving: %s", st.reason);
		/* Out of memory is no verdict on the release: not counted as refused. */
		if (rc == AF_ENOMEM &&
		    (st.refusals || rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release") != refused))
			rc = art_error_set(AF_EINTERNAL, "out of memory counted as a refused release: %s",
					   st.reason);
		goto done;
	}
	if (rc == 0 && st.release == 0)
		rc = art_error_set(AF_EINTERNAL, "no release in force");
	if (rc == 0) {
		rc = classify(rt_engine_invoke(e, "charlie", NULL, ECHO, strlen(ECHO), &res), &res,
			      "invoke");
		rt_invoke_result_clear(&res);
	}
	if (rc == 0)
		rc = rt_engine_refresh(e, 0);
done:
	rt_engine_close(e);
	return rc;
}

/* Following "green", the keyring replaced by its next version: the release
 * in force is re-verified; out of memory meanwhile must not withdraw it. */
static int run_keyring_reload(void *ctx)
{
	uint64_t refused;
	rt_engine *e = NULL;
	rt_engine_opts o;
	rt_engine_status st;
	int rc;

	(void)ctx;
	unlink(g.rm_link);
	if (link(g.rm_keyring, g.rm_link) != 0)
		return art_error_set(AF_EIO, "link");
	opts_init(&o);
	o.keyring_path = g.rm_link;
	o.channel = "green";
	if ((rc = rt_engine_open(&e, &o)) < 0)
		return rc;
	if ((rc = rt_engine_status_get(e, &st)) == 0 && st.state != RT_CHANNEL_OK) {
		rc = AF_ENOMEM; /* not taken at open: run_channel_cycle checks that case */
		goto done;
	}
	unlink(g.rm_link);
	if (link(g.rm_keyring2, g.rm_link) != 0) {
		rc = art_error_set(AF_EIO, "link");
		goto done;
	}
	refused = rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release");
	rt_engine_refresh(e, 0);
	assert_int_equal(rt_engine_status_get(e, &st), 0);
	if (st.keyring_reloads != 1)
		rc = st.keyring_error[0] && strstr(st.keyring_error, "out of memory")
			     ? AF_ENOMEM
			     : art_error_set(AF_EINTERNAL, "keyring not reloaded: %s",
					     st.keyring_error);
	else if (st.state != RT_CHANNEL_OK)
		/* Could not re-verify for want of memory: withdrawn (fail closed,
		 * retried later), but never counted as a refused release. */
		rc = strstr(st.reason, "out of memory") &&
			     rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release") == refused
			     ? AF_ENOMEM
			     : art_error_set(AF_EINTERNAL, "the release in force was withdrawn: %s",
					     st.reason);
done:
	rt_engine_close(e);
	return rc;
}

static void test_engine_api__allocation_failures(void **state)
{
	const fi_op ops[] = {
		{"rt_engine open+invoke+list+describe+stats", run_engine_cycle, NULL, NULL},
		{"rt_engine on a channel: open+invoke+refresh", run_channel_cycle, NULL, NULL},
		{"rt_engine on a channel: keyring reload", run_keyring_reload, NULL, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (fi_torture(&ops[i]) < 0)
			fail_msg("%s: see above", ops[i].name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_engine_api__null_arguments, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__open_failures, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__requests_refused_before_running, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__describe_list_and_stats, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__a_cache_of_one_module, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__the_watcher_follows_the_keyring, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__a_truncated_store_file, reset_keyring),
		cmocka_unit_test_setup(test_engine_api__allocation_failures, reset_keyring),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
