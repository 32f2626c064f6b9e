#!/usr/bin/env python3
"""Held-out discovery suite: best-of-N or test-time LoRA training (TTT) on every task of a file.

    python paper/run_discovery_suite.py --tasks data/discovery/heldout.jsonl \\
      --ckpt runs/pretrain_120m_base/ckpt_latest.pt --tokenizer data/tokenizer/spm32k.model \\
      --out_root runs/suite/ttt_main_seed0 --seed 0 --mode ttt \\
      --ttt_steps 30 --rollouts 32 --max_new_tokens 32 \\
      --objective entropic --reuse 1 --adaptive_beta 1 --kl_lambda 0.1

Writes <out_root>/config.json, summary.jsonl (a row per task) and <task_id>/result.json; TTT also
writes <task_id>/metrics.jsonl and <task_id>/adapter_step_*/lora.pt. `--resume` skips finished
tasks and redoes unfinished ones. Spread a suite over GPUs with `--shard i/n` per process, or
under torchrun (shards taken from RANK / WORLD_SIZE).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from discover_distill import discovery as D
from discover_distill.checkpoint import atomic_write_json, atomic_write_text
from discover_distill.cli import UserError, require_file, run
from discover_distill.distributed import env_dist_info, shard_items
from discover_distill.evaluate import bootstrap_ci
from discover_distill.lora import LoRAConfig, inject_lora
from discover_distill.model import load_model
from discover_distill.objectives import LN2
from discover_distill.tokenizer import Tokenizer
from discover_distill.tracker import EXIT_PAUSED, RunTracker, format_duration
from discover_distill.training import resolve_device, resolve_dtype, say


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Best-of-N or TTT over a task file.")
    p.add_argument("--tasks", required=True, help="task JSONL (gen_discovery_tasks.py)")
    p.add_argument("--ckpt", required=True, help="model checkpoint (pretrain or SDFT)")
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model used for the checkpoint's data")
    p.add_argument("--out_root", required=True, help="run directory for this suite")
    p.add_argument("--seed", type=int, default=0, help="sampling / adapter-init seed")
    p.add_argument("--mode", choices=["bestofn", "ttt"], required=True, help="best-of-N sampling or TTT")
    p.add_argument("--ttt_steps", type=int, default=30, help="TTT steps; best-of-N budget = ttt_steps x rollouts")
    p.add_argument("--rollouts", type=int, default=32, help="samples per step per task")
    p.add_argument("--max_new_tokens", type=int, default=32, help="max tokens per sampled answer")
    p.add_argument("--objective", choices=["entropic", "expected"], default="entropic",
                   help="entropic (LOO, DESIGN §4) or expected-reward advantages")
    p.add_argument("--reuse", type=int, choices=[0, 1], default=1, help="1 = PUCT state reuse (archive)")
    p.add_argument("--adaptive_beta", type=int, choices=[0, 1], default=1,
                   help="1 = per-group beta with KL(softmax(beta r) || uniform) = ln 2; 0 = fixed --beta")
    p.add_argument("--beta", type=float, default=2.0, help="fixed entropic beta when --adaptive_beta 0")
    p.add_argument("--beta_target_kl", type=float, default=LN2,
                   help="adaptive beta: the KL(softmax(beta r) || uniform) each group's beta is solved for (ln 2)")
    p.add_argument("--kl_lambda", type=float, default=0.1, help="per-token KL-to-base shaping weight (0 = off)")
    p.add_argument("--lora_rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--lora_alpha", type=float, default=16.0, help="LoRA alpha (scale = alpha / rank)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the LoRA parameters "
                   "(0 = the ttt_lr0 control: reuse prompts and sampling, no learning)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--groups", type=int, default=4, help="start states per TTT step with reuse")
    p.add_argument("--budget_match", choices=["samples", "flops"], default="samples",
                   help="best-of-N budget: samples = ttt_steps x rollouts; flops = also charge TTT training")
    p.add_argument("--flops_from", default="",
                   help="best-of-N with --budget_match flops: a TTT run directory; each task samples until it has "
                        "spent that run's FLOPs on the same task (compute matched task by task) instead of the "
                        "ttt_steps x rollouts x (1 + 3 + [kl]) sample estimate")
    p.add_argument("--save_adapter_every", type=int, default=10, help="TTT: save the adapter every N steps (and last)")
    p.add_argument("--tasks_per_batch", type=int, default=8, help="tasks sampled/trained together (one adapter each)")
    p.add_argument("--resume", action="store_true", help="skip tasks with a result.json; redo unfinished ones")
    p.add_argument("--shard", default="", help="i/n: run the i-th of n shards of the task list (0-based)")
    p.add_argument("--max_tasks", type=int, default=0, help="only the first N tasks of the file (0 = all)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU) | fp32 | bf16")
    args = p.parse_args(argv)
    for name in ("ttt_steps", "rollouts", "max_new_tokens", "tasks_per_batch", "groups", "save_adapter_every",
                 "lora_rank"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.lr < 0:
        p.error("--lr must be >= 0")
    if not args.beta_target_kl > 0:
        p.error("--beta_target_kl must be > 0")
    if args.flops_from and (args.mode != "bestofn" or args.budget_match != "flops"):
        p.error("--flops_from needs --mode bestofn --budget_match flops")
    return args


def parse_shard(spec: str) -> tuple[int, int]:
    if not spec:
        info = env_dist_info()
        return info.rank, info.world_size
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard: expected i/n (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise UserError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def flops_targets(run_dir: str, tasks: list[dict]) -> list[float]:
    """Each task's FLOPs in another suite run (its <task_id>/result.json), for --flops_from."""
    out = []
    for t in tasks:
        path = os.path.join(run_dir, t["task_id"], "result.json")
        try:
            with open(path) as f:
                flops = json.load(f)["flops"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"--flops_from: {path}: no finished result with its FLOPs (run that TTT run first)") from None
        if not isinstance(flops, (int, float)) or not flops > 0:
            raise UserError(f"--flops_from: {path}: flops {flops!r} is not a positive number")
        out.append(float(flops))
    return out


def write_summary(out_root: str, tasks: list[dict]) -> list[dict]:
    """summary.jsonl rebuilt from every result.json present (so shards and resumes agree)."""
    rows = []
    for t in tasks:
        path = os.path.join(out_root, t["task_id"], "result.json")
        if os.path.isfile(path):
            with open(path) as f:
                r = json.load(f)
            rows.append({k: r.get(k) for k in ("task_id", "family", "difficulty", "mode", "best_reward", "solved",
                                           "samples", "generated_tokens", "flops", "first_step_solved", "wall_s",
                                           "best_curve")})
    atomic_write_text(os.path.join(out_root, "summary.jsonl"), "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def report(rows: list[dict], label: str) -> None:
    if not rows:
        say(f"{label}: no finished tasks")
        return
    solved = [float(r["solved"]) for r in rows]
    best = [r["best_reward"] for r in rows]
    s_lo, s_hi = bootstrap_ci(solved)
    b_lo, b_hi = bootstrap_ci(best)
    say(f"{label}: {len(rows)} tasks | solve rate {sum(solved) / len(solved):.3f} [95% CI {s_lo:.3f}, {s_hi:.3f}] | "
        f"mean best reward {sum(best) / len(best):.3f} [95% CI {b_lo:.3f}, {b_hi:.3f}]")


def main() -> int:
    args = parse_args()
    require_file(args.ckpt, "--ckpt")
    require_file(args.tokenizer, "--tokenizer")
    all_tasks = D.load_tasks(args.tasks)
    if args.max_tasks:
        all_tasks = all_tasks[:args.max_tasks]
    shard, n_shards = parse_shard(args.shard)
    device = resolve_device(args.device, local_rank=env_dist_info().local_rank)
    dtype = resolve_dtype(args.dtype, device)
    tok = Tokenizer(args.tokenizer)
    model = load_model(args.ckpt, device)
    if tok.vocab_size > model.cfg.vocab_size:
        raise UserError(f"--tokenizer has {tok.vocab_size} pieces but {args.ckpt} only {model.cfg.vocab_size}")
    for p in model.parameters():
        p.requires_grad_(False)
    os.makedirs(args.out_root, exist_ok=True)
    done = {t["task_id"] for t in all_tasks if os.path.isfile(os.path.join(args.out_root, t["task_id"], "result.json"))}
    if done and not args.resume:
        raise UserError(f"--out_root {args.out_root} already has {len(done)} finished tasks: add --resume to "
                        f"continue, or choose a new --out_root")
    mine = shard_items(all_tasks, shard, n_shards)
    todo = [t for t in mine if t["task_id"] not in done]
    targets = dict(zip([t["task_id"] for t in todo], flops_targets(args.flops_from, todo))) if args.flops_from else None
    cfg = D.DiscoveryConfig(mode=args.mode, ttt_steps=args.ttt_steps, rollouts=args.rollouts,
                            max_new_tokens=args.max_new_tokens, objective=args.objective, reuse=bool(args.reuse),
                            adaptive_beta=bool(args.adaptive_beta), beta=args.beta,
                            beta_target_kl=args.beta_target_kl, kl_lambda=args.kl_lambda,
                            lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lr=args.lr,
                            temperature=args.temperature, groups=args.groups, budget_match=args.budget_match,
                            save_adapter_every=args.save_adapter_every)
    kind = "suite_ttt" if args.mode == "ttt" else "suite_bestofn"
    tracker = RunTracker(args.out_root, "C", len(mine), kind=kind,
                         artifact_params={"task_ids": [t["task_id"] for t in all_tasks]},
                         config={**vars(args), "discovery": cfg.__dict__, "shard": f"{shard}/{n_shards}"},
                         inputs={"tasks": args.tasks, "ckpt": args.ckpt, "tokenizer": args.tokenizer}, seed=args.seed,
                         resumed_from_step=(len(mine) - len(todo)) if args.resume else None, enabled=shard == 0)
    if args.mode == "ttt":
        inject_lora(model, LoRAConfig(rank=args.lora_rank, alpha=args.lora_alpha), n_adapters=args.tasks_per_batch)
    budget = (f"each task to its FLOPs in {args.flops_from}" if args.flops_from else
              f"budget {D.bestofn_budget(cfg)} samples/task" if args.mode == "bestofn"
              else f"{args.ttt_steps} steps x {args.rollouts} rollouts")
    say(f"{args.mode} on {len(todo)} of {len(mine)} tasks (shard {shard}/{n_shards}, {len(done)} already done) | "
        f"{budget} | device {device}")
    t0 = time.time()
    finished = len(mine) - len(todo)
    for b in range(0, len(todo), args.tasks_per_batch):
        batch = todo[b:b + args.tasks_per_batch]
        dirs = [D.task_dir(args.out_root, t["task_id"]) for t in batch]
        for d in dirs:  # an unfinished task restarts from scratch: clear what its last attempt left
            if os.path.isdir(d):
                shutil.rmtree(d)
            os.makedirs(d)
        if args.mode == "ttt":
            results = D.run_ttt(model, tok, batch, cfg, dirs, args.seed, dtype=dtype)
        else:
            results = D.run_bestofn(model, tok, batch, cfg, args.seed, dtype=dtype,
                                    flops_targets=[targets[t["task_id"]] for t in batch] if targets else None)
        for d, r in zip(dirs, results):
            atomic_write_json(os.path.join(d, "result.json"), r)
        finished += len(batch)
        tracker.update(finished)
        rate = (finished - (len(mine) - len(todo))) / max(time.time() - t0, 1e-9)
        best = ", ".join(f"{r['best_reward']:.2f}" for r in results)
        say(f"tasks {finished}/{len(mine)} | batch best {best} | "
            f"{rate * 60:.1f} tasks/min | eta {format_duration((len(mine) - finished) / rate if rate else None)}")
        write_summary(args.out_root, all_tasks)
        tracker.refresh_artifacts()
        if tracker.should_stop and finished < len(mine):
            tracker.pause("python " + " ".join(sys.argv + ([] if args.resume else ["--resume"])), step=finished)
            return EXIT_PAUSED
    rows = write_summary(args.out_root, all_tasks)
    tracker.finish(step=len(mine))
    report(rows, f"{args.mode} {args.out_root}")
    return 0


if __name__ == "__main__":
    run(main)
