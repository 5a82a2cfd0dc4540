/*
 * art/placeholder.h - the placeholder grammar of docs/templates.md, in one
 * place for the template checks (pipeline/) and the C generator (codegen/).
 *
 * A placeholder is "{{", optional spaces/tabs, a name (identifiers
 * [A-Za-z_][A-Za-z0-9_-]* joined by '.'), optional spaces/tabs, "}}".
 * Every "{{" must open one.
 */
#ifndef ART_PLACEHOLDER_H
#define ART_PLACEHOLDER_H

#include <stddef.h>

/** One placeholder found in a string. Offsets are bytes into that string. */
typedef struct art_placeholder {
	size_t start;     /* offset of the opening "{{" */
	size_t len;       /* bytes up to and including the closing "}}" */
	size_t name_off;  /* offset of the name (spaces trimmed) */
	size_t name_len;
} art_placeholder;

/**
 * Find the next placeholder in s[*pos .. len).
 * @param[in]     s, len  the string (need not be NUL-terminated)
 * @param[in,out] pos     where to start; advanced past what was found
 * @param[out]    out     the placeholder (on 1), or where the malformed one
 *                        starts (on AF_ESYNTAX: start, and len up to the
 *                        closing "}}" or the end of the line; name_len 0)
 * @return 1 found, 0 no more, AF_ESYNTAX a "{{" that opens no valid
 *         placeholder (*pos is advanced past it, so scanning can go on)
 */
int art_placeholder_next(const char *s, size_t len, size_t *pos, art_placeholder *out);

#endif
