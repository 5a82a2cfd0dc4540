/*
 * rt/kv.h - the per-agent key-value store behind the kv_get / kv_put tools.
 *
 * One LMDB environment in DATA_DIR/kv (created 0700), separate from the
 * read-only artifact store. Every key is stored under its agent's name
 * ("<agent>\0<key>"), so one agent can never read or write another's keys.
 * Values are JSON texts (the kv_put tool stores args.value re-encoded).
 * Writes use LMDB's default durability (a synced commit) with group commit:
 * concurrent puts share one write transaction and one sync, and no put
 * returns before the commit holding it is durable. Thread-safe (MDB_NOTLS).
 */
#ifndef RT_KV_H
#define RT_KV_H

#include <stddef.h>

/** Caps: key bytes, value bytes, and the map size of the environment. */
#define RT_KV_KEY_MAX 256u
#define RT_KV_VALUE_MAX ((size_t)64 << 10)
#define RT_KV_MAP_SIZE ((size_t)1 << 30)

typedef struct rt_kv rt_kv;

/**
 * Open (creating DIR/kv if needed) the key-value environment.
 * @param[out] out  caller owns; rt_kv_close. NULL on error.
 * @return 0, AF_EIO (cannot create or open; the message names the path),
 *         AF_ENOMEM
 */
int rt_kv_open(rt_kv **out, const char *data_dir);

/** Close. No call may be running. NULL-safe. */
void rt_kv_close(rt_kv *kv);

/**
 * Read agent's key.
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @return 0, AF_ENOTFOUND, AF_ETOOBIG (key over RT_KV_KEY_MAX), AF_EINVAL
 *         (empty key, bad agent name), AF_EIO, AF_ENOMEM
 */
int rt_kv_get(rt_kv *kv, const char *agent, const char *key, size_t key_len, char **out,
	      size_t *out_len);

/**
 * Write agent's key (replacing any value). Returns once the write is
 * committed and synced (possibly in a batch with other threads' puts, in
 * the order they were called). key and value are only read until then.
 * @return 0, AF_ETOOBIG (key or value over its cap, or the store is full),
 *         AF_EINVAL, AF_EIO
 */
int rt_kv_put(rt_kv *kv, const char *agent, const char *key, size_t key_len, const char *value,
	      size_t value_len);

/** Commits and puts so far (puts / commits = the mean batch size). */
void rt_kv_stats(rt_kv *kv, unsigned long *commits, unsigned long *puts);

#endif
