#!/usr/bin/env python3
"""Retention: validation perplexity of the base and the updated (consolidated) model on the
same fixed batches (runbook E2).

    python paper/scripts/compute_retention_ppl.py \\
      --base_ckpt runs/pretrain_120m_base/ckpt_latest.pt --base_cfg runs/pretrain_120m_base/model_config.json \\
      --updated_ckpt runs/sdft_from_ttt_steps500/sdft_latest.pt \\
      --updated_cfg runs/sdft_from_ttt_steps500/model_config.json \\
      --val_bin data/packed/val.bin --seq_len 256 --batch_size 4 --max_batches 50 \\
      --device cuda --out runs/suite/retention_ppl.json

Writes base and updated perplexity, absolute and relative delta, tokens evaluated, and a 95%
bootstrap CI of the perplexity delta over batches (paired: both models see the same batches).
"""
from __future__ import annotations

import argparse
import math
import random

import torch

from discover_distill.checkpoint import atomic_write_json
from discover_distill.cli import UserError, require_file, run
from discover_distill.config import load_model_config
from discover_distill.data import PackedTokens
from discover_distill.evaluate import perplexity
from discover_distill.model import load_model
from discover_distill.training import resolve_device, resolve_dtype, say


def load_checked(ckpt: str, cfg_path: str, flag: str, device) -> torch.nn.Module:
    model = load_model(ckpt, device)
    cfg = load_model_config(cfg_path)
    if cfg.to_dict() != model.cfg.to_dict():
        raise UserError(f"{flag} {cfg_path} does not match the config stored in {ckpt}")
    return model


def paired_delta_ci(base: list[float], new: list[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap CI of exp(mean new loss) - exp(mean base loss), resampling batches jointly."""
    rng = random.Random(seed)
    n = len(base)
    deltas = []
    for _ in range(n_boot):
        idx = [rng.randrange(n) for _ in range(n)]
        deltas.append(math.exp(sum(new[i] for i in idx) / n) - math.exp(sum(base[i] for i in idx) / n))
    deltas.sort()
    return deltas[int(0.025 * (n_boot - 1))], deltas[int(math.ceil(0.975 * (n_boot - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description="Validation-perplexity retention of an updated model.")
    p.add_argument("--base_ckpt", required=True, help="checkpoint before consolidation")
    p.add_argument("--base_cfg", required=True, help="its model_config.json")
    p.add_argument("--updated_ckpt", required=True, help="checkpoint after consolidation")
    p.add_argument("--updated_cfg", required=True, help="its model_config.json")
    p.add_argument("--val_bin", required=True, help="packed validation tokens")
    p.add_argument("--seq_len", type=int, default=256, help="tokens per sequence")
    p.add_argument("--batch_size", type=int, default=4, help="sequences per batch")
    p.add_argument("--max_batches", type=int, default=50, help="batches evaluated (the same for both models)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto | fp32 | bf16")
    p.add_argument("--out", required=True, help="output JSON")
    args = p.parse_args()
    for flag in ("base_ckpt", "base_cfg", "updated_ckpt", "updated_cfg", "val_bin"):
        require_file(getattr(args, flag), f"--{flag}")
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    val = PackedTokens(args.val_bin)
    res = {}
    for name, ckpt, cfg in (("base", args.base_ckpt, args.base_cfg), ("updated", args.updated_ckpt, args.updated_cfg)):
        model = load_checked(ckpt, cfg, f"--{name}_cfg", device)
        if args.seq_len > model.cfg.max_seq_len:
            raise UserError(f"--seq_len {args.seq_len} exceeds max_seq_len {model.cfg.max_seq_len} of {ckpt}")
        if val.vocab_size > model.cfg.vocab_size:
            raise UserError(f"--val_bin was packed with {val.vocab_size} pieces, more than {ckpt}'s {model.cfg.vocab_size}")
        res[name] = perplexity(model, val, args.seq_len, args.batch_size, args.max_batches, device, dtype)
        del model
    base, new = res["base"], res["updated"]
    lo, hi = paired_delta_ci(base["batch_losses"], new["batch_losses"])
    out = {"base_ppl": base["ppl"], "updated_ppl": new["ppl"], "base_loss": base["loss"], "updated_loss": new["loss"],
           "delta_ppl": new["ppl"] - base["ppl"], "rel_delta_ppl": new["ppl"] / base["ppl"] - 1,
           "delta_ppl_ci95": [lo, hi], "tokens": base["tokens"], "batches": len(base["batch_losses"]),
           "args": vars(args)}
    atomic_write_json(args.out, out)
    say(f"retention: base ppl {base['ppl']:.3f} -> updated {new['ppl']:.3f} (delta {out['delta_ppl']:+.3f}, "
        f"{100 * out['rel_delta_ppl']:+.2f}%, 95% CI [{lo:+.3f}, {hi:+.3f}]) over {base['tokens']} tokens -> {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
