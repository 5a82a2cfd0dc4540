/*
 * channel.c - release-side helpers of the engine (channel.h): the cheap,
 * unverified head check the watcher polls, loading exactly the artifact a
 * release pins, and re-checking accepted signatures against a new keyring.
 *
 * Nothing here trusts the store: the head peek only decides whether the
 * verified resolve (art_release_channel_resolve_ex) is worth running, and a
 * pinned load verifies the artifact twice over: the signed manifest must be
 * the pinned one (art_release_load_artifact), and the module the loader
 * then verifies and maps (in its own snapshot) must carry the same manifest
 * digest, so a record swapped between the two reads is refused too.
 */
#include "channel.h"

#include "art/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rt_channel__peek(rt_channel_head *out, const art_store *s, const char *channel)
{
	art_channel **list = NULL;
	size_t n = 0, i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = art_channel_list(&list, &n, s, NULL, 0)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		if (strcmp(list[i]->name, channel) != 0)
			continue;
		out->exists = true;
		out->seq = list[i]->seq;
		out->release = list[i]->release;
		snprintf(out->release_digest, sizeof(out->release_digest), "%s",
			 list[i]->release_digest);
		break;
	}
	art_channel_list_free(list, n);
	return 0;
}

bool rt_channel__head_equal(const rt_channel_head *a, const rt_channel_head *b)
{
	return a->exists == b->exists && a->seq == b->seq && a->release == b->release &&
	       strcmp(a->release_digest, b->release_digest) == 0;
}

/* The refusal label of an art_release_load_artifact / load_verified error. */
static const char *verify_reason(int rc)
{
	return rc == AF_ENOTFOUND ? "signature" : rt_loader_reason(rc);
}

/* The stored record of the pin, compared with the pin before any crypto:
 * a clear "pin" refusal for another build under the same name@version. */
static int check_pin(const char **reason, const art_store *s, const art_release_pin *pin,
		     uint64_t number)
{
	art_store_record *rec = NULL;
	int rc = art_store_get_artifact(&rec, s, pin->name, pin->version);

	if (rc == AF_ENOTFOUND) {
		*reason = "store";
		return art_error_set(AF_ENOTFOUND, "release %llu pins %s@%s, which is not in the store",
				     (unsigned long long)number, pin->name, pin->version);
	}
	if (rc < 0) {
		*reason = "store";
		return rc;
	}
	if (strcmp(rec->manifest_digest, pin->manifest_digest) != 0) {
		*reason = "pin";
		rc = art_error_set(AF_ESIGNATURE, "%s@%s in the store is manifest %.19s..., release "
				   "%llu pins %.19s...: refusing to serve another build", pin->name,
				   pin->version, rec->manifest_digest, (unsigned long long)number,
				   pin->manifest_digest);
	}
	art_store_record_free(rec);
	return rc;
}

int rt_channel__verify_pinned(const char **reason, const art_store *s, const art_keyring *kr,
			      const art_release *r, const char *name, time_t now)
{
	const art_release_pin *pin = art_release_find(r, name);
	art_verified_artifact *va = NULL;
	const char *why = NULL;
	int rc;

	if (!pin) {
		why = "store";
		rc = art_error_set(AF_ENOTFOUND, "release %llu has no agent named '%.80s'",
				   r ? (unsigned long long)r->number : 0ull, name ? name : "");
		goto cleanup;
	}
	if ((rc = check_pin(&why, s, pin, r->number)) < 0)
		goto cleanup;
	rc = art_release_load_artifact(&va, s, kr, r, name, now, NULL, 0);
	if (rc < 0)
		why = verify_reason(rc);
cleanup:
	art_verified_artifact_free(va);
	if (reason)
		*reason = rc < 0 ? why : NULL;
	return rc;
}

int rt_channel__verify_stored(const char **reason, const art_store *s, const art_keyring *kr,
			      const char *name, const char *version, const char *manifest_digest,
			      time_t now)
{
	art_verified_artifact *va = NULL;
	int rc = art_store_load_verified_parts(&va, s, kr, name, version, now, NULL, 0);

	if (rc == 0 && strcmp(va->manifest_digest, manifest_digest) != 0) {
		rc = art_error_set(AF_ESIGNATURE, "%s@%s was rebuilt in the store (manifest %.19s..., "
				   "loaded %.19s...): loading it again", name, version,
				   va->manifest_digest, manifest_digest);
		if (reason)
			*reason = "store";
	} else if (rc < 0 && reason) {
		*reason = verify_reason(rc);
	}
	art_verified_artifact_free(va);
	return rc;
}

int rt_channel__load_pinned(rt_module **out, const char **reason, const art_store *s,
			    const art_keyring *kr, const art_release *r, const char *name,
			    time_t now, const rt_host_env *env)
{
	const art_release_pin *pin;
	const char *why = NULL;
	rt_module *m = NULL;
	int rc;

	*out = NULL;
	if ((rc = rt_channel__verify_pinned(&why, s, kr, r, name, now)) < 0)
		goto cleanup;
	pin = art_release_find(r, name);
	rc = rt_module_from_store(&m, &why, s, kr, pin->name, pin->version, now, env);
	if (rc < 0)
		goto cleanup;
	/* The loader read in its own snapshot: it must have loaded the pin. */
	if (strcmp(m->manifest_digest, pin->manifest_digest) != 0) {
		why = "pin";
		rc = art_error_set(AF_ESIGNATURE, "%s@%s changed in the store while it was loaded "
				   "(manifest %.19s..., release %llu pins %.19s...)", pin->name,
				   pin->version, m->manifest_digest, (unsigned long long)r->number,
				   pin->manifest_digest);
		goto cleanup;
	}
	*out = m;
	m = NULL;
cleanup:
	rt_module_unref(m);
	if (reason)
		*reason = rc < 0 ? (why ? why : "store") : NULL;
	return rc;
}

static int lookup_rank(int rc)
{
	switch (rc) {
	case AF_EREVOKED:
		return 4;
	case AF_ENOTFOUND:
		return 3;
	case AF_EDENIED:
		return 2;
	case AF_EEXPIRED:
		return 1;
	default:
		return 0;
	}
}

int rt_channel__recheck_signers(const art_keyring *kr, const art_channel *c, unsigned need,
				time_t now)
{
	char why[512] = "";
	unsigned trusted = 0;
	int worst = 0;
	size_t i;

	if (need < 1)
		need = 1;
	for (i = 0; i < c->n_signers; i++) {
		const art_key *key = NULL;
		int rc = art_keyring_lookup(&key, kr, c->signers[i], ART_ROLE_RELEASE_MANAGER, now);

		if (rc == 0) {
			trusted++;
		} else if (worst == 0 || lookup_rank(rc) > lookup_rank(worst)) {
			worst = rc;
			snprintf(why, sizeof(why), "%s", art_error_last());
		}
	}
	if (trusted >= need)
		return 0;
	if (worst == 0)
		return art_error_set(AF_EDENIED, "channel %s record %llu: %u trusted signer(s), %u needed",
				     c->name, (unsigned long long)c->seq, trusted, need);
	return art_error_set(worst, "channel %s record %llu: %u trusted signer(s), %u needed: %s",
			     c->name, (unsigned long long)c->seq, trusted, need, why);
}
