/*
 * pipe/template.h - one agent template file: parsed, schema-checked, ready
 * for inheritance resolution (pipe/resolve.h).
 *
 * The format is docs/templates.md. pipe_template_parse checks everything a
 * single file can tell: kind/apiVersion, unknown fields at every level of the
 * fixed schema (not inside the free-form JSON-schema maps tools[].parameters,
 * inputs, outputs and steps[].args), types, name/id patterns, semantic
 * versions and pins, number ranges, duplicate tool names, step ids and
 * capabilities, label keys and placeholder syntax. It reports every finding
 * of the file, not just the first. What needs the whole chain (placeholder
 * names, step tools, completeness, duplicates created by !append) is checked
 * by pipe_resolve.
 *
 * `null` is accepted for every optional field of a map (top level, model,
 * limits, labels, free-form maps): it deletes the inherited key (RFC 7386).
 * It is refused for the fields of a tool or step (list items are never
 * merged, so a null there could only mean a mistake).
 */
#ifndef PIPE_TEMPLATE_H
#define PIPE_TEMPLATE_H

#include "art/placeholder.h"
#include "pipe/node.h"

#include <stdbool.h>
#include <stddef.h>

#define PIPE_TEMPLATE_KIND "AgentTemplate"
#define PIPE_TEMPLATE_API_VERSION "agentfactory/v1"

/* Numeric ranges (inclusive) of docs/templates.md; those of `limits:` are
 * art_limits[] (art/limits.h), shared with codegen and the runtime. */
#define PIPE_TEMPLATE_MAX_TOKENS_MAX 1000000
#define PIPE_TEMPLATE_TEMPERATURE_MAX 2.0

/** A parsed, validated template file. Every field is owned. */
typedef struct pipe_template {
	char *path;          /* repository-relative file path; ALSO the string
				every mark->file in root points to */
	char *name, *version;
	char *extends_name;  /* NULL if none */
	char *extends_pin;   /* NULL, "1.2.3" (exact) or "^1.2.3" */
	pipe_mark extends_mark; /* the value of `extends` (line 0 if none) */
	bool abstract;
	pipe_node *root;     /* the validated tree, as written (nulls kept) */
	char file_sha256[65];/* hex SHA-256 of the exact file bytes */
} pipe_template;

/**
 * Parse and validate one template file.
 *
 * @param[out] out    caller owns; free with pipe_template_free. NULL on error.
 * @param[in]  path   repository-relative path, used in every mark and
 *                    finding (copied)
 * @param[in]  data   the file bytes (need not be NUL-terminated)
 * @param[in]  len    number of bytes
 * @param[out] diags  every finding of the file is appended (file:line:col,
 *                    rule id of docs/templates.md, message, hint)
 * @return 0; AF_ESYNTAX when the file has errors (YAML or template level; the
 *         findings say which); AF_ETOOBIG for a file over
 *         PIPE_YAML_MAX_BYTES or PIPE_YAML_MAX_NODES (a file.too-large
 *         finding); AF_EINVAL for NULL arguments; AF_ENOMEM.
 */
int pipe_template_parse(pipe_template **out, const char *path, const char *data,
			size_t len, pipe_diags *diags);

/** Free a template and its tree. NULL-safe. */
void pipe_template_free(pipe_template *t);

/** True when s matches the template name pattern ^[a-z][a-z0-9-]{0,62}$. */
bool pipe_template_name_valid(const char *s);

/* ---- placeholders ------------------------------------------------------ */

/** One `{{ name }}` found in a string (art/placeholder.h: the one grammar). */
typedef art_placeholder pipe_placeholder;

/**
 * Find the next placeholder in s[*pos .. len). A placeholder is "{{",
 * optional spaces/tabs, a name (identifiers [A-Za-z_][A-Za-z0-9_-]* joined
 * by '.'), optional spaces/tabs, "}}". Every "{{" must open one.
 *
 * @param[in]     s, len  the string
 * @param[in,out] pos     where to start; advanced past what was found
 * @param[out]    out     the placeholder (on 1), or where the malformed one
 *                        starts (on AF_ESYNTAX: start, and len up to the
 *                        closing "}}" or the end of the line)
 * @return 1 found, 0 no more, AF_ESYNTAX a "{{" that opens no valid
 *         placeholder (*pos is advanced past it, so scanning can go on)
 */
int pipe_placeholder_next(const char *s, size_t len, size_t *pos, pipe_placeholder *out);

/* ---- shared with resolve.c, not public -------------------------------- */

/**
 * Find duplicates in keys[0..n). first_of[i] is set to the index of the
 * first occurrence of keys[i] when i is a later occurrence, else SIZE_MAX.
 * NULL keys are never duplicates. O(n log n).
 * @return the number of later occurrences, or AF_ENOMEM
 */
long pipe_template__dups(const char *const *keys, size_t n, size_t *first_of);

/**
 * The candidate closest to word by edit distance (optimal string alignment,
 * so a swap of two letters counts 1), if close enough to be a likely typo;
 * else NULL. Borrowed from candidates.
 */
const char *pipe_template__suggest(const char *word, const char *const *candidates,
				   size_t n);

#endif
