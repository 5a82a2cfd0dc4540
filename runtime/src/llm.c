/*
 * llm.c - the provider layer of rt/llm.h: configuration (flags and
 * AF_LLM_* variables), the choice of a provider, and the "scripted"
 * provider. The "openai" provider is in llm_openai.c.
 *
 * The scripted provider keeps each response as the exact bytes of the
 * script file (jansson checks the file; a small scanner then finds where
 * each entry of "responses" starts and ends), so a guest replaying a
 * recorded session gets what was recorded, byte for byte. Responses are
 * chosen by the number of assistant turns already in the request: no state,
 * read-only after open, thread-safe.
 */
#include "rt/llm.h"

#include "art/error.h"
#include "art/util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration --------------------------------------------------------------- */

static const char *const option_flags[RT_LLM_OPT_COUNT] = {
	"--llm-provider", "--llm-base-url", "--llm-api-key-file", "--llm-script",
	"--llm-model", "--llm-timeout-ms", "--llm-connect-timeout-ms", "--llm-retries",
	"--llm-max-tokens-field",
};

static const char *const option_env[RT_LLM_OPT_COUNT] = {
	"AF_LLM_PROVIDER", "AF_LLM_BASE_URL", "AF_LLM_API_KEY_FILE", "AF_LLM_SCRIPT",
	"AF_LLM_MODEL", "AF_LLM_TIMEOUT_MS", "AF_LLM_CONNECT_TIMEOUT_MS", "AF_LLM_RETRIES",
	"AF_LLM_MAX_TOKENS_FIELD",
};

void rt_llm_config_init(rt_llm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = RT_LLM_DEFAULT_TIMEOUT_MS;
	c->connect_timeout_ms = RT_LLM_DEFAULT_CONNECT_TIMEOUT_MS;
	c->retries = RT_LLM_DEFAULT_RETRIES;
	c->backoff_ms = RT_LLM_DEFAULT_BACKOFF_MS;
	c->max_backoff_ms = RT_LLM_DEFAULT_MAX_BACKOFF_MS;
	c->max_retry_after_ms = RT_LLM_DEFAULT_MAX_RETRY_AFTER_MS;
	c->max_response = RT_LLM_DEFAULT_MAX_RESPONSE;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0;
	size_t i;

	if (!s || !*s || strlen(s) > 10)
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int set_option(rt_llm_config *c, int option, const char *value, const char *what)
{
	if (option < 0 || option >= RT_LLM_OPT_COUNT)
		return art_error_set(AF_EINVAL, "unknown model provider option %d", option);
	if (!value || !*value)
		return art_error_set(AF_EINVAL, "%s: needs a value", what);
	switch (option) {
	case RT_LLM_OPT_PROVIDER:
		if (strcmp(value, "openai") != 0 && strcmp(value, "scripted") != 0 &&
		    strcmp(value, "none") != 0)
			return art_error_set(AF_EINVAL, "%s: '%.64s' is not a provider (openai, scripted or none)",
					     what, value);
		c->provider = value;
		break;
	case RT_LLM_OPT_BASE_URL: c->base_url = value; break;
	case RT_LLM_OPT_API_KEY_FILE: c->api_key_file = value; break;
	case RT_LLM_OPT_SCRIPT: c->script = value; break;
	case RT_LLM_OPT_MODEL: c->model = value; break;
	case RT_LLM_OPT_TIMEOUT_MS:
		if (parse_u32(value, 1, 3600000, &c->timeout_ms) < 0)
			return art_error_set(AF_EINVAL, "%s: expected 1 .. 3600000 milliseconds, got '%.32s'",
					     what, value);
		break;
	case RT_LLM_OPT_CONNECT_TIMEOUT_MS:
		if (parse_u32(value, 1, 600000, &c->connect_timeout_ms) < 0)
			return art_error_set(AF_EINVAL, "%s: expected 1 .. 600000 milliseconds, got '%.32s'",
					     what, value);
		break;
	case RT_LLM_OPT_MAX_TOKENS_FIELD:
		if (strcmp(value, "max_completion_tokens") != 0 && strcmp(value, "max_tokens") != 0)
			return art_error_set(AF_EINVAL, "%s: expected max_completion_tokens or max_tokens, "
					     "got '%.32s'", what, value);
		c->max_tokens_field = value;
		break;
	default: /* RT_LLM_OPT_RETRIES */
		if (parse_u32(value, 0, 10, &c->retries) < 0)
			return art_error_set(AF_EINVAL, "%s: expected 0 .. 10, got '%.32s'", what, value);
		break;
	}
	c->set |= 1u << option;
	return 0;
}

int rt_llm_config_option(rt_llm_config *c, int option, const char *value)
{
	if (!c)
		return art_error_set(AF_EINVAL, "NULL model provider configuration");
	return set_option(c, option, value,
			  option >= 0 && option < RT_LLM_OPT_COUNT ? option_flags[option] : "option");
}

int rt_llm_config_env(rt_llm_config *c)
{
	int i, rc;

	if (!c)
		return art_error_set(AF_EINVAL, "NULL model provider configuration");
	for (i = 0; i < RT_LLM_OPT_COUNT; i++) {
		const char *v = getenv(option_env[i]);

		if ((c->set & (1u << i)) || !v || !*v)
			continue;
		if ((rc = set_option(c, i, v, option_env[i])) < 0)
			return rc;
	}
	return 0;
}

int rt_llm_open(rt_llm_provider **out, const rt_llm_config *c)
{
	const char *provider;

	if (!out || !c)
		return art_error_set(AF_EINVAL, "model provider: NULL argument");
	*out = NULL;
	provider = c->provider;
	if (!provider) {
		if (c->script && c->base_url)
			return art_error_set(AF_EINVAL,
					     "model provider: both --llm-script and --llm-base-url are given: "
					     "say which one with --llm-provider scripted or openai");
		provider = c->script ? "scripted" : c->base_url ? "openai" : "none";
	}
	if (strcmp(provider, "none") == 0)
		return 0;
	if (strcmp(provider, "scripted") == 0) {
		if (!c->script)
			return art_error_set(AF_EINVAL,
					     "model provider scripted: needs --llm-script FILE (or AF_LLM_SCRIPT)");
		if (c->base_url || c->api_key_file || c->model)
			return art_error_set(AF_EINVAL,
					     "model provider scripted: --llm-base-url, --llm-api-key-file and "
					     "--llm-model are for the openai provider");
		return rt_llm_scripted_open(out, c->script);
	}
	if (strcmp(provider, "openai") == 0) {
		if (c->script)
			return art_error_set(AF_EINVAL,
					     "model provider openai: --llm-script is for the scripted provider");
		return rt_llm_openai_open(out, c);
	}
	return art_error_set(AF_EINVAL, "model provider '%.64s' is unknown (openai, scripted or none)",
			     provider);
}

int rt_llm_chat(const rt_llm_provider *p, const rt_llm_call *call, const char *req, size_t len,
		char **resp, size_t *resp_len)
{
	if (!resp || !resp_len)
		return art_error_set(AF_EINVAL, "llm: NULL argument");
	*resp = NULL;
	*resp_len = 0;
	if (!p || (!p->chat_call && !p->chat))
		return art_error_set(AF_EINVAL, "llm: no model provider");
	if (p->chat_call)
		return p->chat_call(p->ctx, call, req, len, resp, resp_len);
	return p->chat(p->ctx, req, len, resp, resp_len);
}

void rt_llm_provider_free(rt_llm_provider *p)
{
	if (!p)
		return;
	if (p->destroy)
		p->destroy(p->ctx);
	free(p);
}

/* ---- the scripted provider ---------------------------------------------------------- */

typedef struct script {
	char *text;          /* the file */
	const char **responses;  /* into text */
	size_t *lens;
	size_t n;
	char description[256];
} script;

static void script_free(void *ctx)
{
	script *s = ctx;

	if (!s)
		return;
	free(s->text);
	free(s->responses);
	free(s->lens);
	free(s);
}

/*
 * A scanner over text jansson has already accepted as one JSON value:
 * only the spans matter, so it trusts the grammar and never fails on it.
 */
static size_t skip_space(const char *t, size_t n, size_t i)
{
	while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
		i++;
	return i;
}

static size_t skip_value(const char *t, size_t n, size_t i)
{
	int depth = 0;

	do {
		if (i >= n)
			return n;
		if (t[i] == '"') {
			for (i++; i < n && t[i] != '"'; i++)
				if (t[i] == '\\')
					i++;
			i++;
		} else if (t[i] == '{' || t[i] == '[') {
			depth++;
			i++;
		} else if (t[i] == '}' || t[i] == ']') {
			depth--;
			i++;
		} else if (depth == 0) {
			/* a number or a literal at the top: up to a delimiter */
			while (i < n && !strchr(",}] \t\r\n", t[i]))
				i++;
		} else {
			i++;
		}
	} while (depth > 0);
	return i;
}

/* Is the string token at t[i] (a key) exactly "key"? (Keys are compared as
 * written: "responses" has no escape in any sane file, and an escaped key
 * is still found by jansson, so a mismatch only costs an error below.) */
static bool key_is(const char *t, size_t n, size_t i, const char *key)
{
	size_t k = strlen(key);

	return i + k + 2 <= n && t[i] == '"' && memcmp(t + i + 1, key, k) == 0 && t[i + k + 1] == '"';
}

/* The spans of the elements of the top-level member "responses". */
static int find_spans(script *s, size_t len, size_t want, const char *path)
{
	const char *t = s->text;
	size_t i = skip_space(t, len, 0);

	if (i >= len || t[i] != '{')
		goto bad;
	i = skip_space(t, len, i + 1);
	while (i < len && t[i] == '"') {
		bool hit = key_is(t, len, i, "responses");

		i = skip_space(t, len, skip_value(t, len, i));
		if (i >= len || t[i] != ':')
			goto bad;
		i = skip_space(t, len, i + 1);
		if (hit) {
			if (t[i] != '[')
				goto bad;
			i = skip_space(t, len, i + 1);
			while (i < len && t[i] != ']' && s->n < want) {
				size_t end = skip_value(t, len, i);

				s->responses[s->n] = t + i;
				s->lens[s->n] = end - i;
				s->n++;
				i = skip_space(t, len, end);
				if (i < len && t[i] == ',')
					i = skip_space(t, len, i + 1);
			}
			if (s->n == want)
				return 0;
			goto bad;
		}
		i = skip_space(t, len, skip_value(t, len, i));
		if (i < len && t[i] == ',')
			i = skip_space(t, len, i + 1);
	}
bad:
	return art_error_set(AF_ESYNTAX, "%s: cannot locate the entries of \"responses\" (write the "
				 "key without escapes)", path);
}

static int scripted_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	const script *s = ctx;
	json_t *root, *msgs, *m;
	size_t turn = 0, i;

	*resp = NULL;
	*resp_len = 0;
	root = json_loadb(req, len, JSON_REJECT_DUPLICATES, NULL);
	msgs = json_object_get(root, "messages");
	if (!json_is_array(msgs)) {
		json_decref(root);
		return art_error_set(AF_ESYNTAX, "scripted: the request has no messages array");
	}
	json_array_foreach(msgs, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));

		if (role && strcmp(role, "assistant") == 0)
			turn++;
	}
	json_decref(root);
	if (turn >= s->n)
		turn = s->n - 1;
	*resp = malloc(s->lens[turn] + 1);
	if (!*resp)
		return art_error_set(AF_ENOMEM, "out of memory");
	memcpy(*resp, s->responses[turn], s->lens[turn]);
	(*resp)[s->lens[turn]] = '\0';
	*resp_len = s->lens[turn];
	return 0;
}

int rt_llm_scripted_open(rt_llm_provider **out, const char *path)
{
	rt_llm_provider *p = NULL;
	script *s = NULL;
	json_t *root = NULL, *arr, *v;
	json_error_t jerr;
	size_t len = 0, i;
	int rc;

	if (!out || !path)
		return art_error_set(AF_EINVAL, "scripted: NULL argument");
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return art_error_set(AF_ENOMEM, "out of memory");
	if ((rc = art_file_read(&s->text, &len, path, RT_LLM_SCRIPT_MAX)) < 0)
		goto cleanup;
	root = json_loadb(s->text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = art_error_set(AF_ESYNTAX, "%s:%d:%d: not JSON: %s", path, jerr.line, jerr.column,
				   jerr.text);
		goto cleanup;
	}
	arr = json_object_get(root, "responses");
	if (!json_is_object(root) || !json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > RT_LLM_SCRIPT_RESPONSES) {
		rc = art_error_set(AF_ESYNTAX, "%s: expected {\"responses\": [1..%u response objects]}",
				   path, RT_LLM_SCRIPT_RESPONSES);
		goto cleanup;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_object(v)) {
			rc = art_error_set(AF_ESYNTAX, "%s: responses[%zu] is not an object", path, i);
			goto cleanup;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(s->responses = calloc(json_array_size(arr), sizeof(char *))) ||
	    !(s->lens = calloc(json_array_size(arr), sizeof(size_t)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = find_spans(s, len, json_array_size(arr), path)) < 0)
		goto cleanup;
	for (i = 0; i < s->n; i++) {
		if (s->lens[i] > RT_LLM_RESPONSE_MAX) {
			rc = art_error_set(AF_ETOOBIG, "%s: responses[%zu] is over %zu bytes", path, i,
					   RT_LLM_RESPONSE_MAX);
			goto cleanup;
		}
	}
	snprintf(s->description, sizeof(s->description), "scripted: replaying %.200s (%zu responses)",
		 path, s->n);
	p->name = "scripted";
	p->chat = scripted_chat;
	p->ctx = s;
	p->destroy = script_free;
	p->description = s->description;
	*out = p;
	p = NULL;
	s = NULL;
cleanup:
	script_free(s);
	free(p);
	json_decref(root);
	return rc;
}

/* ---- the recorder ------------------------------------------------------------------- */

typedef struct recorder {
	const rt_llm_provider *inner;
	char *path;
	pthread_mutex_t mu;
	art_buf entries;               /* ",\n  " joined response bytes */
	size_t n;
	int failed;                    /* the file could not be written: said once */
	char description[512];
} recorder;

static int record_write(recorder *r)
{
	art_buf out = ART_BUF_INIT;
	int rc;

	out.max = RT_LLM_SCRIPT_MAX;
	if ((rc = art_buf_puts(&out, "{\"responses\":[")) == 0 && r->n)
		rc = art_buf_puts(&out, "\n  ");
	if (rc == 0 && r->entries.len)
		rc = art_buf_append(&out, r->entries.data, r->entries.len);
	if (rc == 0)
		rc = art_buf_puts(&out, r->n ? "\n]}\n" : "]}\n");
	if (rc == 0)
		rc = art_file_write_atomic(r->path, out.data, out.len, 0600);
	art_buf_free(&out);
	return rc;
}

static int record_call(void *ctx, const rt_llm_call *call, const char *req, size_t len, char **resp,
		       size_t *resp_len)
{
	recorder *r = ctx;
	int rc = rt_llm_chat(r->inner, call, req, len, resp, resp_len);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->mu);
	if ((r->n && art_buf_puts(&r->entries, ",\n  ") < 0) ||
	    art_buf_append(&r->entries, *resp, *resp_len) < 0 || (r->n++, record_write(r) < 0)) {
		if (!r->failed)
			fprintf(stderr, "agentfactory: --llm-record %s: %s (recording stopped)\n", r->path,
				art_error_last());
		r->failed = 1;
	}
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static int record_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	return record_call(ctx, NULL, req, len, resp, resp_len);
}

static void record_free(void *ctx)
{
	recorder *r = ctx;

	if (!r)
		return;
	art_buf_free(&r->entries);
	free(r->path);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int rt_llm_record_open(rt_llm_provider **out, const rt_llm_provider *inner, const char *path)
{
	rt_llm_provider *p = NULL;
	recorder *r = NULL;
	int rc;

	if (!out || !inner || !path)
		return art_error_set(AF_EINVAL, "llm record: NULL argument");
	*out = NULL;
	r = calloc(1, sizeof(*r));
	p = calloc(1, sizeof(*p));
	if (!r || !p || !(r->path = strdup(path))) {
		free(p);
		if (r)
			free(r->path);
		free(r);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&r->mu, NULL);
	r->inner = inner;
	r->entries.max = RT_LLM_SCRIPT_MAX;
	if ((rc = record_write(r)) < 0) {
		record_free(r);
		free(p);
		return rc;
	}
	snprintf(r->description, sizeof(r->description), "%.300s, recorded to %.180s",
		 inner->description ? inner->description : inner->name, path);
	p->name = inner->name;
	p->chat = record_chat;
	p->chat_call = record_call;
	p->ctx = r;
	p->destroy = record_free;
	p->description = r->description;
	*out = p;
	return 0;
}
