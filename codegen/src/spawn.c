/*
 * spawn.c - run a compiler or tool as a child process: posix_spawn with an
 * argv array (no shell, no quoting), its own process group so that a
 * timeout kills the tool and everything it started (clang runs wasm-ld, cc
 * runs cc1, as and ld), stdout+stderr captured through one pipe.
 *
 * Thread-safety: the pipe is created O_CLOEXEC, so a spawn on another
 * thread cannot inherit it and keep it open; posix_spawn itself is
 * thread-safe. environ is not read (only getenv("PATH")).
 */
#include "gen_spawn.h"

#include "art/error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keep at most the last GEN_SPAWN_OUTPUT_MAX bytes; < 0 when out of memory. */
static int keep_output(art_buf *out, const char *data, size_t n)
{
	if (!out)
		return 0;
	if (out->len + n > GEN_SPAWN_OUTPUT_MAX) {
		size_t drop = out->len + n - GEN_SPAWN_OUTPUT_MAX;

		if (drop >= out->len) {
			out->len = 0;
			if (n > GEN_SPAWN_OUTPUT_MAX) {
				data += n - GEN_SPAWN_OUTPUT_MAX;
				n = GEN_SPAWN_OUTPUT_MAX;
			}
		} else {
			memmove(out->data, out->data + drop, out->len - drop);
			out->len -= drop;
		}
		if (out->data)
			out->data[out->len] = '\0';
	}
	return art_buf_append(out, data, n);
}

/* Wait for pid until deadline; -1 on timeout. */
static int wait_until(pid_t pid, long long deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		struct timespec ts = {0, 5 * 1000 * 1000};

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return 0; /* already reaped: treat as done */
		if (now_ms() >= deadline)
			return -1;
		nanosleep(&ts, NULL);
	}
}

int gen__spawn(const char *const *argv, const char *cwd, const char *tmpdir, int timeout_ms,
	       art_buf *output, int *exit_status)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	char *path_env = NULL, *tmp_env = NULL;
	const char *path = getenv("PATH");
	char *envp[4];
	int fds[2] = {-1, -1}, status = 0, rc = 0, err, timed_out = 0, fa_ok = 0, attr_ok = 0;
	int out_rc = 0; /* a failed append: the output (a version, say) would be cut */
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	pid_t pid = -1;
	size_t e = 0;

	*exit_status = -1;
	if (asprintf(&path_env, "PATH=%s", path ? path : "/usr/bin:/bin") < 0) {
		path_env = NULL;
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	envp[e++] = path_env;
	envp[e++] = (char *)"LC_ALL=C";
	if (tmpdir) {
		if (asprintf(&tmp_env, "TMPDIR=%s", tmpdir) < 0) {
			tmp_env = NULL;
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
		envp[e++] = tmp_env;
	}
	envp[e] = NULL;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		rc = art_error_set(AF_EIO, "%s: pipe: %s", argv[0], strerror(errno));
		goto cleanup;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	fa_ok = 1;
	if (posix_spawnattr_init(&attr) != 0) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	attr_ok = 1;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGCHLD);
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, fds[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, fds[1], 2) != 0 ||
	    posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
	    (cwd && posix_spawn_file_actions_addchdir_np(&fa, cwd) != 0) ||
	    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						    POSIX_SPAWN_SETSIGDEF) != 0 ||
	    posix_spawnattr_setpgroup(&attr, 0) != 0 ||
	    posix_spawnattr_setsigmask(&attr, &none) != 0 ||
	    posix_spawnattr_setsigdefault(&attr, &dflt) != 0) {
		rc = art_error_set(AF_ENOMEM, "%s: cannot prepare the process", argv[0]);
		goto cleanup;
	}
	err = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, envp);
	if (err != 0) {
		pid = -1;
		rc = art_error_set(AF_EIO, "%s: cannot run: %s", argv[0], strerror(err));
		goto cleanup;
	}
	close(fds[1]);
	fds[1] = -1;

	for (;;) {
		struct pollfd p = {fds[0], POLLIN, 0};
		long long left = deadline - now_ms();
		char chunk[4096];
		ssize_t n;
		int pr;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		pr = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* EOF: every writer (the tool and its children) is gone */
		if (out_rc == 0)
			out_rc = keep_output(output, chunk, (size_t)n); /* read on to the end */
	}
	if (!timed_out && wait_until(pid, deadline, &status) < 0)
		timed_out = 1;
	if (timed_out) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		rc = art_error_set(AF_EIO, "%s timed out after %d ms and was killed", argv[0],
				   timeout_ms);
		goto cleanup;
	}
	if (WIFEXITED(status))
		*exit_status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		*exit_status = 128 + WTERMSIG(status);
	if (out_rc < 0)
		rc = art_error_set(AF_ENOMEM, "%s: out of memory keeping its output", argv[0]);
cleanup:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	free(path_env);
	free(tmp_env);
	return rc;
}

char *gen__which(const char *name)
{
	const char *path = getenv("PATH");
	const char *p, *end;
	char *cand = NULL;
	struct stat st;

	if (!name || !*name) {
		errno = ENOENT;
		return NULL;
	}
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
	for (p = path ? path : "/usr/bin:/bin"; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		if (end == p)
			continue;
		if (asprintf(&cand, "%.*s/%s", (int)(end - p), p, name) < 0) {
			errno = ENOMEM;
			return NULL;
		}
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
			return cand;
		free(cand);
		cand = NULL;
	}
	errno = ENOENT;
	return NULL;
}
