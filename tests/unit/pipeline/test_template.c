/*
 * test_template.c - the schema of one template file: every template-level
 * rule of docs/templates.md with its rule id and file:line:col, that all
 * findings of a file are collected, what is deliberately NOT checked
 * (free-form JSON-schema maps), and hostile input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/util.h"
#include "pipe/template.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The smallest valid template: lines 1-3. Tests append from line 4. */
#define HEAD "kind: AgentTemplate\nname: t\nversion: 1.0.0\n"

typedef struct expected {
	const char *rule;
	unsigned line, col;
} expected;

static void dump(const pipe_diags *d)
{
	pipe_diags_print(d, stderr);
}

static pipe_template *parse_ok(const char *yaml)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	int rc = pipe_template_parse(&t, "ok.yaml", yaml, strlen(yaml), &d);

	if (rc != 0 || d.n)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 0);
	assert_non_null(t);
	pipe_diags_free(&d);
	return t;
}

/* Parse yaml expecting exactly the findings in exp, in this order. */
static void parse_fails(const char *yaml, const expected *exp, size_t n)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = (pipe_template *)1;
	int rc = pipe_template_parse(&t, "bad.yaml", yaml, strlen(yaml), &d);
	size_t i;

	if (d.n != n)
		dump(&d);
	assert_int_equal(rc, AF_ESYNTAX);
	assert_null(t);
	assert_int_equal(d.n, n);
	for (i = 0; i < n; i++) {
		const pipe_diag *g = &d.items[i];

		if (strcmp(g->rule, exp[i].rule) != 0 || g->line != exp[i].line ||
		    g->col != exp[i].col) {
			fprintf(stderr, "finding %zu: want %s at %u:%u, got:\n", i, exp[i].rule,
				exp[i].line, exp[i].col);
			dump(&d);
		}
		assert_string_equal(g->rule, exp[i].rule);
		assert_int_equal(g->line, exp[i].line);
		assert_int_equal(g->col, exp[i].col);
		assert_int_equal(g->severity, PIPE_SEV_ERROR);
		assert_string_equal(g->file, "bad.yaml");
		assert_non_null(g->hint);
		assert_true(strlen(g->hint) > 0);
	}
	assert_non_null(strstr(art_error_last(), "bad.yaml"));
	pipe_diags_free(&d);
}

#define FAILS(yaml, ...)                                                        \
	do {                                                                    \
		static const expected exp_[] = {__VA_ARGS__};                   \
		parse_fails((yaml), exp_, sizeof(exp_) / sizeof(exp_[0]));      \
	} while (0)

/* The single finding of yaml (asserting there is exactly one). */
static pipe_diag *only_finding(const char *yaml, pipe_diags *d)
{
	pipe_template *t = NULL;

	assert_int_equal(pipe_template_parse(&t, "bad.yaml", yaml, strlen(yaml), d), AF_ESYNTAX);
	if (d->n != 1)
		dump(d);
	assert_int_equal(d->n, 1);
	return &d->items[0];
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

/* Every mark in the tree must point at the template's own path string. */
static void assert_marks_point_to(const pipe_node *n, const char *file)
{
	size_t i;

	assert_ptr_equal(n->mark.file, file);
	if (n->type == PIPE_NODE_SEQ)
		for (i = 0; i < n->v.seq.n; i++)
			assert_marks_point_to(n->v.seq.items[i], file);
	if (n->type == PIPE_NODE_MAP)
		for (i = 0; i < n->v.map.n; i++) {
			assert_ptr_equal(n->v.map.entries[i].key_mark.file, file);
			assert_marks_point_to(n->v.map.entries[i].value, file);
		}
}

/* ---- valid templates ---------------------------------------------------- */

static void test_template__parses_the_documented_example(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	char hex[65];
	size_t len;
	char *data = read_fixture("full.yaml", &len);

	(void)state;
	assert_int_equal(pipe_template_parse(&t, "templates/full.yaml", data, len, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(t->path, "templates/full.yaml");
	assert_string_equal(t->name, "security-expert");
	assert_string_equal(t->version, "1.2.0");
	assert_string_equal(t->extends_name, "base-engineer");
	assert_string_equal(t->extends_pin, "^1.0.0");
	assert_ptr_equal(t->extends_mark.file, t->path);
	assert_int_equal(t->extends_mark.line, 8);
	assert_int_equal(t->extends_mark.col, 10);
	assert_false(t->abstract);
	art_sha256_hex(data, len, hex);
	assert_string_equal(t->file_sha256, hex);
	assert_int_equal(t->root->type, PIPE_NODE_MAP);
	assert_marks_point_to(t->root, t->path);
	pipe_template_free(t);
	free(data);
}

static void test_template__minimal_and_optional_forms(void **state)
{
	pipe_template *t;

	(void)state;
	t = parse_ok(HEAD);
	assert_string_equal(t->name, "t");
	assert_null(t->extends_name);
	assert_null(t->extends_pin);
	assert_int_equal(t->extends_mark.line, 0);
	pipe_template_free(t);

	/* quoted version, exact pin, abstract, no apiVersion */
	t = parse_ok("kind: AgentTemplate\nname: a-b-9\nversion: \"2.0.0-rc.1+b5\"\n"
		     "extends: base@1.2.3\nabstract: true\n");
	assert_string_equal(t->version, "2.0.0-rc.1+b5");
	assert_string_equal(t->extends_name, "base");
	assert_string_equal(t->extends_pin, "1.2.3");
	assert_true(t->abstract);
	pipe_template_free(t);

	t = parse_ok(HEAD "extends: base\n");
	assert_string_equal(t->extends_name, "base");
	assert_null(t->extends_pin);
	pipe_template_free(t);

	/* a 63-character name is the longest allowed */
	t = parse_ok("kind: AgentTemplate\nversion: 1.0.0\n"
		     "name: a12345678901234567890123456789012345678901234567890123456789012\n");
	pipe_template_free(t);
}

static void test_template__null_deletes_are_accepted(void **state)
{
	pipe_template *t;

	(void)state;
	/* null is how a child deletes an inherited key (RFC 7386) */
	t = parse_ok(HEAD "extends: base\nrole: null\ndescription: ~\n"
		     "model: {temperature: null, name: x}\nlabels: {team: null}\n"
		     "limits: {max_steps: null}\ninputs: {properties: {a: null}}\ntools: null\n"
		     "abstract: null\napiVersion: null\n");
	assert_false(t->abstract);
	pipe_template_free(t);
}

static void test_template__edges_of_ranges_are_accepted(void **state)
{
	pipe_template *t;

	(void)state;
	t = parse_ok(HEAD "model: {temperature: 0, max_tokens: 1}\n"
		     "limits: {max_steps: 1, timeout_ms: 1, memory_pages: 2}\n");
	pipe_template_free(t);
	t = parse_ok(HEAD "model: {temperature: 2.0, max_tokens: 1000000}\n"
		     "limits: {max_steps: 1000, timeout_ms: 600000, memory_pages: 65536}\n");
	pipe_template_free(t);
}

static void test_template__free_form_maps_are_not_checked(void **state)
{
	pipe_template *t;

	(void)state;
	/* Unknown-looking keys inside JSON-schema maps and args are fine. */
	t = parse_ok(HEAD
		     "tools:\n"
		     "  - name: kv_get\n"
		     "    parameters: {type: object, modle: 1, x-vendor: {deep: [1, {a: b}]}}\n"
		     "inputs: {type: object, anything: [1, 2.5, true, null], \"Weird Key\": {}}\n"
		     "outputs: {$schema: x, properties: {r: {type: string}}}\n"
		     "steps:\n"
		     "  - id: s1\n"
		     "    tool: kv_get\n"
		     "    args: {key: \"{{ inputs.k }}\", nested: {list: [\"{{name}}\"]}}\n");
	pipe_template_free(t);
}

/* ---- kind and apiVersion ------------------------------------------------ */

static void test_template__kind(void **state)
{
	(void)state;
	FAILS("name: t\nversion: 1.0.0\n", {"template.kind", 1, 1});
	FAILS("kind: Agent\nname: t\nversion: 1.0.0\n", {"template.kind", 1, 7});
	FAILS("kind: agenttemplate\nname: t\nversion: 1.0.0\n", {"template.kind", 1, 7});
	FAILS("kind: [AgentTemplate]\nname: t\nversion: 1.0.0\n", {"template.kind", 1, 7});
	FAILS(HEAD "apiVersion: agentfactory/v2\n", {"template.kind", 4, 13});
	FAILS(HEAD "apiVersion: 1\n", {"template.kind", 4, 13});
}

/* ---- unknown fields ----------------------------------------------------- */

static void test_template__unknown_field_at_every_level(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_diag *g;

	(void)state;
	FAILS(HEAD "modle: {}\n", {"template.unknown-field", 4, 1});
	FAILS(HEAD "model: {name: x, temprature: 1}\n", {"template.unknown-field", 4, 18});
	FAILS(HEAD "limits:\n  max_step: 3\n", {"template.unknown-field", 5, 3});
	FAILS(HEAD "tools:\n  - name: a\n    caps: x\n", {"template.unknown-field", 6, 5});
	FAILS(HEAD "steps:\n  - id: a\n    tool: b\n    argz: {}\n",
	      {"template.unknown-field", 7, 5});

	/* the hint suggests the closest field and lists the fields */
	g = only_finding(HEAD "modle: {}\n", &d);
	assert_non_null(strstr(g->message, "'modle'"));
	assert_non_null(strstr(g->hint, "did you mean 'model'?"));
	assert_non_null(strstr(g->hint, "kind, apiVersion, name, version"));
	pipe_diags_free(&d);

	g = only_finding(HEAD "api_version: agentfactory/v1\n", &d);
	assert_non_null(strstr(g->hint, "did you mean 'apiVersion'?"));
	pipe_diags_free(&d);

	g = only_finding(HEAD "tools: [{name: a, descripton: x}]\n", &d);
	assert_non_null(strstr(g->message, "tools[0]"));
	assert_non_null(strstr(g->hint, "did you mean 'description'?"));
	pipe_diags_free(&d);

	/* nothing close: no guess, but the list of fields */
	g = only_finding(HEAD "zzzzzz: 1\n", &d);
	assert_null(strstr(g->hint, "did you mean"));
	assert_non_null(strstr(g->hint, "fields: kind"));
	pipe_diags_free(&d);
}

/* ---- types -------------------------------------------------------------- */

static void test_template__types(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_diag *g;

	(void)state;
	/* version: 1.0 is a float in the YAML 1.2 core schema */
	FAILS("kind: AgentTemplate\nname: t\nversion: 1.0\n", {"template.type", 3, 10});
	FAILS("kind: AgentTemplate\nname: t\nversion: 1\n", {"template.type", 3, 10});
	FAILS("kind: AgentTemplate\nname: 5\nversion: 1.0.0\n", {"template.type", 2, 7});
	FAILS(HEAD "description: [a]\n", {"template.type", 4, 14});
	FAILS(HEAD "labels: [a]\n", {"template.type", 4, 9});
	FAILS(HEAD "labels: {tier: 1}\n", {"template.type", 4, 16});
	FAILS(HEAD "extends: 7\n", {"template.type", 4, 10});
	FAILS(HEAD "abstract: \"true\"\n", {"template.type", 4, 11});
	FAILS(HEAD "abstract: yes\n", {"template.type", 4, 11});
	FAILS(HEAD "instructions: {a: b}\n", {"template.type", 4, 15});
	FAILS(HEAD "model: gpt-4o\n", {"template.type", 4, 8});
	FAILS(HEAD "model: {temperature: \"0.5\"}\n", {"template.type", 4, 22});
	FAILS(HEAD "model: {max_tokens: 10.0}\n", {"template.type", 4, 21});
	FAILS(HEAD "model: {max_tokens: true}\n", {"template.type", 4, 21});
	FAILS(HEAD "tools: {name: a}\n", {"template.type", 4, 8});
	FAILS(HEAD "tools: [a]\n", {"template.type", 4, 9});
	FAILS(HEAD "tools: [{name: a, parameters: [1]}]\n", {"template.type", 4, 31});
	FAILS(HEAD "tools: [{name: a, description: null}]\n", {"template.type", 4, 32});
	FAILS(HEAD "capabilities: log\n", {"template.type", 4, 15});
	FAILS(HEAD "capabilities: [null]\n", {"template.type", 4, 16});
	FAILS(HEAD "inputs: [a]\n", {"template.type", 4, 9});
	FAILS(HEAD "outputs: 1\n", {"template.type", 4, 10});
	FAILS(HEAD "limits: {timeout_ms: 1.5}\n", {"template.type", 4, 22});
	FAILS(HEAD "steps: [{id: a, tool: b, args: x}]\n", {"template.type", 4, 32});
	FAILS(HEAD "steps: [[a]]\n", {"template.type", 4, 9});

	g = only_finding("kind: AgentTemplate\nname: t\nversion: 1.0\n", &d);
	assert_non_null(strstr(g->message, "'version' must be a string, not a float"));
	assert_non_null(strstr(g->hint, "1.0.0"));
	pipe_diags_free(&d);

	g = only_finding(HEAD "labels: {tier: 1}\n", &d);
	assert_non_null(strstr(g->message, "'labels.tier' must be a string, not an int"));
	assert_non_null(strstr(g->hint, "quote"));
	pipe_diags_free(&d);
}

static void test_template__the_template_must_be_a_map(void **state)
{
	(void)state;
	FAILS("", {"template.type", 1, 1});
	FAILS("# only a comment\n", {"template.type", 1, 1});
	FAILS("- kind: AgentTemplate\n", {"template.type", 1, 1});
	FAILS("AgentTemplate\n", {"template.type", 1, 1});
}

/* ---- required ----------------------------------------------------------- */

static void test_template__required(void **state)
{
	(void)state;
	FAILS("kind: AgentTemplate\nversion: 1.0.0\n", {"template.required", 1, 1});
	FAILS("kind: AgentTemplate\nname: t\n", {"template.required", 1, 1});
	FAILS(HEAD "tools:\n  - description: x\n", {"template.required", 5, 5});
	FAILS(HEAD "steps:\n  - tool: x\n", {"template.required", 5, 5});
	FAILS(HEAD "steps:\n  - id: x\n", {"template.required", 5, 5});
	FAILS(HEAD "steps: [{}]\n", {"template.required", 4, 9}, {"template.required", 4, 9});
}

/* ---- names and versions ------------------------------------------------- */

static void test_template__names(void **state)
{
	(void)state;
	FAILS("kind: AgentTemplate\nname: Bad\nversion: 1.0.0\n", {"template.name", 2, 7});
	FAILS("kind: AgentTemplate\nname: 9lives\nversion: 1.0.0\n", {"template.name", 2, 7});
	FAILS("kind: AgentTemplate\nname: a_b\nversion: 1.0.0\n", {"template.name", 2, 7});
	FAILS("kind: AgentTemplate\nname: \"\"\nversion: 1.0.0\n", {"template.name", 2, 7});
	/* 64 characters: one too many */
	FAILS("kind: AgentTemplate\nversion: 1.0.0\n"
	      "name: a123456789012345678901234567890123456789012345678901234567890123\n",
	      {"template.name", 3, 7});
	FAILS(HEAD "tools: [{name: Fetch}]\n", {"template.name", 4, 16});
	FAILS(HEAD "tools: [{name: http-fetch}]\n", {"template.name", 4, 16});
	FAILS(HEAD "tools: [{name: a, capability: net!}]\n", {"template.name", 4, 31});
	FAILS(HEAD "steps: [{id: 1st, tool: a}]\n", {"template.name", 4, 14});
	FAILS(HEAD "steps: [{id: a, tool: B}]\n", {"template.name", 4, 23});
	FAILS(HEAD "capabilities: [Log]\n", {"template.name", 4, 16});
	FAILS(HEAD "capabilities: [\"a b\"]\n", {"template.name", 4, 16});
	FAILS(HEAD "labels: {Team: x}\n", {"template.name", 4, 10});
	FAILS(HEAD "labels: {-x: y}\n", {"template.name", 4, 10});
	FAILS(HEAD "extends: Base\n", {"template.name", 4, 10});
	FAILS(HEAD "extends: \"@1.0.0\"\n", {"template.name", 4, 10});
	/* label keys may start with a digit and use . _ / - */
	pipe_template_free(parse_ok(HEAD "labels: {9x: a, app.kubernetes.io/name: b, a_b-c: d}\n"));
}

static void test_template__versions(void **state)
{
	(void)state;
	FAILS("kind: AgentTemplate\nname: t\nversion: 1.0.0.0\n", {"template.version", 3, 10});
	FAILS("kind: AgentTemplate\nname: t\nversion: v1.0.0\n", {"template.version", 3, 10});
	FAILS("kind: AgentTemplate\nname: t\nversion: 01.0.0\n", {"template.version", 3, 10});
	FAILS("kind: AgentTemplate\nname: t\nversion: \"1.0\"\n", {"template.version", 3, 10});
	FAILS(HEAD "extends: base@1.0\n", {"template.version", 4, 10});
	FAILS(HEAD "extends: base@~1.0.0\n", {"template.version", 4, 10});
	FAILS(HEAD "extends: base@\n", {"template.version", 4, 10});
	FAILS(HEAD "extends: base@>=1.0.0\n", {"template.version", 4, 10});
}

/* ---- ranges ------------------------------------------------------------- */

static void test_template__ranges(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_diag *g;

	(void)state;
	FAILS(HEAD "model: {temperature: -0.1}\n", {"template.range", 4, 22});
	FAILS(HEAD "model: {temperature: 2.01}\n", {"template.range", 4, 22});
	FAILS(HEAD "model: {temperature: 3}\n", {"template.range", 4, 22});
	FAILS(HEAD "model: {max_tokens: 0}\n", {"template.range", 4, 21});
	FAILS(HEAD "model: {max_tokens: 1000001}\n", {"template.range", 4, 21});
	FAILS(HEAD "limits: {max_steps: 0}\n", {"template.range", 4, 21});
	FAILS(HEAD "limits: {max_steps: 1001}\n", {"template.range", 4, 21});
	FAILS(HEAD "limits: {timeout_ms: -5}\n", {"template.range", 4, 22});
	FAILS(HEAD "limits: {timeout_ms: 600001}\n", {"template.range", 4, 22});
	FAILS(HEAD "limits: {memory_pages: 65537}\n", {"template.range", 4, 24});
	FAILS(HEAD "limits: {memory_pages: 9223372036854775807}\n", {"template.range", 4, 24});
	FAILS(HEAD "limits: {memory_pages: 1}\n", {"template.range", 4, 24});

	g = only_finding(HEAD "limits: {max_steps: 0}\n", &d);
	assert_non_null(strstr(g->message, "'limits.max_steps' is 0, outside 1..1000"));
	assert_non_null(strstr(g->hint, "1 to 1000"));
	pipe_diags_free(&d);
}

/* ---- duplicates within the file ----------------------------------------- */

static void test_template__duplicate_items(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_diag *g;

	(void)state;
	FAILS(HEAD "tools:\n  - name: a\n  - name: b\n  - name: a\n",
	      {"template.duplicate-item", 7, 11});
	FAILS(HEAD "steps:\n  - {id: s, tool: a}\n  - {id: s, tool: a}\n",
	      {"template.duplicate-item", 6, 10});
	FAILS(HEAD "capabilities: [log, clock, log, log]\n", {"template.duplicate-item", 4, 28},
	      {"template.duplicate-item", 4, 33});

	g = only_finding(HEAD "tools:\n  - name: a\n  - name: b\n  - name: a\n", &d);
	assert_non_null(strstr(g->message, "duplicate tool name 'a' (first at line 5:11)"));
	pipe_diags_free(&d);
}

/* ---- placeholders ------------------------------------------------------- */

static void test_template__malformed_placeholders(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_diag *g;

	(void)state;
	FAILS(HEAD "instructions: \"Hi {{ }}\"\n", {"template.placeholder", 4, 15});
	FAILS(HEAD "instructions: \"Hi {{ a b }}\"\n", {"template.placeholder", 4, 15});
	FAILS(HEAD "instructions: \"Hi {{name\"\n", {"template.placeholder", 4, 15});
	FAILS(HEAD "instructions: \"{{ 1x }}\"\n", {"template.placeholder", 4, 15});
	FAILS(HEAD "instructions: \"{{ a..b }}\"\n", {"template.placeholder", 4, 15});
	FAILS(HEAD "instructions: \"{{{a}}}\"\n", {"template.placeholder", 4, 15});
	FAILS(HEAD "instructions: |\n  line one\n  {{ a }} and {{ b! }}\n",
	      {"template.placeholder", 4, 15});
	FAILS(HEAD "steps: [{id: a, tool: t, args: {x: [\"{{ }}\"]}}]\n",
	      {"template.placeholder", 4, 37});

	g = only_finding(HEAD "instructions: \"Hi {{ a b }} there\"\n", &d);
	assert_non_null(strstr(g->message, "'{{ a b }}'"));
	pipe_diags_free(&d);

	/* well-formed placeholders parse (names are checked by resolve) */
	pipe_template_free(parse_ok(HEAD "instructions: \"{{a}}{{ b.c }} {{\tinputs.x-y\t}} }} {\"\n"));
}

/* ---- all findings, in document order ------------------------------------ */

static void test_template__collects_every_finding(void **state)
{
	(void)state;
	FAILS("kind: AgentTemplat\n"                        /* 1 */
	      "apiVersion: v2\n"                            /* 2 */
	      "name: Bad_Name\n"                            /* 3 */
	      "version: 1.0\n"                              /* 4 */
	      "modle: {}\n"                                 /* 5 */
	      "labels: {\"Bad Key\": x, ok: 1}\n"           /* 6 */
	      "extends: \"base@^1.x\"\n"                    /* 7 */
	      "model: {provider: 1, temprature: 3, temperature: 3, max_tokens: 0}\n" /* 8 */
	      "tools:\n"                                    /* 9 */
	      "  - {name: a, capability: \"Cap!\"}\n"       /* 10 */
	      "  - {name: a, descr: x}\n"                   /* 11 */
	      "  - {description: y}\n"                      /* 12 */
	      "  - 5\n"                                     /* 13 */
	      "capabilities: [log, log, 7]\n"               /* 14 */
	      "limits: {max_steps: 0, timeout_ms: 1.5, memory_pages: 70000, foo: 1}\n" /* 15 */
	      "steps:\n"                                    /* 16 */
	      "  - {id: s1, tool: a, args: {x: \"{{ bad name }}\"}}\n" /* 17 */
	      "  - {id: s1}\n"                              /* 18 */
	      "instructions: \"hello {{\"\n"                /* 19 */
	      "abstract: yes\n",                            /* 20 */
	      {"template.kind", 1, 7},
	      {"template.kind", 2, 13},
	      {"template.name", 3, 7},
	      {"template.type", 4, 10},
	      {"template.unknown-field", 5, 1},
	      {"template.name", 6, 10},
	      {"template.type", 6, 28},
	      {"template.version", 7, 10},
	      {"template.type", 8, 19},
	      {"template.unknown-field", 8, 22},
	      {"template.range", 8, 50},
	      {"template.range", 8, 65},
	      {"template.name", 10, 27},
	      {"template.unknown-field", 11, 15},
	      {"template.required", 12, 5},
	      {"template.type", 13, 5},
	      {"template.duplicate-item", 11, 12},
	      {"template.type", 14, 26},
	      {"template.duplicate-item", 14, 21},
	      {"template.range", 15, 21},
	      {"template.type", 15, 36},
	      {"template.range", 15, 55},
	      {"template.unknown-field", 15, 62},
	      {"template.placeholder", 17, 33},
	      {"template.required", 18, 5},
	      {"template.duplicate-item", 18, 10},
	      {"template.placeholder", 19, 15},
	      {"template.type", 20, 11});
	assert_non_null(strstr(art_error_last(), "28 errors"));
}

/* ---- YAML-level errors pass through ------------------------------------- */

static void test_template__yaml_errors_pass_through(void **state)
{
	static const char aliased[] = HEAD "tools: !append [a]\nrole: &r x\n";
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	char *big;
	int rc;

	(void)state;
	rc = pipe_template_parse(&t, "y.yaml", "kind: [\n", 8, &d);
	assert_int_equal(rc, AF_ESYNTAX);
	assert_null(t);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].rule, "yaml.syntax");
	pipe_diags_free(&d);

	rc = pipe_template_parse(&t, "y.yaml", aliased, strlen(aliased), &d);
	assert_int_equal(rc, AF_ESYNTAX);
	assert_string_equal(d.items[0].rule, "yaml.alias");
	pipe_diags_free(&d);

	big = malloc(PIPE_YAML_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, '#', PIPE_YAML_MAX_BYTES + 1);
	big[PIPE_YAML_MAX_BYTES + 1] = '\0';
	rc = pipe_template_parse(&t, "big.yaml", big, PIPE_YAML_MAX_BYTES + 1, &d);
	assert_int_equal(rc, AF_ETOOBIG);
	assert_null(t);
	assert_string_equal(d.items[0].rule, "file.too-large");
	pipe_diags_free(&d);
	free(big);

	assert_int_equal(pipe_template_parse(NULL, "x", "", 0, &d), AF_EINVAL);
	assert_int_equal(pipe_template_parse(&t, NULL, "", 0, &d), AF_EINVAL);
	pipe_template_free(NULL);
}

/* ---- hostile input ------------------------------------------------------- */

static void test_template__control_characters_are_escaped_in_messages(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_diag *g;
	char yaml[1024];

	(void)state;
	g = only_finding(HEAD "\"a\\e[31mred\\x07\": 1\n", &d);
	assert_string_equal(g->rule, "template.unknown-field");
	assert_null(strchr(g->message, '\x1b'));
	assert_null(strchr(g->message, '\x07'));
	assert_non_null(strstr(g->message, "a\\x1b[31mred\\x07"));
	pipe_diags_free(&d);

	/* a huge key is cut short in the message */
	snprintf(yaml, sizeof(yaml), HEAD "%0500d: 1\n", 0);
	yaml[strlen(HEAD)] = 'k';
	g = only_finding(yaml, &d);
	assert_true(strlen(g->message) < 200);
	assert_non_null(strstr(g->message, "..."));
	pipe_diags_free(&d);
}

static void test_template__ten_thousand_tools(void **state)
{
	art_buf b = ART_BUF_INIT;
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	int i;

	(void)state;
	assert_int_equal(art_buf_puts(&b, HEAD "tools:\n"), 0);
	for (i = 0; i < 10000; i++)
		assert_int_equal(art_buf_printf(&b, "- {name: t%d}\n", i), 0);
	assert_true(b.len < PIPE_YAML_MAX_BYTES);
	assert_int_equal(pipe_template_parse(&t, "many.yaml", b.data, b.len, &d), 0);
	assert_int_equal(pipe_node_get(t->root, "tools")->v.seq.n, 10000);
	pipe_template_free(t);

	/* one duplicate at the very end is found, and only that one */
	assert_int_equal(art_buf_puts(&b, "- {name: t5000}\n"), 0);
	assert_int_equal(pipe_template_parse(&t, "many.yaml", b.data, b.len, &d), AF_ESYNTAX);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].rule, "template.duplicate-item");
	assert_int_equal(d.items[0].line, 10005);
	assert_non_null(strstr(d.items[0].message, "first at line 5005:"));
	pipe_diags_free(&d);
	art_buf_free(&b);
}

static void test_template__deep_free_form_maps(void **state)
{
	art_buf b = ART_BUF_INIT;
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_template *t = NULL;
	int i, depth;

	(void)state;
	/* inputs nested as deep as the parser allows: fine */
	for (depth = 29; depth <= 40; depth += 11) {
		assert_int_equal(art_buf_puts(&b, HEAD "inputs: "), 0);
		for (i = 0; i < depth; i++)
			assert_int_equal(art_buf_puts(&b, "{a: "), 0);
		assert_int_equal(art_buf_puts(&b, "1"), 0);
		for (i = 0; i < depth; i++)
			assert_int_equal(art_buf_puts(&b, "}"), 0);
		assert_int_equal(art_buf_puts(&b, "\n"), 0);
		if (depth == 29) {
			assert_int_equal(pipe_template_parse(&t, "deep.yaml", b.data, b.len, &d), 0);
			pipe_template_free(t);
		} else {
			assert_int_equal(pipe_template_parse(&t, "deep.yaml", b.data, b.len, &d),
					 AF_ESYNTAX);
			assert_null(t);
			assert_string_equal(d.items[0].rule, "yaml.depth");
		}
		art_buf_free(&b);
		pipe_diags_free(&d);
	}
}

/* ---- helpers shared with resolve.c --------------------------------------- */

static void test_template__placeholder_scanner(void **state)
{
	const char *s = "a {{ x.y }} b {{z}} {{ bad }";
	pipe_placeholder ph;
	size_t pos = 0;

	(void)state;
	assert_int_equal(pipe_placeholder_next(s, strlen(s), &pos, &ph), 1);
	assert_int_equal(ph.start, 2);
	assert_int_equal(ph.len, 9);
	assert_memory_equal(s + ph.name_off, "x.y", 3);
	assert_int_equal(ph.name_len, 3);
	assert_int_equal(pipe_placeholder_next(s, strlen(s), &pos, &ph), 1);
	assert_memory_equal(s + ph.name_off, "z", 1);
	assert_int_equal(ph.name_len, 1);
	assert_int_equal(pipe_placeholder_next(s, strlen(s), &pos, &ph), AF_ESYNTAX);
	assert_int_equal(ph.start, 20);
	assert_int_equal(pipe_placeholder_next(s, strlen(s), &pos, &ph), 0);
	assert_int_equal(pos, strlen(s));

	/* a lone brace, single braces and "}}" alone are plain text */
	pos = 0;
	assert_int_equal(pipe_placeholder_next("{ } }} {", 8, &pos, &ph), 0);
	/* "{{" at the very end */
	pos = 0;
	assert_int_equal(pipe_placeholder_next("ab{{", 4, &pos, &ph), AF_ESYNTAX);
	assert_int_equal(pipe_placeholder_next("ab{{", 4, &pos, &ph), 0);
}

static void test_template__suggest_and_dups(void **state)
{
	static const char *const fields[] = {"model", "name", "steps", "tools", "apiVersion"};
	const char *keys[] = {"b", "a", NULL, "b", "c", "a", "b", NULL};
	size_t first_of[8];

	(void)state;
	assert_string_equal(pipe_template__suggest("modle", fields, 5), "model");
	assert_string_equal(pipe_template__suggest("Model", fields, 5), "model");
	assert_string_equal(pipe_template__suggest("tool", fields, 5), "tools");
	assert_string_equal(pipe_template__suggest("api_version", fields, 5), "apiVersion");
	assert_null(pipe_template__suggest("xyz", fields, 5));
	assert_null(pipe_template__suggest("", fields, 5));
	assert_null(pipe_template__suggest(NULL, fields, 5));

	assert_int_equal(pipe_template__dups(keys, 8, first_of), 3);
	assert_true(first_of[0] == SIZE_MAX && first_of[1] == SIZE_MAX);
	assert_true(first_of[2] == SIZE_MAX && first_of[7] == SIZE_MAX);
	assert_int_equal(first_of[3], 0);
	assert_true(first_of[4] == SIZE_MAX);
	assert_int_equal(first_of[5], 1);
	assert_int_equal(first_of[6], 0);
	assert_int_equal(pipe_template__dups(keys, 1, first_of), 0);
	assert_true(pipe_template_name_valid("a"));
	assert_false(pipe_template_name_valid(NULL));
	assert_false(pipe_template_name_valid("-a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template__parses_the_documented_example),
		cmocka_unit_test(test_template__minimal_and_optional_forms),
		cmocka_unit_test(test_template__null_deletes_are_accepted),
		cmocka_unit_test(test_template__edges_of_ranges_are_accepted),
		cmocka_unit_test(test_template__free_form_maps_are_not_checked),
		cmocka_unit_test(test_template__kind),
		cmocka_unit_test(test_template__unknown_field_at_every_level),
		cmocka_unit_test(test_template__types),
		cmocka_unit_test(test_template__the_template_must_be_a_map),
		cmocka_unit_test(test_template__required),
		cmocka_unit_test(test_template__names),
		cmocka_unit_test(test_template__versions),
		cmocka_unit_test(test_template__ranges),
		cmocka_unit_test(test_template__duplicate_items),
		cmocka_unit_test(test_template__malformed_placeholders),
		cmocka_unit_test(test_template__collects_every_finding),
		cmocka_unit_test(test_template__yaml_errors_pass_through),
		cmocka_unit_test(test_template__control_characters_are_escaped_in_messages),
		cmocka_unit_test(test_template__ten_thousand_tools),
		cmocka_unit_test(test_template__deep_free_form_maps),
		cmocka_unit_test(test_template__placeholder_scanner),
		cmocka_unit_test(test_template__suggest_and_dups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
