#!/usr/bin/env bash
# test_release_cli.sh - end-to-end checks of `agentfactory release`, `promote`,
# `rollback`, `channel`, `status` and `audit` on a store filled by a real
# `build`: output, --json, exit codes, AF_STORE / AF_KEYRING, and the
# refusals of the releases issue, each of which must change nothing but the
# audit log: an older release promoted, the same version rebuilt with other
# content, a threshold not met, one key given twice, revoked / expired /
# wrong-role keys, an expired release; key rotation with overlapping windows
# (what must pass and what must fail); audit entries edited, deleted and
# reordered inside LMDB (verify fails), truncation caught by a checkpoint;
# kill -9 during promote, 20 times (exactly one release active, audit
# consistent).
#
# Env: AF = the agentfactory binary, AF_SRCDIR = the source tree.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-release-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
unset AF_STORE AF_KEYRING AF_NOW

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
contains() {
	checks=$((checks + 1))
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1" >&2; }
}
same() {
	checks=$((checks + 1))
	cmp -s "$1" "$2" || { fail "$3"; diff "$1" "$2" | head -20 >&2; }
}
# the channel's release and record seq as "RELEASE SEQ" (status --json, verified)
active() {
	"$AF" status --store "$S" --keyring "$KR" --json |
		jq -r --arg c "$1" '.channels[] | select(.channel == $c) | "\(.status) \(.release) \(.seq)"'
}
# a snapshot of everything but the audit log
snapshot() {
	{
		mdb_dump -s releases "$S"
		mdb_dump -s channels "$S"
		mdb_dump -s artifacts "$S"
	} >"$1"
}
audit_count() {
	"$AF" audit log --store "$S" --json | jq length
}

command -v jq >/dev/null || { echo "jq is required" >&2; exit 2; }
# an absolute time relative to now (AF_NOW takes RFC 3339 times only)
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

# --- keys, a catalogue, a build ----------------------------------------------
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
k() { "$AF" keygen --role "$1" --out "$T/keys/$2" >/dev/null 2>&1; echo "$T/keys/$2/$1"; }
TS=$(k template-signer ts)
B=$(k builder b)
RM1=$(k release-manager rm1)
RM2=$(k release-manager rm2)
RM3=$(k release-manager rm3)
REV=$(k release-manager revoked)
OLD=$(k release-manager old)
KR="$T/kr.json"
for p in "$TS:template-signer" "$B:builder" "$RM1:release-manager" "$RM2:release-manager" \
	"$RM3:release-manager" "$REV:release-manager"; do
	"$AF" trust add --keyring "$KR" --role "${p#*:}" "${p%%:*}.pub" >/dev/null 2>&1
done
"$AF" trust add --keyring "$KR" --role release-manager --not-before -3d --not-after -1d \
	"$OLD.pub" >/dev/null 2>&1
REV_ID=$("$AF" trust add --keyring "$T/scratch.json" --role builder "$REV.pub" 2>/dev/null)
"$AF" trust revoke --keyring "$KR" --reason "laptop lost" "$REV_ID" >/dev/null

git init -q "$T/repo"
mkdir -p "$T/repo/templates"
cp -r "$SRC/templates/bases" "$T/repo/templates/"
cp "$SRC/templates/tester.yaml" "$SRC/templates/senior-reviewer.yaml" "$T/repo/templates/"
find "$T/repo/templates" -name '*.sig' -delete
sign_all() {
	mapfile -t files < <(find "$T/repo/templates" -name '*.yaml' | sort)
	"$AF" sign --key "$TS.key" "${files[@]}" >/dev/null
	git -C "$T/repo" add -A && git -C "$T/repo" commit -qm "$1"
}
sign_all v1
S="$T/store"
build() { "$AF" build --repo "$T/repo" --keyring "$KR" --builder-key "$B.key" --store "$S"; }
expect 0 "build" build
[ "$failures" -eq 0 ] || { echo "cannot test releases without a build" >&2; exit 1; }
TV=$(sed -n 's/^version: *//p' "$T/repo/templates/tester.yaml" | head -1)

# --- help and usage errors ---------------------------------------------------
for cmd in release promote rollback channel status audit; do
	expect 0 "$cmd --help" "$AF" "$cmd" --help
	contains "$T/out" "usage: agentfactory $cmd" "$cmd --help prints usage"
	contains "$T/out" "exit codes" "$cmd --help lists exit codes"
done
expect 2 "release without a subcommand" "$AF" release
expect 2 "release create without --store" "$AF" release create --keyring "$KR" --key "$RM1.key" --all
contains "$T/err" "--store" "names the missing option"
expect 2 "release create without --keyring" "$AF" release create --store "$S" --key "$RM1.key" --all
expect 2 "release create without artifacts" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key"
expect 2 "release create --all and a name" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --all tester
expect 2 "release create, unknown flag" "$AF" release create --store "$S" --bogus
contains "$T/err" "--help" "bad flag points at --help"
expect 2 "release create, bad --expires" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --expires soon --all
expect 2 "release create, malformed name" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" "Not A Name"
expect 2 "promote without --release" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue
expect 2 "promote with --release 0" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 0
expect 2 "promote with a bad channel name" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel "Blue!" --release 1
expect 2 "promote without --key" "$AF" promote --store "$S" --keyring "$KR" --channel blue --release 1
expect 2 "promote with a missing key file" "$AF" promote --store "$S" --keyring "$KR" --key "$T/nope.key" --channel blue --release 1
expect 2 "status on a missing store" "$AF" status --store "$T/nowhere"
expect 2 "audit with an unknown subcommand" "$AF" audit frobnicate --store "$S"
[ "$(audit_count)" = 1 ] || fail "usage errors must not be audited (only the build is)"

# --- release create ------------------------------------------------------------
expect 0 "release create --all" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --all
[ "$(cat "$T/out")" = 1 ] || fail "the first release is 1, got '$(cat "$T/out")'"
contains "$T/err" "2 artifacts" "release reports its size"
expect 0 "release create --json NAME@VERSION NAME" "$AF" release create --store "$S" --keyring "$KR" \
	--key "$RM1.key" --expires 30d --json "tester@$TV" senior-reviewer
[ "$(jq .release "$T/out")" = 2 ] || fail "--json release field"
[ "$(jq '.artifacts | length' "$T/out")" = 2 ] || fail "--json artifacts"
jq -e '.artifacts[0].manifest_digest | startswith("sha256:")' "$T/out" >/dev/null || fail "--json pins digests"
AF_STORE="$S" AF_KEYRING="$KR" expect 0 "release create from the environment, --from" \
	"$AF" release create --key "$RM1.key" --from 2
[ "$(cat "$T/out")" = 3 ] || fail "--from makes release 3"
snapshot "$T/before"
expect 1 "release create with an unknown artifact" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" tester no-such-agent
contains "$T/err" "no-such-agent" "names the missing artifact"
expect 1 "release create with a revoked key" "$AF" release create --store "$S" --keyring "$KR" --key "$REV.key" --all
contains "$T/err" "revoked" "says revoked"
expect 1 "release create with an expired key" "$AF" release create --store "$S" --keyring "$KR" --key "$OLD.key" --all
expect 1 "release create with a builder key" "$AF" release create --store "$S" --keyring "$KR" --key "$B.key" --all
expect 1 "release create with --from a missing release" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --from 99
snapshot "$T/after"
same "$T/before" "$T/after" "refused releases changed the store"

# --- promote -------------------------------------------------------------------
expect 0 "promote blue 2" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 2
contains "$T/out" "blue: release 2" "promote reports"
[ "$(active blue)" = "ok 2 1" ] || fail "blue is at $(active blue)"
snapshot "$T/before"
expect 1 "promote an older release" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 1
contains "$T/err" "only grow" "explains the rule"
expect 1 "promote the same release again" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 2
expect 1 "promote a missing release" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 42
expect 1 "promote with a revoked key" "$AF" promote --store "$S" --keyring "$KR" --key "$REV.key" --channel blue --release 3
expect 1 "promote with an expired key" "$AF" promote --store "$S" --keyring "$KR" --key "$OLD.key" --channel blue --release 3
contains "$T/err" "expired" "says expired"
expect 1 "promote with a template-signer key" "$AF" promote --store "$S" --keyring "$KR" --key "$TS.key" --channel blue --release 3
snapshot "$T/after"
same "$T/before" "$T/after" "refused promotions changed the store"
"$AF" audit log --store "$S" --json >"$T/log.json"
[ "$(jq '[.[] | select(.action == "promote" and .outcome == "refused")] | length' "$T/log.json")" = 6 ] ||
	fail "every refused promotion is audited"
jq -e '.[-1].details.reason | test("template-signer|release-manager")' "$T/log.json" >/dev/null ||
	fail "the audit entry records the reason"
expect 0 "promote green 1" "$AF" promote --store "$S" --keyring "$KR" --key "$RM2.key" --channel green --release 1 --json
[ "$(jq -r .channel "$T/out")" = green ] || fail "promote --json"
[ "$(jq -r '.signers | length' "$T/out")" = 1 ] || fail "promote --json signers"

# --- same version, different content -----------------------------------------
sed -i 's/^goal: /goal: Slightly different, /' "$T/repo/templates/tester.yaml"
sign_all "same version, new content"
snapshot "$T/before"
rc=0
build >"$T/out" 2>"$T/err" || rc=$?
checks=$((checks + 1))
[ "$rc" -eq 1 ] || fail "a rebuild of a released version with other content must be refused with exit 1 (a refusal, docs), got $rc"
contains "$T/err" "immutable once released" "the build explains why"
snapshot "$T/after"
same "$T/before" "$T/after" "the refused build changed the store"
"$AF" audit log --store "$S" --json | jq -e '.[-1] | .action == "build" and .outcome == "refused"' >/dev/null ||
	fail "the refused build is audited"
# bumping the version is the way: a new artifact, a new release, promoted
sed -i "s/^version: .*/version: 9.0.0/" "$T/repo/templates/tester.yaml"
sign_all "tester 9.0.0"
expect 0 "build 9.0.0" build
"$AF" audit log --store "$S" --json | jq -e '.[-1] | .action == "build" and .outcome == "ok" and (.details.built | index("tester@9.0.0"))' >/dev/null ||
	fail "the build is audited with what it built"
expect 0 "release create 9.0.0" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --all
[ "$(cat "$T/out")" = 4 ] || fail "release 4"
expect 0 "promote blue 4" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 4
[ "$(active blue)" = "ok 4 2" ] || fail "blue is at $(active blue)"

# --- thresholds ------------------------------------------------------------------
expect 0 "set-threshold 2" "$AF" channel set-threshold --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --threshold 2
contains "$T/out" "threshold 2" "set-threshold reports"
expect 0 "release 5" "$AF" release create --store "$S" --keyring "$KR" --key "$RM3.key" --from 4
snapshot "$T/before"
expect 1 "threshold not met" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --release 5
contains "$T/err" "threshold not met" "says threshold not met"
expect 1 "one key given twice" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --key "$RM1.key" --channel blue --release 5
contains "$T/err" "counts once" "explains the duplicate"
cp "$RM1.key" "$T/rm1-copy.key"
expect 1 "one key under two file names" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --key "$T/rm1-copy.key" --channel blue --release 5
expect 1 "a good key and a revoked one" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --key "$REV.key" --channel blue --release 5
expect 1 "a threshold the keyring cannot meet" "$AF" channel set-threshold --store "$S" --keyring "$KR" --key "$RM1.key" --key "$RM2.key" --channel blue --threshold 4
expect 1 "lowering needs the current threshold" "$AF" channel set-threshold --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue --threshold 1
snapshot "$T/after"
same "$T/before" "$T/after" "refused threshold changes changed the store"
expect 0 "two distinct keys" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --key "$RM2.key" --channel blue --release 5
[ "$(active blue)" = "ok 5 4" ] || fail "blue is at $(active blue)"
expect 0 "status --json" "$AF" status --store "$S" --keyring "$KR" --json
[ "$(jq '.channels[] | select(.channel == "blue") | .signers | length' "$T/out")" = 2 ] || fail "status shows both signers"
[ "$(jq '.channels[] | select(.channel == "blue") | .threshold' "$T/out")" = 2 ] || fail "status shows the threshold"

# --- rollback ----------------------------------------------------------------------
expect 1 "rollback below the threshold" "$AF" rollback --store "$S" --keyring "$KR" --key "$RM1.key" --channel blue
expect 0 "rollback (to the previous release)" "$AF" rollback --store "$S" --keyring "$KR" --key "$RM2.key" --key "$RM3.key" --channel blue
contains "$T/out" "blue: release 4 (was 5" "rollback reports"
expect 1 "rollback --to a newer release" "$AF" rollback --store "$S" --keyring "$KR" --key "$RM2.key" --key "$RM3.key" --channel blue --to 5
expect 0 "rollback --to 2" "$AF" rollback --store "$S" --keyring "$KR" --key "$RM2.key" --key "$RM3.key" --channel blue --to 2
[ "$(active blue)" = "ok 2 6" ] || fail "blue is at $(active blue)"
expect 1 "rollback a channel that does not exist" "$AF" rollback --store "$S" --keyring "$KR" --key "$RM1.key" --channel purple
expect 0 "channel history" "$AF" channel history --store "$S" --channel blue
contains "$T/out" "rollback" "history shows the rollback"
contains "$T/out" "set-threshold" "history shows the threshold change"
expect 0 "channel history --json" "$AF" channel history --store "$S" --channel blue --json
[ "$(jq length "$T/out")" = 6 ] || fail "blue has 6 records"

# --- expiry (freeze protection) ---------------------------------------------------
expect 0 "a short-lived release" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --expires 1h --from 4
SHORT=$(cat "$T/out")
expect 0 "promote it to green" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel green --release "$SHORT"
[ "$(AF_NOW=$(at '+30 minutes') active green)" = "ok $SHORT 2" ] || fail "green valid within the hour"
[ "$(AF_NOW=$(at '+2 hours') active green | cut -d' ' -f1)" = expired ] ||
	fail "green expired after the hour: $(AF_NOW=$(at '+2 hours') active green)"
AF_NOW=$(at '+2 hours') expect 0 "status after expiry" "$AF" status --store "$S" --keyring "$KR"
contains "$T/out" "expired" "status shows the expiry"
expect 0 "status without a keyring" "$AF" status --store "$S"
contains "$T/out" "NOT verified" "status says when it did not verify"
expect 0 "renew it" "$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --from "$SHORT"
RENEW=$(cat "$T/out")
AF_NOW=$(at '+2 hours') expect 1 "promote an expired release" "$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel amber --release "$SHORT"
contains "$T/err" "expired" "says expired"

# --- key rotation (daily keys, one hour of overlap) -------------------------------
D1=$(k release-manager day1)
D2=$(k release-manager day2)
R="$T/rot.json"
cp "$KR" "$R"
"$AF" trust add --keyring "$R" --role release-manager --not-before "$(at '-1 hour')" \
	--not-after "$(at '+24 hours')" "$D1.pub" >/dev/null 2>&1
"$AF" trust add --keyring "$R" --role release-manager --not-before "$(at '+23 hours')" \
	--not-after "$(at '+48 hours')" "$D2.pub" >/dev/null 2>&1
expect 0 "day 1: release with today's key" "$AF" release create --store "$S" --keyring "$R" --key "$D1.key" --from 4
DAY1=$(cat "$T/out")
expect 0 "day 1: promote rot" "$AF" promote --store "$S" --keyring "$R" --key "$D1.key" --channel rot --release "$DAY1"
expect 1 "day 1: tomorrow's key is not valid yet" "$AF" promote --store "$S" --keyring "$R" --key "$D2.key" --channel rot2 --release "$DAY1"
export AF_NOW=$(at '+23 hours 30 minutes')
expect 0 "overlap: re-sign with tomorrow's key" "$AF" release create --store "$S" --keyring "$R" --key "$D2.key" --from "$DAY1"
DAY2=$(cat "$T/out")
expect 0 "overlap: promote with tomorrow's key" "$AF" promote --store "$S" --keyring "$R" --key "$D2.key" --channel rot --release "$DAY2"
export AF_NOW=$(at '+25 hours')
expect 1 "day 2: yesterday's key has expired" "$AF" promote --store "$S" --keyring "$R" --key "$D1.key" --channel rot --release "$RENEW"
expect 0 "day 2: status" "$AF" status --store "$S" --keyring "$R" --json
[ "$(jq -r '.channels[] | select(.channel == "rot") | .status' "$T/out")" = ok ] || fail "rot resolves with the new key"
D2_ID=$(jq -r '.channels[] | select(.channel == "rot") | .signers[0]' "$T/out")
"$AF" trust revoke --keyring "$R" --reason "rotated out early" "$D2_ID" >/dev/null
expect 0 "after revoking the new key" "$AF" status --store "$S" --keyring "$R" --json
[ "$(jq -r '.channels[] | select(.channel == "rot") | .status' "$T/out")" = revoked ] || fail "a revoked signer stops the channel"
unset AF_NOW

# --- audit ---------------------------------------------------------------------------
expect 0 "audit verify" "$AF" audit verify --store "$S"
contains "$T/out" "audit log OK" "verify reports"
expect 0 "audit log" "$AF" audit log --store "$S"
contains "$T/out" "refused" "the log shows refusals"
contains "$T/out" "promote" "the log shows promotions"
expect 0 "audit checkpoint" "$AF" audit checkpoint --store "$S" --key "$RM1.key" --out "$T/cp.json"
contains "$T/out" "written to" "checkpoint reports"
expect 0 "audit verify --checkpoint" "$AF" audit verify --store "$S" --keyring "$KR" --checkpoint "$T/cp.json"
contains "$T/out" "checkpoint OK" "checkpoint verifies"
expect 2 "audit verify --checkpoint without a keyring" "$AF" audit verify --store "$S" --checkpoint "$T/cp.json"

# tamper with copies of the store through LMDB's own tools
N=$(audit_count)
tamper() { # NAME OP: a store holding only a copy of the audit log, rewritten
	local dir="$T/$1"
	rm -rf "$dir" && mkdir "$dir"
	mdb_dump -a -p "$S" >"$T/all.dump"
	python3 - "$T/all.dump" "$2" >"$T/all.new" <<'PY'
import sys
text = open(sys.argv[1]).read()
out = []
for section in text.split("DATA=END\n"):
    if not section.strip():
        continue
    lines = section.split("\n")
    end = lines.index("HEADER=END")
    head, body = lines[:end + 1], [l for l in lines[end + 1:] if l.startswith(" ")]
    pairs = [[body[i], body[i + 1]] for i in range(0, len(body), 2)]
    if "database=meta" in head:
        pairs = [p for p in pairs if p[0] == " format"]
    elif "database=audit" not in head:
        # mdb_load cannot read binary values back, and audit verify reads
        # nothing but the audit log: keep each database, with a placeholder
        pairs = [[" placeholder", " -"]]
    if "database=audit" in head:
        op = sys.argv[2]
        if op == "edit":
            pairs[2][1] = pairs[2][1].replace('"outcome":"ok"', '"outcome":"no"')
        elif op == "delete":
            del pairs[3]
        elif op == "reorder":
            pairs[3][1], pairs[4][1] = pairs[4][1], pairs[3][1]
        elif op == "truncate":
            del pairs[-2:]
    out += head + [x for p in pairs for x in p] + ["DATA=END"]
print("\n".join(out))
PY
	mdb_load -f "$T/all.new" "$dir" 2>"$T/load.err" || { grep -v db_pagesize "$T/load.err" >&2; fail "mdb_load"; }
}
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null && command -v python3 >/dev/null; then
	tamper edited edit
	expect 1 "audit verify: an edited entry" "$AF" audit verify --store "$T/edited"
	contains "$T/err" "entry 3" "names the edited entry"
	tamper deleted delete
	expect 1 "audit verify: a deleted entry" "$AF" audit verify --store "$T/deleted"
	contains "$T/err" "deleted" "says deleted"
	tamper reordered reorder
	expect 1 "audit verify: reordered entries" "$AF" audit verify --store "$T/reordered"
	contains "$T/err" "reordered" "says reordered"
	tamper truncated truncate
	expect 0 "audit verify: a truncated log still chains" "$AF" audit verify --store "$T/truncated"
	expect 1 "audit verify --checkpoint: truncation" "$AF" audit verify --store "$T/truncated" --keyring "$KR" --checkpoint "$T/cp.json"
	contains "$T/err" "truncated" "the checkpoint catches truncation"
	expect 1 "audit verify --json on a broken log" "$AF" audit verify --store "$T/edited" --json
	[ "$(jq .ok "$T/out")" = false ] || fail "--json ok false"
else
	echo "note: mdb_dump/mdb_load/python3 missing, LMDB tampering skipped" >&2
fi

# --- kill -9 during promote, 20 times ----------------------------------------------
LOOPS=20
first=$("$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --from 4 2>/dev/null)
for i in $(seq 2 $((LOOPS + 1))); do
	"$AF" release create --store "$S" --keyring "$KR" --key "$RM1.key" --from 4 >/dev/null 2>&1
done
"$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel crash --release "$first" >/dev/null
current=$first
landed=0
for i in $(seq 1 $LOOPS); do
	next=$((current + 1))
	"$AF" promote --store "$S" --keyring "$KR" --key "$RM1.key" --channel crash --release "$next" \
		>/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 5))$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	read -r status release seq < <(active crash)
	checks=$((checks + 1))
	if [ "$status" != ok ] || { [ "$release" != "$current" ] && [ "$release" != "$next" ]; }; then
		fail "kill $i: crash is '$status $release', expected $current or $next"
		break
	fi
	[ "$release" = "$next" ] && { landed=$((landed + 1)); current=$next; }
	expect 0 "kill $i: audit verify" "$AF" audit verify --store "$S"
	"$AF" audit log --store "$S" --json >"$T/log.json"
	ok_promotes=$(jq '[.[] | select(.action == "promote" and .outcome == "ok" and .subject == "channel/crash")] | length' "$T/log.json")
	last=$(jq '[.[] | select(.action == "promote" and .outcome == "ok" and .subject == "channel/crash")][-1].details.release' "$T/log.json")
	checks=$((checks + 1))
	[ "$ok_promotes" = "$seq" ] && [ "$last" = "$release" ] ||
		fail "kill $i: audit ($ok_promotes promotes, last $last) disagrees with the channel (seq $seq, release $release)"
done
echo "kill -9 during promote: $LOOPS kills, $landed landed, $((LOOPS - landed)) absent, never partial"

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
