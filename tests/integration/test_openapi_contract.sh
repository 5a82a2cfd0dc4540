#!/usr/bin/env bash
# docs/openapi.yaml against the server. First the real linter, npm
# @redocly/cli (zero errors, and no example that fails its own schema).
# Then a contract test: three live runtimes (A: bearer tokens, scripted
# model, a small body cap; B: an OpenAI-compatible fixture model that is
# slow or broken on demand and a 1 s deadline; C: following a channel that
# has no release) are sent a request for every documented operation and
# response code that can be provoked from outside; every answer must be a
# documented status of its operation, its body must validate against the
# document's schema (jsonschema, OpenAPI 3.0 nullable handled) and carry the
# documented headers; and every documented (operation, status) pair must be
# replayed, except the few listed below with the reason they cannot be.
set -euo pipefail
. "${AF_SRCDIR:?}/tests/lib/tools.sh"
need_tool "${AF_NODE:-}" "Node 22 (make npm-deps)"

AF=${AF:?AF must point at the agentfactory binary}
AF_RUNTIME=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
NODE=${AF_NODE:?AF_NODE must point at node (make npm-deps)}
REDOCLY=${AF_NPM:?AF_NPM must point at build/npm/node_modules}/@redocly/cli/bin/cli.js
T=$(mktemp -d /tmp/af-openapi.XXXXXX)
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

echo "-- redocly lint: zero errors, examples valid against their schemas"
(cd "$T" && "$NODE" "$REDOCLY" lint --config "$SRC/docs/redocly.yaml" --format=json \
	"$SRC/docs/openapi.yaml" > "$T/lint.json" 2> "$T/lint.err") ||
	{ cat "$T/lint.err" "$T/lint.json" >&2; fail "redocly lint failed"; }
python3 - "$T/lint.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
problems = doc.get("problems", [])
bad = [p for p in problems if p.get("severity") == "error" or p.get("ruleId") == "no-invalid-media-type-examples"]
for p in bad: print("FAIL:", p.get("ruleId"), p.get("message"), file=sys.stderr)
if bad: sys.exit(1)
print("lint: %d problems, none an error or an invalid example" % len(problems))
PY

echo "-- three runtimes"
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$R/templates" -name '*.yaml') > /dev/null
git -C "$R" add -A && git -C "$R" commit -qm v1
"$AF" build --repo "$R" --rev HEAD --store "$T/store" --keyring "$T/kr.json" \
	--builder-key "$T/keys/builder.key" -j 2 > /dev/null
"$AF" run backup-manager --store "$T/store" --keyring "$T/kr.json" --data "$T/data" \
	--kv-set 'releases/r1={"version":"1.4.0"}' --input '{"inputs":{"release":"r1"}}' > /dev/null
cat > "$T/review.json" <<'J'
{"responses":[{"role":"assistant","content":"{\"summary\":\"ok\",\"findings\":[],\"verdict\":\"approve\"}"}]}
J
for role in read invoke admin; do
	"$AF_RUNTIME" token new --role $role --name $role --tokens "$T/tokens" > "$T/token.$role"
done
"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --data "$T/data" --llm-script "$T/review.json" \
	--tokens "$T/tokens" --max-body 4k --listen 127.0.0.1:0 --port-file "$T/a.port" --log "$T/a.log" &
pids+=($!)
cat > "$T/model.py" <<'PY'
import http.server, json, os, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        req = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if "slow-please" in req:
            time.sleep(3)
        if "broken-please" in req:
            body, status = b'{"error":{"message":"model overloaded"}}', 500
        else:
            body, status = json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": json.dumps({"summary": "ok", "findings": [], "verdict": "approve"})}}]}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try: self.wfile.write(body)
        except OSError: pass
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer): daemon_threads = True
s = S(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port)); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
python3 "$T/model.py" "$T/model.port" &
pids+=($!)
wait_file "$T/model.port" || fail "the model fixture did not start"
"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --llm-provider openai --llm-retries 0 \
	--llm-base-url "http://127.0.0.1:$(cat "$T/model.port")" --max-timeout-ms 1000 \
	--listen 127.0.0.1:0 --port-file "$T/b.port" --log "$T/b.log" &
pids+=($!)
"$AF_RUNTIME" --store "$T/store" --keyring "$T/kr.json" --channel prod \
	--listen 127.0.0.1:0 --port-file "$T/c.port" --log "$T/c.log" &
pids+=($!)
for r in a b c; do wait_file "$T/$r.port" || { cat "$T/$r.log" >&2; fail "runtime $r did not start"; }; done

echo "-- every documented operation and status, replayed and validated"
python3 - "$SRC/docs/openapi.yaml" "$(cat "$T/a.port")" "$(cat "$T/b.port")" "$(cat "$T/c.port")" \
	"$(head -1 "$T/token.read")" "$(head -1 "$T/token.invoke")" "$(head -1 "$T/token.admin")" <<'PY'
import copy, http.client, json, socket, sys, urllib.request, urllib.error
import yaml, jsonschema
spec = yaml.safe_load(open(sys.argv[1]))
A, B, C = ("http://" + p for p in sys.argv[2:5])
READ, INVOKE, ADMIN = sys.argv[5:8]

def resolve(node):
    """Inline $refs and turn OpenAPI 3.0 'nullable' into JSON Schema."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(copy.deepcopy(target))
        out = {k: resolve(v) for k, v in node.items() if k not in ("example", "examples")}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [resolve(x) for x in node]
    return node

# (template path, method) -> {status: response}
ops = {}
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method in ("get", "post", "put", "delete", "patch", "head"):
            ops[(path, method)] = {str(k): resolve(v) for k, v in op["responses"].items()}

SKIP = {  # documented, but not provokable from outside a healthy server
    ("/v1/agents", "get", "500"): "internal: a bug",
    ("/v1/agents/{name}", "get", "500"): "internal: a bug",
    ("/v1/agents/{name}/invoke", "post", "500"): "a trapping agent is not in the catalogue (tests/unit/runtime/test_loader.c and test_sandbox.c cover traps)",
    ("/v1/agents", "get", "503"): "out of memory only: without a release the list is empty, not an error",
}
seen, failures = set(), []
def call(base, method, path, template, want, token=None, body=None, ctype=None, query="", extra=None):
    headers = {"X-Request-Id": "contract-%d" % len(seen)}
    headers.update(extra or {})
    if token: headers["Authorization"] = "Bearer " + token
    if ctype: headers["Content-Type"] = ctype
    data = body.encode() if isinstance(body, str) else body
    if isinstance(data, list):
        # A chunked upload: the head alone over a socket (the server answers
        # before any chunk, and closes: urllib would fail writing the body).
        host, port = base.split("//")[1].split(":")
        sock = socket.create_connection((host, int(port)), timeout=60)
        head = "%s %s%s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n" % (
            method.upper(), path, query, host)
        for k, v in headers.items():
            head += "%s: %s\r\n" % (k, v)
        sock.sendall((head + "\r\n").encode())
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        status, hdrs, raw = resp.status, resp.headers, resp.read()
        sock.close()
    else:
        req = urllib.request.Request(base + path + query, data=data, method=method.upper(), headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=60)
            status, hdrs, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
    key = (template, method)
    if status == 405:  # documented on the path's own operation(s): "another method"
        key = next(k for k in ops if k[0] == template)
    where = "%s %s%s -> %d" % (method.upper(), path, query, status)
    if status != want:
        failures.append("%s: expected %d" % (where, want)); return
    doc = ops.get(key, {}).get(str(status))
    if doc is None:
        failures.append("%s: status not documented for %s %s" % (where, method.upper(), template)); return
    seen.add((key[0], key[1], str(status)))
    if hdrs.get("X-Request-Id") != headers["X-Request-Id"]:
        failures.append("%s: X-Request-Id not echoed" % where)
    for h in doc.get("headers", {}):
        if h != "Server-Timing" and not hdrs.get(h):
            failures.append("%s: documented header %s missing" % (where, h))
    content = doc.get("content", {})
    norm = lambda t: ";".join(x.strip() for x in t.split(";"))
    full = norm(hdrs.get("Content-Type") or "")
    ct = next((k for k in content if norm(k) == full or k == full.split(";")[0]), None)
    if content and ct is None:
        failures.append("%s: Content-Type %r not documented (%s)" % (where, full, list(content))); return
    schema = content.get(ct, {}).get("schema") if ct else None
    if schema and ct == "application/json":
        try:
            jsonschema.validate(json.loads(raw), schema)
        except Exception as e:
            failures.append("%s: body does not match the schema: %s" % (where, str(e).splitlines()[0]))

inv, j = "/v1/agents/{name}/invoke", "application/json"
good_review = '{"inputs":{"change":"add a retry loop","focus":"errors"}}'
# /v1/agents
call(A, "get", "/v1/agents", "/v1/agents", 200, READ)
call(A, "get", "/v1/agents", "/v1/agents", 401)
call(A, "post", "/v1/agents", "/v1/agents", 405, ADMIN, "{}", j)
# /v1/agents/{name}
call(A, "get", "/v1/agents/backup-manager", "/v1/agents/{name}", 200, READ)
call(A, "get", "/v1/agents/backup-manager", "/v1/agents/{name}", 400, READ, query="?version=%21bad")
call(A, "get", "/v1/agents/backup-manager", "/v1/agents/{name}", 401, "not-a-known-token")
call(A, "get", "/v1/agents/nope", "/v1/agents/{name}", 404, READ)
call(A, "delete", "/v1/agents/backup-manager", "/v1/agents/{name}", 405, ADMIN)
call(C, "get", "/v1/agents/backup-manager", "/v1/agents/{name}", 503)
# invoke
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 200, INVOKE, '{"inputs":{"release":"r1"}}', j)
call(A, "post", "/v1/agents/senior-reviewer/invoke", inv, 200, ADMIN, good_review, j)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 400, INVOKE, '{"inputs":', j)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 400, INVOKE, '{"inputs":{}}', j)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 401, None, '{}', j)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 403, READ, '{}', j)
call(A, "post", "/v1/agents/nope/invoke", inv, 404, INVOKE, '{}', j)
call(A, "get", "/v1/agents/backup-manager/invoke", inv, 405, INVOKE)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 413, INVOKE, '{"inputs":{"release":"' + "x" * 8192 + '"}}', j)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 411, INVOKE, [b'{"inputs":{"release":"r1"}}'], j)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 414, INVOKE, '{}', j, query="?x=" + "a" * 9000)
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 415, INVOKE, '{}', "text/plain")
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 431, INVOKE, '{}', j, extra={"X-Big": "b" * 20000})
call(A, "post", "/v1/agents/backup-manager/invoke", inv, 422, INVOKE, '{"inputs":{"release":"no-such-release"}}', j)
call(B, "post", "/v1/agents/senior-reviewer/invoke", inv, 502, None, '{"inputs":{"change":"broken-please","focus":"x"}}', j)
call(C, "post", "/v1/agents/backup-manager/invoke", inv, 503, None, '{"inputs":{"release":"r1"}}', j)
call(B, "post", "/v1/agents/senior-reviewer/invoke", inv, 504, None, '{"inputs":{"change":"slow-please","focus":"x"}}', j)
# operations
call(A, "get", "/healthz", "/healthz", 200)
call(A, "post", "/healthz", "/healthz", 405, None, "{}", j)
call(A, "get", "/readyz", "/readyz", 200)
call(A, "delete", "/readyz", "/readyz", 405)
call(C, "get", "/readyz", "/readyz", 503)
call(A, "get", "/metrics", "/metrics", 200, READ)
call(A, "get", "/metrics", "/metrics", 401)
call(A, "get", "/metrics", "/metrics", 403, INVOKE)
call(A, "post", "/metrics", "/metrics", 405, ADMIN, "{}", j)

documented = {(p, m, s) for (p, m), rs in ops.items() for s in rs}
missing = sorted(documented - seen - set(SKIP))
for m in missing: failures.append("documented but not replayed: %s %s %s" % (m[1].upper(), m[0], m[2]))
stale = sorted(set(SKIP) - documented)
for s in stale: failures.append("skip list names an undocumented pair: %r" % (s,))
for f in failures: print("FAIL:", f, file=sys.stderr)
if failures: sys.exit(1)
print("%d (operation, status) pairs replayed and validated; %d documented ones not provokable: %s"
      % (len(seen), len(SKIP), "; ".join("%s %s %s (%s)" % (k[1].upper(), k[0], k[2], v) for k, v in sorted(SKIP.items()))))
PY
echo "OK"
