/*
 * exec.c - one invocation of a loaded agent (see rt/exec.h): the instance
 * lifecycle inside the sandbox, the `af` host functions with run-time
 * capability checks, the dispatch to the builtin tools (tools.c), the call
 * chain and deadline of agent_invoke callees, and the mapping of what happened
 * (the guest's answer or a trap) to a stable error code and HTTP status.
 *
 * Everything the host functions allocate (the pending result) belongs to
 * the invocation record, never to the instance, so an instance stopped at
 * any point leaks nothing: the record is cleaned up after the sandbox call
 * ends, whatever happened inside it.
 */
#include "rt/exec.h"

#include "art/error.h"
#include "art/limits.h"
#include "rt/log.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"
#include "rt/tools.h"
#include "rt/trace.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <wasm-rt.h>

#define DEFAULT_MAX_PAGES 1024u
#define DEFAULT_MAX_TIMEOUT_MS 30000u
#define DESCRIBE_TIMEOUT_MS 5000u
#define RANDOM_MAX ((uint32_t)64 << 10)

/* ---- policies -------------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t bit;
} cap_names[] = {
	{"log", RT_CAP_LOG},           {"clock", RT_CAP_CLOCK},         {"random", RT_CAP_RANDOM},
	{"llm_chat", RT_CAP_LLM_CHAT}, {"tool_call", RT_CAP_TOOL_CALL}, {"kv.read", RT_CAP_KV_READ},
	{"kv.write", RT_CAP_KV_WRITE},  {"http_fetch", RT_CAP_HTTP_FETCH},
	{"agent_invoke", RT_CAP_AGENT_INVOKE},
};

uint32_t rt_cap_bit(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (strcmp(name, cap_names[i].name) == 0)
			return cap_names[i].bit;
	return 0;
}

static void hosts_free(char **hosts, size_t n)
{
	size_t i;

	for (i = 0; hosts && i < n; i++)
		free(hosts[i]);
	free(hosts);
}

int rt_policy_set_hosts(rt_policy *p, const char *const *hosts, size_t n)
{
	char **list = NULL, norm[256];
	size_t i, k = 0;

	if (!p)
		return art_error_set(AF_EINVAL, "policy: NULL argument");
	if (n && !(list = calloc(n, sizeof(*list))))
		return art_error_set(AF_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (rt_host_entry_normalize(norm, sizeof(norm), hosts[i]) < 0) {
			hosts_free(list, k);
			return art_error_prefix(AF_ECORRUPT, "manifest hosts");
		}
		if (!(list[k] = strdup(norm))) {
			hosts_free(list, k);
			return art_error_set(AF_ENOMEM, "out of memory");
		}
		k++;
	}
	hosts_free(p->hosts, p->n_hosts);
	p->hosts = list;
	p->n_hosts = k;
	return 0;
}

void rt_policy_free(rt_policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n_tools; i++)
		free(p->tools[i].name);
	free(p->tools);
	hosts_free(p->hosts, p->n_hosts);
	free(p->name);
	free(p->version);
	free(p->ref);
	free(p->provider);
	free(p);
}

int rt_policy_parse(rt_policy **out, const char *describe, size_t len, const char *const *caps,
		    size_t n_caps)
{
	rt_policy *p = NULL;
	json_t *root, *tools, *limits, *model, *t;
	const char *name, *version, *provider;
	art_limit_values lv;
	size_t i;
	int rc = 0;

	*out = NULL;
	root = json_loadb(describe, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return art_error_set(AF_ECORRUPT, "describe: not a JSON object");
	}
	name = json_string_value(json_object_get(root, "name"));
	version = json_string_value(json_object_get(root, "version"));
	tools = json_object_get(root, "tools");
	limits = json_object_get(root, "limits");
	model = json_object_get(root, "model");
	if (!name || !version) {
		rc = art_error_set(AF_ECORRUPT, "describe: no name or version");
		goto cleanup;
	}
	if ((tools && !json_is_array(tools)) || (limits && !json_is_object(limits))) {
		rc = art_error_set(AF_ECORRUPT, "describe: tools must be an array, limits an object");
		goto cleanup;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(name)) || !(p->version = strdup(version)) ||
	    asprintf(&p->ref, "%s@%s", name, version) < 0) {
		if (p)
			p->ref = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = art_limits_read(&lv, limits, AF_ECORRUPT, "describe")) < 0)
		goto cleanup;
	p->max_steps = lv.max_steps;
	p->timeout_ms = lv.timeout_ms;
	p->memory_pages = lv.memory_pages;
	p->llm = !json_is_array(json_object_get(root, "steps")) ||
		 json_array_size(json_object_get(root, "steps")) == 0;
	provider = json_string_value(json_object_get(model, "provider"));
	if (provider && !(p->provider = strdup(provider))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (json_array_size(tools)) {
		p->tools = calloc(json_array_size(tools), sizeof(rt_tool));
		if (!p->tools) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	json_array_foreach(tools, i, t) {
		const char *tname = json_string_value(json_object_get(t, "name"));

		if (!tname) {
			rc = art_error_set(AF_ECORRUPT, "describe: tools[%zu] has no name", i);
			goto cleanup;
		}
		if (!(p->tools[i].name = strdup(tname))) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
		p->tools[i].builtin = rt_tool_find(tname);
		p->n_tools++;
	}
	for (i = 0; i < n_caps; i++)
		p->caps |= rt_cap_bit(caps[i]);
	*out = p;
	p = NULL;
cleanup:
	rt_policy_free(p);
	json_decref(root);
	return rc;
}

/* ---- errors ------------------------------------------------------------------ */

static const struct {
	const char *code;
	int status;
} statuses[] = {
	{"invalid_json", 400}, {"invalid_input", 400}, {"tool_denied", 403},
	{"not_found", 404},    {"payload_too_large", 413}, {"step_failed", 422},
	{"step_limit", 422},   {"memory_limit", 422},   {"oom", 422},
	{"trap", 500},         {"internal", 500},       {"llm_error", 502},
	{"agent_refused", 503}, {"timeout", 504}, {"invalid_output", 502},
	{"store_corrupt", 503},
};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))

static const char *stable_code(const char *code)
{
	size_t i;

	for (i = 0; code && i < N_STATUSES; i++)
		if (strcmp(code, statuses[i].code) == 0)
			return statuses[i].code;
	return NULL;
}

int rt_error_status(const char *code)
{
	size_t i;

	if (!code)
		return 200;
	for (i = 0; i < N_STATUSES; i++)
		if (strcmp(code, statuses[i].code) == 0)
			return statuses[i].status;
	return 500;
}

static int set_error_v(rt_invoke_result *res, const char *code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static int set_error_v(rt_invoke_result *res, const char *code, const char *fmt, va_list ap)
{
	char msg[1024];
	json_t *body;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	free(res->body);
	free(res->error_message);
	res->body = NULL;
	res->body_len = 0;
	res->error_code = stable_code(code) ? stable_code(code) : "internal";
	res->http_status = rt_error_status(res->error_code);
	res->error_message = strdup(msg);
	body = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", res->error_code,
			 "message", msg);
	res->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!res->body || !res->error_message)
		return art_error_set(AF_ENOMEM, "out of memory");
	res->body_len = strlen(res->body);
	return 0;
}

int rt_invoke_result_set_error(rt_invoke_result *res, const char *code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = set_error_v(res, code, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- the invocation record ------------------------------------------------------ */

enum { MODE_HANDLE, MODE_DESCRIBE };

typedef struct invocation {
	const art_wasm_native_v1 *n;
	const rt_policy *pol;      /* NULL while describing: nothing is granted */
	const rt_host_env *env;
	const char *ref;           /* agent, for logs */
	int mode;
	void *inst;
	wasm_rt_memory_t *mem;
	const char *input;
	size_t input_len;
	/* set inside the sandbox */
	bool instantiated, returned, alloc_failed;
	uint32_t out_ptr, len_ptr;
	int64_t t_inst;
	int64_t deadline_ms;       /* CLOCK_MONOTONIC ms: the model provider gives up by then */
	/* host state */
	char *pending;
	size_t pending_len;
	uint32_t n_llm, n_tool, n_log, n_denied;
	char stop_msg[256];        /* why a host function stopped the guest */
	rt_call_chain chain;       /* this invocation's (agent_invoke) */
	/* spans of the instance: in the record, not on the sandbox stack, so a
	 * trap that unwinds the guest leaves them for rt_exec_invoke to end */
	rt_span inst_span, guest_span;
	uint32_t n_host;
} invocation;

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The guest's bytes [ptr, ptr+len), or NULL when they are not all inside its
 * memory as it is now (it may have grown since the last call). */
static uint8_t *guest_span(const invocation *iv, uint32_t ptr, uint32_t len)
{
	if (!iv->mem || !iv->mem->data || (uint64_t)ptr + len > iv->mem->size)
		return NULL;
	return iv->mem->data + ptr;
}

/* A host function got a pointer outside the guest's memory: that is the
 * guest's out-of-bounds access. */
static uint8_t *guest_span_or_trap(const invocation *iv, uint32_t ptr, uint32_t len)
{
	uint8_t *p = guest_span(iv, ptr, len);

	if (!p)
		rt_sandbox_trap(RT_TRAP_OOB);
	return p;
}

static uint32_t granted(const invocation *iv)
{
	return iv->pol ? iv->pol->caps : 0;
}

static void deny(invocation *iv, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Count every refusal; log the first RT_MAX_DENIAL_LINES of an invocation
 * (a guest looping on a refused call must not flood the log). */
static void deny(invocation *iv, const char *what, const char *fmt, ...)
{
	char msg[512];
	rt_log_field f = {"what", what, strlen(what)};
	va_list ap;

	rt_metrics_inc_label(RT_M_DENIALS, what);
	if (++iv->n_denied > RT_MAX_DENIAL_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rt_log_emit(iv->env->log, "warn", "denied", iv->ref, msg, strlen(msg), &f, 1);
}

static _Noreturn void stop(invocation *iv, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static _Noreturn void stop(invocation *iv, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(iv->stop_msg, sizeof(iv->stop_msg), fmt, ap);
	va_end(ap);
	rt_sandbox_trap(code);
}

/* Take ownership of s as the pending result; its length for the guest. */
static int32_t set_pending(invocation *iv, char *s, size_t len)
{
	free(iv->pending);
	iv->pending = s;
	iv->pending_len = len;
	if (!s)
		return -2;
	if (len > RT_MAX_HOST_REQUEST) {
		free(iv->pending);
		iv->pending = NULL;
		return -2;
	}
	return (int32_t)len;
}

/* ---- the `af` host functions --------------------------------------------------------- */

static void h_log(void *ctx, uint32_t level, uint32_t ptr, uint32_t len)
{
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	invocation *iv = ctx;
	const uint8_t *text;

	rt_sandbox_host_enter();
	rt_span_add_event(&iv->guest_span, "host.log");
	if (!(granted(iv) & RT_CAP_LOG)) {
		deny(iv, "log", "log is not granted");
		goto out;
	}
	text = guest_span_or_trap(iv, ptr, len);
	iv->n_log++;
	if (iv->n_log <= RT_MAX_LOG_LINES)
		rt_log_emit(iv->env->log, levels[level < 4 ? level : 1], "guest", iv->ref,
			    (const char *)text, len, NULL, 0);
	else if (iv->n_log == RT_MAX_LOG_LINES + 1)
		rt_log_printf(iv->env->log, "warn", "guest", iv->ref,
			      "more than %u log lines in one invocation: the rest are dropped",
			      RT_MAX_LOG_LINES);
out:
	rt_sandbox_host_leave();
}

static uint64_t h_clock_now_ms(void *ctx)
{
	invocation *iv = ctx;
	uint64_t ms = 0;

	rt_sandbox_host_enter();
	rt_span_add_event(&iv->guest_span, "host.clock_now_ms");
	if (granted(iv) & RT_CAP_CLOCK)
		ms = (uint64_t)(mono_ns() / 1000000);
	else
		deny(iv, "clock", "clock_now_ms: clock is not granted");
	rt_sandbox_host_leave();
	return ms;
}

static int32_t h_random_get(void *ctx, uint32_t ptr, uint32_t len)
{
	invocation *iv = ctx;
	int32_t rc = 0;
	uint8_t *dst;
	size_t done = 0;

	rt_sandbox_host_enter();
	rt_span_add_event(&iv->guest_span, "host.random_get");
	if (!(granted(iv) & RT_CAP_RANDOM)) {
		deny(iv, "random", "random_get: random is not granted");
		rc = -1;
		goto out;
	}
	dst = guest_span_or_trap(iv, ptr, len);
	if (len > RANDOM_MAX) {
		rc = -2;
		goto out;
	}
	while (done < len) {
		ssize_t n = getrandom(dst + done, len - done, 0);

		if (n <= 0) {
			rc = -2;
			break;
		}
		done += (size_t)n;
	}
out:
	rt_sandbox_host_leave();
	return rc;
}

/* The client span of a model call, with the OpenTelemetry GenAI attributes
 * known before the call (the provider adds the response's: model, id,
 * token usage, finish reasons). Named "chat {gen_ai.request.model}". */
static void llm_span_start(rt_span *span, const rt_llm_provider *llm, const char *req, size_t len)
{
	json_t *root = NULL;
	const char *model = NULL;
	char name[128];

	if (rt_span_recording(rt_span_current()))
		root = json_loadb(req, len, 0, NULL);
	model = json_string_value(json_object_get(root, "model"));
	snprintf(name, sizeof(name), "chat%s%.100s", model ? " " : "", model ? model : "");
	rt_span_start(span, name, RT_SPAN_CLIENT);
	if (rt_span_recording(span)) {
		json_t *v;

		rt_span_set_str(span, "gen_ai.operation.name", "chat");
		rt_span_set_str(span, "gen_ai.system", llm->name ? llm->name : "unknown");
		if (model)
			rt_span_set_str(span, "gen_ai.request.model", model);
		if (json_is_integer(v = json_object_get(root, "max_completion_tokens")) ||
		    json_is_integer(v = json_object_get(root, "max_tokens")))
			rt_span_set_int(span, "gen_ai.request.max_tokens", json_integer_value(v));
		if (json_is_number(v = json_object_get(root, "temperature"))) {
			char t[32];
			snprintf(t, sizeof(t), "%g", json_number_value(v));
			rt_span_set_str(span, "gen_ai.request.temperature", t);
		}
	}
	json_decref(root);
}

static int32_t h_llm_chat(void *ctx, uint32_t ptr, uint32_t len)
{
	invocation *iv = ctx;
	rt_span span;
	const rt_llm_provider *llm = iv->env->llm;
	char *resp = NULL;
	size_t resp_len = 0;
	const uint8_t *req;
	int32_t rc;

	rt_sandbox_host_enter();
	if (!(granted(iv) & RT_CAP_LLM_CHAT)) {
		deny(iv, "llm_chat", "llm_chat is not granted");
		rc = -1;
		goto out;
	}
	if (++iv->n_llm > iv->pol->max_steps)
		stop(iv, RT_TRAP_STEP_LIMIT, "more than %u model calls (limits.max_steps)",
		     iv->pol->max_steps);
	req = guest_span_or_trap(iv, ptr, len);
	if (len > RT_MAX_HOST_REQUEST) {
		rc = -2;
		goto out;
	}
	if (!llm || (!llm->chat && !llm->chat_call)) {
		rt_log_printf(iv->env->log, "warn", "llm", iv->ref,
			      "llm_chat: no model provider is configured (the agent asks for '%s')",
			      iv->pol->provider ? iv->pol->provider : "any");
		rc = -2;
		goto out;
	}
	iv->n_host++;
	llm_span_start(&span, llm, (const char *)req, len);
	if (rt_llm_chat(llm, &(rt_llm_call){iv->deadline_ms, iv->ref, iv->env->log}, (const char *)req,
			len, &resp, &resp_len) < 0) {
		rt_log_printf(iv->env->log, "warn", "llm", iv->ref, "llm_chat via %s failed: %s",
			      llm->name ? llm->name : "provider", art_error_last());
		rt_span_set_str(&span, "error.type", "llm_error");
		rt_span_set_error(&span, art_error_last());
		rt_span_end(&span);
		free(resp);
		rc = -2;
		goto out;
	}
	rt_span_end(&span);
	if (resp_len > RT_LLM_RESPONSE_MAX) {
		free(resp);
		rc = -2;
		goto out;
	}
	{
		char call[16];
		rt_log_field f[2] = {{"provider", llm->name ? llm->name : "provider", 0},
				     {"call", call, 0}};

		f[0].len = strlen(f[0].value);
		f[1].len = (size_t)snprintf(call, sizeof(call), "%u", iv->n_llm);
		rt_log_emit(iv->env->log, "info", "llm", iv->ref, "llm_chat answered",
			    strlen("llm_chat answered"), f, 2);
	}
	rc = set_pending(iv, resp, resp_len);
out:
	rt_sandbox_host_leave();
	return rc;
}

static int32_t h_tool_call(void *ctx, uint32_t ptr, uint32_t len)
{
	invocation *iv = ctx;
	json_t *req = NULL, *args;
	const char *tool;
	char *answer = NULL, label[80];
	size_t answer_len = 0, i;
	const uint8_t *text;
	int32_t rc = -1;
	int builtin = -1;
	rt_tool_result tr;
	rt_tool_ctx tctx;
	rt_span span;

	memset(&tr, 0, sizeof(tr));
	rt_sandbox_host_enter();
	if (!(granted(iv) & RT_CAP_TOOL_CALL)) {
		deny(iv, "tool_call", "tool_call is not granted");
		goto out;
	}
	if (++iv->n_tool > iv->pol->max_steps * RT_TOOL_CALLS_PER_STEP)
		stop(iv, RT_TRAP_STEP_LIMIT, "more than %u tool calls (%u per step of limits.max_steps)",
		     iv->pol->max_steps * RT_TOOL_CALLS_PER_STEP, RT_TOOL_CALLS_PER_STEP);
	text = guest_span_or_trap(iv, ptr, len);
	if (len > RT_MAX_HOST_REQUEST ||
	    !(req = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL)) ||
	    !(tool = json_string_value(json_object_get(req, "tool")))) {
		rc = -2;
		goto out;
	}
	args = json_object_get(req, "args");
	for (i = 0; i < iv->pol->n_tools; i++)
		if (strcmp(iv->pol->tools[i].name, tool) == 0)
			break;
	if (i < iv->pol->n_tools)
		builtin = iv->pol->tools[i].builtin;
	/* Bounded metric labels: only catalogue names, never guest text. */
	snprintf(label, sizeof(label), "tool:%s", rt_tool_name(rt_tool_find(tool)));
	if (i == iv->pol->n_tools) {
		deny(iv, label, "tool '%.64s' is not in the agent's tool table", tool);
		goto out;
	}
	if (builtin < 0) {
		deny(iv, label, "tool '%.64s' is not offered by this runtime", tool);
		goto out;
	}
	if (!(granted(iv) & rt_tool_capability(builtin))) {
		deny(iv, rt_tool_capability_name(builtin),
		     "tool %s needs capability %s, which is not granted", rt_tool_name(builtin),
		     rt_tool_capability_name(builtin));
		goto out;
	}
	tctx.policy = iv->pol;
	tctx.env = iv->env;
	tctx.chain = &iv->chain;
	iv->n_host++;
	{
		char span_name[80];

		/* GenAI semantic conventions: "execute_tool {gen_ai.tool.name}" */
		snprintf(span_name, sizeof(span_name), "execute_tool %s", rt_tool_name(builtin));
		rt_span_start(&span, span_name,
			      builtin == RT_TOOL_HTTP_FETCH ? RT_SPAN_CLIENT : RT_SPAN_INTERNAL);
		rt_span_set_str(&span, "gen_ai.operation.name", "execute_tool");
		rt_span_set_str(&span, "gen_ai.tool.name", rt_tool_name(builtin));
	}
	rt_tool_run(&tr, builtin, &tctx, args);
	if (tr.denied || tr.what[0])
		rt_span_set_error(&span, tr.what[0] ? tr.what : "denied");
	rt_span_end(&span);
	if (tr.what[0])
		deny(iv, tr.what, "%s", tr.why);
	if (tr.denied)
		goto out;
	answer = tr.answer;
	answer_len = tr.answer_len;
	tr.answer = NULL;
	rc = set_pending(iv, answer, answer_len);
out:
	free(tr.answer);
	json_decref(req);
	rt_sandbox_host_leave();
	return rc;
}

static int32_t h_result_read(void *ctx, uint32_t ptr, uint32_t len)
{
	invocation *iv = ctx;
	uint8_t *dst;
	size_t n;
	int32_t rc = -1;

	rt_sandbox_host_enter();
	if (iv->pending) {
		n = len < iv->pending_len ? len : iv->pending_len;
		dst = guest_span_or_trap(iv, ptr, (uint32_t)n);
		memcpy(dst, iv->pending, n);
		free(iv->pending);
		iv->pending = NULL;
		iv->pending_len = 0;
		rc = (int32_t)n;
	}
	rt_sandbox_host_leave();
	return rc;
}

static const art_wasm_host_v1 host_functions = {
	h_log, h_clock_now_ms, h_random_get, h_llm_chat, h_tool_call, h_result_read,
};

/* ---- the guest section (runs inside rt_sandbox_run) ---------------------------------- */

static void guest_entry(void *arg)
{
	invocation *iv = arg;
	const art_wasm_native_v1 *n = iv->n;
	uint32_t in = 0;
	uint8_t *dst;

	if (iv->mode == MODE_HANDLE)
		rt_span_start(&iv->inst_span, "instantiate", RT_SPAN_INTERNAL);
	n->instantiate(iv->inst, &host_functions, iv);
	iv->instantiated = true;
	iv->mem = n->memory(iv->inst);
	n->initialize(iv->inst);
	iv->t_inst = mono_ns();
	if (iv->mode == MODE_HANDLE) {
		rt_span_end(&iv->inst_span);
		rt_span_start(&iv->guest_span, "guest", RT_SPAN_INTERNAL);
	}
	if (iv->mode == MODE_HANDLE) {
		in = n->alloc(iv->inst, iv->input_len ? (uint32_t)iv->input_len : 1);
		if (!in || !(dst = guest_span(iv, in, (uint32_t)iv->input_len))) {
			iv->alloc_failed = true;
			return;
		}
		memcpy(dst, iv->input, iv->input_len);
	}
	iv->len_ptr = n->alloc(iv->inst, 4);
	if (!iv->len_ptr) {
		iv->alloc_failed = true;
		return;
	}
	if (iv->mode == MODE_HANDLE)
		iv->out_ptr = n->handle(iv->inst, in, (uint32_t)iv->input_len, iv->len_ptr);
	else
		iv->out_ptr = n->describe(iv->inst, iv->len_ptr);
	iv->returned = true;
	if (iv->mode == MODE_HANDLE) {
		rt_span_set_int(&iv->guest_span, "agentfactory.host_calls", iv->n_host);
		rt_span_end(&iv->guest_span);
	}
}

static int instance_alloc(void **out, const art_wasm_native_v1 *n)
{
	size_t align = n->instance_align, size;

	*out = NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if ((align & (align - 1)) || align > 4096 || n->instance_size == 0 ||
	    n->instance_size > (1u << 24))
		return art_error_set(AF_ECORRUPT, "the module's instance size or alignment is invalid");
	size = ((size_t)n->instance_size + align - 1) / align * align;
	*out = aligned_alloc(align, size);
	if (!*out)
		return art_error_set(AF_ENOMEM, "out of memory for an instance");
	memset(*out, 0, size);
	return 0;
}

/* Copy the guest's answer out while the instance is still alive. */
static int copy_answer(char **out, size_t *out_len, const invocation *iv, size_t max)
{
	const uint8_t *lp = guest_span(iv, iv->len_ptr, 4), *p;
	uint32_t len;

	*out = NULL;
	*out_len = 0;
	if (!lp)
		return art_error_set(AF_ECORRUPT, "the answer's length is outside the agent's memory");
	memcpy(&len, lp, 4);
	if (len > max)
		return art_error_set(AF_ETOOBIG, "the answer has %u bytes, over the limit of %zu", len, max);
	if (!(p = guest_span(iv, iv->out_ptr, len)))
		return art_error_set(AF_ECORRUPT, "the answer is outside the agent's memory");
	*out = malloc((size_t)len + 1);
	if (!*out)
		return art_error_set(AF_ENOMEM, "out of memory");
	memcpy(*out, p, len);
	(*out)[len] = '\0';
	*out_len = len;
	return 0;
}

/*
 * Run one instance. On return the instance and everything the call
 * allocated are gone; *answer holds the guest's answer if it returned one.
 * @return the trap code (0 if none), or < 0 when the call could not start.
 */
static int run_instance(invocation *iv, rt_sandbox_call *call, uint32_t max_pages,
			uint32_t timeout_ms, char **answer, size_t *answer_len, int *copy_rc,
			size_t max_answer)
{
	int rc, trap;

	*answer = NULL;
	*answer_len = 0;
	*copy_rc = 0;
	if ((rc = instance_alloc(&iv->inst, iv->n)) < 0)
		return rc;
	if ((rc = rt_sandbox_call_begin(call, max_pages, timeout_ms)) < 0) {
		free(iv->inst);
		iv->inst = NULL;
		return rc;
	}
	rt_metrics_inc(RT_M_INSTANTIATIONS);
	trap = rt_sandbox_run(call, guest_entry, iv);
	if (trap == 0) {
		if (iv->returned)
			*copy_rc = copy_answer(answer, answer_len, iv, max_answer);
		iv->n->free(iv->inst);
	}
	rt_sandbox_call_end(call);
	free(iv->inst);
	iv->inst = NULL;
	iv->mem = NULL;
	free(iv->pending);
	iv->pending = NULL;
	return trap;
}

static uint32_t cap_or(uint32_t v, uint32_t def)
{
	return v ? v : def;
}

int rt_exec_describe(char **out, size_t *out_len, const art_wasm_native_v1 *native,
		     const rt_host_env *env)
{
	invocation iv;
	rt_sandbox_call call;
	int trap, copy_rc;

	memset(&iv, 0, sizeof(iv));
	iv.n = native;
	iv.env = env;
	iv.mode = MODE_DESCRIBE;
	trap = run_instance(&iv, &call, cap_or(env->max_memory_pages, DEFAULT_MAX_PAGES),
			    DESCRIBE_TIMEOUT_MS, out, out_len, &copy_rc, RT_MAX_DESCRIBE);
	if (trap < 0)
		return trap;
	if (trap > 0)
		return art_error_set(AF_EDENIED, "af_describe trapped: %s", rt_sandbox_trap_name(trap));
	if (iv.alloc_failed)
		return art_error_set(AF_EDENIED, "af_describe: the agent could not allocate");
	return copy_rc;
}

/* The guest answered: check it is one JSON object with a boolean ok, and
 * map an error to the stable code it stands for. */
static int guest_answer(rt_invoke_result *res, char *answer, size_t len)
{
	static const struct {
		const char *guest, *code;
	} map[] = {
		{"invalid_input", "invalid_input"}, {"tool_denied", "tool_denied"},
		{"step_failed", "step_failed"},     {"llm_error", "llm_error"},
		{"max_steps", "step_limit"},        {"timeout", "timeout"},
		{"oom", "oom"},                     {"invalid_output", "invalid_output"},
	};
	json_t *root = json_loadb(answer, len, JSON_REJECT_DUPLICATES, NULL), *err;
	const char *code, *msg;
	size_t i;
	int rc;

	if (!json_is_object(root) || !json_is_boolean(json_object_get(root, "ok"))) {
		json_decref(root);
		free(answer);
		return rt_invoke_result_set_error(res, "internal",
						  "the agent's answer is not a JSON object with \"ok\"");
	}
	if (json_is_true(json_object_get(root, "ok"))) {
		json_decref(root);
		res->http_status = 200;
		res->body = answer;
		res->body_len = len;
		return 0;
	}
	free(answer);
	err = json_object_get(root, "error");
	code = json_string_value(json_object_get(err, "code"));
	msg = json_string_value(json_object_get(err, "message"));
	for (i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(code, map[i].guest) == 0)
			break;
	if (!code || i == sizeof(map) / sizeof(map[0]))
		rc = rt_invoke_result_set_error(res, "internal", "the agent answered an unknown error code '%.64s': %.400s",
						code ? code : "(none)", msg ? msg : "");
	else
		rc = rt_invoke_result_set_error(res, map[i].code, "%s", msg ? msg : map[i].guest);
	json_decref(root);
	return rc;
}

int rt_exec_invoke(rt_invoke_result *res, const art_wasm_native_v1 *native,
		   const rt_policy *policy, const rt_host_env *env, const char *input,
		   size_t input_len)
{
	const rt_call_chain *parent = rt_tools__parent_chain();
	invocation iv;
	rt_sandbox_call call;
	uint32_t timeout, pages;
	char *answer = NULL;
	size_t answer_len = 0;
	int64_t t0 = mono_ns();
	int trap, copy_rc = 0, rc;
	rt_span *outer_span;

	memset(res, 0, sizeof(*res));
	memset(&iv, 0, sizeof(iv));
	iv.n = native;
	iv.pol = policy;
	iv.env = env;
	iv.ref = policy->ref;
	iv.mode = MODE_HANDLE;
	iv.input = input;
	iv.input_len = input_len;
	timeout = cap_or(env->max_timeout_ms, DEFAULT_MAX_TIMEOUT_MS);
	if (policy->timeout_ms && policy->timeout_ms < timeout)
		timeout = policy->timeout_ms;
	pages = cap_or(env->max_memory_pages, DEFAULT_MAX_PAGES);
	if (policy->memory_pages && policy->memory_pages < pages)
		pages = policy->memory_pages;
	if (input_len > UINT32_MAX / 2)
		return rt_invoke_result_set_error(res, "payload_too_large", "the request is too large");
	/* A callee of agent_invoke: it extends its caller's chain and ends by
	 * its caller's deadline. */
	if (parent) {
		int64_t left_ms = (parent->deadline_ns - t0) / 1000000;

		if (left_ms < 1)
			return rt_invoke_result_set_error(res, "timeout", "the caller's deadline passed "
							  "before %s could start", policy->ref);
		if (left_ms < (int64_t)timeout)
			timeout = (uint32_t)left_ms;
		iv.chain = *parent;
	}
	if (iv.chain.depth < RT_INVOKE_DEPTH_MAX)
		iv.chain.names[iv.chain.depth++] = policy->name;
	iv.chain.deadline_ns = t0 + (int64_t)timeout * 1000000;
	iv.deadline_ms = t0 / 1000000 + timeout + RT_LLM_DEADLINE_SLACK_MS;

	outer_span = rt_span_current();
	trap = run_instance(&iv, &call, pages, timeout, &answer, &answer_len, &copy_rc, RT_MAX_RESPONSE);
	/* A trap (or a failed allocation) left the guest early: close its spans. */
	if (iv.inst_span.pushed) {
		rt_span_set_error(&iv.inst_span, trap > 0 ? rt_sandbox_trap_name(trap) : "stopped");
		rt_span_end(&iv.inst_span);
	}
	if (iv.guest_span.pushed) {
		rt_span_set_int(&iv.guest_span, "agentfactory.host_calls", iv.n_host);
		rt_span_set_error(&iv.guest_span, trap > 0 ? rt_sandbox_trap_name(trap) : "stopped");
		rt_span_end(&iv.guest_span);
	}
	rt_span_set_current(outer_span);
	if (iv.instantiated) {
		res->instantiate_seconds = (double)(iv.t_inst - t0) / 1e9;
		if (iv.t_inst)
			rt_metrics_observe(RT_M_INSTANTIATE_SECONDS, res->instantiate_seconds);
	}
	if (trap < 0) {
		rc = rt_invoke_result_set_error(res, "internal", "cannot run the agent: %s", art_error_last());
	} else if (trap == RT_TRAP_DEADLINE) {
		rc = rt_invoke_result_set_error(res, "timeout",
						"the agent ran past its deadline of %u ms and was stopped",
						timeout);
	} else if (trap == RT_TRAP_STEP_LIMIT) {
		rc = rt_invoke_result_set_error(res, "step_limit", "the agent was stopped: %s", iv.stop_msg);
	} else if (trap > 0 && (trap == RT_TRAP_MEMORY_LIMIT || call.memory_limit_hit)) {
		rc = rt_invoke_result_set_error(res, "memory_limit",
						"the agent needed more than %u pages (%u KiB) of memory and was stopped (%s)",
						pages, pages * 64u, rt_sandbox_trap_name(trap));
	} else if (trap == RT_TRAP_RESOURCE) {
		rc = rt_invoke_result_set_error(res, "internal", "the runtime is out of resources for an instance");
	} else if (trap > 0) {
		rc = rt_invoke_result_set_error(res, "trap", "the agent trapped: %s", rt_sandbox_trap_name(trap));
	} else if (iv.alloc_failed) {
		rc = rt_invoke_result_set_error(res, call.memory_limit_hit ? "memory_limit" : "oom",
						"the request (%zu bytes) does not fit in the agent's memory",
						input_len);
	} else if (copy_rc < 0) {
		rc = rt_invoke_result_set_error(res, "internal", "%s", art_error_last());
	} else {
		rc = guest_answer(res, answer, answer_len);
		answer = NULL;
	}
	free(answer);
	if (trap != 0 && trap != RT_TRAP_STEP_LIMIT)
		rt_log_printf(env->log, trap == RT_TRAP_DEADLINE || call.memory_limit_hit ? "warn" : "error",
			      "stopped", policy->ref, "%s", res->error_message ? res->error_message : "");
	res->invoke_seconds = (double)(mono_ns() - t0) / 1e9;
	rt_metrics_observe(RT_M_INVOKE_SECONDS, res->invoke_seconds);
	return rc;
}
