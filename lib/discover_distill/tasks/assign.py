"""Assignment: an n x n matrix of digit costs 0-9 (7-9 rows); give every row a distinct column
letter (a = first column), in row order, minimising the total cost.

Optimum: exact DP over the set of used columns (2^n * n steps; cached in spec["opt"]). Reward:
quality of the gap
  (cost - opt) / n + 0.5 * (letters unknown, repeated, missing or extra),
an absolute scale (opt can be 0): each unit of cost above the optimum per row costs the same.
A row without a valid letter costs 9. Random search: n! assignments (362,880 at n = 9).
Policy: row by row, the cheapest column not yet used (ties: the first letter).
"""
from __future__ import annotations

import functools
import json
import random

from .base import LABELS, TaskFamily, difficulty_level, explore, is_permutation, labels, parse_labels, quality

LEVELS = {1: 7, 2: 8, 3: 9}
TAU, PEN = 0.5, 0.5    # half a unit of cost per row over the optimum scores exp(-1)
MISSING_COST = 9


@functools.lru_cache(maxsize=256)  # the corpus solves each instance several times (solution, attempts)
def optimum(costs: tuple[str, ...]) -> tuple[int, tuple[int, ...]]:
    """(cheapest total, its column per row): best[mask] = cheapest way to give rows
    0..popcount(mask)-1 the columns in mask."""
    n = len(costs)
    c = [[int(x) for x in row] for row in costs]
    best, choice = [0] + [None] * ((1 << n) - 1), [0] * (1 << n)
    for mask in range(1 << n):
        row = bin(mask).count("1")
        if row == n:
            continue
        for col in range(n):
            if not mask >> col & 1:
                new, val = mask | 1 << col, best[mask] + c[row][col]
                if best[new] is None or val < best[new]:
                    best[new], choice[new] = val, col
    cols, mask = [], (1 << n) - 1
    while mask:
        cols.append(choice[mask])
        mask &= ~(1 << choice[mask])
    return best[-1], tuple(cols[::-1])


class Assign(TaskFamily):
    name = "assign"
    cell_formats = ("plain", "labelled")

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        n = LEVELS[difficulty_level(difficulty)]
        costs = ["".join(str(rng.randint(0, 9)) for _ in range(n)) for _ in range(n)]
        opt, cols = optimum(tuple(costs))
        return {"costs": costs, "opt": opt}, labels(cols)

    def prompt(self, spec: dict) -> str:
        """Plain: each row a digit string ("3982597 9190748"). Labelled (spec["cells"]): every cost
        after its column letter, rows separated by ';' ("a3 b9 c8; a9 b1 c9"), so the policy's step
        (a row's cheapest free column) is a lookup by label, as in knapsack, not by a digit's place in
        a string; about 7 tokens more per row (a 7 x 7 prompt grows from ~80 to ~125 tokens). Opt-in:
        on two seeds of the mini's recipe it did not make assign read (README, "Levers measured")."""
        if spec.get("cells", "plain") == "labelled":
            rows = "; ".join(" ".join(f"{LABELS[c]}{d}" for c, d in enumerate(row)) for row in spec["costs"])
        else:
            rows = " ".join(spec["costs"])
        return f"assign: cost rows {rows}, give each row a different column letter, minimise the total cost"

    def canonical(self, spec: dict) -> str:
        """A permutation invariant: equal for instances equal up to permuting rows, permuting columns
        and transposing (all the split needs; unequal instances may share it, harmlessly)."""
        rows = sorted("".join(sorted(r)) for r in spec["costs"])
        cols = sorted("".join(sorted(c)) for c in zip(*spec["costs"]))
        return json.dumps(sorted([rows, cols]), separators=(",", ":"))

    def opt_value(self, spec: dict) -> int:
        return spec["opt"] if "opt" in spec else optimum(tuple(spec["costs"]))[0]

    def score(self, spec: dict, answer: str) -> float:
        costs, n = spec["costs"], len(spec["costs"])
        picks = parse_labels(answer)
        if picks is None:
            return 0.0
        used, total, errors = set(), 0, abs(len(picks) - n)
        for row in range(n):
            col = picks[row] if row < len(picks) else -1
            if 0 <= col < n and col not in used:
                used.add(col)
                total += int(costs[row][col])
            else:
                errors += row < len(picks)   # a missing letter is already counted above
                total += MISSING_COST
        return quality(max(0, total - self.opt_value(spec)) / n + PEN * errors, TAU)

    def form_ok(self, spec: dict, answer: str) -> bool:
        """One letter per row, every column exactly once."""
        return is_permutation(parse_labels(answer), len(spec["costs"]))

    def solve(self, spec: dict, rng: random.Random) -> str:
        return labels(optimum(tuple(spec["costs"]))[1])

    def heuristic(self, spec: dict, rng: random.Random, noise: float = 0.0) -> str:
        costs, n = spec["costs"], len(spec["costs"])
        free, cols = list(range(n)), []
        for row in range(n):
            col = rng.choice(free) if explore(rng, noise) else min(free, key=lambda c: (costs[row][c], c))
            cols.append(col)
            free.remove(col)
        return labels(cols)

    def policy_step(self, spec: dict, rng: random.Random) -> tuple[str, str]:
        greedy = parse_labels(self.heuristic(spec, rng))
        row = rng.randrange(len(greedy))
        return f"row {row + 1} cheapest free column, used {labels(greedy[:row]) or 'none'}?", LABELS[greedy[row]]

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random permutation of the columns."""
        n = len(spec["costs"])
        return labels(rng.sample(range(n), n))
