/*
 * cmd_check.c - `agentfactory check`: the whole front end on a revision, as a
 * report (text or JSON) and an exit code (0 clean, 1 findings, 2 usage/IO).
 */
#include "cli.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/util.h"
#include "pipe/frontend.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory check --repo DIR [--rev REV] --keyring FILE [--policies DIR]\n"
		"                          [--dir SUBDIR] [--json]\n\n"
		"Reads every template (*.yaml) under SUBDIR (default: templates/, or the\n"
		"repository root if it has none) at revision REV of the git repository DIR\n"
		"(bare or not; no checkout), verifies each template's signature (FILE.sig)\n"
		"against the keyring, validates it, resolves inheritance, and checks every\n"
		"concrete template against the policies.\n\n"
		"options:\n"
		"  --repo DIR       git repository, or a plain directory (then REV must be absent)\n"
		"  --rev REV        revision: commit, branch, tag, HEAD~1 ... (default: HEAD when DIR\n"
		"                   is a git repository, else the files in DIR)\n"
		"  --keyring FILE   trusted public keys (env AF_KEYRING)\n"
		"  --policies DIR   policy directory (env AF_POLICIES; default: the installed policies).\n"
		"                   Never taken from the repository being checked.\n"
		"  --dir SUBDIR     template folder inside the repository\n"
		"  --json           machine-readable report on stdout\n"
		"  --store DIR      also record the check in the store's audit log (env AF_STORE)\n"
		"  -h, --help       this help\n\n"
		"exit codes: 0 every template verified and policy-clean, 1 findings,\n"
		"            2 usage error or unreadable repository/keyring/policies\n");
}

typedef struct check_args {
	const char *repo, *rev, *keyring, *policies, *subdir, *store;
	int json;
} check_args;

static int parse_check_args(check_args *a, int argc, char **argv, const char *cmd, int *done)
{
	static const struct option opts[] = {
		{"repo", required_argument, NULL, 'r'}, {"rev", required_argument, NULL, 'R'},
		{"keyring", required_argument, NULL, 'k'}, {"policies", required_argument, NULL, 'p'},
		{"dir", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},
		{"store", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	*done = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->repo = optarg; break;
		case 'R': a->rev = optarg; break;
		case 'k': a->keyring = optarg; break;
		case 'p': a->policies = optarg; break;
		case 'd': a->subdir = optarg; break;
		case 'j': a->json = 1; break;
		case 's': a->store = optarg; break;
		case 'h': *done = 1; return CLI_OK;
		default:
			return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	return CLI_OK;
}

/* Loads keyring + policies and runs the front end. On failure prints why and
 * returns CLI_USAGE. */
static int run_frontend(pipe_frontend **fe, art_keyring **kr, pipe_policy **pol,
			const check_args *a, const char *cmd, int keyring_optional)
{
	pipe_frontend_opts o;
	pipe_diags pd = PIPE_DIAGS_INIT;
	const char *keyring = cli_flag_or_env(a->keyring, "AF_KEYRING");
	const char *policies = cli_default_policies(a->policies);
	int rc;

	*fe = NULL;
	*kr = NULL;
	*pol = NULL;
	if (!a->repo)
		return cli_usage_error(cmd, "--repo DIR is required");
	if (!keyring && !keyring_optional)
		return cli_usage_error(cmd, "--keyring FILE (or AF_KEYRING) is required: signatures are always verified");
	if (keyring && art_keyring_load(kr, keyring) < 0)
		return cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
	if (pipe_policy_load_dir(pol, policies, &pd) < 0) {
		fprintf(stderr, "agentfactory %s: cannot load policies from %s\n", cmd, policies);
		if (pd.n)
			pipe_diags_print(&pd, stderr);
		else
			fprintf(stderr, "%s\n", art_error_last());
		pipe_diags_free(&pd);
		return CLI_USAGE;
	}
	pipe_diags_free(&pd);
	memset(&o, 0, sizeof(o));
	o.repo = a->repo;
	o.rev = a->rev;
	o.subdir = a->subdir;
	o.keyring = *kr;
	o.policy = *pol;
	o.now = art_time_now();
	rc = pipe_frontend_run(fe, &o);
	if (rc < 0)
		return cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
	return CLI_OK;
}

static const char *entry_status(const pipe_frontend_entry *e)
{
	return (e->errors == 0) ? "ok" : "FAIL";
}

static void print_text(const pipe_frontend *fe, const pipe_policy *pol)
{
	size_t i, failed = 0;

	printf("checking %s: %zu templates, policy %s\n", fe->source->origin, fe->n,
	       pipe_policy_digest(pol));
	for (i = 0; i < fe->n; i++) {
		const pipe_frontend_entry *e = &fe->entries[i];
		char what[160] = "";

		if (e->tpl)
			snprintf(what, sizeof(what), "%s@%s%s", e->tpl->name, e->tpl->version,
				 e->tpl->abstract ? " (abstract)" : "");
		if (e->errors)
			failed++;
		printf("  %-4s  %-44s %-36s", entry_status(e), e->path, what);
		if (e->signature_ok)
			printf(" signed by %.16s", e->signer);
		putchar('\n');
	}
	if (fe->diags.n) {
		putchar('\n');
		pipe_diags_print(&fe->diags, stdout);
	}
	printf("\n%zu of %zu templates verified and policy-clean", fe->n - failed, fe->n);
	if (failed || fe->diags.n)
		printf("; %zu failed (%zu errors, %zu warnings)", failed, pipe_diags_errors(&fe->diags),
		       fe->diags.n - pipe_diags_errors(&fe->diags));
	putchar('\n');
}

static int print_json(const pipe_frontend *fe, const pipe_policy *pol, const check_args *a)
{
	json_t *root, *arr;
	char *s;
	size_t i;

	arr = json_array();
	for (i = 0; arr && i < fe->n; i++) {
		const pipe_frontend_entry *e = &fe->entries[i];
		json_t *o = json_pack("{s:s, s:b, s:b, s:b, s:b, s:I, s:I}", "path", e->path,
				      "ok", e->errors == 0, "verified", e->signature_ok && e->trusted,
				      "resolved", e->resolved_ok, "policy_clean", e->policy_ok,
				      "errors", (json_int_t)e->errors, "warnings", (json_int_t)e->warnings);
		if (!o)
			continue;
		if (e->tpl) {
			json_object_set_new(o, "name", json_string(e->tpl->name));
			json_object_set_new(o, "version", json_string(e->tpl->version));
			json_object_set_new(o, "abstract", json_boolean(e->tpl->abstract));
		}
		if (e->signature_ok)
			json_object_set_new(o, "signer", json_string(e->signer));
		if (e->resolved)
			json_object_set_new(o, "digest", json_string(e->resolved->digest));
		json_array_append_new(arr, o);
	}
	root = json_pack("{s:s, s:s?, s:s?, s:s, s:b, s:o, s:o}", "repo", a->repo, "rev", a->rev,
			 "commit", fe->source->commit, "policy_digest", pipe_policy_digest(pol),
			 "ok", pipe_frontend_ok(fe), "templates", arr ? arr : json_array(),
			 "findings", pipe_diags_to_json(&fe->diags));
	if (!root)
		return cli_fail(CLI_USAGE, "check", "out of memory");
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return cli_fail(CLI_USAGE, "check", "out of memory");
	puts(s);
	free(s);
	return CLI_OK;
}

int cmd_check(int argc, char **argv)
{
	check_args a;
	pipe_frontend *fe = NULL;
	art_keyring *kr = NULL;
	pipe_policy *pol = NULL;
	int done, rc;

	rc = parse_check_args(&a, argc, argv, "check", &done);
	if (rc != CLI_OK || done) {
		if (done)
			check_usage(stdout);
		return rc;
	}
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	rc = run_frontend(&fe, &kr, &pol, &a, "check", 0);
	if (rc == CLI_OK) {
		if (a.json)
			rc = print_json(fe, pol, &a);
		else
			print_text(fe, pol);
		if (rc == CLI_OK && !pipe_frontend_ok(fe))
			rc = CLI_FINDINGS;
		if (rc != CLI_USAGE &&
		    cli_audit("check", a.store, "check", NULL, a.repo, !pipe_frontend_ok(fe),
			      json_pack("{s:s, s:s?, s:s?, s:s, s:I, s:I}", "repo", a.repo, "rev", a.rev,
					"commit", fe->source->commit, "policy", pipe_policy_digest(pol),
					"templates", (json_int_t)fe->n,
					"errors", (json_int_t)pipe_diags_errors(&fe->diags))) != 0)
			rc = CLI_USAGE;
	}
	pipe_frontend_free(fe);
	pipe_policy_free(pol);
	art_keyring_free(kr);
	return rc;
}

static void resolve_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory resolve --repo DIR [--rev REV] [--keyring FILE] [--policies DIR]\n"
		"                            [--dir SUBDIR] NAME\n\n"
		"Prints template NAME with its inheritance resolved, in the canonical JSON\n"
		"form whose SHA-256 is the template digest (printed on stderr).\n"
		"With a keyring (--keyring or AF_KEYRING) the whole front end runs first and\n"
		"NAME must verify and be policy-clean, with its ancestors. Without one,\n"
		"signatures are not checked (for authoring) and stderr says so.\n\n"
		"exit codes: 0 printed, 1 NAME unknown or has findings, 2 usage or read error\n");
}

int cmd_resolve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"repo", required_argument, NULL, 'r'}, {"rev", required_argument, NULL, 'R'},
		{"keyring", required_argument, NULL, 'k'}, {"policies", required_argument, NULL, 'p'},
		{"dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	check_args a;
	pipe_frontend *fe = NULL;
	art_keyring *kr = NULL;
	pipe_policy *pol = NULL;
	const pipe_frontend_entry *e;
	const char *name;
	int c, rc;
	size_t i;

	memset(&a, 0, sizeof(a));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a.repo = optarg; break;
		case 'R': a.rev = optarg; break;
		case 'k': a.keyring = optarg; break;
		case 'p': a.policies = optarg; break;
		case 'd': a.subdir = optarg; break;
		case 'h': resolve_usage(stdout); return CLI_OK;
		default:
			return cli_usage_error("resolve", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("resolve", "exactly one template NAME is required");
	name = argv[optind];
	rc = run_frontend(&fe, &kr, &pol, &a, "resolve", 1);
	if (rc != CLI_OK)
		goto cleanup;
	e = pipe_frontend_find(fe, name);
	if (!e) {
		rc = cli_fail(CLI_FINDINGS, "resolve", "no template named '%s' in %s", name,
			      fe->source->origin);
		goto cleanup;
	}
	if (!e->resolved || e->errors) {
		for (i = 0; i < fe->diags.n; i++) {
			pipe_diags one = {&fe->diags.items[i], 1, 1};
			pipe_diags_print(&one, stderr);
		}
		rc = cli_fail(CLI_FINDINGS, "resolve", "template '%s' (%s) has findings", name, e->path);
		goto cleanup;
	}
	fwrite(e->resolved->canonical, 1, e->resolved->canonical_len, stdout);
	putchar('\n');
	fprintf(stderr, "%s@%s %s%s\n", e->tpl->name, e->tpl->version, e->resolved->digest,
		kr ? "" : " (signatures NOT verified: no keyring given)");
	rc = CLI_OK;
cleanup:
	pipe_frontend_free(fe);
	pipe_policy_free(pol);
	art_keyring_free(kr);
	return rc;
}
