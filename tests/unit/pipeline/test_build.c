/*
 * test_build.c - pipe_build_run without a compiler: a git repository of
 * signed templates, a keyring, the default policy and fake tools (a WASI SDK
 * folder and /bin/sh scripts, as in test_toolchain_fake.c) whose linker
 * writes an empty module. Every agent then fails its export check, which is
 * how the build's planning, workers, progress lines, failure reports and
 * audit of a refused build are reached; the refusals before any compile
 * (a builder key the keyring does not trust, a folder that is not a git
 * repository, front-end findings with all_or_nothing, no toolchain, a store
 * that cannot be created) are each checked with their message. Real builds
 * (stored artifacts, cache hits) are in tests/integration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/audit.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/sig.h"
#include "art/store.h"
#include "art/util.h"
#include "pipe/build.h"
#include "pipe/policy.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *base, *saved_path;
static art_key *key, *other_key;
static art_keyring *keyring;
static pipe_policy *policy;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	assert_int_equal(art_file_write_atomic(path, text, strlen(text), mode), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void mkdir_p(const char *path)
{
	char buf[4096], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	assert_true(n > 0);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
	free(cmd);
}

/* The fake tools: versions for discovery, objects for -c, an empty module
 * for the link (no exports: the build of every agent fails its check). */
static void fake_tools(void)
{
	char dir[4096], path[8192];

	snprintf(dir, sizeof(dir), "%s/sdk/share/wasi-sysroot/lib/wasm32-wasip1", base);
	mkdir_p(dir);
	snprintf(dir, sizeof(dir), "%s/sdk/bin", base);
	mkdir_p(dir);
	snprintf(path, sizeof(path), "%s/clang", dir);
	write_text(path,
		   "#!/bin/sh\n"
		   "case \"$*\" in *--version*) echo 'fake clang 19.0'; exit 0;; "
		   "*-print-libgcc-file-name*) echo /nonexistent/rt.a; exit 0;; esac\n"
		   "out=; prev=; for a in \"$@\"; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\n"
		   "case \"$*\" in *' -c '*) echo obj > \"$out\"; exit 0;; esac\n"
		   "printf '\\000asm\\001\\000\\000\\000' > \"$out\"\n",
		   0755);
	snprintf(dir, sizeof(dir), "%s/bin", base);
	mkdir_p(dir);
	snprintf(path, sizeof(path), "%s/wasm2c", dir);
	write_text(path, "#!/bin/sh\necho 1.0.32\n", 0755);
	snprintf(path, sizeof(path), "%s/wasm-validate", dir);
	write_text(path, "#!/bin/sh\nexit 0\n", 0755);
	snprintf(path, sizeof(path), "%s/cc", dir);
	write_text(path, "#!/bin/sh\ncase \"$1\" in --version) echo 'cc (fake) 12';; "
			 "-dumpmachine) echo x86_64-linux-gnu;; esac\n", 0755);
}

/* PATH and WASI_SDK_PATH for the fake tools (git stays reachable). */
static void use_fake_tools(void)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/sdk", base);
	setenv("WASI_SDK_PATH", dir, 1);
	snprintf(dir, sizeof(dir), "%s/bin:%s", base, saved_path ? saved_path : "/usr/bin:/bin");
	setenv("PATH", dir, 1);
}

static const char base_yaml[] =
	"kind: AgentTemplate\napiVersion: agentfactory/v1\nname: base-helper\nversion: 1.0.0\n"
	"abstract: true\ndescription: A base.\nrole: helper\n"
	"goal: Answer questions about the project notes.\n"
	"model: {provider: openai, name: gpt-4o-mini, temperature: 0.2, max_tokens: 512}\n"
	"capabilities: [log, llm_chat, http_fetch]\n"
	"inputs:\n  type: object\n  properties:\n    task: {type: string, description: The task.}\n"
	"  required: [task]\n"
	"limits: {max_steps: 4, timeout_ms: 30000, memory_pages: 64}\n";

static const char agent_yaml[] =
	"kind: AgentTemplate\napiVersion: agentfactory/v1\nname: %s\nversion: 1.0.0\n"
	"extends: base-helper@^1.0.0\ndescription: A helper.\n"
	"instructions: |\n  You are {{name}}, the {{role}}. Task: {{ task }}\n";

/* A repository under base/NAME with the base and the given agents, each
 * signed with signer (NULL: unsigned), committed. Returns its path. */
static char *make_repo(const char *name, const char *const *agents, size_t n,
		       const art_key *signer, bool git)
{
	char *dir = NULL, path[8192], text[2048];
	size_t i;

	assert_true(asprintf(&dir, "%s/%s", base, name) > 0);
	snprintf(path, sizeof(path), "%s/templates", dir);
	mkdir_p(path);
	for (i = 0; i <= n; i++) {
		const char *file = i == n ? "base-helper" : agents[i];
		char *env = NULL;

		if (i == n)
			snprintf(text, sizeof(text), "%s", base_yaml);
		else
			snprintf(text, sizeof(text), agent_yaml, agents[i]);
		snprintf(path, sizeof(path), "%s/templates/%s.yaml", dir, file);
		write_text(path, text, 0644);
		if (signer) {
			assert_int_equal(art_sig_sign(&env, signer, ART_SIG_TYPE_TEMPLATE, file, "1.0.0",
						      text, strlen(text)), 0);
			snprintf(path, sizeof(path), "%s/templates/%s.yaml.sig", dir, file);
			write_text(path, env, 0644);
			free(env);
		}
	}
	if (git)
		sh("cd '%s' && git init -q -b main && git add -A && git commit -q -m t", dir);
	return dir;
}

static pipe_build_opts opts_for(const char *repo, const char *store)
{
	pipe_build_opts o;

	memset(&o, 0, sizeof(o));
	o.repo = repo;
	o.rev = "HEAD";
	o.keyring = keyring;
	o.policy = policy;
	o.builder_key = key;
	o.store_dir = store;
	o.jobs = 2;
	o.now = 1735689600; /* 2025-01-01 */
	return o;
}

/* The audit entries of a store: how many, and the outcome of the last. */
static size_t audit_entries(const char *store_dir, char *last_outcome, size_t size,
			    char *last_details, size_t dsize)
{
	art_store *s = NULL;
	art_audit_entry *e = NULL;
	size_t n = 0;

	if (art_store_open(&s, store_dir, ART_STORE_RDONLY) != 0)
		return 0;
	assert_int_equal(art_audit_list(&e, &n, s, 0, 0), 0);
	if (n) {
		snprintf(last_outcome, size, "%s", e[n - 1].outcome);
		snprintf(last_details, dsize, "%s", e[n - 1].details);
	}
	art_audit_list_free(e, n);
	art_store_close(s);
	return n;
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR"), *src = getenv("AF_SRCDIR");
	char *home = NULL, *path = NULL, *data = NULL;
	pipe_diags d = PIPE_DIAGS_INIT;
	size_t len;

	(void)state;
	saved_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	if (asprintf(&base, "%s/af-test-build-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
	    !mkdtemp(base))
		return -1;
	if (asprintf(&home, "%s/home", base) < 0 || mkdir(home, 0755) < 0)
		return -1;
	/* git: a fixed identity, nothing from this machine */
	setenv("HOME", home, 1);
	setenv("XDG_CONFIG_HOME", home, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "t@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "t@example.org", 1);
	setenv("GIT_CONFIG_COUNT", "2", 1);
	setenv("GIT_CONFIG_KEY_0", "core.hooksPath", 1);
	setenv("GIT_CONFIG_VALUE_0", "/dev/null", 1);
	setenv("GIT_CONFIG_KEY_1", "commit.gpgSign", 1);
	setenv("GIT_CONFIG_VALUE_1", "false", 1);
	unsetenv("AF_GUEST_CACHE");
	free(home);
	if (art_key_generate(&key, 2048) != 0 || art_key_generate(&other_key, 2048) != 0 ||
	    art_keyring_new(&keyring) != 0 ||
	    art_keyring_add(keyring, key, ART_ROLE_TEMPLATE_SIGNER, 0, 0) != 0 ||
	    art_keyring_add(keyring, key, ART_ROLE_BUILDER, 0, 0) != 0 ||
	    art_keyring_add(keyring, other_key, ART_ROLE_TEMPLATE_SIGNER, 0, 0) != 0)
		return -1;
	if (asprintf(&path, "%s/policies/default.yaml", src && *src ? src : ".") < 0 ||
	    art_file_read(&data, &len, path, 1 << 20) != 0 ||
	    pipe_policy_load_buffer(&policy, path, data, len, &d) != 0)
		return -1;
	free(path);
	free(data);
	pipe_diags_free(&d);
	fake_tools();
	use_fake_tools();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (saved_path)
		setenv("PATH", saved_path, 1);
	unsetenv("WASI_SDK_PATH");
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(base);
	free(saved_path);
	art_key_free(key);
	art_key_free(other_key);
	art_keyring_free(keyring);
	pipe_policy_free(policy);
	return 0;
}

static void test_build__agents_that_fail_their_checks_are_reported(void **state)
{
	static const char *const agents[] = {"helper-one", "helper-two", "helper-three"};
	char *repo = make_repo("repo", agents, 3, key, true), store[4096], outcome[32],
	     details[2048], *progress = NULL;
	size_t plen = 0, i;
	pipe_build_opts o;
	pipe_build_report *rep = NULL;
	FILE *pf = open_memstream(&progress, &plen);

	(void)state;
	snprintf(store, sizeof(store), "%s/store", base);
	o = opts_for(repo, store);
	o.progress = pf;
	o.keep_workdir = true;
	if (pipe_build_run(&rep, &o) != 0)
		fail_msg("build: %s", art_error_last());
	fclose(pf);
	assert_false(rep->frontend_failed);
	assert_int_equal(rep->n, 3);
	assert_int_equal(rep->n_failed, 3);
	assert_int_equal(rep->n_built, 0);
	assert_int_equal(rep->n_cached, 0);
	assert_false(rep->stored);
	assert_int_equal(rep->jobs, 2);
	assert_non_null(strstr(rep->toolchain_id, "clang=fake clang 19.0"));
	for (i = 0; i < rep->n; i++) {
		assert_int_equal(rep->items[i].status, PIPE_BUILD_FAILED);
		assert_non_null(strstr(rep->items[i].error, "missing export"));
		assert_non_null(strstr(rep->items[i].resolved_digest, "sha256:"));
	}
	/* sorted by name */
	assert_string_equal(rep->items[0].name, "helper-one");
	assert_string_equal(rep->items[1].name, "helper-three");
	assert_string_equal(rep->items[2].name, "helper-two");
	/* kept: each agent's generated C is in its folder */
	assert_non_null(rep->workdir);
	{
		char c[8192];
		struct stat st;

		snprintf(c, sizeof(c), "%s/helper-two/agent.c", rep->workdir);
		assert_int_equal(stat(c, &st), 0);
		nftw(rep->workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	assert_non_null(strstr(progress, "3 agents: 0 unchanged (cache hits), 3 to build"));
	assert_non_null(strstr(progress, "FAILED helper-one@1.0.0: "));
	assert_null(strstr(progress, "storing"));
	/* the refusal is in the store's audit log, signed by the builder */
	assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details, sizeof(details)), 1);
	assert_string_equal(outcome, ART_AUDIT_REFUSED);
	assert_non_null(strstr(details, "agents failed to build: nothing stored"));
	pipe_build_report_free(rep);
	free(progress);
	free(repo);
}

static void test_build__tty_progress_one_job_and_no_guest_cache(void **state)
{
	static const char *const agents[] = {"solo-agent"};
	char *repo = make_repo("repo-tty", agents, 1, key, true), store[4096], *progress = NULL;
	size_t plen = 0;
	pipe_build_opts o;
	pipe_build_report *rep = NULL;
	FILE *pf = open_memstream(&progress, &plen);

	(void)state;
	snprintf(store, sizeof(store), "%s/store-tty", base);
	o = opts_for(repo, store);
	o.progress = pf;
	o.progress_tty = true;
	o.jobs = 1;
	setenv("AF_GUEST_CACHE", "0", 1);
	{
		/* an empty TMPDIR: the work folder goes to /tmp */
		char *tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;

		setenv("TMPDIR", "", 1);
		assert_int_equal(pipe_build_run(&rep, &o), 0);
		if (tmp)
			setenv("TMPDIR", tmp, 1);
		else
			unsetenv("TMPDIR");
		free(tmp);
	}
	unsetenv("AF_GUEST_CACHE");
	fclose(pf);
	assert_int_equal(rep->n_failed, 1);
	assert_null(rep->workdir); /* removed */
	assert_non_null(strstr(progress, "\r\033[K[0/1] building solo-agent@1.0.0"));
	assert_non_null(strstr(progress, "\r\033[K[1/1] failed solo-agent@1.0.0"));
	pipe_build_report_free(rep);
	free(progress);
	free(repo);
}

static void test_build__front_end_findings(void **state)
{
	static const char *const agents[] = {"good-agent", "bad-agent"};
	char *repo = make_repo("repo-findings", agents, 2, key, false), store[4096], path[8192],
	     outcome[32], details[2048];
	pipe_build_opts o;
	pipe_build_report *rep = NULL;

	(void)state;
	/* bad-agent is edited after it was signed: its signature no longer verifies */
	snprintf(path, sizeof(path), "%s/templates/bad-agent.yaml", repo);
	{
		FILE *f = fopen(path, "a");

		assert_non_null(f);
		fputs("labels: {edited: \"yes\"}\n", f);
		fclose(f);
	}
	/* and one that does not parse at all */
	snprintf(path, sizeof(path), "%s/templates/broken.yaml", repo);
	write_text(path, "name: [unclosed\n", 0644);
	sh("cd '%s' && git init -q -b main && git add -A && git commit -q -m t", repo);
	snprintf(store, sizeof(store), "%s/store-findings", base);
	o = opts_for(repo, store);
	/* all or nothing: nothing is built, the refusal is audited when a store exists */
	o.all_or_nothing = true;
	assert_int_equal(pipe_build_run(&rep, &o), 0);
	assert_true(rep->frontend_failed);
	assert_int_equal(rep->n, 0);
	assert_null(rep->toolchain_id);
	assert_true(pipe_diags_errors(&rep->fe->diags) > 0);
	pipe_build_report_free(rep);
	assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details, sizeof(details)), 0);
	/* otherwise the good one is built (and fails its check), the bad one skipped;
	 * jobs 0: as many as there are processors */
	o.all_or_nothing = false;
	o.jobs = 0;
	assert_int_equal(pipe_build_run(&rep, &o), 0);
	assert_true(rep->frontend_failed);
	assert_int_equal(rep->n_skipped, 2);
	assert_int_equal(rep->n, 1);
	assert_string_equal(rep->items[0].name, "good-agent");
	assert_int_equal(rep->items[0].status, PIPE_BUILD_FAILED);
	assert_true(rep->jobs >= 1);
	pipe_build_report_free(rep);
	assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details, sizeof(details)), 1);
	assert_string_equal(outcome, ART_AUDIT_REFUSED);
	/* all or nothing again, now that the store exists: the refusal is audited */
	o.all_or_nothing = true;
	assert_int_equal(pipe_build_run(&rep, &o), 0);
	pipe_build_report_free(rep);
	assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details, sizeof(details)), 2);
	assert_non_null(strstr(details, "the front end has findings"));
	free(repo);
}

static void test_build__refusals_before_compiling(void **state)
{
	static const char *const agents[] = {"some-agent"};
	char *repo = make_repo("repo-refusals", agents, 1, key, true);
	char *plain = make_repo("plain", agents, 1, key, false);
	char store[4096], path[8192];
	pipe_build_opts o;
	pipe_build_report *rep = (pipe_build_report *)0x1;

	(void)state;
	snprintf(store, sizeof(store), "%s/store-refusals", base);
	/* a builder key the keyring does not trust as builder */
	o = opts_for(repo, store);
	o.builder_key = other_key;
	assert_int_equal(pipe_build_run(&rep, &o), AF_EDENIED);
	assert_null(rep);
	assert_non_null(strstr(art_error_last(), "cannot sign artifacts"));
	assert_non_null(strstr(art_error_last(), art_key_id(other_key)));
	/* a plain folder: no commit to record */
	o = opts_for(plain, store);
	assert_int_equal(pipe_build_run(&rep, &o), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "is not a git repository"));
	/* no toolchain */
	o = opts_for(repo, store);
	setenv("WASI_SDK_PATH", "/nonexistent/sdk", 1);
	assert_int_equal(pipe_build_run(&rep, &o), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "WASI_SDK_PATH"));
	use_fake_tools();
	/* a store that cannot be created: its parent is a file */
	snprintf(path, sizeof(path), "%s/a-file", base);
	write_text(path, "x", 0644);
	snprintf(path, sizeof(path), "%s/a-file/store", base);
	o = opts_for(repo, path);
	assert_true(pipe_build_run(&rep, &o) < 0);
	assert_null(rep);
	/* a repository that does not exist */
	o = opts_for("/nonexistent/repo", store);
	assert_true(pipe_build_run(&rep, &o) < 0);
	assert_null(rep);
	/* nothing of this created the store */
	{
		struct stat st;

		assert_int_not_equal(stat(store, &st), 0);
	}
	pipe_build_report_free(NULL);
	free(plain);
	free(repo);
}

/* With the real toolchain (skipped without clang-19): an agent is built and
 * stored with its audit entry; built again from the same commit it is a
 * cache hit and nothing is compiled. */
static void test_build__real_build_is_stored_then_cached(void **state)
{
	static const char *const agents[] = {"real-agent"};
	char *repo, store[4096], outcome[32], details[2048], *progress = NULL;
	size_t plen = 0;
	pipe_build_opts o;
	pipe_build_report *rep = NULL;
	FILE *pf;

	(void)state;
	if (access("/usr/bin/clang-19", X_OK) != 0 || access("/usr/bin/wasm2c", X_OK) != 0) {
		skip();
		return;
	}
	if (saved_path)
		setenv("PATH", saved_path, 1);
	unsetenv("WASI_SDK_PATH");
	repo = make_repo("repo-real", agents, 1, key, true);
	snprintf(store, sizeof(store), "%s/store-real", base);
	o = opts_for(repo, store);
	o.source_uri = "https://git.example.com/acme/agents.git";
	o.builder_id = "https://builders.example.com/b1";
	pf = open_memstream(&progress, &plen);
	o.progress = pf;
	if (pipe_build_run(&rep, &o) != 0)
		fail_msg("build: %s", art_error_last());
	fclose(pf);
	if (rep->n_built != 1)
		fail_msg("not built: %s", rep->n ? rep->items[0].error : "(no item)");
	assert_true(rep->stored);
	assert_int_equal(rep->items[0].status, PIPE_BUILD_BUILT);
	assert_non_null(strstr(rep->items[0].manifest_digest, "sha256:"));
	assert_true(rep->items[0].wasm_size > 8 && rep->items[0].native_size > 0);
	assert_non_null(strstr(progress, "storing 1 artifacts in"));
	assert_non_null(strstr(progress, "] built real-agent@1.0.0 (C->wasm"));
	pipe_build_report_free(rep);
	free(progress);
	assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details, sizeof(details)), 1);
	assert_string_equal(outcome, ART_AUDIT_OK);
	assert_non_null(strstr(details, "\"built\":[\"real-agent@1.0.0\"]"));
	/* the same commit again: a cache hit, nothing compiled, an "ok" entry */
	o.progress = NULL;
	assert_int_equal(pipe_build_run(&rep, &o), 0);
	assert_int_equal(rep->n_cached, 1);
	assert_int_equal(rep->n_built, 0);
	assert_int_equal(rep->items[0].status, PIPE_BUILD_CACHED);
	assert_non_null(strstr(rep->items[0].manifest_digest, "sha256:"));
	assert_false(rep->stored);
	pipe_build_report_free(rep);
	assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details, sizeof(details)), 2);
	assert_string_equal(outcome, ART_AUDIT_OK);
	assert_non_null(strstr(details, "\"cached\":1"));
	/* another policy: no cache hit, built again and stored (an unreleased
	 * version may be rebuilt) with a new manifest */
	{
		pipe_policy *other = NULL;
		pipe_diags d = PIPE_DIAGS_INIT;
		char first[72];
		static const char pol[] =
			"kind: Policy\nname: other\nversion: 1\n"
			"grants: {capabilities: [log, llm_chat, http_fetch], hosts: [api.example.com]}\n";

		assert_int_equal(pipe_policy_load_buffer(&other, "other.yaml", pol, sizeof(pol) - 1, &d),
				 0);
		assert_int_equal(pipe_build_run(&rep, &o), 0); /* cached: its manifest digest */
		snprintf(first, sizeof(first), "%s", rep->items[0].manifest_digest);
		pipe_build_report_free(rep);
		o.policy = other;
		o.source_uri = NULL; /* from the repository: no origin, the local URN */
		o.builder_id = NULL;
		setenv("AF_ZSTD_DICT", "0", 1);
		if (pipe_build_run(&rep, &o) != 0)
			fail_msg("rebuild: %s", art_error_last());
		unsetenv("AF_ZSTD_DICT");
		assert_int_equal(rep->n_cached, 0);
		assert_int_equal(rep->n_built, 1);
		assert_true(rep->stored);
		assert_string_not_equal(rep->items[0].manifest_digest, first);
		pipe_build_report_free(rep);
		assert_int_equal(audit_entries(store, outcome, sizeof(outcome), details,
					       sizeof(details)), 4);
		assert_string_equal(outcome, ART_AUDIT_OK);
		pipe_policy_free(other);
		pipe_diags_free(&d);
	}
	use_fake_tools();
	free(repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build__agents_that_fail_their_checks_are_reported),
		cmocka_unit_test(test_build__tty_progress_one_job_and_no_guest_cache),
		cmocka_unit_test(test_build__front_end_findings),
		cmocka_unit_test(test_build__refusals_before_compiling),
		cmocka_unit_test(test_build__real_build_is_stored_then_cached),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
