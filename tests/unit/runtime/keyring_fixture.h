/*
 * keyring_fixture.h - runtime tests write keyrings as the trust tools do:
 * signed by a root key (one per test process), each save a newer version,
 * so a keyring the runtime follows live is a valid successor of the last.
 */
#ifndef TEST_KEYRING_FIXTURE_H
#define TEST_KEYRING_FIXTURE_H

#include "art/keyring.h"
#include "art/keys.h"

#include <stdint.h>
#include <time.h>

/* Adds the test root key to kr (a keyring without it), signs, saves. */
static inline int keyring_fixture_save(art_keyring *kr, const char *path)
{
	static art_key *root; /* reachable for the whole process */
	static uint64_t version;
	const art_key *signers[1];

	if (!root && art_key_generate(&root, 2048) < 0)
		return -1;
	signers[0] = root;
	if (art_keyring_add(kr, root, ART_ROLE_ROOT, 0, 0) < 0 ||
	    art_keyring_sign(kr, ++version, (time_t)253402300799LL, signers, 1) < 0)
		return -1;
	return art_keyring_save(kr, path);
}

#endif
