#!/usr/bin/env bash
# Live switch latency of agentfactory-runtime --channel: the time from
# `agentfactory promote` (or `rollback`) returning to the runtime serving
# the new release, measured by a client that polls GET /v1/agents on one
# keep-alive connection in a tight loop (about 0.1 ms a request) until the
# list names the new release. Releases alternate between two builds of
# senior-reviewer (1.0.0 and 1.1.0), so every switch loads or reuses a
# module as a real promotion would.
#
# Rows: the default watcher (inotify on the store wakes it at once, the poll
# period as fallback) and polling alone (AF_WATCH_INOTIFY=0, as on a file
# system without inotify) at --poll-ms 200 and 50. Also the promote command
# itself (its process, signatures and synced LMDB commit). Figures, not
# assertions.
#
# Usage: AF=... AF_RUNTIME=... bash bench/switch.sh
# Env: BENCH_SWITCHES (switches per row, default 60, at least 20);
#      AF_BENCH_SMOKE=1: 2 switches a row, to prove the benchmark still runs.
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:-$(pwd)}
N=${BENCH_SWITCHES:-60}
[ "$N" -ge 20 ] || N=20
[ -z "${AF_BENCH_SMOKE:-}" ] || N=2
command -v python3 >/dev/null || { echo "python3 is required (make deps)" >&2; exit 2; }
T=$(mktemp -d /tmp/af-bench-switch.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid
unset AF_STORE AF_KEYRING AF_NOW AF_CHANNEL

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
for role in template-signer builder release-manager; do
	"$AF" keygen --role "$role" --out "$T/keys" >/dev/null 2>&1
	"$AF" trust add --keyring "$T/kr.json" --role "$role" "$T/keys/$role.pub" >/dev/null 2>&1
done
git init -q "$T/repo" && mkdir -p "$T/repo/templates/bases"
for f in bases/base-agent bases/base-reviewer senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$T/repo/templates/$f.yaml"
done
for v in 1.0.0 1.1.0; do
	sed -i "s/^version: .*/version: $v/" "$T/repo/templates/senior-reviewer.yaml"
	"$AF" sign --key "$T/keys/template-signer.key" $(find "$T/repo/templates" -name '*.yaml') >/dev/null
	git -C "$T/repo" add -A && git -C "$T/repo" commit -qm "$v"
	"$AF" build --repo "$T/repo" --keyring "$T/kr.json" --builder-key "$T/keys/builder.key" \
		--store "$T/store" >/dev/null 2>&1
done
RM="$T/keys/release-manager.key"
R1=$("$AF" release create --store "$T/store" --keyring "$T/kr.json" --key "$RM" senior-reviewer@1.0.0 2>/dev/null)
R2=$("$AF" release create --store "$T/store" --keyring "$T/kr.json" --key "$RM" senior-reviewer@1.1.0 2>/dev/null)
"$AF" promote --store "$T/store" --keyring "$T/kr.json" --key "$RM" --channel blue --release "$R1" >/dev/null 2>&1
cat >"$T/script.json" <<'EOF'
{"responses": [{"role": "assistant", "content": "{\"summary\": \"ok\", \"findings\": [], \"verdict\": \"approve\"}"}]}
EOF

cat >"$T/measure.py" <<'EOF'
import http.client, json, random, subprocess, sys, time

af, store, kr, key, addr, r1, r2, n = sys.argv[1:9]
r1, r2, n = int(r1), int(r2), int(n)
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=10)

def served():
    conn.request("GET", "/v1/agents")
    return json.loads(conn.getresponse().read()).get("release")

lat, cmd, polls = [], [], 0
current = served()
for i in range(n):
    target = r2 if current == r1 else r1
    args = [af, "promote", "--release", str(target)] if target > current else [af, "rollback", "--to", str(target)]
    args += ["--store", store, "--keyring", kr, "--key", key, "--channel", "blue"]
    t0 = time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = time.monotonic()  # the command has returned
    while served() != target:
        polls += 1
        if time.monotonic() - t1 > 30:
            sys.exit("release %d never served" % target)
    t2 = time.monotonic()
    lat.append((t2 - t1) * 1e3)
    cmd.append((t1 - t0) * 1e3)
    current = target
    time.sleep(random.uniform(0.01, 0.41))  # two poll periods: no phase lock

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]

print("%.2f %.2f %.2f %.2f %.1f %.1f" % (pct(lat, 50), pct(lat, 99), min(lat), max(lat),
                                       pct(cmd, 50), pct(cmd, 99)))
EOF

start() { # extra server args...
	rm -f "$T/port"
	"$RT" --store "$T/store" --keyring "$T/kr.json" --channel blue --llm-script "$T/script.json" \
		--listen 127.0.0.1:0 --port-file "$T/port" --log "$T/runtime.log" "$@" \
		2>>"$T/runtime.log" &
	PID=$!
	for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || { tail "$T/runtime.log" >&2; exit 1; }
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }
row() { # LABEL SERVER ARGS...
	local label=$1 out
	shift
	start "$@"
	out=$(python3 "$T/measure.py" "$AF" "$T/store" "$T/kr.json" "$RM" "$(cat "$T/port")" \
		"$R1" "$R2" "$N")
	stop
	read -r p50 p99 min max c50 c99 <<<"$out"
	printf '| %s | %s | %s ms | %s ms | %s ms | %s ms | %s / %s ms |\n' "$label" "$N" "$p50" "$p99" \
		"$min" "$max" "$c50" "$c99"
	LAST_P50=$p50
}
. "$SRC/bench/lib/figure.sh"

echo "Time from \`promote\`/\`rollback\` returning to GET /v1/agents naming the new release"
echo "($N switches a row, alternating releases $R1 and $R2; $(nproc) cores shared by the"
echo "CLI, the client and the server)."
echo
echo "| watcher | switches | p50 | p99 | min | max | promote command p50 / p99 |"
echo "|---|---|---|---|---|---|---|"
row "inotify + poll 200 ms (default)"
ino=$LAST_P50
AF_WATCH_INOTIFY=0 row "poll only, --poll-ms 200" --poll-ms 200
figure "promote -> new release served, p50 (inotify watcher)" "$ino" "ms" "poll only, 200 ms" "$LAST_P50"
AF_WATCH_INOTIFY=0 row "poll only, --poll-ms 50" --poll-ms 50
