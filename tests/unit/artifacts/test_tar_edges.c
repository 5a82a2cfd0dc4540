/*
 * test_tar_edges.c - the ustar layer of bundles (art_bundle_tar_read,
 * art_bundle_tar_write) on archives built byte by byte here: what other
 * writers produce and must be read (a "./" root, old GNU magic, a ustar
 * prefix, pax path/size records and global headers, GNU long names, sizes
 * with leading spaces, directories without a trailing slash), and every
 * refusal of the reader with its message (base-256 and malformed sizes,
 * checksums, magic, unsafe or empty paths, links, devices and unknown
 * types, non-ASCII names, sized directories, non-zero padding, malformed,
 * oversized or dangling extension headers, truncation, trailing data,
 * duplicates, too many entries), and the writer's refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/bundle.h"
#include "art/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512u

typedef struct tarb {
	uint8_t *d;
	size_t len;
} tarb;

static void grow(tarb *t, size_t n)
{
	uint8_t *p = realloc(t->d, t->len + n);

	assert_non_null(p);
	memset(p + t->len, 0, n);
	t->d = p;
	t->len += n;
}

/* A header; size_field NULL: size in octal. magic: 0 ustar/00, 1 old GNU, 2 junk. */
static uint8_t *header(tarb *t, const char *name, char type, size_t size,
		       const char *size_field, int magic, const char *prefix)
{
	uint8_t *h;
	unsigned sum = 0;
	size_t i;

	grow(t, BLOCK);
	h = t->d + t->len - BLOCK;
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	if (size_field)
		memcpy(h + 124, size_field, strlen(size_field) < 12 ? strlen(size_field) : 12);
	else {
		char num[32];

		snprintf(num, sizeof(num), "%011zo", size & 077777777777u);
		memcpy(h + 124, num, 11);
	}
	memcpy(h + 136, "00000000000", 12);
	h[156] = (uint8_t)type;
	if (magic == 0) {
		memcpy(h + 257, "ustar", 6);
		memcpy(h + 263, "00", 2);
	} else if (magic == 1) {
		memcpy(h + 257, "ustar  ", 8);
	} else {
		memcpy(h + 257, "notar", 6);
	}
	if (prefix)
		memcpy(h + 345, prefix, strlen(prefix));
	memset(h + 148, ' ', 8);
	for (i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return h;
}

static void body(tarb *t, const void *p, size_t n)
{
	size_t padded = (n + BLOCK - 1) / BLOCK * BLOCK;

	grow(t, padded);
	memcpy(t->d + t->len - padded, p, n);
}

static void file(tarb *t, const char *name, const char *text)
{
	header(t, name, '0', strlen(text), NULL, 0, NULL);
	body(t, text, strlen(text));
}

static void pax(tarb *t, char type, const char *records)
{
	header(t, "PaxHeaders/x", type, strlen(records), NULL, 0, NULL);
	body(t, records, strlen(records));
}

static void end(tarb *t)
{
	grow(t, 2 * BLOCK);
}

static int read_all(const tarb *t, art_tar_entry **e, size_t *n)
{
	return art_bundle_tar_read(e, n, t->d, t->len, 100);
}

static void expect_refused(tarb *t, int rc_expected, const char *needle)
{
	art_tar_entry *e = NULL;
	size_t n = 9;
	int rc = read_all(t, &e, &n);

	if (rc != rc_expected)
		fail_msg("'%s': %d (%s), not %d", needle, rc, art_error_last(), rc_expected);
	if (!strstr(art_error_last(), needle))
		fail_msg("'%s' does not say '%s'", art_error_last(), needle);
	assert_null(e);
	assert_int_equal(n, 0);
	free(t->d);
	t->d = NULL;
	t->len = 0;
}

static void test_tar_edges__what_other_writers_produce_is_read(void **state)
{
	tarb t = {NULL, 0};
	art_tar_entry *e = NULL;
	size_t n = 0;

	(void)state;
	header(&t, "./", '5', 0, NULL, 0, NULL);          /* the root: skipped */
	file(&t, "./a.txt", "hello");                      /* "./" stripped */
	header(&t, "b.txt", '0', 3, "    00000003", 1, NULL); /* old GNU magic, spaces */
	body(&t, "abc", 3);
	header(&t, "f", '0', 2, NULL, 0, "some/dir");      /* ustar prefix */
	body(&t, "xy", 2);
	pax(&t, 'g', "18 comment=global\n");               /* global: ignored */
	pax(&t, 'x', "26 path=long/pax/name.txt\n10 size=4\n");
	header(&t, "ignored", '0', 0, NULL, 0, NULL);      /* pax size wins */
	body(&t, "data", 4);
	{
		/* pax records followed by NUL padding, as some writers leave */
		char rec[64] = "15 path=padded\n";

		header(&t, "PaxHeaders/y", 'x', sizeof(rec), NULL, 0, NULL);
		body(&t, rec, sizeof(rec));
		file(&t, "ignored-too", "p");
	}
	header(&t, "././@LongLink", 'L', 21, NULL, 1, NULL);
	body(&t, "gnu/long/name/file.c", 21);
	file(&t, "short", "gnu");
	header(&t, "adir", '5', 0, NULL, 0, NULL);         /* gets its '/' */
	end(&t);
	if (read_all(&t, &e, &n) != 0)
		fail_msg("read: %s", art_error_last());
	assert_int_equal(n, 7);
	assert_string_equal(e[0].path, "a.txt");
	assert_int_equal(e[0].size, 5);
	assert_memory_equal(e[0].data, "hello", 5);
	assert_string_equal(e[1].path, "b.txt");
	assert_int_equal(e[1].size, 3);
	assert_string_equal(e[2].path, "some/dir/f");
	assert_string_equal(e[3].path, "long/pax/name.txt");
	assert_int_equal(e[3].size, 4);
	assert_memory_equal(e[3].data, "data", 4);
	assert_string_equal(e[4].path, "padded");
	assert_string_equal(e[5].path, "gnu/long/name/file.c");
	assert_memory_equal(e[5].data, "gnu", 3);
	assert_string_equal(e[6].path, "adir/");
	assert_int_equal(e[6].type, '5');
	art_bundle_tar_free(e, n);
	free(t.d);
}

static void test_tar_edges__headers_refused(void **state)
{
	tarb t = {NULL, 0};
	uint8_t *h;

	(void)state;
	h = header(&t, "a", '0', 0, NULL, 0, NULL);
	h[124] = (uint8_t)0x80; /* base-256 size */
	{
		unsigned sum = 0;
		size_t i;

		memset(h + 148, ' ', 8);
		for (i = 0; i < BLOCK; i++)
			sum += h[i];
		snprintf((char *)h + 148, 8, "%06o", sum);
		h[155] = ' ';
	}
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "malformed size");
	header(&t, "a", '0', 0, "12x", 0, NULL);
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "malformed size");
	header(&t, "a", '0', 0, "", 0, NULL); /* no digits */
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "malformed size");
	h = header(&t, "a", '0', 0, NULL, 0, NULL);
	h[0] = 'b'; /* checksum no longer matches */
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "bad header checksum");
	header(&t, "a", '0', 0, NULL, 2, NULL);
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "not a ustar header");
}

static void test_tar_edges__paths_and_types_refused(void **state)
{
	static const struct {
		char type;
		const char *what;
	} types[] = {{'1', "a hard link"},        {'2', "a symbolic link"},
		     {'3', "a character device"}, {'4', "a block device"},
		     {'6', "a FIFO"},             {'7', "a contiguous file"},
		     {'Z', "an unsupported entry type"}};
	tarb t = {NULL, 0};
	size_t i;

	(void)state;
	file(&t, "a\\b", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "backslash");
	file(&t, "/etc/passwd", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "absolute path");
	file(&t, "a/../../b", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "path traversal");
	file(&t, "a//b", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "path traversal");
	file(&t, "./", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "empty name");
	/* a file named like a directory: its last component is empty */
	file(&t, "dir/", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "empty, '.' or '..' component");
	file(&t, "caf\xc3\xa9", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "non-ASCII");
	header(&t, "d/", '5', 5, NULL, 0, NULL);
	body(&t, "12345", 5);
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "malformed size");
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		header(&t, "thing", types[i].type, 0, NULL, 0, NULL);
		end(&t);
		expect_refused(&t, AF_ECORRUPT, types[i].what);
	}
	/* a GNU long link name introduces a link: refused with it */
	header(&t, "././@LongLink", 'K', 7, NULL, 1, NULL);
	body(&t, "target", 7);
	header(&t, "link", '2', 0, NULL, 1, NULL);
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "a symbolic link");
	file(&t, "same", "1");
	file(&t, "same", "2");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "appears twice");
}

static void test_tar_edges__extension_headers_refused(void **state)
{
	static const struct {
		const char *records, *needle;
	} bad[] = {
		{"abc", "malformed pax extended header"},
		{"99 path=x\n", "malformed pax extended header"},
		{"10 path=x!", "malformed pax extended header"},
		{"6 =ab\n", "malformed pax record"},
		{"8 pathx\n", "malformed pax record"},
		{"8 path=\n", "bad pax path"},
		{"11 size=1x\n", "bad pax size"},
		{"8 size=\n", "bad pax size"},
		{"17 linkpath=/etc\n", "links are refused"},
	};
	tarb t = {NULL, 0};
	uint8_t *h;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pax(&t, 'x', bad[i].records);
		file(&t, "a", "x");
		end(&t);
		expect_refused(&t, AF_ECORRUPT, bad[i].needle);
	}
	/* an extension header describing nothing, at the end */
	pax(&t, 'x', "10 path=x\n");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "describes no member");
	/* bigger than the archive */
	header(&t, "PaxHeaders/x", 'x', 5000, NULL, 0, NULL);
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "truncated or over");
	/* non-zero padding after it */
	pax(&t, 'x', "10 path=x\n");
	t.d[t.len - 1] = 'X';
	file(&t, "a", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "non-zero padding");
	/* a GNU long name that is empty */
	h = header(&t, "././@LongLink", 'L', 1, NULL, 1, NULL);
	(void)h;
	body(&t, "", 1);
	file(&t, "a", "x");
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "bad GNU long name");
}

static void test_tar_edges__truncation_and_limits(void **state)
{
	tarb t = {NULL, 0};
	art_tar_entry *e = NULL;
	size_t n = 0, i;
	char name[16];

	(void)state;
	file(&t, "a", "x");
	expect_refused(&t, AF_ECORRUPT, "no end marker");
	file(&t, "a", "x");
	grow(&t, BLOCK); /* one zero block, not two */
	expect_refused(&t, AF_ECORRUPT, "malformed end of archive");
	file(&t, "a", "x");
	end(&t);
	grow(&t, BLOCK);
	t.d[t.len - 10] = 1;
	expect_refused(&t, AF_ECORRUPT, "data after the end");
	header(&t, "a", '0', 100000, NULL, 0, NULL);
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "needs 100000 bytes");
	header(&t, "a", '0', 3, NULL, 0, NULL);
	body(&t, "abc", 3);
	t.d[t.len - 1] = 'z';
	end(&t);
	expect_refused(&t, AF_ECORRUPT, "non-zero padding");
	/* zero padding after the end marker is allowed */
	file(&t, "a", "x");
	end(&t);
	grow(&t, 3 * BLOCK);
	assert_int_equal(read_all(&t, &e, &n), 0);
	assert_int_equal(n, 1);
	art_bundle_tar_free(e, n);
	free(t.d);
	t.d = NULL;
	t.len = 0;
	/* more entries than allowed */
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		file(&t, name, "x");
	}
	end(&t);
	assert_int_equal(art_bundle_tar_read(&e, &n, t.d, t.len, 4), AF_ETOOBIG);
	assert_null(e);
	free(t.d);
}

static void test_tar_edges__writer_refusals(void **state)
{
	char long_path[128];
	art_tar_entry e = {long_path, (const uint8_t *)"x", 1, '0'};
	FILE *f = tmpfile(), *ro;

	(void)state;
	assert_non_null(f);
	memset(long_path, 'p', 100);
	long_path[100] = '\0';
	assert_int_equal(art_bundle_tar_write(f, &e, 1), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "ppp"));
	e.path = (char *)"fine";
	e.type = 'x';
	assert_int_equal(art_bundle_tar_write(f, &e, 1), AF_EINVAL);
	fclose(f);
	/* a stream that cannot be written */
	ro = fopen("/dev/null", "r");
	assert_non_null(ro);
	e.type = '0';
	assert_int_equal(art_bundle_tar_write(ro, &e, 1), AF_EIO);
	assert_int_equal(art_bundle_tar_write(ro, &e, 0), AF_EIO);
	fclose(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tar_edges__what_other_writers_produce_is_read),
		cmocka_unit_test(test_tar_edges__headers_refused),
		cmocka_unit_test(test_tar_edges__paths_and_types_refused),
		cmocka_unit_test(test_tar_edges__extension_headers_refused),
		cmocka_unit_test(test_tar_edges__truncation_and_limits),
		cmocka_unit_test(test_tar_edges__writer_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
