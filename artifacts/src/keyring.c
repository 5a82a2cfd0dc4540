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
#include "art/sig.h"
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

typedef struct kr_sig {
	char keyid[ART_SHA256_HEX_LEN + 1];
	uint8_t *sig;
	size_t len;
} kr_sig;

struct art_keyring {
	kr_entry **entries;
	size_t n, cap;
	kr_revocation **revoked;
	size_t nrev, caprev;
	/* The signed document (format v2). Any mutation drops the signatures:
	 * a changed keyring is a new version that root keys must sign again. */
	uint64_t version;            /* 0 until first signed */
	time_t expires;              /* 0 until first signed */
	unsigned root_threshold;     /* 0 = not set (1 when signed) */
	kr_sig sigs[ART_KEYRING_MAX_SIGNATURES];
	size_t nsigs;                /* 0 = unsigned */
	char *signed_text;           /* canonical JSON of "signed", as signed */
	size_t signed_len;
};

static const char *const roles[] = {
	ART_ROLE_TEMPLATE_SIGNER, ART_ROLE_BUILDER, ART_ROLE_RELEASE_MANAGER, ART_ROLE_ROOT
};

static void sigs_clear(art_keyring *kr)
{
	size_t i;

	for (i = 0; i < kr->nsigs; i++)
		free(kr->sigs[i].sig);
	kr->nsigs = 0;
	free(kr->signed_text);
	kr->signed_text = NULL;
	kr->signed_len = 0;
}

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
	sigs_clear(kr);
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
				     "unknown role '%s': use template-signer, builder, release-manager or root",
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
	if ((rc = entry_push(kr, pub, role, not_before, not_after, art_time_now())) < 0)
		return rc;
	sigs_clear(kr);
	return 0;
}

int art_keyring_revoke(art_keyring *kr, const char *keyid, time_t at, const char *reason)
{
	const art_keyring_revocation *rev;
	char when[21];
	int rc;

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
	if ((rc = revocation_push(kr, keyid, at, reason)) < 0)
		return rc;
	sigs_clear(kr);
	return 0;
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
				     "template-signer, builder, release-manager, root");
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
				     "%s: %s: unknown role '%.40s' (expected template-signer, builder, "
				     "release-manager or root)", name, where, role);
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

/* ---- signatures (format v2) --------------------------------------------- */

static bool is_root_entry(const kr_entry *e)
{
	return strcmp(e->role, ART_ROLE_ROOT) == 0;
}

/* Root entries of kr that are not revoked in kr. */
static size_t usable_roots(const art_keyring *kr)
{
	size_t i, n = 0;

	for (i = 0; i < kr->n; i++)
		if (is_root_entry(kr->entries[i]) &&
		    !art_keyring_find_revocation(kr, kr->entries[i]->id))
			n++;
	return n;
}

unsigned art_keyring_root_threshold(const art_keyring *kr)
{
	return kr->root_threshold ? kr->root_threshold : 1;
}

/*
 * How many distinct usable root keys of `roots` made a valid signature over
 * doc's signed text. Root entries are unique by id (entries are unique by
 * (id, role)), so each key counts once however often it signed.
 */
static int root_votes(size_t *votes, const art_keyring *roots, const art_keyring *doc)
{
	uint8_t *pae = NULL;
	size_t pae_len = 0, i, j;
	int rc;

	*votes = 0;
	if (!doc->nsigs || !doc->signed_text)
		return 0;
	if ((rc = art_sig_pae(&pae, &pae_len, ART_KEYRING_TYPE, doc->signed_text,
			      doc->signed_len)) < 0)
		return rc;
	for (i = 0; i < roots->n; i++) {
		const kr_entry *e = roots->entries[i];

		if (!is_root_entry(e) || art_keyring_find_revocation(roots, e->id))
			continue;
		for (j = 0; j < doc->nsigs; j++) {
			if (strcmp(doc->sigs[j].keyid, e->id) != 0)
				continue;
			rc = art_key_verify(e->key, pae, pae_len, doc->sigs[j].sig, doc->sigs[j].len);
			if (rc == 0) {
				(*votes)++;
				break;
			}
			if (rc != AF_ESIGNATURE)
				goto cleanup;
		}
	}
	rc = 0;
cleanup:
	free(pae);
	return rc;
}

bool art_keyring_is_signed(const art_keyring *kr)
{
	return kr->nsigs > 0;
}

uint64_t art_keyring_version(const art_keyring *kr)
{
	return kr->version;
}

time_t art_keyring_expires(const art_keyring *kr)
{
	return kr->expires;
}

int art_keyring_set_root_threshold(art_keyring *kr, unsigned threshold)
{
	if (threshold < 1 || threshold > ART_KEYRING_MAX_SIGNATURES)
		return art_error_set(AF_EINVAL, "the root threshold must be 1 to %u, not %u",
				     ART_KEYRING_MAX_SIGNATURES, threshold);
	kr->root_threshold = threshold;
	sigs_clear(kr);
	return 0;
}

/* Self-consistency of a signed keyring: enough root keys, and enough of
 * them signed it. */
static int self_check(const art_keyring *kr, const char *name)
{
	size_t roots = usable_roots(kr), votes;
	unsigned need = art_keyring_root_threshold(kr);
	int rc;

	if (roots < need)
		return art_error_set(AF_ECORRUPT,
				     "%s: keyring version %llu needs %u root signature%s but trusts "
				     "only %zu unrevoked root key%s", name,
				     (unsigned long long)kr->version, need, need == 1 ? "" : "s",
				     roots, roots == 1 ? "" : "s");
	if ((rc = root_votes(&votes, kr, kr)) < 0)
		return rc;
	if (votes < need)
		return art_error_set(AF_ESIGNATURE,
				     "%s: keyring version %llu carries valid signatures of %zu of the %u "
				     "root key%s it needs: it was edited after signing, forged, or "
				     "signed with too few of its root keys; restore it, or make the "
				     "change with agentfactory trust and the root key%s",
				     name, (unsigned long long)kr->version, votes, need,
				     need == 1 ? "" : "s", need == 1 ? "" : "s");
	return 0;
}

static int body_json(json_t **out, const art_keyring *kr, bool v2);

int art_keyring_sign(art_keyring *kr, uint64_t version, time_t expires,
		     const art_key *const *keys, size_t nkeys)
{
	json_t *body = NULL;
	uint8_t *pae = NULL;
	size_t pae_len, i, j;
	int rc;

	if (version < 1 || !time_in_range(expires) || expires == 0)
		return art_error_set(AF_EINVAL, "a signed keyring needs a version >= 1 and an "
				     "expiry time between 1970 and 9999");
	if (nkeys < 1 || nkeys > ART_KEYRING_MAX_SIGNATURES)
		return art_error_set(AF_EINVAL, "a keyring is signed by 1 to %u root keys",
				     ART_KEYRING_MAX_SIGNATURES);
	for (i = 0; i < nkeys; i++) {
		if (!art_key_is_private(keys[i]))
			return art_error_set(AF_EINVAL, "signing a keyring needs the private root "
					     "key, not the public half (key %s)", art_key_id(keys[i]));
		for (j = 0; j < i; j++)
			if (strcmp(art_key_id(keys[i]), art_key_id(keys[j])) == 0)
				return art_error_set(AF_EINVAL, "root key %s is given twice",
						     art_key_id(keys[i]));
	}
	sigs_clear(kr);
	kr->version = version;
	kr->expires = expires;
	if (!kr->root_threshold)
		kr->root_threshold = 1;
	if ((rc = body_json(&body, kr, true)) < 0)
		goto cleanup;
	if (!(kr->signed_text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	kr->signed_len = strlen(kr->signed_text);
	if ((rc = art_sig_pae(&pae, &pae_len, ART_KEYRING_TYPE, kr->signed_text,
			      kr->signed_len)) < 0)
		goto cleanup;
	for (i = 0; i < nkeys; i++) {
		memcpy(kr->sigs[i].keyid, art_key_id(keys[i]), ART_SHA256_HEX_LEN + 1);
		if ((rc = art_key_sign(&kr->sigs[i].sig, &kr->sigs[i].len, keys[i], pae,
				       pae_len)) < 0)
			goto cleanup;
		kr->nsigs = i + 1;
	}
	rc = 0;
cleanup:
	if (rc < 0)
		sigs_clear(kr);
	free(pae);
	json_decref(body);
	return rc;
}

int art_keyring_check(const art_keyring *kr, const char *name, time_t now)
{
	char when[21];
	int rc;

	if (!kr->nsigs)
		return art_error_set(AF_ESIGNATURE,
				     "%s: the keyring is not signed (format %s): anyone who can write "
				     "the file could have changed it. Sign it once with its root key: "
				     "agentfactory trust init --keyring %s --root-key ROOT.key", name,
				     ART_KEYRING_FORMAT, name);
	if ((rc = self_check(kr, name)) < 0)
		return rc;
	if (now > kr->expires) {
		art_time_format(when, kr->expires);
		return art_error_set(AF_EEXPIRED,
				     "%s: keyring version %llu expired at %s: renew it with "
				     "agentfactory trust renew --keyring %s --root-key ROOT.key", name,
				     (unsigned long long)kr->version, when, name);
	}
	return 0;
}

int art_keyring_check_successor(const art_keyring *cur, const art_keyring *next,
				const char *name, time_t now)
{
	size_t votes;
	unsigned need = art_keyring_root_threshold(cur);
	int rc;

	if (!next->nsigs)
		return art_keyring_check(next, name, now);
	if (cur->nsigs && next->version <= cur->version)
		return art_error_set(AF_EVERSION,
				     "%s: keyring version %llu is not newer than version %llu in "
				     "force: an older (or a replayed) keyring is never taken back",
				     name, (unsigned long long)next->version,
				     (unsigned long long)cur->version);
	if ((rc = root_votes(&votes, cur, next)) < 0)
		return rc;
	if (votes < need)
		return art_error_set(AF_ESIGNATURE,
				     "%s: keyring version %llu is signed by %zu of the %u root key%s "
				     "of version %llu in force: a new root must be signed by the "
				     "current one (agentfactory trust ... --root-key CURRENT-ROOT.key)",
				     name, (unsigned long long)next->version, votes, need,
				     need == 1 ? "" : "s", (unsigned long long)cur->version);
	return art_keyring_check(next, name, now);
}

/* ---- parsing ------------------------------------------------------------- */

static int get_uint(uint64_t *out, json_t *obj, const char *field, uint64_t min, uint64_t max,
		    const char *name)
{
	json_t *v = json_object_get(obj, field);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max)
		return art_error_set(AF_ECORRUPT, "%s: field '%s' must be an integer from %llu to "
				     "%llu", name, field, (unsigned long long)min,
				     (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* The keyring content: v1 (the whole file) or v2 (the "signed" object). */
static int parse_body(art_keyring **out, json_t *root, const char *name, bool v2)
{
	static const char *const allowed_v1[] = {"format", "keys", "revoked", NULL};
	static const char *const allowed_v2[] = {"format", "version", "expires", "root_threshold",
						 "keys", "revoked", NULL};
	const char *want = v2 ? ART_KEYRING_FORMAT_V2 : ART_KEYRING_FORMAT;
	art_keyring *kr = NULL;
	json_t *keys, *revoked, *item;
	const char *format;
	uint64_t u;
	size_t i;
	int rc;

	*out = NULL;
	if (!json_is_object(root))
		return art_error_set(AF_ECORRUPT, "%s: a keyring must be a JSON object", name);
	if ((rc = check_fields(root, v2 ? allowed_v2 : allowed_v1, name,
			       v2 ? "signed" : "top level")) < 0 ||
	    (rc = get_str(&format, root, "format", true, name, v2 ? "signed" : "top level")) < 0)
		return rc;
	if (strcmp(format, want) != 0)
		return art_error_set(strncmp(format, "agentfactory-keyring/", 21) == 0 ?
				     AF_EVERSION : AF_ECORRUPT,
				     "%s: unsupported keyring format '%.60s' here (this version reads "
				     "%s as a signed document {\"signed\", \"signatures\"} and %s)",
				     name, format, ART_KEYRING_FORMAT_V2, ART_KEYRING_FORMAT);
	keys = json_object_get(root, "keys");
	revoked = json_object_get(root, "revoked");
	if (!json_is_array(keys) || (revoked && !json_is_array(revoked)))
		return art_error_set(AF_ECORRUPT, "%s: 'keys' (required) and 'revoked' must be arrays",
				     name);
	if ((rc = art_keyring_new(&kr)) < 0)
		return rc;
	if (v2) {
		if ((rc = get_uint(&kr->version, root, "version", 1, (uint64_t)1 << 53, name)) < 0 ||
		    (rc = get_uint(&u, root, "root_threshold", 1, ART_KEYRING_MAX_SIGNATURES,
				   name)) < 0 ||
		    (rc = get_time(&kr->expires, root, "expires", true, name, "signed")) < 0)
			goto cleanup;
		kr->root_threshold = (unsigned)u;
	}
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
	return rc;
}

static int parse_signatures(art_keyring *kr, json_t *sigs, const char *name)
{
	json_t *item;
	const char *keyid, *b64;
	char *again = NULL;
	size_t i;
	int rc;

	if (!json_is_array(sigs) || json_array_size(sigs) < 1 ||
	    json_array_size(sigs) > ART_KEYRING_MAX_SIGNATURES)
		return art_error_set(AF_ECORRUPT, "%s: 'signatures' must be an array of 1 to %u "
				     "signatures", name, ART_KEYRING_MAX_SIGNATURES);
	json_array_foreach(sigs, i, item) {
		char where[48];
		kr_sig *sg = &kr->sigs[i];

		snprintf(where, sizeof(where), "signatures[%zu]", i);
		if (!json_is_object(item) || json_object_size(item) != 2 ||
		    (rc = get_str(&keyid, item, "keyid", true, name, where)) < 0 ||
		    (rc = get_str(&b64, item, "sig", true, name, where)) < 0 || !keyid_valid(keyid))
			return art_error_set(AF_ECORRUPT, "%s: %s must be {\"keyid\": 64 hex digits, "
					     "\"sig\": base64}", name, where);
		if ((rc = art_base64_decode(&sg->sig, &sg->len, b64)) < 0 ||
		    (rc = art_base64_encode(&again, sg->sig, sg->len)) < 0 ||
		    strcmp(again, b64) != 0) {
			free(again);
			free(sg->sig);
			sg->sig = NULL;
			if (rc == AF_ENOMEM) /* out of memory is not a bad file */
				return rc;
			return art_error_set(AF_ECORRUPT, "%s: %s: 'sig' is not canonical base64",
					     name, where);
		}
		free(again);
		again = NULL;
		memcpy(sg->keyid, keyid, sizeof(sg->keyid));
		kr->nsigs = i + 1;
	}
	return 0;
}

int art_keyring_parse(art_keyring **out, const char *data, size_t len, const char *name)
{
	art_keyring *kr = NULL;
	json_error_t jerr;
	json_t *root = NULL, *body;
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
	body = json_object_get(root, "signed");
	if (!body) { /* format v1: unsigned */
		rc = parse_body(&kr, root, name, false);
		goto done;
	}
	if (json_object_size(root) != 2 || !json_object_get(root, "signatures")) {
		rc = art_error_set(AF_ECORRUPT, "%s: a signed keyring has exactly the fields "
				   "'signed' and 'signatures'", name);
		goto cleanup;
	}
	if ((rc = parse_body(&kr, body, name, true)) < 0 ||
	    (rc = parse_signatures(kr, json_object_get(root, "signatures"), name)) < 0)
		goto cleanup;
	/* Verified over the canonical form of what was read, never re-derived
	 * from the parsed keyring (an ignored difference could hide there). */
	if (!(kr->signed_text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	kr->signed_len = strlen(kr->signed_text);
	rc = self_check(kr, name);
done:
	if (rc < 0)
		goto cleanup;
	*out = kr;
	kr = NULL;
cleanup:
	art_keyring_free(kr);
	json_decref(root);
	return rc;
}

int art_keyring_load_unchecked(art_keyring **out, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = art_file_read(&data, &len, path, ART_KEYRING_MAX_BYTES);
	if (rc == AF_ENOTFOUND)
		return art_error_set(rc, "%s: no such keyring file (create one with agentfactory "
				     "trust init --keyring %s --root-key ROOT.key)", path, path);
	if (rc == AF_ETOOBIG)
		return art_error_set(rc, "%s: keyring is larger than %u bytes", path,
				     ART_KEYRING_MAX_BYTES);
	if (rc < 0)
		return rc;
	rc = art_keyring_parse(out, data, len, path);
	free(data);
	return rc;
}

int art_keyring_load(art_keyring **out, const char *path)
{
	int rc;

	if ((rc = art_keyring_load_unchecked(out, path)) < 0)
		return rc;
	if ((rc = art_keyring_check(*out, path, art_time_now())) < 0) {
		art_keyring_free(*out);
		*out = NULL;
	}
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

/* The content as a JSON object: the whole v1 file, or v2's "signed". */
static int body_json(json_t **out, const art_keyring *kr, bool v2)
{
	json_t *root = NULL, *keys, *revoked, *o;
	char *pem = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	/* json_*_set_new and _append_new take the reference even when they fail. */
	root = json_object();
	if (!root || set_str(root, "format", v2 ? ART_KEYRING_FORMAT_V2 : ART_KEYRING_FORMAT) ||
	    json_object_set_new(root, "keys", keys = json_array()) ||
	    json_object_set_new(root, "revoked", revoked = json_array()))
		goto oom;
	if (v2 && (json_object_set_new(root, "version", json_integer((json_int_t)kr->version)) ||
		   set_time(root, "expires", kr->expires) ||
		   json_object_set_new(root, "root_threshold",
				       json_integer(art_keyring_root_threshold(kr)))))
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
	*out = root;
	root = NULL;
	goto cleanup;
oom:
	rc = art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	free(pem);
	json_decref(root);
	return rc;
}

/* The signed document: the signed text as signed, and its signatures. */
static int signed_json(json_t **out, const art_keyring *kr)
{
	json_t *root = json_object(), *body, *sigs = NULL, *o;
	char *b64 = NULL;
	size_t i;

	*out = NULL;
	body = json_loadb(kr->signed_text, kr->signed_len, JSON_REJECT_DUPLICATES, NULL);
	if (!root || !body || json_object_set_new(root, "signed", body) ||
	    json_object_set_new(root, "signatures", sigs = json_array()))
		goto oom;
	for (i = 0; i < kr->nsigs; i++) {
		if (art_base64_encode(&b64, kr->sigs[i].sig, kr->sigs[i].len) < 0)
			goto oom;
		o = json_object();
		if (!o || json_array_append_new(sigs, o) || set_str(o, "keyid", kr->sigs[i].keyid) ||
		    set_str(o, "sig", b64))
			goto oom;
		free(b64);
		b64 = NULL;
	}
	*out = root;
	return 0;
oom:
	free(b64);
	json_decref(root);
	return art_error_set(AF_ENOMEM, "out of memory");
}

int art_keyring_to_json(char **out, const art_keyring *kr)
{
	json_t *root = NULL;
	char *text = NULL;
	art_buf b = ART_BUF_INIT;
	int rc;

	*out = NULL;
	if ((rc = kr->nsigs ? signed_json(&root, kr) : body_json(&root, kr, false)) < 0)
		return rc;
	text = json_dumps(root, JSON_INDENT(2) | (kr->nsigs ? JSON_SORT_KEYS : 0));
	if (!text) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	b.max = ART_KEYRING_MAX_BYTES;
	if ((rc = art_buf_puts(&b, text)) < 0 || (rc = art_buf_puts(&b, "\n")) < 0) {
		if (rc == AF_ETOOBIG)
			rc = art_error_set(AF_ETOOBIG, "the keyring would be larger than %u bytes: "
					   "remove expired keys", ART_KEYRING_MAX_BYTES);
		goto cleanup;
	}
	*out = art_buf_detach(&b);
cleanup:
	art_buf_free(&b);
	free(text);
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
