"""The task-family interface and the parsing helpers every verifier shares.

A family generates instances (`spec`, a JSON-serialisable dict), renders the canonical one-line
prompt, verifies a model completion into a reward in [0, 1] (1.0 = solved), and produces a
correct answer (`solve`) and imperfect ones (`attempt`) for the corpus. Verifiers parse text
themselves: nothing a model writes is ever evaluated as code, and `reward` never raises.
"""
from __future__ import annotations

import json
import math
import random
import re

from ..prompts import extract_answer

MAX_ANSWER_CHARS = 400   # longer answers are cut before parsing: bounded work per verification
SOLVED = 0.99            # reward at which a task counts as solved

_INT = re.compile(r"[+-]?\d{1,6}")


def parse_ints(text: str, max_count: int = 32) -> list[int] | None:
    """Whitespace/comma separated integers; None if any token is not a (short) integer."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens or len(tokens) > max_count:
        return None
    out = []
    for t in tokens:
        if not _INT.fullmatch(t):
            return None
        out.append(int(t))
    return out


class TaskFamily:
    name = ""

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        raise NotImplementedError

    def prompt(self, spec: dict) -> str:
        raise NotImplementedError

    def canonical(self, spec: dict) -> str:
        """The instance in canonical form: equal instances give equal strings (split hashing)."""
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))

    def score(self, spec: dict, answer: str) -> float:
        """Reward of an extracted answer; may raise on malformed input (reward() catches)."""
        raise NotImplementedError

    def solve(self, spec: dict, rng: random.Random) -> str:
        raise NotImplementedError

    def attempt(self, spec: dict, rng: random.Random) -> str:
        raise NotImplementedError

    def reward(self, spec: dict, completion: str) -> float:
        """Verifier: a float in [0, 1] for any string; never raises."""
        try:
            answer = extract_answer(completion)[:MAX_ANSWER_CHARS]
            r = float(self.score(spec, answer))
        except Exception:  # malformed spec or answer: no credit, never a crash
            return 0.0
        if math.isnan(r):
            return 0.0
        return min(1.0, max(0.0, r))


def difficulty_level(difficulty: int, levels: int = 3) -> int:
    """Clamp a requested difficulty into 1..levels."""
    return min(levels, max(1, int(difficulty)))
