/*
 * fake_native.h - a hand-made native agent module (the art_wasm_native_v1
 * ABI of docs/abi.md) written in plain C, for the tests of exec.c and
 * loader.c: what a wasm2c guest can do (answer anything, point anywhere,
 * call the host functions with any argument, trap, grow its memory) without
 * a wasm toolchain, one command at a time.
 *
 * In-process (test_exec.c) the test sets fake.cmd and reads what the guest
 * saw back from `fake`. Built as a .so (test_loader_bytes.c compiles
 * tests/fixtures/runtime/fake_native_so.c, which includes this file) the
 * descriptor's fields are set with -D flags, and only "describe" matters.
 *
 * The guest's linear memory is a wasm_rt_memory_t allocated through the
 * host's art_wasm_rt_v1 (the sandbox's reservations), so the host's bounds
 * checks run against a real memory; the fake never writes outside it.
 */
#ifndef FAKE_NATIVE_H
#define FAKE_NATIVE_H

#include "art/wasm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasm-rt.h>

#ifndef FAKE_DESCRIBE
#define FAKE_DESCRIBE                                                                              \
	"{\"capabilities\":[\"clock\",\"kv.read\",\"llm_chat\",\"log\",\"random\",\"tool_call\"],"  \
	"\"limits\":{\"max_steps\":2,\"memory_pages\":64,\"timeout_ms\":5000},"                   \
	"\"model\":{\"name\":\"m\",\"provider\":\"openai\"},\"name\":\"fake\","                    \
	"\"tools\":[{\"capability\":\"clock\",\"name\":\"clock_now\"},"                            \
	"{\"capability\":\"kv.read\",\"name\":\"kv_get\"},"                                        \
	"{\"capability\":\"kv.write\",\"name\":\"kv_put\"},"                                       \
	"{\"capability\":\"shell\",\"name\":\"shell_exec\"}],\"version\":\"1.0.0\"}"
#endif

typedef struct fake_instance {
	wasm_rt_memory_t mem;
	const art_wasm_host_v1 *host;
	void *ctx;
	uint32_t heap, n_alloc;
} fake_instance;

/* The test's controls and what the guest saw (in-process use). */
static struct {
	const char *cmd;            /* what handle does (see fake_handle) */
	const char *describe;       /* NULL: FAKE_DESCRIBE */
	uint32_t alloc_fail_at;     /* 0: never; n: the nth af_alloc of an instance answers 0 */
	uint32_t initial_pages;     /* 0: 1 */
	int32_t rc[8];              /* host function results, in call order */
	uint32_t n_rc;
	char read[256];             /* what result_read copied last */
	uint64_t clock;
	unsigned instantiated, freed;
} fake;

static const art_wasm_rt_v1 *fake_rt;

static int fake_init(const art_wasm_rt_v1 *rt)
{
#ifdef FAKE_INIT_FAILS
	return -1;
#endif
	if (!rt || fake_rt == rt)
		return -1;
	fake_rt = rt;
	return 0;
}

static void fake_instantiate(void *instance, const art_wasm_host_v1 *host, void *ctx)
{
	fake_instance *fi = instance;

	fi->host = host;
	fi->ctx = ctx;
	fi->heap = 1024;
	fake.instantiated++;
	fake_rt->allocate_memory(&fi->mem, fake.initial_pages ? fake.initial_pages : 1, 65536);
}

static void fake_free(void *instance)
{
	fake_instance *fi = instance;

	fake.freed++;
	fake_rt->free_memory(&fi->mem);
}

static void *fake_memory(void *instance)
{
	return &((fake_instance *)instance)->mem;
}

static void fake_initialize(void *instance)
{
	(void)instance;
}

static uint32_t fake_abi_version(void *instance)
{
	(void)instance;
	return 1;
}

static uint32_t fake_alloc(void *instance, uint32_t size)
{
	fake_instance *fi = instance;
	uint32_t p = fi->heap;
	uint64_t end = (uint64_t)p + ((size + 7u) & ~7u);

	if (fake.alloc_fail_at && ++fi->n_alloc == fake.alloc_fail_at)
		return 0;
	if (fake.cmd && strcmp(fake.cmd, "bad_len_ptr") == 0 && size == 4)
		return (uint32_t)fi->mem.size; /* the answer's length slot: past the end */
	if (end > fi->mem.size) {
		uint64_t more = (end - fi->mem.size + 65535) / 65536;

		if (more > 65536 || fake_rt->grow_memory(&fi->mem, (uint32_t)more) == UINT32_MAX)
			return 0;
	}
	fi->heap = (uint32_t)end;
	return p;
}

/* Copy s into the guest's memory; its offset (0 when it does not fit). */
static uint32_t fake_put(fake_instance *fi, const char *s, size_t n)
{
	uint32_t p = fake_alloc(fi, (uint32_t)n);

	if (p && (uint64_t)p + n <= fi->mem.size)
		memcpy(fi->mem.data + p, s, n);
	return p;
}

static void fake_set_len(fake_instance *fi, uint32_t out_len_ptr, uint32_t len)
{
	if ((uint64_t)out_len_ptr + 4 <= fi->mem.size)
		memcpy(fi->mem.data + out_len_ptr, &len, 4);
}

static uint32_t fake_answer(fake_instance *fi, uint32_t out_len_ptr, const char *text)
{
	size_t n = strlen(text);

	fake_set_len(fi, out_len_ptr, (uint32_t)n);
	return fake_put(fi, text, n);
}

static uint32_t fake_describe_fn(void *instance, uint32_t out_len_ptr)
{
	fake_instance *fi = instance;
	const char *d = fake.describe ? fake.describe : FAKE_DESCRIBE;

	if (strcmp(d, "trap") == 0)
		fake_rt->trap(5);
	if (strcmp(d, "huge") == 0) { /* a length over RT_MAX_DESCRIBE */
		fake_set_len(fi, out_len_ptr, (2u << 20));
		return 0;
	}
	return fake_answer(fi, out_len_ptr, d);
}

static void fake_record(int32_t rc)
{
	if (fake.n_rc < sizeof(fake.rc) / sizeof(fake.rc[0]))
		fake.rc[fake.n_rc++] = rc;
}

/* A host call with the text arg in guest memory; its result recorded. */
static int32_t fake_host_text(fake_instance *fi, int32_t (*fn)(void *, uint32_t, uint32_t),
			      const char *arg)
{
	uint32_t p = fake_put(fi, arg, strlen(arg));
	int32_t rc = fn(fi->ctx, p, (uint32_t)strlen(arg));

	fake_record(rc);
	return rc;
}

/* Read the pending result (if any) into fake.read. */
static void fake_read_result(fake_instance *fi, int32_t len)
{
	uint32_t p;
	int32_t got;

	if (len <= 0)
		return;
	if (len > (int32_t)sizeof(fake.read) - 1)
		len = (int32_t)sizeof(fake.read) - 1;
	p = fake_alloc(fi, (uint32_t)len);
	got = fi->host->result_read(fi->ctx, p, (uint32_t)len);
	fake_record(got);
	if (got > 0 && (uint64_t)p + (uint32_t)got <= fi->mem.size) {
		memcpy(fake.read, fi->mem.data + p, (size_t)got);
		fake.read[got] = '\0';
	}
}

/*
 * Commands (fake.cmd; prefix ':' argument):
 *   echo                 {"ok":true} (the input ignored)
 *   answer:TEXT          TEXT as the answer, whatever it is
 *   oob_answer           an answer pointer past the end of memory
 *   bad_len_ptr          the answer's length slot past the end of memory
 *   too_long             an answer length over RT_MAX_RESPONSE
 *   trap:N               the wasm-rt trap N
 *   log:LEVEL            log "hello" at LEVEL
 *   log_oob              log from a pointer past the end of memory
 *   logs:N               N log lines
 *   clock / clocks:N     clock_now_ms (N times)
 *   random:LEN           random_get of LEN bytes
 *   random_oob           random_get into a range past the end
 *   llm:N                N model calls with {"messages":[]}, the last answer read
 *   llm_big              a model request over RT_MAX_HOST_REQUEST
 *   tool:JSON            tool_call(JSON), the answer read
 *   tools:N              N tool_calls of clock_now
 *   read_nothing         result_read with nothing pending
 *   read_oob             a pending result read to a pointer past the end
 *   grow:N               grow memory by N pages; ok:false "oom" when refused
 */
static uint32_t fake_handle(void *instance, uint32_t in, uint32_t in_len, uint32_t out_len_ptr)
{
	fake_instance *fi = instance;
	const char *cmd = fake.cmd ? fake.cmd : "echo";
	const char *arg = strchr(cmd, ':') ? strchr(cmd, ':') + 1 : "";
	long n = strtol(arg, NULL, 10);
	long i;

	(void)in;
	(void)in_len;
	if (strncmp(cmd, "answer:", 7) == 0)
		return fake_answer(fi, out_len_ptr, arg);
	if (strcmp(cmd, "oob_answer") == 0) {
		fake_set_len(fi, out_len_ptr, 16);
		return (uint32_t)fi->mem.size - 8;
	}
	if (strcmp(cmd, "too_long") == 0) {
		fake_set_len(fi, out_len_ptr, (16u << 20) + 1);
		return 0;
	}
	if (strncmp(cmd, "trap:", 5) == 0)
		fake_rt->trap((int)n);
	if (strncmp(cmd, "log:", 4) == 0) {
		uint32_t p = fake_put(fi, "hello", 5);

		fi->host->log(fi->ctx, (uint32_t)n, p, 5);
	}
	if (strcmp(cmd, "log_oob") == 0)
		fi->host->log(fi->ctx, 1, (uint32_t)fi->mem.size - 2, 5);
	if (strncmp(cmd, "logs:", 5) == 0) {
		uint32_t p = fake_put(fi, "line", 4);

		for (i = 0; i < n; i++)
			fi->host->log(fi->ctx, 1, p, 4);
	}
	if (strcmp(cmd, "clock") == 0)
		fake.clock = fi->host->clock_now_ms(fi->ctx);
	if (strncmp(cmd, "clocks:", 7) == 0)
		for (i = 0; i < n; i++)
			fake.clock = fi->host->clock_now_ms(fi->ctx);
	if (strncmp(cmd, "random:", 7) == 0) {
		uint32_t p = fake_alloc(fi, n > 65536 * 2 ? 16 : (uint32_t)n);

		fake_record(fi->host->random_get(fi->ctx, p, (uint32_t)n));
	}
	if (strcmp(cmd, "random_oob") == 0)
		fake_record(fi->host->random_get(fi->ctx, (uint32_t)fi->mem.size - 4, 16));
	if (strncmp(cmd, "llm:", 4) == 0) {
		int32_t rc = 0;

		for (i = 0; i < n; i++)
			rc = fake_host_text(fi, fi->host->llm_chat, "{\"messages\":[]}");
		fake_read_result(fi, rc);
	}
	if (strcmp(cmd, "llm_big") == 0) {
		uint32_t p = fake_alloc(fi, (1u << 20) + 1);

		fake_record(fi->host->llm_chat(fi->ctx, p, (1u << 20) + 1));
	}
	if (strncmp(cmd, "tool:", 5) == 0)
		fake_read_result(fi, fake_host_text(fi, fi->host->tool_call, arg));
	if (strncmp(cmd, "tools:", 6) == 0)
		for (i = 0; i < n; i++)
			fake_host_text(fi, fi->host->tool_call, "{\"tool\":\"clock_now\",\"args\":{}}");
	if (strcmp(cmd, "read_nothing") == 0)
		fake_record(fi->host->result_read(fi->ctx, 1024, 16));
	if (strcmp(cmd, "read_oob") == 0) {
		fake_host_text(fi, fi->host->tool_call, "{\"tool\":\"clock_now\",\"args\":{}}");
		fi->host->result_read(fi->ctx, (uint32_t)fi->mem.size - 2, 64);
	}
	if (strncmp(cmd, "grow:", 5) == 0 &&
	    fake_rt->grow_memory(&fi->mem, (uint32_t)n) == UINT32_MAX)
		return fake_answer(fi, out_len_ptr,
				   "{\"ok\":false,\"error\":{\"code\":\"oom\",\"message\":\"no memory\"}}");
	return fake_answer(fi, out_len_ptr, "{\"ok\":true}");
}

#ifndef FAKE_NATIVE_ABI
#define FAKE_NATIVE_ABI ART_WASM_NATIVE_ABI_VERSION
#endif
#ifndef FAKE_GUEST_ABI
#define FAKE_GUEST_ABI 1
#endif
#ifndef FAKE_MEMCHECK
#define FAKE_MEMCHECK ART_WASM_MEMCHECK_GUARD
#endif
#ifndef FAKE_WASM_RT
#define FAKE_WASM_RT "wabt-1.0.32"
#endif
#ifndef FAKE_INSTANCE_SIZE
#define FAKE_INSTANCE_SIZE ((uint32_t)sizeof(fake_instance))
#endif
#ifndef FAKE_INSTANCE_ALIGN
#define FAKE_INSTANCE_ALIGN ((uint32_t)_Alignof(fake_instance))
#endif
#ifndef FAKE_HANDLE
#define FAKE_HANDLE fake_handle
#endif

static const art_wasm_native_v1 fake_module = {
	FAKE_NATIVE_ABI, FAKE_GUEST_ABI,   FAKE_MEMCHECK,    FAKE_INSTANCE_SIZE,
	FAKE_INSTANCE_ALIGN, FAKE_WASM_RT, fake_init,        fake_instantiate,
	fake_free,       fake_memory,      fake_initialize,  fake_abi_version,
	fake_alloc,      fake_describe_fn, FAKE_HANDLE,
};

#endif
