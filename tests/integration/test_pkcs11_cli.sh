#!/usr/bin/env bash
# Hardware-backed keys: private keys held in a PKCS#11 token (SoftHSM2 in a
# temporary SOFTHSM2_CONF) are used by URI (`--key pkcs11:...`,
# `--root-key pkcs11:...`) through OpenSSL's pkcs11 engine: templates signed
# in the token verify with its exported public key, the keyring's root key
# lives in the token (trust init/add signed there), the key ids match, and a
# wrong PIN, an unknown object or a public-only use are refused cleanly.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-pkcs11.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_ROOT_KEY AF_KEYRING AF_STORE
# Under `make asan`: the engine's one-time method tables are not ours (see
# the suppression file); full stacks so the suppressions can match them.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$SRC/tests/integration/lsan-pkcs11.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {
	local want=$1; shift
	set +e; "$@" > "$T/out" 2>&1; local got=$?; set -e
	if [ "$got" -ne "$want" ]; then
		cat "$T/out" >&2
		fail "expected exit $want, got $got: $*"
	fi
}
contains() { grep -q -- "$1" "$T/out" || { cat "$T/out" >&2; fail "output lacks '$1'"; }; }

MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -f "$MODULE" ] || fail "SoftHSM2 is not installed ($MODULE; Debian package softhsm2)"
command -v pkcs11-tool >/dev/null || fail "pkcs11-tool is not installed (Debian package opensc)"

# ---- a token of our own ------------------------------------------------------
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$T/tokens" > "$T/softhsm2.conf"
export SOFTHSM2_CONF="$T/softhsm2.conf"
softhsm2-util --init-token --free --label af-test --pin 123456 --so-pin 654321 > /dev/null
p11() { pkcs11-tool --module "$MODULE" --token-label af-test --login --pin 123456 "$@"; }
p11 --keypairgen --key-type rsa:2048 --label signer --id 01 > /dev/null 2>&1
p11 --keypairgen --key-type rsa:2048 --label root --id 02 > /dev/null 2>&1
for k in signer:01 root:02; do
	p11 --read-object --type pubkey --id "${k#*:}" -o "$T/${k%%:*}.der" > /dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/${k%%:*}.der" -out "$T/${k%%:*}.pub"
done
export AF_PKCS11_MODULE="$MODULE" AF_PKCS11_PIN=123456
SIGNER_URI="pkcs11:token=af-test;object=signer;type=private"
ROOT_URI="pkcs11:token=af-test;object=root;type=private"
signer_id=$(openssl pkey -pubin -in "$T/signer.pub" -outform DER | sha256sum | cut -d' ' -f1)

# ---- the keyring's root key in the token ---------------------------------------
expect 0 "$AF" trust init --keyring "$T/kr.json" --root-key "$ROOT_URI"
expect 0 "$AF" trust add --keyring "$T/kr.json" --root-key "$ROOT_URI" --role template-signer \
	"$T/signer.pub"
grep -qx "$signer_id" "$T/out" || fail "trust add printed another key id: $(cat "$T/out")"
expect 0 "$AF" trust verify --keyring "$T/kr.json"
contains "version 2"
root_id=$(openssl pkey -pubin -in "$T/root.pub" -outform DER | sha256sum | cut -d' ' -f1)
grep -q "\"keyid\": \"$root_id\"" "$T/kr.json" || fail "the keyring is not signed by the token's root key"

# ---- templates signed in the token ---------------------------------------------
git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp "$SRC/templates/bases/base-agent.yaml" "$T/repo/templates/"
expect 0 "$AF" sign --key "$SIGNER_URI" --keyring "$T/kr.json" "$T/repo/templates/base-agent.yaml"
contains "with key $signer_id"
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
expect 0 "$AF" check --repo "$T/repo" --rev HEAD --keyring "$T/kr.json"
# The signature is an ordinary RSA-PSS one: OpenSSL verifies it with the
# exported public key over the DSSE PAE (the token did not sign something else).
python3 - "$T/repo/templates/base-agent.yaml.sig" "$T/pae" "$T/sig" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
body = base64.b64decode(env["payload"])
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
open(sys.argv[2], "wb").write(pae)
open(sys.argv[3], "wb").write(base64.b64decode(env["signatures"][0]["sig"]))
PY
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
	-verify "$T/signer.pub" -signature "$T/sig" "$T/pae" > /dev/null ||
	fail "openssl does not verify the token's signature as RSA-PSS/SHA-256, salt 32"

# ---- an audit checkpoint signed in the token ------------------------------------
expect 0 "$AF" trust renew --keyring "$T/kr.json" --root-key "$ROOT_URI" --store "$T/st"
expect 0 "$AF" audit checkpoint --store "$T/st" --key "$ROOT_URI" --out "$T/cp.json"
expect 0 "$AF" audit verify --store "$T/st" --keyring "$T/kr.json" --checkpoint "$T/cp.json"
contains "checkpoint OK"
contains "signatures verified"

# ---- refusals --------------------------------------------------------------------
AF_PKCS11_PIN=000000 expect 2 "$AF" sign --key "$SIGNER_URI" "$T/repo/templates/base-agent.yaml"
contains "PIN"
expect 2 "$AF" sign --key "pkcs11:token=af-test;object=nosuchkey;type=private" \
	"$T/repo/templates/base-agent.yaml"
contains "no such private key"
expect 1 "$AF" trust add --keyring "$T/kr.json" --root-key "$ROOT_URI" --role builder "$SIGNER_URI"
contains "PEM file"
# A token key that is not a root of the keyring cannot sign its next version.
expect 1 "$AF" trust add --keyring "$T/kr.json" --root-key "$SIGNER_URI" --role builder \
	"$T/root.pub"
contains "root key of version 3"

echo "pkcs11: ok"
