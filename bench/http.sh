#!/usr/bin/env bash
# HTTP benchmark of agentfactory-runtime with wrk, on loopback: the HTTP
# floor (GET /healthz), invocations of an LLM agent (senior-reviewer, the
# scripted provider: instantiate + guest + one host model call, no I/O),
# the same with a bearer token, and a steps agent that writes its key-value
# store (backup-manager: 2 LMDB write transactions per request, each synced
# to disk). wrk and the server share this machine's cores, so the figures
# are a floor for a dedicated server. Figures, not assertions.
#
# Usage: AF=... AF_RUNTIME=... bash bench/http.sh
# Env: BENCH_SECONDS (per run, default 10), BENCH_CONNECTIONS (default "16 64"),
#      BENCH_THREADS (server --threads, default: the server's default);
#      AF_BENCH_SMOKE=1: one second, 16 connections (proves it still runs).
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:-$(pwd)}
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-16 64}
if [ -n "${AF_BENCH_SMOKE:-}" ]; then SECS=1 CONNS=16; fi
command -v wrk >/dev/null || { echo "wrk is not installed (make deps)" >&2; exit 2; }
T=$(mktemp -d /tmp/af-bench-http.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
git init -q "$T/repo" && mkdir -p "$T/repo/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$T/repo/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$T/repo/templates" -name '*.yaml') >/dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
"$AF" build --repo "$T/repo" --keyring "$T/kr.json" --builder-key "$T/keys/builder.key" \
	--store "$T/store" >/dev/null 2>&1

mkdir -p "$T/data/kv"
printf 'backup-manager\\00releases/r1\n{"version":"1.4.0"}\n' >"$T/seed.txt"
mdb_load -T -f "$T/seed.txt" "$T/data/kv"
cat >"$T/script.json" <<'EOF'
{"responses": [{"role": "assistant", "content": "{\"summary\": \"ok\", \"findings\": [], \"verdict\": \"approve\"}"}]}
EOF
TOKEN=$("$RT" token new --role invoke --name bench --tokens "$T/tokens")

start() { # extra server args...
	rm -f "$T/port"
	"$RT" --store "$T/store" --keyring "$T/kr.json" --data "$T/data" --llm-script "$T/script.json" \
		--listen 127.0.0.1:0 --port-file "$T/port" --log "$T/runtime.log" \
		${BENCH_THREADS:+--threads "$BENCH_THREADS"} "$@" 2>>"$T/runtime.log" &
	PID=$!
	for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || { tail "$T/runtime.log" >&2; exit 1; }
	URL="http://$(cat "$T/port")"
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }

post_script() { # FILE BODY [TOKEN]
	{
		echo 'wrk.method = "POST"'
		echo "wrk.body = '$2'"
		echo 'wrk.headers["Content-Type"] = "application/json"'
		[ -z "${3:-}" ] || echo "wrk.headers[\"Authorization\"] = \"Bearer $3\""
	} >"$1"
}
post_script "$T/llm.lua" '{"inputs":{"change":"add a retry loop","focus":"errors"}}'
post_script "$T/llm-auth.lua" '{"inputs":{"change":"add a retry loop","focus":"errors"}}' "$TOKEN"
post_script "$T/steps.lua" '{"inputs":{"release":"r1"}}'

row() { # LABEL CONNS WRK-ARGS...
	local label=$1 c=$2 out rps p50 p99 non2xx
	shift 2
	out=$(wrk -t2 -c"$c" -d"${SECS}s" --latency "$@")
	rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	echo "| $label | $c | $rps | $p50 | $p99 | ${non2xx:-0} |"
	LAST_RPS=$rps LAST_P99=$p99
}
. "$SRC/bench/lib/figure.sh"
to_ms() { # wrk's latency (123.45us, 1.23ms, 1.2s) in ms
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

# Each measured request must succeed once first: a benchmark of error
# answers measures nothing (and the smoke run in CI catches it).
check_ok() { # URL BODY
	local code
	code=$(curl -s -o "$T/check.out" -w '%{http_code}' -XPOST -H 'Content-Type: application/json' -d "$2" "$1")
	[ "$code" = 200 ] || { echo "benchmark request failed ($code): $1: $(cat "$T/check.out")" >&2; exit 1; }
}
start
check_ok "$URL/v1/agents/senior-reviewer/invoke" '{"inputs":{"change":"add a retry loop","focus":"errors"}}'
check_ok "$URL/v1/agents/backup-manager/invoke" '{"inputs":{"release":"r1"}}'
stop

echo "wrk -t2, ${SECS} s per row, on $(nproc) cores shared by wrk and the server"
echo
echo "| request | connections | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
start
for c in $CONNS; do
	row "GET /healthz (HTTP floor)" "$c" "$URL/healthz"
	hz=$LAST_RPS
	row "invoke senior-reviewer (LLM agent, scripted model)" "$c" -s "$T/llm.lua" \
		"$URL/v1/agents/senior-reviewer/invoke"
	figure "invokes/s, senior-reviewer (scripted model), $c connections" "$LAST_RPS" "req/s" "GET /healthz" "$hz"
	figure "invoke p99, senior-reviewer, $c connections" "$(to_ms "$LAST_P99")" "ms"
	row "invoke backup-manager (steps, 2 synced kv writes)" "$c" -s "$T/steps.lua" \
		"$URL/v1/agents/backup-manager/invoke"
	figure "invokes/s, backup-manager (2 synced kv writes), $c connections" "$LAST_RPS" "req/s" "GET /healthz" "$hz"
done
metrics=$(curl -s "$URL/metrics")
stop
start --tokens "$T/tokens"
for c in $CONNS; do
	row "invoke senior-reviewer with a bearer token" "$c" -s "$T/llm-auth.lua" \
		"$URL/v1/agents/senior-reviewer/invoke"
done
stop
echo
# The server's own view of the first server's invocations.
awk '
	/^agentfactory_instantiate_seconds_sum/ {is=$2} /^agentfactory_instantiate_seconds_count/ {ic=$2}
	/^agentfactory_invoke_seconds_sum/ {vs=$2} /^agentfactory_invoke_seconds_count/ {vc=$2}
	END { if (ic > 0) printf "server-side means: instantiate %.1f us, whole invocation %.1f us (%d invocations)\n",
	                         is / ic * 1e6, vs / vc * 1e6, vc }' <<<"$metrics"
