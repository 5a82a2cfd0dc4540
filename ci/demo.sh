#!/usr/bin/env bash
# make demo: the pipeline end to end on the sample catalogue.
#
# Generates fresh development keys, copies templates/ into a new git
# repository, signs every template, commits, and runs `agentfactory check` at
# HEAD. Then it tampers with one template in a second commit and shows that
# check names the file and exits 1; builds the clean revision into a signed
# artifact store, rebuilds (all cache hits) and verifies the store. Finally it
# serves the store with agentfactory-runtime on a free loopback port, invokes
# a steps agent and an LLM agent (scripted provider) over HTTP, shows two
# stable errors and the metrics, runs an LLM agent with tools (http_fetch to
# an allow-listed host, a refused host, kv_get) and a composite agent
# (agent_invoke), prints how to use a real model, and stops the server.
# Everything lives in a temporary directory whose path is printed at the end.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:-$(pwd)}
WORK=$(mktemp -d /tmp/agentfactory-demo.XXXXXX)
export AF_POLICIES="$SRC/policies"

step() { printf '\n==> %s\n' "$*"; }

step "Generating development keys in $WORK/keys"
"$AF" keygen --role root --out "$WORK/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$WORK/root/root.key" # keyrings are signed by their root key
signer_id=$("$AF" keygen --role template-signer --out "$WORK/keys")
"$AF" trust add --keyring "$WORK/keyring.json" --role template-signer \
	--not-after +24h "$WORK/keys/template-signer.pub" >/dev/null
echo "template-signer key $signer_id trusted for 24h in $WORK/keyring.json"

step "Creating a git repository from the sample catalogue: $WORK/repo"
git init -q "$WORK/repo"
cp -r "$SRC/templates" "$WORK/repo/templates"
find "$WORK/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$WORK/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$WORK/keys/template-signer.key" "${files[@]}" | sed "s|$WORK/repo/||"
git -C "$WORK/repo" add -A
git -C "$WORK/repo" -c user.name=demo -c user.email=demo@example.invalid \
	commit -qm "sample catalogue, signed"

step "agentfactory check --repo $WORK/repo --rev HEAD"
"$AF" check --repo "$WORK/repo" --rev HEAD --keyring "$WORK/keyring.json"

step "Resolved form of security-expert (3-level inheritance applied, canonical JSON)"
"$AF" resolve --repo "$WORK/repo" --rev HEAD --keyring "$WORK/keyring.json" security-expert | fold -w 100
echo

step "Tampering with one template after signing (a new commit)"
victim=$(find "$WORK/repo/templates" -name '*.yaml' | sort | tail -1)
printf '\n# an unsigned edit\n' >> "$victim"
git -C "$WORK/repo" -c user.name=demo -c user.email=demo@example.invalid \
	commit -qam "tamper"
set +e
"$AF" check --repo "$WORK/repo" --rev HEAD --keyring "$WORK/keyring.json"
rc=$?
set -e
echo "check exited with $rc (1 = findings)"
[ "$rc" -eq 1 ] || { echo "demo: expected exit 1 after tampering" >&2; exit 1; }
echo "HEAD~1 is still clean:"
"$AF" check --repo "$WORK/repo" --rev HEAD~1 --keyring "$WORK/keyring.json" | tail -1

step "Building every concrete agent: C -> WebAssembly -> native code, signed, in LMDB"
"$AF" keygen --role builder --out "$WORK/keys" > /dev/null
"$AF" trust add --keyring "$WORK/keyring.json" --role builder "$WORK/keys/builder.pub" > /dev/null
"$AF" build --repo "$WORK/repo" --rev HEAD~1 --keyring "$WORK/keyring.json" \
	--builder-key "$WORK/keys/builder.key" --store "$WORK/store"

step "A second build of the same revision compiles nothing (cache hits)"
"$AF" build --repo "$WORK/repo" --rev HEAD~1 --keyring "$WORK/keyring.json" \
	--builder-key "$WORK/keys/builder.key" --store "$WORK/store" 2>/dev/null | tail -1

step "agentfactory verify: every artifact's signature and part digests"
"$AF" verify --store "$WORK/store" --keyring "$WORK/keyring.json" | tail -1
"$AF" inspect --store "$WORK/store" --keyring "$WORK/keyring.json" backup-manager | head -20

if [ -n "${AF_RUNTIME:-}" ] && [ -x "$AF_RUNTIME" ]; then
	step "Serving the store over HTTP: agentfactory-runtime on a free loopback port"
	# backup-manager copies a release record from its key-value store (LMDB in
	# DATA/kv, keys "<agent>\0<key>"): seed the record it will back up.
	mkdir -p "$WORK/data/kv"
	printf 'backup-manager\\00releases/2026.11\n{"version":"1.4.0","artifacts":21}\n' >"$WORK/seed.txt"
	mdb_load -T -f "$WORK/seed.txt" "$WORK/data/kv"
	# No model provider is reachable here: the scripted provider replays a
	# recorded answer (named as such in the runtime's log).
	cat >"$WORK/llm-script.json" <<'EOF'
{"responses": [{"role": "assistant", "content": "{\"summary\": \"The retry loop has no upper bound: cap it and add jittered backoff.\", \"findings\": [\"fetch() retries forever on 503\", \"no test covers the give-up path\"], \"verdict\": \"changes requested\"}"}]}
EOF
	"$AF_RUNTIME" --store "$WORK/store" --keyring "$WORK/keyring.json" --data "$WORK/data" \
		--llm-script "$WORK/llm-script.json" --listen 127.0.0.1:0 \
		--port-file "$WORK/runtime.port" --log "$WORK/runtime.log" &
	rt_pid=$!
	trap 'kill "$rt_pid" 2>/dev/null || true' EXIT
	for _ in $(seq 1 100); do
		[ -s "$WORK/runtime.port" ] && break
		kill -0 "$rt_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$WORK/runtime.port" ] || { echo "demo: the runtime did not start" >&2; tail "$WORK/runtime.log" >&2; exit 1; }
	url="http://$(cat "$WORK/runtime.port")"
	grep -h '"event":"\(no_auth\|listening\)"' "$WORK/runtime.log"
	echo
	echo "GET $url/v1/agents"
	curl -sf "$url/v1/agents" >"$WORK/agents.json"
	{ cat "$WORK/agents.json"; echo; } | sed 's/},{/}\n{/g' |
		sed -n 's/.*"name":"\([^"]*\)","version":"\([^"]*\)".*"status":"\([a-z]*\)".*/  \3  \1@\2/p'
	sed -n 's/.*\("count":[0-9]*,"ok":[0-9]*,"refused":[0-9]*\).*/  {\1}/p' "$WORK/agents.json"
	invoke() {
		echo
		echo "POST $url/v1/agents/$1/invoke  $2"
		curl -s -H 'Content-Type: application/json' -d "$2" -w '\n(HTTP %{http_code}, %{time_total} s)\n' \
			"$url/v1/agents/$1/invoke" | fold -w 120
	}
	invoke backup-manager '{"inputs":{"release":"2026.11"}}'
	invoke senior-reviewer '{"inputs":{"change":"add a retry loop to fetch()","focus":"error handling"}}'
	invoke no-such-agent '{"inputs":{}}'
	invoke backup-manager '{"inputs":'
	echo
	echo "GET $url/metrics (excerpt)"
	curl -sf "$url/metrics" | grep -E '^agentfactory_(invocations_total|module_cache_(hits|misses)_total|errors_total|invoke_seconds_(count|sum))[ {]'

	step "Agents that act: an LLM agent with tools, on the scripted provider"
	# monitoring-specialist (LLM; tools clock_now, kv_get, http_fetch) replays a
	# recorded conversation (ci/demo-llm-tools.json): the model first asks for
	# a host outside the policy's allow-list (refused: the list was recorded
	# in the agent's signed manifest at build time), then reads a note from
	# its key-value store and this runtime's /metrics (127.0.0.1 is listed).
	sed "s|@RUNTIME_URL@|$url|g" "$SRC/ci/demo-llm-tools.json" >"$WORK/llm-tools.json"
	echo "agentfactory run monitoring-specialist --llm-script $WORK/llm-tools.json"
	"$AF" run --store "$WORK/store" --keyring "$WORK/keyring.json" monitoring-specialist \
		--data "$WORK/data-run" --kv-set 'notes/slo="p99 of an invocation under 250 ms"' \
		--llm-script "$WORK/llm-tools.json" --log "$WORK/run.log" \
		--input '{"inputs":{"task":"Propose alerts for the serving path","service":"agentfactory-runtime"}}' |
		fold -w 120
	echo "what the runtime did ($WORK/run.log):"
	grep -h '"event":"denied"\|model called tool' "$WORK/run.log" |
		sed 's/.*"msg":"\([^"]*\)".*/  \1/'
	echo "the agent's request in the server's access log:"
	grep '"path":"/metrics"' "$WORK/runtime.log" | tail -1 |
		sed 's/.*"msg":"\([^"]*\)".*"remote":"\([^"]*\)".*/  \1 (from \2)/'

	step "Agents that act: a composite agent delegating with agent_invoke"
	# release-coordinator is a workflow with neither a model nor kv of its own:
	# it invokes backup-manager (kv tools) and senior-reviewer (the model, on
	# the server's scripted provider); each runs with its own capabilities.
	invoke release-coordinator '{"inputs":{"release":"2026.11","summary":"Adds a retry loop to fetch()."}}'

	step "The same agents on a real model"
	cat <<EOF
The demo replays recorded answers (--llm-script). Point the same agents at an
OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, Ollama) instead:
  $AF run --store $WORK/store --keyring $WORK/keyring.json \\
      --data $WORK/data-run --llm-provider openai --llm-base-url https://api.openai.com/v1 \\
      --llm-api-key-file FILE monitoring-specialist \\
      --input '{"inputs":{"task":"Propose alerts","service":"agentfactory-runtime"}}'
  $AF_RUNTIME --store $WORK/store --keyring $WORK/keyring.json \\
      --data $WORK/data --llm-provider openai --llm-base-url http://127.0.0.1:8000/v1
(FILE holds the API key; a local server needs none.)
EOF

	step "Stopping the runtime (SIGTERM: drain, then exit 0)"
	kill -TERM "$rt_pid"
	rc=0
	wait "$rt_pid" || rc=$?
	trap - EXIT
	echo "agentfactory-runtime exited with $rc"
	[ "$rc" -eq 0 ] || { echo "demo: the runtime did not stop cleanly" >&2; exit 1; }
else
	echo
	echo "(AF_RUNTIME not set: the HTTP part of the demo is skipped)"
fi

step "Done"
echo "keys:     $WORK/keys"
echo "keyring:  $WORK/keyring.json"
echo "repo:     $WORK/repo"
echo "store:    $WORK/store"
if [ -e "$WORK/runtime.log" ]; then
	echo "data:     $WORK/data   (the agents' key-value store)"
	echo "logs:     $WORK/runtime.log   (JSON lines: access log, loads, guest logs)"
fi
echo "Remove with: rm -rf $WORK"
