#!/usr/bin/env bash
# Observability end to end with the real binaries and real tools: a signed
# repository (release-coordinator -> backup-manager, senior-reviewer) built
# with --metrics-file, the textfile checked by Debian's promtool; the
# runtime served under load, its live /metrics checked by promtool and for
# the per-agent, per-route, gauge, build-info and process series. Then
# tracing: a runtime exporting OTLP/HTTP JSON to a fixture collector
# (python3, decodes what it receives) calls an OpenAI-compatible fixture
# model; one request with a W3C traceparent must come back as one trace:
# server span -> invoke_agent release-coordinator -> verify_load,
# instantiate, guest -> execute_tool agent_invoke -> invoke_agent
# senior-reviewer -> guest -> chat (GenAI attributes), the model having
# received the chat span's traceparent; sampling is parent-based with ratio
# 0 (an unsampled or new trace exports nothing); every log line of the
# request carries its trace id.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
AF_RUNTIME=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
T=$(mktemp -d /tmp/af-obs.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
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
wait_file() { for _ in $(seq 1 600); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

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

# ---- tracing ---------------------------------------------------------------------------
cat > "$T/collector.py" <<'PY'
import http.server, json, os, sys
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces" or not self.headers.get("Content-Type", "").startswith("application/json"):
            self.send_response(404); self.end_headers(); return
        doc = json.loads(body)   # refuse (500) what does not decode
        for rs in doc["resourceSpans"]:
            res = {a["key"]: list(a["value"].values())[0] for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    sp["_resource"] = res
                    sp["_scope"] = ss["scope"]["name"]
                    out.write(json.dumps(sp) + "\n")
        out.flush()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port)); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
cat > "$T/model.py" <<'PY'
import http.server, json, os, sys
seen = open(sys.argv[2], "a")
ANSWER = json.dumps({"summary": "ready", "findings": [], "verdict": "approve"})
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        seen.write(json.dumps({"traceparent": self.headers.get("traceparent"),
                               "tracestate": self.headers.get("tracestate"),
                               "model": req.get("model")}) + "\n"); seen.flush()
        body = json.dumps({"id": "chatcmpl-fixture-1", "object": "chat.completion",
                           "model": "fixture-model-2026",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": ANSWER}}],
                           "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port)); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
python3 "$T/collector.py" "$T/collector.port" "$T/spans.jsonl" 2> "$T/collector.err" &
pids+=($!)
python3 "$T/model.py" "$T/model.port" "$T/model.seen" 2> "$T/model.err" &
pids+=($!)
wait_file "$T/collector.port" || fail "the collector did not start"
wait_file "$T/model.port" || fail "the model fixture did not start"
: > "$T/key"
OTEL_SERVICE_NAME=af-obs-test OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test,team=obs \
OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0 OTEL_BSP_SCHEDULE_DELAY=100 \
"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --data "$T/data" \
	--llm-provider openai --llm-base-url "http://127.0.0.1:$(cat "$T/model.port")" \
	--otlp-endpoint "http://127.0.0.1:$(cat "$T/collector.port")" \
	--listen 127.0.0.1:0 --port-file "$T/rt2.port" --log "$T/rt2.log" &
rt2=$!
pids+=($rt2)
wait_file "$T/rt2.port" || { cat "$T/rt2.log" >&2; fail "the tracing runtime did not start"; }
U2="http://$(cat "$T/rt2.port")"
TID=0af7651916cd43dd8448eb211c80319c
PSID=b7ad6b7169203331
echo "-- a sampled request across two agents and a model call"
curl -s -H 'Content-Type: application/json' -H "traceparent: 00-$TID-$PSID-01" \
	-H 'tracestate: vendor=opaque' -d '{"inputs":{"release":"r1","summary":"Adds retries."}}' \
	"$U2/v1/agents/release-coordinator/invoke" > "$T/out"
has "$T/out" '"ok":true'
has "$T/out" '"verdict":"approve"'
echo "-- an unsampled parent and a new trace (ratio 0): nothing exported for them"
UTID=11111111111111111111111111111111
curl -s -H 'Content-Type: application/json' -H "traceparent: 00-$UTID-$PSID-00" \
	-d '{"inputs":{"release":"r1"}}' "$U2/v1/agents/backup-manager/invoke" > /dev/null
curl -s -H 'Content-Type: application/json' -d '{"inputs":{"release":"r1"}}' \
	"$U2/v1/agents/backup-manager/invoke" > /dev/null
echo "-- a malformed traceparent starts a new trace (not sampled here)"
curl -s -H 'Content-Type: application/json' -H "traceparent: 00-$TID-0000000000000000-01" \
	-d '{"inputs":{"release":"r1"}}' "$U2/v1/agents/backup-manager/invoke" > /dev/null
for _ in $(seq 1 100); do
	grep -q '"name": "POST /v1/agents/{name}/invoke"' "$T/spans.jsonl" 2>/dev/null && break
	sleep 0.1
done
curl -s "$U2/metrics" > "$T/metrics2"
kill -TERM "$rt2"
wait "$rt2" || fail "the tracing runtime did not stop cleanly"
has "$T/metrics2" '^agentfactory_trace_spans_exported_total [1-9]'
has "$T/metrics2" '^agentfactory_trace_spans_dropped_total 0$'

echo "-- the collector's spans: one trace, parent/child links, GenAI attributes"
python3 - "$T/spans.jsonl" "$T/model.seen" "$TID" "$PSID" "$UTID" <<'PY' || fail "trace checks"
import json, sys
spans = [json.loads(l) for l in open(sys.argv[1])]
seen = [json.loads(l) for l in open(sys.argv[2])]
tid, psid, utid = sys.argv[3], sys.argv[4], sys.argv[5]
def attrs(s): return {a["key"]: list(a["value"].values())[0] for a in s.get("attributes", [])}
def fail(m):
    for s in spans: print(s["traceId"], s["spanId"], s.get("parentSpanId"), s["name"], file=sys.stderr)
    sys.exit("FAIL: " + m)
trace = [s for s in spans if s["traceId"] == tid]
if len(trace) != len(spans): fail("spans of other traces were exported (ratio 0, unsampled parent)")
if any(s["traceId"] == utid for s in spans): fail("the unsampled parent's trace was exported")
by_id = {s["spanId"]: s for s in trace}
if len(by_id) != len(trace): fail("duplicate span ids")
def one(name, parent=None):
    c = [s for s in trace if s["name"] == name and (parent is None or s.get("parentSpanId") == parent["spanId"])]
    if len(c) != 1: fail("expected one span %r under %r, got %d" % (name, parent and parent["name"], len(c)))
    return c[0]
server = one("POST /v1/agents/{name}/invoke")
if server.get("parentSpanId") != psid: fail("the server span's parent is not the caller's span")
if server["kind"] != 2: fail("server span kind")
if server.get("traceState") != "vendor=opaque": fail("tracestate not kept")
a = attrs(server)
if a.get("http.route") != "/v1/agents/{name}/invoke" or a.get("http.response.status_code") != "200":
    fail("server attributes: %r" % a)
if server["_resource"].get("service.name") != "af-obs-test": fail("OTEL_SERVICE_NAME")
if server["_resource"].get("deployment.environment") != "test" or server["_resource"].get("team") != "obs":
    fail("OTEL_RESOURCE_ATTRIBUTES: %r" % server["_resource"])
coord = one("invoke_agent release-coordinator", server)
one("verify_load", coord); one("instantiate", coord)
g1 = one("guest", coord)
if not any(e.get("name") == "host.log" for e in g1.get("events", [])):
    fail("the guest span has no host.log event (each host call is a span or an event)")
if attrs(g1).get("agentfactory.host_calls") in (None, "0"): fail("host_calls on the guest span")
tools = [s for s in trace if s["name"] == "execute_tool agent_invoke" and s.get("parentSpanId") == g1["spanId"]]
if len(tools) != 2: fail("expected two agent_invoke tool spans under the coordinator's guest, got %d" % len(tools))
callees = {}
for t in tools:
    for s in trace:
        if s.get("parentSpanId") == t["spanId"]: callees[s["name"]] = s
for want in ("invoke_agent backup-manager", "invoke_agent senior-reviewer"):
    if want not in callees: fail("no %s under an agent_invoke span" % want)
rev = callees["invoke_agent senior-reviewer"]
g2 = one("guest", rev)
chat = [s for s in trace if s["name"].startswith("chat") and s.get("parentSpanId") == g2["spanId"]]
if len(chat) != 1: fail("expected one chat span under senior-reviewer's guest")
chat = chat[0]
c = attrs(chat)
if chat["kind"] != 3: fail("chat span kind is not CLIENT")
need = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai",
        "gen_ai.response.model": "fixture-model-2026", "gen_ai.response.id": "chatcmpl-fixture-1",
        "gen_ai.usage.input_tokens": "42", "gen_ai.usage.output_tokens": "7"}
for k, v in need.items():
    if c.get(k) != v: fail("chat attribute %s = %r, want %r" % (k, c.get(k), v))
if not c.get("gen_ai.request.model"): fail("no gen_ai.request.model")
if chat["name"] != "chat " + c["gen_ai.request.model"]: fail("chat span name")
fr = [a for a in chat["attributes"] if a["key"] == "gen_ai.response.finish_reasons"]
if not fr or fr[0]["value"]["arrayValue"]["values"] != [{"stringValue": "stop"}]: fail("finish_reasons")
tool = [s for s in trace if s["name"] == "execute_tool kv_get"]
if not tool: fail("no span for backup-manager's kv_get host call")
# the model received the chat span's context
tp = [x for x in seen if x["traceparent"] and x["traceparent"].split("-")[1] == tid]
if len(tp) != 1: fail("the model saw %d calls of the trace: %r" % (len(tp), seen))
if tp[0]["traceparent"] != "00-%s-%s-01" % (tid, chat["spanId"]): fail("traceparent sent: %r" % tp[0])
if tp[0]["tracestate"] != "vendor=opaque": fail("tracestate not propagated to the model")
for s in trace:
    if int(s["endTimeUnixNano"]) < int(s["startTimeUnixNano"]): fail("span ends before it starts")
    p = s.get("parentSpanId")
    if p and p != psid and p not in by_id: fail("dangling parent of %s" % s["name"])
    if p in by_id and not (int(by_id[p]["startTimeUnixNano"]) <= int(s["startTimeUnixNano"])):
        fail("child %s starts before its parent" % s["name"])
print("trace ok: %d spans" % len(trace))
PY
echo "-- the trace id is in every log line of the request"
grep -q "\"trace_id\":\"$TID\"" "$T/rt2.log" || { cat "$T/rt2.log" >&2; fail "no log line with the trace id"; }
grep '"event":"http_request"' "$T/rt2.log" | grep -v '"trace_id":"[0-9a-f]\{32\}"' | head -1 | grep -q . &&
	fail "an access-log line without a trace_id"
grep '"event":"llm"' "$T/rt2.log" | grep -q "\"trace_id\":\"$TID\"" ||
	{ cat "$T/rt2.log" >&2; fail "the model call's log line lacks the trace id"; }
grep '"event":"http_request"' "$T/rt2.log" | grep -q "\"trace_id\":\"$UTID\"" ||
	fail "an unsampled request's log line lacks its (propagated) trace id"
echo "OK"
