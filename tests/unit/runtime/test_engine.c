/*
 * test_engine.c - the engine on real generated agents: backup-manager (a
 * steps workflow using clock_now, kv_get and kv_put) and hostile (an LLM
 * agent) built by the code generator from the JSON fixtures of tests/fixtures/codegen,
 * stored as signed artifacts, served by rt_engine: describe returns the
 * resolved template byte for byte, the workflow runs against the per-agent
 * key-value store, the LLM agent runs on the scripted provider, and 8
 * threads x 1,000 invocations run with zero errors and no leak (run it
 * under ASan: see docs/runtime.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/store.h"
#include "gen/toolchain.h"
#include "rt/compat.h"
#include "rt/engine.h"
#include "rt/kv.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"
#include "keyring_fixture.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREADS 8
#define PER_THREAD 1000

static struct {
	char root[64], store[128], keyring[128], data[128], script[128];
	char *json[2];
	size_t json_len[2];
	FILE *log;
} g;

static const char *const fixtures[2] = {"backup-manager", "hostile"};

static int store_agent(art_store_txn *t, const gen_toolchain *tc, const art_key *key, int i)
{
	const char *src = getenv("AF_SRCDIR");
	char path[512], dir[160], resolved[ART_DIGEST_STR_LEN + 1];
	gen_result *r = NULL;
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.invalid/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_build_parts parts;
	art_manifest_import imports[16];
	art_manifest_export exports[16];
	json_t *root = NULL, *caps;
	const char *capv[16];
	size_t k;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/tests/fixtures/codegen/%s.json", src ? src : ".", fixtures[i]);
	snprintf(dir, sizeof(dir), "%s/build-%s", g.root, fixtures[i]);
	if (art_file_read(&g.json[i], &g.json_len[i], path, 1 << 20) != 0 ||
	    gen_build_agent(&r, tc, g.json[i], g.json_len[i], dir, NULL) != 0) {
		fprintf(stderr, "build %s: %s\n", fixtures[i], art_error_last());
		goto cleanup;
	}
	root = json_loadb(g.json[i], g.json_len[i], 0, NULL);
	caps = json_object_get(root, "capabilities");
	memset(&info, 0, sizeof(info));
	for (k = 0; k < json_array_size(caps) && k < 16; k++)
		capv[k] = json_string_value(json_array_get(caps, k));
	info.capabilities = capv;
	info.n_capabilities = k;
	for (k = 0; k < r->module->n_imports && k < 16; k++) {
		imports[k].module = r->module->imports[k].module;
		imports[k].name = r->module->imports[k].name;
		imports[k].kind = "func";
	}
	info.imports = imports;
	info.n_imports = k;
	for (k = 0; k < r->module->n_exports && k < 16; k++) {
		exports[k].name = r->module->exports[k].name;
		exports[k].kind = r->module->exports[k].kind == ART_WASM_MEMORY ? "memory" : "func";
	}
	info.exports = exports;
	info.n_exports = k;
	art_manifest_digest(resolved, g.json[i], g.json_len[i]);
	info.name = json_string_value(json_object_get(root, "name"));
	info.version = json_string_value(json_object_get(root, "version"));
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = gen_toolchain_id(tc);
	info.native_compat_id = gen_toolchain_compat_id(tc);
	info.target_triple = gen_toolchain_target(tc);
	info.guest_abi_version = 1;
	parts.wasm = r->wasm;
	parts.wasm_len = r->wasm_len;
	parts.native = r->so;
	parts.native_len = r->so_len;
	parts.source = r->c_source;
	parts.source_len = r->c_len;
	rc = art_store_put_build(t, NULL, &info, &prov, &parts, key);
	if (rc != 0)
		fprintf(stderr, "put %s: %s\n", fixtures[i], art_error_last());
cleanup:
	json_decref(root);
	gen_result_free(r);
	return rc;
}

static int setup(void **state)
{
	gen_toolchain *tc = NULL;
	art_key *builder = NULL;
	art_keyring *kr = NULL;
	art_store *s = NULL;
	art_store_txn *t = NULL;
	rt_kv *kv = NULL;
	FILE *fp;
	int i, rc = -1;

	(void)state;
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-engine-XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	snprintf(g.store, sizeof(g.store), "%s/store", g.root);
	snprintf(g.keyring, sizeof(g.keyring), "%s/keyring.json", g.root);
	snprintf(g.data, sizeof(g.data), "%s/data", g.root);
	snprintf(g.script, sizeof(g.script), "%s/script.json", g.root);
	if (gen_toolchain_discover(&tc) || art_key_generate(&builder, 2048) || art_keyring_new(&kr) ||
	    art_keyring_add(kr, builder, ART_ROLE_BUILDER, time(NULL) - 3600, 0) ||
	    keyring_fixture_save(kr, g.keyring) || art_store_open(&s, g.store, ART_STORE_CREATE) ||
	    art_store_txn_begin(&t, s))
		goto cleanup;
	for (i = 0; i < 2; i++)
		if (store_agent(t, tc, builder, i) != 0)
			goto cleanup;
	rc = art_store_txn_commit(t);
	t = NULL;
	if (rc != 0)
		goto cleanup;
	rc = -1;
	/* The release records the workflow copies, one per thread. */
	if (rt_kv_open(&kv, g.data) != 0)
		goto cleanup;
	for (i = 0; i < THREADS; i++) {
		char key[32], val[64];

		snprintf(key, sizeof(key), "releases/r%d", i);
		snprintf(val, sizeof(val), "{\"version\":\"1.%d.0\"}", i);
		if (rt_kv_put(kv, "backup-manager", key, strlen(key), val, strlen(val)) != 0)
			goto cleanup;
	}
	fp = fopen(g.script, "w");
	if (!fp)
		goto cleanup;
	fputs("{\"responses\":[{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
	      "\"{\\\"summary\\\":\\\"scripted\\\"}\"}}]}]}", fp);
	fclose(fp);
	g.log = tmpfile();
	rc = g.log ? 0 : -1;
cleanup:
	rt_kv_close(kv);
	art_store_txn_abort(t);
	art_store_close(s);
	art_keyring_free(kr);
	art_key_free(builder);
	gen_toolchain_free(tc);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	free(g.json[0]);
	free(g.json[1]);
	if (g.log)
		fclose(g.log);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

static rt_engine *open_engine(void)
{
	rt_engine_opts o;
	rt_engine *e = NULL;

	memset(&o, 0, sizeof(o));
	o.store_dir = g.store;
	o.keyring_path = g.keyring;
	o.data_dir = g.data;
	o.llm_script = g.script;
	o.log = g.log;
	if (rt_engine_open(&e, &o) != 0)
		fail_msg("rt_engine_open: %s", art_error_last());
	return e;
}

static void test_engine__describe_is_the_resolved_template(void **state)
{
	rt_agent_info *list = NULL;
	size_t n = 0, len = 0, i;
	char *d = NULL;
	rt_engine *e;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine();
	assert_true(rt_engine_ready(e));
	assert_int_equal(rt_engine_list(e, &list, &n), 0);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++)
		assert_true(list[i].ok);
	rt_agent_info_free(list, n);
	for (i = 0; i < 2; i++) {
		assert_int_equal(rt_engine_describe(e, fixtures[i], NULL, &d, &len), 0);
		assert_int_equal(len, g.json_len[i]);
		assert_memory_equal(d, g.json[i], len);
		free(d);
	}
	assert_int_equal(rt_engine_describe(e, "nobody", NULL, &d, &len), AF_ENOTFOUND);
	rt_engine_close(e);
}

static void test_engine__workflow_runs_against_the_kv_store(void **state)
{
	rt_invoke_result res;
	json_t *j, *steps;
	rt_engine *e;
	static const char req[] = "{\"inputs\":{\"release\":\"r3\"}}";

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine();
	assert_int_equal(rt_engine_invoke(e, "backup-manager", NULL, req, strlen(req), &res), 0);
	if (res.error_code)
		fail_msg("%s", res.body);
	j = json_loadb(res.body, res.body_len, 0, NULL);
	steps = json_object_get(json_object_get(j, "output"), "steps");
	assert_string_equal(json_string_value(json_object_get(json_object_get(steps, "record"), "version")),
			    "1.3.0");
	assert_true(json_is_true(json_object_get(json_object_get(steps, "index"), "stored")));
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* A missing record is the agent's step_failed answer (422). */
	assert_int_equal(rt_engine_invoke(e, "backup-manager", NULL, "{\"inputs\":{\"release\":\"zz\"}}",
					 strlen("{\"inputs\":{\"release\":\"zz\"}}"), &res), 0);
	assert_string_equal(res.error_code, "step_failed");
	assert_int_equal(res.http_status, 422);
	rt_invoke_result_clear(&res);
	/* Schema errors are the guest's invalid_input (400). */
	assert_int_equal(rt_engine_invoke(e, "backup-manager", NULL, "{\"inputs\":{}}", strlen("{\"inputs\":{}}"), &res), 0);
	assert_string_equal(res.error_code, "invalid_input");
	assert_int_equal(res.http_status, 400);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
}

static void test_engine__llm_agent_on_the_scripted_provider(void **state)
{
	rt_invoke_result res;
	rt_engine *e;
	static const char req[] = "{\"inputs\":{\"topic\":\"t\",\"count\":1}}";

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine();
	assert_int_equal(rt_engine_invoke(e, "hostile", NULL, req, strlen(req), &res), 0);
	if (res.error_code)
		fail_msg("%s", res.body);
	assert_string_equal(res.body, "{\"ok\":true,\"output\":{\"summary\":\"scripted\"}}");
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
}

typedef struct worker {
	rt_engine *e;
	int id;
	int errors;
	char first_error[256];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	char req[64];
	int i;

	snprintf(req, sizeof(req), "{\"inputs\":{\"release\":\"r%d\"}}", w->id);
	for (i = 0; i < PER_THREAD; i++) {
		rt_invoke_result res;

		if (rt_engine_invoke(w->e, "backup-manager", NULL, req, strlen(req), &res) != 0 ||
		    res.error_code || res.http_status != 200 || !strstr(res.body, "\"ok\":true")) {
			if (!w->errors++)
				snprintf(w->first_error, sizeof(w->first_error), "%s",
					 res.body ? res.body : "(no body)");
		}
		rt_invoke_result_clear(&res);
	}
	return NULL;
}

static void test_engine__eight_threads_thousand_invocations_each(void **state)
{
	pthread_t t[THREADS];
	worker w[THREADS];
	rt_sandbox_stats st;
	uint64_t inst;
	rt_kv *kv = NULL;
	char *v = NULL;
	size_t vlen = 0;
	rt_engine *e;
	int i;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine();
	inst = rt_metrics_get(RT_M_INSTANTIATIONS);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].e = e;
		w[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (w[i].errors)
			fail_msg("thread %d: %d errors, first: %s", i, w[i].errors, w[i].first_error);
	}
	assert_int_equal(rt_metrics_get(RT_M_INSTANTIATIONS), inst + THREADS * PER_THREAD);
	/* Reservations are reused, not created per invocation. */
	rt_sandbox_stats_get(&st);
	assert_true(st.reservations <= THREADS + RT_POOL_MAX);
	assert_true(st.created <= (uint64_t)THREADS * 4);
	rt_engine_close(e);
	/* Every thread's backup index was written. */
	assert_int_equal(rt_kv_open(&kv, g.data), 0);
	for (i = 0; i < THREADS; i++) {
		char key[32];

		snprintf(key, sizeof(key), "backups/r%d/latest", i);
		assert_int_equal(rt_kv_get(kv, "backup-manager", key, strlen(key), &v, &vlen), 0);
		free(v);
	}
	rt_kv_close(kv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine__describe_is_the_resolved_template),
		cmocka_unit_test(test_engine__workflow_runs_against_the_kv_store),
		cmocka_unit_test(test_engine__llm_agent_on_the_scripted_provider),
		cmocka_unit_test(test_engine__eight_threads_thousand_invocations_each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
