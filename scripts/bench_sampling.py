#!/usr/bin/env python3
"""Sampling throughput, all measured in the same run on the same prompts:

- the fast engine (`generate`, the default) against the reference loop (`engine="reference"`) on
  TTT's workload: per-task generators, stop strings checked every step, optional per-task LoRA;
  their outputs must be identical, and the script says so;
- the batched KV-cache sampler (the fast engine) against a naive per-task loop that recomputes
  the whole sequence for every token (no cache, one rollout at a time);
- when Hugging Face transformers is installed (the optional `.[bench]` extra), a GPT-2 of the
  same width and depth (MLP widened to the same parameter count) sampling with `generate`.

    python scripts/bench_sampling.py --model configs/model_mhc_tiny.json --tasks 4 --rollouts 8

Reports generated tokens/s and best-of-N throughput in tasks/min, and the ratios. Uses randomly
initialised models and fixed prompt lengths, so it needs no data; every sampler generates exactly
max_new_tokens per rollout (no EOS; the stop strings never occur in the synthetic pieces).
"""
from __future__ import annotations

import argparse
import importlib.util
import time

import torch

from discover_distill.cli import require_file, run
from discover_distill.config import load_model_config
from discover_distill.fileio import atomic_write_json
from discover_distill.lora import LoRAConfig, inject_lora
from discover_distill.model import GPT
from discover_distill.prompts import STOP_STRINGS
from discover_distill.sampling import generate, generate_naive
from discover_distill.training import autocast, resolve_device, resolve_dtype, say


def piece(i: int) -> str:
    """Synthetic text of token i: letters only, so no stop string ever occurs."""
    return chr(ord("a") + i % 26)


def decode(ids: list[int]) -> str:
    return "".join(piece(i) for i in ids)


def hf_gpt2(cfg, device):
    """A randomly initialised transformers GPT-2 shaped like our model, or None (not installed)."""
    if importlib.util.find_spec("transformers") is None:
        return None
    import transformers

    conf = transformers.GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.max_seq_len, n_embd=cfg.d_model,
                                   n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=3 * cfg.d_ff // 2,
                                   bos_token_id=0, eos_token_id=cfg.vocab_size - 1)
    return transformers.GPT2LMHeadModel(conf).to(device).eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="configs/model_mhc_tiny.json", help="model config JSON")
    p.add_argument("--tasks", type=int, default=4, help="tasks (distinct prompts) per measurement")
    p.add_argument("--rollouts", type=int, default=8, help="samples per task")
    p.add_argument("--prompt_len", type=int, default=40, help="prompt tokens")
    p.add_argument("--max_new_tokens", type=int, default=24, help="tokens generated per rollout")
    p.add_argument("--lora_rank", type=int, default=0, help="0: no LoRA; r: one rank-r adapter per task (as TTT)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per sampler, interleaved; the fastest counts")
    p.add_argument("--naive", type=int, default=1, help="1: also time the naive loop (slow), 0: skip it")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto | fp32 | bf16")
    p.add_argument("--out", default="", help="optional JSON file for the results")
    args = p.parse_args()
    require_file(args.model, "--model")
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    torch.manual_seed(0)
    cfg = load_model_config(args.model)
    model = GPT(cfg).to(device).eval()
    adapters = None
    if args.lora_rank:
        inject_lora(model, LoRAConfig(rank=args.lora_rank), n_adapters=args.tasks)
        adapters = list(range(args.tasks))
    V = cfg.vocab_size
    prompts = [torch.randint(4, V, (args.prompt_len,)).tolist() for _ in range(args.tasks)]
    no_eos = -1  # never matches: every rollout runs to max_new_tokens in every sampler
    total = args.tasks * args.rollouts * args.max_new_tokens

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        return time.perf_counter() - t, out

    def engine_run(engine):
        gens = [torch.Generator(device=device).manual_seed(1000 + k) for k in range(args.tasks)]
        return generate(model, prompts, [args.rollouts] * args.tasks, max_new_tokens=args.max_new_tokens,
                        eos_id=no_eos, stop_strings=STOP_STRINGS, decode=decode, generator=gens,
                        adapter_ids=adapters, dtype=dtype, engine=engine,
                        **({"piece_text": piece} if engine == "fast" else {}))

    peer = hf_gpt2(cfg, device)
    ids = torch.tensor(prompts, device=device)

    def hf_run():
        with torch.no_grad(), autocast(device, dtype):
            return peer.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 max_new_tokens=args.max_new_tokens, min_new_tokens=args.max_new_tokens,
                                 num_return_sequences=args.rollouts, pad_token_id=0)

    runs = {"fast": lambda: engine_run("fast"), "reference": lambda: engine_run("reference")}
    if peer is not None:
        runs["hf_gpt2"] = hf_run
    seconds = {name: float("inf") for name in runs}
    outputs = {}
    for name, fn in runs.items():
        outputs[name] = fn()  # warm-up (the fast engine builds its stop tables here)
    for _ in range(args.repeats):
        for name, fn in runs.items():
            sec, outputs[name] = timed(fn)
            seconds[name] = min(seconds[name], sec)
    identical = all(torch.equal(getattr(outputs["fast"], f), getattr(outputs["reference"], f))
                    for f in ("tokens", "mask", "logprobs")) and outputs["fast"].texts == outputs["reference"].texts
    if peer is not None and tuple(outputs["hf_gpt2"].shape) != (args.tasks * args.rollouts,
                                                                args.prompt_len + args.max_new_tokens):
        raise RuntimeError(f"HF generate returned {tuple(outputs['hf_gpt2'].shape)}, not "
                           f"{args.tasks * args.rollouts} rows of {args.prompt_len + args.max_new_tokens} tokens")
    if args.naive:
        g = torch.Generator(device=device).manual_seed(0)
        seconds["naive"], _ = timed(lambda: [generate_naive(model, pr, args.rollouts, max_new_tokens=args.max_new_tokens,
                                                            eos_id=no_eos, generator=g) for pr in prompts])

    labels = {"fast": "fast engine (batched)", "reference": "reference engine", "naive": "naive per task",
              "hf_gpt2": "HF GPT-2 generate"}
    say(f"{'sampler':<22} {'seconds':>8} {'tok/s':>10} {'tasks/min':>10}")
    for name, sec in seconds.items():
        say(f"{labels[name]:<22} {sec:>8.3f} {total / sec:>10.0f} {args.tasks / sec * 60:>10.1f}")
    shape = (f"{args.tasks} tasks x {args.rollouts} rollouts x {args.max_new_tokens} tokens, prompt {args.prompt_len}, "
             f"lora rank {args.lora_rank}, {device}, {str(dtype).replace('torch.', '')}")
    ratios = {"fast_vs_reference": seconds["reference"] / seconds["fast"]}
    say(f"fast/reference engine throughput ratio: {ratios['fast_vs_reference']:.2f}x "
        f"(outputs identical: {'yes' if identical else 'NO'}; {shape})")
    if args.naive:
        ratios["batched_vs_naive"] = seconds["naive"] / seconds["fast"]
        say(f"batched/naive throughput ratio: {ratios['batched_vs_naive']:.1f}x ({shape})")
    if peer is not None:
        ratios["fast_vs_hf_gpt2"] = seconds["hf_gpt2"] / seconds["fast"]
        say(f"fast/HF GPT-2 throughput ratio: {ratios['fast_vs_hf_gpt2']:.2f}x ({shape})")
    else:
        say("HF GPT-2 peer skipped: transformers is not installed (pip install -e '.[bench]')")
    if args.out:
        atomic_write_json(args.out, {
            "samplers": {name: {"seconds": sec, "tokens_per_s": total / sec} for name, sec in seconds.items()},
            "ratios": ratios, "identical": identical, "tokens": total, "args": vars(args),
            "device": str(device), "dtype": str(dtype)})
    return 0 if identical else 1


if __name__ == "__main__":
    run(main)
