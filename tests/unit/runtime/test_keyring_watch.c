/*
 * test_keyring_watch.c - the keyring file followed without a restart and
 * the watcher's waits (runtime/src/keyring_watch.h), driven directly: every
 * check is an explicit rt_keyring_watch__check call and every wait an
 * rt_watch__wait with a zero timeout after the file operation (inotify
 * queues its event while the operation runs), so nothing depends on timing.
 *
 * Covers: a missing or unparsable keyring at open, a new signed version
 * picked up (1, then 0 while unchanged), a rewrite with the same bytes, a
 * file that does not parse / an older version written back / a keyring of
 * another root refused once and the keys in force kept, the file removed
 * (reported once, then quiet until it is back), a directory where the file
 * was (unreadable, said once), refusing() tracking all of it, and the waits:
 * timeouts, a stop, a change in a watched directory or file, odd paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../../runtime/src/keyring_watch.h"
#include "keyring_fixture.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
	char root[64], path[128], tmp[140];
	art_key *builder, *other_root;
	time_t t0;
} g;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A new signed version of the keyring (the fixture's root, version + 1). */
static void save_version(void)
{
	art_keyring *kr = NULL;

	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(keyring_fixture_save(kr, g.tmp), 0);
	assert_int_equal(rename(g.tmp, g.path), 0);
	art_keyring_free(kr);
}

static void put_text(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(g.tmp, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(g.tmp, path), 0);
}

static char *read_text(size_t *len)
{
	char *text = NULL;

	assert_int_equal(art_file_read(&text, len, g.path, ART_KEYRING_MAX_BYTES), 0);
	return text;
}

static int setup(void **state)
{
	(void)state;
	g.t0 = time(NULL);
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-kwatch-XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	snprintf(g.path, sizeof(g.path), "%s/keyring.json", g.root);
	snprintf(g.tmp, sizeof(g.tmp), "%s/keyring.tmp", g.root);
	if (art_key_generate(&g.builder, 2048) || art_key_generate(&g.other_root, 2048))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	art_key_free(g.builder);
	art_key_free(g.other_root);
	nftw(g.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Check once more: nothing new, nothing said. */
static void expect_quiet(rt_keyring_watch *w)
{
	rt_keyring_ref *kr = (rt_keyring_ref *)1;

	assert_int_equal(rt_keyring_watch__check(w, &kr), 0);
	assert_null(kr);
}

/* Check: refused (rc, message with want), the keys in force stay. */
static void expect_refused(rt_keyring_watch *w, int rc, const char *want)
{
	rt_keyring_ref *kr = (rt_keyring_ref *)1;

	assert_int_equal(rt_keyring_watch__check(w, &kr), rc);
	assert_null(kr);
	if (!strstr(art_error_last(), want) || !strstr(art_error_last(), "keeping the keys in force"))
		fail_msg("message '%s' lacks '%s'", art_error_last(), want);
	assert_true(rt_keyring_watch__refusing(w));
}

/* Check: the new version on disk is taken. */
static rt_keyring_ref *expect_new(rt_keyring_watch *w, const rt_keyring_ref *before)
{
	rt_keyring_ref *kr = NULL;

	assert_int_equal(rt_keyring_watch__check(w, &kr), 1);
	assert_non_null(kr);
	assert_non_null(kr->kr);
	assert_int_equal(atomic_load(&kr->refs), 2); /* ours and the watch's */
	if (before)
		assert_string_not_equal(kr->sha256, before->sha256);
	assert_false(rt_keyring_watch__refusing(w));
	return kr;
}

static void test_keyring_watch__open_refuses_a_missing_or_bad_file(void **state)
{
	rt_keyring_watch *w = (rt_keyring_watch *)1;
	rt_keyring_ref *first = (rt_keyring_ref *)1;
	static const char junk[] = "{\"format\": \"agentfactory-keyring/v2\", \"keys\": [";
	art_keyring *kr = NULL;

	(void)state;
	unlink(g.path);
	assert_int_equal(rt_keyring_watch__open(&w, &first, g.path), AF_ENOTFOUND);
	assert_null(w);
	assert_null(first);

	put_text(g.path, junk, sizeof(junk) - 1);
	assert_int_equal(rt_keyring_watch__open(&w, &first, g.path), AF_ECORRUPT);
	assert_null(w);
	assert_null(first);

	/* Unsigned (format v1): parsed, never trusted. */
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_save(kr, g.path), 0);
	art_keyring_free(kr);
	assert_true(rt_keyring_watch__open(&w, &first, g.path) < 0);
	assert_non_null(strstr(art_error_last(), "not signed"));
	assert_null(w);
	assert_null(first);

	/* NULL-safe helpers. */
	rt_keyring_watch__close(NULL);
	rt_keyring_ref__put(NULL);
	assert_null(rt_keyring_ref__get(NULL));
	assert_false(rt_keyring_watch__refusing(NULL));
	assert_string_equal(rt_keyring_watch__path(NULL), "");
}

static void test_keyring_watch__follows_new_versions_and_refuses_bad_ones(void **state)
{
	rt_keyring_watch *w = NULL;
	rt_keyring_ref *first = NULL, *second, *third;
	static const char junk[] = "{\"format\": \"agentfactory-keyring/v2\", \"keys\": [";
	char *v1_text, *v2_text;
	size_t v1_len, v2_len;
	art_keyring *kr = NULL;
	const art_key *signers[1];

	(void)state;
	save_version();
	v1_text = read_text(&v1_len);
	assert_int_equal(rt_keyring_watch__open(&w, &first, g.path), 0);
	assert_non_null(w);
	assert_non_null(first);
	assert_int_equal(atomic_load(&first->refs), 2);
	assert_string_equal(rt_keyring_watch__path(w), g.path);
	assert_false(rt_keyring_watch__refusing(w));
	/* The file was just written: it is re-read, but the same bytes are not news. */
	expect_quiet(w);
	/* Rewritten with the very same bytes (another inode): still nothing new. */
	put_text(g.path, v1_text, v1_len);
	expect_quiet(w);

	/* A newer signed version: taken once. */
	save_version();
	second = expect_new(w, first);
	assert_int_equal(atomic_load(&first->refs), 1); /* the watch let go of it */
	expect_quiet(w);
	v2_text = read_text(&v2_len);

	/* A file that does not parse: said once, then quiet; the keys in force stay. */
	put_text(g.path, junk, sizeof(junk) - 1);
	expect_refused(w, AF_ECORRUPT, "keyring");
	expect_quiet(w);
	assert_true(rt_keyring_watch__refusing(w));

	/* The older genuine version written back: a replay, refused. */
	put_text(g.path, v1_text, v1_len);
	expect_refused(w, AF_EVERSION, "is not newer than version");
	expect_quiet(w);

	/* Signed by a root the keyring in force does not know. */
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_add(kr, g.other_root, ART_ROLE_ROOT, 0, 0), 0);
	signers[0] = g.other_root;
	assert_int_equal(art_keyring_sign(kr, 1000, (time_t)253402300799LL, signers, 1), 0);
	assert_int_equal(art_keyring_save(kr, g.tmp), 0);
	assert_int_equal(rename(g.tmp, g.path), 0);
	art_keyring_free(kr);
	expect_refused(w, AF_ESIGNATURE, "root key of version");

	/* The content in force written back: no longer refusing, nothing new. */
	put_text(g.path, v2_text, v2_len);
	expect_quiet(w);
	assert_false(rt_keyring_watch__refusing(w));

	/* The next genuine version is followed again. */
	save_version();
	third = expect_new(w, second);

	rt_keyring_watch__close(w);
	assert_int_equal(atomic_load(&third->refs), 1); /* ours only: the keyring outlives the watch */
	assert_non_null(third->kr);
	rt_keyring_ref__put(first);
	rt_keyring_ref__put(second);
	rt_keyring_ref__put(third);
	free(v1_text);
	free(v2_text);
}

static void test_keyring_watch__missing_or_unreadable_file_said_once(void **state)
{
	rt_keyring_watch *w = NULL;
	rt_keyring_ref *first = NULL, *next;

	(void)state;
	save_version();
	assert_int_equal(rt_keyring_watch__open(&w, &first, g.path), 0);

	/* Removed (a secrets agent between two renders): said once. */
	assert_int_equal(unlink(g.path), 0);
	expect_refused(w, AF_ENOTFOUND, "No such file");
	expect_quiet(w); /* the same absence: not even re-read */
	expect_quiet(w);

	/* Back with a new version: taken, no longer refusing. */
	save_version();
	next = expect_new(w, first);
	rt_keyring_ref__put(next);

	/* A directory where the file was: present, but it cannot be read. */
	assert_int_equal(unlink(g.path), 0);
	assert_int_equal(mkdir(g.path, 0700), 0);
	{
		rt_keyring_ref *kr = (rt_keyring_ref *)1;

		assert_true(rt_keyring_watch__check(w, &kr) < 0);
		assert_null(kr);
		assert_non_null(strstr(art_error_last(), "keeping the keys in force"));
		assert_true(rt_keyring_watch__refusing(w));
	}
	expect_quiet(w); /* retried at every check, said once */
	expect_quiet(w);
	assert_int_equal(rmdir(g.path), 0);
	save_version();
	next = expect_new(w, NULL);
	rt_keyring_ref__put(next);

	/* Removed while a refusal is pending: the absence is still said once. */
	assert_int_equal(unlink(g.path), 0);
	expect_refused(w, AF_ENOTFOUND, "keyring");
	expect_quiet(w);

	rt_keyring_watch__close(w);
	rt_keyring_ref__put(first);
}

static void test_keyring_watch__waits(void **state)
{
	char sub[160], file[192], rel[] = "keyring-relative.json", rootfile[] = "/keyring.json";
	const char *paths[5];
	bool dir_of[5] = {true, false, false, true, true};
	rt_watch *w = NULL;
	FILE *fp;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/sub", g.root);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(file, sizeof(file), "%s/data.mdb", sub);
	fp = fopen(file, "w");
	assert_non_null(fp);
	assert_int_equal(fclose(fp), 0);
	paths[0] = g.path;   /* its directory */
	paths[1] = file;     /* the file itself */
	paths[2] = NULL;     /* no such watch: skipped */
	paths[3] = rel;      /* the current directory */
	paths[4] = rootfile; /* "/" */
	assert_int_equal(rt_watch__open(&w, paths, dir_of, 5), 0);
	assert_non_null(w);

	/* Nothing happened: a timeout. */
	assert_int_equal(rt_watch__wait(w, 0), 0);

	/* A file renamed into the watched directory: an event, drained. */
	save_version();
	assert_int_equal(rt_watch__wait(w, 0), 1);
	assert_int_equal(rt_watch__wait(w, 0), 0);

	/* A write to the watched file. */
	fp = fopen(file, "a");
	assert_non_null(fp);
	assert_int_equal(fputs("x", fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rt_watch__wait(w, 0), 1);
	assert_int_equal(rt_watch__wait(w, 0), 0);

	/* A stop wins over a pending event, and stays. */
	save_version();
	rt_watch__stop(w);
	assert_int_equal(rt_watch__wait(w, 0), -1);
	assert_int_equal(rt_watch__wait(w, 1000), -1);
	rt_watch__stop(NULL);
	rt_watch__close(w);
	rt_watch__close(NULL);

	/* Watches that cannot be added (no such directory) only cost latency. */
	paths[0] = "/nonexistent-af-dir/keyring.json";
	assert_int_equal(rt_watch__open(&w, paths, dir_of, 1), 0);
	assert_int_equal(rt_watch__wait(w, 0), 0);
	rt_watch__close(w);
	unlink(file);
	rmdir(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyring_watch__open_refuses_a_missing_or_bad_file),
		cmocka_unit_test(test_keyring_watch__follows_new_versions_and_refuses_bad_ones),
		cmocka_unit_test(test_keyring_watch__missing_or_unreadable_file_said_once),
		cmocka_unit_test(test_keyring_watch__waits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
