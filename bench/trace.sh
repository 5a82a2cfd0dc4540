#!/usr/bin/env bash
# Tracing overhead with wrk, on loopback: invocations of senior-reviewer
# (scripted model: a server span, invoke_agent, verify_load, instantiate,
# guest and a chat span per request) without an exporter, then exporting to
# a fixture OTLP collector (python3, reads and discards) with
# OTEL_TRACES_SAMPLER=traceidratio at 0, 0.1 and 1.0. Spans exported and
# dropped are read from the server's /metrics. Figures, not assertions.
#
# Usage: AF=... AF_RUNTIME=... bash bench/trace.sh
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
T=$(mktemp -d /tmp/af-bench-trace.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
PID=
COLL=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "$COLL" ] && kill "$COLL" 2>/dev/null; rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid

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
cat > "$T/collector.py" <<'PY'
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port)); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
python3 "$T/collector.py" "$T/coll.port" &
COLL=$!
for _ in $(seq 1 100); do [ -s "$T/coll.port" ] && break; sleep 0.05; done
OTLP="http://127.0.0.1:$(cat "$T/coll.port")"

row() { # LABEL CONNS WRK-ARGS...
	local label=$1 c=$2 out rps p50 p99 non2xx m exported dropped
	shift 2
	out=$(wrk -t2 -c"$c" -d"${SECS}s" --latency "$@")
	rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sleep 1 # let the exporter catch up before reading its counters
	m=$(curl -s "$URL/metrics")
	exported=$(awk '/^agentfactory_trace_spans_exported_total/ {print $2}' <<<"$m")
	dropped=$(awk '/^agentfactory_trace_spans_dropped_total/ {print $2}' <<<"$m")
	echo "| $label | $c | $rps | $p50 | $p99 | ${non2xx:-0} | $exported | $dropped |"
}

echo "wrk -t2, ${SECS} s per row, on $(nproc) cores shared by wrk, the server and the collector"
echo
echo "| tracing | connections | requests/s | p50 | p99 | non-2xx | spans exported | spans dropped |"
echo "|---|---|---|---|---|---|---|---|"
for c in $CONNS; do
	start
	row "no exporter" "$c" -s "$T/llm.lua" "$URL/v1/agents/senior-reviewer/invoke"
	stop
	for ratio in 0 0.1 1.0; do
		OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=$ratio OTEL_BSP_SCHEDULE_DELAY=200 \
			start --otlp-endpoint "$OTLP"
		row "OTLP, ratio $ratio" "$c" -s "$T/llm.lua" "$URL/v1/agents/senior-reviewer/invoke"
		stop
	done
done
