#!/usr/bin/env bash
# test_store_crash.sh - a store survives a crash at any write: `agentfactory
# import` of a bundle is killed just before, then just after, the 1st, 2nd,
# ... write or sync of data.mdb (tests/fixtures/store/crash_write.c,
# LD_PRELOAD) until an import runs to the end. After every crash the store must be exactly as before
# (only the first agent) or exactly as after (both agents): `verify` passes
# (signatures, digests of every part) and `export` of what is there is
# byte-identical to the bundle it came from.
#
# Env: AF = the agentfactory binary, AF_SRCDIR = the source tree,
#      AF_BUILD = the build folder (tests/lib/crash_write.so).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
SHIM=${AF_BUILD:?}/tests/lib/crash_write.so
[ -f "$SHIM" ] || { echo "FAIL: $SHIM is not built (make $SHIM)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/af-store-crash.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
export AF_POLICIES="$SRC/policies" HOME="$T/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING
mkdir -p "$HOME"

fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$@" > "$T/out" 2> "$T/err" || { cat "$T/out" "$T/err" >&2; fail "$*"; }; }

# --- two agents, each in a bundle of its own ----------------------------------
run "$AF" keygen --role template-signer --out "$T/keys"
run "$AF" keygen --role builder --out "$T/keys"
KR="$T/kr.json"
run "$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub"
run "$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub"
git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp -r "$SRC/templates/bases" "$T/repo/templates/"
cp "$SRC/templates/tester.yaml" "$SRC/templates/senior-reviewer.yaml" "$T/repo/templates/"
find "$T/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
run "$AF" sign --key "$T/keys/template-signer.key" "${files[@]}"
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
run "$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$T/full" -j 2
run "$AF" export --store "$T/full" --out "$T/a.tar" tester
run "$AF" export --store "$T/full" --out "$T/b.tar" senior-reviewer
run "$AF" export --store "$T/full" --out "$T/ab.tar" tester senior-reviewer

# The state before: a store holding tester only.
run "$AF" import --store "$T/before" --keyring "$KR" "$T/a.tar"

# The store at $1 is exactly before or exactly after; prints which.
state_of() {
	local s=$1
	run "$AF" verify --store "$s" --keyring "$KR"
	"$AF" ls --store "$s" > "$T/ls" 2>&1 || { cat "$T/ls" >&2; fail "ls $s"; }
	if grep -q "senior-reviewer@" "$T/ls"; then
		run "$AF" export --store "$s" --out "$T/now.tar" tester senior-reviewer
		cmp -s "$T/now.tar" "$T/ab.tar" || fail "$s holds both agents, but not their bytes"
		echo after
	else
		grep -q "tester@" "$T/ls" || { cat "$T/ls" >&2; fail "$s lost the agent it had"; }
		run "$AF" export --store "$s" --out "$T/now.tar"
		cmp -s "$T/now.tar" "$T/a.tar" || fail "$s holds tester only, but not its bytes"
		echo before
	fi
}

before=0 after=0 points=0
for when in before after; do
n=0
while :; do
	n=$((n + 1))
	[ "$n" -le 2000 ] || fail "more than 2000 writes for one import?"
	rm -rf "$T/s" "$T/count"
	cp -a "$T/before" "$T/s"
	set +e
	LD_PRELOAD="$SHIM" AF_CRASH_AT=$n AF_CRASH_WHEN=$when AF_CRASH_COUNT="$T/count" \
		"$AF" import --store "$T/s" --keyring "$KR" "$T/b.tar" > "$T/out" 2> "$T/err"
	rc=$?
	set -e
	if [ "$rc" -eq 0 ]; then
		# No crash: every write point has been tried.
		[ -s "$T/count" ] || fail "the shim did not report its count"
		[ "$(cat "$T/count")" -lt "$n" ] || fail "import succeeded past crash point $n"
		[ "$(state_of "$T/s")" = after ] || fail "a finished import left the store before"
		break
	fi
	[ "$rc" -eq 97 ] || { cat "$T/out" "$T/err" >&2; fail "import exited $rc at crash point $n ($when)"; }
	points=$((points + 1))
	case $(state_of "$T/s") in
	before) before=$((before + 1)) ;;
	after) after=$((after + 1)) ;;
	esac
	# And the store still takes the import after the crash.
	if [ $((n % 4)) -eq 1 ]; then
		run "$AF" import --store "$T/s" --keyring "$KR" "$T/b.tar"
		[ "$(state_of "$T/s")" = after ] || fail "re-import after crash $n ($when) did not land"
	fi
done
done
[ "$points" -ge 4 ] || fail "only $points crash points: is the shim working?"
[ "$before" -ge 1 ] || fail "no crash left the store before"
[ "$after" -ge 1 ] || fail "no crash left the store after (the last write should)"
echo "crash points: $points ($before before, $after after); OK"
