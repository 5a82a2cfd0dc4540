/*
 * pipe/resolve.h - the template catalog and inheritance resolution.
 *
 * A catalog holds every template of a repository by name. pipe_resolve walks
 * a template's `extends` chain (at most PIPE_RESOLVE_MAX_CHAIN templates),
 * merges from the root ancestor down (maps deep-merge with RFC 7386 null
 * deletion, scalars override, lists replace unless tagged !append), checks
 * what only the whole chain can tell (duplicates created by appending,
 * placeholder names, step tools, completeness of a concrete template) and
 * produces the canonical JSON form and its digest. docs/templates.md is the
 * contract.
 *
 * Lifetimes: a resolved tree's marks point into the catalog's templates, so
 * a pipe_resolved must not outlive the catalog it came from.
 */
#ifndef PIPE_RESOLVE_H
#define PIPE_RESOLVE_H

#include "pipe/node.h"
#include "pipe/template.h"

#include <stdbool.h>
#include <stddef.h>

/** The longest chain: the template and 7 ancestors. */
#define PIPE_RESOLVE_MAX_CHAIN 8

/** A set of templates, unique by name. */
typedef struct pipe_catalog pipe_catalog;

/**
 * New empty catalog.
 * @param[out] out  caller owns; free with pipe_catalog_free
 * @return 0 or AF_ENOMEM
 */
int pipe_catalog_new(pipe_catalog **out);

/** Free a catalog and every template in it. NULL-safe. */
void pipe_catalog_free(pipe_catalog *c);

/**
 * Add a template. Takes ownership of t in every case (it is freed when it
 * cannot be added), so t must not be used after the call.
 * @param[out] diags  on a duplicate name, a finding template.duplicate-name
 *                    at the second template's `name`, naming both files
 * @return 0; AF_EEXISTS when a template with that name is already in the
 *         catalog (the first one stays); AF_EINVAL for a NULL argument or a
 *         template without a name; AF_ENOMEM
 */
int pipe_catalog_add(pipe_catalog *c, pipe_template *t, pipe_diags *diags);

/** Number of templates. NULL-safe (0). */
size_t pipe_catalog_count(const pipe_catalog *c);

/**
 * The i-th template in name order (strcmp), or NULL when i is out of range.
 * Borrowed: valid until the catalog is freed.
 */
const pipe_template *pipe_catalog_at(const pipe_catalog *c, size_t i);

/** The template with this name, or NULL. Borrowed, as pipe_catalog_at. */
const pipe_template *pipe_catalog_find(const pipe_catalog *c, const char *name);

/**
 * The names of every template whose `extends` chain contains name, the
 * template itself included, in name order: what to rebuild when name
 * changes. Chains are followed by name only (pins are not checked) and cut
 * at PIPE_RESOLVE_MAX_CHAIN templates or a loop, so a broken chain still
 * lists its members.
 * @param[out] out      caller owns the array (free()); the strings are
 *                      borrowed from the catalog. NULL when *out_len is 0.
 * @param[out] out_len  number of names (0 when name is not in the catalog
 *                      and no template extends it)
 * @return 0, AF_EINVAL or AF_ENOMEM
 */
int pipe_catalog_dependants(const char ***out, size_t *out_len, const pipe_catalog *c,
			    const char *name);

/** A template with its inheritance resolved. Every field is owned. */
typedef struct pipe_resolved {
	char *name, *version;
	bool abstract;
	pipe_node *root;       /* merged tree; marks point into the catalog's
				  templates (valid while the catalog lives) */
	char **chain;          /* "name@version", the template first, the root
				  ancestor last */
	size_t chain_len;
	char *canonical;       /* canonical JSON (NUL-terminated) */
	size_t canonical_len;
	char digest[72];       /* "sha256:<64 hex>" of canonical */
} pipe_resolved;

/**
 * Resolve one template of the catalog.
 *
 * Chain errors (extends.missing, extends.version, extends.cycle,
 * extends.depth) are reported at the `extends` value of the template that
 * introduced them. After merging: template.duplicate-item (from !append),
 * and for concrete templates template.placeholder, template.step-tool and
 * template.incomplete. Every finding of the resolution is reported.
 *
 * @param[out] out    caller owns; free with pipe_resolved_free. NULL on error.
 * @param[in]  c      the catalog; must outlive *out
 * @param[in]  name   the template to resolve
 * @param[out] diags  findings are appended
 * @return 0; AF_ESYNTAX when findings were reported; AF_ENOTFOUND when no
 *         template has that name (no finding, the message says so);
 *         AF_EINVAL for NULL arguments; AF_ENOMEM
 */
int pipe_resolve(pipe_resolved **out, const pipe_catalog *c, const char *name,
		 pipe_diags *diags);

/** Free a resolved template. NULL-safe. */
void pipe_resolved_free(pipe_resolved *r);

#endif
