/*
 * test_release_records.c - the release and channel records a reader is
 * given (art_release_verify_envelope, art_channel_verify_envelope: what a
 * registry pull or a runtime checks), validly signed by a release manager
 * but malformed: every field of the schema missing, of the wrong type, out
 * of range, unsorted or duplicated, a newer format version, a record that
 * is not canonical JSON, extra fields. Each must be refused with its code
 * (AF_ECORRUPT, AF_EVERSION) and a message that says what is wrong; the
 * well-formed baseline must pass, so that each refusal is the field's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/release.h"
#include "art/sig.h"
#include "art/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static struct {
	art_key *rm;
	art_keyring *kr;
} fx;

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.rm, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.rm, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.rm);
	art_keyring_free(fx.kr);
	return 0;
}

static char *sign(const char *type, const char *payload)
{
	char *env = NULL;

	if (art_sig_sign_payload(&env, fx.rm, type, payload, strlen(payload)) < 0)
		fail_msg("sign: %s", art_error_last());
	return env;
}

static int release_rc(const char *payload, art_release **out)
{
	char *env = sign(ART_RELEASE_PAYLOAD_TYPE, payload);
	int rc = art_release_verify_envelope(out, fx.kr, env, strlen(env), NOW, true);

	free(env);
	return rc;
}

#define PIN_A "{\"manifest_digest\":\"" D1 "\",\"name\":\"alpha\",\"version\":\"1.0.0\"}"
#define PIN_B "{\"manifest_digest\":\"" D2 "\",\"name\":\"beta\",\"version\":\"2.0.0\"}"
#define REL(arts, created, expires, format, number)                                          \
	"{\"artifacts\":[" arts "],\"created\":\"" created "\",\"expires\":\"" expires        \
	"\",\"format\":\"" format "\",\"number\":" number "}"
#define GOOD_REL REL(PIN_A "," PIN_B, "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z", \
		     "agentfactory-release/v1", "7")

static void test_release_records__release_schema(void **state)
{
	static const struct {
		const char *what, *payload, *needle;
		int rc;
	} bad[] = {
		{"newer format", REL(PIN_A, "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
				     "agentfactory-release/v2", "7"), "not supported", AF_EVERSION},
		{"other format", REL(PIN_A, "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
				     "something/v1", "7"), "malformed release record", AF_ECORRUPT},
		{"number 0", REL(PIN_A, "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
				 "agentfactory-release/v1", "0"), "malformed", AF_ECORRUPT},
		{"negative number", REL(PIN_A, "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
					"agentfactory-release/v1", "-3"), "malformed", AF_ECORRUPT},
		{"number as text", REL(PIN_A, "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
				       "agentfactory-release/v1", "\"7\""), "malformed", AF_ECORRUPT},
		{"bad created", REL(PIN_A, "2026-01-02 00:00:00", "2026-02-01T00:00:00Z",
				    "agentfactory-release/v1", "7"), "malformed", AF_ECORRUPT},
		{"bad expires", REL(PIN_A, "2026-01-02T00:00:00Z", "2026-02-31T00:00:00+01",
				    "agentfactory-release/v1", "7"), "malformed", AF_ECORRUPT},
		{"no artifacts", REL("", "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
				     "agentfactory-release/v1", "7"), "malformed", AF_ECORRUPT},
		{"unsorted pins", REL(PIN_B "," PIN_A, "2026-01-02T00:00:00Z",
				      "2026-02-01T00:00:00Z", "agentfactory-release/v1", "7"),
		 "sorted by unique name", AF_ECORRUPT},
		{"one name twice", REL(PIN_A "," PIN_A, "2026-01-02T00:00:00Z",
				       "2026-02-01T00:00:00Z", "agentfactory-release/v1", "7"),
		 "artifacts[1]", AF_ECORRUPT},
		{"pin without digest",
		 REL("{\"name\":\"alpha\",\"version\":\"1.0.0\"}", "2026-01-02T00:00:00Z",
		     "2026-02-01T00:00:00Z", "agentfactory-release/v1", "7"), "artifacts[0]",
		 AF_ECORRUPT},
		{"pin with a bad digest",
		 REL("{\"manifest_digest\":\"sha256:XYZ\",\"name\":\"alpha\",\"version\":\"1.0.0\"}",
		     "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z", "agentfactory-release/v1", "7"),
		 "artifacts[0]", AF_ECORRUPT},
		{"pin with a bad name",
		 REL("{\"manifest_digest\":\"" D1 "\",\"name\":\"Alpha\",\"version\":\"1.0.0\"}",
		     "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z", "agentfactory-release/v1", "7"),
		 "artifacts[0]", AF_ECORRUPT},
		{"pin with a bad version",
		 REL("{\"manifest_digest\":\"" D1 "\",\"name\":\"alpha\",\"version\":\"1.0\"}",
		     "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z", "agentfactory-release/v1", "7"),
		 "artifacts[0]", AF_ECORRUPT},
		{"pin with an extra field",
		 REL("{\"extra\":1,\"manifest_digest\":\"" D1 "\",\"name\":\"alpha\",\"version\":"
		     "\"1.0.0\"}", "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z",
		     "agentfactory-release/v1", "7"), "artifacts[0]", AF_ECORRUPT},
		{"extra field", "{\"artifacts\":[" PIN_A "],\"created\":\"2026-01-02T00:00:00Z\","
				"\"expires\":\"2026-02-01T00:00:00Z\",\"format\":\"agentfactory-"
				"release/v1\",\"number\":7,\"zzz\":true}", "malformed", AF_ECORRUPT},
		{"not canonical", "{\"number\":7,\"artifacts\":[" PIN_A "],\"created\":\"2026-01-"
				  "02T00:00:00Z\",\"expires\":\"2026-02-01T00:00:00Z\",\"format\":"
				  "\"agentfactory-release/v1\"}", "canonical", AF_ECORRUPT},
		{"not an object", "[1,2,3]", "malformed", AF_ECORRUPT},
		{"not JSON", "release 7, trust me", "malformed", AF_ECORRUPT},
	};
	art_release *r = NULL;
	art_channel *c = NULL;
	size_t i;
	int rc;

	(void)state;
	/* the baseline passes: every refusal below is its field's */
	assert_int_equal(release_rc(GOOD_REL, &r), 0);
	assert_int_equal(r->number, 7);
	assert_int_equal(r->n_pins, 2);
	assert_true(r->verified);
	assert_non_null(art_release_find(r, "beta"));
	assert_null(art_release_find(r, "gamma"));
	assert_null(art_release_find(r, NULL));
	art_release_free(r);
	r = NULL;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = release_rc(bad[i].payload, &r);
		if (rc != bad[i].rc)
			fail_msg("%s: %d (%s), not %d", bad[i].what, rc, art_error_last(), bad[i].rc);
		if (!strstr(art_error_last(), bad[i].needle))
			fail_msg("%s: '%s' does not say '%s'", bad[i].what, art_error_last(),
				 bad[i].needle);
		assert_null(r);
	}
	/* expired at the reader's clock, unless expiry is not checked (a pull of history) */
	{
		char *env = sign(ART_RELEASE_PAYLOAD_TYPE, GOOD_REL);

		assert_int_equal(art_release_verify_envelope(&r, fx.kr, env, strlen(env),
							     T_2026 + 60 * 86400, true),
				 AF_EEXPIRED);
		assert_null(r);
		assert_int_equal(art_release_verify_envelope(&r, fx.kr, env, strlen(env),
							     T_2026 + 60 * 86400, false), 0);
		art_release_free(r);
		r = NULL;
		/* a release envelope is not a channel record */
		assert_int_equal(art_channel_verify_envelope(&c, fx.kr, "blue", env, strlen(env),
							     NOW, 0), AF_ESIGNATURE);
		assert_null(c);
		free(env);
	}
}

#define CH(action, channel, format, previous, release, digest, required, seq, threshold, time) \
	"{\"action\":\"" action "\",\"channel\":\"" channel "\",\"format\":\"" format            \
	"\",\"previous\":" previous ",\"release\":" release ",\"release_digest\":\"" digest     \
	"\",\"required\":" required ",\"seq\":" seq ",\"threshold\":" threshold ",\"time\":\"" \
	time "\"}"
#define CHF "agentfactory-channel/v1"
#define TIME "2026-01-02T00:00:00Z"

static int channel_rc(const char *payload, art_channel **out)
{
	char *env = sign(ART_CHANNEL_PAYLOAD_TYPE, payload);
	int rc = art_channel_verify_envelope(out, fx.kr, "blue", env, strlen(env), NOW, 0);

	free(env);
	return rc;
}

static void test_release_records__channel_schema(void **state)
{
	static const struct {
		const char *what, *payload, *needle;
		int rc;
	} bad[] = {
		{"newer format", CH("promote", "blue", "agentfactory-channel/v9", "1", "2", D1, "1",
				    "2", "1", TIME), "not supported", AF_EVERSION},
		{"other format", CH("promote", "blue", "other/v1", "1", "2", D1, "1", "2", "1",
				    TIME), "malformed channel record", AF_ECORRUPT},
		{"unknown action", CH("demote", "blue", CHF, "1", "2", D1, "1", "2", "1", TIME),
		 "malformed channel record", AF_ECORRUPT},
		{"bad channel name", CH("promote", "Blue!", CHF, "1", "2", D1, "1", "2", "1", TIME),
		 "malformed", AF_ECORRUPT},
		{"seq 0", CH("promote", "blue", CHF, "1", "2", D1, "1", "0", "1", TIME), "malformed",
		 AF_ECORRUPT},
		{"threshold 0", CH("promote", "blue", CHF, "1", "2", D1, "1", "2", "0", TIME),
		 "malformed", AF_ECORRUPT},
		{"threshold 17", CH("promote", "blue", CHF, "1", "2", D1, "1", "2", "17", TIME),
		 "malformed", AF_ECORRUPT},
		{"required 0", CH("promote", "blue", CHF, "1", "2", D1, "0", "2", "1", TIME),
		 "malformed", AF_ECORRUPT},
		{"required 17", CH("promote", "blue", CHF, "1", "2", D1, "17", "2", "1", TIME),
		 "malformed", AF_ECORRUPT},
		{"a release with no digest", CH("promote", "blue", CHF, "1", "2", "", "1", "2", "1",
						TIME), "malformed", AF_ECORRUPT},
		{"no release with a digest", CH("set-threshold", "blue", CHF, "0", "0", D1, "1", "2",
						"1", TIME), "malformed", AF_ECORRUPT},
		{"previous as text", CH("promote", "blue", CHF, "\"1\"", "2", D1, "1", "2", "1",
					TIME), "malformed", AF_ECORRUPT},
		{"bad time", CH("promote", "blue", CHF, "1", "2", D1, "1", "2", "1",
				"2026-01-02T00:00:00"), "malformed", AF_ECORRUPT},
		{"not canonical", "{\"channel\":\"blue\",\"action\":\"promote\",\"format\":\"" CHF
				  "\",\"previous\":1,\"release\":2,\"release_digest\":\"" D1
				  "\",\"required\":1,\"seq\":2,\"threshold\":1,\"time\":\"" TIME
				  "\"}", "canonical", AF_ECORRUPT},
		{"not JSON", "promote blue to 2", "malformed", AF_ECORRUPT},
	};
	art_channel *c = NULL;
	art_release *r = NULL;
	size_t i;
	int rc;

	(void)state;
	assert_int_equal(channel_rc(CH("promote", "blue", CHF, "1", "2", D1, "1", "2", "1", TIME),
				    &c), 0);
	assert_int_equal(c->seq, 2);
	assert_int_equal(c->release, 2);
	assert_string_equal(c->action, "promote");
	assert_int_equal(c->n_signers, 1);
	art_channel_free(c);
	c = NULL;
	/* a threshold record without a release is well-formed */
	assert_int_equal(channel_rc(CH("set-threshold", "blue", CHF, "0", "0", "", "1", "1", "2",
				       TIME), &c), 0);
	assert_int_equal(c->threshold, 2);
	art_channel_free(c);
	c = NULL;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = channel_rc(bad[i].payload, &c);
		if (rc != bad[i].rc)
			fail_msg("%s: %d (%s), not %d", bad[i].what, rc, art_error_last(), bad[i].rc);
		if (!strstr(art_error_last(), bad[i].needle))
			fail_msg("%s: '%s' does not say '%s'", bad[i].what, art_error_last(),
				 bad[i].needle);
		assert_null(c);
	}
	/* a well-formed record of another channel, offered as blue's */
	{
		char *env = sign(ART_CHANNEL_PAYLOAD_TYPE,
				 CH("promote", "green", CHF, "1", "2", D1, "1", "2", "1", TIME));

		assert_int_equal(art_channel_verify_envelope(&c, fx.kr, "blue", env, strlen(env),
							     NOW, 0), AF_ESIGNATURE);
		assert_non_null(strstr(art_error_last(), "green"));
		assert_null(c);
		/* more signatures than it has: the reader's minimum */
		assert_int_equal(art_channel_verify_envelope(&c, fx.kr, "green", env, strlen(env),
							     NOW, 2), AF_EDENIED);
		assert_null(c);
		/* an invalid channel name asked for */
		assert_int_equal(art_channel_verify_envelope(&c, fx.kr, "Green", env, strlen(env),
							     NOW, 0), AF_EINVAL);
		free(env);
	}
	/* an envelope that is not JSON, or too big */
	{
		static char big[70 * 1024];

		memset(big, ' ', sizeof(big) - 1);
		assert_true(art_channel_verify_envelope(&c, fx.kr, "blue", "{", 1, NOW, 0) < 0);
		assert_true(art_channel_verify_envelope(&c, fx.kr, "blue", big, sizeof(big) - 1, NOW,
							0) < 0);
		assert_true(art_release_verify_envelope(&r, fx.kr, big, sizeof(big) - 1, NOW,
							true) < 0);
		assert_null(c);
		assert_null(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_records__release_schema),
		cmocka_unit_test(test_release_records__channel_schema),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
