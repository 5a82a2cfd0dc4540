#!/usr/bin/env bash
# The CI definitions in ci/: the GitHub Actions workflow passes the real
# action-validator (and a broken copy of it fails, so the validator is really
# at work); both it and the GitLab CI file parse (python3-yaml) and their jobs
# run ci/pipeline.sh with the secrets it reads, cache the store and upload
# dist/ as the artifact.
set -euo pipefail

SRC=${AF_SRCDIR:?}
. "${AF_SRCDIR:?}/tests/lib/tools.sh"
need_tool "${AF_NODE:-}" "Node 22 (make npm-deps)"
NODE=$AF_NODE
VALIDATOR=${AF_NPM:?}/@action-validator/cli/cli.mjs
GH=$SRC/ci/github/agentfactory.yml
GL=$SRC/ci/gitlab/agentfactory.gitlab-ci.yml
T=$(mktemp -d /tmp/af-ciwf.XXXXXX)
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$VALIDATOR" ] || fail "action-validator not installed at $VALIDATOR (make npm-deps)"

echo "-- action-validator accepts the GitHub workflow"
"$NODE" "$VALIDATOR" "$GH" > "$T/out" 2>&1 || { cat "$T/out"; fail "action-validator rejected $GH"; }

echo "-- ... and rejects broken copies of it"
sed 's/^    runs-on:/    run-on:/' "$GH" > "$T/bad1.yml"
sed 's/^      - name: Base packages$/      - name: Base packages\n        uses: actions\/checkout@v4/' "$GH" > "$T/bad2.yml"
for bad in "$T/bad1.yml" "$T/bad2.yml"; do
	cmp -s "$bad" "$GH" && fail "the broken copy $bad is not broken"
	! "$NODE" "$VALIDATOR" "$bad" > "$T/out" 2>&1 || fail "action-validator accepted $bad"
done

echo "-- bash -n ci/pipeline.sh"
bash -n "$SRC/ci/pipeline.sh"

echo "-- both files: jobs run ci/pipeline.sh with its secrets, cache the store, upload dist/"
python3 - "$GH" "$GL" "$SRC/ci/pipeline.sh" <<'EOF'
import re, sys, yaml

gh_path, gl_path, pipeline_path = sys.argv[1:]
pipeline = open(pipeline_path).read()
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

# Every secret the pipeline reads, as content or file.
secrets = re.findall(r'^secret (AF_\w+) (AF_\w+) ', pipeline, re.M)
check(len(secrets) == 3, f"pipeline.sh should read 3 secrets, found {secrets}")

gh = yaml.safe_load(open(gh_path))
jobs = gh.get("jobs", {})
runs = [(name, step) for name, job in jobs.items() for step in job.get("steps", [])]
callers = [(n, s) for n, s in runs if "ci/pipeline.sh" in str(s.get("run", ""))]
check(len(callers) == 1, "GitHub: exactly one step must run ci/pipeline.sh")
if callers:
    env = callers[0][1].get("env", {})
    for content, _ in secrets:
        check(env.get(content) == "${{ secrets.%s }}" % content,
              f"GitHub: {content} must come from the secret store")
uses = [s.get("uses", "") for _, s in runs]
check(any(u.startswith("actions/cache@") for u in uses), "GitHub: no cache step for the store")
check(any(u.startswith("actions/upload-artifact@") for u in uses), "GitHub: no artifact upload")
up = [s for _, s in runs if s.get("uses", "").startswith("actions/upload-artifact@")]
check(up and up[0]["with"]["path"].rstrip("/") == "dist", "GitHub: the artifact must be dist/")
cache = [s for _, s in runs if s.get("uses", "").startswith("actions/cache@")]
check(cache and cache[0]["with"]["path"] == ".agentfactory-cache", "GitHub: cache .agentfactory-cache")
check(any("slsa-github-generator" in str(j.get("uses", "")) for j in jobs.values()),
      "GitHub: no SLSA provenance job")

gl = yaml.safe_load(open(gl_path))
reserved = {"stages", "variables", "default", "include", "workflow", "image", "services",
            "cache", "before_script", "after_script"}
gl_jobs = {k: v for k, v in gl.items() if k not in reserved and not k.startswith(".")}
check(len(gl_jobs) >= 1, "GitLab: no job")
for name, job in gl_jobs.items():
    script = job.get("script", [])
    check(any("ci/pipeline.sh" in line for line in script), f"GitLab {name}: script must run ci/pipeline.sh")
    check(job.get("stage") in gl.get("stages", []), f"GitLab {name}: stage not declared")
    check("dist/" in job.get("artifacts", {}).get("paths", []), f"GitLab {name}: artifacts must hold dist/")
    check(".agentfactory-cache/" in job.get("cache", {}).get("paths", []), f"GitLab {name}: no store cache")
check(gl.get("variables", {}).get("AF_STORE", "").endswith("/.agentfactory-cache/store"),
      "GitLab: AF_STORE must be inside the cached folder")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"GitHub: {len(jobs)} jobs; GitLab: {len(gl_jobs)} job(s); secrets {[c for c, _ in secrets]}")
EOF

echo "-- docs/ci.md names every secret"
for s in $(grep -o '^secret AF_[A-Z_]* AF_[A-Z_]*' "$SRC/ci/pipeline.sh" | cut -d' ' -f2-); do
	grep -q "$s" "$SRC/docs/ci.md" || fail "docs/ci.md does not document $s"
done

echo "PASS test_ci_workflows"
