/*
 * af_guest.h - the guest support library of every agent: the interface
 * between the generated agent.c (data, render and validate functions) and
 * the library (allocator, strict JSON, the `steps` runner, the LLM agent
 * loop and the exports of guest ABI v1, see docs/abi.md).
 *
 * Compiled for wasm32 only, per agent, with -DAF_CAP_<NAME>=1 for each
 * capability the template grants: a host function whose capability is not
 * granted is not even declared, so the module cannot import it.
 *
 * Memory: one bump allocator over the linear memory; nothing is ever freed
 * (an instance serves one request and is then discarded by the host).
 * Strings: every char pointer with a length is UTF-8 and not NUL-terminated
 * unless said otherwise. "Escaped" text is JSON string content (what goes
 * between the quotes).
 */
#ifndef AF_GUEST_H
#define AF_GUEST_H

#include <stddef.h>
#include <stdint.h>

#define AF_GUEST_ABI_VERSION 1

#ifndef AF_CAP_LOG
#define AF_CAP_LOG 0
#endif
#ifndef AF_CAP_CLOCK
#define AF_CAP_CLOCK 0
#endif
#ifndef AF_CAP_RANDOM
#define AF_CAP_RANDOM 0
#endif
#ifndef AF_CAP_LLM_CHAT
#define AF_CAP_LLM_CHAT 0
#endif
#ifndef AF_CAP_TOOL_CALL
#define AF_CAP_TOOL_CALL 0
#endif

/* ---- memory ------------------------------------------------------------ */

/** n bytes, 8-aligned, from the guest heap; NULL when memory cannot grow. */
void *af_mem_alloc(size_t n);

/* ---- output buffers ----------------------------------------------------- */

/**
 * A growable buffer. Errors are sticky: after an allocation failure every
 * further put is ignored and failed stays 1, so render code needs no checks.
 * Zero-initialise before use.
 */
typedef struct af_buf {
	char *data;
	size_t len, cap;
	int failed;
} af_buf;

void af_buf_put(af_buf *b, const char *s, size_t n);
void af_buf_puts(af_buf *b, const char *s);                 /* NUL-terminated s */
void af_buf_put_escaped(af_buf *b, const char *s, size_t n); /* JSON-escape raw bytes */
void af_buf_put_uint(af_buf *b, uint64_t v);

/* ---- strict JSON (RFC 8259) ---------------------------------------------- */

enum {
	AF_J_OBJECT = 1, AF_J_ARRAY, AF_J_STRING, AF_J_NUMBER, AF_J_TRUE, AF_J_FALSE, AF_J_NULL
};

/**
 * A token. Strings: [start, end) is the escaped content between the quotes.
 * Containers and scalars: [start, end) is the value's text. size: members of
 * an object, elements of an array. next: index of the token after this
 * value's subtree (its next sibling, when it has one). In an object, each
 * member is a key token (a string) followed by its value's tokens.
 */
typedef struct af_tok {
	uint32_t type, start, end, size, next;
} af_tok;

typedef struct af_json {
	const char *text;
	size_t len;
	af_tok *tok;
	uint32_t n;
} af_json;

#define AF_JSON_MAX_DEPTH 64
#define AF_JSON_EINVAL (-1)
#define AF_JSON_ENOMEM (-2)
#define AF_JSON_EDEPTH (-3) /* valid so far, but nested deeper than AF_JSON_MAX_DEPTH */

/** What is wrong with a text af_json_parse refused with rc: "is not valid
 * JSON", or "is nested too deep (more than 64 levels)". Static string. */
const char *af_json_why(int rc);

/**
 * Tokenize text as one strict JSON value: UTF-8 checked, no control
 * characters in strings, numbers per the grammar, no trailing data, no
 * duplicate keys (compared decoded: "a" and "\u0061" are the same key),
 * nesting at most AF_JSON_MAX_DEPTH.
 * text must stay alive as long as j. @return 0, AF_JSON_EINVAL, AF_JSON_EDEPTH,
 * AF_JSON_ENOMEM
 */
int af_json_parse(af_json *j, const char *text, size_t len);

/** Value token of member key (raw bytes, compared with the decoded keys) in
 * object obj, or -1 (also if obj is no object). */
int af_json_member(const af_json *j, int obj, const char *key, size_t klen);

/** Is token t a string whose decoded value equals s[0..n)? */
int af_json_streq(const af_json *j, int t, const char *s, size_t n);

/** Is number token t an integer (no fractional part: 1, 1.0, 1e2)? */
int af_json_is_integer(const af_json *j, int t);

/**
 * Unescape string token t into a new NUL-terminated buffer; lone surrogates
 * become U+FFFD. @return the bytes (length in *out_len) or NULL on OOM.
 */
char *af_json_unescape(const af_json *j, int t, size_t *out_len);

/* ---- errors -------------------------------------------------------------- */

#define AF_ERR_MSG_MAX 480

/** An error for the response: a stable code and an escaped message. */
typedef struct af_err {
	const char *code;
	char msg[AF_ERR_MSG_MAX + 1];
	size_t len;
} af_err;

/** Append raw text to the message (escaped; truncated at a UTF-8 boundary). */
void af_err_add(af_err *e, const char *s, size_t n);
void af_err_adds(af_err *e, const char *s);

/* ---- validators (called by the generated ones) --------------------------- */

#define AF_T_OBJECT  0x01u
#define AF_T_ARRAY   0x02u
#define AF_T_STRING  0x04u
#define AF_T_NUMBER  0x08u
#define AF_T_INTEGER 0x10u
#define AF_T_BOOLEAN 0x20u
#define AF_T_NULL    0x40u

/** A validator: 0 when token t conforms, else -1 with a message appended to e. */
typedef int (*af_validate_fn)(const af_json *j, int t, af_err *e);

/** Does token t have one of the types in mask? If not: "PATH: expected EXPECTED". */
int af_v_type(const af_json *j, int t, unsigned mask, const char *path, const char *expected,
	      af_err *e);
/** Always -1: "PATH: missing required property 'KEY'". */
int af_v_missing(af_err *e, const char *path, const char *key);
/** Object obj has no member outside keys[0..n)? If it has: "PATH: unexpected property 'K'". */
int af_v_extra(const af_json *j, int obj, const char *const *keys, size_t n, const char *path,
	       af_err *e);

/* ---- rendering (called by the generated render functions) --------------- */

typedef struct af_run af_run;

#define AF_PUT_STR 0 /* inside a JSON string: a string value's content, else its JSON text, escaped */
#define AF_PUT_RAW 1 /* as a JSON value: the value itself, or null when missing */

typedef void (*af_render_fn)(af_run *r, af_buf *b);

/** Put input property key (missing: nothing, or null in AF_PUT_RAW). */
void af_put_input(af_run *r, af_buf *b, const char *key, size_t klen, int mode);
/** Put the result of step number step, or its member field when flen > 0. */
void af_put_step(af_run *r, af_buf *b, uint32_t step, const char *field, size_t flen, int mode);

/* ---- the agent (defined by the generated agent.c) ------------------------ */

typedef struct af_tool {
	const char *name;
	uint32_t name_len;
	const char *capability;
	af_validate_fn validate;     /* of its arguments */
} af_tool;

typedef struct af_step {
	const char *id;
	uint32_t id_len;
	uint32_t tool;               /* index into af_agent.tools */
	af_render_fn render_args;    /* writes the arguments object as JSON */
} af_step;

typedef struct af_agent {
	const char *describe;        /* the resolved template, verbatim */
	uint32_t describe_len;
	const char *name, *version;  /* NUL-terminated */
	uint32_t max_steps, timeout_ms;
	const af_tool *tools;
	uint32_t n_tools;
	const af_step *steps;        /* a workflow agent when n_steps > 0 */
	uint32_t n_steps;
	af_validate_fn validate_inputs;
	af_render_fn render_system;  /* LLM agents: the system prompt, escaped */
	const char *request_head;    /* LLM agents: {"model":...,"messages":[ */
	uint32_t request_head_len;
	const char *request_tail;    /* LLM agents: ],"tools":[...],...} */
	uint32_t request_tail_len;
	af_validate_fn validate_output; /* LLM agents: the final answer against `outputs` */
	uint32_t output_object;      /* LLM agents: 1 when `outputs` asks for a JSON object */
} af_agent;

extern const af_agent af_agent_def;

#endif
