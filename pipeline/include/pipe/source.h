/*
 * pipe/source.h - read the template files of a repository: from the tree of
 * a git revision with libgit2 (no checkout, works on bare repositories), or
 * from a plain directory.
 *
 * What is read: every regular file whose name ends in `.yaml`, `.yml`,
 * `.yaml.sig` or `.yml.sig` anywhere under the templates folder (`templates`
 * by default; when the repository has no such folder, the repository root).
 * Both modes apply the same rules, so a directory and a commit of the same
 * tree give the same file set:
 *
 *  - entries whose name starts with '.' (files and folders: .git, .github,
 *    editor lock files) are skipped;
 *  - symbolic links are never followed. A symlink whose name looks like a
 *    template or a signature is an error (AF_EDENIED): a link could point
 *    outside the repository, or make one reviewed file stand for another.
 *    Any other symlink (a linked folder, a README link) is skipped;
 *  - submodules (gitlinks) and other special files (FIFOs, sockets,
 *    devices) are skipped;
 *  - names with control characters are refused (AF_EINVAL), so every path
 *    prints safely in a diagnostic.
 *
 * Caps (hostile repositories): PIPE_SOURCE_MAX_FILES files,
 * PIPE_SOURCE_MAX_FILE_BYTES per file, PIPE_SOURCE_MAX_TOTAL_BYTES in all,
 * folders nested at most PIPE_SOURCE_MAX_DEPTH deep below the templates
 * folder, paths at most PIPE_SOURCE_MAX_PATH bytes. The template parser
 * applies its own, smaller per-file cap (PIPE_YAML_MAX_BYTES) later; this
 * one only bounds what is loaded into memory.
 */
#ifndef PIPE_SOURCE_H
#define PIPE_SOURCE_H

#include <stddef.h>

#define PIPE_SOURCE_MAX_FILES 10000u
#define PIPE_SOURCE_MAX_FILE_BYTES ((size_t)1 << 20)
#define PIPE_SOURCE_MAX_TOTAL_BYTES ((size_t)256 << 20)
#define PIPE_SOURCE_MAX_DEPTH 32u
#define PIPE_SOURCE_MAX_PATH 1024u
/* Entries (of any kind) visited while walking; bounds the work on a huge tree. */
#define PIPE_SOURCE_MAX_ENTRIES 1000000u

#define PIPE_SOURCE_DEFAULT_SUBDIR "templates"

/** One file read from the source. */
typedef struct pipe_file {
	char *path;  /* owned; repository-relative, '/'-separated,
			e.g. "templates/base/agent.yaml" */
	char *data;  /* owned; NUL-terminated (the bytes may contain NULs) */
	size_t len;  /* bytes of data, excluding the terminating NUL */
} pipe_file;

/** Every template and signature file of one repository state. */
typedef struct pipe_source {
	pipe_file *files; /* owned, sorted by path (strcmp order) */
	size_t n;
	char *commit;     /* owned; 40-hex commit id when read from git, else NULL */
	char *origin;     /* owned; what was read, for messages:
			     "DIR@REV (commit abc1234)" or "DIR (working directory)" */
	char *subdir;     /* owned; the folder that was read, repository-relative
			     ("templates", or "" for the repository root) */
} pipe_source;

/**
 * Read the template files of a repository.
 *
 * @param[out] out       caller owns; free with pipe_source_free. NULL on error.
 * @param[in]  repo_dir  a git repository (bare, or the top of a working tree)
 *                       or a plain directory
 * @param[in]  rev       a revision (branch, tag, short or full commit id,
 *                       HEAD~1, ...; tags are peeled to their commit). With a
 *                       revision, repo_dir must be a git repository and only
 *                       the object database is read: no checkout, no
 *                       working-tree access. NULL: when repo_dir is a git
 *                       repository, HEAD is read the same way (uncommitted
 *                       changes are NOT seen); otherwise the directory is
 *                       read as it is on disk. Object directories named by
 *                       git's hook environment (GIT_QUARANTINE_PATH,
 *                       GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES)
 *                       are added to the repository's object database, so a
 *                       pre-receive hook reads the quarantined, not yet
 *                       accepted objects of a push.
 * @param[in]  subdir    the templates folder, repository-relative ("a/b",
 *                       no "..", no leading '/'; "" or "." = the root). NULL
 *                       means PIPE_SOURCE_DEFAULT_SUBDIR, falling back to the
 *                       repository root when that folder does not exist; an
 *                       explicit subdir that does not exist is an error.
 * @return 0, or (the message names the repository and revision):
 *   AF_ENOTFOUND  repo_dir does not exist; the revision is unknown; HEAD has
 *                 no commit yet; an explicit subdir does not exist
 *   AF_EINVAL     repo_dir or subdir is not a folder; rev given but repo_dir
 *                 is not a git repository; rev names no commit (a tree or
 *                 blob) or is ambiguous; a bad subdir; a name with control
 *                 characters
 *   AF_EDENIED    a symlink named like a template or signature
 *   AF_ETOOBIG    a file over PIPE_SOURCE_MAX_FILE_BYTES (names the path),
 *                 more than PIPE_SOURCE_MAX_FILES files, more than
 *                 PIPE_SOURCE_MAX_TOTAL_BYTES in all, a folder too deep,
 *                 a path too long, a tree too large to walk
 *   AF_EGIT       libgit2 failed otherwise (its message is included)
 *   AF_EIO        a directory or file could not be read (errno in message)
 *   AF_ENOMEM
 */
int pipe_source_read(pipe_source **out, const char *repo_dir, const char *rev,
		     const char *subdir);

/**
 * Look a file up by its repository-relative path (binary search).
 * @return the file, borrowed from s (valid until pipe_source_free), or NULL
 *         when s is NULL or no file has that path.
 */
const pipe_file *pipe_source_find(const pipe_source *s, const char *path);

/** Free a source and every file in it. NULL-safe. */
void pipe_source_free(pipe_source *s);

#endif
