#!/usr/bin/env bash
# test_reproducible.sh - standard attestations and reproducible bundles, end
# to end on the whole sample catalogue, checked with tools that are not ours:
#
#  1. two builds of the same commit from different clone paths, at different
#     times, with another TZ, umask, locale, -j and working directory: every
#     artifact's manifest digest identical (counted), the bundle files
#     exported with detached signatures byte-identical, the inline bundles
#     identical but for signatures/, the signatures themselves different;
#     a bundle imports with the other build's signatures (they sign digests);
#     build 1 links the guest library objects compiled once for the build,
#     build 2 compiles them into every agent (AF_GUEST_CACHE=0): same bytes;
#  2. each provenance attestation verified by an independent DSSE verifier
#     (tests/tools/dsse_verify.py: python3-securesystemslib) with the builder
#     public key and the subjects taken from the manifest; tampered, wrongly
#     keyed or mismatched envelopes refused by it and by agentfactory;
#  3. every SBOM validated against the CycloneDX 1.5 JSON schema by
#     @cyclonedx/cyclonedx-library (tests/tools/cyclonedx-validate.js);
#  4. the source recorded as a canonical URI (credentials and local paths
#     never appear), the builder id from --builder-id / CI variables;
#  5. bundles repacked by GNU tar (pax, gnu, posix formats) and copied by
#     skopeo import; `agentfactory verify-reproducible` says identical for
#     the same commit and names the artifact and part for a changed one.
#
# Env: AF, AF_SRCDIR; AF_NODE and AF_NPM (npm test tools, `make npm-deps`).
set -euo pipefail
. "${AF_SRCDIR:?}/tests/lib/tools.sh"
need_tool "${AF_NODE:-}" "Node 22 (make npm-deps)"

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
NODE=${AF_NODE:?AF_NODE must point at node (make npm-deps)}
NPM=${AF_NPM:?AF_NPM must point at the npm test tools (make npm-deps)}
# Debian's python3 (python3-securesystemslib), not another one on PATH
PY=/usr/bin/python3
T=$(mktemp -d /tmp/af-repro.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING AF_BUILDER_ID AF_INVOCATION_ID GITHUB_ACTIONS GITLAB_CI \
	GITHUB_SERVER_URL GITHUB_REPOSITORY CI_PROJECT_URL WASI_SDK_PATH || true

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() { checks=$((checks + 1)); }
# expect WANT_RC DESCRIPTION CMD... - output in $T/out and $T/err
expect() {
	local want=$1 desc=$2 rc=0
	shift 2
	checks=$((checks + 1))
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		sed 's/^/    stdout: /' "$T/out" | head -20 >&2
		sed 's/^/    stderr: /' "$T/err" | head -20 >&2
	fi
}
contains() {
	checks=$((checks + 1))
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; head -20 "$1" | sed 's/^/    /' >&2; }
}
lacks() {
	checks=$((checks + 1))
	! grep -qF -- "$2" "$1" || { fail "$3: '$2' found in $(basename "$1")"; }
}

# --- keys, and the catalogue in an "origin" repository ----------------------
"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/other" >/dev/null 2>&1
KR="$T/kr.json"
"$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$T/other.json" --role builder "$T/other/builder.pub" >/dev/null 2>&1

git init -q "$T/work"
cp -r "$SRC/templates" "$T/work/"
find "$T/work/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/work/templates" -name '*.yaml' | sort)
"$AF" sign --key "$T/keys/template-signer.key" "${files[@]}" >/dev/null
git -C "$T/work" add -A && git -C "$T/work" commit -qm catalogue
git clone -q --bare "$T/work" "$T/origin.git"
# Two clones at different depths; both track the same remote URL, given with
# credentials as CI systems often do: the provenance must keep neither.
git clone -q "$T/origin.git" "$T/a/clone"
mkdir -p "$T/b/some/much/deeper/place"
git clone -q "$T/origin.git" "$T/b/some/much/deeper/place/checkout"
REMOTE=https://ci-user:s3cret@git.example.invalid/platform/agents.git
git -C "$T/a/clone" remote set-url origin "$REMOTE"
git -C "$T/b/some/much/deeper/place/checkout" remote set-url origin "$REMOTE"
COMMIT=$(git -C "$T/a/clone" rev-parse HEAD)

# --- 1. two builds, different everything but the commit ----------------------
checks=$((checks + 1))
(cd "$T/a" && umask 022 && TZ=UTC LC_ALL=C "$AF" build --repo "$T/a/clone" --rev "$COMMIT" \
	--keyring "$KR" --builder-key "$T/keys/builder.key" --store "$T/s1" -j 2) \
	>"$T/build1.out" 2>&1 || { cat "$T/build1.out" >&2; echo "FAIL: build 1" >&2; exit 1; }
sleep 2 # another second in every timestamp the builds could leak
mkdir -p "$T/elsewhere"
checks=$((checks + 1))
(cd "$T/elsewhere" && umask 077 && TZ=Asia/Tokyo LC_ALL=C.UTF-8 AF_GUEST_CACHE=0 "$AF" build \
	--repo "$T/b/some/much/deeper/place/checkout" --rev "$COMMIT" --keyring "$KR" \
	--builder-key "$T/keys/builder.key" --store "$T/s2" -j 1) \
	>"$T/build2.out" 2>&1 || { cat "$T/build2.out" >&2; echo "FAIL: build 2" >&2; exit 1; }
tail -1 "$T/build1.out"
tail -1 "$T/build2.out"

"$AF" ls --store "$T/s1" --json >"$T/ls1.json"
"$AF" ls --store "$T/s2" --json >"$T/ls2.json"
read -r n_identical n_different n_total < <($PY - "$T/ls1.json" "$T/ls2.json" <<'EOF'
import json, sys
def load(p):
    d = json.load(open(p))
    arts = d["artifacts"] if isinstance(d, dict) else d
    return {f'{a["name"]}@{a["version"]}': a["manifest_digest"] for a in arts}
a, b = load(sys.argv[1]), load(sys.argv[2])
same = sum(1 for k in a if b.get(k) == a[k])
print(same, len(set(a) | set(b)) - same, len(a))
EOF
)
echo "reproducibility: $n_identical identical, $n_different different artifact manifests (of $n_total)"
checks=$((checks + 1))
if [ "$n_total" -lt 17 ] || [ "$n_different" -ne 0 ] || [ "$n_identical" -ne "$n_total" ]; then
	fail "two builds of $COMMIT: $n_identical identical, $n_different different of $n_total"
fi

# bundles: detached signatures -> the bundle files are byte-identical
expect 0 "export 1 (detached)" "$AF" export --store "$T/s1" --out "$T/b1.tar" --signatures "$T/b1.sigs.tar"
D1=$(sed -n 's/^content digest //p' "$T/out")
expect 0 "export 2 (detached)" "$AF" export --store "$T/s2" --out "$T/b2.tar" --signatures "$T/b2.sigs.tar"
D2=$(sed -n 's/^content digest //p' "$T/out")
checks=$((checks + 1))
[ -n "$D1" ] && [ "$D1" = "$D2" ] || fail "bundle content digests differ: '$D1' '$D2'"
checks=$((checks + 1))
cmp -s "$T/b1.tar" "$T/b2.tar" || fail "bundle files of two builds differ"
checks=$((checks + 1))
! cmp -s "$T/b1.sigs.tar" "$T/b2.sigs.tar" || fail "signatures identical: RSA-PSS is randomised, they cannot be"
echo "bundle: $(sha256sum <"$T/b1.tar" | cut -c1-16)... identical files ($(stat -c %s "$T/b1.tar") bytes), content $D1"
# inline signatures: identical but for signatures/
expect 0 "export 1 (inline)" "$AF" export --store "$T/s1" --out "$T/i1.tar"
expect 0 "export 2 (inline)" "$AF" export --store "$T/s2" --out "$T/i2.tar"
mkdir -p "$T/x1" "$T/x2"
tar -xf "$T/i1.tar" -C "$T/x1" && tar -xf "$T/i2.tar" -C "$T/x2"
checks=$((checks + 1))
diff -r "$T/x1/blobs" "$T/x2/blobs" >/dev/null && cmp -s "$T/x1/index.json" "$T/x2/index.json" &&
	cmp -s "$T/x1/oci-layout" "$T/x2/oci-layout" || fail "inline bundles differ outside signatures/"
checks=$((checks + 1))
[ "$(ls "$T/x1/signatures" | wc -l)" -eq $((2 * n_total)) ] ||
	fail "expected a builder envelope and an attestation per artifact in signatures/"
checks=$((checks + 1))
! grep -rq dsse "$T/x1/index.json" "$T/x1/blobs" || fail "a signature is named by a digest"
# signatures are over digests: build 1's bundle with build 2's signatures
expect 0 "bundle 1 + signatures 2" "$AF" import --store "$T/mix" --keyring "$KR" \
	--signatures "$T/b2.sigs.tar" "$T/b1.tar"
contains "$T/out" "($n_total with a provenance attestation)" "attestations imported"
expect 0 "verify the mixed store" "$AF" verify --store "$T/mix" --keyring "$KR"
expect 1 "bundle without its signatures" "$AF" import --store "$T/nosig" --keyring "$KR" "$T/b1.tar"
contains "$T/err" "signatures file" "missing signatures named"

# --- 2. the attestations, checked by an independent verifier ---------------
names=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d["artifacts"] if isinstance(d,dict) else d; print(" ".join(a["name"] for a in d))' "$T/ls1.json")
n_att=0
for name in $names; do
	"$AF" inspect --store "$T/s1" --keyring "$KR" --provenance "$name" >"$T/att.json" ||
		{ fail "inspect --provenance $name"; continue; }
	"$AF" inspect --store "$T/s1" --json "$name" >"$T/insp.json"
	mapfile -t subjects < <($PY - "$T/insp.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["parts"]:
    if p["name"] not in ("provenance", "sbom"):
        print(f'--subject={d["name"]}@{d["version"]}/{p["name"]}={p["digest"][7:]}')
EOF
)
	checks=$((checks + 1))
	if $PY "$SRC/tests/tools/dsse_verify.py" "$T/att.json" "$T/keys/builder.pub" \
		--predicate-type https://slsa.dev/provenance/v1 "${subjects[@]}" >"$T/v.out" 2>&1; then
		n_att=$((n_att + 1))
	else
		fail "independent DSSE verification of $name: $(cat "$T/v.out")"
	fi
	"$AF" inspect --store "$T/s1" --sbom "$name" >"$T/sbom-$name.json"
done
echo "attestations verified by securesystemslib: $n_att of $n_total"
# the verifier is not vacuous: another key, a flipped payload, a wrong subject
expect 1 "dsse_verify: wrong key" $PY "$SRC/tests/tools/dsse_verify.py" "$T/att.json" "$T/other/builder.pub"
contains "$T/out" "FAIL" "wrong key refused"
$PY - "$T/att.json" "$T/flipped.json" <<'EOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
st["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example.invalid/builder"
env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
json.dump(env, open(sys.argv[2], "w"))
EOF
expect 1 "dsse_verify: payload changed" $PY "$SRC/tests/tools/dsse_verify.py" "$T/flipped.json" "$T/keys/builder.pub"
contains "$T/out" "no signature by key" "changed payload refused"
expect 1 "dsse_verify: wrong subject" $PY "$SRC/tests/tools/dsse_verify.py" "$T/att.json" \
	"$T/keys/builder.pub" "--subject=$name@9.9.9/wasm=00"
# agentfactory's own refusals: an untrusted builder
expect 1 "inspect --provenance, untrusted builder" "$AF" inspect --store "$T/s1" \
	--keyring "$T/other.json" --provenance "$name"
lacks "$T/out" "payload" "nothing printed before verification"
# the signed statement: SLSA v1, run metadata, canonical source, no local path
expect 0 "inspect --statement" "$AF" inspect --store "$T/s1" --keyring "$KR" --statement tester
cp "$T/out" "$T/statement.json"
contains "$T/statement.json" '"predicateType":"https://slsa.dev/provenance/v1"' "SLSA predicate"
contains "$T/statement.json" '"repository":"https://git.example.invalid/platform/agents.git"' "source URI from the remote"
contains "$T/statement.json" "\"gitCommit\":\"$COMMIT\"" "commit in the dependencies"
contains "$T/statement.json" '"startedOn":"' "run start in the attestation"
contains "$T/statement.json" '"templatePath":"templates/tester.yaml"' "template path"
contains "$T/statement.json" '"gitBlob":"' "template git blob ids"
contains "$T/statement.json" 'templates/bases/' "ancestors among the dependencies"
contains "$T/statement.json" '"id":"https://agentfactory.dev/builder/v1"' "local builder id"
lacks "$T/statement.json" "s3cret" "no credentials in the provenance"
lacks "$T/statement.json" "$T" "no local path in the provenance"
checks=$((checks + 1))
[ "$(git -C "$T/a/clone" cat-file -p "$COMMIT:templates/tester.yaml" | git hash-object --stdin)" = \
	"$($PY -c 'import json,sys; st=json.load(open(sys.argv[1])); print([d["digest"]["gitBlob"] for d in st["predicate"]["buildDefinition"]["resolvedDependencies"] if d.get("name")=="templates/tester.yaml"][0])' "$T/statement.json")" ] ||
	fail "the template's gitBlob is not git's blob id"

# --- 3. the SBOMs against the CycloneDX schema ------------------------------
expect 0 "CycloneDX validation" "$NODE" "$SRC/tests/tools/cyclonedx-validate.js" "$T"/sbom-*.json
checks=$((checks + 1))
[ "$(grep -c '^valid ' "$T/out")" -eq "$n_total" ] || fail "not every SBOM valid: $(cat "$T/out")"
contains "$T/sbom-tester.json" '"specVersion":"1.5"' "CycloneDX 1.5"
contains "$T/sbom-tester.json" '"name":"agentfactory-guest"' "guest library in the SBOM"
contains "$T/sbom-tester.json" '"name":"wasi-libc"' "wasi-libc in the SBOM"
contains "$T/sbom-tester.json" '"name":"wasm2c"' "wasm2c in the SBOM"
contains "$T/sbom-tester.json" '"name":"clang"' "clang in the SBOM"
# the validator is not vacuous
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d["components"][0]["type"]="nonsense"; json.dump(d,open(sys.argv[2],"w"))' \
	"$T/sbom-tester.json" "$T/bad-sbom.json"
expect 1 "CycloneDX validation of a broken SBOM" "$NODE" "$SRC/tests/tools/cyclonedx-validate.js" "$T/bad-sbom.json"

# --- 4. builder id and source URI from flags and CI variables ---------------
# (a small repository: one agent and its bases, signed as above)
git init -q "$T/small"
mkdir -p "$T/small/templates"
cp -r "$T/work/templates/bases" "$T/work/templates/tester.yaml" "$T/work/templates/tester.yaml.sig" \
	"$T/small/templates/"
git -C "$T/small" add -A && git -C "$T/small" commit -qm small
expect 0 "build with --builder-id/--source-uri" "$AF" build --repo "$T/small" --keyring "$KR" \
	--builder-key "$T/keys/builder.key" --store "$T/s3" \
	--builder-id https://ci.example.invalid/builders/main --source-uri https://git.example.invalid/x.git
"$AF" inspect --store "$T/s3" --statement tester >"$T/st3.json"
contains "$T/st3.json" '"id":"https://ci.example.invalid/builders/main"' "--builder-id"
contains "$T/st3.json" '"repository":"https://git.example.invalid/x.git"' "--source-uri"
GITHUB_ACTIONS=true GITHUB_SERVER_URL=https://github.com GITHUB_REPOSITORY=acme/agents \
	GITHUB_WORKFLOW_REF=acme/agents/.github/workflows/build.yml@refs/heads/main \
	GITHUB_RUN_ID=77 GITHUB_RUN_ATTEMPT=2 \
	expect 0 "build on GitHub Actions" "$AF" build --repo "$T/small" --keyring "$KR" \
	--builder-key "$T/keys/builder.key" --store "$T/s4"
"$AF" inspect --store "$T/s4" --statement tester >"$T/st4.json"
contains "$T/st4.json" '"id":"https://github.com/acme/agents/.github/workflows/build.yml@refs/heads/main"' "GitHub builder id"
contains "$T/st4.json" '"repository":"https://github.com/acme/agents"' "GitHub source"
contains "$T/st4.json" '"invocationId":"https://github.com/acme/agents/actions/runs/77/attempts/2"' "GitHub run"
expect 2 "bad --builder-id" "$AF" build --repo "$T/small" --keyring "$KR" \
	--builder-key "$T/keys/builder.key" --store "$T/s5" --builder-id "has spaces"

# --- 5. other tools' tars, and verify-reproducible ---------------------------
for fmt in pax gnu posix; do
	(cd "$T/x1" && tar --format=$fmt -cf "$T/re-$fmt.tar" .)
	expect 0 "import a GNU tar --format=$fmt repack" "$AF" import --store "$T/re-$fmt" \
		--keyring "$KR" "$T/re-$fmt.tar"
done
if command -v skopeo >/dev/null; then
	mkdir -p "$T/lay" && tar -xf "$T/b1.tar" -C "$T/lay"
	expect 0 "skopeo copy" skopeo copy "oci:$T/lay:tester@1.0.0" "oci-archive:$T/sk.tar:tester@1.0.0"
	expect 0 "import skopeo's archive + detached signatures" "$AF" import --store "$T/sk" \
		--keyring "$KR" --signatures "$T/b1.sigs.tar" "$T/sk.tar"
	contains "$T/out" "imported 1 artifact" "skopeo archive imported"
else
	fail "skopeo is not installed (make deps)"
fi

expect 0 "verify-reproducible against bundle 1" "$AF" verify-reproducible --repo "$T/b/some/much/deeper/place/checkout" \
	--rev "$COMMIT" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--bundle "$T/b1.tar" --signatures "$T/b1.sigs.tar"
contains "$T/out" "$n_total identical, 0 different, 0 missing" "verify-reproducible counts"
contains "$T/out" "bundle content identical" "verify-reproducible bundle digest"
grep -E 'identical|different' "$T/out" | tail -2
# what differs is named, down to the parts (on the small repository: s3 was
# built from it with these flags). Another builder id: only the provenance.
expect 1 "verify-reproducible, another builder id" "$AF" verify-reproducible --repo "$T/small" \
	--keyring "$KR" --builder-key "$T/keys/builder.key" --store "$T/s3" \
	--builder-id https://ci.example.invalid/builders/other --source-uri https://git.example.invalid/x.git
contains "$T/out" "0 identical, 1 different" "another builder id is another provenance"
contains "$T/out" "differing: provenance" "only the provenance differs"
# a changed template, committed: the code parts differ too (and the commit)
sed -i 's/^description: .*/description: "A changed description"/' "$T/small/templates/tester.yaml"
"$AF" sign --key "$T/keys/template-signer.key" "$T/small/templates/tester.yaml" >/dev/null
git -C "$T/small" commit -qam "change tester"
expect 1 "verify-reproducible after a change" "$AF" verify-reproducible --repo "$T/small" \
	--keyring "$KR" --builder-key "$T/keys/builder.key" --store "$T/s3" \
	--builder-id https://ci.example.invalid/builders/main --source-uri https://git.example.invalid/x.git
contains "$T/out" "different  tester@1.0.0" "the changed artifact is named"
contains "$T/out" "source" "the generated C differs"
contains "$T/out" "wasm" "the wasm differs"
expect 2 "verify-reproducible needs one reference" "$AF" verify-reproducible --repo "$T/small" \
	--keyring "$KR" --builder-key "$T/keys/builder.key"

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
