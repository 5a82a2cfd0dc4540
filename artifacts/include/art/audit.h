/*
 * art/audit.h - the store's hash-chained audit log (docs/releases.md §5).
 *
 * Every pipeline and release action (build, release, promote, rollback,
 * threshold changes, check and trust changes when a store is given) and
 * every refused attempt is appended to the `audit` database of the store as
 * one entry:
 *
 *     {"action", "actor", "details", "hash", "outcome", "prev_hash", "seq",
 *      "subject", "time"}
 *
 * plus "signatures" [{keyid, sig}] when the actors' keys signed it (RSA-PSS
 * over the DSSE PAE of ART_AUDIT_ENTRY_TYPE and the canonical JSON of the
 * entry without hash and signatures), as
 * canonical JSON (compact, keys sorted), keyed by its sequence number
 * (20 decimal digits, so key order is numeric order). `hash` is the
 * SHA-256 of the canonical JSON of the entry without `hash`; `prev_hash` is
 * the previous entry's `hash` (64 zeros for entry 1). An action's entry is
 * written in the same LMDB write transaction as the action itself, so the
 * log and the store never disagree, even after a kill -9; a refused attempt
 * gets its own transaction holding only its entry.
 *
 * art_audit_verify recomputes the chain: an edited, deleted, inserted or
 * reordered entry breaks it. Someone who can write the store can also
 * rewrite the whole chain from the edit onwards (there is no secret in a
 * hash chain): a signed checkpoint (art_audit_checkpoint) of the head, kept
 * outside the store, detects that and truncation.
 *
 * Reads use their own snapshot and may run while another process writes.
 */
#ifndef ART_AUDIT_H
#define ART_AUDIT_H

#include "art/keyring.h"
#include "art/keys.h"
#include "art/util.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct art_store art_store;

/** Payload type of a signed audit checkpoint. */
#define ART_AUDIT_CHECKPOINT_TYPE "application/vnd.agentfactory.audit-checkpoint.v1+json"
/** The checkpoint payload's format field. */
#define ART_AUDIT_CHECKPOINT_FORMAT "agentfactory-audit-checkpoint/v1"
/** The role whose keys sign checkpoints. */
#define ART_AUDIT_CHECKPOINT_ROLE ART_ROLE_RELEASE_MANAGER
/** Largest stored entry (an entry over it is refused when appended). */
#define ART_AUDIT_ENTRY_MAX (32u * 1024u)
/** Longest action, actor or subject. */
#define ART_AUDIT_FIELD_MAX 1024u

#define ART_AUDIT_OK "ok"
#define ART_AUDIT_REFUSED "refused"

/** Payload type under which actors sign their audit entries. */
#define ART_AUDIT_ENTRY_TYPE "application/vnd.agentfactory.audit-entry.v1+json"
/** At most this many signatures on one entry. */
#define ART_AUDIT_MAX_SIGNERS 16u

/** What to append. Strings and keys are borrowed for the call. */
typedef struct art_audit_event {
	const char *action;       /* "build", "release", "promote", ...: [a-z][a-z0-9.-]* */
	const char *actor;        /* key id(s), comma-separated, or "unsigned"; NULL = "unsigned" */
	const char *subject;      /* what it acted on ("channel/blue"); NULL = "" */
	const char *outcome;      /* ART_AUDIT_OK or ART_AUDIT_REFUSED; NULL = ok */
	const char *details_json; /* a JSON object as text, or NULL for {} */
	/* The actors' private keys: each signs the entry (its position, seq and
	 * prev_hash included), so a rewritten history cannot carry their
	 * signatures. 0..ART_AUDIT_MAX_SIGNERS; none for unsigned actions. */
	const art_key *const *signers;
	size_t n_signers;
} art_audit_event;

/** One entry as stored. Strings are owned by the entry list. */
typedef struct art_audit_entry {
	uint64_t seq;
	time_t time;
	char *action, *actor, *subject, *outcome;
	char *details;                          /* compact JSON object text */
	char prev_hash[ART_SHA256_HEX_LEN + 1];
	char hash[ART_SHA256_HEX_LEN + 1];
} art_audit_entry;

/** The result of a chain verification. */
typedef struct art_audit_report {
	uint64_t entries;                         /* entries read */
	uint64_t head_seq;                        /* 0 for an empty log */
	char head_hash[ART_SHA256_HEX_LEN + 1];   /* 64 zeros for an empty log */
	uint64_t bad_seq;                         /* first broken entry (key order), 0 if none */
	uint64_t checkpoint_seq;                  /* set by art_audit_verify_checkpoint */
} art_audit_report;

/**
 * Append one entry in its own write transaction (for actions that write
 * nothing else to the store, and for refused attempts).
 * @param[out] out_seq  may be NULL; the entry's sequence number
 * @param[in]  now      the entry's time
 * @return 0, AF_EINVAL (an action that is not [a-z][a-z0-9.-]*, a field over
 *         ART_AUDIT_FIELD_MAX, details that are not a JSON object, an unknown
 *         outcome), AF_ETOOBIG (entry over ART_AUDIT_ENTRY_MAX), AF_EDENIED
 *         (read-only store), AF_ECORRUPT (the head entry is unreadable) or an
 *         LMDB error
 */
int art_audit_append(uint64_t *out_seq, art_store *s, const art_audit_event *ev, time_t now);

/**
 * Read entries in sequence order, as stored (NOT a verification: an entry
 * that does not parse is returned with action "?" and details holding the
 * raw text's first bytes).
 * @param[out] out, n    caller owns; free with art_audit_list_free
 * @param[in]  after     only entries with seq > after
 * @param[in]  max       at most this many (0: all)
 * @return 0, AF_ENOMEM or an LMDB error
 */
int art_audit_list(art_audit_entry **out, size_t *n, const art_store *s, uint64_t after,
		   size_t max);

/** NULL-safe. */
void art_audit_list_free(art_audit_entry *entries, size_t n);

/**
 * Recompute the whole chain in one snapshot: each key is its entry's seq,
 * seqs run 1, 2, 3, ... without a gap, each entry is canonical and hashes to
 * its `hash`, each `prev_hash` is the previous `hash`.
 * @param[out] out  filled (also on AF_ECORRUPT: entries read, bad_seq)
 * @return 0, AF_ECORRUPT (the message names the entry and what is wrong),
 *         AF_ENOMEM or an LMDB error
 */
int art_audit_verify(art_audit_report *out, const art_store *s);

/**
 * art_audit_verify, plus the actors' signatures against kr: every signature
 * whose key kr holds (any role, any time: the entry may be older than a
 * rotation or a revocation) must verify, and every successful ("ok") entry
 * whose actor is key ids must carry a valid signature of each of them that
 * kr holds (an actor only another keyring knows cannot be checked here). A
 * history rewritten with recomputed hashes fails here, because the rewriter
 * does not hold the actors' keys.
 * @return as art_audit_verify; AF_ECORRUPT names the entry and the key
 */
int art_audit_verify_signed(art_audit_report *out, const art_store *s, const art_keyring *kr);

/**
 * The log's head: its last seq and hash (0 and 64 zeros when empty). Not a
 * verification (art_audit_verify is).
 * @return 0, AF_ECORRUPT or an LMDB error
 */
int art_audit_head(uint64_t *seq, char hash[ART_SHA256_HEX_LEN + 1], const art_store *s);

/**
 * Verify the chain, then sign its head: a DSSE envelope (payload type
 * ART_AUDIT_CHECKPOINT_TYPE) over
 * {"format","head_hash","seq","store","time"} (canonical JSON).
 * Keep the file outside the store (another machine, a bucket, a ticket).
 * @param[out] out_envelope  caller owns; free(). Ends with a newline.
 * @param[in]  key           a private key (trusted as release-manager by
 *                           whoever verifies the checkpoint)
 * @return 0, the errors of art_audit_verify (a broken chain is not
 *         checkpointed), AF_EINVAL (public key), AF_ECRYPTO or AF_ENOMEM
 */
int art_audit_checkpoint(char **out_envelope, const art_store *s, const art_key *key,
			 time_t now);

/**
 * Verify the chain and a checkpoint against it: the checkpoint must be
 * signed by a release-manager, builder or root key of kr that was valid at the checkpoint's
 * own time and is not revoked, that time must not be in the future (more
 * than 5 minutes after now), and the log must still hold entry `seq` with
 * hash `head_hash` (a shorter log was truncated; another hash means the
 * chain was rewritten).
 * @param[out] out  filled as by art_audit_verify, plus checkpoint_seq
 * @return 0, the errors of art_audit_verify, AF_ESIGNATURE / AF_EREVOKED /
 *         AF_EEXPIRED / AF_EDENIED / AF_ENOTFOUND / AF_ECORRUPT (the
 *         checkpoint itself), AF_ECORRUPT "truncated" or "rewritten"
 */
int art_audit_verify_checkpoint(art_audit_report *out, const art_store *s,
				const art_keyring *kr, const char *envelope, size_t envelope_len,
				time_t now);

/**
 * Write a checkpoint of the log's head, signed by key, into dir (created
 * 0700 if missing) as <seq, 20 digits>.json and latest.json (both atomic),
 * so that every signed action leaves a checkpoint outside the store without
 * anyone having to remember it.
 * @param[out] out_seq  may be NULL; the seq checkpointed
 * @return 0, the errors of art_audit_checkpoint, AF_EIO
 */
int art_audit_checkpoint_to_dir(uint64_t *out_seq, const art_store *s, const art_key *key,
				const char *dir, time_t now);

#endif
