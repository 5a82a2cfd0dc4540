#!/usr/bin/env bash
# Capacity figures for sizing a fleet (docs/operations.md, "Capacity"): one
# runtime pinned to ONE core (taskset), wrk pinned to the other, on loopback:
#   - requests per second per core for GET /healthz (the HTTP floor), for
#     GET /v1/agents and for invocations of senior-reviewer (instantiate +
#     guest + one scripted model call, no network model latency);
#   - the runtime's memory: RSS idle after startup, after the load (agents
#     loaded, pools warm), and its startup time to a listening socket.
# The store is the fleet fixture (tests/integration/lib/fixture_store.sh),
# served following a channel as in the Helm chart, with a bearer token.
# Figures, not assertions. On a shared machine the figures are a floor.
#
# Usage: AF=... AF_RUNTIME=... AF_SRCDIR=... bash bench/capacity.sh
# Env: BENCH_SECONDS (per run, default 10), BENCH_CONNECTIONS (default 16);
#      AF_BENCH_SMOKE=1: one second per run (proves it still runs).
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:-$(pwd)}
export AF_SRCDIR=$SRC
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-16}
[ -n "${AF_BENCH_SMOKE:-}" ] && SECS=1
command -v wrk >/dev/null || { echo "wrk is not installed (make deps)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset is required (util-linux)" >&2; exit 2; }
T=$(mktemp -d /tmp/af-bench-capacity.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT

# shellcheck source=../tests/integration/lib/fixture_store.sh
source "$SRC/tests/integration/lib/fixture_store.sh"
fixture_store "$T/fx" >/dev/null || exit 1
fx_promote blue 1
TOKEN=$("$RT" token new --role invoke --name bench --tokens "$T/tokens" | head -1)

NCPU=$(nproc)
SERVER_CPU=0
CLIENT_CPU=$([ "$NCPU" -gt 1 ] && echo 1 || echo 0)
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

t0=$(date +%s%N)
taskset -c "$SERVER_CPU" "$RT" serve --store "$FX_STORE" --keyring "$FX_RT_KEYRING" --channel blue \
	--tokens "$T/tokens" --llm-script "$FX_SCRIPT" --listen 127.0.0.1:0 --port-file "$T/port" \
	--threads 2 --log "$T/runtime.log" 2>>"$T/runtime.log" &
PID=$!
for _ in $(seq 1 400); do [ -s "$T/port" ] && break; sleep 0.025; done
[ -s "$T/port" ] || { tail "$T/runtime.log" >&2; exit 1; }
t1=$(date +%s%N)
URL="http://$(cat "$T/port")"
sleep 1
RSS_IDLE=$(rss_kib "$PID")

cat >"$T/invoke.lua" <<EOF
wrk.method = "POST"
wrk.body = '$FX_BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF
cat >"$T/get.lua" <<EOF
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF

echo "Runtime pinned to CPU $SERVER_CPU, wrk to CPU $CLIENT_CPU ($NCPU CPUs), $CONNS connections, ${SECS}s per row."
echo
echo "| request | req/s per core | p50 | p99 | non-2xx |"
echo "|---|---:|---:|---:|---:|"
row() { # LABEL PATH [WRK ARGS...]
	local label=$1 path=$2 out rps p50 p99 non2xx
	shift 2
	out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$@" "$URL$path")
	rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	echo "| $label | $rps | $p50 | $p99 | ${non2xx:-0} |"
}
row "GET /healthz" /healthz
row "GET /v1/agents (token)" /v1/agents -s "$T/get.lua"
row "POST invoke senior-reviewer (token)" /v1/agents/senior-reviewer/invoke -s "$T/invoke.lua"
RSS_LOADED=$(rss_kib "$PID")

echo
echo "| memory and startup | value |"
echo "|---|---:|"
echo "| startup to listening (store verified, channel resolved) | $(((t1 - t0) / 1000000)) ms |"
echo "| RSS idle after startup | $((RSS_IDLE / 1024)) MiB ($RSS_IDLE KiB) |"
echo "| RSS after the load (agent loaded, workers warm) | $((RSS_LOADED / 1024)) MiB ($RSS_LOADED KiB) |"
kill -TERM "$PID"
wait "$PID" || true
PID=
