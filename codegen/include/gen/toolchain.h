/*
 * gen/toolchain.h - find the compilers and turn a resolved template into a
 * WebAssembly module and a precompiled native shared object.
 *
 *   resolved JSON --gen_c_generate--> agent.c --clang wasm32-wasi--> agent.wasm
 *   --wasm-validate--> --art_wasm_parse + gen_check_imports/exports-->
 *   --wasm2c--> agent_native.c/.h --cc -O2 -fPIC -shared--> agent.so
 *
 * Determinism: fixed file names inside the work directory, compilers run
 * with that directory as cwd, relative paths and -ffile-prefix-map, a
 * minimal fixed environment (PATH, LC_ALL=C, TMPDIR=workdir), no debug
 * info, stripped outputs, a content-derived build id. The same resolved
 * template and toolchain give byte-identical agent.c, .wasm and .so.
 *
 * Subprocesses run through posix_spawn with an argv array (never a shell),
 * in their own process group, with a timeout (the group is killed), and
 * their stdout/stderr captured into the error message on failure.
 *
 * Thread-safety: a discovered toolchain is read-only; gen_build_agent may
 * run on several threads at once with distinct work directories.
 */
#ifndef GEN_TOOLCHAIN_H
#define GEN_TOOLCHAIN_H

#include "art/wasm.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gen_toolchain gen_toolchain;

/** Per-subprocess timeout used unless gen_toolchain_set_timeout says otherwise. */
#define GEN_TOOL_TIMEOUT_MS 300000

/**
 * Find the toolchain. With WASI_SDK_PATH set: $WASI_SDK_PATH/bin/clang and
 * the sysroot $WASI_SDK_PATH/share/wasi-sysroot. Otherwise Debian's
 * clang-19 (PATH, then /usr/lib/llvm-19/bin/clang), wasm-ld from lld-19,
 * wasi-libc under /usr/{include,lib}/wasm32-wasi and the compiler-rt
 * builtins of libclang-rt-19-dev-wasm32. wasm2c and wasm-validate (wabt)
 * and cc come from PATH. Runs each tool once for its version.
 * @param[out] out  caller owns; gen_toolchain_free. NULL on error.
 * @return 0; AF_ENOTFOUND naming the missing tool and the package that
 *         provides it; AF_EIO when a tool does not run; AF_ENOMEM.
 */
int gen_toolchain_discover(gen_toolchain **out);

/** Free. NULL-safe. */
void gen_toolchain_free(gen_toolchain *tc);

/**
 * Everything that can change the built bytes, one line, deterministic:
 * "af-toolchain/1 clang=<clang --version line 1>; wasm-sysroot=sha256:<..>;
 *  wasm2c=<version>; cc=<cc --version line 1>; target=<cc -dumpmachine>;
 *  guest-abi=1; guest-src=sha256:<..>". Borrowed from tc.
 */
const char *gen_toolchain_id(const gen_toolchain *tc);

/**
 * What a loader must match to use the native code (docs/abi.md):
 * "af-native/1 target=<triple>; wasm-rt=wabt-<version>; guest-abi=1;
 *  native-abi=1; memcheck=guard; cc=<cc --version line 1>". Borrowed.
 */
const char *gen_toolchain_compat_id(const gen_toolchain *tc);

/** The wasm-rt version the .so is built against ("wabt-1.0.32"). Borrowed. */
const char *gen_toolchain_wasm_rt(const gen_toolchain *tc);

/** The native target triple ("x86_64-linux-gnu"). Borrowed. */
const char *gen_toolchain_target(const gen_toolchain *tc);

/** Change the per-subprocess timeout (ms, > 0). */
void gen_toolchain_set_timeout(gen_toolchain *tc, int timeout_ms);

/**
 * Compile the guest library's wasm objects once per toolchain, guest
 * sources and capability set into DIR (an existing directory private to the
 * builder, e.g. inside the build's work directory) and reuse them for every
 * agent built afterwards; NULL turns the cache off (every build compiles
 * them). The outputs are the same bytes either way. Not to be called while
 * builds with this toolchain run.
 */
int gen_toolchain_set_guest_cache(gen_toolchain *tc, const char *dir);

/** Milliseconds spent in each stage of one build. */
typedef struct gen_stage_times {
	double codegen_ms;   /* gen_c_generate + writing the sources */
	double wasm_ms;      /* clang: compile the three units and link */
	double validate_ms;  /* wasm-validate */
	double check_ms;     /* read the module, check imports and exports */
	double wasm2c_ms;
	double native_ms;    /* cc -shared */
	double total_ms;
} gen_stage_times;

/** What one build produced. Every field is owned. */
typedef struct gen_result {
	char *c_source;              /* the generated agent.c */
	size_t c_len;
	uint8_t *wasm;
	size_t wasm_len;
	uint8_t *so;
	size_t so_len;
	art_wasm_module *module;     /* imports and exports of the .wasm */
} gen_result;

/**
 * Build one agent.
 * @param[out] out      caller owns; gen_result_free. NULL on error.
 * @param[in]  tc       a discovered toolchain
 * @param[in]  json     the canonical resolved template (len bytes)
 * @param[in]  workdir  a directory for this build only (created if missing,
 *                      one level); fixed file names are written into it and
 *                      left there; the caller removes it
 * @param[out] times    if not NULL, the time per stage (also on failure, up
 *                      to the failed stage)
 * @return 0; the errors of gen_c_generate; AF_EDENIED when the module
 *         imports what the template does not grant (naming the import);
 *         AF_EVERSION when its exports are not the guest ABI; AF_EIO when a
 *         tool fails or times out (the message has the tool's output);
 *         AF_ENOMEM.
 */
int gen_build_agent(gen_result **out, const gen_toolchain *tc, const char *json, size_t len,
		    const char *workdir, gen_stage_times *times);

/** Free. NULL-safe. */
void gen_result_free(gen_result *r);

#endif
