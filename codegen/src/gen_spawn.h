/*
 * gen_spawn.h - run a tool without a shell (shared inside codegen/src only).
 * Named gen_spawn.h, not spawn.h: with -I on this folder a "spawn.h" would
 * shadow the system <spawn.h> that spawn.c includes.
 */
#ifndef GEN_SPAWN_H
#define GEN_SPAWN_H

#include "art/util.h"

/** Bytes of a tool's output kept (the tail beyond is dropped). */
#define GEN_SPAWN_OUTPUT_MAX (64 * 1024)

/**
 * Run argv[0] (an absolute path) with argv, cwd as its working directory,
 * stdin from /dev/null, stdout and stderr into output (capped at
 * GEN_SPAWN_OUTPUT_MAX), in a new process group, with the environment
 * PATH (inherited), LC_ALL=C and, when tmpdir is not NULL, TMPDIR=tmpdir.
 * On timeout the whole group gets SIGKILL.
 * @param[out] exit_status  the exit code (0..255), or 128 + signal
 * @return 0 when the tool ran to its end (whatever its exit code); AF_EIO
 *         when it could not start or timed out (message says which);
 *         AF_ENOMEM
 */
int gen__spawn(const char *const *argv, const char *cwd, const char *tmpdir, int timeout_ms,
	       art_buf *output, int *exit_status);

/** Absolute path of an executable named name found in PATH, or NULL: errno
 * is then ENOMEM when out of memory (else not found). Caller frees. */
char *gen__which(const char *name);

#endif
