#!/usr/bin/env bash
# ci/pipeline.sh end to end on a temporary git repository: without keys it
# fails at the first step naming the missing secret; with keys (as content,
# as GitHub passes secrets, and as a file, as GitLab does) it checks, builds,
# verifies, releases, exports a bundle that imports and verifies in a fresh
# store, writes attestations and SHA256SUMS; a second run with the cached
# store rebuilds nothing; an unsigned change fails at check with exit 1; a
# registry is pushed to when `agentfactory push` exists (a real
# docker-registry on loopback), else AF_REGISTRY is refused clearly.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-ci.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
REG_PID=
cleanup() {
	if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT
export TMPDIR="$T/tmp" AF_POLICIES="$SRC/policies"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
# Nothing from a CI this test might itself run in.
unset GITHUB_SHA CI_COMMIT_SHA AF_REGISTRY AF_KEYRING AF_BUILDER_KEY AF_STORE

fail() { echo "FAIL: $*" >&2; exit 1; }
pipeline() { # pipeline WANT_EXIT [VAR=VALUE...]: runs ci/pipeline.sh in the repository
	local want=$1; shift
	set +e
	(cd "$R" && env AF="$AF" AF_REPO="$R" AF_STORE="$T/cache/store" AF_JOBS=2 "$@" \
		bash "$SRC/ci/pipeline.sh") > "$T/out" 2>&1
	local got=$?
	set -e
	if [ "$got" -ne "$want" ]; then cat "$T/out" >&2; fail "pipeline: expected exit $want, got $got"; fi
}

for role in template-signer builder release-manager; do
	"$AF" keygen --role "$role" --out "$T/keys" > /dev/null
	"$AF" trust add --keyring "$T/kr.json" --role "$role" "$T/keys/$role.pub" > /dev/null
done
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer technical-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
KEYS=(AF_KEYRING_JSON="$(cat "$T/kr.json")" AF_BUILDER_KEY_PEM="$(cat "$T/keys/builder.key")"
      AF_RELEASE_KEY="$T/keys/release-manager.key")

echo "-- no keys: fails at the first step, naming the secret"
pipeline 2 AF_OUT="$T/dist0"
grep -q "==> 1/9 secrets" "$T/out" || fail "did not stop at the first step"
grep -q "missing secret AF_KEYRING_JSON (or AF_KEYRING" "$T/out" || fail "missing secret not named"
! grep -q "==> 2/9" "$T/out" || fail "went past the first step"
[ ! -e "$T/cache/store" ] && [ ! -e "$T/dist0" ] || fail "a run without keys wrote something"
pipeline 2 AF_OUT="$T/dist0" AF_KEYRING="$T/kr.json" AF_BUILDER_KEY="$T/keys/builder.key"
grep -q "missing secret AF_RELEASE_KEY_PEM (or AF_RELEASE_KEY" "$T/out" || fail "missing release key not named"
pipeline 2 AF_OUT="$T/dist0" AF_KEYRING="$T/nope.json" AF_BUILDER_KEY="$T/keys/builder.key"
grep -q "secret AF_KEYRING names" "$T/out" || fail "unreadable secret file not named"

echo "-- full run: check, build, verify, release, bundle, attest"
pipeline 0 AF_OUT="$T/dist1" "${KEYS[@]}"
for s in "1/9 secrets" "3/9 check" "4/9 build" "5/9 verify" "6/9 release" "7/9 bundle" "8/9 attest" "9/9 push"; do
	grep -q "==> $s" "$T/out" || fail "step $s missing"
done
B="$T/dist1/agentfactory-bundle.tar"
[ -s "$B" ] || fail "no bundle"
"$AF" import --store "$T/fresh" --keyring "$T/kr.json" "$B" > /dev/null || fail "bundle does not import"
"$AF" verify --store "$T/fresh" --keyring "$T/kr.json" > /dev/null || fail "imported bundle does not verify"
[ "$("$AF" ls --store "$T/fresh" --json | grep -c '"manifest_digest"')" = 3 ] || fail "bundle should hold 3 artifacts"
python3 - "$T/dist1" "$(git -C "$R" rev-parse HEAD)" <<'EOF' || fail "release.json / build.json wrong"
import json, sys
d, commit = sys.argv[1], sys.argv[2]
r = json.load(open(d + "/release.json"))
b = json.load(open(d + "/build.json"))
assert r["commit"] == commit, r
assert sorted(a["name"] for a in r["artifacts"]) == ["backup-manager", "senior-reviewer", "technical-reviewer"], r
assert b["built"] == 3 and b["commit"] == commit, b
EOF
[ "$(ls "$T/dist1/attestations" | wc -l)" -ge 3 ] || fail "attestations missing"
(cd "$T/dist1" && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS does not match"
grep -q "agentfactory-bundle.tar" "$T/dist1/SHA256SUMS" || fail "bundle not in SHA256SUMS"
"$AF" status --store "$T/cache/store" > "$T/status" || fail "status failed"
grep -q "AF_REGISTRY not set" "$T/out" || fail "push step did not say what it did"
! grep -q "BEGIN PRIVATE KEY\|BEGIN RSA PRIVATE KEY" "$T/out" || fail "a secret was printed"
! grep -rq "PRIVATE KEY" "$T/dist1" || fail "a secret reached the artifacts"

echo "-- second run with the cached store: nothing rebuilt"
pipeline 0 AF_OUT="$T/dist2" "${KEYS[@]}"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["built"]==0 and b["cached"]==3, b' \
	"$T/dist2/build.json" || fail "cached run rebuilt agents"
cmp -s "$T/dist1/agentfactory-bundle.tar" "$T/dist2/agentfactory-bundle.tar" ||
	echo "note: bundles of two runs differ (signatures are randomised)"

echo "-- an unsigned change fails at check (exit 1), nothing released"
echo "# unsigned" >> "$R/templates/senior-reviewer.yaml"
git -C "$R" commit -qam unsigned
pipeline 1 AF_OUT="$T/dist3" "${KEYS[@]}"
grep -q "templates/senior-reviewer.yaml" "$T/out" || fail "finding not shown"
grep -q "step 3 failed" "$T/out" || fail "did not fail at check"
[ ! -e "$T/dist3/agentfactory-bundle.tar" ] || fail "a bundle was written after a failed check"
git -C "$R" reset -q --hard HEAD~1

echo "-- AF_REGISTRY"
if "$AF" push --help > /dev/null 2>&1; then
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat > "$T/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$PORT
EOF
	docker-registry serve "$T/registry.yml" > "$T/registry.log" 2>&1 &
	REG_PID=$!
	for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/v2/" > /dev/null && break; sleep 0.2; done
	pipeline 0 AF_OUT="$T/dist4" AF_REGISTRY="oci://127.0.0.1:$PORT/agents" "${KEYS[@]}"
	curl -fs "http://127.0.0.1:$PORT/v2/agents/tags/list" | grep -q "release-" || fail "nothing pushed to the registry"
else
	pipeline 2 AF_OUT="$T/dist4" AF_REGISTRY="oci://127.0.0.1:1/agents" "${KEYS[@]}"
	grep -q "AF_REGISTRY is set but this agentfactory has no 'push' command" "$T/out" ||
		fail "missing push command not explained"
fi

[ -z "${AF_CI_SHOW:-}" ] || { pipeline 0 AF_OUT="$T/dist5" "${KEYS[@]}"; cat "$T/out"; ls -R "$T/dist5"; }
echo "PASS test_ci_pipeline"
