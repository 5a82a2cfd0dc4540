# bench/lib/figure.sh - sourced by the bench scripts.
# figure NAME VALUE UNIT [PEER-NAME PEER-VALUE]: records one headline figure
# (and the peer measured in the same run) for `make bench`'s summary table
# and its JSON (bench/summary.py). A no-op unless AF_BENCH_FIGURES is set.
figure() {
	[ -n "${AF_BENCH_FIGURES:-}" ] || return 0
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${BENCH_NAME:-$(basename "$0" .sh)}" "$1" "$2" "$3" \
		"${4:-}" "${5:-}" >>"$AF_BENCH_FIGURES"
}
