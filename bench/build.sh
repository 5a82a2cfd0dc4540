#!/usr/bin/env bash
# Build benchmarks: per-agent stage times, full build of the sample
# catalogue with -j1 and -j2, incremental rebuild after editing one leaf
# template, and artifact sizes raw / zstd / zstd + dictionary.
# Usage: AF=build/release/bin/agentfactory bash bench/build.sh
# Prints a Markdown table. Figures, not assertions.
# AF_BENCH_SMOKE=1: a three-template catalogue, to prove it still runs.
# BENCH_AGENTS=N: agents in the synthetic catalogue (bench/catalogue.py,
# default 500, 4 with AF_BENCH_SMOKE) built -j2 cold (first build, fresh
# store) and warm (the same again into another fresh store), then rebuilt
# after editing one leaf; BENCH_AGENTS=0 skips it.
set -euo pipefail
AF=${AF:?AF must point at the agentfactory binary}
SRC=${AF_SRCDIR:-$(pwd)}
T=$(mktemp -d /tmp/af-bench-build.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AF_POLICIES="$SRC/policies" TMPDIR="$T"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid

"$AF" keygen --role root --out "$T/root" >/dev/null 2>&1 && export AF_ROOT_KEY="$T/root/root.key" # keyrings are signed by their root key
"$AF" keygen --role template-signer --out "$T/keys" > /dev/null 2>&1
"$AF" keygen --role builder --out "$T/keys" > /dev/null 2>&1
"$AF" trust add --keyring "$T/kr.json" --role template-signer "$T/keys/template-signer.pub" > /dev/null 2>&1
"$AF" trust add --keyring "$T/kr.json" --role builder "$T/keys/builder.pub" > /dev/null 2>&1
git init -q "$T/repo"
if [ -n "${AF_BENCH_SMOKE:-}" ]; then
	mkdir -p "$T/repo/templates/bases"
	for f in bases/base-agent bases/base-engineer tester; do
		cp "$SRC/templates/$f.yaml" "$T/repo/templates/$f.yaml"
	done
else
	cp -r "$SRC/templates" "$T/repo/"
fi
"$AF" sign --key "$T/keys/template-signer.key" $(find "$T/repo/templates" -name '*.yaml') > /dev/null
git -C "$T/repo" add -A && git -C "$T/repo" commit -qm v1
B=(--repo "$T/repo" --rev HEAD --keyring "$T/kr.json" --builder-key "$T/keys/builder.key" --json)

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
avg() { grep -o "\"$1\": *[0-9.]*" "$2" | awk -F: '{s+=$2; n++} END {printf "%.0f", s/n}'; }
stat_of() { "$AF" ls --store "$1" --json | grep -o "\"$2\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }

t=$(date +%s%N); "$AF" build "${B[@]}" --store "$T/s1" -j 1 > "$T/j1.json" 2>/dev/null; j1=$(ms "$t")
t=$(date +%s%N); "$AF" build "${B[@]}" --store "$T/s2" -j 2 > "$T/j2.json" 2>/dev/null; j2=$(ms "$t")
n=$(grep -o '"built": *[0-9]*' "$T/j1.json" | grep -o '[0-9]*$')
t=$(date +%s%N); "$AF" build "${B[@]}" --store "$T/s2" > /dev/null 2>&1; noop=$(ms "$t")
sed -i 's/^description: \(.*\)/description: \1 (edited)/' "$T/repo/templates/tester.yaml"
"$AF" sign --key "$T/keys/template-signer.key" "$T/repo/templates/tester.yaml" > /dev/null
git -C "$T/repo" commit -qam leaf
t=$(date +%s%N); "$AF" build "${B[@]}" --store "$T/s2" > "$T/inc.json" 2>/dev/null; inc=$(ms "$t")
inc_built=$(grep -o '"built": *[0-9]*' "$T/inc.json" | grep -o '[0-9]*$')
AF_ZSTD_DICT=0 "$AF" build "${B[@]}" --store "$T/s3" -j 2 > /dev/null 2>&1

. "$SRC/bench/lib/figure.sh"
figure "agents built per minute, full build -j2, $n agents" "$(( n * 60000 / (j2 > 0 ? j2 : 1) ))" "agents/min"
figure "per agent, clang + wasm2c + cc, mean" "$(( $(avg wasm "$T/j1.json") + $(avg wasm2c "$T/j1.json") + $(avg native "$T/j1.json") ))" "ms"
figure "rebuild after editing one leaf ($inc_built agent rebuilt)" "$inc" "ms"

# The synthetic catalogue.
agents=${BENCH_AGENTS:-500}
[ -n "${AF_BENCH_SMOKE:-}" ] && agents=${BENCH_AGENTS:-4}
if [ "$agents" -gt 0 ]; then
	git init -q "$T/cat"
	python3 "$SRC/bench/catalogue.py" -n "$agents" "$SRC/templates" "$T/cat/templates"
	"$AF" sign --key "$T/keys/template-signer.key" $(find "$T/cat/templates" -name '*.yaml') > /dev/null
	git -C "$T/cat" add -A && git -C "$T/cat" commit -qm v1
	C=(--repo "$T/cat" --rev HEAD --keyring "$T/kr.json" --builder-key "$T/keys/builder.key" --json)
	t=$(date +%s%N); "$AF" build "${C[@]}" --store "$T/c1" -j 2 > "$T/c1.json" 2>/dev/null; cold=$(ms "$t")
	t=$(date +%s%N); "$AF" build "${C[@]}" --store "$T/c2" -j 2 > "$T/c2.json" 2>/dev/null; warm=$(ms "$t")
	cn=$(grep -o '"built": *[0-9]*' "$T/c1.json" | grep -o '[0-9]*$')
	leaf=$(ls "$T/cat/templates" | grep -- '-0000.yaml$' | head -1)
	sed -i 's/^description: \(.*\)/description: \1 (edited)/' "$T/cat/templates/$leaf"
	"$AF" sign --key "$T/keys/template-signer.key" "$T/cat/templates/$leaf" > /dev/null
	git -C "$T/cat" commit -qam leaf
	t=$(date +%s%N); "$AF" build "${C[@]}" --store "$T/c2" > "$T/cinc.json" 2>/dev/null; cinc=$(ms "$t")
	cinc_built=$(grep -o '"built": *[0-9]*' "$T/cinc.json" | grep -o '[0-9]*$')
	figure "agents/min, synthetic catalogue, cold, -j2, $cn agents" "$(( cn * 60000 / (cold > 0 ? cold : 1) ))" "agents/min"
	figure "agents/min, synthetic catalogue, warm, -j2, $cn agents" "$(( cn * 60000 / (warm > 0 ? warm : 1) ))" "agents/min"
	figure "synthetic catalogue, rebuild after editing one leaf ($cinc_built rebuilt)" "$cinc" "ms"
fi
raw=$(stat_of "$T/s1" raw_bytes); dict=$(stat_of "$T/s1" stored_bytes); nodict=$(stat_of "$T/s3" stored_bytes)
echo "| measure | value |"
echo "|---|---|"
echo "| agents in the sample catalogue | $n |"
echo "| per agent, C -> wasm (clang-19, 3 units + link), mean | $(avg wasm "$T/j1.json") ms |"
echo "| per agent, wasm2c, mean | $(avg wasm2c "$T/j1.json") ms |"
echo "| per agent, cc -O2 -shared, mean | $(avg native "$T/j1.json") ms |"
echo "| full build -j1 | $j1 ms |"
echo "| full build -j2 | $j2 ms |"
echo "| rebuild, nothing changed | $noop ms |"
echo "| rebuild after editing one leaf ($inc_built agent rebuilt) | $inc ms |"
if [ "$agents" -gt 0 ]; then
	echo "| synthetic catalogue, agents built | $cn |"
	echo "| synthetic, cold build -j2 | $cold ms ($(( cn * 60000 / (cold > 0 ? cold : 1) )) agents/min) |"
	echo "| synthetic, warm build -j2 | $warm ms ($(( cn * 60000 / (warm > 0 ? warm : 1) )) agents/min) |"
	echo "| synthetic, rebuild after editing one leaf ($cinc_built agent rebuilt) | $cinc ms |"
	echo "| synthetic, per agent clang / wasm2c / cc, mean | $(avg wasm "$T/c1.json") / $(avg wasm2c "$T/c1.json") / $(avg native "$T/c1.json") ms |"
fi
echo "| blobs raw | $raw B |"
echo "| blobs zstd -19 | $nodict B ($(( nodict * 100 / raw ))%) |"
echo "| blobs zstd -19 + trained dictionary | $dict B ($(( dict * 100 / raw ))%) |"
