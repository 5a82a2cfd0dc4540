#!/usr/bin/env bash
# `agentfactory hooks install` with real `git push`, over file:// and over
# `git daemon` on a free loopback port: a good change is built and the pusher
# sees which agents; an unsigned change and a policy violation are rejected
# with file:line `remote:` lines, the bare repository and the store unchanged
# (the quarantined objects discarded); a branch deletion and a change outside
# templates/ pass without a check or build; one changed leaf rebuilds alone;
# a failing build never fails the push; two concurrent pushes both end built
# and the store verifies. Also install's refusals.
set -euo pipefail

AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:?}
T=$(mktemp -d /tmp/af-hooks.XXXXXX)
"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
DAEMON_PID=
cleanup() {
	if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; fi
	# A detached hook worker may still hold the repository: let it finish.
	for _ in $(seq 1 600); do
		[ -d "$T/srv.git/agentfactory/queue" ] || break
		[ -z "$(ls "$T/srv.git/agentfactory/queue")" ] && break
		sleep 0.5
	done
	rm -rf "$T"
}
trap cleanup EXIT
export TMPDIR="$T/tmp" AF_POLICIES="$SRC/policies"
mkdir -p "$TMPDIR"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
export GIT_CONFIG_NOSYSTEM=1 HOME="$T/home"
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global protocol.file.allow always

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {
	local want=$1; shift
	set +e; "$@" > "$T/out" 2> "$T/err"; local got=$?; set -e
	if [ "$got" -ne "$want" ]; then
		cat "$T/out" "$T/err" >&2
		fail "expected exit $want, got $got: $*"
	fi
}
digests() { "$AF" ls --store "$1" --json | grep -o '"manifest_digest": *"sha256:[0-9a-f]*"' | sort; }
srv_head() { git --git-dir="$T/srv.git" rev-parse -q --verify "refs/heads/$1" || echo none; }
sign() { "$AF" sign --key "$T/keys/template-signer.key" "$@" > /dev/null; }
# push WORKTREE URL REFSPEC... : output in $T/push, exit code returned
push() {
	local w=$1; shift
	set +e; git -C "$w" push "$@" > "$T/push" 2>&1; local rc=$?; set -e
	return $rc
}

SIGNER_ID=$("$AF" keygen --role template-signer --out "$T/keys" 2>/dev/null | grep -o '[0-9a-f]\{64\}' | head -1)
"$AF" keygen --role builder --out "$T/keys" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null

git init -q --bare "$T/srv.git"
STORE="$T/store"

echo "-- install: refusals first"
expect 0 "$AF" hooks --help
expect 2 "$AF" hooks install --repo "$T/srv.git"                       # no keyring
expect 2 "$AF" hooks install --repo "$T/srv.git" --keyring "$T/kr.json" --store "$STORE"
grep -q "builder-key" "$T/err" || fail "store without builder key not explained"
expect 2 "$AF" hooks install --repo "$T/srv.git" --keyring "$T/nope.json"
expect 2 "$AF" hooks install --repo "$T/srv.git" --keyring "$T/kr.json" --policies "$T"
git init -q "$T/notbare"
expect 1 "$AF" hooks install --repo "$T/notbare" --keyring "$T/kr.json"
grep -q "not a bare repository" "$T/err" || fail "non-bare refusal not explained"
printf '#!/bin/sh\necho mine\n' > "$T/srv.git/hooks/pre-receive"
expect 1 "$AF" hooks install --repo "$T/srv.git" --keyring "$T/kr.json"
grep -q "not written by agentfactory" "$T/err" || fail "foreign hook refusal not explained"
grep -q "echo mine" "$T/srv.git/hooks/pre-receive" || fail "a refused install changed the hook"
[ ! -e "$T/srv.git/hooks/post-receive" ] || fail "a refused install wrote post-receive"

echo "-- install (--force replaces the foreign hook; a second install needs no --force)"
expect 0 "$AF" hooks install --repo "$T/srv.git" --keyring "$T/kr.json" --force
expect 0 "$AF" hooks install --repo "$T/srv.git" --keyring "$T/kr.json" --store "$STORE" \
	--builder-key "$T/keys/builder.key" -j 2 --wait 1800
[ -x "$T/srv.git/hooks/pre-receive" ] && [ -x "$T/srv.git/hooks/post-receive" ] || fail "hooks not executable"
grep -qF "AF='$AF'" "$T/srv.git/hooks/pre-receive" || fail "hook does not call the binary by absolute path"
[ "$(git --git-dir="$T/srv.git" config agentfactory.store)" = "$STORE" ] || fail "store not configured"

# A small catalogue: one steps agent and two LLM agents sharing a parent.
W="$T/w"
git init -q "$W"
mkdir -p "$W/templates/bases"
for f in bases/base-agent bases/base-workflow bases/base-reviewer backup-manager senior-reviewer technical-reviewer; do
	cp "$SRC/templates/$f.yaml" "$W/templates/$f.yaml"
done
sign $(find "$W/templates" -name '*.yaml')
git -C "$W" add -A && git -C "$W" commit -qm v1
URL="file://$T/srv.git"

echo "-- good change over file://: checked, built, the pusher sees the agents"
push "$W" "$URL" HEAD:refs/heads/main || { cat "$T/push"; fail "good push refused"; }
grep -q "^remote: agentfactory: refs/heads/main: 6 of 6 templates verified" "$T/push" ||
	grep -q "^remote: agentfactory: refs/heads/main: .*verified and policy-clean" "$T/push" ||
	{ cat "$T/push"; fail "pusher does not see the check"; }
for n in backup-manager senior-reviewer technical-reviewer; do
	grep -Eq "^remote: +built +$n@1.0.0" "$T/push" || { cat "$T/push"; fail "pusher does not see $n built"; }
done
grep -q "^remote: 3 built, 0 unchanged" "$T/push" || { cat "$T/push"; fail "build summary missing"; }
[ "$(srv_head main)" = "$(git -C "$W" rev-parse HEAD)" ] || fail "main not updated"
expect 0 "$AF" verify --store "$STORE" --keyring "$T/kr.json"
digests "$STORE" > "$T/v1.set"
[ "$(wc -l < "$T/v1.set")" = 3 ] || fail "store should hold 3 artifacts"

reject_check() { # what: the push was refused, nothing changed
	local before=$1 bad=$2
	grep -q "pre-receive hook declined" "$T/push" || { cat "$T/push"; fail "$3: not declined"; }
	[ "$(srv_head main)" = "$before" ] || fail "$3: the bare repository's main moved"
	! git --git-dir="$T/srv.git" cat-file -e "$bad" 2>/dev/null || fail "$3: quarantined commit kept"
	digests "$STORE" | cmp -s - "$T/v1.set" || fail "$3: store changed"
	"$AF" audit log --store "$STORE" | grep " refused " | grep -q "\"commit\":\"$bad\"" ||
		fail "$3: the refusal is not in the store's audit log"
}

echo "-- unsigned change: rejected, remote: lines name the file"
before=$(srv_head main)
echo "# an unsigned edit" >> "$W/templates/senior-reviewer.yaml"
git -C "$W" commit -qam unsigned
bad=$(git -C "$W" rev-parse HEAD)
start=$(date +%s%N)
! push "$W" "$URL" HEAD:refs/heads/main || fail "unsigned push accepted"
echo "rejection latency (unsigned, file://): $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep -q "^remote: templates/senior-reviewer.yaml: error\[sig" "$T/push" || { cat "$T/push"; fail "file not named"; }
grep -q "^remote: agentfactory: push rejected" "$T/push" || fail "rejection not explained"
reject_check "$before" "$bad" unsigned
git -C "$W" reset -q --hard HEAD~1

echo "-- policy violation (signed): rejected, remote: lines name file:line"
cp "$SRC/tests/fixtures/policies/tool.shell/fail.yaml" "$W/templates/shell-agent.yaml"
sign "$W/templates/shell-agent.yaml"
git -C "$W" add -A && git -C "$W" commit -qm shell
bad=$(git -C "$W" rev-parse HEAD)
! push "$W" "$URL" HEAD:refs/heads/main || fail "policy violation accepted"
grep -Eq "^remote: templates/shell-agent.yaml:[0-9]+(:[0-9]+)?: .*tool.shell" "$T/push" ||
	{ cat "$T/push"; fail "policy finding without file:line"; }
[ -z "${AF_HOOKS_SHOW:-}" ] || cat "$T/push"
reject_check "$before" "$bad" policy
git -C "$W" reset -q --hard HEAD~1

echo "-- a change outside templates/ and policies/: accepted, not checked, nothing built"
ls "$T/srv.git/agentfactory/results" > "$T/results.before"
echo "notes" > "$W/README.md"
git -C "$W" add -A && git -C "$W" commit -qm readme
push "$W" "$URL" HEAD:refs/heads/main || { cat "$T/push"; fail "irrelevant push refused"; }
grep -q "nothing changed under templates/ or policies/: not checked" "$T/push" || { cat "$T/push"; fail "no skip message"; }
! grep -q "built into" "$T/push" || fail "an irrelevant push was built"
ls "$T/srv.git/agentfactory/results" | cmp -s - "$T/results.before" || fail "an irrelevant push queued a build"
[ "$(srv_head main)" = "$(git -C "$W" rev-parse HEAD)" ] || fail "main not updated"

echo "-- branch create and delete"
push "$W" "$URL" HEAD:refs/heads/topic || { cat "$T/push"; fail "new branch refused"; }
grep -Eq "^remote: 0 built, 3 unchanged" "$T/push" || { cat "$T/push"; fail "new branch not built from cache"; }
push "$W" "$URL" --delete topic || { cat "$T/push"; fail "branch deletion refused"; }
grep -q "refs/heads/topic: deleted, nothing to check" "$T/push" || { cat "$T/push"; fail "deletion not passed untouched"; }
[ "$(srv_head topic)" = none ] || fail "topic not deleted"

echo "-- force-push rewriting history: rejected, audited"
before=$(srv_head main)
git -C "$W" commit -q --amend -m "history rewritten"
bad=$(git -C "$W" rev-parse HEAD)
! push "$W" "$URL" --force HEAD:refs/heads/main || fail "force-push accepted"
grep -q "^remote: agentfactory: refs/heads/main: force-push rewriting history refused" "$T/push" ||
	{ cat "$T/push"; fail "force-push refusal not explained"; }
reject_check "$before" "$bad" force-push
git -C "$W" reset -q --hard "$before"

echo "-- a 200 MB file (outside templates/): rejected, audited"
mkdir -p "$W/data"
head -c 209715200 /dev/zero > "$W/data/big.bin"
git -C "$W" add -A && git -C "$W" commit -qm big
bad=$(git -C "$W" rev-parse HEAD)
set +e; git -C "$W" -c core.bigFileThreshold=1m push "$URL" HEAD:refs/heads/main > "$T/push" 2>&1; rc=$?; set -e
[ "$rc" -ne 0 ] || fail "a 200 MB file was accepted"
grep -q "^remote: agentfactory: refs/heads/main: file data/big.bin (209715200 bytes) is larger than the 52428800-byte limit" "$T/push" ||
	{ cat "$T/push"; fail "oversized file refusal not explained"; }
reject_check "$before" "$bad" "200 MB file"
git -C "$W" reset -q --hard "$before"
rm -rf "$W/data"

echo "-- a symlinked template: rejected"
ln -s backup-manager.yaml "$W/templates/link.yaml"
git -C "$W" add -A && git -C "$W" commit -qm symlink
bad=$(git -C "$W" rev-parse HEAD)
! push "$W" "$URL" HEAD:refs/heads/main || fail "a symlinked template was accepted"
grep -q "^remote: .*templates/link.yaml is a symbolic link" "$T/push" || { cat "$T/push"; fail "symlink refusal not explained"; }
reject_check "$before" "$bad" symlink
git -C "$W" reset -q --hard "$before"

echo "-- git daemon on a free loopback port"
# The port is picked free, then bound by git daemon: another process may take
# it in between, so a daemon that dies at start is retried on a new port.
for attempt in 1 2 3 4 5; do
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	git daemon --reuseaddr --listen=127.0.0.1 --port="$PORT" --base-path="$T" --export-all \
		--enable=receive-pack "$T" > "$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 1 150); do
		git ls-remote "git://127.0.0.1:$PORT/srv.git" > /dev/null 2>&1 && break 2
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.2
	done
	kill "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	cat "$T/daemon.log" >&2
done
[ -n "$DAEMON_PID" ] || fail "git daemon did not start"
GURL="git://127.0.0.1:$PORT/srv.git"
git ls-remote "$GURL" > /dev/null || fail "git daemon not answering on $PORT"

echo "-- one leaf changed (over git://): only it rebuilds"
sed -i 's/^description: Technical peer reviewer/description: Technical reviewer/' "$W/templates/technical-reviewer.yaml"
sign "$W/templates/technical-reviewer.yaml"
git -C "$W" commit -qam leaf
push "$W" "$GURL" HEAD:refs/heads/main || { cat "$T/push"; fail "leaf push refused"; }
grep -Eq "^remote: +built +technical-reviewer@1.0.0" "$T/push" || { cat "$T/push"; fail "leaf not rebuilt"; }
grep -Eq "^remote: +cached +senior-reviewer@1.0.0" "$T/push" || { cat "$T/push"; fail "sibling rebuilt"; }
grep -Eq "^remote: +cached +backup-manager@1.0.0" "$T/push" || { cat "$T/push"; fail "other agent rebuilt"; }
grep -q "^remote: 1 built, 2 unchanged" "$T/push" || { cat "$T/push"; fail "expected 1 built, 2 unchanged"; }
digests "$STORE" > "$T/v2.set"
[ "$(comm -12 "$T/v1.set" "$T/v2.set" | wc -l)" = 2 ] || fail "exactly two artifacts should be unchanged"

echo "-- unsigned change over git://: rejected with remote: lines"
before=$(srv_head main)
echo "# unsigned" >> "$W/templates/backup-manager.yaml"
git -C "$W" commit -qam unsigned2
bad=$(git -C "$W" rev-parse HEAD)
start=$(date +%s%N)
! push "$W" "$GURL" HEAD:refs/heads/main || fail "unsigned push accepted over git://"
echo "rejection latency (unsigned, git://): $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep -q "^remote: templates/backup-manager.yaml: error\[sig" "$T/push" || { cat "$T/push"; fail "file not named over git://"; }
cp "$T/v2.set" "$T/v1.set"
reject_check "$before" "$bad" "unsigned over git://"
git -C "$W" reset -q --hard HEAD~1

echo "-- a failing build never fails the push"
git --git-dir="$T/srv.git" config agentfactory.builderkey "$T/keys/missing.key"
sed -i 's/^description: Technical reviewer/description: A technical reviewer/' "$W/templates/technical-reviewer.yaml"
sign "$W/templates/technical-reviewer.yaml"
git -C "$W" commit -qam leaf2
push "$W" "$URL" HEAD:refs/heads/main || { cat "$T/push"; fail "a push with a failing build was refused"; }
grep -q "^remote: agentfactory: build FAILED (exit 2), nothing stored" "$T/push" || { cat "$T/push"; fail "build failure not shown"; }
digests "$STORE" | cmp -s - "$T/v2.set" || fail "a failed build changed the store"
git --git-dir="$T/srv.git" config agentfactory.builderkey "$T/keys/builder.key"

echo "-- two concurrent pushes (file:// and git://, two branches): both end built, store verifies"
git clone -q "$URL" "$T/w2"
git -C "$T/w2" checkout -q -b other
sed -i 's/^description: Senior/description: The senior/' "$T/w2/templates/senior-reviewer.yaml"
sign "$T/w2/templates/senior-reviewer.yaml"
git -C "$T/w2" commit -qam other
sed -i 's/^description: A technical reviewer/description: Technical reviewer, again/' "$W/templates/technical-reviewer.yaml"
sign "$W/templates/technical-reviewer.yaml"
git -C "$W" commit -qam leaf3
set +e
git -C "$W" push "$URL" HEAD:refs/heads/main > "$T/pushA" 2>&1 & pa=$!
git -C "$T/w2" push "$GURL" HEAD:refs/heads/other > "$T/pushB" 2>&1 & pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
set -e
[ $ra = 0 ] && [ $rb = 0 ] || { cat "$T/pushA" "$T/pushB"; fail "a concurrent push failed ($ra, $rb)"; }
grep -Eq "^remote: +built +technical-reviewer@1.0.0" "$T/pushA" || { cat "$T/pushA"; fail "push A not built"; }
grep -Eq "^remote: +built +senior-reviewer@1.0.0" "$T/pushB" || { cat "$T/pushB"; fail "push B not built"; }
for rev in "$(git -C "$W" rev-parse HEAD)" "$(git -C "$T/w2" rev-parse HEAD)"; do
	grep -q "$rev build exit 0" "$T/srv.git/agentfactory/builds.log" || fail "no successful build of $rev"
done
[ -z "$(ls "$T/srv.git/agentfactory/queue")" ] || fail "queue not drained"
expect 0 "$AF" verify --store "$STORE" --keyring "$T/kr.json"
expect 0 "$AF" audit verify --store "$STORE"

echo "-- the worker killed (-9, with its build) mid-build: store intact, job kept, built by the next worker"
git --git-dir="$T/srv.git" config agentfactory.wait 0
digests "$STORE" > "$T/before-kill.set"
printf 'limits:\n  max_steps: 7\n' >> "$W/templates/bases/base-reviewer.yaml"
sign "$W/templates/bases/base-reviewer.yaml"
git -C "$W" commit -qam parent
push "$W" "$URL" HEAD:refs/heads/main || { cat "$T/push"; fail "parent push refused"; }
job=$(ls "$T/srv.git/agentfactory/queue" | grep '\.job$' | head -1)
[ -n "$job" ] || fail "no job queued"
name=${job%.job}
for _ in $(seq 1 600); do [ -e "$T/srv.git/agentfactory/results/$name.err" ] && break; sleep 0.05; done
[ -e "$T/srv.git/agentfactory/results/$name.err" ] || fail "the worker did not start the build"
wpid=$(cat "$T/srv.git/agentfactory/worker.pid")
kill -9 -- "-$wpid"
for _ in $(seq 1 100); do kill -0 -- "-$wpid" 2>/dev/null || break; sleep 0.1; done
[ ! -e "$T/srv.git/agentfactory/results/$name.rc" ] || fail "the build finished before the kill"
[ -e "$T/srv.git/agentfactory/queue/$job" ] || fail "the killed worker's job was lost"
expect 0 "$AF" verify --store "$STORE" --keyring "$T/kr.json"
digests "$STORE" | cmp -s - "$T/before-kill.set" || fail "a killed build changed the store"
(cd "$T/srv.git" && GIT_DIR=. hooks/post-receive --drain) || fail "drain failed"
[ "$(cat "$T/srv.git/agentfactory/results/$name.rc")" = 0 ] || fail "the killed job was not rebuilt"
grep -Eq "^ +built +senior-reviewer@1.0.0" "$T/srv.git/agentfactory/results/$name.out" || fail "parent change not rebuilt"
digests "$STORE" | cmp -s - "$T/before-kill.set" && fail "the rebuilt job did not reach the store"
expect 0 "$AF" verify --store "$STORE" --keyring "$T/kr.json"
git --git-dir="$T/srv.git" config agentfactory.wait 1800

echo "-- a job left by a killed worker is built by the next one (post-receive --drain)"
main=$(srv_head main)
printf '%s refs/heads/main\n' "$main" > "$T/srv.git/agentfactory/queue/1000000000000000000-1-1.job"
(cd "$T/srv.git" && GIT_DIR=. hooks/post-receive --drain) || fail "drain failed"
[ "$(cat "$T/srv.git/agentfactory/results/1000000000000000000-1-1.rc")" = 0 ] || fail "left-over job not built"
[ -z "$(ls "$T/srv.git/agentfactory/queue")" ] || fail "queue not drained"
(cd "$T/srv.git" && GIT_DIR=. hooks/post-receive --drain) || fail "drain of an empty queue failed"

echo "-- a template signed by a revoked key: rejected"
"$AF" trust revoke --keyring "$T/kr.json" --reason "test" "$SIGNER_ID" > /dev/null
before=$(srv_head main)
git -C "$W" pull -q --no-rebase "$URL" main 2>/dev/null || true
sed -i 's/^description: Technical reviewer, again/description: Technical reviewer, revoked/' "$W/templates/technical-reviewer.yaml"
sign "$W/templates/technical-reviewer.yaml"
git -C "$W" commit -qam revoked
bad=$(git -C "$W" rev-parse HEAD)
! push "$W" "$URL" HEAD:refs/heads/main || fail "a template signed by a revoked key was accepted"
grep -q "^remote: templates/technical-reviewer.yaml: error\[sig\.revoked\]" "$T/push" ||
	grep -q "^remote: templates/technical-reviewer.yaml: .*revoked" "$T/push" || { cat "$T/push"; fail "revocation not named"; }
[ "$(srv_head main)" = "$before" ] || fail "revoked: main moved"
[ -z "${AF_HOOKS_SHOW:-}" ] || cat "$T/pushA" "$T/pushB"
echo "PASS test_hooks"
