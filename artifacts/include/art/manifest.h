/*
 * art/manifest.h - build manifests: what one agent artifact is made of.
 *
 * A manifest names an agent build (name, version), says what it was built
 * from (resolved-template digest, git commit, policy digest, toolchain id)
 * and for what (target triple, native compatibility id, guest ABI version),
 * lists the module's imports, exports and granted capabilities, and binds
 * every part (the .wasm, the native .so per compatibility id, the generated
 * C, the SLSA provenance) by SHA-256 digest and size. One builder signature
 * over the manifest's canonical bytes therefore covers every part.
 *
 * The document is JSON, format "agentfactory-manifest/v1" (docs/store.md).
 * Its canonical bytes are jansson's JSON_COMPACT | JSON_SORT_KEYS output of
 * the struct below, with imports sorted by (module, name), exports by name,
 * capabilities, hosts and parts by name. Nothing in a manifest or in the provenance
 * depends on the clock or the machine, so two builds of the same inputs give
 * byte-identical manifests and digests.
 *
 * Parsing is strict: at most ART_MANIFEST_MAX bytes, no duplicate or unknown
 * fields, every field typed and range-checked; another format version is
 * AF_EVERSION, anything else wrong is AF_ECORRUPT with a message that names
 * the field.
 *
 * A manifest is a plain value: no global state, safe to read from many
 * threads, mutated only by the art_manifest_add_* calls.
 */
#ifndef ART_MANIFEST_H
#define ART_MANIFEST_H

#include "art/keyring.h"
#include "art/sig.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ART_MANIFEST_FORMAT "agentfactory-manifest/v1"
/** DSSE payload type of the builder signature over a manifest. */
#define ART_MANIFEST_PAYLOAD_TYPE "application/vnd.agentfactory.manifest.v1+json"
/** A manifest larger than this is refused before parsing (AF_ETOOBIG). */
#define ART_MANIFEST_MAX (1024u * 1024u)
/** The largest part a manifest may describe (and a store may hold). */
#define ART_PART_MAX_SIZE (256u * 1024u * 1024u)

/* Media types of the parts (also the OCI layer media types of a bundle). */
#define ART_MEDIA_WASM "application/vnd.agentfactory.wasm.v1"
#define ART_MEDIA_NATIVE "application/vnd.agentfactory.native.v1"
#define ART_MEDIA_SOURCE "application/vnd.agentfactory.source.v1+c"
#define ART_MEDIA_PROVENANCE "application/vnd.in-toto+json"
/** CycloneDX JSON (the SBOM part). */
#define ART_MEDIA_SBOM "application/vnd.cyclonedx+json"

/* Part names. Native parts are "native/<16 hex of sha256(compat id)>". */
#define ART_PART_WASM "wasm"
#define ART_PART_SOURCE "source"
#define ART_PART_PROVENANCE "provenance"
#define ART_PART_SBOM "sbom"
#define ART_PART_NATIVE_PREFIX "native/"
/** Room for any part name, including the NUL. */
#define ART_PART_NAME_MAX 64u

/** "sha256:" + 64 hex digits. */
#define ART_DIGEST_PREFIX "sha256:"
#define ART_DIGEST_STR_LEN 71u

/* SLSA provenance constants. */
#define ART_SLSA_PREDICATE_TYPE "https://slsa.dev/provenance/v1"
#define ART_SLSA_BUILD_TYPE "https://agentfactory.dev/build/v1"

/* Caps enforced by parse and by the add/new calls. */
#define ART_MANIFEST_MAX_IMPORTS 4096u
#define ART_MANIFEST_MAX_EXPORTS 4096u
#define ART_MANIFEST_MAX_CAPABILITIES 256u
#define ART_MANIFEST_MAX_PARTS 64u
#define ART_MANIFEST_MAX_HOSTS 256u
/** At most this many templates and components in a provenance or SBOM. */
#define ART_PROVENANCE_MAX_FILES 256u

/** One module import (wasm import section entry). */
typedef struct art_manifest_import {
	char *module; /* e.g. "af", "wasi_snapshot_preview1" */
	char *name;   /* e.g. "llm_chat" */
	char *kind;   /* "func", "table", "memory", "global" or "tag" */
} art_manifest_import;

/** One module export. */
typedef struct art_manifest_export {
	char *name;
	char *kind;   /* as art_manifest_import.kind */
} art_manifest_export;

/** One part: bytes kept in the store under their digest. */
typedef struct art_manifest_part {
	char *name;       /* "wasm", "source", "provenance", "native/<16 hex>", ... */
	char *media_type; /* ART_MEDIA_* for the known parts */
	char *compat_id;  /* native parts only: the compatibility id; else NULL */
	char digest[ART_DIGEST_STR_LEN + 1]; /* "sha256:<hex of the raw bytes>" */
	uint64_t size;    /* raw size in bytes */
} art_manifest_part;

/** A manifest. Every pointer is owned by the manifest. */
typedef struct art_manifest {
	char *name;                     /* ^[a-z][a-z0-9-]{0,62}$ */
	char *version;                  /* semantic version */
	char *resolved_template_digest; /* "sha256:<hex>" */
	char *git_commit;               /* 40 or 64 lower-case hex */
	char *policy_digest;            /* "sha256:<hex>" */
	char *toolchain_id;
	char *native_compat_id;         /* compat id of this build's native part */
	char *target_triple;            /* e.g. "x86_64-linux-gnu" */
	uint32_t guest_abi_version;     /* >= 1 */
	art_manifest_import *imports;   /* sorted by (module, name), unique */
	size_t n_imports;
	art_manifest_export *exports;   /* sorted by name, unique */
	size_t n_exports;
	char **capabilities;            /* sorted, unique */
	size_t n_capabilities;
	art_manifest_part *parts;       /* sorted by name, unique */
	size_t n_parts;
	/* Optional (absent from the JSON when empty): the hosts the policy let
	 * this agent reach with http_fetch, recorded at build time so that the
	 * runtime enforces them without reading the policy. Lower-case, sorted,
	 * unique; each one art_manifest_host_valid. */
	char **hosts;
	size_t n_hosts;
} art_manifest;

/** What a build knows about an agent before its parts are stored. Borrowed. */
typedef struct art_manifest_info {
	const char *name, *version;
	const char *resolved_template_digest; /* "sha256:<hex>" */
	const char *git_commit;
	const char *policy_digest;            /* "sha256:<hex>" */
	const char *toolchain_id;
	const char *native_compat_id;
	const char *target_triple;
	uint32_t guest_abi_version;
	const art_manifest_import *imports;   /* any order; copied and sorted */
	size_t n_imports;
	const art_manifest_export *exports;   /* any order; copied and sorted */
	size_t n_exports;
	const char *const *capabilities;      /* any order; copied and sorted */
	size_t n_capabilities;
	const char *const *hosts;             /* http_fetch allow-list; any order; copied and
						 sorted; 0 entries = the field is left out */
	size_t n_hosts;
} art_manifest_info;

/** One source file a build read (a template of the resolved chain). Borrowed. */
typedef struct art_provenance_file {
	const char *path;       /* repository-relative, e.g. "templates/tester.yaml" */
	const char *sha256_hex; /* 64 lower-case hex of the file bytes */
	const char *git_blob;   /* 40 lower-case hex git blob id, or NULL */
} art_provenance_file;

/** One component of an SBOM (CycloneDX 1.5 component). Borrowed. */
typedef struct art_sbom_component {
	const char *type;        /* CycloneDX type: "library", "application", "file", ... */
	const char *name;        /* required */
	const char *version;     /* may be NULL */
	const char *purl;        /* package URL, may be NULL (also its provenance uri) */
	const char *sha256_hex;  /* 64 hex, may be NULL */
	const char *description; /* may be NULL */
} art_sbom_component;

/** The provenance facts that are not in the manifest. Borrowed. */
typedef struct art_provenance_info {
	const char *repo;       /* canonical source URI (the remote URL, never a local path) */
	const char *rev;        /* the revision as requested (branch, tag, sha) */
	const char *builder_id; /* runDetails.builder.id */
} art_provenance_info;

/**
 * More provenance facts, all optional (zero = absent). Borrowed.
 * Everything but the last three fields goes into the reproducible statement
 * (the "provenance" part) and the SBOM; invocation_id, started_on and
 * finished_on go only into the signed attestation (art/attest.h), which is
 * stored detached.
 */
typedef struct art_provenance_extra {
	const char *template_path;              /* externalParameters.templatePath */
	const art_provenance_file *templates;   /* the template and its ancestors */
	size_t n_templates;
	const art_sbom_component *components;   /* toolchain and libraries (SBOM too) */
	size_t n_components;
	const char *invocation_id;              /* e.g. the CI job URL; NULL = none */
	time_t started_on, finished_on;         /* 0 = absent */
} art_provenance_extra;

/**
 * A new manifest with no parts yet.
 * @param[out] out   caller owns; free with art_manifest_free. NULL on error.
 * @param[in]  info  every string is checked and copied (see docs/store.md for
 *                   the syntax of each field); lists are sorted
 * @return 0, AF_EINVAL (a missing or malformed field, a duplicate import,
 *         export or capability, a list over its cap; the message names the
 *         field) or AF_ENOMEM
 */
int art_manifest_new(art_manifest **out, const art_manifest_info *info);

/**
 * Add a part.
 * @param[in] name        "wasm", "source", "provenance", or another name of
 *                        [a-z0-9._/-] (1..63 bytes); native parts go through
 *                        art_manifest_add_native
 * @param[in] media_type  the part's media type (the fixed ART_MEDIA_* one for
 *                        the known names)
 * @param[in] digest_hex  64 lower-case hex digits: SHA-256 of the raw bytes
 * @param[in] size        raw size, at most ART_PART_MAX_SIZE
 * @return 0, AF_EINVAL (m or name NULL; bad name, media type, digest or size), AF_EEXISTS
 *         (a part with this name exists), AF_ETOOBIG (over
 *         ART_MANIFEST_MAX_PARTS) or AF_ENOMEM
 */
int art_manifest_add_part(art_manifest *m, const char *name, const char *media_type,
			  const char *digest_hex, uint64_t size);

/**
 * Add a native part for a compatibility id (named "native/<16 hex>").
 * Same errors as art_manifest_add_part; AF_EINVAL for a bad compat_id.
 */
int art_manifest_add_native(art_manifest *m, const char *compat_id, const char *digest_hex,
			    uint64_t size);

/**
 * The part name used for the native code of compat_id:
 * "native/" + the first 16 hex digits of sha256(compat_id).
 */
void art_manifest_native_part_name(char out[ART_PART_NAME_MAX], const char *compat_id);

/** The part called name, or NULL. Borrowed from m. */
const art_manifest_part *art_manifest_part_get(const art_manifest *m, const char *name);

/**
 * The native part for compat_id.
 * @param[out] out  borrowed from m; NULL on error
 * @return 0, or AF_EVERSION when the manifest has no native code for
 *         compat_id (the message names the compat id it was built for)
 */
int art_manifest_native_for(const art_manifest_part **out, const art_manifest *m,
			    const char *compat_id);

/**
 * Check that m is complete and well-formed: every field valid, lists sorted
 * and unique, parts "wasm", "source", "provenance" and the native part of
 * native_compat_id present with their media types.
 * @return 0, or AF_ECORRUPT naming the first bad field
 */
int art_manifest_validate(const art_manifest *m);

/**
 * The canonical bytes (JSON_COMPACT | JSON_SORT_KEYS, no trailing newline).
 * Validates first.
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @return 0, AF_ECORRUPT (see art_manifest_validate), AF_ETOOBIG (over
 *         ART_MANIFEST_MAX) or AF_ENOMEM
 */
int art_manifest_serialize(char **out, size_t *out_len, const art_manifest *m);

/**
 * Parse a manifest strictly (see the top of this file). The bytes need not
 * be canonical; art_manifest_verify_signed insists that they are.
 * @param[out] out  caller owns; free with art_manifest_free. NULL on error.
 * @return 0, AF_ETOOBIG (over ART_MANIFEST_MAX), AF_EVERSION (format is
 *         another "agentfactory-manifest/..." version), AF_ECORRUPT (bad
 *         JSON, duplicate/unknown/missing/mistyped field; the message names
 *         the field) or AF_ENOMEM
 */
int art_manifest_parse(art_manifest **out, const void *data, size_t len);

/** "sha256:<hex>" of bytes into out. */
void art_manifest_digest(char out[ART_DIGEST_STR_LEN + 1], const void *data, size_t len);

/**
 * The SLSA v1 provenance of a build (an in-toto Statement v1 whose subjects
 * are the manifest's parts but "provenance" and "sbom": the wasm, native and
 * source parts), canonical JSON. docs/provenance.md shows every field.
 * Needs those parts already added; add the result with
 * art_manifest_add_part(m, ART_PART_PROVENANCE, ART_MEDIA_PROVENANCE, ...).
 * Contains no time and no host name: reproducible.
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @return 0, AF_EINVAL (missing part, empty repo/rev/builder_id, a malformed
 *         template or component) or AF_ENOMEM
 */
int art_manifest_provenance(char **out, size_t *out_len, const art_manifest *m,
			    const art_provenance_info *prov);

/** As art_manifest_provenance, with the optional facts of extra (may be NULL). */
int art_manifest_provenance_ex(char **out, size_t *out_len, const art_manifest *m,
			       const art_provenance_info *prov, const art_provenance_extra *extra);

/**
 * Verify a stored or received (manifest bytes, envelope) pair:
 *  1. the envelope verifies for ART_MANIFEST_PAYLOAD_TYPE and role builder at
 *     now (art_sig_verify_payload; its errors pass through);
 *  2. the signed payload is byte-identical to data   else AF_ESIGNATURE;
 *  3. data parses (art_manifest_parse errors) and is canonical (re-serializes
 *     to the same bytes)                              else AF_ECORRUPT.
 * Part bytes are the caller's to check (art_manifest_check_part).
 * @param[out] out       caller owns; the verified manifest. NULL on error.
 * @param[out] info_out  may be NULL; the signer on success
 * @return 0 or an error as above; the message says what failed
 */
int art_manifest_verify_signed(art_manifest **out, art_sig_info *info_out,
			       const art_keyring *kr, const void *data, size_t len,
			       const char *envelope, size_t envelope_len, time_t now);

/**
 * Check a part's bytes against the manifest's size and digest.
 * @return 0, or AF_ECORRUPT naming the part ("size 10 != 12", "digest ...")
 */
int art_manifest_check_part(const art_manifest_part *part, const void *data, size_t len);

/**
 * Whether s is a valid agent name (^[a-z][a-z0-9-]{0,62}$).
 */
bool art_manifest_name_valid(const char *s);

/**
 * Whether s is a valid entry of a manifest's hosts list, in canonical form:
 * a lower-case DNS name without a trailing dot (labels of [a-z0-9-], 1..63
 * bytes, not starting or ending with '-'; at most 253 bytes), "*." followed
 * by such a name, a dotted-quad IPv4 address without leading zeros, or an
 * IPv6 address in brackets ([0-9a-f:.], at most 45 characters inside).
 */
bool art_manifest_host_valid(const char *s);

/** Whether s is a strict semantic version (semver.org 2.0.0), at most 128 bytes. */
bool art_manifest_version_valid(const char *s);

/**
 * Compare two valid semantic versions by semver precedence (build metadata
 * ignored). An invalid version sorts below every valid one.
 * @return <0, 0, >0
 */
int art_manifest_version_cmp(const char *a, const char *b);

/** Free a manifest. NULL-safe. */
void art_manifest_free(art_manifest *m);

#endif
