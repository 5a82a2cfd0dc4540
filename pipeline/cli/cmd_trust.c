/*
 * cmd_trust.c - `agentfactory trust add|revoke|list`: edit and show a keyring.
 *
 * Edits are load-modify-save under an exclusive flock on the keyring's
 * directory (so two concurrent `trust add` never lose an entry), and the save
 * is an atomic rename (so readers, which take no lock, always see a whole
 * file: the old one or the new one).
 */
#include "cli.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define CMD "trust"

static void trust_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory trust add    [--keyring FILE] --role ROLE [--not-before TIME]\n"
		"                                 [--not-after TIME] PUBKEY\n"
		"       agentfactory trust revoke [--keyring FILE] [--reason TEXT] KEYID\n"
		"       agentfactory trust list   [--keyring FILE] [--json]\n\n"
		"Manages a keyring: the public keys trusted to sign, each for a role, with a\n"
		"validity window, plus the list of revoked keys.\n"
		"  add     trust the PEM public key PUBKEY (a .pub file from `agentfactory keygen`)\n"
		"          for ROLE; creates the keyring if missing; prints the key id\n"
		"  revoke  revoke KEYID (64 hex digits) for every role, for good\n"
		"  list    show every key with its status now (valid, expired, not-yet-valid,\n"
		"          revoked)\n\n"
		"options:\n"
		"  --keyring FILE     the keyring file (env AF_KEYRING)\n"
		"  --role ROLE        template-signer, builder or release-manager\n"
		"  --not-before TIME  first valid time (default: now)\n"
		"  --not-after TIME   last valid time (default: no expiry)\n"
		"  --reason TEXT      why the key is revoked (recorded in the keyring)\n"
		"  --json             machine-readable output for list\n"
		"  --store DIR        also record add/revoke (and refusals) in the store's audit\n"
		"                     log (env AF_STORE)\n"
		"  -h, --help         this help\n"
		"TIME is RFC 3339 UTC (2026-11-21T10:00:00Z), a date (2026-11-21), 'now', or\n"
		"relative to now (+24h, +7d, -30m).\n\n"
		"exit codes: 0 done, 1 refused (already trusted, revoked, unknown key id,\n"
		"            unacceptable key), 2 usage error or I/O error\n");
}

typedef struct trust_args {
	const char *keyring, *role, *not_before, *not_after, *reason, *store;
	int json;
} trust_args;

static int parse_args(trust_args *a, int argc, char **argv, const char *sub, int *done)
{
	static const struct option opts[] = {
		{"keyring", required_argument, NULL, 'k'}, {"role", required_argument, NULL, 'r'},
		{"not-before", required_argument, NULL, 'b'}, {"not-after", required_argument, NULL, 'a'},
		{"reason", required_argument, NULL, 'R'}, {"json", no_argument, NULL, 'j'},
		{"store", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	*done = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': a->keyring = optarg; break;
		case 'r': a->role = optarg; break;
		case 'b': a->not_before = optarg; break;
		case 'a': a->not_after = optarg; break;
		case 'R': a->reason = optarg; break;
		case 'j': a->json = 1; break;
		case 's': a->store = optarg; break;
		case 'h': trust_usage(stdout); *done = 1; return CLI_OK;
		default:
			return cli_usage_error(CMD, "%s: unknown or incomplete option '%s'", sub,
					       argv[optind - 1]);
		}
	}
	/* Options that do not belong to the subcommand are usage errors, not ignored. */
	if (strcmp(sub, "add") != 0 && (a->role || a->not_before || a->not_after))
		return cli_usage_error(CMD, "%s: --role, --not-before and --not-after belong to 'trust add'", sub);
	if (strcmp(sub, "revoke") != 0 && a->reason)
		return cli_usage_error(CMD, "%s: --reason belongs to 'trust revoke'", sub);
	if (strcmp(sub, "list") != 0 && a->json)
		return cli_usage_error(CMD, "%s: --json belongs to 'trust list'", sub);
	a->keyring = cli_flag_or_env(a->keyring, "AF_KEYRING");
	if (!a->keyring)
		return cli_usage_error(CMD, "%s: --keyring FILE (or AF_KEYRING) is required", sub);
	return CLI_OK;
}

/* Exclusive lock on the keyring's directory; returns the fd to close, or -1. */
static int lock_keyring_dir(const char *keyring)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof(copy), "%s", keyring);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		cli_fail(CLI_USAGE, CMD, "%s: cannot open the keyring's directory: %s", keyring,
			 strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		cli_fail(CLI_USAGE, CMD, "%s: cannot lock the keyring's directory: %s", keyring,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int exit_code_for(int rc)
{
	switch (rc) {
	case AF_EEXISTS:
	case AF_EREVOKED:
	case AF_ENOTFOUND:
		return CLI_FINDINGS;
	default:
		return CLI_USAGE;
	}
}

static int trust_add(int argc, char **argv)
{
	trust_args a;
	art_keyring *kr = NULL;
	art_key *key = NULL;
	time_t not_before, not_after = 0;
	char nb[21], na[21];
	int done, rc, lock = -1;

	if ((rc = parse_args(&a, argc, argv, "add", &done)) != CLI_OK || done)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(CMD, "add: expected exactly one PUBKEY file");
	if (!a.role)
		return cli_usage_error(CMD, "add: --role ROLE is required (template-signer, builder or release-manager)");
	if (!art_keyring_role_valid(a.role))
		return cli_usage_error(CMD, "add: unknown role '%s': use template-signer, builder or release-manager", a.role);
	if (art_time_parse(&not_before, a.not_before ? a.not_before : "now") < 0 ||
	    (a.not_after && art_time_parse(&not_after, a.not_after) < 0))
		return cli_usage_error(CMD, "add: %s", art_error_last());
	if (a.not_after && not_after <= not_before)
		return cli_usage_error(CMD, "add: --not-after must be later than --not-before");

	rc = art_key_load_public(&key, argv[optind]);
	if (rc < 0)
		return cli_fail(rc == AF_EINVAL ? CLI_FINDINGS : CLI_USAGE, CMD, "%s",
				art_error_last());
	if ((lock = lock_keyring_dir(a.keyring)) < 0) {
		rc = CLI_USAGE;
		goto cleanup;
	}
	rc = art_keyring_load(&kr, a.keyring);
	if (rc == AF_ENOTFOUND)
		rc = art_keyring_new(&kr);
	if (rc < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	rc = art_keyring_add(kr, key, a.role, not_before, not_after);
	if (rc < 0) {
		rc = cli_fail(rc == AF_EINVAL ? CLI_USAGE : exit_code_for(rc), CMD, "%s: %s",
			      a.keyring, art_error_last());
		cli_audit(CMD, a.store, "trust.add", NULL, art_key_id(key), 1,
			  json_pack("{s:s, s:s, s:s}", "keyring", a.keyring, "role", a.role,
				    "reason", art_error_last()));
		goto cleanup;
	}
	if (art_keyring_save(kr, a.keyring) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	if ((rc = cli_audit(CMD, a.store, "trust.add", NULL, art_key_id(key), 0,
			    json_pack("{s:s, s:s, s:I, s:I}", "keyring", a.keyring, "role", a.role,
				      "not_before", (json_int_t)not_before,
				      "not_after", (json_int_t)not_after))) != 0)
		goto cleanup;
	printf("%s\n", art_key_id(key));
	art_time_format(nb, not_before);
	if (not_after)
		art_time_format(na, not_after);
	fprintf(stderr, "trusted key %s as %s in %s, valid from %s%s%s\n", art_key_id(key),
		a.role, a.keyring, nb, not_after ? " until " : " with no expiry",
		not_after ? na : "");
	rc = CLI_OK;
cleanup:
	if (lock >= 0)
		close(lock);
	art_keyring_free(kr);
	art_key_free(key);
	return rc;
}

static int trust_revoke(int argc, char **argv)
{
	trust_args a;
	art_keyring *kr = NULL;
	int done, rc, lock = -1;
	const char *keyid;

	if ((rc = parse_args(&a, argc, argv, "revoke", &done)) != CLI_OK || done)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(CMD, "revoke: expected exactly one KEYID (see agentfactory trust list)");
	keyid = argv[optind];
	if ((lock = lock_keyring_dir(a.keyring)) < 0)
		return CLI_USAGE;
	if (art_keyring_load(&kr, a.keyring) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	rc = art_keyring_revoke(kr, keyid, art_time_now(), a.reason);
	if (rc < 0) {
		rc = cli_fail(rc == AF_EINVAL ? CLI_USAGE : exit_code_for(rc), CMD, "%s: %s",
			      a.keyring, art_error_last());
		cli_audit(CMD, a.store, "trust.revoke", NULL, keyid, 1,
			  json_pack("{s:s, s:s}", "keyring", a.keyring, "reason", art_error_last()));
		goto cleanup;
	}
	if (art_keyring_save(kr, a.keyring) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
		goto cleanup;
	}
	if ((rc = cli_audit(CMD, a.store, "trust.revoke", NULL, keyid, 0,
			    json_pack("{s:s, s:s?}", "keyring", a.keyring, "reason", a.reason))) != 0)
		goto cleanup;
	printf("revoked %s\n", keyid);
	rc = CLI_OK;
cleanup:
	close(lock);
	art_keyring_free(kr);
	return rc;
}

/* The entry's status at now, from the keyring's own lookup rules. */
static const char *entry_status(const art_keyring *kr, const art_keyring_entry *e, time_t now)
{
	const art_key *key;

	switch (art_keyring_lookup(&key, kr, e->id, e->role, now)) {
	case 0: return "valid";
	case AF_EREVOKED: return "revoked";
	case AF_EEXPIRED: return now < e->not_before ? "not-yet-valid" : "expired";
	default: return "unknown";
	}
}

static json_t *time_or_null(time_t t)
{
	char s[21];

	if (!t)
		return json_null();
	art_time_format(s, t);
	return json_string(s);
}

static int list_json(const art_keyring *kr, const char *path, time_t now)
{
	json_t *root = json_object(), *keys = json_array(), *revoked = json_array(), *o;
	const art_keyring_revocation *r;
	size_t i;
	char nows[21], *text;

	art_time_format(nows, now);
	json_object_set_new(root, "keyring", json_string(path));
	json_object_set_new(root, "now", json_string(nows));
	json_object_set_new(root, "keys", keys);
	json_object_set_new(root, "revoked", revoked);
	for (i = 0; i < art_keyring_count(kr); i++) {
		const art_keyring_entry *e = art_keyring_get(kr, i);

		o = json_object();
		json_object_set_new(o, "id", json_string(e->id));
		json_object_set_new(o, "role", json_string(e->role));
		json_object_set_new(o, "algorithm", json_string(e->algorithm));
		json_object_set_new(o, "bits", json_integer(art_key_bits(e->key)));
		json_object_set_new(o, "not_before", time_or_null(e->not_before));
		json_object_set_new(o, "not_after", time_or_null(e->not_after));
		json_object_set_new(o, "added", time_or_null(e->added));
		json_object_set_new(o, "status", json_string(entry_status(kr, e, now)));
		json_array_append_new(keys, o);
	}
	for (i = 0; i < art_keyring_revoked_count(kr); i++) {
		r = art_keyring_revoked_get(kr, i);
		o = json_object();
		json_object_set_new(o, "id", json_string(r->id));
		json_object_set_new(o, "at", time_or_null(r->at));
		json_object_set_new(o, "reason", json_string(r->reason));
		json_array_append_new(revoked, o);
	}
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text)
		return cli_fail(CLI_USAGE, CMD, "out of memory");
	printf("%s\n", text);
	free(text);
	return CLI_OK;
}

static int list_text(const art_keyring *kr, const char *path, time_t now)
{
	const art_keyring_revocation *r;
	char nb[21], na[21], at[21];
	size_t i;

	art_time_format(at, now);
	printf("keyring %s: %zu key entr%s, %zu revoked (status at %s)\n", path,
	       art_keyring_count(kr), art_keyring_count(kr) == 1 ? "y" : "ies",
	       art_keyring_revoked_count(kr), at);
	if (art_keyring_count(kr))
		printf("%-64s  %-15s  %-20s  %-20s  %s\n", "KEY ID", "ROLE", "NOT BEFORE",
		       "NOT AFTER", "STATUS");
	for (i = 0; i < art_keyring_count(kr); i++) {
		const art_keyring_entry *e = art_keyring_get(kr, i);

		art_time_format(nb, e->not_before);
		if (e->not_after)
			art_time_format(na, e->not_after);
		printf("%-64s  %-15s  %-20s  %-20s  %s\n", e->id, e->role, nb,
		       e->not_after ? na : "never", entry_status(kr, e, now));
	}
	for (i = 0; i < art_keyring_revoked_count(kr); i++) {
		r = art_keyring_revoked_get(kr, i);
		art_time_format(at, r->at);
		printf("revoked %s at %s: %s\n", r->id, at, r->reason);
	}
	return CLI_OK;
}

static int trust_list(int argc, char **argv)
{
	trust_args a;
	art_keyring *kr = NULL;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, "list", &done)) != CLI_OK || done)
		return rc;
	if (optind != argc)
		return cli_usage_error(CMD, "list: unexpected argument '%s'", argv[optind]);
	if (art_keyring_load(&kr, a.keyring) < 0)
		return cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
	rc = a.json ? list_json(kr, a.keyring, art_time_now())
		    : list_text(kr, a.keyring, art_time_now());
	art_keyring_free(kr);
	return rc;
}

int cmd_trust(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(CMD, "a subcommand is required: add, revoke or list");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		trust_usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "add") == 0)
		return trust_add(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return trust_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return trust_list(argc - 1, argv + 1);
	return cli_usage_error(CMD, "unknown subcommand '%s': use add, revoke or list", argv[1]);
}
