/*
 * hooks_scripts.h - the server-side git hooks `agentfactory hooks install`
 * writes (POSIX sh). "@AF@" is replaced by the shell-quoted absolute path of
 * the agentfactory binary; everything else is read at run time from the
 * repository's git config (agentfactory.*), so changing a setting never
 * needs the scripts rewritten. docs/hooks.md describes both.
 *
 * The first line after the shebang is the marker by which install recognises
 * a hook it may overwrite (any other existing hook needs --force).
 */
#ifndef AF_HOOKS_SCRIPTS_H
#define AF_HOOKS_SCRIPTS_H

#define HOOKS_MARKER "# agentfactory-hook v1"

/*
 * pre-receive: check every pushed revision that changes the templates folder
 * or policies/, reject the whole push on a finding. The pushed objects are
 * still in git's quarantine here; agentfactory reads them through
 * GIT_QUARANTINE_PATH (pipe_source_read).
 */
static const char hooks_pre_receive[] =
	"#!/bin/sh\n"
	HOOKS_MARKER "\n"
	"# pre-receive, written by `agentfactory hooks install` (re-run it to change this file;\n"
	"# settings: `git config agentfactory.*` in this repository, see docs/hooks.md).\n"
	"#\n"
	"# Every pushed revision that changes the templates folder or policies/ is\n"
	"# checked with `agentfactory check` (signatures, schema, inheritance, policy);\n"
	"# one finding rejects the whole push, and the findings (file:line) are shown to\n"
	"# the pusher. Branch deletions and pushes that change neither folder pass.\n"
	"AF=@AF@\n"
	"exec >&2\n"
	"repo=$(cd \"${GIT_DIR:-.}\" && pwd -P) || exit 2\n"
	"cfg() { git config --get \"agentfactory.$1\"; }\n"
	"keyring=$(cfg keyring) policies=$(cfg policies) subdir=$(cfg dir) store=$(cfg store)\n"
	"if [ -z \"$keyring\" ]; then\n"
	"\techo \"agentfactory: agentfactory.keyring is not set in $repo: push refused\"\n"
	"\techo \"agentfactory: (run agentfactory hooks install --repo $repo --keyring FILE)\"\n"
	"\texit 1\n"
	"fi\n"
	"dir=${subdir:-templates}\n"
	"out=$(mktemp \"${TMPDIR:-/tmp}/af-pre-receive.XXXXXX\") || exit 2\n"
	"trap 'rm -f \"$out\"' EXIT\n"
	"refused=0 checked=' '\n"
	"while read -r old new ref; do\n"
	"\tcase $new in *[!0]*) ;; *) echo \"agentfactory: $ref: deleted, nothing to check\"; continue ;; esac\n"
	"\tcase $old in\n"
	"\t*[!0]*)\n"
	"\t\tif git diff --quiet \"$old\" \"$new\" -- \"$dir\" policies 2>/dev/null; then\n"
	"\t\t\techo \"agentfactory: $ref: nothing changed under $dir/ or policies/: not checked\"\n"
	"\t\t\tcontinue\n"
	"\t\tfi ;;\n"
	"\t*)\n"
	"\t\tif [ -z \"$(git ls-tree --name-only \"$new\" -- \"$dir\" policies 2>/dev/null)\" ] &&\n"
	"\t\t   git rev-parse -q --verify \"$new^{commit}\" >/dev/null; then\n"
	"\t\t\techo \"agentfactory: $ref: no $dir/ or policies/ folder: not checked\"\n"
	"\t\t\tcontinue\n"
	"\t\tfi ;;\n"
	"\tesac\n"
	"\tcase $checked in *\" $new \"*) continue ;; esac\n"
	"\tchecked=\"$checked$new \"\n"
	"\tset -- check --repo \"$repo\" --rev \"$new\" --keyring \"$keyring\"\n"
	"\t[ -z \"$policies\" ] || set -- \"$@\" --policies \"$policies\"\n"
	"\t[ -z \"$subdir\" ] || set -- \"$@\" --dir \"$subdir\"\n"
	"\t[ -z \"$store\" ] || set -- \"$@\" --store \"$store\"\n"
	"\t\"$AF\" \"$@\" >\"$out\" 2>&1 </dev/null\n"
	"\trc=$?\n"
	"\tif [ \"$rc\" -eq 0 ]; then\n"
	"\t\techo \"agentfactory: $ref: $(tail -n 1 \"$out\")\"\n"
	"\telse\n"
	"\t\techo \"agentfactory: $ref: $new refused (check exit $rc):\"\n"
	"\t\tgrep -v -e '^  ok ' -e '^$' \"$out\"\n"
	"\t\trefused=1\n"
	"\tfi\n"
	"done\n"
	"if [ \"$refused\" -ne 0 ]; then\n"
	"\techo \"agentfactory: push rejected: fix the findings above (re-sign with agentfactory sign) and push again\"\n"
	"\texit 1\n"
	"fi\n"
	"exit 0\n";

/*
 * post-receive: queue a build of each accepted revision (on a branch that
 * matches agentfactory.branches) that changed the templates or policies, and
 * start a worker for the queue. One worker runs at a time (flock on
 * agentfactory/lock), oldest job first, detached from the push; a job file is
 * removed only after its build ended, and a build is one store transaction,
 * so concurrent pushes are serialised, a killed worker's job is redone by the
 * next one, and no half build is ever visible. The hook waits at most
 * agentfactory.wait seconds for this push's builds and prints their result
 * (which agents were built), then exits 0 whatever happened: a failing or
 * slow build never holds the git server. `hooks/post-receive --drain` runs
 * the worker in the foreground (cron, or after a crash).
 */
static const char hooks_post_receive[] =
	"#!/bin/sh\n"
	HOOKS_MARKER "\n"
	"# post-receive, written by `agentfactory hooks install` (re-run it to change this file;\n"
	"# settings: `git config agentfactory.*` in this repository, see docs/hooks.md).\n"
	"#\n"
	"# Queues a build of each accepted revision that changed the templates or\n"
	"# policies, runs the queue in one detached worker at a time (flock), waits at\n"
	"# most agentfactory.wait seconds to print what was built, and always exits 0.\n"
	"# `hooks/post-receive --drain` runs the queue in the foreground.\n"
	"AF=@AF@\n"
	"set -f\n"
	"repo=$(cd \"${GIT_DIR:-.}\" && pwd -P) || exit 0\n"
	"state=$repo/agentfactory queue=$repo/agentfactory/queue results=$repo/agentfactory/results\n"
	"cfg() { git --git-dir=\"$repo\" config --get \"agentfactory.$1\"; }\n"
	"\n"
	"drain() {\n"
	"\tmkdir -p \"$queue\" \"$results\" || return 2\n"
	"\texec 9>>\"$state/lock\"\n"
	"\tflock 9 || return 2\n"
	"\twhile :; do\n"
	"\t\tjob=$(ls \"$queue\" | grep '^[0-9][0-9-]*\\.job$' | sort | head -n 1)\n"
	"\t\t[ -n \"$job\" ] || break\n"
	"\t\tname=${job%.job}\n"
	"\t\tread -r rev ref < \"$queue/$job\"\n"
	"\t\tset -- build --repo \"$repo\" --rev \"$rev\" --keyring \"$(cfg keyring)\" \\\n"
	"\t\t\t--builder-key \"$(cfg builderkey)\" --store \"$(cfg store)\"\n"
	"\t\tv=$(cfg policies) && set -- \"$@\" --policies \"$v\"\n"
	"\t\tv=$(cfg dir) && set -- \"$@\" --dir \"$v\"\n"
	"\t\tv=$(cfg jobs) && set -- \"$@\" -j \"$v\"\n"
	"\t\t\"$AF\" \"$@\" >\"$results/$name.out\" 2>\"$results/$name.err\" </dev/null 9>&-\n"
	"\t\trc=$?\n"
	"\t\techo \"$(date -u +%Y-%m-%dT%H:%M:%SZ) $ref $rev build exit $rc\" >>\"$state/builds.log\"\n"
	"\t\techo \"$rc\" >\"$results/$name.rc.tmp\" && mv -f \"$results/$name.rc.tmp\" \"$results/$name.rc\"\n"
	"\t\trm -f \"$queue/$job\"\n"
	"\tdone\n"
	"\tfind \"$results\" -type f -mmin +1440 -delete 2>/dev/null\n"
	"\treturn 0\n"
	"}\n"
	"if [ \"${1:-}\" = --drain ]; then drain; exit $?; fi\n"
	"\n"
	"exec >&2\n"
	"[ -n \"$(cfg store)\" ] || exit 0\n"
	"mkdir -p \"$queue\" \"$results\" || exit 0\n"
	"branches=$(cfg branches) subdir=$(cfg dir) wait=$(cfg wait)\n"
	"branches=${branches:-refs/heads/*} dir=${subdir:-templates} wait=${wait:-600}\n"
	"jobs='' n=0\n"
	"while read -r old new ref; do\n"
	"\tcase $new in *[!0]*) ;; *) continue ;; esac\n"
	"\tmatched=0\n"
	"\tfor pattern in $branches; do case $ref in $pattern) matched=1 ;; esac; done\n"
	"\t[ \"$matched\" = 1 ] || continue\n"
	"\tcase $old in\n"
	"\t*[!0]*)\n"
	"\t\tif git diff --quiet \"$old\" \"$new\" -- \"$dir\" policies 2>/dev/null; then\n"
	"\t\t\techo \"agentfactory: $ref: nothing changed under $dir/ or policies/: nothing to build\"\n"
	"\t\t\tcontinue\n"
	"\t\tfi ;;\n"
	"\tesac\n"
	"\tn=$((n + 1))\n"
	"\tname=$(date +%s%N)-$$-$n\n"
	"\tprintf '%s %s\\n' \"$new\" \"$ref\" >\"$queue/$name.tmp\" && mv -f \"$queue/$name.tmp\" \"$queue/$name.job\" || continue\n"
	"\tjobs=\"$jobs $name\"\n"
	"\techo \"agentfactory: $ref: build of $new queued\"\n"
	"done\n"
	"[ -n \"$jobs\" ] || exit 0\n"
	"setsid \"$0\" --drain </dev/null >>\"$state/worker.log\" 2>&1 &\n"
	"deadline=$(( $(date +%s) + wait ))\n"
	"for name in $jobs; do\n"
	"\twhile [ ! -e \"$results/$name.rc\" ]; do\n"
	"\t\tif [ \"$(date +%s)\" -ge \"$deadline\" ]; then\n"
	"\t\t\techo \"agentfactory: still building after ${wait}s; the build goes on (results: $results/$name.out)\"\n"
	"\t\t\texit 0\n"
	"\t\tfi\n"
	"\t\tsleep 0.2\n"
	"\tdone\n"
	"\trc=$(cat \"$results/$name.rc\")\n"
	"\tif [ \"$rc\" = 0 ]; then\n"
	"\t\techo \"agentfactory: built into $(cfg store):\"\n"
	"\t\tcat \"$results/$name.out\"\n"
	"\telse\n"
	"\t\techo \"agentfactory: build FAILED (exit $rc), nothing stored; the push itself is accepted:\"\n"
	"\t\tcat \"$results/$name.out\"\n"
	"\t\ttail -n 20 \"$results/$name.err\"\n"
	"\tfi\n"
	"done\n"
	"exit 0\n";

#endif
