/*
 * kv.c - per-agent key-value store on LMDB (see rt/kv.h). Keys are
 * "<agent>\0<key>": agent names cannot contain a NUL, so the prefix
 * separates agents exactly.
 *
 * Writes use group commit. A put is queued; if no thread is committing, the
 * caller becomes the leader: it takes every queued put (its own and those
 * that arrived meanwhile), writes them in queue order in one transaction and
 * commits with one sync, then releases each waiting caller with its result
 * and leads again if more arrived. No caller returns before the commit that
 * holds its write is on disk, so an answered put survives kill -9 and power
 * loss exactly as one transaction per put did, at one sync per batch
 * instead of one per put. If a put fails inside a batch, the batch is
 * aborted and its puts are retried one transaction each, so every caller
 * gets its own exact result.
 */
#include "rt/kv.h"

#include "art/error.h"
#include "art/store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AGENT_MAX 64u

/* One queued put; lives on its caller's stack until done is set. */
typedef struct kv_put_req {
	struct kv_put_req *next;
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
	int done;
	int rc;
	char msg[256];
} kv_put_req;

struct rt_kv {
	MDB_env *env;
	MDB_dbi dbi;
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* a batch finished */
	kv_put_req *head, *tail; /* queued, not yet taken by a leader */
	int leading;            /* a leader is writing a batch */
	unsigned long commits, puts;
};

static int lmdb_error(int mrc, const char *what)
{
	if (mrc == ENOMEM)
		return art_error_set(AF_ENOMEM, "kv: %s: out of memory", what);
	if (mrc == MDB_MAP_FULL)
		return art_error_set(AF_ETOOBIG, "kv: %s: the key-value store is full", what);
	return art_error_set(AF_EIO, "kv: %s: %s", what, mdb_strerror(mrc));
}

int rt_kv_open(rt_kv **out, const char *data_dir)
{
	rt_kv *kv = NULL;
	MDB_txn *txn = NULL;
	char *path = NULL;
	int mrc, rc = 0;

	if (!out || !data_dir)
		return art_error_set(AF_EINVAL, "kv: NULL argument");
	*out = NULL;
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
		return art_error_set(AF_EIO, "kv: cannot create %s: %s", data_dir, strerror(errno));
	if (asprintf(&path, "%s/kv", data_dir) < 0)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		rc = art_error_set(AF_EIO, "kv: cannot create %s: %s", path, strerror(errno));
		goto cleanup;
	}
	kv = calloc(1, sizeof(*kv));
	if (!kv) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	pthread_mutex_init(&kv->lock, NULL);
	pthread_cond_init(&kv->cond, NULL);
	{
		/* A truncated data file would kill the process with SIGBUS. */
		char data_path[4096];

		snprintf(data_path, sizeof(data_path), "%s/data.mdb", path);
		if ((rc = art_lmdb_check_file(data_path)) < 0)
			goto cleanup;
	}
	if ((mrc = mdb_env_create(&kv->env)) != 0 ||
	    (mrc = mdb_env_set_mapsize(kv->env, RT_KV_MAP_SIZE)) != 0 ||
	    (mrc = mdb_env_set_maxreaders(kv->env, 1024)) != 0 ||
	    (mrc = mdb_env_open(kv->env, path, MDB_NOTLS, 0600)) != 0 ||
	    (mrc = mdb_txn_begin(kv->env, NULL, 0, &txn)) != 0 ||
	    (mrc = mdb_dbi_open(txn, NULL, 0, &kv->dbi)) != 0 || (mrc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		rc = art_error_set(AF_EIO, "kv: cannot open %s: %s", path, mdb_strerror(mrc));
		goto cleanup;
	}
	txn = NULL;
	*out = kv;
	kv = NULL;
cleanup:
	if (txn)
		mdb_txn_abort(txn);
	rt_kv_close(kv);
	free(path);
	return rc;
}

void rt_kv_close(rt_kv *kv)
{
	if (!kv)
		return;
	if (kv->env)
		mdb_env_close(kv->env);
	pthread_cond_destroy(&kv->cond);
	pthread_mutex_destroy(&kv->lock);
	free(kv);
}

/* "<agent>\0<key>" into buf. */
static int make_key(char *buf, size_t *n, const char *agent, const char *key, size_t key_len)
{
	size_t a = agent ? strlen(agent) : 0;

	if (a == 0 || a > AGENT_MAX || !key)
		return art_error_set(AF_EINVAL, "kv: bad agent name");
	if (key_len == 0)
		return art_error_set(AF_EINVAL, "kv: empty key");
	if (key_len > RT_KV_KEY_MAX)
		return art_error_set(AF_ETOOBIG, "kv: key of %zu bytes is over the limit of %u", key_len,
				     RT_KV_KEY_MAX);
	memcpy(buf, agent, a);
	buf[a] = '\0';
	memcpy(buf + a + 1, key, key_len);
	*n = a + 1 + key_len;
	return 0;
}

int rt_kv_get(rt_kv *kv, const char *agent, const char *key, size_t key_len, char **out,
	      size_t *out_len)
{
	char kbuf[AGENT_MAX + 1 + RT_KV_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_val k, v;
	size_t kn;
	int mrc, rc;

	*out = NULL;
	*out_len = 0;
	if (!kv)
		return art_error_set(AF_EINVAL, "kv: no key-value store");
	if ((rc = make_key(kbuf, &kn, agent, key, key_len)) < 0)
		return rc;
	if ((mrc = mdb_txn_begin(kv->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(mrc, "read");
	k.mv_data = kbuf;
	k.mv_size = kn;
	mrc = mdb_get(txn, kv->dbi, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		rc = art_error_set(AF_ENOTFOUND, "no such key");
	} else if (mrc != 0) {
		rc = lmdb_error(mrc, "read");
	} else if (!(*out = malloc(v.mv_size + 1))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
	} else {
		memcpy(*out, v.mv_data, v.mv_size);
		(*out)[v.mv_size] = '\0';
		*out_len = v.mv_size;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* Record r's result and the calling thread's error message for its owner. */
static void req_finish(kv_put_req *r, int rc)
{
	r->rc = rc;
	if (rc < 0)
		snprintf(r->msg, sizeof(r->msg), "%s", art_error_last());
}

/* One put in txn; an art error code (the message set) on failure. */
static int put_one(rt_kv *kv, MDB_txn *txn, const kv_put_req *r)
{
	MDB_val k, v;
	int mrc;

	k.mv_data = (void *)r->key;
	k.mv_size = r->key_len;
	v.mv_data = (void *)r->value;
	v.mv_size = r->value_len;
	if ((mrc = mdb_put(txn, kv->dbi, &k, &v, 0)) != 0)
		return lmdb_error(mrc, "write");
	return 0;
}

/* Each put of the list in its own transaction (after a failed batch). */
static void write_singly(rt_kv *kv, kv_put_req *list)
{
	MDB_txn *txn;
	int mrc, rc;

	for (; list; list = list->next) {
		if ((mrc = mdb_txn_begin(kv->env, NULL, 0, &txn)) != 0) {
			req_finish(list, lmdb_error(mrc, "write"));
			continue;
		}
		if ((rc = put_one(kv, txn, list)) < 0) {
			mdb_txn_abort(txn);
			req_finish(list, rc);
			continue;
		}
		mrc = mdb_txn_commit(txn);
		req_finish(list, mrc ? lmdb_error(mrc, "commit") : 0);
	}
}

/* The whole list in one transaction and one sync; singly if a put fails. */
static void write_batch(rt_kv *kv, kv_put_req *list)
{
	MDB_txn *txn;
	kv_put_req *r;
	int mrc, rc = 0;

	if ((mrc = mdb_txn_begin(kv->env, NULL, 0, &txn)) != 0) {
		rc = lmdb_error(mrc, "write");
		for (r = list; r; r = r->next)
			req_finish(r, rc);
		return;
	}
	for (r = list; r; r = r->next)
		if ((rc = put_one(kv, txn, r)) < 0)
			break;
	if (rc < 0) {
		mdb_txn_abort(txn);
		write_singly(kv, list);
		return;
	}
	mrc = mdb_txn_commit(txn);
	rc = mrc ? lmdb_error(mrc, "commit") : 0;
	for (r = list; r; r = r->next)
		req_finish(r, rc);
}

int rt_kv_put(rt_kv *kv, const char *agent, const char *key, size_t key_len, const char *value,
	      size_t value_len)
{
	char kbuf[AGENT_MAX + 1 + RT_KV_KEY_MAX];
	kv_put_req req, *batch, *r, *next;
	size_t kn;
	int rc;

	if (!kv)
		return art_error_set(AF_EINVAL, "kv: no key-value store");
	if ((rc = make_key(kbuf, &kn, agent, key, key_len)) < 0)
		return rc;
	if (value_len > RT_KV_VALUE_MAX)
		return art_error_set(AF_ETOOBIG, "kv: value of %zu bytes is over the limit of %zu",
				     value_len, RT_KV_VALUE_MAX);
	memset(&req, 0, sizeof(req));
	req.key = kbuf;
	req.key_len = kn;
	req.value = value;
	req.value_len = value_len;

	pthread_mutex_lock(&kv->lock);
	if (kv->tail)
		kv->tail->next = &req;
	else
		kv->head = &req;
	kv->tail = &req;
	/* Wait while another thread leads; it may take our put with its batch. */
	while (!req.done && kv->leading)
		pthread_cond_wait(&kv->cond, &kv->lock);
	/* Lead until our own put is done (batches taken in arrival order). */
	while (!req.done) {
		kv->leading = 1;
		batch = kv->head;
		kv->head = kv->tail = NULL;
		pthread_mutex_unlock(&kv->lock);
		write_batch(kv, batch);
		pthread_mutex_lock(&kv->lock);
		kv->commits++;
		for (r = batch; r; r = next) {
			next = r->next; /* r may be gone once done is seen */
			kv->puts++;
			r->done = 1;
		}
		kv->leading = 0;
		pthread_cond_broadcast(&kv->cond);
	}
	pthread_mutex_unlock(&kv->lock);
	if (req.rc < 0)
		return art_error_set(req.rc, "%s", req.msg);
	return 0;
}

void rt_kv_stats(rt_kv *kv, unsigned long *commits, unsigned long *puts)
{
	pthread_mutex_lock(&kv->lock);
	*commits = kv->commits;
	*puts = kv->puts;
	pthread_mutex_unlock(&kv->lock);
}
