/*
 * cmd_run.c - `agentfactory run`: one invocation of a stored agent through
 * the runtime's own engine (rt/engine.h): the same verification, sealed
 * memfd loading, sandbox, limits and host functions as the server, without
 * the HTTP layer. Prints the response JSON on stdout; the runtime's JSON
 * log lines (guest logs, refusals) go to stderr or --log FILE.
 */
#include "cli.h"

#include "art/error.h"
#include "art/util.h"
#include "rt/engine.h"
#include "rt/kv.h"
#include "rt/llm.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_FILE_MAX ((size_t)64 << 20)
#define RUN_LLM_OPT 1900 /* the --llm-* options: RUN_LLM_OPT + RT_LLM_OPT_* */

static void run_usage(FILE *out)
{
	fprintf(out,
		"usage: agentfactory run --store DIR --keyring FILE NAME[@VERSION]\n"
		"                        (--input JSON | --input-file FILE) [--data DIR]\n"
		"                        [--llm-provider openai|scripted] [--llm-* ...]\n"
		"                        [--timeout-ms N] [--memory-pages N]\n"
		"                        [--kv-set KEY=JSON]... [--log FILE]\n\n"
		"Runs one invocation of agent NAME (its latest version, or VERSION) from the\n"
		"artifact store, exactly as agentfactory-runtime would: the builder signature\n"
		"and every part digest are verified, the native code is loaded from a sealed\n"
		"memfd, and the request runs in a fresh sandboxed instance with the agent's\n"
		"deadline, memory cap and capabilities. Prints the response JSON.\n\n"
		"options:\n"
		"  --store DIR         artifact store, opened read-only (env AF_STORE)\n"
		"  --keyring FILE      trusted keys; must trust the builder (env AF_KEYRING)\n"
		"  --input JSON        the request, e.g. '{\"inputs\":{\"release\":\"r1\"}}'\n"
		"  --input-file FILE   read the request from FILE ('-' for stdin)\n"
		"  --data DIR          writable state: the agents' key-value store (kv_get/kv_put);\n"
		"                      without it the kv tools answer \"unavailable\"\n"
		"  --kv-set KEY=JSON   before the run, store JSON (else the text as a JSON string)\n"
		"                      under KEY in NAME's key-value store (needs --data);\n"
		"                      repeatable. E.g. --kv-set 'releases/r1={\"version\":\"1.4\"}'\n"
		"  --timeout-ms N      hard deadline cap (default 30000; the agent's own\n"
		"                      limits.timeout_ms applies when smaller)\n"
		"  --memory-pages N    memory cap in 64 KiB pages (default 1024)\n"
		"  --log FILE          JSON log lines to FILE instead of stderr\n"
		"  --channel C         run the agent of the release channel C points at (verified\n"
		"                      and pinned, as agentfactory-runtime --channel C serves it)\n"
		"  -h, --help          this help\n\n"
		RT_LLM_HELP
		"  --llm-record FILE     also write every model response to FILE, a script that\n"
		"                        --llm-script replays byte for byte (offline demos, tests)\n\n"
		"exit codes: 0 the agent answered ok:true; 1 the agent answered an error or was\n"
		"            stopped (timeout, memory_limit, trap, ...); 2 usage error, unknown or\n"
		"            refused agent, unreadable store, keyring or input\n");
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return -1;
	v = strtoul(s, &end, 10);
	if (*end || v == 0 || v > 0xffffffffUL)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Errors that are not the agent's answer: exit 2. */
static int is_setup_error(const char *code)
{
	static const char *const setup[] = {"not_found", "agent_refused", "invalid_json",
					    "payload_too_large", "internal", "no_release",
					    "release_expired"};
	size_t i;

	for (i = 0; code && i < sizeof(setup) / sizeof(setup[0]); i++)
		if (strcmp(code, setup[i]) == 0)
			return 1;
	return 0;
}

/* Store each KEY=JSON in agent's key-value namespace (closed again before
 * the engine opens the same environment). */
static int seed_kv(const char *data_dir, const char *agent, const char *const *sets, size_t n)
{
	rt_kv *kv = NULL;
	size_t i;
	int rc;

	if ((rc = rt_kv_open(&kv, data_dir)) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		const char *eq = strchr(sets[i], '=');
		json_t *v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
		char *text;

		if (!v)
			v = json_string(eq + 1);
		text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(v);
		if (!text)
			rc = art_error_set(AF_EINVAL, "%s: the value is not valid UTF-8", sets[i]);
		else
			rc = rt_kv_put(kv, agent, sets[i], (size_t)(eq - sets[i]), text, strlen(text));
		free(text);
	}
	rt_kv_close(kv);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'},   {"keyring", required_argument, NULL, 'k'},
		{"input", required_argument, NULL, 'i'},   {"input-file", required_argument, NULL, 'f'},
		{"data", required_argument, NULL, 'd'},    RT_LLM_LONG_OPTIONS(RUN_LLM_OPT),
		{"timeout-ms", required_argument, NULL, 't'},
		{"memory-pages", required_argument, NULL, 'm'},
		{"log", required_argument, NULL, 'L'},     {"kv-set", required_argument, NULL, 'K'},
		{"channel", required_argument, NULL, 'C'},
		{"llm-record", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *store = NULL, *keyring = NULL, *input = NULL, *input_file = NULL, *log_path = NULL;
	char *name = NULL, *version, *file_input = NULL;
	rt_engine_opts o;
	rt_llm_config llm_cfg;
	rt_llm_provider *llm = NULL, *recorder = NULL;
	const char *record_path = NULL;
	rt_engine *e = NULL;
	rt_invoke_result res;
	FILE *log = NULL;
	const char *kv_set[64];
	size_t input_len = 0, n_kv_set = 0;
	int c, erc, rc = CLI_USAGE;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	rt_llm_config_init(&llm_cfg);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': store = optarg; break;
		case 'k': keyring = optarg; break;
		case 'i': input = optarg; break;
		case 'f': input_file = optarg; break;
		case 'd': o.data_dir = optarg; break;
		case 'C': o.channel = optarg; break;
		case 'L': log_path = optarg; break;
		case 'R': record_path = optarg; break;
		case 'K':
			if (n_kv_set == sizeof(kv_set) / sizeof(kv_set[0]) || !strchr(optarg, '='))
				return cli_usage_error("run", "--kv-set needs KEY=JSON (at most 64 of them)");
			kv_set[n_kv_set++] = optarg;
			break;
		case 't':
			if (parse_u32(optarg, &o.max_timeout_ms) < 0)
				return cli_usage_error("run", "--timeout-ms needs a positive integer");
			break;
		case 'm':
			if (parse_u32(optarg, &o.max_memory_pages) < 0 || o.max_memory_pages > 65535)
				return cli_usage_error("run", "--memory-pages needs an integer 1..65535");
			break;
		case 'h':
			run_usage(stdout);
			return CLI_OK;
		default:
			if (c >= RUN_LLM_OPT && c < RUN_LLM_OPT + RT_LLM_OPT_COUNT) {
				if (rt_llm_config_option(&llm_cfg, c - RUN_LLM_OPT, optarg) < 0)
					return cli_usage_error("run", "%s", art_error_last());
				break;
			}
			return cli_usage_error("run", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	store = cli_flag_or_env(store, "AF_STORE");
	keyring = cli_flag_or_env(keyring, "AF_KEYRING");
	if (!store)
		return cli_usage_error("run", "--store DIR (or AF_STORE) is required");
	if (!keyring)
		return cli_usage_error("run", "--keyring FILE (or AF_KEYRING) is required");
	if (optind != argc - 1)
		return cli_usage_error("run", "exactly one agent NAME[@VERSION] is required");
	if (!!input == !!input_file)
		return cli_usage_error("run", "give the request with --input JSON or --input-file FILE");
	if (n_kv_set && !o.data_dir)
		return cli_usage_error("run", "--kv-set needs --data DIR");
	if (rt_llm_config_env(&llm_cfg) < 0)
		return cli_usage_error("run", "%s", art_error_last());

	if (input_file) {
		int frc = strcmp(input_file, "-") == 0
				  ? art_file_read(&file_input, &input_len, "/dev/stdin", INPUT_FILE_MAX)
				  : art_file_read(&file_input, &input_len, input_file, INPUT_FILE_MAX);

		if (frc < 0)
			return cli_fail(CLI_USAGE, "run", "%s", art_error_last());
		input = file_input;
	} else {
		input_len = strlen(input);
	}
	name = strdup(argv[optind]);
	if (!name) {
		rc = cli_fail(CLI_USAGE, "run", "out of memory");
		goto cleanup;
	}
	version = strchr(name, '@');
	if (version)
		*version++ = '\0';
	if (n_kv_set && seed_kv(o.data_dir, name, kv_set, n_kv_set) < 0) {
		rc = cli_fail(CLI_USAGE, "run", "--kv-set: %s", art_error_last());
		goto cleanup;
	}
	if (log_path && !(log = fopen(log_path, "ae"))) {
		rc = cli_fail(CLI_USAGE, "run", "cannot open %s for the log", log_path);
		goto cleanup;
	}
	llm_cfg.log = log;
	if (rt_llm_open(&llm, &llm_cfg) < 0) {
		rc = cli_fail(CLI_USAGE, "run", "%s", art_error_last());
		goto cleanup;
	}
	if (record_path && !llm) {
		rc = cli_usage_error("run", "--llm-record needs a model provider (--llm-provider)");
		goto cleanup;
	}
	if (record_path && rt_llm_record_open(&recorder, llm, record_path) < 0) {
		rc = cli_fail(CLI_USAGE, "run", "--llm-record: %s", art_error_last());
		goto cleanup;
	}
	o.llm = recorder ? recorder : llm;
	o.store_dir = store;
	o.keyring_path = keyring;
	o.log = log;
	o.module_cache = 4;
	/* Big enough for any request the file cap allows; the engine checks it. */
	o.max_request_bytes = input_len > ((size_t)1 << 20) ? input_len : 0;
	if ((erc = rt_engine_open(&e, &o)) < 0) {
		rc = cli_fail(CLI_EXIT_FOR_STORE(erc, CLI_USAGE), "run", "%s", art_error_last());
		goto cleanup;
	}
	if (o.llm)
		fprintf(stderr, "agentfactory run: model provider %s\n", o.llm->description);
	if (rt_engine_invoke(e, name, version, input, input_len, &res) < 0) {
		rc = cli_fail(CLI_USAGE, "run", "%s", art_error_last());
		goto cleanup;
	}
	fwrite(res.body, 1, res.body_len, stdout);
	fputc('\n', stdout);
	if (!res.error_code)
		rc = CLI_OK;
	else if (is_setup_error(res.error_code))
		rc = cli_fail(CLI_USAGE, "run", "%s: %s", res.error_code, res.error_message);
	else
		rc = CLI_FINDINGS;
cleanup:
	rt_invoke_result_clear(&res);
	rt_engine_close(e);
	rt_llm_provider_free(recorder);
	rt_llm_provider_free(llm);
	if (log)
		fclose(log);
	free(file_input);
	free(name);
	return rc;
}
