#!/usr/bin/env python3
"""Draws the benchmark charts of BENCHMARKS.md as standalone SVG files (no dependencies).

    bench/chart.py [--jsonl bench/results/latest.jsonl] [--criterion target/criterion]
                   [--out-dir bench/results]

- ratios.svg, from the workload's JSON lines (bench/compare.py writes them): for each case, the
  ratio of shmap's median Mops/s to the peer's, per phase and mode, on a log scale with the
  parity line (1x) and the issue's goals marked. `lookup-hit-batched` is compared with the
  peer's plain lookup-hit.
- peers.svg, from criterion's estimates (`cargo bench -p shmap-examples --bench peers`):
  median throughput of each in-process map and of shmap, per operation and thread count.
  Skipped when criterion's directory is missing.
"""

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ["u64-1M", "v64B-1M", "u64-25K", "v64B-25K"]
PHASES = ["insert", "lookup-hit", "lookup-miss", "update", "mixed-90-10", "lookup-hit-batched"]
MODES = ["1t", "2t", "2p"]
MODE_COLOURS = {"1t": "#4c72b0", "2t": "#55a868", "2p": "#c44e52"}
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Svg:
    def __init__(self, width, height):
        self.width, self.height, self.parts = width, height, []

    def add(self, element):
        self.parts.append(element)

    def text(self, x, y, s, size=12, anchor="start", weight="normal", fill="#222", rotate=None):
        transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{fill}" {FONT}{transform}>{esc(s)}</text>')

    def line(self, x1, y1, x2, y2, stroke="#999", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                 f'stroke="{stroke}" stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, fill, title=None):
        t = f"<title>{esc(title)}</title>" if title else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
                 f'fill="{fill}">{t}</rect>')

    def write(self, path):
        body = "\n".join(self.parts)
        path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
                        f'height="{self.height}" viewBox="0 0 {self.width} {self.height}">\n'
                        f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n')


def load_workload(path):
    mops = {}
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "phase" in r and r.get("ok", False):
            mops[(r["impl"], r["case"], r["mode"], r["phase"])] = r["mops"]
    return mops


def ratios_chart(mops, out):
    peer = next((k[0] for k in mops if not k[0].startswith("shmap")), None)
    if peer is None:
        raise SystemExit("no peer lines in the JSON lines: run bench/compare.py first")
    cases = [c for c in CASES if any(k[1] == c for k in mops)]
    lo, hi = 0.5, 16.0  # the log axis: 0.5x .. 16x
    panel_w, panel_h, left, top, gap = 560, 250, 70, 70, 90
    svg = Svg(left + 2 * panel_w + 60, top + ((len(cases) + 1) // 2) * (panel_h + gap) + 20)
    svg.text(20, 28, f"shmap / {peer}: ratio of median throughput (higher is better; log scale)",
             size=17, weight="bold")
    for i, mode in enumerate(MODES):
        x = 20 + i * 70
        svg.rect(x, 42, 12, 12, MODE_COLOURS[mode])
        svg.text(x + 16, 53, mode, size=12)
    svg.line(240, 48, 270, 48, stroke="#333", dash="5,3")
    svg.text(274, 53, "goal of the issue (1t; 2p for writes)", size=12)

    def y_of(ratio, y0):
        r = min(max(ratio, lo), hi)
        return y0 + panel_h - (math.log2(r) - math.log2(lo)) / (math.log2(hi) - math.log2(lo)) * panel_h

    goals = {("u64-1M", "lookup-hit"): 5, ("u64-1M", "lookup-miss"): 5,
             ("v64B-1M", "lookup-hit"): 5, ("v64B-1M", "lookup-miss"): 5,
             ("u64-25K", "lookup-hit"): 4, ("u64-1M", "lookup-hit-batched"): 10}
    for n, case in enumerate(cases):
        x0 = left + (n % 2) * (panel_w + 40)
        y0 = top + (n // 2) * (panel_h + gap)
        svg.text(x0, y0 - 8, case, size=14, weight="bold")
        for tick in [0.5, 1, 2, 4, 8, 16]:
            y = y_of(tick, y0)
            svg.line(x0, y, x0 + panel_w, y, stroke="#222" if tick == 1 else "#e3e3e3",
                     width=1.2 if tick == 1 else 1)
            svg.text(x0 - 6, y + 4, f"{tick:g}x", size=10, anchor="end", fill="#555")
        group_w = panel_w / len(PHASES)
        bar_w = group_w * 0.8 / len(MODES)
        for p, phase in enumerate(PHASES):
            gx = x0 + p * group_w + group_w * 0.1
            base = "lookup-hit" if phase == "lookup-hit-batched" else phase
            for m, mode in enumerate(MODES):
                s, o = mops.get(("shmap", case, mode, phase)), mops.get((peer, case, mode, base))
                if not s or not o:
                    continue
                ratio = s / o
                x, y1 = gx + m * bar_w, y_of(ratio, y0)
                y_one = y_of(1, y0)
                top_y, h = (y1, y_one - y1) if ratio >= 1 else (y_one, y1 - y_one)
                svg.rect(x, top_y, bar_w - 1.5, h, MODE_COLOURS[mode],
                         title=f"{case} {mode} {phase}: {s:.2f} / {o:.2f} Mops/s = {ratio:.2f}x")
                svg.text(x + (bar_w - 1.5) / 2, min(y1, y_one) - 3, f"{ratio:.1f}", size=8.5,
                         anchor="middle", fill="#333")
            goal = goals.get((case, phase))
            if goal is None and phase in ("insert", "update", "mixed-90-10"):
                goal = 1.5
            if goal:
                y = y_of(goal, y0)
                svg.line(gx - 2, y, gx + group_w * 0.8 + 2, y, stroke="#333", width=1.3, dash="5,3")
            label = phase.replace("lookup-hit-batched", "hit-batched")
            svg.text(gx + group_w * 0.4, y0 + panel_h + 16, label, size=11, anchor="middle")
    svg.write(out)


def load_criterion(directory):
    """{(op, map, threads): ops per second} from criterion's median estimates."""
    results = {}
    for estimates in sorted(directory.glob("*/*/*/new/estimates.json")):
        threads_dir = estimates.parent.parent
        op, name, threads = threads_dir.parent.parent.name, threads_dir.parent.name, threads_dir.name
        benchmark = json.loads((estimates.parent / "benchmark.json").read_text())
        elements = (benchmark.get("throughput") or {}).get("Elements")
        if not elements:
            continue
        median_ns = json.loads(estimates.read_text())["median"]["point_estimate"]
        results[(op, name, int(threads))] = elements / median_ns * 1e9
    return results


def peers_chart(results, out):
    ops = [op for op in ["get", "update", "insert"] if any(k[0] == op for k in results)]
    maps = [m for m in ["shmap", "dashmap", "papaya", "rwlock-hashmap", "dashmap-siphash"]
            if any(k[1] == m for k in results)]
    colours = {"shmap": "#c44e52", "dashmap": "#4c72b0", "papaya": "#55a868",
               "rwlock-hashmap": "#8172b2", "dashmap-siphash": "#8db0d8"}
    peak = max(results.values()) / 1e6
    scale_max = math.ceil(peak / 5) * 5
    left, top, row_h, bar_h, width = 150, 70, 20, 8, 520
    rows = sum(len([m for m in maps if (op, m, 1) in results]) for op in ops)
    svg = Svg(left + width + 120, top + rows * row_h + len(ops) * 30 + 40)
    svg.text(20, 28, "u64 -> u64, 1M keys: median throughput, millions of operations per second",
             size=17, weight="bold")
    svg.rect(20, 42, 12, 8, "#666")
    svg.text(36, 50, "1 thread", size=12)
    svg.rect(110, 42, 12, 8, "#666", )
    svg.add('<rect x="110" y="42" width="12" height="8" fill="white" opacity="0.45"/>')
    svg.text(126, 50, "2 threads (lighter)", size=12)
    y = top
    for op in ops:
        svg.text(20, y + 12, op, size=14, weight="bold")
        y += 20
        for name in maps:
            if (op, name, 1) not in results:
                continue
            svg.text(left - 8, y + 12, name, size=11, anchor="end",
                     weight="bold" if name == "shmap" else "normal")
            for t, dy in [(1, 0), (2, bar_h + 1)]:
                v = results.get((op, name, t))
                if v is None:
                    continue
                w = v / 1e6 / scale_max * width
                svg.rect(left, y + dy, w, bar_h, colours.get(name, "#999"),
                         title=f"{op} {name} {t} thread(s): {v / 1e6:.1f} M/s")
                if t == 2:
                    svg.add(f'<rect x="{left:.1f}" y="{y + dy:.1f}" width="{max(w, 0):.1f}" '
                            f'height="{bar_h}" fill="white" opacity="0.45"/>')
                svg.text(left + w + 4, y + dy + bar_h - 0.5, f"{v / 1e6:.1f}", size=9, fill="#333")
            y += row_h
        y += 10
    for tick in range(0, scale_max + 1, 5):
        x = left + tick / scale_max * width
        svg.line(x, top + 16, x, y, stroke="#e3e3e3")
        svg.text(x, y + 14, f"{tick}", size=10, anchor="middle", fill="#555")
    svg.write(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jsonl", type=Path, default=ROOT / "bench" / "results" / "latest.jsonl")
    ap.add_argument("--criterion", type=Path, default=ROOT / "target" / "criterion")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ratios_chart(load_workload(args.jsonl), args.out_dir / "ratios.svg")
    print(f"wrote {args.out_dir / 'ratios.svg'}")
    if args.criterion.is_dir():
        results = load_criterion(args.criterion)
        if results:
            peers_chart(results, args.out_dir / "peers.svg")
            print(f"wrote {args.out_dir / 'peers.svg'}")


if __name__ == "__main__":
    main()
