/*
 * test_frontend.c - the front end with a keyring: each way a template's
 * signature can fail is its own finding (missing, malformed, unknown key,
 * wrong role, expired, revoked, mismatch), a signature file without its
 * template is a warning, a template whose ancestor did not verify is not
 * trusted (extends.untrusted at its extends line), and a signed chain is
 * trusted with its signer recorded. Also: a template the code generator
 * refuses is a build.limits finding, and no keyring means nothing trusted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/sig.h"
#include "art/util.h"
#include "pipe/frontend.h"
#include "pipe/policy.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW ((time_t)1735689600) /* 2025-01-01 */

static char *base;
static art_key *signer, *builder_only, *expired_key, *revoked_key, *stranger;
static art_keyring *keyring;
static pipe_policy *policy;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void put(const char *dir, const char *name, const char *text, size_t len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(art_file_write_atomic(path, text, len, 0644), 0);
}

static const char *const tpl_fmt =
	"kind: AgentTemplate\napiVersion: agentfactory/v1\nname: %s\nversion: 1.0.0\n"
	"%s"
	"description: A helper.\nrole: helper\ngoal: Answer questions.\n"
	"instructions: |\n  You are {{name}}. Task: {{ task }}\n"
	"model: {provider: openai, name: gpt-4o-mini}\n"
	"capabilities: [log, llm_chat]\n"
	"inputs:\n  type: object\n  properties:\n    task: {type: string}\n  required: [task]\n";

/* Writes NAME.yaml (extending parent if not NULL) signed by key (NULL: no
 * signature; sig_text: this text as its signature instead). */
static void template(const char *dir, const char *name, const char *parent, const art_key *key,
		     const char *sig_text)
{
	char text[2048], ext[128] = "", file[300];
	char *env = NULL;

	if (parent)
		snprintf(ext, sizeof(ext), "extends: %s\n", parent);
	snprintf(text, sizeof(text), tpl_fmt, name, ext);
	snprintf(file, sizeof(file), "%s.yaml", name);
	put(dir, file, text, strlen(text));
	snprintf(file, sizeof(file), "%s.yaml.sig", name);
	if (sig_text) {
		put(dir, file, sig_text, strlen(sig_text));
	} else if (key) {
		assert_int_equal(art_sig_sign(&env, key, ART_SIG_TYPE_TEMPLATE, name, "1.0.0", text,
					      strlen(text)), 0);
		put(dir, file, env, strlen(env));
		free(env);
	}
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR"), *src = getenv("AF_SRCDIR");
	pipe_diags d = PIPE_DIAGS_INIT;
	char *path = NULL, *data = NULL;
	size_t len;

	(void)state;
	if (asprintf(&base, "%s/af-test-frontend-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
	    !mkdtemp(base))
		return -1;
	if (art_key_generate(&signer, 2048) || art_key_generate(&builder_only, 2048) ||
	    art_key_generate(&expired_key, 2048) || art_key_generate(&revoked_key, 2048) ||
	    art_key_generate(&stranger, 2048) || art_keyring_new(&keyring) ||
	    art_keyring_add(keyring, signer, ART_ROLE_TEMPLATE_SIGNER, 0, 0) ||
	    art_keyring_add(keyring, builder_only, ART_ROLE_BUILDER, 0, 0) ||
	    art_keyring_add(keyring, expired_key, ART_ROLE_TEMPLATE_SIGNER, NOW - 7200, NOW - 3600) ||
	    art_keyring_add(keyring, revoked_key, ART_ROLE_TEMPLATE_SIGNER, 0, 0) ||
	    art_keyring_revoke(keyring, art_key_id(revoked_key), NOW - 60, "leaked"))
		return -1;
	if (asprintf(&path, "%s/policies/default.yaml", src && *src ? src : ".") < 0 ||
	    art_file_read(&data, &len, path, 1 << 20) ||
	    pipe_policy_load_buffer(&policy, path, data, len, &d))
		return -1;
	free(path);
	free(data);
	pipe_diags_free(&d);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(base);
	art_key_free(signer);
	art_key_free(builder_only);
	art_key_free(expired_key);
	art_key_free(revoked_key);
	art_key_free(stranger);
	art_keyring_free(keyring);
	pipe_policy_free(policy);
	return 0;
}

static char *fresh_dir(const char *name)
{
	char *dir = NULL;

	assert_true(asprintf(&dir, "%s/%s", base, name) > 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	return dir;
}

static pipe_frontend *run(const char *dir, const art_keyring *kr)
{
	pipe_frontend_opts o = {dir, NULL, ".", kr, policy, NOW};
	pipe_frontend *fe = NULL;

	if (pipe_frontend_run(&fe, &o) != 0)
		fail_msg("front end: %s", art_error_last());
	return fe;
}

/* The one finding with this rule on path, or fail. */
static const pipe_diag *finding(const pipe_frontend *fe, const char *path, const char *rule)
{
	size_t i;
	const pipe_diag *hit = NULL;

	for (i = 0; i < fe->diags.n; i++)
		if (strcmp(fe->diags.items[i].rule, rule) == 0 && fe->diags.items[i].file &&
		    strcmp(fe->diags.items[i].file, path) == 0) {
			if (hit)
				fail_msg("%s: two %s findings", path, rule);
			hit = &fe->diags.items[i];
		}
	if (!hit) {
		pipe_diags_print(&fe->diags, stderr);
		fail_msg("%s: no %s finding", path, rule);
	}
	return hit;
}

static void test_frontend__each_signature_failure_is_named(void **state)
{
	char *dir = fresh_dir("sigs");
	pipe_frontend *fe;
	const pipe_frontend_entry *e;
	const pipe_diag *f;
	size_t i;

	(void)state;
	template(dir, "good-one", NULL, signer, NULL);
	template(dir, "no-sig", NULL, NULL, NULL);
	template(dir, "garbled", NULL, NULL, "{not a signature");
	template(dir, "by-stranger", NULL, stranger, NULL);
	template(dir, "by-builder", NULL, builder_only, NULL);
	template(dir, "by-expired", NULL, expired_key, NULL);
	template(dir, "by-revoked", NULL, revoked_key, NULL);
	/* signed, then edited: the signature no longer matches */
	template(dir, "edited", NULL, signer, NULL);
	{
		char path[4096];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/edited.yaml", dir);
		fp = fopen(path, "a");
		assert_non_null(fp);
		fputs("labels: {edited: \"yes\"}\n", fp);
		fclose(fp);
	}
	put(dir, "gone.yaml.sig", "{}", 2);
	fe = run(dir, keyring);
	assert_false(pipe_frontend_ok(fe));
	assert_int_equal(fe->n, 8);
	finding(fe, "no-sig.yaml", "sig.missing");
	finding(fe, "garbled.yaml", "sig.malformed");
	finding(fe, "by-stranger.yaml", "sig.unknown-key");
	finding(fe, "by-builder.yaml", "sig.role");
	finding(fe, "by-expired.yaml", "sig.expired");
	finding(fe, "by-revoked.yaml", "sig.revoked");
	f = finding(fe, "edited.yaml", "sig.mismatch");
	assert_int_equal(f->severity, PIPE_SEV_ERROR);
	assert_non_null(strstr(f->message, "signature rejected"));
	f = finding(fe, "gone.yaml.sig", "sig.orphan");
	assert_int_equal(f->severity, PIPE_SEV_WARNING);
	assert_non_null(strstr(f->message, "gone.yaml"));
	for (i = 0; i < fe->n; i++) {
		e = &fe->entries[i];
		if (strcmp(e->path, "good-one.yaml") == 0) {
			assert_true(e->signature_ok && e->trusted && e->policy_ok);
			assert_string_equal(e->signer, art_key_id(signer));
			assert_int_equal(e->errors, 0);
		} else {
			assert_false(e->signature_ok);
			assert_false(e->trusted);
			assert_string_equal(e->signer, "");
			assert_true(e->errors >= 1);
		}
	}
	pipe_frontend_free(fe);
	free(dir);
}

static void test_frontend__untrusted_ancestor(void **state)
{
	char *dir = fresh_dir("chain");
	pipe_frontend *fe;
	const pipe_frontend_entry *child, *grandchild, *base_e;
	const pipe_diag *f;

	(void)state;
	template(dir, "base-one", NULL, NULL, NULL); /* unsigned */
	template(dir, "child-one", "base-one", signer, NULL);
	template(dir, "grandchild-one", "child-one", signer, NULL);
	fe = run(dir, keyring);
	base_e = pipe_frontend_find(fe, "base-one");
	child = pipe_frontend_find(fe, "child-one");
	grandchild = pipe_frontend_find(fe, "grandchild-one");
	assert_non_null(base_e);
	assert_non_null(child);
	assert_non_null(grandchild);
	assert_null(pipe_frontend_find(fe, "nobody"));
	assert_true(child->signature_ok);
	assert_false(child->trusted);
	assert_false(grandchild->trusted);
	f = finding(fe, "child-one.yaml", "extends.untrusted");
	assert_int_equal(f->line, 5); /* the extends line */
	assert_non_null(strstr(f->message, "inherits from 'base-one' (base-one.yaml)"));
	finding(fe, "base-one.yaml", "sig.missing");
	pipe_frontend_free(fe);

	/* without a keyring nothing is checked and nothing is trusted */
	fe = run(dir, NULL);
	child = pipe_frontend_find(fe, "child-one");
	assert_false(child->signature_ok);
	assert_false(child->trusted);
	assert_true(child->resolved_ok);
	assert_true(pipe_frontend_ok(fe));
	pipe_frontend_free(fe);
	free(dir);
}

/* A template that resolves and passes the policy but that the code
 * generator refuses: the front end says so as build.limits. */
static void test_frontend__unbuildable_template_is_a_finding(void **state)
{
	static const char text[] =
		"kind: AgentTemplate\napiVersion: agentfactory/v1\nname: too-many-steps\n"
		"version: 1.0.0\ndescription: d\nrole: r\ngoal: g\n"
		"capabilities: [log, tool_call, kv.read]\n"
		"tools:\n  - name: kv_get\n    capability: kv.read\n"
		"steps:\n  - {id: a, tool: kv_get}\n  - {id: b, tool: kv_get}\n"
		"limits: {max_steps: 1}\n";
	char *dir = fresh_dir("limits");
	pipe_frontend *fe;
	const pipe_frontend_entry *e;
	const pipe_diag *f;

	(void)state;
	put(dir, "too-many-steps.yaml", text, sizeof(text) - 1);
	fe = run(dir, NULL);
	e = pipe_frontend_find(fe, "too-many-steps");
	assert_non_null(e);
	if (e->policy_ok) {
		pipe_diags_print(&fe->diags, stderr);
		fail_msg("accepted");
	}
	f = finding(fe, "too-many-steps.yaml", "build.limits");
	assert_null(strstr(f->message, "codegen: "));
	assert_non_null(strstr(f->message, "max_steps"));
	pipe_frontend_free(fe);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frontend__each_signature_failure_is_named),
		cmocka_unit_test(test_frontend__untrusted_ancestor),
		cmocka_unit_test(test_frontend__unbuildable_template_is_a_finding),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
