#!/usr/bin/env bash
# check and trust changes are recorded in the store's audit log when a store
# is given (--store or AF_STORE), refusals included, and the chain verifies;
# trust changes are signed by the root key(s); with AF_AUDIT_CHECKPOINTS every
# signed action leaves a checkpoint there, and `audit verify` catches a store
# put back to an older copy (truncation) without being told about it.
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-audit-actions.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
fail() { echo "FAIL: $*" >&2; exit 1; }

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > "$T/id" 2>/dev/null
id=$(cat "$T/id")
AF_AUDIT_CHECKPOINTS="$T/cps" "$AF" trust add --keyring "$T/kr.json" --role template-signer --store "$T/st" "$T/keys/template-signer.pub" > /dev/null 2>&1
[ -f "$T/cps/latest.json" ] && [ -f "$T/cps/00000000000000000001.json" ] ||
	fail "trust add with AF_AUDIT_CHECKPOINTS wrote no checkpoint"
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
cp -a "$T/st" "$T/st-before-revoke"
AF_AUDIT_CHECKPOINTS="$T/cps" "$AF" trust revoke --keyring "$T/kr2.json" --store "$T/st" "$id" > /dev/null
[ -f "$T/cps/00000000000000000005.json" ] || fail "trust revoke wrote no checkpoint of entry 5"

"$AF" audit log --store "$T/st" > "$T/log"
cat "$T/log"
[ "$(wc -l < "$T/log")" = 5 ] || fail "expected 5 audit entries"
grep -q "ok  *trust.add  *$id" "$T/log" || fail "trust add not audited"
grep -q "refused  *trust.add  *$id" "$T/log" || fail "refused trust add not audited"
grep -q "ok  *check " "$T/log" || fail "clean check not audited"
grep -q "refused  *check " "$T/log" || fail "failed check not audited"
grep -q "ok  *trust.revoke  *$id" "$T/log" || fail "revoke not audited"
"$AF" audit verify --store "$T/st" > /dev/null || fail "audit chain does not verify"
# Signed entries: the trust changes carry the root key's signature.
"$AF" audit verify --store "$T/st" --keyring "$T/kr2.json" > "$T/out" || fail "signed audit does not verify"
grep -q "signatures verified" "$T/out" || fail "audit verify --keyring did not check signatures"
AF_AUDIT_CHECKPOINTS="$T/cps" "$AF" audit verify --store "$T/st" --keyring "$T/kr2.json" > "$T/out" ||
	fail "audit verify against the automatic checkpoint: $(cat "$T/out")"
grep -q "checkpoint OK" "$T/out" || fail "the automatic checkpoint was not checked"
# The store put back to its copy from before the revoke: the chain alone is
# fine, the automatic checkpoint says truncated.
rm -rf "$T/st" && mv "$T/st-before-revoke" "$T/st"
"$AF" audit verify --store "$T/st" > /dev/null || fail "the older copy's chain should verify on its own"
set +e
AF_AUDIT_CHECKPOINTS="$T/cps" "$AF" audit verify --store "$T/st" --keyring "$T/kr2.json" > "$T/out" 2> "$T/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a truncated log must fail against the automatic checkpoint (exit 1), got $rc"
grep -q "truncated" "$T/err" || fail "truncation not named: $(cat "$T/err")"
# The checkpoints removed as well: a missing latest.json is a finding too.
set +e
AF_AUDIT_CHECKPOINTS="$T/nowhere" "$AF" audit verify --store "$T/st" --keyring "$T/kr2.json" > /dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "a missing automatic checkpoint must fail (exit 1), got $rc"
# Without a store nothing is written anywhere and the commands still work.
"$AF" check --repo "$T/repo" --rev HEAD~1 --keyring "$T/kr.json" > /dev/null
echo "audit of check and trust: ok"
