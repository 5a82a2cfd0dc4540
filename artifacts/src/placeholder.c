/*
 * placeholder.c - the placeholder grammar (art/placeholder.h), the only
 * implementation: pipeline/src/template.c checks templates with it and
 * codegen/src/cgen.c renders with it, so the two cannot disagree on what a
 * placeholder is.
 */
#include "art/placeholder.h"

#include "art/error.h"

#include <stdbool.h>

static bool ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool ident_char(char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}

int art_placeholder_next(const char *s, size_t len, size_t *pos, art_placeholder *out)
{
	size_t i = *pos, j, start;

	while (i + 1 < len && !(s[i] == '{' && s[i + 1] == '{'))
		i++;
	if (i + 1 >= len) {
		*pos = len;
		return 0;
	}
	start = i;
	j = i + 2;
	while (j < len && (s[j] == ' ' || s[j] == '\t'))
		j++;
	out->start = start;
	out->name_off = j;
	for (;;) {
		if (j >= len || !ident_start(s[j]))
			goto malformed;
		while (j < len && ident_char(s[j]))
			j++;
		if (j < len && s[j] == '.') {
			j++;
			continue;
		}
		break;
	}
	out->name_len = j - out->name_off;
	while (j < len && (s[j] == ' ' || s[j] == '\t'))
		j++;
	if (j + 1 < len && s[j] == '}' && s[j + 1] == '}') {
		out->len = j + 2 - start;
		*pos = j + 2;
		return 1;
	}
malformed:
	/* Extend to the closing braces on the same line, for the message. */
	for (j = start + 2; j < len && s[j] != '\n'; j++)
		if (j + 1 < len && s[j] == '}' && s[j + 1] == '}') {
			j += 2;
			break;
		}
	out->len = j - start;
	out->name_off = start;
	out->name_len = 0;
	*pos = j;
	return AF_ESYNTAX;
}
