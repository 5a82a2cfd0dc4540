/*
 * test_trace.c - W3C trace context parsing and formatting, the sampler, the
 * thread's current span, and the exporter's bounded queue (spans dropped
 * and counted while the collector does not answer; ending a span never
 * waits for it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "art/error.h"
#include "rt/metrics.h"
#include "rt/trace.h"
#include "llm_fixture.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char TP[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_trace__parse_and_format_round_trip(void **state)
{
	rt_trace_ctx c;
	char out[RT_TRACEPARENT_LEN + 1], tid[33], sid[17];

	(void)state;
	assert_int_equal(rt_trace_parse(&c, TP, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), 0);
	assert_int_equal(c.flags, 1);
	rt_trace_format(&c, out);
	assert_string_equal(out, TP);
	rt_trace_id_hex(&c, tid);
	rt_trace_span_hex(&c, sid);
	assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(sid, "00f067aa0ba902b7");
	assert_string_equal(c.state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
	/* unsampled; other flag bits are not propagated */
	assert_int_equal(rt_trace_parse(&c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", NULL), 0);
	assert_int_equal(c.flags, 0);
	/* a later version may append fields */
	assert_int_equal(rt_trace_parse(&c, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", NULL), 0);
}

static void test_trace__malformed_traceparent_is_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",          /* no flags */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       /* upper case */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",       /* zero trace id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       /* zero span id */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       /* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", /* 00 is exact */
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
	};
	rt_trace_ctx c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rt_trace_parse(&c, bad[i], NULL), AF_EINVAL);
	assert_int_equal(rt_trace_parse(&c, NULL, NULL), AF_EINVAL);
	/* a tracestate with control characters is dropped, the parent kept */
	assert_int_equal(rt_trace_parse(&c, TP, "a=b\r\nX-Evil: 1"), 0);
	assert_string_equal(c.state, "");
}

static void test_trace__sampler_follows_the_parent(void **state)
{
	rt_trace_config cfg;
	rt_trace_ctx parent;
	rt_span s;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.sampler = "parentbased_traceidratio";
	cfg.sampler_arg = "0";
	assert_int_equal(rt_trace_start(&cfg), 0);
	assert_int_equal(rt_trace_parse(&parent, TP, "k=v"), 0);
	rt_span_begin(&s, "child", RT_SPAN_SERVER, &parent);
	assert_int_equal(s.ctx.flags, 1);      /* a sampled parent: sampled */
	assert_memory_equal(s.ctx.trace_id, parent.trace_id, 16);
	assert_memory_not_equal(s.ctx.span_id, parent.span_id, 8);
	assert_string_equal(s.ctx.state, "k=v");
	assert_false(rt_span_recording(&s)); /* no exporter: ids, no record */
	rt_span_end(&s);
	rt_span_begin(&s, "root", RT_SPAN_SERVER, NULL);
	assert_int_equal(s.ctx.flags, 0);      /* ratio 0: a new trace is not sampled */
	rt_span_end(&s);

	cfg.sampler = "always_on";
	cfg.sampler_arg = NULL;
	assert_int_equal(rt_trace_start(&cfg), 0);
	parent.flags = 0;
	rt_span_begin(&s, "child", RT_SPAN_SERVER, &parent);
	assert_int_equal(s.ctx.flags, 1);      /* not parent-based */
	rt_span_end(&s);

	/* traceidratio 0.5: about half of new traces (2000 draws: 0.4 .. 0.6
	 * fails with a probability far below 1e-15) */
	{
		int i, n = 0;

		cfg.sampler = "traceidratio";
		cfg.sampler_arg = "0.5";
		assert_int_equal(rt_trace_start(&cfg), 0);
		for (i = 0; i < 2000; i++) {
			rt_span_begin(&s, "root", RT_SPAN_SERVER, NULL);
			n += s.ctx.flags & 1;
			rt_span_end(&s);
		}
		assert_in_range(n, 800, 1200);
	}

	cfg.sampler = "sometimes";
	assert_int_equal(rt_trace_start(&cfg), AF_EINVAL);
	cfg.sampler = "traceidratio";
	cfg.sampler_arg = "1.5";
	assert_int_equal(rt_trace_start(&cfg), AF_EINVAL);
	cfg.sampler = NULL;
	cfg.sampler_arg = NULL;
	cfg.endpoint = "ftp://collector";
	assert_int_equal(rt_trace_start(&cfg), AF_EINVAL);
}

static void test_trace__current_span_nests_and_restores(void **state)
{
	rt_span outer, inner;

	(void)state;
	assert_null(rt_span_current());
	rt_span_start(&outer, "outer", RT_SPAN_INTERNAL);
	assert_ptr_equal(rt_span_current(), &outer);
	rt_span_start(&inner, "inner", RT_SPAN_INTERNAL);
	assert_ptr_equal(rt_span_current(), &inner);
	assert_memory_equal(inner.ctx.trace_id, outer.ctx.trace_id, 16);
	rt_span_end(&inner);
	assert_ptr_equal(rt_span_current(), &outer);
	rt_span_end(&outer);
	assert_null(rt_span_current());
}

/* What the exporter reported through rt_trace_config.warn. */
typedef struct warned {
	unsigned n;
	char event[32], message[512];
} warned;

static void record_warning(void *ctx, const char *event, const char *message)
{
	warned *w = ctx;

	w->n++;
	snprintf(w->event, sizeof(w->event), "%s", event);
	snprintf(w->message, sizeof(w->message), "%s", message);
}

static void test_trace__full_queue_drops_and_never_blocks(void **state)
{
	warned w;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	rt_trace_config cfg;
	char url[64];
	uint64_t dropped0 = rt_metrics_get(RT_M_TRACE_DROPPED);
	uint64_t failed0 = rt_metrics_get(RT_M_TRACE_EXPORT_FAILURES);
	int fd = socket(AF_INET, SOCK_STREAM, 0), i;

	(void)state;
	/* a collector that accepts connections (the kernel does) and never answers */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(a.sin_port));
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = url;
	cfg.sampler = "always_on";
	cfg.queue_max = 8;
	cfg.batch_max = 1;
	cfg.delay_ms = 10;
	cfg.timeout_ms = 300;
	memset(&w, 0, sizeof(w));
	cfg.warn = record_warning;
	cfg.warn_ctx = &w;
	assert_int_equal(rt_trace_start(&cfg), 0);
	for (i = 0; i < 50; i++) {
		rt_span s;

		rt_span_start(&s, "work", RT_SPAN_INTERNAL);
		assert_true(rt_span_recording(&s));
		rt_span_set_str(&s, "k", "v");
		rt_span_set_int(&s, "n", i);
		rt_span_end(&s);
	}
	/* at most 8 queued and a few taken by the (stuck) exporter: the rest dropped */
	assert_true(rt_metrics_get(RT_M_TRACE_DROPPED) - dropped0 >= 30);
	rt_trace_stop();
	assert_true(rt_metrics_get(RT_M_TRACE_EXPORT_FAILURES) - failed0 >= 1);
	assert_int_equal(rt_metrics_get(RT_M_TRACE_EXPORTED), 0);
	/* each failure (up to 5, then one in 100) reported through the callback */
	assert_true(w.n >= 1 && w.n <= 5);
	assert_string_equal(w.event, "otlp_export");
	assert_non_null(strstr(w.message, "exporting 1 spans to "));
	assert_non_null(strstr(w.message, url));
	assert_non_null(strstr(w.message, " failed: "));
	close(fd);
}

static void test_trace__config_from_environment(void **state)
{
	rt_trace_config c;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
	setenv("OTEL_SERVICE_NAME", "svc", 1);
	setenv("OTEL_RESOURCE_ATTRIBUTES", "a=b", 1);
	setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "not-a-number", 1);
	memset(&c, 0, sizeof(c));
	rt_trace_config_env(&c);
	assert_string_equal(c.endpoint, "http://collector:4318");
	assert_string_equal(c.service_name, "svc");
	assert_string_equal(c.resource_attrs, "a=b");
	assert_string_equal(c.sampler, "parentbased_traceidratio");
	assert_string_equal(c.sampler_arg, "0.25");
	assert_int_equal(c.queue_max, 100);
	assert_int_equal(c.delay_ms, 0); /* garbage: the default */
	/* a flag wins over the variable; the traces-specific variable over the generic one */
	memset(&c, 0, sizeof(c));
	c.endpoint = "http://flag:1";
	rt_trace_config_env(&c);
	assert_string_equal(c.endpoint, "http://flag:1");
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:2/v1/traces", 1);
	memset(&c, 0, sizeof(c));
	rt_trace_config_env(&c);
	assert_string_equal(c.endpoint, "http://traces:2/v1/traces");
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_SERVICE_NAME");
	unsetenv("OTEL_RESOURCE_ATTRIBUTES");
	unsetenv("OTEL_TRACES_SAMPLER");
	unsetenv("OTEL_TRACES_SAMPLER_ARG");
	unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
}

/* The attribute of key in an OTLP attribute list, or NULL. */
static json_t *otlp_attr(json_t *list, const char *key)
{
	size_t i;

	for (i = 0; i < json_array_size(list); i++) {
		const char *k = json_string_value(json_object_get(json_array_get(list, i), "key"));

		if (k && strcmp(k, key) == 0)
			return json_object_get(json_array_get(list, i), "value");
	}
	return NULL;
}

/* A span with every kind of content reaches the collector as OTLP JSON: the
 * parent and its trace state, bool, int, string and list attributes, events
 * (past 32 counted as dropped), an error status; the resource names the
 * service from OTEL_RESOURCE_ATTRIBUTES and keeps its well-formed pairs. */
static void test_trace__export_carries_every_part_of_a_span(void **state)
{
	static const llmfx_reply ok[] = {{200, "{}", NULL, 0, 0}};
	llmfx *fx = NULL;
	rt_trace_config c;
	rt_trace_ctx parent;
	rt_span s;
	char url[128];
	json_t *root, *res, *span, *v;
	int i;

	(void)state;
	assert_int_equal(llmfx_start(&fx, ok, 1), 0);
	memset(&c, 0, sizeof(c));
	c.endpoint = llmfx_url(fx, url, sizeof(url), "/v1/traces///");
	c.resource_attrs = "service.name=from-attrs,team=blue,no-equals,=nokey,zone=";
	c.sampler = "parentbased_always_off";
	c.queue_max = 4;
	c.batch_max = 16; /* more than the queue: cut to it */
	c.delay_ms = 60000;
	assert_int_equal(rt_trace_start(&c), 0);
	assert_int_equal(rt_trace_start(&c), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "already running"));

	/* parentbased_always_off: a root is not recorded, a sampled child is */
	rt_span_start(&s, "root", RT_SPAN_INTERNAL);
	assert_false(rt_span_recording(&s));
	rt_span_set_bool(&s, "b", true); /* not recording: ignored */
	rt_span_add_event(&s, "e");
	rt_span_set_error(&s, "x");
	rt_span_end(&s);
	assert_int_equal(rt_trace_parse(&parent, TP, "vendor=v1"), 0);
	rt_span_begin(&s, "child", RT_SPAN_SERVER, &parent);
	assert_true(rt_span_recording(&s));
	rt_span_set_bool(&s, "cache.hit", true);
	rt_span_set_int(&s, "n", 7);
	rt_span_set_str(&s, "s", NULL);
	rt_span_add_list(&s, "gen_ai.response.finish_reasons", "stop");
	for (i = 0; i < 33; i++)
		rt_span_add_event(&s, "host_call");
	rt_span_add_event(&s, NULL);
	rt_span_set_error(&s, "guest trapped");
	rt_span_end(&s);
	rt_span_end(NULL);
	rt_trace_stop();
	rt_trace_stop(); /* twice: nothing left to stop */

	assert_int_equal(llmfx_count(fx), 1);
	assert_string_equal(llmfx_request_at(fx, 0)->path, "/v1/traces");
	root = json_loads(llmfx_request_at(fx, 0)->body, 0, NULL);
	assert_non_null(root);
	res = json_object_get(json_object_get(json_array_get(json_object_get(root, "resourceSpans"), 0),
					      "resource"),
			      "attributes");
	assert_string_equal(json_string_value(json_object_get(otlp_attr(res, "service.name"),
							      "stringValue")),
			    "from-attrs");
	assert_string_equal(json_string_value(json_object_get(otlp_attr(res, "team"), "stringValue")),
			    "blue");
	assert_string_equal(json_string_value(json_object_get(otlp_attr(res, "zone"), "stringValue")),
			    "");
	assert_null(otlp_attr(res, "no-equals"));
	span = json_array_get(
		json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(root,
											    "resourceSpans"),
									      0),
							       "scopeSpans"),
					       0),
				"spans"),
		0);
	assert_non_null(span);
	assert_string_equal(json_string_value(json_object_get(span, "name")), "child");
	assert_string_equal(json_string_value(json_object_get(span, "traceId")),
			    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(json_string_value(json_object_get(span, "parentSpanId")),
			    "00f067aa0ba902b7");
	assert_string_equal(json_string_value(json_object_get(span, "traceState")), "vendor=v1");
	v = json_object_get(span, "attributes");
	assert_true(json_is_true(json_object_get(otlp_attr(v, "cache.hit"), "boolValue")));
	assert_string_equal(json_string_value(json_object_get(otlp_attr(v, "s"), "stringValue")), "");
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(json_object_get(otlp_attr(v, "gen_ai.response.finish_reasons"),
									  "arrayValue"),
						       "values"),
				       0),
			"stringValue")),
		"stop");
	assert_int_equal(json_array_size(json_object_get(span, "events")), 32);
	assert_int_equal(json_integer_value(json_object_get(span, "droppedEventsCount")), 1);
	v = json_object_get(span, "status");
	assert_int_equal(json_integer_value(json_object_get(v, "code")), 2);
	assert_string_equal(json_string_value(json_object_get(v, "message")), "guest trapped");
	json_decref(root);
	llmfx_stop(fx);
}

/* Sampler names and ratios: the ones of the OpenTelemetry spec, nothing else. */
static void test_trace__samplers(void **state)
{
	rt_trace_config c;
	rt_span s;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.sampler = "always_off";
	assert_int_equal(rt_trace_start(&c), 0);
	rt_span_start(&s, "x", RT_SPAN_INTERNAL);
	assert_int_equal(s.ctx.flags & 1, 0);
	rt_span_end(&s);
	c.sampler = "traceidratio";
	c.sampler_arg = "0";
	assert_int_equal(rt_trace_start(&c), 0);
	rt_span_start(&s, "x", RT_SPAN_INTERNAL);
	assert_int_equal(s.ctx.flags & 1, 0);
	rt_span_end(&s);
	c.sampler_arg = "1";
	assert_int_equal(rt_trace_start(&c), 0);
	rt_span_start(&s, "x", RT_SPAN_INTERNAL);
	assert_int_equal(s.ctx.flags & 1, 1);
	rt_span_end(&s);
	c.sampler_arg = "0.5x";
	assert_int_equal(rt_trace_start(&c), AF_EINVAL);
	c.sampler_arg = "1.5";
	assert_int_equal(rt_trace_start(&c), AF_EINVAL);
	c.sampler = "sometimes";
	assert_int_equal(rt_trace_start(&c), AF_EINVAL);
	c.sampler = NULL;
	c.sampler_arg = NULL;
	c.endpoint = "ftp://collector";
	assert_int_equal(rt_trace_start(&c), AF_EINVAL);
	c.endpoint = NULL;
	assert_int_equal(rt_trace_start(&c), 0); /* back to the default */
	rt_span_start(&s, "x", RT_SPAN_INTERNAL);
	assert_int_equal(s.ctx.flags & 1, 1);
	rt_span_end(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace__parse_and_format_round_trip),
		cmocka_unit_test(test_trace__malformed_traceparent_is_refused),
		cmocka_unit_test(test_trace__sampler_follows_the_parent),
		cmocka_unit_test(test_trace__current_span_nests_and_restores),
		cmocka_unit_test(test_trace__full_queue_drops_and_never_blocks),
		cmocka_unit_test(test_trace__config_from_environment),
		/* last: they export (the queue test counts exports from zero) */
		cmocka_unit_test(test_trace__export_carries_every_part_of_a_span),
		cmocka_unit_test(test_trace__samplers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
