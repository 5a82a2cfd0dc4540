/*
 * rt/source.h - a runtime that follows a channel from an OCI registry
 * (docs/registry.md, "Runtime pods").
 *
 * The follower is a child process (forked before the runtime starts any
 * thread) that owns the only read-write handle on the pod-local store: it
 * polls the tag channel-<C> with one HEAD per interval (plus jitter); when
 * the digest changes it pulls and verifies the new release into the store
 * (art_oci_pull: one transaction, the store's channel record is the sequence
 * floor, so a replayed tag is refused even after a restart). The serving
 * process follows the channel in that store exactly as for a local
 * promotion (live switch, freeze protection) and never trusts the registry
 * itself. When the registry is unreachable or sends garbage, nothing in the
 * store changes: the pod keeps serving its last verified release.
 *
 * The child reports its state on a pipe; a thread of the serving process
 * turns it into rt_source_describe (shown by /readyz), log lines and the
 * agentfactory_source_* metrics. The child exits when the parent dies.
 */
#ifndef RT_SOURCE_H
#define RT_SOURCE_H

#include "art/oci.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct rt_source_opts {
	const char *url;          /* oci://HOST[:PORT]/REPO */
	const char *store_dir;    /* the pod-local store (created if missing) */
	const char *keyring_path; /* re-read before each pull */
	const char *channel;
	uint32_t interval_ms;     /* poll interval (default 5000) */
	uint32_t jitter_ms;       /* + a random 0..jitter_ms (default interval / 10) */
	unsigned min_threshold;
	art_oci_opts oci;         /* ca_file, auth_file, plain_http (progress ignored) */
	FILE *log;                /* JSON-lines log of the follower */
} rt_source_opts;

typedef struct rt_source rt_source;

/**
 * Create the store if missing, fork the follower and start the thread that
 * reads its reports. Call before any other thread exists.
 * @param[out] out  caller owns; stop with rt_source_stop
 * @return 0, AF_EINVAL (bad URL or channel), AF_EIO (fork, pipe) or a store
 *         error
 */
int rt_source_start(rt_source **out, const rt_source_opts *o);

/** Stop the follower (SIGTERM, wait) and the reader thread. NULL-safe. */
void rt_source_stop(rt_source *src);

/**
 * The follower's last report as a JSON object
 * ({"url","channel","state","release","polls","pulls","detail"}) into out.
 * state: "starting", "ok", "unreachable", "refused".
 * @return false when no follower runs (out untouched)
 */
bool rt_source_describe(char *out, size_t cap);

#endif
