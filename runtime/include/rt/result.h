/*
 * rt/result.h - the outcome of one invocation (rt_invoke_result), shared by
 * the engine (rt_engine_invoke), one invocation (rt_exec_invoke) and the
 * agent_invoke tool, which gets a callee's result through the host
 * environment's invoke callback (rt/exec.h) without depending on the
 * engine. rt_invoke_result_set_error and rt_error_status are in rt/exec.h.
 */
#ifndef RT_RESULT_H
#define RT_RESULT_H

#include <stddef.h>

/** The outcome of one invocation. Strings owned; free with rt_invoke_result_clear. */
typedef struct rt_invoke_result {
	int http_status;               /* 200 on success; the status that fits the error otherwise */
	const char *error_code;        /* NULL on success; else a stable code (static string):
					  not_found, agent_refused, invalid_json, payload_too_large,
					  timeout, memory_limit, trap, step_limit, tool_denied,
					  step_failed, llm_error, invalid_output, invalid_input,
					  oom, internal */
	char *error_message;           /* human-readable, when error_code is set */
	char *body;                    /* the response JSON (the guest's, or an error object) */
	size_t body_len;
	double instantiate_seconds;
	double invoke_seconds;
} rt_invoke_result;

/** Free what res holds and zero it. NULL-safe. */
void rt_invoke_result_clear(rt_invoke_result *res);

#endif
