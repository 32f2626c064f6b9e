"""The synthetic pretraining corpus: task lines from the train region of every family, in the
exact prompt formats the later phases use, mixed with a filler language.

Line kinds (one document per line; default shares in MIX):
  solved    Q: <prompt> A: <correct answer>                an exact optimum
  plain     Q: <prompt> A: <policy attempt>               the family's constructive policy (a greedy
                                                          rule a small model can compute step by step),
                                                          noise-free half the time, in construction order
                                                          (or sorted where order is free: --answer_order)
  scored    Q: <prompt> A: <attempt> || score 0.62       the verifier's score, not a made-up one
  improve   Q: <prompt> || previous attempt (score s): <attempt> || improve on it. A: <better answer>
  demo      Q: <prompt> || example response: <demo> || now answer with a response of your own. A: <answer>
  drill     Q: <prompt> || weight/value of d? A: 1/50   one fact looked up in the instance (not in MIX:
            a profile adds it with --task_mix); answers are pure functions of the prompt, which the
            optimal answers are too, but through far more computation
  step      Q: <prompt> || next admissible mark after 0 1 3? A: 7   one step of the policy, its partial
            state in the question (not in MIX: a profile adds it with --task_mix)
  filler    sentences of a probabilistic grammar over a large pseudo-word lexicon; its perplexity
            measures retention (forgetting) after consolidation, and its lexicon is rich enough
            to support a 32k-piece BPE vocabulary.
Held-out instances never appear: every task instance is drawn from the train region (tasks/__init__).
"""
from __future__ import annotations

import bisect
import itertools
import random
import statistics
from typing import Iterator

from . import prompts
from .tasks import FAMILIES, sample_instance, with_cells
from .tasks.base import LABELS, POLICY_NOISE

# Task lines mostly the policy's answers (what a small model can learn to compute from the instance:
# the optima alone taught the mini's 1M model the answers' shape, not the instance); one share each of
# optima, scored attempts, improve lines (TTT reuse's format) and demos (the SDFT teacher's format).
MIX = {"filler": 0.40, "plain": 0.36, "solved": 0.06, "scored": 0.06, "improve": 0.06, "demo": 0.06}
LEXICON_SEED = 20260101   # the filler lexicon is fixed: train and val text share one language
LEXICON_SIZE = 40000
DIFFICULTIES = (1, 2, 3)
TASK_KINDS = ("solved", "plain", "scored", "improve", "demo", "drill", "step")
# A difficulty mix: per family, (level, weight) pairs. The corpus should cover the levels the suite
# asks about: a model trained on all levels alike writes answers sized for any of them.
DifficultyMix = dict[str, tuple[tuple[int, float], ...]]


def parse_difficulties(spec: str, heldout_mix: dict[str, tuple[int, ...]] | None = None,
                       heldout_weight: float = 3.0) -> DifficultyMix:
    """A difficulty mix from a flag value: "1,2,3" (uniform over those levels), "1:3,2:1" (weights),
    or "heldout" (each family's held-out levels `heldout_mix` weighted `heldout_weight`:1 against
    its other levels). Raises ValueError with a readable message."""
    spec = spec.strip()
    if spec == "heldout":
        if heldout_mix is None:
            raise ValueError("'heldout' needs the held-out difficulty mix")
        return {f: tuple((d, heldout_weight if d in heldout_mix.get(f, DIFFICULTIES) else 1.0) for d in DIFFICULTIES)
                for f in FAMILIES}
    pairs = []
    for part in (x.strip() for x in spec.split(",")):
        level, _, weight = part.partition(":")
        try:
            d, w = int(level), float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"expected levels like '1,2' or '1:3,2:1' or 'heldout', got {spec!r}") from None
        if d not in DIFFICULTIES or not w > 0:
            raise ValueError(f"level {d} weight {w}: levels are {DIFFICULTIES} and weights must be > 0")
        pairs.append((d, w))
    return {f: tuple(pairs) for f in FAMILIES}


def describe_difficulties(mix: DifficultyMix) -> str:
    """One line: each distinct per-family mix as level shares (for logs and the corpus report)."""
    groups: dict[str, list[str]] = {}
    for f, pairs in sorted(mix.items()):
        total = sum(w for _, w in pairs)
        groups.setdefault(" ".join(f"d{d} {w / total:.0%}" for d, w in pairs), []).append(f)
    return "; ".join(f"{', '.join(fs)}: {desc}" for desc, fs in groups.items())


def draw_difficulty(pairs: tuple[tuple[int, float], ...], rng: random.Random) -> int:
    if len(pairs) == 1:
        return pairs[0][0]
    levels, weights = zip(*pairs)
    return rng.choices(levels, weights)[0]

_ONSETS = ["", "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr",
           "pl", "st", "tr", "sh", "ch", "th", "sk", "sn", "fl", "gr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io", "y"]
_CODAS = ["", "", "", "n", "r", "l", "s", "t", "m", "k", "nd", "st", "rk", "ng"]
_CLASSES = ("noun", "verb", "adj", "adv")
_FUNCTION = {"det": ["the", "a", "every", "some", "no", "this", "that"],
             "prep": ["of", "in", "under", "near", "beyond", "with", "from"],
             "conj": ["and", "but", "while", "because", "so"]}


class FillerGrammar:
    """A small probabilistic grammar; content words are Zipf-distributed pseudo-words."""

    def __init__(self, size: int = LEXICON_SIZE, seed: int = LEXICON_SEED):
        rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < size:
            n_syl = rng.choice((1, 2, 2, 3, 3, 4))
            words.add("".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n_syl)))
        ordered = sorted(words)
        rng.shuffle(ordered)
        self.lexicon = {c: ordered[i::len(_CLASSES)] for i, c in enumerate(_CLASSES)}
        self.cum = {}
        for c, ws in self.lexicon.items():
            weights = [1.0 / (rank + 2) ** 1.05 for rank in range(len(ws))]
            self.cum[c] = list(itertools.accumulate(weights))

    def word(self, cls: str, rng: random.Random) -> str:
        if cls in _FUNCTION:
            return rng.choice(_FUNCTION[cls])
        cum = self.cum[cls]
        return self.lexicon[cls][bisect.bisect_left(cum, rng.random() * cum[-1])]

    def noun_phrase(self, rng: random.Random) -> list[str]:
        np_ = [self.word("det", rng)] + [self.word("adj", rng) for _ in range(rng.choice((0, 0, 1, 1, 2)))]
        np_.append(self.word("noun", rng))
        if rng.random() < 0.25:
            np_ += [self.word("prep", rng)] + [self.word("det", rng), self.word("noun", rng)]
        return np_

    def clause(self, rng: random.Random) -> list[str]:
        out = self.noun_phrase(rng)
        if rng.random() < 0.3:
            out.append(self.word("adv", rng))
        out.append(self.word("verb", rng))
        if rng.random() < 0.7:
            out += self.noun_phrase(rng)
        return out

    def sentence(self, rng: random.Random) -> str:
        words = self.clause(rng)
        while rng.random() < 0.35:
            words += [self.word("conj", rng)] + self.clause(rng)
        return " ".join(words) + " ."

    def line(self, rng: random.Random) -> str:
        return " ".join(self.sentence(rng) for _ in range(rng.choice((1, 1, 2, 2, 3))))


def _drill(family: str, spec: dict, rng: random.Random) -> tuple[str, str]:
    """(question, answer): one fact of the instance, the kind a heuristic for the family reads."""
    if family == "knapsack":
        i = rng.randrange(len(spec["weights"]))
        return f"weight/value of {LABELS[i]}?", f"{spec['weights'][i]}/{spec['values'][i]}"
    if family == "partition":
        i = rng.randrange(len(spec["nums"]))
        return f"number {LABELS[i]}?", str(spec["nums"][i])
    if family == "tour":
        i = rng.randrange(len(spec["points"]))
        return f"point {LABELS[i]}?", "{},{}".format(*spec["points"][i])
    if family in ("gridpath", "assign"):
        rows = spec["grid" if family == "gridpath" else "costs"]
        r, c = rng.randrange(len(rows)), rng.randrange(len(rows[0]))
        col = str(c + 1) if family == "gridpath" else LABELS[c]
        return f"row {r + 1} column {col}?", rows[r][c]
    if family == "golomb":
        d = rng.randrange(1, spec["L"] + 1)
        return f"is difference {d} allowed?", "no" if d in spec["forbid"] else "yes"
    raise ValueError(f"no drill for family {family!r}")


ANSWER_ORDERS = ("construction", "sorted")


def task_line(kind: str, rng: random.Random, difficulties: DifficultyMix | None = None,
              families: tuple[str, ...] | None = None, policy_noise: float = POLICY_NOISE,
              answer_order: str = "construction", cells: str = "plain") -> tuple[str, str, float | None]:
    """(line, family, score of the shown attempt or None) for one task line of `kind`, of one of
    `families` (default: all); attempts are the policy's with per-step noise up to `policy_noise`,
    in the policy's construction order, or (`answer_order` "sorted") an order-free family's sorted;
    `cells` the prompt's number format (tasks.with_cells)."""
    family = rng.choice(sorted(families or FAMILIES))
    fam = FAMILIES[family]
    level = rng.choice(DIFFICULTIES) if difficulties is None else draw_difficulty(difficulties[family], rng)
    spec, solution = sample_instance(family, rng, level, "train", with_solution=True)
    spec = with_cells(family, spec, cells)
    p = fam.prompt(spec)
    if kind == "solved":
        return prompts.with_answer(prompts.plain_prompt(p), solution), family, None
    if kind == "drill":
        return prompts.drill_line(p, *_drill(family, spec, rng)), family, None
    if kind == "step":
        return prompts.drill_line(p, *fam.policy_step(spec, rng)), family, None

    def policy_attempt() -> str:
        a = fam.attempt(spec, rng, policy_noise)
        return fam.sorted_answer(a) if answer_order == "sorted" else a

    attempt = policy_attempt()
    score = fam.reward(spec, attempt)
    if kind == "plain":
        return prompts.with_answer(prompts.plain_prompt(p), attempt), family, score
    if kind == "scored":
        return prompts.scored_line(p, attempt, score), family, score
    if kind == "improve":
        better = solution
        if rng.random() < 0.3:  # sometimes a partial improvement rather than the full solution
            other = policy_attempt()
            if fam.reward(spec, other) > score:
                better = other
        return prompts.with_answer(prompts.improve_prompt(p, attempt, score), better), family, score
    if kind == "demo":
        answer = fam.solve(spec, rng)  # open-ended families: often a different correct answer
        return prompts.with_answer(prompts.demo_prompt(p, solution), answer), family, None
    raise ValueError(f"unknown line kind {kind!r}")


def generate_lines(n: int, seed: int, mix: dict[str, float] | None = None,
                   grammar: FillerGrammar | None = None, stats: dict | None = None,
                   difficulties: DifficultyMix | None = None, families: tuple[str, ...] | None = None,
                   policy_noise: float = POLICY_NOISE, answer_order: str = "construction",
                   cells: str = "plain") -> Iterator[str]:
    """n corpus lines, deterministic in (n, seed, mix, difficulties (None = levels 1-3 uniformly),
    families (None = all), policy_noise, answer_order, cells).
    `stats`, if given, collects counts per kind and family and the scores of the imperfect attempts
    per family."""
    mix = mix or MIX
    kinds, weights = zip(*sorted(mix.items()))
    cum = list(itertools.accumulate(weights))
    grammar = grammar or FillerGrammar()
    rng = random.Random(seed)
    for _ in range(n):
        kind = kinds[bisect.bisect_left(cum, rng.random() * cum[-1])]
        if kind == "filler":
            line, family, score = grammar.line(rng), None, None
        else:
            line, family, score = task_line(kind, rng, difficulties, families, policy_noise, answer_order, cells)
        if stats is not None:
            stats.setdefault("kinds", {}).setdefault(kind, 0)
            stats["kinds"][kind] += 1
            if family:
                stats.setdefault("families", {}).setdefault(family, 0)
                stats["families"][family] += 1
            if score is not None:
                stats.setdefault("attempt_scores", {}).setdefault(family, []).append(score)
        yield line


def attempt_stats(scores: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per family: n, mean, std, min, max, share at 0 and share solved (>= 0.99) of attempt scores."""
    out = {}
    for family, xs in sorted(scores.items()):
        out[family] = {"n": len(xs), "mean": statistics.fmean(xs), "std": statistics.pstdev(xs),
                       "min": min(xs), "max": max(xs), "frac_zero": sum(x == 0 for x in xs) / len(xs),
                       "frac_solved": sum(x >= 0.99 for x in xs) / len(xs)}
    return out
