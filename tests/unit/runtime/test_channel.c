/*
 * test_channel.c - the engine following a channel (rt/engine.h,
 * docs/runtime.md "Channels and live switch") on a real store: lab guests
 * (tests/fixtures/runtime/lab_guest.c) stored as signed artifacts, releases
 * and channel records written with the art_release_* writers (in a child
 * process, as another process would: the engine reads the same store), and
 * rt_engine_refresh driving the watcher's pass deterministically (no
 * thread, no sleep; `now` is passed explicitly to move the clock).
 *
 * Covers: exactly the pinned artifacts are served, promote / rollback
 * switches (reusing loaded modules), a request in flight finishes on the old
 * release while new ones see the new one, a promoted expired release is
 * refused and the previous one kept, the release in force expiring (freeze
 * protection: 503 release_expired, not ready), a replayed older channel
 * record and a record under the signature floor refused, a stored manifest
 * other than the pinned one refused, keyring reloads (a new release-manager
 * key picked up, a file that does not parse refused, a revoked builder key
 * refusing its artifacts, a revoked release-manager key withdrawing the
 * release, the same in "latest" mode), a bad or missing channel at open, and
 * switches under concurrent invocations with zero failures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "labguest.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/release.h"
#include "art/store.h"
#include "art/util.h"
#include "gen/toolchain.h"
#include "rt/compat.h"
#include "rt/engine.h"
#include "rt/llm.h"
#include "rt/metrics.h"
#include "keyring_fixture.h"
#include "../../../runtime/src/channel.h"

#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ALPHA, BRAVO, N_LAB };
static const char *const names[N_LAB] = {"alpha", "bravo"};

static const char ECHO[] = "{\"cmd\":\"echo\"}";
static const char LLM_CALL[] = "{\"cmd\":\"llm\",\"call\":{\"messages\":[]}}";

static struct {
	char root[64], store[128], keyring[128], logpath[128], pinstore[128], otherstore[128];
	gen_toolchain *tc;
	art_key *builder, *rm1, *rm2;
	lab_build lab[N_LAB];
	time_t t0;
	FILE *log;
} g;

/* ---- the store ---------------------------------------------------------------------- */

static int put_lab(art_store_txn *t, int i, const char *git_commit)
{
	static const char *const caps[] = {"clock", "kv.read", "kv.write", "llm_chat",
					   "log", "random", "tool_call"};
	static const art_manifest_import imports[] = {
		{"af", "clock_now_ms", "func"}, {"af", "llm_chat", "func"}, {"af", "log", "func"},
		{"af", "random_get", "func"},   {"af", "result_read", "func"},
		{"af", "tool_call", "func"}};
	static const art_manifest_export exports[] = {
		{"_initialize", "func"}, {"af_abi_version", "func"}, {"af_alloc", "func"},
		{"af_describe", "func"}, {"af_handle", "func"},      {"memory", "memory"}};
	art_provenance_info prov = {"https://git.example.invalid/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	const lab_build *b = &g.lab[i];
	art_manifest_info info;
	art_build_parts parts;
	char resolved[ART_DIGEST_STR_LEN + 1];

	art_manifest_digest(resolved, names[i], strlen(names[i]));
	memset(&info, 0, sizeof(info));
	info.name = names[i];
	info.version = "1.0.0";
	info.resolved_template_digest = resolved;
	info.git_commit = git_commit;
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "test-toolchain";
	info.native_compat_id = gen_toolchain_compat_id(g.tc);
	info.target_triple = rt_compat_target();
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 6;
	info.exports = exports;
	info.n_exports = 6;
	info.capabilities = caps;
	info.n_capabilities = 7;
	parts.wasm = b->wasm;
	parts.wasm_len = b->wasm_len;
	parts.native = b->so;
	parts.native_len = b->so_len;
	parts.source = b->source;
	parts.source_len = b->source_len;
	return art_store_put_build(t, NULL, &info, &prov, &parts, g.builder);
}

static int make_store(const char *dir, const char *git_commit, int n)
{
	art_store *s = NULL;
	art_store_txn *t = NULL;
	int i, rc;

	if ((rc = art_store_open(&s, dir, ART_STORE_CREATE)) < 0 ||
	    (rc = art_store_txn_begin(&t, s)) < 0)
		goto done;
	for (i = 0; i < n && rc == 0; i++)
		rc = put_lab(t, i, git_commit);
	rc = rc == 0 ? art_store_txn_commit(t) : (art_store_txn_abort(t), rc);
done:
	if (rc < 0)
		fprintf(stderr, "store %s: %s\n", dir, art_error_last());
	art_store_close(s);
	return rc;
}

/* Every key, as the release managers' machine trusts them. */
static art_keyring *admin_keyring(void)
{
	art_keyring *kr = NULL;

	if (art_keyring_new(&kr) ||
	    art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0) ||
	    art_keyring_add(kr, g.rm1, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0) ||
	    art_keyring_add(kr, g.rm2, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0))
		fail_msg("admin keyring: %s", art_error_last());
	return kr;
}

/* The runtime's keyring file (replaced atomically: temp + rename). */
static void write_keyring(bool with_rm2, const art_key *revoke)
{
	art_keyring *kr = NULL;

	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_add(kr, g.rm1, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0), 0);
	if (with_rm2)
		assert_int_equal(art_keyring_add(kr, g.rm2, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0),
				 0);
	if (revoke)
		assert_int_equal(art_keyring_revoke(kr, art_key_id(revoke), g.t0, "test"), 0);
	assert_int_equal(keyring_fixture_save(kr, g.keyring), 0);
	art_keyring_free(kr);
}

/* ---- writers: in a child process, as the release CLI would be ------------------------- */

enum { W_CREATE, W_PROMOTE, W_ROLLBACK, W_THRESHOLD };

typedef struct write_op {
	int kind;
	const char *store;              /* NULL: g.store */
	const char *channel;
	const char *refs[N_LAB];
	size_t n_refs;
	const art_key *keys[2];         /* NULL: rm1 */
	uint64_t number;                /* promote: the release; rollback: to */
	unsigned threshold;
	time_t now, expires;            /* 0: g.t0, now + 7 days */
} write_op;

static int write_child(const write_op *op)
{
	art_store *s = NULL;
	art_keyring *kr = admin_keyring();
	art_release *r = NULL;
	const art_key *keys[2] = {op->keys[0] ? op->keys[0] : g.rm1, op->keys[1]};
	size_t n_keys = op->keys[1] ? 2 : 1;
	time_t now = op->now ? op->now : g.t0;
	int rc;

	if ((rc = art_store_open(&s, op->store ? op->store : g.store, 0)) < 0)
		goto done;
	switch (op->kind) {
	case W_CREATE:
		rc = art_release_create(&r, s, kr, keys[0], op->refs, op->n_refs,
					op->expires ? op->expires : now + 7 * 86400, now);
		break;
	case W_PROMOTE:
		rc = art_release_promote(NULL, s, kr, keys, n_keys, op->channel, op->number, now);
		break;
	case W_ROLLBACK:
		rc = art_release_rollback(NULL, s, kr, keys, n_keys, op->channel, op->number, now);
		break;
	default:
		rc = art_release_set_threshold(NULL, s, kr, keys, n_keys, op->channel, op->threshold,
					       now);
		break;
	}
done:
	if (rc < 0)
		fprintf(stderr, "writer: %s\n", art_error_last());
	rc = rc < 0 ? 255 : r ? (int)r->number : 0;
	art_release_free(r);
	art_store_close(s);
	art_keyring_free(kr);
	return rc;
}

/*
 * The writer: a process forked at setup, before any thread exists (a fork
 * while invocations run on other threads could inherit a lock one of them
 * holds), serving write_op requests over a pipe. Pointers in a write_op
 * name memory that existed at the fork (literals, g's keys and paths).
 */
static struct {
	pid_t pid;
	int to, from;
} writer = {-1, -1, -1};

static void writer_loop(int in, int out)
{
	write_op op;

	while (read(in, &op, sizeof(op)) == (ssize_t)sizeof(op)) {
		int rc = write_child(&op);

		if (write(out, &rc, sizeof(rc)) != (ssize_t)sizeof(rc))
			break;
	}
	_exit(0);
}

static int writer_start(void)
{
	int down[2], up[2];

	if (pipe(down) != 0 || pipe(up) != 0)
		return -1;
	fflush(NULL);
	writer.pid = fork();
	if (writer.pid < 0)
		return -1;
	if (writer.pid == 0) {
		close(down[1]);
		close(up[0]);
		writer_loop(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	writer.to = down[1];
	writer.from = up[0];
	return 0;
}

static void writer_stop(void)
{
	if (writer.pid <= 0)
		return;
	close(writer.to);
	close(writer.from);
	waitpid(writer.pid, NULL, 0);
	writer.pid = -1;
}

/* Run op in the writer; the release number for W_CREATE, else 0. */
static uint64_t write_store(const write_op *op)
{
	int rc = 255;

	assert_int_equal(write(writer.to, op, sizeof(*op)), sizeof(*op));
	assert_int_equal(read(writer.from, &rc, sizeof(rc)), sizeof(rc));
	if (rc == 255)
		fail_msg("writer %d failed (its message is on stderr)", op->kind);
	return (uint64_t)rc;
}

static uint64_t create(const char *a, const char *b, time_t now, time_t expires)
{
	write_op op = {.kind = W_CREATE, .refs = {a, b}, .n_refs = b ? 2 : 1, .now = now,
		       .expires = expires};

	return write_store(&op);
}

static void promote(const char *channel, uint64_t number, const art_key *k1, const art_key *k2,
		    time_t now)
{
	write_op op = {.kind = W_PROMOTE, .channel = channel, .number = number, .keys = {k1, k2},
		       .now = now};

	write_store(&op);
}

static void rollback(const char *channel, uint64_t to)
{
	write_op op = {.kind = W_ROLLBACK, .channel = channel, .number = to};

	write_store(&op);
}

/* ---- a model call that waits for the test (requests in flight) ------------------------- */

static sem_t llm_entered, llm_go;

static int blocking_chat(void *ctx, const char *req, size_t len, char **resp, size_t *resp_len)
{
	static const char answer[] = "{\"role\":\"assistant\",\"content\":\"late\"}";

	(void)ctx;
	(void)req;
	(void)len;
	sem_post(&llm_entered);
	sem_wait(&llm_go);
	*resp = strdup(answer);
	*resp_len = sizeof(answer) - 1;
	return *resp ? 0 : AF_ENOMEM;
}

static const rt_llm_provider blocking_llm = {.name = "blocking", .chat = blocking_chat};

/* ---- engine helpers ------------------------------------------------------------------- */

static rt_engine *open_engine(const char *store, const char *channel, unsigned min_threshold)
{
	rt_engine_opts o;
	rt_engine *e = NULL;

	memset(&o, 0, sizeof(o));
	o.store_dir = store ? store : g.store;
	o.keyring_path = g.keyring;
	o.channel = channel;
	o.min_threshold = min_threshold;
	o.max_memory_pages = 128;
	o.log = g.log;
	o.llm = &blocking_llm;
	if (rt_engine_open(&e, &o) != 0)
		fail_msg("rt_engine_open: %s", art_error_last());
	return e;
}

static void status(rt_engine *e, rt_engine_status *st)
{
	assert_int_equal(rt_engine_status_get(e, st), 0);
}

static void invoke_expect(rt_engine *e, const char *name, const char *req, const char *code,
			  int http_status)
{
	rt_invoke_result res;

	assert_int_equal(rt_engine_invoke(e, name, NULL, req, strlen(req), &res), 0);
	if (code ? !res.error_code || strcmp(res.error_code, code) != 0 : res.error_code != NULL)
		fail_msg("%s %s: wanted %s, got %s: %s", name, req, code ? code : "ok",
			 res.error_code ? res.error_code : "ok", res.body ? res.body : "");
	assert_int_equal(res.http_status, http_status);
	assert_non_null(res.body);
	if (code)
		assert_non_null(strstr(res.body, code));
	rt_invoke_result_clear(&res);
}

/* The names served, "alpha,bravo" (refused ones with a '!'). */
static void served(rt_engine *e, char *out, size_t n)
{
	rt_agent_info *a = NULL;
	size_t k = 0, i;

	out[0] = '\0';
	assert_int_equal(rt_engine_list(e, &a, &k), 0);
	for (i = 0; i < k; i++)
		snprintf(out + strlen(out), n - strlen(out), "%s%s%s", i ? "," : "", a[i].name,
			 a[i].ok ? "" : "!");
	rt_agent_info_free(a, k);
}

static void expect_served(rt_engine *e, const char *want)
{
	char got[256];

	served(e, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("served '%s', want '%s'", got, want);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
	char dir[160];
	int i;

	(void)state;
	g.t0 = time(NULL);
	snprintf(g.root, sizeof(g.root), "/tmp/af-test-channel-XXXXXX");
	if (!mkdtemp(g.root) || gen_toolchain_discover(&g.tc) != 0)
		return -1;
	snprintf(g.store, sizeof(g.store), "%s/store", g.root);
	snprintf(g.pinstore, sizeof(g.pinstore), "%s/pinned", g.root);
	snprintf(g.otherstore, sizeof(g.otherstore), "%s/other", g.root);
	snprintf(g.keyring, sizeof(g.keyring), "%s/keyring.json", g.root);
	snprintf(g.logpath, sizeof(g.logpath), "%s/runtime.log", g.root);
	if (!(g.log = fopen(g.logpath, "a")))
		return -1;
	for (i = 0; i < N_LAB; i++) {
		snprintf(dir, sizeof(dir), "%s/build-%s", g.root, names[i]);
		if (lab_build_module(&g.lab[i], dir, names[i]) != 0)
			return -1;
	}
	if (art_key_generate(&g.builder, 2048) || art_key_generate(&g.rm1, 2048) ||
	    art_key_generate(&g.rm2, 2048))
		return -1;
	if (make_store(g.store, "0123456789abcdef0123456789abcdef01234567", N_LAB) ||
	    make_store(g.pinstore, "0123456789abcdef0123456789abcdef01234567", 1) ||
	    make_store(g.otherstore, "fedcba9876543210fedcba9876543210fedcba98", 1))
		return -1;
	return writer_start();
}

static int teardown(void **state)
{
	int i;

	(void)state;
	writer_stop();
	for (i = 0; i < N_LAB; i++)
		lab_build_free(&g.lab[i]);
	art_key_free(g.builder);
	art_key_free(g.rm1);
	art_key_free(g.rm2);
	gen_toolchain_free(g.tc);
	if (g.log)
		fclose(g.log);
	if (g.root[0])
		lab_rmtree(g.root);
	return 0;
}

/* Each test starts from the runtime trusting builder and rm1. */
static int reset_keyring(void **state)
{
	(void)state;
	write_keyring(false, NULL);
	return 0;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_channel__open_with_a_bad_or_missing_channel(void **state)
{
	rt_engine_opts o;
	rt_engine *e = NULL;
	rt_engine_status st;
	char *doc = NULL;
	size_t len = 0;
	uint64_t r;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.store_dir = g.store;
	o.keyring_path = g.keyring;
	o.channel = "Not A Channel";
	assert_int_equal(rt_engine_open(&e, &o), AF_EINVAL);
	assert_null(e);

	/* A channel that does not exist yet: serving nothing, not an error. */
	e = open_engine(NULL, "green", 0);
	assert_false(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_NO_RELEASE);
	assert_string_equal(st.channel, "green");
	assert_int_equal(st.release, 0);
	assert_non_null(strstr(st.reason, "no channel named 'green'"));
	assert_string_equal(rt_channel_state_name(st.state), "no_release");
	expect_served(e, "");
	invoke_expect(e, "alpha", ECHO, "no_release", 503);
	assert_int_equal(rt_engine_describe(e, "alpha", NULL, &doc, &len), AF_EDENIED);
	assert_null(doc);

	/* Promoted later: taken at the next pass. */
	r = create("alpha", NULL, 0, 0);
	promote("green", r, NULL, NULL, 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	assert_true(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_OK);
	assert_int_equal(st.release, r);
	assert_int_equal(st.reason[0], '\0');
	expect_served(e, "alpha");
	invoke_expect(e, "alpha", ECHO, NULL, 200);
	assert_int_equal(rt_engine_describe(e, "alpha", NULL, &doc, &len), 0);
	assert_non_null(strstr(doc, "\"name\":\"alpha\""));
	free(doc);
	rt_engine_close(e);
}

static void test_channel__serves_exactly_the_pins_and_switches(void **state)
{
	rt_engine *e;
	rt_engine_status st;
	rt_invoke_result res;
	uint64_t r1, r2, misses;

	(void)state;
	r1 = create("alpha", NULL, 0, 0);
	r2 = create("alpha", "bravo", 0, 0);
	promote("blue", r1, NULL, NULL, 0);

	/* The store has alpha and bravo; release r1 pins alpha only. */
	e = open_engine(NULL, "blue", 0);
	assert_true(rt_engine_ready(e));
	expect_served(e, "alpha");
	invoke_expect(e, "alpha", ECHO, NULL, 200);
	invoke_expect(e, "bravo", ECHO, "not_found", 404);
	assert_int_equal(rt_engine_invoke(e, "alpha", "2.0.0", ECHO, strlen(ECHO), &res), 0);
	assert_string_equal(res.error_code, "not_found");
	rt_invoke_result_clear(&res);
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_OK);
	assert_int_equal(st.release, r1);
	assert_int_equal(st.seq, 1);
	assert_string_equal(st.action, "promote");
	assert_int_equal(st.switches, 1);
	assert_true(strncmp(st.release_digest, "sha256:", 7) == 0);
	assert_true(st.expires > g.t0);

	/* Nothing changed: a pass does nothing. */
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.switches, 1);

	/* Promote: alpha's module is kept (its manifest is the pin), bravo is loaded. */
	promote("blue", r2, NULL, NULL, 0);
	misses = rt_metrics_get(RT_M_MODULE_CACHE_MISSES);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	assert_int_equal(rt_metrics_get(RT_M_MODULE_CACHE_MISSES), misses + 1);
	status(e, &st);
	assert_int_equal(st.release, r2);
	assert_int_equal(st.seq, 2);
	assert_int_equal(st.switches, 2);
	expect_served(e, "alpha,bravo");
	invoke_expect(e, "bravo", ECHO, NULL, 200);

	/* Rollback: bravo is gone again. */
	rollback("blue", r1);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.release, r1);
	assert_int_equal(st.seq, 3);
	assert_string_equal(st.action, "rollback");
	expect_served(e, "alpha");
	invoke_expect(e, "bravo", ECHO, "not_found", 404);
	invoke_expect(e, "alpha", ECHO, NULL, 200);
	rt_engine_close(e);
}

typedef struct call {
	rt_engine *e;
	rt_invoke_result res;
	int rc;
} call;

static void *invoke_llm(void *arg)
{
	call *c = arg;

	c->rc = rt_engine_invoke(c->e, "alpha", NULL, LLM_CALL, strlen(LLM_CALL), &c->res);
	return NULL;
}

static void test_channel__a_request_in_flight_finishes_on_the_old_release(void **state)
{
	rt_engine *e;
	rt_engine_status st;
	pthread_t t;
	call c;
	uint64_t both, only_bravo;

	(void)state;
	both = create("alpha", "bravo", 0, 0);
	only_bravo = create("bravo", NULL, 0, 0);
	promote("inflight", both, NULL, NULL, 0);
	e = open_engine(NULL, "inflight", 0);
	memset(&c, 0, sizeof(c));
	c.e = e;
	assert_int_equal(pthread_create(&t, NULL, invoke_llm, &c), 0);
	sem_wait(&llm_entered); /* alpha is running, inside its model call */

	promote("inflight", only_bravo, NULL, NULL, 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.release, only_bravo);
	/* New requests see the new release... */
	invoke_expect(e, "alpha", ECHO, "not_found", 404);
	invoke_expect(e, "bravo", ECHO, NULL, 200);
	/* ...the one in flight finishes on the old one. */
	sem_post(&llm_go);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(c.rc, 0);
	if (c.res.error_code)
		fail_msg("the request in flight failed: %s: %s", c.res.error_code, c.res.body);
	assert_int_equal(c.res.http_status, 200);
	assert_non_null(strstr(c.res.body, "\"ok\":true"));
	assert_non_null(strstr(c.res.body, "\"status\":"));
	rt_invoke_result_clear(&c.res);
	rt_engine_close(e);
}

static void test_channel__expired_release_is_refused_and_the_previous_kept(void **state)
{
	rt_engine *e;
	rt_engine_status st;
	char *doc = NULL;
	size_t len = 0;
	uint64_t fresh, stale, renewed, expired_before;

	(void)state;
	fresh = create("alpha", NULL, g.t0, g.t0 + 3600);
	promote("freeze", fresh, NULL, NULL, g.t0);
	e = open_engine(NULL, "freeze", 0);
	expect_served(e, "alpha");

	/* A release that had expired by the time it reaches the runtime (signed
	 * and promoted while it was valid, two hours ago). */
	stale = create("alpha", "bravo", g.t0 - 7200, g.t0 - 3600);
	promote("freeze", stale, NULL, NULL, g.t0 - 7200);
	expired_before = rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release_expired");
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_OK);
	assert_int_equal(st.release, fresh);
	assert_int_equal(st.refused_release, stale);
	assert_int_equal(st.refused_seq, 2);
	assert_non_null(strstr(st.refused, "expired"));
	assert_int_equal(st.refusals, 1);
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release_expired"),
			 expired_before + 1);
	expect_served(e, "alpha");
	invoke_expect(e, "alpha", ECHO, NULL, 200);
	invoke_expect(e, "bravo", ECHO, "not_found", 404);
	/* Refused once, not at every pass. */
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.refusals, 1);

	/* Freeze protection: the release in force expires. */
	assert_int_equal(rt_engine_refresh(e, g.t0 + 3601), 0);
	assert_false(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_EXPIRED);
	assert_int_equal(st.release, 0);
	assert_non_null(strstr(st.reason, "freeze protection"));
	assert_string_equal(rt_channel_state_name(st.state), "expired");
	expect_served(e, "");
	invoke_expect(e, "alpha", ECHO, "release_expired", 503);
	assert_int_equal(rt_engine_describe(e, "alpha", NULL, &doc, &len), AF_EEXPIRED);
	/* Still expired at the next passes (and refused only once). */
	assert_int_equal(rt_engine_refresh(e, g.t0 + 3602), 0);
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_EXPIRED);

	/* A fresh release brings it back. */
	renewed = create("alpha", "bravo", g.t0, g.t0 + 30 * 86400);
	promote("freeze", renewed, NULL, NULL, g.t0);
	assert_int_equal(rt_engine_refresh(e, g.t0 + 3603), 0);
	assert_true(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_OK);
	assert_int_equal(st.release, renewed);
	expect_served(e, "alpha,bravo");
	rt_engine_close(e);
}

/* Put the channel's record seq back as its head (an attacker with write
 * access restoring a genuine, older record), in a child process. */
static void replay_record(const char *channel, uint64_t seq)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env = NULL;
		MDB_txn *txn = NULL;
		MDB_dbi dbi;
		MDB_val k, v;
		char hist[128], head[128];

		snprintf(hist, sizeof(hist), "hist/%s/%020llu", channel, (unsigned long long)seq);
		snprintf(head, sizeof(head), "head/%s", channel);
		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
		    mdb_env_set_mapsize(env, 4ull << 30) || mdb_env_open(env, g.store, 0, 0600) ||
		    mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "channels", 0, &dbi))
			_exit(1);
		k.mv_data = hist;
		k.mv_size = strlen(hist);
		if (mdb_get(txn, dbi, &k, &v))
			_exit(2);
		k.mv_data = head;
		k.mv_size = strlen(head);
		if (mdb_put(txn, dbi, &k, &v, 0) || mdb_txn_commit(txn))
			_exit(3);
		mdb_env_close(env);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_channel__replayed_and_under_signed_records_are_refused(void **state)
{
	rt_engine *e;
	rt_engine_status st;
	uint64_t r1, r2;
	write_op op = {.kind = W_THRESHOLD, .channel = "floor", .threshold = 2};

	(void)state;
	write_keyring(true, NULL);
	r1 = create("alpha", NULL, 0, 0);
	r2 = create("alpha", "bravo", 0, 0);
	promote("replay", r1, NULL, NULL, 0);
	promote("replay", r2, NULL, NULL, 0);
	e = open_engine(NULL, "replay", 0);
	status(e, &st);
	assert_int_equal(st.release, r2);
	assert_int_equal(st.seq, 2);
	replay_record("replay", 1);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.release, r2);
	assert_int_equal(st.refused_seq, 1);
	assert_non_null(strstr(st.refused, "replay"));
	expect_served(e, "alpha,bravo");
	rt_engine_close(e);
	/* A fresh engine (a restarted pod) refuses the replayed head at start:
	 * the channel's history holds the newer record. */
	e = open_engine(NULL, "replay", 0);
	assert_false(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_NO_RELEASE);
	assert_int_equal(st.release, 0);
	if (!strstr(st.reason, "history holds record 2"))
		fail_msg("reason '%s'", st.reason);
	rt_engine_close(e);

	/* A floor on signatures: one signer is not enough, two are. */
	promote("floor", r1, NULL, NULL, 0);
	e = open_engine(NULL, "floor", 2);
	assert_false(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_NO_RELEASE);
	assert_non_null(strstr(st.reason, "signature"));
	write_store(&op);
	promote("floor", r2, g.rm1, g.rm2, 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_OK);
	assert_int_equal(st.release, r2);
	rt_engine_close(e);
}

/* Copy src's record of ref and every blob into dst (raw LMDB). */
static void swap_artifact(const char *dst, const char *src, const char *ref)
{
	MDB_env *env[2] = {NULL, NULL};
	MDB_txn *txn[2] = {NULL, NULL};
	MDB_dbi blobs[2], arts[2];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	const char *dirs[2] = {dst, src};
	int i, mrc;

	for (i = 0; i < 2; i++) {
		assert_int_equal(mdb_env_create(&env[i]), 0);
		assert_int_equal(mdb_env_set_maxdbs(env[i], 16), 0);
		assert_int_equal(mdb_env_set_mapsize(env[i], 4ull << 30), 0);
		assert_int_equal(mdb_env_open(env[i], dirs[i], 0, 0600), 0);
		assert_int_equal(mdb_txn_begin(env[i], NULL, 0, &txn[i]), 0);
		assert_int_equal(mdb_dbi_open(txn[i], "blobs", 0, &blobs[i]), 0);
		assert_int_equal(mdb_dbi_open(txn[i], "artifacts", 0, &arts[i]), 0);
	}
	assert_int_equal(mdb_cursor_open(txn[1], blobs[1], &cur), 0);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		assert_int_equal(mdb_put(txn[0], blobs[0], &k, &v, 0), 0);
	mdb_cursor_close(cur);
	k.mv_data = (void *)ref;
	k.mv_size = strlen(ref);
	assert_int_equal(mdb_get(txn[1], arts[1], &k, &v), 0);
	assert_int_equal(mdb_put(txn[0], arts[0], &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn[0]), 0);
	mdb_txn_abort(txn[1]);
	mdb_env_close(env[0]);
	mdb_env_close(env[1]);
}

static void test_channel__a_manifest_other_than_the_pin_is_refused(void **state)
{
	write_op mk = {.kind = W_CREATE, .store = g.pinstore, .refs = {"alpha"}, .n_refs = 1};
	write_op pr = {.kind = W_PROMOTE, .store = g.pinstore, .channel = "blue"};
	rt_engine *e;
	rt_engine_status st;
	uint64_t before;

	(void)state;
	pr.number = write_store(&mk);
	write_store(&pr);
	/* alpha@1.0.0 rebuilt elsewhere from another commit (validly signed by
	 * the builder) and written over the released one behind the library's
	 * back. */
	swap_artifact(g.pinstore, g.otherstore, "alpha@1.0.0");
	before = rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release");
	e = open_engine(g.pinstore, "blue", 0);
	assert_false(rt_engine_ready(e));
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_NO_RELEASE);
	assert_non_null(strstr(st.refused, "refusing to serve another build"));
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "release"), before + 1);
	expect_served(e, "");
	invoke_expect(e, "alpha", ECHO, "no_release", 503);
	rt_engine_close(e);
}

/* Replace the keyring file atomically with text. */
static void put_keyring_text(const char *text, size_t len)
{
	char tmp[200];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp", g.keyring);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, g.keyring), 0);
}

static char *read_keyring_text(size_t *len)
{
	char *text = NULL;

	assert_int_equal(art_file_read(&text, len, g.keyring, ART_KEYRING_MAX_BYTES), 0);
	return text;
}

/* A keyring the runtime must not follow: stays on the keys in force, says why. */
static void expect_keyring_refused(rt_engine *e, uint64_t reloads, const char *why)
{
	rt_engine_status st;

	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.keyring_reloads, reloads);
	if (!strstr(st.keyring_error, why))
		fail_msg("keyring error '%s' lacks '%s'", st.keyring_error, why);
	assert_non_null(strstr(st.keyring_error, "keeping the keys in force"));
}

/*
 * The keyring is a signed document (TUF-style root): a hand edit, an older
 * version written back, a keyring signed by another root, and an unsigned
 * one are all refused by a running engine, which keeps the keys in force.
 */
static void test_channel__keyring_forged_or_replayed_refused(void **state)
{
	rt_engine *e;
	rt_engine_status st;
	art_keyring *kr = NULL;
	art_key *intruder = NULL;
	const art_key *signers[1];
	json_t *doc, *keys;
	char *old_text, *cur_text, *edited;
	size_t old_len, cur_len, i;
	uint64_t r1, r2;

	(void)state;
	r1 = create("alpha", "bravo", 0, 0);
	r2 = create("alpha", NULL, 0, 0);
	promote("keys", r1, NULL, NULL, 0);
	e = open_engine(NULL, "keys", 0);
	expect_served(e, "alpha,bravo");
	old_text = read_keyring_text(&old_len);

	/* A genuine newer version (rm2 trusted) is followed. */
	write_keyring(true, NULL);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.keyring_reloads, 1);
	cur_text = read_keyring_text(&cur_len);

	/* Hand edit: rm1 turned into a builder inside the signed content. */
	doc = json_loadb(cur_text, cur_len, 0, NULL);
	assert_non_null(doc);
	keys = json_object_get(json_object_get(doc, "signed"), "keys");
	for (i = 0; i < json_array_size(keys); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(keys, i), "role")),
			   ART_ROLE_RELEASE_MANAGER) == 0)
			json_object_set_new(json_array_get(keys, i), "role",
					    json_string(ART_ROLE_BUILDER));
	edited = json_dumps(doc, JSON_INDENT(2));
	put_keyring_text(edited, strlen(edited));
	expect_keyring_refused(e, 1, "edited after signing");
	free(edited);
	json_decref(doc);

	/* The older, genuinely signed version written back: a replay. */
	put_keyring_text(old_text, old_len);
	expect_keyring_refused(e, 1, "is not newer than version");

	/* A keyring signed by a root the one in force does not know. */
	assert_int_equal(art_key_generate(&intruder, 2048), 0);
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_add(kr, intruder, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_add(kr, intruder, ART_ROLE_ROOT, 0, 0), 0);
	signers[0] = intruder;
	assert_int_equal(art_keyring_sign(kr, 1000, (time_t)253402300799LL, signers, 1), 0);
	assert_int_equal(art_keyring_save(kr, g.keyring), 0);
	expect_keyring_refused(e, 1, "root key of version");
	art_keyring_free(kr);
	kr = NULL;

	/* An unsigned (v1) keyring. */
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_save(kr, g.keyring), 0);
	expect_keyring_refused(e, 1, "not signed");
	art_keyring_free(kr);

	/* Through all of it the keys in force kept serving; rm2's record is accepted. */
	promote("keys", r2, g.rm2, NULL, 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.release, r2);
	expect_served(e, "alpha");

	/* The next genuine version is followed again. */
	write_keyring(true, NULL);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.keyring_reloads, 2);
	assert_int_equal(st.keyring_error[0], '\0');
	rt_engine_close(e);
	art_key_free(intruder);
	free(old_text);
	free(cur_text);
}

static void test_channel__keyring_reload(void **state)
{
	rt_engine *e;
	rt_engine_status st;
	FILE *fp;
	uint64_t r1, r2, keyring_before;
	char tmp[160];

	(void)state;
	r1 = create("alpha", "bravo", 0, 0);
	r2 = create("alpha", NULL, 0, 0);
	promote("keys", r1, NULL, NULL, 0);
	e = open_engine(NULL, "keys", 0);
	expect_served(e, "alpha,bravo");

	/* A record signed by a key the runtime does not know yet: refused... */
	promote("keys", r2, g.rm2, NULL, 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.release, r1);
	assert_int_equal(st.refused_release, r2);
	assert_non_null(strstr(st.refused, "not in the keyring"));
	/* ...until the keyring file that trusts it is rendered. */
	write_keyring(true, NULL);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.keyring_reloads, 1);
	assert_int_equal(st.release, r2);
	assert_int_equal(st.refused_seq, 0);
	expect_served(e, "alpha");

	/* A file that does not parse: refused once, the keys in force stay. */
	keyring_before = rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "keyring");
	snprintf(tmp, sizeof(tmp), "%s.tmp", g.keyring);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	fputs("{\"format\": \"agentfactory-keyring/v1\", \"keys\": [", fp);
	fclose(fp);
	assert_int_equal(rename(tmp, g.keyring), 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_non_null(strstr(st.keyring_error, "keeping the keys in force"));
	assert_int_equal(st.keyring_reloads, 1);
	assert_int_equal(rt_metrics_get_label(RT_M_SIGNATURE_FAILURES, "keyring"), keyring_before + 1);
	invoke_expect(e, "alpha", ECHO, NULL, 200);

	/* The builder key revoked: its artifacts are refused after the reload. */
	write_keyring(true, g.builder);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.keyring_reloads, 2);
	assert_int_equal(st.keyring_error[0], '\0');
	assert_int_equal(st.state, RT_CHANNEL_OK);
	expect_served(e, "alpha!");
	invoke_expect(e, "alpha", ECHO, "agent_refused", 503);
	assert_false(rt_engine_ready(e));

	/* The previous file back: served again. */
	write_keyring(true, NULL);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	expect_served(e, "alpha");
	invoke_expect(e, "alpha", ECHO, NULL, 200);
	assert_true(rt_engine_ready(e));

	/* The release manager who signed the record in force revoked: withdrawn. */
	write_keyring(true, g.rm2);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_NO_RELEASE);
	assert_int_equal(st.release, 0);
	assert_non_null(strstr(st.reason, "revoked"));
	assert_false(rt_engine_ready(e));
	invoke_expect(e, "alpha", ECHO, "no_release", 503);
	/* Said once: the same record is not refused again at every pass. */
	{
		uint64_t refusals = st.refusals;

		assert_int_equal(rt_engine_refresh(e, 0), 0);
		status(e, &st);
		assert_int_equal(st.refusals, refusals);
	}
	rt_engine_close(e);
}

static void test_channel__latest_mode_reloads_the_keyring_too(void **state)
{
	rt_engine *e;
	rt_engine_status st;

	(void)state;
	e = open_engine(NULL, NULL, 0);
	status(e, &st);
	assert_int_equal(st.state, RT_CHANNEL_OFF);
	assert_string_equal(rt_channel_state_name(st.state), "off");
	expect_served(e, "alpha,bravo");
	invoke_expect(e, "bravo", ECHO, NULL, 200);
	write_keyring(false, g.builder);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	expect_served(e, "alpha!,bravo!");
	invoke_expect(e, "bravo", ECHO, "agent_refused", 503);
	write_keyring(false, NULL);
	assert_int_equal(rt_engine_refresh(e, 0), 0);
	expect_served(e, "alpha,bravo");
	invoke_expect(e, "bravo", ECHO, NULL, 200);
	rt_engine_close(e);
}

/* ---- the release-side helpers (channel.h), called directly -------------------------------- */

static void expect_reason(const char *got, const char *want)
{
	if (!got || strcmp(got, want) != 0)
		fail_msg("reason '%s', want '%s' (%s)", got ? got : "(null)", want, art_error_last());
}

static void test_channel__helpers_peek_and_pins(void **state)
{
	art_store *s = NULL;
	art_keyring *kr = admin_keyring();
	art_release *r = NULL;
	art_store_record *rec = NULL;
	art_release_pin fake_pin;
	art_release fake;
	rt_channel_head h1, h2;
	rt_host_env env = {.log = g.log};
	rt_module *m = (rt_module *)1;
	const char *reason = "unset";
	uint64_t number;
	char alpha_digest[ART_DIGEST_STR_LEN + 1];

	(void)state;
	number = create("alpha", NULL, 0, 0);
	promote("helpers", number, NULL, NULL, 0);
	assert_int_equal(art_store_open(&s, g.store, 0), 0);

	/* peek: the head as stored; a channel that does not exist. */
	assert_int_equal(rt_channel__peek(&h1, s, "helpers"), 0);
	assert_true(h1.exists);
	assert_int_equal(h1.release, number);
	assert_int_equal(h1.seq, 1);
	assert_true(strncmp(h1.release_digest, "sha256:", 7) == 0);
	assert_int_equal(rt_channel__peek(&h2, s, "no-such-channel"), 0);
	assert_false(h2.exists);
	assert_false(rt_channel__head_equal(&h1, &h2));
	h2 = h1;
	assert_true(rt_channel__head_equal(&h1, &h2));
	h2.seq++;
	assert_false(rt_channel__head_equal(&h1, &h2));
	h2 = h1;
	h2.release_digest[10] ^= 1;
	assert_false(rt_channel__head_equal(&h1, &h2));

	/* The real release: verified, loaded. */
	assert_int_equal(art_release_get(&r, s, kr, number, g.t0), 0);
	assert_int_equal(rt_channel__verify_pinned(&reason, s, kr, r, "alpha", g.t0), 0);
	assert_null(reason);
	assert_int_equal(rt_channel__load_pinned(&m, &reason, s, kr, r, "alpha", g.t0, &env), 0);
	assert_null(reason);
	assert_string_equal(m->manifest_digest, r->pins[0].manifest_digest);
	rt_module_unref(m);
	/* A name the release does not pin; no release at all. */
	assert_int_equal(rt_channel__verify_pinned(&reason, s, kr, r, "bravo", g.t0), AF_ENOTFOUND);
	expect_reason(reason, "store");
	assert_non_null(strstr(art_error_last(), "has no agent named 'bravo'"));
	assert_int_equal(rt_channel__verify_pinned(NULL, s, kr, NULL, NULL, g.t0), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "release 0 has no agent named ''"));
	m = (rt_module *)1;
	assert_int_equal(rt_channel__load_pinned(&m, &reason, s, kr, r, "bravo", g.t0, &env),
			 AF_ENOTFOUND);
	assert_null(m);
	expect_reason(reason, "store");
	/* Verified with a keyring that does not trust the builder: a signature refusal. */
	{
		art_keyring *rm_only = NULL;

		assert_int_equal(art_keyring_new(&rm_only), 0);
		assert_int_equal(art_keyring_add(rm_only, g.rm1, ART_ROLE_RELEASE_MANAGER,
						 g.t0 - 86400, 0), 0);
		assert_true(rt_channel__verify_pinned(&reason, s, rm_only, r, "alpha", g.t0) < 0);
		expect_reason(reason, "signature");
		art_keyring_free(rm_only);
	}

	/* Hand-made pins: an artifact not in the store, another manifest than stored. */
	memset(&fake, 0, sizeof(fake));
	memset(&fake_pin, 0, sizeof(fake_pin));
	fake.number = 99;
	fake.pins = &fake_pin;
	fake.n_pins = 1;
	fake_pin.name = "zulu";
	fake_pin.version = "1.0.0";
	snprintf(fake_pin.manifest_digest, sizeof(fake_pin.manifest_digest), "%s",
		 r->pins[0].manifest_digest);
	assert_int_equal(rt_channel__verify_pinned(&reason, s, kr, &fake, "zulu", g.t0), AF_ENOTFOUND);
	expect_reason(reason, "store");
	assert_non_null(strstr(art_error_last(), "release 99 pins zulu@1.0.0, which is not in the store"));
	fake_pin.name = "alpha";
	fake_pin.manifest_digest[20] = fake_pin.manifest_digest[20] == 'a' ? 'b' : 'a';
	assert_int_equal(rt_channel__verify_pinned(&reason, s, kr, &fake, "alpha", g.t0),
			 AF_ESIGNATURE);
	expect_reason(reason, "pin");
	assert_non_null(strstr(art_error_last(), "refusing to serve another build"));
	m = (rt_module *)1;
	assert_int_equal(rt_channel__load_pinned(&m, &reason, s, kr, &fake, "alpha", g.t0, &env),
			 AF_ESIGNATURE);
	assert_null(m);
	expect_reason(reason, "pin");

	/* verify_stored ("latest" mode): the digest in force, another one, no such artifact. */
	assert_int_equal(art_store_get_artifact(&rec, s, "alpha", "1.0.0"), 0);
	snprintf(alpha_digest, sizeof(alpha_digest), "%s", rec->manifest_digest);
	art_store_record_free(rec);
	reason = "unset";
	assert_int_equal(rt_channel__verify_stored(&reason, s, kr, "alpha", "1.0.0", alpha_digest,
						   g.t0), 0);
	assert_int_equal(rt_channel__verify_stored(&reason, s, kr, "alpha", "1.0.0",
						   fake_pin.manifest_digest, g.t0), AF_ESIGNATURE);
	expect_reason(reason, "store");
	assert_non_null(strstr(art_error_last(), "was rebuilt in the store"));
	assert_int_equal(rt_channel__verify_stored(NULL, s, kr, "alpha", "1.0.0",
						   fake_pin.manifest_digest, g.t0), AF_ESIGNATURE);
	assert_true(rt_channel__verify_stored(&reason, s, kr, "zulu", "1.0.0", alpha_digest, g.t0) < 0);
	assert_non_null(reason);

	art_release_free(r);
	art_store_close(s);
	art_keyring_free(kr);
}

static void test_channel__helpers_recheck_signers(void **state)
{
	art_keyring *kr = NULL;
	art_channel c;
	char signers[3][ART_SHA256_HEX_LEN + 1];
	const char *unknown = "0000000000000000000000000000000000000000000000000000000000000000";

	(void)state;
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, g.builder, ART_ROLE_BUILDER, g.t0 - 86400, 0), 0);
	assert_int_equal(art_keyring_add(kr, g.rm1, ART_ROLE_RELEASE_MANAGER, g.t0 - 86400, 0), 0);
	/* rm2: a release manager whose validity ended yesterday. */
	assert_int_equal(art_keyring_add(kr, g.rm2, ART_ROLE_RELEASE_MANAGER, g.t0 - 3 * 86400,
					 g.t0 - 86400), 0);
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "green");
	c.seq = 7;
	c.signers = signers;

	/* No signer: refused, whatever the threshold (0 counts as 1). */
	c.n_signers = 0;
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 0, g.t0), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "channel green record 7: 0 trusted signer(s), 1 needed"));

	/* rm1 alone: enough for 1 (and for 0), not for 2. */
	snprintf(signers[0], sizeof(signers[0]), "%s", art_key_id(g.rm1));
	c.n_signers = 1;
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 0, g.t0), 0);
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 1, g.t0), 0);
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 2, g.t0), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "1 trusted signer(s), 2 needed"));

	/* The worst reason is given: an expired key, then an unknown one wins over it. */
	snprintf(signers[1], sizeof(signers[1]), "%s", art_key_id(g.rm2));
	c.n_signers = 2;
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 2, g.t0), AF_EEXPIRED);
	assert_non_null(strstr(art_error_last(), "1 trusted signer(s), 2 needed: "));
	snprintf(signers[2], sizeof(signers[2]), "%s", unknown);
	c.n_signers = 3;
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 2, g.t0), AF_ENOTFOUND);
	/* ...and a revoked one over all of them. */
	assert_int_equal(art_keyring_revoke(kr, art_key_id(g.rm1), g.t0 - 10, "lost"), 0);
	assert_int_equal(rt_channel__recheck_signers(kr, &c, 1, g.t0), AF_EREVOKED);
	assert_non_null(strstr(art_error_last(), "0 trusted signer(s), 1 needed"));
	/* The builder is no release manager. */
	snprintf(signers[0], sizeof(signers[0]), "%s", art_key_id(g.builder));
	c.n_signers = 1;
	assert_true(rt_channel__recheck_signers(kr, &c, 1, g.t0) < 0);
	art_keyring_free(kr);
}

#define STRESS_THREADS 4
#define STRESS_SWITCHES 20

typedef struct stress {
	rt_engine *e;
	atomic_bool *stop;
	unsigned long ok, failed;
	char first_error[256];
} stress;

static void *hammer(void *arg)
{
	stress *s = arg;

	while (!atomic_load(s->stop)) {
		rt_invoke_result res;

		if (rt_engine_invoke(s->e, "alpha", NULL, ECHO, strlen(ECHO), &res) == 0 &&
		    !res.error_code && res.http_status == 200) {
			s->ok++;
		} else {
			if (!s->failed)
				snprintf(s->first_error, sizeof(s->first_error), "%s",
					 res.body ? res.body : "(no body)");
			s->failed++;
		}
		rt_invoke_result_clear(&res);
	}
	return NULL;
}

static void test_channel__switches_under_concurrent_invocations(void **state)
{
	atomic_bool stop = false;
	stress s[STRESS_THREADS];
	pthread_t t[STRESS_THREADS];
	rt_engine *e;
	rt_engine_status st;
	uint64_t r1, r2;
	unsigned long total = 0;
	int i;

	(void)state;
	r1 = create("alpha", NULL, 0, 0);
	r2 = create("alpha", "bravo", 0, 0);
	promote("stress", r1, NULL, NULL, 0);
	e = open_engine(NULL, "stress", 0);
	for (i = 0; i < STRESS_THREADS; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].e = e;
		s[i].stop = &stop;
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &s[i]), 0);
	}
	for (i = 0; i < STRESS_SWITCHES; i++) {
		promote("stress", r2, NULL, NULL, 0);
		assert_int_equal(rt_engine_refresh(e, 0), 0);
		status(e, &st);
		assert_int_equal(st.release, r2);
		rollback("stress", r1);
		assert_int_equal(rt_engine_refresh(e, 0), 0);
		status(e, &st);
		assert_int_equal(st.release, r1);
	}
	atomic_store(&stop, true);
	for (i = 0; i < STRESS_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (s[i].failed)
			fail_msg("%lu invocations failed during the switches, first: %s", s[i].failed,
				 s[i].first_error);
		total += s[i].ok;
	}
	assert_true(total > 0);
	status(e, &st);
	assert_int_equal(st.switches, 1 + 2 * STRESS_SWITCHES);
	rt_engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_channel__open_with_a_bad_or_missing_channel, reset_keyring),
		cmocka_unit_test_setup(test_channel__serves_exactly_the_pins_and_switches, reset_keyring),
		cmocka_unit_test_setup(test_channel__a_request_in_flight_finishes_on_the_old_release,
				       reset_keyring),
		cmocka_unit_test_setup(test_channel__expired_release_is_refused_and_the_previous_kept,
				       reset_keyring),
		cmocka_unit_test_setup(test_channel__replayed_and_under_signed_records_are_refused,
				       reset_keyring),
		cmocka_unit_test_setup(test_channel__a_manifest_other_than_the_pin_is_refused,
				       reset_keyring),
		cmocka_unit_test_setup(test_channel__keyring_reload, reset_keyring),
		cmocka_unit_test_setup(test_channel__keyring_forged_or_replayed_refused, reset_keyring),
		cmocka_unit_test_setup(test_channel__latest_mode_reloads_the_keyring_too, reset_keyring),
		cmocka_unit_test_setup(test_channel__switches_under_concurrent_invocations, reset_keyring),
		cmocka_unit_test_setup(test_channel__helpers_peek_and_pins, reset_keyring),
		cmocka_unit_test_setup(test_channel__helpers_recheck_signers, reset_keyring),
	};

	sem_init(&llm_entered, 0, 0);
	sem_init(&llm_go, 0, 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
