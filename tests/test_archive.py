"""The PUCT archive replays the official TTT-Discover sampler (test-time-training/discover,
tinker_cookbook/recipes/ttt/sampler.py, PUCTSampler). Expected values below are worked out by
hand from that code: score = Q + c*scale*P*sqrt(1 + T)/(1 + n), c = 1, scale = reward range over
the non-initial states (floor 1e-6), P = (M - rank)/(M(M+1)/2), n and T counted per returning
rollout up the lineage, flush (top-2 children per parent, cap) before each selection."""
import math

import pytest

from discover_distill.archive import PuctArchive


def visits(a):
    return {sid: s.visits for sid, s in a.states.items()}


def test_official_defaults_and_a_lone_empty_state():
    a = PuctArchive()
    assert (a.cap, a.children_per_parent, a.c) == (1000, 2, 1.0)  # max_buffer_size, topk_children, puct_c
    assert len(a) == 1 and a.states[0].solution is None
    # the empty state alone: scale = the floor; several start states asked for, one exists
    assert a.scale() == 1e-6
    assert [s.id for s in a.select(4)] == [0]
    assert a.states[0].visits == 0 and a.total_visits == 0  # selecting counts nothing


def test_scale_is_the_range_of_the_non_initial_rewards_floored():
    a = PuctArchive(empty_reward=0.0)
    a.insert(0, "x", 5.0)
    assert a.scale() == 1e-6       # one non-initial reward: range 0 -> floor (the empty state's 0 not counted)
    a.insert(0, "y", 7.0)
    assert a.scale() == pytest.approx(2.0)  # 7 - 5, not 7 - 0


def test_scripted_replay_scores_visits_and_selections():
    a = PuctArchive()
    # step 1: only the empty state exists
    assert [s.id for s in a.select(4)] == [0]
    a.insert(0, "a", 0.5)  # id 1
    a.insert(0, "b", 0.2)  # id 2
    a.insert(0, "c", 0.9)  # id 3
    # every return adds 1 to n of the start state and its ancestors, and 1 to T
    assert visits(a) == {0: 3, 1: 0, 2: 0, 3: 0} and a.total_visits == 3
    assert a.states[0].best_child == 0.9

    # step 2: flush keeps the best 2 children of the empty state (c 0.9, a 0.5; b goes), in that order
    sel = a.select(2)
    assert list(a.states) == [0, 3, 1]
    # scale = 0.9 - 0.5 = 0.4; rewards root 0, c .9, a .5 -> ranks c 0, a 1, root 2 -> P = 3/6, 2/6, 1/6
    # sqrt(1 + T) = sqrt(4) = 2, so c*scale*sqrt(1+T) = 0.8
    assert a.scale() == pytest.approx(0.4)
    assert a.priors() == pytest.approx({3: 3 / 6, 1: 2 / 6, 0: 1 / 6})
    assert a.scores() == pytest.approx({
        0: 0.9 + 0.8 * (1 / 6) / (1 + 3),  # root: expanded, Q = m = 0.9; n = 3  -> 0.9333
        3: 0.9 + 0.8 * (3 / 6) / 1,        # c                                   -> 1.3
        1: 0.5 + 0.8 * (2 / 6) / 1,        # a                                   -> 0.7667
    })
    # ranking c, root, a: c is picked, which blocks its ancestor root; a is next
    assert [s.id for s in sel] == [3, 1]
    a.insert(3, "d", 1.2)                 # id 4, child of c
    a.insert(3, "e", 0.4)                 # id 5, child of c
    a.insert(1, "f", 0.7)                 # id 6, child of a
    assert a.insert(1, "c", 0.9) is None  # duplicate: not added, but m(a) and the visits still count
    # n: root 3 + 4 = 7; c 2; a 2 (the duplicate included); T = 7
    assert visits(a) == {0: 7, 3: 2, 1: 2, 4: 0, 5: 0, 6: 0} and a.total_visits == 7
    assert (a.states[3].best_child, a.states[1].best_child) == (1.2, 0.9)

    # step 3: nothing to prune (c: d, e; a: f). scale = 1.2 - 0.4 = 0.8
    # ranks d 1.2, c .9, f .7, a .5, e .4, root 0 -> weights 6..1 over 21; 0.8 * sqrt(1 + 7) = 2.2627
    sel = a.select(3)
    x = 0.8 * math.sqrt(8)
    assert a.scores() == pytest.approx({
        0: 0.9 + x * (1 / 21) / 8,  # 0.9135
        3: 1.2 + x * (5 / 21) / 3,  # c: Q = m = 1.2 -> 1.3796
        1: 0.9 + x * (3 / 21) / 3,  # a: Q = m = 0.9 -> 1.0078
        4: 1.2 + x * (6 / 21),      # d 1.8465
        5: 0.4 + x * (2 / 21),      # e 0.6155
        6: 0.7 + x * (4 / 21),      # f 1.1310
    })
    # ranking d, c, f, a, root, e: d blocks c and root; f blocks a; e (c's other child) is free
    assert [s.id for s in sel] == [4, 6, 5]
    a.insert(4, "g", 1.5)  # id 7: d -> c -> root
    a.insert(6, "h", 0.1)  # id 8: f -> a -> root
    a.insert(5, "i", 0.3)  # id 9: e -> c -> root
    # n: root 10; c 2 + 1 (via d) + 1 (via e) = 4; a 2 + 1 (via f) = 3; d, e, f 1; T = 10
    assert visits(a) == {0: 10, 3: 4, 1: 3, 4: 1, 5: 1, 6: 1, 7: 0, 8: 0, 9: 0} and a.total_visits == 10

    # step 4: scale = 1.5 - 0.1 = 1.4; ranks g 1.5, d 1.2, c .9, f .7, a .5, e .4, i .3, h .1, root 0
    # -> weights 9..1 over 45; 1.4 * sqrt(1 + 10) = 4.6433
    sel = a.select(4)
    y = 1.4 * math.sqrt(11)
    assert a.scores() == pytest.approx({
        0: 0.9 + y * (1 / 45) / 11,  # 0.9094
        3: 1.2 + y * (7 / 45) / 5,   # 1.3445
        1: 0.9 + y * (5 / 45) / 4,   # 1.0290
        4: 1.5 + y * (8 / 45) / 2,   # d: Q = m = 1.5 -> 1.9127
        5: 0.3 + y * (4 / 45) / 2,   # e: Q = m = 0.3, below its own 0.4 -> 0.5064
        6: 0.1 + y * (6 / 45) / 2,   # f: Q = m = 0.1 -> 0.4096
        7: 1.5 + y * (9 / 45),       # g 2.4287
        8: 0.1 + y * (2 / 45),       # h 0.3064
        9: 0.3 + y * (3 / 45),       # i 0.6096
    })
    # ranking g, d, c, a, root, i, e, f, h: g blocks d, c, root; a blocks f, h; i blocks e.
    # Four asked for, three exist without a shared lineage.
    assert [s.id for s in sel] == [7, 1, 9]


def test_failed_rollout_counts_a_visit_and_nothing_else():
    a = PuctArchive()
    x = a.insert(0, "x", 1.0)
    a.record_failed(x.id)
    assert visits(a) == {0: 2, x.id: 1} and a.total_visits == 2
    assert x.best_child is None and len(a) == 2
    # n(x) > 0 but no child came back: Q stays its own reward. scale = floor, P(x) = 2/3, sqrt(1 + 2)
    assert a.scores()[x.id] == pytest.approx(1.0 + 1e-6 * (2 / 3) * math.sqrt(3) / 2)


def test_flush_keeps_the_best_children_per_parent_then_the_cap():
    a = PuctArchive(cap=4, children_per_parent=2)
    a.insert(0, "a", 0.3)  # id 1
    a.insert(0, "b", 0.8)  # id 2
    a.insert(0, "c", 0.5)  # id 3
    assert len(a) == 4     # pruning waits for the end of the step
    a.flush()
    assert list(a.states) == [0, 2, 3]  # a, the third child, goes; the kept ones best first
    assert a.insert(0, "a", 0.3) is not None  # a pruned solution may come back (id 4)
    a.flush()
    assert list(a.states) == [0, 2, 3]
    a.insert(2, "d", 0.9)  # id 5
    a.insert(2, "e", 0.1)  # id 6
    a.insert(3, "f", 0.6)  # id 7
    a.insert(3, "g", 0.6)  # id 8
    a.flush()
    # 7 states > cap 4: keep the empty state, then d .9, b .8 and, of the tied f/g, the later g
    assert list(a.states) == [0, 2, 5, 8]
    assert a.lineage(8) == [8, 3, 0]  # c was evicted; the lineage still names it
    a.insert(8, "h", 0.2)  # the 9th return from the root's lineage; c's count is gone with c
    assert visits(a) == {0: 9, 2: 2, 5: 0, 8: 1, 9: 0} and a.total_visits == 9


def test_children_per_parent_zero_keeps_all_and_cap_keeps_the_root():
    a = PuctArchive(cap=3, children_per_parent=0)
    for sol, r in (("a", 0.5), ("b", 0.1), ("c", 0.7)):
        a.insert(0, sol, r)
    a.flush()
    assert sorted(s.solution for s in a.states.values() if s.solution) == ["a", "c"] and 0 in a.states


def test_insert_lineage_dedupe_and_best_child():
    a = PuctArchive(cap=8)
    c1 = a.insert(0, "a", 0.5)
    c2 = a.insert(c1.id, "b", 0.9)
    assert a.insert(c1.id, "a", 0.5) is None and len(a) == 3
    assert a.states[c1.id].best_child == 0.9 and a.states[0].best_child == 0.5
    assert a.lineage(c2.id) == [c2.id, c1.id, 0]
    assert a.best().solution == "b"


def test_state_dict_roundtrip():
    a = PuctArchive(cap=5)
    a.insert(0, "a", 0.5)
    a.insert(0, "b", 0.7)
    a.select(2)
    a.insert(2, "c", 0.9)
    b = PuctArchive.from_state_dict(a.state_dict())
    assert list(b.states) == list(a.states) and b.scores() == a.scores() and visits(b) == visits(a)
    assert b.insert(0, "a", 0.5) is None and b.lineage(3) == [3, 2, 0]
    assert [s.id for s in b.select(2)] == [s.id for s in a.select(2)]
