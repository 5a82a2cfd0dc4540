/*
 * template.c - the schema of one agent template file (docs/templates.md).
 *
 * pipe_template_parse runs the YAML parser, then walks the tree once, in
 * document order, reporting every finding with the mark of the offending key
 * or value, a stable rule id and a hint. Checking never stops at the first
 * error; only out-of-memory aborts the walk (v->rc).
 *
 * User text quoted in messages (keys, names) is escaped and cut short, so a
 * hostile file cannot put terminal control sequences or megabytes into a
 * diagnostic.
 */
#include "pipe/template.h"

#include "art/error.h"
#include "art/limits.h"
#include "art/util.h"
#include "pipe/semver.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest piece of user text quoted in a message. */
#define QUOTE_MAX 64
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)
#define PATH_BUF 512

typedef struct vctx {
	pipe_diags *diags;
	size_t errors;
	int rc; /* AF_ENOMEM once a finding could not be recorded */
} vctx;

static const char *const top_fields[] = {
	"kind", "apiVersion", "name", "version", "description", "labels",
	"extends", "abstract", "role", "goal", "instructions", "model", "tools",
	"capabilities", "inputs", "outputs", "limits", "steps",
};
static const char *const model_fields[] = {"provider", "name", "temperature", "max_tokens"};
static const char *const tool_fields[] = {"name", "description", "capability", "parameters"};
static const char *const step_fields[] = {"id", "tool", "args", "description"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- messages ------------------------------------------------------------ */

/* Copy s into out (QUOTE_BUF bytes) escaping control characters, cut after
 * QUOTE_MAX bytes on a UTF-8 character boundary. */
static const char *quote(char *out, const char *s, size_t len)
{
	size_t i = 0, o = 0;
	size_t lim = len < QUOTE_MAX ? len : QUOTE_MAX;

	if (len > QUOTE_MAX)
		while (lim > 0 && ((unsigned char)s[lim] & 0xC0) == 0x80)
			lim--;
	for (i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, QUOTE_BUF - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (lim < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static void vreport(vctx *v, pipe_severity sev, const pipe_mark *mark, const char *rule,
		    const char *hint, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (sev == PIPE_SEV_ERROR)
		v->errors++;
	if (vasprintf(&msg, fmt, ap) < 0) {
		v->rc = art_error_set(AF_ENOMEM, "out of memory reporting a finding");
		return;
	}
	if (pipe_diags_add(v->diags, sev, mark, rule, hint, "%s", msg) < 0)
		v->rc = AF_ENOMEM;
	free(msg);
}

static void report(vctx *v, const pipe_mark *mark, const char *rule, const char *hint,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(vctx *v, const pipe_mark *mark, const char *rule, const char *hint,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(v, PIPE_SEV_ERROR, mark, rule, hint, fmt, ap);
	va_end(ap);
}

/* "a string", "a map", ... for "must be X, not Y" messages. */
static const char *a_type(pipe_node_type t)
{
	switch (t) {
	case PIPE_NODE_NULL: return "null";
	case PIPE_NODE_BOOL: return "a bool";
	case PIPE_NODE_INT: return "an int";
	case PIPE_NODE_REAL: return "a float";
	case PIPE_NODE_STRING: return "a string";
	case PIPE_NODE_SEQ: return "a list";
	case PIPE_NODE_MAP: return "a map";
	}
	return "a value";
}

static void type_error(vctx *v, const pipe_node *n, const char *path, const char *want)
{
	const char *hint;

	if (n->type == PIPE_NODE_NULL)
		hint = "remove the field: null only deletes an inherited map key";
	else if (strcmp(want, "a string") == 0)
		hint = "quote the value if it is meant as text, e.g. \"1.0\"";
	else if (strcmp(want, "a map") == 0)
		hint = "write key: value pairs (or {key: value})";
	else if (strcmp(want, "a list") == 0)
		hint = "write a list: [a, b] or one '- item' per line";
	else if (strcmp(want, "an int") == 0)
		hint = "write a whole number without quotes or a decimal point";
	else if (strcmp(want, "a number") == 0)
		hint = "write a number without quotes";
	else if (strcmp(want, "a bool") == 0)
		hint = "write true or false without quotes";
	else
		hint = "see docs/templates.md for the type of each field";
	report(v, &n->mark, "template.type", hint, "'%s' must be %s, not %s", path, want,
	       a_type(n->type));
}

/* ---- suggestions and duplicates (shared with resolve.c) ------------------ */

#define SUGGEST_MAX 64

static size_t lower_copy(char *out, const char *s)
{
	size_t n = 0;

	while (n < SUGGEST_MAX && s[n]) {
		char c = s[n];

		out[n] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		n++;
	}
	out[n] = '\0';
	return s[n] ? SIZE_MAX : n;
}

/* Optimal string alignment distance (Levenshtein + adjacent swaps). */
static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
	size_t i, j;

	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *pipe_template__suggest(const char *word, const char *const *candidates, size_t n)
{
	char lw[SUGGEST_MAX + 1], lc[SUGGEST_MAX + 1];
	const char *best = NULL;
	size_t best_d = SIZE_MAX, lwn, i;

	if (!word || (lwn = lower_copy(lw, word)) == SIZE_MAX || lwn == 0)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t lcn, dist, limit;

		if (!candidates[i] || (lcn = lower_copy(lc, candidates[i])) == SIZE_MAX)
			continue;
		dist = osa_distance(lw, lwn, lc, lcn);
		limit = lcn <= 4 ? 1 : 2;
		if (dist <= limit && dist < lwn && dist < best_d) {
			best = candidates[i];
			best_d = dist;
		}
	}
	return best;
}

typedef struct keyed {
	const char *key;
	size_t index;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
	const keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

long pipe_template__dups(const char *const *keys, size_t n, size_t *first_of)
{
	keyed *k;
	size_t i, m = 0, run;
	long dups = 0;

	for (i = 0; i < n; i++)
		first_of[i] = SIZE_MAX;
	if (n < 2)
		return 0;
	k = calloc(n, sizeof(*k));
	if (!k)
		return art_error_set(AF_ENOMEM, "out of memory checking duplicates");
	for (i = 0; i < n; i++)
		if (keys[i]) {
			k[m].key = keys[i];
			k[m].index = i;
			m++;
		}
	qsort(k, m, sizeof(*k), keyed_cmp);
	for (run = 0, i = 1; i < m; i++) {
		if (strcmp(k[i].key, k[run].key) == 0) {
			first_of[k[i].index] = k[run].index;
			dups++;
		} else {
			run = i;
		}
	}
	free(k);
	return dups;
}

/* ---- patterns ------------------------------------------------------------ */

static bool lower_alpha(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ^[first][rest]{0,max_rest}$ where first/rest are lower letters plus the
 * characters listed (digits when the flag says so). */
static bool matches(const char *s, bool first_digit, const char *rest_extra, size_t max_rest)
{
	size_t i;

	if (!s || !(lower_alpha(s[0]) || (first_digit && digit(s[0]))))
		return false;
	for (i = 1; s[i]; i++) {
		if (i > max_rest)
			return false;
		if (!lower_alpha(s[i]) && !digit(s[i]) && !strchr(rest_extra, s[i]))
			return false;
	}
	return true;
}

bool pipe_template_name_valid(const char *s)
{
	return matches(s, false, "-", 62);
}

static bool tool_name_valid(const char *s)
{
	return matches(s, false, "_", 63);
}

static bool capability_valid(const char *s)
{
	return matches(s, false, "_.", 63);
}

static bool label_key_valid(const char *s)
{
	return matches(s, true, "._/-", 62);
}

/* ---- placeholders -------------------------------------------------------- */


/* The grammar lives in artifacts/src/placeholder.c (codegen uses it too). */
int pipe_placeholder_next(const char *s, size_t len, size_t *pos, pipe_placeholder *out)
{
	return art_placeholder_next(s, len, pos, out);
}

static void check_placeholders(vctx *v, const pipe_node *n, const char *path)
{
	pipe_placeholder ph;
	size_t pos = 0;
	int r;
	char q[QUOTE_BUF];

	while ((r = pipe_placeholder_next(n->v.s.ptr, n->v.s.len, &pos, &ph)) != 0) {
		if (r > 0)
			continue;
		report(v, &n->mark, "template.placeholder",
		       "write {{ name }}, {{ role }}, {{ goal }}, {{ inputs.PROPERTY }} or "
		       "{{ steps.ID.FIELD }}; every '{{' must open a placeholder",
		       "malformed placeholder '%s' in '%s'",
		       quote(q, n->v.s.ptr + ph.start, ph.len), path);
	}
}

/* ---- typed field checks -------------------------------------------------- */

/* Every string must be free of NUL bytes: names flow into C strings. */
static bool string_ok(vctx *v, const pipe_node *n, const char *path)
{
	if (memchr(n->v.s.ptr, '\0', n->v.s.len)) {
		report(v, &n->mark, "template.type", "remove the \\0 escape from the string",
		       "'%s' contains a NUL character", path);
		return false;
	}
	return true;
}

/* The string value, or NULL (after reporting unless null_ok and null). */
static const char *want_string(vctx *v, const pipe_node *n, const char *path, bool null_ok)
{
	if (n->type == PIPE_NODE_STRING)
		return string_ok(v, n, path) ? n->v.s.ptr : NULL;
	if (!(null_ok && n->type == PIPE_NODE_NULL))
		type_error(v, n, path, "a string");
	return NULL;
}

static bool want_type(vctx *v, const pipe_node *n, const char *path, pipe_node_type t,
		      bool null_ok)
{
	if (n->type == t)
		return true;
	if (!(null_ok && n->type == PIPE_NODE_NULL))
		type_error(v, n, path, a_type(t));
	return false;
}

static void want_int_range(vctx *v, const pipe_node *n, const char *path, long long lo,
			   long long hi)
{
	if (n->type == PIPE_NODE_NULL)
		return;
	if (n->type != PIPE_NODE_INT) {
		type_error(v, n, path, "an int");
		return;
	}
	if (n->v.i < lo || n->v.i > hi) {
		char hint[64];

		snprintf(hint, sizeof(hint), "use a value from %lld to %lld", lo, hi);
		report(v, &n->mark, "template.range", hint, "'%s' is %lld, outside %lld..%lld",
		       path, n->v.i, lo, hi);
	}
}

static void want_number_range(vctx *v, const pipe_node *n, const char *path, double lo,
			      double hi)
{
	double x;

	if (n->type == PIPE_NODE_NULL)
		return;
	if (n->type != PIPE_NODE_INT && n->type != PIPE_NODE_REAL) {
		type_error(v, n, path, "a number");
		return;
	}
	x = n->type == PIPE_NODE_INT ? (double)n->v.i : n->v.r;
	if (!(x >= lo && x <= hi)) {
		char hint[64];

		snprintf(hint, sizeof(hint), "use a value from %g to %g", lo, hi);
		report(v, &n->mark, "template.range", hint, "'%s' is %g, outside %g..%g", path, x,
		       lo, hi);
	}
}

static void unknown_field(vctx *v, const pipe_map_entry *e, const char *where,
			  const char *const *fields, size_t nfields)
{
	art_buf hint = ART_BUF_INIT;
	const char *guess = pipe_template__suggest(e->key, fields, nfields);
	char q[QUOTE_BUF];
	size_t i;
	int rc = 0;

	if (guess)
		rc = art_buf_printf(&hint, "did you mean '%s'? ", guess);
	else
		rc = art_buf_puts(&hint, "remove it or fix its spelling; ");
	for (i = 0; rc == 0 && i < nfields; i++)
		rc = art_buf_printf(&hint, "%s%s", i ? ", " : "fields: ", fields[i]);
	if (rc < 0) {
		v->rc = AF_ENOMEM;
		art_buf_free(&hint);
		return;
	}
	report(v, &e->key_mark, "template.unknown-field", hint.data, "unknown field '%s' in %s",
	       quote(q, e->key, strlen(e->key)), where);
	art_buf_free(&hint);
}

/* Free-form JSON-schema maps: any keys, but only JSON-representable,
 * C-safe values. Strings are checked for placeholder syntax when asked. */
static void check_free_form(vctx *v, const pipe_node *n, const char *path, bool placeholders)
{
	size_t i;

	switch (n->type) {
	case PIPE_NODE_REAL:
		if (!isfinite(n->v.r))
			report(v, &n->mark, "template.type", "JSON has no infinity or NaN; use a finite number",
			       "'%s' holds a value that is not a finite number", path);
		break;
	case PIPE_NODE_STRING:
		if (string_ok(v, n, path) && placeholders)
			check_placeholders(v, n, path);
		break;
	case PIPE_NODE_SEQ:
		for (i = 0; i < n->v.seq.n; i++)
			check_free_form(v, n->v.seq.items[i], path, placeholders);
		break;
	case PIPE_NODE_MAP:
		for (i = 0; i < n->v.map.n; i++)
			check_free_form(v, n->v.map.entries[i].value, path, placeholders);
		break;
	default:
		break;
	}
}

/* ---- sections ------------------------------------------------------------ */

static void check_model(vctx *v, const pipe_node *m)
{
	size_t i;

	for (i = 0; i < m->v.map.n; i++) {
		const pipe_map_entry *e = &m->v.map.entries[i];

		if (strcmp(e->key, "provider") == 0)
			want_string(v, e->value, "model.provider", true);
		else if (strcmp(e->key, "name") == 0)
			want_string(v, e->value, "model.name", true);
		else if (strcmp(e->key, "temperature") == 0)
			want_number_range(v, e->value, "model.temperature", 0.0,
					  PIPE_TEMPLATE_TEMPERATURE_MAX);
		else if (strcmp(e->key, "max_tokens") == 0)
			want_int_range(v, e->value, "model.max_tokens", 1,
				       PIPE_TEMPLATE_MAX_TOKENS_MAX);
		else
			unknown_field(v, e, "model", model_fields, COUNT(model_fields));
	}
}

static void check_limits(vctx *v, const pipe_node *m)
{
	const char *names[ART_LIMIT_COUNT];
	char path[PATH_BUF];
	size_t i;

	for (i = 0; i < ART_LIMIT_COUNT; i++)
		names[i] = art_limits[i].name;
	for (i = 0; i < m->v.map.n; i++) {
		const pipe_map_entry *e = &m->v.map.entries[i];
		const art_limit *l = art_limits_find(e->key);

		if (l) {
			snprintf(path, sizeof(path), "limits.%s", l->name);
			want_int_range(v, e->value, path, l->min, l->max);
		} else {
			unknown_field(v, e, "limits", names, ART_LIMIT_COUNT);
		}
	}
}

static void check_labels(vctx *v, const pipe_node *m)
{
	char path[PATH_BUF], q[QUOTE_BUF];
	size_t i;

	for (i = 0; i < m->v.map.n; i++) {
		const pipe_map_entry *e = &m->v.map.entries[i];

		quote(q, e->key, strlen(e->key));
		snprintf(path, sizeof(path), "labels.%s", q);
		if (!label_key_valid(e->key))
			report(v, &e->key_mark, "template.name",
			       "label keys are 1-63 of a-z 0-9 . _ / -, starting with a letter or digit",
			       "invalid label key '%s'", q);
		want_string(v, e->value, path, true);
	}
}

/* Report later duplicates of keys[] (marks[] say where each item is). */
static void report_dups(vctx *v, const char *const *keys, const pipe_mark *marks, size_t n,
			const char *what, const char *hint)
{
	size_t *first_of;
	char q[QUOTE_BUF];
	long d;
	size_t i;

	if (n < 2)
		return;
	first_of = calloc(n, sizeof(*first_of));
	if (!first_of) {
		v->rc = art_error_set(AF_ENOMEM, "out of memory checking duplicates");
		return;
	}
	d = pipe_template__dups(keys, n, first_of);
	if (d < 0)
		v->rc = (int)d;
	for (i = 0; d > 0 && i < n; i++) {
		const pipe_mark *f;

		if (first_of[i] == SIZE_MAX)
			continue;
		f = &marks[first_of[i]];
		report(v, &marks[i], "template.duplicate-item", hint,
		       "duplicate %s '%s' (first at line %u:%u)", what,
		       quote(q, keys[i], strlen(keys[i])), f->line, f->col);
	}
	free(first_of);
}

/* Collects the name of each item of a list for the duplicate check. */
typedef struct itemkeys {
	const char **keys;
	pipe_mark *marks;
	size_t n;
} itemkeys;

static int itemkeys_init(itemkeys *k, size_t n)
{
	k->n = n;
	k->keys = calloc(n ? n : 1, sizeof(*k->keys));
	k->marks = calloc(n ? n : 1, sizeof(*k->marks));
	if (!k->keys || !k->marks)
		return art_error_set(AF_ENOMEM, "out of memory checking a list");
	return 0;
}

static void itemkeys_free(itemkeys *k)
{
	free(k->keys);
	free(k->marks);
}

static void check_tools(vctx *v, const pipe_node *seq)
{
	itemkeys k;
	size_t i, j;

	if (itemkeys_init(&k, seq->v.seq.n) < 0) {
		v->rc = AF_ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < seq->v.seq.n; i++) {
		const pipe_node *t = seq->v.seq.items[i];
		char where[32], path[PATH_BUF];
		bool has_name = false;

		snprintf(where, sizeof(where), "tools[%zu]", i);
		if (!want_type(v, t, where, PIPE_NODE_MAP, false))
			continue;
		for (j = 0; j < t->v.map.n; j++) {
			const pipe_map_entry *e = &t->v.map.entries[j];
			const char *s;
			char q[QUOTE_BUF];

			snprintf(path, sizeof(path), "%s.%s", where, e->key);
			if (strcmp(e->key, "name") == 0) {
				has_name = true;
				s = want_string(v, e->value, path, false);
				if (s && !tool_name_valid(s))
					report(v, &e->value->mark, "template.name",
					       "tool names are 1-64 of a-z 0-9 _, starting with a letter",
					       "invalid tool name '%s'", quote(q, s, strlen(s)));
				else if (s) {
					k.keys[i] = s;
					k.marks[i] = e->value->mark;
				}
			} else if (strcmp(e->key, "description") == 0) {
				want_string(v, e->value, path, false);
			} else if (strcmp(e->key, "capability") == 0) {
				s = want_string(v, e->value, path, false);
				if (s && !capability_valid(s))
					report(v, &e->value->mark, "template.name",
					       "capabilities are 1-64 of a-z 0-9 _ ., starting with a letter",
					       "invalid capability '%s'", quote(q, s, strlen(s)));
			} else if (strcmp(e->key, "parameters") == 0) {
				if (want_type(v, e->value, path, PIPE_NODE_MAP, false))
					check_free_form(v, e->value, path, false);
			} else {
				unknown_field(v, e, where, tool_fields, COUNT(tool_fields));
			}
		}
		if (!has_name)
			report(v, &t->mark, "template.required", "add name: TOOL_NAME to the tool",
			       "%s has no 'name'", where);
	}
	report_dups(v, k.keys, k.marks, k.n, "tool name",
		    "give each tool a unique name; remove or rename the second one");
cleanup:
	itemkeys_free(&k);
}

static void check_steps(vctx *v, const pipe_node *seq)
{
	itemkeys k;
	size_t i, j;

	if (itemkeys_init(&k, seq->v.seq.n) < 0) {
		v->rc = AF_ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < seq->v.seq.n; i++) {
		const pipe_node *st = seq->v.seq.items[i];
		char where[32], path[PATH_BUF];
		bool has_id = false, has_tool = false;

		snprintf(where, sizeof(where), "steps[%zu]", i);
		if (!want_type(v, st, where, PIPE_NODE_MAP, false))
			continue;
		for (j = 0; j < st->v.map.n; j++) {
			const pipe_map_entry *e = &st->v.map.entries[j];
			const char *s;
			char q[QUOTE_BUF];

			snprintf(path, sizeof(path), "%s.%s", where, e->key);
			if (strcmp(e->key, "id") == 0) {
				has_id = true;
				s = want_string(v, e->value, path, false);
				if (s && !tool_name_valid(s))
					report(v, &e->value->mark, "template.name",
					       "step ids are 1-64 of a-z 0-9 _, starting with a letter",
					       "invalid step id '%s'", quote(q, s, strlen(s)));
				else if (s) {
					k.keys[i] = s;
					k.marks[i] = e->value->mark;
				}
			} else if (strcmp(e->key, "tool") == 0) {
				has_tool = true;
				s = want_string(v, e->value, path, false);
				if (s && !tool_name_valid(s))
					report(v, &e->value->mark, "template.name",
					       "tool names are 1-64 of a-z 0-9 _, starting with a letter",
					       "invalid tool name '%s'", quote(q, s, strlen(s)));
			} else if (strcmp(e->key, "description") == 0) {
				want_string(v, e->value, path, false);
			} else if (strcmp(e->key, "args") == 0) {
				if (want_type(v, e->value, path, PIPE_NODE_MAP, false))
					check_free_form(v, e->value, path, true);
			} else {
				unknown_field(v, e, where, step_fields, COUNT(step_fields));
			}
		}
		if (!has_id)
			report(v, &st->mark, "template.required", "add id: STEP_ID to the step",
			       "%s has no 'id'", where);
		if (!has_tool)
			report(v, &st->mark, "template.required", "add tool: TOOL_NAME to the step",
			       "%s has no 'tool'", where);
	}
	report_dups(v, k.keys, k.marks, k.n, "step id",
		    "give each step a unique id; remove or rename the second one");
cleanup:
	itemkeys_free(&k);
}

static void check_capabilities(vctx *v, const pipe_node *seq)
{
	itemkeys k;
	size_t i;

	if (itemkeys_init(&k, seq->v.seq.n) < 0) {
		v->rc = AF_ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < seq->v.seq.n; i++) {
		const pipe_node *c = seq->v.seq.items[i];
		char path[PATH_BUF], q[QUOTE_BUF];
		const char *s;

		snprintf(path, sizeof(path), "capabilities[%zu]", i);
		s = want_string(v, c, path, false);
		if (s && !capability_valid(s))
			report(v, &c->mark, "template.name",
			       "capabilities are 1-64 of a-z 0-9 _ ., starting with a letter",
			       "invalid capability '%s'", quote(q, s, strlen(s)));
		else if (s) {
			k.keys[i] = s;
			k.marks[i] = c->mark;
		}
	}
	report_dups(v, k.keys, k.marks, k.n, "capability", "list each capability once");
cleanup:
	itemkeys_free(&k);
}

static int set_str(char **dst, const char *s, size_t n)
{
	free(*dst);
	*dst = strndup(s, n);
	return *dst ? 0 : art_error_set(AF_ENOMEM, "out of memory");
}

static void check_extends(vctx *v, pipe_template *t, const pipe_node *n)
{
	const char *s = want_string(v, n, "extends", true);
	const char *at;
	char q[QUOTE_BUF];
	static const char hint[] = "write extends: NAME, NAME@1.2.3 (exact) or NAME@^1.2.3 "
				   "(same major, at least this version)";

	if (!s)
		return;
	at = strchr(s, '@');
	if (set_str(&t->extends_name, s, at ? (size_t)(at - s) : strlen(s)) < 0) {
		v->rc = AF_ENOMEM;
		return;
	}
	t->extends_mark = n->mark;
	if (!pipe_template_name_valid(t->extends_name))
		report(v, &n->mark, "template.name", hint, "'extends' names '%s', which is not a valid template name",
		       quote(q, t->extends_name, strlen(t->extends_name)));
	if (!at)
		return;
	if (!pipe_semver_pin_valid(at + 1)) {
		report(v, &n->mark, "template.version", hint,
		       "'extends' pin '%s' is not a version or caret range", quote(q, at + 1, strlen(at + 1)));
		return;
	}
	if (set_str(&t->extends_pin, at + 1, strlen(at + 1)) < 0)
		v->rc = AF_ENOMEM;
}

static void check_root(vctx *v, pipe_template *t)
{
	const pipe_node *root = t->root;
	bool has_kind = false, has_name = false, has_version = false;
	char q[QUOTE_BUF];
	size_t i;

	if (root->type != PIPE_NODE_MAP) {
		report(v, &root->mark, "template.type",
		       "a template is a map starting with kind: AgentTemplate",
		       "the template must be a map, not %s", a_type(root->type));
		return;
	}
	for (i = 0; i < root->v.map.n && v->rc == 0; i++) {
		const pipe_map_entry *e = &root->v.map.entries[i];
		const pipe_node *n = e->value;
		const char *k = e->key, *s;

		if (strcmp(k, "kind") == 0) {
			has_kind = true;
			if (n->type != PIPE_NODE_STRING || strcmp(n->v.s.ptr, PIPE_TEMPLATE_KIND) != 0)
				report(v, &n->mark, "template.kind", "write kind: " PIPE_TEMPLATE_KIND,
				       "'kind' must be '" PIPE_TEMPLATE_KIND "'");
		} else if (strcmp(k, "apiVersion") == 0) {
			if (n->type != PIPE_NODE_NULL &&
			    (n->type != PIPE_NODE_STRING ||
			     strcmp(n->v.s.ptr, PIPE_TEMPLATE_API_VERSION) != 0))
				report(v, &n->mark, "template.kind",
				       "write apiVersion: " PIPE_TEMPLATE_API_VERSION " or leave it out",
				       "'apiVersion' must be '" PIPE_TEMPLATE_API_VERSION "'");
		} else if (strcmp(k, "name") == 0) {
			has_name = true;
			s = want_string(v, n, "name", false);
			if (s && !pipe_template_name_valid(s))
				report(v, &n->mark, "template.name",
				       "names are 1-63 of a-z 0-9 -, starting with a letter (e.g. security-expert)",
				       "invalid template name '%s'", quote(q, s, strlen(s)));
			else if (s && set_str(&t->name, s, strlen(s)) < 0)
				v->rc = AF_ENOMEM;
		} else if (strcmp(k, "version") == 0) {
			has_version = true;
			if (n->type == PIPE_NODE_INT || n->type == PIPE_NODE_REAL) {
				report(v, &n->mark, "template.type",
				       "write MAJOR.MINOR.PATCH, e.g. version: 1.0.0",
				       "'version' must be a string, not %s", a_type(n->type));
				continue;
			}
			s = want_string(v, n, "version", false);
			if (s && !pipe_semver_valid(s))
				report(v, &n->mark, "template.version",
				       "write MAJOR.MINOR.PATCH[-prerelease][+build] without leading zeros, e.g. 1.2.0",
				       "'%s' is not a semantic version", quote(q, s, strlen(s)));
			else if (s && set_str(&t->version, s, strlen(s)) < 0)
				v->rc = AF_ENOMEM;
		} else if (strcmp(k, "description") == 0 || strcmp(k, "role") == 0 ||
			   strcmp(k, "goal") == 0) {
			want_string(v, n, k, true);
		} else if (strcmp(k, "instructions") == 0) {
			if (want_string(v, n, k, true))
				check_placeholders(v, n, k);
		} else if (strcmp(k, "labels") == 0) {
			if (want_type(v, n, k, PIPE_NODE_MAP, true))
				check_labels(v, n);
		} else if (strcmp(k, "extends") == 0) {
			check_extends(v, t, n);
		} else if (strcmp(k, "abstract") == 0) {
			if (want_type(v, n, k, PIPE_NODE_BOOL, true))
				t->abstract = n->v.b;
		} else if (strcmp(k, "model") == 0) {
			if (want_type(v, n, k, PIPE_NODE_MAP, true))
				check_model(v, n);
		} else if (strcmp(k, "limits") == 0) {
			if (want_type(v, n, k, PIPE_NODE_MAP, true))
				check_limits(v, n);
		} else if (strcmp(k, "tools") == 0) {
			if (want_type(v, n, k, PIPE_NODE_SEQ, true))
				check_tools(v, n);
		} else if (strcmp(k, "steps") == 0) {
			if (want_type(v, n, k, PIPE_NODE_SEQ, true))
				check_steps(v, n);
		} else if (strcmp(k, "capabilities") == 0) {
			if (want_type(v, n, k, PIPE_NODE_SEQ, true))
				check_capabilities(v, n);
		} else if (strcmp(k, "inputs") == 0 || strcmp(k, "outputs") == 0) {
			if (want_type(v, n, k, PIPE_NODE_MAP, true))
				check_free_form(v, n, k, false);
		} else {
			unknown_field(v, e, "the template", top_fields, COUNT(top_fields));
		}
	}
	if (!has_kind)
		report(v, &root->mark, "template.kind", "add kind: " PIPE_TEMPLATE_KIND " at the top",
		       "'kind' is missing");
	if (!has_name)
		report(v, &root->mark, "template.required", "add name: NAME (e.g. name: security-expert)",
		       "'name' is missing");
	if (!has_version)
		report(v, &root->mark, "template.required", "add version: MAJOR.MINOR.PATCH (e.g. version: 1.0.0)",
		       "'version' is missing");
}

int pipe_template_parse(pipe_template **out, const char *path, const char *data, size_t len,
			pipe_diags *diags)
{
	pipe_template *t = NULL;
	vctx v = {diags, 0, 0};
	int rc;

	if (!out || !path || (!data && len) || !diags)
		return art_error_set(AF_EINVAL, "pipe_template_parse: missing argument");
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->path = strdup(path))) {
		rc = art_error_set(AF_ENOMEM, "out of memory parsing %s", path);
		goto cleanup;
	}
	art_sha256_hex(data ? data : "", len, t->file_sha256);
	if ((rc = pipe_yaml_parse(&t->root, data ? data : "", len, t->path, diags)) < 0)
		goto cleanup;
	if (!t->root) {
		rc = art_error_set(AF_EINTERNAL, "%s: the YAML parser returned no tree", path);
		goto cleanup;
	}
	check_root(&v, t);
	if ((rc = v.rc) < 0)
		goto cleanup;
	if (v.errors) {
		rc = art_error_set(AF_ESYNTAX, "%s: %zu error%s in the template", path, v.errors,
				   v.errors == 1 ? "" : "s");
		goto cleanup;
	}
	*out = t;
	t = NULL;
	rc = 0;
cleanup:
	pipe_template_free(t);
	return rc;
}

void pipe_template_free(pipe_template *t)
{
	if (!t)
		return;
	pipe_node_free(t->root);
	free(t->name);
	free(t->version);
	free(t->extends_name);
	free(t->extends_pin);
	free(t->path);
	free(t);
}
