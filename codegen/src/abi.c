/*
 * abi.c - guest ABI v1 tables and the import/export checks of a built
 * module. The tables below are the single source of truth in C for what
 * docs/abi.md describes.
 */
#include "gen/abi.h"

#include "art/error.h"

#include <string.h>

#define I32 ART_WASM_I32
#define I64 ART_WASM_I64

typedef struct abi_func {
	const char *name;
	const char *cap, *alt;     /* imports only */
	uint8_t params[3];
	size_t n_params;
	uint8_t results[1];
	size_t n_results;
} abi_func;

static const abi_func abi_imports[] = {
	{"log", "log", NULL, {I32, I32, I32}, 3, {0}, 0},
	{"clock_now_ms", "clock", NULL, {0}, 0, {I64}, 1},
	{"random_get", "random", NULL, {I32, I32}, 2, {I32}, 1},
	{"llm_chat", "llm_chat", NULL, {I32, I32}, 2, {I32}, 1},
	{"tool_call", "tool_call", NULL, {I32, I32}, 2, {I32}, 1},
	{"result_read", "llm_chat", "tool_call", {I32, I32}, 2, {I32}, 1},
};

static const abi_func abi_exports[] = {
	{"_initialize", NULL, NULL, {0}, 0, {0}, 0},
	{"af_abi_version", NULL, NULL, {0}, 0, {I32}, 1},
	{"af_alloc", NULL, NULL, {I32}, 1, {I32}, 1},
	{"af_describe", NULL, NULL, {I32}, 1, {I32}, 1},
	{"af_handle", NULL, NULL, {I32, I32, I32}, 3, {I32}, 1},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const abi_func *find(const abi_func *t, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

const char *gen_abi_import_capability(const char *module, const char *name, const char **alt)
{
	const abi_func *f;

	if (alt)
		*alt = NULL;
	if (!module || !name || strcmp(module, GEN_ABI_MODULE) != 0)
		return NULL;
	f = find(abi_imports, COUNT(abi_imports), name);
	if (!f)
		return NULL;
	if (alt)
		*alt = f->alt;
	return f->cap;
}

static bool prefixed(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *gen_abi_foreign_capability(const char *module, const char *name)
{
	if (!module || !name)
		return "a host function outside the guest ABI";
	if (prefixed(module, "wasi")) {
		if (prefixed(name, "path_") || prefixed(name, "fd_"))
			return "filesystem";
		if (prefixed(name, "sock_"))
			return "sockets";
		if (prefixed(name, "proc_"))
			return "process";
		if (prefixed(name, "environ_") || prefixed(name, "args_"))
			return "environment";
		if (prefixed(name, "clock_"))
			return "clock";
		if (strcmp(name, "random_get") == 0)
			return "random";
		if (strcmp(name, "poll_oneoff") == 0 || strcmp(name, "sched_yield") == 0)
			return "scheduling";
	}
	return "a host function outside the guest ABI";
}

static bool is_granted(const char *cap, const char *const *granted, size_t n)
{
	size_t i;

	for (i = 0; cap && i < n; i++)
		if (granted[i] && strcmp(granted[i], cap) == 0)
			return true;
	return false;
}

static int type_matches(const art_wasm_functype *t, const abi_func *f,
			const char *what, const char *module, const char *name, int rc_on_error)
{
	art_wasm_functype want;
	char have_s[128], want_s[128];

	if (art_wasm_functype_is(t, f->params, f->n_params, f->results, f->n_results))
		return 0;
	want.n_params = (uint32_t)f->n_params;
	want.n_results = (uint32_t)f->n_results;
	want.params = (uint8_t *)f->params;
	want.results = (uint8_t *)f->results;
	return art_error_set(rc_on_error, "%s %s%s%s has type %s, the guest ABI requires %s", what,
			     module ? module : "", module ? "." : "", name,
			     art_wasm_functype_str(have_s, sizeof(have_s), t),
			     art_wasm_functype_str(want_s, sizeof(want_s), &want));
}

int gen_check_imports(const art_wasm_module *m, const char *const *granted, size_t n_granted)
{
	size_t i;

	if (!m || (!granted && n_granted))
		return art_error_set(AF_EINVAL, "check imports: NULL argument");
	for (i = 0; i < m->n_imports; i++) {
		const art_wasm_import *imp = &m->imports[i];
		const char *alt, *cap = gen_abi_import_capability(imp->module, imp->name, &alt);
		const abi_func *f;
		int rc;

		if (!cap)
			return art_error_set(AF_EDENIED, "import %s.%s is not allowed: needs capability %s",
					     imp->module, imp->name,
					     gen_abi_foreign_capability(imp->module, imp->name));
		if (imp->kind != ART_WASM_FUNC)
			return art_error_set(AF_EDENIED,
					     "import %s.%s is not allowed: it is a %s, the guest ABI imports only functions",
					     imp->module, imp->name, art_wasm_kind_name(imp->kind));
		if (!is_granted(cap, granted, n_granted) && !is_granted(alt, granted, n_granted))
			return art_error_set(AF_EDENIED,
					     "import %s.%s is not allowed: needs capability %s%s%s, which the template does not grant",
					     imp->module, imp->name, cap, alt ? " or " : "", alt ? alt : "");
		f = find(abi_imports, COUNT(abi_imports), imp->name);
		rc = type_matches(&m->types[imp->type], f, "import", imp->module, imp->name,
				  AF_EDENIED);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int gen_check_exports(const art_wasm_module *m)
{
	size_t i, k, seen = 0;
	bool memory = false;

	if (!m)
		return art_error_set(AF_EINVAL, "check exports: NULL argument");
	for (i = 0; i < m->n_exports; i++) {
		const art_wasm_export *e = &m->exports[i];
		const abi_func *f;
		int rc;

		if (strcmp(e->name, "memory") == 0) {
			if (e->kind != ART_WASM_MEMORY)
				return art_error_set(AF_EVERSION, "export memory is a %s, the guest ABI requires a memory",
						     art_wasm_kind_name(e->kind));
			memory = true;
			continue;
		}
		f = find(abi_exports, COUNT(abi_exports), e->name);
		if (!f)
			return art_error_set(AF_EVERSION, "unexpected export '%s': the guest ABI exports only memory, _initialize, af_abi_version, af_alloc, af_describe and af_handle",
					     e->name);
		if (e->kind != ART_WASM_FUNC)
			return art_error_set(AF_EVERSION, "export %s is a %s, the guest ABI requires a function",
					     e->name, art_wasm_kind_name(e->kind));
		rc = type_matches(art_wasm_func_type(m, e->index), f, "export", NULL, e->name,
				  AF_EVERSION);
		if (rc < 0)
			return rc;
		seen++;
	}
	if (!memory)
		return art_error_set(AF_EVERSION, "missing export 'memory' (guest ABI %d)",
				     GEN_GUEST_ABI_VERSION);
	if (seen != COUNT(abi_exports)) {
		for (k = 0; k < COUNT(abi_exports); k++) {
			for (i = 0; i < m->n_exports; i++)
				if (strcmp(m->exports[i].name, abi_exports[k].name) == 0)
					break;
			if (i == m->n_exports)
				return art_error_set(AF_EVERSION, "missing export '%s' (guest ABI %d)",
						     abi_exports[k].name, GEN_GUEST_ABI_VERSION);
		}
	}
	return 0;
}
