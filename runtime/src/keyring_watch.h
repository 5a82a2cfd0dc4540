/*
 * keyring_watch.h - private to runtime/src: the keyring file followed
 * without a restart, and the waits of the engine's watcher thread.
 *
 * Secrets agents (HashiCorp Vault Agent, Kubernetes volume updates) replace
 * a rendered file atomically: write a temporary file, rename it over the
 * old one (or swap a symlinked directory). rt_keyring_watch__check notices
 * any replacement or in-place write from stat() (device, inode, size,
 * mtime, ctime), reads the bytes once, and parses exactly those bytes: a
 * file whose content did not change is not parsed again, a file that does
 * not parse (a half-written one, a bad edit) is refused once and the keys in
 * force stay. A file modified within the last two seconds is re-read on
 * the next check even when stat() looks the same, so two writes in one
 * timestamp tick are never mistaken for one.
 *
 * Keyrings are shared by reference: the engine's snapshots each hold one,
 * and a keyring is freed when the last snapshot that verified with it goes.
 */
#ifndef RT_KEYRING_WATCH_H
#define RT_KEYRING_WATCH_H

#include "art/keyring.h"
#include "art/util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/** A loaded keyring, shared by reference. */
typedef struct rt_keyring_ref {
	atomic_uint refs;
	art_keyring *kr;                        /* read-only once shared */
	char sha256[ART_SHA256_HEX_LEN + 1];    /* of the file's bytes */
} rt_keyring_ref;

/** Take a reference. Returns r. NULL-safe. */
rt_keyring_ref *rt_keyring_ref__get(rt_keyring_ref *r);

/** Drop a reference; the last one frees the keyring. NULL-safe. */
void rt_keyring_ref__put(rt_keyring_ref *r);

typedef struct rt_keyring_watch rt_keyring_watch;

/**
 * Load the keyring file and start following it.
 * @param[out] out    caller owns; rt_keyring_watch__close
 * @param[out] first  caller owns one reference to the loaded keyring
 * @return 0 or the errors of art_keyring_parse / art_file_read
 */
int rt_keyring_watch__open(rt_keyring_watch **out, rt_keyring_ref **first, const char *path);

/**
 * Has the file changed since the last check?
 * @param[out] out  on 1: caller owns a reference to the new keyring
 * @return 1 a new keyring was loaded; 0 nothing new (unchanged, same
 *         content, or a content already refused); < 0 the file changed and
 *         is refused (missing, unreadable, too big, does not parse): the
 *         message says why, the caller keeps its keyring. A refusal is
 *         returned once per distinct file content (or once while missing).
 */
int rt_keyring_watch__check(rt_keyring_watch *w, rt_keyring_ref **out);

/** Whether the file on disk is not the keyring in force (refused, missing). */
bool rt_keyring_watch__refusing(const rt_keyring_watch *w);

/** The followed path. Borrowed. */
const char *rt_keyring_watch__path(const rt_keyring_watch *w);

/** NULL-safe. */
void rt_keyring_watch__close(rt_keyring_watch *w);

/*
 * The watcher thread's waits: inotify on the store's data file (every LMDB
 * commit writes it) and on the keyring's directory (a rename into it, a
 * symlink swap, a write), so a promotion or a new keyring is seen at once;
 * the poll period is the fallback (and all there is where inotify is not
 * available, e.g. on some network file systems).
 */
typedef struct rt_watch rt_watch;

/**
 * @param[in] paths  files to watch: for each, the file itself (IN_MODIFY)
 *                   when dir_of is false, else its directory (renames,
 *                   creations, writes)
 * @return 0 (also when inotify is unavailable: waits are then plain
 *         timeouts) or AF_ENOMEM / AF_EIO (no eventfd)
 */
int rt_watch__open(rt_watch **out, const char *const *paths, const bool *dir_of, size_t n);

/**
 * Wait for an event, a stop or timeout_ms.
 * @return 1 a watched file changed, 0 timeout, -1 rt_watch__stop was called
 */
int rt_watch__wait(rt_watch *w, int timeout_ms);

/** Wake the waiter for good (any thread, async-signal-safe). */
void rt_watch__stop(rt_watch *w);

/** NULL-safe. */
void rt_watch__close(rt_watch *w);

#endif
