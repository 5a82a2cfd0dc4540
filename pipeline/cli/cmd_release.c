/*
 * cmd_release.c - `agentfactory release | promote | rollback | channel |
 * status | audit`: signed releases, blue/green channels and the audit log
 * of a store (docs/releases.md).
 *
 * These commands use only the artifacts library (art/release.h,
 * art/audit.h): the rules (numbers only grow, thresholds, expiry, key
 * validity) are enforced there, inside the store's write transaction, so a
 * refusal changes nothing but its audit entry whichever tool asked. Here we
 * only parse options, load keys and print. Exit codes: 0 done, 1 refused or
 * a finding, 2 usage or I/O error.
 */
#include "cmd_release.h"

#include "cli.h"

#include "art/audit.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/release.h"
#include "art/store.h"
#include "art/util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 16

/* ---- shared option handling ---------------------------------------------- */

typedef struct rel_args {
	const char *store, *keyring, *channel, *expires, *out, *checkpoint;
	const char *key_paths[MAX_KEYS];
	size_t n_keys;
	uint64_t release, to, from, threshold;
	bool json, all, has_release, has_to, has_from, has_threshold;
} rel_args;

enum {
	OPT_STORE = 1 << 0, OPT_KEYRING = 1 << 1, OPT_KEY = 1 << 2, OPT_CHANNEL = 1 << 3,
	OPT_RELEASE = 1 << 4, OPT_TO = 1 << 5, OPT_EXPIRES = 1 << 6, OPT_JSON = 1 << 7,
	OPT_ALL = 1 << 8, OPT_FROM = 1 << 9, OPT_THRESHOLD = 1 << 10, OPT_OUT = 1 << 11,
	OPT_CHECKPOINT = 1 << 12
};

typedef void (*usage_fn)(FILE *out);

static int parse_number(uint64_t *out, const char *cmd, const char *opt, const char *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	if (!v || !isdigit((unsigned char)v[0]))
		return cli_usage_error(cmd, "%s needs a positive number, not '%s'", opt, v ? v : "");
	n = strtoull(v, &end, 10);
	if (errno || *end || n == 0)
		return cli_usage_error(cmd, "%s needs a positive number, not '%s'", opt, v);
	*out = n;
	return CLI_OK;
}

/*
 * Parse the options a command accepts (mask of OPT_*). CLI_OK with *done
 * set after --help; CLI_USAGE on a bad option. Fills --store from AF_STORE
 * and --keyring from AF_KEYRING.
 */
static int parse_args(rel_args *a, int argc, char **argv, const char *cmd, unsigned accepted,
		      usage_fn usage, int *done)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'}, {"keyring", required_argument, NULL, 'k'},
		{"key", required_argument, NULL, 'K'}, {"channel", required_argument, NULL, 'c'},
		{"release", required_argument, NULL, 'r'}, {"to", required_argument, NULL, 't'},
		{"expires", required_argument, NULL, 'e'}, {"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'}, {"from", required_argument, NULL, 'f'},
		{"threshold", required_argument, NULL, 'T'}, {"out", required_argument, NULL, 'o'},
		{"checkpoint", required_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	static const struct {
		int c;
		unsigned bit;
	} bits[] = {{'s', OPT_STORE}, {'k', OPT_KEYRING}, {'K', OPT_KEY}, {'c', OPT_CHANNEL},
		    {'r', OPT_RELEASE}, {'t', OPT_TO}, {'e', OPT_EXPIRES}, {'j', OPT_JSON},
		    {'a', OPT_ALL}, {'f', OPT_FROM}, {'T', OPT_THRESHOLD}, {'o', OPT_OUT},
		    {'C', OPT_CHECKPOINT}};
	size_t i;
	int c, rc, idx = 0;

	memset(a, 0, sizeof(*a));
	*done = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		unsigned bit = 0;

		if (c == 'h') {
			usage(stdout);
			*done = 1;
			return CLI_OK;
		}
		for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
			if (bits[i].c == c)
				bit = bits[i].bit;
		if (!bit)
			return cli_usage_error(cmd, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		if (!(accepted & bit)) /* (argv[optind - 1] may be its value) */
			return cli_usage_error(cmd, "option '--%s' does not apply here",
					       opts[idx].name);
		switch (c) {
		case 's': a->store = optarg; break;
		case 'k': a->keyring = optarg; break;
		case 'K':
			if (a->n_keys == MAX_KEYS)
				return cli_usage_error(cmd, "at most %d --key options", MAX_KEYS);
			a->key_paths[a->n_keys++] = optarg;
			break;
		case 'c': a->channel = optarg; break;
		case 'e': a->expires = optarg; break;
		case 'o': a->out = optarg; break;
		case 'C': a->checkpoint = optarg; break;
		case 'j': a->json = true; break;
		case 'a': a->all = true; break;
		case 'r':
			if ((rc = parse_number(&a->release, cmd, "--release", optarg)) != CLI_OK)
				return rc;
			a->has_release = true;
			break;
		case 't':
			if ((rc = parse_number(&a->to, cmd, "--to", optarg)) != CLI_OK)
				return rc;
			a->has_to = true;
			break;
		case 'f':
			if ((rc = parse_number(&a->from, cmd, "--from", optarg)) != CLI_OK)
				return rc;
			a->has_from = true;
			break;
		default: /* 'T' */
			if ((rc = parse_number(&a->threshold, cmd, "--threshold", optarg)) != CLI_OK)
				return rc;
			a->has_threshold = true;
			break;
		}
	}
	a->store = cli_flag_or_env(a->store, "AF_STORE");
	if ((accepted & OPT_STORE) && !a->store)
		return cli_usage_error(cmd, "--store DIR (or AF_STORE) is required");
	if (accepted & OPT_KEYRING)
		a->keyring = cli_flag_or_env(a->keyring, "AF_KEYRING");
	return CLI_OK;
}

/* Refusals and findings exit 1; caller mistakes and machinery failures 2. */
static int exit_for(int rc)
{
	switch (rc) {
	case AF_EINVAL:
	case AF_EIO:
	case AF_ENOMEM:
	case AF_ECRYPTO:
	case AF_EINTERNAL:
		return CLI_USAGE;
	default:
		return CLI_FINDINGS;
	}
}

static int open_store(art_store **s, const char *cmd, const char *dir, unsigned flags)
{
	int rc = art_store_open(s, dir, flags);

	if (rc < 0)
		return cli_fail(CLI_EXIT_FOR_STORE(rc, CLI_USAGE), cmd, "%s", art_error_last());
	return CLI_OK;
}

static int need_keyring(art_keyring **kr, const char *cmd, const char *path)
{
	if (!path)
		return cli_usage_error(cmd, "--keyring FILE (or AF_KEYRING) is required: it says "
				       "which release-manager keys are trusted");
	if (art_keyring_load(kr, path) < 0)
		return cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
	return CLI_OK;
}

static int load_keys(art_key **keys, const char *cmd, const rel_args *a)
{
	size_t i;

	if (a->n_keys == 0)
		return cli_usage_error(cmd, "--key KEY is required (a release-manager private key; "
				       "repeat --key to sign with several)");
	for (i = 0; i < a->n_keys; i++)
		if (art_key_load_private(&keys[i], a->key_paths[i]) < 0)
			return cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
	return CLI_OK;
}

static void free_keys(art_key **keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		art_key_free(keys[i]);
}

static int print_json(json_t *root)
{
	char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	json_decref(root);
	if (!text)
		return cli_fail(CLI_USAGE, "json", "out of memory");
	printf("%s\n", text);
	free(text);
	return CLI_OK;
}

static json_t *time_json(time_t t)
{
	char s[21];

	art_time_format(s, t);
	return json_string(s);
}

static json_t *release_json(const art_release *r)
{
	json_t *o = json_object(), *arts = json_array();
	size_t i;

	json_object_set_new(o, "release", json_integer((json_int_t)r->number));
	json_object_set_new(o, "created", r->created ? time_json(r->created) : json_null());
	json_object_set_new(o, "expires", r->expires ? time_json(r->expires) : json_null());
	json_object_set_new(o, "digest", json_string(r->digest));
	json_object_set_new(o, "signer", json_string(r->signer));
	for (i = 0; i < r->n_pins; i++) {
		json_t *p = json_object();

		json_object_set_new(p, "name", json_string(r->pins[i].name));
		json_object_set_new(p, "version", json_string(r->pins[i].version));
		json_object_set_new(p, "manifest_digest", json_string(r->pins[i].manifest_digest));
		json_array_append_new(arts, p);
	}
	json_object_set_new(o, "artifacts", arts);
	return o;
}

static json_t *channel_json(const art_channel *c)
{
	json_t *o = json_object(), *signers = json_array();
	size_t i;

	json_object_set_new(o, "channel", json_string(c->name));
	json_object_set_new(o, "release", json_integer((json_int_t)c->release));
	json_object_set_new(o, "previous", json_integer((json_int_t)c->previous));
	json_object_set_new(o, "seq", json_integer((json_int_t)c->seq));
	json_object_set_new(o, "action", json_string(c->action));
	json_object_set_new(o, "threshold", json_integer(c->threshold));
	json_object_set_new(o, "required", json_integer(c->required));
	json_object_set_new(o, "time", c->time ? time_json(c->time) : json_null());
	json_object_set_new(o, "release_digest", json_string(c->release_digest));
	for (i = 0; i < c->n_signers; i++)
		json_array_append_new(signers, json_string(c->signers[i]));
	json_object_set_new(o, "signers", signers);
	return o;
}

/* "ab12cd34ef56, 0011aabbccdd" */
static void signers_text(char *out, size_t size, char (*ids)[ART_SHA256_HEX_LEN + 1], size_t n)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < n && len + 16 < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%.12s", i ? ", " : "", ids[i]);
	if (!n)
		snprintf(out, size, "-");
}

/* A DURATION ("7d", "+24h", "90m") or a TIME (RFC 3339, a date). */
static int parse_expires(time_t *out, const char *cmd, const char *v)
{
	char buf[64];
	size_t n = strlen(v), i;
	bool duration = n >= 2 && n < sizeof(buf) - 1 && strchr("smhd", v[n - 1]);

	for (i = 0; duration && i + 1 < n; i++)
		duration = isdigit((unsigned char)v[i]) != 0;
	if (duration) {
		snprintf(buf, sizeof(buf), "+%s", v);
		v = buf;
	}
	if (art_time_parse(out, v) < 0)
		return cli_usage_error(cmd, "--expires takes a duration (7d, 24h, 90m) or a time "
				       "(2026-12-01T00:00:00Z), not '%s'", v);
	return CLI_OK;
}

/* ---- release ------------------------------------------------------------- */

static void release_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory release create --store DIR --keyring FILE --key KEY\n"
		"                                   [--expires DURATION] [--json]\n"
		"                                   NAME[@VERSION]... | --all | --from N\n\n"
		"Creates the next release of the store (numbers grow by one): a signed, expiring\n"
		"set of exact artifact digests. Every artifact must verify against the keyring\n"
		"(builder signature, every part); a name@version already released with another\n"
		"manifest is refused (artifacts are immutable once released). Prints the new\n"
		"release number.\n\n"
		"options:\n"
		"  --store DIR         the store (env AF_STORE)\n"
		"  --keyring FILE      trusted keys (env AF_KEYRING)\n"
		"  --key KEY           a release-manager private key (signs the release)\n"
		"  --expires DURATION  lifetime: 7d, 24h, 90m, or a time (default 7d); the runtime\n"
		"                      refuses an expired release (freeze protection)\n"
		"  --all               the latest version of every agent in the store\n"
		"  --from N            the same artifacts as release N (to renew or re-sign it)\n"
		"  --json              print {\"release\": N, \"created\", \"expires\", \"digest\",\n"
		"                      \"signer\", \"artifacts\": [{name, version, manifest_digest}]}\n"
		"  -h, --help          this help\n"
		"NAME without @VERSION means its latest version.\n\n"
		"exit codes: 0 created, 1 refused (untrusted, revoked or expired key, missing or\n"
		"            unverifiable artifact, same version with different content; the\n"
		"            refusal is audited), 2 usage or I/O error\n");
}

/* The refs of --all (latest of every name) or --from N. Caller frees each. */
static int collect_refs(char ***out, size_t *n_out, const char *cmd, const art_store *s,
			const art_keyring *kr, const rel_args *a)
{
	art_store_entry *list = NULL;
	art_release *from = NULL;
	char **refs = NULL;
	size_t n = 0, count = 0, i;
	int rc;

	(void)kr;
	*out = NULL;
	*n_out = 0;
	if (a->all) {
		if (art_store_list(&list, &n, s) < 0)
			return cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
		refs = calloc(n + 1, sizeof(*refs));
		for (i = 0; refs && i < n; i++)
			if (list[i].latest &&
			    asprintf(&refs[count++], "%s@%s", list[i].name, list[i].version) < 0)
				refs[--count] = NULL;
		art_store_list_free(list, n);
		if (count == 0 && refs) {
			free(refs);
			return cli_fail(CLI_FINDINGS, cmd, "the store has no artifacts to release");
		}
	} else {
		/* The pins only: the new release verifies every artifact again. */
		if ((rc = art_release_get(&from, s, NULL, a->from, art_time_now())) < 0)
			return cli_fail(exit_for(rc), cmd, "%s", art_error_last());
		refs = calloc(from->n_pins + 1, sizeof(*refs));
		for (i = 0; refs && i < from->n_pins; i++)
			if (asprintf(&refs[count++], "%s@%s", from->pins[i].name,
				     from->pins[i].version) < 0)
				refs[--count] = NULL;
		art_release_free(from);
	}
	if (!refs)
		return cli_fail(CLI_USAGE, cmd, "out of memory");
	*out = refs;
	*n_out = count;
	return CLI_OK;
}

static int release_create(int argc, char **argv)
{
	const char *cmd = "release create";
	rel_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_key *key = NULL;
	art_release *r = NULL;
	char **owned = NULL, when[21];
	const char *const *refs;
	size_t n_refs = 0, i;
	time_t now = art_time_now(), expires = now + ART_RELEASE_DEFAULT_TTL;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, cmd, OPT_STORE | OPT_KEYRING | OPT_KEY | OPT_EXPIRES |
				OPT_JSON | OPT_ALL | OPT_FROM, release_usage, &done)) != CLI_OK || done)
		return rc;
	if ((a.all || a.has_from) + (optind < argc) != 1 || (a.all && a.has_from))
		return cli_usage_error(cmd, "give the artifacts: NAME[@VERSION]..., --all, or "
				       "--from N (exactly one of them)");
	if (a.n_keys > 1)
		return cli_usage_error(cmd, "a release is signed by one --key");
	if (a.expires && (rc = parse_expires(&expires, cmd, a.expires)) != CLI_OK)
		return rc;
	if ((rc = need_keyring(&kr, cmd, a.keyring)) != CLI_OK ||
	    (rc = load_keys(&key, cmd, &a)) != CLI_OK ||
	    (rc = open_store(&s, cmd, a.store, 0)) != CLI_OK)
		goto cleanup;
	if (optind < argc) {
		refs = (const char *const *)argv + optind;
		n_refs = (size_t)(argc - optind);
	} else {
		if ((rc = collect_refs(&owned, &n_refs, cmd, s, kr, &a)) != CLI_OK)
			goto cleanup;
		refs = (const char *const *)owned;
	}
	if ((rc = art_release_create(&r, s, kr, key, refs, n_refs, expires, now)) < 0) {
		rc = cli_fail(exit_for(rc), cmd, "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		print_json(release_json(r));
	} else {
		printf("%llu\n", (unsigned long long)r->number);
		art_time_format(when, r->expires);
		fprintf(stderr, "release %llu: %zu artifact%s, expires %s, signed by %s\n",
			(unsigned long long)r->number, r->n_pins, r->n_pins == 1 ? "" : "s", when,
			r->signer);
	}
	rc = cli_checkpoint(cmd, a.store, key);
cleanup:
	for (i = 0; owned && i < n_refs; i++)
		free(owned[i]);
	free(owned);
	art_release_free(r);
	art_key_free(key);
	art_keyring_free(kr);
	art_store_close(s);
	return rc;
}

int cmd_release(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("release", "a subcommand is required: create");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		release_usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "create") == 0)
		return release_create(argc - 1, argv + 1);
	return cli_usage_error("release", "unknown subcommand '%s': use create", argv[1]);
}

/* ---- promote, rollback, channel ------------------------------------------ */

static void promote_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory promote --store DIR --keyring FILE --key KEY [--key KEY...]\n"
		"                            --channel C --release N [--json]\n\n"
		"Points channel C (blue, green, any [a-z][a-z0-9-]*) at release N, signed by\n"
		"release-manager keys. A new channel is created with a threshold of 1. N must be\n"
		"newer than the channel's current release (numbers on a channel only grow; going\n"
		"back is 'agentfactory rollback'), exist, verify and not be expired. The channel's\n"
		"threshold is met by distinct keys: a key given twice counts once.\n\n"
		"options:\n"
		"  --store DIR       the store (env AF_STORE)\n"
		"  --keyring FILE    trusted keys (env AF_KEYRING)\n"
		"  --key KEY         a release-manager private key; repeat for a threshold > 1\n"
		"  --channel C       the channel\n"
		"  --release N       the release number\n"
		"  --json            print the new channel record\n"
		"  -h, --help        this help\n\n"
		"exit codes: 0 promoted, 1 refused (older release, threshold not met, untrusted,\n"
		"            revoked or expired key, unknown or expired release; audited),\n"
		"            2 usage or I/O error\n");
}

static void rollback_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory rollback --store DIR --keyring FILE --key KEY [--key KEY...]\n"
		"                             --channel C [--to N] [--json]\n\n"
		"Points channel C back at an older release: N, or by default the newest release\n"
		"older than the current one that the channel had before. Signed and audited like a\n"
		"promotion, with the channel's threshold; the target must exist, verify and not be\n"
		"expired.\n\n"
		"options:\n"
		"  --store DIR       the store (env AF_STORE)\n"
		"  --keyring FILE    trusted keys (env AF_KEYRING)\n"
		"  --key KEY         a release-manager private key; repeat for a threshold > 1\n"
		"  --channel C       the channel\n"
		"  --to N            the release to go back to (lower than the current one)\n"
		"  --json            print the new channel record\n"
		"  -h, --help        this help\n\n"
		"exit codes: 0 rolled back, 1 refused (nothing older, --to not older, threshold\n"
		"            not met, untrusted, revoked or expired key, expired target; audited),\n"
		"            2 usage or I/O error\n");
}

static void channel_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory channel set-threshold --store DIR --keyring FILE --key KEY...\n"
		"                                          --channel C --threshold K [--json]\n"
		"       agentfactory channel history --store DIR --channel C [--json]\n\n"
		"  set-threshold  from now on, changes of channel C need K distinct\n"
		"                 release-manager signatures (1..16). The change itself needs the\n"
		"                 current threshold (1 for a new channel, which is created with no\n"
		"                 release). Refused when the keyring has fewer than K valid\n"
		"                 release-manager keys.\n"
		"  history        every record of channel C, oldest first, as stored (not verified)\n\n"
		"options:\n"
		"  --store DIR       the store (env AF_STORE)\n"
		"  --keyring FILE    trusted keys (env AF_KEYRING)\n"
		"  --key KEY         a release-manager private key; repeat to meet the threshold\n"
		"  --channel C       the channel\n"
		"  --threshold K     distinct signatures later changes need\n"
		"  --json            machine-readable output\n"
		"  -h, --help        this help\n\n"
		"exit codes: 0 done, 1 refused (audited) or no such channel, 2 usage or I/O error\n");
}

typedef enum chan_op { OP_PROMOTE, OP_ROLLBACK, OP_THRESHOLD } chan_op;

static int channel_change(int argc, char **argv, chan_op op, const char *cmd)
{
	rel_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_key *keys[MAX_KEYS] = {NULL};
	art_channel *c = NULL;
	char signers[256];
	unsigned accepted = OPT_STORE | OPT_KEYRING | OPT_KEY | OPT_CHANNEL | OPT_JSON;
	int done, rc;

	accepted |= op == OP_PROMOTE ? OPT_RELEASE : op == OP_ROLLBACK ? OPT_TO : OPT_THRESHOLD;
	if ((rc = parse_args(&a, argc, argv, cmd, accepted,
			     op == OP_PROMOTE ? promote_usage
			     : op == OP_ROLLBACK ? rollback_usage : channel_usage, &done)) != CLI_OK ||
	    done)
		return rc;
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!a.channel)
		return cli_usage_error(cmd, "--channel C is required");
	if (op == OP_PROMOTE && !a.has_release)
		return cli_usage_error(cmd, "--release N is required");
	if (op == OP_THRESHOLD && !a.has_threshold)
		return cli_usage_error(cmd, "--threshold K is required");
	if (op == OP_THRESHOLD && a.threshold > ART_CHANNEL_MAX_THRESHOLD)
		return cli_usage_error(cmd, "--threshold is 1 to %u", ART_CHANNEL_MAX_THRESHOLD);
	if (!art_channel_name_valid(a.channel))
		return cli_usage_error(cmd, "invalid channel name '%s' (use [a-z][a-z0-9-]*, at most "
				       "%u characters)", a.channel, ART_CHANNEL_NAME_MAX);
	if ((rc = need_keyring(&kr, cmd, a.keyring)) != CLI_OK ||
	    (rc = load_keys(keys, cmd, &a)) != CLI_OK ||
	    (rc = open_store(&s, cmd, a.store, 0)) != CLI_OK)
		goto cleanup;
	if (op == OP_PROMOTE)
		rc = art_release_promote(&c, s, kr, (const art_key *const *)keys, a.n_keys, a.channel,
					 a.release, art_time_now());
	else if (op == OP_ROLLBACK)
		rc = art_release_rollback(&c, s, kr, (const art_key *const *)keys, a.n_keys,
					  a.channel, a.has_to ? a.to : 0, art_time_now());
	else
		rc = art_release_set_threshold(&c, s, kr, (const art_key *const *)keys, a.n_keys,
					       a.channel, (unsigned)a.threshold, art_time_now());
	if (rc < 0) {
		rc = cli_fail(exit_for(rc), cmd, "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		print_json(channel_json(c));
	} else {
		signers_text(signers, sizeof(signers), c->signers, c->n_signers);
		if (op == OP_THRESHOLD)
			printf("%s: threshold %u (record %llu, release %llu), signed by %s\n", c->name,
			       c->threshold, (unsigned long long)c->seq,
			       (unsigned long long)c->release, signers);
		else
			printf("%s: release %llu (was %llu; record %llu, %s), signed by %s\n", c->name,
			       (unsigned long long)c->release, (unsigned long long)c->previous,
			       (unsigned long long)c->seq, c->action, signers);
	}
	rc = cli_checkpoint(cmd, a.store, keys[0]);
cleanup:
	free_keys(keys, a.n_keys);
	art_channel_free(c);
	art_keyring_free(kr);
	art_store_close(s);
	return rc;
}

int cmd_promote(int argc, char **argv)
{
	return channel_change(argc, argv, OP_PROMOTE, "promote");
}

int cmd_rollback(int argc, char **argv)
{
	return channel_change(argc, argv, OP_ROLLBACK, "rollback");
}

static int channel_history(int argc, char **argv)
{
	const char *cmd = "channel history";
	rel_args a;
	art_store *s = NULL;
	art_channel **hist = NULL;
	size_t n = 0, i;
	char when[21], signers[256];
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, cmd, OPT_STORE | OPT_CHANNEL | OPT_JSON, channel_usage,
			     &done)) != CLI_OK || done)
		return rc;
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!a.channel)
		return cli_usage_error(cmd, "--channel C is required");
	if ((rc = open_store(&s, cmd, a.store, ART_STORE_RDONLY)) != CLI_OK)
		return rc;
	if ((rc = art_channel_history(&hist, &n, s, a.channel)) < 0) {
		rc = cli_fail(exit_for(rc), cmd, "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		json_t *arr = json_array();

		for (i = 0; i < n; i++)
			json_array_append_new(arr, channel_json(hist[i]));
		print_json(arr);
	} else {
		printf("%-5s  %-13s  %-7s  %-8s  %-9s  %-20s  %s\n", "SEQ", "ACTION", "RELEASE",
		       "PREVIOUS", "THRESHOLD", "TIME", "SIGNED BY (claimed)");
		for (i = 0; i < n; i++) {
			art_time_format(when, hist[i]->time);
			signers_text(signers, sizeof(signers), hist[i]->signers, hist[i]->n_signers);
			printf("%-5llu  %-13s  %-7llu  %-8llu  %-9u  %-20s  %s\n",
			       (unsigned long long)hist[i]->seq, hist[i]->action,
			       (unsigned long long)hist[i]->release,
			       (unsigned long long)hist[i]->previous, hist[i]->threshold, when,
			       signers);
		}
	}
	rc = CLI_OK;
cleanup:
	art_channel_list_free(hist, n);
	art_store_close(s);
	return rc;
}

int cmd_channel(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("channel", "a subcommand is required: set-threshold or history");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		channel_usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "set-threshold") == 0)
		return channel_change(argc - 1, argv + 1, OP_THRESHOLD, "channel set-threshold");
	if (strcmp(argv[1], "history") == 0)
		return channel_history(argc - 1, argv + 1);
	return cli_usage_error("channel", "unknown subcommand '%s': use set-threshold or history",
			       argv[1]);
}

/* ---- status -------------------------------------------------------------- */

static void status_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory status --store DIR [--keyring FILE] [--json]\n\n"
		"Shows every channel (its release, record, threshold and signers) and every\n"
		"release (created, expires, signer, artifacts). With a keyring, each is verified\n"
		"as the runtime would at the current time (AF_NOW moves it): 'ok', or why the\n"
		"runtime would refuse it (expired, revoked key, threshold not met, tampered).\n"
		"Without one, the signers shown are the claimed ones.\n\n"
		"options:\n"
		"  --store DIR       the store (env AF_STORE)\n"
		"  --keyring FILE    verify against these keys (env AF_KEYRING)\n"
		"  --json            {\"store\", \"now\", \"verified\", \"channels\": [{channel, release,\n"
		"                    previous, seq, action, threshold, required, time, signers,\n"
		"                    status, error}], \"releases\": [{release, created, expires,\n"
		"                    digest, signer, artifacts, status, error}]}\n"
		"  -h, --help        this help\n\n"
		"exit codes: 0 shown (whatever the verification says), 2 usage or I/O error\n");
}

/* One word for what the runtime would do with it; the error says why. */
static const char *status_word(bool have_keyring, bool verified, int rc, bool no_release)
{
	if (no_release)
		return "no-release";
	if (!have_keyring)
		return "unverified";
	if (verified)
		return "ok";
	switch (rc) {
	case AF_EEXPIRED: return "expired";
	case AF_EREVOKED: return "revoked";
	default: return "refused";
	}
}

int cmd_status(int argc, char **argv)
{
	rel_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_release **rels = NULL;
	art_channel **chans = NULL;
	size_t n_rels = 0, n_chans = 0, i;
	time_t now = art_time_now();
	char when[21], exp[21], signers[256];
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, "status", OPT_STORE | OPT_KEYRING | OPT_JSON, status_usage,
			     &done)) != CLI_OK || done)
		return rc;
	if (optind < argc)
		return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
	if (a.keyring && art_keyring_load(&kr, a.keyring) < 0)
		return cli_fail(CLI_USAGE, "status", "%s", art_error_last());
	if ((rc = open_store(&s, "status", a.store, ART_STORE_RDONLY)) != CLI_OK)
		goto cleanup;
	if (art_channel_list(&chans, &n_chans, s, kr, now) < 0 ||
	    art_release_list(&rels, &n_rels, s, kr, now) < 0) {
		rc = cli_fail(CLI_USAGE, "status", "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		json_t *root = json_object(), *carr = json_array(), *rarr = json_array(), *o;

		json_object_set_new(root, "store", json_string(a.store));
		json_object_set_new(root, "now", time_json(now));
		json_object_set_new(root, "verified", json_boolean(kr != NULL));
		for (i = 0; i < n_chans; i++) {
			o = channel_json(chans[i]);
			json_object_set_new(o, "status", json_string(status_word(kr, chans[i]->verified,
									 chans[i]->verify_rc,
									 chans[i]->release == 0)));
			json_object_set_new(o, "error", chans[i]->verify_error
							    ? json_string(chans[i]->verify_error)
							    : json_null());
			json_array_append_new(carr, o);
		}
		for (i = 0; i < n_rels; i++) {
			o = release_json(rels[i]);
			json_object_set_new(o, "status", json_string(status_word(kr, rels[i]->verified,
									 rels[i]->verify_rc, false)));
			json_object_set_new(o, "error", rels[i]->verify_error
							    ? json_string(rels[i]->verify_error)
							    : json_null());
			json_array_append_new(rarr, o);
		}
		json_object_set_new(root, "channels", carr);
		json_object_set_new(root, "releases", rarr);
		print_json(root);
		rc = CLI_OK;
		goto cleanup;
	}
	art_time_format(when, now);
	printf("store %s at %s: %zu channel%s, %zu release%s (%s)\n\n", a.store, when, n_chans,
	       n_chans == 1 ? "" : "s", n_rels, n_rels == 1 ? "" : "s",
	       kr ? "verified with the keyring" : "NOT verified: give --keyring");
	printf("%-16s  %-7s  %-5s  %-9s  %-13s  %-28s  %s\n", "CHANNEL", "RELEASE", "SEQ",
	       "THRESHOLD", "ACTION", "SIGNED BY", "STATUS");
	for (i = 0; i < n_chans; i++) {
		const art_channel *c = chans[i];

		signers_text(signers, sizeof(signers), c->signers, c->n_signers);
		printf("%-16s  %-7llu  %-5llu  %-9u  %-13s  %-28s  %s%s%s\n", c->name,
		       (unsigned long long)c->release, (unsigned long long)c->seq, c->threshold,
		       c->action[0] ? c->action : "?", signers,
		       status_word(kr, c->verified, c->verify_rc, c->release == 0),
		       c->verify_error && c->release ? ": " : "",
		       c->verify_error && c->release ? c->verify_error : "");
	}
	printf("\n%-7s  %-20s  %-20s  %-9s  %-12s  %s\n", "RELEASE", "CREATED", "EXPIRES",
	       "ARTIFACTS", "SIGNED BY", "STATUS");
	for (i = 0; i < n_rels; i++) {
		const art_release *r = rels[i];

		art_time_format(when, r->created);
		art_time_format(exp, r->expires);
		printf("%-7llu  %-20s  %-20s  %-9zu  %-12.12s  %s%s%s\n",
		       (unsigned long long)r->number, r->created ? when : "?", r->expires ? exp : "?",
		       r->n_pins, r->signer[0] ? r->signer : "-",
		       status_word(kr, r->verified, r->verify_rc, false), r->verify_error ? ": " : "",
		       r->verify_error ? r->verify_error : "");
	}
	rc = CLI_OK;
cleanup:
	art_channel_list_free(chans, n_chans);
	art_release_list_free(rels, n_rels);
	art_keyring_free(kr);
	art_store_close(s);
	return rc;
}

/* ---- audit --------------------------------------------------------------- */

static void audit_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory audit log        --store DIR [--json]\n"
		"       agentfactory audit verify     --store DIR [--checkpoint FILE --keyring FILE]\n"
		"                                     [--json]\n"
		"       agentfactory audit checkpoint --store DIR --key KEY --out FILE\n\n"
		"The store's hash-chained audit log: every build, release, promotion, rollback,\n"
		"threshold change and refused attempt, written in the same transaction as the\n"
		"action.\n"
		"  log         print every entry (seq, time, outcome, action, subject, actor, details)\n"
		"  verify      recompute the chain: an edited, deleted, inserted or reordered entry\n"
		"              fails; with --checkpoint, the log must still hold the checkpoint's\n"
		"              entry with its hash (detects truncation and a rewritten chain);\n"
		"              with a keyring, every signed entry's signatures must verify and\n"
		"              every successful action must be signed by its actors (a chain\n"
		"              rewritten with recomputed hashes fails); with AF_AUDIT_CHECKPOINTS\n"
		"              set, its latest.json is the checkpoint (a missing one fails)\n"
		"  checkpoint  sign the head (seq, hash) with a release-manager key and write it to\n"
		"              FILE; keep the file outside the store\n\n"
		"options:\n"
		"  --store DIR         the store (env AF_STORE)\n"
		"  --keyring FILE      trusted keys, to check signatures (env AF_KEYRING)\n"
		"  --checkpoint FILE   a file written by 'audit checkpoint'\n"
		"  --key KEY           the private key that signs the checkpoint\n"
		"  --out FILE          where the checkpoint goes\n"
		"  --json              machine-readable output\n"
		"  -h, --help          this help\n"
		"env AF_AUDIT_CHECKPOINTS=DIR: every signed action (build, release, promote,\n"
		"rollback, set-threshold, trust changes with a store) writes a checkpoint signed\n"
		"by its key to DIR (<seq>.json, latest.json); audit verify checks latest.json.\n\n"
		"exit codes: 0 ok, 1 the log or the checkpoint does not verify, 2 usage or I/O error\n");
}

static int audit_log(int argc, char **argv)
{
	rel_args a;
	art_store *s = NULL;
	art_audit_entry *list = NULL;
	size_t n = 0, i;
	char when[21];
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, "audit log", OPT_STORE | OPT_JSON, audit_usage, &done)) != CLI_OK ||
	    done)
		return rc;
	if (optind < argc)
		return cli_usage_error("audit log", "unexpected argument '%s'", argv[optind]);
	if ((rc = open_store(&s, "audit log", a.store, ART_STORE_RDONLY)) != CLI_OK)
		return rc;
	if (art_audit_list(&list, &n, s, 0, 0) < 0) {
		rc = cli_fail(CLI_USAGE, "audit log", "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		json_t *arr = json_array();

		for (i = 0; i < n; i++) {
			json_t *o = json_object(), *details = json_loads(list[i].details, 0, NULL);

			json_object_set_new(o, "seq", json_integer((json_int_t)list[i].seq));
			json_object_set_new(o, "time", list[i].time ? time_json(list[i].time)
								    : json_null());
			json_object_set_new(o, "action", json_string(list[i].action));
			json_object_set_new(o, "actor", json_string(list[i].actor));
			json_object_set_new(o, "subject", json_string(list[i].subject));
			json_object_set_new(o, "outcome", json_string(list[i].outcome));
			json_object_set_new(o, "details", details ? details : json_object());
			json_object_set_new(o, "prev_hash", json_string(list[i].prev_hash));
			json_object_set_new(o, "hash", json_string(list[i].hash));
			json_array_append_new(arr, o);
		}
		print_json(arr);
	} else {
		for (i = 0; i < n; i++) {
			art_time_format(when, list[i].time);
			printf("%-5llu  %s  %-7s  %-13s  %-24s  %.12s  %s\n",
			       (unsigned long long)list[i].seq, when, list[i].outcome, list[i].action,
			       list[i].subject, list[i].actor, list[i].details);
		}
	}
	rc = CLI_OK;
cleanup:
	art_audit_list_free(list, n);
	art_store_close(s);
	return rc;
}

static int audit_verify(int argc, char **argv)
{
	const char *cmd = "audit verify";
	rel_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_audit_report rep;
	char *cp = NULL, latest[4096];
	const char *cpdir = NULL;
	size_t cp_len = 0;
	int done, rc, vrc;

	if ((rc = parse_args(&a, argc, argv, cmd, OPT_STORE | OPT_KEYRING | OPT_CHECKPOINT | OPT_JSON,
			     audit_usage, &done)) != CLI_OK || done)
		return rc;
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	/* Automatic checkpoints (AF_AUDIT_CHECKPOINTS): the latest one is checked
	 * without being named; its absence is a finding (it may have been
	 * removed together with the entries it covered). */
	if (!a.checkpoint && (cpdir = cli_flag_or_env(NULL, "AF_AUDIT_CHECKPOINTS"))) {
		snprintf(latest, sizeof(latest), "%s/latest.json", cpdir);
		a.checkpoint = latest;
	}
	if (a.checkpoint || a.keyring) {
		if ((rc = need_keyring(&kr, cmd, a.keyring)) != CLI_OK)
			return rc;
	}
	if (a.checkpoint) {
		int frc = art_file_read(&cp, &cp_len, a.checkpoint, ART_SIG_ENVELOPE_MAX);

		if (frc < 0) {
			rc = cli_fail(cpdir && frc == AF_ENOTFOUND ? CLI_FINDINGS : CLI_USAGE, cmd,
				      "%s%s", art_error_last(),
				      cpdir ? " (AF_AUDIT_CHECKPOINTS is set: every signed action "
					      "leaves a checkpoint there, so it must not be missing)"
					    : "");
			goto cleanup;
		}
	}
	if ((rc = open_store(&s, cmd, a.store, ART_STORE_RDONLY)) != CLI_OK)
		goto cleanup;
	vrc = cp ? art_audit_verify_checkpoint(&rep, s, kr, cp, cp_len, art_time_now())
	      : kr ? art_audit_verify_signed(&rep, s, kr)
		   : art_audit_verify(&rep, s);
	if (a.json) {
		json_t *o = json_object();

		json_object_set_new(o, "ok", json_boolean(vrc == 0));
		json_object_set_new(o, "entries", json_integer((json_int_t)rep.entries));
		json_object_set_new(o, "head_seq", json_integer((json_int_t)rep.head_seq));
		json_object_set_new(o, "head_hash", json_string(rep.head_hash));
		json_object_set_new(o, "bad_seq", rep.bad_seq ? json_integer((json_int_t)rep.bad_seq)
							      : json_null());
		json_object_set_new(o, "checkpoint_seq", cp ? json_integer((json_int_t)rep.checkpoint_seq)
							    : json_null());
		json_object_set_new(o, "error", vrc ? json_string(art_error_last()) : json_null());
		print_json(o);
	}
	if (vrc < 0) {
		rc = a.json ? exit_for(vrc) : cli_fail(exit_for(vrc), cmd, "%s", art_error_last());
		goto cleanup;
	}
	if (!a.json) {
		printf("audit log OK: %llu entries, head %llu %s%s\n",
		       (unsigned long long)rep.entries, (unsigned long long)rep.head_seq,
		       rep.head_hash, kr ? "; actors' signatures verified" : "");
		if (cp)
			printf("checkpoint OK: the log still holds entry %llu as signed\n",
			       (unsigned long long)rep.checkpoint_seq);
	}
	rc = CLI_OK;
cleanup:
	free(cp);
	art_keyring_free(kr);
	art_store_close(s);
	return rc;
}

static int audit_checkpoint(int argc, char **argv)
{
	const char *cmd = "audit checkpoint";
	rel_args a;
	art_store *s = NULL;
	art_key *key = NULL;
	art_audit_report rep;
	char *cp = NULL;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, cmd, OPT_STORE | OPT_KEY | OPT_OUT, audit_usage, &done)) !=
		    CLI_OK || done)
		return rc;
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!a.out)
		return cli_usage_error(cmd, "--out FILE is required");
	if (a.n_keys != 1)
		return cli_usage_error(cmd, "exactly one --key KEY is required");
	if ((rc = load_keys(&key, cmd, &a)) != CLI_OK ||
	    (rc = open_store(&s, cmd, a.store, ART_STORE_RDONLY)) != CLI_OK)
		goto cleanup;
	if ((rc = art_audit_checkpoint(&cp, s, key, art_time_now())) < 0) {
		rc = cli_fail(exit_for(rc), cmd, "%s", art_error_last());
		goto cleanup;
	}
	if (art_audit_verify(&rep, s) < 0 || art_file_write_atomic(a.out, cp, strlen(cp), 0644) < 0) {
		rc = cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
		goto cleanup;
	}
	printf("checkpoint of entry %llu (%.16s...) signed by %s written to %s\n",
	       (unsigned long long)rep.head_seq, rep.head_hash, art_key_id(key), a.out);
	rc = CLI_OK;
cleanup:
	free(cp);
	art_key_free(key);
	art_store_close(s);
	return rc;
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("audit", "a subcommand is required: log, verify or checkpoint");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		audit_usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "log") == 0)
		return audit_log(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return audit_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "checkpoint") == 0)
		return audit_checkpoint(argc - 1, argv + 1);
	return cli_usage_error("audit", "unknown subcommand '%s': use log, verify or checkpoint",
			       argv[1]);
}
