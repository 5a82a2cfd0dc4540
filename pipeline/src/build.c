/*
 * build.c - front end -> plan (cache) -> parallel compile -> one store commit.
 *
 * Workers only compile: they share the read-only toolchain and each writes
 * into its own work directory. Everything that touches the store happens on
 * the calling thread, in one write transaction after every worker finished,
 * so a failed or killed build never leaves part of itself in the store.
 */
#include "pipe/build.h"

#include "art/audit.h"
#include "art/error.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"
#include "gen/abi.h"
#include "gen/cgen.h"
#include "pipe/provenance.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


typedef struct build_job {
	pipe_build_item *item;
	const pipe_frontend_entry *entry;
	gen_result *result;
} build_job;

typedef struct build_ctx {
	const pipe_build_opts *opts;
	const gen_toolchain *tc;
	const char *workdir;
	build_job *jobs;
	size_t n_jobs, next, done;
	pthread_mutex_t lock;
} build_ctx;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The template capabilities that the policy grants: what the module may import. */
static int granted_caps(const char ***out, size_t *n_out, const pipe_node *resolved,
			const pipe_policy *policy)
{
	const pipe_node *caps = pipe_node_get(resolved, "capabilities");
	const char **list;
	size_t i, n = 0;

	*out = NULL;
	*n_out = 0;
	if (!caps || caps->type != PIPE_NODE_SEQ)
		return 0;
	list = calloc(caps->v.seq.n + 1, sizeof(*list));
	if (!list)
		return art_error_set(AF_ENOMEM, "out of memory");
	for (i = 0; i < caps->v.seq.n; i++) {
		const pipe_node *c = caps->v.seq.items[i];
		if (c->type == PIPE_NODE_STRING && pipe_policy_grants_capability(policy, c->v.s.ptr))
			list[n++] = c->v.s.ptr;
	}
	*out = list;
	*n_out = n;
	return 0;
}

/*
 * The hosts recorded in the manifest of an agent (docs/tools.md): the
 * policy's allow-list when the agent is granted http_fetch, else none.
 * Entries the runtime could never match (a name that reads as a number,
 * such as 127.1) are left out.
 */
static int agent_hosts(char ***out, size_t *n_out, const pipe_node *resolved,
		       const pipe_policy *policy)
{
	const pipe_node *caps = pipe_node_get(resolved, "capabilities");
	char **hosts = NULL;
	size_t n = 0, i, k;
	bool fetch = false;
	int rc;

	*out = NULL;
	*n_out = 0;
	for (i = 0; caps && caps->type == PIPE_NODE_SEQ && i < caps->v.seq.n; i++) {
		const pipe_node *c = caps->v.seq.items[i];

		if (c->type == PIPE_NODE_STRING && strcmp(c->v.s.ptr, "http_fetch") == 0)
			fetch = pipe_policy_grants_capability(policy, "http_fetch");
	}
	if (!fetch)
		return 0;
	if ((rc = pipe_policy_hosts(&hosts, &n, policy)) < 0)
		return rc;
	for (i = k = 0; i < n; i++) {
		if (art_manifest_host_valid(hosts[i]))
			hosts[k++] = hosts[i];
		else
			free(hosts[i]);
	}
	*out = hosts;
	*n_out = k;
	return 0;
}

static void progress(build_ctx *ctx, const build_job *job, const char *what)
{
	FILE *f = ctx->opts->progress;

	if (!f)
		return;
	if (ctx->opts->progress_tty)
		fprintf(f, "\r\033[K[%zu/%zu] %s %s@%s", ctx->done, ctx->n_jobs, what,
			job->item->name, job->item->version);
	else if (job->item->status == PIPE_BUILD_FAILED)
		fprintf(f, "[%zu/%zu] FAILED %s@%s: %s\n", ctx->done, ctx->n_jobs,
			job->item->name, job->item->version, job->item->error);
	else
		fprintf(f, "[%zu/%zu] %s %s@%s (C->wasm %.0f ms, wasm2c %.0f ms, cc %.0f ms)\n",
			ctx->done, ctx->n_jobs, what, job->item->name, job->item->version,
			job->item->times.wasm_ms, job->item->times.wasm2c_ms,
			job->item->times.native_ms);
	fflush(f);
}

static void build_one(build_ctx *ctx, build_job *job)
{
	const pipe_resolved *r = job->entry->resolved;
	art_buf dir = ART_BUF_INIT;
	const char **caps = NULL;
	size_t n_caps = 0;
	int rc;

	if ((rc = art_buf_printf(&dir, "%s/%s", ctx->workdir, r->name)) < 0)
		goto fail;
	if (mkdir(dir.data, 0700) < 0 && errno != EEXIST) {
		rc = art_error_set(AF_EIO, "%s: cannot create: %s", dir.data, strerror(errno));
		goto fail;
	}
	rc = gen_build_agent(&job->result, ctx->tc, r->canonical, r->canonical_len, dir.data,
			     &job->item->times);
	if (rc < 0)
		goto fail;
	/* Second line of defence: the module's imports against what the policy
	 * grants this template (codegen already held them to the template). */
	if ((rc = granted_caps(&caps, &n_caps, r->root, ctx->opts->policy)) < 0)
		goto fail;
	if ((rc = gen_check_imports(job->result->module, caps, n_caps)) < 0)
		goto fail;
	job->item->status = PIPE_BUILD_BUILT;
	job->item->wasm_size = job->result->wasm_len;
	job->item->native_size = job->result->so_len;
	job->item->source_size = job->result->c_len;
	goto done;
fail:
	job->item->status = PIPE_BUILD_FAILED;
	job->item->error = strdup(art_error_last());
	gen_result_free(job->result);
	job->result = NULL;
done:
	free(caps);
	art_buf_free(&dir);
}

static void *worker(void *arg)
{
	build_ctx *ctx = arg;

	for (;;) {
		build_job *job;

		pthread_mutex_lock(&ctx->lock);
		if (ctx->next >= ctx->n_jobs) {
			pthread_mutex_unlock(&ctx->lock);
			return NULL;
		}
		job = &ctx->jobs[ctx->next++];
		if (ctx->opts->progress_tty)
			progress(ctx, job, "building");
		pthread_mutex_unlock(&ctx->lock);

		build_one(ctx, job);

		pthread_mutex_lock(&ctx->lock);
		ctx->done++;
		progress(ctx, job, job->item->status == PIPE_BUILD_BUILT ? "built" : "failed");
		pthread_mutex_unlock(&ctx->lock);
	}
}

/* A cache hit needs the same resolved digest, toolchain and policy, and the
 * same name@version (the digest covers both, but be explicit), and the host
 * allow-list this build would record (an artifact built before manifests
 * had hosts lacks it). */
static bool cache_hit(const art_store *s, const pipe_resolved *r, const char *toolchain_id,
		      const pipe_policy *policy, char manifest_digest[72])
{
	const char *policy_digest = pipe_policy_digest(policy);
	char *name = NULL, *version = NULL, **hosts = NULL;
	art_store_record *rec = NULL;
	art_manifest *m = NULL;
	size_t n_hosts = 0, i;
	bool hit = false;

	if (art_store_cache_lookup(&name, &version, s, r->digest, toolchain_id) < 0)
		return false;
	if (strcmp(name, r->name) != 0 || strcmp(version, r->version) != 0)
		goto done;
	if (art_store_get_artifact(&rec, s, name, version) < 0)
		goto done;
	if (art_manifest_parse(&m, rec->manifest, rec->manifest_len) < 0)
		goto done;
	hit = strcmp(m->policy_digest, policy_digest) == 0 &&
	      strcmp(m->resolved_template_digest, r->digest) == 0 &&
	      strcmp(m->toolchain_id, toolchain_id) == 0;
	if (hit && agent_hosts(&hosts, &n_hosts, r->root, policy) < 0)
		hit = false;
	if (hit && n_hosts != m->n_hosts)
		hit = false;
	for (i = 0; hit && i < n_hosts; i++) /* both sorted */
		hit = strcmp(hosts[i], m->hosts[i]) == 0;
	if (hit)
		memcpy(manifest_digest, rec->manifest_digest, sizeof(rec->manifest_digest));
done:
	pipe_policy_hosts_free(hosts, n_hosts);
	art_manifest_free(m);
	art_store_record_free(rec);
	free(name);
	free(version);
	return hit;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/*
 * The audit entry of a build (art/audit.h): who built (the builder key),
 * which commit, what was built or why nothing was. Caller frees the details.
 */
static int build_audit_event(art_audit_event *ev, char **details, char *subject, size_t size,
			     const pipe_build_opts *opts, const pipe_build_report *rep,
			     const char *outcome, const char *reason)
{
	json_t *d = json_object(), *built = json_array();
	const char *commit = rep && rep->fe && rep->fe->source ? rep->fe->source->commit : NULL;
	size_t i;

	snprintf(subject, size, "commit/%s", commit ? commit : "unknown");
	json_object_set_new(d, "repo", json_string(opts->repo ? opts->repo : ""));
	json_object_set_new(d, "rev", json_string(opts->rev ? opts->rev : "HEAD"));
	for (i = 0; rep && i < rep->n; i++) {
		char ref[300];

		if (rep->items[i].status != PIPE_BUILD_BUILT)
			continue;
		snprintf(ref, sizeof(ref), "%s@%s", rep->items[i].name, rep->items[i].version);
		json_array_append_new(built, json_string(ref));
	}
	json_object_set_new(d, "built", built);
	json_object_set_new(d, "cached", json_integer(rep ? (json_int_t)rep->n_cached : 0));
	if (reason)
		json_object_set_new(d, "reason", json_string(reason));
	*details = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	ev->action = "build";
	ev->actor = art_key_id(opts->builder_key);
	ev->subject = subject;
	ev->outcome = outcome;
	ev->details_json = *details;
	ev->signers = &opts->builder_key; /* the builder signs its entry */
	ev->n_signers = 1;
	return *details ? 0 : art_error_set(AF_ENOMEM, "out of memory");
}

/*
 * Audit a build that stores nothing (all cached, or refused) in its own
 * transaction. A store that does not exist yet is not created for it.
 * Best effort: the caller's error message is kept.
 */
static void audit_build_alone(art_store *store, const pipe_build_opts *opts,
			      const pipe_build_report *rep, const char *outcome,
			      const char *reason)
{
	char saved[1024], subject[128], *details = NULL;
	art_store *own = NULL;
	art_audit_event ev;

	snprintf(saved, sizeof(saved), "%s", art_error_last());
	if (!store && art_store_open(&own, opts->store_dir, 0) == 0)
		store = own;
	if (store && build_audit_event(&ev, &details, subject, sizeof(subject), opts, rep, outcome,
				       reason) == 0)
		art_audit_append(NULL, store, &ev, opts->now);
	free(details);
	art_store_close(own);
	art_error_set(AF_OK, "%s", saved);
	if (!saved[0])
		art_error_clear();
}

static int store_results(pipe_build_report *rep, build_ctx *ctx, art_store *store,
			 const gen_toolchain *tc, const pipe_build_opts *opts, time_t started)
{
	pipe_provenance_lists lists;
	char *source_uri = NULL, *builder_id = NULL, *invocation_id = NULL;
	art_store_txn *txn = NULL;
	time_t finished = time(NULL);
	size_t i;
	int rc;

	memset(&lists, 0, sizeof(lists));
	if ((rc = pipe_provenance_source_uri(&source_uri, opts->repo, opts->source_uri)) < 0 ||
	    (rc = pipe_provenance_builder_id(&builder_id, opts->builder_id)) < 0 ||
	    (rc = pipe_provenance_invocation_id(&invocation_id)) < 0 ||
	    (rc = pipe_provenance_components(&lists, gen_toolchain_id(tc),
					     "/var/lib/dpkg/status")) < 0)
		goto out;
	if ((rc = art_store_txn_begin(&txn, store)) < 0)
		goto out;
	/* A zstd dictionary trained on the catalogue compresses many small,
	 * similar artifacts far better; AF_ZSTD_DICT=0 turns it off (to measure). */
	art_store_txn_set_auto_dict(txn, !(getenv("AF_ZSTD_DICT") && strcmp(getenv("AF_ZSTD_DICT"), "0") == 0));
	for (i = 0; i < ctx->n_jobs; i++) {
		build_job *job = &ctx->jobs[i];
		const pipe_resolved *r = job->entry->resolved;
		gen_agent *agent = NULL;

		if (job->item->status != PIPE_BUILD_BUILT)
			continue; /* failed: reported, not stored */
		art_manifest_import *imps = NULL;
		art_manifest_export *exps = NULL;
		art_manifest_info info;
		art_provenance_info prov;
		art_provenance_extra extra;
		art_build_parts parts;
		art_manifest *m = NULL;
		char **hosts = NULL;
		size_t k, n_hosts = 0;

		if ((rc = gen_agent_parse(&agent, r->canonical, r->canonical_len)) < 0)
			goto fail;
		if ((rc = agent_hosts(&hosts, &n_hosts, r->root, opts->policy)) < 0)
			goto fail_one;
		imps = calloc(job->result->module->n_imports + 1, sizeof(*imps));
		exps = calloc(job->result->module->n_exports + 1, sizeof(*exps));
		if (!imps || !exps) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto fail_one;
		}
		for (k = 0; k < job->result->module->n_imports; k++) {
			const art_wasm_import *im = &job->result->module->imports[k];
			imps[k].module = im->module;
			imps[k].name = im->name;
			imps[k].kind = (char *)art_wasm_kind_name(im->kind);
		}
		for (k = 0; k < job->result->module->n_exports; k++) {
			const art_wasm_export *ex = &job->result->module->exports[k];
			exps[k].name = ex->name;
			exps[k].kind = (char *)art_wasm_kind_name(ex->kind);
		}
		memset(&info, 0, sizeof(info));
		info.name = r->name;
		info.version = r->version;
		info.resolved_template_digest = r->digest;
		info.git_commit = rep->fe->source->commit;
		info.policy_digest = pipe_policy_digest(opts->policy);
		info.toolchain_id = gen_toolchain_id(tc);
		info.native_compat_id = gen_toolchain_compat_id(tc);
		info.target_triple = gen_toolchain_target(tc);
		info.guest_abi_version = GEN_GUEST_ABI_VERSION;
		info.imports = imps;
		info.n_imports = job->result->module->n_imports;
		info.exports = exps;
		info.n_exports = job->result->module->n_exports;
		info.capabilities = (const char *const *)agent->capabilities;
		info.n_capabilities = agent->n_capabilities;
		info.hosts = (const char *const *)hosts;
		info.n_hosts = n_hosts;
		memset(&prov, 0, sizeof(prov));
		memset(&extra, 0, sizeof(extra));
		if ((rc = pipe_provenance_templates(&lists, rep->fe, r)) < 0)
			goto fail_one;
		prov.repo = source_uri;
		prov.rev = opts->rev ? opts->rev : "HEAD";
		prov.builder_id = builder_id;
		extra.template_path = job->entry->path;
		extra.templates = lists.templates;
		extra.n_templates = lists.n_templates;
		extra.components = lists.components;
		extra.n_components = lists.n_components;
		extra.invocation_id = invocation_id;
		extra.started_on = started;
		extra.finished_on = finished;
		parts.wasm = job->result->wasm;
		parts.wasm_len = job->result->wasm_len;
		parts.native = job->result->so;
		parts.native_len = job->result->so_len;
		parts.source = job->result->c_source;
		parts.source_len = job->result->c_len;
		rc = art_store_put_build_ex(txn, &m, &info, &prov, &extra, &parts,
					    opts->builder_key);
		if (rc == 0) {
			char *json = NULL;
			size_t len = 0;
			if (art_manifest_serialize(&json, &len, m) == 0)
				art_manifest_digest(job->item->manifest_digest, json, len);
			free(json);
		}
fail_one:
		pipe_policy_hosts_free(hosts, n_hosts);
		art_manifest_free(m);
		free(imps);
		free(exps);
		gen_agent_free(agent);
		if (rc < 0)
			goto fail;
	}
	{
		/* The build's audit entry lands in the same LMDB transaction. */
		char subject[128], *details = NULL;
		art_audit_event ev;

		rc = build_audit_event(&ev, &details, subject, sizeof(subject), opts, rep, ART_AUDIT_OK,
				       NULL);
		if (rc == 0)
			rc = art_store_txn_audit(txn, &ev, opts->now);
		free(details);
		if (rc < 0)
			goto fail;
	}
	rc = art_store_txn_commit(txn);
	goto out;
fail:
	art_store_txn_abort(txn);
out:
	pipe_provenance_lists_free(&lists);
	free(source_uri);
	free(builder_id);
	free(invocation_id);
	return rc;
}

static int cmp_items(const void *a, const void *b)
{
	return strcmp(((const pipe_build_item *)a)->name, ((const pipe_build_item *)b)->name);
}

int pipe_build_run(pipe_build_report **out, const pipe_build_opts *opts)
{
	pipe_build_report *rep;
	pipe_frontend_opts fo;
	build_ctx ctx;
	gen_toolchain *tc = NULL;
	art_store *store = NULL;
	const art_key *trusted = NULL;
	pthread_t *threads = NULL;
	size_t i, n_threads = 0;
	double t0 = now_ms(), t_compile;
	time_t started = time(NULL);
	char tmpl[4096];
	int rc;

	*out = NULL;
	memset(&ctx, 0, sizeof(ctx));
	rep = calloc(1, sizeof(*rep));
	if (!rep)
		return art_error_set(AF_ENOMEM, "out of memory");
	/* The builder key must verify later: refuse early if the keyring won't. */
	rc = art_keyring_lookup(&trusted, opts->keyring, art_key_id(opts->builder_key),
				ART_ROLE_BUILDER, opts->now);
	if (rc < 0) {
		rc = art_error_prefix(rc, "builder key %s cannot sign artifacts (add it with: "
				      "agentfactory trust add --role builder --keyring FILE KEY.pub)",
				      art_key_id(opts->builder_key));
		goto fail;
	}
	memset(&fo, 0, sizeof(fo));
	fo.repo = opts->repo;
	fo.rev = opts->rev;
	fo.subdir = opts->subdir;
	fo.keyring = opts->keyring;
	fo.policy = opts->policy;
	fo.now = opts->now;
	if ((rc = pipe_frontend_run(&rep->fe, &fo)) < 0)
		goto fail;
	if (!pipe_frontend_ok(rep->fe)) {
		size_t tied = 0;

		rep->frontend_failed = true;
		for (i = 0; i < rep->fe->n; i++)
			tied += rep->fe->entries[i].errors;
		/* One bad template does not stop the others, unless asked to, or
		 * unless a finding is not tied to one template (it may concern all). */
		if (opts->all_or_nothing || tied < pipe_diags_errors(&rep->fe->diags)) {
			audit_build_alone(NULL, opts, rep, ART_AUDIT_REFUSED,
					  "the front end has findings (signatures, policies, templates)");
			goto out;
		}
	}
	if (!rep->fe->source->commit) {
		rc = art_error_set(AF_EINVAL, "%s is not a git repository: a build records the "
				   "commit it was built from; commit the templates and build a revision",
				   opts->repo);
		goto fail;
	}
	if ((rc = gen_toolchain_discover(&tc)) < 0)
		goto fail;
	rep->toolchain_id = strdup(gen_toolchain_id(tc));
	if ((rc = art_store_open(&store, opts->store_dir, ART_STORE_CREATE)) < 0)
		goto fail;

	rep->jobs = opts->jobs ? opts->jobs : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (rep->jobs == 0)
		rep->jobs = 1;

	/* plan */
	rep->items = calloc(rep->fe->n + 1, sizeof(*rep->items));
	ctx.jobs = calloc(rep->fe->n + 1, sizeof(*ctx.jobs));
	if (!rep->items || !ctx.jobs || !rep->toolchain_id) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < rep->fe->n; i++) {
		const pipe_frontend_entry *e = &rep->fe->entries[i];
		pipe_build_item *it;

		if (!e->resolved && e->errors) {
			rep->n_skipped++; /* did not parse or resolve: its findings say why */
			continue;
		}
		if (!e->resolved || e->resolved->abstract)
			continue;
		if (rep->frontend_failed && (e->errors || !e->resolved_ok || !e->trusted ||
					     !e->policy_ok)) {
			rep->n_skipped++;
			continue;
		}
		it = &rep->items[rep->n++];
		it->name = e->resolved->name;
		it->version = e->resolved->version;
		it->resolved_digest = e->resolved->digest;
		if (cache_hit(store, e->resolved, gen_toolchain_id(tc), opts->policy,
			      it->manifest_digest)) {
			it->status = PIPE_BUILD_CACHED;
			rep->n_cached++;
			continue;
		}
		ctx.jobs[ctx.n_jobs].item = it;
		ctx.jobs[ctx.n_jobs].entry = e;
		ctx.n_jobs++;
	}
	if (opts->progress)
		fprintf(opts->progress, "%zu agents: %zu unchanged (cache hits), %zu to build\n",
			rep->n, rep->n_cached, ctx.n_jobs);

	/* compile */
	t_compile = now_ms();
	if (ctx.n_jobs) {
		const char *tmpdir = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/agentfactory-build.XXXXXX",
			 tmpdir && *tmpdir ? tmpdir : "/tmp");
		if (!mkdtemp(tmpl)) {
			rc = art_error_set(AF_EIO, "%s: cannot create a work directory: %s", tmpl,
					   strerror(errno));
			goto fail;
		}
		ctx.workdir = tmpl;
		/* The guest library's objects, compiled once for the whole build
		 * (AF_GUEST_CACHE=0: in every agent, same bytes). */
		if (!(getenv("AF_GUEST_CACHE") && strcmp(getenv("AF_GUEST_CACHE"), "0") == 0)) {
			char gc[sizeof(tmpl) + 32];

			snprintf(gc, sizeof(gc), "%s/.guest-objects", tmpl);
			if (mkdir(gc, 0700) < 0 || gen_toolchain_set_guest_cache(tc, gc) < 0) {
				rc = art_error_set(AF_EIO, "%s: cannot create the guest cache: %s", gc,
						   strerror(errno));
				goto fail;
			}
		}
		ctx.opts = opts;
		ctx.tc = tc;
		pthread_mutex_init(&ctx.lock, NULL);
		n_threads = rep->jobs < ctx.n_jobs ? rep->jobs : ctx.n_jobs;
		threads = calloc(n_threads, sizeof(*threads));
		if (!threads) {
			rc = art_error_set(AF_ENOMEM, "out of memory");
			goto fail;
		}
		for (i = 0; i < n_threads; i++)
			if (pthread_create(&threads[i], NULL, worker, &ctx) != 0)
				break;
		if (i == 0)
			worker(&ctx); /* no thread could start: do it here */
		n_threads = i;
		for (i = 0; i < n_threads; i++)
			pthread_join(threads[i], NULL);
		pthread_mutex_destroy(&ctx.lock);
		if (opts->progress && opts->progress_tty)
			fputc('\n', opts->progress);
	}
	rep->compile_ms = now_ms() - t_compile;
	for (i = 0; i < ctx.n_jobs; i++) {
		if (ctx.jobs[i].item->status == PIPE_BUILD_BUILT)
			rep->n_built++;
		else
			rep->n_failed++;
	}

	/* store: every agent that built (one transaction), or with
	 * --all-or-nothing nothing at all when anything failed */
	if (rep->n_built && (!(rep->n_failed || rep->frontend_failed) || !opts->all_or_nothing)) {
		if (opts->progress)
			fprintf(opts->progress, "storing %zu artifacts in %s (one transaction)\n",
				rep->n_built, opts->store_dir);
		if ((rc = store_results(rep, &ctx, store, tc, opts, started)) < 0) {
			char reason[1024];

			snprintf(reason, sizeof(reason), "%s", art_error_last());
			audit_build_alone(store, opts, rep, ART_AUDIT_REFUSED, reason);
			goto fail;
		}
		rep->stored = true;
	} else if (rep->n_failed || rep->frontend_failed) {
		audit_build_alone(store, opts, rep, ART_AUDIT_REFUSED,
				  "agents failed to build: nothing stored");
	} else {
		audit_build_alone(store, opts, rep, ART_AUDIT_OK, NULL); /* nothing new */
	}
	goto out;
fail:
	pipe_build_report_free(rep);
	rep = NULL;
out:
	for (i = 0; i < ctx.n_jobs; i++)
		gen_result_free(ctx.jobs[i].result);
	free(ctx.jobs);
	free(threads);
	if (ctx.workdir) {
		if (opts->keep_workdir && rep)
			rep->workdir = strdup(ctx.workdir);
		else
			nftw(ctx.workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	art_store_close(store);
	gen_toolchain_free(tc);
	if (!rep)
		return rc;
	if (rep->items && rep->n)
		qsort(rep->items, rep->n, sizeof(*rep->items), cmp_items);
	rep->total_ms = now_ms() - t0;
	*out = rep;
	return 0;
}

void pipe_build_report_free(pipe_build_report *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++)
		free(r->items[i].error);
	free(r->items);
	pipe_frontend_free(r->fe);
	free(r->workdir);
	free(r->toolchain_id);
	free(r);
}
