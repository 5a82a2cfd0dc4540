/*
 * cmd_keygen.c - `agentfactory keygen`: make an RSA key pair for one role.
 *
 * Writes DIR/ROLE.key (PKCS#8 PEM, mode 0600, in a directory created 0700)
 * and DIR/ROLE.pub (PEM, 0644), and prints the key id on stdout so scripts
 * can capture it. An existing key is never replaced without --force: losing
 * a private key that a keyring trusts is not something to do by accident.
 */
#include "cli.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "keygen"

static void keygen_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory keygen --role ROLE --out DIR [--bits N] [--force]\n\n"
		"Generates an RSA key pair (RSA-PSS / SHA-256 signatures) for one role:\n"
		"  DIR/ROLE.key  the private key, PKCS#8 PEM, mode 0600 - keep it secret,\n"
		"                never commit it\n"
		"  DIR/ROLE.pub  the public key, PEM - give it to `agentfactory trust add`\n"
		"DIR is created (mode 0700) if missing. The key id (64 hex digits, the SHA-256\n"
		"of the DER public key) is printed on stdout.\n\n"
		"options:\n"
		"  --role ROLE   template-signer, builder, release-manager or root\n"
		"  --out DIR     where to write the key pair\n"
		"  --bits N      RSA modulus size, %u to %u (default %u)\n"
		"  --force       replace an existing key pair of that role in DIR\n"
		"  -h, --help    this help\n\n"
		"exit codes: 0 key written, 1 refused (a key already exists; use --force),\n"
		"            2 usage error or I/O error\n",
		ART_KEY_MIN_BITS, ART_KEY_MAX_BITS, ART_KEY_DEFAULT_BITS);
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i, len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return art_error_set(AF_EINVAL, "invalid directory '%s'", dir);
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return art_error_set(AF_EIO, "%s: cannot create directory: %s", path,
					     strerror(errno));
		path[i] = i == len ? '\0' : '/';
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return art_error_set(AF_EIO, "%s: not a directory", dir);
	return 0;
}

static int parse_bits(unsigned *out, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < ART_KEY_MIN_BITS ||
	    v > ART_KEY_MAX_BITS)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"role", required_argument, NULL, 'r'}, {"out", required_argument, NULL, 'o'},
		{"bits", required_argument, NULL, 'b'}, {"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *role = NULL, *dir = NULL;
	char key_path[PATH_MAX], pub_path[PATH_MAX];
	unsigned bits = ART_KEY_DEFAULT_BITS;
	art_key *key = NULL;
	char *pem = NULL;
	int c, force = 0, rc = CLI_OK;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': role = optarg; break;
		case 'o': dir = optarg; break;
		case 'f': force = 1; break;
		case 'b':
			if (parse_bits(&bits, optarg) < 0)
				return cli_usage_error(CMD, "--bits must be a number from %u to %u, not '%s'",
						       ART_KEY_MIN_BITS, ART_KEY_MAX_BITS, optarg);
			break;
		case 'h': keygen_usage(stdout); return CLI_OK;
		default:
			return cli_usage_error(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (!role)
		return cli_usage_error(CMD, "--role ROLE is required (template-signer, builder, release-manager or root)");
	if (!art_keyring_role_valid(role))
		return cli_usage_error(CMD, "unknown role '%s': use template-signer, builder, release-manager or root", role);
	if (!dir)
		return cli_usage_error(CMD, "--out DIR is required");
	if ((size_t)snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, role) >= sizeof(key_path) ||
	    (size_t)snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, role) >= sizeof(pub_path))
		return cli_usage_error(CMD, "--out path is too long");
	if (!force && (access(key_path, F_OK) == 0 || access(pub_path, F_OK) == 0))
		return cli_fail(CLI_FINDINGS, CMD,
				"%s already exists: refusing to overwrite a key. Use another --out "
				"directory, or --force to replace it (signatures made with the old key "
				"stay valid only while the keyring trusts the old public key)",
				access(key_path, F_OK) == 0 ? key_path : pub_path);
	if (make_dirs(dir) < 0)
		return cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
	if (art_key_generate(&key, bits) < 0 || art_key_public_pem(&pem, key) < 0 ||
	    art_key_save_private(key, key_path) < 0 ||
	    art_file_write_atomic(pub_path, pem, strlen(pem), 0644) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	printf("%s\n", art_key_id(key));
	fprintf(stderr,
		"wrote %s (private, mode 0600: keep it secret) and %s\n"
		"trust it with: agentfactory trust add --keyring KEYRING --role %s %s\n",
		key_path, pub_path, role, pub_path);
cleanup:
	free(pem);
	art_key_free(key);
	return rc;
}
