# tests/lib/procs.sh - sourced by integration tests that start processes.
# stop_pids PID...: stop them the way an operator would, SIGTERM first (the
# runtime drains and exits cleanly, and a coverage build writes its
# counters), then SIGKILL whatever is still there after 5 s. Never fails.
stop_pids() {
	local p i left
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	for i in $(seq 50); do
		left=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
		[ "$left" = 0 ] && return 0
		sleep 0.1
	done
	kill -KILL "$@" 2>/dev/null || true
}
