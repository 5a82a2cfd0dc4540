/*
 * cmd_repro.c - `agentfactory verify-reproducible`: rebuild a revision from
 * scratch into a temporary store and compare what comes out with a
 * reference (a store, or a bundle) digest by digest.
 *
 * What must be identical: every artifact's canonical manifest (which names
 * every part, the SBOM and the provenance statement by digest) and, for a
 * bundle, its content digest (index.json, which names every OCI manifest
 * and so every blob). What may differ: the signatures (RSA-PSS is
 * randomised) and the detached attestations (they carry the run's times),
 * which is why neither is inside anything a digest names.
 */
#include "cmd_repro.h"
#include "cli.h"

#include "art/bundle.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"
#include "pipe/build.h"
#include "pipe/policy.h"

#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void repro_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory verify-reproducible --repo DIR [--rev REV] --keyring FILE\n"
		"           --builder-key KEY (--store DIR | --bundle FILE [--signatures FILE])\n"
		"           [--policies DIR] [--dir SUBDIR] [--source-uri URI]\n"
		"           [--builder-id URI] [--json]\n\n"
		"Rebuilds revision REV of the repository from scratch (a temporary store, no\n"
		"build cache) and compares every artifact with the reference: the artifacts\n"
		"of that name@version in the store DIR, or in the bundle FILE (verified with\n"
		"the keyring first). Identical means the same manifest digest, and so the\n"
		"same wasm, native code, C source, SBOM and provenance statement; for a\n"
		"different artifact the parts that differ are named. With --bundle, the\n"
		"rebuilt artifacts are exported too and the bundle content digests (digest of\n"
		"index.json: everything but the detached signatures) compared. Signatures\n"
		"are never compared: RSA-PSS signatures differ on every signing.\n"
		"Give the same --source-uri / --builder-id as the reference build (their\n"
		"defaults come from the same environment variables, docs/provenance.md).\n\n"
		"options:\n"
		"  --repo DIR          git repository (bare or not)\n"
		"  --rev REV           revision (default HEAD)\n"
		"  --keyring FILE      trusted keys (env AF_KEYRING)\n"
		"  --builder-key KEY   key for the rebuild's signatures (env AF_BUILDER_KEY)\n"
		"  --store DIR         reference store\n"
		"  --bundle FILE       reference bundle ('agentfactory export')\n"
		"  --signatures FILE   the bundle's detached signatures, if exported apart\n"
		"  --policies DIR      policy directory (env AF_POLICIES)\n"
		"  --dir SUBDIR        template folder inside the repository\n"
		"  --source-uri URI    as for build\n"
		"  --builder-id URI    as for build\n"
		"  --json              machine-readable report\n"
		"  -h, --help          this help\n\n"
		"exit codes: 0 everything identical, 1 something differs or is missing, or the\n"
		"            rebuild failed, 2 usage error, unreadable repository, store, key\n");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *dir)
{
	if (dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* sha256 of index.json inside a bundle file, "" when unreadable. */
static int bundle_content_digest(char out[ART_DIGEST_STR_LEN + 1], const char *path)
{
	art_tar_entry *e = NULL;
	char *data = NULL;
	size_t len = 0, n = 0, i;
	int rc;

	out[0] = '\0';
	if ((rc = art_file_read(&data, &len, path, ART_BUNDLE_MAX)) < 0)
		return rc;
	if ((rc = art_bundle_tar_read(&e, &n, data, len, ART_BUNDLE_MAX_ENTRIES)) == 0) {
		rc = art_error_set(AF_ECORRUPT, "%s has no index.json", path);
		for (i = 0; i < n; i++)
			if (!strcmp(e[i].path, "index.json")) {
				art_manifest_digest(out, e[i].data, e[i].size);
				rc = 0;
			}
	}
	art_bundle_tar_free(e, n);
	free(data);
	return rc;
}

/* The part names whose digests differ between two manifests, comma-separated. */
static void differing_parts(char *out, size_t size, const art_store_record *a,
			    const art_store_record *b)
{
	art_manifest *ma = NULL, *mb = NULL;
	size_t i, used = 0;

	out[0] = '\0';
	if (art_manifest_parse(&ma, a->manifest, a->manifest_len) < 0 ||
	    art_manifest_parse(&mb, b->manifest, b->manifest_len) < 0) {
		snprintf(out, size, "(unparsable manifest)");
		goto cleanup;
	}
	for (i = 0; i < ma->n_parts && used + 1 < size; i++) {
		const art_manifest_part *other = art_manifest_part_get(mb, ma->parts[i].name);

		if (!other || strcmp(other->digest, ma->parts[i].digest) != 0)
			used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "",
						 ma->parts[i].name);
	}
	if (!out[0])
		snprintf(out, size, "manifest fields only (toolchain, policy, commit, ...)");
cleanup:
	art_manifest_free(ma);
	art_manifest_free(mb);
}

int cmd_verify_reproducible(int argc, char **argv)
{
	static const struct option opts[] = {
		{"repo", required_argument, NULL, 'r'}, {"rev", required_argument, NULL, 'R'},
		{"keyring", required_argument, NULL, 'k'}, {"builder-key", required_argument, NULL, 'b'},
		{"store", required_argument, NULL, 's'}, {"bundle", required_argument, NULL, 'B'},
		{"signatures", required_argument, NULL, 'g'},
		{"policies", required_argument, NULL, 'p'}, {"dir", required_argument, NULL, 'd'},
		{"source-uri", required_argument, NULL, 'U'}, {"builder-id", required_argument, NULL, 'I'},
		{"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *keyring_path = NULL, *key_path = NULL, *ref_store = NULL, *bundle = NULL,
		   *signatures = NULL, *policies = NULL;
	char tmp[] = "/tmp/af-repro-XXXXXX", rebuilt_dir[64], ref_dir[64], rebuilt_bundle[96];
	char ref_digest[ART_DIGEST_STR_LEN + 1] = "", new_digest[ART_DIGEST_STR_LEN + 1] = "";
	pipe_build_opts o;
	pipe_build_report *rep = NULL;
	art_keyring *kr = NULL;
	art_key *key = NULL;
	pipe_policy *pol = NULL;
	pipe_diags pd = PIPE_DIAGS_INIT;
	art_store *rebuilt = NULL, *reference = NULL;
	art_store_entry *list = NULL;
	size_t n = 0, i, identical = 0, different = 0, missing = 0;
	json_t *report = NULL, *items = NULL;
	bool made_tmp = false;
	int c, rc, json = 0;

	memset(&o, 0, sizeof(o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': o.repo = optarg; break;
		case 'R': o.rev = optarg; break;
		case 'k': keyring_path = optarg; break;
		case 'b': key_path = optarg; break;
		case 's': ref_store = optarg; break;
		case 'B': bundle = optarg; break;
		case 'g': signatures = optarg; break;
		case 'p': policies = optarg; break;
		case 'd': o.subdir = optarg; break;
		case 'U': o.source_uri = optarg; break;
		case 'I': o.builder_id = optarg; break;
		case 'J': json = 1; break;
		case 'h': repro_usage(stdout); return CLI_OK;
		default:
			return cli_usage_error(argv[0], "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	keyring_path = cli_flag_or_env(keyring_path, "AF_KEYRING");
	key_path = cli_flag_or_env(key_path, "AF_BUILDER_KEY");
	if (!o.repo || !keyring_path || !key_path)
		return cli_usage_error(argv[0], "--repo, --keyring and --builder-key are required");
	if (!ref_store == !bundle)
		return cli_usage_error(argv[0], "give one reference: --store DIR or --bundle FILE");
	if (signatures && !bundle)
		return cli_usage_error(argv[0], "--signatures goes with --bundle");
	policies = cli_default_policies(policies);
	rc = CLI_USAGE;
	if (art_keyring_load(&kr, keyring_path) < 0 || art_key_load_private(&key, key_path) < 0) {
		cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	if (pipe_policy_load_dir(&pol, policies, &pd) < 0) {
		pipe_diags_print(&pd, stderr);
		cli_fail(CLI_USAGE, argv[0], "cannot load policies from %s: %s", policies,
			 art_error_last());
		goto cleanup;
	}
	if (!mkdtemp(tmp)) {
		cli_fail(CLI_USAGE, argv[0], "cannot create a temporary directory");
		goto cleanup;
	}
	made_tmp = true;
	snprintf(rebuilt_dir, sizeof(rebuilt_dir), "%s/rebuilt", tmp);
	snprintf(ref_dir, sizeof(ref_dir), "%s/reference", tmp);
	snprintf(rebuilt_bundle, sizeof(rebuilt_bundle), "%s/rebuilt.tar", tmp);

	/* The reference: a store as it is, or a bundle verified into a store. */
	if (bundle) {
		art_bundle_stats st;

		if (bundle_content_digest(ref_digest, bundle) < 0 ||
		    art_store_open(&reference, ref_dir, ART_STORE_CREATE) < 0 ||
		    art_bundle_import_ex(&st, reference, kr, art_time_now(), bundle, signatures) < 0) {
			rc = cli_fail(CLI_FINDINGS, argv[0], "reference bundle: %s", art_error_last());
			goto cleanup;
		}
	} else if (art_store_open(&reference, ref_store, ART_STORE_RDONLY) < 0) {
		cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}

	/* The rebuild: from nothing, like the first time. */
	o.keyring = kr;
	o.policy = pol;
	o.builder_key = key;
	o.store_dir = rebuilt_dir;
	o.now = art_time_now();
	o.progress = json ? NULL : stderr;
	if (pipe_build_run(&rep, &o) < 0) {
		cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	if (rep->frontend_failed || rep->n_failed) {
		rc = cli_fail(CLI_FINDINGS, argv[0], "the rebuild failed (%zu agents failed%s)",
			      rep->n_failed, rep->frontend_failed ? ", front end findings" : "");
		goto cleanup;
	}
	if (art_store_open(&rebuilt, rebuilt_dir, ART_STORE_RDONLY) < 0 ||
	    art_store_list(&list, &n, rebuilt) < 0) {
		cli_fail(CLI_USAGE, argv[0], "%s", art_error_last());
		goto cleanup;
	}
	report = json_object();
	items = json_array();
	for (i = 0; i < n; i++) {
		art_store_record *a = NULL, *b = NULL;
		char diff[512] = "", ref[300];
		const char *verdict;
		json_t *it = json_object();

		snprintf(ref, sizeof(ref), "%s@%s", list[i].name, list[i].version);
		if (art_store_get_artifact(&a, rebuilt, list[i].name, list[i].version) < 0) {
			art_error_clear();
			continue;
		}
		if (art_store_get_artifact(&b, reference, list[i].name, list[i].version) < 0) {
			art_error_clear();
			verdict = "missing";
			missing++;
		} else if (!strcmp(a->manifest_digest, b->manifest_digest)) {
			verdict = "identical";
			identical++;
		} else {
			verdict = "different";
			different++;
			differing_parts(diff, sizeof(diff), a, b);
		}
		if (!json) {
			if (b && strcmp(verdict, "different") == 0)
				printf("different  %s: rebuilt %s, reference %s; differing: %s\n", ref,
				       a->manifest_digest, b->manifest_digest, diff);
			else
				printf("%-10s %s %s\n", verdict, ref, a->manifest_digest);
		}
		json_object_set_new(it, "artifact", json_string(ref));
		json_object_set_new(it, "result", json_string(verdict));
		json_object_set_new(it, "rebuilt_manifest_digest", json_string(a->manifest_digest));
		json_object_set_new(it, "reference_manifest_digest",
				    b ? json_string(b->manifest_digest) : json_null());
		if (diff[0])
			json_object_set_new(it, "differing_parts", json_string(diff));
		json_array_append_new(items, it);
		art_store_record_free(a);
		art_store_record_free(b);
	}
	if (bundle) {
		/* The same selection as the reference bundle: every rebuilt artifact. */
		art_bundle_stats st;
		const char **all = calloc(n + 1, sizeof(*all));
		char (*names)[300] = calloc(n + 1, sizeof(*names));
		int erc = -1;

		if (all && names) {
			for (i = 0; i < n; i++) {
				snprintf(names[i], sizeof(names[i]), "%s@%s", list[i].name,
					 list[i].version);
				all[i] = names[i];
			}
			erc = art_bundle_export(&st, rebuilt, rebuilt_bundle, all, n);
			if (erc == 0)
				snprintf(new_digest, sizeof(new_digest), "%s", st.content_digest);
		}
		free(all);
		free(names);
		if (erc < 0) {
			cli_fail(CLI_USAGE, argv[0], "exporting the rebuild: %s", art_error_last());
			goto cleanup;
		}
	}
	if (!json) {
		printf("%zu identical, %zu different, %zu missing from the reference (of %zu "
		       "rebuilt)\n", identical, different, missing, n);
		if (bundle)
			printf("bundle content %s: reference %s, rebuilt %s\n",
			       strcmp(ref_digest, new_digest) ? "DIFFERENT" : "identical", ref_digest,
			       new_digest);
	} else {
		json_object_set_new(report, "identical", json_integer((json_int_t)identical));
		json_object_set_new(report, "different", json_integer((json_int_t)different));
		json_object_set_new(report, "missing", json_integer((json_int_t)missing));
		json_object_set_new(report, "artifacts", items);
		items = NULL;
		if (bundle) {
			json_object_set_new(report, "reference_content_digest", json_string(ref_digest));
			json_object_set_new(report, "rebuilt_content_digest", json_string(new_digest));
			json_object_set_new(report, "bundle_identical",
					    json_boolean(!strcmp(ref_digest, new_digest)));
		}
		{
			char *text = json_dumps(report, JSON_INDENT(2) | JSON_SORT_KEYS);

			if (text)
				printf("%s\n", text);
			free(text);
		}
	}
	rc = (different || missing || n == 0 || (bundle && strcmp(ref_digest, new_digest)))
		     ? CLI_FINDINGS : CLI_OK;
cleanup:
	json_decref(report);
	json_decref(items);
	art_store_list_free(list, n);
	art_store_close(rebuilt);
	art_store_close(reference);
	pipe_build_report_free(rep);
	pipe_diags_free(&pd);
	pipe_policy_free(pol);
	art_key_free(key);
	art_keyring_free(kr);
	if (made_tmp)
		remove_tree(tmp);
	return rc;
}
