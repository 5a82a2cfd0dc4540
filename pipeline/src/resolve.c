/*
 * resolve.c - the template catalog, `extends` chains, merging, the checks
 * that need the merged tree, and the canonical resolved form.
 *
 * Merging never touches a catalog template: the result is built from fresh
 * copies (nodes keep the marks of the file that contributed them, so a
 * finding on a merged value still names the right file:line:col). Maps are
 * merged through a sorted index of the target's keys, and new nodes are
 * appended without the linear key lookup of pipe_node_map_set, so merging is
 * O(n log n) even for hostile maps with tens of thousands of keys.
 *
 * The canonical form is jansson's JSON_COMPACT | JSON_SORT_KEYS without
 * JSON_ENSURE_ASCII (UTF-8 stays UTF-8). Nothing of the source formatting
 * survives parsing (comments, key order, quoting style, flow or block
 * style), and `apiVersion` is normalised and `model.temperature` made a
 * float, so only meaning reaches the digest. Floats are printed with the
 * fewest significant digits that read back exactly for every float of the
 * tree (JSON_REAL_PRECISION), so 0.2 prints as 0.2, not 0.20000000000000001.
 */
#include "pipe/resolve.h"

#include "art/error.h"
#include "art/util.h"
#include "pipe/semver.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pipe_catalog {
	pipe_template **items; /* owned, sorted by name */
	size_t n, cap;
};

/* Reporting: counts errors, remembers the first out-of-memory. */
typedef struct rctx {
	pipe_diags *diags;
	size_t errors;
	int rc;
} rctx;

static void report(rctx *x, const pipe_mark *mark, const char *rule, const char *hint,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(rctx *x, const pipe_mark *mark, const char *rule, const char *hint,
		   const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int n;

	x->errors++;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		x->rc = art_error_set(AF_ENOMEM, "out of memory reporting a finding");
		return;
	}
	if (pipe_diags_add(x->diags, PIPE_SEV_ERROR, mark, rule, hint, "%s", msg) < 0)
		x->rc = AF_ENOMEM;
	free(msg);
}

static void oom(rctx *x)
{
	if (x->rc == 0)
		x->rc = art_error_set(AF_ENOMEM, "out of memory resolving a template");
}

/* ---- catalog ------------------------------------------------------------- */

int pipe_catalog_new(pipe_catalog **out)
{
	if (!out)
		return art_error_set(AF_EINVAL, "pipe_catalog_new: no output");
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
}

void pipe_catalog_free(pipe_catalog *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		pipe_template_free(c->items[i]);
	free(c->items);
	free(c);
}

/* Index of name, or of where it would go (*found says which). */
static size_t catalog_pos(const pipe_catalog *c, const char *name, bool *found)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->items[mid]->name, name);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static pipe_mark name_mark(const pipe_template *t)
{
	const pipe_node *n = pipe_node_get(t->root, "name");
	pipe_mark m = {t->path, 0, 0};

	return n ? n->mark : m;
}

int pipe_catalog_add(pipe_catalog *c, pipe_template *t, pipe_diags *diags)
{
	size_t pos;
	bool found;
	int rc = 0;

	if (!c || !t || !t->name || !diags) {
		rc = art_error_set(AF_EINVAL, "pipe_catalog_add: missing argument");
		goto cleanup;
	}
	pos = catalog_pos(c, t->name, &found);
	if (found) {
		const pipe_template *first = c->items[pos];
		pipe_mark here = name_mark(t), there = name_mark(first);

		rc = pipe_diags_add(diags, PIPE_SEV_ERROR, &here, "template.duplicate-name",
				    "rename one of them: template names are unique in a repository",
				    "template name '%s' is used by both %s (line %u) and %s (line %u)",
				    t->name, first->path, there.line, t->path, here.line);
		if (rc == 0)
			rc = art_error_set(AF_EEXISTS, "%s: template '%s' already defined in %s",
					   t->path, t->name, first->path);
		goto cleanup;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		pipe_template **p = realloc(c->items, cap * sizeof(*p));

		if (!p) {
			rc = art_error_set(AF_ENOMEM, "out of memory adding a template");
			goto cleanup;
		}
		c->items = p;
		c->cap = cap;
	}
	memmove(c->items + pos + 1, c->items + pos, (c->n - pos) * sizeof(*c->items));
	c->items[pos] = t;
	c->n++;
	t = NULL;
cleanup:
	pipe_template_free(t);
	return rc;
}

size_t pipe_catalog_count(const pipe_catalog *c)
{
	return c ? c->n : 0;
}

const pipe_template *pipe_catalog_at(const pipe_catalog *c, size_t i)
{
	return c && i < c->n ? c->items[i] : NULL;
}

const pipe_template *pipe_catalog_find(const pipe_catalog *c, const char *name)
{
	bool found;
	size_t pos;

	if (!c || !name)
		return NULL;
	pos = catalog_pos(c, name, &found);
	return found ? c->items[pos] : NULL;
}

int pipe_catalog_dependants(const char ***out, size_t *out_len, const pipe_catalog *c,
			    const char *name)
{
	const char **names = NULL;
	size_t i, n = 0;

	if (!out || !out_len || !c || !name)
		return art_error_set(AF_EINVAL, "pipe_catalog_dependants: missing argument");
	*out = NULL;
	*out_len = 0;
	for (i = 0; i < c->n; i++) {
		const pipe_template *t = c->items[i];
		size_t depth;

		for (depth = 0; t && depth < PIPE_RESOLVE_MAX_CHAIN; depth++) {
			if (strcmp(t->name, name) == 0)
				break;
			t = t->extends_name ? pipe_catalog_find(c, t->extends_name) : NULL;
		}
		if (!t || depth == PIPE_RESOLVE_MAX_CHAIN)
			continue;
		if (!names && !(names = calloc(c->n, sizeof(*names))))
			return art_error_set(AF_ENOMEM, "out of memory listing dependants");
		names[n++] = c->items[i]->name;
	}
	*out = names;
	*out_len = n;
	return 0;
}

/* ---- the chain ----------------------------------------------------------- */

static const char *const *catalog_names(const pipe_catalog *c, const char **buf)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		buf[i] = c->items[i]->name;
	return buf;
}

static void report_missing(rctx *x, const pipe_catalog *c, const pipe_template *t)
{
	const char **names = calloc(c->n ? c->n : 1, sizeof(*names));
	const char *guess = NULL;
	char hint[512];

	if (!names) {
		oom(x);
		return;
	}
	guess = pipe_template__suggest(t->extends_name, catalog_names(c, names), c->n);
	if (guess)
		snprintf(hint, sizeof(hint), "did you mean '%s'? (if '%s' exists but has errors, fix those first)",
			 guess, t->extends_name);
	else
		snprintf(hint, sizeof(hint),
			 "add a template named '%s', fix the name, or fix the errors of its file if it did not parse",
			 t->extends_name);
	report(x, &t->extends_mark, "extends.missing", hint,
	       "'%s' extends '%s', but no template has that name", t->name, t->extends_name);
	free(names);
}

/* "a -> b -> ... -> last" over chain[from..n) plus last. */
static int chain_text(art_buf *b, const pipe_template *const *chain, size_t from, size_t n,
		      const char *last)
{
	size_t i;
	int rc = 0;

	for (i = from; rc == 0 && i < n; i++)
		rc = art_buf_printf(b, "%s -> ", chain[i]->name);
	if (rc == 0)
		rc = art_buf_puts(b, last);
	return rc;
}

/*
 * Fill chain[0..*n) from t up to its root ancestor. Reports the first chain
 * error (at the extends value of the template that introduced it) and stops.
 */
static void walk_chain(rctx *x, const pipe_catalog *c, const pipe_template *t,
		       const pipe_template **chain, size_t *n)
{
	const pipe_template *cur = t;
	art_buf b = ART_BUF_INIT;

	chain[0] = t;
	*n = 1;
	while (cur->extends_name) {
		const pipe_template *parent = pipe_catalog_find(c, cur->extends_name);
		bool ok = false;
		size_t i;

		if (!parent) {
			report_missing(x, c, cur);
			goto cleanup;
		}
		if (cur->extends_pin) {
			if (pipe_semver_satisfies(&ok, parent->version, cur->extends_pin) < 0)
				ok = false;
			if (!ok) {
				char hint[512];

				snprintf(hint, sizeof(hint),
					 "'%s' is at version %s (%s): change the pin (e.g. extends: %s@^%s) or use a matching version of '%s'",
					 parent->name, parent->version, parent->path, parent->name,
					 parent->version, parent->name);
				report(x, &cur->extends_mark, "extends.version", hint,
				       "'%s' extends '%s@%s', but '%s' is version %s", cur->name,
				       cur->extends_name, cur->extends_pin, parent->name,
				       parent->version);
				goto cleanup;
			}
		}
		for (i = 0; i < *n; i++)
			if (chain[i] == parent)
				break;
		if (i < *n) {
			if (chain_text(&b, chain, i, *n, parent->name) < 0) {
				oom(x);
				goto cleanup;
			}
			report(x, &cur->extends_mark, "extends.cycle",
			       "break the loop: one template of the loop must extend none of the others",
			       "inheritance loop: %s", b.data);
			goto cleanup;
		}
		if (*n == PIPE_RESOLVE_MAX_CHAIN) {
			if (chain_text(&b, chain, 0, *n, parent->name) < 0) {
				oom(x);
				goto cleanup;
			}
			report(x, &cur->extends_mark, "extends.depth",
			       "flatten the hierarchy: a chain has at most 8 templates (the template and 7 ancestors)",
			       "inheritance chain of '%s' is longer than %d templates: %s%s", t->name,
			       PIPE_RESOLVE_MAX_CHAIN, b.data, parent->extends_name ? " -> ..." : "");
			goto cleanup;
		}
		chain[(*n)++] = parent;
		cur = parent;
	}
cleanup:
	art_buf_free(&b);
}

/* ---- merging ------------------------------------------------------------- */

/* Append an entry without looking for the key (callers know it is new).
 * Takes ownership of value, also on failure. */
typedef struct key_index {
	const char *key;
	size_t at;
} key_index;

static int key_index_cmp(const void *a, const void *b)
{
	return strcmp(((const key_index *)a)->key, ((const key_index *)b)->key);
}

static int merge_patch(pipe_node **target, const pipe_node *patch);

static bool skipped(const char *key, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (strcmp(key, *skip) == 0)
			return true;
	return false;
}

/* RFC 7386 on two maps: target is ours to modify; keys in skip are ignored. */
static int merge_map(pipe_node *target, const pipe_node *patch, const char *const *skip)
{
	key_index *idx = NULL;
	size_t n0 = target->v.map.n, i, j;
	bool deleted = false;
	int rc = 0;

	if (n0) {
		if (!(idx = calloc(n0, sizeof(*idx))))
			return art_error_set(AF_ENOMEM, "out of memory merging templates");
		for (i = 0; i < n0; i++) {
			idx[i].key = target->v.map.entries[i].key;
			idx[i].at = i;
		}
		qsort(idx, n0, sizeof(*idx), key_index_cmp);
	}
	for (i = 0; i < patch->v.map.n && rc == 0; i++) {
		const pipe_map_entry *e = &patch->v.map.entries[i];
		key_index probe = {e->key, 0}, *hit = NULL;

		if (skipped(e->key, skip))
			continue;
		if (n0)
			hit = bsearch(&probe, idx, n0, sizeof(*idx), key_index_cmp);
		if (hit) {
			pipe_map_entry *t = &target->v.map.entries[hit->at];

			if (e->value->type == PIPE_NODE_NULL) {
				pipe_node_free(t->value);
				t->value = NULL; /* compacted below */
				deleted = true;
				continue;
			}
			t->key_mark = e->key_mark;
			rc = merge_patch(&t->value, e->value);
		} else if (e->value->type != PIPE_NODE_NULL) {
			pipe_node *v = NULL;

			if ((rc = merge_patch(&v, e->value)) == 0)
				rc = pipe_node_map_append(target, e->key, &e->key_mark, v);
			else
				pipe_node_free(v);
		}
	}
	if (deleted) {
		for (i = j = 0; i < target->v.map.n; i++) {
			if (!target->v.map.entries[i].value) {
				free(target->v.map.entries[i].key);
				continue;
			}
			target->v.map.entries[j++] = target->v.map.entries[i];
		}
		target->v.map.n = j;
	}
	free(idx);
	return rc;
}

/* Merge patch onto *target (which may be NULL: then it is created; nulls
 * inside patch maps are dropped, as RFC 7386 does). */
static int merge_patch(pipe_node **target, const pipe_node *patch)
{
	pipe_node *t = *target;
	size_t i;

	if (patch->type == PIPE_NODE_MAP) {
		if (!t || t->type != PIPE_NODE_MAP) {
			pipe_node_free(t);
			*target = t = pipe_node_new(PIPE_NODE_MAP, &patch->mark);
			if (!t)
				return art_error_set(AF_ENOMEM, "out of memory merging templates");
		}
		return merge_map(t, patch, NULL);
	}
	if (patch->type == PIPE_NODE_SEQ && (patch->flags & PIPE_NODE_APPEND) && t &&
	    t->type == PIPE_NODE_SEQ) {
		for (i = 0; i < patch->v.seq.n; i++) {
			pipe_node *item = pipe_node_clone_plain(patch->v.seq.items[i]);

			if (!item || pipe_node_seq_push(t, item) < 0)
				return art_error_set(AF_ENOMEM, "out of memory merging templates");
		}
		return 0;
	}
	if (!(t = pipe_node_clone_plain(patch)))
		return art_error_set(AF_ENOMEM, "out of memory merging templates");
	pipe_node_free(*target);
	*target = t;
	return 0;
}

static const char *const not_inherited[] = {"name", "version", "abstract", "extends", NULL};

/* Set key to a copy of the child's value, keeping the child's marks. */
static int set_from(pipe_node *root, const pipe_node *child_root, const char *key)
{
	const pipe_map_entry *e = pipe_node_entry(child_root, key);
	pipe_node *v;

	if (!e)
		return 0;
	pipe_node_map_remove(root, key);
	if (!(v = pipe_node_clone_plain(e->value)))
		return art_error_set(AF_ENOMEM, "out of memory merging templates");
	return pipe_node_map_append(root, key, &e->key_mark, v);
}

static int merge_chain(pipe_node **out, const pipe_template *const *chain, size_t n)
{
	const pipe_template *t = chain[0];
	pipe_node *root, *model, *temp, *api;
	pipe_mark top = t->root->mark;
	size_t i;
	int rc;

	*out = NULL;
	if (!(root = pipe_node_new(PIPE_NODE_MAP, &top)))
		return art_error_set(AF_ENOMEM, "out of memory merging templates");
	for (i = n; i-- > 0;)
		if ((rc = merge_map(root, chain[i]->root, not_inherited)) < 0)
			goto fail;
	if ((rc = set_from(root, t->root, "name")) < 0 ||
	    (rc = set_from(root, t->root, "version")) < 0)
		goto fail;
	/* apiVersion has one possible value: say it always, whatever was written. */
	pipe_node_map_remove(root, "apiVersion");
	api = pipe_node_new_str(PIPE_TEMPLATE_API_VERSION, strlen(PIPE_TEMPLATE_API_VERSION), &top);
	if (!api) {
		rc = art_error_set(AF_ENOMEM, "out of memory merging templates");
		goto fail;
	}
	if ((rc = pipe_node_map_append(root, "apiVersion", &top, api)) < 0)
		goto fail;
	/* temperature: 1 and 1.0 mean the same; keep one spelling. */
	model = pipe_node_get(root, "model");
	temp = pipe_node_get(model, "temperature");
	if (temp && temp->type == PIPE_NODE_INT) {
		double d = (double)temp->v.i;

		temp->type = PIPE_NODE_REAL;
		temp->v.r = d;
	}
	*out = root;
	return 0;
fail:
	pipe_node_free(root);
	return rc;
}

/* ---- checks on the merged tree ------------------------------------------- */

/* The string under key of each map item of list (NULL where absent). */
static const char **item_keys(const pipe_node *list, const char *key, pipe_mark **marks)
{
	size_t n = list ? list->v.seq.n : 0, i;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));

	*marks = calloc(n ? n : 1, sizeof(**marks));
	if (!keys || !*marks) {
		free(keys);
		free(*marks);
		*marks = NULL;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const pipe_node *item = list->v.seq.items[i];
		const pipe_node *v = item->type == PIPE_NODE_MAP ? pipe_node_get(item, key) : item;

		if (v && v->type == PIPE_NODE_STRING) {
			keys[i] = v->v.s.ptr;
			(*marks)[i] = v->mark;
		}
	}
	return keys;
}

static void check_dups(rctx *x, const pipe_node *root, const char *field, const char *key,
		       const char *what)
{
	const pipe_node *list = pipe_node_get(root, field);
	pipe_mark *marks = NULL;
	const char **keys;
	size_t *first_of = NULL, i, n;
	long d;

	if (!list || list->type != PIPE_NODE_SEQ || list->v.seq.n < 2)
		return;
	n = list->v.seq.n;
	keys = item_keys(list, key, &marks);
	first_of = calloc(n, sizeof(*first_of));
	if (!keys || !first_of) {
		oom(x);
		goto cleanup;
	}
	if ((d = pipe_template__dups(keys, n, first_of)) < 0) {
		oom(x);
		goto cleanup;
	}
	for (i = 0; d > 0 && i < n; i++) {
		const pipe_mark *f;
		char hint[256];

		if (first_of[i] == SIZE_MAX)
			continue;
		f = &marks[first_of[i]];
		snprintf(hint, sizeof(hint),
			 "the %s list is appended to its parent's (!append): drop this item, or "
			 "replace the whole list (remove !append)", field);
		report(x, &marks[i], "template.duplicate-item", hint,
		       "duplicate %s '%s' after inheritance (first at %s:%u:%u)", what, keys[i],
		       f->file ? f->file : "?", f->line, f->col);
	}
cleanup:
	free(keys);
	free(marks);
	free(first_of);
}

static bool nonempty_str(const pipe_node *n)
{
	return n && n->type == PIPE_NODE_STRING && n->v.s.len > 0;
}

/* What a placeholder may name in one resolved template. */
typedef struct scope {
	const pipe_node *root;
	const pipe_node *props;  /* inputs.properties (map) or NULL */
	const pipe_node *steps;  /* steps list or NULL */
	size_t earlier;          /* steps[0..earlier) are visible; 0 in instructions */
	bool in_args;
} scope;

static bool name_eq(const char *a, size_t alen, const char *lit)
{
	return strlen(lit) == alen && memcmp(a, lit, alen) == 0;
}

static bool is_input(const scope *s, const char *p, size_t len)
{
	size_t i;

	if (!s->props)
		return false;
	for (i = 0; i < s->props->v.map.n; i++)
		if (name_eq(p, len, s->props->v.map.entries[i].key))
			return true;
	return false;
}

static bool is_earlier_step(const scope *s, const char *p, size_t len)
{
	size_t i;

	for (i = 0; s->steps && i < s->earlier && i < s->steps->v.seq.n; i++) {
		const char *id = pipe_node_get_str(s->steps->v.seq.items[i], "id");

		if (id && name_eq(p, len, id))
			return true;
	}
	return false;
}

static bool placeholder_known(const scope *s, const char *p, size_t len)
{
	const char *dot = memchr(p, '.', len);
	size_t head = dot ? (size_t)(dot - p) : len;

	if (!dot) {
		if (name_eq(p, len, "name"))
			return true;
		if (name_eq(p, len, "role") || name_eq(p, len, "goal")) {
			char key[5];

			memcpy(key, p, 4);
			key[4] = '\0';
			return nonempty_str(pipe_node_get(s->root, key));
		}
		return is_input(s, p, len);
	}
	if (name_eq(p, head, "inputs")) {
		const char *rest = dot + 1;
		size_t rlen = len - head - 1;

		return !memchr(rest, '.', rlen) && is_input(s, rest, rlen);
	}
	if (name_eq(p, head, "steps") && s->in_args) {
		const char *rest = dot + 1;
		const char *dot2 = memchr(rest, '.', len - head - 1);
		size_t idlen = dot2 ? (size_t)(dot2 - rest) : len - head - 1;

		if (dot2 && memchr(dot2 + 1, '.', (size_t)(p + len - dot2 - 1)))
			return false;
		return is_earlier_step(s, rest, idlen);
	}
	return false;
}

/* Could this key be written as a placeholder name segment? */
static bool placeholder_segment(const char *k)
{
	size_t i;

	if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_'))
		return false;
	for (i = 1; k[i]; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '-') || i >= 40)
			return false;
	return true;
}

/* "name, role, goal, inputs.a, ..." for a hint; cap must exceed 128. */
static void valid_names(char *out, size_t cap, const scope *s)
{
	size_t o = 0, i;

	o += (size_t)snprintf(out, cap, "name");
	if (nonempty_str(pipe_node_get(s->root, "role")))
		o += (size_t)snprintf(out + o, cap - o, ", role");
	if (nonempty_str(pipe_node_get(s->root, "goal")))
		o += (size_t)snprintf(out + o, cap - o, ", goal");
	/* Each piece is under 64 bytes, so o stays below cap. */
	for (i = 0; s->props && i < s->props->v.map.n && o < cap - 64; i++)
		if (placeholder_segment(s->props->v.map.entries[i].key))
			o += (size_t)snprintf(out + o, cap - o, ", inputs.%s",
					      s->props->v.map.entries[i].key);
	for (i = 0; s->in_args && s->steps && i < s->earlier && o < cap - 64; i++) {
		const char *id = pipe_node_get_str(s->steps->v.seq.items[i], "id");

		if (id && placeholder_segment(id))
			o += (size_t)snprintf(out + o, cap - o, ", steps.%s", id);
	}
	if (o >= cap - 64)
		snprintf(out + o, cap - o, ", ...");
}

static void check_string_placeholders(rctx *x, const scope *s, const pipe_node *str,
				      const char *where, const char *tname)
{
	pipe_placeholder ph;
	size_t pos = 0;
	int r;

	while ((r = pipe_placeholder_next(str->v.s.ptr, str->v.s.len, &pos, &ph)) != 0) {
		const char *p = str->v.s.ptr + ph.name_off;
		char hint[768], names[512];

		if (r < 0 || placeholder_known(s, p, ph.name_len))
			continue; /* malformed ones were reported when the file was parsed */
		valid_names(names, sizeof(names), s);
		if (!s->in_args && ph.name_len > 6 && memcmp(p, "steps.", 6) == 0)
			snprintf(hint, sizeof(hint),
				 "steps.* can only be used in step args; in %s use one of: %s", where,
				 names);
		else if (s->in_args && ph.name_len > 6 && memcmp(p, "steps.", 6) == 0)
			snprintf(hint, sizeof(hint),
				 "steps.ID and steps.ID.FIELD must name an earlier step; use one of: %s",
				 names);
		else
			snprintf(hint, sizeof(hint),
				 "use one of: %s (a bare name is an input property; declare it under inputs.properties)",
				 names);
		report(x, &str->mark, "template.placeholder", hint,
		       "placeholder '{{ %.*s }}' in %s names nothing in '%s'", (int)ph.name_len, p,
		       where, tname);
	}
}

static void check_args_placeholders(rctx *x, const scope *s, const pipe_node *n,
				    const char *where, const char *tname)
{
	size_t i;

	switch (n->type) {
	case PIPE_NODE_STRING:
		check_string_placeholders(x, s, n, where, tname);
		break;
	case PIPE_NODE_SEQ:
		for (i = 0; i < n->v.seq.n; i++)
			check_args_placeholders(x, s, n->v.seq.items[i], where, tname);
		break;
	case PIPE_NODE_MAP:
		for (i = 0; i < n->v.map.n; i++)
			check_args_placeholders(x, s, n->v.map.entries[i].value, where, tname);
		break;
	default:
		break;
	}
}

static void check_concrete(rctx *x, const pipe_node *root, const pipe_template *t)
{
	const pipe_node *tools = pipe_node_get(root, "tools");
	const pipe_node *steps = pipe_node_get(root, "steps");
	const pipe_node *instr = pipe_node_get(root, "instructions");
	const pipe_node *inputs = pipe_node_get(root, "inputs");
	const pipe_node *model = pipe_node_get(root, "model");
	scope s;
	size_t i, j;
	bool has_steps = steps && steps->type == PIPE_NODE_SEQ && steps->v.seq.n > 0;
	bool has_llm = nonempty_str(instr) && nonempty_str(pipe_node_get(model, "name"));
	bool has_role = nonempty_str(pipe_node_get(root, "role"));

	memset(&s, 0, sizeof(s));
	s.root = root;
	s.props = pipe_node_get(inputs, "properties");
	if (s.props && s.props->type != PIPE_NODE_MAP)
		s.props = NULL;
	s.steps = steps && steps->type == PIPE_NODE_SEQ ? steps : NULL;
	if (instr && instr->type == PIPE_NODE_STRING)
		check_string_placeholders(x, &s, instr, "instructions", t->name);

	for (i = 0; s.steps && i < s.steps->v.seq.n && x->rc == 0; i++) {
		const pipe_node *st = s.steps->v.seq.items[i];
		const pipe_node *tool = pipe_node_get(st, "tool");
		const pipe_node *args = pipe_node_get(st, "args");
		const char *id = pipe_node_get_str(st, "id");
		char where[128];
		bool declared = false;

		snprintf(where, sizeof(where), "the args of step '%.64s'", id ? id : "?");
		if (tool && tool->type == PIPE_NODE_STRING) {
			for (j = 0; tools && tools->type == PIPE_NODE_SEQ && j < tools->v.seq.n; j++) {
				const char *tn = pipe_node_get_str(tools->v.seq.items[j], "name");

				if (tn && strcmp(tn, tool->v.s.ptr) == 0) {
					declared = true;
					break;
				}
			}
			if (!declared) {
				char hint[256];

				snprintf(hint, sizeof(hint),
					 "declare it under tools (- name: %.64s ...) here or in a parent, or use a declared tool",
					 tool->v.s.ptr);
				report(x, &tool->mark, "template.step-tool", hint,
				       "step '%s' uses tool '%s', which '%s' does not declare",
				       id ? id : "?", tool->v.s.ptr, t->name);
			}
		}
		s.in_args = true;
		s.earlier = i;
		if (args)
			check_args_placeholders(x, &s, args, where, t->name);
		s.in_args = false;
	}

	if (!has_role || !(has_steps || has_llm)) {
		pipe_mark m = name_mark(t);
		const char *work = "";

		if (!(has_steps || has_llm))
			work = nonempty_str(instr) ? "no steps and no model.name"
			       : nonempty_str(pipe_node_get(model, "name")) ? "no steps and no instructions"
			       : "no steps and no instructions/model.name";
		report(x, &m, "template.incomplete",
		       "add role, and either steps or instructions + model.name (here or in a parent); "
		       "or mark it abstract: true if it is only a base",
		       "concrete template '%s' is incomplete: %s%s%s", t->name,
		       has_role ? "" : "no role", !has_role && *work ? "; " : "", work);
	}
}

/* ---- canonical form ------------------------------------------------------ */

/* The fewest significant digits (1..17) that print x so it reads back
 * exactly; 17 always does for an IEEE double. */
static int real_digits(double x)
{
	char buf[40];
	int p;

	for (p = 1; p < 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			return p;
	}
	return 17;
}

/* The precision that prints every real of the tree exactly (at least 1). */
static int tree_digits(const pipe_node *n)
{
	int best = 1, d;
	size_t i;

	switch (n->type) {
	case PIPE_NODE_REAL:
		return real_digits(n->v.r);
	case PIPE_NODE_SEQ:
		for (i = 0; i < n->v.seq.n; i++)
			if ((d = tree_digits(n->v.seq.items[i])) > best)
				best = d;
		return best;
	case PIPE_NODE_MAP:
		for (i = 0; i < n->v.map.n; i++)
			if ((d = tree_digits(n->v.map.entries[i].value)) > best)
				best = d;
		return best;
	default:
		return best;
	}
}

static int canonicalize(pipe_resolved *r)
{
	json_t *j = NULL, *chain = NULL;
	uint8_t sum[ART_SHA256_LEN];
	char hex[ART_SHA256_HEX_LEN + 1];
	size_t i;
	int rc = 0;

	if (!(j = pipe_node_to_json(r->root)) || !(chain = json_array()))
		goto nomem;
	for (i = 0; i < r->chain_len; i++)
		if (json_array_append_new(chain, json_string(r->chain[i])) < 0)
			goto nomem;
	if (json_object_set_new(j, "chain", chain) < 0) {
		chain = NULL;
		goto nomem;
	}
	chain = NULL;
	r->canonical = pipe_json__dumps(j, JSON_COMPACT | JSON_SORT_KEYS |
					     (size_t)JSON_REAL_PRECISION(tree_digits(r->root)));
	if (!r->canonical)
		goto nomem;
	r->canonical_len = strlen(r->canonical);
	art_sha256(r->canonical, r->canonical_len, sum);
	art_hex(hex, sum, sizeof(sum));
	snprintf(r->digest, sizeof(r->digest), "sha256:%s", hex);
	goto cleanup;
nomem:
	rc = art_error_set(AF_ENOMEM, "out of memory writing the canonical form of '%s'", r->name);
cleanup:
	json_decref(chain);
	json_decref(j);
	return rc;
}

/* ---- resolve ------------------------------------------------------------- */

void pipe_resolved_free(pipe_resolved *r)
{
	size_t i;

	if (!r)
		return;
	free(r->name);
	free(r->version);
	pipe_node_free(r->root);
	for (i = 0; i < r->chain_len; i++)
		free(r->chain[i]);
	free(r->chain);
	free(r->canonical);
	free(r);
}

int pipe_resolve(pipe_resolved **out, const pipe_catalog *c, const char *name,
		 pipe_diags *diags)
{
	const pipe_template *chain[PIPE_RESOLVE_MAX_CHAIN];
	const pipe_template *t;
	pipe_resolved *r = NULL;
	rctx x = {diags, 0, 0};
	size_t n = 0, i;
	int rc;

	if (!out || !c || !name || !diags)
		return art_error_set(AF_EINVAL, "pipe_resolve: missing argument");
	*out = NULL;
	if (!(t = pipe_catalog_find(c, name)))
		return art_error_set(AF_ENOTFOUND, "no template named '%s'", name);
	walk_chain(&x, c, t, chain, &n);
	if (x.rc < 0 || x.errors) {
		rc = x.rc < 0 ? x.rc : AF_ESYNTAX;
		goto cleanup;
	}
	if (!(r = calloc(1, sizeof(*r))) || !(r->name = strdup(t->name)) ||
	    !(r->version = strdup(t->version)) || !(r->chain = calloc(n, sizeof(*r->chain)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory resolving '%s'", name);
		goto cleanup;
	}
	r->abstract = t->abstract;
	for (i = 0; i < n; i++, r->chain_len++)
		if (asprintf(&r->chain[i], "%s@%s", chain[i]->name, chain[i]->version) < 0) {
			r->chain[i] = NULL;
			rc = art_error_set(AF_ENOMEM, "out of memory resolving '%s'", name);
			goto cleanup;
		}
	if ((rc = merge_chain(&r->root, chain, n)) < 0)
		goto cleanup;
	check_dups(&x, r->root, "tools", "name", "tool name");
	check_dups(&x, r->root, "steps", "id", "step id");
	check_dups(&x, r->root, "capabilities", NULL, "capability");
	if (!r->abstract)
		check_concrete(&x, r->root, t);
	if (x.rc < 0 || x.errors) {
		rc = x.rc < 0 ? x.rc : AF_ESYNTAX;
		goto cleanup;
	}
	if ((rc = canonicalize(r)) < 0)
		goto cleanup;
	*out = r;
	r = NULL;
	rc = 0;
cleanup:
	if (rc == AF_ESYNTAX)
		art_error_set(AF_ESYNTAX, "'%s': %zu error%s resolving the template", name, x.errors,
			      x.errors == 1 ? "" : "s");
	pipe_resolved_free(r);
	return rc;
}
