/*
 * main.c - agentfactory-runtime: serve the agents of a store over HTTP.
 *
 * Startup refuses rather than guesses: a missing store or keyring, a bad
 * tokens file, a non-loopback address without tokens, or a port in use ends
 * the process with exit 2 and one line on stderr saying what to fix. Once
 * serving, SIGTERM or SIGINT starts a clean shutdown: stop accepting, let
 * requests in progress finish (up to --grace-ms), close the engine, exit 0.
 *
 * Signals are blocked in every thread and taken with sigwait() by the main
 * thread, so no handler ever runs inside libmicrohttpd or guest code.
 */
#include "art/error.h"
#include "art/util.h"
#include "rt/engine.h"
#include "rt/http.h"
#include "rt/llm.h"
#include "rt/log.h"
#include "rt/source.h"
#include "rt/tokens.h"
#include "rt/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VERSION
#define AF_VERSION "0.0.0"
#endif

#define EXIT_OK 0
#define EXIT_ABANDONED 1
#define EXIT_USAGE 2
#define EXIT_DAMAGED 3 /* the store file is damaged (AF_EDAMAGED) */

#define PROG "agentfactory-runtime"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [serve] --store DIR --keyring FILE [OPTIONS]\n"
		"       " PROG " token hash [--role ROLE [--name NAME]]   (token on stdin)\n"
		"       " PROG " token new --role ROLE [--name NAME] [--tokens FILE]\n"
		"       " PROG " --help | --version\n"
		"\n"
		"Serves the verified agents of an artifact store over HTTP: GET /v1/agents,\n"
		"GET /v1/agents/NAME, POST /v1/agents/NAME/invoke, /healthz, /readyz, /metrics\n"
		"(see docs/openapi.yaml and docs/runtime.md).\n"
		"\n"
		"serve options:\n"
		"  --store DIR           artifact store, opened read-only (env AF_STORE)\n"
		"  --keyring FILE        trusted keys; artifacts must be signed by a builder key\n"
		"                        (env AF_KEYRING)\n"
		"  --listen HOST:PORT    address to bind (default 127.0.0.1:8080); HOST is an IPv4\n"
		"                        address, [IPv6] or localhost; port 0 picks a free port\n"
		"  --tokens FILE         bearer tokens with roles, one 'sha256:HEX ROLE [NAME]' a line.\n"
		"                        Without it there is no authentication and only a loopback\n"
		"                        address may be bound\n"
		"  --port-file FILE      write the bound address (HOST:PORT) there once listening;\n"
		"                        removed on clean shutdown\n"
		"  --data DIR            writable state of the agents (key-value tools); none if absent\n"
		"  --log FILE            JSON-lines log (access log, refusals, guest logs);\n"
		"                        default stderr\n"
		"  --max-body BYTES      request body cap, suffix k or m allowed (default 1m)\n"
		"  --threads N           HTTP polling threads (default 2 per core, at least 4)\n"
		"  --workers N           invocation workers; they wait on models, tools and disk\n"
		"                        without holding a polling thread (default 64)\n"
		"  --queue N             invocations waiting for a worker; beyond, 503 with\n"
		"                        Retry-After (default 1024)\n"
		"  --max-connections N   concurrent connections (default 1000)\n"
		"  --idle-timeout S      close a connection idle this many seconds (default 30)\n"
		"  --header-timeout S    close a connection whose request head (request line and\n"
		"                        headers) is not complete within S seconds (default 10)\n"
		"  --max-connections-per-ip N  connections from one address (default 128; 0: no\n"
		"                        limit, e.g. behind a proxy that is the only client)\n"
		"  --module-cache N      loaded modules kept in memory (default 64)\n"
		"  --max-timeout-ms MS   hard per-invocation deadline cap (default 30000)\n"
		"  --max-memory-pages N  cap on an agent's memory, 64 KiB pages (default 1024)\n"
		"  --grace-ms MS         on SIGTERM, wait this long for requests in progress\n"
		"                        (default 10000)\n");
	/* (two literals: one would pass the 4095 characters C guarantees) */
	fprintf(out,
		"  --channel C           serve exactly the release channel C points at, and follow\n"
		"                        promotions and rollbacks live (env AF_CHANNEL); without it,\n"
		"                        the latest version of every agent in the store\n"
		"  --poll-ms MS          check the channel and the keyring file this often\n"
		"                        (default 200; inotify also wakes the check at once)\n"
		"  --min-threshold K     channel records need at least K release-manager\n"
		"                        signatures, whatever they say (default: theirs)\n"
		"  --max-invoke-depth N  agent_invoke chain length limit, 1 .. 16 (default 4)\n"
		"  --source oci://HOST[:PORT]/REPO  follow --channel C from an OCI registry: poll\n"
		"                        the tag channel-C (one HEAD when unchanged), pull and verify\n"
		"                        new releases into --store (the pod-local cache, created if\n"
		"                        missing) and switch live; registry down: keep serving\n"
		"                        (env AF_SOURCE; docs/registry.md)\n"
		"  --source-interval-ms MS  poll interval (default 5000); --source-jitter-ms MS\n"
		"                        adds 0..MS at random (default a tenth of the interval)\n"
		"  --source-ca-file FILE, --source-auth-file FILE (docker config.json; default\n"
		"                        REGISTRY_AUTH_FILE, DOCKER_CONFIG), --source-plain-http\n"
		"  --otlp-endpoint URL   export OpenTelemetry traces over OTLP/HTTP (JSON) to URL\n"
		"                        (/v1/traces appended); also OTEL_EXPORTER_OTLP_ENDPOINT,\n"
		"                        with OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,\n"
		"                        OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_* (docs/observability.md)\n"
		"\n"
		RT_LLM_HELP
		"\n"
		"token commands:\n"
		"  token hash            read a token on stdin (one trailing newline is ignored) and\n"
		"                        print its tokens-file hash, or the whole line with --role\n"
		"  token new             make a random token, print it on stdout; with --tokens FILE\n"
		"                        append its line to FILE (created 0600), else print the line\n"
		"                        on a second stdout line\n"
		"  roles: read (list, describe, metrics), invoke (list, describe, invoke),\n"
		"         admin (everything). /healthz and /readyz need no token.\n"
		"\n"
		"exit codes: 0 clean shutdown after SIGTERM or SIGINT (or a token command done),\n"
		"            1 shut down but requests were still running after --grace-ms,\n"
		"            2 usage or startup error (bad flag, store, keyring, tokens, address)\n");
}

/* The trace exporter's failures, into the runtime's log. */
static void trace_warn(void *log, const char *event, const char *message)
{
	rt_log_printf(log, "warn", event, NULL, "%s", message);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '" PROG " --help' for usage.\n");
	return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static const char *flag_or_env(const char *flag, const char *env)
{
	const char *v;

	if (flag)
		return flag;
	v = getenv(env);
	return (v && *v) ? v : NULL;
}

/* A decimal number in [min, max], with an optional k/m (x1024) suffix when sizes. */
static int parse_number(const char *s, unsigned long long min, unsigned long long max,
			bool size, unsigned long long *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (size && (*end == 'k' || *end == 'K'))
		mult = 1024, end++;
	else if (size && (*end == 'm' || *end == 'M'))
		mult = 1024 * 1024, end++;
	if (*end || v > max / mult || v * mult < min)
		return -1;
	*out = v * mult;
	return 0;
}

/* One JSON log line from main (the server writes its own). */
static void log_line(FILE *f, const char *level, const char *json_fields)
{
	struct timespec ts;
	struct tm tm;
	char when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(f);
	fprintf(f, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",%s}\n", when, ts.tv_nsec / 1000000, level,
		json_fields);
	fflush(f);
	funlockfile(f);
}

/* A file path as a JSON string (paths are ours, but may hold quotes). */
static void json_path(char *out, size_t n, const char *path)
{
	size_t o = 0;

	if (n < 3)
		return;
	out[o++] = '"';
	for (; path && *path && o + 8 < n; path++) {
		unsigned char ch = (unsigned char)*path;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* --------------------------------------------------------------------------
 * token hash / token new
 */

static int token_line(char *out, size_t n, const char *hash, const char *role, const char *name)
{
	rt_tokens *check = NULL;
	int rc;

	snprintf(out, n, "%s %s%s%s\n", hash, role, name ? " " : "", name ? name : "");
	/* the line must read back: same parser as the server */
	rc = rt_tokens_parse(&check, out, strlen(out), "the new entry");
	rt_tokens_free(check);
	if (rc < 0)
		return fail("%s", art_error_last());
	return 0;
}

static int cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{"role", required_argument, NULL, 'r'},
		{"name", required_argument, NULL, 'n'},
		{"tokens", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *role = NULL, *name = NULL, *file = NULL, *sub;
	char hash[RT_TOKEN_HASH_LEN], line[256];
	rt_role parsed;
	int c;

	if (argc < 2)
		return usage_error("token: expected 'hash' or 'new'");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(sub, "hash") != 0 && strcmp(sub, "new") != 0)
		return usage_error("token: unknown subcommand '%s' (hash or new)", sub);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': role = optarg; break;
		case 'n': name = optarg; break;
		case 't': file = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: /* (argv + 1)[optind - 1] */
			return usage_error("token %s: unknown or incomplete option '%s'", sub,
					   argv[optind]);
		}
	}
	if (optind + 1 < argc)
		return usage_error("token %s: unexpected argument '%s'", sub, argv[optind + 1]);
	if (role && rt_role_parse(&parsed, role) < 0)
		return usage_error("token: unknown role '%s' (read, invoke or admin)", role);
	if (name && !role)
		return usage_error("token: --name needs --role");
	if (file && strcmp(sub, "hash") == 0) /* before waiting on stdin */
		return usage_error("token hash: --tokens is for 'token new'");

	if (strcmp(sub, "hash") == 0) {
		char buf[RT_TOKEN_MAX + 3];
		const char *t;
		size_t n = fread(buf, 1, sizeof(buf) - 1, stdin), tlen;
		char header[RT_TOKEN_MAX + 16];

		if (n == sizeof(buf) - 1)
			return fail("token hash: the token is longer than %d bytes", RT_TOKEN_MAX);
		if (n && buf[n - 1] == '\n')
			n--;
		if (n && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
		/* the token must be something a client can send */
		snprintf(header, sizeof(header), "Bearer %s", buf);
		if (n == 0 || strlen(buf) != n || rt_tokens_bearer(header, &t, &tlen) < 0)
			return fail("token hash: expected one token on stdin, made of A-Z a-z 0-9 "
				    "- . _ ~ + / (and trailing =)");
		rt_token_hash(hash, buf, n);
		memset(buf, 0, sizeof(buf));
		if (!role) {
			printf("%s\n", hash);
			return EXIT_OK;
		}
		if (token_line(line, sizeof(line), hash, role, name) != 0)
			return EXIT_USAGE;
		fputs(line, stdout);
		return EXIT_OK;
	}

	/* new */
	{
		char token[RT_TOKEN_GENERATED_LEN + 1];
		int fd;
		ssize_t w;

		if (!role)
			return usage_error("token new: --role ROLE is required (read, invoke or admin)");
		if (rt_token_generate(token) < 0)
			return fail("token new: %s", art_error_last());
		rt_token_hash(hash, token, strlen(token));
		if (token_line(line, sizeof(line), hash, role, name) != 0)
			return EXIT_USAGE;
		if (!file) {
			printf("%s\n%s", token, line);
			return EXIT_OK;
		}
		fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail("token new: cannot open %s: %s", file, strerror(errno));
		w = write(fd, line, strlen(line));
		if (w != (ssize_t)strlen(line) || fsync(fd) != 0) {
			close(fd);
			return fail("token new: cannot write %s: %s", file, strerror(errno));
		}
		close(fd);
		printf("%s\n", token);
		return EXIT_OK;
	}
}

/* --------------------------------------------------------------------------
 * serve
 */

typedef struct serve_args {
	const char *store, *keyring, *listen, *tokens, *data, *log, *port_file;
	rt_llm_config llm;             /* --llm-* and AF_LLM_* */
	unsigned long long max_body, threads, max_connections, idle_timeout, module_cache;
	unsigned long long header_timeout, max_per_ip;
	bool max_per_ip_set;
	unsigned long long workers, queue;
	unsigned long long max_timeout_ms, max_memory_pages, grace_ms;
	const char *channel;                            /* --channel, AF_CHANNEL */
	const char *otlp_endpoint;                      /* --otlp-endpoint */
	unsigned long long poll_ms, min_threshold, max_invoke_depth;
	const char *source, *source_ca, *source_auth;  /* --source oci://... */
	unsigned long long source_interval_ms, source_jitter_ms;
	bool source_plain_http;
} serve_args;

enum {
	O_STORE = 1000, O_KEYRING, O_LISTEN, O_TOKENS, O_DATA, O_LLM, O_LOG, O_PORTFILE,
	O_MAXBODY, O_THREADS, O_WORKERS, O_QUEUE, O_MAXCONN, O_IDLE, O_CACHE, O_TIMEOUT, O_PAGES, O_GRACE
};
enum { O_CHANNEL = 1800, O_POLL_MS, O_MIN_THRESHOLD, O_INVOKE_DEPTH };
enum { O_SOURCE = 1850, O_SOURCE_INTERVAL, O_SOURCE_JITTER, O_SOURCE_CA, O_SOURCE_AUTH,
       O_SOURCE_PLAIN };
enum { O_OTLP_ENDPOINT = 1870 };
enum { O_HEADER_TIMEOUT = 1880, O_MAX_PER_IP };
enum { O_LLM_BASE = 1900 }; /* the --llm-* options: O_LLM_BASE + RT_LLM_OPT_* */

static int parse_serve(serve_args *a, int argc, char **argv, bool *done)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, O_STORE},
		{"keyring", required_argument, NULL, O_KEYRING},
		{"listen", required_argument, NULL, O_LISTEN},
		{"tokens", required_argument, NULL, O_TOKENS},
		{"data", required_argument, NULL, O_DATA},
		RT_LLM_LONG_OPTIONS(O_LLM_BASE),
		{"log", required_argument, NULL, O_LOG},
		{"port-file", required_argument, NULL, O_PORTFILE},
		{"max-body", required_argument, NULL, O_MAXBODY},
		{"threads", required_argument, NULL, O_THREADS},
		{"workers", required_argument, NULL, O_WORKERS},
		{"queue", required_argument, NULL, O_QUEUE},
		{"max-connections", required_argument, NULL, O_MAXCONN},
		{"idle-timeout", required_argument, NULL, O_IDLE},
		{"header-timeout", required_argument, NULL, O_HEADER_TIMEOUT},
		{"max-connections-per-ip", required_argument, NULL, O_MAX_PER_IP},
		{"module-cache", required_argument, NULL, O_CACHE},
		{"max-timeout-ms", required_argument, NULL, O_TIMEOUT},
		{"max-memory-pages", required_argument, NULL, O_PAGES},
		{"grace-ms", required_argument, NULL, O_GRACE},
		{"channel", required_argument, NULL, O_CHANNEL},
		{"poll-ms", required_argument, NULL, O_POLL_MS},
		{"min-threshold", required_argument, NULL, O_MIN_THRESHOLD},
		{"max-invoke-depth", required_argument, NULL, O_INVOKE_DEPTH},
		{"source", required_argument, NULL, O_SOURCE},
		{"source-interval-ms", required_argument, NULL, O_SOURCE_INTERVAL},
		{"source-jitter-ms", required_argument, NULL, O_SOURCE_JITTER},
		{"source-ca-file", required_argument, NULL, O_SOURCE_CA},
		{"source-auth-file", required_argument, NULL, O_SOURCE_AUTH},
		{"source-plain-http", no_argument, NULL, O_SOURCE_PLAIN},
		{"otlp-endpoint", required_argument, NULL, O_OTLP_ENDPOINT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*done = false;
	memset(a, 0, sizeof(*a));
	a->grace_ms = 10000;
	a->poll_ms = 200;
	rt_llm_config_init(&a->llm);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *bad = NULL;
		switch (c) {
		case 'h': usage(stdout); *done = true; return EXIT_OK;
		case 'V': printf(PROG " %s\n", AF_VERSION); *done = true; return EXIT_OK;
		case O_STORE: a->store = optarg; break;
		case O_KEYRING: a->keyring = optarg; break;
		case O_LISTEN: a->listen = optarg; break;
		case O_TOKENS: a->tokens = optarg; break;
		case O_DATA: a->data = optarg; break;
		case O_LOG: a->log = optarg; break;
		case O_PORTFILE: a->port_file = optarg; break;
		case O_MAXBODY:
			if (parse_number(optarg, 1, 1ull << 30, true, &a->max_body))
				bad = "--max-body: expected 1 .. 1073741824 bytes (suffix k or m)";
			break;
		case O_THREADS:
			if (parse_number(optarg, 1, 1024, false, &a->threads))
				bad = "--threads: expected 1 .. 1024";
			break;
		case O_WORKERS:
			if (parse_number(optarg, 1, 4096, false, &a->workers))
				bad = "--workers: expected 1 .. 4096";
			break;
		case O_QUEUE:
			if (parse_number(optarg, 1, 1000000, false, &a->queue))
				bad = "--queue: expected 1 .. 1000000";
			break;
		case O_MAXCONN:
			if (parse_number(optarg, 1, 100000, false, &a->max_connections))
				bad = "--max-connections: expected 1 .. 100000";
			break;
		case O_IDLE:
			if (parse_number(optarg, 1, 86400, false, &a->idle_timeout))
				bad = "--idle-timeout: expected 1 .. 86400 seconds";
			break;
		case O_HEADER_TIMEOUT:
			if (parse_number(optarg, 1, 3600, false, &a->header_timeout))
				bad = "--header-timeout: expected 1 .. 3600 seconds";
			break;
		case O_MAX_PER_IP:
			if (parse_number(optarg, 0, 100000, false, &a->max_per_ip))
				bad = "--max-connections-per-ip: expected 0 .. 100000 (0: no limit)";
			a->max_per_ip_set = true;
			break;
		case O_CACHE:
			if (parse_number(optarg, 1, 1u << 20, false, &a->module_cache))
				bad = "--module-cache: expected 1 .. 1048576";
			break;
		case O_TIMEOUT:
			if (parse_number(optarg, 1, 3600000, false, &a->max_timeout_ms))
				bad = "--max-timeout-ms: expected 1 .. 3600000";
			break;
		case O_PAGES:
			if (parse_number(optarg, 1, 65536, false, &a->max_memory_pages))
				bad = "--max-memory-pages: expected 1 .. 65536";
			break;
		case O_GRACE:
			if (parse_number(optarg, 0, 3600000, false, &a->grace_ms))
				bad = "--grace-ms: expected 0 .. 3600000";
			break;
		case O_CHANNEL: a->channel = optarg; break;
		case O_OTLP_ENDPOINT: a->otlp_endpoint = optarg; break;
		case O_POLL_MS:
			if (parse_number(optarg, 1, 3600000, false, &a->poll_ms))
				bad = "--poll-ms: expected 1 .. 3600000";
			break;
		case O_MIN_THRESHOLD:
			if (parse_number(optarg, 1, 16, false, &a->min_threshold))
				bad = "--min-threshold: expected 1 .. 16";
			break;
		case O_INVOKE_DEPTH:
			if (parse_number(optarg, 1, 16, false, &a->max_invoke_depth))
				bad = "--max-invoke-depth: expected 1 .. 16";
			break;
		case O_SOURCE: a->source = optarg; break;
		case O_SOURCE_CA: a->source_ca = optarg; break;
		case O_SOURCE_AUTH: a->source_auth = optarg; break;
		case O_SOURCE_PLAIN: a->source_plain_http = true; break;
		case O_SOURCE_INTERVAL:
			if (parse_number(optarg, 50, 86400000, false, &a->source_interval_ms))
				bad = "--source-interval-ms: expected 50 .. 86400000";
			break;
		case O_SOURCE_JITTER:
			if (parse_number(optarg, 0, 86400000, false, &a->source_jitter_ms))
				bad = "--source-jitter-ms: expected 0 .. 86400000";
			break;
		default:
			if (c >= O_LLM_BASE && c < O_LLM_BASE + RT_LLM_OPT_COUNT) {
				if (rt_llm_config_option(&a->llm, c - O_LLM_BASE, optarg) < 0)
					return usage_error("%s", art_error_last());
				break;
			}
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
		if (bad)
			return usage_error("%s, got '%s'", bad, optarg);
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	a->store = flag_or_env(a->store, "AF_STORE");
	a->keyring = flag_or_env(a->keyring, "AF_KEYRING");
	a->channel = flag_or_env(a->channel, "AF_CHANNEL");
	if (rt_llm_config_env(&a->llm) < 0)
		return usage_error("%s", art_error_last());
	if (!a->store)
		return usage_error("--store DIR (or AF_STORE) is required");
	if (!a->keyring)
		return usage_error("--keyring FILE (or AF_KEYRING) is required");
	a->source = flag_or_env(a->source, "AF_SOURCE");
	if (a->source && !a->channel)
		return usage_error("--source needs --channel C: a pod follows one channel");
	return EXIT_OK;
}

static int write_port_file(const char *path, const char *address)
{
	char text[128];
	int n = snprintf(text, sizeof(text), "%s\n", address);

	return art_file_write_atomic(path, text, (size_t)n, 0644);
}

static int serve(int argc, char **argv)
{
	serve_args a;
	bool done;
	rt_tokens *tokens = NULL;
	rt_llm_provider *llm = NULL;
	rt_engine *engine = NULL;
	rt_http *http = NULL;
	rt_engine_opts eo;
	rt_http_opts ho;
	rt_agent_info *agents = NULL;
	rt_source *source = NULL;
	size_t n_agents = 0, i, n_ok = 0;
	FILE *log = stderr;
	sigset_t sigs;
	int rc, sig = 0, code = EXIT_USAGE;
	unsigned left;
	char fields[PATH_MAX * 2 + 512], jstore[PATH_MAX + 64], jaddr[160];

	rc = parse_serve(&a, argc, argv, &done);
	if (rc != EXIT_OK || done)
		return rc;

	if (a.log) {
		int fd = open(a.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0 || !(log = fdopen(fd, "a"))) {
			if (fd >= 0)
				close(fd);
			return fail("--log %s: %s", a.log, strerror(errno));
		}
	}
	a.llm.log = log;
	if (a.source) {
		/* forked first: the follower must not inherit threads or the store */
		rt_source_opts so;

		memset(&so, 0, sizeof(so));
		so.url = a.source;
		so.store_dir = a.store;
		so.keyring_path = a.keyring;
		so.channel = a.channel;
		so.interval_ms = (uint32_t)a.source_interval_ms;
		so.jitter_ms = (uint32_t)a.source_jitter_ms;
		so.min_threshold = (unsigned)a.min_threshold;
		so.oci.ca_file = a.source_ca;
		so.oci.auth_file = a.source_auth;
		so.oci.plain_http = a.source_plain_http;
		so.oci.timeout_s = 10;
		so.log = log;
		if (rt_source_start(&source, &so) < 0) {
			fail("--source: %s", art_error_last());
			goto cleanup;
		}
	}
	if (rt_llm_open(&llm, &a.llm) < 0) {
		fail("%s", art_error_last());
		goto cleanup;
	}
	if (llm)
		rt_log_printf(log, "info", "llm_provider", NULL, "%s", llm->description);
	if (a.tokens && rt_tokens_load(&tokens, a.tokens) < 0) {
		fail("--tokens: %s", art_error_last());
		goto cleanup;
	}
	/* Check the address before the (slower) store verification. */
	{
		struct sockaddr_storage ss;
		socklen_t sl;
		if (rt_http_parse_listen(a.listen ? a.listen : "127.0.0.1:8080", &ss, &sl) < 0) {
			fail("--listen: %s", art_error_last());
			goto cleanup;
		}
		if (!tokens && !rt_http_is_loopback((struct sockaddr *)&ss)) {
			fail("refusing to listen on %s without --tokens: an unauthenticated "
			     "server may only bind a loopback address (127.0.0.1 or [::1]); "
			     "give --tokens FILE (see '" PROG " token new --help')",
			     a.listen);
			goto cleanup;
		}
	}

	/* Before any thread exists: every thread inherits the mask, so only
	 * sigwait() below sees these signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	{
		struct sigaction ignore;

		memset(&ignore, 0, sizeof(ignore));
		ignore.sa_handler = SIG_IGN;
		sigemptyset(&ignore.sa_mask);
		sigaction(SIGPIPE, &ignore, NULL);
	}
	/* after the mask: the exporter thread must not take SIGTERM */
	{
		rt_trace_config tc;

		memset(&tc, 0, sizeof(tc));
		tc.endpoint = a.otlp_endpoint;
		tc.warn = trace_warn;
		tc.warn_ctx = log;
		rt_trace_config_env(&tc);
		if (rt_trace_start(&tc) < 0) {
			fail("tracing: %s", art_error_last());
			goto cleanup;
		}
		if (tc.endpoint)
			rt_log_printf(log, "info", "tracing", NULL, "exporting traces to %s (sampler %s%s%s)",
				      tc.endpoint, tc.sampler ? tc.sampler : "parentbased_always_on",
				      tc.sampler_arg ? " " : "", tc.sampler_arg ? tc.sampler_arg : "");
	}

	json_path(jstore, sizeof(jstore), a.store);
	snprintf(fields, sizeof(fields), "\"event\":\"starting\",\"msg\":\"agentfactory-runtime starting\",\"version\":\"%s\",\"store\":%s",
		 AF_VERSION, jstore);
	log_line(log, "info", fields);

	memset(&eo, 0, sizeof(eo));
	eo.store_dir = a.store;
	eo.keyring_path = a.keyring;
	eo.data_dir = a.data;
	eo.module_cache = (size_t)a.module_cache;
	eo.max_timeout_ms = (uint32_t)a.max_timeout_ms;
	eo.max_memory_pages = (uint32_t)a.max_memory_pages;
	eo.max_request_bytes = (size_t)a.max_body;
	eo.log = log;
	eo.channel = a.channel;
	eo.watch_ms = (uint32_t)a.poll_ms;
	eo.min_threshold = (unsigned)a.min_threshold;
	eo.max_invoke_depth = (uint32_t)a.max_invoke_depth;
	eo.llm = llm;
	if ((rc = rt_engine_open(&engine, &eo)) < 0) {
		fail("%s", art_error_last());
		if (rc == AF_EDAMAGED)
			code = EXIT_DAMAGED;
		goto cleanup;
	}
	if (rt_engine_list(engine, &agents, &n_agents) == 0)
		for (i = 0; i < n_agents; i++)
			n_ok += agents[i].ok;
	rt_agent_info_free(agents, n_agents);

	memset(&ho, 0, sizeof(ho));
	ho.listen = a.listen;
	ho.tokens = tokens;
	ho.max_body = (size_t)a.max_body;
	ho.threads = (unsigned)a.threads;
	ho.workers = (unsigned)a.workers;
	ho.queue = (unsigned)a.queue;
	ho.max_connections = (unsigned)a.max_connections;
	ho.idle_timeout_s = (unsigned)a.idle_timeout;
	ho.header_timeout_s = (unsigned)a.header_timeout;
	if (a.max_per_ip_set)
		ho.max_per_ip = a.max_per_ip ? (unsigned)a.max_per_ip : RT_HTTP_UNLIMITED;
	ho.log = log;
	if (rt_http_start(&http, engine, &ho) < 0) {
		fail("%s", art_error_last());
		goto cleanup;
	}
	if (!tokens)
		log_line(log, "warn",
			 "\"event\":\"no_auth\",\"msg\":\"no --tokens file: listening on loopback only, no authentication\"");
	json_path(jaddr, sizeof(jaddr), rt_http_address(http));
	snprintf(fields, sizeof(fields),
		 "\"event\":\"listening\",\"msg\":\"listening on %s\",\"address\":%s,\"port\":%u,\"auth\":\"%s\",\"tokens\":%zu,"
		 "\"agents\":%zu,\"refused\":%zu",
		 rt_http_address(http), jaddr, rt_http_port(http), tokens ? "bearer" : "none", rt_tokens_count(tokens),
		 n_ok, n_agents - n_ok);
	log_line(log, "info", fields);
	if (a.port_file && write_port_file(a.port_file, rt_http_address(http)) < 0) {
		fail("--port-file: %s", art_error_last());
		goto cleanup;
	}

	while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
		;
	snprintf(fields, sizeof(fields), "\"event\":\"shutting_down\",\"msg\":\"%s: draining\",\"signal\":\"%s\"",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	log_line(log, "info", fields);
	left = rt_http_stop(http, (unsigned)a.grace_ms);
	http = NULL;
	code = left ? EXIT_ABANDONED : EXIT_OK;
	if (a.port_file)
		unlink(a.port_file);

cleanup:
	if (http) {
		rt_http_stop(http, 0);
		if (a.port_file)
			unlink(a.port_file);
	}
	rt_engine_close(engine);
	rt_source_stop(source);
	rt_trace_stop(); /* export what the last requests traced */
	rt_llm_provider_free(llm);
	rt_tokens_free(tokens);
	if (code != EXIT_USAGE) {
		snprintf(fields, sizeof(fields), "\"event\":\"stopped\",\"msg\":\"stopped\",\"exit\":%d", code);
		log_line(log, "info", fields);
	}
	if (log != stderr)
		fclose(log);
	return code;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
		printf(PROG " %s\n", AF_VERSION);
		return EXIT_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	return serve(argc, argv);
}
