#!/usr/bin/env python3
"""Render the dashboard's panels as a PNG from a live Prometheus.

usage: render_png.py PROMETHEUS_URL DASHBOARD.json OUT.png [SECONDS]

Grafana is not in Debian: this draws each panel of the dashboard (its
gridPos) with the data its queries return over the last SECONDS (default
600), one polyline per series, autoscaled, with the panel title and the
range of its values. Python standard library only (zlib for the PNG, a
built-in 5x7 font). Used by tests/integration/test_ops_prometheus.sh.
"""
import json
import struct
import sys
import time
import urllib.parse
import urllib.request
import zlib

FONT = {  # 5x7, one string of 7 rows per glyph, '#' set
    "A": " ### #   ##   #######   ##   ##   #", "B": "#### #   ##### #   ##   ##   ##### ",
    "C": " ### #   ##    #    #    #   # ### ", "D": "#### #   ##   ##   ##   ##   ##### ",
    "E": "######    #### #    #    #    #####", "F": "######    #### #    #    #    #    ",
    "G": " ### #   ##    # ####   ##   # ### ", "H": "#   ##   #######   ##   ##   ##   #",
    "I": " ###   #    #    #    #    #   ### ", "J": "  ###   #    #    #    # #  #  ##  ",
    "K": "#   ##  # # #  ##   # #  #  # #   #", "L": "#    #    #    #    #    #    #####",
    "M": "#   ### ### # ##   ##   ##   ##   #", "N": "#   ###  ## # ##  ###   ##   ##   #",
    "O": " ### #   ##   ##   ##   ##   # ### ", "P": "#### #   ##   ##### #    #    #    ",
    "Q": " ### #   ##   ##   ## # ##  #  ## #", "R": "#### #   ##   ##### # #  #  # #   #",
    "S": " ### #   ##     ###     ##   # ### ", "T": "#####  #    #    #    #    #    #  ",
    "U": "#   ##   ##   ##   ##   ##   # ### ", "V": "#   ##   ##   ##   ##   # # #   #  ",
    "W": "#   ##   ##   ## # ## # ### ###   #", "X": "#   ##   # # #   #   # # #   ##   #",
    "Y": "#   ##   # # #   #    #    #    #  ", "Z": "#####    #   #   #   #   #    #####",
    "0": " ### #   ##  ### # ###  ##   # ### ", "1": "  #   ##    #    #    #    #   ### ",
    "2": " ### #   #    #   #   #   #   #####", "3": " ### #   #    #  ##     ##   # ### ",
    "4": "   #   ##  # # #  # #####   #    # ", "5": "######    ####     #    ##   # ### ",
    "6": " ### #    #    #### #   ##   # ### ", "7": "#####    #   #   #   #    #    #   ",
    "8": " ### #   ##   # ### #   ##   # ### ", "9": " ### #   ##   # ####    #    # ### ",
    " ": " " * 35, ".": " " * 30 + "  #  ", ",": " " * 25 + "  #   #   ",
    ":": "       #         #         #       "[:35], "/": "    #    #   #   #   #   #    #    ",
    "(": "   #   #   #    #    #     #     # ", ")": " #     #     #    #    #   #   #   ",
    "-": " " * 15 + "#####" + " " * 15, "_": " " * 30 + "#####", "%": "##   ##  #   #   #   #   #  ##   ##",
    "=": " " * 10 + "#####" + " " * 5 + "#####" + " " * 10, "+": " " * 5 + "  #    #  #####  #    #  " + " " * 5,
    "{": "  ##  #    #   #     #    #     ## ", "}": "##     #    #     #   #    #  ##   ",
    ">": "#     #     #     #   #   #   #    ", "<": "    #   #   #   #     #     #     #",
    "*": " " * 5 + "# # #  #  #####  #  # # #" + " " * 5, "'": "  #    #   " + " " * 24,
    '"': " # #  # #  " + " " * 24, "?": " ### #   #    #   #   #         #  ",
    "[": " ###  #    #    #    #    #    ### ", "]": " ###    #    #    #    #    #  ### ",
    "~": " " * 10 + " #  # # # #  #  " + " " * 9, "!": "  #    #    #    #    #         #  ",
}
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
          (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
CELL_W, CELL_H = 50, 26  # pixels per gridPos unit


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def set(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def rect(self, x0, y0, x1, y1, c):
        for x in range(x0, x1 + 1):
            self.set(x, y0, c)
            self.set(x, y1, c)
        for y in range(y0, y1 + 1):
            self.set(x0, y, c)
            self.set(x1, y, c)

    def line(self, x0, y0, x1, y1, c):
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.set(x0, y0, c)
            self.set(x0, y0 + 1, c)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x, y, s, c=(40, 40, 40), limit=None):
        for ch in s.upper():
            if limit is not None and x + 5 > limit:
                return
            g = FONT.get(ch, FONT["?"])
            for r in range(7):
                for k in range(5):
                    if g[r * 5 + k] == "#":
                        self.set(x + k, y + r, c)
            x += 6

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def query_range(base, expr, start, end, step):
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    r = json.load(urllib.request.urlopen(base + "/api/v1/query_range?" + q, timeout=30))
    out = []
    for s in r["data"]["result"]:
        pts = [(float(t), float(v)) for t, v in s["values"] if v not in ("NaN", "+Inf", "-Inf")]
        if pts:
            out.append(pts)
    return out


def main():
    base, dash, out = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 600
    end = time.time()
    start, step = end - seconds, max(1, int(seconds / 200))
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    cv = Canvas(24 * CELL_W, bottom * CELL_H + 30)
    cv.text(8, 8, dash["title"] + " - last %d s, %s" % (seconds, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))))
    empty, fetched = [], []
    for p in dash["panels"]:
        series = []
        for t in p["targets"]:
            series += query_range(base, t["expr"].replace("$__rate_interval", "1m"), start, end, step)
        fetched.append((p, series))
    # the x axis starts where the data does (a fresh Prometheus has little)
    first = [pt[0] for _, ss in fetched for s in ss for pt in s[:1]]
    if first:
        start = min(first)
    end = max(end, start + 1)
    for p, series in fetched:
        g = p["gridPos"]
        x0, y0 = g["x"] * CELL_W + 4, g["y"] * CELL_H + 26
        x1, y1 = x0 + g["w"] * CELL_W - 8, y0 + g["h"] * CELL_H - 8
        cv.rect(x0, y0, x1, y1, (200, 200, 200))
        cv.text(x0 + 6, y0 + 6, p["title"], limit=x1 - 4)
        if not series:
            empty.append(p["title"])
            cv.text(x0 + 6, y0 + 24, "NO DATA", (214, 39, 40))
            continue
        vals = [v for s in series for _, v in s]
        lo, hi = min(vals), max(vals)
        if hi == lo:
            hi, lo = hi + 1, lo - 1
        cv.text(x0 + 6, y0 + 18, "%.4g .. %.4g, %d series" % (min(vals), max(vals), len(series)), (110, 110, 110), x1 - 4)
        px0, py0, px1, py1 = x0 + 8, y0 + 30, x1 - 8, y1 - 8
        for i, s in enumerate(series):
            c = COLORS[i % len(COLORS)]
            prev = None
            for t, v in s:
                X = px0 + int((t - start) / (end - start) * (px1 - px0))
                Y = py1 - int((v - lo) / (hi - lo) * (py1 - py0))
                if prev:
                    cv.line(prev[0], prev[1], X, Y, c)
                else:
                    cv.set(X, Y, c)
                prev = (X, Y)
    open(out, "wb").write(cv.png())
    if empty:
        sys.exit("panels without data: " + ", ".join(empty))


if __name__ == "__main__":
    main()
