/*
 * error.c - per-thread error slot (see art/error.h).
 *
 * The slot is a fixed thread-local array, so reporting an error never
 * allocates: an out-of-memory condition can always be described.
 */
#include "art/error.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#define ART_ERROR_MAX 1024

static _Thread_local char error_message[ART_ERROR_MAX];

/* Formats into a local buffer first: the arguments may point into the slot
 * (art_error_last()), and a format whose source and destination overlap is
 * undefined behaviour (in practice, the context written over its own text). */
int art_error_setv(int rc, const char *fmt, va_list ap)
{
	char formatted[ART_ERROR_MAX];

	vsnprintf(formatted, sizeof(formatted), fmt, ap);
	memcpy(error_message, formatted, sizeof(error_message));
	return rc;
}

int art_error_prefix(int rc, const char *fmt, ...)
{
	char previous[ART_ERROR_MAX], context[ART_ERROR_MAX];
	va_list ap;

	memcpy(previous, error_message, sizeof(previous));
	va_start(ap, fmt);
	vsnprintf(context, sizeof(context), fmt, ap);
	va_end(ap);
	if (previous[0] == '\0')
		return art_error_set(rc, "%s", context);
	return art_error_set(rc, "%s: %s", context, previous);
}

int art_error_set(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	art_error_setv(rc, fmt, ap);
	va_end(ap);
	return rc;
}

int art_error_openssl(const char *what)
{
	char detail[256] = "";
	unsigned long code, last = 0;

	/* Keep the oldest error: it names the root cause, the rest is unwinding. */
	while ((code = ERR_get_error()) != 0)
		if (last == 0)
			last = code;
	if (last != 0)
		ERR_error_string_n(last, detail, sizeof(detail));
	return art_error_set(AF_ECRYPTO, "%s: %s", what,
			     detail[0] ? detail : "unknown OpenSSL error");
}

const char *art_error_last(void)
{
	return error_message;
}

void art_error_clear(void)
{
	error_message[0] = '\0';
}

const char *art_strerror(int rc)
{
	switch (rc) {
	case AF_OK: return "success";
	case AF_ENOMEM: return "out of memory";
	case AF_EINVAL: return "invalid argument";
	case AF_ENOTFOUND: return "not found";
	case AF_EEXISTS: return "already exists";
	case AF_EIO: return "input/output error";
	case AF_ECORRUPT: return "corrupt data";
	case AF_EVERSION: return "unsupported version";
	case AF_ETOOBIG: return "size limit exceeded";
	case AF_EDENIED: return "permission denied";
	case AF_ESIGNATURE: return "signature verification failed";
	case AF_EPOLICY: return "policy violation";
	case AF_ECRYPTO: return "cryptography error";
	case AF_EGIT: return "git error";
	case AF_ESYNTAX: return "syntax error";
	case AF_EEXPIRED: return "expired or not yet valid";
	case AF_EREVOKED: return "revoked";
	case AF_EINTERNAL: return "internal error";
	case AF_EDAMAGED: return "damaged store";
	}
	return "unknown error";
}
