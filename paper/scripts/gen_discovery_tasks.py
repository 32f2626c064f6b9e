#!/usr/bin/env python3
"""Generate the discovery task files: a train split (TTT on it feeds SDFT) and a held-out split
(every comparison in the paper), drawn from disjoint regions of each family's instance space.

    python paper/scripts/gen_discovery_tasks.py --seed 0 \\
      --out_train data/discovery/train.jsonl --out_heldout data/discovery/heldout.jsonl

Default size: 480 held-out tasks (80 per family), sized from a measurement. The paired difference
in solve rate between two methods on the same tasks has per-task variance p_disc - d^2, where
p_disc is the share of tasks on which exactly one method succeeds; a 95% paired interval excludes
0 with 80% power when n >= ((1.96 + 0.84) sd / d)^2 (stats.tasks_needed). `make mini` (120
held-out tasks, 128 samples per task, TTT main vs best-of-N, 2026-11-30) measured p_disc = 0.067
and 0.108 (seeds 0, 1), per-task s.d. 0.254 and 0.328 for the solve-rate difference and 0.251 and
0.295 for the best-reward difference: d = 0.05 needs 204-338 tasks (solve) and 199-273 (best
reward). 480 covers that with margin for the paper's harder mix (more discordance means more
variance), and detects d ~ 0.03-0.04 in solve rate for a single seed. The registry recomputes
this from every run ("Power").

Default difficulties: the paper mix (PAPER_MIX), chosen with paper/scripts/audit_tasks.py so that
uniformly random answers at best-of-960 solve <= 10% of the held-out tasks (mean best reward
<= 0.75, no family x difficulty cell above 30%): a suite where random search already succeeds
cannot tell TTT from best-of-N. --difficulty overrides it for every family.
"""
from __future__ import annotations

import argparse
import json
import os
import random

from discover_distill.checkpoint import atomic_write_text
from discover_distill.cli import UserError, run
from discover_distill.tasks import CELL_FORMATS, FAMILIES, PAPER_MIX, make_task


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Generate train / held-out discovery task files.")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same files)")
    p.add_argument("--out_train", required=True, help="output JSONL of train-region tasks")
    p.add_argument("--out_heldout", required=True, help="output JSONL of held-out-region tasks")
    p.add_argument("--n_train", type=int, default=40, help="train tasks per family")
    p.add_argument("--n_heldout", type=int, default=80, help="held-out tasks per family (see docstring)")
    p.add_argument("--families", default="all", help="comma-separated family names, or 'all'")
    p.add_argument("--cells", default="plain", choices=CELL_FORMATS,
                   help="how prompts write their numbers: plain, or labelled (assign: each cost after its column "
                        "letter); must match the corpus's gen_synthetic_corpus.py --cells")
    p.add_argument("--difficulty", default=None,
                   help="difficulty levels to cycle through (comma-separated ints), balanced per family, for "
                        "every family (default: the paper mix, PAPER_MIX)")
    return p.parse_args(argv)


def generate(families: list[str], n: int, split: str, difficulties: dict[str, list[int]], seed: int,
             cells: str = "plain") -> list[dict]:
    """n tasks per family, the family's difficulties cycled, distinct instances, deterministic in seed;
    `cells` the prompts' number format (the instances do not depend on it)."""
    out = []
    for family in families:
        rng = random.Random(f"{seed}/{split}/{family}")
        seen: set[str] = set()
        attempts = 0
        while sum(1 for t in out if t["family"] == family) < n:
            attempts += 1
            if attempts > 50 * n + 1000:
                raise UserError(f"family {family}: could not find {n} distinct {split} instances "
                                f"(instance space too small for --n_{split})")
            difficulty = difficulties[family][len(seen) % len(difficulties[family])]
            task = make_task(family, rng, difficulty, split, cells)
            if task["task_id"] in seen:
                continue
            seen.add(task["task_id"])
            out.append(task)
    return out


def main() -> int:
    args = parse_args()
    families = sorted(FAMILIES) if args.families == "all" else [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise UserError(f"--families: unknown {', '.join(unknown)}; known: {', '.join(sorted(FAMILIES))}")
    if args.difficulty is None:
        difficulties = {f: list(PAPER_MIX.get(f, (1, 2, 3))) for f in families}
    else:
        try:
            levels = [int(d) for d in args.difficulty.split(",")]
        except ValueError:
            raise UserError(f"--difficulty: expected comma-separated integers, got {args.difficulty!r}") from None
        difficulties = {f: levels for f in families}
    if args.n_train < 0 or args.n_heldout < 0:
        raise UserError("--n_train and --n_heldout must be >= 0")
    for path in (args.out_train, args.out_heldout):
        if os.path.isdir(path):
            raise UserError(f"output path is a directory: {path}")
    splits = {"train": (args.out_train, args.n_train), "heldout": (args.out_heldout, args.n_heldout)}
    for split, (path, n) in splits.items():
        tasks = generate(families, n, split, difficulties, args.seed, args.cells)
        atomic_write_text(path, "".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks))
        per_family = {f: sum(1 for t in tasks if t["family"] == f) for f in families}
        print(f"{split}: {len(tasks)} tasks -> {path}  ({', '.join(f'{f} {c}' for f, c in per_family.items())})")
    return 0


if __name__ == "__main__":
    run(main)
