/*
 * wasmb.h - build small WebAssembly binaries byte by byte in tests (no
 * toolchain needed). Header-only, static inline; not a test program itself.
 */
#ifndef TEST_WASMB_H
#define TEST_WASMB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct wb {
	uint8_t data[8192];
	size_t len;
} wb;

static inline void wb_byte(wb *b, uint8_t v)
{
	if (b->len < sizeof(b->data))
		b->data[b->len++] = v;
}

static inline void wb_bytes(wb *b, const void *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		wb_byte(b, ((const uint8_t *)p)[i]);
}

static inline void wb_u32(wb *b, uint32_t v)
{
	do {
		uint8_t c = v & 0x7f;

		v >>= 7;
		wb_byte(b, (uint8_t)(c | (v ? 0x80 : 0)));
	} while (v);
}

static inline void wb_name(wb *b, const char *s)
{
	wb_u32(b, (uint32_t)strlen(s));
	wb_bytes(b, s, strlen(s));
}

static inline void wb_header(wb *b)
{
	static const uint8_t h[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};

	b->len = 0;
	wb_bytes(b, h, 8);
}

/* Append a section with id and the content of body. */
static inline void wb_section(wb *b, uint8_t id, const wb *body)
{
	wb_byte(b, id);
	wb_u32(b, (uint32_t)body->len);
	wb_bytes(b, body->data, body->len);
}

/* A function type from strings of value-type letters: "iii" -> "" etc. */
static inline void wb_functype(wb *b, const char *params, const char *results)
{
	const char *p;

	wb_byte(b, 0x60);
	wb_u32(b, (uint32_t)strlen(params));
	for (p = params; *p; p++)
		wb_byte(b, *p == 'i' ? 0x7f : 0x7e);
	wb_u32(b, (uint32_t)strlen(results));
	for (p = results; *p; p++)
		wb_byte(b, *p == 'i' ? 0x7f : 0x7e);
}

/* Type indices of wb_guest: */
enum {
	WB_T_LOG,      /* (i32 i32 i32) -> () */
	WB_T_CLOCK,    /* () -> i64 */
	WB_T_CALL,     /* (i32 i32) -> i32 */
	WB_T_VOID,     /* () -> () */
	WB_T_VERSION,  /* () -> i32 */
	WB_T_ALLOC,    /* (i32) -> i32 */
	WB_T_HANDLE,   /* (i32 i32 i32) -> i32 */
	WB_T_COUNT
};

static inline void wb_guest_types(wb *b)
{
	wb t = {{0}, 0};

	wb_u32(&t, WB_T_COUNT);
	wb_functype(&t, "iii", "");
	wb_functype(&t, "", "I");
	wb_functype(&t, "ii", "i");
	wb_functype(&t, "", "");
	wb_functype(&t, "", "i");
	wb_functype(&t, "i", "i");
	wb_functype(&t, "iii", "i");
	wb_section(b, 1, &t);
}

/*
 * A module shaped like a guest: imported functions (imports[2i] module,
 * imports[2i+1] name, types[i] type index; imports NULL-terminated), the
 * first n_exports of _initialize, af_abi_version, af_alloc, af_describe,
 * af_handle as defined functions (all five are defined), a memory of 1..32
 * pages exported as "memory", trivial code bodies.
 */
static inline void wb_guest(wb *b, const char *const *imports, const uint32_t *types,
			    size_t n_exports)
{
	static const char *const names[] = {"_initialize", "af_abi_version", "af_alloc",
					    "af_describe", "af_handle"};
	static const uint32_t ftypes[] = {WB_T_VOID, WB_T_VERSION, WB_T_ALLOC, WB_T_ALLOC,
					  WB_T_HANDLE};
	wb s = {{0}, 0};
	size_t n_imp = 0, i;

	while (imports && imports[2 * n_imp])
		n_imp++;
	wb_header(b);
	wb_guest_types(b);
	if (n_imp) {
		wb_u32(&s, (uint32_t)n_imp);
		for (i = 0; i < n_imp; i++) {
			wb_name(&s, imports[2 * i]);
			wb_name(&s, imports[2 * i + 1]);
			wb_byte(&s, 0x00);
			wb_u32(&s, types[i]);
		}
		wb_section(b, 2, &s);
	}
	s.len = 0;
	wb_u32(&s, 5);
	for (i = 0; i < 5; i++)
		wb_u32(&s, ftypes[i]);
	wb_section(b, 3, &s);
	s.len = 0;
	wb_u32(&s, 1);
	wb_byte(&s, 0x01);
	wb_u32(&s, 1);
	wb_u32(&s, 32);
	wb_section(b, 5, &s);
	s.len = 0;
	wb_u32(&s, (uint32_t)(1 + n_exports));
	wb_name(&s, "memory");
	wb_byte(&s, 2);
	wb_u32(&s, 0);
	for (i = 0; i < n_exports; i++) {
		wb_name(&s, names[i]);
		wb_byte(&s, 0);
		wb_u32(&s, (uint32_t)(n_imp + i));
	}
	wb_section(b, 7, &s);
	s.len = 0;
	wb_u32(&s, 5);
	for (i = 0; i < 5; i++) {
		wb_u32(&s, 2);  /* body size */
		wb_byte(&s, 0); /* no locals */
		wb_byte(&s, 0x0b);
	}
	wb_section(b, 10, &s);
}

#endif
