/*
 * cmd_store.c - `agentfactory ls | inspect | verify | export | import`: look
 * into an artifact store, verify it, and move artifacts between stores as
 * signed OCI-layout bundles.
 *
 * These commands use only the artifacts library (art/store.h, art/bundle.h):
 * what they show about an artifact is what the runtime would see. Reading
 * commands open the store read-only, so they work while a build writes.
 * Nothing is called "verified" unless it went through the keyring.
 */
#include "cmd_store.h"

#include "cli.h"

#include "art/attest.h"
#include "art/bundle.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- shared option handling ---------------------------------------------- */

typedef struct store_args {
	const char *store, *keyring, *out, *signatures;
	bool json;
	int show; /* inspect: SHOW_* */
} store_args;

enum { OPT_STORE = 1, OPT_KEYRING = 2, OPT_OUT = 4, OPT_JSON = 8, OPT_SHOW = 16, OPT_SIGS = 32 };
enum { SHOW_NONE, SHOW_PROVENANCE, SHOW_STATEMENT, SHOW_SBOM };

typedef void (*usage_fn)(FILE *out);

/*
 * Parse the options a command accepts (mask of OPT_*). Returns CLI_OK with
 * *done set after --help, CLI_USAGE on a bad option; fills from AF_STORE /
 * AF_KEYRING.
 */
static int parse_args(store_args *a, int argc, char **argv, unsigned accepted, usage_fn usage,
		      int *done)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'}, {"keyring", required_argument, NULL, 'k'},
		{"out", required_argument, NULL, 'o'}, {"json", no_argument, NULL, 'j'},
		{"provenance", no_argument, NULL, 'P'}, {"statement", no_argument, NULL, 'S'},
		{"sbom", no_argument, NULL, 'B'}, {"signatures", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *cmd = argv[0];
	int c, idx = 0;

	memset(a, 0, sizeof(*a));
	*done = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		unsigned which = c == 's' ? OPT_STORE : c == 'k' ? OPT_KEYRING : c == 'o' ? OPT_OUT
			       : c == 'j' ? OPT_JSON : c == 'g' ? OPT_SIGS
			       : (c == 'P' || c == 'S' || c == 'B') ? OPT_SHOW : 0;

		if (c == 'h') {
			usage(stdout);
			*done = 1;
			return CLI_OK;
		}
		if (!which)
			return cli_usage_error(cmd, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		if (!(accepted & which)) /* (argv[optind - 1] may be its value) */
			return cli_usage_error(cmd, "option '--%s' does not apply here",
					       opts[idx].name);
		switch (c) {
		case 's': a->store = optarg; break;
		case 'k': a->keyring = optarg; break;
		case 'o': a->out = optarg; break;
		case 'g': a->signatures = optarg; break;
		case 'P': case 'S': case 'B':
			if (a->show)
				return cli_usage_error(cmd, "give one of --provenance, --statement, "
						       "--sbom");
			a->show = c == 'P' ? SHOW_PROVENANCE : c == 'S' ? SHOW_STATEMENT : SHOW_SBOM;
			break;
		default: a->json = true; break;
		}
	}
	a->store = cli_flag_or_env(a->store, "AF_STORE");
	if (!a->store)
		return cli_usage_error(cmd, "--store DIR (or AF_STORE) is required");
	if (accepted & OPT_KEYRING)
		a->keyring = cli_flag_or_env(a->keyring, "AF_KEYRING");
	return CLI_OK;
}

/* The exit code for a library error: refusals are findings, the rest usage/internal. */
static int exit_for(int rc)
{
	switch (rc) {
	case AF_ENOMEM:
	case AF_EIO:
	case AF_EINTERNAL:
	case AF_EINVAL: /* a malformed NAME[@VERSION] */
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

static int load_keyring(art_keyring **kr, const char *cmd, const char *path)
{
	if (art_keyring_load(kr, path) < 0)
		return cli_fail(CLI_USAGE, cmd, "%s", art_error_last());
	return CLI_OK;
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

static void human_size(char out[32], uint64_t n)
{
	if (n >= 10ull << 20)
		snprintf(out, 32, "%.1f MiB", (double)n / (1 << 20));
	else if (n >= 10ull << 10)
		snprintf(out, 32, "%.1f KiB", (double)n / (1 << 10));
	else
		snprintf(out, 32, "%llu B", (unsigned long long)n);
}

/* Split "NAME[@VERSION]" into name (copied into buf) and version (or NULL). */
static const char *split_ref(char *buf, size_t size, const char *ref, const char **version)
{
	const char *at = strchr(ref, '@');

	snprintf(buf, size, "%.*s", (int)(at ? (size_t)(at - ref) : strlen(ref)), ref);
	*version = at ? at + 1 : NULL;
	return buf;
}

/* ---- ls ------------------------------------------------------------------ */

static void ls_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory ls --store DIR [--json]\n\n"
		"Lists the artifacts of a store: name@version, manifest digest, and which\n"
		"version is the latest. The listing is not a verification (see 'verify').\n\n"
		"options:\n"
		"  --store DIR   the store directory (env AF_STORE)\n"
		"  --json        machine-readable output: {\"store\", \"artifacts\": [{name,\n"
		"                version, manifest_digest, latest}], \"stats\": {...}}\n"
		"  -h, --help    this help\n\n"
		"exit codes: 0 listed, 2 usage error or unreadable store\n");
}

static json_t *stats_json(const art_store_stats *st)
{
	json_t *o = json_object();

	json_object_set_new(o, "artifacts", json_integer((json_int_t)st->artifacts));
	json_object_set_new(o, "names", json_integer((json_int_t)st->names));
	json_object_set_new(o, "blobs", json_integer((json_int_t)st->blobs));
	json_object_set_new(o, "raw_bytes", json_integer((json_int_t)st->raw_bytes));
	json_object_set_new(o, "stored_bytes", json_integer((json_int_t)st->stored_bytes));
	json_object_set_new(o, "dictionaries", json_integer((json_int_t)st->dicts));
	json_object_set_new(o, "map_size", json_integer((json_int_t)st->map_size));
	json_object_set_new(o, "map_used", json_integer((json_int_t)st->map_used));
	return o;
}

int cmd_ls(int argc, char **argv)
{
	store_args a;
	art_store *s = NULL;
	art_store_entry *list = NULL;
	art_store_stats st;
	size_t n = 0, i;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, OPT_STORE | OPT_JSON, ls_usage, &done)) || done)
		return rc;
	if (optind != argc)
		return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if ((rc = open_store(&s, argv[0], a.store, ART_STORE_RDONLY)) != CLI_OK)
		return rc;
	if (art_store_list(&list, &n, s) < 0 || art_store_stats_get(&st, s) < 0) {
		rc = cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		json_t *root = json_object(), *arr = json_array();

		json_object_set_new(root, "store", json_string(a.store));
		json_object_set_new(root, "artifacts", arr);
		for (i = 0; i < n; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "name", json_string(list[i].name));
			json_object_set_new(o, "version", json_string(list[i].version));
			json_object_set_new(o, "manifest_digest", json_string(list[i].manifest_digest));
			json_object_set_new(o, "latest", json_boolean(list[i].latest));
			json_array_append_new(arr, o);
		}
		json_object_set_new(root, "stats", stats_json(&st));
		rc = print_json(root);
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		char ref[256];

		snprintf(ref, sizeof(ref), "%s@%s", list[i].name, list[i].version);
		printf("%-40s %.19s%s\n", ref,
		       list[i].manifest_digest[0] ? list[i].manifest_digest : "(damaged record)",
		       list[i].latest ? "  latest" : "");
	}
	{
		char raw[32], stored[32];

		human_size(raw, st.raw_bytes);
		human_size(stored, st.stored_bytes);
		printf("%zu artifact%s, %llu blobs: %s raw, %s stored\n", n, n == 1 ? "" : "s",
		       (unsigned long long)st.blobs, raw, stored);
	}
	rc = CLI_OK;
cleanup:
	art_store_list_free(list, n);
	art_store_close(s);
	return rc;
}

/* ---- inspect ------------------------------------------------------------- */

static void inspect_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory inspect --store DIR [--keyring FILE] [--json] NAME[@VERSION]\n"
		"       agentfactory inspect --store DIR [--keyring FILE]\n"
		"                            --provenance|--statement|--sbom NAME[@VERSION]\n\n"
		"Shows one artifact (the latest version when VERSION is omitted): its manifest,\n"
		"the digest, raw and stored (compressed) size of every part, the key id of the\n"
		"builder signature, and the SLSA provenance. With --keyring the artifact is\n"
		"verified first (signature, manifest binding, every part) and the result shown;\n"
		"without it nothing shown is verified.\n\n"
		"options:\n"
		"  --store DIR     the store directory (env AF_STORE)\n"
		"  --keyring FILE  verify against this keyring (env AF_KEYRING)\n"
		"  --json          machine-readable output\n"
		"  --provenance    print only the provenance attestation: the DSSE envelope\n"
		"                  (application/vnd.in-toto+json) signed by the builder\n"
		"  --statement     print only the signed in-toto statement (SLSA provenance v1)\n"
		"  --sbom          print only the CycloneDX 1.5 SBOM\n"
		"                  (with --keyring each is printed only once it verified)\n"
		"  -h, --help      this help\n\n"
		"exit codes: 0 shown (and verified, with --keyring), 1 no such artifact or\n"
		"            verification failed, 2 usage error or unreadable store\n");
}

static json_t *envelope_keyids(const char *envelope, size_t len)
{
	json_t *env = json_loadb(envelope, len, 0, NULL), *out = json_array(), *sig;
	size_t i;

	json_array_foreach(json_object_get(env, "signatures"), i, sig)
		if (json_is_string(json_object_get(sig, "keyid")))
			json_array_append(out, json_object_get(sig, "keyid"));
	json_decref(env);
	return out;
}

static void print_provenance(json_t *prov)
{
	json_t *pred = json_object_get(prov, "predicate");
	json_t *bdef = json_object_get(pred, "buildDefinition");
	json_t *ext = json_object_get(bdef, "externalParameters");
	json_t *deps = json_object_get(bdef, "resolvedDependencies"), *dep;
	size_t i;

	printf("provenance (%s)\n", json_string_value(json_object_get(prov, "predicateType")));
	printf("  builder          %s\n", json_string_value(json_object_get(
					     json_object_get(json_object_get(pred, "runDetails"),
							     "builder"), "id")));
	printf("  build type       %s\n", json_string_value(json_object_get(bdef, "buildType")));
	/* "repository"/"ref" since attestations; "repo"/"rev" in older builds */
	printf("  source           %s\n", json_string_value(json_object_get(ext, "repository"))
					       ? json_string_value(json_object_get(ext, "repository"))
					       : json_string_value(json_object_get(ext, "repo")));
	printf("  ref              %s\n", json_string_value(json_object_get(ext, "ref"))
					       ? json_string_value(json_object_get(ext, "ref"))
					       : json_string_value(json_object_get(ext, "rev")));
	json_array_foreach(deps, i, dep) {
		const char *k;
		json_t *v;

		json_object_foreach(json_object_get(dep, "digest"), k, v)
			printf("  depends on       %-18s %s:%s\n",
			       json_string_value(json_object_get(dep, "name")), k, json_string_value(v));
	}
}

static int write_all(const void *data, size_t len)
{
	if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
		return cli_fail(CLI_USAGE, "inspect", "cannot write to standard output");
	return CLI_OK;
}

/*
 * inspect --provenance / --statement / --sbom: the bytes alone, for pipes
 * (cosign, in-toto, CycloneDX tools). With a keyring, nothing is printed
 * before the artifact and the attestation verified.
 */
static int inspect_show(art_store *s, const art_keyring *kr, const char *name,
			const char *version, int show)
{
	const char *part_name = show == SHOW_SBOM ? ART_PART_SBOM : ART_PART_PROVENANCE;
	const char *parts[1] = {part_name};
	art_verified_artifact *va = NULL;
	art_store_record *rec = NULL;
	art_manifest *m = NULL;
	char *envelope = NULL, *statement = NULL;
	size_t envelope_len = 0, statement_len = 0;
	uint8_t *bytes = NULL;
	size_t len = 0;
	int rc;

	if ((rc = art_store_get_artifact(&rec, s, name, version)) < 0) {
		rc = cli_fail(exit_for(rc), "inspect", "%s", art_error_last());
		goto cleanup;
	}
	if (kr) {
		if ((rc = art_store_load_verified_parts(&va, s, kr, rec->name, rec->version,
							art_time_now(), parts, 1)) < 0) {
			rc = cli_fail(rc == AF_ENOTFOUND ? CLI_FINDINGS : exit_for(rc), "inspect",
				      "%s%s", art_error_last(),
				      rc == AF_ENOTFOUND ? " (built by an older version: rebuild it)"
							 : "");
			goto cleanup;
		}
	} else if ((rc = art_manifest_parse(&m, rec->manifest, rec->manifest_len)) < 0) {
		rc = cli_fail(CLI_FINDINGS, "inspect", "%s@%s: %s", rec->name, rec->version,
			      art_error_last());
		goto cleanup;
	}
	if (show == SHOW_SBOM) {
		const art_manifest_part *p;

		if (va) { /* verified: the part's bytes checked against the signed manifest */
			rc = write_all(va->parts[0].data, va->parts[0].size);
			goto cleanup;
		}
		p = art_manifest_part_get(m, part_name);
		if (!p) {
			rc = cli_fail(CLI_FINDINGS, "inspect", "%s@%s has no SBOM (built by an older "
				      "version): rebuild it", rec->name, rec->version);
			goto cleanup;
		}
		if ((rc = art_store_get_blob(&bytes, &len, s, p->digest + 7)) < 0) {
			rc = cli_fail(CLI_FINDINGS, "inspect", "%s", art_error_last());
			goto cleanup;
		}
		rc = write_all(bytes, len);
		goto cleanup;
	}
	if ((rc = art_store_get_attestation(&envelope, &envelope_len, s, rec->name,
					    rec->version)) < 0) {
		rc = cli_fail(exit_for(rc), "inspect", "%s", art_error_last());
		goto cleanup;
	}
	if (kr) {
		rc = art_attest_verify_provenance(NULL, &statement, &statement_len, kr, va->manifest,
						  envelope, envelope_len, art_time_now());
		if (rc < 0) {
			rc = cli_fail(CLI_FINDINGS, "inspect", "%s@%s: %s", rec->name, rec->version,
				      art_error_last());
			goto cleanup;
		}
	} else if ((rc = art_attest_envelope_payload(&statement, &statement_len, envelope,
						     envelope_len)) < 0) {
		rc = cli_fail(CLI_FINDINGS, "inspect", "%s@%s: %s", rec->name, rec->version,
			      art_error_last());
		goto cleanup;
	}
	rc = show == SHOW_PROVENANCE ? write_all(envelope, envelope_len)
				     : write_all(statement, statement_len);
cleanup:
	free(bytes);
	free(envelope);
	free(statement);
	art_manifest_free(m);
	art_verified_artifact_free(va);
	art_store_record_free(rec);
	return rc;
}

int cmd_inspect(int argc, char **argv)
{
	store_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_store_record *rec = NULL;
	art_manifest *m = NULL;
	art_verified_artifact *va = NULL;
	json_t *root = NULL, *parts = NULL, *prov = NULL, *keyids = NULL,
	       *attestation_keyids = NULL;
	char name[128], verify_msg[1024] = "";
	const char *version;
	int done, rc, verified = -1;
	size_t i;

	if ((rc = parse_args(&a, argc, argv, OPT_STORE | OPT_KEYRING | OPT_JSON | OPT_SHOW,
			     inspect_usage, &done)) || done)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(argv[0], "expected exactly one NAME[@VERSION]");
	if (a.show && a.json)
		return cli_usage_error(argv[0], "--json does not go with --provenance, --statement "
				       "or --sbom (they print JSON documents as they are)");
	split_ref(name, sizeof(name), argv[optind], &version);
	if ((rc = open_store(&s, argv[0], a.store, ART_STORE_RDONLY)) != CLI_OK)
		return rc;
	if (a.keyring && (rc = load_keyring(&kr, argv[0], a.keyring)) != CLI_OK)
		goto cleanup;
	if (a.show) {
		rc = inspect_show(s, kr, name, version, a.show);
		goto cleanup;
	}
	if ((rc = art_store_get_artifact(&rec, s, name, version)) < 0) {
		rc = cli_fail(exit_for(rc), argv[0], "%s", art_error_last());
		goto cleanup;
	}
	if ((rc = art_manifest_parse(&m, rec->manifest, rec->manifest_len)) < 0) {
		rc = cli_fail(CLI_FINDINGS, argv[0], "%s@%s: %s", rec->name, rec->version,
			      art_error_last());
		goto cleanup;
	}
	if (kr) {
		verified = art_store_load_verified(&va, s, kr, rec->name, rec->version,
						   art_time_now()) == 0;
		if (!verified)
			snprintf(verify_msg, sizeof(verify_msg), "%s", art_error_last());
	}
	keyids = envelope_keyids(rec->envelope, rec->envelope_len);
	{
		char *att = NULL;
		size_t att_len = 0;

		if (art_store_get_attestation(&att, &att_len, s, rec->name, rec->version) == 0)
			attestation_keyids = envelope_keyids(att, att_len);
		free(att);
		art_error_clear();
	}
	parts = json_array();
	for (i = 0; i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];
		art_blob_info bi;
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(p->name));
		json_object_set_new(o, "digest", json_string(p->digest));
		json_object_set_new(o, "media_type", json_string(p->media_type));
		json_object_set_new(o, "size", json_integer((json_int_t)p->size));
		if (p->compat_id)
			json_object_set_new(o, "compat_id", json_string(p->compat_id));
		if (art_store_blob_info(&bi, s, p->digest + 7) == 0) {
			json_object_set_new(o, "stored_size", json_integer((json_int_t)bi.stored_size));
			json_object_set_new(o, "compressed", json_boolean(bi.compressed));
			json_object_set_new(o, "dict_id", json_integer(bi.dict_id));
		} else {
			json_object_set_new(o, "stored_size", json_null());
			json_object_set_new(o, "error", json_string(art_error_last()));
		}
		json_array_append_new(parts, o);
	}
	{
		const art_manifest_part *pp = art_manifest_part_get(m, ART_PART_PROVENANCE);
		uint8_t *bytes = NULL;
		size_t len = 0;

		if (pp && art_store_get_blob(&bytes, &len, s, pp->digest + 7) == 0)
			prov = json_loadb((const char *)bytes, len, 0, NULL);
		free(bytes);
	}

	if (a.json) {
		root = json_object();
		json_object_set_new(root, "name", json_string(rec->name));
		json_object_set_new(root, "version", json_string(rec->version));
		json_object_set_new(root, "manifest_digest", json_string(rec->manifest_digest));
		json_object_set_new(root, "manifest", json_loadb(rec->manifest, rec->manifest_len, 0,
								 NULL));
		json_object_set_new(root, "signatures", keyids);
		keyids = NULL;
		json_object_set_new(root, "verified", verified < 0 ? json_null()
								   : json_boolean(verified));
		if (verified == 0)
			json_object_set_new(root, "verify_error", json_string(verify_msg));
		json_object_set_new(root, "parts", parts);
		parts = NULL;
		json_object_set_new(root, "provenance", prov ? prov : json_null());
		prov = NULL;
		json_object_set_new(root, "attestation_signatures",
				    attestation_keyids ? attestation_keyids : json_null());
		attestation_keyids = NULL;
		print_json(root);
		root = NULL;
	} else {
		json_t *o;

		printf("%s@%s\n", rec->name, rec->version);
		printf("  manifest         %s (%zu bytes)\n", rec->manifest_digest, rec->manifest_len);
		json_array_foreach(keyids, i, o)
			printf("  signed by key    %s\n", json_string_value(o));
		if (verified < 0)
			printf("  verification     not checked (pass --keyring FILE)\n");
		else if (verified)
			printf("  verification     OK: builder key %s, every part checked\n",
			       va->signer.keyid);
		else
			printf("  verification     FAILED: %s\n", verify_msg);
		printf("  resolved         %s\n", m->resolved_template_digest);
		printf("  git commit       %s\n", m->git_commit);
		printf("  policy           %s\n", m->policy_digest);
		printf("  toolchain        %s\n", m->toolchain_id);
		printf("  target           %s\n", m->target_triple);
		printf("  native compat    %s\n", m->native_compat_id);
		printf("  guest ABI        %u\n", m->guest_abi_version);
		printf("  capabilities    ");
		for (i = 0; i < m->n_capabilities; i++)
			printf(" %s", m->capabilities[i]);
		if (m->n_hosts) {
			printf("\n  fetch hosts     ");
			for (i = 0; i < m->n_hosts; i++)
				printf(" %s", m->hosts[i]);
		}
		printf("\n  imports         ");
		for (i = 0; i < m->n_imports; i++)
			printf(" %s.%s(%s)", m->imports[i].module, m->imports[i].name, m->imports[i].kind);
		printf("\n  exports         ");
		for (i = 0; i < m->n_exports; i++)
			printf(" %s(%s)", m->exports[i].name, m->exports[i].kind);
		printf("\nparts\n  %-24s %10s %10s %8s  %s\n", "NAME", "SIZE", "STORED", "DICT",
		       "DIGEST");
		json_array_foreach(parts, i, o) {
			json_t *stored = json_object_get(o, "stored_size");
			char dict[16] = "-", stored_text[24] = "MISSING";

			if (json_integer_value(json_object_get(o, "dict_id")))
				snprintf(dict, sizeof(dict), "%08llx", (unsigned long long)
					 json_integer_value(json_object_get(o, "dict_id")));
			if (json_is_integer(stored))
				snprintf(stored_text, sizeof(stored_text), "%lld",
					 (long long)json_integer_value(stored));
			printf("  %-24s %10lld %10s %8s  %s\n",
			       json_string_value(json_object_get(o, "name")),
			       (long long)json_integer_value(json_object_get(o, "size")), stored_text,
			       dict, json_string_value(json_object_get(o, "digest")));
		}
		if (prov)
			print_provenance(prov);
		if (attestation_keyids) {
			printf("attestation (%s, detached)\n", ART_SIG_TYPE_INTOTO);
			json_array_foreach(attestation_keyids, i, o)
				printf("  signed by key    %s\n", json_string_value(o));
			printf("  print it with    agentfactory inspect --provenance %s@%s\n",
			       rec->name, rec->version);
		} else {
			printf("attestation        none (built by an older version)\n");
		}
	}
	rc = verified == 0 ? CLI_FINDINGS : CLI_OK;
cleanup:
	json_decref(root);
	json_decref(parts);
	json_decref(prov);
	json_decref(keyids);
	json_decref(attestation_keyids);
	art_verified_artifact_free(va);
	art_manifest_free(m);
	art_store_record_free(rec);
	art_keyring_free(kr);
	art_store_close(s);
	return rc;
}

/* ---- verify -------------------------------------------------------------- */

static void verify_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory verify --store DIR --keyring FILE [--json]\n\n"
		"Verifies every artifact of a store the way the runtime does before loading:\n"
		"the builder signature (a key trusted as 'builder' in FILE, valid now), that it\n"
		"signs exactly the stored manifest, that the manifest is stored under its own\n"
		"name@version, that every part is present and decompresses to bytes with\n"
		"its digest and size, and the provenance attestation when there is one (its\n"
		"builder signature, subjects and statement). Prints one line per artifact;\n"
		"failures give the reason.\n\n"
		"options:\n"
		"  --store DIR     the store directory (env AF_STORE)\n"
		"  --keyring FILE  the trusted keys (env AF_KEYRING)\n"
		"  --json          {\"ok\": N, \"failed\": N, \"artifacts\": [{name, version,\n"
		"                  ok, error}]}\n"
		"  -h, --help      this help\n\n"
		"exit codes: 0 every artifact verified, 1 at least one failed, 2 usage error,\n"
		"            unreadable store or keyring\n");
}

typedef struct verify_ctx {
	json_t *arr; /* --json */
} verify_ctx;

static void verify_cb(void *ctx, const char *name, const char *version, int rc,
		      const char *reason)
{
	verify_ctx *v = ctx;

	if (v->arr) {
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "version", json_string(version));
		json_object_set_new(o, "ok", json_boolean(rc == 0));
		if (rc)
			json_object_set_new(o, "error", json_string(reason));
		json_array_append_new(v->arr, o);
		return;
	}
	if (rc == 0)
		printf("ok    %s@%s\n", name, version);
	else
		printf("FAIL  %s@%s: %s (%s)\n", name, version, reason, art_strerror(rc));
}

int cmd_verify(int argc, char **argv)
{
	store_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	verify_ctx v = {NULL};
	size_t ok = 0, failed = 0;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, OPT_STORE | OPT_KEYRING | OPT_JSON, verify_usage,
			     &done)) || done)
		return rc;
	if (optind != argc)
		return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if (!a.keyring)
		return cli_usage_error(argv[0], "--keyring FILE (or AF_KEYRING) is required");
	if ((rc = load_keyring(&kr, argv[0], a.keyring)) != CLI_OK)
		return rc;
	if ((rc = open_store(&s, argv[0], a.store, ART_STORE_RDONLY)) != CLI_OK)
		goto cleanup;
	if (a.json)
		v.arr = json_array();
	rc = art_store_verify_all(s, kr, art_time_now(), verify_cb, &v, &ok, &failed);
	if (rc < 0 && rc != AF_ESIGNATURE) {
		rc = cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	if (a.json) {
		json_t *root = json_object();

		json_object_set_new(root, "store", json_string(a.store));
		json_object_set_new(root, "ok", json_integer((json_int_t)ok));
		json_object_set_new(root, "failed", json_integer((json_int_t)failed));
		json_object_set_new(root, "artifacts", v.arr);
		v.arr = NULL;
		print_json(root);
	} else {
		printf("%zu verified, %zu failed\n", ok, failed);
	}
	rc = failed ? CLI_FINDINGS : CLI_OK;
cleanup:
	json_decref(v.arr);
	art_store_close(s);
	art_keyring_free(kr);
	return rc;
}

/* ---- export -------------------------------------------------------------- */

static void export_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory export --store DIR --out FILE [--signatures FILE]\n"
		"                           [NAME[@VERSION]...]\n\n"
		"Writes a self-contained, signed bundle: an OCI image layout (oci-layout,\n"
		"index.json, blobs/sha256/...) in a tar file, holding each artifact's manifest\n"
		"and parts, plus detached signatures (signatures/: the builder envelope and the\n"
		"provenance attestation of each artifact). Without NAMEs, every artifact; NAME\n"
		"alone means its latest version. Everything a digest names is reproducible:\n"
		"two builds of the same commit export the same content digest (printed; the\n"
		"digest of index.json). With --signatures the signatures go to that second\n"
		"file and the bundle file itself is byte-identical between such builds.\n"
		"Written atomically. Import it elsewhere with 'agentfactory import'.\n\n"
		"options:\n"
		"  --store DIR        the store directory (env AF_STORE)\n"
		"  --out FILE         the bundle to write\n"
		"  --signatures FILE  write the detached signatures to FILE, not the bundle\n"
		"  -h, --help         this help\n\n"
		"exit codes: 0 written, 1 an artifact is missing or damaged, 2 usage or I/O\n"
		"            error\n");
}

int cmd_export(int argc, char **argv)
{
	store_args a;
	art_store *s = NULL;
	art_bundle_stats st;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, OPT_STORE | OPT_OUT | OPT_SIGS, export_usage,
			     &done)) || done)
		return rc;
	if (!a.out)
		return cli_usage_error(argv[0], "--out FILE is required");
	if ((rc = open_store(&s, argv[0], a.store, ART_STORE_RDONLY)) != CLI_OK)
		return rc;
	rc = art_bundle_export_ex(&st, s, a.out, a.signatures, (const char *const *)argv + optind,
				  (size_t)(argc - optind));
	if (rc < 0) {
		rc = cli_fail(exit_for(rc), argv[0], "%s", art_error_last());
	} else {
		char size[32];

		human_size(size, st.bytes);
		printf("exported %zu artifact%s (%zu blobs, %s) to %s\n", st.artifacts,
		       st.artifacts == 1 ? "" : "s", st.blobs, size, a.out);
		printf("content digest %s\n", st.content_digest);
		if (a.signatures)
			printf("signatures in %s\n", a.signatures);
		rc = CLI_OK;
	}
	art_store_close(s);
	return rc;
}

/* ---- import -------------------------------------------------------------- */

static void import_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory import --store DIR --keyring FILE [--signatures FILE] BUNDLE\n\n"
		"Imports a bundle written by 'agentfactory export'. The whole bundle is checked\n"
		"before anything is written: a strict tar reader (no links, devices, absolute\n"
		"paths or '..'), every blob against its digest, every artifact's builder\n"
		"signature against FILE and every part against its signed manifest. Then all\n"
		"artifacts are written in one transaction. One bad artifact refuses the whole\n"
		"bundle and the store is left unchanged. DIR is created if missing.\n"
		"Provenance attestations in the bundle are verified and imported too. Tars\n"
		"written by other tools (POSIX pax, GNU) and nested OCI indexes are read.\n\n"
		"options:\n"
		"  --store DIR         the store directory (env AF_STORE)\n"
		"  --keyring FILE      the trusted keys (env AF_KEYRING)\n"
		"  --signatures FILE   the detached signatures ('export --signatures')\n"
		"  -h, --help          this help\n\n"
		"exit codes: 0 imported, 1 bundle refused (tampered, unsigned, untrusted,\n"
		"            malformed), 2 usage error, unreadable bundle, store or keyring\n");
}

int cmd_import(int argc, char **argv)
{
	store_args a;
	art_store *s = NULL;
	art_keyring *kr = NULL;
	art_bundle_stats st;
	struct stat sb;
	int done, rc;

	if ((rc = parse_args(&a, argc, argv, OPT_STORE | OPT_KEYRING | OPT_SIGS, import_usage,
			     &done)) || done)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(argv[0], "expected exactly one BUNDLE file");
	if (!a.keyring)
		return cli_usage_error(argv[0], "--keyring FILE (or AF_KEYRING) is required");
	if (stat(argv[optind], &sb) != 0 || !S_ISREG(sb.st_mode))
		return cli_fail(CLI_USAGE, argv[0], "%s: not a readable file", argv[optind]);
	if ((rc = load_keyring(&kr, argv[0], a.keyring)) != CLI_OK)
		return rc;
	if ((rc = open_store(&s, argv[0], a.store, ART_STORE_CREATE)) != CLI_OK)
		goto cleanup;
	rc = art_bundle_import_ex(&st, s, kr, art_time_now(), argv[optind], a.signatures);
	if (rc < 0) {
		rc = cli_fail(exit_for(rc), argv[0], "%s", art_error_last());
		goto cleanup;
	}
	printf("imported %zu artifact%s (%zu with a provenance attestation) from %s into %s\n",
	       st.artifacts, st.artifacts == 1 ? "" : "s", st.attestations, argv[optind], a.store);
	rc = CLI_OK;
cleanup:
	art_store_close(s);
	art_keyring_free(kr);
	return rc;
}
