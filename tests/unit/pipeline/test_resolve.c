/*
 * test_resolve.c - the catalog, `extends` chains and their errors, the merge
 * rules of docs/templates.md, the checks on the merged tree, and the
 * canonical form and its digest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/util.h"
#include "pipe/resolve.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND "kind: AgentTemplate\n"

/* ---- helpers --------------------------------------------------------------- */

static void dump(const pipe_diags *d)
{
	pipe_diags_print(d, stderr);
}

static void add(pipe_catalog *c, const char *path, const char *yaml)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	int rc = pipe_template_parse(&t, path, yaml, strlen(yaml), &d);

	if (rc)
		dump(&d);
	assert_int_equal(rc, 0);
	rc = pipe_catalog_add(c, t, &d);
	if (rc)
		dump(&d);
	assert_int_equal(rc, 0);
	pipe_diags_free(&d);
}

static pipe_catalog *new_catalog(void)
{
	pipe_catalog *c = NULL;

	assert_int_equal(pipe_catalog_new(&c), 0);
	return c;
}

static pipe_resolved *resolve_ok(const pipe_catalog *c, const char *name)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_resolved *r = NULL;
	int rc = pipe_resolve(&r, c, name, &d);

	if (rc || d.n)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 0);
	assert_non_null(r);
	pipe_diags_free(&d);
	return r;
}

/* Resolve expecting failure; the first finding must be rule at file:line:col
 * and there must be n findings. Returns them (caller frees). */
static pipe_diags resolve_fails(const pipe_catalog *c, const char *name, size_t n,
				const char *rule, const char *file, unsigned line, unsigned col)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_resolved *r = (pipe_resolved *)1;
	int rc = pipe_resolve(&r, c, name, &d);

	if (d.n != n || (d.n && strcmp(d.items[0].rule, rule) != 0))
		dump(&d);
	assert_int_equal(rc, AF_ESYNTAX);
	assert_null(r);
	assert_int_equal(d.n, n);
	assert_string_equal(d.items[0].rule, rule);
	assert_string_equal(d.items[0].file, file);
	assert_int_equal(d.items[0].line, line);
	assert_int_equal(d.items[0].col, col);
	assert_non_null(d.items[0].hint);
	return d;
}

static const pipe_node *at(const pipe_node *root, const char *path)
{
	char buf[256], *p, *save = NULL;
	const pipe_node *n = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strtok_r(buf, ".", &save); p && n; p = strtok_r(NULL, ".", &save))
		n = pipe_node_get(n, p);
	return n;
}

static const char *str_at(const pipe_node *root, const char *path)
{
	const pipe_node *n = at(root, path);

	return n && n->type == PIPE_NODE_STRING ? n->v.s.ptr : NULL;
}

static char *read_fixture(const char *name, size_t *len)
{
	const char *src = getenv("AF_SRCDIR");
	char path[PATH_MAX];
	char *data = NULL;

	snprintf(path, sizeof(path), "%s/tests/fixtures/templates/%s", src ? src : ".", name);
	assert_int_equal(art_file_read(&data, len, path, 1 << 20), 0);
	return data;
}

static void add_fixture(pipe_catalog *c, const char *name)
{
	size_t len;
	char *data = read_fixture(name, &len);

	add(c, name, data);
	free(data);
}

/* A catalog of fixtures base.yaml + the named child; the child resolved. */
static pipe_resolved *resolve_fixture_child(pipe_catalog **c, const char *child)
{
	*c = new_catalog();
	add_fixture(*c, "canonical/base.yaml");
	add_fixture(*c, child);
	return resolve_ok(*c, "golden-child");
}

/* A concrete template that needs nothing from a parent. */
#define PARENT_A KIND "name: a\nversion: 1.0.0\nrole: r\ninstructions: hi\nmodel: {name: m}\n"

/* ---- catalog ---------------------------------------------------------------- */

static void test_resolve__catalog_sorted_and_unique(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	const char *dup = KIND "name: b\nversion: 2.0.0\n";

	(void)state;
	add(c, "t/c.yaml", KIND "name: c\nversion: 1.0.0\nabstract: true\n");
	add(c, "t/a.yaml", KIND "name: a\nversion: 1.0.0\nabstract: true\n");
	add(c, "t/b.yaml", KIND "name: b\nversion: 1.0.0\nabstract: true\n");
	assert_int_equal(pipe_catalog_count(c), 3);
	assert_string_equal(pipe_catalog_at(c, 0)->name, "a");
	assert_string_equal(pipe_catalog_at(c, 1)->name, "b");
	assert_string_equal(pipe_catalog_at(c, 2)->name, "c");
	assert_null(pipe_catalog_at(c, 3));
	assert_string_equal(pipe_catalog_find(c, "b")->path, "t/b.yaml");
	assert_null(pipe_catalog_find(c, "d"));
	assert_null(pipe_catalog_find(c, NULL));

	/* a second "b": refused, named with both files, the first one stays */
	assert_int_equal(pipe_template_parse(&t, "t/other/b.yaml", dup, strlen(dup), &d), 0);
	assert_int_equal(pipe_catalog_add(c, t, &d), AF_EEXISTS);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].rule, "template.duplicate-name");
	assert_string_equal(d.items[0].file, "t/other/b.yaml");
	assert_int_equal(d.items[0].line, 2);
	assert_int_equal(d.items[0].col, 7);
	assert_non_null(strstr(d.items[0].message, "t/b.yaml"));
	assert_non_null(strstr(d.items[0].message, "t/other/b.yaml"));
	assert_non_null(d.items[0].hint);
	assert_int_equal(pipe_catalog_count(c), 3);
	assert_string_equal(pipe_catalog_find(c, "b")->version, "1.0.0");
	pipe_diags_free(&d);

	assert_int_equal(pipe_catalog_add(c, NULL, &d), AF_EINVAL);
	assert_int_equal(pipe_catalog_count(NULL), 0);
	assert_null(pipe_catalog_at(NULL, 0));
	pipe_catalog_free(c);
	pipe_catalog_free(NULL);
}

static void test_resolve__unknown_name(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_resolved *r = NULL;

	(void)state;
	assert_int_equal(pipe_resolve(&r, c, "nope", &d), AF_ENOTFOUND);
	assert_null(r);
	assert_int_equal(d.n, 0);
	assert_non_null(strstr(art_error_last(), "nope"));
	assert_int_equal(pipe_resolve(NULL, c, "nope", &d), AF_EINVAL);
	pipe_resolved_free(NULL);
	pipe_catalog_free(c);
}

/* ---- merge rules -------------------------------------------------------------- */

static void test_resolve__maps_deep_merge_and_scalars_override(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 1.0.0\nabstract: true\nrole: parent role\n"
		   "goal: g\n"
		   "model: {provider: openai, name: gpt-4o, temperature: 0.5, max_tokens: 100}\n"
		   "labels: {team: a, tier: base}\n"
		   "inputs: {type: object, properties: {x: {type: string, default: {a: 1}}}}\n"
		   "limits: {max_steps: 3, timeout_ms: 1000}\n");
	add(c, "c.yaml", KIND "name: c\nversion: 1.0.0\nextends: p\nrole: child role\n"
		   "instructions: do it\n"
		   "model: {name: gpt-4o-mini}\n"
		   "labels: {tier: expert, extra: y}\n"
		   "inputs: {properties: {x: {default: 5}, y: {type: number}}}\n"
		   "limits: {max_steps: 9}\n");
	r = resolve_ok(c, "c");
	assert_string_equal(str_at(r->root, "role"), "child role");
	assert_string_equal(str_at(r->root, "goal"), "g");
	assert_string_equal(str_at(r->root, "model.provider"), "openai");
	assert_string_equal(str_at(r->root, "model.name"), "gpt-4o-mini");
	assert_true(at(r->root, "model.temperature")->v.r == 0.5);
	assert_int_equal(at(r->root, "model.max_tokens")->v.i, 100);
	assert_string_equal(str_at(r->root, "labels.team"), "a");
	assert_string_equal(str_at(r->root, "labels.tier"), "expert");
	assert_string_equal(str_at(r->root, "labels.extra"), "y");
	assert_string_equal(str_at(r->root, "inputs.type"), "object");
	assert_string_equal(str_at(r->root, "inputs.properties.x.type"), "string");
	/* a scalar replaces a map */
	assert_int_equal(at(r->root, "inputs.properties.x.default")->type, PIPE_NODE_INT);
	assert_string_equal(str_at(r->root, "inputs.properties.y.type"), "number");
	assert_int_equal(at(r->root, "limits.max_steps")->v.i, 9);
	assert_int_equal(at(r->root, "limits.timeout_ms")->v.i, 1000);
	/* marks say which file contributed each value */
	assert_string_equal(at(r->root, "model.provider")->mark.file, "p.yaml");
	assert_string_equal(at(r->root, "model.name")->mark.file, "c.yaml");
	assert_int_equal(at(r->root, "model.name")->mark.line, 7);
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

static void test_resolve__null_deletes(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 1.0.0\nabstract: true\nrole: r\ngoal: g\n"
		   "description: d\n"
		   "model: {name: m, temperature: 0.5, provider: x}\n"
		   "labels: {a: b}\n"
		   "inputs: {properties: {x: {type: string}, y: {type: string}}}\n");
	add(c, "c.yaml", KIND "name: c\nversion: 1.0.0\nextends: p\ninstructions: i\n"
		   "goal: null\n"
		   "description: ~\n"
		   "model: {temperature: null}\n"
		   "labels: null\n"
		   "inputs: {properties: {y: null, z: {type: string, nested: null}}}\n"
		   "outputs: {gone: null}\n");
	r = resolve_ok(c, "c");
	assert_null(at(r->root, "goal"));
	assert_null(at(r->root, "description"));
	assert_null(at(r->root, "model.temperature"));
	assert_string_equal(str_at(r->root, "model.name"), "m");
	assert_null(at(r->root, "labels"));
	assert_non_null(at(r->root, "inputs.properties.x"));
	assert_null(at(r->root, "inputs.properties.y"));
	/* a null in a new map is dropped too (RFC 7386) */
	assert_non_null(at(r->root, "inputs.properties.z"));
	assert_null(at(r->root, "inputs.properties.z.nested"));
	assert_int_equal(at(r->root, "outputs")->v.map.n, 0);
	assert_null(strstr(r->canonical, "null"));
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

static void test_resolve__lists_replace_or_append(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;
	const pipe_node *tools, *caps, *req;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 1.0.0\nabstract: true\n"
		   "capabilities: [log, clock]\n"
		   "tools: [{name: a}, {name: b}]\n"
		   "inputs: {required: [x]}\n");
	/* plain list: replaces */
	add(c, "r.yaml", KIND "name: r\nversion: 1.0.0\nextends: p\nabstract: true\n"
		   "capabilities: [kv]\ntools: [{name: c}]\n");
	/* !append: parent's items first */
	add(c, "ap.yaml", KIND "name: ap\nversion: 1.0.0\nextends: p\nabstract: true\n"
		    "capabilities: !append [kv]\n"
		    "tools: !append\n  - name: c\n"
		    "inputs: {required: !append [y]}\n"
		    "steps: !append [{id: s, tool: a}]\n");

	r = resolve_ok(c, "r");
	caps = at(r->root, "capabilities");
	assert_int_equal(caps->v.seq.n, 1);
	assert_string_equal(caps->v.seq.items[0]->v.s.ptr, "kv");
	tools = at(r->root, "tools");
	assert_int_equal(tools->v.seq.n, 1);
	assert_string_equal(pipe_node_get_str(tools->v.seq.items[0], "name"), "c");
	pipe_resolved_free(r);

	r = resolve_ok(c, "ap");
	caps = at(r->root, "capabilities");
	assert_int_equal(caps->v.seq.n, 3);
	assert_string_equal(caps->v.seq.items[0]->v.s.ptr, "log");
	assert_string_equal(caps->v.seq.items[1]->v.s.ptr, "clock");
	assert_string_equal(caps->v.seq.items[2]->v.s.ptr, "kv");
	assert_string_equal(caps->v.seq.items[2]->mark.file, "ap.yaml");
	tools = at(r->root, "tools");
	assert_int_equal(tools->v.seq.n, 3);
	assert_string_equal(pipe_node_get_str(tools->v.seq.items[2], "name"), "c");
	req = at(r->root, "inputs.required");
	assert_int_equal(req->v.seq.n, 2);
	/* !append onto nothing: just the child's items; no flag survives */
	assert_int_equal(at(r->root, "steps")->v.seq.n, 1);
	assert_int_equal(at(r->root, "steps")->flags & PIPE_NODE_APPEND, 0);
	assert_int_equal(caps->flags & PIPE_NODE_APPEND, 0);
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

static void test_resolve__fields_that_are_not_inherited(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 9.9.9\nabstract: true\nextends: q\n"
		   "role: r\ninstructions: i\nmodel: {name: m}\n");
	add(c, "q.yaml", KIND "name: q\nversion: 1.0.0\nabstract: true\n");
	add(c, "c.yaml", KIND "name: c\nversion: 1.0.0\nextends: p\n");
	r = resolve_ok(c, "c");
	assert_string_equal(r->name, "c");
	assert_string_equal(r->version, "1.0.0");
	assert_false(r->abstract);
	assert_string_equal(str_at(r->root, "name"), "c");
	assert_string_equal(str_at(r->root, "version"), "1.0.0");
	assert_null(at(r->root, "abstract"));
	assert_null(at(r->root, "extends"));
	assert_null(strstr(r->canonical, "\"abstract\""));
	assert_null(strstr(r->canonical, "\"extends\""));
	assert_non_null(strstr(r->canonical, "\"chain\":[\"c@1.0.0\",\"p@9.9.9\",\"q@1.0.0\"]"));
	pipe_resolved_free(r);

	/* an abstract parent's child is concrete unless it says otherwise */
	r = resolve_ok(c, "p");
	assert_true(r->abstract);
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

static void test_resolve__three_level_chain(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;

	(void)state;
	add(c, "a.yaml", KIND "name: a\nversion: 3.0.0\nabstract: true\nrole: ra\ngoal: ga\n"
		   "description: da\nmodel: {name: ma, provider: pa}\n");
	add(c, "b.yaml", KIND "name: b\nversion: 2.0.0\nabstract: true\nextends: a@^3.0.0\n"
		   "goal: gb\nmodel: {name: mb}\n");
	add(c, "c.yaml", KIND "name: c\nversion: 1.0.0\nextends: b@2.0.0\n"
		   "instructions: ic\nmodel: {provider: pc}\n");
	r = resolve_ok(c, "c");
	assert_int_equal(r->chain_len, 3);
	assert_string_equal(r->chain[0], "c@1.0.0");
	assert_string_equal(r->chain[1], "b@2.0.0");
	assert_string_equal(r->chain[2], "a@3.0.0");
	assert_string_equal(str_at(r->root, "role"), "ra");
	assert_string_equal(str_at(r->root, "goal"), "gb");
	assert_string_equal(str_at(r->root, "description"), "da");
	assert_string_equal(str_at(r->root, "model.name"), "mb");
	assert_string_equal(str_at(r->root, "model.provider"), "pc");
	assert_string_equal(str_at(r->root, "instructions"), "ic");
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

/* ---- chain errors ------------------------------------------------------------- */

static void test_resolve__pins(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;
	pipe_diags d;

	(void)state;
	add(c, "a.yaml", PARENT_A "abstract: true\n");
	add(c, "a2.yaml", KIND "name: a2\nversion: 2.3.0-rc.1\nabstract: true\n");
	add(c, "ok1.yaml", KIND "name: ok1\nversion: 1.0.0\nextends: a@1.0.0\n");
	add(c, "ok2.yaml", KIND "name: ok2\nversion: 1.0.0\nextends: a@^1.0.0\n");
	add(c, "ok3.yaml", KIND "name: ok3\nversion: 1.0.0\nabstract: true\nextends: a2@^2.2.0\n");
	add(c, "bad1.yaml", KIND "name: bad1\nversion: 1.0.0\nextends: a@1.0.1\n");
	add(c, "bad2.yaml", KIND "name: bad2\nversion: 1.0.0\nextends: a@^0.9.0\n");
	add(c, "bad3.yaml", KIND "name: bad3\nversion: 1.0.0\nextends: a2@^2.3.0\n");
	add(c, "bad4.yaml", KIND "name: bad4\nversion: 1.0.0\nextends:   a@^1.0.1\n");

	r = resolve_ok(c, "ok1");
	pipe_resolved_free(r);
	r = resolve_ok(c, "ok2");
	pipe_resolved_free(r);
	r = resolve_ok(c, "ok3");
	pipe_resolved_free(r);

	d = resolve_fails(c, "bad1", 1, "extends.version", "bad1.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, "'a' is version 1.0.0"));
	assert_non_null(strstr(d.items[0].hint, "a.yaml"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "bad2", 1, "extends.version", "bad2.yaml", 4, 10);
	pipe_diags_free(&d);
	/* 2.3.0-rc.1 is below 2.3.0 */
	d = resolve_fails(c, "bad3", 1, "extends.version", "bad3.yaml", 4, 10);
	pipe_diags_free(&d);
	d = resolve_fails(c, "bad4", 1, "extends.version", "bad4.yaml", 4, 12);
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

static void test_resolve__missing_parent(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d;

	(void)state;
	add(c, "base.yaml", KIND "name: base-engineer\nversion: 1.0.0\nabstract: true\n");
	add(c, "x.yaml", KIND "name: x\nversion: 1.0.0\nrole: r\nextends: base-enginer\n");
	add(c, "y.yaml", KIND "name: y\nversion: 1.0.0\nextends: nothing-like-it\n");
	add(c, "z.yaml", KIND "name: z\nversion: 1.0.0\nextends: y\n");

	d = resolve_fails(c, "x", 1, "extends.missing", "x.yaml", 5, 10);
	assert_non_null(strstr(d.items[0].message, "'base-enginer'"));
	assert_non_null(strstr(d.items[0].hint, "did you mean 'base-engineer'?"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "y", 1, "extends.missing", "y.yaml", 4, 10);
	assert_null(strstr(d.items[0].hint, "did you mean"));
	pipe_diags_free(&d);
	/* an ancestor's missing parent is reported at the ancestor's extends */
	d = resolve_fails(c, "z", 1, "extends.missing", "y.yaml", 4, 10);
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

static void test_resolve__cycles(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d;

	(void)state;
	add(c, "self.yaml", KIND "name: self\nversion: 1.0.0\nextends: self\n");
	add(c, "a.yaml", KIND "name: a\nversion: 1.0.0\nextends: b\n");
	add(c, "b.yaml", KIND "name: b\nversion: 1.0.0\nextends: a\n");
	add(c, "x.yaml", KIND "name: x\nversion: 1.0.0\nextends: y\n");
	add(c, "y.yaml", KIND "name: y\nversion: 1.0.0\nextends: z\n");
	add(c, "z.yaml", KIND "name: z\nversion: 1.0.0\nextends: x@^1.0.0\n");
	add(c, "into.yaml", KIND "name: into\nversion: 1.0.0\nextends: a\n");

	d = resolve_fails(c, "self", 1, "extends.cycle", "self.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, "self -> self"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "a", 1, "extends.cycle", "b.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, "a -> b -> a"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "b", 1, "extends.cycle", "a.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, "b -> a -> b"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "x", 1, "extends.cycle", "z.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, "x -> y -> z -> x"));
	pipe_diags_free(&d);
	/* a template that leads into a loop names the loop, not itself */
	d = resolve_fails(c, "into", 1, "extends.cycle", "b.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, ": a -> b -> a"));
	assert_null(strstr(d.items[0].message, "into"));
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

/* t1 extends t2 ... extends tN (abstract), tN the root. */
static pipe_catalog *chain_catalog(int n)
{
	pipe_catalog *c = new_catalog();
	char yaml[256], path[32];
	int i;

	for (i = 1; i <= n; i++) {
		snprintf(path, sizeof(path), "t%d.yaml", i);
		if (i < n)
			snprintf(yaml, sizeof(yaml), KIND "name: t%d\nversion: 1.0.0\nextends: t%d\n",
				 i, i + 1);
		else
			snprintf(yaml, sizeof(yaml),
				 KIND "name: t%d\nversion: 1.0.0\nrole: r\ninstructions: i\n"
				      "model: {name: m}\n", i);
		add(c, path, yaml);
	}
	return c;
}

static void test_resolve__depth(void **state)
{
	pipe_catalog *c;
	pipe_resolved *r;
	pipe_diags d;

	(void)state;
	c = chain_catalog(8);
	r = resolve_ok(c, "t1");
	assert_int_equal(r->chain_len, 8);
	assert_string_equal(r->chain[7], "t8@1.0.0");
	pipe_resolved_free(r);
	pipe_catalog_free(c);

	c = chain_catalog(9);
	d = resolve_fails(c, "t1", 1, "extends.depth", "t8.yaml", 4, 10);
	assert_non_null(strstr(d.items[0].message, "t1 -> t2 -> t3 -> t4 -> t5 -> t6 -> t7 -> t8 -> t9"));
	pipe_diags_free(&d);
	/* from t2 the chain is 8 long: fine */
	r = resolve_ok(c, "t2");
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

/* ---- checks after merging ------------------------------------------------------ */

static void test_resolve__duplicates_after_append(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 1.0.0\nabstract: true\n"
		   "capabilities: [log]\n"
		   "tools:\n  - name: kv_get\n"
		   "steps: [{id: one, tool: kv_get}]\n");
	add(c, "t.yaml", KIND "name: t\nversion: 1.0.0\nabstract: true\nextends: p\n"
		   "tools: !append\n  - name: kv_put\n  - name: kv_get\n");
	add(c, "s.yaml", KIND "name: s\nversion: 1.0.0\nabstract: true\nextends: p\n"
		   "steps: !append [{id: one, tool: kv_get}]\n");
	add(c, "k.yaml", KIND "name: k\nversion: 1.0.0\nabstract: true\nextends: p\n"
		   "capabilities: !append [clock, log]\n");
	/* replacing (no !append) never duplicates */
	add(c, "ok.yaml", KIND "name: ok\nversion: 1.0.0\nabstract: true\nextends: p\n"
		    "tools: [{name: kv_get}]\ncapabilities: [log]\n");

	d = resolve_fails(c, "t", 1, "template.duplicate-item", "t.yaml", 8, 11);
	assert_non_null(strstr(d.items[0].message, "duplicate tool name 'kv_get'"));
	assert_non_null(strstr(d.items[0].message, "p.yaml:7:11"));
	assert_non_null(strstr(d.items[0].hint, "!append"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "s", 1, "template.duplicate-item", "s.yaml", 6, 22);
	assert_non_null(strstr(d.items[0].message, "step id 'one'"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "k", 1, "template.duplicate-item", "k.yaml", 6, 31);
	assert_non_null(strstr(d.items[0].message, "capability 'log'"));
	pipe_diags_free(&d);
	pipe_resolved_free(resolve_ok(c, "ok"));
	pipe_catalog_free(c);
}

static void test_resolve__placeholders(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;
	pipe_diags d;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 1.0.0\nabstract: true\nrole: r\n"
		   "model: {name: m}\n"
		   "instructions: \"I am {{ name }}, {{role}}. Do {{ target }}.\"\n");
	/* every valid form */
	add(c, "good.yaml", KIND "name: good\nversion: 1.0.0\nextends: p\ngoal: g\n"
		     "inputs: {properties: {target: {type: string}, depth-x: {}}}\n"
		     "tools: [{name: fetch}]\n"
		     "steps:\n"
		     "  - {id: s1, tool: fetch, args: {u: \"{{inputs.target}} {{ depth-x }}\"}}\n"
		     "  - {id: s2, tool: fetch, args: {u: [\"{{ steps.s1 }}\", {v: \"{{steps.s1.body}}\"}],"
		     " g: \"{{goal}} {{name}} {{role}}\"}}\n");
	/* the parent's {{ target }} names nothing here: reported at the parent's line */
	add(c, "noin.yaml", KIND "name: noin\nversion: 1.0.0\nextends: p\n");
	add(c, "nogoal.yaml", KIND "name: nogoal\nversion: 1.0.0\nrole: r\nmodel: {name: m}\n"
		       "instructions: \"{{ goal }}\"\n");
	add(c, "later.yaml", KIND "name: later\nversion: 1.0.0\nrole: r\n"
		      "tools: [{name: f}]\n"
		      "steps:\n"
		      "  - {id: a, tool: f, args: {x: \"{{ steps.b.out }}\"}}\n"
		      "  - {id: b, tool: f, args: {x: \"{{ steps.a.out.deeper }}\"}}\n");
	add(c, "instr.yaml", KIND "name: instr\nversion: 1.0.0\nrole: r\nmodel: {name: m}\n"
		      "tools: [{name: f}]\nsteps: [{id: a, tool: f}]\n"
		      "instructions: \"{{ steps.a }} {{ inputs }} {{ inputs.a.b }}\"\n");
	/* an abstract template may leave names to its children */
	add(c, "abs.yaml", KIND "name: abs\nversion: 1.0.0\nabstract: true\n"
		    "instructions: \"{{ whatever }}\"\n");

	r = resolve_ok(c, "good");
	pipe_resolved_free(r);
	pipe_resolved_free(resolve_ok(c, "p"));
	pipe_resolved_free(resolve_ok(c, "abs"));

	d = resolve_fails(c, "noin", 1, "template.placeholder", "p.yaml", 7, 15);
	assert_non_null(strstr(d.items[0].message, "'{{ target }}'"));
	assert_non_null(strstr(d.items[0].message, "'noin'"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "nogoal", 1, "template.placeholder", "nogoal.yaml", 6, 15);
	pipe_diags_free(&d);
	d = resolve_fails(c, "later", 2, "template.placeholder", "later.yaml", 7, 32);
	assert_non_null(strstr(d.items[0].message, "steps.b.out"));
	assert_non_null(strstr(d.items[0].hint, "earlier step"));
	assert_int_equal(d.items[1].line, 8);
	pipe_diags_free(&d);
	d = resolve_fails(c, "instr", 3, "template.placeholder", "instr.yaml", 8, 15);
	assert_non_null(strstr(d.items[0].hint, "only be used in step args"));
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

/* The hint of an unknown placeholder lists the names that would work:
 * inputs and earlier step ids that can be written as a placeholder (not
 * '9bad', 'has.dot' or a 45-character name), cut with "..." when long. */
static void test_resolve__placeholder_hint_lists_valid_names(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d;
	char yaml[8192];
	size_t o, i;

	(void)state;
	add(c, "h.yaml", KIND "name: h\nversion: 1.0.0\nrole: r\ngoal: g\nmodel: {name: m}\n"
		   "inputs: {properties: {task: {}, depth-x: {}, _u: {}, 9bad: {}, has.dot: {},"
		   " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: {}}}\n"
		   "tools: [{name: f}]\n"
		   "steps:\n  - {id: s1, tool: f}\n"
		   "  - {id: s3, tool: f, args: {q: \"{{ nope }}\"}}\n"
		   "instructions: \"{{ nope }}\"\n");
	d = resolve_fails(c, "h", 2, "template.placeholder", "h.yaml", 12, 15);
	assert_non_null(strstr(d.items[0].hint,
			       "use one of: name, role, goal, inputs.task, inputs.depth-x, inputs._u "
			       "(a bare name"));
	assert_null(strstr(d.items[0].hint, "9bad"));
	assert_null(strstr(d.items[0].hint, "has.dot"));
	assert_null(strstr(d.items[0].hint, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	/* in step args, the earlier step ids too */
	assert_non_null(strstr(d.items[1].hint, ", steps.s1"));
	pipe_diags_free(&d);

	/* many inputs: the list ends in "..." */
	o = (size_t)snprintf(yaml, sizeof(yaml), KIND "name: many\nversion: 1.0.0\nrole: r\n"
			     "model: {name: m}\ninstructions: \"{{ nope }}\"\ninputs:\n  properties:\n");
	for (i = 0; i < 40; i++)
		o += (size_t)snprintf(yaml + o, sizeof(yaml) - o,
				      "    input_number_%02zu_with_a_long_name: {}\n", i);
	add(c, "many.yaml", yaml);
	d = resolve_fails(c, "many", 1, "template.placeholder", "many.yaml", 6, 15);
	assert_non_null(strstr(d.items[0].hint, "inputs.input_number_00_with_a_long_name"));
	assert_non_null(strstr(d.items[0].hint, ", ... (a bare name"));
	assert_null(strstr(d.items[0].hint, "input_number_39"));
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

static void test_resolve__step_tools(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d;

	(void)state;
	add(c, "p.yaml", KIND "name: p\nversion: 1.0.0\nabstract: true\nrole: r\n"
		   "tools: [{name: fetch}]\n"
		   "steps: [{id: a, tool: missing_tool}]\n");
	add(c, "ok.yaml", KIND "name: ok\nversion: 1.0.0\nextends: p\n"
		    "steps: [{id: a, tool: fetch}]\n");
	add(c, "bad.yaml", KIND "name: bad\nversion: 1.0.0\nextends: p\n"
		     "tools: [{name: other}]\nsteps: !append [{id: b, tool: fetch}]\n");

	pipe_resolved_free(resolve_ok(c, "ok"));
	pipe_resolved_free(resolve_ok(c, "p")); /* abstract: not checked */
	d = resolve_fails(c, "bad", 2, "template.step-tool", "p.yaml", 7, 23);
	assert_non_null(strstr(d.items[0].message, "'missing_tool'"));
	assert_string_equal(d.items[1].rule, "template.step-tool");
	assert_string_equal(d.items[1].file, "bad.yaml");
	assert_int_equal(d.items[1].line, 6);
	assert_int_equal(d.items[1].col, 31);
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

static void test_resolve__completeness(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_diags d;

	(void)state;
	add(c, "abs.yaml", KIND "name: abs\nversion: 1.0.0\nabstract: true\n");
	add(c, "norole.yaml", KIND "name: norole\nversion: 1.0.0\ninstructions: i\nmodel: {name: m}\n");
	add(c, "nowork.yaml", KIND "name: nowork\nversion: 1.0.0\nrole: r\ninstructions: i\n");
	add(c, "nothing.yaml", KIND "name: nothing\nversion: 1.0.0\nextends: abs\n");
	add(c, "steps.yaml", KIND "name: steps\nversion: 1.0.0\nrole: r\n"
		      "tools: [{name: f}]\nsteps: [{id: a, tool: f}]\n");
	add(c, "emptysteps.yaml", KIND "name: emptysteps\nversion: 1.0.0\nrole: r\nsteps: []\n");
	/* a child can delete what makes its parent complete */
	add(c, "full.yaml", PARENT_A "abstract: true\n");
	add(c, "gutted.yaml", KIND "name: gutted\nversion: 1.0.0\nextends: a\nmodel: {name: null}\n");

	pipe_resolved_free(resolve_ok(c, "abs"));
	pipe_resolved_free(resolve_ok(c, "steps"));
	d = resolve_fails(c, "norole", 1, "template.incomplete", "norole.yaml", 2, 7);
	assert_non_null(strstr(d.items[0].message, "no role"));
	assert_non_null(strstr(d.items[0].hint, "abstract: true"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "nowork", 1, "template.incomplete", "nowork.yaml", 2, 7);
	assert_non_null(strstr(d.items[0].message, "no steps and no model.name"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "nothing", 1, "template.incomplete", "nothing.yaml", 2, 7);
	assert_non_null(strstr(d.items[0].message, "no role; no steps and no instructions/model.name"));
	pipe_diags_free(&d);
	d = resolve_fails(c, "emptysteps", 1, "template.incomplete", "emptysteps.yaml", 2, 7);
	pipe_diags_free(&d);
	d = resolve_fails(c, "gutted", 1, "template.incomplete", "gutted.yaml", 2, 7);
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

/* ---- canonical form ---------------------------------------------------------- */

static void test_resolve__golden_canonical_json(void **state)
{
	pipe_catalog *c;
	pipe_resolved *r = resolve_fixture_child(&c, "canonical/child.yaml");
	char hex[65], want_digest[72];
	size_t len;
	char *golden = read_fixture("canonical/child.canonical.json", &len);

	(void)state;
	while (len && golden[len - 1] == '\n')
		golden[--len] = '\0';
	assert_string_equal(r->canonical, golden);
	assert_int_equal(r->canonical_len, len);
	art_sha256_hex(golden, len, hex);
	snprintf(want_digest, sizeof(want_digest), "sha256:%s", hex);
	assert_string_equal(r->digest, want_digest);
	/* UTF-8 is kept as is, not escaped */
	assert_non_null(strstr(r->canonical, "\"Grüße\""));
	assert_int_equal(r->chain_len, 2);
	free(golden);
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

static void test_resolve__digest_ignores_formatting(void **state)
{
	pipe_catalog *c1, *c2, *c3;
	pipe_resolved *a = resolve_fixture_child(&c1, "canonical/child.yaml");
	pipe_resolved *b = resolve_fixture_child(&c2, "canonical/child-reformatted.yaml");
	pipe_resolved *x = resolve_fixture_child(&c3, "canonical/child-changed.yaml");

	(void)state;
	assert_string_equal(a->canonical, b->canonical);
	assert_string_equal(a->digest, b->digest);
	assert_string_not_equal(a->digest, x->digest);
	pipe_resolved_free(a);
	pipe_resolved_free(b);
	pipe_resolved_free(x);
	pipe_catalog_free(c1);
	pipe_catalog_free(c2);
	pipe_catalog_free(c3);
}

static char *digest_of(const char *yaml)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;
	char *digest;

	add(c, "x.yaml", yaml);
	r = resolve_ok(c, "x");
	digest = strdup(r->digest);
	assert_non_null(digest);
	pipe_resolved_free(r);
	pipe_catalog_free(c);
	return digest;
}

static void test_resolve__digest_tracks_meaning(void **state)
{
	static const char *const same[] = {
		KIND "name: x\nversion: 1.0.0\nabstract: true\nmodel: {temperature: 1, name: m}\n",
		KIND "name: x\nversion: 1.0.0\nabstract: true\nmodel: {name: m, temperature: 1.0}\n",
		"apiVersion: agentfactory/v1\n" KIND "version: '1.0.0'\nname: \"x\"\nabstract: true\n"
		"model:\n  name: m   # comment\n  temperature: 1.00\n",
	};
	static const char *const different[] = {
		KIND "name: x\nversion: 1.0.1\nabstract: true\nmodel: {temperature: 1, name: m}\n",
		KIND "name: x\nversion: 1.0.0\nabstract: true\nmodel: {temperature: 1.5, name: m}\n",
		KIND "name: x\nversion: 1.0.0\nabstract: true\nmodel: {temperature: 1, name: M}\n",
		KIND "name: x\nversion: 1.0.0\nabstract: true\nmodel: {temperature: 1, name: m}\n"
		"labels: {a: \"1\"}\n",
	};
	char *first = digest_of(same[0]);
	size_t i;

	(void)state;
	assert_int_equal(strncmp(first, "sha256:", 7), 0);
	assert_int_equal(strlen(first), 7 + 64);
	for (i = 1; i < sizeof(same) / sizeof(same[0]); i++) {
		char *d = digest_of(same[i]);

		assert_string_equal(d, first);
		free(d);
	}
	for (i = 0; i < sizeof(different) / sizeof(different[0]); i++) {
		char *d = digest_of(different[i]);

		assert_string_not_equal(d, first);
		free(d);
	}
	free(first);
}

static void test_resolve__floats_print_short_and_exact(void **state)
{
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;

	(void)state;
	add(c, "x.yaml", KIND "name: x\nversion: 1.0.0\nabstract: true\n"
		   "model: {temperature: 0.2}\ninputs: {a: 1e300, b: 0.1}\n");
	r = resolve_ok(c, "x");
	assert_non_null(strstr(r->canonical, "\"temperature\":0.2}"));
	assert_non_null(strstr(r->canonical, "\"b\":0.1"));
	assert_non_null(strstr(r->canonical, "\"a\":1e300"));
	pipe_resolved_free(r);
	pipe_catalog_free(c);
}

/* ---- dependants ----------------------------------------------------------------- */

static void test_resolve__dependants(void **state)
{
	pipe_catalog *c = new_catalog();
	const char **names = NULL;
	size_t n = 0;

	(void)state;
	add(c, "a.yaml", KIND "name: a\nversion: 1.0.0\nabstract: true\n");
	add(c, "b.yaml", KIND "name: b\nversion: 1.0.0\nabstract: true\nextends: a\n");
	add(c, "c.yaml", KIND "name: c\nversion: 1.0.0\nabstract: true\nextends: b@9.0.0\n");
	add(c, "d.yaml", KIND "name: d\nversion: 1.0.0\nabstract: true\n");
	add(c, "e.yaml", KIND "name: e\nversion: 1.0.0\nabstract: true\nextends: f\n");
	add(c, "f.yaml", KIND "name: f\nversion: 1.0.0\nabstract: true\nextends: e\n");

	assert_int_equal(pipe_catalog_dependants(&names, &n, c, "a"), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_string_equal(names[2], "c"); /* pins are not checked */
	free(names);
	assert_int_equal(pipe_catalog_dependants(&names, &n, c, "c"), 0);
	assert_int_equal(n, 1);
	free(names);
	/* a loop terminates */
	assert_int_equal(pipe_catalog_dependants(&names, &n, c, "e"), 0);
	assert_int_equal(n, 2);
	free(names);
	/* a name that only appears as a missing parent */
	add(c, "g.yaml", KIND "name: g\nversion: 1.0.0\nabstract: true\nextends: ghost\n");
	assert_int_equal(pipe_catalog_dependants(&names, &n, c, "ghost"), 0);
	assert_int_equal(n, 0);
	assert_null(names);
	assert_int_equal(pipe_catalog_dependants(&names, &n, c, "zzz"), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pipe_catalog_dependants(NULL, &n, c, "a"), AF_EINVAL);
	pipe_catalog_free(c);
}

/* ---- hostile ------------------------------------------------------------------ */

static void test_resolve__ten_thousand_tools_with_append(void **state)
{
	art_buf b = ART_BUF_INIT;
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;
	pipe_diags d;
	int i;

	(void)state;
	assert_int_equal(art_buf_puts(&b, KIND "name: big\nversion: 1.0.0\nabstract: true\n"
					  "tools:\n"), 0);
	for (i = 0; i < 10000; i++)
		assert_int_equal(art_buf_printf(&b, "- {name: t%d}\n", i), 0);
	add(c, "big.yaml", b.data);
	art_buf_free(&b);
	add(c, "more.yaml", KIND "name: more\nversion: 1.0.0\nabstract: true\nextends: big\n"
		      "tools: !append [{name: extra}]\n");
	add(c, "dup.yaml", KIND "name: dup\nversion: 1.0.0\nabstract: true\nextends: big\n"
		     "tools: !append [{name: extra}, {name: t9999}]\n");

	r = resolve_ok(c, "more");
	assert_int_equal(at(r->root, "tools")->v.seq.n, 10001);
	assert_true(r->canonical_len > 10000 * 10);
	pipe_resolved_free(r);
	d = resolve_fails(c, "dup", 1, "template.duplicate-item", "dup.yaml", 6, 39);
	assert_non_null(strstr(d.items[0].message, "big.yaml:10005:10"));
	pipe_diags_free(&d);
	pipe_catalog_free(c);
}

static void test_resolve__wide_maps_merge(void **state)
{
	art_buf p = ART_BUF_INIT, ch = ART_BUF_INIT;
	pipe_catalog *c = new_catalog();
	pipe_resolved *r;
	int i;

	(void)state;
	/* 8000 input properties in the parent, every other one deleted by the child */
	assert_int_equal(art_buf_puts(&p, KIND "name: p\nversion: 1.0.0\nabstract: true\n"
					  "inputs:\n  properties:\n"), 0);
	assert_int_equal(art_buf_puts(&ch, KIND "name: c\nversion: 1.0.0\nabstract: true\n"
					   "extends: p\ninputs:\n  properties:\n"), 0);
	for (i = 0; i < 8000; i++) {
		assert_int_equal(art_buf_printf(&p, "    k%d: {}\n", i), 0);
		if (i % 2)
			assert_int_equal(art_buf_printf(&ch, "    k%d: null\n", i), 0);
	}
	add(c, "p.yaml", p.data);
	add(c, "c.yaml", ch.data);
	r = resolve_ok(c, "c");
	assert_int_equal(at(r->root, "inputs.properties")->v.map.n, 4000);
	assert_non_null(at(r->root, "inputs.properties.k7998"));
	assert_null(at(r->root, "inputs.properties.k7999"));
	pipe_resolved_free(r);
	art_buf_free(&p);
	art_buf_free(&ch);
	pipe_catalog_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve__catalog_sorted_and_unique),
		cmocka_unit_test(test_resolve__unknown_name),
		cmocka_unit_test(test_resolve__maps_deep_merge_and_scalars_override),
		cmocka_unit_test(test_resolve__null_deletes),
		cmocka_unit_test(test_resolve__lists_replace_or_append),
		cmocka_unit_test(test_resolve__fields_that_are_not_inherited),
		cmocka_unit_test(test_resolve__three_level_chain),
		cmocka_unit_test(test_resolve__pins),
		cmocka_unit_test(test_resolve__missing_parent),
		cmocka_unit_test(test_resolve__cycles),
		cmocka_unit_test(test_resolve__depth),
		cmocka_unit_test(test_resolve__duplicates_after_append),
		cmocka_unit_test(test_resolve__placeholders),
		cmocka_unit_test(test_resolve__placeholder_hint_lists_valid_names),
		cmocka_unit_test(test_resolve__step_tools),
		cmocka_unit_test(test_resolve__completeness),
		cmocka_unit_test(test_resolve__golden_canonical_json),
		cmocka_unit_test(test_resolve__digest_ignores_formatting),
		cmocka_unit_test(test_resolve__digest_tracks_meaning),
		cmocka_unit_test(test_resolve__floats_print_short_and_exact),
		cmocka_unit_test(test_resolve__dependants),
		cmocka_unit_test(test_resolve__ten_thousand_tools_with_append),
		cmocka_unit_test(test_resolve__wide_maps_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
