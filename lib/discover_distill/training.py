"""Pieces every training loop shares: device and dtype choice, autocast, the LR schedule,
throughput/MFU accounting and console output that survives a closed pipe."""
from __future__ import annotations

import contextlib
import math

import torch

from .cli import UserError, say  # noqa: F401 (say re-exported for the training scripts)

# Dense bf16 peak FLOP/s (no sparsity), used for MFU. Matched by substring of the device name.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12,
                   "4090": 165e12, "3090": 71e12}


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """`auto` = the local GPU when there is one, else CPU. `cuda` without a GPU is a user error."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is visible on this machine; use --device cpu")
        return torch.device(f"cuda:{local_rank}" if spec == "cuda" else spec)
    if spec != "cpu":
        raise UserError(f"--device: unknown device {spec!r} (auto, cpu, cuda)")
    return torch.device("cpu")


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """`auto` = bf16 autocast on GPUs that support it, fp32 elsewhere."""
    if spec == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if spec not in table:
        raise UserError(f"--dtype: unknown dtype {spec!r} (auto, fp32, bf16, fp16)")
    return table[spec]


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


COMPILE_MODES = ("auto", "0", "1", "blocks", "graphs")


def resolve_compile(spec: str, device: torch.device, world_size: int) -> str:
    """--compile -> "none", "blocks" (torch.compile per transformer block) or "graphs" (the whole
    model compiled with CUDA graphs, mode="reduce-overhead").

    auto = graphs on one GPU, blocks on several, none on a CPU; 1 = the same but blocks on a CPU.
    CUDA graphs remove the per-kernel launch cost that dominates small micro-batches (the
    runbook's 4 x 256 tokens on an H100); they are not combined with DDP, whose gradient hooks
    run between the graph's kernels.
    """
    if spec not in COMPILE_MODES:
        raise UserError(f"--compile: unknown mode {spec!r} ({', '.join(COMPILE_MODES)})")
    if spec in ("auto", "1"):
        if device.type == "cuda":
            return "graphs" if world_size == 1 else "blocks"
        return "blocks" if spec == "1" else "none"
    if spec == "graphs" and world_size > 1:
        raise UserError("--compile graphs runs on one process only; use --compile blocks under torchrun")
    return {"0": "none"}.get(spec, spec)


def compile_for_training(model, mode: str):
    """The module the training loop calls, compiled per `resolve_compile`'s mode. For "graphs"
    every parameter gets a zero gradient now, and the loop must zero gradients in place
    (zero_grad(set_to_none=False)) and call torch.compiler.cudagraph_mark_step_begin() before
    each forward: the graph's gradient outputs live in buffers the next replay overwrites, so
    they are added into gradients that already exist rather than adopted as them."""
    if mode == "none":
        return model
    if mode == "blocks":
        return model.compile_blocks()
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    return torch.compile(model, mode="reduce-overhead")


def cosine_lr(step: int, *, lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warmup to `lr` (step 0 already gets lr/warmup, never 0), then cosine to `min_lr`."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in name:
            return flops
    return None


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def format_rate(tokens_per_s: float) -> str:
    """48.2k tok/s, 1.25M tok/s, 37 tok/s."""
    if tokens_per_s >= 1e6:
        return f"{tokens_per_s / 1e6:.2f}M tok/s"
    if tokens_per_s >= 1e3:
        return f"{tokens_per_s / 1e3:.1f}k tok/s"
    return f"{tokens_per_s:.0f} tok/s"
