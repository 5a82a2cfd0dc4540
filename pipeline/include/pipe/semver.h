/*
 * pipe/semver.h - semantic versions (semver.org 2.0.0): parsing, precedence
 * and the pins templates use in `extends` (`1.2.3` exact, `^1.2.3` caret).
 *
 * Parsing is strict: MAJOR.MINOR.PATCH with no leading zeros, an optional
 * `-prerelease` (dot-separated identifiers of [0-9A-Za-z-], numeric ones
 * without leading zeros) and an optional `+build` (dot-separated identifiers
 * of [0-9A-Za-z-], leading zeros allowed). No `v` prefix, no whitespace.
 * MAJOR, MINOR and PATCH must fit in 64 bits (larger numbers are refused);
 * numeric prerelease identifiers may have any length. Build metadata is
 * ignored by precedence and by pins.
 */
#ifndef PIPE_SEMVER_H
#define PIPE_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A parsed version. pre and build point into the parsed string (borrowed,
 * valid as long as that string); their length is 0 when absent. */
typedef struct pipe_semver {
	uint64_t major, minor, patch;
	const char *pre;    /* the prerelease, without the '-' */
	size_t pre_len;
	const char *build;  /* the build metadata, without the '+' */
	size_t build_len;
} pipe_semver;

/**
 * Parse a version.
 * @param[out] out  filled on success; points into s
 * @param[in]  s    NUL-terminated, e.g. "1.2.3-rc.1+build.5"
 * @return 0, or AF_EINVAL when s is not a semantic version (message says why)
 */
int pipe_semver_parse(pipe_semver *out, const char *s);

/** True when s is a semantic version. s may be NULL (false). */
bool pipe_semver_valid(const char *s);

/**
 * semver.org precedence: numeric core first, then a version with a
 * prerelease is lower than the same version without; prerelease
 * identifiers compare left to right, numeric ones numerically, alphanumeric
 * ones in ASCII order, numeric lower than alphanumeric, a shorter list lower
 * when all of its identifiers are equal. Build metadata is ignored.
 * @return <0, 0 or >0 as a is lower, equal or higher than b
 */
int pipe_semver_cmp(const pipe_semver *a, const pipe_semver *b);

/**
 * Does version satisfy pin?
 *  - "X.Y.Z[-pre]"   exact: same precedence (build metadata ignored)
 *  - "^X.Y.Z[-pre]"  caret: version >= X.Y.Z[-pre] and, for X > 0, the same
 *                    major; for X == 0, the same major and minor (0.Y).
 *                    Ordinary precedence decides, so ^1.0.0 accepts
 *                    1.1.0-rc.1 (it is above 1.0.0) but not 1.0.0-rc.1.
 * @param[out] out      the answer
 * @param[in]  version  a semantic version
 * @param[in]  pin      a pin as above
 * @return 0, or AF_EINVAL when version or pin does not parse
 */
int pipe_semver_satisfies(bool *out, const char *version, const char *pin);

/** True when pin is a valid pin (see pipe_semver_satisfies). NULL: false. */
bool pipe_semver_pin_valid(const char *pin);

#endif
