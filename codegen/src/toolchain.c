/*
 * toolchain.c - toolchain discovery, identity strings and the build of one
 * agent: resolved JSON -> agent.c -> agent.wasm -> checks -> agent.so.
 *
 * Inside a work directory the names are fixed (agent.c, af_guest.c,
 * af_json.c, af_guest.h, af_native.c, art/wasm.h, art/utf8.h, *.o, agent.wasm,
 * agent_native.c/.h, agent.so) and every tool runs with the work directory
 * as cwd and relative paths, so nothing about the directory reaches the
 * outputs. The Debian layout compiles with -nostdinc and explicit -isystem
 * directories: clang would otherwise also search /usr/local/include and the
 * host's /usr/include for wasm32 code.
 */
#include "gen/toolchain.h"

#include "art/error.h"
#include "art/util.h"
#include "gen/abi.h"
#include "gen/cgen.h"
#include "gen/embed.h"
#include "gen_spawn.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOOL_OUTPUT_IN_ERROR 900
#define MAX_ARTIFACT ((size_t)256 << 20)
#define WASM_FEATURES "-mcpu=mvp", "-msign-ext", "-mmutable-globals", "-mnontrapping-fptoint", \
		      "-mbulk-memory"

struct gen_toolchain {
	char *clang;
	char *sysroot;
	char *isystem_resource, *isystem_wasi;  /* Debian layout; NULL with wasi-sdk */
	char *wasm2c, *wasm_validate, *cc;
	char *clang_version, *wasm2c_version, *cc_version, *target, *wasm_rt;
	char *sysroot_digest;
	char guest_digest[65];
	char *id, *compat_id;
	char *guest_cache; /* directory of compiled guest objects, or NULL */
	int timeout_ms;
};

void gen_toolchain_free(gen_toolchain *tc)
{
	if (!tc)
		return;
	free(tc->clang);
	free(tc->sysroot);
	free(tc->isystem_resource);
	free(tc->isystem_wasi);
	free(tc->wasm2c);
	free(tc->wasm_validate);
	free(tc->cc);
	free(tc->clang_version);
	free(tc->wasm2c_version);
	free(tc->cc_version);
	free(tc->target);
	free(tc->wasm_rt);
	free(tc->sysroot_digest);
	free(tc->id);
	free(tc->compat_id);
	free(tc->guest_cache);
	free(tc);
}

static bool is_file(const char *p)
{
	struct stat st;

	return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p)
{
	struct stat st;

	return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *a, const char *b)
{
	char *s = NULL;

	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

/* Run a tool for its output; the first line, trimmed, into *out. */
static int first_line(char **out, const char *const *argv, int timeout_ms)
{
	art_buf o = ART_BUF_INIT;
	int status, rc;
	size_t n;

	*out = NULL;
	rc = gen__spawn(argv, NULL, NULL, timeout_ms, &o, &status);
	if (rc == 0 && status != 0)
		rc = art_error_set(AF_EIO, "%s %s failed with exit status %d: %.300s", argv[0],
				   argv[1] ? argv[1] : "", status, o.data ? o.data : "");
	if (rc == 0) {
		const char *s = o.data ? o.data : "";

		n = strcspn(s, "\r\n");
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		*out = strndup(s, n);
		if (!*out)
			rc = art_error_set(AF_ENOMEM, "out of memory");
	}
	art_buf_free(&o);
	return rc;
}

/* Hash the contents of files into "sha256:<hex>". Missing files hash as absent. */
static int files_digest(char **out, const char *const *paths, size_t n)
{
	art_buf all = ART_BUF_INIT;
	char hex[65];
	size_t i;
	int rc = 0;

	all.max = (size_t)1 << 30;
	for (i = 0; i < n && rc == 0; i++) {
		char *data = NULL, h[65];
		size_t len = 0;

		rc = art_file_read(&data, &len, paths[i], MAX_ARTIFACT);
		if (rc == AF_ENOTFOUND) {
			art_error_clear();
			rc = art_buf_printf(&all, "-\n");
			continue;
		}
		if (rc == 0) {
			art_sha256_hex(data, len, h);
			rc = art_buf_printf(&all, "%s\n", h);
		}
		free(data);
	}
	if (rc == 0) {
		art_sha256_hex(all.data ? all.data : "", all.len, hex);
		if (asprintf(out, "sha256:%s", hex) < 0) {
			*out = NULL;
			rc = art_error_set(AF_ENOMEM, "out of memory");
		}
	}
	art_buf_free(&all);
	return rc;
}

static int need_tool(char **out, const char *name, const char *package)
{
	*out = gen__which(name);
	if (!*out && errno == ENOMEM)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!*out)
		return art_error_set(AF_ENOTFOUND, "toolchain: %s not found in PATH (install the Debian package %s)",
				     name, package);
	return 0;
}

static int discover_wasi_sdk(gen_toolchain *tc, const char *sdk)
{
	tc->clang = join(sdk, "bin/clang");
	tc->sysroot = join(sdk, "share/wasi-sysroot");
	if (!tc->clang || !tc->sysroot)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (access(tc->clang, X_OK) != 0)
		return art_error_set(AF_ENOTFOUND, "toolchain: WASI_SDK_PATH=%s has no executable bin/clang", sdk);
	if (!is_dir(tc->sysroot))
		return art_error_set(AF_ENOTFOUND, "toolchain: WASI_SDK_PATH=%s has no share/wasi-sysroot", sdk);
	return 0;
}

static int discover_debian(gen_toolchain *tc)
{
	char *wasm_ld = NULL, *resource = NULL, *builtins = NULL;
	const char *argv[4];
	int rc = 0;

	tc->clang = gen__which("clang-19");
	if (!tc->clang && errno == ENOMEM)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!tc->clang && access("/usr/lib/llvm-19/bin/clang", X_OK) == 0 &&
	    !(tc->clang = strdup("/usr/lib/llvm-19/bin/clang")))
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!tc->clang)
		return art_error_set(AF_ENOTFOUND, "toolchain: clang-19 not found (install the Debian package clang-19, or set WASI_SDK_PATH)");
	/* clang-19 runs wasm-ld-19 (Debian's name) or its own bin/wasm-ld. */
	wasm_ld = gen__which("wasm-ld-19");
	if (!wasm_ld && errno == ENOMEM)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!wasm_ld && access("/usr/lib/llvm-19/bin/wasm-ld", X_OK) != 0)
		return art_error_set(AF_ENOTFOUND, "toolchain: wasm-ld not found (install the Debian package lld-19)");
	free(wasm_ld);
	tc->sysroot = strdup("/usr");
	tc->isystem_wasi = strdup("/usr/include/wasm32-wasi");
	if (!tc->sysroot || !tc->isystem_wasi)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!is_file("/usr/lib/wasm32-wasi/libc.a") || !is_file("/usr/include/wasm32-wasi/stdlib.h"))
		return art_error_set(AF_ENOTFOUND, "toolchain: wasi-libc not found under /usr/lib/wasm32-wasi (install the Debian package wasi-libc)");
	argv[0] = tc->clang;
	argv[1] = "--target=wasm32-wasi";
	argv[2] = "-print-resource-dir";
	argv[3] = NULL;
	if ((rc = first_line(&resource, argv, tc->timeout_ms)) < 0)
		return rc;
	tc->isystem_resource = join(resource, "include");
	builtins = join(resource, "lib/wasi/libclang_rt.builtins-wasm32.a");
	if (!tc->isystem_resource || !builtins)
		rc = art_error_set(AF_ENOMEM, "out of memory");
	else if (!is_file(builtins))
		rc = art_error_set(AF_ENOTFOUND, "toolchain: %s not found (install the Debian package libclang-rt-19-dev-wasm32)",
				   builtins);
	free(resource);
	free(builtins);
	return rc;
}

/* libc.a and crt1-reactor.o of the sysroot and clang's wasm builtins: they
 * end up in every .wasm, so their bytes are part of the toolchain id. */
static int sysroot_digest(gen_toolchain *tc)
{
	const char *argv[5] = {tc->clang, "--target=wasm32-wasi", "-rtlib=compiler-rt",
			       "-print-libgcc-file-name", NULL};
	char *builtins = NULL, *libdir = NULL, *libc = NULL, *crt = NULL;
	const char *paths[3];
	int rc;

	if ((rc = first_line(&builtins, argv, tc->timeout_ms)) < 0)
		return rc;
	libdir = join(tc->sysroot, "lib/wasm32-wasi");
	if (libdir && !is_dir(libdir)) {
		free(libdir);
		libdir = join(tc->sysroot, "lib/wasm32-wasip1");
	}
	libc = libdir ? join(libdir, "libc.a") : NULL;
	crt = libdir ? join(libdir, "crt1-reactor.o") : NULL;
	if (!libc || !crt) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	paths[0] = libc;
	paths[1] = crt;
	paths[2] = builtins;
	rc = files_digest(&tc->sysroot_digest, paths, 3);
cleanup:
	free(builtins);
	free(libdir);
	free(libc);
	free(crt);
	return rc;
}

int gen_toolchain_discover(gen_toolchain **out)
{
	gen_toolchain *tc;
	const char *sdk = getenv("WASI_SDK_PATH");
	const char *argv[3];
	int rc;

	if (!out)
		return art_error_set(AF_EINVAL, "toolchain: NULL argument");
	*out = NULL;
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return art_error_set(AF_ENOMEM, "out of memory");
	tc->timeout_ms = GEN_TOOL_TIMEOUT_MS;
	rc = sdk && *sdk ? discover_wasi_sdk(tc, sdk) : discover_debian(tc);
	if (rc < 0)
		goto cleanup;
	if ((rc = need_tool(&tc->wasm2c, "wasm2c", "wabt")) < 0 ||
	    (rc = need_tool(&tc->wasm_validate, "wasm-validate", "wabt")) < 0 ||
	    (rc = need_tool(&tc->cc, "cc", "build-essential")) < 0)
		goto cleanup;
	if (!is_file("/usr/include/wasm-rt.h")) {
		rc = art_error_set(AF_ENOTFOUND, "toolchain: /usr/include/wasm-rt.h not found (install the Debian package wabt)");
		goto cleanup;
	}

	argv[2] = NULL;
	argv[0] = tc->clang;
	argv[1] = "--version";
	if ((rc = first_line(&tc->clang_version, argv, tc->timeout_ms)) < 0)
		goto cleanup;
	argv[0] = tc->wasm2c;
	if ((rc = first_line(&tc->wasm2c_version, argv, tc->timeout_ms)) < 0)
		goto cleanup;
	argv[0] = tc->cc;
	if ((rc = first_line(&tc->cc_version, argv, tc->timeout_ms)) < 0)
		goto cleanup;
	argv[1] = "-dumpmachine";
	if ((rc = first_line(&tc->target, argv, tc->timeout_ms)) < 0)
		goto cleanup;
	if ((rc = sysroot_digest(tc)) < 0)
		goto cleanup;
	gen_guest_digest(tc->guest_digest);

	if (asprintf(&tc->wasm_rt, "wabt-%s", tc->wasm2c_version) < 0 ||
	    asprintf(&tc->id,
		     "af-toolchain/1 clang=%s; wasm-sysroot=%s; wasm2c=%s; cc=%s; target=%s; guest-abi=%d; guest-src=sha256:%s",
		     tc->clang_version, tc->sysroot_digest, tc->wasm2c_version, tc->cc_version,
		     tc->target, GEN_GUEST_ABI_VERSION, tc->guest_digest) < 0 ||
	    asprintf(&tc->compat_id,
		     "af-native/%d target=%s; wasm-rt=%s; guest-abi=%d; native-abi=%d; memcheck=guard; cc=%s",
		     ART_WASM_NATIVE_ABI_VERSION, tc->target, tc->wasm_rt, GEN_GUEST_ABI_VERSION,
		     ART_WASM_NATIVE_ABI_VERSION, tc->cc_version) < 0) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	*out = tc;
	tc = NULL;
cleanup:
	gen_toolchain_free(tc);
	return rc;
}

const char *gen_toolchain_id(const gen_toolchain *tc)
{
	return tc ? tc->id : "";
}

const char *gen_toolchain_compat_id(const gen_toolchain *tc)
{
	return tc ? tc->compat_id : "";
}

const char *gen_toolchain_wasm_rt(const gen_toolchain *tc)
{
	return tc ? tc->wasm_rt : "";
}

const char *gen_toolchain_target(const gen_toolchain *tc)
{
	return tc ? tc->target : "";
}

void gen_toolchain_set_timeout(gen_toolchain *tc, int timeout_ms)
{
	if (tc && timeout_ms > 0)
		tc->timeout_ms = timeout_ms;
}

int gen_toolchain_set_guest_cache(gen_toolchain *tc, const char *dir)
{
	char *p = NULL;

	if (!tc)
		return art_error_set(AF_EINVAL, "toolchain: NULL argument");
	if (dir) {
		p = realpath(dir, NULL);
		if (!p || !is_dir(p)) {
			free(p);
			return art_error_set(AF_EIO, "toolchain: guest cache %s: %s", dir,
					     strerror(errno ? errno : ENOTDIR));
		}
	}
	free(tc->guest_cache);
	tc->guest_cache = p;
	return 0;
}

void gen_result_free(gen_result *r)
{
	if (!r)
		return;
	free(r->c_source);
	free(r->wasm);
	free(r->so);
	art_wasm_module_free(r->module);
	free(r);
}

/* ---- the build ---------------------------------------------------------------- */

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Prefix the calling thread's error message (copied first: art_error_set
 * writes into the very buffer art_error_last returns). */
static int prefix_error(int rc, const char *prefix, const char *suffix)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", art_error_last());
	return art_error_set(rc, "%s: %s%s", prefix, msg, suffix ? suffix : "");
}

/* Run one step of the build; a non-zero exit is an error with the output. */
static int run_tool(const gen_toolchain *tc, const char *what, const char *const *argv,
		    const char *wd, const char *tmp)
{
	art_buf o = ART_BUF_INIT;
	int status, rc;

	rc = gen__spawn(argv, wd, tmp, tc->timeout_ms, &o, &status);
	if (rc == 0 && status != 0)
		rc = art_error_set(AF_EIO, "%s failed (exit status %d): %.*s", what, status,
				   TOOL_OUTPUT_IN_ERROR, o.data ? o.data : "(no output)");
	else if (rc < 0)
		rc = prefix_error(rc, what, NULL);
	art_buf_free(&o);
	return rc;
}

typedef struct argv_buf {
	const char *v[64];
	size_t n;
} argv_buf;

static void av(argv_buf *a, const char *s)
{
	if (a->n < sizeof(a->v) / sizeof(a->v[0]) - 1)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void av_compile_flags(argv_buf *a, const gen_toolchain *tc)
{
	static const char *const features[] = {WASM_FEATURES};
	size_t i;

	av(a, tc->clang);
	av(a, "--target=wasm32-wasi");
	if (tc->isystem_resource) {
		av(a, "-nostdinc");
		av(a, "-isystem");
		av(a, tc->isystem_resource);
		av(a, "-isystem");
		av(a, tc->isystem_wasi);
	} else {
		av(a, "--sysroot");
		av(a, tc->sysroot);
	}
	for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		av(a, features[i]);
	av(a, "-O2");
	av(a, "-std=c17");
	av(a, "-Wall");
	av(a, "-Wextra");
	av(a, "-Werror");
	av(a, "-DNDEBUG");
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = join(dir, name);
	FILE *fp;
	int rc = 0;

	if (!path)
		return art_error_set(AF_ENOMEM, "out of memory");
	fp = fopen(path, "wbe");
	if (!fp || fwrite(data, 1, len, fp) != len)
		rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
	if (fp && fclose(fp) != 0 && rc == 0)
		rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
	free(path);
	return rc;
}

static int read_output(uint8_t **out, size_t *len, const char *dir, const char *name)
{
	char *path = join(dir, name), *data = NULL;
	int rc;

	if (!path)
		return art_error_set(AF_ENOMEM, "out of memory");
	rc = art_file_read(&data, len, path, MAX_ARTIFACT);
	free(path);
	*out = (uint8_t *)data;
	return rc;
}

/* The -D switches of the granted host functions, e.g. "-DAF_CAP_LOG=1". */
static const struct {
	unsigned bit;
	const char *define;
} cap_defines[] = {
	{GEN_CAP_LOG, "-DAF_CAP_LOG=1"},
	{GEN_CAP_CLOCK, "-DAF_CAP_CLOCK=1"},
	{GEN_CAP_RANDOM, "-DAF_CAP_RANDOM=1"},
	{GEN_CAP_LLM_CHAT, "-DAF_CAP_LLM_CHAT=1"},
	{GEN_CAP_TOOL_CALL, "-DAF_CAP_TOOL_CALL=1"},
};

static int compile_unit(const gen_toolchain *tc, const gen_agent *agent, const char *wd,
			const char *tmp, const char *prefix_map, const char *src, const char *obj)
{
	char what[64];
	argv_buf a = {{0}, 0};
	size_t i;

	av_compile_flags(&a, tc);
	av(&a, prefix_map);
	for (i = 0; i < sizeof(cap_defines) / sizeof(cap_defines[0]); i++)
		if (agent->abi_caps & cap_defines[i].bit)
			av(&a, cap_defines[i].define);
	av(&a, "-I.");
	av(&a, "-c");
	av(&a, src);
	av(&a, "-o");
	av(&a, obj);
	snprintf(what, sizeof(what), "clang (compile %s)", src);
	return run_tool(tc, what, a.v, wd, tmp);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Copy (or hard-link) <from>/<name> to <to>/<name>. */
static int place_object(const char *from, const char *to, const char *name)
{
	char *src = join(from, name), *dst = join(to, name), *data = NULL;
	size_t len = 0;
	int rc = 0;

	if (!src || !dst) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto out;
	}
	(void)unlink(dst);
	if (link(src, dst) == 0)
		goto out;
	if ((rc = art_file_read(&data, &len, src, MAX_ARTIFACT)) == 0)
		rc = write_file(to, name, data, len);
out:
	free(src);
	free(dst);
	free(data);
	return rc;
}

/*
 * The guest library's wasm objects, compiled once per toolchain, guest
 * sources and capability set into <cache>/<key>/ and linked into every agent
 * that shares them. The key hashes the toolchain id (compiler, sysroot,
 * guest sources digest), the compatibility id and the -D switches; the
 * compile flags are the same as for agent.c. A missing entry is compiled in
 * a private directory (with its own -ffile-prefix-map, so the objects are the
 * bytes a build in the work directory gives) and renamed into place: the
 * rename is atomic, and a builder that loses the race uses the winner's.
 */
static int guest_objects(const gen_toolchain *tc, const gen_agent *agent, const char *wd,
			 const char *tmp)
{
	art_buf k = ART_BUF_INIT;
	char key[65], *entry = NULL, *obj = NULL, *work = NULL, *pm = NULL;
	size_t i;
	int rc;

	rc = art_buf_printf(&k, "af-guest-cache/1\n%s\n%s\n", tc->id, tc->compat_id);
	for (i = 0; i < sizeof(cap_defines) / sizeof(cap_defines[0]) && rc == 0; i++)
		if (agent->abi_caps & cap_defines[i].bit)
			rc = art_buf_printf(&k, "%s\n", cap_defines[i].define);
	if (rc < 0)
		goto out;
	art_sha256_hex(k.data, k.len, key);
	entry = join(tc->guest_cache, key);
	obj = entry ? join(entry, "af_json.o") : NULL;
	if (!entry || !obj) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto out;
	}
	if (!is_file(obj)) {
		if (asprintf(&work, "%s/.tmp-%.16s-XXXXXX", tc->guest_cache, key) < 0) {
			work = NULL;
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto out;
		}
		if (!mkdtemp(work)) {
			rc = art_error_set(AF_EIO, "build: cannot create %s: %s", work, strerror(errno));
			goto out;
		}
		if (asprintf(&pm, "-ffile-prefix-map=%s=.", work) < 0) {
			pm = NULL;
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = gen_guest_write(work)) < 0 ||
		    (rc = compile_unit(tc, agent, work, tmp, pm, "af_guest.c", "af_guest.o")) < 0 ||
		    (rc = compile_unit(tc, agent, work, tmp, pm, "af_json.c", "af_json.o")) < 0)
			goto out;
		if (rename(work, entry) == 0) {
			free(work);
			work = NULL;
		} else if (errno != EEXIST && errno != ENOTEMPTY) {
			rc = art_error_set(AF_EIO, "build: cannot rename %s: %s", work, strerror(errno));
			goto out;
		}
	}
	if ((rc = place_object(entry, wd, "af_guest.o")) == 0)
		rc = place_object(entry, wd, "af_json.o");
out:
	if (work)
		nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	art_buf_free(&k);
	free(entry);
	free(obj);
	free(work);
	free(pm);
	return rc;
}

static int build_wasm(const gen_toolchain *tc, const gen_agent *agent, const char *wd,
		      const char *tmp, const char *prefix_map)
{
	char max_mem[64];
	argv_buf a;
	int rc;

	rc = compile_unit(tc, agent, wd, tmp, prefix_map, "agent.c", "agent.o");
	if (rc == 0 && tc->guest_cache)
		rc = guest_objects(tc, agent, wd, tmp);
	else if (rc == 0 &&
		 (rc = compile_unit(tc, agent, wd, tmp, prefix_map, "af_guest.c", "af_guest.o")) == 0)
		rc = compile_unit(tc, agent, wd, tmp, prefix_map, "af_json.c", "af_json.o");
	if (rc < 0)
		return rc;
	snprintf(max_mem, sizeof(max_mem), "-Wl,--max-memory=%llu",
		 (unsigned long long)agent->memory_pages * 65536u);
	a.n = 0;
	av(&a, tc->clang);
	av(&a, "--target=wasm32-wasi");
	av(&a, "--sysroot");
	av(&a, tc->sysroot);
	av(&a, "-mexec-model=reactor");
	av(&a, "-Wl,--strip-all");
	av(&a, "-Wl,--stack-first");
	av(&a, "-Wl,-z,stack-size=65536");
	av(&a, max_mem);
	av(&a, "agent.o");
	av(&a, "af_guest.o");
	av(&a, "af_json.o");
	av(&a, "-o");
	av(&a, "agent.wasm");
	rc = run_tool(tc, "clang (link agent.wasm)", a.v, wd, tmp);
	if (rc < 0 && strstr(art_error_last(), "memory too small")) {
		char suffix[96];

		snprintf(suffix, sizeof(suffix), " (limits.memory_pages is %u: raise it)",
			 agent->memory_pages);
		rc = prefix_error(rc, agent->name, suffix);
	}
	return rc;
}

static int build_native(const gen_toolchain *tc, const art_wasm_module *m, const char *wd,
			const char *tmp, const char *prefix_map)
{
	char rt_define[96];
	argv_buf a = {{0}, 0};

	snprintf(rt_define, sizeof(rt_define), "-DAF_WASM_RT_VERSION=\"%s\"", tc->wasm_rt);
	av(&a, tc->cc);
	av(&a, "-O2");
	av(&a, "-fPIC");
	av(&a, "-shared");
	av(&a, "-fvisibility=hidden");
	av(&a, "-pipe");
	av(&a, prefix_map);
	av(&a, "-DNDEBUG");
	av(&a, m->n_imports ? "-DAF_NATIVE_HAS_IMPORTS=1" : "-DAF_NATIVE_HAS_IMPORTS=0");
	av(&a, rt_define);
	av(&a, "-I.");
	av(&a, "agent_native.c");
	av(&a, "af_native.c");
	av(&a, "-o");
	av(&a, "agent.so");
	av(&a, "-Wl,-z,defs");
	av(&a, "-Wl,--build-id=sha1");
	av(&a, "-Wl,-s");
	av(&a, "-Wl,-z,relro,-z,now");
	av(&a, "-Wl,-z,noexecstack");
	return run_tool(tc, "cc (agent.so)", a.v, wd, tmp);
}

int gen_build_agent(gen_result **out, const gen_toolchain *tc, const char *json, size_t len,
		    const char *workdir, gen_stage_times *times)
{
	gen_stage_times t;
	struct timespec t0, ts;
	gen_result *r = NULL;
	gen_agent *agent = NULL;
	char *wd = NULL, *tmp = NULL, *prefix_map = NULL;
	argv_buf a = {{0}, 0};
	int rc;

	memset(&t, 0, sizeof(t));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!out || !tc || !json || !workdir)
		return art_error_set(AF_EINVAL, "build: NULL argument");
	*out = NULL;
	if (mkdir(workdir, 0755) < 0 && errno != EEXIST)
		return art_error_set(AF_EIO, "build: cannot create %s: %s", workdir, strerror(errno));
	wd = realpath(workdir, NULL);
	if (!wd)
		return art_error_set(AF_EIO, "build: %s: %s", workdir, strerror(errno));
	tmp = join(wd, "tmp");
	r = calloc(1, sizeof(*r));
	if (!tmp || !r || asprintf(&prefix_map, "-ffile-prefix-map=%s=.", wd) < 0) {
		prefix_map = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
		rc = art_error_set(AF_EIO, "build: cannot create %s: %s", tmp, strerror(errno));
		goto cleanup;
	}

	/* 1. C source and the guest library. */
	ts = t0;
	if ((rc = gen_agent_parse(&agent, json, len)) < 0 ||
	    (rc = gen_c_generate(&r->c_source, &r->c_len, json, len)) < 0 ||
	    (rc = write_file(wd, "agent.c", r->c_source, r->c_len)) < 0 ||
	    (rc = gen_guest_write(wd)) < 0)
		goto cleanup;
	t.codegen_ms = ms_since(&ts);

	/* 2. wasm32. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rc = build_wasm(tc, agent, wd, tmp, prefix_map);
	t.wasm_ms = ms_since(&ts);
	if (rc < 0)
		goto cleanup;

	/* 3. wasm-validate, without the features wasm2c 1.0.32 cannot translate. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	av(&a, tc->wasm_validate);
	av(&a, "--disable-simd");
	av(&a, "--disable-reference-types");
	av(&a, "agent.wasm");
	rc = run_tool(tc, "wasm-validate", a.v, wd, tmp);
	t.validate_ms = ms_since(&ts);
	if (rc < 0)
		goto cleanup;

	/* 4. What it imports and exports. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if ((rc = read_output(&r->wasm, &r->wasm_len, wd, "agent.wasm")) < 0 ||
	    (rc = art_wasm_parse(&r->module, r->wasm, r->wasm_len)) < 0)
		goto cleanup;
	rc = gen_check_imports(r->module, (const char *const *)agent->capabilities,
			       agent->n_capabilities);
	if (rc == 0)
		rc = gen_check_exports(r->module);
	t.check_ms = ms_since(&ts);
	if (rc < 0) {
		rc = prefix_error(rc, agent->name, NULL);
		goto cleanup;
	}

	/* 5. wasm2c. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	a.n = 0;
	av(&a, tc->wasm2c);
	av(&a, "-n");
	av(&a, "agent");
	av(&a, "agent.wasm");
	av(&a, "-o");
	av(&a, "agent_native.c");
	rc = run_tool(tc, "wasm2c", a.v, wd, tmp);
	t.wasm2c_ms = ms_since(&ts);
	if (rc < 0)
		goto cleanup;

	/* 6. Native code. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rc = build_native(tc, r->module, wd, tmp, prefix_map);
	if (rc == 0)
		rc = read_output(&r->so, &r->so_len, wd, "agent.so");
	t.native_ms = ms_since(&ts);
	if (rc < 0)
		goto cleanup;
	*out = r;
	r = NULL;
cleanup:
	t.total_ms = ms_since(&t0);
	if (times)
		*times = t;
	gen_result_free(r);
	gen_agent_free(agent);
	free(wd);
	free(tmp);
	free(prefix_map);
	return rc;
}
