/*
 * bench_sign.c - RSA-2048 PSS / SHA-256 signatures as the pipeline makes
 * and the runtime checks them (art_key_sign / art_key_verify over a 1 KiB
 * manifest-sized message), in operations per second on one thread for
 * AF_BENCH_SECONDS (default 2) each. The peer, `openssl speed rsa2048`
 * (same library, raw RSA with PKCS#1 padding: the modular exponentiation
 * dominates both), is run by bench/sign.sh in the same run.
 *
 * Usage: bench_sign [SECONDS]
 */
#include "art/keys.h"
#include "figures.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0, t0, t;
	unsigned char msg[1024];
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	unsigned long n;
	art_key *key = NULL;
	size_t i;

	if (secs <= 0 || art_key_generate(&key, 2048) != 0) {
		fprintf(stderr, "bench_sign: cannot generate a key\n");
		return 1;
	}
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 31u);
	printf("| operation (RSA-2048 PSS / SHA-256, 1 KiB message, 1 thread) | per second |\n|---|---|\n");
	for (n = 0, t0 = now_s(); (t = now_s() - t0) < secs; n++) {
		free(sig);
		sig = NULL;
		if (art_key_sign(&sig, &sig_len, key, msg, sizeof(msg)) != 0)
			return 1;
	}
	printf("| art_key_sign | %.0f |\n", (double)n / t);
	printf("SIGN %.1f\n", (double)n / t);
	for (n = 0, t0 = now_s(); (t = now_s() - t0) < secs; n++)
		if (art_key_verify(key, msg, sizeof(msg), sig, sig_len) != 0)
			return 1;
	printf("| art_key_verify | %.0f |\n", (double)n / t);
	printf("VERIFY %.1f\n", (double)n / t);
	free(sig);
	art_key_free(key);
	return 0;
}
