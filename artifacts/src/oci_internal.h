/*
 * oci_internal.h - what oci_client.c (the Distribution Spec client) shares
 * with oci_model.c (the registry layout of a store), and no one else.
 *
 * Every call names the registry, the repository and the reference in its
 * error message; bodies are capped; blob and manifest bytes are checked
 * against the digest they were asked by before they are returned.
 */
#ifndef ART_OCI_INTERNAL_H
#define ART_OCI_INTERNAL_H

#include "art/oci.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The options in force (defaults applied). Borrowed. */
const art_oci_opts *art_oci__opts(const art_oci_client *c);

/** Mutable counters of the client. */
art_oci_stats *art_oci__stats(art_oci_client *c);

/**
 * Whether the repository has blob digest.
 * @return 0 or a registry error
 */
int art_oci__blob_exists(art_oci_client *c, const char *digest, bool *exists);

/**
 * Download a blob of a known size and check its digest.
 * @param[out] out  caller owns; free()
 * @return 0, AF_ENOTFOUND, AF_ESIGNATURE (digest or size mismatch: tampered),
 *         AF_ETOOBIG (the registry announced or sent more than size), or a
 *         registry error
 */
int art_oci__blob_get(art_oci_client *c, const char *digest, uint64_t size, uint8_t **out);

/**
 * Upload a blob (POST, then one PUT or PATCH chunks and a closing PUT), or
 * mount it from mount_from when given and the registry can.
 * @param[out] mounted  may be NULL; true when the registry mounted it
 * @return 0 or a registry error
 */
int art_oci__blob_upload(art_oci_client *c, const char *digest, const void *data, size_t len,
			 const char *mount_from, bool *mounted);

/**
 * GET a manifest or index by tag or digest (at most ART_OCI_MANIFEST_MAX).
 * @param[out] out, len    caller owns out (NUL-terminated); free()
 * @param[out] media_type  the Content-Type (at most 127 characters)
 * @param[out] digest      "sha256:<hex>" of the bytes; a reference that is a
 *                         digest must match it (AF_ESIGNATURE otherwise)
 * @return 0, AF_ENOTFOUND, AF_ESIGNATURE, AF_ETOOBIG or a registry error
 */
int art_oci__manifest_get(art_oci_client *c, const char *reference, char **out, size_t *len,
			  char media_type[128], char digest[72]);

/**
 * PUT a manifest under reference (tag or its digest).
 * @param[out] oci_subject  may be NULL; true when the registry answered with
 *                          OCI-Subject (it indexes referrers itself)
 * @return 0 or a registry error
 */
int art_oci__manifest_put(art_oci_client *c, const char *reference, const char *media_type,
			  const void *data, size_t len, bool *oci_subject);

/**
 * The referrers of digest as an image index ({"manifests": [...]}): from the
 * referrers API, else from the fallback tag "sha256-<hex>", else empty.
 * Not trusted: each descriptor still has to be fetched and verified.
 * @param[out] out           caller owns (json_decref)
 * @param[out] from_fallback may be NULL; true when read from the fallback tag
 * @return 0 or a registry error
 */
int art_oci__referrers(art_oci_client *c, const char *digest, json_t **out,
		       bool *from_fallback);

/**
 * The repository's tags (the first 10000).
 * @param[out] out  caller owns (json_decref); an array of strings
 */
int art_oci__tags(art_oci_client *c, json_t **out);

/** "sha256-<hex>": the referrers fallback tag of digest. */
void art_oci__fallback_tag(char out[72], const char *digest);

#endif
