/*
 * art/keyring.h - the trusted public keys, their roles, validity windows and
 * the revocation list.
 *
 * A keyring is a JSON file (format "agentfactory-keyring/v1", see
 * docs/signing.md), at most ART_KEYRING_MAX_BYTES. It is parsed with jansson,
 * never libyaml, so the runtime can link it. Loading is strict: anything
 * unexpected (unknown field or role, malformed time, an id that is not the
 * SHA-256 of its public key, a duplicate) refuses the whole file, naming the
 * file and the entry, because a half-understood trust root is worse than
 * none.
 *
 * Roles: a key is trusted for one role per entry. The same key may be trusted
 * for several roles only through several entries (one per role), each with
 * its own validity window; entries are unique by (id, role). One key per role
 * is the recommended practice (agentfactory keygen makes one).
 *
 * Revocation is by key id and covers every entry of that key, at any time:
 * a revoked key verifies nothing, whatever the signature claims about when it
 * was made (that claim comes from the signer). `at` is recorded for audit.
 *
 * Signed keyrings (format "agentfactory-keyring/v2", the TUF root idea):
 * the file is {"signed": {...content, version, expires, root_threshold},
 * "signatures": [...]}. Keys of role "root" sign it; it is valid when at
 * least root_threshold distinct unrevoked root keys of its own signed the
 * canonical JSON of "signed" (compact, keys sorted, DSSE PAE with payload
 * type ART_KEYRING_TYPE). A new version replaces one in force only when it
 * is newer (version grows) and also signed by the threshold of the root
 * keys of the version in force (art_keyring_check_successor), so a root is
 * rotated by the old root. Format v1 (unsigned) is still parsed, for
 * migration (agentfactory trust init), but never trusted by
 * art_keyring_load or the runtime. Any mutation drops the signatures.
 *
 * A keyring has no global state; a loaded keyring is read-only for lookups,
 * so many threads may look keys up in one keyring at once. Mutations
 * (add, revoke) need exclusive access. To pick up a rotated keyring file,
 * load it again and swap the pointer.
 */
#ifndef ART_KEYRING_H
#define ART_KEYRING_H

#include "art/keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define ART_KEYRING_FORMAT "agentfactory-keyring/v1"
/** Format of a signed keyring's "signed" object. */
#define ART_KEYRING_FORMAT_V2 "agentfactory-keyring/v2"
/** DSSE payload type under which root keys sign a keyring. */
#define ART_KEYRING_TYPE "application/vnd.agentfactory.keyring.v2+json"
/** At most this many signatures on a keyring, and the largest root threshold. */
#define ART_KEYRING_MAX_SIGNATURES 16u
/** A keyring file larger than this is refused (AF_ETOOBIG). */
#define ART_KEYRING_MAX_BYTES (1024u * 1024u)

#define ART_ROLE_TEMPLATE_SIGNER "template-signer"
#define ART_ROLE_BUILDER "builder"
#define ART_ROLE_RELEASE_MANAGER "release-manager"
/** Keys that sign the keyring itself. */
#define ART_ROLE_ROOT "root"

typedef struct art_keyring art_keyring;

/** One trusted key for one role. All pointers are borrowed from the keyring. */
typedef struct art_keyring_entry {
	const char *id;        /* 64 lower-case hex digits */
	const char *role;      /* one of the ART_ROLE_* names */
	const char *algorithm; /* ART_KEY_ALGORITHM */
	time_t not_before;     /* first second the key is valid */
	time_t not_after;      /* last second the key is valid; 0 = no expiry */
	time_t added;          /* when it was added; 0 = unknown */
	const art_key *key;    /* the public key */
} art_keyring_entry;

/** One revoked key id. Pointers are borrowed from the keyring. */
typedef struct art_keyring_revocation {
	const char *id;
	time_t at;
	const char *reason;
} art_keyring_revocation;

/** Whether role is one of "template-signer", "builder", "release-manager", "root". */
bool art_keyring_role_valid(const char *role);

/**
 * An empty keyring.
 * @param[out] out  caller owns; free with art_keyring_free
 * @return 0 or AF_ENOMEM
 */
int art_keyring_new(art_keyring **out);

/**
 * Read and strictly parse a keyring file that can be trusted now: signed
 * (art_keyring_check at art_time_now()). Every command that uses keys to
 * verify loads keyrings this way.
 * @param[out] out   caller owns; free with art_keyring_free. NULL on error.
 * @param[in]  path  the file; every message names it (and the entry)
 * @return 0, AF_ENOTFOUND (no such file), AF_EIO, AF_ETOOBIG (over
 *         ART_KEYRING_MAX_BYTES), AF_ECORRUPT (bad JSON, unknown field or
 *         role, malformed time, id not matching its key, duplicate entry,
 *         unusable key, fewer root keys than the threshold), AF_EVERSION
 *         (another keyring format version), AF_ESIGNATURE (unsigned v1
 *         keyring, or signatures under the root threshold: edited after
 *         signing), AF_EEXPIRED (past its expiry) or AF_ENOMEM
 */
int art_keyring_load(art_keyring **out, const char *path);

/**
 * As art_keyring_load, but an unsigned (v1) or expired keyring is returned
 * too (a signed one must still meet its own root threshold): for the tools
 * that edit, renew or migrate keyrings. Never use it to verify anything.
 */
int art_keyring_load_unchecked(art_keyring **out, const char *path);

/**
 * Parse from memory, as art_keyring_load_unchecked (a v2 keyring's own
 * signatures are verified, v1 is accepted; see art_keyring_check).
 * @param[in] name  used in messages (e.g. the file name); borrowed
 */
int art_keyring_parse(art_keyring **out, const char *data, size_t len, const char *name);

/**
 * Whether kr can be trusted at now: signed (format v2), at least its root
 * threshold of its own unrevoked root keys signed it, and now <= expires.
 * @param[in] name  for messages
 * @return 0, AF_ESIGNATURE (unsigned, or under the threshold), AF_ECORRUPT
 *         (fewer root keys than the threshold), AF_EEXPIRED or AF_ENOMEM /
 *         AF_ECRYPTO
 */
int art_keyring_check(const art_keyring *kr, const char *name, time_t now);

/**
 * Whether next may replace cur (the keyring in force): next passes
 * art_keyring_check at now, its version is greater than cur's, and at least
 * cur's root threshold of cur's unrevoked root keys signed next.
 * @return 0, the errors of art_keyring_check, AF_EVERSION (not newer: a
 *         rollback or replay) or AF_ESIGNATURE (not signed by the current
 *         roots)
 */
int art_keyring_check_successor(const art_keyring *cur, const art_keyring *next,
				const char *name, time_t now);

/**
 * Sign kr as version `version`, valid until `expires`, with root private
 * keys (each signs once). Replaces any signatures. Does not check that the
 * keys are roots of kr or meet a threshold: art_keyring_check and
 * art_keyring_check_successor say whether the result will be trusted.
 * @return 0, AF_EINVAL (version 0, no expiry, 0 or over
 *         ART_KEYRING_MAX_SIGNATURES keys, a public key, a key twice),
 *         AF_ENOMEM or AF_ECRYPTO
 */
int art_keyring_sign(art_keyring *kr, uint64_t version, time_t expires,
		     const art_key *const *keys, size_t nkeys);

/** Whether kr carries signatures (a v2 keyring not modified since). */
bool art_keyring_is_signed(const art_keyring *kr);

/** The signed version (0 for a keyring never signed). */
uint64_t art_keyring_version(const art_keyring *kr);

/** The signed expiry (0 for a keyring never signed). */
time_t art_keyring_expires(const art_keyring *kr);

/** How many root signatures the keyring needs (1 unless set). */
unsigned art_keyring_root_threshold(const art_keyring *kr);

/**
 * Set how many distinct root keys must sign (this and the next version).
 * Drops the signatures.
 * @return 0 or AF_EINVAL (0 or over ART_KEYRING_MAX_SIGNATURES)
 */
int art_keyring_set_root_threshold(art_keyring *kr, unsigned threshold);

/**
 * The keyring as JSON text (2-space indented, ends with a newline), the
 * exact bytes art_keyring_save writes: the signed document (v2) when kr is
 * signed, else the unsigned v1 form (which art_keyring_load refuses).
 * @param[out] out  caller owns; free()
 * @return 0, AF_ETOOBIG (would exceed ART_KEYRING_MAX_BYTES) or AF_ENOMEM
 */
int art_keyring_to_json(char **out, const art_keyring *kr);

/**
 * Write the keyring atomically (temporary file + rename), mode 0644.
 * @return 0, AF_ETOOBIG, AF_EIO or AF_ENOMEM
 */
int art_keyring_save(const art_keyring *kr, const char *path);

/**
 * Trust a key for a role. Only the public half is stored (a private key may
 * be passed; its private half is not copied).
 * @param[in] not_before  first valid second
 * @param[in] not_after   last valid second, or 0 for no expiry
 * @return 0, AF_EINVAL (unknown role; not_after not after not_before; a
 *         time outside 1970..9999), AF_EEXISTS (already trusted for that
 *         role), AF_EREVOKED (the key is revoked: it can never be trusted
 *         again), AF_ENOMEM or AF_ECRYPTO
 */
int art_keyring_add(art_keyring *kr, const art_key *key, const char *role,
		    time_t not_before, time_t not_after);

/**
 * Revoke a key (every role it has).
 * @param[in] reason  free text, may be NULL ("unspecified")
 * @return 0, AF_EINVAL (keyid is not 64 hex digits; at outside 1970..9999),
 *         AF_ENOTFOUND (no such key in the keyring), AF_EEXISTS (already
 *         revoked) or AF_ENOMEM
 */
int art_keyring_revoke(art_keyring *kr, const char *keyid, time_t at, const char *reason);

/**
 * Find the key that may act in role at time now.
 * @param[out] out  borrowed from kr; valid until kr is modified or freed.
 *                  NULL on error.
 * @return 0, AF_EINVAL (NULL keyid, or role is not a known role), or
 *         (checked in this order, the message says what to do):
 *         AF_ENOTFOUND  no key with this id in the keyring
 *         AF_EREVOKED   the key is revoked
 *         AF_EDENIED    the key is trusted, but not for role
 *         AF_EEXPIRED   now < not_before, or now > not_after
 */
int art_keyring_lookup(const art_key **out, const art_keyring *kr, const char *keyid,
		       const char *role, time_t now);

/** Number of entries (key, role pairs). */
size_t art_keyring_count(const art_keyring *kr);

/** Entry i (0 <= i < count), in file order; borrowed until kr is modified or freed. */
const art_keyring_entry *art_keyring_get(const art_keyring *kr, size_t i);

/** Number of revoked key ids. */
size_t art_keyring_revoked_count(const art_keyring *kr);

/** Revocation i, in file order; borrowed until kr is modified or freed. */
const art_keyring_revocation *art_keyring_revoked_get(const art_keyring *kr, size_t i);

/** The revocation of keyid, or NULL if it is not revoked. Borrowed as above. */
const art_keyring_revocation *art_keyring_find_revocation(const art_keyring *kr,
							  const char *keyid);

/** Free a keyring and its keys. NULL-safe. */
void art_keyring_free(art_keyring *kr);

#endif
