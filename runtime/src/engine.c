/*
 * engine.c - the data plane's core (rt/engine.h): the agents of a read-only
 * store, each verified before its code is loaded, the loaded modules in an
 * LRU, and one fresh sandboxed instance per invocation.
 *
 * Concurrency: `mu` guards every agent's state and the LRU and is held only
 * for pointer work; `load_mu` serialises loads (verification, dlopen,
 * describe: milliseconds), so two threads never load the same module twice
 * and invocations of loaded modules never wait behind a load. An
 * invocation holds a reference to its module, so an eviction (or close)
 * never unloads code that runs.
 *
 * The agent table is the store's list at open. The latest version of every
 * name is verified and loaded at open (refusals are logged and counted
 * then); other versions are verified on first use. An evicted module is
 * verified again when it is loaded again.
 */
#include "rt/engine.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/store.h"
#include "rt/exec.h"
#include "rt/kv.h"
#include "rt/loader.h"
#include "rt/log.h"
#include "rt/metrics.h"
#include "rt/sandbox.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CACHE 64u
#define DEFAULT_MAX_TIMEOUT_MS 30000u
#define DEFAULT_MAX_PAGES 1024u
#define DEFAULT_MAX_REQUEST ((size_t)1 << 20)

enum { AGENT_UNVERIFIED, AGENT_OK, AGENT_REFUSED };

typedef struct agent {
	char *name, *version, *ref;
	char manifest_digest[ART_DIGEST_STR_LEN + 1];
	bool latest;
	int state;
	const char *reason;        /* refusal reason label */
	char *refused_msg;
	int refused_rc;
	char *describe;            /* kept after eviction, for describe */
	size_t describe_len;
	rt_module *module;         /* the cache's reference, or NULL */
	struct agent *prev, *next; /* LRU, most recent first */
} agent;

struct rt_engine {
	art_store *store;
	art_keyring *kr;
	rt_kv *kv;
	rt_llm_provider *own_llm;
	rt_host_env env;
	size_t capacity, max_request;
	pthread_mutex_t mu, load_mu;
	agent *agents;
	size_t n_agents;
	agent *lru_head, *lru_tail;
	size_t n_loaded;
	bool ready;
};

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

/* ---- lookups ------------------------------------------------------------------------ */

static agent *find_agent(rt_engine *e, const char *name, const char *version)
{
	size_t lo = 0, hi = e->n_agents, i;

	/* Sorted by name (then version): find the first entry of name. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(e->agents[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < e->n_agents && strcmp(e->agents[i].name, name) == 0; i++)
		if (version ? strcmp(e->agents[i].version, version) == 0 : e->agents[i].latest)
			return &e->agents[i];
	return NULL;
}

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

/*
 * A reference to a's loaded module, loading (verifying) it if needed.
 * @return 0; AF_EDENIED when a is refused (the message says why); other
 *         errors when the store cannot be read
 */
static int acquire(rt_engine *e, agent *a, rt_module **out)
{
	rt_module *m = NULL, *evicted[8];
	const char *reason = NULL;
	size_t n_evicted = 0, i;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&e->mu);
	if (a->module) {
		*out = rt_module_ref(a->module);
		lru_unlink(e, a);
		lru_push_front(e, a);
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

	rt_metrics_inc(RT_M_MODULE_CACHE_MISSES);
	rc = rt_module_from_store(&m, &reason, e->store, e->kr, a->name, a->version, art_time_now(),
				  &e->env);
	pthread_mutex_lock(&e->mu);
	if (rc < 0 && reason && strcmp(reason, "store") != 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", art_error_last());
		refuse(e, a, reason, rc, msg);
		rc = art_error_set(AF_EDENIED, "%s is refused (%s): %s", a->ref, reason, msg);
	} else if (rc == 0) {
		char *d = malloc(m->describe_len + 1);

		if (d) {
			memcpy(d, m->describe, m->describe_len + 1);
			free(a->describe);
			a->describe = d;
			a->describe_len = m->describe_len;
		}
		snprintf(a->manifest_digest, sizeof(a->manifest_digest), "%s", m->manifest_digest);
		a->state = AGENT_OK;
		a->module = m;
		lru_push_front(e, a);
		e->n_loaded++;
		e->ready = true;
		*out = rt_module_ref(m);
		while (e->n_loaded > e->capacity && e->lru_tail && e->lru_tail != a &&
		       n_evicted < sizeof(evicted) / sizeof(evicted[0])) {
			agent *old = e->lru_tail;

			lru_unlink(e, old);
			evicted[n_evicted++] = old->module;
			old->module = NULL;
			e->n_loaded--;
		}
	}
	pthread_mutex_unlock(&e->mu);
	pthread_mutex_unlock(&e->load_mu);
	/* Outside the locks: the last reference dlcloses. */
	for (i = 0; i < n_evicted; i++)
		rt_module_unref(evicted[i]);
	if (rc == 0) {
		rt_log_field f = {"digest", a->manifest_digest, strlen(a->manifest_digest)};

		rt_log_emit(e->env.log, "info", "loaded", a->ref, "verified and loaded",
			    strlen("verified and loaded"), &f, 1);
	}
	return rc;
}

/* ---- open / close ----------------------------------------------------------------- */

static void agent_clear(agent *a)
{
	free(a->name);
	free(a->version);
	free(a->ref);
	free(a->refused_msg);
	free(a->describe);
	rt_module_unref(a->module);
}

void rt_engine_close(rt_engine *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->n_agents; i++)
		agent_clear(&e->agents[i]);
	free(e->agents);
	art_store_close(e->store);
	art_keyring_free(e->kr);
	rt_kv_close(e->kv);
	rt_llm_provider_free(e->own_llm);
	pthread_mutex_destroy(&e->mu);
	pthread_mutex_destroy(&e->load_mu);
	free(e);
}

int rt_engine_open(rt_engine **out, const rt_engine_opts *opts)
{
	art_store_entry *entries = NULL;
	rt_engine *e = NULL;
	size_t n = 0, i;
	int rc;

	if (!out || !opts || !opts->store_dir || !opts->keyring_path)
		return art_error_set(AF_EINVAL, "engine: a store directory and a keyring are required");
	*out = NULL;
	if ((rc = rt_sandbox_init()) < 0)
		return rc;
	e = calloc(1, sizeof(*e));
	if (!e)
		return art_error_set(AF_ENOMEM, "out of memory");
	pthread_mutex_init(&e->mu, NULL);
	pthread_mutex_init(&e->load_mu, NULL);
	e->capacity = opts->module_cache ? opts->module_cache : DEFAULT_CACHE;
	e->max_request = opts->max_request_bytes ? opts->max_request_bytes : DEFAULT_MAX_REQUEST;
	e->env.log = opts->log ? opts->log : stderr;
	e->env.max_timeout_ms = opts->max_timeout_ms ? opts->max_timeout_ms : DEFAULT_MAX_TIMEOUT_MS;
	e->env.max_memory_pages = opts->max_memory_pages ? opts->max_memory_pages : DEFAULT_MAX_PAGES;
	if (e->env.max_memory_pages > RT_MAX_PAGES)
		e->env.max_memory_pages = RT_MAX_PAGES;

	if ((rc = art_keyring_load(&e->kr, opts->keyring_path)) < 0 ||
	    (rc = art_store_open(&e->store, opts->store_dir, ART_STORE_RDONLY)) < 0)
		goto cleanup;
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

	if ((rc = art_store_list(&entries, &n, e->store)) < 0)
		goto cleanup;
	e->agents = calloc(n ? n : 1, sizeof(agent));
	if (!e->agents) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		agent *a = &e->agents[i];

		if (!(a->name = strdup(entries[i].name)) || !(a->version = strdup(entries[i].version)) ||
		    asprintf(&a->ref, "%s@%s", entries[i].name, entries[i].version) < 0) {
			a->ref = NULL;
			e->n_agents = i + 1;
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto cleanup;
		}
		snprintf(a->manifest_digest, sizeof(a->manifest_digest), "%s", entries[i].manifest_digest);
		a->latest = entries[i].latest;
		e->n_agents = i + 1;
	}
	/* Verify and load the version each name serves; a refusal is not an error. */
	for (i = 0; i < e->n_agents; i++) {
		rt_module *m = NULL;

		if (!e->agents[i].latest)
			continue;
		if (acquire(e, &e->agents[i], &m) == 0)
			rt_module_unref(m);
		else if (e->agents[i].state != AGENT_REFUSED)
			rt_log_printf(e->env.log, "error", "load", e->agents[i].ref, "%s", art_error_last());
	}
	art_error_clear();
	rc = 0;
	*out = e;
	e = NULL;
cleanup:
	art_store_list_free(entries, n);
	rt_engine_close(e);
	return rc;
}

bool rt_engine_ready(const rt_engine *e)
{
	bool r;

	if (!e)
		return false;
	pthread_mutex_lock((pthread_mutex_t *)&e->mu);
	r = e->ready;
	pthread_mutex_unlock((pthread_mutex_t *)&e->mu);
	return r;
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
	size_t i, k = 0;
	int rc = 0;

	if (!e || !out || !n)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	*out = NULL;
	*n = 0;
	list = calloc(e->n_agents ? e->n_agents : 1, sizeof(*list));
	if (!list)
		return art_error_set(AF_ENOMEM, "out of memory");
	pthread_mutex_lock(&e->mu);
	for (i = 0; i < e->n_agents && rc == 0; i++) {
		const agent *a = &e->agents[i];
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
	agent *a;
	int rc;

	if (!e || !name || !out || !out_len)
		return art_error_set(AF_EINVAL, "engine: NULL argument");
	*out = NULL;
	*out_len = 0;
	a = find_agent(e, name, version);
	if (!a)
		return art_error_set(AF_ENOTFOUND, "no agent %s%s%s", name, version ? "@" : "",
				     version ? version : "");
	pthread_mutex_lock(&e->mu);
	if (a->state == AGENT_REFUSED) {
		rc = art_error_set(a->refused_rc == AF_EVERSION ? AF_EVERSION : AF_ESIGNATURE,
				   "%s is refused (%s): %s", a->ref, a->reason,
				   a->refused_msg ? a->refused_msg : "");
		pthread_mutex_unlock(&e->mu);
		return rc;
	}
	if (a->describe) {
		*out = malloc(a->describe_len + 1);
		if (*out) {
			memcpy(*out, a->describe, a->describe_len + 1);
			*out_len = a->describe_len;
		}
		pthread_mutex_unlock(&e->mu);
		return *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&e->mu);
	if ((rc = acquire(e, a, &m)) < 0)
		return rc == AF_EDENIED ? art_error_set(AF_ESIGNATURE, "%s", art_error_last()) : rc;
	*out = malloc(m->describe_len + 1);
	if (*out) {
		memcpy(*out, m->describe, m->describe_len + 1);
		*out_len = m->describe_len;
	}
	rt_module_unref(m);
	return *out ? 0 : art_error_set(AF_ENOMEM, "out of memory");
}

/* ---- invoke ---------------------------------------------------------------------------- */

void rt_invoke_result_clear(rt_invoke_result *res)
{
	if (!res)
		return;
	free(res->error_message);
	free(res->body);
	memset(res, 0, sizeof(*res));
}

static int invoke(rt_engine *e, const char *name, const char *version, const char *input,
		  size_t input_len, rt_invoke_result *res)
{
	rt_module *m = NULL;
	json_error_t jerr;
	json_t *req;
	agent *a;
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
						  "the request is not valid JSON: %s (at byte %d)",
						  jerr.text, jerr.position);
	json_decref(req);
	a = name ? find_agent(e, name, version) : NULL;
	if (!a)
		return rt_invoke_result_set_error(res, "not_found", "no agent %.64s%s%.64s",
						  name ? name : "(none)", version ? "@" : "",
						  version ? version : "");
	if ((rc = acquire(e, a, &m)) < 0) {
		if (rc == AF_EDENIED)
			return rt_invoke_result_set_error(res, "agent_refused", "%s", art_error_last());
		return rt_invoke_result_set_error(res, "internal", "cannot load %s: %s", a->ref,
						  art_error_last());
	}
	rc = rt_exec_invoke(res, m->native, m->policy, &e->env, input, input_len);
	rt_module_unref(m);
	return rc;
}

int rt_engine_invoke(rt_engine *e, const char *name, const char *version, const char *input,
		     size_t input_len, rt_invoke_result *res)
{
	int rc;

	if (!res)
		return art_error_set(AF_EINVAL, "engine: NULL result");
	memset(res, 0, sizeof(*res));
	rt_metrics_inc(RT_M_INVOCATIONS);
	if (!e)
		rc = rt_invoke_result_set_error(res, "internal", "no engine");
	else
		rc = invoke(e, name, version, input, input_len, res);
	/* Counted here, once per invocation error; the HTTP layer counts only
	 * its own refusals (auth, routing, body), so nothing is counted twice. */
	if (res->error_code)
		rt_metrics_inc_label(RT_M_ERRORS, res->error_code);
	return rc;
}
