/*
 * art/error.h - the one error vocabulary shared by every agentfactory module.
 *
 * Functions return int: 0 (AF_OK) on success, a negative AF_E* code on
 * failure. The human-readable message goes to a per-thread slot set with
 * art_error_set() and read with art_error_last(). A library's own error
 * (OpenSSL, libgit2, libyaml, LMDB, zstd) is translated once, at the call
 * into that library, into one of these codes plus a message.
 */
#ifndef ART_ERROR_H
#define ART_ERROR_H

#include <stdarg.h>

typedef enum art_rc {
	AF_OK = 0,
	AF_ENOMEM = -1,     /* out of memory */
	AF_EINVAL = -2,     /* invalid argument or input */
	AF_ENOTFOUND = -3,  /* no such file, key, template, revision */
	AF_EEXISTS = -4,    /* already exists */
	AF_EIO = -5,        /* read/write failure (errno in the message) */
	AF_ECORRUPT = -6,   /* stored or received data is malformed */
	AF_EVERSION = -7,   /* unsupported format or ABI version */
	AF_ETOOBIG = -8,    /* a size cap was hit */
	AF_EDENIED = -9,    /* not allowed (role, capability, policy) */
	AF_ESIGNATURE = -10,/* a signature or digest does not verify */
	AF_EPOLICY = -11,   /* policy violation */
	AF_ECRYPTO = -12,   /* the crypto library failed */
	AF_EGIT = -13,      /* libgit2 failed */
	AF_ESYNTAX = -14,   /* YAML/JSON syntax or schema error */
	AF_EEXPIRED = -15,  /* key or metadata outside its validity window */
	AF_EREVOKED = -16,  /* key revoked */
	AF_EINTERNAL = -17, /* a bug: should not happen */
	AF_EDAMAGED = -18   /* a store file is damaged (truncated, its meta pages
			       disagree with it): not readable at all */
} art_rc;

/**
 * Record an error message for the calling thread and return rc, so that
 * `return art_error_set(AF_EINVAL, "...")` reads naturally.
 * @param[in] rc   the AF_E* code being reported
 * @param[in] fmt  printf format; the message is truncated at 1 KiB
 * @return rc
 */
int art_error_set(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * Put context in front of the calling thread's message: the message becomes
 * "<formatted context>: <previous message>" (just the context if there was
 * none). The previous message is copied out before anything is formatted,
 * so this is the way to add context to an error from a callee.
 * @param[in] rc   the AF_E* code being reported
 * @param[in] fmt  printf format for the context
 * @return rc
 */
int art_error_prefix(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * As art_error_set, with a va_list. The message is formatted into a local
 * buffer and then copied into the slot, so an argument pointing into the
 * slot (art_error_last()) is read whole, never overwritten while read.
 */
int art_error_setv(int rc, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/**
 * Record an OpenSSL failure: the message is "what: <OpenSSL error queue>".
 * Drains the OpenSSL error queue of the calling thread.
 * @return AF_ECRYPTO
 */
int art_error_openssl(const char *what);

/**
 * The calling thread's last error message, or "" if none.
 * The pointer is valid until the next art_error_* call on this thread.
 * To add context to it, use art_error_prefix().
 */
const char *art_error_last(void);

/** Forget the calling thread's last error message. */
void art_error_clear(void);

/** A static, human-readable name for an AF_E* code ("signature mismatch"). */
const char *art_strerror(int rc);

#endif
