/*
 * cmd_hooks.c - `agentfactory hooks install`: make a bare git repository
 * check every push (pre-receive) and build what it accepted into a store
 * (post-receive, through a queue run by one worker at a time).
 *
 * The hooks are small sh scripts (hooks_scripts.h) that call this binary by
 * its absolute path; the settings live in the repository's git config
 * (agentfactory.keyring, .policies, .store, .builderkey, .dir, .branches,
 * .jobs, .wait), every path made absolute here, so the hooks do not depend
 * on the directory or environment git runs them in. Everything is validated
 * before anything is written (the keyring and policies load, the builder key
 * loads), and each hook is written to a temporary file and renamed into
 * place, so a failed install leaves the repository as it was.
 */
#include "cli.h"
#include "hooks_scripts.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "pipe/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <git2.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "hooks"

static void hooks_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory hooks install --repo BARE.git --keyring FILE [--policies DIR]\n"
		"                                  [--store DIR --builder-key KEY] [--dir SUBDIR]\n"
		"                                  [--branches PATTERNS] [-j N] [--wait SECONDS]\n"
		"                                  [--max-file-size BYTES] [--allow-force-push]\n"
		"                                  [--force]\n"
		"       agentfactory hooks audit --store DIR --ref REF --rev REV --reason TEXT\n\n"
		"Installs server-side hooks in the bare git repository BARE.git:\n"
		"  pre-receive   runs `agentfactory check` on every pushed revision that changes\n"
		"                the templates folder or policies/ and rejects the push when it\n"
		"                has a finding; the pusher sees the findings (file:line) as\n"
		"                `remote:` lines. Deletions and other changes pass untouched.\n"
		"                A push bringing a file over BYTES, or a force-push rewriting a\n"
		"                branch's history, is refused whatever it touches.\n"
		"  post-receive  (with --store) queues a build of each accepted revision on a\n"
		"                branch matching PATTERNS; one worker at a time builds the queue\n"
		"                into the store; the pusher sees which agents were built (or,\n"
		"                after --wait seconds, that the build goes on). The hook never\n"
		"                fails the push and never leaves a half build.\n"
		"The hooks call this binary by its absolute path; the settings are stored in\n"
		"the repository's git config (agentfactory.*), paths made absolute. Re-running\n"
		"install replaces the settings. State (queue, results, logs) goes to\n"
		"BARE.git/agentfactory/.\n"
		"`hooks audit` (used by pre-receive) records a refused push in the store's\n"
		"audit log.\n\n"
		"options:\n"
		"  --repo DIR           the bare repository\n"
		"  --keyring FILE       trusted keys (env AF_KEYRING)\n"
		"  --policies DIR       policy directory (env AF_POLICIES; default: the installed\n"
		"                       policies)\n"
		"  --store DIR          build accepted pushes into this store (env AF_STORE);\n"
		"                       check refusals are audited in it too\n"
		"  --builder-key KEY    signs the built manifests (env AF_BUILDER_KEY); needs --store\n"
		"  --dir SUBDIR         template folder inside the repository (default templates)\n"
		"  --branches PATTERNS  space-separated shell patterns of the refs to build\n"
		"                       (default 'refs/heads/*'); every ref is checked\n"
		"  -j, --jobs N         parallel compile jobs of a build\n"
		"  --wait SECONDS       how long post-receive waits to print the build result\n"
		"                       (default 600; 0: never wait)\n"
		"  --max-file-size BYTES  refuse pushes bringing a larger file anywhere in the\n"
		"                       tree (default 52428800, 50 MiB)\n"
		"  --allow-force-push   accept non-fast-forward branch updates (still checked)\n"
		"  --force              replace existing hooks not written by agentfactory\n"
		"  -h, --help           this help\n\n"
		"exit codes: 0 installed (recorded), 1 refused (an existing hook not written by agentfactory;\n"
		"            not a bare repository), 2 usage error, unreadable keyring, policies\n"
		"            or key, I/O error\n");
}

typedef struct hooks_args {
	const char *repo, *keyring, *policies, *store, *builder_key, *subdir, *branches;
	long jobs, wait;
	long long max_file_bytes;
	int force, allow_force_push;
} hooks_args;

/* Shell single-quoting: 'a'\''b'. Caller frees. */
static char *shell_quote(const char *s)
{
	size_t n = 2, i, o = 0;
	char *q;

	for (i = 0; s[i]; i++)
		n += s[i] == '\'' ? 4 : 1;
	q = malloc(n + 1);
	if (!q)
		return NULL;
	q[o++] = '\'';
	for (i = 0; s[i]; i++) {
		if (s[i] == '\'') {
			memcpy(q + o, "'\\''", 4);
			o += 4;
		} else {
			q[o++] = s[i];
		}
	}
	q[o++] = '\'';
	q[o] = '\0';
	return q;
}

/* The script with every "@AF@" replaced by quoted_bin. Caller frees. */
static char *render(const char *script, const char *quoted_bin)
{
	const char *p, *at;
	size_t n = 0, blen = strlen(quoted_bin);
	char *out, *o;

	for (p = script; (at = strstr(p, "@AF@")) != NULL; p = at + 4)
		n++;
	out = malloc(strlen(script) + n * blen + 1);
	if (!out)
		return NULL;
	for (o = out, p = script; (at = strstr(p, "@AF@")) != NULL; p = at + 4) {
		memcpy(o, p, (size_t)(at - p));
		o += at - p;
		memcpy(o, quoted_bin, blen);
		o += blen;
	}
	memcpy(o, p, strlen(p) + 1);
	return out;
}

/*
 * 1 when path exists and is not a hook written by agentfactory (its second
 * line is HOOKS_MARKER), 0 when it is absent or ours, -1 on a read error.
 */
static int foreign_hook(const char *path)
{
	char buf[256];
	size_t n;
	FILE *f = fopen(path, "r");
	char *nl;

	if (!f)
		return errno == ENOENT ? 0 : -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	return !(nl && strncmp(nl + 1, HOOKS_MARKER "\n", strlen(HOOKS_MARKER) + 1) == 0);
}

/* Write text to dir/name through dir/.name.tmp + rename, mode 0755. */
static int write_hook(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	size_t len = strlen(text), off = 0;
	int fd, rc = CLI_OK;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.af-tmp", dir, name) >= (int)sizeof(tmp))
		return cli_fail(CLI_USAGE, CMD, "%s: path too long", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0)
		return cli_fail(CLI_USAGE, CMD, "%s: cannot write: %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = cli_fail(CLI_USAGE, CMD, "%s: write failed: %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (rc == CLI_OK && (fchmod(fd, 0755) < 0 || fsync(fd) < 0))
		rc = cli_fail(CLI_USAGE, CMD, "%s: %s", tmp, strerror(errno));
	if (close(fd) < 0 && rc == CLI_OK)
		rc = cli_fail(CLI_USAGE, CMD, "%s: %s", tmp, strerror(errno));
	if (rc == CLI_OK && rename(tmp, path) < 0)
		rc = cli_fail(CLI_USAGE, CMD, "%s: cannot install: %s", path, strerror(errno));
	if (rc != CLI_OK)
		unlink(tmp);
	return rc;
}

/* realpath of an existing path into out (PATH_MAX), or a message. */
static int absolute(char *out, const char *path, const char *what)
{
	if (!realpath(path, out))
		return cli_fail(CLI_USAGE, CMD, "%s %s: %s", what, path, strerror(errno));
	return CLI_OK;
}

/*
 * An absolute path for a store that may not exist yet: its parent must
 * exist; the last component is appended to the parent's realpath.
 */
static int absolute_store(char *out, const char *path)
{
	char copy[PATH_MAX], parent[PATH_MAX];
	const char *base;
	char *slash;
	size_t len;

	if (realpath(path, out))
		return CLI_OK;
	len = strlen(path);
	if (len == 0 || len >= sizeof(copy))
		return cli_fail(CLI_USAGE, CMD, "--store '%s': invalid path", path);
	memcpy(copy, path, len + 1);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		base = slash + 1;
		if (!realpath(copy[0] ? copy : "/", parent))
			return cli_fail(CLI_USAGE, CMD, "--store %s: parent folder: %s", path,
					strerror(errno));
	} else {
		base = copy;
		if (!getcwd(parent, sizeof(parent)))
			return cli_fail(CLI_USAGE, CMD, "getcwd: %s", strerror(errno));
	}
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	    snprintf(out, PATH_MAX, "%s/%s", parent, base) >= PATH_MAX)
		return cli_fail(CLI_USAGE, CMD, "--store %s: invalid path", path);
	return CLI_OK;
}

static int git_failed(const char *what)
{
	const git_error *e = git_error_last();

	return cli_fail(CLI_USAGE, CMD, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* Set name to value, or remove it when value is NULL. */
static int config_put(git_config *cfg, const char *name, const char *value)
{
	int grc;

	if (value)
		grc = git_config_set_string(cfg, name, value);
	else if ((grc = git_config_delete_entry(cfg, name)) == GIT_ENOTFOUND)
		grc = 0;
	return grc < 0 ? git_failed(name) : CLI_OK;
}

static int parse_args(hooks_args *a, int argc, char **argv, int *done)
{
	static const struct option opts[] = {
		{"repo", required_argument, NULL, 'r'}, {"keyring", required_argument, NULL, 'k'},
		{"policies", required_argument, NULL, 'p'}, {"store", required_argument, NULL, 's'},
		{"builder-key", required_argument, NULL, 'b'}, {"dir", required_argument, NULL, 'd'},
		{"branches", required_argument, NULL, 'B'}, {"jobs", required_argument, NULL, 'j'},
		{"wait", required_argument, NULL, 'w'}, {"force", no_argument, NULL, 'f'},
		{"max-file-size", required_argument, NULL, 'M'},
		{"allow-force-push", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	a->wait = -1;
	*done = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->repo = optarg; break;
		case 'k': a->keyring = optarg; break;
		case 'p': a->policies = optarg; break;
		case 's': a->store = optarg; break;
		case 'b': a->builder_key = optarg; break;
		case 'd': a->subdir = optarg; break;
		case 'B': a->branches = optarg; break;
		case 'f': a->force = 1; break;
		case 'F': a->allow_force_push = 1; break;
		case 'M':
			a->max_file_bytes = strtoll(optarg, &end, 10);
			if (*end || !*optarg || a->max_file_bytes < 1)
				return cli_usage_error(CMD, "--max-file-size needs a number of bytes, not '%s'", optarg);
			break;
		case 'j':
			a->jobs = strtol(optarg, &end, 10);
			if (*end || a->jobs < 1 || a->jobs > 256)
				return cli_usage_error(CMD, "-j needs a number from 1 to 256, not '%s'", optarg);
			break;
		case 'w':
			a->wait = strtol(optarg, &end, 10);
			if (*end || !*optarg || a->wait < 0 || a->wait > 86400)
				return cli_usage_error(CMD, "--wait needs seconds from 0 to 86400, not '%s'", optarg);
			break;
		case 'h': *done = 1; return CLI_OK;
		default:
			return cli_usage_error(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	return CLI_OK;
}

/* Everything is checked before anything is written. */
static int validate(const hooks_args *a, const char *keyring, const char *policies,
		    const char *store, const char *builder_key)
{
	art_keyring *kr = NULL;
	art_key *key = NULL;
	pipe_policy *pol = NULL;
	pipe_diags pd = PIPE_DIAGS_INIT;
	int rc = CLI_OK;

	if (!a->repo)
		return cli_usage_error(CMD, "--repo BARE.git is required");
	if (!keyring)
		return cli_usage_error(CMD, "--keyring FILE (or AF_KEYRING) is required: pushes are "
				       "checked against it");
	if (!store != !builder_key)
		return cli_usage_error(CMD, "--store and --builder-key go together (building needs both)");
	if (!store && (a->branches || a->jobs || a->wait >= 0))
		return cli_usage_error(CMD, "--branches, -j and --wait configure the build: they need --store");
	if (a->subdir && (!*a->subdir || a->subdir[0] == '/' || strstr(a->subdir, "..")))
		return cli_usage_error(CMD, "--dir '%s': a relative folder inside the repository", a->subdir);
	if (art_keyring_load(&kr, keyring) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	if (pipe_policy_load_dir(&pol, policies, &pd) < 0) {
		pipe_diags_print(&pd, stderr);
		rc = cli_fail(CLI_USAGE, CMD, "cannot load policies from %s: %s", policies,
			      art_error_last());
		goto cleanup;
	}
	if (builder_key && art_key_load_private(&key, builder_key) < 0)
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
cleanup:
	art_key_free(key);
	pipe_policy_free(pol);
	pipe_diags_free(&pd);
	art_keyring_free(kr);
	return rc;
}

static int hooks_install(int argc, char **argv)
{
	hooks_args a;
	const char *keyring, *policies, *store, *builder_key;
	char repo_abs[PATH_MAX], kr_abs[PATH_MAX], pol_abs[PATH_MAX], store_abs[PATH_MAX];
	char key_abs[PATH_MAX], bin[PATH_MAX], hooks_dir[PATH_MAX + 8], state[PATH_MAX + 16];
	char num[32], *quoted = NULL, *pre = NULL, *post = NULL;
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	bool git_ready = false;
	int rc, done, i;
	ssize_t n;

	rc = parse_args(&a, argc, argv, &done);
	if (rc != CLI_OK || done) {
		if (done)
			hooks_usage(stdout);
		return rc;
	}
	keyring = cli_flag_or_env(a.keyring, "AF_KEYRING");
	policies = cli_default_policies(a.policies);
	store = cli_flag_or_env(a.store, "AF_STORE");
	builder_key = cli_flag_or_env(a.builder_key, "AF_BUILDER_KEY");
	if (!store)
		builder_key = NULL; /* an exported AF_BUILDER_KEY alone configures nothing */
	rc = validate(&a, keyring, policies, store, builder_key);
	if (rc != CLI_OK)
		return rc;
	if ((rc = absolute(repo_abs, a.repo, "--repo")) != CLI_OK ||
	    (rc = absolute(kr_abs, keyring, "--keyring")) != CLI_OK ||
	    (rc = absolute(pol_abs, policies, "--policies")) != CLI_OK ||
	    (store && (rc = absolute_store(store_abs, store)) != CLI_OK) ||
	    (builder_key && (rc = absolute(key_abs, builder_key, "--builder-key")) != CLI_OK))
		return rc;
	n = readlink("/proc/self/exe", bin, sizeof(bin) - 1);
	if (n <= 0)
		return cli_fail(CLI_USAGE, CMD, "cannot find this binary's path: %s", strerror(errno));
	bin[n] = '\0';

	rc = CLI_USAGE;
	if (git_libgit2_init() < 0) {
		git_failed("libgit2");
		goto cleanup;
	}
	git_ready = true;
	if (git_repository_open_ext(&repo, repo_abs, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		git_failed(repo_abs);
		goto cleanup;
	}
	if (!git_repository_is_bare(repo)) {
		rc = cli_fail(CLI_FINDINGS, CMD, "%s is not a bare repository: server-side hooks "
			      "belong in the repository people push to (git init --bare)", repo_abs);
		goto cleanup;
	}
	snprintf(hooks_dir, sizeof(hooks_dir), "%s/hooks", repo_abs);
	snprintf(state, sizeof(state), "%s/agentfactory", repo_abs);
	if ((mkdir(hooks_dir, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(state, 0755) < 0 && errno != EEXIST)) {
		cli_fail(CLI_USAGE, CMD, "%s: %s", repo_abs, strerror(errno));
		goto cleanup;
	}
	for (i = 0; i < 2; i++) {
		char path[PATH_MAX + 32];
		int foreign;

		snprintf(path, sizeof(path), "%s/%s", hooks_dir, i ? "post-receive" : "pre-receive");
		foreign = foreign_hook(path);
		if (foreign < 0) {
			cli_fail(CLI_USAGE, CMD, "%s: %s", path, strerror(errno));
			goto cleanup;
		}
		if (foreign && !a.force) {
			rc = cli_fail(CLI_FINDINGS, CMD, "%s exists and was not written by agentfactory; "
				      "merge it by hand or replace it with --force", path);
			goto cleanup;
		}
	}
	quoted = shell_quote(bin);
	pre = quoted ? render(hooks_pre_receive, quoted) : NULL;
	post = quoted ? render(hooks_post_receive, quoted) : NULL;
	if (!pre || !post) {
		cli_fail(CLI_USAGE, CMD, "out of memory");
		goto cleanup;
	}
	/* Settings first: a hook never runs with half of them. */
	if (git_repository_config(&cfg, repo) < 0) {
		git_failed("git config");
		goto cleanup;
	}
	snprintf(num, sizeof(num), "%ld", a.jobs);
	if (config_put(cfg, "agentfactory.keyring", kr_abs) != CLI_OK ||
	    config_put(cfg, "agentfactory.policies", pol_abs) != CLI_OK ||
	    config_put(cfg, "agentfactory.store", store ? store_abs : NULL) != CLI_OK ||
	    config_put(cfg, "agentfactory.builderkey", builder_key ? key_abs : NULL) != CLI_OK ||
	    config_put(cfg, "agentfactory.dir", a.subdir) != CLI_OK ||
	    config_put(cfg, "agentfactory.branches", a.branches) != CLI_OK ||
	    config_put(cfg, "agentfactory.jobs", a.jobs ? num : NULL) != CLI_OK)
		goto cleanup;
	snprintf(num, sizeof(num), "%ld", a.wait);
	if (config_put(cfg, "agentfactory.wait", a.wait >= 0 ? num : NULL) != CLI_OK)
		goto cleanup;
	snprintf(num, sizeof(num), "%lld", a.max_file_bytes);
	if (config_put(cfg, "agentfactory.maxfilebytes", a.max_file_bytes ? num : NULL) != CLI_OK ||
	    config_put(cfg, "agentfactory.allowforcepush", a.allow_force_push ? "true" : NULL) != CLI_OK)
		goto cleanup;
	if (write_hook(hooks_dir, "pre-receive", pre) != CLI_OK ||
	    write_hook(hooks_dir, "post-receive", post) != CLI_OK)
		goto cleanup;
	printf("installed %s/pre-receive: pushes changing %s/ or policies/ are checked against %s\n",
	       hooks_dir, a.subdir ? a.subdir : "templates", kr_abs);
	if (store)
		printf("installed %s/post-receive: accepted pushes to %s are built into %s\n",
		       hooks_dir, a.branches ? a.branches : "refs/heads/*", store_abs);
	else
		printf("installed %s/post-receive: no --store, so nothing is built\n", hooks_dir);
	rc = CLI_OK;
cleanup:
	free(quoted);
	free(pre);
	free(post);
	git_config_free(cfg);
	git_repository_free(repo);
	if (git_ready)
		git_libgit2_shutdown();
	return rc;
}

/*
 * `hooks audit`: the pre-receive hook records a push it refused for a reason
 * of its own (force-push, oversized file, a check that could not run) as a
 * refused "push" entry; check's own findings are audited by check.
 */
static int hooks_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'}, {"ref", required_argument, NULL, 'r'},
		{"rev", required_argument, NULL, 'R'}, {"reason", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *store = NULL, *ref = NULL, *rev = NULL, *reason = NULL;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': store = optarg; break;
		case 'r': ref = optarg; break;
		case 'R': rev = optarg; break;
		case 'w': reason = optarg; break;
		case 'h': hooks_usage(stdout); return CLI_OK;
		default:
			return cli_usage_error(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	store = cli_flag_or_env(store, "AF_STORE");
	if (!store || !ref || !rev || !reason)
		return cli_usage_error(CMD, "audit needs --store, --ref, --rev and --reason");
	return cli_audit(CMD, store, "push", NULL, ref, 1,
			 json_pack("{s:s, s:s, s:s}", "ref", ref, "commit", rev, "reason", reason));
}

int cmd_hooks(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		hooks_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	if (strcmp(argv[1], "install") == 0)
		return hooks_install(argc - 1, argv + 1);
	if (strcmp(argv[1], "audit") == 0)
		return hooks_audit(argc - 1, argv + 1);
	return cli_usage_error(CMD, "unknown subcommand '%s' (install, audit)", argv[1]);
}
