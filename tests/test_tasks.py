import itertools
import math
import random
import string
import time

import pytest

from discover_distill.tasks import (FAMILIES, SOLVED, TASK_ID_RE, get_family, make_task, reward_for_task,
                                    sample_instance, split_of)
from discover_distill.tasks.base import LABELS, labels, parse_labels

FUZZ = ["", " ", "||", "A:", "\n\n", "(" * 5000 + "1" + ")" * 5000, "9" * 10000, "-" * 300, "1 2 3 " * 500,
        "__import__('os').system('touch /tmp/pwned')", "eval(1)", "1/0", "1e999", "nan", "inf", "0x10",
        "ünïcödé ✓ 😀", "\x00\x01\x02", "((((", "))))", "1++2", "*", "( )", "2**1000000", "1 || 2", "-1 -2 -3",
        "99999999999999999999", "0 0 0 0", "None", "[1, 2, 3]", "{}", "\\", "'", "\"", "A: 1 2 3", "a " * 5000,
        "z y x w", "a a a a a a a a", "r " * 400, "d d d", "r d x", "abcdefghijklmnopqrstuvwxyz" * 20, "a,b,,c",
        "A B C", "a1 b2"]


def random_strings(rng, n):
    alphabet = string.printable + "ü✓"
    for _ in range(n):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))


def mutations(rng, answer, n):
    """Token-level edits of a real answer: near-misses a verifier must still handle."""
    toks = answer.split()
    pool = toks + list("abcdrz") + ["0", "7", "99", "-1", "100000"]
    for _ in range(n):
        t = list(toks)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.3 and t:
                t.pop(rng.randrange(len(t)))
            elif op < 0.6:
                t.insert(rng.randrange(len(t) + 1), rng.choice(pool))
            elif t:
                t[rng.randrange(len(t))] = rng.choice(pool)
        yield " ".join(t)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_verifier_fuzz_never_raises_and_stays_in_range(family):
    rng = random.Random(family)
    fam = FAMILIES[family]
    for d in (1, 2, 3):
        spec = fam.generate(rng, d)
        sol = fam.solve(spec, rng)
        cases = (FUZZ + list(random_strings(rng, 150)) + list(mutations(rng, sol, 150))
                 + [sol + " junk", "junk " + sol, sol[::-1], sol.replace(" ", ","), sol.upper(), sol + " " + sol])
        t = time.process_time()
        for text in cases:
            r = fam.reward(spec, text)
            assert isinstance(r, float) and 0.0 <= r <= 1.0, (text, r)
        assert time.process_time() - t < 30  # bounded work, not a speed claim
    assert fam.reward({"garbage": True}, "a b c") == 0.0
    assert fam.reward({**spec, "opt": "x"}, sol) == 0.0  # a broken spec gives no credit, not a crash


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_solutions_score_one_and_attempts_are_graded(family):
    rng = random.Random(1)
    fam = FAMILIES[family]
    scores = []
    for i in range(60):
        spec, sol = fam.sample(rng, 1 + i % 3)
        assert fam.reward(spec, sol) == 1.0
        assert fam.reward(spec, fam.solve(spec, rng)) == 1.0
        assert fam.reward(spec, " " + fam.solve(spec, rng) + " || score 0.3") == 1.0  # answer extraction
        scores += [fam.reward(spec, fam.attempt(spec, rng)) for _ in range(5)]
    mean = sum(scores) / len(scores)   # attempts are the policy's (noisy) answers: graded, mostly imperfect
    assert 0.02 < mean < 0.95, mean
    assert sum(s >= SOLVED for s in scores) < 0.75 * len(scores)
    assert len({round(s, 2) for s in scores}) > 10


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_random_answers_are_well_formed_and_rarely_optimal(family):
    rng = random.Random(2)
    fam = FAMILIES[family]
    solved, n = 0, 0
    for _ in range(10):
        spec = fam.generate(rng, 3)
        for _ in range(100):
            a = fam.random_answer(spec, rng)
            r = fam.reward(spec, a)
            assert 0.0 < r <= 1.0, (a, r)   # well-formed answers are graded, never rejected outright
            solved += r >= SOLVED
            n += 1
    assert solved / n < 0.01


def test_prompts_are_single_line_short_and_free_of_format_markers():
    rng = random.Random(2)
    for family, fam in FAMILIES.items():
        for d in (1, 2, 3):
            p = fam.prompt(fam.generate(rng, d))
            assert "\n" not in p and "||" not in p and "A:" not in p and len(p) < 260, p
            assert p.startswith(f"{family}: ")


# --- exact optima against brute force, and "solved" exactly at the optimum -------------------------------

def check_solved_iff_optimal(fam, spec, candidates, objective, better):
    """Every candidate: reward 1.0 iff its objective equals the best over all candidates, and a
    strictly better objective never scores lower."""
    vals = [objective(c) for c in candidates]
    best = max(vals) if better == "max" else min(vals)
    scored = sorted(((v, fam.reward(spec, c)) for v, c in zip(vals, candidates)), reverse=(better == "max"))
    for v, r in scored:
        assert (r == 1.0) == math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-9), (v, best, r)
        assert r < SOLVED or r == 1.0
    rewards = [r for _, r in scored]   # best objective first: rewards never increase down the list
    assert all(a >= b - 1e-12 for a, b in zip(rewards, rewards[1:]))
    return best


def test_knapsack_optimum_is_exact():
    fam, rng = get_family("knapsack"), random.Random(3)
    for _ in range(10):
        n = rng.randint(6, 10)
        w, v = [rng.randint(1, 9) for _ in range(n)], [rng.randint(10, 99) for _ in range(n)]
        spec = {"weights": w, "values": v, "cap": round(sum(w) * rng.uniform(0.3, 0.6))}
        feasible = [s for k in range(n + 1) for s in itertools.combinations(range(n), k)
                    if sum(w[i] for i in s) <= spec["cap"]]
        best = check_solved_iff_optimal(fam, spec, [labels(s) for s in feasible],
                                        lambda a: sum(v[i] for i in parse_labels(a) or []), "max")
        assert fam.reward(spec, fam.solve(spec, rng)) == 1.0
        assert best == fam.opt_value(spec)


def test_partition_optimum_is_exact():
    fam, rng = get_family("partition"), random.Random(4)
    for _ in range(10):
        nums = [rng.randrange(100, 1000) for _ in range(rng.randint(6, 10))]
        spec = {"nums": nums}
        groups = [s for k in range(1, len(nums)) for s in itertools.combinations(range(len(nums)), k)]
        best = check_solved_iff_optimal(fam, spec, [labels(s) for s in groups],
                                        lambda a: abs(sum(nums) - 2 * sum(nums[i] for i in parse_labels(a))), "min")
        assert best == fam.opt_value(spec) and fam.reward(spec, fam.solve(spec, rng)) == 1.0


def test_golomb_optimum_is_exact():
    fam, rng = get_family("golomb"), random.Random(5)
    for k, length in ((4, 11), (5, 15)):
        for _ in range(4):
            forbid = sorted(rng.sample(range(1, 12), rng.randint(1, 3)))
            spec = {"k": k, "L": length, "forbid": forbid}
            rulers = [m for m in itertools.combinations(range(length + 1), k)
                      if len({b - a for a, b in itertools.combinations(m, 2)}) == k * (k - 1) // 2
                      and not {b - a for a, b in itertools.combinations(m, 2)} & set(forbid)]
            if not rulers:
                continue
            best = check_solved_iff_optimal(fam, spec, [" ".join(map(str, m)) for m in rulers],
                                            lambda a: max(map(int, a.split())) - min(map(int, a.split())), "min")
            assert best == fam.opt_value(spec) and fam.reward(spec, fam.solve(spec, rng)) == 1.0
    spec = {"k": 5, "L": 20, "forbid": [10]}   # a ruler with a repeated or forbidden difference is never solved
    assert fam.reward(spec, "0 2 7 8 11") == 1.0 == fam.reward(spec, "3 6 7 12 14") and fam.opt_value(spec) == 11
    assert fam.reward(spec, "0 1 4 9 11") < 0.5 and fam.reward(spec, "0 1 2 6 11") < 0.5


def test_tour_optimum_is_exact():
    fam, rng = get_family("tour"), random.Random(6)
    from discover_distill.tasks.tour import tour_length
    for n in (4, 5, 6, 7):
        pts = [[x, y] for x, y in rng.sample([(x, y) for x in range(12) for y in range(12)], n)]
        spec = {"points": pts}
        perms = [(0,) + p for p in itertools.permutations(range(1, n))]
        best = check_solved_iff_optimal(fam, spec, [labels(p) for p in perms],
                                        lambda a: tour_length(pts, parse_labels(a)), "min")
        assert math.isclose(best, fam.opt_value(spec)) and fam.reward(spec, fam.solve(spec, rng)) == 1.0
        # any rotation or direction of an optimal tour is solved
        order = parse_labels(fam.solve(spec, rng))
        assert fam.reward(spec, labels(order[2:] + order[:2])) == 1.0 == fam.reward(spec, labels(order[::-1]))


def test_gridpath_optimum_is_exact():
    fam, rng = get_family("gridpath"), random.Random(7)
    for rows, cols in ((3, 4), (4, 5), (5, 5)):
        grid = ["".join(str(rng.randint(1, 9)) for _ in range(cols)) for _ in range(rows)]
        spec = {"grid": grid}
        paths = [" ".join("d" if i in downs else "r" for i in range(rows + cols - 2))
                 for downs in itertools.combinations(range(rows + cols - 2), rows - 1)]

        def cost(path):
            i = j = 0
            total = int(grid[0][0])
            for m in path.split():
                i, j = (i + 1, j) if m == "d" else (i, j + 1)
                total += int(grid[i][j])
            return total
        best = check_solved_iff_optimal(fam, spec, paths, cost, "min")
        assert best == fam.opt_value(spec) and fam.reward(spec, fam.solve(spec, rng)) == 1.0


def test_assign_optimum_is_exact():
    fam, rng = get_family("assign"), random.Random(8)
    for n in (3, 4, 5, 6):
        costs = ["".join(str(rng.randint(0, 9)) for _ in range(n)) for _ in range(n)]
        spec = {"costs": costs}
        best = check_solved_iff_optimal(fam, spec, [labels(p) for p in itertools.permutations(range(n))],
                                        lambda a: sum(int(costs[r][c]) for r, c in enumerate(parse_labels(a))), "min")
        assert best == fam.opt_value(spec) and fam.reward(spec, fam.solve(spec, rng)) == 1.0


def test_stored_optimum_matches_a_fresh_solve():
    rng = random.Random(9)
    for family, fam in FAMILIES.items():
        for d in (1, 2, 3):
            spec = fam.generate(rng, d)
            fresh = {k: v for k, v in spec.items() if k != "opt"}
            assert fam.opt_value(fresh) == pytest.approx(spec["opt"], rel=1e-12)
            for answer in [fam.solve(spec, rng), fam.attempt(spec, rng), fam.random_answer(spec, rng)]:
                assert fam.reward(fresh, answer) == pytest.approx(fam.reward(spec, answer), rel=1e-9)


# --- graded rewards: partial quality scores, each improvement raises it ------------------------------

def test_graded_rewards_rise_with_quality():
    k = get_family("knapsack")
    spec = {"weights": [3, 4, 5, 2], "values": [40, 50, 60, 10], "cap": 9}   # optimum: b c (110)
    assert k.reward(spec, "b c") == 1.0
    assert 0 < k.reward(spec, "a") < k.reward(spec, "a d") < k.reward(spec, "a b") < k.reward(spec, "a c") < 1.0
    assert k.reward(spec, "a b c") < k.reward(spec, "a b")         # over capacity scores below its feasible part
    assert k.reward(spec, "a b c d") < k.reward(spec, "a b c")     # further over, lower still
    assert k.reward(spec, "b c c") < k.reward(spec, "b c")         # repeated letters cost
    near = {"weights": [1, 1], "values": [5000, 4999], "cap": 1}    # 0.02% short: graded high, still not solved
    assert 0.9 < k.reward(near, "b") < SOLVED and k.reward(near, "a") == 1.0

    p = get_family("partition")
    spec = {"nums": [8, 7, 6, 5, 4]}   # total 30: a perfect split exists (8 7 = 15)
    assert p.reward(spec, "a b") == 1.0 == p.reward(spec, "c d e")
    assert p.reward(spec, "a c") > p.reward(spec, "a e") > p.reward(spec, "a") > p.reward(spec, "e") > 0

    t = get_family("tour")
    spec = {"points": [[0, 0], [10, 0], [10, 10], [0, 10], [5, 12]]}
    assert t.reward(spec, "a b c e d") == 1.0
    assert 1.0 > t.reward(spec, "a b e c d") > t.reward(spec, "a c b e d") > 0
    assert t.reward(spec, "a b c e") < t.reward(spec, "a b c e d")   # a point left out costs

    g = get_family("gridpath")
    spec = {"grid": ["119", "919", "911"]}   # cheapest: r d d r (5); r d r d 13; r r d d 21
    assert g.reward(spec, "r d d r") == 1.0 > g.reward(spec, "r d r d") > g.reward(spec, "r r d d") > 0
    assert 0 < g.reward(spec, "r d d") < 0.5 and 0 < g.reward(spec, "r d d r r") < 0.5   # short or off the grid

    a = get_family("assign")
    spec = {"costs": ["159", "915", "591"]}   # optimum a b c (3); a c b 15; c a b 27
    assert a.reward(spec, "a b c") == 1.0
    assert 1.0 > a.reward(spec, "a c b") > a.reward(spec, "c a b") > 0
    assert a.reward(spec, "a a c") < a.reward(spec, "a b c")

    gol = get_family("golomb")
    spec = {"k": 4, "L": 12, "forbid": [2]}   # every ruler of span 6 or 7 measures 2: optimum 8 (0 1 5 8)
    assert gol.opt_value(spec) == 8 and gol.reward(spec, gol.solve(spec, random.Random(0))) == 1.0
    assert gol.reward(spec, "0 1 5 8") == 1.0 > gol.reward(spec, "0 1 6 9") > gol.reward(spec, "0 1 5 11") > 0
    assert gol.reward(spec, "0 1 5 11") > gol.reward(spec, "0 3 4 12") > 0
    assert gol.reward(spec, "0 1 4 6") < gol.reward(spec, "0 1 6 9")   # shorter, but it measures 2


# --- the split is by canonical instance ---------------------------------------------------------------

def equivalents(family, spec, rng):
    """Instances equivalent to spec (relabelled, permuted, mirrored), with the optimum left to recompute."""
    s = {k: v for k, v in spec.items() if k != "opt"}
    if family == "knapsack":
        idx = rng.sample(range(len(s["weights"])), len(s["weights"]))
        yield {**s, "weights": [s["weights"][i] for i in idx], "values": [s["values"][i] for i in idx]}
    elif family == "partition":
        yield {"nums": rng.sample(s["nums"], len(s["nums"]))}
    elif family == "golomb":
        yield {**s, "forbid": s["forbid"][::-1]}
    elif family == "tour":
        pts = rng.sample(s["points"], len(s["points"]))
        yield {"points": [[x + 3, y + 1] for x, y in pts]}          # relabelled and translated
        yield {"points": [[y, 30 - x] for x, y in pts]}             # turned 90 degrees
        yield {"points": [[30 - x, y] for x, y in pts]}             # mirrored
    elif family == "gridpath":
        g = s["grid"]
        yield {"grid": ["".join(c) for c in zip(*g)]}               # transposed: r and d swap
        yield {"grid": [r[::-1] for r in g[::-1]]}                  # turned 180 degrees: the path reversed
    elif family == "assign":
        rows = rng.sample(s["costs"], len(s["costs"]))
        cols = rng.sample(range(len(rows)), len(rows))
        yield {"costs": ["".join(r[c] for c in cols) for r in rows]}
        yield {"costs": ["".join(c) for c in zip(*s["costs"])]}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_equivalent_instances_fall_on_the_same_side_of_the_split(family):
    rng = random.Random(10)
    fam = FAMILIES[family]
    for i in range(30):
        spec = fam.generate(rng, 1 + i % 3)
        assert fam.canonical(spec) == fam.canonical({k: v for k, v in spec.items() if k != "opt"})
        for eq in equivalents(family, spec, rng):
            assert fam.canonical(eq) == fam.canonical(spec), (spec, eq)
            assert split_of(family, eq) == split_of(family, spec)
            sol = fam.solve(eq, rng)   # the same problem: the same optimum
            assert fam.reward(eq, sol) == 1.0
            assert math.isclose(fam.opt_value(eq), spec["opt"])
    other = fam.generate(rng, 2)
    assert fam.canonical(other) != fam.canonical(fam.generate(rng, 2))


def test_split_is_deterministic_and_make_task_respects_it():
    rng = random.Random(3)
    for family in FAMILIES:
        for split in ("train", "heldout"):
            task = make_task(family, rng, 2, split)
            assert task["split"] == split == split_of(family, task["spec"])
            assert TASK_ID_RE.match(task["task_id"]) and task["task_id"].startswith(f"{family}-{split}-")
            assert len(task["task_id"]) == len(f"{family}-{split}-") + 12
            assert reward_for_task(task, FAMILIES[family].solve(task["spec"], rng)) == 1.0
    shares = [split_of("knapsack", FAMILIES["knapsack"].generate(rng, 2)) == "heldout" for _ in range(2000)]
    assert 0.15 < sum(shares) / len(shares) < 0.25
    with pytest.raises(ValueError, match="known"):
        get_family("chess")
    assert reward_for_task({"family": "chess"}, "x") == 0.0


def test_sample_instance_with_solution():
    rng = random.Random(4)
    for family, fam in FAMILIES.items():
        spec, sol = sample_instance(family, rng, 3, "train", with_solution=True)
        assert split_of(family, spec) == "train" and fam.reward(spec, sol) == 1.0
        assert sample_instance(family, rng, 3, "heldout")[1] is None


def test_label_parsing():
    assert parse_labels("a c, d") == [0, 2, 3] and parse_labels("acd") == [0, 2, 3]
    assert parse_labels("a 1") is None and parse_labels("") is None and parse_labels("A") is None
    assert parse_labels("a " * 65) is None and labels([0, 25]) == "a z" and len(LABELS) == 26


# typical malformed answers per family, built from an instance: (spec, rng) -> answers
def _malformed(family, spec):
    n = {"knapsack": len(spec.get("weights", [])), "partition": len(spec.get("nums", [])),
         "tour": len(spec.get("points", [])), "assign": len(spec.get("costs", []))}.get(family)
    common = ["", "  ", "|| a", "1/0", "eval(1)", "ünï", "A B C"]
    if n:  # letter answers: an unknown letter, a repeat, a digit
        unknown, perm = LABELS[n], labels(range(n))
        out = common + [f"a {unknown}", "a a", "a 1", perm + " " + unknown, "a b a"]
        if family in ("tour", "assign"):  # a permutation of all letters is required
            out += [labels(range(n - 1)), perm + " a", labels([0] * n)]
        return out
    if family == "gridpath":
        rows, cols = len(spec["grid"]), len(spec["grid"][0])
        ok = ["d"] * (rows - 1) + ["r"] * (cols - 1)
        return common + [" ".join(ok[:-1]), " ".join(ok + ["r"]), " ".join(ok + ["x"]), "r l d", "1 2"]
    if family == "golomb":
        k, L = spec["k"], spec["L"]
        ok = list(range(k))
        return common + [" ".join(map(str, ok[:-1])), " ".join(map(str, ok + [L])), " ".join(map(str, [0] * k)),
                         " ".join(map(str, ok[:-1] + [L + 1])), " ".join(map(str, ok[:-1] + [-1])), "a b c"]
    raise AssertionError(family)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_well_formed_accepts_solutions_and_random_answers_and_rejects_malformed_ones(family):
    rng = random.Random(5)
    fam = FAMILIES[family]
    for i in range(30):
        spec = fam.generate(rng, 1 + i % 3)
        for a in [fam.solve(spec, rng), fam.random_answer(spec, rng), fam.random_answer(spec, rng)]:
            assert fam.well_formed(spec, a) is True, a
            assert fam.well_formed(spec, " " + a + " || score 0.3") is True  # a completion: the answer is extracted
        for a in _malformed(family, spec):
            assert fam.well_formed(spec, a) is False, a
    for text in FUZZ:  # never raises, whatever the string or spec
        assert fam.well_formed(spec, text) in (True, False)
    assert fam.well_formed({"garbage": True}, "a b c") is False
    assert fam.well_formed(spec, None) is False


def test_well_formed_ignores_quality():
    """Over capacity (knapsack), a forbidden difference (golomb): poor, not malformed."""
    knap = {"weights": [5, 5, 5], "values": [10, 20, 30], "cap": 5, "opt": 30}
    assert get_family("knapsack").well_formed(knap, "a b c") and get_family("knapsack").reward(knap, "a b c") < 0.5
    golomb = {"k": 3, "L": 10, "forbid": [1], "opt": 4}
    assert get_family("golomb").well_formed(golomb, "0 1 3") and get_family("golomb").reward(golomb, "0 1 3") < 1.0
    assert get_family("partition").well_formed({"nums": [3, 4, 5], "opt": 2}, "a b c")


def test_random_answers_are_never_empty():
    """An empty subset is malformed (no reward): random search must never draw one."""
    rng = random.Random(6)
    for family in ("knapsack", "partition"):
        fam = get_family(family)
        spec = fam.generate(rng, 1)
        assert all(fam.well_formed(spec, fam.random_answer(spec, rng)) for _ in range(20000))
