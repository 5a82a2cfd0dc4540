/*
 * loader.c - verified artifact -> sealed memfd -> dlopen -> checked
 * descriptor -> described, runnable module (see rt/loader.h).
 */
#include "rt/loader.h"

#include "art/error.h"
#include "art/util.h"
#include "rt/compat.h"
#include "rt/sandbox.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

const char *rt_loader_reason(int rc)
{
	switch (rc) {
	case AF_ESIGNATURE:
	case AF_EREVOKED:
	case AF_EEXPIRED:
	case AF_EDENIED:
		return "signature";
	case AF_ECORRUPT:
	case AF_ETOOBIG:
		return "digest";
	case AF_EVERSION:
		return "compat";
	default:
		return "store";
	}
}

/* Out of memory is no verdict on the module: labelled "store" (as
 * rt_loader_reason does), which the engine retries instead of refusing. */
static int fail(const char **reason, const char *why, int rc)
{
	if (reason)
		*reason = rc == AF_ENOMEM ? "store" : why;
	return rc;
}

rt_module *rt_module_ref(rt_module *m)
{
	if (m)
		atomic_fetch_add(&m->refs, 1);
	return m;
}

static void module_destroy(rt_module *m)
{
	if (m->dl)
		dlclose(m->dl);
	/* After dlclose: the fd's path named the object while it was loaded. */
	if (m->fd >= 0)
		close(m->fd);
	rt_policy_free(m->policy);
	free(m->describe);
	free(m);
}

void rt_module_unref(rt_module *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1)
		module_destroy(m);
}

/* The verified bytes into a sealed memfd whose content hashes to digest. */
static int sealed_memfd(int *out_fd, const void *so, size_t len, const char *digest)
{
	const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
	char got[ART_DIGEST_STR_LEN + 1];
	struct stat st;
	size_t done = 0;
	void *map;
	int fd;

	*out_fd = -1;
	/* MFD_EXEC: kernels with vm.memfd_noexec would otherwise make it
	 * non-executable; older kernels do not know the flag (EINVAL). */
	fd = memfd_create("af-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("af-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return art_error_set(AF_EIO, "memfd_create: %s", strerror(errno));
	while (done < len) {
		ssize_t n = write(fd, (const uint8_t *)so + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return art_error_set(AF_EIO, "writing the memfd: %s", strerror(errno));
		}
		done += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, seals) != 0 || (unsigned)fcntl(fd, F_GET_SEALS) != seals) {
		close(fd);
		return art_error_set(AF_EIO, "sealing the memfd: %s", strerror(errno));
	}
	/* Sealed: read back what will be mapped and check it is what was verified. */
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != (uint64_t)len) {
		close(fd);
		return art_error_set(AF_ESIGNATURE, "the sealed memfd does not hold the verified size");
	}
	map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	if (map == MAP_FAILED) {
		close(fd);
		return art_error_set(AF_EIO, "mapping the memfd: %s", strerror(errno));
	}
	art_manifest_digest(got, map ? map : "", len);
	if (map)
		munmap(map, len);
	if (!digest || strcmp(got, digest) != 0) {
		close(fd);
		return art_error_set(AF_ESIGNATURE, "the sealed native code hashes to %.23s..., not to the verified %.23s...",
				     got, digest ? digest : "(none)");
	}
	*out_fd = fd;
	return 0;
}

static int check_descriptor(const art_wasm_native_v1 *n)
{
	if (n->native_abi != ART_WASM_NATIVE_ABI_VERSION)
		return art_error_set(AF_EVERSION, "native ABI %u, this runtime speaks %u", n->native_abi,
				     ART_WASM_NATIVE_ABI_VERSION);
	if (n->guest_abi != 1)
		return art_error_set(AF_EVERSION, "guest ABI %u, this runtime speaks 1", n->guest_abi);
	if (n->memcheck != ART_WASM_MEMCHECK_GUARD)
		return art_error_set(AF_EVERSION, "memory checks mode %u, this runtime needs guard pages",
				     n->memcheck);
	if (!n->wasm_rt || strcmp(n->wasm_rt, RT_WASM_RT_VERSION) != 0)
		return art_error_set(AF_EVERSION, "built against wasm-rt %.40s, this runtime implements %s",
				     n->wasm_rt ? n->wasm_rt : "(none)", RT_WASM_RT_VERSION);
	if (!n->init || !n->instantiate || !n->free || !n->memory || !n->initialize ||
	    !n->abi_version || !n->alloc || !n->describe || !n->handle)
		return art_error_set(AF_EVERSION, "the module descriptor lacks a function");
	return 0;
}

int rt_module_from_bytes(rt_module **out, const char **reason, const void *so, size_t len,
			 const char *digest, const char *const *caps, size_t n_caps,
			 const char *name, const char *version, const rt_host_env *env)
{
	rt_module *m = NULL;
	art_wasm_native_entry entry;
	char path[64];
	int rc;

	*out = NULL;
	if (reason)
		*reason = NULL;
	if ((rc = rt_sandbox_init()) < 0)
		return fail(reason, "load", rc);
	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(reason, "load", art_error_set(AF_ENOMEM, "out of memory"));
	atomic_init(&m->refs, 1);
	m->fd = -1;
	if ((rc = sealed_memfd(&m->fd, so, len, digest)) < 0) {
		fail(reason, rc == AF_ESIGNATURE ? "digest" : "load", rc);
		goto cleanup;
	}
	snprintf(m->native_digest, sizeof(m->native_digest), "%s", digest);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m->fd);
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		const char *e = dlerror();

		rc = fail(reason, "load", art_error_set(AF_EIO, "dlopen: %s", e ? e : "failed"));
		goto cleanup;
	}
	/* POSIX: dlsym's object pointer holds a function address. */
	*(void **)&entry = dlsym(m->dl, ART_WASM_NATIVE_SYMBOL);
	if (!entry || !(m->native = entry())) {
		rc = fail(reason, "compat",
			  art_error_set(AF_EVERSION, "no %s in the native code", ART_WASM_NATIVE_SYMBOL));
		goto cleanup;
	}
	if ((rc = check_descriptor(m->native)) < 0) {
		fail(reason, "compat", rc);
		goto cleanup;
	}
	if (m->native->init(rt_sandbox_wasm_rt()) != 0) {
		rc = fail(reason, "load", art_error_set(AF_EIO, "the module's init failed"));
		goto cleanup;
	}
	if ((rc = rt_exec_describe(&m->describe, &m->describe_len, m->native, env)) < 0 ||
	    (rc = rt_policy_parse(&m->policy, m->describe, m->describe_len, caps, n_caps)) < 0) {
		fail(reason, "describe", rc);
		goto cleanup;
	}
	if ((name && strcmp(name, m->policy->name) != 0) ||
	    (version && strcmp(version, m->policy->version) != 0)) {
		rc = fail(reason, "describe",
			  art_error_set(AF_ECORRUPT, "the native code describes %s, not %s@%s",
					m->policy->ref, name ? name : "*", version ? version : "*"));
		goto cleanup;
	}
	*out = m;
	m = NULL;
cleanup:
	if (m)
		module_destroy(m);
	return rc;
}

int rt_module_from_store(rt_module **out, const char **reason, const art_store *s,
			 const art_keyring *kr, const char *name, const char *version, time_t now,
			 const rt_host_env *env)
{
	art_verified_artifact *va = NULL;
	const art_manifest_part *native = NULL;
	const art_verified_part *vp;
	char why[256] = "";
	size_t i;
	int rc;

	*out = NULL;
	if (reason)
		*reason = NULL;
	rc = art_store_load_verified(&va, s, kr, name, version, now);
	if (rc == AF_ENOTFOUND) {
		/* Either no such artifact, or its signing key is unknown. */
		art_store_record *rec = NULL;
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		if (art_store_get_artifact(&rec, s, name, version) == AF_ENOTFOUND)
			return fail(reason, "store", art_error_set(AF_ENOTFOUND, "%s", msg));
		art_store_record_free(rec);
		return fail(reason, "signature", art_error_set(AF_ESIGNATURE, "%s", msg));
	}
	if (rc < 0)
		return fail(reason, rt_loader_reason(rc), rc);
	for (i = 0; i < va->manifest->n_parts && !native; i++) {
		const art_manifest_part *p = &va->manifest->parts[i];
		char tmp[256];

		if (!p->compat_id)
			continue;
		if (rt_compat_check(p->compat_id, tmp, sizeof(tmp)) == 0)
			native = p;
		else if (!why[0])
			snprintf(why, sizeof(why), "%s", tmp);
	}
	if (!native) {
		rc = fail(reason, "compat",
			  art_error_set(AF_EVERSION, "%s@%s has no native code for this runtime (%s): built for '%s'; rebuild it with a matching toolchain",
					va->manifest->name, va->manifest->version,
					why[0] ? why : "no native part", va->manifest->native_compat_id));
		goto cleanup;
	}
	if (va->manifest->guest_abi_version != 1) {
		rc = fail(reason, "compat",
			  art_error_set(AF_EVERSION, "guest ABI %u, this runtime speaks 1",
					va->manifest->guest_abi_version));
		goto cleanup;
	}
	vp = art_verified_part_get(va, native->name);
	if (!vp) {
		rc = fail(reason, "digest",
			  art_error_set(AF_ECORRUPT, "the native part %s was not loaded", native->name));
		goto cleanup;
	}
	rc = rt_module_from_bytes(out, reason, vp->data, vp->size, native->digest,
				  (const char *const *)va->manifest->capabilities,
				  va->manifest->n_capabilities, va->manifest->name,
				  va->manifest->version, env);
	if (rc == 0)
		snprintf((*out)->manifest_digest, sizeof((*out)->manifest_digest), "%s",
			 va->manifest_digest);
	/* http_fetch's allow-list: the hosts the policy granted at build time. */
	if (rc == 0 && (rc = rt_policy_set_hosts((*out)->policy, (const char *const *)va->manifest->hosts,
						 va->manifest->n_hosts)) < 0) {
		rt_module_unref(*out);
		*out = NULL;
		fail(reason, "compat", rc);
	}
cleanup:
	art_verified_artifact_free(va);
	return rc;
}
