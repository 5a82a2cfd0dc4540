/*
 * pipe/provenance.h - what a build tells its provenance and SBOM about the
 * world outside the manifest: the source as a canonical URI, the builder's
 * identity and this run's id (from --builder-id / --source-uri or the CI's
 * environment), the templates read, the toolchain's components.
 *
 * Everything that goes into the reproducible statement is independent of
 * the clone path, the clock and the user: a local path is never a source
 * URI, and the default builder id of a CI names the workflow, not the run
 * (the run goes into the detached attestation's invocationId).
 * docs/provenance.md lists the environment variables read.
 */
#ifndef PIPE_PROVENANCE_H
#define PIPE_PROVENANCE_H

#include "art/manifest.h"
#include "pipe/frontend.h"
#include "pipe/resolve.h"

#include <stddef.h>

/** Builder id of a build outside any recognised CI. */
#define PIPE_BUILDER_ID_LOCAL "https://agentfactory.dev/builder/v1"
/** Source URI when nothing better is known (no remote, or a local path). */
#define PIPE_SOURCE_URI_LOCAL "urn:agentfactory:source:local"

/**
 * The canonical source URI: explicit if given; else the CI's repository URL
 * (GITHUB_SERVER_URL/GITHUB_REPOSITORY, CI_PROJECT_URL); else the URL of the
 * "origin" remote of repo_dir when it is a URL (user and password removed);
 * else PIPE_SOURCE_URI_LOCAL.
 * @param[out] out  caller owns; free()
 * @return 0, AF_EINVAL (explicit is not printable ASCII) or AF_ENOMEM
 */
int pipe_provenance_source_uri(char **out, const char *repo_dir, const char *explicit_uri);

/**
 * The builder id: explicit if given; else AF_BUILDER_ID; on GitHub Actions
 * GITHUB_SERVER_URL/GITHUB_WORKFLOW_REF; on GitLab
 * CI_PROJECT_URL/-/ci/CI_CONFIG_PATH; else PIPE_BUILDER_ID_LOCAL.
 * @param[out] out  caller owns; free()
 */
int pipe_provenance_builder_id(char **out, const char *explicit_id);

/**
 * This run's id for the attestation: AF_INVOCATION_ID; the GitHub run
 * (…/actions/runs/ID/attempts/N) or CI_JOB_URL; else NULL.
 * @param[out] out  caller owns (NULL when unknown); free()
 */
int pipe_provenance_invocation_id(char **out);

/** Templates and components for one provenance; owns every string. */
typedef struct pipe_provenance_lists {
	art_provenance_file *templates;
	size_t n_templates;
	art_sbom_component *components;
	size_t n_components;
	char **strings;
	size_t n_strings, cap_strings;
} pipe_provenance_lists;

/**
 * The files of r's chain (the template first, then its ancestors): path,
 * SHA-256 and git blob id of each, read from fe's source.
 * @return 0 or AF_ENOMEM
 */
int pipe_provenance_templates(pipe_provenance_lists *l, const pipe_frontend *fe,
			      const pipe_resolved *r);

/**
 * The components of a toolchain id (gen_toolchain_id's format): the guest
 * library, wasi-libc, clang, lld, compiler-rt, wasm2c, the native cc; with
 * Debian package versions and purls read from dpkg_status (a dpkg status
 * file, normally /var/lib/dpkg/status; NULL or unreadable: none).
 * @return 0 or AF_ENOMEM
 */
int pipe_provenance_components(pipe_provenance_lists *l, const char *toolchain_id,
			       const char *dpkg_status);

/** Free the lists' contents (not l itself). NULL-safe. */
void pipe_provenance_lists_free(pipe_provenance_lists *l);

#endif
