"""Each family's constructive policy (heuristic, attempt, policy_step): its answers are well formed
and beat random answers, its noise knob makes them diverse and worse, each step drill is a pure
function of the prompt and the question (checked here by re-reading the prompt text, not the
spec), and the verifiers that read a set or a closed tour give the same reward to any order."""
import itertools
import random
import re
import statistics

import pytest

from discover_distill.tasks import CELL_FORMATS, FAMILIES, sample_instance, with_cells
from discover_distill.tasks.base import LABELS, parse_labels


def heldout(family, n, difficulty, seed=0):
    rng = random.Random(seed)
    return [sample_instance(family, rng, difficulty, "heldout")[0] for _ in range(n)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_policy_answers_are_well_formed_and_beat_random_answers(family):
    fam = FAMILIES[family]
    for d in (1, 2, 3):
        specs = heldout(family, 40, d)
        rng = random.Random(1)
        policy = [fam.heuristic(s, rng) for s in specs]
        assert all(fam.well_formed(s, a) for s, a in zip(specs, policy)), family
        rand = statistics.fmean(fam.reward(s, fam.random_answer(s, rng)) for s in specs for _ in range(10))
        mean = statistics.fmean(fam.reward(s, a) for s, a in zip(specs, policy))
        assert mean > 1.5 * rand and mean > rand + 0.02, (family, d, mean, rand)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_policy_noise_zero_is_deterministic_and_noise_diversifies_and_costs_reward(family):
    fam = FAMILIES[family]
    specs = heldout(family, 30, 2, seed=3)
    for s in specs:   # noise 0 draws nothing: the same answer from any rng state
        assert fam.heuristic(s, random.Random(0)) == fam.heuristic(s, random.Random(99))
    rng = random.Random(4)
    clean = statistics.fmean(fam.reward(s, fam.heuristic(s, rng)) for s in specs)
    noisy = [[fam.heuristic(s, rng, 0.5) for _ in range(8)] for s in specs]
    assert all(fam.well_formed(s, a) for s, row in zip(specs, noisy) for a in row)
    assert statistics.fmean(len(set(row)) for row in noisy) > 2
    assert statistics.fmean(fam.reward(s, a) for s, row in zip(specs, noisy) for a in row) < clean
    attempts = [fam.attempt(s, rng) for s in specs for _ in range(4)]
    assert len(set(attempts)) > len(specs)   # noise-free half the time, noisy the rest


# --- step drills, re-derived from the prompt text --------------------------------------------------

def _letters(text):
    return [] if text == "none" else parse_labels(text)


def knapsack_step(prompt, question):
    items = [(ord(c) - 97, int(w), int(v)) for c, w, v in re.findall(r" ([a-z])(\d+)/(\d+)", prompt)]
    cap = int(re.search(r"capacity (\d+)", prompt).group(1))
    taken, room = re.fullmatch(r"taken (.+), room (\d+): best value per weight that fits\?", question).groups()
    taken = _letters(taken)
    assert int(room) == cap - sum(w for i, w, _ in items if i in taken)
    fits = [(v / w, -i) for i, w, v in items if i not in taken and w <= int(room)]
    return LABELS[-max(fits)[1]]


def assign_rows(prompt):
    """The cost rows as digit strings, from a plain prompt ("3982597 9190748") or a labelled one
    ("a3 b9 ...; a9 b1 ..."), whose labels must run a, b, c, ... in every row."""
    text = prompt.split("cost rows ")[1].split(",")[0]
    if ";" not in text:
        return text.split()
    rows = []
    for row in text.split(";"):
        cells = row.split()
        assert [c[0] for c in cells] == list(LABELS[:len(cells)]), row
        rows.append("".join(c[1:] for c in cells))
    return rows


def assign_step(prompt, question):
    rows = assign_rows(prompt)
    row, used = re.fullmatch(r"row (\d+) cheapest free column, used (.+)\?", question).groups()
    used = _letters(used)
    costs = rows[int(row) - 1]
    return LABELS[min((int(costs[c]), c) for c in range(len(costs)) if c not in used)[1]]


def gridpath_step(prompt, question):
    grid = prompt.split("rows ")[1].split(",")[0].split()
    if question.startswith("cell after "):
        moves = question[len("cell after "):-1]
        i = j = 0
        for m in ([] if moves == "no moves" else moves.split()):
            i, j = (i + 1, j) if m == "d" else (i, j + 1)
        return f"row {i + 1} column {j + 1}"
    i, j = (int(x) - 1 for x in re.fullmatch(r"from row (\d+) column (\d+), cheaper next cell\?", question).groups())
    if i == len(grid) - 1 or j == len(grid[0]) - 1:
        return "r" if i == len(grid) - 1 else "d"
    return "d" if int(grid[i + 1][j]) < int(grid[i][j + 1]) else "r"


def partition_step(prompt, question):
    nums = {ord(c) - 97: int(x) for c, x in re.findall(r" ([a-z])(\d+)", prompt.split(" into ")[0])}
    if question.startswith("largest number not in "):
        placed = _letters(question[len("largest number not in "):-1])
        return LABELS[max((i for i in nums if i not in placed), key=lambda i: (nums[i], -i))]
    a, b = (_letters(g) for g in re.fullmatch(r"lighter group, (.+) or (.+)\?", question).groups())
    light = a if sum(nums[i] for i in a) <= sum(nums[i] for i in b) else b
    return " ".join(LABELS[i] for i in light) or "none"


def tour_step(prompt, question):
    pts = {ord(c) - 97: (int(x), int(y)) for c, x, y in re.findall(r" ([a-z])(\d+),(\d+)", prompt)}
    side, cut, visited = re.fullmatch(r"(leftmost with y at most|rightmost with y above) (\d+) not in (.+)\?",
                                      question).groups()
    left = [i for i in pts if i not in (set() if visited == "none" else set(_letters(visited)))]
    if side.startswith("leftmost"):
        return LABELS[min((pts[i][0], i) for i in left if pts[i][1] <= int(cut))[1]]
    assert all(pts[i][1] > int(cut) for i in left)
    return LABELS[min((-pts[i][0], i) for i in left)[1]]


def golomb_step(prompt, question):
    length = int(re.search(r"from 0 to (\d+)", prompt).group(1))
    forbid = {int(x) for x in prompt.split("none equal to ")[1].split(",")[0].split()}
    marks = [int(x) for x in re.fullmatch(r"next admissible mark after (.+)\?", question).group(1).split()]
    diffs = {b - a for a, b in itertools.combinations(marks, 2)}
    for m in range(marks[-1] + 1, length + 1):
        new = [m - x for x in marks]
        if not (set(new) & (diffs | forbid)):
            return str(m)
    return "none"


STEP_CHECKERS = {"knapsack": knapsack_step, "assign": assign_step, "gridpath": gridpath_step,
                 "partition": partition_step, "tour": tour_step, "golomb": golomb_step}


@pytest.mark.parametrize("cells", CELL_FORMATS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_step_drills_are_right_and_a_function_of_the_prompt(family, cells):
    fam = FAMILIES[family]
    rng = random.Random(5)
    questions = set()
    for d in (1, 2, 3):
        for spec in heldout(family, 30, d, seed=d):
            spec = with_cells(family, spec, cells)
            for _ in range(3):
                question, answer = fam.policy_step(spec, rng)
                assert "\n" not in question + answer and "||" not in question + answer and " A: " not in question
                assert answer == STEP_CHECKERS[family](fam.prompt(spec), question), (question, answer)
                questions.add(question.split()[0])
    assert len(questions) >= 1


def test_labelled_cells_change_only_the_prompt_of_the_families_that_have_them():
    for family, fam in FAMILIES.items():
        for spec in heldout(family, 10, 1, seed=7):
            lab = with_cells(family, spec, "labelled")
            assert fam.canonical(lab) == fam.canonical(spec) and fam.opt_value(lab) == fam.opt_value(spec)
            answer = fam.heuristic(spec, random.Random(0))
            assert fam.reward(lab, answer) == fam.reward(spec, answer)
            if "labelled" in fam.cell_formats:
                assert fam.prompt(lab) != fam.prompt(spec) and lab["cells"] == "labelled"
            else:
                assert lab is spec   # no labelled format: the spec and its prompt stay plain
    spec = heldout("assign", 1, 1)[0]
    assert assign_rows(FAMILIES["assign"].prompt(with_cells("assign", spec, "labelled"))) == spec["costs"]
    assert with_cells("assign", spec, "plain") is spec
    with pytest.raises(ValueError, match="cells must be one of"):
        with_cells("assign", spec, "bold")


# --- verifiers that read a set (or a closed tour) do not care about order ---------------------------

def test_order_free_families_are_the_set_valued_ones():
    assert {f for f, fam in FAMILIES.items() if fam.order_free} == {"knapsack", "partition", "golomb"}
    assert FAMILIES["knapsack"].sorted_answer("k a f") == "a f k"
    assert FAMILIES["golomb"].sorted_answer("0 11 3 7") == "0 3 7 11"
    assert FAMILIES["tour"].sorted_answer("a c b") == "a c b"   # a tour's order is its answer


@pytest.mark.parametrize("family", ["knapsack", "partition", "golomb", "tour"])
def test_order_free_verifiers_give_any_order_the_same_reward(family):
    fam = FAMILIES[family]
    rng = random.Random(6)
    for spec in heldout(family, 20, 2, seed=7):
        for answer in (fam.heuristic(spec, rng, 0.3), fam.solve(spec, rng), fam.random_answer(spec, rng)):
            parts, r = answer.split(), fam.reward(spec, answer)
            if family == "tour":   # a closed tour: any rotation, either direction
                k = rng.randrange(len(parts))
                orders = [parts[k:] + parts[:k], parts[::-1]]
            else:
                orders = [rng.sample(parts, len(parts)) for _ in range(3)]
            for order in orders:
                assert fam.reward(spec, " ".join(order)) == pytest.approx(r, abs=1e-12), (answer, order)
            assert fam.reward(spec, fam.sorted_answer(answer)) == pytest.approx(r, abs=1e-12)
