#!/usr/bin/env bash
# make demo: the pipeline end to end on the sample catalogue.
#
# Generates fresh development keys, copies templates/ into a new git
# repository, signs every template, commits, and runs `agentfactory check` at
# HEAD. Then it tampers with one template in a second commit and shows that
# check names the file and exits 1; builds the clean revision into a signed
# artifact store, rebuilds (all cache hits) and verifies the store.
# Everything lives in a temporary directory whose path is printed at the end.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:-$(pwd)}
WORK=$(mktemp -d /tmp/agentfactory-demo.XXXXXX)
export AF_POLICIES="$SRC/policies"

step() { printf '\n==> %s\n' "$*"; }

step "Generating development keys in $WORK/keys"
signer_id=$("$AF" keygen --role template-signer --out "$WORK/keys")
"$AF" trust add --keyring "$WORK/keyring.json" --role template-signer \
	--not-after +24h "$WORK/keys/template-signer.pub" >/dev/null
echo "template-signer key $signer_id trusted for 24h in $WORK/keyring.json"

step "Creating a git repository from the sample catalogue: $WORK/repo"
git init -q "$WORK/repo"
cp -r "$SRC/templates" "$WORK/repo/templates"
find "$WORK/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$WORK/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$WORK/keys/template-signer.key" "${files[@]}" | sed "s|$WORK/repo/||"
git -C "$WORK/repo" add -A
git -C "$WORK/repo" -c user.name=demo -c user.email=demo@example.invalid \
	commit -qm "sample catalogue, signed"

step "agentfactory check --repo $WORK/repo --rev HEAD"
"$AF" check --repo "$WORK/repo" --rev HEAD --keyring "$WORK/keyring.json"

step "Resolved form of security-expert (3-level inheritance applied, canonical JSON)"
"$AF" resolve --repo "$WORK/repo" --rev HEAD --keyring "$WORK/keyring.json" security-expert | fold -w 100
echo

step "Tampering with one template after signing (a new commit)"
victim=$(find "$WORK/repo/templates" -name '*.yaml' | sort | tail -1)
printf '\n# an unsigned edit\n' >> "$victim"
git -C "$WORK/repo" -c user.name=demo -c user.email=demo@example.invalid \
	commit -qam "tamper"
set +e
"$AF" check --repo "$WORK/repo" --rev HEAD --keyring "$WORK/keyring.json"
rc=$?
set -e
echo "check exited with $rc (1 = findings)"
[ "$rc" -eq 1 ] || { echo "demo: expected exit 1 after tampering" >&2; exit 1; }
echo "HEAD~1 is still clean:"
"$AF" check --repo "$WORK/repo" --rev HEAD~1 --keyring "$WORK/keyring.json" | tail -1

step "Building every concrete agent: C -> WebAssembly -> native code, signed, in LMDB"
"$AF" keygen --role builder --out "$WORK/keys" > /dev/null
"$AF" trust add --keyring "$WORK/keyring.json" --role builder "$WORK/keys/builder.pub" > /dev/null
"$AF" build --repo "$WORK/repo" --rev HEAD~1 --keyring "$WORK/keyring.json" \
	--builder-key "$WORK/keys/builder.key" --store "$WORK/store"

step "A second build of the same revision compiles nothing (cache hits)"
"$AF" build --repo "$WORK/repo" --rev HEAD~1 --keyring "$WORK/keyring.json" \
	--builder-key "$WORK/keys/builder.key" --store "$WORK/store" 2>/dev/null | tail -1

step "agentfactory verify: every artifact's signature and part digests"
"$AF" verify --store "$WORK/store" --keyring "$WORK/keyring.json" | tail -1
"$AF" inspect --store "$WORK/store" --keyring "$WORK/keyring.json" backup-manager | head -20

step "Done"
echo "keys:     $WORK/keys"
echo "keyring:  $WORK/keyring.json"
echo "repo:     $WORK/repo"
echo "store:    $WORK/store"
echo "Remove with: rm -rf $WORK"
