/*
 * compat.c - the runtime's side of the native compatibility id (see
 * rt/compat.h for what is compared and why).
 */
#include "rt/compat.h"

#include "art/error.h"
#include "art/wasm.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef AF_TARGET_TRIPLE
#if defined(__x86_64__)
#define RT_ARCH "x86_64"
#elif defined(__aarch64__)
#define RT_ARCH "aarch64"
#elif defined(__riscv) && __riscv_xlen == 64
#define RT_ARCH "riscv64"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RT_ARCH "powerpc64le"
#elif defined(__s390x__)
#define RT_ARCH "s390x"
#else
#error "unknown architecture: build with -DAF_TARGET_TRIPLE=\"$(cc -dumpmachine)\""
#endif
#if defined(__linux__) && defined(__GLIBC__)
#define RT_OS "linux-gnu"
#elif defined(__linux__)
#define RT_OS "linux-musl"
#else
#error "unknown system: build with -DAF_TARGET_TRIPLE=\"$(cc -dumpmachine)\""
#endif
#define AF_TARGET_TRIPLE RT_ARCH "-" RT_OS
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#define PREFIX "af-native/" STR(ART_WASM_NATIVE_ABI_VERSION) " "

const char *rt_compat_target(void)
{
	return AF_TARGET_TRIPLE;
}

const char *rt_compat_expected(void)
{
	return PREFIX "target=" AF_TARGET_TRIPLE "; wasm-rt=" RT_WASM_RT_VERSION
		      "; guest-abi=1; native-abi=" STR(ART_WASM_NATIVE_ABI_VERSION)
		      "; memcheck=guard; cc=<any>";
}

static const struct {
	const char *key, *want;
} expected[] = {
	{"target", AF_TARGET_TRIPLE},
	{"wasm-rt", RT_WASM_RT_VERSION},
	{"guest-abi", "1"},
	{"native-abi", STR(ART_WASM_NATIVE_ABI_VERSION)},
	{"memcheck", "guard"},
	{"cc", NULL}, /* any */
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static int mismatch(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int mismatch(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return AF_EVERSION;
}

int rt_compat_check(const char *compat_id, char *why, size_t why_len)
{
	bool seen[N_EXPECTED] = {false};
	const char *p;
	size_t i;

	if (why && why_len)
		why[0] = '\0';
	if (!compat_id)
		return mismatch(why, why_len, "no compatibility id");
	if (strncmp(compat_id, PREFIX, strlen(PREFIX)) != 0)
		return mismatch(why, why_len, "format '%.*s' is not af-native/%d",
				(int)strcspn(compat_id, " "), compat_id, ART_WASM_NATIVE_ABI_VERSION);
	p = compat_id + strlen(PREFIX);
	while (*p) {
		const char *eq = strchr(p, '='), *end;
		size_t klen, vlen;

		if (!eq)
			return mismatch(why, why_len, "malformed field '%.40s'", p);
		klen = (size_t)(eq - p);
		for (i = 0; i < N_EXPECTED; i++)
			if (strlen(expected[i].key) == klen && strncmp(p, expected[i].key, klen) == 0)
				break;
		if (i == N_EXPECTED || seen[i])
			return mismatch(why, why_len, "%s field '%.*s'",
					i == N_EXPECTED ? "unknown" : "duplicate", (int)klen, p);
		seen[i] = true;
		/* cc is last and may contain anything; the others end at "; ". */
		end = expected[i].want ? strstr(eq + 1, "; ") : NULL;
		if (!end)
			end = eq + 1 + strlen(eq + 1);
		vlen = (size_t)(end - eq - 1);
		if (expected[i].want &&
		    (vlen != strlen(expected[i].want) || strncmp(eq + 1, expected[i].want, vlen) != 0))
			return mismatch(why, why_len, "%s is %.*s, this runtime needs %s",
					expected[i].key, (int)vlen, eq + 1, expected[i].want);
		p = *end ? end + 2 : end;
	}
	for (i = 0; i < N_EXPECTED; i++)
		if (!seen[i])
			return mismatch(why, why_len, "missing field '%s'", expected[i].key);
	return 0;
}
