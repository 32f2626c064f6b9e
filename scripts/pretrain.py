#!/usr/bin/env python3
"""Pretrain the mHC base model on packed token bins (runbook B1).

    python scripts/pretrain.py \\
      --train_bin data/packed/train.bin --val_bin data/packed/val.bin \\
      --out runs/pretrain_120m_base --model configs/model_mhc_120m.json \\
      --steps 5000 --seq_len 256 --micro_bs 4 --grad_accum 4 | tee runs/pretrain_120m_base/stdout.log

Same script on one GPU, several GPUs, or several nodes (global batch = micro_bs x grad_accum x world):

    torchrun --standalone --nproc_per_node=8 scripts/pretrain.py ...same flags...
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --master_addr=HOST --master_port=29500 scripts/pretrain.py ...

Ctrl+C once pauses after the current step with a checkpoint; continue with the same command plus
`--resume auto`, which reproduces the uninterrupted run exactly.

Training rows (`--packing aligned`, the default) start at a document start and hold whole
documents, best-fit packed and padded (data.AlignedBatchIterator), so an answer always sees its
task prompt; the loss is the mean over the real target tokens of the whole global batch.
`--packing random` draws windows at random offsets instead (data.BatchIterator). Validation uses
the same sequential windows either way, comparable with retention (E2).

`--copy_warmup N` spends the first N steps on synthetic copy rows (data.copy_rows) before the
corpus: a small model on a short task corpus does not form the content lookup (induction heads)
that reading an instance needs, and dense copying forms it in a few hundred steps.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from discover_distill import checkpoint as ck
from discover_distill.cli import UserError, require_file, run
from discover_distill.config import load_model_config, save_model_config
from discover_distill.data import (IGNORE_INDEX, AlignedBatchIterator, BatchIterator, PackedTokens, copy_rows,
                                   frequent_tokens)
from discover_distill.distributed import (all_reduce_mean, any_rank, barrier, init_distributed,
                                          shutdown_distributed)
from discover_distill.evaluate import perplexity
from discover_distill.model import GPT
from discover_distill.tracker import EXIT_PAUSED, RunTracker, format_duration
from discover_distill.training import (COMPILE_MODES, autocast, compile_for_training, cosine_lr, format_rate,
                                       peak_flops, resolve_compile, resolve_device, resolve_dtype, say,
                                       seed_everything)

LATEST, STEP_PREFIX = "ckpt_latest.pt", "ckpt_step"
LOG_AT_LEAST_S = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Pretrain the mHC transformer (runbook B1).")
    p.add_argument("--train_bin", required=True, help="packed training tokens (.bin with .json sidecar)")
    p.add_argument("--val_bin", required=True, help="packed validation tokens (same tokenizer)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl, tracker)")
    p.add_argument("--model", required=True, help="model config JSON, e.g. configs/model_mhc_120m.json")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps (updates)")
    p.add_argument("--seq_len", type=int, required=True, help="tokens per training sequence")
    p.add_argument("--micro_bs", type=int, required=True, help="sequences per micro-batch per process")
    p.add_argument("--grad_accum", type=int, default=1, help="micro-batches accumulated per update")
    p.add_argument("--global_bs", type=int, default=0,
                   help="sequences per update over all processes; if set, grad_accum is derived from it")
    p.add_argument("--lr", type=float, default=6e-4, help="peak learning rate")
    p.add_argument("--min_lr", type=float, default=6e-5, help="final learning rate of the cosine decay")
    p.add_argument("--warmup", type=int, default=200, help="linear warmup steps")
    p.add_argument("--weight_decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    p.add_argument("--grad_clip", type=float, default=1.0, help="max global grad norm (0 = off)")
    p.add_argument("--eval_every", type=int, default=500, help="validation every N steps (and at the end)")
    p.add_argument("--eval_batches", type=int, default=20, help="validation batches per evaluation")
    p.add_argument("--ckpt_every", type=int, default=1000, help="step checkpoint every N steps (and at the end)")
    p.add_argument("--keep_ckpts", type=int, default=2, help="step checkpoints kept (the final one always)")
    p.add_argument("--keep_steps", default="",
                   help="comma-separated steps whose checkpoints are never pruned (multiples of --ckpt_every), "
                        "e.g. the bases of run_phase.py's sweep over priors")
    p.add_argument("--log_every", type=int, default=10, help="metrics row + console line every N steps")
    p.add_argument("--seed", type=int, default=0, help="seed for init, data order and sampling")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16")
    p.add_argument("--compile", default="auto", choices=list(COMPILE_MODES),
                   help="auto: the whole model with CUDA graphs on one GPU, per block under torchrun, "
                        "off on a CPU | 1: as auto, per block on a CPU | blocks | graphs | 0: eager")
    p.add_argument("--fused_loss", type=int, default=0, choices=[0, 1],
                   help="1: LM head and cross-entropy in row chunks, with no [B, T, V] logits or fp32 copy of "
                        "them (losses.linear_cross_entropy); same loss and gradients up to rounding")
    p.add_argument("--packing", default="aligned", choices=["aligned", "random"],
                   help="aligned: rows start at a document start and hold whole documents, best-fit packed and "
                        "padded | random: windows of seq_len + 1 tokens at random offsets")
    p.add_argument("--copy_warmup", type=int, default=0,
                   help="the first N of --steps train on synthetic copy rows (a random string of varying length, "
                        "repeated) instead of the corpus, so that content lookup (induction heads) forms "
                        "before the task lines need it; the corpus order is unchanged (0 = off)")
    p.add_argument("--copy_vocab", type=int, default=512,
                   help="copy rows draw their tokens from the K most frequent tokens of --train_bin (digits, "
                        "letters, the prompts' words); 512 formed the lookup sooner than 64 or 2048 (data.copy_rows)")
    p.add_argument("--resume", default="none", choices=["none", "auto"],
                   help="auto: continue from the newest valid checkpoint in --out (fresh start if none)")
    p.add_argument("--debug_nan_at_step", type=int, default=-1, help=argparse.SUPPRESS)  # tests only
    args = p.parse_args(argv)
    for name in ("steps", "seq_len", "micro_bs", "grad_accum", "eval_batches", "ckpt_every", "log_every",
                 "eval_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1 (got {getattr(args, name)})")
    if args.lr <= 0 or args.min_lr < 0 or args.warmup < 0:
        p.error("--lr must be > 0, --min_lr and --warmup >= 0")
    try:
        args.keep_steps = tuple(int(s) for s in args.keep_steps.split(",") if s.strip())
    except ValueError:
        p.error(f"--keep_steps: expected comma-separated integers, got {args.keep_steps!r}")
    # a step that is never saved cannot be kept: say so now, not after the run
    unsaved = [s for s in args.keep_steps if s < 1 or s > args.steps or (s % args.ckpt_every and s != args.steps)]
    if unsaved:
        p.error(f"--keep_steps: {','.join(map(str, unsaved))} not a saved step (multiples of --ckpt_every "
                f"{args.ckpt_every} up to --steps {args.steps})")
    return args


def batch_geometry(args: argparse.Namespace, world: int) -> tuple[int, int]:
    """(grad_accum, global_bs) with global_bs = micro_bs * grad_accum * world asserted."""
    accum = args.grad_accum
    if args.global_bs:
        per_step = args.micro_bs * world
        if args.global_bs % per_step:
            raise UserError(f"--global_bs {args.global_bs} is not divisible by micro_bs x world = {per_step}")
        accum = args.global_bs // per_step
    global_bs = args.micro_bs * accum * world
    assert global_bs == args.micro_bs * accum * world and (not args.global_bs or global_bs == args.global_bs)
    return accum, global_bs


def truncate_metrics(path: str, last_step: int) -> None:
    """On resume drop rows logged after the checkpoint we resume from (they will be redone)."""
    if not os.path.isfile(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line).get("step", 0) <= last_step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a hard kill
    ck.atomic_write_text(path, "".join(keep))


def main() -> int:
    args = parse_args()
    require_file(args.train_bin, "--train_bin")
    require_file(args.val_bin, "--val_bin")
    require_file(args.model, "--model")
    info = init_distributed("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    device = resolve_device(args.device, info.local_rank)
    dtype = resolve_dtype(args.dtype, device)
    compile_mode = resolve_compile(args.compile, device, info.world_size)
    cfg = load_model_config(args.model)
    if args.seq_len > cfg.max_seq_len:
        raise UserError(f"--seq_len {args.seq_len} exceeds max_seq_len {cfg.max_seq_len} of {args.model}")
    train = PackedTokens(args.train_bin)
    val = PackedTokens(args.val_bin, expected_tokenizer_sha256=train.tokenizer_sha256)
    if train.vocab_size > cfg.vocab_size:
        raise UserError(f"--model {args.model}: vocab_size {cfg.vocab_size} is smaller than the tokenizer's "
                        f"{train.vocab_size} used for {args.train_bin}")
    if not 0 <= args.copy_warmup < args.steps:
        raise UserError(f"--copy_warmup {args.copy_warmup} must be in [0, --steps {args.steps})")
    if args.copy_warmup and args.copy_vocab < 2:
        raise UserError(f"--copy_vocab {args.copy_vocab} must be >= 2")
    accum, global_bs = batch_geometry(args, info.world_size)
    copy_alphabet = frequent_tokens(train.tokens, args.copy_vocab) if args.copy_warmup else None
    tokens_per_step = global_bs * args.seq_len

    os.makedirs(args.out, exist_ok=True)
    resume = None
    if args.resume == "auto":
        resume = ck.find_resume_checkpoint(args.out, LATEST, STEP_PREFIX, log=say)
    elif ck.list_step_checkpoints(args.out, STEP_PREFIX) or os.path.exists(os.path.join(args.out, LATEST)):
        raise UserError(f"--out {args.out} already holds checkpoints: add --resume auto to continue, "
                        f"or choose a new --out")
    start_step = 0
    seed_everything(args.seed)
    model = GPT(cfg).to(device)
    model.fused_loss = bool(args.fused_loss)
    optimizer = model.configure_optimizer(weight_decay=args.weight_decay, lr=args.lr, betas=(0.9, 0.95),
                                          device_type=device.type)
    iterator = AlignedBatchIterator if args.packing == "aligned" else BatchIterator
    batches = iterator(train, args.seq_len, args.micro_bs, seed=args.seed, rank=info.rank, world_size=info.world_size)
    if resume is not None:
        path, state = resume
        saved = state.get("args", {})
        saved_packing = saved.get("packing", "random")  # runs from before --packing drew random windows
        if saved_packing != args.packing:
            raise UserError(f"--packing {args.packing} differs from the checkpoint's {saved_packing} ({path}): "
                            f"resume with --packing {saved_packing}")
        for key in ("seq_len", "micro_bs", "copy_warmup") + (("copy_vocab",) if args.copy_warmup else ()):
            if saved.get(key) is not None and saved[key] != getattr(args, key):
                raise UserError(f"--{key} {getattr(args, key)} differs from the checkpoint's {saved[key]} ({path})")
        if state.get("global_bs") not in (None, global_bs):
            raise UserError(f"global batch {global_bs} differs from the checkpoint's {state['global_bs']} ({path})")
        if state.get("model_config") != cfg.to_dict():
            raise UserError(f"--model {args.model} differs from the model config saved in {path}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        batches.load_state_dict(state["data"])
        ck.restore_rng_state(state["rng"])
        start_step = int(state["step"])
        say(f"resuming from {path} at step {start_step}")
    packing_stats = batches.epoch_stats() if args.packing == "aligned" else {}
    n_params = model.num_params()
    flops_per_token = model.flops_per_token(args.seq_len)
    peak = peak_flops(device)
    train_model = compile_for_training(model, compile_mode)
    graphs = compile_mode == "graphs"
    if info.enabled:
        train_model = DDP(train_model, device_ids=[info.local_rank] if device.type == "cuda" else None)

    metrics_path = os.path.join(args.out, "metrics.jsonl")
    run_args = {**vars(args), "grad_accum": accum}
    tracker = RunTracker(args.out, "B", args.steps, kind="pretrain", artifact_params={"steps": args.steps},
                         config=run_args, inputs={"train_bin": args.train_bin, "val_bin": args.val_bin,
                                                  "model": args.model},
                         seed=args.seed, resumed_from_step=start_step if resume else None, enabled=info.is_main)
    if info.is_main:
        save_model_config(cfg, os.path.join(args.out, "model_config.json"))
        ck.atomic_write_json(os.path.join(args.out, "pretrain_config.json"), {
            **run_args, "global_bs": global_bs, "tokens_per_step": tokens_per_step, "world_size": info.world_size,
            "device": str(device), "dtype": str(dtype).replace("torch.", ""), "compile": compile_mode,
            "num_params": n_params, "flops_per_token": flops_per_token,
            "tokenizer_sha256": train.tokenizer_sha256, "train_tokens": len(train), "val_tokens": len(val),
            **{f"packing_{k}": v for k, v in packing_stats.items()}})
        if resume is not None:
            truncate_metrics(metrics_path, start_step)
        say(f"model {args.model}: {n_params / 1e6:.2f}M parameters | device {device} {str(dtype)[6:]} | "
            f"world {info.world_size} | global batch {global_bs} x {args.seq_len} = {tokens_per_step} tokens/step"
            f" | grad_accum {accum} | compile {compile_mode}")
        if args.copy_warmup:
            say(f"copy warm-up: steps 1-{args.copy_warmup} train on synthetic copy rows over the {len(copy_alphabet)} "
                f"most frequent tokens, then the corpus")
        if packing_stats:
            st = packing_stats
            say(f"packing aligned: {st['rows']} rows of {args.seq_len + 1} tokens in epoch {st['epoch']} | "
                f"fill {100 * st['fill']:.1f}% | {st['docs_cut']} documents longer than a row cut into pieces")

    def save_checkpoint(step: int, as_step_file: bool) -> str:
        state = {"kind": "pretrain", "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "data": batches.state_dict(), "rng": ck.capture_rng_state(), "model_config": cfg.to_dict(),
                 "args": run_args, "global_bs": global_bs}
        latest = os.path.join(args.out, LATEST)
        if not info.is_main:
            return latest
        if as_step_file:
            path = os.path.join(args.out, ck.step_checkpoint_name(STEP_PREFIX, step))
            ck.atomic_torch_save(state, path)
            tmp = latest + ".link"  # latest = a hard link to the step file: no second copy on disk
            if os.path.exists(tmp):
                os.unlink(tmp)
            os.link(path, tmp)
            os.replace(tmp, latest)
            ck.prune_step_checkpoints(args.out, STEP_PREFIX, args.keep_ckpts,
                                      protect=(args.steps, *args.keep_steps))
        else:
            ck.atomic_torch_save(state, latest)
        tracker.checkpoint(step, latest)
        return latest

    def evaluate(step: int) -> dict:
        res = perplexity(model, val, args.seq_len, args.micro_bs, args.eval_batches, device, dtype)
        return {"val_loss": res["loss"], "val_ppl": res["ppl"], "val_tokens": res["tokens"]}

    resume_cmd = "python " + " ".join(shlex.quote(a) for a in sys.argv +
                                      ([] if args.resume == "auto" else ["--resume", "auto"]))
    train_model.train()
    t_start = t_last = time.time()
    last_logged = start_step
    bad = torch.zeros((), device=device, dtype=torch.bool)
    if start_step >= args.steps:
        say(f"already finished: step {start_step} >= --steps {args.steps}")
    elif start_step == 0:  # the untrained model's validation loss: the baseline every later eval improves on
        row = {"step": 0, "elapsed_s": 0.0, **evaluate(0)}
        if info.is_main:
            ck.append_jsonl(metrics_path, row)
            say(f"step 0/{args.steps} | val {row['val_loss']:.4f} ppl {row['val_ppl']:.2f}")
    for step in range(start_step, args.steps):
        lr = cosine_lr(step, lr=args.lr, min_lr=args.min_lr, warmup=args.warmup, total=args.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=device)
        warming = step < args.copy_warmup  # the corpus cursor does not move during the copy warm-up
        micro_batches = [copy_rows(((step * accum + m) * info.world_size + info.rank) * args.micro_bs, args.micro_bs,
                                   args.seq_len, copy_alphabet, args.seed) if warming else batches.next_batch()
                         for m in range(accum)]
        # Each micro-batch's loss is the mean over its real targets; weighting it by its share of the
        # real targets of all micro-batches on all ranks (DDP averages over ranks) makes the update the
        # mean over every real target of the global batch, the same on any number of ranks.
        # Without padding (random windows) every weight is 1 / accum.
        counts = [int((y != IGNORE_INDEX).sum()) for _, y in micro_batches]
        mean_count = (all_reduce_mean(torch.tensor(float(sum(counts)), device=device), info) if info.enabled
                      else float(max(sum(counts), 1)))
        for micro, (x, y) in enumerate(micro_batches):
            weight = counts[micro] / mean_count
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            sync_ctx = train_model.no_sync() if info.enabled and micro < accum - 1 else contextlib.nullcontext()
            with sync_ctx:
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                with autocast(device, dtype):
                    _, loss = train_model(x, targets=y)
                if step + 1 == args.debug_nan_at_step:
                    loss = loss * float("nan")
                (loss * weight).backward()
            step_loss += loss.detach() * weight
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip if args.grad_clip > 0 else
                                                   float("inf"))
        bad |= ~(torch.isfinite(step_loss) & torch.isfinite(grad_norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=not graphs)
        done = step + 1
        tracker.update(done)
        # log on schedule, at evals, on the first step (a new run shows progress at once) and at
        # least every LOG_AT_LEAST_S seconds (slow configs on small machines; single process only,
        # since all ranks must agree on which steps log)
        is_eval = done % args.eval_every == 0 or done == args.steps
        is_log = (done % args.log_every == 0 or is_eval or done == start_step + 1
                  or (not info.enabled and time.time() - t_last > LOG_AT_LEAST_S))
        is_ckpt = done % args.ckpt_every == 0 or done == args.steps
        if is_log or is_ckpt:
            if any_rank(bool(bad.item()), info, device):
                msg = (f"non-finite loss or gradient by step {done}; stopping without saving. "
                       f"Last good checkpoint: {os.path.join(args.out, LATEST)}")
                tracker.fail(msg, step=done)
                say(f"error: {msg}")
                shutdown_distributed()
                return 1
        if is_log:
            # the loss of this very step (not an interval mean), so a resumed run logs identical rows
            mean_loss = all_reduce_mean(step_loss, info).item()
            now = time.time()
            tok_s = tokens_per_step * (done - last_logged) / max(now - t_last, 1e-9)
            row = {"step": done, "loss": mean_loss, "lr": lr, "grad_norm": float(grad_norm),
                   "tokens_per_s": tok_s, "elapsed_s": now - t_start, "tokens_seen": done * tokens_per_step}
            mfu = flops_per_token * tok_s / peak if peak else None
            if mfu is not None:
                row["mfu"] = mfu
            if warming:
                row["copy_warmup"] = True
            if is_eval:
                row.update(evaluate(done))
            # ETA from the steps since the first of this process, whose time is mostly compilation
            first = done == start_step + 1
            if first:
                t_first = now
            rate = (done - start_step - 1) / max(now - t_first, 1e-9)
            line = (f"step {done}/{args.steps} | loss {mean_loss:.4f} | lr {lr:.2e} | {format_rate(tok_s)}"
                    + (f" | mfu {100 * mfu:.1f}%" if mfu is not None else "")
                    + (f" | val {row['val_loss']:.4f} ppl {row['val_ppl']:.2f}" if "val_loss" in row else "")
                    + (" | copy warm-up" if warming else "")
                    + (f" | first step {now - t_start:.1f}s" + (" with compilation" if compile_mode != "none" else "")
                       if first else
                       f" | eta {format_duration((args.steps - done) / max(rate, 1e-9))}"))
            if info.is_main:
                ck.append_jsonl(metrics_path, row)
                say(line)
            last_logged, t_last = done, time.time()
        if is_ckpt:
            save_checkpoint(done, as_step_file=True)
        # ranks must agree on the pause step; across processes that costs a sync, so only at log steps
        stop = any_rank(tracker.should_stop, info, device) if (is_log or not info.enabled) else False
        if stop and done < args.steps:
            save_checkpoint(done, as_step_file=False)
            barrier(info)
            shutdown_distributed()
            if info.is_main:
                tracker.pause(resume_cmd, step=done)
            sys.exit(EXIT_PAUSED)
    if info.is_main:
        tracker.finish(step=args.steps)
        say(f"done: {args.steps} steps in {format_duration(time.time() - t_start)}; "
            f"checkpoint {os.path.join(args.out, LATEST)}")
    barrier(info)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    run(main)
