/*
 * cmd_build.c - `agentfactory build`: templates at a git revision -> signed,
 * precompiled artifacts in the store.
 */
#include "cli.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/util.h"
#include "pipe/build.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void build_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory build --repo DIR [--rev REV] --keyring FILE --builder-key KEY\n"
		"                          --store DIR [-j N] [--policies DIR] [--dir SUBDIR]\n"
		"                          [--keep-workdir] [--json] [--builder-id URI]\n"
		"                          [--source-uri URI] [--metrics-file F] [--all-or-nothing]\n\n"
		"Runs the front end (signatures, schema, inheritance, policy) on revision REV\n"
		"of the git repository DIR and builds nothing if it has a finding. Then every\n"
		"concrete template becomes generated C -> WebAssembly (clang, wasm32-wasi) ->\n"
		"native code (wasm2c + cc), its imports checked against the capabilities the\n"
		"policy grants; the parts, the manifest, its SLSA provenance and the builder's\n"
		"signature are stored zstd-compressed in the LMDB store, all in one\n"
		"transaction. Unchanged agents (same resolved template, toolchain and policy)\n"
		"are cache hits and are not compiled.\n\n"
		"options:\n"
		"  --repo DIR          git repository (bare or not)\n"
		"  --rev REV           revision (default HEAD)\n"
		"  --keyring FILE      trusted keys (env AF_KEYRING); must trust the builder key\n"
		"  --builder-key KEY   private key that signs the manifests (env AF_BUILDER_KEY)\n"
		"  --store DIR         artifact store, created if missing (env AF_STORE)\n"
		"  -j, --jobs N        parallel workers (default: number of CPUs)\n"
		"  --policies DIR      policy directory (env AF_POLICIES)\n"
		"  --dir SUBDIR        template folder inside the repository\n"
		"  --keep-workdir      keep generated sources and objects, print where\n"
		"  --builder-id URI    provenance builder id (default: env AF_BUILDER_ID, the\n"
		"                      GitHub workflow or GitLab CI config, else a local id)\n"
		"  --source-uri URI    provenance source (default: the CI's repository URL,\n"
		"                      else the origin remote; never a local path)\n"
		"  --all-or-nothing    store nothing if any template or agent fails (default:\n"
		"                      store every agent that built, report the others, exit 1)\n"
		"  --json              machine-readable report on stdout\n"
		"  --metrics-file F    write the build's metrics to F in the Prometheus text\n"
		"                      format (node_exporter textfile collector; replaced\n"
		"                      atomically): stage durations, cache hits, built/failed\n"
		"  -h, --help          this help\n\n"
		"Toolchain: WASI_SDK_PATH (wasi-sdk layout) if set, else Debian's clang-19,\n"
		"wasm-ld-19, wasi-libc; wasm2c and wasm-validate from wabt; the host cc.\n\n"
		"exit codes: 0 built (or nothing to do), 1 findings or a failed agent (the\n"
		"            others stored; nothing with --all-or-nothing; a refused rebuild\n"
		"            of a released version), 2 usage error,\n"
		"            unreadable input, toolchain or store error, 3 a damaged store file\n");
}

static const char *status_name(pipe_build_status s)
{
	switch (s) {
	case PIPE_BUILD_CACHED: return "cached";
	case PIPE_BUILD_BUILT: return "built";
	default: return "failed";
	}
}

static void print_json(const pipe_build_report *rep)
{
	json_t *root = json_object(), *arr = json_array();
	char *s;
	size_t i;

	for (i = 0; i < rep->n; i++) {
		const pipe_build_item *it = &rep->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{s:f, s:f, s:f, s:f, s:f}}",
				      "name", it->name, "version", it->version, "status",
				      status_name(it->status), "resolved_digest", it->resolved_digest,
				      "wasm_size", (json_int_t)it->wasm_size,
				      "native_size", (json_int_t)it->native_size,
				      "source_size", (json_int_t)it->source_size, "times_ms",
				      "codegen", it->times.codegen_ms, "wasm", it->times.wasm_ms,
				      "wasm2c", it->times.wasm2c_ms, "native", it->times.native_ms,
				      "total", it->times.total_ms);
		if (!o)
			continue;
		if (it->manifest_digest[0])
			json_object_set_new(o, "manifest_digest", json_string(it->manifest_digest));
		if (it->error)
			json_object_set_new(o, "error", json_string(it->error));
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "ok", json_boolean(!rep->frontend_failed && rep->n_failed == 0));
	json_object_set_new(root, "commit", rep->fe->source->commit ?
					      json_string(rep->fe->source->commit) : json_null());
	if (rep->toolchain_id)
		json_object_set_new(root, "toolchain_id", json_string(rep->toolchain_id));
	json_object_set_new(root, "built", json_integer((json_int_t)rep->n_built));
	json_object_set_new(root, "cached", json_integer((json_int_t)rep->n_cached));
	json_object_set_new(root, "failed", json_integer((json_int_t)rep->n_failed));
	json_object_set_new(root, "skipped", json_integer((json_int_t)rep->n_skipped));
	json_object_set_new(root, "stored", json_boolean(rep->stored));
	json_object_set_new(root, "jobs", json_integer(rep->jobs));
	json_object_set_new(root, "total_ms", json_real(rep->total_ms));
	json_object_set_new(root, "compile_ms", json_real(rep->compile_ms));
	json_object_set_new(root, "agents", arr);
	json_object_set_new(root, "findings", pipe_diags_to_json(&rep->fe->diags));
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(root);
}

static void print_text(const pipe_build_report *rep)
{
	size_t i;

	if (rep->frontend_failed) {
		pipe_diags_print(&rep->fe->diags, stdout);
		if (!rep->n_skipped) {
			printf("front end failed: nothing built (run 'agentfactory check' for the "
			       "full report)\n");
			return;
		}
		printf("%zu template(s) left out for the findings above; building the others\n",
		       rep->n_skipped);
	}
	for (i = 0; i < rep->n; i++) {
		const pipe_build_item *it = &rep->items[i];
		printf("  %-6s  %s@%s", status_name(it->status), it->name, it->version);
		if (it->status == PIPE_BUILD_BUILT)
			printf("  wasm %zu B, native %zu B", it->wasm_size, it->native_size);
		if (it->manifest_digest[0])
			printf("  %.19s", it->manifest_digest);
		if (it->error)
			printf("\n          %s", it->error);
		putchar('\n');
	}
	if (rep->workdir)
		printf("work directory kept: %s\n", rep->workdir);
	if ((rep->n_failed || rep->frontend_failed) && !rep->stored)
		printf("%zu agents failed, %zu template(s) left out: nothing stored\n",
		       rep->n_failed, rep->n_skipped);
	else if (rep->n_failed || rep->frontend_failed)
		printf("%zu built and stored, %zu unchanged; %zu agents failed and %zu template(s) "
		       "left out (not stored), in %.1f s (-j %u)\n", rep->n_built, rep->n_cached,
		       rep->n_failed, rep->n_skipped, rep->total_ms / 1000.0, rep->jobs);
	else
		printf("%zu built, %zu unchanged, in %.1f s (-j %u)\n", rep->n_built, rep->n_cached,
		       rep->total_ms / 1000.0, rep->jobs);
}

/* A label value: our names are [a-z0-9-] and versions semver, but escape anyway. */
static int put_label(art_buf *b, const char *v)
{
	int rc = 0;

	for (; v && *v && rc == 0; v++)
		rc = (*v == '\\' || *v == '"') ? art_buf_printf(b, "\\%c", *v)
		     : *v == '\n'               ? art_buf_puts(b, "\\n")
						: art_buf_append(b, v, 1);
	return rc;
}

/*
 * The textfile-collector view of a build: what the last run did and how
 * long each stage took. Gauges (each run replaces the file): a collector
 * scrapes the last build, and the timestamp tells how old it is.
 */
static int write_metrics(const char *path, const pipe_build_report *rep, time_t now)
{
	static const char *const stages[] = {"codegen", "wasm", "wasm2c", "native"};
	art_buf b = ART_BUF_INIT;
	double stage_s[4] = {0, 0, 0, 0};
	size_t i, k;
	int rc;

	for (i = 0; i < rep->n; i++) {
		const gen_stage_times *t = &rep->items[i].times;
		stage_s[0] += t->codegen_ms / 1e3;
		stage_s[1] += t->wasm_ms / 1e3;
		stage_s[2] += t->wasm2c_ms / 1e3;
		stage_s[3] += t->native_ms / 1e3;
	}
	rc = art_buf_printf(&b,
		"# HELP agentfactory_build_last_run_timestamp_seconds When the last build ran (Unix time).\n"
		"# TYPE agentfactory_build_last_run_timestamp_seconds gauge\n"
		"agentfactory_build_last_run_timestamp_seconds %lld\n"
		"# HELP agentfactory_build_success 1 when the last build stored its agents, 0 when a finding or a failed agent stopped it.\n"
		"# TYPE agentfactory_build_success gauge\n"
		"agentfactory_build_success %d\n"
		"# HELP agentfactory_build_duration_seconds Wall time of the last build.\n"
		"# TYPE agentfactory_build_duration_seconds gauge\n"
		"agentfactory_build_duration_seconds %.6f\n"
		"# HELP agentfactory_build_compile_seconds Time the last build spent compiling (all workers).\n"
		"# TYPE agentfactory_build_compile_seconds gauge\n"
		"agentfactory_build_compile_seconds %.6f\n"
		"# HELP agentfactory_build_agents Agents of the last build, by result (built, cached: a cache hit, failed).\n"
		"# TYPE agentfactory_build_agents gauge\n"
		"agentfactory_build_agents{result=\"built\"} %zu\n"
		"agentfactory_build_agents{result=\"cached\"} %zu\n"
		"agentfactory_build_agents{result=\"failed\"} %zu\n"
		"# HELP agentfactory_build_cache_hits Agents of the last build served from the cache (nothing compiled).\n"
		"# TYPE agentfactory_build_cache_hits gauge\n"
		"agentfactory_build_cache_hits %zu\n"
		"# HELP agentfactory_build_jobs Parallel workers of the last build.\n"
		"# TYPE agentfactory_build_jobs gauge\n"
		"agentfactory_build_jobs %u\n"
		"# HELP agentfactory_build_stage_seconds Time of each stage in the last build, summed over its agents.\n"
		"# TYPE agentfactory_build_stage_seconds gauge\n",
		(long long)now, !rep->frontend_failed && rep->n_failed == 0, rep->total_ms / 1e3,
		rep->compile_ms / 1e3, rep->n_built, rep->n_cached, rep->n_failed, rep->n_cached,
		rep->jobs);
	for (k = 0; k < 4 && rc == 0; k++)
		rc = art_buf_printf(&b, "agentfactory_build_stage_seconds{stage=\"%s\"} %.6f\n",
				    stages[k], stage_s[k]);
	if (rc == 0)
		rc = art_buf_puts(&b, "# HELP agentfactory_build_agent_seconds Build time of each agent "
				      "compiled by the last build.\n"
				      "# TYPE agentfactory_build_agent_seconds gauge\n");
	for (i = 0; i < rep->n && rc == 0; i++) {
		const pipe_build_item *it = &rep->items[i];

		if (it->status != PIPE_BUILD_BUILT)
			continue;
		rc = art_buf_puts(&b, "agentfactory_build_agent_seconds{agent=\"");
		if (rc == 0)
			rc = put_label(&b, it->name);
		if (rc == 0)
			rc = art_buf_puts(&b, "\",version=\"");
		if (rc == 0)
			rc = put_label(&b, it->version);
		if (rc == 0)
			rc = art_buf_printf(&b, "\"} %.6f\n", it->times.total_ms / 1e3);
	}
	if (rc == 0)
		rc = art_file_write_atomic(path, b.data, b.len, 0644);
	else
		art_error_set(AF_ENOMEM, "out of memory");
	art_buf_free(&b);
	return rc;
}

int cmd_build(int argc, char **argv)
{
	static const struct option opts[] = {
		{"repo", required_argument, NULL, 'r'}, {"rev", required_argument, NULL, 'R'},
		{"keyring", required_argument, NULL, 'k'}, {"builder-key", required_argument, NULL, 'b'},
		{"store", required_argument, NULL, 's'}, {"jobs", required_argument, NULL, 'j'},
		{"policies", required_argument, NULL, 'p'}, {"dir", required_argument, NULL, 'd'},
		{"keep-workdir", no_argument, NULL, 'K'}, {"json", no_argument, NULL, 'J'},
		{"builder-id", required_argument, NULL, 'B'},
		{"source-uri", required_argument, NULL, 'U'},
		{"metrics-file", required_argument, NULL, 'M'},
		{"all-or-nothing", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *keyring_path = NULL, *key_path = NULL, *store = NULL, *policies = NULL;
	const char *metrics_file = NULL;
	pipe_build_opts o;
	pipe_build_report *rep = NULL;
	art_keyring *kr = NULL;
	art_key *key = NULL;
	pipe_policy *pol = NULL;
	pipe_diags pd = PIPE_DIAGS_INIT;
	int c, rc, brc, json = 0;
	char *end;
	long jobs;

	memset(&o, 0, sizeof(o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'r': o.repo = optarg; break;
		case 'R': o.rev = optarg; break;
		case 'k': keyring_path = optarg; break;
		case 'b': key_path = optarg; break;
		case 's': store = optarg; break;
		case 'p': policies = optarg; break;
		case 'd': o.subdir = optarg; break;
		case 'K': o.keep_workdir = true; break;
		case 'B': o.builder_id = optarg; break;
		case 'U': o.source_uri = optarg; break;
		case 'A': o.all_or_nothing = true; break;
		case 'J': json = 1; break;
		case 'M': metrics_file = optarg; break;
		case 'j':
			jobs = strtol(optarg, &end, 10);
			if (*end || jobs < 1 || jobs > 256)
				return cli_usage_error("build", "-j needs a number from 1 to 256, not '%s'", optarg);
			o.jobs = (unsigned)jobs;
			break;
		case 'h': build_usage(stdout); return CLI_OK;
		default:
			return cli_usage_error("build", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("build", "unexpected argument '%s'", argv[optind]);
	keyring_path = cli_flag_or_env(keyring_path, "AF_KEYRING");
	key_path = cli_flag_or_env(key_path, "AF_BUILDER_KEY");
	store = cli_flag_or_env(store, "AF_STORE");
	if (!o.repo)
		return cli_usage_error("build", "--repo DIR is required");
	if (!keyring_path)
		return cli_usage_error("build", "--keyring FILE (or AF_KEYRING) is required");
	if (!key_path)
		return cli_usage_error("build", "--builder-key KEY (or AF_BUILDER_KEY) is required");
	if (!store)
		return cli_usage_error("build", "--store DIR (or AF_STORE) is required");
	policies = cli_default_policies(policies);
	rc = CLI_USAGE;
	if (art_keyring_load(&kr, keyring_path) < 0 || art_key_load_private(&key, key_path) < 0) {
		cli_fail(CLI_USAGE, "build", "%s", art_error_last());
		goto cleanup;
	}
	if (pipe_policy_load_dir(&pol, policies, &pd) < 0) {
		pipe_diags_print(&pd, stderr);
		cli_fail(CLI_USAGE, "build", "cannot load policies from %s: %s", policies, art_error_last());
		goto cleanup;
	}
	o.keyring = kr;
	o.policy = pol;
	o.builder_key = key;
	o.store_dir = store;
	o.now = art_time_now();
	o.progress = stderr;
	o.progress_tty = isatty(STDERR_FILENO);
	if ((brc = pipe_build_run(&rep, &o)) < 0) {
		/* A refused rebuild of a released version (immutable) is a refusal,
		 * exit 1 like every other refused operation; not a usage error. */
		rc = cli_fail(CLI_EXIT_FOR_STORE(brc, brc == AF_EEXISTS ? CLI_FINDINGS : CLI_USAGE),
			      "build", "%s", art_error_last());
		goto cleanup;
	}
	if (json)
		print_json(rep);
	else
		print_text(rep);
	rc = (rep->frontend_failed || rep->n_failed) ? CLI_FINDINGS : CLI_OK;
	if (metrics_file && write_metrics(metrics_file, rep, o.now) < 0)
		rc = cli_fail(CLI_USAGE, "build", "--metrics-file %s: %s", metrics_file,
			      art_error_last());
	if (cli_checkpoint("build", store, key) != 0)
		rc = CLI_USAGE;
cleanup:
	pipe_build_report_free(rep);
	pipe_diags_free(&pd);
	pipe_policy_free(pol);
	art_key_free(key);
	art_keyring_free(kr);
	return rc;
}
