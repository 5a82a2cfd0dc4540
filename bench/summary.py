#!/usr/bin/env python3
"""bench/summary.py FIGURES.tsv RESULTS.json - `make bench`'s last step.

Prints one Markdown table with every headline figure the benches recorded
(bench/lib/figure.sh `figure`, bench/figures.h `bench_figure`) next to the peer
measured in the same run, and writes them as JSON with the commit, the
machine's core count and load, so runs can be compared between commits
(e.g. `jq` or `python3 -m json.tool`).
"""
import json
import os
import subprocess
import sys
import time


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = []
    if os.path.exists(src):
        for line in open(src, encoding="utf-8"):
            f = line.rstrip("\n").split("\t")
            if len(f) < 4:
                continue
            bench, name, value, unit = f[:4]
            peer = f[4] if len(f) > 4 else ""
            peer_value = f[5] if len(f) > 5 else ""
            row = {"bench": bench, "figure": name, "value": float(value), "unit": unit}
            if peer:
                row["peer"] = peer
                row["peer_value"] = float(peer_value)
                if row["peer_value"]:
                    row["ratio_to_peer"] = row["value"] / row["peer_value"]
            rows.append(row)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "", False
    meta = {"commit": commit, "dirty": dirty, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cores": os.cpu_count(), "loadavg": list(os.getloadavg()),
            "smoke": bool(os.environ.get("AF_BENCH_SMOKE"))}
    with open(dst, "w", encoding="utf-8") as fp:
        json.dump({"meta": meta, "figures": rows}, fp, indent=1)
        fp.write("\n")

    def fmt(v):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

    print(f"## Summary: every figure and its peer, one run ({meta['cores']} cores, "
          f"load {meta['loadavg'][0]:.2f} at the end; commit {commit[:12]}{' + changes' if dirty else ''})\n")
    print("| bench | figure | value | peer (same run) | peer value | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        peer = r.get("peer", "")
        pv = fmt(r["peer_value"]) + " " + r["unit"] if peer else ""
        ratio = f"{r['ratio_to_peer']:.3f}" if "ratio_to_peer" in r else ""
        print(f"| {r['bench']} | {r['figure']} | {fmt(r['value'])} {r['unit']} | {peer} | {pv} | {ratio} |")
    print(f"\n(JSON: {dst})")
    if not rows:
        sys.exit("no figures were recorded")


if __name__ == "__main__":
    main()
