/*
 * keyring_watch.c - the keyring file followed without a restart, and the
 * watcher thread's waits (see keyring_watch.h).
 *
 * Change detection is stat() first (cheap, every poll), bytes second: the
 * file is read only when its identity or times moved, or while it is
 * "racy" (modified within RACY_SECONDS of the last read, when a second
 * write in the same timestamp tick would not show in stat()). The SHA-256
 * of the bytes read decides: the content in force is never parsed again,
 * and a refused content is reported once.
 */
#include "keyring_watch.h"

#include "art/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RACY_SECONDS 2

rt_keyring_ref *rt_keyring_ref__get(rt_keyring_ref *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void rt_keyring_ref__put(rt_keyring_ref *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		art_keyring_free(r->kr);
		free(r);
	}
}

/* ---- the keyring file ------------------------------------------------------- */

typedef struct file_id {
	bool present;
	int err;                                    /* stat's errno when !present */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
} file_id;

struct rt_keyring_watch {
	char *path;
	file_id seen;                               /* at the last read */
	bool racy;                                  /* re-read even if seen is unchanged */
	char loaded[ART_SHA256_HEX_LEN + 1];        /* content in force */
	char refused[ART_SHA256_HEX_LEN + 1];       /* last content refused ("" none) */
	bool missing_reported;                      /* absent or unreadable, said once */
	rt_keyring_ref *current;                    /* in force: successors are checked against it */
};

static void file_id_get(file_id *id, const char *path)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (stat(path, &st) != 0) {
		id->err = errno;
		return;
	}
	id->present = true;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
	id->ctime = st.st_ctim;
}

static bool file_id_equal(const file_id *a, const file_id *b)
{
	return a->present == b->present && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static bool file_id_racy(const file_id *id)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return id->mtime.tv_sec + RACY_SECONDS >= now.tv_sec ||
	       id->ctime.tv_sec + RACY_SECONDS >= now.tv_sec;
}

/*
 * Read and parse path; *sha gets the bytes' digest even when parsing fails.
 * The keyring must be signed and unexpired; with cur (the keyring in force)
 * it must also be a newer version signed by cur's root keys: a hand edit, a
 * new root not signed by the old one, or an older (replayed) version is
 * refused and the keys in force stay.
 */
static int load_file(rt_keyring_ref **out, char sha[ART_SHA256_HEX_LEN + 1], const char *path,
		     const rt_keyring_ref *cur)
{
	rt_keyring_ref *r = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	sha[0] = '\0';
	if ((rc = art_file_read(&data, &len, path, ART_KEYRING_MAX_BYTES)) < 0)
		return rc;
	art_sha256_hex(data, len, sha);
	if (!(r = calloc(1, sizeof(*r)))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	atomic_init(&r->refs, 1);
	if ((rc = art_keyring_parse(&r->kr, data, len, path)) < 0)
		goto cleanup;
	rc = cur ? art_keyring_check_successor(cur->kr, r->kr, path, art_time_now())
		 : art_keyring_check(r->kr, path, art_time_now());
	if (rc < 0)
		goto cleanup;
	memcpy(r->sha256, sha, sizeof(r->sha256));
	*out = r;
	r = NULL;
cleanup:
	if (r) {
		art_keyring_free(r->kr);
		free(r);
	}
	free(data);
	return rc;
}

int rt_keyring_watch__open(rt_keyring_watch **out, rt_keyring_ref **first, const char *path)
{
	rt_keyring_watch *w = NULL;
	int rc;

	*out = NULL;
	*first = NULL;
	if (!(w = calloc(1, sizeof(*w))) || !(w->path = strdup(path))) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	file_id_get(&w->seen, path);
	if ((rc = load_file(first, w->loaded, path, NULL)) < 0)
		goto cleanup;
	w->current = rt_keyring_ref__get(*first);
	w->racy = file_id_racy(&w->seen);
	*out = w;
	w = NULL;
cleanup:
	rt_keyring_watch__close(w);
	return rc;
}

int rt_keyring_watch__check(rt_keyring_watch *w, rt_keyring_ref **out)
{
	char sha[ART_SHA256_HEX_LEN + 1], why[512] = "";
	file_id now;
	int rc;

	*out = NULL;
	file_id_get(&now, w->path);
	if (file_id_equal(&now, &w->seen) && !w->racy)
		return 0;
	if (!now.present) {
		w->seen = now;
		w->racy = false;
		if (w->missing_reported)
			return 0;
		w->missing_reported = true;
		return art_error_set(AF_ENOTFOUND, "keyring %s: %s; keeping the keys in force",
				     w->path, strerror(now.err ? now.err : ENOENT));
	}
	rc = load_file(out, sha, w->path, w->current);
	if (rc < 0)
		snprintf(why, sizeof(why), "%s", art_error_last());
	/* Not read (replaced meanwhile, unreadable) or no memory to parse it
	 * (not a verdict on the content): try again next time, even if stat()
	 * will not have moved by then. */
	if (!sha[0] || rc == AF_ENOMEM) {
		w->racy = true;
		if (w->missing_reported)
			return 0;
		w->missing_reported = true;
		return art_error_set(rc, "%s; keeping the keys in force", why);
	}
	w->missing_reported = false;
	w->seen = now;
	w->racy = file_id_racy(&now);
	if (strcmp(sha, w->loaded) == 0) { /* touched, or rewritten with the same bytes */
		rt_keyring_ref__put(*out);
		*out = NULL;
		w->refused[0] = '\0';
		return 0;
	}
	if (rc < 0) {
		if (strcmp(sha, w->refused) == 0)
			return 0; /* reported already */
		memcpy(w->refused, sha, sizeof(w->refused));
		return art_error_set(rc, "%s; keeping the keys in force", why);
	}
	memcpy(w->loaded, sha, sizeof(w->loaded));
	w->refused[0] = '\0';
	rt_keyring_ref__put(w->current);
	w->current = rt_keyring_ref__get(*out);
	return 1;
}

bool rt_keyring_watch__refusing(const rt_keyring_watch *w)
{
	return w && (w->refused[0] || w->missing_reported);
}

const char *rt_keyring_watch__path(const rt_keyring_watch *w)
{
	return w ? w->path : "";
}

void rt_keyring_watch__close(rt_keyring_watch *w)
{
	if (!w)
		return;
	rt_keyring_ref__put(w->current);
	free(w->path);
	free(w);
}

/* ---- the watcher's waits ------------------------------------------------------ */

struct rt_watch {
	int inotify_fd;  /* -1: no inotify, plain timeouts */
	int stop_fd;     /* eventfd */
};

int rt_watch__open(rt_watch **out, const char *const *paths, const bool *dir_of, size_t n)
{
	rt_watch *w;
	size_t i;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return art_error_set(AF_ENOMEM, "out of memory");
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stop_fd < 0) {
		free(w);
		return art_error_set(AF_EIO, "eventfd: %s", strerror(errno));
	}
	w->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	for (i = 0; w->inotify_fd >= 0 && i < n; i++) {
		char dir[PATH_MAX];
		const char *target = paths[i];

		if (!target)
			continue;
		if (dir_of[i]) {
			const char *slash = strrchr(paths[i], '/');

			if (!slash)
				snprintf(dir, sizeof(dir), ".");
			else if (slash == paths[i])
				snprintf(dir, sizeof(dir), "/");
			else
				snprintf(dir, sizeof(dir), "%.*s", (int)(slash - paths[i]), paths[i]);
			target = dir;
		}
		/* A failure (no such file yet, watch limit reached) only costs
		 * latency: the poll period still finds the change. */
		(void)inotify_add_watch(w->inotify_fd, target,
					dir_of[i] ? IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
							    IN_DELETE | IN_ATTRIB | IN_MODIFY
						  : IN_MODIFY);
	}
	*out = w;
	return 0;
}

int rt_watch__wait(rt_watch *w, int timeout_ms)
{
	struct pollfd fds[2];
	nfds_t n = 1;
	int rc;

	fds[0].fd = w->stop_fd;
	fds[0].events = POLLIN;
	if (w->inotify_fd >= 0) {
		fds[1].fd = w->inotify_fd;
		fds[1].events = POLLIN;
		n = 2;
	}
	do
		rc = poll(fds, n, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc > 0 && (fds[0].revents & POLLIN))
		return -1;
	if (rc > 0 && n == 2 && (fds[1].revents & POLLIN)) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

		while (read(w->inotify_fd, buf, sizeof(buf)) > 0)
			; /* drain: which file changed does not matter, every check is cheap */
		return 1;
	}
	return 0;
}

void rt_watch__stop(rt_watch *w)
{
	uint64_t one = 1;

	if (w && write(w->stop_fd, &one, sizeof(one)) < 0) {
		/* the counter is far from overflow: nothing to do */
	}
}

void rt_watch__close(rt_watch *w)
{
	if (!w)
		return;
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	close(w->stop_fd);
	free(w);
}
