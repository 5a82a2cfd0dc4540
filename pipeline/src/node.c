/*
 * node.c - YAML (libyaml events) into a typed, position-carrying tree, plus
 * the diagnostics list. See pipe/node.h for the rules hostile input meets.
 *
 * The parser is a recursive descent over libyaml's event stream; recursion is
 * bounded by PIPE_YAML_MAX_DEPTH and the total node count by
 * PIPE_YAML_MAX_NODES, so no input can exhaust the stack or memory beyond a
 * small multiple of its own size.
 */
#include "pipe/node.h"

#include "art/error.h"
#include "art/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- diagnostics ------------------------------------------------------ */

static int diags_addv(pipe_diags *d, pipe_severity sev, const char *file, unsigned line,
		      unsigned col, const char *rule, const char *hint, const char *fmt, va_list ap)
{
	art_buf msg = ART_BUF_INIT;
	pipe_diag *it;
	char tmp[1024];

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		pipe_diag *p = realloc(d->items, cap * sizeof(*p));
		if (!p)
			return art_error_set(AF_ENOMEM, "out of memory recording a finding");
		d->items = p;
		d->cap = cap;
	}
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	it = &d->items[d->n];
	memset(it, 0, sizeof(*it));
	it->severity = sev;
	it->line = line;
	it->col = col;
	it->file = file ? strdup(file) : NULL;
	it->rule = strdup(rule ? rule : "error");
	it->message = strdup(tmp);
	it->hint = hint ? strdup(hint) : NULL;
	art_buf_free(&msg);
	if ((file && !it->file) || !it->rule || !it->message || (hint && !it->hint)) {
		free(it->file);
		free(it->rule);
		free(it->message);
		free(it->hint);
		return art_error_set(AF_ENOMEM, "out of memory recording a finding");
	}
	d->n++;
	return 0;
}

int pipe_diags_add(pipe_diags *d, pipe_severity sev, const pipe_mark *mark,
		   const char *rule, const char *hint, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = diags_addv(d, sev, mark ? mark->file : NULL, mark ? mark->line : 0,
			mark ? mark->col : 0, rule, hint, fmt, ap);
	va_end(ap);
	return rc;
}

int pipe_diags_add_file(pipe_diags *d, pipe_severity sev, const char *file,
			const char *rule, const char *hint, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = diags_addv(d, sev, file, 0, 0, rule, hint, fmt, ap);
	va_end(ap);
	return rc;
}

size_t pipe_diags_errors(const pipe_diags *d)
{
	size_t i, n = 0;

	for (i = 0; i < d->n; i++)
		if (d->items[i].severity == PIPE_SEV_ERROR)
			n++;
	return n;
}

void pipe_diags_print(const pipe_diags *d, FILE *out)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		const pipe_diag *it = &d->items[i];
		if (it->file && it->line)
			fprintf(out, "%s:%u:%u: ", it->file, it->line, it->col);
		else if (it->file)
			fprintf(out, "%s: ", it->file);
		fprintf(out, "%s[%s]: %s\n", it->severity == PIPE_SEV_ERROR ? "error" : "warning",
			it->rule, it->message);
		if (it->hint)
			fprintf(out, "    hint: %s\n", it->hint);
	}
}

json_t *pipe_diags_to_json(const pipe_diags *d)
{
	json_t *arr = json_array();
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < d->n; i++) {
		const pipe_diag *it = &d->items[i];
		json_t *o = json_pack("{s:s?, s:I, s:I, s:s, s:s, s:s, s:s?}",
				      "file", it->file, "line", (json_int_t)it->line,
				      "col", (json_int_t)it->col,
				      "severity", it->severity == PIPE_SEV_ERROR ? "error" : "warning",
				      "rule", it->rule, "message", it->message, "hint", it->hint);
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

void pipe_diags_free(pipe_diags *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].rule);
		free(d->items[i].message);
		free(d->items[i].hint);
	}
	free(d->items);
	d->items = NULL;
	d->n = d->cap = 0;
}

/* ---- tree ------------------------------------------------------------- */

const char *pipe_node_type_name(pipe_node_type t)
{
	switch (t) {
	case PIPE_NODE_NULL: return "null";
	case PIPE_NODE_BOOL: return "bool";
	case PIPE_NODE_INT: return "int";
	case PIPE_NODE_REAL: return "float";
	case PIPE_NODE_STRING: return "string";
	case PIPE_NODE_SEQ: return "list";
	case PIPE_NODE_MAP: return "map";
	}
	return "unknown";
}

pipe_node *pipe_node_new(pipe_node_type type, const pipe_mark *mark)
{
	pipe_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->type = type;
	if (mark)
		n->mark = *mark;
	return n;
}

pipe_node *pipe_node_new_str(const char *s, size_t len, const pipe_mark *mark)
{
	pipe_node *n = pipe_node_new(PIPE_NODE_STRING, mark);

	if (!n)
		return NULL;
	n->v.s.ptr = malloc(len + 1);
	if (!n->v.s.ptr) {
		free(n);
		return NULL;
	}
	memcpy(n->v.s.ptr, s, len);
	n->v.s.ptr[len] = '\0';
	n->v.s.len = len;
	return n;
}

void pipe_node_free(pipe_node *n)
{
	size_t i;

	if (!n)
		return;
	switch (n->type) {
	case PIPE_NODE_STRING:
		free(n->v.s.ptr);
		break;
	case PIPE_NODE_SEQ:
		for (i = 0; i < n->v.seq.n; i++)
			pipe_node_free(n->v.seq.items[i]);
		free(n->v.seq.items);
		break;
	case PIPE_NODE_MAP:
		for (i = 0; i < n->v.map.n; i++) {
			free(n->v.map.entries[i].key);
			pipe_node_free(n->v.map.entries[i].value);
		}
		free(n->v.map.entries);
		break;
	default:
		break;
	}
	free(n);
}

int pipe_node_seq_push(pipe_node *seq, pipe_node *item)
{
	if (seq->v.seq.n == seq->v.seq.cap) {
		size_t cap = seq->v.seq.cap ? seq->v.seq.cap * 2 : 4;
		pipe_node **p = realloc(seq->v.seq.items, cap * sizeof(*p));
		if (!p) {
			pipe_node_free(item);
			return art_error_set(AF_ENOMEM, "out of memory");
		}
		seq->v.seq.items = p;
		seq->v.seq.cap = cap;
	}
	seq->v.seq.items[seq->v.seq.n++] = item;
	return 0;
}

pipe_map_entry *pipe_node_entry(const pipe_node *map, const char *key)
{
	size_t i;

	if (!map || map->type != PIPE_NODE_MAP)
		return NULL;
	for (i = 0; i < map->v.map.n; i++)
		if (strcmp(map->v.map.entries[i].key, key) == 0)
			return &map->v.map.entries[i];
	return NULL;
}

pipe_node *pipe_node_get(const pipe_node *map, const char *key)
{
	pipe_map_entry *e = pipe_node_entry(map, key);

	return e ? e->value : NULL;
}

const char *pipe_node_get_str(const pipe_node *map, const char *key)
{
	pipe_node *n = pipe_node_get(map, key);

	return (n && n->type == PIPE_NODE_STRING) ? n->v.s.ptr : NULL;
}

int pipe_node_map_append(pipe_node *map, const char *key, const pipe_mark *key_mark,
		      pipe_node *value)
{
	pipe_map_entry *e;
	char *k;

	if (map->v.map.n == map->v.map.cap) {
		size_t cap = map->v.map.cap ? map->v.map.cap * 2 : 8;
		pipe_map_entry *p = realloc(map->v.map.entries, cap * sizeof(*p));
		if (!p) {
			pipe_node_free(value);
			return art_error_set(AF_ENOMEM, "out of memory");
		}
		map->v.map.entries = p;
		map->v.map.cap = cap;
	}
	k = strdup(key);
	if (!k) {
		pipe_node_free(value);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	e = &map->v.map.entries[map->v.map.n++];
	e->key = k;
	e->value = value;
	if (key_mark)
		e->key_mark = *key_mark;
	else
		memset(&e->key_mark, 0, sizeof(e->key_mark));
	return 0;
}

int pipe_node_map_set(pipe_node *map, const char *key, const pipe_mark *key_mark,
		      pipe_node *value)
{
	pipe_map_entry *e = pipe_node_entry(map, key);

	if (e) {
		pipe_node_free(e->value);
		e->value = value;
		if (key_mark)
			e->key_mark = *key_mark;
		return 0;
	}
	return pipe_node_map_append(map, key, key_mark, value);
}

bool pipe_node_map_remove(pipe_node *map, const char *key)
{
	pipe_map_entry *e = pipe_node_entry(map, key);
	size_t idx;

	if (!e)
		return false;
	idx = (size_t)(e - map->v.map.entries);
	free(e->key);
	pipe_node_free(e->value);
	memmove(e, e + 1, (map->v.map.n - idx - 1) * sizeof(*e));
	map->v.map.n--;
	return true;
}

static pipe_node *clone_node(const pipe_node *n, unsigned keep_flags)
{
	pipe_node *c;
	size_t i;

	if (!n)
		return NULL;
	if (n->type == PIPE_NODE_STRING)
		c = pipe_node_new_str(n->v.s.ptr, n->v.s.len, &n->mark);
	else
		c = pipe_node_new(n->type, &n->mark);
	if (!c)
		return NULL;
	c->flags = n->flags & keep_flags;
	switch (n->type) {
	case PIPE_NODE_STRING:
		break;
	case PIPE_NODE_SEQ:
		for (i = 0; i < n->v.seq.n; i++) {
			pipe_node *item = clone_node(n->v.seq.items[i], keep_flags);
			if (!item || pipe_node_seq_push(c, item) < 0)
				goto fail;
		}
		break;
	case PIPE_NODE_MAP:
		/* The source has no duplicate keys: append without searching. */
		for (i = 0; i < n->v.map.n; i++) {
			const pipe_map_entry *e = &n->v.map.entries[i];
			pipe_node *v = clone_node(e->value, keep_flags);
			if (!v || pipe_node_map_append(c, e->key, &e->key_mark, v) < 0)
				goto fail;
		}
		break;
	default:
		c->v = n->v;
		break;
	}
	return c;
fail:
	pipe_node_free(c);
	return NULL;
}

pipe_node *pipe_node_clone(const pipe_node *n)
{
	return clone_node(n, ~0u);
}

pipe_node *pipe_node_clone_plain(const pipe_node *n)
{
	return clone_node(n, 0);
}

json_t *pipe_node_to_json(const pipe_node *n)
{
	json_t *j = NULL;
	size_t i;

	switch (n->type) {
	case PIPE_NODE_NULL: return json_null();
	case PIPE_NODE_BOOL: return json_boolean(n->v.b);
	case PIPE_NODE_INT: return json_integer((json_int_t)n->v.i);
	case PIPE_NODE_REAL: return isfinite(n->v.r) ? json_real(n->v.r) : NULL;
	case PIPE_NODE_STRING: return json_stringn(n->v.s.ptr, n->v.s.len);
	case PIPE_NODE_SEQ:
		if (!(j = json_array()))
			return NULL;
		for (i = 0; i < n->v.seq.n; i++) {
			json_t *item = pipe_node_to_json(n->v.seq.items[i]);
			if (!item || json_array_append_new(j, item) < 0)
				goto fail;
		}
		return j;
	case PIPE_NODE_MAP:
		if (!(j = json_object()))
			return NULL;
		for (i = 0; i < n->v.map.n; i++) {
			json_t *v = pipe_node_to_json(n->v.map.entries[i].value);
			if (!v || json_object_set_new(j, n->v.map.entries[i].key, v) < 0)
				goto fail;
		}
		return j;
	}
fail:
	json_decref(j);
	return NULL;
}

typedef struct dump_buf {
	char *text;
	size_t len, cap;
	bool failed; /* sticky: jansson may go on after a failed write */
} dump_buf;

static int dump_append(const char *bytes, size_t size, void *data)
{
	dump_buf *b = data;

	if (b->failed)
		return -1;
	if (size >= b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		char *grown;

		while (size >= cap - b->len) {
			if (cap > SIZE_MAX / 2) {
				b->failed = true;
				return -1;
			}
			cap *= 2;
		}
		if (!(grown = realloc(b->text, cap))) {
			b->failed = true;
			return -1;
		}
		b->text = grown;
		b->cap = cap;
	}
	memcpy(b->text + b->len, bytes, size);
	b->len += size;
	b->text[b->len] = '\0';
	return 0;
}

char *pipe_json__dumps(const json_t *j, size_t flags)
{
	dump_buf b = {NULL, 0, 0, false};

	if (json_dump_callback(j, dump_append, &b, flags) != 0 || b.failed || !b.text) {
		free(b.text);
		return NULL;
	}
	return b.text;
}

/* ---- parser ------------------------------------------------------------ */

typedef struct parse_ctx {
	yaml_parser_t parser;
	const char *file;
	pipe_diags *diags;
	size_t nodes;
	int rc;
} parse_ctx;

static pipe_mark mark_of(const parse_ctx *ctx, yaml_mark_t m)
{
	pipe_mark pm;

	pm.file = ctx->file;
	pm.line = (unsigned)m.line + 1;
	pm.col = (unsigned)m.column + 1;
	return pm;
}

static int fail_at(parse_ctx *ctx, const pipe_mark *m, int rc, const char *rule,
		   const char *hint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail_at(parse_ctx *ctx, const pipe_mark *m, int rc, const char *rule,
		   const char *hint, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pipe_diags_add(ctx->diags, PIPE_SEV_ERROR, m, rule, hint, "%s", msg) < 0)
		rc = AF_ENOMEM;
	if (m && m->line)
		art_error_set(rc, "%s:%u:%u: %s", m->file, m->line, m->col, msg);
	else
		art_error_set(rc, "%s: %s", ctx->file, msg);
	ctx->rc = rc;
	return rc;
}

static int next_event(parse_ctx *ctx, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&ctx->parser, ev)) {
		const yaml_parser_t *p = &ctx->parser;
		pipe_mark m;

		if (p->error == YAML_MEMORY_ERROR)
			return fail_at(ctx, NULL, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
		if (p->error == YAML_READER_ERROR) {
			m.file = ctx->file;
			m.line = 0;
			m.col = 0;
			return fail_at(ctx, &m, AF_ESYNTAX, "file.encoding",
				       "save the file as UTF-8 without control characters",
				       "%s at byte offset %zu", p->problem ? p->problem : "invalid input",
				       p->problem_offset);
		}
		m = mark_of(ctx, p->problem_mark);
		return fail_at(ctx, &m, AF_ESYNTAX, "yaml.syntax",
			       "fix the YAML at this position (indentation, quoting, missing ':')",
			       "%s%s%s", p->problem ? p->problem : "syntax error",
			       p->context ? " " : "", p->context ? p->context : "");
	}
	return 0;
}

static bool all_digits(const char *s, const char *set)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static int type_plain_scalar(parse_ctx *ctx, pipe_node *n, const char *s, const pipe_mark *m)
{
	const char *digits = s + ((s[0] == '-' || s[0] == '+') ? 1 : 0);
	char *end;

	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) {
		n->type = PIPE_NODE_NULL;
		memset(&n->v, 0, sizeof(n->v));
		return 0;
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") ||
	    !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		n->type = PIPE_NODE_BOOL;
		n->v.b = (s[0] == 't' || s[0] == 'T');
		return 0;
	}
	if (all_digits(digits, "0123456789") ||
	    (!strncmp(s, "0x", 2) && all_digits(s + 2, "0123456789abcdefABCDEF")) ||
	    (!strncmp(s, "0o", 2) && all_digits(s + 2, "01234567"))) {
		int base = !strncmp(s, "0x", 2) ? 16 : !strncmp(s, "0o", 2) ? 8 : 10;
		errno = 0;
		n->v.i = strtoll(base == 10 ? s : s + 2, &end, base);
		if (errno == ERANGE)
			return fail_at(ctx, m, AF_ESYNTAX, "yaml.number", "use a smaller number or quote it",
				       "integer '%s' is out of range", s);
		n->type = PIPE_NODE_INT;
		return 0;
	}
	if (!strcmp(digits, ".inf") || !strcmp(digits, ".Inf") || !strcmp(digits, ".INF") ||
	    !strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
		return fail_at(ctx, m, AF_ESYNTAX, "yaml.number", "quote it if a string was meant",
			       "non-finite number '%s' is not allowed", s);
	{
		/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
		const char *p = digits;
		size_t int_digits = 0, frac_digits = 0;
		bool dot = false;

		while (*p >= '0' && *p <= '9') { p++; int_digits++; }
		if (*p == '.') {
			dot = true;
			p++;
			while (*p >= '0' && *p <= '9') { p++; frac_digits++; }
		}
		if ((int_digits || frac_digits) && (dot || *p == 'e' || *p == 'E')) {
			bool ok = true;
			if (*p == 'e' || *p == 'E') {
				p++;
				if (*p == '-' || *p == '+')
					p++;
				if (!(*p >= '0' && *p <= '9'))
					ok = false;
				while (*p >= '0' && *p <= '9')
					p++;
			}
			if (ok && *p == '\0') {
				errno = 0;
				n->v.r = strtod(s, &end);
				if (errno == ERANGE || !isfinite(n->v.r))
					return fail_at(ctx, m, AF_ESYNTAX, "yaml.number",
						       "use a smaller number or quote it",
						       "number '%s' is out of range", s);
				n->type = PIPE_NODE_REAL;
				return 0;
			}
		}
	}
	return 1; /* a string */
}

static int check_anchor(parse_ctx *ctx, const yaml_char_t *anchor, const pipe_mark *m)
{
	if (!anchor)
		return 0;
	return fail_at(ctx, m, AF_ESYNTAX, "yaml.alias",
		       "write the value out in full; use 'extends' to share settings between templates",
		       "anchors and aliases are not allowed (found anchor '&%s')", (const char *)anchor);
}

static pipe_node *parse_node(parse_ctx *ctx, yaml_event_t *ev, unsigned depth);

static pipe_node *parse_scalar(parse_ctx *ctx, yaml_event_t *ev, const pipe_mark *m)
{
	const char *tag = (const char *)ev->data.scalar.tag;
	const char *val = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	pipe_node *n;
	int typed;

	if (check_anchor(ctx, ev->data.scalar.anchor, m) < 0)
		return NULL;
	if (tag && strcmp(tag, "tag:yaml.org,2002:str") != 0) {
		fail_at(ctx, m, AF_ESYNTAX, "yaml.tag", "remove the tag; only lists may be tagged !append",
			"tag '%s' is not allowed on a scalar", tag);
		return NULL;
	}
	if (memchr(val, '\0', len)) {
		fail_at(ctx, m, AF_ESYNTAX, "file.encoding", "remove the NUL character (\\0) from the string",
			"a string contains a NUL character");
		return NULL;
	}
	n = pipe_node_new_str(val, len, m);
	if (!n) {
		fail_at(ctx, m, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
		return NULL;
	}
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag) {
		pipe_node tmp = *n;
		typed = type_plain_scalar(ctx, &tmp, val, m);
		if (typed < 0) {
			pipe_node_free(n);
			return NULL;
		}
		if (typed == 0) {
			free(n->v.s.ptr);
			*n = tmp;
			n->v = tmp.v;
		}
	}
	return n;
}

static pipe_node *parse_sequence(parse_ctx *ctx, yaml_event_t *ev, const pipe_mark *m,
				 unsigned depth)
{
	const char *tag = (const char *)ev->data.sequence_start.tag;
	pipe_node *seq;
	yaml_event_t item;

	if (check_anchor(ctx, ev->data.sequence_start.anchor, m) < 0)
		return NULL;
	if (tag && strcmp(tag, "!append") != 0) {
		fail_at(ctx, m, AF_ESYNTAX, "yaml.tag", "the only tag allowed is !append, on a list",
			"tag '%s' is not allowed", tag);
		return NULL;
	}
	seq = pipe_node_new(PIPE_NODE_SEQ, m);
	if (!seq) {
		fail_at(ctx, m, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
		return NULL;
	}
	if (tag)
		seq->flags |= PIPE_NODE_APPEND;
	for (;;) {
		pipe_node *child;

		if (next_event(ctx, &item) < 0)
			goto fail;
		if (item.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&item);
			return seq;
		}
		child = parse_node(ctx, &item, depth + 1);
		yaml_event_delete(&item);
		if (!child)
			goto fail;
		if (pipe_node_seq_push(seq, child) < 0) {
			fail_at(ctx, m, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
			goto fail;
		}
	}
fail:
	pipe_node_free(seq);
	return NULL;
}

/* Open-addressing set of entry indices, so duplicate-key detection stays
 * linear: a 256 KiB file can hold a map with tens of thousands of keys. */
typedef struct key_index {
	size_t *slots; /* entry index + 1; 0 = empty */
	size_t cap;    /* power of two */
} key_index;

static size_t key_hash(const char *k)
{
	size_t h = 1469598103934665603ull;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

/* Finds key; if absent and insert_idx is given, records it. Returns the
 * existing entry index or (size_t)-1. Grows the table at half load. */
static int key_index_lookup(key_index *ix, const pipe_node *map, const char *key,
			    size_t insert_idx, size_t *found)
{
	size_t i, mask;

	*found = (size_t)-1;
	if (ix->cap < 2 * (map->v.map.n + 1)) {
		size_t cap = ix->cap ? ix->cap * 2 : 64, j;
		size_t *slots;

		while (cap < 2 * (map->v.map.n + 1))
			cap *= 2;
		slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return art_error_set(AF_ENOMEM, "out of memory");
		for (j = 0; j < map->v.map.n; j++) {
			i = key_hash(map->v.map.entries[j].key) & (cap - 1);
			while (slots[i])
				i = (i + 1) & (cap - 1);
			slots[i] = j + 1;
		}
		free(ix->slots);
		ix->slots = slots;
		ix->cap = cap;
	}
	mask = ix->cap - 1;
	for (i = key_hash(key) & mask; ix->slots[i]; i = (i + 1) & mask) {
		if (strcmp(map->v.map.entries[ix->slots[i] - 1].key, key) == 0) {
			*found = ix->slots[i] - 1;
			return 0;
		}
	}
	ix->slots[i] = insert_idx + 1;
	return 0;
}

static pipe_node *parse_mapping(parse_ctx *ctx, yaml_event_t *ev, const pipe_mark *m,
				unsigned depth)
{
	pipe_node *map;
	yaml_event_t kev, vev;
	key_index ix = {NULL, 0};

	if (check_anchor(ctx, ev->data.mapping_start.anchor, m) < 0)
		return NULL;
	if (ev->data.mapping_start.tag) {
		fail_at(ctx, m, AF_ESYNTAX, "yaml.tag", "remove the tag; only lists may be tagged !append",
			"tag '%s' is not allowed on a map", (const char *)ev->data.mapping_start.tag);
		return NULL;
	}
	map = pipe_node_new(PIPE_NODE_MAP, m);
	if (!map) {
		fail_at(ctx, m, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
		return NULL;
	}
	for (;;) {
		pipe_mark km;
		pipe_map_entry *dup;
		pipe_node *value;
		char *key;

		if (next_event(ctx, &kev) < 0)
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			free(ix.slots);
			return map;
		}
		km = mark_of(ctx, kev.start_mark);
		if (kev.type == YAML_ALIAS_EVENT) {
			yaml_event_delete(&kev);
			fail_at(ctx, &km, AF_ESYNTAX, "yaml.alias", "write the key out in full",
				"aliases are not allowed");
			goto fail;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			yaml_event_delete(&kev);
			fail_at(ctx, &km, AF_ESYNTAX, "yaml.key", "keys must be plain strings",
				"a map key must be a string, not a list or map");
			goto fail;
		}
		if (kev.data.scalar.anchor || kev.data.scalar.tag ||
		    memchr(kev.data.scalar.value, '\0', kev.data.scalar.length)) {
			yaml_event_delete(&kev);
			fail_at(ctx, &km, AF_ESYNTAX, "yaml.key", "keys must be plain strings",
				"a map key may carry no anchor, tag or NUL character");
			goto fail;
		}
		if (kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    strcmp((const char *)kev.data.scalar.value, "<<") == 0) {
			yaml_event_delete(&kev);
			fail_at(ctx, &km, AF_ESYNTAX, "yaml.alias",
				"use 'extends' to share settings between templates",
				"YAML merge keys (<<) are not allowed");
			goto fail;
		}
		key = strdup((const char *)kev.data.scalar.value);
		yaml_event_delete(&kev);
		if (!key) {
			fail_at(ctx, &km, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
			goto fail;
		}
		{
			size_t found;
			if (key_index_lookup(&ix, map, key, map->v.map.n, &found) < 0) {
				free(key);
				fail_at(ctx, &km, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
				goto fail;
			}
			dup = found == (size_t)-1 ? NULL : &map->v.map.entries[found];
		}
		if (dup) {
			char hint[160];
			snprintf(hint, sizeof(hint), "remove one of the two; the first is at line %u",
				 dup->key_mark.line);
			fail_at(ctx, &km, AF_ESYNTAX, "yaml.duplicate-key", hint,
				"duplicate key '%s' (first defined at %u:%u)", key, dup->key_mark.line,
				dup->key_mark.col);
			free(key);
			goto fail;
		}
		if (next_event(ctx, &vev) < 0) {
			free(key);
			goto fail;
		}
		value = parse_node(ctx, &vev, depth + 1);
		yaml_event_delete(&vev);
		if (!value) {
			free(key);
			goto fail;
		}
		if (pipe_node_map_append(map, key, &km, value) < 0) {
			free(key);
			fail_at(ctx, &km, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
			goto fail;
		}
		free(key);
	}
fail:
	free(ix.slots);
	pipe_node_free(map);
	return NULL;
}

static pipe_node *parse_node(parse_ctx *ctx, yaml_event_t *ev, unsigned depth)
{
	pipe_mark m = mark_of(ctx, ev->start_mark);

	if (depth > PIPE_YAML_MAX_DEPTH) {
		fail_at(ctx, &m, AF_ESYNTAX, "yaml.depth", "flatten the structure",
			"nesting deeper than %d levels", PIPE_YAML_MAX_DEPTH);
		return NULL;
	}
	if (++ctx->nodes > PIPE_YAML_MAX_NODES) {
		fail_at(ctx, &m, AF_ETOOBIG, "file.too-large", "split the template or use 'extends'",
			"more than %d YAML nodes", PIPE_YAML_MAX_NODES);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return parse_scalar(ctx, ev, &m);
	case YAML_SEQUENCE_START_EVENT:
		return parse_sequence(ctx, ev, &m, depth);
	case YAML_MAPPING_START_EVENT:
		return parse_mapping(ctx, ev, &m, depth);
	case YAML_ALIAS_EVENT:
		fail_at(ctx, &m, AF_ESYNTAX, "yaml.alias",
			"write the value out in full; use 'extends' to share settings between templates",
			"aliases are not allowed (found '*%s')", (const char *)ev->data.alias.anchor);
		return NULL;
	default:
		fail_at(ctx, &m, AF_ESYNTAX, "yaml.syntax", NULL, "unexpected YAML event");
		return NULL;
	}
}

/* Returns 0 if valid UTF-8 (art_utf8_decode, the one decoder); otherwise the
 * 1-based line/col of the first bad byte. */
static int find_bad_utf8(const unsigned char *s, size_t len, unsigned *line, unsigned *col)
{
	size_t i = 0, n;
	unsigned ln = 1, cl = 1;

	while (i < len) {
		if (s[i] < 0x80) {
			if (s[i] == '\n') {
				ln++;
				cl = 1;
			} else {
				cl++;
			}
			i++;
			continue;
		}
		if ((n = art_utf8_decode(s + i, len - i, NULL)) == 0) {
			*line = ln;
			*col = cl;
			return -1;
		}
		i += n;
		cl++;
	}
	return 0;
}

int pipe_yaml_parse(pipe_node **out, const char *data, size_t len, const char *file,
		    pipe_diags *diags)
{
	parse_ctx ctx;
	yaml_event_t ev;
	pipe_node *root = NULL;
	pipe_mark m;
	unsigned line, col;
	int docs = 0;

	*out = NULL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.file = file;
	ctx.diags = diags;
	m.file = file;
	m.line = 0;
	m.col = 0;
	if (len > PIPE_YAML_MAX_BYTES)
		return fail_at(&ctx, &m, AF_ETOOBIG, "file.too-large", "split it or use 'extends'",
			       "file is %zu bytes; the limit is %u", len, PIPE_YAML_MAX_BYTES);
	if (find_bad_utf8((const unsigned char *)data, len, &line, &col) < 0) {
		m.line = line;
		m.col = col;
		return fail_at(&ctx, &m, AF_ESYNTAX, "file.encoding", "save the file as UTF-8",
			       "invalid UTF-8 byte sequence");
	}
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		m.line = 1;
		m.col = 1;
		return fail_at(&ctx, &m, AF_ESYNTAX, "file.encoding",
			       "save the file as UTF-8 without a byte order mark",
			       "the file starts with a UTF-8 byte order mark (BOM)");
	}
	if (!yaml_parser_initialize(&ctx.parser))
		return fail_at(&ctx, NULL, AF_ENOMEM, "yaml.syntax", NULL, "out of memory");
	yaml_parser_set_input_string(&ctx.parser, (const unsigned char *)data, len);
	yaml_parser_set_encoding(&ctx.parser, YAML_UTF8_ENCODING);
	for (;;) {
		if (next_event(&ctx, &ev) < 0)
			goto fail;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			m = mark_of(&ctx, ev.start_mark);
			yaml_event_delete(&ev);
			if (++docs > 1) {
				fail_at(&ctx, &m, AF_ESYNTAX, "yaml.multi-document",
					"put one template per file", "a second YAML document ('---')");
				goto fail;
			}
			continue;
		}
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		root = parse_node(&ctx, &ev, 1);
		yaml_event_delete(&ev);
		if (!root)
			goto fail;
	}
	yaml_parser_delete(&ctx.parser);
	if (!root) {
		m.file = file;
		m.line = 1;
		m.col = 1;
		root = pipe_node_new(PIPE_NODE_NULL, &m);
		if (!root)
			return art_error_set(AF_ENOMEM, "out of memory");
	}
	*out = root;
	return 0;
fail:
	yaml_parser_delete(&ctx.parser);
	pipe_node_free(root);
	return ctx.rc ? ctx.rc : AF_ESYNTAX;
}
