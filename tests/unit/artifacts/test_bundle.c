/*
 * test_bundle.c - OCI-layout bundles: a deterministic export that imports
 * into a fresh store with identical digests, selection of artifacts, and the
 * attacks on import, each of which must leave the target store unchanged:
 * a flipped byte in a part, a manifest swapped between artifacts (with and
 * without its envelope), a dropped layer, path traversal, absolute paths,
 * links, truncation, an untrusted or expired builder key, plus the strict
 * ustar reader on its own (checksums, sizes, duplicates, trailing data).
 *
 * Keys are generated once: `builder` (trusted as builder from 2026-01-01
 * to 2026-12-31) and `stranger` (trusted for nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/bundle.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1"

static struct {
	art_key *builder, *stranger;
	art_keyring *kr;
	char *src_dir;     /* a store with alpha@1.0.0, alpha@1.1.0, beta@2.0.0 */
	char *bundle;      /* its full export */
	uint8_t *bytes;    /* the bundle's bytes */
	size_t len;
} fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/af-bundle-test-XXXXXX");

	if (!d || !mkdtemp(d))
		return NULL;
	return d;
}

static void remove_dir(char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static int put_agent(art_store_txn *t, const char *name, const char *version, const art_key *key)
{
	art_manifest_import imports[] = {{"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}};
	const char *caps[] = {"log"};
	char resolved[72], text[256], wasm[4096], native[8192], source[2048];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_build_parts parts;
	size_t i;

	snprintf(text, sizeof(text), "%s@%s", name, version);
	art_manifest_digest(resolved, text, strlen(text));
	snprintf(source, sizeof(source), "/* %s */\nstatic const char n[] = \"%s\";\n", text, name);
	memcpy(wasm, "\0asm\1\0\0\0", 8);
	for (i = 8; i < sizeof(wasm); i++)
		wasm[i] = (char)(i * 7 + strlen(text) * (i % 13));
	memcpy(native, "\x7f" "ELF", 4);
	for (i = 4; i < sizeof(native); i++)
		native[i] = (char)(i * 3 + strlen(name) * (i % 11) + (unsigned char)version[0]);
	memset(&info, 0, sizeof(info));
	info.name = name;
	info.version = version;
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "clang-19";
	info.native_compat_id = COMPAT;
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 1;
	info.exports = exports;
	info.n_exports = 1;
	info.capabilities = caps;
	info.n_capabilities = 1;
	parts.wasm = wasm;
	parts.wasm_len = sizeof(wasm);
	parts.native = native;
	parts.native_len = sizeof(native);
	parts.source = source;
	parts.source_len = strlen(source);
	return art_store_put_build(t, NULL, &info, &prov, &parts, key);
}

static int group_setup(void **state)
{
	art_store *s = NULL;
	art_store_txn *t = NULL;
	char *data = NULL;

	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.stranger, 2048) < 0 ||
	    art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, T_2026 + 364 * 86400) < 0)
		return -1;
	if (!(fx.src_dir = temp_dir()) || art_store_open(&s, fx.src_dir, ART_STORE_CREATE) < 0 ||
	    art_store_txn_begin(&t, s) < 0 || put_agent(t, "alpha", "1.0.0", fx.builder) < 0 ||
	    put_agent(t, "alpha", "1.1.0", fx.builder) < 0 ||
	    put_agent(t, "beta", "2.0.0", fx.builder) < 0 || art_store_txn_commit(t) < 0)
		return -1;
	if (asprintf(&fx.bundle, "%s.tar", fx.src_dir) < 0 ||
	    art_bundle_export(NULL, s, fx.bundle, NULL, 0) < 0 ||
	    art_file_read(&data, &fx.len, fx.bundle, ART_BUNDLE_MAX) < 0)
		return -1;
	fx.bytes = (uint8_t *)data;
	art_store_close(s);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_key_free(fx.stranger);
	art_keyring_free(fx.kr);
	remove_dir(fx.src_dir);
	if (fx.bundle)
		unlink(fx.bundle);
	free(fx.bundle);
	free(fx.bytes);
	return 0;
}

static art_store *open_store(const char *dir, unsigned flags)
{
	art_store *s = NULL;

	if (art_store_open(&s, dir, flags) < 0)
		fail_msg("open %s: %s", dir, art_error_last());
	return s;
}

/* "name@version digest" lines of a store, for before/after comparisons. */
static char *snapshot(art_store *s)
{
	art_store_entry *list = NULL;
	art_store_stats st;
	art_buf b = ART_BUF_INIT;
	size_t n = 0, i;

	assert_int_equal(art_store_list(&list, &n, s), 0);
	for (i = 0; i < n; i++)
		art_buf_printf(&b, "%s@%s %s\n", list[i].name, list[i].version, list[i].manifest_digest);
	assert_int_equal(art_store_stats_get(&st, s), 0);
	art_buf_printf(&b, "blobs %llu\n", (unsigned long long)st.blobs);
	art_store_list_free(list, n);
	return art_buf_detach(&b);
}

/* Import bytes into a store that already holds gamma@1.0.0; expect want_rc
 * and, on failure, the store unchanged and the message mentioning needle. */
static void expect_import(const void *bytes, size_t len, int want_rc, const char *needle)
{
	char *dir = temp_dir(), *before, *after;
	art_store *s = open_store(dir, ART_STORE_CREATE);
	art_store_txn *t = NULL;
	art_bundle_stats st;
	int rc;

	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(put_agent(t, "gamma", "1.0.0", fx.builder), 0);
	assert_int_equal(art_store_txn_commit(t), 0);
	before = snapshot(s);
	rc = art_bundle_import_mem(&st, s, fx.kr, NOW, bytes, len, "test.tar");
	if (rc != want_rc)
		fail_msg("import returned %d (%s), want %d", rc, art_error_last(), want_rc);
	if (needle && !strstr(art_error_last(), needle))
		fail_msg("message '%s' does not mention '%s'", art_error_last(), needle);
	if (getenv("AF_TEST_VERBOSE"))
		print_message("import -> %d: %s\n", rc, art_error_last());
	after = snapshot(s);
	if (want_rc != 0)
		assert_string_equal(before, after);
	free(before);
	free(after);
	art_store_close(s);
	remove_dir(dir);
}

/* ---- editing bundles ----------------------------------------------------- */

typedef struct edit {
	art_tar_entry *e;
	size_t n;
	uint8_t *owned[16];
	size_t n_owned;
} edit;

static void edit_open(edit *ed)
{
	memset(ed, 0, sizeof(*ed));
	assert_int_equal(art_bundle_tar_read(&ed->e, &ed->n, fx.bytes, fx.len, 1000), 0);
}

static art_tar_entry *edit_find(edit *ed, const char *path)
{
	size_t i;

	for (i = 0; i < ed->n; i++)
		if (!strcmp(ed->e[i].path, path))
			return &ed->e[i];
	return NULL;
}

static const char *blob_path(const char *digest)
{
	static char path[96];

	snprintf(path, sizeof(path), "blobs/sha256/%s", digest + 7);
	return path;
}

/* Add a blob entry holding text; returns its digest (static). */
static const char *edit_add_blob(edit *ed, const char *text)
{
	static char digest[72];
	uint8_t *copy = (uint8_t *)strdup(text);
	art_tar_entry *grown;

	assert_non_null(copy);
	art_manifest_digest(digest, text, strlen(text));
	if (edit_find(ed, blob_path(digest))) {
		free(copy);
		return digest;
	}
	ed->owned[ed->n_owned++] = copy;
	grown = realloc(ed->e, (ed->n + 1) * sizeof(*grown));
	assert_non_null(grown);
	ed->e = grown;
	ed->e[ed->n].path = strdup(blob_path(digest));
	ed->e[ed->n].data = copy;
	ed->e[ed->n].size = strlen(text);
	ed->e[ed->n].type = '0';
	ed->n++;
	return digest;
}

static void edit_set_text(edit *ed, const char *path, const char *text)
{
	art_tar_entry *e = edit_find(ed, path);
	uint8_t *copy = (uint8_t *)strdup(text);

	assert_non_null(e);
	ed->owned[ed->n_owned++] = copy;
	e->data = copy;
	e->size = strlen(text);
}

static json_t *edit_json(edit *ed, const char *path)
{
	art_tar_entry *e = edit_find(ed, path);
	json_t *j;

	assert_non_null(e);
	j = json_loadb((const char *)e->data, e->size, 0, NULL);
	assert_non_null(j);
	return j;
}

/* The index descriptor of ref. */
static json_t *index_desc(json_t *index, const char *ref)
{
	size_t i;
	json_t *d;

	json_array_foreach(json_object_get(index, "manifests"), i, d)
		if (!strcmp(json_string_value(json_object_get(json_object_get(d, "annotations"),
							      ART_OCI_REF_ANNOTATION)), ref))
			return d;
	fail_msg("%s not in index", ref);
	return NULL;
}

/* Replace ref's OCI manifest by oci (taken), re-pointing the index at it
 * and renaming its detached signatures after the new digest, as an attacker
 * would (so that the checks behind the signature lookup are reached). */
static void edit_replace_oci(edit *ed, json_t *index, const char *ref, json_t *oci)
{
	char *text = json_dumps(oci, JSON_COMPACT | JSON_SORT_KEYS);
	const char *digest = edit_add_blob(ed, text);
	json_t *d = index_desc(index, ref);
	const char *old = json_string_value(json_object_get(d, "digest"));
	const char *suffixes[] = {".manifest.dsse.json", ".provenance.dsse.json"};
	char path[160];
	size_t k;

	for (k = 0; k < 2; k++) {
		art_tar_entry *e;

		snprintf(path, sizeof(path), "signatures/%s%s", old + 7, suffixes[k]);
		if ((e = edit_find(ed, path))) {
			free(e->path);
			snprintf(path, sizeof(path), "signatures/%s%s", digest + 7, suffixes[k]);
			e->path = strdup(path);
		}
	}

	json_object_set_new(d, "digest", json_string(digest));
	json_object_set_new(d, "size", json_integer((json_int_t)strlen(text)));
	free(text);
	json_decref(oci);
}

static json_t *oci_of(edit *ed, json_t *index, const char *ref)
{
	return edit_json(ed, blob_path(json_string_value(json_object_get(index_desc(index, ref),
									   "digest"))));
}

static uint8_t *edit_close(edit *ed, json_t *index, size_t *len)
{
	char *text = NULL, *buf = NULL;
	size_t size = 0, i;
	FILE *f;

	if (index) {
		text = json_dumps(index, JSON_COMPACT | JSON_SORT_KEYS);
		edit_set_text(ed, "index.json", text);
		free(text);
		json_decref(index);
	}
	f = open_memstream(&buf, &size);
	assert_non_null(f);
	assert_int_equal(art_bundle_tar_write(f, ed->e, ed->n), 0);
	fclose(f);
	for (i = 0; i < ed->n_owned; i++)
		free(ed->owned[i]);
	art_bundle_tar_free(ed->e, ed->n);
	*len = size;
	return (uint8_t *)buf;
}

/* A raw ustar header (independent of the library's writer). */
static void raw_header(uint8_t h[512], const char *name, char type, size_t size,
		       const char *link)
{
	unsigned sum = 0;
	size_t i;

	memset(h, 0, 512);
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	{
		char octal[32];

		snprintf(octal, sizeof(octal), "%011zo", size);
		memcpy(h + 124, octal, 11);
	}
	memcpy(h + 136, "00000000000", 11);
	memset(h + 148, ' ', 8);
	h[156] = (uint8_t)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* The bundle with one extra member appended before the end marker. */
static uint8_t *with_member(const char *name, char type, const char *data, const char *link,
			    size_t *len)
{
	size_t body = fx.len - 1024, dlen = data ? strlen(data) : 0;
	size_t padded = (dlen + 511) / 512 * 512;
	uint8_t *out = calloc(1, body + 512 + padded + 1024);

	assert_non_null(out);
	memcpy(out, fx.bytes, body);
	raw_header(out + body, name, type, dlen, link);
	if (dlen)
		memcpy(out + body + 512, data, dlen);
	*len = body + 512 + padded + 1024;
	return out;
}

/* The bundle with an extension header (type ext, data ext_data) and then a
 * member appended before the end marker. */
static uint8_t *with_extended(char ext, const char *ext_data, const char *name, char type,
			      const char *data, size_t *len)
{
	size_t body = fx.len - 1024, elen = strlen(ext_data), dlen = data ? strlen(data) : 0;
	size_t epad = (elen + 511) / 512 * 512, dpad = (dlen + 511) / 512 * 512;
	uint8_t *out = calloc(1, body + 512 + epad + 512 + dpad + 1024);

	assert_non_null(out);
	memcpy(out, fx.bytes, body);
	raw_header(out + body, "PaxHeaders/x", ext, elen, NULL);
	memcpy(out + body + 512, ext_data, elen);
	raw_header(out + body + 512 + epad, name, type, dlen, NULL);
	if (dlen)
		memcpy(out + body + 512 + epad + 512, data, dlen);
	*len = body + 512 + epad + 512 + dpad + 1024;
	return out;
}

/* ---- tests --------------------------------------------------------------- */

static void test_bundle__round_trip_into_fresh_store(void **state)
{
	char *dir = temp_dir(), *again = NULL, *a_snap, *b_snap;
	art_store *src = open_store(fx.src_dir, ART_STORE_RDONLY), *dst;
	art_bundle_stats st;
	art_verified_artifact *va = NULL;
	art_tar_entry *entries = NULL;
	size_t n = 0, ok = 0, len = 0;
	char *bytes2 = NULL;

	(void)state;
	/* the archive is an OCI layout */
	assert_int_equal(art_bundle_tar_read(&entries, &n, fx.bytes, fx.len, 1000), 0);
	assert_string_equal(entries[0].path, "blobs/");
	assert_string_equal(entries[1].path, "blobs/sha256/");
	assert_string_equal(entries[n - 9].path, "index.json");
	assert_string_equal(entries[n - 8].path, "oci-layout");
	assert_memory_equal(entries[n - 8].data, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	assert_non_null(memmem(entries[n - 9].data, entries[n - 9].size,
			       "\"org.opencontainers.image.ref.name\":\"alpha@1.1.0\"", 49));
	/* then the detached signatures: a builder envelope and a provenance
	 * attestation per artifact, none of them named by any digest */
	assert_string_equal(entries[n - 7].path, "signatures/");
	assert_non_null(strstr(entries[n - 6].path, ".manifest.dsse.json"));
	assert_non_null(strstr(entries[n - 5].path, ".provenance.dsse.json"));
	assert_null(memmem(entries[n - 9].data, entries[n - 9].size, "dsse", 4));
	art_bundle_tar_free(entries, n);

	/* deterministic: a second export is byte-identical */
	assert_true(asprintf(&again, "%s/again.tar", dir) > 0);
	assert_int_equal(art_bundle_export(&st, src, again, NULL, 0), 0);
	assert_int_equal(st.artifacts, 3);
	assert_int_equal(art_file_read(&bytes2, &len, again, ART_BUNDLE_MAX), 0);
	assert_int_equal(len, fx.len);
	assert_memory_equal(bytes2, fx.bytes, len);
	unlink(again);

	dst = open_store(dir, ART_STORE_CREATE);
	assert_int_equal(art_bundle_import(&st, dst, fx.kr, NOW, fx.bundle), 0);
	assert_int_equal(st.artifacts, 3);
	a_snap = snapshot(src);
	b_snap = snapshot(dst);
	assert_string_equal(a_snap, b_snap); /* same names, versions, manifest digests, blobs */
	assert_int_equal(art_store_verify_all(dst, fx.kr, NOW, NULL, NULL, &ok, NULL), 0);
	assert_int_equal(ok, 3);
	assert_int_equal(art_store_load_verified(&va, dst, fx.kr, "alpha", NULL, NOW), 0);
	assert_string_equal(va->manifest->version, "1.1.0");
	art_verified_artifact_free(va);
	/* importing again is harmless */
	assert_int_equal(art_bundle_import(NULL, dst, fx.kr, NOW, fx.bundle), 0);
	free(b_snap);
	b_snap = snapshot(dst);
	assert_string_equal(a_snap, b_snap);

	free(a_snap);
	free(b_snap);
	free(bytes2);
	free(again);
	art_store_close(src);
	art_store_close(dst);
	remove_dir(dir);
}

static void test_bundle__export_selected(void **state)
{
	char *dir = temp_dir(), *path = NULL;
	art_store *src = open_store(fx.src_dir, ART_STORE_RDONLY), *dst;
	const char *refs[] = {"alpha", "beta@2.0.0", "alpha@1.1.0"};
	const char *bad[] = {"nope"};
	const char *badv[] = {"alpha@9.0.0"};
	art_store_entry *list = NULL;
	art_bundle_stats st;
	size_t n = 0;

	(void)state;
	assert_true(asprintf(&path, "%s/sel.tar", dir) > 0);
	assert_int_equal(art_bundle_export(&st, src, path, refs, 3), 0);
	assert_int_equal(st.artifacts, 2); /* "alpha" is alpha@1.1.0 */
	dst = open_store(dir, ART_STORE_CREATE);
	assert_int_equal(art_bundle_import(NULL, dst, fx.kr, NOW, path), 0);
	assert_int_equal(art_store_list(&list, &n, dst), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].version, "1.1.0");
	assert_string_equal(list[1].name, "beta");
	art_store_list_free(list, n);
	assert_int_equal(art_bundle_export(NULL, src, path, bad, 1), AF_ENOTFOUND);
	assert_int_equal(art_bundle_export(NULL, src, path, badv, 1), AF_ENOTFOUND);
	free(path);
	art_store_close(src);
	art_store_close(dst);
	remove_dir(dir);
}

static void test_bundle__flipped_part_byte_refused(void **state)
{
	edit ed;
	json_t *index, *oci;
	const char *wasm_digest = NULL;
	uint8_t *bytes, *copy;
	size_t len, i;
	json_t *layer;
	art_tar_entry *e;

	(void)state;
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	oci = oci_of(&ed, index, "beta@2.0.0");
	json_array_foreach(json_object_get(oci, "layers"), i, layer)
		if (!strcmp(json_string_value(json_object_get(layer, "mediaType")), ART_MEDIA_WASM))
			wasm_digest = json_string_value(json_object_get(layer, "digest"));
	assert_non_null(wasm_digest);
	e = edit_find(&ed, blob_path(wasm_digest));
	copy = malloc(e->size);
	memcpy(copy, e->data, e->size);
	copy[e->size / 2] ^= 1;
	e->data = copy;
	ed.owned[ed.n_owned++] = copy;
	json_decref(oci);
	json_decref(index);
	bytes = edit_close(&ed, NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "does not match its name");
	free(bytes);

	/* the same flip straight in the file bytes */
	bytes = malloc(fx.len);
	memcpy(bytes, fx.bytes, fx.len);
	bytes[fx.len / 2] ^= 0x40;
	expect_import(bytes, fx.len, AF_ECORRUPT, NULL);
	free(bytes);
}

static void test_bundle__swapped_manifest_refused(void **state)
{
	edit ed;
	json_t *index, *oci_a, *oci_b;
	uint8_t *bytes;
	size_t len;

	(void)state;
	/* alpha@1.0.0's OCI manifest points its config at beta's manifest */
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	oci_a = oci_of(&ed, index, "alpha@1.0.0");
	oci_b = oci_of(&ed, index, "beta@2.0.0");
	json_object_set(oci_a, "config", json_object_get(oci_b, "config"));
	edit_replace_oci(&ed, index, "alpha@1.0.0", oci_a);
	json_decref(oci_b);
	bytes = edit_close(&ed, index, &len);
	expect_import(bytes, len, AF_ESIGNATURE, "alpha@1.0.0");
	free(bytes);

	/* beta's whole, validly signed artifact listed under alpha's name */
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	oci_b = oci_of(&ed, index, "beta@2.0.0");
	json_object_set_new(json_object_get(oci_b, "annotations"), ART_OCI_REF_ANNOTATION,
			    json_string("alpha@1.0.0"));
	json_object_set(index_desc(index, "alpha@1.0.0"), "digest",
			json_object_get(index_desc(index, "beta@2.0.0"), "digest"));
	json_object_set(index_desc(index, "alpha@1.0.0"), "size",
			json_object_get(index_desc(index, "beta@2.0.0"), "size"));
	json_decref(oci_b);
	bytes = edit_close(&ed, index, &len);
	expect_import(bytes, len, AF_ESIGNATURE, "signed manifest is beta@2.0.0");
	free(bytes);
}

static void test_bundle__dropped_or_foreign_layer_refused(void **state)
{
	edit ed;
	json_t *index, *oci, *layers;
	uint8_t *bytes;
	size_t len;

	(void)state;
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	oci = oci_of(&ed, index, "beta@2.0.0");
	layers = json_object_get(oci, "layers");
	json_array_remove(layers, json_array_size(layers) - 1);
	edit_replace_oci(&ed, index, "beta@2.0.0", oci);
	bytes = edit_close(&ed, index, &len);
	expect_import(bytes, len, AF_ECORRUPT, "beta@2.0.0");
	free(bytes);

	/* a part layer pointing at another (present, valid) blob */
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	oci = oci_of(&ed, index, "beta@2.0.0");
	{
		json_t *alpha = oci_of(&ed, index, "alpha@1.0.0"), *layer;
		size_t i, j;

		json_array_foreach(json_object_get(oci, "layers"), i, layer) {
			json_t *other;

			if (strcmp(json_string_value(json_object_get(layer, "mediaType")), ART_MEDIA_WASM))
				continue;
			json_array_foreach(json_object_get(alpha, "layers"), j, other)
				if (!strcmp(json_string_value(json_object_get(other, "mediaType")),
					    ART_MEDIA_WASM))
					json_object_set(layer, "digest", json_object_get(other, "digest"));
		}
		json_decref(alpha);
	}
	edit_replace_oci(&ed, index, "beta@2.0.0", oci);
	bytes = edit_close(&ed, index, &len);
	expect_import(bytes, len, AF_ESIGNATURE, "not the signed part");
	free(bytes);
}

/* Export src_dir's store with detached signatures into dir; returns paths. */
static void export_detached(const char *store_dir, const char *dir, char **bundle, char **sigs,
			    art_bundle_stats *st)
{
	art_store *s = open_store(store_dir, ART_STORE_RDONLY);

	assert_true(asprintf(bundle, "%s/b.tar", dir) > 0);
	assert_true(asprintf(sigs, "%s/b.sigs.tar", dir) > 0);
	assert_int_equal(art_bundle_export_ex(st, s, *bundle, *sigs, NULL, 0), 0);
	art_store_close(s);
}

static void test_bundle__detached_signatures(void **state)
{
	char *dir = temp_dir(), *bundle = NULL, *sigs = NULL, *data = NULL;
	art_store *dst;
	art_bundle_stats st, in;
	art_tar_entry *e = NULL;
	size_t n = 0, len = 0, i;

	(void)state;
	export_detached(fx.src_dir, dir, &bundle, &sigs, &st);
	assert_int_equal(st.artifacts, 3);
	assert_int_equal(strncmp(st.content_digest, "sha256:", 7), 0);
	/* the bundle holds no signature at all; the signatures file nothing else */
	assert_int_equal(art_file_read(&data, &len, bundle, ART_BUNDLE_MAX), 0);
	assert_int_equal(art_bundle_tar_read(&e, &n, data, len, 1000), 0);
	for (i = 0; i < n; i++)
		assert_null(strstr(e[i].path, "signatures"));
	art_bundle_tar_free(e, n);
	free(data);
	assert_int_equal(art_file_read(&data, &len, sigs, ART_BUNDLE_MAX), 0);
	assert_int_equal(art_bundle_tar_read(&e, &n, data, len, 1000), 0);
	assert_int_equal(n, 1 + 3 * 2);
	for (i = 0; i < n; i++)
		assert_int_equal(strncmp(e[i].path, "signatures/", 11), 0);
	art_bundle_tar_free(e, n);
	free(data);
	/* without its signatures the bundle is refused, naming what is missing */
	dst = open_store(dir, ART_STORE_CREATE);
	assert_int_equal(art_bundle_import_ex(&in, dst, fx.kr, NOW, bundle, NULL), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "signatures file"));
	/* a signatures file cannot bring other entries */
	assert_int_equal(art_bundle_import_ex(&in, dst, fx.kr, NOW, bundle, bundle), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "only signatures/"));
	/* the pair imports, attestations included */
	assert_int_equal(art_bundle_import_ex(&in, dst, fx.kr, NOW, bundle, sigs), 0);
	assert_int_equal(in.artifacts, 3);
	assert_int_equal(in.attestations, 3);
	{
		char *att = NULL;
		size_t att_len = 0;

		assert_int_equal(art_store_get_attestation(&att, &att_len, dst, "beta", NULL), 0);
		free(att);
	}
	unlink(bundle);
	unlink(sigs);
	free(bundle);
	free(sigs);
	art_store_close(dst);
	remove_dir(dir);
}

/* Two builds of the same inputs at other times: the same bytes but signatures. */
static void test_bundle__reproducible_between_builds(void **state)
{
	char *dir = temp_dir(), *other = temp_dir(), *b1 = NULL, *s1 = NULL, *b2 = NULL,
	     *s2 = NULL, *d1 = NULL, *d2 = NULL, *x1 = NULL, *x2 = NULL;
	size_t l1 = 0, l2 = 0;
	art_store *s = open_store(other, ART_STORE_CREATE);
	art_store_txn *t = NULL;
	art_bundle_stats st1, st2;

	(void)state;
	/* the same three artifacts, built again into another store: new
	 * signatures (RSA-PSS is randomised), same everything else */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(put_agent(t, "beta", "2.0.0", fx.builder), 0);
	assert_int_equal(put_agent(t, "alpha", "1.1.0", fx.builder), 0);
	assert_int_equal(put_agent(t, "alpha", "1.0.0", fx.builder), 0);
	assert_int_equal(art_store_txn_commit(t), 0);
	art_store_close(s);
	export_detached(fx.src_dir, dir, &b1, &s1, &st1);
	assert_true(asprintf(&x1, "%s/x", other) > 0);
	assert_int_equal(mkdir(x1, 0700), 0);
	export_detached(other, x1, &b2, &s2, &st2);
	assert_string_equal(st1.content_digest, st2.content_digest);
	assert_int_equal(art_file_read(&d1, &l1, b1, ART_BUNDLE_MAX), 0);
	assert_int_equal(art_file_read(&d2, &l2, b2, ART_BUNDLE_MAX), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(d1, d2, l1); /* the bundle files are byte-identical */
	free(d1);
	free(d2);
	assert_int_equal(art_file_read(&d1, &l1, s1, ART_BUNDLE_MAX), 0);
	assert_int_equal(art_file_read(&d2, &l2, s2, ART_BUNDLE_MAX), 0);
	assert_true(l1 != l2 || memcmp(d1, d2, l1) != 0); /* the signatures are not */
	free(d1);
	free(d2);
	free(b1);
	free(b2);
	free(s1);
	free(s2);
	free(x1);
	free(x2);
	remove_dir(dir);
	remove_dir(other);
}

/* The first layout (builder envelope as a layer, no signatures/) still imports. */
static void test_bundle__first_layout_still_imports(void **state)
{
	edit ed;
	json_t *index, *d;
	uint8_t *bytes;
	size_t len, i, k;
	const char *refs[] = {"alpha@1.0.0", "alpha@1.1.0", "beta@2.0.0"};

	(void)state;
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	for (k = 0; k < 3; k++) {
		json_t *oci = oci_of(&ed, index, refs[k]), *layer, *ann;
		char path[160], *env;
		art_tar_entry *e;
		const char *ed_digest;

		d = index_desc(index, refs[k]);
		snprintf(path, sizeof(path), "signatures/%s.manifest.dsse.json",
			 json_string_value(json_object_get(d, "digest")) + 7);
		e = edit_find(&ed, path);
		assert_non_null(e);
		env = strndup((const char *)e->data, e->size);
		ed_digest = edit_add_blob(&ed, env);
		layer = json_object();
		json_object_set_new(layer, "mediaType", json_string(ART_MEDIA_DSSE));
		json_object_set_new(layer, "digest", json_string(ed_digest));
		json_object_set_new(layer, "size", json_integer((json_int_t)strlen(env)));
		json_object_set_new(layer, "annotations", ann = json_object());
		json_object_set_new(ann, ART_OCI_TITLE_ANNOTATION, json_string("manifest.dsse.json"));
		json_array_insert_new(json_object_get(oci, "layers"), 0, layer);
		free(env);
		edit_replace_oci(&ed, index, refs[k], oci);
	}
	/* drop signatures/ entirely */
	for (i = 0; i < ed.n;) {
		if (!strncmp(ed.e[i].path, "signatures/", 11)) {
			free(ed.e[i].path);
			memmove(&ed.e[i], &ed.e[i + 1], (ed.n - i - 1) * sizeof(*ed.e));
			ed.n--;
		} else {
			i++;
		}
	}
	bytes = edit_close(&ed, index, &len);
	expect_import(bytes, len, 0, NULL);
	free(bytes);
}

/* index.json -> a nested image index -> the artifacts (registry style). */
static void test_bundle__nested_index_imports(void **state)
{
	edit ed;
	json_t *index, *outer, *arr, *d;
	char *text;
	const char *digest;
	uint8_t *bytes;
	size_t len;

	(void)state;
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	text = json_dumps(index, JSON_COMPACT | JSON_SORT_KEYS);
	digest = edit_add_blob(&ed, text);
	outer = json_object();
	json_object_set_new(outer, "schemaVersion", json_integer(2));
	json_object_set_new(outer, "mediaType", json_string(ART_MEDIA_OCI_INDEX));
	json_object_set_new(outer, "manifests", arr = json_array());
	d = json_object();
	json_object_set_new(d, "mediaType", json_string(ART_MEDIA_OCI_INDEX));
	json_object_set_new(d, "digest", json_string(digest));
	json_object_set_new(d, "size", json_integer((json_int_t)strlen(text)));
	json_array_append_new(arr, d);
	free(text);
	json_decref(index);
	bytes = edit_close(&ed, outer, &len);
	expect_import(bytes, len, 0, NULL);
	free(bytes);

	/* an index that contains itself would never end: depth is capped */
	edit_open(&ed);
	index = edit_json(&ed, "index.json");
	json_decref(index);
	outer = json_object();
	json_object_set_new(outer, "schemaVersion", json_integer(2));
	json_object_set_new(outer, "manifests", arr = json_array());
	{
		/* five levels of indexes, each pointing at the next */
		char *level = strdup("{\"manifests\":[],\"schemaVersion\":2}");
		int k;

		for (k = 0; k < 5; k++) {
			json_t *idx = json_object(), *m = json_array(), *dd = json_object();

			digest = edit_add_blob(&ed, level);
			json_object_set_new(dd, "mediaType", json_string(ART_MEDIA_OCI_INDEX));
			json_object_set_new(dd, "digest", json_string(digest));
			json_object_set_new(dd, "size", json_integer((json_int_t)strlen(level)));
			json_array_append_new(m, dd);
			json_object_set_new(idx, "schemaVersion", json_integer(2));
			json_object_set_new(idx, "manifests", m);
			free(level);
			level = json_dumps(idx, JSON_COMPACT | JSON_SORT_KEYS);
			if (k == 4)
				json_array_extend(arr, m);
			json_decref(idx);
		}
		free(level);
	}
	bytes = edit_close(&ed, outer, &len);
	expect_import(bytes, len, AF_ECORRUPT, "nested deeper");
	free(bytes);
}

static void test_bundle__unsafe_members_refused(void **state)
{
	uint8_t *bytes;
	size_t len;

	(void)state;
	bytes = with_member("../evil", '0', "x", NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "traversal");
	free(bytes);
	bytes = with_member("blobs/../../evil", '0', "x", NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "traversal");
	free(bytes);
	bytes = with_member("/etc/cron.d/evil", '0', "x", NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "absolute");
	free(bytes);
	bytes = with_member("blobs/sha256/link", '2', NULL, "/etc/passwd", &len);
	expect_import(bytes, len, AF_ECORRUPT, "symbolic link");
	free(bytes);
	bytes = with_member("index2.json", '1', NULL, "index.json", &len);
	expect_import(bytes, len, AF_ECORRUPT, "hard link");
	free(bytes);
	bytes = with_member("dev", '3', NULL, NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "device");
	free(bytes);
	/* pax and GNU extension headers are read, and what they say is checked
	 * like any member name: they cannot smuggle a path or a link in */
	bytes = with_member("pax", 'x', "20 path=/etc/passwd\n", NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "extension header");
	free(bytes);
	bytes = with_extended('x', "20 path=/etc/passwd\n", "harmless", '0', "x", &len);
	expect_import(bytes, len, AF_ECORRUPT, "absolute");
	free(bytes);
	bytes = with_extended('L', "../../evil", "harmless", '0', "x", &len);
	expect_import(bytes, len, AF_ECORRUPT, "traversal");
	free(bytes);
	bytes = with_extended('x', "19 linkpath=/etc/x\n", "harmless", '0', "x", &len);
	expect_import(bytes, len, AF_ECORRUPT, "link");
	free(bytes);
	bytes = with_extended('x', "13 size=2000\n", "harmless", '0', "x", &len);
	expect_import(bytes, len, AF_ECORRUPT, "truncated");
	free(bytes);
	bytes = with_extended('x', "9 bogus\n", "harmless", '0', "x", &len);
	expect_import(bytes, len, AF_ECORRUPT, "pax");
	free(bytes);
	/* the name from a pax header wins over the header's: a stray file */
	bytes = with_extended('x', "30 mtime=1700000000.123456789\n19 path=README.txt\n",
			      "oci-layout-not", '0', "x", &len);
	expect_import(bytes, len, AF_ECORRUPT, "'README.txt'");
	free(bytes);
	bytes = with_member("README", '0', "hello", NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "unexpected entry");
	free(bytes);
	bytes = with_member("oci-layout", '0', "{}", NULL, &len);
	expect_import(bytes, len, AF_ECORRUPT, "twice");
	free(bytes);
}

static void test_bundle__truncated_refused(void **state)
{
	size_t cuts[] = {0, 100, 512, fx.len / 3, fx.len / 2, fx.len - 1024, fx.len - 600,
			 fx.len - 1};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		expect_import(fx.bytes, cuts[i], AF_ECORRUPT, NULL);
	/* zero padding after the end marker is fine (tar records) */
	{
		uint8_t *padded = calloc(1, fx.len + 8192);

		memcpy(padded, fx.bytes, fx.len);
		expect_import(padded, fx.len + 8192, 0, NULL);
		padded[fx.len + 100] = 1;
		expect_import(padded, fx.len + 8192, AF_ECORRUPT, "after the end");
		free(padded);
	}
}

static void test_bundle__untrusted_or_expired_builder_refused(void **state)
{
	char *dir = temp_dir();
	art_store *s = open_store(dir, ART_STORE_CREATE);
	art_keyring *kr = NULL;
	art_store_entry *list = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, fx.stranger, ART_ROLE_BUILDER, T_2026, 0), 0);
	assert_int_equal(art_bundle_import_mem(NULL, s, kr, NOW, fx.bytes, fx.len, "b.tar"),
			 AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "b.tar"));
	assert_int_equal(art_bundle_import_mem(NULL, s, fx.kr, T_2026 + 400 * 86400, fx.bytes,
					       fx.len, "b.tar"), AF_EEXPIRED);
	assert_int_equal(art_store_list(&list, &n, s), 0);
	assert_int_equal(n, 0);
	free(list);
	art_keyring_free(kr);
	art_store_close(s);
	remove_dir(dir);
}

static void test_bundle__tar_reader_is_strict(void **state)
{
	art_tar_entry *e = NULL;
	uint8_t buf[4096];
	size_t n = 0;
	art_tar_entry one = {"file", (const uint8_t *)"data", 4, '0'};
	art_tar_entry two[2] = {{"a", (const uint8_t *)"1", 1, '0'}, {"a", (const uint8_t *)"2", 1, '0'}};
	char *mem = NULL;
	size_t size = 0;
	FILE *f;

	(void)state;
	memset(buf, 0, sizeof(buf));
	/* an empty archive (just the end marker) is fine */
	assert_int_equal(art_bundle_tar_read(&e, &n, buf, 1024, 10), 0);
	assert_int_equal(n, 0);
	art_bundle_tar_free(e, n);
	/* one block of zeros only: truncated */
	assert_int_equal(art_bundle_tar_read(&e, &n, buf, 512, 10), AF_ECORRUPT);
	/* garbage */
	memset(buf, 'A', sizeof(buf));
	assert_int_equal(art_bundle_tar_read(&e, &n, buf, sizeof(buf), 10), AF_ECORRUPT);

	f = open_memstream(&mem, &size);
	assert_int_equal(art_bundle_tar_write(f, &one, 1), 0);
	fclose(f);
	assert_int_equal(size, 512 * 4);
	assert_int_equal(art_bundle_tar_read(&e, &n, mem, size, 10), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].path, "file");
	assert_memory_equal(e[0].data, "data", 4);
	art_bundle_tar_free(e, n);
	/* checksum */
	mem[0] = 'F';
	assert_int_equal(art_bundle_tar_read(&e, &n, mem, size, 10), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "checksum"));
	mem[0] = 'f';
	/* a size pointing past the end */
	memcpy(mem + 124, "77777777777", 11);
	{
		unsigned sum = 0;
		int i;

		memset(mem + 148, ' ', 8);
		for (i = 0; i < 512; i++)
			sum += (unsigned char)mem[i];
		snprintf(mem + 148, 8, "%06o", sum);
	}
	assert_int_equal(art_bundle_tar_read(&e, &n, mem, size, 10), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "truncated"));
	free(mem);
	/* entry cap and duplicates */
	f = open_memstream(&mem, &size);
	assert_int_equal(art_bundle_tar_write(f, two, 2), 0);
	fclose(f);
	assert_int_equal(art_bundle_tar_read(&e, &n, mem, size, 1), AF_ETOOBIG);
	assert_int_equal(art_bundle_tar_read(&e, &n, mem, size, 10), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "twice"));
	free(mem);
	/* the writer refuses what it cannot represent */
	{
		art_tar_entry longname = {NULL, (const uint8_t *)"", 0, '0'};
		char name[120];

		memset(name, 'n', sizeof(name));
		name[119] = '\0';
		longname.path = name;
		f = open_memstream(&mem, &size);
		assert_int_equal(art_bundle_tar_write(f, &longname, 1), AF_EINVAL);
		fclose(f);
		free(mem);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bundle__round_trip_into_fresh_store),
		cmocka_unit_test(test_bundle__export_selected),
		cmocka_unit_test(test_bundle__flipped_part_byte_refused),
		cmocka_unit_test(test_bundle__swapped_manifest_refused),
		cmocka_unit_test(test_bundle__dropped_or_foreign_layer_refused),
		cmocka_unit_test(test_bundle__detached_signatures),
		cmocka_unit_test(test_bundle__reproducible_between_builds),
		cmocka_unit_test(test_bundle__first_layout_still_imports),
		cmocka_unit_test(test_bundle__nested_index_imports),
		cmocka_unit_test(test_bundle__unsafe_members_refused),
		cmocka_unit_test(test_bundle__truncated_refused),
		cmocka_unit_test(test_bundle__untrusted_or_expired_builder_refused),
		cmocka_unit_test(test_bundle__tar_reader_is_strict),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
