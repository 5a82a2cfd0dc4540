#!/usr/bin/env bash
# test_guest_keys.sh - the guest compares object keys decoded, like the host:
# schema property names holding '"', '\' or a tab are matched whether the
# request writes them escaped as "\"" / "\u0022" or not; "chang\u0065" is
# "change"; a NUL in a property name is refused by `check`.
#
# Env: AF (the binary), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/af-guest-keys.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
KR="$T/kr.json"
"$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp -r "$SRC/templates/bases" "$T/repo/templates/"
cat >"$T/repo/templates/odd.yaml" <<'YAML'
kind: AgentTemplate
apiVersion: agentfactory/v1
name: odd
version: 1.0.0
description: Property names that need escaping in JSON.
extends: base-workflow@^1.0.0
role: tester
goal: keys compared decoded
inputs:
  type: object
  properties:
    "a\"b": {type: string}
    "c\\d": {type: string}
    "e\tf": {type: string}
    change: {type: string}
  required: ["a\"b", "c\\d", "e\tf", change]
  additionalProperties: false
steps:
  - id: now
    tool: clock_now
    args: {}
YAML
find "$T/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$T/keys/template-signer.key" "${files[@]}" >/dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
"$AF" check --repo "$T/repo" --rev HEAD --keyring "$KR" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out" >&2; fail "check refuses property names the guest can match"; }
"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$T/st" >/dev/null 2>"$T/build.err" || { cat "$T/build.err" >&2; exit 1; }

# run INPUT WANT_OK
run() {
	local out
	out=$("$AF" run odd --store "$T/st" --keyring "$KR" --input "$1" 2>/dev/null || true)
	case "$out" in
	'{"ok":true'*) [ "$2" = ok ] || fail "accepted: $1 -> $out" ;;
	*) [ "$2" = refused ] || fail "refused: $1 -> $out" ;;
	esac
}
run '{"inputs":{"a\"b":"1","c\\d":"2","e\tf":"3","change":"4"}}' ok
run '{"inputs":{"a\u0022b":"1","c\u005cd":"2","e\u0009f":"3","chang\u0065":"4"}}' ok
run '{"inputs":{"\u0061\"b":"1","c\\d":"2","e\tf":"3","\u0063hange":"4"}}' ok
# additionalProperties: false still sees a key that differs once decoded
run '{"inputs":{"a\"b":"1","c\\d":"2","e\tf":"3","change":"4","chang\u0066":"5"}}' refused
# a required key missing (written with escapes that decode to another name)
run '{"inputs":{"a\"b":"1","c\\d":"2","e\tf":"3","chang\u0066":"4"}}' refused

# A NUL in a property name can never be matched: `check` refuses it.
sed -i 's/    change: {type: string}/    "g\\0h": {type: string}\n    change: {type: string}/' "$T/repo/templates/odd.yaml"
grep -q 'g\\0h' "$T/repo/templates/odd.yaml" || fail "test setup: no NUL key"
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm nul
rc=0
"$AF" check --repo "$T/repo" --rev HEAD --keyring "$KR" >"$T/check.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "check accepts a NUL property name (exit $rc)"

echo "$failures failures"
[ "$failures" -eq 0 ]
