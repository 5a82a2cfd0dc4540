#!/usr/bin/env bash
# test_store_corrupt.sh - a truncated data.mdb (a partial copy, an interrupted
# restore) is a clean "store is corrupt" error, never a signal: every reader
# (`ls`, `inspect`, `verify`, `audit verify`, `status`, the runtime at start)
# exits 3 with "store is corrupt: data.mdb is N bytes, its meta page claims M"
# for truncations at many offsets, and `verify` never calls a damaged store
# healthy. A running server whose store is truncated under it says so on
# /readyz (503 not_ready with the reason), counts it in
# agentfactory_store_corrupt_total, and keeps running.
#
# Env: AF, AF_RUNTIME (the binaries), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/af-store-corrupt.XXXXXX")
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
PIDS=()
cleanup() {
	local p
	stop_pids "${PIDS[@]}"
	rm -rf "$T"
}
trap cleanup EXIT
. "$SRC/tests/lib/procs.sh"
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() { checks=$((checks + 1)); }

# --- a store built from part of the sample catalogue --------------------------
"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
KR="$T/kr.json"
"$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp -r "$SRC/templates/bases" "$T/repo/templates/"
cp "$SRC/templates/tester.yaml" "$SRC/templates/senior-reviewer.yaml" "$T/repo/templates/"
find "$T/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$T/keys/template-signer.key" "${files[@]}" >/dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
GOOD="$T/good"
"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$GOOD" >/dev/null 2>"$T/build.err" || { cat "$T/build.err" >&2; exit 1; }
"$AF" verify --store "$GOOD" --keyring "$KR" >/dev/null || { echo "FAIL: the good store does not verify" >&2; exit 1; }
full=$(stat -c %s "$GOOD/data.mdb")
psize=$(mdb_stat -e "$GOOD" | awk '/Page size/ {print $3}')
[ "$full" -gt $((4 * psize)) ] || { echo "FAIL: store too small to test ($full bytes)" >&2; exit 1; }
echo "store: $full bytes, page size $psize"

# run_reader NAME CMD... : must exit 3, never by a signal, with the message
run_reader() {
	local name=$1 rc=0
	shift
	ok
	timeout 120 "$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ge 124 ]; then
		fail "$name at $cut bytes: killed or hung (exit $rc): $*"
		return
	fi
	[ "$rc" -eq 3 ] || { fail "$name at $cut bytes: exit $rc, want 3"; sed 's/^/    /' "$T/err" "$T/out" >&2; return; }
	ok
	grep -q "store is corrupt: " "$T/err" || { fail "$name at $cut bytes: no 'store is corrupt' message"; sed 's/^/    /' "$T/err" >&2; }
}

# --- truncations at many offsets ----------------------------------------------
offsets="0 1 100 $((psize - 1)) $psize $((psize + 100)) $((2 * psize - 1)) $((2 * psize))
	$((2 * psize + 1)) $((3 * psize)) $((full / 4)) $((full / 3)) $((full / 2))
	$((full / 2 + 1234)) $((full * 2 / 3)) $((full - 2 * psize)) $((full - psize - 7))
	$((full - psize)) $((full - 1))"
for cut in $offsets; do
	rm -rf "$T/s" && cp -a "$GOOD" "$T/s" && truncate -s "$cut" "$T/s/data.mdb"
	run_reader "ls" "$AF" ls --store "$T/s"
	run_reader "inspect" "$AF" inspect --store "$T/s" tester
	run_reader "verify" "$AF" verify --store "$T/s" --keyring "$KR"
	run_reader "audit verify" "$AF" audit verify --store "$T/s"
	run_reader "status" "$AF" status --store "$T/s"
	run_reader "runtime start" "$RT" --store "$T/s" --keyring "$KR" --listen 127.0.0.1:0
done
# The exact figures, for one cut in the middle of the file.
cut=$((full / 2))
rm -rf "$T/s" && cp -a "$GOOD" "$T/s" && truncate -s "$cut" "$T/s/data.mdb"
"$AF" verify --store "$T/s" --keyring "$KR" >/dev/null 2>"$T/err" || true
ok
grep -Eq "store is corrupt: data.mdb is $cut bytes, its meta page claims [0-9]+" "$T/err" ||
	{ fail "verify message lacks the sizes"; cat "$T/err" >&2; }
# A copy grown past the claim (a preallocated file) is whole.
rm -rf "$T/s" && cp -a "$GOOD" "$T/s" && truncate -s $((full + 10 * psize)) "$T/s/data.mdb"
ok
"$AF" verify --store "$T/s" --keyring "$KR" >/dev/null 2>"$T/err" || { fail "a longer file is refused"; cat "$T/err" >&2; }
# Meta pages that are not LMDB's (zeroed): refused the same way.
rm -rf "$T/s" && cp -a "$GOOD" "$T/s"
dd if=/dev/zero of="$T/s/data.mdb" bs=$psize count=2 conv=notrunc status=none
cut="zeroed meta"
run_reader "verify" "$AF" verify --store "$T/s" --keyring "$KR"

# --- a running server whose store is truncated under it -----------------------
rm -rf "$T/live" && cp -a "$GOOD" "$T/live"
"$RT" --store "$T/live" --keyring "$KR" --listen 127.0.0.1:0 --port-file "$T/port" \
	--poll-ms 100 --log "$T/live.log" 2>"$T/live.err" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 1 400); do [ -s "$T/port" ] && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
[ -s "$T/port" ] || { cat "$T/live.err" "$T/live.log" >&2; echo "FAIL: server did not start" >&2; exit 1; }
ADDR=$(cat "$T/port")
ok
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ] || fail "not ready before the damage"
truncate -s $((full / 2)) "$T/live/data.mdb"
status=""
for _ in $(seq 1 600); do
	status=$(curl -s -o "$T/ready" -w '%{http_code}' "http://$ADDR/readyz" || true)
	[ "$status" = 503 ] && break
	sleep 0.1
done
ok
[ "$status" = 503 ] || fail "/readyz answers $status after the store was truncated, want 503"
ok
grep -q '"not_ready"' "$T/ready" && grep -q "store is corrupt: data.mdb is $((full / 2)) bytes" "$T/ready" ||
	{ fail "/readyz does not say why"; cat "$T/ready" >&2; }
curl -s "http://$ADDR/metrics" >"$T/metrics"
ok
grep -Eq '^agentfactory_store_corrupt_total [1-9]' "$T/metrics" ||
	{ fail "agentfactory_store_corrupt_total not counted"; grep store_corrupt "$T/metrics" >&2 || true; }
ok
grep -q '"event":"store_corrupt"' "$T/live.log" || fail "the damage is not logged"
ok
kill -0 "$PID" 2>/dev/null || fail "the server died"
# Restored in place (the file the server has mapped): ready again.
cp "$GOOD/data.mdb" "$T/live/data.mdb"
for _ in $(seq 1 600); do
	status=$(curl -s -o "$T/ready" -w '%{http_code}' "http://$ADDR/readyz" || true)
	[ "$status" = 200 ] && break
	sleep 0.1
done
ok
[ "$status" = 200 ] || { fail "not ready again after the restore ($status)"; cat "$T/ready" >&2; }
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
ok
[ "$rc" -eq 0 ] || fail "server exit $rc after SIGTERM"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
