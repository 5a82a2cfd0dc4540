/*
 * store.c - the LMDB artifact store (see art/store.h and docs/store.md).
 *
 * Invariants:
 *  - Exactly one LMDB write transaction per batch, begun and committed inside
 *    art_store_txn_commit; everything a batch writes becomes visible at once
 *    or not at all. Durability is LMDB's default (fsync on commit).
 *  - A blob's key is the SHA-256 of its raw bytes; a blob is written once
 *    (MDB_NOOVERWRITE) and never rewritten. Every read re-hashes.
 *  - A stored blob is a 13-byte header (format, dictionary id, raw size, all
 *    little-endian) + a single zstd frame whose content size equals the
 *    header's raw size (or, format 0, the raw bytes when zstd would not
 *    shrink them). Readers check all of that before allocating more than
 *    ART_BLOB_MAX bytes or decompressing.
 *  - Every LMDB transaction of this process holds resize_lock shared; the map
 *    is only resized (mdb_env_set_mapsize) under it exclusively, which is
 *    LMDB's "no transaction active in this process" rule.
 *  - Nothing is trusted without a signature: art_store_load_verified and
 *    art_store_verify_all verify the builder envelope before parsing the
 *    manifest, and every part before returning it.
 *  - A name@version that a release pins (releases database, key
 *    "pin/name@version", written by release.c) is never replaced by another
 *    manifest; audit entries queued in a batch are appended in its
 *    transaction, so they exist exactly when the batch does.
 *  - This file calls nothing of the modules built on it (release.c, the
 *    audit files): they reach into a batch's transaction through the hooks
 *    of store_internal.h. art_store_txn_audit, declared in art/store.h, is
 *    defined in audit_record.c, which queues the entries as the batch's
 *    last hook (ci/lint/deps.sh keeps the dependencies one way).
 */
#include "art/store.h"

#include "art/attest.h"
#include "art/error.h"
#include "art/util.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>

/* DB_ATTEST came later: a store written by an older version has none, and a
 * read-only handle then simply sees no attestations (DB_OPTIONAL on). */
enum { DB_BLOBS, DB_ARTIFACTS, DB_NAMES, DB_CACHE, DB_META, DB_RELEASES, DB_CHANNELS, DB_AUDIT,
       DB_ATTEST, DB_COUNT };
#define DB_OPTIONAL DB_ATTEST
static const char *const db_names[DB_COUNT] = {"blobs", "artifacts", "names", "cache",
					       "meta", "releases", "channels", "audit",
					       "attestations"};

#define META_FORMAT "format"
#define META_DICT_CURRENT "dict.current"
#define META_DICT_PREFIX "dict/"
#define META_STATS "stats"

#define BLOB_RAW 0
#define BLOB_ZSTD 1
#define RECORD_VERSION 1
#define RECORD_HEADER 9
#define REF_MAX 200            /* "name@version" */
#define MAP_SIZE_LIMIT (1ull << 40)
#define COMPRESS_THREADS_MAX 8
#define TRAIN_CHUNK (16u * 1024u)
#define TRAIN_MAX (16u * 1024u * 1024u)
#define DICT_MAX_BYTES (1024u * 1024u)

typedef struct ddict_entry {
	uint32_t id;
	ZSTD_DDict *ddict;
} ddict_entry;

struct art_store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	bool has_attest; /* the attestations database exists (see DB_OPTIONAL) */
	unsigned flags;
	char *path;
	pthread_rwlock_t resize_lock;
	pthread_mutex_t dict_lock;
	ddict_entry *ddicts;
	size_t n_ddicts;
	bool locks_ready;
};

typedef struct pending_blob {
	char hex[ART_SHA256_HEX_LEN + 1];
	uint8_t *raw;
	size_t len;
	uint8_t *stored; /* header + payload, filled at commit */
	size_t stored_len;
} pending_blob;

typedef struct pending_artifact {
	char ref[REF_MAX];
	art_manifest *manifest;
	char *manifest_json;
	size_t manifest_len;
	char *envelope;
	size_t envelope_len;
	char *attestation; /* provenance DSSE envelope, or NULL */
	size_t attestation_len;
} pending_artifact;

struct art_store_txn {
	art_store *s;
	pending_blob *blobs;
	size_t n_blobs, cap_blobs;
	pending_artifact *arts;
	size_t n_arts, cap_arts;
	uint64_t queued_bytes;
	bool auto_dict;
	uint8_t *dict; /* a dictionary trained for this batch, or NULL */
	size_t dict_len;
	uint32_t dict_id;
	/* other modules' writes run inside the batch's transaction (store_internal.h) */
	struct {
		art_store__write_fn fn;
		void *ctx;
		void (*free_ctx)(void *);
	} hooks[4], last; /* last: after every hook (the batch's audit entries) */
	size_t n_hooks;
};

typedef struct store_counters {
	uint64_t blobs, raw_bytes, stored_bytes;
} store_counters;

/* ---- small helpers ------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static bool hex_valid(const char *s)
{
	size_t i;

	if (!s)
		return false;
	for (i = 0; i < ART_SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[ART_SHA256_HEX_LEN] == '\0';
}

static MDB_val mval(const void *data, size_t len)
{
	MDB_val v;

	v.mv_data = (void *)data;
	v.mv_size = len;
	return v;
}

static MDB_val sval(const char *s)
{
	return mval(s, strlen(s));
}

/* The LMDB code behind the calling thread's last lmdb_error (MDB_MAP_FULL test). */
static _Thread_local int last_mdb_rc;

static int lmdb_error(const art_store *s, int mrc, const char *what)
{
	int rc;

	last_mdb_rc = mrc;

	switch (mrc) {
	case MDB_NOTFOUND:
	case ENOENT:
		rc = AF_ENOTFOUND;
		break;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_DBS_FULL:
		rc = AF_ETOOBIG;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_DBI:
		rc = AF_ECORRUPT;
		break;
	case MDB_VERSION_MISMATCH:
		rc = AF_EVERSION;
		break;
	case ENOMEM:
		rc = AF_ENOMEM;
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		rc = AF_EDENIED;
		break;
	default:
		rc = AF_EIO;
	}
	return art_error_set(rc, "store %s: %s: %s", s ? s->path : "?", what, mdb_strerror(mrc));
}

/* Prefix the calling thread's error message with "name@version: ". */
static int with_ref(int rc, const char *ref)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", art_error_last());
	return art_error_set(rc, "%s: %s", ref, msg);
}

static int make_ref(char out[REF_MAX], const char *name, const char *version)
{
	if (!art_manifest_name_valid(name))
		return art_error_set(AF_EINVAL, "invalid agent name '%.80s'", name ? name : "");
	if (!art_manifest_version_valid(version))
		return art_error_set(AF_EINVAL, "invalid version '%.80s' for %s", version, name);
	if ((size_t)snprintf(out, REF_MAX, "%s@%s", name, version) >= REF_MAX)
		return art_error_set(AF_EINVAL, "'%.80s@%.80s' is too long", name, version);
	return 0;
}

/* ---- transactions and the resize lock ------------------------------------ */

static void lock_shared(const art_store *cs)
{
	pthread_rwlock_rdlock(&((art_store *)cs)->resize_lock);
}

static void unlock_shared(const art_store *cs)
{
	pthread_rwlock_unlock(&((art_store *)cs)->resize_lock);
}

/* Adopt a map size another process set (MDB_MAP_RESIZED). Caller holds nothing. */
static void adopt_map_size(const art_store *cs)
{
	art_store *s = (art_store *)cs;

	pthread_rwlock_wrlock(&s->resize_lock);
	mdb_env_set_mapsize(s->env, 0);
	pthread_rwlock_unlock(&s->resize_lock);
}

static int txn_open(const art_store *s, MDB_txn **txn, unsigned flags)
{
	int mrc, tries;

	*txn = NULL;
	for (tries = 0; tries < 3; tries++) {
		lock_shared(s);
		mrc = mdb_txn_begin(s->env, NULL, flags, txn);
		if (mrc == 0)
			return 0;
		unlock_shared(s);
		*txn = NULL;
		if (mrc != MDB_MAP_RESIZED)
			break;
		adopt_map_size(s);
	}
	return lmdb_error(s, mrc, flags & MDB_RDONLY ? "cannot begin a read transaction"
						    : "cannot begin a write transaction");
}

static int rd_begin(const art_store *s, MDB_txn **txn)
{
	return txn_open(s, txn, MDB_RDONLY);
}

/* Ends a read txn, or aborts a write txn, and drops the shared lock. */
static void txn_close(const art_store *s, MDB_txn *txn)
{
	if (txn) {
		mdb_txn_abort(txn);
		unlock_shared(s);
	}
}

/* ---- open / close -------------------------------------------------------- */

static int check_format(art_store *s, MDB_txn *txn, bool create)
{
	MDB_val key = sval(META_FORMAT), val;
	int mrc = mdb_get(txn, s->dbi[DB_META], &key, &val);

	if (mrc == MDB_NOTFOUND) {
		if (!create)
			return art_error_set(AF_ECORRUPT, "%s is not an agentfactory store (no format "
					     "record)", s->path);
		val = sval(ART_STORE_FORMAT);
		mrc = mdb_put(txn, s->dbi[DB_META], &key, &val, 0);
		return mrc ? lmdb_error(s, mrc, "cannot initialise the store") : 0;
	}
	if (mrc)
		return lmdb_error(s, mrc, "cannot read the store format");
	if (val.mv_size == strlen(ART_STORE_FORMAT) &&
	    memcmp(val.mv_data, ART_STORE_FORMAT, val.mv_size) == 0)
		return 0;
	if (val.mv_size > 19 && memcmp(val.mv_data, "agentfactory-store/", 19) == 0)
		return art_error_set(AF_EVERSION, "%s: store format '%.*s' is not supported (this "
				     "build reads %s)", s->path, (int)(val.mv_size > 60 ? 60 : val.mv_size),
				     (const char *)val.mv_data, ART_STORE_FORMAT);
	return art_error_set(AF_ECORRUPT, "%s is not an agentfactory store", s->path);
}

static int open_dbs(art_store *s, bool create)
{
	bool rdonly = s->flags & ART_STORE_RDONLY;
	MDB_txn *txn = NULL;
	int i, mrc, rc;

	if ((rc = txn_open(s, &txn, rdonly ? MDB_RDONLY : 0)) < 0)
		return rc;
	for (i = 0; i < DB_COUNT; i++) {
		mrc = mdb_dbi_open(txn, db_names[i], rdonly ? 0 : MDB_CREATE, &s->dbi[i]);
		if (i == DB_OPTIONAL) {
			s->has_attest = mrc == 0;
			if (mrc == MDB_NOTFOUND)
				continue;
		}
		if (mrc == MDB_NOTFOUND) {
			rc = art_error_set(AF_ECORRUPT, "%s is not an agentfactory store (no '%s' "
					   "database)", s->path, db_names[i]);
			goto fail;
		}
		if (mrc) {
			rc = lmdb_error(s, mrc, "cannot open a database");
			goto fail;
		}
	}
	if ((rc = check_format(s, txn, create)) < 0)
		goto fail;
	/* Committing (even a read txn) makes the dbi handles usable by later txns. */
	mrc = mdb_txn_commit(txn);
	unlock_shared(s);
	return mrc ? lmdb_error(s, mrc, "cannot initialise the store") : 0;
fail:
	txn_close(s, txn);
	return rc;
}

/*
 * The initial map size: ART_STORE_MAP_SIZE, or AF_STORE_MAP_SIZE (bytes, with
 * an optional K, M or G suffix; at least 64K), an operations knob that also
 * lets tests exercise the growth path without writing gigabytes.
 */
static size_t initial_map_size(void)
{
	const char *v = getenv("AF_STORE_MAP_SIZE");
	unsigned long long n;
	char *end;

	if (!v || !*v)
		return ART_STORE_MAP_SIZE;
	n = strtoull(v, &end, 10);
	if (*end == 'K' || *end == 'k')
		n <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		n <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		n <<= 30, end++;
	if (*end || n < (64u << 10) || n > MAP_SIZE_LIMIT)
		return ART_STORE_MAP_SIZE;
	return (size_t)n;
}

/*
 * LMDB's meta pages (pages 0 and 1), as mdb.c lays them out on a 64-bit
 * build: a 16-byte page header, then MDB_meta { uint32 mm_magic, uint32
 * mm_version, void *mm_address, size_t mm_mapsize, MDB_db mm_dbs[2] (48 bytes
 * each; the page size is kept in mm_dbs[0].md_pad), pgno_t mm_last_pg,
 * txnid_t mm_txnid }. Only these fields are read; LMDB uses the meta page
 * with the larger txnid.
 */
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_META_MAGIC 16
#define LMDB_META_PSIZE 40
#define LMDB_META_LAST_PG 136
#define LMDB_META_TXNID 144
#define LMDB_META_END 152

typedef struct lmdb_meta {
	uint32_t magic, psize;
	uint64_t last_pg, txnid;
} lmdb_meta;

static void meta_decode(lmdb_meta *m, const unsigned char *p)
{
	memcpy(&m->magic, p + LMDB_META_MAGIC, 4);
	memcpy(&m->psize, p + LMDB_META_PSIZE, 4);
	memcpy(&m->last_pg, p + LMDB_META_LAST_PG, 8);
	memcpy(&m->txnid, p + LMDB_META_TXNID, 8);
}

static bool psize_valid(uint32_t psize)
{
	return psize >= 512 && psize <= 65536 && (psize & (psize - 1)) == 0;
}

static int check_fd(int fd, const char *data_path)
{
	unsigned char page[LMDB_META_END];
	lmdb_meta meta[2], *newest;
	struct stat st;
	uint64_t need, size;
	ssize_t n;
	int i, rc = 0;

	if (fstat(fd, &st) < 0)
		return art_error_set(AF_EIO, "cannot stat %s: %s", data_path, strerror(errno));
	size = (uint64_t)st.st_size;
	if (size == 0)
		return 0; /* a store being created: LMDB writes both meta pages */
	for (i = 0; i < 2; i++) {
		off_t at = i == 0 ? 0 : (off_t)meta[0].psize;

		n = pread(fd, page, sizeof(page), at);
		if (n < 0)
			return art_error_set(AF_EIO, "cannot read %s: %s", data_path, strerror(errno));
		if ((size_t)n < sizeof(page))
			return art_error_set(AF_EDAMAGED, "store is corrupt: data.mdb is %llu bytes, "
					     "too short for its meta page %d (%s)",
					     (unsigned long long)size, i, data_path);
		meta_decode(&meta[i], page);
		if (meta[i].magic != LMDB_MAGIC || !psize_valid(meta[i].psize) ||
		    (i == 1 && meta[1].psize != meta[0].psize))
			return art_error_set(AF_EDAMAGED, "store is corrupt: meta page %d of %s is "
					     "not an LMDB meta page", i, data_path);
	}
	/* LMDB reads the newest; the other is the previous commit, whose pages
	 * a reader may still need (it never has more than the newest). */
	newest = meta[1].txnid > meta[0].txnid ? &meta[1] : &meta[0];
	if (newest->last_pg > (UINT64_MAX / newest->psize) - 1)
		return art_error_set(AF_EDAMAGED, "store is corrupt: the meta page of %s claims "
				     "page %llu", data_path, (unsigned long long)newest->last_pg);
	need = (newest->last_pg + 1) * newest->psize;
	if (size < need)
		rc = art_error_set(AF_EDAMAGED, "store is corrupt: data.mdb is %llu bytes, its meta "
				   "page claims %llu (%s; a partial copy or an interrupted restore? "
				   "restore it from a complete copy)", (unsigned long long)size,
				   (unsigned long long)need, data_path);
	return rc;
}

int art_lmdb_check_file(const char *data_path)
{
	int fd, rc;

	if ((fd = open(data_path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		return art_error_set(errno == EACCES ? AF_EDENIED : AF_EIO, "cannot open %s: %s",
				     data_path, strerror(errno));
	}
	rc = check_fd(fd, data_path);
	close(fd);
	return rc;
}

int art_store_check_file(const art_store *s)
{
	char data_path[4096];
	mdb_filehandle_t fd;

	if (!s || !s->env)
		return art_error_set(AF_EINVAL, "art_store_check_file: no store");
	snprintf(data_path, sizeof(data_path), "%s/data.mdb", s->path);
	/* The file LMDB has mapped, not whatever the path names now. */
	if (mdb_env_get_fd(s->env, &fd) != 0)
		return art_lmdb_check_file(data_path);
	return check_fd(fd, data_path);
}

int art_store_open(art_store **out, const char *dir, unsigned flags)
{
	art_store *s = NULL;
	char data_path[4096];
	struct stat st;
	MDB_envinfo info;
	int mrc, rc;

	*out = NULL;
	if (!dir || !*dir || (flags & ~(ART_STORE_RDONLY | ART_STORE_CREATE)) ||
	    ((flags & ART_STORE_RDONLY) && (flags & ART_STORE_CREATE)))
		return art_error_set(AF_EINVAL, "art_store_open: a directory and at most one of "
				     "RDONLY, CREATE are required");
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || !(flags & ART_STORE_CREATE))
			return art_error_set(errno == ENOENT ? AF_ENOTFOUND : AF_EIO,
					     "no store at %s: %s", dir, strerror(errno));
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return art_error_set(errno == EACCES ? AF_EDENIED : AF_EIO,
					     "cannot create the store directory %s: %s", dir,
					     strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		return art_error_set(AF_EINVAL, "store %s is not a directory", dir);
	}
	snprintf(data_path, sizeof(data_path), "%s/data.mdb", dir);
	if (!(flags & ART_STORE_CREATE) && stat(data_path, &st) < 0)
		return art_error_set(AF_ENOTFOUND, "no store at %s (no data.mdb)", dir);
	/* Before LMDB maps it: a truncated file would kill us with SIGBUS. */
	if (!(flags & ART_STORE_CREATE) && st.st_size == 0)
		return art_error_set(AF_EDAMAGED, "store is corrupt: data.mdb is 0 bytes, its meta "
				     "pages are missing (%s/data.mdb; restore it from a complete copy)",
				     dir);
	if ((rc = art_lmdb_check_file(data_path)) < 0)
		return rc;

	if (!(s = calloc(1, sizeof(*s))) || !(s->path = strdup(dir))) {
		rc = art_error_set(AF_ENOMEM, "out of memory opening a store");
		goto fail;
	}
	s->flags = flags;
	if (pthread_rwlock_init(&s->resize_lock, NULL) != 0) {
		rc = art_error_set(AF_ENOMEM, "cannot create a lock");
		goto fail;
	}
	if (pthread_mutex_init(&s->dict_lock, NULL) != 0) {
		pthread_rwlock_destroy(&s->resize_lock);
		rc = art_error_set(AF_ENOMEM, "cannot create a lock");
		goto fail;
	}
	s->locks_ready = true;
	if ((mrc = mdb_env_create(&s->env)) != 0 || (mrc = mdb_env_set_maxdbs(s->env, 16)) != 0) {
		rc = lmdb_error(s, mrc, "cannot create the environment");
		goto fail;
	}
	mrc = mdb_env_open(s->env, dir,
			   MDB_NOTLS | ((flags & ART_STORE_RDONLY) ? MDB_RDONLY : 0), 0600);
	/*
	 * A reader that may not write lock.mdb (a non-root user on a store
	 * owned by another user, readable by it): LMDB itself opens without
	 * its reader table on a read-only file system; do the same here. No
	 * reader slot means a writer in another process could reuse pages
	 * this reader still reads, so give readers write access to lock.mdb
	 * when the store is written while served (docs/store.md section 2).
	 */
	if ((mrc == EACCES || mrc == EPERM) && (flags & ART_STORE_RDONLY)) {
		mdb_env_close(s->env);
		s->env = NULL;
		if ((mrc = mdb_env_create(&s->env)) != 0 ||
		    (mrc = mdb_env_set_maxdbs(s->env, 16)) != 0) {
			rc = lmdb_error(s, mrc, "cannot create the environment");
			goto fail;
		}
		mrc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_RDONLY | MDB_NOLOCK, 0600);
	}
	if (mrc) {
		rc = lmdb_error(s, mrc, "cannot open");
		goto fail;
	}
	if (!(flags & ART_STORE_RDONLY) && mdb_env_info(s->env, &info) == 0 &&
	    info.me_mapsize < initial_map_size() &&
	    (mrc = mdb_env_set_mapsize(s->env, initial_map_size())) != 0) {
		rc = lmdb_error(s, mrc, "cannot set the map size");
		goto fail;
	}
	if ((rc = open_dbs(s, flags & ART_STORE_CREATE)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	art_store_close(s);
	return rc;
}

void art_store_close(art_store *s)
{
	size_t i;

	if (!s)
		return;
	if (s->env)
		mdb_env_close(s->env);
	for (i = 0; i < s->n_ddicts; i++)
		ZSTD_freeDDict(s->ddicts[i].ddict);
	free(s->ddicts);
	if (s->locks_ready) {
		pthread_rwlock_destroy(&s->resize_lock);
		pthread_mutex_destroy(&s->dict_lock);
	}
	free(s->path);
	free(s);
}

const char *art_store_path(const art_store *s)
{
	return s->path;
}

/* ---- blobs: decoding ----------------------------------------------------- */

static int ddict_get(const art_store *cs, MDB_txn *txn, uint32_t id, const ZSTD_DDict **out)
{
	art_store *s = (art_store *)cs;
	char key[32];
	MDB_val k, v;
	ddict_entry *grown;
	ZSTD_DDict *dd;
	size_t i;
	int mrc, rc = 0;

	pthread_mutex_lock(&s->dict_lock);
	for (i = 0; i < s->n_ddicts; i++)
		if (s->ddicts[i].id == id) {
			*out = s->ddicts[i].ddict;
			goto done;
		}
	snprintf(key, sizeof(key), META_DICT_PREFIX "%08x", id);
	k = sval(key);
	mrc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (mrc == MDB_NOTFOUND) {
		rc = art_error_set(AF_ECORRUPT, "zstd dictionary %08x is missing from the store", id);
		goto done;
	}
	if (mrc) {
		rc = lmdb_error(s, mrc, "cannot read a dictionary");
		goto done;
	}
	dd = ZSTD_createDDict(v.mv_data, v.mv_size);
	if (!dd || ZSTD_getDictID_fromDDict(dd) != id) {
		ZSTD_freeDDict(dd);
		rc = art_error_set(AF_ECORRUPT, "zstd dictionary %08x is damaged", id);
		goto done;
	}
	grown = realloc(s->ddicts, (s->n_ddicts + 1) * sizeof(*grown));
	if (!grown) {
		ZSTD_freeDDict(dd);
		rc = art_error_set(AF_ENOMEM, "out of memory loading a dictionary");
		goto done;
	}
	s->ddicts = grown;
	s->ddicts[s->n_ddicts].id = id;
	s->ddicts[s->n_ddicts++].ddict = dd;
	*out = dd;
done:
	pthread_mutex_unlock(&s->dict_lock);
	return rc;
}

typedef struct blob_header {
	int format;
	uint32_t dict_id;
	uint64_t raw_size;
	const uint8_t *payload;
	size_t payload_len;
} blob_header;

static int header_parse(blob_header *h, const char *hex, const MDB_val *v)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < ART_BLOB_HEADER_SIZE)
		return art_error_set(AF_ECORRUPT, "blob %.16s...: truncated header", hex);
	h->format = p[0];
	h->dict_id = get_le32(p + 1);
	h->raw_size = get_le64(p + 5);
	h->payload = p + ART_BLOB_HEADER_SIZE;
	h->payload_len = v->mv_size - ART_BLOB_HEADER_SIZE;
	if (h->format != BLOB_RAW && h->format != BLOB_ZSTD)
		return art_error_set(AF_ECORRUPT, "blob %.16s...: unknown format %d", hex, h->format);
	if (h->raw_size > ART_BLOB_MAX)
		return art_error_set(AF_ECORRUPT, "blob %.16s...: raw size %llu is over the limit "
				     "(%u)", hex, (unsigned long long)h->raw_size, ART_BLOB_MAX);
	return 0;
}

/* Decompress and check the stored value v of blob hex. */
static int blob_decode(const art_store *s, MDB_txn *txn, const char *hex, const MDB_val *v,
		       uint8_t **out, size_t *out_len)
{
	char got[ART_SHA256_HEX_LEN + 1];
	const ZSTD_DDict *dd = NULL;
	ZSTD_DCtx *dctx = NULL;
	unsigned long long fcs;
	blob_header h;
	uint8_t *buf = NULL;
	size_t n;
	int rc;

	*out = NULL;
	*out_len = 0;
	if ((rc = header_parse(&h, hex, v)) < 0)
		return rc;
	if (h.format == BLOB_RAW) {
		if (h.dict_id != 0 || h.payload_len != h.raw_size)
			return art_error_set(AF_ECORRUPT, "blob %.16s...: stored size %zu does not "
					     "match the header (%llu)", hex, h.payload_len,
					     (unsigned long long)h.raw_size);
	} else {
		fcs = ZSTD_getFrameContentSize(h.payload, h.payload_len);
		if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN ||
		    fcs != h.raw_size)
			return art_error_set(AF_ECORRUPT, "blob %.16s...: the zstd frame's content "
					     "size does not match the header's raw size %llu", hex,
					     (unsigned long long)h.raw_size);
		n = ZSTD_findFrameCompressedSize(h.payload, h.payload_len);
		if (ZSTD_isError(n) || n != h.payload_len)
			return art_error_set(AF_ECORRUPT, "blob %.16s...: not exactly one zstd frame",
					     hex);
		if (ZSTD_getDictID_fromFrame(h.payload, h.payload_len) != h.dict_id)
			return art_error_set(AF_ECORRUPT, "blob %.16s...: the frame's dictionary id "
					     "does not match the header", hex);
		if (h.dict_id && (rc = ddict_get(s, txn, h.dict_id, &dd)) < 0)
			return rc;
	}
	if (!(buf = malloc(h.raw_size ? (size_t)h.raw_size : 1))) {
		rc = art_error_set(AF_ENOMEM, "out of memory reading blob %.16s...", hex);
		goto cleanup;
	}
	if (h.format == BLOB_RAW) {
		memcpy(buf, h.payload, h.payload_len);
	} else {
		if (!(dctx = ZSTD_createDCtx())) {
			rc = art_error_set(AF_ENOMEM, "out of memory decompressing");
			goto cleanup;
		}
		n = dd ? ZSTD_decompress_usingDDict(dctx, buf, (size_t)h.raw_size, h.payload,
						    h.payload_len, dd)
		       : ZSTD_decompressDCtx(dctx, buf, (size_t)h.raw_size, h.payload, h.payload_len);
		if (ZSTD_isError(n) || n != h.raw_size) {
			rc = art_error_set(AF_ECORRUPT, "blob %.16s...: corrupt zstd data: %s", hex,
					   ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
			goto cleanup;
		}
	}
	art_sha256_hex(buf, (size_t)h.raw_size, got);
	if (strcmp(got, hex) != 0) {
		rc = art_error_set(AF_ECORRUPT, "blob %.16s...: its bytes hash to %.16s..., not to "
				   "its key", hex, got);
		goto cleanup;
	}
	*out = buf;
	*out_len = (size_t)h.raw_size;
	buf = NULL;
	rc = 0;
cleanup:
	ZSTD_freeDCtx(dctx);
	free(buf);
	return rc;
}

static int blob_read(const art_store *s, MDB_txn *txn, const char *hex, uint8_t **out,
		     size_t *out_len)
{
	MDB_val k = mval(hex, ART_SHA256_HEX_LEN), v;
	int mrc = mdb_get(txn, s->dbi[DB_BLOBS], &k, &v);

	*out = NULL;
	*out_len = 0;
	if (mrc == MDB_NOTFOUND)
		return art_error_set(AF_ENOTFOUND, "blob %.16s... is not in the store", hex);
	if (mrc)
		return lmdb_error(s, mrc, "cannot read a blob");
	return blob_decode(s, txn, hex, &v, out, out_len);
}

int art_store_get_blob(uint8_t **out, size_t *out_len, const art_store *s,
		       const char *digest_hex)
{
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!hex_valid(digest_hex))
		return art_error_set(AF_EINVAL, "a blob digest is 64 lower-case hex digits");
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	rc = blob_read(s, txn, digest_hex, out, out_len);
	txn_close(s, txn);
	return rc;
}

int art_store_blob_info(art_blob_info *out, const art_store *s, const char *digest_hex)
{
	MDB_val k, v;
	MDB_txn *txn;
	blob_header h;
	int mrc, rc;

	memset(out, 0, sizeof(*out));
	if (!hex_valid(digest_hex))
		return art_error_set(AF_EINVAL, "a blob digest is 64 lower-case hex digits");
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	k = mval(digest_hex, ART_SHA256_HEX_LEN);
	mrc = mdb_get(txn, s->dbi[DB_BLOBS], &k, &v);
	if (mrc == MDB_NOTFOUND)
		rc = art_error_set(AF_ENOTFOUND, "blob %.16s... is not in the store", digest_hex);
	else if (mrc)
		rc = lmdb_error(s, mrc, "cannot read a blob");
	else if ((rc = header_parse(&h, digest_hex, &v)) == 0) {
		out->raw_size = h.raw_size;
		out->stored_size = v.mv_size;
		out->dict_id = h.dict_id;
		out->compressed = h.format == BLOB_ZSTD;
	}
	txn_close(s, txn);
	return rc;
}

/* ---- artifact records ---------------------------------------------------- */

typedef struct record_view {
	const char *manifest;
	size_t manifest_len;
	const char *envelope;
	size_t envelope_len;
} record_view;

static int record_parse(record_view *r, const char *ref, const MDB_val *v)
{
	const uint8_t *p = v->mv_data;
	uint32_t mlen, elen;

	if (v->mv_size < RECORD_HEADER || p[0] != RECORD_VERSION)
		return art_error_set(AF_ECORRUPT, "%s: damaged artifact record", ref);
	mlen = get_le32(p + 1);
	elen = get_le32(p + 5);
	if (mlen > ART_MANIFEST_MAX || elen > ART_SIG_ENVELOPE_MAX ||
	    (uint64_t)RECORD_HEADER + mlen + elen != v->mv_size)
		return art_error_set(AF_ECORRUPT, "%s: damaged artifact record (lengths)", ref);
	r->manifest = (const char *)p + RECORD_HEADER;
	r->manifest_len = mlen;
	r->envelope = r->manifest + mlen;
	r->envelope_len = elen;
	return 0;
}

static int get_record(const art_store *s, MDB_txn *txn, const char *ref, record_view *r)
{
	MDB_val k = sval(ref), v;
	int mrc = mdb_get(txn, s->dbi[DB_ARTIFACTS], &k, &v);

	if (mrc == MDB_NOTFOUND)
		return art_error_set(AF_ENOTFOUND, "%s is not in the store", ref);
	if (mrc)
		return lmdb_error(s, mrc, "cannot read an artifact");
	return record_parse(r, ref, &v);
}

/* Latest version of name, copied into out. */
static int latest_version(const art_store *s, MDB_txn *txn, const char *name, char *out,
			  size_t out_size)
{
	MDB_val k = sval(name), v;
	int mrc;

	if (!art_manifest_name_valid(name))
		return art_error_set(AF_EINVAL, "invalid agent name '%.80s'", name ? name : "");
	mrc = mdb_get(txn, s->dbi[DB_NAMES], &k, &v);
	if (mrc == MDB_NOTFOUND)
		return art_error_set(AF_ENOTFOUND, "no artifact named '%s' in the store", name);
	if (mrc)
		return lmdb_error(s, mrc, "cannot read the names index");
	if (v.mv_size == 0 || v.mv_size >= out_size)
		return art_error_set(AF_ECORRUPT, "names index entry of '%s' is damaged", name);
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	return 0;
}

/* "name@version" for (name, version or latest). */
static int resolve_ref(const art_store *s, MDB_txn *txn, const char *name, const char *version,
		       char ref[REF_MAX])
{
	char latest[REF_MAX];
	int rc;

	if (!version) {
		if ((rc = latest_version(s, txn, name, latest, sizeof(latest))) < 0)
			return rc;
		version = latest;
	}
	return make_ref(ref, name, version);
}

int art_store_get_artifact(art_store_record **out, const art_store *s, const char *name,
			   const char *version)
{
	art_store_record *r = NULL;
	char ref[REF_MAX];
	record_view view;
	MDB_txn *txn;
	char *at;
	int rc;

	*out = NULL;
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((rc = resolve_ref(s, txn, name, version, ref)) < 0 ||
	    (rc = get_record(s, txn, ref, &view)) < 0)
		goto cleanup;
	if (!(r = calloc(1, sizeof(*r))) || !(r->name = strdup(ref)) ||
	    !(r->manifest = malloc(view.manifest_len + 1)) ||
	    !(r->envelope = malloc(view.envelope_len + 1))) {
		rc = art_error_set(AF_ENOMEM, "out of memory reading an artifact");
		goto cleanup;
	}
	at = strchr(r->name, '@');
	*at = '\0';
	r->version = at + 1;
	memcpy(r->manifest, view.manifest, view.manifest_len);
	r->manifest[view.manifest_len] = '\0';
	r->manifest_len = view.manifest_len;
	memcpy(r->envelope, view.envelope, view.envelope_len);
	r->envelope[view.envelope_len] = '\0';
	r->envelope_len = view.envelope_len;
	art_manifest_digest(r->manifest_digest, r->manifest, r->manifest_len);
	*out = r;
	r = NULL;
	rc = 0;
cleanup:
	txn_close(s, txn);
	art_store_record_free(r);
	return rc;
}

void art_store_record_free(art_store_record *r)
{
	if (!r)
		return;
	free(r->name); /* version points into the same allocation */
	free(r->manifest);
	free(r->envelope);
	free(r);
}

static int cmp_entry(const void *x, const void *y)
{
	const art_store_entry *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : art_manifest_version_cmp(a->version, b->version);
}

int art_store_list(art_store_entry **out, size_t *n, const art_store *s)
{
	art_store_entry *list = NULL, *grown, *e;
	size_t count = 0, cap = 0;
	char latest[REF_MAX];
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	record_view view;
	char *at;
	int mrc, rc;

	*out = NULL;
	*n = 0;
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, s->dbi[DB_ARTIFACTS], &cur)) != 0) {
		rc = lmdb_error(s, mrc, "cannot list artifacts");
		goto cleanup;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(grown = realloc(list, cap * sizeof(*list)))) {
				rc = art_error_set(AF_ENOMEM, "out of memory listing artifacts");
				goto cleanup;
			}
			list = grown;
		}
		e = &list[count];
		memset(e, 0, sizeof(*e));
		if (!(e->name = strndup(k.mv_data, k.mv_size))) {
			rc = art_error_set(AF_ENOMEM, "out of memory listing artifacts");
			goto cleanup;
		}
		count++;
		/* A listing is not a verification: show damaged entries as they are. */
		at = strchr(e->name, '@');
		if (at) {
			*at = '\0';
			e->version = at + 1;
		} else {
			e->version = e->name + strlen(e->name);
		}
		if (record_parse(&view, e->name, &v) == 0)
			art_manifest_digest(e->manifest_digest, view.manifest, view.manifest_len);
		e->latest = art_manifest_name_valid(e->name) &&
			    latest_version(s, txn, e->name, latest, sizeof(latest)) == 0 &&
			    strcmp(latest, e->version) == 0;
	}
	if (mrc != MDB_NOTFOUND) {
		rc = lmdb_error(s, mrc, "cannot list artifacts");
		goto cleanup;
	}
	art_error_clear();
	if (count > 1)
		qsort(list, count, sizeof(*list), cmp_entry);
	*out = list;
	*n = count;
	list = NULL;
	count = 0;
	rc = 0;
cleanup:
	mdb_cursor_close(cur);
	txn_close(s, txn);
	art_store_list_free(list, count);
	return rc;
}

void art_store_list_free(art_store_entry *entries, size_t n)
{
	size_t i;

	for (i = 0; entries && i < n; i++)
		free(entries[i].name); /* version points into it */
	free(entries);
}

int art_store_latest(char **out, const art_store *s, const char *name)
{
	char version[REF_MAX];
	MDB_txn *txn;
	int rc;

	*out = NULL;
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	rc = latest_version(s, txn, name, version, sizeof(version));
	txn_close(s, txn);
	if (rc == 0 && !(*out = strdup(version)))
		rc = art_error_set(AF_ENOMEM, "out of memory");
	return rc;
}

void art_store_cache_key(char out[ART_SHA256_HEX_LEN + 1], const char *resolved_digest,
			 const char *toolchain_id)
{
	art_buf b = ART_BUF_INIT;
	char text[2048];
	size_t rlen = strlen(resolved_digest), tlen = strlen(toolchain_id);

	/* Without allocating: the key must not depend on whether memory was
	 * short (a digest is 71 characters, a toolchain id at most 512). */
	if (rlen + 1 + tlen <= sizeof(text)) {
		memcpy(text, resolved_digest, rlen);
		text[rlen] = '\n';
		memcpy(text + rlen + 1, toolchain_id, tlen);
		art_sha256_hex(text, rlen + 1 + tlen, out);
		return;
	}
	/* Longer than any manifest allows; on OOM hash the digest alone (a key
	 * no stored build has: the lookup misses). */
	if (art_buf_puts(&b, resolved_digest) == 0 && art_buf_puts(&b, "\n") == 0 &&
	    art_buf_puts(&b, toolchain_id) == 0) {
		art_sha256_hex(b.data, b.len, out);
	} else {
		art_sha256_hex(resolved_digest, strlen(resolved_digest), out);
	}
	art_buf_free(&b);
}

int art_store_cache_lookup(char **out_name, char **out_version, const art_store *s,
			   const char *resolved_digest, const char *toolchain_id)
{
	char key[ART_SHA256_HEX_LEN + 1], ref[REF_MAX];
	art_manifest *m = NULL;
	record_view view;
	MDB_txn *txn;
	MDB_val k, v;
	int mrc, rc;

	*out_name = NULL;
	*out_version = NULL;
	art_store_cache_key(key, resolved_digest, toolchain_id);
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	k = sval(key);
	mrc = mdb_get(txn, s->dbi[DB_CACHE], &k, &v);
	if (mrc || v.mv_size == 0 || v.mv_size >= REF_MAX) {
		rc = art_error_set(AF_ENOTFOUND, "no cached build for %.80s", resolved_digest);
		goto cleanup;
	}
	memcpy(ref, v.mv_data, v.mv_size);
	ref[v.mv_size] = '\0';
	rc = get_record(s, txn, ref, &view);
	if (rc == 0)
		rc = art_manifest_parse(&m, view.manifest, view.manifest_len);
	if (rc == AF_ENOMEM)
		goto cleanup; /* not a cache miss */
	if (rc < 0 || strcmp(m->resolved_template_digest, resolved_digest) != 0 ||
	    strcmp(m->toolchain_id, toolchain_id) != 0) {
		rc = art_error_set(AF_ENOTFOUND, "no cached build for %.80s", resolved_digest);
		goto cleanup;
	}
	if (!(*out_name = strdup(m->name)) || !(*out_version = strdup(m->version))) {
		free(*out_name);
		*out_name = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	txn_close(s, txn);
	art_manifest_free(m);
	return rc;
}

/* ---- verification -------------------------------------------------------- */

static bool wanted(const char *part, const char *const *names, size_t n, bool all)
{
	size_t i;

	if (all)
		return true;
	for (i = 0; i < n; i++)
		if (strcmp(names[i], part) == 0)
			return true;
	return false;
}

/*
 * Verify the artifact stored under ref in txn. With va non-NULL, fill it
 * with the manifest and the selected parts (all when names is NULL).
 * Messages are prefixed with ref.
 */
static int verify_ref(const art_store *s, MDB_txn *txn, const char *ref, const art_keyring *kr,
		      time_t now, art_verified_artifact *va, const char *const *names,
		      size_t n_names)
{
	char expect[REF_MAX];
	art_manifest *m = NULL;
	art_sig_info signer;
	record_view view;
	uint8_t *data = NULL;
	size_t len, i;
	bool all = names == NULL;
	int rc;

	if ((rc = get_record(s, txn, ref, &view)) < 0)
		return rc;
	rc = art_manifest_verify_signed(&m, &signer, kr, view.manifest, view.manifest_len,
					view.envelope, view.envelope_len, now);
	if (rc < 0)
		return with_ref(rc, ref);
	snprintf(expect, sizeof(expect), "%s@%s", m->name, m->version);
	if (strcmp(expect, ref) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "%s: the signed manifest is for %s (moved or "
				   "swapped in the store)", ref, expect);
		goto cleanup;
	}
	for (i = 0; !all && i < n_names; i++) {
		if (art_manifest_part_get(m, names[i]))
			continue;
		if (!strncmp(names[i], ART_PART_NATIVE_PREFIX, 7))
			rc = art_error_set(AF_EVERSION, "%s: no native part '%s' (built for "
					   "compatibility id '%.200s'); rebuild it for this runtime",
					   ref, names[i], m->native_compat_id);
		else
			rc = art_error_set(AF_ENOTFOUND, "%s: no part '%.60s'", ref, names[i]);
		goto cleanup;
	}
	if (va) {
		size_t n = all ? m->n_parts : n_names;

		if (n && !(va->parts = calloc(n, sizeof(*va->parts)))) {
			rc = art_error_set(AF_ENOMEM, "out of memory loading %s", ref);
			goto cleanup;
		}
	}
	for (i = 0; i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];

		if (!wanted(p->name, names, n_names, all))
			continue;
		rc = blob_read(s, txn, p->digest + 7, &data, &len);
		if (rc == AF_ENOTFOUND)
			rc = art_error_set(AF_ECORRUPT, "blob %.23s... is missing from the store",
					   p->digest);
		if (rc < 0) {
			char where[REF_MAX + ART_PART_NAME_MAX + 16];

			snprintf(where, sizeof(where), "%s: part '%s'", ref, p->name);
			rc = with_ref(rc, where);
			goto cleanup;
		}
		if ((rc = art_manifest_check_part(p, data, len)) < 0) {
			rc = with_ref(rc, ref);
			goto cleanup;
		}
		if (va) {
			va->parts[va->n_parts].part = p;
			va->parts[va->n_parts].data = data;
			va->parts[va->n_parts++].size = len;
		} else {
			free(data);
		}
		data = NULL;
	}
	if (va) {
		va->signer = signer;
		va->manifest = m;
		m = NULL;
		if (!(va->manifest_json = malloc(view.manifest_len + 1))) {
			rc = art_error_set(AF_ENOMEM, "out of memory loading %s", ref);
			goto cleanup;
		}
		memcpy(va->manifest_json, view.manifest, view.manifest_len);
		va->manifest_json[view.manifest_len] = '\0';
		va->manifest_len = view.manifest_len;
		art_manifest_digest(va->manifest_digest, view.manifest, view.manifest_len);
	}
	rc = 0;
cleanup:
	free(data);
	art_manifest_free(m);
	return rc;
}

/* The attestation stored with ref, borrowed from txn; AF_ENOTFOUND if none. */
static int get_attestation(const art_store *s, MDB_txn *txn, const char *ref, MDB_val *v)
{
	MDB_val k = sval(ref);
	int mrc;

	if (!s->has_attest)
		return AF_ENOTFOUND;
	mrc = mdb_get(txn, s->dbi[DB_ATTEST], &k, v);
	if (mrc == MDB_NOTFOUND)
		return AF_ENOTFOUND;
	if (mrc)
		return lmdb_error(s, mrc, "cannot read an attestation");
	if (v->mv_size == 0 || v->mv_size > ART_SIG_ENVELOPE_MAX)
		return art_error_set(AF_ECORRUPT, "%s: damaged attestation record", ref);
	return 0;
}

/* After verify_ref succeeded: the provenance attestation, when there is one. */
static int verify_attestation_ref(const art_store *s, MDB_txn *txn, const char *ref,
				  const art_keyring *kr, time_t now)
{
	art_manifest *m = NULL;
	record_view view;
	MDB_val v;
	int rc;

	rc = get_attestation(s, txn, ref, &v);
	if (rc == AF_ENOTFOUND)
		return 0; /* built before attestations: the manifest signature still covers all */
	if (rc < 0)
		return rc;
	if ((rc = get_record(s, txn, ref, &view)) < 0 ||
	    (rc = art_manifest_parse(&m, view.manifest, view.manifest_len)) < 0)
		return with_ref(rc, ref);
	rc = art_attest_verify_provenance(NULL, NULL, NULL, kr, m, v.mv_data, v.mv_size, now);
	art_manifest_free(m);
	return rc < 0 ? with_ref(rc, ref) : 0;
}

int art_store_get_attestation(char **out, size_t *out_len, const art_store *s, const char *name,
			      const char *version)
{
	char ref[REF_MAX];
	MDB_txn *txn;
	MDB_val v;
	int rc;

	*out = NULL;
	*out_len = 0;
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((rc = resolve_ref(s, txn, name, version, ref)) < 0)
		goto cleanup;
	rc = get_attestation(s, txn, ref, &v);
	if (rc == AF_ENOTFOUND) {
		rc = art_error_set(AF_ENOTFOUND, "%s has no provenance attestation (built by an "
				   "older version, or imported from a bundle without one): "
				   "rebuild it to get one", ref);
		goto cleanup;
	}
	if (rc < 0)
		goto cleanup;
	if (!(*out = malloc(v.mv_size + 1))) {
		rc = art_error_set(AF_ENOMEM, "out of memory reading an attestation");
		goto cleanup;
	}
	memcpy(*out, v.mv_data, v.mv_size);
	(*out)[v.mv_size] = '\0';
	*out_len = v.mv_size;
cleanup:
	txn_close(s, txn);
	return rc;
}

typedef struct verify_result {
	char *ref;
	char *reason;
	int rc;
} verify_result;

int art_store_verify_all(const art_store *s, const art_keyring *kr, time_t now,
			 art_store_verify_cb cb, void *ctx, size_t *n_ok, size_t *n_failed)
{
	verify_result *results = NULL, *grown;
	size_t count = 0, cap = 0, ok = 0, failed = 0, i;
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	char ref[REF_MAX];
	int mrc, rc;

	if (n_ok)
		*n_ok = 0;
	if (n_failed)
		*n_failed = 0;
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, s->dbi[DB_ARTIFACTS], &cur)) != 0) {
		rc = lmdb_error(s, mrc, "cannot list artifacts");
		goto cleanup;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int one;

		snprintf(ref, sizeof(ref), "%.*s", (int)(k.mv_size < REF_MAX - 1 ? k.mv_size
								    : REF_MAX - 1),
			 (const char *)k.mv_data);
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(grown = realloc(results, cap * sizeof(*results)))) {
				rc = art_error_set(AF_ENOMEM, "out of memory verifying");
				goto cleanup;
			}
			results = grown;
		}
		if (k.mv_size >= REF_MAX || memchr(k.mv_data, '\0', k.mv_size))
			one = art_error_set(AF_ECORRUPT, "%s: malformed artifact key", ref);
		else
			one = verify_ref(s, txn, ref, kr, now, NULL, NULL, 0);
		if (one == 0)
			one = verify_attestation_ref(s, txn, ref, kr, now);
		if (one == AF_ENOMEM) {
			rc = one; /* not a verdict on the artifact */
			goto cleanup;
		}
		results[count].rc = one;
		results[count].ref = strdup(ref);
		{
			/* The callback gets name and version: drop the "ref: " prefix. */
			const char *reason = one ? art_error_last() : "";
			size_t rl = strlen(ref);

			if (!strncmp(reason, ref, rl) && reason[rl] == ':' && reason[rl + 1] == ' ')
				reason += rl + 2;
			results[count].reason = strdup(reason);
		}
		count++;
		if (!results[count - 1].ref || !results[count - 1].reason) {
			rc = art_error_set(AF_ENOMEM, "out of memory verifying");
			goto cleanup;
		}
		if (one)
			failed++;
		else
			ok++;
	}
	if (mrc != MDB_NOTFOUND) {
		rc = lmdb_error(s, mrc, "cannot list artifacts");
		goto cleanup;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	txn_close(s, txn);
	txn = NULL;
	/* Callbacks run outside the transaction: they may use the store. */
	for (i = 0; cb && i < count; i++) {
		char *at = strchr(results[i].ref, '@');
		const char *version = "";

		if (at) {
			*at = '\0';
			version = at + 1;
		}
		cb(ctx, results[i].ref, version, results[i].rc, results[i].reason);
	}
	if (n_ok)
		*n_ok = ok;
	if (n_failed)
		*n_failed = failed;
	rc = failed ? art_error_set(AF_ESIGNATURE, "%zu of %zu artifacts failed verification",
				    failed, count)
		    : 0;
cleanup:
	mdb_cursor_close(cur);
	txn_close(s, txn);
	for (i = 0; i < count; i++) {
		free(results[i].ref);
		free(results[i].reason);
	}
	free(results);
	return rc;
}

int art_store_load_verified_parts(art_verified_artifact **out, const art_store *s,
				  const art_keyring *kr, const char *name, const char *version,
				  time_t now, const char *const *parts, size_t n_parts)
{
	art_verified_artifact *va = NULL;
	char ref[REF_MAX];
	MDB_txn *txn;
	int rc;

	*out = NULL;
	if (!kr)
		return art_error_set(AF_EINVAL, "a keyring is required to load an artifact");
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((rc = resolve_ref(s, txn, name, version, ref)) < 0)
		goto cleanup;
	if (!(va = calloc(1, sizeof(*va)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory loading %s", ref);
		goto cleanup;
	}
	if ((rc = verify_ref(s, txn, ref, kr, now, va, parts ? parts : NULL,
			     parts ? n_parts : 0)) < 0)
		goto cleanup;
	*out = va;
	va = NULL;
cleanup:
	txn_close(s, txn);
	art_verified_artifact_free(va);
	return rc;
}

int art_store_load_verified(art_verified_artifact **out, const art_store *s,
			    const art_keyring *kr, const char *name, const char *version,
			    time_t now)
{
	return art_store_load_verified_parts(out, s, kr, name, version, now, NULL, 0);
}

const art_verified_part *art_verified_part_get(const art_verified_artifact *va,
					       const char *name)
{
	size_t i;

	for (i = 0; va && name && i < va->n_parts; i++)
		if (strcmp(va->parts[i].part->name, name) == 0)
			return &va->parts[i];
	return NULL;
}

void art_verified_artifact_free(art_verified_artifact *va)
{
	size_t i;

	if (!va)
		return;
	for (i = 0; i < va->n_parts; i++)
		free(va->parts[i].data);
	free(va->parts);
	art_manifest_free(va->manifest);
	free(va->manifest_json);
	free(va);
}

/* ---- statistics ---------------------------------------------------------- */

static int counters_read(const art_store *s, MDB_txn *txn, store_counters *c)
{
	MDB_val k = sval(META_STATS), v;
	json_t *root;
	int mrc;

	memset(c, 0, sizeof(*c));
	mrc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lmdb_error(s, mrc, "cannot read the store statistics");
	root = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return art_error_set(AF_ECORRUPT, "store %s: damaged statistics record", s->path);
	}
	c->blobs = (uint64_t)json_integer_value(json_object_get(root, "blobs"));
	c->raw_bytes = (uint64_t)json_integer_value(json_object_get(root, "raw_bytes"));
	c->stored_bytes = (uint64_t)json_integer_value(json_object_get(root, "stored_bytes"));
	json_decref(root);
	return 0;
}

static int current_dict_id(const art_store *s, MDB_txn *txn, uint32_t *id)
{
	MDB_val k = sval(META_DICT_CURRENT), v;
	char buf[16];
	char *end;
	int mrc;

	*id = 0;
	mrc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lmdb_error(s, mrc, "cannot read the current dictionary");
	if (v.mv_size != 8)
		return art_error_set(AF_ECORRUPT, "store %s: damaged dictionary record", s->path);
	memcpy(buf, v.mv_data, 8);
	buf[8] = '\0';
	*id = (uint32_t)strtoul(buf, &end, 16);
	if (*end || *id == 0)
		return art_error_set(AF_ECORRUPT, "store %s: damaged dictionary record", s->path);
	return 0;
}

int art_store_stats_get(art_store_stats *out, const art_store *s)
{
	store_counters c;
	MDB_envinfo info;
	MDB_stat st;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int mrc, rc;

	memset(out, 0, sizeof(*out));
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((rc = counters_read(s, txn, &c)) < 0 || (rc = current_dict_id(s, txn, &out->dict_id)) < 0)
		goto cleanup;
	out->blobs = c.blobs;
	out->raw_bytes = c.raw_bytes;
	out->stored_bytes = c.stored_bytes;
	if ((mrc = mdb_stat(txn, s->dbi[DB_ARTIFACTS], &st)) != 0) {
		rc = lmdb_error(s, mrc, "cannot read statistics");
		goto cleanup;
	}
	out->artifacts = st.ms_entries;
	if ((mrc = mdb_stat(txn, s->dbi[DB_NAMES], &st)) != 0) {
		rc = lmdb_error(s, mrc, "cannot read statistics");
		goto cleanup;
	}
	out->names = st.ms_entries;
	if ((mrc = mdb_cursor_open(txn, s->dbi[DB_META], &cur)) != 0) {
		rc = lmdb_error(s, mrc, "cannot read statistics");
		goto cleanup;
	}
	k = sval(META_DICT_PREFIX);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < 5 || memcmp(k.mv_data, META_DICT_PREFIX, 5) != 0)
			break;
		out->dicts++;
	}
	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &st);
	out->map_size = info.me_mapsize;
	out->map_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	rc = 0;
cleanup:
	mdb_cursor_close(cur);
	txn_close(s, txn);
	return rc;
}

/* ---- writing: the batch -------------------------------------------------- */

int art_store_txn_begin(art_store_txn **out, art_store *s)
{
	art_store_txn *t;

	*out = NULL;
	if (s->flags & ART_STORE_RDONLY)
		return art_error_set(AF_EDENIED, "store %s was opened read-only", s->path);
	if (!(t = calloc(1, sizeof(*t))))
		return art_error_set(AF_ENOMEM, "out of memory starting a batch");
	t->s = s;
	t->auto_dict = true;
	*out = t;
	return 0;
}

void art_store_txn_set_auto_dict(art_store_txn *txn, bool enable)
{
	txn->auto_dict = enable;
}

void art_store_txn_abort(art_store_txn *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_blobs; i++) {
		free(t->blobs[i].raw);
		free(t->blobs[i].stored);
	}
	free(t->blobs);
	for (i = 0; i < t->n_arts; i++) {
		art_manifest_free(t->arts[i].manifest);
		free(t->arts[i].manifest_json);
		free(t->arts[i].envelope);
		free(t->arts[i].attestation);
	}
	free(t->arts);
	for (i = 0; i < t->n_hooks; i++)
		if (t->hooks[i].free_ctx)
			t->hooks[i].free_ctx(t->hooks[i].ctx);
	if (t->last.free_ctx)
		t->last.free_ctx(t->last.ctx);
	free(t->dict);
	free(t);
}

static pending_blob *batch_find_blob(art_store_txn *t, const char *hex)
{
	size_t i;

	for (i = 0; i < t->n_blobs; i++)
		if (memcmp(t->blobs[i].hex, hex, ART_SHA256_HEX_LEN) == 0)
			return &t->blobs[i];
	return NULL;
}

/* Whether the store already has blob hex (AF_ENOTFOUND if not). */
static int store_has_blob(const art_store *s, const char *hex)
{
	MDB_val k = mval(hex, ART_SHA256_HEX_LEN), v;
	MDB_txn *txn;
	int mrc, rc;

	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	mrc = mdb_get(txn, s->dbi[DB_BLOBS], &k, &v);
	txn_close(s, txn);
	if (mrc == MDB_NOTFOUND)
		return AF_ENOTFOUND;
	return mrc ? lmdb_error(s, mrc, "cannot read a blob") : 0;
}

int art_store_put_blob(art_store_txn *t, const void *data, size_t len,
		       char out_digest_hex[ART_SHA256_HEX_LEN + 1])
{
	char hex[ART_SHA256_HEX_LEN + 1];
	pending_blob *grown, *b;
	int rc;

	if (len > ART_BLOB_MAX)
		return art_error_set(AF_ETOOBIG, "a blob of %zu bytes is over the limit (%u)", len,
				     ART_BLOB_MAX);
	art_sha256_hex(data, len, hex);
	if (out_digest_hex)
		memcpy(out_digest_hex, hex, sizeof(hex));
	if (batch_find_blob(t, hex))
		return 0;
	rc = store_has_blob(t->s, hex);
	if (rc != AF_ENOTFOUND)
		return rc; /* 0: already stored, nothing to do */
	art_error_clear();
	if (t->queued_bytes + len > ART_STORE_BATCH_MAX)
		return art_error_set(AF_ETOOBIG, "the batch would exceed %llu bytes; commit more "
				     "often", (unsigned long long)ART_STORE_BATCH_MAX);
	if (t->n_blobs == t->cap_blobs) {
		size_t cap = t->cap_blobs ? t->cap_blobs * 2 : 32;

		if (!(grown = realloc(t->blobs, cap * sizeof(*grown))))
			return art_error_set(AF_ENOMEM, "out of memory queuing a blob");
		t->blobs = grown;
		t->cap_blobs = cap;
	}
	b = &t->blobs[t->n_blobs];
	memset(b, 0, sizeof(*b));
	if (!(b->raw = malloc(len ? len : 1)))
		return art_error_set(AF_ENOMEM, "out of memory queuing a blob");
	memcpy(b->raw, data, len);
	b->len = len;
	memcpy(b->hex, hex, sizeof(hex));
	t->n_blobs++;
	t->queued_bytes += len;
	return 0;
}

/* The envelope's payload must be exactly bytes, and of the manifest type. */
static int envelope_carries(const char *envelope, size_t envelope_len, const char *bytes,
			    size_t len)
{
	json_t *root = NULL;
	const char *type, *payload;
	uint8_t *decoded = NULL;
	size_t decoded_len = 0;
	int rc = AF_EINVAL;

	if (envelope_len > ART_SIG_ENVELOPE_MAX)
		return art_error_set(AF_EINVAL, "the manifest envelope is over %u bytes",
				     ART_SIG_ENVELOPE_MAX);
	root = json_loadb(envelope, envelope_len, JSON_REJECT_DUPLICATES, NULL);
	type = json_string_value(json_object_get(root, "payloadType"));
	payload = json_string_value(json_object_get(root, "payload"));
	if (!type || !payload) {
		art_error_set(rc, "the manifest envelope is not a DSSE envelope");
		goto cleanup;
	}
	if (strcmp(type, ART_MANIFEST_PAYLOAD_TYPE) != 0) {
		art_error_set(rc, "the envelope's payload type is '%.80s', not %s", type,
			      ART_MANIFEST_PAYLOAD_TYPE);
		goto cleanup;
	}
	if (art_base64_decode(&decoded, &decoded_len, payload) == AF_ENOMEM) {
		rc = AF_ENOMEM; /* not the envelope's fault (art_base64_decode set the message) */
		goto cleanup;
	}
	if (!decoded || decoded_len != len || memcmp(decoded, bytes, len) != 0) {
		art_error_set(rc, "the envelope does not carry this manifest's canonical bytes");
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(decoded);
	json_decref(root);
	return rc;
}

int art_store_put_artifact(art_store_txn *t, const art_manifest *m, const char *envelope,
			   size_t envelope_len)
{
	return art_store_put_artifact_ex(t, m, envelope, envelope_len, NULL, 0);
}

int art_store_put_artifact_ex(art_store_txn *t, const art_manifest *m, const char *envelope,
			      size_t envelope_len, const char *attestation,
			      size_t attestation_len)
{
	pending_artifact *grown, *a;
	char *bytes = NULL, ref[REF_MAX];
	size_t len = 0, i;
	art_manifest *copy = NULL;
	char *env_copy = NULL, *att_copy = NULL;
	int rc;

	if (attestation && attestation_len) {
		json_t *root = attestation_len <= ART_SIG_ENVELOPE_MAX
				       ? json_loadb(attestation, attestation_len, 0, NULL)
				       : NULL;
		const char *type = json_string_value(json_object_get(root, "payloadType"));
		bool ok = type && strcmp(type, ART_SIG_TYPE_INTOTO) == 0;

		json_decref(root);
		if (!ok)
			return art_error_set(AF_EINVAL, "the attestation is not a DSSE envelope of "
					     "type %s (at most %u bytes)", ART_SIG_TYPE_INTOTO,
					     ART_SIG_ENVELOPE_MAX);
		if (!(att_copy = malloc(attestation_len + 1)))
			return art_error_set(AF_ENOMEM, "out of memory queuing an artifact");
		memcpy(att_copy, attestation, attestation_len);
		att_copy[attestation_len] = '\0';
	}
	if ((rc = art_manifest_serialize(&bytes, &len, m)) < 0)
		goto fail;
	if ((rc = envelope_carries(envelope, envelope_len, bytes, len)) < 0)
		goto fail;
	snprintf(ref, sizeof(ref), "%s@%s", m->name, m->version);
	for (i = 0; i < t->n_arts; i++)
		if (strcmp(t->arts[i].ref, ref) == 0) {
			rc = art_error_set(AF_EEXISTS, "%s is already in this batch", ref);
			goto fail;
		}
	if ((rc = art_manifest_parse(&copy, bytes, len)) < 0)
		goto fail;
	rc = AF_ENOMEM;
	if (!(env_copy = malloc(envelope_len + 1)))
		goto fail;
	memcpy(env_copy, envelope, envelope_len);
	env_copy[envelope_len] = '\0';
	if (t->n_arts == t->cap_arts) {
		size_t cap = t->cap_arts ? t->cap_arts * 2 : 16;

		if (!(grown = realloc(t->arts, cap * sizeof(*grown))))
			goto fail;
		t->arts = grown;
		t->cap_arts = cap;
	}
	a = &t->arts[t->n_arts++];
	memcpy(a->ref, ref, sizeof(ref));
	a->manifest = copy;
	a->manifest_json = bytes;
	a->manifest_len = len;
	a->envelope = env_copy;
	a->envelope_len = envelope_len;
	a->attestation = att_copy;
	a->attestation_len = att_copy ? attestation_len : 0;
	return 0;
fail:
	if (rc == AF_ENOMEM)
		art_error_set(rc, "out of memory queuing an artifact");
	art_manifest_free(copy);
	free(env_copy);
	free(att_copy);
	free(bytes);
	return rc;
}

int art_store_put_build(art_store_txn *txn, art_manifest **out, const art_manifest_info *info,
			const art_provenance_info *prov, const art_build_parts *parts,
			const art_key *builder)
{
	return art_store_put_build_ex(txn, out, info, prov, NULL, parts, builder);
}

int art_store_put_build_ex(art_store_txn *txn, art_manifest **out, const art_manifest_info *info,
			   const art_provenance_info *prov, const art_provenance_extra *extra,
			   const art_build_parts *parts, const art_key *builder)
{
	char wasm[ART_SHA256_HEX_LEN + 1], native[ART_SHA256_HEX_LEN + 1],
		source[ART_SHA256_HEX_LEN + 1], provd[ART_SHA256_HEX_LEN + 1],
		sbomd[ART_SHA256_HEX_LEN + 1];
	char *provenance = NULL, *bytes = NULL, *envelope = NULL, *sbom = NULL,
	     *attestation = NULL;
	size_t provenance_len = 0, len = 0, sbom_len = 0;
	art_manifest *m = NULL;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = art_manifest_new(&m, info)) < 0 ||
	    (rc = art_store_put_blob(txn, parts->wasm, parts->wasm_len, wasm)) < 0 ||
	    (rc = art_store_put_blob(txn, parts->native, parts->native_len, native)) < 0 ||
	    (rc = art_store_put_blob(txn, parts->source, parts->source_len, source)) < 0 ||
	    (rc = art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, wasm,
					parts->wasm_len)) < 0 ||
	    (rc = art_manifest_add_native(m, info->native_compat_id, native,
					  parts->native_len)) < 0 ||
	    (rc = art_manifest_add_part(m, ART_PART_SOURCE, ART_MEDIA_SOURCE, source,
					parts->source_len)) < 0 ||
	    (rc = art_attest_sbom(&sbom, &sbom_len, m, extra)) < 0 ||
	    (rc = art_store_put_blob(txn, sbom, sbom_len, sbomd)) < 0 ||
	    (rc = art_manifest_add_part(m, ART_PART_SBOM, ART_MEDIA_SBOM, sbomd, sbom_len)) < 0 ||
	    (rc = art_manifest_provenance_ex(&provenance, &provenance_len, m, prov, extra)) < 0 ||
	    (rc = art_store_put_blob(txn, provenance, provenance_len, provd)) < 0 ||
	    (rc = art_manifest_add_part(m, ART_PART_PROVENANCE, ART_MEDIA_PROVENANCE, provd,
					provenance_len)) < 0 ||
	    (rc = art_manifest_serialize(&bytes, &len, m)) < 0 ||
	    (rc = art_sig_sign_payload(&envelope, builder, ART_MANIFEST_PAYLOAD_TYPE, bytes,
				       len)) < 0 ||
	    (rc = art_attest_sign_provenance(&attestation, builder, provenance, provenance_len,
					     extra)) < 0 ||
	    (rc = art_store_put_artifact_ex(txn, m, envelope, strlen(envelope), attestation,
					    strlen(attestation))) < 0)
		goto cleanup;
	if (out) {
		*out = m;
		m = NULL;
	}
cleanup:
	art_manifest_free(m);
	free(provenance);
	free(sbom);
	free(attestation);
	free(bytes);
	free(envelope);
	return rc;
}

/* ---- dictionaries -------------------------------------------------------- */

/*
 * Train from samples cut into chunks of at most TRAIN_CHUNK bytes, keeping
 * every k-th chunk so that at most TRAIN_MAX bytes go to ZDICT. Deterministic
 * for a given sample order.
 */
static int dict_train(uint8_t **out, size_t *out_len, uint32_t *out_id,
		      const void *const *samples, const size_t *sizes, size_t n)
{
	uint64_t total = 0, chunk_index = 0, stride;
	uint8_t *buf = NULL, *dict = NULL;
	size_t *chunk_sizes = NULL, n_chunks = 0, used = 0, max_chunks, i, off, r;
	int rc;

	*out = NULL;
	*out_len = 0;
	*out_id = 0;
	if (n < ART_STORE_DICT_MIN_SAMPLES)
		return art_error_set(AF_EINVAL, "a dictionary needs at least %u samples (got %zu)",
				     ART_STORE_DICT_MIN_SAMPLES, n);
	for (i = 0; i < n; i++)
		total += sizes[i];
	stride = total > TRAIN_MAX ? (total + TRAIN_MAX - 1) / TRAIN_MAX : 1;
	max_chunks = (size_t)(total / TRAIN_CHUNK) + n + 1;
	if (!(buf = malloc(TRAIN_MAX + TRAIN_CHUNK)) ||
	    !(chunk_sizes = malloc(max_chunks * sizeof(*chunk_sizes))) ||
	    !(dict = malloc(ART_STORE_DICT_SIZE))) {
		rc = art_error_set(AF_ENOMEM, "out of memory training a dictionary");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		for (off = 0; off < sizes[i]; off += TRAIN_CHUNK, chunk_index++) {
			size_t take = sizes[i] - off < TRAIN_CHUNK ? sizes[i] - off : TRAIN_CHUNK;

			if (chunk_index % stride || take < 16 || used + take > TRAIN_MAX + TRAIN_CHUNK ||
			    n_chunks == max_chunks)
				continue;
			memcpy(buf + used, (const uint8_t *)samples[i] + off, take);
			used += take;
			chunk_sizes[n_chunks++] = take;
		}
	}
	if (n_chunks < ART_STORE_DICT_MIN_SAMPLES) {
		rc = art_error_set(AF_EINVAL, "too little sample data to train a dictionary");
		goto cleanup;
	}
	r = ZDICT_trainFromBuffer(dict, ART_STORE_DICT_SIZE, buf, chunk_sizes, (unsigned)n_chunks);
	if (ZDICT_isError(r) || ZDICT_getDictID(dict, r) == 0) {
		rc = art_error_set(AF_EINVAL, "zstd could not train a dictionary: %s",
				   ZDICT_isError(r) ? ZDICT_getErrorName(r) : "no id");
		goto cleanup;
	}
	*out_id = ZDICT_getDictID(dict, r);
	*out_len = r;
	*out = dict;
	dict = NULL;
	rc = 0;
cleanup:
	free(buf);
	free(chunk_sizes);
	free(dict);
	return rc;
}

int art_store_train_dict(art_store_txn *txn, const void *const *samples, const size_t *sizes,
			 size_t n, uint32_t *out_id)
{
	uint8_t *dict;
	size_t len;
	uint32_t id;
	int rc;

	if (out_id)
		*out_id = 0;
	if ((rc = dict_train(&dict, &len, &id, samples, sizes, n)) < 0)
		return rc;
	free(txn->dict);
	txn->dict = dict;
	txn->dict_len = len;
	txn->dict_id = id;
	if (out_id)
		*out_id = id;
	return 0;
}

static int cmp_pending(const void *x, const void *y)
{
	return strcmp(((const pending_blob *)x)->hex, ((const pending_blob *)y)->hex);
}

/* The dictionary this commit compresses with: trained here, or the store's. */
static int commit_dict(art_store_txn *t, uint8_t **dict, size_t *len, uint32_t *id,
		       bool *is_new)
{
	const art_store *s = t->s;
	const void **samples = NULL;
	size_t *sizes = NULL, i;
	char key[32];
	MDB_txn *txn;
	MDB_val k, v;
	int mrc, rc;

	*dict = NULL;
	*len = 0;
	*id = 0;
	*is_new = false;
	if (t->dict) {
		*dict = t->dict;
		*len = t->dict_len;
		*id = t->dict_id;
		t->dict = NULL;
		*is_new = true;
		return 0;
	}
	if ((rc = rd_begin(s, &txn)) < 0)
		return rc;
	if ((rc = current_dict_id(s, txn, id)) == 0 && *id) {
		snprintf(key, sizeof(key), META_DICT_PREFIX "%08x", *id);
		k = sval(key);
		mrc = mdb_get(txn, s->dbi[DB_META], &k, &v);
		if (mrc)
			rc = lmdb_error(s, mrc, "cannot read the current dictionary");
		else if (v.mv_size > DICT_MAX_BYTES || !(*dict = malloc(v.mv_size ? v.mv_size : 1)))
			rc = art_error_set(AF_ENOMEM, "cannot load the current dictionary");
		else {
			memcpy(*dict, v.mv_data, v.mv_size);
			*len = v.mv_size;
		}
	}
	txn_close(s, txn);
	if (rc < 0 || *id || !t->auto_dict || t->n_blobs < ART_STORE_DICT_MIN_SAMPLES)
		return rc;
	/* The first sizeable batch trains the store's first dictionary. */
	if (!(samples = malloc(t->n_blobs * sizeof(*samples))) ||
	    !(sizes = malloc(t->n_blobs * sizeof(*sizes)))) {
		free(samples);
		return art_error_set(AF_ENOMEM, "out of memory training a dictionary");
	}
	for (i = 0; i < t->n_blobs; i++) {
		samples[i] = t->blobs[i].raw;
		sizes[i] = t->blobs[i].len;
	}
	if (dict_train(dict, len, id, samples, sizes, t->n_blobs) == 0)
		*is_new = true;
	else
		art_error_clear(); /* untrainable data: compress without a dictionary */
	free(samples);
	free(sizes);
	return 0;
}

/* ---- compression --------------------------------------------------------- */

typedef struct compress_job {
	pending_blob *blobs;
	size_t n;
	const ZSTD_CDict *cdict;
	atomic_size_t next;
	atomic_int failed;
} compress_job;

static int compress_one(ZSTD_CCtx *cctx, const compress_job *job, pending_blob *b)
{
	size_t bound = ZSTD_compressBound(b->len), n;
	uint8_t *out = malloc(ART_BLOB_HEADER_SIZE + (bound > b->len ? bound : b->len));

	if (!out)
		return -1;
	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
	if (job->cdict)
		n = ZSTD_CCtx_refCDict(cctx, job->cdict);
	else
		n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ART_STORE_ZSTD_LEVEL);
	if (!ZSTD_isError(n))
		n = ZSTD_CCtx_setPledgedSrcSize(cctx, b->len);
	if (!ZSTD_isError(n))
		n = ZSTD_compress2(cctx, out + ART_BLOB_HEADER_SIZE, bound, b->raw, b->len);
	if (ZSTD_isError(n)) {
		free(out);
		return -1;
	}
	if (n < b->len) {
		out[0] = BLOB_ZSTD;
		put_le32(out + 1, ZSTD_getDictID_fromFrame(out + ART_BLOB_HEADER_SIZE, n));
	} else {
		/* Incompressible: store the bytes as they are. */
		out[0] = BLOB_RAW;
		put_le32(out + 1, 0);
		memcpy(out + ART_BLOB_HEADER_SIZE, b->raw, b->len);
		n = b->len;
	}
	put_le64(out + 5, b->len);
	b->stored = out;
	b->stored_len = ART_BLOB_HEADER_SIZE + n;
	return 0;
}

static void *compress_worker(void *arg)
{
	compress_job *job = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t i;

	if (!cctx) {
		atomic_store(&job->failed, 1);
		return NULL;
	}
	while ((i = atomic_fetch_add(&job->next, 1)) < job->n)
		if (compress_one(cctx, job, &job->blobs[i]) < 0)
			atomic_store(&job->failed, 1);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

static int compress_all(art_store_txn *t, const ZSTD_CDict *cdict)
{
	pthread_t threads[COMPRESS_THREADS_MAX];
	size_t n_threads = 0, want;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	compress_job job;
	size_t i;

	if (t->n_blobs == 0)
		return 0;
	job.blobs = t->blobs;
	job.n = t->n_blobs;
	job.cdict = cdict;
	atomic_init(&job.next, 0);
	atomic_init(&job.failed, 0);
	want = cpus > 1 ? (size_t)cpus : 1;
	if (want > COMPRESS_THREADS_MAX)
		want = COMPRESS_THREADS_MAX;
	if (want > t->n_blobs)
		want = t->n_blobs;
	/* The calling thread works too; extra threads are a bonus. */
	for (i = 1; i < want; i++) {
		if (pthread_create(&threads[n_threads], NULL, compress_worker, &job) != 0)
			break;
		n_threads++;
	}
	compress_worker(&job);
	for (i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);
	if (atomic_load(&job.failed))
		return art_error_set(AF_ENOMEM, "zstd compression failed (out of memory?)");
	return 0;
}

/* ---- commit -------------------------------------------------------------- */

static int grow_map(art_store *s)
{
	MDB_envinfo info;
	size_t next;
	int mrc;

	pthread_rwlock_wrlock(&s->resize_lock);
	mdb_env_info(s->env, &info);
	next = info.me_mapsize * 2;
	if (next > MAP_SIZE_LIMIT) {
		pthread_rwlock_unlock(&s->resize_lock);
		return art_error_set(AF_ETOOBIG, "store %s is full (map size %zu)", s->path,
				     info.me_mapsize);
	}
	mrc = mdb_env_set_mapsize(s->env, next);
	pthread_rwlock_unlock(&s->resize_lock);
	return mrc ? lmdb_error(s, mrc, "cannot grow the map") : 0;
}

static int put_val(art_store *s, MDB_txn *w, int db, MDB_val *k, MDB_val *v, unsigned flags,
		   const char *what)
{
	int mrc = mdb_put(w, s->dbi[db], k, v, flags);

	return mrc ? lmdb_error(s, mrc, what) : 0;
}

/*
 * A released name@version is immutable: refuse a different manifest under a
 * ref that a release pins (the pin's value is {"manifest_digest", "release"},
 * see release.c). The same manifest again (an identical rebuild) is fine.
 */
static int check_pin(art_store *s, MDB_txn *w, const pending_artifact *a)
{
	char key[REF_MAX + 8], digest[ART_DIGEST_STR_LEN + 1];
	json_t *pin;
	const char *pinned;
	MDB_val k, v;
	int mrc, rc = 0;

	snprintf(key, sizeof(key), "pin/%s", a->ref);
	k = sval(key);
	mrc = mdb_get(w, s->dbi[DB_RELEASES], &k, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lmdb_error(s, mrc, "cannot read the release pins");
	art_manifest_digest(digest, a->manifest_json, a->manifest_len);
	pin = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, NULL);
	pinned = json_string_value(json_object_get(pin, "manifest_digest"));
	if (!pinned)
		rc = art_error_set(AF_ECORRUPT, "store %s: the release pin of %s is damaged", s->path,
				   a->ref);
	else if (strcmp(pinned, digest) != 0)
		rc = art_error_set(AF_EEXISTS, "%s is pinned by release %lld with manifest %.23s...; "
				   "this build made %.23s...: artifacts are immutable once released, "
				   "bump the template's version", a->ref,
				   (long long)json_integer_value(json_object_get(pin, "release")),
				   pinned, digest);
	json_decref(pin);
	return rc;
}

static int apply_artifact(art_store *s, MDB_txn *w, const pending_artifact *a)
{
	const art_manifest *m = a->manifest;
	char cache_key[ART_SHA256_HEX_LEN + 1];
	uint8_t *record = NULL;
	bool drop_attestation = false;
	blob_header h;
	MDB_val k, v;
	size_t i, rlen;
	int mrc, rc;

	for (i = 0; i < m->n_parts; i++) {
		const art_manifest_part *p = &m->parts[i];

		k = mval(p->digest + 7, ART_SHA256_HEX_LEN);
		mrc = mdb_get(w, s->dbi[DB_BLOBS], &k, &v);
		if (mrc == MDB_NOTFOUND)
			return art_error_set(AF_ENOTFOUND, "%s: part '%s' (%.23s...) is neither in "
					     "the store nor in the batch", a->ref, p->name, p->digest);
		if (mrc)
			return lmdb_error(s, mrc, "cannot read a blob");
		if ((rc = header_parse(&h, p->digest + 7, &v)) < 0)
			return rc;
		if (h.raw_size != p->size)
			return art_error_set(AF_ENOTFOUND, "%s: part '%s' is %llu bytes in the store, "
					     "the manifest says %llu", a->ref, p->name,
					     (unsigned long long)h.raw_size,
					     (unsigned long long)p->size);
	}
	if ((rc = check_pin(s, w, a)) < 0)
		return rc;
	/* Without a new attestation, an existing one stays only if it is about
	 * this very manifest (a bundle re-imported without its attestations
	 * must not strip them; a rebuild must not keep a stale one). */
	k = sval(a->ref);
	if (!a->attestation && s->has_attest) {
		record_view old;

		mrc = mdb_get(w, s->dbi[DB_ARTIFACTS], &k, &v);
		if (mrc && mrc != MDB_NOTFOUND)
			return lmdb_error(s, mrc, "cannot read an artifact");
		drop_attestation = mrc != 0 || record_parse(&old, a->ref, &v) < 0 ||
				   old.manifest_len != a->manifest_len ||
				   memcmp(old.manifest, a->manifest_json, a->manifest_len) != 0;
		art_error_clear();
	}
	rlen = RECORD_HEADER + a->manifest_len + a->envelope_len;
	if (!(record = malloc(rlen)))
		return art_error_set(AF_ENOMEM, "out of memory writing %s", a->ref);
	record[0] = RECORD_VERSION;
	put_le32(record + 1, (uint32_t)a->manifest_len);
	put_le32(record + 5, (uint32_t)a->envelope_len);
	memcpy(record + RECORD_HEADER, a->manifest_json, a->manifest_len);
	memcpy(record + RECORD_HEADER + a->manifest_len, a->envelope, a->envelope_len);
	k = sval(a->ref);
	v = mval(record, rlen);
	rc = put_val(s, w, DB_ARTIFACTS, &k, &v, 0, "cannot write an artifact");
	free(record);
	if (rc < 0)
		return rc;
	if (a->attestation) {
		v = mval(a->attestation, a->attestation_len);
		if ((rc = put_val(s, w, DB_ATTEST, &k, &v, 0, "cannot write an attestation")) < 0)
			return rc;
	} else if (drop_attestation) {
		mrc = mdb_del(w, s->dbi[DB_ATTEST], &k, NULL);
		if (mrc && mrc != MDB_NOTFOUND)
			return lmdb_error(s, mrc, "cannot remove an attestation");
	}
	/* names: name -> highest version */
	k = sval(m->name);
	mrc = mdb_get(w, s->dbi[DB_NAMES], &k, &v);
	if (mrc && mrc != MDB_NOTFOUND)
		return lmdb_error(s, mrc, "cannot read the names index");
	if (mrc == MDB_NOTFOUND || v.mv_size >= REF_MAX) {
		v = sval(m->version);
		rc = put_val(s, w, DB_NAMES, &k, &v, 0, "cannot write the names index");
	} else {
		char current[REF_MAX];

		memcpy(current, v.mv_data, v.mv_size);
		current[v.mv_size] = '\0';
		if (art_manifest_version_cmp(m->version, current) > 0) {
			v = sval(m->version);
			rc = put_val(s, w, DB_NAMES, &k, &v, 0, "cannot write the names index");
		}
	}
	if (rc < 0)
		return rc;
	art_store_cache_key(cache_key, m->resolved_template_digest, m->toolchain_id);
	k = sval(cache_key);
	v = sval(a->ref);
	return put_val(s, w, DB_CACHE, &k, &v, 0, "cannot write the build cache");
}

/* One attempt at the LMDB write transaction. */
static int apply_batch(art_store_txn *t, const uint8_t *dict, size_t dict_len, uint32_t dict_id,
		       bool dict_new)
{
	art_store *s = t->s;
	store_counters c;
	char key[32], stats[160];
	MDB_txn *w = NULL;
	MDB_val k, v;
	size_t i;
	int mrc, rc;

	if ((rc = txn_open(s, &w, 0)) < 0)
		return rc;
	if ((rc = counters_read(s, w, &c)) < 0)
		goto fail;
	if (dict_new) {
		snprintf(key, sizeof(key), META_DICT_PREFIX "%08x", dict_id);
		k = sval(key);
		v = mval(dict, dict_len);
		mrc = mdb_put(w, s->dbi[DB_META], &k, &v, MDB_NOOVERWRITE);
		if (mrc == MDB_KEYEXIST) {
			if (v.mv_size != dict_len || memcmp(v.mv_data, dict, dict_len) != 0) {
				rc = art_error_set(AF_EEXISTS, "a different dictionary with id %08x "
						   "is already stored", dict_id);
				goto fail;
			}
		} else if (mrc) {
			rc = lmdb_error(s, mrc, "cannot store a dictionary");
			goto fail;
		}
		snprintf(key, sizeof(key), "%08x", dict_id);
		k = sval(META_DICT_CURRENT);
		v = sval(key);
		if ((rc = put_val(s, w, DB_META, &k, &v, 0, "cannot store a dictionary")) < 0)
			goto fail;
	}
	for (i = 0; i < t->n_blobs; i++) {
		pending_blob *b = &t->blobs[i];

		k = mval(b->hex, ART_SHA256_HEX_LEN);
		v = mval(b->stored, b->stored_len);
		mrc = mdb_put(w, s->dbi[DB_BLOBS], &k, &v, MDB_NOOVERWRITE);
		if (mrc == MDB_KEYEXIST)
			continue; /* written meanwhile by another batch: same bytes */
		if (mrc) {
			rc = lmdb_error(s, mrc, "cannot write a blob");
			goto fail;
		}
		c.blobs++;
		c.raw_bytes += b->len;
		c.stored_bytes += b->stored_len;
	}
	for (i = 0; i < t->n_arts; i++)
		if ((rc = apply_artifact(s, w, &t->arts[i])) < 0)
			goto fail;
	for (i = 0; i < t->n_hooks; i++)
		if ((rc = t->hooks[i].fn(s, w, t->hooks[i].ctx)) < 0)
			goto fail;
	if (t->last.fn && (rc = t->last.fn(s, w, t->last.ctx)) < 0)
		goto fail;
	snprintf(stats, sizeof(stats), "{\"blobs\":%llu,\"raw_bytes\":%llu,\"stored_bytes\":%llu}",
		 (unsigned long long)c.blobs, (unsigned long long)c.raw_bytes,
		 (unsigned long long)c.stored_bytes);
	k = sval(META_STATS);
	v = sval(stats);
	if ((rc = put_val(s, w, DB_META, &k, &v, 0, "cannot write statistics")) < 0)
		goto fail;
	mrc = mdb_txn_commit(w);
	unlock_shared(s);
	return mrc ? lmdb_error(s, mrc, "cannot commit") : 0;
fail:
	txn_close(s, w);
	return rc;
}

int art_store_txn_commit(art_store_txn *t)
{
	uint8_t *dict = NULL;
	size_t dict_len = 0;
	uint32_t dict_id = 0;
	bool dict_new = false;
	ZSTD_CDict *cdict = NULL;
	int rc, attempt;

	if (!t)
		return art_error_set(AF_EINVAL, "no batch to commit");
	/* A deterministic order for dictionary training and for writing. */
	if (t->n_blobs > 1)
		qsort(t->blobs, t->n_blobs, sizeof(*t->blobs), cmp_pending);
	if ((rc = commit_dict(t, &dict, &dict_len, &dict_id, &dict_new)) < 0)
		goto cleanup;
	if (dict && t->n_blobs &&
	    !(cdict = ZSTD_createCDict(dict, dict_len, ART_STORE_ZSTD_LEVEL))) {
		rc = art_error_set(AF_ENOMEM, "cannot load the zstd dictionary");
		goto cleanup;
	}
	if ((rc = compress_all(t, cdict)) < 0)
		goto cleanup;
	for (attempt = 0; attempt < 8; attempt++) {
		last_mdb_rc = 0;
		rc = apply_batch(t, dict, dict_len, dict_id, dict_new);
		if (rc != AF_ETOOBIG || last_mdb_rc != MDB_MAP_FULL)
			break;
		/* MDB_MAP_FULL: the batch is still in memory; grow and redo it. */
		if ((rc = grow_map(t->s)) < 0)
			break;
		rc = AF_ETOOBIG;
	}
cleanup:
	ZSTD_freeCDict(cdict);
	free(dict);
	art_store_txn_abort(t);
	return rc;
}

/* ---- shared with release.c and the audit files (store_internal.h) -------- */

MDB_dbi art_store__dbi(const art_store *s, art_store__db db)
{
	switch (db) {
	case ART_STORE__DB_ARTIFACTS: return s->dbi[DB_ARTIFACTS];
	case ART_STORE__DB_RELEASES: return s->dbi[DB_RELEASES];
	case ART_STORE__DB_CHANNELS: return s->dbi[DB_CHANNELS];
	default: return s->dbi[DB_AUDIT];
	}
}

int art_store__lmdb_error(const art_store *s, int mrc, const char *what)
{
	return lmdb_error(s, mrc, what);
}

int art_store__read_begin(const art_store *s, MDB_txn **txn)
{
	return rd_begin(s, txn);
}

void art_store__read_end(const art_store *s, MDB_txn *txn)
{
	txn_close(s, txn);
}

int art_store__write(art_store *s, art_store__write_fn fn, void *ctx)
{
	MDB_txn *w = NULL;
	int attempt, mrc, rc = 0;

	if (s->flags & ART_STORE_RDONLY)
		return art_error_set(AF_EDENIED, "store %s was opened read-only", s->path);
	for (attempt = 0; attempt < 8; attempt++) {
		last_mdb_rc = 0;
		if ((rc = txn_open(s, &w, 0)) < 0)
			return rc;
		rc = fn(s, w, ctx);
		if (rc < 0) {
			txn_close(s, w);
		} else {
			mrc = mdb_txn_commit(w);
			unlock_shared(s);
			rc = mrc ? lmdb_error(s, mrc, "cannot commit") : 0;
		}
		w = NULL;
		if (rc != AF_ETOOBIG || last_mdb_rc != MDB_MAP_FULL)
			break;
		/* MDB_MAP_FULL: nothing was written; grow the map and run the body again. */
		if ((rc = grow_map(s)) < 0)
			break;
		rc = AF_ETOOBIG;
	}
	return rc;
}

int art_store__txn_hook(art_store_txn *t, art_store__write_fn fn, void *ctx,
			void (*free_ctx)(void *))
{
	if (t->n_hooks == sizeof(t->hooks) / sizeof(t->hooks[0])) {
		if (free_ctx)
			free_ctx(ctx);
		return art_error_set(AF_EINTERNAL, "too many writes hooked into one batch");
	}
	t->hooks[t->n_hooks].fn = fn;
	t->hooks[t->n_hooks].ctx = ctx;
	t->hooks[t->n_hooks].free_ctx = free_ctx;
	t->n_hooks++;
	return 0;
}

int art_store__txn_last(art_store_txn *t, art_store__write_fn fn, void *ctx,
			void (*free_ctx)(void *))
{
	if (t->last.fn) {
		if (free_ctx)
			free_ctx(ctx);
		return art_error_set(AF_EINTERNAL, "a batch has one last write");
	}
	t->last.fn = fn;
	t->last.ctx = ctx;
	t->last.free_ctx = free_ctx;
	return 0;
}

void *art_store__txn_last_ctx(const art_store_txn *t, art_store__write_fn fn)
{
	return t->last.fn == fn ? t->last.ctx : NULL;
}

art_store *art_store__txn_store(const art_store_txn *t)
{
	return t->s;
}

int art_store__record_digest(const art_store *s, MDB_txn *txn, const char *ref,
			     char out[ART_DIGEST_STR_LEN + 1])
{
	record_view view;
	int rc;

	out[0] = '\0';
	if ((rc = get_record(s, txn, ref, &view)) < 0)
		return rc;
	art_manifest_digest(out, view.manifest, view.manifest_len);
	return 0;
}
