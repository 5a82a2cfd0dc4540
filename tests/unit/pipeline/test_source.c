/*
 * test_source.c - reading templates from git revisions and plain directories.
 *
 * Repositories are built in a private temporary folder (under $TMPDIR) with
 * the git command line (git is a build dependency), with a fixed identity, no
 * user or system configuration, and nothing that runs in the background
 * (automatic gc and maintenance off, no optional locks, no hooks), so that
 * the outcome does not depend on the machine's load or configuration. Every
 * git command's output is captured: a failing command fails the test with
 * the command, how it ended (exit status, signal, fork failure) and what it
 * printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pipe/source.h"

#include "art/error.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *base_dir;
static unsigned dir_counter;

/* ---- helpers ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, empty folder under base_dir; caller frees. */
static char *new_dir(const char *label)
{
	char *dir = NULL;

	assert_true(asprintf(&dir, "%s/%s-%u", base_dir, label, ++dir_counter) > 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	return dir;
}

static void mkdirs(const char *path)
{
	char buf[4096];
	char *p;

	assert_true((size_t)snprintf(buf, sizeof(buf), "%s", path) < sizeof(buf));
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		assert_true(mkdir(buf, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	assert_true(mkdir(buf, 0755) == 0 || errno == EEXIST);
}

static void write_bytes(const char *dir, const char *rel, const void *data, size_t len)
{
	char *path = NULL, *slash;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
	slash = strrchr(path, '/');
	*slash = '\0';
	mkdirs(path);
	*slash = '/';
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void write_file(const char *dir, const char *rel, const char *text)
{
	write_bytes(dir, rel, text, strlen(text));
}

static void make_symlink(const char *dir, const char *rel, const char *target)
{
	char *path = NULL;

	assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
	assert_int_equal(symlink(target, path), 0);
	free(path);
}

/* How a child ended, in words ("exit status 128", "killed by signal 9"). */
static void describe_status(char *buf, size_t size, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "wait status 0x%x", (unsigned)status);
}

/* Runs `/bin/sh -c cmd` with stdout and stderr captured; returns its wait
 * status, the output in *out (caller frees). fork() is retried while the
 * machine is out of processes (EAGAIN), rather than failing the test. */
static int run_captured(const char *cmd, char **out)
{
	char path[4096];
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	FILE *f;
	long len;
	pid_t pid = -1;
	int fd, status = -1, attempt;

	assert_true((size_t)snprintf(path, sizeof(path), "%s/cmd-output-XXXXXX", base_dir) <
		    sizeof(path));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(NULL);
	for (attempt = 0; attempt < 100; attempt++) {
		pid = fork();
		if (pid >= 0 || errno != EAGAIN)
			break;
		nanosleep(&pause, NULL);
	}
	if (pid < 0)
		fail_msg("fork for `%s` failed: %s", cmd, strerror(errno));
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	*out = calloc(1, (size_t)len + 1);
	assert_non_null(*out);
	assert_int_equal(fread(*out, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	unlink(path);
	return status;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command that must succeed; on failure the test fails with the
 * command, how it ended and everything it printed. */
static void sh(const char *fmt, ...)
{
	char *cmd = NULL, *output = NULL, how[64];
	va_list ap;
	int status;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	status = run_captured(cmd, &output);
	if (status != 0) {
		describe_status(how, sizeof(how), status);
		fail_msg("command failed (%s): %s\n--- its output ---\n%s--- end ---", how, cmd,
			 output);
	}
	free(output);
	free(cmd);
}

static void git_init(const char *dir)
{
	sh("git -C '%s' init -q -b main", dir);
}

static void git_commit_all(const char *dir, const char *msg)
{
	sh("git -C '%s' add -A && git -C '%s' commit -q -m '%s'", dir, dir, msg);
}

/* `git rev-parse --verify REV^{commit}` into out[41]. */
static void git_rev_parse(const char *dir, const char *rev, char out[41])
{
	char *cmd = NULL, *output = NULL, how[64];
	int status;

	assert_true(asprintf(&cmd, "git -C '%s' rev-parse --verify -q '%s^{commit}'", dir,
			     rev) > 0);
	status = run_captured(cmd, &output);
	if (status != 0 || strlen(output) != 41 || output[40] != '\n') {
		describe_status(how, sizeof(how), status);
		fail_msg("`%s` (%s) printed '%s', not one commit id", cmd, how, output);
	}
	memcpy(out, output, 40);
	out[40] = '\0';
	free(output);
	free(cmd);
}

static void assert_file(const pipe_source *s, const char *path, const char *text)
{
	const pipe_file *f = pipe_source_find(s, path);

	if (!f)
		fail_msg("%s: no file %s", s->origin, path);
	assert_int_equal(f->len, strlen(text));
	assert_memory_equal(f->data, text, f->len);
	assert_int_equal(f->data[f->len], '\0');
}

/* Like assert_int_equal on a return code, but a mismatch names the call and
 * the error message it left (art_error_last), not just two numbers. */
#define assert_rc(call, expected) check_rc((call), (expected), #call, __FILE__, __LINE__)

static void check_rc(int got, int expected, const char *call, const char *file, int line)
{
	if (got != expected) {
		print_error("ERROR: %s:%d: %s returned %d, expected %d; error: %s\n", file, line,
			    call, got, expected, art_error_last() ? art_error_last() : "(none)");
		_fail(file, line);
	}
}

static void assert_error_mentions(const char *needle)
{
	if (!strstr(art_error_last(), needle))
		fail_msg("error '%s' does not mention '%s'", art_error_last(), needle);
}

/* git configuration for every command: nothing runs detached in the
 * background after a command returned (automatic gc, maintenance), no
 * optional locks, no hooks and no file-system monitor from this machine. */
static const char *const git_settings[][2] = {
	{ "gc.auto", "0" },
	{ "gc.autoDetach", "false" },
	{ "maintenance.auto", "false" },
	{ "core.hooksPath", "/dev/null" },
	{ "core.fsmonitor", "false" },
	{ "core.untrackedCache", "false" },
	{ "init.defaultBranch", "main" },
	{ "commit.gpgSign", "false" },
	{ "tag.gpgSign", "false" },
};

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char *home = NULL, name[32], value[8];
	size_t i;

	(void)state;
	if (asprintf(&base_dir, "%s/af-test-source-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
	    !mkdtemp(base_dir))
		return -1;
	if (asprintf(&home, "%s/home", base_dir) < 0 || mkdir(home, 0755) < 0)
		return -1;
	/* A fixed identity and no configuration from this machine or user. */
	setenv("HOME", home, 1);
	setenv("XDG_CONFIG_HOME", home, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_OPTIONAL_LOCKS", "0", 1);
	setenv("GIT_TERMINAL_PROMPT", "0", 1);
	setenv("LC_ALL", "C", 1);
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");
	unsetenv("GIT_INDEX_FILE");
	unsetenv("GIT_OBJECT_DIRECTORY");
	setenv("GIT_AUTHOR_NAME", "Test Author", 1);
	setenv("GIT_AUTHOR_EMAIL", "author@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "Test Committer", 1);
	setenv("GIT_COMMITTER_EMAIL", "committer@example.org", 1);
	setenv("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z", 1);
	setenv("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z", 1);
	for (i = 0; i < sizeof(git_settings) / sizeof(git_settings[0]); i++) {
		snprintf(name, sizeof(name), "GIT_CONFIG_KEY_%zu", i);
		setenv(name, git_settings[i][0], 1);
		snprintf(name, sizeof(name), "GIT_CONFIG_VALUE_%zu", i);
		setenv(name, git_settings[i][1], 1);
	}
	snprintf(value, sizeof(value), "%zu", i);
	setenv("GIT_CONFIG_COUNT", value, 1);
	free(home);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(base_dir);
	free(base_dir);
	return 0;
}

/* A repository with two commits: HEAD~1 has a.yaml v1; HEAD has a.yaml v2 and
 * b.yaml. Tags: v1 (lightweight) on the first, v2 (annotated) on the second;
 * branch "old" on the first. */
static char *two_commit_repo(void)
{
	char *dir = new_dir("two");

	git_init(dir);
	write_file(dir, "templates/a.yaml", "name: a\nversion: 1.0.0\n");
	git_commit_all(dir, "first");
	sh("git -C '%s' tag v1 && git -C '%s' branch old", dir, dir);
	write_file(dir, "templates/a.yaml", "name: a\nversion: 2.0.0\n");
	write_file(dir, "templates/b.yaml", "name: b\n");
	git_commit_all(dir, "second");
	sh("git -C '%s' tag -a v2 -m 'release two'", dir);
	return dir;
}

/* ---- git mode ------------------------------------------------------------ */

static void test_source__git_reads_each_revision(void **state)
{
	char *dir = two_commit_repo();
	char head[41], parent[41];
	pipe_source *s = NULL;

	(void)state;
	git_rev_parse(dir, "HEAD", head);
	git_rev_parse(dir, "HEAD~1", parent);

	assert_rc(pipe_source_read(&s, dir, "HEAD~1", NULL), 0);
	assert_int_equal(s->n, 1);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 1.0.0\n");
	assert_null(pipe_source_find(s, "templates/b.yaml"));
	assert_string_equal(s->commit, parent);
	assert_string_equal(s->subdir, "templates");
	assert_non_null(strstr(s->origin, "@HEAD~1 (commit "));
	assert_non_null(strstr(s->origin, dir));
	pipe_source_free(s);

	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 2);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 2.0.0\n");
	assert_file(s, "templates/b.yaml", "name: b\n");
	assert_string_equal(s->commit, head);
	pipe_source_free(s);

	/* A full and a short commit id name the same commit. */
	assert_rc(pipe_source_read(&s, dir, parent, NULL), 0);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 1.0.0\n");
	pipe_source_free(s);
	parent[7] = '\0';
	assert_rc(pipe_source_read(&s, dir, parent, NULL), 0);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 1.0.0\n");
	pipe_source_free(s);
	free(dir);
}

static void test_source__git_tags_and_branches(void **state)
{
	char *dir = two_commit_repo();
	char head[41], parent[41];
	pipe_source *s = NULL;

	(void)state;
	git_rev_parse(dir, "HEAD", head);
	git_rev_parse(dir, "HEAD~1", parent);

	assert_rc(pipe_source_read(&s, dir, "v1", NULL), 0);
	assert_string_equal(s->commit, parent);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 1.0.0\n");
	pipe_source_free(s);

	/* An annotated tag is peeled to its commit. */
	assert_rc(pipe_source_read(&s, dir, "v2", NULL), 0);
	assert_string_equal(s->commit, head);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 2.0.0\n");
	pipe_source_free(s);

	assert_rc(pipe_source_read(&s, dir, "old", NULL), 0);
	assert_string_equal(s->commit, parent);
	pipe_source_free(s);

	assert_rc(pipe_source_read(&s, dir, "refs/heads/main", NULL), 0);
	assert_string_equal(s->commit, head);
	pipe_source_free(s);
	free(dir);
}

static void test_source__bare_clone_reads_the_same(void **state)
{
	char *dir = two_commit_repo();
	char *bare = NULL;
	pipe_source *a = NULL, *b = NULL;
	size_t i;

	(void)state;
	assert_true(asprintf(&bare, "%s.git", dir) > 0);
	sh("git clone -q --bare '%s' '%s'", dir, bare);

	assert_rc(pipe_source_read(&a, dir, "v1", NULL), 0);
	assert_rc(pipe_source_read(&b, bare, "v1", NULL), 0);
	assert_int_equal(a->n, b->n);
	assert_string_equal(a->commit, b->commit);
	for (i = 0; i < a->n; i++) {
		assert_string_equal(a->files[i].path, b->files[i].path);
		assert_int_equal(a->files[i].len, b->files[i].len);
		assert_memory_equal(a->files[i].data, b->files[i].data, a->files[i].len);
	}
	pipe_source_free(a);
	pipe_source_free(b);

	/* Without a revision a bare repository reads HEAD. */
	assert_rc(pipe_source_read(&b, bare, NULL, NULL), 0);
	assert_int_equal(b->n, 2);
	assert_non_null(b->commit);
	assert_non_null(strstr(b->origin, "@HEAD (commit "));
	assert_file(b, "templates/a.yaml", "name: a\nversion: 2.0.0\n");
	pipe_source_free(b);
	free(bare);
	free(dir);
}

/* In a pre-receive hook the pushed objects are in git's quarantine directory,
 * named by GIT_QUARANTINE_PATH / GIT_OBJECT_DIRECTORY: they must be read. */
static void test_source__quarantined_objects_are_read(void **state)
{
	char *dir = two_commit_repo();
	char *quarantine = NULL, *missing = NULL;
	pipe_source *s = NULL;

	(void)state;
	assert_true(asprintf(&quarantine, "%s.quarantine", dir) > 0);
	assert_true(asprintf(&missing, "%s.none", dir) > 0);
	mkdirs(quarantine);
	write_file(dir, "templates/c.yaml", "name: c\n");
	sh("cd '%s' && export GIT_OBJECT_DIRECTORY='%s' GIT_ALTERNATE_OBJECT_DIRECTORIES=\"$PWD/.git/objects\" "
	   "&& git add -A && git commit -q -m quarantined", dir, quarantine);

	/* Without the environment the commit's objects are not in the repository
	 * (reading it then is a libgit2 error path, which leaks in 1.5: not done). */
	sh("cd '%s' && ! git cat-file -e HEAD", dir);
	/* A stale, missing path is ignored, not an error of its own. */
	setenv("GIT_QUARANTINE_PATH", missing, 1);
	setenv("GIT_OBJECT_DIRECTORY", quarantine, 1);
	assert_int_equal(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 3);
	pipe_source_free(s);
	s = NULL;
	unsetenv("GIT_OBJECT_DIRECTORY");

	setenv("GIT_QUARANTINE_PATH", quarantine, 1);
	assert_int_equal(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 3);
	assert_file(s, "templates/c.yaml", "name: c\n");
	pipe_source_free(s);
	s = NULL;
	unsetenv("GIT_QUARANTINE_PATH");

	/* git's own variables for the same directory work too. */
	setenv("GIT_ALTERNATE_OBJECT_DIRECTORIES", quarantine, 1);
	assert_int_equal(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 3);
	pipe_source_free(s);
	unsetenv("GIT_ALTERNATE_OBJECT_DIRECTORIES");
	free(missing);
	free(quarantine);
	free(dir);
}

static void test_source__git_without_rev_reads_head_not_worktree(void **state)
{
	char *dir = two_commit_repo();
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "templates/a.yaml", "uncommitted edit\n");
	write_file(dir, "templates/untracked.yaml", "untracked\n");
	sh("rm '%s/templates/b.yaml'", dir);

	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_non_null(s->commit);
	assert_int_equal(s->n, 2);
	assert_file(s, "templates/a.yaml", "name: a\nversion: 2.0.0\n");
	assert_file(s, "templates/b.yaml", "name: b\n");
	assert_null(pipe_source_find(s, "templates/untracked.yaml"));
	pipe_source_free(s);
	free(dir);
}

static void test_source__git_selects_files_and_subfolders(void **state)
{
	char *dir = new_dir("select");
	pipe_source *s = NULL;
	static const char *expected[] = {
		"templates/a.yaml", "templates/a.yaml.sig", "templates/b.yml",
		"templates/b.yml.sig", "templates/run.yaml", "templates/team/deep/x.yaml",
	};
	size_t i;

	(void)state;
	git_init(dir);
	write_file(dir, "templates/a.yaml", "a\n");
	write_file(dir, "templates/a.yaml.sig", "sig-a\n");
	write_file(dir, "templates/b.yml", "b\n");
	write_file(dir, "templates/b.yml.sig", "sig-b\n");
	write_file(dir, "templates/team/deep/x.yaml", "deep\n");
	write_file(dir, "templates/run.yaml", "exec bit\n");
	sh("chmod +x '%s/templates/run.yaml'", dir);
	write_file(dir, "templates/README.md", "not a template\n");
	write_file(dir, "templates/notes.txt", "not a template\n");
	write_file(dir, "templates/a.yaml.bak", "not a template\n");
	write_file(dir, "templates/.hidden.yaml", "dot file\n");
	write_file(dir, "templates/.drafts/d.yaml", "dot folder\n");
	write_file(dir, "other.yaml", "outside the templates folder\n");
	git_commit_all(dir, "files");

	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, sizeof(expected) / sizeof(expected[0]));
	for (i = 0; i < s->n; i++)
		assert_string_equal(s->files[i].path, expected[i]);
	assert_file(s, "templates/team/deep/x.yaml", "deep\n");
	assert_file(s, "templates/a.yaml.sig", "sig-a\n");
	pipe_source_free(s);
	free(dir);
}

static void test_source__no_templates_folder_reads_root(void **state)
{
	char *dir = new_dir("root");
	pipe_source *s = NULL;

	(void)state;
	git_init(dir);
	write_file(dir, "agent.yaml", "root agent\n");
	write_file(dir, "bases/base.yaml", "base\n");
	write_file(dir, ".github/workflow.yaml", "ci, not a template\n");
	git_commit_all(dir, "root layout");

	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_string_equal(s->subdir, "");
	assert_int_equal(s->n, 2);
	assert_string_equal(s->files[0].path, "agent.yaml");
	assert_string_equal(s->files[1].path, "bases/base.yaml");
	pipe_source_free(s);

	/* The same rule without git. */
	sh("rm -rf '%s/.git'", dir);
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_null(s->commit);
	assert_string_equal(s->subdir, "");
	assert_int_equal(s->n, 2);
	assert_string_equal(s->files[0].path, "agent.yaml");
	assert_string_equal(s->files[1].path, "bases/base.yaml");
	pipe_source_free(s);
	free(dir);
}

static void test_source__explicit_subdir(void **state)
{
	char *dir = new_dir("subdir");
	pipe_source *s = NULL;

	(void)state;
	git_init(dir);
	write_file(dir, "templates/t.yaml", "t\n");
	write_file(dir, "agents/prod/p.yaml", "p\n");
	write_file(dir, "file.yaml", "f\n");
	git_commit_all(dir, "layout");

	assert_rc(pipe_source_read(&s, dir, "HEAD", "agents/prod/"), 0);
	assert_string_equal(s->subdir, "agents/prod");
	assert_int_equal(s->n, 1);
	assert_file(s, "agents/prod/p.yaml", "p\n");
	pipe_source_free(s);

	assert_rc(pipe_source_read(&s, dir, "HEAD", "."), 0);
	assert_int_equal(s->n, 3);
	pipe_source_free(s);

	/* An explicit folder that does not exist is an error, not the root. */
	assert_rc(pipe_source_read(&s, dir, "HEAD", "missing"), AF_ENOTFOUND);
	assert_null(s);
	assert_error_mentions("missing");
	assert_rc(pipe_source_read(&s, dir, NULL, "missing"), AF_ENOTFOUND);
	assert_rc(pipe_source_read(&s, dir, "HEAD", "file.yaml"), AF_EINVAL);
	assert_error_mentions("not a folder");

	assert_rc(pipe_source_read(&s, dir, "HEAD", "../etc"), AF_EINVAL);
	assert_rc(pipe_source_read(&s, dir, "HEAD", "agents/../.."), AF_EINVAL);
	assert_rc(pipe_source_read(&s, dir, "HEAD", "/etc"), AF_EINVAL);
	assert_rc(pipe_source_read(&s, dir, "HEAD", "agents//prod"), AF_EINVAL);

	/* Plain directory mode applies the same rules. */
	sh("rm -rf '%s/.git'", dir);
	assert_rc(pipe_source_read(&s, dir, NULL, "agents/prod"), 0);
	assert_int_equal(s->n, 1);
	assert_file(s, "agents/prod/p.yaml", "p\n");
	pipe_source_free(s);
	assert_rc(pipe_source_read(&s, dir, NULL, "missing"), AF_ENOTFOUND);
	assert_rc(pipe_source_read(&s, dir, NULL, "file.yaml"), AF_EINVAL);
	assert_rc(pipe_source_read(&s, dir, NULL, "../"), AF_EINVAL);
	free(dir);
}

/* Arguments refused before anything is read, each with its code. */
static void test_source__arguments_refused(void **state)
{
	char *dir = new_dir("args"), longp[PIPE_SOURCE_MAX_PATH + 32];
	pipe_source *s = (pipe_source *)0x1;

	(void)state;
	write_file(dir, "templates/t.yaml", "t\n");
	assert_rc(pipe_source_read(NULL, dir, NULL, NULL), AF_EINVAL);
	assert_rc(pipe_source_read(&s, NULL, NULL, NULL), AF_EINVAL);
	assert_null(s);
	assert_rc(pipe_source_read(&s, "", NULL, NULL), AF_EINVAL);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_rc(pipe_source_read(&s, longp, NULL, NULL), AF_ETOOBIG);
	assert_rc(pipe_source_read(&s, dir, longp + 1, NULL), AF_EINVAL);
	assert_error_mentions("invalid revision");
	assert_rc(pipe_source_read(&s, dir, NULL, longp + 1), AF_ETOOBIG);
	assert_error_mentions("subdir longer than");
	assert_rc(pipe_source_read(&s, dir, NULL, "temp\x01lates"), AF_EINVAL);
	assert_error_mentions("control characters");
	assert_rc(pipe_source_read(&s, dir, NULL, "templates/./x"), AF_EINVAL);
	assert_error_mentions("'.' and '..' components");
	/* a file is not a repository */
	{
		char *file = NULL;

		assert_true(asprintf(&file, "%s/templates/t.yaml", dir) > 0);
		assert_rc(pipe_source_read(&s, file, NULL, NULL), AF_EINVAL);
		assert_error_mentions("not a directory");
		free(file);
	}
	/* trailing slashes are dropped */
	assert_rc(pipe_source_read(&s, dir, NULL, "templates///"), 0);
	assert_string_equal(s->subdir, "templates");
	assert_int_equal(s->n, 1);
	assert_null(pipe_source_find(s, NULL));
	assert_null(pipe_source_find(s, "templates/none.yaml"));
	assert_non_null(pipe_source_find(s, "templates/t.yaml"));
	pipe_source_free(s);
	assert_null(pipe_source_find(NULL, "templates/t.yaml"));
	pipe_source_free(NULL);
	free(dir);
}

static void test_source__unknown_revision(void **state)
{
	char *dir = two_commit_repo();
	pipe_source *s = NULL;

	(void)state;
	assert_rc(pipe_source_read(&s, dir, "no-such-branch", NULL), AF_ENOTFOUND);
	assert_null(s);
	assert_error_mentions("revision 'no-such-branch' not found");
	assert_error_mentions(dir);
	assert_rc(pipe_source_read(&s, dir, "HEAD~5", NULL), AF_ENOTFOUND);
	assert_rc(pipe_source_read(&s, dir, "0000000000000000000000000000000000000000",
					  NULL), AF_ENOTFOUND);
	assert_rc(pipe_source_read(&s, dir, "", NULL), AF_EINVAL);
	free(dir);
}

static void test_source__revision_that_is_not_a_commit(void **state)
{
	char *dir = two_commit_repo();
	pipe_source *s = NULL;

	(void)state;
	assert_rc(pipe_source_read(&s, dir, "HEAD^{tree}", NULL), AF_EINVAL);
	assert_error_mentions("not a commit");
	assert_rc(pipe_source_read(&s, dir, "HEAD:templates/a.yaml", NULL), AF_EINVAL);
	assert_null(s);
	free(dir);
}

static void test_source__empty_repository(void **state)
{
	char *dir = new_dir("empty");
	pipe_source *s = NULL;

	(void)state;
	git_init(dir);
	write_file(dir, "templates/a.yaml", "never committed\n");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_ENOTFOUND);
	assert_error_mentions("no commit");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_ENOTFOUND);
	assert_null(s);
	free(dir);
}

static void test_source__not_a_repository_with_rev(void **state)
{
	char *dir = new_dir("plain");
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "templates/a.yaml", "a\n");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_EINVAL);
	assert_null(s);
	assert_error_mentions("not a git repository");
	assert_error_mentions(dir);
	free(dir);
}

static void test_source__missing_or_bad_directory(void **state)
{
	char *dir = new_dir("missing");
	char *gone = NULL, *file = NULL;
	pipe_source *s = NULL;

	(void)state;
	assert_true(asprintf(&gone, "%s/does-not-exist", dir) > 0);
	assert_rc(pipe_source_read(&s, gone, NULL, NULL), AF_ENOTFOUND);
	assert_error_mentions(gone);
	assert_rc(pipe_source_read(&s, gone, "HEAD", NULL), AF_ENOTFOUND);

	write_file(dir, "plain-file", "x");
	assert_true(asprintf(&file, "%s/plain-file", dir) > 0);
	assert_rc(pipe_source_read(&s, file, NULL, NULL), AF_EINVAL);
	assert_rc(pipe_source_read(&s, NULL, NULL, NULL), AF_EINVAL);
	assert_rc(pipe_source_read(&s, "", NULL, NULL), AF_EINVAL);
	assert_null(s);
	free(gone);
	free(file);
	free(dir);
}

static void test_source__gitlink_is_skipped(void **state)
{
	char *dir = two_commit_repo();
	char head[41];
	pipe_source *s = NULL;

	(void)state;
	git_rev_parse(dir, "HEAD", head);
	/* A submodule entry (mode 160000) pointing at some commit. */
	sh("git -C '%s' update-index --add --cacheinfo 160000,%s,templates/vendored.yaml "
	   "&& git -C '%s' commit -q -m submodule", dir, head, dir);
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 2);
	assert_null(pipe_source_find(s, "templates/vendored.yaml"));
	pipe_source_free(s);
	free(dir);
}

/* ---- plain directory mode --------------------------------------------------- */

static void test_source__plain_directory(void **state)
{
	char *dir = new_dir("plaindir");
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "templates/x.yaml", "x: 1\n");
	write_file(dir, "templates/x.yaml.sig", "signature\n");
	write_file(dir, "templates/sub/y.yml", "y: 2\n");
	write_file(dir, "templates/README.md", "readme\n");
	write_file(dir, "templates/.z.yaml", "hidden\n");
	write_file(dir, "templates/.cache/c.yaml", "hidden folder\n");
	write_file(dir, "notes.yaml", "outside templates\n");
	write_bytes(dir, "templates/empty.yaml", "", 0);
	write_bytes(dir, "templates/nul.yaml", "a\0b", 3);
	sh("mkfifo '%s/templates/pipe.yaml'", dir);

	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_null(s->commit);
	assert_string_equal(s->subdir, "templates");
	assert_non_null(strstr(s->origin, "(working directory)"));
	assert_int_equal(s->n, 5);
	assert_string_equal(s->files[0].path, "templates/empty.yaml");
	assert_string_equal(s->files[1].path, "templates/nul.yaml");
	assert_string_equal(s->files[2].path, "templates/sub/y.yml");
	assert_string_equal(s->files[3].path, "templates/x.yaml");
	assert_string_equal(s->files[4].path, "templates/x.yaml.sig");
	assert_file(s, "templates/empty.yaml", "");
	assert_int_equal(s->files[1].len, 3);
	assert_memory_equal(s->files[1].data, "a\0b", 4);
	assert_file(s, "templates/sub/y.yml", "y: 2\n");
	pipe_source_free(s);
	free(dir);
}

static void test_source__directory_inside_a_work_tree_is_plain(void **state)
{
	char *dir = two_commit_repo();
	char *inner = NULL;
	pipe_source *s = NULL;

	(void)state;
	/* The repository is not searched for upwards: a folder inside a work tree
	 * is read as a plain directory. */
	assert_true(asprintf(&inner, "%s/templates", dir) > 0);
	write_file(dir, "templates/a.yaml", "on disk\n");
	assert_rc(pipe_source_read(&s, inner, NULL, NULL), 0);
	assert_null(s->commit);
	assert_file(s, "a.yaml", "on disk\n");
	pipe_source_free(s);
	assert_rc(pipe_source_read(&s, inner, "HEAD", NULL), AF_EINVAL);
	free(inner);
	free(dir);
}

/* ---- caps and hostile input ----------------------------------------------------- */

static void test_source__file_size_cap(void **state)
{
	char *dir = new_dir("big");
	char *big = calloc(1, PIPE_SOURCE_MAX_FILE_BYTES + 1);
	pipe_source *s = NULL;

	(void)state;
	assert_non_null(big);
	memset(big, '#', PIPE_SOURCE_MAX_FILE_BYTES + 1);
	write_bytes(dir, "templates/limit.yaml", big, PIPE_SOURCE_MAX_FILE_BYTES);
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_int_equal(s->files[0].len, PIPE_SOURCE_MAX_FILE_BYTES);
	pipe_source_free(s);

	write_bytes(dir, "templates/huge.yaml", big, PIPE_SOURCE_MAX_FILE_BYTES + 1);
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_ETOOBIG);
	assert_null(s);
	assert_error_mentions("templates/huge.yaml");

	/* The same blob in git is refused from its header. */
	git_init(dir);
	git_commit_all(dir, "big");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_ETOOBIG);
	assert_error_mentions("templates/huge.yaml");
	assert_error_mentions("@HEAD");

	/* Large files that are not templates are never read. */
	sh("git -C '%s' mv templates/huge.yaml templates/huge.bin && "
	   "git -C '%s' commit -q -m rename", dir, dir);
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 1);
	pipe_source_free(s);
	free(big);
	free(dir);
}

static void test_source__file_count_cap(void **state)
{
	char *dir = new_dir("many");
	char *tdir = NULL;
	pipe_source *s = NULL;

	(void)state;
	assert_true(asprintf(&tdir, "%s/templates", dir) > 0);
	mkdirs(tdir);
	sh("cd '%s' && seq 1 %u | sed 's/$/.yaml/' | xargs touch", tdir,
	   PIPE_SOURCE_MAX_FILES);
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_int_equal(s->n, PIPE_SOURCE_MAX_FILES);
	pipe_source_free(s);

	write_file(dir, "templates/one-more.yaml", "x\n");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_ETOOBIG);
	assert_null(s);
	assert_error_mentions("more than 10000");
	free(tdir);
	free(dir);
}

static void test_source__depth_cap(void **state)
{
	char *dir = new_dir("deep");
	char rel[512];
	size_t len = (size_t)snprintf(rel, sizeof(rel), "templates");
	pipe_source *s = NULL;
	unsigned i;

	(void)state;
	for (i = 0; i < PIPE_SOURCE_MAX_DEPTH; i++)
		len += (size_t)snprintf(rel + len, sizeof(rel) - len, "/d");
	snprintf(rel + len, sizeof(rel) - len, "/ok.yaml");
	write_file(dir, rel, "deep but allowed\n");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_int_equal(s->n, 1);
	pipe_source_free(s);

	snprintf(rel + len, sizeof(rel) - len, "/d/too-deep.yaml");
	write_file(dir, rel, "one level too deep\n");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_ETOOBIG);
	assert_error_mentions("nested deeper");

	git_init(dir);
	git_commit_all(dir, "deep");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_ETOOBIG);
	assert_error_mentions("nested deeper");
	free(dir);
}

static void test_source__symlinked_template_refused(void **state)
{
	char *dir = new_dir("links");
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "outside/secret.yaml", "not for reading\n");
	write_file(dir, "templates/a.yaml", "a\n");
	make_symlink(dir, "templates/link.yaml", "../outside/secret.yaml");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_EDENIED);
	assert_null(s);
	assert_error_mentions("templates/link.yaml");
	assert_error_mentions("symbolic link");

	/* Committed, the link is a tree entry of mode 120000: refused as well. */
	git_init(dir);
	git_commit_all(dir, "link");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_EDENIED);
	assert_error_mentions("templates/link.yaml");
	free(dir);
}

static void test_source__symlinked_folders_not_followed(void **state)
{
	char *dir = new_dir("linkdir");
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "outside/secret.yaml", "not for reading\n");
	write_file(dir, "templates/a.yaml", "a\n");
	make_symlink(dir, "templates/linked", "../outside");
	make_symlink(dir, "templates/README", "a.yaml");

	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_int_equal(s->n, 1);
	assert_string_equal(s->files[0].path, "templates/a.yaml");
	pipe_source_free(s);

	git_init(dir);
	git_commit_all(dir, "linked folder");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), 0);
	assert_int_equal(s->n, 1);
	pipe_source_free(s);
	free(dir);
}

static void test_source__symlinked_templates_folder_refused(void **state)
{
	char *dir = new_dir("linkroot");
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "elsewhere/a.yaml", "a\n");
	make_symlink(dir, "templates", "elsewhere");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_EDENIED);
	assert_error_mentions("symbolic link");
	git_init(dir);
	git_commit_all(dir, "linked templates");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_EDENIED);
	assert_null(s);
	free(dir);
}

static void test_source__control_characters_in_names_refused(void **state)
{
	char *dir = new_dir("ctrl");
	pipe_source *s = NULL;

	(void)state;
	write_file(dir, "templates/bad\nname.yaml", "x\n");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), AF_EINVAL);
	assert_error_mentions("control characters");
	assert_null(strchr(art_error_last(), '\n'));
	git_init(dir);
	git_commit_all(dir, "ctrl");
	assert_rc(pipe_source_read(&s, dir, "HEAD", NULL), AF_EINVAL);
	assert_null(s);
	free(dir);
}

static void test_source__find_and_free_are_null_safe(void **state)
{
	char *dir = new_dir("find");
	pipe_source *s = NULL;

	(void)state;
	pipe_source_free(NULL);
	assert_null(pipe_source_find(NULL, "templates/a.yaml"));
	write_file(dir, "templates/a.yaml", "a\n");
	write_file(dir, "templates/c.yaml", "c\n");
	assert_rc(pipe_source_read(&s, dir, NULL, NULL), 0);
	assert_null(pipe_source_find(s, NULL));
	assert_null(pipe_source_find(s, "templates/b.yaml"));
	assert_null(pipe_source_find(s, "a.yaml"));
	assert_non_null(pipe_source_find(s, "templates/c.yaml"));
	assert_rc(pipe_source_read(NULL, dir, NULL, NULL), AF_EINVAL);
	pipe_source_free(s);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source__git_reads_each_revision),
		cmocka_unit_test(test_source__git_tags_and_branches),
		cmocka_unit_test(test_source__bare_clone_reads_the_same),
		cmocka_unit_test(test_source__git_without_rev_reads_head_not_worktree),
		cmocka_unit_test(test_source__git_selects_files_and_subfolders),
		cmocka_unit_test(test_source__no_templates_folder_reads_root),
		cmocka_unit_test(test_source__explicit_subdir),
		cmocka_unit_test(test_source__arguments_refused),
		cmocka_unit_test(test_source__unknown_revision),
		cmocka_unit_test(test_source__revision_that_is_not_a_commit),
		cmocka_unit_test(test_source__empty_repository),
		cmocka_unit_test(test_source__not_a_repository_with_rev),
		cmocka_unit_test(test_source__missing_or_bad_directory),
		cmocka_unit_test(test_source__gitlink_is_skipped),
		cmocka_unit_test(test_source__plain_directory),
		cmocka_unit_test(test_source__directory_inside_a_work_tree_is_plain),
		cmocka_unit_test(test_source__file_size_cap),
		cmocka_unit_test(test_source__file_count_cap),
		cmocka_unit_test(test_source__depth_cap),
		cmocka_unit_test(test_source__symlinked_template_refused),
		cmocka_unit_test(test_source__symlinked_folders_not_followed),
		cmocka_unit_test(test_source__symlinked_templates_folder_refused),
		cmocka_unit_test(test_source__control_characters_in_names_refused),
		cmocka_unit_test(test_source__find_and_free_are_null_safe),
		cmocka_unit_test(test_source__quarantined_objects_are_read),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
