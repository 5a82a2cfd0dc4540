#!/usr/bin/env bash
# Distribution through an OCI registry (Debian's docker-registry on a free
# loopback port, storage on local disk):
#  - push and pull of the sample catalogue (every template of templates/):
#    wall time, blobs and bytes moved, requests; the first time, again with
#    nothing new, and after one leaf changed (tester gets a new version);
#  - followers: 3 agentfactory-runtime --source pods (poll interval 1 s,
#    jitter 0), the time from `promote` + `push` returning until every pod
#    serves the new release (measured by a client polling each pod), over
#    BENCH_SWITCHES switches (promote / rollback alternately);
#  - an idle follower: registry requests per poll (the registry's access
#    log) and the follower process's CPU time per poll (/proc).
# Figures, not assertions.
#
# Usage: AF=... AF_RUNTIME=... bash bench/registry.sh
# Env: BENCH_SWITCHES (default 10); AF_BENCH_SMOKE=1: three agents, two
#      switches, 3 s idle, to prove the benchmark still runs.
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:-$(pwd)}
N=${BENCH_SWITCHES:-10}
IDLE=20
SMOKE=${AF_BENCH_SMOKE:-}
[ -z "$SMOKE" ] || { N=2; IDLE=3; }
for tool in docker-registry jq curl python3; do
	command -v "$tool" >/dev/null || { echo "$tool is required (make deps)" >&2; exit 2; }
done
T=$(mktemp -d /tmp/af-bench-registry.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid
unset AF_STORE AF_KEYRING AF_NOW AF_CHANNEL AF_SOURCE REGISTRY_AUTH_FILE DOCKER_CONFIG
export HOME="$T/home"
mkdir -p "$HOME"
. "$SRC/tests/integration/registry_lib.bash"

for role in template-signer builder release-manager; do
	"$AF" keygen --role "$role" --out "$T/keys" >/dev/null 2>&1
	"$AF" trust add --keyring "$T/kr.json" --role "$role" "$T/keys/$role.pub" >/dev/null 2>&1
done
KR="$T/kr.json"
RM="$T/keys/release-manager.key"
git init -q "$T/repo"
if [ -n "$SMOKE" ]; then
	mkdir -p "$T/repo/templates/bases"
	cp "$SRC"/templates/bases/*.yaml "$T/repo/templates/bases/"
	for t in senior-reviewer technical-reviewer tester; do cp "$SRC/templates/$t.yaml" "$T/repo/templates/"; done
else
	cp -r "$SRC/templates" "$T/repo/"
fi
build() {
	"$AF" sign --key "$T/keys/template-signer.key" $(find "$T/repo/templates" -name '*.yaml') >/dev/null
	git -C "$T/repo" add -A && git -C "$T/repo" commit -qm "$1"
	"$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$T/keys/builder.key" \
		--store "$T/store" -j 2 >/dev/null 2>&1
}
build v1
NAMES=$("$AF" ls --json --store "$T/store" | jq -r '[.artifacts[].name] | unique | .[]')
N_AGENTS=$(echo "$NAMES" | wc -l)
"$AF" release create --store "$T/store" --keyring "$KR" --key "$RM" $NAMES >/dev/null 2>&1
"$AF" promote --store "$T/store" --keyring "$KR" --key "$RM" --channel blue --release 1 >/dev/null 2>&1

start_registry "$T/reg"
REG="oci://127.0.0.1:$REG_PORT/agents"

row() { # LABEL JSON_FILE
	jq -r --arg l "$1" '"| \($l) | \(.ms|floor) | \(.blobs_up + .blobs_down) | \(.bytes_up + .bytes_down) | \(.blobs_skipped) | \(.requests) |"' "$2"
}
echo "## Push and pull: $N_AGENTS agents (one release), docker-registry on loopback"
echo
echo "| step | ms | blobs moved | bytes moved | blobs skipped | requests |"
echo "|---|---:|---:|---:|---:|---:|"
"$AF" push --quiet --json --store "$T/store" --channel blue "$REG" >"$T/j1"
row "push, first time" "$T/j1"
"$AF" push --quiet --json --store "$T/store" --channel blue "$REG" >"$T/j2"
row "push again (nothing new)" "$T/j2"
"$AF" pull --quiet --json --store "$T/pulled" --keyring "$KR" --channel blue "$REG" >"$T/j3"
row "pull into an empty store" "$T/j3"
"$AF" pull --quiet --json --store "$T/pulled" --keyring "$KR" --channel blue "$REG" >"$T/j4"
row "pull again (up to date)" "$T/j4"
sed -i 's/^version: .*/version: 1.1.0/' "$T/repo/templates/tester.yaml"
echo "# one leaf changed" >>"$T/repo/templates/tester.yaml"
build v2
"$AF" release create --store "$T/store" --keyring "$KR" --key "$RM" $NAMES >/dev/null 2>&1
"$AF" promote --store "$T/store" --keyring "$KR" --key "$RM" --channel blue --release 2 >/dev/null 2>&1
"$AF" push --quiet --json --store "$T/store" --channel blue "$REG" >"$T/j5"
row "push after one leaf changed" "$T/j5"
"$AF" pull --quiet --json --store "$T/pulled" --keyring "$KR" --channel blue "$REG" >"$T/j6"
row "pull after one leaf changed" "$T/j6"
echo
echo "Registry storage after both releases: $(registry_blobs) blobs, $(du -sb "$REG_ROOT" | cut -f1) bytes."
echo

# ---- followers -------------------------------------------------------------------------
for i in 1 2 3; do
	"$RT" --store "$T/pod$i" --keyring "$KR" --channel blue --source "$REG" \
		--source-interval-ms 1000 --source-jitter-ms 0 --poll-ms 100 --listen 127.0.0.1:0 \
		--port-file "$T/pod$i.port" --log "$T/pod$i.log" &
	PIDS+=("$!")
	eval "POD$i=$!"
done
for i in 1 2 3; do
	for _ in $(seq 1 600); do [ -s "$T/pod$i.port" ] && curl -sf "http://$(cat "$T/pod$i.port")/readyz" >/dev/null && break; sleep 0.1; done
done
cat >"$T/wait.py" <<'EOF'
import http.client, json, sys, time
want, addrs = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
conns = {a: http.client.HTTPConnection(*a.split(":"), timeout=10) for a in addrs}
done = {}
while len(done) < len(addrs) and time.monotonic() - t0 < 120:
    for a, c in conns.items():
        if a in done:
            continue
        try:
            c.request("GET", "/v1/agents/tester")
            v = json.loads(c.getresponse().read()).get("version")
        except Exception:
            conns[a] = c = http.client.HTTPConnection(*a.split(":"), timeout=10)
            v = None
        if v == want:
            done[a] = time.monotonic() - t0
    time.sleep(0.005)
print(" ".join("%.0f" % (done.get(a, float("nan")) * 1000) for a in addrs))
EOF
ADDRS="$(cat "$T/pod1.port") $(cat "$T/pod2.port") $(cat "$T/pod3.port")"
python3 "$T/wait.py" 1.1.0 $ADDRS >/dev/null
echo "## Followers: 3 pods, poll interval 1 s, promote + push -> every pod serving"
echo
echo "| switch | to | push ms | pod 1 ms | pod 2 ms | pod 3 ms | all, from promote ms |"
echo "|---:|---|---:|---:|---:|---:|---:|"
: >"$T/alls"
for s in $(seq 1 "$N"); do
	if [ $((s % 2)) = 1 ]; then
		to=1.0.0
		cmd=(rollback --to 1)
	else
		to=1.1.0
		cmd=(promote --release 2)
	fi
	t0=$(date +%s%N)
	"$AF" "${cmd[@]}" --store "$T/store" --keyring "$KR" --key "$RM" --channel blue >/dev/null 2>&1
	tp=$(date +%s%N)
	"$AF" push --quiet --store "$T/store" --channel blue "$REG" >/dev/null
	t1=$(date +%s%N)
	read -r a b c <<<"$(python3 "$T/wait.py" "$to" $ADDRS)"
	all=$(( (t1 - t0) / 1000000 + $(printf '%s\n' "$a" "$b" "$c" | sort -n | tail -1) ))
	echo "$all" >>"$T/alls"
	echo "| $s | $to | $(( (t1 - tp) / 1000000 )) | $a | $b | $c | $all |"
done
echo
sort -n "$T/alls" | awk '{v[NR]=$1} END {printf "promote + push -> all 3 serving: median %d ms, max %d ms over %d switches (pod columns count from the end of the push)\n\n", v[int((NR+1)/2)], v[NR], NR}'

# ---- idle cost -------------------------------------------------------------------------
child=$(pgrep -P "$POD1" | head -1 || true)
cpu() { awk '{print $1}' "/proc/$1/schedstat"; } # ns on a CPU
h0=$(grep -c '"HEAD /v2/' "$T/reg/registry.log" || true)
g0=$(grep -c '"GET /v2/' "$T/reg/registry.log" || true)
c0=$(cpu "$child")
p0=$(curl -s "http://$(cat "$T/pod1.port")/metrics" | awk '/^agentfactory_source_polls_total/ {print $2}')
sleep "$IDLE"
h1=$(grep -c '"HEAD /v2/' "$T/reg/registry.log" || true)
g1=$(grep -c '"GET /v2/' "$T/reg/registry.log" || true)
c1=$(cpu "$child")
p1=$(curl -s "http://$(cat "$T/pod1.port")/metrics" | awk '/^agentfactory_source_polls_total/ {print $2}')
polls=$((p1 - p0))
echo "## Idle followers (nothing changes, ${IDLE} s)"
echo
echo "3 pods: $((h1 - h0)) HEAD and $((g1 - g0)) GET requests at the registry; pod 1 polled $polls times."
awk -v c="$((c1 - c0))" -v p="$polls" -v s="$IDLE" 'BEGIN {
	printf "pod 1 follower CPU: %.2f ms over %d s = %.3f ms per poll (%.4f%% of a core)\n",
		c / 1e6, s, (p ? c / 1e6 / p : 0), c / 1e7 / s }'
