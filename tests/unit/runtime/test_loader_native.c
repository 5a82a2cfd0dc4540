/*
 * test_loader_native.c - rt_module_from_bytes (rt/loader.h) on native code
 * built here from tests/fixtures/runtime/fake_native_so.c, one variant per
 * descriptor defect: another native ABI, guest ABI, memory-check mode or
 * wasm-rt, a missing function, no entry symbol, an entry answering NULL, an
 * init that fails, a describe that traps, is not JSON or names another
 * agent. Then the bytes against the digest that was verified: another
 * digest, none, one flipped byte, bytes that are not an ELF object at all.
 * And the sealed memfd's system calls failing one at a time (the Makefile
 * links this binary with --wrap=memfd_create,write,fcntl,fstat,mmap; the
 * wrappers below fail only when armed, once).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"

#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"
#include "rt/loader.h"
#include "rt/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- one-shot failures of the memfd's system calls ---------------------------------- */

static struct {
	int memfd_einval, memfd_fail, write_eintr, write_zero, seal_fail, seals_wrong, fstat_size,
		mmap_fail;
} inject;

int __real_memfd_create(const char *name, unsigned int flags);
ssize_t __real_write(int fd, const void *buf, size_t n);
int __real_fcntl(int fd, int cmd, ...);
int __real_fstat(int fd, struct stat *st);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_memfd_create(const char *name, unsigned int flags);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
int __wrap_fcntl(int fd, int cmd, ...);
int __wrap_fstat(int fd, struct stat *st);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

static bool take(int *flag)
{
	if (*flag <= 0)
		return false;
	(*flag)--;
	return true;
}

int __wrap_memfd_create(const char *name, unsigned int flags)
{
	if (take(&inject.memfd_einval)) {
		errno = EINVAL; /* a kernel without MFD_EXEC */
		return -1;
	}
	if (take(&inject.memfd_fail)) {
		errno = EMFILE;
		return -1;
	}
	return __real_memfd_create(name, flags);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	if (take(&inject.write_eintr)) {
		errno = EINTR;
		return -1;
	}
	if (take(&inject.write_zero)) {
		errno = ENOSPC;
		return 0;
	}
	return __real_write(fd, buf, n);
}

int __wrap_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if (cmd == F_ADD_SEALS && take(&inject.seal_fail)) {
		errno = EPERM;
		return -1;
	}
	if (cmd == F_GET_SEALS && take(&inject.seals_wrong))
		return F_SEAL_SHRINK;
	return __real_fcntl(fd, cmd, arg);
}

int __wrap_fstat(int fd, struct stat *st)
{
	int rc = __real_fstat(fd, st);

	if (rc == 0 && take(&inject.fstat_size))
		st->st_size++;
	return rc;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (take(&inject.mmap_fail)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

/* ---- building the variants -------------------------------------------------------------- */

static const char *const caps[] = {"clock", "log", "tool_call"};

static struct {
	char dir[64];
	FILE *log;
	rt_host_env env;
	uint8_t *so;                        /* the good variant */
	size_t so_len;
	char digest[ART_DIGEST_STR_LEN + 1];
} g;

/* Build the fixture with the extra -D flags (NULL-terminated); its bytes. */
static uint8_t *build_variant(size_t *len, const char *tag, const char *d1, const char *d2)
{
	const char *src = getenv("AF_SRCDIR");
	char fixture[1024], inc_tests[1024], inc_art[1024], out[160];
	char *data = NULL;
	char *argv[] = {"cc", "-O1", "-fPIC", "-shared", "-fvisibility=hidden", "-w",
			inc_tests, inc_art, fixture, "-o", out, (char *)d1, (char *)d2, NULL};

	snprintf(fixture, sizeof(fixture), "%s/tests/fixtures/runtime/fake_native_so.c",
		 src ? src : ".");
	snprintf(inc_tests, sizeof(inc_tests), "-I%s/tests/unit/runtime", src ? src : ".");
	snprintf(inc_art, sizeof(inc_art), "-I%s/artifacts/include", src ? src : ".");
	snprintf(out, sizeof(out), "%s/%s.so", g.dir, tag);
	if (fixture[0] != '/') { /* relative to the build dir */
		char cwd[512];

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		snprintf(fixture, sizeof(fixture), "%s/tests/fixtures/runtime/fake_native_so.c", cwd);
		snprintf(inc_tests, sizeof(inc_tests), "-I%s/tests/unit/runtime", cwd);
		snprintf(inc_art, sizeof(inc_art), "-I%s/artifacts/include", cwd);
	}
	if (lab_run(g.dir, argv) != 0)
		fail_msg("building variant %s failed", tag);
	assert_int_equal(art_file_read(&data, len, out, (size_t)16 << 20), 0);
	return (uint8_t *)data;
}

static int setup(void **state)
{
	(void)state;
	snprintf(g.dir, sizeof(g.dir), "/tmp/af-test-loader-native-XXXXXX");
	if (!mkdtemp(g.dir) || !(g.log = tmpfile()))
		return -1;
	g.env.log = g.log;
	return rt_sandbox_init() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	free(g.so);
	fclose(g.log);
	lab_rmtree(g.dir);
	return 0;
}

/* Load bytes (with their own digest unless digest is given): must be refused. */
static void expect_refused(const uint8_t *so, size_t len, const char *digest, int rc,
			   const char *reason, const char *why)
{
	char own[ART_DIGEST_STR_LEN + 1];
	rt_module *m = (rt_module *)1;
	const char *got_reason = "unset";

	if (!digest) {
		art_manifest_digest(own, so, len);
		digest = own;
	}
	assert_int_equal(rt_module_from_bytes(&m, &got_reason, so, len, digest, caps, 3, NULL, NULL,
					      &g.env),
			 rc);
	assert_null(m);
	assert_non_null(got_reason);
	if (strcmp(got_reason, reason) != 0)
		fail_msg("reason '%s', want '%s' (%s)", got_reason, reason, art_error_last());
	if (!strstr(art_error_last(), why))
		fail_msg("'%s' lacks '%s'", art_error_last(), why);
}

static void expect_variant_refused(const char *tag, const char *d1, const char *d2, int rc,
				   const char *reason, const char *why)
{
	size_t len = 0;
	uint8_t *so = build_variant(&len, tag, d1, d2);

	expect_refused(so, len, NULL, rc, reason, why);
	free(so);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_loader_native__the_good_module_loads(void **state)
{
	rt_module *m = NULL, *again;
	const char *reason = "unset";

	(void)state;
	g.so = build_variant(&g.so_len, "good", NULL, NULL);
	art_manifest_digest(g.digest, g.so, g.so_len);
	assert_int_equal(rt_module_from_bytes(&m, &reason, g.so, g.so_len, g.digest, caps, 3, "fake",
					      "1.0.0", &g.env),
			 0);
	assert_null(reason);
	assert_non_null(m);
	assert_string_equal(m->native_digest, g.digest);
	assert_string_equal(m->policy->ref, "fake@1.0.0");
	assert_int_equal(m->policy->caps, RT_CAP_CLOCK | RT_CAP_LOG | RT_CAP_TOOL_CALL);
	assert_int_equal(m->policy->max_steps, 2);
	assert_non_null(strstr(m->describe, "\"name\":\"fake\""));
	again = rt_module_ref(m);
	assert_ptr_equal(again, m);
	rt_module_unref(m);
	rt_module_unref(again);
	assert_null(rt_module_ref(NULL));
	rt_module_unref(NULL);

	/* No reason pointer, no name or version to match: fine too. */
	assert_int_equal(rt_module_from_bytes(&m, NULL, g.so, g.so_len, g.digest, NULL, 0, NULL, NULL,
					      &g.env),
			 0);
	assert_int_equal(m->policy->caps, 0);
	rt_module_unref(m);
}

static void test_loader_native__another_agent_than_expected(void **state)
{
	rt_module *m = (rt_module *)1;
	const char *reason = NULL;

	(void)state;
	assert_int_equal(rt_module_from_bytes(&m, &reason, g.so, g.so_len, g.digest, caps, 3, "other",
					      NULL, &g.env),
			 AF_ECORRUPT);
	assert_null(m);
	assert_string_equal(reason, "describe");
	assert_non_null(strstr(art_error_last(), "describes fake@1.0.0, not other@*"));
	assert_int_equal(rt_module_from_bytes(&m, &reason, g.so, g.so_len, g.digest, caps, 3, "fake",
					      "2.0.0", &g.env),
			 AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "not fake@2.0.0"));
}

static void test_loader_native__bytes_must_be_the_verified_ones(void **state)
{
	uint8_t *flipped;
	char zeros[ART_DIGEST_STR_LEN + 1];
	static const uint8_t junk[] = "this is not an ELF shared object";

	(void)state;
	art_manifest_digest(zeros, "", 0);
	expect_refused(g.so, g.so_len, zeros, AF_ESIGNATURE, "digest", "not to the verified");
	{
		rt_module *m = (rt_module *)1;
		const char *reason = NULL;

		assert_int_equal(rt_module_from_bytes(&m, &reason, g.so, g.so_len, NULL, caps, 3, NULL,
						      NULL, &g.env),
				 AF_ESIGNATURE);
		assert_string_equal(reason, "digest");
		assert_non_null(strstr(art_error_last(), "(none)"));
	}
	/* One byte changed after verification. */
	flipped = malloc(g.so_len);
	assert_non_null(flipped);
	memcpy(flipped, g.so, g.so_len);
	flipped[g.so_len / 2] ^= 0x40;
	expect_refused(flipped, g.so_len, g.digest, AF_ESIGNATURE, "digest", "hashes to");
	free(flipped);
	/* Verified bytes that are no shared object: dlopen says so. */
	expect_refused(junk, sizeof(junk), NULL, AF_EIO, "load", "dlopen");
	expect_refused(junk, 0, NULL, AF_EIO, "load", "dlopen");
}

static void test_loader_native__descriptor_defects(void **state)
{
	(void)state;
	expect_variant_refused("abi2", "-DFAKE_NATIVE_ABI=2", NULL, AF_EVERSION, "compat",
			       "native ABI 2");
	expect_variant_refused("guest2", "-DFAKE_GUEST_ABI=2", NULL, AF_EVERSION, "compat",
			       "guest ABI 2");
	expect_variant_refused("bounds", "-DFAKE_MEMCHECK=0", NULL, AF_EVERSION, "compat",
			       "memory checks mode 0");
	expect_variant_refused("wabt9", "-DFAKE_WASM_RT=\"wabt-9.9.9\"", NULL, AF_EVERSION, "compat",
			       "built against wasm-rt wabt-9.9.9");
	expect_variant_refused("nort", "-DFAKE_WASM_RT=NULL", NULL, AF_EVERSION, "compat",
			       "wasm-rt (none)");
	expect_variant_refused("nohandle", "-DFAKE_HANDLE=NULL", NULL, AF_EVERSION, "compat",
			       "lacks a function");
	expect_variant_refused("nosym", "-DFAKE_NO_SYMBOL", NULL, AF_EVERSION, "compat",
			       "no af_native_module_v1");
	expect_variant_refused("nullentry", "-DFAKE_ENTRY_NULL", NULL, AF_EVERSION, "compat",
			       "no af_native_module_v1");
	expect_variant_refused("initfails", "-DFAKE_INIT_FAILS", NULL, AF_EIO, "load",
			       "init failed");
	expect_variant_refused("desctrap", "-DFAKE_DESCRIBE=\"trap\"", NULL, AF_EDENIED, "describe",
			       "af_describe trapped");
	expect_variant_refused("descjunk", "-DFAKE_DESCRIBE=\"[1]\"", NULL, AF_ECORRUPT, "describe",
			       "not a JSON object");
	/* Instance size / alignment: checked when describe instantiates. */
	expect_variant_refused("nosize", "-DFAKE_INSTANCE_SIZE=0", NULL, AF_ECORRUPT, "describe",
			       "instance size or alignment");
	expect_variant_refused("badalign", "-DFAKE_INSTANCE_ALIGN=48", NULL, AF_ECORRUPT, "describe",
			       "instance size or alignment");
}

static void test_loader_native__memfd_failures(void **state)
{
	rt_module *m = NULL;

	(void)state;
	/* A kernel that does not know MFD_EXEC: the loader retries without it. */
	inject.memfd_einval = 1;
	assert_int_equal(rt_module_from_bytes(&m, NULL, g.so, g.so_len, g.digest, caps, 3, NULL, NULL,
					      &g.env),
			 0);
	assert_int_equal(inject.memfd_einval, 0);
	rt_module_unref(m);
	/* An interrupted write is resumed. */
	inject.write_eintr = 1;
	assert_int_equal(rt_module_from_bytes(&m, NULL, g.so, g.so_len, g.digest, caps, 3, NULL, NULL,
					      &g.env),
			 0);
	assert_int_equal(inject.write_eintr, 0);
	rt_module_unref(m);

	inject.memfd_fail = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_EIO, "load", "memfd_create");
	inject.memfd_einval = 1;
	inject.memfd_fail = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_EIO, "load", "memfd_create");
	inject.write_zero = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_EIO, "load", "writing the memfd");
	inject.seal_fail = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_EIO, "load", "sealing the memfd");
	inject.seals_wrong = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_EIO, "load", "sealing the memfd");
	inject.fstat_size = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_ESIGNATURE, "digest",
		       "does not hold the verified size");
	inject.mmap_fail = 1;
	expect_refused(g.so, g.so_len, g.digest, AF_EIO, "load", "mapping the memfd");
	assert_int_equal(inject.memfd_fail + inject.write_zero + inject.seal_fail +
				 inject.seals_wrong + inject.fstat_size + inject.mmap_fail,
			 0);
}

static void test_loader_native__reasons(void **state)
{
	(void)state;
	assert_string_equal(rt_loader_reason(AF_ESIGNATURE), "signature");
	assert_string_equal(rt_loader_reason(AF_EREVOKED), "signature");
	assert_string_equal(rt_loader_reason(AF_EEXPIRED), "signature");
	assert_string_equal(rt_loader_reason(AF_EDENIED), "signature");
	assert_string_equal(rt_loader_reason(AF_ECORRUPT), "digest");
	assert_string_equal(rt_loader_reason(AF_ETOOBIG), "digest");
	assert_string_equal(rt_loader_reason(AF_EVERSION), "compat");
	assert_string_equal(rt_loader_reason(AF_EIO), "store");
	assert_string_equal(rt_loader_reason(AF_ENOMEM), "store");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loader_native__the_good_module_loads),
		cmocka_unit_test(test_loader_native__another_agent_than_expected),
		cmocka_unit_test(test_loader_native__bytes_must_be_the_verified_ones),
		cmocka_unit_test(test_loader_native__descriptor_defects),
		cmocka_unit_test(test_loader_native__memfd_failures),
		cmocka_unit_test(test_loader_native__reasons),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
