/*
 * pipe/frontend.h - the template front end in one call: read a repository
 * revision, parse and validate every template, verify every signature,
 * resolve inheritance, and check every concrete template against policy.
 *
 * Nothing read from the repository is trusted until its signature verified:
 * a template whose own signature, or any ancestor's, fails is reported and
 * marked failed, even if its own bytes are fine. Policies come from the
 * caller (the pipeline's configuration), never from the repository.
 */
#ifndef PIPE_FRONTEND_H
#define PIPE_FRONTEND_H

#include "art/keyring.h"
#include "art/sig.h"
#include "pipe/node.h"
#include "pipe/policy.h"
#include "pipe/resolve.h"
#include "pipe/source.h"
#include "pipe/template.h"

#include <stdbool.h>
#include <time.h>

/** Payload type bound into every template signature. */
#define PIPE_TEMPLATE_PAYLOAD_TYPE ART_SIG_TYPE_TEMPLATE

typedef struct pipe_frontend_opts {
	const char *repo;             /* repository directory (bare or not) or plain directory */
	const char *rev;              /* revision, or NULL (HEAD of a git repo; else the directory) */
	const char *subdir;           /* folder of templates; NULL = "templates" or the root */
	const art_keyring *keyring;   /* NULL only for `resolve` while authoring: no
	                                 signature is checked and none is `trusted` */
	const pipe_policy *policy;    /* required */
	time_t now;                   /* the time keys are checked at */
} pipe_frontend_opts;

/** The outcome for one template file. */
typedef struct pipe_frontend_entry {
	const char *path;            /* borrowed from the source */
	const pipe_template *tpl;    /* borrowed from the catalog; NULL if it did not parse */
	pipe_resolved *resolved;     /* owned; NULL if resolution failed */
	char signer[65];             /* key id that verified the signature, "" if none */
	bool signature_ok;           /* its own signature verified */
	bool trusted;                /* its signature and every ancestor's verified */
	bool resolved_ok;
	bool policy_ok;              /* no policy error (abstract: not checked, true) */
	size_t errors, warnings;     /* findings on this template */
} pipe_frontend_entry;

typedef struct pipe_frontend {
	pipe_source *source;         /* owned */
	pipe_catalog *catalog;       /* owned: every template that parsed */
	pipe_frontend_entry *entries;/* one per template file, sorted by path */
	size_t n;
	pipe_diags diags;            /* every finding, de-duplicated */
} pipe_frontend;

/**
 * Run the front end.
 * @param[out] out  caller owns; pipe_frontend_free. Set whenever the return is 0.
 * @return 0 when the front end ran (findings, if any, are in out->diags and
 *         the entries); AF_ENOTFOUND / AF_EGIT / AF_EIO / AF_ETOOBIG when the
 *         repository or revision cannot be read; AF_ENOMEM.
 */
int pipe_frontend_run(pipe_frontend **out, const pipe_frontend_opts *opts);

/** true when there is no error finding at all. */
bool pipe_frontend_ok(const pipe_frontend *fe);

/** The entry whose template has this name, or NULL. Borrowed. */
const pipe_frontend_entry *pipe_frontend_find(const pipe_frontend *fe, const char *name);

/** Free everything. NULL-safe. */
void pipe_frontend_free(pipe_frontend *fe);

#endif
