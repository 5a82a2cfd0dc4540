/*
 * source.c - read template files from a git revision (libgit2, object
 * database only) or from a plain directory.
 *
 * Both walkers feed one collector, which applies the shared rules (which
 * names are wanted, the caps, path hygiene), so a commit and a directory
 * holding the same tree yield the same file set. The directory walker works
 * on directory file descriptors (openat/fstatat with O_NOFOLLOW), so a
 * symlink swapped in while walking is refused rather than followed. The git
 * walker asks the object database for a blob's size before loading it, so an
 * oversized blob is never inflated into memory.
 */
#include "pipe/source.h"

#include "art/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct collector {
	pipe_source *src;
	size_t cap;      /* allocated slots in src->files */
	size_t total;    /* bytes of every file read so far */
	size_t entries;  /* tree/directory entries visited */
	const char *where; /* "DIR@REV" or "DIR", for messages */
} collector;

/* ---- shared rules ------------------------------------------------------ */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* A template or its signature. The bare suffix (a file named ".yaml") never
 * reaches here: dot names are skipped first. */
static bool wanted_name(const char *name)
{
	size_t len = strlen(name);

	return ends_with(name, len, ".yaml") || ends_with(name, len, ".yml") ||
	       ends_with(name, len, ".yaml.sig") || ends_with(name, len, ".yml.sig");
}

static bool has_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return true;
	return false;
}

/* Append "/name" (or "name" at the root) to path[0..*plen). */
static int path_push(collector *c, char *path, size_t *plen, const char *name)
{
	size_t nlen = strlen(name), sep = *plen ? 1 : 0;

	if (*plen + sep + nlen > PIPE_SOURCE_MAX_PATH)
		return art_error_set(AF_ETOOBIG, "%s: %s/%s: path longer than %u bytes",
				     c->where, path, name, PIPE_SOURCE_MAX_PATH);
	if (sep)
		path[(*plen)++] = '/';
	memcpy(path + *plen, name, nlen + 1);
	*plen += nlen;
	return 0;
}

static int count_entry(collector *c)
{
	if (++c->entries > PIPE_SOURCE_MAX_ENTRIES)
		return art_error_set(AF_ETOOBIG,
				     "%s: more than %u entries under the templates folder; "
				     "point --subdir at a smaller folder",
				     c->where, PIPE_SOURCE_MAX_ENTRIES);
	return 0;
}

static int check_depth(collector *c, const char *path, unsigned depth)
{
	if (depth > PIPE_SOURCE_MAX_DEPTH)
		return art_error_set(AF_ETOOBIG, "%s: %s: folders nested deeper than %u levels",
				     c->where, path, PIPE_SOURCE_MAX_DEPTH);
	return 0;
}

static int check_file_size(collector *c, const char *path, size_t len)
{
	if (len > PIPE_SOURCE_MAX_FILE_BYTES)
		return art_error_set(AF_ETOOBIG, "%s: %s: file is larger than the %zu-byte limit",
				     c->where, path, PIPE_SOURCE_MAX_FILE_BYTES);
	if (len > PIPE_SOURCE_MAX_TOTAL_BYTES - c->total)
		return art_error_set(AF_ETOOBIG, "%s: template files exceed %zu bytes in total",
				     c->where, PIPE_SOURCE_MAX_TOTAL_BYTES);
	return 0;
}

static int symlink_refused(collector *c, const char *path)
{
	return art_error_set(AF_EDENIED,
			     "%s: %s is a symbolic link; templates and signatures must be "
			     "regular files (links are never followed)", c->where, path);
}

/* Take ownership of data (malloc'd, len+1 bytes, NUL-terminated). */
static int add_file(collector *c, const char *path, char *data, size_t len)
{
	pipe_source *s = c->src;
	pipe_file *f;
	int rc = 0;

	if (has_control_chars(path)) {
		rc = art_error_set(AF_EINVAL, "%s: a template path contains control characters; "
				   "rename the file", c->where);
		goto cleanup;
	}
	rc = check_file_size(c, path, len);
	if (rc < 0)
		goto cleanup;
	if (s->n >= PIPE_SOURCE_MAX_FILES) {
		rc = art_error_set(AF_ETOOBIG, "%s: more than %u template files",
				   c->where, PIPE_SOURCE_MAX_FILES);
		goto cleanup;
	}
	if (s->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		pipe_file *files = realloc(s->files, cap * sizeof(*files));

		if (!files) {
			rc = art_error_set(AF_ENOMEM, "out of memory listing template files");
			goto cleanup;
		}
		s->files = files;
		c->cap = cap;
	}
	f = &s->files[s->n];
	f->path = strdup(path);
	if (!f->path) {
		rc = art_error_set(AF_ENOMEM, "out of memory listing template files");
		goto cleanup;
	}
	f->data = data;
	f->len = len;
	data = NULL;
	s->n++;
	c->total += len;
cleanup:
	free(data);
	return rc;
}

/* Validate and normalise a subdir argument into out ("" = root). */
static int normalise_subdir(char **out, const char *subdir)
{
	size_t len, i, start;
	char *copy;

	*out = NULL;
	if (subdir[0] == '/')
		return art_error_set(AF_EINVAL, "subdir '%s' must be relative to the repository",
				     subdir);
	if (has_control_chars(subdir))
		return art_error_set(AF_EINVAL, "subdir contains control characters");
	len = strlen(subdir);
	while (len && subdir[len - 1] == '/')
		len--;
	if (len > PIPE_SOURCE_MAX_PATH)
		return art_error_set(AF_ETOOBIG, "subdir longer than %u bytes", PIPE_SOURCE_MAX_PATH);
	if (len == 1 && subdir[0] == '.')
		len = 0;
	copy = strndup(subdir, len);
	if (!copy)
		return art_error_set(AF_ENOMEM, "out of memory");
	for (start = 0, i = 0; i <= len; i++) {
		if (i < len && copy[i] != '/')
			continue;
		if (len && (i == start || (i - start == 1 && copy[start] == '.') ||
			    (i - start == 2 && copy[start] == '.' && copy[start + 1] == '.'))) {
			free(copy);
			return art_error_set(AF_EINVAL,
					     "subdir '%s': empty, '.' and '..' components are not allowed",
					     subdir);
		}
		start = i + 1;
	}
	*out = copy;
	return 0;
}

/* ---- git --------------------------------------------------------------- */

static int git_fail(const char *where, const char *what)
{
	const git_error *e = git_error_last();

	return art_error_set(AF_EGIT, "%s: %s: %s", where, what,
			     e && e->message ? e->message : "unknown libgit2 error");
}

static int git_read_blob(collector *c, git_repository *repo, git_odb *odb,
			 const git_oid *id, const char *path)
{
	git_blob *blob = NULL;
	git_object_t type;
	size_t size;
	char *data = NULL;
	int rc;

	if (git_odb_read_header(&size, &type, odb, id) < 0)
		return git_fail(c->where, path);
	rc = check_file_size(c, path, size);
	if (rc < 0)
		return rc;
	if (git_blob_lookup(&blob, repo, id) < 0)
		return git_fail(c->where, path);
	size = (size_t)git_blob_rawsize(blob);
	rc = check_file_size(c, path, size);
	if (rc < 0)
		goto cleanup;
	data = malloc(size + 1);
	if (!data) {
		rc = art_error_set(AF_ENOMEM, "%s: %s: out of memory", c->where, path);
		goto cleanup;
	}
	if (size)
		memcpy(data, git_blob_rawcontent(blob), size);
	data[size] = '\0';
	rc = add_file(c, path, data, size);
cleanup:
	git_blob_free(blob);
	return rc;
}

static int git_walk(collector *c, git_repository *repo, git_odb *odb,
		    const git_tree *tree, char *path, size_t plen, unsigned depth)
{
	size_t i, count = git_tree_entrycount(tree);
	int rc = 0;

	for (i = 0; i < count && rc == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		size_t len = plen;
		git_tree *sub = NULL;

		rc = count_entry(c);
		if (rc < 0)
			break;
		if (name[0] == '.')
			continue;
		switch (git_tree_entry_filemode(e)) {
		case GIT_FILEMODE_TREE:
			rc = path_push(c, path, &len, name);
			if (rc == 0)
				rc = check_depth(c, path, depth + 1);
			if (rc == 0 && git_tree_lookup(&sub, repo, git_tree_entry_id(e)) < 0)
				rc = git_fail(c->where, path);
			if (rc == 0)
				rc = git_walk(c, repo, odb, sub, path, len, depth + 1);
			git_tree_free(sub);
			break;
		case GIT_FILEMODE_BLOB:
		case GIT_FILEMODE_BLOB_EXECUTABLE:
			if (!wanted_name(name))
				break;
			rc = path_push(c, path, &len, name);
			if (rc == 0)
				rc = git_read_blob(c, repo, odb, git_tree_entry_id(e), path);
			break;
		case GIT_FILEMODE_LINK:
			if (!wanted_name(name))
				break;
			rc = path_push(c, path, &len, name);
			if (rc == 0)
				rc = symlink_refused(c, path);
			break;
		default: /* gitlinks (submodules) and anything unknown */
			break;
		}
		path[plen] = '\0';
	}
	return rc;
}

/*
 * Descend from the commit's root tree to subdir one component at a time,
 * with the same verdicts as the directory walker. *out is NULL (and 0 is
 * returned) when subdir is "" (the root) or when a component is missing and
 * missing_ok is set.
 */
static int git_find_subdir(git_tree **out, collector *c, git_repository *repo,
			   git_tree *root, const char *subdir, bool missing_ok)
{
	char comp[PIPE_SOURCE_MAX_PATH + 1];
	const char *p = subdir;
	git_tree *cur = root, *next = NULL;
	int rc = 0;

	*out = NULL;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		const git_tree_entry *e;

		memcpy(comp, p, n);
		comp[n] = '\0';
		e = git_tree_entry_byname(cur, comp);
		if (!e) {
			if (!missing_ok)
				rc = art_error_set(AF_ENOTFOUND, "%s: no folder '%s' in the tree",
						   c->where, subdir);
			goto cleanup;
		}
		if (git_tree_entry_filemode(e) == GIT_FILEMODE_LINK) {
			rc = art_error_set(AF_EDENIED, "%s: '%s' is a symbolic link; links are "
					   "never followed", c->where, subdir);
			goto cleanup;
		}
		if (git_tree_entry_filemode(e) != GIT_FILEMODE_TREE) {
			rc = art_error_set(AF_EINVAL, "%s: '%s' is not a folder", c->where, subdir);
			goto cleanup;
		}
		if (git_tree_lookup(&next, repo, git_tree_entry_id(e)) < 0) {
			rc = git_fail(c->where, subdir);
			goto cleanup;
		}
		if (cur != root)
			git_tree_free(cur);
		cur = next;
		next = NULL;
		p += n;
		if (*p == '/')
			p++;
	}
	*out = cur == root ? NULL : cur; /* NULL: read the root itself */
	cur = root;
cleanup:
	if (cur != root)
		git_tree_free(cur);
	return rc;
}

static int read_git(collector *c, git_repository *repo, const char *repo_dir,
		    const char *rev, const char *subdir_arg)
{
	const char *rev_label = rev ? rev : "HEAD";
	git_object *obj = NULL, *peeled = NULL;
	git_tree *root = NULL, *tree = NULL;
	git_odb *odb = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	char where[PIPE_SOURCE_MAX_PATH * 2 + 2];
	char path[PIPE_SOURCE_MAX_PATH + 1];
	char *subdir = NULL;
	int rc, grc;

	snprintf(where, sizeof(where), "%s@%s", repo_dir, rev_label);
	c->where = where;
	grc = git_revparse_single(&obj, repo, rev_label);
	if (grc == GIT_ENOTFOUND || grc == GIT_EINVALIDSPEC || grc == GIT_EUNBORNBRANCH) {
		rc = art_error_set(AF_ENOTFOUND, "%s: revision '%s' not found%s", repo_dir,
				   rev_label, rev ? "" : " (the repository has no commit yet)");
		goto cleanup;
	}
	if (grc == GIT_EAMBIGUOUS) {
		rc = art_error_set(AF_EINVAL, "%s: revision '%s' is ambiguous; give more digits "
				   "or a full name", repo_dir, rev_label);
		goto cleanup;
	}
	if (grc < 0) {
		rc = git_fail(where, "cannot resolve the revision");
		goto cleanup;
	}
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		rc = art_error_set(AF_EINVAL, "%s: revision '%s' names a %s, not a commit",
				   repo_dir, rev_label, git_object_type2string(git_object_type(obj)));
		goto cleanup;
	}
	git_oid_tostr(hex, sizeof(hex), git_object_id(peeled));
	if (git_commit_tree(&root, (git_commit *)peeled) < 0 ||
	    git_repository_odb(&odb, repo) < 0) {
		rc = git_fail(where, "cannot read the commit's tree");
		goto cleanup;
	}
	if (subdir_arg) {
		rc = normalise_subdir(&subdir, subdir_arg);
		if (rc == 0)
			rc = git_find_subdir(&tree, c, repo, root, subdir, false);
	} else {
		subdir = strdup(PIPE_SOURCE_DEFAULT_SUBDIR);
		rc = subdir ? git_find_subdir(&tree, c, repo, root, subdir, true)
			    : art_error_set(AF_ENOMEM, "out of memory");
		if (rc == 0 && !tree)
			subdir[0] = '\0'; /* no templates/: read the root */
	}
	if (rc < 0)
		goto cleanup;
	memcpy(path, subdir, strlen(subdir) + 1);
	rc = git_walk(c, repo, odb, tree ? tree : root, path, strlen(path), 0);
	if (rc < 0)
		goto cleanup;
	c->src->commit = strdup(hex);
	if (!c->src->commit || asprintf(&c->src->origin, "%s@%s (commit %.7s)",
					repo_dir, rev_label, hex) < 0) {
		c->src->origin = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	c->src->subdir = subdir;
	subdir = NULL;
cleanup:
	free(subdir);
	git_tree_free(tree);
	git_tree_free(root);
	git_odb_free(odb);
	git_object_free(peeled);
	git_object_free(obj);
	return rc;
}

/*
 * Object directories a git hook sees beyond the repository's own: while a
 * push is being received, git keeps the pushed objects in a quarantine
 * directory (GIT_QUARANTINE_PATH, also exported as GIT_OBJECT_DIRECTORY)
 * until pre-receive accepts them, and lists further stores in
 * GIT_ALTERNATE_OBJECT_DIRECTORIES (':'-separated). git itself honours these
 * for every command run in that environment; libgit2 does not unless asked,
 * so without them a hook could not read the revision it must judge. Adding
 * an object directory only adds content-addressed objects, so it cannot
 * change what an id resolves to. Missing or non-directory paths are skipped
 * (the variables may be stale in a child's environment).
 */
static int add_one_object_dir(git_odb *odb, const char *dir, const char *where)
{
	struct stat st;

	if (!dir || !*dir || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	/* Loose objects and packs alike (receive-pack indexes a large push into
	 * a pack inside the quarantine). */
	if (git_odb_add_disk_alternate(odb, dir) < 0)
		return git_fail(where, "cannot add the object directory from the environment");
	return 0;
}

static int add_env_object_dirs(git_repository *repo, const char *where)
{
	const char *quarantine = getenv("GIT_QUARANTINE_PATH");
	const char *objdir = getenv("GIT_OBJECT_DIRECTORY");
	const char *alternates = getenv("GIT_ALTERNATE_OBJECT_DIRECTORIES");
	char *list = NULL, *save = NULL, *dir;
	git_odb *odb = NULL;
	int rc = 0;

	if (!(quarantine && *quarantine) && !(objdir && *objdir) && !(alternates && *alternates))
		return 0;
	if (git_repository_odb(&odb, repo) < 0)
		return git_fail(where, "cannot open the object database");
	rc = add_one_object_dir(odb, quarantine, where);
	if (rc == 0 && objdir && (!quarantine || strcmp(objdir, quarantine) != 0))
		rc = add_one_object_dir(odb, objdir, where);
	if (rc == 0 && alternates && *alternates) {
		list = strdup(alternates);
		if (!list)
			rc = art_error_set(AF_ENOMEM, "out of memory");
		for (dir = list ? strtok_r(list, ":", &save) : NULL; rc == 0 && dir;
		     dir = strtok_r(NULL, ":", &save))
			rc = add_one_object_dir(odb, dir, where);
	}
	free(list);
	git_odb_free(odb);
	return rc;
}

/* ---- plain directory ---------------------------------------------------- */

static int dir_read_file(collector *c, int dfd, const char *name, const char *path)
{
	char *data = NULL;
	size_t len = 0, cap;
	struct stat st;
	int fd, rc = 0;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return symlink_refused(c, path);
		return art_error_set(AF_EIO, "%s: %s: cannot open: %s", c->where, path,
				     strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		rc = art_error_set(AF_EIO, "%s: %s: cannot stat: %s", c->where, path,
				   strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode))
		goto cleanup; /* replaced by a FIFO or device since the walk saw it */
	if (st.st_size < 0 || (unsigned long long)st.st_size > PIPE_SOURCE_MAX_FILE_BYTES) {
		rc = check_file_size(c, path, PIPE_SOURCE_MAX_FILE_BYTES + 1);
		goto cleanup;
	}
	/* One byte of slack detects a file that grew after fstat. */
	cap = (size_t)st.st_size + 2;
	data = malloc(cap);
	if (!data) {
		rc = art_error_set(AF_ENOMEM, "%s: %s: out of memory", c->where, path);
		goto cleanup;
	}
	for (;;) {
		ssize_t n;

		if (len == cap - 1) {
			char *bigger;

			if (len > PIPE_SOURCE_MAX_FILE_BYTES) {
				rc = check_file_size(c, path, len);
				goto cleanup;
			}
			bigger = realloc(data, cap * 2);
			if (!bigger) {
				rc = art_error_set(AF_ENOMEM, "%s: %s: out of memory", c->where, path);
				goto cleanup;
			}
			data = bigger;
			cap *= 2;
		}
		n = read(fd, data + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = art_error_set(AF_EIO, "%s: %s: read failed: %s", c->where, path,
					   strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	data[len] = '\0';
	rc = add_file(c, path, data, len);
	data = NULL;
cleanup:
	free(data);
	close(fd);
	return rc;
}

/* Walks the directory open as dfd; always closes dfd. */
static int dir_walk(collector *c, int dfd, char *path, size_t plen, unsigned depth)
{
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	dir = fdopendir(dfd);
	if (!dir) {
		rc = art_error_set(AF_EIO, "%s: %s: cannot list: %s", c->where,
				   plen ? path : ".", strerror(errno));
		close(dfd);
		return rc;
	}
	for (;;) {
		size_t len = plen;
		struct stat st;
		int sub;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno)
				rc = art_error_set(AF_EIO, "%s: %s: cannot list: %s", c->where,
						   plen ? path : ".", strerror(errno));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = count_entry(c);
		if (rc < 0)
			break;
		if (de->d_name[0] == '.')
			continue;
		rc = path_push(c, path, &len, de->d_name);
		if (rc < 0)
			break;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = art_error_set(AF_EIO, "%s: %s: cannot stat: %s", c->where, path,
					   strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = check_depth(c, path, depth + 1);
			if (rc == 0) {
				sub = openat(dfd, de->d_name,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub < 0 && errno == ELOOP)
					rc = 0; /* became a symlink: skipped like any linked folder */
				else if (sub < 0)
					rc = art_error_set(AF_EIO, "%s: %s: cannot open: %s", c->where,
							   path, strerror(errno));
				else
					rc = dir_walk(c, sub, path, len, depth + 1);
			}
		} else if (S_ISREG(st.st_mode) && wanted_name(de->d_name)) {
			rc = dir_read_file(c, dfd, de->d_name, path);
		} else if (S_ISLNK(st.st_mode) && wanted_name(de->d_name)) {
			rc = symlink_refused(c, path);
		}
		path[plen] = '\0';
		if (rc < 0)
			break;
	}
	closedir(dir);
	return rc;
}

/*
 * Open subdir below the directory rootfd one component at a time, refusing
 * symlinks. *out is -1 (and 0 is returned) when subdir is "" (the root) or
 * when a component is missing and missing_ok is set.
 */
static int dir_find_subdir(int *out, collector *c, int rootfd, const char *subdir,
			   bool missing_ok)
{
	char comp[PIPE_SOURCE_MAX_PATH + 1];
	const char *p = subdir;
	int cur = rootfd, next, rc = 0;

	*out = -1;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		struct stat st;

		memcpy(comp, p, n);
		comp[n] = '\0';
		if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				if (!missing_ok)
					rc = art_error_set(AF_ENOTFOUND, "%s: no folder '%s'",
							   c->where, subdir);
			} else {
				rc = art_error_set(AF_EIO, "%s: %s: cannot stat: %s", c->where,
						   subdir, strerror(errno));
			}
			goto cleanup;
		}
		if (S_ISLNK(st.st_mode)) {
			rc = art_error_set(AF_EDENIED, "%s: '%s' is a symbolic link; links are "
					   "never followed", c->where, subdir);
			goto cleanup;
		}
		if (!S_ISDIR(st.st_mode)) {
			rc = art_error_set(AF_EINVAL, "%s: '%s' is not a folder", c->where, subdir);
			goto cleanup;
		}
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			rc = art_error_set(errno == ELOOP ? AF_EDENIED : AF_EIO,
					   "%s: %s: cannot open: %s", c->where, subdir,
					   strerror(errno));
			goto cleanup;
		}
		if (cur != rootfd)
			close(cur);
		cur = next;
		p += n;
		if (*p == '/')
			p++;
	}
	*out = cur == rootfd ? -1 : cur; /* -1: read the root itself */
	cur = rootfd;
cleanup:
	if (cur != rootfd)
		close(cur);
	return rc;
}

static int read_dir(collector *c, const char *repo_dir, const char *subdir_arg)
{
	char path[PIPE_SOURCE_MAX_PATH + 1];
	char *subdir = NULL;
	int rootfd, dfd = -1, rc;

	c->where = repo_dir;
	rootfd = open(repo_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return art_error_set(errno == ENOENT ? AF_ENOTFOUND : AF_EIO,
				     "%s: cannot open: %s", repo_dir, strerror(errno));
	if (subdir_arg) {
		rc = normalise_subdir(&subdir, subdir_arg);
		if (rc == 0)
			rc = dir_find_subdir(&dfd, c, rootfd, subdir, false);
	} else {
		subdir = strdup(PIPE_SOURCE_DEFAULT_SUBDIR);
		rc = subdir ? dir_find_subdir(&dfd, c, rootfd, subdir, true)
			    : art_error_set(AF_ENOMEM, "out of memory");
		if (rc == 0 && dfd < 0)
			subdir[0] = '\0';
	}
	if (rc < 0)
		goto cleanup;
	if (dfd < 0) {
		/* The root itself: walk a duplicate so rootfd stays ours to close. */
		dfd = dup(rootfd);
		if (dfd < 0) {
			rc = art_error_set(AF_EIO, "%s: %s", repo_dir, strerror(errno));
			goto cleanup;
		}
	}
	memcpy(path, subdir, strlen(subdir) + 1);
	rc = dir_walk(c, dfd, path, strlen(path), 0);
	if (rc < 0)
		goto cleanup;
	if (asprintf(&c->src->origin, "%s (working directory)", repo_dir) < 0) {
		c->src->origin = NULL;
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	c->src->subdir = subdir;
	subdir = NULL;
cleanup:
	free(subdir);
	close(rootfd);
	return rc;
}

/* ---- public --------------------------------------------------------------- */

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const pipe_file *)a)->path, ((const pipe_file *)b)->path);
}

int pipe_source_read(pipe_source **out, const char *repo_dir, const char *rev,
		     const char *subdir)
{
	git_repository *repo = NULL;
	collector c = {0};
	bool git_ready = false;
	struct stat st;
	int rc, grc;

	if (!out)
		return art_error_set(AF_EINVAL, "pipe_source_read: out is NULL");
	*out = NULL;
	if (!repo_dir || !*repo_dir)
		return art_error_set(AF_EINVAL, "no repository directory given");
	if (strlen(repo_dir) > PIPE_SOURCE_MAX_PATH)
		return art_error_set(AF_ETOOBIG, "repository path longer than %u bytes",
				     PIPE_SOURCE_MAX_PATH);
	if (rev && (!*rev || strlen(rev) > PIPE_SOURCE_MAX_PATH))
		return art_error_set(AF_EINVAL, "%s: invalid revision", repo_dir);
	if (stat(repo_dir, &st) < 0)
		return art_error_set(errno == ENOENT || errno == ENOTDIR ? AF_ENOTFOUND : AF_EIO,
				     "%s: cannot open the repository: %s", repo_dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return art_error_set(AF_EINVAL, "%s: not a directory", repo_dir);
	c.src = calloc(1, sizeof(*c.src));
	if (!c.src)
		return art_error_set(AF_ENOMEM, "out of memory");
	if (git_libgit2_init() < 0) {
		rc = git_fail(repo_dir, "cannot initialise libgit2");
		goto cleanup;
	}
	git_ready = true;
	grc = git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (grc == GIT_ENOTFOUND) {
		if (rev) {
			rc = art_error_set(AF_EINVAL, "%s is not a git repository; a revision "
					   "('%s') needs one (omit it to read the directory as is)",
					   repo_dir, rev);
			goto cleanup;
		}
		rc = read_dir(&c, repo_dir, subdir);
	} else if (grc < 0) {
		rc = git_fail(repo_dir, "cannot open the git repository");
	} else {
		rc = add_env_object_dirs(repo, repo_dir);
		if (rc == 0)
			rc = read_git(&c, repo, repo_dir, rev, subdir);
	}
	if (rc < 0)
		goto cleanup;
	if (c.src->n > 1)
		qsort(c.src->files, c.src->n, sizeof(*c.src->files), file_cmp);
	*out = c.src;
	c.src = NULL;
cleanup:
	git_repository_free(repo);
	if (git_ready)
		git_libgit2_shutdown();
	pipe_source_free(c.src);
	return rc;
}

const pipe_file *pipe_source_find(const pipe_source *s, const char *path)
{
	pipe_file key;

	if (!s || !path || !s->n)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.path = (char *)path;
	return bsearch(&key, s->files, s->n, sizeof(*s->files), file_cmp);
}

void pipe_source_free(pipe_source *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->files[i].path);
		free(s->files[i].data);
	}
	free(s->files);
	free(s->commit);
	free(s->origin);
	free(s->subdir);
	free(s);
}
