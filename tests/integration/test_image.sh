#!/usr/bin/env bash
# test_image.sh - the runtime's OCI image (ci/image.sh, `make image`), built
# with umoci, no daemon.
#
# Covers: two builds give the same manifest digest (reproducible); another
# SOURCE_DATE_EPOCH gives another digest (the epoch is what fixes the times);
# the config has the non-root user 65532, the entrypoint, the exposed port
# and the OCI labels (source, revision = HEAD, version); `umoci unpack` gives
# a root file system with no shell and no package manager, only the binary,
# its libraries, CA certificates and /etc files; every file is owned by root
# but the cache directory. Then the runtime is run from that root file system
# as uid 65532 in its own network, mount and PID namespaces, with the root
# read-only, a tmpfs as its writable cache, and a store owned by root that
# uid 65532 may read but not write (bind-mounted read-only): /healthz,
# /readyz, the agent list and an invocation answer; SIGTERM exits 0. The CLI
# image is built too and answers --version from its own root. Finally
# `skopeo copy` pushes the image to a Distribution registry started on a free
# loopback port, and the registry serves the same manifest digest.
#
# Env: AF, AF_RUNTIME, AF_SRCDIR.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?}
for tool in umoci skopeo jq unshare nsenter chroot curl docker-registry; do
	command -v "$tool" >/dev/null || { echo "$tool is required (make deps)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "test_image.sh needs root (namespaces, chroot, uid 65532)" >&2; exit 2; }

T=$(mktemp -d /tmp/af-image-test.XXXXXX)
chmod 0755 "$T"
PIDS=()
cleanup() {
	local p
	exec 2>/dev/null # no "Killed" job notices
	stop_pids "${PIDS[@]}"
	wait 2>/dev/null || true
	[ -n "${AF_KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT
. "$SRC/tests/lib/procs.sh"

failures=0 checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { # DESCRIPTION CMD...
	local desc=$1
	shift
	checks=$((checks + 1))
	"$@" || fail "$desc"
}

VERSION=$(sed -n 's/^VERSION *:= *//p' "$SRC/Makefile")
build() { # OUT [EPOCH]
	SOURCE_DATE_EPOCH=${2:-} VERSION=$VERSION bash "$SRC/ci/image.sh" --binary "$RT" \
		--name agentfactory-runtime --out "$1" --port 8080 --cmd serve 2>"$1.log"
}

echo "-- reproducible"
D1=$(build "$T/img1") || { cat "$T/img1.log" >&2; exit 1; }
D2=$(build "$T/img2") || { cat "$T/img2.log" >&2; exit 1; }
check "two builds, same digest ($D1 vs $D2)" [ "$D1" = "$D2" ]
check "digest is sha256" [ "${D1#sha256:}" != "$D1" ]
D3=$(build "$T/img3" 1000000000) || { cat "$T/img3.log" >&2; exit 1; }
check "another SOURCE_DATE_EPOCH, another digest" [ "$D3" != "$D1" ]
cat "$T/img1.log"

echo "-- config"
blob() { echo "$T/img1/blobs/sha256/${1#sha256:}"; }
MANIFEST=$(blob "$D1")
CONFIG=$(blob "$(jq -r .config.digest "$MANIFEST")")
cfg() { jq -r "$1" "$CONFIG"; }
check "user 65532" [ "$(cfg .config.User)" = "65532:65532" ]
check "entrypoint" [ "$(cfg '.config.Entrypoint | join(" ")')" = "/usr/local/bin/agentfactory-runtime" ]
check "cmd serve" [ "$(cfg '.config.Cmd | join(" ")')" = "serve" ]
check "exposed port" [ "$(cfg '.config.ExposedPorts | keys | join(",")')" = "8080/tcp" ]
REV=$(git -C "$SRC" rev-parse HEAD)
check "revision label" [ "$(cfg '.config.Labels["org.opencontainers.image.revision"]')" = "$REV" ]
check "version label" [ "$(cfg '.config.Labels["org.opencontainers.image.version"]')" = "$VERSION" ]
check "source label" [ -n "$(cfg '.config.Labels["org.opencontainers.image.source"] // empty')" ]
check "manifest annotation" [ "$(jq -r '.annotations["org.opencontainers.image.revision"]' "$MANIFEST")" = "$REV" ]
check "one layer" [ "$(jq '.layers | length' "$MANIFEST")" = 1 ]
check "created = commit time" [ "$(cfg .created)" = "$(date -u -d "@$(git -C "$SRC" log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)" ]

echo "-- contents"
umoci unpack --image "$T/img1:$VERSION" "$T/bundle" >/dev/null
R="$T/bundle/rootfs"
for f in bin/sh bin/bash usr/bin/sh bin/busybox usr/bin/dpkg usr/bin/apt usr/bin/apt-get usr/bin/env; do
	check "no /$f" [ ! -e "$R/$f" ]
done
check "the binary" [ -x "$R/usr/local/bin/agentfactory-runtime" ]
check "CA certificates" [ -s "$R/etc/ssl/certs/ca-certificates.crt" ]
check "passwd has 65532" grep -q '^nonroot:x:65532:65532:' "$R/etc/passwd"
# every regular file is the binary, a shared library or an /etc file
(cd "$R" && find . -type f | sed 's|^\./|/|' | sort) >"$T/files"
grep -vE '^/usr/local/bin/agentfactory-runtime$|^/(usr/)?lib(64|/x86_64-linux-gnu|/aarch64-linux-gnu)?/[^/]+\.so(\.[0-9]+)*$|^/etc/(passwd|group|nsswitch\.conf|ssl/certs/ca-certificates\.crt)$' \
	"$T/files" >"$T/unexpected" || true
check "only the binary, libraries and /etc files: $(tr '\n' ' ' <"$T/unexpected")" [ ! -s "$T/unexpected" ]
# the libraries are exactly those ldd computes for the binary
ldd "$RT" | awk '$2 == "=>" { n = split($3, p, "/"); print p[n] }' | sort -u >"$T/ldd"
grep -E '\.so' "$T/files" | awk -F/ '{ print $NF }' | grep -v '^ld-linux' | sort -u >"$T/libs"
check "the libraries are ldd's closure: $(diff "$T/ldd" "$T/libs" | tr '\n' ' ')" diff -q "$T/ldd" "$T/libs"
check "owned by root but the cache" [ -z "$(cd "$R" && find . ! -user 0 ! -path ./var/cache/agentfactory ! -path ./home/nonroot)" ]
check "cache owned by 65532" [ "$(stat -c %u "$R/var/cache/agentfactory")" = 65532 ]

echo "-- a store owned by root, readable by 65532 (lock.mdb not writable)"
# shellcheck source=lib/fixture_store.sh
source "$SRC/tests/integration/lib/fixture_store.sh"
fixture_store "$T/fx" || exit 1
fx_promote blue 1 || { echo "promote failed" >&2; exit 1; }
V="$T/var"  # what the pod mounts at /var/lib/agentfactory
mkdir -p "$V"
cp -a "$FX_STORE" "$V/store"
cp "$FX_RT_KEYRING" "$V/keyring.json"
cp "$FX_SCRIPT" "$V/script.json"
chmod -R a+rX "$V"
chmod 0600 "$V/store/lock.mdb"
chown -R 0:0 "$V"

echo "-- run from the unpacked root: uid 65532, read-only root, own namespaces"
# What a container runtime does: mount points created in the bundle, the root
# bind-mounted and made read-only, /proc, a minimal /dev, volumes, a tmpfs
# for the writable cache, then the entrypoint as the image's user.
mkdir -p "$R/proc" "$R/dev"
cat >"$T/pod.sh" <<'EOF'
set -e
R=$1 V=$2
shift 2
ip link set lo up
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755,size=64k tmpfs "$R/dev"
for d in null zero urandom random; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mount --bind "$V" "$R/var/lib/agentfactory"
mount -o remount,bind,ro "$R/var/lib/agentfactory"
mount -t tmpfs -o uid=65532,gid=65532,mode=0755,size=16m tmpfs "$R/var/cache/agentfactory"
mount -o remount,bind,ro "$R"
exec chroot --userspec=65532:65532 "$R" /usr/local/bin/agentfactory-runtime serve \
	--keyring /var/lib/agentfactory/keyring.json \
	--channel blue --listen 127.0.0.1:8080 --llm-script /var/lib/agentfactory/script.json \
	--data /var/cache/agentfactory/data --port-file /var/cache/agentfactory/port --grace-ms 2000 "$@"
EOF
# Namespaces need a machine where `unshare --mount` works (not, e.g., a
# chroot whose / is not a mount point): elsewhere these runs are skipped
# and the whole test reports SKIP with the reason, after every other check.
NS_SKIP=""
if ! unshare --mount true 2>"$T/unshare.err"; then
	NS_SKIP="the image was not run in its own namespaces: unshare --mount fails here ($(head -1 "$T/unshare.err"))"
	echo "   SKIP: $NS_SKIP"
else
	unshare --net --mount --pid --fork bash "$T/pod.sh" "$R" "$V" --store /var/lib/agentfactory/store \
		>"$T/pod.out" 2>"$T/pod.err" &
	POD=$!
	PIDS+=("$POD")
	in_pod() { nsenter --net="/proc/$POD/ns/net" "$@"; }
	up=""
	for _ in $(seq 1 300); do
		kill -0 "$POD" 2>/dev/null || break
		if in_pod curl -s -o /dev/null -m 2 http://127.0.0.1:8080/healthz 2>/dev/null; then up=1; break; fi
		sleep 0.1
	done
	if [ -z "$up" ]; then
		echo "FAIL: the runtime did not serve from the image" >&2
		sed 's/^/    /' "$T/pod.err" >&2
		exit 1
	fi
	RTPID=$(pgrep -P "$POD" | head -1)
	check "the runtime runs as uid 65532" grep -qE '^Uid:\s+65532\s+65532' "/proc/$RTPID/status"
	check "its root is read-only" awk '$5 == "/" { for (i = 6; i <= NF; i++) if ($i ~ /^ro(,|$)/) f = 1 } END { exit !f }' "/proc/$RTPID/mountinfo"
	check "its own network namespace" [ "$(readlink "/proc/$RTPID/ns/net")" != "$(readlink /proc/self/ns/net)" ]
	code() { in_pod curl -s -o "$T/body" -w '%{http_code}' -m 30 "$@" || echo 000; }
	check "/healthz 200" [ "$(code http://127.0.0.1:8080/healthz)" = 200 ]
	check "/readyz 200: $(cat "$T/body")" [ "$(code http://127.0.0.1:8080/readyz)" = 200 ]
	check "agents 200" [ "$(code http://127.0.0.1:8080/v1/agents)" = 200 ]
	check "serves release 1, senior-reviewer 1.0.0: $(cat "$T/body")" \
		[ "$(jq -r '"\(.release) \(.agents[0].name)@\(.agents[0].version)"' "$T/body")" = "1 senior-reviewer@1.0.0" ]
	check "invoke 200" [ "$(code -X POST -H 'Content-Type: application/json' -d "$FX_BODY" \
		http://127.0.0.1:8080/v1/agents/senior-reviewer/invoke)" = 200 ]
	check "the invocation's answer: $(head -c 300 "$T/body")" grep -q 'changes requested' "$T/body"
	check "the port file in the writable cache" [ -s "/proc/$RTPID/root/var/cache/agentfactory/port" ]
	kill -TERM "$RTPID"
	rc=0
	wait "$POD" || rc=$?
	check "SIGTERM: exit 0, got $rc" [ "$rc" = 0 ]
	check "the store was not written" [ "$(stat -c %U "$V/store/lock.mdb")" = root ]

	echo "-- the same image following its channel from a registry (the chart's source.registry)"
	# The pod's own network namespace holds a registry (the test's stand-in
	# for the cluster's); the runtime pulls, verifies and caches into the tmpfs
	# at /var/cache/agentfactory as uid 65532, with the root still read-only.
	case "$("$RT" --help 2>&1 || true)" in
	*"--source oci://"*)
		unshare --net --mount --pid --fork bash "$T/pod.sh" "$R" "$V" --store /var/cache/agentfactory/store \
			--source oci://127.0.0.1:5000/agents --source-interval-ms 200 >"$T/pod2.out" 2>"$T/pod2.err" &
		POD=$!
		PIDS+=("$POD")
		for _ in $(seq 1 100); do
			in_pod ip link show lo 2>/dev/null | grep -q UP && break
			sleep 0.05
		done
		mkdir -p "$T/reg"
		printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:5000\n' \
			"$T/reg" >"$T/reg.yml"
		# nsenter itself (not the in_pod function, whose subshell would be $!)
		nsenter --net="/proc/$POD/ns/net" docker-registry serve "$T/reg.yml" >"$T/reg.log" 2>&1 &
		PIDS+=("$!")
		for _ in $(seq 1 100); do in_pod curl -s -o /dev/null http://127.0.0.1:5000/v2/ && break; sleep 0.1; done
		check "push the channel into the pod's registry" \
			in_pod "$AF" push --quiet --store "$FX_STORE" --channel blue oci://127.0.0.1:5000/agents
		got=""
		for _ in $(seq 1 300); do
			got="$(code http://127.0.0.1:8080/v1/agents)-$(jq -r '"\(.release) \(.agents[0].version)"' "$T/body" 2>&1)"
			[ "$got" = "200-1 1.0.0" ] && break
			kill -0 "$POD" 2>/dev/null || break
			sleep 0.1
		done
		check "serves the pulled release: $got $(head -c 300 "$T/body")" [ "$got" = "200-1 1.0.0" ]
		check "ready once pulled: $(cat "$T/body")" [ "$(code http://127.0.0.1:8080/readyz)" = 200 ]
		got=$(code -X POST -H 'Content-Type: application/json' -d "$FX_BODY" \
			http://127.0.0.1:8080/v1/agents/senior-reviewer/invoke)
		check "invoke 200 from the pulled agent: $got $(head -c 300 "$T/body")" [ "$got" = 200 ]
		RTPID=$(pgrep -P "$POD" | head -1)
		check "the pulling runtime runs as 65532" grep -qE '^Uid:\s+65532\s+65532' "/proc/$RTPID/status"
		check "the cache store was written by 65532" \
			[ "$(stat -c %u "/proc/$RTPID/root/var/cache/agentfactory/store/data.mdb")" = 65532 ]
		kill -TERM "$RTPID"
		rc=0
		wait "$POD" || rc=$?
		check "SIGTERM: exit 0, got $rc" [ "$rc" = 0 ]
		;;
	*) echo "   (this runtime has no --source: not run)" ;;
	esac
fi

echo "-- no shell to run"
rc=0
chroot "$R" /bin/sh -c true 2>/dev/null || rc=$?
check "chroot ROOT /bin/sh fails (exit $rc)" [ "$rc" != 0 ]

echo "-- the CLI image"
VERSION=$VERSION bash "$SRC/ci/image.sh" --binary "$AF" --name agentfactory --out "$T/cli" \
	--add "$SRC/policies:/usr/local/share/agentfactory/policies" >/dev/null 2>"$T/cli.log" ||
	{ cat "$T/cli.log" >&2; exit 1; }
umoci unpack --image "$T/cli:$VERSION" "$T/clib" >/dev/null
check "CLI image: policies" [ -n "$(ls "$T/clib/rootfs/usr/local/share/agentfactory/policies")" ]
out=$(chroot --userspec=65532:65532 "$T/clib/rootfs" /usr/local/bin/agentfactory --version 2>&1 || true)
check "CLI image runs as 65532: '$out'" grep -q "$VERSION" <<<"$out"

echo "-- pushed with skopeo to a registry on loopback"
PORT=""
for _ in $(seq 1 20); do
	p=$((20000 + RANDOM % 30000))
	cat >"$T/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$p
EOF
	docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
	RPID=$!
	for _ in $(seq 1 50); do
		curl -s -o /dev/null "http://127.0.0.1:$p/v2/" && { PORT=$p; break; }
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$PORT" ] && break
	kill "$RPID" 2>/dev/null || true
done
[ -n "$PORT" ] || { echo "FAIL: the registry did not start" >&2; cat "$T/registry.log" >&2; exit 1; }
PIDS+=("$RPID")
skopeo copy --quiet --dest-tls-verify=false "oci:$T/img1:$VERSION" \
	"docker://127.0.0.1:$PORT/agentfactory-runtime:$VERSION" 2>"$T/skopeo.err" ||
	fail "skopeo copy: $(cat "$T/skopeo.err")"
got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' \
	"docker://127.0.0.1:$PORT/agentfactory-runtime:$VERSION" 2>"$T/skopeo.err" || true)
check "the registry serves the same digest ($got vs $D1)" [ "$got" = "$D1" ]

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ] || exit 1
if [ -n "$NS_SKIP" ]; then echo "$NS_SKIP"; exit 77; fi
