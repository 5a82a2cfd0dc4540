/*
 * af_guest.c - guest ABI v1 exports, the `steps` workflow runner and the LLM
 * agent loop, over the data and functions of the generated agent.c.
 *
 * Exports: af_abi_version, af_alloc, af_describe, af_handle (and memory and
 * _initialize from the linker and wasi-libc's reactor crt). Imports: only
 * the `af` functions whose capability is granted (AF_CAP_*). docs/abi.md is
 * the contract; keep the two in step.
 *
 * Every response is {"ok":true,"output":...} or
 * {"ok":false,"error":{"code":"...","message":"..."}}; running out of
 * memory yields a static "oom" response, so af_handle always answers.
 */
#include "af_guest.h"

#include <string.h>

#define AF_IMPORT(name) __attribute__((import_module("af"), import_name(name)))
#define AF_EXPORT(name) __attribute__((export_name(name), visibility("default")))

#if AF_CAP_LOG
AF_IMPORT("log") void af_host_log(int32_t level, const char *ptr, int32_t len);
#endif
#if AF_CAP_CLOCK
AF_IMPORT("clock_now_ms") int64_t af_host_clock_now_ms(void);
#endif
#if AF_CAP_LLM_CHAT
AF_IMPORT("llm_chat") int32_t af_host_llm_chat(const char *req, int32_t len);
#endif
#if AF_CAP_TOOL_CALL
AF_IMPORT("tool_call") int32_t af_host_tool_call(const char *req, int32_t len);
#endif
#if AF_CAP_LLM_CHAT || AF_CAP_TOOL_CALL
AF_IMPORT("result_read") int32_t af_host_result_read(char *dst, int32_t len);
#endif

/* Host status codes (negative returns of llm_chat / tool_call). */
#define AF_HOST_EDENIED (-1)

/* Log levels of af.log. */
#define AF_LOG_DEBUG 0
#define AF_LOG_INFO 1
#define AF_LOG_WARN 2
#define AF_LOG_ERROR 3

/* ---- memory: a bump allocator over linear memory -------------------------- */

extern unsigned char __heap_base;

static uint64_t heap_top;  /* next free byte; 0 until first use */
static uint64_t heap_end;  /* bytes of linear memory */

static int heap_reach(uint64_t end)
{
	uint64_t pages;

	if (!heap_top) {
		heap_top = (uint64_t)(uintptr_t)&__heap_base;
		heap_end = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
	}
	if (end <= heap_end)
		return 0;
	if (end > (uint64_t)1 << 32)
		return -1;
	pages = (end - heap_end + 65535u) / 65536u;
	if (__builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1)
		return -1;
	heap_end += pages * 65536u;
	return 0;
}

void *af_mem_alloc(size_t n)
{
	uint64_t p;

	if (heap_reach(0) < 0)
		return NULL;
	p = (heap_top + 7u) & ~(uint64_t)7u;
	if (heap_reach(p + n) < 0)
		return NULL;
	heap_top = p + n;
	return (void *)(uintptr_t)p;
}

/* Grow the most recent allocation in place; 0 on success. */
static int mem_extend(void *ptr, size_t old_size, size_t new_size)
{
	uint64_t p = (uint64_t)(uintptr_t)ptr;

	if (p + old_size != heap_top || heap_reach(p + new_size) < 0)
		return -1;
	heap_top = p + new_size;
	return 0;
}

/* ---- buffers --------------------------------------------------------------- */

static int buf_reserve(af_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return -1;
	if (extra > ((size_t)1 << 30) || b->len + extra > ((size_t)1 << 30)) {
		b->failed = 1;
		return -1;
	}
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap * 2 : 256;
	while (cap < need)
		cap *= 2;
	if (b->data && mem_extend(b->data, b->cap, cap) == 0) {
		b->cap = cap;
		return 0;
	}
	p = af_mem_alloc(cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	if (b->len)
		memcpy(p, b->data, b->len);
	b->data = p;
	b->cap = cap;
	return 0;
}

void af_buf_put(af_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	if (n)
		memcpy(b->data + b->len, s, n);
	b->len += n;
}

void af_buf_puts(af_buf *b, const char *s)
{
	af_buf_put(b, s, strlen(s));
}

/* The escape for byte c, or NULL when c goes through as is. */
static const char *escape_of(unsigned char c, char tmp[7])
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	case '\b': return "\\b";
	case '\f': return "\\f";
	default:
		if (c >= 0x20)
			return NULL;
		memcpy(tmp, "\\u00", 4);
		tmp[4] = hex[c >> 4];
		tmp[5] = hex[c & 15];
		tmp[6] = '\0';
		return tmp;
	}
}

void af_buf_put_escaped(af_buf *b, const char *s, size_t n)
{
	size_t i, run = 0;
	char tmp[7];

	for (i = 0; i < n; i++) {
		const char *esc = escape_of((unsigned char)s[i], tmp);

		if (!esc)
			continue;
		af_buf_put(b, s + run, i - run);
		af_buf_puts(b, esc);
		run = i + 1;
	}
	af_buf_put(b, s + run, n - run);
}

void af_buf_put_uint(af_buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	af_buf_put(b, tmp + i, sizeof(tmp) - i);
}

/* ---- errors ------------------------------------------------------------------ */

void af_err_add(af_err *e, const char *s, size_t n)
{
	size_t i;
	char tmp[7];

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = escape_of(c, tmp);
		size_t l = esc ? strlen(esc) : 1, seq = 1;

		/* Keep a UTF-8 sequence whole: stop before a lead byte that does not fit. */
		if (c >= 0xc0)
			seq = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (e->len + (esc ? l : seq) > AF_ERR_MSG_MAX)
			break;
		if (esc) {
			memcpy(e->msg + e->len, esc, l);
			e->len += l;
		} else {
			e->msg[e->len++] = (char)c;
		}
	}
	e->msg[e->len] = '\0';
}

void af_err_adds(af_err *e, const char *s)
{
	af_err_add(e, s, strlen(s));
}

static void err_reset(af_err *e, const char *code)
{
	e->code = code;
	e->len = 0;
	e->msg[0] = '\0';
}

/* Append a JSON string token's text, unescaped then escaped again (so that
 * truncation never cuts an escape sequence). */
static void err_add_json_str(af_err *e, const af_json *j, int t)
{
	size_t n;
	char *s = af_json_unescape(j, t, &n);

	if (s)
		af_err_add(e, s, n);
}

/* Used by the clock and LLM paths only: a workflow granted neither compiles them out. */
__attribute__((unused)) static void err_add_uint(af_err *e, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	af_err_add(e, tmp + i, sizeof(tmp) - i);
}

/* ---- validators ------------------------------------------------------------- */

int af_v_type(const af_json *j, int t, unsigned mask, const char *path, const char *expected,
	      af_err *e)
{
	unsigned have = 0;

	switch (j->tok[t].type) {
	case AF_J_OBJECT: have = AF_T_OBJECT; break;
	case AF_J_ARRAY: have = AF_T_ARRAY; break;
	case AF_J_STRING: have = AF_T_STRING; break;
	case AF_J_NUMBER:
		have = AF_T_NUMBER | (af_json_is_integer(j, t) ? AF_T_INTEGER : 0u);
		break;
	case AF_J_TRUE: case AF_J_FALSE: have = AF_T_BOOLEAN; break;
	default: have = AF_T_NULL; break;
	}
	if (have & mask)
		return 0;
	af_err_adds(e, path);
	af_err_adds(e, ": expected ");
	af_err_adds(e, expected);
	return -1;
}

int af_v_missing(af_err *e, const char *path, const char *key)
{
	af_err_adds(e, path);
	af_err_adds(e, ": missing required property '");
	af_err_adds(e, key);
	af_err_adds(e, "'");
	return -1;
}

int af_v_extra(const af_json *j, int obj, const char *const *keys, size_t n, const char *path,
	       af_err *e)
{
	uint32_t k = (uint32_t)obj + 1, m;
	size_t i;

	for (m = 0; m < j->tok[obj].size; m++) {
		int known = 0;

		for (i = 0; i < n && !known; i++)
			known = af_json_streq(j, (int)k, keys[i], strlen(keys[i]));
		if (!known) {
			af_err_adds(e, path);
			af_err_adds(e, ": unexpected property '");
			err_add_json_str(e, j, (int)k);
			af_err_adds(e, "'");
			return -1;
		}
		k = j->tok[k + 1].next;
	}
	return 0;
}

/* ---- the run ------------------------------------------------------------------ */

struct af_run {
	const af_agent *agent;
	af_json req;          /* the request */
	af_json empty;        /* "{}" when the request has no inputs */
	const af_json *in;    /* where the inputs are */
	int inputs;           /* their token */
	af_json *results;     /* per step: the tool's response envelope */
	int *result_tok;      /* per step: token of its result, -1 before it ran */
	uint64_t t0;          /* start time (ms), when the clock is granted */
};

static void put_value(af_buf *b, const af_json *j, int t, int mode)
{
	const af_tok *k;

	if (t < 0) {
		if (mode == AF_PUT_RAW)
			af_buf_put(b, "null", 4);
		return;
	}
	k = &j->tok[t];
	if (k->type == AF_J_STRING) {
		if (mode == AF_PUT_RAW)
			af_buf_put(b, "\"", 1);
		af_buf_put(b, j->text + k->start, k->end - k->start);
		if (mode == AF_PUT_RAW)
			af_buf_put(b, "\"", 1);
	} else if (mode == AF_PUT_RAW) {
		af_buf_put(b, j->text + k->start, k->end - k->start);
	} else {
		af_buf_put_escaped(b, j->text + k->start, k->end - k->start);
	}
}

void af_put_input(af_run *r, af_buf *b, const char *key, size_t klen, int mode)
{
	put_value(b, r->in, af_json_member(r->in, r->inputs, key, klen), mode);
}

void af_put_step(af_run *r, af_buf *b, uint32_t step, const char *field, size_t flen, int mode)
{
	int t = -1;

	if (step < r->agent->n_steps && r->result_tok[step] >= 0) {
		t = r->result_tok[step];
		if (flen)
			t = af_json_member(&r->results[step], t, field, flen);
	}
	put_value(b, step < r->agent->n_steps ? &r->results[step] : NULL, t, mode);
}

static void log_msg(int level, const char *a, const char *b, size_t blen, const char *c)
{
#if AF_CAP_LOG
	af_buf m = {0};

	af_buf_puts(&m, a);
	af_buf_put(&m, b, blen);
	af_buf_puts(&m, c);
	if (!m.failed)
		af_host_log(level, m.data, (int32_t)m.len);
#else
	(void)level;
	(void)a;
	(void)b;
	(void)blen;
	(void)c;
#endif
}

/* Past limits.timeout_ms? Only checkable with the clock capability; the
 * host enforces its own deadline in any case. */
static int deadline_passed(af_run *r, af_err *e)
{
#if AF_CAP_CLOCK
	uint64_t now = (uint64_t)af_host_clock_now_ms();

	if (r->agent->timeout_ms && now >= r->t0 && now - r->t0 > r->agent->timeout_ms) {
		err_reset(e, "timeout");
		af_err_adds(e, "the agent ran longer than limits.timeout_ms (");
		err_add_uint(e, r->agent->timeout_ms);
		af_err_adds(e, " ms)");
		return 1;
	}
#else
	(void)r;
	(void)e;
#endif
	return 0;
}

#if AF_CAP_LLM_CHAT || AF_CAP_TOOL_CALL
/* Fetch the pending result of a host call that returned rc >= 0 and parse
 * it. @return 0, or -1 with e set (code `code`, or "oom"). */
static int fetch_result(int32_t rc, af_json *doc, const char *code, af_err *e)
{
	char *buf = af_mem_alloc((size_t)rc + 1);
	int32_t got;
	int prc;

	if (!buf) {
		err_reset(e, "oom");
		af_err_adds(e, "out of guest memory for a host result");
		return -1;
	}
	got = af_host_result_read(buf, rc);
	if (got != rc) {
		err_reset(e, code);
		af_err_adds(e, "the host result could not be read");
		return -1;
	}
	prc = af_json_parse(doc, buf, (size_t)rc);
	if (prc == AF_JSON_ENOMEM) {
		err_reset(e, "oom");
		af_err_adds(e, "out of guest memory parsing a host result");
		return -1;
	}
	if (prc < 0) {
		err_reset(e, code);
		af_err_adds(e, "the host returned a result that ");
		af_err_adds(e, af_json_why(prc));
		return -1;
	}
	return 0;
}
#endif

/* ---- steps: a state machine, state i runs steps[i] then goes to i + 1 ----- */

#if AF_CAP_TOOL_CALL
/* call_tool's answer when the host refused the call (status -1). */
#define CALL_DENIED (-2)

/* Call a tool through the host. @return 1 the tool answered ok:true, 0
 * ok:false (the envelope is in env either way; *result is its "result"
 * token), -1 with e set (step_failed, oom), CALL_DENIED with e set
 * (tool_denied). */
static int call_tool(const af_tool *tool, const char *args, size_t args_len, af_json *env,
		     int *result, const char *what, size_t what_len, af_err *e)
{
	af_buf req = {0};
	int32_t rc;
	int ok;

	af_buf_puts(&req, "{\"tool\":\"");
	af_buf_put(&req, tool->name, tool->name_len);
	af_buf_puts(&req, "\",\"args\":");
	af_buf_put(&req, args, args_len);
	af_buf_puts(&req, "}");
	if (req.failed) {
		err_reset(e, "oom");
		af_err_adds(e, "out of guest memory building a tool call");
		return -1;
	}
	rc = af_host_tool_call(req.data, (int32_t)req.len);
	if (rc < 0) {
		err_reset(e, rc == AF_HOST_EDENIED ? "tool_denied" : "step_failed");
		af_err_add(e, what, what_len);
		af_err_adds(e, rc == AF_HOST_EDENIED ? ": the host denied tool '" : ": the host could not run tool '");
		af_err_adds(e, tool->name);
		af_err_adds(e, "' (status ");
		af_err_adds(e, rc == AF_HOST_EDENIED ? "-1)" : "< 0)");
		return rc == AF_HOST_EDENIED ? CALL_DENIED : -1;
	}
	if (fetch_result(rc, env, "step_failed", e) < 0)
		return -1;
	ok = af_json_member(env, 0, "ok", 2);
	if (ok < 0 || (env->tok[ok].type != AF_J_TRUE && env->tok[ok].type != AF_J_FALSE)) {
		err_reset(e, "step_failed");
		af_err_add(e, what, what_len);
		af_err_adds(e, ": the host's tool response has no boolean \"ok\"");
		return -1;
	}
	*result = af_json_member(env, 0, "result", 6);
	return env->tok[ok].type == AF_J_TRUE ? 1 : 0;
}
#endif

static int run_steps(af_run *r, af_buf *out, af_err *e)
{
#if AF_CAP_TOOL_CALL
	const af_agent *a = r->agent;
	uint32_t state;

	r->results = af_mem_alloc(a->n_steps * sizeof(af_json));
	r->result_tok = af_mem_alloc(a->n_steps * sizeof(int));
	if (!r->results || !r->result_tok)
		goto oom;
	for (state = 0; state < a->n_steps; state++)
		r->result_tok[state] = -1;

	for (state = 0; state < a->n_steps; state++) {
		const af_step *st = &a->steps[state];
		const af_tool *tool = &a->tools[st->tool];
		af_buf args = {0}, what = {0};
		af_json aj;
		int prc, result = -1, ok;

		if (deadline_passed(r, e))
			return -1;
		af_buf_puts(&what, "step ");
		af_buf_put(&what, st->id, st->id_len);
		st->render_args(r, &args);
		if (args.failed || what.failed)
			goto oom;
		prc = af_json_parse(&aj, args.data, args.len);
		if (prc == AF_JSON_ENOMEM)
			goto oom;
		err_reset(e, "step_failed");
		if (prc < 0) {
			af_err_add(e, what.data, what.len);
			af_err_adds(e, ": its rendered arguments: the text ");
			af_err_adds(e, af_json_why(prc));
			return -1;
		}
		af_err_add(e, what.data, what.len);
		af_err_adds(e, ": ");
		if (tool->validate(&aj, 0, e) < 0)
			return -1;
		log_msg(AF_LOG_INFO, "step ", st->id, st->id_len, " started");
		ok = call_tool(tool, args.data, args.len, &r->results[state], &result, what.data,
			       what.len, e);
		if (ok < 0)
			return -1;
		if (!ok) {
			int err = af_json_member(&r->results[state], 0, "error", 5);
			int code = af_json_member(&r->results[state], err, "code", 4);
			int msg = af_json_member(&r->results[state], err, "message", 7);

			err_reset(e, "step_failed");
			af_err_add(e, what.data, what.len);
			af_err_adds(e, ": tool ");
			af_err_adds(e, tool->name);
			af_err_adds(e, " failed");
			if (code >= 0 && r->results[state].tok[code].type == AF_J_STRING) {
				af_err_adds(e, ": ");
				err_add_json_str(e, &r->results[state], code);
			}
			if (msg >= 0 && r->results[state].tok[msg].type == AF_J_STRING) {
				af_err_adds(e, ": ");
				err_add_json_str(e, &r->results[state], msg);
			}
			return -1;
		}
		r->result_tok[state] = result;
	}

	af_buf_puts(out, "{\"ok\":true,\"output\":{\"steps\":{");
	for (state = 0; state < a->n_steps; state++) {
		if (state)
			af_buf_puts(out, ",");
		af_buf_puts(out, "\"");
		af_buf_put_escaped(out, a->steps[state].id, a->steps[state].id_len);
		af_buf_puts(out, "\":");
		put_value(out, &r->results[state], r->result_tok[state], AF_PUT_RAW);
	}
	af_buf_puts(out, "},\"result\":");
	put_value(out, &r->results[a->n_steps - 1], r->result_tok[a->n_steps - 1], AF_PUT_RAW);
	af_buf_puts(out, "}}");
	return 0;
oom:
	err_reset(e, "oom");
	af_err_adds(e, "out of guest memory");
	return -1;
#else
	(void)r;
	(void)out;
	err_reset(e, "tool_denied");
	af_err_adds(e, "this agent's steps need the tool_call capability");
	return -1;
#endif
}

/* ---- the LLM agent loop ----------------------------------------------------- */

#if AF_CAP_LLM_CHAT
static int tool_index(const af_agent *a, const af_json *j, int name_tok)
{
	uint32_t i;

	for (i = 0; i < a->n_tools; i++)
		if (af_json_streq(j, name_tok, a->tools[i].name, a->tools[i].name_len))
			return (int)i;
	return -1;
}

/* The envelope of a call the agent refuses: tool_denied, and the tools the
 * model may call instead, so that it can carry on without the tool. */
static void put_refusal(const af_agent *a, af_buf *result, const af_json *resp, int name,
			const char *why)
{
	af_err shown;  /* the model's name for it, escaped, cut at AF_ERR_MSG_MAX */
	uint32_t i;

	err_reset(&shown, "tool_denied");
	err_add_json_str(&shown, resp, name);
	af_buf_puts(result, "{\"ok\":false,\"error\":{\"code\":\"tool_denied\",\"message\":\"tool '");
	af_buf_put(result, shown.msg, shown.len);
	af_buf_puts(result, "' ");
	af_buf_puts(result, why);
	if (!a->n_tools || !AF_CAP_TOOL_CALL) {
		af_buf_puts(result, "; you have no tools: answer without them");
	} else {
		af_buf_puts(result, "; your tools are: ");
		for (i = 0; i < a->n_tools; i++) {
			if (i)
				af_buf_puts(result, ", ");
			af_buf_put(result, a->tools[i].name, a->tools[i].name_len);
		}
	}
	af_buf_puts(result, "\"}}");
}

#if AF_CAP_TOOL_CALL
/* Check the arguments of a call to a tool of the table and run it; the
 * envelope for the model goes to result. @return 0, or -1 with e set when
 * the request must stop. */
static int run_model_tool(const af_agent *a, const af_tool *tool, const af_json *resp, int name,
			  int args, af_buf *result, af_err *e)
{
	const char *text = NULL;
	size_t len = 0;
	af_json aj;
	af_err verr;
	int prc = AF_JSON_EINVAL;

	/* OpenAI sends the arguments as a string holding JSON; accept an object too. */
	if (args >= 0 && resp->tok[args].type == AF_J_STRING) {
		text = af_json_unescape(resp, args, &len);
		if (!text)
			goto oom;
		prc = af_json_parse(&aj, text, len);
	} else if (args >= 0 && resp->tok[args].type == AF_J_OBJECT) {
		text = resp->text + resp->tok[args].start;
		len = resp->tok[args].end - resp->tok[args].start;
		prc = af_json_parse(&aj, text, len);
	}
	if (prc == AF_JSON_ENOMEM)
		goto oom;
	err_reset(&verr, "invalid_args");
	if (prc == AF_JSON_EDEPTH)
		af_err_adds(&verr, "the arguments are nested too deep (more than 64 levels)");
	else if (prc < 0)
		af_err_adds(&verr, "the arguments are not a JSON object");
	if (prc < 0 || tool->validate(&aj, 0, &verr) < 0) {
		/* Tell the model, so that it can correct itself. */
		af_buf_puts(result, "{\"ok\":false,\"error\":{\"code\":\"invalid_args\",\"message\":\"");
		af_buf_put(result, verr.msg, verr.len);
		af_buf_puts(result, "\"}}");
		return 0;
	}
	{
		af_json env;
		int res, ok;

		ok = call_tool(tool, text, len, &env, &res, "model tool call", 15, e);
		if (ok == CALL_DENIED) {
			/* The host's allow-list said no: the model hears it like the guest's. */
			put_refusal(a, result, resp, name, "was refused by the runtime");
			return 0;
		}
		if (ok < 0)
			return -1;
		af_buf_put(result, env.text, env.len);
	}
	return 0;
oom:
	err_reset(e, "oom");
	af_err_adds(e, "out of guest memory");
	return -1;
}
#endif

/* Run one tool call the model asked for and append the tool message to
 * req. A tool outside the agent's table is never called: the refusal goes
 * back to the model as the tool's answer. @return 0, or -1 with e set when
 * the request must stop. */
static int model_tool_call(af_run *r, const af_json *resp, int call, af_buf *req, af_err *e)
{
	const af_agent *a = r->agent;
	int id = af_json_member(resp, call, "id", 2);
	int fn = af_json_member(resp, call, "function", 8);
	int name = af_json_member(resp, fn, "name", 4);
	int args = af_json_member(resp, fn, "arguments", 9);
	int ti;
	af_buf result = {0};

	if (id < 0 || resp->tok[id].type != AF_J_STRING || name < 0 ||
	    resp->tok[name].type != AF_J_STRING) {
		err_reset(e, "llm_error");
		af_err_adds(e, "the model returned a tool call without an id or a function name");
		return -1;
	}
	ti = tool_index(a, resp, name);
	if (ti < 0 || !AF_CAP_TOOL_CALL) {
		log_msg(AF_LOG_WARN, "refused the model's call to tool '",
			resp->text + resp->tok[name].start, resp->tok[name].end - resp->tok[name].start,
			ti < 0 ? "': not in the agent's tool table" : "': tool_call is not granted");
		put_refusal(a, &result, resp, name,
			    ti < 0 ? "is not one of your tools"
				   : "cannot be called (this agent is not granted tool_call)");
	} else {
		log_msg(AF_LOG_INFO, "model called tool ", a->tools[ti].name, a->tools[ti].name_len, "");
#if AF_CAP_TOOL_CALL
		if (run_model_tool(a, &a->tools[ti], resp, name, args, &result, e) < 0)
			return -1;
#else
		(void)args;
#endif
	}
	af_buf_puts(req, ",{\"role\":\"tool\",\"tool_call_id\":\"");
	af_buf_put(req, resp->text + resp->tok[id].start, resp->tok[id].end - resp->tok[id].start);
	af_buf_puts(req, "\",\"content\":\"");
	af_buf_put_escaped(req, result.data, result.len);
	af_buf_puts(req, "\"}");
	if (result.failed || req->failed) {
		err_reset(e, "oom");
		af_err_adds(e, "out of guest memory");
		return -1;
	}
	return 0;
}

static int is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Models like to wrap JSON in a Markdown fence (```json ... ```): take
 * what is inside, without the whitespace around it. */
static void strip_fence(const char **s, size_t *n)
{
	const char *p = *s;
	size_t len = *n;

	while (len && is_json_space(*p))
		p++, len--;
	while (len && is_json_space(p[len - 1]))
		len--;
	if (len >= 6 && memcmp(p, "```", 3) == 0 && memcmp(p + len - 3, "```", 3) == 0) {
		const char *nl = memchr(p, '\n', len - 3);

		if (nl) {
			len -= (size_t)(nl + 1 - p) + 3;
			p = nl + 1;
			while (len && is_json_space(p[len - 1]))
				len--;
		}
	}
	*s = p;
	*n = len;
}

#define ANSWER_OK 0
#define ANSWER_REJECTED 1
#define ANSWER_OOM (-1)

/*
 * The model's final content: check it against the outputs schema and, when
 * it passes, write the response. With an object schema the content must be
 * one JSON object (a Markdown fence around it is tolerated); otherwise a
 * JSON object in the content is the output and any other text a string.
 * @return ANSWER_OK, ANSWER_REJECTED (why in verr), ANSWER_OOM
 */
static int final_answer(const af_agent *a, const af_json *resp, int content, af_buf *out,
			af_err *verr)
{
	size_t n;
	char *text = af_json_unescape(resp, content, &n);
	const char *body = text;
	af_json obj;
	int prc;

	if (!text)
		return ANSWER_OOM;
	err_reset(verr, "invalid_output");
	if (a->output_object)
		strip_fence(&body, &n);
	prc = af_json_parse(&obj, body, n);
	if (prc == AF_JSON_ENOMEM)
		return ANSWER_OOM;
	if (prc == 0 && obj.tok[0].type == AF_J_OBJECT) {
		if (a->validate_output(&obj, 0, verr) < 0)
			return ANSWER_REJECTED;
		af_buf_puts(out, "{\"ok\":true,\"output\":");
		af_buf_put(out, body, n);
		af_buf_puts(out, "}");
		return ANSWER_OK;
	}
	if (a->output_object) {
		af_err_adds(verr, prc == AF_JSON_EDEPTH
				  ? "output: expected one JSON object, got one nested too deep (more than 64 levels)"
				  : prc < 0 ? "output: expected one JSON object, got text that is not JSON"
					    : "output: expected a JSON object");
		return ANSWER_REJECTED;
	}
	if (a->validate_output(resp, content, verr) < 0)
		return ANSWER_REJECTED;
	af_buf_puts(out, "{\"ok\":true,\"output\":");
	put_value(out, resp, content, AF_PUT_RAW);
	af_buf_puts(out, "}");
	return ANSWER_OK;
}
#endif

/*
 * The loop: each turn sends the conversation to llm_chat. A message with
 * tool calls runs them (each answer becomes a tool message) and loops; a
 * message with content is the final answer, checked against `outputs`: a
 * rejected answer goes back to the model with the reason, while turns are
 * left. Every model call is one turn of limits.max_steps.
 */
static int run_llm(af_run *r, af_buf *out, af_err *e)
{
#if AF_CAP_LLM_CHAT
	const af_agent *a = r->agent;
	af_buf req = {0};
	af_err verr;
	uint32_t turn;
	int last_rejected = 0;

	af_buf_put(&req, a->request_head, a->request_head_len);
	af_buf_puts(&req, "{\"role\":\"system\",\"content\":\"");
	a->render_system(r, &req);
	af_buf_puts(&req, "\"},{\"role\":\"user\",\"content\":\"");
	af_buf_put_escaped(&req, r->in->text + r->in->tok[r->inputs].start,
			   r->in->tok[r->inputs].end - r->in->tok[r->inputs].start);
	af_buf_puts(&req, "\"}");

	for (turn = 0; turn < a->max_steps; turn++) {
		size_t mark = req.len;
		af_json resp;
		int32_t rc;
		int msg, choices, calls, content, ans;
		uint32_t k, i;

		if (deadline_passed(r, e))
			return -1;
		af_buf_put(&req, a->request_tail, a->request_tail_len);
		if (req.failed)
			goto oom;
		log_msg(AF_LOG_DEBUG, "model turn", "", 0, "");
		rc = af_host_llm_chat(req.data, (int32_t)req.len);
		req.len = mark;
		if (rc < 0) {
			err_reset(e, rc == AF_HOST_EDENIED ? "tool_denied" : "llm_error");
			af_err_adds(e, rc == AF_HOST_EDENIED ? "the host denied the language model call"
							    : "the language model call failed");
			return -1;
		}
		if (fetch_result(rc, &resp, "llm_error", e) < 0)
			return -1;
		/* An OpenAI completion ({"choices":[{"message":...}]}) or the message itself. */
		msg = 0;
		choices = af_json_member(&resp, 0, "choices", 7);
		if (choices >= 0) {
			msg = -1;
			if (resp.tok[choices].type == AF_J_ARRAY && resp.tok[choices].size > 0)
				msg = af_json_member(&resp, choices + 1, "message", 7);
		}
		if (msg < 0 || resp.tok[msg].type != AF_J_OBJECT) {
			err_reset(e, "llm_error");
			af_err_adds(e, "the model's answer has no message object");
			return -1;
		}
		calls = af_json_member(&resp, msg, "tool_calls", 10);
		if (calls >= 0 && resp.tok[calls].type == AF_J_ARRAY && resp.tok[calls].size > 0) {
			last_rejected = 0;
			af_buf_puts(&req, ",");
			af_buf_put(&req, resp.text + resp.tok[msg].start,
				   resp.tok[msg].end - resp.tok[msg].start);
			for (i = 0, k = (uint32_t)calls + 1; i < resp.tok[calls].size;
			     i++, k = resp.tok[k].next) {
				if (deadline_passed(r, e) || model_tool_call(r, &resp, (int)k, &req, e) < 0)
					return -1;
			}
			continue;
		}
		content = af_json_member(&resp, msg, "content", 7);
		if (content < 0 || resp.tok[content].type != AF_J_STRING) {
			err_reset(e, "llm_error");
			af_err_adds(e, "the model answered with neither content nor tool calls");
			return -1;
		}
		ans = final_answer(a, &resp, content, out, &verr);
		if (ans == ANSWER_OOM)
			goto oom;
		if (ans == ANSWER_OK)
			return 0;
		/* Rejected: show the model its answer and why, and ask again. */
		last_rejected = 1;
		log_msg(AF_LOG_WARN, "the model's answer does not match the output schema: ", verr.msg,
			verr.len, "");
		af_buf_puts(&req, ",{\"role\":\"assistant\",\"content\":\"");
		af_buf_put(&req, resp.text + resp.tok[content].start,
			   resp.tok[content].end - resp.tok[content].start);
		af_buf_puts(&req, "\"},{\"role\":\"user\",\"content\":\"Your answer was not accepted: ");
		af_buf_put(&req, verr.msg, verr.len);
		af_buf_puts(&req, a->output_object
					  ? ". Answer again with only one JSON object that matches the output schema.\"}"
					  : ". Answer again, matching the output schema.\"}");
		if (req.failed)
			goto oom;
	}
	if (last_rejected) {
		err_reset(e, "invalid_output");
		af_err_adds(e, "no valid final answer after ");
		err_add_uint(e, a->max_steps);
		af_err_adds(e, " model turns (limits.max_steps); the last one was rejected: ");
		af_err_add(e, verr.msg, verr.len);
		return -1;
	}
	err_reset(e, "max_steps");
	af_err_adds(e, "no final answer after ");
	err_add_uint(e, a->max_steps);
	af_err_adds(e, " model turns (limits.max_steps)");
	return -1;
oom:
	err_reset(e, "oom");
	af_err_adds(e, "out of guest memory");
	return -1;
#else
	(void)r;
	(void)out;
	err_reset(e, "llm_error");
	af_err_adds(e, "this agent is not granted llm_chat");
	return -1;
#endif
}

/* ---- exports ----------------------------------------------------------------- */

static const char oom_response[] =
	"{\"ok\":false,\"error\":{\"code\":\"oom\",\"message\":\"out of guest memory\"}}";

static void put_len(int32_t out_len_ptr, uint32_t len)
{
	memcpy((void *)(uintptr_t)out_len_ptr, &len, sizeof(len));
}

AF_EXPORT("af_abi_version") int32_t af_abi_version(void);
AF_EXPORT("af_alloc") int32_t af_alloc(int32_t size);
AF_EXPORT("af_describe") int32_t af_describe(int32_t out_len_ptr);
AF_EXPORT("af_handle") int32_t af_handle(int32_t in_ptr, int32_t in_len, int32_t out_len_ptr);

int32_t af_abi_version(void)
{
	return AF_GUEST_ABI_VERSION;
}

int32_t af_alloc(int32_t size)
{
	void *p;

	if (size < 0)
		return 0;
	p = af_mem_alloc((size_t)size);
	return p ? (int32_t)(uintptr_t)p : 0;
}

int32_t af_describe(int32_t out_len_ptr)
{
	put_len(out_len_ptr, af_agent_def.describe_len);
	return (int32_t)(uintptr_t)af_agent_def.describe;
}

/* Parse the request and check its inputs. */
static int load_request(af_run *r, const char *in, int32_t in_len, af_err *e)
{
	static const char empty[] = "{}";
	int prc, key;
	uint32_t m, k;

	prc = in_len < 0 ? AF_JSON_EINVAL : af_json_parse(&r->req, in, (size_t)in_len);
	if (prc == AF_JSON_ENOMEM) {
		err_reset(e, "oom");
		af_err_adds(e, "out of guest memory reading the request");
		return -1;
	}
	err_reset(e, "invalid_input");
	if (prc < 0) {
		af_err_adds(e, "the request ");
		af_err_adds(e, af_json_why(prc));
		return -1;
	}
	if (r->req.tok[0].type != AF_J_OBJECT) {
		af_err_adds(e, "the request must be a JSON object");
		return -1;
	}
	for (m = 0, k = 1; m < r->req.tok[0].size; m++, k = r->req.tok[k + 1].next)
		if (!af_json_streq(&r->req, (int)k, "inputs", 6)) {
			af_err_adds(e, "unknown request field '");
			err_add_json_str(e, &r->req, (int)k);
			af_err_adds(e, "' (a request is {\"inputs\": {...}})");
			return -1;
		}
	key = af_json_member(&r->req, 0, "inputs", 6);
	if (key >= 0) {
		r->in = &r->req;
		r->inputs = key;
	} else {
		if (af_json_parse(&r->empty, empty, 2) < 0) {
			err_reset(e, "oom");
			af_err_adds(e, "out of guest memory");
			return -1;
		}
		r->in = &r->empty;
		r->inputs = 0;
	}
	if (r->in->tok[r->inputs].type != AF_J_OBJECT) {
		af_err_adds(e, "inputs must be a JSON object");
		return -1;
	}
	return r->agent->validate_inputs(r->in, r->inputs, e);
}

int32_t af_handle(int32_t in_ptr, int32_t in_len, int32_t out_len_ptr)
{
	static af_run run;
	static af_err err;
	af_buf out = {0};
	int rc;

	memset(&run, 0, sizeof(run));
	run.agent = &af_agent_def;
#if AF_CAP_CLOCK
	run.t0 = (uint64_t)af_host_clock_now_ms();
#endif
	rc = load_request(&run, (const char *)(uintptr_t)in_ptr, in_len, &err);
	if (rc == 0)
		rc = run.agent->n_steps ? run_steps(&run, &out, &err) : run_llm(&run, &out, &err);
	if (rc < 0) {
		out.len = 0;
		af_buf_puts(&out, "{\"ok\":false,\"error\":{\"code\":\"");
		af_buf_puts(&out, err.code ? err.code : "internal");
		af_buf_puts(&out, "\",\"message\":\"");
		af_buf_put(&out, err.msg, err.len);
		af_buf_puts(&out, "\"}}");
		log_msg(AF_LOG_WARN, "request failed: ", err.code ? err.code : "internal",
			strlen(err.code ? err.code : "internal"), "");
	}
	if (out.failed) {
		put_len(out_len_ptr, (uint32_t)(sizeof(oom_response) - 1));
		return (int32_t)(uintptr_t)oom_response;
	}
	put_len(out_len_ptr, (uint32_t)out.len);
	return (int32_t)(uintptr_t)out.data;
}
