/*
 * gen/abi.h - guest ABI v1 as the build checks it: which imports a module
 * may have given the capabilities a template grants, and which exports it
 * must have. docs/abi.md is the prose version; keep both in step.
 *
 * Imports (module "af" only): log -> log, clock_now_ms -> clock,
 * random_get -> random, llm_chat -> llm_chat, tool_call -> tool_call,
 * result_read -> llm_chat or tool_call. Anything else is denied.
 * Exports (exactly): memory, _initialize, af_abi_version, af_alloc,
 * af_describe, af_handle, with the function types of docs/abi.md.
 */
#ifndef GEN_ABI_H
#define GEN_ABI_H

#include "art/wasm.h"

#include <stddef.h>

#define GEN_GUEST_ABI_VERSION 1

/** The host module every guest import must come from. */
#define GEN_ABI_MODULE "af"

/**
 * The capability an import needs.
 * @param[in]  module, name  the import
 * @param[out] alt           if not NULL: a second capability that also
 *                           grants it (af.result_read: "tool_call"), else NULL
 * @return the capability ("log", "clock", "random", "llm_chat",
 *         "tool_call"); NULL when the import is not part of the guest ABI
 *         (it is then denied whatever the template grants). Static strings.
 */
const char *gen_abi_import_capability(const char *module, const char *name, const char **alt);

/**
 * For an import outside the ABI, the capability it would amount to
 * ("filesystem" for wasi_snapshot_preview1.path_open, "sockets", "process",
 * "environment", "clock", "random"), for messages; "a host function outside
 * the guest ABI" when there is no better name. Static string.
 */
const char *gen_abi_foreign_capability(const char *module, const char *name);

/**
 * Check that every import of m is an `af` function of the right type whose
 * capability is among granted[0..n_granted).
 * @return 0; AF_EDENIED naming the first offending import, e.g.
 *         "import wasi_snapshot_preview1.path_open is not allowed: needs
 *         capability filesystem"; AF_EINVAL for NULL arguments.
 */
int gen_check_imports(const art_wasm_module *m, const char *const *granted, size_t n_granted);

/**
 * Check that m exports exactly the guest ABI (names, kinds, function types).
 * @return 0; AF_EVERSION naming the first missing, extra or mistyped export;
 *         AF_EINVAL for NULL.
 */
int gen_check_exports(const art_wasm_module *m);

#endif
