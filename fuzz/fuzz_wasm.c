/*
 * fuzz_wasm.c - art_wasm_parse, the strict WebAssembly reader the pipeline
 * and the runtime run on untrusted modules. Invariants of an accepted
 * module: every function, import and export index is in range, every name
 * is NUL-terminated, and every function type prints.
 */
#include "fuzz.h"

#include "art/wasm.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	art_wasm_module *m = NULL;
	char buf[256];
	size_t i;

	if (art_wasm_parse(&m, data, size) != 0) {
		FUZZ_CHECK(!m, "a failed parse left a module");
		return 0;
	}
	for (i = 0; i < m->n_funcs; i++)
		FUZZ_CHECK(m->funcs[i] < m->n_types, "function %zu has type %u of %zu", i,
			   m->funcs[i], m->n_types);
	for (i = 0; i < m->n_types; i++)
		FUZZ_CHECK(art_wasm_functype_str(buf, sizeof(buf), &m->types[i]) != NULL &&
				   strlen(buf) < sizeof(buf),
			   "type %zu does not print", i);
	for (i = 0; i < m->n_imports; i++) {
		FUZZ_CHECK(m->imports[i].module && m->imports[i].name, "import %zu unnamed", i);
		if (m->imports[i].kind == ART_WASM_FUNC)
			FUZZ_CHECK(m->imports[i].type < m->n_types, "import %zu type out of range", i);
		(void)art_wasm_kind_name(m->imports[i].kind);
	}
	for (i = 0; i < m->n_exports; i++) {
		FUZZ_CHECK(m->exports[i].name, "export %zu unnamed", i);
		if (m->exports[i].kind == ART_WASM_FUNC) {
			const art_wasm_functype *t = art_wasm_func_type(m, m->exports[i].index);

			FUZZ_CHECK(t != NULL, "exported function %u has no type", m->exports[i].index);
		}
	}
	art_wasm_module_free(m);
	return 0;
}
