/*
 * gen/embed.h - the guest library sources, embedded in the binary at build
 * time (codegen/embed.sh, driven by codegen/codegen.mk), so that an
 * installed agentfactory needs no source tree to build agents.
 *
 * The set: af_guest.h, af_guest.c, af_json.c (compiled for wasm32 with
 * every agent), af_native.c (compiled into every agent .so) and art/wasm.h
 * (the native ABI it implements). Their digest is part of the toolchain id.
 */
#ifndef GEN_EMBED_H
#define GEN_EMBED_H

#include <stddef.h>

/** One embedded file. data has a NUL byte after its len bytes. */
typedef struct gen_embedded_file {
	const char *name;             /* relative path, e.g. "art/wasm.h" */
	const unsigned char *data;
	size_t len;
} gen_embedded_file;

/** The files, in a fixed order (the order of codegen/codegen.mk). */
extern const gen_embedded_file gen_embedded_files[];
extern const size_t gen_embedded_count;

/**
 * Write every embedded file under dir (creating subdirectories).
 * Thread-safe for distinct dirs.
 * @return 0 or AF_EIO (the message names the file)
 */
int gen_guest_write(const char *dir);

/**
 * SHA-256 over the embedded set (for each file: name, NUL, 8-byte LE length,
 * bytes), as 64 hex digits + NUL into out[65].
 */
void gen_guest_digest(char out[65]);

/** The embedded file with this name, or NULL. */
const gen_embedded_file *gen_guest_file(const char *name);

#endif
