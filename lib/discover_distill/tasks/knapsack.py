"""0/1 knapsack packing: choose items (1-based indices) within the capacity; reward = value /
optimal value when feasible (graded, 1.0 only at the DP optimum), 0 when over capacity."""
from __future__ import annotations

import random

from .base import TaskFamily, difficulty_level, parse_ints

LEVELS = {1: 5, 2: 6, 3: 8}  # number of items


def optimum(weights: list[int], values: list[int], cap: int) -> int:
    best = [0] * (cap + 1)
    for w, v in zip(weights, values):
        for c in range(cap, w - 1, -1):
            best[c] = max(best[c], best[c - w] + v)
    return best[cap]


def _subsets(n: int):
    for mask in range(1 << n):
        yield [i for i in range(n) if mask >> i & 1]


class Knapsack(TaskFamily):
    name = "knapsack"

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        n = LEVELS[difficulty_level(difficulty)]
        weights = [rng.randint(1, 9) for _ in range(n)]
        values = [rng.randint(1, 9) for _ in range(n)]
        cap = rng.randint(max(weights), max(max(weights), sum(weights) * 2 // 3))
        return {"weights": weights, "values": values, "cap": cap}

    def prompt(self, spec: dict) -> str:
        items = " ".join(f"{w}/{v}" for w, v in zip(spec["weights"], spec["values"]))
        return f"knapsack: capacity {spec['cap']}, items weight/value {items}, pick item numbers"

    def score(self, spec: dict, answer: str) -> float:
        weights, values, cap = spec["weights"], spec["values"], int(spec["cap"])
        picks = parse_ints(answer)
        if not picks or len(set(picks)) != len(picks) or any(not 1 <= p <= len(weights) for p in picks):
            return 0.0
        if sum(weights[p - 1] for p in picks) > cap:
            return 0.0
        best = optimum(weights, values, cap)
        return sum(values[p - 1] for p in picks) / best if best else 0.0

    def _feasible(self, spec: dict) -> list[tuple[int, list[int]]]:
        w, v, cap = spec["weights"], spec["values"], spec["cap"]
        return [(sum(v[i] for i in s), s) for s in _subsets(len(w)) if s and sum(w[i] for i in s) <= cap]

    def solve(self, spec: dict, rng: random.Random) -> str:
        feasible = self._feasible(spec)
        top = max(val for val, _ in feasible)
        choice = rng.choice([s for val, s in feasible if val == top])
        return " ".join(str(i + 1) for i in choice)

    def attempt(self, spec: dict, rng: random.Random) -> str:
        feasible = self._feasible(spec)
        top = max(val for val, _ in feasible)
        r = rng.random()
        if r < 0.1:  # an over-capacity pick: reward 0
            picks = rng.sample(range(len(spec["weights"])), rng.randint(2, len(spec["weights"])))
            return " ".join(str(i + 1) for i in sorted(picks))
        pool = [s for val, s in feasible if val < top] or [s for _, s in feasible]
        # prefer good-but-not-optimal packings so attempts spread over (0, 1)
        pool.sort(key=lambda s: -sum(spec["values"][i] for i in s))
        choice = pool[min(len(pool) - 1, int(rng.random() ** 2 * len(pool)))]
        return " ".join(str(i + 1) for i in choice)
