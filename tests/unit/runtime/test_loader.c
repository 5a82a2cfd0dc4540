/*
 * test_loader.c - the engine's loader through a real store: lab guests
 * (tests/fixtures/runtime/lab_guest.c) stored as signed artifacts with
 * art_store_put_build and a test builder key, then attacked in the LMDB
 * files: a tampered .so, a tampered .wasm, a tampered manifest, a signature
 * by an untrusted key, a damaged signature, native code for another
 * compatibility id, and signed bytes that are not a shared object. Each of
 * them is refused with the right reason (log line + metric) while the good
 * agents are served; a runaway and a memory bomb get clean errors through
 * the engine and the next request is answered; the module LRU evicts and
 * reloads, also while an evicted module still runs.
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
#include "rt/metrics.h"
#include "rt/sandbox.h"
#include "keyring_fixture.h"

#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ALPHA, BRAVO, CHARLIE, DELTA, ECHO, FOXTROT, GOLF, HOTEL, INDIA, N_AGENTS };

static const char *const names[N_AGENTS] = {"alpha", "bravo", "charlie", "delta", "echo",
					    "foxtrot", "golf", "hotel", "india"};
/* The refusal reason each agent must get ("" = served). */
static const char *const want_reason[N_AGENTS] = {"", "digest", "digest", "signature", "signature",
						  "compat", "load", "signature", ""};

static struct {
	char root[64], store[128], keyring[128], logpath[128];
	gen_toolchain *tc;
	art_key *builder, *stranger;
	lab_build lab[N_AGENTS];
	char so_hex[N_AGENTS][ART_SHA256_HEX_LEN + 1];
	char wasm_hex[N_AGENTS][ART_SHA256_HEX_LEN + 1];
} g;

/* ---- building the store ---- */

static int put_lab(art_store_txn *t, int i, const char *compat, const art_key *key)
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
	info.native_compat_id = compat;
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
	if (i == GOLF) { /* signed, but not a shared object */
		static const char not_elf[] = "\x7f" "ELF but not really";

		parts.native = not_elf;
		parts.native_len = sizeof(not_elf) - 1;
	}
	return art_store_put_build(t, NULL, &info, &prov, &parts, key);
}

static int raw_open(MDB_env **env, MDB_txn **txn)
{
	if (mdb_env_create(env) || mdb_env_set_maxdbs(*env, 16) ||
	    mdb_env_set_mapsize(*env, ART_STORE_MAP_SIZE) || mdb_env_open(*env, g.store, 0, 0600) ||
	    mdb_txn_begin(*env, NULL, 0, txn))
		return -1;
	return 0;
}

/* Replace a blob by its raw bytes with one byte changed (the key stays). */
static int tamper_blob(MDB_txn *txn, MDB_dbi blobs, const char *hex, const uint8_t *raw, size_t len)
{
	MDB_val k = {64, (void *)hex}, v;
	uint8_t *val = malloc(13 + len);
	uint64_t n = len;
	int rc;

	if (!val)
		return -1;
	val[0] = 0; /* raw */
	memset(val + 1, 0, 4);
	memcpy(val + 5, &n, 8);
	memcpy(val + 13, raw, len);
	val[13 + len / 2] ^= 0x01;
	v.mv_size = 13 + len;
	v.mv_data = val;
	rc = mdb_put(txn, blobs, &k, &v, 0);
	free(val);
	return rc;
}

/* Change one byte of an artifact record at the first occurrence of needle
 * (in the manifest, or in the envelope when after is set). */
static int tamper_record(MDB_txn *txn, MDB_dbi artifacts, const char *ref, const char *needle,
			 size_t offset)
{
	MDB_val k = {strlen(ref), (void *)ref}, v;
	uint8_t *copy;
	char *at;
	int rc;

	if (mdb_get(txn, artifacts, &k, &v))
		return -1;
	copy = malloc(v.mv_size + 1);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size] = 0;
	at = memmem(copy, v.mv_size, needle, strlen(needle));
	if (!at) {
		free(copy);
		return -1;
	}
	at += strlen(needle) + offset;
	*at = *at == 'A' ? 'B' : (*at == '0' ? '1' : 'A');
	v.mv_data = copy;
	rc = mdb_put(txn, artifacts, &k, &v, 0);
	free(copy);
	return rc;
}

static int setup(void **state)
{
	art_keyring *kr = NULL;
	art_store *s = NULL;
	art_store_txn *t = NULL;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi blobs, artifacts;
	char other_compat[512], dir[160];
	int i;

	(void)state;
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-loader-XXXXXX");
	if (!mkdtemp(g.root) || gen_toolchain_discover(&g.tc) != 0)
		return -1;
	snprintf(g.store, sizeof(g.store), "%s/store", g.root);
	snprintf(g.keyring, sizeof(g.keyring), "%s/keyring.json", g.root);
	snprintf(g.logpath, sizeof(g.logpath), "%s/runtime.log", g.root);
	for (i = 0; i < N_AGENTS; i++) {
		snprintf(dir, sizeof(dir), "%s/build-%s", g.root, names[i]);
		if (lab_build_module(&g.lab[i], dir, names[i]) != 0)
			return -1;
		art_sha256_hex(g.lab[i].so, g.lab[i].so_len, g.so_hex[i]);
		art_sha256_hex(g.lab[i].wasm, g.lab[i].wasm_len, g.wasm_hex[i]);
	}
	if (art_key_generate(&g.builder, 2048) || art_key_generate(&g.stranger, 2048) ||
	    art_keyring_new(&kr) ||
	    art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, time(NULL) - 3600, 0) ||
	    keyring_fixture_save(kr, g.keyring))
		return -1;
	art_keyring_free(kr);

	/* The build compat id, with another target for foxtrot. */
	{
		const char *id = gen_toolchain_compat_id(g.tc), *p = strstr(id, "target="), *q;

		if (!p || !(q = strstr(p, "; ")))
			return -1;
		snprintf(other_compat, sizeof(other_compat), "%.*starget=riscv64-linux-gnu%s",
			 (int)(p - id), id, q);
	}
	if (art_store_open(&s, g.store, ART_STORE_CREATE) || art_store_txn_begin(&t, s))
		return -1;
	for (i = 0; i < N_AGENTS; i++) {
		if (put_lab(t, i, i == FOXTROT ? other_compat : gen_toolchain_compat_id(g.tc),
			    i == ECHO ? g.stranger : g.builder) != 0) {
			fprintf(stderr, "put %s: %s\n", names[i], art_error_last());
			return -1;
		}
	}
	if (art_store_txn_commit(t) != 0) {
		fprintf(stderr, "commit: %s\n", art_error_last());
		return -1;
	}
	art_store_close(s);

	/* The attacks, straight into the LMDB files. */
	if (raw_open(&env, &txn) || mdb_dbi_open(txn, "blobs", 0, &blobs) ||
	    mdb_dbi_open(txn, "artifacts", 0, &artifacts) ||
	    tamper_blob(txn, blobs, g.so_hex[BRAVO], g.lab[BRAVO].so, g.lab[BRAVO].so_len) ||
	    tamper_blob(txn, blobs, g.wasm_hex[CHARLIE], g.lab[CHARLIE].wasm, g.lab[CHARLIE].wasm_len) ||
	    tamper_record(txn, artifacts, "delta@1.0.0", "\"git_commit\":\"", 0) ||
	    tamper_record(txn, artifacts, "hotel@1.0.0", "\"sig\": \"", 10) || mdb_txn_commit(txn)) {
		fprintf(stderr, "tamper failed\n");
		return -1;
	}
	mdb_env_close(env);
	return 0;
}

static int teardown(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < N_AGENTS; i++)
		lab_build_free(&g.lab[i]);
	art_key_free(g.builder);
	art_key_free(g.stranger);
	gen_toolchain_free(g.tc);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

static rt_engine *open_engine(size_t cache, FILE *log)
{
	rt_engine_opts o;
	rt_engine *e = NULL;

	memset(&o, 0, sizeof(o));
	o.store_dir = g.store;
	o.keyring_path = g.keyring;
	o.module_cache = cache;
	o.max_memory_pages = 128;
	o.max_request_bytes = 4096;
	o.log = log;
	if (rt_engine_open(&e, &o) != 0)
		fail_msg("rt_engine_open: %s", art_error_last());
	return e;
}

static void invoke(rt_engine *e, const char *name, const char *req, const char *code, int status)
{
	rt_invoke_result res;

	assert_int_equal(rt_engine_invoke(e, name, NULL, req, strlen(req), &res), 0);
	if (code ? !res.error_code || strcmp(res.error_code, code) != 0 : res.error_code != NULL)
		fail_msg("%s %s: wanted %s, got %s: %s", name, req, code ? code : "ok",
			 res.error_code ? res.error_code : "ok", res.body);
	assert_int_equal(res.http_status, status);
	assert_non_null(res.body);
	rt_invoke_result_clear(&res);
}

/* ---- tests ---- */

static void test_loader__every_attack_is_refused_with_its_reason(void **state)
{
	rt_agent_info *list = NULL;
	size_t n = 0, i, k;
	FILE *log = fopen(g.logpath, "w+");
	char line[8192];
	int refused_lines = 0;
	rt_engine *e;

	(void)state;
	assert_non_null(log);
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	rt_metrics_reset();
	e = open_engine(0, log);
	assert_true(rt_engine_ready(e));
	assert_int_equal(rt_engine_list(e, &list, &n), 0);
	assert_int_equal(n, N_AGENTS);
	for (i = 0; i < n; i++) {
		for (k = 0; k < N_AGENTS && strcmp(names[k], list[i].name) != 0; k++)
			;
		assert_true(k < N_AGENTS);
		assert_string_equal(list[i].version, "1.0.0");
		assert_true(strncmp(list[i].manifest_digest, "sha256:", 7) == 0);
		if (!want_reason[k][0]) {
			if (!list[i].ok)
				fail_msg("%s refused: %s", names[k], list[i].refused_reason);
			assert_null(list[i].refused_reason);
		} else {
			assert_false(list[i].ok);
			if (strncmp(list[i].refused_reason, want_reason[k], strlen(want_reason[k])) != 0)
				fail_msg("%s: wanted reason %s, got %s", names[k], want_reason[k],
					 list[i].refused_reason);
		}
	}
	rt_agent_info_free(list, n);
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "digest"), 2);
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "signature"), 3);
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "compat"), 1);
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "load"), 1);
	/* One JSON line per refusal, with its reason. */
	rewind(log);
	while (fgets(line, sizeof(line), log)) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		if (strcmp(json_string_value(json_object_get(j, "event")), "refused") == 0) {
			refused_lines++;
			assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
			assert_non_null(json_string_value(json_object_get(j, "reason")));
			assert_non_null(json_string_value(json_object_get(j, "msg")));
		}
		json_decref(j);
	}
	assert_int_equal(refused_lines, 7);
	rt_engine_close(e);
	fclose(log);
}

static void test_loader__refused_agents_do_not_stop_the_others(void **state)
{
	FILE *log = tmpfile();
	rt_invoke_result res;
	char *d = NULL;
	size_t dlen = 0;
	int i;
	rt_engine *e;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0, log);
	invoke(e, "alpha", "{\"cmd\":\"state\"}", NULL, 200);
	for (i = 0; i < N_AGENTS; i++) {
		if (!want_reason[i][0])
			continue;
		assert_int_equal(rt_engine_invoke(e, names[i], NULL, "{}", 2, &res), 0);
		assert_string_equal(res.error_code, "agent_refused");
		assert_int_equal(res.http_status, 503);
		assert_non_null(strstr(res.error_message, want_reason[i]));
		rt_invoke_result_clear(&res);
		assert_true(rt_engine_describe(e, names[i], NULL, &d, &dlen) < 0);
		assert_null(d);
	}
	invoke(e, "india", "{\"cmd\":\"state\"}", NULL, 200);
	assert_int_equal(rt_engine_describe(e, "alpha", "1.0.0", &d, &dlen), 0);
	assert_non_null(strstr(d, "\"name\":\"alpha\""));
	free(d);
	rt_engine_close(e);
	fclose(log);
}

static void test_loader__runaway_and_memory_bomb_get_clean_errors(void **state)
{
	FILE *log = tmpfile();
	rt_engine *e;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0, log);
	invoke(e, "alpha", "{\"cmd\":\"loop\"}", "timeout", 504);
	invoke(e, "alpha", "{\"cmd\":\"state\"}", NULL, 200);
	invoke(e, "alpha", "{\"cmd\":\"bomb\"}", "memory_limit", 422);
	invoke(e, "india", "{\"cmd\":\"state\"}", NULL, 200);
	invoke(e, "alpha", "{\"cmd\":\"trap\"}", "trap", 500);
	invoke(e, "alpha", "{\"cmd\":\"recurse\"}", "trap", 500);
	invoke(e, "alpha", "{\"cmd\":\"state\"}", NULL, 200);
	rt_engine_close(e);
	fclose(log);
}

static void test_loader__request_errors_have_stable_codes(void **state)
{
	FILE *log = tmpfile();
	rt_invoke_result res;
	char big[5000];
	rt_engine *e;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0, log);
	invoke(e, "alpha", "{\"cmd\":", "invalid_json", 400);
	invoke(e, "alpha", "{\"a\":1,\"a\":2}", "invalid_json", 400);
	invoke(e, "nobody", "{}", "not_found", 404);
	assert_int_equal(rt_engine_invoke(e, "alpha", "9.9.9", "{}", 2, &res), 0);
	assert_string_equal(res.error_code, "not_found");
	rt_invoke_result_clear(&res);
	assert_int_equal(rt_engine_invoke(e, "alpha", "1.0.0", "{\"cmd\":\"state\"}", strlen("{\"cmd\":\"state\"}"), &res), 0);
	assert_null(res.error_code);
	rt_invoke_result_clear(&res);
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	invoke(e, "alpha", big, "payload_too_large", 413);
	assert_true(rt_metrics_get_label(RT_M_ERRORS, "payload_too_large") >= 1);
	rt_engine_close(e);
	fclose(log);
}

typedef struct slow_call {
	rt_engine *e;
	char code[32];
} slow_call;

static void *run_slow(void *arg)
{
	slow_call *c = arg;
	rt_invoke_result res;

	if (rt_engine_invoke(c->e, "alpha", NULL, "{\"cmd\":\"loop\"}", strlen("{\"cmd\":\"loop\"}"), &res) == 0 && res.error_code)
		snprintf(c->code, sizeof(c->code), "%s", res.error_code);
	rt_invoke_result_clear(&res);
	return NULL;
}

static void test_loader__lru_evicts_and_reloads_running_modules_safely(void **state)
{
	FILE *log = tmpfile();
	uint64_t misses;
	slow_call slow;
	pthread_t t;
	int i;
	rt_engine *e;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(1, log);
	misses = rt_metrics_get(RT_M_MODULE_CACHE_MISSES);
	for (i = 0; i < 4; i++) {
		invoke(e, "alpha", "{\"cmd\":\"state\"}", NULL, 200);
		invoke(e, "india", "{\"cmd\":\"state\"}", NULL, 200);
	}
	assert_true(rt_metrics_get(RT_M_MODULE_CACHE_MISSES) >= misses + 7);
	/* alpha runs (400 ms) while india evicts it: its code stays mapped. */
	memset(&slow, 0, sizeof(slow));
	slow.e = e;
	invoke(e, "alpha", "{\"cmd\":\"state\"}", NULL, 200);
	assert_int_equal(pthread_create(&t, NULL, run_slow, &slow), 0);
	for (i = 0; i < 20; i++)
		invoke(e, i % 2 ? "india" : "alpha", "{\"cmd\":\"state\"}", NULL, 200);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(slow.code, "timeout");
	rt_engine_close(e);
	fclose(log);
}

static void test_loader__compat_ids(void **state)
{
	char why[256], id[1024];
	const char *build = gen_toolchain_compat_id(g.tc);

	(void)state;
	/* What the build records is what this runtime accepts. */
	if (rt_compat_check(build, why, sizeof(why)) != 0)
		fail_msg("%s: %s", build, why);
	snprintf(id, sizeof(id), "af-native/1 target=%s; wasm-rt=wabt-1.0.33; guest-abi=1; native-abi=1; memcheck=guard; cc=x",
		 rt_compat_target());
	assert_int_equal(rt_compat_check(id, why, sizeof(why)), AF_EVERSION);
	assert_non_null(strstr(why, "wasm-rt is wabt-1.0.33"));
	snprintf(id, sizeof(id), "af-native/1 target=%s; wasm-rt=wabt-1.0.32; guest-abi=1; native-abi=1; memcheck=bounds; cc=x",
		 rt_compat_target());
	assert_int_equal(rt_compat_check(id, why, sizeof(why)), AF_EVERSION);
	assert_non_null(strstr(why, "memcheck"));
	snprintf(id, sizeof(id), "af-native/1 target=%s; wasm-rt=wabt-1.0.32; guest-abi=1; native-abi=1; memcheck=guard; simd=yes; cc=x",
		 rt_compat_target());
	assert_int_equal(rt_compat_check(id, why, sizeof(why)), AF_EVERSION);
	assert_non_null(strstr(why, "unknown field 'simd'"));
	snprintf(id, sizeof(id), "af-native/1 target=%s; wasm-rt=wabt-1.0.32; guest-abi=1; native-abi=1; cc=x",
		 rt_compat_target());
	assert_int_equal(rt_compat_check(id, why, sizeof(why)), AF_EVERSION);
	assert_non_null(strstr(why, "missing field 'memcheck'"));
	assert_int_equal(rt_compat_check("af-native/2 target=x", why, sizeof(why)), AF_EVERSION);
	assert_int_equal(rt_compat_check("", why, sizeof(why)), AF_EVERSION);
	assert_int_equal(rt_compat_check(NULL, NULL, 0), AF_EVERSION);
	assert_non_null(strstr(rt_compat_expected(), rt_compat_target()));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loader__every_attack_is_refused_with_its_reason),
		cmocka_unit_test(test_loader__refused_agents_do_not_stop_the_others),
		cmocka_unit_test(test_loader__runaway_and_memory_bomb_get_clean_errors),
		cmocka_unit_test(test_loader__request_errors_have_stable_codes),
		cmocka_unit_test(test_loader__lru_evicts_and_reloads_running_modules_safely),
		cmocka_unit_test(test_loader__compat_ids),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
