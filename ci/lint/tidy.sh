#!/bin/sh
# tidy.sh - clang-tidy (configuration: .clang-tidy) over the given sources
# with the project's include paths. Used by `make lint`.
set -eu
flags="-std=gnu17 -D_GNU_SOURCE -DAF_VERSION=\"lint\" -Iartifacts/include -Ipipeline/include \
-Icodegen/include -Iruntime/include $(pkg-config --cflags libgit2 yaml-0.1 libcrypto libpcre2-8 \
jansson lmdb libzstd libcurl libmicrohttpd 2>/dev/null)"
tidy=$(command -v clang-tidy-19 || command -v clang-tidy)
# shellcheck disable=SC2086
exec "$tidy" --quiet "$@" -- $flags
