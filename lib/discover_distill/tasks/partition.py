"""Number partitioning, 12-16 labelled numbers of about n bits: name one group so that the two
groups' sums are as close as possible.

Numbers of ~n bits put instances near the partitioning phase transition, where a perfect split is
rare and the optimal one usually unique up to swapping the groups. Optimum: exact subset-sum DP
on a bitset (cached in spec["opt"], the smallest difference). Reward: quality of the gap
  log2(1 + excess difference) + 2 * (unknown or repeated letters),
a scale in bits: halving the excess is one step up, however large the numbers.
"""
from __future__ import annotations

import functools
import json
import math
import random

from .base import TaskFamily, difficulty_level, is_subset, labels, parse_labels, quality, split_errors

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


class Partition(TaskFamily):
    name = "partition"

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

    def propose(self, spec: dict, rng: random.Random, best: str) -> str:
        nums, n = tuple(spec["nums"]), len(spec["nums"])
        r = rng.random()
        if r < 0.6:    # an exact group for a sum a log-uniform distance below the best: excess of 2 to 2^16
            s = best_sum_below(nums, max(0, sum(nums) // 2 - int(2 ** rng.uniform(0, 15))))
            group = set(group_with_sum(nums, s)) if s > 0 else {0}
        elif r < 0.8:  # the optimum with one or two numbers moved across
            group = set(parse_labels(best) or [])
            for i in rng.sample(range(n), rng.randint(1, 2)):
                group ^= {i}
        else:          # greedy: largest first onto the lighter side, in a slightly shuffled order
            group, a, b = set(), 0, 0
            for i in sorted(range(n), key=lambda i: -nums[i] * rng.uniform(1, 1.3)):
                if a <= b:
                    group.add(i)
                    a += nums[i]
                else:
                    b += nums[i]
        return labels(sorted(group) or [rng.randrange(n)])

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random group (empty means the other side: all of them)."""
        group = [i for i in range(len(spec["nums"])) if rng.random() < 0.5]
        return labels(group or range(len(spec["nums"])))
