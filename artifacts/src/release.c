/*
 * release.c - releases and channels (see art/release.h, docs/releases.md).
 *
 * Invariants:
 *  - every write is one LMDB write transaction (art_store__write) holding
 *    the action's records and its audit entry; all the rules are checked
 *    before the first mdb_put, and a refusal commits only its "refused"
 *    audit entry;
 *  - records are canonical JSON (compact, keys sorted) inside DSSE envelopes
 *    signed by release-manager keys; nothing in a record is used by a reader
 *    before its signatures verified against the caller's keyring at the
 *    caller's time;
 *  - threshold counting is by distinct key id of signatures that verify:
 *    a key listed twice, or two signatures by one key, count once;
 *  - release numbers grow by one per store; a pin ("pin/name@version") is
 *    written once and never changed (store.c refuses to replace a pinned
 *    artifact with another manifest).
 */
#include "art/release.h"

#include "art/audit.h"
#include "art/error.h"
#include "art/sig.h"
#include "art/util.h"
#include "audit_internal.h"
#include "store_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_KEY_LEN 20
#define REL_PREFIX "n/"
#define PIN_PREFIX "pin/"
#define HEAD_PREFIX "head/"
#define HIST_PREFIX "hist/"
#define REF_MAX 200
#define KEY_MAX 256
#define MSG_MAX 1024

/* ---- small helpers ------------------------------------------------------- */

bool art_channel_name_valid(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > ART_CHANNEL_NAME_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static MDB_val sval(const char *s)
{
	MDB_val v;

	v.mv_data = (void *)s;
	v.mv_size = strlen(s);
	return v;
}

/* Prefix the calling thread's message: "<context>: <message>". */
static int with_context(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int with_context(int rc, const char *fmt, ...)
{
	char ctx[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	return art_error_prefix(rc, "%s", ctx);
}
static bool time_parse_exact(time_t *out, const char *s)
{
	char again[21];

	if (!s || strlen(s) != 20 || s[10] != 'T' || s[19] != 'Z' || art_time_parse(out, s) < 0)
		return false;
	art_time_format(again, *out);
	return strcmp(again, s) == 0;
}

static bool digest_valid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != ART_DIGEST_STR_LEN || strncmp(s, ART_DIGEST_PREFIX, 7) != 0)
		return false;
	for (i = 7; i < ART_DIGEST_STR_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void num_key(char *out, size_t size, const char *prefix, uint64_t n)
{
	snprintf(out, size, "%s%020llu", prefix, (unsigned long long)n);
}

static bool num_from(uint64_t *out, const char *p, size_t len)
{
	uint64_t v = 0;
	size_t i;

	if (len != NUM_KEY_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* A non-negative JSON integer member. */
static bool get_uint(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Whether o has exactly the n given fields. */
static bool exact_fields(json_t *o, const char *const *fields, size_t n)
{
	size_t i;

	if (!json_is_object(o) || json_object_size(o) != n)
		return false;
	for (i = 0; i < n; i++)
		if (!json_object_get(o, fields[i]))
			return false;
	return true;
}

/* Canonical bytes of o; NULL on OOM (message set). */
static char *canonical(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	if (!text)
		art_error_set(AF_ENOMEM, "out of memory serialising a record");
	return text;
}

static bool is_canonical(json_t *o, const uint8_t *bytes, size_t len)
{
	char *again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	bool same = again && strlen(again) == len && memcmp(again, bytes, len) == 0;

	free(again);
	return same;
}

static char *dup_error(void)
{
	return strdup(art_error_last());
}

/* ---- records ------------------------------------------------------------- */

static void release_clear_pins(art_release *r)
{
	size_t i;

	for (i = 0; r->pins && i < r->n_pins; i++) {
		free(r->pins[i].name);
		free(r->pins[i].version);
	}
	free(r->pins);
	r->pins = NULL;
	r->n_pins = 0;
}

void art_release_free(art_release *r)
{
	if (!r)
		return;
	release_clear_pins(r);
	free(r->verify_error);
	free(r);
}

void art_channel_free(art_channel *c)
{
	if (!c)
		return;
	free(c->signers);
	free(c->verify_error);
	free(c);
}

void art_release_list_free(art_release **list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		art_release_free(list[i]);
	free(list);
}

void art_channel_list_free(art_channel **list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		art_channel_free(list[i]);
	free(list);
}

const art_release_pin *art_release_find(const art_release *r, const char *name)
{
	size_t i;

	for (i = 0; r && name && i < r->n_pins; i++)
		if (strcmp(r->pins[i].name, name) == 0)
			return &r->pins[i];
	return NULL;
}

static int cmp_pin(const void *a, const void *b)
{
	return strcmp(((const art_release_pin *)a)->name, ((const art_release_pin *)b)->name);
}

/* The canonical release payload. Pins must be sorted and unique by name. */
static char *release_payload(uint64_t number, time_t created, time_t expires,
			     const art_release_pin *pins, size_t n)
{
	json_t *o = json_object(), *arts = json_array(), *a;
	char c[21], e[21], *text = NULL;
	size_t i;

	art_time_format(c, created);
	art_time_format(e, expires);
	if (!o || !arts)
		goto oom;
	for (i = 0; i < n; i++) {
		a = json_object();
		if (json_array_append_new(arts, a) ||
		    json_object_set_new(a, "manifest_digest", json_string(pins[i].manifest_digest)) ||
		    json_object_set_new(a, "name", json_string(pins[i].name)) ||
		    json_object_set_new(a, "version", json_string(pins[i].version)))
			goto oom;
	}
	if (json_object_set_new(o, "artifacts", arts) ||
	    (arts = NULL, json_object_set_new(o, "created", json_string(c))) ||
	    json_object_set_new(o, "expires", json_string(e)) ||
	    json_object_set_new(o, "format", json_string(ART_RELEASE_FORMAT)) ||
	    json_object_set_new(o, "number", json_integer((json_int_t)number)))
		goto oom;
	text = canonical(o);
	json_decref(o);
	return text;
oom:
	json_decref(arts);
	json_decref(o);
	art_error_set(AF_ENOMEM, "out of memory building a release");
	return NULL;
}

/* Parse a release payload strictly into r (number, times, pins, digest). */
static int release_parse(art_release *r, const uint8_t *bytes, size_t len)
{
	static const char *const fields[] = {"artifacts", "created", "expires", "format", "number"};
	static const char *const pin_fields[] = {"manifest_digest", "name", "version"};
	json_t *o = json_loadb((const char *)bytes, len, JSON_REJECT_DUPLICATES, NULL), *arts, *a;
	const char *format, *name, *version, *digest;
	size_t i;
	int rc = AF_ECORRUPT;

	release_clear_pins(r);
	format = json_string_value(json_object_get(o, "format"));
	if (format && strcmp(format, ART_RELEASE_FORMAT) != 0 &&
	    strncmp(format, "agentfactory-release/", 21) == 0) {
		rc = art_error_set(AF_EVERSION, "release format '%.40s' is not supported (this "
				   "build reads %s)", format, ART_RELEASE_FORMAT);
		goto cleanup;
	}
	arts = json_object_get(o, "artifacts");
	if (!exact_fields(o, fields, 5) || !format || strcmp(format, ART_RELEASE_FORMAT) != 0 ||
	    !json_is_array(arts) ||
	    !get_uint(o, "number", &r->number) || r->number == 0 ||
	    !time_parse_exact(&r->created, json_string_value(json_object_get(o, "created"))) ||
	    !time_parse_exact(&r->expires, json_string_value(json_object_get(o, "expires"))) ||
	    json_array_size(arts) == 0 || json_array_size(arts) > ART_RELEASE_MAX_ARTIFACTS) {
		art_error_set(rc, "malformed release record");
		goto cleanup;
	}
	if (!(r->pins = calloc(json_array_size(arts), sizeof(*r->pins)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory reading a release");
		goto cleanup;
	}
	json_array_foreach(arts, i, a) {
		name = json_string_value(json_object_get(a, "name"));
		version = json_string_value(json_object_get(a, "version"));
		digest = json_string_value(json_object_get(a, "manifest_digest"));
		if (!exact_fields(a, pin_fields, 3) || !art_manifest_name_valid(name) ||
		    !art_manifest_version_valid(version) || !digest_valid(digest) ||
		    (i > 0 && strcmp(r->pins[i - 1].name, name) >= 0)) {
			art_error_set(rc, "malformed release record: artifacts[%zu] (each needs a "
				      "name, version and manifest_digest, sorted by unique name)", i);
			goto cleanup;
		}
		r->pins[i].name = strdup(name);
		r->pins[i].version = strdup(version);
		r->n_pins = i + 1;
		if (!r->pins[i].name || !r->pins[i].version) {
			rc = art_error_set(AF_ENOMEM, "out of memory reading a release");
			goto cleanup;
		}
		memcpy(r->pins[i].manifest_digest, digest, ART_DIGEST_STR_LEN + 1);
	}
	if (!is_canonical(o, bytes, len)) {
		art_error_set(rc, "release record is not in canonical form");
		goto cleanup;
	}
	art_manifest_digest(r->digest, bytes, len);
	rc = 0;
cleanup:
	json_decref(o);
	return rc;
}

static const char *const channel_actions[] = {"promote", "rollback", "set-threshold"};

static char *channel_payload(const art_channel *c)
{
	json_t *o = json_object();
	char when[21], *text = NULL;

	art_time_format(when, c->time);
	if (!o || json_object_set_new(o, "action", json_string(c->action)) ||
	    json_object_set_new(o, "channel", json_string(c->name)) ||
	    json_object_set_new(o, "format", json_string(ART_CHANNEL_FORMAT)) ||
	    json_object_set_new(o, "previous", json_integer((json_int_t)c->previous)) ||
	    json_object_set_new(o, "release", json_integer((json_int_t)c->release)) ||
	    json_object_set_new(o, "release_digest", json_string(c->release_digest)) ||
	    json_object_set_new(o, "required", json_integer((json_int_t)c->required)) ||
	    json_object_set_new(o, "seq", json_integer((json_int_t)c->seq)) ||
	    json_object_set_new(o, "threshold", json_integer((json_int_t)c->threshold)) ||
	    json_object_set_new(o, "time", json_string(when))) {
		json_decref(o);
		art_error_set(AF_ENOMEM, "out of memory building a channel record");
		return NULL;
	}
	text = canonical(o);
	json_decref(o);
	return text;
}

static int channel_parse(art_channel *c, const uint8_t *bytes, size_t len)
{
	static const char *const fields[] = {"action", "channel", "format", "previous", "release",
					     "release_digest", "required", "seq", "threshold",
					     "time"};
	json_t *o = json_loadb((const char *)bytes, len, JSON_REJECT_DUPLICATES, NULL);
	const char *format, *name, *action, *digest;
	uint64_t threshold = 0, required = 0;
	size_t i;
	bool known = false;
	int rc = AF_ECORRUPT;

	format = json_string_value(json_object_get(o, "format"));
	if (format && strcmp(format, ART_CHANNEL_FORMAT) != 0 &&
	    strncmp(format, "agentfactory-channel/", 21) == 0) {
		rc = art_error_set(AF_EVERSION, "channel record format '%.40s' is not supported "
				   "(this build reads %s)", format, ART_CHANNEL_FORMAT);
		goto cleanup;
	}
	name = json_string_value(json_object_get(o, "channel"));
	action = json_string_value(json_object_get(o, "action"));
	digest = json_string_value(json_object_get(o, "release_digest"));
	for (i = 0; action && i < sizeof(channel_actions) / sizeof(*channel_actions); i++)
		known |= strcmp(action, channel_actions[i]) == 0;
	if (!exact_fields(o, fields, 10) || !format || strcmp(format, ART_CHANNEL_FORMAT) != 0 ||
	    !art_channel_name_valid(name) || !known ||
	    !digest || !get_uint(o, "seq", &c->seq) || c->seq == 0 ||
	    !get_uint(o, "release", &c->release) || !get_uint(o, "previous", &c->previous) ||
	    !get_uint(o, "threshold", &threshold) || !get_uint(o, "required", &required) ||
	    threshold < 1 || threshold > ART_CHANNEL_MAX_THRESHOLD || required < 1 ||
	    required > ART_CHANNEL_MAX_THRESHOLD ||
	    (c->release ? !digest_valid(digest) : digest[0] != '\0') ||
	    !time_parse_exact(&c->time, json_string_value(json_object_get(o, "time")))) {
		art_error_set(rc, "malformed channel record");
		goto cleanup;
	}
	if (!is_canonical(o, bytes, len)) {
		art_error_set(rc, "channel record is not in canonical form");
		goto cleanup;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->action, sizeof(c->action), "%s", action);
	snprintf(c->release_digest, sizeof(c->release_digest), "%s", digest);
	c->threshold = (unsigned)threshold;
	c->required = (unsigned)required;
	rc = 0;
cleanup:
	json_decref(o);
	return rc;
}

/* ---- envelopes ----------------------------------------------------------- */

/* The payload an envelope carries and the key ids it claims, unverified. */
static int envelope_claims(uint8_t **payload, size_t *len, char (**ids)[ART_SHA256_HEX_LEN + 1],
			   size_t *n_ids, const char *env, size_t env_len)
{
	json_t *root = json_loadb(env, env_len, JSON_REJECT_DUPLICATES, NULL), *sigs, *sig;
	const char *b64 = json_string_value(json_object_get(root, "payload")), *id;
	size_t i;
	int rc = 0;

	*payload = NULL;
	*len = 0;
	if (ids)
		*ids = NULL;
	if (n_ids)
		*n_ids = 0;
	sigs = json_object_get(root, "signatures");
	if (env_len > ART_SIG_ENVELOPE_MAX || !b64 || !json_is_array(sigs) ||
	    (rc = art_base64_decode(payload, len, b64)) < 0) {
		/* out of memory is not the envelope's fault (the message is set) */
		if (rc != AF_ENOMEM)
			rc = art_error_set(AF_ECORRUPT, "malformed signature envelope");
		goto cleanup;
	}
	if (ids && json_array_size(sigs) &&
	    !(*ids = calloc(json_array_size(sigs), sizeof(**ids)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	json_array_foreach(sigs, i, sig) {
		size_t j;
		bool dup = false;

		id = json_string_value(json_object_get(sig, "keyid"));
		if (!ids || !id || strlen(id) != ART_SHA256_HEX_LEN)
			continue;
		for (j = 0; j < *n_ids; j++)
			dup |= strcmp((*ids)[j], id) == 0;
		if (!dup)
			memcpy((*ids)[(*n_ids)++], id, ART_SHA256_HEX_LEN + 1);
	}
cleanup:
	if (rc < 0) {
		free(*payload);
		*payload = NULL;
		*len = 0;
		if (ids) {
			free(*ids);
			*ids = NULL;
		}
	}
	json_decref(root);
	return rc;
}

/* How far a failed signature got: the further, the more telling its error. */
static int failure_rank(int rc)
{
	switch (rc) {
	case AF_ENOTFOUND: return 1;
	case AF_EDENIED: return 2;
	case AF_EEXPIRED: return 3;
	case AF_EREVOKED: return 4;
	case AF_ESIGNATURE: return 5;
	default: return 0;
	}
}

/* Signatures of an envelope that verified, by distinct key id. */
typedef struct sig_count {
	char (*ids)[ART_SHA256_HEX_LEN + 1];
	size_t n;
	int worst_rc;          /* most telling failure of the others, 0 if none */
	char worst_msg[MSG_MAX];
} sig_count;

/*
 * Verify an envelope's signatures one by one (release-manager role, at now)
 * and count the distinct key ids that verify. Fails (with art_sig's error)
 * only when none verifies or the envelope is malformed; otherwise the
 * verified payload is returned and the caller compares count->n with what
 * it needs.
 */
static int verify_signatures(uint8_t **payload, size_t *payload_len, sig_count *count,
			     const art_keyring *kr, const char *type, const char *env,
			     size_t env_len, time_t now)
{
	json_t *root = NULL, *sigs, *sig, *single = NULL, *one;
	art_sig_info info;
	uint8_t *p = NULL;
	size_t p_len, i, j;
	char *text = NULL;
	int rc;

	memset(count, 0, sizeof(*count));
	rc = art_sig_verify_payload(&info, payload, payload_len, kr, ART_ROLE_RELEASE_MANAGER,
				    type, env, env_len, now);
	if (rc < 0)
		return rc;
	root = json_loadb(env, env_len, JSON_REJECT_DUPLICATES, NULL);
	sigs = json_object_get(root, "signatures");
	if (!(count->ids = calloc(json_array_size(sigs) + 1, sizeof(*count->ids)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory verifying signatures");
		goto cleanup;
	}
	json_array_foreach(sigs, i, sig) {
		bool seen = false;

		single = json_object();
		one = json_array();
		if (!single || !one ||
		    json_object_set(single, "payloadType", json_object_get(root, "payloadType")) ||
		    json_object_set(single, "payload", json_object_get(root, "payload")) ||
		    json_object_set_new(single, "signatures", one) ||
		    json_array_append(one, sig) || !(text = json_dumps(single, JSON_COMPACT))) {
			if (!single)
				json_decref(one);
			rc = art_error_set(AF_ENOMEM, "out of memory verifying signatures");
			goto cleanup;
		}
		rc = art_sig_verify_payload(&info, &p, &p_len, kr, ART_ROLE_RELEASE_MANAGER, type,
					    text, strlen(text), now);
		free(text);
		text = NULL;
		free(p);
		p = NULL;
		json_decref(single);
		single = NULL;
		if (rc == 0) {
			for (j = 0; j < count->n; j++)
				seen |= strcmp(count->ids[j], info.keyid) == 0;
			if (!seen)
				memcpy(count->ids[count->n++], info.keyid, sizeof(info.keyid));
			continue;
		}
		if (failure_rank(rc) == 0)
			goto cleanup; /* ENOMEM, ECRYPTO: no verdict */
		if (failure_rank(rc) > failure_rank(count->worst_rc)) {
			count->worst_rc = rc;
			snprintf(count->worst_msg, sizeof(count->worst_msg), "%s", art_error_last());
		}
	}
	rc = 0;
cleanup:
	free(text);
	json_decref(single);
	json_decref(root);
	if (rc < 0) {
		free(*payload);
		*payload = NULL;
		*payload_len = 0;
		free(count->ids);
		count->ids = NULL;
		count->n = 0;
	}
	return rc;
}

/* The error for "n distinct valid signatures, need more". */
static int threshold_error(const sig_count *count, unsigned need, const char *what)
{
	if (count->worst_rc)
		return art_error_set(count->worst_rc, "%s: %zu distinct valid release-manager "
				     "signature%s of %u required; another signature fails: %s",
				     what, count->n, count->n == 1 ? "" : "s", need,
				     count->worst_msg);
	return art_error_set(AF_EDENIED, "%s: %zu distinct valid release-manager signature%s of "
			     "%u required (a key counts once, however often it signed)", what,
			     count->n, count->n == 1 ? "" : "s", need);
}

/* Sign payload with every key and merge the signatures into one envelope. */
static int multi_sign(char **out, const art_key *const *keys, size_t n, const char *type,
		      const char *payload)
{
	json_t *merged = NULL, *part = NULL;
	char *env = NULL, *text = NULL;
	art_buf b = ART_BUF_INIT;
	size_t i;
	int rc;

	*out = NULL;
	for (i = 0; i < n; i++) {
		if ((rc = art_sig_sign_payload(&env, keys[i], type, payload, strlen(payload))) < 0)
			goto cleanup;
		part = json_loads(env, 0, NULL);
		free(env);
		env = NULL;
		if (!part) {
			rc = art_error_set(AF_ENOMEM, "out of memory signing");
			goto cleanup;
		}
		if (!merged) {
			merged = part;
		} else {
			if (json_array_append(json_object_get(merged, "signatures"),
					      json_array_get(json_object_get(part, "signatures"), 0))) {
				rc = art_error_set(AF_ENOMEM, "out of memory signing");
				goto cleanup;
			}
			json_decref(part);
		}
		part = NULL;
	}
	if (!merged || !(text = json_dumps(merged, JSON_INDENT(2)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory signing");
		goto cleanup;
	}
	b.max = ART_SIG_ENVELOPE_MAX;
	if ((rc = art_buf_puts(&b, text)) < 0 || (rc = art_buf_puts(&b, "\n")) < 0) {
		if (rc == AF_ETOOBIG)
			rc = art_error_set(AF_ETOOBIG, "the signed record would exceed %u bytes "
					   "(too many artifacts or signatures)", ART_SIG_ENVELOPE_MAX);
		goto cleanup;
	}
	*out = art_buf_detach(&b);
	rc = 0;
cleanup:
	art_buf_free(&b);
	free(text);
	free(env);
	json_decref(part);
	json_decref(merged);
	return rc;
}

/* ---- reading records from a transaction ---------------------------------- */

/* A copy of the value under key in db; AF_ENOTFOUND when absent. */
static int get_copy(const art_store *s, MDB_txn *txn, art_store__db db, const char *key,
		    char **out, size_t *len)
{
	MDB_val k = sval(key), v;
	int mrc = mdb_get(txn, art_store__dbi(s, db), &k, &v);

	*out = NULL;
	*len = 0;
	if (mrc == MDB_NOTFOUND)
		return AF_ENOTFOUND;
	if (mrc)
		return art_store__lmdb_error(s, mrc, "cannot read a release record");
	if (v.mv_size > ART_SIG_ENVELOPE_MAX)
		return art_error_set(AF_ECORRUPT, "record '%.80s' is over %u bytes", key,
				     ART_SIG_ENVELOPE_MAX);
	if (!(*out = malloc(v.mv_size + 1)))
		return art_error_set(AF_ENOMEM, "out of memory");
	memcpy(*out, v.mv_data, v.mv_size);
	(*out)[v.mv_size] = '\0';
	*len = v.mv_size;
	return 0;
}

/*
 * Release `number` from txn. With kr: its signature (one release-manager key
 * valid at now) and, when check_expiry, now <= expires; expect_digest (may
 * be NULL) must match. Without kr: as claimed.
 */
static int release_read(art_release **out, const art_store *s, MDB_txn *txn,
			const art_keyring *kr, uint64_t number, time_t now, bool check_expiry,
			const char *expect_digest)
{
	art_release *r = NULL;
	art_sig_info info;
	char key[KEY_MAX], *env = NULL, when[21];
	char (*ids)[ART_SHA256_HEX_LEN + 1] = NULL;
	uint8_t *payload = NULL;
	size_t env_len, payload_len, n_ids = 0;
	int rc;

	*out = NULL;
	num_key(key, sizeof(key), REL_PREFIX, number);
	rc = get_copy(s, txn, ART_STORE__DB_RELEASES, key, &env, &env_len);
	if (rc == AF_ENOTFOUND)
		rc = art_error_set(AF_ENOTFOUND, "release %llu does not exist (see agentfactory "
				   "status)", (unsigned long long)number);
	if (rc < 0)
		goto cleanup;
	if (!(r = calloc(1, sizeof(*r)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (kr) {
		rc = art_sig_verify_payload(&info, &payload, &payload_len, kr,
					    ART_ROLE_RELEASE_MANAGER, ART_RELEASE_PAYLOAD_TYPE, env,
					    env_len, now);
		if (rc < 0) {
			rc = with_context(rc, "release %llu", (unsigned long long)number);
			goto cleanup;
		}
		memcpy(r->signer, info.keyid, sizeof(r->signer));
	} else {
		if ((rc = envelope_claims(&payload, &payload_len, &ids, &n_ids, env, env_len)) < 0) {
			rc = with_context(rc, "release %llu", (unsigned long long)number);
			goto cleanup;
		}
		if (n_ids)
			memcpy(r->signer, ids[0], sizeof(r->signer));
	}
	if ((rc = release_parse(r, payload, payload_len)) < 0) {
		rc = with_context(rc, "release %llu", (unsigned long long)number);
		goto cleanup;
	}
	if (r->number != number) {
		rc = art_error_set(AF_ESIGNATURE, "the record stored as release %llu is release %llu "
				   "(moved or swapped in the store)", (unsigned long long)number,
				   (unsigned long long)r->number);
		goto cleanup;
	}
	if (expect_digest && strcmp(expect_digest, r->digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "release %llu is not the one the channel record "
				   "signed (digest %.19s..., expected %.19s...): it was replaced",
				   (unsigned long long)number, r->digest, expect_digest);
		goto cleanup;
	}
	if (kr && check_expiry && now > r->expires) {
		art_time_format(when, r->expires);
		rc = art_error_set(AF_EEXPIRED, "release %llu expired at %s (freeze protection): "
				   "create a fresh release (agentfactory release create --from %llu) "
				   "and promote it", (unsigned long long)number, when,
				   (unsigned long long)number);
		goto cleanup;
	}
	r->verified = kr != NULL;
	*out = r;
	r = NULL;
	rc = 0;
cleanup:
	art_release_free(r);
	free(ids);
	free(payload);
	free(env);
	return rc;
}

/* The stored channel record under key, as claimed (not verified). */
static int channel_read_claimed(art_channel **out, const art_store *s, MDB_txn *txn,
				const char *key, char **env_out, size_t *env_len_out)
{
	art_channel *c = NULL;
	uint8_t *payload = NULL;
	size_t payload_len, env_len;
	char *env = NULL;
	int rc;

	*out = NULL;
	if ((rc = get_copy(s, txn, ART_STORE__DB_CHANNELS, key, &env, &env_len)) < 0)
		return rc;
	if (!(c = calloc(1, sizeof(*c)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = envelope_claims(&payload, &payload_len, &c->signers, &c->n_signers, env,
				  env_len)) < 0 ||
	    (rc = channel_parse(c, payload, payload_len)) < 0)
		goto cleanup;
	*out = c;
	c = NULL;
	if (env_out) {
		*env_out = env;
		*env_len_out = env_len;
		env = NULL;
	}
cleanup:
	art_channel_free(c);
	free(payload);
	free(env);
	return rc;
}

/*
 * The newest record of channel's history newer than head_seq, if any
 * (*newer = its seq, 0 when none). The history is written in the same
 * transaction as every head, so a history record newer than the head means
 * the head was put back to an older, genuinely signed record: a replay.
 */
static int history_newer(uint64_t *newer, const art_store *s, MDB_txn *txn, const char *channel,
			 uint64_t head_seq)
{
	char prefix[KEY_MAX], key[KEY_MAX + 32];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t plen;
	int mrc, rc = 0;

	*newer = 0;
	plen = (size_t)snprintf(prefix, sizeof(prefix), HIST_PREFIX "%s/", channel);
	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, ART_STORE__DB_CHANNELS), &cur)) != 0)
		return art_store__lmdb_error(s, mrc, "cannot read the channel history");
	/* The last key of this channel's history: one past it, then back. */
	snprintf(key, sizeof(key), "%s%s", prefix, "99999999999999999999~");
	k = sval(key);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (mrc == 0 || mrc == MDB_NOTFOUND)
		mrc = mdb_cursor_get(cur, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
	if (mrc == 0 && k.mv_size == plen + NUM_KEY_LEN && memcmp(k.mv_data, prefix, plen) == 0) {
		const char *d = (const char *)k.mv_data + plen;
		uint64_t seq = 0;
		size_t i;

		for (i = 0; i < NUM_KEY_LEN && d[i] >= '0' && d[i] <= '9'; i++)
			seq = seq * 10 + (uint64_t)(d[i] - '0');
		if (i == NUM_KEY_LEN && seq > head_seq)
			*newer = seq;
	} else if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the channel history");
	}
	mdb_cursor_close(cur);
	return rc;
}

static int replay_error(const char *channel, uint64_t head_seq, uint64_t newer)
{
	return art_error_set(AF_EDENIED, "channel %s: the current record is %llu but the "
			     "channel's history holds record %llu: the current record was put "
			     "back to an older one (a replay). Nothing is served from it; find "
			     "who wrote the store (agentfactory audit log) and restore it from a "
			     "backup, or promote again once restored", channel,
			     (unsigned long long)head_seq, (unsigned long long)newer);
}

int art_release__head_seq(uint64_t *seq, const art_store *s, MDB_txn *txn, const char *channel)
{
	art_channel *head = NULL;
	char key[KEY_MAX];
	int rc;

	*seq = 0;
	snprintf(key, sizeof(key), HEAD_PREFIX "%s", channel);
	if ((rc = channel_read_claimed(&head, s, txn, key, NULL, NULL)) < 0)
		return rc;
	*seq = head->seq;
	art_channel_free(head);
	return 0;
}

/*
 * A channel record's envelope checked for channel: the signatures, the
 * payload, the channel it names (stored: the record read from the store
 * under that name; else one offered, e.g. by a registry) and the threshold
 * (its own or min_threshold, the higher). *out carries its signers; the
 * caller marks it verified once its own checks passed.
 */
static int channel_check_envelope(art_channel **out, const art_keyring *kr, const char *channel,
				  const char *env, size_t len, time_t now, unsigned min_threshold,
				  bool stored)
{
	art_channel *c = NULL;
	sig_count count;
	uint8_t *payload = NULL;
	size_t payload_len;
	unsigned need;
	char what[128];
	int rc;

	*out = NULL;
	memset(&count, 0, sizeof(count));
	rc = verify_signatures(&payload, &payload_len, &count, kr, ART_CHANNEL_PAYLOAD_TYPE, env,
			       len, now);
	if (rc < 0) {
		rc = with_context(rc, "channel %s", channel);
		goto cleanup;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = channel_parse(c, payload, payload_len)) < 0) {
		rc = with_context(rc, "channel %s", channel);
		goto cleanup;
	}
	if (strcmp(c->name, channel) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "%s channel %s is signed for channel %s%s",
				   stored ? "the record stored for" : "a record offered for", channel,
				   c->name, stored ? " (moved or swapped in the store)" : "");
		goto cleanup;
	}
	need = c->required > min_threshold ? c->required : min_threshold;
	if (count.n < need) {
		snprintf(what, sizeof(what), "channel %s (record %llu)", channel,
			 (unsigned long long)c->seq);
		rc = threshold_error(&count, need, what);
		goto cleanup;
	}
	c->signers = count.ids;
	c->n_signers = count.n;
	count.ids = NULL;
	*out = c;
	c = NULL;
	rc = 0;
cleanup:
	art_channel_free(c);
	free(count.ids);
	free(payload);
	return rc;
}

/*
 * The verified current record of channel and (when it has one) its verified,
 * unexpired release, from txn.
 */
static int channel_resolve_txn(const art_store *s, MDB_txn *txn, const art_keyring *kr,
			       const char *channel, time_t now,
			       const art_release_resolve_opts *opts, art_release **out_release,
			       art_channel **out_channel)
{
	art_channel *c = NULL;
	art_release *r = NULL;
	char key[KEY_MAX], *env = NULL;
	size_t env_len;
	int rc;

	*out_release = NULL;
	if (out_channel)
		*out_channel = NULL;
	snprintf(key, sizeof(key), HEAD_PREFIX "%s", channel);
	rc = get_copy(s, txn, ART_STORE__DB_CHANNELS, key, &env, &env_len);
	if (rc == AF_ENOTFOUND)
		rc = art_error_set(AF_ENOTFOUND, "no channel named '%s' in the store (promote a "
				   "release to create it)", channel);
	if (rc < 0)
		goto cleanup;
	if ((rc = channel_check_envelope(&c, kr, channel, env, env_len, now,
					 opts ? opts->min_threshold : 0, true)) < 0)
		goto cleanup;
	{
		uint64_t newer;

		if ((rc = history_newer(&newer, s, txn, channel, c->seq)) < 0)
			goto cleanup;
		if (newer) {
			rc = replay_error(channel, c->seq, newer);
			goto cleanup;
		}
	}
	if (opts && c->seq < opts->min_seq) {
		rc = art_error_set(AF_EDENIED, "channel %s: record %llu is older than record %llu "
				   "already accepted: a replayed record is refused", channel,
				   (unsigned long long)c->seq, (unsigned long long)opts->min_seq);
		goto cleanup;
	}
	c->verified = true;
	if (c->release == 0) {
		rc = art_error_set(AF_ENOTFOUND, "channel %s has no release yet (promote one)",
				   channel);
		goto cleanup;
	}
	if ((rc = release_read(&r, s, txn, kr, c->release, now, true, c->release_digest)) < 0) {
		rc = with_context(rc, "channel %s", channel);
		goto cleanup;
	}
	*out_release = r;
	r = NULL;
	rc = 0;
cleanup:
	/* The record is handed back even when its release fails (for listings). */
	if (out_channel && c && c->verified)
		*out_channel = c;
	else
		art_channel_free(c);
	art_release_free(r);
	free(env);
	return rc;
}

int art_release_channel_resolve_ex(const art_store *s, const art_keyring *kr,
				   const char *channel, time_t now,
				   const art_release_resolve_opts *opts, art_release **out,
				   art_channel **out_channel)
{
	art_channel *c = NULL;
	MDB_txn *txn;
	int rc;

	*out = NULL;
	if (out_channel)
		*out_channel = NULL;
	if (!kr)
		return art_error_set(AF_EINVAL, "a keyring is required to resolve a channel");
	if (!art_channel_name_valid(channel))
		return art_error_set(AF_EINVAL, "invalid channel name '%.80s' (use [a-z][a-z0-9-]*)",
				     channel ? channel : "");
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = channel_resolve_txn(s, txn, kr, channel, now, opts, out, &c);
	art_store__read_end(s, txn);
	if (rc == 0 && out_channel)
		*out_channel = c;
	else
		art_channel_free(c);
	return rc;
}

int art_release_channel_resolve(const art_store *s, const art_keyring *kr, const char *channel,
				time_t now, art_release **out)
{
	return art_release_channel_resolve_ex(s, kr, channel, now, NULL, out, NULL);
}

int art_release_load_artifact(art_verified_artifact **out, const art_store *s,
			      const art_keyring *kr, const art_release *r, const char *name,
			      time_t now, const char *const *parts, size_t n_parts)
{
	const art_release_pin *pin = art_release_find(r, name);
	art_verified_artifact *va = NULL;
	int rc;

	*out = NULL;
	if (!pin)
		return art_error_set(AF_ENOTFOUND, "release %llu has no agent named '%.80s'",
				     r ? (unsigned long long)r->number : 0ull, name ? name : "");
	rc = art_store_load_verified_parts(&va, s, kr, pin->name, pin->version, now, parts,
					   parts ? n_parts : 0);
	if (rc < 0)
		return rc;
	if (strcmp(va->manifest_digest, pin->manifest_digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "%s@%s in the store is manifest %.19s..., release "
				   "%llu pins %.19s...: refusing to serve another build", pin->name,
				   pin->version, va->manifest_digest, (unsigned long long)r->number,
				   pin->manifest_digest);
		art_verified_artifact_free(va);
		return rc;
	}
	*out = va;
	return 0;
}

int art_release_get(art_release **out, const art_store *s, const art_keyring *kr,
		    uint64_t number, time_t now)
{
	MDB_txn *txn;
	int rc;

	*out = NULL;
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = release_read(out, s, txn, kr, number, now, true, NULL);
	art_store__read_end(s, txn);
	return rc;
}

/* ---- listings ------------------------------------------------------------ */

typedef struct ptr_list {
	void **items;
	size_t n, cap;
} ptr_list;

static int ptr_push(ptr_list *l, void *p)
{
	void **grown;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;

		if (!(grown = realloc(l->items, cap * sizeof(*grown))))
			return art_error_set(AF_ENOMEM, "out of memory listing");
		l->items = grown;
		l->cap = cap;
	}
	l->items[l->n++] = p;
	return 0;
}

/*
 * Visit every key of db that starts with prefix, in key order. fn returns
 * 0 to go on, < 0 to stop with that error.
 */
typedef int (*visit_fn)(void *ctx, MDB_txn *txn, const MDB_val *k, const MDB_val *v);

static int visit_prefix(const art_store *s, MDB_txn *txn, art_store__db db, const char *prefix,
			visit_fn fn, void *ctx)
{
	MDB_cursor *cur = NULL;
	MDB_val k = sval(prefix), v;
	size_t plen = strlen(prefix);
	int mrc, rc = 0;

	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, db), &cur)) != 0)
		return art_store__lmdb_error(s, mrc, "cannot list records");
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if ((rc = fn(ctx, txn, &k, &v)) < 0)
			break;
	}
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = art_store__lmdb_error(s, mrc, "cannot list records");
	mdb_cursor_close(cur);
	return rc;
}

typedef struct list_ctx {
	const art_store *s;
	const art_keyring *kr;
	time_t now;
	ptr_list list;
	const char *channel; /* history */
} list_ctx;

static int visit_release(void *vctx, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
	list_ctx *ctx = vctx;
	art_release *r = NULL;
	uint64_t number;
	int rc;

	(void)v;
	if (!num_from(&number, (const char *)k->mv_data + 2, k->mv_size - 2))
		return 0; /* not a release key */
	rc = release_read(&r, ctx->s, txn, ctx->kr, number, ctx->now, true, NULL);
	if (rc == AF_ENOMEM)
		return rc;
	if (rc < 0) {
		/* Show what the record claims, with why it fails. */
		char *why = dup_error();

		if (release_read(&r, ctx->s, txn, NULL, number, ctx->now, false, NULL) < 0 &&
		    !(r = calloc(1, sizeof(*r)))) {
			free(why);
			return art_error_set(AF_ENOMEM, "out of memory listing");
		}
		r->number = number;
		r->verified = false;
		r->verify_rc = rc;
		r->verify_error = why;
	}
	if ((rc = ptr_push(&ctx->list, r)) < 0)
		art_release_free(r);
	return rc;
}

int art_release_list(art_release ***out, size_t *n, const art_store *s, const art_keyring *kr,
		     time_t now)
{
	list_ctx ctx = {s, kr, now, {NULL, 0, 0}, NULL};
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = visit_prefix(s, txn, ART_STORE__DB_RELEASES, REL_PREFIX, visit_release, &ctx);
	art_store__read_end(s, txn);
	if (rc < 0) {
		art_release_list_free((art_release **)ctx.list.items, ctx.list.n);
		return rc;
	}
	art_error_clear();
	*out = (art_release **)ctx.list.items;
	*n = ctx.list.n;
	return 0;
}

/* Whether rc says a stored record itself is bad (listed as such), rather
 * than that reading it failed (out of memory, I/O: the listing fails). */
static bool record_fault(int rc)
{
	return rc == AF_ECORRUPT || rc == AF_EVERSION;
}

static int visit_channel(void *vctx, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
	list_ctx *ctx = vctx;
	art_channel *c = NULL;
	art_release *r = NULL;
	char name[ART_CHANNEL_NAME_MAX + 1], key[KEY_MAX];
	size_t plen = strlen(HEAD_PREFIX);
	int rc = 0;

	(void)v;
	if (k->mv_size - plen > ART_CHANNEL_NAME_MAX)
		return 0;
	memcpy(name, (const char *)k->mv_data + plen, k->mv_size - plen);
	name[k->mv_size - plen] = '\0';
	if (!art_channel_name_valid(name))
		return 0;
	if (ctx->kr) {
		rc = channel_resolve_txn(ctx->s, txn, ctx->kr, name, ctx->now, NULL, &r, &c);
		art_release_free(r);
		if (rc == AF_ENOMEM) {
			art_channel_free(c);
			return rc;
		}
	}
	if (!ctx->kr || rc < 0) {
		char *why = rc < 0 ? dup_error() : NULL;
		art_channel *claimed = NULL;
		int claimed_rc;

		snprintf(key, sizeof(key), HEAD_PREFIX "%s", name);
		/* A malformed record is listed empty; a failure to read it (out
		 * of memory, I/O) fails the listing. */
		claimed_rc = channel_read_claimed(&claimed, ctx->s, txn, key, NULL, NULL);
		if (claimed_rc < 0 && !record_fault(claimed_rc)) {
			free(why);
			art_channel_free(c);
			return claimed_rc;
		}
		if (claimed_rc < 0 && !(claimed = calloc(1, sizeof(*claimed)))) {
			free(why);
			art_channel_free(c);
			return art_error_set(AF_ENOMEM, "out of memory listing");
		}
		if (c) {
			/* The record verified but its release did not: keep the verified signers. */
			free(claimed->signers);
			claimed->signers = c->signers;
			claimed->n_signers = c->n_signers;
			c->signers = NULL;
			art_channel_free(c);
		}
		c = claimed;
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->verified = false;
		c->verify_rc = rc;
		c->verify_error = why;
		if (rc < 0 && !why) {
			art_channel_free(c);
			return art_error_set(AF_ENOMEM, "out of memory listing");
		}
	}
	if ((rc = ptr_push(&ctx->list, c)) < 0)
		art_channel_free(c);
	return rc;
}

int art_channel_list(art_channel ***out, size_t *n, const art_store *s, const art_keyring *kr,
		     time_t now)
{
	list_ctx ctx = {s, kr, now, {NULL, 0, 0}, NULL};
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = visit_prefix(s, txn, ART_STORE__DB_CHANNELS, HEAD_PREFIX, visit_channel, &ctx);
	art_store__read_end(s, txn);
	if (rc < 0) {
		art_channel_list_free((art_channel **)ctx.list.items, ctx.list.n);
		return rc;
	}
	art_error_clear();
	*out = (art_channel **)ctx.list.items;
	*n = ctx.list.n;
	return 0;
}

static int visit_history(void *vctx, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
	list_ctx *ctx = vctx;
	art_channel *c = NULL;
	char key[KEY_MAX];
	int rc;

	(void)v;
	if (k->mv_size >= sizeof(key))
		return 0;
	memcpy(key, k->mv_data, k->mv_size);
	key[k->mv_size] = '\0';
	rc = channel_read_claimed(&c, ctx->s, txn, key, NULL, NULL);
	if (rc < 0 && !record_fault(rc))
		return rc; /* out of memory, I/O: not the record's fault */
	if (rc < 0) {
		char *why = dup_error();

		if (!(c = calloc(1, sizeof(*c)))) {
			free(why);
			return art_error_set(AF_ENOMEM, "out of memory listing");
		}
		snprintf(c->name, sizeof(c->name), "%s", ctx->channel);
		c->verify_rc = rc;
		c->verify_error = why;
	}
	if ((rc = ptr_push(&ctx->list, c)) < 0)
		art_channel_free(c);
	return rc;
}

static int history_txn(ptr_list *out, const art_store *s, MDB_txn *txn, const char *channel)
{
	list_ctx ctx = {s, NULL, 0, {NULL, 0, 0}, channel};
	char prefix[KEY_MAX];
	int rc;

	snprintf(prefix, sizeof(prefix), HIST_PREFIX "%s/", channel);
	rc = visit_prefix(s, txn, ART_STORE__DB_CHANNELS, prefix, visit_history, &ctx);
	if (rc < 0) {
		art_channel_list_free((art_channel **)ctx.list.items, ctx.list.n);
		return rc;
	}
	*out = ctx.list;
	return 0;
}

int art_channel_history(art_channel ***out, size_t *n, const art_store *s, const char *channel)
{
	ptr_list list = {NULL, 0, 0};
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*n = 0;
	if (!art_channel_name_valid(channel))
		return art_error_set(AF_EINVAL, "invalid channel name '%.80s'", channel ? channel : "");
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = history_txn(&list, s, txn, channel);
	art_store__read_end(s, txn);
	if (rc < 0)
		return rc;
	if (list.n == 0) {
		free(list.items);
		return art_error_set(AF_ENOTFOUND, "no channel named '%s' in the store", channel);
	}
	*out = (art_channel **)list.items;
	*n = list.n;
	return 0;
}

/* ---- writing: shared pieces ---------------------------------------------- */

/* The state a write body keeps; reset at the start of every run. */
typedef struct write_ctx {
	/* inputs */
	const art_keyring *kr;
	const art_key *keys[ART_SIG_MAX_SIGNATURES]; /* distinct, by key id */
	size_t n_keys;
	char actor[ART_SIG_MAX_SIGNATURES * (ART_SHA256_HEX_LEN + 1) + 16];
	time_t now;
	const char *action;
	char subject[KEY_MAX];
	/* refusal found before the transaction (artifact verification) */
	int pre_rc;
	char pre_msg[MSG_MAX];
	/* outputs */
	int refused_rc;
	char refused_msg[MSG_MAX];
	json_t *details; /* audit details of this run (owned) */
} write_ctx;

static int cmp_key_ids(const void *a, const void *b)
{
	return strcmp(art_key_id(*(const art_key *const *)a), art_key_id(*(const art_key *const *)b));
}

/* Distinct keys (by id), sorted; the actor string. */
static int keys_prepare(write_ctx *w, const art_key *const *keys, size_t n)
{
	size_t i, j;
	bool dup;

	w->n_keys = 0;
	w->actor[0] = '\0';
	if (!keys || n == 0)
		return art_error_set(AF_EINVAL, "at least one release-manager key is required");
	for (i = 0; i < n; i++) {
		if (!keys[i] || !art_key_is_private(keys[i]))
			return art_error_set(AF_EINVAL, "signing needs private keys");
		for (dup = false, j = 0; j < w->n_keys; j++)
			dup |= strcmp(art_key_id(w->keys[j]), art_key_id(keys[i])) == 0;
		if (dup)
			continue;
		if (w->n_keys == ART_SIG_MAX_SIGNATURES)
			return art_error_set(AF_EINVAL, "at most %u distinct keys can sign",
					     ART_SIG_MAX_SIGNATURES);
		w->keys[w->n_keys++] = keys[i];
	}
	qsort(w->keys, w->n_keys, sizeof(*w->keys), cmp_key_ids);
	for (i = 0; i < w->n_keys; i++) {
		size_t len = strlen(w->actor);

		snprintf(w->actor + len, sizeof(w->actor) - len, "%s%s", i ? "," : "",
			 art_key_id(w->keys[i]));
	}
	return 0;
}

/* Each key must be a release-manager key of kr valid at now. */
static int keys_check(const write_ctx *w)
{
	const art_key *trusted;
	size_t i;
	int rc;

	for (i = 0; i < w->n_keys; i++) {
		rc = art_keyring_lookup(&trusted, w->kr, art_key_id(w->keys[i]),
					ART_ROLE_RELEASE_MANAGER, w->now);
		if (rc < 0)
			return with_context(rc, "release-manager key %s cannot sign",
					    art_key_id(w->keys[i]));
	}
	return 0;
}

static json_t *signers_json(const write_ctx *w)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < w->n_keys; i++)
		json_array_append_new(a, json_string(art_key_id(w->keys[i])));
	return a;
}

/* Append this run's audit entry; details gets "reason" on a refusal. */
static int audit_write(art_store *s, MDB_txn *txn, write_ctx *w, const char *outcome)
{
	art_audit_event ev;
	char *details = NULL;
	int rc;

	if (!w->details)
		w->details = json_object();
	if (!w->details || json_object_set_new(w->details, "signers", signers_json(w)) ||
	    (strcmp(outcome, ART_AUDIT_REFUSED) == 0 &&
	     json_object_set_new(w->details, "reason", json_string(w->refused_msg))) ||
	    !(details = json_dumps(w->details, JSON_COMPACT | JSON_SORT_KEYS)))
		return art_error_set(AF_ENOMEM, "out of memory writing the audit entry");
	ev.action = w->action;
	ev.actor = w->actor[0] ? w->actor : "unsigned";
	ev.subject = w->subject;
	ev.outcome = outcome;
	ev.details_json = details;
	ev.signers = w->keys; /* each release manager signs the entry of its action */
	ev.n_signers = w->n_keys;
	rc = art_audit__append(s, txn, &ev, w->now, NULL);
	free(details);
	return rc;
}

/*
 * Record a refusal found inside the body: keep its message and rc, append
 * the "refused" entry (the only write of this transaction) and commit.
 */
static int refuse(art_store *s, MDB_txn *txn, write_ctx *w, int rc)
{
	w->refused_rc = rc;
	snprintf(w->refused_msg, sizeof(w->refused_msg), "%s", art_error_last());
	return audit_write(s, txn, w, ART_AUDIT_REFUSED);
}

static void write_reset(write_ctx *w)
{
	w->refused_rc = 0;
	w->refused_msg[0] = '\0';
	json_decref(w->details);
	w->details = json_object();
}

/* Run body; report a refusal it recorded as the call's error. */
static int write_run(art_store *s, write_ctx *w, art_store__write_fn body)
{
	int rc = art_store__write(s, body, w);

	json_decref(w->details);
	w->details = NULL;
	if (rc < 0)
		return rc;
	if (w->refused_rc)
		return art_error_set(w->refused_rc, "%s", w->refused_msg);
	return 0;
}

/* ---- create -------------------------------------------------------------- */

typedef struct create_ctx {
	write_ctx w;
	const char *const *refs; /* as asked (for the audit entry) */
	size_t n_refs;
	art_release_pin *pins; /* sorted by name */
	size_t n_pins;
	time_t expires;
	uint64_t number;       /* out */
	char digest[ART_DIGEST_STR_LEN + 1];
	char *envelope;        /* out (for the returned release) */
} create_ctx;

/* The highest release number in the store (0 if none). */
static int last_release(const art_store *s, MDB_txn *txn, uint64_t *out)
{
	MDB_cursor *cur = NULL;
	MDB_val k = sval("n0"), v; /* '0' follows '/': the first key after every "n/..." */
	int mrc, rc = 0;

	*out = 0;
	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, ART_STORE__DB_RELEASES), &cur)) != 0)
		return art_store__lmdb_error(s, mrc, "cannot read the releases");
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	mrc = mdb_cursor_get(cur, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
	if (mrc == 0 && k.mv_size == 2 + NUM_KEY_LEN && memcmp(k.mv_data, REL_PREFIX, 2) == 0) {
		if (!num_from(out, (const char *)k.mv_data + 2, NUM_KEY_LEN))
			rc = art_error_set(AF_ECORRUPT, "store %s: a malformed release key",
					   art_store_path(s));
	} else if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the releases");
	}
	mdb_cursor_close(cur);
	return rc;
}

static int create_body(art_store *s, MDB_txn *txn, void *vctx)
{
	create_ctx *c = vctx;
	write_ctx *w = &c->w;
	char key[KEY_MAX], ref[REF_MAX], digest[ART_DIGEST_STR_LEN + 1], *payload = NULL;
	char *pin_text = NULL, *existing = NULL;
	json_t *arts, *pin = NULL;
	size_t i, len;
	MDB_val k, v;
	int mrc, rc;

	write_reset(w);
	free(c->envelope);
	c->envelope = NULL;
	arts = json_array();
	for (i = 0; arts && !c->w.pre_rc && i < c->n_pins; i++) {
		snprintf(ref, sizeof(ref), "%s@%s", c->pins[i].name, c->pins[i].version);
		json_array_append_new(arts, json_string(ref));
	}
	/* a refusal before the pins were known records what was asked for */
	for (i = 0; arts && c->w.pre_rc && i < c->n_refs; i++)
		json_array_append_new(arts, json_string(c->refs[i]));
	json_object_set_new(w->details, "artifacts", arts);
	if (c->w.pre_rc) {
		art_error_set(c->w.pre_rc, "%s", c->w.pre_msg);
		return refuse(s, txn, w, c->w.pre_rc);
	}
	if ((rc = keys_check(w)) < 0)
		return refuse(s, txn, w, rc);
	for (i = 0; i < c->n_pins; i++) {
		const art_release_pin *p = &c->pins[i];

		snprintf(ref, sizeof(ref), "%s@%s", p->name, p->version);
		/* The artifact verified before this transaction must still be there. */
		rc = art_store__record_digest(s, txn, ref, digest);
		if (rc == AF_ENOMEM)
			return rc;
		if (rc < 0 || strcmp(digest, p->manifest_digest) != 0)
			return refuse(s, txn, w, art_error_set(AF_ECORRUPT, "%s changed while the "
							       "release was being made: try again",
							       ref));
		snprintf(key, sizeof(key), PIN_PREFIX "%s", ref);
		rc = get_copy(s, txn, ART_STORE__DB_RELEASES, key, &existing, &len);
		if (rc == AF_ENOTFOUND)
			continue;
		if (rc < 0)
			return rc;
		pin = json_loads(existing, JSON_REJECT_DUPLICATES, NULL);
		free(existing);
		existing = NULL;
		if (!json_string_value(json_object_get(pin, "manifest_digest"))) {
			json_decref(pin);
			return art_error_set(AF_ECORRUPT, "store %s: the release pin of %s is damaged",
					     art_store_path(s), ref);
		}
		if (strcmp(json_string_value(json_object_get(pin, "manifest_digest")),
			   p->manifest_digest) != 0) {
			rc = art_error_set(AF_EEXISTS, "%s was released as manifest %.19s... (release "
					   "%lld); the store now has %.19s...: the same version with "
					   "different content is refused, bump the version", ref,
					   json_string_value(json_object_get(pin, "manifest_digest")),
					   (long long)json_integer_value(json_object_get(pin, "release")),
					   p->manifest_digest);
			json_decref(pin);
			return refuse(s, txn, w, rc);
		}
		json_decref(pin);
		pin = NULL;
	}
	if ((rc = last_release(s, txn, &c->number)) < 0)
		return rc;
	c->number++;
	snprintf(w->subject, sizeof(w->subject), "release/%llu", (unsigned long long)c->number);
	if (!(payload = release_payload(c->number, w->now, c->expires, c->pins, c->n_pins)))
		return AF_ENOMEM;
	art_manifest_digest(c->digest, payload, strlen(payload));
	rc = multi_sign(&c->envelope, w->keys, w->n_keys, ART_RELEASE_PAYLOAD_TYPE, payload);
	free(payload);
	if (rc == AF_ETOOBIG)
		return refuse(s, txn, w, rc);
	if (rc < 0)
		return rc;
	/* writes: the release, new pins, the audit entry */
	num_key(key, sizeof(key), REL_PREFIX, c->number);
	k = sval(key);
	v.mv_data = c->envelope;
	v.mv_size = strlen(c->envelope);
	if ((mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_RELEASES), &k, &v,
			   MDB_NOOVERWRITE)) != 0)
		return art_store__lmdb_error(s, mrc, "cannot write the release");
	for (i = 0; i < c->n_pins; i++) {
		snprintf(key, sizeof(key), PIN_PREFIX "%s@%s", c->pins[i].name, c->pins[i].version);
		pin = json_object();
		if (!pin || json_object_set_new(pin, "manifest_digest",
						json_string(c->pins[i].manifest_digest)) ||
		    json_object_set_new(pin, "release", json_integer((json_int_t)c->number)) ||
		    !(pin_text = canonical(pin))) {
			json_decref(pin);
			return art_error_set(AF_ENOMEM, "out of memory writing a pin");
		}
		json_decref(pin);
		pin = NULL;
		k = sval(key);
		v = sval(pin_text);
		mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_RELEASES), &k, &v,
			      MDB_NOOVERWRITE);
		free(pin_text);
		pin_text = NULL;
		if (mrc && mrc != MDB_KEYEXIST) /* an earlier release pinned the same digest */
			return art_store__lmdb_error(s, mrc, "cannot write a pin");
	}
	json_object_set_new(w->details, "release", json_integer((json_int_t)c->number));
	json_object_set_new(w->details, "digest", json_string(c->digest));
	{
		char e[21];

		art_time_format(e, c->expires);
		json_object_set_new(w->details, "expires", json_string(e));
	}
	return audit_write(s, txn, w, ART_AUDIT_OK);
}

/* Resolve and verify every ref outside the write transaction. */
static int create_collect(create_ctx *c, const art_store *s, const art_keyring *kr,
			  const char *const *refs, size_t n_refs, time_t now)
{
	art_verified_artifact *va = NULL;
	char name[REF_MAX], *latest = NULL;
	const char *at, *version;
	size_t i, j;
	int rc;

	if (!(c->pins = calloc(n_refs + 1, sizeof(*c->pins))))
		return art_error_set(AF_ENOMEM, "out of memory");
	for (i = 0; i < n_refs; i++) {
		bool dup = false;

		at = refs[i] ? strchr(refs[i], '@') : NULL;
		snprintf(name, sizeof(name), "%.*s",
			 (int)(at ? (size_t)(at - refs[i]) : (refs[i] ? strlen(refs[i]) : 0)),
			 refs[i] ? refs[i] : "");
		version = at ? at + 1 : NULL;
		if (!version) {
			free(latest);
			latest = NULL;
			if ((rc = art_store_latest(&latest, s, name)) < 0)
				goto cleanup;
			version = latest;
		}
		for (j = 0; j < c->n_pins; j++) {
			if (strcmp(c->pins[j].name, name) != 0)
				continue;
			if (strcmp(c->pins[j].version, version) != 0) {
				rc = art_error_set(AF_EDENIED, "a release holds one version per agent: "
						   "%s@%s and %s@%s", name, c->pins[j].version, name,
						   version);
				goto cleanup;
			}
			dup = true;
		}
		if (dup)
			continue;
		/* Only a verifiable artifact is released: builder signature, every part. */
		if ((rc = art_store_load_verified(&va, s, kr, name, version, now)) < 0)
			goto cleanup;
		c->pins[c->n_pins].name = strdup(name);
		c->pins[c->n_pins].version = strdup(version);
		memcpy(c->pins[c->n_pins].manifest_digest, va->manifest_digest,
		       ART_DIGEST_STR_LEN + 1);
		c->n_pins++;
		art_verified_artifact_free(va);
		va = NULL;
		if (!c->pins[c->n_pins - 1].name || !c->pins[c->n_pins - 1].version) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (c->n_pins > ART_RELEASE_MAX_ARTIFACTS) {
		rc = art_error_set(AF_ETOOBIG, "a release holds at most %u artifacts",
				   ART_RELEASE_MAX_ARTIFACTS);
		goto cleanup;
	}
	qsort(c->pins, c->n_pins, sizeof(*c->pins), cmp_pin);
	rc = 0;
cleanup:
	art_verified_artifact_free(va);
	free(latest);
	return rc;
}

int art_release_create(art_release **out, art_store *s, const art_keyring *kr,
		       const art_key *key, const char *const *refs, size_t n_refs,
		       time_t expires, time_t now)
{
	create_ctx c;
	art_release *r = NULL;
	MDB_txn *txn;
	size_t i;
	int rc;

	if (out)
		*out = NULL;
	memset(&c, 0, sizeof(c));
	if (!kr)
		return art_error_set(AF_EINVAL, "a keyring is required to make a release");
	if (!refs || n_refs == 0)
		return art_error_set(AF_EINVAL, "a release needs at least one artifact");
	if ((rc = keys_prepare(&c.w, &key, 1)) < 0)
		return rc;
	c.w.kr = kr;
	c.w.now = now;
	c.w.action = "release";
	snprintf(c.w.subject, sizeof(c.w.subject), "release/new");
	c.expires = expires;
	/* Syntax first: a malformed argument is a usage error, not an attempt. */
	for (i = 0; i < n_refs; i++) {
		const char *at = refs[i] ? strchr(refs[i], '@') : NULL;
		char name[REF_MAX];

		snprintf(name, sizeof(name), "%.*s",
			 (int)(at ? (size_t)(at - refs[i]) : (refs[i] ? strlen(refs[i]) : 0)),
			 refs[i] ? refs[i] : "");
		if (!art_manifest_name_valid(name) || (at && !art_manifest_version_valid(at + 1)))
			return art_error_set(AF_EINVAL, "'%.80s' is not NAME or NAME@VERSION",
					     refs[i] ? refs[i] : "");
	}
	c.refs = refs;
	c.n_refs = n_refs;
	rc = create_collect(&c, s, kr, refs, n_refs, now);
	if (rc == AF_ENOMEM)
		goto cleanup;
	if (rc < 0) {
		/* A missing or unverifiable artifact is a refusal: audit it. */
		c.w.pre_rc = rc;
		snprintf(c.w.pre_msg, sizeof(c.w.pre_msg), "%s", art_error_last());
	} else if (expires <= now) {
		c.w.pre_rc = art_error_set(AF_EINVAL, "the release would expire before it is made: "
					   "give a later --expires");
		snprintf(c.w.pre_msg, sizeof(c.w.pre_msg), "%s", art_error_last());
	}
	if ((rc = write_run(s, &c.w, create_body)) < 0)
		goto cleanup;
	if (out) {
		if ((rc = art_store__read_begin(s, &txn)) < 0)
			goto cleanup;
		rc = release_read(&r, s, txn, kr, c.number, now, true, c.digest);
		art_store__read_end(s, txn);
		if (rc < 0)
			goto cleanup;
		*out = r;
	}
	rc = 0;
cleanup:
	for (i = 0; i < c.n_pins; i++) {
		free(c.pins[i].name);
		free(c.pins[i].version);
	}
	free(c.pins);
	free(c.envelope);
	json_decref(c.w.details);
	return rc;
}

/* ---- promote, rollback, set-threshold ------------------------------------ */

typedef enum change_kind { CHANGE_PROMOTE, CHANGE_ROLLBACK, CHANGE_THRESHOLD } change_kind;

typedef struct change_ctx {
	write_ctx w;
	change_kind kind;
	const char *channel;
	uint64_t target;       /* release (promote, rollback; 0 = default) */
	unsigned threshold;    /* set-threshold */
	art_channel *record;   /* out: the record written */
} change_ctx;

/* The release to roll back to by default: the highest one lower than current
 * that the channel pointed at before. */
static int rollback_default(const art_store *s, MDB_txn *txn, const char *channel,
			    uint64_t current, uint64_t *out)
{
	ptr_list hist = {NULL, 0, 0};
	size_t i;
	int rc;

	*out = 0;
	if ((rc = history_txn(&hist, s, txn, channel)) < 0)
		return rc;
	for (i = 0; i < hist.n; i++) {
		const art_channel *h = hist.items[i];

		if (h->release && h->release < current && h->release > *out)
			*out = h->release;
	}
	art_channel_list_free((art_channel **)hist.items, hist.n);
	return 0;
}

static int change_body(art_store *s, MDB_txn *txn, void *vctx)
{
	change_ctx *c = vctx;
	write_ctx *w = &c->w;
	art_channel *head = NULL, *rec = NULL;
	art_release *target = NULL;
	sig_count count;
	char key[KEY_MAX], *payload = NULL, *envelope = NULL;
	uint8_t *verified = NULL;
	size_t verified_len, i, valid_keys = 0;
	unsigned in_force;
	uint64_t to = c->target;
	MDB_val k, v;
	int mrc, rc;

	write_reset(w);
	memset(&count, 0, sizeof(count));
	art_channel_free(c->record);
	c->record = NULL;
	if (c->kind == CHANGE_THRESHOLD)
		json_object_set_new(w->details, "threshold", json_integer(c->threshold));
	else if (to)
		json_object_set_new(w->details, "release", json_integer((json_int_t)to));

	/* the channel as it is (the writer's view; readers verify every record) */
	snprintf(key, sizeof(key), HEAD_PREFIX "%s", c->channel);
	rc = channel_read_claimed(&head, s, txn, key, NULL, NULL);
	if (rc < 0 && rc != AF_ENOTFOUND)
		goto refuse_or_fail;
	art_error_clear();
	in_force = head ? head->threshold : 1;
	if (head)
		json_object_set_new(w->details, "previous", json_integer((json_int_t)head->release));
	if (head) {
		uint64_t newer;

		if ((rc = history_newer(&newer, s, txn, c->channel, head->seq)) < 0)
			goto fail;
		if (newer) {
			rc = replay_error(c->channel, head->seq, newer);
			goto refuse_or_fail;
		}
	}

	/* keys and threshold */
	if ((rc = keys_check(w)) < 0)
		goto refuse_or_fail;
	if (w->n_keys < in_force) {
		rc = art_error_set(AF_EDENIED, "channel %s needs %u distinct release-manager keys, "
				   "%zu given (a key listed twice counts once): threshold not met",
				   c->channel, in_force, w->n_keys);
		goto refuse_or_fail;
	}

	/* the rules of each change */
	if (c->kind == CHANGE_THRESHOLD) {
		for (i = 0; i < art_keyring_count(w->kr); i++) {
			const art_keyring_entry *e = art_keyring_get(w->kr, i);
			const art_key *kk;

			if (strcmp(e->role, ART_ROLE_RELEASE_MANAGER) == 0 &&
			    art_keyring_lookup(&kk, w->kr, e->id, e->role, w->now) == 0)
				valid_keys++;
		}
		art_error_clear();
		if (c->threshold > valid_keys) {
			rc = art_error_set(AF_EDENIED, "a threshold of %u needs at least %u valid "
					   "release-manager keys in the keyring, it has %zu: the "
					   "channel could never change again", c->threshold,
					   c->threshold, valid_keys);
			goto refuse_or_fail;
		}
	} else if (c->kind == CHANGE_PROMOTE) {
		if (head && to <= head->release) {
			rc = art_error_set(AF_EDENIED, "channel %s is at release %llu: release %llu "
					   "is not newer, and release numbers on a channel only grow "
					   "(to go back, use: agentfactory rollback --channel %s --to "
					   "%llu)", c->channel, (unsigned long long)head->release,
					   (unsigned long long)to, c->channel, (unsigned long long)to);
			goto refuse_or_fail;
		}
	} else {
		if (!head || head->release == 0) {
			rc = art_error_set(AF_ENOTFOUND, "channel %s has no release to roll back from",
					   c->channel);
			goto refuse_or_fail;
		}
		if (!to) {
			if ((rc = rollback_default(s, txn, c->channel, head->release, &to)) < 0)
				goto fail;
			if (!to) {
				rc = art_error_set(AF_ENOTFOUND, "channel %s never had a release before "
						   "%llu: nothing to roll back to (give --to N)",
						   c->channel, (unsigned long long)head->release);
				goto refuse_or_fail;
			}
			json_object_set_new(w->details, "release", json_integer((json_int_t)to));
		}
		if (to >= head->release) {
			rc = art_error_set(AF_EDENIED, "a rollback goes to an older release: channel "
					   "%s is at %llu, %llu is not older (use promote)",
					   c->channel, (unsigned long long)head->release,
					   (unsigned long long)to);
			goto refuse_or_fail;
		}
	}
	if (c->kind != CHANGE_THRESHOLD) {
		rc = release_read(&target, s, txn, w->kr, to, w->now, true, NULL);
		if (rc < 0)
			goto refuse_or_fail;
	}

	/* the new record */
	if (!(rec = calloc(1, sizeof(*rec)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(rec->name, sizeof(rec->name), "%s", c->channel);
	rec->seq = head ? head->seq + 1 : 1;
	rec->previous = head ? head->release : 0;
	rec->required = in_force;
	rec->time = w->now;
	if (c->kind == CHANGE_THRESHOLD) {
		snprintf(rec->action, sizeof(rec->action), "set-threshold");
		rec->release = head ? head->release : 0;
		snprintf(rec->release_digest, sizeof(rec->release_digest), "%s",
			 head ? head->release_digest : "");
		rec->threshold = c->threshold;
	} else {
		snprintf(rec->action, sizeof(rec->action), "%s",
			 c->kind == CHANGE_PROMOTE ? "promote" : "rollback");
		rec->release = to;
		memcpy(rec->release_digest, target->digest, sizeof(rec->release_digest));
		rec->threshold = in_force;
	}
	if (!(payload = channel_payload(rec))) {
		rc = AF_ENOMEM;
		goto fail;
	}
	if ((rc = multi_sign(&envelope, w->keys, w->n_keys, ART_CHANNEL_PAYLOAD_TYPE, payload)) < 0)
		goto fail;
	/* What readers will check, checked now. */
	rc = verify_signatures(&verified, &verified_len, &count, w->kr, ART_CHANNEL_PAYLOAD_TYPE,
			       envelope, strlen(envelope), w->now);
	if (rc == 0 && count.n < rec->required)
		rc = threshold_error(&count, rec->required, "the new record");
	if (rc < 0)
		goto fail;
	rec->signers = count.ids;
	rec->n_signers = count.n;
	count.ids = NULL;
	rec->verified = true;

	/* writes: head, history, audit */
	k = sval(key);
	v = sval(envelope);
	if ((mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_CHANNELS), &k, &v, 0)) != 0) {
		rc = art_store__lmdb_error(s, mrc, "cannot write the channel record");
		goto fail;
	}
	snprintf(key, sizeof(key), HIST_PREFIX "%s/%020llu", c->channel,
		 (unsigned long long)rec->seq);
	k = sval(key);
	if ((mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_CHANNELS), &k, &v,
			   MDB_NOOVERWRITE)) != 0) {
		rc = art_store__lmdb_error(s, mrc, "cannot write the channel history");
		goto fail;
	}
	json_object_set_new(w->details, "release", json_integer((json_int_t)rec->release));
	json_object_set_new(w->details, "previous", json_integer((json_int_t)rec->previous));
	json_object_set_new(w->details, "seq", json_integer((json_int_t)rec->seq));
	json_object_set_new(w->details, "threshold", json_integer(rec->threshold));
	json_object_set_new(w->details, "required", json_integer(rec->required));
	if ((rc = audit_write(s, txn, w, ART_AUDIT_OK)) < 0)
		goto fail;
	c->record = rec;
	rec = NULL;
	rc = 0;
	goto cleanup;
refuse_or_fail:
	if (rc == AF_ENOMEM || rc == AF_EIO || rc == AF_ECRYPTO)
		goto fail;
	rc = refuse(s, txn, w, rc);
	goto cleanup;
fail:
cleanup:
	free(count.ids);
	free(verified);
	free(payload);
	free(envelope);
	art_release_free(target);
	art_channel_free(head);
	art_channel_free(rec);
	return rc;
}

static int change_run(art_channel **out, art_store *s, const art_keyring *kr,
		      const art_key *const *keys, size_t n_keys, const char *channel,
		      change_kind kind, uint64_t target, unsigned threshold, time_t now)
{
	change_ctx c;
	int rc;

	if (out)
		*out = NULL;
	memset(&c, 0, sizeof(c));
	if (!kr)
		return art_error_set(AF_EINVAL, "a keyring is required to sign a channel change");
	if (!art_channel_name_valid(channel))
		return art_error_set(AF_EINVAL, "invalid channel name '%.80s' (use [a-z][a-z0-9-]*, "
				     "at most %u characters)", channel ? channel : "",
				     ART_CHANNEL_NAME_MAX);
	if (kind == CHANGE_PROMOTE && target == 0)
		return art_error_set(AF_EINVAL, "promote needs a release number (1 or more)");
	if (kind == CHANGE_THRESHOLD && (threshold < 1 || threshold > ART_CHANNEL_MAX_THRESHOLD))
		return art_error_set(AF_EINVAL, "a threshold is 1 to %u", ART_CHANNEL_MAX_THRESHOLD);
	if ((rc = keys_prepare(&c.w, keys, n_keys)) < 0)
		return rc;
	c.w.kr = kr;
	c.w.now = now;
	c.w.action = kind == CHANGE_PROMOTE ? "promote" : kind == CHANGE_ROLLBACK ? "rollback"
										 : "set-threshold";
	snprintf(c.w.subject, sizeof(c.w.subject), "channel/%s", channel);
	c.kind = kind;
	c.channel = channel;
	c.target = target;
	c.threshold = threshold;
	rc = write_run(s, &c.w, change_body);
	if (rc == 0 && out) {
		*out = c.record;
		c.record = NULL;
	}
	art_channel_free(c.record);
	return rc;
}

int art_release_promote(art_channel **out, art_store *s, const art_keyring *kr,
			const art_key *const *keys, size_t n_keys, const char *channel,
			uint64_t number, time_t now)
{
	return change_run(out, s, kr, keys, n_keys, channel, CHANGE_PROMOTE, number, 0, now);
}

int art_release_rollback(art_channel **out, art_store *s, const art_keyring *kr,
			 const art_key *const *keys, size_t n_keys, const char *channel,
			 uint64_t to, time_t now)
{
	return change_run(out, s, kr, keys, n_keys, channel, CHANGE_ROLLBACK, to, 0, now);
}

int art_release_set_threshold(art_channel **out, art_store *s, const art_keyring *kr,
			      const art_key *const *keys, size_t n_keys, const char *channel,
			      unsigned threshold, time_t now)
{
	return change_run(out, s, kr, keys, n_keys, channel, CHANGE_THRESHOLD, 0, threshold, now);
}

/* ---- moving records between stores (a registry pull, art/oci.h) ---------- */

int art_release_envelope(char **out, size_t *len, const art_store *s, uint64_t number)
{
	char key[KEY_MAX];
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*len = 0;
	num_key(key, sizeof(key), REL_PREFIX, number);
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = get_copy(s, txn, ART_STORE__DB_RELEASES, key, out, len);
	art_store__read_end(s, txn);
	if (rc == AF_ENOTFOUND)
		rc = art_error_set(AF_ENOTFOUND, "release %llu does not exist in store %s",
				   (unsigned long long)number, art_store_path(s));
	return rc;
}

int art_channel_envelope(char **out, size_t *len, const art_store *s, const char *channel)
{
	char key[KEY_MAX];
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*len = 0;
	if (!art_channel_name_valid(channel))
		return art_error_set(AF_EINVAL, "invalid channel name '%.80s'", channel ? channel : "");
	snprintf(key, sizeof(key), HEAD_PREFIX "%s", channel);
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = get_copy(s, txn, ART_STORE__DB_CHANNELS, key, out, len);
	art_store__read_end(s, txn);
	if (rc == AF_ENOTFOUND)
		rc = art_error_set(AF_ENOTFOUND, "no channel named '%s' in store %s", channel,
				   art_store_path(s));
	return rc;
}

int art_release_verify_envelope(art_release **out, const art_keyring *kr, const char *env,
				size_t len, time_t now, bool check_expiry)
{
	art_release *r = NULL;
	art_sig_info info;
	uint8_t *payload = NULL;
	size_t payload_len;
	char when[21];
	int rc;

	*out = NULL;
	if (!kr || !env)
		return art_error_set(AF_EINVAL, "a keyring and an envelope are required");
	rc = art_sig_verify_payload(&info, &payload, &payload_len, kr, ART_ROLE_RELEASE_MANAGER,
				    ART_RELEASE_PAYLOAD_TYPE, env, len, now);
	if (rc < 0)
		return with_context(rc, "release record");
	if (!(r = calloc(1, sizeof(*r)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	memcpy(r->signer, info.keyid, sizeof(r->signer));
	if ((rc = release_parse(r, payload, payload_len)) < 0)
		goto cleanup;
	if (check_expiry && now > r->expires) {
		art_time_format(when, r->expires);
		rc = art_error_set(AF_EEXPIRED, "release %llu expired at %s (freeze protection)",
				   (unsigned long long)r->number, when);
		goto cleanup;
	}
	r->verified = true;
	*out = r;
	r = NULL;
cleanup:
	art_release_free(r);
	free(payload);
	return rc;
}

int art_channel_verify_envelope(art_channel **out, const art_keyring *kr, const char *channel,
				const char *env, size_t len, time_t now, unsigned min_threshold)
{
	int rc;

	*out = NULL;
	if (!kr || !env || !art_channel_name_valid(channel))
		return art_error_set(AF_EINVAL, "a keyring, a channel name and an envelope are "
				     "required");
	if ((rc = channel_check_envelope(out, kr, channel, env, len, now, min_threshold, false)) < 0)
		return rc;
	(*out)->verified = true;
	return 0;
}

/* What art_release_import writes, verified before the transaction. */
typedef struct import_ctx {
	char *release_env, *channel_env;
	size_t release_len, channel_len;
	art_release *release;
	art_channel *channel;
} import_ctx;

static void import_free(void *vctx)
{
	import_ctx *c = vctx;

	if (!c)
		return;
	free(c->release_env);
	free(c->channel_env);
	art_release_free(c->release);
	art_channel_free(c->channel);
	free(c);
}

/* The release record in txn; write it and its pins if absent. */
static int import_release(art_store *s, MDB_txn *txn, const import_ctx *c)
{
	const art_release *r = c->release;
	char key[KEY_MAX], ref[REF_MAX], digest[ART_DIGEST_STR_LEN + 1], *existing = NULL;
	char *pin_text = NULL;
	json_t *pin;
	size_t len, i;
	MDB_val k, v;
	int mrc, rc;

	num_key(key, sizeof(key), REL_PREFIX, r->number);
	rc = get_copy(s, txn, ART_STORE__DB_RELEASES, key, &existing, &len);
	if (rc == 0) {
		bool same = len == c->release_len && memcmp(existing, c->release_env, len) == 0;
		art_release *mine = NULL;

		free(existing);
		if (same)
			return 0;
		/* the same record with its signatures in another order is the same release */
		if (release_read(&mine, s, txn, NULL, r->number, 0, false, NULL) == 0 &&
		    strcmp(mine->digest, r->digest) == 0) {
			art_release_free(mine);
			return 0;
		}
		art_release_free(mine);
		return art_error_set(AF_EEXISTS, "store %s already has another release %llu: a "
				     "store that pulls releases must not make its own (pull into a "
				     "fresh store)", art_store_path(s),
				     (unsigned long long)r->number);
	}
	if (rc != AF_ENOTFOUND)
		return rc;
	for (i = 0; i < r->n_pins; i++) {
		snprintf(ref, sizeof(ref), "%s@%s", r->pins[i].name, r->pins[i].version);
		rc = art_store__record_digest(s, txn, ref, digest);
		if (rc == AF_ENOTFOUND)
			return art_error_set(AF_ENOTFOUND, "release %llu pins %s, which is not in the "
					     "store", (unsigned long long)r->number, ref);
		if (rc < 0)
			return rc;
		if (strcmp(digest, r->pins[i].manifest_digest) != 0)
			return art_error_set(AF_ESIGNATURE, "release %llu pins %s as %.19s..., the "
					     "store has %.19s...", (unsigned long long)r->number, ref,
					     r->pins[i].manifest_digest, digest);
		snprintf(key, sizeof(key), PIN_PREFIX "%s", ref);
		rc = get_copy(s, txn, ART_STORE__DB_RELEASES, key, &existing, &len);
		if (rc == 0) {
			pin = json_loads(existing, JSON_REJECT_DUPLICATES, NULL);
			free(existing);
			existing = NULL;
			rc = !json_string_value(json_object_get(pin, "manifest_digest")) ||
			     strcmp(json_string_value(json_object_get(pin, "manifest_digest")),
				    r->pins[i].manifest_digest) != 0;
			json_decref(pin);
			if (rc)
				return art_error_set(AF_EEXISTS, "%s was released in this store with "
						     "another manifest", ref);
			continue;
		}
		if (rc != AF_ENOTFOUND)
			return rc;
	}
	k = sval(key);
	num_key(key, sizeof(key), REL_PREFIX, r->number);
	k = sval(key);
	v.mv_data = c->release_env;
	v.mv_size = c->release_len;
	if ((mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_RELEASES), &k, &v,
			   MDB_NOOVERWRITE)) != 0)
		return art_store__lmdb_error(s, mrc, "cannot write the release");
	for (i = 0; i < r->n_pins; i++) {
		snprintf(key, sizeof(key), PIN_PREFIX "%s@%s", r->pins[i].name, r->pins[i].version);
		pin = json_object();
		if (!pin || json_object_set_new(pin, "manifest_digest",
						json_string(r->pins[i].manifest_digest)) ||
		    json_object_set_new(pin, "release", json_integer((json_int_t)r->number)) ||
		    !(pin_text = canonical(pin))) {
			json_decref(pin);
			return art_error_set(AF_ENOMEM, "out of memory writing a pin");
		}
		json_decref(pin);
		k = sval(key);
		v = sval(pin_text);
		mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_RELEASES), &k, &v,
			      MDB_NOOVERWRITE);
		free(pin_text);
		pin_text = NULL;
		if (mrc && mrc != MDB_KEYEXIST)
			return art_store__lmdb_error(s, mrc, "cannot write a pin");
	}
	return 0;
}

/* The channel record: newer than the store's head, its release present. */
static int import_channel(art_store *s, MDB_txn *txn, const import_ctx *c)
{
	const art_channel *ch = c->channel;
	art_channel *head = NULL;
	art_release *rel = NULL;
	char key[KEY_MAX], *env = NULL;
	size_t env_len;
	MDB_val k, v;
	int mrc, rc;

	snprintf(key, sizeof(key), HEAD_PREFIX "%s", ch->name);
	rc = channel_read_claimed(&head, s, txn, key, &env, &env_len);
	if (rc < 0 && rc != AF_ENOTFOUND)
		goto cleanup;
	if (head && head->seq > ch->seq) {
		rc = art_error_set(AF_EDENIED, "channel %s: the offered record %llu is older than "
				   "record %llu in the store: a replayed record is refused",
				   ch->name, (unsigned long long)ch->seq,
				   (unsigned long long)head->seq);
		goto cleanup;
	}
	if (head && head->seq == ch->seq) {
		if (env_len == c->channel_len && memcmp(env, c->channel_env, env_len) == 0) {
			rc = 0; /* already there */
			goto cleanup;
		}
		rc = art_error_set(AF_EDENIED, "channel %s: record %llu in the store differs from "
				   "the offered record %llu", ch->name, (unsigned long long)head->seq,
				   (unsigned long long)ch->seq);
		goto cleanup;
	}
	if (ch->release) {
		rc = release_read(&rel, s, txn, NULL, ch->release, 0, false, ch->release_digest);
		if (rc < 0) {
			rc = with_context(rc, "channel %s", ch->name);
			goto cleanup;
		}
	}
	k = sval(key);
	v.mv_data = c->channel_env;
	v.mv_size = c->channel_len;
	if ((mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_CHANNELS), &k, &v, 0)) != 0) {
		rc = art_store__lmdb_error(s, mrc, "cannot write the channel record");
		goto cleanup;
	}
	snprintf(key, sizeof(key), HIST_PREFIX "%s/%020llu", ch->name, (unsigned long long)ch->seq);
	k = sval(key);
	mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_CHANNELS), &k, &v, MDB_NOOVERWRITE);
	if (mrc && mrc != MDB_KEYEXIST) {
		rc = art_store__lmdb_error(s, mrc, "cannot write the channel history");
		goto cleanup;
	}
	rc = 0;
cleanup:
	art_channel_free(head);
	art_release_free(rel);
	free(env);
	return rc;
}

static int import_body(art_store *s, MDB_txn *txn, void *vctx)
{
	const import_ctx *c = vctx;
	int rc;

	if (c->release && (rc = import_release(s, txn, c)) < 0)
		return rc;
	if (c->channel && (rc = import_channel(s, txn, c)) < 0)
		return rc;
	return 0;
}

int art_release_import(art_store_txn *txn, const art_keyring *kr, time_t now,
		       const char *release_env, size_t release_len, const char *channel_env,
		       size_t channel_len, unsigned min_threshold)
{
	import_ctx *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (!txn || !kr || (!release_env && !channel_env)) {
		rc = art_error_set(AF_EINVAL, "nothing to import");
		goto fail;
	}
	if (release_env &&
	    (rc = art_release_verify_envelope(&c->release, kr, release_env, release_len, now,
					      false)) < 0)
		goto fail;
	if (channel_env) {
		if ((rc = envelope_claims((uint8_t **)&c->channel_env, &c->channel_len, NULL, NULL,
					  channel_env, channel_len)) < 0)
			goto fail;
		{
			/* the channel's name is in the payload: verify for that name */
			art_channel tmp;

			memset(&tmp, 0, sizeof(tmp));
			rc = channel_parse(&tmp, (const uint8_t *)c->channel_env, c->channel_len);
			free(c->channel_env);
			c->channel_env = NULL;
			if (rc < 0)
				goto fail;
			if ((rc = art_channel_verify_envelope(&c->channel, kr, tmp.name, channel_env,
							      channel_len, now, min_threshold)) < 0)
				goto fail;
		}
		if (c->release && c->channel->release == c->release->number &&
		    strcmp(c->channel->release_digest, c->release->digest) != 0) {
			rc = art_error_set(AF_ESIGNATURE, "channel %s names release %llu with another "
					   "digest than the release offered with it",
					   c->channel->name, (unsigned long long)c->release->number);
			goto fail;
		}
		if (!(c->channel_env = malloc(channel_len + 1))) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(c->channel_env, channel_env, channel_len);
		c->channel_env[channel_len] = '\0';
		c->channel_len = channel_len;
	}
	if (release_env) {
		if (!(c->release_env = malloc(release_len + 1))) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(c->release_env, release_env, release_len);
		c->release_env[release_len] = '\0';
		c->release_len = release_len;
	}
	return art_store__txn_hook(txn, import_body, c, import_free);
fail:
	import_free(c);
	return rc;
}
