/*
 * art/oci.h - distribution through OCI registries (docs/registry.md).
 *
 * Two layers:
 *  - a client of the OCI Distribution Spec v1.1 on libcurl (art_oci_client):
 *    blob HEAD/GET/upload (monolithic, chunked, cross-repository mount),
 *    manifest HEAD/GET/PUT, tags, the referrers API with the tag-schema
 *    fallback; anonymous, basic and bearer-token authentication (the
 *    WWW-Authenticate challenge), credentials from flags or a docker-style
 *    config.json; TLS with a CA file; plain HTTP only for a loopback host or
 *    an explicit plain_http;
 *  - the registry layout of a store (push) and its verified way back into a
 *    store (pull): one OCI image manifest per artifact, one image index per
 *    release (tag release-N), channels as tags (channel-<name>), signatures
 *    and signed statements as OCI 1.1 referrers.
 *
 * Nothing a registry returns is trusted: every blob is checked against its
 * digest and size while it is read (a body longer than announced is cut
 * off), every manifest against the digest it was asked by, and a pull
 * verifies every signature (builder, release manager, channel threshold)
 * before it writes anything, in one store transaction.
 *
 * A client belongs to one thread at a time. Nothing keeps global state
 * except libcurl's (curl_global_init is called once, thread-safely).
 */
#ifndef ART_OCI_H
#define ART_OCI_H

#include "art/keyring.h"
#include "art/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/** Media types of the layout (see docs/registry.md). */
#define ART_OCI_MEDIA_EMPTY "application/vnd.oci.empty.v1+json"
#define ART_OCI_EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
/** artifactType of a release index. */
#define ART_OCI_TYPE_RELEASE "application/vnd.agentfactory.release.v1"
/** Annotations. */
#define ART_OCI_ANN_KIND "dev.agentfactory.kind"
#define ART_OCI_ANN_REF "dev.agentfactory.ref"
#define ART_OCI_ANN_RELEASE "dev.agentfactory.release"
#define ART_OCI_ANN_CHANNEL "dev.agentfactory.channel"
#define ART_OCI_ANN_SEQ "dev.agentfactory.channel.seq"

/** Cap on a manifest or index read from a registry (the spec's 4 MiB). */
#define ART_OCI_MANIFEST_MAX (4u * 1024u * 1024u)
/** Blobs larger than this are uploaded in chunks of this size by default. */
#define ART_OCI_CHUNK_DEFAULT (8u * 1024u * 1024u)
/** Longest OCI tag. */
#define ART_OCI_TAG_MAX 128u

/** Connection and authentication options. Borrowed by the client. */
typedef struct art_oci_opts {
	const char *username;   /* with password: basic credentials for the registry
				   (also sent to a token server); NULL: from the auth file */
	const char *password;
	const char *auth_file;  /* NULL: $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json,
				   else ~/.docker/config.json (missing files are fine) */
	const char *ca_file;    /* PEM bundle to verify the registry's TLS certificate */
	bool plain_http;        /* allow http:// to a non-loopback host */
	bool allow_redirect;    /* follow redirects to another host (blob storage);
				   the digest is still checked; credentials never follow */
	long timeout_s;         /* connect / stall timeout (0: 30 s) */
	size_t chunk_size;      /* 0: ART_OCI_CHUNK_DEFAULT (env AF_OCI_CHUNK overrides) */
	FILE *progress;         /* per-transfer lines; NULL: quiet */
} art_oci_opts;

/** A parsed "oci://HOST[:PORT]/REPO[:TAG]". */
typedef struct art_oci_ref {
	char host[256];  /* "HOST[:PORT]" as given */
	char repo[256];  /* path components [a-z0-9]+([._-][a-z0-9]+)* joined by '/' */
	char tag[ART_OCI_TAG_MAX + 1]; /* "" when absent */
} art_oci_ref;

/** What went over the wire. */
typedef struct art_oci_stats {
	uint64_t requests;        /* HTTP requests made (token requests included) */
	uint64_t heads;           /* HEAD requests */
	uint64_t blobs_up;        /* blobs uploaded (mounted ones not counted) */
	uint64_t bytes_up;        /* blob bytes uploaded */
	uint64_t blobs_mounted;   /* blobs mounted from another repository */
	uint64_t blobs_skipped;   /* blobs the registry (push) or the store (pull) had */
	uint64_t blobs_down;      /* blobs downloaded */
	uint64_t bytes_down;      /* blob bytes downloaded */
	uint64_t manifests_up, manifests_down;
	uint64_t artifacts;       /* artifacts pushed / pulled (new to the store) */
	uint64_t release;         /* the release pushed / pulled, 0 if none */
	uint64_t channel_seq;     /* the channel record pushed / pulled, 0 if none */
	bool up_to_date;          /* pull: the store already had everything */
} art_oci_stats;

typedef struct art_oci_client art_oci_client;

/**
 * Parse a registry reference.
 * @return 0 or AF_EINVAL (the message says what is wrong)
 */
int art_oci_ref_parse(art_oci_ref *out, const char *url);

/** Whether tag is a valid OCI tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}). */
bool art_oci_tag_valid(const char *tag);

/**
 * The tag of name@version: "<name>-<version>" with '+' (semver build
 * metadata, not allowed in a tag) written '_' (never in a semver).
 * @return 0 or AF_EINVAL (the tag would be over 128 characters or invalid)
 */
int art_oci_artifact_tag(char out[ART_OCI_TAG_MAX + 1], const char *name, const char *version);

/**
 * A client for one repository of one registry. No request is made here.
 * @param[out] out  caller owns; free with art_oci_client_free
 * @param[in]  opts may be NULL (anonymous, defaults); borrowed for the
 *                  client's lifetime
 * @return 0, AF_EINVAL (bad URL; plain HTTP to a non-loopback host without
 *         plain_http; unreadable auth file syntax), AF_ENOMEM
 */
int art_oci_client_new(art_oci_client **out, const char *url, const art_oci_opts *opts);

/** NULL-safe. */
void art_oci_client_free(art_oci_client *c);

/** The client's counters (reset with art_oci_client_reset_stats). Borrowed. */
const art_oci_stats *art_oci_client_stats(const art_oci_client *c);
void art_oci_client_reset_stats(art_oci_client *c);

/** The parsed reference of the client. Borrowed. */
const art_oci_ref *art_oci_client_ref(const art_oci_client *c);

/**
 * HEAD a manifest by tag or digest.
 * @param[out] digest  "sha256:<hex>" from Docker-Content-Digest; "" when the
 *                     registry sent none
 * @param[out] exists  false on 404
 * @return 0 or an error naming the registry and the reference (AF_EIO for
 *         transport failures and 5xx, AF_EDENIED for refused credentials)
 */
int art_oci_manifest_head(art_oci_client *c, const char *reference,
			  char digest[72], bool *exists);

/**
 * Push artifacts, a release or a channel of a store to the client's
 * repository (docs/registry.md): only blobs the registry lacks are uploaded
 * (HEAD first; a mount from mount_from when given), manifests by digest,
 * then the tags; referrers with the tag-schema fallback when the registry
 * has no referrers API.
 * @param[in] refs      "NAME" or "NAME@VERSION"; may be combined with a release
 * @param[in] release   0: none; else release N (its artifacts, its index
 *                      tagged release-N and its signed record)
 * @param[in] channel   NULL: none; else the channel's release (as release)
 *                      and its signed record, then the tag channel-<name>
 * @param[in] mount_from another repository of the same registry to mount
 *                      missing blobs from, or NULL
 * @param[out] stats    may be NULL
 * @return 0, AF_ENOTFOUND (not in the store), AF_EINVAL, or a registry error
 */
int art_oci_push(art_oci_stats *stats, art_oci_client *c, const art_store *s,
		 const char *const *refs, size_t n_refs, uint64_t release, const char *channel,
		 const char *mount_from);

/** What to pull. */
typedef struct art_oci_pull_opts {
	const char *channel;      /* the channel's record, its release, its artifacts */
	uint64_t release;         /* or release N and its artifacts */
	const char *const *refs;  /* or these name@version (tags) */
	size_t n_refs;
	unsigned min_threshold;   /* channel records need at least this many signatures */
	const char *partial_dir;  /* verified blobs of an interrupted pull are kept here
				     and reused (NULL: <store>/oci-partial) */
	const char *expect_digest;/* channel: the index digest a HEAD just returned, to
				     skip a second request ("" or NULL: ask) */
} art_oci_pull_opts;

/**
 * Pull into a store, verifying everything before writing anything: every
 * blob's digest and size, every manifest's digest, every builder signature,
 * the release record's signature and expiry, the channel record's threshold,
 * that the channel record is not older than the store's (a replay) and names
 * this release; then one store transaction writes artifacts, release,
 * channel record and an audit entry. Blobs already in the store are not
 * downloaded. Verified downloads are kept in the partial directory until the
 * commit, so an interrupted pull resumes without fetching them again; the
 * store itself is unchanged until the commit.
 * With neither channel, release nor refs: every channel-* tag of the
 * repository, one after the other (each in its own transaction).
 * @param[out] stats  may be NULL; up_to_date when nothing was new
 * @return 0, or an error naming the registry, the reference and what to do:
 *         AF_ESIGNATURE / AF_ECORRUPT (tampered or wrong data), AF_EDENIED
 *         (replayed channel record, credentials), AF_EEXPIRED (expired
 *         release), AF_ENOTFOUND, AF_EIO (transport), AF_ETOOBIG
 */
int art_oci_pull(art_oci_stats *stats, art_oci_client *c, art_store *s, const art_keyring *kr,
		 time_t now, const art_oci_pull_opts *opts);

#endif
