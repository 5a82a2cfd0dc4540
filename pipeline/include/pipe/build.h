/*
 * pipe/build.h - `agentfactory build`: the front end, then every concrete
 * template compiled to a signed, precompiled artifact, stored in one LMDB
 * write transaction.
 *
 * Nothing is built when the front end has a finding. Nothing is stored unless
 * every agent built: a build either lands whole or not at all, and a crash at
 * any point leaves the store as it was before (LMDB commits once).
 * Incremental: an agent whose resolved-template digest, toolchain id and
 * policy digest match a stored artifact is a cache hit and is not compiled.
 */
#ifndef PIPE_BUILD_H
#define PIPE_BUILD_H

#include "art/keyring.h"
#include "art/keys.h"
#include "gen/toolchain.h"
#include "pipe/frontend.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

typedef struct pipe_build_opts {
	const char *repo, *rev, *subdir;  /* as for the front end; a git revision is required */
	const art_keyring *keyring;       /* template signatures; must trust builder_key as builder */
	const pipe_policy *policy;
	const art_key *builder_key;       /* private key that signs the manifests */
	const char *store_dir;            /* created if missing */
	unsigned jobs;                    /* parallel workers; 0 = number of CPUs */
	time_t now;
	FILE *progress;                   /* NULL: silent */
	bool progress_tty;                /* one rewritten line instead of a line per agent */
	bool keep_workdir;                /* keep the generated sources and objects */
	const char *builder_id;           /* provenance builder.id; NULL: from the CI's
					     environment (pipe/provenance.h) */
	const char *source_uri;           /* provenance source; NULL: CI, then the origin
					     remote; never a local path */
	bool all_or_nothing;              /* any failed template or agent: store nothing
					     (default: store every agent that built, report
					     the others) */
} pipe_build_opts;

typedef enum pipe_build_status {
	PIPE_BUILD_CACHED,   /* unchanged: nothing compiled */
	PIPE_BUILD_BUILT,    /* compiled and stored */
	PIPE_BUILD_FAILED    /* codegen, toolchain or import check failed */
} pipe_build_status;

typedef struct pipe_build_item {
	const char *name, *version;       /* borrowed from the front end */
	const char *resolved_digest;      /* borrowed */
	pipe_build_status status;
	char *error;                      /* owned; why it failed */
	gen_stage_times times;            /* zero for cache hits */
	char manifest_digest[72];         /* "sha256:..." of the stored manifest */
	size_t wasm_size, native_size, source_size;
} pipe_build_item;

typedef struct pipe_build_report {
	pipe_frontend *fe;                /* owned; its findings when the front end failed */
	bool frontend_failed;             /* findings: with all_or_nothing (or findings not
					     tied to one template) nothing was built; else the
					     templates with findings were left out */
	size_t n_skipped;                 /* templates left out for their findings */
	bool stored;                      /* the built agents were stored */
	pipe_build_item *items;           /* one per concrete template, by name */
	size_t n, n_built, n_cached, n_failed;
	char *workdir;                    /* owned; set when kept */
	char *toolchain_id;               /* owned */
	double total_ms, compile_ms;      /* wall time; time spent compiling */
	unsigned jobs;
} pipe_build_report;

/**
 * Run a build.
 * @param[out] out  caller owns (pipe_build_report_free); set when 0 is returned
 * @return 0 when the build ran to a decision (check out->frontend_failed and
 *         out->n_failed; out->stored says whether the agents that built were
 *         stored: always, unless opts->all_or_nothing and something failed); a negative
 *         AF_E* code when it could not run (repository, store, toolchain,
 *         key not trusted as builder), with the message in art_error_last().
 */
int pipe_build_run(pipe_build_report **out, const pipe_build_opts *opts);

/** NULL-safe. */
void pipe_build_report_free(pipe_build_report *r);

#endif
