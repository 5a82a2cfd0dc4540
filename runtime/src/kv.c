/*
 * kv.c - per-agent key-value store on LMDB (see rt/kv.h). Keys are
 * "<agent>\0<key>": agent names cannot contain a NUL, so the prefix
 * separates agents exactly.
 */
#include "rt/kv.h"

#include "art/error.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AGENT_MAX 64u

struct rt_kv {
	MDB_env *env;
	MDB_dbi dbi;
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

int rt_kv_put(rt_kv *kv, const char *agent, const char *key, size_t key_len, const char *value,
	      size_t value_len)
{
	char kbuf[AGENT_MAX + 1 + RT_KV_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_val k, v;
	size_t kn;
	int mrc, rc;

	if (!kv)
		return art_error_set(AF_EINVAL, "kv: no key-value store");
	if ((rc = make_key(kbuf, &kn, agent, key, key_len)) < 0)
		return rc;
	if (value_len > RT_KV_VALUE_MAX)
		return art_error_set(AF_ETOOBIG, "kv: value of %zu bytes is over the limit of %zu",
				     value_len, RT_KV_VALUE_MAX);
	if ((mrc = mdb_txn_begin(kv->env, NULL, 0, &txn)) != 0)
		return lmdb_error(mrc, "write");
	k.mv_data = kbuf;
	k.mv_size = kn;
	v.mv_data = (void *)value;
	v.mv_size = value_len;
	if ((mrc = mdb_put(txn, kv->dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(mrc, "write");
	}
	if ((mrc = mdb_txn_commit(txn)) != 0)
		return lmdb_error(mrc, "commit");
	return 0;
}
