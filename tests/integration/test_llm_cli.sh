#!/usr/bin/env bash
# The openai model provider end to end through the programs: a signed
# repository built into a store, a chat-completions fixture server
# (tests/fixtures/llm/fixture_server.c, built here) on loopback, and
# `agentfactory run` / `agentfactory-runtime` with --llm-* flags and
# AF_LLM_* variables: a multi-step conversation with a tool call, what the
# endpoint received (the key, the rendered prompt, the tool result), the
# key never in a log, --llm-model, retries on 503, an unreachable
# endpoint, a session recorded with --llm-record and replayed byte for byte
# by the scripted provider, and the usage errors of the flags.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-llm.XXXXXX)
FX_PID=
RT_PID=
cleanup() {
	[ -n "$FX_PID" ] && kill "$FX_PID" 2>/dev/null && wait "$FX_PID" 2>/dev/null || true
	[ -n "$RT_PID" ] && kill "$RT_PID" 2>/dev/null && wait "$RT_PID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_LLM_PROVIDER AF_LLM_BASE_URL AF_LLM_API_KEY_FILE AF_LLM_SCRIPT AF_LLM_MODEL \
	AF_LLM_TIMEOUT_MS AF_LLM_CONNECT_TIMEOUT_MS AF_LLM_RETRIES AF_LLM_API_KEY OPENAI_API_KEY

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {
	local want=$1; shift
	set +e; "$@" > "$T/out" 2> "$T/err"; local got=$?; set -e
	if [ "$got" -ne "$want" ]; then
		cat "$T/out" "$T/err" >&2
		fail "expected exit $want, got $got: $*"
	fi
}
has() { grep -q -- "$1" "$T/out" || { cat "$T/out" "$T/err" >&2; fail "output lacks $1"; }; }
err_has() { grep -q -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr lacks $1"; }; }
file_has() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks $2"; }; }
file_lacks() { if grep -q -- "$2" "$1"; then fail "$1 contains $2"; fi; }

echo "-- build the fixture server"
cc -O2 -o "$T/fixture" "$SRC/tests/fixtures/llm/fixture_server.c" \
	$(pkg-config --cflags --libs libmicrohttpd jansson) -lpthread

# fixture REPLIES_JSON [cycle]: (re)start the fixture; PORT and URL are set.
fixture() {
	if [ -n "$FX_PID" ]; then kill "$FX_PID"; wait "$FX_PID" 2>/dev/null || true; FX_PID=; fi
	printf '%s' "$1" > "$T/replies.json"
	rm -f "$T/port" "$T/requests.jsonl"
	"$T/fixture" "$T/replies.json" "$T/port" "$T/requests.jsonl" ${2:-} &
	FX_PID=$!
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || fail "the fixture did not start"
	PORT=$(cat "$T/port")
	URL="http://127.0.0.1:$PORT"
}
requests() { [ -f "$T/requests.jsonl" ] && wc -l < "$T/requests.jsonl" | tr -d ' ' || echo 0; }

echo "-- a signed repository built into a store"
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-reviewer senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key"
export AF_STORE="$T/store" AF_KEYRING="$T/kr.json"

KEY=sk-itest-7d1c0f3a9b2e48d6
printf '%s\n' "$KEY" > "$T/api-key"
printf '{"inputs":{"change":"diff --git a/x b/x","focus":"errors"}}' > "$T/review.json"
CALL='{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"clock_now","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}'
ANSWER='{"choices":[{"index":0,"message":{"role":"assistant","content":"{\"summary\":\"fine\",\"verdict\":\"approve\"}"},"finish_reason":"stop"}],"usage":{"total_tokens":42}}'

echo "-- agentfactory run with the openai provider: a tool call, then the answer"
fixture "{\"replies\":[{\"body\":$CALL},{\"body\":$ANSWER}]}"
expect 0 "$AF" run senior-reviewer --llm-provider openai --llm-base-url "$URL" \
	--llm-api-key-file "$T/api-key" --input-file "$T/review.json" --log "$T/run.log"
has '"output":{"summary":"fine","verdict":"approve"}'
err_has "model provider openai: POST $URL/v1/chat/completions"
file_has "$T/run.log" '"provider":"openai"'
[ "$(requests)" = 2 ] || fail "expected 2 requests, got $(requests)"
r1=$(sed -n 1p "$T/requests.jsonl")
r2=$(sed -n 2p "$T/requests.jsonl")
echo "$r1" | grep -q "\"auth\":\"Bearer $KEY\"" || fail "no bearer key in the request"
echo "$r1" | grep -q '"path":"/v1/chat/completions"' || fail "wrong path"
echo "$r1" | grep -q '"model":"gpt-4o"' || fail "the template's model was not sent"
echo "$r1" | grep -q 'You are senior-reviewer, the senior peer reviewer' || fail "system prompt not rendered"
echo "$r1" | grep -q 'It must match this JSON Schema' || fail "no output contract in the prompt"
echo "$r1" | grep -q '"name":"clock_now"' || fail "no tools in the request"
echo "$r2" | grep -q '"role":"tool","tool_call_id":"c1"' || fail "the tool result was not fed back"
echo "-- the key is in no log and no message"
file_lacks "$T/run.log" "$KEY"
file_lacks "$T/err" "$KEY"
file_lacks "$T/out" "$KEY"

echo "-- the same through AF_LLM_* variables, with --llm-model"
fixture "{\"replies\":[{\"body\":$CALL},{\"body\":$ANSWER}]}"
AF_LLM_PROVIDER=openai AF_LLM_BASE_URL="$URL/v1" AF_LLM_API_KEY_FILE="$T/api-key" AF_LLM_MODEL=qwen2.5:7b \
	expect 0 "$AF" run senior-reviewer --input-file "$T/review.json"
has '"verdict":"approve"'
sed -n 1p "$T/requests.jsonl" | grep -q '"model":"qwen2.5:7b"' || fail "--llm-model / AF_LLM_MODEL not applied"
echo "-- a key from OPENAI_API_KEY; a flag beats its variable"
fixture "{\"replies\":[{\"body\":$ANSWER}]}"
OPENAI_API_KEY=sk-env-key AF_LLM_BASE_URL=http://127.0.0.1:1 \
	expect 0 "$AF" run senior-reviewer --llm-base-url "$URL" --input-file "$T/review.json"
sed -n 1p "$T/requests.jsonl" | grep -q '"auth":"Bearer sk-env-key"' || fail "OPENAI_API_KEY not used"

echo "-- 503 twice, then an answer: retried"
fixture "{\"replies\":[{\"status\":503,\"body\":{\"error\":{\"message\":\"busy\"}}},{\"status\":503},{\"body\":$ANSWER}]}"
expect 0 "$AF" run senior-reviewer --llm-base-url "$URL" --input-file "$T/review.json" --log "$T/retry.log"
has '"verdict":"approve"'
[ "$(requests)" = 3 ] || fail "expected 3 attempts"
[ "$(grep -c 'retrying in' "$T/retry.log")" = 2 ] || fail "expected 2 retry lines"
file_has "$T/retry.log" 'answered HTTP 503: busy'

echo "-- the endpoint is down: llm_error, exit 1, after the retries"
expect 1 "$AF" run senior-reviewer --llm-base-url http://127.0.0.1:1 --llm-retries 1 \
	--llm-timeout-ms 2000 --input-file "$T/review.json" --log "$T/down.log"
has '"code":"llm_error"'
file_has "$T/down.log" 'gave up after 2 attempts'

echo "-- a slow endpoint: the timeout, then llm_error"
fixture "{\"replies\":[{\"delay_ms\":5000,\"body\":$ANSWER}]}"
expect 1 "$AF" run senior-reviewer --llm-base-url "$URL" --llm-retries 0 --llm-timeout-ms 300 \
	--input-file "$T/review.json" --log "$T/slow.log"
has '"code":"llm_error"'
file_has "$T/slow.log" 'no complete answer within the timeout (300 ms)'

echo "-- an answer outside the output schema, asked again, then invalid_output"
BAD='{"choices":[{"message":{"role":"assistant","content":"{\"summary\":\"no verdict\"}"}}]}'
fixture "{\"replies\":[{\"body\":$BAD}]}"
expect 1 "$AF" run senior-reviewer --llm-base-url "$URL" --input-file "$T/review.json"
has '"code":"invalid_output"'
has "missing required property 'verdict'"

echo "-- record a session, replay it with the scripted provider, byte for byte"
fixture "{\"replies\":[{\"body\":$CALL},{\"body\":$ANSWER}]}"
expect 0 "$AF" run senior-reviewer --llm-base-url "$URL" --llm-api-key-file "$T/api-key" \
	--llm-record "$T/session.json" --input-file "$T/review.json"
cp "$T/out" "$T/live.out"
grep -q '"responses":\[' "$T/session.json" || fail "no recording"
file_lacks "$T/session.json" "$KEY"
kill "$FX_PID"; wait "$FX_PID" 2>/dev/null || true; FX_PID=
expect 0 "$AF" run senior-reviewer --llm-script "$T/session.json" --llm-record "$T/replay.json" \
	--input-file "$T/review.json"
err_has 'model provider scripted: replaying'
cmp "$T/out" "$T/live.out" || fail "the replay answered differently"
cmp "$T/session.json" "$T/replay.json" || fail "the replay did not give the guest the recorded bytes"

echo "-- agentfactory-runtime serves with the openai provider"
if [ -n "${AF_RUNTIME:-}" ] && [ -x "${AF_RUNTIME}" ]; then
	fixture "{\"replies\":[{\"body\":$CALL},{\"body\":$ANSWER}]}" cycle
	"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --listen 127.0.0.1:0 \
		--port-file "$T/rt.port" --log "$T/rt.log" --llm-provider openai \
		--llm-base-url "$URL" --llm-api-key-file "$T/api-key" --llm-timeout-ms 5000 &
	RT_PID=$!
	for _ in $(seq 200); do [ -s "$T/rt.port" ] && break; sleep 0.05; done
	[ -s "$T/rt.port" ] || { cat "$T/rt.log" >&2; fail "the runtime did not start"; }
	ADDR=$(cat "$T/rt.port")
	for i in 1 2; do
		code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
			--data-binary @"$T/review.json" "http://$ADDR/v1/agents/senior-reviewer/invoke")
		[ "$code" = 200 ] || { cat "$T/body" "$T/rt.log" >&2; fail "invoke $i: HTTP $code"; }
		grep -q '"verdict":"approve"' "$T/body" || fail "invoke $i: unexpected body"
	done
	[ "$(requests)" = 4 ] || fail "expected 4 model calls, got $(requests)"
	file_has "$T/rt.log" '"event":"llm_provider"'
	file_has "$T/rt.log" "POST $URL/v1/chat/completions"
	file_lacks "$T/rt.log" "$KEY"
	kill "$RT_PID"; wait "$RT_PID" 2>/dev/null || true; RT_PID=
	expect 2 "$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --llm-provider bogus
	err_has "not a provider"
	expect 2 "$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --llm-provider openai \
		--llm-api-key-file "$T/no-such-key"
	err_has "no-such-key"
	expect 0 "$AF_RUNTIME" --help
	has 'llm-base-url'
fi

echo "-- usage errors: exit 2 before anything runs"
expect 2 "$AF" run senior-reviewer --llm-provider gemini --input-file "$T/review.json"
err_has "not a provider (openai, scripted or none)"
expect 2 "$AF" run senior-reviewer --llm-timeout-ms 0 --input-file "$T/review.json"
expect 2 "$AF" run senior-reviewer --llm-retries many --input-file "$T/review.json"
expect 2 "$AF" run senior-reviewer --llm-provider scripted --input-file "$T/review.json"
err_has "needs --llm-script"
expect 2 "$AF" run senior-reviewer --llm-base-url ftp://h/v1 --input-file "$T/review.json"
err_has "must start with http:// or https://"
expect 2 "$AF" run senior-reviewer --llm-base-url "$URL" --llm-script "$T/session.json" \
	--input-file "$T/review.json"
err_has "say which one"
AF_LLM_TIMEOUT_MS=soon expect 2 "$AF" run senior-reviewer --input-file "$T/review.json"
err_has "AF_LLM_TIMEOUT_MS"
printf 'sk bad key\n' > "$T/bad-key"
expect 2 "$AF" run senior-reviewer --llm-base-url "$URL" --llm-api-key-file "$T/bad-key" \
	--input-file "$T/review.json"
err_has "cannot go in an HTTP header"
file_lacks "$T/err" "sk bad key"
expect 0 "$AF" run --help
has 'llm-api-key-file'
has 'llm-record'

echo "all llm checks passed"
