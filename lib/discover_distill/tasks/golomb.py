"""Sidon-set / Golomb-ruler construction: k marks in [0, L], avoiding some forbidden marks, with
all pairwise differences distinct. Open-ended: most instances have many solutions. Graded by the
share of distinct differences, scaled down for invalid or missing marks."""
from __future__ import annotations

import itertools
import random

from .base import TaskFamily, difficulty_level, parse_ints

# (k, smallest L, largest L) per difficulty; optimal Golomb lengths are 6, 11, 17 for k = 4, 5, 6
LEVELS = {1: (4, 8, 13), 2: (5, 13, 19), 3: (6, 19, 25)}


def _search(k: int, length: int, forbid: set[int], rng: random.Random, budget: int = 20000) -> list[int] | None:
    """Randomised backtracking for a Sidon set of k marks in [0, length] avoiding `forbid`."""
    candidates = [m for m in range(length + 1) if m not in forbid]
    steps = 0

    def extend(marks: list[int], diffs: set[int], pool: list[int]) -> list[int] | None:
        nonlocal steps
        if len(marks) == k:
            return marks
        for i, m in enumerate(pool):
            steps += 1
            if steps > budget:
                return None
            new = {abs(m - x) for x in marks}
            if len(new) == len(marks) and not new & diffs:
                found = extend(marks + [m], diffs | new, pool[i + 1:])
                if found:
                    return found
        return None

    order = candidates[:]
    rng.shuffle(order)
    return extend([], set(), order)


class Golomb(TaskFamily):
    name = "golomb"

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        k, lo, hi = LEVELS[difficulty_level(difficulty)]
        while True:
            length = rng.randint(lo, hi)
            forbid = sorted(rng.sample(range(1, length), rng.randint(0, 3)))
            spec = {"k": k, "L": length, "forbid": forbid}
            if _search(k, length, set(forbid), random.Random(0)) is not None:
                return spec

    def prompt(self, spec: dict) -> str:
        avoid = " ".join(map(str, spec["forbid"])) or "none"
        return f"golomb: pick {spec['k']} marks from 0 to {spec['L']}, avoid {avoid}, all differences distinct"

    def score(self, spec: dict, answer: str) -> float:
        k, length, forbid = int(spec["k"]), int(spec["L"]), set(spec["forbid"])
        marks = parse_ints(answer)
        if not marks:
            return 0.0
        valid = sorted({m for m in marks if 0 <= m <= length and m not in forbid})
        if len(valid) < 2:
            return 0.0
        diffs = [b - a for a, b in itertools.combinations(valid, 2)]
        distinct = len(set(diffs)) / len(diffs)
        validity = len(valid) / max(k, len(marks))   # out-of-range, forbidden, repeated or extra marks
        return distinct * validity * (1.0 if len(marks) == k else 0.5)

    def solve(self, spec: dict, rng: random.Random) -> str:
        marks = _search(spec["k"], spec["L"], set(spec["forbid"]), rng)
        if marks is None:  # the randomised search ran out of budget: the deterministic one succeeded before
            marks = _search(spec["k"], spec["L"], set(spec["forbid"]), random.Random(0))
        return " ".join(map(str, sorted(marks)))

    def attempt(self, spec: dict, rng: random.Random) -> str:
        marks = [int(x) for x in self.solve(spec, rng).split()]
        for _ in range(rng.randint(1, 2)):
            marks[rng.randrange(len(marks))] = rng.randint(0, spec["L"])
        if rng.random() < 0.15:
            marks.pop(rng.randrange(len(marks)))
        return " ".join(map(str, sorted(marks)))
