/*
 * frontend.c - read, parse, verify, resolve, policy-check (see pipe/frontend.h).
 *
 * Order matters for trust: every template is parsed (the parser is hardened
 * against hostile input and must run to learn the name and version the
 * signature has to bind), then its signature is verified; resolution and
 * policy only mark a template good when it and all its ancestors verified.
 */
#include "pipe/frontend.h"

#include "art/error.h"
#include "art/sig.h"
#include "gen/cgen.h"

#include <stdlib.h>
#include <string.h>

static int check_buildable(pipe_frontend_entry *e, pipe_diags *local);

static bool is_template_path(const char *path)
{
	size_t n = strlen(path);

	return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

static bool is_sig_path(const char *path)
{
	size_t n = strlen(path);

	return (n > 9 && strcmp(path + n - 9, ".yaml.sig") == 0) ||
	       (n > 8 && strcmp(path + n - 8, ".yml.sig") == 0);
}

static bool same_diag(const pipe_diag *a, const pipe_diag *b)
{
	return a->severity == b->severity && a->line == b->line && a->col == b->col &&
	       strcmp(a->rule, b->rule) == 0 && strcmp(a->message, b->message) == 0 &&
	       ((!a->file && !b->file) || (a->file && b->file && strcmp(a->file, b->file) == 0));
}

/* Move every finding of src into dst unless an identical one is there. */
static int merge_diags(pipe_diags *dst, pipe_diags *src)
{
	size_t i, j;

	for (i = 0; i < src->n; i++) {
		pipe_diag *d = &src->items[i];
		bool dup = false;

		for (j = 0; j < dst->n && !dup; j++)
			dup = same_diag(&dst->items[j], d);
		if (dup)
			continue;
		if (dst->n == dst->cap) {
			size_t cap = dst->cap ? dst->cap * 2 : 16;
			pipe_diag *p = realloc(dst->items, cap * sizeof(*p));
			if (!p)
				return art_error_set(AF_ENOMEM, "out of memory");
			dst->items = p;
			dst->cap = cap;
		}
		dst->items[dst->n++] = *d;
		memset(d, 0, sizeof(*d));
	}
	pipe_diags_free(src);
	return 0;
}

static void count_findings(pipe_frontend_entry *e, const pipe_diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		if (d->items[i].severity == PIPE_SEV_ERROR)
			e->errors++;
		else
			e->warnings++;
	}
}

static const char *sig_rule(int rc)
{
	switch (rc) {
	case AF_ECORRUPT: return "sig.malformed";
	case AF_ENOTFOUND: return "sig.unknown-key";
	case AF_EDENIED: return "sig.role";
	case AF_EEXPIRED: return "sig.expired";
	case AF_EREVOKED: return "sig.revoked";
	default: return "sig.mismatch";
	}
}

static int verify_signature(pipe_frontend *fe, pipe_frontend_entry *e, const pipe_file *file,
			    const pipe_frontend_opts *opts, pipe_diags *local)
{
	char sig_path[4096];
	const pipe_file *sig;
	art_sig_info info;
	int rc;

	snprintf(sig_path, sizeof(sig_path), "%s.sig", file->path);
	sig = pipe_source_find(fe->source, sig_path);
	if (!sig)
		return pipe_diags_add_file(local, PIPE_SEV_ERROR, file->path, "sig.missing",
					   "sign it with a template-signer key: agentfactory sign --key KEY FILE, then commit FILE.sig",
					   "no signature: %s is missing", sig_path);
	memset(&info, 0, sizeof(info));
	rc = art_sig_verify(&info, opts->keyring, ART_ROLE_TEMPLATE_SIGNER,
			    PIPE_TEMPLATE_PAYLOAD_TYPE, e->tpl->name, e->tpl->version,
			    file->data, file->len, sig->data, sig->len, opts->now);
	if (rc == AF_ENOMEM)
		return rc;
	if (rc < 0)
		return pipe_diags_add_file(local, PIPE_SEV_ERROR, file->path, sig_rule(rc),
					   NULL,
					   "signature rejected: %s", art_error_last());
	e->signature_ok = true;
	memcpy(e->signer, info.keyid, sizeof(e->signer) - 1);
	e->signer[sizeof(e->signer) - 1] = '\0';
	return 0;
}

static pipe_frontend_entry *entry_for_name(pipe_frontend *fe, const char *name)
{
	size_t i;

	for (i = 0; i < fe->n; i++)
		if (fe->entries[i].tpl && strcmp(fe->entries[i].tpl->name, name) == 0)
			return &fe->entries[i];
	return NULL;
}

const pipe_frontend_entry *pipe_frontend_find(const pipe_frontend *fe, const char *name)
{
	return entry_for_name((pipe_frontend *)fe, name);
}

/* A template is trusted when it and every ancestor verified. Reports the first
 * untrusted ancestor at the template's extends line. */
static int check_chain_trust(pipe_frontend *fe, pipe_frontend_entry *e, pipe_diags *local)
{
	size_t i;

	e->trusted = e->signature_ok;
	if (!e->resolved)
		return 0;
	for (i = 1; i < e->resolved->chain_len; i++) {
		char name[256];
		const char *at = strchr(e->resolved->chain[i], '@');
		size_t n = at ? (size_t)(at - e->resolved->chain[i]) : strlen(e->resolved->chain[i]);
		pipe_frontend_entry *anc;

		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, e->resolved->chain[i], n);
		name[n] = '\0';
		anc = entry_for_name(fe, name);
		if (anc && !anc->signature_ok) {
			e->trusted = false;
			return pipe_diags_add(local, PIPE_SEV_ERROR, &e->tpl->extends_mark,
					      "extends.untrusted", "fix the ancestor's signature first",
					      "inherits from '%s' (%s), whose signature did not verify",
					      name, anc->path);
		}
	}
	return 0;
}

int pipe_frontend_run(pipe_frontend **out, const pipe_frontend_opts *opts)
{
	pipe_frontend *fe;
	size_t i, n_templates = 0;
	int rc;

	*out = NULL;
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return art_error_set(AF_ENOMEM, "out of memory");
	if ((rc = pipe_source_read(&fe->source, opts->repo, opts->rev, opts->subdir)) < 0)
		goto fail;
	if ((rc = pipe_catalog_new(&fe->catalog)) < 0)
		goto fail;
	for (i = 0; i < fe->source->n; i++)
		if (is_template_path(fe->source->files[i].path))
			n_templates++;
	fe->entries = calloc(n_templates ? n_templates : 1, sizeof(*fe->entries));
	if (!fe->entries) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto fail;
	}

	/* 1. parse + verify each file */
	for (i = 0; i < fe->source->n; i++) {
		const pipe_file *file = &fe->source->files[i];
		pipe_diags local = PIPE_DIAGS_INIT;
		pipe_frontend_entry *e;
		pipe_template *tpl = NULL;

		if (is_sig_path(file->path)) {
			char tpl_path[4096];
			size_t len = strlen(file->path) - 4;
			if (len < sizeof(tpl_path)) {
				memcpy(tpl_path, file->path, len);
				tpl_path[len] = '\0';
				if (!pipe_source_find(fe->source, tpl_path) &&
				    pipe_diags_add_file(&fe->diags, PIPE_SEV_WARNING, file->path, "sig.orphan",
							"delete it, or restore the template it signs",
							"signature file without a template (%s)", tpl_path) < 0) {
					rc = AF_ENOMEM;
					goto fail;
				}
			}
			continue;
		}
		if (!is_template_path(file->path))
			continue;
		e = &fe->entries[fe->n++];
		e->path = file->path;
		rc = pipe_template_parse(&tpl, file->path, file->data, file->len, &local);
		if (rc == AF_ENOMEM)
			goto fail_local;
		if (rc == 0) {
			const char *tpl_name = tpl->name;
			rc = pipe_catalog_add(fe->catalog, tpl, &local);
			if (rc == AF_ENOMEM)
				goto fail_local;
			if (rc == 0)
				e->tpl = pipe_catalog_find(fe->catalog, tpl_name);
		}
		if (e->tpl && opts->keyring &&
		    (rc = verify_signature(fe, e, file, opts, &local)) == AF_ENOMEM)
			goto fail_local;
		count_findings(e, &local);
		if ((rc = merge_diags(&fe->diags, &local)) < 0)
			goto fail_local;
		continue;
fail_local:
		pipe_diags_free(&local);
		goto fail;
	}

	/* 2. resolve every template that parsed */
	for (i = 0; i < fe->n; i++) {
		pipe_frontend_entry *e = &fe->entries[i];
		pipe_diags local = PIPE_DIAGS_INIT;

		if (!e->tpl)
			continue;
		rc = pipe_resolve(&e->resolved, fe->catalog, e->tpl->name, &local);
		if (rc == AF_ENOMEM) {
			pipe_diags_free(&local);
			goto fail;
		}
		e->resolved_ok = (rc == 0);
		count_findings(e, &local);
		if ((rc = merge_diags(&fe->diags, &local)) < 0)
			goto fail;
	}

	/* 3. trust along the chain, then policy on concrete templates */
	for (i = 0; i < fe->n; i++) {
		pipe_frontend_entry *e = &fe->entries[i];
		pipe_diags local = PIPE_DIAGS_INIT;

		e->policy_ok = true;
		if (!e->tpl)
			continue;
		if (opts->keyring && (rc = check_chain_trust(fe, e, &local)) < 0)
			goto fail_policy;
		if (e->resolved && !e->resolved->abstract) {
			size_t before = pipe_diags_errors(&local);

			if ((rc = pipe_policy_check(opts->policy, e->resolved->root, &local)) < 0)
				goto fail_policy;
			if ((rc = check_buildable(e, &local)) < 0)
				goto fail_policy;
			e->policy_ok = pipe_diags_errors(&local) == before;
		}
		count_findings(e, &local);
		if ((rc = merge_diags(&fe->diags, &local)) < 0)
			goto fail;
		continue;
fail_policy:
		pipe_diags_free(&local);
		goto fail;
	}
	*out = fe;
	return 0;
fail:
	pipe_frontend_free(fe);
	return rc;
}

/*
 * What `build` would refuse, refused here already: the C generator runs on
 * the resolved template (no compiler: milliseconds) with every rule codegen
 * applies, the cost cap on generated code included (gen/cgen.h). `check`
 * and `build` thus answer alike. @return 0 (a finding may be added), AF_ENOMEM
 */
static int check_buildable(pipe_frontend_entry *e, pipe_diags *local)
{
	char *c = NULL;
	size_t len = 0;
	int rc = gen_c_generate(&c, &len, e->resolved->canonical, e->resolved->canonical_len);

	free(c);
	if (rc == AF_ENOMEM)
		return rc;
	if (rc < 0) {
		const char *msg = art_error_last();

		if (strncmp(msg, "codegen: ", 9) == 0)
			msg += 9;
		return pipe_diags_add_file(local, PIPE_SEV_ERROR, e->path,
					   rc == AF_ETOOBIG ? "build.cost" : "build.limits",
					   "the agent must be buildable: fix the template",
					   "%s", msg);
	}
	return 0;
}

bool pipe_frontend_ok(const pipe_frontend *fe)
{
	return pipe_diags_errors(&fe->diags) == 0;
}

void pipe_frontend_free(pipe_frontend *fe)
{
	size_t i;

	if (!fe)
		return;
	for (i = 0; i < fe->n; i++)
		pipe_resolved_free(fe->entries[i].resolved);
	free(fe->entries);
	pipe_diags_free(&fe->diags);
	pipe_catalog_free(fe->catalog);
	pipe_source_free(fe->source);
	free(fe);
}
