#!/usr/bin/env python3
"""Does the base model read its task? The probe of DESIGN §7, after phase B, before the suite.

    python paper/scripts/probe_base.py --ckpt runs/pretrain_120m_base/ckpt_latest.pt \\
      --tokenizer data/tokenizer/spm32k.model --tasks data/discovery/heldout.jsonl \\
      --json_out runs/probe/probe.json --per_family 20 --samples 128 --max_new_tokens 32 --seed 0

Per family (the first --per_family tasks of each in --tasks): the swap gap (NLL of a task's
answer after another instance's prompt minus after its own, nats per answer) on the family's
policy answer (what the corpus's plain lines teach; the gate reads this one) and on the optimal one, the
well-formed share and mean reward of --samples T = 1 samples against uniformly random answers, the
share of distinct greedy answers, and best-of-N (N = --samples) against random search at the same
N. Writes --json_out atomically (lib/discover_distill/probe.py documents the fields) and prints one
table. run_phase.py runs it in phase C and gates on it (the profile's "probe" block).
"""
from __future__ import annotations

import argparse
import time

from discover_distill import probe as P
from discover_distill.cli import UserError, require_file, run
from discover_distill.fileio import atomic_write_json
from discover_distill.model import load_model
from discover_distill.tasks import get_family, load_tasks
from discover_distill.tokenizer import Tokenizer
from discover_distill.training import resolve_device, resolve_dtype, say


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Probe whether the base model conditions on its task instance.")
    p.add_argument("--ckpt", required=True, help="model checkpoint (pretrain's ckpt_latest.pt)")
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model used for the checkpoint's data")
    p.add_argument("--tasks", required=True, help="task JSONL (the held-out file of gen_discovery_tasks.py)")
    p.add_argument("--json_out", required=True, help="where to write the probe result (JSON)")
    p.add_argument("--per_family", type=int, default=20, help="tasks per family, the first in the file (>= 2)")
    p.add_argument("--samples", type=int, default=128, help="T = 1 samples per task; also best-of-N's N (>= 1)")
    p.add_argument("--max_new_tokens", type=int, default=32, help="max tokens per sampled answer (>= 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the samples (> 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling generators and the random answers")
    p.add_argument("--rows_per_batch", type=int, default=512,
                   help="sampled rows per generate call (tasks are batched up to it; memory vs speed)")
    p.add_argument("--answer_order", default="construction", choices=("construction", "sorted"),
                   help="the policy answer's order, as the corpus wrote its attempts (gen_synthetic_corpus.py "
                        "--answer_order): the swap gap is measured on what the base was taught")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU) | fp32 | bf16")
    args = p.parse_args(argv)
    for name, low in (("per_family", 2), ("samples", 1), ("max_new_tokens", 1), ("rows_per_batch", 1)):
        if getattr(args, name) < low:
            p.error(f"--{name} must be >= {low}")
    if not args.temperature > 0:
        p.error("--temperature must be > 0")
    return args


def main() -> int:
    args = parse_args()
    require_file(args.ckpt, "--ckpt")
    require_file(args.tokenizer, "--tokenizer")
    by_family = P.select_tasks(load_tasks(args.tasks), args.per_family)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    tok = Tokenizer(args.tokenizer)
    model = load_model(args.ckpt, device)   # weights_only=True (checkpoint.load_checkpoint)
    if tok.vocab_size > model.cfg.vocab_size:
        raise UserError(f"--tokenizer has {tok.vocab_size} pieces but {args.ckpt} only {model.cfg.vocab_size}")
    for p in model.parameters():
        p.requires_grad_(False)
    settings = P.ProbeSettings(per_family=args.per_family, samples=args.samples, max_new_tokens=args.max_new_tokens,
                               seed=args.seed, temperature=args.temperature, rows_per_batch=args.rows_per_batch,
                               answer_order=args.answer_order)
    say(f"probe: {sum(map(len, by_family.values()))} tasks in {len(by_family)} families x {args.samples} samples | "
        f"device {device}")
    t0 = time.time()
    result = P.probe(model, tok, [(get_family(f), ts) for f, ts in sorted(by_family.items())], settings, dtype, log=say)
    result["settings"].update(ckpt=args.ckpt, tokenizer=args.tokenizer, tasks=args.tasks, device=str(device),
                              dtype=str(dtype).replace("torch.", ""))
    atomic_write_json(args.json_out, result)
    rows = [list(P.TABLE_HEADER)] + P.table(result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        say(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for name, *cells in P.by_token_rows(result, width=64):
        say(f"{name}: policy-answer swap gap by answer token {' '.join(cells)}")
    say(f"wrote {args.json_out} in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    run(main)
