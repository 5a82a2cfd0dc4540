/*
 * af_native.c - glue compiled by the host C compiler into every agent .so,
 * next to wasm2c's translation of the agent (agent_native.c/.h, module name
 * "agent").
 *
 * It makes the shared object self-contained: the wasm-rt.h functions the
 * translated code calls are forwarded to the runtime the host passes to
 * init() (art_wasm_rt_v1), the `af` imports are forwarded to the host
 * functions passed to instantiate() (art_wasm_host_v1), and the only
 * visible symbol is ART_WASM_NATIVE_SYMBOL (everything is compiled with
 * -fvisibility=hidden and linked with -z defs). Function types are
 * registered in a table local to this object: funcrefs never cross modules.
 *
 * Build switches: AF_NATIVE_HAS_IMPORTS (0 when the module imports nothing,
 * which changes wasm2c's instantiate signature), AF_WASM_RT_VERSION.
 */
#include "agent_native.h"

#include "art/wasm.h"

#include <stdarg.h>
#include <stdlib.h>

#ifndef AF_NATIVE_HAS_IMPORTS
#error "AF_NATIVE_HAS_IMPORTS must be defined by the build"
#endif
#ifndef AF_WASM_RT_VERSION
#error "AF_WASM_RT_VERSION must be defined by the build"
#endif
#if !WASM_RT_MEMCHECK_SIGNAL_HANDLER
#error "native ABI v1 supports guard-page memory checks only"
#endif

#define AF_NATIVE_EXPORT __attribute__((visibility("default")))

struct Z_af_instance_t {
	const art_wasm_host_v1 *host;
	void *ctx;
};

typedef struct native_instance {
	Z_agent_instance_t module;
	struct Z_af_instance_t af;
} native_instance;

static const art_wasm_rt_v1 *g_rt;

/* ---- wasm-rt.h, forwarded to the host's runtime ------------------------------ */

bool wasm_rt_is_initialized(void)
{
	return g_rt != NULL;
}

void wasm_rt_trap(wasm_rt_trap_t code)
{
	g_rt->trap((int)code);
	abort(); /* trap must not return */
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
	g_rt->allocate_memory(mem, initial_pages, max_pages);
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
	return g_rt->grow_memory(mem, delta);
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	g_rt->free_memory(mem);
}

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *table, uint32_t elements,
				    uint32_t max_elements)
{
	g_rt->allocate_funcref_table(table, elements, max_elements);
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *table)
{
	g_rt->free_funcref_table(table);
}

/* Function types, interned per object (ids start at 1). */
#define MAX_TYPES 1024
#define MAX_TYPE_SLOTS 8192

static struct {
	uint32_t off, params, results;
} g_types[MAX_TYPES];
static int g_type_slots[MAX_TYPE_SLOTS];
static uint32_t g_n_types, g_used_slots;
static int g_types_overflow;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
	uint32_t i, k, n = params + results;
	va_list ap;

	if (params > MAX_TYPE_SLOTS || results > MAX_TYPE_SLOTS ||
	    n > MAX_TYPE_SLOTS - g_used_slots || g_n_types == MAX_TYPES) {
		g_types_overflow = 1;
		return 0;
	}
	va_start(ap, results);
	for (k = 0; k < n; k++)
		g_type_slots[g_used_slots + k] = va_arg(ap, int);
	va_end(ap);
	for (i = 0; i < g_n_types; i++) {
		if (g_types[i].params != params || g_types[i].results != results)
			continue;
		for (k = 0; k < n; k++)
			if (g_type_slots[g_types[i].off + k] != g_type_slots[g_used_slots + k])
				break;
		if (k == n)
			return i + 1;
	}
	g_types[g_n_types].off = g_used_slots;
	g_types[g_n_types].params = params;
	g_types[g_n_types].results = results;
	g_used_slots += n;
	return ++g_n_types;
}

/* ---- the `af` imports, forwarded to the host ----------------------------------- */

/* A host function the guest calls must exist: trap rather than jump to NULL. */
#define NEED(af, fn) \
	do { \
		if (!(af)->host || !(af)->host->fn) \
			wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE); \
	} while (0)

void Z_afZ_log(struct Z_af_instance_t *af, u32 level, u32 ptr, u32 len)
{
	NEED(af, log);
	af->host->log(af->ctx, level, ptr, len);
}

u64 Z_afZ_clock_now_ms(struct Z_af_instance_t *af)
{
	NEED(af, clock_now_ms);
	return af->host->clock_now_ms(af->ctx);
}

u32 Z_afZ_random_get(struct Z_af_instance_t *af, u32 ptr, u32 len)
{
	NEED(af, random_get);
	return (u32)af->host->random_get(af->ctx, ptr, len);
}

u32 Z_afZ_llm_chat(struct Z_af_instance_t *af, u32 ptr, u32 len)
{
	NEED(af, llm_chat);
	return (u32)af->host->llm_chat(af->ctx, ptr, len);
}

u32 Z_afZ_tool_call(struct Z_af_instance_t *af, u32 ptr, u32 len)
{
	NEED(af, tool_call);
	return (u32)af->host->tool_call(af->ctx, ptr, len);
}

u32 Z_afZ_result_read(struct Z_af_instance_t *af, u32 ptr, u32 len)
{
	NEED(af, result_read);
	return (u32)af->host->result_read(af->ctx, ptr, len);
}

/* ---- the descriptor ------------------------------------------------------------ */

static int native_init(const art_wasm_rt_v1 *rt)
{
	if (!rt || g_rt)
		return -1;
	g_rt = rt;
	Z_agent_init_module();
	return g_types_overflow ? -1 : 0;
}

static void native_instantiate(void *instance, const art_wasm_host_v1 *host, void *host_ctx)
{
	native_instance *ni = instance;

	ni->af.host = host;
	ni->af.ctx = host_ctx;
#if AF_NATIVE_HAS_IMPORTS
	Z_agent_instantiate(&ni->module, &ni->af);
#else
	Z_agent_instantiate(&ni->module);
#endif
}

static void native_free(void *instance)
{
	Z_agent_free(&((native_instance *)instance)->module);
}

static void *native_memory(void *instance)
{
	return Z_agentZ_memory(&((native_instance *)instance)->module);
}

static void native_initialize(void *instance)
{
	Z_agentZ__initialize(&((native_instance *)instance)->module);
}

static uint32_t native_abi_version(void *instance)
{
	return Z_agentZ_af_abi_version(&((native_instance *)instance)->module);
}

static uint32_t native_alloc(void *instance, uint32_t size)
{
	return Z_agentZ_af_alloc(&((native_instance *)instance)->module, size);
}

static uint32_t native_describe(void *instance, uint32_t out_len_ptr)
{
	return Z_agentZ_af_describe(&((native_instance *)instance)->module, out_len_ptr);
}

static uint32_t native_handle(void *instance, uint32_t in_ptr, uint32_t in_len,
			      uint32_t out_len_ptr)
{
	return Z_agentZ_af_handle(&((native_instance *)instance)->module, in_ptr, in_len,
				  out_len_ptr);
}

static const art_wasm_native_v1 descriptor = {
	ART_WASM_NATIVE_ABI_VERSION,
	1, /* guest ABI */
	ART_WASM_MEMCHECK_GUARD,
	(uint32_t)sizeof(native_instance),
	(uint32_t)_Alignof(native_instance),
	AF_WASM_RT_VERSION,
	native_init,
	native_instantiate,
	native_free,
	native_memory,
	native_initialize,
	native_abi_version,
	native_alloc,
	native_describe,
	native_handle,
};

AF_NATIVE_EXPORT const art_wasm_native_v1 *af_native_module_v1(void);

const art_wasm_native_v1 *af_native_module_v1(void)
{
	return &descriptor;
}
