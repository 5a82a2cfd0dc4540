#!/usr/bin/env bash
# No head-of-line blocking: invocations that wait on a slow model run on
# invocation workers with their connections suspended, never on the HTTP
# polling threads. 64 concurrent invocations of an LLM agent whose model
# answers in 5 s must all be held by the model at the same time (the
# fixture counts them) and all succeed, while trivial requests on new
# connections, sent meanwhile, are answered before any of the slow ones.
# A full invocation queue answers 503 with Retry-After at once.
# Behaviour only: no timing is asserted.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-hol.XXXXXX)
FX_PID=
RT_PID=
cleanup() {
	[ -n "$RT_PID" ] && kill "$RT_PID" 2>/dev/null && wait "$RT_PID" 2>/dev/null || true
	[ -n "$FX_PID" ] && kill "$FX_PID" 2>/dev/null && wait "$FX_PID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_LLM_PROVIDER AF_LLM_BASE_URL AF_LLM_API_KEY_FILE AF_LLM_SCRIPT AF_STORE AF_KEYRING AF_CHANNEL
fail() { echo "FAIL: $*" >&2; [ -f "$T/runtime.log" ] && tail -20 "$T/runtime.log" >&2; exit 1; }

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" > /dev/null 2>&1
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null 2>&1
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null 2>&1
git init -q "$T/repo" && mkdir -p "$T/repo/templates/bases"
for f in bases/base-agent bases/base-reviewer senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$T/repo/templates/$f.yaml"
done
"$AF" sign --key "$T/keys/template-signer.key" $(find "$T/repo/templates" -name '*.yaml') > /dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
"$AF" build --repo "$T/repo" --keyring "$T/kr.json" --builder-key "$T/keys/builder.key" \
	--store "$T/store" > /dev/null 2>&1 || fail "build"

# The model holds every request until the test creates the gate file (at
# most 25 s): the trivial requests are sent while all 64 are held, however
# slowly a loaded machine runs this script.
python3 "$SRC/tests/fixtures/llm/slow_model.py" 25 "$T/model.port" "$T/model.stats" "$T/gate" &
FX_PID=$!
for _ in $(seq 100); do [ -s "$T/model.port" ] && break; sleep 0.05; done
[ -s "$T/model.port" ] || fail "the model fixture did not start"
echo "sk-test" > "$T/key"

start() { # extra runtime args...
	rm -f "$T/port"
	"$RT" --store "$T/store" --keyring "$T/kr.json" --listen 127.0.0.1:0 --port-file "$T/port" \
		--log "$T/runtime.log" --llm-provider openai --llm-api-key-file "$T/key" \
		--llm-base-url "http://127.0.0.1:$(cat "$T/model.port")" --threads 4 "$@" 2>>"$T/runtime.log" &
	RT_PID=$!
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || fail "the runtime did not start"
	URL="http://$(cat "$T/port")"
}
stop() { kill -TERM "$RT_PID"; wait "$RT_PID" || true; RT_PID=; }
BODY='{"inputs":{"change":"add a retry loop","focus":"errors"}}'
invoke() { # OUT-PREFIX
	curl -s --max-time 60 -o "$1.body" -D "$1.head" -w '%{http_code}\n' -XPOST \
		-H 'Content-Type: application/json' -d "$BODY" "$URL/v1/agents/senior-reviewer/invoke" > "$1.code"
	date +%s%N > "$1.done"
}

echo "-- 64 concurrent invocations on 4 polling threads, the model holding every one"
start
mkdir -p "$T/slow" "$T/fast"
for i in $(seq 64); do invoke "$T/slow/$i" & done
stat() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/model.stats" "$1" 2>/dev/null || echo 0; }
# Wait (up to 15 s) for the model to hold all 64; with serialised
# invocations it never holds more than the 4 threads.
for _ in $(seq 300); do [ "$(stat now)" -ge 64 ] && break; sleep 0.05; done
held=$(stat now)
# Meanwhile, trivial requests on new connections.
for i in $(seq 5); do
	curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' "$URL/healthz" > "$T/fast/$i.code"
	date +%s%N > "$T/fast/$i.done"
	curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' "$URL/v1/agents" > "$T/fast/l$i.code"
	date +%s%N > "$T/fast/l$i.done"
done
touch "$T/gate"
wait $(jobs -p | grep -v "^$FX_PID$" | grep -v "^$RT_PID$") 2>/dev/null || true
for i in $(seq 64); do
	[ "$(cat "$T/slow/$i.code")" = 200 ] || fail "slow invocation $i: $(cat "$T/slow/$i.code") $(cat "$T/slow/$i.body")"
done
for f in "$T"/fast/*.code; do [ "$(cat "$f")" = 200 ] || fail "trivial request $f: $(cat "$f")"; done
first_slow=$(cat "$T"/slow/*.done | sort -n | head -1)
last_fast=$(cat "$T"/fast/*.done | sort -n | tail -1)
[ "$last_fast" -lt "$first_slow" ] || fail "a trivial request waited behind the slow invocations"
max=$(stat max)
echo "   the model held $max requests at once; 10 trivial requests answered while it held $held"
[ "$max" -eq 64 ] || fail "the model saw at most $max of the 64 invocations at once (serialised)"
[ "$held" -eq 64 ] || fail "the trivial requests were sent while only $held invocations were held"
stop

echo "-- a full queue answers 503 with Retry-After at once"
rm -f "$T/gate"
start --workers 2 --queue 2
rm -rf "$T/slow"; mkdir -p "$T/slow"
for i in $(seq 8); do invoke "$T/slow/$i" & done
# Release the model once the 2 workers hold their invocations and the
# other 6 are answered (2 queued, 4 refused), or after 15 s.
for _ in $(seq 300); do
	[ "$(stat now)" -ge 2 ] && [ "$(cat "$T"/slow/*.code 2>/dev/null | grep -c '^503$')" -ge 4 ] && break
	sleep 0.05
done
touch "$T/gate"
wait $(jobs -p | grep -v "^$FX_PID$" | grep -v "^$RT_PID$") 2>/dev/null || true
ok=$(cat "$T"/slow/*.code | grep -c '^200$' || true)
busy=$(cat "$T"/slow/*.code | grep -c '^503$' || true)
echo "   8 invocations, 2 workers, queue of 2: $ok answered 200, $busy refused 503"
# While the model holds them, at most workers + queue (4) are accepted; at
# least the queue's 2 always are (how many of the first arrivals the workers
# have already taken off the queue depends on the machine's load); every
# other request is refused at once, none is lost.
[ "$ok" -ge 2 ] && [ "$ok" -le 4 ] && [ "$busy" -ge 4 ] && [ $((ok + busy)) -eq 8 ] ||
	fail "expected 2 to 4 x 200 (2 workers + a queue of 2) and the rest 503"
for i in $(seq 8); do
	if grep -q '^503$' "$T/slow/$i.code"; then
		grep -qi '^Retry-After: 1' "$T/slow/$i.head" || fail "503 without Retry-After"
		grep -q '"code":"unavailable"' "$T/slow/$i.body" || fail "503 body: $(cat "$T/slow/$i.body")"
	fi
done
stop
echo "ok"
