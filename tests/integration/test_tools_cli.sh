#!/usr/bin/env bash
# The builtin tools end to end with the real binaries: a signed repository
# of catalogue templates (monitoring-specialist: an LLM agent with
# http_fetch and kv_get; release-coordinator: a workflow delegating with
# agent_invoke to backup-manager and senior-reviewer) plus test-only relay
# templates, built under the default policy (its host allow-list recorded in
# the manifests), then run with `agentfactory run` and served by
# agentfactory-runtime against a loopback fixture server (python3):
# an allowed fetch, a model asking for a denied host, a redirect to a denied
# host, a redirect loop, the composite agent over HTTP, the callee's own
# capabilities, and agent_invoke's cycle guard and depth limit.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
AF_RUNTIME=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/af-tools.XXXXXX")
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
# git sees no configuration of this machine or user (hooks, signing, gc).
export HOME="$T/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_OPTIONAL_LOCKS=0
mkdir -p "$HOME"

# A failure says what failed and shows the servers' side of it too.
fail() {
	echo "FAIL: $*" >&2
	for l in "$T/fixture.log" "$T/rt.log"; do
		[ -s "$l" ] && { echo "--- $l (last 30 lines)" >&2; tail -30 "$l" >&2; }
	done
	exit 1
}
# wait_for FILE PID WHAT: up to 120 s for FILE to be written by PID (which
# must stay alive); generous, the machine may be loaded.
wait_for() {
	local i
	for i in $(seq 1 1200); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || fail "$3 exited before it was ready"
		sleep 0.1
	done
	fail "$3 was not ready after 120 s"
}
expect() {
	local want=$1; shift
	set +e; "$@" > "$T/out" 2> "$T/err"; local got=$?; set -e
	if [ "$got" -ne "$want" ]; then
		cat "$T/out" "$T/err" >&2
		fail "expected exit $want, got $got: $*"
	fi
}
has() { grep -q -- "$1" "$T/out" || { cat "$T/out" "$T/err" >&2; fail "output lacks $1"; }; }
# A run whose agent may go on without the refused tool (exit 0: the model was
# told) or stop on it (exit 1, tool_denied): either way nothing was fetched.
refused() {
	set +e; "$@" > "$T/out" 2> "$T/err"; local got=$?; set -e
	if [ "$got" -eq 1 ]; then grep -q '"code":"tool_denied"' "$T/out" || got=99; fi
	if [ "$got" -ne 0 ] && [ "$got" -ne 1 ]; then cat "$T/out" "$T/err" >&2; fail "exit $got: $*"; fi
}
log_has() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks $2"; }; }
log_lacks() { if grep -q -- "$2" "$1"; then cat "$1" >&2; fail "$1 has $2"; fi; }
hits() { grep -c -- "^GET $1\$" "$T/fixture.log" || true; }

# ---- a loopback fixture server ------------------------------------------------
cat > "$T/fixture.py" <<'EOF'
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body=b"", location=None):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        sys.stderr.write("GET %s\n" % self.path)
        sys.stderr.flush()
        if self.path == "/metrics":
            self.reply(200, b"# TYPE up gauge\nup 1\n")
        elif self.path == "/redir-evil":
            self.reply(302, location="http://evil.example/steal")
        elif self.path == "/loop":
            self.reply(302, location="/loop")
        else:
            self.reply(404, b"not here")
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
python3 "$T/fixture.py" "$T/fixture.port" 2> "$T/fixture.log" &
pids+=($!)
wait_for "$T/fixture.port" $! "the fixture server"
FIX="http://127.0.0.1:$(cat "$T/fixture.port")"

# ---- a repository built under the default policy --------------------------------
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer bases/base-engineer \
	backup-manager senior-reviewer monitoring-specialist release-coordinator; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
for r in a b c d; do
	sed "s/^name: relay-a$/name: relay-$r/" "$SRC/tests/fixtures/tools/templates/relay-a.yaml" \
		> "$R/templates/relay-$r.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
echo "-- the templates pass the default policy"
expect 0 "$AF" check --repo "$R" --rev HEAD --keyring "$T/kr.json"
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2
export AF_STORE="$T/store" AF_KEYRING="$T/kr.json"
echo "-- a rebuild is all cache hits (the recorded hosts match)"
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2
has "0 built"

script() { # script FILE RESPONSE... : a scripted conversation, one response per model turn
	local f=$1; shift
	{ printf '{"responses":['; local sep=""; for r in "$@"; do printf '%s%s' "$sep" "$r"; sep=","; done; printf ']}'; } > "$f"
}
fetch_call() { # fetch_call URL : a model turn asking for http_fetch(URL)
	printf '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"http_fetch","arguments":"{\\"url\\":\\"%s\\"}"}}]}' "$1"
}
final='{"role":"assistant","content":"{\"summary\":\"done\"}"}'
MON_IN='{"inputs":{"task":"alerts","service":"runtime"}}'

echo "-- an LLM agent fetches from an allow-listed host"
script "$T/ok.json" "$(fetch_call "$FIX/metrics")" "$final"
expect 0 "$AF" run monitoring-specialist --llm-script "$T/ok.json" --input "$MON_IN" --log "$T/ok.log"
has '"summary":"done"'
log_has "$T/ok.log" 'model called tool http_fetch'
log_lacks "$T/ok.log" '"event":"denied"'
[ "$(hits /metrics)" = 1 ] || fail "the fixture did not see GET /metrics"

echo "-- the model asks for a host outside the allow-list: refused, nothing sent"
script "$T/evil.json" "$(fetch_call "https://evil.example/steal")" "$final"
refused "$AF" run monitoring-specialist --llm-script "$T/evil.json" --input "$MON_IN" --log "$T/evil.log"
log_has "$T/evil.log" '"what":"http_fetch:host"'
log_has "$T/evil.log" 'host evil.example is not on the allow-list'
echo "-- and a numeric disguise of an allowed address"
script "$T/num.json" "$(fetch_call "http://2130706433:$(cat "$T/fixture.port")/metrics")" "$final"
refused "$AF" run monitoring-specialist --llm-script "$T/num.json" --input "$MON_IN" --log "$T/num.log"
log_has "$T/num.log" '"what":"http_fetch:url"'
[ "$(hits /metrics)" = 1 ] || fail "a refused URL reached the fixture"

echo "-- a redirect from an allowed host to a denied one is not followed"
script "$T/redir.json" "$(fetch_call "$FIX/redir-evil")" "$final"
refused "$AF" run monitoring-specialist --llm-script "$T/redir.json" --input "$MON_IN" --log "$T/redir.log"
log_has "$T/redir.log" '"what":"http_fetch:redirect"'
log_has "$T/redir.log" 'evil.example'
[ "$(hits /redir-evil)" = 1 ] || fail "expected one GET /redir-evil"

echo "-- a redirect loop is capped at 5 redirects"
script "$T/loop.json" "$(fetch_call "$FIX/loop")" "$final"
expect 0 "$AF" run monitoring-specialist --llm-script "$T/loop.json" --input "$MON_IN" --log "$T/loop.log"
[ "$(hits /loop)" = 6 ] || fail "expected 6 GET /loop, got $(hits /loop)"

echo "-- agent_invoke: the cycle guard and the depth limit"
expect 1 "$AF" run relay-a --input '{"inputs":{"next":"relay-b","n2":"relay-a","n3":"relay-c"}}' --log "$T/cycle.log"
has '"code":"step_failed"'
has 'relay-a -> relay-b -> relay-a'
log_has "$T/cycle.log" '"what":"agent_invoke:cycle"'
expect 1 "$AF" run relay-a --input '{"inputs":{"next":"relay-b","n2":"relay-c","n3":"relay-d","n4":"backup-manager"}}' \
	--log "$T/depth.log"
has 'depth_limit'
has 'relay-a -> relay-b -> relay-c -> relay-d -> backup-manager'
log_has "$T/depth.log" '"what":"agent_invoke:depth"'
echo "-- the callee runs with its own capabilities: relay-a has no kv, backup-manager writes"
expect 0 "$AF" run backup-manager --data "$T/data" --kv-set 'releases/r1={"version":"1.4.0"}' \
	--input '{"inputs":{"release":"r1"}}'
expect 0 "$AF" run relay-a --data "$T/data" --input '{"inputs":{"next":"backup-manager","release":"r1"}}'
has '"record":{"version":"1.4.0"}'
has '"index":{"stored":true}'

echo "-- the composite agent over HTTP: release-coordinator -> backup-manager, senior-reviewer"
cat > "$T/review.json" <<'EOF'
{"responses":[{"role":"assistant","content":"{\"summary\":\"ready\",\"verdict\":\"approve\"}"}]}
EOF
"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --data "$T/data" --llm-script "$T/review.json" \
	--listen 127.0.0.1:0 --port-file "$T/rt.port" --log "$T/rt.log" &
rt_pid=$!
pids+=($rt_pid)
wait_for "$T/rt.port" "$rt_pid" "the runtime"
U="http://$(cat "$T/rt.port")"
# http GOT_STATUS URL [curl args]: the body into $T/out, the status checked.
http() {
	local want=$1 url=$2 code; shift 2
	code=$(curl -sS --max-time 300 -o "$T/out" -w '%{http_code}' "$@" "$url" 2> "$T/err") ||
		{ cat "$T/err" >&2; fail "curl $url failed"; }
	[ "$code" = "$want" ] || { cat "$T/out" "$T/err" >&2; fail "HTTP $code, expected $want: $url"; }
}
http 200 "$U/v1/agents/release-coordinator/invoke" -H 'Content-Type: application/json' \
	-d '{"inputs":{"release":"r1","summary":"Adds retries."}}'
has '"ok":true'
has '"record":{"version":"1.4.0"}'
has '"verdict":"approve"'
http 200 "$U/metrics"
has '^agentfactory_invocations_total 3$'
kill -TERM "$rt_pid"
set +e; wait "$rt_pid"; rc=$?; set -e
[ "$rc" -eq 0 ] || fail "the runtime exited with $rc on SIGTERM"
echo "OK"
