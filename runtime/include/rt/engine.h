/*
 * rt/engine.h - the data plane's core: verified agents from a read-only
 * store, a fresh sandboxed instance per invocation.
 *
 * The engine opens the artifact store read-only, verifies every artifact
 * (builder signature, manifest binding, part digests, native compatibility
 * id) before loading its native code from a sealed memfd, keeps loaded
 * modules in an LRU, and runs each invocation in a new instance with a
 * deadline, a memory cap and the agent's capabilities enforced on every
 * host call. An artifact that fails verification is refused (logged, counted
 * in metrics) and the others keep serving. Thread-safe: any number of
 * threads may call rt_engine_invoke at once.
 *
 * What is served is an immutable snapshot: the agent table (the store's
 * list at open, or the pins of a channel's release), the keyring it was
 * verified with, and the loaded modules. Every call takes a reference to the
 * snapshot in force when it starts and finishes on it, so a switch (a new
 * release on the followed channel, a reloaded keyring) never changes what
 * a running request sees: the new snapshot is verified and loaded first,
 * swapped in atomically, and the old one is freed when its last request
 * ends (docs/runtime.md, "Channels and live switch").
 *
 * The runtime links only artifacts/ and runtime/: no libgit2, no libyaml, no
 * compiler.
 */
#ifndef RT_ENGINE_H
#define RT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "rt/llm.h"
#include "rt/result.h" /* rt_invoke_result, rt_invoke_result_clear */

typedef struct rt_engine rt_engine;

typedef struct rt_engine_opts {
	const char *store_dir;         /* artifact store, opened read-only */
	const char *keyring_path;      /* trusted keys (builder role) */
	const char *data_dir;          /* writable state (per-agent key-value store); NULL = none:
					  kv tools then fail with a clear error */
	size_t module_cache;           /* loaded modules kept (LRU); 0 = 64 */
	uint32_t max_timeout_ms;       /* hard per-invocation deadline cap; 0 = 30000. The agent's
					  limits.timeout_ms applies when smaller. */
	uint32_t max_memory_pages;     /* cap on any agent's linear memory; 0 = 1024 (64 MiB) */
	size_t max_request_bytes;      /* request body cap; 0 = 1 MiB */
	FILE *log;                     /* JSON-lines log (guest logs, refusals); NULL = stderr */
	/* Added after the first version of this header (zero = off, so
	 * initialisers that do not name them keep working): */
	const char *llm_script;        /* --llm-script FILE: the "scripted" provider replays it;
					  NULL = no model provider (llm_chat answers llm_error) */
	const rt_llm_provider *llm;    /* a provider object instead (borrowed, must outlive the
					  engine); overrides llm_script */
	/* Channels and live reload (docs/runtime.md, "Channels and live switch"): */
	const char *channel;           /* serve exactly the artifacts the release of this channel
					  pins, following promotions and rollbacks; NULL = the
					  latest version of every name in the store */
	uint32_t watch_ms;             /* > 0: a watcher thread checks the channel and the keyring
					  file this often (and at once when inotify reports a
					  write); 0 = no thread: call rt_engine_refresh */
	unsigned min_threshold;        /* channel records need at least this many distinct
					  release-manager signatures, whatever they say (0: theirs) */
	uint32_t max_invoke_depth;     /* agent_invoke: agents on one call chain, the outermost
					  included; 0 = 4 (RT_INVOKE_DEPTH_DEFAULT), at most 16 */
} rt_engine_opts;

/** One agent the engine knows about (from the store's list). */
typedef struct rt_agent_info {
	char *name, *version;
	char *manifest_digest;         /* "sha256:..." */
	bool ok;                       /* verified and loadable */
	char *refused_reason;          /* when !ok: why (signature, digest, compatibility ...) */
} rt_agent_info;

/**
 * Open the store read-only, load the keyring, verify every artifact.
 * @return 0, or AF_ENOTFOUND / AF_EIO / AF_ECORRUPT when the store or keyring
 *         cannot be opened (message says which); AF_EIO when data_dir cannot
 *         be opened or the sandbox's signal handlers cannot be installed;
 *         AF_ESYNTAX / AF_ENOTFOUND / AF_ETOOBIG for a bad llm_script;
 *         AF_EINVAL for a malformed channel name; AF_EIO when the watcher
 *         thread cannot start.
 *         Individual bad artifacts are not an error: they are listed as
 *         refused. Following a channel, a channel that does not resolve
 *         (missing, refused, expired) is not an error either: the engine
 *         opens serving nothing (rt_engine_ready is false) and takes the
 *         channel's release as soon as one verifies.
 */
int rt_engine_open(rt_engine **out, const rt_engine_opts *opts);

/** Stop and free. Waits for nothing: call after the last invoke returned. NULL-safe. */
void rt_engine_close(rt_engine *e);

/** The agents served, sorted by name: the latest version of each name of the
 * store, or (following a channel) the pins of the release served; none
 * while no release is served.
 * @param[out] out  caller owns; rt_agent_info_free(out, n) */
int rt_engine_list(rt_engine *e, rt_agent_info **out, size_t *n);
void rt_agent_info_free(rt_agent_info *a, size_t n);

/**
 * The resolved template of an agent (its describe JSON).
 * @param[out] out  caller owns; free()
 * @return 0, AF_ENOTFOUND (no such agent), AF_ESIGNATURE / AF_EVERSION
 *         (refused: the message says why), AF_ENOMEM; following a channel
 *         with no release served: AF_EEXPIRED (the release expired) or
 *         AF_EDENIED (no valid release)
 */
int rt_engine_describe(rt_engine *e, const char *name, const char *version, char **out,
		       size_t *out_len);

/**
 * Run one invocation in a fresh instance. Always fills res (also on error).
 * @param[in] version  NULL = the version served (latest, or the release's pin)
 * @param[in] input    the request JSON ({"inputs": {...}}), not trusted
 * Following a channel with no release served, the answer is 503 with code
 * release_expired (freeze protection) or no_release.
 * @return 0 when an answer (success or a guest/runtime error) is in res;
 *         AF_ENOMEM when even the error could not be built
 * Metrics: counts RT_M_INVOCATIONS, instantiations, cache hits/misses,
 * denials, the instantiate/invoke histograms, and RT_M_ERRORS with
 * res->error_code for every error answer (a caller must not count those
 * again).
 */
int rt_engine_invoke(rt_engine *e, const char *name, const char *version, const char *input,
		     size_t input_len, rt_invoke_result *res);

/** true while a snapshot is served in which at least one agent verified
 * (following a channel: a verified, unexpired release). */
bool rt_engine_ready(const rt_engine *e);

/** What a channel-following engine serves. */
typedef enum rt_channel_state {
	RT_CHANNEL_OFF = 0,    /* not following a channel: the latest version of each name */
	RT_CHANNEL_OK,         /* serving a verified, unexpired release */
	RT_CHANNEL_NO_RELEASE, /* nothing to serve: no release verified yet, or the one served
				  lost the trust of a reloaded keyring (revoked key) */
	RT_CHANNEL_EXPIRED     /* the release served expired (freeze protection): nothing served
				  until the channel points at a valid release */
} rt_channel_state;

#define RT_ENGINE_TEXT_MAX 512

/** A copy of the engine's serving state (rt_engine_status_get). */
typedef struct rt_engine_status {
	rt_channel_state state;
	char channel[64];               /* "" when not following a channel */
	uint64_t release;               /* the release served; 0: none */
	uint64_t seq;                   /* its channel record */
	char action[16];                /* the record's action: promote, rollback, set-threshold */
	time_t expires;                 /* the release's expiry; 0: none */
	char release_digest[72];        /* "sha256:..." of the release served; "" none */
	char reason[RT_ENGINE_TEXT_MAX]; /* state is not OK: why nothing is served */
	uint64_t refused_seq;           /* the last channel record refused; 0: none since the
					   last switch */
	uint64_t refused_release;       /* the release it pointed at */
	char refused[RT_ENGINE_TEXT_MAX]; /* why it was refused */
	uint64_t switches;              /* releases taken since open (the first included) */
	uint64_t refusals;              /* distinct channel records refused since open */
	char keyring_sha256[65];        /* SHA-256 of the keyring file in force */
	uint64_t keyring_reloads;       /* new keyrings taken since open */
	char keyring_error[RT_ENGINE_TEXT_MAX]; /* the last keyring file refused; "" when the
						   keyring in force is the file on disk */
	char store_error[RT_ENGINE_TEXT_MAX]; /* the store file is damaged (truncated
						 data.mdb): why; "" when whole. Not ready
						 while set; nothing is read from the store */
} rt_engine_status;

/**
 * Copy the serving state.
 * @return 0, AF_EINVAL (NULL argument)
 */
int rt_engine_status_get(rt_engine *e, rt_engine_status *out);

#define RT_ENGINE_KEYS_MAX 32

/** Counts for /metrics (rt_engine_stats_get). */
typedef struct rt_engine_stats {
	size_t agents_served;          /* agents of the snapshot served that verified */
	size_t agents_refused;         /* and those refused */
	size_t modules_loaded;         /* modules in the cache now */
	size_t module_cache_capacity;
	size_t n_keys;                 /* keys of the snapshot's keyring with an expiry (at most
					  RT_ENGINE_KEYS_MAX) */
	struct {
		char id[17];           /* the first 16 hex digits of the key id */
		char role[24];
		int64_t not_after;     /* Unix seconds */
	} keys[RT_ENGINE_KEYS_MAX];
} rt_engine_stats;

/**
 * Sample the counts above (a consistent snapshot of each, not of all).
 * @return 0, AF_EINVAL (NULL argument)
 */
int rt_engine_stats_get(rt_engine *e, rt_engine_stats *out);

/** "off", "ok", "no_release" or "expired". Static string. */
const char *rt_channel_state_name(rt_channel_state s);

/**
 * One pass of the watcher, on the calling thread: reload the keyring file
 * if it changed (a file that does not parse is refused and logged, the keys
 * in force stay); following a channel, resolve and verify its head record
 * when it changed (or the keyring did, or a refused head is due for a
 * retry), load the new release's modules and switch, or keep serving the
 * release in force and log the refusal; re-verify what is served against a
 * new keyring; and stop serving a release that has expired. Serialised with
 * the watcher thread. Refusals are not errors: they are logged, counted
 * (agentfactory_signature_failures_total, reason "release", "keyring" or
 * "release_expired") and shown by rt_engine_status_get.
 * @param[in] now  the time to verify at; 0 = art_time_now()
 * @return 0, AF_EINVAL (NULL engine)
 */
int rt_engine_refresh(rt_engine *e, time_t now);

#endif
