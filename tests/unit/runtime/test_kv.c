/*
 * test_kv.c - group commit in the per-agent key-value store: concurrent
 * puts all land, in call order per thread; and durability: a writer
 * process killed with SIGKILL mid-stream loses no put it had answered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"

#include "art/error.h"
#include "rt/kv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16
#define PUTS 200

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/af-test-kv-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	lab_rmtree(root);
	return 0;
}

typedef struct {
	rt_kv *kv;
	int id;
	int fd;      /* acknowledgements go here (durability test), or -1 */
	int failures;
} writer;

/* Each thread writes its own keys t<id>-<n> and, every put, its "last" key. */
static void *write_loop(void *arg)
{
	writer *w = arg;
	char key[32], val[32], ack[40];
	int n, len;

	for (n = 0; w->fd >= 0 || n < PUTS; n++) {
		snprintf(key, sizeof(key), "t%d-%d", w->id, n);
		len = snprintf(val, sizeof(val), "%d", n);
		if (rt_kv_put(w->kv, "agent", key, strlen(key), val, (size_t)len) < 0) {
			w->failures++;
			continue;
		}
		snprintf(key, sizeof(key), "t%d-last", w->id);
		if (rt_kv_put(w->kv, "agent", key, strlen(key), val, (size_t)len) < 0)
			w->failures++;
		if (w->fd >= 0) {
			/* Answered: announce it (one write of < PIPE_BUF is atomic). */
			len = snprintf(ack, sizeof(ack), "t%d-%d\n", w->id, n);
			if (write(w->fd, ack, (size_t)len) != len)
				break;
		}
	}
	return NULL;
}

static void test_kv__concurrent_puts_all_land_in_order(void **state)
{
	pthread_t th[THREADS];
	writer w[THREADS];
	char dir[128], key[32], want[32], *v = NULL;
	size_t vlen;
	unsigned long commits = 0, puts = 0;
	rt_kv *kv = NULL;
	int i, n;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/concurrent", root);
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	for (i = 0; i < THREADS; i++) {
		w[i] = (writer){kv, i, -1, 0};
		assert_int_equal(pthread_create(&th[i], NULL, write_loop, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	rt_kv_stats(kv, &commits, &puts);
	assert_int_equal(puts, THREADS * PUTS * 2);
	assert_true(commits >= 1 && commits <= puts);
	print_message("group commit: %lu puts in %lu commits (%.1f a commit)\n", puts, commits,
		      (double)puts / (double)commits);
	rt_kv_close(kv);
	/* Reopened: every key, and each thread's last put wins ("last" = PUTS-1). */
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	for (i = 0; i < THREADS; i++) {
		for (n = 0; n < PUTS; n++) {
			snprintf(key, sizeof(key), "t%d-%d", i, n);
			snprintf(want, sizeof(want), "%d", n);
			assert_int_equal(rt_kv_get(kv, "agent", key, strlen(key), &v, &vlen), 0);
			assert_string_equal(v, want);
			free(v);
		}
		snprintf(key, sizeof(key), "t%d-last", i);
		snprintf(want, sizeof(want), "%d", PUTS - 1);
		assert_int_equal(rt_kv_get(kv, "agent", key, strlen(key), &v, &vlen), 0);
		assert_string_equal(v, want);
		free(v);
	}
	rt_kv_close(kv);
}

/* A truncated data file is a clean AF_EDAMAGED at open, never SIGBUS. */
static void test_kv__truncated_file_is_refused(void **state)
{
	char dir[128], path[160], key[32];
	struct stat st;
	rt_kv *kv = NULL;
	int n;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/truncated", root);
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	for (n = 0; n < 2000; n++) {
		snprintf(key, sizeof(key), "k%d", n);
		assert_int_equal(rt_kv_put(kv, "agent", key, strlen(key), "0123456789abcdef0123456789",
					   26), 0);
	}
	rt_kv_close(kv);
	snprintf(path, sizeof(path), "%s/kv/data.mdb", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size / 2), 0);
	kv = NULL;
	assert_int_equal(rt_kv_open(&kv, dir), AF_EDAMAGED);
	assert_null(kv);
	assert_non_null(strstr(art_error_last(), "store is corrupt: data.mdb is "));
}

/* A caller's error comes back to it, with its message, from the leader. */
static void test_kv__errors_reach_their_caller(void **state)
{
	char dir[128], key[RT_KV_KEY_MAX + 1];
	rt_kv *kv = NULL;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/errors", root);
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	memset(key, 'k', sizeof(key));
	assert_int_equal(rt_kv_put(kv, "agent", key, sizeof(key), "1", 1), AF_ETOOBIG);
	assert_non_null(strstr(art_error_last(), "over the limit"));
	assert_int_equal(rt_kv_put(kv, "agent", "ok", 2, "1", 1), 0);
	rt_kv_close(kv);
}

/* Bad arguments and unusable folders are refused with their reason, and a
 * refused call leaves the store as it was. */
static void test_kv__bad_arguments_and_folders_are_refused(void **state)
{
	char dir[128], path[160], agent[66], *value = NULL;
	size_t len = 0;
	rt_kv *kv = NULL;
	FILE *f;

	(void)state;
	assert_int_equal(rt_kv_open(NULL, root), AF_EINVAL);
	assert_int_equal(rt_kv_open(&kv, NULL), AF_EINVAL);
	assert_null(kv);
	/* the data folder is a file: no kv folder in it */
	snprintf(dir, sizeof(dir), "%s/plain-file", root);
	f = fopen(dir, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rt_kv_open(&kv, dir), AF_EIO);
	assert_non_null(strstr(art_error_last(), "kv: cannot create"));
	assert_null(kv);
	/* <dir>/kv is a file: not a folder to open */
	snprintf(dir, sizeof(dir), "%s/kv-file", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/kv", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rt_kv_open(&kv, dir), AF_EIO);
	assert_non_null(strstr(art_error_last(), "cannot open"));
	assert_non_null(strstr(art_error_last(), "kv-file/kv"));
	assert_null(kv);

	snprintf(dir, sizeof(dir), "%s/args", root);
	assert_int_equal(rt_kv_open(&kv, dir), 0);
	assert_int_equal(rt_kv_put(kv, "a", "k", 1, "old", 3), 0);
	assert_int_equal(rt_kv_put(NULL, "a", "k", 1, "v", 1), AF_EINVAL);
	assert_string_equal(art_error_last(), "kv: no key-value store");
	assert_int_equal(rt_kv_get(NULL, "a", "k", 1, &value, &len), AF_EINVAL);
	assert_int_equal(rt_kv_put(kv, NULL, "k", 1, "v", 1), AF_EINVAL);
	assert_string_equal(art_error_last(), "kv: bad agent name");
	assert_int_equal(rt_kv_put(kv, "", "k", 1, "v", 1), AF_EINVAL);
	memset(agent, 'a', sizeof(agent) - 1);
	agent[sizeof(agent) - 1] = '\0'; /* 65 bytes: one over */
	assert_int_equal(rt_kv_put(kv, agent, "k", 1, "v", 1), AF_EINVAL);
	assert_int_equal(rt_kv_get(kv, agent, "k", 1, &value, &len), AF_EINVAL);
	agent[64] = '\0'; /* 64: fine */
	assert_int_equal(rt_kv_put(kv, agent, "k", 1, "v64", 3), 0);
	assert_int_equal(rt_kv_put(kv, "a", NULL, 1, "v", 1), AF_EINVAL);
	assert_int_equal(rt_kv_put(kv, "a", "k", 0, "v", 1), AF_EINVAL);
	assert_string_equal(art_error_last(), "kv: empty key");
	assert_int_equal(rt_kv_get(kv, "a", "k", 0, &value, &len), AF_EINVAL);
	assert_int_equal(rt_kv_put(kv, "a", "k", 1, "v", RT_KV_VALUE_MAX + 1), AF_ETOOBIG);
	assert_non_null(strstr(art_error_last(), "value of 65537 bytes is over the limit"));
	/* nothing refused was written */
	assert_int_equal(rt_kv_get(kv, "a", "k", 1, &value, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(value, "old", 3);
	free(value);
	value = NULL;
	assert_int_equal(rt_kv_get(kv, agent, "k", 1, &value, &len), 0);
	assert_memory_equal(value, "v64", 3);
	free(value);
	rt_kv_close(kv);
	rt_kv_close(NULL);
}

/*
 * Durability: a child process writes from 8 threads and announces each
 * answered put on a pipe; it is killed with SIGKILL mid-stream. Every
 * announced put must be in the store afterwards, with its value.
 */
static void test_kv__answered_puts_survive_sigkill(void **state)
{
	char dir[128], buf[1 << 16], *line, *save, *v = NULL, want[32];
	size_t have = 0, vlen;
	int pfd[2], status, checked = 0, round;
	pid_t pid;
	rt_kv *kv = NULL;

	(void)state;
	for (round = 0; round < 3; round++) {
		snprintf(dir, sizeof(dir), "%s/durable%d", root, round);
		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			pthread_t th[8];
			writer w[8];
			int i;

			close(pfd[0]);
			if (rt_kv_open(&kv, dir) < 0)
				_exit(3);
			for (i = 0; i < 8; i++) {
				w[i] = (writer){kv, i, pfd[1], 0};
				pthread_create(&th[i], NULL, write_loop, &w[i]);
			}
			for (i = 0; i < 8; i++)
				pthread_join(th[i], NULL);
			_exit(4);
		}
		close(pfd[1]);
		/* Read acknowledgements until a few hundred came, then kill. */
		have = 0;
		while (have < 4000) {
			ssize_t n = read(pfd[0], buf + have, sizeof(buf) - 1 - have);

			assert_true(n > 0);
			have += (size_t)n;
		}
		assert_int_equal(kill(pid, SIGKILL), 0);
		/* Acknowledgements written before the kill are still in the pipe. */
		for (;;) {
			ssize_t n = read(pfd[0], buf + have, sizeof(buf) - 1 - have);

			if (n <= 0)
				break;
			have += (size_t)n;
		}
		close(pfd[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		buf[have] = '\0';
		/* A line cut by the buffer's end is not complete: drop it. */
		if (have && buf[have - 1] != '\n')
			*strrchr(buf, '\n') = '\0';
		assert_int_equal(rt_kv_open(&kv, dir), 0);
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			snprintf(want, sizeof(want), "%s", strchr(line, '-') + 1);
			if (rt_kv_get(kv, "agent", line, strlen(line), &v, &vlen) != 0)
				fail_msg("answered put %s is missing after SIGKILL", line);
			assert_string_equal(v, want);
			free(v);
			checked++;
		}
		rt_kv_close(kv);
	}
	print_message("%d answered puts checked after 3 SIGKILLs\n", checked);
	assert_true(checked > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv__concurrent_puts_all_land_in_order),
		cmocka_unit_test(test_kv__truncated_file_is_refused),
		cmocka_unit_test(test_kv__errors_reach_their_caller),
		cmocka_unit_test(test_kv__bad_arguments_and_folders_are_refused),
		cmocka_unit_test(test_kv__answered_puts_survive_sigkill),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
