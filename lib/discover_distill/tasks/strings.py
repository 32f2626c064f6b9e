"""String transforms of a short lowercase word: reverse it, or shift every letter by one
(a->b, z->a). Graded by character-level similarity (1 - edit distance / length)."""
from __future__ import annotations

import random

from .base import TaskFamily, difficulty_level

LEVELS = {1: (4, 5), 2: (6, 7), 3: (8, 9)}
OPS = ("reverse", "shift")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def transform(op: str, word: str) -> str:
    if op == "reverse":
        return word[::-1]
    if op == "shift":
        return "".join(LETTERS[(LETTERS.index(c) + 1) % 26] for c in word)
    raise ValueError(f"unknown string op {op!r}")


class StringTransform(TaskFamily):
    name = "strings"

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        lo, hi = LEVELS[difficulty_level(difficulty)]
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(lo, hi)))
        return {"op": rng.choice(OPS), "word": word}

    def prompt(self, spec: dict) -> str:
        verb = "reverse the letters of" if spec["op"] == "reverse" else "shift each letter by one in"
        return f"strings: {verb} {spec['word']}"

    def score(self, spec: dict, answer: str) -> float:
        want = transform(spec["op"], spec["word"])
        got = answer.strip().lower()[: 4 * len(want)]
        if not got:
            return 0.0
        return max(0.0, 1.0 - edit_distance(got, want) / max(len(want), len(got)))

    def solve(self, spec: dict, rng: random.Random) -> str:
        return transform(spec["op"], spec["word"])

    def attempt(self, spec: dict, rng: random.Random) -> str:
        chars = list(transform(spec["op"], spec["word"]))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            kind = rng.random()
            if kind < 0.5:
                chars[i] = rng.choice(LETTERS)
            elif kind < 0.75 and len(chars) > 2:
                chars.pop(i)
            else:
                j = min(len(chars) - 1, i + 1)
                chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
