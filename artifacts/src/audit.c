/*
 * audit.c - reading and verifying the store's hash-chained audit log (see
 * art/audit.h and docs/releases.md): listing, the head, verification (the
 * chain, signatures, channel heads against the log) and checkpoints. The
 * entry format (and its invariants) and every append are in
 * audit_record.c, which this file uses and which uses nothing of it.
 */
#include "art/audit.h"

#include "art/error.h"
#include "art/release.h"
#include "art/sig.h"
#include "art/util.h"
#include "audit_internal.h"
#include "store_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FUTURE_SKEW 300

static const char *const entry_fields[] = {"action", "actor", "details", "hash", "outcome",
					   "prev_hash", "seq", "subject", "time"};
#define N_ENTRY_FIELDS (sizeof(entry_fields) / sizeof(*entry_fields))

/* An RFC 3339 UTC time exactly as art_time_format writes it. */
static bool time_parse_exact(time_t *out, const char *s)
{
	char again[21];

	if (!s || strlen(s) != 20 || s[10] != 'T' || s[19] != 'Z' || art_time_parse(out, s) < 0)
		return false;
	art_time_format(again, *out);
	return strcmp(again, s) == 0;
}

/* ---- reading ------------------------------------------------------------- */

static char *json_str_dup(json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));

	return strdup(v ? v : dflt);
}

/* Fill e from a stored value, leniently (a listing is not a verification). */
static int entry_fill(art_audit_entry *e, uint64_t key_seq, const MDB_val *v)
{
	json_t *o = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES, NULL);
	const char *h;
	char *details = NULL;
	time_t t = 0;

	memset(e, 0, sizeof(*e));
	e->seq = key_seq;
	if (json_is_object(o)) {
		if (json_is_integer(json_object_get(o, "seq")))
			e->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
		if (time_parse_exact(&t, json_string_value(json_object_get(o, "time"))))
			e->time = t;
		e->action = json_str_dup(o, "action", "?");
		e->actor = json_str_dup(o, "actor", "?");
		e->subject = json_str_dup(o, "subject", "");
		e->outcome = json_str_dup(o, "outcome", "?");
		details = json_is_object(json_object_get(o, "details"))
				  ? json_dumps(json_object_get(o, "details"), JSON_COMPACT | JSON_SORT_KEYS)
				  : strdup("{}");
		e->details = details;
		h = json_string_value(json_object_get(o, "hash"));
		snprintf(e->hash, sizeof(e->hash), "%s", art_audit__hex64(h) ? h : "");
		h = json_string_value(json_object_get(o, "prev_hash"));
		snprintf(e->prev_hash, sizeof(e->prev_hash), "%s", art_audit__hex64(h) ? h : "");
	} else {
		json_t *raw = json_object();
		char *text = NULL;

		/* Show what is there, as a JSON string, without trusting it. */
		if (raw && json_object_set_new(raw, "unreadable",
					       json_stringn_nocheck(v->mv_data, v->mv_size > 200
										      ? 200 : v->mv_size)) == 0)
			text = json_dumps(raw, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(raw);
		e->action = strdup("?");
		e->actor = strdup("?");
		e->subject = strdup("");
		e->outcome = strdup("?");
		e->details = text ? text : strdup("{}");
	}
	json_decref(o);
	if (!e->action || !e->actor || !e->subject || !e->outcome || !e->details)
		return art_error_set(AF_ENOMEM, "out of memory reading the audit log");
	return 0;
}

static void entry_clear(art_audit_entry *e)
{
	free(e->action);
	free(e->actor);
	free(e->subject);
	free(e->outcome);
	free(e->details);
}

void art_audit_list_free(art_audit_entry *entries, size_t n)
{
	size_t i;

	for (i = 0; entries && i < n; i++)
		entry_clear(&entries[i]);
	free(entries);
}

int art_audit_list(art_audit_entry **out, size_t *n, const art_store *s, uint64_t after,
		   size_t max)
{
	art_audit_entry *list = NULL, *grown;
	size_t count = 0, cap = 0;
	char key[ART_AUDIT__SEQ_KEY_LEN + 1];
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint64_t key_seq;
	int mrc, rc;

	*out = NULL;
	*n = 0;
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, ART_STORE__DB_AUDIT), &cur)) != 0) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the audit log");
		goto cleanup;
	}
	art_audit__seq_key(key, after + 1);
	k.mv_data = key;
	k.mv_size = ART_AUDIT__SEQ_KEY_LEN;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && (!max || count < max);
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (!art_audit__seq_from_key(&key_seq, &k))
			key_seq = 0;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(grown = realloc(list, cap * sizeof(*list)))) {
				rc = art_error_set(AF_ENOMEM, "out of memory reading the audit log");
				goto cleanup;
			}
			list = grown;
		}
		rc = entry_fill(&list[count], key_seq, &v);
		count++;
		if (rc < 0)
			goto cleanup;
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the audit log");
		goto cleanup;
	}
	*out = list;
	*n = count;
	list = NULL;
	count = 0;
	rc = 0;
cleanup:
	mdb_cursor_close(cur);
	art_store__read_end(s, txn);
	art_audit_list_free(list, count);
	return rc;
}

int art_audit_head(uint64_t *seq, char hash[ART_SHA256_HEX_LEN + 1], const art_store *s)
{
	MDB_txn *txn;
	int rc;

	*seq = 0;
	memcpy(hash, ART_AUDIT__ZERO_HASH, ART_SHA256_HEX_LEN + 1);
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = art_audit__head_read(s, txn, seq, hash);
	art_store__read_end(s, txn);
	return rc;
}

/* ---- verification -------------------------------------------------------- */

/*
 * Check one stored entry strictly against the chain so far. On success
 * hash_out is its hash.
 */
/* A key of kr with this id (any role), or NULL. */
static const art_key *keyring_key(const art_keyring *kr, const char *id)
{
	size_t i;

	for (i = 0; i < art_keyring_count(kr); i++)
		if (strcmp(art_keyring_get(kr, i)->id, id) == 0)
			return art_keyring_get(kr, i)->key;
	return NULL;
}

/*
 * The actors' signatures of a well-formed entry o (hash already checked):
 * every signature by a key of kr verifies; an "ok" entry whose actor is key
 * ids carries a valid signature of each.
 */
static int entry_sigs_check(uint64_t seq, json_t *o, const art_keyring *kr)
{
	json_t *sigs = json_object_get(o, "signatures"), *item;
	const char *actor = json_string_value(json_object_get(o, "actor"));
	const char *outcome = json_string_value(json_object_get(o, "outcome"));
	char verified[ART_AUDIT_MAX_SIGNERS][ART_SHA256_HEX_LEN + 1];
	size_t nverified = 0, i, pae_len = 0, sig_len = 0;
	uint8_t *pae = NULL, *sig = NULL;
	const char *p;
	int rc = 0;

	if (sigs && (rc = art_audit__entry_pae(&pae, &pae_len, o)) < 0)
		return rc;
	json_array_foreach(sigs, i, item) {
		const char *keyid = json_string_value(json_object_get(item, "keyid"));
		const char *b64 = json_string_value(json_object_get(item, "sig"));
		const art_key *key = keyring_key(kr, keyid);

		if (!key)
			continue; /* an unknown key signs nothing here; see the actor rule */
		free(sig);
		sig = NULL;
		if ((rc = art_base64_decode(&sig, &sig_len, b64)) == 0)
			rc = art_key_verify(key, pae, pae_len, sig, sig_len);
		if (rc == AF_ENOMEM || rc == AF_ECRYPTO)
			goto cleanup; /* not the entry's fault: the message says what failed */
		if (rc != 0) {
			rc = art_error_set(AF_ECORRUPT, "audit entry %llu: the signature of key %.16s... "
					   "does not verify: the entry was rewritten after it was signed",
					   (unsigned long long)seq, keyid);
			goto cleanup;
		}
		if (nverified < ART_AUDIT_MAX_SIGNERS)
			memcpy(verified[nverified++], keyid, ART_SHA256_HEX_LEN + 1);
	}
	if (!outcome || strcmp(outcome, ART_AUDIT_OK) != 0 || !actor)
		goto cleanup;
	/* Each key id named as actor of a successful action must have signed. */
	for (p = actor; *p;) {
		size_t len = strcspn(p, ","), j;
		bool ok = false;

		if (len == ART_SHA256_HEX_LEN) {
			char id[ART_SHA256_HEX_LEN + 1];

			/* An actor the keyring does not know (a key of another
			 * keyring) cannot be checked here; one it knows must have
			 * signed. */
			memcpy(id, p, len);
			id[len] = '\0';
			ok = keyring_key(kr, id) == NULL;
			for (j = 0; j < nverified && !ok; j++)
				ok = strncmp(verified[j], p, len) == 0;
			if (!ok) {
				rc = art_error_set(AF_ECORRUPT, "audit entry %llu (%s by %.16s...) carries no "
						   "valid signature of its actor by a key of the keyring: "
						   "it was forged or rewritten", (unsigned long long)seq,
						   json_string_value(json_object_get(o, "action")), p);
				goto cleanup;
			}
		}
		p += len;
		if (*p == ',')
			p++;
	}
cleanup:
	free(sig);
	free(pae);
	return rc;
}

static bool signatures_well_formed(json_t *sigs)
{
	json_t *item;
	size_t i;

	if (!json_is_array(sigs) || json_array_size(sigs) < 1 ||
	    json_array_size(sigs) > ART_AUDIT_MAX_SIGNERS)
		return false;
	json_array_foreach(sigs, i, item)
		if (!json_is_object(item) || json_object_size(item) != 2 ||
		    !art_audit__hex64(json_string_value(json_object_get(item, "keyid"))) ||
		    !json_is_string(json_object_get(item, "sig")))
			return false;
	return true;
}

static int entry_check(uint64_t key_seq, uint64_t expect_seq, const char *prev,
		       const MDB_val *v, char hash_out[ART_SHA256_HEX_LEN + 1],
		       const art_keyring *kr)
{
	char computed[ART_SHA256_HEX_LEN + 1];
	json_t *o = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES, NULL), *val;
	const char *key, *stored_hash, *p;
	char *again = NULL;
	time_t t;
	uint64_t seq;
	size_t i;
	int rc;

	if (key_seq != expect_seq) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu is missing (the next key is %llu): "
				   "an entry was deleted", (unsigned long long)expect_seq,
				   (unsigned long long)key_seq);
		goto cleanup;
	}
	if (!json_is_object(o) ||
	    json_object_size(o) != N_ENTRY_FIELDS + (json_object_get(o, "signatures") ? 1 : 0) ||
	    (json_object_get(o, "signatures") &&
	     !signatures_well_formed(json_object_get(o, "signatures")))) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu is not a well-formed entry: it was "
				   "edited or damaged", (unsigned long long)key_seq);
		goto cleanup;
	}
	for (i = 0; i < sizeof(entry_fields) / sizeof(*entry_fields); i++)
		if (!json_object_get(o, entry_fields[i])) {
			rc = art_error_set(AF_ECORRUPT, "audit entry %llu has no '%s': it was edited "
					   "or damaged", (unsigned long long)key_seq, entry_fields[i]);
			goto cleanup;
		}
	json_object_foreach(o, key, val) {
		bool ok = strcmp(key, "seq") == 0 ? json_is_integer(val)
			  : strcmp(key, "details") == 0 ? json_is_object(val)
			  : strcmp(key, "signatures") == 0 ? json_is_array(val)
							 : json_is_string(val);
		if (!ok) {
			rc = art_error_set(AF_ECORRUPT, "audit entry %llu: field '%s' has the wrong "
					   "type: it was edited or damaged", (unsigned long long)key_seq,
					   key);
			goto cleanup;
		}
	}
	seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
	if (seq != key_seq) {
		rc = art_error_set(AF_ECORRUPT, "audit key %llu holds entry %llu: entries were "
				   "reordered or moved", (unsigned long long)key_seq,
				   (unsigned long long)seq);
		goto cleanup;
	}
	if (!time_parse_exact(&t, json_string_value(json_object_get(o, "time"))) ||
	    !art_audit__action_ok(json_string_value(json_object_get(o, "action")))) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu: malformed time or action: it was "
				   "edited or damaged", (unsigned long long)key_seq);
		goto cleanup;
	}
	if (!(again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = art_error_set(AF_ENOMEM, "out of memory verifying the audit log");
		goto cleanup;
	}
	if (strlen(again) != v->mv_size || memcmp(again, v->mv_data, v->mv_size) != 0) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu is not in canonical form: it was "
				   "edited", (unsigned long long)key_seq);
		goto cleanup;
	}
	stored_hash = json_string_value(json_object_get(o, "hash"));
	p = json_string_value(json_object_get(o, "prev_hash"));
	if (!art_audit__hex64(stored_hash) || !art_audit__hex64(p)) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu: malformed hash fields",
				   (unsigned long long)key_seq);
		goto cleanup;
	}
	if (strcmp(p, prev) != 0) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu does not follow entry %llu (its "
				   "prev_hash is %.12s..., entry %llu's hash is %.12s...): an entry was "
				   "edited, replaced, deleted or reordered",
				   (unsigned long long)key_seq, (unsigned long long)key_seq - 1, p,
				   (unsigned long long)key_seq - 1, prev);
		goto cleanup;
	}
	memcpy(hash_out, stored_hash, ART_SHA256_HEX_LEN + 1);
	json_object_del(o, "hash");
	if ((rc = art_audit__entry_hash(computed, o)) < 0)
		goto cleanup;
	if (strcmp(computed, hash_out) != 0) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu was edited: its content hashes to "
				   "%.12s..., not to its recorded hash %.12s...",
				   (unsigned long long)key_seq, computed, hash_out);
		goto cleanup;
	}
	rc = kr ? entry_sigs_check(key_seq, o, kr) : 0;
cleanup:
	free(again);
	json_decref(o);
	return rc;
}

/* ---- channel heads against the log ----------------------------------------- */

typedef struct channel_seen {
	char name[ART_CHANNEL_NAME_MAX + 1];
	uint64_t seq;        /* the newest record the log says was written */
	uint64_t entry;      /* the entry that says so */
} channel_seen;

typedef struct channels_seen {
	channel_seen *items;
	size_t n, cap;
} channels_seen;

/* Note a successful channel change (promote, rollback, set-threshold). */
static int channels_note(channels_seen *cs, uint64_t entry_seq, const MDB_val *v)
{
	json_t *o = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES, NULL);
	const char *action = json_string_value(json_object_get(o, "action"));
	const char *subject = json_string_value(json_object_get(o, "subject"));
	const char *outcome = json_string_value(json_object_get(o, "outcome"));
	json_t *seqv = json_object_get(json_object_get(o, "details"), "seq");
	size_t i;
	int rc = 0;

	if (!action || !subject || !outcome || strcmp(outcome, ART_AUDIT_OK) != 0 ||
	    strncmp(subject, "channel/", 8) != 0 || !json_is_integer(seqv) ||
	    (strcmp(action, "promote") && strcmp(action, "rollback") &&
	     strcmp(action, "set-threshold")) ||
	    !art_channel_name_valid(subject + 8))
		goto cleanup;
	for (i = 0; i < cs->n && strcmp(cs->items[i].name, subject + 8) != 0; i++)
		;
	if (i == cs->n) {
		if (cs->n == cs->cap) {
			size_t ncap = cs->cap ? cs->cap * 2 : 8;
			channel_seen *grown = realloc(cs->items, ncap * sizeof(*grown));

			if (!grown) {
				rc = art_error_set(AF_ENOMEM, "out of memory verifying the audit log");
				goto cleanup;
			}
			cs->items = grown;
			cs->cap = ncap;
		}
		memset(&cs->items[i], 0, sizeof(cs->items[i]));
		snprintf(cs->items[i].name, sizeof(cs->items[i].name), "%s", subject + 8);
		cs->n++;
	}
	if ((uint64_t)json_integer_value(seqv) >= cs->items[i].seq) {
		cs->items[i].seq = (uint64_t)json_integer_value(seqv);
		cs->items[i].entry = entry_seq;
	}
cleanup:
	json_decref(o);
	return rc;
}

/*
 * Each channel's current record must be at least as new as the newest
 * record the log says was written: an older head is a replayed record.
 */
static int channels_check(art_audit_report *out, const channels_seen *cs, const art_store *s,
			  MDB_txn *txn)
{
	uint64_t head;
	size_t i;
	int rc;

	for (i = 0; i < cs->n; i++) {
		rc = art_release__head_seq(&head, s, txn, cs->items[i].name);
		if (rc == AF_ENOTFOUND) {
			/* A channel gone entirely is what readers report as missing;
			 * this check is about a head put back in time. */
			art_error_clear();
			continue;
		}
		if (rc < 0)
			return rc;
		if (head < cs->items[i].seq) {
			out->bad_seq = cs->items[i].entry;
			return art_error_set(AF_ECORRUPT, "channel %s: the current record is %llu but "
					     "audit entry %llu records record %llu: the channel was put "
					     "back to an older record (a replay)",
					     cs->items[i].name, (unsigned long long)head,
					     (unsigned long long)cs->items[i].entry,
					     (unsigned long long)cs->items[i].seq);
		}
	}
	return 0;
}

/*
 * Walk the whole chain in one snapshot. When want_seq is non-zero and the
 * chain reaches it, want_hash receives that entry's hash.
 */
static int verify_walk(art_audit_report *out, const art_store *s, uint64_t want_seq,
		       char want_hash[ART_SHA256_HEX_LEN + 1], const art_keyring *kr)
{
	char prev[ART_SHA256_HEX_LEN + 1] = ART_AUDIT__ZERO_HASH, hash[ART_SHA256_HEX_LEN + 1];
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint64_t expect = 1, key_seq;
	channels_seen cs = {NULL, 0, 0};
	int mrc, rc;

	memset(out, 0, sizeof(*out));
	memcpy(out->head_hash, ART_AUDIT__ZERO_HASH, sizeof(out->head_hash));
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, ART_STORE__DB_AUDIT), &cur)) != 0) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the audit log");
		goto cleanup;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), expect++) {
		if (!art_audit__seq_from_key(&key_seq, &k)) {
			out->bad_seq = expect;
			rc = art_error_set(AF_ECORRUPT, "the audit log has a malformed key after entry "
					   "%llu: an entry was inserted", (unsigned long long)expect - 1);
			goto cleanup;
		}
		if ((rc = entry_check(key_seq, expect, prev, &v, hash, kr)) < 0) {
			out->bad_seq = expect;
			goto cleanup;
		}
		out->entries++;
		if ((rc = channels_note(&cs, key_seq, &v)) < 0)
			goto cleanup;
		if (want_seq && key_seq == want_seq)
			memcpy(want_hash, hash, sizeof(hash));
		memcpy(prev, hash, sizeof(prev));
	}
	if (mrc != MDB_NOTFOUND) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the audit log");
		goto cleanup;
	}
	out->head_seq = expect - 1;
	memcpy(out->head_hash, prev, sizeof(prev));
	rc = channels_check(out, &cs, s, txn);
cleanup:
	free(cs.items);
	mdb_cursor_close(cur);
	art_store__read_end(s, txn);
	return rc;
}

int art_audit_verify(art_audit_report *out, const art_store *s)
{
	return verify_walk(out, s, 0, NULL, NULL);
}

int art_audit_verify_signed(art_audit_report *out, const art_store *s, const art_keyring *kr)
{
	return verify_walk(out, s, 0, NULL, kr);
}

/* ---- checkpoints --------------------------------------------------------- */

int art_audit_checkpoint(char **out_envelope, const art_store *s, const art_key *key,
			 time_t now)
{
	art_audit_report rep;
	json_t *o = NULL;
	char *payload = NULL, when[21];
	int rc;

	*out_envelope = NULL;
	if (!art_key_is_private(key))
		return art_error_set(AF_EINVAL, "a checkpoint is signed with a private key");
	if ((rc = art_audit_verify(&rep, s)) < 0)
		return rc;
	art_time_format(when, now);
	o = json_object();
	if (!o || json_object_set_new(o, "format", json_string(ART_AUDIT_CHECKPOINT_FORMAT)) ||
	    json_object_set_new(o, "head_hash", json_string(rep.head_hash)) ||
	    json_object_set_new(o, "seq", json_integer((json_int_t)rep.head_seq)) ||
	    json_object_set_new(o, "store", json_string(art_store_path(s))) ||
	    json_object_set_new(o, "time", json_string(when)) ||
	    !(payload = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = art_error_set(AF_EINVAL, "cannot build the checkpoint (the store path must be "
				   "UTF-8, or out of memory)");
		goto cleanup;
	}
	rc = art_sig_sign_payload(out_envelope, key, ART_AUDIT_CHECKPOINT_TYPE, payload,
				  strlen(payload));
cleanup:
	free(payload);
	json_decref(o);
	return rc;
}

/* The checkpoint's claimed time, read before verification (only to pick
 * the time at which its key must have been valid). */
static int checkpoint_claimed_time(time_t *out, const char *envelope, size_t len)
{
	json_t *env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, NULL), *payload = NULL;
	const char *b64 = json_string_value(json_object_get(env, "payload"));
	uint8_t *bytes = NULL;
	size_t n = 0;
	int rc = 0;

	if (len > ART_SIG_ENVELOPE_MAX || !b64 || (rc = art_base64_decode(&bytes, &n, b64)) < 0 ||
	    !(payload = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, NULL)) ||
	    !time_parse_exact(out, json_string_value(json_object_get(payload, "time"))))
		/* out of memory is not the checkpoint's fault (the message is set) */
		rc = rc == AF_ENOMEM ? rc
				     : art_error_set(AF_ECORRUPT, "the checkpoint is not a signed "
						     "audit checkpoint (malformed envelope or payload)");
	json_decref(payload);
	json_decref(env);
	free(bytes);
	return rc;
}

int art_audit_verify_checkpoint(art_audit_report *out, const art_store *s,
				const art_keyring *kr, const char *envelope, size_t envelope_len,
				time_t now)
{
	char at_seq[ART_SHA256_HEX_LEN + 1] = "";
	art_sig_info info;
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	json_t *o = NULL;
	const char *format, *head_hash;
	time_t claimed, signed_time;
	uint64_t seq;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = checkpoint_claimed_time(&claimed, envelope, envelope_len)) < 0)
		return rc;
	if (claimed > now + FUTURE_SKEW)
		return art_error_set(AF_ESIGNATURE, "the checkpoint claims a time in the future: "
				     "refused");
	/* Whoever acts signs the checkpoint that follows: release managers,
	 * builders, root keys (trust changes). */
	rc = art_sig_verify_payload(&info, &payload, &payload_len, kr, ART_AUDIT_CHECKPOINT_ROLE,
				    ART_AUDIT_CHECKPOINT_TYPE, envelope, envelope_len, claimed);
	if (rc == AF_EDENIED) {
		static const char *const others[] = {ART_ROLE_BUILDER, ART_ROLE_ROOT};
		char first[1024];
		size_t i;

		snprintf(first, sizeof(first), "%s", art_error_last());
		for (i = 0; i < 2 && rc == AF_EDENIED; i++)
			rc = art_sig_verify_payload(&info, &payload, &payload_len, kr, others[i],
						    ART_AUDIT_CHECKPOINT_TYPE, envelope,
						    envelope_len, claimed);
		if (rc == AF_EDENIED)
			art_error_set(rc, "%s", first);
	}
	if (rc < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		return art_error_set(rc, "checkpoint signature: %s", msg);
	}
	o = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, NULL);
	format = json_string_value(json_object_get(o, "format"));
	head_hash = json_string_value(json_object_get(o, "head_hash"));
	if (!format || strcmp(format, ART_AUDIT_CHECKPOINT_FORMAT) != 0 || !art_audit__hex64(head_hash) ||
	    !json_is_integer(json_object_get(o, "seq")) ||
	    json_integer_value(json_object_get(o, "seq")) < 0 ||
	    !json_is_string(json_object_get(o, "store")) || json_object_size(o) != 5 ||
	    !time_parse_exact(&signed_time, json_string_value(json_object_get(o, "time"))) ||
	    signed_time != claimed) {
		rc = art_error_set(AF_ECORRUPT, "the signed checkpoint is malformed");
		goto cleanup;
	}
	seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
	if ((rc = verify_walk(out, s, seq, at_seq, kr)) < 0)
		goto cleanup;
	out->checkpoint_seq = seq;
	if (seq > out->head_seq) {
		rc = art_error_set(AF_ECORRUPT, "the audit log was truncated: the checkpoint signed "
				   "by %s covers %llu entries, the log has %llu", info.keyid,
				   (unsigned long long)seq, (unsigned long long)out->head_seq);
		goto cleanup;
	}
	if (seq == 0 ? strcmp(head_hash, ART_AUDIT__ZERO_HASH) != 0 : strcmp(head_hash, at_seq) != 0) {
		rc = art_error_set(AF_ECORRUPT, "the audit log was rewritten: entry %llu's hash is "
				   "%.12s..., the checkpoint signed by %s says %.12s...",
				   (unsigned long long)seq, seq ? at_seq : ART_AUDIT__ZERO_HASH, info.keyid,
				   head_hash);
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_decref(o);
	free(payload);
	return rc;
}

int art_audit_checkpoint_to_dir(uint64_t *out_seq, const art_store *s, const art_key *key,
				const char *dir, time_t now)
{
	char path[4096], *cp = NULL;
	art_audit_report rep;
	int rc;

	if (out_seq)
		*out_seq = 0;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return art_error_set(AF_EIO, "%s: cannot create the checkpoint directory: %s", dir,
				     strerror(errno));
	if ((rc = art_audit_checkpoint(&cp, s, key, now)) < 0)
		return rc;
	/* The seq signed: read back from what was signed, not from a second walk
	 * (another writer may have appended meanwhile). */
	{
		json_t *env = json_loads(cp, 0, NULL), *payload = NULL;
		uint8_t *bytes = NULL;
		size_t n = 0;

		memset(&rep, 0, sizeof(rep));
		if (env && art_base64_decode(&bytes, &n,
					     json_string_value(json_object_get(env, "payload"))) == 0)
			payload = json_loadb((const char *)bytes, n, 0, NULL);
		bool read_back = payload != NULL;

		rep.head_seq = (uint64_t)json_integer_value(json_object_get(payload, "seq"));
		json_decref(payload);
		json_decref(env);
		free(bytes);
		/* We just signed it: only a failed allocation loses the seq (and
		 * would name the file 000...0.json). */
		if (!read_back) {
			rc = art_error_set(AF_ENOMEM, "out of memory reading the checkpoint back");
			goto cleanup;
		}
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%020llu.json", dir,
			     (unsigned long long)rep.head_seq) >= sizeof(path)) {
		rc = art_error_set(AF_EINVAL, "%s: checkpoint directory path too long", dir);
		goto cleanup;
	}
	if ((rc = art_file_write_atomic(path, cp, strlen(cp), 0644)) < 0)
		goto cleanup;
	snprintf(path, sizeof(path), "%s/latest.json", dir);
	if ((rc = art_file_write_atomic(path, cp, strlen(cp), 0644)) < 0)
		goto cleanup;
	if (out_seq)
		*out_seq = rep.head_seq;
cleanup:
	free(cp);
	return rc;
}
