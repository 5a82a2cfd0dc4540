/*
 * test_llm.c - the model providers on a real generated agent, end to end:
 * tests/fixtures/llm/helper.json (an LLM agent with clock_now and kv_get,
 * an object outputs schema, max_steps 4) is built by the code generator,
 * stored as a signed artifact and served by rt_engine; its llm_chat goes
 * to the "openai" provider, which talks to a chat-completions fixture
 * server on loopback (llm_fixture.h) scripted per test.
 *
 * Covered: multi-step tool use and what the guest sends (system prompt,
 * tools, tool results fed back, Authorization); malformed model output;
 * a tool the agent lacks (refused, reported back to the model); timeouts,
 * retries on 503 and 429 with Retry-After; the response size cap; the
 * invocation deadline bounding a call; the step cap; an answer outside the
 * output schema (asked again, then invalid_output); the key never logged
 * and reloaded when its file changes; configuration (flags, environment,
 * base URLs); the scripted provider replaying a recorded session byte for
 * byte; 8 threads at once. Waits between retries go through the provider's
 * sleep hook (recorded, not slept), so no test depends on timing.
 *
 * With AF_LLM_BENCH=1, test_llm__overhead_figures prints the time the
 * runtime adds per model round trip and per tool call (a report, never an
 * assertion).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"
#include "llm_fixture.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/store.h"
#include "gen/toolchain.h"
#include "rt/engine.h"
#include "rt/kv.h"
#include "rt/llm.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"
#include "keyring_fixture.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "sk-test-5f2b8c41d0e9a7361b2c"
#define KEY2 "sk-test-rotated-0000000000000"

static struct {
	char root[64], store[128], keyring[128], data[128], keyfile[128];
	char *json;
	size_t json_len;
} g;

/* ---- the agent in a store ------------------------------------------------------- */

static int store_agent(art_store_txn *t, const gen_toolchain *tc, const art_key *key)
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

	snprintf(path, sizeof(path), "%s/tests/fixtures/llm/helper.json", src ? src : ".");
	snprintf(dir, sizeof(dir), "%s/build-helper", g.root);
	if (art_file_read(&g.json, &g.json_len, path, 1 << 20) != 0 ||
	    gen_build_agent(&r, tc, g.json, g.json_len, dir, NULL) != 0) {
		fprintf(stderr, "build helper: %s\n", art_error_last());
		goto cleanup;
	}
	root = json_loadb(g.json, g.json_len, 0, NULL);
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
	art_manifest_digest(resolved, g.json, g.json_len);
	info.name = "helper";
	info.version = "1.0.0";
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
		fprintf(stderr, "put helper: %s\n", art_error_last());
cleanup:
	json_decref(root);
	gen_result_free(r);
	return rc;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
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
	int rc = -1;

	(void)state;
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-llm-XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	snprintf(g.store, sizeof(g.store), "%s/store", g.root);
	snprintf(g.keyring, sizeof(g.keyring), "%s/keyring.json", g.root);
	snprintf(g.data, sizeof(g.data), "%s/data", g.root);
	snprintf(g.keyfile, sizeof(g.keyfile), "%s/api-key", g.root);
	if (gen_toolchain_discover(&tc) || art_key_generate(&builder, 2048) || art_keyring_new(&kr) ||
	    art_keyring_add(kr, builder, ART_ROLE_BUILDER, time(NULL) - 3600, 0) ||
	    keyring_fixture_save(kr, g.keyring) || art_store_open(&s, g.store, ART_STORE_CREATE) ||
	    art_store_txn_begin(&t, s) || store_agent(t, tc, builder) != 0)
		goto cleanup;
	rc = art_store_txn_commit(t);
	t = NULL;
	if (rc != 0)
		goto cleanup;
	rc = -1;
	if (rt_kv_open(&kv, g.data) != 0 ||
	    rt_kv_put(kv, "helper", "notes/r1", 8, "\"r1 ships on Friday\"", 20) != 0)
		goto cleanup;
	/* A key file as a secret manager writes it: one line, a newline at the end. */
	fp = fopen(g.keyfile, "w");
	if (!fp)
		goto cleanup;
	fputs(KEY "\n", fp);
	fclose(fp);
	rc = 0;
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
	free(g.json);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

/* The waits the provider asked for (its sleep hook), instead of sleeping. */
static struct {
	pthread_mutex_t mu;
	uint32_t ms[64];
	size_t n;
} waits = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static void record_wait(void *arg, uint32_t ms)
{
	(void)arg;
	pthread_mutex_lock(&waits.mu);
	if (waits.n < 64)
		waits.ms[waits.n++] = ms;
	pthread_mutex_unlock(&waits.mu);
}

/* One test's world: a fixture, a provider on it, an engine, a log. */
typedef struct world {
	llmfx *fx;
	rt_llm_provider *llm;
	rt_engine *e;
	FILE *log;
	char url[64];
} world;

static void config_for(rt_llm_config *c, world *w, uint32_t timeout_ms, uint32_t retries)
{
	rt_llm_config_init(c);
	c->base_url = llmfx_url(w->fx, w->url, sizeof(w->url), NULL);
	c->api_key_file = g.keyfile;
	c->timeout_ms = timeout_ms;
	c->retries = retries;
	c->backoff_ms = 100;
	c->sleep_ms = record_wait;
	c->log = w->log;
}

static void world_engine(world *w, uint32_t max_timeout_ms)
{
	rt_engine_opts o;

	memset(&o, 0, sizeof(o));
	o.store_dir = g.store;
	o.keyring_path = g.keyring;
	o.data_dir = g.data;
	o.llm = w->llm;
	o.log = w->log;
	o.max_timeout_ms = max_timeout_ms;
	if (rt_engine_open(&w->e, &o) != 0)
		fail_msg("rt_engine_open: %s", art_error_last());
}

/* Start a fixture answering replies, an openai provider on it, an engine. */
static void world_start(world *w, const llmfx_reply *replies, size_t n, uint32_t timeout_ms,
			uint32_t retries)
{
	rt_llm_config c;

	memset(w, 0, sizeof(*w));
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	pthread_mutex_lock(&waits.mu);
	waits.n = 0;
	pthread_mutex_unlock(&waits.mu);
	w->log = tmpfile();
	assert_non_null(w->log);
	assert_int_equal(llmfx_start(&w->fx, replies, n), 0);
	config_for(&c, w, timeout_ms, retries);
	if (rt_llm_openai_open(&w->llm, &c) != 0)
		fail_msg("rt_llm_openai_open: %s", art_error_last());
	world_engine(w, 0);
}

static void world_stop(world *w)
{
	rt_engine_close(w->e);
	rt_llm_provider_free(w->llm);
	llmfx_stop(w->fx);
	if (w->log)
		fclose(w->log);
}

/* The whole log so far (caller frees). */
static char *log_text(FILE *log)
{
	long n;
	char *s;

	fflush(log);
	n = ftell(log);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(log);
	assert_int_equal(fread(s, 1, (size_t)n, log), (size_t)n);
	fseek(log, 0, SEEK_END);
	return s;
}

static void invoke(world *w, const char *input, rt_invoke_result *res)
{
	assert_int_equal(rt_engine_invoke(w->e, "helper", NULL, input, strlen(input), res), 0);
}

static void expect_ok(const rt_invoke_result *res, const char *body)
{
	if (res->error_code || strcmp(res->body, body) != 0)
		fail_msg("wanted %s, got %s", body, res->body);
}

static void expect_error(const rt_invoke_result *res, const char *code, int status, const char *needle)
{
	if (!res->error_code || strcmp(res->error_code, code) != 0 || res->http_status != status ||
	    !strstr(res->error_message, needle))
		fail_msg("wanted %s (%d) with '%s', got %d %s", code, status, needle, res->http_status,
			 res->body);
}

/* Strings built for a test, freed by strings_free. */
static struct {
	char *s[64];
	size_t n;
} kept;

static const char *keep(char *s)
{
	assert_non_null(s);
	assert_true(kept.n < 64);
	kept.s[kept.n++] = s;
	return s;
}

static void strings_free(void)
{
	while (kept.n)
		free(kept.s[--kept.n]);
}

static const char *dump_keep(json_t *j)
{
	char *s;

	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return keep(s);
}

/* A completion asking for tool calls: names[i] with args[i] (JSON text). */
static const char *completion_calls(size_t n, const char *const *names, const char *const *args)
{
	json_t *calls = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		char id[32];

		snprintf(id, sizeof(id), "call_%zu", i + 1);
		json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type",
							"function", "function", "name", names[i],
							"arguments", args[i]));
	}
	/* with the response-only fields a real server adds (refusal, annotations) */
	return dump_keep(json_pack("{s:s, s:s, s:[{s:i, s:{s:s, s:n, s:o, s:n, s:[]}, s:s}], s:{s:i, s:i}}",
				   "id", "chatcmpl-1", "object", "chat.completion", "choices", "index",
				   0, "message", "role", "assistant", "content", "tool_calls", calls,
				   "refusal", "annotations",
				   "finish_reason", "tool_calls", "usage", "prompt_tokens", 10,
				   "completion_tokens", 5));
}

static const char *completion_call(const char *name, const char *args)
{
	return completion_calls(1, &name, &args);
}

/* A completion with a final text answer. */
static const char *completion_text(const char *content)
{
	return dump_keep(json_pack("{s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i}}", "object",
				   "chat.completion", "choices", "index", 0, "message", "role",
				   "assistant", "content", content, "finish_reason", "stop", "usage",
				   "total_tokens", 15));
}

/* Request i as the fixture got it, parsed. */
static json_t *request_json(world *w, size_t i)
{
	const llmfx_request *r = llmfx_request_at(w->fx, i);
	json_error_t err;
	json_t *j;

	assert_non_null(r);
	j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		fail_msg("request %zu is not JSON (%s): %s", i, err.text, r->body);
	return j;
}

static json_t *message_at(json_t *req, size_t i)
{
	json_t *m = json_array_get(json_object_get(req, "messages"), i);

	assert_non_null(m);
	return m;
}

static const char *role_of(json_t *m)
{
	return json_string_value(json_object_get(m, "role"));
}

/* A tool message's content (an envelope), parsed. */
static json_t *tool_envelope(json_t *m)
{
	json_t *env;

	assert_string_equal(role_of(m), "tool");
	env = json_loads(json_string_value(json_object_get(m, "content")), JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(env);
	return env;
}

static const char expected_system[] =
	"You are helper, the release helper.\n"
	"Answer the question about r1.\n"
	"\n"
	"Your goal: Answer questions about releases with facts from the tools.\n"
	"\n"
	"Give your final answer as one JSON object and nothing else (no text around it, no code "
	"fence). It must match this JSON Schema:\n"
	"{\"additionalProperties\":false,\"properties\":{\"summary\":{\"type\":\"string\"},"
	"\"when\":{\"type\":\"string\"}},\"required\":[\"summary\"],\"type\":\"object\"}";

static const char input_r1[] = "{\"inputs\":{\"topic\":\"r1\"}}";

/* ---- tests ------------------------------------------------------------------------------ */

static void test_llm__multi_step_tool_use(void **state)
{
	llmfx_reply replies[3];
	rt_invoke_result res;
	json_t *req, *m, *env, *tools;
	const llmfx_request *r;
	world w;
	char *log;

	(void)state;
	memset(replies, 0, sizeof(replies));
	replies[0].body = completion_call("clock_now", "{}");
	replies[1].body = completion_call("kv_get", "{\"key\":\"notes/r1\"}");
	replies[2].body = completion_text("{\"summary\":\"r1 ships on Friday\",\"when\":\"Friday\"}");
	world_start(&w, replies, 3, 5000, 0);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"r1 ships on Friday\",\"when\":\"Friday\"}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 3);

	/* The HTTP request: POST /v1/chat/completions, JSON, the key, no Expect. */
	r = llmfx_request_at(w.fx, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, "/v1/chat/completions");
	assert_string_equal(r->content_type, "application/json");
	assert_string_equal(r->auth, "Bearer " KEY);
	assert_null(r->expect);

	/* First turn: the template's model, the rendered system prompt, the inputs, the tools. */
	req = request_json(&w, 0);
	assert_string_equal(json_string_value(json_object_get(req, "model")), "fixture-model");
	/* as reasoning models take it: max_completion_tokens, stream false explicit,
	 * (the sampling parameters the template set are kept) */
	assert_int_equal(json_integer_value(json_object_get(req, "max_completion_tokens")), 256);
	assert_null(json_object_get(req, "max_tokens"));
	assert_true(json_is_false(json_object_get(req, "stream")));
	assert_int_equal(json_array_size(json_object_get(req, "messages")), 2);
	m = message_at(req, 0);
	assert_string_equal(role_of(m), "system");
	assert_string_equal(json_string_value(json_object_get(m, "content")), expected_system);
	m = message_at(req, 1);
	assert_string_equal(role_of(m), "user");
	assert_string_equal(json_string_value(json_object_get(m, "content")), "{\"topic\":\"r1\"}");
	tools = json_object_get(req, "tools");
	assert_int_equal(json_array_size(tools), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(tools, 0), "function"), "name")),
			    "clock_now");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(tools, 1), "function"), "name")),
			    "kv_get");
	json_decref(req);

	/* Second turn: the model's tool call and clock_now's answer fed back. */
	req = request_json(&w, 1);
	assert_int_equal(json_array_size(json_object_get(req, "messages")), 4);
	m = message_at(req, 2);
	assert_string_equal(role_of(m), "assistant");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id")),
			    "call_1");
	/* only what a request may carry goes back: no response-only fields */
	{
		const char *key;
		json_t *v;

		json_object_foreach(m, key, v)
			assert_true(strcmp(key, "role") == 0 || strcmp(key, "content") == 0 ||
				    strcmp(key, "tool_calls") == 0 || strcmp(key, "name") == 0);
	}
	m = message_at(req, 3);
	assert_string_equal(json_string_value(json_object_get(m, "tool_call_id")), "call_1");
	env = tool_envelope(m);
	assert_true(json_is_true(json_object_get(env, "ok")));
	assert_int_equal(json_string_length(json_object_get(env, "result")), 24); /* 2026-11-21T10:00:00.000Z */
	json_decref(env);
	json_decref(req);

	/* Third turn: kv_get's answer, the note itself. */
	req = request_json(&w, 2);
	assert_int_equal(json_array_size(json_object_get(req, "messages")), 6);
	env = tool_envelope(message_at(req, 5));
	assert_string_equal(json_string_value(json_object_get(env, "result")), "r1 ships on Friday");
	json_decref(env);
	json_decref(req);

	/* Logged by provider name; the key never. */
	log = log_text(w.log);
	assert_non_null(strstr(log, "\"provider\":\"openai\""));
	assert_null(strstr(log, KEY));
	free(log);
	world_stop(&w);
	strings_free();
}

static void test_llm__malformed_model_output_is_llm_error(void **state)
{
	static const char *const bodies[] = {
		"{not json",
		"",
		"[1,2]",
		"{\"id\":\"x\",\"object\":\"chat.completion\"}",
		"{\"choices\":[]}",
		"{\"choices\":[{\"message\":\"hi\"}]}",
		/* JSON, but not what an agent can use: no content, a call without an id. */
		"{\"choices\":[{\"message\":{\"role\":\"assistant\"}}]}",
		"{\"choices\":[{\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"clock_now\"}}]}}]}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		llmfx_reply reply = {0, bodies[i], NULL, 0, 0};
		rt_invoke_result res;
		world w;

		world_start(&w, &reply, 1, 5000, 3);
		invoke(&w, input_r1, &res);
		expect_error(&res, "llm_error", 502, "");
		rt_invoke_result_clear(&res);
		/* A malformed answer is not retried. */
		assert_int_equal(llmfx_count(w.fx), 1);
		assert_int_equal(waits.n, 0);
		world_stop(&w);
	}
}

static void test_llm__unknown_tool_is_refused_and_reported_back(void **state)
{
	llmfx_reply replies[2];
	rt_invoke_result res;
	json_t *req, *env;
	uint64_t denied;
	world w;

	(void)state;
	memset(replies, 0, sizeof(replies));
	replies[0].body = completion_call("shell_exec", "{\"cmd\":\"cat /etc/passwd\"}");
	replies[1].body = completion_text("{\"summary\":\"cannot run commands\"}");
	denied = rt_metrics_get_label(RT_M_DENIALS, "tool:unknown");
	world_start(&w, replies, 2, 5000, 0);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"cannot run commands\"}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 2);
	/* The next request carries the refusal as the tool's answer. */
	req = request_json(&w, 1);
	env = tool_envelope(message_at(req, 3));
	assert_true(json_is_false(json_object_get(env, "ok")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(env, "error"), "code")),
			    "tool_denied");
	assert_string_equal(json_string_value(json_object_get(json_object_get(env, "error"), "message")),
			    "tool 'shell_exec' is not one of your tools; your tools are: clock_now, kv_get");
	json_decref(env);
	json_decref(req);
	/* Refused in the guest: the call never reached the host. */
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "tool:unknown"), denied);
	world_stop(&w);
	strings_free();
}

static void test_llm__timeouts_end_in_llm_error_after_retries(void **state)
{
	llmfx_reply slow = {0, "{}", NULL, 3000, 0};
	rt_invoke_result res;
	world w;
	char *log;

	(void)state;
	world_start(&w, &slow, 1, 200, 2);
	invoke(&w, input_r1, &res);
	expect_error(&res, "llm_error", 502, "language model call failed");
	rt_invoke_result_clear(&res);
	/* Three attempts, two backoffs: 100 ms then 200 ms, each with jitter down to half. */
	assert_int_equal(llmfx_count(w.fx), 3);
	assert_int_equal(waits.n, 2);
	assert_in_range(waits.ms[0], 50, 100);
	assert_in_range(waits.ms[1], 100, 200);
	log = log_text(w.log);
	assert_non_null(strstr(log, "no complete answer within the timeout (200 ms)"));
	assert_non_null(strstr(log, "gave up after 3 attempts"));
	assert_non_null(strstr(log, "\"attempt\":\"1\""));
	free(log);
	world_stop(&w);
}

static void test_llm__retries_503_then_success(void **state)
{
	llmfx_reply replies[4];
	rt_invoke_result res;
	world w;

	(void)state;
	memset(replies, 0, sizeof(replies));
	replies[0].status = 503;
	replies[0].body = "{\"error\":{\"message\":\"overloaded\"}}";
	replies[1].status = 500;
	replies[1].body = "oops";
	replies[2].body = completion_text("{\"summary\":\"third time\"}");
	world_start(&w, replies, 3, 5000, 3);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"third time\"}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 3);
	assert_int_equal(waits.n, 2);
	/* The same request each time. */
	assert_string_equal(llmfx_request_at(w.fx, 0)->body, llmfx_request_at(w.fx, 2)->body);
	world_stop(&w);

	/* Out of retries: the last status and the endpoint's message are reported. */
	replies[0].status = 502;
	world_start(&w, replies, 1, 5000, 1);
	invoke(&w, input_r1, &res);
	expect_error(&res, "llm_error", 502, "");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 2);
	{
		char *log = log_text(w.log);

		assert_non_null(strstr(log, "answered HTTP 502: overloaded (gave up after 2 attempts"));
		free(log);
	}
	world_stop(&w);
	strings_free();
}

static void test_llm__429_retry_after_is_honoured(void **state)
{
	llmfx_reply replies[2];
	rt_invoke_result res;
	world w;

	(void)state;
	memset(replies, 0, sizeof(replies));
	replies[0].status = 429;
	replies[0].retry_after = "2";
	replies[0].body = "{\"error\":{\"message\":\"rate limited\",\"type\":\"requests\"}}";
	replies[1].body = completion_text("{\"summary\":\"after the wait\"}");
	world_start(&w, replies, 2, 5000, 3);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"after the wait\"}}");
	rt_invoke_result_clear(&res);
	/* Exactly what the endpoint asked for, no jitter. */
	assert_int_equal(waits.n, 1);
	assert_int_equal(waits.ms[0], 2000);
	world_stop(&w);

	/* Asked to come back in two minutes: not worth holding the request. */
	replies[0].retry_after = "120";
	world_start(&w, replies, 2, 5000, 3);
	invoke(&w, input_r1, &res);
	expect_error(&res, "llm_error", 502, "");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 1);
	assert_int_equal(waits.n, 0);
	{
		char *log = log_text(w.log);

		assert_non_null(strstr(log, "asks to retry after 120000 ms"));
		free(log);
	}
	world_stop(&w);
	strings_free();
}

static void test_llm__client_errors_are_not_retried_and_the_key_is_never_logged(void **state)
{
	llmfx_reply reply = {401, "{\"error\":{\"message\":\"Incorrect API key provided: " KEY "\"}}",
			     NULL, 0, 0};
	rt_invoke_result res;
	world w;
	char *log;

	(void)state;
	world_start(&w, &reply, 1, 5000, 3);
	invoke(&w, input_r1, &res);
	expect_error(&res, "llm_error", 502, "");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 1);
	log = log_text(w.log);
	assert_non_null(strstr(log, "HTTP 401 (the API key was refused): Incorrect API key provided: ***"));
	assert_null(strstr(log, KEY));
	free(log);
	world_stop(&w);

	reply.status = 404;
	reply.body = "{\"error\":{\"message\":\"model 'fixture-model' not found\"}}";
	world_start(&w, &reply, 1, 5000, 3);
	invoke(&w, input_r1, &res);
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 1);
	log = log_text(w.log);
	assert_non_null(strstr(log, "HTTP 404 (check the base URL and the model name)"));
	free(log);
	world_stop(&w);
}

static void test_llm__oversized_answers_are_cut(void **state)
{
	llmfx_reply big = {0, NULL, NULL, 0, (size_t)5 << 20};
	rt_invoke_result res;
	world w;
	char *log;

	(void)state;
	world_start(&w, &big, 1, 5000, 3);
	invoke(&w, input_r1, &res);
	expect_error(&res, "llm_error", 502, "");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 1);
	log = log_text(w.log);
	assert_non_null(strstr(log, "answered more than 4194304 bytes: the transfer was cut"));
	free(log);
	world_stop(&w);
}

static void test_llm__the_invocation_deadline_bounds_the_call(void **state)
{
	llmfx_reply slow = {0, "{}", NULL, 10000, 0};
	rt_invoke_result res;
	rt_llm_config c;
	world w;

	(void)state;
	/* A provider willing to wait a minute and retry, an engine that allows 300 ms. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	w.log = tmpfile();
	assert_int_equal(llmfx_start(&w.fx, &slow, 1), 0);
	config_for(&c, &w, 60000, 3);
	assert_int_equal(rt_llm_openai_open(&w.llm, &c), 0);
	world_engine(&w, 300);
	invoke(&w, input_r1, &res);
	expect_error(&res, "timeout", 504, "deadline");
	rt_invoke_result_clear(&res);
	/* One attempt, cut at the deadline; no retry past it. */
	assert_int_equal(llmfx_count(w.fx), 1);
	world_stop(&w);
}

static void test_llm__step_cap_is_reached(void **state)
{
	llmfx_reply reply = {0, NULL, NULL, 0, 0};
	rt_invoke_result res;
	world w;

	(void)state;
	reply.body = completion_call("clock_now", "{}");
	world_start(&w, &reply, 1, 5000, 0);
	invoke(&w, input_r1, &res);
	expect_error(&res, "step_limit", 422, "no final answer after 4 model turns");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 4);
	world_stop(&w);
	strings_free();
}

static void test_llm__answers_outside_the_output_schema(void **state)
{
	llmfx_reply replies[3];
	rt_invoke_result res;
	json_t *req, *m;
	world w;

	(void)state;
	/* Prose, then a missing field, then the object in a Markdown fence: accepted. */
	memset(replies, 0, sizeof(replies));
	replies[0].body = completion_text("Sure! r1 ships on Friday.");
	replies[1].body = completion_text("{\"when\":\"Friday\"}");
	replies[2].body = completion_text("```json\n{\"summary\":\"Friday\"}\n```\n");
	world_start(&w, replies, 3, 5000, 0);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"Friday\"}}");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 3);
	/* Each rejected answer goes back with the reason. */
	req = request_json(&w, 1);
	m = message_at(req, 2);
	assert_string_equal(role_of(m), "assistant");
	assert_string_equal(json_string_value(json_object_get(m, "content")), "Sure! r1 ships on Friday.");
	m = message_at(req, 3);
	assert_string_equal(role_of(m), "user");
	assert_string_equal(json_string_value(json_object_get(m, "content")),
			    "Your answer was not accepted: output: expected one JSON object, got text "
			    "that is not JSON. Answer again with only one JSON object that matches the "
			    "output schema.");
	json_decref(req);
	req = request_json(&w, 2);
	assert_non_null(strstr(json_string_value(json_object_get(message_at(req, 5), "content")),
			       "output: missing required property 'summary'"));
	json_decref(req);
	world_stop(&w);

	/* Never valid: invalid_output once max_steps (4) turns are spent. */
	replies[0].body = completion_text("{\"summary\":\"x\",\"extra\":1}");
	world_start(&w, replies, 1, 5000, 0);
	invoke(&w, input_r1, &res);
	expect_error(&res, "invalid_output", 502,
		     "no valid final answer after 4 model turns (limits.max_steps); the last one was "
		     "rejected: output: unexpected property 'extra'");
	rt_invoke_result_clear(&res);
	assert_int_equal(llmfx_count(w.fx), 4);
	world_stop(&w);
	strings_free();
}

static void test_llm__key_file_rotation_is_picked_up(void **state)
{
	llmfx_reply reply = {0, NULL, NULL, 0, 0};
	rt_invoke_result res;
	char rotated[160];
	world w;

	(void)state;
	reply.body = completion_text("{\"summary\":\"ok\"}");
	world_start(&w, &reply, 1, 5000, 0);
	invoke(&w, input_r1, &res);
	rt_invoke_result_clear(&res);
	/* A new file renamed over the old one, as Vault Agent or a kubelet does. */
	snprintf(rotated, sizeof(rotated), "%s.new", g.keyfile);
	write_file(rotated, "  " KEY2 "\r\n");
	assert_int_equal(rename(rotated, g.keyfile), 0);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"ok\"}}");
	rt_invoke_result_clear(&res);
	assert_string_equal(llmfx_request_at(w.fx, 0)->auth, "Bearer " KEY);
	assert_string_equal(llmfx_request_at(w.fx, 1)->auth, "Bearer " KEY2);
	/* A broken file keeps the last good key. */
	write_file(g.keyfile, "two words\n");
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"ok\"}}");
	rt_invoke_result_clear(&res);
	assert_string_equal(llmfx_request_at(w.fx, 2)->auth, "Bearer " KEY2);
	write_file(g.keyfile, KEY "\n");
	world_stop(&w);
	strings_free();
}

static void test_llm__configuration(void **state)
{
	rt_llm_config c;
	rt_llm_provider *p = NULL;
	char path[160];

	(void)state;
	/* Flags. */
	rt_llm_config_init(&c);
	assert_int_equal(c.retries, RT_LLM_DEFAULT_RETRIES);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_PROVIDER, "anthropic"), AF_EINVAL);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_TIMEOUT_MS, "0"), AF_EINVAL);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_TIMEOUT_MS, "12x"), AF_EINVAL);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_RETRIES, "11"), AF_EINVAL);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_BASE_URL, ""), AF_EINVAL);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_COUNT, "x"), AF_EINVAL);
	assert_int_equal(rt_llm_config_option(&c, RT_LLM_OPT_RETRIES, "0"), 0);
	assert_int_equal(c.retries, 0);
	/* The environment fills what no flag set. */
	setenv("AF_LLM_RETRIES", "7", 1);
	setenv("AF_LLM_TIMEOUT_MS", "1234", 1);
	setenv("AF_LLM_MODEL", "env-model", 1);
	assert_int_equal(rt_llm_config_env(&c), 0);
	assert_int_equal(c.retries, 0);
	assert_int_equal(c.timeout_ms, 1234);
	assert_string_equal(c.model, "env-model");
	setenv("AF_LLM_TIMEOUT_MS", "soon", 1);
	rt_llm_config_init(&c);
	assert_int_equal(rt_llm_config_env(&c), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "AF_LLM_TIMEOUT_MS"));
	unsetenv("AF_LLM_RETRIES");
	unsetenv("AF_LLM_TIMEOUT_MS");
	unsetenv("AF_LLM_MODEL");

	/* Which provider. */
	rt_llm_config_init(&c);
	assert_int_equal(rt_llm_open(&p, &c), 0);
	assert_null(p); /* none */
	c.base_url = "http://127.0.0.1:9/v1";
	c.script = "/no/such/script.json";
	assert_int_equal(rt_llm_open(&p, &c), AF_EINVAL);
	c.provider = "scripted";
	assert_int_equal(rt_llm_open(&p, &c), AF_EINVAL); /* a base URL for scripted */
	c.base_url = NULL;
	assert_int_equal(rt_llm_open(&p, &c), AF_ENOTFOUND);
	c.provider = "openai";
	c.base_url = "http://127.0.0.1:9";
	assert_int_equal(rt_llm_open(&p, &c), AF_EINVAL); /* a script for openai */
	c.script = NULL;
	c.provider = NULL;
	assert_int_equal(rt_llm_open(&p, &c), 0); /* openai, from the base URL */
	assert_string_equal(p->name, "openai");
	assert_non_null(strstr(p->description, "POST http://127.0.0.1:9/v1/chat/completions"));
	assert_non_null(strstr(p->description, "model from each template"));
	rt_llm_provider_free(p);

	/* Base URLs: with or without /v1, a trailing slash, a full endpoint, a gateway path. */
	{
		static const char *const bases[][2] = {
			{"http://localhost:11434", "http://localhost:11434/v1/chat/completions"},
			{"http://localhost:11434/v1/", "http://localhost:11434/v1/chat/completions"},
			{"https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"},
			{"http://h:8000/v1/chat/completions", "http://h:8000/v1/chat/completions"},
			{"https://gw.example/openai/v1", "https://gw.example/openai/v1/chat/completions"},
		};
		static const char *const bad[] = {"ftp://h/v1", "h:8000", "http://", "http://h/v1?x=1",
						  "http://h /v1"};
		size_t i;

		for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
			rt_llm_config_init(&c);
			c.base_url = bases[i][0];
			assert_int_equal(rt_llm_openai_open(&p, &c), 0);
			assert_non_null(strstr(p->description, bases[i][1]));
			rt_llm_provider_free(p);
		}
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			rt_llm_config_init(&c);
			c.base_url = bad[i];
			assert_int_equal(rt_llm_openai_open(&p, &c), AF_EINVAL);
			assert_null(p);
		}
	}
	/* A base URL past the endpoint limit, and NULL arguments. */
	{
		char *longer = malloc(2100);

		assert_non_null(longer);
		memcpy(longer, "http://h/", 9);
		memset(longer + 9, 'a', 2100 - 10);
		longer[2099] = '\0';
		rt_llm_config_init(&c);
		c.base_url = longer;
		assert_int_equal(rt_llm_openai_open(&p, &c), AF_EINVAL);
		assert_non_null(strstr(art_error_last(), "base URL is longer than"));
		assert_null(p);
		free(longer);
		assert_int_equal(rt_llm_openai_open(NULL, &c), AF_EINVAL);
		assert_int_equal(rt_llm_openai_open(&p, NULL), AF_EINVAL);
	}
	/* A key sent in clear text to a remote host is warned about; loopback is not. */
	{
		static const char *const hosts[][2] = {{"http://10.1.2.3:8000/v1", "1"},
						       {"http://127.0.0.1:8000/v1", "0"},
						       {"http://[::1]:8000/v1", "0"},
						       {"http://LOCALHOST:8000", "0"},
						       {"http://127.evil.example/v1", "1"},
						       {"https://10.1.2.3/v1", "0"}};
		char line[1024];
		size_t i;

		setenv("AF_LLM_API_KEY", "sk-cleartext", 1);
		for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
			FILE *log = tmpfile();
			bool warned = false;

			assert_non_null(log);
			rt_llm_config_init(&c);
			c.base_url = hosts[i][0];
			c.log = log;
			assert_int_equal(rt_llm_openai_open(&p, &c), 0);
			rewind(log);
			while (fgets(line, sizeof(line), log)) {
				assert_null(strstr(line, "sk-cleartext"));
				warned = warned || strstr(line, "\"warn\"");
			}
			if (warned != (hosts[i][1][0] == '1'))
				fail_msg("%s: warned %d", hosts[i][0], warned);
			rt_llm_provider_free(p);
			fclose(log);
		}
		unsetenv("AF_LLM_API_KEY");
	}

	/* Keys: the file wins over the environment; bad keys are refused. */
	rt_llm_config_init(&c);
	c.base_url = "http://127.0.0.1:9";
	setenv("OPENAI_API_KEY", "sk-from-env", 1);
	assert_int_equal(rt_llm_openai_open(&p, &c), 0);
	assert_non_null(strstr(p->description, "API key from $OPENAI_API_KEY"));
	assert_null(strstr(p->description, "sk-from-env"));
	rt_llm_provider_free(p);
	setenv("AF_LLM_API_KEY", "sk-af", 1);
	assert_int_equal(rt_llm_openai_open(&p, &c), 0);
	assert_non_null(strstr(p->description, "API key from $AF_LLM_API_KEY"));
	rt_llm_provider_free(p);
	setenv("AF_LLM_API_KEY", "sk-bad\r\nX-Injected: 1", 1);
	assert_int_equal(rt_llm_openai_open(&p, &c), AF_EINVAL);
	unsetenv("AF_LLM_API_KEY");
	unsetenv("OPENAI_API_KEY");
	c.api_key_file = g.keyfile;
	assert_int_equal(rt_llm_openai_open(&p, &c), 0);
	assert_non_null(strstr(p->description, "API key from "));
	assert_null(strstr(p->description, KEY));
	rt_llm_provider_free(p);
	snprintf(path, sizeof(path), "%s/bad-key", g.root);
	write_file(path, "\n \n");
	c.api_key_file = path;
	assert_int_equal(rt_llm_openai_open(&p, &c), AF_EINVAL);
	write_file(path, "sk-a b\n");
	assert_int_equal(rt_llm_openai_open(&p, &c), AF_EINVAL);
	c.api_key_file = "/no/such/key";
	assert_int_equal(rt_llm_openai_open(&p, &c), AF_ENOTFOUND);
	assert_null(p);
}

static void test_llm__model_override(void **state)
{
	llmfx_reply reply = {0, NULL, NULL, 0, 0};
	rt_invoke_result res;
	rt_llm_config c;
	json_t *req;
	world w;

	(void)state;
	reply.body = completion_text("{\"summary\":\"ok\"}");
	memset(&w, 0, sizeof(w));
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	w.log = tmpfile();
	assert_int_equal(llmfx_start(&w.fx, &reply, 1), 0);
	config_for(&c, &w, 5000, 0);
	c.model = "llama3.1:8b";
	c.api_key_file = NULL;
	assert_int_equal(rt_llm_openai_open(&w.llm, &c), 0);
	world_engine(&w, 0);
	invoke(&w, input_r1, &res);
	expect_ok(&res, "{\"ok\":true,\"output\":{\"summary\":\"ok\"}}");
	rt_invoke_result_clear(&res);
	req = request_json(&w, 0);
	assert_string_equal(json_string_value(json_object_get(req, "model")), "llama3.1:8b");
	json_decref(req);
	/* No key anywhere: no Authorization header (local servers). */
	assert_null(llmfx_request_at(w.fx, 0)->auth);
	world_stop(&w);
	strings_free();
}

/* Read a whole file (caller frees). */
static char *slurp(const char *path, size_t *len)
{
	char *text = NULL;

	assert_int_equal(art_file_read(&text, len, path, 1 << 24), 0);
	return text;
}

static void test_llm__scripted_replays_a_recorded_session_byte_for_byte(void **state)
{
	llmfx_reply replies[3];
	rt_invoke_result res;
	rt_llm_provider *rec = NULL, *scripted = NULL, *rec2 = NULL;
	char first[160], second[160], *a, *b, *out1;
	size_t alen, blen;
	world w;

	(void)state;
	snprintf(first, sizeof(first), "%s/session.json", g.root);
	snprintf(second, sizeof(second), "%s/replay.json", g.root);
	memset(replies, 0, sizeof(replies));
	replies[0].body = completion_call("clock_now", "{}");
	replies[1].body = completion_call("kv_get", "{\"key\":\"notes/r1\"}");
	replies[2].body = completion_text("{\"summary\":\"r1 \\u00e9 \\\"ships\\\"\" , \"when\": \"Fri\"}");

	/* Record a session against the endpoint. */
	world_start(&w, replies, 3, 5000, 0);
	rt_engine_close(w.e);
	assert_int_equal(rt_llm_record_open(&rec, w.llm, first), 0);
	{
		rt_llm_provider *inner = w.llm;

		w.llm = rec;
		world_engine(&w, 0);
		invoke(&w, input_r1, &res);
		w.llm = inner;
	}
	if (res.error_code)
		fail_msg("%s", res.body);
	out1 = strdup(res.body);
	rt_invoke_result_clear(&res);
	rt_engine_close(w.e);
	w.e = NULL;
	rt_llm_provider_free(rec);
	rt_llm_provider_free(w.llm);
	w.llm = NULL;

	/* Replay it offline, recording again what the guest gets. */
	assert_int_equal(rt_llm_scripted_open(&scripted, first), 0);
	assert_string_equal(scripted->name, "scripted");
	assert_int_equal(rt_llm_record_open(&rec2, scripted, second), 0);
	w.llm = rec2;
	world_engine(&w, 0);
	invoke(&w, input_r1, &res);
	assert_string_equal(res.body, out1);
	rt_invoke_result_clear(&res);
	a = slurp(first, &alen);
	b = slurp(second, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	free(out1);
	rt_engine_close(w.e);
	w.e = NULL;
	rt_llm_provider_free(rec2);
	rt_llm_provider_free(scripted);
	w.llm = NULL;
	world_stop(&w);
	strings_free();
}

static void test_llm__scripted_keeps_the_bytes_of_the_file(void **state)
{
	/* Odd spacing, escapes jansson would rewrite, a key order it would keep, a number
	 * it would reformat: the guest must get exactly these bytes. */
	static const char script[] =
		"{ \"note\" : \"a session recorded by hand\",\n"
		"  \"responses\" : [\n"
		"    {\"role\":\"assistant\" ,\"content\":\"{\\\"summary\\\":\\\"caf\\u00e9 \\\\u00e9\\\"}\",\n"
		"     \"x\": 1.50e+2, \"y\" : [ ] } ,\n"
		"    { \"content\" : \"\\/slash\", \"role\" : \"assistant\" }\n"
		"  ]\n"
		"}\n";
	const char *r0 = strstr(script, "{\"role\"");
	const char *r1 = strstr(script, "{ \"content\"");
	size_t l0 = (size_t)(strstr(script, "] } ,") + 3 - r0);
	size_t l1 = (size_t)(strstr(r1, "\" }") + 3 - r1);
	rt_llm_provider *p = NULL;
	char path[160], *resp = NULL;
	size_t len = 0;
	const char *req0 = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
	const char *req1 = "{\"messages\":[{\"role\":\"user\"},{\"role\":\"assistant\"},{\"role\":\"user\"}]}";

	(void)state;
	snprintf(path, sizeof(path), "%s/hand.json", g.root);
	write_file(path, script);
	assert_int_equal(rt_llm_scripted_open(&p, path), 0);
	assert_non_null(strstr(p->description, "scripted: replaying"));
	assert_int_equal(rt_llm_chat(p, NULL, req0, strlen(req0), &resp, &len), 0);
	assert_int_equal(len, l0);
	assert_memory_equal(resp, r0, l0);
	free(resp);
	assert_int_equal(rt_llm_chat(p, NULL, req1, strlen(req1), &resp, &len), 0);
	assert_int_equal(len, l1);
	assert_memory_equal(resp, r1, l1);
	free(resp);
	rt_llm_provider_free(p);
}

typedef struct worker {
	rt_engine *e;
	int errors;
	char first_error[256];
} worker;

#define THREADS 8
#define PER_THREAD 25

static void *work(void *arg)
{
	worker *wk = arg;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		rt_invoke_result res;

		if (rt_engine_invoke(wk->e, "helper", NULL, input_r1, strlen(input_r1), &res) != 0 ||
		    res.error_code) {
			if (!wk->errors++)
				snprintf(wk->first_error, sizeof(wk->first_error), "%s",
					 res.body ? res.body : "(no body)");
		}
		rt_invoke_result_clear(&res);
	}
	return NULL;
}

static void test_llm__threads_share_a_provider(void **state)
{
	llmfx_reply reply = {0, NULL, NULL, 0, 0};
	pthread_t t[THREADS];
	worker wk[THREADS];
	world w;
	int i;

	(void)state;
	reply.body = completion_text("{\"summary\":\"ok\"}");
	world_start(&w, &reply, 1, 5000, 0);
	for (i = 0; i < THREADS; i++) {
		memset(&wk[i], 0, sizeof(wk[i]));
		wk[i].e = w.e;
		assert_int_equal(pthread_create(&t[i], NULL, work, &wk[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (wk[i].errors)
			fail_msg("thread %d: %d errors, first: %s", i, wk[i].errors, wk[i].first_error);
	}
	assert_int_equal(llmfx_count(w.fx), THREADS * PER_THREAD);
	world_stop(&w);
	strings_free();
}

/* ---- figures (AF_LLM_BENCH=1) ------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median seconds per invocation of input over n runs. */
static double median_invoke(rt_engine *e, const char *input, int n)
{
	double *t = calloc((size_t)n, sizeof(double)), m;
	int i;

	assert_non_null(t);
	for (i = 0; i < n; i++) {
		rt_invoke_result res;
		double t0 = now_s();

		assert_int_equal(rt_engine_invoke(e, "helper", NULL, input, strlen(input), &res), 0);
		t[i] = now_s() - t0;
		if (res.error_code)
			fail_msg("%s", res.body);
		rt_invoke_result_clear(&res);
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	m = t[n / 2];
	free(t);
	return m;
}

/* Median of a bare libcurl POST round trip to the fixture: the transport
 * floor (libcurl, loopback, libmicrohttpd), with a reused connection. */
static double median_raw_post(world *w, const char *body, int n)
{
	double *t = calloc((size_t)n, sizeof(double)), m;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	char url[96];
	FILE *sink = fopen("/dev/null", "w");
	int i;

	assert_true(t && h && c && sink);
	h = curl_slist_append(h, "Expect:");
	llmfx_url(w->fx, url, sizeof(url), "/v1/chat/completions");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	for (i = 0; i < n; i++) {
		double t0 = now_s();

		assert_int_equal(curl_easy_perform(c), CURLE_OK);
		t[i] = now_s() - t0;
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	fclose(sink);
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	m = t[n / 2];
	free(t);
	return m;
}

/* An engine on a scripted provider replaying responses[0..n). */
static void scripted_world(world *w, const char *const *responses, size_t n)
{
	char path[160];
	art_buf b = ART_BUF_INIT;
	size_t i;

	snprintf(path, sizeof(path), "%s/bench-script.json", g.root);
	assert_int_equal(art_buf_puts(&b, "{\"responses\":["), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(art_buf_printf(&b, "%s%s", i ? "," : "", responses[i]), 0);
	assert_int_equal(art_buf_puts(&b, "]}"), 0);
	write_file(path, b.data);
	art_buf_free(&b);
	memset(w, 0, sizeof(*w));
	w->log = tmpfile();
	assert_int_equal(rt_llm_scripted_open(&w->llm, path), 0);
	world_engine(w, 0);
}

static void test_llm__overhead_figures(void **state)
{
	const char *names[8] = {"clock_now", "clock_now", "clock_now", "clock_now",
				"clock_now", "clock_now", "clock_now", "clock_now"};
	const char *args[8] = {"{}", "{}", "{}", "{}", "{}", "{}", "{}", "{}"};
	const char *answer, *call1, *call8, *resp[3];
	llmfx_reply replies[3];
	const llmfx_request *first;
	world w;
	double o1, o3, s1, s3, raw, c1, c8;
	char *req0;
	int n = 500;

	(void)state;
	if (!getenv("AF_LLM_BENCH"))
		skip();
	answer = completion_text("{\"summary\":\"ok\"}");
	call1 = completion_call("clock_now", "{}");
	call8 = completion_calls(8, names, args);
	memset(replies, 0, sizeof(replies));

	/* openai provider: 1 round trip, then 3 (two tool turns and the answer). */
	replies[0].body = answer;
	world_start(&w, replies, 1, 5000, 0);
	median_invoke(w.e, input_r1, 50);
	o1 = median_invoke(w.e, input_r1, n);
	first = llmfx_request_at(w.fx, 0);
	req0 = strdup(first->body);
	raw = median_raw_post(&w, req0, n);
	free(req0);
	world_stop(&w);
	replies[0].body = call1;
	replies[1].body = call1;
	replies[2].body = answer;
	world_start(&w, replies, 3, 5000, 0);
	w.fx->cycle = 1;
	median_invoke(w.e, input_r1, 50);
	o3 = median_invoke(w.e, input_r1, n);
	world_stop(&w);

	/* The same conversations on the scripted provider (no HTTP). */
	resp[0] = answer;
	scripted_world(&w, resp, 1);
	median_invoke(w.e, input_r1, 50);
	s1 = median_invoke(w.e, input_r1, n);
	world_stop(&w);
	resp[0] = call1;
	resp[1] = call1;
	resp[2] = answer;
	scripted_world(&w, resp, 3);
	median_invoke(w.e, input_r1, 50);
	s3 = median_invoke(w.e, input_r1, n);
	world_stop(&w);

	/* Tool calls: one turn with 1 call vs one turn with 8 calls. */
	resp[0] = call1;
	resp[1] = answer;
	scripted_world(&w, resp, 2);
	median_invoke(w.e, input_r1, 50);
	c1 = median_invoke(w.e, input_r1, n);
	world_stop(&w);
	resp[0] = call8;
	scripted_world(&w, resp, 2);
	median_invoke(w.e, input_r1, 50);
	c8 = median_invoke(w.e, input_r1, n);
	world_stop(&w);

	printf("\n| figure (median of %d, µs) | value |\n|---|---|\n", n);
	printf("| invoke, 1 model round trip, openai provider -> fixture on loopback | %.1f |\n", o1 * 1e6);
	printf("| invoke, 3 round trips (2 with a clock_now call), openai | %.1f |\n", o3 * 1e6);
	printf("| invoke, 1 round trip, scripted provider | %.1f |\n", s1 * 1e6);
	printf("| invoke, 3 round trips, scripted | %.1f |\n", s3 * 1e6);
	printf("| bare libcurl POST to the fixture (same request, reused connection) | %.1f |\n", raw * 1e6);
	printf("| per model round trip, openai: (3 trips - 1 trip) / 2 - 1 tool call | %.1f |\n",
	       ((o3 - o1) / 2 - (c8 - c1) / 7) * 1e6);
	printf("| of which the transport floor (bare POST) | %.1f |\n", raw * 1e6);
	printf("| runtime's own share per round trip (guest + host + provider) | %.1f |\n",
	       ((o3 - o1) / 2 - (c8 - c1) / 7 - raw) * 1e6);
	printf("| per model round trip, scripted (no HTTP) | %.1f |\n",
	       ((s3 - s1) / 2 - (c8 - c1) / 7) * 1e6);
	printf("| per tool call (clock_now): (8 calls - 1 call) / 7 | %.1f |\n", (c8 - c1) / 7 * 1e6);
	strings_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llm__multi_step_tool_use),
		cmocka_unit_test(test_llm__malformed_model_output_is_llm_error),
		cmocka_unit_test(test_llm__unknown_tool_is_refused_and_reported_back),
		cmocka_unit_test(test_llm__timeouts_end_in_llm_error_after_retries),
		cmocka_unit_test(test_llm__retries_503_then_success),
		cmocka_unit_test(test_llm__429_retry_after_is_honoured),
		cmocka_unit_test(test_llm__client_errors_are_not_retried_and_the_key_is_never_logged),
		cmocka_unit_test(test_llm__oversized_answers_are_cut),
		cmocka_unit_test(test_llm__the_invocation_deadline_bounds_the_call),
		cmocka_unit_test(test_llm__step_cap_is_reached),
		cmocka_unit_test(test_llm__answers_outside_the_output_schema),
		cmocka_unit_test(test_llm__key_file_rotation_is_picked_up),
		cmocka_unit_test(test_llm__configuration),
		cmocka_unit_test(test_llm__model_override),
		cmocka_unit_test(test_llm__scripted_replays_a_recorded_session_byte_for_byte),
		cmocka_unit_test(test_llm__scripted_keeps_the_bytes_of_the_file),
		cmocka_unit_test(test_llm__threads_share_a_provider),
		cmocka_unit_test(test_llm__overhead_figures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
