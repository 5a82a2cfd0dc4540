#!/usr/bin/env bash
# test_http_slowloris.sh - ~1000 unauthenticated connections dripping one
# header line at a time (slowloris, tests/integration/slowloris.py) do not
# lock other clients out:
#  1. all from one address: --max-connections-per-ip (default 128) keeps the
#     attacker to 128 connections; a client from another address is served;
#  2. from an address without a per-address limit: --header-timeout closes
#     every connection whose request head is not complete in time (however
#     steadily it drips), the slots come back, a new client is served, and
#     agentfactory_http_head_timeouts_total counts them.
# No timing is asserted beyond generous upper bounds.
#
# Env: AF, AF_RUNTIME (the binaries), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/af-slowloris.XXXXXX")
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
PIDS=()
cleanup() {
	local p
	stop_pids "${PIDS[@]}"
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
. "$SRC/tests/lib/procs.sh"
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING
ulimit -n 8192 2>/dev/null || true
[ "$(ulimit -n)" -ge 2200 ] || { echo "FAIL: need 2200 file descriptors (ulimit -n is $(ulimit -n))" >&2; exit 1; }

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
find "$T/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$T/keys/template-signer.key" "${files[@]}" >/dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
	--store "$T/st" >/dev/null 2>"$T/build.err" || { cat "$T/build.err" >&2; exit 1; }

# start NAME ARGS... : a server on a free loopback port; sets ADDR, PORT, PID
start() {
	local name=$1
	shift
	"$RT" --store "$T/st" --keyring "$KR" --listen 127.0.0.1:0 --port-file "$T/$name.port" \
		--log "$T/$name.log" "$@" 2>"$T/$name.err" &
	PID=$!
	PIDS+=("$PID")
	for _ in $(seq 1 400); do [ -s "$T/$name.port" ] && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
	[ -s "$T/$name.port" ] || { cat "$T/$name.err" >&2; echo "FAIL: $name did not start" >&2; exit 1; }
	ADDR=$(cat "$T/$name.port")
	PORT=${ADDR##*:}
}
# status_of FILE KEY : a number from the dripper's status file (0 if none yet)
status_of() {
	python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))
except Exception: print(0)' "$1" "$2"
}
# served FROM : GET /healthz from source address FROM, retried for up to 60 s
served() {
	local i code
	for i in $(seq 1 60); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --interface "$1" --max-time 10 \
			"http://$ADDR/healthz" || true)
		[ "$code" = 200 ] && return 0
		sleep 1
	done
	return 1
}

echo "-- 1. 1000 dripping connections from one address"
start one --header-timeout 3600
python3 "$SRC/tests/integration/slowloris.py" 127.0.0.1 "$PORT" 1000 127.0.0.2 1 600 "$T/one.json" &
DRIP=$!
PIDS+=("$DRIP")
for _ in $(seq 1 600); do [ "$(status_of "$T/one.json" round)" -ge 3 ] && break; sleep 0.2; done
[ "$(status_of "$T/one.json" round)" -ge 3 ] || fail "the dripper never got going"
alive=$(status_of "$T/one.json" alive)
echo "attacker: $alive of 1000 connections held"
[ "$alive" -le 128 ] || fail "one address holds $alive connections (per-address limit 128)"
[ "$alive" -ge 1 ] || fail "no attacking connection held at all (the test proves nothing)"
served 127.0.0.1 || fail "a client from another address is not served while one address drips"
kill "$DRIP" 2>/dev/null || true
kill -TERM "$PID"; wait "$PID" || fail "server one: exit $? after SIGTERM"

echo "-- 2. 1000 dripping connections, no per-address limit: the head deadline"
start two --header-timeout 2 --max-connections-per-ip 0
python3 "$SRC/tests/integration/slowloris.py" 127.0.0.1 "$PORT" 1000 127.0.0.3 1 300 "$T/two.json" &
DRIP=$!
PIDS+=("$DRIP")
for _ in $(seq 1 600); do [ "$(status_of "$T/two.json" ready)" = True ] && break; sleep 0.2; done
served 127.0.0.1 || fail "a new client is not served after 1000 dripping connections"
# Every dripping connection is closed by the server, however steadily it drips.
for _ in $(seq 1 600); do
	[ -s "$T/two.json" ] && [ "$(status_of "$T/two.json" alive)" = 0 ] && break
	sleep 0.5
done
opened=$(status_of "$T/two.json" opened)
closed=$(status_of "$T/two.json" closed_by_server)
echo "attacker: $opened opened, $closed closed by the server"
[ "$(status_of "$T/two.json" alive)" = 0 ] || fail "dripping connections still open: $(cat "$T/two.json")"
[ "$opened" -ge 900 ] || fail "only $opened connections opened (the test proves little)"
metric=$(curl -s "http://$ADDR/metrics" | awk '/^agentfactory_http_head_timeouts_total / {print $2}')
echo "agentfactory_http_head_timeouts_total $metric"
[ "${metric:-0}" -ge "$((opened * 9 / 10))" ] || fail "head timeouts counted: ${metric:-none}, want about $opened"
grep -q '"event":"http_head_timeout"' "$T/two.log" || fail "head timeouts not logged"
[ "$(grep -c '"event":"http_head_timeout"' "$T/two.log")" -lt 200 ] ||
	fail "one log line per closed connection: the log must summarise"
# A normal request on a kept-alive connection is unaffected.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "http://$ADDR/healthz" "http://$ADDR/readyz" | tail -c 3)
[ "$code" = 200 ] || fail "keep-alive requests: $code"
kill -TERM "$PID"; wait "$PID" || fail "server two: exit $? after SIGTERM"

echo "$failures failures"
[ "$failures" -eq 0 ]
