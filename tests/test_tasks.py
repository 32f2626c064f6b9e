import random
import string
import time

import pytest

from discover_distill.tasks import (FAMILIES, TASK_ID_RE, get_family, make_task, reward_for_task, sample_instance,
                                    split_of)
from discover_distill.tasks.arith import evaluate
from discover_distill.tasks.countdown import _exhaustive

FUZZ = ["", " ", "||", "A:", "\n\n", "(" * 5000 + "1" + ")" * 5000, "9" * 10000, "-" * 300, "1 2 3 " * 500,
        "__import__('os').system('touch /tmp/pwned')", "eval(1)", "1/0", "1e999", "nan", "inf", "0x10",
        "ünïcödé ✓ 😀", "\x00\x01\x02", "((((", "))))", "1++2", "*", "( )", "2**1000000", "1 || 2", "-1 -2 -3",
        "99999999999999999999", "0 0 0 0", "None", "[1, 2, 3]", "{}", "\\", "'", "\"", "A: 1 2 3"]


def random_strings(rng, n):
    alphabet = string.printable + "ü✓"
    for _ in range(n):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_verifier_fuzz_never_raises_and_stays_in_range(family):
    rng = random.Random(family)
    fam = FAMILIES[family]
    for d in (1, 2, 3):
        spec = fam.generate(rng, d)
        sol = fam.solve(spec, rng)
        cases = FUZZ + list(random_strings(rng, 150)) + [sol + " junk", "junk " + sol, sol[::-1], sol.replace(" ", ",")]
        t = time.process_time()
        for text in cases:
            r = fam.reward(spec, text)
            assert isinstance(r, float) and 0.0 <= r <= 1.0, (text, r)
        assert time.process_time() - t < 30  # bounded work, not a speed claim
    assert fam.reward({"garbage": True}, "1 2 3") == 0.0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_solutions_score_one_and_attempts_are_graded(family):
    rng = random.Random(1)
    fam = FAMILIES[family]
    scores = []
    for i in range(60):
        spec = fam.generate(rng, 1 + i % 3)
        assert fam.reward(spec, fam.solve(spec, rng)) == 1.0
        assert fam.reward(spec, " " + fam.solve(spec, rng) + " || score 0.3") == 1.0  # answer extraction
        scores += [fam.reward(spec, fam.attempt(spec, rng)) for _ in range(5)]
    mean = sum(scores) / len(scores)
    assert 0.05 < mean < 0.95 and len(set(round(s, 3) for s in scores)) > 5


def test_prompts_are_single_line_and_free_of_format_markers():
    rng = random.Random(2)
    for family, fam in FAMILIES.items():
        for d in (1, 2, 3):
            p = fam.prompt(fam.generate(rng, d))
            assert "\n" not in p and "||" not in p and "A:" not in p and len(p) < 160


def test_parser_never_evaluates_code():
    assert evaluate("__import__('os')") is None
    assert evaluate("(1+2)*3-4") == (5, [1, 2, 3, 4])
    assert evaluate("(" * 50 + "1" + ")" * 50) is None  # nesting bound
    assert evaluate("2*3 4") is None
    assert _exhaustive([2, 3, 7], 27).replace(" ", "") in {"(2+7)*3", "3*(2+7)", "(7+2)*3", "3*(7+2)"} or \
        evaluate(_exhaustive([2, 3, 7], 27))[0] == 27


def test_countdown_rejects_numbers_not_given():
    fam = get_family("countdown")
    spec = {"nums": [2, 3, 7], "target": 27}
    assert fam.reward(spec, "(2+7)*3") == 1.0
    assert fam.reward(spec, "(2+7)*3*1") == 0.0   # 1 is not given
    assert fam.reward(spec, "(7+7)*2") == 0.0     # 7 used twice
    assert 0 < fam.reward(spec, "2*7+3") < 0.8


def test_golomb_and_knapsack_grading():
    g = get_family("golomb")
    spec = {"k": 4, "L": 10, "forbid": [5]}
    assert g.reward(spec, "0 1 4 6") == 1.0
    assert g.reward(spec, "0 1 2 3") < 1.0              # repeated differences
    assert g.reward(spec, "0 1 4 5") < g.reward(spec, "0 1 4 6")  # forbidden mark
    k = get_family("knapsack")
    spec = {"weights": [3, 4, 5], "values": [4, 5, 6], "cap": 8}
    assert k.reward(spec, "1 3") == 1.0 and k.reward(spec, "1 2") == pytest.approx(0.9)
    assert k.reward(spec, "2 3") == 0.0 and k.reward(spec, "1 1") == 0.0


def test_split_is_deterministic_and_make_task_respects_it():
    rng = random.Random(3)
    for family in FAMILIES:
        for split in ("train", "heldout"):
            task = make_task(family, rng, 2, split)
            assert task["split"] == split == split_of(family, task["spec"])
            assert TASK_ID_RE.match(task["task_id"]) and task["task_id"].startswith(f"{family}-{split}-")
            assert reward_for_task(task, FAMILIES[family].solve(task["spec"], rng)) == 1.0
    shares = [split_of("sort", FAMILIES["sort"].generate(rng, 2)) == "heldout" for _ in range(2000)]
    assert 0.15 < sum(shares) / len(shares) < 0.25
    with pytest.raises(ValueError, match="known"):
        get_family("chess")
    assert reward_for_task({"family": "chess"}, "x") == 0.0


def test_sample_instance_with_solution():
    rng = random.Random(4)
    for family, fam in FAMILIES.items():
        spec, sol = sample_instance(family, rng, 3, "train", with_solution=True)
        assert split_of(family, spec) == "train" and fam.reward(spec, sol) == 1.0
