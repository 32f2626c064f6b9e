"""Paired comparisons between two suite runs on the same tasks (bootstrap over tasks)."""
from __future__ import annotations

import random


def paired_bootstrap(a: list[float], b: list[float], n_boot: int = 4000, seed: int = 0) -> dict:
    """Mean of b - a over paired tasks with a 95% percentile bootstrap CI and a two-sided p-value
    (share of resampled means on the other side of 0, doubled)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two equally long, non-empty lists")
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    rng = random.Random(seed)
    boots = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    lo, hi = boots[int(0.025 * (n_boot - 1))], boots[int(0.975 * (n_boot - 1)) + 1]
    below = sum(x <= 0 for x in boots) / n_boot
    above = sum(x >= 0 for x in boots) / n_boot
    return {"n": n, "mean_diff": mean, "ci95": [lo, hi], "p_two_sided": min(1.0, 2 * min(below, above))}
