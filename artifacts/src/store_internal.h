/*
 * store_internal.h - what store.c shares with release.c and the audit files
 * (audit_record.c, audit.c) and no one outside artifacts/src: raw LMDB
 * transactions on the store's environment, its named databases, and hooks
 * that run other modules' writes inside a batch's transaction. store.c
 * calls nothing of those modules (ci/lint/deps.sh): the audit append is in
 * audit_internal.h.
 *
 * Invariants the callers keep:
 *  - every transaction goes through art_store__read_begin / art_store__write,
 *    which hold the store's resize lock shared (LMDB's rule: the map may only
 *    be resized while this process has no transaction open);
 *  - a write callback does all its checks before its first mdb_put, so that
 *    returning an error (the transaction is aborted) or committing a refusal
 *    audit entry never leaves half an action behind.
 */
#ifndef ART_STORE_INTERNAL_H
#define ART_STORE_INTERNAL_H

#include "art/manifest.h"
#include "art/store.h"

#include <lmdb.h>

/** The named databases the release and audit modules use. */
typedef enum art_store__db {
	ART_STORE__DB_ARTIFACTS,
	ART_STORE__DB_RELEASES,
	ART_STORE__DB_CHANNELS,
	ART_STORE__DB_AUDIT
} art_store__db;

/** The handle of one named database (valid for the store's lifetime). */
MDB_dbi art_store__dbi(const art_store *s, art_store__db db);

/**
 * Translate an LMDB error into an AF_E* code and a message naming the store.
 * @return the AF_E* code
 */
int art_store__lmdb_error(const art_store *s, int mrc, const char *what);

/**
 * Begin a read transaction (its own snapshot); end it with art_store__read_end.
 * @return 0 or an LMDB error translated
 */
int art_store__read_begin(const art_store *s, MDB_txn **txn);

/** End a read transaction begun with art_store__read_begin. NULL-safe. */
void art_store__read_end(const art_store *s, MDB_txn *txn);

/**
 * Body of a write transaction: return 0 to commit, a negative AF_E* code to
 * abort (nothing it wrote is kept). It may run more than once (when the map
 * is full the store grows it and runs the body again), so it must not keep
 * state between runs except through ctx fields it resets itself.
 */
typedef int (*art_store__write_fn)(art_store *s, MDB_txn *txn, void *ctx);

/**
 * Run fn inside one LMDB write transaction and commit it (default
 * durability), growing the map and retrying when it is full.
 * @return 0, fn's error, AF_EDENIED (read-only handle) or an LMDB error
 */
int art_store__write(art_store *s, art_store__write_fn fn, void *ctx);

/**
 * Run fn inside the LMDB write transaction that commits the batch t, after
 * the batch's blobs and artifacts are written (fn sees them) and before its
 * audit entries: whatever fn writes exists exactly when the batch does; an
 * error from fn aborts the whole batch. Like any write body, fn may run more
 * than once. ctx belongs to the batch from now on: free_ctx (may be NULL)
 * releases it when the batch is committed or aborted (also on error here).
 * @return 0 or AF_EINTERNAL (more than 4 hooks)
 */
int art_store__txn_hook(art_store_txn *t, art_store__write_fn fn, void *ctx,
			void (*free_ctx)(void *));

/**
 * Like art_store__txn_hook, for the batch's one last write: fn runs after
 * every hook, just before the commit. audit_record.c queues a batch's audit
 * entries there (art_store_txn_audit), so they follow whatever the hooks
 * appended to the audit log.
 * @return 0 or AF_EINTERNAL (already taken; free_ctx(ctx) was called)
 */
int art_store__txn_last(art_store_txn *t, art_store__write_fn fn, void *ctx,
			void (*free_ctx)(void *));

/** The ctx of t's last write when fn registered it, else NULL. */
void *art_store__txn_last_ctx(const art_store_txn *t, art_store__write_fn fn);

/** The store a batch writes to. */
art_store *art_store__txn_store(const art_store_txn *t);

/**
 * The manifest digest ("sha256:...") of the artifact record stored under
 * ref ("name@version") as seen by txn. Not a verification.
 * @return 0, AF_ENOTFOUND or AF_ECORRUPT
 */
int art_store__record_digest(const art_store *s, MDB_txn *txn, const char *ref,
			     char out[ART_DIGEST_STR_LEN + 1]);

/**
 * The seq that channel's current record claims (release.c; not verified:
 * for cross-checks against the audit log).
 * @return 0, AF_ENOTFOUND (no such channel), AF_ECORRUPT or an LMDB error
 */
int art_release__head_seq(uint64_t *seq, const art_store *s, MDB_txn *txn, const char *channel);

#endif
