#!/usr/bin/env bash
# OpenAI-compatible client conformance against an independent mock, npm
# @dwmkerr/mock-llm (run with Node from build/npm), whose JMESPath rules
# answer only a conforming request and refuse anything else with HTTP 400:
# the first turn must carry "stream": false, max_completion_tokens (not
# max_tokens), no temperature or top_p (the template sets none), the tools;
# the mock answers a tool call with response-only fields (refusal,
# annotations); the second turn must send the assistant message back
# without them, with the tool-call id round-tripped in the tool message.
# Then --llm-max-tokens-field max_tokens for servers that need the old name.
set -euo pipefail
. "${AF_SRCDIR:?}/tests/lib/tools.sh"
need_tool "${AF_NODE:-}" "Node 22 (make npm-deps)"

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
NODE=${AF_NODE:?AF_NODE must point at node (make npm-deps)}
MOCK=${AF_NPM:?AF_NPM must point at build/npm/node_modules}/@dwmkerr/mock-llm/dist/main.js
T=$(mktemp -d /tmp/af-openai.XXXXXX)
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
[ -x "$NODE" ] && [ -f "$MOCK" ] || fail "node or @dwmkerr/mock-llm missing (make npm-deps)"

"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
cp "$SRC/templates/bases/base-agent.yaml" "$R/templates/bases/"
cp "$SRC/tests/fixtures/llm/templates/reasoner.yaml" "$R/templates/"
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
"$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2 > /dev/null
export AF_STORE="$T/store" AF_KEYRING="$T/kr.json"

# mock-llm rules: the last match wins; the first rule refuses everything.
mock_config() { # FILE CAP-FIELD OTHER-FIELD
	cat > "$1" <<Y
rules:
  - path: "/v1/chat/completions"
    method: POST
    response:
      status: 400
      content: '{"error":{"message":"not a conforming request","type":"invalid_request_error"}}'
  - path: "/v1/chat/completions"
    method: POST
    sequence: 0
    match: >-
      body.stream == \`false\` && body.model == 'o3-mini' && body.$2 == \`512\`
      && !contains(keys(body), '$3') && !contains(keys(body), 'temperature')
      && !contains(keys(body), 'top_p') && body.tools[0].function.name == 'clock_now'
      && body.messages[0].role == 'system' && body.messages[-1].role == 'user'
    response:
      status: 200
      content: |
        {"id": "chatcmpl-conf-1", "object": "chat.completion", "model": "o3-mini-2025",
         "choices": [{"index": 0, "finish_reason": "tool_calls",
           "message": {"role": "assistant", "content": null, "refusal": null, "annotations": [],
             "tool_calls": [{"id": "call_conf_7f3", "type": "function",
               "function": {"name": "clock_now", "arguments": "{}"}}]}}],
         "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}
  - path: "/v1/chat/completions"
    method: POST
    sequence: 1
    match: >-
      body.stream == \`false\` && body.$2 == \`512\` && !contains(keys(body), '$3')
      && body.messages[-2].role == 'assistant'
      && body.messages[-2].tool_calls[0].id == 'call_conf_7f3'
      && body.messages[-2].tool_calls[0].function.name == 'clock_now'
      && !contains(keys(body.messages[-2]), 'refusal')
      && !contains(keys(body.messages[-2]), 'annotations')
      && body.messages[-1].role == 'tool' && body.messages[-1].tool_call_id == 'call_conf_7f3'
    response:
      status: 200
      content: |
        {"id": "chatcmpl-conf-2", "object": "chat.completion", "model": "o3-mini-2025",
         "choices": [{"index": 0, "finish_reason": "stop",
           "message": {"role": "assistant", "refusal": null,
             "content": "{\\"summary\\": \\"conformant\\", \\"findings\\": []}"}}],
         "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}}
Y
}

run_against_mock() { # CAP-FIELD OTHER-FIELD [extra af run args]
	local cap=$1 other=$2 port
	shift 2
	mock_config "$T/mock-$cap.yaml" "$cap" "$other"
	port=$(free_port)
	HOST=127.0.0.1 PORT=$port "$NODE" "$MOCK" --config "$T/mock-$cap.yaml" > "$T/mock-$cap.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 1200); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.05; done
	curl -sf "http://127.0.0.1:$port/health" > /dev/null || { cat "$T/mock-$cap.log" >&2; fail "mock-llm did not start"; }
	set +e
	"$AF" run reasoner --llm-provider openai --llm-base-url "http://127.0.0.1:$port/v1" \
		--llm-retries 0 --input '{"inputs":{"question":"what time is it?"}}' "$@" \
		> "$T/out" 2> "$T/err"
	local rc=$?
	set -e
	[ "$rc" = 0 ] || { cat "$T/out" "$T/err" "$T/mock-$cap.log" >&2; fail "the run against mock-llm ($cap) failed: exit $rc"; }
	has "$T/out" '"summary": *"conformant"'
}

echo "-- max_completion_tokens, stream false, no sampling parameters, clean assistant message, tool-call ids"
run_against_mock max_completion_tokens max_tokens
echo "-- --llm-max-tokens-field max_tokens for servers that need it"
run_against_mock max_tokens max_completion_tokens --llm-max-tokens-field max_tokens
echo "-- the mock really refuses a non-conforming request (the test can fail)"
mock_config "$T/mock-neg.yaml" max_tokens max_completion_tokens
port=$(free_port)
HOST=127.0.0.1 PORT=$port "$NODE" "$MOCK" --config "$T/mock-neg.yaml" > "$T/mock-neg.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 1200); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.05; done
set +e
"$AF" run reasoner --llm-provider openai --llm-base-url "http://127.0.0.1:$port/v1" --llm-retries 0 \
	--input '{"inputs":{"question":"what time is it?"}}' > "$T/out" 2> "$T/err"
rc=$?
set -e
[ "$rc" != 0 ] || fail "a request with max_completion_tokens passed a mock that wants max_tokens"
grep -q "not a conforming request" "$T/out" "$T/err" || { cat "$T/out" "$T/err" >&2; fail "no 400 from the mock"; }
echo "-- a bad --llm-max-tokens-field is refused"
set +e
"$AF" run reasoner --llm-max-tokens-field max_tokenz --input '{"inputs":{"question":"x"}}' > "$T/out" 2> "$T/err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "--llm-max-tokens-field max_tokenz: exit $rc"
has "$T/err" 'max_completion_tokens or max_tokens'
echo "OK"
