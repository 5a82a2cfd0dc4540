#!/usr/bin/env bash
# test_registry_auth.sh - push and pull against a real docker-registry that
# wants credentials or TLS, started here on free loopback ports:
#  - htpasswd basic auth (apache2-utils' htpasswd -B): no credentials, wrong
#    password, --password-stdin, a config.json found through
#    REGISTRY_AUTH_FILE, DOCKER_CONFIG and --auth-file; skopeo with the same
#    credentials reads what we pushed;
#  - the bearer-token flow (WWW-Authenticate: Bearer realm=...) with a token
#    server fixture whose JWTs the registry checks against its root
#    certificate: push and pull, no or wrong credentials, an expired token,
#    and a runtime following a channel through it that switches;
#  - TLS with a CA made here with openssl: --ca-file works, no CA or another
#    CA is refused with a message that says what to do.
# Env: AF, AF_RUNTIME, AF_SRCDIR.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-registry-auth.XXXXXX)
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
export HOME="$T/home"
mkdir -p "$HOME"
# shellcheck source=registry_lib.bash
. "$(dirname "$0")/registry_lib.bash"

for tool in docker-registry skopeo htpasswd openssl jq curl python3; do
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
	"$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
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
check() {
	local desc=$1
	shift
	ok
	"$@" || fail "$desc"
}
wait_for() { # SECONDS DESCRIPTION CMD...
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

# ---- a store with senior-reviewer 1.0.0 on blue, 1.1.0 ready as release 2 --------
k() { "$AF" keygen --role "$1" --out "$T/keys/$2" >/dev/null 2>&1; echo "$T/keys/$2/$1"; }
TS=$(k template-signer ts)
B=$(k builder b)
RM=$(k release-manager rm)
KR="$T/keyring.json"
for pair in "template-signer $TS" "builder $B" "release-manager $RM"; do
	set -- $pair
	"$AF" trust add --keyring "$KR" --role "$1" --not-before -30d "$2.pub" >/dev/null 2>&1
done
R="$T/repo"
git init -q "$R"
mkdir -p "$R/templates/bases"
for f in bases/base-agent bases/base-reviewer senior-reviewer; do
	cp "$SRC/templates/$f.yaml" "$R/templates/$f.yaml"
done
S="$T/store"
build() {
	sed -i "s/^version: .*/version: $1/" "$R/templates/senior-reviewer.yaml"
	"$AF" sign --key "$TS.key" $(find "$R/templates" -name '*.yaml') >/dev/null
	git -C "$R" add -A && git -C "$R" commit -qm "$1"
	"$AF" build --repo "$R" --rev HEAD --store "$S" --keyring "$KR" --builder-key "$B.key" \
		-j 2 >/dev/null 2>&1 || fail "build $1"
	"$AF" release create --store "$S" --keyring "$KR" --key "$RM.key" "senior-reviewer@$1" \
		>/dev/null 2>&1 || fail "release $1"
}
build 1.0.0
build 1.1.0
"$AF" promote --store "$S" --keyring "$KR" --key "$RM.key" --channel blue --release 1 >/dev/null 2>&1 ||
	fail "promote 1"
[ "$failures" -eq 0 ] || { echo "cannot test without a store" >&2; exit 1; }

# ---- basic auth (htpasswd) -----------------------------------------------------------
htpasswd -Bbn alice 's3cret pass' >"$T/htpasswd"
cat >"$T/basic.yml" <<EOF
auth:
  htpasswd:
    realm: test-realm
    path: $T/htpasswd
EOF
start_registry "$T/reg-basic" "$T/basic.yml"
REG="oci://127.0.0.1:$REG_PORT/agents"
expect 1 "push without credentials" "$AF" push --quiet --store "$S" --channel blue "$REG"
contains "$T/err" "credentials required" "missing credentials named"
contains "$T/err" "127.0.0.1:$REG_PORT" "the registry is named"
expect 1 "push with a wrong password" "$AF" push --quiet --store "$S" --channel blue \
	--username alice --password wrong "$REG"
contains "$T/err" "refused" "wrong password refused"
ok
printf 's3cret pass\n' | "$AF" push --quiet --store "$S" --channel blue --username alice \
	--password-stdin "$REG" >"$T/out" 2>"$T/err" || { fail "push with --password-stdin"; cat "$T/err" >&2; }
AUTH=$(printf 'alice:s3cret pass' | base64 -w0)
mkdir -p "$T/docker"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$REG_PORT" "$AUTH" >"$T/docker/config.json"
expect 0 "pull with REGISTRY_AUTH_FILE" env REGISTRY_AUTH_FILE="$T/docker/config.json" \
	"$AF" pull --quiet --store "$T/p1" --keyring "$KR" --channel blue "$REG"
expect 0 "pull with DOCKER_CONFIG" env DOCKER_CONFIG="$T/docker" \
	"$AF" pull --quiet --json --store "$T/p2" --keyring "$KR" --channel blue "$REG"
check "pulled one artifact" [ "$(jq -r .artifacts "$T/out")" = 1 ]
printf '{"auths":{"https://127.0.0.1:%s/v1/":{"auth":"%s"}}}\n' "$REG_PORT" "$(printf 'alice:nope' | base64 -w0)" \
	>"$T/bad-config.json"
expect 1 "pull with wrong credentials in --auth-file" "$AF" pull --quiet --store "$T/p3" --keyring "$KR" \
	--auth-file "$T/bad-config.json" --channel blue "$REG"
contains "$T/err" "refused" "wrong stored credentials refused"
expect 0 "skopeo reads it with the same credentials" skopeo inspect --raw --tls-verify=false \
	--creds 'alice:s3cret pass' "docker://127.0.0.1:$REG_PORT/agents:channel-blue"
contains "$T/out" "senior-reviewer@1.0.0" "the index names the artifact"
stop_registry

# ---- bearer tokens ------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/token.key" -out "$T/token.crt" -days 2 \
	-subj "/CN=test token signer" >/dev/null 2>&1
echo 300 >"$T/token.ttl"
python3 "$SRC/tests/fixtures/registry/token_server.py" "$T/token.port" "$T/token.key" "$T/token.crt" \
	bob 'b0b pass' test-issuer test-registry "$T/token.ttl" &
PIDS+=("$!")
wait_for 30 "token server listening" test -s "$T/token.port"
cat >"$T/token.yml" <<EOF
auth:
  token:
    realm: http://127.0.0.1:$(cat "$T/token.port")/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $T/token.crt
EOF
start_registry "$T/reg-token" "$T/token.yml"
REG="oci://127.0.0.1:$REG_PORT/agents"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$REG_PORT" "$(printf 'bob:b0b pass' | base64 -w0)" \
	>"$T/token-config.json"
expect 1 "anonymous push to a token registry" "$AF" push --quiet --store "$S" --channel blue "$REG"
contains "$T/err" "token request" "the token request is named"
contains "$T/err" "credentials required" "missing credentials named"
expect 1 "push with a wrong password (token flow)" "$AF" push --quiet --store "$S" --channel blue \
	--username bob --password wrong "$REG"
contains "$T/err" "were refused" "wrong token credentials named"
expect 0 "push through the token flow" env REGISTRY_AUTH_FILE="$T/token-config.json" \
	"$AF" push --quiet --store "$S" --channel blue "$REG"
expect 0 "pull through the token flow" env REGISTRY_AUTH_FILE="$T/token-config.json" \
	"$AF" pull --quiet --store "$T/p4" --keyring "$KR" --channel blue "$REG"
expect 0 "verify what came through the token flow" "$AF" verify --store "$T/p4" --keyring "$KR"
# an expired token (issued already expired, beyond the registry's leeway)
echo -300 >"$T/token.ttl"
expect 1 "an expired token" env REGISTRY_AUTH_FILE="$T/token-config.json" \
	"$AF" pull --quiet --store "$T/p-exp" --keyring "$KR" --channel blue "$REG"
contains "$T/err" "127.0.0.1:$REG_PORT" "expired token: the registry is named"
contains "$T/err" "refused" "expired token refused"
echo 300 >"$T/token.ttl"
# a runtime following the channel through the token flow
REGISTRY_AUTH_FILE="$T/token-config.json" "$RT" --store "$T/pod" --keyring "$KR" --channel blue \
	--source "$REG" --source-interval-ms 300 --poll-ms 100 --listen 127.0.0.1:0 \
	--port-file "$T/pod.port" --log "$T/pod.log" &
PIDS+=("$!")
wait_for 60 "pod listening" test -s "$T/pod.port"
wait_for 60 "pod ready through the token flow" curl -sf "http://$(cat "$T/pod.port")/readyz"
"$AF" promote --store "$S" --keyring "$KR" --key "$RM.key" --channel blue --release 2 >/dev/null 2>&1 ||
	fail "promote 2"
REGISTRY_AUTH_FILE="$T/token-config.json" "$AF" push --quiet --store "$S" --channel blue "$REG" \
	>/dev/null 2>&1 || fail "push release 2 through the token flow"
wait_for 60 "pod switches to release 2 through the token flow" sh -c \
	"[ \"\$(curl -s http://$(cat "$T/pod.port")/v1/agents/senior-reviewer | jq -r .version)\" = 1.1.0 ]"
stop_registry

# ---- TLS with our own CA -------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.crt" -days 2 \
	-subj "/CN=test registry CA" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" -subj "/CN=127.0.0.1" \
	>/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/srv.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
	-out "$T/srv.crt" -days 2 -extfile "$T/srv.ext" >/dev/null 2>&1
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" -out "$T/other.crt" -days 2 \
	-subj "/CN=another CA" >/dev/null 2>&1
cat >"$T/tls.yml" <<EOF
  tls:
    certificate: $T/srv.crt
    key: $T/srv.key
EOF
REG_HTTP_EXTRA="$T/tls.yml" REG_SCHEME=https REG_CURL_OPTS="--cacert $T/ca.crt" start_registry "$T/reg-tls"
REG="oci://127.0.0.1:$REG_PORT/agents"
expect 0 "push over TLS with --ca-file" "$AF" push --quiet --store "$S" --channel blue \
	--ca-file "$T/ca.crt" "$REG"
expect 0 "pull over TLS with --ca-file" "$AF" pull --quiet --store "$T/p5" --keyring "$KR" \
	--channel blue --ca-file "$T/ca.crt" "$REG"
expect 2 "pull over TLS with another CA" "$AF" pull --quiet --store "$T/p6" --keyring "$KR" \
	--channel blue --ca-file "$T/other.crt" "$REG"
contains "$T/err" "--ca-file" "the fix is named"
expect 2 "plain HTTP to a TLS registry" "$AF" pull --quiet --store "$T/p7" --keyring "$KR" \
	--channel blue "$REG"
mkdir -p "$T/skopeo-certs"
cp "$T/ca.crt" "$T/skopeo-certs/ca.crt"
expect 0 "skopeo reads it, verifying TLS with the same CA" skopeo inspect --raw \
	--cert-dir "$T/skopeo-certs" "docker://127.0.0.1:$REG_PORT/agents:channel-blue"
stop_registry

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
