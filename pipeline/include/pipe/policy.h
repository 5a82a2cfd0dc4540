/*
 * pipe/policy.h - the policy engine: load policy files, check a resolved
 * template against them, answer grant questions for the compiled-module check.
 *
 * A policy is one or more YAML files (format: docs/policies.md) from the
 * pipeline's own configuration directory (--policies / AF_POLICIES), never
 * from the repository being checked, so a template author cannot weaken it.
 * Rules are PCRE2 patterns compiled once at load time and run with a match
 * limit, depth limit and heap limit: catastrophic backtracking on hostile
 * template text stops at the limit and is reported as an error finding (the
 * check fails closed). PCRE2 applies the match limit per start position, so
 * the total cost of a rule is bounded by its pattern: policy patterns must
 * keep a bounded cost per position (bounded gaps such as [^.]{0,80}, no
 * nested unbounded repeats); see docs/policies.md.
 *
 * Several files combine: their rules are concatenated (a rule id may appear
 * only once across all files) and their grants intersect (a capability or
 * host is allowed only if every file that declares that grant list allows
 * it), so adding a file can only tighten the policy.
 *
 * A loaded pipe_policy is immutable; checks on one policy may run from
 * several threads at once (each check uses its own PCRE2 match data).
 */
#ifndef PIPE_POLICY_H
#define PIPE_POLICY_H

#include "pipe/node.h"

#include <stdbool.h>
#include <stddef.h>

/** Largest policy file accepted, and most files taken from one directory. */
#define PIPE_POLICY_MAX_BYTES PIPE_YAML_MAX_BYTES
#define PIPE_POLICY_MAX_FILES 64
/** PCRE2 limits applied to every match (see pcre2_set_match_limit(3)). */
#define PIPE_POLICY_MATCH_LIMIT 1000000u
#define PIPE_POLICY_DEPTH_LIMIT 10000u
#define PIPE_POLICY_HEAP_LIMIT_KIB 16384u
/** Raised whenever the meaning of a policy changes without its text
 * changing (matching rules, scopes); it is part of the digest. */
#define PIPE_POLICY_ENGINE_VERSION 1
/** Matched text quoted in a finding is cut to this many characters. */
#define PIPE_POLICY_QUOTE_CHARS 60

typedef struct pipe_policy pipe_policy;

/** What a rule is matched against (docs/policies.md, "Rule kinds"). */
typedef enum pipe_policy_kind {
	PIPE_POLICY_TOOL,       /* tool names: tools[].name, steps[].tool */
	PIPE_POLICY_CAPABILITY, /* capabilities[] and tools[].capability */
	PIPE_POLICY_GRANT,      /* same targets: anything not in grants.capabilities */
	PIPE_POLICY_TEXT,       /* every string in the rule's scope */
	PIPE_POLICY_ARGS,       /* tool argument values, {{placeholders}} masked */
	PIPE_POLICY_URL         /* URLs whose host is not in grants.hosts */
} pipe_policy_kind;

/**
 * Load every policy file of a directory: the names ending in .yaml or .yml
 * (hidden files skipped), in byte order of their names, combined as described
 * at the top of this header.
 * @param[out] out    caller owns; free with pipe_policy_free. NULL on error.
 * @param[in]  dir    the policy directory (borrowed for the call only)
 * @param[out] diags  one finding per problem in a policy file, naming
 *                    file:line:col and a rule such as policy.regex
 * @return 0; AF_ENOTFOUND if dir cannot be opened or holds no policy file;
 *         AF_ETOOBIG for more than PIPE_POLICY_MAX_FILES files or a file
 *         over PIPE_POLICY_MAX_BYTES; AF_EIO; AF_ESYNTAX when any file is
 *         invalid (details in diags); AF_ENOMEM. The message of every error
 *         is also set with art_error_set.
 */
int pipe_policy_load_dir(pipe_policy **out, const char *dir, pipe_diags *diags);

/**
 * Load a policy from one buffer (for tests and embedded policies).
 * @param[out] out    caller owns; free with pipe_policy_free. NULL on error.
 * @param[in]  file   name used in marks and findings; copied
 * @param[in]  data   the YAML bytes (need not be NUL-terminated)
 * @param[out] diags  a finding per problem, as for pipe_policy_load_dir
 * @return 0, AF_ESYNTAX (invalid policy, see diags), AF_ETOOBIG (over
 *         PIPE_POLICY_MAX_BYTES), AF_EINVAL (NULL argument) or AF_ENOMEM
 */
int pipe_policy_load_buffer(pipe_policy **out, const char *file,
			    const char *data, size_t len, pipe_diags *diags);

/** Free a policy. NULL-safe. */
void pipe_policy_free(pipe_policy *p);

/**
 * The policy digest: "sha256:" + 64 hex digits over the canonical form
 * {"engine":PIPE_POLICY_ENGINE_VERSION,"policies":[doc, ...]} (each file's
 * document as JSON, jansson JSON_COMPACT | JSON_SORT_KEYS, files in load
 * order). Comments and formatting do not change it; any change to a rule or
 * a grant does, and so does a new engine version. It does not depend on the
 * directory path or the file names. Goes into build provenance.
 * @return borrowed; valid as long as p
 */
const char *pipe_policy_digest(const pipe_policy *p);

/**
 * Check a resolved template (a map as in docs/templates.md; it need not be
 * valid) against every rule. Each violation adds one finding per rule and
 * offending node: severity deny -> PIPE_SEV_ERROR, warn -> PIPE_SEV_WARNING;
 * rule = the policy rule id; message = the rule's message plus where and
 * what matched (matched text shortened to PIPE_POLICY_QUOTE_CHARS characters,
 * invisible characters escaped, secrets redacted when the rule asks);
 * mark = the offending node's file:line:col; hint = the rule's hint.
 * A pattern that hits a PCRE2 limit or fails on the text adds an error
 * finding with rule "policy.match-limit" or "policy.match-error" (fail closed).
 * @param[in]     p         the policy
 * @param[in]     resolved  the template tree; borrowed for the call only
 * @param[in,out] diags     findings are appended
 * @return 0 if the check ran (even with findings); AF_EINVAL if resolved is
 *         not a map; AF_ENOMEM
 */
int pipe_policy_check(const pipe_policy *p, const pipe_node *resolved,
		      pipe_diags *diags);

/** Number of rules (across all files). */
size_t pipe_policy_rule_count(const pipe_policy *p);

/** The id of rule i (< rule count), in load order. Borrowed; valid as long as p. */
const char *pipe_policy_rule_id(const pipe_policy *p, size_t i);

/** The kind of rule i (< rule count). */
pipe_policy_kind pipe_policy_rule_kind(const pipe_policy *p, size_t i);

/** The severity of rule i (< rule count): deny is PIPE_SEV_ERROR. */
pipe_severity pipe_policy_rule_severity(const pipe_policy *p, size_t i);

/** "tool", "capability", "grant", "text", "args" or "url". Static. */
const char *pipe_policy_kind_name(pipe_policy_kind kind);

/**
 * Whether the policy grants a host capability (used to check a compiled
 * module's imports): true only if every file that declares
 * grants.capabilities lists it (exactly, or through an entry "prefix.*"
 * matching "prefix.anything") and no deny rule of kind capability matches
 * it. False when no file declares grants.capabilities.
 */
bool pipe_policy_grants_capability(const pipe_policy *p, const char *cap);

/**
 * Whether URLs to host are allowed: true only if every file that declares
 * grants.hosts has an entry matching it, case-insensitively and ignoring one
 * trailing dot: "api.example.com" matches itself, "*.example.com" matches
 * any name below example.com (not example.com itself). False when no file
 * declares grants.hosts, and for an empty host.
 */
bool pipe_policy_allows_host(const pipe_policy *p, const char *host);

/**
 * The hosts the policy allows, as one list: the entries of the files that
 * declare grants.hosts, kept when every such file allows them (an exact
 * entry as pipe_policy_allows_host says; "*.d" when every such file has
 * "*.d" or a "*." entry above d), so the list allows exactly the
 * intersection. Lower-case, sorted (strcmp), unique. Empty when no file
 * declares grants.hosts. A build records it in the manifest of every agent
 * granted http_fetch (docs/tools.md).
 * @param[out] out  caller owns; pipe_policy_hosts_free(*out, *n). NULL when
 *                  the list is empty.
 * @return 0 or AF_ENOMEM
 */
int pipe_policy_hosts(char ***out, size_t *n, const pipe_policy *p);

/** Free a list of pipe_policy_hosts. NULL-safe. */
void pipe_policy_hosts_free(char **hosts, size_t n);

#endif
