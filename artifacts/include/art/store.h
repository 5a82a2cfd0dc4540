/*
 * art/store.h - the artifact store: one LMDB environment holding signed
 * build manifests and their zstd-compressed, content-addressed parts.
 *
 * Layout (docs/store.md): one environment in a directory, named databases
 *   blobs      sha256 hex -> 13-byte header + zstd frame (or raw bytes)
 *   artifacts  "name@version" -> canonical manifest + builder DSSE envelope
 *   names      name -> latest version (semver precedence)
 *   cache      sha256(resolved digest "\n" toolchain id) -> "name@version"
 *   meta       store format, zstd dictionaries, statistics
 *   releases   signed releases and the name@version pins (art/release.h)
 *   channels   signed channel records and their history (art/release.h)
 *   audit      the hash-chained audit log (art/audit.h)
 *
 * Writes are batched: art_store_txn_begin starts an in-memory batch, the
 * put calls queue into it, and art_store_txn_commit compresses the queued
 * blobs (in parallel), then applies everything in ONE LMDB write transaction
 * with default durability. A crash at any point leaves the store as it was
 * before the commit or with the whole batch, never part of it.
 *
 * Reads never trust the bytes: every blob is decompressed under a size cap
 * and re-hashed against its key before it is returned. Functions that hand
 * out an artifact as *trusted* (art_store_load_verified) verify its builder
 * signature, the manifest/envelope binding and every part they return first.
 * art_store_get_artifact returns raw, unverified bytes and says so.
 *
 * Threads: a store handle may be shared by many threads for reading (LMDB
 * MDB_NOTLS; each read call uses its own read transaction). A batch belongs
 * to the thread that uses it; commits from several threads serialise on
 * LMDB's writer lock. Several processes may open one store at once: one
 * writer at a time, readers never block (MDB_RDONLY works while another
 * process writes). Do not use a handle across fork(); open a new one.
 */
#ifndef ART_STORE_H
#define ART_STORE_H

#include "art/audit.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/sig.h"
#include "art/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ART_STORE_FORMAT "agentfactory-store/v1"

/** Open flags. */
#define ART_STORE_RDONLY 0x1u /* MDB_RDONLY: no writes through this handle */
#define ART_STORE_CREATE 0x2u /* create DIR (0700) and the store if missing */

/** Initial LMDB map size (env AF_STORE_MAP_SIZE overrides it, e.g. "64M");
 * it doubles whenever a commit runs out of room. */
#define ART_STORE_MAP_SIZE (4ull << 30)
/** The largest blob stored or returned (raw bytes). */
#define ART_BLOB_MAX ART_PART_MAX_SIZE
/** Raw bytes one batch may queue before art_store_put_blob says AF_ETOOBIG. */
#define ART_STORE_BATCH_MAX (4ull << 30)
/** zstd level of stored blobs. */
#define ART_STORE_ZSTD_LEVEL 19
/** A batch with at least this many new blobs trains the first dictionary. */
#define ART_STORE_DICT_MIN_SAMPLES 8u
/** Capacity of a trained dictionary. */
#define ART_STORE_DICT_SIZE (112u * 1024u)
/** Size of the header in front of each stored blob. */
#define ART_BLOB_HEADER_SIZE 13u

typedef struct art_store art_store;
typedef struct art_store_txn art_store_txn;

/**
 * Open (or create) the store in dir.
 * @param[out] out    caller owns; close with art_store_close. NULL on error.
 * @param[in]  dir    the store directory
 * @param[in]  flags  ART_STORE_RDONLY, ART_STORE_CREATE (not both)
 * @return 0, AF_EINVAL (both flags), AF_ENOTFOUND (no store in dir and no
 *         ART_STORE_CREATE), AF_EVERSION (another store format), AF_ECORRUPT
 *         (not an agentfactory store, or damaged records), AF_EDAMAGED
 *         (data.mdb is shorter than its meta pages claim, or they are
 *         unreadable: see art_lmdb_check_file), AF_EDENIED (permissions),
 *         AF_EIO or AF_ENOMEM; the message names dir
 */
int art_store_open(art_store **out, const char *dir, unsigned flags);

/**
 * Check an LMDB data file against what its own meta pages claim, before
 * anything maps it: both meta pages must be readable and carry LMDB's magic,
 * and the file must hold every page up to the newest meta page's last page.
 * LMDB maps the file and touches pages directly, so a truncated file (a
 * partial copy, an interrupted restore) would otherwise kill the reader with
 * SIGBUS instead of an error.
 * @param[in] data_path  the data file (".../data.mdb")
 * @return 0 (also for a missing or empty file: nothing to read yet),
 *         AF_EDAMAGED ("store is corrupt: data.mdb is N bytes, its meta page
 *         claims M"), AF_EIO (cannot read it)
 */
int art_lmdb_check_file(const char *data_path);

/**
 * art_lmdb_check_file on the data file an open store has mapped (it may have
 * been truncated since it was opened: check before reading it again). A file
 * renamed over data.mdb since is not seen: the mapped one stays damaged.
 * @return as art_lmdb_check_file
 */
int art_store_check_file(const art_store *s);

/**
 * Close a store. Every batch must be committed or aborted first, and no
 * other thread may still be reading through the handle. NULL-safe.
 */
void art_store_close(art_store *s);

/** The directory the store was opened from. Borrowed, valid until close. */
const char *art_store_path(const art_store *s);

/* ---- writing ------------------------------------------------------------- */

/**
 * Start a write batch.
 * @param[out] out  caller owns; end with art_store_txn_commit or _abort
 * @return 0, AF_EDENIED (the store was opened read-only) or AF_ENOMEM
 */
int art_store_txn_begin(art_store_txn **out, art_store *s);

/**
 * Whether the commit may train the store's first zstd dictionary from the
 * batch's new blobs when the store has none yet and the batch has at least
 * ART_STORE_DICT_MIN_SAMPLES of them (default: true).
 */
void art_store_txn_set_auto_dict(art_store_txn *txn, bool enable);

/**
 * Queue a blob (content-addressed: its key is the SHA-256 of data). A blob
 * already in the store or in the batch is not queued again.
 * @param[in]  data, len       copied; at most ART_BLOB_MAX bytes
 * @param[out] out_digest_hex  may be NULL; the 64-hex SHA-256 of data
 * @return 0, AF_ETOOBIG (over ART_BLOB_MAX, or the batch over
 *         ART_STORE_BATCH_MAX), AF_ENOMEM, or a read error of the store
 */
int art_store_put_blob(art_store_txn *txn, const void *data, size_t len,
		       char out_digest_hex[ART_SHA256_HEX_LEN + 1]);

/**
 * Queue an artifact: the manifest's canonical bytes and the builder's DSSE
 * envelope over them, under "name@version". Every part must be in the store
 * or queued in this batch by commit time. An existing name@version is
 * replaced (a rebuild) unless a release pins it (then the commit refuses a
 * different manifest: artifacts are immutable once released); the names
 * index moves to the highest version and the build cache learns
 * (resolved digest, toolchain id) -> name@version.
 * No signature is verified here (the store has no keyring), but the
 * envelope's payload must be exactly the canonical manifest.
 * @return 0, AF_ECORRUPT (art_manifest_validate), AF_EINVAL (the envelope
 *         is malformed, of another payload type, or signs other bytes),
 *         AF_EEXISTS (name@version already queued in this batch) or AF_ENOMEM
 */
int art_store_put_artifact(art_store_txn *txn, const art_manifest *m, const char *envelope,
			   size_t envelope_len);

/**
 * As art_store_put_artifact, with the artifact's provenance attestation (a
 * DSSE envelope of type application/vnd.in-toto+json, art/attest.h), kept
 * in the store's "attestations" database under name@version, outside the
 * record the manifest digest names. attestation NULL (or length 0) stores
 * none, and removes a stale one of an earlier build of name@version.
 * Only the envelope's form is checked here; art_store_verify_all and
 * art_attest_verify_provenance check its signature and subjects.
 * @return as art_store_put_artifact; AF_EINVAL for a malformed attestation
 */
int art_store_put_artifact_ex(art_store_txn *txn, const art_manifest *m, const char *envelope,
			      size_t envelope_len, const char *attestation,
			      size_t attestation_len);

/**
 * Train a zstd dictionary (ZDICT_trainFromBuffer, ART_STORE_DICT_SIZE) from
 * samples and make it the store's current dictionary: the blobs of this
 * batch and of later batches are compressed with it. Earlier blobs keep
 * theirs (each blob's header names its dictionary id).
 * @param[out] out_id  may be NULL; the new dictionary id
 * @return 0, AF_EINVAL (fewer than ART_STORE_DICT_MIN_SAMPLES samples, or
 *         zstd could not train a dictionary from them), AF_ENOMEM
 */
int art_store_train_dict(art_store_txn *txn, const void *const *samples, const size_t *sizes,
			 size_t n, uint32_t *out_id);

/**
 * Apply the batch in one LMDB write transaction and free it (in every case).
 * @return 0, AF_ENOTFOUND (a queued artifact names a part that is neither in
 *         the store nor in the batch, or whose size differs), AF_EEXISTS (a
 *         queued artifact would replace a released name@version with another
 *         manifest), AF_ECORRUPT (damaged audit head), AF_ETOOBIG (the
 *         map could not grow), AF_EIO, AF_ECORRUPT or AF_ENOMEM. On error the
 *         store is unchanged.
 */
int art_store_txn_commit(art_store_txn *txn);

/** Drop the batch; the store is unchanged. NULL-safe. */
void art_store_txn_abort(art_store_txn *txn);

/**
 * Queue an audit entry (art/audit.h) to be appended by art_store_txn_commit
 * in the same LMDB write transaction as the rest of the batch: the entry
 * exists exactly when the batch does. The event's strings are copied; its
 * signer keys are borrowed until art_store_txn_commit or _abort returns.
 * Entries are appended in the order queued, after the batch's artifacts.
 * (Defined with the audit log's writing side, in audit_record.c: the store
 * itself calls nothing of the audit code.)
 * @param[in] now  the entry's time
 * @return 0, AF_EINVAL (see art_audit_append) or AF_ENOMEM
 */
int art_store_txn_audit(art_store_txn *txn, const art_audit_event *ev, time_t now);

/** The parts of one build, borrowed. */
typedef struct art_build_parts {
	const void *wasm;
	size_t wasm_len;
	const void *native; /* the .so for info->native_compat_id */
	size_t native_len;
	const void *source; /* the generated C */
	size_t source_len;
} art_build_parts;

/**
 * Everything for one agent build in one call: queue the wasm, native and
 * source parts, build the manifest, its CycloneDX SBOM (the "sbom" part) and
 * its SLSA provenance (the "provenance" part), sign the canonical manifest
 * with the builder key, sign the provenance as a DSSE in-toto attestation
 * (art_attest_sign_provenance, detached) and queue the artifact.
 * @param[out] out      may be NULL; else the manifest (caller owns)
 * @param[in]  builder  a private key (trusted as builder by the verifiers)
 * @return 0 or the errors of art_manifest_new, art_store_put_blob,
 *         art_manifest_provenance, art_sig_sign_payload, art_store_put_artifact
 */
int art_store_put_build(art_store_txn *txn, art_manifest **out, const art_manifest_info *info,
			const art_provenance_info *prov, const art_build_parts *parts,
			const art_key *builder);

/** As art_store_put_build, with the optional provenance facts of extra (may be NULL). */
int art_store_put_build_ex(art_store_txn *txn, art_manifest **out, const art_manifest_info *info,
			   const art_provenance_info *prov, const art_provenance_extra *extra,
			   const art_build_parts *parts, const art_key *builder);

/* ---- reading ------------------------------------------------------------- */

/**
 * A blob's bytes, decompressed and checked: the header's raw size must be
 * at most ART_BLOB_MAX and equal the zstd frame's content size, and the
 * bytes must hash to the key.
 * @param[out] out, out_len  caller owns out; free()
 * @param[in]  digest_hex    64 lower-case hex digits
 * @return 0, AF_EINVAL (bad digest), AF_ENOTFOUND, AF_ECORRUPT (bad header,
 *         bad frame, lying size, missing dictionary, digest mismatch) or
 *         AF_ENOMEM
 */
int art_store_get_blob(uint8_t **out, size_t *out_len, const art_store *s,
		       const char *digest_hex);

/** How a blob is stored. */
typedef struct art_blob_info {
	uint64_t raw_size;    /* from the header (not verified) */
	uint64_t stored_size; /* bytes in LMDB, header included */
	uint32_t dict_id;     /* 0: no dictionary */
	int compressed;       /* 1 zstd frame, 0 stored raw */
} art_blob_info;

/**
 * Read a blob's header without decompressing it.
 * @return 0, AF_EINVAL, AF_ENOTFOUND or AF_ECORRUPT (bad header)
 */
int art_store_blob_info(art_blob_info *out, const art_store *s, const char *digest_hex);

/** An artifact as stored: NOT verified (use art_store_load_verified to trust one). */
typedef struct art_store_record {
	char *name, *version;
	char *manifest;     /* manifest bytes, NUL-terminated */
	size_t manifest_len;
	char *envelope;     /* builder DSSE envelope, NUL-terminated */
	size_t envelope_len;
	char manifest_digest[ART_DIGEST_STR_LEN + 1];
} art_store_record;

/**
 * Fetch an artifact's stored bytes.
 * @param[out] out      caller owns; free with art_store_record_free
 * @param[in]  version  NULL for the latest version of name
 * @return 0, AF_EINVAL (bad name or version), AF_ENOTFOUND or AF_ECORRUPT
 */
int art_store_get_artifact(art_store_record **out, const art_store *s, const char *name,
			   const char *version);

/** NULL-safe. */
void art_store_record_free(art_store_record *r);

/**
 * The provenance attestation of an artifact, as stored: the DSSE envelope
 * bytes (JSON), NOT verified (art_attest_verify_provenance does that with
 * the verified manifest). For export: bundles, OCI referrers.
 * The SBOM and the unsigned provenance statement are parts: read them with
 * art_store_load_verified_parts(..., {"sbom"} / {"provenance"}).
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @param[in]  version       NULL for the latest
 * @return 0, AF_ENOTFOUND (no such artifact, or it has no attestation: built
 *         by an older version or imported without one), AF_EINVAL,
 *         AF_ECORRUPT or AF_ENOMEM
 */
int art_store_get_attestation(char **out, size_t *out_len, const art_store *s, const char *name,
			      const char *version);

/** One listed artifact. */
typedef struct art_store_entry {
	char *name, *version;
	char manifest_digest[ART_DIGEST_STR_LEN + 1];
	bool latest; /* the names index points at this version */
} art_store_entry;

/**
 * Every artifact, sorted by name, then by version precedence.
 * @param[out] out, n  caller owns; free with art_store_list_free
 * @return 0, AF_ECORRUPT or AF_ENOMEM
 */
int art_store_list(art_store_entry **out, size_t *n, const art_store *s);

/** NULL-safe. */
void art_store_list_free(art_store_entry *entries, size_t n);

/**
 * The latest stored version of name.
 * @param[out] out  caller owns; free()
 * @return 0, AF_ENOTFOUND, AF_EINVAL or AF_ENOMEM
 */
int art_store_latest(char **out, const art_store *s, const char *name);

/**
 * The build-cache key: 64-hex SHA-256 of resolved_digest "\n" toolchain_id.
 */
void art_store_cache_key(char out[ART_SHA256_HEX_LEN + 1], const char *resolved_digest,
			 const char *toolchain_id);

/**
 * Build cache: an artifact built from the same resolved template with the
 * same toolchain, whose stored manifest still records both (a later
 * rebuild of that name@version with another toolchain is a miss).
 * The answer is a hint, not trust: load it with art_store_load_verified.
 * @param[out] out_name, out_version  caller owns; free()
 * @return 0, AF_ENOTFOUND (miss) or AF_ENOMEM
 */
int art_store_cache_lookup(char **out_name, char **out_version, const art_store *s,
			   const char *resolved_digest, const char *toolchain_id);

/**
 * Called once per artifact by art_store_verify_all. rc is 0 when the
 * artifact verified, else its error; reason is "" or the message. Both
 * strings are valid only during the call.
 */
typedef void (*art_store_verify_cb)(void *ctx, const char *name, const char *version, int rc,
				    const char *reason);

/**
 * Verify every artifact in one snapshot: builder signature (kr, role
 * builder, at now), the envelope's payload equal to the stored manifest,
 * the manifest canonical and stored under its own name@version, every
 * part present, decompressing cleanly, with its digest and size, and the
 * provenance attestation, when the artifact has one
 * (art_attest_verify_provenance: signature, subjects, statement).
 * One failing artifact does not stop the others.
 * @param[in]  cb                may be NULL
 * @param[out] n_ok, n_failed    may be NULL
 * @return 0 (all verified), AF_ESIGNATURE (at least one failed; the message
 *         counts them) or a store error (AF_ECORRUPT, AF_ENOMEM, ...)
 */
int art_store_verify_all(const art_store *s, const art_keyring *kr, time_t now,
			 art_store_verify_cb cb, void *ctx, size_t *n_ok, size_t *n_failed);

/** A verified part. */
typedef struct art_verified_part {
	const art_manifest_part *part; /* borrowed from the artifact's manifest */
	uint8_t *data;                 /* decompressed, digest and size checked */
	size_t size;
} art_verified_part;

/** An artifact whose signature, manifest and returned parts were verified. */
typedef struct art_verified_artifact {
	art_manifest *manifest;
	char *manifest_json;  /* the signed canonical bytes */
	size_t manifest_len;
	char manifest_digest[ART_DIGEST_STR_LEN + 1];
	art_sig_info signer;
	art_verified_part *parts;
	size_t n_parts;
} art_verified_artifact;

/**
 * Load an artifact only after verifying it (the checks of
 * art_store_verify_all), with every part, in one snapshot.
 * @param[out] out      caller owns; free with art_verified_artifact_free
 * @param[in]  version  NULL for the latest
 * @return 0, AF_ENOTFOUND, or the verification error (AF_ESIGNATURE,
 *         AF_ECORRUPT, AF_EREVOKED, AF_EEXPIRED, AF_EDENIED, ...)
 */
int art_store_load_verified(art_verified_artifact **out, const art_store *s,
			    const art_keyring *kr, const char *name, const char *version,
			    time_t now);

/**
 * As art_store_load_verified, but decompress and verify only the named
 * parts (the runtime needs its native part, not the C source).
 * @param[in] parts, n_parts  part names; n_parts 0 loads the verified
 *                            manifest only
 * @return as art_store_load_verified; a named part missing from the
 *         manifest is AF_EVERSION for a native part (no code for this
 *         compatibility id), AF_ENOTFOUND otherwise
 */
int art_store_load_verified_parts(art_verified_artifact **out, const art_store *s,
				  const art_keyring *kr, const char *name, const char *version,
				  time_t now, const char *const *parts, size_t n_parts);

/** The loaded part called name, or NULL. Borrowed from va. */
const art_verified_part *art_verified_part_get(const art_verified_artifact *va,
					       const char *name);

/** NULL-safe. */
void art_verified_artifact_free(art_verified_artifact *va);

/** Numbers about a store. */
typedef struct art_store_stats {
	uint64_t blobs;        /* stored blobs */
	uint64_t raw_bytes;    /* their raw size */
	uint64_t stored_bytes; /* their size in LMDB (headers included) */
	uint64_t artifacts;    /* name@version entries */
	uint64_t names;        /* distinct names */
	uint64_t dicts;        /* dictionaries kept */
	uint32_t dict_id;      /* current dictionary, 0 if none */
	uint64_t map_size;     /* LMDB map size */
	uint64_t map_used;     /* bytes of the map in use */
} art_store_stats;

/**
 * @return 0, AF_ECORRUPT or AF_EIO
 */
int art_store_stats_get(art_store_stats *out, const art_store *s);

#endif
