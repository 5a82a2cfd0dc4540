#!/usr/bin/env bash
# Signatures (see bench/README.md): art_key_sign / art_key_verify per second
# (bench_sign, built by make) next to `openssl speed rsa2048` in the same
# run. AF_BENCH_SMOKE=1: a fraction of a second each.
set -euo pipefail
SRC=${AF_SRCDIR:-$(pwd)}
BUILD=${BUILD:-build/release}
cd "$SRC"
BIN="$BUILD/bench/bench_sign"
[ -x "$BIN" ] || { echo "$BIN is missing: run it through 'make bench'" >&2; exit 2; }
. "$SRC/bench/lib/figure.sh"
SECS=${AF_BENCH_SECONDS:-2}
[ -z "${AF_BENCH_SMOKE:-}" ] || SECS=0.2
out=$("$BIN" "$SECS")
grep '^|' <<<"$out"
ours_sign=$(awk '/^SIGN / {print $2}' <<<"$out")
ours_verify=$(awk '/^VERIFY / {print $2}' <<<"$out")
# openssl speed takes whole seconds
ssl=$(openssl speed -seconds "$(awk -v s="$SECS" 'BEGIN { print (s < 1 ? 1 : int(s)) }')" rsa2048 2>/dev/null |
	awk '/^rsa 2048 bits/ {print $(NF-1), $NF}')
read -r ssl_sign ssl_verify <<<"$ssl"
echo "| peer: openssl speed rsa2048, sign | ${ssl_sign:-n/a} |"
echo "| peer: openssl speed rsa2048, verify | ${ssl_verify:-n/a} |"
figure "RSA-2048 PSS signatures (art_key_sign)" "$ours_sign" "sign/s" "openssl speed rsa2048" "${ssl_sign:-0}"
figure "RSA-2048 PSS verifications (art_key_verify)" "$ours_verify" "verify/s" "openssl speed rsa2048" "${ssl_verify:-0}"
