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
/** A keyring file larger than this is refused (AF_ETOOBIG). */
#define ART_KEYRING_MAX_BYTES (1024u * 1024u)

#define ART_ROLE_TEMPLATE_SIGNER "template-signer"
#define ART_ROLE_BUILDER "builder"
#define ART_ROLE_RELEASE_MANAGER "release-manager"

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

/** Whether role is one of "template-signer", "builder", "release-manager". */
bool art_keyring_role_valid(const char *role);

/**
 * An empty keyring.
 * @param[out] out  caller owns; free with art_keyring_free
 * @return 0 or AF_ENOMEM
 */
int art_keyring_new(art_keyring **out);

/**
 * Read and strictly parse a keyring file.
 * @param[out] out   caller owns; free with art_keyring_free. NULL on error.
 * @param[in]  path  the file; every message names it (and the entry)
 * @return 0, AF_ENOTFOUND (no such file), AF_EIO, AF_ETOOBIG (over
 *         ART_KEYRING_MAX_BYTES), AF_ECORRUPT (bad JSON, unknown field or
 *         role, malformed time, id not matching its key, duplicate entry,
 *         unusable key), AF_EVERSION (another keyring format version) or
 *         AF_ENOMEM
 */
int art_keyring_load(art_keyring **out, const char *path);

/**
 * As art_keyring_load, from memory.
 * @param[in] name  used in messages (e.g. the file name); borrowed
 */
int art_keyring_parse(art_keyring **out, const char *data, size_t len, const char *name);

/**
 * The keyring as JSON text (2-space indented, ends with a newline), the
 * exact bytes art_keyring_save writes.
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
