#!/usr/bin/env bash
# Observability end to end with the real binaries and real tools: a signed
# repository (release-coordinator -> backup-manager, senior-reviewer) built
# with --metrics-file, the textfile checked by Debian's promtool; the
# runtime served under load, its live /metrics checked by promtool and for
# the per-agent, per-route, gauge, build-info and process series.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
AF_RUNTIME=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
T=$(mktemp -d /tmp/af-obs.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid

fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks $2"; }; }
lacks() { if grep -q -- "$2" "$1"; then grep -- "$2" "$1" | head -3 >&2; fail "$1 has $2"; fi; }
[ -x "$PROMTOOL" ] || fail "promtool not found at $PROMTOOL (Debian package prometheus)"
wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

# ---- a repository: the composite agent and its callees ---------------------------
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder --not-after 2099-01-02T03:04:05Z \
	"$T/keys/builder.pub" > /dev/null
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer bases/base-engineer \
	backup-manager senior-reviewer release-coordinator; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1

echo "-- build --metrics-file: a textfile promtool accepts"
"$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2 --metrics-file "$T/build.prom" > "$T/build.out"
"$PROMTOOL" check metrics < "$T/build.prom" > "$T/promtool.out" 2>&1 ||
	{ cat "$T/promtool.out" "$T/build.prom" >&2; fail "promtool refuses the build textfile"; }
has "$T/build.prom" '^agentfactory_build_agents{result="built"} 3$'
has "$T/build.prom" '^agentfactory_build_agents{result="failed"} 0$'
has "$T/build.prom" '^agentfactory_build_success 1$'
has "$T/build.prom" '^agentfactory_build_stage_seconds{stage="wasm"} [0-9.]*$'
has "$T/build.prom" '^agentfactory_build_agent_seconds{agent="senior-reviewer",version="[0-9.]*"} '
# a wasm stage took time: not all zero
grep -q '^agentfactory_build_stage_seconds{stage="wasm"} 0.000000$' "$T/build.prom" &&
	fail "the wasm stage time is zero"
echo "-- a rebuild: all cache hits"
"$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2 --metrics-file "$T/build.prom" > /dev/null
"$PROMTOOL" check metrics < "$T/build.prom" > "$T/promtool.out" 2>&1 || fail "promtool: rebuild"
has "$T/build.prom" '^agentfactory_build_cache_hits 3$'
has "$T/build.prom" '^agentfactory_build_agents{result="built"} 0$'
echo "-- an unwritable metrics file is an error, named"
set +e
"$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" --metrics-file "$T/no/such/dir/m.prom" > /dev/null 2> "$T/err"
got=$?
set -e
[ "$got" = 2 ] || fail "unwritable --metrics-file: exit $got"
has "$T/err" 'metrics-file'

# ---- the runtime under a little load ------------------------------------------------
"$AF" run backup-manager --store "$T/store" --keyring "$T/kr.json" --data "$T/data" \
	--kv-set 'releases/r1={"version":"1.4.0"}' --input '{"inputs":{"release":"r1"}}' > /dev/null
cat > "$T/review.json" <<'J'
{"responses":[{"role":"assistant","content":"{\"summary\":\"ready\",\"verdict\":\"approve\"}"}]}
J
"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --data "$T/data" --llm-script "$T/review.json" \
	--listen 127.0.0.1:0 --port-file "$T/rt.port" --log "$T/rt.log" &
pids+=($!)
wait_file "$T/rt.port" || { cat "$T/rt.log" >&2; fail "the runtime did not start"; }
U="http://$(cat "$T/rt.port")"
for i in 1 2 3; do
	curl -s -H 'Content-Type: application/json' -d '{"inputs":{"release":"r1"}}'  \
		"$U/v1/agents/backup-manager/invoke" > "$T/out"
	has "$T/out" '"ok":true'
done
curl -s -H 'Content-Type: application/json' -d '{"inputs":{}}' \
	"$U/v1/agents/backup-manager/invoke" > "$T/out"    # invalid_input
curl -s -H 'Content-Type: application/json' -d '{}' "$U/v1/agents/no-such-agent/invoke" > /dev/null
curl -s "$U/v1/agents/backup-manager" > /dev/null
curl -s "$U/v1/agents/%2e%2e/secret?x=1" > /dev/null
curl -s "$U/totally/unknown/path/123" > /dev/null

echo "-- live /metrics: promtool check metrics is clean"
curl -s "$U/metrics" > "$T/metrics"
"$PROMTOOL" check metrics < "$T/metrics" > "$T/promtool.out" 2>&1 ||
	{ cat "$T/promtool.out" >&2; fail "promtool refuses /metrics"; }
BM_V=$(sed -n 's/^version: //p' "$SRC/templates/backup-manager.yaml")
has "$T/metrics" "^agentfactory_agent_invocations_total{agent=\"backup-manager\",version=\"$BM_V\",code=\"ok\"} 3\$"
has "$T/metrics" "^agentfactory_agent_invocations_total{agent=\"backup-manager\",version=\"$BM_V\",code=\"invalid_input\"} 1\$"
has "$T/metrics" "^agentfactory_agent_invoke_seconds_bucket{agent=\"backup-manager\",version=\"$BM_V\",code=\"ok\",le=\"+Inf\"} 3\$"
echo "-- bounded: an agent that is not served has no series"
lacks "$T/metrics" 'agent="no-such-agent"'
has "$T/metrics" '^agentfactory_errors_total{code="not_found"} '
echo "-- the HTTP histogram by templated route and code, never the raw path"
has "$T/metrics" '^agentfactory_http_request_seconds_count{route="/v1/agents/{name}/invoke",code="200"} 3$'
has "$T/metrics" '^agentfactory_http_request_seconds_count{route="/v1/agents/{name}",code="200"} 1$'
has "$T/metrics" '^agentfactory_http_request_seconds_count{route="other",code="404"} '
lacks "$T/metrics" 'totally/unknown'
lacks "$T/metrics" 'secret'
lacks "$T/metrics" 'status="'
has "$T/metrics" '^agentfactory_http_responses_total{code="200"} '
echo "-- gauges, build info, process metrics"
has "$T/metrics" '^agentfactory_build_info{version="[^"]*",compat="[^"]*"} 1$'
has "$T/metrics" '^agentfactory_agents{state="served"} 3$'
has "$T/metrics" '^agentfactory_agents{state="refused"} 0$'
has "$T/metrics" '^agentfactory_module_cache_modules [1-9]'
has "$T/metrics" '^agentfactory_invocations_in_flight 0$'
has "$T/metrics" '^agentfactory_keyring_key_expiry_timestamp_seconds{key="[0-9a-f]\{16\}",role="builder"} 4071006245$'
has "$T/metrics" '^agentfactory_release_served 0$'
has "$T/metrics" '^agentfactory_sandbox_slots{state="in_use"} '
has "$T/metrics" '^process_cpu_seconds_total '
has "$T/metrics" '^process_resident_memory_bytes [1-9]'
has "$T/metrics" '^process_open_fds [1-9]'
has "$T/metrics" '^process_start_time_seconds [1-9]'
echo "OK"
