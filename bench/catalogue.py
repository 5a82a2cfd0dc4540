#!/usr/bin/env python3
"""Write a synthetic N-agent catalogue for the build benchmarks.

Usage: bench/catalogue.py [-n N] SRC_TEMPLATES OUT_DIR

The bases of the sample catalogue (SRC_TEMPLATES/bases, plus the sample
leaves other templates extend) are copied as they are; the rest are leaves
cloned from the sample leaves in turn, each renamed "<leaf>-<i>" with its own
description, so every agent is different, valid under the default policy and
built from the same few bases. N counts the agents that get built (abstract
bases excluded). The templates are not signed: sign them with
`agentfactory sign` (bench/build.sh does).
"""
import argparse
import os
import re
import shutil
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=500, help="agents to build (default 500)")
    p.add_argument("src")
    p.add_argument("out")
    a = p.parse_args()
    if a.n < 1:
        sys.exit("catalogue.py: -n must be at least 1")
    src = a.src
    leaves = sorted(f for f in os.listdir(src) if f.endswith(".yaml"))
    texts = {f: open(os.path.join(src, f), encoding="utf-8").read() for f in leaves}
    # Leaves that other leaves extend are kept under their own name.
    extended = set()
    for t in texts.values():
        m = re.search(r"^extends:\s*([a-z0-9-]+)@", t, re.M)
        if m and m.group(1) + ".yaml" in texts:
            extended.add(m.group(1) + ".yaml")
    os.makedirs(a.out, exist_ok=True)
    shutil.copytree(os.path.join(src, "bases"), os.path.join(a.out, "bases"), dirs_exist_ok=True)
    n = 0
    for f in sorted(extended):
        shutil.copyfile(os.path.join(src, f), os.path.join(a.out, f))
        n += 1
    i = 0
    while n < a.n:
        f = leaves[i % len(leaves)]
        name = f[:-5]
        t = texts[f]
        t = re.sub(r"^name: .*$", "name: %s-%04d" % (name, i), t, count=1, flags=re.M)
        t = re.sub(r"^description: (.*)$", r"description: \1 (synthetic %04d)" % i, t, count=1,
                   flags=re.M)
        with open(os.path.join(a.out, "%s-%04d.yaml" % (name, i)), "w", encoding="utf-8") as o:
            o.write(t)
        n += 1
        i += 1


if __name__ == "__main__":
    main()
