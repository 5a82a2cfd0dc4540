/*
 * gen/cgen.h - resolved template -> deterministic C source for the guest.
 *
 * The generated file (agent.c) holds only data and small functions: the
 * resolved template verbatim (for af_describe), name, version and limits,
 * an input validator, the tool table with an argument validator per tool
 * (compiled from its JSON-schema `parameters`), and either the `steps`
 * workflow (a table of states, each with a compiled argument renderer) or,
 * for LLM agents, the compiled system-prompt renderer and the fixed parts
 * of the chat request. The guest library (codegen/guest/) runs it.
 *
 * Every string from the template reaches the C source only as an escaped
 * string literal (printable ASCII except `"`, `\` and `?`, everything else
 * as a three-digit octal escape); identifiers are made from indexes and
 * comments never carry template text other than a sanitised name.
 * docs/codegen.md describes the output; docs/abi.md the runtime contract.
 */
#ifndef GEN_CGEN_H
#define GEN_CGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Host-function capabilities of guest ABI v1 (bits of gen_agent.abi_caps). */
#define GEN_CAP_LOG       0x01u
#define GEN_CAP_CLOCK     0x02u
#define GEN_CAP_RANDOM    0x04u
#define GEN_CAP_LLM_CHAT  0x08u
#define GEN_CAP_TOOL_CALL 0x10u

/*
 * The one rule set for what can be built (the template checker uses it too,
 * so `check` refuses what `build` would): the limits' defaults and ranges
 * are art_limits[] (art/limits.h); here, a cost cap on the generated C (its
 * size stands for compile time and code size: the sample catalogue's largest
 * agent is about 13 KB of C; a template with thousands of schema properties
 * makes megabytes, and minutes of compile).
 */
#define GEN_MAX_C_BYTES          (512u << 10)

/** Deepest JSON-schema nesting compiled into a validator. */
#define GEN_MAX_SCHEMA_DEPTH 16

/** What the build needs to know about a resolved template. */
typedef struct gen_agent {
	char *name, *version;
	char **capabilities;       /* as granted, in template order */
	size_t n_capabilities;
	unsigned abi_caps;         /* GEN_CAP_* among them */
	uint32_t max_steps, timeout_ms, memory_pages;
	size_t n_tools, n_steps;
	bool llm;                  /* true: LLM agent loop; false: steps workflow */
} gen_agent;

/**
 * Read and check what the build needs from a resolved template.
 * @param[out] out   caller owns; gen_agent_free. NULL on error.
 * @param[in]  json  the canonical resolved template (not retained)
 * @return 0; AF_EINVAL when the template cannot be built (the message says
 *         why: nothing to run, a capability the workflow or the loop needs is
 *         not granted, a tool whose capability is not granted, a step using an
 *         undeclared tool, more steps than limits.max_steps, a limit out of
 *         range); AF_ESYNTAX when json is not a JSON object; AF_ENOMEM.
 */
int gen_agent_parse(gen_agent **out, const char *json, size_t len);

/** Free. NULL-safe. */
void gen_agent_free(gen_agent *a);

/**
 * Generate the agent's C source.
 * Deterministic: the output depends only on the bytes of json and the
 * version of this generator (not on locale, time or key order in memory).
 * Thread-safe.
 * @param[out] out_c    caller owns; free(). NUL-terminated.
 * @param[out] out_len  its length
 * @param[in]  json     the canonical resolved template, len bytes
 * @return 0; every error of gen_agent_parse; AF_EINVAL also for a malformed
 *         or unknown placeholder, an unsupported JSON-schema type, a schema
 *         nested deeper than GEN_MAX_SCHEMA_DEPTH, a string with a NUL.
 */
int gen_c_generate(char **out_c, size_t *out_len, const char *json, size_t len);

#endif
