"""Cheapest monotone path through a grid of digit costs 1-9: from the top-left to the bottom-right
cell with moves r (right) and d (down), minimising the sum of the cells visited.

Optimum: exact DP over cells (cached in spec["opt"]). Reward: quality of the gap
  max(0, cost - opt) / opt + 0.25 * (moves off the grid + moves missing or extra at the end),
where the cost sums the cells actually visited. Random search: C(r+c-2, r-1) monotone paths
(11,440 on 8 x 10).
Policy: from each cell, the cheaper of the two next cells (ties: right); forced along the edges.
"""
from __future__ import annotations

import functools
import random

from .base import TaskFamily, difficulty_level, explore, quality

LEVELS = {1: (6, 7), 2: (7, 9), 3: (8, 10)}  # (rows, columns)
TAU, PEN = 0.05, 0.25  # a path 5% dearer than the optimum scores exp(-1)
MOVES = {"r": (0, 1), "d": (1, 0)}


@functools.lru_cache(maxsize=256)  # the corpus solves each instance several times (solution, attempts)
def optimum(grid: tuple[str, ...]) -> tuple[int, str]:
    """(cheapest cost, one cheapest move string) by DP: best[i][j] = cheapest path to cell (i, j)."""
    rows, cols = len(grid), len(grid[0])
    best = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            before = [best[a][b] for a, b in ((i - 1, j), (i, j - 1)) if a >= 0 and b >= 0]
            best[i][j] = int(grid[i][j]) + (min(before) if before else 0)
    moves, i, j = [], rows - 1, cols - 1
    while i or j:  # walk back through the cheaper predecessor
        if j == 0 or (i > 0 and best[i - 1][j] <= best[i][j - 1]):
            moves.append("d")
            i -= 1
        else:
            moves.append("r")
            j -= 1
    return best[-1][-1], " ".join(reversed(moves))


def walk(grid: list[str], moves: list[str]) -> tuple[int, int]:
    """(cost of the cells visited, errors): moves off the grid are skipped and count as errors,
    as does every move still needed (or one too many) to end at the bottom-right cell."""
    rows, cols = len(grid), len(grid[0])
    i = j = errors = 0
    cost = int(grid[0][0])
    for m in moves:
        di, dj = MOVES[m]
        if i + di >= rows or j + dj >= cols:
            errors += 1
            continue
        i, j = i + di, j + dj
        cost += int(grid[i][j])
    return cost, errors + (rows - 1 - i) + (cols - 1 - j)


def greedy_walk(grid: list[str], rng: random.Random, noise: float) -> list[tuple[str, int, int]]:
    """The policy's moves, each with the cell (row, column; 0-based) it leaves: down when the cell
    below is cheaper than the one to the right, else right; a random move with probability noise."""
    rows, cols = len(grid), len(grid[0])
    i = j = 0
    out = []
    while i < rows - 1 or j < cols - 1:
        if i == rows - 1 or j == cols - 1:
            move = "r" if i == rows - 1 else "d"
        elif explore(rng, noise):
            move = rng.choice("rd")
        else:
            move = "d" if grid[i + 1][j] < grid[i][j + 1] else "r"
        out.append((move, i, j))
        i, j = (i + 1, j) if move == "d" else (i, j + 1)
    return out


class GridPath(TaskFamily):
    name = "gridpath"

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        rows, cols = LEVELS[difficulty_level(difficulty)]
        grid = ["".join(str(rng.randint(1, 9)) for _ in range(cols)) for _ in range(rows)]
        opt, moves = optimum(tuple(grid))
        return {"grid": grid, "opt": opt}, moves

    def prompt(self, spec: dict) -> str:
        return (f"gridpath: rows {' '.join(spec['grid'])}, move r or d from top left to bottom right, "
                f"minimise the sum of cells")

    def canonical(self, spec: dict) -> str:
        """Invariant to transposing (r <-> d) and to turning the grid 180 degrees (path reversed)."""
        g = spec["grid"]
        t = ["".join(col) for col in zip(*g)]
        return min("/".join(x) for x in (g, t, [r[::-1] for r in g[::-1]], [r[::-1] for r in t[::-1]]))

    def opt_value(self, spec: dict) -> int:
        return spec["opt"] if "opt" in spec else optimum(tuple(spec["grid"]))[0]

    def score(self, spec: dict, answer: str) -> float:
        grid = spec["grid"]
        moves = [c for token in answer.split() for c in token]   # "r d d" or a run like "rdd"
        if not moves or len(moves) > 64 or any(m not in MOVES for m in moves):
            return 0.0
        cost, errors = walk(grid, moves)
        opt = self.opt_value(spec)
        return quality(max(0, cost - opt) / opt + PEN * errors, TAU)

    def form_ok(self, spec: dict, answer: str) -> bool:
        """Only r and d, as many of each as the grid needs to end at the bottom-right cell."""
        moves = [c for token in answer.split() for c in token]
        rows, cols = len(spec["grid"]), len(spec["grid"][0])
        return set(moves) <= set(MOVES) and moves.count("d") == rows - 1 and moves.count("r") == cols - 1

    def solve(self, spec: dict, rng: random.Random) -> str:
        return optimum(tuple(spec["grid"]))[1]

    def heuristic(self, spec: dict, rng: random.Random, noise: float = 0.0) -> str:
        return " ".join(m for m, _, _ in greedy_walk(spec["grid"], rng, noise))

    def policy_step(self, spec: dict, rng: random.Random) -> tuple[str, str]:
        """Either where the path stands after some of its moves (the state the next step needs) or
        the next move from a given cell."""
        steps = greedy_walk(spec["grid"], rng, 0.0)
        k = rng.randrange(len(steps))
        move, i, j = steps[k]
        if rng.random() < 0.5:
            return f"cell after {' '.join(m for m, _, _ in steps[:k]) or 'no moves'}?", f"row {i + 1} column {j + 1}"
        return f"from row {i + 1} column {j + 1}, cheaper next cell?", move

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random monotone path: a random arrangement of the right numbers of r and d."""
        rows, cols = len(spec["grid"]), len(spec["grid"][0])
        moves = ["d"] * (rows - 1) + ["r"] * (cols - 1)
        rng.shuffle(moves)
        return " ".join(moves)
