#!/usr/bin/env bash
# test_store_cli.sh - end-to-end checks of `agentfactory ls`, `inspect`,
# `verify`, `export` and `import` on a store filled by a real `build` of part
# of the sample catalogue: output and exit codes, --json, AF_STORE /
# AF_KEYRING, deterministic bundles, a round trip into a fresh store, and the
# refusals: tampered, truncated and unsafe bundles (the target store must be
# unchanged), an untrusted builder key, a byte flipped inside LMDB.
#
# Env: AF = the agentfactory binary, AF_SRCDIR = the source tree.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-store-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
# expect WANT_RC DESCRIPTION CMD... - output in $T/out (stdout) and $T/err
expect() {
	local want=$1 desc=$2 rc=0
	shift 2
	checks=$((checks + 1))
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		sed 's/^/    stdout: /' "$T/out" >&2
		sed 's/^/    stderr: /' "$T/err" >&2
	fi
}
# contains FILE TEXT DESCRIPTION
contains() {
	checks=$((checks + 1))
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1" >&2; }
}
lacks() {
	checks=$((checks + 1))
	! grep -qF -- "$2" "$1" || { fail "$3: '$2' found in $(basename "$1")"; sed 's/^/    /' "$1" >&2; }
}

# --- a store built from part of the sample catalogue -----------------------
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" >/dev/null 2>&1
"$AF" keygen --role builder --out "$T/other" >/dev/null 2>&1
KR="$T/kr.json"
"$AF" trust add --keyring "$KR" --role template-signer "$T/keys/template-signer.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$KR" --role builder "$T/keys/builder.pub" >/dev/null 2>&1
# a keyring that trusts another builder only
"$AF" trust add --keyring "$T/other.json" --role builder "$T/other/builder.pub" >/dev/null 2>&1

git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp -r "$SRC/templates/bases" "$T/repo/templates/"
cp "$SRC/templates/security-expert.yaml" "$SRC/templates/senior-reviewer.yaml" \
   "$SRC/templates/tester.yaml" "$T/repo/templates/"
find "$T/repo/templates" -name '*.sig' -delete
mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
"$AF" sign --key "$T/keys/template-signer.key" "${files[@]}" >/dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
S="$T/store"
expect 0 "build" "$AF" build --repo "$T/repo" --keyring "$KR" \
	--builder-key "$T/keys/builder.key" --store "$S"
[ "$failures" -eq 0 ] || { echo "cannot test the store commands without a build" >&2; exit 1; }

# --- help and usage errors --------------------------------------------------
for cmd in ls inspect verify export import; do
	expect 0 "$cmd --help" "$AF" "$cmd" --help
	contains "$T/out" "usage: agentfactory $cmd" "$cmd --help prints usage"
	contains "$T/out" "exit codes" "$cmd --help lists exit codes"
	expect 2 "$cmd with an unknown flag" "$AF" "$cmd" --store "$S" --no-such-flag
	contains "$T/err" "--help" "$cmd bad flag points at --help"
	expect 2 "$cmd without --store" "$AF" "$cmd"
done
expect 2 "ls on a missing store" "$AF" ls --store "$T/nowhere"
contains "$T/err" "no store" "missing store is named"
expect 2 "verify without --keyring" "$AF" verify --store "$S"
expect 2 "export without --out" "$AF" export --store "$S"
expect 2 "inspect without a name" "$AF" inspect --store "$S"
expect 2 "import without a bundle" "$AF" import --store "$T/x" --keyring "$KR"
expect 2 "ls --out is not an ls option" "$AF" ls --store "$S" --out x

# --- ls ------------------------------------------------------------------------
expect 0 "ls" "$AF" ls --store "$S"
contains "$T/out" "security-expert@" "ls lists security-expert"
contains "$T/out" "tester@" "ls lists tester"
contains "$T/out" "latest" "ls marks the latest version"
contains "$T/out" "3 artifacts" "ls counts"
cp "$T/out" "$T/ls.before"
AF_STORE="$S" expect 0 "ls with AF_STORE" "$AF" ls
cmp -s "$T/out" "$T/ls.before" || fail "AF_STORE gives another listing"
expect 0 "ls --json" "$AF" ls --store "$S" --json
contains "$T/out" '"manifest_digest": "sha256:' "ls --json digests"
contains "$T/out" '"latest": true' "ls --json latest"
contains "$T/out" '"stored_bytes"' "ls --json stats"

# --- inspect -------------------------------------------------------------------
BID=$(awk '/"id"/ {gsub(/[",]/, "", $2); id=$2} /"role": "builder"/ {print id}' "$KR")
expect 0 "inspect" "$AF" inspect --store "$S" security-expert
contains "$T/out" "manifest         sha256:" "inspect shows the manifest digest"
contains "$T/out" "signed by key    $BID" "inspect shows the signer key id"
contains "$T/out" "not checked" "inspect without keyring says so"
contains "$T/out" "native/" "inspect lists the native part"
contains "$T/out" "https://slsa.dev/provenance/v1" "inspect shows the provenance"
expect 0 "inspect --keyring" "$AF" inspect --store "$S" --keyring "$KR" security-expert
contains "$T/out" "verification     OK" "inspect verifies with a keyring"
expect 1 "inspect with a keyring that does not trust the builder" \
	"$AF" inspect --store "$S" --keyring "$T/other.json" security-expert
contains "$T/out" "verification     FAILED" "inspect shows the failure"
expect 0 "inspect --json" "$AF" inspect --store "$S" --keyring "$KR" --json tester
contains "$T/out" '"verified": true' "inspect --json verified"
contains "$T/out" '"stored_size"' "inspect --json stored sizes"
contains "$T/out" '"predicateType": "https://slsa.dev/provenance/v1"' "inspect --json provenance"
VERSION=$(sed -n 's/^version: *//p' "$T/repo/templates/tester.yaml" | head -1)
expect 0 "inspect NAME@VERSION" "$AF" inspect --store "$S" "tester@$VERSION"
expect 1 "inspect an unknown name" "$AF" inspect --store "$S" no-such-agent
contains "$T/err" "no-such-agent" "inspect names what is missing"
expect 1 "inspect an unknown version" "$AF" inspect --store "$S" tester@99.0.0

# --- verify --------------------------------------------------------------------
expect 0 "verify" "$AF" verify --store "$S" --keyring "$KR"
contains "$T/out" "3 verified, 0 failed" "verify counts"
contains "$T/out" "ok    tester@" "verify lists each artifact"
AF_STORE="$S" AF_KEYRING="$KR" expect 0 "verify from the environment" "$AF" verify
expect 1 "verify with an untrusted builder" "$AF" verify --store "$S" --keyring "$T/other.json"
contains "$T/out" "FAIL  security-expert@" "verify names the failing artifact"
contains "$T/out" "0 verified, 3 failed" "verify counts failures"
expect 0 "verify --json" "$AF" verify --store "$S" --keyring "$KR" --json
contains "$T/out" '"failed": 0' "verify --json"

# --- export ----------------------------------------------------------------------
expect 0 "export all" "$AF" export --store "$S" --out "$T/all.tar"
contains "$T/out" "exported 3 artifacts" "export reports"
tar -tf "$T/all.tar" >"$T/members"
contains "$T/members" "oci-layout" "bundle has oci-layout"
contains "$T/members" "index.json" "bundle has index.json"
contains "$T/members" "blobs/sha256/" "bundle has blobs"
tar -xOf "$T/all.tar" index.json >"$T/index.json"
contains "$T/index.json" '"org.opencontainers.image.ref.name":"tester@' "index names artifacts"
contains "$T/index.json" 'application/vnd.oci.image.manifest.v1+json' "index lists OCI manifests"
expect 0 "export again" "$AF" export --store "$S" --out "$T/again.tar"
cmp -s "$T/all.tar" "$T/again.tar" || fail "export is not deterministic"
expect 0 "export one" "$AF" export --store "$S" --out "$T/one.tar" tester
contains "$T/out" "exported 1 artifact " "export of one name"
expect 1 "export an unknown name" "$AF" export --store "$S" --out "$T/bad.tar" nope
[ ! -e "$T/bad.tar" ] || fail "a failed export left a file"

# --- import ------------------------------------------------------------------------
F="$T/fresh"
expect 0 "import into a fresh store" "$AF" import --store "$F" --keyring "$KR" "$T/all.tar"
contains "$T/out" "imported 3 artifacts" "import reports"
"$AF" ls --store "$S" >"$T/a" 2>&1
"$AF" ls --store "$F" >"$T/b" 2>&1
cmp -s "$T/a" "$T/b" || { fail "imported store lists differently"; diff "$T/a" "$T/b" >&2 || true; }
expect 0 "verify the imported store" "$AF" verify --store "$F" --keyring "$KR"
contains "$T/out" "3 verified, 0 failed" "imported artifacts verify"
expect 0 "import the same bundle again" "$AF" import --store "$F" --keyring "$KR" "$T/all.tar"

# refusals: the target store must stay as it was
"$AF" ls --store "$F" --json >"$T/fresh.before"
refused() { # DESCRIPTION BUNDLE [TEXT]
	expect 1 "$1" "$AF" import --store "$F" --keyring "$KR" "$2"
	contains "$T/err" "refused" "$1: says refused"
	[ -z "${3:-}" ] || contains "$T/err" "$3" "$1: names the reason"
	"$AF" ls --store "$F" --json >"$T/fresh.after"
	cmp -s "$T/fresh.before" "$T/fresh.after" || fail "$1: the store changed"
}
size=$(stat -c %s "$T/all.tar")
cp "$T/all.tar" "$T/flip.tar"
printf '\xff' | dd of="$T/flip.tar" bs=1 seek=$((size / 2)) conv=notrunc status=none
refused "a flipped byte" "$T/flip.tar"
head -c $((size / 3)) "$T/all.tar" >"$T/trunc.tar"
refused "a truncated bundle" "$T/trunc.tar" "truncated"
head -c $((size - 1024)) "$T/all.tar" >"$T/noend.tar"
refused "a bundle without its end marker" "$T/noend.tar" "truncated"
mkdir -p "$T/evil/in"
echo boom >"$T/evil/x.txt"
(cd "$T/evil/in" && tar -cPf "$T/traversal.tar" ../x.txt)
refused "a path traversal member" "$T/traversal.tar" "traversal"
(cd "$T/evil" && ln -s /etc/passwd link && tar -cf "$T/symlink.tar" link)
refused "a symlink member" "$T/symlink.tar" "symbolic link"
(cd "$T/evil" && tar -cPf "$T/absolute.tar" "$T/evil/x.txt")
refused "an absolute path" "$T/absolute.tar" "absolute"
[ ! -e "$F/x.txt" ] && [ ! -e "$T/x.txt" ] || fail "an unsafe member was extracted"
expect 1 "import signed by an untrusted builder" \
	"$AF" import --store "$T/other-store" --keyring "$T/other.json" "$T/all.tar"
contains "$T/err" "refused" "untrusted builder refused"
expect 2 "import a missing file" "$AF" import --store "$F" --keyring "$KR" "$T/none.tar"

# --- a byte flipped inside LMDB ------------------------------------------------------
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null; then
	cp -r "$S" "$T/tampered"
	mdb_dump -s blobs "$T/tampered" >"$T/blobs.dump"
	# value lines follow key lines after HEADER=END; change one hex digit of the first value
	awk 'BEGIN{h=1} h && /^HEADER=END/ {h=0; print; next} h {print; next}
	     !done && n==1 {c=substr($0,length($0)-4,1); r=(c=="0")?"1":"0";
	                    $0=substr($0,1,length($0)-5) r substr($0,length($0)-3); done=1}
	     {n++; print}' "$T/blobs.dump" >"$T/blobs.bad"
	cmp -s "$T/blobs.dump" "$T/blobs.bad" && fail "the LMDB tamper changed nothing"
	mdb_load -s blobs -f "$T/blobs.bad" "$T/tampered" 2>/dev/null
	expect 1 "verify a store with a flipped blob byte" "$AF" verify --store "$T/tampered" --keyring "$KR"
	contains "$T/out" "FAIL  " "the damaged artifact is named"
	contains "$T/out" "ok    " "the other artifacts still verify"
	lacks "$T/out" "3 verified" "the damage is not missed"
	grep -F "FAIL  " "$T/out" | head -1
else
	echo "note: lmdb-utils missing, LMDB tamper check skipped"
fi

echo "$((checks - failures))/$checks checks passed"
[ "$failures" -eq 0 ]
