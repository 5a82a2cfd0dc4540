#!/usr/bin/env bash
# check and trust changes are recorded in the store's audit log when a store
# is given (--store or AF_STORE), refusals included, and the chain verifies.
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-audit-actions.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
fail() { echo "FAIL: $*" >&2; exit 1; }

"$AF" keygen --role template-signer --out "$T/keys" > "$T/id" 2>/dev/null
id=$(cat "$T/id")
"$AF" trust add --keyring "$T/kr.json" --role template-signer --store "$T/st" "$T/keys/template-signer.pub" > /dev/null 2>&1
set +e
"$AF" trust add --keyring "$T/kr.json" --role template-signer --store "$T/st" "$T/keys/template-signer.pub" > /dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "second trust add should be refused (exit 1), got $rc"

git init -q "$T/repo" && mkdir -p "$T/repo/templates"
cp "$SRC/templates/bases/base-agent.yaml" "$T/repo/templates/"
"$AF" sign --key "$T/keys/template-signer.key" "$T/repo/templates/base-agent.yaml" > /dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
AF_STORE="$T/st" "$AF" check --repo "$T/repo" --keyring "$T/kr.json" > /dev/null
echo "# edit" >> "$T/repo/templates/base-agent.yaml" && git -C "$T/repo" commit -qam tamper
set +e
"$AF" check --repo "$T/repo" --keyring "$T/kr.json" --store "$T/st" > /dev/null
rc=$?
set -e
[ "$rc" = 1 ] || fail "check of a tampered template should exit 1, got $rc"
cp "$T/kr.json" "$T/kr2.json"
"$AF" trust revoke --keyring "$T/kr2.json" --store "$T/st" "$id" > /dev/null

"$AF" audit log --store "$T/st" > "$T/log"
cat "$T/log"
[ "$(wc -l < "$T/log")" = 5 ] || fail "expected 5 audit entries"
grep -q "ok  *trust.add  *$id" "$T/log" || fail "trust add not audited"
grep -q "refused  *trust.add  *$id" "$T/log" || fail "refused trust add not audited"
grep -q "ok  *check " "$T/log" || fail "clean check not audited"
grep -q "refused  *check " "$T/log" || fail "failed check not audited"
grep -q "ok  *trust.revoke  *$id" "$T/log" || fail "revoke not audited"
"$AF" audit verify --store "$T/st" > /dev/null || fail "audit chain does not verify"
# Without a store nothing is written anywhere and the commands still work.
"$AF" check --repo "$T/repo" --rev HEAD~1 --keyring "$T/kr.json" > /dev/null
echo "audit of check and trust: ok"
