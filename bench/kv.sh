#!/usr/bin/env bash
# Durable key-value writes per second (bench/bench_kv.c): 1 writer (one
# synced commit per put) against 8/64/256 concurrent writers (group commit).
# Run by `make bench` / `make bench-smoke` with BUILD=build/<config>.
set -euo pipefail
SRC=${AF_SRCDIR:-$(pwd)}
BUILD=${BUILD:-build/release}
cd "$SRC"
BIN="$BUILD/bench/bench_kv"
[ -x "$BIN" ] || { echo "$BIN is missing: run it through 'make bench'" >&2; exit 2; }
if [ -n "${AF_BENCH_SMOKE:-}" ]; then "$BIN" 0.3; else "$BIN" "${BENCH_SECONDS:-3}"; fi
