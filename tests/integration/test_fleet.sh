#!/usr/bin/env bash
# test_fleet.sh - the fleet rehearsed without a cluster (`make fleet`).
#
# The chart is rendered (helm template) with the fleet's values; every
# replica of each Deployment it describes is started as a runtime process
# with the Deployment's own arguments (channel, drain, poll, workers...), on
# a loopback port (paths and the listen address adapted to this machine).
# nginx plays the Services: `live` proxies to the active colour's pods,
# `preview` to the other's, with passive health checks and retries to the
# next pod (what an Ingress or a mesh in front of the Service does).
# wrk keeps invoking an agent through `live` during each scenario:
#
#   calm        no change: the p95 baseline;
#   blue-green  green promoted to release 2, checked through preview, live
#               flipped to green (the Service's selector changed, as by
#               `helm upgrade --set activeColor=green`), then
#               flipped back (the rollback): 0 failed requests;
#   follow      the runtime following its channel: blue promoted to
#               release 2 while serving, every blue pod switches, then a
#               rollback: 0 failed requests; the time until every replica
#               serves the new release is printed;
#   chaos       kill -9 of 25 % of the live replicas every few seconds, each
#               restarted a second later on its address (the kubelet
#               restarting the container): 0 failed requests (retries at
#               the balancer), p95 printed against the calm one.
#
#   registry-down  (registry source) the registry stopped for
#               AF_FLEET_OUTAGE_S (default 30) during a promotion: the push
#               fails, every replica keeps serving what it verified, 0 failed
#               requests; the registry back, the push lands and every replica
#               converges on the new release (time printed).
#
# The source of the agents is $FLEET_SOURCE: `registry` (the default when
# the runtime has --source): Debian's docker-registry on a loopback port,
# the release managers' store pushes to it (`agentfactory push`), each
# replica follows its channel from it into its own cache store, as the chart
# renders with source.registry; or `store`: one store shared by every
# replica, promotions written into it.
#
# Failed requests are those wrk sees answered non-2xx or not answered; each
# scenario prints them with the nginx log's upstream statuses (a retried
# request shows two upstreams). Timings are printed, never asserted.
#
# Env: AF, AF_RUNTIME, AF_SRCDIR, AF_HELM; AF_FLEET_REPLICAS (per colour,
# default 4), AF_FLEET_CHAOS_S (default 30; make fleet: 60),
# AF_FLEET_REPORT (a file to append the figures to, Markdown).
set -euo pipefail
. "${AF_SRCDIR:?}/tests/lib/tools.sh"
need_tool "${AF_HELM:-}" "helm (make tools)"

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
HELM=${AF_HELM:?AF_HELM must point at helm (make tools)}
REPLICAS=${AF_FLEET_REPLICAS:-4}
CHAOS_S=${AF_FLEET_CHAOS_S:-30}
OUTAGE_S=${AF_FLEET_OUTAGE_S:-30}
if [ -z "${FLEET_SOURCE:-}" ]; then
	FLEET_SOURCE=store
	case "$("$RT" --help 2>&1 || true)" in *"--source oci://"*) FLEET_SOURCE=registry ;; esac
fi
for tool in nginx wrk curl jq python3; do
	command -v "$tool" >/dev/null || { echo "$tool is required (make deps)" >&2; exit 2; }
done
NGINX=$(command -v nginx)

T=$(mktemp -d /tmp/af-fleet.XXXXXX)
chmod 0755 "$T"
mkdir -p "$T/pods" "$T/nginx"
NGINX_PID=""
PIDS=() # the registry (registry_lib.bash)
cleanup() {
	local f
	set +e
	exec 2>/dev/null
	if [ -n "$NGINX_PID" ]; then # TERM: the master stops its workers
		kill -TERM "$NGINX_PID" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$NGINX_PID" 2>/dev/null
	fi
	for f in "$T"/pods/*.pid "$T"/*.bgpid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	for f in "${PIDS[@]}"; do kill -KILL "$f" 2>/dev/null; done
	pkill -KILL -P $$ 2>/dev/null
	# registry followers end on their runtime's death (a moment later)
	for _ in 1 2 3 4 5 6 7 8 9 10; do rm -rf "$T" && [ ! -e "$T" ] && break; sleep 0.5; done
}
trap cleanup EXIT

failures=0 checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
REPORT=()
report() { REPORT+=("$*"); echo "   $*"; }

# ---- the agents: a signed store, releases 1 (1.0.0) and 2 (1.1.0) -----------------
# shellcheck source=lib/fixture_store.sh
source "$SRC/tests/integration/lib/fixture_store.sh"
fixture_store "$T/fx" || exit 1
fx_promote blue 1 && fx_promote green 1 || { echo "promote failed" >&2; exit 1; }
REGISTRY=""
case "$FLEET_SOURCE" in
store) ;;
registry)
	command -v docker-registry >/dev/null || { echo "docker-registry is required (make deps)" >&2; exit 2; }
	# shellcheck source=registry_lib.bash
	. "$SRC/tests/integration/registry_lib.bash"
	start_registry "$T/registry" || exit 1
	REGISTRY="oci://127.0.0.1:$REG_PORT/agents"
	;;
*) echo "FLEET_SOURCE=$FLEET_SOURCE: store or registry" >&2; exit 2 ;;
esac
# publish CHANNEL : what the release managers do after promote or rollback
publish() {
	[ -n "$REGISTRY" ] || return 0
	"$AF" push --quiet --store "$FX_STORE" --channel "$1" "$REGISTRY" >"$T/push.out" 2>&1
}
promote() { fx_promote "$1" "$2" && publish "$1"; }
rollback() { fx_rollback "$1" "$2" && publish "$1"; }
publish blue && publish green || { echo "push failed: $(cat "$T/push.out")" >&2; exit 1; }
# pod_store ID : the store a replica serves
pod_store() { if [ -n "$REGISTRY" ]; then echo "$T/pods/$1.store"; else echo "$FX_STORE"; fi; }
TOKEN=$("$RT" token new --role invoke --name fleet --tokens "$T/tokens" | head -1)

# ---- the Deployments, as the chart renders them ----------------------------------
cat >"$T/values.yaml" <<EOF
colors:
  blue: {enabled: true, channel: blue, replicas: $REPLICAS}
  green: {enabled: true, channel: green, replicas: $REPLICAS}
source: {pollMs: 100, intervalMs: 250, registry: "$REGISTRY"}
runtime: {workers: 16, drainSeconds: 5, preStopSleepSeconds: 1}
EOF
"$HELM" template fleet "$SRC/helm/agentfactory" -f "$T/values.yaml" >"$T/rendered.yaml"
# one line per Deployment: COLOUR REPLICAS ARG... (paths and listen adapted)
python3 - "$T/rendered.yaml" >"$T/deployments" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or d["kind"] != "Deployment":
        continue
    color = d["metadata"]["labels"]["agentfactory.dev/color"]
    args = [a for a in d["spec"]["template"]["spec"]["containers"][0]["args"]
            if a != "serve" and not a.split("=")[0] in ("--listen", "--store", "--keyring", "--tokens")]
    print(color, d["spec"]["replicas"], " ".join(args))
EOF
ok
[ "$(wc -l <"$T/deployments")" = 2 ] || fail "the chart renders two Deployments: $(cat "$T/deployments")"
cat "$T/deployments" | sed 's/^/   deployment: /'

# ---- the replicas ----------------------------------------------------------------
# start_pod ID COLOUR PORT ARGS... : one runtime; its pid in pods/ID.pid
start_pod() {
	local id=$1 color=$2 port=$3
	shift 3
	echo "$color" >"$T/pods/$id.color"
	echo "$*" >"$T/pods/$id.args"
	rm -f "$T/pods/$id.port"
	# started from a subshell: not a job of this shell, so a kill -9 prints
	# no job notice; its end is read from its log ("stopped", exit code)
	(
		"$RT" serve --store "$(pod_store "$id")" --keyring "$FX_RT_KEYRING" --tokens "$T/tokens" \
			--listen "127.0.0.1:$port" --port-file "$T/pods/$id.port" --llm-script "$FX_SCRIPT" \
			--log "$T/pods/$id.log" "$@" 2>>"$T/pods/$id.err" &
		echo $! >"$T/pods/$id.pid"
	)
}
wait_port() { # ID : waits for the port file, prints the address
	local i
	for i in $(seq 1 600); do
		[ -s "$T/pods/$1.port" ] && { cat "$T/pods/$1.port"; return 0; }
		kill -0 "$(cat "$T/pods/$1.pid")" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
PODS=()
while read -r color replicas args; do
	for i in $(seq 1 "$replicas"); do
		id="$color-$i"
		# shellcheck disable=SC2086
		start_pod "$id" "$color" 0 $args
		PODS+=("$id")
	done
done <"$T/deployments"
for id in "${PODS[@]}"; do
	addr=$(wait_port "$id") || { echo "FAIL: $id did not start" >&2; cat "$T/pods/$id.err" >&2; exit 1; }
	echo "$addr" >"$T/pods/$id.addr"
done
echo "-- ${#PODS[@]} replicas started (${REPLICAS} blue, ${REPLICAS} green)"
report "replicas: ${#PODS[@]} runtime processes (${REPLICAS} per colour), source: $FLEET_SOURCE, nginx as the Service"
pods_of() { local id; for id in "${PODS[@]}"; do [ "$(cat "$T/pods/$id.color")" = "$1" ] && echo "$id"; done; }

# served ID : "RELEASE VERSION" a pod serves (via its own port)
served() {
	curl -s -m 5 -H "Authorization: Bearer $TOKEN" "http://$(cat "$T/pods/$1.addr")/v1/agents" |
		jq -r '"\(.release) \(.agents[0].version // "-")"' 2>/dev/null || echo "? ?"
}
# all_serve COLOUR "RELEASE VERSION" : every pod of the colour serves it (30 s at most)
all_serve() {
	local i id good
	for i in $(seq 1 600); do
		good=1
		for id in $(pods_of "$1"); do
			[ "$(served "$id")" = "$2" ] || { good=""; break; }
		done
		[ -n "$good" ] && return 0
		sleep 0.05
	done
	return 1
}
ok
all_serve blue "1 1.0.0" && all_serve green "1 1.0.0" || fail "every replica serves release 1 at start"

# ---- nginx: the Services -----------------------------------------------------------
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
LIVE_PORT=$(free_port)
PREVIEW_PORT=$(free_port)
upstream() { # COLOUR
	local id
	echo "upstream $1 {"
	for id in $(pods_of "$1"); do
		echo "    server $(cat "$T/pods/$id.addr") max_fails=1 fail_timeout=1s;"
	done
	echo "    keepalive 32;"
	echo "}"
}
{ upstream blue; upstream green; } >"$T/nginx/upstreams.conf"
# The Services' selectors: live is blue unless the flag file exists. nginx
# tests the file on every request, so a flip takes effect for the next
# request without a reload (a reload would close the idle keep-alive
# connections of the clients), as a Service's endpoints change under
# kube-proxy.
flip_to() { # COLOUR
	if [ "$1" = green ]; then touch "$T/nginx/live-is-green"; else rm -f "$T/nginx/live-is-green"; fi
}
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    log_format fleet '\$status \$request_time "\$upstream_addr" "\$upstream_status"';
    access_log $T/nginx/access.log fleet;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    include $T/nginx/upstreams.conf;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 1s;
    proxy_read_timeout 60s;
    # a pod that died, refused or is not ready (503): the next one
    proxy_next_upstream error timeout http_502 http_503 non_idempotent;
    proxy_next_upstream_tries 4;
    server {
        listen 127.0.0.1:$LIVE_PORT;
        location / {
            set \$pool blue;
            if (-f $T/nginx/live-is-green) { set \$pool green; }
            proxy_pass http://\$pool;
        }
    }
    server {
        listen 127.0.0.1:$PREVIEW_PORT;
        location / {
            set \$pool green;
            if (-f $T/nginx/live-is-green) { set \$pool blue; }
            proxy_pass http://\$pool;
        }
    }
}
EOF
"$NGINX" -t -c "$T/nginx/nginx.conf" -p "$T/nginx" >"$T/nginx/t.out" 2>&1 ||
	{ cat "$T/nginx/t.out" >&2; echo "FAIL: nginx config" >&2; exit 1; }
"$NGINX" -c "$T/nginx/nginx.conf" -p "$T/nginx" 2>"$T/nginx/stderr" &
NGINX_PID=$!
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$LIVE_PORT/healthz" && break
	sleep 0.05
done
via() { # SERVICE-PORT : "RELEASE VERSION" through a Service
	curl -s -m 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/agents" |
		jq -r '"\(.release) \(.agents[0].version // "-")"' 2>/dev/null || echo "? ?"
}
wait_via() { # PORT WANT : (30 s at most)
	local i
	for i in $(seq 1 300); do
		[ "$(via "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
ok
[ "$(via "$LIVE_PORT")" = "1 1.0.0" ] || fail "live answers through nginx"

# ---- load --------------------------------------------------------------------------
cat >"$T/wrk.lua" <<EOF
wrk.method = "POST"
wrk.body = '$FX_BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d status=%d connect=%d read=%d write=%d timeout=%d p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
EOF
# load_start SECONDS : wrk in the background against live
load_start() {
	LOG_START=$(wc -l <"$T/nginx/access.log" 2>/dev/null || echo 0)
	wrk -t2 -c8 -d"$1s" --timeout 30s -s "$T/wrk.lua" "http://127.0.0.1:$LIVE_PORT/v1/agents/senior-reviewer/invoke" \
		>"$T/wrk.out" 2>&1 &
	echo $! >"$T/wrk.bgpid"
	WRK_PID=$!
}
# load_end NAME : waits for wrk, prints and checks the figures; sets P95
load_end() {
	local name=$1 line req failed retried
	wait "$WRK_PID" || true
	line=$(grep '^RESULT' "$T/wrk.out" || true)
	if [ -z "$line" ]; then
		fail "$name: wrk printed no result: $(cat "$T/wrk.out")"
		return
	fi
	eval "$(echo "${line#RESULT }" | tr ' ' '\n' | sed 's/^/local /')"
	failed=$((status + connect + read + write + timeout))
	tail -n +"$((LOG_START + 1))" "$T/nginx/access.log" >"$T/scenario.log"
	retried=$(grep -c ', ' "$T/scenario.log" || true) # two upstreams: "a, b"
	P95=$p95_ms
	report "$name: $requests requests, $failed failed (status $status, connect $connect, read $read, write $write, timeout $timeout), p50 ${p50_ms} ms, p95 ${p95_ms} ms, p99 ${p99_ms} ms, $retried retried by the balancer"
	ok
	if [ "$failed" -ne 0 ]; then
		fail "$name: $failed failed requests"
		echo "   non-2xx answers in the nginx log (status time upstreams upstream-statuses):" >&2
		{ grep -v '^2' "$T/scenario.log" || echo "(none: the failures happened between wrk and nginx)"; } |
			sort | uniq -c | sort -rn | head -10 | sed 's/^/     /' >&2
	fi
	ok
	[ "$requests" -gt 0 ] || fail "$name: no request completed"
}

echo "-- calm (baseline)"
load_start 10
load_end calm
P95_CALM=$P95

echo "-- blue-green: green promoted, checked through preview, live flipped, flipped back"
promote green 2 || fail "promote green 2: $(cat "$T/push.out")"
ok
all_serve green "2 1.1.0" || fail "green serves release 2"
load_start 20
sleep 2
ok
[ "$(via "$PREVIEW_PORT")" = "2 1.1.0" ] || fail "preview shows green's release 2"
flip_to green
ok
wait_via "$LIVE_PORT" "2 1.1.0" || fail "live serves green's release 2 after the flip"
sleep 5
flip_to blue # the rollback: blue is still on release 1
ok
wait_via "$LIVE_PORT" "1 1.0.0" || fail "live serves blue's release 1 after the rollback"
load_end blue-green

echo "-- the runtime following its channel: blue promoted live, then rolled back"
load_start 20
sleep 2
t0=$(date +%s%N)
promote blue 2 || fail "promote blue 2: $(cat "$T/push.out")"
ok
all_serve blue "2 1.1.0" || fail "every blue replica serves release 2"
t1=$(date +%s%N)
report "promote: every one of the $REPLICAS blue replicas served release 2 $(((t1 - t0) / 1000000)) ms after promote${REGISTRY:+ + push} (source: $FLEET_SOURCE, polled every $([ -n "$REGISTRY" ] && echo 250 || echo 100) ms)"
sleep 4
t0=$(date +%s%N)
rollback blue 1 || fail "rollback blue: $(cat "$T/push.out")"
ok
all_serve blue "1 1.0.0" || fail "every blue replica serves release 1 after the rollback"
t1=$(date +%s%N)
report "rollback: every blue replica served release 1 after $(((t1 - t0) / 1000000)) ms"
load_end follow

echo "-- chaos: kill -9 of 25 % of the live replicas every 3 s for ${CHAOS_S} s, restarted"
KILL_N=$(((REPLICAS + 3) / 4))
load_start "$CHAOS_S"
end=$(($(date +%s) + CHAOS_S - 3))
kills=0 restarts=0 restart_ms_max=0
while [ "$(date +%s)" -lt "$end" ]; do
	mapfile -t victims < <(pods_of blue | shuf -n "$KILL_N")
	for id in "${victims[@]}"; do
		kill -KILL "$(cat "$T/pods/$id.pid")" 2>/dev/null && kills=$((kills + 1))
	done
	sleep 1 # the kubelet notices and restarts the container
	for id in "${victims[@]}"; do
		while kill -0 "$(cat "$T/pods/$id.pid")" 2>/dev/null; do sleep 0.05; done
		port=$(cat "$T/pods/$id.addr")
		port=${port##*:}
		t0=$(date +%s%N)
		for attempt in 1 2 3 4 5 6 7 8 9 10; do
			# shellcheck disable=SC2046
			start_pod "$id" blue "$port" $(cat "$T/pods/$id.args")
			wait_port "$id" >/dev/null && break
			sleep 0.5 # the address still in use: try again, as a crash loop would
		done
		t1=$(date +%s%N)
		restarts=$((restarts + 1))
		ms=$(((t1 - t0) / 1000000))
		[ "$ms" -gt "$restart_ms_max" ] && restart_ms_max=$ms
	done
	sleep 2
done
load_end chaos
report "chaos: $kills replicas killed with SIGKILL, $restarts restarted (slowest back on its port after $restart_ms_max ms), p95 ${P95} ms vs calm ${P95_CALM} ms ($(awk -v a="$P95" -v b="$P95_CALM" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')x)"
ok
all_serve blue "1 1.0.0" || fail "after the chaos every blue replica serves release 1"
ok
[ "$kills" -gt 0 ] && [ "$restarts" -eq "$kills" ] || fail "kills $kills, restarts $restarts"

if [ -n "$REGISTRY" ]; then
	echo "-- registry down for ${OUTAGE_S} s during a promotion"
	load_start $((OUTAGE_S + 15))
	sleep 2
	stop_registry
	t_down=$(date +%s)
	ok
	if promote blue 2; then
		fail "the push succeeded with the registry down"
	else
		report "registry down: promote done in the release managers' store, push refused: $(tail -1 "$T/push.out" | cut -c1-160)"
	fi
	# nothing served changes while it is down
	changed=0 samples=0
	while [ $(($(date +%s) - t_down)) -lt "$OUTAGE_S" ]; do
		for id in $(pods_of blue); do
			samples=$((samples + 1))
			[ "$(served "$id")" = "1 1.0.0" ] || changed=$((changed + 1))
		done
		sleep 1
	done
	ok
	[ "$changed" = 0 ] || fail "registry down: $changed of $samples samples served something else than release 1"
	report "registry down ${OUTAGE_S} s: $samples samples of the blue replicas, $changed serving anything but release 1"
	# back: same storage, same address
	docker-registry serve "$T/registry/config.yml" >>"$T/registry/registry.log" 2>&1 &
	REG_PID=$!
	PIDS+=("$REG_PID")
	for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$REG_PORT/v2/" && break; sleep 0.1; done
	t0=$(date +%s%N)
	ok
	publish blue || fail "push after the outage: $(cat "$T/push.out")"
	ok
	all_serve blue "2 1.1.0" || fail "after the outage every blue replica serves release 2"
	t1=$(date +%s%N)
	report "registry back: every blue replica served release 2 $(((t1 - t0) / 1000000)) ms after the push"
	load_end registry-down
	rollback blue 1 || fail "rollback after the outage: $(cat "$T/push.out")"
	ok
	all_serve blue "1 1.0.0" || fail "every blue replica back on release 1"
else
	echo "-- registry down during a promotion: not run (source: $FLEET_SOURCE; the runtime has no --source)"
fi

echo "-- graceful stop: SIGTERM drains every replica"
for id in "${PODS[@]}"; do kill -TERM "$(cat "$T/pods/$id.pid")" 2>/dev/null || true; done
bad=0
for id in "${PODS[@]}"; do
	for _ in $(seq 1 300); do kill -0 "$(cat "$T/pods/$id.pid")" 2>/dev/null || break; sleep 0.1; done
	tail -1 "$T/pods/$id.log" | grep -q '"event":"stopped".*"exit":0' || bad=$((bad + 1))
done
ok
[ "$bad" = 0 ] || fail "$bad replicas did not stop with exit 0 on SIGTERM"

if [ -n "${AF_FLEET_REPORT:-}" ]; then
	printf -- '- %s\n' "${REPORT[@]}" >>"$AF_FLEET_REPORT"
fi
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
