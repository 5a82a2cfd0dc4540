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
		cmocka_unit_test(test_kv__answered_puts_survive_sigkill),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
