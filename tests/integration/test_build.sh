#!/usr/bin/env bash
# `agentfactory build` end to end on a small signed repository: a full
# build, verify, reproducibility (two fresh stores, same digests),
# incremental rebuilds (nothing compiled when unchanged; editing a parent
# rebuilds exactly its descendants), refusals that store nothing, and crash
# safety (kill -9 at random points, 20 runs: the store always verifies and
# holds the old or the new set, never a mix).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-build.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {
	local want=$1; shift
	set +e; "$@" > "$T/out" 2> "$T/err"; local got=$?; set -e
	if [ "$got" -ne "$want" ]; then
		cat "$T/out" "$T/err" >&2
		fail "expected exit $want, got $got: $*"
	fi
}
digests() { "$AF" ls --store "$1" --json | grep -o '"manifest_digest": *"sha256:[0-9a-f]*"' | sort; }
json_num() { grep -o "\"$1\": *[0-9]*" "$T/out" | head -1 | grep -o '[0-9]*$'; }

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null
KR="$T/kr.json"
B=(--keyring "$KR" --builder-key "$T/keys/builder.key" -j 2 --json)

# A small catalogue: one steps agent, two LLM agents sharing a parent.
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer technical-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1

echo "-- full build"
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/s1" "${B[@]}"
[ "$(json_num built)" = 3 ] || fail "expected 3 agents built: $(cat "$T/out")"
expect 0 "$AF" verify --store "$T/s1" --keyring "$KR"
digests "$T/s1" > "$T/v1.set"
[ "$(wc -l < "$T/v1.set")" = 3 ] || fail "store should hold 3 artifacts"

echo "-- reproducible: a second fresh store has the same digests"
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/s2" "${B[@]}" -j 1
digests "$T/s2" | cmp -s - "$T/v1.set" || fail "two fresh builds differ"

echo "-- incremental: unchanged repository compiles nothing"
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/s1" "${B[@]}"
[ "$(json_num built)" = 0 ] && [ "$(json_num cached)" = 3 ] || fail "rebuild was not all cache hits: $(cat "$T/out")"

echo "-- incremental: editing a parent rebuilds exactly its descendants"
cp -a "$T/s1" "$T/s1.v1"
printf 'limits:\n  max_steps: 9\n' >> "$R/templates/bases/base-reviewer.yaml"
"$AF" sign --key "$T/keys/template-signer.key" "$R/templates/bases/base-reviewer.yaml" > /dev/null
git -C "$R" commit -qam v2
expect 0 "$AF" build --repo "$R" --rev HEAD --store "$T/s1" "${B[@]}"
[ "$(json_num built)" = 2 ] && [ "$(json_num cached)" = 1 ] || fail "expected 2 rebuilt, 1 cached: $(cat "$T/out")"
tr -d '\n ' < "$T/out" | grep -q '"name":"backup-manager","version":"1.0.0","status":"cached"' ||
	fail "backup-manager should be a cache hit"
for n in senior-reviewer technical-reviewer; do
	tr -d '\n ' < "$T/out" | grep -q "\"name\":\"$n\",\"version\":\"1.0.0\",\"status\":\"built\"" ||
		fail "$n should have been rebuilt"
done
expect 0 "$AF" verify --store "$T/s1" --keyring "$KR"
digests "$T/s1" > "$T/v2.set"
cmp -s "$T/v1.set" "$T/v2.set" && fail "v2 should differ from v1"
[ "$(comm -12 "$T/v1.set" "$T/v2.set" | wc -l)" = 1 ] || fail "exactly one artifact should be unchanged"

echo "-- a front-end finding builds and stores nothing"
cp -a "$T/s1" "$T/s3"
echo "# unsigned edit" >> "$R/templates/senior-reviewer.yaml"
git -C "$R" commit -qam tamper
expect 1 "$AF" build --repo "$R" --rev HEAD --store "$T/s3" "${B[@]}"
grep -q "senior-reviewer.yaml" "$T/out" || fail "finding does not name the file"
digests "$T/s3" | cmp -s - "$T/v2.set" || fail "store changed after a refused build"
git -C "$R" reset -q --hard HEAD~1

echo "-- refusals: untrusted builder key, missing flags, plain directory"
expect 2 "$AF" build --repo "$R" --rev HEAD --store "$T/s4" --keyring "$KR" \
	--builder-key "$T/keys/template-signer.key"
grep -q "builder" "$T/err" || fail "untrusted builder key not explained"
# The whole message: the context, then the keyring's own reason, once.
grep -Eq "builder key [0-9a-f]+ cannot sign artifacts \(add it with: agentfactory trust add --role builder --keyring FILE KEY.pub\): .*key" "$T/err" ||
	fail "builder key refusal lost its context or its reason: $(cat "$T/err")"
[ "$(grep -o "cannot sign artifacts" "$T/err" | wc -l)" = 1 ] || fail "context repeated: $(cat "$T/err")"
[ ! -e "$T/s4/data.mdb" ] || fail "a refused build created a store"
expect 2 "$AF" build --repo "$R" --rev HEAD --keyring "$KR"
expect 2 "$AF" build --repo "$R" --rev no-such-rev --store "$T/s4" "${B[@]}"
expect 0 "$AF" build --help
mkdir -p "$T/plain" && cp -r "$R/templates" "$T/plain/"
expect 2 "$AF" build --repo "$T/plain" --store "$T/s4" "${B[@]}"
grep -q "not a git repository" "$T/err" || fail "plain directory refusal not explained"

echo "-- crash safety: kill -9 at random points, 20 runs"
git -C "$R" checkout -q HEAD~1            # v1 content, stores hold v1 state in s1.v1
git -C "$R" checkout -q -                 # back to v2
start=$(date +%s%N)
cp -a "$T/s1.v1" "$T/probe"
"$AF" build --repo "$R" --rev HEAD --store "$T/probe" "${B[@]}" > /dev/null 2>&1
span_ms=$(( ($(date +%s%N) - start) / 1000000 + 200 ))
old=0 new=0
for i in $(seq 1 20); do
	rm -rf "$T/run" && cp -a "$T/s1.v1" "$T/run"
	"$AF" build --repo "$R" --rev HEAD --store "$T/run" "${B[@]}" > /dev/null 2>&1 &
	pid=$!
	delay=$(( RANDOM % span_ms ))
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	expect 0 "$AF" verify --store "$T/run" --keyring "$KR"
	digests "$T/run" > "$T/run.set"
	if cmp -s "$T/run.set" "$T/v1.set"; then old=$((old + 1));
	elif cmp -s "$T/run.set" "$T/v2.set"; then new=$((new + 1));
	else cat "$T/run.set" >&2; fail "run $i: store holds neither the old nor the new set"; fi
done
echo "crash runs: $old ended in the old state, $new in the new state (span ${span_ms} ms)"

echo "all build checks passed"
