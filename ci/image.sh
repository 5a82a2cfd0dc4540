#!/usr/bin/env bash
# ci/image.sh - build a minimal OCI image of one agentfactory binary, without
# a container daemon (umoci), reproducibly.
#
#   ci/image.sh --binary FILE --name NAME --out DIR [--tag TAG] [--port PORT]
#               [--add SRC:DEST]... [--cmd ARG]...
#
# The image holds exactly:
#   - the binary, at /usr/local/bin/NAME (the ENTRYPOINT);
#   - the shared libraries it loads, computed from the binary: the ELF
#     interpreter (readelf -l) and every library ldd resolves, each checked
#     afterwards with readelf -d so that every DT_NEEDED of every file in the
#     image is itself in the image (the build fails otherwise);
#   - the CA certificates (/etc/ssl/certs/ca-certificates.crt);
#   - /etc/passwd and /etc/group with the non-root user 65532 (nonroot), which
#     is the image's User; /etc/nsswitch.conf (files, dns);
#   - empty directories /tmp, /var/lib/agentfactory and
#     /var/cache/agentfactory (owned by 65532) for volumes;
#   - whatever --add SRC:DEST names (a file or a directory tree).
# No shell, no package manager, nothing else.
#
# Reproducible: one layer made by GNU tar with sorted names, numeric owners,
# every mtime set to SOURCE_DATE_EPOCH (default: the commit time of HEAD), no
# atime/ctime; the config's and history's `created` is the same instant. The
# same binary gives the same image digest, whatever the day or directory.
#
# The OCI layout is DIR (a fresh one each run), tagged TAG (default: the
# VERSION env or 0.0.0). The manifest digest is printed on stdout and written
# to DIR.digest.
#
# Env: SOURCE_DATE_EPOCH, VERSION, AF_IMAGE_SOURCE (the org.opencontainers
# .image.source label; default: git remote origin, else the project URL).
set -euo pipefail

die() { echo "image.sh: $*" >&2; exit 2; }

BINARY="" NAME="" OUT="" TAG="${VERSION:-0.0.0}" PORT=""
ADDS=() CMDS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--binary) BINARY=$2; shift 2 ;;
	--name) NAME=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--tag) TAG=$2; shift 2 ;;
	--port) PORT=$2; shift 2 ;;
	--add) ADDS+=("$2"); shift 2 ;;
	--cmd) CMDS+=("$2"); shift 2 ;;
	*) die "unknown argument '$1'" ;;
	esac
done
[ -n "$BINARY" ] && [ -n "$NAME" ] && [ -n "$OUT" ] || die "--binary, --name and --out are required"
[ -x "$BINARY" ] || die "$BINARY is not an executable"
for tool in umoci tar readelf ldd jq sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is required (make deps)"
done
case "$TAG" in *[!A-Za-z0-9._-]*|"") die "bad tag '$TAG'" ;; esac

SRC=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || echo 0)
fi
case "$SOURCE_DATE_EPOCH" in *[!0-9]*|"") die "SOURCE_DATE_EPOCH must be seconds" ;; esac
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
REVISION=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_URL=${AF_IMAGE_SOURCE:-$(git -C "$SRC" config --get remote.origin.url 2>/dev/null || true)}
SOURCE_URL=${SOURCE_URL:-https://github.com/agentfactory/agentfactory}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/af-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT"

# put FILE DEST MODE : copy the file's content (links followed) to ROOT/DEST
put() {
	mkdir -p "$ROOT$(dirname "$2")"
	cp -L "$1" "$ROOT$2"
	chmod "$3" "$ROOT$2"
}

# ---- the binary and its libraries ----------------------------------------------
put "$BINARY" "/usr/local/bin/$NAME" 0755
interp=$(readelf -l "$BINARY" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
[ -n "$interp" ] || die "$BINARY has no ELF interpreter (a static binary needs no image script)"
put "$interp" "$interp" 0755
# ldd prints "name => /path (addr)" for each library of the closure
ldd "$BINARY" >"$WORK/ldd" || die "ldd $BINARY failed"
if grep -q "not found" "$WORK/ldd"; then
	die "libraries not found: $(grep 'not found' "$WORK/ldd" | tr -d '\t' | tr '\n' ' ')"
fi
awk '$2 == "=>" && $3 ~ /^\// { print $3 }' "$WORK/ldd" | sort -u >"$WORK/libs"
while read -r lib; do put "$lib" "$lib" 0644; done <"$WORK/libs"

# Every DT_NEEDED of every ELF file in the image must be in the image, in a
# directory the loader searches (the directories the libraries came from).
find "$ROOT" -type f | sort >"$WORK/elves"
while read -r f; do
	readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r need; do
		found=""
		for d in $(xargs -n1 dirname <"$WORK/libs" | sort -u) "$(dirname "$interp")"; do
			[ -f "$ROOT$d/$need" ] && found=1 && break
		done
		[ -n "$found" ] || { echo "image.sh: ${f#"$ROOT"} needs $need, not in the image" >&2; exit 1; }
	done || exit 2
done <"$WORK/elves"

# ---- the rest of the file system ------------------------------------------------
CA=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA" ] || die "$CA missing (install ca-certificates)"
put "$CA" "$CA" 0644
mkdir -p "$ROOT/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
	>"$ROOT/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOT/etc/group"
printf 'hosts: files dns\n' >"$ROOT/etc/nsswitch.conf"
chmod 0644 "$ROOT/etc/passwd" "$ROOT/etc/group" "$ROOT/etc/nsswitch.conf"
for spec in "${ADDS[@]}"; do
	from=${spec%%:*} to=${spec#*:}
	[ -e "$from" ] && [ "${to#/}" != "$to" ] || die "--add $spec: SRC must exist and DEST be absolute"
	mkdir -p "$ROOT$(dirname "$to")"
	cp -RL "$from" "$ROOT$to"
	chmod -R u=rwX,go=rX "$ROOT$to"
done
mkdir -p "$ROOT/tmp" "$ROOT/home/nonroot" "$ROOT/var/lib/agentfactory" "$ROOT/var/cache/agentfactory"
chmod 1777 "$ROOT/tmp"
chown 65532:65532 "$ROOT/home/nonroot" "$ROOT/var/cache/agentfactory"
chmod 0755 "$ROOT/home/nonroot" "$ROOT/var/lib/agentfactory" "$ROOT/var/cache/agentfactory"
find "$ROOT" -type d -exec chmod go-w,a+rx {} + 2>/dev/null || true
chmod 1777 "$ROOT/tmp"

# No shell, no package manager: refuse to produce an image that has one.
for f in bin/sh bin/bash usr/bin/sh usr/bin/dpkg usr/bin/apt usr/bin/apt-get; do
	[ ! -e "$ROOT/$f" ] || die "/$f ended up in the image"
done

# ---- the layer, then the image --------------------------------------------------
(cd "$ROOT" && tar --sort=name --format=pax --numeric-owner \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	--mtime="@$SOURCE_DATE_EPOCH" -cf "$WORK/layer.tar" .)

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
umoci init --layout "$OUT"
umoci new --image "$OUT:$TAG"
umoci raw add-layer --image "$OUT:$TAG" --history.created "$CREATED" \
	--history.created_by "ci/image.sh $NAME" "$WORK/layer.tar"
cfg=(--config.user 65532:65532 --config.entrypoint "/usr/local/bin/$NAME"
	--config.workingdir / --config.env PATH=/usr/local/bin
	--config.env SSL_CERT_FILE=$CA
	--created "$CREATED" --author agentfactory --os linux
	--architecture "$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')"
	--history.created "$CREATED" --history.created_by "ci/image.sh config")
[ -z "$PORT" ] || cfg+=(--config.exposedports "$PORT/tcp")
for c in "${CMDS[@]}"; do cfg+=(--config.cmd "$c"); done
for kv in "org.opencontainers.image.source=$SOURCE_URL" \
	"org.opencontainers.image.revision=$REVISION" \
	"org.opencontainers.image.version=$TAG" \
	"org.opencontainers.image.created=$CREATED" \
	"org.opencontainers.image.title=$NAME"; do
	cfg+=(--config.label "$kv" --manifest.annotation "$kv")
done
umoci config --image "$OUT:$TAG" "${cfg[@]}"
umoci gc --layout "$OUT"

digest=$(jq -r --arg t "$TAG" \
	'.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
	"$OUT/index.json")
[ -n "$digest" ] || die "no manifest tagged $TAG in $OUT/index.json"
echo "$digest" >"$OUT.digest"
size=$(du -sb "$OUT/blobs" | cut -f1)
echo "image.sh: $NAME:$TAG $digest ($((size / 1024)) KiB of blobs, $(wc -l <"$WORK/libs") libraries)" >&2
echo "$digest"
