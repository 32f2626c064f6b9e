#!/usr/bin/env python3
"""Sampling throughput, all measured in the same run on the same prompts, each ratio between two
samplers that differ in one thing only:

- engine: the fast engine (`generate`, the default) against the reference loop
  (`engine="reference"`) on TTT's workload (per-task generators, stop strings checked every step,
  optional per-task LoRA); their outputs must be identical, and the script says so;
- batching: the fast engine against a naive per-task loop that recomputes the whole sequence for
  every token (no cache, one rollout at a time);
- architecture: our model with mHC on against the same model with mHC off (mhc_streams = 1), both
  on the fast engine: what mHC's streams cost at sampling time;
- peer: when Hugging Face transformers is installed (the optional `.[bench]` extra), our fast engine
  on the mHC-off model against a GPT-2 of the same width and depth (MLP widened to the same
  parameter count) sampling with `generate`, neither with LoRA: the same architecture class, so
  the ratio is the engine's alone. Without transformers this line is skipped with a note.

    python scripts/bench_sampling.py --model configs/model_mhc_tiny.json --tasks 4 --rollouts 8

Reports generated tokens/s and best-of-N throughput in tasks/min, and the ratios. Uses randomly
initialised models and fixed prompt lengths, so it needs no data; every sampler generates exactly
max_new_tokens per rollout (no EOS; the stop strings never occur in the synthetic pieces).
"""
from __future__ import annotations

import argparse
import dataclasses
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


# sampler -> its label in the table, in the order the table prints them
SAMPLERS = {
    "fast": "ours mHC, fast engine",
    "reference": "ours mHC, reference engine",
    "naive": "ours mHC, naive loop",
    "fast_plain": "ours mHC off, fast engine",
    "fast_plain_bare": "ours mHC off, no LoRA",
    "hf_gpt2": "HF GPT-2 generate",
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="configs/model_mhc_tiny.json", help="model config JSON (mHC on; the mHC-off "
                                                                          "model is the same with mhc_streams = 1)")
    p.add_argument("--tasks", type=int, default=4, help="tasks (distinct prompts) per measurement")
    p.add_argument("--rollouts", type=int, default=8, help="samples per task")
    p.add_argument("--prompt_len", type=int, default=40, help="prompt tokens")
    p.add_argument("--max_new_tokens", type=int, default=24, help="tokens generated per rollout")
    p.add_argument("--lora_rank", type=int, default=0, help="0: no LoRA; r: one rank-r adapter per task (as TTT)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per sampler, interleaved; the fastest counts")
    p.add_argument("--naive", type=int, default=1, help="1: also time the naive loop (slow), 0: skip it")
    p.add_argument("--naive_samples", type=int, default=0,
                   help="rollouts the naive loop times (0: all tasks x rollouts); it samples one rollout at a time, "
                        "so its tokens/s does not depend on how many it runs")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto | fp32 | bf16")
    p.add_argument("--out", default="", help="optional JSON file for the results")
    args = p.parse_args()
    require_file(args.model, "--model")
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    torch.manual_seed(0)
    cfg = load_model_config(args.model)
    V = cfg.vocab_size
    prompts = [torch.randint(4, V, (args.prompt_len,)).tolist() for _ in range(args.tasks)]
    no_eos = -1  # never matches: every rollout runs to max_new_tokens in every sampler
    total = args.tasks * args.rollouts * args.max_new_tokens
    peer = hf_gpt2(cfg, device)

    def build(mhc: bool, lora: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        m = GPT(cfg if mhc else dataclasses.replace(cfg, mhc_streams=1)).to(device).eval()
        if lora:
            inject_lora(m, LoRAConfig(rank=args.lora_rank), n_adapters=args.tasks)
        return m

    lora = args.lora_rank > 0
    model, plain = build(mhc=True, lora=lora), build(mhc=False, lora=lora)
    # HF's generate has no per-task adapters: its peer is the mHC-off model without LoRA
    plain_bare = build(mhc=False, lora=False) if peer is not None and lora else plain

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        return time.perf_counter() - t, out

    def engine_run(m, engine, with_adapters):
        gens = [torch.Generator(device=device).manual_seed(1000 + k) for k in range(args.tasks)]
        return generate(m, prompts, [args.rollouts] * args.tasks, max_new_tokens=args.max_new_tokens,
                        eos_id=no_eos, stop_strings=STOP_STRINGS, decode=decode, generator=gens,
                        adapter_ids=list(range(args.tasks)) if with_adapters else None, dtype=dtype, engine=engine,
                        **({"piece_text": piece} if engine == "fast" else {}))

    ids = torch.tensor(prompts, device=device)

    def hf_run():
        with torch.no_grad(), autocast(device, dtype):
            return peer.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 max_new_tokens=args.max_new_tokens, min_new_tokens=args.max_new_tokens,
                                 num_return_sequences=args.rollouts, pad_token_id=0)

    runs = {"fast": lambda: engine_run(model, "fast", lora), "reference": lambda: engine_run(model, "reference", lora),
            "fast_plain": lambda: engine_run(plain, "fast", lora)}
    if peer is not None:
        if plain_bare is not plain:
            runs["fast_plain_bare"] = lambda: engine_run(plain_bare, "fast", False)
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
    tokens = {name: total for name in seconds}
    if args.naive:
        g = torch.Generator(device=device).manual_seed(0)
        n = min(args.naive_samples or args.tasks * args.rollouts, args.tasks * args.rollouts)
        rows = [prompts[k // args.rollouts] for k in range(n)]  # task by task, as the full loop would go
        seconds["naive"], _ = timed(lambda: [generate_naive(model, pr, 1, max_new_tokens=args.max_new_tokens,
                                                            eos_id=no_eos, generator=g) for pr in rows])
        tokens["naive"] = n * args.max_new_tokens

    say(f"{'sampler':<26} {'seconds':>8} {'tok/s':>10} {'tasks/min':>10}")
    for name in [n for n in SAMPLERS if n in seconds]:
        tok_s = tokens[name] / seconds[name]
        say(f"{SAMPLERS[name]:<26} {seconds[name]:>8.3f} {tok_s:>10.0f} "
            f"{tok_s / (args.rollouts * args.max_new_tokens) * 60:>10.1f}")
    shape = (f"{args.tasks} tasks x {args.rollouts} rollouts x {args.max_new_tokens} tokens, prompt {args.prompt_len}, "
             f"lora rank {args.lora_rank}, {device}, {str(dtype).replace('torch.', '')}")
    say(f"shape: {shape}; throughput ratios (> 1: the first is faster):")
    # (key, numerator, denominator, what the two differ in)
    pairs = [("fast_vs_reference", "fast", "reference", "engine: fast / reference engine, mHC model "
              f"(outputs identical: {'yes' if identical else 'NO'})"),
             ("batched_vs_naive", "fast", "naive", "batching: fast engine / naive uncached per-task loop, mHC model"),
             ("mhc_on_vs_off", "fast", "fast_plain", "architecture: mHC on / mHC off, both on our fast engine"),
             ("engine_vs_hf_gpt2", "fast_plain_bare" if "fast_plain_bare" in seconds else "fast_plain", "hf_gpt2",
              "engine vs peer: ours / HF GPT-2 generate, both mHC off, same width, depth and parameters, no LoRA")]
    ratios = {}
    for key, a, b, what in pairs:
        if a in seconds and b in seconds:
            ratios[key] = (tokens[a] / seconds[a]) / (tokens[b] / seconds[b])
            say(f"  {what}: {ratios[key]:.2f}x")
    if peer is None:
        say("  engine vs peer: skipped, transformers is not installed (pip install -e '.[bench]')")
    if args.out:
        atomic_write_json(args.out, {
            "samplers": {name: {"seconds": sec, "tokens": tokens[name], "tokens_per_s": tokens[name] / sec,
                                "label": SAMPLERS[name]} for name, sec in seconds.items()},
            "ratios": ratios, "identical": identical, "tokens": total, "args": vars(args),
            "device": str(device), "dtype": str(dtype)})
    return 0 if identical else 1


if __name__ == "__main__":
    run(main)
