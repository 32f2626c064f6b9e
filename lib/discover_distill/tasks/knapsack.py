"""0/1 knapsack, 12-16 labelled items: pick letters within the capacity, maximise total value.

Optimum: exact DP over capacities (cached in spec["opt"]). Reward: quality of the gap
  shortfall / opt + 2 * overweight / cap + 0.25 * (unknown or repeated letters),
so a feasible packing scores by its value, an over-capacity one scores lower the further over it
is (dropping an item is a step up, not a cliff), and only the optimal value is solved.
Random search: 2^n subsets, of which usually one or two are optimal.
"""
from __future__ import annotations

import functools
import json
import random

from .base import TaskFamily, difficulty_level, is_subset, labels, parse_labels, quality, split_errors

LEVELS = {1: 12, 2: 14, 3: 16}  # number of items
TAU = 0.06                       # a packing 6% short of the optimum scores exp(-1)
OVER, ERR = 2.0, 0.25


@functools.lru_cache(maxsize=256)  # the corpus solves each instance several times (solution, attempts)
def optimum(weights: tuple[int, ...], values: tuple[int, ...], cap: int) -> tuple[int, tuple[int, ...]]:
    """(optimal value, one optimal set of 0-based items) by DP over capacities 0..cap."""
    table = [[0] * (cap + 1)]
    for w, v in zip(weights, values):
        prev = table[-1]
        table.append([max(prev[c], prev[c - w] + v) if c >= w else prev[c] for c in range(cap + 1)])
    picks, c = [], cap
    for i in range(len(weights), 0, -1):
        if table[i][c] != table[i - 1][c]:
            picks.append(i - 1)
            c -= weights[i - 1]
    return table[-1][cap], tuple(sorted(picks))


class Knapsack(TaskFamily):
    name = "knapsack"

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        n = LEVELS[difficulty_level(difficulty)]
        while True:
            weights = [rng.randint(1, 9) for _ in range(n)]
            values = [rng.randint(10, 99) for _ in range(n)]
            cap = round(sum(weights) * rng.uniform(0.35, 0.6))
            opt, picks = optimum(tuple(weights), tuple(values), cap)
            if opt:
                return {"weights": weights, "values": values, "cap": cap, "opt": opt}, labels(picks)

    def prompt(self, spec: dict) -> str:
        items = " ".join(f"{labels([i])}{w}/{v}" for i, (w, v) in enumerate(zip(spec["weights"], spec["values"])))
        return f"knapsack: capacity {spec['cap']}, weight/value {items}, pick letters for max total value"

    def canonical(self, spec: dict) -> str:
        return json.dumps([spec["cap"], sorted(zip(spec["weights"], spec["values"]))], separators=(",", ":"))

    def opt_value(self, spec: dict) -> int:
        return spec["opt"] if "opt" in spec else optimum(tuple(spec["weights"]), tuple(spec["values"]), spec["cap"])[0]

    def score(self, spec: dict, answer: str) -> float:
        weights, values, cap = spec["weights"], spec["values"], int(spec["cap"])
        picks = parse_labels(answer)
        if picks is None:
            return 0.0
        chosen, errors = split_errors(picks, len(weights))
        opt = self.opt_value(spec)
        value, weight = sum(values[i] for i in chosen), sum(weights[i] for i in chosen)
        gap = max(0, opt - value) / opt + OVER * max(0, weight - cap) / cap + ERR * errors
        return quality(gap, TAU)

    def form_ok(self, spec: dict, answer: str) -> bool:
        """Distinct known letters (over capacity is a matter of quality, not of form)."""
        return is_subset(parse_labels(answer), len(spec["weights"]))

    def solve(self, spec: dict, rng: random.Random) -> str:
        return labels(optimum(tuple(spec["weights"]), tuple(spec["values"]), int(spec["cap"]))[1])

    def propose(self, spec: dict, rng: random.Random, best: str) -> str:
        weights, values, cap, n = spec["weights"], spec["values"], spec["cap"], len(spec["weights"])
        r = rng.random()
        if r < 0.5:  # the optimum with one to three items flipped: near misses, some over capacity
            chosen = set(parse_labels(best) or [])
            for i in rng.sample(range(n), rng.randint(1, 3)):
                chosen ^= {i}
            return labels(sorted(chosen))
        # greedy fill in a noisy value/weight order (decent) or in a random order (poor)
        if r < 0.75:
            order = sorted(range(n), key=lambda i: -values[i] / weights[i] * rng.uniform(1, 1.5))
        else:
            order = rng.sample(range(n), n)
        chosen, weight = [], 0
        for i in order:
            if weight + weights[i] <= cap:
                chosen.append(i)
                weight += weights[i]
        return labels(sorted(chosen))

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random non-empty subset of the items (an empty answer is malformed)."""
        while True:
            picks = [i for i in range(len(spec["weights"])) if rng.random() < 0.5]
            if picks:
                return labels(picks)
