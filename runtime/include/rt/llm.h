/*
 * rt/llm.h - the model providers behind the af.llm_chat host function.
 *
 * A provider answers one OpenAI-style chat-completions request (the JSON
 * the guest built, docs/abi.md) with a response (a completion object or a
 * message object). The runtime ships one provider here: "scripted", which
 * replays recorded responses from a file, for tests and offline demos. No
 * provider is configured by default: llm_chat then fails and the agent
 * answers llm_error. (An OpenAI-compatible HTTP provider plugs in through
 * the same interface.)
 *
 * Script file: {"responses": [<response object>, ...]} (at most
 * RT_LLM_SCRIPT_MAX bytes, 1..RT_LLM_SCRIPT_RESPONSES objects). Within one
 * invocation the n-th model call gets responses[n] (n counts the assistant
 * messages already in the request's conversation, so the provider keeps no
 * state and serves any number of threads); past the end the last response
 * repeats, which lets a script drive an agent into its step limit.
 */
#ifndef RT_LLM_H
#define RT_LLM_H

#include <stddef.h>

/**
 * A provider's chat function.
 * @param[in]  ctx       the provider's context
 * @param[in]  req, len  the request JSON (not NUL-terminated)
 * @param[out] resp, resp_len  on success: the response JSON, malloc'd; the
 *                       caller frees it
 * @return 0, or a negative AF_E* code with art_error_set (the message is
 *         logged; the guest only sees a failure)
 */
typedef int (*rt_llm_fn)(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len);

/** A provider: a name for logs ("scripted"), its function and context. */
typedef struct rt_llm_provider {
	const char *name;
	rt_llm_fn chat;
	void *ctx;
	void (*destroy)(void *ctx);   /* may be NULL; called by rt_llm_provider_free */
} rt_llm_provider;

#define RT_LLM_SCRIPT_MAX ((size_t)16 << 20)
#define RT_LLM_SCRIPT_RESPONSES 10000u
/** The largest response a provider may return to a guest. */
#define RT_LLM_RESPONSE_MAX ((size_t)1 << 20)

/**
 * Load a script and make the "scripted" provider that replays it.
 * @param[out] out  caller owns; rt_llm_provider_free. NULL on error.
 * @return 0; AF_ENOTFOUND / AF_EIO / AF_ETOOBIG (reading the file);
 *         AF_ESYNTAX (not JSON, no "responses" array, an entry that is not
 *         an object, no entries; the message names the file); AF_ENOMEM
 */
int rt_llm_scripted_open(rt_llm_provider **out, const char *path);

/** Free a provider made here. NULL-safe. */
void rt_llm_provider_free(rt_llm_provider *p);

#endif
