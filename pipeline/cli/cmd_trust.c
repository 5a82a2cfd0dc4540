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
		"usage: agentfactory trust init   [--keyring FILE] --root-key KEY... [--threshold K]\n"
		"                                 [--expires TIME]\n"
		"       agentfactory trust add    [--keyring FILE] --root-key KEY... --role ROLE\n"
		"                                 [--not-before TIME] [--not-after TIME]\n"
		"                                 [--expires TIME] PUBKEY\n"
		"       agentfactory trust revoke [--keyring FILE] --root-key KEY... [--reason TEXT]\n"
		"                                 [--expires TIME] KEYID\n"
		"       agentfactory trust threshold [--keyring FILE] --root-key KEY... --threshold K\n"
		"       agentfactory trust renew  [--keyring FILE] --root-key KEY... [--expires TIME]\n"
		"       agentfactory trust verify [--keyring FILE] [--previous OLD-FILE]\n"
		"       agentfactory trust list   [--keyring FILE] [--json]\n\n"
		"Manages a keyring: the public keys trusted to sign, each for a role, with a\n"
		"validity window, plus the list of revoked keys. The keyring is a signed\n"
		"document: keys of role 'root' sign it (K of them, the root threshold), every\n"
		"change is a new version signed by the root keys of the version before, and\n"
		"it expires. A keyring that is not signed is not trusted.\n"
		"  init      sign a new keyring (or an old unsigned one, keeping its keys) as\n"
		"            version 1, trusting the --root-key keys as its roots\n"
		"  add       trust the PEM public key PUBKEY (a .pub file from `agentfactory keygen`)\n"
		"            for ROLE (role root adds a root key); creates the keyring if missing,\n"
		"            with the --root-key keys as roots; prints the key id\n"
		"  revoke    revoke KEYID (64 hex digits) for every role, for good\n"
		"  threshold set how many root keys must sign the keyring from now on\n"
		"  renew     sign the same content as a new version with a new expiry\n"
		"  verify    check the signatures and expiry now; with --previous, also that\n"
		"            FILE may replace OLD-FILE (newer, signed by OLD-FILE's roots)\n"
		"  list      show every key with its status now (valid, expired, not-yet-valid,\n"
		"            revoked)\n\n"
		"options:\n"
		"  --keyring FILE     the keyring file (env AF_KEYRING)\n"
		"  --root-key KEY     a root private key (file or pkcs11: URI) that signs the new\n"
		"                     version; repeat to meet the threshold (env AF_ROOT_KEY: one)\n"
		"  --role ROLE        template-signer, builder, release-manager or root\n"
		"  --not-before TIME  first valid time (default: now)\n"
		"  --not-after TIME   last valid time (default: no expiry)\n"
		"  --expires TIME     when the new keyring version expires (default: +365d)\n"
		"  --threshold K      root signatures needed (init: default 1)\n"
		"  --reason TEXT      why the key is revoked (recorded in the keyring)\n"
		"  --previous FILE    the keyring version in force (verify)\n"
		"  --json             machine-readable output for list\n"
		"  --store DIR        also record changes (and refusals) in the store's audit\n"
		"                     log (env AF_STORE)\n"
		"  -h, --help         this help\n"
		"TIME is RFC 3339 UTC (2026-11-21T10:00:00Z), a date (2026-11-21), 'now', or\n"
		"relative to now (+24h, +7d, -30m).\n\n"
		"exit codes: 0 done, 1 refused (already trusted, revoked, unknown key id,\n"
		"            unacceptable key, root threshold not met, keyring not signed,\n"
		"            expired or not a valid successor), 2 usage error or I/O error\n");
}

#define MAX_ROOT_KEYS ART_KEYRING_MAX_SIGNATURES
#define DEFAULT_EXPIRY_DAYS 365

typedef struct trust_args {
	const char *keyring, *role, *not_before, *not_after, *reason, *store, *expires;
	const char *previous;
	const char *root_keys[MAX_ROOT_KEYS];
	size_t nroot;
	unsigned long threshold;
	int json, has_threshold;
} trust_args;

static int parse_args(trust_args *a, int argc, char **argv, const char *sub, int *done)
{
	static const struct option opts[] = {
		{"keyring", required_argument, NULL, 'k'}, {"role", required_argument, NULL, 'r'},
		{"not-before", required_argument, NULL, 'b'}, {"not-after", required_argument, NULL, 'a'},
		{"reason", required_argument, NULL, 'R'}, {"json", no_argument, NULL, 'j'},
		{"store", required_argument, NULL, 's'}, {"root-key", required_argument, NULL, 'K'},
		{"expires", required_argument, NULL, 'e'}, {"threshold", required_argument, NULL, 'T'},
		{"previous", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	bool signs = strcmp(sub, "list") != 0 && strcmp(sub, "verify") != 0;
	const char *env_root;
	char *end;
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
		case 'e': a->expires = optarg; break;
		case 'p': a->previous = optarg; break;
		case 'K':
			if (a->nroot == MAX_ROOT_KEYS)
				return cli_usage_error(CMD, "%s: at most %u --root-key", sub,
						       MAX_ROOT_KEYS);
			a->root_keys[a->nroot++] = optarg;
			break;
		case 'T':
			errno = 0;
			a->threshold = strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] < '1' || optarg[0] > '9' ||
			    a->threshold > MAX_ROOT_KEYS)
				return cli_usage_error(CMD, "%s: --threshold must be 1 to %u, not '%s'",
						       sub, MAX_ROOT_KEYS, optarg);
			a->has_threshold = 1;
			break;
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
	if (strcmp(sub, "verify") != 0 && a->previous)
		return cli_usage_error(CMD, "%s: --previous belongs to 'trust verify'", sub);
	if (!signs && (a->nroot || a->expires))
		return cli_usage_error(CMD, "%s: --root-key and --expires belong to the commands "
				       "that sign a new keyring version", sub);
	if (strcmp(sub, "init") != 0 && strcmp(sub, "threshold") != 0 && a->has_threshold)
		return cli_usage_error(CMD, "%s: --threshold belongs to 'trust init' and 'trust "
				       "threshold'", sub);
	if (signs && !a->nroot && (env_root = cli_flag_or_env(NULL, "AF_ROOT_KEY")))
		a->root_keys[a->nroot++] = env_root;
	if (signs && !a->nroot)
		return cli_usage_error(CMD, "%s: --root-key KEY (or AF_ROOT_KEY) is required: every "
				       "change to a keyring is signed by its root key(s)", sub);
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
	case AF_ESIGNATURE:
	case AF_EEXPIRED:
	case AF_EVERSION:
	case AF_EDENIED:
		return CLI_FINDINGS;
	default:
		return CLI_USAGE;
	}
}

/*
 * One signed change of a keyring: the version on disk (cur, NULL when the
 * file is new), the next version being built, the root private keys.
 */
typedef struct change {
	trust_args *a;
	const char *sub;
	art_keyring *cur, *next;
	art_key *roots[MAX_ROOT_KEYS];
	size_t nroot;
	int lock;
} change;

static void change_end(change *c)
{
	size_t i;

	if (c->lock >= 0)
		close(c->lock);
	art_keyring_free(c->cur);
	art_keyring_free(c->next);
	for (i = 0; i < c->nroot; i++)
		art_key_free(c->roots[i]);
}

/*
 * Lock, load the keyring twice (the version in force and the copy to edit)
 * and the root keys. allow_missing: a missing file starts an empty keyring
 * (cur stays NULL); allow_unsigned: an unsigned v1 file is taken (init).
 */
static int change_begin(change *c, trust_args *a, const char *sub, bool allow_missing,
			bool allow_unsigned)
{
	size_t i;
	int rc;

	memset(c, 0, sizeof(*c));
	c->a = a;
	c->sub = sub;
	c->lock = -1;
	for (i = 0; i < a->nroot; i++) {
		if ((rc = art_key_load_private(&c->roots[i], a->root_keys[i])) < 0)
			return cli_fail(rc == AF_EINVAL ? CLI_FINDINGS : CLI_USAGE, CMD, "%s: %s",
					sub, art_error_last());
		c->nroot = i + 1;
	}
	if ((c->lock = lock_keyring_dir(a->keyring)) < 0)
		return CLI_USAGE;
	rc = art_keyring_load_unchecked(&c->cur, a->keyring);
	if (rc == AF_ENOTFOUND && allow_missing)
		return art_keyring_new(&c->next) < 0 ? cli_fail(CLI_USAGE, CMD, "out of memory")
						      : CLI_OK;
	if (rc < 0)
		return cli_fail(rc == AF_ENOTFOUND ? CLI_USAGE : exit_code_for(rc), CMD, "%s",
				art_error_last());
	if (!art_keyring_is_signed(c->cur) && !allow_unsigned)
		return cli_fail(CLI_FINDINGS, CMD,
				"%s: the keyring is not signed and cannot be changed as it is: sign it "
				"first with agentfactory trust init --keyring %s --root-key ROOT.key",
				a->keyring, a->keyring);
	if ((rc = art_keyring_load_unchecked(&c->next, a->keyring)) < 0)
		return cli_fail(exit_code_for(rc), CMD, "%s", art_error_last());
	if (!art_keyring_is_signed(c->cur)) { /* migrating v1: nothing in force */
		art_keyring_free(c->cur);
		c->cur = NULL;
	}
	return CLI_OK;
}

/* Add every root key given that the keyring does not have yet as a root. */
static int add_given_roots(change *c)
{
	const art_key *found;
	size_t i;
	int rc;

	for (i = 0; i < c->nroot; i++) {
		rc = art_keyring_lookup(&found, c->next, art_key_id(c->roots[i]), ART_ROLE_ROOT,
					art_time_now());
		if (rc == 0 || rc == AF_EEXPIRED)
			continue;
		if ((rc = art_keyring_add(c->next, c->roots[i], ART_ROLE_ROOT, 0, 0)) < 0)
			return cli_fail(exit_code_for(rc), CMD, "%s: root key %s: %s", c->a->keyring,
					art_key_id(c->roots[i]), art_error_last());
	}
	return CLI_OK;
}

/* Sign c->next as the version after c->cur, check it would be trusted, save. */
static int change_commit(change *c)
{
	const art_key *keys[MAX_ROOT_KEYS];
	time_t now = art_time_now(), expires = now + (time_t)DEFAULT_EXPIRY_DAYS * 86400;
	uint64_t version = c->cur ? art_keyring_version(c->cur) + 1 : 1;
	size_t i;
	int rc;

	if (c->a->expires && art_time_parse(&expires, c->a->expires) < 0)
		return cli_usage_error(CMD, "%s: --expires: %s", c->sub, art_error_last());
	if (expires <= now)
		return cli_usage_error(CMD, "%s: --expires must be in the future", c->sub);
	for (i = 0; i < c->nroot; i++)
		keys[i] = c->roots[i];
	if ((rc = art_keyring_sign(c->next, version, expires, keys, c->nroot)) < 0)
		return cli_fail(CLI_USAGE, CMD, "%s: %s", c->a->keyring, art_error_last());
	rc = c->cur ? art_keyring_check_successor(c->cur, c->next, c->a->keyring, now)
		    : art_keyring_check(c->next, c->a->keyring, now);
	if (rc < 0)
		return cli_fail(exit_code_for(rc), CMD, "%s: not written: %s", c->a->keyring,
				art_error_last());
	if (art_keyring_save(c->next, c->a->keyring) < 0)
		return cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
	return CLI_OK;
}

/* The root key ids that signed, for the audit log's actor. */
static void roots_actor(char *out, size_t size, const change *c)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < c->nroot && len + ART_SHA256_HEX_LEN + 2 < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "," : "",
					art_key_id(c->roots[i]));
}

/* The change's audit entry, signed by the root keys, then a checkpoint. */
static int change_audit(change *c, const char *action, const char *actor, const char *subject,
			json_t *details)
{
	const art_key *signers[MAX_ROOT_KEYS];
	size_t i;
	int rc;

	for (i = 0; i < c->nroot; i++)
		signers[i] = c->roots[i];
	if ((rc = cli_audit_signed(CMD, c->a->store, action, actor, subject, 0, details, signers,
				   c->nroot)) != 0)
		return rc;
	return cli_checkpoint(CMD, c->a->store, c->roots[0]);
}

static int trust_init(int argc, char **argv)
{
	trust_args a;
	change c;
	char actor[MAX_ROOT_KEYS * (ART_SHA256_HEX_LEN + 1) + 1];
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, "init", &done)) != CLI_OK || done)
		return rc;
	if (optind != argc)
		return cli_usage_error(CMD, "init: unexpected argument '%s'", argv[optind]);
	if ((rc = change_begin(&c, &a, "init", true, true)) != CLI_OK)
		goto cleanup;
	if (c.cur) {
		rc = cli_fail(CLI_FINDINGS, CMD, "init: %s is already a signed keyring (version "
			      "%llu): change it with trust add/revoke/threshold", a.keyring,
			      (unsigned long long)art_keyring_version(c.cur));
		goto cleanup;
	}
	if ((rc = add_given_roots(&c)) != CLI_OK)
		goto cleanup;
	if (art_keyring_set_root_threshold(c.next, a.has_threshold ? (unsigned)a.threshold
								   : 1) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "init: %s", art_error_last());
		goto cleanup;
	}
	if ((rc = change_commit(&c)) != CLI_OK)
		goto cleanup;
	roots_actor(actor, sizeof(actor), &c);
	if ((rc = change_audit(&c, "trust.init", actor, a.keyring,
			       json_pack("{s:s, s:I}", "keyring", a.keyring, "version", (json_int_t)1))) != 0)
		goto cleanup;
	fprintf(stderr, "signed %s as keyring version 1 (%zu root key(s), threshold %u)\n",
		a.keyring, c.nroot, art_keyring_root_threshold(c.next));
	rc = CLI_OK;
cleanup:
	change_end(&c);
	return rc;
}

static int trust_add(int argc, char **argv)
{
	trust_args a;
	change c;
	art_key *key = NULL;
	time_t not_before, not_after = 0;
	char nb[21], na[21], actor[MAX_ROOT_KEYS * (ART_SHA256_HEX_LEN + 1) + 1];
	int done, rc;

	memset(&c, 0, sizeof(c));
	c.lock = -1;
	if ((rc = parse_args(&a, argc, argv, "add", &done)) != CLI_OK || done)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(CMD, "add: expected exactly one PUBKEY file");
	if (!a.role)
		return cli_usage_error(CMD, "add: --role ROLE is required (template-signer, builder, release-manager or root)");
	if (!art_keyring_role_valid(a.role))
		return cli_usage_error(CMD, "add: unknown role '%s': use template-signer, builder, release-manager or root", a.role);
	if (art_time_parse(&not_before, a.not_before ? a.not_before : "now") < 0 ||
	    (a.not_after && art_time_parse(&not_after, a.not_after) < 0))
		return cli_usage_error(CMD, "add: %s", art_error_last());
	if (a.not_after && not_after <= not_before)
		return cli_usage_error(CMD, "add: --not-after must be later than --not-before");

	rc = art_key_load_public(&key, argv[optind]);
	if (rc < 0)
		return cli_fail(rc == AF_EINVAL ? CLI_FINDINGS : CLI_USAGE, CMD, "%s",
				art_error_last());
	if ((rc = change_begin(&c, &a, "add", true, false)) != CLI_OK)
		goto cleanup;
	/* A new keyring trusts the root keys that sign it. */
	if (!c.cur && (rc = add_given_roots(&c)) != CLI_OK)
		goto cleanup;
	rc = art_keyring_add(c.next, key, a.role, not_before, not_after);
	if (rc == AF_EEXISTS && !c.cur && strcmp(a.role, ART_ROLE_ROOT) == 0)
		rc = 0; /* it was one of the signing roots */
	if (rc < 0) {
		rc = cli_fail(rc == AF_EINVAL ? CLI_USAGE : exit_code_for(rc), CMD, "%s: %s",
			      a.keyring, art_error_last());
		cli_audit(CMD, a.store, "trust.add", NULL, art_key_id(key), 1,
			  json_pack("{s:s, s:s, s:s}", "keyring", a.keyring, "role", a.role,
				    "reason", art_error_last()));
		goto cleanup;
	}
	if ((rc = change_commit(&c)) != CLI_OK) {
		cli_audit(CMD, a.store, "trust.add", NULL, art_key_id(key), 1,
			  json_pack("{s:s, s:s, s:s}", "keyring", a.keyring, "role", a.role,
				    "reason", art_error_last()));
		goto cleanup;
	}
	roots_actor(actor, sizeof(actor), &c);
	if ((rc = change_audit(&c, "trust.add", actor, art_key_id(key),
			    json_pack("{s:s, s:s, s:I, s:I, s:I}", "keyring", a.keyring, "role",
				      a.role, "not_before", (json_int_t)not_before,
				      "not_after", (json_int_t)not_after, "version",
				      (json_int_t)art_keyring_version(c.next)))) != 0)
		goto cleanup;
	printf("%s\n", art_key_id(key));
	art_time_format(nb, not_before);
	if (not_after)
		art_time_format(na, not_after);
	fprintf(stderr, "trusted key %s as %s in %s (version %llu), valid from %s%s%s\n",
		art_key_id(key), a.role, a.keyring,
		(unsigned long long)art_keyring_version(c.next), nb,
		not_after ? " until " : " with no expiry", not_after ? na : "");
	rc = CLI_OK;
cleanup:
	change_end(&c);
	art_key_free(key);
	return rc;
}

static int trust_revoke(int argc, char **argv)
{
	trust_args a;
	change c;
	char actor[MAX_ROOT_KEYS * (ART_SHA256_HEX_LEN + 1) + 1];
	int done, rc;
	const char *keyid;

	if ((rc = parse_args(&a, argc, argv, "revoke", &done)) != CLI_OK || done)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(CMD, "revoke: expected exactly one KEYID (see agentfactory trust list)");
	keyid = argv[optind];
	if ((rc = change_begin(&c, &a, "revoke", false, false)) != CLI_OK)
		goto cleanup;
	rc = art_keyring_revoke(c.next, keyid, art_time_now(), a.reason);
	if (rc < 0) {
		rc = cli_fail(rc == AF_EINVAL ? CLI_USAGE : exit_code_for(rc), CMD, "%s: %s",
			      a.keyring, art_error_last());
		cli_audit(CMD, a.store, "trust.revoke", NULL, keyid, 1,
			  json_pack("{s:s, s:s}", "keyring", a.keyring, "reason", art_error_last()));
		goto cleanup;
	}
	if ((rc = change_commit(&c)) != CLI_OK) {
		cli_audit(CMD, a.store, "trust.revoke", NULL, keyid, 1,
			  json_pack("{s:s, s:s}", "keyring", a.keyring, "reason", art_error_last()));
		goto cleanup;
	}
	roots_actor(actor, sizeof(actor), &c);
	if ((rc = change_audit(&c, "trust.revoke", actor, keyid,
			    json_pack("{s:s, s:s?, s:I}", "keyring", a.keyring, "reason", a.reason,
				      "version", (json_int_t)art_keyring_version(c.next)))) != 0)
		goto cleanup;
	printf("revoked %s\n", keyid);
	rc = CLI_OK;
cleanup:
	change_end(&c);
	return rc;
}

/* threshold and renew: a new version with the same keys. */
static int trust_reversion(int argc, char **argv, const char *sub)
{
	trust_args a;
	change c;
	char actor[MAX_ROOT_KEYS * (ART_SHA256_HEX_LEN + 1) + 1];
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, sub, &done)) != CLI_OK || done)
		return rc;
	if (optind != argc)
		return cli_usage_error(CMD, "%s: unexpected argument '%s'", sub, argv[optind]);
	if (strcmp(sub, "threshold") == 0 && !a.has_threshold)
		return cli_usage_error(CMD, "threshold: --threshold K is required");
	if ((rc = change_begin(&c, &a, sub, false, false)) != CLI_OK)
		goto cleanup;
	if (a.has_threshold && art_keyring_set_root_threshold(c.next, (unsigned)a.threshold) < 0) {
		rc = cli_fail(CLI_USAGE, CMD, "%s: %s", sub, art_error_last());
		goto cleanup;
	}
	if ((rc = change_commit(&c)) != CLI_OK)
		goto cleanup;
	roots_actor(actor, sizeof(actor), &c);
	if ((rc = change_audit(&c, strcmp(sub, "renew") == 0 ? "trust.renew" : "trust.threshold",
			       actor, a.keyring,
			    json_pack("{s:s, s:I, s:I}", "keyring", a.keyring, "version",
				      (json_int_t)art_keyring_version(c.next), "root_threshold",
				      (json_int_t)art_keyring_root_threshold(c.next)))) != 0)
		goto cleanup;
	fprintf(stderr, "%s is now keyring version %llu (root threshold %u)\n", a.keyring,
		(unsigned long long)art_keyring_version(c.next), art_keyring_root_threshold(c.next));
	rc = CLI_OK;
cleanup:
	change_end(&c);
	return rc;
}

static int trust_verify(int argc, char **argv)
{
	trust_args a;
	art_keyring *kr = NULL, *prev = NULL;
	char when[21];
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, "verify", &done)) != CLI_OK || done)
		return rc;
	if (optind != argc)
		return cli_usage_error(CMD, "verify: unexpected argument '%s'", argv[optind]);
	if ((rc = art_keyring_load_unchecked(&kr, a.keyring)) < 0 ||
	    (a.previous && (rc = art_keyring_load_unchecked(&prev, a.previous)) < 0)) {
		/* a missing file is an unreadable input (2), not an unknown key id (1) */
		rc = cli_fail(rc == AF_ENOTFOUND ? CLI_USAGE : exit_code_for(rc), CMD, "%s",
			      art_error_last());
		goto cleanup;
	}
	rc = prev ? art_keyring_check_successor(prev, kr, a.keyring, art_time_now())
		  : art_keyring_check(kr, a.keyring, art_time_now());
	if (rc < 0) {
		rc = cli_fail(exit_code_for(rc), CMD, "%s", art_error_last());
		goto cleanup;
	}
	art_time_format(when, art_keyring_expires(kr));
	printf("ok %s version %llu, root threshold %u, expires %s\n", a.keyring,
	       (unsigned long long)art_keyring_version(kr), art_keyring_root_threshold(kr), when);
	rc = CLI_OK;
cleanup:
	art_keyring_free(kr);
	art_keyring_free(prev);
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
	if (art_keyring_load_unchecked(&kr, a.keyring) < 0)
		return cli_fail(CLI_USAGE, CMD, "%s", art_error_last());
	rc = a.json ? list_json(kr, a.keyring, art_time_now())
		    : list_text(kr, a.keyring, art_time_now());
	art_keyring_free(kr);
	return rc;
}

int cmd_trust(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(CMD, "a subcommand is required: init, add, revoke, threshold, "
				       "renew, verify or list");
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
	if (strcmp(argv[1], "init") == 0)
		return trust_init(argc - 1, argv + 1);
	if (strcmp(argv[1], "threshold") == 0 || strcmp(argv[1], "renew") == 0)
		return trust_reversion(argc - 1, argv + 1, argv[1]);
	if (strcmp(argv[1], "verify") == 0)
		return trust_verify(argc - 1, argv + 1);
	return cli_usage_error(CMD, "unknown subcommand '%s': use init, add, revoke, threshold, "
			       "renew, verify or list", argv[1]);
}
