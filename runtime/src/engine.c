/*
 * engine.c - the data plane's core (rt/engine.h): the agents of a read-only
 * store, each verified before its code is loaded, the loaded modules in an
 * LRU, one fresh sandboxed instance per invocation, and live switches of
 * what is served (a channel's new release, a reloaded keyring).
 *
 * Snapshots. What is served is a `view`: an agent table (the store's list
 * at open, or the pins of a channel's release), the keyring it verifies
 * with and, following a channel, the accepted release and channel record.
 * `current` points at the view in force (NULL: nothing to serve). Every
 * call takes a reference to the current view under `mu` and drops it when
 * done, so a request always finishes on the view it started on. A switch
 * builds and loads a new view off to the side (nobody else sees it), then
 * swaps `current` under `mu`; the old view goes when its last reference
 * does, and with it its modules (each module is itself reference-counted:
 * a running invocation holds its module, so even an eviction never unloads
 * code that runs). A view's agent table is fixed once built; the agents'
 * load state (module, refusal) is guarded by `mu`.
 *
 * Concurrency: `mu` guards `current`, the status, every agent's state and
 * the LRU, and is held only for pointer work; `load_mu` serialises lazy
 * loads (verification, dlopen, describe: milliseconds), so two threads never
 * load the same module twice and invocations of loaded modules never wait
 * behind a load; `refresh_mu` serialises refreshes (the watcher thread,
 * rt_engine_refresh), which own the keyring in force, the channel state and
 * the replay guard. Lock order: refresh_mu, then load_mu, then mu; a view
 * reference is never dropped while holding mu (the last drop takes mu).
 *
 * Following a channel (docs/runtime.md, "Channels and live switch"): the
 * watcher peeks at the channel's head record (unverified, cheap) and only
 * when it changed resolves it (art_release_channel_resolve_ex, with the
 * highest record seq and the threshold already accepted as floors), loads
 * every pinned artifact (reusing a loaded module whose manifest is the
 * pinned one, after re-verifying its signed manifest), and switches only
 * if all of them verified. Anything less keeps the release in force. A
 * release whose `expires` has passed is withdrawn (freeze protection); a
 * keyring reload re-verifies the release in force: a revoked or untrusted
 * release-manager key withdraws it, a revoked builder key refuses that
 * builder's artifacts.
 */
#include "rt/engine.h"

#include "channel.h"
#include "keyring_watch.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/release.h"
#include "art/store.h"
#include "rt/exec.h"
#include "rt/kv.h"
#include "rt/loader.h"
#include "rt/log.h"
#include "rt/metrics.h"
#include "rt/trace.h"
#include "rt/sandbox.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CACHE 64u
#define DEFAULT_MAX_TIMEOUT_MS 30000u
#define DEFAULT_MAX_PAGES 1024u
#define DEFAULT_MAX_REQUEST ((size_t)1 << 20)
/* A refused channel head is resolved again this often (at once when the
 * head or the keyring changes): a key may become valid at its not_before. */
#define RETRY_MS 5000
/* Metric labels of agentfactory_signature_failures_total. */
#define LABEL_RELEASE "release"
#define LABEL_EXPIRED "release_expired"
#define LABEL_KEYRING "keyring"
/* Stable error codes of a channel-following engine with nothing to serve. */
#define CODE_RELEASE_EXPIRED "release_expired"
#define CODE_NO_RELEASE "no_release"

enum { AGENT_UNVERIFIED, AGENT_OK, AGENT_REFUSED };

typedef struct agent {
	char *name, *version, *ref;
	char manifest_digest[ART_DIGEST_STR_LEN + 1];
	bool latest;               /* the version served for its name */
	int state;
	const char *reason;        /* refusal reason label */
	char *refused_msg;
	int refused_rc;
	char *describe;            /* kept after eviction, for describe */
	size_t describe_len;
	rt_module *module;         /* the agent's reference, or NULL */
	bool in_lru;               /* linked in the engine's LRU (installed views only) */
	struct agent *prev, *next; /* LRU, most recent first */
} agent;

/* A release and the channel record that pointed at it, once verified;
 * shared by the views built on it. */
typedef struct accepted {
	atomic_uint refs;
	art_release *release;
	art_channel *record;
	unsigned need;             /* signatures the record needed when accepted */
} accepted;

typedef struct view {
	atomic_uint refs;
	rt_keyring_ref *kr;
	accepted *acc;             /* following a channel; NULL for the store's list */
	agent *agents;             /* sorted by name, then version */
	size_t n_agents;
	bool ready;                /* an agent verified (under mu once installed) */
} view;

struct rt_engine {
	art_store *store;
	rt_kv *kv;
	rt_llm_provider *own_llm;
	rt_host_env env;
	size_t capacity, max_request;
	pthread_mutex_t mu, load_mu, refresh_mu;
	view *current;             /* under mu */
	agent *lru_head, *lru_tail;
	size_t n_loaded;
	rt_engine_status status;   /* under mu */
	/* the store's list at open (not following a channel) */
	art_store_entry *entries;
	size_t n_entries;
	/* under refresh_mu */
	char *channel;
	rt_keyring_watch *kwatch;
	rt_keyring_ref *kr;        /* the keyring in force */
	unsigned min_threshold, floor_threshold;
	uint64_t min_seq;          /* the highest record seq accepted: older ones are replays */
	rt_channel_head tried;     /* the last head refused */
	bool tried_valid;
	int tried_rc;
	int64_t tried_ms;
	char tried_msg[RT_ENGINE_TEXT_MAX];
	/* the watcher */
	rt_watch *watch;
	uint32_t watch_ms;
	pthread_t thread;
	bool thread_started;
};

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void copy_text(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* ---- the store file --------------------------------------------------------------- */

/*
 * Is data.mdb still whole? (A restore or copy may replace or truncate it
 * under a running server; LMDB would then die with SIGBUS on the first page
 * it touches past the end.) Checked before every read of the store; a damaged
 * file is recorded in the status (readiness false, /readyz says why) and
 * counted once per damage.
 * @return 0 or AF_EDAMAGED (message set)
 */
static int store_check(rt_engine *e)
{
	int rc = art_store_check_file(e->store);
	char msg[RT_ENGINE_TEXT_MAX];
	bool was;

	if (rc == AF_EIO || rc == AF_EDENIED)
		rc = 0; /* unreadable for a moment is not damage: LMDB reports it */
	copy_text(msg, sizeof(msg), rc < 0 ? art_error_last() : "");
	pthread_mutex_lock(&e->mu);
	was = e->status.store_error[0] != '\0';
	copy_text(e->status.store_error, sizeof(e->status.store_error), msg);
	pthread_mutex_unlock(&e->mu);
	if (rc < 0 && !was) {
		rt_metrics_inc(RT_M_STORE_CORRUPT);
		rt_log_emit(e->env.log, "error", "store_corrupt", NULL, msg, strlen(msg), NULL, 0);
	} else if (rc == 0 && was) {
		rt_log_printf(e->env.log, "info", "store_whole", NULL, "the store file is whole again");
	}
	if (rc < 0)
		art_error_set(rc, "%s", msg);
	return rc;
}

/* ---- the LRU (under mu) ----------------------------------------------------------- */

static void lru_unlink(rt_engine *e, agent *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else if (e->lru_head == a)
		e->lru_head = a->next;
	if (a->next)
		a->next->prev = a->prev;
	else if (e->lru_tail == a)
		e->lru_tail = a->prev;
	a->prev = a->next = NULL;
}

static void lru_push_front(rt_engine *e, agent *a)
{
	a->prev = NULL;
	a->next = e->lru_head;
	if (e->lru_head)
		e->lru_head->prev = a;
	e->lru_head = a;
	if (!e->lru_tail)
		e->lru_tail = a;
}

/* Link a loaded agent (under mu). */
static void lru_add(rt_engine *e, agent *a)
{
	lru_push_front(e, a);
	a->in_lru = true;
	e->n_loaded++;
}

/* Unlink the least recently used agent other than keep and hand back its
 * module (to unref outside the lock), or NULL when nothing is over capacity. */
static rt_module *lru_evict_one(rt_engine *e, const agent *keep)
{
	agent *old = e->lru_tail;
	rt_module *m;

	if (e->n_loaded <= e->capacity || !old || old == keep)
		return NULL;
	lru_unlink(e, old);
	old->in_lru = false;
	m = old->module;
	old->module = NULL;
	e->n_loaded--;
	return m;
}

/* ---- agents and views --------------------------------------------------------------- */

static void agent_clear(agent *a)
{
	free(a->name);
	free(a->version);
	free(a->ref);
	free(a->refused_msg);
	free(a->describe);
	rt_module_unref(a->module);
}

static int agent_init(agent *a, const char *name, const char *version, const char *digest,
		      bool latest)
{
	if (!(a->name = strdup(name)) || !(a->version = strdup(version)) ||
	    asprintf(&a->ref, "%s@%s", name, version) < 0) {
		a->ref = NULL;
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	copy_text(a->manifest_digest, sizeof(a->manifest_digest), digest);
	a->latest = latest;
	return 0;
}

static void accepted_put(accepted *acc)
{
	if (acc && atomic_fetch_sub(&acc->refs, 1) == 1) {
		art_release_free(acc->release);
		art_channel_free(acc->record);
		free(acc);
	}
}

static void view_destroy(rt_engine *e, view *v)
{
	size_t i;

	/* Unreachable now except through the LRU: unlink first, under mu. */
	pthread_mutex_lock(&e->mu);
	for (i = 0; i < v->n_agents; i++) {
		if (v->agents[i].in_lru) {
			lru_unlink(e, &v->agents[i]);
			v->agents[i].in_lru = false;
			e->n_loaded--;
		}
	}
	pthread_mutex_unlock(&e->mu);
	/* Outside the lock: the last reference to a module dlcloses it. */
	for (i = 0; i < v->n_agents; i++)
		agent_clear(&v->agents[i]);
	free(v->agents);
	accepted_put(v->acc);
	rt_keyring_ref__put(v->kr);
	free(v);
}

static void view_put(rt_engine *e, view *v)
{
	if (v && atomic_fetch_sub(&v->refs, 1) == 1)
		view_destroy(e, v);
}

/* A reference to the view in force, or NULL. */
static view *view_get(rt_engine *e)
{
	view *v;

	pthread_mutex_lock(&e->mu);
	v = e->current;
	if (v)
		atomic_fetch_add(&v->refs, 1);
	pthread_mutex_unlock(&e->mu);
	return v;
}

/*
 * A new, empty-state view: the pins of acc's release, or (acc NULL) the
 * store's list at open. Takes a reference to kr and to acc.
 */
static int view_create(view **out, rt_engine *e, rt_keyring_ref *kr, accepted *acc)
{
	view *v;
	size_t n = acc ? acc->release->n_pins : e->n_entries, i;
	int rc = 0;

	*out = NULL;
	if (!(v = calloc(1, sizeof(*v))) || !(v->agents = calloc(n ? n : 1, sizeof(agent)))) {
		free(v);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	atomic_init(&v->refs, 1);
	v->kr = rt_keyring_ref__get(kr);
	if (acc) {
		atomic_fetch_add(&acc->refs, 1);
		v->acc = acc;
	}
	for (i = 0; i < n && rc == 0; i++) {
		v->n_agents = i + 1;
		if (acc) {
			const art_release_pin *p = &acc->release->pins[i];

			rc = agent_init(&v->agents[i], p->name, p->version, p->manifest_digest, true);
		} else {
			const art_store_entry *en = &e->entries[i];

			rc = agent_init(&v->agents[i], en->name, en->version, en->manifest_digest,
					en->latest);
		}
	}
	if (rc < 0) {
		view_put(e, v);
		return rc;
	}
	*out = v;
	return 0;
}

static agent *find_agent(view *v, const char *name, const char *version)
{
	size_t lo = 0, hi = v->n_agents, i;

	/* Sorted by name (then version): find the first entry of name. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v->agents[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < v->n_agents && strcmp(v->agents[i].name, name) == 0; i++)
		if (version ? strcmp(v->agents[i].version, version) == 0 : v->agents[i].latest)
			return &v->agents[i];
	return NULL;
}

/* Mark a refused (under mu for an installed view), log it, count it. */
static void refuse(rt_engine *e, agent *a, const char *reason, int rc, const char *msg)
{
	rt_log_field f[2] = {{"reason", reason, strlen(reason)},
			     {"digest", a->manifest_digest, strlen(a->manifest_digest)}};

	a->state = AGENT_REFUSED;
	a->reason = reason;
	a->refused_rc = rc;
	free(a->refused_msg);
	a->refused_msg = strdup(msg);
	rt_metrics_inc_label(RT_M_SIGNATURE_FAILURES, reason);
	rt_log_emit(e->env.log, "error", "refused", a->ref, msg, strlen(msg), f, 2);
}

/* Record a loaded module in a (under mu for an installed view). */
static void agent_loaded(agent *a, rt_module *m)
{
	char *d = malloc(m->describe_len + 1);

	if (d) {
		memcpy(d, m->describe, m->describe_len + 1);
		free(a->describe);
		a->describe = d;
		a->describe_len = m->describe_len;
	}
	copy_text(a->manifest_digest, sizeof(a->manifest_digest), m->manifest_digest);
	a->state = AGENT_OK;
	a->module = m;
}

static void log_loaded(rt_engine *e, const agent *a)
{
	rt_log_field f = {"digest", a->manifest_digest, strlen(a->manifest_digest)};

	rt_log_emit(e->env.log, "info", "loaded", a->ref, "verified and loaded",
		    strlen("verified and loaded"), &f, 1);
}

/* Verify and load a's module: the release's pin, or name@version. */
static int load_module(rt_engine *e, const view *v, const agent *a, time_t now, rt_module **m,
		       const char **reason)
{
	if (v->acc)
		return rt_channel__load_pinned(m, reason, e->store, v->kr->kr, v->acc->release,
					       a->name, now, &e->env);
	return rt_module_from_store(m, reason, e->store, v->kr->kr, a->name, a->version, now,
				    &e->env);
}

/*
 * A reference to a's loaded module (a belongs to v, which the caller holds),
 * loading (verifying) it if needed.
 * @return 0; AF_EDENIED when a is refused (the message says why); other
 *         errors when the store cannot be read
 */
static int acquire(rt_engine *e, view *v, agent *a, rt_module **out)
{
	rt_module *m = NULL, *evicted[8];
	const char *reason = NULL;
	size_t n_evicted = 0, i;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&e->mu);
	if (a->module) {
		*out = rt_module_ref(a->module);
		if (a->in_lru) {
			lru_unlink(e, a);
			lru_push_front(e, a);
		}
		pthread_mutex_unlock(&e->mu);
		rt_metrics_inc(RT_M_MODULE_CACHE_HITS);
		return 0;
	}
	if (a->state == AGENT_REFUSED) { /* without waiting behind a load */
		rc = art_error_set(AF_EDENIED, "%s is refused (%s): %s", a->ref, a->reason,
				   a->refused_msg ? a->refused_msg : "");
		pthread_mutex_unlock(&e->mu);
		return rc;
	}
	pthread_mutex_unlock(&e->mu);

	pthread_mutex_lock(&e->load_mu);
	pthread_mutex_lock(&e->mu);
	if (a->module) { /* another thread loaded it meanwhile */
		*out = rt_module_ref(a->module);
		pthread_mutex_unlock(&e->mu);
		pthread_mutex_unlock(&e->load_mu);
		rt_metrics_inc(RT_M_MODULE_CACHE_HITS);
		return 0;
	}
	if (a->state == AGENT_REFUSED) {
		rc = art_error_set(AF_EDENIED, "%s is refused (%s): %s", a->ref, a->reason,
				   a->refused_msg ? a->refused_msg : "");
		pthread_mutex_unlock(&e->mu);
		pthread_mutex_unlock(&e->load_mu);
		return rc;
	}
	pthread_mutex_unlock(&e->mu);

	if ((rc = store_check(e)) < 0) {
		pthread_mutex_unlock(&e->load_mu);
		return rc;
	}
	rt_metrics_inc(RT_M_MODULE_CACHE_MISSES);
	rc = load_module(e, v, a, art_time_now(), &m, &reason);
	pthread_mutex_lock(&e->mu);
	if (rc < 0 && reason && strcmp(reason, "store") != 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		refuse(e, a, reason, rc, msg);
		rc = art_error_set(AF_EDENIED, "%s is refused (%s): %s", a->ref, reason, msg);
	} else if (rc == 0) {
		agent_loaded(a, m);
		lru_add(e, a);
		v->ready = true;
		*out = rt_module_ref(m);
		while (n_evicted < sizeof(evicted) / sizeof(evicted[0]) &&
		       (evicted[n_evicted] = lru_evict_one(e, a)) != NULL)
			n_evicted++;
	}
	pthread_mutex_unlock(&e->mu);
	pthread_mutex_unlock(&e->load_mu);
	/* Outside the locks: the last reference dlcloses. */
	for (i = 0; i < n_evicted; i++)
		rt_module_unref(evicted[i]);
	if (rc == 0)
		log_loaded(e, a);
	return rc;
}

/*
 * Verify and load, into v (not installed yet: nobody else sees it), every
 * agent v serves, reusing a module of old (the view in force, held by the
 * caller) whose manifest is the one wanted, once its signed manifest
 * verifies again with v's keyring and now.
 * @param[in] strict  stop at the first agent that does not load (a release
 *                    is taken whole or not at all); else refuse that agent
 *                    (logged, counted) and go on
 * @param[out] n_refused  agents refused (not strict)
 * @return 0; strict: the first failure (the message names the agent)
 */
static int view_load(rt_engine *e, view *v, view *old, time_t now, bool strict, size_t *n_refused)
{
	size_t i;
	int rc = 0;

	if (n_refused)
		*n_refused = 0;
	for (i = 0; i < v->n_agents; i++) {
		agent *a = &v->agents[i], *prev = NULL;
		rt_module *m = NULL;
		const char *reason = NULL;
		bool reused = false;

		if (!a->latest)
			continue;
		if (old && (prev = find_agent(old, a->name, a->version)) != NULL) {
			pthread_mutex_lock(&e->mu);
			if (prev->module && (!v->acc || strcmp(prev->module->manifest_digest,
							       a->manifest_digest) == 0))
				m = rt_module_ref(prev->module);
			pthread_mutex_unlock(&e->mu);
		}
		if (m) {
			rc = v->acc ? rt_channel__verify_pinned(&reason, e->store, v->kr->kr,
								v->acc->release, a->name, now)
				    : rt_channel__verify_stored(&reason, e->store, v->kr->kr, a->name,
								a->version, m->manifest_digest, now);
			if (rc == 0) {
				reused = true;
			} else {
				rt_module_unref(m);
				m = NULL;
				if (!v->acc && reason && strcmp(reason, "store") == 0)
					rc = 0; /* rebuilt in the store: load it afresh below */
			}
		}
		if (!m && rc == 0) {
			rt_metrics_inc(RT_M_MODULE_CACHE_MISSES);
			rc = load_module(e, v, a, now, &m, &reason);
		}
		if (rc == 0) {
			agent_loaded(a, m);
			v->ready = true;
			if (!reused)
				log_loaded(e, a);
			continue;
		}
		if (strict) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", art_error_last());
			return art_error_set(rc, "%s: %s", a->ref, msg);
		}
		if (reason && strcmp(reason, "store") != 0) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", art_error_last());
			refuse(e, a, reason, rc, msg);
			if (n_refused)
				(*n_refused)++;
		} else {
			rt_log_printf(e->env.log, "error", "load", a->ref, "%s", art_error_last());
		}
		rc = 0;
	}
	return 0;
}

/* Make v the view in force (v's loaded agents join the LRU); drop the old. */
static void view_install(rt_engine *e, view *v)
{
	rt_module **evicted = NULL, *m;
	size_t n_evicted = 0, i;
	view *old;

	pthread_mutex_lock(&e->mu);
	old = e->current;
	e->current = v;
	for (i = 0; i < v->n_agents; i++)
		if (v->agents[i].module)
			lru_add(e, &v->agents[i]);
	if (e->n_loaded > e->capacity)
		evicted = calloc(e->n_loaded - e->capacity, sizeof(*evicted));
	while (evicted && (m = lru_evict_one(e, NULL)) != NULL)
		evicted[n_evicted++] = m;
	pthread_mutex_unlock(&e->mu);
	for (i = 0; i < n_evicted; i++)
		rt_module_unref(evicted[i]);
	free(evicted);
	view_put(e, old);
}

/* ---- following a channel (under refresh_mu) ----------------------------------------- */

static void log_fields(rt_engine *e, const char *level, const char *event, const char *msg,
		       uint64_t release, uint64_t seq, const char *extra_key, const char *extra)
{
	char rel[24], sq[24];
	rt_log_field f[4];
	size_t n = 0;

	f[n++] = (rt_log_field){"channel", e->channel ? e->channel : "",
				e->channel ? strlen(e->channel) : 0};
	if (release) {
		snprintf(rel, sizeof(rel), "%llu", (unsigned long long)release);
		f[n++] = (rt_log_field){"release", rel, strlen(rel)};
	}
	if (seq) {
		snprintf(sq, sizeof(sq), "%llu", (unsigned long long)seq);
		f[n++] = (rt_log_field){"seq", sq, strlen(sq)};
	}
	if (extra_key && extra)
		f[n++] = (rt_log_field){extra_key, extra, strlen(extra)};
	rt_log_emit(e->env.log, level, event, NULL, msg, strlen(msg), f, n);
}

/* Stop serving (the release expired, or lost the keyring's trust). */
static void withdraw(rt_engine *e, rt_channel_state state, const char *why)
{
	view *old;

	pthread_mutex_lock(&e->mu);
	old = e->current;
	e->current = NULL;
	e->status.state = state;
	e->status.release = 0;
	e->status.seq = 0;
	e->status.expires = 0;
	e->status.action[0] = '\0';
	e->status.release_digest[0] = '\0';
	copy_text(e->status.reason, sizeof(e->status.reason), why);
	pthread_mutex_unlock(&e->mu);
	view_put(e, old);
}

/* Remember a head that failed with rc (retried after RETRY_MS, or at once
 * when the head or the keyring changes); true when it failed that way last
 * time already. */
static bool remember_tried(rt_engine *e, const rt_channel_head *head, int rc, const char *msg)
{
	bool same = e->tried_valid && rt_channel__head_equal(head, &e->tried) && e->tried_rc == rc;

	e->tried = *head;
	e->tried_valid = true;
	e->tried_rc = rc;
	e->tried_ms = mono_ms();
	copy_text(e->tried_msg, sizeof(e->tried_msg), msg);
	return same;
}

/* The head record that acc was accepted from. */
static void head_of(rt_channel_head *h, const accepted *acc)
{
	memset(h, 0, sizeof(*h));
	h->exists = true;
	h->seq = acc->record->seq;
	h->release = acc->release->number;
	copy_text(h->release_digest, sizeof(h->release_digest), acc->record->release_digest);
}

/* A refused head: logged and counted once per distinct (record, error);
 * serving says whether a release stays in force. count: a verification
 * refusal (else the store could not be read). */
static void head_refused(rt_engine *e, const rt_channel_head *head, int rc, const char *msg,
			 bool serving, bool count)
{
	if (remember_tried(e, head, rc, msg))
		return;
	if (count)
		rt_metrics_inc_label(RT_M_SIGNATURE_FAILURES, rc == AF_EEXPIRED ? LABEL_EXPIRED
										 : LABEL_RELEASE);
	pthread_mutex_lock(&e->mu);
	if (count) {
		e->status.refusals++;
		e->status.refused_seq = head->seq;
		e->status.refused_release = head->release;
		copy_text(e->status.refused, sizeof(e->status.refused), msg);
	}
	if (!e->current) {
		if (e->status.state != RT_CHANNEL_EXPIRED)
			e->status.state = RT_CHANNEL_NO_RELEASE;
		if (e->status.state == RT_CHANNEL_NO_RELEASE)
			copy_text(e->status.reason, sizeof(e->status.reason), msg);
	}
	pthread_mutex_unlock(&e->mu);
	log_fields(e, "error", count ? "release_refused" : "channel_unreadable", msg, head->release,
		   head->seq, "serving", serving ? "the release in force" : "nothing");
}

/* The switch is done: status, replay guard, log. */
static void switched(rt_engine *e, const accepted *acc, uint64_t previous, int64_t t0)
{
	const art_channel *c = acc->record;
	const art_release *r = acc->release;
	char msg[256], ms[32];

	if (c->seq > e->min_seq)
		e->min_seq = c->seq;
	e->floor_threshold = c->threshold;
	e->tried_valid = false;
	pthread_mutex_lock(&e->mu);
	e->status.state = RT_CHANNEL_OK;
	e->status.release = r->number;
	e->status.seq = c->seq;
	e->status.expires = r->expires;
	copy_text(e->status.action, sizeof(e->status.action), c->action);
	copy_text(e->status.release_digest, sizeof(e->status.release_digest), r->digest);
	e->status.reason[0] = '\0';
	e->status.refused_seq = e->status.refused_release = 0;
	e->status.refused[0] = '\0';
	e->status.switches++;
	pthread_mutex_unlock(&e->mu);
	if (previous && previous != r->number)
		snprintf(msg, sizeof(msg), "channel %s: serving release %llu (was %llu; record %llu, %s)",
			 e->channel, (unsigned long long)r->number, (unsigned long long)previous,
			 (unsigned long long)c->seq, c->action);
	else if (previous)
		snprintf(msg, sizeof(msg), "channel %s: record %llu (%s) keeps release %llu",
			 e->channel, (unsigned long long)c->seq, c->action,
			 (unsigned long long)r->number);
	else
		snprintf(msg, sizeof(msg), "channel %s: serving release %llu (record %llu, %s)",
			 e->channel, (unsigned long long)r->number, (unsigned long long)c->seq,
			 c->action);
	snprintf(ms, sizeof(ms), "%lld", (long long)(mono_ms() - t0));
	log_fields(e, "info", "release_switch", msg, r->number, c->seq, "load_ms", ms);
}

/*
 * The keyring changed and the record in force stays the channel's (or its
 * successor was refused): are its signers, its release and its artifacts
 * still trusted? A revoked or untrusted release-manager key (or a release
 * that no longer verifies) withdraws the release; an artifact whose builder
 * key is revoked is refused on its own. A key whose validity window merely
 * ended does not withdraw what was accepted while it was valid (new records
 * need valid keys); the release's own expiry does (freeze protection).
 */
static void reverify_current(rt_engine *e, view *cur, time_t now)
{
	const accepted *acc = cur->acc;
	art_release *r = NULL;
	size_t n_refused = 0;
	char msg[RT_ENGINE_TEXT_MAX];
	view *v = NULL;
	int rc;

	rc = rt_channel__recheck_signers(e->kr->kr, acc->record, acc->need, now);
	if (rc == 0 || rc == AF_EEXPIRED) {
		int rrc = art_release_get(&r, e->store, e->kr->kr, acc->release->number, now);

		if (rrc == 0 && strcmp(r->digest, acc->release->digest) != 0)
			rrc = art_error_set(AF_ESIGNATURE, "release %llu in the store is not the one "
					    "accepted", (unsigned long long)acc->release->number);
		art_release_free(r);
		if (rrc < 0 && rrc != AF_EEXPIRED)
			rc = rrc;
	}
	if (rc < 0 && rc != AF_EEXPIRED) {
		rt_channel_head h;

		snprintf(msg, sizeof(msg), "channel %s: release %llu is no longer trusted after the "
			 "keyring reload: %s", e->channel, (unsigned long long)acc->release->number,
			 art_error_last());
		/* Out of memory withdraws too (fail closed, retried after
		 * RETRY_MS) but is no verdict on the release: not counted. */
		if (rc != AF_ENOMEM)
			rt_metrics_inc_label(RT_M_SIGNATURE_FAILURES, LABEL_RELEASE);
		log_fields(e, "error", "release_withdrawn", msg, acc->release->number,
			   acc->record->seq, NULL, NULL);
		/* Resolving the same record again would fail the same way. */
		head_of(&h, acc);
		remember_tried(e, &h, rc, msg);
		withdraw(e, RT_CHANNEL_NO_RELEASE, msg);
		return;
	}
	if (view_create(&v, e, e->kr, cur->acc) < 0 || view_load(e, v, cur, now, false, &n_refused) < 0) {
		rt_log_printf(e->env.log, "error", "release_reverify", NULL,
			      "cannot re-verify the release in force: %s", art_error_last());
		if (v)
			view_put(e, v);
		return;
	}
	view_install(e, v);
	snprintf(msg, sizeof(msg), "channel %s: release %llu re-verified with the new keyring: %zu "
		 "agent(s) refused", e->channel, (unsigned long long)acc->release->number, n_refused);
	log_fields(e, n_refused ? "warn" : "info", "release_reverified", msg, acc->release->number,
		   acc->record->seq, NULL, NULL);
}

/* Resolve the channel's head and switch to it if all of it verifies. */
static void try_head(rt_engine *e, view *cur, const rt_channel_head *head, time_t now,
		     bool kr_changed)
{
	art_release_resolve_opts opts;
	art_release *rel = NULL;
	art_channel *rec = NULL;
	accepted *acc = NULL;
	view *v = NULL;
	int64_t t0 = mono_ms();
	char msg[RT_ENGINE_TEXT_MAX], why[RT_ENGINE_TEXT_MAX - 128];
	int rc;

	opts.min_threshold = e->min_threshold > e->floor_threshold ? e->min_threshold
								    : e->floor_threshold;
	opts.min_seq = e->min_seq;
	rc = art_release_channel_resolve_ex(e->store, e->kr->kr, e->channel, now, &opts, &rel, &rec);
	if (rc == 0 && cur && rec->seq == cur->acc->record->seq &&
	    strcmp(rel->digest, cur->acc->release->digest) == 0) {
		/* the head moved back to the record in force meanwhile */
		art_release_free(rel);
		art_channel_free(rec);
		if (kr_changed)
			reverify_current(e, cur, now);
		return;
	}
	if (rc == 0) {
		if (!(acc = calloc(1, sizeof(*acc)))) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			art_release_free(rel);
			art_channel_free(rec);
		} else {
			atomic_init(&acc->refs, 1);
			acc->release = rel;
			acc->record = rec;
			acc->need = rec->required > opts.min_threshold ? rec->required
								       : opts.min_threshold;
		}
	}
	if (rc == 0 && (rc = view_create(&v, e, e->kr, acc)) == 0)
		rc = view_load(e, v, cur, now, true, NULL);
	if (rc == 0) {
		view_install(e, v);
		switched(e, acc, cur ? cur->acc->release->number : 0, t0);
		accepted_put(acc);
		return;
	}
	copy_text(why, sizeof(why), art_error_last());
	if (v)
		view_put(e, v);
	accepted_put(acc);
	if (head->exists)
		snprintf(msg, sizeof(msg), "record %llu (release %llu) refused: %s",
			 (unsigned long long)head->seq, (unsigned long long)head->release, why);
	else
		snprintf(msg, sizeof(msg), "%s", why);
	/* Out of memory is no verdict on the record: retried, not counted. */
	head_refused(e, head, rc, msg, cur != NULL, rc != AF_ENOMEM);
	if (kr_changed && cur)
		reverify_current(e, cur, now);
}

static void refresh_channel(rt_engine *e, time_t now, bool kr_changed)
{
	rt_channel_head head;
	view *cur = view_get(e);
	int rc = rt_channel__peek(&head, e->store, e->channel);

	if (rc < 0) {
		char msg[RT_ENGINE_TEXT_MAX];

		snprintf(msg, sizeof(msg), "channel %s: cannot read the store: %s", e->channel,
			 art_error_last());
		memset(&head, 0, sizeof(head)); /* a head of its own (no record has seq 0) */
		head.exists = true;
		head_refused(e, &head, rc, msg, cur != NULL, false);
	} else if (cur && head.exists && head.seq == cur->acc->record->seq &&
		   head.release == cur->acc->release->number &&
		   strcmp(head.release_digest, cur->acc->record->release_digest) == 0) {
		if (kr_changed)
			reverify_current(e, cur, now);
	} else if (kr_changed || !e->tried_valid || !rt_channel__head_equal(&head, &e->tried) ||
		   mono_ms() - e->tried_ms >= RETRY_MS) {
		try_head(e, cur, &head, now, kr_changed);
	}
	view_put(e, cur);

	/* Freeze protection: an expired release is not served, whatever else. */
	cur = view_get(e);
	if (cur && now > cur->acc->release->expires) {
		char msg[RT_ENGINE_TEXT_MAX], when[21];

		art_time_format(when, cur->acc->release->expires);
		snprintf(msg, sizeof(msg), "channel %s: release %llu expired at %s and is no longer "
			 "served (freeze protection): promote a fresh release (release create --from "
			 "%llu)", e->channel, (unsigned long long)cur->acc->release->number, when,
			 (unsigned long long)cur->acc->release->number);
		rt_channel_head h;

		rt_metrics_inc_label(RT_M_SIGNATURE_FAILURES, LABEL_EXPIRED);
		log_fields(e, "error", "release_expired", msg, cur->acc->release->number,
			   cur->acc->record->seq, "expires", when);
		/* While the channel still points at it, resolving it again
		 * would say the same: remember it as tried. */
		head_of(&h, cur->acc);
		remember_tried(e, &h, AF_EEXPIRED, msg);
		withdraw(e, RT_CHANNEL_EXPIRED, msg);
	}
	view_put(e, cur);
}

/* Not following a channel: the same agents, verified again with a new keyring. */
static void refresh_latest(rt_engine *e, time_t now)
{
	view *cur = view_get(e), *v = NULL;
	size_t n_refused = 0;

	if (view_create(&v, e, e->kr, NULL) == 0 && view_load(e, v, cur, now, false, &n_refused) == 0) {
		view_install(e, v);
		rt_log_printf(e->env.log, n_refused ? "warn" : "info", "agents_reverified", NULL,
			      "agents re-verified with the new keyring: %zu refused", n_refused);
	} else {
		rt_log_printf(e->env.log, "error", "agents_reverify", NULL,
			      "cannot re-verify the agents: %s", art_error_last());
		if (v)
			view_put(e, v);
	}
	view_put(e, cur);
}

/* A new keyring file? (under refresh_mu) */
static bool refresh_keyring(rt_engine *e)
{
	rt_keyring_ref *kr = NULL;
	char msg[RT_ENGINE_TEXT_MAX];
	int rc;

	if (!e->kwatch)
		return false;
	rc = rt_keyring_watch__check(e->kwatch, &kr);
	if (rc < 0) {
		copy_text(msg, sizeof(msg), art_error_last());
		rt_metrics_inc_label(RT_M_SIGNATURE_FAILURES, LABEL_KEYRING);
		rt_log_emit(e->env.log, "error", "keyring_refused", NULL, msg, strlen(msg), NULL, 0);
		pthread_mutex_lock(&e->mu);
		copy_text(e->status.keyring_error, sizeof(e->status.keyring_error), msg);
		pthread_mutex_unlock(&e->mu);
		return false;
	}
	if (rc == 0) {
		if (!rt_keyring_watch__refusing(e->kwatch)) { /* the file in force is back */
			pthread_mutex_lock(&e->mu);
			e->status.keyring_error[0] = '\0';
			pthread_mutex_unlock(&e->mu);
		}
		return false;
	}
	rt_keyring_ref__put(e->kr);
	e->kr = kr;
	pthread_mutex_lock(&e->mu);
	e->status.keyring_reloads++;
	copy_text(e->status.keyring_sha256, sizeof(e->status.keyring_sha256), kr->sha256);
	e->status.keyring_error[0] = '\0';
	pthread_mutex_unlock(&e->mu);
	{
		const char *path = rt_keyring_watch__path(e->kwatch);
		rt_log_field f[2] = {{"path", path, strlen(path)},
				     {"sha256", kr->sha256, strlen(kr->sha256)}};

		snprintf(msg, sizeof(msg), "keyring reloaded: version %llu, %zu key(s), %zu revoked",
			 (unsigned long long)art_keyring_version(kr->kr), art_keyring_count(kr->kr),
			 art_keyring_revoked_count(kr->kr));
		rt_log_emit(e->env.log, "info", "keyring_reloaded", NULL, msg, strlen(msg), f, 2);
	}
	return true;
}

int rt_engine_refresh(rt_engine *e, time_t now)
{
	bool kr_changed;

	if (!e)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	if (!now)
		now = art_time_now();
	pthread_mutex_lock(&e->refresh_mu);
	if (store_check(e) < 0) { /* nothing is read from a damaged file */
		pthread_mutex_unlock(&e->refresh_mu);
		art_error_clear();
		return 0;
	}
	kr_changed = refresh_keyring(e);
	if (e->channel)
		refresh_channel(e, now, kr_changed);
	else if (kr_changed)
		refresh_latest(e, now);
	pthread_mutex_unlock(&e->refresh_mu);
	art_error_clear();
	return 0;
}

/* The watcher thread: a refresh every watch_ms, and right after a write to
 * the store or the keyring's directory (then again shortly after: the LMDB
 * commit that wrote may not be visible to readers until its meta page is
 * synced). */
static void *watcher_main(void *arg)
{
	static const int settle_ms[] = {2, 5, 10, 25, 50, 100};
	const size_t n_settle = sizeof(settle_ms) / sizeof(settle_ms[0]);
	rt_engine *e = arg;
	size_t settle = n_settle;

	for (;;) {
		int timeout = (int)e->watch_ms, w;

		if (settle < n_settle && settle_ms[settle] < timeout)
			timeout = settle_ms[settle];
		w = rt_watch__wait(e->watch, timeout);
		if (w < 0)
			break;
		if (w > 0)
			settle = 0;
		else if (settle < n_settle)
			settle++;
		rt_engine_refresh(e, 0);
	}
	return NULL;
}

/* ---- open / close ----------------------------------------------------------------- */

void rt_engine_close(rt_engine *e)
{
	view *v;

	if (!e)
		return;
	if (e->thread_started) {
		rt_watch__stop(e->watch);
		pthread_join(e->thread, NULL);
	}
	rt_watch__close(e->watch);
	pthread_mutex_lock(&e->mu);
	v = e->current;
	e->current = NULL;
	pthread_mutex_unlock(&e->mu);
	view_put(e, v);
	art_store_list_free(e->entries, e->n_entries);
	art_store_close(e->store);
	rt_keyring_ref__put(e->kr);
	rt_keyring_watch__close(e->kwatch);
	rt_kv_close(e->kv);
	rt_llm_provider_free(e->own_llm);
	free(e->channel);
	pthread_mutex_destroy(&e->mu);
	pthread_mutex_destroy(&e->load_mu);
	pthread_mutex_destroy(&e->refresh_mu);
	free(e);
}

static int start_watcher(rt_engine *e, const char *store_dir, const char *keyring_path)
{
	char data[PATH_MAX];
	const char *paths[2];
	const bool dir_of[2] = {false, true};
	const char *inotify = getenv("AF_WATCH_INOTIFY");
	int rc;

	snprintf(data, sizeof(data), "%s/data.mdb", store_dir);
	paths[0] = e->channel ? data : NULL; /* the store only matters for a channel */
	paths[1] = keyring_path;
	/* AF_WATCH_INOTIFY=0: poll only (measurements; file systems whose
	 * inotify events are not to be trusted). */
	if ((rc = rt_watch__open(&e->watch, paths, dir_of,
				 inotify && strcmp(inotify, "0") == 0 ? 0 : 2)) < 0)
		return rc;
	if (pthread_create(&e->thread, NULL, watcher_main, e) != 0)
		return art_error_set(AF_EIO, "cannot start the watcher thread");
	e->thread_started = true;
	return 0;
}

/* agent_invoke's way to run a callee (rt_host_env.invoke): the current version. */
static int invoke_callee(void *ctx, const char *name, const char *input, size_t input_len,
			 rt_invoke_result *res)
{
	return rt_engine_invoke(ctx, name, NULL, input, input_len, res);
}

int rt_engine_open(rt_engine **out, const rt_engine_opts *opts)
{
	/* Alerts take increase() of these: every reason exists from the start. */
	static const char *const reasons[] = {"signature", "digest", "compat", "load", "describe",
					      "pin", LABEL_RELEASE, LABEL_EXPIRED, LABEL_KEYRING};
	size_t r;
	rt_engine *e = NULL;
	int rc;

	for (r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++)
		rt_metrics_touch_label(RT_M_SIGNATURE_FAILURES, reasons[r]);

	if (!out || !opts || !opts->store_dir || !opts->keyring_path)
		return art_error_set(AF_EINVAL, "engine: a store directory and a keyring are required");
	*out = NULL;
	if (opts->channel && !art_channel_name_valid(opts->channel))
		return art_error_set(AF_EINVAL, "invalid channel name '%.80s' (use [a-z][a-z0-9-]*, at "
				     "most 63 characters)", opts->channel);
	if ((rc = rt_sandbox_init()) < 0)
		return rc;
	e = calloc(1, sizeof(*e));
	if (!e)
		return art_error_set(AF_ENOMEM, "out of memory");
	pthread_mutex_init(&e->mu, NULL);
	pthread_mutex_init(&e->load_mu, NULL);
	pthread_mutex_init(&e->refresh_mu, NULL);
	e->capacity = opts->module_cache ? opts->module_cache : DEFAULT_CACHE;
	e->max_request = opts->max_request_bytes ? opts->max_request_bytes : DEFAULT_MAX_REQUEST;
	e->env.log = opts->log ? opts->log : stderr;
	e->env.max_timeout_ms = opts->max_timeout_ms ? opts->max_timeout_ms : DEFAULT_MAX_TIMEOUT_MS;
	e->env.max_memory_pages = opts->max_memory_pages ? opts->max_memory_pages : DEFAULT_MAX_PAGES;
	if (e->env.max_memory_pages > RT_MAX_PAGES)
		e->env.max_memory_pages = RT_MAX_PAGES;
	e->env.invoke = invoke_callee;           /* agent_invoke runs callees through it */
	e->env.invoke_ctx = e;
	e->env.max_invoke_depth = opts->max_invoke_depth;
	e->min_threshold = opts->min_threshold;
	e->watch_ms = opts->watch_ms;

	if ((rc = rt_keyring_watch__open(&e->kwatch, &e->kr, opts->keyring_path)) < 0 ||
	    (rc = art_store_open(&e->store, opts->store_dir, ART_STORE_RDONLY)) < 0)
		goto cleanup;
	copy_text(e->status.keyring_sha256, sizeof(e->status.keyring_sha256), e->kr->sha256);
	if (opts->data_dir && (rc = rt_kv_open(&e->kv, opts->data_dir)) < 0)
		goto cleanup;
	e->env.kv = e->kv;
	if (opts->llm) {
		e->env.llm = opts->llm;
	} else if (opts->llm_script) {
		if ((rc = rt_llm_scripted_open(&e->own_llm, opts->llm_script)) < 0)
			goto cleanup;
		e->env.llm = e->own_llm;
	}

	if (opts->channel) {
		if (!(e->channel = strdup(opts->channel))) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
		copy_text(e->status.channel, sizeof(e->status.channel), e->channel);
		e->status.state = RT_CHANNEL_NO_RELEASE;
		snprintf(e->status.reason, sizeof(e->status.reason),
			 "channel %s: no release verified yet", e->channel);
		pthread_mutex_lock(&e->refresh_mu);
		refresh_channel(e, art_time_now(), false);
		pthread_mutex_unlock(&e->refresh_mu);
	} else {
		view *v = NULL;

		if ((rc = art_store_list(&e->entries, &e->n_entries, e->store)) < 0 ||
		    (rc = view_create(&v, e, e->kr, NULL)) < 0)
			goto cleanup;
		/* Verify and load the version each name serves; a refusal is not an error. */
		view_load(e, v, NULL, art_time_now(), false, NULL);
		view_install(e, v);
	}
	if (e->watch_ms && (rc = start_watcher(e, opts->store_dir, opts->keyring_path)) < 0)
		goto cleanup;
	art_error_clear();
	rc = 0;
	*out = e;
	e = NULL;
cleanup:
	rt_engine_close(e);
	return rc;
}

bool rt_engine_ready(const rt_engine *e)
{
	rt_engine *me = (rt_engine *)e;
	bool r;

	if (!e)
		return false;
	pthread_mutex_lock(&me->mu);
	r = me->current && me->current->ready && me->status.store_error[0] == '\0';
	pthread_mutex_unlock(&me->mu);
	return r;
}

const char *rt_channel_state_name(rt_channel_state s)
{
	switch (s) {
	case RT_CHANNEL_OK:
		return "ok";
	case RT_CHANNEL_NO_RELEASE:
		return "no_release";
	case RT_CHANNEL_EXPIRED:
		return "expired";
	case RT_CHANNEL_OFF:
	default:
		return "off";
	}
}

int rt_engine_status_get(rt_engine *e, rt_engine_status *out)
{
	if (!e || !out)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	pthread_mutex_lock(&e->mu);
	*out = e->status;
	pthread_mutex_unlock(&e->mu);
	return 0;
}

int rt_engine_stats_get(rt_engine *e, rt_engine_stats *out)
{
	view *v;
	size_t i, n;

	if (!e || !out)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	memset(out, 0, sizeof(*out));
	v = view_get(e);
	pthread_mutex_lock(&e->mu);
	for (i = 0; v && i < v->n_agents; i++) {
		if (!v->agents[i].latest)
			continue;
		if (v->agents[i].state == AGENT_OK)
			out->agents_served++;
		else
			out->agents_refused++;
	}
	out->modules_loaded = e->n_loaded;
	out->module_cache_capacity = e->capacity;
	pthread_mutex_unlock(&e->mu);
	n = v && v->kr ? art_keyring_count(v->kr->kr) : 0;
	for (i = 0; i < n && out->n_keys < RT_ENGINE_KEYS_MAX; i++) {
		const art_keyring_entry *k = art_keyring_get(v->kr->kr, i);

		if (!k || !k->not_after)
			continue;
		snprintf(out->keys[out->n_keys].id, sizeof(out->keys[0].id), "%.16s", k->id);
		snprintf(out->keys[out->n_keys].role, sizeof(out->keys[0].role), "%s", k->role);
		out->keys[out->n_keys].not_after = (int64_t)k->not_after;
		out->n_keys++;
	}
	view_put(e, v);
	return 0;
}

/* Why nothing is served (following a channel, no view): code and message. */
static const char *no_view(rt_engine *e, char *msg, size_t size)
{
	const char *code;

	pthread_mutex_lock(&e->mu);
	code = e->status.state == RT_CHANNEL_EXPIRED ? CODE_RELEASE_EXPIRED : CODE_NO_RELEASE;
	copy_text(msg, size, e->status.reason[0] ? e->status.reason : "no release is served");
	pthread_mutex_unlock(&e->mu);
	return code;
}

/* ---- list / describe --------------------------------------------------------------- */

void rt_agent_info_free(rt_agent_info *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].version);
		free(a[i].manifest_digest);
		free(a[i].refused_reason);
	}
	free(a);
}

int rt_engine_list(rt_engine *e, rt_agent_info **out, size_t *n)
{
	rt_agent_info *list;
	view *v;
	size_t i, k = 0;
	int rc = 0;

	if (!e || !out || !n)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	*out = NULL;
	*n = 0;
	v = view_get(e);
	list = calloc(v && v->n_agents ? v->n_agents : 1, sizeof(*list));
	if (!list) {
		view_put(e, v);
		return art_error_set(AF_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&e->mu);
	for (i = 0; v && i < v->n_agents && rc == 0; i++) {
		const agent *a = &v->agents[i];
		rt_agent_info *o = &list[k];

		if (!a->latest)
			continue;
		k++;
		o->ok = a->state == AGENT_OK;
		if (!(o->name = strdup(a->name)) || !(o->version = strdup(a->version)) ||
		    !(o->manifest_digest = strdup(a->manifest_digest)))
			rc = art_error_set(AF_ENOMEM, "out of memory");
		else if (a->state == AGENT_REFUSED &&
			 asprintf(&o->refused_reason, "%s: %s", a->reason,
				  a->refused_msg ? a->refused_msg : "") < 0) {
			o->refused_reason = NULL;
			rc = art_error_set(AF_ENOMEM, "out of memory");
		}
	}
	pthread_mutex_unlock(&e->mu);
	view_put(e, v);
	if (rc < 0) {
		rt_agent_info_free(list, k);
		return rc;
	}
	*out = list;
	*n = k;
	return 0;
}

int rt_engine_describe(rt_engine *e, const char *name, const char *version, char **out,
		       size_t *out_len)
{
	rt_module *m = NULL;
	view *v;
	agent *a;
	int rc;

	if (!e || !name || !out || !out_len)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	*out = NULL;
	*out_len = 0;
	if (!(v = view_get(e))) {
		char msg[RT_ENGINE_TEXT_MAX];
		const char *code = no_view(e, msg, sizeof(msg));

		return art_error_set(strcmp(code, CODE_RELEASE_EXPIRED) == 0 ? AF_EEXPIRED : AF_EDENIED,
				     "%s", msg);
	}
	a = find_agent(v, name, version);
	if (!a) {
		rc = art_error_set(AF_ENOTFOUND, "no agent %s%s%s", name, version ? "@" : "",
				   version ? version : "");
		goto cleanup;
	}
	pthread_mutex_lock(&e->mu);
	if (a->state == AGENT_REFUSED) {
		rc = art_error_set(a->refused_rc == AF_EVERSION ? AF_EVERSION : AF_ESIGNATURE,
				   "%s is refused (%s): %s", a->ref, a->reason,
				   a->refused_msg ? a->refused_msg : "");
		pthread_mutex_unlock(&e->mu);
		goto cleanup;
	}
	if (a->describe) {
		*out = malloc(a->describe_len + 1);
		if (*out) {
			memcpy(*out, a->describe, a->describe_len + 1);
			*out_len = a->describe_len;
		}
		pthread_mutex_unlock(&e->mu);
		rc = *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	pthread_mutex_unlock(&e->mu);
	{
		rt_span load;

		rt_span_start(&load, "verify_load", RT_SPAN_INTERNAL);
		rc = acquire(e, v, a, &m);
		if (rc < 0)
			rt_span_set_error(&load, art_error_last());
		rt_span_end(&load);
	}
	if (rc < 0) {
		if (rc == AF_EDENIED)
			rc = AF_ESIGNATURE; /* same message, reported as a signature refusal */
		goto cleanup;
	}
	*out = malloc(m->describe_len + 1);
	if (*out) {
		memcpy(*out, m->describe, m->describe_len + 1);
		*out_len = m->describe_len;
	}
	rt_module_unref(m);
	rc = *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
cleanup:
	view_put(e, v);
	return rc;
}

/* ---- invoke ---------------------------------------------------------------------------- */

/* A 503 answer of the engine itself: nothing to serve (code is static). */
static int set_unavailable(rt_invoke_result *res, const char *code, const char *msg)
{
	json_t *body = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code, "message",
				 msg);

	free(res->body);
	free(res->error_message);
	res->error_code = code;
	res->http_status = 503;
	res->error_message = strdup(msg);
	res->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!res->body || !res->error_message)
		return art_error_set(AF_ENOMEM, "out of memory");
	res->body_len = strlen(res->body);
	return 0;
}

static int invoke(rt_engine *e, const char *name, const char *version, const char *input,
		  size_t input_len, rt_invoke_result *res)
{
	rt_module *m = NULL;
	json_error_t jerr;
	json_t *req;
	view *v = NULL;
	agent *a = NULL;
	int64_t t0 = mono_ns();
	int rc;

	if (input_len > e->max_request)
		return rt_invoke_result_set_error(res, "payload_too_large",
						  "the request has %zu bytes, over the limit of %zu",
						  input_len, e->max_request);
	if (!input)
		return rt_invoke_result_set_error(res, "invalid_json", "the request is empty");
	req = json_loadb(input, input_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		return rt_invoke_result_set_error(res, "invalid_json",
						  "the body is not valid JSON: line %d column %d: %s",
						  jerr.line, jerr.column, jerr.text);
	json_decref(req);
	/* The view in force now: this request finishes on it, whatever switches. */
	if (!(v = view_get(e))) {
		char msg[RT_ENGINE_TEXT_MAX];
		const char *code = no_view(e, msg, sizeof(msg));

		return set_unavailable(res, code, msg);
	}
	a = name ? find_agent(v, name, version) : NULL;
	if (!a) {
		rc = rt_invoke_result_set_error(res, "not_found", "no agent %.64s%s%.64s",
						name ? name : "(none)", version ? "@" : "",
						version ? version : "");
		goto cleanup;
	}
	{
		rt_span load;

		rt_span_start(&load, "verify_load", RT_SPAN_INTERNAL);
		rc = acquire(e, v, a, &m);
		if (rc < 0)
			rt_span_set_error(&load, art_error_last());
		rt_span_end(&load);
	}
	if (rc < 0) {
		if (rc == AF_EDENIED)
			rc = rt_invoke_result_set_error(res, "agent_refused", "%s", art_error_last());
		else if (rc == AF_EDAMAGED)
			rc = rt_invoke_result_set_error(res, "store_corrupt", "%s", art_error_last());
		else
			rc = rt_invoke_result_set_error(res, "internal", "cannot load %s: %s", a->ref,
							art_error_last());
		goto cleanup;
	}
	rc = rt_exec_invoke(res, m->native, m->policy, &e->env, input, input_len);
	rt_module_unref(m);
cleanup:
	/* Per-agent series only for an agent of the view served (bounded
	 * labels); a name that is not served is counted in errors_total only. */
	if (a) {
		rt_metrics_agent_invocation(a->name, a->version, res->error_code,
					    (double)(mono_ns() - t0) / 1e9);
		rt_span_set_str(rt_span_current(), "agentfactory.agent.version", a->version);
	}
	view_put(e, v);
	return rc;
}

int rt_engine_invoke(rt_engine *e, const char *name, const char *version, const char *input,
		     size_t input_len, rt_invoke_result *res)
{
	int rc;

	if (!res)
		return art_error_set(AF_EINVAL, "engine: NULL result");
	char span_name[96];
	rt_span span;

	memset(res, 0, sizeof(*res));
	rt_metrics_inc(RT_M_INVOCATIONS);
	/* GenAI semantic conventions: "invoke_agent {gen_ai.agent.name}" */
	snprintf(span_name, sizeof(span_name), "invoke_agent %.64s", name ? name : "");
	rt_span_start(&span, span_name, RT_SPAN_INTERNAL);
	if (rt_span_recording(&span)) {
		rt_span_set_str(&span, "gen_ai.operation.name", "invoke_agent");
		rt_span_set_str(&span, "gen_ai.agent.name", name ? name : "");
		if (version)
			rt_span_set_str(&span, "agentfactory.agent.version", version);
	}
	if (!e)
		rc = rt_invoke_result_set_error(res, "internal", "no engine");
	else
		rc = invoke(e, name, version, input, input_len, res);
	if (res->error_code) {
		rt_span_set_str(&span, "error.type", res->error_code);
		rt_span_set_error(&span, res->error_message ? res->error_message : res->error_code);
	}
	rt_span_end(&span);
	/* Counted here, once per invocation error; the HTTP layer counts only
	 * its own refusals (auth, routing, body), so nothing is counted twice. */
	if (res->error_code)
		rt_metrics_inc_label(RT_M_ERRORS, res->error_code);
	return rc;
}
