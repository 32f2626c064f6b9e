import random
import re

from discover_distill.corpus import FillerGrammar, attempt_stats, generate_lines
from discover_distill.tasks import FAMILIES, make_task


def test_deterministic_and_seed_dependent():
    g = FillerGrammar()
    a = list(generate_lines(300, 5, grammar=g))
    assert a == list(generate_lines(300, 5, grammar=g))
    assert a != list(generate_lines(300, 6, grammar=g))
    assert all("\n" not in line and line for line in a)


def test_all_line_kinds_use_the_shared_formats():
    stats = {}
    lines = list(generate_lines(2000, 0, stats=stats))
    assert set(stats["kinds"]) == {"filler", "solved", "plain", "scored", "improve", "demo"}
    assert any("previous attempt (score" in l and "improve on it. A:" in l for l in lines)
    assert any("example response:" in l and "now answer with a response of your own. A:" in l for l in lines)
    assert any(" || score " in l for l in lines)
    table = attempt_stats(stats["attempt_scores"])
    assert set(table) == set(FAMILIES)
    for row in table.values():
        assert 0.02 < row["mean"] < 0.95 and row["std"] > 0.02   # the policy's attempts: graded


def test_no_heldout_instance_in_the_corpus():
    text = "\n".join(generate_lines(4000, 0)) + "\n"
    rng = random.Random(0)
    heldout = [make_task(f, rng, d, "heldout") for f in sorted(FAMILIES) for d in (1, 2, 3) for _ in range(40)]
    leaked = [t["prompt"] for t in heldout if f"Q: {t['prompt']} " in text]
    assert not leaked, leaked[:3]
    # and the train region does show up (the check is not vacuous)
    train = [make_task(f, rng, 1, "train") for f in ("knapsack",) for _ in range(3)]
    corpus_prompts = {l.split(" A:")[0].split(" || ")[0][3:] for l in text.splitlines() if l.startswith("Q: ")}
    assert corpus_prompts and all(p.count(":") >= 1 for p in corpus_prompts)
    assert all(t["split"] == "train" for t in train)


def test_small_instance_space_shows_the_split_holds():
    """Golomb at difficulty 1 has ~2,500 instances: without the split, a 6,000-line corpus would
    contain dozens of held-out ones. Enumerate all of them and check none appears, while many
    train-region ones do (so the check is not vacuous)."""
    import itertools

    from discover_distill.tasks import split_of
    from discover_distill.tasks.golomb import LEVELS, MAX_FORBID, optimal_rulers

    fam = FAMILIES["golomb"]
    k, length = LEVELS[1]
    instances = [{"k": k, "L": length, "forbid": list(f)} for r in range(1, 5)
                 for f in itertools.combinations(range(1, MAX_FORBID + 1), r) if optimal_rulers(k, length, f)]
    text = "\n".join(generate_lines(6000, 3)) + "\n"
    heldout = [s for s in instances if split_of("golomb", s) == "heldout"]
    train = [s for s in instances if split_of("golomb", s) == "train"]
    assert len(heldout) > 300
    assert not [s for s in heldout if f"Q: {fam.prompt(s)} " in text]
    assert sum(f"Q: {fam.prompt(s)} " in text for s in train) > 50


def test_difficulty_mix_is_followed_and_parsed():
    from discover_distill.corpus import parse_difficulties
    from discover_distill.tasks import PAPER_MIX
    import pytest

    stats = {}
    one = parse_difficulties("1")
    lines = [l for l in generate_lines(600, 0, stats=stats, difficulties=one) if l.startswith("Q: ")]
    # difficulty 1 tours have 8 points, levels 2 and 3 have 9 and 10
    tours = [l.split("||")[0] for l in lines if l.startswith("Q: tour:")]
    assert tours and all(len(re.findall(r"\b[a-z]\d+,\d+", l)) == 8 for l in tours)
    weighted = parse_difficulties("1:3,3:1")
    assert weighted["knapsack"] == ((1, 3.0), (3, 1.0))
    held = parse_difficulties("heldout", PAPER_MIX, 3.0)
    assert dict(held["gridpath"]) == {1: 1.0, 2: 1.0, 3: 3.0}
    assert dict(held["tour"]) == {1: 1.0, 2: 3.0, 3: 3.0}
    for bad in ("0", "1:0", "x", "1:-2"):
        with pytest.raises(ValueError):
            parse_difficulties(bad)


def test_drill_lines_ask_facts_the_prompt_holds():
    stats = {}
    lines = list(generate_lines(600, 2, mix={"drill": 1.0}, stats=stats))
    assert set(stats["kinds"]) == {"drill"} and set(stats["families"]) == set(FAMILIES)
    for line in lines:
        prompt, rest = line[3:].split(" || ")
        question, answer = rest.split(" A: ")
        if question.startswith("weight/value of "):       # knapsack: the item's own pair
            assert f" {question[16]}{answer} " in prompt + " " or f" {question[16]}{answer}," in prompt
        elif question.startswith(("number ", "point ")):  # partition, tour
            assert f" {question.split()[1][0]}{answer}" in prompt
        elif question.startswith("row "):                 # gridpath (column number), assign (column letter)
            _, r, _, c = question[:-1].split()
            rows = prompt.split("rows ")[1].split(",")[0].split()
            col = int(c) - 1 if c.isdigit() else ord(c) - ord("a")
            assert rows[int(r) - 1][col] == answer
        else:                                             # golomb
            d = int(question.split()[2])
            forbid = prompt.split("none equal to ")[1].split(",")[0].split()
            assert answer == ("no" if str(d) in forbid else "yes")


def test_answer_order_sorts_the_attempts_of_order_free_families_only():
    def plain_answers(order):
        lines = generate_lines(300, 4, mix={"plain": 1.0}, answer_order=order)
        return [(l.split(":")[1].strip(), l.split(" A: ")[1]) for l in lines]
    built, ordered = plain_answers("construction"), plain_answers("sorted")
    assert [f for f, _ in built] == [f for f, _ in ordered]   # the same draws, only the order differs
    for (family, a), (_, b) in zip(built, ordered):
        assert sorted(a.split()) == sorted(b.split())
        if family in ("knapsack", "partition"):
            assert b.split() == sorted(b.split())
        elif family != "golomb":
            assert a == b
    assert any(a != b for (_, a), (_, b) in zip(built, ordered))
