/*
 * labguest.h - build the test-only guest (tests/fixtures/runtime/lab_guest.c)
 * into a .wasm and a native .so the way the code generator builds agents:
 * clang --target=wasm32 (the same feature flags), wasm2c -n agent, and cc
 * -O2 -fPIC -shared with the embedded af_native.c glue (gen_guest_write).
 * Header-only, for the runtime unit tests.
 */
#ifndef LABGUEST_H
#define LABGUEST_H

#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"
#include "gen/embed.h"

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct lab_build {
	uint8_t *wasm, *so;
	size_t wasm_len, so_len;
	char *source;
	size_t source_len;
	char so_digest[ART_DIGEST_STR_LEN + 1];
} lab_build;

static inline int lab_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void lab_rmtree(const char *dir)
{
	nftw(dir, lab_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run argv in dir; 0 when it exits 0. */
static inline int lab_run(const char *dir, char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "labguest: %s failed (status %d)\n", argv[0], status);
		return -1;
	}
	return 0;
}

static inline const char *lab_clang(void)
{
	static char path[512];
	const char *sdk = getenv("WASI_SDK_PATH");

	if (sdk && *sdk) {
		snprintf(path, sizeof(path), "%s/bin/clang", sdk);
		return path;
	}
	if (access("/usr/bin/clang-19", X_OK) == 0)
		return "/usr/bin/clang-19";
	return "/usr/lib/llvm-19/bin/clang";
}

static inline void lab_build_free(lab_build *b)
{
	free(b->wasm);
	free(b->so);
	free(b->source);
	memset(b, 0, sizeof(*b));
}

/*
 * Build the lab guest describing itself as name, in workdir (created).
 * @return 0 or -1 (a tool failed: its output is on stderr)
 */
static inline int lab_build_module(lab_build *b, const char *workdir, const char *name)
{
	const char *src = getenv("AF_SRCDIR");
	char srcpath[1024], define[128], *data = NULL;
	size_t len = 0;

	memset(b, 0, sizeof(*b));
	snprintf(srcpath, sizeof(srcpath), "%s/tests/fixtures/runtime/lab_guest.c", src ? src : ".");
	snprintf(define, sizeof(define), "-DLAB_NAME=\"%s\"", name);
	if (mkdir(workdir, 0755) != 0 && errno != EEXIST)
		return -1;
	if (gen_guest_write(workdir) != 0)
		return -1;
	{
		char *clang_argv[] = {(char *)lab_clang(), "--target=wasm32", "-nostdlib", "-O2",
				      "-mcpu=mvp", "-msign-ext", "-mmutable-globals",
				      "-mnontrapping-fptoint", "-mbulk-memory", "-Wall", "-Wextra",
				      "-Werror", define, "-Wl,--no-entry", "-Wl,--stack-first",
				      "-Wl,-z,stack-size=65536", "-Wl,--max-memory=4294901760",
				      "-o", "agent.wasm", srcpath, NULL};
		char *wasm2c_argv[] = {"wasm2c", "-n", "agent", "agent.wasm", "-o", "agent_native.c", NULL};
		char *cc_argv[] = {"cc", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-DNDEBUG",
				   "-DAF_NATIVE_HAS_IMPORTS=1", "-DAF_WASM_RT_VERSION=\"wabt-1.0.32\"",
				   "-I.", "agent_native.c", "af_native.c", "-o", "agent.so",
				   "-Wl,-z,defs", "-Wl,-z,noexecstack", NULL};

		if (lab_run(workdir, clang_argv) || lab_run(workdir, wasm2c_argv) ||
		    lab_run(workdir, cc_argv))
			return -1;
	}
	snprintf(srcpath, sizeof(srcpath), "%s/agent.wasm", workdir);
	if (art_file_read(&data, &len, srcpath, (size_t)64 << 20) != 0)
		return -1;
	b->wasm = (uint8_t *)data;
	b->wasm_len = len;
	snprintf(srcpath, sizeof(srcpath), "%s/agent.so", workdir);
	if (art_file_read(&data, &len, srcpath, (size_t)64 << 20) != 0)
		return -1;
	b->so = (uint8_t *)data;
	b->so_len = len;
	snprintf(srcpath, sizeof(srcpath), "%s/tests/fixtures/runtime/lab_guest.c", src ? src : ".");
	if (art_file_read(&b->source, &b->source_len, srcpath, (size_t)1 << 20) != 0)
		return -1;
	art_manifest_digest(b->so_digest, b->so, b->so_len);
	return 0;
}

#endif
