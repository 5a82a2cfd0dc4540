#!/usr/bin/env bash
# ci/pipeline.sh - what a CI job runs: templates at a git revision -> checked,
# built, verified, released (signed), exported as a bundle, attested, and
# optionally pushed to an OCI registry. docs/ci.md describes it; the GitHub
# Actions and GitLab CI definitions in ci/github/ and ci/gitlab/ call it.
#
# Steps (each prints "==> N/9 name"; the first failure stops the run):
#   1 secrets   the three keys, from the CI's secret store (fails here, naming
#               the missing secret, before anything else runs)
#   2 tools     agentfactory: $AF, else built from this source tree (make)
#   3 check     signatures, schema, inheritance, policy of every template
#   4 build     into the store (cache it between runs: unchanged agents are not
#               rebuilt)
#   5 verify    every artifact of the store: signatures and part digests
#   6 release   a signed, expiring release of exactly the agents of this revision
#   7 bundle    export them; the bundle is imported into a scratch store to
#               prove it verifies
#   8 attest    per agent: provenance (and SBOM) when `inspect` offers them,
#               else the inspected manifest with its provenance; SHA256SUMS
#   9 push      with AF_REGISTRY set: `agentfactory push` of the release
#
# Secrets: each as content (GitHub secrets) or as a file path (GitLab "File"
# variables, a mounted secret):
#   AF_KEYRING_JSON     | AF_KEYRING       keyring trusting the template signers,
#                                          the builder and the release manager
#   AF_BUILDER_KEY_PEM  | AF_BUILDER_KEY   builder private key (signs manifests)
#   AF_RELEASE_KEY_PEM  | AF_RELEASE_KEY   release-manager private key
# Settings:
#   AF_REPO       the template repository (default: the git work tree here)
#   AF_REV        revision (default: $GITHUB_SHA, $CI_COMMIT_SHA, else HEAD)
#   AF_STORE      the store, kept between runs (default .agentfactory-cache/store)
#   AF_OUT        output folder (default dist)
#   AF_JOBS       parallel compile jobs (default: CPUs)
#   AF_POLICIES   policy directory (default: the installed policies)
#   AF_RELEASE_EXPIRES  release lifetime (default 30d)
#   AF_REGISTRY   oci://HOST[:PORT]/REPO: push the release there
#   AF            the agentfactory binary (default: build it with make)
# Exit codes: 0 done; 1 a check, build, verification or release refusal;
# 2 a missing secret, a usage or an environment error.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
step_no=0
step() { step_no=$((step_no + 1)); printf '\n==> %d/9 %s\n' "$step_no" "$*"; }
die() { local code=$1; shift; echo "ci/pipeline.sh: $*" >&2; exit "$code"; }
run() { # run CMD...: a refusal (exit 1) fails the pipeline with 1, anything else with 2
	local rc=0
	"$@" || rc=$?
	[ "$rc" -eq 0 ] || die "$([ "$rc" -eq 1 ] && echo 1 || echo 2)" "step $step_no failed (exit $rc): ${*:1:2}"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/af-ci.XXXXXX")
chmod 700 "$WORK"
trap 'rm -rf "$WORK"' EXIT

# ---- 1: secrets, first, so a run without keys fails at once -----------------
step "secrets"
# secret NAME_CONTENT NAME_FILE OUT: the secret as a file at OUT (mode 0600)
secret() {
	local content_var=$1 file_var=$2 out=$3
	if [ -n "${!content_var:-}" ]; then
		(umask 077 && printf '%s\n' "${!content_var}" > "$out")
		echo "$content_var: given"
	elif [ -n "${!file_var:-}" ]; then
		[ -r "${!file_var}" ] || die 2 "secret $file_var names '${!file_var}', which cannot be read"
		(umask 077 && cp "${!file_var}" "$out")
		echo "$file_var: ${!file_var}"
	else
		die 2 "missing secret $content_var (or $file_var, a file): add it to the CI's secret store (docs/ci.md)"
	fi
}
secret AF_KEYRING_JSON AF_KEYRING "$WORK/keyring.json"
secret AF_BUILDER_KEY_PEM AF_BUILDER_KEY "$WORK/builder.key"
secret AF_RELEASE_KEY_PEM AF_RELEASE_KEY "$WORK/release.key"
KR=$WORK/keyring.json
# The secrets are passed as flags from here on; no child sees them in its environment.
unset AF_KEYRING_JSON AF_BUILDER_KEY_PEM AF_RELEASE_KEY_PEM AF_KEYRING AF_BUILDER_KEY AF_RELEASE_KEY

# ---- 2: tools ---------------------------------------------------------------
step "tools"
if [ -z "${AF:-}" ]; then
	echo "building agentfactory from $SRC (make deps all)"
	make -C "$SRC" -j"$(nproc)" all >&2 || die 2 "building agentfactory failed"
	AF=$SRC/build/release/bin/agentfactory
fi
[ -x "$AF" ] || die 2 "AF=$AF is not an executable agentfactory binary"
"$AF" --version

REPO=${AF_REPO:-$(git rev-parse --show-toplevel 2>/dev/null || true)}
[ -n "$REPO" ] || die 2 "no template repository: run inside a git work tree or set AF_REPO"
REV=${AF_REV:-${GITHUB_SHA:-${CI_COMMIT_SHA:-HEAD}}}
COMMIT=$(git -C "$REPO" rev-parse --verify -q "$REV^{commit}") ||
	die 2 "$REPO: revision '$REV' is not a commit (a shallow clone? fetch it)"
STORE=${AF_STORE:-.agentfactory-cache/store}
OUT=${AF_OUT:-dist}
mkdir -p "$(dirname "$STORE")" "$OUT/attestations"
POL=()
[ -z "${AF_POLICIES:-}" ] || POL=(--policies "$AF_POLICIES")
JOBS=()
[ -z "${AF_JOBS:-}" ] || JOBS=(-j "$AF_JOBS")
echo "repository $REPO, commit $COMMIT, store $STORE, output $OUT"

# ---- 3-5: check, build, verify ------------------------------------------------
step "check"
run "$AF" check --repo "$REPO" --rev "$COMMIT" --keyring "$KR" "${POL[@]}" --store "$STORE"

step "build"
run "$AF" build --repo "$REPO" --rev "$COMMIT" --keyring "$KR" --builder-key "$WORK/builder.key" \
	--store "$STORE" "${POL[@]}" "${JOBS[@]}" --json > "$OUT/build.json"
python3 - "$OUT/build.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
for a in b["agents"]:
    print(f"  {a['status']:6}  {a['name']}@{a['version']}  {a.get('manifest_digest', '')[:19]}")
print(f"{b['built']} built, {b['cached']} unchanged (cache), {b['total_ms'] / 1000:.1f} s")
EOF
mapfile -t AGENTS < <(python3 -c 'import json,sys; [print(a["name"] + "@" + a["version"]) for a in json.load(open(sys.argv[1]))["agents"]]' "$OUT/build.json")
[ "${#AGENTS[@]}" -gt 0 ] || die 1 "revision $COMMIT has no concrete agent to release"

step "verify"
run "$AF" verify --store "$STORE" --keyring "$KR"

# ---- 6-7: release, bundle -------------------------------------------------------
step "release"
run "$AF" release create --store "$STORE" --keyring "$KR" --key "$WORK/release.key" \
	--expires "${AF_RELEASE_EXPIRES:-30d}" --json "${AGENTS[@]}" > "$OUT/release.json"
RELEASE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["release"])' "$OUT/release.json")
python3 - "$OUT/release.json" "$COMMIT" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["commit"] = sys.argv[2]
json.dump(r, open(sys.argv[1], "w"), indent=2, sort_keys=True)
print(f"release {r['release']}: {len(r['artifacts'])} artifacts, expires {r['expires']}, signed by {r['signer'][:16]}")
EOF

step "bundle"
BUNDLE=$OUT/agentfactory-bundle.tar
run "$AF" export --store "$STORE" --out "$BUNDLE" "${AGENTS[@]}"
run "$AF" import --store "$WORK/scratch-store" --keyring "$KR" "$BUNDLE" > /dev/null
run "$AF" verify --store "$WORK/scratch-store" --keyring "$KR" > /dev/null
echo "$BUNDLE: $(wc -c < "$BUNDLE") bytes, imports and verifies in a fresh store"

# ---- 8: attestations ------------------------------------------------------------
step "attest"
inspect_help=$("$AF" inspect --help 2>&1 || true)
for agent in "${AGENTS[@]}"; do
	if grep -q -- '--provenance' <<<"$inspect_help"; then
		run "$AF" inspect --store "$STORE" --keyring "$KR" --provenance "$agent" \
			> "$OUT/attestations/$agent.provenance.json"
	else
		run "$AF" inspect --store "$STORE" --keyring "$KR" --json "$agent" \
			> "$OUT/attestations/$agent.inspect.json"
	fi
	if grep -q -- '--sbom' <<<"$inspect_help"; then
		run "$AF" inspect --store "$STORE" --keyring "$KR" --sbom "$agent" \
			> "$OUT/attestations/$agent.sbom.json"
	fi
done
(cd "$OUT" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort |
	xargs sha256sum > SHA256SUMS)
echo "$(ls "$OUT/attestations" | wc -l) attestation files; $OUT/SHA256SUMS"

# ---- 9: registry ----------------------------------------------------------------
step "push"
if [ -z "${AF_REGISTRY:-}" ]; then
	echo "AF_REGISTRY not set: the bundle file is the CI artifact"
elif "$AF" push --help > /dev/null 2>&1; then
	run "$AF" push --store "$STORE" --release "$RELEASE" "$AF_REGISTRY"
else
	die 2 "AF_REGISTRY is set but this agentfactory has no 'push' command"
fi

echo
echo "done: commit $COMMIT, release $RELEASE, ${#AGENTS[@]} agents, bundle $BUNDLE"
