/*
 * manifest.c - build manifests: construction, validation, canonical
 * serialization, strict parsing, SLSA provenance, signed-pair verification.
 *
 * Invariant: every art_manifest that leaves this file through art_manifest_new,
 * art_manifest_parse or art_manifest_verify_signed has valid fields and
 * sorted, unique lists, so art_manifest_serialize of it is deterministic.
 * Parts may still be missing after art_manifest_new (they are added one by
 * one); art_manifest_validate says whether the manifest is complete.
 */
#include "art/manifest.h"

#include "art/error.h"
#include "art/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_TEXT_MAX 512u   /* toolchain id, compat id */
#define FIELD_NAME_MAX 256u   /* import/export names and modules */
#define VERSION_MAX 128u
#define MEDIA_TYPE_MAX 127u

/* ---- small validators ---------------------------------------------------- */

static bool is_lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

static bool digest_valid(const char *s)
{
	return s && strncmp(s, ART_DIGEST_PREFIX, 7) == 0 && strlen(s) == ART_DIGEST_STR_LEN &&
	       is_lower_hex(s + 7, ART_SHA256_HEX_LEN);
}

static bool commit_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return (n == 40 || n == 64) && is_lower_hex(s, n);
}

/* 1..max bytes of printable ASCII; spaces allowed when with_space. */
static bool text_valid(const char *s, size_t max, bool with_space)
{
	size_t n;

	if (!s || !*s)
		return false;
	for (n = 0; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= max || c > 0x7e || c < 0x20 || (c == ' ' && !with_space))
			return false;
	}
	return true;
}

static bool target_valid(const char *s)
{
	size_t n;

	if (!s || !*s)
		return false;
	for (n = 0; s[n]; n++) {
		char c = s[n];

		if (n >= 128 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool kind_valid(const char *s)
{
	return s && (!strcmp(s, "func") || !strcmp(s, "table") || !strcmp(s, "memory") ||
		     !strcmp(s, "global") || !strcmp(s, "tag"));
}

/* ^[a-z][<more>]{0,max-1}$ */
static bool ident_valid(const char *s, size_t max, const char *more)
{
	size_t n;

	if (!s || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (n = 1; s[n]; n++) {
		char c = s[n];

		if (n >= max || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				  strchr(more, c)))
			return false;
	}
	return true;
}

bool art_manifest_name_valid(const char *s)
{
	return ident_valid(s, 63, "-");
}

static bool capability_valid(const char *s)
{
	return ident_valid(s, 64, "_.");
}

/* A DNS name in canonical form: lower case, no trailing dot. */
static bool dns_name_valid(const char *s)
{
	size_t i, n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && s[n - 1] != '-';
}

/* Dotted quad, each part 0..255 without leading zeros. */
static bool ipv4_valid(const char *s)
{
	int parts = 0;

	for (;;) {
		unsigned v = 0, digits = 0;

		while (s[digits] >= '0' && s[digits] <= '9' && digits < 4)
			v = v * 10 + (unsigned)(s[digits++] - '0');
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[0] == '0'))
			return false;
		s += digits;
		if (++parts == 4)
			return *s == '\0';
		if (*s++ != '.')
			return false;
	}
}

bool art_manifest_host_valid(const char *s)
{
	const char *last;
	size_t n, i;

	if (!s)
		return false;
	n = strlen(s);
	if (n >= 2 && s[0] == '[') {
		if (s[n - 1] != ']' || n < 4 || n > 47)
			return false;
		for (i = 1; i + 1 < n; i++)
			if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			      s[i] == ':' || s[i] == '.'))
				return false;
		return true;
	}
	if (strncmp(s, "*.", 2) == 0)
		return dns_name_valid(s + 2);
	if (ipv4_valid(s))
		return true;
	/* A name whose last label starts with a digit reads as a number to
	 * resolvers (127.1, 2130706433, 0x7f.1): only a full dotted quad may. */
	last = strrchr(s, '.');
	last = last ? last + 1 : s;
	return dns_name_valid(s) && !(*last >= '0' && *last <= '9');
}

static bool part_name_valid(const char *s)
{
	size_t n;

	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (n = 1; s[n]; n++) {
		char c = s[n];

		if (n >= ART_PART_NAME_MAX - 1 ||
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._/-", c)))
			return false;
	}
	return true;
}

/* ---- semantic versions --------------------------------------------------- */

typedef struct semver {
	uint64_t core[3];
	const char *pre; /* NULL when absent */
	size_t pre_len;
} semver;

static bool ident_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-';
}

/* Dot-separated non-empty identifiers up to the first char not in the set. */
static const char *scan_idents(const char *p, bool numeric_rules)
{
	for (;;) {
		const char *start = p;
		bool all_digits = true;

		while (ident_char(*p)) {
			if (!(*p >= '0' && *p <= '9'))
				all_digits = false;
			p++;
		}
		if (p == start)
			return NULL;
		if (numeric_rules && all_digits && p - start > 1 && *start == '0')
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

static bool semver_parse(semver *v, const char *s)
{
	const char *p = s;
	int i;

	if (!s || strlen(s) > VERSION_MAX)
		return false;
	for (i = 0; i < 3; i++) {
		uint64_t n = 0;
		const char *start = p;

		while (*p >= '0' && *p <= '9') {
			uint64_t digit = (uint64_t)(*p - '0');

			if (n > (UINT64_MAX - digit) / 10)
				return false;
			n = n * 10 + digit;
			p++;
		}
		if (p == start || (p - start > 1 && *start == '0'))
			return false;
		v->core[i] = n;
		if (i < 2 && *p++ != '.')
			return false;
	}
	v->pre = NULL;
	v->pre_len = 0;
	if (*p == '-') {
		const char *end = scan_idents(p + 1, true);

		if (!end)
			return false;
		v->pre = p + 1;
		v->pre_len = (size_t)(end - v->pre);
		p = end;
	}
	if (*p == '+') {
		p = scan_idents(p + 1, false);
		if (!p)
			return false;
	}
	return *p == '\0';
}

bool art_manifest_version_valid(const char *s)
{
	semver v;

	return semver_parse(&v, s);
}

static int cmp_pre_ident(const char *a, size_t alen, const char *b, size_t blen)
{
	bool anum = true, bnum = true;
	size_t i;
	int c;

	for (i = 0; i < alen; i++)
		anum = anum && a[i] >= '0' && a[i] <= '9';
	for (i = 0; i < blen; i++)
		bnum = bnum && b[i] >= '0' && b[i] <= '9';
	if (anum && bnum) {
		/* No leading zeros: the longer number is the larger. */
		if (alen != blen)
			return alen < blen ? -1 : 1;
		return memcmp(a, b, alen);
	}
	if (anum != bnum)
		return anum ? -1 : 1;
	c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

int art_manifest_version_cmp(const char *a, const char *b)
{
	semver va, vb;
	bool oka = semver_parse(&va, a), okb = semver_parse(&vb, b);
	const char *pa, *pb, *ea, *eb;
	int i, c;

	if (!oka || !okb)
		return oka - okb;
	for (i = 0; i < 3; i++)
		if (va.core[i] != vb.core[i])
			return va.core[i] < vb.core[i] ? -1 : 1;
	if (!va.pre || !vb.pre)
		return (va.pre ? -1 : 0) + (vb.pre ? 1 : 0);
	pa = va.pre;
	pb = vb.pre;
	ea = va.pre + va.pre_len;
	eb = vb.pre + vb.pre_len;
	for (;;) {
		const char *da = memchr(pa, '.', (size_t)(ea - pa));
		const char *db = memchr(pb, '.', (size_t)(eb - pb));
		size_t la = (size_t)((da ? da : ea) - pa), lb = (size_t)((db ? db : eb) - pb);

		if ((c = cmp_pre_ident(pa, la, pb, lb)) != 0)
			return c < 0 ? -1 : 1;
		if (!da || !db)
			return (da ? 1 : 0) - (db ? 1 : 0);
		pa = da + 1;
		pb = db + 1;
	}
}

/* ---- construction -------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int cmp_import(const void *x, const void *y)
{
	const art_manifest_import *a = x, *b = y;
	int c = strcmp(a->module, b->module);

	return c ? c : strcmp(a->name, b->name);
}

static int cmp_export(const void *x, const void *y)
{
	const art_manifest_export *a = x, *b = y;

	return strcmp(a->name, b->name);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int cmp_part(const void *x, const void *y)
{
	const art_manifest_part *a = x, *b = y;

	return strcmp(a->name, b->name);
}

static int check_info_field(bool ok, const char *field, const char *value)
{
	if (ok)
		return 0;
	return art_error_set(AF_EINVAL, "manifest: field '%s' is %s%.80s%s", field,
			     value ? "malformed: '" : "missing", value ? value : "",
			     value ? "'" : "");
}

int art_manifest_new(art_manifest **out, const art_manifest_info *info)
{
	art_manifest *m = NULL;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = check_info_field(art_manifest_name_valid(info->name), "name", info->name)) ||
	    (rc = check_info_field(art_manifest_version_valid(info->version), "version",
				   info->version)) ||
	    (rc = check_info_field(digest_valid(info->resolved_template_digest),
				   "resolved_template_digest", info->resolved_template_digest)) ||
	    (rc = check_info_field(commit_valid(info->git_commit), "git_commit",
				   info->git_commit)) ||
	    (rc = check_info_field(digest_valid(info->policy_digest), "policy_digest",
				   info->policy_digest)) ||
	    (rc = check_info_field(text_valid(info->toolchain_id, FIELD_TEXT_MAX, true),
				   "toolchain_id", info->toolchain_id)) ||
	    (rc = check_info_field(text_valid(info->native_compat_id, FIELD_TEXT_MAX, true),
				   "native_compat_id", info->native_compat_id)) ||
	    (rc = check_info_field(target_valid(info->target_triple), "target_triple",
				   info->target_triple)))
		return rc;
	if (info->guest_abi_version < 1 || info->guest_abi_version > 65535)
		return art_error_set(AF_EINVAL, "manifest: field 'guest_abi_version' must be 1..65535");
	if (info->n_imports > ART_MANIFEST_MAX_IMPORTS || info->n_exports > ART_MANIFEST_MAX_EXPORTS ||
	    info->n_capabilities > ART_MANIFEST_MAX_CAPABILITIES)
		return art_error_set(AF_EINVAL, "manifest: too many imports, exports or capabilities "
				     "(limits %u, %u, %u)", ART_MANIFEST_MAX_IMPORTS,
				     ART_MANIFEST_MAX_EXPORTS, ART_MANIFEST_MAX_CAPABILITIES);
	for (i = 0; i < info->n_imports; i++) {
		const art_manifest_import *im = &info->imports[i];

		if (!text_valid(im->module, FIELD_NAME_MAX, false) ||
		    !text_valid(im->name, FIELD_NAME_MAX, false) || !kind_valid(im->kind))
			return art_error_set(AF_EINVAL, "manifest: field 'imports[%zu]' is malformed "
					     "(module, name: printable ASCII without spaces; kind: "
					     "func, table, memory, global or tag)", i);
	}
	for (i = 0; i < info->n_exports; i++)
		if (!text_valid(info->exports[i].name, FIELD_NAME_MAX, false) ||
		    !kind_valid(info->exports[i].kind))
			return art_error_set(AF_EINVAL, "manifest: field 'exports[%zu]' is malformed", i);
	for (i = 0; i < info->n_capabilities; i++)
		if (!capability_valid(info->capabilities[i]))
			return art_error_set(AF_EINVAL, "manifest: field 'capabilities[%zu]' is "
					     "malformed: '%.80s' (want ^[a-z][a-z0-9_.]{0,63}$)", i,
					     info->capabilities[i] ? info->capabilities[i] : "(null)");
	if (info->n_hosts > ART_MANIFEST_MAX_HOSTS)
		return art_error_set(AF_EINVAL, "manifest: more than %u hosts", ART_MANIFEST_MAX_HOSTS);
	for (i = 0; i < info->n_hosts; i++)
		if (!art_manifest_host_valid(info->hosts[i]))
			return art_error_set(AF_EINVAL, "manifest: field 'hosts[%zu]' is malformed: "
					     "'%.80s' (want a lower-case DNS name, *.name, an IPv4 "
					     "address or [IPv6])", i,
					     info->hosts[i] ? info->hosts[i] : "(null)");

	rc = AF_ENOMEM;
	if (!(m = calloc(1, sizeof(*m))))
		goto cleanup;
	m->guest_abi_version = info->guest_abi_version;
	if (!(m->name = strdup(info->name)) || !(m->version = strdup(info->version)) ||
	    !(m->resolved_template_digest = strdup(info->resolved_template_digest)) ||
	    !(m->git_commit = strdup(info->git_commit)) ||
	    !(m->policy_digest = strdup(info->policy_digest)) ||
	    !(m->toolchain_id = strdup(info->toolchain_id)) ||
	    !(m->native_compat_id = strdup(info->native_compat_id)) ||
	    !(m->target_triple = strdup(info->target_triple)))
		goto cleanup;
	if (info->n_imports && !(m->imports = calloc(info->n_imports, sizeof(*m->imports))))
		goto cleanup;
	for (; m->n_imports < info->n_imports; m->n_imports++) {
		art_manifest_import *d = &m->imports[m->n_imports];
		const art_manifest_import *s = &info->imports[m->n_imports];

		d->module = strdup(s->module);
		d->name = strdup(s->name);
		d->kind = strdup(s->kind);
		if (!d->module || !d->name || !d->kind) {
			m->n_imports++;
			goto cleanup;
		}
	}
	if (info->n_exports && !(m->exports = calloc(info->n_exports, sizeof(*m->exports))))
		goto cleanup;
	for (; m->n_exports < info->n_exports; m->n_exports++) {
		art_manifest_export *d = &m->exports[m->n_exports];

		d->name = strdup(info->exports[m->n_exports].name);
		d->kind = strdup(info->exports[m->n_exports].kind);
		if (!d->name || !d->kind) {
			m->n_exports++;
			goto cleanup;
		}
	}
	if (info->n_capabilities &&
	    !(m->capabilities = calloc(info->n_capabilities, sizeof(char *))))
		goto cleanup;
	for (; m->n_capabilities < info->n_capabilities; m->n_capabilities++)
		if (!(m->capabilities[m->n_capabilities] =
			      strdup(info->capabilities[m->n_capabilities])))
			goto cleanup;
	if (m->n_imports > 1)
		qsort(m->imports, m->n_imports, sizeof(*m->imports), cmp_import);
	if (m->n_exports > 1)
		qsort(m->exports, m->n_exports, sizeof(*m->exports), cmp_export);
	if (info->n_hosts && !(m->hosts = calloc(info->n_hosts, sizeof(char *))))
		goto cleanup;
	for (; m->n_hosts < info->n_hosts; m->n_hosts++)
		if (!(m->hosts[m->n_hosts] = strdup(info->hosts[m->n_hosts])))
			goto cleanup;
	if (m->n_capabilities > 1)
		qsort(m->capabilities, m->n_capabilities, sizeof(char *), cmp_str);
	if (m->n_hosts > 1)
		qsort(m->hosts, m->n_hosts, sizeof(char *), cmp_str);
	for (i = 1; i < m->n_imports; i++)
		if (cmp_import(&m->imports[i - 1], &m->imports[i]) == 0) {
			rc = art_error_set(AF_EINVAL, "manifest: duplicate import %s.%s",
					   m->imports[i].module, m->imports[i].name);
			goto cleanup;
		}
	for (i = 1; i < m->n_exports; i++)
		if (cmp_export(&m->exports[i - 1], &m->exports[i]) == 0) {
			rc = art_error_set(AF_EINVAL, "manifest: duplicate export %s",
					   m->exports[i].name);
			goto cleanup;
		}
	for (i = 1; i < m->n_capabilities; i++)
		if (strcmp(m->capabilities[i - 1], m->capabilities[i]) == 0) {
			rc = art_error_set(AF_EINVAL, "manifest: duplicate capability %s",
					   m->capabilities[i]);
			goto cleanup;
		}
	for (i = 1; i < m->n_hosts; i++)
		if (strcmp(m->hosts[i - 1], m->hosts[i]) == 0) {
			rc = art_error_set(AF_EINVAL, "manifest: duplicate host %s", m->hosts[i]);
			goto cleanup;
		}
	*out = m;
	m = NULL;
	rc = 0;
cleanup:
	if (rc == AF_ENOMEM)
		art_error_set(AF_ENOMEM, "out of memory building a manifest");
	art_manifest_free(m);
	return rc;
}

static const char *known_media_type(const char *part_name)
{
	if (!strcmp(part_name, ART_PART_WASM))
		return ART_MEDIA_WASM;
	if (!strcmp(part_name, ART_PART_SOURCE))
		return ART_MEDIA_SOURCE;
	if (!strcmp(part_name, ART_PART_PROVENANCE))
		return ART_MEDIA_PROVENANCE;
	if (!strcmp(part_name, ART_PART_SBOM))
		return ART_MEDIA_SBOM;
	if (!strncmp(part_name, ART_PART_NATIVE_PREFIX, 7))
		return ART_MEDIA_NATIVE;
	return NULL;
}

void art_manifest_native_part_name(char out[ART_PART_NAME_MAX], const char *compat_id)
{
	char hex[ART_SHA256_HEX_LEN + 1];

	art_sha256_hex(compat_id, strlen(compat_id), hex);
	snprintf(out, ART_PART_NAME_MAX, "%s%.16s", ART_PART_NATIVE_PREFIX, hex);
}

static int add_part(art_manifest *m, const char *name, const char *media_type,
		    const char *compat_id, const char *digest_hex, uint64_t size)
{
	const char *want;
	art_manifest_part *parts, *p;

	if (!m)
		return art_error_set(AF_EINVAL, "manifest: add a part to a manifest (got NULL)");
	if (!part_name_valid(name))
		return art_error_set(AF_EINVAL, "manifest: invalid part name '%.80s'",
				     name ? name : "(null)");
	want = known_media_type(name); /* after the check: name may be NULL */
	if (!text_valid(media_type, MEDIA_TYPE_MAX, false) || (want && strcmp(want, media_type)))
		return art_error_set(AF_EINVAL, "manifest: part '%s': media type '%.80s'%s%s", name,
				     media_type ? media_type : "", want ? ", want " : " is invalid",
				     want ? want : "");
	if (!digest_hex || !is_lower_hex(digest_hex, ART_SHA256_HEX_LEN))
		return art_error_set(AF_EINVAL, "manifest: part '%s': digest must be 64 lower-case "
				     "hex digits", name);
	if (size > ART_PART_MAX_SIZE)
		return art_error_set(AF_EINVAL, "manifest: part '%s': size %llu is over the limit "
				     "(%u)", name, (unsigned long long)size, ART_PART_MAX_SIZE);
	if (art_manifest_part_get(m, name))
		return art_error_set(AF_EEXISTS, "manifest: part '%s' is already present", name);
	if (m->n_parts >= ART_MANIFEST_MAX_PARTS)
		return art_error_set(AF_ETOOBIG, "manifest: more than %u parts",
				     ART_MANIFEST_MAX_PARTS);
	parts = realloc(m->parts, (m->n_parts + 1) * sizeof(*parts));
	if (!parts)
		return art_error_set(AF_ENOMEM, "out of memory adding a part");
	m->parts = parts;
	p = &parts[m->n_parts];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	p->media_type = strdup(media_type);
	p->compat_id = dup_or_null(compat_id);
	if (!p->name || !p->media_type || (compat_id && !p->compat_id)) {
		free(p->name);
		free(p->media_type);
		free(p->compat_id);
		return art_error_set(AF_ENOMEM, "out of memory adding a part");
	}
	snprintf(p->digest, sizeof(p->digest), "%s%s", ART_DIGEST_PREFIX, digest_hex);
	p->size = size;
	m->n_parts++;
	if (m->n_parts > 1)
		qsort(m->parts, m->n_parts, sizeof(*m->parts), cmp_part);
	return 0;
}

int art_manifest_add_part(art_manifest *m, const char *name, const char *media_type,
			  const char *digest_hex, uint64_t size)
{
	/* m is NULL where a caller went on after art_manifest_new failed (out of
	 * memory): refuse it, never dereference it. */
	if (!m || !name)
		return art_error_set(AF_EINVAL, "manifest: add a part to a manifest (got NULL)");
	if (name && !strncmp(name, ART_PART_NATIVE_PREFIX, 7))
		return art_error_set(AF_EINVAL, "manifest: add native parts with "
				     "art_manifest_add_native");
	return add_part(m, name, media_type, NULL, digest_hex, size);
}

int art_manifest_add_native(art_manifest *m, const char *compat_id, const char *digest_hex,
			    uint64_t size)
{
	char name[ART_PART_NAME_MAX];

	if (!m)
		return art_error_set(AF_EINVAL, "manifest: add a part to a manifest (got NULL)");
	if (!text_valid(compat_id, FIELD_TEXT_MAX, true))
		return art_error_set(AF_EINVAL, "manifest: invalid native compatibility id");
	art_manifest_native_part_name(name, compat_id);
	return add_part(m, name, ART_MEDIA_NATIVE, compat_id, digest_hex, size);
}

const art_manifest_part *art_manifest_part_get(const art_manifest *m, const char *name)
{
	size_t i;

	for (i = 0; m && name && i < m->n_parts; i++)
		if (strcmp(m->parts[i].name, name) == 0)
			return &m->parts[i];
	return NULL;
}

int art_manifest_native_for(const art_manifest_part **out, const art_manifest *m,
			    const char *compat_id)
{
	char name[ART_PART_NAME_MAX];
	const art_manifest_part *p;

	*out = NULL;
	art_manifest_native_part_name(name, compat_id);
	p = art_manifest_part_get(m, name);
	if (!p || !p->compat_id || strcmp(p->compat_id, compat_id) != 0)
		return art_error_set(AF_EVERSION, "%s@%s has no native code for compatibility id "
				     "'%.200s' (it was built for '%.200s'); rebuild it with the "
				     "toolchain of this runtime", m->name, m->version, compat_id,
				     m->native_compat_id);
	*out = p;
	return 0;
}

/* ---- validation ---------------------------------------------------------- */

static int corrupt(const char *field, const char *what)
{
	return art_error_set(AF_ECORRUPT, "manifest: field '%s' %s", field, what);
}

int art_manifest_validate(const art_manifest *m)
{
	char field[96], native[ART_PART_NAME_MAX];
	const art_manifest_part *p;
	size_t i;

	if (!art_manifest_name_valid(m->name))
		return corrupt("name", "is missing or malformed");
	if (!art_manifest_version_valid(m->version))
		return corrupt("version", "is missing or not a semantic version");
	if (!digest_valid(m->resolved_template_digest))
		return corrupt("resolved_template_digest", "is missing or not sha256:<hex>");
	if (!commit_valid(m->git_commit))
		return corrupt("git_commit", "is missing or not 40/64 hex digits");
	if (!digest_valid(m->policy_digest))
		return corrupt("policy_digest", "is missing or not sha256:<hex>");
	if (!text_valid(m->toolchain_id, FIELD_TEXT_MAX, true))
		return corrupt("toolchain_id", "is missing or malformed");
	if (!text_valid(m->native_compat_id, FIELD_TEXT_MAX, true))
		return corrupt("native_compat_id", "is missing or malformed");
	if (!target_valid(m->target_triple))
		return corrupt("target_triple", "is missing or malformed");
	if (m->guest_abi_version < 1 || m->guest_abi_version > 65535)
		return corrupt("guest_abi_version", "must be 1..65535");
	if (m->n_imports > ART_MANIFEST_MAX_IMPORTS || m->n_exports > ART_MANIFEST_MAX_EXPORTS ||
	    m->n_capabilities > ART_MANIFEST_MAX_CAPABILITIES || m->n_parts > ART_MANIFEST_MAX_PARTS)
		return corrupt("imports/exports/capabilities/parts", "has too many entries");
	for (i = 0; i < m->n_imports; i++) {
		const art_manifest_import *im = &m->imports[i];

		snprintf(field, sizeof(field), "imports[%zu]", i);
		if (!text_valid(im->module, FIELD_NAME_MAX, false) ||
		    !text_valid(im->name, FIELD_NAME_MAX, false) || !kind_valid(im->kind))
			return corrupt(field, "is malformed");
		if (i && cmp_import(&m->imports[i - 1], im) >= 0)
			return corrupt(field, "is out of order or a duplicate");
	}
	for (i = 0; i < m->n_exports; i++) {
		snprintf(field, sizeof(field), "exports[%zu]", i);
		if (!text_valid(m->exports[i].name, FIELD_NAME_MAX, false) ||
		    !kind_valid(m->exports[i].kind))
			return corrupt(field, "is malformed");
		if (i && cmp_export(&m->exports[i - 1], &m->exports[i]) >= 0)
			return corrupt(field, "is out of order or a duplicate");
	}
	for (i = 0; i < m->n_capabilities; i++) {
		snprintf(field, sizeof(field), "capabilities[%zu]", i);
		if (!capability_valid(m->capabilities[i]))
			return corrupt(field, "is malformed");
		if (i && strcmp(m->capabilities[i - 1], m->capabilities[i]) >= 0)
			return corrupt(field, "is out of order or a duplicate");
	}
	if (m->n_hosts > ART_MANIFEST_MAX_HOSTS)
		return corrupt("hosts", "has too many entries");
	for (i = 0; i < m->n_hosts; i++) {
		snprintf(field, sizeof(field), "hosts[%zu]", i);
		if (!art_manifest_host_valid(m->hosts[i]))
			return corrupt(field, "is malformed");
		if (i && strcmp(m->hosts[i - 1], m->hosts[i]) >= 0)
			return corrupt(field, "is out of order or a duplicate");
	}
	for (i = 0; i < m->n_parts; i++) {
		const char *want;

		p = &m->parts[i];
		snprintf(field, sizeof(field), "parts.%.60s", p->name ? p->name : "?");
		if (!part_name_valid(p->name))
			return corrupt(field, "has an invalid name");
		if (i && strcmp(m->parts[i - 1].name, p->name) >= 0)
			return corrupt(field, "is out of order or a duplicate");
		want = known_media_type(p->name);
		if (!text_valid(p->media_type, MEDIA_TYPE_MAX, false) ||
		    (want && strcmp(want, p->media_type)))
			return corrupt(field, "has the wrong media_type");
		if (!digest_valid(p->digest))
			return corrupt(field, "has a malformed digest");
		if (p->size > ART_PART_MAX_SIZE)
			return corrupt(field, "is larger than the part size limit");
		if (!strncmp(p->name, ART_PART_NATIVE_PREFIX, 7)) {
			if (!text_valid(p->compat_id, FIELD_TEXT_MAX, true))
				return corrupt(field, "needs a compat_id");
			art_manifest_native_part_name(native, p->compat_id);
			if (strcmp(native, p->name))
				return corrupt(field, "is not named after its compat_id");
		} else if (p->compat_id) {
			return corrupt(field, "has a compat_id but is not a native part");
		}
	}
	if (!art_manifest_part_get(m, ART_PART_WASM))
		return corrupt("parts.wasm", "is missing");
	if (!art_manifest_part_get(m, ART_PART_SOURCE))
		return corrupt("parts.source", "is missing");
	if (!art_manifest_part_get(m, ART_PART_PROVENANCE))
		return corrupt("parts.provenance", "is missing");
	art_manifest_native_part_name(native, m->native_compat_id);
	if (!art_manifest_part_get(m, native)) {
		snprintf(field, sizeof(field), "parts.%s", native);
		return corrupt(field, "(the native part of native_compat_id) is missing");
	}
	return 0;
}

/* ---- serialization ------------------------------------------------------- */

/* json_object_set_new / json_array_append_new steal the value even on failure. */
static int set(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *manifest_to_json(const art_manifest *m)
{
	json_t *root = json_object(), *arr, *obj, *parts;
	size_t i;
	int bad = !root;

	bad = bad || set(root, "format", json_string(ART_MANIFEST_FORMAT)) ||
	      set(root, "name", json_string(m->name)) ||
	      set(root, "version", json_string(m->version)) ||
	      set(root, "resolved_template_digest", json_string(m->resolved_template_digest)) ||
	      set(root, "git_commit", json_string(m->git_commit)) ||
	      set(root, "policy_digest", json_string(m->policy_digest)) ||
	      set(root, "toolchain_id", json_string(m->toolchain_id)) ||
	      set(root, "native_compat_id", json_string(m->native_compat_id)) ||
	      set(root, "target_triple", json_string(m->target_triple)) ||
	      set(root, "guest_abi_version", json_integer(m->guest_abi_version));
	bad = bad || set(root, "imports", arr = json_array());
	for (i = 0; !bad && i < m->n_imports; i++) {
		bad = json_array_append_new(arr, obj = json_object()) || !obj ||
		      set(obj, "module", json_string(m->imports[i].module)) ||
		      set(obj, "name", json_string(m->imports[i].name)) ||
		      set(obj, "kind", json_string(m->imports[i].kind));
	}
	bad = bad || set(root, "exports", arr = json_array());
	for (i = 0; !bad && i < m->n_exports; i++) {
		bad = json_array_append_new(arr, obj = json_object()) || !obj ||
		      set(obj, "name", json_string(m->exports[i].name)) ||
		      set(obj, "kind", json_string(m->exports[i].kind));
	}
	bad = bad || set(root, "capabilities", arr = json_array());
	for (i = 0; !bad && i < m->n_capabilities; i++)
		bad = json_array_append_new(arr, json_string(m->capabilities[i]));
	/* Optional: left out when empty, so manifests of agents without
	 * http_fetch keep the bytes they had before the field existed. */
	if (m->n_hosts)
		bad = bad || set(root, "hosts", arr = json_array());
	for (i = 0; !bad && i < m->n_hosts; i++)
		bad = json_array_append_new(arr, json_string(m->hosts[i]));
	bad = bad || set(root, "parts", parts = json_object());
	for (i = 0; !bad && i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];

		bad = set(parts, p->name, obj = json_object()) ||
		      set(obj, "digest", json_string(p->digest)) ||
		      set(obj, "size", json_integer((json_int_t)p->size)) ||
		      set(obj, "media_type", json_string(p->media_type)) ||
		      (p->compat_id && set(obj, "compat_id", json_string(p->compat_id)));
	}
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static int dump_canonical(char **out, size_t *out_len, json_t *root, size_t max, const char *what)
{
	char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);

	*out = NULL;
	*out_len = 0;
	if (!text)
		return art_error_set(AF_ENOMEM, "out of memory serializing %s", what);
	if (strlen(text) > max) {
		free(text);
		return art_error_set(AF_ETOOBIG, "%s would exceed %zu bytes", what, max);
	}
	*out_len = strlen(text);
	*out = text;
	return 0;
}

int art_manifest_serialize(char **out, size_t *out_len, const art_manifest *m)
{
	json_t *root;
	int rc;

	*out = NULL;
	*out_len = 0;
	if ((rc = art_manifest_validate(m)) < 0)
		return rc;
	if (!(root = manifest_to_json(m)))
		return art_error_set(AF_ENOMEM, "out of memory serializing a manifest");
	rc = dump_canonical(out, out_len, root, ART_MANIFEST_MAX, "the manifest");
	json_decref(root);
	return rc;
}

void art_manifest_digest(char out[ART_DIGEST_STR_LEN + 1], const void *data, size_t len)
{
	memcpy(out, ART_DIGEST_PREFIX, 7);
	art_sha256_hex(data, len, out + 7);
}

/* ---- parsing ------------------------------------------------------------- */

static int only_keys(json_t *obj, const char *const *allowed, const char *where)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(obj, k, v) {
		for (i = 0; allowed[i]; i++)
			if (!strcmp(k, allowed[i]))
				break;
		if (!allowed[i])
			return art_error_set(AF_ECORRUPT, "manifest: unknown field '%s%s%.60s'",
					     where, *where ? "." : "", k);
	}
	return 0;
}

/* A required string member: a copy in *out, or AF_ECORRUPT naming where.key. */
static int take_str(char **out, json_t *obj, const char *key, const char *where)
{
	json_t *v = json_object_get(obj, key);
	const char *dot = *where ? "." : "";

	if (!v)
		return art_error_set(AF_ECORRUPT, "manifest: missing field '%s%s%s'", where, dot, key);
	if (!json_is_string(v))
		return art_error_set(AF_ECORRUPT, "manifest: field '%s%s%s' must be a string", where,
				     dot, key);
	if (!(*out = strdup(json_string_value(v))))
		return art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
	return 0;
}

static int take_array(json_t **out, json_t *root, const char *key, size_t max)
{
	json_t *v = json_object_get(root, key);

	if (!v)
		return art_error_set(AF_ECORRUPT, "manifest: missing field '%s'", key);
	if (!json_is_array(v))
		return art_error_set(AF_ECORRUPT, "manifest: field '%s' must be an array", key);
	if (json_array_size(v) > max)
		return art_error_set(AF_ECORRUPT, "manifest: field '%s' has more than %zu entries",
				     key, max);
	*out = v;
	return 0;
}

static const char *const top_keys[] = {
	"format", "name", "version", "resolved_template_digest", "git_commit", "policy_digest",
	"toolchain_id", "native_compat_id", "target_triple", "guest_abi_version", "imports",
	"exports", "capabilities", "hosts", "parts", NULL};
static const char *const import_keys[] = {"module", "name", "kind", NULL};
static const char *const export_keys[] = {"name", "kind", NULL};
static const char *const part_keys[] = {"digest", "size", "media_type", "compat_id", NULL};

static int parse_parts(art_manifest *m, json_t *parts)
{
	char where[96];
	const char *k;
	json_t *v, *size, *compat;
	art_manifest_part *p;
	int rc;

	if (!parts)
		return art_error_set(AF_ECORRUPT, "manifest: missing field 'parts'");
	if (!json_is_object(parts))
		return art_error_set(AF_ECORRUPT, "manifest: field 'parts' must be an object");
	if (json_object_size(parts) > ART_MANIFEST_MAX_PARTS)
		return art_error_set(AF_ECORRUPT, "manifest: more than %u parts",
				     ART_MANIFEST_MAX_PARTS);
	if (json_object_size(parts) &&
	    !(m->parts = calloc(json_object_size(parts), sizeof(*m->parts))))
		return art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
	json_object_foreach(parts, k, v) {
		snprintf(where, sizeof(where), "parts.%.60s", k);
		if (!json_is_object(v))
			return art_error_set(AF_ECORRUPT, "manifest: field '%s' must be an object",
					     where);
		if ((rc = only_keys(v, part_keys, where)) < 0)
			return rc;
		p = &m->parts[m->n_parts++];
		if (!(p->name = strdup(k)))
			return art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
		if ((rc = take_str(&p->media_type, v, "media_type", where)) < 0)
			return rc;
		size = json_object_get(v, "size");
		if (!size)
			return art_error_set(AF_ECORRUPT, "manifest: missing field '%s.size'", where);
		if (!json_is_integer(size) || json_integer_value(size) < 0 ||
		    json_integer_value(size) > (json_int_t)ART_PART_MAX_SIZE)
			return art_error_set(AF_ECORRUPT, "manifest: field '%s.size' must be an "
					     "integer 0..%u", where, ART_PART_MAX_SIZE);
		p->size = (uint64_t)json_integer_value(size);
		if (!json_object_get(v, "digest"))
			return art_error_set(AF_ECORRUPT, "manifest: missing field '%s.digest'", where);
		if (!json_is_string(json_object_get(v, "digest")) ||
		    !digest_valid(json_string_value(json_object_get(v, "digest"))))
			return art_error_set(AF_ECORRUPT, "manifest: field '%s.digest' must be "
					     "sha256:<64 hex>", where);
		memcpy(p->digest, json_string_value(json_object_get(v, "digest")),
		       ART_DIGEST_STR_LEN + 1);
		compat = json_object_get(v, "compat_id");
		if (compat && (rc = take_str(&p->compat_id, v, "compat_id", where)) < 0)
			return rc;
	}
	/* jansson keeps insertion order; the canonical order is by name. */
	if (m->n_parts > 1)
		qsort(m->parts, m->n_parts, sizeof(*m->parts), cmp_part);
	return 0;
}

int art_manifest_parse(art_manifest **out, const void *data, size_t len)
{
	json_t *root = NULL, *v, *arr, *item;
	json_error_t jerr;
	art_manifest *m = NULL;
	char *format = NULL, where[48];
	size_t i;
	int rc;

	*out = NULL;
	if (len > ART_MANIFEST_MAX)
		return art_error_set(AF_ETOOBIG, "manifest of %zu bytes is over the limit (%u)", len,
				     ART_MANIFEST_MAX);
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson reports running out of memory as a parse error: it is not
		 * the data's fault, so it must not read as a corrupt manifest. */
		if (json_error_code(&jerr) == json_error_out_of_memory)
			rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
		else
			rc = art_error_set(AF_ECORRUPT, "manifest: invalid JSON at byte %d: %s",
					   jerr.position, jerr.text);
		goto cleanup;
	}
	if (!json_is_object(root)) {
		rc = art_error_set(AF_ECORRUPT, "manifest: not a JSON object");
		goto cleanup;
	}
	if ((rc = take_str(&format, root, "format", "")) < 0)
		goto cleanup;
	if (strcmp(format, ART_MANIFEST_FORMAT) != 0) {
		if (!strncmp(format, "agentfactory-manifest/", 22))
			rc = art_error_set(AF_EVERSION, "manifest: format '%.60s' is not supported "
					   "(this build reads %s); upgrade agentfactory", format,
					   ART_MANIFEST_FORMAT);
		else
			rc = art_error_set(AF_ECORRUPT, "manifest: field 'format' is '%.60s', not %s",
					   format, ART_MANIFEST_FORMAT);
		goto cleanup;
	}
	if ((rc = only_keys(root, top_keys, "")) < 0)
		goto cleanup;
	rc = AF_ENOMEM;
	if (!(m = calloc(1, sizeof(*m)))) {
		art_error_set(rc, "out of memory parsing a manifest");
		goto cleanup;
	}
	if ((rc = take_str(&m->name, root, "name", "")) < 0 ||
	    (rc = take_str(&m->version, root, "version", "")) < 0 ||
	    (rc = take_str(&m->resolved_template_digest, root, "resolved_template_digest", "")) < 0 ||
	    (rc = take_str(&m->git_commit, root, "git_commit", "")) < 0 ||
	    (rc = take_str(&m->policy_digest, root, "policy_digest", "")) < 0 ||
	    (rc = take_str(&m->toolchain_id, root, "toolchain_id", "")) < 0 ||
	    (rc = take_str(&m->native_compat_id, root, "native_compat_id", "")) < 0 ||
	    (rc = take_str(&m->target_triple, root, "target_triple", "")) < 0)
		goto cleanup;
	v = json_object_get(root, "guest_abi_version");
	if (!v) {
		rc = art_error_set(AF_ECORRUPT, "manifest: missing field 'guest_abi_version'");
		goto cleanup;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
		rc = art_error_set(AF_ECORRUPT, "manifest: field 'guest_abi_version' must be an "
				   "integer 1..65535");
		goto cleanup;
	}
	m->guest_abi_version = (uint32_t)json_integer_value(v);

	if ((rc = take_array(&arr, root, "imports", ART_MANIFEST_MAX_IMPORTS)) < 0)
		goto cleanup;
	if (json_array_size(arr) && !(m->imports = calloc(json_array_size(arr), sizeof(*m->imports)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
		goto cleanup;
	}
	json_array_foreach(arr, i, item) {
		art_manifest_import *im = &m->imports[m->n_imports++];

		snprintf(where, sizeof(where), "imports[%zu]", i);
		if (!json_is_object(item)) {
			rc = art_error_set(AF_ECORRUPT, "manifest: field '%s' must be an object", where);
			goto cleanup;
		}
		if ((rc = only_keys(item, import_keys, where)) < 0 ||
		    (rc = take_str(&im->module, item, "module", where)) < 0 ||
		    (rc = take_str(&im->name, item, "name", where)) < 0 ||
		    (rc = take_str(&im->kind, item, "kind", where)) < 0)
			goto cleanup;
	}
	if ((rc = take_array(&arr, root, "exports", ART_MANIFEST_MAX_EXPORTS)) < 0)
		goto cleanup;
	if (json_array_size(arr) && !(m->exports = calloc(json_array_size(arr), sizeof(*m->exports)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
		goto cleanup;
	}
	json_array_foreach(arr, i, item) {
		art_manifest_export *ex = &m->exports[m->n_exports++];

		snprintf(where, sizeof(where), "exports[%zu]", i);
		if (!json_is_object(item)) {
			rc = art_error_set(AF_ECORRUPT, "manifest: field '%s' must be an object", where);
			goto cleanup;
		}
		if ((rc = only_keys(item, export_keys, where)) < 0 ||
		    (rc = take_str(&ex->name, item, "name", where)) < 0 ||
		    (rc = take_str(&ex->kind, item, "kind", where)) < 0)
			goto cleanup;
	}
	if ((rc = take_array(&arr, root, "capabilities", ART_MANIFEST_MAX_CAPABILITIES)) < 0)
		goto cleanup;
	if (json_array_size(arr) &&
	    !(m->capabilities = calloc(json_array_size(arr), sizeof(char *)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
		goto cleanup;
	}
	json_array_foreach(arr, i, item) {
		if (!json_is_string(item)) {
			rc = art_error_set(AF_ECORRUPT, "manifest: field 'capabilities[%zu]' must be "
					   "a string", i);
			goto cleanup;
		}
		if (!(m->capabilities[m->n_capabilities++] = strdup(json_string_value(item)))) {
			rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
			goto cleanup;
		}
	}
	if (json_object_get(root, "hosts")) {
		if ((rc = take_array(&arr, root, "hosts", ART_MANIFEST_MAX_HOSTS)) < 0)
			goto cleanup;
		if (json_array_size(arr) == 0) {
			rc = art_error_set(AF_ECORRUPT, "manifest: field 'hosts' is empty (it is "
					   "left out when there are no hosts)");
			goto cleanup;
		}
		if (!(m->hosts = calloc(json_array_size(arr), sizeof(char *)))) {
			rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
			goto cleanup;
		}
		json_array_foreach(arr, i, item) {
			if (!json_is_string(item)) {
				rc = art_error_set(AF_ECORRUPT, "manifest: field 'hosts[%zu]' must be "
						   "a string", i);
				goto cleanup;
			}
			if (!(m->hosts[m->n_hosts++] = strdup(json_string_value(item)))) {
				rc = art_error_set(AF_ENOMEM, "out of memory parsing a manifest");
				goto cleanup;
			}
		}
	}
	if ((rc = parse_parts(m, json_object_get(root, "parts"))) < 0)
		goto cleanup;
	if ((rc = art_manifest_validate(m)) < 0)
		goto cleanup;
	*out = m;
	m = NULL;
	rc = 0;
cleanup:
	art_manifest_free(m);
	free(format);
	json_decref(root);
	return rc;
}

/* ---- provenance ---------------------------------------------------------- */

static json_t *resource(const char *name, const char *uri, const char *algo, const char *hex)
{
	json_t *r = json_object(), *d = json_object();

	if (!r || !d || set(r, "name", json_string(name)) ||
	    (uri && set(r, "uri", json_string(uri))) || set(d, algo, json_string(hex))) {
		json_decref(r);
		json_decref(d);
		return NULL;
	}
	if (json_object_set_new(r, "digest", d)) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static bool hex_valid(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!s || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

/* Check the optional lists of a provenance info. */
static int provenance_info_check(const art_provenance_extra *prov)
{
	size_t i;

	if (prov->template_path && !text_valid(prov->template_path, 1024, true))
		return art_error_set(AF_EINVAL, "provenance: template_path must be printable ASCII");
	if (prov->n_templates > ART_PROVENANCE_MAX_FILES ||
	    prov->n_components > ART_PROVENANCE_MAX_FILES || (prov->n_templates && !prov->templates) ||
	    (prov->n_components && !prov->components))
		return art_error_set(AF_EINVAL, "provenance: at most %u templates and components",
				     ART_PROVENANCE_MAX_FILES);
	for (i = 0; i < prov->n_templates; i++) {
		const art_provenance_file *f = &prov->templates[i];

		if (!text_valid(f->path, 1024, true) || !hex_valid(f->sha256_hex, 64) ||
		    (f->git_blob && !hex_valid(f->git_blob, 40)))
			return art_error_set(AF_EINVAL, "provenance: template %zu needs a path, a "
					     "sha256 and optionally a git blob id (lower-case hex)", i);
	}
	for (i = 0; i < prov->n_components; i++) {
		const art_sbom_component *c = &prov->components[i];

		if (!text_valid(c->type, 64, false) || !text_valid(c->name, 256, true) ||
		    (c->version && !text_valid(c->version, 256, true)) ||
		    (c->purl && !text_valid(c->purl, 1024, false)) ||
		    (c->sha256_hex && !hex_valid(c->sha256_hex, 64)) ||
		    (c->description && !text_valid(c->description, 1024, true)))
			return art_error_set(AF_EINVAL, "provenance: component %zu is malformed "
					     "(type, name required; printable ASCII; sha256 hex)", i);
	}
	return 0;
}

int art_manifest_provenance(char **out, size_t *out_len, const art_manifest *m,
			    const art_provenance_info *prov)
{
	return art_manifest_provenance_ex(out, out_len, m, prov, NULL);
}

int art_manifest_provenance_ex(char **out, size_t *out_len, const art_manifest *m,
			       const art_provenance_info *prov, const art_provenance_extra *extra)
{
	static const art_provenance_extra none;
	json_t *root = NULL, *subjects, *pred, *bdef, *ext, *internal, *deps, *run, *builder,
	       *subj, *dig, *tc, *ann;
	char subject_name[256], toolchain_hex[ART_SHA256_HEX_LEN + 1], native[ART_PART_NAME_MAX];
	size_t i, n_deps = 4;
	int rc, bad;

	*out = NULL;
	*out_len = 0;
	if (!prov || !text_valid(prov->repo, 4096, true) || !text_valid(prov->rev, 1024, true) ||
	    !text_valid(prov->builder_id, 1024, false))
		return art_error_set(AF_EINVAL, "provenance: repo, rev and builder_id are required "
				     "(printable ASCII)");
	if (!extra)
		extra = &none;
	if ((rc = provenance_info_check(extra)) < 0)
		return rc;
	art_manifest_native_part_name(native, m->native_compat_id);
	if (!art_manifest_part_get(m, ART_PART_WASM) || !art_manifest_part_get(m, ART_PART_SOURCE) ||
	    !art_manifest_part_get(m, native))
		return art_error_set(AF_EINVAL, "provenance: add the wasm, source and native parts "
				     "to the manifest first");
	art_sha256_hex(m->toolchain_id, strlen(m->toolchain_id), toolchain_hex);
	root = json_object();
	bad = !root || set(root, "_type", json_string(ART_SIG_STATEMENT_TYPE)) ||
	      set(root, "predicateType", json_string(ART_SLSA_PREDICATE_TYPE)) ||
	      set(root, "subject", subjects = json_array());
	/* The subjects are the build's outputs: not the provenance itself, nor
	 * the SBOM (which describes them). */
	for (i = 0; !bad && i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];

		if (!strcmp(p->name, ART_PART_PROVENANCE) || !strcmp(p->name, ART_PART_SBOM))
			continue;
		snprintf(subject_name, sizeof(subject_name), "%s@%s/%s", m->name, m->version, p->name);
		bad = json_array_append_new(subjects, subj = json_object()) || !subj ||
		      set(subj, "name", json_string(subject_name)) ||
		      set(subj, "digest", dig = json_object()) ||
		      set(dig, "sha256", json_string(p->digest + 7));
	}
	bad = bad || set(root, "predicate", pred = json_object()) ||
	      set(pred, "buildDefinition", bdef = json_object()) ||
	      set(bdef, "buildType", json_string(ART_SLSA_BUILD_TYPE)) ||
	      set(bdef, "externalParameters", ext = json_object()) ||
	      set(ext, "repository", json_string(prov->repo)) ||
	      set(ext, "ref", json_string(prov->rev)) ||
	      set(ext, "agent", json_string(m->name)) ||
	      (extra->template_path && set(ext, "templatePath", json_string(extra->template_path))) ||
	      set(bdef, "internalParameters", internal = json_object()) ||
	      set(internal, "target_triple", json_string(m->target_triple)) ||
	      set(internal, "native_compat_id", json_string(m->native_compat_id)) ||
	      set(internal, "toolchain_id", json_string(m->toolchain_id)) ||
	      set(internal, "guest_abi_version", json_integer(m->guest_abi_version)) ||
	      set(bdef, "resolvedDependencies", deps = json_array()) ||
	      json_array_append_new(deps, resource("repository", prov->repo, "gitCommit",
						   m->git_commit)) ||
	      json_array_append_new(deps, resource("resolved-template", NULL, "sha256",
						   m->resolved_template_digest + 7)) ||
	      json_array_append_new(deps, resource("policy", NULL, "sha256", m->policy_digest + 7)) ||
	      json_array_append_new(deps, tc = resource("toolchain", NULL, "sha256", toolchain_hex)) ||
	      !tc || set(tc, "annotations", ann = json_object()) ||
	      set(ann, "id", json_string(m->toolchain_id));
	for (i = 0; !bad && i < extra->n_templates; i++) {
		const art_provenance_file *f = &extra->templates[i];
		json_t *r = resource(f->path, NULL, "sha256", f->sha256_hex);

		bad = !r || (f->git_blob && set(json_object_get(r, "digest"), "gitBlob",
						json_string(f->git_blob))) ||
		      json_array_append_new(deps, r);
		n_deps++;
	}
	for (i = 0; !bad && i < extra->n_components; i++) {
		const art_sbom_component *c = &extra->components[i];
		json_t *r;

		if (!c->sha256_hex && !c->purl)
			continue; /* a resource descriptor needs a uri or a digest */
		r = c->sha256_hex ? resource(c->name, c->purl, "sha256", c->sha256_hex)
				  : json_object();
		bad = !r || (!c->sha256_hex && (set(r, "name", json_string(c->name)) ||
						set(r, "uri", json_string(c->purl)))) ||
		      (c->version && (set(r, "annotations", ann = json_object()) ||
				      set(ann, "version", json_string(c->version)))) ||
		      json_array_append_new(deps, r);
		n_deps++;
	}
	bad = bad || set(pred, "runDetails", run = json_object()) ||
	      set(run, "builder", builder = json_object()) ||
	      set(builder, "id", json_string(prov->builder_id));
	/* A failed append leaves a short array: check the length too. */
	if (bad || json_array_size(deps) != n_deps) {
		rc = art_error_set(AF_ENOMEM, "out of memory building provenance");
		goto cleanup;
	}
	rc = dump_canonical(out, out_len, root, ART_PART_MAX_SIZE, "the provenance");
cleanup:
	json_decref(root);
	return rc;
}

/* ---- signed pairs -------------------------------------------------------- */

int art_manifest_verify_signed(art_manifest **out, art_sig_info *info_out,
			       const art_keyring *kr, const void *data, size_t len,
			       const char *envelope, size_t envelope_len, time_t now)
{
	uint8_t *payload = NULL;
	size_t payload_len = 0, again_len = 0;
	char *again = NULL;
	art_manifest *m = NULL;
	int rc;

	*out = NULL;
	rc = art_sig_verify_payload(info_out, &payload, &payload_len, kr, ART_ROLE_BUILDER,
				    ART_MANIFEST_PAYLOAD_TYPE, envelope, envelope_len, now);
	if (rc < 0)
		goto cleanup;
	if (payload_len != len || memcmp(payload, data, len) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "the builder signature is for another manifest "
				   "(the manifest changed after signing, or was swapped); rebuild "
				   "the artifact");
		goto cleanup;
	}
	if ((rc = art_manifest_parse(&m, data, len)) < 0)
		goto cleanup;
	if ((rc = art_manifest_serialize(&again, &again_len, m)) < 0)
		goto cleanup;
	if (again_len != len || memcmp(again, data, len) != 0) {
		rc = art_error_set(AF_ECORRUPT, "manifest: not in canonical form (signed by a "
				   "non-conforming builder); rebuild the artifact");
		goto cleanup;
	}
	*out = m;
	m = NULL;
cleanup:
	art_manifest_free(m);
	free(again);
	free(payload);
	return rc;
}

int art_manifest_check_part(const art_manifest_part *part, const void *data, size_t len)
{
	char digest[ART_DIGEST_STR_LEN + 1];

	if (len != part->size)
		return art_error_set(AF_ECORRUPT, "part '%s': size %zu, the manifest says %llu",
				     part->name, len, (unsigned long long)part->size);
	art_manifest_digest(digest, data, len);
	if (strcmp(digest, part->digest) != 0)
		return art_error_set(AF_ECORRUPT, "part '%s': digest %.20s..., the manifest says "
				     "%.20s...", part->name, digest, part->digest);
	return 0;
}

void art_manifest_free(art_manifest *m)
{
	size_t i;

	if (!m)
		return;
	free(m->name);
	free(m->version);
	free(m->resolved_template_digest);
	free(m->git_commit);
	free(m->policy_digest);
	free(m->toolchain_id);
	free(m->native_compat_id);
	free(m->target_triple);
	for (i = 0; i < m->n_imports; i++) {
		free(m->imports[i].module);
		free(m->imports[i].name);
		free(m->imports[i].kind);
	}
	free(m->imports);
	for (i = 0; i < m->n_exports; i++) {
		free(m->exports[i].name);
		free(m->exports[i].kind);
	}
	free(m->exports);
	for (i = 0; i < m->n_capabilities; i++)
		free(m->capabilities[i]);
	free(m->capabilities);
	for (i = 0; i < m->n_hosts; i++)
		free(m->hosts[i]);
	free(m->hosts);
	for (i = 0; i < m->n_parts; i++) {
		free(m->parts[i].name);
		free(m->parts[i].media_type);
		free(m->parts[i].compat_id);
	}
	free(m->parts);
	free(m);
}
