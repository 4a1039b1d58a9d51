#!/usr/bin/env python3
"""Runs shmap's workload and a peer's back to back, and prints the ratios of their medians.

    bench/compare.py [--case u64-1M|...|all] [--mode 1t|2t|2p|all] [--peer-bin PATH]
                     [--reps 3] [--rounds 3] [--undo] [--out results.jsonl]

The workload is shared/bench/WORKLOAD.md. The peer defaults to the original C++ table, built
from ../shared/bench/original-cpp (copied to a temporary directory: the reference is
read-only) with its own build.sh (-O2 -march=x86-64-v2). shmap's workload is built with
--release and -C target-cpu=x86-64-v2, for parity.

Each binary prints, per (case, mode, phase), the median of --reps runs after a warm-up (the
workload's definition). Shared machines drift by 2x over minutes, so the script runs --rounds
rounds per case, shmap and the peer back to back in each (alternating which goes first), and
takes the median of the per-round medians. Those aggregated lines go to --out (default
bench/results/latest.jsonl, which bench/chart.py turns into charts); every raw line, with its
round, to the same name with -raw.

Ratios are shmap / peer on those medians of each (case, mode, phase) (higher is better), and
shmap / peer on peak RSS (lower is better). Compare ratios from one run, not absolute numbers
across runs.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ["u64-1M", "v64B-1M", "u64-25K", "v64B-25K"]
PHASES = ["insert", "lookup-hit", "lookup-miss", "update", "mixed-90-10"]


def build_shmap():
    env = dict(os.environ, RUSTFLAGS="-C target-cpu=x86-64-v2")
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "shmap-examples", "--bin", "workload",
         "--target-dir", str(ROOT / "target" / "bench")],
        cwd=ROOT, env=env, check=True)
    return ROOT / "target" / "bench" / "release" / "workload"


def build_original():
    source = ROOT.parent / "shared" / "bench" / "original-cpp"
    if not source.is_dir():
        sys.exit(f"no peer: {source} is missing; pass --peer-bin")
    work = Path(tempfile.mkdtemp(prefix="shmap-peer-"))
    for f in source.iterdir():
        shutil.copy(f, work / f.name)
    subprocess.run(["sh", "./build.sh"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    return work / "bench"


def run(binary, case, mode, reps, extra=()):
    cmd = [str(binary), "--case", case, "--mode", mode, "--reps", str(reps), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    lines = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0:
        print(f"warning: {' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()[-300:]}",
              file=sys.stderr)
    return lines


def aggregate(lines):
    """One line per (impl, case, mode, phase or metric): the median of the rounds' medians
    (the largest peak RSS), with the per-round values in runs_mops."""
    groups = {}
    for r in lines:
        # Lines about the run rather than a case (the peer's clock cost, its driver's RSS)
        # are kept from the first round.
        key = (r["impl"], r.get("case"), r.get("mode"), r.get("phase") or r.get("metric"))
        groups.setdefault(key, []).append(r)
    out = []
    for rows in groups.values():
        first = dict(rows[0])
        first.pop("round", None)
        first["rounds"] = len(rows)
        first["ok"] = all(r.get("ok", False) for r in rows)
        if "case" not in first:
            pass
        elif "phase" in first:
            per_round = [r["mops"] for r in rows]
            first["mops"] = round(statistics.median(per_round), 3)
            first["ns_per_op"] = round(1e3 / first["mops"], 2) if first["mops"] else 0.0
            first["runs_mops"] = per_round
        else:
            first["peak_rss_kib"] = max(r.get("peak_rss_kib", 0) for r in rows)
        out.append(first)
    return out


def index(lines):
    mops, rss = {}, {}
    for r in lines:
        if "phase" in r:
            mops[(r["impl"], r["case"], r["mode"], r["phase"])] = (r["mops"], r.get("ok", False))
        elif r.get("metric") == "peak_rss":
            rss[(r["impl"], r["case"], r["mode"])] = r["peak_rss_kib"]
    return mops, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", default="all")
    ap.add_argument("--mode", default="all")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peer-bin", type=Path)
    ap.add_argument("--undo", action="store_true", help="also run shmap with undo records")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.jsonl")
    args = ap.parse_args()

    shmap = build_shmap()
    peer = args.peer_bin or build_original()
    cases = CASES if args.case == "all" else [args.case]
    raw = []
    for case in cases:
        for r in range(args.rounds):
            print(f"# {case}, round {r + 1} of {args.rounds}", file=sys.stderr, flush=True)
            runs = [lambda: run(shmap, case, args.mode, args.reps)]
            if args.undo:
                runs.append(lambda: run(shmap, case, args.mode, args.reps, ["--undo"]))
            runs.append(lambda: run(peer, case, args.mode, args.reps))
            for go in runs if r % 2 == 0 else reversed(runs):
                raw += [dict(line, round=r) for line in go()]
    lines = aggregate(raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(l) + "\n" for l in lines))
    raw_out = args.out.with_name(args.out.stem + "-raw" + args.out.suffix)
    raw_out.write_text("".join(json.dumps(l) + "\n" for l in raw))

    mops, rss = index(lines)
    peer_impl = next((k[0] for k in mops if not k[0].startswith("shmap")), "peer")
    modes = sorted({k[2] for k in mops}, key=["1t", "2t", "2p"].index)
    print(f"{'case':9} {'mode':4} {'phase':20} {'shmap':>9} {peer_impl:>13} {'ratio':>7}")
    for case in cases:
        for mode in modes:
            for phase in PHASES + ["lookup-hit-batched"]:
                s = mops.get(("shmap", case, mode, phase))
                p = mops.get((peer_impl, case, mode, "lookup-hit" if phase == "lookup-hit-batched" else phase))
                if not s or not p:
                    continue
                ok = "" if s[1] and p[1] else "  (a check failed)"
                versus = " (vs its lookup-hit)" if phase == "lookup-hit-batched" else ""
                print(f"{case:9} {mode:4} {phase:20} {s[0]:9.3f} {p[0]:13.3f} {s[0] / p[0]:6.2f}x{versus}{ok}")
            s, p = rss.get(("shmap", case, mode)), rss.get((peer_impl, case, mode))
            if s and p:
                print(f"{case:9} {mode:4} {'peak RSS (KiB)':20} {s:9d} {p:13d} {s / p:6.3f}x")

    print("\ngoals (ratios of medians, this run):")
    def ratio(a, b):
        return a[0] / b[0] if a and b else float("nan")
    def goal(text, value, target, higher=True):
        if value != value:  # NaN: the case or mode was not run
            print(f"  not run  {text}")
            return
        met = value >= target if higher else value <= target
        print(f"  {'met    ' if met else 'NOT met'}  {text}: {value:.2f} ({'>=' if higher else '<='} {target})")
    for case in ["u64-1M", "v64B-1M"]:
        for phase in ["lookup-hit", "lookup-miss"]:
            goal(f"{phase} {case} 1t", ratio(mops.get(("shmap", case, "1t", phase)), mops.get((peer_impl, case, "1t", phase))), 5)
    goal("lookup-hit u64-25K 1t", ratio(mops.get(("shmap", "u64-25K", "1t", "lookup-hit")), mops.get((peer_impl, "u64-25K", "1t", "lookup-hit"))), 4)
    write_ratios = [
        (ratio(mops.get(("shmap", c, m, ph)), mops.get((peer_impl, c, m, ph))), f"{ph} {c} {m}")
        for c in cases for m in ["1t", "2p"] for ph in ["insert", "update", "mixed-90-10"]
        if mops.get(("shmap", c, m, ph)) and mops.get((peer_impl, c, m, ph))]
    worst = min(write_ratios, default=(float("nan"), "none run"))
    goal(f"insert/update/mixed, every case, 1t and 2p (worst: {worst[1]})", worst[0], 1.5)
    goal("2p lookup-hit vs shmap's own 1t (u64-1M)", ratio(mops.get(("shmap", "u64-1M", "2p", "lookup-hit")), mops.get(("shmap", "u64-1M", "1t", "lookup-hit"))), 1.8)
    if rss.get(("shmap", "u64-1M", "1t")) and rss.get((peer_impl, "u64-1M", "1t")):
        goal("peak RSS u64-1M 1t vs peer", rss[("shmap", "u64-1M", "1t")] / rss[(peer_impl, "u64-1M", "1t")], 0.5, higher=False)
    goal("batched lookup u64-1M 1t vs peer's lookup-hit", ratio(mops.get(("shmap", "u64-1M", "1t", "lookup-hit-batched")), mops.get((peer_impl, "u64-1M", "1t", "lookup-hit"))), 10)
    if args.undo:
        print("\nundo records (shmap-undo / shmap, medians):")
        for case in cases:
            for mode in modes:
                for phase in ["insert", "update", "mixed-90-10"]:
                    u, s = mops.get(("shmap-undo", case, mode, phase)), mops.get(("shmap", case, mode, phase))
                    if u and s:
                        print(f"  {case:9} {mode:4} {phase:12} {u[0]:9.3f} / {s[0]:9.3f} = {u[0] / s[0]:5.2f}x")
    print(f"\nJSON lines: {args.out} (medians of {args.rounds} rounds), {raw_out} (every round)")


if __name__ == "__main__":
    main()
