/*
 * cmd_oci.c - `agentfactory push` and `agentfactory pull`: a store's
 * artifacts, releases and channels to and from an OCI registry
 * (art/oci.h, docs/registry.md).
 *
 * Both print what moved (blobs and bytes, skipped blobs, requests, time) on
 * stdout, or one JSON object with --json; progress goes to stderr.
 */
#include "cli.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/oci.h"
#include "art/store.h"
#include "art/util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	O_STORE = 256, O_KEYRING, O_RELEASE, O_CHANNEL, O_USER, O_PASS, O_PASS_STDIN, O_AUTHFILE,
	O_CA, O_PLAIN, O_REDIRECT, O_MOUNT, O_JSON, O_QUIET, O_TIMEOUT, O_MIN_THRESHOLD
};

typedef struct oci_args {
	const char *store, *keyring, *channel, *mount_from, *url;
	unsigned long long release, min_threshold;
	bool json, quiet, password_stdin;
	char password_buf[1024];
	art_oci_opts o;
} oci_args;

static void push_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory push --store DIR (--release N | --channel C | NAME[@VERSION]...)\n"
		"                         [OPTIONS] oci://HOST[:PORT]/REPO\n\n"
		"Pushes to an OCI registry (Docker Distribution, Harbor, GHCR, ECR, Zot...):\n"
		"one OCI image manifest per artifact (tag NAME-VERSION, '+' written '_'), one\n"
		"image index per release (tag release-N), the channel tag channel-C on the\n"
		"index of the release C points at, and the signatures and signed records as\n"
		"OCI 1.1 referrers (the tag-schema fallback on registries without the\n"
		"referrers API). Only blobs the registry lacks are uploaded (HEAD first);\n"
		"blobs over the chunk size go in chunks. See docs/registry.md.\n\n"
		"options:\n"
		"  --store DIR          the store (env AF_STORE)\n"
		"  --release N          release N: its artifacts, index and signed record\n"
		"  --channel C          channel C: its release, its signed record, then the tag\n"
		"  --mount-from REPO    mount missing blobs from REPO of the same registry\n");
	fprintf(out,
		"  --username U         registry user (else from the credentials file)\n"
		"  --password P         registry password (prefer --password-stdin)\n"
		"  --password-stdin     read the password from stdin\n"
		"  --auth-file FILE     docker-style config.json (default: REGISTRY_AUTH_FILE,\n"
		"                       then $DOCKER_CONFIG/config.json, ~/.docker/config.json)\n"
		"  --ca-file FILE       CA bundle for the registry's TLS certificate\n"
		"  --plain-http         allow plain HTTP to a non-loopback registry (a loopback\n"
		"                       registry without --ca-file is spoken to over HTTP)\n"
		"  --allow-redirect     follow redirects to another host (blob storage)\n"
		"  --timeout S          connect and stall timeout (default 30)\n"
		"  --json               print one JSON object\n"
		"  --quiet              no progress on stderr\n\n"
		"exit codes: 0 pushed, 1 refused (not in the store, registry refused), 2 usage\n"
		"            error or registry unreachable\n");
}

static void pull_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory pull --store DIR --keyring FILE [--channel C | --release N |\n"
		"                         NAME@VERSION...] [OPTIONS] oci://HOST[:PORT]/REPO\n\n"
		"Pulls from an OCI registry into a store and verifies everything before it\n"
		"writes anything: every blob and manifest against its digest, every builder\n"
		"signature, the release record (release-manager signature, not expired), the\n"
		"channel record (its signature threshold; not older than the store's own\n"
		"record for that channel: a replayed tag is refused). Then one transaction\n"
		"writes it all. Blobs the store has are not downloaded; an interrupted pull\n"
		"leaves the store as it was and, run again, resumes (verified downloads are\n"
		"kept in DIR/oci-partial until the commit). Without --channel, --release or\n"
		"NAME@VERSION: every channel-* tag of the repository.\n\n"
		"options:\n"
		"  --store DIR          the store, created if missing (env AF_STORE)\n"
		"  --keyring FILE       the trusted keys (env AF_KEYRING)\n"
		"  --channel C          channel C's record, its release and artifacts\n"
		"  --release N          release N and its artifacts\n"
		"  --min-threshold K    channel records need at least K signatures\n");
	fprintf(out,
		"  (--username, --password, --password-stdin, --auth-file, --ca-file,\n"
		"   --plain-http, --allow-redirect, --timeout, --json, --quiet as for push)\n\n"
		"exit codes: 0 pulled or up to date, 1 refused (tampered, unsigned, untrusted,\n"
		"            replayed, expired), 2 usage error or registry unreachable\n");
}

static int exit_for(int rc)
{
	switch (rc) {
	case AF_ENOMEM:
	case AF_EIO:
	case AF_EINTERNAL:
	case AF_EINVAL:
		return CLI_USAGE;
	default:
		return CLI_FINDINGS;
	}
}

static int parse(oci_args *a, int argc, char **argv, bool pull, bool *done)
{
	static const struct option longopts[] = {
		{"store", required_argument, NULL, O_STORE},
		{"keyring", required_argument, NULL, O_KEYRING},
		{"release", required_argument, NULL, O_RELEASE},
		{"channel", required_argument, NULL, O_CHANNEL},
		{"username", required_argument, NULL, O_USER},
		{"password", required_argument, NULL, O_PASS},
		{"password-stdin", no_argument, NULL, O_PASS_STDIN},
		{"auth-file", required_argument, NULL, O_AUTHFILE},
		{"ca-file", required_argument, NULL, O_CA},
		{"plain-http", no_argument, NULL, O_PLAIN},
		{"allow-redirect", no_argument, NULL, O_REDIRECT},
		{"mount-from", required_argument, NULL, O_MOUNT},
		{"json", no_argument, NULL, O_JSON},
		{"quiet", no_argument, NULL, O_QUIET},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"min-threshold", required_argument, NULL, O_MIN_THRESHOLD},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	char *end;
	int opt;

	memset(a, 0, sizeof(*a));
	*done = false;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (opt) {
		case O_STORE: a->store = optarg; break;
		case O_KEYRING: a->keyring = optarg; break;
		case O_CHANNEL: a->channel = optarg; break;
		case O_RELEASE:
			a->release = strtoull(optarg, &end, 10);
			if (!*optarg || *end || a->release == 0)
				return cli_usage_error(argv[0], "--release: expected a number >= 1");
			break;
		case O_MIN_THRESHOLD:
			a->min_threshold = strtoull(optarg, &end, 10);
			if (!*optarg || *end || a->min_threshold > 16)
				return cli_usage_error(argv[0], "--min-threshold: expected 0 .. 16");
			break;
		case O_TIMEOUT:
			a->o.timeout_s = strtol(optarg, &end, 10);
			if (!*optarg || *end || a->o.timeout_s < 1 || a->o.timeout_s > 3600)
				return cli_usage_error(argv[0], "--timeout: expected 1 .. 3600");
			break;
		case O_USER: a->o.username = optarg; break;
		case O_PASS: a->o.password = optarg; break;
		case O_PASS_STDIN: a->password_stdin = true; break;
		case O_AUTHFILE: a->o.auth_file = optarg; break;
		case O_CA: a->o.ca_file = optarg; break;
		case O_PLAIN: a->o.plain_http = true; break;
		case O_REDIRECT: a->o.allow_redirect = true; break;
		case O_MOUNT: a->mount_from = optarg; break;
		case O_JSON: a->json = true; break;
		case O_QUIET: a->quiet = true; break;
		case 'h':
			(pull ? pull_usage : push_usage)(stdout);
			*done = true;
			return CLI_OK;
		default:
			return cli_usage_error(argv[0], "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	a->store = cli_flag_or_env(a->store, "AF_STORE");
	a->keyring = cli_flag_or_env(a->keyring, "AF_KEYRING");
	if (!a->store)
		return cli_usage_error(argv[0], "--store DIR (or AF_STORE) is required");
	/* the registry reference is the last operand */
	if (optind >= argc || strncmp(argv[argc - 1], "oci://", 6) != 0)
		return cli_usage_error(argv[0], "the last argument must be the registry: "
				       "oci://HOST[:PORT]/REPO");
	a->url = argv[argc - 1];
	if (a->password_stdin) {
		size_t n;

		if (!fgets(a->password_buf, sizeof(a->password_buf), stdin))
			return cli_usage_error(argv[0], "--password-stdin: nothing on stdin");
		n = strlen(a->password_buf);
		if (n && a->password_buf[n - 1] == '\n')
			a->password_buf[--n] = '\0';
		a->o.password = a->password_buf;
	}
	if (!a->quiet)
		a->o.progress = stderr;
	return CLI_OK;
}

static void print_stats(const oci_args *a, const char *verb, const art_oci_stats *st,
			double ms, const char *target)
{
	json_t *o;
	char *text;

	if (a->json) {
		o = json_pack("{s:s,s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}",
			      "action", verb, "registry", target, "ms", ms,
			      "requests", (json_int_t)st->requests, "heads", (json_int_t)st->heads,
			      "blobs_up", (json_int_t)st->blobs_up, "bytes_up",
			      (json_int_t)st->bytes_up, "blobs_mounted",
			      (json_int_t)st->blobs_mounted, "blobs_skipped",
			      (json_int_t)st->blobs_skipped, "blobs_down",
			      (json_int_t)st->blobs_down, "bytes_down", (json_int_t)st->bytes_down,
			      "manifests_up", (json_int_t)st->manifests_up, "artifacts",
			      (json_int_t)st->artifacts, "release", (json_int_t)st->release,
			      "channel_seq", (json_int_t)st->channel_seq, "up_to_date",
			      st->up_to_date);
		if (o && (text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
			printf("%s\n", text);
			free(text);
		}
		json_decref(o);
		return;
	}
	if (st->up_to_date)
		printf("%s: up to date (release %llu, channel record %llu), %llu requests, %.0f ms\n",
		       target, (unsigned long long)st->release,
		       (unsigned long long)st->channel_seq, (unsigned long long)st->requests, ms);
	else
		printf("%s %s: %llu artifact%s, blobs up %llu (%llu bytes), down %llu (%llu bytes), "
		       "mounted %llu, skipped %llu, %llu requests, %.0f ms\n",
		       verb, target, (unsigned long long)st->artifacts,
		       st->artifacts == 1 ? "" : "s", (unsigned long long)st->blobs_up,
		       (unsigned long long)st->bytes_up, (unsigned long long)st->blobs_down,
		       (unsigned long long)st->bytes_down, (unsigned long long)st->blobs_mounted,
		       (unsigned long long)st->blobs_skipped, (unsigned long long)st->requests, ms);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cmd_push(int argc, char **argv)
{
	oci_args a;
	art_store *s = NULL;
	art_oci_client *c = NULL;
	art_oci_stats st;
	bool done;
	double t0;
	int rc;

	if ((rc = parse(&a, argc, argv, false, &done)) || done)
		return rc;
	if (!a.release && !a.channel && optind >= argc - 1)
		return cli_usage_error(argv[0], "nothing to push: give --release N, --channel C or "
				       "NAME[@VERSION]");
	if (art_store_open(&s, a.store, ART_STORE_RDONLY) < 0)
		return cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
	if (art_oci_client_new(&c, a.url, &a.o) < 0) {
		rc = cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	t0 = now_ms();
	rc = art_oci_push(&st, c, s, (const char *const *)argv + optind,
			  (size_t)(argc - 1 - optind), a.release, a.channel, a.mount_from);
	if (rc < 0) {
		rc = cli_fail(exit_for(rc), argv[0], "%s", art_error_last());
		goto cleanup;
	}
	print_stats(&a, "pushed to", &st, now_ms() - t0, a.url);
	rc = CLI_OK;
cleanup:
	art_oci_client_free(c);
	art_store_close(s);
	memset(a.password_buf, 0, sizeof(a.password_buf));
	return rc;
}

int cmd_pull(int argc, char **argv)
{
	oci_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_oci_client *c = NULL;
	art_oci_pull_opts po;
	art_oci_stats st;
	bool done;
	double t0;
	int rc;

	if ((rc = parse(&a, argc, argv, true, &done)) || done)
		return rc;
	if (!a.keyring)
		return cli_usage_error(argv[0], "--keyring FILE (or AF_KEYRING) is required");
	if (art_keyring_load(&kr, a.keyring) < 0)
		return cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
	if (art_store_open(&s, a.store, ART_STORE_CREATE) < 0) {
		rc = cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	if (art_oci_client_new(&c, a.url, &a.o) < 0) {
		rc = cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	memset(&po, 0, sizeof(po));
	po.channel = a.channel;
	po.release = a.release;
	po.refs = (const char *const *)argv + optind;
	po.n_refs = (size_t)(argc - 1 - optind);
	po.min_threshold = (unsigned)a.min_threshold;
	t0 = now_ms();
	rc = art_oci_pull(&st, c, s, kr, art_time_now(), &po);
	if (rc < 0) {
		rc = cli_fail(exit_for(rc), argv[0], "%s (the store is unchanged)", art_error_last());
		goto cleanup;
	}
	print_stats(&a, "pulled from", &st, now_ms() - t0, a.url);
	rc = CLI_OK;
cleanup:
	art_oci_client_free(c);
	art_store_close(s);
	art_keyring_free(kr);
	memset(a.password_buf, 0, sizeof(a.password_buf));
	return rc;
}
