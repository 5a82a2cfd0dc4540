/*
 * test_wasm.c - the strict WebAssembly reader (artifacts/src/wasm.c):
 * what it extracts, and that truncated, garbage, mutated and huge-count
 * input is refused with an error, never a crash or a huge allocation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/wasm.h"
#include "codegen/wasmb.h"

#include <stdio.h>
#include <string.h>

static const char *const guest_imports[] = {"af", "log", "af", "tool_call", "af", "result_read",
					    NULL};
static const uint32_t guest_import_types[] = {WB_T_LOG, WB_T_CALL, WB_T_CALL};

static void build_guest(wb *b)
{
	wb_guest(b, guest_imports, guest_import_types, 5);
}

static void test_wasm__reads_imports_exports_types_memory(void **state)
{
	static const uint8_t ii[] = {ART_WASM_I32, ART_WASM_I32}, i[] = {ART_WASM_I32};
	art_wasm_module *m = NULL;
	char s[64];
	wb b;

	(void)state;
	build_guest(&b);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
	assert_int_equal(m->n_imports, 3);
	assert_string_equal(m->imports[0].module, "af");
	assert_string_equal(m->imports[0].name, "log");
	assert_int_equal(m->imports[0].kind, ART_WASM_FUNC);
	assert_string_equal(m->imports[2].name, "result_read");
	assert_int_equal(m->n_imported_funcs, 3);
	assert_int_equal(m->n_funcs, 5);
	assert_int_equal(m->n_exports, 6);
	assert_string_equal(m->exports[0].name, "memory");
	assert_int_equal(m->exports[0].kind, ART_WASM_MEMORY);
	assert_string_equal(m->exports[5].name, "af_handle");
	assert_int_equal(m->exports[5].index, 7);
	assert_true(m->has_memory);
	assert_int_equal(m->memory.min, 1);
	assert_true(m->memory.has_max);
	assert_int_equal(m->memory.max, 32);
	/* Function index space: imports first. */
	assert_true(art_wasm_functype_is(art_wasm_func_type(m, 1), ii, 2, i, 1));
	assert_string_equal(art_wasm_functype_str(s, sizeof(s), art_wasm_func_type(m, 0)),
			    "(i32, i32, i32) -> ()");
	assert_string_equal(art_wasm_functype_str(s, sizeof(s), art_wasm_func_type(m, 7)),
			    "(i32, i32, i32) -> i32");
	assert_string_equal(art_wasm_functype_str(s, sizeof(s), &m->types[WB_T_CLOCK]), "() -> i64");
	assert_null(art_wasm_func_type(m, 8));
	/* Truncation of the type string never overflows. */
	assert_string_equal(art_wasm_functype_str(s, 5, art_wasm_func_type(m, 0)), "(i32");
	assert_string_equal(art_wasm_kind_name(ART_WASM_GLOBAL), "global");
	art_wasm_module_free(m);
	art_wasm_module_free(NULL);
}

/* Offsets where a section ends in a module built by wb (LEB sizes). */
static int is_section_end(const wb *b, size_t n)
{
	size_t p = 8;

	while (p < b->len) {
		uint32_t size = 0, shift = 0;

		p++; /* id */
		while (b->data[p] & 0x80) {
			size |= (uint32_t)(b->data[p++] & 0x7f) << shift;
			shift += 7;
		}
		size |= (uint32_t)b->data[p++] << shift;
		p += size;
		if (p == n)
			return 1;
	}
	return n == 8;
}

static void test_wasm__every_truncation_is_refused(void **state)
{
	art_wasm_module *m;
	size_t n;
	int rc;
	wb b;

	(void)state;
	build_guest(&b);
	for (n = 0; n < b.len; n++) {
		m = (art_wasm_module *)1;
		rc = art_wasm_parse(&m, b.data, n);
		/* Only a cut between two sections can still be a module. */
		if (rc == 0) {
			assert_true(is_section_end(&b, n));
			art_wasm_module_free(m);
		} else {
			assert_null(m);
		}
		if (!is_section_end(&b, n))
			assert_true(rc < 0);
	}
}

static void test_wasm__bad_magic_version_and_null(void **state)
{
	static const uint8_t v2[] = {0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00};
	static const uint8_t text[] = "(module)";
	art_wasm_module *m;

	(void)state;
	assert_int_equal(art_wasm_parse(&m, text, sizeof(text) - 1), AF_ECORRUPT);
	assert_int_equal(art_wasm_parse(&m, v2, sizeof(v2)), AF_EVERSION);
	assert_int_equal(art_wasm_parse(NULL, v2, sizeof(v2)), AF_EINVAL);
	assert_int_equal(art_wasm_parse(&m, NULL, 8), AF_EINVAL);
	/* The empty module is valid. */
	{
		wb b;

		wb_header(&b);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
		assert_int_equal(m->n_imports + m->n_exports + m->n_funcs, 0);
		art_wasm_module_free(m);
	}
}

/* A section holding only a vector count: huge counts must not allocate. */
static void test_wasm__huge_counts_are_refused_without_allocating(void **state)
{
	uint8_t ids[] = {1, 2, 3, 5, 7, 10};
	art_wasm_module *m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ids); i++) {
		wb b, s = {{0}, 0};
		int rc;

		wb_header(&b);
		wb_u32(&s, 0xffffffffu);
		wb_section(&b, ids[i], &s);
		rc = art_wasm_parse(&m, b.data, b.len);
		assert_true(rc == AF_ETOOBIG || rc == AF_ECORRUPT);
		assert_null(m);
		/* Under the cap but more elements than bytes: corrupt. */
		wb_header(&b);
		s.len = 0;
		wb_u32(&s, 50);
		wb_section(&b, ids[i], &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	}
	/* A section size beyond the data. */
	{
		wb b;

		wb_header(&b);
		wb_byte(&b, 1);
		wb_u32(&b, 0x7fffffffu);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
		assert_non_null(strstr(art_error_last(), "past the end"));
	}
}

static void test_wasm__leb128_is_strict(void **state)
{
	art_wasm_module *m;
	wb b;

	(void)state;
	/* Section size with six LEB bytes. */
	wb_header(&b);
	wb_byte(&b, 0);
	wb_bytes(&b, "\x80\x80\x80\x80\x80\x00", 6);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "LEB128"));
	/* Fifth byte with bits beyond 32. */
	wb_header(&b);
	wb_byte(&b, 0);
	wb_bytes(&b, "\x80\x80\x80\x80\x10", 5);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "out of range"));
	/* A redundant but valid encoding of 1 (0x81 0x00) is accepted. */
	wb_header(&b);
	wb_byte(&b, 0);
	wb_bytes(&b, "\x82\x00\x01x", 4); /* size 2: custom section named "x" */
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
	art_wasm_module_free(m);
}

static void test_wasm__section_order_and_duplicates(void **state)
{
	art_wasm_module *m;
	wb b, s = {{0}, 0};

	(void)state;
	wb_header(&b);
	wb_u32(&s, 0);
	wb_section(&b, 7, &s); /* export */
	wb_section(&b, 1, &s); /* type after export */
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "out of order"));
	wb_header(&b);
	wb_section(&b, 1, &s);
	wb_section(&b, 1, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	wb_header(&b);
	wb_section(&b, 14, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "unknown section"));
	/* Trailing bytes inside a section. */
	wb_header(&b);
	s.len = 0;
	wb_u32(&s, 0);
	wb_byte(&s, 0x42);
	wb_section(&b, 7, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "trailing"));
}

static void test_wasm__names_must_be_utf8_without_nul(void **state)
{
	static const char *const bad[] = {"a\xff", "\xc0\x80", "\xed\xa0\x80", "af\0log"};
	static const size_t bad_len[] = {2, 2, 3, 6};
	art_wasm_module *m;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		wb b, s = {{0}, 0};

		wb_header(&b);
		wb_guest_types(&b);
		wb_u32(&s, 1);
		wb_u32(&s, (uint32_t)bad_len[i]);
		wb_bytes(&s, bad[i], bad_len[i]);
		wb_name(&s, "x");
		wb_byte(&s, 0);
		wb_u32(&s, 0);
		wb_section(&b, 2, &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
		assert_null(m);
	}
	/* Valid multi-byte UTF-8 is fine. */
	{
		wb b, s = {{0}, 0};

		wb_header(&b);
		wb_guest_types(&b);
		wb_u32(&s, 1);
		wb_name(&s, "\xc3\xa9\xf0\x9f\x98\x80");
		wb_name(&s, "x");
		wb_byte(&s, 0);
		wb_u32(&s, 0);
		wb_section(&b, 2, &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), 0);
		assert_string_equal(m->imports[0].module, "\xc3\xa9\xf0\x9f\x98\x80");
		art_wasm_module_free(m);
	}
}

static void test_wasm__indices_and_kinds_are_checked(void **state)
{
	art_wasm_module *m;
	wb b, s = {{0}, 0};

	(void)state;
	/* Import of a type that does not exist. */
	wb_header(&b);
	wb_guest_types(&b);
	wb_u32(&s, 1);
	wb_name(&s, "af");
	wb_name(&s, "log");
	wb_byte(&s, 0);
	wb_u32(&s, 99);
	wb_section(&b, 2, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	/* Unknown import kind. */
	wb_header(&b);
	s.len = 0;
	wb_u32(&s, 1);
	wb_name(&s, "af");
	wb_name(&s, "x");
	wb_byte(&s, 9);
	wb_section(&b, 2, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	/* Export of a function that does not exist. */
	wb_header(&b);
	s.len = 0;
	wb_u32(&s, 1);
	wb_name(&s, "f");
	wb_byte(&s, 0);
	wb_u32(&s, 0);
	wb_section(&b, 7, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "does not exist"));
	/* Duplicate export names. */
	{
		wb d;

		wb_header(&d);
		wb_guest_types(&d);
		s.len = 0;
		wb_u32(&s, 1);
		wb_u32(&s, WB_T_VOID);
		wb_section(&d, 3, &s);
		s.len = 0;
		wb_u32(&s, 2);
		wb_name(&s, "same");
		wb_byte(&s, 0);
		wb_u32(&s, 0);
		wb_name(&s, "same");
		wb_byte(&s, 0);
		wb_u32(&s, 0);
		wb_section(&d, 7, &s);
		s.len = 0;
		wb_u32(&s, 1);
		wb_u32(&s, 2);
		wb_byte(&s, 0);
		wb_byte(&s, 0x0b);
		wb_section(&d, 10, &s);
		assert_int_equal(art_wasm_parse(&m, d.data, d.len), AF_ECORRUPT);
		assert_non_null(strstr(art_error_last(), "duplicate export"));
	}
	/* Function count and code count disagree. */
	wb_header(&b);
	wb_guest_types(&b);
	s.len = 0;
	wb_u32(&s, 2);
	wb_u32(&s, WB_T_VOID);
	wb_u32(&s, WB_T_VOID);
	wb_section(&b, 3, &s);
	assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "code bodies"));
}

static void test_wasm__memory64_and_shared_memory_are_refused(void **state)
{
	art_wasm_module *m;
	uint8_t flags[] = {0x04, 0x05, 0x03, 0x02};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(flags); i++) {
		wb b, s = {{0}, 0};

		wb_header(&b);
		wb_u32(&s, 1);
		wb_byte(&s, flags[i]);
		wb_u32(&s, 1);
		wb_u32(&s, 2);
		wb_section(&b, 5, &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_EVERSION);
	}
	/* max < min */
	{
		wb b, s = {{0}, 0};

		wb_header(&b);
		wb_u32(&s, 1);
		wb_byte(&s, 1);
		wb_u32(&s, 4);
		wb_u32(&s, 2);
		wb_section(&b, 5, &s);
		assert_int_equal(art_wasm_parse(&m, b.data, b.len), AF_ECORRUPT);
	}
}

/* xorshift: deterministic garbage. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void test_wasm__garbage_and_mutations_never_crash(void **state)
{
	uint8_t buf[512];
	uint32_t seed = 0x2545f491u;
	art_wasm_module *m;
	size_t i, k, accepted = 0;
	wb b;

	(void)state;
	/* Pure garbage after a valid header. */
	for (i = 0; i < 3000; i++) {
		size_t n = 8 + rnd(&seed) % (sizeof(buf) - 8);

		memcpy(buf, "\0asm\1\0\0\0", 8);
		for (k = 8; k < n; k++)
			buf[k] = (uint8_t)rnd(&seed);
		if (art_wasm_parse(&m, buf, n) == 0) {
			accepted++;
			art_wasm_module_free(m);
		}
	}
	/* Every single-byte mutation of a valid module, with a few values. */
	build_guest(&b);
	for (i = 8; i < b.len; i++) {
		static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};

		for (k = 0; k < sizeof(vals); k++) {
			uint8_t old = b.data[i];

			b.data[i] = vals[k];
			if (art_wasm_parse(&m, b.data, b.len) == 0) {
				accepted++;
				/* Whatever is accepted is self-consistent. */
				assert_true(m->n_imports <= ART_WASM_MAX_IMPORTS);
				art_wasm_module_free(m);
			}
			b.data[i] = old;
		}
	}
	assert_true(accepted > 0); /* some mutations (e.g. in names) stay valid */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wasm__reads_imports_exports_types_memory),
		cmocka_unit_test(test_wasm__every_truncation_is_refused),
		cmocka_unit_test(test_wasm__bad_magic_version_and_null),
		cmocka_unit_test(test_wasm__huge_counts_are_refused_without_allocating),
		cmocka_unit_test(test_wasm__leb128_is_strict),
		cmocka_unit_test(test_wasm__section_order_and_duplicates),
		cmocka_unit_test(test_wasm__names_must_be_utf8_without_nul),
		cmocka_unit_test(test_wasm__indices_and_kinds_are_checked),
		cmocka_unit_test(test_wasm__memory64_and_shared_memory_are_refused),
		cmocka_unit_test(test_wasm__garbage_and_mutations_never_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
