#!/bin/sh
# deps.sh - the dependencies between the library sources go one way. Run by
# `make lint` (after the objects are built); usage:
#   ci/lint/deps.sh [--allow FILE] OBJDIR [OBJECT...]
#
# OBJDIR is an object tree such as build/release/obj; the objects of the
# library sources (by default every OBJDIR/{artifacts,pipeline,codegen,
# runtime}/src/*.o; the Makefile names them, so that no stale object of a
# removed source counts) are read with nm. File a.c depends on b.c when a.o
# has an undefined global symbol that b.o defines (a call, or a use of its
# data). Fails, printing what it found, when:
#  - the dependencies form a cycle (a.c -> b.c -> ... -> a.c): one file of a
#    cycle can no longer be understood, tested or replaced without the
#    others. Each cycle is printed with the symbol behind every step. A
#    cycle is broken by moving what both sides need into a file below them,
#    or by a callback the lower file is given (see docs/quality.md);
#  - the layering (STYLE.md, point 1) is broken: a runtime object uses a
#    pipe_ or gen_ symbol or one defined in pipeline/ or codegen/; an
#    artifacts object uses an rt_, pipe_ or gen_ symbol or one defined
#    outside artifacts/.
#
# The allow-list (--allow FILE; default ci/lint/deps-allow.txt beside this
# script) names dependencies left out of the cycle search, one "a.c b.c" a
# line (paths as printed, e.g. runtime/src/x.c), each with a comment saying
# why it is tolerated. An entry that names no existing dependency is an
# error, so the list only shrinks. Exit status: 0 clean, 1 found, 2 usage.
set -eu
allow=$(dirname "$0")/deps-allow.txt
if [ "${1:-}" = --allow ] && [ $# -ge 2 ]; then
	allow=$2
	shift 2
fi
if [ $# -lt 1 ]; then
	echo "usage: $0 [--allow FILE] OBJDIR [OBJECT...]" >&2
	exit 2
fi
objdir=${1%/}
shift
[ -r "$allow" ] || { echo "deps: no allow-list $allow" >&2; exit 2; }

if [ $# -gt 0 ]; then
	objs=$*
else
	objs=$(for d in artifacts pipeline codegen runtime; do
		for o in "$objdir/$d"/src/*.o; do
			if [ -f "$o" ]; then echo "$o"; fi
		done
	done)
fi
if [ -z "$objs" ]; then
	echo "deps: no object under $objdir/{artifacts,pipeline,codegen,runtime}/src" >&2
	exit 2
fi

# shellcheck disable=SC2086
nm -A -P -g $objs | awk -v prefix="$objdir/" -v allow="$allow" '
function file_of(path) {
	sub(/:$/, "", path)
	if (index(path, prefix) == 1)
		path = substr(path, length(prefix) + 1)
	sub(/\.o$/, ".c", path)
	return path
}
function dir_of(f) { return substr(f, 1, index(f, "/") - 1) }
BEGIN {
	while ((getline line < allow) > 0) {
		sub(/#.*/, "", line)
		if (split(line, w, " ") == 0)
			continue
		if (split(line, w, " ") != 2) {
			printf "deps: %s: \"%s\": expected \"a.c b.c\"\n", allow, line
			bad = 1
			continue
		}
		allowed[w[1] SUBSEP w[2]] = 1
	}
}
{
	f = file_of($1)
	if (!(f in seen)) {
		seen[f] = 1
		node[++n] = f
	}
	if ($3 == "U" || $3 == "w")
		undef[f SUBSEP $2] = 1
	else if (!($2 in def))
		def[$2] = f
}
END {
	for (k in undef) {
		split(k, p, SUBSEP)
		f = p[1]; s = p[2]; to = (s in def) ? def[s] : ""
		d = dir_of(f); td = to == "" ? "" : dir_of(to)
		why = ""
		if (d == "runtime" && (s ~ /^(pipe|gen)_/ || td == "pipeline" || td == "codegen"))
			why = "the runtime never uses pipeline/ or codegen/"
		if (d == "artifacts" && (s ~ /^(rt|pipe|gen)_/ || (td != "" && td != "artifacts")))
			why = "artifacts/ uses nothing of runtime/, pipeline/ or codegen/"
		if (why != "") {
			printf "deps: layering: %s uses %s%s: %s\n", f, s,
			       to == "" ? "" : " (" to ")", why
			bad = 1
		}
		if (to == "" || to == f)
			continue
		if ((f SUBSEP to) in allowed) {
			used[f SUBSEP to] = 1
			continue
		}
		if (!((f SUBSEP to) in via) || s < via[f SUBSEP to])
			via[f SUBSEP to] = s   # one symbol per edge, the same every run
	}
	for (k in allowed)
		if (!(k in used)) {
			split(k, p, SUBSEP)
			printf "deps: %s: %s does not depend on %s (any more): remove the entry\n",
			       allow, p[1], p[2]
			bad = 1
		}
	# reach[i,j]: a path from node i to node j (transitive closure)
	for (i = 1; i <= n; i++)
		for (j = 1; j <= n; j++)
			if ((node[i] SUBSEP node[j]) in via)
				reach[i, j] = 1
	for (m = 1; m <= n; m++)
		for (i = 1; i <= n; i++)
			if ((i, m) in reach)
				for (j = 1; j <= n; j++)
					if ((m, j) in reach)
						reach[i, j] = 1
	# every strongly connected component of more than one file, once,
	# with its shortest cycle through its first file (breadth first)
	for (i = 1; i <= n; i++) {
		if (done[i] || !((i, i) in reach))
			continue
		members = ""
		for (j = 1; j <= n; j++)
			if ((i, j) in reach && (j, i) in reach) {
				done[j] = 1
				members = members " " node[j]
			}
		split("", prev); split("", queue)
		head = 1; tail = 0; found = 0
		queue[++tail] = i
		while (head <= tail && !found) {
			u = queue[head++]
			for (j = 1; j <= n; j++)
				if ((node[u] SUBSEP node[j]) in via && (j, i) in reach) {
					if (j == i) { last = u; found = 1; break }
					if (!(j in prev)) { prev[j] = u; queue[++tail] = j }
				}
		}
		# the path back from last, turned round: i -> ... -> last -> i
		k = 0
		for (u = last; u != i; u = prev[u])
			chain[++k] = u
		line = node[i]
		from = i
		for (; k >= 1; k--) {
			line = line " -(" via[node[from] SUBSEP node[chain[k]]] ")-> " node[chain[k]]
			from = chain[k]
		}
		line = line " -(" via[node[from] SUBSEP node[i]] ")-> " node[i]
		printf "deps: cycle between%s:\n    %s\n", members, line
		bad = 1
	}
	if (bad)
		exit 1
	printf "deps: no cycle, layering kept (%d files)\n", n
}'
