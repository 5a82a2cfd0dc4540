/*
 * textnorm.h - private to pipeline/src: the form of a text that policy text
 * rules also run on, so that spelling tricks do not sidestep them.
 */
#ifndef PIPE_TEXTNORM_H
#define PIPE_TEXTNORM_H

#include <stddef.h>

/**
 * Normalise UTF-8 text for matching (see textnorm.c for every step).
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @return 0, or AF_ENOMEM; text that is not valid UTF-8 is returned with
 *         the ASCII steps only
 */
int pipe_text_normalize(char **out, size_t *out_len, const char *text, size_t len);

#endif
