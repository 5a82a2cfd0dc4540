#!/usr/bin/env bash
# test_runtime_http.sh - agentfactory-runtime end to end over HTTP, with curl,
# against real servers on free loopback ports (--listen 127.0.0.1:0 and
# --port-file), serving a store built here from part of the sample
# catalogue: backup-manager (a steps agent using the key-value tools) and
# senior-reviewer (an LLM agent, driven by the scripted provider).
#
# Covers: startup refusals and exit codes; list, describe, invoke of both
# agents with their JSON answers; stable error codes for unknown agents,
# malformed JSON, oversized bodies, wrong methods and content types, bad
# inputs; request ids and the JSON access log; /metrics; bearer tokens
# (none -> 401, wrong role -> 403, right role -> 200) made with
# `token new` and `token hash`; a store with one tampered artifact (that
# agent refused, listed as refused, the other served); a runaway LLM agent
# (stopped at its step limit with a clean error while the server keeps
# answering); concurrent invocations; clean shutdown on SIGTERM (exit 0, no
# process left, port file removed).
#
# Env: AF, AF_RUNTIME (the binaries), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-rt-http.XXXXXX)
PIDS=()
cleanup() {
	local p
	stop_pids "${PIDS[@]}"
	rm -rf "$T"
}
trap cleanup EXIT
. "$SRC/tests/lib/procs.sh"
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() { checks=$((checks + 1)); }
# expect WANT_RC DESCRIPTION CMD... - output in $T/out and $T/err
expect() {
	local want=$1 desc=$2 rc=0
	shift 2
	ok
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		sed 's/^/    stdout: /' "$T/out" >&2
		sed 's/^/    stderr: /' "$T/err" >&2
	fi
}
contains() { # FILE TEXT DESCRIPTION
	ok
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1" | head -20 >&2; }
}
lacks() {
	ok
	! grep -qF -- "$2" "$1" || { fail "$3: '$2' found in $(basename "$1")"; sed 's/^/    /' "$1" | head -20 >&2; }
}

# ---- a store: one steps agent, one LLM agent ---------------------------------
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
KR="$T/kr.json"
"$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') >/dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
S="$T/store"
expect 0 "build" "$AF" build --repo "$R" --rev HEAD --store "$S" --keyring "$KR" \
	--builder-key "$T/keys/builder.key" -j 2
[ "$failures" -eq 0 ] || { echo "cannot test the runtime without a store" >&2; exit 1; }

# The release record backup-manager copies: the agent's key-value store is
# LMDB in DATA/kv, keys "<agent>\0<key>" (runtime/include/rt/kv.h).
DATA="$T/data"
mkdir -p "$DATA/kv"
printf 'backup-manager\\00releases/2026.11\n{"version":"1.4.0","artifacts":12}\n' >"$T/seed.txt"
mdb_load -T -f "$T/seed.txt" "$DATA/kv"

# The scripted model: one final answer (a JSON object as content).
cat >"$T/script.json" <<'EOF'
{"responses": [{"role": "assistant", "content": "{\"summary\": \"The retry loop has no upper bound.\", \"findings\": [\"unbounded retry in fetch()\"], \"verdict\": \"changes requested\"}"}]}
EOF
# A model that asks for a tool forever: the agent must hit its step limit.
cat >"$T/loop.json" <<'EOF'
{"responses": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "clock_now", "arguments": "{}"}}]}]}
EOF

# ---- server helpers ------------------------------------------------------------
# start NAME ARGS... : starts a server on a free loopback port; sets ADDR and PID.
start() {
	local name=$1 i
	shift
	rm -f "$T/$name.port"
	"$RT" --store "$S" --keyring "$KR" --listen 127.0.0.1:0 --port-file "$T/$name.port" \
		--log "$T/$name.log" "$@" 2>"$T/$name.stderr" &
	PID=$!
	PIDS+=("$PID")
	for i in $(seq 1 200); do
		[ -s "$T/$name.port" ] && break
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$T/$name.port" ]; then
		cat "$T/$name.stderr" "$T/$name.log" >&2 2>/dev/null || true
		echo "FAIL: server $name did not start" >&2
		exit 1
	fi
	ADDR=$(cat "$T/$name.port")
}
# stop NAME PID : SIGTERM, expect exit 0 and no process left.
stop() {
	local name=$1 pid=$2 rc=0
	ok
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { fail "$name: exit $rc after SIGTERM, want 0"; tail -5 "$T/$name.log" >&2; }
	ok
	! kill -0 "$pid" 2>/dev/null || fail "$name: process $pid still running"
	ok
	[ ! -e "$T/$name.port" ] || fail "$name: port file left behind"
	contains "$T/$name.log" '"event":"stopped"' "$name logs its stop"
}
# req METHOD PATH [CURL ARGS...] : status in $STATUS, body in $T/body, headers in $T/headers
req() {
	local method=$1 path=$2
	shift 2
	STATUS=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" "$@" \
		"http://$ADDR$path") || STATUS=000
}
# want STATUS [CODE] DESCRIPTION : checks $STATUS, and the error code when given
want() {
	ok
	if [ "$STATUS" != "$1" ]; then
		fail "$3: status $STATUS, want $1: $(head -c 300 "$T/body")"
		return
	fi
	if [ -n "$2" ]; then
		contains "$T/body" "\"error\":{\"code\":\"$2\"" "$3: error code"
	fi
}
JSON=(-H 'Content-Type: application/json')

# ---- command line and startup refusals -----------------------------------------
echo "-- command line"
expect 0 "--help" "$RT" --help
contains "$T/out" "usage: agentfactory-runtime" "--help prints usage"
contains "$T/out" "exit codes" "--help lists exit codes"
expect 0 "--version" "$RT" --version
expect 2 "unknown flag" "$RT" --store "$S" --keyring "$KR" --no-such-flag
contains "$T/err" "--help" "bad flag points at --help"
expect 2 "no --store" "$RT" --keyring "$KR"
contains "$T/err" "--store" "missing store named"
expect 2 "no --keyring" "$RT" --store "$S"
expect 2 "bad --max-body" "$RT" --store "$S" --keyring "$KR" --max-body 12q
expect 2 "non-loopback without tokens" "$RT" --store "$S" --keyring "$KR" --listen 0.0.0.0:0
contains "$T/err" "loopback" "the refusal says why"
expect 2 "malformed listen address" "$RT" --store "$S" --keyring "$KR" --listen nowhere
expect 2 "missing store" "$RT" --store "$T/nowhere" --keyring "$KR" --listen 127.0.0.1:0
printf 'not-a-hash admin\n' >"$T/bad.tokens"
expect 2 "malformed tokens file" "$RT" --store "$S" --keyring "$KR" --tokens "$T/bad.tokens"
contains "$T/err" "bad.tokens:1:" "tokens error names file:line"
expect 2 "missing llm script" "$RT" --store "$S" --keyring "$KR" --llm-script "$T/none.json"

# ---- no tokens: loopback, every route -----------------------------------------
echo "-- open server (no tokens)"
start open --data "$DATA" --llm-script "$T/script.json" --max-body 4k
OPEN_PID=$PID
contains "$T/open.log" "no --tokens file: listening on loopback only, no authentication" "no-auth warning"
contains "$T/open.log" "\"event\":\"listening\"" "listening line"
contains "$T/open.log" "\"address\":\"$ADDR\"" "the log and the port file agree"
case "$ADDR" in 127.0.0.1:[0-9]*) ok ;; *) fail "port file holds '$ADDR'" ;; esac

req GET /healthz
want 200 "" "healthz"
contains "$T/body" '{"status":"ok"}' "healthz body"
req GET /readyz
want 200 "" "readyz"

req GET /v1/agents
want 200 "" "list"
contains "$T/body" '"name":"backup-manager","version":"1.0.0"' "list names backup-manager"
contains "$T/body" '"name":"senior-reviewer"' "list names senior-reviewer"
contains "$T/body" '"count":2,"ok":2,"refused":0' "list counts"
req GET /v1/agents/backup-manager
want 200 "" "describe"
contains "$T/body" '"name":"backup-manager"' "describe answers the resolved template"
contains "$T/body" '"steps":' "describe shows the workflow"
req GET '/v1/agents/backup-manager?version=1.0.0'
want 200 "" "describe an exact version"
req GET '/v1/agents/backup-manager?version=9.9.9'
want 404 not_found "describe an unknown version"

req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -H 'X-Request-Id: it-backup-1' \
	-d '{"inputs":{"release":"2026.11"}}'
want 200 "" "invoke the steps agent"
contains "$T/body" '"ok":true' "steps agent answers ok"
contains "$T/body" '"record":{"version":"1.4.0","artifacts":12}' "steps agent read the release record"
contains "$T/body" '"index":{"stored":true}' "steps agent wrote the index"
contains "$T/headers" "X-Request-Id: it-backup-1" "request id echoed"
contains "$T/open.log" '"request_id":"it-backup-1"' "access log has the request id"

req POST /v1/agents/senior-reviewer/invoke "${JSON[@]}" \
	-d '{"inputs":{"change":"add a retry loop","focus":"error handling"}}'
want 200 "" "invoke the LLM agent (scripted provider)"
contains "$T/body" '"summary": "The retry loop has no upper bound."' "LLM agent answer"

echo "-- stable error codes"
req POST /v1/agents/no-such-agent/invoke "${JSON[@]}" -d '{"inputs":{}}'
want 404 not_found "invoke an unknown agent"
req GET /v1/agents/no-such-agent
want 404 not_found "describe an unknown agent"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -d '{"inputs": {"release": '
want 400 invalid_json "malformed JSON"
contains "$T/body" '"message":"the body is not valid JSON: line 1 column' "where the JSON breaks"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -d '{"inputs":{}}'
want 400 invalid_input "inputs that fail the schema"
head -c 5000 /dev/zero | tr '\0' ' ' >"$T/big.json"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" --data-binary @"$T/big.json"
want 413 payload_too_large "oversized body (5000 > 4k)"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -H 'Transfer-Encoding: chunked' \
	--data-binary @"$T/big.json"
want 411 length_required "chunked body (Content-Length is required)"
req POST /v1/agents/backup-manager/invoke -H 'Content-Type: text/plain' -d '{}'
want 415 unsupported_media_type "wrong content type"
req DELETE /v1/agents
want 405 method_not_allowed "wrong method"
contains "$T/headers" "Allow: GET, HEAD" "405 says what is allowed"
req GET /v1/agents/backup-manager/invoke
want 405 method_not_allowed "GET on invoke"
contains "$T/headers" "Allow: POST" "invoke allows POST"
req GET /v2/nothing
want 404 not_found "unknown route"

echo "-- concurrent invocations"
seq 1 40 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' "${JSON[@]}" \
	-d '{"inputs":{"release":"2026.11"}}' "http://$ADDR/v1/agents/backup-manager/invoke" >"$T/codes"
ok
[ "$(grep -c '^200$' "$T/codes")" = 40 ] || fail "concurrent invocations: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"

echo "-- metrics"
req GET /metrics
want 200 "" "metrics"
contains "$T/headers" "text/plain; version=0.0.4" "metrics content type"
for m in agentfactory_invoke_seconds_bucket agentfactory_instantiate_seconds_bucket \
	agentfactory_invoke_seconds_count agentfactory_http_request_seconds_bucket \
	agentfactory_invocations_total agentfactory_module_cache_hits_total \
	agentfactory_module_cache_misses_total agentfactory_signature_failures_total \
	'agentfactory_errors_total{code="not_found"}' 'agentfactory_errors_total{code="invalid_json"}' \
	'agentfactory_http_responses_total{code="200"}'; do
	contains "$T/body" "$m" "metrics has $m"
done
# every log line is one JSON object (fully parsed in tests/unit/runtime/test_http.c)
ok
[ "$(grep -cv '^{"ts":"[^"]*","level":"[a-z]*","event":"[a-z_]*".*}$' "$T/open.log")" = 0 ] ||
	fail "log lines that are not JSON objects: $(grep -v '^{.*}$' "$T/open.log" | head -3)"
stop open "$OPEN_PID"

# ---- bearer tokens and roles -----------------------------------------------------
echo "-- tokens"
TOK="$T/tokens"
READ_T=$("$RT" token new --role read --name grafana --tokens "$TOK")
INVOKE_T=$("$RT" token new --role invoke --name ci --tokens "$TOK")
ADMIN_T=$(openssl rand -hex 24)
# the documented recipe, and the hash helper, give the same entry
echo "sha256:$(printf %s "$ADMIN_T" | sha256sum | cut -d' ' -f1) admin ops" >>"$TOK"
expect 0 "token hash" sh -c "printf %s '$ADMIN_T' | '$RT' token hash --role admin --name ops"
contains "$TOK" "$(cat "$T/out")" "token hash prints the same line as the sha256sum recipe"
lacks "$TOK" "$READ_T" "the tokens file holds no secret"
ok
[ "$(stat -c %a "$TOK")" = 600 ] || fail "token new should create the file 0600"
expect 2 "token new without a role" "$RT" token new
expect 2 "token new with an unknown role" "$RT" token new --role root
expect 2 "token new with a bad name" "$RT" token new --role read --name 'a b/c'
expect 2 "token hash of nothing" sh -c "printf '' | '$RT' token hash"
expect 2 "token hash of a token with a space" sh -c "printf 'a b' | '$RT' token hash"
expect 0 "token new without a file" "$RT" token new --role read
ok
[ "$(wc -l <"$T/out")" = 2 ] && grep -q '^sha256:[0-9a-f]\{64\} read$' "$T/out" ||
	fail "token new without --tokens prints the token and its line: $(cat "$T/out")"
start auth --tokens "$TOK" --data "$DATA" --llm-script "$T/script.json"
AUTH_PID=$PID
lacks "$T/auth.log" "no --tokens file" "no warning with tokens"
contains "$T/auth.log" '"auth":"bearer","tokens":3' "listening line shows bearer auth"

req GET /v1/agents
want 401 unauthorized "no token"
contains "$T/headers" 'WWW-Authenticate: Bearer realm="agentfactory"' "401 challenges"
req GET /v1/agents -H "Authorization: Bearer wrong-token"
want 401 unauthorized "unknown token"
contains "$T/headers" 'error="invalid_token"' "401 says invalid_token"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -d '{"inputs":{"release":"2026.11"}}'
want 401 unauthorized "invoke without a token"
req GET /healthz
want 200 "" "healthz needs no token"
req GET /readyz
want 200 "" "readyz needs no token"

RD=(-H "Authorization: Bearer $READ_T")
IV=(-H "Authorization: Bearer $INVOKE_T")
AD=(-H "Authorization: Bearer $ADMIN_T")
req GET /v1/agents "${RD[@]}"
want 200 "" "read token lists"
req GET /v1/agents/senior-reviewer "${RD[@]}"
want 200 "" "read token describes"
req POST /v1/agents/backup-manager/invoke "${RD[@]}" "${JSON[@]}" -d '{"inputs":{"release":"2026.11"}}'
want 403 forbidden "read token may not invoke"
contains "$T/headers" 'error="insufficient_scope"' "403 says insufficient_scope"
req GET /metrics "${RD[@]}"
want 200 "" "read token reads metrics"
req POST /v1/agents/backup-manager/invoke "${IV[@]}" "${JSON[@]}" -d '{"inputs":{"release":"2026.11"}}'
want 200 "" "invoke token invokes"
contains "$T/body" '"ok":true' "invoke with a token answers"
req GET /v1/agents "${IV[@]}"
want 200 "" "invoke token lists"
req GET /metrics "${IV[@]}"
want 403 forbidden "invoke token may not read metrics"
for p in /v1/agents /v1/agents/backup-manager /metrics; do
	req GET "$p" "${AD[@]}"
	want 200 "" "admin token on $p"
done
req POST /v1/agents/senior-reviewer/invoke "${AD[@]}" "${JSON[@]}" -d '{"inputs":{"change":"x","focus":"y"}}'
want 200 "" "admin token invokes"
lacks "$T/auth.log" "$INVOKE_T" "the log never holds a token"
contains "$T/auth.log" '"role":"invoke","token":"ci"' "the log names the token holder"
stop auth "$AUTH_PID"

# ---- a tampered artifact is refused, the other served ---------------------------
echo "-- tampered store"
TS="$T/tampered"
cp -r "$S" "$TS"
# flip one byte inside the stored native code of senior-reviewer
"$AF" inspect --store "$S" --json senior-reviewer >"$T/inspect.json"
native=$(awk '/"native\// && /: \{/ {n=1} n && /"digest"/ {gsub(/.*sha256:|".*/, ""); print; exit}' \
	"$T/inspect.json")
ok
[ ${#native} = 64 ] || fail "no native part digest in inspect --json: '$native'"
key_hex=$(printf %s "$native" | od -An -tx1 | tr -d ' \n')
mdb_dump -s blobs "$TS" >"$T/blobs.dump"
awk -v key=" $key_hex" '
	$0 == key {print; hit=1; next}
	hit == 1 {m=int(length($0)/2); c=substr($0,m,1); r=(c=="0")?"1":"0";
	          $0=substr($0,1,m-1) r substr($0,m+1); hit=2}
	{print}' "$T/blobs.dump" >"$T/blobs.bad"
ok
cmp -s "$T/blobs.dump" "$T/blobs.bad" && fail "the tamper changed nothing (blob $native not found)"
mdb_load -s blobs -f "$T/blobs.bad" "$TS" 2>/dev/null
rm -f "$T/tamp.port"
"$RT" --store "$TS" --keyring "$KR" --listen 127.0.0.1:0 --port-file "$T/tamp.port" \
	--log "$T/tamp.log" --data "$DATA" --llm-script "$T/script.json" 2>"$T/tamp.stderr" &
TAMP_PID=$!
PIDS+=("$TAMP_PID")
for i in $(seq 1 200); do [ -s "$T/tamp.port" ] && break; kill -0 "$TAMP_PID" 2>/dev/null || break; sleep 0.05; done
[ -s "$T/tamp.port" ] || { cat "$T/tamp.stderr" >&2; echo "FAIL: tampered server did not start" >&2; exit 1; }
ADDR=$(cat "$T/tamp.port")
req GET /v1/agents
want 200 "" "list a tampered store"
contains "$T/body" '"name":"senior-reviewer"' "the tampered agent is listed"
# one agent a line: name status [reason]
sed 's/},{/}\n{/g' "$T/body" |
	sed -n 's/.*"name":"\([^"]*\)".*"status":"\([a-z]*\)"\(,"reason":"\(.*\)"\)\{0,1\}}.*/\1 \2 \4/p' >"$T/status"
contains "$T/status" "senior-reviewer refused" "the tampered agent is listed as refused"
contains "$T/status" "backup-manager ok" "the other agent is ok"
req POST /v1/agents/senior-reviewer/invoke "${JSON[@]}" -d '{"inputs":{"change":"x","focus":"y"}}'
want 503 agent_refused "invoking the tampered agent"
req GET /v1/agents/senior-reviewer
want 503 agent_refused "describing the tampered agent"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -d '{"inputs":{"release":"2026.11"}}'
want 200 "" "the other agent still serves"
req GET /readyz
want 200 "" "ready with one verified agent"
req GET /metrics
contains "$T/body" "agentfactory_signature_failures_total{reason=" "signature failure counted"
contains "$T/tamp.log" '"event":"refused"' "the refusal is logged"
stop tamp "$TAMP_PID"

# ---- a runaway agent: stopped cleanly, the server keeps serving ------------------
echo "-- runaway agent"
start loop --data "$DATA" --llm-script "$T/loop.json"
LOOP_PID=$PID
req POST /v1/agents/senior-reviewer/invoke "${JSON[@]}" -d '{"inputs":{"change":"x","focus":"y"}}'
ok
case "$STATUS" in 4[0-9][0-9] | 5[0-9][0-9]) ;; *) fail "runaway agent: status $STATUS" ;; esac
contains "$T/body" '"code":"step_limit"' "the runaway agent is stopped at its step limit"
req GET /healthz
want 200 "" "the server still answers after a runaway agent"
req POST /v1/agents/backup-manager/invoke "${JSON[@]}" -d '{"inputs":{"release":"2026.11"}}'
want 200 "" "other agents still serve after a runaway agent"
stop loop "$LOOP_PID"

echo "$((checks - failures))/$checks checks passed"
[ "$failures" -eq 0 ]
