import math

import pytest

from discover_distill.archive import PuctArchive


def test_seeded_with_empty_state_and_first_selection():
    a = PuctArchive(cap=8)
    assert len(a) == 1 and a.states[0].solution is None
    [s] = a.select(1)
    assert s.id == 0 and s.visits == 1 and a.total_visits == 1


def test_scores_hand_computed():
    a = PuctArchive(cap=8)
    a.select(1)                                   # T = 1, n(root) = 1
    a.insert(0, "x", 0.2)                         # id 1
    a.insert(0, "y", 0.8)                         # id 2
    # rewards: root 0.0, x 0.2, y 0.8 -> ranks y(0) x(1) root(2); priors 3/6, 2/6, 1/6; scale 0.8
    p = a.priors()
    assert p == pytest.approx({2: 0.5, 1: 1 / 3, 0: 1 / 6})
    explore = 1.0 * 0.8 * math.sqrt(1 + 1)
    s = a.scores()
    assert s[0] == pytest.approx(0.8 + explore * (1 / 6) / 2)  # root expanded: Q = m(root) = 0.8
    assert s[1] == pytest.approx(0.2 + explore * (1 / 3) / 1)
    assert s[2] == pytest.approx(0.8 + explore * 0.5 / 1)
    assert [st.id for st in a.select(2)] == [2, 0]  # the expanded root (Q = 0.8) outranks x


def test_insert_lineage_dedupe_and_best_child():
    a = PuctArchive(cap=8)
    c1 = a.insert(0, "a", 0.5)
    c2 = a.insert(c1.id, "b", 0.9)
    assert a.insert(c1.id, "a", 0.5) is None and len(a) == 3
    assert a.states[c1.id].best_child == 0.9 and a.states[0].best_child == 0.5
    assert a.lineage(c2.id) == [c2.id, c1.id, 0]
    assert a.best().solution == "b"


def test_cap_evicts_lowest_but_never_root():
    a = PuctArchive(cap=3)
    a.insert(0, "a", 0.5)
    a.insert(0, "b", 0.1)
    a.insert(0, "c", 0.7)
    assert len(a) == 3 and 0 in a.states
    assert sorted(s.solution for s in a.states.values() if s.solution) == ["a", "c"]
    a.insert(0, "b", 0.1)  # an evicted solution may come back, and is evicted again
    assert len(a) == 3


def test_state_dict_roundtrip():
    a = PuctArchive(cap=5)
    a.select(1)
    a.insert(0, "a", 0.5)
    b = PuctArchive.from_state_dict(a.state_dict())
    assert b.scores() == a.scores() and b.insert(0, "a", 0.5) is None
