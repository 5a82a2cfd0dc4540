/*
 * replay.c - the standalone driver of a fuzz harness (no libFuzzer): runs
 * LLVMFuzzerTestOneInput over every file it is given, so that the checked-in
 * corpora are replayed by ordinary builds (release, asan, coverage) and
 * `make test`, the way libgit2's fuzzers/standalone_driver.c does.
 *
 *   replay_<harness> [FILE|DIR]...
 *
 * With no argument it replays $AF_SRCDIR/fuzz/corpus/<harness>/ (the
 * harness name is FUZZ_HARNESS, set by the Makefile). A directory is read
 * one level deep, in name order. A harness finding a bug aborts (the exit
 * status and the file name being replayed say which input); an empty corpus
 * is an error, so a corpus that went missing cannot pass unnoticed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_HARNESS
#error "FUZZ_HARNESS must name the harness (-DFUZZ_HARNESS=\"...\")"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Replay one file; 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long len;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto cleanup;
	/* An exact-size heap copy, so reads past the input trip ASan. */
	data = malloc(len > 0 ? (size_t)len : 1);
	if (!data || fread(data, 1, (size_t)len, f) != (size_t)len)
		goto cleanup;
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, len);
	LLVMFuzzerTestOneInput(data, (size_t)len);
	rc = 0;
cleanup:
	if (rc < 0)
		fprintf(stderr, "replay: %s: cannot read\n", path);
	free(data);
	fclose(f);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replay a file or every regular file of a directory; the count in *n. */
static int replay_path(const char *path, size_t *n)
{
	struct dirent **names = NULL;
	struct stat st;
	char sub[4096];
	int i, count, rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*n)++;
		return replay_file(path);
	}
	count = scandir(path, &names, NULL, by_name);
	if (count < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (names[i]->d_name[0] != '.' &&
		    (size_t)snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name) < sizeof(sub) &&
		    stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
			(*n)++;
			if (replay_file(sub) < 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *src = getenv("AF_SRCDIR");
	char corpus[4096];
	size_t n = 0;
	int i, rc = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2) {
		snprintf(corpus, sizeof(corpus), "%s/fuzz/corpus/%s", src && *src ? src : ".",
			 FUZZ_HARNESS);
		rc = replay_path(corpus, &n);
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i], &n) < 0)
			rc = -1;
	if (n == 0) {
		fprintf(stderr, "replay: %s: no input replayed (empty or missing corpus)\n",
			FUZZ_HARNESS);
		return 1;
	}
	printf("%s: %zu inputs replayed%s\n", FUZZ_HARNESS, n, rc ? ", some unreadable" : "");
	return rc ? 1 : 0;
}
