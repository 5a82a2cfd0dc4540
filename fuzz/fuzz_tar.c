/*
 * fuzz_tar.c - art_bundle_tar_read, the strict ustar reader of release
 * bundles. An accepted archive is written back with art_bundle_tar_write
 * and read again: the same entries must come back (paths, types, sizes,
 * bytes), and no accepted path may escape (absolute, "..", backslash).
 */
#include "fuzz.h"

#include "art/bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 64

static void check_path(const char *p)
{
	const char *c;

	FUZZ_CHECK(p && *p && *p != '/', "bad path '%s'", p ? p : "(null)");
	FUZZ_CHECK(!strchr(p, '\\'), "backslash in '%s'", p);
	for (c = p; c; c = strchr(c, '/')) {
		if (*c == '/')
			c++;
		FUZZ_CHECK(strncmp(c, "../", 3) != 0 && strcmp(c, "..") != 0, "'..' in '%s'", p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	art_tar_entry *e = NULL, *again = NULL;
	size_t n = 0, n2 = 0, i, out_len = 0;
	char *out = NULL;
	FILE *f;

	if (art_bundle_tar_read(&e, &n, data, size, MAX_ENTRIES) != 0)
		return 0;
	FUZZ_CHECK(n <= MAX_ENTRIES, "%zu entries over the cap", n);
	for (i = 0; i < n; i++) {
		check_path(e[i].path);
		FUZZ_CHECK(e[i].type == '0' || e[i].type == '5', "type %c", e[i].type);
		FUZZ_CHECK(e[i].size <= size && (!e[i].size || (e[i].data >= data &&
				   e[i].data + e[i].size <= data + size)),
			   "entry %zu data outside the archive", i);
	}
	f = open_memstream(&out, &out_len);
	FUZZ_CHECK(f != NULL, "open_memstream");
	FUZZ_CHECK(art_bundle_tar_write(f, e, n) == 0, "an accepted archive does not write back");
	FUZZ_CHECK(fclose(f) == 0, "fclose");
	FUZZ_CHECK(art_bundle_tar_read(&again, &n2, out, out_len, MAX_ENTRIES) == 0,
		   "a written archive does not read back");
	FUZZ_CHECK(n2 == n, "%zu entries became %zu", n, n2);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(strcmp(e[i].path, again[i].path) == 0, "path %zu changed", i);
		FUZZ_CHECK(e[i].type == again[i].type && e[i].size == again[i].size,
			   "entry %zu changed", i);
		FUZZ_CHECK(!e[i].size || memcmp(e[i].data, again[i].data, e[i].size) == 0,
			   "bytes of entry %zu changed", i);
	}
	art_bundle_tar_free(again, n2);
	art_bundle_tar_free(e, n);
	free(out);
	return 0;
}
