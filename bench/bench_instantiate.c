/*
 * bench_instantiate.c - runtime benchmarks (figures, not assertions):
 *
 *  1. warm invocations: instantiate + _initialize + request in + af_handle
 *     + response out + free, in the runtime's sandbox (rt_exec_invoke: the
 *     same path as the server minus HTTP), p50/p99/p99.9 over N iterations,
 *     for the minimal lab guest (tests/fixtures/runtime/lab_guest.c) and
 *     for the generated backup-manager workflow (JSON parse, schema check,
 *     two host tool calls);
 *  2. cold load of one agent: store read -> verified (builder signature and
 *     every part digest) -> sealed memfd -> dlopen -> init -> describe ->
 *     first instance answered, with its parts;
 *  3. sandbox overhead: one compute-heavy C function (SHA-256 chained over
 *     a 64 KiB buffer) compiled natively (cc -O2 -fPIC -shared) and through
 *     the agent toolchain (clang wasm32 -O2 -> wasm2c -> cc -O2), same
 *     source text; plus Node's V8 on the same .wasm when node is installed.
 *
 * Build and run: see bench/README.md.
 */
#include "runtime/labguest.h"
#include "figures.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/store.h"
#include "gen/toolchain.h"
#include "rt/exec.h"
#include "rt/loader.h"
#include "rt/sandbox.h"

#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLD_RUNS 30
#define COMPUTE_ROUNDS 2000

/* The compute-heavy function, as text: compiled natively and as a guest. */
static const char compute_src[] =
	"#include <stdint.h>\n"
	"static const uint32_t K[64] = {\n"
	"0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,\n"
	"0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,\n"
	"0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,\n"
	"0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,\n"
	"0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,\n"
	"0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,\n"
	"0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,\n"
	"0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2};\n"
	"#define ROR(x,n) (((x)>>(n))|((x)<<(32-(n))))\n"
	"static void block(uint32_t *h, const unsigned char *p) {\n"
	"  uint32_t w[64], a,b,c,d,e,f,g,k,t1,t2; int i;\n"
	"  for (i = 0; i < 16; i++) w[i] = (uint32_t)p[4*i]<<24 | (uint32_t)p[4*i+1]<<16 | (uint32_t)p[4*i+2]<<8 | p[4*i+3];\n"
	"  for (i = 16; i < 64; i++) w[i] = (ROR(w[i-2],17)^ROR(w[i-2],19)^(w[i-2]>>10)) + w[i-7] + (ROR(w[i-15],7)^ROR(w[i-15],18)^(w[i-15]>>3)) + w[i-16];\n"
	"  a=h[0];b=h[1];c=h[2];d=h[3];e=h[4];f=h[5];g=h[6];k=h[7];\n"
	"  for (i = 0; i < 64; i++) {\n"
	"    t1 = k + (ROR(e,6)^ROR(e,11)^ROR(e,25)) + ((e&f)^(~e&g)) + K[i] + w[i];\n"
	"    t2 = (ROR(a,2)^ROR(a,13)^ROR(a,22)) + ((a&b)^(a&c)^(b&c));\n"
	"    k=g; g=f; f=e; e=d+t1; d=c; c=b; b=a; a=t1+t2; }\n"
	"  h[0]+=a;h[1]+=b;h[2]+=c;h[3]+=d;h[4]+=e;h[5]+=f;h[6]+=g;h[7]+=k;\n"
	"}\n"
	"static unsigned char buf[65536];\n"
	"uint32_t compute(uint32_t rounds, char *hex_out) {\n"
	"  static const char X[] = \"0123456789abcdef\";\n"
	"  uint32_t h[8], r, i; unsigned j;\n"
	"  for (j = 0; j < sizeof(buf); j++) buf[j] = (unsigned char)(j * 31u + 7u);\n"
	"  for (r = 0; r < rounds; r++) {\n"
	"    h[0]=0x6a09e667;h[1]=0xbb67ae85;h[2]=0x3c6ef372;h[3]=0xa54ff53a;h[4]=0x510e527f;h[5]=0x9b05688c;h[6]=0x1f83d9ab;h[7]=0x5be0cd19;\n"
	"    for (j = 0; j < sizeof(buf); j += 64) block(h, buf + j);\n"
	"    for (i = 0; i < 8; i++) { buf[4*i]=(unsigned char)(h[i]>>24); buf[4*i+1]=(unsigned char)(h[i]>>16); buf[4*i+2]=(unsigned char)(h[i]>>8); buf[4*i+3]=(unsigned char)h[i]; }\n"
	"  }\n"
	"  for (i = 0; i < 32; i++) { hex_out[2*i] = X[buf[i]>>4]; hex_out[2*i+1] = X[buf[i]&15]; }\n"
	"  return rounds;\n"
	"}\n";

/* The guest wrapper: the guest ABI exports around compute(). */
static const char guest_src[] =
	"#include <stdint.h>\n"
	"uint32_t compute(uint32_t rounds, char *hex_out);\n"
	"#define EXPORT(n) __attribute__((export_name(n)))\n"
	"static const char describe_json[] = \"{\\\"name\\\":\\\"compute\\\",\\\"version\\\":\\\"1.0.0\\\",\\\"limits\\\":{\\\"timeout_ms\\\":600000,\\\"memory_pages\\\":64}}\";\n"
	"static char out[128];\n"
	"static uint32_t len_slot;\n"
	"EXPORT(\"_initialize\") void init(void) {}\n"
	"EXPORT(\"af_abi_version\") int32_t abi(void) { return 1; }\n"
	"EXPORT(\"af_alloc\") int32_t alloc(int32_t n) { static char arena[4096]; static int32_t used; if (n < 0 || used + n > 4096) return 0; used += (n + 7) & ~7; return (int32_t)(uintptr_t)(arena + used - ((n + 7) & ~7)); }\n"
	"EXPORT(\"af_describe\") int32_t describe(int32_t p) { *(uint32_t *)(uintptr_t)p = sizeof(describe_json) - 1; return (int32_t)(uintptr_t)describe_json; }\n"
	"EXPORT(\"af_handle\") int32_t handle(int32_t in, int32_t len, int32_t p) {\n"
	"  static const char head[] = \"{\\\"ok\\\":true,\\\"output\\\":\\\"\"; unsigned i;\n"
	"  (void)in; (void)len; (void)len_slot;\n"
	"  for (i = 0; i < sizeof(head) - 1; i++) out[i] = head[i];\n"
	"  compute(ROUNDS, out + sizeof(head) - 1);\n"
	"  out[sizeof(head) - 1 + 64] = '\"'; out[sizeof(head) + 64] = '}';\n"
	"  *(uint32_t *)(uintptr_t)p = sizeof(head) + 65; return (int32_t)(uintptr_t)out; }\n";

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

static void report(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(double), cmp_double);
	printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f |\n", what, n, pct(v, n, 0.5) * 1e6,
	       pct(v, n, 0.99) * 1e6, pct(v, n, 0.999) * 1e6, v[n - 1] * 1e6);
}

static int write_text(const char *path, const char *a, const char *b)
{
	FILE *fp = fopen(path, "w");

	if (!fp)
		return -1;
	fputs(a, fp);
	if (b)
		fputs(b, fp);
	return fclose(fp);
}

static rt_host_env env;
static char root[64];

/* ---- 1. warm invocations ---- */

static int warm(const art_wasm_native_v1 *n, const rt_policy *pol, const char *label,
		const char *req, size_t iters, const char *want_code)
{
	double *t = malloc(iters * sizeof(double)), *inst = malloc(iters * sizeof(double));
	size_t i, bad = 0;

	if (!t || !inst)
		return -1;
	for (i = 0; i < 1000; i++) { /* warm-up */
		rt_invoke_result res;

		rt_exec_invoke(&res, n, pol, &env, req, strlen(req));
		rt_invoke_result_clear(&res);
	}
	for (i = 0; i < iters; i++) {
		rt_invoke_result res;
		double t0 = now_s();

		rt_exec_invoke(&res, n, pol, &env, req, strlen(req));
		t[i] = now_s() - t0;
		inst[i] = res.instantiate_seconds;
		if (want_code ? !res.error_code || strcmp(res.error_code, want_code) : res.error_code != NULL)
			bad++;
		rt_invoke_result_clear(&res);
	}
	{
		char l1[160], l2[160];

		snprintf(l1, sizeof(l1), "%s: instantiate+call+free (whole invocation)", label);
		snprintf(l2, sizeof(l2), "%s: instantiate + _initialize only", label);
		report(l1, t, iters);
		report(l2, inst, iters);
		/* report() sorted both arrays */
		snprintf(l1, sizeof(l1), "warm invocation p50, %s", label);
		bench_figure("instantiate", l1, pct(t, iters, 0.5) * 1e6, "us", NULL, 0);
		snprintf(l1, sizeof(l1), "warm invocation p99, %s", label);
		bench_figure("instantiate", l1, pct(t, iters, 0.99) * 1e6, "us", NULL, 0);
		snprintf(l2, sizeof(l2), "instantiate + _initialize p99, %s", label);
		bench_figure("instantiate", l2, pct(inst, iters, 0.99) * 1e6, "us", NULL, 0);
	}
	if (bad)
		printf("(warning: %zu unexpected answers)\n", bad);
	free(t);
	free(inst);
	return 0;
}

/* ---- 2. cold load ---- */

static int cold(const gen_toolchain *tc, const char *json, size_t json_len)
{
	char store[128], dir[128], keyring[128], resolved[ART_DIGEST_STR_LEN + 1];
	static const char *const caps[] = {"clock", "kv.read", "kv.write", "log", "tool_call"};
	art_manifest_import imports[8];
	art_manifest_export exports[8];
	double verify[COLD_RUNS], load[COLD_RUNS], first[COLD_RUNS], total[COLD_RUNS], t0, t1, t2, t3;
	art_provenance_info prov = {"bench", "main", "https://agentfactory.dev/builder/v1"};
	art_manifest_info info;
	art_build_parts parts;
	gen_result *r = NULL;
	art_key *key = NULL;
	art_keyring *kr = NULL;
	art_store *s = NULL;
	art_store_txn *txn = NULL;
	size_t k;
	int i;

	snprintf(store, sizeof(store), "%s/store", root);
	snprintf(dir, sizeof(dir), "%s/bm", root);
	snprintf(keyring, sizeof(keyring), "%s/kr.json", root);
	if (gen_build_agent(&r, tc, json, json_len, dir, NULL) || art_key_generate(&key, 2048) ||
	    art_keyring_new(&kr) || art_keyring_add(kr, key, ART_ROLE_BUILDER, time(NULL) - 60, 0) ||
	    art_store_open(&s, store, ART_STORE_CREATE) || art_store_txn_begin(&txn, s))
		return -1;
	memset(&info, 0, sizeof(info));
	for (k = 0; k < r->module->n_imports && k < 8; k++) {
		imports[k].module = r->module->imports[k].module;
		imports[k].name = r->module->imports[k].name;
		imports[k].kind = "func";
	}
	info.n_imports = k;
	for (k = 0; k < r->module->n_exports && k < 8; k++) {
		exports[k].name = r->module->exports[k].name;
		exports[k].kind = r->module->exports[k].kind == ART_WASM_MEMORY ? "memory" : "func";
	}
	info.n_exports = k;
	art_manifest_digest(resolved, json, json_len);
	info.name = "backup-manager";
	info.version = "1.0.0";
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = resolved;
	info.toolchain_id = gen_toolchain_id(tc);
	info.native_compat_id = gen_toolchain_compat_id(tc);
	info.target_triple = gen_toolchain_target(tc);
	info.guest_abi_version = 1;
	info.imports = imports;
	info.exports = exports;
	info.capabilities = caps;
	info.n_capabilities = 5;
	parts.wasm = r->wasm;
	parts.wasm_len = r->wasm_len;
	parts.native = r->so;
	parts.native_len = r->so_len;
	parts.source = r->c_source;
	parts.source_len = r->c_len;
	if (art_store_put_build(txn, NULL, &info, &prov, &parts, key) || art_store_txn_commit(txn))
		return -1;
	art_store_close(s);
	s = NULL;
	if (art_store_open(&s, store, ART_STORE_RDONLY))
		return -1;
	for (i = 0; i < COLD_RUNS; i++) {
		art_verified_artifact *va = NULL;
		rt_module *m = NULL;
		rt_invoke_result res;
		const char *reason;

		t0 = now_s();
		if (art_store_load_verified(&va, s, kr, "backup-manager", NULL, time(NULL)))
			return -1;
		t1 = now_s();
		art_verified_artifact_free(va);
		t1 = t1 - t0;
		t0 = now_s();
		if (rt_module_from_store(&m, &reason, s, kr, "backup-manager", NULL, time(NULL), &env))
			return -1;
		t2 = now_s();
		rt_exec_invoke(&res, m->native, m->policy, &env, "{\"inputs\":{}}", 13);
		t3 = now_s();
		rt_invoke_result_clear(&res);
		rt_module_unref(m);
		verify[i] = t1;
		load[i] = t2 - t0;
		first[i] = t3 - t2;
		total[i] = t3 - t0;
	}
	printf("\nCold load of backup-manager (.so %zu B, .wasm %zu B, zstd in LMDB), %d runs:\n\n",
	       r->so_len, r->wasm_len, COLD_RUNS);
	printf("| stage | runs | p50 us | p99 us | p99.9 us | max us |\n|---|---|---|---|---|---|\n");
	report("store read + verify (signature, all part digests, zstd)", verify, COLD_RUNS);
	report("... + sealed memfd + dlopen + init + describe (rt_module_from_store)", load, COLD_RUNS);
	report("first instance answered", first, COLD_RUNS);
	report("total: store read -> first answer", total, COLD_RUNS);
	bench_figure("instantiate", "cold load, store read -> first answer, p50", pct(total, COLD_RUNS, 0.5) * 1e3,
		     "ms", NULL, 0);
	art_store_close(s);
	art_keyring_free(kr);
	art_key_free(key);
	gen_result_free(r);
	return 0;
}

/* ---- 3. sandbox overhead ---- */

static int overhead(void)
{
	char path[256], so[256], hex[65] = "", def[64];
	uint32_t (*native_compute)(uint32_t, char *);
	double best_native = 1e9, best_sandbox = 1e9, t0;
	const char *repeats_env = getenv("AF_BENCH_REPEATS");
	long repeats_asked = repeats_env ? strtol(repeats_env, NULL, 10) : 0;
	int repeats = repeats_asked > 0 && repeats_asked < 1000 ? (int)repeats_asked : 7;
	const char *reason;
	rt_module *m = NULL;
	rt_policy *pol = NULL;
	char *wasm = NULL, *sobytes = NULL;
	size_t wasm_len = 0, so_len = 0;
	char digest[ART_DIGEST_STR_LEN + 1], sandbox_hex[65] = "";
	void *dl;
	int i;

	snprintf(path, sizeof(path), "%s/compute.c", root);
	snprintf(so, sizeof(so), "%s/compute_native.so", root);
	snprintf(def, sizeof(def), "-DROUNDS=%d", COMPUTE_ROUNDS);
	if (write_text(path, compute_src, NULL))
		return -1;
	{
		char *cc_argv[] = {"cc", "-O2", "-fPIC", "-shared", "-o", so, path, NULL};

		if (lab_run(root, cc_argv))
			return -1;
	}
	snprintf(path, sizeof(path), "%s/guest", root);
	mkdir(path, 0755);
	if (gen_guest_write(path))
		return -1;
	snprintf(path, sizeof(path), "%s/guest/compute_guest.c", root);
	if (write_text(path, compute_src, guest_src))
		return -1;
	snprintf(path, sizeof(path), "%s/guest", root);
	{
		char *clang_argv[] = {(char *)lab_clang(), "--target=wasm32", "-nostdlib", "-O2", "-mcpu=mvp",
				      "-msign-ext", "-mmutable-globals", "-mnontrapping-fptoint",
				      "-mbulk-memory", def, "-Wl,--no-entry", "-Wl,--stack-first",
				      "-Wl,-z,stack-size=65536", "-Wl,--max-memory=4194304", "-o",
				      "agent.wasm", "compute_guest.c", NULL};
		char *wasm2c_argv[] = {"wasm2c", "-n", "agent", "agent.wasm", "-o", "agent_native.c", NULL};
		char *cc_argv[] = {"cc", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-DNDEBUG",
				   "-DAF_NATIVE_HAS_IMPORTS=0", "-DAF_WASM_RT_VERSION=\"wabt-1.0.32\"", "-I.",
				   "agent_native.c", "af_native.c", "-o", "agent.so", "-Wl,-z,defs", NULL};

		if (lab_run(path, clang_argv) || lab_run(path, wasm2c_argv) || lab_run(path, cc_argv))
			return -1;
	}
	snprintf(path, sizeof(path), "%s/guest/agent.so", root);
	if (art_file_read(&sobytes, &so_len, path, 64 << 20))
		return -1;
	art_manifest_digest(digest, sobytes, so_len);
	if (rt_module_from_bytes(&m, &reason, sobytes, so_len, digest, NULL, 0, "compute", "1.0.0", &env)) {
		fprintf(stderr, "compute guest: %s\n", art_error_last());
		return -1;
	}
	pol = m->policy;
	dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return -1;
	*(void **)&native_compute = dlsym(dl, "compute");
	/* Interleaved, best of 7 each (AF_BENCH_REPEATS): the machine may be shared. */
	for (i = 0; i < repeats; i++) {
		rt_invoke_result res;
		double t;

		t0 = now_s();
		native_compute(COMPUTE_ROUNDS, hex);
		t = now_s() - t0;
		if (t < best_native)
			best_native = t;
		t0 = now_s();
		rt_exec_invoke(&res, m->native, pol, &env, "{}", 2);
		t = now_s() - t0;
		if (t < best_sandbox)
			best_sandbox = t;
		if (res.body && strstr(res.body, "output\":\""))
			snprintf(sandbox_hex, sizeof(sandbox_hex), "%.64s", strstr(res.body, "output\":\"") + 9);
		rt_invoke_result_clear(&res);
	}
	printf("\nSandbox overhead: SHA-256 chained %d times over 64 KiB (%.0f MiB hashed), same C source,"
	       " best of %d:\n\n", COMPUTE_ROUNDS, COMPUTE_ROUNDS / 16.0, repeats);
	printf("| build | ms | vs native |\n|---|---|---|\n");
	printf("| native: cc -O2 | %.1f | 1.00 |\n", best_native * 1e3);
	printf("| sandboxed: clang wasm32 -O2 -> wasm2c -> cc -O2, runtime sandbox (whole invocation) | %.1f | %.3f |\n",
	       best_sandbox * 1e3, best_sandbox / best_native);
	if (strcmp(hex, sandbox_hex) != 0)
		printf("(warning: digests differ: %s vs %s)\n", hex, sandbox_hex);
	/* V8 (Node) on the same .wasm, as a peer, when node is installed. */
	snprintf(path, sizeof(path), "%s/v8.js", root);
	{
		char js[2048], wasmpath[256], cmd[512];
		FILE *p;

		snprintf(wasmpath, sizeof(wasmpath), "%s/guest/agent.wasm", root);
		snprintf(js, sizeof(js),
			 "const fs=require('fs');const m=new WebAssembly.Module(fs.readFileSync('%s'));"
			 "let best=1e9;for(let i=0;i<%d;i++){const t0=process.hrtime.bigint();"
			 "const inst=new WebAssembly.Instance(m,{});inst.exports._initialize();"
			 "const p=inst.exports.af_alloc(4);inst.exports.af_handle(0,0,p);"
			 "const t=Number(process.hrtime.bigint()-t0)/1e6;if(t<best)best=t;}"
			 "console.log(best.toFixed(1));", wasmpath, repeats);
		if (write_text(path, js, NULL) == 0) {
			const char *node = getenv("AF_NODE");

			snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", node && *node ? node : "node", path);
			p = popen(cmd, "r");
			if (p) {
				char line[64] = "";

				double v8 = fgets(line, sizeof(line), p) ? strtod(line, NULL) : 0;

				if (v8 > 0) {
					printf("| peer: Node's V8 on the same .wasm (instantiate + call) | %.1f | %.3f |\n",
					       v8, v8 / (best_native * 1e3));
					bench_figure("instantiate", "SHA-256 agent in the runtime's sandbox, vs native",
						     best_sandbox / best_native, "x native", "V8, same .wasm",
						     v8 / (best_native * 1e3));
				}
				pclose(p);
			}
		}
	}
	dlclose(dl);
	rt_module_unref(m);
	free(wasm);
	free(sobytes);
	(void)wasm_len;
	return 0;
}

int main(int argc, char **argv)
{
	size_t iters = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 100000;
	static const char *const lab_caps[] = {"clock", "kv.read", "kv.write", "llm_chat",
					       "log", "random", "tool_call"};
	static const char *const bm_caps[] = {"clock", "kv.read", "kv.write", "log", "tool_call"};
	const char *src = getenv("AF_SRCDIR"), *reason;
	gen_toolchain *tc = NULL;
	lab_build lab;
	rt_module *lab_mod = NULL, *bm = NULL;
	gen_result *r = NULL;
	char dir[128], path[512], *json = NULL, digest[ART_DIGEST_STR_LEN + 1];
	size_t json_len = 0;
	FILE *devnull = fopen("/dev/null", "w");
	int rc = 1;

	if (!iters)
		iters = 100000;
	snprintf(root, sizeof(root), "/tmp/af-bench-rt-XXXXXX");
	if (!mkdtemp(root) || gen_toolchain_discover(&tc)) {
		fprintf(stderr, "setup: %s\n", art_error_last());
		return 1;
	}
	env.log = devnull;
	env.max_memory_pages = 1024;
	env.max_timeout_ms = 600000;

	snprintf(dir, sizeof(dir), "%s/lab", root);
	snprintf(path, sizeof(path), "%s/tests/fixtures/codegen/backup-manager.json", src ? src : ".");
	if (lab_build_module(&lab, dir, "lab") ||
	    rt_module_from_bytes(&lab_mod, &reason, lab.so, lab.so_len, lab.so_digest, lab_caps, 7, "lab",
				 "1.0.0", &env) ||
	    art_file_read(&json, &json_len, path, 1 << 20)) {
		fprintf(stderr, "setup: %s\n", art_error_last());
		goto cleanup;
	}
	snprintf(dir, sizeof(dir), "%s/bm-warm", root);
	if (gen_build_agent(&r, tc, json, json_len, dir, NULL)) {
		fprintf(stderr, "build: %s\n", art_error_last());
		goto cleanup;
	}
	art_manifest_digest(digest, r->so, r->so_len);
	if (rt_module_from_bytes(&bm, &reason, r->so, r->so_len, digest, bm_caps, 5, "backup-manager",
				 "1.0.0", &env)) {
		fprintf(stderr, "load: %s\n", art_error_last());
		goto cleanup;
	}
	printf("Warm invocations, %zu iterations each, one thread (microseconds):\n\n", iters);
	printf("| what | n | p50 us | p99 us | p99.9 us | max us |\n|---|---|---|---|---|---|\n");
	if (warm(lab_mod->native, lab_mod->policy, "lab guest, minimal request", "{\"cmd\":\"state\"}",
		 iters, NULL) ||
	    warm(bm->native, bm->policy, "backup-manager, schema check fails (no host call)",
		 "{\"inputs\":{}}", iters, "invalid_input") ||
	    warm(bm->native, bm->policy,
		 "backup-manager, 2 host tool calls (clock_now, kv_get: no data dir)",
		 "{\"inputs\":{\"release\":\"r1\"}}", iters, "step_failed"))
		goto cleanup;
	if (cold(tc, json, json_len) || overhead()) {
		fprintf(stderr, "bench: %s\n", art_error_last());
		goto cleanup;
	}
	{
		rt_sandbox_stats st;

		rt_sandbox_stats_get(&st);
		printf("\nReservations: %zu mapped, %llu created, %llu reused.\n", st.reservations,
		       (unsigned long long)st.created, (unsigned long long)st.reused);
	}
	rc = 0;
cleanup:
	rt_module_unref(lab_mod);
	rt_module_unref(bm);
	gen_result_free(r);
	lab_build_free(&lab);
	gen_toolchain_free(tc);
	free(json);
	if (devnull)
		fclose(devnull);
	lab_rmtree(root);
	return rc;
}
