#!/usr/bin/env python3
"""Per-directory line and branch coverage from a gcovr --json-summary file,
plus the files under 70 % branches (the issue's floor). Used by
`make coverage`."""
import collections
import json
import sys

summary = json.load(open(sys.argv[1]))
dirs = collections.OrderedDict()
low = []
for f in sorted(summary["files"], key=lambda f: f["filename"]):
    d = f["filename"].rsplit("/", 1)[0]
    acc = dirs.setdefault(d, [0, 0, 0, 0])
    acc[0] += f["line_covered"]
    acc[1] += f["line_total"]
    acc[2] += f["branch_covered"]
    acc[3] += f["branch_total"]
    if f["branch_total"] and 100.0 * f["branch_covered"] / f["branch_total"] < 70.0:
        low.append((f["filename"], 100.0 * f["branch_covered"] / f["branch_total"]))


def pct(a, b):
    return "%6.1f %%" % (100.0 * a / b) if b else "     - "


print("| directory | lines | branches |")
print("|---|---:|---:|")
for d, (lc, lt, bc, bt) in dirs.items():
    print("| %s | %s (%d/%d) | %s (%d/%d) |" % (d, pct(lc, lt), lc, lt, pct(bc, bt), bc, bt))
print("| **total** | %s | %s |" % (pct(summary["line_covered"], summary["line_total"]),
                                   pct(summary["branch_covered"], summary["branch_total"])))
if low:
    print("\nfiles under 70 % branches:")
    for name, p in sorted(low, key=lambda x: x[1]):
        print("  %5.1f %%  %s" % (p, name))
