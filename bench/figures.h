/*
 * figures.h - the C benches' side of bench/lib/figure.sh's `figure`: one headline
 * figure (and its peer from the same run) appended to $AF_BENCH_FIGURES as
 * a tab-separated line for bench/summary.py. A no-op when unset.
 */
#ifndef AF_BENCH_FIGURES_H
#define AF_BENCH_FIGURES_H

#include <stdio.h>
#include <stdlib.h>

static inline void bench_figure(const char *bench, const char *name, double value, const char *unit,
				const char *peer, double peer_value)
{
	const char *path = getenv("AF_BENCH_FIGURES");
	FILE *fp;

	if (!path || !*path || !(fp = fopen(path, "a")))
		return;
	if (peer)
		fprintf(fp, "%s\t%s\t%.6g\t%s\t%s\t%.6g\n", bench, name, value, unit, peer, peer_value);
	else
		fprintf(fp, "%s\t%s\t%.6g\t%s\t\t\n", bench, name, value, unit);
	fclose(fp);
}

#endif
