/*
 * audit_internal.h - what audit_record.c (writing the audit log) shares
 * with audit.c (reading and verifying it) and release.c (which appends
 * entries inside its own write transactions), and no one outside
 * artifacts/src. The entry format is described at the top of
 * audit_record.c.
 *
 * The dependencies go one way (ci/lint/deps.sh): audit.c and release.c use
 * audit_record.c, which uses the store (store_internal.h) and nothing of
 * theirs; the store calls none of them.
 */
#ifndef ART_AUDIT_INTERNAL_H
#define ART_AUDIT_INTERNAL_H

#include "art/audit.h"
#include "art/store.h"
#include "art/util.h"

#include <jansson.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/** Length of an entry's key: its seq as decimal digits, zero-padded. */
#define ART_AUDIT__SEQ_KEY_LEN 20
/** The prev_hash of entry 1. */
#define ART_AUDIT__ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/** The key of entry seq (ART_AUDIT__SEQ_KEY_LEN digits and a NUL). */
void art_audit__seq_key(char out[ART_AUDIT__SEQ_KEY_LEN + 1], uint64_t seq);

/** The seq of a key, or false when k is not a well-formed key. */
bool art_audit__seq_from_key(uint64_t *seq, const MDB_val *k);

/** Whether s is 64 lower-case hex digits. NULL-safe (false). */
bool art_audit__hex64(const char *s);

/** Whether s is a well-formed action: [a-z][a-z0-9.-]*, 64 characters at most. */
bool art_audit__action_ok(const char *s);

/**
 * Check an audit event as art_audit_append would.
 * @return 0 or AF_EINVAL / AF_ETOOBIG with a message
 */
int art_audit__event_check(const art_audit_event *ev);

/**
 * SHA-256 hex of the canonical JSON (compact, keys sorted) of entry o,
 * which has no "hash" member.
 * @return 0 or AF_ENOMEM
 */
int art_audit__entry_hash(char out[ART_SHA256_HEX_LEN + 1], json_t *o);

/**
 * The bytes an entry's actors sign: DSSE PAE (ART_AUDIT_ENTRY_TYPE) over
 * the canonical JSON of o without "hash" and "signatures".
 * @param[out] pae, pae_len  caller owns *pae; free()
 * @return 0 or AF_ENOMEM
 */
int art_audit__entry_pae(uint8_t **pae, size_t *pae_len, json_t *o);

/**
 * The log's head as seen by txn: the last seq and its hash (0 and 64 zeros
 * for an empty log).
 * @return 0, AF_ECORRUPT (the last entry is damaged) or an LMDB error
 */
int art_audit__head_read(const art_store *s, MDB_txn *txn, uint64_t *seq,
			 char hash[ART_SHA256_HEX_LEN + 1]);

/**
 * Append an audit entry inside the write transaction txn.
 * @param[in]  now      the entry's time
 * @param[out] out_seq  may be NULL; the new entry's sequence number
 * @return 0, AF_EINVAL (bad event), AF_ETOOBIG, AF_ECORRUPT (the log's
 *         head is damaged) or an LMDB error
 */
int art_audit__append(art_store *s, MDB_txn *txn, const art_audit_event *ev, time_t now,
		      uint64_t *out_seq);

#endif
