#!/usr/bin/env bash
# The alert rules and the Grafana dashboard against the real tools:
# promtool check rules and promtool test rules (ops/prometheus); the
# dashboard JSON checked structurally; then Debian's prometheus, started on
# loopback with a temporary config, scrapes two live runtimes under load,
# the build's textfile (served as a static file) and a real docker-registry,
# and evaluates the rules. Every dashboard query, every recording rule and
# the value side of every alert expression must return data from it: a
# misspelt metric or label survives none of them.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
AF_RUNTIME=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
REGISTRY=${REGISTRY:-/usr/bin/docker-registry}
T=$(mktemp -d /tmp/af-ops.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_file() { for _ in $(seq 1 600); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for tool in "$PROMTOOL" "$PROMETHEUS" "$REGISTRY"; do [ -x "$tool" ] || fail "$tool is missing (make deps)"; done
RULES="$SRC/ops/prometheus/agentfactory-rules.yml"
DASH="$SRC/ops/grafana/agentfactory.json"

echo "-- promtool check rules / test rules"
"$PROMTOOL" check rules "$RULES"
(cd "$SRC/ops/prometheus" && "$PROMTOOL" test rules agentfactory-rules.test.yml)

echo "-- the dashboard JSON is a well-formed Grafana dashboard"
python3 - "$DASH" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("uid", "title", "panels", "schemaVersion", "time"):
    assert k in d, "dashboard lacks " + k
ids = set()
for p in d["panels"]:
    for k in ("id", "type", "title", "gridPos", "targets", "datasource"):
        assert k in p, "panel %r lacks %s" % (p.get("title"), k)
    assert p["id"] not in ids, "duplicate panel id %r" % p["id"]
    ids.add(p["id"])
    g = p["gridPos"]
    assert all(isinstance(g[k], int) for k in "xywh") and g["x"] + g["w"] <= 24, "gridPos of %r" % p["title"]
    assert p["targets"], "panel %r has no query" % p["title"]
    refs = [t["refId"] for t in p["targets"]]
    assert len(set(refs)) == len(refs), "duplicate refId in %r" % p["title"]
    for t in p["targets"]:
        assert t.get("expr"), "empty query in %r" % p["title"]
titles = " ".join(p["title"].lower() for p in d["panels"])
for want in ("p50", "error ratio", "release", "cache", "pool", "build"):
    assert want in titles, "no panel about " + want
print("%d panels" % len(d["panels"]))
PY

echo "-- a store, a build textfile, two runtimes, a registry"
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder --not-after 2099-01-02T03:04:05Z \
	"$T/keys/builder.pub" > /dev/null
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
mkdir -p "$T/textfile"
"$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2 --metrics-file "$T/textfile/build.prom" > /dev/null
"$AF" run backup-manager --store "$T/store" --keyring "$T/kr.json" --data "$T/data" \
	--kv-set 'releases/r1={"version":"1.4.0"}' --input '{"inputs":{"release":"r1"}}' > /dev/null
cat > "$T/review.json" <<'J'
{"responses":[{"role":"assistant","content":"{\"summary\":\"ok\",\"findings\":[],\"verdict\":\"approve\"}"}]}
J
targets=()
cp -r "$T/data" "$T/data1"
cp -r "$T/data" "$T/data2"
for i in 1 2; do
	"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --data "$T/data$i" \
		--llm-script "$T/review.json" --listen 127.0.0.1:0 --port-file "$T/rt$i.port" \
		--log "$T/rt$i.log" &
	pids+=($!)
done
for i in 1 2; do
	wait_file "$T/rt$i.port" || { cat "$T/rt$i.log" >&2; fail "runtime $i did not start"; }
	targets+=("'$(cat "$T/rt$i.port")'")
done
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$T/textfile" > "$T/files.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do grep -q 'port [0-9]' "$T/files.out" && break; sleep 0.05; done
FILES_PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$T/files.out" | head -1)
[ -n "$FILES_PORT" ] || fail "the static file server did not start"
REG_DEBUG=$(free_port)
cat > "$T/registry.yml" <<Y
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $T/registry}
http:
  addr: 127.0.0.1:0
  debug:
    addr: 127.0.0.1:$REG_DEBUG
    prometheus: {enabled: true, path: /metrics}
Y
"$REGISTRY" serve "$T/registry.yml" > "$T/registry.log" 2>&1 &
pids+=($!)

PROM_PORT=$(free_port)
sed 's/interval: 15s/interval: 1s/' "$RULES" > "$T/rules.yml"
cat > "$T/prometheus.yml" <<Y
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$T/rules.yml]
scrape_configs:
  - job_name: agentfactory
    static_configs: [{targets: [$(IFS=,; echo "${targets[*]}")]}]
  - job_name: agentfactory-build
    metrics_path: /build.prom
    static_configs: [{targets: ['127.0.0.1:$FILES_PORT']}]
  - job_name: agentfactory-registry
    static_configs: [{targets: ['127.0.0.1:$REG_DEBUG']}]
Y
"$PROMTOOL" check config "$T/prometheus.yml" > /dev/null
"$PROMETHEUS" --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
	--web.listen-address="127.0.0.1:$PROM_PORT" > "$T/prometheus.log" 2>&1 &
pids+=($!)
P="http://127.0.0.1:$PROM_PORT"
for _ in $(seq 1 300); do curl -sf "$P/-/ready" > /dev/null && break; sleep 0.1; done
curl -sf "$P/-/ready" > /dev/null || { tail -20 "$T/prometheus.log" >&2; fail "prometheus did not start"; }

echo "-- load on both runtimes (successes and errors)"
for i in 1 2; do
	U="http://$(cat "$T/rt$i.port")"
	# Until the dashboard is rendered (rates and quantiles over a window
	# with no traffic are NaN: no data), at most ~10 minutes.
	( for n in $(seq 1 3000); do
		[ -e "$T/stop-load" ] && break
		curl -s -H 'Content-Type: application/json' -d '{"inputs":{"change":"x","focus":"y"}}' \
			"$U/v1/agents/senior-reviewer/invoke" > /dev/null
		curl -s -H 'Content-Type: application/json' -d '{"inputs":{"release":"r1"}}' \
			"$U/v1/agents/backup-manager/invoke" > /dev/null
		curl -s -H 'Content-Type: application/json' -d '{"inputs":{}}' \
			"$U/v1/agents/backup-manager/invoke" > /dev/null
		curl -s "$U/v1/agents/nope" > /dev/null
		sleep 0.1
	done ) &
	pids+=($!)
done

echo "-- every dashboard query, recording rule and alert value returns data"
python3 - "$P" "$DASH" "$T/rules.yml" <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
import yaml
base, dash, rules = sys.argv[1], json.load(open(sys.argv[2])), yaml.safe_load(open(sys.argv[3]))
def query(expr):
    u = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    r = json.load(urllib.request.urlopen(u, timeout=30))
    if r["status"] != "success": raise SystemExit("FAIL: query error %r: %r" % (expr, r))
    return r["data"]["result"]
def value_parts(expr):
    """The value sides of "A > x and B < y": split at top-level 'and', drop the comparison."""
    parts, depth, cur, i = [], 0, "", 0
    e = " ".join(expr.split())
    while i < len(e):
        c = e[i]
        depth += c in "([{"; depth -= c in ")]}"
        if depth == 0 and e.startswith(" and ", i):
            parts.append(cur); cur = ""; i += 5; continue
        cur += c; i += 1
    parts.append(cur)
    out = []
    for p in parts:
        m = re.match(r"^(.*?)\s*(>=|<=|==|!=|>|<)\s*([0-9.e+\- *]+)$", p)
        if not m: raise SystemExit("FAIL: alert part is not VALUE OP NUMBER: %r" % p)
        out.append(m.group(1))
    return out
checks = []
for p in dash["panels"]:
    for t in p["targets"]:
        checks.append(("panel %r" % p["title"], t["expr"].replace("$__rate_interval", "1m")))
for g in rules["groups"]:
    for r in g["rules"]:
        if "record" in r:
            checks.append(("recording rule " + r["record"], r["record"]))
        else:
            for v in value_parts(r["expr"]):
                checks.append(("alert " + r["alert"], v))
deadline = time.time() + 120
pending = checks
while pending and time.time() < deadline:
    pending = [(w, e) for (w, e) in pending if not query(e)]
    if pending: time.sleep(2)
for w, e in pending:
    print("FAIL: no data for %s: %s" % (w, e), file=sys.stderr)
if pending: sys.exit(1)
# the rules evaluate without errors, every target is up
rs = json.load(urllib.request.urlopen(base + "/api/v1/rules", timeout=30))["data"]["groups"]
bad = [r["name"] for g in rs for r in g["rules"] if r.get("health") != "ok"]
if bad: sys.exit("FAIL: rules not healthy: %r" % bad)
tg = json.load(urllib.request.urlopen(base + "/api/v1/targets", timeout=30))["data"]["activeTargets"]
down = [t["scrapeUrl"] for t in tg if t["health"] != "up"]
if down or len(tg) != 4: sys.exit("FAIL: targets down or missing: %r (%d)" % (down, len(tg)))
# two runtimes really are in the per-agent series
inst = {s["metric"]["instance"] for s in query('agentfactory_agent_invocations_total{agent="backup-manager",code="ok"}')}
if len(inst) != 2: sys.exit("FAIL: per-agent series of %d runtimes" % len(inst))
# and the alerts that must not fire on a healthy fleet do not
firing = {a["labels"]["alertname"] for a in json.load(urllib.request.urlopen(base + "/api/v1/alerts", timeout=30))["data"]["alerts"]}
for quiet in ("AgentfactoryNoReadyReplicas", "AgentfactoryRegistryUnreachable", "AgentfactoryReleaseExpiringSoon", "AgentfactorySignatureFailures"):
    if quiet in firing: sys.exit("FAIL: %s fires on a healthy fleet" % quiet)
print("%d queries returned data; alerts pending or firing: %s" % (len(checks), sorted(firing) or "none"))
PY

echo "-- the dashboard as a picture, from the panels' real data"
PNG=${AF_DASHBOARD_PNG:-$T/dashboard.png}
python3 "$SRC/ops/grafana/render_png.py" "$P" "$DASH" "$PNG" 45 ||
	fail "rendering the dashboard: a panel has no data"
touch "$T/stop-load"
[ "$(head -c 8 "$PNG" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "not a PNG"
echo "OK"
