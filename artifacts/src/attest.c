/*
 * attest.c - the CycloneDX SBOM part and the DSSE-signed SLSA provenance
 * attestation (art/attest.h). The attestation's payload is the provenance
 * part plus runDetails.metadata; verification strips the metadata again and
 * compares bytes with the part the manifest signature covers.
 */
#include "art/attest.h"

#include "art/error.h"
#include "art/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static char *canonical(json_t *root)
{
	return json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
}

/* [{"alg":"SHA-256","content":hex}] */
static json_t *hashes(const char *hex)
{
	json_t *arr = json_array(), *h = json_object();

	if (!arr || !h || set(h, "alg", json_string("SHA-256")) ||
	    set(h, "content", json_string(hex))) {
		json_decref(arr);
		json_decref(h);
		return NULL;
	}
	/* on failure the append has already released h */
	if (json_array_append_new(arr, h)) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* A name-based (version 5 layout) UUID from the artifact's identity. */
static void serial_number(char out[46], const art_manifest *m)
{
	art_buf b = ART_BUF_INIT;
	uint8_t d[ART_SHA256_LEN];
	size_t i;

	art_buf_printf(&b, "%s@%s\n%s\n%s\n", m->name, m->version, m->resolved_template_digest,
		       m->toolchain_id);
	for (i = 0; i < m->n_parts; i++)
		art_buf_printf(&b, "%s %s\n", m->parts[i].name, m->parts[i].digest);
	art_sha256(b.data ? b.data : "", b.len, d);
	art_buf_free(&b);
	d[6] = (uint8_t)((d[6] & 0x0f) | 0x50);
	d[8] = (uint8_t)((d[8] & 0x3f) | 0x80);
	snprintf(out, 46,
		 "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12],
		 d[13], d[14], d[15]);
}

int art_attest_sbom(char **out, size_t *out_len, const art_manifest *m,
		    const art_provenance_extra *prov)
{
	json_t *root = NULL, *meta, *comp, *comps, *tools, *tool_list, *tool, *deps, *dep, *on, *c;
	const art_manifest_part *wasm = art_manifest_part_get(m, ART_PART_WASM);
	char serial[46], agent_ref[300], ref[400];
	size_t i;
	int bad, rc;

	*out = NULL;
	*out_len = 0;
	if (!wasm)
		return art_error_set(AF_EINVAL, "sbom: add the wasm part to the manifest first");
	for (i = 0; prov && i < prov->n_components; i++) {
		const art_sbom_component *k = &prov->components[i];

		if (!k->type || !k->name || !*k->type || !*k->name)
			return art_error_set(AF_EINVAL, "sbom: component %zu needs a type and a name",
					     i);
	}
	serial_number(serial, m);
	snprintf(agent_ref, sizeof(agent_ref), "agent:%s@%s", m->name, m->version);
	root = json_object();
	bad = !root || set(root, "bomFormat", json_string("CycloneDX")) ||
	      set(root, "specVersion", json_string(ART_CYCLONEDX_SPEC)) ||
	      set(root, "serialNumber", json_string(serial)) ||
	      set(root, "version", json_integer(1)) || set(root, "metadata", meta = json_object()) ||
	      set(meta, "tools", tools = json_object()) ||
	      set(tools, "components", tool_list = json_array()) ||
	      json_array_append_new(tool_list, tool = json_object()) || !tool ||
	      set(tool, "type", json_string("application")) ||
	      set(tool, "name", json_string("agentfactory")) ||
	      set(tool, "version", json_string(AF_VERSION)) ||
	      set(meta, "component", comp = json_object()) ||
	      set(comp, "type", json_string("application")) ||
	      set(comp, "bom-ref", json_string(agent_ref)) ||
	      set(comp, "name", json_string(m->name)) ||
	      set(comp, "version", json_string(m->version)) ||
	      set(comp, "hashes", hashes(wasm->digest + 7)) ||
	      set(root, "components", comps = json_array()) ||
	      set(root, "dependencies", deps = json_array()) ||
	      json_array_append_new(deps, dep = json_object()) || !dep ||
	      set(dep, "ref", json_string(agent_ref)) || set(dep, "dependsOn", on = json_array());
	/* The parts, as files of the agent. */
	for (i = 0; !bad && i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];

		if (!strcmp(p->name, ART_PART_PROVENANCE) || !strcmp(p->name, ART_PART_SBOM))
			continue;
		snprintf(ref, sizeof(ref), "part:%s", p->name);
		bad = json_array_append_new(comps, c = json_object()) || !c ||
		      set(c, "type", json_string("file")) || set(c, "bom-ref", json_string(ref)) ||
		      set(c, "name", json_string(p->name)) ||
		      set(c, "mime-type", json_string(p->media_type)) ||
		      set(c, "hashes", hashes(p->digest + 7)) ||
		      (p->compat_id && set(c, "description", json_string(p->compat_id)));
	}
	/* What went into them: the guest library, libc, compilers. */
	for (i = 0; !bad && prov && i < prov->n_components; i++) {
		const art_sbom_component *k = &prov->components[i];

		snprintf(ref, sizeof(ref), "dep:%s", k->name);
		bad = json_array_append_new(comps, c = json_object()) || !c ||
		      set(c, "type", json_string(k->type)) || set(c, "bom-ref", json_string(ref)) ||
		      set(c, "name", json_string(k->name)) ||
		      (k->version && set(c, "version", json_string(k->version))) ||
		      (k->description && set(c, "description", json_string(k->description))) ||
		      (k->purl && set(c, "purl", json_string(k->purl))) ||
		      (k->sha256_hex && set(c, "hashes", hashes(k->sha256_hex))) ||
		      json_array_append_new(on, json_string(ref));
	}
	if (bad) {
		rc = art_error_set(AF_ENOMEM, "out of memory building the SBOM");
		goto cleanup;
	}
	if (!(*out = canonical(root))) {
		rc = art_error_set(AF_ENOMEM, "out of memory building the SBOM");
		goto cleanup;
	}
	*out_len = strlen(*out);
	rc = 0;
cleanup:
	json_decref(root);
	return rc;
}

static int load_statement(json_t **out, const void *data, size_t len)
{
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(root, "_type"));
	const char *pred = json_string_value(json_object_get(root, "predicateType"));

	*out = NULL;
	if (!json_is_object(root) || !type || strcmp(type, ART_SIG_STATEMENT_TYPE) != 0 || !pred ||
	    strcmp(pred, ART_SLSA_PREDICATE_TYPE) != 0 ||
	    !json_is_object(json_object_get(json_object_get(root, "predicate"), "runDetails"))) {
		json_decref(root);
		return AF_EINVAL;
	}
	*out = root;
	return 0;
}

int art_attest_sign_provenance(char **out_json, const art_key *builder, const void *statement,
			       size_t len, const art_provenance_extra *prov)
{
	json_t *root = NULL, *run, *meta;
	char when[21], *text = NULL;
	int rc;

	*out_json = NULL;
	if (load_statement(&root, statement, len) < 0)
		return art_error_set(AF_EINVAL, "attestation: not a SLSA v1 provenance statement");
	run = json_object_get(json_object_get(root, "predicate"), "runDetails");
	meta = json_object();
	if (!meta || json_object_set_new(run, "metadata", meta)) {
		rc = art_error_set(AF_ENOMEM, "out of memory signing the provenance");
		goto cleanup;
	}
	if (prov && prov->invocation_id && *prov->invocation_id &&
	    set(meta, "invocationId", json_string(prov->invocation_id)))
		goto oom;
	if (prov && prov->started_on > 0) {
		art_time_format(when, prov->started_on);
		if (set(meta, "startedOn", json_string(when)))
			goto oom;
	}
	if (prov && prov->finished_on > 0) {
		art_time_format(when, prov->finished_on);
		if (set(meta, "finishedOn", json_string(when)))
			goto oom;
	}
	if (json_object_size(meta) == 0)
		json_object_del(run, "metadata");
	if (!(text = canonical(root)))
		goto oom;
	rc = art_sig_sign_payload(out_json, builder, ART_SIG_TYPE_INTOTO, text, strlen(text));
	goto cleanup;
oom:
	rc = art_error_set(AF_ENOMEM, "out of memory signing the provenance");
cleanup:
	free(text);
	json_decref(root);
	return rc;
}

/* Step 3: subjects name parts with their digests; every output is one. */
static int check_subjects(const art_manifest *m, json_t *root)
{
	json_t *subjects = json_object_get(root, "subject"), *s;
	char prefix[300];
	size_t i, j, n_outputs = 0, plen;

	snprintf(prefix, sizeof(prefix), "%s@%s/", m->name, m->version);
	plen = strlen(prefix);
	if (!json_is_array(subjects) || json_array_size(subjects) == 0)
		return art_error_set(AF_ESIGNATURE, "attestation: the statement has no subject");
	json_array_foreach(subjects, i, s) {
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *hex = json_string_value(json_object_get(json_object_get(s, "digest"),
								    "sha256"));
		const art_manifest_part *p;

		if (!name || !hex)
			return art_error_set(AF_ESIGNATURE, "attestation: subject %zu has no name "
					     "or sha256 digest", i);
		if (strncmp(name, prefix, plen) != 0 || !(p = art_manifest_part_get(m, name + plen)))
			return art_error_set(AF_ESIGNATURE, "attestation: subject '%.120s' is not a "
					     "part of %s@%s (an attestation of another artifact)",
					     name, m->name, m->version);
		if (strcmp(hex, p->digest + 7) != 0)
			return art_error_set(AF_ESIGNATURE, "attestation: subject '%.120s' has digest "
					     "sha256:%.16s..., the artifact's part is %.23s...: the "
					     "attestation does not describe these bytes", name, hex,
					     p->digest);
	}
	for (j = 0; j < m->n_parts; j++)
		if (strcmp(m->parts[j].name, ART_PART_PROVENANCE) &&
		    strcmp(m->parts[j].name, ART_PART_SBOM))
			n_outputs++;
	if (json_array_size(subjects) != n_outputs)
		return art_error_set(AF_ESIGNATURE, "attestation: %zu subjects for %zu parts",
				     json_array_size(subjects), n_outputs);
	return 0;
}

int art_attest_verify_provenance(art_sig_info *info_out, char **statement,
				 size_t *statement_len, const art_keyring *kr,
				 const art_manifest *m, const char *envelope, size_t envelope_len,
				 time_t now)
{
	const art_manifest_part *part = art_manifest_part_get(m, ART_PART_PROVENANCE);
	char digest[ART_DIGEST_STR_LEN + 1], *text = NULL;
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	json_t *root = NULL;
	int rc;

	if (statement)
		*statement = NULL;
	if (statement_len)
		*statement_len = 0;
	if (!part)
		return art_error_set(AF_ENOTFOUND, "%s@%s has no provenance part", m->name,
				     m->version);
	if ((rc = art_sig_verify_payload(info_out, &payload, &payload_len, kr, ART_ROLE_BUILDER,
					 ART_SIG_TYPE_INTOTO, envelope, envelope_len, now)) < 0)
		return rc;
	if (load_statement(&root, payload, payload_len) < 0) {
		rc = art_error_set(AF_ESIGNATURE, "attestation: the signed payload is not an in-toto "
				   "Statement v1 with a SLSA provenance v1 predicate");
		goto cleanup;
	}
	if ((rc = check_subjects(m, root)) < 0)
		goto cleanup;
	json_object_del(json_object_get(json_object_get(root, "predicate"), "runDetails"),
			"metadata");
	if (!(text = canonical(root))) {
		rc = art_error_set(AF_ENOMEM, "out of memory verifying an attestation");
		goto cleanup;
	}
	art_manifest_digest(digest, text, strlen(text));
	if (strcmp(digest, part->digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "attestation: the signed statement is not the "
				   "artifact's provenance (statement %.23s..., provenance part "
				   "%.23s...): altered or taken from another build", digest,
				   part->digest);
		goto cleanup;
	}
	if (statement) {
		*statement = (char *)payload;
		payload = NULL;
		if (statement_len)
			*statement_len = payload_len;
	}
	rc = 0;
cleanup:
	free(text);
	free(payload);
	json_decref(root);
	return rc;
}

int art_attest_envelope_payload(char **out, size_t *out_len, const char *envelope,
				size_t envelope_len)
{
	json_t *root = json_loadb(envelope, envelope_len, 0, NULL);
	const char *b64 = json_string_value(json_object_get(root, "payload"));
	uint8_t *raw = NULL, *grown;
	size_t len = 0;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!b64) {
		json_decref(root);
		return art_error_set(AF_ECORRUPT, "not a DSSE envelope");
	}
	rc = art_base64_decode(&raw, &len, b64);
	json_decref(root);
	if (rc < 0)
		return rc;
	if (!(grown = realloc(raw, len + 1))) {
		free(raw);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	grown[len] = '\0';
	*out = (char *)grown;
	*out_len = len;
	return 0;
}
