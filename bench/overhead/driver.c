/*
 * driver.c - times the kernels of kernels.c. Built twice by overhead.sh:
 * natively (-DAF_NATIVE, kernels.c linked in) and over wasm2c's translation
 * of kernels.wasm (guard-page memory, as the runtime runs agents).
 * Prints one line per kernel: name, best-of-R thread CPU seconds (CPU
 * time, not wall time: the machine may be shared), checksum.
 * Usage: driver ROUNDS SCALE [sha256|json|match]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef AF_NATIVE
uint32_t sha256_run(uint32_t iters);
uint32_t json_run(uint32_t iters);
uint32_t match_run(uint32_t iters);
#define CALL(fn, n) fn(n)
#else
#include "k.h"
static Z_kernels_instance_t inst;
#define CALL(fn, n) Z_kernelsZ_##fn(&inst, n)
#endif

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define RUN(fn, iters)                                                          \
	do {                                                                    \
		double best = 1e30;                                             \
		uint32_t sum = 0;                                               \
		for (int r = 0; r < rounds; r++) {                              \
			double t0 = now();                                      \
			sum = CALL(fn, iters);                                  \
			double t = now() - t0;                                  \
			if (t < best)                                           \
				best = t;                                       \
		}                                                               \
		printf("%s %.6f %08x\n", #fn, best, (unsigned)sum);            \
	} while (0)

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
	uint32_t scale = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1;

#ifndef AF_NATIVE
	wasm_rt_init();
	Z_kernels_init_module();
	Z_kernels_instantiate(&inst);
#endif
	const char *only = argc > 3 ? argv[3] : "";
	if (!*only || strcmp(only, "sha256") == 0)
		RUN(sha256_run, 200 * scale);
	if (!*only || strcmp(only, "json") == 0)
		RUN(json_run, 4 * scale);
	if (!*only || strcmp(only, "match") == 0)
		RUN(match_run, 20 * scale);
#ifndef AF_NATIVE
	Z_kernels_free(&inst);
	wasm_rt_free();
#endif
	return 0;
}
