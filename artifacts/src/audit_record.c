/*
 * audit_record.c - writing the store's hash-chained audit log (see
 * art/audit.h and docs/releases.md): the entry format, the append inside a
 * write transaction (art_audit__append, used by release.c and by a batch's
 * queued entries), art_audit_append, and art_store_txn_audit (declared in
 * art/store.h). Reading and verifying the log is audit.c.
 *
 * Invariants:
 *  - entries live in the `audit` database under their seq as 20 decimal
 *    digits, so key order is seq order and MDB_LAST is the head;
 *  - an entry is canonical JSON (compact, keys sorted) with exactly the
 *    fields action, actor, details, hash, outcome, prev_hash, seq, subject,
 *    time (and signatures, when signed); hash = SHA-256 of the canonical
 *    JSON without hash; prev_hash of entry 1 is 64 zeros;
 *  - appends happen only inside a write transaction (art_audit__append), so
 *    the head read there cannot move under us (one writer at a time);
 *  - a head entry that cannot be read stops appends (AF_ECORRUPT) rather
 *    than starting a second chain;
 *  - this file uses the store (store_internal.h) and the store calls
 *    nothing of it: a batch's queued entries are its last write
 *    (art_store__txn_last), registered by art_store_txn_audit.
 */
#include "audit_internal.h"

#include "art/error.h"
#include "art/sig.h"
#include "art/store.h"
#include "art/util.h"
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETAILS_MAX (16u * 1024u)
#define ACTION_MAX 64u

/* ---- small helpers ------------------------------------------------------- */

void art_audit__seq_key(char out[ART_AUDIT__SEQ_KEY_LEN + 1], uint64_t seq)
{
	snprintf(out, ART_AUDIT__SEQ_KEY_LEN + 1, "%020llu", (unsigned long long)seq);
}

bool art_audit__seq_from_key(uint64_t *seq, const MDB_val *k)
{
	const char *p = k->mv_data;
	uint64_t v = 0;
	size_t i;

	if (k->mv_size != ART_AUDIT__SEQ_KEY_LEN)
		return false;
	for (i = 0; i < ART_AUDIT__SEQ_KEY_LEN; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*seq = v;
	return true;
}

bool art_audit__hex64(const char *s)
{
	size_t i;

	if (!s || strlen(s) != ART_SHA256_HEX_LEN)
		return false;
	for (i = 0; i < ART_SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
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

bool art_audit__action_ok(const char *s)
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

	if (!ev || !art_audit__action_ok(ev->action))
		return art_error_set(AF_EINVAL, "audit: action '%.70s' must be [a-z][a-z0-9.-]*, at "
				     "most %u characters", ev && ev->action ? ev->action : "",
				     ACTION_MAX);
	if (!text_ok(ev->actor, ART_AUDIT_FIELD_MAX) || !text_ok(ev->subject, ART_AUDIT_FIELD_MAX))
		return art_error_set(AF_EINVAL, "audit: actor and subject are printable text of at "
				     "most %u bytes", ART_AUDIT_FIELD_MAX);
	if (ev->n_signers > ART_AUDIT_MAX_SIGNERS || (ev->n_signers && !ev->signers))
		return art_error_set(AF_EINVAL, "audit: at most %u signers", ART_AUDIT_MAX_SIGNERS);
	for (size_t i = 0; i < ev->n_signers; i++)
		if (!ev->signers[i] || !art_key_is_private(ev->signers[i]))
			return art_error_set(AF_EINVAL, "audit: an entry is signed with private keys");
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
int art_audit__entry_hash(char out[ART_SHA256_HEX_LEN + 1], json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	if (!text)
		return art_error_set(AF_ENOMEM, "out of memory hashing an audit entry");
	art_sha256_hex(text, strlen(text), out);
	free(text);
	return 0;
}

/* The bytes the actors sign: PAE over the canonical entry without hash
 * and signatures. */
int art_audit__entry_pae(uint8_t **pae, size_t *pae_len, json_t *o)
{
	json_t *copy = json_copy(o);
	char *text = NULL;
	int rc;

	if (!copy)
		return art_error_set(AF_ENOMEM, "out of memory signing an audit entry");
	json_object_del(copy, "hash");
	json_object_del(copy, "signatures");
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	if (!text)
		return art_error_set(AF_ENOMEM, "out of memory signing an audit entry");
	rc = art_sig_pae(pae, pae_len, ART_AUDIT_ENTRY_TYPE, text, strlen(text));
	free(text);
	return rc;
}

/* Add "signatures" to o (which has no hash yet), one per signer. */
static int entry_sign(json_t *o, const art_key *const *signers, size_t n)
{
	json_t *arr = NULL, *item;
	uint8_t *pae = NULL, *sig = NULL;
	size_t pae_len = 0, sig_len = 0, i;
	char *b64 = NULL;
	int rc;

	if (!n)
		return 0;
	if ((rc = art_audit__entry_pae(&pae, &pae_len, o)) < 0)
		return rc;
	arr = json_array();
	for (i = 0; i < n; i++) {
		if ((rc = art_key_sign(&sig, &sig_len, signers[i], pae, pae_len)) < 0 ||
		    (rc = art_base64_encode(&b64, sig, sig_len)) < 0)
			goto cleanup;
		item = json_pack("{s:s, s:s}", "keyid", art_key_id(signers[i]), "sig", b64);
		if (!arr || !item || json_array_append_new(arr, item)) {
			rc = art_error_set(AF_ENOMEM, "out of memory signing an audit entry");
			goto cleanup;
		}
		free(sig);
		free(b64);
		sig = NULL;
		b64 = NULL;
	}
	if (json_object_set_new(o, "signatures", arr)) {
		arr = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory signing an audit entry");
		goto cleanup;
	}
	arr = NULL;
	rc = 0;
cleanup:
	json_decref(arr);
	free(sig);
	free(b64);
	free(pae);
	return rc;
}

/* The head (last seq and hash) as seen by txn. */
int art_audit__head_read(const art_store *s, MDB_txn *txn, uint64_t *seq,
		     char hash[ART_SHA256_HEX_LEN + 1])
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	json_t *o = NULL;
	const char *h;
	uint64_t key_seq;
	int mrc, rc = 0;

	*seq = 0;
	memcpy(hash, ART_AUDIT__ZERO_HASH, ART_SHA256_HEX_LEN + 1);
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
	if (!art_audit__seq_from_key(&key_seq, &k) || !art_audit__hex64(h) ||
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
	char prev[ART_SHA256_HEX_LEN + 1], hash[ART_SHA256_HEX_LEN + 1], key[ART_AUDIT__SEQ_KEY_LEN + 1];
	json_t *o = NULL;
	char *text = NULL;
	uint64_t seq;
	MDB_val k, v;
	int mrc, rc;

	if ((rc = art_audit__event_check(ev)) < 0 || (rc = art_audit__head_read(s, txn, &seq, prev)) < 0)
		return rc;
	seq++;
	if (!(o = entry_object(ev, seq, now, prev)))
		return AF_EINVAL;
	if ((rc = entry_sign(o, ev->signers, ev->n_signers)) < 0 || (rc = art_audit__entry_hash(hash, o)) < 0)
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
	art_audit__seq_key(key, seq);
	k.mv_data = key;
	k.mv_size = ART_AUDIT__SEQ_KEY_LEN;
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


/* ---- a batch's entries (art/store.h) ----------------------------------------- */

typedef struct pending_audit {
	char *action, *actor, *subject, *outcome, *details;
	time_t time;
	const art_key *signers[ART_AUDIT_MAX_SIGNERS]; /* borrowed until the commit */
	size_t n_signers;
} pending_audit;

/* The entries queued in one batch, appended by its last write. */
typedef struct audit_queue {
	pending_audit *items;
	size_t n;
} audit_queue;

static void queue_free(void *ctx)
{
	audit_queue *q = ctx;
	size_t i;

	for (i = 0; i < q->n; i++) {
		free(q->items[i].action);
		free(q->items[i].actor);
		free(q->items[i].subject);
		free(q->items[i].outcome);
		free(q->items[i].details);
	}
	free(q->items);
	free(q);
}

/* The batch's last write: its entries, in the order queued. */
static int queue_write(art_store *s, MDB_txn *txn, void *ctx)
{
	const audit_queue *q = ctx;
	size_t i;
	int rc;

	for (i = 0; i < q->n; i++) {
		const pending_audit *pa = &q->items[i];
		art_audit_event ev = {pa->action, pa->actor, pa->subject, pa->outcome, pa->details,
				      pa->signers, pa->n_signers};

		if ((rc = art_audit__append(s, txn, &ev, pa->time, NULL)) < 0)
			return rc;
	}
	return 0;
}

static char *dup_or(const char *s, const char *dflt)
{
	return strdup(s ? s : dflt);
}

int art_store_txn_audit(art_store_txn *t, const art_audit_event *ev, time_t now)
{
	audit_queue *q;
	pending_audit *grown, *pa;
	int rc;

	if ((rc = art_audit__event_check(ev)) < 0)
		return rc;
	if (!(q = art_store__txn_last_ctx(t, queue_write))) {
		if (!(q = calloc(1, sizeof(*q))))
			return art_error_set(AF_ENOMEM, "out of memory queuing an audit entry");
		if ((rc = art_store__txn_last(t, queue_write, q, queue_free)) < 0)
			return rc;
	}
	if (!(grown = realloc(q->items, (q->n + 1) * sizeof(*grown))))
		return art_error_set(AF_ENOMEM, "out of memory queuing an audit entry");
	q->items = grown;
	pa = &q->items[q->n];
	pa->action = dup_or(ev->action, "");
	pa->actor = dup_or(ev->actor, "unsigned");
	pa->subject = dup_or(ev->subject, "");
	pa->outcome = dup_or(ev->outcome, ART_AUDIT_OK);
	pa->details = dup_or(ev->details_json, "{}");
	pa->time = now;
	pa->n_signers = ev->n_signers;
	if (ev->n_signers)
		memcpy(pa->signers, ev->signers, ev->n_signers * sizeof(*ev->signers));
	q->n++;
	if (!pa->action || !pa->actor || !pa->subject || !pa->outcome || !pa->details)
		return art_error_set(AF_ENOMEM, "out of memory queuing an audit entry");
	return 0;
}
