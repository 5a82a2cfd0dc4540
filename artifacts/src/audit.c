/*
 * audit.c - the store's hash-chained audit log (see art/audit.h and
 * docs/releases.md).
 *
 * Invariants:
 *  - entries live in the `audit` database under their seq as 20 decimal
 *    digits, so key order is seq order and MDB_LAST is the head;
 *  - an entry is canonical JSON (compact, keys sorted) with exactly the
 *    fields action, actor, details, hash, outcome, prev_hash, seq, subject,
 *    time; hash = SHA-256 of the canonical JSON without hash; prev_hash of
 *    entry 1 is 64 zeros;
 *  - appends happen only inside a write transaction (art_audit__append), so
 *    the head read there cannot move under us (one writer at a time);
 *  - a head entry that cannot be read stops appends (AF_ECORRUPT) rather
 *    than starting a second chain.
 */
#include "art/audit.h"

#include "art/error.h"
#include "art/sig.h"
#include "art/util.h"
#include "store_internal.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_KEY_LEN 20
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define DETAILS_MAX (16u * 1024u)
#define ACTION_MAX 64u
#define FUTURE_SKEW 300

static const char *const entry_fields[] = {"action", "actor", "details", "hash", "outcome",
					   "prev_hash", "seq", "subject", "time"};

/* ---- small helpers ------------------------------------------------------- */

static void seq_key(char out[SEQ_KEY_LEN + 1], uint64_t seq)
{
	snprintf(out, SEQ_KEY_LEN + 1, "%020llu", (unsigned long long)seq);
}

static bool seq_from_key(uint64_t *seq, const MDB_val *k)
{
	const char *p = k->mv_data;
	uint64_t v = 0;
	size_t i;

	if (k->mv_size != SEQ_KEY_LEN)
		return false;
	for (i = 0; i < SEQ_KEY_LEN; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*seq = v;
	return true;
}

static bool hex64(const char *s)
{
	size_t i;

	if (!s || strlen(s) != ART_SHA256_HEX_LEN)
		return false;
	for (i = 0; i < ART_SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* An RFC 3339 UTC time exactly as art_time_format writes it. */
static bool time_parse_exact(time_t *out, const char *s)
{
	char again[21];

	if (!s || strlen(s) != 20 || s[10] != 'T' || s[19] != 'Z' || art_time_parse(out, s) < 0)
		return false;
	art_time_format(again, *out);
	return strcmp(again, s) == 0;
}

static bool text_ok(const char *s, size_t max)
{
	size_t i, n;

	if (!s)
		return true;
	n = strlen(s);
	if (n > max)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool action_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > ACTION_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-'))
			return false;
	return true;
}

/* ---- building an entry --------------------------------------------------- */

int art_audit__event_check(const art_audit_event *ev)
{
	json_t *details;

	if (!ev || !action_ok(ev->action))
		return art_error_set(AF_EINVAL, "audit: action '%.70s' must be [a-z][a-z0-9.-]*, at "
				     "most %u characters", ev && ev->action ? ev->action : "",
				     ACTION_MAX);
	if (!text_ok(ev->actor, ART_AUDIT_FIELD_MAX) || !text_ok(ev->subject, ART_AUDIT_FIELD_MAX))
		return art_error_set(AF_EINVAL, "audit: actor and subject are printable text of at "
				     "most %u bytes", ART_AUDIT_FIELD_MAX);
	if (ev->outcome && strcmp(ev->outcome, ART_AUDIT_OK) && strcmp(ev->outcome, ART_AUDIT_REFUSED))
		return art_error_set(AF_EINVAL, "audit: outcome is '%s' or '%s'", ART_AUDIT_OK,
				     ART_AUDIT_REFUSED);
	if (ev->details_json) {
		if (strlen(ev->details_json) > DETAILS_MAX)
			return art_error_set(AF_ETOOBIG, "audit: details over %u bytes", DETAILS_MAX);
		details = json_loads(ev->details_json, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(details)) {
			json_decref(details);
			return art_error_set(AF_EINVAL, "audit: details must be a JSON object");
		}
		json_decref(details);
	}
	return 0;
}

/*
 * The entry object without its hash. Returns NULL (message set) on a bad
 * event or out of memory.
 */
static json_t *entry_object(const art_audit_event *ev, uint64_t seq, time_t now,
			    const char *prev_hash)
{
	json_t *o = json_object(), *details;
	char when[21];

	art_time_format(when, now);
	details = ev->details_json ? json_loads(ev->details_json, JSON_REJECT_DUPLICATES, NULL)
				   : json_object();
	if (!json_is_object(details)) {
		json_decref(details);
		details = NULL;
	}
	if (!o || !details ||
	    json_object_set_new(o, "action", json_string(ev->action)) ||
	    json_object_set_new(o, "actor", json_string(ev->actor ? ev->actor : "unsigned")) ||
	    json_object_set_new(o, "details", details) ||
	    json_object_set_new(o, "outcome", json_string(ev->outcome ? ev->outcome
								     : ART_AUDIT_OK)) ||
	    json_object_set_new(o, "prev_hash", json_string(prev_hash)) ||
	    json_object_set_new(o, "seq", json_integer((json_int_t)seq)) ||
	    json_object_set_new(o, "subject", json_string(ev->subject ? ev->subject : "")) ||
	    json_object_set_new(o, "time", json_string(when))) {
		/* json_string is NULL for invalid UTF-8 as well as on OOM */
		json_decref(o);
		art_error_set(AF_EINVAL, "audit: the entry's text must be UTF-8 (or out of memory)");
		return NULL;
	}
	return o;
}

/* SHA-256 hex of the canonical JSON of o (which has no "hash"). */
static int entry_hash(char out[ART_SHA256_HEX_LEN + 1], json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	if (!text)
		return art_error_set(AF_ENOMEM, "out of memory hashing an audit entry");
	art_sha256_hex(text, strlen(text), out);
	free(text);
	return 0;
}

/* The head (last seq and hash) as seen by txn. */
static int head_read(const art_store *s, MDB_txn *txn, uint64_t *seq,
		     char hash[ART_SHA256_HEX_LEN + 1])
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	json_t *o = NULL;
	const char *h;
	uint64_t key_seq;
	int mrc, rc = 0;

	*seq = 0;
	memcpy(hash, ZERO_HASH, ART_SHA256_HEX_LEN + 1);
	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, ART_STORE__DB_AUDIT), &cur)) != 0)
		return art_store__lmdb_error(s, mrc, "cannot read the audit log");
	mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (mrc == MDB_NOTFOUND)
		goto cleanup;
	if (mrc) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the audit log");
		goto cleanup;
	}
	o = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, NULL);
	h = json_string_value(json_object_get(o, "hash"));
	if (!seq_from_key(&key_seq, &k) || !hex64(h) ||
	    !json_is_integer(json_object_get(o, "seq")) ||
	    (uint64_t)json_integer_value(json_object_get(o, "seq")) != key_seq) {
		rc = art_error_set(AF_ECORRUPT, "the audit log's last entry is damaged: nothing can "
				   "be appended until it is repaired (run: agentfactory audit verify)");
		goto cleanup;
	}
	*seq = key_seq;
	memcpy(hash, h, ART_SHA256_HEX_LEN + 1);
cleanup:
	json_decref(o);
	mdb_cursor_close(cur);
	return rc;
}

int art_audit__append(art_store *s, MDB_txn *txn, const art_audit_event *ev, time_t now,
		      uint64_t *out_seq)
{
	char prev[ART_SHA256_HEX_LEN + 1], hash[ART_SHA256_HEX_LEN + 1], key[SEQ_KEY_LEN + 1];
	json_t *o = NULL;
	char *text = NULL;
	uint64_t seq;
	MDB_val k, v;
	int mrc, rc;

	if ((rc = art_audit__event_check(ev)) < 0 || (rc = head_read(s, txn, &seq, prev)) < 0)
		return rc;
	seq++;
	if (!(o = entry_object(ev, seq, now, prev)))
		return AF_EINVAL;
	if ((rc = entry_hash(hash, o)) < 0)
		goto cleanup;
	if (json_object_set_new(o, "hash", json_string(hash)) ||
	    !(text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = art_error_set(AF_ENOMEM, "out of memory writing an audit entry");
		goto cleanup;
	}
	if (strlen(text) > ART_AUDIT_ENTRY_MAX) {
		rc = art_error_set(AF_ETOOBIG, "audit entry of %zu bytes is over the %u-byte limit",
				   strlen(text), ART_AUDIT_ENTRY_MAX);
		goto cleanup;
	}
	seq_key(key, seq);
	k.mv_data = key;
	k.mv_size = SEQ_KEY_LEN;
	v.mv_data = text;
	v.mv_size = strlen(text);
	mrc = mdb_put(txn, art_store__dbi(s, ART_STORE__DB_AUDIT), &k, &v, MDB_NOOVERWRITE);
	if (mrc) {
		rc = art_store__lmdb_error(s, mrc, "cannot append to the audit log");
		goto cleanup;
	}
	if (out_seq)
		*out_seq = seq;
	rc = 0;
cleanup:
	free(text);
	json_decref(o);
	return rc;
}

typedef struct append_ctx {
	const art_audit_event *ev;
	time_t now;
	uint64_t seq;
} append_ctx;

static int append_body(art_store *s, MDB_txn *txn, void *ctx)
{
	append_ctx *c = ctx;

	return art_audit__append(s, txn, c->ev, c->now, &c->seq);
}

int art_audit_append(uint64_t *out_seq, art_store *s, const art_audit_event *ev, time_t now)
{
	append_ctx c = {ev, now, 0};
	int rc;

	if (out_seq)
		*out_seq = 0;
	if ((rc = art_audit__event_check(ev)) < 0)
		return rc;
	if ((rc = art_store__write(s, append_body, &c)) < 0)
		return rc;
	if (out_seq)
		*out_seq = c.seq;
	return 0;
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
		snprintf(e->hash, sizeof(e->hash), "%s", hex64(h) ? h : "");
		h = json_string_value(json_object_get(o, "prev_hash"));
		snprintf(e->prev_hash, sizeof(e->prev_hash), "%s", hex64(h) ? h : "");
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
	char key[SEQ_KEY_LEN + 1];
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
	seq_key(key, after + 1);
	k.mv_data = key;
	k.mv_size = SEQ_KEY_LEN;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && (!max || count < max);
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (!seq_from_key(&key_seq, &k))
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
	memcpy(hash, ZERO_HASH, ART_SHA256_HEX_LEN + 1);
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	rc = head_read(s, txn, seq, hash);
	art_store__read_end(s, txn);
	return rc;
}

/* ---- verification -------------------------------------------------------- */

/*
 * Check one stored entry strictly against the chain so far. On success
 * hash_out is its hash.
 */
static int entry_check(uint64_t key_seq, uint64_t expect_seq, const char *prev,
		       const MDB_val *v, char hash_out[ART_SHA256_HEX_LEN + 1])
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
	if (!json_is_object(o) || json_object_size(o) != sizeof(entry_fields) / sizeof(*entry_fields)) {
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
	    !action_ok(json_string_value(json_object_get(o, "action")))) {
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
	if (!hex64(stored_hash) || !hex64(p)) {
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
	if ((rc = entry_hash(computed, o)) < 0)
		goto cleanup;
	if (strcmp(computed, hash_out) != 0) {
		rc = art_error_set(AF_ECORRUPT, "audit entry %llu was edited: its content hashes to "
				   "%.12s..., not to its recorded hash %.12s...",
				   (unsigned long long)key_seq, computed, hash_out);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(again);
	json_decref(o);
	return rc;
}

/*
 * Walk the whole chain in one snapshot. When want_seq is non-zero and the
 * chain reaches it, want_hash receives that entry's hash.
 */
static int verify_walk(art_audit_report *out, const art_store *s, uint64_t want_seq,
		       char want_hash[ART_SHA256_HEX_LEN + 1])
{
	char prev[ART_SHA256_HEX_LEN + 1] = ZERO_HASH, hash[ART_SHA256_HEX_LEN + 1];
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint64_t expect = 1, key_seq;
	int mrc, rc;

	memset(out, 0, sizeof(*out));
	memcpy(out->head_hash, ZERO_HASH, sizeof(out->head_hash));
	if ((rc = art_store__read_begin(s, &txn)) < 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, art_store__dbi(s, ART_STORE__DB_AUDIT), &cur)) != 0) {
		rc = art_store__lmdb_error(s, mrc, "cannot read the audit log");
		goto cleanup;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), expect++) {
		if (!seq_from_key(&key_seq, &k)) {
			out->bad_seq = expect;
			rc = art_error_set(AF_ECORRUPT, "the audit log has a malformed key after entry "
					   "%llu: an entry was inserted", (unsigned long long)expect - 1);
			goto cleanup;
		}
		if ((rc = entry_check(key_seq, expect, prev, &v, hash)) < 0) {
			out->bad_seq = expect;
			goto cleanup;
		}
		out->entries++;
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
	rc = 0;
cleanup:
	mdb_cursor_close(cur);
	art_store__read_end(s, txn);
	return rc;
}

int art_audit_verify(art_audit_report *out, const art_store *s)
{
	return verify_walk(out, s, 0, NULL);
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

	if (len > ART_SIG_ENVELOPE_MAX || !b64 || art_base64_decode(&bytes, &n, b64) < 0 ||
	    !(payload = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, NULL)) ||
	    !time_parse_exact(out, json_string_value(json_object_get(payload, "time"))))
		rc = art_error_set(AF_ECORRUPT, "the checkpoint is not a signed audit checkpoint "
				   "(malformed envelope or payload)");
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
	rc = art_sig_verify_payload(&info, &payload, &payload_len, kr, ART_AUDIT_CHECKPOINT_ROLE,
				    ART_AUDIT_CHECKPOINT_TYPE, envelope, envelope_len, claimed);
	if (rc < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		return art_error_set(rc, "checkpoint signature: %s", msg);
	}
	o = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, NULL);
	format = json_string_value(json_object_get(o, "format"));
	head_hash = json_string_value(json_object_get(o, "head_hash"));
	if (!format || strcmp(format, ART_AUDIT_CHECKPOINT_FORMAT) != 0 || !hex64(head_hash) ||
	    !json_is_integer(json_object_get(o, "seq")) ||
	    json_integer_value(json_object_get(o, "seq")) < 0 ||
	    !json_is_string(json_object_get(o, "store")) || json_object_size(o) != 5 ||
	    !time_parse_exact(&signed_time, json_string_value(json_object_get(o, "time"))) ||
	    signed_time != claimed) {
		rc = art_error_set(AF_ECORRUPT, "the signed checkpoint is malformed");
		goto cleanup;
	}
	seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
	if ((rc = verify_walk(out, s, seq, at_seq)) < 0)
		goto cleanup;
	out->checkpoint_seq = seq;
	if (seq > out->head_seq) {
		rc = art_error_set(AF_ECORRUPT, "the audit log was truncated: the checkpoint signed "
				   "by %s covers %llu entries, the log has %llu", info.keyid,
				   (unsigned long long)seq, (unsigned long long)out->head_seq);
		goto cleanup;
	}
	if (seq == 0 ? strcmp(head_hash, ZERO_HASH) != 0 : strcmp(head_hash, at_seq) != 0) {
		rc = art_error_set(AF_ECORRUPT, "the audit log was rewritten: entry %llu's hash is "
				   "%.12s..., the checkpoint signed by %s says %.12s...",
				   (unsigned long long)seq, seq ? at_seq : ZERO_HASH, info.keyid,
				   head_hash);
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_decref(o);
	free(payload);
	return rc;
}
