"""Number partitioning, 12-16 labelled numbers of about n bits: name one group so that the two
groups' sums are as close as possible.

Numbers of ~n bits put instances near the partitioning phase transition, where a perfect split is
rare and the optimal one usually unique up to swapping the groups. Optimum: exact subset-sum DP
on a bitset (cached in spec["opt"], the smallest difference). Reward: quality of the gap
  log2(1 + excess difference) + 2 * (unknown or repeated letters),
a scale in bits: halving the excess is one step up, however large the numbers.
Policy: largest number first, each onto the lighter group (ties: the first); the answer names the
group of the largest number, its letters in that order (the verifier reads a set).
"""
from __future__ import annotations

import functools
import json
import math
import random

from .base import (LABELS, TaskFamily, difficulty_level, explore, is_subset, labels, parse_labels, quality,
                   split_errors)

LEVELS = {1: (12, 4096), 2: (15, 32768), 3: (16, 65536)}  # (numbers, exclusive upper bound)
TAU = 4.0      # in bits: an excess of 15 scores exp(-1)
ERR = 2.0


@functools.lru_cache(maxsize=256)  # the corpus solves each instance several times (solution, attempts)
def reachable(nums: tuple[int, ...]) -> tuple[int, ...]:
    """Subset-sum DP on bitsets: element i has bit s set iff some subset of nums[:i] sums to s."""
    reach = [1]
    for a in nums:
        reach.append(reach[-1] | reach[-1] << a)
    return tuple(reach)


def group_with_sum(nums: tuple[int, ...], s: int) -> list[int]:
    """0-based items of a subset summing to s (s must be reachable): walk the DP back, taking
    item i-1 whenever the first i-1 items cannot make s without it."""
    reach, group = reachable(nums), []
    for i in range(len(nums), 0, -1):
        if not reach[i - 1] >> s & 1:
            group.append(i - 1)
            s -= nums[i - 1]
    return sorted(group)


def best_sum_below(nums: tuple[int, ...], limit: int) -> int:
    """The largest subset sum <= limit."""
    return (reachable(nums)[-1] & ((1 << (limit + 1)) - 1)).bit_length() - 1


def optimum(nums: tuple[int, ...]) -> tuple[int, list[int]]:
    """(smallest difference between the two sums, one group reaching it)."""
    s = best_sum_below(nums, sum(nums) // 2)
    return sum(nums) - 2 * s, group_with_sum(nums, s)


def greedy_groups(nums: list[int], rng: random.Random, noise: float) -> tuple[list[int], list[int], list[int]]:
    """(first group, second group, placement order): numbers largest first (ties: the first
    letter), each onto the lighter group, the first on a tie; a random group with probability noise."""
    order = sorted(range(len(nums)), key=lambda i: (-nums[i], i))
    first, second, a, b = [], [], 0, 0
    for i in order:
        to_first = rng.random() < 0.5 if explore(rng, noise) else a <= b
        if to_first:
            first.append(i)
            a += nums[i]
        else:
            second.append(i)
            b += nums[i]
    return first, second, order


class Partition(TaskFamily):
    name = "partition"
    order_free = True

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        n, hi = LEVELS[difficulty_level(difficulty)]
        nums = [rng.randrange(hi // 8, hi) for _ in range(n)]
        opt, group = optimum(tuple(nums))
        return {"nums": nums, "opt": opt}, labels(group)

    def prompt(self, spec: dict) -> str:
        items = " ".join(f"{labels([i])}{a}" for i, a in enumerate(spec["nums"]))
        return f"partition: split {items} into two groups with sums as equal as possible, name one group"

    def canonical(self, spec: dict) -> str:
        return json.dumps(sorted(spec["nums"]), separators=(",", ":"))

    def opt_value(self, spec: dict) -> int:
        return spec["opt"] if "opt" in spec else optimum(tuple(spec["nums"]))[0]

    def score(self, spec: dict, answer: str) -> float:
        nums = spec["nums"]
        picks = parse_labels(answer)
        if picks is None:
            return 0.0
        group, errors = split_errors(picks, len(nums))
        diff = abs(sum(nums) - 2 * sum(nums[i] for i in group))
        excess = max(0, diff - self.opt_value(spec))
        return quality(math.log2(1 + excess) + ERR * errors, TAU)

    def form_ok(self, spec: dict, answer: str) -> bool:
        """One group: distinct known letters (all of them is a poor split, not a malformed one)."""
        return is_subset(parse_labels(answer), len(spec["nums"]))

    def solve(self, spec: dict, rng: random.Random) -> str:
        group = optimum(tuple(spec["nums"]))[1]
        if rng.random() < 0.5:   # either side of the split is an answer
            group = [i for i in range(len(spec["nums"])) if i not in group]
        return labels(group)

    def heuristic(self, spec: dict, rng: random.Random, noise: float = 0.0) -> str:
        first, _, order = greedy_groups(spec["nums"], rng, noise)
        return labels(first or order)   # an empty group: name the other one, all of them

    def policy_step(self, spec: dict, rng: random.Random) -> tuple[str, str]:
        """Either the largest number not yet placed, or which of two groups is lighter, at a random
        point of the policy's placement."""
        nums = spec["nums"]
        first, second, order = greedy_groups(nums, rng, 0.0)
        k = rng.randrange(1, len(nums))
        placed = order[:k]
        if rng.random() < 0.5:
            return f"largest number not in {labels(placed)}?", LABELS[order[k]]
        a, b = [i for i in first if i in placed], [i for i in second if i in placed]
        light = a if sum(nums[i] for i in a) <= sum(nums[i] for i in b) else b
        return f"lighter group, {labels(a) or 'none'} or {labels(b) or 'none'}?", labels(light) or "none"

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random group (empty means the other side: all of them)."""
        group = [i for i in range(len(spec["nums"])) if rng.random() < 0.5]
        return labels(group or range(len(spec["nums"])))
