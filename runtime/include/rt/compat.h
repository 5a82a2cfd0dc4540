/*
 * rt/compat.h - which precompiled native code this runtime can load.
 *
 * The build records a native compatibility id per native part
 * (docs/abi.md):
 *
 *   af-native/1 target=<triple>; wasm-rt=wabt-<v>; guest-abi=1;
 *   native-abi=1; memcheck=guard; cc=<cc --version line 1>
 *
 * The runtime does not link the code generator, so it does not rebuild that
 * string: it parses it and compares each field with its own expectation,
 * fixed when the runtime is compiled:
 *
 *   target    the runtime's own triple: AF_TARGET_TRIPLE if the build
 *             defines it (e.g. -DAF_TARGET_TRIPLE="$(cc -dumpmachine)"),
 *             else derived from the compiler's predefined macros
 *             (x86_64-linux-gnu, aarch64-linux-gnu, ...)
 *   wasm-rt   RT_WASM_RT_VERSION, the wasm-rt.h whose layouts sandbox.c
 *             checks at compile time
 *   guest-abi, native-abi, memcheck   1, 1, guard
 *   cc        not compared: the .so talks to the runtime only through the
 *             C ABI of the triple (the descriptor structs of art/wasm.h),
 *             which does not depend on the compiler version; the field is
 *             kept for provenance and for the build cache.
 *
 * An unknown field, a missing field or another format version is a
 * mismatch: the runtime never guesses about native code.
 */
#ifndef RT_COMPAT_H
#define RT_COMPAT_H

#include <stddef.h>

#define RT_WASM_RT_VERSION "wabt-1.0.32"

/** The runtime's target triple. Static string. */
const char *rt_compat_target(void);

/**
 * What this runtime accepts, for messages:
 * "af-native/1 target=x86_64-linux-gnu; wasm-rt=wabt-1.0.32; guest-abi=1;
 *  native-abi=1; memcheck=guard; cc=<any>". Static string.
 */
const char *rt_compat_expected(void);

/**
 * Can this runtime load native code built for compat_id?
 * @param[out] why  if not NULL and the answer is no: the first mismatch,
 *                  e.g. "target is riscv64-linux-gnu, this runtime is
 *                  x86_64-linux-gnu"
 * @return 0 (yes) or AF_EVERSION (no; also for NULL or a malformed id)
 */
int rt_compat_check(const char *compat_id, char *why, size_t why_len);

#endif
