/*
 * main.c - the agentfactory command dispatcher.
 */
#include "cli.h"
#include "cmd_release.h"
#include "cmd_repro.h"
#include "cmd_store.h"

#include "art/audit.h"
#include "art/error.h"
#include "art/store.h"
#include "art/util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AF_VERSION
#define AF_VERSION "0.0.0"
#endif

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{"keygen", cmd_keygen, "generate a signing key pair for a role"},
	{"trust", cmd_trust, "add or revoke public keys in a keyring"},
	{"sign", cmd_sign, "sign templates (writes FILE.sig beside each)"},
	{"check", cmd_check, "verify signatures and policies of a template repository"},
	{"resolve", cmd_resolve, "print a template with its inheritance resolved"},
	{"build", cmd_build, "compile templates to signed, precompiled artifacts in a store"},
	{"run", cmd_run, "run one invocation of a stored agent through the runtime's loader"},
	{"ls", cmd_ls, "list the artifacts in a store"},
	{"inspect", cmd_inspect, "show an artifact: manifest, digests, sizes, signature, provenance"},
	{"verify", cmd_verify, "re-check every artifact in a store: signatures and part digests"},
	{"export", cmd_export, "write a signed bundle (OCI image layout) of a store's artifacts"},
	{"import", cmd_import, "verify a bundle and add its artifacts to a store"},
	{"push", cmd_push, "push artifacts, a release or a channel to an OCI registry"},
	{"pull", cmd_pull, "verify and pull a channel, release or artifacts from an OCI registry"},
	{"verify-reproducible", cmd_verify_reproducible,
	 "rebuild a revision and compare every digest with a store or bundle"},
	{"release", cmd_release, "create a signed, expiring release of exact artifact digests"},
	{"promote", cmd_promote, "point a channel (blue, green, ...) at a newer release"},
	{"rollback", cmd_rollback, "point a channel back at an older release (signed, audited)"},
	{"channel", cmd_channel, "set a channel's signature threshold; show its history"},
	{"status", cmd_status, "show channels and releases: who signed, expiry, validity"},
	{"audit", cmd_audit, "show, verify or checkpoint the store's hash-chained audit log"},
	{"hooks", cmd_hooks, "install git server hooks: check every push, build what is accepted"},
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: agentfactory [--version] [--help] COMMAND [ARGS]\n\n"
		"Turns a git repository of signed agent templates into verified,\n"
		"policy-checked agents.\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\nRun 'agentfactory COMMAND --help' for a command's options.\n"
		"Exit codes: 0 success, 1 findings (verification or policy), 2 usage or internal error.\n"
		"Environment: AF_KEYRING, AF_POLICIES, AF_STORE, AF_BUILDER_KEY stand for --keyring,\n"
		"--policies, --store, --builder-key.\n");
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "agentfactory %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun 'agentfactory %s --help' for usage.\n", cmd);
	return CLI_USAGE;
}

int cli_fail(int code, const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "agentfactory %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

const char *cli_flag_or_env(const char *flag, const char *env)
{
	const char *v;

	if (flag)
		return flag;
	v = getenv(env);
	return (v && *v) ? v : NULL;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The default policy directory, found from where the binary is, never from
 * a path baked in at build time: `make install PREFIX=P` (or a copy of the
 * installed tree anywhere, DESTDIR staging included) puts the binary in
 * P/bin and the policies in P/share/agentfactory/policies; a development
 * build lives in <src>/build/<config>/bin/ beside <src>/policies. When
 * neither exists the installed path is returned so the error names it.
 */
const char *cli_default_policies(const char *flag)
{
	static char found[PATH_MAX + 64];
	const char *v = cli_flag_or_env(flag, "AF_POLICIES");
	char exe[PATH_MAX], bindir[PATH_MAX];
	ssize_t n;
	char *slash;
	int i;

	if (v)
		return v;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return "/usr/local/share/agentfactory/policies";
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
	snprintf(bindir, sizeof(bindir), "%s", exe);
	/* Installed: <prefix>/bin/agentfactory. */
	snprintf(found, sizeof(found), "%s/../share/agentfactory/policies", bindir);
	if (is_dir(found))
		return found;
	/* Development build: <src>/build/<config>/bin/agentfactory. */
	for (i = 0; i < 3 && (slash = strrchr(exe, '/')); i++)
		*slash = '\0';
	snprintf(found, sizeof(found), "%s/policies", exe);
	if (i == 3 && is_dir(found))
		return found;
	snprintf(found, sizeof(found), "%s/../share/agentfactory/policies", bindir);
	return found;
}

int cli_audit_signed(const char *cmd, const char *store_dir, const char *action,
		     const char *actor, const char *subject, int refused, json_t *details,
		     const art_key *const *signers, size_t n_signers)
{
	const char *dir = cli_flag_or_env(store_dir, "AF_STORE");
	art_audit_event ev;
	art_store *s = NULL;
	char *text = NULL;
	int rc = 0;

	if (!dir) {
		json_decref(details);
		return 0;
	}
	if (details)
		text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	memset(&ev, 0, sizeof(ev));
	ev.action = action;
	ev.actor = actor;
	ev.subject = subject;
	ev.outcome = refused ? ART_AUDIT_REFUSED : ART_AUDIT_OK;
	ev.details_json = text;
	ev.signers = signers;
	ev.n_signers = n_signers;
	if (art_store_open(&s, dir, ART_STORE_CREATE) < 0 ||
	    art_audit_append(NULL, s, &ev, art_time_now()) < 0)
		rc = cli_fail(CLI_USAGE, cmd, "%s: audit entry not recorded: %s", dir, art_error_last());
	art_store_close(s);
	free(text);
	json_decref(details);
	return rc;
}

int cli_audit(const char *cmd, const char *store_dir, const char *action, const char *actor,
	      const char *subject, int refused, json_t *details)
{
	return cli_audit_signed(cmd, store_dir, action, actor, subject, refused, details, NULL, 0);
}

int cli_checkpoint(const char *cmd, const char *store_dir, const art_key *key)
{
	const char *cpdir = cli_flag_or_env(NULL, "AF_AUDIT_CHECKPOINTS");
	const char *dir = cli_flag_or_env(store_dir, "AF_STORE");
	art_store *s = NULL;
	uint64_t seq = 0;
	int rc = 0;

	if (!cpdir || !dir || !key)
		return 0;
	if (art_store_open(&s, dir, ART_STORE_RDONLY) < 0 ||
	    art_audit_checkpoint_to_dir(&seq, s, key, cpdir, art_time_now()) < 0)
		rc = cli_fail(CLI_USAGE, cmd, "%s: audit checkpoint not written to %s: %s", dir, cpdir,
			      art_error_last());
	art_store_close(s);
	return rc;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("agentfactory %s\n", AF_VERSION);
		return CLI_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "agentfactory: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
