#!/usr/bin/env python3
"""The report of `make gpu-check` (scripts/gpu_check.sh): at most 8 files in --out_dir.

    python scripts/gpu_check_report.py --profile gpu_check --times times.jsonl --bench bench.json --out_dir OUT

report.md: seconds per phase (with each failure's log tail), the benchmark lines and the results
registry of the profile's runs; report.json: the same as data; then up to 6 figures (PNG).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil

from discover_distill.cli import run
from discover_distill.config import load_profile
from discover_distill.fileio import atomic_write_json, atomic_write_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FIGURES = 6  # + report.md + report.json = 8 files


def main() -> int:
    p = argparse.ArgumentParser(description="Write the gpu-check report.")
    p.add_argument("--profile", default="gpu_check", help="profile name or JSON path (as run_phase.py takes it)")
    p.add_argument("--times", required=True, help="JSONL of {step, seconds, rc, log_tail} from gpu_check.sh")
    p.add_argument("--bench", default="", help="bench_sampling.py --out JSON (optional)")
    p.add_argument("--out_dir", required=True, help="report directory")
    args = p.parse_args()
    profile, path = load_profile(args.profile)
    with open(args.times) as f:
        times = [json.loads(line) for line in f if line.strip()]
    bench = None
    if args.bench and os.path.isfile(args.bench):
        with open(args.bench) as f:
            bench = json.load(f)
    runs_dir = os.path.join(ROOT, profile["runs_dir"])
    registry_path = os.path.join(runs_dir, "04_results_registry.md")
    registry = open(registry_path).read() if os.path.isfile(registry_path) else "_No registry was written._\n"
    total = sum(t["seconds"] for t in times)
    md = [f"# gpu-check report ({os.path.basename(path)})", "", f"Total {total:.0f} s.", "",
          "| step | seconds | exit |", "|---|---|---|"]
    md += [f"| {t['step']} | {t['seconds']:.1f} | {t['rc']} |" for t in times]
    for t in times:
        if t["rc"] != 0:
            md += ["", f"### {t['step']} failed (exit {t['rc']}): log tail", "", "```", t["log_tail"], "```"]
    md += ["", "## Benchmark (scripts/bench_sampling.py)", "", "```", json.dumps(bench, indent=1) if bench else
           "not run", "```", "", "## Results registry", "", registry]
    os.makedirs(args.out_dir, exist_ok=True)
    atomic_write_text(os.path.join(args.out_dir, "report.md"), "\n".join(md))
    atomic_write_json(os.path.join(args.out_dir, "report.json"),
                      {"profile": profile, "times": times, "total_seconds": total, "bench": bench})
    figures = sorted(glob.glob(os.path.join(runs_dir, "figs", "*.png")))[:MAX_FIGURES]
    for fig in figures:
        shutil.copy(fig, os.path.join(args.out_dir, os.path.basename(fig)))
    print(f"gpu-check: {len(times)} steps in {total:.0f} s -> {args.out_dir}/report.md (+ report.json, "
          f"{len(figures)} figures)")
    return 0 if all(t["rc"] == 0 for t in times) else 1


if __name__ == "__main__":
    run(main)
