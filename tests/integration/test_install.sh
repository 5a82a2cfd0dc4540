#!/usr/bin/env bash
# `make install PREFIX=...` lays out a working tree: the installed binaries
# find the installed default policies wherever the tree ends up (nothing is
# baked in at build time), DESTDIR staging included; a policy violation is
# refused by the installed binary, which proves the policies were loaded.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
# The configuration under test (build/<config>/bin/agentfactory).
CONFIG=$(basename "$(dirname "$(dirname "$AF")")")
T=$(mktemp -d /tmp/af-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
unset AF_POLICIES AF_KEYRING AF_STORE
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {
	local want=$1; shift
	set +e; "$@" > "$T/out" 2>&1; local got=$?; set -e
	[ "$got" -eq "$want" ] || { cat "$T/out" >&2; fail "expected exit $want, got $got: $*"; }
}
contains() { grep -q -- "$1" "$T/out" || { cat "$T/out" >&2; fail "output lacks '$1'"; }; }

echo "-- make install PREFIX (CONFIG=$CONFIG)"
make -s -C "$SRC" --no-print-directory CONFIG="$CONFIG" AF_SKIP_DEPS=1 install PREFIX="$T/prefix" > "$T/install.log" 2>&1 \
	|| { cat "$T/install.log" >&2; fail "make install failed"; }
for f in bin/agentfactory bin/agentfactory-runtime share/agentfactory/policies/default.yaml; do
	[ -e "$T/prefix/$f" ] || fail "$f not installed"
done
# Moved elsewhere after installation: still self-contained.
mv "$T/prefix" "$T/moved"
IAF="$T/moved/bin/agentfactory"

"$IAF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$IAF" keygen --role template-signer --out "$T/keys" > /dev/null
"$IAF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
git init -q "$T/repo" && mkdir -p "$T/repo/templates/bases"
cp "$SRC/templates/bases/base-agent.yaml" "$SRC/templates/bases/base-engineer.yaml" "$T/repo/templates/bases/"
cp "$SRC/templates/tester.yaml" "$T/repo/templates/"
"$IAF" sign --key "$T/keys/template-signer.key" $(find "$T/repo/templates" -name '*.yaml') > /dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1

echo "-- the installed binary checks with the installed policies"
expect 0 "$IAF" check --repo "$T/repo" --rev HEAD --keyring "$T/kr.json" --json
contains '"verified": true'

echo "-- and refuses a denied tool (the policies really were loaded)"
cat >> "$T/repo/templates/tester.yaml" <<'YAML'
tools:
  - name: shell_exec
    description: run a shell command
    capability: tool_call
YAML
"$IAF" sign --key "$T/keys/template-signer.key" "$T/repo/templates/tester.yaml" > /dev/null
git -C "$T/repo" commit -qam "denied tool"
expect 1 "$IAF" check --repo "$T/repo" --rev HEAD --keyring "$T/kr.json"
contains "tester.yaml:.*error\[tool.shell\]"

echo "-- without the policies directory: a clear error naming where it looked"
rm -rf "$T/moved/share/agentfactory/policies"
expect 2 "$IAF" check --repo "$T/repo" --rev HEAD --keyring "$T/kr.json"
contains "share/agentfactory/policies"

echo "-- DESTDIR staging"
make -s -C "$SRC" --no-print-directory CONFIG="$CONFIG" AF_SKIP_DEPS=1 install PREFIX=/opt/af DESTDIR="$T/stage" > "$T/install.log" 2>&1 \
	|| { cat "$T/install.log" >&2; fail "make install DESTDIR failed"; }
git -C "$T/repo" reset -q --hard HEAD~1
expect 0 "$T/stage/opt/af/bin/agentfactory" check --repo "$T/repo" --rev HEAD --keyring "$T/kr.json"
echo "ok"
