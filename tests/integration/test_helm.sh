#!/usr/bin/env bash
# test_helm.sh - the Helm chart helm/agentfactory, with the real helm.
#
# Covers: `helm lint --strict` (defaults and every case); `helm template`
# with the defaults, with every optional feature on (registry source, HPA,
# ServiceMonitor, PrometheusRule, LLM key, Vault Agent files, green active,
# egress CIDRs), and a single-colour, policy-less case; every rendered object
# validated offline against the Kubernetes API schemas (npm
# kubernetes-models 5.1.0: the Kubernetes 1.34 OpenAPI definitions, types,
# required fields and formats, not unknown fields; every kind and field the
# chart uses exists since 1.30, the chart's kubeVersion floor;
# prometheus-operator models for the CRDs); assertions on
# the rendered manifests (tests/helm/assert_rendered.py: live selects the
# active colour, preview the other, non-root read-only Deployments, probes,
# drain and grace period, PDB below replicas, NetworkPolicy ports...); the
# alert rules checked by promtool; wrong values refused at render time by
# values.schema.json or the chart's checks, each with its message; flipping
# activeColor changes only the Services.
#
# Env: AF_SRCDIR, AF_HELM, AF_NODE, AF_NPM.
set -euo pipefail
. "${AF_SRCDIR:?}/tests/lib/tools.sh"
need_tool "${AF_HELM:-}" "helm (make tools)"
need_tool "${AF_NODE:-}" "Node 22 (make npm-deps)"

SRC=${AF_SRCDIR:?}
HELM=${AF_HELM:?AF_HELM must point at helm (make tools)}
NODE=${AF_NODE:?AF_NODE must point at node (make npm-deps)}
export AF_NPM=${AF_NPM:?AF_NPM must point at the test node_modules}
CHART="$SRC/helm/agentfactory"
[ -x "$HELM" ] || { echo "no helm at $HELM (make tools)" >&2; exit 2; }
command -v promtool >/dev/null || { echo "promtool is required (make deps)" >&2; exit 2; }
python3 -c 'import yaml' || { echo "python3-yaml is required (make deps)" >&2; exit 2; }

T=$(mktemp -d /tmp/af-helm-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HELM_CACHE_HOME="$T/cache" HELM_CONFIG_HOME="$T/config" HELM_DATA_HOME="$T/data"

failures=0 checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

"$HELM" version --short
cat >"$T/all.yaml" <<'EOF'
activeColor: green
image:
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
source:
  registry: oci://registry.example.com:5000/agents/catalogue
  pollMs: 1000
  intervalMs: 3000
  authSecret:
    name: registry-pull
  caSecret:
    name: registry-ca
store:
  existingClaim: ""
keyring:
  file: /vault/secrets/keyring.json
tokens:
  file: /vault/secrets/tokens
podAnnotations:
  vault.hashicorp.com/agent-inject: "true"
  vault.hashicorp.com/role: agentfactory
  vault.hashicorp.com/agent-inject-secret-keyring.json: secret/data/agentfactory/keyring
  vault.hashicorp.com/agent-inject-secret-tokens: secret/data/agentfactory/tokens
llm:
  baseUrl: https://llm.example.com/v1
  model: small-model
  apiKeySecret:
    name: llm-api-key
    key: api-key
runtime:
  kvData: true
  drainSeconds: 20
  preStopSleepSeconds: 8
  extraArgs: ["--max-memory-pages=512"]
autoscaling:
  enabled: true
  minReplicas: 3
  maxReplicas: 12
podDisruptionBudget:
  minAvailable: 2
networkPolicy:
  ingressFrom:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: gateway
  egress:
    registry:
      cidrs: [10.20.0.0/16]
      ports: [5000]
    llm:
      cidrs: [203.0.113.0/24]
      ports: [443]
serviceMonitor:
  enabled: true
  bearerTokenSecret:
    name: agentfactory-metrics-token
prometheusRule:
  enabled: true
  labels:
    release: prometheus
EOF
cat >"$T/single.yaml" <<'EOF'
colors:
  green:
    enabled: false
    channel: green
    replicas: 0
  blue:
    enabled: true
    channel: stable
    replicas: 3
networkPolicy:
  enabled: false
podDisruptionBudget:
  enabled: false
serviceAccount:
  create: false
EOF
: >"$T/default.yaml"

render() { # CASE [HELM ARGS...] : $T/CASE.out
	local c=$1
	shift
	"$HELM" template af "$CHART" --namespace agents -f "$T/$c.yaml" "$@" >"$T/$c.out" 2>"$T/$c.err"
}

for c in default all single; do
	echo "-- case $c"
	ok
	"$HELM" lint --strict "$CHART" -f "$T/$c.yaml" >"$T/lint.out" 2>&1 ||
		{ fail "$c: helm lint --strict"; sed 's/^/    /' "$T/lint.out" >&2; }
	ok
	if ! render "$c"; then
		fail "$c: helm template: $(cat "$T/$c.err")"
		continue
	fi
	python3 -c 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))' \
		"$T/$c.out" >"$T/$c.json"
	ok
	"$NODE" "$SRC/tests/helm/validate-k8s.mjs" "$T/$c.json" >"$T/$c.valid" 2>&1 ||
		{ fail "$c: Kubernetes schema validation"; grep -v '^ok' "$T/$c.valid" | sed 's/^/    /' >&2; }
	echo "   $(grep -c '^ok' "$T/$c.valid") objects valid: $(awk '/^ok/ { print $3 }' "$T/$c.valid" | cut -d/ -f1 | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
	ok
	python3 "$SRC/tests/helm/assert_rendered.py" "$T/$c.out" "$CHART/values.yaml" "$T/$c.yaml" >"$T/$c.assert" 2>&1 ||
		fail "$c: assertions: $(grep FAIL "$T/$c.assert" | tr '\n' ';')"
	tail -1 "$T/$c.assert" | sed 's/^/   assertions: /'
done

echo "-- the alert rules (promtool)"
python3 - "$T/all.out" "$T/rules.yaml" <<'EOF'
import sys, yaml
rule = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"][0]
yaml.safe_dump({"groups": rule["spec"]["groups"]}, open(sys.argv[2], "w"))
EOF
ok
promtool check rules "$T/rules.yaml" >"$T/promtool.out" 2>&1 ||
	{ fail "promtool check rules"; sed 's/^/    /' "$T/promtool.out" >&2; }
ok
[ "$(grep -c 'alert:' "$T/rules.yaml")" -ge 10 ] || fail "at least 10 alerts"
ok
cmp -s "$CHART/files/agentfactory-rules.yml" "$SRC/ops/prometheus/agentfactory-rules.yml" ||
	fail "helm/agentfactory/files/agentfactory-rules.yml differs from ops/prometheus/agentfactory-rules.yml (copy it)"
ok
grep -q 'jobLabel: agentfactory.dev/job' "$T/all.out" && grep -q 'agentfactory.dev/job: agentfactory' "$T/all.out" ||
	fail "the ServiceMonitor labels series job=agentfactory (the rules select it)"
# every alert names its runbook section, and the section exists
for a in $(sed -n 's/^ *- alert: //p;s/^ *alert: //p' "$T/rules.yaml"); do
	ok
	grep -qi "^#\+ .*$a" "$SRC/docs/operations.md" || fail "alert $a has no section in docs/operations.md"
done

echo "-- the default case's specifics"
ok
grep -q 'kind: ServiceMonitor\|kind: PrometheusRule\|kind: HorizontalPodAutoscaler' "$T/default.out" &&
	fail "ServiceMonitor/PrometheusRule/HPA rendered by default"
ok
grep -q 'image: "registry.example.com/agentfactory/agentfactory-runtime:0.1.0"' "$T/default.out" ||
	fail "default image tag is the appVersion"
ok
grep -q 'image: "registry.example.com/agentfactory/agentfactory-runtime@sha256:0123' "$T/all.out" ||
	fail "a digest pins the image"

echo "-- switching colour changes only the Services"
render default --set activeColor=green || fail "activeColor=green: $(cat "$T/default.err")"
mv "$T/default.out" "$T/green.out"
render default
ok
diff "$T/default.out" "$T/green.out" >"$T/flip.diff" || true
changed=$(grep -c '^[<>]' "$T/flip.diff" || true)
# the two Services' selector colour and annotation, and NOTES-free output
grep '^[<>]' "$T/flip.diff" | grep -vE 'agentfactory.dev/color: (blue|green)$|^[<>] # (live|preview): the (blue|green) pods$' \
	>"$T/flip.other" || true
[ -s "$T/flip.other" ] && fail "activeColor changed more than the Services: $(cat "$T/flip.other")"
ok
[ "$changed" -gt 0 ] || fail "activeColor=green changed nothing"

echo "-- wrong values are refused"
refuse() { # DESCRIPTION EXPECTED-MESSAGE HELM-ARGS...
	local desc=$1 msg=$2
	shift 2
	ok
	if "$HELM" template af "$CHART" "$@" >"$T/bad.out" 2>"$T/bad.err"; then
		fail "$desc: rendered"
	elif ! grep -qF -- "$msg" "$T/bad.err"; then
		fail "$desc: message lacks '$msg': $(cat "$T/bad.err")"
	fi
}
refuse "unknown colour" "activeColor" --set activeColor=red
refuse "root file system writable" "readOnlyRootFilesystem" --set securityContext.readOnlyRootFilesystem=false
refuse "privilege escalation" "allowPrivilegeEscalation" --set securityContext.allowPrivilegeEscalation=true
refuse "root pod" "runAsNonRoot" --set podSecurityContext.runAsNonRoot=false
refuse "capability added" "add" --set 'securityContext.capabilities.add={NET_ADMIN}'
refuse "replicas a string" "replicas" --set-string colors.blue.replicas=two
refuse "negative replicas" "replicas" --set colors.blue.replicas=-1
refuse "unknown key" "replicaCount is not allowed" --set replicaCount=3
refuse "bad digest" "digest" --set image.digest=sha256:xyz
refuse "registry not oci://" "registry" --set source.registry=https://registry.example.com/agents
refuse "privileged port" "port" --set runtime.port=80
refuse "registry poll too fast" "intervalMs" --set source.intervalMs=1
refuse "bad channel name" "channel" --set 'colors.blue.channel=Blue Channel'
refuse "extra arg not a flag" "extraArgs" --set 'runtime.extraArgs={rm -rf}'
refuse "bad egress CIDR" "cidrs" --set 'networkPolicy.egress.llm.cidrs={everywhere}'
refuse "active colour disabled" "colors.green.enabled is false" \
	--set activeColor=green --set colors.green.enabled=false
refuse "PDB blocks drains" "must be below" --set podDisruptionBudget.minAvailable=2
refuse "PDB vs HPA minimum" "must be below" --set autoscaling.enabled=true \
	--set autoscaling.minReplicas=1 --set podDisruptionBudget.minAvailable=1
refuse "no tokens" "tokens.existingSecret" --set tokens.existingSecret=
refuse "nothing to serve" "no agents to serve" --set store.existingClaim=
refuse "same channel twice" "must differ" --set colors.green.channel=blue

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
