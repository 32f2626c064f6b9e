"""The task-family interface and the parsing and grading helpers every verifier shares.

A family generates instances (`spec`, a JSON-serialisable dict), renders the canonical one-line
prompt, verifies a model completion into a reward in [0, 1] (1.0 = solved), and produces an
optimal answer (`solve`), the answer of a constructive policy a small model can compute step by
step (`heuristic`: a greedy rule reading quantities off the prompt, with a noise knob; `attempt`
draws the corpus's attempts from it and `policy_step` drills one of its steps), and uniformly
random well-formed ones (`random_answer`, the random-search baseline of paper/scripts/audit_tasks.py).
`well_formed` says whether an answer has the shape the instance asks for (the base-model probe,
lib/discover_distill/probe.py, counts it), whatever its quality.
Verifiers parse text themselves: nothing a model writes is ever evaluated as code, and `reward`
never raises.

Every family is an optimisation problem graded by a `gap` >= 0 from the exact optimum (0 only at
the optimum; the generator computes the optimum exactly and caches it in the spec as a derived
field that `canonical` leaves out; infeasible or malformed parts of an answer add penalties to the
gap instead of zeroing it) mapped through `quality` = exp(-gap / tau), tau per family: 1.0 at the
optimum, smooth and monotone below it, so partial quality scores and each improvement raises it.
"""
from __future__ import annotations

import json
import math
import random
import re

from ..prompts import extract_answer

MAX_ANSWER_CHARS = 400   # longer answers are cut before parsing: bounded work per verification
SOLVED = 0.99            # reward at which a task counts as solved
POLICY_NOISE = 0.5       # the largest per-step noise of the policy's attempts (corpus and baseline)

_INT = re.compile(r"[+-]?\d{1,6}")
_WORD = re.compile(r"[a-z]+")
LABELS = "abcdefghijklmnopqrstuvwxyz"   # item / point / column labels: one token each (" a", " b", ...)


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


def parse_labels(text: str, max_count: int = 64) -> list[int] | None:
    """Letter labels separated by spaces/commas (a run like "acd" counts as a c d) as 0-based
    indices; None if any token is not lowercase letters or there are too many."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens or len(tokens) > max_count or not all(_WORD.fullmatch(t) for t in tokens):
        return None
    out = [LABELS.index(c) for t in tokens for c in t]
    return out if len(out) <= max_count else None


def is_permutation(picks: list[int] | None, n: int) -> bool:
    """Every index of 0..n-1 exactly once."""
    return picks is not None and sorted(picks) == list(range(n))


def is_subset(picks: list[int] | None, n: int) -> bool:
    """A non-empty set of distinct indices of 0..n-1."""
    return bool(picks) and len(set(picks)) == len(picks) and all(0 <= i < n for i in picks)


def labels(indices) -> str:
    return " ".join(LABELS[i] for i in indices)


def quality(gap: float, tau: float) -> float:
    """Reward for a distance `gap` from the optimum: exactly 1.0 at the optimum (gap ~ 0, with a
    float tolerance), exp(-gap / tau) below it, capped under SOLVED so only the optimum is solved."""
    if gap <= 1e-9:
        return 1.0
    return min(0.98, math.exp(-gap / tau))


def split_errors(indices: list[int], n: int) -> tuple[list[int], int]:
    """(distinct in-range indices in first-seen order, number of out-of-range or repeated ones)."""
    seen: list[int] = []
    for i in indices:
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen, len(indices) - len(seen)


DERIVED = ("opt",)   # spec fields computed from the instance (cached optimum): not part of its identity


class TaskFamily:
    name = ""
    order_free = False   # the verifier reads the answer as a set: any order of its pieces scores the same
    # how the prompt writes the instance's numbers: "plain" everywhere; a family that can also label each
    # number (spec["cells"] = "labelled") lists it here. The verifier, canonical form and split never see it.
    cell_formats = ("plain",)

    def sorted_answer(self, answer: str) -> str:
        """An order-free family's answer with its pieces in ascending order (letters, or integers);
        any other family's unchanged (its order is part of the answer)."""
        if not self.order_free:
            return answer
        parts = answer.split()
        return " ".join(sorted(parts, key=lambda p: (len(p), p) if p.isdigit() else (0, p)))

    def sample(self, rng: random.Random, difficulty: int) -> tuple[dict, str]:
        """An instance and an optimal answer (the exact solver finds both at once)."""
        raise NotImplementedError

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        return self.sample(rng, difficulty)[0]

    def prompt(self, spec: dict) -> str:
        raise NotImplementedError

    def canonical(self, spec: dict) -> str:
        """The instance in canonical form: equivalent instances (relabelled, permuted, mirrored)
        give equal strings, so they hash to the same split. Derived fields are left out."""
        return json.dumps({k: v for k, v in spec.items() if k not in DERIVED}, sort_keys=True, separators=(",", ":"))

    def opt_value(self, spec: dict) -> float:
        """The optimum's objective value: the spec's cached one, else computed exactly."""
        raise NotImplementedError

    def score(self, spec: dict, answer: str) -> float:
        """Reward of an extracted answer; may raise on malformed input (reward() catches)."""
        raise NotImplementedError

    def solve(self, spec: dict, rng: random.Random) -> str:
        raise NotImplementedError

    def heuristic(self, spec: dict, rng: random.Random, noise: float = 0.0) -> str:
        """The family's constructive policy: the answer built one piece at a time, in construction
        order, each piece a greedy choice from quantities the prompt shows. With probability
        `noise` a step takes a random admissible choice instead: diverse and (on average) worse
        answers. noise = 0 is deterministic (the policy's answer) and draws nothing from rng."""
        raise NotImplementedError

    def policy_step(self, spec: dict, rng: random.Random) -> tuple[str, str]:
        """(question, answer): one step of the noiseless policy at a random point of its
        construction, the partial state written in the question, so that the answer is a pure
        function of the prompt and the question (the corpus's "step" lines)."""
        raise NotImplementedError

    def attempt(self, spec: dict, rng: random.Random, max_noise: float = POLICY_NOISE) -> str:
        """An attempt for the corpus (plain, scored and improve lines) and for the policy baseline:
        the policy's own answer half the time, else the policy with per-step noise ~ U(0, max_noise)."""
        noise = 0.0 if rng.random() < 0.5 else rng.uniform(0.0, max_noise)
        return self.heuristic(spec, rng, noise)

    def random_answer(self, spec: dict, rng: random.Random) -> str:
        """A uniformly random well-formed answer (the random-search baseline)."""
        raise NotImplementedError

    def form_ok(self, spec: dict, answer: str) -> bool:
        """Whether an extracted answer is structurally valid for the instance; may raise on
        malformed input (well_formed() catches)."""
        raise NotImplementedError

    def well_formed(self, spec: dict, answer: str) -> bool:
        """The answer (a completion or an extracted answer) parses and is structurally valid for
        the instance: only labels that exist, no repeats, the right count. Quality issues (over
        capacity, a forbidden difference) do not make it malformed. Never raises."""
        try:
            return bool(self.form_ok(spec, extract_answer(answer)[:MAX_ANSWER_CHARS]))
        except NotImplementedError:  # a family without form_ok is a bug, not a malformed answer
            raise
        except Exception:  # malformed spec or answer: not well formed, never a crash
            return False

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


def explore(rng: random.Random, noise: float) -> bool:
    """Whether a policy step takes a random choice (probability `noise`; never draws at noise 0)."""
    return noise > 0 and rng.random() < noise


def difficulty_level(difficulty: int, levels: int = 3) -> int:
    """Clamp a requested difficulty into 1..levels."""
    return min(levels, max(1, int(difficulty)))
