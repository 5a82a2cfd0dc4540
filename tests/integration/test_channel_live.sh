#!/usr/bin/env bash
# test_channel_live.sh - agentfactory-runtime following a channel, live: a
# store built here with two versions of senior-reviewer (1.0.0, 1.1.0),
# releases pinning one or the other, a runtime started with --channel blue
# on a free loopback port, and the release CLI acting on the same store while
# the runtime serves.
#
# Covers: the runtime serves exactly the channel's release (list, describe,
# ?version of another release is 404); promote / rollback six times while wrk
# keeps invoking the agent: zero failed requests (no non-2xx, no socket
# error) and the served version follows each switch; an expired release
# promoted (clock moved back for the writers) is refused and the previous one
# keeps serving; a newer valid release is then taken; a channel record signed
# by a key the runtime does not trust is refused until the runtime's keyring
# file is atomically replaced by one that trusts it (picked up without a
# restart); a keyring file that does not parse is refused, the keys in force
# stay; a release that expires while served stops being served (freeze
# protection: /readyz 503, invoke 503 release_expired) until a fresh one is
# promoted; a keyring revoking the builder key refuses its artifacts, and
# putting the previous (older, signed) file back is refused as a replay, so
# the revocation stays; a keyring revoking the
# release-manager key withdraws the release (503 no_release); metrics and
# JSON log lines for each; SIGTERM still exits 0.
#
# Waits poll for a state with a generous bound; no timing is asserted.
#
# Env: AF, AF_RUNTIME (the binaries), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-channel-live.XXXXXX)
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
unset AF_STORE AF_KEYRING AF_NOW AF_CHANNEL

command -v jq >/dev/null || { echo "jq is required" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is required (make deps)" >&2; exit 2; }

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
	ok
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		sed 's/^/    stdout: /' "$T/out" >&2
		sed 's/^/    stderr: /' "$T/err" >&2
	fi
}
contains() { # FILE TEXT DESCRIPTION
	ok
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; tail -20 "$1" | sed 's/^/    /' >&2; }
}
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

# ---- keys: an admin keyring (the release managers' machine) and the runtime's own --
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
k() { "$AF" keygen --role "$1" --out "$T/keys/$2" >/dev/null 2>&1; echo "$T/keys/$2/$1"; }
TS=$(k template-signer ts)
B=$(k builder b)
RM1=$(k release-manager rm1)
RM2=$(k release-manager rm2)
KR="$T/admin.json"     # every key: what the CLI uses
RKR="$T/runtime.json"  # what the runtime trusts: every key but RM2, at first
trust() { # KEYRING ROLE PUB
	"$AF" trust add --keyring "$1" --role "$2" --not-before -30d "$3" 2>/dev/null
}
trust "$KR" template-signer "$TS.pub" >/dev/null
B_ID=$(trust "$KR" builder "$B.pub")
RM1_ID=$(trust "$KR" release-manager "$RM1.pub")
trust "$KR" release-manager "$RM2.pub" >/dev/null
trust "$RKR" template-signer "$TS.pub" >/dev/null
trust "$RKR" builder "$B.pub" >/dev/null
trust "$RKR" release-manager "$RM1.pub" >/dev/null
[ -n "$B_ID" ] && [ -n "$RM1_ID" ] || { echo "trust add printed no key id" >&2; exit 1; }
cp "$RKR" "$T/runtime-without-rm2.json"

# ---- a store with senior-reviewer 1.0.0 and 1.1.0 -----------------------------------
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-reviewer senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
S="$T/store"
build_version() { # VERSION
	sed -i "s/^version: .*/version: $1/" "$R/templates/senior-reviewer.yaml"
	"$AF" sign --key "$TS.key" $(find "$R/templates" -name '*.yaml') >/dev/null
	git -C "$R" add -A && git -C "$R" commit -qm "senior-reviewer $1"
	expect 0 "build $1" "$AF" build --repo "$R" --rev HEAD --store "$S" --keyring "$KR" \
		--builder-key "$B.key" -j 2
}
build_version 1.0.0
build_version 1.1.0
[ "$failures" -eq 0 ] || { echo "cannot test channels without a store" >&2; exit 1; }
rel() { # ARGS... : create a release, print its number
	"$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" "$@" 2>/dev/null
}
R1=$(rel senior-reviewer@1.0.0)
R2=$(rel senior-reviewer@1.1.0)
[ "$R1" = 1 ] && [ "$R2" = 2 ] || fail "releases 1 and 2, got '$R1' '$R2'"
promote() { # RELEASE [KEY]
	"$AF" promote --store "$S" --keyring "$KR" --key "${2:-$RM1.key}" --channel blue \
		--release "$1" >/dev/null 2>"$T/promote.err"
}
rollback() { # TO
	"$AF" rollback --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --to "$1" \
		>/dev/null 2>"$T/promote.err"
}
ok
promote "$R1" || fail "promote 1: $(cat "$T/promote.err")"

cat >"$T/script.json" <<'EOF'
{"responses": [{"role": "assistant", "content": "{\"summary\": \"The retry loop has no upper bound.\", \"findings\": [\"unbounded retry in fetch()\"], \"verdict\": \"changes requested\"}"}]}
EOF
BODY='{"inputs":{"change":"add a retry loop","focus":"errors"}}'

# ---- the runtime ----------------------------------------------------------------
"$RT" --store "$S" --keyring "$RKR" --channel blue --poll-ms 100 --listen 127.0.0.1:0 \
	--port-file "$T/port" --log "$T/rt.log" --llm-script "$T/script.json" 2>"$T/rt.stderr" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 1 200); do
	[ -s "$T/port" ] && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
[ -s "$T/port" ] || { cat "$T/rt.stderr" "$T/rt.log" >&2; echo "FAIL: the runtime did not start" >&2; exit 1; }
ADDR=$(cat "$T/port")

# req METHOD PATH [CURL ARGS...] : status in $STATUS, body in $T/body
req() {
	local method=$1 path=$2
	shift 2
	STATUS=$(curl -s -o "$T/body" -w '%{http_code}' -X "$method" "$@" "http://$ADDR$path") ||
		STATUS=000
}
want() { # STATUS [CODE] DESCRIPTION
	ok
	if [ "$STATUS" != "$1" ]; then
		fail "$3: status $STATUS, want $1: $(head -c 400 "$T/body")"
		return
	fi
	[ -z "$2" ] || contains "$T/body" "\"code\":\"$2\"" "$3: error code"
}
invoke() { req POST /v1/agents/senior-reviewer/invoke -H 'Content-Type: application/json' -d "$BODY"; }
# served : "RELEASE VERSION STATUS" from GET /v1/agents
served() {
	curl -s "http://$ADDR/v1/agents" |
		jq -r '"\(.release) \(.agents[0].version // "-") \(.channel.status)"' 2>/dev/null || echo "? ? ?"
}
# wait_for WANT DESCRIPTION : polls served() until it prints WANT (30 s at most)
wait_for() {
	local i got=""
	ok
	for i in $(seq 1 600); do
		got=$(served)
		[ "$got" = "$1" ] && return 0
		sleep 0.05
	done
	fail "$2: the runtime serves '$got', want '$1'"
	return 1
}
# wait_log TEXT DESCRIPTION : polls the log for TEXT (30 s at most)
wait_log() {
	local i
	ok
	for i in $(seq 1 600); do
		grep -qF -- "$1" "$T/rt.log" && return 0
		sleep 0.05
	done
	fail "$2: '$1' never logged"
	tail -5 "$T/rt.log" | sed 's/^/    /' >&2
}
metric() { # NAME{LABELS} : its value, 0 when absent
	curl -s "http://$ADDR/metrics" | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
# atomic_replace SRC DST : the way secrets agents render a file (temp + rename)
atomic_replace() {
	cp "$1" "$(dirname "$2")/.tmp-keyring" && mv "$(dirname "$2")/.tmp-keyring" "$2"
}

echo "-- serving release 1"
wait_for "1 1.0.0 ok" "the channel's release at startup"
req GET /readyz
want 200 "" "ready with a release"
req GET /v1/agents
want 200 "" "list"
contains "$T/body" '"channel":{"name":"blue","status":"ok","release":1,"seq":1,"action":"promote"' "list shows the channel"
contains "$T/body" '"count":1,"ok":1,"refused":0' "exactly the release's artifacts"
req GET /v1/agents/senior-reviewer
want 200 "" "describe"
contains "$T/body" '"version":"1.0.0"' "describe shows the pinned version"
req GET "/v1/agents/senior-reviewer?version=1.1.0"
want 404 not_found "a version the release does not pin is not served"
invoke
want 200 "" "invoke"
contains "$T/rt.log" '"event":"release_switch"' "the first release is logged"
run_cli() { # KEYRING AGENT : agentfactory run --channel blue
	"$AF" run --store "$S" --keyring "$1" --channel blue --llm-script "$T/script.json" "$2" \
		--input "$BODY"
}
expect 0 "agentfactory run --channel" run_cli "$RKR" senior-reviewer
contains "$T/out" '"ok":true' "run --channel answers"
expect 2 "agentfactory run --channel, a version the release does not pin" run_cli "$RKR" senior-reviewer@1.1.0
contains "$T/err" "not_found" "run says not_found"

# ---- switches under load ------------------------------------------------------------
echo "-- promote / rollback under load"
cat >"$T/load.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
		summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
EOF
wrk -t2 -c8 -d120s --timeout 10s -s "$T/load.lua" "http://$ADDR/v1/agents/senior-reviewer/invoke" \
	>"$T/wrk.out" 2>&1 &
WRK=$!
PIDS+=("$WRK")
sleep 1
for i in 1 2 3 4 5 6; do
	ok
	promote "$R2" || fail "promote 2 (round $i): $(cat "$T/promote.err")"
	wait_for "2 1.1.0 ok" "promote 2, round $i" || break
	ok
	rollback "$R1" || fail "rollback to 1 (round $i): $(cat "$T/promote.err")"
	wait_for "1 1.0.0 ok" "rollback to 1, round $i" || break
done
sleep 1
kill -INT "$WRK"
wait "$WRK" || true
cat "$T/wrk.out" | grep -E "Requests/sec|RESULT" | sed 's/^/    /'
ok
grep -q '^RESULT ' "$T/wrk.out" || fail "wrk printed no summary: $(cat "$T/wrk.out")"
read -r requests non2xx conn rd wr to < <(sed -n 's/^RESULT requests=\([0-9]*\) non2xx=\([0-9]*\) connect=\([0-9]*\) read=\([0-9]*\) write=\([0-9]*\) timeout=\([0-9]*\)$/\1 \2 \3 \4 \5 \6/p' "$T/wrk.out")
ok
[ "${requests:-0}" -gt 100 ] || fail "the load loop ran only ${requests:-0} requests"
ok
[ "${non2xx:-1}" -eq 0 ] && [ "${conn:-1}" -eq 0 ] && [ "${rd:-1}" -eq 0 ] && [ "${wr:-1}" -eq 0 ] &&
	[ "${to:-1}" -eq 0 ] ||
	fail "requests failed during the switches: non2xx=$non2xx connect=$conn read=$rd write=$wr timeout=$to"
n=$(grep -c '"event":"release_switch"' "$T/rt.log")
ok
[ "$n" -ge 13 ] || fail "13 switches logged, got $n"
ok
[ "$(metric 'agentfactory_errors_total{code="internal"}')" = 0 ] || fail "internal errors during the switches"

# ---- an expired release is refused, the previous one keeps serving ---------------------
echo "-- expired release promoted"
PAST=$(at "-3 days")
R3=$(AF_NOW=$PAST rel --expires 1d senior-reviewer@1.1.0)
ok
AF_NOW=$PAST promote "$R3" || fail "promote the (now) expired release 3: $(cat "$T/promote.err")"
wait_log '"event":"release_refused"' "the expired release is refused"
contains "$T/rt.log" "expired" "the refusal says expired"
wait_for "1 1.0.0 ok" "release 1 still served"
invoke
want 200 "" "invoke while the expired release is refused"
req GET /readyz
want 200 "" "still ready"
req GET /v1/agents
ok
[ "$(jq -r '.channel.refused.release' "$T/body")" = "$R3" ] || fail "the list names the refused release: $(cat "$T/body")"
ok
[ "$(metric 'agentfactory_signature_failures_total{reason="release_expired"}')" -ge 1 ] ||
	fail "the refusal is counted"

echo "-- a newer valid release is taken"
R4=$(rel --from "$R2")
ok
promote "$R4" || fail "promote 4: $(cat "$T/promote.err")"
wait_for "$R4 1.1.0 ok" "release 4 after the expired one"

# ---- keyring reload: a new key is picked up ----------------------------------------------
echo "-- a record signed by a key the runtime does not trust yet"
R5=$(rel --from "$R1")
ok
promote "$R5" "$RM2.key" || fail "promote 5 with RM2: $(cat "$T/promote.err")"
for _ in $(seq 1 100); do
	[ "$(curl -s "http://$ADDR/v1/agents" | jq -r '.channel.refused.release')" = "$R5" ] && break
	sleep 0.05
done
wait_for "$R4 1.1.0 ok" "release 4 kept while release 5's record is untrusted"
req GET /v1/agents
contains "$T/body" "\"refused\":{\"seq\":" "the untrusted record is shown as refused"
atomic_replace "$KR" "$RKR"
wait_log '"event":"keyring_reloaded"' "the new keyring file is loaded"
wait_for "$R5 1.0.0 ok" "release 5 once its signer is trusted"

echo "-- a keyring file that does not parse"
printf '{"format": "agentfactory-keyring/v1", "keys": [' >"$T/broken.json"
atomic_replace "$T/broken.json" "$RKR"
wait_log '"event":"keyring_refused"' "the broken keyring is refused"
wait_for "$R5 1.0.0 ok" "still serving with the keys in force"
invoke
want 200 "" "invoke with the broken keyring file on disk"
ok
[ "$(metric 'agentfactory_signature_failures_total{reason="keyring"}')" -ge 1 ] ||
	fail "the keyring refusal is counted"
atomic_replace "$KR" "$RKR" # the good file back

# ---- freeze protection: the release served expires ------------------------------------------
echo "-- the release served expires"
R6=$(rel --expires 4s --from "$R2")
ok
promote "$R6" || fail "promote 6: $(cat "$T/promote.err")"
wait_for "$R6 1.1.0 ok" "release 6 served"
wait_for "null - expired" "release 6 withdrawn once expired"
req GET /readyz
want 503 not_ready "not ready with an expired release"
contains "$T/body" "expired" "readyz says why"
invoke
want 503 release_expired "invoke with an expired release"
req GET /v1/agents/senior-reviewer
want 503 release_expired "describe with an expired release"
contains "$T/rt.log" '"event":"release_expired"' "the withdrawal is logged"
R7=$(rel --from "$R2")
ok
promote "$R7" || fail "promote 7: $(cat "$T/promote.err")"
wait_for "$R7 1.1.0 ok" "a fresh release serves again"
req GET /readyz
want 200 "" "ready again"

# ---- revocations ------------------------------------------------------------------------------
echo "-- the builder key revoked"
cp "$RKR" "$T/good.json"
cp "$RKR" "$T/revoked-builder.json"
"$AF" trust revoke --keyring "$T/revoked-builder.json" --reason "key leaked" "$B_ID" >/dev/null 2>&1
atomic_replace "$T/revoked-builder.json" "$RKR"
for _ in $(seq 1 600); do
	[ "$(curl -s "http://$ADDR/v1/agents" | jq -r '.agents[0].status')" = refused ] && break
	sleep 0.05
done
req GET /v1/agents
contains "$T/body" '"status":"refused"' "the builder's artifact is refused after the reload"
contains "$T/body" "revoked" "the refusal says revoked"
invoke
want 503 agent_refused "invoke an artifact of a revoked builder"
req GET /readyz
want 503 not_ready "nothing verified: not ready"
# The previous keyring file written back (a genuinely signed, older version)
# would undo the revocation: a replay, refused; the revocation stays.
n_refused=$(grep -c '"event":"keyring_refused"' "$T/rt.log" || true)
atomic_replace "$T/good.json" "$RKR"
for _ in $(seq 1 600); do
	[ "$(grep -c '"event":"keyring_refused"' "$T/rt.log" || true)" -gt "$n_refused" ] && break
	sleep 0.05
done
grep '"event":"keyring_refused"' "$T/rt.log" | tail -1 | grep -q "not newer than version" ||
	fail "the older keyring written back is refused as a replay: $(grep keyring_refused "$T/rt.log" | tail -1)"
invoke
want 503 agent_refused "the older keyring written back does not undo the revocation"
atomic_replace "$T/revoked-builder.json" "$RKR" # the file in force back

echo "-- the release manager's key revoked"
cp "$RKR" "$T/revoked-rm.json"
"$AF" trust revoke --keyring "$T/revoked-rm.json" --reason "left the team" "$RM1_ID" >/dev/null 2>&1
atomic_replace "$T/revoked-rm.json" "$RKR"
wait_for "null - no_release" "the release signed by a revoked key is withdrawn"
contains "$T/rt.log" '"event":"release_withdrawn"' "the withdrawal is logged"
invoke
want 503 no_release "invoke with no trusted release"
req GET /readyz
want 503 not_ready "not ready without a trusted release"
expect 2 "agentfactory run --channel with the release manager revoked" run_cli "$RKR" senior-reviewer
contains "$T/err" "no_release" "run says no_release"

# ---- shutdown ---------------------------------------------------------------------------------
ok
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM, want 0"
ok
! grep -q '"level":"error","event":"internal' "$T/rt.log" || fail "internal errors logged"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
