/*
 * test_tools.c - the builtin tools (rt/tools.h, docs/tools.md).
 *
 * Pure parts first: the strict URL parser against hostile URLs, the
 * allow-list (exact, wildcard, scheme), the connect-address rules (DNS
 * rebinding, cloud metadata), the manifest's hosts field and the policy's
 * host intersection that fills it. Then http_fetch against a loopback
 * fixture server (libmicrohttpd, in this process) that counts every hit,
 * so a refusal is shown to have sent nothing: allowed host, denied hosts,
 * redirects (followed by hand, each target checked; a loop capped), an
 * oversized body (capped) and a deadline. Then, through the engine, agents
 * generated from resolved templates: a workflow and an LLM agent using
 * http_fetch (the model sees a refusal as a tool_denied answer), and
 * agent_invoke chains: the callee's own capabilities, the cycle guard, the
 * depth limit (configurable) and the caller's deadline bounding the callee.
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
#include "art/manifest.h"
#include "art/store.h"
#include "gen/toolchain.h"
#include "pipe/policy.h"
#include "rt/engine.h"
#include "rt/exec.h"
#include "rt/kv.h"
#include "rt/llm.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"
#include "rt/tools.h"
#include "keyring_fixture.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

/* ---- fixture HTTP server ------------------------------------------------------ */

#define BIG_BODY ((size_t)2 << 20)

static struct {
	struct MHD_Daemon *d;
	unsigned port;
	atomic_uint hits, hits_ok, hits_loop;
	char *big;
} srv;

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, const char *type,
			     const void *body, size_t len, const char *location)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	if (location)
		MHD_add_response_header(r, "Location", location);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_len, void **con_cls)
{
	char loc[256];
	int n;

	(void)cls;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)con_cls;
	atomic_fetch_add(&srv.hits, 1);
	if (strcmp(url, "/ok") == 0) {
		atomic_fetch_add(&srv.hits_ok, 1);
		return queue(c, 200, "text/plain; charset=utf-8", "hello", 5, NULL);
	}
	if (strcmp(url, "/utf8") == 0) {
		static const char text[] = "caf\xc3\xa9 \"quoted\" \\ line\n";

		return queue(c, 200, "text/plain", text, sizeof(text) - 1, NULL);
	}
	if (strcmp(url, "/bin") == 0) {
		unsigned char b[256];
		int i;

		for (i = 0; i < 256; i++)
			b[i] = (unsigned char)i;
		return queue(c, 200, "application/octet-stream", b, sizeof(b), NULL);
	}
	if (strcmp(url, "/big") == 0)
		return queue(c, 200, "text/plain", srv.big, BIG_BODY, NULL);
	if (strcmp(url, "/redir-ok") == 0)
		return queue(c, 302, NULL, "", 0, "/ok");
	if (strcmp(url, "/redir-abs") == 0) {
		snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/ok", srv.port);
		return queue(c, 301, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-evil") == 0)
		return queue(c, 302, NULL, "", 0, "http://evil.example/steal?k=1");
	if (strcmp(url, "/redir-metadata") == 0)
		return queue(c, 307, NULL, "", 0, "http://169.254.169.254/latest/meta-data/");
	if (strcmp(url, "/redir-localhost") == 0) {
		snprintf(loc, sizeof(loc), "http://localhost:%u/ok", srv.port);
		return queue(c, 308, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-userinfo") == 0) {
		snprintf(loc, sizeof(loc), "http://127.0.0.1:%u@evil.example/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	/* Hosts the strict parser refuses as direct URLs, in a Location header:
	 * libcurl's own URL parser would normalise each to 127.0.0.1. */
	if (strcmp(url, "/redir-hex") == 0) {
		snprintf(loc, sizeof(loc), "http://0x7f000001:%u/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-short") == 0) {
		snprintf(loc, sizeof(loc), "http://127.1:%u/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-decimal") == 0) {
		snprintf(loc, sizeof(loc), "http://2130706433:%u/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-pct") == 0) {
		snprintf(loc, sizeof(loc), "http://%%31%%32%%37.0.0.1:%u/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-port0") == 0) {
		snprintf(loc, sizeof(loc), "http://127.0.0.1:0%u/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-schemerel") == 0) {
		snprintf(loc, sizeof(loc), "//127.0.0.1:%u/ok?x=1", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/redir-schemerel-hex") == 0) {
		snprintf(loc, sizeof(loc), "//0x7f000001:%u/ok", srv.port);
		return queue(c, 302, NULL, "", 0, loc);
	}
	if (strcmp(url, "/dir/redir-dotdot") == 0)
		return queue(c, 302, NULL, "", 0, "../ok");
	if (strcmp(url, "/redir-ftp") == 0)
		return queue(c, 302, NULL, "", 0, "ftp://127.0.0.1/ok");
	if (strcmp(url, "/loop") == 0) {
		atomic_fetch_add(&srv.hits_loop, 1);
		return queue(c, 302, NULL, "", 0, "/loop");
	}
	if (sscanf(url, "/chain/%d", &n) == 1 && n < (int)RT_FETCH_MAX_REDIRECTS) {
		snprintf(loc, sizeof(loc), "/chain/%d", n + 1);
		return queue(c, 303, NULL, "", 0, loc);
	}
	if (strncmp(url, "/chain/", 7) == 0)
		return queue(c, 200, "text/plain", "end of chain", 12, NULL);
	return queue(c, 404, "text/plain", "not here", 8, NULL);
}

static int server_start(void)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	srv.big = malloc(BIG_BODY);
	if (!srv.big)
		return -1;
	memset(srv.big, 'a', BIG_BODY);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, serve, NULL,
				 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!srv.d)
		return -1;
	info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
	srv.port = info ? info->port : 0;
	return srv.port ? 0 : -1;
}

/* ---- a model for the LLM agent -------------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	char url[512];        /* what the model fetches on its first turn; "" = answer at once */
	char *seen;           /* the last tool message it was given */
	int64_t deadline_ms;  /* the deadline of its last call */
	int calls;
} model = {PTHREAD_MUTEX_INITIALIZER, "", NULL, 0, 0};

static int model_call(void *ctx, const rt_llm_call *call, const char *req, size_t len, char **resp,
		      size_t *resp_len)
{
	json_t *root = json_loadb(req, len, 0, NULL), *msgs = json_object_get(root, "messages"), *m, *out;
	const char *tool_content = NULL;
	size_t i, turns = 0;
	char url[512];

	(void)ctx;
	json_array_foreach(msgs, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));

		if (role && strcmp(role, "assistant") == 0)
			turns++;
		if (role && strcmp(role, "tool") == 0)
			tool_content = json_string_value(json_object_get(m, "content"));
	}
	pthread_mutex_lock(&model.mu);
	model.calls++;
	model.deadline_ms = call ? call->deadline_ms : -1;
	if (tool_content) {
		free(model.seen);
		model.seen = strdup(tool_content);
	}
	snprintf(url, sizeof(url), "%s", model.url);
	pthread_mutex_unlock(&model.mu);
	if (turns == 0 && url[0]) {
		json_t *args = json_pack("{s:s}", "url", url);
		char *args_text = json_dumps(args, JSON_COMPACT);

		out = json_pack("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant",
				"content", "tool_calls", "id", "c1", "type", "function", "function",
				"name", "http_fetch", "arguments", args_text);
		free(args_text);
		json_decref(args);
	} else {
		out = json_pack("{s:s, s:s}", "role", "assistant", "content", "{\"summary\":\"done\"}");
	}
	json_decref(root);
	*resp = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	*resp_len = *resp ? strlen(*resp) : 0;
	return *resp ? 0 : AF_ENOMEM;
}

static int model_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	return model_call(ctx, NULL, req, len, resp, resp_len);
}

static const rt_llm_provider test_model = {
	.name = "test-model", .chat = model_chat, .chat_call = model_call};

static void model_set(const char *url)
{
	pthread_mutex_lock(&model.mu);
	snprintf(model.url, sizeof(model.url), "%s", url ? url : "");
	free(model.seen);
	model.seen = NULL;
	model.deadline_ms = 0;
	model.calls = 0;
	pthread_mutex_unlock(&model.mu);
}

/* ---- agents generated from resolved templates ------------------------------------- */

typedef struct agent_def {
	const char *name;
	json_t *json;                  /* the resolved template */
	const char *caps[8];           /* the manifest's (what the runtime grants) */
	const char *hosts[4];
	char *text;
	size_t len;
	gen_result *built;
	int rc;
} agent_def;

#define N_AGENTS 8

static struct {
	char root[64], store[128], keyring[128], data[128];
	char alias[256];               /* a non-loopback name /etc/hosts maps to 127.x, or "" */
	agent_def agents[N_AGENTS];
	size_t next;
	pthread_mutex_t mu;
	gen_toolchain *tc;
	FILE *log;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static json_t *tool_def(const char *name, const char *cap, json_t *props, json_t *required)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:o, s:o}}", "name", name, "capability", cap,
			 "description", "a catalogue tool", "parameters", "type", "object",
			 "properties", props, "required", required);
}

/* A workflow of one step. */
static json_t *workflow(const char *name, json_t *caps, json_t *tool, json_t *step, json_t *inputs,
			int timeout_ms)
{
	char chain[96];

	snprintf(chain, sizeof(chain), "%s@1.0.0", name);
	return json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:o, s:o, s:[o], s:[o], s:{s:i, s:i, s:i}}",
			 "apiVersion", "agentfactory/v1", "kind", "AgentTemplate", "name", name,
			 "version", "1.0.0", "chain", chain, "role", "test agent", "capabilities", caps,
			 "inputs", inputs, "tools", tool, "steps", step, "limits", "max_steps", 4,
			 "memory_pages", 32, "timeout_ms", timeout_ms);
}

static json_t *relay(const char *name)
{
	return workflow(name, json_pack("[s,s,s,s,s]", "log", "clock", "tool_call", "agent_invoke", "kv.write"),
			tool_def("agent_invoke", "agent_invoke",
				 json_pack("{s:{s:s}, s:{s:s}}", "agent", "type", "string", "input",
					   "type", "object"),
				 json_pack("[s,s]", "agent", "input")),
			json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}}", "id", "call", "tool",
				  "agent_invoke", "args", "agent", "{{ inputs.next }}", "input", "next",
				  "{{ inputs.n2 }}", "n2", "{{ inputs.n3 }}", "n3", "{{ inputs.n4 }}"),
			json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object",
				  "properties", "next", "type", "string", "n2", "type", "string", "n3",
				  "type", "string", "n4", "type", "string"),
			20000);
}

static json_t *keeper(const char *name)
{
	return workflow(name, json_pack("[s,s,s,s]", "log", "clock", "tool_call", "kv.write"),
			tool_def("kv_put", "kv.write",
				 json_pack("{s:{s:s}, s:{s:s}}", "key", "type", "string", "value",
					   "type", "string"),
				 json_pack("[s,s]", "key", "value")),
			json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", "keep", "tool", "kv_put", "args",
				  "key", "kept", "value", "from {{ inputs.next }}"),
			json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "next", "type",
				  "string"),
			10000);
}

static void defs_init(void)
{
	agent_def *a = g.agents;
	json_t *fetch_tool = tool_def("http_fetch", "http_fetch",
				      json_pack("{s:{s:s}}", "url", "type", "string"),
				      json_pack("[s]", "url"));

	a[0] = (agent_def){.name = "fetch-steps",
			   .caps = {"clock", "http_fetch", "log", "tool_call"},
			   .hosts = {"127.0.0.1", g.alias[0] ? g.alias : NULL}};
	a[0].json = workflow("fetch-steps", json_pack("[s,s,s,s]", "log", "clock", "tool_call", "http_fetch"),
			     json_incref(fetch_tool),
			     json_pack("{s:s, s:s, s:{s:s}}", "id", "fetch", "tool", "http_fetch",
				       "args", "url", "{{ inputs.url }}"),
			     json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties",
				       "url", "type", "string", "required", "url"),
			     10000);
	a[1] = (agent_def){.name = "fetch-llm",
			   .caps = {"http_fetch", "llm_chat", "log", "tool_call"},
			   .hosts = {"127.0.0.1"}};
	a[1].json = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:s, s:{s:s, s:s}, s:[s,s,s,s], "
			      "s:{s:s}, s:[o], s:{s:i, s:i, s:i}}",
			      "apiVersion", "agentfactory/v1", "kind", "AgentTemplate", "name",
			      "fetch-llm", "version", "1.0.0", "chain", "fetch-llm@1.0.0", "role",
			      "reader", "instructions", "Read what you are asked to read.", "model",
			      "name", "m", "provider", "openai", "capabilities", "log", "llm_chat",
			      "tool_call", "http_fetch", "inputs", "type", "object", "tools",
			      fetch_tool, "limits", "max_steps", 4, "memory_pages", 64, "timeout_ms",
			      30000);
	a[2] = (agent_def){.name = "relay-a",
			   .caps = {"agent_invoke", "clock", "kv.write", "log", "tool_call"}};
	a[2].json = relay("relay-a");
	a[3] = (agent_def){.name = "relay-b", .caps = {"agent_invoke", "clock", "log", "tool_call"}};
	a[3].json = relay("relay-b");
	a[4] = (agent_def){.name = "relay-c", .caps = {"agent_invoke", "clock", "log", "tool_call"}};
	a[4].json = relay("relay-c");
	a[5] = (agent_def){.name = "leaf", .caps = {"clock", "log", "tool_call"}};
	a[5].json = workflow("leaf", json_pack("[s,s,s]", "log", "clock", "tool_call"),
			     tool_def("clock_now", "clock", json_object(), json_array()),
			     json_pack("{s:s, s:s, s:{}}", "id", "now", "tool", "clock_now", "args"),
			     json_pack("{s:s}", "type", "object"), 10000);
	/* Same template, two grants: keeper has kv.write, writer does not
	 * (its manifest leaves it out), whoever invokes it. */
	a[6] = (agent_def){.name = "keeper", .caps = {"clock", "kv.write", "log", "tool_call"}};
	a[6].json = keeper("keeper");
	a[7] = (agent_def){.name = "writer", .caps = {"clock", "log", "tool_call"}};
	a[7].json = keeper("writer");
}

static void *build_worker(void *arg)
{
	(void)arg;
	for (;;) {
		agent_def *a;
		char dir[192];

		pthread_mutex_lock(&g.mu);
		a = g.next < N_AGENTS ? &g.agents[g.next++] : NULL;
		pthread_mutex_unlock(&g.mu);
		if (!a)
			return NULL;
		snprintf(dir, sizeof(dir), "%s/build-%s", g.root, a->name);
		a->rc = gen_build_agent(&a->built, g.tc, a->text, a->len, dir, NULL);
		if (a->rc != 0)
			fprintf(stderr, "build %s: %s\n", a->name, art_error_last());
	}
}

static int store_agent(art_store_txn *t, const art_key *key, agent_def *a)
{
	char resolved[ART_DIGEST_STR_LEN + 1];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.invalid/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_build_parts parts;
	art_manifest_import imports[16];
	art_manifest_export exports[16];
	gen_result *r = a->built;
	size_t k, n;
	int rc;

	memset(&info, 0, sizeof(info));
	for (n = 0; n < 8 && a->caps[n]; n++)
		;
	info.capabilities = a->caps;
	info.n_capabilities = n;
	for (n = 0; n < 4 && a->hosts[n]; n++)
		;
	info.hosts = a->hosts;
	info.n_hosts = n;
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
	art_manifest_digest(resolved, a->text, a->len);
	info.name = a->name;
	info.version = "1.0.0";
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = gen_toolchain_id(g.tc);
	info.native_compat_id = gen_toolchain_compat_id(g.tc);
	info.target_triple = gen_toolchain_target(g.tc);
	info.guest_abi_version = 1;
	parts.wasm = r->wasm;
	parts.wasm_len = r->wasm_len;
	parts.native = r->so;
	parts.native_len = r->so_len;
	parts.source = r->c_source;
	parts.source_len = r->c_len;
	rc = art_store_put_build(t, NULL, &info, &prov, &parts, key);
	if (rc != 0)
		fprintf(stderr, "put %s: %s\n", a->name, art_error_last());
	return rc;
}

/* A name of /etc/hosts (not localhost) that maps to a loopback address. */
static void find_alias(void)
{
	FILE *f = fopen("/etc/hosts", "r");
	char line[512];

	g.alias[0] = '\0';
	while (f && !g.alias[0] && fgets(line, sizeof(line), f)) {
		char *save = NULL, *addr = strtok_r(line, " \t\r\n", &save), *name;

		if (!addr || addr[0] == '#' || strncmp(addr, "127.", 4) != 0)
			continue;
		while (!g.alias[0] && (name = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
			rt_url u;
			char url[300];

			snprintf(url, sizeof(url), "https://%s/", name);
			if (rt_url_parse(&u, url, strlen(url)) == 0 && !u.loopback && !u.ip)
				snprintf(g.alias, sizeof(g.alias), "%s", u.host);
		}
	}
	if (f)
		fclose(f);
}

static int setup(void **state)
{
	art_key *builder = NULL;
	art_keyring *kr = NULL;
	art_store *s = NULL;
	art_store_txn *t = NULL;
	pthread_t th[2];
	size_t i;
	int rc = -1;

	(void)state;
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-tools-XXXXXX");
	if (!mkdtemp(g.root) || server_start() != 0)
		return -1;
	snprintf(g.store, sizeof(g.store), "%s/store", g.root);
	snprintf(g.keyring, sizeof(g.keyring), "%s/keyring.json", g.root);
	snprintf(g.data, sizeof(g.data), "%s/data", g.root);
	find_alias();
	defs_init();
	for (i = 0; i < N_AGENTS; i++) {
		g.agents[i].text = json_dumps(g.agents[i].json, JSON_COMPACT | JSON_SORT_KEYS);
		if (!g.agents[i].text)
			return -1;
		g.agents[i].len = strlen(g.agents[i].text);
	}
	if (gen_toolchain_discover(&g.tc) != 0)
		return -1;
	pthread_create(&th[0], NULL, build_worker, NULL);
	pthread_create(&th[1], NULL, build_worker, NULL);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	for (i = 0; i < N_AGENTS; i++)
		if (g.agents[i].rc != 0)
			return -1;
	if (art_key_generate(&builder, 2048) || art_keyring_new(&kr) ||
	    art_keyring_add(kr, builder, ART_ROLE_BUILDER, time(NULL) - 3600, 0) ||
	    keyring_fixture_save(kr, g.keyring) || art_store_open(&s, g.store, ART_STORE_CREATE) ||
	    art_store_txn_begin(&t, s))
		goto cleanup;
	for (i = 0; i < N_AGENTS; i++)
		if (store_agent(t, builder, &g.agents[i]) != 0)
			goto cleanup;
	rc = art_store_txn_commit(t);
	t = NULL;
	if (rc != 0)
		goto cleanup;
	g.log = tmpfile();
	rc = g.log ? 0 : -1;
cleanup:
	art_store_txn_abort(t);
	art_store_close(s);
	art_keyring_free(kr);
	art_key_free(builder);
	return rc;
}

static int teardown(void **state)
{
	size_t i;

	(void)state;
	if (srv.d)
		MHD_stop_daemon(srv.d);
	free(srv.big);
	for (i = 0; i < N_AGENTS; i++) {
		json_decref(g.agents[i].json);
		free(g.agents[i].text);
		gen_result_free(g.agents[i].built);
	}
	gen_toolchain_free(g.tc);
	free(model.seen);
	if (g.log)
		fclose(g.log);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

static rt_engine *open_engine(uint32_t max_depth)
{
	rt_engine_opts o;
	rt_engine *e = NULL;

	memset(&o, 0, sizeof(o));
	o.store_dir = g.store;
	o.keyring_path = g.keyring;
	o.data_dir = g.data;
	o.llm = &test_model;
	o.log = g.log;
	o.max_invoke_depth = max_depth;
	if (rt_engine_open(&e, &o) != 0)
		fail_msg("rt_engine_open: %s", art_error_last());
	return e;
}

/* ---- helpers for direct tool calls ---------------------------------------------- */

/* A policy for name with the given allow-list. */
static rt_policy *policy_with_hosts(const char *name, const char *const *hosts, size_t n)
{
	char describe[256];
	rt_policy *p = NULL;

	snprintf(describe, sizeof(describe), "{\"name\":\"%s\",\"version\":\"1.0.0\"}", name);
	assert_int_equal(rt_policy_parse(&p, describe, strlen(describe), NULL, 0), 0);
	assert_int_equal(rt_policy_set_hosts(p, hosts, n), 0);
	return p;
}

/* Run a tool; the envelope parsed (NULL when denied). */
static json_t *run_tool(rt_tool_result *tr, int tool, const rt_policy *p, const rt_host_env *env,
			const rt_call_chain *chain, const char *args_json)
{
	rt_tool_ctx ctx = {p, env, chain};
	json_t *args = json_loads(args_json, 0, NULL), *env_json = NULL;

	assert_non_null(args);
	assert_int_equal(rt_tool_run(tr, tool, &ctx, args), 0);
	json_decref(args);
	if (tr->answer)
		env_json = json_loadb(tr->answer, tr->answer_len, 0, NULL);
	assert_true(tr->denied == !env_json);
	return env_json;
}

static json_t *fetch(rt_tool_result *tr, const rt_policy *p, const char *url)
{
	char args[2600];
	json_t *a = json_pack("{s:s}", "url", url);
	char *text = json_dumps(a, JSON_COMPACT);
	json_t *r;

	snprintf(args, sizeof(args), "%s", text);
	free(text);
	json_decref(a);
	r = run_tool(tr, RT_TOOL_HTTP_FETCH, p, &(rt_host_env){0}, NULL, args);
	return r;
}

static const char *error_code(json_t *envelope)
{
	return json_string_value(json_object_get(json_object_get(envelope, "error"), "code"));
}

static const char *error_message(json_t *envelope)
{
	return json_string_value(json_object_get(json_object_get(envelope, "error"), "message"));
}

static void loopback_url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%u%s", srv.port, path);
}

/* ---- URL parsing ----------------------------------------------------------------- */

static void test_tools__url_parse_normalises(void **state)
{
	rt_url u;
	char out[RT_URL_MAX + 64];

	(void)state;
	assert_int_equal(rt_url_parse(&u, "https://api.openai.com/v1/models?x=1#frag",
				      strlen("https://api.openai.com/v1/models?x=1#frag")), 0);
	assert_string_equal(u.scheme, "https");
	assert_string_equal(u.host, "api.openai.com");
	assert_int_equal(u.port, 443);
	assert_false(u.explicit_port || u.ip || u.loopback);
	assert_string_equal(u.path, "/v1/models?x=1");
	assert_true(rt_url_format(&u, out, sizeof(out)) > 0);
	assert_string_equal(out, "https://api.openai.com/v1/models?x=1");

	assert_int_equal(rt_url_parse(&u, "HTTP://LocalHost:8080", 21), 0);
	assert_string_equal(u.scheme, "http");
	assert_string_equal(u.host, "localhost");
	assert_int_equal(u.port, 8080);
	assert_true(u.explicit_port && u.loopback && !u.ip);
	assert_string_equal(u.path, "/");
	rt_url_format(&u, out, sizeof(out));
	assert_string_equal(out, "http://localhost:8080/");

	assert_int_equal(rt_url_parse(&u, "http://127.0.0.1:99/a", 21), 0);
	assert_true(u.ip && u.loopback);
	assert_int_equal(rt_url_parse(&u, "https://API.example.COM./x", 26), 0);
	assert_string_equal(u.host, "api.example.com");
	assert_int_equal(rt_url_parse(&u, "https://x.example?q=1", 21), 0);
	assert_string_equal(u.path, "/?q=1");
	assert_int_equal(rt_url_parse(&u, "https://[0:0:0:0:0:0:0:1]:8443/x", 32), 0);
	assert_string_equal(u.host, "[::1]");
	assert_true(u.ip && u.loopback);
	assert_int_equal(u.port, 8443);
	assert_int_equal(rt_url_parse(&u, "https://[::ffff:127.0.0.1]/", 27), 0);
	assert_true(u.loopback);
	assert_int_equal(rt_url_parse(&u, "https://[2001:DB8::1]/", 22), 0);
	assert_string_equal(u.host, "[2001:db8::1]");
	assert_false(u.loopback);
	assert_int_equal(rt_url_parse(&u, "http://app.localhost/", 21), 0);
	assert_true(u.loopback && !u.ip);
	assert_int_equal(rt_url_parse(&u, "https://xn--bcher-kva.example/", 30), 0);
	assert_int_equal(rt_url_parse(&u, "https://a.example:65535/", 24), 0);
	assert_int_equal(u.port, 65535);
}

static void test_tools__url_parse_refuses_hostile_urls(void **state)
{
	static const char *const hostile[] = {
		"https://api.openai.com@evil.example/",        /* userinfo: the host is evil.example */
		"https://user:pw@api.openai.com/",
		"https://api.openai.com\\@evil.example/",      /* backslash tricks */
		"https://evil.example\\.api.openai.com/",
		"http:\\\\api.openai.com/",
		"http://2130706433/",                          /* decimal IPv4 */
		"http://0177.0.0.1/",                          /* octal */
		"http://0x7f.0.0.1/",                          /* hex */
		"http://0x7f000001/",
		"http://127.1/",                               /* short form */
		"http://127.0.0.1.5/",
		"http://1.2.3.256/",
		"http://01.2.3.4/",
		"http://[::1/",                                /* bracket mismatch */
		"http://::1]/",
		"http://[::1]x/",
		"http://[127.0.0.1]/",
		"http://[fe80::1%25eth0]/",                    /* zone id */
		"http://%6c%6fcalhost/",                       /* percent-encoded host */
		"http://::1/",
		"ftp://api.openai.com/",                       /* schemes */
		"file:///etc/passwd",
		"gopher://127.0.0.1:6379/_FLUSHALL",
		"javascript:alert(1)",
		"//api.openai.com/",
		"api.openai.com/v1",
		"https:///path",                               /* no host */
		"https://",
		"https://:443/",
		"https://a b.example/",                        /* spaces, controls, non-ASCII */
		"https://api.openai.com/\r\nHost: evil.example",
		"https://api.openai.com/\t",
		"https://\xd0\xb0pi.openai.com/",              /* Cyrillic a */
		"https://api.openai.com:0/",                   /* ports */
		"https://api.openai.com:65536/",
		"https://api.openai.com:08080/",
		"https://api.openai.com:/",
		"https://api.openai.com:-1/",
		"https://api.openai.com:80a/",
		"https://a:1:2/",
		"https://-bad.example/",                       /* names */
		"https://bad-.example/",
		"https://a..b.example/",
		"https://under_score.example/",
		"https://.example/",
		"https://example..",
	};
	char long_url[RT_URL_MAX + 32];
	rt_url u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		if (rt_url_parse(&u, hostile[i], strlen(hostile[i])) != AF_EINVAL)
			fail_msg("accepted hostile URL #%zu: %s (host %s)", i, hostile[i], u.host);
	}
	/* A NUL inside: the bytes after it must not be ignored. */
	assert_int_equal(rt_url_parse(&u, "https://evil.example\0.api.openai.com/", 36), AF_EINVAL);
	memcpy(long_url, "https://a.example/", 18);
	memset(long_url + 18, 'a', sizeof(long_url) - 19);
	long_url[sizeof(long_url) - 1] = '\0';
	assert_int_equal(rt_url_parse(&u, long_url, strlen(long_url)), AF_EINVAL);
	assert_int_equal(rt_url_parse(&u, "", 0), AF_EINVAL);
	/* A host name of 253 bytes is fine; 254 is not. */
	{
		char url[300] = "https://";
		size_t o = 8;

		while (o + 64 < 8 + 253) {
			memset(url + o, 'a', 63);
			url[o + 63] = '.';
			o += 64;
		}
		memset(url + o, 'b', 8 + 253 - o);
		url[8 + 253] = '\0';
		assert_int_equal(rt_url_parse(&u, url, strlen(url)), 0);
		url[8 + 253] = 'b';
		url[8 + 254] = '\0';
		assert_int_equal(rt_url_parse(&u, url, strlen(url)), AF_EINVAL);
	}
}

/* ---- the allow-list ---------------------------------------------------------------- */

static int allowed(const rt_policy *p, const char *url)
{
	rt_url u;

	assert_int_equal(rt_url_parse(&u, url, strlen(url)), 0);
	return rt_url_allowed(&u, (const char *const *)p->hosts, p->n_hosts);
}

static void test_tools__allow_list_exact_wildcard_and_scheme(void **state)
{
	static const char *const hosts[] = {"API.OpenAI.com", "*.svc.cluster.local", "127.0.0.1",
					    "[0::1]", "localhost"};
	static const char *const ip_wild[] = {"*.0.0.1.example", "*.example"};
	rt_policy *p = policy_with_hosts("a", hosts, 5), *q;

	(void)state;
	assert_string_equal(p->hosts[0], "api.openai.com");
	assert_string_equal(p->hosts[3], "[::1]");
	assert_int_equal(allowed(p, "https://api.openai.com/v1"), 0);
	assert_int_equal(allowed(p, "https://API.OPENAI.COM./v1"), 0);
	assert_int_equal(allowed(p, "https://api.openai.com.evil.example/"), AF_EDENIED);
	assert_int_equal(allowed(p, "https://evilapi.openai.com/"), AF_EDENIED);
	assert_int_equal(allowed(p, "https://x.api.openai.com/"), AF_EDENIED);
	assert_int_equal(allowed(p, "https://openai.com/"), AF_EDENIED);
	/* A wildcard matches names strictly below its domain. */
	assert_int_equal(allowed(p, "https://a.b.svc.cluster.local/"), 0);
	assert_int_equal(allowed(p, "https://db.svc.cluster.local:5432/"), 0);
	assert_int_equal(allowed(p, "https://svc.cluster.local/"), AF_EDENIED);
	assert_int_equal(allowed(p, "https://evilsvc.cluster.local/"), AF_EDENIED);
	assert_int_equal(allowed(p, "https://svc.cluster.local.evil.example/"), AF_EDENIED);
	/* Plain http only to loopback hosts, and only when they are listed. */
	assert_int_equal(allowed(p, "http://api.openai.com/"), AF_EDENIED);
	assert_int_equal(allowed(p, "http://db.svc.cluster.local/"), AF_EDENIED);
	assert_int_equal(allowed(p, "http://127.0.0.1:8080/"), 0);
	assert_int_equal(allowed(p, "http://localhost/"), 0);
	assert_int_equal(allowed(p, "http://[::1]:1/"), 0);
	assert_int_equal(allowed(p, "http://127.0.0.2/"), AF_EDENIED);
	assert_int_equal(allowed(p, "http://app.localhost/"), AF_EDENIED);
	rt_policy_free(p);
	/* A wildcard never matches an IP literal; no list allows nothing. */
	q = policy_with_hosts("b", ip_wild, 2);
	assert_int_equal(allowed(q, "https://1.2.3.4/"), AF_EDENIED);
	assert_int_equal(allowed(q, "https://x.0.0.1.example/"), 0);
	rt_policy_free(q);
	q = policy_with_hosts("c", NULL, 0);
	assert_int_equal(allowed(q, "https://api.openai.com/"), AF_EDENIED);
	assert_int_equal(allowed(q, "http://127.0.0.1/"), AF_EDENIED);
	rt_policy_free(q);
}

static void test_tools__host_entries_normalise(void **state)
{
	static const char *const bad[] = {"*",     "*.",          "*.1.2.3.4", "127.1",
					  "a_b.c", "[::1",        "[]",        "*.[::1]",
					  "-a.b",  "2130706433", "a b",        "[fe80::1%eth0]"};
	static const char *const one_bad[] = {"ok.example", "127.1"};
	char out[256];
	rt_policy *p = NULL;
	size_t i;

	(void)state;
	assert_int_equal(rt_host_entry_normalize(out, sizeof(out), "API.OpenAI.com."), 0);
	assert_string_equal(out, "api.openai.com");
	assert_int_equal(rt_host_entry_normalize(out, sizeof(out), "*.Svc.Cluster.Local"), 0);
	assert_string_equal(out, "*.svc.cluster.local");
	assert_int_equal(rt_host_entry_normalize(out, sizeof(out), "[0:0::1]"), 0);
	assert_string_equal(out, "[::1]");
	assert_int_equal(rt_host_entry_normalize(out, sizeof(out), "10.0.0.1"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (rt_host_entry_normalize(out, sizeof(out), bad[i]) != AF_EINVAL)
			fail_msg("accepted host entry %s", bad[i]);
	/* The loader refuses a manifest entry it cannot read, and keeps nothing. */
	assert_int_equal(rt_policy_parse(&p, "{\"name\":\"a\",\"version\":\"1.0.0\"}",
					 strlen("{\"name\":\"a\",\"version\":\"1.0.0\"}"), NULL, 0), 0);
	assert_int_equal(rt_policy_set_hosts(p, one_bad, 2), AF_ECORRUPT);
	assert_int_equal(p->n_hosts, 0);
	/* The whole message: the context, then the entry's own reason (not the
	 * context formatted over itself). */
	assert_true(strncmp(art_error_last(), "manifest hosts: host entry '", 28) == 0);
	assert_null(strstr(art_error_last() + 1, "manifest hosts"));
	rt_policy_free(p);
}

/* Which names are hosts is the manifest's rule (art_manifest_host_valid):
 * for a name or IPv4 address already in canonical form the runtime accepts
 * exactly what a manifest may list, and all it puts out is listable. */
static void test_tools__host_rule_is_the_manifests(void **state)
{
	static const char *const names[] = {
		"example.com", "a", "a-b.c", "xn--bcher-kva.example", "localhost", "app.localhost",
		"1.2.3.4", "127.0.0.1", "255.255.255.255", "-a.b", "a-.b", "a..b", "a_b.c", ".a",
		"a.b.", "01.2.3.4", "1.2.3.256", "127.1", "2130706433", "a.1b", "0x7f.1", "1.2.3.4.5",
		"a.b-", "*", "*.", "a*b.c", "a/b", "a:b", "\xc3\xa9.example",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",  /* 63 */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", /* 64 */
	};
	static const char *const others[] = {"*.example.com", "*.1.2.3.4", "*.a_b", "[::1]",
					     "[0:0::1]", "[1:2]", "[fe80::1]", "[zz::1]"};
	char out[256], url[512];
	rt_url u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		bool manifest = art_manifest_host_valid(names[i]);
		bool entry = rt_host_entry_normalize(out, sizeof(out), names[i]) == 0 &&
			     strcmp(out, names[i]) == 0;
		bool in_url;

		snprintf(url, sizeof(url), "http://%s/", names[i]);
		in_url = rt_url_parse(&u, url, strlen(url)) == 0 && strcmp(u.host, names[i]) == 0;
		if (manifest != entry || manifest != in_url)
			fail_msg("%s: manifest %d, host entry %d, URL %d", names[i], manifest, entry,
				 in_url);
	}
	/* Wildcards and IPv6 the runtime reads more strictly (a wildcard over an
	 * address, an address inet_pton refuses); what it keeps is listable. */
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (rt_host_entry_normalize(out, sizeof(out), others[i]) == 0 &&
		    !art_manifest_host_valid(out))
			fail_msg("%s: normalised to %s, which a manifest cannot list", others[i], out);
	/* The messages still say what is wrong. */
	assert_int_equal(rt_url_parse(&u, "http://a.1b/", 12), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "last label starts with a digit"));
	assert_int_equal(rt_url_parse(&u, "http://127.1/", 13), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "dotted-quad"));
	assert_int_equal(rt_url_parse(&u, "http://a_b.c/", 13), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "not a valid host name"));
	assert_int_equal(rt_url_parse(&u, "http://*.a.b/", 13), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "not a valid host name"));
	assert_int_equal(rt_url_parse(&u, "http://b/", 9), 0);
	assert_false(u.loopback || u.ip);
	assert_int_equal(rt_url_parse(&u, "http://127.9.8.7/", 17), 0);
	assert_true(u.loopback && u.ip);
	assert_int_equal(rt_url_parse(&u, "http://128.0.0.1/", 17), 0);
	assert_true(!u.loopback && u.ip);
	assert_int_equal(rt_url_parse(&u, "http://12.7.0.1/", 16), 0);
	assert_false(u.loopback);
}

/* ---- connect-time address rules ------------------------------------------------------ */

static bool v4_ok(const char *addr, bool loopback_host)
{
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, addr, &in.sin_addr), 1);
	return rt_fetch_address_allowed((struct sockaddr *)&in, loopback_host);
}

static bool v6_ok(const char *addr, bool loopback_host)
{
	struct sockaddr_in6 in6;

	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
	return rt_fetch_address_allowed((struct sockaddr *)&in6, loopback_host);
}

static void test_tools__connect_address_rules(void **state)
{
	struct sockaddr_un un;

	(void)state;
	/* Loopback exactly when the URL's host is a loopback host. */
	assert_true(v4_ok("127.0.0.1", true));
	assert_true(v4_ok("127.3.2.1", true));
	assert_false(v4_ok("127.0.0.1", false));  /* a public name resolving to loopback */
	assert_false(v4_ok("10.0.0.1", true));    /* "localhost" resolving elsewhere */
	assert_true(v4_ok("10.0.0.1", false));
	assert_true(v4_ok("93.184.216.34", false));
	/* Never: metadata, unspecified, multicast, broadcast. */
	assert_false(v4_ok("169.254.169.254", false));
	assert_false(v4_ok("169.254.169.254", true));
	assert_false(v4_ok("0.0.0.0", false));
	assert_false(v4_ok("0.0.0.0", true));
	assert_false(v4_ok("224.0.0.1", false));
	assert_false(v4_ok("255.255.255.255", false));
	assert_true(v6_ok("::1", true));
	assert_false(v6_ok("::1", false));
	assert_true(v6_ok("2001:db8::1", false));
	assert_false(v6_ok("::", false));
	assert_false(v6_ok("fe80::1", false));
	assert_false(v6_ok("ff02::1", false));
	/* IPv4 inside IPv6 gets the IPv4 rules. */
	assert_false(v6_ok("::ffff:127.0.0.1", false));
	assert_true(v6_ok("::ffff:127.0.0.1", true));
	assert_false(v6_ok("::ffff:169.254.169.254", false));
	assert_false(v6_ok("64:ff9b::a9fe:a9fe", false));      /* NAT64 of 169.254.169.254 */
	assert_true(v6_ok("64:ff9b::5db8:d822", false));
	assert_false(v6_ok("::7f00:1", false));                /* IPv4-compatible */
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_false(rt_fetch_address_allowed((struct sockaddr *)&un, true));
	assert_false(rt_fetch_address_allowed(NULL, true));
}

/* ---- the manifest's hosts and the policy's intersection ------------------------------- */

static void manifest_info(art_manifest_info *info, const char *const *hosts, size_t n)
{
	static const char *const caps[] = {"http_fetch", "log"};

	memset(info, 0, sizeof(*info));
	info->name = "a";
	info->version = "1.0.0";
	info->resolved_template_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	info->git_commit = "0123456789abcdef0123456789abcdef01234567";
	info->policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info->toolchain_id = "tc";
	info->native_compat_id = "compat";
	info->target_triple = "x86_64-linux-gnu";
	info->guest_abi_version = 1;
	info->capabilities = caps;
	info->n_capabilities = 2;
	info->hosts = hosts;
	info->n_hosts = n;
}

static art_manifest *complete(art_manifest *m)
{
	static const char hex[] = "3333333333333333333333333333333333333333333333333333333333333333";

	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, hex, 1), 0);
	assert_int_equal(art_manifest_add_part(m, ART_PART_SOURCE, ART_MEDIA_SOURCE, hex, 1), 0);
	assert_int_equal(art_manifest_add_part(m, ART_PART_PROVENANCE, ART_MEDIA_PROVENANCE, hex, 1), 0);
	assert_int_equal(art_manifest_add_native(m, "compat", hex, 1), 0);
	return m;
}

static void test_tools__manifest_records_hosts(void **state)
{
	static const char *const hosts[] = {"localhost", "*.svc.cluster.local", "[::1]", "api.openai.com"};
	static const char *const upper[] = {"API.openai.com"};
	static const char *const numeric[] = {"127.1"};
	static const char *const dup[] = {"a.example", "a.example"};
	art_manifest_info info;
	art_manifest *m = NULL, *back = NULL;
	char *text = NULL, *text2 = NULL, *edited;
	size_t len = 0, len2 = 0;

	(void)state;
	manifest_info(&info, hosts, 4);
	assert_int_equal(art_manifest_new(&m, &info), 0);
	assert_int_equal(m->n_hosts, 4);
	assert_string_equal(m->hosts[0], "*.svc.cluster.local"); /* sorted */
	assert_string_equal(m->hosts[3], "localhost");
	assert_int_equal(art_manifest_serialize(&text, &len, complete(m)), 0);
	assert_non_null(strstr(text, "\"hosts\":[\"*.svc.cluster.local\",\"[::1]\",\"api.openai.com\",\"localhost\"]"));
	assert_int_equal(art_manifest_parse(&back, text, len), 0);
	assert_int_equal(back->n_hosts, 4);
	assert_int_equal(art_manifest_serialize(&text2, &len2, back), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(text, text2, len);
	art_manifest_free(back);
	back = NULL;
	/* Out of order, or empty: refused (not canonical). */
	edited = strdup(text);
	memcpy(strstr(edited, "\"[::1]\""), "\"[::2]\"", 7);
	assert_int_equal(art_manifest_parse(&back, edited, len), 0); /* still sorted, valid */
	art_manifest_free(back);
	back = NULL;
	memcpy(strstr(edited, "\"localhost\""), "\"aaaaaaaaa\"", 11);
	assert_int_equal(art_manifest_parse(&back, edited, len), AF_ECORRUPT);
	free(edited);
	free(text);
	free(text2);
	art_manifest_free(m);
	/* No hosts: no field, so such manifests keep their bytes. */
	manifest_info(&info, NULL, 0);
	assert_int_equal(art_manifest_new(&m, &info), 0);
	assert_int_equal(art_manifest_serialize(&text, &len, complete(m)), 0);
	assert_null(strstr(text, "hosts"));
	edited = malloc(len + 16);
	memcpy(edited, text, len);
	edited[len] = '\0';
	/* "hosts":[] spliced in before "imports" (keys are sorted). */
	{
		char *at = strstr(edited, "\"imports\"");
		size_t off = (size_t)(at - edited);

		memmove(at + 11, at, len - off + 1);
		memcpy(at, "\"hosts\":[],", 11);
	}
	assert_int_equal(art_manifest_parse(&back, edited, len + 11), AF_ECORRUPT);
	free(edited);
	free(text);
	art_manifest_free(m);
	m = NULL;
	manifest_info(&info, upper, 1);
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	manifest_info(&info, numeric, 1);
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	manifest_info(&info, dup, 2);
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	assert_true(art_manifest_host_valid("*.a.example"));
	assert_true(art_manifest_host_valid("10.0.0.1"));
	assert_true(art_manifest_host_valid("[::1]"));
	assert_false(art_manifest_host_valid("*"));
	assert_false(art_manifest_host_valid("0x7f.1"));
	assert_false(art_manifest_host_valid("a.example."));
	assert_false(art_manifest_host_valid("[::1"));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_tools__policy_hosts_are_the_intersection(void **state)
{
	char dir[160], path[200], **hosts = NULL;
	pipe_policy *p = NULL;
	pipe_diags d = PIPE_DIAGS_INIT;
	size_t n = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/policies", g.root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	write_file(path, "kind: Policy\nname: a\nversion: 1\ngrants:\n  capabilities: [http_fetch]\n"
			 "  hosts: [API.OpenAI.com, '*.svc.cluster.local', '*.example.com', localhost]\n");
	snprintf(path, sizeof(path), "%s/b.yaml", dir);
	write_file(path, "kind: Policy\nname: b\nversion: 1\ngrants:\n"
			 "  hosts: ['*.openai.com', a.svc.cluster.local, '*.b.example.com', 127.0.0.1]\n");
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	write_file(path, "kind: Policy\nname: c\nversion: 1\n"); /* declares no hosts: no constraint */
	if (pipe_policy_load_dir(&p, dir, &d) != 0) {
		pipe_diags_print(&d, stderr);
		fail_msg("policy: %s", art_error_last());
	}
	assert_int_equal(pipe_policy_hosts(&hosts, &n, p), 0);
	assert_int_equal(n, 3);
	assert_string_equal(hosts[0], "*.b.example.com");
	assert_string_equal(hosts[1], "a.svc.cluster.local");
	assert_string_equal(hosts[2], "api.openai.com");
	/* Each recorded entry is allowed by the policy, the dropped ones are not. */
	assert_true(pipe_policy_allows_host(p, "x.b.example.com"));
	assert_false(pipe_policy_allows_host(p, "x.example.com"));
	assert_false(pipe_policy_allows_host(p, "localhost"));
	pipe_policy_hosts_free(hosts, n);
	pipe_policy_free(p);
	pipe_diags_free(&d);
	/* The default policy: its list, lower case and sorted. */
	{
		const char *src = getenv("AF_SRCDIR");

		snprintf(dir, sizeof(dir), "%s/policies", src ? src : ".");
		assert_int_equal(pipe_policy_load_dir(&p, dir, &d), 0);
		assert_int_equal(pipe_policy_hosts(&hosts, &n, p), 0);
		assert_true(n >= 3);
		for (size_t i = 1; i < n; i++)
			assert_true(strcmp(hosts[i - 1], hosts[i]) < 0);
		pipe_policy_hosts_free(hosts, n);
		pipe_policy_free(p);
		pipe_diags_free(&d);
	}
	/* No file declares hosts: nothing. */
	assert_int_equal(pipe_policy_load_buffer(&p, "x.yaml", "kind: Policy\nname: x\nversion: 1\n",
						 strlen("kind: Policy\nname: x\nversion: 1\n"), &d), 0);
	assert_int_equal(pipe_policy_hosts(&hosts, &n, p), 0);
	assert_int_equal(n, 0);
	assert_null(hosts);
	pipe_policy_free(p);
	pipe_diags_free(&d);
}

static void test_tools__catalogue(void **state)
{
	(void)state;
	assert_int_equal(rt_tool_find("clock_now"), RT_TOOL_CLOCK_NOW);
	assert_int_equal(rt_tool_find("http_fetch"), RT_TOOL_HTTP_FETCH);
	assert_int_equal(rt_tool_find("agent_invoke"), RT_TOOL_AGENT_INVOKE);
	assert_int_equal(rt_tool_find("shell_exec"), -1);
	assert_int_equal(rt_tool_find(NULL), -1);
	assert_int_equal(rt_tool_capability(RT_TOOL_HTTP_FETCH), RT_CAP_HTTP_FETCH);
	assert_string_equal(rt_tool_capability_name(RT_TOOL_AGENT_INVOKE), "agent_invoke");
	assert_string_equal(rt_tool_capability_name(RT_TOOL_KV_PUT), "kv.write");
	assert_int_equal(rt_cap_bit("http_fetch"), RT_CAP_HTTP_FETCH);
	assert_int_equal(rt_cap_bit("agent_invoke"), RT_CAP_AGENT_INVOKE);
	assert_string_equal(rt_tool_name(99), "unknown");
}

/* ---- agent_invoke's guards, without an engine ---------------------------------------- */

static void test_tools__agent_invoke_guards(void **state)
{
	rt_policy *p = policy_with_hosts("caller", NULL, 0);
	rt_host_env env = {0};
	rt_call_chain chain = {{"top", "middle", "caller"}, 3, 0};
	rt_tool_result tr;
	json_t *r;

	(void)state;
	/* Arguments. */
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"input\":{}}");
	assert_string_equal(error_code(r), "invalid_args");
	json_decref(r);
	free(tr.answer);
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"../etc\",\"input\":{}}");
	assert_string_equal(error_code(r), "invalid_args");
	json_decref(r);
	free(tr.answer);
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"x\",\"input\":[1]}");
	assert_string_equal(error_code(r), "invalid_args");
	json_decref(r);
	free(tr.answer);
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain,
		     "{\"agent\":\"x\",\"input\":{},\"inputs\":{}}");
	assert_string_equal(error_code(r), "invalid_args");
	assert_string_equal(tr.what, "");
	json_decref(r);
	free(tr.answer);
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "[]");
	json_decref(r);
	free(tr.answer);
	/* Cycle: any agent on the chain, the caller itself included. */
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"top\",\"input\":{}}");
	assert_string_equal(error_code(r), "cycle");
	assert_non_null(strstr(error_message(r), "top -> middle -> caller -> top"));
	assert_string_equal(tr.what, "agent_invoke:cycle");
	assert_false(tr.denied);
	json_decref(r);
	free(tr.answer);
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"caller\",\"input\":{}}");
	assert_string_equal(error_code(r), "cycle");
	json_decref(r);
	free(tr.answer);
	/* Depth: 3 on the chain, limit 3. */
	env.max_invoke_depth = 3;
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"next\",\"input\":{}}");
	assert_string_equal(error_code(r), "depth_limit");
	assert_non_null(strstr(error_message(r), "top -> middle -> caller -> next"));
	assert_string_equal(tr.what, "agent_invoke:depth");
	json_decref(r);
	free(tr.answer);
	/* Under the limit, but no engine: unavailable, not counted as a denial. */
	env.max_invoke_depth = 4;
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"next\",\"inputs\":{}}");
	assert_string_equal(error_code(r), "unavailable");
	assert_string_equal(tr.what, "");
	json_decref(r);
	free(tr.answer);
	/* The limit is capped at RT_INVOKE_DEPTH_MAX; the default is 4. */
	env.max_invoke_depth = 0;
	chain.names[3] = "fourth";
	chain.depth = 4;
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"next\",\"input\":{}}");
	assert_string_equal(error_code(r), "depth_limit");
	json_decref(r);
	free(tr.answer);
	/* The caller's deadline has passed: nothing runs. */
	env.max_invoke_depth = 8;
	chain.deadline_ns = 1;
	r = run_tool(&tr, RT_TOOL_AGENT_INVOKE, p, &env, &chain, "{\"agent\":\"next\",\"input\":{}}");
	assert_string_equal(error_code(r), "timeout");
	json_decref(r);
	free(tr.answer);
	rt_policy_free(p);
}

/* ---- http_fetch against the fixture server ------------------------------------------- */

static const char *const local_hosts[] = {"127.0.0.1"};

static void test_tools__http_fetch_allowed_host(void **state)
{
	rt_policy *p = policy_with_hosts("f", local_hosts, 1);
	rt_tool_result tr;
	char url[128];
	json_t *r, *res;
	unsigned before = atomic_load(&srv.hits_ok);

	(void)state;
	loopback_url(url, sizeof(url), "/ok#fragment");
	r = fetch(&tr, p, url);
	assert_true(json_is_true(json_object_get(r, "ok")));
	res = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 200);
	assert_string_equal(json_string_value(json_object_get(res, "body")), "hello");
	assert_string_equal(json_string_value(json_object_get(res, "encoding")), "text");
	assert_false(json_is_true(json_object_get(res, "truncated")));
	assert_int_equal(json_integer_value(json_object_get(res, "bytes")), 5);
	assert_string_equal(json_string_value(json_object_get(json_object_get(res, "headers"), "content-type")),
			    "text/plain; charset=utf-8");
	loopback_url(url, sizeof(url), "/ok");
	assert_string_equal(json_string_value(json_object_get(res, "url")), url);
	assert_int_equal(atomic_load(&srv.hits_ok), before + 1);
	assert_string_equal(tr.what, "");
	json_decref(r);
	free(tr.answer);
	/* Any status is an answer the agent reads. */
	loopback_url(url, sizeof(url), "/missing");
	r = fetch(&tr, p, url);
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "status")), 404);
	json_decref(r);
	free(tr.answer);
	/* UTF-8 text stays text; bytes that are not text come back in base64. */
	loopback_url(url, sizeof(url), "/utf8");
	r = fetch(&tr, p, url);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "body")),
			    "caf\xc3\xa9 \"quoted\" \\ line\n");
	json_decref(r);
	free(tr.answer);
	loopback_url(url, sizeof(url), "/bin");
	r = fetch(&tr, p, url);
	res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res, "encoding")), "base64");
	assert_int_equal(json_string_length(json_object_get(res, "body")), 344);
	assert_int_equal(strncmp(json_string_value(json_object_get(res, "body")), "AAECAwQF", 8), 0);
	json_decref(r);
	free(tr.answer);
	/* Arguments. */
	r = run_tool(&tr, RT_TOOL_HTTP_FETCH, p, &(rt_host_env){0}, NULL, "{\"url\":5}");
	assert_string_equal(error_code(r), "invalid_args");
	json_decref(r);
	free(tr.answer);
	/* Nothing listens: the agent hears it (not a denial). */
	r = fetch(&tr, p, "http://127.0.0.1:1/");
	assert_string_equal(error_code(r), "fetch_failed");
	assert_string_equal(tr.what, "");
	json_decref(r);
	free(tr.answer);
	rt_policy_free(p);
}

static void expect_denied(const rt_policy *p, const char *url, const char *what)
{
	rt_tool_result tr;
	unsigned before = atomic_load(&srv.hits);
	json_t *r = fetch(&tr, p, url);

	if (r || !tr.denied)
		fail_msg("%s was not refused: %s", url, tr.answer ? tr.answer : "");
	assert_string_equal(tr.what, what);
	assert_true(strlen(tr.why) > 10);
	/* Refused before anything was sent. */
	assert_int_equal(atomic_load(&srv.hits), before);
	free(tr.answer);
}

static void test_tools__http_fetch_denied_hosts_never_connect(void **state)
{
	rt_policy *p = policy_with_hosts("f", local_hosts, 1), *none;
	char url[160];

	(void)state;
	/* localhost is the same server, but not on this agent's list. */
	snprintf(url, sizeof(url), "http://localhost:%u/ok", srv.port);
	expect_denied(p, url, "http_fetch:host");
	snprintf(url, sizeof(url), "http://[::1]:%u/ok", srv.port);
	expect_denied(p, url, "http_fetch:host");
	expect_denied(p, "https://evil.example/", "http_fetch:host");
	/* The same loopback address written another way is a parse refusal. */
	snprintf(url, sizeof(url), "http://2130706433:%u/ok", srv.port);
	expect_denied(p, url, "http_fetch:url");
	snprintf(url, sizeof(url), "http://0177.0.0.1:%u/ok", srv.port);
	expect_denied(p, url, "http_fetch:url");
	snprintf(url, sizeof(url), "http://127.1:%u/ok", srv.port);
	expect_denied(p, url, "http_fetch:url");
	snprintf(url, sizeof(url), "http://x@127.0.0.1:%u/ok", srv.port);
	expect_denied(p, url, "http_fetch:url");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u\\@evil.example/", srv.port);
	expect_denied(p, url, "http_fetch:url");
	expect_denied(p, "file:///etc/passwd", "http_fetch:url");
	expect_denied(p, "gopher://127.0.0.1:70/", "http_fetch:url");
	rt_policy_free(p);
	/* An agent built without hosts reaches nothing. */
	none = policy_with_hosts("g", NULL, 0);
	loopback_url(url, sizeof(url), "/ok");
	expect_denied(none, url, "http_fetch:host");
	rt_policy_free(none);
}

static void test_tools__http_fetch_redirects(void **state)
{
	rt_policy *p = policy_with_hosts("f", local_hosts, 1);
	rt_tool_result tr;
	char url[160], want[160];
	unsigned ok_before, loop_before;
	json_t *r, *res;

	(void)state;
	/* Relative and absolute redirects inside the list are followed. */
	loopback_url(url, sizeof(url), "/redir-ok");
	r = fetch(&tr, p, url);
	res = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 200);
	assert_string_equal(json_string_value(json_object_get(res, "body")), "hello");
	loopback_url(want, sizeof(want), "/ok");
	assert_string_equal(json_string_value(json_object_get(res, "url")), want);
	json_decref(r);
	free(tr.answer);
	loopback_url(url, sizeof(url), "/redir-abs");
	r = fetch(&tr, p, url);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "body")), "hello");
	json_decref(r);
	free(tr.answer);
	/* Exactly RT_FETCH_MAX_REDIRECTS redirects: fine. */
	loopback_url(url, sizeof(url), "/chain/0");
	r = fetch(&tr, p, url);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "body")),
			    "end of chain");
	json_decref(r);
	free(tr.answer);
	/* A redirect to a host outside the list is refused and not followed. */
	ok_before = atomic_load(&srv.hits_ok);
	loopback_url(url, sizeof(url), "/redir-evil");
	r = fetch(&tr, p, url);
	assert_null(r);
	assert_true(tr.denied);
	assert_string_equal(tr.what, "http_fetch:redirect");
	assert_non_null(strstr(tr.why, "evil.example"));
	free(tr.answer);
	loopback_url(url, sizeof(url), "/redir-localhost");
	r = fetch(&tr, p, url);
	assert_null(r);
	assert_string_equal(tr.what, "http_fetch:redirect");
	free(tr.answer);
	assert_int_equal(atomic_load(&srv.hits_ok), ok_before);
	loopback_url(url, sizeof(url), "/redir-metadata");
	r = fetch(&tr, p, url);
	assert_null(r);
	assert_string_equal(tr.what, "http_fetch:redirect");
	free(tr.answer);
	loopback_url(url, sizeof(url), "/redir-userinfo");
	r = fetch(&tr, p, url);
	assert_null(r);
	assert_string_equal(tr.what, "http_fetch:redirect");
	free(tr.answer);
	loopback_url(url, sizeof(url), "/redir-ftp");
	r = fetch(&tr, p, url);
	assert_null(r);
	assert_string_equal(tr.what, "http_fetch:redirect");
	free(tr.answer);
	/* The raw Location is checked, not what libcurl would make of it: hosts
	 * refused as direct URLs are refused as redirect targets too, and none
	 * of them reaches the server. */
	{
		static const char *const evasive[] = {"/redir-hex", "/redir-short", "/redir-decimal",
						      "/redir-pct", "/redir-port0",
						      "/redir-schemerel-hex"};
		size_t i;

		ok_before = atomic_load(&srv.hits_ok);
		for (i = 0; i < sizeof(evasive) / sizeof(*evasive); i++) {
			loopback_url(url, sizeof(url), evasive[i]);
			r = fetch(&tr, p, url);
			if (r)
				fail_msg("%s was followed: %s", evasive[i], tr.answer);
			assert_true(tr.denied);
			assert_string_equal(tr.what, "http_fetch:redirect");
			free(tr.answer);
		}
		assert_int_equal(atomic_load(&srv.hits_ok), ok_before);
	}
	/* Scheme-relative and dot-segment Locations resolve against the request. */
	loopback_url(url, sizeof(url), "/redir-schemerel");
	r = fetch(&tr, p, url);
	res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res, "body")), "hello");
	loopback_url(want, sizeof(want), "/ok?x=1");
	assert_string_equal(json_string_value(json_object_get(res, "url")), want);
	json_decref(r);
	free(tr.answer);
	loopback_url(url, sizeof(url), "/dir/redir-dotdot");
	r = fetch(&tr, p, url);
	res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res, "body")), "hello");
	json_decref(r);
	free(tr.answer);
	/* A loop ends after the cap: the first request and 5 redirects. */
	loop_before = atomic_load(&srv.hits_loop);
	loopback_url(url, sizeof(url), "/loop");
	r = fetch(&tr, p, url);
	assert_string_equal(error_code(r), "too_many_redirects");
	assert_int_equal(atomic_load(&srv.hits_loop) - loop_before, RT_FETCH_MAX_REDIRECTS + 1);
	json_decref(r);
	free(tr.answer);
	rt_policy_free(p);
}

static void test_tools__http_fetch_caps_the_body(void **state)
{
	rt_policy *p = policy_with_hosts("f", local_hosts, 1);
	rt_tool_result tr;
	char url[128];
	json_t *r, *res;

	(void)state;
	loopback_url(url, sizeof(url), "/big");
	r = fetch(&tr, p, url);
	res = json_object_get(r, "result");
	assert_true(json_is_true(json_object_get(res, "truncated")));
	assert_int_equal(json_integer_value(json_object_get(res, "bytes")), RT_FETCH_BODY_MAX);
	assert_int_equal(json_string_length(json_object_get(res, "body")), RT_FETCH_BODY_MAX);
	assert_true(tr.answer_len < RT_MAX_HOST_REQUEST);
	json_decref(r);
	free(tr.answer);
	rt_policy_free(p);
}

static void test_tools__http_fetch_refuses_rebinding(void **state)
{
	const char *hosts[2] = {"127.0.0.1", g.alias};
	rt_policy *p;
	rt_tool_result tr;
	char url[400];
	unsigned before = atomic_load(&srv.hits);
	json_t *r;

	(void)state;
	if (!g.alias[0]) {
		fprintf(stderr, "  (no non-loopback alias of 127.x in /etc/hosts: rebinding check "
				"covered by test_tools__connect_address_rules only)\n");
		return;
	}
	/* An allow-listed name whose DNS answer is loopback: refused at connect. */
	p = policy_with_hosts("f", hosts, 2);
	snprintf(url, sizeof(url), "https://%s:%u/ok", g.alias, srv.port);
	r = fetch(&tr, p, url);
	assert_null(r);
	assert_true(tr.denied);
	assert_string_equal(tr.what, "http_fetch:address");
	assert_non_null(strstr(tr.why, "127."));
	assert_int_equal(atomic_load(&srv.hits), before);
	free(tr.answer);
	rt_policy_free(p);
}

static void test_tools__http_fetch_respects_the_deadline(void **state)
{
	rt_policy *p = policy_with_hosts("f", local_hosts, 1);
	rt_call_chain chain = {{"f"}, 1, 1}; /* long past */
	rt_tool_result tr;
	char args[160];
	unsigned before = atomic_load(&srv.hits);
	json_t *r;

	(void)state;
	snprintf(args, sizeof(args), "{\"url\":\"http://127.0.0.1:%u/ok\"}", srv.port);
	r = run_tool(&tr, RT_TOOL_HTTP_FETCH, p, &(rt_host_env){0}, &chain, args);
	assert_string_equal(error_code(r), "timeout");
	assert_int_equal(atomic_load(&srv.hits), before);
	json_decref(r);
	free(tr.answer);
	rt_policy_free(p);
}

/* ---- through the engine ------------------------------------------------------------ */

static json_t *invoke(rt_engine *e, const char *name, const char *inputs_json, rt_invoke_result *res)
{
	char req[1024];

	snprintf(req, sizeof(req), "{\"inputs\":%s}", inputs_json);
	assert_int_equal(rt_engine_invoke(e, name, NULL, req, strlen(req), res), 0);
	return json_loadb(res->body, res->body_len, 0, NULL);
}

static bool log_has(const char *needle)
{
	char line[4096];
	bool found = false;

	fflush(g.log);
	rewind(g.log);
	while (!found && fgets(line, sizeof(line), g.log))
		found = strstr(line, needle) != NULL;
	fseek(g.log, 0, SEEK_END);
	return found;
}

static void test_tools__engine_fetch_workflow(void **state)
{
	rt_invoke_result res;
	rt_engine *e;
	char inputs[256];
	uint64_t denials = rt_metrics_get_label(RT_M_DENIALS, "http_fetch:host");
	unsigned before;
	json_t *j;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0);
	snprintf(inputs, sizeof(inputs), "{\"url\":\"http://127.0.0.1:%u/ok\"}", srv.port);
	j = invoke(e, "fetch-steps", inputs, &res);
	if (res.error_code)
		fail_msg("%s", res.body);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(j, "output"), "result"), "body")),
			    "hello");
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* A denied host stops the workflow: tool_denied (403), counted and logged. */
	before = atomic_load(&srv.hits);
	snprintf(inputs, sizeof(inputs), "{\"url\":\"http://localhost:%u/ok\"}", srv.port);
	j = invoke(e, "fetch-steps", inputs, &res);
	assert_string_equal(res.error_code, "tool_denied");
	assert_int_equal(res.http_status, 403);
	assert_int_equal(atomic_load(&srv.hits), before);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "http_fetch:host"), denials + 1);
	assert_true(log_has("host localhost is not on the allow-list"));
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* A redirect to a denied host, the same. */
	snprintf(inputs, sizeof(inputs), "{\"url\":\"http://127.0.0.1:%u/redir-evil\"}", srv.port);
	j = invoke(e, "fetch-steps", inputs, &res);
	assert_string_equal(res.error_code, "tool_denied");
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* A loop: the agent's step fails with the tool's error. */
	snprintf(inputs, sizeof(inputs), "{\"url\":\"http://127.0.0.1:%u/loop\"}", srv.port);
	j = invoke(e, "fetch-steps", inputs, &res);
	assert_string_equal(res.error_code, "step_failed");
	assert_non_null(strstr(res.error_message, "too_many_redirects"));
	json_decref(j);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
}

static void test_tools__engine_model_sees_refusal(void **state)
{
	rt_invoke_result res;
	rt_engine *e;
	char url[160];
	unsigned before;
	uint64_t denials;
	json_t *j;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0);
	/* The model asks for a host outside the list: refused, nothing sent,
	 * counted. The guest tells the model (a tool_denied tool message, so it
	 * can answer without the page); a guest library that stops the request
	 * instead answers tool_denied. Either way the page never reaches it. */
	snprintf(url, sizeof(url), "http://localhost:%u/ok", srv.port);
	model_set(url);
	before = atomic_load(&srv.hits);
	denials = rt_metrics_get_label(RT_M_DENIALS, "http_fetch:host");
	j = invoke(e, "fetch-llm", "{}", &res);
	assert_int_equal(atomic_load(&srv.hits), before);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "http_fetch:host"), denials + 1);
	if (res.error_code) {
		assert_string_equal(res.error_code, "tool_denied");
		assert_null(model.seen);
	} else {
		assert_non_null(model.seen);
		assert_non_null(strstr(model.seen, "tool_denied"));
		assert_null(strstr(model.seen, "hello"));
	}
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* An allowed one: the model reads the page. */
	loopback_url(url, sizeof(url), "/ok");
	model_set(url);
	j = invoke(e, "fetch-llm", "{}", &res);
	if (res.error_code)
		fail_msg("%s", res.body);
	assert_non_null(model.seen);
	assert_non_null(strstr(model.seen, "\"status\":200"));
	assert_non_null(strstr(model.seen, "hello"));
	json_decref(j);
	rt_invoke_result_clear(&res);
	model_set(NULL);
	rt_engine_close(e);
}

static void test_tools__engine_invoke_uses_callee_capabilities(void **state)
{
	rt_invoke_result res;
	rt_engine *e;
	rt_kv *kv = NULL;
	char *v = NULL;
	size_t vlen = 0;
	uint64_t kv_denials = rt_metrics_get_label(RT_M_DENIALS, "kv.write");
	uint64_t invocations = rt_metrics_get(RT_M_INVOCATIONS);
	json_t *j, *out;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0);
	/* A -> B: B's output comes back as A's step result. */
	j = invoke(e, "relay-a", "{\"next\":\"leaf\"}", &res);
	if (res.error_code)
		fail_msg("%s", res.body);
	out = json_object_get(json_object_get(j, "output"), "result");
	assert_non_null(json_object_get(json_object_get(out, "steps"), "now"));
	assert_int_equal(rt_metrics_get(RT_M_INVOCATIONS), invocations + 2);
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* relay-b has no kv capability; keeper, which it invokes, writes with its own. */
	j = invoke(e, "relay-b", "{\"next\":\"keeper\",\"n2\":\"relay-b\"}", &res);
	if (res.error_code)
		fail_msg("%s", res.body);
	assert_true(json_is_true(json_object_get(
		json_object_get(json_object_get(json_object_get(j, "output"), "result"), "result"),
		"stored")));
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* relay-a holds kv.write; writer does not, and does not get it from its caller. */
	j = invoke(e, "relay-a", "{\"next\":\"writer\"}", &res);
	assert_string_equal(res.error_code, "step_failed");
	assert_non_null(strstr(res.error_message, "tool_denied"));
	assert_non_null(strstr(res.error_message, "writer"));
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "kv.write"), kv_denials + 1);
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* An unknown callee. */
	j = invoke(e, "relay-a", "{\"next\":\"nobody\"}", &res);
	assert_string_equal(res.error_code, "step_failed");
	assert_non_null(strstr(res.error_message, "not_found"));
	json_decref(j);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
	/* What the two callees left in their own namespaces. */
	assert_int_equal(rt_kv_open(&kv, g.data), 0);
	assert_int_equal(rt_kv_get(kv, "keeper", "kept", 4, &v, &vlen), 0);
	assert_string_equal(v, "\"from relay-b\"");
	free(v);
	assert_int_equal(rt_kv_get(kv, "writer", "kept", 4, &v, &vlen), AF_ENOTFOUND);
	assert_int_equal(rt_kv_get(kv, "relay-a", "kept", 4, &v, &vlen), AF_ENOTFOUND);
	rt_kv_close(kv);
}

static void test_tools__engine_invoke_cycle_refused(void **state)
{
	rt_invoke_result res;
	rt_engine *e;
	uint64_t cycles = rt_metrics_get_label(RT_M_DENIALS, "agent_invoke:cycle");
	json_t *j;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0);
	/* relay-a -> relay-b -> relay-a: refused at relay-b. */
	j = invoke(e, "relay-a", "{\"next\":\"relay-b\",\"n2\":\"relay-a\",\"n3\":\"leaf\"}", &res);
	assert_string_equal(res.error_code, "step_failed");
	assert_non_null(strstr(res.error_message, "cycle"));
	assert_non_null(strstr(res.error_message, "relay-a -> relay-b -> relay-a"));
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "agent_invoke:cycle"), cycles + 1);
	assert_true(log_has("agent_invoke refused a cycle: relay-a -> relay-b -> relay-a"));
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* An agent invoking itself. */
	j = invoke(e, "relay-c", "{\"next\":\"relay-c\"}", &res);
	assert_string_equal(res.error_code, "step_failed");
	assert_non_null(strstr(res.error_message, "relay-c -> relay-c"));
	json_decref(j);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
}

static void test_tools__engine_invoke_depth_limit(void **state)
{
	static const char chain[] = "{\"next\":\"relay-b\",\"n2\":\"relay-c\",\"n3\":\"leaf\"}";
	rt_invoke_result res;
	rt_engine *e;
	uint64_t depth = rt_metrics_get_label(RT_M_DENIALS, "agent_invoke:depth");
	json_t *j;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	/* Four agents on the chain: fine under the default limit of 4. */
	e = open_engine(0);
	j = invoke(e, "relay-a", chain, &res);
	if (res.error_code)
		fail_msg("%s", res.body);
	json_decref(j);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
	/* With a limit of 3, relay-c may not invoke leaf. */
	e = open_engine(3);
	j = invoke(e, "relay-a", chain, &res);
	assert_string_equal(res.error_code, "step_failed");
	assert_non_null(strstr(res.error_message, "depth_limit"));
	assert_non_null(strstr(res.error_message, "relay-a -> relay-b -> relay-c -> leaf"));
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "agent_invoke:depth"), depth + 1);
	json_decref(j);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
}

static void test_tools__engine_callee_ends_by_the_callers_deadline(void **state)
{
	struct timespec t;
	rt_invoke_result res;
	rt_engine *e;
	int64_t before_ms, after_ms;
	json_t *j;

	(void)state;
	assert_int_equal(rt_sandbox_install_handlers(), 0);
	e = open_engine(0);
	model_set(NULL);
	/* relay-a (20 s) invokes fetch-llm (30 s of its own): the model call
	 * ends by relay-a's deadline, which began before `after` (give or take
	 * the provider's slack of a few ms; unbounded it would be 10 s later). */
	j = invoke(e, "relay-a", "{\"next\":\"fetch-llm\"}", &res);
	if (res.error_code)
		fail_msg("%s", res.body);
	clock_gettime(CLOCK_MONOTONIC, &t);
	after_ms = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
	assert_int_equal(model.calls, 1);
	assert_true(model.deadline_ms > 0);
	assert_true(model.deadline_ms <= after_ms + 20000 + 1000);
	json_decref(j);
	rt_invoke_result_clear(&res);
	/* Called alone, fetch-llm has its own 30 s. */
	clock_gettime(CLOCK_MONOTONIC, &t);
	before_ms = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
	j = invoke(e, "fetch-llm", "{}", &res);
	assert_true(model.deadline_ms >= before_ms + 30000);
	json_decref(j);
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tools__url_parse_normalises),
		cmocka_unit_test(test_tools__url_parse_refuses_hostile_urls),
		cmocka_unit_test(test_tools__allow_list_exact_wildcard_and_scheme),
		cmocka_unit_test(test_tools__host_entries_normalise),
		cmocka_unit_test(test_tools__host_rule_is_the_manifests),
		cmocka_unit_test(test_tools__connect_address_rules),
		cmocka_unit_test(test_tools__manifest_records_hosts),
		cmocka_unit_test(test_tools__policy_hosts_are_the_intersection),
		cmocka_unit_test(test_tools__catalogue),
		cmocka_unit_test(test_tools__agent_invoke_guards),
		cmocka_unit_test(test_tools__http_fetch_allowed_host),
		cmocka_unit_test(test_tools__http_fetch_denied_hosts_never_connect),
		cmocka_unit_test(test_tools__http_fetch_redirects),
		cmocka_unit_test(test_tools__http_fetch_caps_the_body),
		cmocka_unit_test(test_tools__http_fetch_refuses_rebinding),
		cmocka_unit_test(test_tools__http_fetch_respects_the_deadline),
		cmocka_unit_test(test_tools__engine_fetch_workflow),
		cmocka_unit_test(test_tools__engine_model_sees_refusal),
		cmocka_unit_test(test_tools__engine_invoke_uses_callee_capabilities),
		cmocka_unit_test(test_tools__engine_invoke_cycle_refused),
		cmocka_unit_test(test_tools__engine_invoke_depth_limit),
		cmocka_unit_test(test_tools__engine_callee_ends_by_the_callers_deadline),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
