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

#include "art/error.h"
#include "art/util.h"
#include "rt/kv.h"
#include "rt/llm.h"
#include "rt/metrics.h"
#include "rt/tokens.h"
#include "rt/tools.h"

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

static void test_faults__allocation_failures_report_enomem(void **state)
{
	char *dir = temp_dir(), *script = NULL, *kvdir = NULL;
	FILE *f;
	size_t i;

	(void)state;
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
		};

		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (fi_torture(&ops[i]) < 0)
				fail_msg("%s: see above", ops[i].name);
	}
	free(script);
	free(kvdir);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults__allocation_failures_report_enomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
