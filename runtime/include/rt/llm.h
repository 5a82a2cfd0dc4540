/*
 * rt/llm.h - the model providers behind the af.llm_chat host function
 * (docs/llm.md).
 *
 * A provider answers one OpenAI-style chat-completions request (the JSON
 * the guest built, docs/abi.md) with a response: a completion object
 * ({"choices":[{"message":...}]}) or a message object. Two providers:
 *
 *  - "openai": any OpenAI-compatible POST .../chat/completions endpoint
 *    (OpenAI, vLLM, llama.cpp server, Ollama) over libcurl, with connect
 *    and total timeouts, bounded retries with backoff on 429 / 5xx /
 *    connection errors (honouring Retry-After), a response size cap, and
 *    the API key from a file or the environment, never from a template and
 *    never logged. It answers the first choice's message object.
 *  - "scripted": replays recorded responses from a file, byte for byte,
 *    for tests and offline demos. It never contacts a model.
 *
 * No provider is configured by default: llm_chat then fails and the agent
 * answers llm_error. Which provider runs is runtime configuration
 * (rt_llm_config: flags and AF_LLM_* variables); a template may name a
 * model, never a credential.
 *
 * Script file: {"responses": [<response object>, ...]} (at most
 * RT_LLM_SCRIPT_MAX bytes, 1..RT_LLM_SCRIPT_RESPONSES objects). Within one
 * invocation the n-th model call gets responses[n] (n counts the assistant
 * messages already in the request's conversation, so the provider keeps no
 * state and serves any number of threads); past the end the last response
 * repeats, which lets a script drive an agent into its step limit. The
 * bytes a guest gets are the bytes of the file, from the entry's first
 * byte to its last.
 *
 * Thread-safety: a provider is immutable once open (the openai provider's
 * key file reload is locked inside); rt_llm_chat may run on any number of
 * threads at once.
 */
#ifndef RT_LLM_H
#define RT_LLM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/**
 * A provider's chat function.
 * @param[in]  ctx       the provider's context
 * @param[in]  req, len  the request JSON (not NUL-terminated)
 * @param[out] resp, resp_len  on success: the response JSON, malloc'd and
 *                       NUL-terminated; the caller frees it
 * @return 0, or a negative AF_E* code with art_error_set (the message is
 *         logged; the guest only sees a failure)
 */
typedef int (*rt_llm_fn)(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len);

/** What the host knows about one model call. */
typedef struct rt_llm_call {
	int64_t deadline_ms;   /* CLOCK_MONOTONIC milliseconds when the invocation's deadline
				  passes; 0 = none. A provider gives up (and stops retrying)
				  by then. */
	const char *agent;     /* "name@version" for log lines, or NULL */
	FILE *log;             /* the engine's log stream, or NULL (the provider's own) */
} rt_llm_call;

/** rt_llm_fn with the call's deadline and log (see rt_llm_call). */
typedef int (*rt_llm_call_fn)(void *ctx, const rt_llm_call *call, const char *req, size_t len,
			      char **resp, size_t *resp_len);

/** A provider: a name for logs ("openai", "scripted"), its functions and context. */
typedef struct rt_llm_provider {
	const char *name;
	rt_llm_fn chat;                /* without a deadline */
	void *ctx;
	void (*destroy)(void *ctx);    /* may be NULL; called by rt_llm_provider_free */
	rt_llm_call_fn chat_call;      /* may be NULL: rt_llm_chat then calls chat */
	const char *description;       /* one line for startup logs (never a secret), or NULL */
} rt_llm_provider;

#define RT_LLM_SCRIPT_MAX ((size_t)16 << 20)
#define RT_LLM_SCRIPT_RESPONSES 10000u
/** The largest response a provider may return to a guest. */
#define RT_LLM_RESPONSE_MAX ((size_t)1 << 20)

/* Defaults of rt_llm_config_init (docs/llm.md). */
#define RT_LLM_DEFAULT_BASE_URL "https://api.openai.com/v1"
#define RT_LLM_DEFAULT_TIMEOUT_MS 60000u
#define RT_LLM_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define RT_LLM_DEFAULT_RETRIES 3u
#define RT_LLM_DEFAULT_BACKOFF_MS 500u
#define RT_LLM_DEFAULT_MAX_BACKOFF_MS 8000u
#define RT_LLM_DEFAULT_MAX_RETRY_AFTER_MS 30000u
/** Largest HTTP response body read from an endpoint (the transfer is cut there). */
#define RT_LLM_DEFAULT_MAX_RESPONSE ((size_t)4 << 20)
/**
 * The host gives a provider the invocation's deadline plus this slack, so
 * that a model call still running at the deadline ends after the sandbox's
 * own timer fired: the caller then sees `timeout`, not `llm_error`.
 */
#define RT_LLM_DEADLINE_SLACK_MS 50
/** Largest API key file. */
#define RT_LLM_KEY_FILE_MAX 4096u

/** How the runtime reaches a model. Strings are borrowed (must outlive the open). */
typedef struct rt_llm_config {
	const char *provider;          /* "openai", "scripted", "none", or NULL: scripted when
					  script is set, openai when base_url is set, else none */
	const char *base_url;          /* openai: NULL = RT_LLM_DEFAULT_BASE_URL */
	const char *api_key_file;      /* openai: the key, trimmed; NULL: AF_LLM_API_KEY, then
					  OPENAI_API_KEY, else no Authorization header */
	const char *script;            /* scripted: the script file */
	const char *model;             /* openai: replaces the request's model; NULL keeps the
					  template's model.name */
	uint32_t timeout_ms;           /* openai: one attempt, connect to last byte */
	uint32_t connect_timeout_ms;   /* openai */
	uint32_t retries;              /* openai: attempts after the first */
	const char *max_tokens_field;  /* openai: "max_completion_tokens" (NULL: the default) or
					  "max_tokens" */
	uint32_t backoff_ms;           /* openai: first backoff; doubles, with jitter */
	uint32_t max_backoff_ms;       /* openai: backoff cap */
	uint32_t max_retry_after_ms;   /* openai: a longer Retry-After ends the call */
	size_t max_response;           /* openai: HTTP body cap */
	FILE *log;                     /* openai: retries, when the call has no log; NULL = stderr */
	void (*sleep_ms)(void *arg, uint32_t ms); /* openai: how to wait between attempts;
					  NULL = nanosleep (tests record the waits instead) */
	void *sleep_arg;
	unsigned set;                  /* private: options given explicitly (1u << RT_LLM_OPT_*) */
} rt_llm_config;

/** The --llm-* options, in the order of RT_LLM_LONG_OPTIONS. */
enum {
	RT_LLM_OPT_PROVIDER,
	RT_LLM_OPT_BASE_URL,
	RT_LLM_OPT_API_KEY_FILE,
	RT_LLM_OPT_SCRIPT,
	RT_LLM_OPT_MODEL,
	RT_LLM_OPT_TIMEOUT_MS,
	RT_LLM_OPT_CONNECT_TIMEOUT_MS,
	RT_LLM_OPT_RETRIES,
	RT_LLM_OPT_MAX_TOKENS_FIELD,
	RT_LLM_OPT_COUNT
};

/**
 * getopt_long entries for every --llm-* option, with values base + RT_LLM_OPT_*.
 * Expand inside a struct option array where <getopt.h> is included; hand
 * each such value to rt_llm_config_option.
 */
#define RT_LLM_LONG_OPTIONS(base)                                                          \
	{"llm-provider", required_argument, NULL, (base) + RT_LLM_OPT_PROVIDER},           \
	{"llm-base-url", required_argument, NULL, (base) + RT_LLM_OPT_BASE_URL},           \
	{"llm-api-key-file", required_argument, NULL, (base) + RT_LLM_OPT_API_KEY_FILE},   \
	{"llm-script", required_argument, NULL, (base) + RT_LLM_OPT_SCRIPT},               \
	{"llm-model", required_argument, NULL, (base) + RT_LLM_OPT_MODEL},                 \
	{"llm-timeout-ms", required_argument, NULL, (base) + RT_LLM_OPT_TIMEOUT_MS},       \
	{"llm-connect-timeout-ms", required_argument, NULL,                                \
	 (base) + RT_LLM_OPT_CONNECT_TIMEOUT_MS},                                          \
	{"llm-retries", required_argument, NULL, (base) + RT_LLM_OPT_RETRIES},             \
	{"llm-max-tokens-field", required_argument, NULL, (base) + RT_LLM_OPT_MAX_TOKENS_FIELD}

/** The help text of the --llm-* options (both programs print it). */
#define RT_LLM_HELP                                                                          \
	"model provider (docs/llm.md; each flag also from its AF_LLM_* variable):\n"          \
	"  --llm-provider P      openai or scripted (default: scripted with --llm-script,\n"    \
	"                        openai with --llm-base-url, else none: llm_chat fails)\n"     \
	"  --llm-base-url URL    OpenAI-compatible endpoint, with or without /v1\n"             \
	"                        (default https://api.openai.com/v1)\n"                         \
	"  --llm-api-key-file F  file holding the API key (else AF_LLM_API_KEY or\n"            \
	"                        OPENAI_API_KEY; none for local servers)\n"                     \
	"  --llm-script FILE     scripted provider: replay FILE's recorded responses\n"          \
	"  --llm-model NAME      use this model instead of each template's model.name\n"        \
	"  --llm-timeout-ms MS   one attempt, connect to last byte (default 60000)\n"           \
	"  --llm-connect-timeout-ms MS  (default 10000)\n"                                      \
	"  --llm-retries N       retries on 429, 5xx, timeouts, connection errors (default 3)\n"  \
	"  --llm-max-tokens-field F  the token cap's name: max_completion_tokens (default)\n" \
	"                        or max_tokens, for servers that predate it\n"

/** Fill c with the defaults above (no provider, no script, no key file). */
void rt_llm_config_init(rt_llm_config *c);

/**
 * Set one --llm-* option from its text (a flag's argument).
 * @param[in] option  RT_LLM_OPT_*
 * @param[in] value   borrowed: must outlive c
 * @return 0; AF_EINVAL (an unknown provider, a number out of range, an
 *         empty value; the message names the flag and what it accepts)
 */
int rt_llm_config_option(rt_llm_config *c, int option, const char *value);

/**
 * Take every option not set by rt_llm_config_option from its environment
 * variable: AF_LLM_PROVIDER, AF_LLM_BASE_URL, AF_LLM_API_KEY_FILE,
 * AF_LLM_SCRIPT, AF_LLM_MODEL, AF_LLM_TIMEOUT_MS,
 * AF_LLM_CONNECT_TIMEOUT_MS, AF_LLM_RETRIES (empty = unset). Flags win.
 * @return 0; AF_EINVAL as rt_llm_config_option (the message names the variable)
 */
int rt_llm_config_env(rt_llm_config *c);

/**
 * Open the provider c asks for.
 * @param[out] out  caller owns; rt_llm_provider_free. NULL on error and
 *                  when c asks for no provider.
 * @return 0; AF_EINVAL (contradictory options: a script for openai,
 *         scripted without a script, a bad base URL); the errors of
 *         rt_llm_scripted_open and rt_llm_openai_open
 */
int rt_llm_open(rt_llm_provider **out, const rt_llm_config *c);

/**
 * Load a script and make the "scripted" provider that replays it.
 * @param[out] out  caller owns; rt_llm_provider_free. NULL on error.
 * @return 0; AF_ENOTFOUND / AF_EIO / AF_ETOOBIG (reading the file);
 *         AF_ESYNTAX (not JSON, no "responses" array, an entry that is not
 *         an object, no entries; the message names the file); AF_ETOOBIG
 *         (an entry over RT_LLM_RESPONSE_MAX); AF_ENOMEM
 */
int rt_llm_scripted_open(rt_llm_provider **out, const char *path);

/**
 * Make the "openai" provider: POST {base}/chat/completions. The key file
 * is read now (and again whenever it changes, so a rotated key is picked
 * up without a restart).
 * @param[out] out  caller owns; rt_llm_provider_free. NULL on error.
 * @return 0; AF_EINVAL (a base URL that is not http:// or https://, a key
 *         with characters that cannot go in an HTTP header, an empty key
 *         file); AF_ENOTFOUND / AF_EIO / AF_ETOOBIG (reading the key file);
 *         AF_EIO (libcurl cannot start); AF_ENOMEM
 */
int rt_llm_openai_open(rt_llm_provider **out, const rt_llm_config *c);

/**
 * Wrap a provider so that every response it gives is also written to a
 * script file that the scripted provider replays: {"responses":[...]},
 * each entry the exact bytes the guest got, in call order. The file is
 * rewritten atomically after each response, so it is complete whenever the
 * process stops. Meant for one invocation at a time (`agentfactory run
 * --llm-record FILE`): the scripted provider picks entries by turn within
 * one conversation.
 * @param[in]  inner  borrowed: must outlive the recorder
 * @param[out] out    caller owns; rt_llm_provider_free (inner is not freed)
 * @return 0; AF_EINVAL (NULL argument); AF_EIO (the file cannot be written
 *         now: it is created empty at once, so a bad path fails early);
 *         AF_ENOMEM
 */
int rt_llm_record_open(rt_llm_provider **out, const rt_llm_provider *inner, const char *path);

/**
 * One model call through p: p->chat_call with call, or p->chat.
 * @param[in] call  may be NULL (no deadline, the provider's log)
 * @return as rt_llm_fn; AF_EINVAL when p has no chat function
 */
int rt_llm_chat(const rt_llm_provider *p, const rt_llm_call *call, const char *req, size_t len,
		char **resp, size_t *resp_len);

/** Free a provider made here. NULL-safe. */
void rt_llm_provider_free(rt_llm_provider *p);

#endif
