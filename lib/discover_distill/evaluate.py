"""Evaluation statistics: validation perplexity, retention deltas, bootstrap CIs."""
from __future__ import annotations

import math
import random
from typing import Sequence

import torch

from .data import eval_batches, eval_token_range
from .training import autocast

# Retention's runbook shape (E2: 50 batches x 4 x 256 tokens from the START of val.bin): what the
# SDFT gate, reading from the end, must leave untouched for the two never to share text.
RETENTION_RUNBOOK_TOKENS = 50 * 4 * 256 + 1


@torch.no_grad()
def perplexity(model: torch.nn.Module, tokens, seq_len: int, batch_size: int, max_batches: int,
               device: torch.device, dtype: torch.dtype = torch.float32, from_end: bool = False) -> dict:
    """Mean next-token loss over the first `max_batches` fixed, non-overlapping validation batches
    (counted from the end of the tokens with `from_end`: the SDFT gate's, disjoint from E2's).

    Returns loss, ppl = exp(loss), token count, the per-batch losses (for bootstrap CIs) and the
    [start, end) token range read.
    The batches are the same on every call, so two models are compared on identical text.
    """
    was_training = model.training
    model.eval()
    losses, n_tokens = [], 0
    for x, y in eval_batches(tokens, seq_len, batch_size, max_batches, from_end):
        x, y = x.to(device), y.to(device)
        with autocast(device, dtype):
            _, loss = model(x, targets=y)
        losses.append(float(loss))
        n_tokens += y.numel()
    if was_training:
        model.train()
    if not losses:
        raise ValueError(f"validation data has fewer than {seq_len + 1} tokens: cannot evaluate perplexity")
    mean = sum(losses) / len(losses)
    return {"loss": mean, "ppl": math.exp(mean), "tokens": n_tokens, "batch_losses": losses,
            "token_range": list(eval_token_range(len(tokens), seq_len, batch_size, max_batches, from_end))}


def bootstrap_ci(values: Sequence[float], stat=lambda v: sum(v) / len(v), n_boot: int = 2000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of `stat` over `values` (resampled with replacement)."""
    values = list(values)
    if not values:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(values)
    boots = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    lo = boots[int(math.floor(alpha / 2 * (n_boot - 1)))]
    hi = boots[int(math.ceil((1 - alpha / 2) * (n_boot - 1)))]
    return (lo, hi)
