/*
 * test_bundle_audit_errors.c - the refusals at the edges of bundles and of
 * the audit log that the behaviour tests do not reach: exports to where no
 * file can be written, the same path twice, an empty store, unknown or
 * malformed refs; imports of missing files, of garbage, into a read-only
 * store; audit events over the limits; checkpoints signed by a public key,
 * by an unknown key, from the future, into a directory that cannot exist.
 * Each answers its own code, with a message naming what is wrong, and
 * changes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/audit.h"
#include "art/bundle.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)

static struct {
	art_key *builder, *rm, *stranger, *rm_public;
	art_keyring *kr;
	char *dir;       /* a store holding alpha@1.0.0 */
	char *empty;     /* an empty store */
	char *tmp;
} fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/af-test-edges-XXXXXX");

	if (!d || !mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static int put_alpha(art_store *s)
{
	const char *caps[] = {"log"};
	art_manifest_import imports[] = {{"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}};
	char resolved[72];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_build_parts parts = {"\0asm wasm", 9, "ELF native", 10, "/* C */", 7};
	art_store_txn *t = NULL;
	int rc;

	art_manifest_digest(resolved, "alpha", 5);
	memset(&info, 0, sizeof(info));
	info.name = "alpha";
	info.version = "1.0.0";
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "clang-19/wasi-libc/wabt-1.0.32";
	info.native_compat_id = "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1";
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 1;
	info.exports = exports;
	info.n_exports = 1;
	info.capabilities = caps;
	info.n_capabilities = 1;
	if ((rc = art_store_txn_begin(&t, s)) < 0)
		return rc;
	if ((rc = art_store_put_build(t, NULL, &info, &prov, &parts, fx.builder)) < 0) {
		art_store_txn_abort(t);
		return rc;
	}
	return art_store_txn_commit(t);
}

static int group_setup(void **state)
{
	art_store *s = NULL;
	char *pem = NULL;
	int rc;

	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.rm, 2048) < 0 ||
	    art_key_generate(&fx.stranger, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_key_public_pem(&pem, fx.rm) < 0 ||
	    art_key_from_public_pem(&fx.rm_public, pem, strlen(pem)) < 0)
		return -1;
	free(pem);
	if (!(fx.dir = temp_dir()) || !(fx.empty = temp_dir()) || !(fx.tmp = temp_dir()))
		return -1;
	if (art_store_open(&s, fx.dir, ART_STORE_CREATE) < 0)
		return -1;
	rc = put_alpha(s);
	art_store_close(s);
	s = NULL;
	if (rc < 0 || art_store_open(&s, fx.empty, ART_STORE_CREATE) < 0)
		return -1;
	art_store_close(s);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_key_free(fx.rm);
	art_key_free(fx.stranger);
	art_key_free(fx.rm_public);
	art_keyring_free(fx.kr);
	nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	nftw(fx.empty, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	nftw(fx.tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx.dir);
	free(fx.empty);
	free(fx.tmp);
	return 0;
}

static size_t count_artifacts(const char *dir)
{
	art_store *s = NULL;
	art_store_entry *e = NULL;
	size_t n = 0;

	assert_int_equal(art_store_open(&s, dir, ART_STORE_RDONLY), 0);
	assert_int_equal(art_store_list(&e, &n, s), 0);
	art_store_list_free(e, n);
	art_store_close(s);
	return n;
}

static void test_bundle_audit_errors__export_refusals(void **state)
{
	art_store *s = NULL, *e = NULL;
	char path[300];
	static const char *const missing[] = {"gamma"};
	static const char *const bad[] = {"Alpha@1"};
	struct stat st;

	(void)state;
	assert_int_equal(art_store_open(&s, fx.dir, ART_STORE_RDONLY), 0);
	/* nowhere to write: the message names the path */
	assert_int_equal(art_bundle_export(NULL, s, "/nonexistent-dir/b.tar", NULL, 0), AF_EIO);
	assert_non_null(strstr(art_error_last(), "/nonexistent-dir/b.tar"));
	snprintf(path, sizeof(path), "%s/b.tar", fx.tmp);
	/* signatures into the bundle itself */
	assert_int_equal(art_bundle_export_ex(NULL, s, path, path, NULL, 0), AF_EINVAL);
	/* the signatures' file cannot be written (the bundle itself was: it is
	 * written first, and without its signatures it imports nothing) */
	assert_int_equal(art_bundle_export_ex(NULL, s, path, "/nonexistent-dir/s.tar", NULL, 0),
			 AF_EIO);
	assert_non_null(strstr(art_error_last(), "/nonexistent-dir/s.tar"));
	unlink(path);
	/* unknown and malformed refs */
	assert_int_equal(art_bundle_export(NULL, s, path, missing, 1), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "gamma"));
	assert_true(art_bundle_export(NULL, s, path, bad, 1) < 0);
	assert_int_equal(stat(path, &st), -1);
	/* an empty store has nothing to export */
	assert_int_equal(art_store_open(&e, fx.empty, ART_STORE_RDONLY), 0);
	assert_int_equal(art_bundle_export(NULL, e, path, NULL, 0), AF_EINVAL);
	assert_int_equal(stat(path, &st), -1);
	art_store_close(e);
	art_store_close(s);
}

static void test_bundle_audit_errors__import_refusals(void **state)
{
	art_store *s = NULL, *ro = NULL;
	art_bundle_stats stats;
	char path[300], sigs[300];
	static const char garbage[1024] = "this is not a tar archive";
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/good.tar", fx.tmp);
	snprintf(sigs, sizeof(sigs), "%s/good.sigs.tar", fx.tmp);
	assert_int_equal(art_store_open(&s, fx.dir, ART_STORE_RDONLY), 0);
	assert_int_equal(art_bundle_export_ex(NULL, s, path, sigs, NULL, 0), 0);
	art_store_close(s);
	assert_int_equal(art_store_open(&s, fx.empty, 0), 0);
	/* a file that is not there */
	assert_true(art_bundle_import(&stats, s, fx.kr, NOW, "/nonexistent-dir/b.tar") < 0);
	assert_non_null(strstr(art_error_last(), "/nonexistent-dir/b.tar"));
	/* garbage, in a file and in memory */
	snprintf(path, sizeof(path), "%s/garbage.tar", fx.tmp);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(garbage, 1, sizeof(garbage), f), sizeof(garbage));
	fclose(f);
	assert_int_equal(art_bundle_import(&stats, s, fx.kr, NOW, path), AF_ECORRUPT);
	assert_int_equal(art_bundle_import_mem(&stats, s, fx.kr, NOW, garbage, sizeof(garbage),
					       "garbage"), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "garbage"));
	assert_int_equal(art_bundle_import_mem(&stats, s, fx.kr, NOW, "", 0, "empty"),
			 AF_ECORRUPT);
	/* a good bundle with signatures that are garbage */
	snprintf(path, sizeof(path), "%s/good.tar", fx.tmp);
	assert_true(art_bundle_import_ex(&stats, s, fx.kr, NOW, path, "/nonexistent-dir/s") < 0);
	{
		char *data = NULL;
		size_t len = 0;

		assert_int_equal(art_file_read(&data, &len, path, 1 << 24), 0);
		assert_int_equal(art_bundle_import_mem_ex(&stats, s, fx.kr, NOW, data, len, garbage,
							  sizeof(garbage), "good.tar"),
				 AF_ECORRUPT);
		/* without its detached signatures nothing verifies */
		assert_true(art_bundle_import_mem_ex(&stats, s, fx.kr, NOW, data, len, NULL, 0,
						     "good.tar") < 0);
		free(data);
	}
	art_store_close(s);
	assert_int_equal(count_artifacts(fx.empty), 0);
	/* a read-only store takes nothing */
	assert_int_equal(art_store_open(&ro, fx.empty, ART_STORE_RDONLY), 0);
	assert_int_equal(art_bundle_import_ex(&stats, ro, fx.kr, NOW, path, sigs), AF_EDENIED);
	art_store_close(ro);
	assert_int_equal(count_artifacts(fx.empty), 0);
	/* and the pair imports (the refusals above were theirs) */
	assert_int_equal(art_store_open(&s, fx.empty, 0), 0);
	assert_int_equal(art_bundle_import_ex(&stats, s, fx.kr, NOW, path, sigs), 0);
	assert_int_equal(stats.artifacts, 1);
	art_store_close(s);
	assert_int_equal(count_artifacts(fx.empty), 1);
}

static void test_bundle_audit_errors__audit_event_limits(void **state)
{
	art_store *s = NULL, *ro = NULL;
	art_audit_report rep;
	const art_key *too_many[ART_AUDIT_MAX_SIGNERS + 1];
	const art_key *public_only[] = {fx.rm_public};
	art_audit_event ev;
	char *big;
	size_t i;
	uint64_t seq_before = 0, seq_after = 0;
	char head[ART_SHA256_HEX_LEN + 1];

	(void)state;
	assert_int_equal(art_store_open(&s, fx.dir, 0), 0);
	assert_int_equal(art_audit_head(&seq_before, head, s), 0);
	big = malloc(70 * 1024);
	assert_non_null(big);
	memset(&ev, 0, sizeof(ev));
	ev.action = "check";
	/* details that are not an object, or too long */
	ev.details_json = "[1,2]";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.details_json = "{not json";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	big[0] = '{';
	big[1] = '"';
	big[2] = 'k';
	big[3] = '"';
	big[4] = ':';
	big[5] = '"';
	memset(big + 6, 'x', 70 * 1024 - 9);
	big[70 * 1024 - 3] = '"';
	big[70 * 1024 - 2] = '}';
	big[70 * 1024 - 1] = '\0';
	ev.details_json = big;
	assert_true(art_audit_append(NULL, s, &ev, NOW) < 0);
	ev.details_json = NULL;
	/* an actor with a control character, a subject over the limit */
	ev.actor = "me\n";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.actor = NULL;
	memset(big, 's', ART_AUDIT_FIELD_MAX + 1);
	big[ART_AUDIT_FIELD_MAX + 1] = '\0';
	ev.subject = big;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.subject = NULL;
	/* an unknown outcome */
	ev.outcome = "maybe";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.outcome = NULL;
	/* signers: too many, missing, a public key */
	for (i = 0; i <= ART_AUDIT_MAX_SIGNERS; i++)
		too_many[i] = fx.rm;
	ev.signers = too_many;
	ev.n_signers = ART_AUDIT_MAX_SIGNERS + 1;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.signers = NULL;
	ev.n_signers = 1;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.signers = public_only;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.signers = NULL;
	ev.n_signers = 0;
	/* nothing was appended, and the chain verifies */
	assert_int_equal(art_audit_head(&seq_after, head, s), 0);
	assert_int_equal(seq_after, seq_before);
	assert_int_equal(art_audit_verify(&rep, s), 0);
	art_store_close(s);
	/* a read-only store */
	assert_int_equal(art_store_open(&ro, fx.dir, ART_STORE_RDONLY), 0);
	assert_int_equal(art_audit_append(NULL, ro, &ev, NOW), AF_EDENIED);
	art_store_close(ro);
	free(big);
}

static void test_bundle_audit_errors__checkpoint_refusals(void **state)
{
	art_store *s = NULL;
	art_audit_report rep;
	char *cp = NULL;
	uint64_t seq = 0;

	(void)state;
	assert_int_equal(art_store_open(&s, fx.dir, ART_STORE_RDONLY), 0);
	/* only a private key signs */
	assert_int_equal(art_audit_checkpoint(&cp, s, fx.rm_public, NOW), AF_EINVAL);
	assert_null(cp);
	/* a checkpoint by a key the keyring does not hold */
	assert_int_equal(art_audit_checkpoint(&cp, s, fx.stranger, NOW), 0);
	assert_true(art_audit_verify_checkpoint(&rep, s, fx.kr, cp, strlen(cp), NOW) < 0);
	free(cp);
	cp = NULL;
	/* a checkpoint from a day in the future */
	assert_int_equal(art_audit_checkpoint(&cp, s, fx.rm, NOW + 86400), 0);
	assert_true(art_audit_verify_checkpoint(&rep, s, fx.kr, cp, strlen(cp), NOW) < 0);
	/* ... fine once that day has come */
	assert_int_equal(art_audit_verify_checkpoint(&rep, s, fx.kr, cp, strlen(cp), NOW + 86400),
			 0);
	free(cp);
	cp = NULL;
	/* not a checkpoint at all */
	assert_int_equal(art_audit_verify_checkpoint(&rep, s, fx.kr, "{}", 2, NOW), AF_ECORRUPT);
	assert_int_equal(art_audit_verify_checkpoint(&rep, s, fx.kr, "{\"payload\":\"!!\"}", 16,
						     NOW), AF_ECORRUPT);
	/* a directory that cannot be made */
	assert_int_equal(art_audit_checkpoint_to_dir(&seq, s, fx.rm, "/proc/af-no/such", NOW),
			 AF_EIO);
	assert_int_equal(seq, 0);
	art_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bundle_audit_errors__export_refusals),
		cmocka_unit_test(test_bundle_audit_errors__import_refusals),
		cmocka_unit_test(test_bundle_audit_errors__audit_event_limits),
		cmocka_unit_test(test_bundle_audit_errors__checkpoint_refusals),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
