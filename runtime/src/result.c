/*
 * result.c - rt_invoke_result (rt/result.h): a leaf that the engine, one
 * invocation (exec.c) and the agent_invoke tool (tools.c) all use, so that
 * tools.c needs nothing of engine.c (ci/lint/deps.sh).
 */
#include "rt/result.h"

#include <stdlib.h>
#include <string.h>

void rt_invoke_result_clear(rt_invoke_result *res)
{
	if (!res)
		return;
	free(res->error_message);
	free(res->body);
	memset(res, 0, sizeof(*res));
}
