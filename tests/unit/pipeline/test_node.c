/*
 * test_node.c - the YAML reader: typing, positions, and every refusal of
 * hostile or malformed input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "pipe/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pipe_node *parse_ok(const char *yaml)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_node *n = NULL;
	int rc = pipe_yaml_parse(&n, yaml, strlen(yaml), "t.yaml", &d);

	if (rc != 0)
		pipe_diags_print(&d, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 0);
	pipe_diags_free(&d);
	return n;
}

/* Parses input expected to fail; checks the rule and position of the finding. */
static void parse_fails(const char *yaml, size_t len, const char *rule, unsigned line, unsigned col)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_node *n = NULL;
	int rc = pipe_yaml_parse(&n, yaml, len, "bad.yaml", &d);

	assert_true(rc < 0);
	assert_null(n);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].rule, rule);
	assert_string_equal(d.items[0].file, "bad.yaml");
	if (line) {
		assert_int_equal(d.items[0].line, line);
		assert_int_equal(d.items[0].col, col);
	}
	assert_non_null(strstr(art_error_last(), "bad.yaml"));
	pipe_diags_free(&d);
}

static void test_node__core_schema_typing(void **state)
{
	pipe_node *n = parse_ok("a: 1\nb: -0x1F\nc: 0o17\nd: 1.5\ne: 2e3\nf: true\ng: False\n"
				"h: ~\ni: null\nj: '1'\nk: \"true\"\nl: 1.0.0\nm: hello world\nn:\n"
				"o: |\n  text\n");
	(void)state;
	assert_int_equal(n->type, PIPE_NODE_MAP);
	assert_int_equal(pipe_node_get(n, "a")->type, PIPE_NODE_INT);
	assert_int_equal(pipe_node_get(n, "a")->v.i, 1);
	assert_int_equal(pipe_node_get(n, "b")->type, PIPE_NODE_STRING); /* -0x is not core int */
	assert_int_equal(pipe_node_get(n, "c")->v.i, 15);
	assert_int_equal(pipe_node_get(n, "d")->type, PIPE_NODE_REAL);
	assert_true(pipe_node_get(n, "d")->v.r == 1.5);
	assert_true(pipe_node_get(n, "e")->v.r == 2000.0);
	assert_int_equal(pipe_node_get(n, "f")->type, PIPE_NODE_BOOL);
	assert_true(pipe_node_get(n, "f")->v.b);
	assert_false(pipe_node_get(n, "g")->v.b);
	assert_int_equal(pipe_node_get(n, "h")->type, PIPE_NODE_NULL);
	assert_int_equal(pipe_node_get(n, "i")->type, PIPE_NODE_NULL);
	assert_string_equal(pipe_node_get_str(n, "j"), "1");
	assert_string_equal(pipe_node_get_str(n, "k"), "true");
	assert_string_equal(pipe_node_get_str(n, "l"), "1.0.0");
	assert_string_equal(pipe_node_get_str(n, "m"), "hello world");
	assert_int_equal(pipe_node_get(n, "n")->type, PIPE_NODE_NULL);
	assert_string_equal(pipe_node_get_str(n, "o"), "text\n");
	pipe_node_free(n);
}

static void test_node__marks_are_one_based(void **state)
{
	pipe_node *n = parse_ok("name: x\nmodel:\n  provider: openai\n  list: [a, b]\n");
	pipe_map_entry *e;
	pipe_node *model, *list;

	(void)state;
	e = pipe_node_entry(n, "model");
	assert_non_null(e);
	assert_int_equal(e->key_mark.line, 2);
	assert_int_equal(e->key_mark.col, 1);
	model = e->value;
	assert_int_equal(pipe_node_get(model, "provider")->mark.line, 3);
	assert_int_equal(pipe_node_get(model, "provider")->mark.col, 13);
	list = pipe_node_get(model, "list");
	assert_int_equal(list->type, PIPE_NODE_SEQ);
	assert_int_equal(list->v.seq.n, 2);
	assert_int_equal(list->v.seq.items[1]->mark.line, 4);
	assert_int_equal(list->v.seq.items[1]->mark.col, 13);
	assert_string_equal(list->mark.file, "t.yaml");
	pipe_node_free(n);
}

static void test_node__append_tag_sets_flag(void **state)
{
	pipe_node *n = parse_ok("tools: !append\n  - a\nplain: [b]\n");

	(void)state;
	assert_true(pipe_node_get(n, "tools")->flags & PIPE_NODE_APPEND);
	assert_false(pipe_node_get(n, "plain")->flags & PIPE_NODE_APPEND);
	pipe_node_free(n);
}

static void test_node__empty_document_is_null(void **state)
{
	pipe_node *n = parse_ok("# only a comment\n");

	(void)state;
	assert_int_equal(n->type, PIPE_NODE_NULL);
	pipe_node_free(n);
}

static void test_node__refuses_hostile_input(void **state)
{
	const char *s;
	(void)state;

	s = "a: &x [1]\nb: *x\n";
	parse_fails(s, strlen(s), "yaml.alias", 1, 4);
	s = "a: 1\nb: *x\n";
	parse_fails(s, strlen(s), "yaml.alias", 2, 4); /* even an undefined one */
	s = "base: {a: 1}\nchild:\n  <<: {b: 2}\n";
	parse_fails(s, strlen(s), "yaml.alias", 3, 3);
	s = "a: !!python/object:os.system x\n";
	parse_fails(s, strlen(s), "yaml.tag", 1, 4);
	s = "a: !append {b: 1}\n";
	parse_fails(s, strlen(s), "yaml.tag", 1, 4);
	s = "a: !appendx [1]\n";
	parse_fails(s, strlen(s), "yaml.tag", 1, 4);
	s = "a: 1\nb: 2\na: 3\n";
	parse_fails(s, strlen(s), "yaml.duplicate-key", 3, 1);
	s = "a: 1\n---\nb: 2\n";
	parse_fails(s, strlen(s), "yaml.multi-document", 2, 1);
	s = "a: [1, 2\n";
	parse_fails(s, strlen(s), "yaml.syntax", 0, 0);
	s = "a: b: c\n";
	parse_fails(s, strlen(s), "yaml.syntax", 1, 5);
	s = "a: \"x\\0y\"\n";
	parse_fails(s, strlen(s), "file.encoding", 1, 4);
	s = "? [a]\n: 1\n";
	parse_fails(s, strlen(s), "yaml.key", 1, 3);
	s = "a: .inf\n";
	parse_fails(s, strlen(s), "yaml.number", 1, 4);
	s = "a: 99999999999999999999\n";
	parse_fails(s, strlen(s), "yaml.number", 1, 4);
	s = "ok: 1\nbad: \"caf\xc3\x28\"\n";
	parse_fails(s, strlen(s), "file.encoding", 2, 10);
	s = "a: \xed\xa0\x80\n"; /* UTF-16 surrogate encoded in UTF-8 */
	parse_fails(s, strlen(s), "file.encoding", 1, 4);
	s = "a: \xc0\xaf\n"; /* overlong */
	parse_fails(s, strlen(s), "file.encoding", 1, 4);
	s = "a: 1\x00\n";
	parse_fails(s, 6, "file.encoding", 0, 0);
	/* A byte order mark: invisible, and the bytes signed are not what an
	 * editor shows; refused like any other encoding problem. */
	s = "\xef\xbb\xbf" "a: 1\n";
	parse_fails(s, strlen(s), "file.encoding", 1, 1);
	s = "\xef\xbb\xbf";
	parse_fails(s, strlen(s), "file.encoding", 1, 1);
}

static void test_node__depth_cap(void **state)
{
	char buf[512];
	size_t i, pos = 0;

	(void)state;
	for (i = 0; i < 40; i++)
		buf[pos++] = '[';
	for (i = 0; i < 40; i++)
		buf[pos++] = ']';
	buf[pos++] = '\n';
	parse_fails(buf, pos, "yaml.depth", 1, PIPE_YAML_MAX_DEPTH + 1);
}

static void test_node__size_cap(void **state)
{
	size_t len = PIPE_YAML_MAX_BYTES + 1;
	char *big = malloc(len);
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_node *n = NULL;

	(void)state;
	assert_non_null(big);
	memset(big, '#', len);
	assert_int_equal(pipe_yaml_parse(&n, big, len, "big.yaml", &d), AF_ETOOBIG);
	assert_string_equal(d.items[0].rule, "file.too-large");
	pipe_diags_free(&d);
	free(big);
}

static void test_node__node_count_cap(void **state)
{
	/* 150,000 one-byte list items fit in 256 KiB but exceed the node cap. */
	size_t n_items = 120000, i, pos = 0;
	char *buf = malloc(n_items * 2 + 4);
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_node *n = NULL;

	(void)state;
	assert_non_null(buf);
	buf[pos++] = '[';
	for (i = 0; i < n_items; i++) {
		buf[pos++] = '1';
		buf[pos++] = ',';
	}
	buf[pos - 1] = ']';
	assert_true(pos <= PIPE_YAML_MAX_BYTES);
	assert_int_equal(pipe_yaml_parse(&n, buf, pos, "many.yaml", &d), AF_ETOOBIG);
	assert_null(n);
	pipe_diags_free(&d);
	free(buf);
}

static void test_node__many_keys_duplicate_found(void **state)
{
	/* 20,000 distinct keys then a repeat of an early one: found, with position. */
	size_t n = 20000, i, pos = 0, cap = n * 16 + 64;
	char *buf = malloc(cap);
	pipe_node *root;
	pipe_diags d = PIPE_DIAGS_INIT;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < n; i++)
		pos += (size_t)snprintf(buf + pos, cap - pos, "k%zu: 1\n", i);
	assert_int_equal(pipe_yaml_parse(&root, buf, pos, "many.yaml", &d), 0);
	assert_int_equal(root->v.map.n, n);
	assert_non_null(pipe_node_get(root, "k19999"));
	pipe_node_free(root);
	pos += (size_t)snprintf(buf + pos, cap - pos, "k7: 2\n");
	assert_int_equal(pipe_yaml_parse(&root, buf, pos, "many.yaml", &d), AF_ESYNTAX);
	assert_string_equal(d.items[0].rule, "yaml.duplicate-key");
	assert_int_equal(d.items[0].line, n + 1);
	pipe_diags_free(&d);
	free(buf);
}

static void test_node__clone_set_remove_json(void **state)
{
	pipe_node *n = parse_ok("b: 2\na: [x, 1.5, true, null]\nc: {d: e}\n");
	pipe_node *c = pipe_node_clone(n);
	json_t *j;
	char *s;

	(void)state;
	assert_non_null(c);
	assert_true(pipe_node_map_remove(c, "b"));
	assert_false(pipe_node_map_remove(c, "b"));
	assert_int_equal(pipe_node_map_set(c, "z", NULL, pipe_node_new_str("q", 1, NULL)), 0);
	assert_int_equal(pipe_node_map_set(c, "a", NULL, pipe_node_new(PIPE_NODE_NULL, NULL)), 0);
	j = pipe_node_to_json(c);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"a\":null,\"c\":{\"d\":\"e\"},\"z\":\"q\"}");
	free(s);
	json_decref(j);
	/* the original is untouched */
	j = pipe_node_to_json(n);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"a\":[\"x\",1.5,true,null],\"b\":2,\"c\":{\"d\":\"e\"}}");
	free(s);
	json_decref(j);
	pipe_node_free(c);
	pipe_node_free(n);
}

static void test_node__diags_print_and_json(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_mark m = {"f.yaml", 3, 7};
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	json_t *j;

	(void)state;
	assert_int_equal(pipe_diags_add(&d, PIPE_SEV_ERROR, &m, "r.one", "do this", "bad %d", 42), 0);
	assert_int_equal(pipe_diags_add_file(&d, PIPE_SEV_WARNING, "g.yaml", "r.two", NULL, "meh"), 0);
	assert_int_equal(pipe_diags_errors(&d), 1);
	pipe_diags_print(&d, mem);
	fclose(mem);
	assert_string_equal(buf, "f.yaml:3:7: error[r.one]: bad 42\n    hint: do this\n"
				 "g.yaml: warning[r.two]: meh\n");
	free(buf);
	j = pipe_diags_to_json(&d);
	assert_int_equal(json_array_size(j), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "line")), 3);
	assert_true(json_is_null(json_object_get(json_array_get(j, 1), "hint")) ||
		    json_object_get(json_array_get(j, 1), "hint") == NULL);
	json_decref(j);
	pipe_diags_free(&d);
}

/* More of the YAML 1.2 core schema: exponents, signs, the edges that stay
 * strings, and numbers refused (out of range, not finite). */
static void test_node__core_schema_edges(void **state)
{
	pipe_node *n = parse_ok("a: 1e+5\nb: 1E-2\nc: .5\nd: -3.\ne: 1e\nf: 1e+\ng: +7\nh: -0\n"
				"i: 0xFF\nj: 0x\nk: 0o\nl: TRUE\nm: NULL\nn: Null\no: 1.5x\np: .\n"
				"q: !!str 12\nr: \"\"\n");
	pipe_node *t;

	(void)state;
	assert_true(pipe_node_get(n, "a")->type == PIPE_NODE_REAL && pipe_node_get(n, "a")->v.r == 1e5);
	assert_true(pipe_node_get(n, "b")->type == PIPE_NODE_REAL && pipe_node_get(n, "b")->v.r == 0.01);
	assert_true(pipe_node_get(n, "c")->type == PIPE_NODE_REAL && pipe_node_get(n, "c")->v.r == 0.5);
	assert_true(pipe_node_get(n, "d")->type == PIPE_NODE_REAL && pipe_node_get(n, "d")->v.r == -3.0);
	assert_string_equal(pipe_node_get_str(n, "e"), "1e");
	assert_string_equal(pipe_node_get_str(n, "f"), "1e+");
	assert_true(pipe_node_get(n, "g")->type == PIPE_NODE_INT && pipe_node_get(n, "g")->v.i == 7);
	assert_true(pipe_node_get(n, "h")->type == PIPE_NODE_INT && pipe_node_get(n, "h")->v.i == 0);
	assert_int_equal(pipe_node_get(n, "i")->v.i, 255);
	assert_string_equal(pipe_node_get_str(n, "j"), "0x");
	assert_string_equal(pipe_node_get_str(n, "k"), "0o");
	assert_true(pipe_node_get(n, "l")->type == PIPE_NODE_BOOL && pipe_node_get(n, "l")->v.b);
	assert_int_equal(pipe_node_get(n, "m")->type, PIPE_NODE_NULL);
	assert_int_equal(pipe_node_get(n, "n")->type, PIPE_NODE_NULL);
	assert_string_equal(pipe_node_get_str(n, "o"), "1.5x");
	assert_string_equal(pipe_node_get_str(n, "p"), ".");
	assert_string_equal(pipe_node_get_str(n, "q"), "12"); /* tagged: stays a string */
	assert_string_equal(pipe_node_get_str(n, "r"), "");
	/* accessors on what is not a map, names of every type */
	t = pipe_node_get(n, "a");
	assert_null(pipe_node_get(t, "x"));
	assert_null(pipe_node_get(NULL, "x"));
	assert_null(pipe_node_get_str(n, "a")); /* not a string */
	assert_null(pipe_node_entry(t, "x"));
	assert_false(pipe_node_map_remove(t, "x"));
	assert_false(pipe_node_map_remove(n, "absent"));
	assert_string_equal(pipe_node_type_name(PIPE_NODE_NULL), "null");
	assert_string_equal(pipe_node_type_name(PIPE_NODE_BOOL), "bool");
	assert_string_equal(pipe_node_type_name(PIPE_NODE_INT), "int");
	assert_string_equal(pipe_node_type_name(PIPE_NODE_REAL), "float");
	assert_string_equal(pipe_node_type_name(PIPE_NODE_STRING), "string");
	assert_string_equal(pipe_node_type_name(PIPE_NODE_SEQ), "list");
	assert_string_equal(pipe_node_type_name(PIPE_NODE_MAP), "map");
	pipe_node_free(n);
	pipe_node_free(NULL);

	parse_fails("a: 99999999999999999999\n", 24, "yaml.number", 1, 4);
	parse_fails("a: -99999999999999999999\n", 25, "yaml.number", 1, 4);
	parse_fails("a: 1e999\n", 9, "yaml.number", 1, 4);
	parse_fails("a: .inf\n", 8, "yaml.number", 1, 4);
	parse_fails("a: -.Inf\n", 9, "yaml.number", 1, 4);
	parse_fails("a: .NaN\n", 8, "yaml.number", 1, 4);
	parse_fails("a: !custom x\n", 13, "yaml.tag", 1, 4);
	parse_fails("a: &x 1\n", 8, "yaml.alias", 1, 4);
	parse_fails("a: &x [1]\n", 10, "yaml.alias", 1, 4);
	parse_fails("a: &x {b: 1}\n", 13, "yaml.alias", 1, 4);
	parse_fails("&k a: 1\n", 8, "yaml.key", 0, 0); /* keys are plain strings */
}

/* Findings without a file or a line print as such; a to_json of an empty list. */
static void test_node__diags_without_place(void **state)
{
	pipe_diags d = PIPE_DIAGS_INIT;
	pipe_mark nofile = {NULL, 0, 0};
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	json_t *j;

	(void)state;
	j = pipe_diags_to_json(&d);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	assert_int_equal(pipe_diags_add(&d, PIPE_SEV_WARNING, NULL, NULL, NULL, "no place"), 0);
	assert_int_equal(pipe_diags_add(&d, PIPE_SEV_ERROR, &nofile, "r.x", NULL, "no file"), 0);
	assert_int_equal(pipe_diags_add_file(&d, PIPE_SEV_ERROR, NULL, "r.y", "h", "%s", "nothing"), 0);
	assert_int_equal(pipe_diags_errors(&d), 2);
	pipe_diags_print(&d, mem);
	fclose(mem);
	assert_string_equal(buf, "warning[error]: no place\nerror[r.x]: no file\n"
				 "error[r.y]: nothing\n    hint: h\n");
	free(buf);
	j = pipe_diags_to_json(&d);
	assert_int_equal(json_array_size(j), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "rule")), "error");
	json_decref(j);
	pipe_diags_free(&d);
	pipe_diags_free(&d); /* twice: harmless */
	pipe_diags_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node__core_schema_typing),
		cmocka_unit_test(test_node__marks_are_one_based),
		cmocka_unit_test(test_node__append_tag_sets_flag),
		cmocka_unit_test(test_node__empty_document_is_null),
		cmocka_unit_test(test_node__refuses_hostile_input),
		cmocka_unit_test(test_node__depth_cap),
		cmocka_unit_test(test_node__size_cap),
		cmocka_unit_test(test_node__node_count_cap),
		cmocka_unit_test(test_node__many_keys_duplicate_found),
		cmocka_unit_test(test_node__clone_set_remove_json),
		cmocka_unit_test(test_node__diags_print_and_json),
		cmocka_unit_test(test_node__core_schema_edges),
		cmocka_unit_test(test_node__diags_without_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
