/*
 * sig.c - DSSE envelopes over in-toto style statements (see art/sig.h).
 *
 * Verification never trusts a byte of the statement before a signature over
 * it has verified with a key the keyring allows for the required role at the
 * given time: the envelope is parsed (strictly, size-capped), the payload
 * type compared, the signatures checked, and only then is the payload read
 * as a statement and compared with what the caller holds.
 */
#include "art/sig.h"

#include "art/error.h"
#include "art/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPE_PREFIX "application/vnd.agentfactory."
#define TYPE_SUFFIX "+json"
#define PREDICATE_PREFIX "https://agentfactory.dev/"
#define RESIGN_HINT "agentfactory sign --key KEY FILE (a template) or agentfactory build (an artifact)"

typedef struct envelope_sig {
	char keyid[ART_SHA256_HEX_LEN + 1];
	uint8_t *sig;
	size_t sig_len;
} envelope_sig;

typedef struct envelope {
	char *payload_type;
	uint8_t *payload;
	size_t payload_len;
	envelope_sig sigs[ART_SIG_MAX_SIGNATURES];
	size_t nsigs;
} envelope;

static void envelope_clear(envelope *env)
{
	size_t i;

	free(env->payload_type);
	free(env->payload);
	for (i = 0; i < env->nsigs; i++)
		free(env->sigs[i].sig);
	memset(env, 0, sizeof(*env));
}

int art_sig_predicate_type(char **out, const char *payload_type)
{
	size_t plen = strlen(TYPE_PREFIX), slen = strlen(TYPE_SUFFIX), len, i, kind_len;
	art_buf b = ART_BUF_INIT;
	const char *kind, *ver;

	*out = NULL;
	len = payload_type ? strlen(payload_type) : 0;
	if (len <= plen + slen || len > 200 || strncmp(payload_type, TYPE_PREFIX, plen) != 0 ||
	    strcmp(payload_type + len - slen, TYPE_SUFFIX) != 0)
		goto bad;
	/* <kind>.v<N> between prefix and suffix: kind [a-z][a-z0-9-]*, N digits. */
	kind = payload_type + plen;
	ver = NULL;
	for (i = 0; kind + i < payload_type + len - slen; i++)
		if (kind[i] == '.')
			ver = kind + i;
	if (!ver || ver == kind || ver[1] != 'v')
		goto bad;
	kind_len = (size_t)(ver - kind);
	if (kind[0] < 'a' || kind[0] > 'z')
		goto bad;
	for (i = 0; i < kind_len; i++)
		if (!((kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9') ||
		      kind[i] == '-'))
			goto bad;
	if (ver + 2 == payload_type + len - slen)
		goto bad;
	for (i = 2; ver + i < payload_type + len - slen; i++)
		if (ver[i] < '0' || ver[i] > '9')
			goto bad;
	if (art_buf_printf(&b, PREDICATE_PREFIX "%.*s/%.*s", (int)kind_len, kind,
			   (int)(payload_type + len - slen - ver - 1), ver + 1) < 0) {
		art_buf_free(&b);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	*out = art_buf_detach(&b);
	return 0;
bad:
	return art_error_set(AF_EINVAL,
			     "unsupported payload type '%s': expected "
			     "application/vnd.agentfactory.<kind>.v<N>+json",
			     payload_type ? payload_type : "(null)");
}

/*
 * A copy of untrusted text fit for an error message: at most 100 bytes,
 * control characters replaced by '?', so an envelope cannot put terminal
 * escape sequences into what the CLI prints.
 */
typedef struct shown {
	char s[104];
} shown;

static shown show(const char *src)
{
	shown out;
	size_t i;

	for (i = 0; i < 100 && src[i]; i++)
		out.s[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
	if (src[i])
		out.s[i++] = '~';
	out.s[i] = '\0';
	return out;
}

static bool field_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= ART_SIG_FIELD_MAX;
}

/* ---- signing ------------------------------------------------------------ */

int art_sig_sign_payload(char **out_json, const art_key *key, const char *payload_type,
			 const void *payload, size_t payload_len)
{
	uint8_t *pae = NULL, *sig = NULL;
	size_t pae_len = 0, sig_len = 0;
	char *b64_payload = NULL, *b64_sig = NULL, *text = NULL, *pred = NULL;
	json_t *root = NULL, *sigs, *s;
	art_buf b = ART_BUF_INIT;
	int rc;

	*out_json = NULL;
	/* Our own statements carry a typed payload; a standard in-toto
	 * attestation (e.g. SLSA provenance) carries the in-toto type. */
	if ((!payload_type || strcmp(payload_type, ART_SIG_TYPE_INTOTO) != 0) &&
	    (rc = art_sig_predicate_type(&pred, payload_type)) < 0)
		goto cleanup;
	if (payload_len > ART_SIG_ENVELOPE_MAX) {
		rc = art_error_set(AF_ETOOBIG, "payload of %zu bytes is too large to sign "
				   "(limit %u)", payload_len, ART_SIG_ENVELOPE_MAX);
		goto cleanup;
	}
	if ((rc = art_sig_pae(&pae, &pae_len, payload_type, payload, payload_len)) < 0 ||
	    (rc = art_key_sign(&sig, &sig_len, key, pae, pae_len)) < 0 ||
	    (rc = art_base64_encode(&b64_payload, payload, payload_len)) < 0 ||
	    (rc = art_base64_encode(&b64_sig, sig, sig_len)) < 0)
		goto cleanup;
	/* json_*_set_new and _append_new take the reference even when they fail. */
	root = json_object();
	if (!root || json_object_set_new(root, "payloadType", json_string(payload_type)) ||
	    json_object_set_new(root, "payload", json_string(b64_payload)) ||
	    json_object_set_new(root, "signatures", sigs = json_array()) ||
	    json_array_append_new(sigs, s = json_object()) ||
	    json_object_set_new(s, "keyid", json_string(art_key_id(key))) ||
	    json_object_set_new(s, "sig", json_string(b64_sig)) ||
	    !(text = json_dumps(root, JSON_INDENT(2)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory building a signature envelope");
		goto cleanup;
	}
	b.max = ART_SIG_ENVELOPE_MAX;
	if ((rc = art_buf_puts(&b, text)) < 0 || (rc = art_buf_puts(&b, "\n")) < 0) {
		if (rc == AF_ETOOBIG)
			rc = art_error_set(AF_ETOOBIG, "signature envelope would exceed %u bytes",
					   ART_SIG_ENVELOPE_MAX);
		goto cleanup;
	}
	*out_json = art_buf_detach(&b);
cleanup:
	art_buf_free(&b);
	json_decref(root);
	free(text);
	free(b64_sig);
	free(b64_payload);
	free(sig);
	free(pae);
	free(pred);
	return rc;
}

int art_sig_sign(char **out_json, const art_key *key, const char *payload_type,
		 const char *name, const char *version, const void *content,
		 size_t content_len)
{
	char digest[ART_SHA256_HEX_LEN + 1], when[21];
	json_t *st = NULL, *subject, *subj, *dig, *pred;
	char *pred_type = NULL, *payload = NULL;
	int rc;

	*out_json = NULL;
	if (!field_ok(name) || !field_ok(version))
		return art_error_set(AF_EINVAL, "a signed statement needs a name and a version of "
				     "1 to %u bytes", ART_SIG_FIELD_MAX);
	if ((rc = art_sig_predicate_type(&pred_type, payload_type)) < 0)
		return rc;
	art_sha256_hex(content, content_len, digest);
	art_time_format(when, art_time_now());
	st = json_object();
	if (!st || json_object_set_new(st, "_type", json_string(ART_SIG_STATEMENT_TYPE)) ||
	    json_object_set_new(st, "subject", subject = json_array()) ||
	    json_array_append_new(subject, subj = json_object()) ||
	    json_object_set_new(subj, "name", json_string(name)) ||
	    json_object_set_new(subj, "digest", dig = json_object()) ||
	    json_object_set_new(dig, "sha256", json_string(digest)) ||
	    json_object_set_new(st, "predicateType", json_string(pred_type)) ||
	    json_object_set_new(st, "predicate", pred = json_object()) ||
	    json_object_set_new(pred, "name", json_string(name)) ||
	    json_object_set_new(pred, "version", json_string(version)) ||
	    json_object_set_new(pred, "signed_at", json_string(when)) ||
	    !(payload = json_dumps(st, JSON_COMPACT))) {
		/* json_string() is NULL for invalid UTF-8 as well as on OOM. */
		rc = art_error_set(AF_EINVAL, "cannot build the statement for '%s' '%s': "
				   "name and version must be UTF-8 text (or out of memory)",
				   name, version);
		goto cleanup;
	}
	rc = art_sig_sign_payload(out_json, key, payload_type, payload, strlen(payload));
cleanup:
	json_decref(st);
	free(payload);
	free(pred_type);
	return rc;
}

/* ---- verification ------------------------------------------------------- */

static bool keyid_valid(const char *id)
{
	size_t i;

	for (i = 0; i < ART_SHA256_HEX_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return id[ART_SHA256_HEX_LEN] == '\0';
}

/*
 * Decode base64 and insist it is the canonical encoding of what it decodes
 * to (unused trailing bits zero), so an envelope has exactly one spelling.
 */
static int b64_decode_canonical(uint8_t **out, size_t *out_len, const char *b64)
{
	char *again = NULL;
	int rc;

	if ((rc = art_base64_decode(out, out_len, b64)) < 0)
		return rc;
	if ((rc = art_base64_encode(&again, *out, *out_len)) == 0 && strcmp(again, b64) != 0)
		rc = AF_ECORRUPT;
	free(again);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	return rc;
}

static int only_fields(json_t *obj, const char *a, const char *b, const char *c,
		       const char *where)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		if (strcmp(k, a) && strcmp(k, b) && (!c || strcmp(k, c)))
			return art_error_set(AF_ECORRUPT,
					     "malformed signature envelope: unknown field '%.40s' in %s",
					     k, where);
	}
	return 0;
}

static int envelope_parse(envelope *env, const char *text, size_t len)
{
	json_t *root = NULL, *type, *payload, *sigs, *item, *keyid, *sig;
	json_error_t jerr;
	size_t i;
	int rc = 0;

	memset(env, 0, sizeof(*env));
	if (len > ART_SIG_ENVELOPE_MAX)
		return art_error_set(AF_ECORRUPT,
				     "signature envelope of %zu bytes exceeds the %u-byte limit; "
				     "a genuine one is a few KiB: replace it (%s)",
				     len, ART_SIG_ENVELOPE_MAX, RESIGN_HINT);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = art_error_set(AF_ECORRUPT,
				   "malformed signature envelope (line %d, column %d: %s); "
				   "re-sign: %s", jerr.line, jerr.column, jerr.text, RESIGN_HINT);
		goto cleanup;
	}
	if (!json_is_object(root)) {
		rc = art_error_set(AF_ECORRUPT, "malformed signature envelope: not a JSON object");
		goto cleanup;
	}
	if ((rc = only_fields(root, "payloadType", "payload", "signatures", "the envelope")) < 0)
		goto cleanup;
	type = json_object_get(root, "payloadType");
	payload = json_object_get(root, "payload");
	sigs = json_object_get(root, "signatures");
	if (!json_is_string(type) || !json_is_string(payload) || !json_is_array(sigs)) {
		rc = art_error_set(AF_ECORRUPT,
				   "malformed signature envelope: needs string 'payloadType', string "
				   "'payload' and array 'signatures'");
		goto cleanup;
	}
	if (json_array_size(sigs) == 0 || json_array_size(sigs) > ART_SIG_MAX_SIGNATURES) {
		rc = art_error_set(AF_ECORRUPT,
				   "malformed signature envelope: %zu signatures (expected 1 to %u)",
				   json_array_size(sigs), ART_SIG_MAX_SIGNATURES);
		goto cleanup;
	}
	if (!(env->payload_type = strdup(json_string_value(type)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = b64_decode_canonical(&env->payload, &env->payload_len,
				       json_string_value(payload))) < 0) {
		if (rc != AF_ENOMEM)
			rc = art_error_set(AF_ECORRUPT, "malformed signature envelope: 'payload' "
					   "is not canonical base64");
		goto cleanup;
	}
	json_array_foreach(sigs, i, item) {
		envelope_sig *es = &env->sigs[i];

		if (!json_is_object(item) ||
		    (rc = only_fields(item, "keyid", "sig", NULL, "a signature")) < 0) {
			if (rc == 0)
				rc = art_error_set(AF_ECORRUPT, "malformed signature envelope: "
						   "signatures[%zu] is not an object", i);
			goto cleanup;
		}
		keyid = json_object_get(item, "keyid");
		sig = json_object_get(item, "sig");
		if (!json_is_string(keyid) || !json_is_string(sig) ||
		    !keyid_valid(json_string_value(keyid))) {
			rc = art_error_set(AF_ECORRUPT, "malformed signature envelope: "
					   "signatures[%zu] needs a 'keyid' of 64 hex digits and a "
					   "'sig'", i);
			goto cleanup;
		}
		memcpy(es->keyid, json_string_value(keyid), sizeof(es->keyid));
		env->nsigs = i + 1;
		rc = b64_decode_canonical(&es->sig, &es->sig_len, json_string_value(sig));
		if (rc == AF_ENOMEM)
			goto cleanup;
		if (rc < 0 || es->sig_len == 0) {
			rc = art_error_set(AF_ECORRUPT, "malformed signature envelope: "
					   "signatures[%zu].sig is not canonical base64", i);
			goto cleanup;
		}
	}
cleanup:
	json_decref(root);
	if (rc < 0)
		envelope_clear(env);
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

static int verify_envelope(art_sig_info *info, const envelope *env, const art_keyring *kr,
			   const char *required_role, const char *payload_type, time_t now)
{
	char best_msg[1024] = "";
	int best_rc = 0, best_rank = 0, rc;
	uint8_t *pae = NULL;
	size_t pae_len = 0, i;
	const art_key *key;

	if (strcmp(env->payload_type, payload_type) != 0)
		return art_error_set(AF_ESIGNATURE,
				     "payload type mismatch: the envelope is signed as '%s', "
				     "expected '%s'; a signature for another kind of document "
				     "cannot be used here: sign this file with %s",
				     show(env->payload_type).s, payload_type, RESIGN_HINT);
	if ((rc = art_sig_pae(&pae, &pae_len, env->payload_type, env->payload,
			      env->payload_len)) < 0)
		return rc;
	for (i = 0; i < env->nsigs; i++) {
		rc = art_keyring_lookup(&key, kr, env->sigs[i].keyid, required_role, now);
		if (rc == 0)
			rc = art_key_verify(key, pae, pae_len, env->sigs[i].sig, env->sigs[i].sig_len);
		if (rc == AF_ESIGNATURE)
			art_error_set(rc, "signature by %s key %s does not verify: the envelope "
				      "was altered or made with another key; re-sign: %s",
				      required_role, env->sigs[i].keyid, RESIGN_HINT);
		if (rc == 0) {
			if (info) {
				memcpy(info->keyid, env->sigs[i].keyid, sizeof(info->keyid));
				snprintf(info->role, sizeof(info->role), "%s", required_role);
				info->signed_at = 0;
			}
			free(pae);
			return 0;
		}
		if (failure_rank(rc) == 0) {
			free(pae);
			return rc; /* ENOMEM, ECRYPTO: not a verdict on the signature */
		}
		if (failure_rank(rc) > best_rank) {
			best_rank = failure_rank(rc);
			best_rc = rc;
			snprintf(best_msg, sizeof(best_msg), "%s", art_error_last());
		}
	}
	free(pae);
	return art_error_set(best_rc, "%s", best_msg);
}

int art_sig_verify_payload(art_sig_info *info_out, uint8_t **payload, size_t *payload_len,
			   const art_keyring *kr, const char *required_role,
			   const char *payload_type, const char *envelope_text,
			   size_t envelope_len, time_t now)
{
	envelope env;
	int rc;

	*payload = NULL;
	*payload_len = 0;
	if (!kr || !art_keyring_role_valid(required_role) || !payload_type || !envelope_text)
		return art_error_set(AF_EINVAL, "signature verification needs a keyring, a known "
				     "role, a payload type and an envelope");
	if ((rc = envelope_parse(&env, envelope_text, envelope_len)) < 0)
		return rc;
	rc = verify_envelope(info_out, &env, kr, required_role, payload_type, now);
	if (rc == 0) {
		*payload = env.payload;
		*payload_len = env.payload_len;
		env.payload = NULL;
	}
	envelope_clear(&env);
	return rc;
}

/* A string member of obj, or NULL. */
static const char *str_at(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int art_sig_verify(art_sig_info *info_out, const art_keyring *kr, const char *required_role,
		   const char *payload_type, const char *name, const char *version,
		   const void *content, size_t content_len, const char *envelope_text,
		   size_t envelope_len, time_t now)
{
	char digest[ART_SHA256_HEX_LEN + 1];
	const char *st_type, *st_pred_type, *subj_name, *subj_digest, *p_name, *p_version, *at;
	char *pred_type = NULL;
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	json_t *st = NULL, *subject, *subj, *pred;
	json_error_t jerr;
	art_sig_info info;
	time_t signed_at;
	int rc;

	memset(&info, 0, sizeof(info));
	if (!name || !version || (!content && content_len))
		return art_error_set(AF_EINVAL, "signature verification needs the template's "
				     "name, version and content");
	if ((rc = art_sig_predicate_type(&pred_type, payload_type)) < 0)
		return rc;
	rc = art_sig_verify_payload(&info, &payload, &payload_len, kr, required_role,
				    payload_type, envelope_text, envelope_len, now);
	if (rc < 0)
		goto cleanup;
	/* From here on the payload is signed by a trusted key: read it. */
	st = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, &jerr);
	subject = json_object_get(st, "subject");
	subj = json_array_get(subject, 0);
	pred = json_object_get(st, "predicate");
	st_type = str_at(st, "_type");
	st_pred_type = str_at(st, "predicateType");
	subj_name = str_at(subj, "name");
	subj_digest = str_at(json_object_get(subj, "digest"), "sha256");
	p_name = str_at(pred, "name");
	p_version = str_at(pred, "version");
	if (!json_is_object(st) || json_array_size(subject) != 1 || !st_type || !st_pred_type ||
	    !subj_name || !subj_digest || !p_name || !p_version) {
		rc = art_error_set(AF_ECORRUPT,
				   "the signed statement is malformed (needs _type, one subject with "
				   "name and digest.sha256, predicateType, predicate.name and "
				   "predicate.version); re-sign with a current tool: %s", RESIGN_HINT);
		goto cleanup;
	}
	if (strcmp(st_type, ART_SIG_STATEMENT_TYPE) != 0 || strcmp(st_pred_type, pred_type) != 0) {
		rc = art_error_set(AF_ESIGNATURE,
				   "the signed statement is a '%s' / '%s', expected '%s' / "
				   "'%s'; sign this file with %s", show(st_type).s, show(st_pred_type).s,
				   ART_SIG_STATEMENT_TYPE, pred_type, RESIGN_HINT);
		goto cleanup;
	}
	if (strcmp(p_name, name) != 0 || strcmp(subj_name, name) != 0) {
		rc = art_error_set(AF_ESIGNATURE,
				   "signed for template '%s', not '%s': a signature cannot be "
				   "moved to another template; sign this one: %s",
				   show(strcmp(p_name, name) ? p_name : subj_name).s, show(name).s,
				   RESIGN_HINT);
		goto cleanup;
	}
	if (strcmp(p_version, version) != 0) {
		rc = art_error_set(AF_ESIGNATURE,
				   "signature is for version %s, file is version %s: a "
				   "changed template must be signed again: %s",
				   show(p_version).s, show(version).s, RESIGN_HINT);
		goto cleanup;
	}
	art_sha256_hex(content, content_len, digest);
	if (strcmp(subj_digest, digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE,
				   "content digest mismatch: file changed after signing (signed "
				   "sha256 %s, file sha256 %s); review the change and re-sign: %s",
				   show(subj_digest).s, digest, RESIGN_HINT);
		goto cleanup;
	}
	at = str_at(pred, "signed_at");
	if (at && strlen(at) == 20 && art_time_parse(&signed_at, at) == 0)
		info.signed_at = signed_at;
	if (info_out)
		*info_out = info;
cleanup:
	json_decref(st);
	free(payload);
	free(pred_type);
	return rc;
}
