#!/usr/bin/env bash
# test_keys_cli.sh - end-to-end checks of `agentfactory keygen`, `trust` and
# `sign`: files and modes, refusals and their exit codes, help and bad flags.
#
# Env: AF = path to the agentfactory binary (default: build/release/bin/...).
set -euo pipefail

AF=${AF:-$(pwd)/build/release/bin/agentfactory}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

failures=0
checks=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# expect WANT_RC DESCRIPTION CMD...  - run CMD, compare its exit code; on a
# mismatch print the command and its output. Output stays in out.txt/err.txt.
expect() {
	local want=$1 desc=$2 rc=0
	shift 2
	checks=$((checks + 1))
	"$@" >out.txt 2>err.txt || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		sed 's/^/    stdout: /' out.txt >&2
		sed 's/^/    stderr: /' err.txt >&2
	fi
}

# contains FILE TEXT DESCRIPTION
contains() {
	checks=$((checks + 1))
	if ! grep -qF -- "$2" "$1"; then
		fail "$3: '$2' not found in $1:"
		sed 's/^/    /' "$1" >&2 2>/dev/null || echo "    ($1 is missing)" >&2
	fi
}

# --- help and usage errors on every command --------------------------------
for cmd in keygen trust sign; do
	expect 0 "$cmd --help" "$AF" "$cmd" --help
	contains out.txt "usage: agentfactory $cmd" "$cmd --help prints usage"
	contains out.txt "exit codes" "$cmd --help lists exit codes"
	expect 2 "$cmd with an unknown flag" "$AF" "$cmd" --no-such-flag
	contains err.txt "--help" "$cmd bad flag points at --help"
done
for sub in init add revoke threshold renew verify list; do
	expect 0 "trust $sub --help" "$AF" trust "$sub" --help
done
expect 2 "trust without subcommand" "$AF" trust
expect 2 "trust unknown subcommand" "$AF" trust frobnicate
expect 2 "keygen without --role" "$AF" keygen --out keys
expect 2 "keygen unknown role" "$AF" keygen --role admin --out keys
expect 2 "keygen without --out" "$AF" keygen --role builder
expect 2 "keygen --bits 1024" "$AF" keygen --role builder --out keys --bits 1024
expect 2 "keygen --bits junk" "$AF" keygen --role builder --out keys --bits 20x48
expect 2 "sign without --key" "$AF" sign some.yaml
expect 2 "sign without files" "$AF" sign --key nothing.key
expect 2 "trust list without keyring" env -u AF_KEYRING "$AF" trust list

# --- keygen -----------------------------------------------------------------
expect 0 "keygen template-signer" "$AF" keygen --role template-signer --out keys/nested
signer_id=$(cat out.txt)
[[ "$signer_id" =~ ^[0-9a-f]{64}$ ]] || fail "keygen printed '$signer_id', not a 64-hex key id"
[ -f keys/nested/template-signer.key ] || fail "keygen did not write template-signer.key"
[ -f keys/nested/template-signer.pub ] || fail "keygen did not write template-signer.pub"
mode=$(stat -c %a keys/nested/template-signer.key 2>/dev/null || echo missing)
[ "$mode" = 600 ] || fail "private key mode is $mode, want 600"
mode=$(stat -c %a keys/nested 2>/dev/null || echo missing)
[ "$mode" = 700 ] || fail "key directory mode is $mode, want 700"
contains keys/nested/template-signer.key "-----BEGIN PRIVATE KEY-----" "private key is PKCS#8 PEM"
contains keys/nested/template-signer.pub "-----BEGIN PUBLIC KEY-----" "public key is PEM"

# The id is the SHA-256 of the DER public key, as openssl computes it.
if command -v openssl >/dev/null; then
	der_id=$(openssl pkey -pubin -in keys/nested/template-signer.pub -outform DER 2>/dev/null |
		sha256sum | cut -d' ' -f1) || der_id=unreadable
	[ "$der_id" = "$signer_id" ] || fail "key id $signer_id is not sha256(DER SPKI) $der_id"
fi

cp keys/nested/template-signer.key before.key 2>/dev/null || : >before.key
expect 1 "keygen refuses to overwrite" "$AF" keygen --role template-signer --out keys/nested
contains err.txt "already exists" "overwrite refusal says why"
cmp -s before.key keys/nested/template-signer.key || fail "refused keygen still changed the key"
expect 0 "keygen --force replaces" "$AF" keygen --role template-signer --out keys/nested --force
new_id=$(cat out.txt)
[ "$new_id" != "$signer_id" ] || fail "keygen --force kept the same key"
signer_id=$new_id

expect 0 "keygen builder" "$AF" keygen --role builder --out keys/nested --bits 3072
builder_id=$(cat out.txt)
expect 0 "keygen stranger" "$AF" keygen --role template-signer --out stranger
expect 0 "keygen root" "$AF" keygen --role root --out root
root_id=$(cat out.txt)
expect 0 "keygen a second root" "$AF" keygen --role root --out root2
root2_id=$(cat out.txt)
expect 0 "keygen an intruder's root" "$AF" keygen --role root --out intruder

# Every change of a keyring is signed by its root key(s).
expect 2 "trust add without a root key" env -u AF_ROOT_KEY "$AF" trust add --keyring ring.json \
	--role template-signer keys/nested/template-signer.pub
contains err.txt "--root-key" "missing root key says what to pass"
[ ! -e ring.json ] || fail "trust add without a root key wrote a keyring"
export AF_ROOT_KEY=root/root.key

# --- trust ------------------------------------------------------------------
expect 0 "trust add signer (creates keyring)" "$AF" trust add --keyring ring.json \
	--role template-signer --not-before 2020-01-01 --not-after +30d keys/nested/template-signer.pub
[ "$(cat out.txt)" = "$signer_id" ] || fail "trust add printed '$(cat out.txt)', want $signer_id"
[ -f ring.json ] || fail "trust add did not create the keyring"
contains ring.json '"format": "agentfactory-keyring/v2"' "keyring format"
contains ring.json '"version": 1' "first keyring version"
contains ring.json "\"keyid\": \"$root_id\"" "keyring signed by the root key"
expect 1 "trust add twice is refused" "$AF" trust add --keyring ring.json \
	--role template-signer keys/nested/template-signer.pub
contains err.txt "already trusted" "duplicate trust says why"
export AF_KEYRING=ring.json
expect 0 "trust add builder via AF_KEYRING" "$AF" trust add --role builder keys/nested/builder.pub
expect 2 "trust add a private key file" "$AF" trust add --role builder keys/nested/builder.key
expect 2 "trust add a missing file" "$AF" trust add --role builder nope.pub
expect 2 "trust add bad time" "$AF" trust add --role release-manager --not-after someday \
	keys/nested/builder.pub
expect 2 "trust add inverted window" "$AF" trust add --role release-manager \
	--not-before 2030-01-01 --not-after 2029-01-01 keys/nested/builder.pub
expect 2 "trust add without PUBKEY" "$AF" trust add --role builder

expect 0 "trust list" "$AF" trust list
contains out.txt "$signer_id" "list shows the signer"
contains out.txt "$builder_id" "list shows the builder"
contains out.txt "valid" "list shows status"
expect 0 "trust list --json" "$AF" trust list --json
contains out.txt "\"status\": \"valid\"" "json list shows status"
if command -v python3 >/dev/null; then
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["keys"])==3; assert sorted(k["role"] for k in d["keys"])==["builder","root","template-signer"]' out.txt ||
		fail "trust list --json is not the expected JSON"
fi

# --- sign -------------------------------------------------------------------
cat >alpha.yaml <<'EOF'
kind: AgentTemplate
name: alpha
version: 1.2.0
role: Reviewer
EOF
printf 'just: data\n' >notatemplate.yaml
printf 'name: [unclosed\n' >broken.yaml

expect 0 "sign a template" "$AF" sign --key keys/nested/template-signer.key alpha.yaml
contains out.txt "signed alpha.yaml (alpha@1.2.0) with key $signer_id" "sign output line"
[ -f alpha.yaml.sig ] || fail "sign did not write alpha.yaml.sig"
contains alpha.yaml.sig '"payloadType": "application/vnd.agentfactory.template.v1+json"' "envelope type"
contains alpha.yaml.sig "\"keyid\": \"$signer_id\"" "envelope key id"
expect 0 "sign with --keyring check" "$AF" sign --key keys/nested/template-signer.key \
	--keyring ring.json alpha.yaml
expect 1 "sign refuses an untrusted key with --keyring" "$AF" sign \
	--key stranger/template-signer.key --keyring ring.json alpha.yaml
contains err.txt "not in the keyring" "untrusted signer says why"
expect 1 "sign refuses a builder key with --keyring" "$AF" sign \
	--key keys/nested/builder.key --keyring ring.json alpha.yaml
contains err.txt "not as template-signer" "wrong-role signer says why"
expect 2 "sign a file without name/version" "$AF" sign --key keys/nested/template-signer.key \
	notatemplate.yaml
contains err.txt "notatemplate.yaml" "missing name/version names the file"
[ ! -e notatemplate.yaml.sig ] || fail "a .sig was written for a non-template"
expect 2 "sign a YAML syntax error" "$AF" sign --key keys/nested/template-signer.key broken.yaml
expect 2 "sign a missing file" "$AF" sign --key keys/nested/template-signer.key missing.yaml
expect 2 "sign with a public key" "$AF" sign --key keys/nested/template-signer.pub alpha.yaml
expect 2 "sign: one bad file fails the run" "$AF" sign --key keys/nested/template-signer.key \
	alpha.yaml missing.yaml
contains out.txt "signed alpha.yaml" "the good file is still signed"

# --- revoke -----------------------------------------------------------------
expect 2 "revoke a malformed id" "$AF" trust revoke "${signer_id:0:12}"
expect 1 "revoke an unknown id" "$AF" trust revoke "$(printf '0%.0s' {1..64})"
expect 0 "revoke the signer" "$AF" trust revoke --reason "laptop lost" "$signer_id"
expect 1 "revoke twice" "$AF" trust revoke "$signer_id"
contains err.txt "already revoked" "double revoke says why"
expect 0 "trust list after revoke" "$AF" trust list
contains out.txt "revoked" "list shows the revocation"
contains out.txt "laptop lost" "list shows the reason"
expect 1 "a revoked key cannot be re-added" "$AF" trust add --role release-manager \
	keys/nested/template-signer.pub
expect 1 "sign --keyring with a revoked key" "$AF" sign --key keys/nested/template-signer.key \
	--keyring ring.json alpha.yaml
contains err.txt "revoked" "revoked signer says why"
expect 2 "trust revoke on a missing keyring" "$AF" trust revoke --keyring none.json "$builder_id"

# A damaged keyring is refused, naming the file.
sed 's/"template-signer"/"admin"/' ring.json >bad.json 2>/dev/null || : >bad.json
expect 2 "trust list on a corrupt keyring" "$AF" trust list --keyring bad.json
contains err.txt "bad.json" "corrupt keyring error names the file"

# --- signed keyrings: hand edits, replays, rotation, thresholds ------------------
cp ring.json good.json
expect 0 "trust verify a signed keyring" "$AF" trust verify --keyring good.json
contains out.txt "ok good.json version" "verify says ok and the version"
# A hand edit: the revocation deleted (the file still parses).
python3 - good.json edited.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["signed"]["revoked"] = []
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY
expect 1 "trust verify refuses a hand-edited keyring" "$AF" trust verify --keyring edited.json
contains err.txt "edited after signing" "hand edit says why"
expect 2 "sign --keyring refuses a hand-edited keyring" "$AF" sign \
	--key keys/nested/template-signer.key --keyring edited.json alpha.yaml
expect 1 "trust add refuses to build on a hand-edited keyring" "$AF" trust add \
	--keyring edited.json --role release-manager keys/nested/builder.pub
# The wrong root key cannot sign a change; the file is left as it was.
expect 1 "trust add signed by a stranger's root" "$AF" trust add --root-key intruder/root.key \
	--role release-manager keys/nested/builder.pub
contains err.txt "root key of version" "stranger's root says why"
cmp -s ring.json good.json || fail "a refused change still rewrote the keyring"
# Rotation: add a second root (signed by the first), raise the threshold to 2.
expect 0 "trust add a second root" "$AF" trust add --role root root2/root.pub
cp ring.json v_before_threshold.json
expect 1 "threshold 2 signed by one root only" "$AF" trust threshold --threshold 2
expect 0 "threshold 2 signed by both roots" "$AF" trust threshold --threshold 2 \
	--root-key root/root.key --root-key root2/root.key
contains err.txt "root threshold 2" "threshold change reported"
expect 1 "one root alone can no longer change the keyring" "$AF" trust renew
expect 0 "both roots renew it" "$AF" trust renew --root-key root/root.key \
	--root-key root2/root.key --expires +30d
expect 0 "verify as a successor of an older version" "$AF" trust verify \
	--previous v_before_threshold.json
# Replay: an older, genuinely signed version is not a successor of the new one.
expect 1 "an older version is refused as a successor (replay)" "$AF" trust verify \
	--keyring v_before_threshold.json --previous ring.json
contains err.txt "not newer than version" "replay says why"
# An unsigned (v1) keyring is not trusted; trust init migrates it.
python3 - good.json v1.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["signed"]
d = {"format": "agentfactory-keyring/v1", "keys": [k for k in d["keys"] if k["role"] != "root"],
     "revoked": d["revoked"]}
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY
expect 2 "sign --keyring refuses an unsigned keyring" "$AF" sign \
	--key stranger/template-signer.key --keyring v1.json alpha.yaml
contains err.txt "not signed" "unsigned keyring says why"
expect 0 "trust init signs an old unsigned keyring" "$AF" trust init --keyring v1.json
expect 0 "the migrated keyring verifies" "$AF" trust verify --keyring v1.json
expect 1 "trust init twice" "$AF" trust init --keyring v1.json
expect 2 "trust init --threshold 0" "$AF" trust init --keyring new.json --threshold 0
# An expired keyring is refused by every user, and renewed by its root.
expect 0 "trust init a short-lived keyring" "$AF" trust init --keyring short.json \
	--expires +1h
AF_NOW=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ) expect 1 "an expired keyring" \
	"$AF" trust verify --keyring short.json
contains err.txt "expired" "expired keyring says why"

if [ "$failures" -ne 0 ]; then
	echo "test_keys_cli: $failures failure(s) (see FAIL lines above)" >&2
	exit 1
fi
echo "test_keys_cli: all $checks checks passed"
