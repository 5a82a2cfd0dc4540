/*
 * test_abi.c - guest ABI v1 as the build checks it: the import ->
 * capability map, denied imports named in the error, export set and types.
 * Modules are built byte by byte (wasmb.h), no toolchain needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/wasm.h"
#include "codegen/wasmb.h"
#include "gen/abi.h"

#include <string.h>

static art_wasm_module *guest(const char *const *imports, const uint32_t *types, size_t n_exports)
{
	art_wasm_module *m = NULL;
	wb b;

	wb_guest(&b, imports, types, n_exports);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
	return m;
}

static void test_abi__import_capability_map(void **state)
{
	const char *alt = "x";

	(void)state;
	assert_string_equal(gen_abi_import_capability("af", "log", &alt), "log");
	assert_null(alt);
	assert_string_equal(gen_abi_import_capability("af", "clock_now_ms", NULL), "clock");
	assert_string_equal(gen_abi_import_capability("af", "random_get", NULL), "random");
	assert_string_equal(gen_abi_import_capability("af", "llm_chat", NULL), "llm_chat");
	assert_string_equal(gen_abi_import_capability("af", "tool_call", NULL), "tool_call");
	assert_string_equal(gen_abi_import_capability("af", "result_read", &alt), "llm_chat");
	assert_string_equal(alt, "tool_call");
	/* Anything else is outside the ABI. */
	assert_null(gen_abi_import_capability("af", "exec", NULL));
	assert_null(gen_abi_import_capability("env", "log", NULL));
	assert_null(gen_abi_import_capability("wasi_snapshot_preview1", "random_get", NULL));
	assert_null(gen_abi_import_capability("AF", "log", NULL));
	assert_null(gen_abi_import_capability(NULL, "log", NULL));
	assert_string_equal(gen_abi_foreign_capability("wasi_snapshot_preview1", "path_open"), "filesystem");
	assert_string_equal(gen_abi_foreign_capability("wasi_snapshot_preview1", "sock_accept"), "sockets");
	assert_string_equal(gen_abi_foreign_capability("wasi_snapshot_preview1", "proc_exit"), "process");
	assert_string_equal(gen_abi_foreign_capability("wasi_unstable", "environ_get"), "environment");
}

static void test_abi__granted_imports_pass(void **state)
{
	static const char *const imports[] = {"af", "log", "af", "clock_now_ms", "af", "tool_call",
					      "af", "result_read", NULL};
	static const uint32_t types[] = {WB_T_LOG, WB_T_CLOCK, WB_T_CALL, WB_T_CALL};
	static const char *const granted[] = {"log", "clock", "tool_call", "kv.read"};
	art_wasm_module *m = guest(imports, types, 5);

	(void)state;
	assert_int_equal(gen_check_imports(m, granted, 4), 0);
	assert_int_equal(gen_check_exports(m), 0);
	art_wasm_module_free(m);
}

static void test_abi__ungranted_af_import_is_denied_by_name(void **state)
{
	static const char *const imports[] = {"af", "llm_chat", "af", "result_read", NULL};
	static const uint32_t types[] = {WB_T_CALL, WB_T_CALL};
	static const char *const granted[] = {"log", "tool_call"};
	art_wasm_module *m = guest(imports, types, 5);

	(void)state;
	assert_int_equal(gen_check_imports(m, granted, 2), AF_EDENIED);
	assert_string_equal(art_error_last(),
			    "import af.llm_chat is not allowed: needs capability llm_chat, which the template does not grant");
	/* result_read alone is fine with tool_call; nothing at all is granted: denied. */
	assert_int_equal(gen_check_imports(m, NULL, 0), AF_EDENIED);
	art_wasm_module_free(m);
}

static void test_abi__result_read_needs_llm_chat_or_tool_call(void **state)
{
	static const char *const imports[] = {"af", "result_read", NULL};
	static const uint32_t types[] = {WB_T_CALL};
	static const char *const tool_only[] = {"tool_call"}, *const llm_only[] = {"llm_chat"},
				  *const neither[] = {"log", "clock"};
	art_wasm_module *m = guest(imports, types, 5);

	(void)state;
	assert_int_equal(gen_check_imports(m, tool_only, 1), 0);
	assert_int_equal(gen_check_imports(m, llm_only, 1), 0);
	assert_int_equal(gen_check_imports(m, neither, 2), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "af.result_read"));
	assert_non_null(strstr(art_error_last(), "llm_chat or tool_call"));
	art_wasm_module_free(m);
}

static void test_abi__foreign_imports_are_denied_whatever_is_granted(void **state)
{
	static const char *const wasi[] = {"wasi_snapshot_preview1", "path_open", NULL};
	static const char *const env[] = {"env", "system", NULL};
	static const char *const af_exec[] = {"af", "exec", NULL};
	static const uint32_t types[] = {WB_T_CALL};
	static const char *const all[] = {"log", "clock", "random", "llm_chat", "tool_call",
					  "filesystem", "sockets"};
	art_wasm_module *m;

	(void)state;
	m = guest(wasi, types, 5);
	assert_int_equal(gen_check_imports(m, all, 7), AF_EDENIED);
	assert_string_equal(art_error_last(),
			    "import wasi_snapshot_preview1.path_open is not allowed: needs capability filesystem");
	art_wasm_module_free(m);
	m = guest(env, types, 5);
	assert_int_equal(gen_check_imports(m, all, 7), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "import env.system is not allowed"));
	art_wasm_module_free(m);
	m = guest(af_exec, types, 5);
	assert_int_equal(gen_check_imports(m, all, 7), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "import af.exec is not allowed"));
	art_wasm_module_free(m);
}

static void test_abi__import_with_wrong_type_is_denied(void **state)
{
	static const char *const imports[] = {"af", "log", NULL};
	static const uint32_t types[] = {WB_T_CALL};
	static const char *const granted[] = {"log"};
	art_wasm_module *m = guest(imports, types, 5);

	(void)state;
	assert_int_equal(gen_check_imports(m, granted, 1), AF_EDENIED);
	assert_string_equal(art_error_last(),
			    "import af.log has type (i32, i32) -> i32, the guest ABI requires (i32, i32, i32) -> ()");
	art_wasm_module_free(m);
}

static void test_abi__non_function_import_is_denied(void **state)
{
	static const char *const granted[] = {"log"};
	art_wasm_module *m = NULL;
	wb b, s = {{0}, 0};

	(void)state;
	wb_header(&b);
	wb_u32(&s, 1);
	wb_name(&s, "af");
	wb_name(&s, "log");
	wb_byte(&s, 2); /* a memory */
	wb_byte(&s, 0);
	wb_u32(&s, 1);
	wb_section(&b, 2, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
	assert_int_equal(gen_check_imports(m, granted, 1), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "it is a memory"));
	art_wasm_module_free(m);
}

static void test_abi__exports_must_be_exactly_the_abi(void **state)
{
	art_wasm_module *m;
	wb b, s = {{0}, 0};

	(void)state;
	m = guest(NULL, NULL, 4); /* no af_handle */
	assert_int_equal(gen_check_exports(m), AF_EVERSION);
	assert_string_equal(art_error_last(), "missing export 'af_handle' (guest ABI 1)");
	art_wasm_module_free(m);

	/* An extra export. */
	wb_guest(&b, NULL, NULL, 5);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
	assert_int_equal(gen_check_exports(m), 0);
	art_wasm_module_free(m);
	{
		static const char *const names[] = {"_initialize", "af_abi_version", "af_alloc",
						    "af_describe", "af_handle", "backdoor"};
		static const uint32_t idx[] = {0, 1, 2, 3, 4, 4};
		size_t i;

		wb_header(&b);
		wb_guest_types(&b);
		s.len = 0;
		wb_u32(&s, 5);
		wb_u32(&s, WB_T_VOID);
		wb_u32(&s, WB_T_VERSION);
		wb_u32(&s, WB_T_ALLOC);
		wb_u32(&s, WB_T_ALLOC);
		wb_u32(&s, WB_T_HANDLE);
		wb_section(&b, 3, &s);
		s.len = 0;
		wb_u32(&s, 1);
		wb_byte(&s, 0);
		wb_u32(&s, 1);
		wb_section(&b, 5, &s);
		s.len = 0;
		wb_u32(&s, 7);
		wb_name(&s, "memory");
		wb_byte(&s, 2);
		wb_u32(&s, 0);
		for (i = 0; i < 6; i++) {
			wb_name(&s, names[i]);
			wb_byte(&s, 0);
			wb_u32(&s, idx[i]);
		}
		wb_section(&b, 7, &s);
		s.len = 0;
		wb_u32(&s, 5);
		for (i = 0; i < 5; i++) {
			wb_u32(&s, 2);
			wb_byte(&s, 0);
			wb_byte(&s, 0x0b);
		}
		wb_section(&b, 10, &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
		assert_int_equal(gen_check_exports(m), AF_EVERSION);
		assert_non_null(strstr(art_error_last(), "unexpected export 'backdoor'"));
		art_wasm_module_free(m);
	}
	/* A mistyped export: af_alloc pointing at af_handle's function. */
	{
		wb_header(&b);
		wb_guest_types(&b);
		s.len = 0;
		wb_u32(&s, 1);
		wb_u32(&s, WB_T_HANDLE);
		wb_section(&b, 3, &s);
		s.len = 0;
		wb_u32(&s, 1);
		wb_name(&s, "af_alloc");
		wb_byte(&s, 0);
		wb_u32(&s, 0);
		wb_section(&b, 7, &s);
		s.len = 0;
		wb_u32(&s, 1);
		wb_u32(&s, 2);
		wb_byte(&s, 0);
		wb_byte(&s, 0x0b);
		wb_section(&b, 10, &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
		assert_int_equal(gen_check_exports(m), AF_EVERSION);
		assert_string_equal(art_error_last(),
				    "export af_alloc has type (i32, i32, i32) -> i32, the guest ABI requires (i32) -> i32");
		art_wasm_module_free(m);
	}
	assert_int_equal(gen_check_exports(NULL), AF_EINVAL);
	assert_int_equal(gen_check_imports(NULL, NULL, 0), AF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi__import_capability_map),
		cmocka_unit_test(test_abi__granted_imports_pass),
		cmocka_unit_test(test_abi__ungranted_af_import_is_denied_by_name),
		cmocka_unit_test(test_abi__result_read_needs_llm_chat_or_tool_call),
		cmocka_unit_test(test_abi__foreign_imports_are_denied_whatever_is_granted),
		cmocka_unit_test(test_abi__import_with_wrong_type_is_denied),
		cmocka_unit_test(test_abi__non_function_import_is_denied),
		cmocka_unit_test(test_abi__exports_must_be_exactly_the_abi),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
