/*
 * limits.c - the one table of a template's limits (see art/limits.h) and
 * its reader over the resolved template's JSON. docs/templates.md shows the
 * same defaults and ranges; test_limits keeps the table and the readers
 * (template checker, code generator, runtime) in agreement.
 */
#include "art/limits.h"

#include "art/error.h"

#include <string.h>

const art_limit art_limits[ART_LIMIT_COUNT] = {
	[ART_LIMIT_MAX_STEPS] = {"max_steps", 8, 1, 1000, "model turns per invocation"},
	[ART_LIMIT_TIMEOUT_MS] = {"timeout_ms", 30000, 1, 600000, "milliseconds per invocation"},
	/* The 64 KiB stack takes the first page, so 2 is the least that runs. */
	[ART_LIMIT_MEMORY_PAGES] = {"memory_pages", 64, 2, 65536,
				    "64 KiB pages of guest memory; the stack takes one"},
};

const art_limit *art_limits_find(const char *name)
{
	size_t i;

	for (i = 0; name && i < ART_LIMIT_COUNT; i++)
		if (strcmp(art_limits[i].name, name) == 0)
			return &art_limits[i];
	return NULL;
}

bool art_limit_in_range(const art_limit *l, long long v)
{
	return v >= (long long)l->min && v <= (long long)l->max;
}

static uint32_t *field(art_limit_values *v, art_limit_id id)
{
	switch (id) {
	case ART_LIMIT_MAX_STEPS:
		return &v->max_steps;
	case ART_LIMIT_TIMEOUT_MS:
		return &v->timeout_ms;
	case ART_LIMIT_MEMORY_PAGES:
	default:
		return &v->memory_pages;
	}
}

void art_limits_defaults(art_limit_values *out)
{
	size_t i;

	for (i = 0; i < ART_LIMIT_COUNT; i++)
		*field(out, (art_limit_id)i) = art_limits[i].def;
}

int art_limits_read(art_limit_values *out, const json_t *limits, int code, const char *context)
{
	size_t i;

	art_limits_defaults(out);
	if (!limits || json_is_null(limits))
		return 0;
	if (!json_is_object(limits))
		return art_error_set(code, "%s: limits must be a map", context);
	for (i = 0; i < ART_LIMIT_COUNT; i++) {
		const art_limit *l = &art_limits[i];
		const json_t *v = json_object_get(limits, l->name);

		if (!v || json_is_null(v))
			continue;
		if (!json_is_integer(v) || !art_limit_in_range(l, (long long)json_integer_value(v))) {
			art_limits_defaults(out);
			return art_error_set(code, "%s: limits.%s must be an integer from %u to %u (%s)",
					     context, l->name, l->min, l->max, l->meaning);
		}
		*field(out, (art_limit_id)i) = (uint32_t)json_integer_value(v);
	}
	return 0;
}
