#!/usr/bin/env python3
"""Training throughput of our model against karpathy/nanoGPT's GPT at the same width, depth,
sequence length and batch, measured in the same process, interleaved round by round.

    python scripts/bench_pretrain.py --model configs/model_mhc_tiny.json --seq_len 256 --batch 8

nanoGPT is not vendored: get a checkout with `git clone https://github.com/karpathy/nanoGPT
.bench/nanoGPT` (git-ignored). The default `--nanogpt_dir auto` uses .bench/nanoGPT when it is there
and otherwise measures ours only and prints that command (`make bench` on a fresh clone); a
directory named explicitly must hold model.py; `--nanogpt_dir none` measures ours only. Also
measured: the same model with mHC off (mhc_streams = 1), which gives mHC's step-time overhead. MFU (on GPUs with a known peak) uses one
formula for every model: 6 x (parameters that multiply: every matrix, the tied LM head included,
position tables excluded) + 12 L C T attention FLOPs per token. --profile_dir writes, per model, a
torch.profiler table of the top kernels and the kernel (or, on a CPU, operator) count per step.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import time

import torch

from discover_distill.cli import UserError, require_file, run
from discover_distill.config import load_model_config
from discover_distill.model import GPT
from discover_distill.training import (COMPILE_MODES, autocast, compile_for_training, peak_flops, resolve_compile,
                                       resolve_device, resolve_dtype, say)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEER = os.path.join(ROOT, ".bench", "nanoGPT")


def clone_command(nanogpt_dir: str) -> str:
    return f"git clone https://github.com/karpathy/nanoGPT {os.path.relpath(nanogpt_dir)}"


def peer_dir(arg: str) -> str | None:
    """The nanoGPT checkout to measure, or None (ours only): `auto` takes .bench/nanoGPT when it is
    checked out; a directory named explicitly must be one (a typo is an error, not a silent skip)."""
    if arg == "none":
        return None
    if arg == "auto":
        return DEFAULT_PEER if os.path.isfile(os.path.join(DEFAULT_PEER, "model.py")) else None
    return arg


def load_nanogpt(nanogpt_dir: str):
    path = os.path.join(nanogpt_dir, "model.py")
    if not os.path.isfile(path):
        raise UserError(f"--nanogpt_dir: {path} not found; get the peer with `{clone_command(nanogpt_dir)}`")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the peer's own source file, which the user checked out
    return module


def matmul_flops_per_token(model: torch.nn.Module, n_layers: int, d_model: int, seq_len: int) -> float:
    """6 x the parameters that multiply activations + 12 L C T (attention scores and mixing), per
    training token. Position-embedding tables only index, so they do not count; a tied LM head is
    counted once (its one parameter tensor serves as embedding and head)."""
    n = sum(p.numel() for name, p in model.named_parameters() if not name.endswith(("wpe.weight",)))
    return 6 * n + 12 * n_layers * d_model * seq_len


def profile_steps(model, optimizer, x, y, device, dtype, steps: int, graphs: bool, path: str) -> dict:
    """Profile `steps` training steps: the top operators/kernels table to `path`, and a summary
    (kernels per step, top 10 by self time) returned for the JSON results."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        time_training(model, optimizer, x, y, device, dtype, warmup=0, steps=steps, graphs=graphs)
    on_gpu = device.type == "cuda"
    key = "self_cuda_time_total" if on_gpu else "self_cpu_time_total"
    averages = prof.key_averages()
    table = averages.table(sort_by=key, row_limit=25)
    with open(path, "w") as f:
        f.write(table)
    if on_gpu:  # kernels launched on the device
        count = sum(1 for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)
    else:       # operators dispatched (a CPU has no kernel launches)
        count = sum(e.count for e in averages)
    top = sorted(averages, key=lambda e: getattr(e, "self_device_time_total" if on_gpu else "self_cpu_time_total", 0),
                 reverse=True)[:10]
    return {"per_step": count / steps, "unit": "kernels" if on_gpu else "operators", "table": os.path.basename(path),
            "top": [{"name": e.key, "calls": e.count,
                     "self_ms": getattr(e, "self_device_time_total" if on_gpu else "self_cpu_time_total", 0) / 1e3 / steps}
                    for e in top]}


def time_training(model, optimizer, x, y, device, dtype, warmup: int, steps: int, graphs: bool = False) -> list[float]:
    """Seconds per full training step (forward, backward, AdamW), one entry per timed step.
    graphs: the model runs under CUDA graphs, stepped as pretrain.py steps it."""
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with autocast(device, dtype):
            _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=not graphs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="configs/model_mhc_tiny.json", help="our model config JSON")
    p.add_argument("--nanogpt_dir", default="auto",
                   help="checkout of karpathy/nanoGPT; auto: .bench/nanoGPT if checked out, else ours only; "
                        "none: ours only")
    p.add_argument("--seq_len", type=int, default=256, help="tokens per sequence")
    p.add_argument("--batch", type=int, default=8, help="sequences per step")
    p.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model per round")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto | fp32 | bf16")
    p.add_argument("--compile", default="0", choices=list(COMPILE_MODES),
                   help="compile ours as pretrain.py's --compile does (1: CUDA graphs on a GPU, per block on a "
                        "CPU) and nanoGPT with torch.compile, as its train.py does; 0 = all eager")
    p.add_argument("--out", default="", help="optional JSON file for the results")
    p.add_argument("--profile_dir", default="", help="also profile each model (top kernels, kernels per step) "
                                                     "into this directory")
    p.add_argument("--profile_steps", type=int, default=3, help="steps per profiled model")
    p.add_argument("--fused_loss", type=int, default=0, choices=[0, 1],
                   help="1: our models compute the loss as pretrain.py --fused_loss 1 does")
    p.add_argument("--bf16_streams", type=int, default=0, choices=[0, 1],
                   help="1: also measure ours with the residual streams stored in bf16 (mhc_stream_dtype)")
    args = p.parse_args()
    require_file(args.model, "--model")
    if args.profile_dir and os.path.exists(args.profile_dir) and not os.path.isdir(args.profile_dir):
        raise UserError(f"--profile_dir {args.profile_dir} exists and is not a directory")
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    cfg = load_model_config(args.model)
    compile_mode = resolve_compile(args.compile, device, world_size=1)
    nanogpt_dir = peer_dir(args.nanogpt_dir)
    with_peer = nanogpt_dir is not None
    nano = load_nanogpt(nanogpt_dir) if with_peer else None
    torch.manual_seed(0)
    models = {"ours": GPT(cfg), "ours_plain": GPT(dataclasses.replace(cfg, mhc_streams=1))}
    if args.bf16_streams:
        models["ours_bf16_streams"] = GPT(dataclasses.replace(cfg, mhc_stream_dtype="bf16"))
    if with_peer:
        models["nanogpt"] = nano.GPT(nano.GPTConfig(block_size=args.seq_len, vocab_size=cfg.vocab_size,
                                                    n_layer=cfg.n_layers, n_head=cfg.n_heads, n_embd=cfg.d_model,
                                                    dropout=0.0, bias=False))
    for name in models:
        if name != "nanogpt":
            models[name].fused_loss = bool(args.fused_loss)
    flops_per_token = {name: matmul_flops_per_token(m, cfg.n_layers, cfg.d_model, args.seq_len)
                       for name, m in models.items()}
    optims = {}
    for name, m in models.items():
        m.to(device).train()
        if name == "nanogpt":
            optims[name] = m.configure_optimizers(0.1, 3e-4, (0.9, 0.95), device.type)
        else:
            optims[name] = m.configure_optimizer(weight_decay=0.1, lr=3e-4, betas=(0.9, 0.95), device_type=device.type)
        if compile_mode != "none":
            models[name] = compile_for_training(m, compile_mode) if name != "nanogpt" else torch.compile(m)
    x = torch.randint(0, cfg.vocab_size, (args.batch, args.seq_len), device=device)
    y = torch.randint(0, cfg.vocab_size, (args.batch, args.seq_len), device=device)
    times = {name: [] for name in models}
    round_ratios = []  # ours/nanoGPT per round: how much the ratio moves with the machine's noise
    for r in range(args.rounds):
        medians = {}
        for name, m in models.items():
            t = time_training(m, optims[name], x, y, device, dtype, args.warmup, args.steps,
                              graphs=compile_mode == "graphs" and name != "nanogpt")
            times[name] += t
            medians[name] = statistics.median(t)
        round_ratios.append(medians["nanogpt"] / medians["ours"] if with_peer else None)
    tokens = args.batch * args.seq_len
    peak = peak_flops(device)
    result = {"device": str(device), "dtype": str(dtype), "compile": compile_mode, "seq_len": args.seq_len,
              "batch": args.batch, "nanogpt_dir": nanogpt_dir,
              "threads": torch.get_num_threads(), "models": {}}
    say(f"{'model':<12} {'params':>9} {'median step':>12} {'tok/s':>10}" + ("  mfu" if peak else ""))
    for name, m in models.items():
        base = m._orig_mod if hasattr(m, "_orig_mod") else m
        n = sum(p.numel() for p in base.parameters())
        med = statistics.median(times[name])
        tok_s = tokens / med
        row = {"params": n, "median_step_s": med, "tokens_per_s": tok_s, "flops_per_token": flops_per_token[name]}
        if peak:
            row["mfu"] = flops_per_token[name] * tok_s / peak
        result["models"][name] = row
        say(f"{name:<12} {n / 1e6:>8.2f}M {med * 1e3:>10.1f}ms {tok_s:>10.0f}"
            + (f"  {100 * row['mfu']:.1f}%" if "mfu" in row else ""))
    ours, plain = (result["models"][k]["tokens_per_s"] for k in ("ours", "ours_plain"))
    result["mhc_step_overhead"] = plain / ours - 1
    if with_peer:
        peer = result["models"]["nanogpt"]["tokens_per_s"]
        result["ratio_ours_vs_nanogpt"] = ours / peer
        result["ratio_plain_vs_nanogpt"] = plain / peer
        result["ratio_ours_vs_nanogpt_per_round"] = round_ratios
        say(f"ours/nanoGPT tokens/s ratio: {ours / peer:.3f} (per round {min(round_ratios):.3f}-"
            f"{max(round_ratios):.3f}; mHC off: {plain / peer:.3f}); mHC step-time overhead vs plain: "
            f"{100 * (plain / ours - 1):+.1f}%")
    else:
        say(f"no peer (--nanogpt_dir {args.nanogpt_dir}); mHC step-time overhead vs plain: "
            f"{100 * (plain / ours - 1):+.1f}%")
        if args.nanogpt_dir == "auto":
            say(f"nanoGPT peer skipped: no checkout at {os.path.relpath(DEFAULT_PEER)}; add it with "
                f"`{clone_command(DEFAULT_PEER)}` and rerun for the ours/nanoGPT ratio")
    if args.profile_dir:
        os.makedirs(args.profile_dir, exist_ok=True)
        result["profile"] = {}
        for name, m in models.items():
            result["profile"][name] = summary = profile_steps(
                m, optims[name], x, y, device, dtype, args.profile_steps,
                graphs=compile_mode == "graphs" and name != "nanogpt",
                path=os.path.join(args.profile_dir, f"profile_{name}.txt"))
            say(f"profile {name}: {summary['per_step']:.0f} {summary['unit']} per step; top: "
                + ", ".join(f"{t['name']} {t['self_ms']:.2f}ms" for t in summary["top"][:3]))
    if args.out:
        from discover_distill.checkpoint import atomic_write_json
        atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    run(main)
