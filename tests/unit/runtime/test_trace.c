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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
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

static void test_trace__full_queue_drops_and_never_blocks(void **state)
{
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
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace__parse_and_format_round_trip),
		cmocka_unit_test(test_trace__malformed_traceparent_is_refused),
		cmocka_unit_test(test_trace__sampler_follows_the_parent),
		cmocka_unit_test(test_trace__current_span_nests_and_restores),
		cmocka_unit_test(test_trace__full_queue_drops_and_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
