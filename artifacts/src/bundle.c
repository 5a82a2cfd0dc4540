/*
 * bundle.c - artifact bundles: an OCI image layout in a deterministic ustar
 * archive (export), and its strict, verify-everything-first import.
 *
 * Invariants: import writes nothing until every artifact in the bundle has
 * verified, and then writes them all in one store batch; export output is a
 * pure function of the exported artifacts. The tar code here is the only
 * archive code in the project (no libarchive): it writes only regular files
 * and directories and reads nothing else.
 */
#include "art/bundle.h"

#include "art/attest.h"
#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 512u
#define TAR_NAME_MAX 99u
#define OCI_LAYOUT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define BLOB_DIR "blobs/sha256/"
/* Detached signatures: SIG_DIR "<hex of the artifact's OCI manifest>" + suffix. */
#define SIG_DIR "signatures/"
#define SIG_MANIFEST ".manifest.dsse.json"
#define SIG_PROVENANCE ".provenance.dsse.json"
/* pax extended headers larger than this are refused */
#define PAX_MAX (1024u * 1024u)
#define MAX_ARTIFACTS 10000u

/* ---- tar: writing -------------------------------------------------------- */

static void octal(char *field, size_t width, uint64_t v)
{
	/* width-1 octal digits, then NUL */
	snprintf(field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
}

static int tar_write_header(FILE *f, const char *path, char type, uint64_t size)
{
	uint8_t h[BLOCK];
	unsigned sum = 0;
	size_t i;

	if (strlen(path) > TAR_NAME_MAX || (type != '0' && type != '5') ||
	    size > 077777777777ull)
		return art_error_set(AF_EINVAL, "tar: cannot write entry '%.120s'", path);
	memset(h, 0, sizeof(h));
	memcpy(h, path, strlen(path));
	octal((char *)h + 100, 8, type == '5' ? 0755 : 0644);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, 0);
	memset(h + 148, ' ', 8);
	h[156] = (uint8_t)type;
	memcpy(h + 257, "ustar", 6); /* with its NUL */
	memcpy(h + 263, "00", 2);
	for (i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	if (fwrite(h, 1, BLOCK, f) != BLOCK)
		return art_error_set(AF_EIO, "tar: write failed: %s", strerror(errno));
	return 0;
}

static int tar_write_entry(FILE *f, const char *path, char type, const void *data, size_t size)
{
	static const uint8_t zeros[BLOCK];
	size_t pad = (BLOCK - size % BLOCK) % BLOCK;
	int rc;

	if ((rc = tar_write_header(f, path, type, size)) < 0)
		return rc;
	if ((size && fwrite(data, 1, size, f) != size) || (pad && fwrite(zeros, 1, pad, f) != pad))
		return art_error_set(AF_EIO, "tar: write failed: %s", strerror(errno));
	return 0;
}

static int tar_write_end(FILE *f)
{
	static const uint8_t zeros[2 * BLOCK];

	if (fwrite(zeros, 1, sizeof(zeros), f) != sizeof(zeros))
		return art_error_set(AF_EIO, "tar: write failed: %s", strerror(errno));
	return 0;
}

int art_bundle_tar_write(FILE *f, const art_tar_entry *entries, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = tar_write_entry(f, entries[i].path, entries[i].type, entries[i].data,
					  entries[i].size)) < 0)
			return rc;
	return tar_write_end(f);
}

/* ---- tar: reading -------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Octal number field: optional leading spaces, digits, then NULs/spaces. */
static bool parse_octal(uint64_t *out, const uint8_t *field, size_t width)
{
	size_t i = 0;
	uint64_t v = 0;
	bool digits = false;

	if (field[0] & 0x80)
		return false; /* base-256: never written by us, never needed */
	while (i < width && field[i] == ' ')
		i++;
	for (; i < width && field[i] >= '0' && field[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return false;
		v = v * 8 + (uint64_t)(field[i] - '0');
		digits = true;
	}
	for (; i < width; i++)
		if (field[i] != ' ' && field[i] != '\0')
			return false;
	*out = v;
	return digits;
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case '1': return "a hard link";
	case '2': return "a symbolic link";
	case '3': return "a character device";
	case '4': return "a block device";
	case '6': return "a FIFO";
	case '7': return "a contiguous file";
	case 'x': case 'g': return "a pax extended header";
	case 'L': case 'K': return "a GNU long-name header";
	default: return "an unsupported entry type";
	}
}

/* Normalise and check a member path; *skip for the "./" root entry. */
static int check_path(char *path, bool dir, bool *skip)
{
	size_t len, i, start = 0;

	*skip = false;
	if (!strncmp(path, "./", 2))
		memmove(path, path + 2, strlen(path + 2) + 1);
	if (!*path || !strcmp(path, ".")) {
		if (dir) {
			*skip = true;
			return 0;
		}
		return art_error_set(AF_ECORRUPT, "tar: an entry has an empty name");
	}
	if (path[0] == '/')
		return art_error_set(AF_ECORRUPT, "tar: absolute path '%.120s' refused", path);
	if (strchr(path, '\\'))
		return art_error_set(AF_ECORRUPT, "tar: path '%.120s' contains a backslash", path);
	len = strlen(path);
	if (dir && path[len - 1] == '/')
		len--;
	for (i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if (i == start || (i - start == 1 && path[start] == '.') ||
		    (i - start == 2 && path[start] == '.' && path[start + 1] == '.'))
			return art_error_set(AF_ECORRUPT, "tar: path '%.120s' has an empty, '.' or "
					     "'..' component (path traversal refused)", path);
		start = i + 1;
	}
	if (!dir && path[strlen(path) - 1] == '/')
		return art_error_set(AF_ECORRUPT, "tar: file '%.120s' ends with '/'", path);
	return 0;
}

static int cmp_tar_path(const void *x, const void *y)
{
	return strcmp(((const art_tar_entry *)x)->path, ((const art_tar_entry *)y)->path);
}

/*
 * Parse the records of a pax extended header ("LEN key=value\n"...). For an
 * 'x' header, "path" and "size" are returned for the next member (*path is
 * replaced, caller frees); every other key (times, owners, charset, vendor
 * keys) only has to be well-formed.
 */
static int pax_parse(const uint8_t *data, size_t len, char **path, bool *have_size,
		     uint64_t *size, bool global)
{
	size_t off = 0;

	while (off < len) {
		size_t rec = 0, i = off, key_start, eq;
		const char *r = (const char *)data;

		if (data[off] == '\0' && all_zero(data + off, len - off))
			break; /* NUL padding some writers leave */
		while (i < len && r[i] >= '0' && r[i] <= '9' && i - off < 8)
			rec = rec * 10 + (size_t)(r[i++] - '0');
		if (i == off || i >= len || r[i] != ' ' || rec < 5 || rec > len - off ||
		    r[off + rec - 1] != '\n')
			return art_error_set(AF_ECORRUPT, "tar: malformed pax extended header");
		key_start = i + 1;
		for (eq = key_start; eq < off + rec - 1 && r[eq] != '='; eq++)
			;
		if (eq == key_start || eq >= off + rec - 1)
			return art_error_set(AF_ECORRUPT, "tar: malformed pax record");
		if (!global && eq - key_start == 4 && !memcmp(r + key_start, "path", 4)) {
			size_t vlen = off + rec - 1 - (eq + 1);

			if (vlen == 0 || vlen > 1000 || memchr(r + eq + 1, '\0', vlen))
				return art_error_set(AF_ECORRUPT, "tar: bad pax path");
			free(*path);
			if (!(*path = strndup(r + eq + 1, vlen)))
				return art_error_set(AF_ENOMEM, "out of memory reading an archive");
		} else if (!global && eq - key_start == 4 && !memcmp(r + key_start, "size", 4)) {
			uint64_t v = 0;
			size_t k;

			for (k = eq + 1; k < off + rec - 1; k++) {
				if (r[k] < '0' || r[k] > '9' || v > (UINT64_MAX - 9) / 10)
					return art_error_set(AF_ECORRUPT, "tar: bad pax size");
				v = v * 10 + (uint64_t)(r[k] - '0');
			}
			if (k == eq + 1)
				return art_error_set(AF_ECORRUPT, "tar: bad pax size");
			*size = v;
			*have_size = true;
		} else if (!global && eq - key_start == 8 && !memcmp(r + key_start, "linkpath", 8)) {
			return art_error_set(AF_ECORRUPT, "tar: a pax header names a link target; "
					     "links are refused");
		}
		off += rec;
	}
	return 0;
}

int art_bundle_tar_read(art_tar_entry **out, size_t *n, const void *data, size_t len,
			size_t max_entries)
{
	const uint8_t *base = data;
	art_tar_entry *list = NULL, *grown, *sorted = NULL;
	size_t count = 0, cap = 0, off = 0, i;
	char *pending_path = NULL; /* from a pax 'x' or GNU 'L' header */
	bool pending_size_set = false, pending = false;
	uint64_t pending_size = 0;
	int rc;

	*out = NULL;
	*n = 0;
	for (;;) {
		const uint8_t *h = base + off;
		char name[1024 + 2];
		uint64_t sum_stored, size;
		unsigned sum = 0;
		size_t nlen, plen;
		bool dir, skip;
		uint8_t type;

		if (len - off < BLOCK) {
			rc = art_error_set(AF_ECORRUPT, "tar: truncated archive (no end marker)");
			goto fail;
		}
		if (all_zero(h, BLOCK)) {
			if (len - off < 2 * BLOCK || !all_zero(h + BLOCK, BLOCK)) {
				rc = art_error_set(AF_ECORRUPT, "tar: truncated or malformed end of "
						   "archive");
				goto fail;
			}
			if (!all_zero(h + 2 * BLOCK, len - off - 2 * BLOCK)) {
				rc = art_error_set(AF_ECORRUPT, "tar: data after the end of the archive");
				goto fail;
			}
			if (pending) {
				rc = art_error_set(AF_ECORRUPT, "tar: an extension header at the end "
						   "describes no member");
				goto fail;
			}
			break;
		}
		for (i = 0; i < BLOCK; i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		if (!parse_octal(&sum_stored, h + 148, 8) || sum_stored != sum) {
			rc = art_error_set(AF_ECORRUPT, "tar: bad header checksum at offset %zu", off);
			goto fail;
		}
		if (!(memcmp(h + 257, "ustar", 6) == 0 && memcmp(h + 263, "00", 2) == 0) &&
		    memcmp(h + 257, "ustar  ", 8) != 0) {
			rc = art_error_set(AF_ECORRUPT, "tar: not a ustar header at offset %zu", off);
			goto fail;
		}
		type = h[156];
		if (!parse_octal(&size, h + 124, 12)) {
			rc = art_error_set(AF_ECORRUPT, "tar: malformed size at offset %zu", off);
			goto fail;
		}
		if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
			/* An extension header: its data describes the next member. */
			size_t pad = (size_t)((BLOCK - size % BLOCK) % BLOCK);

			if (size > PAX_MAX || size > len - off - BLOCK ||
			    pad > len - off - BLOCK - (size_t)size) {
				rc = art_error_set(AF_ECORRUPT, "tar: extension header at offset %zu "
						   "is truncated or over %u bytes", off, PAX_MAX);
				goto fail;
			}
			if (!all_zero(h + BLOCK + size, pad)) {
				rc = art_error_set(AF_ECORRUPT, "tar: extension header at offset %zu "
						   "is followed by non-zero padding", off);
				goto fail;
			}
			if (type == 'x' || type == 'g') {
				rc = pax_parse(h + BLOCK, (size_t)size, &pending_path,
					       &pending_size_set, &pending_size, type == 'g');
				if (rc < 0)
					goto fail;
				pending |= type == 'x';
			} else if (type == 'L') {
				size_t l = strnlen((const char *)h + BLOCK, (size_t)size);

				if (l == 0 || l > 1000) {
					rc = art_error_set(AF_ECORRUPT, "tar: bad GNU long name");
					goto fail;
				}
				free(pending_path);
				if (!(pending_path = strndup((const char *)h + BLOCK, l))) {
					rc = art_error_set(AF_ENOMEM, "out of memory reading an archive");
					goto fail;
				}
				pending = true;
			} else {
				pending = true; /* 'K': a long link name; the member it
						   introduces is a link, refused below */
			}
			off += BLOCK + (size_t)size + pad;
			continue;
		}
		nlen = strnlen((const char *)h, 100);
		plen = h[257 + 5] == '\0' ? strnlen((const char *)h + 345, 155) : 0;
		if (pending_path)
			snprintf(name, sizeof(name), "%s", pending_path);
		else if (plen)
			snprintf(name, sizeof(name), "%.*s/%.*s", (int)plen, (const char *)h + 345,
				 (int)nlen, (const char *)h);
		else
			snprintf(name, sizeof(name), "%.*s", (int)nlen, (const char *)h);
		if (pending_size_set)
			size = pending_size;
		free(pending_path);
		pending_path = NULL;
		pending = pending_size_set = false;
		for (i = 0; name[i]; i++)
			if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e) {
				rc = art_error_set(AF_ECORRUPT, "tar: a member name at offset %zu has "
						   "control or non-ASCII characters", off);
				goto fail;
			}
		if (type != '0' && type != '\0' && type != '5') {
			rc = art_error_set(AF_ECORRUPT, "tar: '%.120s' is %s; only regular files and "
					   "directories are accepted", name, type_name(type));
			goto fail;
		}
		dir = type == '5';
		if (dir && size != 0) {
			rc = art_error_set(AF_ECORRUPT, "tar: '%.120s' has a malformed size", name);
			goto fail;
		}
		if (size > len - off - BLOCK) {
			rc = art_error_set(AF_ECORRUPT, "tar: truncated archive ('%.120s' needs %llu "
					   "bytes)", name, (unsigned long long)size);
			goto fail;
		}
		/* Every byte of the archive must count: padding after a member is
		 * zero, so a flipped byte can never hide there. */
		{
			size_t pad = (size_t)((BLOCK - size % BLOCK) % BLOCK);

			if (pad > len - off - BLOCK - (size_t)size) {
				rc = art_error_set(AF_ECORRUPT, "tar: truncated archive ('%.120s')", name);
				goto fail;
			}
			if (!all_zero(h + BLOCK + size, pad)) {
				rc = art_error_set(AF_ECORRUPT, "tar: '%.120s' is followed by non-zero "
						   "padding", name);
				goto fail;
			}
		}
		if ((rc = check_path(name, dir, &skip)) < 0)
			goto fail;
		if (!skip) {
			if (count == max_entries) {
				rc = art_error_set(AF_ETOOBIG, "tar: more than %zu entries", max_entries);
				goto fail;
			}
			if (count == cap) {
				cap = cap ? cap * 2 : 64;
				if (!(grown = realloc(list, cap * sizeof(*list)))) {
					rc = art_error_set(AF_ENOMEM, "out of memory reading an archive");
					goto fail;
				}
				list = grown;
			}
			if (dir && name[strlen(name) - 1] != '/' && strlen(name) + 1 < sizeof(name)) {
				size_t end = strlen(name);

				name[end] = '/';
				name[end + 1] = '\0';
			}
			list[count].path = strdup(name);
			list[count].data = h + BLOCK;
			list[count].size = (size_t)size;
			list[count].type = dir ? '5' : '0';
			if (!list[count].path) {
				rc = art_error_set(AF_ENOMEM, "out of memory reading an archive");
				goto fail;
			}
			count++;
		}
		off += BLOCK + (size_t)((size + BLOCK - 1) / BLOCK * BLOCK);
		if (off > len) {
			rc = art_error_set(AF_ECORRUPT, "tar: truncated archive");
			goto fail;
		}
	}
	/* Duplicates, found on a sorted copy so the archive order is kept. */
	if (count > 1) {
		if (!(sorted = malloc(count * sizeof(*sorted)))) {
			rc = art_error_set(AF_ENOMEM, "out of memory reading an archive");
			goto fail;
		}
		memcpy(sorted, list, count * sizeof(*sorted));
		qsort(sorted, count, sizeof(*sorted), cmp_tar_path);
		for (i = 1; i < count; i++)
			if (!strcmp(sorted[i - 1].path, sorted[i].path)) {
				rc = art_error_set(AF_ECORRUPT, "tar: '%.120s' appears twice",
						   sorted[i].path);
				goto fail;
			}
		free(sorted);
		sorted = NULL;
	}
	*out = list;
	*n = count;
	return 0;
fail:
	free(pending_path);
	free(sorted);
	art_bundle_tar_free(list, count);
	return rc;
}

void art_bundle_tar_free(art_tar_entry *entries, size_t n)
{
	size_t i;

	for (i = 0; entries && i < n; i++)
		free(entries[i].path);
	free(entries);
}

/* ---- JSON helpers -------------------------------------------------------- */

static int set(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *descriptor(const char *media_type, const char *digest, uint64_t size,
			  const char *title)
{
	json_t *d = json_object(), *ann;

	if (!d || set(d, "mediaType", json_string(media_type)) ||
	    set(d, "digest", json_string(digest)) || set(d, "size", json_integer((json_int_t)size)) ||
	    (title && (set(d, "annotations", ann = json_object()) ||
		       set(ann, ART_OCI_TITLE_ANNOTATION, json_string(title))))) {
		json_decref(d);
		return NULL;
	}
	return d;
}

static char *canonical(json_t *root)
{
	return json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
}

/* ---- export -------------------------------------------------------------- */

typedef struct out_entry {
	char path[128];
	char type;
	uint8_t *owned;           /* JSON documents, manifests, envelopes */
	size_t size;
	char hex[ART_SHA256_HEX_LEN + 1]; /* parts: read from the store when written */
	bool from_store;
	bool signature;           /* under SIG_DIR: detachable */
} out_entry;

typedef struct out_list {
	out_entry *items;
	size_t n, cap;
} out_list;

static out_entry *out_find(out_list *l, const char *path)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].path, path))
			return &l->items[i];
	return NULL;
}

/* Add an entry; owned data is taken (freed on failure or if a duplicate). */
static int out_add(out_list *l, const char *path, char type, uint8_t *owned, size_t size,
		   const char *hex)
{
	out_entry *e, *grown;

	if (out_find(l, path)) {
		free(owned);
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;

		if (!(grown = realloc(l->items, cap * sizeof(*grown)))) {
			free(owned);
			return art_error_set(AF_ENOMEM, "out of memory exporting");
		}
		l->items = grown;
		l->cap = cap;
	}
	e = &l->items[l->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->type = type;
	e->owned = owned;
	e->size = size;
	e->signature = !strncmp(path, SIG_DIR, strlen(SIG_DIR));
	if (hex) {
		memcpy(e->hex, hex, sizeof(e->hex));
		e->from_store = true;
	}
	return 0;
}

/* A blob made of bytes we hold: returns its "sha256:<hex>" in digest. */
static int out_add_blob(out_list *l, const void *data, size_t len,
			char digest[ART_DIGEST_STR_LEN + 1])
{
	char path[96];
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return art_error_set(AF_ENOMEM, "out of memory exporting");
	memcpy(copy, data, len);
	art_manifest_digest(digest, data, len);
	snprintf(path, sizeof(path), BLOB_DIR "%s", digest + 7);
	return out_add(l, path, '0', copy, len, NULL);
}

static void out_free(out_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->items[i].owned);
	free(l->items);
}

static int cmp_out(const void *x, const void *y)
{
	return strcmp(((const out_entry *)x)->path, ((const out_entry *)y)->path);
}

/* A detached signature entry SIG_DIR<hex><suffix>, bytes copied. */
static int out_add_signature(out_list *l, const char *oci_digest, const char *suffix,
			     const void *data, size_t len)
{
	char path[128];
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return art_error_set(AF_ENOMEM, "out of memory exporting");
	memcpy(copy, data, len);
	snprintf(path, sizeof(path), SIG_DIR "%s%s", oci_digest + 7, suffix);
	return out_add(l, path, '0', copy, len, NULL);
}

/*
 * Add one artifact's blobs; append its index descriptor to manifests. The
 * OCI manifest names only reproducible bytes (the agentfactory manifest and
 * the parts); the builder envelope and the provenance attestation, which
 * RSA-PSS randomises, go beside it as detached signature entries named
 * after the OCI manifest's digest (the cosign model).
 */
static int export_artifact(out_list *l, json_t *manifests, const art_store *s,
			   const art_store_record *rec)
{
	char config[ART_DIGEST_STR_LEN + 1], ocid[ART_DIGEST_STR_LEN + 1], ref[256], path[96];
	char *attestation = NULL;
	size_t attestation_len = 0;
	json_t *oci = NULL, *layers, *ann, *desc;
	art_manifest *m = NULL;
	char *text = NULL;
	size_t i;
	int rc;

	snprintf(ref, sizeof(ref), "%s@%s", rec->name, rec->version);
	if ((rc = art_manifest_parse(&m, rec->manifest, rec->manifest_len)) < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		rc = art_error_set(rc, "%s: %s", ref, msg);
		goto cleanup;
	}
	if ((rc = out_add_blob(l, rec->manifest, rec->manifest_len, config)) < 0)
		goto cleanup;
	oci = json_object();
	rc = AF_ENOMEM;
	if (!oci || set(oci, "schemaVersion", json_integer(2)) ||
	    set(oci, "mediaType", json_string(ART_MEDIA_OCI_MANIFEST)) ||
	    set(oci, "artifactType", json_string(ART_MEDIA_ARTIFACT)) ||
	    set(oci, "config", descriptor(ART_MANIFEST_PAYLOAD_TYPE, config, rec->manifest_len,
					  NULL)) ||
	    set(oci, "layers", layers = json_array()) ||
	    set(oci, "annotations", ann = json_object()) ||
	    set(ann, ART_OCI_REF_ANNOTATION, json_string(ref)))
		goto oom;
	for (i = 0; i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];

		if (json_array_append_new(layers, descriptor(p->media_type, p->digest, p->size,
							     p->name)))
			goto oom;
		snprintf(path, sizeof(path), BLOB_DIR "%s", p->digest + 7);
		if ((rc = out_add(l, path, '0', NULL, (size_t)p->size, p->digest + 7)) < 0)
			goto cleanup;
	}
	if (!(text = canonical(oci)))
		goto oom;
	if ((rc = out_add_blob(l, text, strlen(text), ocid)) < 0 ||
	    (rc = out_add_signature(l, ocid, SIG_MANIFEST, rec->envelope, rec->envelope_len)) < 0)
		goto cleanup;
	rc = art_store_get_attestation(&attestation, &attestation_len, s, rec->name, rec->version);
	if (rc == AF_ENOTFOUND) {
		art_error_clear(); /* built before attestations: exported without one */
	} else if (rc < 0 || (rc = out_add_signature(l, ocid, SIG_PROVENANCE, attestation,
						       attestation_len)) < 0) {
		goto cleanup;
	}
	desc = descriptor(ART_MEDIA_OCI_MANIFEST, ocid, strlen(text), NULL);
	if (!desc || set(desc, "artifactType", json_string(ART_MEDIA_ARTIFACT)) ||
	    set(desc, "annotations", ann = json_object()) ||
	    set(ann, ART_OCI_REF_ANNOTATION, json_string(ref))) {
		json_decref(desc);
		goto oom;
	}
	if (json_array_append_new(manifests, desc)) /* takes desc even on failure */
		goto oom;
	rc = 0;
	goto cleanup;
oom:
	rc = art_error_set(AF_ENOMEM, "out of memory exporting %s", ref);
cleanup:
	free(attestation);
	free(text);
	json_decref(oci);
	art_manifest_free(m);
	return rc;
}

/* The (name, version) pairs to export, as "name@version" strings, unique. */
static int select_refs(char ***out, size_t *n_out, const art_store *s,
		       const char *const *refs, size_t n_refs)
{
	art_store_entry *all = NULL;
	size_t n_all = 0, i, j, count = 0;
	char **list = NULL;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (n_refs == 0) {
		if ((rc = art_store_list(&all, &n_all, s)) < 0)
			return rc;
		if (n_all == 0) {
			art_store_list_free(all, n_all);
			return art_error_set(AF_EINVAL, "the store %s holds no artifacts to export",
					     art_store_path(s));
		}
	}
	if (!(list = calloc(n_refs ? n_refs : n_all, sizeof(*list)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory exporting");
		goto cleanup;
	}
	for (i = 0; i < (n_refs ? n_refs : n_all); i++) {
		char *ref = NULL;

		if (n_refs) {
			char name[128];
			const char *at = strchr(refs[i], '@');
			art_store_record *rec = NULL;

			snprintf(name, sizeof(name), "%.*s",
				 (int)(at ? (size_t)(at - refs[i]) : strlen(refs[i])), refs[i]);
			if ((rc = art_store_get_artifact(&rec, s, name, at ? at + 1 : NULL)) < 0)
				goto cleanup;
			rc = asprintf(&ref, "%s@%s", rec->name, rec->version) < 0 ? AF_ENOMEM : 0;
			art_store_record_free(rec);
		} else {
			rc = asprintf(&ref, "%s@%s", all[i].name, all[i].version) < 0 ? AF_ENOMEM : 0;
		}
		if (rc < 0) {
			rc = art_error_set(AF_ENOMEM, "out of memory exporting");
			goto cleanup;
		}
		for (j = 0; j < count; j++)
			if (!strcmp(list[j], ref))
				break;
		if (j < count)
			free(ref);
		else
			list[count++] = ref;
	}
	*out = list;
	*n_out = count;
	list = NULL;
cleanup:
	for (i = 0; list && i < count; i++)
		free(list[i]);
	free(list);
	art_store_list_free(all, n_all);
	return rc;
}

/* which: 0 everything, 1 all but signatures, 2 signatures only */
static int write_bundle(FILE *f, const art_store *s, out_list *l, art_bundle_stats *st, int which)
{
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++) {
		out_entry *e = &l->items[i];
		uint8_t *data = NULL;
		size_t len = 0;

		if ((which == 1 && e->signature) || (which == 2 && !e->signature))
			continue;
		if (e->from_store) {
			if ((rc = art_store_get_blob(&data, &len, s, e->hex)) < 0)
				return rc;
			if (len != e->size) {
				free(data);
				return art_error_set(AF_ECORRUPT, "blob %.16s... is %zu bytes, its "
						     "manifest says %zu", e->hex, len, e->size);
			}
			rc = tar_write_entry(f, e->path, '0', data, len);
			free(data);
		} else {
			rc = tar_write_entry(f, e->path, e->type, e->owned, e->size);
		}
		if (rc < 0)
			return rc;
		if (!strncmp(e->path, BLOB_DIR, strlen(BLOB_DIR)) && e->path[strlen(BLOB_DIR)])
			st->blobs++;
	}
	return tar_write_end(f);
}

/* Write the entries of l selected by which (see write_bundle) to path, atomically. */
static int write_tar_file(const char *path, const art_store *s, out_list *l,
			  art_bundle_stats *st, int which, uint64_t *bytes)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int rc, fd;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return art_error_set(AF_ENOMEM, "out of memory exporting");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "wb"))) {
		rc = art_error_set(AF_EIO, "cannot create %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto cleanup;
	}
	if ((rc = write_bundle(f, s, l, st, which)) < 0)
		goto cleanup;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	*bytes = (uint64_t)ftell(f);
	if (fclose(f) != 0) {
		f = NULL;
		rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		rc = art_error_set(AF_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto cleanup;
	}
	free(tmp);
	return 0;
cleanup:
	if (f)
		fclose(f);
	unlink(tmp);
	free(tmp);
	return rc;
}

int art_bundle_export(art_bundle_stats *stats, const art_store *s, const char *path,
		      const char *const *refs, size_t n_refs)
{
	return art_bundle_export_ex(stats, s, path, NULL, refs, n_refs);
}

int art_bundle_export_ex(art_bundle_stats *stats, const art_store *s, const char *path,
			 const char *signatures_path, const char *const *refs, size_t n_refs)
{
	art_bundle_stats st;
	out_list l = {NULL, 0, 0};
	char **selected = NULL, *index_text = NULL;
	size_t n_selected = 0, i;
	json_t *index = NULL, *manifests;
	uint64_t sig_bytes = 0;
	int rc;

	memset(&st, 0, sizeof(st));
	if (stats)
		*stats = st;
	if (signatures_path && !strcmp(signatures_path, path))
		return art_error_set(AF_EINVAL, "the signatures file must not be the bundle itself");
	if ((rc = select_refs(&selected, &n_selected, s, refs, n_refs)) < 0)
		goto cleanup;
	index = json_object();
	if (!index || set(index, "schemaVersion", json_integer(2)) ||
	    set(index, "mediaType", json_string(ART_MEDIA_OCI_INDEX)) ||
	    set(index, "manifests", manifests = json_array())) {
		rc = art_error_set(AF_ENOMEM, "out of memory exporting");
		goto cleanup;
	}
	for (i = 0; i < n_selected; i++) {
		art_store_record *rec = NULL;
		char *at = strchr(selected[i], '@');

		*at = '\0';
		rc = art_store_get_artifact(&rec, s, selected[i], at + 1);
		*at = '@';
		if (rc < 0 || (rc = export_artifact(&l, manifests, s, rec)) < 0) {
			art_store_record_free(rec);
			goto cleanup;
		}
		art_store_record_free(rec);
		st.artifacts++;
	}
	if (!(index_text = canonical(index))) {
		rc = art_error_set(AF_ENOMEM, "out of memory exporting");
		goto cleanup;
	}
	/* index.json names every OCI manifest, which name every blob: its
	 * digest is the digest of the bundle's whole content (no signature). */
	art_manifest_digest(st.content_digest, index_text, strlen(index_text));
	if ((rc = out_add(&l, "blobs/", '5', NULL, 0, NULL)) < 0 ||
	    (rc = out_add(&l, BLOB_DIR, '5', NULL, 0, NULL)) < 0 ||
	    (rc = out_add(&l, SIG_DIR, '5', NULL, 0, NULL)) < 0 ||
	    (rc = out_add(&l, "index.json", '0', (uint8_t *)index_text, strlen(index_text),
			  NULL)) < 0)
		goto cleanup;
	index_text = NULL;
	{
		char *layout = strdup(OCI_LAYOUT);

		if (!layout || (rc = out_add(&l, "oci-layout", '0', (uint8_t *)layout,
					     strlen(OCI_LAYOUT), NULL)) < 0) {
			if (!layout)
				rc = art_error_set(AF_ENOMEM, "out of memory exporting");
			goto cleanup;
		}
	}
	if (l.n > 1)
		qsort(l.items, l.n, sizeof(*l.items), cmp_out);
	if (signatures_path) {
		art_bundle_stats ignored;

		memset(&ignored, 0, sizeof(ignored));
		if ((rc = write_tar_file(path, s, &l, &st, 1, &st.bytes)) < 0 ||
		    (rc = write_tar_file(signatures_path, s, &l, &ignored, 2, &sig_bytes)) < 0)
			goto cleanup;
	} else if ((rc = write_tar_file(path, s, &l, &st, 0, &st.bytes)) < 0) {
		goto cleanup;
	}
	if (stats)
		*stats = st;
	rc = 0;
cleanup:
	free(index_text);
	json_decref(index);
	for (i = 0; i < n_selected; i++)
		free(selected[i]);
	free(selected);
	out_free(&l);
	return rc;
}

/* ---- import -------------------------------------------------------------- */

typedef struct in_blob {
	const char *hex;
	const uint8_t *data;
	size_t size;
} in_blob;

typedef struct in_artifact {
	char ref[256];
	art_manifest *manifest;
	const char *envelope; /* points into the archive */
	size_t envelope_len;
	const char *attestation; /* provenance attestation, or NULL; into the archive */
	size_t attestation_len;
	const uint8_t **parts; /* per manifest part, into the archive */
} in_artifact;

typedef struct importer {
	const char *name;
	art_tar_entry *entries;
	size_t n_entries;
	in_blob *blobs;
	size_t n_blobs;
	in_artifact *arts;
	size_t n_arts;
} importer;

static int cmp_in_blob(const void *x, const void *y)
{
	return strcmp(((const in_blob *)x)->hex, ((const in_blob *)y)->hex);
}

static const in_blob *blob_find(const importer *im, const char *digest)
{
	in_blob key;

	if (!digest || strncmp(digest, ART_DIGEST_PREFIX, 7) != 0 || strlen(digest) != 71)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.hex = digest + 7;
	return im->n_blobs ? bsearch(&key, im->blobs, im->n_blobs, sizeof(*im->blobs), cmp_in_blob)
			   : NULL;
}

static const art_tar_entry *entry_find(const importer *im, const char *path)
{
	size_t i;

	for (i = 0; i < im->n_entries; i++)
		if (!strcmp(im->entries[i].path, path))
			return &im->entries[i];
	return NULL;
}

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < ART_SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[ART_SHA256_HEX_LEN] == '\0';
}

/* Only the layout's own paths; every blob hashes to its name. */
static int check_layout(importer *im)
{
	char got[ART_SHA256_HEX_LEN + 1];
	size_t i;

	if (!(im->blobs = calloc(im->n_entries ? im->n_entries : 1, sizeof(*im->blobs))))
		return art_error_set(AF_ENOMEM, "out of memory importing");
	for (i = 0; i < im->n_entries; i++) {
		const art_tar_entry *e = &im->entries[i];

		if (e->type == '5') {
			if (strcmp(e->path, "blobs/") && strcmp(e->path, BLOB_DIR) &&
			    strcmp(e->path, SIG_DIR))
				return art_error_set(AF_ECORRUPT, "unexpected directory '%.120s' in "
						     "the bundle", e->path);
			continue;
		}
		if (!strcmp(e->path, "oci-layout") || !strcmp(e->path, "index.json"))
			continue;
		if (!strncmp(e->path, SIG_DIR, strlen(SIG_DIR))) {
			const char *rest = e->path + strlen(SIG_DIR);

			if (strlen(rest) <= ART_SHA256_HEX_LEN ||
			    (strcmp(rest + ART_SHA256_HEX_LEN, SIG_MANIFEST) &&
			     strcmp(rest + ART_SHA256_HEX_LEN, SIG_PROVENANCE)) ||
			    strspn(rest, "0123456789abcdef") != ART_SHA256_HEX_LEN)
				return art_error_set(AF_ECORRUPT, "unexpected entry '%.120s' in the "
						     "bundle (signatures/<hex>%s or %s)", e->path,
						     SIG_MANIFEST, SIG_PROVENANCE);
			if (e->size > ART_SIG_ENVELOPE_MAX)
				return art_error_set(AF_ETOOBIG, "'%.120s' is over %u bytes", e->path,
						     ART_SIG_ENVELOPE_MAX);
			continue;
		}
		if (strncmp(e->path, BLOB_DIR, strlen(BLOB_DIR)) ||
		    !is_hex64(e->path + strlen(BLOB_DIR)))
			return art_error_set(AF_ECORRUPT, "unexpected entry '%.120s' in the bundle "
					     "(only oci-layout, index.json, blobs/sha256/<hex> and "
					     "signatures/)", e->path);
		if (e->size > ART_BLOB_MAX)
			return art_error_set(AF_ETOOBIG, "blob %.16s... is over the size limit",
					     e->path + strlen(BLOB_DIR));
		art_sha256_hex(e->data, e->size, got);
		if (strcmp(got, e->path + strlen(BLOB_DIR)) != 0)
			return art_error_set(AF_ECORRUPT, "blob %.16s... does not match its name "
					     "(its content hashes to %.16s...): the bundle was "
					     "altered", e->path + strlen(BLOB_DIR), got);
		im->blobs[im->n_blobs].hex = e->path + strlen(BLOB_DIR);
		im->blobs[im->n_blobs].data = e->data;
		im->blobs[im->n_blobs++].size = e->size;
	}
	if (im->n_blobs > 1)
		qsort(im->blobs, im->n_blobs, sizeof(*im->blobs), cmp_in_blob);
	return 0;
}

static int load_json(json_t **out, const void *data, size_t len, size_t max, const char *what)
{
	json_error_t jerr;
	json_t *root;

	*out = NULL;
	if (len > max)
		return art_error_set(AF_ETOOBIG, "%s is over %zu bytes", what, max);
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return art_error_set(AF_ECORRUPT, "%s is not a JSON object%s%s", what,
				     root ? "" : ": ", root ? "" : jerr.text);
	}
	*out = root;
	return 0;
}

static const char *str_at(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* A descriptor {mediaType, digest, size}: the blob it points at, checked. */
static int descriptor_blob(const in_blob **out, const importer *im, json_t *d,
			   const char *media_type, const char *what)
{
	const char *mt = str_at(d, "mediaType"), *digest = str_at(d, "digest");
	json_t *size = json_object_get(d, "size");
	const in_blob *b;

	*out = NULL;
	if (!json_is_object(d) || !mt || !digest || !json_is_integer(size))
		return art_error_set(AF_ECORRUPT, "%s: malformed descriptor", what);
	if (media_type && strcmp(mt, media_type) != 0)
		return art_error_set(AF_ECORRUPT, "%s: media type '%.80s', want %s", what, mt,
				     media_type);
	if (!(b = blob_find(im, digest)))
		return art_error_set(AF_ECORRUPT, "%s: blob %.23s... is not in the bundle", what,
				     digest);
	if (json_integer_value(size) < 0 || (uint64_t)json_integer_value(size) != b->size)
		return art_error_set(AF_ECORRUPT, "%s: size %lld, the blob has %zu bytes", what,
				     (long long)json_integer_value(size), b->size);
	*out = b;
	return 0;
}

/* Verify one index entry completely; fill a. Messages name the artifact. */
/* The detached signature entry of the OCI manifest oci_digest, or NULL. */
static const art_tar_entry *signature_entry(const importer *im, const char *oci_digest,
					    const char *suffix)
{
	char path[128];

	snprintf(path, sizeof(path), SIG_DIR "%.64s%s", oci_digest + 7, suffix);
	return entry_find(im, path);
}

static int verify_entry(importer *im, in_artifact *a, json_t *desc, const char *outer_ref,
			const art_keyring *kr, time_t now)
{
	const char *ref = str_at(json_object_get(desc, "annotations"), ART_OCI_REF_ANNOTATION);
	const in_blob *oci_blob, *config, *envelope = NULL, *b;
	const art_tar_entry *detached = NULL, *attestation = NULL;
	const char *env_data;
	size_t env_len, n_dsse = 0;
	json_t *oci = NULL, *layers, *layer;
	char signed_ref[256];
	art_manifest *m = NULL;
	size_t i, j;
	int rc;

	if (!ref)
		ref = outer_ref; /* a nested index annotated on its parent's descriptor */
	snprintf(a->ref, sizeof(a->ref), "%.200s", ref ? ref : "(unnamed)");
	for (i = 0; a->ref[i]; i++) /* untrusted: keep messages printable */
		if ((unsigned char)a->ref[i] < 0x20 || (unsigned char)a->ref[i] > 0x7e)
			a->ref[i] = '?';
	if (!ref) {
		rc = art_error_set(AF_ECORRUPT, "an index entry has no %s annotation",
				   ART_OCI_REF_ANNOTATION);
		goto cleanup;
	}
	if ((rc = descriptor_blob(&oci_blob, im, desc, ART_MEDIA_OCI_MANIFEST, "index entry")) < 0)
		goto cleanup;
	if ((rc = load_json(&oci, oci_blob->data, oci_blob->size, ART_BUNDLE_OCI_MANIFEST_MAX,
			    "the OCI manifest")) < 0)
		goto cleanup;
	if (json_integer_value(json_object_get(oci, "schemaVersion")) != 2 ||
	    !str_at(oci, "mediaType") || strcmp(str_at(oci, "mediaType"), ART_MEDIA_OCI_MANIFEST) ||
	    !str_at(oci, "artifactType") || strcmp(str_at(oci, "artifactType"), ART_MEDIA_ARTIFACT)) {
		rc = art_error_set(AF_ECORRUPT, "not an agentfactory artifact manifest (schemaVersion, "
				   "mediaType or artifactType)");
		goto cleanup;
	}
	if ((rc = descriptor_blob(&config, im, json_object_get(oci, "config"),
				  ART_MANIFEST_PAYLOAD_TYPE, "config")) < 0)
		goto cleanup;
	layers = json_object_get(oci, "layers");
	if (!json_is_array(layers) || json_array_size(layers) > ART_MANIFEST_MAX_PARTS + 1) {
		rc = art_error_set(AF_ECORRUPT, "malformed layers");
		goto cleanup;
	}
	json_array_foreach(layers, i, layer) {
		if (str_at(layer, "mediaType") && !strcmp(str_at(layer, "mediaType"), ART_MEDIA_DSSE)) {
			if (envelope) {
				rc = art_error_set(AF_ECORRUPT, "more than one signature envelope");
				goto cleanup;
			}
			if ((rc = descriptor_blob(&envelope, im, layer, ART_MEDIA_DSSE,
						  "envelope")) < 0)
				goto cleanup;
			n_dsse++;
		}
	}
	/* The builder envelope: detached (this layout) or a layer (the first one). */
	detached = signature_entry(im, str_at(desc, "digest"), SIG_MANIFEST);
	if (envelope && detached) {
		rc = art_error_set(AF_ECORRUPT, "two builder signature envelopes (a layer and a "
				   "detached one)");
		goto cleanup;
	}
	if (!envelope && !detached) {
		rc = art_error_set(AF_ESIGNATURE, "no builder signature envelope (%s%.16s...%s is "
				   "missing: a bundle exported with detached signatures needs "
				   "its signatures file)", SIG_DIR, str_at(desc, "digest") + 7,
				   SIG_MANIFEST);
		goto cleanup;
	}
	env_data = envelope ? (const char *)envelope->data : (const char *)detached->data;
	env_len = envelope ? envelope->size : detached->size;
	/* Nothing in the manifest is read before its signature verified. */
	rc = art_manifest_verify_signed(&m, NULL, kr, config->data, config->size, env_data,
					env_len, now);
	if (rc < 0)
		goto cleanup;
	snprintf(signed_ref, sizeof(signed_ref), "%s@%s", m->name, m->version);
	if (strcmp(signed_ref, ref) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "the bundle names it %s but its signed manifest "
				   "is %s", ref, signed_ref);
		goto cleanup;
	}
	if (json_array_size(layers) != m->n_parts + n_dsse) {
		rc = art_error_set(AF_ECORRUPT, "%zu layers for %zu parts",
				   json_array_size(layers) - n_dsse, m->n_parts);
		goto cleanup;
	}
	if (!(a->parts = calloc(m->n_parts ? m->n_parts : 1, sizeof(*a->parts)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory importing");
		goto cleanup;
	}
	json_array_foreach(layers, i, layer) {
		const char *title = str_at(json_object_get(layer, "annotations"),
					   ART_OCI_TITLE_ANNOTATION);
		const art_manifest_part *p = art_manifest_part_get(m, title);

		if (str_at(layer, "mediaType") && !strcmp(str_at(layer, "mediaType"), ART_MEDIA_DSSE))
			continue;
		if (!p) {
			rc = art_error_set(AF_ECORRUPT, "layer '%.60s' is not a part of the signed "
					   "manifest", title ? title : "(untitled)");
			goto cleanup;
		}
		j = (size_t)(p - m->parts);
		if (a->parts[j]) {
			rc = art_error_set(AF_ECORRUPT, "part '%s' appears twice", p->name);
			goto cleanup;
		}
		if ((rc = descriptor_blob(&b, im, layer, p->media_type, p->name)) < 0)
			goto cleanup;
		if (strcmp(str_at(layer, "digest"), p->digest) != 0) {
			rc = art_error_set(AF_ESIGNATURE, "layer '%s' is not the signed part (digest "
					   "%.23s..., signed %.23s...)", p->name,
					   str_at(layer, "digest"), p->digest);
			goto cleanup;
		}
		if ((rc = art_manifest_check_part(p, b->data, b->size)) < 0)
			goto cleanup;
		a->parts[j] = b->data;
	}
	for (j = 0; j < m->n_parts; j++)
		if (!a->parts[j]) {
			rc = art_error_set(AF_ECORRUPT, "part '%s' is missing", m->parts[j].name);
			goto cleanup;
		}
	/* The provenance attestation, when there is one: signed by a builder,
	 * about exactly these parts, the statement the manifest covers. */
	attestation = signature_entry(im, str_at(desc, "digest"), SIG_PROVENANCE);
	if (attestation) {
		rc = art_attest_verify_provenance(NULL, NULL, NULL, kr, m,
						  (const char *)attestation->data,
						  attestation->size, now);
		if (rc < 0)
			goto cleanup;
		a->attestation = (const char *)attestation->data;
		a->attestation_len = attestation->size;
	}
	a->manifest = m;
	m = NULL;
	a->envelope = env_data;
	a->envelope_len = env_len;
	rc = 0;
cleanup:
	art_manifest_free(m);
	json_decref(oci);
	return rc;
}

#define MAX_INDEX_DEPTH 4

/*
 * Append [descriptor, ref-or-null] for every image manifest below manifests,
 * following nested image indexes (as registries and tools write them) up to
 * MAX_INDEX_DEPTH levels. A nested index with exactly one manifest passes
 * its own ref annotation down.
 */
static int flatten_index(const importer *im, json_t *manifests, const char *ref,
			 unsigned depth, json_t *flat)
{
	json_t *desc, *nested = NULL;
	size_t i;
	int rc;

	if (!json_is_array(manifests))
		return art_error_set(AF_ECORRUPT, "an index has no manifests array");
	json_array_foreach(manifests, i, desc) {
		const char *mt = str_at(desc, "mediaType");
		const char *own = str_at(json_object_get(desc, "annotations"),
					 ART_OCI_REF_ANNOTATION);
		const in_blob *b;

		if (json_array_size(flat) > MAX_ARTIFACTS)
			return art_error_set(AF_ETOOBIG, "more than %u artifacts", MAX_ARTIFACTS);
		if (mt && !strcmp(mt, ART_MEDIA_OCI_INDEX)) {
			json_t *inner;

			if (depth >= MAX_INDEX_DEPTH)
				return art_error_set(AF_ECORRUPT, "image indexes nested deeper than "
						     "%u levels", MAX_INDEX_DEPTH);
			if ((rc = descriptor_blob(&b, im, desc, ART_MEDIA_OCI_INDEX,
						  "nested index")) < 0 ||
			    (rc = load_json(&nested, b->data, b->size, ART_BUNDLE_INDEX_MAX,
					    "a nested index")) < 0)
				return rc;
			inner = json_object_get(nested, "manifests");
			rc = flatten_index(im, inner, json_array_size(inner) == 1 ? (own ? own : ref)
										: NULL,
					   depth + 1, flat);
			json_decref(nested);
			if (rc < 0)
				return rc;
			continue;
		}
		{
			json_t *pair = json_array();

			if (!pair || json_array_append(pair, desc) ||
			    json_array_append_new(pair, ref ? json_string(ref) : json_null()) ||
			    json_array_append_new(flat, pair))
				return art_error_set(AF_ENOMEM, "out of memory importing");
		}
	}
	return 0;
}

static int verify_bundle(importer *im, const art_keyring *kr, time_t now)
{
	const art_tar_entry *layout, *index_entry;
	json_t *layout_json = NULL, *index = NULL, *manifests, *desc, *pair, *flat = NULL;
	size_t i, j;
	int rc;

	if ((rc = check_layout(im)) < 0)
		return rc;
	layout = entry_find(im, "oci-layout");
	index_entry = entry_find(im, "index.json");
	if (!layout || !index_entry)
		return art_error_set(AF_ECORRUPT, "not an OCI image layout (oci-layout or "
				     "index.json missing)");
	if ((rc = load_json(&layout_json, layout->data, layout->size, 4096, "oci-layout")) < 0)
		return rc;
	if (!str_at(layout_json, "imageLayoutVersion") ||
	    strcmp(str_at(layout_json, "imageLayoutVersion"), "1.0.0") != 0) {
		rc = art_error_set(AF_EVERSION, "unsupported OCI imageLayoutVersion");
		goto cleanup;
	}
	if ((rc = load_json(&index, index_entry->data, index_entry->size, ART_BUNDLE_INDEX_MAX,
			    "index.json")) < 0)
		goto cleanup;
	manifests = json_object_get(index, "manifests");
	if (json_integer_value(json_object_get(index, "schemaVersion")) != 2 ||
	    !json_is_array(manifests) || json_array_size(manifests) == 0 ||
	    json_array_size(manifests) > MAX_ARTIFACTS) {
		rc = art_error_set(AF_ECORRUPT, "index.json: schemaVersion 2 and 1..%u manifests "
				   "required", MAX_ARTIFACTS);
		goto cleanup;
	}
	if (!(flat = json_array())) {
		rc = art_error_set(AF_ENOMEM, "out of memory importing");
		goto cleanup;
	}
	if ((rc = flatten_index(im, manifests, NULL, 0, flat)) < 0)
		goto cleanup;
	if (json_array_size(flat) == 0 || json_array_size(flat) > MAX_ARTIFACTS) {
		rc = art_error_set(AF_ECORRUPT, "index.json: 1..%u artifacts required",
				   MAX_ARTIFACTS);
		goto cleanup;
	}
	if (!(im->arts = calloc(json_array_size(flat), sizeof(*im->arts)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory importing");
		goto cleanup;
	}
	json_array_foreach(flat, i, pair) {
		in_artifact *a = &im->arts[im->n_arts++];

		desc = json_array_get(pair, 0);
		if ((rc = verify_entry(im, a, desc, json_string_value(json_array_get(pair, 1)), kr,
				       now)) < 0) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", art_error_last());
			rc = art_error_set(rc, "%s: %s", a->ref, msg);
			goto cleanup;
		}
		for (j = 0; j + 1 < im->n_arts; j++)
			if (!strcmp(im->arts[j].ref, a->ref)) {
				rc = art_error_set(AF_ECORRUPT, "%s appears twice in index.json", a->ref);
				goto cleanup;
			}
	}
	rc = 0;
cleanup:
	json_decref(flat);
	json_decref(layout_json);
	json_decref(index);
	return rc;
}

static int write_bundle_to_store(importer *im, art_store *s)
{
	art_store_txn *txn = NULL;
	size_t i, j;
	int rc;

	if ((rc = art_store_txn_begin(&txn, s)) < 0)
		return rc;
	for (i = 0; i < im->n_arts; i++) {
		in_artifact *a = &im->arts[i];

		for (j = 0; j < a->manifest->n_parts; j++)
			if ((rc = art_store_put_blob(txn, a->parts[j],
						     (size_t)a->manifest->parts[j].size, NULL)) < 0)
				goto fail;
		if ((rc = art_store_put_artifact_ex(txn, a->manifest, a->envelope, a->envelope_len,
						    a->attestation, a->attestation_len)) < 0)
			goto fail;
	}
	return art_store_txn_commit(txn);
fail:
	art_store_txn_abort(txn);
	return rc;
}

int art_bundle_import_mem(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
			  time_t now, const void *data, size_t len, const char *name)
{
	return art_bundle_import_mem_ex(stats, s, kr, now, data, len, NULL, 0, name);
}

/* Append the signatures file's entries (only signatures/ ones) to im's. */
static int merge_signatures(importer *im, const void *sigs, size_t sigs_len)
{
	art_tar_entry *extra = NULL, *all;
	size_t n_extra = 0, i, j;
	int rc;

	if (sigs_len > ART_BUNDLE_MAX)
		return art_error_set(AF_ETOOBIG, "the signatures file is over %llu bytes",
				     (unsigned long long)ART_BUNDLE_MAX);
	if ((rc = art_bundle_tar_read(&extra, &n_extra, sigs, sigs_len,
				      ART_BUNDLE_MAX_ENTRIES)) < 0)
		return rc;
	for (i = 0; i < n_extra; i++) {
		if (strncmp(extra[i].path, SIG_DIR, strlen(SIG_DIR)) != 0) {
			rc = art_error_set(AF_ECORRUPT, "the signatures file holds '%.120s' (only "
					   "signatures/ entries belong there)", extra[i].path);
			goto fail;
		}
		for (j = 0; j < im->n_entries; j++)
			if (!strcmp(im->entries[j].path, extra[i].path) &&
			    strcmp(extra[i].path, SIG_DIR) != 0) {
				rc = art_error_set(AF_ECORRUPT, "'%.120s' is both in the bundle and "
						   "in the signatures file", extra[i].path);
				goto fail;
			}
	}
	if (im->n_entries + n_extra > ART_BUNDLE_MAX_ENTRIES) {
		rc = art_error_set(AF_ETOOBIG, "more than %u entries", ART_BUNDLE_MAX_ENTRIES);
		goto fail;
	}
	if (!(all = realloc(im->entries, (im->n_entries + n_extra + 1) * sizeof(*all)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory importing");
		goto fail;
	}
	im->entries = all;
	for (i = 0; i < n_extra; i++) {
		if (!strcmp(extra[i].path, SIG_DIR) && entry_find(im, SIG_DIR)) {
			free(extra[i].path);
			continue;
		}
		im->entries[im->n_entries++] = extra[i];
	}
	free(extra); /* the paths moved into im->entries */
	return 0;
fail:
	art_bundle_tar_free(extra, n_extra);
	return rc;
}

int art_bundle_import_mem_ex(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
			     time_t now, const void *data, size_t len, const void *sigs,
			     size_t sigs_len, const char *name)
{
	importer im;
	size_t i;
	int rc;

	memset(&im, 0, sizeof(im));
	im.name = name;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (len > ART_BUNDLE_MAX) {
		rc = art_error_set(AF_ETOOBIG, "bundle %s is over %llu bytes", name,
				   (unsigned long long)ART_BUNDLE_MAX);
		goto cleanup;
	}
	if ((rc = art_bundle_tar_read(&im.entries, &im.n_entries, data, len,
				      ART_BUNDLE_MAX_ENTRIES)) < 0 ||
	    (sigs && (rc = merge_signatures(&im, sigs, sigs_len)) < 0) ||
	    (rc = verify_bundle(&im, kr, now)) < 0 || (rc = write_bundle_to_store(&im, s)) < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		rc = art_error_set(rc, "bundle %s refused: %s", name, msg);
		goto cleanup;
	}
	if (stats) {
		stats->artifacts = im.n_arts;
		stats->blobs = im.n_blobs;
		stats->bytes = len;
		for (i = 0; i < im.n_arts; i++)
			stats->attestations += im.arts[i].attestation != NULL;
	}
cleanup:
	for (i = 0; i < im.n_arts; i++) {
		art_manifest_free(im.arts[i].manifest);
		free(im.arts[i].parts);
	}
	free(im.arts);
	free(im.blobs);
	art_bundle_tar_free(im.entries, im.n_entries);
	return rc;
}

int art_bundle_import(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
		      time_t now, const char *path)
{
	return art_bundle_import_ex(stats, s, kr, now, path, NULL);
}

int art_bundle_import_ex(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
			 time_t now, const char *path, const char *signatures_path)
{
	char *data = NULL, *sigs = NULL;
	size_t len = 0, sigs_len = 0;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if ((rc = art_file_read(&data, &len, path, ART_BUNDLE_MAX)) < 0)
		return rc;
	if (signatures_path &&
	    (rc = art_file_read(&sigs, &sigs_len, signatures_path, ART_BUNDLE_MAX)) < 0) {
		free(data);
		return rc;
	}
	rc = art_bundle_import_mem_ex(stats, s, kr, now, data, len, sigs, sigs_len, path);
	free(data);
	free(sigs);
	return rc;
}
