#!/usr/bin/env bash
# test_registry.sh - distribution through a real OCI registry: Debian's
# docker-registry (Docker Distribution) started here on a free loopback port,
# with skopeo and umoci reading what we push.
#
# Covers: push of a channel (artifacts, release index, channel tag, signed
# records as referrers through the tag-schema fallback, which Distribution
# 2.8 needs); a second push uploads no blob (our counters and the registry's
# storage agree); a cross-repository mount moves no blob; skopeo
# inspect/copy and umoci read the objects; pull into a fresh store verifies;
# a one-leaf change moves only that leaf's blobs both ways; chunked uploads;
# a copy made by skopeo (every tag) pulls and verifies. Refused with the
# store unchanged: a tampered blob or manifest in the registry, a proxy
# flipping a byte, a 10 GiB Content-Length, a redirect to another host,
# 500s, garbage, a stalled registry (timeout), an expired release, a
# manifest of the wrong media type, an unsigned channel tag, a channel
# signed by an untrusted key, a channel tag moved back to an older release
# (replay). An interrupted pull leaves the store as before and resumes. A
# runtime following channel-blue from the registry switches after promote +
# push with zero failed requests under load, refuses a replayed tag and
# keeps serving, keeps serving with the registry stopped (and says so in
# /readyz, the log and /metrics); a pod started with the registry down
# serves from its cache, or is not ready without one.
#
# Waits poll for a state with a generous bound; no timing is asserted.
# Env: AF, AF_RUNTIME (the binaries), AF_SRCDIR (the source tree).
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-registry.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
PIDS=()
cleanup() {
	local p
	stop_pids "${PIDS[@]}"
	rm -rf "$T"
}
trap cleanup EXIT
. "$SRC/tests/lib/procs.sh"
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING AF_NOW AF_CHANNEL AF_SOURCE REGISTRY_AUTH_FILE DOCKER_CONFIG
export HOME="$T/home" # no credentials file of the machine's user
mkdir -p "$HOME"
# shellcheck source=registry_lib.bash
. "$(dirname "$0")/registry_lib.bash"

for tool in docker-registry skopeo umoci jq wrk curl python3; do
	command -v "$tool" >/dev/null || { echo "$tool is required (make deps)" >&2; exit 2; }
done

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() { checks=$((checks + 1)); }
expect() { # WANT_RC DESCRIPTION CMD... - output in $T/out and $T/err
	local want=$1 desc=$2 rc=0
	shift 2
	ok
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		sed 's/^/    stdout: /' "$T/out" >&2
		sed 's/^/    stderr: /' "$T/err" >&2
	fi
}
contains() { # FILE TEXT DESCRIPTION
	ok
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; tail -5 "$1" | sed 's/^/    /' >&2; }
}
check() { # DESCRIPTION TEST...
	local desc=$1
	shift
	ok
	"$@" || fail "$desc"
}
wait_for() { # SECONDS DESCRIPTION CMD... : poll until CMD succeeds
	local limit=$1 desc=$2 i
	shift 2
	ok
	for i in $(seq 1 $((limit * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "$desc (not within ${limit}s)"
	return 1
}
jqf() { jq -r "$1" "$T/out"; }

# ---- keys, a repository of three agents, a store with release 1 on blue ------------
k() { "$AF" keygen --role "$1" --out "$T/keys/$2" >/dev/null 2>&1; echo "$T/keys/$2/$1"; }
TS=$(k template-signer ts)
B=$(k builder b)
RM1=$(k release-manager rm1)
EVIL=$(k release-manager evil)
KR="$T/keyring.json"
for pair in "template-signer $TS" "builder $B" "release-manager $RM1"; do
	set -- $pair
	"$AF" trust add --keyring "$KR" --role "$1" --not-before -30d "$2.pub" >/dev/null 2>&1
done
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
cp "$SRC"/templates/bases/*.yaml "$R/templates/bases/"
for t in senior-reviewer technical-reviewer tester; do cp "$SRC/templates/$t.yaml" "$R/templates/"; done
S="$T/admin-store"
build() {
	"$AF" sign --key "$TS.key" $(find "$R/templates" -name '*.yaml') >/dev/null
	git -C "$R" add -A && git -C "$R" commit -qm "$1"
	expect 0 "build ($1)" "$AF" build --repo "$R" --rev HEAD --store "$S" --keyring "$KR" \
		--builder-key "$B.key" -j 2
}
build v1
release() { "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" "$@" 2>/dev/null; }
promote() { "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel "${2:-blue}" \
	--release "$1" >/dev/null 2>&1; }
[ "$(release senior-reviewer technical-reviewer tester)" = 1 ] || fail "release 1"
promote 1 || fail "promote 1"
[ "$failures" -eq 0 ] || { echo "cannot test the registry without a store" >&2; exit 1; }

start_registry "$T/reg"
REG="oci://127.0.0.1:$REG_PORT/agents"
SK="docker://127.0.0.1:$REG_PORT/agents"

# ---- push, push again ----------------------------------------------------------------
expect 0 "push channel blue" "$AF" push --json --store "$S" --channel blue "$REG"
contains "$T/err" "moved channel-blue to release 1" "progress on stderr"
UP1=$(jqf .blobs_up)
check "first push uploads blobs ($UP1)" [ "$UP1" -ge 10 ]
check "first push: 3 artifacts" [ "$(jqf .artifacts)" = 3 ]
N_BLOBS=$(registry_blobs)
check "the registry stores what we uploaded ($N_BLOBS >= $UP1)" [ "$N_BLOBS" -ge "$UP1" ]
R1_INDEX=$(curl -sf -I -H "Accept: application/vnd.oci.image.index.v1+json" \
	"http://127.0.0.1:$REG_PORT/v2/agents/manifests/channel-blue" |
	tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }')
check "the channel tag has a digest" [ -n "$R1_INDEX" ]
expect 0 "push again" "$AF" push --json --store "$S" --channel blue "$REG"
check "second push uploads no blob" [ "$(jqf .blobs_up)" = 0 ]
check "second push: the release index is there, few requests ($(jqf .requests))" [ "$(jqf .requests)" -le 20 ]
contains "$T/err" "release 1 is in the registry already" "the artifacts are not walked again"
check "registry storage unchanged by the second push" [ "$(registry_blobs)" = "$N_BLOBS" ]

# cross-repository mount: the blobs are in "agents" already
expect 0 "push to another repository with --mount-from" "$AF" push --json --quiet --store "$S" \
	--channel blue --mount-from agents "oci://127.0.0.1:$REG_PORT/team/agents"
check "every blob mounted, none uploaded ($(jqf .blobs_mounted) mounted)" \
	[ "$(jqf .blobs_up)" = 0 ] && [ "$(jqf .blobs_mounted)" -ge "$UP1" ]
check "a mount stores no new blob" [ "$(registry_blobs)" = "$N_BLOBS" ]
expect 0 "pull from the mounted repository" "$AF" pull --quiet --store "$T/from-team" --keyring "$KR" \
	--channel blue "oci://127.0.0.1:$REG_PORT/team/agents"

# ---- what standard tools see ---------------------------------------------------------
expect 0 "skopeo list-tags" skopeo list-tags --tls-verify=false "$SK"
for tag in channel-blue release-1 senior-reviewer-1.0.0 tester-1.0.0; do
	contains "$T/out" "\"$tag\"" "tag $tag"
done
expect 0 "skopeo inspect the channel" skopeo inspect --raw --tls-verify=false "$SK:channel-blue"
check "channel-blue is an OCI index of 3 artifacts" \
	[ "$(jqf '.mediaType + " " + .annotations["dev.agentfactory.kind"] + " " + (.manifests|length|tostring)')" = \
	"application/vnd.oci.image.index.v1+json release 3" ]
expect 0 "skopeo inspect an artifact" skopeo inspect --raw --tls-verify=false "$SK:senior-reviewer-1.0.0"
check "artifact manifest: artifactType, config, wasm/native/provenance layers" \
	[ "$(jqf '[.artifactType, .config.mediaType, ([.layers[].annotations["org.opencontainers.image.title"]] | map(select(. == "wasm" or startswith("native/") or . == "provenance")) | length | tostring)] | join(" ")')" = \
	"application/vnd.agentfactory.artifact.v1 application/vnd.agentfactory.manifest.v1+json 3" ]
SR_DIGEST=$(skopeo inspect --raw --tls-verify=false "$SK:channel-blue" |
	jq -r '.manifests[] | select(.annotations["dev.agentfactory.ref"] == "senior-reviewer@1.0.0") | .digest')
expect 0 "skopeo inspect the referrers fallback tag" skopeo inspect --raw --tls-verify=false \
	"$SK:sha256-${SR_DIGEST#sha256:}"
contains "$T/out" "application/vnd.dsse.envelope.v1+json" "builder signature attached as a referrer"
contains "$T/out" "application/vnd.in-toto+json" "provenance attached as a referrer"
contains "$T/out" '"provenance-attestation"' "the builder-signed SLSA provenance (DSSE) attached as a referrer"
expect 0 "skopeo copy the channel to an OCI layout" skopeo copy --multi-arch all \
	--src-tls-verify=false "$SK:channel-blue" "oci:$T/layout:blue"
expect 0 "skopeo copy an artifact to an OCI layout" skopeo copy --src-tls-verify=false \
	"$SK:tester-1.0.0" "oci:$T/layout:tester"
expect 0 "umoci reads the layout" umoci ls --layout "$T/layout"
contains "$T/out" "blue" "umoci lists the channel"
contains "$T/out" "tester" "umoci lists the artifact"
ok
for d in $(jq -r '.manifests[].digest' "$T/layout/index.json"); do
	[ -f "$T/layout/blobs/sha256/${d#sha256:}" ] || fail "layout lacks $d"
done

# ---- pull into a fresh store, verify, serve -----------------------------------------
P="$T/pulled"
expect 0 "pull into a fresh store" "$AF" pull --json --store "$P" --keyring "$KR" "$REG"
check "pull: 3 artifacts, blobs down" [ "$(jqf .artifacts)" = 3 ] && [ "$(jqf .blobs_down)" -gt 0 ]
expect 0 "verify the pulled store" "$AF" verify --store "$P" --keyring "$KR"
contains "$T/out" "3 verified, 0 failed" "pulled artifacts verify"
expect 0 "status of the pulled store" "$AF" status --store "$P" --keyring "$KR"
contains "$T/out" "blue" "the channel came along"
expect 0 "pull again: up to date" "$AF" pull --json --store "$P" --keyring "$KR" --channel blue "$REG"
check "second pull is up to date, no blob" [ "$(jqf .up_to_date)" = true ] && [ "$(jqf .blobs_down)" -le 2 ]

# ---- a copy made by skopeo (every tag) pulls and verifies ----------------------------
for tag in $(skopeo list-tags --tls-verify=false "$SK" | jq -r '.Tags[]'); do
	# every object keeps its digest, except the referrers fallback indexes, which
	# skopeo 1.9 rewrites (it drops their artifactType; the tag is what counts)
	keep=--preserve-digests
	case $tag in sha256-*) keep= ;; esac
	skopeo copy $keep --multi-arch all --src-tls-verify=false --dest-tls-verify=false \
		"$SK:$tag" "docker://127.0.0.1:$REG_PORT/mirror:$tag" >"$T/copy.log" 2>&1 ||
		{ fail "skopeo copy $tag"; tail -2 "$T/copy.log" >&2; }
done
expect 0 "pull what skopeo copied" "$AF" pull --store "$T/from-mirror" --keyring "$KR" --channel blue \
	"oci://127.0.0.1:$REG_PORT/mirror"
expect 0 "verify what skopeo copied" "$AF" verify --store "$T/from-mirror" --keyring "$KR"

# ---- one leaf changes: only its blobs move -----------------------------------------
sed -i 's/^version: .*/version: 1.1.0/' "$R/templates/tester.yaml"
echo "# a changed leaf" >>"$R/templates/tester.yaml"
build v2
[ "$(release senior-reviewer technical-reviewer tester)" = 2 ] || fail "release 2"
promote 2 || fail "promote 2"
expect 0 "push release 2 (chunked uploads)" env AF_OCI_CHUNK=4096 "$AF" push --json --store "$S" \
	--channel blue "$REG"
UP2=$(jqf .blobs_up)
check "a one-leaf change uploads few blobs ($UP2 of $UP1)" [ "$UP2" -gt 0 ] && [ "$UP2" -lt "$UP1" ]
contains "$T/err" "(chunked)" "large blobs went in chunks"
expect 0 "pull release 2" "$AF" pull --json --store "$P" --keyring "$KR" --channel blue "$REG"
check "pull of a one-leaf change: 1 artifact" [ "$(jqf .artifacts)" = 1 ]
expect 0 "verify after the update" "$AF" verify --store "$P" --keyring "$KR"
expect 0 "status after the update" "$AF" status --store "$P" --keyring "$KR"
contains "$T/out" "2 releases" "release 2 arrived"

# ---- tampering in the registry: refused, store unchanged -----------------------------
n_artifacts() { "$AF" ls --json --store "$1" 2>/dev/null | jq '.artifacts | length' 2>/dev/null || echo 0; }
snapshot() { # what a store holds (status without its clock line)
	"$AF" status --store "$1" --keyring "$KR" 2>&1 | tail -n +2
	"$AF" ls --store "$1" 2>&1
}
TESTER_OCI=$(skopeo inspect --raw --tls-verify=false "$SK:tester-1.1.0")
WASM=$(echo "$TESTER_OCI" | jq -r '.layers[] | select(.annotations["org.opencontainers.image.title"] == "wasm") | .digest')
flip_byte "$(registry_blob_path "$WASM")"
expect 1 "pull with a tampered blob" "$AF" pull --store "$T/fresh1" --keyring "$KR" --channel blue "$REG"
contains "$T/err" "does not match its digest" "tampered blob named"
contains "$T/err" "store is unchanged" "the store is said unchanged"
check "fresh store has no artifact after a refused pull" [ "$(n_artifacts "$T/fresh1")" = 0 ]
flip_byte "$(registry_blob_path "$WASM")"
TESTER_MD=$(skopeo inspect --raw --tls-verify=false "$SK:channel-blue" |
	jq -r '.manifests[] | select(.annotations["dev.agentfactory.ref"] == "tester@1.1.0") | .digest')
cp "$(registry_blob_path "$TESTER_MD")" "$T/manifest.orig"
flip_hex "$(registry_blob_path "$TESTER_MD")"
expect 1 "pull with a tampered manifest" "$AF" pull --store "$T/fresh2" --keyring "$KR" --channel blue "$REG"
check "tampered manifest refused by digest or parse" grep -qE "does not match its digest|malformed|not an" "$T/err"
cp "$T/manifest.orig" "$(registry_blob_path "$TESTER_MD")"

# ---- a misbehaving registry (proxy) ------------------------------------------------
MODE="$T/proxy.mode"
echo pass >"$MODE"
python3 "$SRC/tests/fixtures/registry/proxy.py" "$REG_PORT" "$MODE" "$T/proxy.port" &
PIDS+=("$!")
wait_for 30 "proxy listening" test -s "$T/proxy.port"
PX="oci://127.0.0.1:$(cat "$T/proxy.port")/agents"
expect 0 "pull through the proxy" "$AF" pull --store "$T/via-proxy" --keyring "$KR" --channel blue "$PX"
BEFORE=$(snapshot "$P")
for m in flip huge redirect error garbage; do
	echo "$m" >"$MODE"
	want=1
	[ "$m" = error ] && want=2 # the registry is failing, not lying: exit 2
	expect "$want" "pull through a proxy in mode $m" "$AF" pull --timeout 5 --store "$T/px-$m" --keyring "$KR" \
		--channel blue "$PX"
	[ "$(grep -c . "$T/err")" -ge 1 ] || fail "mode $m: no message"
	case $m in
	flip) contains "$T/err" "does not match its digest" "flipped byte refused" ;;
	huge) contains "$T/err" "refused" "10 GiB Content-Length refused" ;;
	redirect) contains "$T/err" "redirected to another host" "redirect refused" ;;
	error) contains "$T/err" "HTTP 500" "500 named" ;;
	garbage) contains "$T/err" "refused" "garbage manifest refused" ;;
	esac
	contains "$T/err" "127.0.0.1:$(cat "$T/proxy.port")" "mode $m: the registry is named"
	check "mode $m: nothing stored" [ "$(n_artifacts "$T/px-$m")" = 0 ]
done
echo stall >"$MODE"
expect 2 "a registry that stops answering (--timeout 2)" "$AF" pull --timeout 2 --store "$T/px-stall" \
	--keyring "$KR" --channel blue "$PX"
check "the stall is named" grep -qiE "too slow|timed out|timeout" "$T/err"
echo pass >"$MODE"
check "the pulled store is unchanged by all that" [ "$(snapshot "$P")" = "$BEFORE" ]
# an expired release (freeze protection): the clock moved past its expiry
expect 1 "pull of an expired release" env AF_NOW="$(date -u -d '+8 days' +%Y-%m-%dT%H:%M:%SZ)" \
	"$AF" pull --store "$T/expired" --keyring "$KR" --channel blue "$REG"
contains "$T/err" "expired" "expiry named"
check "nothing stored from an expired release" [ "$(n_artifacts "$T/expired")" = 0 ]

# ---- wrong media type, unsigned channel, replayed channel -------------------------
skopeo copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false "$SK:tester-1.1.0" "$SK:channel-evil" >/dev/null 2>&1
expect 1 "a channel tag on an artifact manifest" "$AF" pull --store "$T/mt" --keyring "$KR" --channel evil "$REG"
contains "$T/err" "wrong media type" "media type named"
skopeo copy --preserve-digests --multi-arch all --src-tls-verify=false --dest-tls-verify=false "$SK:release-2" "$SK:channel-green" >/dev/null 2>&1
expect 1 "an unsigned channel tag" "$AF" pull --store "$T/unsigned" --keyring "$KR" --channel green "$REG"
contains "$T/err" "no signed record of channel green" "unsigned channel refused"
# a channel record signed by an untrusted key (another store, same numbers)
S2="$T/evil-store"
"$AF" trust add --keyring "$T/evil-kr.json" --role builder --not-before -30d "$B.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$T/evil-kr.json" --role release-manager --not-before -30d "$EVIL.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$T/evil-kr.json" --role template-signer --not-before -30d "$TS.pub" >/dev/null 2>&1
"$AF" build --repo "$R" --rev HEAD --store "$S2" --keyring "$T/evil-kr.json" --builder-key "$B.key" -j 2 >/dev/null 2>&1
"$AF" release create --store "$S2" --keyring "$T/evil-kr.json" --key "$EVIL.key" senior-reviewer >/dev/null 2>&1
"$AF" promote --store "$S2" --keyring "$T/evil-kr.json" --key "$EVIL.key" --channel red --release 1 >/dev/null 2>&1
expect 0 "push a channel signed by an untrusted key" "$AF" push --quiet --store "$S2" --channel red "$REG"
expect 1 "pull a channel signed by an untrusted key" "$AF" pull --store "$T/wrongkey" --keyring "$KR" --channel red "$REG"
check "untrusted channel signer refused" grep -qiE "unknown|not in the keyring|signature" "$T/err"
# replay: blue goes 1 -> 2 -> back to release 1's index (its old record seq 1),
# moved with the exact bytes, as someone with write access to the registry could
BEFORE=$(snapshot "$P")
curl -sf -H "Accept: application/vnd.oci.image.index.v1+json" \
	"http://127.0.0.1:$REG_PORT/v2/agents/manifests/$R1_INDEX" >"$T/r1-index.json" || fail "get release 1 index"
curl -sf -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" \
	--data-binary @"$T/r1-index.json" "http://127.0.0.1:$REG_PORT/v2/agents/manifests/channel-blue" ||
	fail "move channel-blue back"
expect 1 "a channel tag moved back to an older release" "$AF" pull --store "$P" --keyring "$KR" --channel blue "$REG"
contains "$T/err" "replayed" "replay refused"
check "store unchanged by the replay" [ "$(snapshot "$P")" = "$BEFORE" ]
# a real rollback is a new signed record: accepted
"$AF" rollback --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --to 1 >/dev/null 2>&1 || fail "rollback"
expect 0 "push the rollback" "$AF" push --quiet --store "$S" --channel blue "$REG"
expect 0 "pull the rollback" "$AF" pull --json --store "$P" --keyring "$KR" --channel blue "$REG"
check "rollback record 3 pulled" [ "$(jqf .channel_seq)" = 3 ] && [ "$(jqf .release)" = 1 ]

# ---- interrupted pull: store as before, then resume ----------------------------------
"$AF" pull --store "$T/interrupted" --keyring "$KR" --channel blue "$REG" >/dev/null 2>&1 # at release 1
promote 2 || fail "promote 2 again"
"$AF" push --quiet --store "$S" --channel blue "$REG" >/dev/null 2>&1 || fail "push record 4"
BEFORE=$(snapshot "$T/interrupted")
echo stall >"$MODE"
# download the blobs the proxy lets through (manifests), stall on the first blob
"$AF" pull --quiet --store "$T/interrupted" --keyring "$KR" --channel blue "$PX" >/dev/null 2>&1 &
PULL=$!
PIDS+=("$PULL")
sleep 2
kill -KILL "$PULL" 2>/dev/null || true
wait "$PULL" 2>/dev/null || true
check "a killed pull leaves the store as before" [ "$(snapshot "$T/interrupted")" = "$BEFORE" ]
echo pass >"$MODE"
# a partial download from an earlier attempt is reused: make one on purpose
mkdir -p "$T/interrupted/oci-partial"
CONFIG=$(echo "$TESTER_OCI" | jq -r .config.digest)
cp "$(registry_blob_path "$CONFIG")" "$T/interrupted/oci-partial/${CONFIG#sha256:}"
GETS_BEFORE=$(grep -c "GET /v2/agents/blobs/$CONFIG" "$T/reg/registry.log" || true)
check "the access log shows blob GETs (the kept blob was fetched by earlier pulls)" [ "$GETS_BEFORE" -ge 1 ]
expect 0 "the pull resumes" "$AF" pull --json --quiet --store "$T/interrupted" --keyring "$KR" --channel blue "$PX"
check "resume took the kept blob from disk, not from the registry" \
	[ "$(grep -c "GET /v2/agents/blobs/$CONFIG" "$T/reg/registry.log" || true)" = "$GETS_BEFORE" ]
check "the partial directory is gone after the commit" [ ! -d "$T/interrupted/oci-partial" ]
expect 0 "resumed store verifies" "$AF" verify --store "$T/interrupted" --keyring "$KR"

# ---- a runtime following channel-blue from the registry -----------------------------
start_pod() { # NAME [STORE]
	local name=$1 store=${2:-$T/pod-$1}
	"$RT" --store "$store" --keyring "$KR" --channel blue --source "$REG" \
		--source-interval-ms 300 --poll-ms 100 --listen 127.0.0.1:0 \
		--port-file "$T/$name.port" --log "$T/$name.log" &
	PIDS+=("$!")
	eval "POD_$name=$!"
	wait_for 60 "pod $name listening" test -s "$T/$name.port"
}
served_version() { curl -s "http://$(cat "$T/$1.port")/v1/agents/tester" | jq -r .version; }
start_pod a
wait_for 60 "pod a ready from the registry" curl -sf "http://$(cat "$T/a.port")/readyz"
check "pod a serves release 2 (tester 1.1.0)" [ "$(served_version a)" = 1.1.0 ]
# load while the channel moves: rollback to 1, push
INV="http://$(cat "$T/a.port")/v1/agents/senior-reviewer"
wrk -t1 -c4 -d6s "$INV" >"$T/wrk.txt" 2>&1 &
WRK=$!
PIDS+=("$WRK")
sleep 1
"$AF" rollback --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --to 1 >/dev/null 2>&1 || fail "rollback 2"
"$AF" push --quiet --store "$S" --channel blue "$REG" >/dev/null 2>&1 || fail "push rollback 2"
wait_for 60 "pod a switches to release 1 after promote + push" sh -c "[ \"\$(curl -s http://$(cat "$T/a.port")/v1/agents/tester | jq -r .version)\" = 1.0.0 ]"
wait "$WRK" || true
ok
if grep -qE "Non-2xx|Socket errors" "$T/wrk.txt"; then fail "failed requests during the switch"; sed 's/^/    /' "$T/wrk.txt" >&2; fi
grep -q "requests in" "$T/wrk.txt" || fail "wrk did not run"
curl -s "http://$(cat "$T/a.port")/metrics" >"$T/metrics"
contains "$T/metrics" "agentfactory_source_pulls_total 2" "two pulls counted"
# a replayed tag (channel-blue moved back by hand to release 2's index, whose
# records are older than the one the pod accepted): refused, still serving
curl -sf -H "Accept: application/vnd.oci.image.index.v1+json" \
	"http://127.0.0.1:$REG_PORT/v2/agents/manifests/release-2" >"$T/r2-index.json" || fail "get release 2 index"
curl -sf -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" \
	--data-binary @"$T/r2-index.json" "http://127.0.0.1:$REG_PORT/v2/agents/manifests/channel-blue" ||
	fail "move channel-blue by hand"
wait_for 60 "the pod refuses the replayed tag" sh -c "curl -sf http://$(cat "$T/a.port")/readyz | grep -q '\"state\":\"refused\"'"
check "the pod keeps serving release 1" [ "$(served_version a)" = 1.0.0 ]
contains "$T/a.log" "source_refused" "refusal logged"
contains "$T/a.log" "replayed" "the replay is named in the log"
"$AF" push --quiet --store "$S" --channel blue "$REG" >/dev/null 2>&1 || fail "push blue back"
wait_for 60 "the pod is in sync again once the tag is right" sh -c "curl -sf http://$(cat "$T/a.port")/readyz | grep -q '\"state\":\"ok\"'"
# idle polls: one HEAD each (the registry's access log counts them)
H0=$(grep -c '"HEAD /v2/agents/manifests/channel-blue' "$T/reg/registry.log" || true)
G0=$(grep -c '"GET /v2/' "$T/reg/registry.log" || true)
sleep 2
H1=$(grep -c '"HEAD /v2/agents/manifests/channel-blue' "$T/reg/registry.log" || true)
G1=$(grep -c '"GET /v2/' "$T/reg/registry.log" || true)
check "idle pod polls with HEADs ($H0 -> $H1)" [ "$H1" -gt "$H0" ]
check "idle pod makes no GET ($G0 -> $G1)" [ "$G1" = "$G0" ]
# registry down: keeps serving, says so
stop_registry
wait_for 30 "readyz says the registry is unreachable" sh -c "curl -sf http://$(cat "$T/a.port")/readyz | grep -q unreachable"
check "still serving with the registry down" [ "$(served_version a)" = 1.0.0 ]
curl -s "http://$(cat "$T/a.port")/metrics" >"$T/metrics"
contains "$T/metrics" 'agentfactory_source_errors_total{state="unreachable"}' "unreachable counted"
contains "$T/a.log" "source_unreachable" "unreachable logged"
# pods started while the registry is down
start_pod b "$T/pod-empty"
ok
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$(cat "$T/b.port")/readyz")
[ "$code" = 503 ] || fail "a pod without cache and without registry is not ready (got $code)"
kill -TERM "$POD_a"
wait "$POD_a" 2>/dev/null || true
start_pod c "$T/pod-a"
wait_for 60 "a pod restarted on its cache with the registry down is ready" curl -sf "http://$(cat "$T/c.port")/readyz"
check "it serves the cached release" [ "$(served_version c)" = 1.0.0 ]
kill -TERM "$POD_c" "$POD_b" 2>/dev/null || true

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
