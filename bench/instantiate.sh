#!/usr/bin/env bash
# Runtime core benchmark (see bench/README.md): warm instantiation and
# invocation p50/p99, cold load, sandbox overhead (native vs wasm2c vs V8).
# Run by `make bench` with BUILD=build/<config>.
set -euo pipefail
SRC=${AF_SRCDIR:-$(pwd)}
BUILD=${BUILD:-build/release}
cd "$SRC"
cc -std=gnu17 -O2 -D_GNU_SOURCE \
	-Iartifacts/include -Ipipeline/include -Icodegen/include -Iruntime/include -Itests/unit \
	bench/bench_instantiate.c \
	"$BUILD/lib/libaf_pipeline.a" "$BUILD/lib/libaf_codegen.a" \
	"$BUILD/lib/libaf_runtime.a" "$BUILD/lib/libaf_artifacts.a" \
	$(pkg-config --libs libgit2 yaml-0.1 libcrypto libpcre2-8 jansson lmdb libzstd libmicrohttpd) \
	-lpthread -ldl -o "$BUILD/bench_instantiate"
AF_SRCDIR="$SRC" "$BUILD/bench_instantiate" "${AF_BENCH_ITERATIONS:-100000}"
