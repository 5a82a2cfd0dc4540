/*
 * test_faults.c - the runtime's parsers and stores when allocations fail:
 * every malloc, calloc, realloc and strdup in turn (tests/unit/faultinject.h;
 * the Makefile links this binary with --wrap for them). Each operation must
 * report AF_ENOMEM (or succeed when it can do without), never crash, and
 * leak nothing (run it under CONFIG=asan). The runtime never aborts on OOM:
 * it answers 503 (docs/runtime.md), which needs exactly this.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "faultinject.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <time.h>

/* The model server (llm_fixture.h) is the test's: its allocations are not counted. */
#define malloc(n) __real_malloc(n)
#define calloc(n, size) __real_calloc(n, size)
#define realloc(p, n) __real_realloc(p, n)
#define strdup(s) __real_strdup(s)
#include "llm_fixture.h"
#undef malloc
#undef calloc
#undef realloc
#undef strdup

#include "art/error.h"
#include "art/util.h"
#include "rt/kv.h"
#include "rt/llm.h"
#include "rt/metrics.h"
#include "rt/tokens.h"
#include "rt/tools.h"
#include "rt/trace.h"
#include "../../../runtime/src/keyring_watch.h"
#include "keyring_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *d = NULL;

	assert_true(asprintf(&d, "%s/af-test-rt-faults-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
	assert_non_null(mkdtemp(d));
	return d;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_dir(char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static const char tokens_file[] =
	"# name role\n"
	"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad admin ops\n"
	"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa read dashboards\n";

static int run_tokens(void *ctx)
{
	rt_tokens *t = NULL;
	rt_role role = RT_ROLE_NONE;
	int rc;

	(void)ctx;
	rc = rt_tokens_parse(&t, tokens_file, sizeof(tokens_file) - 1, "tokens");
	if (rc == 0 && (rt_tokens_count(t) != 2 || rt_tokens_check(t, "abc", 3, &role, NULL) != 0 ||
			role != RT_ROLE_ADMIN))
		rc = AF_ECORRUPT;
	rt_tokens_free(t);
	return rc;
}

/* A fresh kv in the folder ctx: put, then get it back. */
static int run_kv(void *ctx)
{
	char *dir = ctx, *value = NULL;
	size_t len = 0;
	rt_kv *kv = NULL;
	int rc;

	rc = rt_kv_open(&kv, dir);
	if (rc == 0)
		rc = rt_kv_put(kv, "backup-manager", "releases/r1", 11, "{\"v\":1}", 7);
	if (rc == 0)
		rc = rt_kv_get(kv, "backup-manager", "releases/r1", 11, &value, &len);
	if (rc == 0 && (len != 7 || memcmp(value, "{\"v\":1}", 7) != 0))
		rc = AF_ECORRUPT;
	free(value);
	rt_kv_close(kv);
	return rc;
}

/* A scripted model: open the script and answer one turn. */
static int run_scripted_llm(void *ctx)
{
	const char *script = ctx;
	rt_llm_provider *p = NULL;
	char *resp = NULL;
	size_t len = 0;
	int rc;

	rc = rt_llm_scripted_open(&p, script);
	if (rc == 0)
		rc = rt_llm_chat(p, NULL, "{\"messages\":[]}", 15, &resp, &len);
	if (rc == 0 && !strstr(resp, "done"))
		rc = AF_ECORRUPT;
	free(resp);
	rt_llm_provider_free(p);
	return rc;
}

static int run_metrics(void *ctx)
{
	art_buf out = {0};
	int rc;

	(void)ctx;
	rt_metrics_inc_label(RT_M_DENIALS, "http_fetch:host");
	rc = rt_metrics_render(&out);
	if (rc == 0 && !strstr(out.data ? out.data : "", "agentfactory_"))
		rc = AF_ECORRUPT;
	art_buf_free(&out);
	return rc;
}

/* The openai provider against a local model server: open with a key file,
 * a model and the legacy token field, then one chat turn (an assistant
 * tool-call turn sent back, a tool-call answer with usage) inside a span. */
typedef struct openai_ctx {
	const char *base_url, *key_file;
} openai_ctx;

static const char openai_request[] =
	"{\"model\":\"tmpl\",\"max_completion_tokens\":64,\"messages\":["
	"{\"role\":\"system\",\"content\":\"be brief\"},"
	"{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":["
	"{\"id\":\"c0\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
	"{\"role\":\"tool\",\"tool_call_id\":\"c0\",\"content\":\"42\"}]}";

static const char openai_answer[] =
	"{\"id\":\"chatcmpl-1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"message\":"
	"{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"annotations\":[],"
	"\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"kv_get\","
	"\"arguments\":\"{\\\"k\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}],"
	"\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}";

static int run_openai(void *arg)
{
	const openai_ctx *ctx = arg;
	rt_llm_config c;
	rt_llm_provider *p = NULL;
	rt_span span, *prev;
	char *resp = NULL;
	size_t len = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	c.provider = "openai";
	c.base_url = ctx->base_url;
	c.api_key_file = ctx->key_file;
	c.model = "m-1";
	c.max_tokens_field = "max_tokens";
	c.retries = 0;
	c.timeout_ms = 20000;
	rc = rt_llm_openai_open(&p, &c);
	if (rc < 0)
		return rc;
	rt_span_start(&span, "invoke", RT_SPAN_INTERNAL);
	prev = rt_span_set_current(&span);
	rc = rt_llm_chat(p, NULL, openai_request, sizeof(openai_request) - 1, &resp, &len);
	rt_span_set_current(prev);
	rt_span_end(&span);
	if (rc == 0 && (!strstr(resp, "\"tool_calls\"") || !strstr(resp, "\"c1\"") ||
			strstr(resp, "refusal") || strstr(resp, "annotations") || len != strlen(resp)))
		rc = art_error_set(AF_ECORRUPT, "unexpected answer %s", resp);
	free(resp);
	rt_llm_provider_free(p);
	return rc;
}

static void test_faults__allocation_failures_report_enomem(void **state)
{
	char *dir = temp_dir(), *script = NULL, *kvdir = NULL, *keyfile = NULL, url[128];
	static const llmfx_reply model[] = {{200, openai_answer, NULL, 0, 0}};
	llmfx *fx = NULL;
	openai_ctx oc;
	FILE *f;
	size_t i;

	(void)state;
	assert_true(asprintf(&keyfile, "%s/key", dir) > 0);
	f = fopen(keyfile, "w");
	assert_non_null(f);
	fputs("sk-test-0123456789\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(llmfx_start(&fx, model, 1), 0);
	oc.base_url = llmfx_url(fx, url, sizeof(url), "/v1/");
	oc.key_file = keyfile;
	assert_true(asprintf(&script, "%s/script.json", dir) > 0);
	f = fopen(script, "w");
	assert_non_null(f);
	fputs("{\"responses\":[{\"role\":\"assistant\",\"content\":\"{\\\"summary\\\":\\\"done\\\"}\"}]}",
	      f);
	assert_int_equal(fclose(f), 0);
	assert_true(asprintf(&kvdir, "%s/data", dir) > 0);
	{
		const fi_op ops[] = {
			{"rt_tokens_parse+check", run_tokens, NULL, NULL},
			{"rt_kv open+put+get", run_kv, NULL, kvdir},
			{"rt_llm_scripted_open+chat", run_scripted_llm, NULL, script},
			{"rt_metrics_render", run_metrics, NULL, NULL},
			{"rt_llm_openai_open+chat", run_openai, NULL, &oc},
		};

		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (fi_torture(&ops[i]) < 0)
				fail_msg("%s: see above", ops[i].name);
	}
	/* The model server saw what the provider sends: the configured model,
	 * the legacy token field, the key, the assistant turn without refusal. */
	{
		const llmfx_request *q = llmfx_request_at(fx, llmfx_count(fx) - 1);

		assert_non_null(q);
		assert_string_equal(q->path, "/v1/chat/completions");
		assert_string_equal(q->auth, "Bearer sk-test-0123456789");
		assert_non_null(strstr(q->body, "\"model\":\"m-1\""));
		assert_non_null(strstr(q->body, "\"max_tokens\":64"));
		assert_null(strstr(q->body, "max_completion_tokens"));
		assert_null(strstr(q->body, "refusal"));
	}
	llmfx_stop(fx);
	free(keyfile);
	free(script);
	free(kvdir);
	remove_dir(dir);
}

/* The keyring watch: open on version 1 (a hard link of v1), the file
 * replaced by version 2, one check takes it. */
typedef struct kwatch_ctx {
	char path[256], v1[256], v2[256];
} kwatch_ctx;

static int run_keyring_watch(void *arg)
{
	const kwatch_ctx *ctx = arg;
	rt_keyring_watch *w = NULL;
	rt_keyring_ref *first = NULL, *next = NULL;
	int rc;

	unlink(ctx->path);
	if (link(ctx->v1, ctx->path) != 0)
		return art_error_set(AF_EIO, "link");
	rc = rt_keyring_watch__open(&w, &first, ctx->path);
	if (rc < 0)
		return rc;
	unlink(ctx->path);
	if (link(ctx->v2, ctx->path) != 0)
		rc = art_error_set(AF_EIO, "link");
	if (rc == 0) {
		rc = rt_keyring_watch__check(w, &next);
		/* Out of memory is not a verdict on the file: the next check
		 * (allocations work again) must take the new version. */
		if (rc == AF_ENOMEM) {
			rt_keyring_ref *again = NULL;
			int rc2 = rt_keyring_watch__check(w, &again);

			if (rc2 != 1 || !again)
				rc = art_error_set(AF_EINTERNAL, "the check after ENOMEM said %d, not "
						   "the new keyring", rc2);
			rt_keyring_ref__put(again);
		} else if (rc == 1) {
			rc = next && strcmp(next->sha256, first->sha256) != 0
				     ? 0 : art_error_set(AF_EINTERNAL, "not the new keyring");
		} else if (rc == 0) {
			rc = art_error_set(AF_EINTERNAL, "the new version was not seen");
		}
	}
	rt_keyring_ref__put(next);
	rt_keyring_ref__put(first);
	rt_keyring_watch__close(w);
	return rc;
}

static void save_keyring_version(const art_key *builder, const char *path)
{
	art_keyring *kr = NULL;

	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, builder, ART_ROLE_BUILDER, 0, 0), 0);
	assert_int_equal(keyring_fixture_save(kr, path), 0);
	art_keyring_free(kr);
}

static void test_faults__keyring_watch_reports_enomem(void **state)
{
	char *dir = temp_dir();
	art_key *builder = NULL;
	kwatch_ctx ctx;
	fi_op op = {"rt_keyring_watch open+check", run_keyring_watch, NULL, &ctx};

	(void)state;
	snprintf(ctx.path, sizeof(ctx.path), "%s/keyring.json", dir);
	snprintf(ctx.v1, sizeof(ctx.v1), "%s/v1.json", dir);
	snprintf(ctx.v2, sizeof(ctx.v2), "%s/v2.json", dir);
	assert_int_equal(art_key_generate(&builder, 2048), 0);
	save_keyring_version(builder, ctx.v1);
	save_keyring_version(builder, ctx.v2);
	if (fi_torture(&op) < 0)
		fail_msg("%s: see above", op.name);
	art_key_free(builder);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults__allocation_failures_report_enomem),
		cmocka_unit_test(test_faults__keyring_watch_reports_enomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
