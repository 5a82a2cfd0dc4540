#!/usr/bin/env python3
"""assert_rendered.py - assertions on the manifests `helm template` renders
for the agentfactory chart.

    assert_rendered.py RENDERED.yaml CHART/values.yaml [CASE.yaml]

The values the chart rendered with are the chart's defaults deep-merged with
the case's file (as helm merges -f). Prints each failed assertion; exits 1
if any failed.
"""
import sys

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


values = yaml.safe_load(open(sys.argv[2]))
if len(sys.argv) > 3:
    merge(values, yaml.safe_load(open(sys.argv[3])) or {})
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def objs(kind):
    return [d for d in docs if d["kind"] == kind]


def by_name_suffix(kind, suffix):
    found = [d for d in objs(kind) if d["metadata"]["name"].endswith(suffix)]
    return found[0] if found else None


def subset(small, big):
    return all(big.get(k) == v for k, v in small.items())


active = values["activeColor"]
inactive = "green" if active == "blue" else "blue"
colors = [c for c in ("blue", "green") if values["colors"][c]["enabled"]]
rt = values["runtime"]

# ---- Deployments -------------------------------------------------------------
deps = {d["metadata"]["labels"]["agentfactory.dev/color"]: d for d in objs("Deployment")}
check(sorted(deps) == sorted(colors), f"one Deployment per enabled colour: {sorted(deps)} vs {colors}")
for color, d in deps.items():
    spec = d["spec"]
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    sc, psc = c["securityContext"], pod["securityContext"]
    name = d["metadata"]["name"]
    check(subset(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]),
          f"{name}: selector matches its pods")
    check(spec["selector"]["matchLabels"].get("agentfactory.dev/color") == color,
          f"{name}: selector holds the colour")
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, f"{name}: pod non-root 65532")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod seccomp RuntimeDefault")
    check(sc.get("readOnlyRootFilesystem") is True, f"{name}: read-only root file system")
    check(sc.get("allowPrivilegeEscalation") is False, f"{name}: no privilege escalation")
    check(sc.get("privileged") is False, f"{name}: not privileged")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc["capabilities"].get("add"),
          f"{name}: every capability dropped")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp RuntimeDefault")
    check(pod.get("automountServiceAccountToken") is False, f"{name}: no service account token")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{name}: liveness /healthz")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{name}: readiness /readyz")
    check(c["startupProbe"]["httpGet"]["path"] == "/healthz", f"{name}: startup /healthz")
    port = c["ports"][0]["containerPort"]
    check(port == rt["port"], f"{name}: container port {port}")
    check("requests" in c["resources"] and "limits" in c["resources"], f"{name}: resources")
    args = c["args"]
    channel = values["colors"][color]["channel"]
    check(f"--channel={channel}" in args, f"{name}: follows channel {channel}: {args}")
    check(f"--listen=0.0.0.0:{port}" in args, f"{name}: listens on the pod address")
    check(any(a.startswith("--tokens=") for a in args), f"{name}: tokens (required off loopback)")
    check(any(a.startswith("--keyring=") for a in args), f"{name}: keyring")
    grace_ms = rt["drainSeconds"] * 1000
    check(f"--grace-ms={grace_ms}" in args, f"{name}: --grace-ms is the drain")
    pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    check(pre == rt["preStopSleepSeconds"], f"{name}: preStop sleep {pre}")
    tg = pod["terminationGracePeriodSeconds"]
    check(tg >= pre + rt["drainSeconds"] + 1,
          f"{name}: terminationGracePeriodSeconds {tg} covers preStop {pre} + drain {rt['drainSeconds']}")
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    check(set(mounts) <= set(vols), f"{name}: every mount has a volume")
    check("cache" in mounts and "emptyDir" in vols["cache"], f"{name}: writable cache emptyDir")
    reg = values["source"]["registry"]
    if reg:
        check(f"--source={reg}" in args, f"{name}: --source {reg}")
        check("--store=/var/cache/agentfactory/store" in args, f"{name}: store in the cache")
        check("store" not in vols, f"{name}: no store volume with a registry")
        src = values["source"]
        check(f"--source-interval-ms={src['intervalMs']}" in args, f"{name}: --source-interval-ms")
        for what, flag, key in (("authSecret", "--source-auth-file=/etc/agentfactory/registry-auth/config.json", "registry-auth"),
                                ("caSecret", "--source-ca-file=/etc/agentfactory/registry-ca/ca.crt", "registry-ca")):
            if src[what]["name"]:
                check(flag in args and vols[key]["secret"]["secretName"] == src[what]["name"]
                      and mounts[key].get("readOnly") is True, f"{name}: {what} mounted for {flag}")
            else:
                check(key not in vols and not any(a.startswith(flag.split("=")[0]) for a in args),
                      f"{name}: no {what}")
        check(("--source-plain-http" in args) == bool(src["plainHttp"]), f"{name}: --source-plain-http iff plainHttp")
    else:
        check(not any(a.startswith("--source") for a in args), f"{name}: no --source")
        check(vols["store"]["persistentVolumeClaim"]["claimName"] == values["store"]["existingClaim"]
              and vols["store"]["persistentVolumeClaim"].get("readOnly") is True
              and mounts["store"].get("readOnly") is True, f"{name}: store claim mounted read-only")
    for what in ("keyring", "tokens"):
        f = values[what]["file"]
        if f:
            check(f"--{what}={f}" in args and what not in vols, f"{name}: {what} from file {f}")
        else:
            check(vols[what]["secret"]["secretName"] == values[what]["existingSecret"]
                  and mounts[what].get("readOnly") is True, f"{name}: {what} from its Secret, read-only")
    llm = values["llm"]
    if llm["apiKeySecret"]["name"]:
        check(vols["llm"]["secret"]["secretName"] == llm["apiKeySecret"]["name"],
              f"{name}: LLM key from its Secret")
        check(f"--llm-api-key-file=/etc/agentfactory/llm/{llm['apiKeySecret']['key']}" in args,
              f"{name}: --llm-api-key-file")
    else:
        check("llm" not in vols, f"{name}: no LLM key volume")
    if values["autoscaling"]["enabled"]:
        check("replicas" not in spec, f"{name}: replicas left to the HPA")
    else:
        check(spec.get("replicas") == values["colors"][color]["replicas"], f"{name}: replicas")

# ---- Services ------------------------------------------------------------------
live, preview = by_name_suffix("Service", "-live"), by_name_suffix("Service", "-preview")
check(live is not None and preview is not None, "live and preview Services")
if live and preview:
    check(live["spec"]["selector"].get("agentfactory.dev/color") == active,
          f"live selects the active colour {active}: {live['spec']['selector']}")
    check(preview["spec"]["selector"].get("agentfactory.dev/color") == inactive,
          f"preview selects {inactive}")
    d = deps.get(active)
    if d:
        check(subset(live["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]),
              "live's selector matches the active Deployment's pods")
        other = deps.get(inactive)
        if other:
            check(not subset(live["spec"]["selector"], other["spec"]["template"]["metadata"]["labels"]),
                  "live's selector does not match the other colour")
    check(live["spec"]["ports"][0]["targetPort"] == "http", "live targets the http port")

# ---- PDB, HPA --------------------------------------------------------------------
pdbs = objs("PodDisruptionBudget")
if values["podDisruptionBudget"]["enabled"]:
    check(len(pdbs) == len(colors), f"one PDB per colour: {len(pdbs)}")
    for p in pdbs:
        color = p["spec"]["selector"]["matchLabels"]["agentfactory.dev/color"]
        n = (values["autoscaling"]["minReplicas"] if values["autoscaling"]["enabled"]
             else values["colors"][color]["replicas"])
        check(p["spec"]["minAvailable"] < n, f"PDB {color}: minAvailable {p['spec']['minAvailable']} < replicas {n}")
        check(subset(p["spec"]["selector"]["matchLabels"], deps[color]["spec"]["template"]["metadata"]["labels"]),
              f"PDB {color} selects its pods")
else:
    check(not pdbs, "no PDB when disabled")
hpas = objs("HorizontalPodAutoscaler")
if values["autoscaling"]["enabled"]:
    check(sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas) ==
          sorted(d["metadata"]["name"] for d in deps.values()), "one HPA per Deployment")
else:
    check(not hpas, "no HPA when disabled")

# ---- NetworkPolicy ---------------------------------------------------------------
nps = objs("NetworkPolicy")
if values["networkPolicy"]["enabled"]:
    check(len(nps) == 1, "one NetworkPolicy")
    np = nps[0]["spec"]
    check(set(np["policyTypes"]) == {"Ingress", "Egress"}, "both directions")
    check([p["port"] for r in np["ingress"] for p in r["ports"]] == [rt["port"]], "ingress: the API port only")
    eg_ports = sorted({p["port"] for r in np["egress"] for p in r["ports"]})
    want = {53}
    for k in ("registry", "llm"):
        e = values["networkPolicy"]["egress"][k]
        if e["cidrs"]:
            want |= set(e["ports"])
            cidrs = {t["ipBlock"]["cidr"] for r in np["egress"] for t in r.get("to", []) if "ipBlock" in t}
            check(set(e["cidrs"]) <= cidrs, f"egress to the {k} CIDRs")
    check(eg_ports == sorted(want), f"egress ports {eg_ports} == {sorted(want)}")
    for d in deps.values():
        check(subset(np["podSelector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]),
              "the policy selects the runtime pods")
else:
    check(not nps, "no NetworkPolicy when disabled")

# ---- optional monitoring ---------------------------------------------------------
check(bool(objs("ServiceMonitor")) == values["serviceMonitor"]["enabled"], "ServiceMonitor iff enabled")
check(bool(objs("PrometheusRule")) == values["prometheusRule"]["enabled"], "PrometheusRule iff enabled")

for f in failures:
    print("FAIL:", f)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
