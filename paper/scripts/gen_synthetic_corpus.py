#!/usr/bin/env python3
"""Generate the synthetic pretraining corpus (runbook A2): train-region task lines in the
formats TTT reuse and the SDFT teacher use later, mixed with a filler language.

    mkdir -p data/raw
    python paper/scripts/gen_synthetic_corpus.py --seed 0 --train_lines 200000 --val_lines 10000 \\
      --train_out data/raw/train.txt --val_out data/raw/val.txt

Same seed -> same bytes. Train and val use independent streams of the same seed.
"""
from __future__ import annotations

import argparse
import os
import time

from discover_distill.fileio import atomic_write  # torch-free: the script starts fast
from discover_distill.cli import UserError, run
from discover_distill.corpus import MIX, FillerGrammar, attempt_stats, generate_lines


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Generate the synthetic train/val corpus.")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same bytes)")
    p.add_argument("--train_lines", type=int, required=True, help="number of training lines (documents)")
    p.add_argument("--val_lines", type=int, required=True, help="number of validation lines (documents)")
    p.add_argument("--train_out", required=True, help="output text file for training lines")
    p.add_argument("--val_out", required=True, help="output text file for validation lines")
    p.add_argument("--filler_frac", type=float, default=MIX["filler"],
                   help="share of filler-language lines in [0, 1); task line kinds share the rest")
    return p.parse_args(argv)


def write_corpus(path: str, n: int, seed: int, mix: dict, grammar: FillerGrammar, stats: dict) -> None:
    def write(f):
        for line in generate_lines(n, seed, mix, grammar, stats):
            f.write(line + "\n")
    atomic_write(path, write, mode="w")


def main() -> int:
    args = parse_args()
    if args.train_lines < 1 or args.val_lines < 1:
        raise UserError("--train_lines and --val_lines must be >= 1")
    if not 0 <= args.filler_frac < 1:
        raise UserError(f"--filler_frac must be in [0, 1), got {args.filler_frac}")
    for flag, path in (("--train_out", args.train_out), ("--val_out", args.val_out)):
        if os.path.isdir(path):
            raise UserError(f"{flag}: is a directory: {path}")
    task_share = 1 - MIX["filler"]
    mix = {k: (args.filler_frac if k == "filler" else v * (1 - args.filler_frac) / task_share) for k, v in MIX.items()}
    t0 = time.time()
    grammar = FillerGrammar()
    stats: dict = {}
    write_corpus(args.train_out, args.train_lines, args.seed * 2 + 0, mix, grammar, stats)
    write_corpus(args.val_out, args.val_lines, args.seed * 2 + 1, mix, grammar, {})
    print(f"wrote {args.train_lines} train lines -> {args.train_out}, {args.val_lines} val lines -> {args.val_out} "
          f"in {time.time() - t0:.1f}s")
    n = sum(stats["kinds"].values())
    print("train lines by kind:   " + ", ".join(f"{k} {v} ({100 * v / n:.1f}%)" for k, v in sorted(stats["kinds"].items())))
    print("task lines by family:  " + ", ".join(f"{k} {v}" for k, v in sorted(stats.get("families", {}).items())))
    print("imperfect attempts (verifier reward) per family:")
    print(f"  {'family':<10} {'n':>6} {'mean':>6} {'std':>6} {'min':>5} {'max':>5} {'=0':>6} {'>=.99':>6}")
    for fam, s in attempt_stats(stats.get("attempt_scores", {})).items():
        print(f"  {fam:<10} {s['n']:>6} {s['mean']:>6.3f} {s['std']:>6.3f} {s['min']:>5.2f} {s['max']:>5.2f} "
              f"{s['frac_zero']:>6.1%} {s['frac_solved']:>6.1%}")
    return 0


if __name__ == "__main__":
    run(main)
