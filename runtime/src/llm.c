/*
 * llm.c - the "scripted" model provider (see rt/llm.h): responses loaded
 * once, stored as compact JSON texts, chosen by the number of assistant
 * turns already in the request. Read-only after open: thread-safe.
 */
#include "rt/llm.h"

#include "art/error.h"
#include "art/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct script {
	char **responses;
	size_t *lens;
	size_t n;
} script;

static void script_free(void *ctx)
{
	script *s = ctx;
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++)
		free(s->responses[i]);
	free(s->responses);
	free(s->lens);
	free(s);
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
	memcpy(*resp, s->responses[turn], s->lens[turn] + 1);
	*resp_len = s->lens[turn];
	return 0;
}

int rt_llm_scripted_open(rt_llm_provider **out, const char *path)
{
	rt_llm_provider *p = NULL;
	script *s = NULL;
	json_t *root = NULL, *arr, *v;
	json_error_t jerr;
	char *text = NULL;
	size_t len = 0, i;
	int rc;

	if (!out || !path)
		return art_error_set(AF_EINVAL, "scripted: NULL argument");
	*out = NULL;
	if ((rc = art_file_read(&text, &len, path, RT_LLM_SCRIPT_MAX)) < 0)
		return rc;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
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
	s = calloc(1, sizeof(*s));
	p = calloc(1, sizeof(*p));
	if (!s || !p || !(s->responses = calloc(json_array_size(arr), sizeof(char *))) ||
	    !(s->lens = calloc(json_array_size(arr), sizeof(size_t)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_object(v)) {
			rc = art_error_set(AF_ESYNTAX, "%s: responses[%zu] is not an object", path, i);
			goto cleanup;
		}
		s->responses[i] = json_dumps(v, JSON_COMPACT);
		if (!s->responses[i]) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
		s->lens[i] = strlen(s->responses[i]);
		s->n++;
		if (s->lens[i] > RT_LLM_RESPONSE_MAX) {
			rc = art_error_set(AF_ETOOBIG, "%s: responses[%zu] is over %zu bytes", path, i,
					   RT_LLM_RESPONSE_MAX);
			goto cleanup;
		}
	}
	p->name = "scripted";
	p->chat = scripted_chat;
	p->ctx = s;
	p->destroy = script_free;
	*out = p;
	p = NULL;
	s = NULL;
cleanup:
	script_free(s);
	free(p);
	json_decref(root);
	free(text);
	return rc;
}

void rt_llm_provider_free(rt_llm_provider *p)
{
	if (!p)
		return;
	if (p->destroy)
		p->destroy(p->ctx);
	free(p);
}
