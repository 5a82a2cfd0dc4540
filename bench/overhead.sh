#!/usr/bin/env bash
# Sandbox overhead on compute-heavy code (see bench/README.md): three kernels
# (bench/overhead/kernels.c: SHA-256, JSON serialise + parse of ~1 MB, a
# regex-like matcher), the same C source built
#   - natively: cc -O2 and clang-19 -O2 (the faster is the baseline),
#   - the agents' way: clang-19 --target=wasm32 -O2 with the code generator's
#     feature flags -> wasm2c -> cc -O2 -fPIC, guard-page memory (no bounds
#     checks in the translated code),
#   - the same with binaryen's wasm-opt -O3 on the module before wasm2c,
#   - Node's V8 on the same .wasm (the peer).
# Thread CPU time, best of ROUNDS inside each process, best over PASSES
# interleaved processes; checksums must agree. Writes a Markdown table and
# $BUILD/bench/overhead.json. AF_BENCH_SMOKE=1: one short pass.
set -euo pipefail
SRC=${AF_SRCDIR:-$(pwd)}
BUILD=${BUILD:-build/release}
cd "$SRC"
mkdir -p "$BUILD/bench"
OUT=$(cd "$BUILD/bench" && pwd)
NODE=${AF_NODE:-node}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
if [ -n "${AF_BENCH_SMOKE:-}" ]; then ROUNDS=1 SCALE=1 PASSES=1; else
	ROUNDS=${AF_BENCH_ROUNDS:-5} SCALE=${AF_BENCH_SCALE:-3} PASSES=${AF_BENCH_PASSES:-5}; fi
K=bench/overhead
WASM_FLAGS="--target=wasm32 -mcpu=mvp -msign-ext -mmutable-globals -mnontrapping-fptoint -mbulk-memory"
WRT=/usr/share/wabt/wasm2c

clang-19 $WASM_FLAGS -O2 -nostdlib -fno-builtin -Wl,--no-entry -Wl,--stack-first \
	-Wl,-z,stack-size=65536 -o "$W/k.wasm" $K/kernels.c
wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int "$W/k.wasm" -o "$W/ko.wasm"
cc -O2 -DAF_NATIVE -o "$W/native-cc" $K/driver.c $K/kernels.c
clang-19 -O2 -DAF_NATIVE -o "$W/native-clang" $K/driver.c $K/kernels.c
for v in k ko; do
	mkdir -p "$W/$v"
	wasm2c "$W/$v.wasm" -n kernels -o "$W/$v/k.c"
	cc -O2 -fPIC -I"$W/$v" -I$WRT -o "$W/wasm2c-$v" $K/driver.c "$W/$v/k.c" $WRT/wasm-rt-impl.c -lm
done
have_node=0
if "$NODE" -e 'process.exit(typeof WebAssembly === "object" ? 0 : 1)' 2>/dev/null; then have_node=1; fi

variants="native-cc native-clang wasm2c-k wasm2c-ko"
[ $have_node = 1 ] && variants="$variants v8"
for p in $(seq 1 "$PASSES"); do
	for v in $variants; do
		if [ $v = v8 ]; then "$NODE" $K/v8.js "$W/k.wasm" "$ROUNDS" "$SCALE"
		else "$W/$v" "$ROUNDS" "$SCALE"; fi | sed "s/^/$v /"
	done
done > "$W/raw"

python3 - "$W/raw" "$OUT/overhead.json" "$have_node" "${AF_BENCH_FIGURES:-}" <<'PY'
import json, sys
raw, out, have_node, figures = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
best, sums = {}, {}
for line in open(raw):
    v, k, t, s = line.split()
    best[(v, k)] = min(best.get((v, k), 1e30), float(t))
    sums.setdefault(k, set()).add(s)
bad = [k for k, s in sums.items() if len(s) != 1]
if bad:
    sys.exit("checksums differ between builds for: " + ", ".join(bad))
rows, res = [], {}
for k, label in (("sha256_run", "SHA-256, 64 KiB x 600"), ("json_run", "JSON serialise + parse, ~1 MB x 12"),
                 ("match_run", "regex-like matcher, 4096 lines x 8 patterns x 60")):
    nat = min(best[("native-cc", k)], best[("native-clang", k)])
    r = {v: best[(v, k)] for v in ("native-cc", "native-clang", "wasm2c-k", "wasm2c-ko", "v8") if (v, k) in best}
    res[k] = {"seconds": r, "native_best": nat, "ratio": {v: t / nat for v, t in r.items()}}
    cells = [f"{r['native-cc']*1e3:.1f}", f"{r['native-clang']*1e3:.1f}",
             f"{r['wasm2c-k']*1e3:.1f} ({r['wasm2c-k']/nat:.3f}x)",
             f"{r['wasm2c-ko']*1e3:.1f} ({r['wasm2c-ko']/nat:.3f}x)",
             f"{r['v8']*1e3:.1f} ({r['v8']/nat:.3f}x)" if "v8" in r else "n/a"]
    rows.append(f"| {label} | " + " | ".join(cells) + " |")
    if figures:
        with open(figures, "a") as fp:
            peer = f"\tV8, same .wasm\t{r['v8']/nat:.4f}" if "v8" in r else "\t\t"
            fp.write(f"overhead\t{label}: wasm2c build vs native\t{r['wasm2c-k']/nat:.4f}\tx native{peer}\n")
print("Sandbox overhead (thread CPU ms, best of all rounds; ratio to the faster native build):\n")
print("| kernel | native cc -O2 | native clang -O2 | wasm2c (agents) | wasm-opt -O3 + wasm2c | V8 (peer) |")
print("|---|---|---|---|---|---|")
print("\n".join(rows))
json.dump(res, open(out, "w"), indent=1, sort_keys=True)
PY
echo
echo "(JSON: $OUT/overhead.json)"
