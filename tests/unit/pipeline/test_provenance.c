/*
 * test_provenance.c - what a build records about the world outside the
 * manifest: the source as a canonical URI (credentials and local paths never
 * kept), the builder and invocation ids from flags and CI variables, and the
 * toolchain's components with Debian versions and package URLs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "pipe/provenance.h"

#include <ftw.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* LeakSanitizer: libgit2 1.5 (Debian 12) leaks a PCRE2 match data block in
 * every git_remote_lookup (its regexec wrapper; nothing of ours is
 * reachable from it; with the default fast unwinder the report shows only
 * libpcre2's frames). This binary uses PCRE2 only through libgit2, so
 * suppressing leaks allocated inside libpcre2 hides nothing of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:git_remote_lookup\nleak:libpcre2-8.so\n";
}

static const char *const ci_vars[] = {
	"GITHUB_ACTIONS", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW_REF",
	"GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITLAB_CI", "CI_PROJECT_URL", "CI_CONFIG_PATH",
	"CI_JOB_URL", "AF_BUILDER_ID", "AF_INVOCATION_ID", "WASI_SDK_PATH"};

static int clear_env(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ci_vars) / sizeof(ci_vars[0]); i++)
		unsetenv(ci_vars[i]);
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A repository whose origin is url (NULL: no remote); returns its path. */
static char *repo_with_origin(const char *url)
{
	char *dir = strdup("/tmp/af-prov-test-XXXXXX");
	git_repository *repo = NULL;
	git_remote *remote = NULL;

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	git_libgit2_init();
	assert_int_equal(git_repository_init(&repo, dir, 0), 0);
	if (url)
		assert_int_equal(git_remote_create(&remote, repo, "origin", url), 0);
	git_remote_free(remote);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return dir;
}

static void expect_uri(const char *origin, const char *want)
{
	char *dir = repo_with_origin(origin), *uri = NULL;

	assert_int_equal(pipe_provenance_source_uri(&uri, dir, NULL), 0);
	assert_string_equal(uri, want);
	free(uri);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void test_provenance__source_uri(void **state)
{
	char *uri = NULL;

	(void)state;
	expect_uri("https://ci-user:s3cret@git.example.com/platform/agents.git",
		   "https://git.example.com/platform/agents.git");
	expect_uri("git@git.example.com:platform/agents.git",
		   "ssh://git.example.com/platform/agents.git");
	expect_uri("/srv/git/agents.git", PIPE_SOURCE_URI_LOCAL);
	expect_uri("file:///srv/git/agents.git", PIPE_SOURCE_URI_LOCAL);
	expect_uri("../agents.git", PIPE_SOURCE_URI_LOCAL);
	expect_uri(NULL, PIPE_SOURCE_URI_LOCAL);
	/* a directory that is no repository at all */
	assert_int_equal(pipe_provenance_source_uri(&uri, "/nonexistent/dir", NULL), 0);
	assert_string_equal(uri, PIPE_SOURCE_URI_LOCAL);
	free(uri);
	/* the CI's own URL wins over the remote, the flag over both */
	setenv("CI_PROJECT_URL", "https://gitlab.example.com/acme/agents", 1);
	expect_uri("https://other.example.com/x.git", "https://gitlab.example.com/acme/agents");
	setenv("GITHUB_SERVER_URL", "https://github.com", 1);
	setenv("GITHUB_REPOSITORY", "acme/agents", 1);
	expect_uri(NULL, "https://github.com/acme/agents");
	assert_int_equal(pipe_provenance_source_uri(&uri, NULL, "https://x.example.com/a.git"), 0);
	assert_string_equal(uri, "https://x.example.com/a.git");
	free(uri);
	assert_int_equal(pipe_provenance_source_uri(&uri, NULL, "has space"), AF_EINVAL);
	assert_null(uri);
	assert_int_equal(pipe_provenance_source_uri(&uri, NULL, ""), AF_EINVAL);
}

static void test_provenance__builder_and_invocation_ids(void **state)
{
	char *id = NULL;

	(void)state;
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, PIPE_BUILDER_ID_LOCAL);
	free(id);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_null(id); /* nothing to say outside a CI */

	setenv("GITHUB_ACTIONS", "true", 1);
	setenv("GITHUB_SERVER_URL", "https://github.com", 1);
	setenv("GITHUB_REPOSITORY", "acme/agents", 1);
	setenv("GITHUB_WORKFLOW_REF", "acme/agents/.github/workflows/build.yml@refs/heads/main", 1);
	setenv("GITHUB_RUN_ID", "4242", 1);
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, "https://github.com/acme/agents/.github/workflows/build.yml@refs/heads/main");
	free(id);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_string_equal(id, "https://github.com/acme/agents/actions/runs/4242/attempts/1");
	free(id);
	clear_env(NULL);

	setenv("GITLAB_CI", "true", 1);
	setenv("CI_PROJECT_URL", "https://gitlab.example.com/acme/agents", 1);
	setenv("CI_JOB_URL", "https://gitlab.example.com/acme/agents/-/jobs/9", 1);
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, "https://gitlab.example.com/acme/agents/-/ci/.gitlab-ci.yml");
	free(id);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_string_equal(id, "https://gitlab.example.com/acme/agents/-/jobs/9");
	free(id);

	setenv("AF_BUILDER_ID", "https://builders.example.com/b1", 1);
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, "https://builders.example.com/b1");
	free(id);
	assert_int_equal(pipe_provenance_builder_id(&id, "https://flag.example.com/b"), 0);
	assert_string_equal(id, "https://flag.example.com/b");
	free(id);
	assert_int_equal(pipe_provenance_builder_id(&id, "two words"), AF_EINVAL);
	clear_env(NULL);
}

static void test_provenance__components(void **state)
{
	static const char status[] =
		"Package: clang-19\nStatus: install ok installed\nArchitecture: amd64\n"
		"Version: 1:19.1.7-3~deb12u1\n\n"
		"Package: wasi-libc\nStatus: deinstall ok config-files\nVersion: 0.0~old\n\n"
		"Package: wasi-libc\nStatus: install ok installed\nArchitecture: all\n"
		"Version: 0.0~git20220510.9886d3d-2\n\n"
		"Package: wabt\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0.32-1\n";
	const char *id = "af-toolchain/1 clang=Debian clang version 19.1.7 (3~deb12u1); "
			 "wasm-sysroot=sha256:aaaa; wasm2c=1.0.32; cc=cc (Debian 12.2.0-14) 12.2.0; "
			 "target=x86_64-linux-gnu; guest-abi=1; guest-src=sha256:"
			 "8058e34ac30897750ea839a88d396bec9016c2450f5311db75d6cd9613674e54";
	char path[] = "/tmp/af-prov-status-XXXXXX";
	pipe_provenance_lists l;
	FILE *f;
	size_t i;
	int fd, seen = 0;

	(void)state;
	memset(&l, 0, sizeof(l));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(status, f);
	fclose(f);
	assert_int_equal(pipe_provenance_components(&l, id, path), 0);
	for (i = 0; i < l.n_components; i++) {
		const art_sbom_component *c = &l.components[i];

		if (!strcmp(c->name, "agentfactory-guest")) {
			assert_string_equal(c->sha256_hex, "8058e34ac30897750ea839a88d396bec9016c2450f5311db75d6cd9613674e54");
			seen |= 1;
		} else if (!strcmp(c->name, "clang")) {
			assert_string_equal(c->version, "1:19.1.7-3~deb12u1");
			assert_string_equal(c->purl, "pkg:deb/debian/clang-19@1%3A19.1.7-3~deb12u1?arch=amd64");
			seen |= 2;
		} else if (!strcmp(c->name, "wasi-libc")) {
			/* the installed one, not the removed paragraph before it */
			assert_string_equal(c->version, "0.0~git20220510.9886d3d-2");
			assert_string_equal(c->description, "sysroot sha256:aaaa");
			seen |= 4;
		} else if (!strcmp(c->name, "wasm2c")) {
			assert_string_equal(c->version, "1.0.32-1");
			seen |= 8;
		} else if (!strcmp(c->name, "cc")) {
			assert_string_equal(c->version, "12.2.0");
			assert_null(c->purl);
			seen |= 16;
		} else if (!strcmp(c->name, "wasm-ld") || !strcmp(c->name, "compiler-rt-wasm32")) {
			fail_msg("%s is not installed in this status file", c->name);
		}
	}
	assert_int_equal(seen, 31);
	pipe_provenance_lists_free(&l);
	/* no status file: components from the id alone */
	assert_int_equal(pipe_provenance_components(&l, id, "/nonexistent/status"), 0);
	assert_true(l.n_components >= 4);
	pipe_provenance_lists_free(&l);
	remove(path);
}

/* Remote forms: scp-like without a user, a user without a password, a
 * Windows-like path, a URL without a path; values that are not printable are
 * passed over (as if unset), and explicit ids too long are refused. */
static void test_provenance__more_remotes_and_refused_values(void **state)
{
	char *id = NULL, big[2200];

	(void)state;
	expect_uri("git.example.com:agents.git", "ssh://git.example.com/agents.git");
	expect_uri("https://token@git.example.com/a.git", "https://git.example.com/a.git");
	expect_uri("https://git.example.com", "https://git.example.com");
	expect_uri("ssh://git@git.example.com:2222/a.git", "ssh://git.example.com:2222/a.git");
	expect_uri("C:\\repos\\agents", PIPE_SOURCE_URI_LOCAL);
	expect_uri("d:/repos/agents", PIPE_SOURCE_URI_LOCAL);
	expect_uri("dir/sub:file", PIPE_SOURCE_URI_LOCAL);
	expect_uri(":nohost", PIPE_SOURCE_URI_LOCAL);

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(pipe_provenance_source_uri(&id, NULL, big), AF_EINVAL);
	assert_null(id);
	assert_int_equal(pipe_provenance_builder_id(&id, big), AF_EINVAL);
	assert_int_equal(pipe_provenance_builder_id(&id, ""), AF_EINVAL);
	assert_int_equal(pipe_provenance_builder_id(&id, "tab\there"), AF_EINVAL);
	assert_null(id);

	/* not printable: passed over */
	setenv("AF_BUILDER_ID", "has space", 1);
	setenv("AF_INVOCATION_ID", "bad\x01id", 1);
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, PIPE_BUILDER_ID_LOCAL);
	free(id);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_null(id);
	setenv("AF_INVOCATION_ID", "run-7", 1);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_string_equal(id, "run-7");
	free(id);
	unsetenv("AF_INVOCATION_ID");
	unsetenv("AF_BUILDER_ID");
	/* GitHub without a workflow ref; GitLab without a config path or a job URL */
	setenv("GITHUB_ACTIONS", "true", 1);
	setenv("GITHUB_SERVER_URL", "https://github.com", 1);
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, PIPE_BUILDER_ID_LOCAL);
	free(id);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_null(id);
	clear_env(NULL);
	setenv("GITLAB_CI", "true", 1);
	setenv("CI_PROJECT_URL", "https://gitlab.example.com/acme/agents", 1);
	setenv("CI_CONFIG_PATH", "not printable\x7f", 1);
	assert_int_equal(pipe_provenance_builder_id(&id, NULL), 0);
	assert_string_equal(id, "https://gitlab.example.com/acme/agents/-/ci/.gitlab-ci.yml");
	free(id);
	setenv("CI_JOB_URL", "has space", 1);
	assert_int_equal(pipe_provenance_invocation_id(&id), 0);
	assert_null(id);
	clear_env(NULL);
}

/* What the toolchain id does not say is left out; a guest digest that is not
 * "sha256:" and 64 hex digits is not recorded; WASI_SDK_PATH: no Debian
 * versions. */
static void test_provenance__components_from_partial_ids(void **state)
{
	pipe_provenance_lists l;
	size_t i;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(pipe_provenance_components(&l, "af-toolchain/1 clang=clang; guest-src=md5:x",
						    "/nonexistent/status"), 0);
	assert_int_equal(l.n_components, 2); /* the guest library and clang */
	assert_string_equal(l.components[0].name, "agentfactory-guest");
	assert_null(l.components[0].sha256_hex);
	assert_null(l.components[0].description); /* no guest-abi */
	assert_string_equal(l.components[1].name, "clang");
	assert_string_equal(l.components[1].version, "clang"); /* the last word */
	pipe_provenance_lists_free(&l);
	pipe_provenance_lists_free(NULL);

	setenv("WASI_SDK_PATH", "/opt/wasi-sdk", 1);
	assert_int_equal(pipe_provenance_components(&l, "af-toolchain/1 cc=cc", "/var/lib/dpkg/status"),
			 0);
	for (i = 0; i < l.n_components; i++)
		assert_null(l.components[i].purl);
	pipe_provenance_lists_free(&l);
	unsetenv("WASI_SDK_PATH");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_provenance__source_uri, clear_env),
		cmocka_unit_test_setup(test_provenance__builder_and_invocation_ids, clear_env),
		cmocka_unit_test_setup(test_provenance__components, clear_env),
		cmocka_unit_test_setup(test_provenance__more_remotes_and_refused_values, clear_env),
		cmocka_unit_test_setup(test_provenance__components_from_partial_ids, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
