/*
 * pipe/node.h - a YAML document as a typed tree with source positions, and
 * the diagnostics list every front-end stage reports into.
 *
 * Scalars are typed with the YAML 1.2 core schema: a *plain* scalar that
 * reads as null (~, null), a bool (true/false), an int (decimal, 0x, 0o) or a
 * float becomes that type; every quoted or block scalar is a string. Every
 * node remembers where it came from (file:line:col, 1-based), and keeps it
 * through inheritance merges, so an error in a resolved template still names
 * the line that introduced the value.
 *
 * Hostile input: the parser refuses aliases/anchors (no billion laughs),
 * merge keys (<<), more than one document, duplicate keys, nesting deeper
 * than PIPE_YAML_MAX_DEPTH, files over PIPE_YAML_MAX_BYTES, non-UTF-8 bytes
 * and any tag except !append on a sequence.
 */
#ifndef PIPE_NODE_H
#define PIPE_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define PIPE_YAML_MAX_BYTES (256u * 1024u)
#define PIPE_YAML_MAX_DEPTH 32
#define PIPE_YAML_MAX_NODES 100000

/** A source position. file is borrowed: it must outlive every node that
 * points at it (the template set owns the file names). line/col are 1-based;
 * line 0 means "no position". */
typedef struct pipe_mark {
	const char *file;
	unsigned line;
	unsigned col;
} pipe_mark;

typedef enum pipe_node_type {
	PIPE_NODE_NULL,
	PIPE_NODE_BOOL,
	PIPE_NODE_INT,
	PIPE_NODE_REAL,
	PIPE_NODE_STRING,
	PIPE_NODE_SEQ,
	PIPE_NODE_MAP
} pipe_node_type;

/* flags */
#define PIPE_NODE_APPEND 0x1u /* a sequence tagged !append: merge by appending */

typedef struct pipe_node pipe_node;

typedef struct pipe_map_entry {
	char *key;           /* owned, NUL-terminated UTF-8 */
	pipe_mark key_mark;  /* where the key was written */
	pipe_node *value;    /* owned */
} pipe_map_entry;

struct pipe_node {
	pipe_node_type type;
	unsigned flags;
	pipe_mark mark;
	union {
		bool b;
		long long i;
		double r;
		struct {
			char *ptr;   /* owned, NUL-terminated */
			size_t len;
		} s;
		struct {
			pipe_node **items; /* owned */
			size_t n, cap;
		} seq;
		struct {
			pipe_map_entry *entries; /* owned, in document order */
			size_t n, cap;
		} map;
	} v;
};

/* ---- diagnostics ---------------------------------------------------- */

typedef enum pipe_severity {
	PIPE_SEV_ERROR = 0,
	PIPE_SEV_WARNING = 1
} pipe_severity;

/** One finding: where, which rule, what is wrong, what to do. */
typedef struct pipe_diag {
	pipe_severity severity;
	char *file;     /* owned; may be NULL */
	unsigned line;  /* 0 = whole file */
	unsigned col;
	char *rule;     /* owned, stable id, e.g. "yaml.syntax", "template.unknown-field" */
	char *message;  /* owned */
	char *hint;     /* owned; may be NULL: what the user should do */
} pipe_diag;

typedef struct pipe_diags {
	pipe_diag *items;
	size_t n, cap;
} pipe_diags;

#define PIPE_DIAGS_INIT {NULL, 0, 0}

/**
 * Add a finding. mark may be NULL (then file may name the file, or be NULL).
 * @return 0 or AF_ENOMEM
 */
int pipe_diags_add(pipe_diags *d, pipe_severity sev, const pipe_mark *mark,
		   const char *rule, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/** As pipe_diags_add with an explicit file and no line. */
int pipe_diags_add_file(pipe_diags *d, pipe_severity sev, const char *file,
			const char *rule, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/** Number of findings with severity PIPE_SEV_ERROR. */
size_t pipe_diags_errors(const pipe_diags *d);

/**
 * Print "file:line:col: error[rule]: message" and an indented "hint: ..."
 * line per finding.
 */
void pipe_diags_print(const pipe_diags *d, FILE *out);

/** The findings as a JSON array of objects (file, line, col, severity, rule,
 * message, hint). Caller owns the reference; NULL on OOM. */
json_t *pipe_diags_to_json(const pipe_diags *d);

/** Free every finding and reset d. NULL-safe. */
void pipe_diags_free(pipe_diags *d);

/* ---- parsing ---------------------------------------------------------- */

/**
 * Parse one YAML document into a tree.
 * @param[out] out   caller owns; free with pipe_node_free. NULL on error.
 * @param[in]  data  the bytes (need not be NUL-terminated)
 * @param[in]  file  the name used in marks and messages; borrowed, must
 *                   outlive the tree
 * @param[out] diags a finding is added for every error (with file:line:col)
 * @return 0, AF_ESYNTAX (the finding says why), AF_ETOOBIG or AF_ENOMEM
 */
int pipe_yaml_parse(pipe_node **out, const char *data, size_t len,
		    const char *file, pipe_diags *diags);

/* ---- tree access and construction ------------------------------------- */

/** Free a tree. NULL-safe. */
void pipe_node_free(pipe_node *n);

/** Deep copy (marks and flags are copied, file names stay borrowed). NULL on OOM. */
pipe_node *pipe_node_clone(const pipe_node *n);

/** Deep copy without flags (e.g. no !append): for trees that are never merged
 * again, such as a resolved template. NULL on OOM. */
pipe_node *pipe_node_clone_plain(const pipe_node *n);

/** The value under key in a map, or NULL (also when n is not a map). Borrowed. */
pipe_node *pipe_node_get(const pipe_node *map, const char *key);

/** The map entry for key, or NULL. Borrowed. */
pipe_map_entry *pipe_node_entry(const pipe_node *map, const char *key);

/** The string value under key, or NULL when absent or not a string. Borrowed. */
const char *pipe_node_get_str(const pipe_node *map, const char *key);

/** "null", "bool", "int", "float", "string", "list", "map". */
const char *pipe_node_type_name(pipe_node_type t);

/** New nodes; NULL on OOM. mark may be NULL. */
pipe_node *pipe_node_new(pipe_node_type type, const pipe_mark *mark);
pipe_node *pipe_node_new_str(const char *s, size_t len, const pipe_mark *mark);

/** Append item to a sequence (takes ownership, also on failure). */
int pipe_node_seq_push(pipe_node *seq, pipe_node *item);

/** Set key in a map: replaces an existing value (freed) or appends.
 * Takes ownership of value, also on failure. @return 0 or AF_ENOMEM */
int pipe_node_map_set(pipe_node *map, const char *key, const pipe_mark *key_mark,
		      pipe_node *value);

/** Append key to a map without looking for it first: the caller guarantees
 * the key is not there (O(1), where pipe_node_map_set is O(n)). Takes
 * ownership of value, also on failure. @return 0 or AF_ENOMEM */
int pipe_node_map_append(pipe_node *map, const char *key, const pipe_mark *key_mark,
			 pipe_node *value);

/** Remove key from a map (frees its value). @return true if it was there. */
bool pipe_node_map_remove(pipe_node *map, const char *key);

/**
 * Convert to JSON (marks and flags dropped). Caller owns the reference.
 * @return NULL on OOM or on a non-finite float.
 */
json_t *pipe_node_to_json(const pipe_node *n);

/** json_dumps() that never returns a damaged text: jansson 2.14 ignores a
 * failed write of an object key (dump.c, dump_string's result), so with one
 * failed allocation json_dumps returns `{:1}`-like text instead of NULL. Here
 * the first failed write fails every later one, and the whole dump. Shared by
 * the pipeline's digests (canonical form, policy digest), not public.
 * @return the text (caller frees) or NULL on OOM */
char *pipe_json__dumps(const json_t *j, size_t flags);

#endif
