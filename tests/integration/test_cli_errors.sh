#!/usr/bin/env bash
# test_cli_errors.sh - every command and subcommand of `agentfactory` and
# `agentfactory-runtime` through its edges: --help and -h (exit 0, usage on
# stdout naming the options and the exit codes), unknown options, missing and
# extra arguments (exit 2, the message names the option and points at
# --help, nothing on stdout), missing, unreadable or corrupt inputs (keyring,
# key, store, bundle, repository, policies), refusals (exit 1, the state
# unchanged), --json output shapes, the environment fallbacks (AF_STORE,
# AF_KEYRING, AF_BUILDER_KEY, AF_ROOT_KEY, AF_CHANNEL, AF_AUDIT_CHECKPOINTS)
# and the runtime's option validation, startup refusals and token commands.
# Exit codes are checked against what each --help documents.
#
# One small fixture store (tests/integration/lib/fixture_store.sh: two
# builds of one agent) is built once; everything else reuses it or copies.
#
# Env: AF, AF_RUNTIME = the binaries, AF_SRCDIR = the source tree.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
RT=${AF_RUNTIME:?AF_RUNTIME must point at the agentfactory-runtime binary}
SRC=${AF_SRCDIR:?AF_SRCDIR must point at the source tree}
T=$(mktemp -d /tmp/af-cli-errors.XXXXXX)
PIDS=()
# shellcheck source=tests/lib/procs.sh
. "$SRC/tests/lib/procs.sh"
cleanup() {
	stop_pids "${PIDS[@]}"
	rm -rf "$T"
}
trap cleanup EXIT
unset AF_STORE AF_KEYRING AF_BUILDER_KEY AF_CHANNEL AF_AUDIT_CHECKPOINTS AF_SOURCE AF_NOW \
	AF_LLM_PROVIDER AF_ROOT_KEY

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
show() { sed 's/^/    stdout: /' "$T/out" >&2; sed 's/^/    stderr: /' "$T/err" >&2; }
# expect WANT_RC DESCRIPTION CMD... - stdout in $T/out, stderr in $T/err;
# stdin from $STDIN (default /dev/null: nothing waits on a terminal)
expect() {
	local want=$1 desc=$2 rc=0
	shift 2
	checks=$((checks + 1))
	"$@" <"${STDIN:-/dev/null}" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want: $*"
		show
	fi
}
# contains FILE TEXT DESCRIPTION / lacks FILE TEXT DESCRIPTION
contains() {
	checks=$((checks + 1))
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1" >&2; }
}
lacks() {
	checks=$((checks + 1))
	! grep -qF -- "$2" "$1" || { fail "$3: '$2' found in $(basename "$1")"; sed 's/^/    /' "$1" >&2; }
}
empty() { # FILE DESCRIPTION
	checks=$((checks + 1))
	[ ! -s "$1" ] || { fail "$2: $(basename "$1") not empty"; sed 's/^/    /' "$1" >&2; }
}
# usage_err DESCRIPTION NEEDLE CMD...: exit 2, NEEDLE and the --help pointer
# on stderr, nothing on stdout
usage_err() {
	local desc=$1 needle=$2 words ptr
	shift 2
	expect 2 "$desc" "$@"
	contains "$T/err" "$needle" "$desc: names the problem"
	contains "$T/err" "--help' for usage" "$desc: points at --help"
	empty "$T/out" "$desc: stdout"
	# the message and the pointer name the command that was run (e.g.
	# 'audit verify', never the other command 'verify')
	words=$(cmd_words "$@")
	ptr=$(sed -n "s/^Run 'agentfactory \(.*\) --help' for usage\.\$/\1/p" "$T/err")
	checks=$((checks + 1))
	case "$words " in
	"$ptr "*) ;;
	*) fail "$desc: the --help pointer names '$ptr', the command was '$words'" ;;
	esac
	contains "$T/err" "agentfactory $ptr: " "$desc: the message names the command"
}
# the command words after $AF: at most two, up to the first option
cmd_words() {
	local seen=0 a w=()
	for a; do
		if [ "$seen" = 1 ]; then
			case $a in -*) break ;; esac
			w+=("$a")
			[ "${#w[@]}" = 2 ] && break
		elif [ "$a" = "$AF" ]; then
			seen=1
		fi
	done
	echo "${w[*]}"
}
# fails RC DESCRIPTION NEEDLE CMD...: exit RC with NEEDLE on stderr, no stdout
fails() {
	local want=$1 desc=$2 needle=$3
	shift 3
	expect "$want" "$desc" "$@"
	contains "$T/err" "$needle" "$desc: names the problem"
	empty "$T/out" "$desc: stdout"
}
# jcheck FILE PYTHON-EXPR DESCRIPTION: the file parses as JSON (as d) and
# the expression holds
jcheck() {
	checks=$((checks + 1))
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>>"$T/jerr" ||
		{ fail "$3: JSON check failed: $2"; sed 's/^/    /' "$1" | head -40 >&2; }
}
same() { # FILE1 FILE2 DESCRIPTION
	checks=$((checks + 1))
	cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"
}
# help_ok CMD... -- OPTION...: --help and -h exit 0, the same usage on
# stdout naming every OPTION and the exit codes, nothing on stderr
help_ok() {
	local cmd=() o
	while [ "$1" != "--" ]; do cmd+=("$1"); shift; done
	shift
	expect 0 "${cmd[*]} --help" "${cmd[@]}" --help
	contains "$T/out" "usage: " "${cmd[*]} --help prints usage"
	contains "$T/out" "exit codes" "${cmd[*]} --help lists the exit codes"
	empty "$T/err" "${cmd[*]} --help: stderr"
	for o in "$@"; do contains "$T/out" "$o" "${cmd[*]} --help names $o"; done
	cp "$T/out" "$T/help"
	expect 0 "${cmd[*]} -h" "${cmd[@]}" -h
	same "$T/out" "$T/help" "${cmd[*]} -h prints the --help text"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- the fixture: keys, keyrings, a repository, a store with 2 releases ----
# shellcheck source=tests/integration/lib/fixture_store.sh
. "$SRC/tests/integration/lib/fixture_store.sh"
fixture_store "$T/fx" || { echo "cannot build the fixture store" >&2; exit 1; }
# fixture_store exports these; the tests below set them where meant (the
# policy directory is found from the binary's place: <src>/build/<config>/bin)
unset AF_ROOT_KEY AF_POLICIES
KR=$FX_KEYRING S=$FX_STORE REPO="$T/fx/repo" RMK=$FX_RM_KEY
ROOTK="$T/fx/keys/root/root.key" BK="$T/fx/keys/b/builder.key" TSK="$T/fx/keys/ts/template-signer.key"
POL="$SRC/policies"
printf 'not a key\n' >"$T/garbage.pem"
printf '{"not": "a keyring"\n' >"$T/corrupt.json"
: >"$T/afile"
# a damaged store: data.mdb cut short
mkdir "$T/damaged" && head -c 12288 "$S/data.mdb" >"$T/damaged/data.mdb"

# --- the dispatcher ------------------------------------------------------------
expect 2 "no command" "$AF"
contains "$T/err" "usage: agentfactory" "no command: usage on stderr"
empty "$T/out" "no command: stdout"
for h in --help -h help; do
	expect 0 "agentfactory $h" "$AF" "$h"
	for c in keygen trust sign check resolve build run ls inspect verify export import push \
		pull verify-reproducible release promote rollback channel status audit hooks; do
		contains "$T/out" "  $c " "agentfactory $h lists $c"
	done
	contains "$T/out" "Exit codes" "agentfactory $h: exit codes"
done
for v in --version version; do
	expect 0 "agentfactory $v" "$AF" "$v"
	contains "$T/out" "agentfactory " "agentfactory $v prints the version"
done
expect 2 "unknown command" "$AF" frobnicate
contains "$T/err" "unknown command 'frobnicate'" "unknown command named"
contains "$T/err" "usage: agentfactory" "unknown command: usage on stderr"

# --- --help of every command names its options -----------------------------------
help_ok "$AF" keygen -- --role --out --bits --force
help_ok "$AF" trust -- init add revoke threshold renew verify list --keyring --root-key --role \
	--not-before --not-after --expires --threshold --reason --previous --json --store
help_ok "$AF" sign -- --key --keyring
help_ok "$AF" check -- --repo --rev --keyring --policies --dir --json --store
expect 0 "resolve --help" "$AF" resolve --help
contains "$T/out" "usage: agentfactory resolve" "resolve --help"
help_ok "$AF" build -- --repo --rev --keyring --builder-key --store --jobs --policies --dir \
	--keep-workdir --builder-id --source-uri --all-or-nothing --json --metrics-file
help_ok "$AF" run -- --store --keyring --input --input-file --data --kv-set --timeout-ms \
	--memory-pages --log --channel --llm-provider --llm-record
help_ok "$AF" ls -- --store --json
help_ok "$AF" inspect -- --store --keyring --json --provenance --statement --sbom
help_ok "$AF" verify -- --store --keyring --json
help_ok "$AF" export -- --store --out --signatures
help_ok "$AF" import -- --store --keyring --signatures
help_ok "$AF" push -- --store --release --channel --mount-from --username --password \
	--password-stdin --auth-file --ca-file --plain-http --allow-redirect --timeout --json --quiet
help_ok "$AF" pull -- --store --keyring --channel --release --min-threshold
help_ok "$AF" verify-reproducible -- --repo --rev --keyring --builder-key --store --bundle \
	--signatures --policies --dir --source-uri --builder-id --json
help_ok "$AF" release -- create --store --keyring --key --expires --all --from --json
help_ok "$AF" release create -- --store --keyring --key --expires --all --from --json
help_ok "$AF" promote -- --store --keyring --key --channel --release --json
help_ok "$AF" rollback -- --store --keyring --key --channel --to --json
help_ok "$AF" channel -- set-threshold history --store --keyring --key --channel --threshold --json
help_ok "$AF" channel history -- --store --channel --json
help_ok "$AF" status -- --store --keyring --json
help_ok "$AF" audit -- log verify checkpoint --store --keyring --checkpoint --key --out --json
help_ok "$AF" audit verify -- --checkpoint --keyring
help_ok "$AF" hooks -- install audit --repo --keyring --policies --store --builder-key --dir \
	--branches --jobs --wait --max-file-size --allow-force-push --force
help_ok "$AF" hooks install -- --repo --keyring
help_ok "$AF" hooks audit -- --store --ref --rev --reason
for sub in init add revoke threshold renew verify list; do
	expect 0 "trust $sub --help" "$AF" trust "$sub" --help
	contains "$T/out" "usage: agentfactory trust" "trust $sub --help"
done
expect 0 "trust help" "$AF" trust help
contains "$T/out" "usage: agentfactory trust" "trust help"

# --- unknown options: exit 2, the option named --------------------------------
for c in keygen sign check resolve build run ls inspect verify export import push pull \
	verify-reproducible promote rollback status; do
	usage_err "$c --no-such-flag" "'--no-such-flag'" "$AF" "$c" --no-such-flag
done
for c in "trust list" "trust add" "release create" "channel history" "channel set-threshold" \
	"audit log" "audit verify" "audit checkpoint" "hooks install" "hooks audit"; do
	# shellcheck disable=SC2086
	usage_err "$c --no-such-flag" "'--no-such-flag'" "$AF" $c --no-such-flag
done
# an option that needs a value, given none
usage_err "ls --store (no value)" "'--store'" "$AF" ls --store
usage_err "build -j (no value)" "'-j'" "$AF" build -j
# an option another command owns
usage_err "ls --keyring" "option '--keyring' does not apply here" "$AF" ls --store "$S" --keyring "$KR"
usage_err "status --key" "option '--key' does not apply here" "$AF" status --store "$S" --key "$RMK"
usage_err "audit log --checkpoint" "option '--checkpoint' does not apply here" "$AF" audit log --store "$S" --checkpoint x
# subcommand dispatchers
for c in trust release channel audit; do
	usage_err "$c without a subcommand" "a subcommand is required" "$AF" "$c"
	usage_err "$c bogus" "unknown subcommand 'bogus'" "$AF" "$c" bogus
done
expect 2 "hooks without a subcommand" "$AF" hooks
contains "$T/err" "usage: agentfactory hooks" "hooks alone: usage on stderr"
usage_err "hooks bogus" "unknown subcommand 'bogus'" "$AF" hooks bogus

# --- keygen --------------------------------------------------------------------------
usage_err "keygen without --role" "--role ROLE is required" "$AF" keygen --out "$T/k"
usage_err "keygen bad role" "unknown role 'admin'" "$AF" keygen --role admin --out "$T/k"
usage_err "keygen without --out" "--out DIR is required" "$AF" keygen --role builder
for b in 1024 abc -2048 99999 ""; do
	usage_err "keygen --bits '$b'" "--bits must be a number from 2048" "$AF" keygen --role builder --out "$T/k" --bits "$b"
done
usage_err "keygen extra argument" "unexpected argument 'extra'" "$AF" keygen --role builder --out "$T/k" extra
usage_err "keygen --out too long" "--out path is too long" "$AF" keygen --role builder --out "$(printf 'd%.0s' $(seq 4100))"
expect 0 "keygen" "$AF" keygen --role builder --out "$T/k/sub"
checks=$((checks + 1))
grep -qxE '[0-9a-f]{64}' "$T/out" || fail "keygen prints a 64-hex key id"
contains "$T/err" "trust add --keyring KEYRING --role builder" "keygen says how to trust the key"
checks=$((checks + 1))
[ "$(stat -c %a "$T/k/sub/builder.key")" = 600 ] && [ "$(stat -c %a "$T/k/sub")" = 700 ] ||
	fail "keygen: private key 0600 in a 0700 directory"
old_id=$(cat "$T/out") old_sum=$(sha "$T/k/sub/builder.key")
fails 1 "keygen over an existing key" "already exists: refusing to overwrite" \
	"$AF" keygen --role builder --out "$T/k/sub"
contains "$T/err" "--force" "keygen refusal names --force"
checks=$((checks + 1))
[ "$(sha "$T/k/sub/builder.key")" = "$old_sum" ] || fail "refused keygen changed the key"
rm "$T/k/sub/builder.key"
fails 1 "keygen over an existing public key" "builder.pub already exists" \
	"$AF" keygen --role builder --out "$T/k/sub"
expect 0 "keygen --force" "$AF" keygen --role builder --out "$T/k/sub" --force --bits 2048
checks=$((checks + 1))
[ "$(cat "$T/out")" != "$old_id" ] || fail "keygen --force wrote the same key"
fails 2 "keygen --out under a file" "cannot create directory" "$AF" keygen --role root --out "$T/afile/sub"
fails 2 "keygen --out is a file" "not a directory" "$AF" keygen --role root --out "$T/afile"
fails 2 "keygen --out ''" "invalid directory" "$AF" keygen --role root --out ""

# --- trust ---------------------------------------------------------------------------
K2="$T/kr2.json"
cp "$KR" "$K2"
BPUB="$T/k/sub/builder.pub" # a key the keyring does not have
usage_err "trust add without --root-key" "--root-key KEY (or AF_ROOT_KEY) is required" \
	"$AF" trust add --keyring "$K2" --role builder "$BPUB"
usage_err "trust add without a keyring" "--keyring FILE (or AF_KEYRING) is required" \
	"$AF" trust add --root-key "$ROOTK" --role builder "$BPUB"
usage_err "trust add without PUBKEY" "expected exactly one PUBKEY" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder
usage_err "trust add two PUBKEYs" "expected exactly one PUBKEY" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder "$BPUB" "$BPUB"
usage_err "trust add without --role" "--role ROLE is required" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" "$BPUB"
usage_err "trust add bad role" "unknown role 'signer'" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role signer "$BPUB"
usage_err "trust add bad --not-before" "add:" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --not-before yesterday "$BPUB"
usage_err "trust add bad --not-after" "add:" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --not-after soon "$BPUB"
usage_err "trust add --not-after before --not-before" "--not-after must be later" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --not-before +2d --not-after +1d "$BPUB"
usage_err "trust add --reason" "--reason belongs to 'trust revoke'" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --reason x "$BPUB"
usage_err "trust add --json" "--json belongs to 'trust list'" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --json "$BPUB"
usage_err "trust add --previous" "--previous belongs to 'trust verify'" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --previous x "$BPUB"
usage_err "trust add --threshold" "--threshold belongs to 'trust init' and 'trust threshold'" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder --threshold 1 "$BPUB"
usage_err "trust revoke --role" "--role, --not-before and --not-after belong to 'trust add'" \
	"$AF" trust revoke --keyring "$K2" --root-key "$ROOTK" --role builder x
usage_err "trust list --root-key" "belong to the commands that sign" \
	"$AF" trust list --keyring "$K2" --root-key "$ROOTK"
usage_err "trust verify --expires" "belong to the commands that sign" \
	"$AF" trust verify --keyring "$K2" --expires +1d
for t in 0 x 17 1x; do
	usage_err "trust threshold --threshold $t" "--threshold must be 1 to" \
		"$AF" trust threshold --keyring "$K2" --root-key "$ROOTK" --threshold "$t"
done
many=()
for i in $(seq 17); do many+=(--root-key "$ROOTK"); done
usage_err "trust renew with 17 root keys" "at most 16 --root-key" \
	"$AF" trust renew --keyring "$K2" "${many[@]}"
usage_err "trust threshold without --threshold" "threshold: --threshold K is required" \
	"$AF" trust threshold --keyring "$K2" --root-key "$ROOTK"
for sub in init threshold renew; do
	usage_err "trust $sub extra argument" "unexpected argument 'extra'" \
		"$AF" trust "$sub" --keyring "$K2" --root-key "$ROOTK" extra
done
for sub in verify list; do
	usage_err "trust $sub extra argument" "unexpected argument 'extra'" "$AF" trust "$sub" --keyring "$K2" extra
done
usage_err "trust revoke without KEYID" "expected exactly one KEYID" \
	"$AF" trust revoke --keyring "$K2" --root-key "$ROOTK"
# inputs that cannot be read or are not what they claim
k2_sum=$(sha "$K2")
fails 2 "trust add: PUBKEY missing" "$T/none.pub" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder "$T/none.pub"
fails 2 "trust add: PUBKEY not a key" "garbage.pem: no PEM public key found" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder "$T/garbage.pem"
fails 2 "trust add: root key missing" "none.key" \
	"$AF" trust add --keyring "$K2" --root-key "$T/none.key" --role builder "$BPUB"
fails 2 "trust add: root key not a key" "garbage.pem: no PEM private key found" \
	"$AF" trust add --keyring "$K2" --root-key "$T/garbage.pem" --role builder "$BPUB"
fails 2 "trust add: keyring directory missing" "cannot open the keyring's directory" \
	"$AF" trust add --keyring "$T/nodir/kr.json" --root-key "$ROOTK" --role builder "$BPUB"
fails 2 "trust add: corrupt keyring" "corrupt.json" \
	"$AF" trust add --keyring "$T/corrupt.json" --root-key "$ROOTK" --role builder "$BPUB"
fails 1 "trust add: key already trusted" "$K2" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder "$T/fx/keys/b/builder.pub"
fails 1 "trust add: signed by a key that is not a root" "not written" \
	"$AF" trust add --keyring "$K2" --root-key "$BK" --role builder "$BPUB"
checks=$((checks + 1))
[ "$(sha "$K2")" = "$k2_sum" ] || fail "refused trust changes modified the keyring"
# the refusals are audited with --store
AS="$T/audit-store"
expect 1 "trust add refused, audited" "$AF" trust add --keyring "$K2" --root-key "$ROOTK" \
	--role builder --store "$AS" "$T/fx/keys/b/builder.pub"
expect 0 "audit log of the refusal" "$AF" audit log --store "$AS" --json
jcheck "$T/out" 'd[-1]["action"]=="trust.add" and d[-1]["outcome"]=="refused"' "trust add refusal audited"
# successful changes, AF_KEYRING and AF_ROOT_KEY standing in for the flags
expect 0 "trust add (env)" env AF_KEYRING="$K2" AF_ROOT_KEY="$ROOTK" "$AF" trust add \
	--role builder --not-before -1d --not-after +30d --store "$AS" "$BPUB"
new_id=$(cat "$T/out")
contains "$T/err" "trusted key $new_id as builder" "trust add says what it did"
contains "$T/err" " until " "trust add prints the --not-after"
expect 0 "trust list (env)" env AF_KEYRING="$K2" "$AF" trust list
contains "$T/out" "$new_id" "trust list shows the new key"
contains "$T/out" "KEY ID" "trust list header"
expect 0 "trust list --json" "$AF" trust list --keyring "$K2" --json
jcheck "$T/out" 'd["keyring"].endswith("kr2.json") and all(k["status"]=="valid" for k in d["keys"]) and {k["role"] for k in d["keys"]}>={"root","builder","template-signer","release-manager"} and d["revoked"]==[]' "trust list --json shape"
jcheck "$T/out" '[k["not_after"] for k in d["keys"] if k["id"]=="'"$new_id"'"][0] is not None and all(k["bits"]>=2048 for k in d["keys"])' "trust list --json: not_after and bits"
fails 2 "trust list: missing keyring" "no such keyring file" "$AF" trust list --keyring "$T/none.json"
expect 2 "trust revoke: malformed KEYID" "$AF" trust revoke --keyring "$K2" --root-key "$ROOTK" not-hex
contains "$T/err" "not-hex" "malformed KEYID named"
expect 1 "trust revoke: unknown KEYID" "$AF" trust revoke --keyring "$K2" --root-key "$ROOTK" \
	--store "$AS" "$(printf '0%.0s' $(seq 64))"
fails 2 "trust revoke: missing keyring" "no such keyring file" \
	"$AF" trust revoke --keyring "$T/none.json" --root-key "$ROOTK" "$new_id"
expect 0 "trust revoke" "$AF" trust revoke --keyring "$K2" --root-key "$ROOTK" --reason "lost laptop" \
	--store "$AS" "$new_id"
contains "$T/out" "revoked $new_id" "trust revoke output"
expect 0 "trust list --json after revoke" "$AF" trust list --keyring "$K2" --json
jcheck "$T/out" 'd["revoked"][0]["id"]=="'"$new_id"'" and d["revoked"][0]["reason"]=="lost laptop" and [k["status"] for k in d["keys"] if k["id"]=="'"$new_id"'"]==["revoked"]' "revoked key listed"
expect 0 "trust list text after revoke" "$AF" trust list --keyring "$K2"
contains "$T/out" "revoked $new_id at" "trust list text shows the revocation"
expect 1 "trust revoke twice" "$AF" trust revoke --keyring "$K2" --root-key "$ROOTK" "$new_id"
fails 1 "trust add a revoked key" "$K2" \
	"$AF" trust add --keyring "$K2" --root-key "$ROOTK" --role builder "$BPUB"
# threshold, renew, init, verify
cp "$K2" "$T/kr2-old.json"
# a threshold no set of the keyring's roots can meet: a caller mistake
fails 2 "trust threshold 2 with one root key" "needs 2 root signatures but trusts only 1" \
	"$AF" trust threshold --keyring "$K2" --root-key "$ROOTK" --threshold 2
usage_err "trust renew --expires in the past" "--expires must be in the future" \
	"$AF" trust renew --keyring "$K2" --root-key "$ROOTK" --expires -1d
usage_err "trust renew --expires garbage" "renew: --expires" \
	"$AF" trust renew --keyring "$K2" --root-key "$ROOTK" --expires never
expect 0 "trust renew" "$AF" trust renew --keyring "$K2" --root-key "$ROOTK" --expires +90d --store "$AS"
contains "$T/err" "is now keyring version" "trust renew output"
expect 0 "trust threshold 1" "$AF" trust threshold --keyring "$K2" --root-key "$ROOTK" --threshold 1
expect 0 "trust verify" "$AF" trust verify --keyring "$K2"
contains "$T/out" "ok $K2 version" "trust verify output"
contains "$T/out" "root threshold 1" "trust verify names the threshold"
expect 0 "trust verify --previous" "$AF" trust verify --keyring "$K2" --previous "$T/kr2-old.json"
fails 1 "trust verify: an older version as successor" "" \
	"$AF" trust verify --keyring "$T/kr2-old.json" --previous "$K2"
fails 2 "trust verify: missing keyring" "no such keyring file" "$AF" trust verify --keyring "$T/none.json"
fails 2 "trust verify: missing --previous" "no such keyring file" \
	"$AF" trust verify --keyring "$K2" --previous "$T/none.json"
fails 2 "trust verify: corrupt keyring" "corrupt.json" "$AF" trust verify --keyring "$T/corrupt.json"
python3 - "$K2" "$T/tampered.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["signed"]["root_threshold"] = 1
d["signed"]["version"] += 5
json.dump(d, open(sys.argv[2], "w"))
PY
fails 1 "trust verify: tampered keyring" "tampered.json" "$AF" trust verify --keyring "$T/tampered.json"
fails 1 "trust init on a signed keyring" "already a signed keyring" \
	"$AF" trust init --keyring "$K2" --root-key "$ROOTK"
expect 0 "trust init a new keyring" "$AF" trust init --keyring "$T/new.json" --root-key "$ROOTK" --threshold 1 --store "$AS"
contains "$T/err" "as keyring version 1" "trust init output"
# an unsigned (v1) keyring: changes refused until it is signed with trust init
python3 - "$KR" "$T/unsigned.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["signed"]
json.dump({"format": "agentfactory-keyring/v1", "keys": d["keys"], "revoked": d.get("revoked", [])},
          open(sys.argv[2], "w"))
PY
fails 1 "trust add to an unsigned keyring" "trust init --keyring" \
	"$AF" trust add --keyring "$T/unsigned.json" --root-key "$ROOTK" --role builder "$BPUB"
expect 0 "trust init migrates an unsigned keyring" "$AF" trust init --keyring "$T/unsigned.json" --root-key "$ROOTK"
expect 0 "trust verify the migrated keyring" "$AF" trust verify --keyring "$T/unsigned.json"
# a change audited into a store that cannot be written
fails 2 "trust renew: audit store is a file" "audit entry not recorded" \
	"$AF" trust renew --keyring "$K2" --root-key "$ROOTK" --store "$T/afile"

# --- sign ----------------------------------------------------------------------------
W="$T/sign"
mkdir -p "$W"
cp "$REPO/templates/senior-reviewer.yaml" "$W/good.yaml"
printf 'name: [unclosed\n' >"$W/bad.yaml"
printf 'description: no name or version\n' >"$W/noname.yaml"
printf 'name: x\nversion: 1.0\n' >"$W/numver.yaml"
usage_err "sign without --key" "--key KEY is required" "$AF" sign "$W/good.yaml"
usage_err "sign without FILE" "no FILE to sign" "$AF" sign --key "$TSK"
fails 2 "sign: key missing" "none.key" "$AF" sign --key "$T/none.key" "$W/good.yaml"
fails 2 "sign: key not a key" "garbage.pem" "$AF" sign --key "$T/garbage.pem" "$W/good.yaml"
fails 2 "sign: keyring missing" "none.json" "$AF" sign --key "$TSK" --keyring "$T/none.json" "$W/good.yaml"
expect 2 "sign: file missing" "$AF" sign --key "$TSK" "$W/none.yaml"
contains "$T/err" "none.yaml" "sign: missing file named"
expect 2 "sign: not YAML" "$AF" sign --key "$TSK" "$W/bad.yaml"
contains "$T/err" "bad.yaml: not signed: the file does not parse" "sign: parse error named"
expect 2 "sign: no name/version" "$AF" sign --key "$TSK" "$W/noname.yaml"
contains "$T/err" "needs top-level string fields 'name' and 'version'" "sign: missing fields explained"
expect 2 "sign: numeric version" "$AF" sign --key "$TSK" "$W/numver.yaml"
contains "$T/err" "quote a version" "sign: numeric version explained"
expect 2 "sign: a directory" "$AF" sign --key "$TSK" "$W"
expect 2 "sign: path too long" "$AF" sign --key "$TSK" "$(printf 'p%.0s' $(seq 4094))"
contains "$T/err" "path too long" "sign: long path"
expect 1 "sign with a key the keyring does not trust for templates" \
	"$AF" sign --key "$BK" --keyring "$KR" "$W/good.yaml"
contains "$T/err" "the keyring would reject this signature" "sign: keyring refusal explained"
checks=$((checks + 1))
[ ! -e "$W/good.yaml.sig" ] || fail "refused sign wrote a signature"
# several files: each one is tried, the worst outcome wins
expect 2 "sign good and bad files" "$AF" sign --key "$TSK" --keyring "$KR" "$W/good.yaml" "$W/bad.yaml"
contains "$T/out" "signed $W/good.yaml (senior-reviewer@1.1.0) with key" "sign output"
checks=$((checks + 1))
[ -s "$W/good.yaml.sig" ] || fail "sign: the good file was not signed"

# --- check and resolve -------------------------------------------------------------------
usage_err "check without --repo" "--repo DIR is required" "$AF" check --keyring "$KR"
usage_err "check without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" check --repo "$REPO"
usage_err "check extra argument" "unexpected argument 'x'" "$AF" check --repo "$REPO" --keyring "$KR" x
fails 2 "check: missing keyring" "none.json" "$AF" check --repo "$REPO" --keyring "$T/none.json"
fails 2 "check: corrupt keyring" "corrupt.json" "$AF" check --repo "$REPO" --keyring "$T/corrupt.json"
expect 2 "check: missing policies" "$AF" check --repo "$REPO" --keyring "$KR" --policies "$T/nopol"
contains "$T/err" "cannot load policies from $T/nopol" "check: policies dir named"
mkdir -p "$T/badpol" && printf 'rules: [\n' >"$T/badpol/broken.yaml"
expect 2 "check: broken policy" "$AF" check --repo "$REPO" --keyring "$KR" --policies "$T/badpol"
contains "$T/err" "broken.yaml" "check: broken policy file named"
expect 2 "check: missing repository" "$AF" check --repo "$T/norepo" --keyring "$KR"
contains "$T/err" "norepo" "check: missing repo named"
expect 2 "check: unknown revision" "$AF" check --repo "$REPO" --rev no-such-rev --keyring "$KR"
contains "$T/err" "no-such-rev" "check: unknown rev named"
expect 0 "check (env keyring and policies)" env AF_KEYRING="$KR" AF_POLICIES="$POL" "$AF" check --repo "$REPO"
contains "$T/out" "3 of 3 templates verified and policy-clean" "check text summary"
expect 0 "check --json --store" "$AF" check --repo "$REPO" --rev HEAD~1 --keyring "$KR" --json --store "$AS"
jcheck "$T/out" 'd["ok"] is True and d["rev"]=="HEAD~1" and len(d["commit"])==40 and len(d["templates"])==3 and all(t["verified"] and t["policy_clean"] for t in d["templates"]) and d["findings"]==[]' "check --json shape"
jcheck "$T/out" '[t["version"] for t in d["templates"] if t["name"]=="senior-reviewer"]==["1.0.0"]' "check --json at HEAD~1"
expect 0 "audit log after check" "$AF" audit log --store "$AS" --json
jcheck "$T/out" 'd[-1]["action"]=="check" and d[-1]["outcome"]=="ok" and d[-1]["details"]["templates"]==3' "check audited"
# a plain folder with an edited (so unsigned) template: findings
cp -r "$REPO/templates" "$T/plain"
printf '# edited\n' >>"$T/plain/senior-reviewer.yaml"
expect 1 "check: edited template" "$AF" check --repo "$T/plain" --keyring "$KR"
contains "$T/out" "FAIL" "check marks the edited template"
contains "$T/out" "senior-reviewer.yaml" "check names the edited template"
expect 1 "check --json: edited template" "$AF" check --repo "$T/plain" --keyring "$KR" --json
jcheck "$T/out" 'd["ok"] is False and d["commit"] is None and len(d["findings"])>0 and any(not t["ok"] for t in d["templates"])' "check --json findings"
expect 2 "check: audit store is a file" "$AF" check --repo "$REPO" --keyring "$KR" --store "$T/afile"
contains "$T/err" "audit entry not recorded" "check: audit failure explained"
usage_err "resolve without NAME" "exactly one template NAME" "$AF" resolve --repo "$REPO"
usage_err "resolve two NAMEs" "exactly one template NAME" "$AF" resolve --repo "$REPO" a b
usage_err "resolve without --repo" "--repo DIR is required" "$AF" resolve senior-reviewer
fails 1 "resolve unknown NAME" "no template named 'nobody'" "$AF" resolve --repo "$REPO" --keyring "$KR" nobody
expect 0 "resolve without keyring" "$AF" resolve --repo "$REPO" senior-reviewer
contains "$T/err" "signatures NOT verified" "resolve without keyring says so"
jcheck "$T/out" 'd["name"]=="senior-reviewer" and d["version"]=="1.1.0"' "resolve prints the resolved template"
expect 0 "resolve with keyring" "$AF" resolve --repo "$REPO" --keyring "$KR" senior-reviewer
lacks "$T/err" "NOT verified" "resolve with keyring"
contains "$T/err" "senior-reviewer@1.1.0 " "resolve prints name@version and digest"
fails 1 "resolve a template with findings" "has findings" \
	"$AF" resolve --repo "$T/plain" --keyring "$KR" senior-reviewer

# the default policy directory: <prefix>/share/agentfactory/policies beside
# an installed binary; without one the error names where it looked
mkdir -p "$T/prefix/bin" "$T/prefix/share/agentfactory" "$T/bare-prefix/bin"
cp "$AF" "$T/prefix/bin/agentfactory" && cp "$AF" "$T/bare-prefix/bin/agentfactory"
cp -r "$POL" "$T/prefix/share/agentfactory/policies"
expect 0 "check: installed binary finds its policies" "$T/prefix/bin/agentfactory" check --repo "$REPO" --keyring "$KR"
expect 2 "check: installed binary without policies" "$T/bare-prefix/bin/agentfactory" check --repo "$REPO" --keyring "$KR"
contains "$T/err" "cannot load policies from $T/bare-prefix/bin/../share/agentfactory/policies" \
	"check: the missing default policy folder named"

# --- build (no compile: cache hits and refusals only) ------------------------------------
usage_err "build -j 0" "-j needs a number from 1 to 256, not '0'" "$AF" build -j 0
usage_err "build -j 300" "-j needs a number from 1 to 256" "$AF" build --jobs 300
usage_err "build -j x" "not 'x'" "$AF" build -j x
usage_err "build extra argument" "unexpected argument 'extra'" "$AF" build --repo "$REPO" extra
usage_err "build without --repo" "--repo DIR is required" "$AF" build
usage_err "build without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" build --repo "$REPO"
usage_err "build without builder key" "--builder-key KEY (or AF_BUILDER_KEY) is required" \
	"$AF" build --repo "$REPO" --keyring "$KR"
usage_err "build without store" "--store DIR (or AF_STORE) is required" \
	"$AF" build --repo "$REPO" --keyring "$KR" --builder-key "$BK"
fails 2 "build: missing keyring" "none.json" \
	"$AF" build --repo "$REPO" --keyring "$T/none.json" --builder-key "$BK" --store "$T/bs"
fails 2 "build: missing builder key" "none.key" \
	"$AF" build --repo "$REPO" --keyring "$KR" --builder-key "$T/none.key" --store "$T/bs"
expect 2 "build: missing policies" "$AF" build --repo "$REPO" --keyring "$KR" --builder-key "$BK" \
	--store "$T/bs" --policies "$T/nopol"
contains "$T/err" "cannot load policies from $T/nopol" "build: policies named"
expect 2 "build: store is a file" "$AF" build --repo "$REPO" --keyring "$KR" --builder-key "$BK" --store "$T/afile"
contains "$T/err" "afile" "build: bad store named"
expect 3 "build: damaged store" "$AF" build --repo "$REPO" --keyring "$KR" --builder-key "$BK" --store "$T/damaged"
contains "$T/err" "damaged" "build: damaged store said"
S2="$T/s2"
cp -a "$S" "$S2"
expect 0 "build (env; cache hit)" env AF_KEYRING="$KR" AF_BUILDER_KEY="$BK" AF_STORE="$S2" \
	"$AF" build --repo "$REPO" --json --metrics-file "$T/build.prom" -j 1
jcheck "$T/out" 'd["ok"] is True and d["built"]==0 and d["failed"]==0 and d["stored"] in (True, False) and d["jobs"]==1 and [a["status"] for a in d["agents"]]==["cached"] and d["agents"][0]["name"]=="senior-reviewer" and len(d["commit"])==40' "build --json shape"
contains "$T/build.prom" 'agentfactory_build_agents{result="cached"} 1' "build metrics: cache hit"
contains "$T/build.prom" "agentfactory_build_success 1" "build metrics: success"
contains "$T/build.prom" 'agentfactory_build_stage_seconds{stage="wasm2c"}' "build metrics: stages"
expect 0 "build text (cache hit)" "$AF" build --repo "$REPO" --keyring "$KR" --builder-key "$BK" --store "$S2"
contains "$T/out" "cached  senior-reviewer@1.1.0" "build text lists the cached agent"
contains "$T/out" "0 built, 1 unchanged" "build text summary"
expect 2 "build: metrics file in a missing folder" "$AF" build --repo "$REPO" --keyring "$KR" \
	--builder-key "$BK" --store "$S2" --metrics-file "$T/nodir/m.prom"
contains "$T/err" "--metrics-file $T/nodir/m.prom" "build: metrics failure names the file"
# the provenance options are not part of the cache key: still a cache hit
expect 0 "build: --dir, --builder-id, --source-uri" "$AF" build --repo "$REPO" --rev HEAD \
	--dir templates --keyring "$KR" --builder-key "$BK" --store "$S2" --builder-id https://example.invalid/other \
	--source-uri https://example.invalid/repo.git --keep-workdir
contains "$T/out" "cached  senior-reviewer@1.1.0" "build: cache hit whatever the provenance options"
# front-end findings: nothing is built
git init -q "$T/badrepo"
cp -r "$T/plain" "$T/badrepo/templates"
git -C "$T/badrepo" add -A && git -C "$T/badrepo" commit -qm edited
expect 1 "build: front-end findings" "$AF" build --repo "$T/badrepo" --keyring "$KR" --builder-key "$BK" \
	--store "$T/bs" --metrics-file "$T/bad.prom"
contains "$T/out" "senior-reviewer.yaml" "build findings name the template"
contains "$T/bad.prom" "agentfactory_build_success 0" "build metrics: failure"
expect 1 "build --json: front-end findings" "$AF" build --repo "$T/badrepo" --keyring "$KR" --builder-key "$BK" \
	--store "$T/bs" --json --all-or-nothing
jcheck "$T/out" 'd["ok"] is False and d["built"]==0 and len(d["findings"])>0' "build --json findings"

# --- ls, inspect, verify, export, import ----------------------------------------------------
usage_err "ls without store" "--store DIR (or AF_STORE) is required" "$AF" ls
usage_err "ls extra argument" "unexpected argument 'x'" "$AF" ls --store "$S" x
fails 2 "ls: missing store" "nostore" "$AF" ls --store "$T/nostore"
fails 3 "ls: damaged store" "damaged" "$AF" ls --store "$T/damaged"
expect 0 "ls (env)" env AF_STORE="$S" "$AF" ls
contains "$T/out" "senior-reviewer@1.1.0" "ls lists 1.1.0"
contains "$T/out" "latest" "ls marks the latest"
contains "$T/out" "2 artifacts" "ls summary"
expect 0 "ls --json" "$AF" ls --store "$S" --json
jcheck "$T/out" 'sorted(a["version"] for a in d["artifacts"])==["1.0.0","1.1.0"] and [a["latest"] for a in d["artifacts"] if a["version"]=="1.1.0"]==[True] and d["stats"]["artifacts"]==2 and d["stats"]["blobs"]>0 and all(a["manifest_digest"].startswith("sha256:") for a in d["artifacts"])' "ls --json shape"
usage_err "inspect without NAME" "expected exactly one NAME[@VERSION]" "$AF" inspect --store "$S"
usage_err "inspect --sbom --provenance" "give one of --provenance, --statement, --sbom" \
	"$AF" inspect --store "$S" --sbom --provenance senior-reviewer
usage_err "inspect --json --sbom" "--json does not go with" "$AF" inspect --store "$S" --json --sbom senior-reviewer
fails 1 "inspect: unknown artifact" "nobody" "$AF" inspect --store "$S" nobody
fails 1 "inspect --sbom: unknown artifact" "nobody" "$AF" inspect --store "$S" --sbom nobody
fails 2 "inspect: missing keyring" "none.json" "$AF" inspect --store "$S" --keyring "$T/none.json" senior-reviewer
expect 0 "inspect" "$AF" inspect --store "$S" senior-reviewer@1.0.0
contains "$T/out" "senior-reviewer@1.0.0" "inspect names the version"
contains "$T/out" "not checked (pass --keyring FILE)" "inspect without keyring says so"
contains "$T/out" "attestation (" "inspect shows the attestation"
expect 0 "inspect --keyring" "$AF" inspect --store "$S" --keyring "$KR" senior-reviewer
contains "$T/out" "verification     OK" "inspect verifies"
expect 1 "inspect with a keyring that does not trust the builder" "$AF" inspect --store "$S" --keyring "$T/new.json" senior-reviewer
contains "$T/out" "verification     FAILED" "inspect shows the failed verification"
expect 1 "inspect --json, untrusted" "$AF" inspect --store "$S" --keyring "$T/new.json" --json senior-reviewer
jcheck "$T/out" 'd["verified"] is False and d["verify_error"] and d["name"]=="senior-reviewer" and d["version"]=="1.1.0" and len(d["parts"])>0 and all(p["stored_size"]>0 for p in d["parts"]) and d["provenance"]["predicateType"].startswith("https://slsa.dev/provenance") and len(d["signatures"])==1 and len(d["attestation_signatures"])==1' "inspect --json shape"
expect 0 "inspect --json, no keyring" "$AF" inspect --store "$S" --json senior-reviewer
jcheck "$T/out" 'd["verified"] is None and "verify_error" not in d' "inspect --json without keyring"
for what in sbom statement provenance; do
	expect 0 "inspect --$what" "$AF" inspect --store "$S" --"$what" senior-reviewer
	cp "$T/out" "$T/$what.json"
	expect 0 "inspect --$what --keyring" "$AF" inspect --store "$S" --keyring "$KR" --"$what" senior-reviewer
	same "$T/out" "$T/$what.json" "inspect --$what prints the same bytes verified or not"
	expect 1 "inspect --$what, untrusted builder" "$AF" inspect --store "$S" --keyring "$T/new.json" --"$what" senior-reviewer
	empty "$T/out" "inspect --$what prints nothing unverified"
done
jcheck "$T/sbom.json" 'd["bomFormat"]=="CycloneDX"' "inspect --sbom is CycloneDX"
jcheck "$T/statement.json" 'd["_type"].startswith("https://in-toto.io/Statement")' "inspect --statement is an in-toto statement"
jcheck "$T/provenance.json" 'd["payloadType"]=="application/vnd.in-toto+json" and len(d["signatures"])==1' "inspect --provenance is a DSSE envelope"
usage_err "verify without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" verify --store "$S"
usage_err "verify extra argument" "unexpected argument 'x'" "$AF" verify --store "$S" --keyring "$KR" x
fails 2 "verify: corrupt keyring" "corrupt.json" "$AF" verify --store "$S" --keyring "$T/corrupt.json"
fails 2 "verify: missing store" "nostore" "$AF" verify --store "$T/nostore" --keyring "$KR"
fails 3 "verify: damaged store" "damaged" "$AF" verify --store "$T/damaged" --keyring "$KR"
expect 0 "verify (env)" env AF_STORE="$S" AF_KEYRING="$KR" "$AF" verify
contains "$T/out" "2 verified, 0 failed" "verify summary"
expect 1 "verify --json, untrusted builder" "$AF" verify --store "$S" --keyring "$T/new.json" --json
jcheck "$T/out" 'd["ok"]==0 and d["failed"]==2 and all(not a["ok"] and a["error"] for a in d["artifacts"])' "verify --json failures"
expect 1 "verify text, untrusted builder" "$AF" verify --store "$S" --keyring "$T/new.json"
contains "$T/out" "FAIL  senior-reviewer@" "verify text names the failure"
usage_err "export without --out" "--out FILE is required" "$AF" export --store "$S"
fails 2 "export: missing store" "nostore" "$AF" export --store "$T/nostore" --out "$T/b.tar"
fails 1 "export: unknown artifact" "nobody" "$AF" export --store "$S" --out "$T/b.tar" nobody
expect 2 "export: bad NAME" "$AF" export --store "$S" --out "$T/b.tar" "BAD NAME@@"
checks=$((checks + 1))
[ ! -e "$T/b.tar" ] || fail "a failed export left a bundle"
expect 2 "export: into a missing folder" "$AF" export --store "$S" --out "$T/nodir/b.tar"
contains "$T/err" "nodir" "export: missing folder named"
expect 0 "export" "$AF" export --store "$S" --out "$T/b.tar" --signatures "$T/b.sigs" senior-reviewer@1.1.0
contains "$T/out" "exported 1 artifact " "export output"
contains "$T/out" "signatures in $T/b.sigs" "export names the signatures file"
usage_err "import without BUNDLE" "expected exactly one BUNDLE" "$AF" import --store "$T/is" --keyring "$KR"
usage_err "import without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" import --store "$T/is" "$T/b.tar"
fails 2 "import: bundle missing" "not a readable file" "$AF" import --store "$T/is" --keyring "$KR" "$T/none.tar"
fails 2 "import: bundle is a folder" "not a readable file" "$AF" import --store "$T/is" --keyring "$KR" "$T"
fails 2 "import: corrupt keyring" "corrupt.json" "$AF" import --store "$T/is" --keyring "$T/corrupt.json" "$T/b.tar"
fails 2 "import: store is a file" "afile" "$AF" import --store "$T/afile" --keyring "$KR" "$T/b.tar"
head -c 3000 /dev/urandom >"$T/junk.tar"
fails 1 "import: not a bundle" "" "$AF" import --store "$T/is" --keyring "$KR" "$T/junk.tar"
fails 1 "import: signatures missing" "" "$AF" import --store "$T/is" --keyring "$KR" "$T/b.tar"
fails 1 "import: untrusted builder" "" "$AF" import --store "$T/is" --keyring "$T/new.json" --signatures "$T/b.sigs" "$T/b.tar"
expect 0 "import" env AF_STORE="$T/is" AF_KEYRING="$KR" "$AF" import --signatures "$T/b.sigs" "$T/b.tar"
contains "$T/out" "imported 1 artifact (1 with a provenance attestation)" "import output"

# --- release, promote, rollback, channel, status, audit -------------------------------------
R="$T/rel"
cp -a "$S" "$R"
usage_err "release create: nothing named" "exactly one of them" "$AF" release create --store "$R" --keyring "$KR" --key "$RMK"
usage_err "release create: --all and --from" "exactly one of them" \
	"$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --all --from 1
usage_err "release create: --all and NAME" "exactly one of them" \
	"$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --all senior-reviewer
usage_err "release create: two keys" "signed by one --key" \
	"$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --key "$RMK" --all
for e in 7x never 0d1; do
	usage_err "release create --expires $e" "--expires takes a duration" \
		"$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --expires "$e" --all
done
for n in 0 -1 x 1x ""; do
	usage_err "release create --from '$n'" "--from needs a positive number" \
		"$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --from "$n"
done
usage_err "release create --release" "option '--release' does not apply here" \
	"$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --release 1 --all
usage_err "release create without keyring" "which release-manager keys are trusted" \
	"$AF" release create --store "$R" --key "$RMK" --all
usage_err "release create without --key" "--key KEY is required" \
	"$AF" release create --store "$R" --keyring "$KR" --all
usage_err "release create without store" "--store DIR (or AF_STORE) is required" \
	"$AF" release create --keyring "$KR" --key "$RMK" --all
fails 2 "release create: missing keyring" "none.json" "$AF" release create --store "$R" --keyring "$T/none.json" --key "$RMK" --all
fails 2 "release create: missing key" "none.key" "$AF" release create --store "$R" --keyring "$KR" --key "$T/none.key" --all
fails 2 "release create: store is a file" "afile" "$AF" release create --store "$T/afile" --keyring "$KR" --key "$RMK" --all
fails 1 "release create: unknown release --from" "" "$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --from 99
fails 1 "release create: unknown artifact" "nobody" "$AF" release create --store "$R" --keyring "$KR" --key "$RMK" nobody@1.0.0
fails 1 "release create: a builder key" "" "$AF" release create --store "$R" --keyring "$KR" --key "$BK" --all
fails 2 "release create: no store" "no store at $T/nostore" \
	"$AF" release create --store "$T/nostore" --keyring "$KR" --key "$RMK" --all
# a store with an audit entry and no artifact
"$AF" hooks audit --store "$T/empty-store" --ref r --rev v --reason x
expect 1 "release create --all: empty store" "$AF" release create --store "$T/empty-store" --keyring "$KR" --key "$RMK" --all
contains "$T/err" "no artifacts to release" "release of an empty store explained"
expect 0 "release create --all --json (env)" env AF_STORE="$R" AF_KEYRING="$KR" \
	"$AF" release create --key "$RMK" --all --json --expires 2d
jcheck "$T/out" 'd["release"]==3 and [a["version"] for a in d["artifacts"]]==["1.1.0"] and d["digest"].startswith("sha256:") and len(d["signer"])==64 and d["expires"]>d["created"]' "release create --json shape"
expect 0 "release create --from 1" "$AF" release create --store "$R" --keyring "$KR" --key "$RMK" --from 1 --expires 2030-01-01T00:00:00Z
contains "$T/out" "4" "release create prints the number"
contains "$T/err" "release 4: 1 artifact, expires 2030-01-01T00:00:00Z" "release create summary"
usage_err "promote without --channel" "--channel C is required" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --release 3
usage_err "promote without --release" "--release N is required" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue
usage_err "promote bad channel" "invalid channel name 'Blue!'" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel 'Blue!' --release 3
usage_err "promote extra argument" "unexpected argument 'x'" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 3 x
usage_err "promote --to" "option '--to' does not apply here" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --to 1
usage_err "rollback --release" "option '--release' does not apply here" "$AF" rollback --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 1
usage_err "promote without --key" "--key KEY is required" "$AF" promote --store "$R" --keyring "$KR" --channel blue --release 3
many=()
for i in $(seq 17); do many+=(--key "$RMK"); done
usage_err "promote with 17 keys" "at most 16 --key options" "$AF" promote --store "$R" --keyring "$KR" "${many[@]}" --channel blue --release 3
fails 1 "promote: unknown release" "" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 99
fails 2 "promote: store is a file" "afile" "$AF" promote --store "$T/afile" --keyring "$KR" --key "$RMK" --channel blue --release 3
expect 3 "promote: damaged store" "$AF" promote --store "$T/damaged" --keyring "$KR" --key "$RMK" --channel blue --release 3
expect 0 "promote --json" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 3 --json
jcheck "$T/out" 'd["channel"]=="blue" and d["release"]==3 and d["previous"]==0 and d["action"]=="promote" and d["threshold"]==1 and len(d["signers"])==1' "promote --json shape"
expect 0 "promote again" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 4
contains "$T/out" "blue: release 4 (was 3;" "promote text"
fails 1 "promote to an older release" "" "$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 2
fails 1 "rollback not to an older release" "" "$AF" rollback --store "$R" --keyring "$KR" --key "$RMK" --channel blue --to 4
fails 1 "rollback a channel that does not exist" "" "$AF" rollback --store "$R" --keyring "$KR" --key "$RMK" --channel green
expect 0 "rollback --json" "$AF" rollback --store "$R" --keyring "$KR" --key "$RMK" --channel blue --json
jcheck "$T/out" 'd["release"]==3 and d["previous"]==4 and d["action"]=="rollback"' "rollback --json shape"
fails 1 "rollback with nothing older" "" "$AF" rollback --store "$R" --keyring "$KR" --key "$RMK" --channel blue
usage_err "channel set-threshold without --threshold" "--threshold K is required" \
	"$AF" channel set-threshold --store "$R" --keyring "$KR" --key "$RMK" --channel blue
usage_err "channel set-threshold 17" "--threshold is 1 to 16" \
	"$AF" channel set-threshold --store "$R" --keyring "$KR" --key "$RMK" --channel blue --threshold 17
fails 1 "channel set-threshold 2 with one trusted key" "" \
	"$AF" channel set-threshold --store "$R" --keyring "$KR" --key "$RMK" --channel blue --threshold 2
expect 0 "channel set-threshold 1" "$AF" channel set-threshold --store "$R" --keyring "$KR" --key "$RMK" --channel green --threshold 1
contains "$T/out" "green: threshold 1" "set-threshold text"
usage_err "channel history without --channel" "--channel C is required" "$AF" channel history --store "$R"
usage_err "channel history extra" "unexpected argument 'x'" "$AF" channel history --store "$R" --channel blue x
expect 0 "channel history" "$AF" channel history --store "$R" --channel blue
contains "$T/out" "rollback" "history lists the rollback"
expect 0 "channel history --json" "$AF" channel history --store "$R" --channel blue --json
jcheck "$T/out" '[c["action"] for c in d]==["promote","promote","rollback"] and [c["release"] for c in d]==[3,4,3]' "channel history --json"
expect 1 "channel history: unknown channel" "$AF" channel history --store "$R" --channel purple
fails 2 "channel history: missing store" "nostore" "$AF" channel history --store "$T/nostore" --channel blue
usage_err "status extra argument" "unexpected argument 'x'" "$AF" status --store "$R" x
fails 2 "status: missing keyring" "none.json" "$AF" status --store "$R" --keyring "$T/none.json"
fails 2 "status: missing store" "nostore" "$AF" status --store "$T/nostore"
expect 0 "status" "$AF" status --store "$R"
contains "$T/out" "NOT verified: give --keyring" "status without keyring says so"
contains "$T/out" "unverified" "status without keyring marks entries"
expect 0 "status --keyring" "$AF" status --store "$R" --keyring "$KR"
contains "$T/out" "verified with the keyring" "status with keyring"
expect 0 "status --json" "$AF" status --store "$R" --keyring "$KR" --json
jcheck "$T/out" 'd["verified"] is True and {c["channel"]:c["status"] for c in d["channels"]}=={"blue":"ok","green":"no-release"} and [r["release"] for r in d["releases"]]==[1,2,3,4] and all(r["status"]=="ok" and r["error"] is None for r in d["releases"])' "status --json shape"
expect 0 "status --json in 10 days" env AF_NOW="$(date -u -d '+10 days' +%Y-%m-%dT%H:%M:%SZ)" \
	"$AF" status --store "$R" --keyring "$KR" --json
jcheck "$T/out" '[r["status"] for r in d["releases"]]==["expired"]*3+["ok"] and all(r["error"] for r in d["releases"][:3]) and {c["channel"]:c["status"] for c in d["channels"]}["blue"]!="ok"' "status: expired releases, a channel on one"
expect 0 "status text in 10 days" env AF_NOW="$(date -u -d '+10 days' +%Y-%m-%dT%H:%M:%SZ)" \
	"$AF" status --store "$R" --keyring "$KR"
contains "$T/out" "expired: " "status text: expired with the reason"
expect 0 "status --json, untrusted" "$AF" status --store "$R" --keyring "$T/new.json" --json
jcheck "$T/out" 'all(r["status"]=="refused" for r in d["releases"])' "status: untrusted signer refused"
expect 0 "status text, untrusted" "$AF" status --store "$R" --keyring "$T/new.json"
contains "$T/out" "refused: " "status text gives the reason"
usage_err "audit log extra" "unexpected argument 'x'" "$AF" audit log --store "$R" x
usage_err "audit verify extra" "unexpected argument 'x'" "$AF" audit verify --store "$R" x
usage_err "audit checkpoint extra" "unexpected argument 'x'" "$AF" audit checkpoint --store "$R" x
fails 2 "audit log: missing store" "nostore" "$AF" audit log --store "$T/nostore"
expect 0 "audit log" "$AF" audit log --store "$R"
contains "$T/out" "promote" "audit log lists the promotion"
expect 0 "audit log --json" env AF_STORE="$R" "$AF" audit log --json
jcheck "$T/out" 'all(set(e)>={"seq","time","action","actor","subject","outcome","details","prev_hash","hash"} for e in d) and [e["seq"] for e in d]==list(range(1,len(d)+1)) and "refused" in {e["outcome"] for e in d}' "audit log --json shape"
expect 0 "audit verify" "$AF" audit verify --store "$R"
contains "$T/out" "audit log OK:" "audit verify text"
expect 0 "audit verify --keyring --json" "$AF" audit verify --store "$R" --keyring "$KR" --json
jcheck "$T/out" 'd["ok"] is True and d["entries"]==d["head_seq"] and d["bad_seq"] is None and d["checkpoint_seq"] is None and d["error"] is None' "audit verify --json shape"
usage_err "audit verify --checkpoint without keyring" "--keyring FILE (or AF_KEYRING) is required" \
	"$AF" audit verify --store "$R" --checkpoint "$T/cp.json"
fails 2 "audit verify: checkpoint missing" "cp.json" "$AF" audit verify --store "$R" --keyring "$KR" --checkpoint "$T/cp.json"
usage_err "audit checkpoint without --out" "--out FILE is required" "$AF" audit checkpoint --store "$R" --key "$RMK"
usage_err "audit checkpoint without --key" "exactly one --key KEY is required" "$AF" audit checkpoint --store "$R" --out "$T/cp.json"
usage_err "audit checkpoint two keys" "exactly one --key KEY is required" "$AF" audit checkpoint --store "$R" --key "$RMK" --key "$RMK" --out "$T/cp.json"
fails 2 "audit checkpoint: missing key" "none.key" "$AF" audit checkpoint --store "$R" --key "$T/none.key" --out "$T/cp.json"
fails 2 "audit checkpoint: into a missing folder" "" "$AF" audit checkpoint --store "$R" --key "$RMK" --out "$T/nodir/cp.json"
expect 0 "audit checkpoint" "$AF" audit checkpoint --store "$R" --key "$RMK" --out "$T/cp.json"
contains "$T/out" "written to $T/cp.json" "audit checkpoint output"
expect 0 "audit verify --checkpoint" "$AF" audit verify --store "$R" --keyring "$KR" --checkpoint "$T/cp.json"
contains "$T/out" "checkpoint OK" "audit verify --checkpoint text"
python3 - "$T/cp.json" "$T/cp-bad.json" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
body = json.loads(base64.b64decode(env["payload"]))
body["seq"] = 1  # claim an older head: the signature no longer matches
env["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
json.dump(env, open(sys.argv[2], "w"))
PY
expect 1 "audit verify: tampered checkpoint" "$AF" audit verify --store "$R" --keyring "$KR" --checkpoint "$T/cp-bad.json"
empty "$T/out" "tampered checkpoint: no OK line"
expect 1 "audit verify --json: checkpoint of another store" "$AF" audit verify --store "$AS" --keyring "$KR" --checkpoint "$T/cp.json" --json
jcheck "$T/out" 'd["ok"] is False and d["error"]' "audit verify --json failure"
# automatic checkpoints
mkdir "$T/cps"
expect 1 "audit verify: AF_AUDIT_CHECKPOINTS without latest.json" env AF_AUDIT_CHECKPOINTS="$T/cps" \
	"$AF" audit verify --store "$R" --keyring "$KR"
contains "$T/err" "AF_AUDIT_CHECKPOINTS is set" "missing automatic checkpoint explained"
expect 0 "promote with AF_AUDIT_CHECKPOINTS" env AF_AUDIT_CHECKPOINTS="$T/cps" \
	"$AF" promote --store "$R" --keyring "$KR" --key "$RMK" --channel blue --release 4
checks=$((checks + 1))
[ -s "$T/cps/latest.json" ] || fail "AF_AUDIT_CHECKPOINTS: no latest.json after a promotion"
expect 0 "audit verify with AF_AUDIT_CHECKPOINTS" env AF_AUDIT_CHECKPOINTS="$T/cps" \
	"$AF" audit verify --store "$R" --keyring "$KR"
contains "$T/out" "checkpoint OK" "automatic checkpoint verified"
expect 2 "set-threshold: AF_AUDIT_CHECKPOINTS is a file" env AF_AUDIT_CHECKPOINTS="$T/afile" \
	"$AF" channel set-threshold --store "$R" --keyring "$KR" --key "$RMK" --channel green --threshold 1
contains "$T/err" "audit checkpoint not written to $T/afile" "checkpoint failure explained"

# --- hooks -----------------------------------------------------------------------------------
git init -q --bare "$T/bare.git"
usage_err "hooks install without --repo" "--repo BARE.git is required" "$AF" hooks install --keyring "$KR"
usage_err "hooks install without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" hooks install --repo "$T/bare.git"
usage_err "hooks install --store without --builder-key" "--store and --builder-key go together" \
	"$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --store "$T/hs"
usage_err "hooks install --branches without --store" "they need --store" \
	"$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --branches 'refs/heads/main'
for d in ../up /abs ""; do
	usage_err "hooks install --dir '$d'" "a relative folder inside the repository" \
		"$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --dir "$d"
done
for j in 0 257 x; do
	usage_err "hooks install -j $j" "-j needs a number from 1 to 256" "$AF" hooks install -j "$j"
done
for w in -1 86401 x ""; do
	usage_err "hooks install --wait '$w'" "--wait needs seconds from 0 to 86400" "$AF" hooks install --wait "$w"
done
for m in 0 x ""; do
	usage_err "hooks install --max-file-size '$m'" "--max-file-size needs a number of bytes" "$AF" hooks install --max-file-size "$m"
done
usage_err "hooks install extra argument" "unexpected argument 'x'" "$AF" hooks install --repo "$T/bare.git" x
fails 2 "hooks install: missing keyring" "none.json" "$AF" hooks install --repo "$T/bare.git" --keyring "$T/none.json"
expect 2 "hooks install: missing policies" "$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --policies "$T/nopol"
contains "$T/err" "cannot load policies from $T/nopol" "hooks: policies named"
fails 2 "hooks install: missing builder key" "none.key" \
	"$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --store "$T/hs" --builder-key "$T/none.key"
fails 2 "hooks install: missing repository" "--repo $T/nobare.git" "$AF" hooks install --repo "$T/nobare.git" --keyring "$KR"
expect 2 "hooks install: not a repository" "$AF" hooks install --repo "$T/sign" --keyring "$KR"
contains "$T/err" "$T/sign" "hooks: the folder named"
fails 2 "hooks install: store's parent missing" "parent folder" \
	"$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --store "$T/nodir/store" --builder-key "$BK"
fails 2 "hooks install: --store ''" "invalid path" \
	"$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --store "" --builder-key "$BK"
expect 1 "hooks install: not bare" "$AF" hooks install --repo "$REPO" --keyring "$KR"
contains "$T/err" "is not a bare repository" "hooks: non-bare refused"
checks=$((checks + 1))
[ ! -e "$REPO/.git/hooks/pre-receive" ] || fail "refused hooks install wrote a hook"
expect 0 "hooks install (env keyring; AF_BUILDER_KEY alone ignored)" env AF_KEYRING="$KR" AF_BUILDER_KEY="$BK" \
	"$AF" hooks install --repo "$T/bare.git" --policies "$POL"
contains "$T/out" "checked against $KR" "hooks install: pre-receive"
contains "$T/out" "no --store, so nothing is built" "hooks install: no build"
checks=$((checks + 1))
[ -x "$T/bare.git/hooks/pre-receive" ] && [ -x "$T/bare.git/hooks/post-receive" ] || fail "hooks not installed executable"
checks=$((checks + 1))
[ -z "$(git -C "$T/bare.git" config --get agentfactory.builderkey || true)" ] || fail "AF_BUILDER_KEY alone configured a build"
(cd "$T" && expect 0 "hooks install with a build (relative store)" "$AF" hooks install --repo bare.git --keyring "$KR" \
	--store hs/ --builder-key "$BK" --dir templates --branches 'refs/heads/main' -j 2 --wait 0 \
	--max-file-size 1000 --allow-force-push)
contains "$T/out" "are built into $T/hs" "hooks install: the store made absolute"
for kv in "store=$T/hs" "builderkey=$BK" "dir=templates" "branches=refs/heads/main" "jobs=2" "wait=0" \
	"maxfilebytes=1000" "allowforcepush=true" "keyring=$KR"; do
	checks=$((checks + 1))
	[ "$(git -C "$T/bare.git" config --get "agentfactory.${kv%%=*}")" = "${kv#*=}" ] ||
		fail "hooks install: git config agentfactory.${kv%%=*} is not ${kv#*=}"
done
expect 0 "hooks install again, settings replaced" "$AF" hooks install --repo "$T/bare.git" --keyring "$KR"
checks=$((checks + 1))
[ -z "$(git -C "$T/bare.git" config --get agentfactory.store || true)" ] || fail "re-install kept the old --store"
printf '#!/bin/sh\necho mine\n' >"$T/bare.git/hooks/post-receive"
fails 1 "hooks install over a foreign hook" "merge it by hand or replace it with --force" \
	"$AF" hooks install --repo "$T/bare.git" --keyring "$KR"
contains "$T/bare.git/hooks/post-receive" "echo mine" "foreign hook kept"
expect 0 "hooks install --force" "$AF" hooks install --repo "$T/bare.git" --keyring "$KR" --force
lacks "$T/bare.git/hooks/post-receive" "echo mine" "hooks --force replaced the foreign hook"
git init -q --bare "$T/bare2.git"
rm -rf "$T/bare2.git/hooks" && : >"$T/bare2.git/hooks"
expect 2 "hooks install: hooks is a file" "$AF" hooks install --repo "$T/bare2.git" --keyring "$KR"
contains "$T/err" "pre-receive" "hooks: unreadable hook named"
usage_err "hooks audit: missing options" "audit needs --store, --ref, --rev and --reason" \
	"$AF" hooks audit --store "$AS" --ref refs/heads/main
usage_err "hooks audit extra" "unexpected argument 'x'" "$AF" hooks audit --store "$AS" x
expect 0 "hooks audit (env store)" env AF_STORE="$AS" "$AF" hooks audit --ref refs/heads/main --rev abc123 --reason "force-push"
expect 0 "audit log after hooks audit" "$AF" audit log --store "$AS" --json
jcheck "$T/out" 'd[-1]["action"]=="push" and d[-1]["outcome"]=="refused" and d[-1]["details"]=={"ref":"refs/heads/main","commit":"abc123","reason":"force-push"}' "hooks audit entry"
fails 2 "hooks audit: store is a file" "audit entry not recorded" \
	"$AF" hooks audit --store "$T/afile" --ref r --rev v --reason x

# --- run -----------------------------------------------------------------------------------
RUN=("$AF" run --store "$S" --keyring "$KR")
usage_err "run without store" "--store DIR (or AF_STORE) is required" "$AF" run --keyring "$KR" --input '{}' senior-reviewer
usage_err "run without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" run --store "$S" --input '{}' senior-reviewer
usage_err "run without NAME" "exactly one agent NAME[@VERSION]" "${RUN[@]}" --input '{}'
usage_err "run two NAMEs" "exactly one agent NAME[@VERSION]" "${RUN[@]}" --input '{}' a b
usage_err "run without input" "--input JSON or --input-file FILE" "${RUN[@]}" senior-reviewer
usage_err "run with both inputs" "--input JSON or --input-file FILE" "${RUN[@]}" --input '{}' --input-file x senior-reviewer
usage_err "run --kv-set without =" "--kv-set needs KEY=JSON" "${RUN[@]}" --kv-set novalue --input '{}' senior-reviewer
usage_err "run --kv-set without --data" "--kv-set needs --data DIR" "${RUN[@]}" --kv-set a=1 --input '{}' senior-reviewer
for v in 0 x -5 ""; do
	usage_err "run --timeout-ms '$v'" "--timeout-ms needs a positive integer" "${RUN[@]}" --timeout-ms "$v" --input '{}' senior-reviewer
done
usage_err "run --memory-pages 70000" "--memory-pages needs an integer 1..65535" "${RUN[@]}" --memory-pages 70000 --input '{}' senior-reviewer
usage_err "run --llm-provider bogus" "bogus" "${RUN[@]}" --llm-provider bogus --input '{}' senior-reviewer
usage_err "run --llm-record without provider" "--llm-record needs a model provider" \
	"${RUN[@]}" --llm-record "$T/rec.json" --input '{}' senior-reviewer
fails 2 "run: input file missing" "none.json" "${RUN[@]}" --input-file "$T/none.json" senior-reviewer
fails 2 "run: log in a missing folder" "cannot open $T/nodir/log for the log" "${RUN[@]}" --log "$T/nodir/log" --input '{}' senior-reviewer
fails 2 "run: missing store" "nostore" "$AF" run --store "$T/nostore" --keyring "$KR" --input '{}' senior-reviewer
fails 3 "run: damaged store" "damaged" "$AF" run --store "$T/damaged" --keyring "$KR" --input '{}' senior-reviewer
fails 2 "run: missing keyring" "none.json" "$AF" run --store "$S" --keyring "$T/none.json" --input '{}' senior-reviewer
fails 2 "run: --kv-set into a file" "--kv-set" "${RUN[@]}" --data "$T/afile" --kv-set a=1 --input '{}' senior-reviewer
expect 2 "run: unknown agent" "${RUN[@]}" --input '{}' nobody
contains "$T/err" "not_found" "run: unknown agent named"
jcheck "$T/out" 'd["ok"] is False and d["error"]["code"]=="not_found"' "run: unknown agent answer"
expect 2 "run: invalid JSON input" "${RUN[@]}" --input '{not json' senior-reviewer
contains "$T/err" "invalid_json" "run: invalid JSON named"
expect 2 "run: unknown channel" "${RUN[@]}" --channel purple --input '{}' senior-reviewer
STDIN="$T/body.json"
printf '%s' "$FX_BODY" >"$STDIN"
expect 0 "run (env, stdin input, scripted model, kv, log)" env AF_STORE="$S" AF_KEYRING="$KR" \
	"$AF" run --input-file - --llm-provider scripted --llm-script "$FX_SCRIPT" --data "$T/data" \
	--kv-set 'note={"a":1}' --kv-set plain=text --log "$T/run.log" --timeout-ms 20000 --memory-pages 512 \
	--llm-record "$T/rec.json" senior-reviewer@1.1.0
unset STDIN
jcheck "$T/out" 'd["ok"] is True and d["output"]["verdict"]=="changes requested"' "run answer"
contains "$T/err" "model provider" "run names the model provider"
jcheck "$T/rec.json" 'len(d["responses"])==1' "run --llm-record wrote the script"
checks=$((checks + 1))
[ -s "$T/run.log" ] || fail "run --log wrote nothing"
# the model answers something the agent cannot use: the agent's error, exit 1
printf '{"responses": [{"role": "assistant", "content": "not json at all"}]}\n' >"$T/bad-script.json"
expect 1 "run: the agent answers an error" "${RUN[@]}" --llm-provider scripted --llm-script "$T/bad-script.json" \
	--input "$FX_BODY" senior-reviewer
jcheck "$T/out" 'd["ok"] is False and d["error"]["code"]' "run: the agent's error answer"

# --- verify-reproducible (usage and refusals; one real rebuild) ----------------------------
VR=("$AF" verify-reproducible)
usage_err "verify-reproducible extra" "unexpected argument 'x'" "${VR[@]}" --repo "$REPO" x
usage_err "verify-reproducible without --repo" "--repo, --keyring and --builder-key are required" \
	"${VR[@]}" --keyring "$KR" --builder-key "$BK" --store "$S"
usage_err "verify-reproducible no reference" "give one reference" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK"
usage_err "verify-reproducible two references" "give one reference" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK" --store "$S" --bundle "$T/b.tar"
usage_err "verify-reproducible --signatures with --store" "--signatures goes with --bundle" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK" --store "$S" --signatures "$T/b.sigs"
fails 2 "verify-reproducible: missing keyring" "none.json" \
	"${VR[@]}" --repo "$REPO" --keyring "$T/none.json" --builder-key "$BK" --store "$S"
fails 2 "verify-reproducible: missing builder key" "none.key" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$T/none.key" --store "$S"
expect 2 "verify-reproducible: missing policies" "${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK" \
	--store "$S" --policies "$T/nopol"
contains "$T/err" "cannot load policies from $T/nopol" "verify-reproducible: policies named"
fails 2 "verify-reproducible: missing store" "nostore" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK" --store "$T/nostore"
fails 1 "verify-reproducible: corrupt bundle" "reference bundle:" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK" --bundle "$T/junk.tar"
fails 1 "verify-reproducible: bundle without its signatures" "reference bundle:" \
	"${VR[@]}" --repo "$REPO" --keyring "$KR" --builder-key "$BK" --bundle "$T/b.tar"
fails 2 "verify-reproducible: missing repository" "" \
	"${VR[@]}" --repo "$T/norepo" --keyring "$KR" --builder-key "$BK" --store "$S"
expect 1 "verify-reproducible: the rebuild has findings" "${VR[@]}" --repo "$T/badrepo" --keyring "$KR" \
	--builder-key "$BK" --store "$S" --json
contains "$T/err" "the rebuild failed" "verify-reproducible: failed rebuild explained"
expect 1 "verify-reproducible: the reference lacks the artifact" "${VR[@]}" --repo "$REPO" --rev HEAD \
	--dir templates --keyring "$KR" --builder-key "$BK" --store "$T/empty-store" \
	--source-uri https://example.invalid/repo.git --builder-id https://example.invalid/builder
contains "$T/out" "missing    senior-reviewer@1.1.0 sha256:" "verify-reproducible text: missing"
contains "$T/out" "0 identical, 0 different, 1 missing from the reference (of 1 rebuilt)" "verify-reproducible text summary"
expect 0 "verify-reproducible --bundle --json (env keys)" env AF_KEYRING="$KR" AF_BUILDER_KEY="$BK" \
	"${VR[@]}" --repo "$REPO" --bundle "$T/b.tar" --signatures "$T/b.sigs" --json
jcheck "$T/out" 'd["identical"]==1 and d["different"]==0 and d["missing"]==0 and d["bundle_identical"] is True and d["reference_content_digest"]==d["rebuilt_content_digest"] and d["artifacts"][0]["result"]=="identical" and d["artifacts"][0]["artifact"]=="senior-reviewer@1.1.0"' "verify-reproducible --json shape"

# --- push and pull (no registry listening: usage and reachability) --------------------------
DEAD="oci://127.0.0.1:9/af/test"
usage_err "push without store" "--store DIR (or AF_STORE) is required" "$AF" push --release 1 "$DEAD"
usage_err "push without registry" "the last argument must be the registry" "$AF" push --store "$S" --release 1
usage_err "push registry not last" "the last argument must be the registry" "$AF" push --store "$S" "$DEAD" senior-reviewer
for r in 0 x ""; do
	usage_err "push --release '$r'" "--release: expected a number >= 1" "$AF" push --store "$S" --release "$r" "$DEAD"
done
for t in 0 3601 x; do
	usage_err "push --timeout $t" "--timeout: expected 1 .. 3600" "$AF" push --store "$S" --timeout "$t" --release 1 "$DEAD"
done
usage_err "pull --min-threshold 17" "--min-threshold: expected 0 .. 16" "$AF" pull --store "$T/ps" --keyring "$KR" --min-threshold 17 "$DEAD"
usage_err "push nothing" "nothing to push" "$AF" push --store "$S" "$DEAD"
usage_err "push --password-stdin, empty stdin" "--password-stdin: nothing on stdin" \
	"$AF" push --store "$S" --password-stdin --release 1 "$DEAD"
fails 2 "push: missing store" "nostore" "$AF" push --store "$T/nostore" --release 1 "$DEAD"
fails 2 "push: bad registry reference" "oci://" "$AF" push --store "$S" --release 1 "oci://"
expect 2 "push: registry unreachable" env AF_STORE="$S" "$AF" push --quiet --timeout 2 --release 1 "$DEAD"
contains "$T/err" "127.0.0.1:9" "push: unreachable registry named"
usage_err "pull without keyring" "--keyring FILE (or AF_KEYRING) is required" "$AF" pull --store "$T/ps" "$DEAD"
fails 2 "pull: missing keyring" "none.json" "$AF" pull --store "$T/ps" --keyring "$T/none.json" "$DEAD"
fails 2 "pull: store is a file" "afile" "$AF" pull --store "$T/afile" --keyring "$KR" "$DEAD"
fails 2 "pull: bad registry reference" "oci://" "$AF" pull --store "$T/ps" --keyring "$KR" "oci://"
STDIN="$T/pw"
printf 'secret\n' >"$STDIN"
expect 2 "pull: registry unreachable (env, password on stdin)" env AF_STORE="$T/ps" AF_KEYRING="$KR" \
	"$AF" pull --quiet --timeout 2 --username u --password-stdin --channel blue "$DEAD"
unset STDIN
contains "$T/err" "the store is unchanged" "pull: unreachable, store unchanged"

# --- agentfactory-runtime -------------------------------------------------------------------
expect 0 "runtime --help" "$RT" --help
for o in --store --keyring --listen --tokens --port-file --data --log --max-body --threads --workers \
	--queue --max-connections --idle-timeout --header-timeout --max-connections-per-ip --module-cache \
	--max-timeout-ms --max-memory-pages --grace-ms --channel --poll-ms --min-threshold \
	--max-invoke-depth --source --source-interval-ms --source-jitter-ms --source-ca-file \
	--source-auth-file --source-plain-http --otlp-endpoint "token hash" "token new" "exit codes"; do
	contains "$T/out" "$o" "runtime --help names $o"
done
empty "$T/err" "runtime --help: stderr"
cp "$T/out" "$T/rthelp"
for h in -h "serve --help" "token --help" "token -h" "token hash --help"; do
	# shellcheck disable=SC2086
	expect 0 "runtime $h" "$RT" $h
	same "$T/out" "$T/rthelp" "runtime $h prints the help"
done
for v in --version version "serve --version"; do
	# shellcheck disable=SC2086
	expect 0 "runtime $v" "$RT" $v
	contains "$T/out" "agentfactory-runtime " "runtime $v"
done
RTS=("$RT" --store "$S" --keyring "$KR")
rt_err() { # DESCRIPTION NEEDLE ARGS...: exit 2, NEEDLE on stderr, nothing on stdout
	local desc=$1 needle=$2
	shift 2
	expect 2 "runtime $desc" "$@"
	contains "$T/err" "$needle" "runtime $desc: names the problem"
	contains "$T/err" "agentfactory-runtime: " "runtime $desc: prefixed"
	empty "$T/out" "runtime $desc: stdout"
}
rt_err "unknown option" "unknown or incomplete option '--bogus'" "${RTS[@]}" --bogus
rt_err "extra argument" "unexpected argument 'extra'" "${RTS[@]}" extra
rt_err "--store without value" "'--store'" "$RT" --store
for spec in "--max-body 0" "--max-body 2g" "--max-body 2000m" "--max-body -1" "--threads 0" "--threads 1025" \
	"--threads x" "--workers 0" "--queue 0" "--max-connections 100001" "--idle-timeout 0" \
	"--header-timeout 3601" "--max-connections-per-ip -1" "--module-cache 0" "--max-timeout-ms 0" \
	"--max-memory-pages 65537" "--grace-ms x" "--poll-ms 0" "--min-threshold 17" \
	"--max-invoke-depth 0" "--source-interval-ms 10" "--source-jitter-ms +5"; do
	# shellcheck disable=SC2086
	rt_err "$spec" "${spec%% *}: expected" "${RTS[@]}" $spec
	contains "$T/err" "got '${spec#* }'" "runtime $spec: the value named"
done
rt_err "--llm-provider bogus" "bogus" "${RTS[@]}" --llm-provider bogus
rt_err "without store" "--store DIR (or AF_STORE) is required" "$RT" --keyring "$KR"
rt_err "without keyring" "--keyring FILE (or AF_KEYRING) is required" "$RT" --store "$S"
rt_err "--source without --channel" "--source needs --channel C" "${RTS[@]}" --source "$DEAD"
rt_err "AF_SOURCE without --channel" "--source needs --channel C" env AF_SOURCE="$DEAD" "${RTS[@]}"
rt_err "--log in a missing folder" "--log $T/nodir/rt.log" "${RTS[@]}" --log "$T/nodir/rt.log"
rt_err "--tokens missing" "--tokens: " "${RTS[@]}" --tokens "$T/none.tokens"
rt_err "--listen garbage" "--listen: " "${RTS[@]}" --listen nonsense
rt_err "--listen bad port" "--listen: " "${RTS[@]}" --listen 127.0.0.1:99999
rt_err "non-loopback without tokens" "refusing to listen on 0.0.0.0:0 without --tokens" "${RTS[@]}" --listen 0.0.0.0:0
rt_err "missing store" "nostore" "$RT" --store "$T/nostore" --keyring "$KR" --listen 127.0.0.1:0
rt_err "missing keyring" "none.json" "$RT" --store "$S" --keyring "$T/none.json" --listen 127.0.0.1:0
expect 3 "runtime: damaged store" "$RT" --store "$T/damaged" --keyring "$KR" --listen 127.0.0.1:0
contains "$T/err" "damaged" "runtime: damaged store said"
rt_err "--port-file in a missing folder" "--port-file: " env AF_STORE="$S" AF_KEYRING="$KR" \
	"$RT" serve --listen 127.0.0.1:0 --port-file "$T/nodir/port"
# token commands
rt_err "token alone" "token: expected 'hash' or 'new'" "$RT" token
rt_err "token bogus" "token: unknown subcommand 'bogus'" "$RT" token bogus
rt_err "token hash unknown option" "token hash: unknown or incomplete option '--bogus'" "$RT" token hash --bogus
rt_err "token new extra" "token new: unexpected argument 'extra'" "$RT" token new --role read extra
rt_err "token bad role" "unknown role 'root'" "$RT" token new --role root
rt_err "token --name without --role" "--name needs --role" "$RT" token hash --name bob
rt_err "token new without --role" "token new: --role ROLE is required" "$RT" token new
rt_err "token hash --tokens" "--tokens is for 'token new'" "$RT" token hash --tokens "$T/tokens"
rt_err "token hash, nothing on stdin" "expected one token on stdin" "$RT" token hash
STDIN="$T/tok-bad"
printf 'two words\n' >"$STDIN"
rt_err "token hash, a space" "expected one token on stdin" "$RT" token hash
head -c 5000 /dev/zero | tr '\0' a >"$STDIN"
rt_err "token hash, too long" "token hash: the token is longer than" "$RT" token hash
printf 'abc\r\n' >"$STDIN"
expect 0 "token hash" "$RT" token hash
checks=$((checks + 1))
[ "$(cat "$T/out")" = "sha256:$(printf abc | sha256sum | cut -d' ' -f1)" ] || fail "token hash is sha256 of the token"
expect 0 "token hash --role --name" "$RT" token hash --role invoke --name ci-bot
checks=$((checks + 1))
[ "$(cat "$T/out")" = "sha256:$(printf abc | sha256sum | cut -d' ' -f1) invoke ci-bot" ] || fail "token hash --role prints the tokens line"
rt_err "token hash, bad name" "" "$RT" token hash --role read --name 'two words'
unset STDIN
expect 0 "token new" "$RT" token new --role admin --name ops
checks=$((checks + 1))
mapfile -t lines <"$T/out"
[ "${#lines[@]}" = 2 ] && [ "${lines[1]}" = "$(printf '%s' "${lines[0]}" | "$RT" token hash --role admin --name ops)" ] ||
	fail "token new: the second line is the first one's tokens line"
expect 0 "token new --tokens" "$RT" token new --role read --tokens "$T/tokens"
tok=$(cat "$T/out")
checks=$((checks + 1))
[ "$(stat -c %a "$T/tokens")" = 600 ] && [ "$(cat "$T/tokens")" = "$(printf '%s' "$tok" | "$RT" token hash --role read)" ] ||
	fail "token new --tokens appends the line to a 0600 file"
rt_err "token new --tokens in a missing folder" "token new: cannot open $T/nodir/t" "$RT" token new --role read --tokens "$T/nodir/t"
# serving: tokens, a non-loopback-capable address check passed, port file,
# log, drain on SIGTERM
"$RT" serve --store "$S" --keyring "$KR" --listen 127.0.0.1:0 --tokens "$T/tokens" \
	--port-file "$T/port" --log "$T/rt.log" --threads 2 --workers 2 --queue 8 --max-body 64k \
	--max-connections 16 --idle-timeout 5 --header-timeout 5 --max-connections-per-ip 0 \
	--module-cache 2 --max-timeout-ms 5000 --max-memory-pages 256 --grace-ms 2000 \
	--poll-ms 100 --max-invoke-depth 2 >"$T/rt.out" 2>"$T/rt.err" &
RT_PID=$!
PIDS+=("$RT_PID")
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
checks=$((checks + 1))
if [ -s "$T/port" ]; then
	addr=$(cat "$T/port")
	code=$(curl -s -o "$T/ag.json" -w '%{http_code}' -H "Authorization: Bearer $tok" "http://$addr/v1/agents" || true)
	[ "$code" = 200 ] || fail "runtime: GET /v1/agents with the token answered $code"
	jcheck "$T/ag.json" '"senior-reviewer" in json.dumps(d)' "runtime lists the agent"
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v1/agents" || true)
	checks=$((checks + 1))
	[ "$code" = 401 ] || fail "runtime: GET /v1/agents without a token answered $code, want 401"
	# a second server on the same port: refused at startup
	rt_err "port in use" "" "${RTS[@]}" --listen "$addr"
else
	fail "runtime did not write --port-file"; cat "$T/rt.err" >&2
fi
kill -TERM "$RT_PID"
rc=0
wait "$RT_PID" || rc=$?
checks=$((checks + 1))
[ "$rc" = 0 ] || { fail "runtime: exit $rc after SIGTERM, want 0"; cat "$T/rt.err" >&2; }
checks=$((checks + 1))
[ ! -e "$T/port" ] || fail "runtime: --port-file left after a clean shutdown"
contains "$T/rt.log" '"event":"listening"' "runtime log: listening"
contains "$T/rt.log" '"auth":"bearer"' "runtime log: bearer auth"
contains "$T/rt.log" '"event":"stopped"' "runtime log: stopped"
contains "$T/rt.log" '"exit":0' "runtime log: exit 0"

# a second server: a channel followed from a (dead) registry, a model
# provider from the environment, tracing, a store path that needs JSON
# escaping, SIGINT
rt_err "AF_LLM_PROVIDER bogus" "bogus" env AF_LLM_PROVIDER=bogus "${RTS[@]}"
ln -s "$R" "$T/q\"store"
env AF_CHANNEL=blue AF_LLM_PROVIDER=scripted AF_LLM_SCRIPT="$FX_SCRIPT" \
	OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.5 \
	"$RT" --store "$T/q\"store" --keyring "$KR" --listen 127.0.0.1:0 --port-file "$T/port2" \
	--log "$T/rt2.log" --data "$T/rt-data" --source "$DEAD" --source-interval-ms 60000 \
	--source-jitter-ms 0 --source-ca-file "$T/none.pem" --source-auth-file "$T/none-auth.json" \
	--source-plain-http --min-threshold 1 --otlp-endpoint http://127.0.0.1:9 >"$T/rt2.out" 2>"$T/rt2.err" &
RT_PID=$!
PIDS+=("$RT_PID")
for _ in $(seq 100); do [ -s "$T/port2" ] && break; sleep 0.1; done
checks=$((checks + 1))
[ -s "$T/port2" ] || { fail "second runtime did not write --port-file"; cat "$T/rt2.err" >&2; }
kill -INT "$RT_PID"
rc=0
wait "$RT_PID" || rc=$?
checks=$((checks + 1))
[ "$rc" = 0 ] || { fail "runtime: exit $rc after SIGINT, want 0"; cat "$T/rt2.err" >&2; }
contains "$T/rt2.log" '"signal":"SIGINT"' "runtime log: SIGINT"
contains "$T/rt2.log" 'q\"store' "runtime log: the store path escaped"
contains "$T/rt2.log" "exporting traces to http://127.0.0.1:9" "runtime log: tracing"
contains "$T/rt2.log" "traceidratio 0.5" "runtime log: the sampler"
contains "$T/rt2.log" '"auth":"none"' "runtime log: no auth"

# --- push and pull against a real registry ----------------------------------------------------
if command -v docker-registry >/dev/null 2>&1; then
	# shellcheck source=tests/integration/registry_lib.bash
	. "$SRC/tests/integration/registry_lib.bash"
	if start_registry "$T/reg"; then
		REG="oci://127.0.0.1:$REG_PORT/af/cli"
		expect 0 "push --release --json" "$AF" push --store "$R" --quiet --json --release 2 \
			--plain-http --allow-redirect --username u --password p --timeout 30 "$REG"
		jcheck "$T/out" 'd["action"]=="pushed to" and d["registry"].endswith("/af/cli") and d["blobs_up"]>0 and d["artifacts"]==1 and d["release"]==2' "push --json shape"
		expect 0 "push --channel" "$AF" push --store "$R" --channel blue --mount-from af/other "$REG"
		contains "$T/out" "pushed to $REG:" "push text"
		expect 0 "pull --channel --json" "$AF" pull --store "$T/pulled" --keyring "$KR" --channel blue \
			--min-threshold 1 --quiet --json "$REG"
		jcheck "$T/out" 'd["action"]=="pulled from" and d["release"]==4 and d["up_to_date"] is False and d["blobs_down"]>0' "pull --json shape"
		expect 0 "pull again: up to date" "$AF" pull --store "$T/pulled" --keyring "$KR" --channel blue --quiet "$REG"
		contains "$T/out" "up to date (release 4" "pull text: up to date"
		expect 1 "pull an unknown release" "$AF" pull --store "$T/pulled" --keyring "$KR" --release 99 --quiet "$REG"
		contains "$T/err" "the store is unchanged" "pull refusal: store unchanged"
		expect 1 "pull with a keyring that does not trust the builder" "$AF" pull --store "$T/pulled2" \
			--keyring "$T/new.json" --release 2 --quiet "$REG"
		expect 0 "ls after the refused pull" "$AF" ls --store "$T/pulled2" --json
		jcheck "$T/out" 'd["artifacts"]==[]' "a refused pull stores nothing"
		expect 1 "push an unknown artifact" "$AF" push --store "$R" --quiet nobody@9.9.9 "$REG"
		stop_registry
	else
		fail "cannot start docker-registry"
	fi
fi

echo "test_cli_errors: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
