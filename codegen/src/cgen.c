/*
 * cgen.c - the C generator: resolved template (canonical JSON) -> agent.c.
 *
 * Determinism: object keys are always visited in byte order, numbers are
 * printed in their shortest round-tripping form under the "C" numeric
 * locale (set per thread with uselocale), functions are named by index.
 * Safety: template text reaches the output only through c_literal(), which
 * escapes everything but plain printable ASCII (and `?`, against
 * trigraphs). The header comment shows the agent name only after
 * sanitize_comment() reduces it to [A-Za-z0-9._@+-].
 */
#include "gen/cgen.h"

#include "art/error.h"
#include "art/limits.h"
#include "art/placeholder.h"
#include "art/util.h"

#include <jansson.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------------- */

static int oom(void)
{
	return art_error_set(AF_ENOMEM, "codegen: out of memory");
}

static const char *str_or_null(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj in byte order. Caller frees the array (not the keys). */
static int sorted_keys(const char ***out, size_t *n, const json_t *obj)
{
	const char *key;
	json_t *v;
	size_t i = 0;

	*n = json_object_size(obj);
	*out = calloc(*n ? *n : 1, sizeof(**out));
	if (!*out)
		return oom();
	json_object_foreach((json_t *)obj, key, v) {
		(void)v;
		(*out)[i++] = key;
	}
	qsort(*out, *n, sizeof(**out), cmp_str);
	return 0;
}

/* Strings that become C data must not hide a NUL (C strings and keys). */
static int check_no_nul(const json_t *s, const char *what)
{
	if (json_is_string(s) && strlen(json_string_value(s)) != json_string_length(s))
		return art_error_set(AF_EINVAL, "codegen: %s contains a NUL character", what);
	return 0;
}

/* ---- a text buffer whose first error sticks ------------------------------------- */

/* Emitters just write; the first allocation or size-cap error is kept and
 * checked once. Semantic errors are returned by the emitters directly. */
typedef struct cw {
	art_buf b;
	int rc;
} cw;

#define CW_INIT {ART_BUF_INIT, 0}

static void cw_put(cw *w, const char *s, size_t n)
{
	if (w->rc == 0)
		w->rc = art_buf_append(&w->b, s, n);
}

static void cw_puts(cw *w, const char *s)
{
	cw_put(w, s, strlen(s));
}

static void cw_printf(cw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cw_printf(cw *w, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	if (w->rc)
		return;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		w->rc = oom();
		return;
	}
	cw_put(w, s, (size_t)n);
	free(s);
}

static void cw_tabs(cw *w, int n)
{
	while (n-- > 0)
		cw_put(w, "\t", 1);
}

static void cw_free(cw *w)
{
	art_buf_free(&w->b);
}

/* ---- JSON text ----------------------------------------------------------------- */

/* s as JSON string content (no quotes). */
static void json_escape(cw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': snprintf(esc, sizeof(esc), "\\\""); break;
		case '\\': snprintf(esc, sizeof(esc), "\\\\"); break;
		case '\n': snprintf(esc, sizeof(esc), "\\n"); break;
		case '\r': snprintf(esc, sizeof(esc), "\\r"); break;
		case '\t': snprintf(esc, sizeof(esc), "\\t"); break;
		case '\b': snprintf(esc, sizeof(esc), "\\b"); break;
		case '\f': snprintf(esc, sizeof(esc), "\\f"); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			esc[6] = '\0';
		}
		cw_put(w, s + run, i - run);
		cw_puts(w, esc);
		run = i + 1;
	}
	cw_put(w, s + run, n - run);
}

static void json_quoted(cw *w, const char *s, size_t n)
{
	cw_put(w, "\"", 1);
	json_escape(w, s, n);
	cw_put(w, "\"", 1);
}

/* Shortest "%.Ng" that reads back as the same double (the locale is "C"). */
static void put_real(cw *w, double d)
{
	char tmp[40];
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	cw_puts(w, tmp);
}

/* Compact JSON, keys in byte order. */
static int json_write(cw *w, const json_t *v, int depth)
{
	const char **keys = NULL;
	size_t i, n;
	int rc = 0;

	if (depth > 64)
		return art_error_set(AF_EINVAL, "codegen: JSON nested too deeply");
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if ((rc = sorted_keys(&keys, &n, v)) < 0)
			return rc;
		cw_put(w, "{", 1);
		for (i = 0; i < n && rc == 0; i++) {
			if (i)
				cw_put(w, ",", 1);
			json_quoted(w, keys[i], strlen(keys[i]));
			cw_put(w, ":", 1);
			rc = json_write(w, json_object_get(v, keys[i]), depth + 1);
		}
		cw_put(w, "}", 1);
		free(keys);
		return rc;
	case JSON_ARRAY:
		cw_put(w, "[", 1);
		for (i = 0; i < json_array_size(v) && rc == 0; i++) {
			if (i)
				cw_put(w, ",", 1);
			rc = json_write(w, json_array_get(v, i), depth + 1);
		}
		cw_put(w, "]", 1);
		return rc;
	case JSON_STRING:
		json_quoted(w, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		cw_printf(w, "%lld", (long long)json_integer_value(v));
		return 0;
	case JSON_REAL:
		put_real(w, json_real_value(v));
		return 0;
	case JSON_TRUE:
		cw_puts(w, "true");
		return 0;
	case JSON_FALSE:
		cw_puts(w, "false");
		return 0;
	default:
		cw_puts(w, "null");
		return 0;
	}
}

/* ---- C text ---------------------------------------------------------------------- */

/*
 * s as adjacent C string literals. Only printable ASCII other than `"`, `\`
 * and `?` is copied; `\n` and `\t` use their escapes; every other byte is a
 * three-digit octal escape (never ambiguous with a following digit). A new
 * literal starts after a newline in the text or every ~64 columns, on a new
 * line beginning with indent.
 */
static void c_literal(cw *w, const char *s, size_t n, const char *indent)
{
	size_t i, col = 0;

	cw_put(w, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c == '"')
			snprintf(esc, sizeof(esc), "\\\"");
		else if (c == '\\')
			snprintf(esc, sizeof(esc), "\\\\");
		else if (c == '?')
			snprintf(esc, sizeof(esc), "\\?");
		else if (c == '\n')
			snprintf(esc, sizeof(esc), "\\n");
		else if (c == '\t')
			snprintf(esc, sizeof(esc), "\\t");
		else if (c >= 0x20 && c < 0x7f) {
			esc[0] = (char)c;
			esc[1] = '\0';
		} else
			snprintf(esc, sizeof(esc), "\\%03o", (unsigned)c);
		cw_puts(w, esc);
		col += strlen(esc);
		/* Break after a newline, raw or JSON-escaped, for readable prompts. */
		if (i + 1 < n && (col >= 64 || c == '\n' || (c == 'n' && i > 0 && s[i - 1] == '\\'))) {
			cw_printf(w, "\"\n%s\"", indent);
			col = 0;
		}
	}
	cw_put(w, "\"", 1);
}

/* A NUL-terminated C string as a literal. */
static void c_str(cw *w, const char *s, const char *indent)
{
	c_literal(w, s, strlen(s), indent);
}

/* Only [A-Za-z0-9._@+-], at most 80 characters: safe inside a comment. */
static void sanitize_comment(char *out, size_t cap, const char *s)
{
	size_t i, o = 0;

	for (i = 0; s[i] && o + 1 < cap && o < 80; i++) {
		char c = s[i];

		out[o++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '.' || c == '_' || c == '@' || c == '+' || c == '-')
				   ? c
				   : '_';
	}
	out[o] = '\0';
}

/* ---- the agent ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	unsigned bit;
} abi_caps[] = {
	{"log", GEN_CAP_LOG},           {"clock", GEN_CAP_CLOCK},
	{"random", GEN_CAP_RANDOM},     {"llm_chat", GEN_CAP_LLM_CHAT},
	{"tool_call", GEN_CAP_TOOL_CALL},
};

void gen_agent_free(gen_agent *a)
{
	size_t i;

	if (!a)
		return;
	free(a->name);
	free(a->version);
	for (i = 0; i < a->n_capabilities; i++)
		free(a->capabilities[i]);
	free(a->capabilities);
	free(a);
}

static bool granted(const gen_agent *a, const char *cap)
{
	size_t i;

	for (i = 0; i < a->n_capabilities; i++)
		if (strcmp(a->capabilities[i], cap) == 0)
			return true;
	return false;
}

static const json_t *find_tool(const json_t *tools, const char *name, size_t *index)
{
	size_t i;

	for (i = 0; i < json_array_size(tools); i++) {
		const char *n = str_or_null(json_array_get(tools, i), "name");

		if (n && strcmp(n, name) == 0) {
			if (index)
				*index = i;
			return json_array_get(tools, i);
		}
	}
	return NULL;
}

/* Check the template's shape against what the guest can run. */
static int agent_from_root(gen_agent **out, const json_t *root)
{
	gen_agent *a = NULL;
	const json_t *caps = json_object_get(root, "capabilities");
	const json_t *tools = json_object_get(root, "tools");
	const json_t *steps = json_object_get(root, "steps");
	const json_t *limits = json_object_get(root, "limits");
	const char *name = str_or_null(root, "name"), *version = str_or_null(root, "version");
	char *context = NULL;
	art_limit_values lv;
	size_t i, j;
	int rc = 0;

	*out = NULL;
	if (!name || !*name || !version || !*version)
		return art_error_set(AF_EINVAL, "codegen: the resolved template has no name or version");
	if ((rc = check_no_nul(json_object_get(root, "name"), "name")) < 0 ||
	    (rc = check_no_nul(json_object_get(root, "version"), "version")) < 0)
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->name = strdup(name)) || !(a->version = strdup(version))) {
		rc = oom();
		goto cleanup;
	}
	if (caps && !json_is_array(caps)) {
		rc = art_error_set(AF_EINVAL, "codegen: %s: capabilities must be a list", name);
		goto cleanup;
	}
	a->capabilities = calloc(json_array_size(caps) + 1, sizeof(char *));
	if (!a->capabilities) {
		rc = oom();
		goto cleanup;
	}
	for (i = 0; i < json_array_size(caps); i++) {
		const json_t *c = json_array_get(caps, i);

		if (!json_is_string(c) || (rc = check_no_nul(c, "a capability")) < 0) {
			rc = rc ? rc : art_error_set(AF_EINVAL, "codegen: %s: capabilities must be strings", name);
			goto cleanup;
		}
		if (!(a->capabilities[a->n_capabilities] = strdup(json_string_value(c)))) {
			rc = oom();
			goto cleanup;
		}
		a->n_capabilities++;
		for (j = 0; j < sizeof(abi_caps) / sizeof(abi_caps[0]); j++)
			if (strcmp(json_string_value(c), abi_caps[j].name) == 0)
				a->abi_caps |= abi_caps[j].bit;
	}
	if (asprintf(&context, "codegen: %s", name) < 0) {
		context = NULL;
		rc = oom();
		goto cleanup;
	}
	if ((rc = art_limits_read(&lv, limits, AF_EINVAL, context)) < 0)
		goto cleanup;
	a->max_steps = lv.max_steps;
	a->timeout_ms = lv.timeout_ms;
	a->memory_pages = lv.memory_pages;

	if (tools && !json_is_array(tools)) {
		rc = art_error_set(AF_EINVAL, "codegen: %s: tools must be a list", name);
		goto cleanup;
	}
	a->n_tools = json_array_size(tools);
	for (i = 0; i < a->n_tools; i++) {
		const json_t *t = json_array_get(tools, i);
		const char *tn = str_or_null(t, "name"), *tc = str_or_null(t, "capability");
		const json_t *params = json_object_get(t, "parameters");

		if (!tn || !*tn || (rc = check_no_nul(json_object_get(t, "name"), "a tool name")) < 0) {
			rc = rc ? rc : art_error_set(AF_EINVAL, "codegen: %s: tool %zu has no name", name, i + 1);
			goto cleanup;
		}
		if (find_tool(tools, tn, &j) && j != i) {
			rc = art_error_set(AF_EINVAL, "codegen: %s: tool '%s' is declared twice", name, tn);
			goto cleanup;
		}
		if (!tc || !*tc || (rc = check_no_nul(json_object_get(t, "capability"), "a capability")) < 0) {
			rc = rc ? rc : art_error_set(AF_EINVAL, "codegen: %s: tool '%s' declares no capability", name, tn);
			goto cleanup;
		}
		if (!granted(a, tc)) {
			rc = art_error_set(AF_EINVAL,
					   "codegen: %s: tool '%s' needs capability '%s', which the template does not grant (add it to capabilities or remove the tool)",
					   name, tn, tc);
			goto cleanup;
		}
		if (params && !json_is_object(params)) {
			rc = art_error_set(AF_EINVAL, "codegen: %s: the parameters of tool '%s' must be a JSON schema object", name, tn);
			goto cleanup;
		}
	}

	if (steps && !json_is_null(steps) && !json_is_array(steps)) {
		rc = art_error_set(AF_EINVAL, "codegen: %s: steps must be a list", name);
		goto cleanup;
	}
	a->n_steps = json_array_size(steps);
	if (a->n_steps) {
		if (!(a->abi_caps & GEN_CAP_TOOL_CALL)) {
			rc = art_error_set(AF_EINVAL, "codegen: %s: a steps workflow needs the tool_call capability", name);
			goto cleanup;
		}
		if (a->n_steps > a->max_steps) {
			rc = art_error_set(AF_EINVAL,
					   "codegen: %s: %zu steps but limits.max_steps is %u: raise the limit or remove steps",
					   name, a->n_steps, a->max_steps);
			goto cleanup;
		}
		for (i = 0; i < a->n_steps; i++) {
			const json_t *st = json_array_get(steps, i);
			const char *id = str_or_null(st, "id"), *tool = str_or_null(st, "tool");
			const json_t *args = json_object_get(st, "args");

			if (!id || !*id || (rc = check_no_nul(json_object_get(st, "id"), "a step id")) < 0) {
				rc = rc ? rc : art_error_set(AF_EINVAL, "codegen: %s: step %zu has no id", name, i + 1);
				goto cleanup;
			}
			for (j = 0; j < i; j++)
				if (strcmp(id, str_or_null(json_array_get(steps, j), "id")) == 0) {
					rc = art_error_set(AF_EINVAL, "codegen: %s: step id '%s' is used twice", name, id);
					goto cleanup;
				}
			if (!tool || !find_tool(tools, tool, NULL)) {
				rc = art_error_set(AF_EINVAL, "codegen: %s: step '%s' uses tool '%s', which the template does not declare",
						   name, id, tool ? tool : "(none)");
				goto cleanup;
			}
			if (args && !json_is_null(args) && !json_is_object(args)) {
				rc = art_error_set(AF_EINVAL, "codegen: %s: the args of step '%s' must be a map", name, id);
				goto cleanup;
			}
		}
	} else {
		const json_t *model = json_object_get(root, "model");
		const char *instr = str_or_null(root, "instructions");
		const char *model_name = str_or_null(model, "name");

		if (!instr || !*instr || !model_name || !*model_name) {
			rc = art_error_set(AF_EINVAL,
					   "codegen: %s: nothing to run: give it steps, or instructions and model.name",
					   name);
			goto cleanup;
		}
		if (!(a->abi_caps & GEN_CAP_LLM_CHAT)) {
			rc = art_error_set(AF_EINVAL,
					   "codegen: %s: an agent without steps needs the llm_chat capability",
					   name);
			goto cleanup;
		}
		a->llm = true;
	}
	*out = a;
	a = NULL;
cleanup:
	gen_agent_free(a);
	free(context);
	return rc;
}

/* The first string (value or key) holding a NUL, as a path, or NULL.
 * Names, ids and prompts become C strings: a NUL would cut them short. */
static bool has_nul(const json_t *v, char *path, size_t cap, size_t at)
{
	const char *key;
	json_t *item;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strlen(json_string_value(v)) != json_string_length(v);
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, item) {
			snprintf(path + at, cap - at, ".%s", key);
			if (has_nul(item, path, cap, strlen(path)))
				return true;
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, item) {
			snprintf(path + at, cap - at, "[%zu]", i);
			if (has_nul(item, path, cap, strlen(path)))
				return true;
		}
		break;
	default:
		break;
	}
	path[at] = '\0';
	return false;
}

/* Whether a failed json_loadb was a failed allocation rather than bad JSON:
 * jansson reports some with no message at all, and one inside its lexer as a
 * syntax error ("string or '}' expected"). Parsing is deterministic, so a
 * syntax error that does not come back the same on a second parse was one. */
static bool json_load_failed_for_memory(const char *json, size_t len, const json_error_t *first)
{
	json_error_t again;
	json_t *j;
	bool oom;

	if (json_error_code(first) == json_error_out_of_memory || !first->text[0])
		return true;
	j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &again);
	oom = j || json_error_code(&again) == json_error_out_of_memory || !again.text[0] ||
	      again.position != first->position || strcmp(again.text, first->text) != 0;
	json_decref(j);
	return oom;
}

static int load_root(json_t **out, const char *json, size_t len)
{
	json_error_t jerr;
	char path[256] = "";

	*out = NULL;
	if (!json)
		return art_error_set(AF_EINVAL, "codegen: NULL template");
	/* NULs are let through the parser to be reported with their place. */
	*out = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!*out && json_load_failed_for_memory(json, len, &jerr))
		return art_error_set(AF_ENOMEM, "codegen: out of memory reading the template");
	if (!*out)
		return art_error_set(AF_ESYNTAX, "codegen: the resolved template is not valid JSON: %s (byte %d)",
				     jerr.text, jerr.position);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return art_error_set(AF_ESYNTAX, "codegen: the resolved template is not a JSON object");
	}
	if (has_nul(*out, path, sizeof(path), 0)) {
		json_decref(*out);
		*out = NULL;
		return art_error_set(AF_EINVAL, "codegen: the string at %s contains a NUL character",
				     path[0] == '.' ? path + 1 : path);
	}
	return 0;
}

int gen_agent_parse(gen_agent **out, const char *json, size_t len)
{
	json_t *root;
	int rc;

	if (!out)
		return art_error_set(AF_EINVAL, "codegen: NULL argument");
	*out = NULL;
	if ((rc = load_root(&root, json, len)) < 0)
		return rc;
	rc = agent_from_root(out, root);
	json_decref(root);
	return rc;
}

/* ---- generation context ------------------------------------------------------------------ */

typedef struct gctx {
	const json_t *root;
	const gen_agent *agent;
	const json_t *props;   /* inputs.properties, or NULL */
	const json_t *tools;
	const json_t *steps;
} gctx;

/* Pending literal JSON text, flushed as one af_buf_put call before each op. */
typedef struct emitter {
	cw *out;
	cw lit;
} emitter;

static void em_flush(emitter *em)
{
	if (em->lit.rc && !em->out->rc)
		em->out->rc = em->lit.rc;
	if (!em->lit.b.len)
		return;
	cw_puts(em->out, "\taf_buf_put(b, ");
	c_literal(em->out, em->lit.b.data, em->lit.b.len, "\t\t   ");
	cw_printf(em->out, ", %zu);\n", em->lit.b.len);
	em->lit.b.len = 0;
	em->lit.b.data[0] = '\0';
}

/* ---- placeholders --------------------------------------------------------------------------- */


/*
 * The next "{{ name }}" in s[*pos..len), by the one grammar
 * (art/placeholder.h, shared with the template checks).
 * @return 1 found (start/end of the whole placeholder, name_off/name_len),
 *         0 none left, -1 malformed (*start is where)
 */
static int next_placeholder(const char *s, size_t len, size_t *pos, size_t *start, size_t *end,
			    size_t *name_off, size_t *name_len)
{
	art_placeholder ph;
	int r = art_placeholder_next(s, len, pos, &ph);

	if (r == 0)
		return 0;
	*start = ph.start;
	if (r != 1)
		return -1;
	*end = ph.start + ph.len;
	*name_off = ph.name_off;
	*name_len = ph.name_len;
	return 1;
}

enum { PH_STATIC, PH_INPUT, PH_STEP };

typedef struct ph_ref {
	int kind;
	const char *text;   /* PH_STATIC: the value; PH_INPUT: the key; PH_STEP: the field or NULL */
	size_t len;
	size_t step;
} ph_ref;

static bool name_is(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

static bool is_input(const gctx *g, const char *p, size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)g->props, key, v) {
		(void)v;
		if (name_is(p, n, key))
			return true;
	}
	return false;
}

#define NO_STEPS ((size_t)-1)

/* What a placeholder names. steps_visible: steps[0..steps_visible) may be
 * named, or NO_STEPS outside step args. Same rules as the front end. */
static int resolve_placeholder(const gctx *g, const char *p, size_t n, size_t steps_visible,
			       const char *where, ph_ref *out)
{
	const char *dot = memchr(p, '.', n);
	size_t head = dot ? (size_t)(dot - p) : n, i;

	memset(out, 0, sizeof(*out));
	if (!dot) {
		if (name_is(p, n, "name") || name_is(p, n, "role") || name_is(p, n, "goal")) {
			char key[5];
			const char *v;

			memcpy(key, p, 4);
			key[4] = '\0';
			v = str_or_null(g->root, key);
			if (v && *v) {
				out->kind = PH_STATIC;
				out->text = v;
				out->len = strlen(v);
				return 0;
			}
		} else if (is_input(g, p, n)) {
			out->kind = PH_INPUT;
			out->text = p;
			out->len = n;
			return 0;
		}
	} else if (name_is(p, head, "inputs")) {
		if (!memchr(dot + 1, '.', n - head - 1) && is_input(g, dot + 1, n - head - 1)) {
			out->kind = PH_INPUT;
			out->text = dot + 1;
			out->len = n - head - 1;
			return 0;
		}
	} else if (name_is(p, head, "steps") && steps_visible != NO_STEPS) {
		const char *id = dot + 1, *dot2 = memchr(id, '.', n - head - 1);
		size_t id_len = dot2 ? (size_t)(dot2 - id) : n - head - 1;

		if (!dot2 || !memchr(dot2 + 1, '.', (size_t)(p + n - dot2 - 1))) {
			for (i = 0; i < steps_visible; i++) {
				const char *sid = str_or_null(json_array_get(g->steps, i), "id");

				if (sid && name_is(id, id_len, sid)) {
					out->kind = PH_STEP;
					out->step = i;
					out->text = dot2 ? dot2 + 1 : NULL;
					out->len = dot2 ? (size_t)(p + n - dot2 - 1) : 0;
					return 0;
				}
			}
		}
	}
	return art_error_set(AF_EINVAL,
			     "codegen: %s: placeholder '{{ %.*s }}' in %s names nothing (use name, role, goal, inputs.PROPERTY%s)",
			     g->agent->name, (int)(n > 200 ? 200 : n), p, where,
			     steps_visible == NO_STEPS ? "" : " or steps.ID[.FIELD] of an earlier step");
}

/* Emit one resolved placeholder, as JSON string content or (raw) a JSON value. */
static void emit_placeholder(emitter *em, const ph_ref *ph, bool raw)
{
	const char *mode = raw ? "AF_PUT_RAW" : "AF_PUT_STR";

	if (ph->kind == PH_STATIC) {
		if (raw)
			json_quoted(&em->lit, ph->text, ph->len);
		else
			json_escape(&em->lit, ph->text, ph->len);
		return;
	}
	em_flush(em);
	if (ph->kind == PH_INPUT) {
		cw_puts(em->out, "\taf_put_input(r, b, ");
		c_literal(em->out, ph->text, ph->len, "\t\t     ");
		cw_printf(em->out, ", %zu, %s);\n", ph->len, mode);
		return;
	}
	cw_printf(em->out, "\taf_put_step(r, b, %zu, ", ph->step);
	if (ph->text)
		c_literal(em->out, ph->text, ph->len, "\t\t    ");
	else
		cw_puts(em->out, "NULL");
	cw_printf(em->out, ", %zu, %s);\n", ph->len, mode);
}

/* A template string as JSON string content: literal text escaped, each
 * placeholder an op. */
static int emit_template_string(const gctx *g, emitter *em, const char *s, size_t len,
				size_t steps_visible, const char *where)
{
	size_t pos = 0, last = 0, start = 0, end, noff, nlen;
	ph_ref ph;
	int r, rc;

	while ((r = next_placeholder(s, len, &pos, &start, &end, &noff, &nlen)) != 0) {
		if (r < 0)
			return art_error_set(AF_EINVAL,
					     "codegen: %s: malformed placeholder in %s at byte %zu: every '{{' must open '{{ name }}'",
					     g->agent->name, where, start);
		json_escape(&em->lit, s + last, start - last);
		if ((rc = resolve_placeholder(g, s + noff, nlen, steps_visible, where, &ph)) < 0)
			return rc;
		emit_placeholder(em, &ph, false);
		last = end;
	}
	json_escape(&em->lit, s + last, len - last);
	return 0;
}

/* Is s exactly one placeholder (nothing around it)? */
static bool whole_placeholder(const char *s, size_t len, size_t *noff, size_t *nlen)
{
	size_t pos = 0, start = 0, end = 0;

	return next_placeholder(s, len, &pos, &start, &end, noff, nlen) == 1 && start == 0 &&
	       end == len;
}

/* Does a schema's type allow a string (or say nothing)? */
static bool schema_allows_string(const json_t *schema)
{
	const json_t *type = json_object_get(schema, "type");
	size_t i;

	if (!type)
		return true;
	if (json_is_string(type))
		return strcmp(json_string_value(type), "string") == 0;
	for (i = 0; i < json_array_size(type); i++)
		if (json_is_string(json_array_get(type, i)) &&
		    strcmp(json_string_value(json_array_get(type, i)), "string") == 0)
			return true;
	return false;
}

/* One value of a step's args: strings are templates, the rest is copied. */
static int emit_args_value(const gctx *g, emitter *em, const json_t *v, bool raw_ok, size_t step,
			   const char *where, int depth)
{
	const char **keys = NULL;
	size_t i, n, noff, nlen;
	ph_ref ph;
	int rc = 0;

	if (depth > 32)
		return art_error_set(AF_EINVAL, "codegen: %s: %s nested too deeply", g->agent->name, where);
	switch (json_typeof(v)) {
	case JSON_STRING:
		if ((rc = check_no_nul(v, where)) < 0)
			return rc;
		/* A lone placeholder for a parameter whose schema does not allow a
		 * string keeps its JSON type (an integer input stays an integer). */
		if (raw_ok && whole_placeholder(json_string_value(v), json_string_length(v), &noff, &nlen)) {
			if ((rc = resolve_placeholder(g, json_string_value(v) + noff, nlen, step, where, &ph)) < 0)
				return rc;
			emit_placeholder(em, &ph, true);
			return 0;
		}
		cw_put(&em->lit, "\"", 1);
		rc = emit_template_string(g, em, json_string_value(v), json_string_length(v), step, where);
		cw_put(&em->lit, "\"", 1);
		return rc;
	case JSON_OBJECT:
		if ((rc = sorted_keys(&keys, &n, v)) < 0)
			return rc;
		cw_put(&em->lit, "{", 1);
		for (i = 0; i < n && rc == 0; i++) {
			if (i)
				cw_put(&em->lit, ",", 1);
			json_quoted(&em->lit, keys[i], strlen(keys[i]));
			cw_put(&em->lit, ":", 1);
			rc = emit_args_value(g, em, json_object_get(v, keys[i]), false, step, where, depth + 1);
		}
		cw_put(&em->lit, "}", 1);
		free(keys);
		return rc;
	case JSON_ARRAY:
		cw_put(&em->lit, "[", 1);
		for (i = 0; i < json_array_size(v) && rc == 0; i++) {
			if (i)
				cw_put(&em->lit, ",", 1);
			rc = emit_args_value(g, em, json_array_get(v, i), false, step, where, depth + 1);
		}
		cw_put(&em->lit, "]", 1);
		return rc;
	default:
		return json_write(&em->lit, v, 0);
	}
}

/* ---- validators ---------------------------------------------------------------------------------- */

static const struct {
	const char *name, *mask;
} schema_types[] = {
	{"object", "AF_T_OBJECT"},   {"array", "AF_T_ARRAY"},     {"string", "AF_T_STRING"},
	{"number", "AF_T_NUMBER"},   {"integer", "AF_T_INTEGER"}, {"boolean", "AF_T_BOOLEAN"},
	{"null", "AF_T_NULL"},
};

#define N_SCHEMA_TYPES (sizeof(schema_types) / sizeof(schema_types[0]))

/* "AF_T_STRING | AF_T_NULL" and "string or null" for a schema's type. */
static int type_mask(const gctx *g, const json_t *type, const char *path, cw *mask, cw *expected)
{
	size_t i, k, n = json_is_array(type) ? json_array_size(type) : 1;

	if (!json_is_string(type) && !(json_is_array(type) && n > 0))
		return art_error_set(AF_EINVAL, "codegen: %s: the type at %s must be a name or a list of names",
				     g->agent->name, path);
	for (i = 0; i < n; i++) {
		const json_t *t = json_is_array(type) ? json_array_get(type, i) : type;
		const char *tn = json_string_value(t);

		for (k = 0; tn && k < N_SCHEMA_TYPES; k++)
			if (strcmp(tn, schema_types[k].name) == 0)
				break;
		if (!tn || k == N_SCHEMA_TYPES)
			return art_error_set(AF_EINVAL,
					     "codegen: %s: unsupported JSON-schema type '%.64s' at %s (use object, array, string, number, integer, boolean or null)",
					     g->agent->name, tn ? tn : "?", path);
		if (i) {
			cw_puts(mask, " | ");
			cw_puts(expected, i + 1 == n ? " or " : ", ");
		}
		cw_puts(mask, schema_types[k].mask);
		cw_puts(expected, tn);
	}
	return 0;
}

/*
 * Checks of the token in C variable `tok` against schema, at indentation
 * lvl. Enforced keywords: type (a name or a list), required, properties
 * (recursively), additionalProperties: false, items (a schema). Others are
 * not enforced (docs/codegen.md).
 */
static int emit_schema_checks(const gctx *g, cw *o, const json_t *schema, const char *tok,
			      const char *path, int depth, int lvl)
{
	const json_t *type, *props, *req, *addl, *items;
	cw mask = CW_INIT, expected = CW_INIT, sub = CW_INIT;
	const char **keys = NULL;
	char var[16];
	size_t i, n = 0;
	bool uses_var = false;
	int rc = 0;

	if (depth > GEN_MAX_SCHEMA_DEPTH)
		return art_error_set(AF_EINVAL, "codegen: %s: the JSON schema at %s is nested deeper than %d",
				     g->agent->name, path, GEN_MAX_SCHEMA_DEPTH);
	if (!schema || json_is_true(schema))
		return 0;
	if (!json_is_object(schema))
		return art_error_set(AF_EINVAL, "codegen: %s: the JSON schema at %s must be a map",
				     g->agent->name, path);
	type = json_object_get(schema, "type");
	props = json_object_get(schema, "properties");
	req = json_object_get(schema, "required");
	addl = json_object_get(schema, "additionalProperties");
	items = json_object_get(schema, "items");
	if ((props && !json_is_object(props)) || (req && !json_is_array(req)))
		return art_error_set(AF_EINVAL, "codegen: %s: at %s, properties must be a map and required a list",
				     g->agent->name, path);

	if (type) {
		if ((rc = type_mask(g, type, path, &mask, &expected)) < 0)
			goto cleanup;
		/* their text is used below: a failed write there left it NULL */
		if ((rc = mask.rc ? mask.rc : expected.rc) < 0)
			goto cleanup;
		cw_tabs(o, lvl);
		cw_printf(o, "if (af_v_type(j, %s, %s, ", tok, mask.b.data);
		c_str(o, path, "\t\t      ");
		cw_puts(o, ", ");
		c_str(o, expected.b.data, "\t\t      ");
		cw_puts(o, ", e) < 0)\n");
		cw_tabs(o, lvl + 1);
		cw_puts(o, "return -1;\n");
	}

	/* Object keywords apply when the value is an object. */
	snprintf(var, sizeof(var), "v%d", depth);
	for (i = 0; i < json_array_size(req); i++) {
		const json_t *k = json_array_get(req, i);

		if (!json_is_string(k) || (rc = check_no_nul(k, "a required property name")) < 0) {
			rc = rc ? rc : art_error_set(AF_EINVAL, "codegen: %s: required must list names at %s",
						     g->agent->name, path);
			goto cleanup;
		}
		cw_tabs(&sub, lvl + 1);
		cw_printf(&sub, "if (af_json_member(j, %s, ", tok);
		c_str(&sub, json_string_value(k), "\t\t      ");
		cw_printf(&sub, ", %zu) < 0)\n", strlen(json_string_value(k)));
		cw_tabs(&sub, lvl + 2);
		cw_puts(&sub, "return af_v_missing(e, ");
		c_str(&sub, path, "\t\t      ");
		cw_puts(&sub, ", ");
		c_str(&sub, json_string_value(k), "\t\t      ");
		cw_puts(&sub, ");\n");
	}
	if ((rc = sorted_keys(&keys, &n, props)) < 0)
		goto cleanup;
	for (i = 0; i < n; i++) {
		cw inner = CW_INIT;
		char *subpath = NULL;

		if (asprintf(&subpath, "%s.%s", path, keys[i]) < 0) {
			rc = oom();
			goto cleanup;
		}
		rc = emit_schema_checks(g, &inner, json_object_get(props, keys[i]), var, subpath,
					depth + 1, lvl + 2);
		free(subpath);
		if (rc == 0 && inner.rc)
			rc = inner.rc;
		if (rc == 0 && inner.b.len) {
			uses_var = true;
			cw_tabs(&sub, lvl + 1);
			cw_printf(&sub, "%s = af_json_member(j, %s, ", var, tok);
			c_str(&sub, keys[i], "\t\t      ");
			cw_printf(&sub, ", %zu);\n", strlen(keys[i]));
			cw_tabs(&sub, lvl + 1);
			cw_printf(&sub, "if (%s >= 0) {\n", var);
			cw_put(&sub, inner.b.data, inner.b.len);
			cw_tabs(&sub, lvl + 1);
			cw_puts(&sub, "}\n");
		}
		cw_free(&inner);
		if (rc < 0)
			goto cleanup;
	}
	if (json_is_false(addl)) {
		cw_tabs(&sub, lvl + 1);
		cw_puts(&sub, "{\n");
		cw_tabs(&sub, lvl + 2);
		cw_puts(&sub, "static const char *const known[] = {");
		for (i = 0; i < n; i++) {
			c_str(&sub, keys[i], "\t\t\t");
			cw_puts(&sub, ", ");
		}
		cw_puts(&sub, "NULL};\n\n");
		cw_tabs(&sub, lvl + 2);
		cw_printf(&sub, "if (af_v_extra(j, %s, known, %zu, ", tok, n);
		c_str(&sub, path, "\t\t      ");
		cw_puts(&sub, ", e) < 0)\n");
		cw_tabs(&sub, lvl + 3);
		cw_puts(&sub, "return -1;\n");
		cw_tabs(&sub, lvl + 1);
		cw_puts(&sub, "}\n");
	}
	if (sub.b.len) {
		cw_tabs(o, lvl);
		cw_printf(o, "if (j->tok[%s].type == AF_J_OBJECT) {\n", tok);
		if (uses_var) {
			cw_tabs(o, lvl + 1);
			cw_printf(o, "int %s;\n\n", var);
		}
		cw_put(o, sub.b.data, sub.b.len);
		cw_tabs(o, lvl);
		cw_puts(o, "}\n");
	}

	if (items && !json_is_true(items)) {
		cw inner = CW_INIT;
		char *subpath = NULL;

		snprintf(var, sizeof(var), "a%d", depth);
		if (asprintf(&subpath, "%s[]", path) < 0) {
			rc = oom();
			goto cleanup;
		}
		rc = emit_schema_checks(g, &inner, items, var, subpath, depth + 1, lvl + 2);
		free(subpath);
		if (rc == 0 && inner.rc)
			rc = inner.rc;
		if (rc == 0 && inner.b.len) {
			cw_tabs(o, lvl);
			cw_printf(o, "if (j->tok[%s].type == AF_J_ARRAY) {\n", tok);
			cw_tabs(o, lvl + 1);
			cw_printf(o, "int %s = %s + 1;\n", var, tok);
			cw_tabs(o, lvl + 1);
			cw_printf(o, "uint32_t k%d;\n\n", depth);
			cw_tabs(o, lvl + 1);
			cw_printf(o, "for (k%d = 0; k%d < j->tok[%s].size; k%d++, %s = (int)j->tok[%s].next) {\n",
				  depth, depth, tok, depth, var, var);
			cw_put(o, inner.b.data, inner.b.len);
			cw_tabs(o, lvl + 1);
			cw_puts(o, "}\n");
			cw_tabs(o, lvl);
			cw_puts(o, "}\n");
		}
		cw_free(&inner);
	}
cleanup:
	if (rc == 0)
		rc = mask.rc ? mask.rc : expected.rc ? expected.rc : sub.rc;
	free(keys);
	cw_free(&mask);
	cw_free(&expected);
	cw_free(&sub);
	return rc;
}

/* static int NAME(const af_json *j, int t, af_err *e) { ... } */
static int emit_validator(const gctx *g, cw *o, const char *fn, const json_t *schema,
			  const char *root, bool force_object)
{
	cw body = CW_INIT;
	int rc;

	/* Tool arguments are always an object, whatever the schema says. */
	if (force_object && !(json_is_string(json_object_get(schema, "type")) &&
			      strcmp(json_string_value(json_object_get(schema, "type")), "object") == 0)) {
		cw_puts(&body, "\tif (af_v_type(j, t, AF_T_OBJECT, ");
		c_str(&body, root, "\t\t");
		cw_puts(&body, ", \"object\", e) < 0)\n\t\treturn -1;\n");
	}
	rc = emit_schema_checks(g, &body, schema, "t", root, 1, 1);
	if (rc == 0)
		rc = body.rc;
	if (rc == 0) {
		cw_printf(o, "static int %s(const af_json *j, int t, af_err *e)\n{\n", fn);
		if (!body.b.len)
			cw_puts(o, "\t(void)j;\n\t(void)t;\n\t(void)e;\n");
		else
			cw_put(o, body.b.data, body.b.len);
		cw_puts(o, "\treturn 0;\n}\n\n");
	}
	cw_free(&body);
	return rc;
}

/* ---- sections of the file -------------------------------------------------------------------- */

static void emit_header(const gctx *g, cw *o, const char *json, size_t len)
{
	char name[96], version[96];
	size_t i;

	sanitize_comment(name, sizeof(name), g->agent->name);
	sanitize_comment(version, sizeof(version), g->agent->version);
	cw_printf(o,
		  "/*\n"
		  " * agent.c - generated by agentfactory codegen from the resolved template\n"
		  " * %s@%s. Do not edit: regenerate it.\n"
		  " * Guest ABI 1; host functions granted:",
		  name, version);
	for (i = 0; i < sizeof(abi_caps) / sizeof(abi_caps[0]); i++)
		if (g->agent->abi_caps & abi_caps[i].bit)
			cw_printf(o, " %s", abi_caps[i].name);
	cw_puts(o, ".\n */\n#include \"af_guest.h\"\n\n"
		   "#if AF_GUEST_ABI_VERSION != 1\n"
		   "#error \"the guest library and the generated code disagree on the ABI\"\n"
		   "#endif\n\n"
		   "/* The resolved template, verbatim: af_describe returns these bytes. */\n"
		   "static const char describe_json[] =\n\t");
	c_literal(o, json, len, "\t");
	cw_puts(o, ";\n\n");
}

static int emit_tools(const gctx *g, cw *o)
{
	size_t i, n = json_array_size(g->tools);
	char fn[48];
	int rc = 0;

	if (!n)
		return 0;
	cw_puts(o, "/* ---- tools: argument validators and the allow-list ---- */\n\n");
	for (i = 0; i < n && rc == 0; i++) {
		snprintf(fn, sizeof(fn), "validate_tool_%zu", i);
		rc = emit_validator(g, o, fn, json_object_get(json_array_get(g->tools, i), "parameters"),
				    "args", true);
	}
	if (rc < 0)
		return rc;
	cw_puts(o, "static const af_tool tools[] = {\n");
	for (i = 0; i < n; i++) {
		const json_t *t = json_array_get(g->tools, i);
		const char *tn = str_or_null(t, "name");

		cw_puts(o, "\t{");
		c_str(o, tn, "\t ");
		cw_printf(o, ", %zu, ", strlen(tn));
		c_str(o, str_or_null(t, "capability"), "\t ");
		cw_printf(o, ", validate_tool_%zu},\n", i);
	}
	cw_puts(o, "};\n\n");
	return 0;
}

/* render_step_I: the args object of step I, keys in byte order. */
static int emit_step_renderer(const gctx *g, cw *o, size_t i)
{
	const json_t *st = json_array_get(g->steps, i);
	const json_t *args = json_object_get(st, "args");
	const json_t *tool = find_tool(g->tools, str_or_null(st, "tool"), NULL);
	const json_t *props = json_object_get(json_object_get(tool, "parameters"), "properties");
	emitter em = {o, CW_INIT};
	const char **keys = NULL;
	char where[160];
	size_t k, nk = 0;
	int rc = 0;

	snprintf(where, sizeof(where), "the args of step '%.64s'", str_or_null(st, "id"));
	cw_printf(o, "static void render_step_%zu(af_run *r, af_buf *b)\n{\n\t(void)r;\n", i);
	if (json_is_object(args) && (rc = sorted_keys(&keys, &nk, args)) < 0)
		return rc;
	cw_put(&em.lit, "{", 1);
	for (k = 0; k < nk && rc == 0; k++) {
		const json_t *ps = json_object_get(props, keys[k]);

		if (k)
			cw_put(&em.lit, ",", 1);
		json_quoted(&em.lit, keys[k], strlen(keys[k]));
		cw_put(&em.lit, ":", 1);
		rc = emit_args_value(g, &em, json_object_get(args, keys[k]),
				     ps && !schema_allows_string(ps), i, where, 1);
	}
	cw_put(&em.lit, "}", 1);
	free(keys);
	if (rc == 0) {
		em_flush(&em);
		cw_puts(o, "}\n\n");
	}
	cw_free(&em.lit);
	return rc;
}

static int emit_steps(const gctx *g, cw *o)
{
	size_t i, tool_index = 0, n = json_array_size(g->steps);
	int rc = 0;

	cw_puts(o, "/* ---- steps: state I renders its arguments, calls its tool and goes to I + 1 ---- */\n\n");
	for (i = 0; i < n && rc == 0; i++)
		rc = emit_step_renderer(g, o, i);
	if (rc < 0)
		return rc;
	cw_puts(o, "static const af_step steps[] = {\n");
	for (i = 0; i < n; i++) {
		const json_t *st = json_array_get(g->steps, i);
		const char *id = str_or_null(st, "id");

		find_tool(g->tools, str_or_null(st, "tool"), &tool_index);
		cw_puts(o, "\t{");
		c_str(o, id, "\t ");
		cw_printf(o, ", %zu, %zu, render_step_%zu},\n", strlen(id), tool_index, i);
	}
	cw_puts(o, "};\n\n");
	return 0;
}

/* The OpenAI "tools" array of the chat request (only with tool_call). */
static int write_tools_json(const gctx *g, cw *tail)
{
	size_t i;
	int rc = 0;

	cw_puts(tail, ",\"tools\":[");
	for (i = 0; i < json_array_size(g->tools) && rc == 0; i++) {
		const json_t *t = json_array_get(g->tools, i);
		const json_t *params = json_object_get(t, "parameters");
		const json_t *desc = json_object_get(t, "description");

		if (i)
			cw_puts(tail, ",");
		cw_puts(tail, "{\"type\":\"function\",\"function\":{\"name\":");
		rc = json_write(tail, json_object_get(t, "name"), 0);
		if (rc == 0 && json_is_string(desc)) {
			cw_puts(tail, ",\"description\":");
			rc = json_write(tail, desc, 0);
		}
		cw_puts(tail, ",\"parameters\":");
		if (rc == 0 && params)
			rc = json_write(tail, params, 0);
		else
			cw_puts(tail, "{\"properties\":{},\"type\":\"object\"}");
		cw_puts(tail, "}}");
	}
	cw_puts(tail, "]");
	return rc;
}

/* Does the outputs schema ask for a JSON object (type "object", or no type
 * but properties or required)? */
static bool outputs_object(const json_t *outputs)
{
	const json_t *type = json_object_get(outputs, "type");

	if (!json_is_object(outputs))
		return false;
	if (type)
		return json_is_string(type) && strcmp(json_string_value(type), "object") == 0;
	return json_object_get(outputs, "properties") || json_object_get(outputs, "required");
}

/* Does template string s use placeholder `key`? (s was checked well formed.) */
static bool uses_placeholder(const char *s, size_t len, const char *key)
{
	size_t pos = 0, start = 0, end = 0, noff = 0, nlen = 0;

	while (next_placeholder(s, len, &pos, &start, &end, &noff, &nlen) == 1)
		if (name_is(s + noff, nlen, key))
			return true;
	return false;
}

/*
 * What the system prompt adds after the instructions: the role and the goal
 * when no {{ role }} / {{ goal }} places them, and for an object outputs
 * schema the answer's contract (one JSON object matching the schema, which
 * the guest checks). Static text, so it goes into the literal.
 */
static int emit_prompt_extras(const gctx *g, emitter *em, const char *instr, size_t len)
{
	const char *role = str_or_null(g->root, "role"), *goal = str_or_null(g->root, "goal");
	const json_t *outputs = json_object_get(g->root, "outputs");
	cw text = CW_INIT;
	int rc = 0;

	if (role && *role && !uses_placeholder(instr, len, "role")) {
		cw_puts(&text, "Your role: ");
		cw_puts(&text, role);
		cw_puts(&text, "\n");
	}
	if (goal && *goal && !uses_placeholder(instr, len, "goal")) {
		cw_puts(&text, "Your goal: ");
		cw_puts(&text, goal);
		cw_puts(&text, "\n");
	}
	if (outputs_object(outputs)) {
		if (text.b.len)
			cw_puts(&text, "\n");
		cw_puts(&text, "Give your final answer as one JSON object and nothing else (no text "
			       "around it, no code fence). It must match this JSON Schema:\n");
		rc = json_write(&text, outputs, 0);
	}
	if (rc == 0)
		rc = text.rc;
	if (rc == 0 && text.b.len) {
		if (len)
			json_escape(&em->lit, "\n\n", instr[len - 1] == '\n' ? 1 : 2);
		json_escape(&em->lit, text.b.data, text.b.len);
	}
	cw_free(&text);
	return rc;
}

/* The system prompt renderer and the fixed parts of the chat request. */
static int emit_llm(const gctx *g, cw *o)
{
	const json_t *model = json_object_get(g->root, "model");
	const json_t *temp = json_object_get(model, "temperature");
	const json_t *max_tokens = json_object_get(model, "max_tokens");
	const json_t *instr = json_object_get(g->root, "instructions");
	cw head = CW_INIT, tail = CW_INIT;
	emitter em = {o, CW_INIT};
	int rc;

	if ((rc = check_no_nul(instr, "instructions")) < 0 ||
	    (rc = check_no_nul(json_object_get(model, "name"), "model.name")) < 0)
		return rc;
	cw_puts(o, "/* ---- the system prompt, as JSON string content ---- */\n\n"
		   "static void render_system(af_run *r, af_buf *b)\n{\n\t(void)r;\n");
	rc = emit_template_string(g, &em, json_string_value(instr), json_string_length(instr),
				  NO_STEPS, "instructions");
	if (rc == 0)
		rc = emit_prompt_extras(g, &em, json_string_value(instr), json_string_length(instr));
	if (rc == 0) {
		em_flush(&em);
		cw_puts(o, "}\n\n");
	}
	cw_free(&em.lit);
	if (rc < 0)
		return rc;

	/* {"model":NAME,"messages":[ ... ],"tools":[...],"temperature":T,"max_tokens":N} */
	cw_puts(&head, "{\"model\":");
	rc = json_write(&head, json_object_get(model, "name"), 0);
	cw_puts(&head, ",\"messages\":[");
	cw_puts(&tail, "]");
	if (rc == 0 && json_array_size(g->tools) && (g->agent->abi_caps & GEN_CAP_TOOL_CALL))
		rc = write_tools_json(g, &tail);
	if (rc == 0 && json_is_number(temp)) {
		cw_puts(&tail, ",\"temperature\":");
		rc = json_write(&tail, temp, 0);
	}
	if (json_is_integer(max_tokens))
		cw_printf(&tail, ",\"max_tokens\":%lld", (long long)json_integer_value(max_tokens));
	cw_puts(&tail, "}");
	if (rc == 0)
		rc = head.rc ? head.rc : tail.rc;
	if (rc == 0) {
		cw_puts(o, "/* ---- the chat request around the messages ---- */\n\n"
			   "static const char request_head[] =\n\t");
		c_literal(o, head.b.data, head.b.len, "\t");
		cw_puts(o, ";\n\nstatic const char request_tail[] =\n\t");
		c_literal(o, tail.b.data, tail.b.len, "\t");
		cw_puts(o, ";\n\n");
	}
	cw_free(&head);
	cw_free(&tail);
	return rc;
}

static void emit_agent(const gctx *g, cw *o)
{
	const gen_agent *a = g->agent;
	size_t nt = json_array_size(g->tools);

	cw_puts(o, "/* ---- the agent ---- */\n\n"
		   "const af_agent af_agent_def = {\n"
		   "\t.describe = describe_json,\n"
		   "\t.describe_len = sizeof(describe_json) - 1,\n"
		   "\t.name = ");
	c_str(o, a->name, "\t\t");
	cw_puts(o, ",\n\t.version = ");
	c_str(o, a->version, "\t\t");
	cw_printf(o, ",\n\t.max_steps = %u,\n\t.timeout_ms = %u,\n", a->max_steps, a->timeout_ms);
	if (nt)
		cw_printf(o, "\t.tools = tools,\n\t.n_tools = %zu,\n", nt);
	else
		cw_puts(o, "\t.tools = NULL,\n\t.n_tools = 0,\n");
	if (a->llm)
		cw_puts(o, "\t.steps = NULL,\n\t.n_steps = 0,\n");
	else
		cw_printf(o, "\t.steps = steps,\n\t.n_steps = %zu,\n", a->n_steps);
	cw_puts(o, "\t.validate_inputs = validate_inputs,\n");
	if (a->llm)
		cw_printf(o, "\t.render_system = render_system,\n"
			   "\t.request_head = request_head,\n"
			   "\t.request_head_len = sizeof(request_head) - 1,\n"
			   "\t.request_tail = request_tail,\n"
			   "\t.request_tail_len = sizeof(request_tail) - 1,\n"
			   "\t.validate_output = validate_output,\n"
			   "\t.output_object = %d,\n",
			   outputs_object(json_object_get(g->root, "outputs")) ? 1 : 0);
	else
		cw_puts(o, "\t.render_system = NULL,\n"
			   "\t.request_head = NULL,\n"
			   "\t.request_head_len = 0,\n"
			   "\t.request_tail = NULL,\n"
			   "\t.request_tail_len = 0,\n"
			   "\t.validate_output = NULL,\n"
			   "\t.output_object = 0,\n");
	cw_puts(o, "};\n");
}

static int generate(cw *o, const char *json, size_t len)
{
	json_t *root = NULL;
	gen_agent *agent = NULL;
	const json_t *inputs, *outputs;
	gctx g;
	int rc;

	if ((rc = load_root(&root, json, len)) < 0)
		return rc;
	if ((rc = agent_from_root(&agent, root)) < 0)
		goto cleanup;
	memset(&g, 0, sizeof(g));
	g.root = root;
	g.agent = agent;
	g.tools = json_object_get(root, "tools");
	g.steps = json_object_get(root, "steps");
	inputs = json_object_get(root, "inputs");
	if (inputs && !json_is_null(inputs) && !json_is_object(inputs)) {
		rc = art_error_set(AF_EINVAL, "codegen: %s: inputs must be a JSON schema map", agent->name);
		goto cleanup;
	}
	outputs = json_object_get(root, "outputs");
	if (outputs && !json_is_null(outputs) && !json_is_object(outputs)) {
		rc = art_error_set(AF_EINVAL, "codegen: %s: outputs must be a JSON schema map", agent->name);
		goto cleanup;
	}
	g.props = json_object_get(inputs, "properties");
	if (!json_is_object(g.props))
		g.props = NULL;

	emit_header(&g, o, json, len);
	cw_puts(o, "/* ---- inputs ---- */\n\n");
	rc = emit_validator(&g, o, "validate_inputs", json_is_object(inputs) ? inputs : NULL,
			    "inputs", false);
	/* An LLM agent's final answer is checked against outputs (a workflow's
	 * output is its steps' results, not the model's word). */
	if (rc == 0 && agent->llm) {
		cw_puts(o, "/* ---- outputs: the model's final answer ---- */\n\n");
		rc = emit_validator(&g, o, "validate_output", json_is_object(outputs) ? outputs : NULL,
				    "output", false);
	}
	if (rc == 0)
		rc = emit_tools(&g, o);
	if (rc == 0)
		rc = agent->llm ? emit_llm(&g, o) : emit_steps(&g, o);
	if (rc == 0)
		emit_agent(&g, o);
	if (rc == 0)
		rc = o->rc;
cleanup:
	gen_agent_free(agent);
	json_decref(root);
	return rc;
}

int gen_c_generate(char **out_c, size_t *out_len, const char *json, size_t len)
{
	cw out = CW_INIT;
	locale_t c_locale, old;
	int rc;

	if (!out_c || !out_len)
		return art_error_set(AF_EINVAL, "codegen: NULL argument");
	*out_c = NULL;
	*out_len = 0;
	/* Numbers must print the same whatever the process locale is. */
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!c_locale)
		return oom();
	old = uselocale(c_locale);
	out.b.max = (size_t)GEN_MAX_C_BYTES;
	rc = generate(&out, json, len);
	uselocale(old);
	freelocale(c_locale);
	if (rc == AF_ETOOBIG)
		rc = art_error_set(AF_ETOOBIG, "codegen: the generated code is over the limit of %u "
				   "KiB (cost of compiling it): the schemas, tools or steps are too "
				   "large; split the agent or simplify its schemas",
				   GEN_MAX_C_BYTES >> 10);
	if (rc < 0) {
		cw_free(&out);
		return rc;
	}
	*out_len = out.b.len;
	*out_c = art_buf_detach(&out.b);
	return 0;
}
