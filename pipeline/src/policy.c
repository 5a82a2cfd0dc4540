/*
 * policy.c - the policy engine: policy files -> compiled rules -> findings
 * on a resolved template.
 *
 * Loading parses each policy file with pipe_yaml_parse, validates every
 * field (collecting all problems, each naming file:line:col), and compiles
 * each pattern once with PCRE2 (UTF + Unicode properties). The parsed trees
 * are kept for the policy's lifetime: rule ids, messages and the file names
 * that marks point to are borrowed from them.
 *
 * Checking walks the resolved template once for names (tools, steps,
 * capabilities) and once over every string scalar and map key, classifying
 * each by its path into a scope (instructions, tools.description, steps.args,
 * ...). Every pcre2_match runs under the match/depth/heap limits of one
 * shared, read-only match context; a limit hit becomes an error finding, so a
 * hostile template can neither hang the pipeline nor slip through unchecked.
 *
 * Invariants: a loaded policy is never modified (checks may run in parallel);
 * a finding never prints more than PIPE_POLICY_QUOTE_CHARS characters of
 * template text, never raw control or bidi characters, and never a secret
 * when its rule says redact.
 */
#include "pipe/policy.h"

#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"
#include "textnorm.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- scopes ------------------------------------------------------------ */

enum {
	SCOPE_DESCRIPTION = 1u << 0,
	SCOPE_ROLE = 1u << 1,
	SCOPE_GOAL = 1u << 2,
	SCOPE_INSTRUCTIONS = 1u << 3,
	SCOPE_LABELS = 1u << 4,
	SCOPE_TOOLS_DESCRIPTION = 1u << 5,
	SCOPE_TOOLS_SCHEMA = 1u << 6,
	SCOPE_TOOLS_VALUES = 1u << 7,
	SCOPE_STEPS_DESCRIPTION = 1u << 8,
	SCOPE_STEPS_ARGS = 1u << 9,
	SCOPE_INPUTS = 1u << 10,
	SCOPE_OUTPUTS = 1u << 11,
	SCOPE_OTHER = 1u << 12,
	SCOPE_ALL = (1u << 13) - 1u
};

static const struct scope_name {
	const char *name;
	unsigned bits;
} scope_names[] = {
	{"all", SCOPE_ALL},
	{"description", SCOPE_DESCRIPTION},
	{"role", SCOPE_ROLE},
	{"goal", SCOPE_GOAL},
	{"instructions", SCOPE_INSTRUCTIONS},
	{"labels", SCOPE_LABELS},
	{"tools.description", SCOPE_TOOLS_DESCRIPTION},
	{"tools.schema", SCOPE_TOOLS_SCHEMA},
	{"tools.values", SCOPE_TOOLS_VALUES},
	{"steps.description", SCOPE_STEPS_DESCRIPTION},
	{"steps.args", SCOPE_STEPS_ARGS},
	{"inputs", SCOPE_INPUTS},
	{"outputs", SCOPE_OUTPUTS},
	{"other", SCOPE_OTHER},
};

#define N_SCOPE_NAMES (sizeof(scope_names) / sizeof(scope_names[0]))

/* ---- data ---------------------------------------------------------------- */

static const char *const kind_names[] = {
	[PIPE_POLICY_TOOL] = "tool",
	[PIPE_POLICY_CAPABILITY] = "capability",
	[PIPE_POLICY_GRANT] = "grant",
	[PIPE_POLICY_TEXT] = "text",
	[PIPE_POLICY_ARGS] = "args",
	[PIPE_POLICY_URL] = "url",
};

#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

typedef struct policy_rule {
	const char *id;       /* borrowed from the file's tree */
	const char *message;  /* borrowed */
	const char *hint;     /* borrowed; may be NULL */
	pipe_policy_kind kind;
	pipe_severity severity;
	bool redact;
	unsigned scopes;      /* text, args, url: SCOPE_* bits */
	pcre2_code *re;       /* owned; NULL for grant rules and invalid ones */
	uint32_t host_group;  /* url: number of the (?<host>...) group */
	pipe_mark mark;       /* the id's position (for duplicate-id errors) */
} policy_rule;

typedef struct policy_file {
	char *name;            /* owned; every mark of tree points to it */
	pipe_node *tree;       /* owned; NULL if the file did not parse */
	const pipe_node *caps; /* grants.capabilities (a list) or NULL; borrowed */
	const pipe_node *hosts;/* grants.hosts (a list) or NULL; borrowed */
} policy_file;

struct pipe_policy {
	policy_rule *rules;
	size_t nrules, rules_cap;
	policy_file *files;
	size_t nfiles, files_cap;
	pcre2_match_context *mctx;
	uint32_t ovector_pairs; /* enough for the rule with most groups */
	char digest[sizeof("sha256:") + ART_SHA256_HEX_LEN];
};

/* ---- small helpers ------------------------------------------------------- */

static int grow_rules(pipe_policy *p)
{
	size_t ncap = p->rules_cap ? p->rules_cap * 2 : 16;
	policy_rule *n;

	if (p->nrules < p->rules_cap)
		return 0;
	n = realloc(p->rules, ncap * sizeof(*n));
	if (!n)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	p->rules = n;
	p->rules_cap = ncap;
	return 0;
}

static int grow_files(pipe_policy *p)
{
	size_t ncap = p->files_cap ? p->files_cap * 2 : 4;
	policy_file *n;

	if (p->nfiles < p->files_cap)
		return 0;
	n = realloc(p->files, ncap * sizeof(*n));
	if (!n)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	p->files = n;
	p->files_cap = ncap;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* ---- loading ------------------------------------------------------------- */

typedef struct loader {
	pipe_policy *p;
	pipe_diags *diags;
	size_t errors; /* problems found in policy files so far */
} loader;

static int load_error(loader *ld, const pipe_mark *mark, const char *rule,
		      const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Record a problem in a policy file. @return 0 or AF_ENOMEM. */
static int load_error(loader *ld, const pipe_mark *mark, const char *rule,
		      const char *hint, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ld->errors++;
	if (pipe_diags_add(ld->diags, PIPE_SEV_ERROR, mark, rule, hint, "%s", msg) < 0)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	return 0;
}

static bool in_list(const char *key, const char *const *list)
{
	size_t i;

	for (i = 0; list[i]; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

/* One error per key of map not in allowed. */
static int check_fields(loader *ld, const pipe_node *map, const char *const *allowed,
			const char *what)
{
	char list[256];
	size_t i, used = 0;
	int rc;

	list[0] = '\0';
	for (i = 0; allowed[i]; i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s%s",
				 i ? ", " : "", allowed[i]);
		if (n < 0 || (size_t)n >= sizeof(list) - used)
			break;
		used += (size_t)n;
	}
	for (i = 0; i < map->v.map.n; i++) {
		const pipe_map_entry *e = &map->v.map.entries[i];

		if (in_list(e->key, allowed))
			continue;
		rc = load_error(ld, &e->key_mark, "policy.unknown-field",
				"remove the field or fix its spelling (see docs/policies.md)",
				"unknown field '%s' in %s; the fields are: %s",
				e->key, what, list);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * The value of key in map if it has the wanted type. Reports a missing
 * required field (at the map) or a wrong type (at the value); *out is NULL
 * then. @return 0 or AF_ENOMEM.
 */
static int get_field(loader *ld, const pipe_node *map, const char *key,
		     pipe_node_type type, bool required, const char *what,
		     const pipe_node **out)
{
	const pipe_node *v = pipe_node_get(map, key);

	*out = NULL;
	if (!v) {
		if (!required)
			return 0;
		return load_error(ld, &map->mark, "policy.required",
				  "add the field (see docs/policies.md)",
				  "%s has no '%s' field", what, key);
	}
	if (v->type != type)
		return load_error(ld, &v->mark, "policy.type", NULL,
				  "'%s' in %s must be a %s, not a %s", key, what,
				  pipe_node_type_name(type), pipe_node_type_name(v->type));
	*out = v;
	return 0;
}

/* ^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$, at most 64 bytes. */
static bool valid_rule_id(const char *s)
{
	size_t i, n = strlen(s);
	bool dot = false;

	if (n == 0 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (i = 1; i < n; i++) {
		if (s[i] == '.') {
			if (!is_lower_alnum(s[i + 1]))
				return false;
			dot = true;
		} else if (!is_lower_alnum(s[i]) && s[i] != '-') {
			return false;
		}
	}
	return dot;
}

/* ^[a-z][a-z0-9-]{0,62}$ */
static bool valid_policy_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (i = 1; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* A capability name ^[a-z][a-z0-9_.]{0,63}$, optionally ending in ".*". */
static bool valid_cap_entry(const char *s)
{
	size_t i, n = strlen(s);

	if (n >= 2 && strcmp(s + n - 2, ".*") == 0)
		n -= 2;
	if (n == 0 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (i = 1; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* "name.example.com", "*.example.com", "10.0.0.1" or "[::1]", in any case:
 * the manifest's rule (art_manifest_host_valid, the one host-name check),
 * so that every host a policy grants can be recorded in a manifest. */
static bool valid_host_entry(const char *s)
{
	char lower[256];
	size_t i, n = strlen(s);

	if (n == 0 || n >= sizeof(lower))
		return false;
	for (i = 0; i <= n; i++)
		lower[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	return art_manifest_host_valid(lower);
}

static int load_grant_list(loader *ld, const pipe_node *grants, const char *key,
			   bool (*valid)(const char *), const char *expect,
			   const pipe_node **out)
{
	const pipe_node *list;
	size_t i;
	int rc;

	*out = NULL;
	rc = get_field(ld, grants, key, PIPE_NODE_SEQ, false, "grants", &list);
	if (rc < 0 || !list)
		return rc;
	for (i = 0; i < list->v.seq.n; i++) {
		const pipe_node *item = list->v.seq.items[i];

		if (item->type != PIPE_NODE_STRING)
			rc = load_error(ld, &item->mark, "policy.type", NULL,
					"grants.%s[%zu] must be a string, not a %s", key, i,
					pipe_node_type_name(item->type));
		else if (!valid(item->v.s.ptr))
			rc = load_error(ld, &item->mark, "policy.grant", NULL,
					"grants.%s[%zu] '%s' is not %s", key, i,
					item->v.s.ptr, expect);
		if (rc < 0)
			return rc;
	}
	*out = list;
	return 0;
}

static int load_grants(loader *ld, policy_file *f, const pipe_node *grants)
{
	static const char *const fields[] = {"capabilities", "hosts", NULL};
	int rc;

	rc = check_fields(ld, grants, fields, "grants");
	if (rc == 0)
		rc = load_grant_list(ld, grants, "capabilities", valid_cap_entry,
				     "a capability name (^[a-z][a-z0-9_.]*$, or NAME.* for "
				     "every sub-capability)", &f->caps);
	if (rc == 0)
		rc = load_grant_list(ld, grants, "hosts", valid_host_entry,
				     "a host name, *.domain, an IPv4 address or [IPv6] "
				     "(a bare * is not allowed)", &f->hosts);
	return rc;
}

static const policy_rule *find_rule(const pipe_policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (strcmp(p->rules[i].id, id) == 0)
			return &p->rules[i];
	return NULL;
}

static int load_scope(loader *ld, policy_rule *r, const pipe_node *scope)
{
	size_t i, j;
	int rc = 0;

	if (scope->v.seq.n == 0)
		return load_error(ld, &scope->mark, "policy.scope",
				  "list scopes, or remove 'scope' to check every text field",
				  "rule '%s' has an empty scope", r->id);
	r->scopes = 0;
	for (i = 0; i < scope->v.seq.n && rc == 0; i++) {
		const pipe_node *item = scope->v.seq.items[i];

		if (item->type != PIPE_NODE_STRING) {
			rc = load_error(ld, &item->mark, "policy.type", NULL,
					"scope entries must be strings, not %s",
					pipe_node_type_name(item->type));
			continue;
		}
		for (j = 0; j < N_SCOPE_NAMES; j++)
			if (strcmp(item->v.s.ptr, scope_names[j].name) == 0)
				break;
		if (j == N_SCOPE_NAMES) {
			rc = load_error(ld, &item->mark, "policy.scope",
					"use all, description, role, goal, instructions, labels, "
					"tools.description, tools.schema, tools.values, "
					"steps.description, steps.args, inputs, outputs or other",
					"unknown scope '%s' in rule '%s'", item->v.s.ptr, r->id);
			continue;
		}
		r->scopes |= scope_names[j].bits;
	}
	return rc;
}

static int compile_pattern(loader *ld, policy_rule *r, const pipe_node *pattern)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE erroff = 0;
	pcre2_match_data *md = NULL;
	uint32_t groups = 0;
	int err = 0, rc = 0, n;

	r->re = pcre2_compile((PCRE2_SPTR)pattern->v.s.ptr, pattern->v.s.len,
			      PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C,
			      &err, &erroff, NULL);
	if (!r->re) {
		if (err == PCRE2_ERROR_NOMEMORY)
			return art_error_set(AF_ENOMEM, "policy: out of memory");
		pcre2_get_error_message(err, msg, sizeof(msg));
		return load_error(ld, &pattern->mark, "policy.regex",
				  "fix the PCRE2 pattern (see pcre2pattern(3))",
				  "rule '%s': invalid pattern: %s at offset %zu",
				  r->id, (const char *)msg, (size_t)erroff);
	}
	if (r->kind == PIPE_POLICY_URL) {
		n = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR) "host");
		if (n < 0)
			return load_error(ld, &pattern->mark, "policy.regex",
					  "capture the host name with (?<host>...)",
					  "rule '%s': a url rule's pattern needs a named group 'host'",
					  r->id);
		r->host_group = (uint32_t)n;
	}
	pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
	if (groups + 1 > ld->p->ovector_pairs)
		ld->p->ovector_pairs = groups + 1;

	/* A pattern that matches nothing at all would flag every value. */
	md = pcre2_match_data_create_from_pattern(r->re, NULL);
	if (!md)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	if (pcre2_match(r->re, (PCRE2_SPTR) "", 0, 0, 0, md, ld->p->mctx) >= 0)
		rc = load_error(ld, &pattern->mark, "policy.regex",
				"make the pattern require at least one character",
				"rule '%s': the pattern matches the empty string, so it "
				"would flag every value", r->id);
	pcre2_match_data_free(md);
	return rc;
}

static int load_rule(loader *ld, const pipe_node *rn, size_t index)
{
	static const char *const fields[] = {"id", "kind", "severity", "message", "hint",
					     "pattern", "scope", "redact", NULL};
	const pipe_node *id, *kind, *sev, *message, *hint, *pattern, *scope, *redact;
	policy_rule r;
	const policy_rule *dup;
	char what[64];
	bool kind_ok = false;
	size_t k;
	int rc;

	memset(&r, 0, sizeof(r));
	if (rn->type != PIPE_NODE_MAP)
		return load_error(ld, &rn->mark, "policy.type", NULL,
				  "rules[%zu] must be a map, not a %s", index,
				  pipe_node_type_name(rn->type));
	snprintf(what, sizeof(what), "rules[%zu]", index);
	if ((rc = check_fields(ld, rn, fields, what)) < 0 ||
	    (rc = get_field(ld, rn, "id", PIPE_NODE_STRING, true, what, &id)) < 0 ||
	    (rc = get_field(ld, rn, "kind", PIPE_NODE_STRING, true, what, &kind)) < 0 ||
	    (rc = get_field(ld, rn, "severity", PIPE_NODE_STRING, true, what, &sev)) < 0 ||
	    (rc = get_field(ld, rn, "message", PIPE_NODE_STRING, true, what, &message)) < 0 ||
	    (rc = get_field(ld, rn, "hint", PIPE_NODE_STRING, false, what, &hint)) < 0 ||
	    (rc = get_field(ld, rn, "pattern", PIPE_NODE_STRING, false, what, &pattern)) < 0 ||
	    (rc = get_field(ld, rn, "scope", PIPE_NODE_SEQ, false, what, &scope)) < 0 ||
	    (rc = get_field(ld, rn, "redact", PIPE_NODE_BOOL, false, what, &redact)) < 0)
		return rc;
	if (!id)
		return 0; /* reported; without an id nothing else can be named */
	r.id = id->v.s.ptr;
	r.mark = id->mark;
	if (!valid_rule_id(r.id))
		return load_error(ld, &id->mark, "policy.id",
				  "use lower-case dotted words, e.g. tool.shell or text.secret-key",
				  "invalid rule id '%s' (^[a-z][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+$, "
				  "at most 64 characters)", r.id);
	if (strncmp(r.id, "policy.", 7) == 0)
		return load_error(ld, &id->mark, "policy.id",
				  "pick another prefix, e.g. tool., cap. or text.",
				  "rule id '%s': the prefix 'policy.' is reserved for the "
				  "policy engine's own findings", r.id);
	dup = find_rule(ld->p, r.id);
	if (dup)
		return load_error(ld, &id->mark, "policy.duplicate-id",
				  "rule ids must be unique across every policy file; rename one",
				  "duplicate rule id '%s' (first defined at %s:%u:%u)", r.id,
				  dup->mark.file ? dup->mark.file : "?", dup->mark.line,
				  dup->mark.col);
	r.message = message ? message->v.s.ptr : "";
	r.hint = hint ? hint->v.s.ptr : NULL;
	r.redact = redact ? redact->v.b : false;
	r.scopes = SCOPE_ALL;
	if (message && message->v.s.len == 0)
		rc = load_error(ld, &message->mark, "policy.required",
				"say what is wrong and what to do instead",
				"rule '%s' has an empty message", r.id);
	if (rc == 0 && kind) {
		for (k = 0; k < N_KINDS; k++)
			if (strcmp(kind->v.s.ptr, kind_names[k]) == 0)
				break;
		if (k == N_KINDS) {
			rc = load_error(ld, &kind->mark, "policy.rule-kind",
					"use tool, capability, grant, text, args or url",
					"rule '%s': unknown kind '%s'", r.id, kind->v.s.ptr);
		} else {
			r.kind = (pipe_policy_kind)k;
			kind_ok = true;
		}
	}
	if (rc == 0 && sev) {
		if (strcmp(sev->v.s.ptr, "deny") == 0)
			r.severity = PIPE_SEV_ERROR;
		else if (strcmp(sev->v.s.ptr, "warn") == 0)
			r.severity = PIPE_SEV_WARNING;
		else
			rc = load_error(ld, &sev->mark, "policy.severity",
					"use deny (an error that fails the build) or warn",
					"rule '%s': unknown severity '%s'", r.id, sev->v.s.ptr);
	}
	if (rc == 0 && kind_ok) {
		if (r.kind == PIPE_POLICY_ARGS)
			r.scopes = SCOPE_TOOLS_VALUES | SCOPE_STEPS_ARGS;
		if (r.kind == PIPE_POLICY_GRANT && pattern)
			rc = load_error(ld, &pattern->mark, "policy.field",
					"remove 'pattern': a grant rule reports every capability "
					"missing from grants.capabilities",
					"rule '%s': a grant rule takes no pattern", r.id);
		else if (r.kind != PIPE_POLICY_GRANT && !pattern)
			rc = load_error(ld, &rn->mark, "policy.required",
					"add a PCRE2 'pattern'",
					"rule '%s' of kind %s needs a pattern", r.id,
					kind_names[r.kind]);
		if (rc == 0 && scope) {
			if (r.kind == PIPE_POLICY_TEXT || r.kind == PIPE_POLICY_ARGS ||
			    r.kind == PIPE_POLICY_URL)
				rc = load_scope(ld, &r, scope);
			else
				rc = load_error(ld, &scope->mark, "policy.field",
						"remove 'scope': it applies to text, args and url rules",
						"rule '%s': a %s rule takes no scope", r.id,
						kind_names[r.kind]);
		}
		if (rc == 0 && pattern && r.kind != PIPE_POLICY_GRANT)
			rc = compile_pattern(ld, &r, pattern);
	}
	if (rc < 0 || (rc = grow_rules(ld->p)) < 0) {
		pcre2_code_free(r.re);
		return rc;
	}
	/* Kept even when invalid, so a later duplicate id is still reported. */
	ld->p->rules[ld->p->nrules++] = r;
	return 0;
}

static int load_document(loader *ld, policy_file *f)
{
	static const char *const fields[] = {"kind", "apiVersion", "name", "version",
					     "description", "grants", "rules", NULL};
	const pipe_node *root = f->tree, *kind, *api, *name, *version, *desc, *grants,
			*rules;
	size_t i;
	int rc;

	if (root->type != PIPE_NODE_MAP)
		return load_error(ld, &root->mark, "policy.type",
				  "start the file with 'kind: Policy'",
				  "a policy file must be a map, not a %s",
				  pipe_node_type_name(root->type));
	if ((rc = check_fields(ld, root, fields, "a policy")) < 0 ||
	    (rc = get_field(ld, root, "kind", PIPE_NODE_STRING, true, "the policy", &kind)) < 0 ||
	    (rc = get_field(ld, root, "apiVersion", PIPE_NODE_STRING, false, "the policy", &api)) < 0 ||
	    (rc = get_field(ld, root, "name", PIPE_NODE_STRING, true, "the policy", &name)) < 0 ||
	    (rc = get_field(ld, root, "version", PIPE_NODE_INT, true, "the policy", &version)) < 0 ||
	    (rc = get_field(ld, root, "description", PIPE_NODE_STRING, false, "the policy", &desc)) < 0 ||
	    (rc = get_field(ld, root, "grants", PIPE_NODE_MAP, false, "the policy", &grants)) < 0 ||
	    (rc = get_field(ld, root, "rules", PIPE_NODE_SEQ, false, "the policy", &rules)) < 0)
		return rc;
	(void)desc;
	if (kind && strcmp(kind->v.s.ptr, "Policy") != 0 &&
	    (rc = load_error(ld, &kind->mark, "policy.kind", "write 'kind: Policy'",
			     "kind is '%s'; a policy file has kind Policy",
			     kind->v.s.ptr)) < 0)
		return rc;
	if (api && strcmp(api->v.s.ptr, "agentfactory/v1") != 0 &&
	    (rc = load_error(ld, &api->mark, "policy.api-version",
			     "write 'apiVersion: agentfactory/v1' or remove it",
			     "unsupported apiVersion '%s'", api->v.s.ptr)) < 0)
		return rc;
	if (name && !valid_policy_name(name->v.s.ptr) &&
	    (rc = load_error(ld, &name->mark, "policy.name", NULL,
			     "invalid policy name '%s' (^[a-z][a-z0-9-]{0,62}$)",
			     name->v.s.ptr)) < 0)
		return rc;
	if (version && version->v.i < 1 &&
	    (rc = load_error(ld, &version->mark, "policy.version",
			     "number policy versions from 1 and raise it on every change",
			     "policy version must be a positive integer, not %lld",
			     version->v.i)) < 0)
		return rc;
	if (grants && (rc = load_grants(ld, f, grants)) < 0)
		return rc;
	for (i = 0; rules && i < rules->v.seq.n; i++)
		if ((rc = load_rule(ld, rules->v.seq.items[i], i)) < 0)
			return rc;
	return 0;
}

static pipe_policy *policy_new(void)
{
	pipe_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->ovector_pairs = 1;
	p->mctx = pcre2_match_context_create(NULL);
	if (!p->mctx) {
		free(p);
		return NULL;
	}
	pcre2_set_match_limit(p->mctx, PIPE_POLICY_MATCH_LIMIT);
	pcre2_set_depth_limit(p->mctx, PIPE_POLICY_DEPTH_LIMIT);
	pcre2_set_heap_limit(p->mctx, PIPE_POLICY_HEAP_LIMIT_KIB);
	return p;
}

/* Parse and validate one file into p. Problems go to diags (ld->errors). */
static int policy_add_file(loader *ld, const char *name, const char *data, size_t len)
{
	pipe_policy *p = ld->p;
	size_t diags_before = ld->diags->n;
	policy_file *f;
	int rc;

	if ((rc = grow_files(p)) < 0)
		return rc;
	f = &p->files[p->nfiles];
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	if (!f->name)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	p->nfiles++;
	rc = pipe_yaml_parse(&f->tree, data, len, f->name, ld->diags);
	if (rc == AF_ENOMEM)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	if (rc == AF_ETOOBIG)
		return art_error_set(AF_ETOOBIG, "%s: policy file larger than %u bytes",
				     f->name, (unsigned)PIPE_POLICY_MAX_BYTES);
	if (rc < 0 || !f->tree) {
		/* The parser reported where; count it as a problem of this file. */
		ld->errors++;
		if (ld->diags->n == diags_before &&
		    pipe_diags_add_file(ld->diags, PIPE_SEV_ERROR, f->name, "policy.syntax",
					NULL, "cannot parse policy file: %s",
					art_strerror(rc)) < 0)
			return art_error_set(AF_ENOMEM, "policy: out of memory");
		return 0;
	}
	return load_document(ld, f);
}

static int policy_finish(pipe_policy *p)
{
	char hex[ART_SHA256_HEX_LEN + 1];
	json_t *all = json_object(), *docs = json_array();
	char *text = NULL;
	size_t i;
	int rc = 0;

	if (!all || !docs ||
	    json_object_set_new(all, "engine", json_integer(PIPE_POLICY_ENGINE_VERSION)) < 0 ||
	    json_object_set(all, "policies", docs) < 0) {
		rc = art_error_set(AF_ENOMEM, "policy: out of memory");
		goto cleanup;
	}
	for (i = 0; i < p->nfiles; i++) {
		json_t *doc = pipe_node_to_json(p->files[i].tree);

		if (!doc || json_array_append_new(docs, doc) < 0) {
			rc = art_error_set(AF_ENOMEM, "policy: out of memory");
			goto cleanup;
		}
	}
	text = pipe_json__dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		rc = art_error_set(AF_ENOMEM, "policy: out of memory");
		goto cleanup;
	}
	art_sha256_hex(text, strlen(text), hex);
	snprintf(p->digest, sizeof(p->digest), "sha256:%s", hex);
cleanup:
	free(text);
	json_decref(docs);
	json_decref(all);
	return rc;
}

/* Common end of both loaders: turn collected problems into AF_ESYNTAX. */
static int load_end(loader *ld, int rc, const char *what, pipe_policy **out)
{
	if (rc == 0 && ld->errors > 0)
		rc = art_error_set(AF_ESYNTAX, "%s: %zu problem%s in policy files", what,
				   ld->errors, ld->errors == 1 ? "" : "s");
	if (rc == 0)
		rc = policy_finish(ld->p);
	if (rc < 0) {
		pipe_policy_free(ld->p);
		return rc;
	}
	*out = ld->p;
	return 0;
}

int pipe_policy_load_buffer(pipe_policy **out, const char *file, const char *data,
			    size_t len, pipe_diags *diags)
{
	loader ld = {NULL, diags, 0};
	int rc;

	if (!out || !file || (!data && len) || !diags)
		return art_error_set(AF_EINVAL, "pipe_policy_load_buffer: invalid argument");
	*out = NULL;
	ld.p = policy_new();
	if (!ld.p)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	rc = policy_add_file(&ld, file, data ? data : "", len);
	return load_end(&ld, rc, file, out);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int pipe_policy_load_dir(pipe_policy **out, const char *dir, pipe_diags *diags)
{
	loader ld = {NULL, diags, 0};
	char *names[PIPE_POLICY_MAX_FILES];
	size_t n = 0, i;
	DIR *d = NULL;
	struct dirent *de;
	char *data = NULL, *path = NULL;
	size_t len;
	int rc = 0;

	if (!out || !dir || !diags)
		return art_error_set(AF_EINVAL, "pipe_policy_load_dir: invalid argument");
	*out = NULL;
	d = opendir(dir);
	if (!d)
		return art_error_set(errno == ENOENT || errno == ENOTDIR ? AF_ENOTFOUND : AF_EIO,
				     "policy directory %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' ||
		    !(ends_with(de->d_name, ".yaml") || ends_with(de->d_name, ".yml")))
			continue;
		if (n == PIPE_POLICY_MAX_FILES) {
			rc = art_error_set(AF_ETOOBIG, "policy directory %s: more than %d policy files",
					   dir, PIPE_POLICY_MAX_FILES);
			goto cleanup;
		}
		free(path);
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			path = NULL;
			rc = art_error_set(AF_ENOMEM, "policy: out of memory");
			goto cleanup;
		}
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			rc = art_error_set(AF_ENOMEM, "policy: out of memory");
			goto cleanup;
		}
		n++;
	}
	if (n == 0) {
		rc = art_error_set(AF_ENOTFOUND, "policy directory %s has no *.yaml policy file", dir);
		goto cleanup;
	}
	qsort(names, n, sizeof(names[0]), cmp_names);
	ld.p = policy_new();
	if (!ld.p) {
		rc = art_error_set(AF_ENOMEM, "policy: out of memory");
		goto cleanup;
	}
	for (i = 0; i < n && rc == 0; i++) {
		free(path);
		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			path = NULL;
			rc = art_error_set(AF_ENOMEM, "policy: out of memory");
			break;
		}
		free(data);
		data = NULL;
		rc = art_file_read(&data, &len, path, PIPE_POLICY_MAX_BYTES);
		if (rc == 0)
			rc = policy_add_file(&ld, path, data, len);
	}
	rc = load_end(&ld, rc, dir, out);
	ld.p = NULL;
cleanup:
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(path);
	free(data);
	pipe_policy_free(ld.p);
	return rc;
}

void pipe_policy_free(pipe_policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nrules; i++)
		pcre2_code_free(p->rules[i].re);
	free(p->rules);
	for (i = 0; i < p->nfiles; i++) {
		pipe_node_free(p->files[i].tree);
		free(p->files[i].name);
	}
	free(p->files);
	pcre2_match_context_free(p->mctx);
	free(p);
}

/* ---- accessors ------------------------------------------------------------ */

const char *pipe_policy_digest(const pipe_policy *p)
{
	return p ? p->digest : "";
}

size_t pipe_policy_rule_count(const pipe_policy *p)
{
	return p ? p->nrules : 0;
}

const char *pipe_policy_rule_id(const pipe_policy *p, size_t i)
{
	return p && i < p->nrules ? p->rules[i].id : NULL;
}

pipe_policy_kind pipe_policy_rule_kind(const pipe_policy *p, size_t i)
{
	return p && i < p->nrules ? p->rules[i].kind : PIPE_POLICY_TEXT;
}

pipe_severity pipe_policy_rule_severity(const pipe_policy *p, size_t i)
{
	return p && i < p->nrules ? p->rules[i].severity : PIPE_SEV_ERROR;
}

const char *pipe_policy_kind_name(pipe_policy_kind kind)
{
	return (size_t)kind < N_KINDS ? kind_names[kind] : "?";
}

/* ---- grants --------------------------------------------------------------- */

static bool cap_entry_matches(const char *entry, const char *cap)
{
	size_t n = strlen(entry);

	if (n >= 2 && strcmp(entry + n - 2, ".*") == 0)
		return strncmp(cap, entry, n - 1) == 0 && cap[n - 1] != '\0';
	return strcmp(entry, cap) == 0;
}

static bool list_has(const pipe_node *list, const char *s,
		     bool (*matches)(const char *entry, const char *s))
{
	size_t i;

	for (i = 0; i < list->v.seq.n; i++) {
		const pipe_node *item = list->v.seq.items[i];

		if (item->type == PIPE_NODE_STRING && matches(item->v.s.ptr, s))
			return true;
	}
	return false;
}

/* Listed in every file's grants.capabilities (and at least one declares it). */
static bool cap_listed(const pipe_policy *p, const char *cap)
{
	bool declared = false;
	size_t i;

	for (i = 0; i < p->nfiles; i++) {
		if (!p->files[i].caps)
			continue;
		declared = true;
		if (!list_has(p->files[i].caps, cap, cap_entry_matches))
			return false;
	}
	return declared;
}

/* 1 match, 0 no match, else the (negative) PCRE2 error code. */
static int rule_match(const pipe_policy *p, const policy_rule *r, pcre2_match_data *md,
		      const char *s, size_t len, size_t start, uint32_t options)
{
	int rc;

	if (!r->re) /* only grant rules, which never get here */
		return 0;
	rc = pcre2_match(r->re, (PCRE2_SPTR)s, len, start, options, md, p->mctx);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return rc >= 0 ? 1 : rc;
}

/* A deny capability rule matches cap (a failed match counts as a match). */
static bool cap_denied(const pipe_policy *p, pcre2_match_data *md, const char *cap)
{
	size_t i;

	for (i = 0; i < p->nrules; i++) {
		const policy_rule *r = &p->rules[i];

		if (r->kind == PIPE_POLICY_CAPABILITY && r->severity == PIPE_SEV_ERROR &&
		    rule_match(p, r, md, cap, strlen(cap), 0, 0) != 0)
			return true;
	}
	return false;
}

bool pipe_policy_grants_capability(const pipe_policy *p, const char *cap)
{
	pcre2_match_data *md;
	bool ok;

	if (!p || !cap || !*cap || !cap_listed(p, cap))
		return false;
	md = pcre2_match_data_create(p->ovector_pairs, NULL);
	if (!md)
		return false;
	ok = !cap_denied(p, md, cap);
	pcre2_match_data_free(md);
	return ok;
}

static bool host_entry_matches(const char *entry, const char *host)
{
	size_t n, m;

	if (strncmp(entry, "*.", 2) == 0) {
		entry += 1; /* ".example.com" */
		n = strlen(host);
		m = strlen(entry);
		return n > m && strcasecmp(host + n - m, entry) == 0;
	}
	return strcasecmp(entry, host) == 0;
}

bool pipe_policy_allows_host(const pipe_policy *p, const char *host)
{
	char norm[256];
	bool declared = false;
	size_t i, n;

	if (!p || !host)
		return false;
	n = strlen(host);
	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(norm))
		return false;
	memcpy(norm, host, n);
	norm[n] = '\0';
	/* Only a plain DNS name or IP literal can match; "*." is not a host. */
	if (norm[0] == '*' || !valid_host_entry(norm))
		return false;
	for (i = 0; i < p->nfiles; i++) {
		if (!p->files[i].hosts)
			continue;
		declared = true;
		if (!list_has(p->files[i].hosts, norm, host_entry_matches))
			return false;
	}
	return declared;
}

/* Whether file f allows every name that entry c (exact or "*.d") allows. */
static bool file_covers(const pipe_node *list, const char *c)
{
	size_t i, n, m;

	if (strncmp(c, "*.", 2) != 0)
		return list_has(list, c, host_entry_matches);
	for (i = 0; i < list->v.seq.n; i++) {
		const pipe_node *item = list->v.seq.items[i];
		const char *e;

		if (item->type != PIPE_NODE_STRING || strncmp(item->v.s.ptr, "*.", 2) != 0)
			continue;
		e = item->v.s.ptr + 1; /* ".d2" */
		n = strlen(c + 1);
		m = strlen(e);
		if (n >= m && strcasecmp(c + 1 + n - m, e) == 0)
			return true;
	}
	return false;
}

static int cmp_host(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void pipe_policy_hosts_free(char **hosts, size_t n)
{
	size_t i;

	for (i = 0; hosts && i < n; i++)
		free(hosts[i]);
	free(hosts);
}

int pipe_policy_hosts(char ***out, size_t *n_out, const pipe_policy *p)
{
	char **list = NULL;
	size_t total = 0, n = 0, i, j, k;

	*out = NULL;
	*n_out = 0;
	for (i = 0; p && i < p->nfiles; i++)
		if (p->files[i].hosts)
			total += p->files[i].hosts->v.seq.n;
	if (total == 0)
		return 0;
	if (!(list = calloc(total, sizeof(*list))))
		return art_error_set(AF_ENOMEM, "out of memory");
	for (i = 0; i < p->nfiles; i++) {
		const pipe_node *hosts = p->files[i].hosts;

		for (j = 0; hosts && j < hosts->v.seq.n; j++) {
			const pipe_node *item = hosts->v.seq.items[j];
			bool keep = item->type == PIPE_NODE_STRING;
			char *c;

			for (k = 0; keep && k < p->nfiles; k++)
				if (p->files[k].hosts && !file_covers(p->files[k].hosts, item->v.s.ptr))
					keep = false;
			if (!keep)
				continue;
			if (!(c = strdup(item->v.s.ptr))) {
				pipe_policy_hosts_free(list, n);
				return art_error_set(AF_ENOMEM, "out of memory");
			}
			for (k = 0; c[k]; k++)
				if (c[k] >= 'A' && c[k] <= 'Z')
					c[k] = (char)(c[k] - 'A' + 'a');
			list[n++] = c;
		}
	}
	qsort(list, n, sizeof(*list), cmp_host);
	for (i = j = 0; i < n; i++) {
		if (j && strcmp(list[j - 1], list[i]) == 0)
			free(list[i]);
		else
			list[j++] = list[i];
	}
	n = j;
	if (n == 0) {
		free(list);
		return 0;
	}
	*out = list;
	*n_out = n;
	return 0;
}

/* ---- checking ------------------------------------------------------------- */

#define PATH_MAX_SEGS (2 * PIPE_YAML_MAX_DEPTH + 8)

typedef struct path_seg {
	const char *key; /* NULL: a list index */
	size_t index;
} path_seg;

typedef struct checker {
	const pipe_policy *p;
	pipe_diags *diags;
	pcre2_match_data *md;
	path_seg segs[PATH_MAX_SEGS];
	size_t nsegs;
	char *scratch; /* args rules: the text with placeholders masked */
	size_t scratch_cap;
	bool too_deep_reported;
} checker;

static void push_key(checker *ck, const char *key)
{
	if (ck->nsegs < PATH_MAX_SEGS)
		ck->segs[ck->nsegs] = (path_seg){key, 0};
	ck->nsegs++;
}

static void push_index(checker *ck, size_t index)
{
	if (ck->nsegs < PATH_MAX_SEGS)
		ck->segs[ck->nsegs] = (path_seg){NULL, index};
	ck->nsegs++;
}

static void pop(checker *ck)
{
	ck->nsegs--;
}

/* "tools[0].parameters.properties.cmd.default", cut to fit. */
static void render_path(const checker *ck, char *out, size_t size)
{
	size_t i, used = 0, n = ck->nsegs < PATH_MAX_SEGS ? ck->nsegs : PATH_MAX_SEGS;
	int w;

	out[0] = '\0';
	for (i = 0; i < n && used < size; i++) {
		if (ck->segs[i].key)
			w = snprintf(out + used, size - used, "%s%s", i ? "." : "",
				     ck->segs[i].key);
		else
			w = snprintf(out + used, size - used, "[%zu]", ck->segs[i].index);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (n == 0)
		snprintf(out, size, "(template)");
}

static bool seg_is(const checker *ck, size_t i, const char *key)
{
	return i < ck->nsegs && i < PATH_MAX_SEGS && ck->segs[i].key &&
	       strcmp(ck->segs[i].key, key) == 0;
}

static bool seg_is_index(const checker *ck, size_t i)
{
	return i < ck->nsegs && i < PATH_MAX_SEGS && !ck->segs[i].key;
}

/* Inside a JSON schema: a keyword whose values are data, not prose. */
static bool schema_values_below(const checker *ck, size_t from)
{
	size_t i;

	for (i = from; i < ck->nsegs && i < PATH_MAX_SEGS; i++) {
		const char *k = ck->segs[i].key;

		if (!k || (i > from && seg_is(ck, i - 1, "properties")))
			continue;
		if (!strcmp(k, "default") || !strcmp(k, "const") || !strcmp(k, "enum") ||
		    !strcmp(k, "examples") || !strcmp(k, "example"))
			return true;
	}
	return false;
}

/* The scope of the string at the current path. */
static unsigned classify(const checker *ck)
{
	size_t n = ck->nsegs;

	if (n == 1) {
		if (seg_is(ck, 0, "description"))
			return SCOPE_DESCRIPTION;
		if (seg_is(ck, 0, "role"))
			return SCOPE_ROLE;
		if (seg_is(ck, 0, "goal"))
			return SCOPE_GOAL;
		if (seg_is(ck, 0, "instructions"))
			return SCOPE_INSTRUCTIONS;
	}
	if (n >= 2 && seg_is(ck, 0, "labels"))
		return SCOPE_LABELS;
	if (n >= 2 && seg_is(ck, 0, "inputs"))
		return SCOPE_INPUTS;
	if (n >= 2 && seg_is(ck, 0, "outputs"))
		return SCOPE_OUTPUTS;
	if (n >= 3 && seg_is(ck, 0, "tools") && seg_is_index(ck, 1)) {
		if (n == 3 && seg_is(ck, 2, "description"))
			return SCOPE_TOOLS_DESCRIPTION;
		if (n >= 4 && seg_is(ck, 2, "parameters"))
			return schema_values_below(ck, 3) ? SCOPE_TOOLS_VALUES
							  : SCOPE_TOOLS_SCHEMA;
	}
	if (n >= 3 && seg_is(ck, 0, "steps") && seg_is_index(ck, 1)) {
		if (n == 3 && seg_is(ck, 2, "description"))
			return SCOPE_STEPS_DESCRIPTION;
		if (n >= 4 && seg_is(ck, 2, "args"))
			return SCOPE_STEPS_ARGS;
	}
	return SCOPE_OTHER;
}

/* Decode one UTF-8 sequence (art_utf8_decode, the one strict decoder); an
 * invalid byte decodes as -1 of length 1. */
static long utf8_next(const unsigned char *s, size_t len, size_t *adv)
{
	uint32_t cp = 0;
	size_t n = art_utf8_decode(s, len, &cp);

	*adv = n ? n : 1;
	return n ? (long)cp : -1;
}

/* Characters that must never reach a terminal raw: controls, bidi, invisible. */
static bool invisible(long cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad || cp == 0x34f ||
	       cp == 0x61c || cp == 0x115f || cp == 0x1160 || cp == 0x17b4 ||
	       cp == 0x17b5 || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
	       cp == 0x3164 || (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff ||
	       cp == 0xffa0 || (cp >= 0xfff0 && cp <= 0xfffb) ||
	       (cp >= 0xe0000 && cp <= 0xe0fff);
}

/*
 * The matched text as it may be shown: at most limit characters, invisible
 * ones escaped as \u{XXXX}, quotes and backslashes escaped. *total is the
 * text's length in characters; the result ends in "..." when it was cut.
 */
static void quote_text(char *out, size_t size, const char *text, size_t len,
		       size_t limit, size_t *total)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i, used = 0, chars = 0, adv;
	long cp;

	*total = 0;
	for (i = 0; i < len; i += adv) {
		utf8_next(s + i, len - i, &adv);
		(*total)++;
	}
	out[0] = '\0';
	for (i = 0; i < len && chars < limit; i += adv) {
		char buf[24];
		size_t bl;

		cp = utf8_next(s + i, len - i, &adv);
		if (cp < 0)
			snprintf(buf, sizeof(buf), "\\x%02X", s[i]);
		else if (cp == '\n')
			snprintf(buf, sizeof(buf), "\\n");
		else if (cp == '\t')
			snprintf(buf, sizeof(buf), "\\t");
		else if (cp == '"' || cp == '\\')
			snprintf(buf, sizeof(buf), "\\%c", (char)cp);
		else if (invisible(cp))
			snprintf(buf, sizeof(buf), "\\u{%04X}", (unsigned)cp & 0x1fffffu);
		else {
			memcpy(buf, s + i, adv);
			buf[adv] = '\0';
		}
		bl = strlen(buf);
		if (used + bl + 4 > size)
			break;
		memcpy(out + used, buf, bl + 1);
		used += bl;
		chars++;
	}
	if (chars < *total)
		memcpy(out + used, "...", 4);
}

static bool is_limit_error(int rc)
{
	return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	       rc == PCRE2_ERROR_HEAPLIMIT;
}

/* A pattern could not be run on this text: an error finding (fail closed). */
static int report_failure(checker *ck, const policy_rule *r, const pipe_mark *mark,
			  int pcre_rc, size_t len)
{
	PCRE2_UCHAR msg[256];
	char path[256];
	bool limit = is_limit_error(pcre_rc);

	if (pcre_rc == PCRE2_ERROR_NOMEMORY)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	pcre2_get_error_message(pcre_rc, msg, sizeof(msg));
	render_path(ck, path, sizeof(path));
	if (pipe_diags_add(ck->diags, PIPE_SEV_ERROR, mark,
			   limit ? "policy.match-limit" : "policy.match-error",
			   limit ? "shorten or split this text; if it is legitimate, ask the "
				   "policy owners to simplify the rule's pattern"
				 : "make the text valid UTF-8",
			   "rule %s could not be checked against %s (%zu bytes): %s; the "
			   "template is refused until it can be", r->id, path, len,
			   (const char *)msg) < 0)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	return 0;
}

static int report_match(checker *ck, const policy_rule *r, const pipe_mark *mark,
			const char *s, size_t so, size_t eo)
{
	char path[256];
	char quote[PIPE_POLICY_QUOTE_CHARS * 12 + 8];
	size_t total;
	int rc;

	render_path(ck, path, sizeof(path));
	if (memchr(s, '\n', so)) {
		/* A block scalar's mark is its first line: say which line of it. */
		size_t line = 1, i, used = strlen(path);

		for (i = 0; i < so; i++)
			line += s[i] == '\n';
		snprintf(path + used, sizeof(path) - used, ", text line %zu", line);
	}
	if (r->redact) {
		/* Never copy a secret into build logs: its first 4 characters only. */
		quote_text(quote, sizeof(quote), s + so, eo - so, 4, &total);
		rc = pipe_diags_add(ck->diags, r->severity, mark, r->id, r->hint,
				    "%s (%s: \"%s\", %zu characters, redacted)", r->message,
				    path, quote, total);
	} else {
		quote_text(quote, sizeof(quote), s + so, eo - so, PIPE_POLICY_QUOTE_CHARS,
			   &total);
		rc = pipe_diags_add(ck->diags, r->severity, mark, r->id, r->hint,
				    "%s (%s: \"%s\")", r->message, path, quote);
	}
	if (rc < 0)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	return 0;
}

/* Run one pattern rule on one string; report a match or a failure. */
static int check_pattern(checker *ck, const policy_rule *r, const char *subject,
			 const char *shown, size_t len, const pipe_mark *mark, bool *matched)
{
	PCRE2_SIZE *ov;
	int rc = rule_match(ck->p, r, ck->md, subject, len, 0, 0);

	if (matched)
		*matched = rc != 0;
	if (rc == 0)
		return 0;
	if (rc < 0)
		return report_failure(ck, r, mark, rc, len);
	if (r->kind == PIPE_POLICY_TOOL || r->kind == PIPE_POLICY_CAPABILITY)
		return report_match(ck, r, mark, shown, 0, len); /* the whole name */
	ov = pcre2_get_ovector_pointer(ck->md);
	return report_match(ck, r, mark, shown, ov[0], ov[1]);
}

/* Every URL the pattern finds must have an allowed host; report the first that does not. */
static int check_urls(checker *ck, const policy_rule *r, const char *s, size_t len,
		      const pipe_mark *mark)
{
	size_t start = 0;
	uint32_t options = 0;
	PCRE2_SIZE *ov;
	char host[256];
	int rc;

	while (start <= len) {
		rc = rule_match(ck->p, r, ck->md, s, len, start, options);
		if (rc == 0)
			return 0;
		if (rc < 0)
			return report_failure(ck, r, mark, rc, len);
		options = PCRE2_NO_UTF_CHECK;
		ov = pcre2_get_ovector_pointer(ck->md);
		host[0] = '\0';
		if (ov[2 * r->host_group] != PCRE2_UNSET) {
			size_t hs = ov[2 * r->host_group], he = ov[2 * r->host_group + 1];

			if (he - hs < sizeof(host)) {
				memcpy(host, s + hs, he - hs);
				host[he - hs] = '\0';
			} else {
				snprintf(host, sizeof(host), "(too long)");
			}
		}
		if (!pipe_policy_allows_host(ck->p, host))
			return report_match(ck, r, mark, s, ov[0], ov[1]);
		start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
		while (start < len && ((unsigned char)s[start] & 0xc0) == 0x80)
			start++;
	}
	return 0;
}

/* Copy s to scratch with every well-formed {{ placeholder }} blanked out. */
static const char *mask_placeholders(checker *ck, const char *s, size_t len)
{
	size_t i, j;

	if (!memmem(s, len, "{{", 2))
		return s;
	if (len + 1 > ck->scratch_cap) {
		char *n = realloc(ck->scratch, len + 1);

		if (!n)
			return NULL;
		ck->scratch = n;
		ck->scratch_cap = len + 1;
	}
	memcpy(ck->scratch, s, len);
	ck->scratch[len] = '\0';
	for (i = 0; i + 1 < len; i++) {
		if (s[i] != '{' || s[i + 1] != '{')
			continue;
		j = i + 2;
		while (j < len && s[j] == ' ')
			j++;
		if (j >= len || !((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
				  s[j] == '_'))
			continue;
		while (j < len && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
				   (s[j] >= '0' && s[j] <= '9') || s[j] == '_' || s[j] == '.' ||
				   s[j] == '-'))
			j++;
		while (j < len && s[j] == ' ')
			j++;
		if (j + 1 < len && s[j] == '}' && s[j + 1] == '}') {
			memset(ck->scratch + i, ' ', j + 2 - i);
			i = j + 1;
		}
	}
	return ck->scratch;
}

/* The text, args and url rules whose scope covers the current path. */
static int check_string(checker *ck, const char *s, size_t len, const pipe_mark *mark)
{
	unsigned scope = classify(ck);
	char *norm = NULL;
	size_t i, norm_len = 0;
	int rc = 0;

	for (i = 0; i < ck->p->nrules && rc == 0; i++) {
		const policy_rule *r = &ck->p->rules[i];
		const char *subject;

		if (!(r->scopes & scope))
			continue;
		switch (r->kind) {
		case PIPE_POLICY_TEXT: {
			bool matched = false;

			rc = check_pattern(ck, r, s, s, len, mark, &matched);
			if (rc == 0 && !matched && !r->redact) {
				/* The normalised form (textnorm.c), made once per string. */
				if (!norm && (rc = pipe_text_normalize(&norm, &norm_len, s, len)) < 0)
					break;
				if (norm_len != len || memcmp(norm, s, len) != 0)
					rc = check_pattern(ck, r, norm, norm, norm_len, mark, NULL);
			}
			break;
		}
		case PIPE_POLICY_ARGS:
			subject = mask_placeholders(ck, s, len);
			if (!subject) {
				rc = art_error_set(AF_ENOMEM, "policy: out of memory");
				break;
			}
			rc = check_pattern(ck, r, subject, s, len, mark, NULL);
			break;
		case PIPE_POLICY_URL:
			rc = check_urls(ck, r, s, len, mark);
			break;
		default:
			break;
		}
	}
	free(norm);
	return rc;
}

static int walk(checker *ck, const pipe_node *n)
{
	size_t i;
	int rc = 0;

	if (ck->nsegs >= PATH_MAX_SEGS) {
		char path[256];

		if (ck->too_deep_reported)
			return 0;
		ck->too_deep_reported = true;
		render_path(ck, path, sizeof(path));
		if (pipe_diags_add(ck->diags, PIPE_SEV_ERROR, &n->mark, "policy.match-error",
				   "flatten the structure", "%s is nested too deeply to be "
				   "checked; the template is refused", path) < 0)
			return art_error_set(AF_ENOMEM, "policy: out of memory");
		return 0;
	}
	switch (n->type) {
	case PIPE_NODE_STRING:
		return check_string(ck, n->v.s.ptr, n->v.s.len, &n->mark);
	case PIPE_NODE_SEQ:
		for (i = 0; i < n->v.seq.n && rc == 0; i++) {
			push_index(ck, i);
			rc = walk(ck, n->v.seq.items[i]);
			pop(ck);
		}
		return rc;
	case PIPE_NODE_MAP:
		for (i = 0; i < n->v.map.n && rc == 0; i++) {
			const pipe_map_entry *e = &n->v.map.entries[i];

			push_key(ck, e->key);
			rc = check_string(ck, e->key, strlen(e->key), &e->key_mark);
			if (rc == 0)
				rc = walk(ck, e->value);
			pop(ck);
		}
		return rc;
	default:
		return 0;
	}
}

/*
 * Tool names by meaning: a word's stem, so "execute", "executor" and
 * "exec" are one word, "invoke", "launch" and "run" another. Each entry is
 * a prefix of the word and its stem. Not a complete thesaurus: a starting
 * point that the evasion corpus in the policy tests grows.
 */
static const char *const tool_stems[][2] = {
	{"execut", "exec"}, {"exec", "exec"}, {"invok", "run"}, {"launch", "run"},
	{"trigger", "run"}, {"start", "run"}, {"run", "run"}, {"process", "process"},
	{"proc", "process"}, {"command", "command"}, {"cmd", "command"}, {"shell", "shell"},
	{"spawn", "spawn"}, {"subprocess", "subprocess"},
};

/* What may follow a stem in the same word: inflections only ("shellcheck"
 * and "evaluate" are other words). */
static bool inflection(const char *s, size_t n)
{
	static const char *const ok[] = {"", "e", "es", "ed", "ing", "ion", "ions", "or",
					 "ors", "er", "ers", "s", "ning", "ner", "ners"};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		if (strlen(ok[i]) == n && memcmp(s, ok[i], n) == 0)
			return true;
	return false;
}

/* Words that name a denied tool on their own, wherever they appear in a name. */
static const char *const tool_alone[] = {
	"exec", "eval", "shell", "bash", "zsh", "sh", "powershell", "pwsh", "subprocess",
	"popen", "spawn", "terminal",
};

/*
 * The name as words: camelCase split, Unicode folded and leetspeak undone
 * (textnorm.c), digits at word ends dropped ("bash2"), each word stemmed,
 * joined with "_". *out is caller-owned.
 */
static int tool_name_form(char **out, const char *name, size_t len)
{
	char *split = NULL, *norm = NULL, *o;
	size_t i, n = 0, norm_len = 0, k;
	int rc;

	*out = NULL;
	if (!(split = malloc(2 * len + 1)))
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	for (i = 0; i < len; i++) {
		bool digit = name[i] >= '0' && name[i] <= '9';

		/* version digits at a word's end go ("bash2", "powershell7"), before
		 * leetspeak could read them as letters */
		if (digit && i > 0 && ((name[i - 1] | 0x20) >= 'a' && (name[i - 1] | 0x20) <= 'z')) {
			size_t j = i;

			while (j < len && name[j] >= '0' && name[j] <= '9')
				j++;
			if (j == len || name[j] == '_' || name[j] == '-' || name[j] == '.') {
				i = j - 1;
				continue;
			}
		}
		if (i > 0 && name[i] >= 'A' && name[i] <= 'Z' && name[i - 1] >= 'a' &&
		    name[i - 1] <= 'z')
			split[n++] = '_';
		split[n++] = name[i];
	}
	split[n] = '\0';
	rc = pipe_text_normalize(&norm, &norm_len, split, n);
	free(split);
	if (rc < 0)
		return rc;
	if (!(o = malloc(2 * norm_len + 8))) {
		free(norm);
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	}
	*out = o;
	for (i = 0; i < norm_len;) {
		size_t start, end;
		const char *stem = NULL;

		while (i < norm_len && !(norm[i] >= 'a' && norm[i] <= 'z'))
			i++;
		start = i;
		while (i < norm_len && ((norm[i] >= 'a' && norm[i] <= 'z') ||
					(norm[i] >= '0' && norm[i] <= '9')))
			i++;
		end = i;
		while (end > start && norm[end - 1] >= '0' && norm[end - 1] <= '9')
			end--;
		if (end == start)
			continue;
		for (k = 0; k < sizeof(tool_stems) / sizeof(*tool_stems) && !stem; k++) {
			size_t pl = strlen(tool_stems[k][0]);

			if (end - start >= pl && memcmp(norm + start, tool_stems[k][0], pl) == 0 &&
			    inflection(norm + start + pl, end - start - pl))
				stem = tool_stems[k][1];
		}
		if (o != *out)
			*o++ = '_';
		if (stem) {
			memcpy(o, stem, strlen(stem));
			o += strlen(stem);
		} else {
			memcpy(o, norm + start, end - start);
			o += end - start;
		}
	}
	*o = '\0';
	free(norm);
	return 0;
}

/* Tool rules on one tool name (a string node at the current path): the name
 * as written, its form by meaning, and each word of it that names a denied
 * tool on its own. The first finding of a rule is reported once. */
static int check_tool_name(checker *ck, const pipe_node *name)
{
	char *form = NULL, word[32];
	bool any = false, matched;
	size_t i, k, wl;
	const char *w;
	int rc = 0;

	if (!name || name->type != PIPE_NODE_STRING)
		return 0;
	if ((rc = tool_name_form(&form, name->v.s.ptr, name->v.s.len)) < 0)
		return rc;
	/* The name as written, then its form by meaning. */
	for (i = 0; i < ck->p->nrules && rc == 0; i++) {
		const policy_rule *r = &ck->p->rules[i];

		if (r->kind != PIPE_POLICY_TOOL)
			continue;
		rc = check_pattern(ck, r, name->v.s.ptr, name->v.s.ptr, name->v.s.len, &name->mark,
				   &matched);
		if (rc == 0 && !matched)
			rc = check_pattern(ck, r, form, form, strlen(form), &name->mark, &matched);
		any = any || matched;
	}
	/* Nothing found: each word that names a denied tool on its own
	 * ("system_exec", "bash2_runner"). */
	for (w = form; rc == 0 && !any && *w; w += wl, w += *w == '_') {
		wl = strcspn(w, "_");
		for (k = 0; k < sizeof(tool_alone) / sizeof(*tool_alone); k++)
			if (wl == strlen(tool_alone[k]) && memcmp(w, tool_alone[k], wl) == 0)
				break;
		if (k == sizeof(tool_alone) / sizeof(*tool_alone))
			continue;
		snprintf(word, sizeof(word), "%.*s", (int)wl, w);
		for (i = 0; i < ck->p->nrules && rc == 0 && !any; i++)
			if (ck->p->rules[i].kind == PIPE_POLICY_TOOL) {
				rc = check_pattern(ck, &ck->p->rules[i], word, word, strlen(word),
						   &name->mark, &matched);
				any = matched;
			}
	}
	free(form);
	return rc;
}

/*
 * Capability and grant rules on one capability name. A capability already
 * refused by a deny capability rule is not reported again as not granted.
 */
static int check_capability(checker *ck, const pipe_node *cap)
{
	bool matched, denied = false;
	size_t i;
	int rc = 0;

	if (!cap || cap->type != PIPE_NODE_STRING)
		return 0;
	for (i = 0; i < ck->p->nrules && rc == 0; i++) {
		const policy_rule *r = &ck->p->rules[i];

		if (r->kind != PIPE_POLICY_CAPABILITY)
			continue;
		rc = check_pattern(ck, r, cap->v.s.ptr, cap->v.s.ptr, cap->v.s.len, &cap->mark,
				   &matched);
		if (matched && r->severity == PIPE_SEV_ERROR)
			denied = true;
	}
	for (i = 0; i < ck->p->nrules && rc == 0 && !denied; i++) {
		const policy_rule *r = &ck->p->rules[i];

		if (r->kind == PIPE_POLICY_GRANT && !cap_listed(ck->p, cap->v.s.ptr))
			rc = report_match(ck, r, &cap->mark, cap->v.s.ptr, 0, cap->v.s.len);
	}
	return rc;
}

static int check_names(checker *ck, const pipe_node *t)
{
	const pipe_node *list;
	size_t i;
	int rc = 0;

	list = pipe_node_get(t, "tools");
	for (i = 0; list && list->type == PIPE_NODE_SEQ && i < list->v.seq.n && rc == 0; i++) {
		const pipe_node *tool = list->v.seq.items[i];

		push_key(ck, "tools");
		push_index(ck, i);
		push_key(ck, "name");
		rc = check_tool_name(ck, pipe_node_get(tool, "name"));
		pop(ck);
		push_key(ck, "capability");
		if (rc == 0)
			rc = check_capability(ck, pipe_node_get(tool, "capability"));
		pop(ck);
		pop(ck);
		pop(ck);
	}
	list = pipe_node_get(t, "steps");
	for (i = 0; list && list->type == PIPE_NODE_SEQ && i < list->v.seq.n && rc == 0; i++) {
		push_key(ck, "steps");
		push_index(ck, i);
		push_key(ck, "tool");
		rc = check_tool_name(ck, pipe_node_get(list->v.seq.items[i], "tool"));
		pop(ck);
		pop(ck);
		pop(ck);
	}
	list = pipe_node_get(t, "capabilities");
	for (i = 0; list && list->type == PIPE_NODE_SEQ && i < list->v.seq.n && rc == 0; i++) {
		push_key(ck, "capabilities");
		push_index(ck, i);
		rc = check_capability(ck, list->v.seq.items[i]);
		pop(ck);
		pop(ck);
	}
	return rc;
}

int pipe_policy_check(const pipe_policy *p, const pipe_node *resolved, pipe_diags *diags)
{
	checker ck;
	int rc;

	if (!p || !diags)
		return art_error_set(AF_EINVAL, "pipe_policy_check: invalid argument");
	if (!resolved || resolved->type != PIPE_NODE_MAP)
		return art_error_set(AF_EINVAL, "policy check: the template is not a map");
	memset(&ck, 0, sizeof(ck));
	ck.p = p;
	ck.diags = diags;
	ck.md = pcre2_match_data_create(p->ovector_pairs, NULL);
	if (!ck.md)
		return art_error_set(AF_ENOMEM, "policy: out of memory");
	rc = check_names(&ck, resolved);
	if (rc == 0)
		rc = walk(&ck, resolved);
	pcre2_match_data_free(ck.md);
	free(ck.scratch);
	return rc;
}
