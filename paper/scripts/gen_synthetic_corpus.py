#!/usr/bin/env python3
"""Generate the synthetic pretraining corpus (runbook A2): train-region task lines in the
formats TTT reuse and the SDFT teacher use later, mixed with a filler language.

    mkdir -p data/raw
    python paper/scripts/gen_synthetic_corpus.py --seed 0 --train_lines 200000 --val_lines 10000 \\
      --train_out data/raw/train.txt --val_out data/raw/val.txt

Same seed -> same bytes. Train and val use independent streams of the same seed.

Also writes a filler-only held-out split (default: val_filler.txt beside --val_out): ~60% of val.txt
is task-format lines from the families SDFT distils, so retention (forgetting) is measured on text
no demonstration resembles. It has its own stream, and no line of it occurs in the train text.
"""
from __future__ import annotations

import argparse
import os
import random
import time

from discover_distill.fileio import atomic_write  # torch-free: the script starts fast
from discover_distill.cli import UserError, run
from discover_distill.corpus import (ANSWER_ORDERS, MIX, TASK_KINDS, FillerGrammar, attempt_stats,
                                     describe_difficulties, generate_lines, parse_difficulties)
from discover_distill.tasks import CELL_FORMATS, FAMILIES, PAPER_MIX
from discover_distill.tasks.base import POLICY_NOISE


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Generate the synthetic train/val corpus.")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same bytes)")
    p.add_argument("--train_lines", type=int, required=True, help="number of training lines (documents)")
    p.add_argument("--val_lines", type=int, required=True, help="number of validation lines (documents)")
    p.add_argument("--train_out", required=True, help="output text file for training lines")
    p.add_argument("--val_out", required=True, help="output text file for validation lines")
    p.add_argument("--filler_val_out", default=None,
                   help="output text file for the filler-only held-out split "
                        "(default: val_filler.txt beside --val_out)")
    p.add_argument("--filler_val_lines", type=int, default=None,
                   help="number of filler-only held-out lines (default: --val_lines)")
    p.add_argument("--filler_frac", type=float, default=MIX["filler"],
                   help="share of filler-language lines in [0, 1); task line kinds share the rest")
    p.add_argument("--task_mix", default=None,
                   help="relative shares of the task line kinds, e.g. 'solved=3,plain=1,scored=1,improve=2,demo=1' "
                        "(kinds left out get none; default: " +
                        ",".join(f"{k}={v}" for k, v in MIX.items() if k != "filler") + ")")
    p.add_argument("--difficulties", default="heldout",
                   help="difficulty mix of the task lines: 'heldout' (each family's held-out levels of the paper "
                        "mix weighted --heldout_weight:1 against its other levels), levels '1,2,3' (uniform) or "
                        "weights '1:3,2:1'")
    p.add_argument("--families", default="all",
                   help="comma-separated task families of the task lines, or 'all' (a per-family reading benchmark "
                        "trains on one: paper/scripts/reading_bench.py)")
    p.add_argument("--policy_noise", type=float, default=POLICY_NOISE,
                   help="largest per-step noise of the policy's attempts in plain, scored and improve lines "
                        "(half of them are noise-free; the rest draw it uniformly up to this), in [0, 1]")
    p.add_argument("--answer_order", default="construction", choices=ANSWER_ORDERS,
                   help="order of the pieces of the policy's attempts where the verifier reads a set (knapsack, "
                        "partition, golomb): the policy's construction order, or sorted")
    p.add_argument("--cells", default="plain", choices=CELL_FORMATS,
                   help="how task prompts write their numbers: plain, or labelled (assign: each cost after its "
                        "column letter, 'a3 b9; a9 b1'); families without a labelled format stay plain")
    p.add_argument("--heldout_weight", type=float, default=3.0,
                   help="with --difficulties heldout: weight of a family's held-out levels against 1 for the others")
    return p.parse_args(argv)


def task_kind_mix(spec: str | None, filler_frac: float) -> dict[str, float]:
    """Line-kind shares summing to 1: `filler_frac` filler, the task kinds sharing the rest."""
    shares = {k: v for k, v in MIX.items() if k != "filler"}
    if spec is not None:
        shares = {}
        for part in (x.strip() for x in spec.split(",") if x.strip()):
            kind, _, value = part.partition("=")
            if kind not in TASK_KINDS:
                raise UserError(f"--task_mix: unknown kind {kind!r}; kinds: "
                                f"{', '.join(TASK_KINDS)}")
            try:
                shares[kind] = float(value)
            except ValueError:
                raise UserError(f"--task_mix: {part!r} is not kind=number") from None
            if not shares[kind] >= 0:
                raise UserError(f"--task_mix: {part!r}: shares must be >= 0")
        if not sum(shares.values()) > 0:
            raise UserError("--task_mix: the shares sum to 0")
    total = sum(shares.values())
    return {"filler": filler_frac, **{k: v * (1 - filler_frac) / total for k, v in shares.items()}}


def write_corpus(path: str, n: int, seed: int, mix: dict, grammar: FillerGrammar, stats: dict,
                 seen: set[str] | None = None, difficulties=None, **lines) -> None:
    """`seen`, if given, collects the lines that are not task lines (they might recur as filler);
    `lines`: generate_lines's families and policy_noise."""
    def write(f):
        for line in generate_lines(n, seed, mix, grammar, stats, difficulties, **lines):
            if seen is not None and not line.startswith("Q: "):
                seen.add(line)
            f.write(line + "\n")
    atomic_write(path, write, mode="w")


def write_filler_split(path: str, n: int, seed: int, grammar: FillerGrammar, exclude: set[str]) -> int:
    """n filler-language lines from a stream of their own, none of them in `exclude` (the train
    text); returns how many repeats of train lines were drawn and dropped."""
    rng = random.Random(f"filler-heldout/{seed}")  # distinct from train (2*seed) and val (2*seed + 1)
    dropped = [0]

    def write(f):
        written = 0
        while written < n:
            line = grammar.line(rng)
            if line in exclude:
                dropped[0] += 1
                continue
            f.write(line + "\n")
            written += 1
    atomic_write(path, write, mode="w")
    return dropped[0]


def main() -> int:
    args = parse_args()
    if args.train_lines < 1 or args.val_lines < 1:
        raise UserError("--train_lines and --val_lines must be >= 1")
    filler_out = args.filler_val_out or os.path.join(os.path.dirname(args.val_out), "val_filler.txt")
    filler_lines = args.val_lines if args.filler_val_lines is None else args.filler_val_lines
    if filler_lines < 1:
        raise UserError("--filler_val_lines must be >= 1")
    if not 0 <= args.filler_frac < 1:
        raise UserError(f"--filler_frac must be in [0, 1), got {args.filler_frac}")
    outs = (("--train_out", args.train_out), ("--val_out", args.val_out), ("--filler_val_out", filler_out))
    for flag, path in outs:
        if os.path.isdir(path):
            raise UserError(f"{flag}: is a directory: {path}")
    if len({os.path.abspath(p) for _, p in outs}) < len(outs):
        raise UserError("--train_out, --val_out and --filler_val_out must be different files")
    mix = task_kind_mix(args.task_mix, args.filler_frac)
    if not args.heldout_weight > 0:
        raise UserError(f"--heldout_weight must be > 0, got {args.heldout_weight}")
    try:
        difficulties = parse_difficulties(args.difficulties, PAPER_MIX, args.heldout_weight)
    except ValueError as e:
        raise UserError(f"--difficulties: {e}") from None
    families = None if args.families.strip() == "all" else tuple(x.strip() for x in args.families.split(",") if x.strip())
    unknown = sorted(set(families or ()) - set(FAMILIES))
    if families is not None and (not families or unknown):
        raise UserError(f"--families: unknown family {', '.join(unknown) or '(none given)'}; known: "
                        f"{', '.join(sorted(FAMILIES))}, or 'all'")
    if not 0 <= args.policy_noise <= 1:
        raise UserError(f"--policy_noise must be in [0, 1], got {args.policy_noise}")
    lines = {"families": families, "policy_noise": args.policy_noise, "answer_order": args.answer_order,
             "cells": args.cells}
    t0 = time.time()
    grammar = FillerGrammar()
    stats: dict = {}
    train_filler: set[str] = set()
    write_corpus(args.train_out, args.train_lines, args.seed * 2 + 0, mix, grammar, stats, train_filler, difficulties,
                 **lines)
    write_corpus(args.val_out, args.val_lines, args.seed * 2 + 1, mix, grammar, {}, difficulties=difficulties, **lines)
    dropped = write_filler_split(filler_out, filler_lines, args.seed, grammar, train_filler)
    print(f"wrote {args.train_lines} train lines -> {args.train_out}, {args.val_lines} val lines -> {args.val_out}, "
          f"{filler_lines} filler-only held-out lines -> {filler_out} ({dropped} repeats of train lines dropped) "
          f"in {time.time() - t0:.1f}s")
    n = sum(stats["kinds"].values())
    print("train lines by kind:   " + ", ".join(f"{k} {v} ({100 * v / n:.1f}%)" for k, v in sorted(stats["kinds"].items())))
    print("task-line difficulties: " + describe_difficulties(difficulties))
    print("task lines by family:  " + ", ".join(f"{k} {v}" for k, v in sorted(stats.get("families", {}).items())))
    print("policy attempts (verifier reward) per family:")
    print(f"  {'family':<10} {'n':>6} {'mean':>6} {'std':>6} {'min':>5} {'max':>5} {'=0':>6} {'>=.99':>6}")
    for fam, s in attempt_stats(stats.get("attempt_scores", {})).items():
        print(f"  {fam:<10} {s['n']:>6} {s['mean']:>6.3f} {s['std']:>6.3f} {s['min']:>5.2f} {s['max']:>5.2f} "
              f"{s['frac_zero']:>6.1%} {s['frac_solved']:>6.1%}")
    return 0


if __name__ == "__main__":
    run(main)
