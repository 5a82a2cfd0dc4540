/*
 * limits.h - the one table of a template's `limits:` (docs/templates.md):
 * each limit's name, default, inclusive range and meaning.
 *
 * Three readers share it, so what `check` accepts is what `build` compiles
 * and what the runtime enforces: the pipeline's YAML template checker
 * (range and names, with file:line), the code generator and the runtime
 * (both read the resolved template as JSON, through art_limits_read).
 */
#ifndef ART_LIMITS_H
#define ART_LIMITS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Index of each limit in art_limits[]. */
typedef enum art_limit_id {
	ART_LIMIT_MAX_STEPS,
	ART_LIMIT_TIMEOUT_MS,
	ART_LIMIT_MEMORY_PAGES,
	ART_LIMIT_COUNT
} art_limit_id;

/** One limit: `limits.<name>`, an integer in [min, max], def when unset. */
typedef struct art_limit {
	const char *name;    /* the key under limits: ("max_steps") */
	uint32_t def;        /* the value when the key is missing or null */
	uint32_t min, max;   /* inclusive range */
	const char *meaning; /* what one unit is, for messages and docs */
} art_limit;

/** The table, indexed by art_limit_id. */
extern const art_limit art_limits[ART_LIMIT_COUNT];

/** A template's limits, resolved (every field within its range). */
typedef struct art_limit_values {
	uint32_t max_steps;    /* model turns (tool calls: a multiple of it) */
	uint32_t timeout_ms;   /* wall-clock time of one invocation */
	uint32_t memory_pages; /* guest linear memory, 64 KiB pages */
} art_limit_values;

/**
 * The limit called name.
 * @return a pointer into art_limits[] (static), or NULL if there is no
 *         such limit (the caller reports an unknown field)
 */
const art_limit *art_limits_find(const char *name);

/** Whether v is within l's range. */
bool art_limit_in_range(const art_limit *l, long long v);

/**
 * The defaults of every limit (a template without `limits:`).
 */
void art_limits_defaults(art_limit_values *out);

/**
 * Read a resolved template's `limits` object: a missing or null key takes
 * its default; any other key is ignored (the template checker refuses
 * unknown keys, with the line).
 * @param[out] out     every field set (the defaults on error)
 * @param limits       the object; NULL or JSON null: all defaults
 * @param code         the error code to return for a bad value (AF_EINVAL
 *                     for a template being built, AF_ECORRUPT for a built
 *                     agent's description)
 * @param context      the start of the message ("codegen: NAME"), not NULL
 * @return 0, or code when limits is not an object or a value is not an
 *         integer within its range: the message names the key, the range
 *         and what a unit is ("CONTEXT: limits.max_steps must be an
 *         integer from 1 to 1000 (model turns per invocation)")
 */
int art_limits_read(art_limit_values *out, const json_t *limits, int code, const char *context);

#endif
