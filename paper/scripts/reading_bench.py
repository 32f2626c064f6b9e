#!/usr/bin/env python3
"""Does a recipe teach the base to read its task? A per-family reading benchmark that runs in
minutes (DESIGN §7, "A prior that reads its task").

    python paper/scripts/reading_bench.py --out runs/reading/tour_steps --families tour \\
      --task_mix "plain=2,solved=1,step=2" --steps 1500 --seeds 0,1

For every seed: a base of the profile's shape (default: the mini's) pretrained on a corpus of the
named families only (the profile's corpus with --families, --task_mix, --train_lines and any
--corpus_extra flags; corpus and pretraining both seeded by the seed), then probed on held-out tasks
of those families with paper/scripts/probe_base.py: the swap gap on the policy's answer (what the
corpus's plain lines teach) and on the optimal one, the per-sample reward against random answers'.
Each seed is one run_phase.py invocation (steps corpus .. probe) under <out>/seed<N>, with the
profile written there: resumable, and a finished seed is skipped. The table (one row per family
and seed, with the validation loss and the minutes) goes to stdout, <out>/reading.md and
<out>/reading.json. One lever per invocation, two seeds at least: the noise is the seed-to-seed spread.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time

from discover_distill.cli import UserError, run
from discover_distill.config import load_profile
from discover_distill.fileio import atomic_write_json, atomic_write_text
from discover_distill.probe import by_token_rows
from discover_distill.tasks import CELL_FORMATS, FAMILIES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = "corpus,tokenizer,pack_train,pack_val,pack_val_filler,pretrain,tasks,probe"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Per-family reading benchmark: pretrain small bases, probe their swap gap.")
    p.add_argument("--out", required=True, help="output directory (one subdirectory per seed, the table beside them)")
    p.add_argument("--profile", default="mini", help="the profile whose model, corpus and pretraining it starts from")
    p.add_argument("--families", default="all", help="comma-separated families of the corpus and the probe, or 'all'")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (corpus and pretraining); >= 2 for a spread")
    p.add_argument("--steps", type=int, default=1500, help="pretraining steps")
    p.add_argument("--train_lines", type=int, default=30000, help="corpus lines")
    p.add_argument("--task_mix", default=None, help="corpus --task_mix (default: the profile's)")
    p.add_argument("--corpus_extra", default="", help="more gen_synthetic_corpus.py flags, e.g. '--policy_noise 0.2'")
    p.add_argument("--answer_order", default="construction", choices=("construction", "sorted"),
                   help="order of the order-free families' policy attempts in the corpus, and of the policy answer "
                        "the probe measures")
    p.add_argument("--cells", default=None, choices=CELL_FORMATS,
                   help="the prompts' number format, in the corpus and the probed tasks alike (default: the profile's)")
    p.add_argument("--pretrain_extra", default="", help="more pretrain.py flags (they win), e.g. '--lr 1e-3'")
    p.add_argument("--model", default=None, help="model config (default: the profile's)")
    p.add_argument("--seq_len", type=int, default=None,
                   help="pretraining row length, also the longest task line kept whole (default: the profile's)")
    p.add_argument("--micro_bs", type=int, default=None,
                   help="pretraining rows per step (default: the profile's); with --seq_len, keep tokens per step")
    p.add_argument("--per_family", type=int, default=24, help="held-out tasks per family probed")
    p.add_argument("--samples", type=int, default=64, help="probe samples per task")
    return p.parse_args(argv)


def replace_flag(argv: list[str], flag: str, value: str | None) -> list[str]:
    """argv without `flag` and its value, then `flag value` appended (value None: just removed)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        else:
            out.append(a)
    return out + ([flag, value] if value is not None else [])


def seed_profile(base: dict, args: argparse.Namespace, seed: int, families: str, root: str) -> dict:
    """The profile of one seed's run: the base profile's shape with this benchmark's overrides."""
    prof = json.loads(json.dumps(base))
    prof.update(description=f"reading benchmark seed {seed} ({families})", data_dir=f"{root}/data",
                runs_dir=f"{root}/runs", seeds=[0])
    prof.pop("sweep", None)  # the benchmark stops at the probe; its step count need not hold the sweep's bases
    c = prof["corpus"]
    c.update(seed=seed, train_lines=args.train_lines, val_lines=max(500, args.train_lines // 20))
    extra = replace_flag(c.get("extra", []), "--families", families)
    if args.task_mix is not None:
        extra = replace_flag(extra, "--task_mix", args.task_mix)
    cells = ["--cells", args.cells] if args.cells else []
    c["extra"] = extra + ["--answer_order", args.answer_order] + cells + shlex.split(args.corpus_extra)
    pre = prof["pretrain"]
    pre.update(steps=args.steps, seed=seed, **({"model": args.model} if args.model else {}),
               **{k: v for k, v in (("seq_len", args.seq_len), ("micro_bs", args.micro_bs)) if v is not None})
    pre["extra"] = pre.get("extra", []) + shlex.split(args.pretrain_extra)
    t = prof["tasks"]
    t["extra"] = replace_flag(replace_flag(t.get("extra", []), "--n_heldout", str(args.per_family)),
                              "--families", families)
    if args.cells:
        t["extra"] = replace_flag(t["extra"], "--cells", args.cells)
    prof["probe"] = {"per_family": args.per_family, "samples": args.samples, "gate": None,
                     "extra": ["--answer_order", args.answer_order],
                     "gate_opt_out": "reading benchmark: it measures the probe, it does not gate on it"}
    return prof


@contextlib.contextmanager
def seed_clock(root: str):
    """A seed's wall time summed over every invocation that worked on it (<root>/minutes.json, also
    written when one is interrupted), so a resumed or finished seed reports its whole cost."""
    path = os.path.join(root, "minutes.json")
    try:
        with open(path) as f:
            before = float(json.load(f)["minutes"])
    except (OSError, ValueError, KeyError, TypeError):
        before = 0.0
    clock, t0 = {"minutes": before}, time.time()
    try:
        yield clock
    finally:
        clock["minutes"] = before + (time.time() - t0) / 60
        atomic_write_json(path, {"minutes": clock["minutes"]})


def val_loss(pretrain_dir: str) -> float | None:
    """The last validation loss pretrain.py logged (metrics.jsonl), or None."""
    last = None
    try:
        with open(os.path.join(pretrain_dir, "metrics.jsonl")) as f:
            for line in f:
                row = json.loads(line)
                if "val_loss" in row:
                    last = row["val_loss"]
    except (OSError, ValueError):
        return None
    return last


def fmt(x, spec=".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "n/a"


def table(rows: list[dict]) -> list[str]:
    head = ["family", "seed", "swap gap, policy answer [95% CI]", "swap gap, optimal answer", "reward / random",
            "well-formed", "val loss", "minutes"]
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        lo, hi = r["policy_swap_gap_ci95"] or (None, None)
        out.append(f"| {r['family']} | {r['seed']} | {fmt(r['policy_swap_gap'])} [{fmt(lo)}, {fmt(hi)}] | "
                   f"{fmt(r['swap_gap'])} | {fmt(r['reward_ratio'])}x | {fmt(r['well_formed'])} | "
                   f"{fmt(r['val_loss'], '.3f')} | {fmt(r['minutes'], '.1f')} |")
    return out


def by_token_table(rows: list[dict], width: int = 12) -> list[str]:
    """Per family and seed, the policy-answer swap gap at each of the answer's first `width` tokens
    (probe.gap_by_token): which steps of the policy the base reads; "EOS" marks the answer's end."""
    rows = [r for r in rows if r["family"] != "overall"]
    longest = min(width, max((len(r.get("policy_swap_gap_by_token") or []) for r in rows), default=0))
    if not longest:
        return []
    out = ["| family | seed | " + " | ".join(f"t{k + 1}" for k in range(longest)) + " |",
           "|---|---|" + "---|" * longest]
    for r in rows:
        cells = [c for row in by_token_rows({"families": {r["family"]: r}}, longest) for c in row[1:]]
        out.append(f"| {r['family']} | {r['seed']} | " + " | ".join(cells + [""] * (longest - len(cells))) + " |")
    return out


def main() -> int:
    args = parse_args()
    if args.steps < 1 or args.train_lines < 1 or args.per_family < 2 or args.samples < 1:
        raise UserError("--steps, --train_lines and --samples must be >= 1, --per_family >= 2")
    if (args.seq_len is not None and args.seq_len < 16) or (args.micro_bs is not None and args.micro_bs < 1):
        raise UserError("--seq_len must be >= 16 and --micro_bs >= 1")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    families = "all" if args.families.strip() == "all" else ",".join(x.strip() for x in args.families.split(","))
    unknown = sorted(set(families.split(",")) - set(FAMILIES)) if families != "all" else []
    if unknown or not seeds:
        raise UserError(f"--families: unknown {', '.join(unknown)}" if unknown else "--seeds: none given")
    base, _ = load_profile(args.profile)
    out = os.path.abspath(args.out)
    rows = []
    for seed in seeds:
        root = os.path.join(out, f"seed{seed}")
        os.makedirs(root, exist_ok=True)
        path = os.path.join(root, "profile.json")
        atomic_write_json(path, seed_profile(base, args, seed, families, os.path.relpath(root, ROOT)))
        cmd = [sys.executable, "paper/scripts/run_phase.py", "--profile", path, "--from-phase", "A", "--to-phase",
               "C", "--seeds", "0", "--only", STEPS]
        print(f"reading bench seed {seed}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
        with seed_clock(root) as clock:
            rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0:
            raise UserError(f"seed {seed}: run_phase.py failed (exit {rc}); logs under {root}/runs/logs")
        minutes = clock["minutes"]
        with open(os.path.join(root, "runs", "probe", "probe.json")) as f:
            probe = json.load(f)
        loss = val_loss(os.path.join(root, "runs", base["pretrain"]["run"]))
        for name, v in sorted(probe["families"].items()) + [("overall", probe["overall"])]:
            rows.append({"family": name, "seed": seed, "val_loss": loss, "minutes": minutes,
                         **{k: v.get(k) for k in ("policy_swap_gap", "policy_swap_gap_ci95", "swap_gap",
                                                  "reward_ratio", "well_formed", "policy_reward", "reward",
                                                  "policy_swap_gap_by_token")}})
    rows.sort(key=lambda r: (r["family"] == "overall", r["family"], r["seed"]))
    md = table(rows)
    steps = by_token_table(rows)
    if steps:   # probes written before the per-token gap have none
        md += ["", "Swap gap on the policy's answer by answer token (nats, mean over tasks; where the base "
                   "reads along the answer):", "", *steps]
    cmdline = " ".join(shlex.quote(a) for a in sys.argv)
    atomic_write_text(os.path.join(out, "reading.md"), "\n".join([f"`{cmdline}`", "", *md]) + "\n")
    atomic_write_json(os.path.join(out, "reading.json"), {"command": cmdline, "rows": rows})
    print("\n".join(md))
    print(f"wrote {out}/reading.md and reading.json (minutes: each seed's wall time over every invocation "
          f"that worked on it, <out>/seed<N>/minutes.json)")
    return 0


if __name__ == "__main__":
    run(main)
