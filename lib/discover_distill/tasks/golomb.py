"""Shortest Golomb ruler with forbidden differences: choose k marks in 0..L with all pairwise
differences distinct and none in a forbidden set F, minimising the span (largest - smallest).

F (1-4 differences from 1..16) makes a large instance space out of the classic problem (optimal
spans without F: 11, 17, 25 for k = 5, 6, 7). Optimum: exact, from the complete list of k-mark
Golomb rulers of span <= L (enumerated once per process, sorted by span): the first one whose
differences avoid F (cached in spec["opt"]). Reward: quality of the gap
  max(0, span - opt) / opt + 0.15 * (repeated or forbidden differences + marks out of range,
  repeated, missing or extra),
so a valid but long ruler and a short one with a single clash both score partially.
Policy: from 0, repeatedly the smallest admissible next mark (every difference to the marks so far
new and not forbidden), written in ascending order (the verifier reads a set).
"""
from __future__ import annotations

import functools
import itertools
import random

from .base import TaskFamily, difficulty_level, explore, parse_ints, quality

LEVELS = {1: (5, 16), 2: (6, 24), 3: (7, 32)}  # (marks k, largest allowed mark L)
MAX_FORBID = 16
TAU, PEN = 0.15, 0.15  # a span 15% over the optimum, or one clash, scores exp(-1)


@functools.lru_cache(maxsize=None)
def rulers(k: int, length: int) -> tuple[tuple[int, tuple[int, ...], int], ...]:
    """Every Golomb ruler with k marks, first mark 0 and span <= length, as (span, marks, bitmask
    of its differences), sorted by span. Backtracking; ~0.1 s for k = 7, length = 32."""
    out = []

    def extend(marks: list[int], dmask: int) -> None:
        if len(marks) == k:
            out.append((marks[-1], tuple(marks), dmask))
            return
        for m in range(marks[-1] + 1, length - (k - len(marks) - 1) + 1):
            new = 0
            for x in marks:
                bit = 1 << (m - x)
                if (dmask | new) & bit:
                    break
                new |= bit
            else:
                extend(marks + [m], dmask | new)

    extend([0], 0)
    return tuple(sorted(out))


@functools.lru_cache(maxsize=256)  # attempts draw from it many times per instance
def compatible_rulers(k: int, length: int, forbid: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """All rulers in 0..length (sorted by span) whose differences avoid the forbidden ones."""
    fmask = sum(1 << d for d in set(forbid))
    return tuple(marks for _, marks, dmask in rulers(k, length) if not dmask & fmask)


def optimal_rulers(k: int, length: int, forbid: list[int]) -> list[tuple[int, ...]]:
    """All rulers of the smallest span that avoid the forbidden differences ([] if none fits)."""
    fmask = sum(1 << d for d in set(forbid))
    best = []
    for span, marks, dmask in rulers(k, length):
        if best and span > best[0][-1]:
            break
        if not dmask & fmask:
            best.append(marks)
    return best


def admissible_marks(marks: list[int], length: int, forbid) -> list[int]:
    """Marks above the largest one, up to `length`, whose differences to every mark are new and allowed."""
    diffs = {abs(b - a) for a, b in itertools.combinations(marks, 2)} | set(forbid)
    return [m for m in range(max(marks) + 1, length + 1) if not diffs & {m - x for x in marks}]


def greedy_marks(k: int, length: int, forbid, rng: random.Random, noise: float) -> tuple[list[int], list[bool]]:
    """(the policy's marks in construction order, whether each was admissible): from 0, the smallest
    admissible next mark (one of the three smallest with probability noise); when none is left,
    the smallest unused mark above the largest (else anywhere in 0..L: a clash the verifier
    charges), so the ruler always has k marks."""
    marks, admissible = [0], [True]
    while len(marks) < k:
        options = admissible_marks(marks, length, forbid)
        if options:
            marks.append(rng.choice(options[:3]) if explore(rng, noise) else options[0])
        else:
            unused = [m for m in range(length + 1) if m not in marks]
            marks.append(next((m for m in unused if m > max(marks)), unused[0]))
        admissible.append(bool(options))
    return marks, admissible


class Golomb(TaskFamily):
    name = "golomb"
    order_free = True

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        k, length = LEVELS[difficulty_level(difficulty)]
        while True:
            forbid = sorted(rng.sample(range(1, MAX_FORBID + 1), rng.randint(1, 4)))
            best = optimal_rulers(k, length, forbid)
            if best:  # otherwise no ruler fits in 0..L: draw again
                spec = {"k": k, "L": length, "forbid": forbid, "opt": best[0][-1]}
                return spec, " ".join(map(str, rng.choice(best)))

    def prompt(self, spec: dict) -> str:
        forbid = " ".join(map(str, spec["forbid"]))
        return (f"golomb: choose {spec['k']} marks from 0 to {spec['L']}, all pairwise differences distinct "
                f"and none equal to {forbid}, minimise largest minus smallest")

    def canonical(self, spec: dict) -> str:
        return f"{spec['k']}|{spec['L']}|{','.join(map(str, sorted(set(spec['forbid']))))}"

    def opt_value(self, spec: dict) -> int:
        return spec["opt"] if "opt" in spec else optimal_rulers(spec["k"], spec["L"], spec["forbid"])[0][-1]

    def score(self, spec: dict, answer: str) -> float:
        k, length, forbid = int(spec["k"]), int(spec["L"]), set(spec["forbid"])
        marks = parse_ints(answer)
        if not marks:
            return 0.0
        valid = sorted({m for m in marks if 0 <= m <= length})
        if len(valid) < 2:
            return 0.0
        errors = len(marks) - len(valid) + abs(len(valid) - k)  # out of range / repeated; missing / extra
        diffs = [b - a for a, b in itertools.combinations(valid, 2)]
        clashes = len(diffs) - len(set(diffs)) + len(set(diffs) & forbid)
        opt = self.opt_value(spec)
        return quality(max(0, valid[-1] - valid[0] - opt) / opt + PEN * (clashes + errors), TAU)

    def form_ok(self, spec: dict, answer: str) -> bool:
        """k distinct integer marks within 0..L (a repeated or forbidden difference is quality)."""
        marks = parse_ints(answer)
        return (marks is not None and len(marks) == int(spec["k"]) and len(set(marks)) == len(marks)
                and all(0 <= m <= int(spec["L"]) for m in marks))

    def solve(self, spec: dict, rng: random.Random) -> str:
        return " ".join(map(str, rng.choice(optimal_rulers(spec["k"], spec["L"], spec["forbid"]))))

    def heuristic(self, spec: dict, rng: random.Random, noise: float = 0.0) -> str:
        return " ".join(map(str, sorted(greedy_marks(int(spec["k"]), int(spec["L"]), spec["forbid"], rng, noise)[0])))

    def policy_step(self, spec: dict, rng: random.Random) -> tuple[str, str]:
        marks, admissible = greedy_marks(int(spec["k"]), int(spec["L"]), spec["forbid"], rng, 0.0)
        # a step up to the first one that found no admissible mark (its answer: none)
        k = rng.randrange(1, admissible.index(False) + 1 if False in admissible else len(marks))
        after = " ".join(map(str, marks[:k]))
        return f"next admissible mark after {after}?", str(marks[k]) if admissible[k] else "none"

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """k distinct marks drawn uniformly from 0..L."""
        return " ".join(map(str, sorted(rng.sample(range(spec["L"] + 1), spec["k"]))))
