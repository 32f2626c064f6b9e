"""0/1 knapsack, 12-16 labelled items: pick letters within the capacity, maximise total value.

Optimum: exact DP over capacities (cached in spec["opt"]). Reward: quality of the gap
  shortfall / opt + 2 * overweight / cap + 0.25 * (unknown or repeated letters),
so a feasible packing scores by its value, an over-capacity one scores lower the further over it
is (dropping an item is a step up, not a cliff), and only the optimal value is solved.
Random search: 2^n subsets, of which usually one or two are optimal.
Policy: greedy by value per weight: repeatedly the fitting item of highest value/weight, written
in that order (the verifier reads a set, so the order is free).
"""
from __future__ import annotations

import functools
import json
import random

from .base import (LABELS, TaskFamily, difficulty_level, explore, is_subset, labels, parse_labels, quality,
                   split_errors)

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


def best_ratio(weights: list[int], values: list[int], items: list[int]) -> int:
    """The item of highest value/weight (ties: the first letter). Equal fractions give equal
    correctly rounded doubles, so ties are exact."""
    return max(items, key=lambda i: (values[i] / weights[i], -i))


class Knapsack(TaskFamily):
    name = "knapsack"
    order_free = True

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

    def heuristic(self, spec: dict, rng: random.Random, noise: float = 0.0) -> str:
        weights, values, room = spec["weights"], spec["values"], int(spec["cap"])
        left, picks = list(range(len(weights))), []
        while fits := [i for i in left if weights[i] <= room]:
            i = rng.choice(fits) if explore(rng, noise) else best_ratio(weights, values, fits)
            picks.append(i)
            left.remove(i)
            room -= weights[i]
        return labels(picks)

    def policy_step(self, spec: dict, rng: random.Random) -> tuple[str, str]:
        greedy = parse_labels(self.heuristic(spec, rng))
        k = rng.randrange(len(greedy))
        room = int(spec["cap"]) - sum(spec["weights"][i] for i in greedy[:k])
        return f"taken {labels(greedy[:k]) or 'none'}, room {room}: best value per weight that fits?", LABELS[greedy[k]]

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random non-empty subset of the items (an empty answer is malformed)."""
        while True:
            picks = [i for i in range(len(spec["weights"])) if rng.random() < 0.5]
            if picks:
                return labels(picks)
