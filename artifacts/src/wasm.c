/*
 * wasm.c - strict WebAssembly binary reader (types, imports, functions,
 * memories, exports).
 *
 * Invariants: the cursor never moves past the end of the slice it reads
 * (every read checks first); a vector's count is checked against its cap and
 * against the bytes left (each element takes at least one byte) before any
 * allocation, so a tiny input cannot ask for a huge one; on any error the
 * partly built module is freed and *out stays NULL.
 */
#include "art/wasm.h"

#include "art/error.h"
#include "art/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Section ids. */
enum {
	SEC_CUSTOM = 0, SEC_TYPE = 1, SEC_IMPORT = 2, SEC_FUNCTION = 3, SEC_TABLE = 4,
	SEC_MEMORY = 5, SEC_GLOBAL = 6, SEC_EXPORT = 7, SEC_START = 8, SEC_ELEMENT = 9,
	SEC_CODE = 10, SEC_DATA = 11, SEC_DATACOUNT = 12, SEC_TAG = 13
};

/* A bounded cursor; base is the module start, for error offsets. */
typedef struct cur {
	const uint8_t *base, *p, *end;
} cur;

static int fail(const cur *c, const char *what)
{
	return art_error_set(AF_ECORRUPT, "wasm: %s at offset %zu", what, (size_t)(c->p - c->base));
}

static int too_big(const cur *c, const char *what, uint64_t n, uint64_t cap)
{
	return art_error_set(AF_ETOOBIG, "wasm: %s count %llu exceeds the cap of %llu at offset %zu",
			     what, (unsigned long long)n, (unsigned long long)cap,
			     (size_t)(c->p - c->base));
}

static size_t left(const cur *c)
{
	return (size_t)(c->end - c->p);
}

static int read_byte(cur *c, uint8_t *out)
{
	*out = 0;
	if (c->p >= c->end)
		return fail(c, "unexpected end of data");
	*out = *c->p++;
	return 0;
}

/* Unsigned LEB128 of at most `bits` bits (32 or 64): at most ceil(bits/7)
 * bytes, and the unused bits of the last byte must be zero. */
static int read_uleb(cur *c, unsigned bits, uint64_t *out)
{
	unsigned shift = 0, max_bytes = (bits + 6) / 7, i;
	uint64_t v = 0;
	uint8_t b;

	*out = 0;
	for (i = 0; i < max_bytes; i++) {
		if (c->p >= c->end)
			return fail(c, "truncated LEB128");
		b = *c->p++;
		if (i == max_bytes - 1) {
			unsigned used = bits - shift; /* bits still allowed in this byte */

			if (b & 0x80)
				return fail(c, "LEB128 too long");
			if (used < 7 && (b >> used) != 0)
				return fail(c, "LEB128 value out of range");
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
		shift += 7;
	}
	return fail(c, "LEB128 too long");
}

static int read_u32(cur *c, uint32_t *out)
{
	uint64_t v = 0;
	int rc = read_uleb(c, 32, &v);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

/* A vector count: capped, and no more elements than bytes left. */
static int read_count(cur *c, const char *what, uint32_t cap, uint32_t *out)
{
	int rc = read_u32(c, out);

	if (rc < 0)
		return rc;
	if (*out > cap)
		return too_big(c, what, *out, cap);
	if (*out > left(c))
		return fail(c, "vector count larger than the data left");
	return 0;
}


/* A name: u32 length, UTF-8 bytes. *out is NUL-terminated and owned. */
static int read_name(cur *c, char **out)
{
	uint32_t n;
	int rc;

	*out = NULL;
	if ((rc = read_u32(c, &n)) < 0)
		return rc;
	if (n > ART_WASM_MAX_NAME)
		return too_big(c, "name length", n, ART_WASM_MAX_NAME);
	if (n > left(c))
		return fail(c, "name runs past the end of its section");
	if (!art_utf8_valid(c->p, n))
		return fail(c, "name is not valid UTF-8");
	/* Valid UTF-8, but "af\0x" would read as "af" through a C string. */
	if (memchr(c->p, '\0', n))
		return fail(c, "name contains a NUL character");
	*out = malloc((size_t)n + 1);
	if (!*out)
		return art_error_set(AF_ENOMEM, "wasm: out of memory");
	memcpy(*out, c->p, n);
	(*out)[n] = '\0';
	c->p += n;
	return 0;
}

static bool valtype_ok(uint8_t t)
{
	return t == ART_WASM_I32 || t == ART_WASM_I64 || t == ART_WASM_F32 || t == ART_WASM_F64 ||
	       t == ART_WASM_V128 || t == ART_WASM_FUNCREF || t == ART_WASM_EXTERNREF;
}

static int read_limits(cur *c, art_wasm_limits *out, bool memory)
{
	uint8_t flags;
	uint32_t v;
	int rc;

	if ((rc = read_byte(c, &flags)) < 0)
		return rc;
	if (memory && (flags & 0x04))
		return art_error_set(AF_EVERSION, "wasm: 64-bit memory (memory64) is not supported");
	if (memory && (flags & 0x02))
		return art_error_set(AF_EVERSION, "wasm: shared memory (threads) is not supported");
	if (flags > 1)
		return fail(c, "invalid limits flags");
	if ((rc = read_u32(c, &v)) < 0)
		return rc;
	out->min = v;
	out->has_max = flags == 1;
	out->max = 0;
	if (out->has_max) {
		if ((rc = read_u32(c, &v)) < 0)
			return rc;
		out->max = v;
		if (out->max < out->min)
			return fail(c, "limits maximum below minimum");
	}
	if (memory && (out->min > 65536 || (out->has_max && out->max > 65536)))
		return fail(c, "memory limits above 65536 pages");
	return 0;
}

static int read_tabletype(cur *c)
{
	art_wasm_limits lim;
	uint8_t t;
	int rc;

	if ((rc = read_byte(c, &t)) < 0)
		return rc;
	if (t != ART_WASM_FUNCREF && t != ART_WASM_EXTERNREF)
		return fail(c, "invalid table element type");
	return read_limits(c, &lim, false);
}

static int read_globaltype(cur *c)
{
	uint8_t t, mut;
	int rc;

	if ((rc = read_byte(c, &t)) < 0)
		return rc;
	if (!valtype_ok(t))
		return fail(c, "invalid global value type");
	if ((rc = read_byte(c, &mut)) < 0)
		return rc;
	if (mut > 1)
		return fail(c, "invalid global mutability");
	return 0;
}

static int read_types(cur *c, art_wasm_module *m)
{
	uint32_t n, i, k;
	int rc;

	if ((rc = read_count(c, "type", ART_WASM_MAX_TYPES, &n)) < 0)
		return rc;
	m->types = calloc(n ? n : 1, sizeof(*m->types));
	if (!m->types)
		return art_error_set(AF_ENOMEM, "wasm: out of memory");
	for (i = 0; i < n; i++) {
		art_wasm_functype *t = &m->types[i];
		uint8_t form;

		if ((rc = read_byte(c, &form)) < 0)
			return rc;
		if (form != 0x60)
			return fail(c, "function type does not start with 0x60");
		m->n_types = (size_t)i + 1; /* so that free sees this entry */
		if ((rc = read_count(c, "param", ART_WASM_MAX_PARAMS, &t->n_params)) < 0)
			return rc;
		if (t->n_params) {
			if (!(t->params = malloc(t->n_params)))
				return art_error_set(AF_ENOMEM, "wasm: out of memory");
			for (k = 0; k < t->n_params; k++) {
				if ((rc = read_byte(c, &t->params[k])) < 0)
					return rc;
				if (!valtype_ok(t->params[k]))
					return fail(c, "invalid parameter type");
			}
		}
		if ((rc = read_count(c, "result", ART_WASM_MAX_PARAMS, &t->n_results)) < 0)
			return rc;
		if (t->n_results) {
			if (!(t->results = malloc(t->n_results)))
				return art_error_set(AF_ENOMEM, "wasm: out of memory");
			for (k = 0; k < t->n_results; k++) {
				if ((rc = read_byte(c, &t->results[k])) < 0)
					return rc;
				if (!valtype_ok(t->results[k]))
					return fail(c, "invalid result type");
			}
		}
	}
	m->n_types = n;
	return 0;
}

static int read_imports(cur *c, art_wasm_module *m)
{
	uint32_t n, i, idx;
	int rc;

	if ((rc = read_count(c, "import", ART_WASM_MAX_IMPORTS, &n)) < 0)
		return rc;
	m->imports = calloc(n ? n : 1, sizeof(*m->imports));
	if (!m->imports)
		return art_error_set(AF_ENOMEM, "wasm: out of memory");
	for (i = 0; i < n; i++) {
		art_wasm_import *imp = &m->imports[i];
		art_wasm_limits lim;
		uint8_t kind, attr;

		m->n_imports = (size_t)i + 1;
		if ((rc = read_name(c, &imp->module)) < 0 || (rc = read_name(c, &imp->name)) < 0)
			return rc;
		if ((rc = read_byte(c, &kind)) < 0)
			return rc;
		switch (kind) {
		case ART_WASM_FUNC:
			if ((rc = read_u32(c, &idx)) < 0)
				return rc;
			if (idx >= m->n_types)
				return fail(c, "imported function type index out of range");
			imp->type = idx;
			m->n_imported_funcs++;
			break;
		case ART_WASM_TABLE:
			if ((rc = read_tabletype(c)) < 0)
				return rc;
			m->n_imported_tables++;
			break;
		case ART_WASM_MEMORY:
			if ((rc = read_limits(c, &lim, true)) < 0)
				return rc;
			if (!m->has_memory) {
				m->memory = lim;
				m->has_memory = true;
			}
			m->n_imported_memories++;
			break;
		case ART_WASM_GLOBAL:
			if ((rc = read_globaltype(c)) < 0)
				return rc;
			m->n_imported_globals++;
			break;
		case ART_WASM_TAG:
			if ((rc = read_byte(c, &attr)) < 0)
				return rc;
			if (attr != 0)
				return fail(c, "invalid tag attribute");
			if ((rc = read_u32(c, &idx)) < 0)
				return rc;
			if (idx >= m->n_types)
				return fail(c, "imported tag type index out of range");
			imp->type = idx;
			m->n_imported_tags++;
			break;
		default:
			return fail(c, "invalid import kind");
		}
		imp->kind = (art_wasm_kind)kind;
	}
	return 0;
}

static int read_functions(cur *c, art_wasm_module *m)
{
	uint32_t n, i;
	int rc;

	if ((rc = read_count(c, "function", ART_WASM_MAX_FUNCS, &n)) < 0)
		return rc;
	m->funcs = calloc(n ? n : 1, sizeof(*m->funcs));
	if (!m->funcs)
		return art_error_set(AF_ENOMEM, "wasm: out of memory");
	for (i = 0; i < n; i++) {
		if ((rc = read_u32(c, &m->funcs[i])) < 0)
			return rc;
		if (m->funcs[i] >= m->n_types)
			return fail(c, "function type index out of range");
	}
	m->n_funcs = n;
	return 0;
}

static int read_memories(cur *c, art_wasm_module *m)
{
	art_wasm_limits lim;
	uint32_t n, i;
	int rc;

	if ((rc = read_count(c, "memory", 100, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = read_limits(c, &lim, true)) < 0)
			return rc;
		if (!m->has_memory) {
			m->memory = lim;
			m->has_memory = true;
		}
	}
	m->n_memories = n;
	return 0;
}

/* Only the count of a section we otherwise skip (tables, globals, tags). */
static int read_section_count(cur *c, const char *what, size_t *out)
{
	uint32_t n;
	int rc = read_count(c, what, ART_WASM_MAX_FUNCS, &n);

	if (rc == 0)
		*out = n;
	return rc;
}

static int cmp_export_names(const void *a, const void *b)
{
	const art_wasm_export *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int read_exports(cur *c, art_wasm_module *m)
{
	const art_wasm_export **sorted = NULL;
	uint32_t n, i;
	int rc;

	if ((rc = read_count(c, "export", ART_WASM_MAX_EXPORTS, &n)) < 0)
		return rc;
	m->exports = calloc(n ? n : 1, sizeof(*m->exports));
	if (!m->exports)
		return art_error_set(AF_ENOMEM, "wasm: out of memory");
	for (i = 0; i < n; i++) {
		art_wasm_export *e = &m->exports[i];
		uint8_t kind;

		m->n_exports = (size_t)i + 1;
		if ((rc = read_name(c, &e->name)) < 0)
			return rc;
		if ((rc = read_byte(c, &kind)) < 0 || (rc = read_u32(c, &e->index)) < 0)
			return rc;
		if (kind > ART_WASM_TAG)
			return fail(c, "invalid export kind");
		e->kind = (art_wasm_kind)kind;
	}
	if (n > 1) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted)
			return art_error_set(AF_ENOMEM, "wasm: out of memory");
		for (i = 0; i < n; i++)
			sorted[i] = &m->exports[i];
		qsort(sorted, n, sizeof(*sorted), cmp_export_names);
		for (i = 1; i < n; i++)
			if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
				rc = art_error_set(AF_ECORRUPT, "wasm: duplicate export name '%s'",
						   sorted[i]->name);
				free(sorted);
				return rc;
			}
		free(sorted);
	}
	return 0;
}

/* Exports must point into their index spaces; checked after all sections. */
static int check_export_indices(const art_wasm_module *m)
{
	size_t i, limit;

	for (i = 0; i < m->n_exports; i++) {
		const art_wasm_export *e = &m->exports[i];

		switch (e->kind) {
		case ART_WASM_FUNC: limit = m->n_imported_funcs + m->n_funcs; break;
		case ART_WASM_TABLE: limit = m->n_imported_tables + m->n_tables; break;
		case ART_WASM_MEMORY: limit = m->n_imported_memories + m->n_memories; break;
		case ART_WASM_GLOBAL: limit = m->n_imported_globals + m->n_globals; break;
		default: limit = m->n_imported_tags + m->n_tags; break;
		}
		if (e->index >= limit)
			return art_error_set(AF_ECORRUPT, "wasm: export '%s' refers to %s %u, which does not exist",
					     e->name, art_wasm_kind_name(e->kind), e->index);
	}
	return 0;
}

/* The position of a non-custom section in the required order, or -1. */
static int section_rank(uint8_t id)
{
	static const int8_t rank[] = {
		[SEC_TYPE] = 1, [SEC_IMPORT] = 2, [SEC_FUNCTION] = 3, [SEC_TABLE] = 4,
		[SEC_MEMORY] = 5, [SEC_TAG] = 6, [SEC_GLOBAL] = 7, [SEC_EXPORT] = 8,
		[SEC_START] = 9, [SEC_ELEMENT] = 10, [SEC_DATACOUNT] = 11, [SEC_CODE] = 12,
		[SEC_DATA] = 13,
	};

	if (id == SEC_CUSTOM || id >= sizeof(rank))
		return -1;
	return rank[id];
}

static int read_section(cur *s, uint8_t id, art_wasm_module *m, bool *saw_code, uint32_t *code_n)
{
	char *name = NULL;
	int rc;

	switch (id) {
	case SEC_CUSTOM:
		rc = read_name(s, &name);
		free(name);
		if (rc < 0)
			return rc;
		s->p = s->end; /* custom payloads are opaque */
		return 0;
	case SEC_TYPE: return read_types(s, m);
	case SEC_IMPORT: return read_imports(s, m);
	case SEC_FUNCTION: return read_functions(s, m);
	case SEC_MEMORY: return read_memories(s, m);
	case SEC_EXPORT: return read_exports(s, m);
	case SEC_TABLE:
		if ((rc = read_section_count(s, "table", &m->n_tables)) < 0)
			return rc;
		s->p = s->end;
		return 0;
	case SEC_GLOBAL:
		if ((rc = read_section_count(s, "global", &m->n_globals)) < 0)
			return rc;
		s->p = s->end;
		return 0;
	case SEC_TAG:
		if ((rc = read_section_count(s, "tag", &m->n_tags)) < 0)
			return rc;
		s->p = s->end;
		return 0;
	case SEC_CODE:
		if ((rc = read_count(s, "code", ART_WASM_MAX_FUNCS, code_n)) < 0)
			return rc;
		*saw_code = true;
		s->p = s->end;
		return 0;
	default: /* start, element, data, datacount: bounds only */
		s->p = s->end;
		return 0;
	}
}

int art_wasm_parse(art_wasm_module **out, const void *data, size_t len)
{
	static const uint8_t magic[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
	art_wasm_module *m = NULL;
	cur c;
	int rc = 0, last_rank = 0;
	bool saw_code = false;
	uint32_t code_n = 0;

	if (!out || (!data && len))
		return art_error_set(AF_EINVAL, "wasm: NULL argument");
	*out = NULL;
	if (len > ART_WASM_MAX_MODULE)
		return art_error_set(AF_ETOOBIG, "wasm: module of %zu bytes exceeds the cap of %zu",
				     len, ART_WASM_MAX_MODULE);
	c.base = c.p = data;
	c.end = c.base + len;
	if (len < 8 || memcmp(data, magic, 4) != 0)
		return art_error_set(AF_ECORRUPT, "wasm: not a WebAssembly module (bad magic)");
	if (memcmp((const uint8_t *)data + 4, magic + 4, 4) != 0)
		return art_error_set(AF_EVERSION, "wasm: unsupported binary version (only 1 is)");
	c.p += 8;
	m = calloc(1, sizeof(*m));
	if (!m)
		return art_error_set(AF_ENOMEM, "wasm: out of memory");

	while (c.p < c.end) {
		uint8_t id;
		uint32_t size;
		int r;
		cur s;

		if ((rc = read_byte(&c, &id)) < 0 || (rc = read_u32(&c, &size)) < 0)
			goto cleanup;
		if (size > left(&c)) {
			rc = fail(&c, "section runs past the end of the module");
			goto cleanup;
		}
		if (id != SEC_CUSTOM) {
			r = section_rank(id);
			if (r < 0) {
				c.p--; /* point at the id for the message */
				rc = fail(&c, "unknown section id");
				goto cleanup;
			}
			if (r <= last_rank) {
				rc = fail(&c, "section out of order or repeated");
				goto cleanup;
			}
			last_rank = r;
		}
		s.base = c.base;
		s.p = c.p;
		s.end = c.p + size;
		if ((rc = read_section(&s, id, m, &saw_code, &code_n)) < 0)
			goto cleanup;
		if (s.p != s.end) {
			rc = fail(&s, "section has trailing bytes");
			goto cleanup;
		}
		c.p = s.end;
	}
	if ((saw_code ? code_n : 0) != m->n_funcs) {
		rc = art_error_set(AF_ECORRUPT,
				   "wasm: %zu functions declared but %u code bodies present",
				   m->n_funcs, saw_code ? code_n : 0);
		goto cleanup;
	}
	if ((rc = check_export_indices(m)) < 0)
		goto cleanup;
	*out = m;
	m = NULL;
cleanup:
	art_wasm_module_free(m);
	return rc;
}

void art_wasm_module_free(art_wasm_module *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n_types; i++) {
		free(m->types[i].params);
		free(m->types[i].results);
	}
	free(m->types);
	for (i = 0; i < m->n_imports; i++) {
		free(m->imports[i].module);
		free(m->imports[i].name);
	}
	free(m->imports);
	free(m->funcs);
	for (i = 0; i < m->n_exports; i++)
		free(m->exports[i].name);
	free(m->exports);
	free(m);
}

const art_wasm_functype *art_wasm_func_type(const art_wasm_module *m, uint32_t funcidx)
{
	size_t i, seen = 0;

	if (!m)
		return NULL;
	if (funcidx < m->n_imported_funcs) {
		for (i = 0; i < m->n_imports; i++) {
			if (m->imports[i].kind != ART_WASM_FUNC)
				continue;
			if (seen++ == funcidx)
				return &m->types[m->imports[i].type];
		}
		return NULL;
	}
	funcidx -= (uint32_t)m->n_imported_funcs;
	if (funcidx >= m->n_funcs)
		return NULL;
	return &m->types[m->funcs[funcidx]];
}

static const char *valtype_name(uint8_t t)
{
	switch (t) {
	case ART_WASM_I32: return "i32";
	case ART_WASM_I64: return "i64";
	case ART_WASM_F32: return "f32";
	case ART_WASM_F64: return "f64";
	case ART_WASM_V128: return "v128";
	case ART_WASM_FUNCREF: return "funcref";
	case ART_WASM_EXTERNREF: return "externref";
	default: return "?";
	}
}

static size_t put(char *out, size_t cap, size_t o, const char *s)
{
	size_t n = strlen(s);

	if (o + 1 >= cap)
		return o;
	if (n > cap - 1 - o)
		n = cap - 1 - o;
	memcpy(out + o, s, n);
	out[o + n] = '\0';
	return o + n;
}

char *art_wasm_functype_str(char *out, size_t cap, const art_wasm_functype *t)
{
	size_t o = 0;
	uint32_t i;

	if (!out || cap == 0)
		return out;
	out[0] = '\0';
	if (!t)
		return out;
	o = put(out, cap, o, "(");
	for (i = 0; i < t->n_params; i++) {
		if (i)
			o = put(out, cap, o, ", ");
		o = put(out, cap, o, valtype_name(t->params[i]));
	}
	o = put(out, cap, o, ") -> ");
	if (t->n_results != 1)
		o = put(out, cap, o, "(");
	for (i = 0; i < t->n_results; i++) {
		if (i)
			o = put(out, cap, o, ", ");
		o = put(out, cap, o, valtype_name(t->results[i]));
	}
	if (t->n_results != 1)
		put(out, cap, o, ")");
	return out;
}

bool art_wasm_functype_is(const art_wasm_functype *t, const uint8_t *params, size_t n_params,
			  const uint8_t *results, size_t n_results)
{
	if (!t || t->n_params != n_params || t->n_results != n_results)
		return false;
	return (n_params == 0 || memcmp(t->params, params, n_params) == 0) &&
	       (n_results == 0 || memcmp(t->results, results, n_results) == 0);
}

const char *art_wasm_kind_name(art_wasm_kind k)
{
	switch (k) {
	case ART_WASM_FUNC: return "func";
	case ART_WASM_TABLE: return "table";
	case ART_WASM_MEMORY: return "memory";
	case ART_WASM_GLOBAL: return "global";
	case ART_WASM_TAG: return "tag";
	default: return "?";
	}
}
