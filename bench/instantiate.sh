#!/usr/bin/env bash
# Runtime core benchmark (see bench/README.md): warm instantiation and
# invocation p50/p99, cold load, sandbox overhead (native vs wasm2c vs V8).
# Run by `make bench` (or `make bench-smoke`), which builds
# $BUILD/bench/bench_instantiate with the project's own flags and libraries.
# AF_BENCH_SMOKE=1: few iterations, one repeat (proves it still runs).
set -euo pipefail
SRC=${AF_SRCDIR:-$(pwd)}
BUILD=${BUILD:-build/release}
cd "$SRC"
BIN="$BUILD/bench/bench_instantiate"
[ -x "$BIN" ] || { echo "$BIN is missing: run it through 'make bench'" >&2; exit 2; }
if [ -n "${AF_BENCH_SMOKE:-}" ]; then
	AF_BENCH_REPEATS=1 AF_SRCDIR="$SRC" "$BIN" 2000
else
	AF_SRCDIR="$SRC" "$BIN" "${AF_BENCH_ITERATIONS:-100000}"
fi
