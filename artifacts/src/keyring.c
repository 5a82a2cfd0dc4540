/*
 * keyring.c - trusted keys by role, validity windows, revocations, stored as
 * strict JSON (see art/keyring.h and docs/signing.md).
 *
 * Invariants: entries are unique by (id, role); revocations are unique by
 * id; every entry's id is the id of its key (re-derived on load, never
 * trusted from the file); entries hold public keys only. Entries and
 * revocations are held by pointer, so the public views handed out stay put
 * while the arrays grow.
 */
#include "art/keyring.h"

#include "art/error.h"
#include "art/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Keyring times are limited to 1970-01-01 .. 9999-12-31T23:59:59Z. */
#define KR_TIME_MAX ((time_t)253402300799LL)
#define KR_REASON_MAX 1024

typedef struct kr_entry {
	art_keyring_entry view;
	char id[ART_SHA256_HEX_LEN + 1];
	char role[24];
	art_key *key;
} kr_entry;

typedef struct kr_revocation {
	art_keyring_revocation view;
	char id[ART_SHA256_HEX_LEN + 1];
	char *reason;
} kr_revocation;

struct art_keyring {
	kr_entry **entries;
	size_t n, cap;
	kr_revocation **revoked;
	size_t nrev, caprev;
};

static const char *const roles[] = {
	ART_ROLE_TEMPLATE_SIGNER, ART_ROLE_BUILDER, ART_ROLE_RELEASE_MANAGER
};

bool art_keyring_role_valid(const char *role)
{
	size_t i;

	if (!role)
		return false;
	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(role, roles[i]) == 0)
			return true;
	return false;
}

static bool keyid_valid(const char *id)
{
	size_t i;

	for (i = 0; i < ART_SHA256_HEX_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return id[ART_SHA256_HEX_LEN] == '\0';
}

static bool time_in_range(time_t t)
{
	return t >= 0 && t <= KR_TIME_MAX;
}

static void entry_free(kr_entry *e)
{
	if (!e)
		return;
	art_key_free(e->key);
	free(e);
}

static void revocation_free(kr_revocation *r)
{
	if (!r)
		return;
	free(r->reason);
	free(r);
}

void art_keyring_free(art_keyring *kr)
{
	size_t i;

	if (!kr)
		return;
	for (i = 0; i < kr->n; i++)
		entry_free(kr->entries[i]);
	for (i = 0; i < kr->nrev; i++)
		revocation_free(kr->revoked[i]);
	free(kr->entries);
	free(kr->revoked);
	free(kr);
}

int art_keyring_new(art_keyring **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
}

/*
 * Make room for one more pointer in *items (n used, *cap allocated). A macro
 * rather than a void** function, so no pointer type is punned.
 */
#define KR_GROW(items, n, cap)                                                   \
	do {                                                                     \
		if ((n) >= (cap)) {                                              \
			size_t ncap_ = (cap) ? (cap) * 2 : 8;                    \
			void *p_ = realloc((items), ncap_ * sizeof(*(items)));   \
			if (!p_) {                                               \
				rc = art_error_set(AF_ENOMEM, "out of memory");  \
				goto fail;                                       \
			}                                                        \
			(items) = p_;                                            \
			(cap) = ncap_;                                           \
		}                                                                \
	} while (0)

/* Takes ownership of key (a public key), also on failure. */
static int entry_push(art_keyring *kr, art_key *key, const char *role, time_t not_before,
		      time_t not_after, time_t added)
{
	kr_entry *e = NULL;
	int rc;

	KR_GROW(kr->entries, kr->n, kr->cap);
	e = calloc(1, sizeof(*e));
	if (!e) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(e->id, art_key_id(key), sizeof(e->id));
	snprintf(e->role, sizeof(e->role), "%s", role);
	e->key = key;
	e->view.id = e->id;
	e->view.role = e->role;
	e->view.algorithm = ART_KEY_ALGORITHM;
	e->view.not_before = not_before;
	e->view.not_after = not_after;
	e->view.added = added;
	e->view.key = key;
	kr->entries[kr->n++] = e;
	return 0;
fail:
	art_key_free(key);
	return rc;
}

static int revocation_push(art_keyring *kr, const char *id, time_t at, const char *reason)
{
	kr_revocation *r;
	int rc;

	KR_GROW(kr->revoked, kr->nrev, kr->caprev);
	r = calloc(1, sizeof(*r));
	if (!r || !(r->reason = strdup(reason ? reason : "unspecified"))) {
		free(r);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	memcpy(r->id, id, sizeof(r->id));
	r->view.id = r->id;
	r->view.at = at;
	r->view.reason = r->reason;
	kr->revoked[kr->nrev++] = r;
	return 0;
fail:
	return rc;
}

static kr_entry *find_entry(const art_keyring *kr, const char *id, const char *role)
{
	size_t i;

	for (i = 0; i < kr->n; i++)
		if (strcmp(kr->entries[i]->id, id) == 0 &&
		    (!role || strcmp(kr->entries[i]->role, role) == 0))
			return kr->entries[i];
	return NULL;
}

const art_keyring_revocation *art_keyring_find_revocation(const art_keyring *kr,
							  const char *keyid)
{
	size_t i;

	for (i = 0; i < kr->nrev; i++)
		if (strcmp(kr->revoked[i]->id, keyid) == 0)
			return &kr->revoked[i]->view;
	return NULL;
}

size_t art_keyring_count(const art_keyring *kr)
{
	return kr->n;
}

const art_keyring_entry *art_keyring_get(const art_keyring *kr, size_t i)
{
	return i < kr->n ? &kr->entries[i]->view : NULL;
}

size_t art_keyring_revoked_count(const art_keyring *kr)
{
	return kr->nrev;
}

const art_keyring_revocation *art_keyring_revoked_get(const art_keyring *kr, size_t i)
{
	return i < kr->nrev ? &kr->revoked[i]->view : NULL;
}

/* ---- mutation ---------------------------------------------------------- */

int art_keyring_add(art_keyring *kr, const art_key *key, const char *role,
		    time_t not_before, time_t not_after)
{
	const art_keyring_revocation *rev;
	art_key *pub = NULL;
	char when[21];
	int rc;

	if (!art_keyring_role_valid(role))
		return art_error_set(AF_EINVAL,
				     "unknown role '%s': use template-signer, builder or release-manager",
				     role ? role : "(null)");
	if (!time_in_range(not_before) || !time_in_range(not_after))
		return art_error_set(AF_EINVAL, "key validity times must lie between 1970 and 9999");
	if (not_after != 0 && not_after <= not_before)
		return art_error_set(AF_EINVAL,
				     "not_after must be later than not_before (the key would never be valid)");
	if ((rev = art_keyring_find_revocation(kr, art_key_id(key)))) {
		art_time_format(when, rev->at);
		return art_error_set(AF_EREVOKED,
				     "key %s was revoked at %s (%s) and cannot be trusted again; "
				     "generate a new key with agentfactory keygen",
				     art_key_id(key), when, rev->reason);
	}
	if (find_entry(kr, art_key_id(key), role))
		return art_error_set(AF_EEXISTS, "key %s is already trusted as %s",
				     art_key_id(key), role);
	if ((rc = art_key_public_copy(&pub, key)) < 0)
		return rc;
	return entry_push(kr, pub, role, not_before, not_after, art_time_now());
}

int art_keyring_revoke(art_keyring *kr, const char *keyid, time_t at, const char *reason)
{
	const art_keyring_revocation *rev;
	char when[21];

	if (!keyid || !keyid_valid(keyid))
		return art_error_set(AF_EINVAL,
				     "'%s' is not a key id: a key id is 64 lower-case hex digits "
				     "(see agentfactory trust list)", keyid ? keyid : "(null)");
	if (!time_in_range(at))
		return art_error_set(AF_EINVAL, "revocation time must lie between 1970 and 9999");
	if (reason && strlen(reason) > KR_REASON_MAX)
		return art_error_set(AF_EINVAL, "revocation reason is longer than %d bytes",
				     KR_REASON_MAX);
	if (reason && !art_utf8_valid(reason, strlen(reason)))
		return art_error_set(AF_EINVAL, "revocation reason must be UTF-8 text");
	if ((rev = art_keyring_find_revocation(kr, keyid))) {
		art_time_format(when, rev->at);
		return art_error_set(AF_EEXISTS, "key %s is already revoked (at %s: %s)", keyid,
				     when, rev->reason);
	}
	if (!find_entry(kr, keyid, NULL))
		return art_error_set(AF_ENOTFOUND,
				     "key %s is not in the keyring: nothing to revoke "
				     "(see agentfactory trust list)", keyid);
	return revocation_push(kr, keyid, at, reason);
}

/* ---- lookup ------------------------------------------------------------- */

int art_keyring_lookup(const art_key **out, const art_keyring *kr, const char *keyid,
		       const char *role, time_t now)
{
	const art_keyring_revocation *rev;
	const kr_entry *e;
	char when[21];
	art_buf has = ART_BUF_INIT;
	size_t i;
	int rc;

	*out = NULL;
	/* A NULL role would match any entry in find_entry: refuse it outright. */
	if (!keyid || !art_keyring_role_valid(role))
		return art_error_set(AF_EINVAL, "key lookup needs a key id and one of the roles "
				     "template-signer, builder, release-manager");
	rev = art_keyring_find_revocation(kr, keyid);
	if (!find_entry(kr, keyid, NULL) && !rev)
		return art_error_set(AF_ENOTFOUND,
				     "key %s is not in the keyring; if it should be trusted, add its "
				     "public key: agentfactory trust add --role %s KEY.pub",
				     keyid, role);
	if (rev) {
		art_time_format(when, rev->at);
		return art_error_set(AF_EREVOKED,
				     "key %s was revoked at %s (%s); re-sign with a current %s key: "
				     "agentfactory sign --key KEY FILE", keyid, when, rev->reason, role);
	}
	e = find_entry(kr, keyid, role);
	if (!e) {
		for (i = 0; i < kr->n; i++)
			if (strcmp(kr->entries[i]->id, keyid) == 0)
				art_buf_printf(&has, "%s%s", has.len ? ", " : "",
					       kr->entries[i]->role);
		rc = art_error_set(AF_EDENIED,
				   "key %s is trusted as %s, not as %s; re-sign with a %s key: "
				   "agentfactory sign --key KEY FILE", keyid,
				   has.data ? has.data : "?", role, role);
		art_buf_free(&has);
		return rc;
	}
	if (now < e->view.not_before) {
		art_time_format(when, e->view.not_before);
		return art_error_set(AF_EEXPIRED,
				     "key %s is not valid before %s (not yet valid as %s); wait, check "
				     "the clock, or re-sign with a currently valid %s key",
				     keyid, when, role, role);
	}
	if (e->view.not_after != 0 && now > e->view.not_after) {
		art_time_format(when, e->view.not_after);
		return art_error_set(AF_EEXPIRED,
				     "key %s expired at %s; re-sign with a currently valid %s key "
				     "(agentfactory keygen, trust add, sign)", keyid, when, role);
	}
	*out = e->key;
	return 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* Parse exactly "YYYY-MM-DDTHH:MM:SSZ" (no "now", no offsets, no dates alone). */
static int parse_strict_time(time_t *out, const char *s)
{
	char back[21];

	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[19] != 'Z' ||
	    art_time_parse(out, s) < 0)
		return -1;
	/* Round-trip rejects impossible dates such as 2026-02-31T00:00:00Z. */
	art_time_format(back, *out);
	return strcmp(back, s) == 0 ? 0 : -1;
}

static int check_fields(json_t *obj, const char *const *allowed, const char *name,
			const char *where)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(obj, k, v) {
		for (i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (!allowed[i])
			return art_error_set(AF_ECORRUPT, "%s: %s: unknown field '%.60s'", name, where, k);
	}
	return 0;
}

/* A string member; required or optional. */
static int get_str(const char **out, json_t *obj, const char *field, bool required,
		   const char *name, const char *where)
{
	json_t *v = json_object_get(obj, field);

	*out = NULL;
	if (!v) {
		if (required)
			return art_error_set(AF_ECORRUPT, "%s: %s: missing field '%s'", name, where, field);
		return 0;
	}
	if (!json_is_string(v))
		return art_error_set(AF_ECORRUPT, "%s: %s: field '%s' must be a string", name,
				     where, field);
	*out = json_string_value(v);
	return 0;
}

static int get_time(time_t *out, json_t *obj, const char *field, bool required,
		    const char *name, const char *where)
{
	const char *s;
	int rc;

	*out = 0;
	if ((rc = get_str(&s, obj, field, required, name, where)) < 0 || !s)
		return rc;
	if (parse_strict_time(out, s) < 0)
		return art_error_set(AF_ECORRUPT,
				     "%s: %s: field '%s' is not an RFC 3339 UTC time "
				     "(YYYY-MM-DDTHH:MM:SSZ): '%s'", name, where, field, s);
	return 0;
}

static int parse_key_entry(art_keyring *kr, json_t *obj, size_t index, const char *name)
{
	static const char *const allowed[] = {
		"id", "role", "algorithm", "not_before", "not_after", "public_key", "added", NULL
	};
	const char *id, *role, *algorithm, *pem;
	time_t not_before, not_after, added;
	art_key *key = NULL;
	char where[120];
	int rc;

	snprintf(where, sizeof(where), "keys[%zu]", index);
	if (!json_is_object(obj))
		return art_error_set(AF_ECORRUPT, "%s: %s: must be an object", name, where);
	if ((rc = get_str(&id, obj, "id", true, name, where)) < 0)
		return rc;
	if (!keyid_valid(id))
		return art_error_set(AF_ECORRUPT, "%s: %s: id '%.80s' is not 64 lower-case hex digits",
				     name, where, id);
	snprintf(where, sizeof(where), "keys[%zu] (id %.16s...)", index, id);
	if ((rc = check_fields(obj, allowed, name, where)) < 0 ||
	    (rc = get_str(&role, obj, "role", true, name, where)) < 0 ||
	    (rc = get_str(&algorithm, obj, "algorithm", true, name, where)) < 0 ||
	    (rc = get_str(&pem, obj, "public_key", true, name, where)) < 0 ||
	    (rc = get_time(&not_before, obj, "not_before", true, name, where)) < 0 ||
	    (rc = get_time(&not_after, obj, "not_after", false, name, where)) < 0 ||
	    (rc = get_time(&added, obj, "added", false, name, where)) < 0)
		return rc;
	if (!art_keyring_role_valid(role))
		return art_error_set(AF_ECORRUPT,
				     "%s: %s: unknown role '%.40s' (expected template-signer, builder "
				     "or release-manager)", name, where, role);
	if (strcmp(algorithm, ART_KEY_ALGORITHM) != 0)
		return art_error_set(AF_ECORRUPT, "%s: %s: unsupported algorithm '%.40s' (expected %s)",
				     name, where, algorithm, ART_KEY_ALGORITHM);
	if (not_after != 0 && not_after <= not_before)
		return art_error_set(AF_ECORRUPT, "%s: %s: not_after is not later than not_before",
				     name, where);
	rc = art_key_from_public_pem(&key, pem, strlen(pem));
	if (rc < 0) {
		char why[512]; /* copied: art_error_set overwrites the slot it would read */

		snprintf(why, sizeof(why), "%s", art_error_last());
		/* Out of memory says nothing about the key: keep it apart. */
		return art_error_set(rc == AF_ENOMEM ? AF_ENOMEM : AF_ECORRUPT,
				     "%s: %s: public_key: %s", name, where, why);
	}
	if (strcmp(art_key_id(key), id) != 0) {
		rc = art_error_set(AF_ECORRUPT,
				   "%s: %s: the id does not match its public_key (whose id is %s); "
				   "the file was altered: restore it or re-add the key with "
				   "agentfactory trust add", name, where, art_key_id(key));
		art_key_free(key);
		return rc;
	}
	if (find_entry(kr, id, role)) {
		art_key_free(key);
		return art_error_set(AF_ECORRUPT, "%s: %s: duplicate entry for role %s", name, where,
				     role);
	}
	return entry_push(kr, key, role, not_before, not_after, added);
}

static int parse_revocation(art_keyring *kr, json_t *obj, size_t index, const char *name)
{
	static const char *const allowed[] = {"id", "at", "reason", NULL};
	const char *id, *reason;
	char where[64];
	time_t at;
	int rc;

	snprintf(where, sizeof(where), "revoked[%zu]", index);
	if (!json_is_object(obj))
		return art_error_set(AF_ECORRUPT, "%s: %s: must be an object", name, where);
	if ((rc = check_fields(obj, allowed, name, where)) < 0 ||
	    (rc = get_str(&id, obj, "id", true, name, where)) < 0 ||
	    (rc = get_time(&at, obj, "at", true, name, where)) < 0 ||
	    (rc = get_str(&reason, obj, "reason", false, name, where)) < 0)
		return rc;
	if (!keyid_valid(id))
		return art_error_set(AF_ECORRUPT, "%s: %s: id '%.80s' is not 64 lower-case hex digits",
				     name, where, id);
	if (reason && strlen(reason) > KR_REASON_MAX)
		return art_error_set(AF_ECORRUPT, "%s: %s: reason is longer than %d bytes", name,
				     where, KR_REASON_MAX);
	if (art_keyring_find_revocation(kr, id))
		return art_error_set(AF_ECORRUPT, "%s: %s: key %s is revoked twice", name, where, id);
	return revocation_push(kr, id, at, reason);
}

int art_keyring_parse(art_keyring **out, const char *data, size_t len, const char *name)
{
	static const char *const allowed[] = {"format", "keys", "revoked", NULL};
	art_keyring *kr = NULL;
	json_error_t jerr;
	json_t *root = NULL, *keys, *revoked, *item;
	const char *format;
	size_t i;
	int rc;

	*out = NULL;
	if (len > ART_KEYRING_MAX_BYTES)
		return art_error_set(AF_ETOOBIG, "%s: keyring is larger than %u bytes", name,
				     ART_KEYRING_MAX_BYTES);
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = art_error_set(AF_ECORRUPT, "%s:%d:%d: invalid keyring JSON: %s", name,
				   jerr.line, jerr.column, jerr.text);
		goto cleanup;
	}
	if (!json_is_object(root)) {
		rc = art_error_set(AF_ECORRUPT, "%s: a keyring must be a JSON object", name);
		goto cleanup;
	}
	if ((rc = check_fields(root, allowed, name, "top level")) < 0 ||
	    (rc = get_str(&format, root, "format", true, name, "top level")) < 0)
		goto cleanup;
	if (strcmp(format, ART_KEYRING_FORMAT) != 0) {
		rc = art_error_set(strncmp(format, "agentfactory-keyring/", 21) == 0 ?
				   AF_EVERSION : AF_ECORRUPT,
				   "%s: unsupported keyring format '%.60s' (this version reads %s)",
				   name, format, ART_KEYRING_FORMAT);
		goto cleanup;
	}
	keys = json_object_get(root, "keys");
	revoked = json_object_get(root, "revoked");
	if (!json_is_array(keys) || (revoked && !json_is_array(revoked))) {
		rc = art_error_set(AF_ECORRUPT, "%s: 'keys' (required) and 'revoked' must be arrays",
				   name);
		goto cleanup;
	}
	if ((rc = art_keyring_new(&kr)) < 0)
		goto cleanup;
	json_array_foreach(keys, i, item)
		if ((rc = parse_key_entry(kr, item, i, name)) < 0)
			goto cleanup;
	json_array_foreach(revoked, i, item)
		if ((rc = parse_revocation(kr, item, i, name)) < 0)
			goto cleanup;
	*out = kr;
	kr = NULL;
cleanup:
	art_keyring_free(kr);
	json_decref(root);
	return rc;
}

int art_keyring_load(art_keyring **out, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = art_file_read(&data, &len, path, ART_KEYRING_MAX_BYTES);
	if (rc == AF_ENOTFOUND)
		return art_error_set(rc, "%s: no such keyring file (create one with agentfactory "
				     "trust add --keyring %s --role ROLE KEY.pub)", path, path);
	if (rc == AF_ETOOBIG)
		return art_error_set(rc, "%s: keyring is larger than %u bytes", path,
				     ART_KEYRING_MAX_BYTES);
	if (rc < 0)
		return rc;
	rc = art_keyring_parse(out, data, len, path);
	free(data);
	return rc;
}

static int set_str(json_t *obj, const char *k, const char *v)
{
	return json_object_set_new(obj, k, json_string(v));
}

static int set_time(json_t *obj, const char *k, time_t t)
{
	char s[21];

	art_time_format(s, t);
	return set_str(obj, k, s);
}

int art_keyring_to_json(char **out, const art_keyring *kr)
{
	json_t *root = NULL, *keys, *revoked, *o;
	char *text = NULL, *pem = NULL;
	art_buf b = ART_BUF_INIT;
	size_t i;
	int rc = 0;

	*out = NULL;
	/* json_*_set_new and _append_new take the reference even when they fail. */
	root = json_object();
	if (!root || set_str(root, "format", ART_KEYRING_FORMAT) ||
	    json_object_set_new(root, "keys", keys = json_array()) ||
	    json_object_set_new(root, "revoked", revoked = json_array()))
		goto oom;
	for (i = 0; i < kr->n; i++) {
		const kr_entry *e = kr->entries[i];

		if ((rc = art_key_public_pem(&pem, e->key)) < 0)
			goto cleanup;
		o = json_object();
		if (!o || json_array_append_new(keys, o) || set_str(o, "id", e->id) ||
		    set_str(o, "role", e->role) || set_str(o, "algorithm", ART_KEY_ALGORITHM) ||
		    set_time(o, "not_before", e->view.not_before) ||
		    (e->view.not_after && set_time(o, "not_after", e->view.not_after)) ||
		    (e->view.added && set_time(o, "added", e->view.added)) ||
		    set_str(o, "public_key", pem))
			goto oom;
		free(pem);
		pem = NULL;
	}
	for (i = 0; i < kr->nrev; i++) {
		const kr_revocation *r = kr->revoked[i];

		o = json_object();
		if (!o || json_array_append_new(revoked, o) || set_str(o, "id", r->id) ||
		    set_time(o, "at", r->view.at) || set_str(o, "reason", r->reason))
			goto oom;
	}
	text = json_dumps(root, JSON_INDENT(2));
	if (!text)
		goto oom;
	b.max = ART_KEYRING_MAX_BYTES;
	if ((rc = art_buf_puts(&b, text)) < 0 || (rc = art_buf_puts(&b, "\n")) < 0) {
		if (rc == AF_ETOOBIG)
			rc = art_error_set(AF_ETOOBIG, "the keyring would be larger than %u bytes: "
					   "remove expired keys", ART_KEYRING_MAX_BYTES);
		goto cleanup;
	}
	*out = art_buf_detach(&b);
	goto cleanup;
oom:
	rc = art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	art_buf_free(&b);
	free(text);
	free(pem);
	json_decref(root);
	return rc;
}

int art_keyring_save(const art_keyring *kr, const char *path)
{
	char *text = NULL;
	int rc;

	if ((rc = art_keyring_to_json(&text, kr)) < 0)
		return rc;
	rc = art_file_write_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}
