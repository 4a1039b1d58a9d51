#!/usr/bin/env python3
"""A/B of two builds of the workload binary on this (noisy) machine.

Runs binary A and binary B in turn, PAIRS times each, with the same workload arguments, and
prints for every phase the median M ops/s of each build (over every run of every pair) and
the median of the per-pair ratios B / A. Alternating the builds spreads the machine's drift
over both, and a ratio taken inside a pair compares runs made seconds apart; BENCHMARKS.md
quotes these medians.

    # build the baseline in a worktree with its own target directory, then:
    git worktree add /tmp/wt-base <rev>
    (cd /tmp/wt-base && cargo build --release -p shmap-examples --bin workload)
    cargo build --release -p shmap-examples --bin workload
    python3 bench/ab.py /tmp/wt-base/target/release/workload target/release/workload \\
        --pairs 10 -- --case u64-1M --mode 1t --reps 5 --warmup 1

Churn phases also report the median of their end/start ratios (`end_over_start`).
"""

import argparse
import json
import statistics
import subprocess
import sys


def run(binary, args):
    """One run of `binary`: {phase: {"mops": [...], "end_over_start": [...]}}."""
    out = subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout
    phases = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        phase = row.get("phase")
        if phase is None or not row.get("ok", True):
            continue
        entry = phases.setdefault(phase, {"mops": [], "end_over_start": []})
        entry["mops"].extend(row.get("runs_mops", [row["mops"]]))
        entry["end_over_start"].extend(row.get("runs_end_over_start", []))
    return phases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the baseline workload binary")
    parser.add_argument("b", help="the workload binary under test")
    parser.add_argument("--pairs", type=int, default=10, help="alternating pairs of runs")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    opts = parser.parse_args(argv[:split])
    args = argv[split + 1 :]  # the workload's own arguments, after `--`

    runs = {"a": [], "b": []}
    for pair in range(opts.pairs):
        for side, binary in (("a", opts.a), ("b", opts.b)):
            runs[side].append(run(binary, args))
        print(f"pair {pair + 1}/{opts.pairs} done", file=sys.stderr)

    phases = [p for p in runs["a"][0] if p in runs["b"][0]]
    print(f"{'phase':<20} {'A M/s':>8} {'B M/s':>8} {'B/A':>6}  pair ratios (min..max)  end/start A -> B")
    for phase in phases:
        a_all = [m for r in runs["a"] for m in r[phase]["mops"]]
        b_all = [m for r in runs["b"] for m in r[phase]["mops"]]
        ratios = [
            statistics.median(rb[phase]["mops"]) / statistics.median(ra[phase]["mops"])
            for ra, rb in zip(runs["a"], runs["b"])
        ]
        line = (
            f"{phase:<20} {statistics.median(a_all):8.2f} {statistics.median(b_all):8.2f} "
            f"{statistics.median(ratios):6.3f}  {min(ratios):.2f}..{max(ratios):.2f}"
        )
        a_eos = [e for r in runs["a"] for e in r[phase]["end_over_start"]]
        b_eos = [e for r in runs["b"] for e in r[phase]["end_over_start"]]
        if a_eos and b_eos:
            line += f"  {statistics.median(a_eos):.2f} -> {statistics.median(b_eos):.2f}"
        print(line)


if __name__ == "__main__":
    main()
