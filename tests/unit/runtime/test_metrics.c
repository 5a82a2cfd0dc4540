/*
 * test_metrics.c - counters, labeled counters, histograms and the Prometheus
 * text rendering, including concurrent updates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/util.h"
#include "rt/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int reset(void **state)
{
	(void)state;
	rt_metrics_reset();
	return 0;
}

static void test_metrics__counters_and_labels(void **state)
{
	(void)state;
	rt_metrics_inc(RT_M_INVOCATIONS);
	rt_metrics_inc(RT_M_INVOCATIONS);
	rt_metrics_inc_label(RT_M_ERRORS, "timeout");
	rt_metrics_inc_label(RT_M_ERRORS, "timeout");
	rt_metrics_inc_label(RT_M_ERRORS, "not_found");
	assert_int_equal(rt_metrics_get(RT_M_INVOCATIONS), 2);
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "timeout"), 2);
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "not_found"), 1);
	assert_int_equal(rt_metrics_get_label(RT_M_ERRORS, "never"), 0);
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "timeout"), 0);
}

static void test_metrics__label_overflow_goes_to_other(void **state)
{
	char label[32];
	int i;

	(void)state;
	for (i = 0; i < 300; i++) {
		snprintf(label, sizeof(label), "l%d", i);
		rt_metrics_inc_label(RT_M_DENIALS, label);
	}
	/* 128 slots: 127 distinct labels plus "other" holding the rest. */
	assert_int_equal(rt_metrics_get_label(RT_M_DENIALS, "l0"), 1);
	assert_true(rt_metrics_get_label(RT_M_DENIALS, "other") >= 300 - 127);
}

static void test_metrics__render_prometheus_text(void **state)
{
	art_buf b = ART_BUF_INIT;

	(void)state;
	rt_metrics_inc(RT_M_MODULE_CACHE_HITS);
	rt_metrics_inc_label(RT_M_SIGNATURE_FAILURES, "digest \"x\"\n");
	rt_metrics_observe(RT_M_INSTANTIATE_SECONDS, 1.5e-6);   /* le 2.5e-06 */
	rt_metrics_observe(RT_M_INSTANTIATE_SECONDS, 0.2);      /* le 0.25 */
	rt_metrics_observe(RT_M_INSTANTIATE_SECONDS, 100);      /* +Inf only */
	assert_int_equal(rt_metrics_render(&b), 0);
	assert_non_null(strstr(b.data, "# TYPE agentfactory_module_cache_hits_total counter\n"
				       "agentfactory_module_cache_hits_total 1\n"));
	assert_non_null(strstr(b.data, "agentfactory_signature_failures_total{reason=\"digest \\\"x\\\"\\n\"} 1\n"));
	assert_non_null(strstr(b.data, "# TYPE agentfactory_instantiate_seconds histogram\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_bucket{le=\"1e-06\"} 0\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_bucket{le=\"2.5e-06\"} 1\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_bucket{le=\"0.1\"} 1\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_bucket{le=\"0.25\"} 2\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_bucket{le=\"30\"} 2\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_count 3\n"));
	assert_non_null(strstr(b.data, "agentfactory_instantiate_seconds_sum 100.200001500\n"));
	art_buf_free(&b);
}

static void *hammer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 100000; i++) {
		rt_metrics_inc(RT_M_HTTP_REQUESTS);
		rt_metrics_inc_label(RT_M_HTTP_STATUS, (i & 1) ? "200" : "404");
		rt_metrics_http_response("/v1/agents", (i & 1) ? 200 : 404, 0.001);
		rt_metrics_agent_invocation("echo", "1.0.0", (i & 1) ? NULL : "timeout", 0.001);
	}
	return NULL;
}

static void test_metrics__concurrent_updates_are_not_lost(void **state)
{
	pthread_t t[4];
	int i;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(rt_metrics_get(RT_M_HTTP_REQUESTS), 400000);
	assert_int_equal(rt_metrics_get_label(RT_M_HTTP_STATUS, "200"), 200000);
	assert_int_equal(rt_metrics_get_label(RT_M_HTTP_STATUS, "404"), 200000);
	assert_int_equal(rt_metrics_get_http("/v1/agents", 200), 200000);
	assert_int_equal(rt_metrics_get_http("/v1/agents", 404), 200000);
	assert_int_equal(rt_metrics_get_agent("echo", "1.0.0", "ok"), 200000);
	assert_int_equal(rt_metrics_get_agent("echo", "1.0.0", "timeout"), 200000);
}

static void test_metrics__per_agent_and_route_series(void **state)
{
	art_buf b = ART_BUF_INIT;

	(void)state;
	rt_metrics_agent_invocation("echo", "1.2.0", NULL, 0.003);
	rt_metrics_agent_invocation("echo", "1.2.0", "timeout", 2);
	rt_metrics_http_response("/v1/agents/{name}/invoke", 200, 0.004);
	assert_int_equal(rt_metrics_render(&b), 0);
	assert_non_null(strstr(b.data, "# TYPE agentfactory_agent_invoke_seconds histogram\n"));
	assert_non_null(strstr(b.data, "agentfactory_agent_invoke_seconds_bucket{agent=\"echo\","
				       "version=\"1.2.0\",code=\"ok\",le=\"0.005\"} 1\n"));
	assert_non_null(strstr(b.data, "agentfactory_agent_invoke_seconds_count{agent=\"echo\","
				       "version=\"1.2.0\",code=\"timeout\"} 1\n"));
	assert_non_null(strstr(b.data, "# TYPE agentfactory_agent_invocations_total counter\n"));
	assert_non_null(strstr(b.data, "agentfactory_agent_invocations_total{agent=\"echo\","
				       "version=\"1.2.0\",code=\"timeout\"} 1\n"));
	assert_non_null(strstr(b.data, "agentfactory_http_request_seconds_count{route=\"/v1/agents/"
				       "{name}/invoke\",code=\"200\"} 1\n"));
	assert_null(strstr(b.data, "status="));
	art_buf_free(&b);
}

static void test_metrics__series_overflow_is_bounded(void **state)
{
	char name[32];
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "agent-%d", i);
		rt_metrics_agent_invocation(name, "1.0.0", NULL, 0.001);
	}
	/* RT_METRICS_SERIES_MAX - 1 distinct series, the rest under "other" */
	assert_int_equal(rt_metrics_get_agent("agent-0", "1.0.0", "ok"), 1);
	assert_int_equal(rt_metrics_get_agent("other", "other", "other"),
			 1000 - (RT_METRICS_SERIES_MAX - 1));
	/* a label value cannot forge a separator */
	rt_metrics_agent_invocation("a\x1f" "b", "1", NULL, 0.001);
	assert_int_equal(rt_metrics_get_agent("other", "other", "other"),
			 1000 - (RT_METRICS_SERIES_MAX - 1) + 1);
}

static void test_metrics__gauges_build_info_and_process(void **state)
{
	static const rt_metrics_key_expiry keys[] = {{"0123456789abcdef0123", "builder", 1900000000}};
	rt_metrics_gauges g;
	art_buf b = ART_BUF_INIT;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.channel = "prod";
	g.release = 7;
	g.seq = 12;
	g.release_expires = 1800000000;
	g.keys = keys;
	g.n_keys = 1;
	g.agents_served = 3;
	g.agents_refused = 1;
	assert_int_equal(rt_metrics_render_gauges(&b, &g), 0);
	assert_non_null(strstr(b.data, "agentfactory_build_info{version=\""));
	assert_non_null(strstr(b.data, "agentfactory_release_served{channel=\"prod\"} 7\n"));
	assert_non_null(strstr(b.data, "agentfactory_channel_sequence_served{channel=\"prod\"} 12\n"));
	assert_non_null(strstr(b.data, "agentfactory_release_expiry_timestamp_seconds{channel=\"prod\"} 1800000000\n"));
	assert_non_null(strstr(b.data, "agentfactory_keyring_key_expiry_timestamp_seconds{key=\"0123456789abcdef\",role=\"builder\"} 1900000000\n"));
	assert_non_null(strstr(b.data, "agentfactory_agents{state=\"served\"} 3\n"));
	assert_non_null(strstr(b.data, "agentfactory_agents{state=\"refused\"} 1\n"));
	assert_non_null(strstr(b.data, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(b.data, "process_resident_memory_bytes "));
	assert_non_null(strstr(b.data, "process_open_fds "));
	assert_non_null(strstr(b.data, "process_start_time_seconds 1"));
	art_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_metrics__counters_and_labels, reset),
		cmocka_unit_test_setup(test_metrics__label_overflow_goes_to_other, reset),
		cmocka_unit_test_setup(test_metrics__render_prometheus_text, reset),
		cmocka_unit_test_setup(test_metrics__concurrent_updates_are_not_lost, reset),
		cmocka_unit_test_setup(test_metrics__per_agent_and_route_series, reset),
		cmocka_unit_test_setup(test_metrics__series_overflow_is_bounded, reset),
		cmocka_unit_test_setup(test_metrics__gauges_build_info_and_process, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
