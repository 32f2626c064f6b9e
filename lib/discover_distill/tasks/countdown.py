"""Countdown: reach the target with + - * and parentheses, using each given number at most
once. Exact = 1.0; otherwise graded by closeness (at most 0.8); illegal numbers = 0."""
from __future__ import annotations

import random
from collections import Counter

from .arith import evaluate
from .base import TaskFamily, difficulty_level

LEVELS = {1: 3, 2: 4, 3: 5}  # how many numbers are given
MAX_TARGET = 150


def _random_expression(nums: list[int], rng: random.Random) -> tuple[str, int]:
    """Combine a random subset (>= 2) of nums with random operators; returns (text, value)."""
    pool = [(str(n), n) for n in rng.sample(nums, rng.randint(2, len(nums)))]
    while len(pool) > 1:
        a = pool.pop(rng.randrange(len(pool)))
        b = pool.pop(rng.randrange(len(pool)))
        op = rng.choice("+-*")
        if op == "-" and a[1] < b[1]:
            a, b = b, a
        value = a[1] + b[1] if op == "+" else a[1] - b[1] if op == "-" else a[1] * b[1]
        text = f"{a[0]}{op}{b[0]}" if not pool else f"({a[0]}{op}{b[0]})"
        pool.append((text, value))
    return pool[0]


class Countdown(TaskFamily):
    name = "countdown"

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        n = LEVELS[difficulty_level(difficulty)]
        while True:
            nums = sorted(rng.randint(1, 12) for _ in range(n))
            text, value = _random_expression(nums, rng)
            if 10 <= value <= MAX_TARGET and value not in nums:
                return {"nums": nums, "target": value}, text

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        return self.sample(rng, difficulty)[0]

    def prompt(self, spec: dict) -> str:
        return f"countdown: reach {spec['target']} using {' '.join(map(str, spec['nums']))} with + - * ( )"

    def score(self, spec: dict, answer: str) -> float:
        parsed = evaluate(answer)
        if parsed is None:
            return 0.0
        value, used = parsed
        if Counter(used) - Counter(spec["nums"]):  # a number not given, or used too often
            return 0.0
        target = int(spec["target"])
        if value == target:
            return 1.0
        return 0.8 * max(0.0, 1.0 - abs(value - target) / max(target, 10))

    def solve(self, spec: dict, rng: random.Random) -> str:
        for _ in range(20000):
            text, value = _random_expression(spec["nums"], rng)
            if value == spec["target"]:
                return text
        return _exhaustive(spec["nums"], spec["target"])

    def attempt(self, spec: dict, rng: random.Random) -> str:
        best = None
        for _ in range(rng.randint(1, 12)):  # a few tries of random search: near misses, rarely exact
            text, value = _random_expression(spec["nums"], rng)
            if best is None or abs(value - spec["target"]) < abs(best[1] - spec["target"]):
                best = (text, value)
        return best[0]


def _exhaustive(nums: list[int], target: int) -> str:
    """Exact search over all ways to combine the numbers (used when random search is unlucky)."""
    def search(items):
        for text, value in items:
            if value == target:
                return text
        for i in range(len(items)):
            for j in range(len(items)):
                if i == j:
                    continue
                (ta, va), (tb, vb) = items[i], items[j]
                rest = [items[k] for k in range(len(items)) if k not in (i, j)]
                for op, v in (("+", va + vb), ("-", va - vb), ("*", va * vb)):
                    if op in "+*" and i > j:
                        continue
                    found = search(rest + [(f"({ta}{op}{tb})", v)])
                    if found:
                        return found
        return None

    found = search([(str(n), n) for n in nums])
    if found is None:
        raise ValueError(f"countdown instance has no solution: {nums} -> {target}")
    return found[1:-1] if found.startswith("(") and evaluate(found[1:-1]) is not None else found
