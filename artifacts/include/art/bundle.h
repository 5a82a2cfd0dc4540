/*
 * art/bundle.h - signed, self-contained bundles of artifacts: an OCI image
 * layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
 * in a ustar archive, so registries and OCI tools can carry it from CI to
 * the runtime pods.
 *
 *   oci-layout             {"imageLayoutVersion":"1.0.0"}
 *   index.json             an OCI image index: one OCI image manifest per
 *                          artifact, annotated org.opencontainers.image.ref.name
 *                          = "name@version"
 *   blobs/sha256/<hex>     the OCI manifests, the agentfactory manifests (the
 *                          OCI config) and the raw parts (layers), each named
 *                          by its SHA-256
 *   signatures/<hex>.manifest.dsse.json    the builder envelope of the
 *                          artifact whose OCI manifest has digest sha256:<hex>
 *   signatures/<hex>.provenance.dsse.json  its provenance attestation
 *                          (art/attest.h), when it has one
 *
 * Export is deterministic: entries sorted by path, mode 0644/0755, uid/gid 0,
 * mtime 0, canonical JSON. Everything a digest names (index.json, the OCI
 * manifests, every blob) is reproducible: two builds of the same commit
 * export byte-identical content. Only the signatures differ (RSA-PSS is
 * randomised, attestations carry run times): they are detached entries
 * outside the OCI digest tree (the cosign model), or, with
 * art_bundle_export_ex, a separate file, so that the bundle file itself is
 * byte-identical. Bundles of the first layout (the builder envelope as a
 * layer of the OCI manifest) still import.
 *
 * Import trusts nothing in the archive. It reads the tar strictly (caps on
 * size and entry count; no absolute paths, no "..", no links or devices;
 * ustar, POSIX pax and GNU long names accepted; only the OCI layout's own
 * paths and signatures/; nested OCI indexes followed), checks every blob
 * against its name, then verifies every artifact (builder signature from the
 * keyring at `now`, signed payload = config blob, canonical manifest, index
 * name = signed name@version, every part present with its digest, size and
 * media type, no stray layer) before it writes anything; everything is
 * then written in one store transaction. One bad artifact refuses the whole
 * bundle; the message names the artifact and the reason. See docs/store.md.
 */
#ifndef ART_BUNDLE_H
#define ART_BUNDLE_H

#include "art/keyring.h"
#include "art/store.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/** A bundle file larger than this is refused (AF_ETOOBIG). */
#define ART_BUNDLE_MAX (1ull << 30)
/** At most this many tar entries. */
#define ART_BUNDLE_MAX_ENTRIES 100000u
/** index.json cap. */
#define ART_BUNDLE_INDEX_MAX (16u * 1024u * 1024u)
/** Cap on one OCI image manifest. */
#define ART_BUNDLE_OCI_MANIFEST_MAX (1024u * 1024u)

#define ART_MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define ART_MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
/** artifactType of an agentfactory artifact's OCI manifest. */
#define ART_MEDIA_ARTIFACT "application/vnd.agentfactory.artifact.v1"
/** Media type of the builder envelope layer. */
#define ART_MEDIA_DSSE "application/vnd.dsse.envelope.v1+json"
#define ART_OCI_REF_ANNOTATION "org.opencontainers.image.ref.name"
#define ART_OCI_TITLE_ANNOTATION "org.opencontainers.image.title"

/** What an export or import did. */
typedef struct art_bundle_stats {
	size_t artifacts; /* artifacts exported / imported */
	size_t blobs;     /* blobs/sha256 entries written / read */
	uint64_t bytes;   /* archive size */
	size_t attestations; /* provenance attestations exported / imported */
	/* export: "sha256:" of index.json, the digest of everything but the
	 * signatures (equal for two builds of the same commit) */
	char content_digest[ART_DIGEST_STR_LEN + 1];
} art_bundle_stats;

/**
 * Export artifacts into a bundle file, written atomically (temporary file,
 * fsync, rename).
 * @param[out] stats  may be NULL
 * @param[in]  refs   "NAME" (latest) or "NAME@VERSION"; n_refs 0 = every
 *                    artifact in the store
 * @return 0, AF_ENOTFOUND (a ref is not in the store), AF_EINVAL (bad ref;
 *         empty store), AF_ECORRUPT (a stored blob or manifest is damaged),
 *         AF_EIO (the message names the path) or AF_ENOMEM
 */
int art_bundle_export(art_bundle_stats *stats, const art_store *s, const char *path,
		      const char *const *refs, size_t n_refs);

/**
 * As art_bundle_export; with signatures_path non-NULL the detached
 * signatures (signatures/ entries) go into that second ustar file instead of
 * the bundle, which then holds only reproducible bytes. Import the pair with
 * art_bundle_import_ex.
 * @return as art_bundle_export; AF_EINVAL when both paths are the same
 */
int art_bundle_export_ex(art_bundle_stats *stats, const art_store *s, const char *path,
			 const char *signatures_path, const char *const *refs, size_t n_refs);

/**
 * Verify a bundle file entirely, then import it in one transaction.
 * @param[out] stats  may be NULL
 * @return 0, or: AF_ENOTFOUND / AF_EIO (cannot read path), AF_ETOOBIG (over
 *         a cap), AF_ECORRUPT (malformed or unsafe archive, a blob not
 *         matching its name, a malformed layout or manifest), or the
 *         verification error of the first bad artifact (AF_ESIGNATURE,
 *         AF_EREVOKED, AF_EEXPIRED, AF_EDENIED, AF_ENOTFOUND for an unknown
 *         key, ...); the store is unchanged on any error
 */
int art_bundle_import(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
		      time_t now, const char *path);

/**
 * As art_bundle_import, with the detached signatures in a second file
 * (signatures_path NULL: none; it may hold only signatures/ entries).
 */
int art_bundle_import_ex(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
			 time_t now, const char *path, const char *signatures_path);

/**
 * As art_bundle_import, from memory.
 * @param[in] name  used in messages (e.g. the file name)
 */
int art_bundle_import_mem(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
			  time_t now, const void *data, size_t len, const char *name);

/** As art_bundle_import_ex, from memory (sigs may be NULL). */
int art_bundle_import_mem_ex(art_bundle_stats *stats, art_store *s, const art_keyring *kr,
			     time_t now, const void *data, size_t len, const void *sigs,
			     size_t sigs_len, const char *name);

/* ---- the ustar layer (also used by tests and tools) ---------------------- */

/** One archive member. */
typedef struct art_tar_entry {
	char *path;          /* owned; without a leading "./"; directories end in '/' */
	const uint8_t *data; /* borrowed: from the caller (write) or the archive (read) */
	size_t size;
	char type;           /* '0' regular file, '5' directory */
} art_tar_entry;

/**
 * Write entries as a ustar archive, in the given order: mode 0644 (files) or
 * 0755 (directories), uid/gid 0, empty user/group names, mtime 0, then two
 * zero blocks.
 * @return 0, AF_EINVAL (a path over 99 bytes, an entry over 8 GiB, a type
 *         other than '0'/'5') or AF_EIO
 */
int art_bundle_tar_write(FILE *f, const art_tar_entry *entries, size_t n);

/**
 * Read a ustar archive strictly: header checksums, "ustar" magic, octal
 * sizes, data inside the buffer, two zero blocks at the end (zero padding
 * after them is allowed). POSIX pax extended headers ('x': their "path" and
 * "size" apply to the next member, other keys such as times and owners are
 * ignored; 'g' global headers are ignored) and GNU long names ('L') are
 * read, as GNU tar, skopeo and umoci write them. Refused with AF_ECORRUPT
 * (the message names the entry): absolute paths, ".." or empty path
 * components, backslashes, any type but a regular file or a directory
 * (links, devices, FIFOs), a malformed or dangling extension header,
 * duplicate paths, a truncated archive.
 * @param[out] out, n  caller owns; free with art_bundle_tar_free. Entry data
 *                     points into data (valid while data is).
 * @param[in]  max_entries  AF_ETOOBIG beyond this many entries
 * @return 0, AF_ECORRUPT, AF_ETOOBIG or AF_ENOMEM
 */
int art_bundle_tar_read(art_tar_entry **out, size_t *n, const void *data, size_t len,
			size_t max_entries);

/** NULL-safe. */
void art_bundle_tar_free(art_tar_entry *entries, size_t n);

#endif
