/*
 * bench_kv.c - durable key-value writes per second (rt_kv_put, every put
 * answered only after a synced LMDB commit), with 1 writer thread (one
 * commit per put: the rate of the path before group commit) and with 8, 64
 * and 256 concurrent writers (group commit: one commit per batch). Prints a
 * Markdown table. Figures, not assertions.
 *
 * Usage: bench_kv [SECONDS_PER_ROW]   (default 3)
 */
#include "rt/kv.h"
#include "figures.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	rt_kv *kv;
	int id;
	double until;
	unsigned long done;
} writer;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *loop(void *arg)
{
	writer *w = arg;
	char key[48], val[] = "{\"version\":\"1.4.0\",\"by\":\"bench\"}";

	while (now_s() < w->until) {
		snprintf(key, sizeof(key), "releases/w%d-%lu", w->id, w->done);
		if (rt_kv_put(w->kv, "backup-manager", key, strlen(key), val, sizeof(val) - 1) < 0)
			break;
		w->done++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const int rows[] = {1, 8, 64, 256};
	double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;
	char dir[] = "/tmp/af-bench-kv-XXXXXX", cmd[128];
	size_t r;

	if (secs <= 0 || !mkdtemp(dir))
		return 2;
	printf("Durable kv_put (synced LMDB commit before each answer), %.1f s a row, %ld cores:\n\n",
	       secs, sysconf(_SC_NPROCESSORS_ONLN));
	printf("| writers | puts/s | puts per commit |\n|---|---|---|\n");
	double rate[sizeof(rows) / sizeof(rows[0])] = {0};

	for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		int n = rows[r], i;
		pthread_t *th = calloc((size_t)n, sizeof(*th));
		writer *w = calloc((size_t)n, sizeof(*w));
		unsigned long total = 0, commits = 0, puts = 0;
		double t0, t;
		rt_kv *kv = NULL;
		char sub[64];

		snprintf(sub, sizeof(sub), "%s/%d", dir, n);
		if (!th || !w || rt_kv_open(&kv, sub) < 0)
			return 1;
		t0 = now_s();
		for (i = 0; i < n; i++) {
			w[i] = (writer){kv, i, t0 + secs, 0};
			pthread_create(&th[i], NULL, loop, &w[i]);
		}
		for (i = 0; i < n; i++) {
			pthread_join(th[i], NULL);
			total += w[i].done;
		}
		t = now_s() - t0;
		rt_kv_stats(kv, &commits, &puts);
		rate[r] = (double)total / t;
		printf("| %d%s | %.0f | %.1f |\n", n, n == 1 ? " (one commit per put)" : "",
		       (double)total / t, commits ? (double)puts / (double)commits : 0.0);
		rt_kv_close(kv);
		free(th);
		free(w);
	}
	for (r = 1; r < sizeof(rows) / sizeof(rows[0]); r++) {
		char name[64];

		snprintf(name, sizeof(name), "durable kv_put, %d concurrent writers", rows[r]);
		bench_figure("kv", name, rate[r], "puts/s", "1 writer, one commit per put", rate[0]);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
