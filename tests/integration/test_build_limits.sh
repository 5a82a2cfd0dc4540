#!/usr/bin/env bash
# test_build_limits.sh - `check` refuses what `build` cannot build (one rule
# set: steps over limits.max_steps, limits.memory_pages below what the guest
# needs, generated code over the cost limit: a 250 KB template with 5000
# schema properties), and one failing template does not stop the catalogue:
# `build` stores every agent that builds, reports the others and exits 1;
# `build --all-or-nothing` stores nothing.
#
# Env: AF (the binary), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/af-build-limits.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
KR="$T/kr.json"
"$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp -r "$SRC/templates/bases" "$T/repo/templates/"
cp "$SRC/templates/backup-manager.yaml" "$T/repo/templates/"
head_of() { # NAME: a workflow agent's first lines
	printf 'kind: AgentTemplate\napiVersion: agentfactory/v1\nname: %s\nversion: 1.0.0\n' "$1"
	printf 'description: A limit test.\nextends: base-workflow@^1.0.0\nrole: tester\ngoal: limits\n'
}
{ head_of too-many-steps
  printf 'limits: {max_steps: 2}\nsteps:\n'
  for i in 1 2 3; do printf '  - id: s%d\n    tool: clock_now\n    args: {}\n' "$i"; done
} >"$T/repo/templates/too-many-steps.yaml"
{ head_of one-page
  printf 'limits: {memory_pages: 1}\nsteps:\n  - id: now\n    tool: clock_now\n    args: {}\n'
} >"$T/repo/templates/one-page.yaml"
{ head_of huge
  printf 'inputs:\n  type: object\n  properties:\n'
  for i in $(seq -w 1 5000); do
	printf '    p%s: {type: string, description: d%s}\n' "$i" "$i"
  done
  printf 'steps:\n  - id: now\n    tool: clock_now\n    args: {}\n'
} >"$T/repo/templates/huge.yaml"
size=$(stat -c %s "$T/repo/templates/huge.yaml")
echo "huge.yaml: $size bytes"
[ "$size" -gt 200000 ] || fail "test setup: huge.yaml is only $size bytes"
find "$T/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$T/keys/template-signer.key" "${files[@]}" >/dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1

echo "-- check refuses what build cannot build"
rc=0
"$AF" check --repo "$T/repo" --rev HEAD --keyring "$KR" >"$T/check.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "check exit $rc, want 1"
grep -A1 "templates/too-many-steps.yaml" "$T/check.out" | grep -q "FAIL" || fail "check passes too-many-steps"
grep -q "3 steps but limits.max_steps is 2" "$T/check.out" || fail "steps over max_steps not explained"
grep -q "one-page.yaml.*limits.memory_pages" "$T/check.out" || fail "memory_pages: 1 not refused by check"
grep -q "huge.yaml.*build.cost" "$T/check.out" || fail "huge template not refused by the cost limit"
grep -q "backup-manager.yaml" "$T/check.out" && grep "backup-manager.yaml" "$T/check.out" | grep -q "ok" ||
	fail "the good template is not ok"
[ "$failures" -eq 0 ] || cat "$T/check.out" >&2

echo "-- build stores the agents that build, reports the others, exits 1"
rc=0
"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$T/st" --json >"$T/build.json" 2>"$T/build.err" || rc=$?
[ "$rc" -eq 1 ] || { fail "build exit $rc, want 1"; cat "$T/build.err" >&2; }
jq -e '.stored == true and .skipped == 3 and .built == 1' "$T/build.json" >/dev/null ||
	fail "build report: $(jq -c '{stored, skipped, built, failed}' "$T/build.json")"
"$AF" ls --store "$T/st" >"$T/ls.out" 2>&1 || fail "ls after a partial build"
grep -q "backup-manager@1.0.0" "$T/ls.out" || fail "the good agent was not stored"
! grep -Eq "too-many-steps|one-page|huge" "$T/ls.out" || fail "a refused agent was stored"
"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$T/st2" >"$T/build.txt" 2>&1 || true
grep -q "left out" "$T/build.txt" || fail "the text report does not say what was left out"

echo "-- --all-or-nothing stores nothing"
rc=0
"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$T/st3" --all-or-nothing --json >"$T/aon.json" 2>"$T/aon.err" || rc=$?
[ "$rc" -eq 1 ] || fail "build --all-or-nothing exit $rc, want 1"
if [ -e "$T/st3/data.mdb" ]; then
	"$AF" ls --store "$T/st3" >"$T/ls3.out" 2>&1 || true
	! grep -q "backup-manager@" "$T/ls3.out" || fail "--all-or-nothing stored an agent"
fi

echo "$failures failures"
[ "$failures" -eq 0 ]
