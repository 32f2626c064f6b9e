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

val.bin mixes in task-format lines like the SDFT demonstrations, so forgetting is read off the
filler-only split as well (`--filler_val_bin`, default val_filler.bin beside --val_bin when it
exists; A2 writes it): its numbers go under "filler" and "headline" names the split to quote.
E2 reads val.bin from its start; the SDFT gate read its end. The run's sdft_eval_report.json (beside
--updated_ckpt) says which tokens the gate read (E2 refuses to overlap them) and which step was
promoted ("promotion"; a gate that rejected every step means --updated_ckpt is the base model).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random

import torch

from discover_distill.checkpoint import atomic_write_json
from discover_distill.cli import UserError, require_file, run
from discover_distill.config import load_model_config
from discover_distill.data import PackedTokens, eval_token_range
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


def compare(base: dict, new: dict) -> dict:
    """The retention fields of two perplexity results on the same batches."""
    lo, hi = paired_delta_ci(base["batch_losses"], new["batch_losses"])
    return {"base_ppl": base["ppl"], "updated_ppl": new["ppl"], "base_loss": base["loss"], "updated_loss": new["loss"],
            "delta_ppl": new["ppl"] - base["ppl"], "rel_delta_ppl": new["ppl"] / base["ppl"] - 1,
            "delta_ppl_ci95": [lo, hi], "tokens": base["tokens"], "batches": len(base["batch_losses"]),
            "token_range": base["token_range"]}


def sdft_report(updated_ckpt: str) -> dict | None:
    """sdft_eval_report.json of the run that wrote --updated_ckpt, if there is one."""
    path = os.path.join(os.path.dirname(os.path.abspath(updated_ckpt)), "sdft_eval_report.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return {**json.load(f), "path": path}
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


def check_gate_disjoint(report: dict | None, val: PackedTokens, e2_range: tuple[int, int]) -> None:
    """Refuse to measure retention on the val tokens the SDFT gate chose its checkpoint on."""
    gate = (report or {}).get("gate_val")
    if not gate:
        if report is not None:
            say(f"WARNING: {report['path']} does not say which val tokens the gate read (older sdft.py): "
                f"cannot check that E2's batches are disjoint from them")
        return
    same = os.path.realpath(gate["bin"]) == os.path.realpath(val.path) or (
        gate.get("source_sha256") is not None and gate["source_sha256"] == val.meta.get("source_sha256")
        and int(gate["num_tokens"]) == len(val))
    g0, g1 = gate["tokens"]
    if same and e2_range[0] < g1 and g0 < e2_range[1]:
        raise UserError(f"--val_bin: E2 would read tokens [{e2_range[0]}, {e2_range[1]}) of {val.path}, but the SDFT "
                        f"gate chose {report['path']}'s checkpoint on [{g0}, {g1}) of the same file; "
                        f"lower --max_batches (at most {g0} tokens) or use a longer val.bin")


def main() -> int:
    p = argparse.ArgumentParser(description="Validation-perplexity retention of an updated model.")
    p.add_argument("--base_ckpt", required=True, help="checkpoint before consolidation")
    p.add_argument("--base_cfg", required=True, help="its model_config.json")
    p.add_argument("--updated_ckpt", required=True, help="checkpoint after consolidation")
    p.add_argument("--updated_cfg", required=True, help="its model_config.json")
    p.add_argument("--val_bin", required=True, help="packed validation tokens")
    p.add_argument("--filler_val_bin", default=None,
                   help="packed filler-only held-out tokens, the headline forgetting measure (default: "
                        "val_filler.bin beside --val_bin if it exists; 'none' to skip)")
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
    filler_path = args.filler_val_bin
    if filler_path is None:
        auto = os.path.join(os.path.dirname(args.val_bin), "val_filler.bin")
        filler_path = auto if os.path.isfile(auto) else None
    elif filler_path.lower() == "none":
        filler_path = None
    else:
        require_file(filler_path, "--filler_val_bin")
    bins = {"val": val}
    if filler_path:
        bins["filler"] = PackedTokens(filler_path, val.tokenizer_sha256, args.val_bin)
    e2_range = eval_token_range(len(val), args.seq_len, args.batch_size, args.max_batches)
    report = sdft_report(args.updated_ckpt)
    check_gate_disjoint(report, val, e2_range)
    res: dict = {"val": {}, "filler": {}}
    for name, ckpt, cfg in (("base", args.base_ckpt, args.base_cfg), ("updated", args.updated_ckpt, args.updated_cfg)):
        model = load_checked(ckpt, cfg, f"--{name}_cfg", device)
        if args.seq_len > model.cfg.max_seq_len:
            raise UserError(f"--seq_len {args.seq_len} exceeds max_seq_len {model.cfg.max_seq_len} of {ckpt}")
        for split, data in bins.items():
            if data.vocab_size > model.cfg.vocab_size:
                raise UserError(f"{data.path} was packed with {data.vocab_size} pieces, more than {ckpt}'s "
                                f"{model.cfg.vocab_size}")
            res[split][name] = perplexity(model, data, args.seq_len, args.batch_size, args.max_batches, device, dtype)
        del model
    out = compare(res["val"]["base"], res["val"]["updated"])
    if filler_path:
        out["filler"] = {**compare(res["filler"]["base"], res["filler"]["updated"]), "bin": filler_path}
    out["headline"] = "filler" if filler_path else "val"
    out["promotion"] = None if report is None else {  # older reports lack all_rejected: step 0 means it
        "promoted_step": report.get("promoted_step"),
        "all_rejected": report.get("all_rejected", report.get("promoted_step") == 0), "report": report["path"]}
    out["args"] = vars(args)
    atomic_write_json(args.out, out)
    for split in ("val", "filler") if filler_path else ("val",):
        r = out if split == "val" else out["filler"]
        lo, hi = r["delta_ppl_ci95"]
        say(f"retention [{split}{' = headline' if split == out['headline'] else ''}]: base ppl {r['base_ppl']:.3f} -> "
            f"updated {r['updated_ppl']:.3f} (delta {r['delta_ppl']:+.3f}, {100 * r['rel_delta_ppl']:+.2f}%, "
            f"95% CI [{lo:+.3f}, {hi:+.3f}]) over {r['tokens']} tokens")
    if not filler_path:
        say("note: no filler-only split (val_filler.bin): the headline is val.bin, which mixes in task-format lines")
    if out["promotion"] and out["promotion"]["all_rejected"]:
        say(f"WARNING: the SDFT gate rejected every step ({report['path']}): --updated_ckpt is the BASE model, "
            f"so this measures no consolidation")
    elif report is not None:
        say(f"updated checkpoint = SDFT step {report.get('promoted_step')} (the newest step the gate promoted)")
    say(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
