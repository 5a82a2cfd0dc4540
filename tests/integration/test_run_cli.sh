#!/usr/bin/env bash
# `agentfactory run` end to end: a signed repository built into a store,
# then single invocations through the runtime's loader and sandbox: a
# workflow agent with its key-value store, an LLM agent with the scripted
# provider (and without any provider), the test-only runaway and
# memory-hog templates, unknown agents, bad input, an untrusted keyring,
# a tampered store, and the exit codes of each.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-run.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid

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

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null
# A keyring that does not trust the builder.
"$AF" trust add --keyring "$T/untrusted.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null

R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
cp "$SRC"/tests/fixtures/runtime/templates/*.yaml "$R/templates/"
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2
export AF_STORE="$T/store" AF_KEYRING="$T/kr.json"

echo "-- a workflow agent with its key-value store"
expect 0 "$AF" run backup-manager --data "$T/data" --kv-set 'releases/r1={"version":"1.4.0"}' \
	--input '{"inputs":{"release":"r1"}}'
has '"ok":true'
has '"record":{"version":"1.4.0"}'
has '"index":{"stored":true}'
err_has '"event":"loaded"'
err_has '"event":"guest"'
# The record is still there; the backup index was written.
expect 0 "$AF" run backup-manager@1.0.0 --data "$T/data" --input '{"inputs":{"release":"r1"}}'
has '"ok":true'
echo "-- without a data directory the kv tools are unavailable"
expect 1 "$AF" run backup-manager --input '{"inputs":{"release":"r1"}}'
has '"code":"step_failed"'
has 'unavailable'
echo "-- invalid inputs are the agent's answer"
expect 1 "$AF" run backup-manager --data "$T/data" --input '{"inputs":{"release":5}}'
has '"code":"invalid_input"'

echo "-- an LLM agent with the scripted provider"
cat > "$T/script.json" <<'EOF'
{"responses":[
 {"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
   {"id":"c1","type":"function","function":{"name":"clock_now","arguments":"{}"}}]}}]},
 {"choices":[{"message":{"role":"assistant","content":"{\"summary\":\"fine\",\"verdict\":\"approve\"}"}}]}
]}
EOF
printf '{"inputs":{"change":"diff --git a/x b/x","focus":"errors"}}' > "$T/review.json"
expect 0 "$AF" run senior-reviewer --llm-script "$T/script.json" --input-file "$T/review.json"
has '"output":{"summary":"fine","verdict":"approve"}'
err_has 'scripted'
err_has '"provider":"scripted"'
echo "-- no provider configured: llm_error"
expect 1 "$AF" run senior-reviewer --input-file "$T/review.json"
has '"code":"llm_error"'
err_has 'no model provider'

echo "-- test-only runaway template: stopped by its step limit"
cat > "$T/forever.json" <<'EOF'
{"responses":[{"role":"assistant","content":null,"tool_calls":[
  {"id":"c","type":"function","function":{"name":"clock_now","arguments":"{}"}}]}]}
EOF
expect 1 "$AF" run runaway-llm --llm-script "$T/forever.json" --input '{"inputs":{"topic":"t"}}' \
	--log "$T/runaway.log"
has '"code":"step_limit"'
[ "$(grep -c '"event":"llm"' "$T/runaway.log")" = 200 ] || fail "runaway: expected 200 model calls"

echo "-- test-only memory-hog template: a big request fails cleanly, a small one works"
printf '{"responses":[{"role":"assistant","content":"short"}]}' > "$T/answer.json"
head -c 600000 /dev/zero | tr '\0' 'a' | sed 's/^/{"inputs":{"topic":"/; s/$/"}}/' > "$T/big.json"
expect 1 "$AF" run memory-hog --llm-script "$T/answer.json" --input-file "$T/big.json"
has '"code":"oom"'
expect 0 "$AF" run memory-hog --llm-script "$T/answer.json" --input '{"inputs":{"topic":"t"}}'
has '"output":"short"'

echo "-- unknown agents, bad requests, usage"
expect 2 "$AF" run nobody --input '{}'
has '"code":"not_found"'
expect 2 "$AF" run backup-manager@9.9.9 --input '{}'
expect 2 "$AF" run backup-manager --input '{"inputs":'
has '"code":"invalid_json"'
expect 2 "$AF" run backup-manager
expect 2 "$AF" run --input '{}'
expect 2 "$AF" run backup-manager --input '{}' --input-file "$T/review.json"
expect 2 "$AF" run backup-manager --input '{}' --kv-set a=1
expect 2 "$AF" run backup-manager --input '{}' --timeout-ms 0
expect 2 "$AF" run backup-manager --store "$T/nostore" --input '{}'
expect 0 "$AF" run --help
has 'llm-script'

echo "-- a keyring that does not trust the builder: every agent refused"
expect 2 "$AF" run backup-manager --keyring "$T/untrusted.json" --input '{"inputs":{"release":"r1"}}'
has '"code":"agent_refused"'
err_has '"event":"refused"'
err_has '"reason":"signature"'

echo "-- a tampered native part: that agent refused, the others served"
cp -a "$T/store" "$T/tampered"
# Flip bytes inside every stored blob of backup-manager's .so: find its
# digest, then corrupt the value in place with the LMDB tools.
so=$("$AF" inspect --store "$T/tampered" --json backup-manager | tr -d ' \n' |
	grep -o '"native/[0-9a-f]*":{[^}]*' | grep -o 'sha256:[0-9a-f]*' | head -1 | cut -d: -f2)
[ -n "$so" ] || fail "cannot find the native part digest"
# Hex dump: the key line is the digest's ASCII in hex, the value follows.
key=" $(printf '%s' "$so" | od -An -tx1 | tr -d ' \n')"
mdb_dump -s blobs "$T/tampered" > "$T/blobs.dump"
grep -qx -- "$key" "$T/blobs.dump" || fail "blob $so not in the dump"
awk -v k="$key" '{ if (hit) { sub(/.$/, ($0 ~ /0$/) ? "1" : "0"); hit = 0 } print; if ($0 == k) hit = 1 }' \
	"$T/blobs.dump" > "$T/blobs.tampered"
mdb_load -s blobs -f "$T/blobs.tampered" "$T/tampered" 2> "$T/mdb_load.err"
expect 2 "$AF" run backup-manager --store "$T/tampered" --data "$T/data" --input '{"inputs":{"release":"r1"}}'
has '"code":"agent_refused"'
err_has '"reason":"digest"'
expect 0 "$AF" run senior-reviewer --store "$T/tampered" --llm-script "$T/script.json" --input-file "$T/review.json"
has '"ok":true'

if [ -n "${AF_RUNTIME:-}" ] && [ -x "${AF_RUNTIME}" ]; then
	echo "-- the runtime binary links no pipeline code"
	if nm -D --undefined-only "$AF_RUNTIME" | grep -E ' (git_|yaml_|pcre2_)' ||
	   nm "$AF_RUNTIME" 2>/dev/null | grep -E ' [TtU] (git_|yaml_|pcre2_|gen_|pipe_)'; then
		fail "agentfactory-runtime links libgit2/libyaml/PCRE2/codegen"
	fi
fi

echo "all run checks passed"
