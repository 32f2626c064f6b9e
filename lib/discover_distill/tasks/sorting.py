"""Sort a list of integers ascending. A skill that transfers to unseen lists. Graded: an answer
that is a permutation of the input scores 1 - inversions / max inversions; other answers get at
most 0.5, by how much of the multiset they keep."""
from __future__ import annotations

import random
from collections import Counter

from .base import TaskFamily, difficulty_level, parse_ints

LEVELS = {1: 4, 2: 6, 3: 8}


def inversions(xs: list[int]) -> int:
    return sum(1 for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[i] > xs[j])


class Sorting(TaskFamily):
    name = "sort"

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        return {"nums": [rng.randint(0, 99) for _ in range(LEVELS[difficulty_level(difficulty)])]}

    def prompt(self, spec: dict) -> str:
        return f"sort ascending: {' '.join(map(str, spec['nums']))}"

    def score(self, spec: dict, answer: str) -> float:
        nums = list(spec["nums"])
        got = parse_ints(answer)
        if not got:
            return 0.0
        if Counter(got) != Counter(nums):
            overlap = sum((Counter(got) & Counter(nums)).values())
            return 0.5 * overlap / max(len(nums), len(got))
        worst = len(nums) * (len(nums) - 1) // 2
        return 1.0 - inversions(got) / worst if worst else 1.0

    def solve(self, spec: dict, rng: random.Random) -> str:
        return " ".join(map(str, sorted(spec["nums"])))

    def attempt(self, spec: dict, rng: random.Random) -> str:
        xs = sorted(spec["nums"])
        r = rng.random()
        if r < 0.6:  # a few wrong swaps
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(xs) - 1)
                j = min(len(xs) - 1, i + rng.randint(1, 2))
                xs[i], xs[j] = xs[j], xs[i]
        elif r < 0.85:  # dropped or altered an element
            i = rng.randrange(len(xs))
            if rng.random() < 0.5:
                xs.pop(i)
            else:
                xs[i] = rng.randint(0, 99)
        else:  # the input order, unsorted
            xs = list(spec["nums"])
        return " ".join(map(str, xs))
