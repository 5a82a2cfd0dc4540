/*
 * oci_model.c - the registry layout of a store (push) and its verified way
 * back into a store (pull). docs/registry.md describes the layout:
 *
 *   artifact  OCI image manifest, artifactType ART_MEDIA_ARTIFACT,
 *             config = the agentfactory manifest (its own media type),
 *             layers = the manifest's parts (title annotation = part name),
 *             tag "<name>-<version>" ('+' written '_')
 *   release   OCI image index, artifactType ART_OCI_TYPE_RELEASE, one entry
 *             per pinned artifact (annotation dev.agentfactory.ref), tag
 *             "release-N"
 *   channel   the tag "channel-<name>" on the release index it points at
 *   signed    referrers (subject = what they sign): the builder envelope of
 *   objects   each artifact, its provenance/SBOM parts, the release record,
 *             every channel record; config = the OCI empty descriptor, one
 *             layer = the statement. Without a referrers API the registry gets
 *             the tag-schema fallback index "sha256-<hex of the subject>".
 *
 * Pull trusts nothing from the registry: descriptors and annotations only
 * say where to look. What is written is what verified: builder signatures
 * over the config bytes, part digests, the release manager's signature over
 * the pins, the channel record's threshold, its sequence against the
 * store's (the floor), then one store transaction (art_release_import hooks
 * the records into the batch that writes the artifacts).
 */
#include "art/oci.h"

#include "art/audit.h"
#include "art/bundle.h"
#include "art/error.h"
#include "art/manifest.h"
#include "art/release.h"
#include "art/util.h"
#include "oci_internal.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EMPTY_JSON "{}"
#define KIND_BUILDER "builder-signature"
#define KIND_RELEASE "release"
#define KIND_CHANNEL "channel"
#define KIND_ATTESTATION "provenance-attestation"
#define ART_MEDIA_INTOTO "application/vnd.in-toto+json"
#define MSG_MAX 1024

/* ---- JSON helpers -------------------------------------------------------- */

static const char *str_at(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static char *canonical(json_t *o)
{
	return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

static json_t *descriptor(const char *media_type, const char *digest, uint64_t size)
{
	return json_pack("{s:s,s:s,s:I}", "mediaType", media_type, "digest", digest, "size",
			 (json_int_t)size);
}

/* Prefix the thread's error message with context (keeps the code). */
static int ctx_error(int rc, const char *fmt, const char *arg)
{
	char msg[MSG_MAX], pre[256];

	snprintf(msg, sizeof(msg), "%s", art_error_last());
	snprintf(pre, sizeof(pre), fmt, arg);
	return art_error_set(rc, "%s: %s", pre, msg);
}

/* ---- push ---------------------------------------------------------------- */

typedef struct pusher {
	art_oci_client *c;
	const art_store *s;
	const char *mount_from;
	bool referrers_api; /* the registry answered a subject with OCI-Subject */
	FILE *progress;
} pusher;

/* Make sure the registry has blob digest; data NULL: read it from the store. */
static int push_blob(pusher *p, const char *digest, const void *data, size_t len)
{
	art_oci_stats *st = art_oci__stats(p->c);
	uint8_t *owned = NULL;
	size_t owned_len = 0;
	bool exists, mounted;
	int rc;

	if ((rc = art_oci__blob_exists(p->c, digest, &exists)) < 0)
		return rc;
	if (exists) {
		st->blobs_skipped++;
		return 0;
	}
	if (!data) {
		if ((rc = art_store_get_blob(&owned, &owned_len, p->s, digest + 7)) < 0)
			return rc;
		data = owned;
		len = owned_len;
	}
	/* a refused mount falls back to an upload inside art_oci__blob_upload */
	rc = art_oci__blob_upload(p->c, digest, data, len, p->mount_from, &mounted);
	free(owned);
	return rc;
}

/*
 * Push manifest m under tag (or only by digest when tag is NULL); a manifest
 * the registry has is not sent again unless a tag must move.
 */
static int push_manifest(pusher *p, json_t *m, const char *media_type, const char *tag,
			 char digest[72], size_t *size, char **text_out)
{
	char *text = canonical(m), have[72];
	bool exists = false, subject = false;
	int rc;

	if (text_out)
		*text_out = NULL;
	if (!text)
		return art_error_set(AF_ENOMEM, "out of memory");
	art_manifest_digest(digest, text, strlen(text));
	*size = strlen(text);
	if (!tag && (rc = art_oci_manifest_head(p->c, digest, have, &exists)) < 0)
		goto cleanup;
	if (!exists) {
		rc = art_oci__manifest_put(p->c, tag ? tag : digest, media_type, text, strlen(text),
					   &subject);
		if (rc < 0)
			goto cleanup;
		if (subject)
			p->referrers_api = true;
	}
	rc = 0;
	if (text_out) {
		*text_out = text;
		text = NULL;
	}
cleanup:
	free(text);
	return rc;
}

/* Add desc to the fallback index of subject (tag sha256-<hex>) unless there. */
static int fallback_add(pusher *p, const char *subject_digest, json_t *desc)
{
	char tag[72], mt[128], got[72], digest[72], *text = NULL;
	json_t *index = NULL, *d;
	size_t len, i;
	int rc;

	art_oci__fallback_tag(tag, subject_digest);
	rc = art_oci__manifest_get(p->c, tag, &text, &len, mt, got);
	if (rc == AF_ENOTFOUND) {
		art_error_clear();
		index = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType",
				  ART_MEDIA_OCI_INDEX, "manifests");
	} else if (rc < 0) {
		return rc;
	} else {
		index = json_loadb(text, len, 0, NULL);
		free(text);
		text = NULL;
	}
	if (!index || !json_is_array(json_object_get(index, "manifests"))) {
		json_decref(index);
		index = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType",
				  ART_MEDIA_OCI_INDEX, "manifests");
		if (!index)
			return art_error_set(AF_ENOMEM, "out of memory");
	}
	json_array_foreach(json_object_get(index, "manifests"), i, d) {
		if (str_at(d, "digest") && !strcmp(str_at(d, "digest"), str_at(desc, "digest"))) {
			json_decref(index);
			return 0;
		}
	}
	json_array_append(json_object_get(index, "manifests"), desc);
	rc = push_manifest(p, index, ART_MEDIA_OCI_INDEX, tag, digest, &len, NULL);
	json_decref(index);
	return rc;
}

/*
 * Attach a signed object to subject as a referrer: the one function every
 * signature and statement goes through, whatever the store holds.
 */
static int attach(pusher *p, json_t *subject, const char *artifact_type, const char *layer_type,
		  const void *data, size_t len, json_t *annotations)
{
	char digest[ART_DIGEST_STR_LEN + 1], mdigest[72];
	json_t *m = NULL, *desc = NULL;
	size_t msize;
	int rc;

	art_manifest_digest(digest, data, len);
	if ((rc = push_blob(p, ART_OCI_EMPTY_DIGEST, EMPTY_JSON, 2)) < 0 ||
	    (rc = push_blob(p, digest, data, len)) < 0)
		goto cleanup;
	m = json_pack("{s:i,s:s,s:s,s:o,s:[o],s:O,s:O}", "schemaVersion", 2, "mediaType",
		      ART_MEDIA_OCI_MANIFEST, "artifactType", artifact_type, "config",
		      descriptor(ART_OCI_MEDIA_EMPTY, ART_OCI_EMPTY_DIGEST, 2), "layers",
		      descriptor(layer_type, digest, len), "subject", subject, "annotations",
		      annotations);
	if (!m) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = push_manifest(p, m, ART_MEDIA_OCI_MANIFEST, NULL, mdigest, &msize, NULL)) < 0)
		goto cleanup;
	if (p->referrers_api)
		goto cleanup;
	desc = json_pack("{s:s,s:s,s:I,s:s,s:O}", "mediaType", ART_MEDIA_OCI_MANIFEST, "digest",
			 mdigest, "size", (json_int_t)msize, "artifactType", artifact_type,
			 "annotations", annotations);
	if (!desc) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = fallback_add(p, str_at(subject, "digest"), desc);
cleanup:
	json_decref(desc);
	json_decref(m);
	return rc;
}

/* Whether a part is a signed statement to attach too (provenance, SBOM...). */
static bool part_is_statement(const art_manifest_part *part)
{
	return !strcmp(part->name, ART_PART_PROVENANCE) || !strncmp(part->name, "sbom", 4) ||
	       strstr(part->media_type, "in-toto") || strstr(part->media_type, "cyclonedx") ||
	       strstr(part->media_type, "spdx");
}

/*
 * Every signature and statement the store has for an artifact, attached to
 * its OCI manifest: the builder's DSSE envelope, and the parts that are
 * statements (provenance, SBOM). New kinds of statements only need a line
 * here.
 */
static int attach_artifact_statements(pusher *p, json_t *subject, const art_store_record *rec,
				      const art_manifest *m)
{
	json_t *ann;
	uint8_t *data;
	size_t i, len;
	int rc;

	ann = json_pack("{s:s,s:s}", ART_OCI_ANN_KIND, KIND_BUILDER, ART_OCI_ANN_REF, "");
	if (!ann)
		return art_error_set(AF_ENOMEM, "out of memory");
	{
		char ref[256];

		snprintf(ref, sizeof(ref), "%s@%s", rec->name, rec->version);
		json_object_set_new(ann, ART_OCI_ANN_REF, json_string(ref));
	}
	rc = attach(p, subject, ART_MEDIA_DSSE, ART_MEDIA_DSSE, rec->envelope, rec->envelope_len,
		    ann);
	for (i = 0; rc == 0 && i < m->n_parts; i++) {
		if (!part_is_statement(&m->parts[i]))
			continue;
		if ((rc = art_store_get_blob(&data, &len, p->s, m->parts[i].digest + 7)) < 0)
			break;
		json_object_set_new(ann, ART_OCI_ANN_KIND, json_string(m->parts[i].name));
		rc = attach(p, subject, m->parts[i].media_type, m->parts[i].media_type, data, len,
			    ann);
		free(data);
	}
	if (rc == 0) {
		/* The builder-signed SLSA provenance (a DSSE envelope over an in-toto
		 * statement), kept beside the artifact in the store: attached as an
		 * in-toto attestation, as cosign-style tools look for it. */
		char *att = NULL;
		size_t att_len = 0;
		int found = art_store_get_attestation(&att, &att_len, p->s, rec->name, rec->version);

		if (found == 0) {
			json_object_set_new(ann, ART_OCI_ANN_KIND, json_string(KIND_ATTESTATION));
			rc = attach(p, subject, ART_MEDIA_INTOTO, ART_MEDIA_DSSE, att, att_len, ann);
		} else if (found != AF_ENOTFOUND) {
			rc = found;
		} else {
			art_error_clear();
		}
		free(att);
	}
	json_decref(ann);
	return rc;
}

/*
 * Push one artifact (upload false: only build its OCI manifest, no request);
 * append its descriptor to index_manifests (may be NULL).
 */
static int push_artifact(pusher *p, const char *name, const char *version,
			 const char *expect_digest, json_t *index_manifests, bool upload)
{
	art_store_record *rec = NULL;
	art_manifest *m = NULL;
	json_t *oci = NULL, *layers, *desc = NULL;
	char tag[ART_OCI_TAG_MAX + 1], ref[256] = "", digest[72], *text = NULL;
	size_t i, size;
	int rc;

	if ((rc = art_store_get_artifact(&rec, p->s, name, version)) < 0)
		return rc;
	snprintf(ref, sizeof(ref), "%s@%s", rec->name, rec->version);
	if (expect_digest && strcmp(expect_digest, rec->manifest_digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "%s in the store is not the manifest the release "
				   "pins", ref);
		goto cleanup;
	}
	if ((rc = art_manifest_parse(&m, rec->manifest, rec->manifest_len)) < 0)
		goto cleanup;
	layers = json_array();
	oci = json_pack("{s:i,s:s,s:s,s:o,s:o,s:{s:s,s:s,s:s}}", "schemaVersion", 2, "mediaType",
			ART_MEDIA_OCI_MANIFEST, "artifactType", ART_MEDIA_ARTIFACT, "config",
			descriptor(ART_MANIFEST_PAYLOAD_TYPE, rec->manifest_digest,
				   rec->manifest_len),
			"layers", layers, "annotations", ART_OCI_ANN_REF, ref,
			"org.opencontainers.image.title", rec->name,
			"org.opencontainers.image.version", rec->version);
	if (!oci) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < m->n_parts; i++) {
		const art_manifest_part *part = &m->parts[i];
		json_t *d = descriptor(part->media_type, part->digest, part->size);

		if (!d || json_object_set_new(d, "annotations",
					      json_pack("{s:s}", ART_OCI_TITLE_ANNOTATION,
							part->name)) ||
		    json_array_append_new(layers, d)) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (!(text = canonical(oci))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	art_manifest_digest(digest, text, strlen(text));
	size = strlen(text);
	if (upload) {
		if (p->progress)
			fprintf(p->progress, "pushing %s\n", ref);
		if ((rc = push_blob(p, rec->manifest_digest, rec->manifest, rec->manifest_len)) < 0)
			goto cleanup;
		for (i = 0; i < m->n_parts; i++)
			if ((rc = push_blob(p, m->parts[i].digest, NULL, 0)) < 0)
				goto cleanup;
		rc = art_oci_artifact_tag(tag, rec->name, rec->version);
		art_error_clear();
		if ((rc = push_manifest(p, oci, ART_MEDIA_OCI_MANIFEST, rc == 0 ? tag : NULL, digest,
					&size, NULL)) < 0)
			goto cleanup;
		{
			json_t *subject = descriptor(ART_MEDIA_OCI_MANIFEST, digest, size);

			rc = subject ? attach_artifact_statements(p, subject, rec, m)
				     : art_error_set(AF_ENOMEM, "out of memory");
			json_decref(subject);
			if (rc < 0)
				goto cleanup;
		}
		art_oci__stats(p->c)->artifacts++;
	}
	desc = json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType", ART_MEDIA_OCI_MANIFEST, "digest",
			 digest, "size", (json_int_t)size, "annotations", ART_OCI_ANN_REF, ref);
	if (!desc) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (index_manifests && json_array_append(index_manifests, desc)) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc < 0)
		rc = ctx_error(rc, "%s", ref[0] ? ref : name);
	free(text);
	json_decref(desc);
	json_decref(oci);
	art_manifest_free(m);
	art_store_record_free(rec);
	return rc;
}

/* Push release number: artifacts, index (tag release-N), signed record. */
static int push_release(pusher *p, uint64_t number, char index_digest[72], size_t *index_size,
			char **index_text)
{
	art_release *r = NULL;
	json_t *index = NULL, *manifests, *subject = NULL, *ann = NULL;
	char *env = NULL, tag[40], num[24], created[21];
	size_t env_len, i;
	int rc;

	*index_text = NULL;
	if ((rc = art_release_envelope(&env, &env_len, p->s, number)) < 0 ||
	    (rc = art_release_get(&r, p->s, NULL, number, 0)) < 0)
		goto cleanup;
	for (i = 0; i < r->n_pins; i++)
		if (!art_manifest_name_valid(r->pins[i].name)) {
			rc = art_error_set(AF_ECORRUPT, "release %llu: bad pin",
					   (unsigned long long)number);
			goto cleanup;
		}
	manifests = json_array();
	snprintf(num, sizeof(num), "%llu", (unsigned long long)number);
	art_time_format(created, r->created);
	/* no artifactType on the index: tools that predate image-spec 1.1 (skopeo
	 * 1.9) cannot copy an index with one without rewriting it */
	index = json_pack("{s:i,s:s,s:o,s:{s:s,s:s,s:s}}", "schemaVersion", 2, "mediaType",
			  ART_MEDIA_OCI_INDEX, "manifests", manifests, "annotations",
			  ART_OCI_ANN_KIND, KIND_RELEASE, ART_OCI_ANN_RELEASE, num,
			  "org.opencontainers.image.created", created);
	if (!index) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	/*
	 * The index is computed locally first: when the registry has it (a
	 * registry accepts an index only once its manifests and their blobs are
	 * there), the artifacts are not walked again, which keeps promote + push
	 * to a handful of requests.
	 */
	for (i = 0; i < r->n_pins; i++)
		if ((rc = push_artifact(p, r->pins[i].name, r->pins[i].version,
					r->pins[i].manifest_digest, manifests, false)) < 0)
			goto cleanup;
	{
		char *text = canonical(index), have[72];
		bool exists = false;

		if (!text) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
		art_manifest_digest(index_digest, text, strlen(text));
		free(text);
		if ((rc = art_oci_manifest_head(p->c, index_digest, have, &exists)) < 0)
			goto cleanup;
		if (!exists) {
			json_array_clear(manifests);
			for (i = 0; i < r->n_pins; i++)
				if ((rc = push_artifact(p, r->pins[i].name, r->pins[i].version,
							r->pins[i].manifest_digest, manifests,
							true)) < 0)
					goto cleanup;
		} else if (p->progress) {
			fprintf(p->progress, "release %llu is in the registry already\n",
				(unsigned long long)number);
		}
	}
	snprintf(tag, sizeof(tag), "release-%llu", (unsigned long long)number);
	if ((rc = push_manifest(p, index, ART_MEDIA_OCI_INDEX, tag, index_digest, index_size,
				index_text)) < 0)
		goto cleanup;
	subject = descriptor(ART_MEDIA_OCI_INDEX, index_digest, *index_size);
	ann = json_pack("{s:s,s:s}", ART_OCI_ANN_KIND, KIND_RELEASE, ART_OCI_ANN_RELEASE, num);
	if (!subject || !ann) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = attach(p, subject, ART_RELEASE_PAYLOAD_TYPE, ART_MEDIA_DSSE, env, env_len, ann);
	if (rc == 0) {
		art_oci__stats(p->c)->release = number;
		if (p->progress)
			fprintf(p->progress, "pushed release %llu as %s (%.19s...)\n",
				(unsigned long long)number, tag, index_digest);
	}
cleanup:
	if (rc < 0) {
		free(*index_text);
		*index_text = NULL;
	}
	json_decref(ann);
	json_decref(subject);
	json_decref(index);
	art_release_free(r);
	free(env);
	return rc;
}

static int channel_claimed(art_channel **out, const art_store *s, const char *channel)
{
	art_channel **list = NULL;
	size_t n = 0, i;
	int rc;

	*out = NULL;
	if ((rc = art_channel_list(&list, &n, s, NULL, 0)) < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (!strcmp(list[i]->name, channel)) {
			*out = list[i];
			list[i] = NULL;
			break;
		}
	art_channel_list_free(list, n);
	return 0;
}

static int push_channel(pusher *p, const char *channel)
{
	art_channel *ch = NULL;
	json_t *subject = NULL, *ann = NULL;
	char *env = NULL, *index_text = NULL, digest[72], tag[80], seq[24], rel[24];
	size_t env_len, size;
	bool subj;
	int rc;

	if ((rc = art_channel_envelope(&env, &env_len, p->s, channel)) < 0 ||
	    (rc = channel_claimed(&ch, p->s, channel)) < 0)
		goto cleanup;
	if (!ch || ch->release == 0) {
		rc = art_error_set(AF_ENOTFOUND, "channel %s has no release to push", channel);
		goto cleanup;
	}
	if ((rc = push_release(p, ch->release, digest, &size, &index_text)) < 0)
		goto cleanup;
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)ch->seq);
	snprintf(rel, sizeof(rel), "%llu", (unsigned long long)ch->release);
	subject = descriptor(ART_MEDIA_OCI_INDEX, digest, size);
	ann = json_pack("{s:s,s:s,s:s,s:s}", ART_OCI_ANN_KIND, KIND_CHANNEL, ART_OCI_ANN_CHANNEL,
			channel, ART_OCI_ANN_SEQ, seq, ART_OCI_ANN_RELEASE, rel);
	if (!subject || !ann) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* the signed record first, so a follower that sees the tag finds it */
	if ((rc = attach(p, subject, ART_CHANNEL_PAYLOAD_TYPE, ART_MEDIA_DSSE, env, env_len,
			 ann)) < 0)
		goto cleanup;
	snprintf(tag, sizeof(tag), "channel-%s", channel);
	if ((rc = art_oci__manifest_put(p->c, tag, ART_MEDIA_OCI_INDEX, index_text,
					strlen(index_text), &subj)) < 0)
		goto cleanup;
	art_oci__stats(p->c)->channel_seq = ch->seq;
	if (p->progress)
		fprintf(p->progress, "moved %s to release %llu (record %llu)\n", tag,
			(unsigned long long)ch->release, (unsigned long long)ch->seq);
cleanup:
	json_decref(ann);
	json_decref(subject);
	free(index_text);
	free(env);
	art_channel_free(ch);
	return rc;
}

int art_oci_push(art_oci_stats *stats, art_oci_client *c, const art_store *s,
		 const char *const *refs, size_t n_refs, uint64_t release, const char *channel,
		 const char *mount_from)
{
	pusher p;
	char digest[72], *text = NULL, name[128];
	const char *at;
	size_t i, size;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.c = c;
	p.s = s;
	p.mount_from = mount_from;
	p.progress = art_oci__opts(c)->progress;
	art_oci_client_reset_stats(c);
	if (!n_refs && !release && !channel)
		return art_error_set(AF_EINVAL, "nothing to push: give --release N, --channel C or "
				     "NAME@VERSION");
	for (i = 0; rc == 0 && i < n_refs; i++) {
		at = strchr(refs[i], '@');
		snprintf(name, sizeof(name), "%.*s", at ? (int)(at - refs[i]) : (int)strlen(refs[i]),
			 refs[i]);
		rc = push_artifact(&p, name, at ? at + 1 : NULL, NULL, NULL, true);
	}
	if (rc == 0 && release) {
		rc = push_release(&p, release, digest, &size, &text);
		free(text);
	}
	if (rc == 0 && channel)
		rc = push_channel(&p, channel);
	if (stats)
		*stats = *art_oci_client_stats(c);
	return rc;
}

/* ---- pull ---------------------------------------------------------------- */

typedef struct puller {
	art_oci_client *c;
	art_store *s;
	const art_keyring *kr;
	time_t now;
	const art_oci_pull_opts *o;
	char partial[PATH_MAX];
	art_store_txn *txn;
	size_t new_artifacts;
	FILE *progress;
} puller;

static void partial_path(char *out, size_t cap, const puller *p, const char *digest)
{
	snprintf(out, cap, "%s/%.64s", p->partial, digest + 7);
}

/* A blob from the partial directory (checked) or the registry (kept there). */
static int fetch_blob(puller *p, const char *digest, uint64_t size, uint8_t **out)
{
	char path[PATH_MAX + 80], got[ART_DIGEST_STR_LEN + 1];
	char *data = NULL;
	size_t len;
	int rc;

	*out = NULL;
	partial_path(path, sizeof(path), p, digest);
	if (art_file_read(&data, &len, path, (size_t)size + 1) == 0) {
		art_manifest_digest(got, data, len);
		if (len == size && !strcmp(got, digest)) {
			*out = (uint8_t *)data;
			art_oci__stats(p->c)->blobs_skipped++;
			return 0;
		}
		free(data);
	}
	art_error_clear();
	if ((rc = art_oci__blob_get(p->c, digest, size, out)) < 0)
		return rc;
	if (mkdir(p->partial, 0700) == 0 || errno == EEXIST)
		(void)art_file_write_atomic(path, *out, (size_t)size, 0600);
	art_error_clear();
	return 0;
}

static void partial_clear(const puller *p)
{
	DIR *d = opendir(p->partial);
	struct dirent *e;
	char path[PATH_MAX + 300];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", p->partial, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(p->partial);
}

/* GET a manifest and parse it; the media type must be want (if given). */
static int get_json(puller *p, const char *reference, const char *want, json_t **out,
		    char digest[72], size_t *size)
{
	char mt[128], *text = NULL;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = art_oci__manifest_get(p->c, reference, &text, &len, mt, digest)) < 0)
		return rc;
	if (size)
		*size = len;
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (!*out || !json_is_object(*out) ||
	    json_integer_value(json_object_get(*out, "schemaVersion")) != 2 ||
	    (want && (!str_at(*out, "mediaType") || strcmp(str_at(*out, "mediaType"), want)))) {
		json_decref(*out);
		*out = NULL;
		return art_error_set(AF_ECORRUPT, "registry %s: %s is not an %s (wrong media type or "
				     "malformed): refused", art_oci_client_ref(p->c)->host,
				     reference, want ? want : "OCI manifest");
	}
	return 0;
}

/*
 * The statement a referrer descriptor points at: its manifest (subject must
 * be subject_digest) and its single layer (at most ART_SIG_ENVELOPE_MAX).
 */
static int get_statement(puller *p, json_t *desc, const char *subject_digest, char **out,
			 size_t *len)
{
	char digest[72];
	json_t *m = NULL, *layer;
	const char *d = str_at(desc, "digest"), *ld;
	json_int_t size;
	int rc;

	*out = NULL;
	if (!d)
		return art_error_set(AF_ECORRUPT, "a referrer without a digest");
	if ((rc = get_json(p, d, ART_MEDIA_OCI_MANIFEST, &m, digest, NULL)) < 0)
		return rc;
	layer = json_array_get(json_object_get(m, "layers"), 0);
	ld = str_at(layer, "digest");
	size = json_integer_value(json_object_get(layer, "size"));
	if (!str_at(json_object_get(m, "subject"), "digest") ||
	    strcmp(str_at(json_object_get(m, "subject"), "digest"), subject_digest) != 0 ||
	    json_array_size(json_object_get(m, "layers")) != 1 || !ld || size <= 0 ||
	    size > ART_SIG_ENVELOPE_MAX) {
		rc = art_error_set(AF_ECORRUPT, "referrer %.19s... is malformed or not about "
				   "%.19s...", d, subject_digest);
		goto cleanup;
	}
	if ((rc = art_oci__blob_get(p->c, ld, (uint64_t)size, (uint8_t **)out)) < 0)
		goto cleanup;
	*len = (size_t)size;
cleanup:
	json_decref(m);
	return rc;
}

/* At most this many referrers of one subject are looked at (a registry
 * listing thousands would otherwise cost a request each). */
#define MAX_REFERRERS 256

/* The referrers index of subject (untrusted; capped). Caller json_decref. */
static int referrers_of(puller *p, const char *subject, json_t **out)
{
	json_t *list;
	int rc = art_oci__referrers(p->c, subject, out, NULL);

	if (rc == 0 && (list = json_object_get(*out, "manifests")))
		while (json_array_size(list) > MAX_REFERRERS)
			json_array_remove(list, 0); /* the newest are appended last */
	return rc;
}

/*
 * Whether a referrer descriptor is of artifact_type: by its artifactType, or
 * by our kind annotation when a copy dropped the artifactType (tools older
 * than image-spec 1.1 rewrite the fallback index without it).
 */
static bool desc_is(json_t *desc, const char *artifact_type)
{
	const char *kind = str_at(json_object_get(desc, "annotations"), ART_OCI_ANN_KIND);

	if (str_at(desc, "artifactType"))
		return !strcmp(str_at(desc, "artifactType"), artifact_type);
	if (!kind)
		return false;
	if (!strcmp(kind, KIND_BUILDER))
		return !strcmp(artifact_type, ART_MEDIA_DSSE);
	if (!strcmp(kind, KIND_RELEASE))
		return !strcmp(artifact_type, ART_RELEASE_PAYLOAD_TYPE);
	if (!strcmp(kind, KIND_CHANNEL))
		return !strcmp(artifact_type, ART_CHANNEL_PAYLOAD_TYPE);
	return false;
}

/* Whether the store already has name@version with manifest digest. */
static bool store_has(const puller *p, const char *name, const char *version,
		      const char *digest)
{
	art_store_record *rec = NULL;
	bool has = art_store_get_artifact(&rec, p->s, name, version) == 0 &&
		   (!digest || !strcmp(rec->manifest_digest, digest));

	art_store_record_free(rec);
	art_error_clear();
	return has;
}

/*
 * Pull one artifact manifest (by digest or tag), verify it completely and
 * queue it: config = the signed agentfactory manifest, a builder signature
 * among the referrers, every part's digest and size.
 */
static int pull_artifact(puller *p, const char *reference, const char *expect_ref,
			 const char *expect_manifest_digest)
{
	char digest[72], ref[256], msg[MSG_MAX];
	json_t *oci = NULL, *config, *layers, *layer, *refs = NULL, *d;
	art_manifest *m = NULL;
	uint8_t *cfg = NULL, *data = NULL;
	char *env = NULL;
	size_t i, j, env_len;
	int rc, sig_rc = 0;

	snprintf(ref, sizeof(ref), "%s", expect_ref ? expect_ref : reference);
	msg[0] = '\0';
	if ((rc = get_json(p, reference, ART_MEDIA_OCI_MANIFEST, &oci, digest, NULL)) < 0)
		goto cleanup;
	config = json_object_get(oci, "config");
	layers = json_object_get(oci, "layers");
	if (!str_at(oci, "artifactType") || strcmp(str_at(oci, "artifactType"), ART_MEDIA_ARTIFACT) ||
	    !str_at(config, "mediaType") ||
	    strcmp(str_at(config, "mediaType"), ART_MANIFEST_PAYLOAD_TYPE) ||
	    !str_at(config, "digest") || !json_is_array(layers) ||
	    json_array_size(layers) > ART_MANIFEST_MAX_PARTS ||
	    json_integer_value(json_object_get(config, "size")) <= 0 ||
	    json_integer_value(json_object_get(config, "size")) > ART_MANIFEST_MAX) {
		rc = art_error_set(AF_ECORRUPT, "not an agentfactory artifact manifest "
				   "(artifactType, config or layers): refused");
		goto cleanup;
	}
	if (expect_manifest_digest && strcmp(str_at(config, "digest"), expect_manifest_digest)) {
		rc = art_error_set(AF_ESIGNATURE, "its manifest is %.19s..., the signed release pins "
				   "%.19s...: refused", str_at(config, "digest"),
				   expect_manifest_digest);
		goto cleanup;
	}
	if ((rc = fetch_blob(p, str_at(config, "digest"),
			     (uint64_t)json_integer_value(json_object_get(config, "size")),
			     &cfg)) < 0)
		goto cleanup;
	/* the builder signature: the first referrer envelope that verifies */
	if ((rc = referrers_of(p, digest, &refs)) < 0)
		goto cleanup;
	sig_rc = art_error_set(AF_ESIGNATURE, "no builder signature among its referrers");
	json_array_foreach(json_object_get(refs, "manifests"), i, d) {
		if (!desc_is(d, ART_MEDIA_DSSE))
			continue;
		free(env);
		env = NULL;
		if ((rc = get_statement(p, d, digest, &env, &env_len)) < 0) {
			if (rc == AF_EIO || rc == AF_ENOMEM || rc == AF_EDENIED)
				goto cleanup;
			sig_rc = rc;
			snprintf(msg, sizeof(msg), "%s", art_error_last());
			continue;
		}
		art_manifest_free(m);
		m = NULL;
		rc = art_manifest_verify_signed(&m, NULL, p->kr, cfg,
						(size_t)json_integer_value(json_object_get(config,
											 "size")),
						env, env_len, p->now);
		if (rc == 0)
			break;
		sig_rc = rc;
		snprintf(msg, sizeof(msg), "%s", art_error_last());
	}
	if (!m) {
		rc = msg[0] ? art_error_set(sig_rc, "%s", msg) : sig_rc;
		goto cleanup;
	}
	snprintf(msg, sizeof(msg), "%s@%s", m->name, m->version);
	if (expect_ref && strcmp(msg, expect_ref) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "the registry serves %s under %s: refused", msg,
				   expect_ref);
		goto cleanup;
	}
	snprintf(ref, sizeof(ref), "%.200s", msg);
	if (json_array_size(layers) != m->n_parts) {
		rc = art_error_set(AF_ECORRUPT, "%zu layers for %zu signed parts: refused",
				   json_array_size(layers), m->n_parts);
		goto cleanup;
	}
	for (j = 0; j < m->n_parts; j++) {
		const art_manifest_part *part = &m->parts[j];
		art_blob_info info;
		bool found = false;

		json_array_foreach(layers, i, layer) {
			const char *title = str_at(json_object_get(layer, "annotations"),
						   ART_OCI_TITLE_ANNOTATION);

			if (title && !strcmp(title, part->name)) {
				found = true;
				break;
			}
		}
		if (!found || !str_at(layer, "digest") || strcmp(str_at(layer, "digest"),
								 part->digest)) {
			rc = art_error_set(AF_ESIGNATURE, "layer '%s' is missing or not the signed "
					   "part: refused", part->name);
			goto cleanup;
		}
		if (art_store_blob_info(&info, p->s, part->digest + 7) == 0 &&
		    info.raw_size == part->size) {
			art_oci__stats(p->c)->blobs_skipped++;
			continue;
		}
		art_error_clear();
		if ((rc = fetch_blob(p, part->digest, part->size, &data)) < 0)
			goto cleanup;
		if ((rc = art_manifest_check_part(part, data, (size_t)part->size)) < 0 ||
		    (rc = art_store_put_blob(p->txn, data, (size_t)part->size, NULL)) < 0)
			goto cleanup;
		free(data);
		data = NULL;
	}
	if ((rc = art_store_put_artifact(p->txn, m, env, env_len)) < 0)
		goto cleanup;
	p->new_artifacts++;
	art_oci__stats(p->c)->artifacts++;
	if (p->progress)
		fprintf(p->progress, "verified %s\n", ref);
cleanup:
	if (rc < 0)
		rc = ctx_error(rc, "%s", ref);
	free(data);
	free(cfg);
	free(env);
	art_manifest_free(m);
	json_decref(refs);
	json_decref(oci);
	return rc;
}

/* The verified release record among the referrers of an index. */
static int release_from_referrers(puller *p, const char *index_digest, uint64_t want,
				  art_release **out, char **env_out, size_t *env_len)
{
	json_t *refs = NULL, *d;
	char *env = NULL, msg[MSG_MAX] = "";
	size_t i, len;
	int rc, last = 0;

	*out = NULL;
	*env_out = NULL;
	if ((rc = referrers_of(p, index_digest, &refs)) < 0)
		return rc;
	json_array_foreach(json_object_get(refs, "manifests"), i, d) {
		if (!desc_is(d, ART_RELEASE_PAYLOAD_TYPE))
			continue;
		if ((rc = get_statement(p, d, index_digest, &env, &len)) < 0) {
			if (rc == AF_EIO || rc == AF_ENOMEM || rc == AF_EDENIED)
				goto cleanup;
			last = rc;
			snprintf(msg, sizeof(msg), "%s", art_error_last());
			continue;
		}
		rc = art_release_verify_envelope(out, p->kr, env, len, p->now, true);
		if (rc == 0 && want && (*out)->number != want) {
			rc = art_error_set(AF_ESIGNATURE, "the release tag says %llu, the signed record "
					   "is release %llu", (unsigned long long)want,
					   (unsigned long long)(*out)->number);
			art_release_free(*out);
			*out = NULL;
		}
		if (rc == 0) {
			*env_out = env;
			*env_len = len;
			env = NULL;
			goto cleanup;
		}
		last = rc;
		snprintf(msg, sizeof(msg), "%s", art_error_last());
		free(env);
		env = NULL;
	}
	rc = last ? art_error_set(last, "%s", msg)
		  : art_error_set(AF_ESIGNATURE, "no signed release record is attached to the "
				  "release index %.19s... (push the release again)", index_digest);
cleanup:
	free(env);
	json_decref(refs);
	return rc;
}

/* Pull every artifact the release pins that the store lacks. */
static int pull_pins(puller *p, const art_release *r, json_t *index)
{
	json_t *manifests = json_object_get(index, "manifests"), *d;
	char ref[256];
	size_t i, j;
	int rc;

	if (!json_is_array(manifests))
		return art_error_set(AF_ECORRUPT, "the release index has no manifests");
	for (i = 0; i < r->n_pins; i++) {
		const art_release_pin *pin = &r->pins[i];
		bool found = false;

		if (store_has(p, pin->name, pin->version, pin->manifest_digest)) {
			art_oci__stats(p->c)->blobs_skipped++;
			continue;
		}
		snprintf(ref, sizeof(ref), "%s@%s", pin->name, pin->version);
		json_array_foreach(manifests, j, d) {
			const char *a = str_at(json_object_get(d, "annotations"), ART_OCI_ANN_REF);

			if (a && !strcmp(a, ref) && str_at(d, "digest")) {
				found = true;
				break;
			}
		}
		if (!found)
			return art_error_set(AF_ECORRUPT, "the release index lacks %s, which release "
					     "%llu pins", ref, (unsigned long long)r->number);
		if ((rc = pull_artifact(p, str_at(d, "digest"), ref, pin->manifest_digest)) < 0)
			return rc;
	}
	return 0;
}

static int begin(puller *p)
{
	return art_store_txn_begin(&p->txn, p->s);
}

static int commit(puller *p, const char *subject, json_t *details)
{
	art_audit_event ev;
	char actor[600], *text = NULL;
	int rc;

	snprintf(actor, sizeof(actor), "registry:%s/%s", art_oci_client_ref(p->c)->host,
		 art_oci_client_ref(p->c)->repo);
	json_object_set_new(details, "artifacts", json_integer((json_int_t)p->new_artifacts));
	text = canonical(details);
	memset(&ev, 0, sizeof(ev));
	ev.action = "pull";
	ev.actor = actor;
	ev.subject = subject;
	ev.outcome = ART_AUDIT_OK;
	ev.details_json = text;
	rc = text ? art_store_txn_audit(p->txn, &ev, p->now)
		  : art_error_set(AF_ENOMEM, "out of memory");
	free(text);
	if (rc < 0)
		return rc;
	rc = art_store_txn_commit(p->txn);
	p->txn = NULL;
	if (rc == 0)
		partial_clear(p);
	return rc;
}

static int pull_channel(puller *p, const char *channel)
{
	art_oci_stats *st = art_oci__stats(p->c);
	art_release *r = NULL;
	art_channel *best = NULL, *cand = NULL, *local = NULL;
	json_t *index = NULL, *refs = NULL, *d, *details = NULL;
	char tag[80], digest[72], *renv = NULL, *cenv = NULL, *best_env = NULL;
	char msg[MSG_MAX] = "", subject[96];
	size_t rlen, clen, best_len = 0, i;
	int rc, last = 0;

	snprintf(tag, sizeof(tag), "channel-%s", channel);
	rc = get_json(p, p->o->expect_digest && p->o->expect_digest[0] ? p->o->expect_digest : tag,
		      ART_MEDIA_OCI_INDEX, &index, digest, NULL);
	if (rc < 0)
		goto cleanup;
	if ((rc = release_from_referrers(p, digest, 0, &r, &renv, &rlen)) < 0)
		goto cleanup;
	/* the newest channel record that verifies and names this release */
	if ((rc = referrers_of(p, digest, &refs)) < 0)
		goto cleanup;
	json_array_foreach(json_object_get(refs, "manifests"), i, d) {
		const char *a = str_at(json_object_get(d, "annotations"), ART_OCI_ANN_CHANNEL);

		if (!desc_is(d, ART_CHANNEL_PAYLOAD_TYPE) || (a && strcmp(a, channel)))
			continue;
		if ((rc = get_statement(p, d, digest, &cenv, &clen)) < 0) {
			if (rc == AF_EIO || rc == AF_ENOMEM || rc == AF_EDENIED)
				goto cleanup;
			last = rc;
			snprintf(msg, sizeof(msg), "%s", art_error_last());
			continue;
		}
		rc = art_channel_verify_envelope(&cand, p->kr, channel, cenv, clen, p->now,
						 p->o->min_threshold);
		if (rc == 0 && (cand->release != r->number ||
				strcmp(cand->release_digest, r->digest) != 0))
			rc = art_error_set(AF_ESIGNATURE, "channel record %llu names release %llu, "
					   "the tag points at release %llu",
					   (unsigned long long)cand->seq,
					   (unsigned long long)cand->release,
					   (unsigned long long)r->number);
		if (rc < 0) {
			last = rc;
			snprintf(msg, sizeof(msg), "%s", art_error_last());
			art_channel_free(cand);
			cand = NULL;
			free(cenv);
			cenv = NULL;
			continue;
		}
		if (!best || cand->seq > best->seq) {
			art_channel_free(best);
			free(best_env);
			best = cand;
			best_env = cenv;
			best_len = clen;
		} else {
			art_channel_free(cand);
			free(cenv);
		}
		cand = NULL;
		cenv = NULL;
	}
	if (!best) {
		rc = last ? art_error_set(last, "%s", msg)
			  : art_error_set(AF_ESIGNATURE, "no signed record of channel %s is attached "
					  "to the release the tag points at: refused", channel);
		goto cleanup;
	}
	/* the sequence floor: the store's own head record */
	if ((rc = channel_claimed(&local, p->s, channel)) < 0)
		goto cleanup;
	if (local && local->seq > best->seq) {
		rc = art_error_set(AF_EDENIED, "channel %s: the registry offers record %llu (release "
				   "%llu), older than record %llu (release %llu) already accepted: a "
				   "replayed or rolled-back tag is refused (a rollback is a new, "
				   "signed record)", channel, (unsigned long long)best->seq,
				   (unsigned long long)best->release, (unsigned long long)local->seq,
				   (unsigned long long)local->release);
		goto cleanup;
	}
	st->release = r->number;
	st->channel_seq = best->seq;
	if (local && local->seq == best->seq && local->release == best->release) {
		st->up_to_date = true;
		rc = 0;
		goto cleanup;
	}
	if (p->progress)
		fprintf(p->progress, "pulling channel %s: release %llu (record %llu, %zu artifacts)\n",
			channel, (unsigned long long)r->number, (unsigned long long)best->seq,
			r->n_pins);
	if ((rc = begin(p)) < 0 || (rc = pull_pins(p, r, index)) < 0 ||
	    (rc = art_release_import(p->txn, p->kr, p->now, renv, rlen, best_env, best_len,
				     p->o->min_threshold)) < 0)
		goto cleanup;
	details = json_pack("{s:s,s:I,s:I}", "digest", digest, "release", (json_int_t)r->number,
			    "seq", (json_int_t)best->seq);
	snprintf(subject, sizeof(subject), "channel/%s", channel);
	rc = details ? commit(p, subject, details) : art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	if (rc < 0)
		rc = ctx_error(rc, "registry %s", art_oci_client_ref(p->c)->host);
	art_store_txn_abort(p->txn);
	p->txn = NULL;
	json_decref(details);
	art_channel_free(best);
	art_channel_free(cand);
	art_channel_free(local);
	art_release_free(r);
	free(best_env);
	free(cenv);
	free(renv);
	json_decref(refs);
	json_decref(index);
	return rc;
}

static int pull_release(puller *p, uint64_t number)
{
	art_release *r = NULL, *mine = NULL;
	json_t *index = NULL, *details = NULL;
	char tag[40], digest[72], *env = NULL, subject[48];
	size_t len;
	int rc;

	snprintf(tag, sizeof(tag), "release-%llu", (unsigned long long)number);
	if ((rc = get_json(p, tag, ART_MEDIA_OCI_INDEX, &index, digest, NULL)) < 0 ||
	    (rc = release_from_referrers(p, digest, number, &r, &env, &len)) < 0)
		goto cleanup;
	art_oci__stats(p->c)->release = number;
	if (art_release_get(&mine, p->s, NULL, number, 0) == 0 && !strcmp(mine->digest, r->digest)) {
		art_oci__stats(p->c)->up_to_date = true;
		goto cleanup;
	}
	art_error_clear();
	if ((rc = begin(p)) < 0 || (rc = pull_pins(p, r, index)) < 0 ||
	    (rc = art_release_import(p->txn, p->kr, p->now, env, len, NULL, 0, 0)) < 0)
		goto cleanup;
	details = json_pack("{s:s,s:I}", "digest", digest, "release", (json_int_t)number);
	snprintf(subject, sizeof(subject), "release/%llu", (unsigned long long)number);
	rc = details ? commit(p, subject, details) : art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	if (rc < 0)
		rc = ctx_error(rc, "registry %s", art_oci_client_ref(p->c)->host);
	art_store_txn_abort(p->txn);
	p->txn = NULL;
	json_decref(details);
	art_release_free(r);
	art_release_free(mine);
	free(env);
	json_decref(index);
	return rc;
}

static int pull_refs(puller *p)
{
	char tag[ART_OCI_TAG_MAX + 1], name[128];
	json_t *details = NULL;
	size_t i;
	int rc;

	if ((rc = begin(p)) < 0)
		return rc;
	for (i = 0; i < p->o->n_refs; i++) {
		const char *ref = p->o->refs[i], *at = strchr(ref, '@');

		snprintf(name, sizeof(name), "%.*s", at ? (int)(at - ref) : 0, ref);
		if (!at || (rc = art_oci_artifact_tag(tag, name, at + 1)) < 0) {
			rc = art_error_set(AF_EINVAL, "'%.200s': pull needs NAME@VERSION", ref);
			goto cleanup;
		}
		if (store_has(p, name, at + 1, NULL))
			continue;
		if ((rc = pull_artifact(p, tag, ref, NULL)) < 0)
			goto cleanup;
	}
	if (p->new_artifacts == 0) {
		art_oci__stats(p->c)->up_to_date = true;
		goto cleanup;
	}
	details = json_object();
	rc = details ? commit(p, "artifacts", details) : art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	art_store_txn_abort(p->txn);
	p->txn = NULL;
	json_decref(details);
	return rc;
}

int art_oci_pull(art_oci_stats *stats, art_oci_client *c, art_store *s, const art_keyring *kr,
		 time_t now, const art_oci_pull_opts *opts)
{
	art_oci_pull_opts none;
	json_t *tags = NULL, *t;
	puller p;
	size_t i, n = 0;
	bool all_up = true;
	int rc;

	memset(&none, 0, sizeof(none));
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.s = s;
	p.kr = kr;
	p.now = now;
	p.o = opts ? opts : &none;
	p.progress = art_oci__opts(c)->progress;
	if (p.o->partial_dir)
		snprintf(p.partial, sizeof(p.partial), "%s", p.o->partial_dir);
	else
		snprintf(p.partial, sizeof(p.partial), "%s/oci-partial", art_store_path(s));
	art_oci_client_reset_stats(c);
	if (!kr)
		return art_error_set(AF_EINVAL, "pull needs a keyring");
	if (p.o->channel)
		rc = pull_channel(&p, p.o->channel);
	else if (p.o->release)
		rc = pull_release(&p, p.o->release);
	else if (p.o->n_refs)
		rc = pull_refs(&p);
	else {
		/* every channel of the repository */
		if ((rc = art_oci__tags(c, &tags)) < 0)
			goto done;
		json_array_foreach(tags, i, t) {
			const char *tag = json_string_value(t);

			if (!tag || strncmp(tag, "channel-", 8) || !art_channel_name_valid(tag + 8))
				continue;
			if ((rc = pull_channel(&p, tag + 8)) < 0)
				break;
			all_up &= art_oci__stats(c)->up_to_date;
			n++;
		}
		if (rc == 0 && n == 0)
			rc = art_error_set(AF_ENOTFOUND, "registry %s: %s has no channel-* tag: give "
					   "--release N or NAME@VERSION", art_oci_client_ref(c)->host,
					   art_oci_client_ref(c)->repo);
		art_oci__stats(c)->up_to_date = rc == 0 && all_up;
		json_decref(tags);
	}
done:
	if (stats)
		*stats = *art_oci_client_stats(c);
	return rc;
}
