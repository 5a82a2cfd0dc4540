/*
 * rt/exec.h - one invocation of a loaded agent: a fresh instance in the
 * sandbox, the `af` host functions with the agent's capabilities checked on
 * every call, and the answer mapped to a stable error code and HTTP status.
 *
 * A policy is what the runtime enforces for an agent, taken from signed
 * data only: the capabilities of the verified manifest, and the tool table,
 * limits and model provider of the resolved template the verified native
 * code describes (af_describe).
 *
 * Host functions (docs/abi.md, docs/runtime.md "Sandbox"):
 *   log           capability log; one JSON line per call (event "guest"),
 *                 at most RT_MAX_LOG_LINES per invocation
 *   clock_now_ms  capability clock; CLOCK_MONOTONIC milliseconds
 *   random_get    capability random; getrandom(), at most 64 KiB a call
 *   llm_chat      capability llm_chat; the configured provider (rt/llm.h);
 *                 at most limits.max_steps calls per invocation
 *   tool_call     capability tool_call; the tool must be in the agent's
 *                 tool table AND in the runtime's catalogue (rt/tools.h:
 *                 clock_now: clock, kv_get: kv.read, kv_put: kv.write,
 *                 http_fetch: http_fetch, agent_invoke: agent_invoke), with
 *                 the catalogue's capability granted; at most
 *                 limits.max_steps * RT_TOOL_CALLS_PER_STEP calls
 *   result_read   the pending result of the last llm_chat / tool_call
 * A refused call returns -1 (the guest answers tool_denied), is logged
 * (event "denied") and counted (RT_M_DENIALS). Passing a call cap stops the
 * instance (step_limit). A (pointer, length) outside the guest's memory
 * traps (out of bounds).
 */
#ifndef RT_EXEC_H
#define RT_EXEC_H

#include "art/wasm.h"
#include "rt/kv.h"
#include "rt/llm.h"
#include "rt/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Capabilities the host functions and builtin tools check. */
#define RT_CAP_LOG       0x01u
#define RT_CAP_CLOCK     0x02u
#define RT_CAP_RANDOM    0x04u
#define RT_CAP_LLM_CHAT  0x08u
#define RT_CAP_TOOL_CALL 0x10u
#define RT_CAP_KV_READ   0x20u
#define RT_CAP_KV_WRITE  0x40u
#define RT_CAP_HTTP_FETCH 0x80u
#define RT_CAP_AGENT_INVOKE 0x100u

/** Guest log lines kept per invocation (one more says how many were dropped). */
#define RT_MAX_LOG_LINES 1000u
/** "denied" log lines kept per invocation (every denial is counted). */
#define RT_MAX_DENIAL_LINES 100u
/** Tool calls allowed per model turn / workflow step. */
#define RT_TOOL_CALLS_PER_STEP 16u
/** Largest tool_call / llm_chat request read from the guest. */
#define RT_MAX_HOST_REQUEST ((size_t)1 << 20)
/** Largest response copied out of an instance. */
#define RT_MAX_RESPONSE ((size_t)16 << 20)
/** Largest describe JSON. */
#define RT_MAX_DESCRIBE ((size_t)1 << 20)

/** One tool of an agent's table. */
typedef struct rt_tool {
	char *name;
	int builtin;       /* index in the runtime's catalogue, or -1 (not offered) */
} rt_tool;

/** What the runtime enforces for one agent. Immutable once made. */
typedef struct rt_policy {
	char *name, *version;
	char *ref;                     /* "name@version", for logs */
	uint32_t caps;                 /* RT_CAP_* granted by the manifest */
	rt_tool *tools;
	size_t n_tools;
	uint32_t max_steps, timeout_ms, memory_pages;
	char *provider;                /* model.provider, or NULL */
	bool llm;                      /* an LLM agent (no steps) */
	char **hosts;                  /* http_fetch allow-list (the manifest's "hosts"),
					  normalised (rt_host_entry_normalize); none = no host */
	size_t n_hosts;
} rt_policy;

/**
 * How agent_invoke runs a callee: agent `name` (its current version) with
 * request input (input_len bytes), the result in res exactly as
 * rt_engine_invoke fills it (the engine's callback is rt_engine_invoke on
 * itself). It runs on a thread agent_invoke starts for it.
 * @return 0 when an answer is in res; AF_ENOMEM when even the error could
 *         not be built
 */
typedef int (*rt_invoke_fn)(void *ctx, const char *name, const char *input, size_t input_len,
			    rt_invoke_result *res);

/** What the host functions use besides the policy. Borrowed, read-only. */
typedef struct rt_host_env {
	FILE *log;                     /* JSON lines; NULL = stderr */
	rt_kv *kv;                     /* NULL: kv tools answer "unavailable" */
	const rt_llm_provider *llm;    /* NULL: llm_chat fails (llm_error) */
	uint32_t max_memory_pages;     /* cap on any agent's memory */
	uint32_t max_timeout_ms;       /* cap on any invocation's deadline */
	rt_invoke_fn invoke;           /* agent_invoke runs callees through it (the engine sets
					  it: tools.c calls no engine code); NULL: the tool
					  answers "unavailable" */
	void *invoke_ctx;              /* invoke's first argument (the engine) */
	uint32_t max_invoke_depth;     /* agents on one call chain; 0 = RT_INVOKE_DEPTH_DEFAULT,
					  at most RT_INVOKE_DEPTH_MAX */
} rt_host_env;

/**
 * Make a policy from a describe JSON and the manifest's capabilities.
 * @param[out] out  caller owns; rt_policy_free. NULL on error.
 * @param[in]  describe  the agent's resolved template (len bytes)
 * @param[in]  caps      capability names (unknown ones grant nothing)
 * @return 0; AF_ECORRUPT (not a JSON object, no name/version, a malformed
 *         tools or limits entry; the message says which); AF_ENOMEM
 */
int rt_policy_parse(rt_policy **out, const char *describe, size_t len, const char *const *caps,
		    size_t n_caps);

/**
 * Set the http_fetch allow-list of a policy that is not shared yet (the
 * loader calls it with the verified manifest's "hosts"). Replaces any
 * previous list.
 * @return 0; AF_ECORRUPT for an entry rt_host_entry_normalize refuses;
 *         AF_ENOMEM
 */
int rt_policy_set_hosts(rt_policy *p, const char *const *hosts, size_t n);

/** NULL-safe. */
void rt_policy_free(rt_policy *p);

/** The capability bit of a name ("kv.read" -> RT_CAP_KV_READ), 0 if none. */
uint32_t rt_cap_bit(const char *name);

/**
 * Run af_describe in a fresh instance (no host function is granted).
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @return 0; AF_EDENIED when the instance trapped (the message names the
 *         trap); AF_ECORRUPT for a pointer outside its memory or a
 *         describe over RT_MAX_DESCRIBE; AF_EIO / AF_ENOMEM
 */
int rt_exec_describe(char **out, size_t *out_len, const art_wasm_native_v1 *native,
		     const rt_host_env *env);

/**
 * One invocation: instantiate, _initialize, copy the request in, af_handle,
 * copy the response out, free. Fills res in every case (see engine.h):
 * the guest's answer, or a runtime error (timeout, memory_limit, trap,
 * step_limit, internal) with its body. The deadline is
 * min(policy timeout, env cap, and, for a callee of agent_invoke, the
 * caller's remaining time); the memory cap min(policy pages, env cap).
 * @return 0, or AF_ENOMEM when not even the error could be built
 */
int rt_exec_invoke(rt_invoke_result *res, const art_wasm_native_v1 *native,
		   const rt_policy *policy, const rt_host_env *env, const char *input,
		   size_t input_len);

/** The HTTP status of a stable error code (docs/runtime.md, "Limits"). */
int rt_error_status(const char *code);

/**
 * Set res to an error: code (a static string), status from
 * rt_error_status, the message, and the body
 * {"ok":false,"error":{"code":...,"message":...}}. Frees what res held.
 * @return 0 or AF_ENOMEM
 */
int rt_invoke_result_set_error(rt_invoke_result *res, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
