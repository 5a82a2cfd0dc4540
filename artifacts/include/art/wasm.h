/*
 * art/wasm.h - a small, strict reader for WebAssembly binary modules, and
 * the native (wasm2c) module ABI shared by the build and the runtime.
 *
 * The reader parses only what the pipeline and the runtime must check before
 * trusting a module: the type, import, function, memory and export sections
 * (the others are bounds-checked and skipped). It is meant for untrusted
 * input: every LEB128 is range-checked, every section and vector must fit in
 * its parent, every count is capped (and must fit in the bytes left before
 * anything is allocated), names must be valid UTF-8, sections must come in
 * the order the specification gives, export names must be unique and every
 * index must be in range. It never executes or validates code bodies: run
 * wasm-validate for that.
 *
 * The second half of this header is the contract between a precompiled
 * agent (.so made by wasm2c + cc, see docs/abi.md) and the process that
 * loads it. It only uses standard C types so that it can be compiled into
 * every agent .so as well as into the runtime.
 */
#ifndef ART_WASM_H
#define ART_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- reader ------------------------------------------------------------ */

/** Caps on what the reader accepts (AF_ETOOBIG beyond them). */
#define ART_WASM_MAX_MODULE   ((size_t)256 << 20) /* bytes */
#define ART_WASM_MAX_TYPES    100000u
#define ART_WASM_MAX_IMPORTS  100000u
#define ART_WASM_MAX_FUNCS    1000000u
#define ART_WASM_MAX_EXPORTS  100000u
#define ART_WASM_MAX_PARAMS   1000u   /* params or results of one function type */
#define ART_WASM_MAX_NAME     4096u   /* bytes of one name */

/** External kinds, as encoded in import and export descriptors. */
typedef enum art_wasm_kind {
	ART_WASM_FUNC = 0,
	ART_WASM_TABLE = 1,
	ART_WASM_MEMORY = 2,
	ART_WASM_GLOBAL = 3,
	ART_WASM_TAG = 4
} art_wasm_kind;

/** Value types, as encoded. */
typedef enum art_wasm_valtype {
	ART_WASM_I32 = 0x7f,
	ART_WASM_I64 = 0x7e,
	ART_WASM_F32 = 0x7d,
	ART_WASM_F64 = 0x7c,
	ART_WASM_V128 = 0x7b,
	ART_WASM_FUNCREF = 0x70,
	ART_WASM_EXTERNREF = 0x6f
} art_wasm_valtype;

/** A function type: params -> results (each an art_wasm_valtype byte). */
typedef struct art_wasm_functype {
	uint32_t n_params, n_results;
	uint8_t *params;   /* owned by the module; NULL when n_params is 0 */
	uint8_t *results;  /* owned by the module; NULL when n_results is 0 */
} art_wasm_functype;

/** One import. For functions, type is the type index; else 0. */
typedef struct art_wasm_import {
	char *module;      /* NUL-terminated UTF-8, owned by the module */
	char *name;
	art_wasm_kind kind;
	uint32_t type;
} art_wasm_import;

/** One export: name, kind and index in that kind's index space. */
typedef struct art_wasm_export {
	char *name;        /* NUL-terminated UTF-8, owned by the module */
	art_wasm_kind kind;
	uint32_t index;
} art_wasm_export;

/** Limits of a memory, in 64 KiB pages. */
typedef struct art_wasm_limits {
	uint32_t min, max;
	bool has_max;
} art_wasm_limits;

/** What the reader extracted. Every array is owned by the module. */
typedef struct art_wasm_module {
	art_wasm_functype *types;
	size_t n_types;
	art_wasm_import *imports;     /* in module order */
	size_t n_imports;
	uint32_t *funcs;              /* type index of each defined function */
	size_t n_funcs;
	art_wasm_export *exports;     /* in module order */
	size_t n_exports;
	size_t n_imported_funcs, n_imported_tables, n_imported_memories, n_imported_globals,
		n_imported_tags;
	size_t n_tables, n_memories, n_globals, n_tags; /* defined ones */
	art_wasm_limits memory;       /* the first memory (imported or defined), if any */
	bool has_memory;
} art_wasm_module;

/**
 * Parse a WebAssembly binary module (version 1).
 * @param[out] out   caller owns; free with art_wasm_module_free. NULL on error.
 * @param[in]  data  the module bytes (not retained)
 * @param[in]  len   their length
 * @return 0; AF_ECORRUPT for anything malformed (the message gives the byte
 *         offset and what is wrong); AF_ETOOBIG when a cap above is passed;
 *         AF_EVERSION for another binary version or a feature the reader
 *         does not know (memory64); AF_EINVAL for NULL arguments; AF_ENOMEM.
 */
int art_wasm_parse(art_wasm_module **out, const void *data, size_t len);

/** Free a module. NULL-safe. */
void art_wasm_module_free(art_wasm_module *m);

/**
 * The type of function funcidx (imported functions come first), or NULL when
 * the index is out of range. Borrowed from m.
 */
const art_wasm_functype *art_wasm_func_type(const art_wasm_module *m, uint32_t funcidx);

/**
 * Write a function type as "(i32, i32) -> i64" ("() -> ()" when empty) into
 * out[cap], truncating if needed. @return out
 */
char *art_wasm_functype_str(char *out, size_t cap, const art_wasm_functype *t);

/**
 * Does t have exactly these params and results (art_wasm_valtype bytes)?
 * NULL-safe (false).
 */
bool art_wasm_functype_is(const art_wasm_functype *t, const uint8_t *params, size_t n_params,
			  const uint8_t *results, size_t n_results);

/** "func", "table", "memory", "global", "tag" or "?". Static. */
const char *art_wasm_kind_name(art_wasm_kind k);

/* ---- native (wasm2c) agent module ABI, version 1 -------------------------
 *
 * A precompiled agent is a shared object made of wasm2c's output for the
 * guest module plus a small glue file. It exports exactly one symbol,
 * ART_WASM_NATIVE_SYMBOL, a function returning a static descriptor. Nothing
 * else is visible, and it has no undefined symbols other than libc's: the
 * host supplies the WebAssembly runtime (art_wasm_rt_v1) once per loaded
 * object and the `af` imports (art_wasm_host_v1) per instance. See
 * docs/abi.md for the call sequence and the guest ABI on top of it.
 */

#define ART_WASM_NATIVE_ABI_VERSION 1
#define ART_WASM_NATIVE_SYMBOL "af_native_module_v1"

/** How the native code checks linear-memory accesses. */
#define ART_WASM_MEMCHECK_GUARD 1  /* no inline checks: each memory needs a
				      4 GiB + 4 GiB guard reservation and the
				      host traps on SIGSEGV inside it */
#define ART_WASM_MEMCHECK_BOUNDS 0 /* inline bounds checks */

/**
 * The WebAssembly runtime the host provides (wasm-rt.h semantics, wabt
 * 1.0.32). mem is a wasm_rt_memory_t *, table a wasm_rt_funcref_table_t *.
 * trap must not return (it unwinds to the host, e.g. with longjmp).
 */
typedef struct art_wasm_rt_v1 {
	void (*trap)(int code);
	void (*allocate_memory)(void *mem, uint32_t initial_pages, uint32_t max_pages);
	uint32_t (*grow_memory)(void *mem, uint32_t delta_pages);
	void (*free_memory)(void *mem);
	void (*allocate_funcref_table)(void *table, uint32_t elements, uint32_t max_elements);
	void (*free_funcref_table)(void *table);
} art_wasm_rt_v1;

/**
 * The `af` host functions of one instance. ctx is the host's pointer given
 * to instantiate. Pointers and lengths are guest (linear memory) offsets:
 * the host must bounds-check them against the instance's memory. Every
 * field must be set; the glue traps if the guest calls a NULL one.
 */
typedef struct art_wasm_host_v1 {
	void (*log)(void *ctx, uint32_t level, uint32_t ptr, uint32_t len);
	uint64_t (*clock_now_ms)(void *ctx);
	int32_t (*random_get)(void *ctx, uint32_t ptr, uint32_t len);
	int32_t (*llm_chat)(void *ctx, uint32_t req_ptr, uint32_t req_len);
	int32_t (*tool_call)(void *ctx, uint32_t req_ptr, uint32_t req_len);
	int32_t (*result_read)(void *ctx, uint32_t dst_ptr, uint32_t dst_len);
} art_wasm_host_v1;

/**
 * The descriptor returned by ART_WASM_NATIVE_SYMBOL. instance points to
 * instance_size bytes aligned to instance_align, owned by the host.
 */
typedef struct art_wasm_native_v1 {
	uint32_t native_abi;      /* ART_WASM_NATIVE_ABI_VERSION */
	uint32_t guest_abi;       /* the guest ABI version (1) */
	uint32_t memcheck;        /* ART_WASM_MEMCHECK_* */
	uint32_t instance_size;
	uint32_t instance_align;
	const char *wasm_rt;      /* "wabt-1.0.32": the wasm-rt.h it was built against */
	/* Once per loaded object, before any instantiate; not thread-safe.
	 * @return 0, or -1 when rt is NULL or init was already called. */
	int (*init)(const art_wasm_rt_v1 *rt);
	void (*instantiate)(void *instance, const art_wasm_host_v1 *host, void *host_ctx);
	void (*free)(void *instance);
	void *(*memory)(void *instance);      /* wasm_rt_memory_t * of the instance */
	/* The guest's exports (docs/abi.md). */
	void (*initialize)(void *instance);   /* `_initialize`: once, after instantiate */
	uint32_t (*abi_version)(void *instance);
	uint32_t (*alloc)(void *instance, uint32_t size);
	uint32_t (*describe)(void *instance, uint32_t out_len_ptr);
	uint32_t (*handle)(void *instance, uint32_t in_ptr, uint32_t in_len, uint32_t out_len_ptr);
} art_wasm_native_v1;

/** Type of the exported ART_WASM_NATIVE_SYMBOL function. */
typedef const art_wasm_native_v1 *(*art_wasm_native_entry)(void);

#endif
