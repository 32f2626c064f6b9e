#!/usr/bin/env python3
"""Sampling throughput of the batched KV-cache sampler against a naive per-task loop that
recomputes the whole sequence for every token (no cache, one rollout at a time), same run.

    python scripts/bench_sampling.py --model configs/model_mhc_tiny.json --tasks 4 --rollouts 8

Reports generated tokens/s and best-of-N throughput in tasks/min for both, and their ratio.
Uses a randomly initialised model of the given config and fixed prompt lengths, so it needs no
data; both samplers generate exactly max_new_tokens per rollout (EOS is disabled).
"""
from __future__ import annotations

import argparse
import time

import torch

from discover_distill.cli import require_file, run
from discover_distill.config import load_model_config
from discover_distill.model import GPT
from discover_distill.sampling import generate, generate_naive
from discover_distill.training import resolve_device, resolve_dtype, say


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="configs/model_mhc_tiny.json", help="model config JSON")
    p.add_argument("--tasks", type=int, default=4, help="tasks (distinct prompts) per measurement")
    p.add_argument("--rollouts", type=int, default=8, help="samples per task")
    p.add_argument("--prompt_len", type=int, default=40, help="prompt tokens")
    p.add_argument("--max_new_tokens", type=int, default=24, help="tokens generated per rollout")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto | fp32 | bf16")
    args = p.parse_args()
    require_file(args.model, "--model")
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    torch.manual_seed(0)
    model = GPT(load_model_config(args.model)).to(device).eval()
    V = model.cfg.vocab_size
    prompts = [torch.randint(4, V, (args.prompt_len,)).tolist() for _ in range(args.tasks)]
    no_eos = -1  # never matches: every rollout runs to max_new_tokens in both samplers
    total = args.tasks * args.rollouts * args.max_new_tokens

    def timed(fn):
        fn()  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    g = torch.Generator(device=device).manual_seed(0)
    batched = timed(lambda: generate(model, prompts, [args.rollouts] * args.tasks, max_new_tokens=args.max_new_tokens,
                                     eos_id=no_eos, generator=g, dtype=dtype))
    naive = timed(lambda: [generate_naive(model, pr, args.rollouts, max_new_tokens=args.max_new_tokens,
                                          eos_id=no_eos, generator=g) for pr in prompts])
    say(f"{'sampler':<22} {'seconds':>8} {'tok/s':>10} {'tasks/min':>10}")
    for name, sec in (("batched + KV cache", batched), ("naive per task", naive)):
        say(f"{name:<22} {sec:>8.2f} {total / sec:>10.0f} {args.tasks / sec * 60:>10.1f}")
    say(f"batched/naive throughput ratio: {naive / batched:.1f}x "
        f"({args.tasks} tasks x {args.rollouts} rollouts x {args.max_new_tokens} tokens, prompt {args.prompt_len}, {device})")
    return 0


if __name__ == "__main__":
    run(main)
