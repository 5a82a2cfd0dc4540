#!/usr/bin/env bash
# ci/lint/deps.sh (docs/quality.md, "Lint"): clean on the tree's objects,
# and on tiny synthetic objects it finds what it is there to find: a cycle
# of two and of three files (printed with the symbols behind each step), a
# layering break (artifacts using rt_, the runtime using a pipeline
# symbol), an allow-list entry that hides a cycle and one that is stale.
set -euo pipefail
SRC=${AF_SRCDIR:?}
BUILD=${AF_BUILD:?}
CC=${CC:-cc}
DEPS="$SRC/ci/lint/deps.sh"
T=$(mktemp -d /tmp/af-lint-deps.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# run NAME ARGS...: deps.sh's output in $T/NAME.out, its status in rc
run() {
	local name=$1
	shift
	set +e
	sh "$DEPS" "$@" > "$T/$name.out" 2>&1
	rc=$?
	set -e
}
expect() { # expect NAME RC TEXT...: the run exited RC and printed every TEXT
	local name=$1 want=$2
	shift 2
	[ "$rc" = "$want" ] || { cat "$T/$name.out" >&2; fail "$name: exit $rc, expected $want"; }
	for text in "$@"; do
		grep -qF -- "$text" "$T/$name.out" ||
			{ cat "$T/$name.out" >&2; fail "$name: no '$text' in the output"; }
	done
}
# obj TREE PATH.c CODE: compile CODE as TREE/PATH.o
obj() {
	mkdir -p "$(dirname "$1/$2")"
	printf '%s\n' "$3" > "$1/${2%.c}.src.c"
	"$CC" -c -o "$1/${2%.c}.o" "$1/${2%.c}.src.c"
}

# 1. The tree itself (`make lint` runs exactly this after building).
[ -d "$BUILD/obj/artifacts/src" ] || fail "no objects under $BUILD/obj (make all first)"
run tree "$BUILD/obj"
expect tree 0 "deps: no cycle, layering kept"

echo "# no cycle here" > "$T/none.txt"

# 2. One way only: a.c -> b.c is fine.
o="$T/oneway"
obj "$o" artifacts/src/a.c 'int art_b(void); int art_a(void); int art_a(void) { return art_b(); }'
obj "$o" artifacts/src/b.c 'int art_b(void); int art_b(void) { return 1; }'
run oneway --allow "$T/none.txt" "$o"
expect oneway 0 "deps: no cycle, layering kept (2 files)"

# 3. A cycle of two, each step named with its symbol.
o="$T/two"
obj "$o" artifacts/src/a.c 'int art_b(int); int art_a(int); int art_a(int n) { return n ? art_b(n - 1) : 0; }'
obj "$o" artifacts/src/b.c 'int art_a(int); int art_b(int); int art_b(int n) { return n ? art_a(n - 1) : 1; }'
run two --allow "$T/none.txt" "$o"
expect two 1 "deps: cycle between artifacts/src/a.c artifacts/src/b.c:" \
	"artifacts/src/a.c -(art_b)-> artifacts/src/b.c -(art_a)-> artifacts/src/a.c"

# 4. A cycle of three across the runtime's files, through data as well.
o="$T/three"
obj "$o" runtime/src/x.c 'int rt_y(void); int rt_x(void); int rt_x(void) { return rt_y(); }'
obj "$o" runtime/src/y.c 'extern int rt_z_count; int rt_y(void); int rt_y(void) { return rt_z_count; }'
obj "$o" runtime/src/z.c 'int rt_x(void); int rt_z(void); int rt_z_count = 1; int rt_z(void) { return rt_x(); }'
run three --allow "$T/none.txt" "$o"
expect three 1 "deps: cycle between runtime/src/x.c runtime/src/y.c runtime/src/z.c:" \
	"runtime/src/x.c -(rt_y)-> runtime/src/y.c -(rt_z_count)-> runtime/src/z.c -(rt_x)-> runtime/src/x.c"

# 5. The allow-list: an entry breaks the cycle of (3); a stale one fails.
printf '# test\nartifacts/src/b.c artifacts/src/a.c   # tolerated here\n' > "$T/allow.txt"
run allowed --allow "$T/allow.txt" "$T/two"
expect allowed 0 "deps: no cycle"
run stale --allow "$T/allow.txt" "$T/oneway"
expect stale 1 "artifacts/src/b.c does not depend on artifacts/src/a.c (any more): remove the entry"
printf 'artifacts/src/a.c\n' > "$T/bad.txt"
run badline --allow "$T/bad.txt" "$T/oneway"
expect badline 1 'expected "a.c b.c"'

# 6. Layering: artifacts never use rt_ (even undefined anywhere), the
# runtime never uses the pipeline's code.
o="$T/layer"
obj "$o" artifacts/src/a.c 'int rt_thing(void); int art_a(void); int art_a(void) { return rt_thing(); }'
obj "$o" runtime/src/r.c 'int build_helper(void); int rt_r(void); int rt_r(void) { return build_helper(); }'
obj "$o" pipeline/src/p.c 'int build_helper(void); int build_helper(void) { return 2; }'
run layer --allow "$T/none.txt" "$o"
expect layer 1 "deps: layering: artifacts/src/a.c uses rt_thing: artifacts/ uses nothing of runtime/" \
	"deps: layering: runtime/src/r.c uses build_helper (pipeline/src/p.c): the runtime never uses pipeline/ or codegen/"

# 7. Explicit objects: only those count (a stale object is not read).
run explicit --allow "$T/none.txt" "$T/two" "$T/two/artifacts/src/a.o"
expect explicit 0 "(1 files)"

# 8. Usage errors.
run usage
expect usage 2 "usage:"
run empty --allow "$T/none.txt" "$T/nothing-here"
expect empty 2 "deps: no object under"

echo "PASS test_lint_deps"
