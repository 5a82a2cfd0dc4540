/*
 * cmd_sign.c - `agentfactory sign`: sign template files, writing FILE.sig.
 *
 * The signature binds the template's own top-level `name` and `version` (read
 * with the same hardened YAML parser the pipeline uses) and the SHA-256 of the
 * file's exact bytes. Each FILE.sig is replaced atomically. With --keyring
 * the new signature is verified before it is written, so a key the keyring
 * does not trust as template-signer is caught at signing time, not in CI.
 */
#include "cli.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/sig.h"
#include "art/util.h"
#include "pipe/node.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CMD "sign"

static void sign_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory sign --key KEY [--keyring FILE] FILE...\n\n"
		"Signs each template FILE with the private key KEY and writes the signature\n"
		"beside it as FILE.sig (a DSSE envelope; see docs/signing.md). The signature\n"
		"covers the template's name, version and exact bytes: any later edit needs a\n"
		"new signature. Prints one line per file:\n"
		"  signed FILE (NAME@VERSION) with key KEYID\n\n"
		"options:\n"
		"  --key KEY       private key file (PEM, from `agentfactory keygen`)\n"
		"  --keyring FILE  also check the new signature against this keyring (as a\n"
		"                  template-signer, now) before writing it\n"
		"  -h, --help      this help\n\n"
		"exit codes: 0 every file signed, 1 the keyring does not accept the key,\n"
		"            2 usage error, unreadable key or file, not a template\n");
}

/* Sign one file. Returns a CLI exit code; prints what went wrong. */
static int sign_file(const art_key *key, const art_keyring *kr, const char *path)
{
	char sig_path[PATH_MAX];
	pipe_diags diags = PIPE_DIAGS_INIT;
	pipe_node *root = NULL;
	char *data = NULL, *env = NULL;
	const char *name, *version;
	size_t len = 0;
	int rc = CLI_USAGE;

	if ((size_t)snprintf(sig_path, sizeof(sig_path), "%s.sig", path) >= sizeof(sig_path)) {
		cli_fail(CLI_USAGE, CMD, "%s: path too long", path);
		goto cleanup;
	}
	if (art_file_read(&data, &len, path, PIPE_YAML_MAX_BYTES) < 0) {
		cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	if (pipe_yaml_parse(&root, data, len, path, &diags) < 0) {
		fprintf(stderr, "agentfactory %s: %s: not signed: the file does not parse\n", CMD, path);
		if (diags.n)
			pipe_diags_print(&diags, stderr);
		else
			fprintf(stderr, "%s\n", art_error_last());
		goto cleanup;
	}
	name = pipe_node_get_str(root, "name");
	version = pipe_node_get_str(root, "version");
	if (!name || !*name || !version || !*version) {
		cli_fail(CLI_USAGE, CMD,
			 "%s: not signed: a template needs top-level string fields 'name' and "
			 "'version' (e.g. name: my-agent, version: 1.0.0; quote a version such as "
			 "\"1.0\" that YAML would read as a number)", path);
		goto cleanup;
	}
	if (art_sig_sign(&env, key, ART_SIG_TYPE_TEMPLATE, name, version, data, len) < 0) {
		cli_fail(CLI_USAGE, CMD, "%s: %s", path, art_error_last());
		goto cleanup;
	}
	if (kr && art_sig_verify(NULL, kr, ART_ROLE_TEMPLATE_SIGNER, ART_SIG_TYPE_TEMPLATE, name,
				 version, data, len, env, strlen(env), art_time_now()) < 0) {
		rc = cli_fail(CLI_FINDINGS, CMD, "%s: not signed: the keyring would reject this "
			      "signature: %s", path, art_error_last());
		goto cleanup;
	}
	if (art_file_write_atomic(sig_path, env, strlen(env), 0644) < 0) {
		cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	printf("signed %s (%s@%s) with key %s\n", path, name, version, art_key_id(key));
	rc = CLI_OK;
cleanup:
	pipe_node_free(root);
	pipe_diags_free(&diags);
	free(data);
	free(env);
	return rc;
}

int cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'}, {"keyring", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *key_path = NULL, *keyring_path = NULL;
	art_keyring *kr = NULL;
	art_key *key = NULL;
	int c, i, rc = CLI_OK, one;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_path = optarg; break;
		case 'K': keyring_path = optarg; break;
		case 'h': sign_usage(stdout); return CLI_OK;
		default:
			return cli_usage_error(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (!key_path)
		return cli_usage_error(CMD, "--key KEY is required (a private key from agentfactory keygen)");
	if (optind >= argc)
		return cli_usage_error(CMD, "no FILE to sign");
	if (art_key_load_private(&key, key_path) < 0)
		return cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
	if (keyring_path && art_keyring_load(&kr, keyring_path) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	/* Sign every file even if one fails; report the worst outcome. */
	for (i = optind; i < argc; i++) {
		one = sign_file(key, kr, argv[i]);
		if (one == CLI_USAGE || (one == CLI_FINDINGS && rc == CLI_OK))
			rc = one;
	}
cleanup:
	art_keyring_free(kr);
	art_key_free(key);
	return rc;
}
