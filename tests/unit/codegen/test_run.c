/*
 * test_run.c - proof that built agents run: a minimal host (not the
 * runtime) dlopen()s the precompiled .so, provides the WebAssembly runtime
 * (guard-page memories, as the native ABI requires) and the `af` imports
 * (fake tool_call and llm_chat that record requests and replay scripted
 * answers), and calls af_describe / af_handle.
 *
 * Two agents are built once in the group setup: backup-manager (a steps
 * workflow) and hostile (an LLM agent whose template is full of quotes,
 * backslashes, comment and trigraph sequences and UTF-8).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/util.h"
#include "art/wasm.h"
#include "gen/toolchain.h"

#include <dlfcn.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <wasm-rt.h>

/* ---- a WebAssembly runtime for the test (guard pages, longjmp traps) ---- */

#define RESERVE ((size_t)8 << 30) /* 4 GiB addressable + 4 GiB guard */
#define PAGE 65536u

static _Thread_local jmp_buf *trap_target;
static _Thread_local int trap_code;

static void rt_trap(int code)
{
	trap_code = code;
	if (trap_target)
		longjmp(*trap_target, 1);
	abort();
}

static void rt_allocate_memory(void *mem, uint32_t initial, uint32_t max)
{
	wasm_rt_memory_t *m = mem;
	void *p = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED || (initial && mprotect(p, (size_t)initial * PAGE, PROT_READ | PROT_WRITE) != 0))
		abort();
	m->data = p;
	m->pages = initial;
	m->max_pages = max;
	m->size = initial * PAGE;
}

static uint32_t rt_grow_memory(void *mem, uint32_t delta)
{
	wasm_rt_memory_t *m = mem;
	uint32_t old = m->pages;
	uint64_t next = (uint64_t)old + delta;

	if (next > m->max_pages || next > 65536)
		return (uint32_t)-1;
	if (delta && mprotect(m->data + (size_t)old * PAGE, (size_t)delta * PAGE, PROT_READ | PROT_WRITE) != 0)
		return (uint32_t)-1;
	m->pages = (uint32_t)next;
	m->size = (uint32_t)(next * PAGE);
	return old;
}

static void rt_free_memory(void *mem)
{
	munmap(((wasm_rt_memory_t *)mem)->data, RESERVE);
}

static void rt_allocate_funcref_table(void *table, uint32_t elements, uint32_t max)
{
	wasm_rt_funcref_table_t *t = table;

	t->data = calloc(elements ? elements : 1, sizeof(wasm_rt_funcref_t));
	t->size = elements;
	t->max_size = max;
}

static void rt_free_funcref_table(void *table)
{
	free(((wasm_rt_funcref_table_t *)table)->data);
}

static const art_wasm_rt_v1 test_rt = {
	rt_trap, rt_allocate_memory, rt_grow_memory, rt_free_memory,
	rt_allocate_funcref_table, rt_free_funcref_table,
};

/* ---- the host side of one instance ---- */

#define MAX_CALLS 16

typedef struct host {
	const art_wasm_native_v1 *native;
	void *instance;
	wasm_rt_memory_t *mem;
	/* recorded requests */
	char *tool_req[MAX_CALLS];
	size_t n_tool;
	char *llm_req[MAX_CALLS];
	size_t n_llm;
	size_t n_log;
	char last_log[512];
	/* scripted answers, consumed in order; NULL entries mean "status -1" */
	const char *const *tool_answers;
	const char *const *llm_answers;
	int32_t tool_status;       /* returned instead of an answer when < 0 */
	uint64_t clock, clock_step;
	char *pending;
	size_t pending_len;
} host;

static const uint8_t *guest_ptr(host *h, uint32_t ptr, uint32_t len)
{
	assert_true((uint64_t)ptr + len <= h->mem->size);
	return h->mem->data + ptr;
}

static char *copy_guest(host *h, uint32_t ptr, uint32_t len)
{
	char *s = malloc((size_t)len + 1);

	memcpy(s, guest_ptr(h, ptr, len), len);
	s[len] = '\0';
	return s;
}

static void h_log(void *ctx, uint32_t level, uint32_t ptr, uint32_t len)
{
	host *h = ctx;

	assert_true(level <= 3);
	snprintf(h->last_log, sizeof(h->last_log), "%.*s", (int)len, (const char *)guest_ptr(h, ptr, len));
	h->n_log++;
}

static uint64_t h_clock(void *ctx)
{
	host *h = ctx;

	h->clock += h->clock_step;
	return h->clock;
}

static int32_t h_random(void *ctx, uint32_t ptr, uint32_t len)
{
	(void)ctx;
	(void)ptr;
	(void)len;
	return -1;
}

static int32_t set_pending(host *h, const char *answer)
{
	free(h->pending);
	h->pending = strdup(answer);
	h->pending_len = strlen(answer);
	return (int32_t)h->pending_len;
}

static int32_t h_tool_call(void *ctx, uint32_t ptr, uint32_t len)
{
	host *h = ctx;
	size_t i = h->n_tool;

	assert_true(i < MAX_CALLS);
	h->tool_req[h->n_tool++] = copy_guest(h, ptr, len);
	if (h->tool_status < 0)
		return h->tool_status;
	assert_non_null(h->tool_answers && h->tool_answers[i]);
	return set_pending(h, h->tool_answers[i]);
}

static int32_t h_llm_chat(void *ctx, uint32_t ptr, uint32_t len)
{
	host *h = ctx;
	size_t i = h->n_llm, k;

	assert_true(i < MAX_CALLS);
	h->llm_req[h->n_llm++] = copy_guest(h, ptr, len);
	assert_non_null(h->llm_answers);
	/* Answer i, or the last one again once the script (NULL-terminated) runs out. */
	for (k = 0; k < i && h->llm_answers[k + 1]; k++)
		;
	return set_pending(h, h->llm_answers[k]);
}

static int32_t h_result_read(void *ctx, uint32_t ptr, uint32_t len)
{
	host *h = ctx;
	size_t n;

	if (!h->pending)
		return -1;
	n = len < h->pending_len ? len : h->pending_len;
	memcpy((void *)guest_ptr(h, ptr, (uint32_t)n), h->pending, n);
	free(h->pending);
	h->pending = NULL;
	return (int32_t)n;
}

static const art_wasm_host_v1 test_host = {
	h_log, h_clock, h_random, h_llm_chat, h_tool_call, h_result_read,
};

/* ---- the agents ---- */

typedef struct agent {
	const char *fixture;
	char *json;
	size_t json_len;
	void *dl;
	const art_wasm_native_v1 *native;
} agent;

static struct {
	gen_toolchain *tc;
	char root[64];
	agent workflow, llm;
} g;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Build the fixture, write the .so bytes from memory to a file, dlopen it. */
static int load_agent(agent *a)
{
	const char *src = getenv("AF_SRCDIR");
	char *path = NULL, *dir = NULL, *so = NULL;
	art_wasm_native_entry entry;
	gen_result *r = NULL;
	int rc = -1;

	if (asprintf(&path, "%s/tests/fixtures/codegen/%s.json", src ? src : ".", a->fixture) < 0 ||
	    art_file_read(&a->json, &a->json_len, path, 1 << 20) != 0 ||
	    asprintf(&dir, "%s/%s", g.root, a->fixture) < 0 ||
	    asprintf(&so, "%s/%s.so", g.root, a->fixture) < 0)
		goto cleanup;
	if (gen_build_agent(&r, g.tc, a->json, a->json_len, dir, NULL) != 0) {
		fprintf(stderr, "build %s: %s\n", a->fixture, art_error_last());
		goto cleanup;
	}
	if (art_file_write_atomic(so, r->so, r->so_len, 0755) != 0)
		goto cleanup;
	a->dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!a->dl) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		goto cleanup;
	}
	/* POSIX: dlsym's object pointer holds a function address. */
	*(void **)&entry = dlsym(a->dl, ART_WASM_NATIVE_SYMBOL);
	if (!entry)
		goto cleanup;
	a->native = entry();
	if (a->native->init(&test_rt) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	gen_result_free(r);
	free(path);
	free(dir);
	free(so);
	return rc;
}

static int setup(void **state)
{
	(void)state;
	if (gen_toolchain_discover(&g.tc) != 0) {
		fprintf(stderr, "toolchain: %s\n", art_error_last());
		return -1;
	}
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-run-XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	g.workflow.fixture = "backup-manager";
	g.llm.fixture = "hostile";
	return load_agent(&g.workflow) || load_agent(&g.llm) ? -1 : 0;
}

static int teardown(void **state)
{
	agent *all[] = {&g.workflow, &g.llm};
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		if (all[i]->dl)
			dlclose(all[i]->dl);
		free(all[i]->json);
	}
	gen_toolchain_free(g.tc);
	if (g.root[0])
		nftw(g.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void host_start(host *h, const agent *a)
{
	jmp_buf jb;

	memset(h, 0, sizeof(*h));
	h->native = a->native;
	h->instance = aligned_alloc(a->native->instance_align,
				    (a->native->instance_size + a->native->instance_align - 1) /
					    a->native->instance_align * a->native->instance_align);
	assert_non_null(h->instance);
	h->clock = 1000;
	trap_target = &jb;
	if (setjmp(jb))
		fail_msg("guest trapped (%d) while starting", trap_code);
	h->native->instantiate(h->instance, &test_host, h);
	h->mem = h->native->memory(h->instance);
	h->native->initialize(h->instance);
	trap_target = NULL;
}

static void host_end(host *h)
{
	size_t i;

	h->native->free(h->instance);
	free(h->instance);
	for (i = 0; i < h->n_tool; i++)
		free(h->tool_req[i]);
	for (i = 0; i < h->n_llm; i++)
		free(h->llm_req[i]);
	free(h->pending);
}

static uint32_t read_u32(host *h, uint32_t ptr)
{
	uint32_t v;

	memcpy(&v, guest_ptr(h, ptr, 4), 4);
	return v;
}

/* af_handle(request) -> response text (caller frees). */
static char *handle(host *h, const char *request)
{
	size_t n = strlen(request);
	uint32_t in, len_ptr, out;
	char *resp;
	jmp_buf jb;

	trap_target = &jb;
	if (setjmp(jb))
		fail_msg("guest trapped (%d) in af_handle", trap_code);
	in = h->native->alloc(h->instance, (uint32_t)n);
	len_ptr = h->native->alloc(h->instance, 4);
	assert_true(in != 0 && len_ptr != 0);
	memcpy(h->mem->data + in, request, n);
	out = h->native->handle(h->instance, in, (uint32_t)n, len_ptr);
	trap_target = NULL;
	resp = copy_guest(h, out, read_u32(h, len_ptr));
	return resp;
}

/* One request on a fresh instance. */
static char *run_once(const agent *a, host *h, const char *request)
{
	host_start(h, a);
	return handle(h, request);
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	if (!j)
		fail_msg("not JSON (%s): %s", err.text, text);
	return j;
}

static void assert_error(const char *resp, const char *code, const char *needle)
{
	json_t *j = parse(resp), *e = json_object_get(j, "error");

	assert_true(json_is_false(json_object_get(j, "ok")));
	if (strcmp(json_string_value(json_object_get(e, "code")), code) != 0 ||
	    !strstr(json_string_value(json_object_get(e, "message")), needle))
		fail_msg("wanted %s with '%s', got %s", code, needle, resp);
	json_decref(j);
}

/* ---- tests ---- */

static void test_run__descriptor_and_describe(void **state)
{
	host h;
	uint32_t len_ptr, p;
	jmp_buf jb;

	(void)state;
	assert_int_equal(g.workflow.native->native_abi, ART_WASM_NATIVE_ABI_VERSION);
	assert_int_equal(g.workflow.native->guest_abi, 1);
	assert_int_equal(g.workflow.native->memcheck, ART_WASM_MEMCHECK_GUARD);
	assert_string_equal(g.workflow.native->wasm_rt, gen_toolchain_wasm_rt(g.tc));
	/* init is once per object. */
	assert_int_equal(g.workflow.native->init(&test_rt), -1);
	host_start(&h, &g.llm);
	trap_target = &jb;
	if (setjmp(jb))
		fail_msg("trap %d", trap_code);
	assert_int_equal(h.native->abi_version(h.instance), 1);
	len_ptr = h.native->alloc(h.instance, 4);
	p = h.native->describe(h.instance, len_ptr);
	trap_target = NULL;
	/* The resolved template, byte for byte, hostile strings included. */
	assert_int_equal(read_u32(&h, len_ptr), g.llm.json_len);
	assert_memory_equal(guest_ptr(&h, p, (uint32_t)g.llm.json_len), g.llm.json, g.llm.json_len);
	host_end(&h);
}

static void test_run__workflow_calls_tools_in_order(void **state)
{
	static const char *const answers[] = {
		"{\"ok\":true,\"result\":\"2026-11-21T10:00:00Z\"}",
		"{\"ok\":true,\"result\":\"{\\\"version\\\":\\\"1.4.0\\\"}\"}",
		"{\"ok\":true,\"result\":{\"stored\":true}}",
		"{\"ok\":true,\"result\":{\"stored\":true,\"n\":2}}",
	};
	host h;
	char *resp;
	json_t *j, *args;

	(void)state;
	host_start(&h, &g.workflow);
	h.tool_answers = answers;
	resp = handle(&h, "{\"inputs\":{\"release\":\"r1 \\\"q\\\" \\u00e9\"}}");
	assert_int_equal(h.n_tool, 4);
	assert_string_equal(h.tool_req[0], "{\"tool\":\"clock_now\",\"args\":{}}");
	assert_string_equal(h.tool_req[1], "{\"tool\":\"kv_get\",\"args\":{\"key\":\"releases/r1 \\\"q\\\" \\u00e9\"}}");
	/* Rendered args are JSON; placeholders resolved from inputs and earlier steps. */
	j = parse(h.tool_req[2]);
	assert_string_equal(json_string_value(json_object_get(j, "tool")), "kv_put");
	args = json_object_get(j, "args");
	assert_string_equal(json_string_value(json_object_get(args, "key")),
			    "backups/r1 \"q\" \xc3\xa9/2026-11-21T10:00:00Z");
	assert_string_equal(json_string_value(json_object_get(args, "value")), "{\"version\":\"1.4.0\"}");
	json_decref(j);
	j = parse(h.tool_req[3]);
	args = json_object_get(j, "args");
	assert_string_equal(json_string_value(json_object_get(args, "key")), "backups/r1 \"q\" \xc3\xa9/latest");
	assert_string_equal(json_string_value(json_object_get(args, "value")), "2026-11-21T10:00:00Z");
	json_decref(j);
	/* Output: every step's result, and the last one as the result. */
	assert_string_equal(resp,
			    "{\"ok\":true,\"output\":{\"steps\":{\"now\":\"2026-11-21T10:00:00Z\","
			    "\"record\":\"{\\\"version\\\":\\\"1.4.0\\\"}\",\"save\":{\"stored\":true},"
			    "\"index\":{\"stored\":true,\"n\":2}},\"result\":{\"stored\":true,\"n\":2}}}");
	assert_true(h.n_log >= 4); /* log is granted: one line per step */
	free(resp);
	host_end(&h);
}

static void test_run__workflow_rejects_bad_input_before_any_tool(void **state)
{
	static const char *const requests[] = {
		"{\"inputs\":{}}", "{\"inputs\":{\"release\":5}}", "{\"inputs\":[]}", "[1]",
		"{\"inputs\":{\"release\":\"a\"},\"extra\":1}", "{\"inputs\":{\"release\":\"a\"}", "",
		"{\"inputs\":{\"release\":\"a\",\"release\":\"b\"}}", "{\"inputs\":{\"release\":\"\x01\"}}",
		"{\"inputs\":{\"release\":\"\xff\"}}",
	};
	static const char *const needles[] = {
		"inputs: missing required property 'release'", "inputs.release: expected string",
		"inputs must be a JSON object", "the request must be a JSON object",
		"unknown request field 'extra'", "not valid JSON", "not valid JSON",
		"not valid JSON", "not valid JSON", "not valid JSON",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		host h;
		char *resp = run_once(&g.workflow, &h, requests[i]);

		assert_error(resp, "invalid_input", needles[i]);
		assert_int_equal(h.n_tool, 0);
		free(resp);
		host_end(&h);
	}
}

static void test_run__workflow_reports_tool_failure_and_denial(void **state)
{
	static const char *const fail_second[] = {
		"{\"ok\":true,\"result\":\"t\"}",
		"{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"no key \\\"releases/x\\\"\"}}",
	};
	static const char *const not_json[] = {"{\"ok\":true,\"result\":\"t\"}", "{oops"};
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.workflow);
	h.tool_answers = fail_second;
	resp = handle(&h, "{\"inputs\":{\"release\":\"x\"}}");
	assert_error(resp, "step_failed", "step record: tool kv_get failed: not_found: no key \"releases/x\"");
	assert_int_equal(h.n_tool, 2);
	free(resp);
	host_end(&h);

	host_start(&h, &g.workflow);
	h.tool_status = -1;
	resp = handle(&h, "{\"inputs\":{\"release\":\"x\"}}");
	assert_error(resp, "tool_denied", "the host denied tool 'clock_now'");
	assert_int_equal(h.n_tool, 1);
	free(resp);
	host_end(&h);

	host_start(&h, &g.workflow);
	h.tool_answers = not_json;
	resp = handle(&h, "{\"inputs\":{\"release\":\"x\"}}");
	assert_error(resp, "step_failed", "not valid JSON");
	free(resp);
	host_end(&h);
}

static void test_run__workflow_stops_at_its_deadline(void **state)
{
	static const char *const answers[] = {"{\"ok\":true,\"result\":\"t\"}",
					      "{\"ok\":true,\"result\":\"t\"}"};
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.workflow);
	h.tool_answers = answers;
	h.clock_step = 6000; /* every clock read advances 6 s; timeout_ms is 10000 */
	resp = handle(&h, "{\"inputs\":{\"release\":\"x\"}}");
	assert_error(resp, "timeout", "limits.timeout_ms (10000 ms)");
	assert_true(h.n_tool < 4);
	free(resp);
	host_end(&h);
}

/* The hostile agent's system prompt, rendered with its inputs. */
static const char expected_system[] =
	"You are hostile, a \"role\" with */ and ?\?/.\n"
	"Goal: Say \"hi\" */ ?\?= \\x41 \xc3\xa9\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n"
	"Topic: T \"q\" \xc3\xa9 x3\n"
	"*/ \"quoted\" \\ back ?\?/ tri\ttab \xc3\xa9\n"
	"End";

static void test_run__llm_agent_calls_tool_then_answers(void **state)
{
	static const char *const llm[] = {
		"{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
		"{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"kv_get\","
		"\"arguments\":\"{\\\"key\\\":\\\"notes/a\\\",\\\"limit\\\":2}\"}}]}}]}",
		"{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
		"\"{\\\"summary\\\":\\\"done \\\\\\\"ok\\\\\\\"\\\"}\"}}]}",
		NULL,
	};
	static const char *const tools[] = {"{\"ok\":true,\"result\":\"note \\\"A\\\"\"}"};
	json_t *req, *msgs, *m;
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.llm);
	h.llm_answers = llm;
	h.tool_answers = tools;
	resp = handle(&h, "{\"inputs\":{\"topic\":\"T \\\"q\\\" \\u00e9\",\"count\":3}}");
	assert_string_equal(resp, "{\"ok\":true,\"output\":{\"summary\":\"done \\\"ok\\\"\"}}");
	assert_int_equal(h.n_tool, 1);
	assert_string_equal(h.tool_req[0], "{\"tool\":\"kv_get\",\"args\":{\"key\":\"notes/a\",\"limit\":2}}");
	assert_int_equal(h.n_llm, 2);

	/* First request: OpenAI-style, system prompt rendered exactly. */
	req = parse(h.llm_req[0]);
	assert_string_equal(json_string_value(json_object_get(req, "model")), "model \"x\" */");
	assert_int_equal(json_integer_value(json_object_get(req, "max_tokens")), 256);
	assert_true(json_real_value(json_object_get(req, "temperature")) == 0.3);
	assert_int_equal(json_array_size(json_object_get(req, "tools")), 2);
	msgs = json_object_get(req, "messages");
	assert_int_equal(json_array_size(msgs), 2);
	m = json_array_get(msgs, 0);
	assert_string_equal(json_string_value(json_object_get(m, "role")), "system");
	assert_string_equal(json_string_value(json_object_get(m, "content")), expected_system);
	m = json_array_get(msgs, 1);
	assert_string_equal(json_string_value(json_object_get(m, "role")), "user");
	assert_string_equal(json_string_value(json_object_get(m, "content")),
			    "{\"topic\":\"T \\\"q\\\" \\u00e9\",\"count\":3}");
	json_decref(req);

	/* Second request: the assistant's tool call and the tool's answer appended. */
	req = parse(h.llm_req[1]);
	msgs = json_object_get(req, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	m = json_array_get(msgs, 2);
	assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
	assert_int_equal(json_array_size(json_object_get(m, "tool_calls")), 1);
	m = json_array_get(msgs, 3);
	assert_string_equal(json_string_value(json_object_get(m, "role")), "tool");
	assert_string_equal(json_string_value(json_object_get(m, "tool_call_id")), "call_1");
	assert_string_equal(json_string_value(json_object_get(m, "content")), tools[0]);
	json_decref(req);
	free(resp);
	host_end(&h);
}

/* The tool message the model got for its call number `call` of request `n`. */
static json_t *tool_answer(host *h, size_t n, size_t msg)
{
	json_t *req = parse(h->llm_req[n]);
	json_t *m = json_array_get(json_object_get(req, "messages"), msg), *content;

	assert_string_equal(json_string_value(json_object_get(m, "role")), "tool");
	content = parse(json_string_value(json_object_get(m, "content")));
	json_decref(req);
	return content;
}

static void test_run__llm_tool_outside_the_table_is_refused(void **state)
{
	static const char *const llm[] = {
		"{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
		"\"function\":{\"name\":\"shell_exec\",\"arguments\":\"{\\\"cmd\\\":\\\"rm -rf /\\\"}\"}}]}",
		"{\"role\":\"assistant\",\"content\":\"done without it\"}",
		NULL,
	};
	json_t *env, *err;
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.llm);
	h.llm_answers = llm;
	resp = handle(&h, "{\"inputs\":{\"topic\":\"t\"}}");
	/* Never reached the host: the refusal went back to the model, which answered. */
	assert_int_equal(h.n_tool, 0);
	assert_string_equal(resp, "{\"ok\":true,\"output\":\"done without it\"}");
	assert_int_equal(h.n_llm, 2);
	env = tool_answer(&h, 1, 3);
	err = json_object_get(env, "error");
	assert_true(json_is_false(json_object_get(env, "ok")));
	assert_string_equal(json_string_value(json_object_get(err, "code")), "tool_denied");
	assert_string_equal(json_string_value(json_object_get(err, "message")),
			    "tool 'shell_exec' is not one of your tools; your tools are: kv_get, kv_put");
	json_decref(env);
	free(resp);
	host_end(&h);
}

static void test_run__llm_tool_refused_by_the_host_goes_back_to_the_model(void **state)
{
	static const char *const llm[] = {
		"{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
		"\"function\":{\"name\":\"kv_get\",\"arguments\":{\"key\":\"k\"}}}]}",
		"{\"role\":\"assistant\",\"content\":\"{\\\"summary\\\":\\\"no notes\\\"}\"}",
		NULL,
	};
	json_t *env;
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.llm);
	h.llm_answers = llm;
	h.tool_status = -1; /* the host's allow-list says no */
	resp = handle(&h, "{\"inputs\":{\"topic\":\"t\"}}");
	assert_int_equal(h.n_tool, 1);
	assert_string_equal(resp, "{\"ok\":true,\"output\":{\"summary\":\"no notes\"}}");
	env = tool_answer(&h, 1, 3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(env, "error"), "code")),
			    "tool_denied");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(env, "error"), "message")),
			       "tool 'kv_get' was refused by the runtime"));
	json_decref(env);
	free(resp);
	host_end(&h);
}

static void test_run__llm_invalid_args_go_back_to_the_model(void **state)
{
	static const char *const llm[] = {
		"{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
		"\"function\":{\"name\":\"kv_get\",\"arguments\":\"{\\\"key\\\":1,\\\"rm\\\":true}\"}}]}",
		"{\"role\":\"assistant\",\"content\":\"plain text answer\"}",
		NULL,
	};
	json_t *req, *m, *content;
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.llm);
	h.llm_answers = llm;
	resp = handle(&h, "{\"inputs\":{\"topic\":\"t\"}}");
	assert_string_equal(resp, "{\"ok\":true,\"output\":\"plain text answer\"}");
	assert_int_equal(h.n_tool, 0);
	req = parse(h.llm_req[1]);
	m = json_array_get(json_object_get(req, "messages"), 3);
	content = parse(json_string_value(json_object_get(m, "content")));
	assert_true(json_is_false(json_object_get(content, "ok")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(content, "error"), "code")),
			    "invalid_args");
	assert_string_equal(json_string_value(json_object_get(json_object_get(content, "error"), "message")),
			    "args.key: expected string");
	json_decref(content);
	json_decref(req);
	free(resp);
	host_end(&h);
}

static void test_run__llm_loop_stops_at_max_steps(void **state)
{
	static const char *const llm[] = {
		"{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
		"\"function\":{\"name\":\"kv_get\",\"arguments\":{\"key\":\"k\"}}}]}",
		NULL,
	};
	static const char *const tools[] = {"{\"ok\":true,\"result\":1}", "{\"ok\":true,\"result\":1}",
					    "{\"ok\":true,\"result\":1}", "{\"ok\":true,\"result\":1}"};
	host h;
	char *resp;

	(void)state;
	host_start(&h, &g.llm);
	h.llm_answers = llm;
	h.tool_answers = tools;
	resp = handle(&h, "{\"inputs\":{\"topic\":\"t\"}}");
	assert_error(resp, "max_steps", "no final answer after 4 model turns");
	assert_int_equal(h.n_llm, 4);
	assert_int_equal(h.n_tool, 4);
	free(resp);
	host_end(&h);
}

static void test_run__llm_garbage_answers_are_errors(void **state)
{
	static const char *const answers[][2] = {
		{"not json", NULL},
		{"{\"choices\":[]}", NULL},
		{"{\"role\":\"assistant\"}", NULL},
		{"{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"kv_get\"}}]}", NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		host h;
		char *resp;

		host_start(&h, &g.llm);
		h.llm_answers = answers[i];
		resp = handle(&h, "{\"inputs\":{\"topic\":\"t\"}}");
		assert_error(resp, "llm_error", "");
		assert_int_equal(h.n_tool, 0);
		free(resp);
		host_end(&h);
	}
}

static void test_run__out_of_memory_is_an_answer(void **state)
{
	host h;
	char *big, *resp;
	size_t n = (size_t)3 << 20, i;

	(void)state;
	/* hostile has 64 pages (4 MiB): a 3 MiB topic and its copies do not fit. */
	big = malloc(n + 64);
	snprintf(big, n + 64, "{\"inputs\":{\"topic\":\"");
	for (i = strlen(big); i < n; i++)
		big[i] = 'a';
	snprintf(big + n, 64, "\"}}");
	host_start(&h, &g.llm);
	{
		static const char *const llm[] = {"{\"role\":\"assistant\",\"content\":\"x\"}", NULL};

		h.llm_answers = llm;
	}
	resp = handle(&h, big);
	assert_error(resp, "oom", "out of guest memory");
	assert_true(h.mem->pages <= 64);
	free(resp);
	free(big);
	host_end(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run__descriptor_and_describe),
		cmocka_unit_test(test_run__workflow_calls_tools_in_order),
		cmocka_unit_test(test_run__workflow_rejects_bad_input_before_any_tool),
		cmocka_unit_test(test_run__workflow_reports_tool_failure_and_denial),
		cmocka_unit_test(test_run__workflow_stops_at_its_deadline),
		cmocka_unit_test(test_run__llm_agent_calls_tool_then_answers),
		cmocka_unit_test(test_run__llm_tool_outside_the_table_is_refused),
		cmocka_unit_test(test_run__llm_tool_refused_by_the_host_goes_back_to_the_model),
		cmocka_unit_test(test_run__llm_invalid_args_go_back_to_the_model),
		cmocka_unit_test(test_run__llm_loop_stops_at_max_steps),
		cmocka_unit_test(test_run__llm_garbage_answers_are_errors),
		cmocka_unit_test(test_run__out_of_memory_is_an_answer),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
