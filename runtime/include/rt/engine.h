/*
 * rt/engine.h - the data plane's core: verified agents from a read-only
 * store, a fresh sandboxed instance per invocation.
 *
 * The engine opens the artifact store read-only, verifies every artifact
 * (builder signature, manifest binding, part digests, native compatibility
 * id) before loading its native code from a sealed memfd, keeps loaded
 * modules in an LRU, and runs each invocation in a new instance with a
 * deadline, a memory cap and the agent's capabilities enforced on every
 * host call. An artifact that fails verification is refused (logged, counted
 * in metrics) and the others keep serving. Thread-safe: any number of
 * threads may call rt_engine_invoke at once.
 *
 * The runtime links only artifacts/ and runtime/: no libgit2, no libyaml, no
 * compiler.
 */
#ifndef RT_ENGINE_H
#define RT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "rt/llm.h"

typedef struct rt_engine rt_engine;

typedef struct rt_engine_opts {
	const char *store_dir;         /* artifact store, opened read-only */
	const char *keyring_path;      /* trusted keys (builder role) */
	const char *data_dir;          /* writable state (per-agent key-value store); NULL = none:
					  kv tools then fail with a clear error */
	size_t module_cache;           /* loaded modules kept (LRU); 0 = 64 */
	uint32_t max_timeout_ms;       /* hard per-invocation deadline cap; 0 = 30000. The agent's
					  limits.timeout_ms applies when smaller. */
	uint32_t max_memory_pages;     /* cap on any agent's linear memory; 0 = 1024 (64 MiB) */
	size_t max_request_bytes;      /* request body cap; 0 = 1 MiB */
	FILE *log;                     /* JSON-lines log (guest logs, refusals); NULL = stderr */
	/* Added after the first version of this header (zero = off, so
	 * initialisers that do not name them keep working): */
	const char *llm_script;        /* --llm-script FILE: the "scripted" provider replays it;
					  NULL = no model provider (llm_chat answers llm_error) */
	const rt_llm_provider *llm;    /* a provider object instead (borrowed, must outlive the
					  engine); overrides llm_script */
} rt_engine_opts;

/** One agent the engine knows about (from the store's list). */
typedef struct rt_agent_info {
	char *name, *version;
	char *manifest_digest;         /* "sha256:..." */
	bool ok;                       /* verified and loadable */
	char *refused_reason;          /* when !ok: why (signature, digest, compatibility ...) */
} rt_agent_info;

/** The outcome of one invocation. Strings owned; free with rt_invoke_result_clear. */
typedef struct rt_invoke_result {
	int http_status;               /* 200 on success; the status that fits the error otherwise */
	const char *error_code;        /* NULL on success; else a stable code (static string):
					  not_found, agent_refused, invalid_json, payload_too_large,
					  timeout, memory_limit, trap, step_limit, tool_denied,
					  step_failed, llm_error, invalid_input, oom, internal */
	char *error_message;           /* human-readable, when error_code is set */
	char *body;                    /* the response JSON (the guest's, or an error object) */
	size_t body_len;
	double instantiate_seconds;
	double invoke_seconds;
} rt_invoke_result;

/**
 * Open the store read-only, load the keyring, verify every artifact.
 * @return 0, or AF_ENOTFOUND / AF_EIO / AF_ECORRUPT when the store or keyring
 *         cannot be opened (message says which); AF_EIO when data_dir cannot
 *         be opened or the sandbox's signal handlers cannot be installed;
 *         AF_ESYNTAX / AF_ENOTFOUND / AF_ETOOBIG for a bad llm_script.
 *         Individual bad artifacts are not an error: they are listed as
 *         refused.
 */
int rt_engine_open(rt_engine **out, const rt_engine_opts *opts);

/** Stop and free. Waits for nothing: call after the last invoke returned. NULL-safe. */
void rt_engine_close(rt_engine *e);

/** The agents of the store, latest version of each name, sorted by name.
 * @param[out] out  caller owns; rt_agent_info_free(out, n) */
int rt_engine_list(rt_engine *e, rt_agent_info **out, size_t *n);
void rt_agent_info_free(rt_agent_info *a, size_t n);

/**
 * The resolved template of an agent (its describe JSON).
 * @param[out] out  caller owns; free()
 * @return 0, AF_ENOTFOUND (no such agent), AF_ESIGNATURE / AF_EVERSION
 *         (refused: the message says why), AF_ENOMEM
 */
int rt_engine_describe(rt_engine *e, const char *name, const char *version, char **out,
		       size_t *out_len);

/**
 * Run one invocation in a fresh instance. Always fills res (also on error).
 * @param[in] version  NULL = latest
 * @param[in] input    the request JSON ({"inputs": {...}}), not trusted
 * @return 0 when an answer (success or a guest/runtime error) is in res;
 *         AF_ENOMEM when even the error could not be built
 * Metrics: counts RT_M_INVOCATIONS, instantiations, cache hits/misses,
 * denials, the instantiate/invoke histograms, and RT_M_ERRORS with
 * res->error_code for every error answer (a caller must not count those
 * again).
 */
int rt_engine_invoke(rt_engine *e, const char *name, const char *version, const char *input,
		     size_t input_len, rt_invoke_result *res);

void rt_invoke_result_clear(rt_invoke_result *res);

/** true once the store was opened and at least one agent verified. */
bool rt_engine_ready(const rt_engine *e);

#endif
