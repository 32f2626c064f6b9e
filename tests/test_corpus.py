import random

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
        assert 0.2 < row["mean"] < 0.9 and row["std"] > 0.05


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
