/*
 * art/release.h - releases and channels in the store (docs/releases.md).
 *
 * A release is a signed, numbered, expiring set of artifact pins
 * (name, version, manifest digest). Numbers grow by one per store. A
 * release pins exact manifests: a template v3 is never served with a module
 * from v2, and a name@version, once pinned, is immutable (a later release
 * may not pin it with another digest; the store refuses to rebuild it with
 * another manifest).
 *
 * A channel ("blue", "green", any [a-z][a-z0-9-]{0,62}) points at a
 * release through a channel record: {channel, seq, release, release_digest,
 * previous, action, threshold, required, time}, signed by release-manager
 * keys in one DSSE envelope. `required` is the number of distinct valid
 * release-manager signatures the record needs (the channel's threshold in
 * force when it was written); `threshold` is what the next change needs.
 * Writers enforce the rules (release numbers on a channel only grow except
 * by an explicit rollback; the threshold is met by distinct keys); readers
 * verify every signature against the keyring at their own `now`.
 *
 * Database layout (docs/releases.md §2):
 *   releases  "n/<20-digit number>"      release envelope (DSSE)
 *             "pin/<name>@<version>"     {"manifest_digest", "release"}
 *   channels  "head/<channel>"           current channel envelope
 *             "hist/<channel>/<20-digit seq>"  every record ever written
 *
 * Each write (create, promote, rollback, set-threshold) is one LMDB write
 * transaction that also appends its audit entry (art/audit.h); a refused
 * attempt changes nothing but appends a "refused" audit entry in its own
 * transaction. Readers take one snapshot per call and may run while another
 * process writes. Nothing here keeps global state.
 */
#ifndef ART_RELEASE_H
#define ART_RELEASE_H

#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ART_RELEASE_FORMAT "agentfactory-release/v1"
#define ART_RELEASE_PAYLOAD_TYPE "application/vnd.agentfactory.release.v1+json"
#define ART_CHANNEL_FORMAT "agentfactory-channel/v1"
#define ART_CHANNEL_PAYLOAD_TYPE "application/vnd.agentfactory.channel.v1+json"
/** At most this many artifacts in one release (the signed envelope's 64 KiB
 * cap allows about 400 in practice: AF_ETOOBIG says so). */
#define ART_RELEASE_MAX_ARTIFACTS 4096u
/** Lifetime of a release when the caller gives none. */
#define ART_RELEASE_DEFAULT_TTL ((time_t)7 * 86400)
/** Highest channel threshold (one envelope holds at most this many signatures). */
#define ART_CHANNEL_MAX_THRESHOLD 16u
/** Longest channel name. */
#define ART_CHANNEL_NAME_MAX 63u

/** One pinned artifact. */
typedef struct art_release_pin {
	char *name, *version;                              /* owned */
	char manifest_digest[ART_DIGEST_STR_LEN + 1];      /* "sha256:<hex>" */
} art_release_pin;

/** A release record. */
typedef struct art_release {
	uint64_t number;
	time_t created, expires;
	art_release_pin *pins;          /* owned; sorted by name, one per name */
	size_t n_pins;
	char digest[ART_DIGEST_STR_LEN + 1]; /* "sha256:" of the signed canonical record */
	char signer[ART_SHA256_HEX_LEN + 1]; /* the verified signer's key id, or (listings
						without a keyring) the first claimed one */
	bool verified;                  /* signature and expiry checked at the caller's now */
	int verify_rc;                  /* listings with a keyring: 0 or why it fails */
	char *verify_error;             /* owned; NULL when verify_rc is 0 */
} art_release;

/** A channel record. */
typedef struct art_channel {
	char name[ART_CHANNEL_NAME_MAX + 1];
	uint64_t seq;                   /* 1, 2, 3, ... per channel */
	uint64_t release;               /* 0: no release yet (a threshold was set first) */
	uint64_t previous;              /* the release before this record (0: none) */
	char action[16];                /* "promote", "rollback", "set-threshold" */
	unsigned threshold;             /* distinct signatures the next change needs */
	unsigned required;              /* distinct signatures this record needs */
	time_t time;                    /* when it was written (signer's clock) */
	char release_digest[ART_DIGEST_STR_LEN + 1]; /* "" when release is 0 */
	char (*signers)[ART_SHA256_HEX_LEN + 1];     /* owned; distinct key ids: verified
							ones, or (listings without a
							keyring) the claimed ones */
	size_t n_signers;
	bool verified;
	int verify_rc;
	char *verify_error;             /* owned; NULL when verify_rc is 0 */
} art_channel;

/** Reader options (a runtime's memory of what it already accepted). */
typedef struct art_release_resolve_opts {
	unsigned min_threshold; /* require at least this many distinct signatures
				   whatever the record says (0: the record's own) */
	uint64_t min_seq;       /* refuse a channel record older than this seq
				   (a replayed record); 0: any */
} art_release_resolve_opts;

/** Whether name is a valid channel name: [a-z][a-z0-9-]{0,62}. */
bool art_channel_name_valid(const char *name);

/* ---- writing ------------------------------------------------------------- */

/**
 * Create release N+1 (N = the highest release in the store, 0 if none)
 * pinning the given artifacts, signed by key.
 *
 * Refusals (audited as "refused", nothing else changes):
 *  - key is not a release-manager key of kr valid at now (AF_ENOTFOUND,
 *    AF_EREVOKED, AF_EEXPIRED, AF_EDENIED as art_keyring_lookup);
 *  - an artifact is missing (AF_ENOTFOUND) or does not verify (its builder
 *    signature, manifest and parts, at now: the store's verification error);
 *  - two versions of one name (AF_EINVAL), or a name@version that an earlier
 *    release pinned with another manifest digest (AF_EEXISTS);
 *  - expires not after now (AF_EINVAL).
 * @param[out] out     may be NULL; else the new release (caller owns)
 * @param[in]  refs    "name@version", or "name" for its latest version
 * @return 0, a refusal above, AF_ETOOBIG (too many artifacts to sign),
 *         AF_EDENIED (read-only store), or a store/crypto error
 */
int art_release_create(art_release **out, art_store *s, const art_keyring *kr,
		       const art_key *key, const char *const *refs, size_t n_refs,
		       time_t expires, time_t now);

/**
 * Point channel at release number, signed by keys (duplicates by key id
 * count once). Creates the channel (threshold 1) if it does not exist.
 *
 * Refusals (audited, nothing else changes):
 *  - a key is not a valid release-manager key of kr at now (its lookup error);
 *  - fewer distinct keys than the channel's threshold (AF_EDENIED);
 *  - the release does not exist (AF_ENOTFOUND), does not verify or has
 *    expired (AF_EEXPIRED);
 *  - number is not greater than the channel's current release (AF_EDENIED:
 *    versions on a channel only grow; going back is a rollback).
 * @param[out] out  may be NULL; else the new channel record (caller owns)
 * @return 0, a refusal, AF_EINVAL (bad channel name, no keys, a public
 *         key), AF_EDENIED (read-only store) or a store/crypto error
 */
int art_release_promote(art_channel **out, art_store *s, const art_keyring *kr,
			const art_key *const *keys, size_t n_keys, const char *channel,
			uint64_t number, time_t now);

/**
 * Roll channel back to release `to` (0: the highest release lower than the
 * current one that the channel pointed at before). Signed and refused like
 * art_release_promote, except that the target must be lower than the
 * current release (AF_EDENIED otherwise) and a channel without a release or
 * without an earlier one to return to is AF_ENOTFOUND.
 */
int art_release_rollback(art_channel **out, art_store *s, const art_keyring *kr,
			 const art_key *const *keys, size_t n_keys, const char *channel,
			 uint64_t to, time_t now);

/**
 * Set the number of distinct release-manager signatures that later changes
 * of channel need (1..ART_CHANNEL_MAX_THRESHOLD). The change itself needs the
 * current threshold (1 for a new channel, which is created with no release).
 * Refused (AF_EDENIED) when kr has fewer valid release-manager keys than
 * threshold (the channel could never change again), and as promote for the
 * keys and the current threshold.
 */
int art_release_set_threshold(art_channel **out, art_store *s, const art_keyring *kr,
			      const art_key *const *keys, size_t n_keys, const char *channel,
			      unsigned threshold, time_t now);

/* ---- reading ------------------------------------------------------------- */

/**
 * The reader API for the runtime: the release a channel points at, after
 * verifying, in one snapshot:
 *  1. the channel record's envelope: at least max(required, 1) distinct
 *     release-manager keys of kr, valid at now and not revoked, whose
 *     signatures verify (AF_EDENIED when too few, or the most telling
 *     failure of the others: AF_ESIGNATURE > AF_EREVOKED > AF_EEXPIRED >
 *     AF_EDENIED > AF_ENOTFOUND), and a well-formed record for this channel
 *     (AF_ECORRUPT, AF_ESIGNATURE);
 *  2. the release record: a valid release-manager signature at now, the
 *     digest the channel record names (AF_ESIGNATURE), its number, and
 *     now <= expires (AF_EEXPIRED: freeze protection).
 * @param[out] out  caller owns (art_release_free); the pinned digests
 * @return 0, the errors above, AF_ENOTFOUND (no such channel, or no release
 *         on it yet), AF_EINVAL (bad channel name) or a store error
 */
int art_release_channel_resolve(const art_store *s, const art_keyring *kr, const char *channel,
				time_t now, art_release **out);

/**
 * As art_release_channel_resolve, with options and the channel record.
 * @param[in]  opts         may be NULL; min_threshold raises the signatures
 *                          required (AF_EDENIED), min_seq refuses an older
 *                          record (AF_EDENIED "replayed")
 * @param[out] out_channel  may be NULL; else the verified record (caller owns)
 */
int art_release_channel_resolve_ex(const art_store *s, const art_keyring *kr,
				   const char *channel, time_t now,
				   const art_release_resolve_opts *opts, art_release **out,
				   art_channel **out_channel);

/**
 * Load one artifact of a release: art_store_load_verified_parts, then check
 * that the stored manifest is the pinned one (AF_ESIGNATURE otherwise).
 * @param[in] name  an agent the release pins (AF_ENOTFOUND otherwise)
 * @return 0 or the errors of art_store_load_verified_parts
 */
int art_release_load_artifact(art_verified_artifact **out, const art_store *s,
			      const art_keyring *kr, const art_release *r, const char *name,
			      time_t now, const char *const *parts, size_t n_parts);

/** The pin of name in r, or NULL. Borrowed from r. */
const art_release_pin *art_release_find(const art_release *r, const char *name);

/**
 * One release. With kr, verified at now (signature and expiry: on failure
 * the error is returned); without kr, as stored (verified is false).
 * @param[out] out  caller owns
 * @return 0, AF_ENOTFOUND, AF_ECORRUPT, a verification error or a store error
 */
int art_release_get(art_release **out, const art_store *s, const art_keyring *kr,
		    uint64_t number, time_t now);

/**
 * Every release, by number. With kr, each is verified at now and the result
 * goes into its verified / verify_rc / verify_error (one bad record does not
 * stop the listing); without kr nothing is verified.
 * @param[out] out, n  caller owns; free with art_release_list_free
 * @return 0, AF_ENOMEM or a store error
 */
int art_release_list(art_release ***out, size_t *n, const art_store *s, const art_keyring *kr,
		     time_t now);

/**
 * Every channel's current record, by name; verification as art_release_list
 * (the record and the release it points at, as the runtime would).
 */
int art_channel_list(art_channel ***out, size_t *n, const art_store *s, const art_keyring *kr,
		     time_t now);

/**
 * A channel's records, oldest first, as stored (not verified).
 * @return 0, AF_ENOTFOUND (no such channel), AF_EINVAL or a store error
 */
int art_channel_history(art_channel ***out, size_t *n, const art_store *s, const char *channel);

/** NULL-safe. */
void art_release_free(art_release *r);
/** NULL-safe. */
void art_channel_free(art_channel *c);
/** Frees the array and its records. NULL-safe. */
void art_release_list_free(art_release **list, size_t n);
/** Frees the array and its records. NULL-safe. */
void art_channel_list_free(art_channel **list, size_t n);

/* ---- moving records between stores (a registry push and pull) ---------- */

/**
 * The signed envelope of release `number` exactly as stored (not verified).
 * @param[out] out, len  caller owns out (NUL-terminated); free()
 * @return 0, AF_ENOTFOUND or a store error
 */
int art_release_envelope(char **out, size_t *len, const art_store *s, uint64_t number);

/**
 * The signed envelope of channel's current record exactly as stored (not
 * verified).
 * @param[out] out, len  caller owns out (NUL-terminated); free()
 * @return 0, AF_ENOTFOUND, AF_EINVAL (bad name) or a store error
 */
int art_channel_envelope(char **out, size_t *len, const art_store *s, const char *channel);

/**
 * Verify a release envelope received from elsewhere: a release-manager
 * signature of kr valid at now, a well-formed canonical record and, with
 * check_expiry, now <= expires (AF_EEXPIRED).
 * @param[out] out  caller owns; verified is true
 * @return 0, the errors of art_sig_verify_payload, AF_ECORRUPT, AF_EEXPIRED
 */
int art_release_verify_envelope(art_release **out, const art_keyring *kr, const char *env,
				size_t len, time_t now, bool check_expiry);

/**
 * Verify a channel envelope received from elsewhere for channel: at least
 * max(required, min_threshold) distinct valid release-manager signatures
 * (as art_release_channel_resolve) and a well-formed record signed for this
 * channel (AF_ESIGNATURE otherwise).
 * @param[out] out  caller owns
 */
int art_channel_verify_envelope(art_channel **out, const art_keyring *kr, const char *channel,
				const char *env, size_t len, time_t now, unsigned min_threshold);

/**
 * Queue into a store batch the signed release and/or channel records that
 * came from elsewhere (a registry pull): both are verified now (the release
 * without its expiry, the channel with min_threshold), and are written when
 * the batch commits, in its LMDB transaction, after its artifacts:
 *  - the release under its own number with its pins; every pinned
 *    name@version must then be in the store (or the batch) with the pinned
 *    manifest (AF_ENOTFOUND / AF_ESIGNATURE); a store that already has
 *    another release with that number refuses (AF_EEXISTS); the same one is
 *    kept as it is;
 *  - the channel record as the channel's head (and in its history) when it
 *    is newer than the store's head; an older record is a replay (AF_EDENIED,
 *    the store's head is the sequence floor), the same record is a no-op;
 *    the release it names must be in the store with its digest.
 * Any refusal at commit aborts the whole batch: the store is unchanged.
 * @param[in] release_env, channel_env  either may be NULL (not both); copied
 * @return 0, a verification error, AF_EINVAL or AF_ENOMEM
 */
int art_release_import(art_store_txn *txn, const art_keyring *kr, time_t now,
		       const char *release_env, size_t release_len, const char *channel_env,
		       size_t channel_len, unsigned min_threshold);

#endif
