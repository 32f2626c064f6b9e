"""discover_distill.registry on hand-made suite run directories: the curves against compute (each
arm's FLOPs curve equals what its run recorded, the levels within F FLOPs, random search and the
policy at the sampling FLOPs of their N answers, the FLOPs to reach a reward, the crossover of TTT
main and best-of-N with its bootstrap CI), the share of tasks beating the policy's own answer, and
the loading the budget tables share with them. Every expected number is worked out here by hand
from the written files, not by the registry's code."""
import os

import pytest

from conftest import wjson, wjsonl
from discover_distill import registry as R

G = 1e9
TASKS = [("a0", "fa"), ("a1", "fa"), ("b0", "fb"), ("b1", "fb")]
# best-of-N (FLOPs-matched): a round of 8 samples every 10 GFLOPs, FLOPs recorded on the curve
BON_FLOPS = [10 * G * k for k in range(1, 9)]
BON = {"a0": [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3], "a1": [0.5] * 8,
       "b0": [0.0, 0.2, 0.2, 0.2, 0.2, 0.4, 0.4, 1.0], "b1": [0.3] * 8}
# TTT main: FLOPs only in metrics.jsonl (a run from before the curves carried them); b1 stops after 2 steps
TTT_FLOPS = [30 * G, 60 * G, 90 * G]
TTT = {"a0": [0.0, 0.6, 0.9], "a1": [0.4, 0.6, 1.0], "b0": [0.2, 0.5, 0.7], "b1": [0.1, 0.6]}
# ttt_lr0: sampling only, FLOPs on the curve
LR0_FLOPS = [15 * G, 30 * G, 45 * G]
LR0 = {"a0": [0.1, 0.2, 0.2], "a1": [0.5, 0.5, 0.6], "b0": [0.0, 0.0, 0.3], "b1": [0.3, 0.3, 0.3]}
def policy(n, best, solve, **answer):
    return {"n_tasks": n, "mean_best": best, "solve_rate": solve, **answer}


AUDIT = {"overall": {"heldout": {"n_tasks": 4, "mean_best": {"1": 0.05, "8": 0.2, "64": 0.6},
                                 "solve_rate": {"1": 0.0, "8": 0.0, "64": 0.25},
                                 "policy": policy(4, {"1": 0.3, "8": 0.5, "64": 0.7}, {"1": 0.0, "8": 0.25, "64": 0.5},
                                                  answer_reward=0.35, answer_solve_rate=0.25)}},
         "cells": [{"split": "heldout", "family": "fa", "difficulty": 1, "n_tasks": 2,
                    "mean_best": {"8": 0.3, "64": 0.7}, "solve_rate": {"8": 0.0, "64": 0.5},
                    "policy": policy(2, {"8": 0.5, "64": 0.9}, {"8": 0.0, "64": 0.5})},
                   {"split": "heldout", "family": "fb", "difficulty": 1, "n_tasks": 1,
                    "mean_best": {"8": 0.1, "64": 0.4}, "solve_rate": {"8": 0.0, "64": 0.0},
                    "policy": policy(1, {"8": 0.4, "64": 0.6}, {"8": 0.0, "64": 0.0})},
                   {"split": "heldout", "family": "fb", "difficulty": 2, "n_tasks": 3,
                    "mean_best": {"8": 0.2, "64": 0.6}, "solve_rate": {"8": 0.0, "64": 0.0},
                    "policy": policy(3, {"8": 0.2, "64": 0.4}, {"8": 0.0, "64": 0.0})},
                   {"split": "train", "family": "fa", "difficulty": 1, "n_tasks": 9,
                    "mean_best": {"8": 0.9, "64": 0.9}, "solve_rate": {"8": 0.9, "64": 0.9},
                    "policy": policy(9, {"8": 1.0, "64": 1.0}, {"8": 1.0, "64": 1.0})}],
         # the policy's own answer per task: b1 has none (left out); zz is in no run
         "policy_answer_reward": {"a0": 0.3, "a1": 0.5, "b0": 0.5, "b1": None, "zz": 0.1}}
# the audit from before the policy baseline: random search only
OLD_AUDIT = {k: v for k, v in AUDIT.items() if k != "policy_answer_reward"}
OLD_AUDIT["overall"] = {"heldout": {k: v for k, v in AUDIT["overall"]["heldout"].items() if k != "policy"}}
OLD_AUDIT["cells"] = [{k: v for k, v in c.items() if k != "policy"} for c in AUDIT["cells"]]






def write_run(suite, name, curves, flops, *, mode, config, scale=1.0, where="curve", samples_per_point=8):
    """A run directory as run_discovery_suite.py writes it; the FLOPs go on the curve ("curve"),
    only into metrics.jsonl ("metrics") or nowhere but the row's total ("none")."""
    rows = []
    for tid, fam in TASKS:
        bests = [scale * b for b in curves[tid]]
        pts = [{"samples": samples_per_point * (k + 1), "best_so_far": b, "flops": flops[k]}
               for k, b in enumerate(bests)]
        row = {"task_id": tid, "family": fam, "mode": mode, "best_reward": bests[-1], "solved": bests[-1] >= 0.99,
               "samples": pts[-1]["samples"], "flops": pts[-1]["flops"],
               "best_curve": pts if where == "curve" else [{k: p[k] for k in ("samples", "best_so_far")} for p in pts]}
        if where == "metrics":
            wjsonl(os.path.join(suite, name, tid, "metrics.jsonl"),
                   [{"step": k + 1, "mean_reward": 0.1, **p} for k, p in enumerate(pts)])
        wjson(os.path.join(suite, name, tid, "result.json"), row)
        rows.append(row)
    wjsonl(os.path.join(suite, name, "summary.jsonl"), rows)
    wjson(os.path.join(suite, name, "config.json"), {"args": {**config, "mode": mode}})


def make_flops_suite(root, seeds=(0,), ttt=None, audit=True):
    """Seed s scales every reward by 1 / (s + 1); `audit` True (AUDIT), False (none) or the audit to
    write. Returns the suite directory."""
    suite, held = str(root / "suite"), str(root / "tasks" / "heldout.jsonl")
    wjsonl(held, [{"task_id": t, "family": f} for t, f in TASKS])
    if audit:
        wjson(os.path.join(os.path.dirname(held), "audit.json"), AUDIT if audit is True else audit)
    cfg = {"tasks": held, "ttt_steps": 3, "rollouts": 8}
    for s in seeds:
        k = 1.0 / (s + 1)
        write_run(suite, f"base_bestofn_flops_seed{s}", BON, BON_FLOPS, mode="bestofn", config=cfg, scale=k)
        # the samples-matched run: the first 3 rounds, an old run without FLOPs on its curve
        write_run(suite, f"base_bestofn_seed{s}", {t: v[:3] for t, v in BON.items()}, BON_FLOPS[:3], mode="bestofn",
                  config=cfg, scale=k, where="none")
        write_run(suite, f"ttt_main_seed{s}", ttt or TTT, TTT_FLOPS, mode="ttt", config=cfg, scale=k, where="metrics")
        write_run(suite, f"ttt_lr0_seed{s}", LR0, LR0_FLOPS, mode="ttt", config=cfg, scale=k)
    return suite


def by_hand(values, flops, f):
    """Best-so-far within f FLOPs: the last point at or below f (0 before the first)."""
    vals = [v for v, x in zip(values, flops) if x <= f]
    return vals[-1] if vals else 0.0


def mean(xs):
    return sum(xs) / len(xs)


def test_each_arms_flops_curve_is_what_its_run_recorded(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path))
    assert R.flops_seeds(suite) == ["0"]
    assert R.flops_arm_runs(suite, "0") == [("best-of-N", "base_bestofn_flops_seed0"), ("TTT main", "ttt_main_seed0"),
                                            ("ttt_lr0", "ttt_lr0_seed0")]
    for name, curves, flops, source in (("base_bestofn_flops_seed0", BON, BON_FLOPS, "recorded"),
                                        ("ttt_main_seed0", TTT, TTT_FLOPS, "metrics"),
                                        ("ttt_lr0_seed0", LR0, LR0_FLOPS, "recorded")):
        got = R.flops_curves(suite, name)
        for tid, _ in TASKS:
            curve, src = got[tid]
            assert src == source
            assert [(p["flops"], p["best_so_far"]) for p in curve] == list(zip(flops, curves[tid])), (name, tid)
    spent = R.flops_spent(suite, "ttt_main_seed0")
    assert spent["max"] == 90 * G and spent["min"] == 60 * G and spent["mean"] == (3 * 90 + 60) * G / 4
    # without the FLOPs-matched run, best-of-N is the samples-matched one, its FLOPs estimated pro rata
    # (total 30 GFLOPs over 24 samples: 10 GFLOPs per round of 8 here, as recorded in the other run)
    os.rename(tmp_path / "suite" / "base_bestofn_flops_seed0", tmp_path / "hidden")
    suite = R.load_suite(str(tmp_path / "suite"))
    assert R.flops_arm_runs(suite, "0")[0] == ("best-of-N", "base_bestofn_seed0")
    curve, src = R.flops_curves(suite, "base_bestofn_seed0")["b0"]
    assert src == "estimated" and [(p["flops"], p["best_so_far"]) for p in curve] == list(zip(BON_FLOPS[:3],
                                                                                            BON["b0"][:3]))


def test_levels_within_f_flops(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path))
    grid = R.flops_grid(suite)
    # TTT main from its cheapest first step (30 GFLOPs) to its largest total (90): 30 x 3^(i/5)
    assert grid == [3.0e10, 3.7e10, 4.7e10, 5.8e10, 7.2e10, 9.0e10]
    levels = {lv["arm"]: lv for lv in R.flops_levels(suite, grid)}
    for arm, curves, flops in (("best-of-N", BON, BON_FLOPS), ("TTT main", TTT, TTT_FLOPS), ("ttt_lr0", LR0, LR0_FLOPS)):
        for f in grid:
            lv = levels[arm]["at"][f]
            last = max(flops[len(curves[t]) - 1] for t, _ in TASKS)
            if f > last:
                assert lv is None, (arm, f)   # beyond every task of the arm: n/a
                continue
            vals = [by_hand(curves[t], flops, f) for t, _ in TASKS]
            assert lv["best"] == pytest.approx(mean(vals)), (arm, f)
            assert lv["solve"] == pytest.approx(mean([v >= 0.99 for v in vals])), (arm, f)
            assert lv["best_ci"][0] <= lv["best"] <= lv["best_ci"][1]
            # held: some task's run ended below f (b1's TTT after 60 GFLOPs; ttt_lr0 after 45)
            assert lv["held"] == any(flops[len(curves[t]) - 1] < f for t, _ in TASKS), (arm, f)
    assert levels["best-of-N"]["at"][9.0e10] is None and levels["TTT main"]["at"][7.2e10]["held"]
    bon = R.task_flops_curves(suite, "base_bestofn_flops_seed0")
    assert R.arm_level(bon, 80 * G)["held"] is False and R.arm_level(bon, 80 * G + 1) is None   # all end at 80
    assert levels["TTT main"]["at"][5.8e10]["best"] == pytest.approx((0.0 + 0.4 + 0.2 + 0.1) / 4)
    # paired: TTT main minus best-of-N on the same tasks, wherever both arms reach F
    paired = {(r["label"], r["F"]): r for r in R.flops_paired(suite, grid)}
    assert {f for lab, f in paired if lab == "TTT main - best-of-N"} == set(grid[:5])
    assert {f for lab, f in paired if lab == "ttt_lr0 - best-of-N"} == set(grid[:2])   # ttt_lr0 stops at 45
    r = paired[("TTT main - best-of-N", 7.2e10)]
    d = mean([by_hand(TTT[t], TTT_FLOPS, 7.2e10) - by_hand(BON[t], BON_FLOPS, 7.2e10) for t, _ in TASKS])
    assert r["n"] == 4 and r["best"]["mean_diff"] == pytest.approx(d) and d == pytest.approx(0.575 - 0.375)


def test_families_pool_seeds(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path, seeds=(0, 1)))
    grid = R.flops_grid(suite)
    fams = R.flops_families(suite, grid)
    assert sorted(fams) == ["fa", "fb"]
    f = 6.0e10
    lv = R.arm_level(R.pooled_flops_curves(suite, "TTT main", "fb"), f, ci=False)
    # fb = b0, b1; seed 1 halves every reward: (0.5 + 0.6) x (1 + 1/2) / 4
    assert lv["best"] == pytest.approx((0.5 + 0.6) * 1.5 / 4) and lv["best_ci"] == (None, None)
    at = fams["fb"]["levels"]["TTT main"][grid[-1]]
    assert at["best"] == pytest.approx((0.7 + 0.6) * 1.5 / 4) and at["held"]
    assert fams["fa"]["levels"]["best-of-N"][grid[-1]] is None
    paired = {r["F"]: r for r in fams["fa"]["paired"]}
    assert paired[grid[0]]["n"] == 4   # 2 tasks x 2 seeds
    assert paired[grid[0]]["best"]["mean_diff"] == pytest.approx(((0.0 - 0.2) + (0.4 - 0.5)) * 1.5 / 4)


def test_random_search_at_the_sampling_flops_of_its_samples(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path))
    rand = R.baseline_flops(suite, "random search")
    # best-of-N spent 80 GFLOPs on 64 samples per task: 1.25 GFLOPs per sample
    assert rand["per_sample"] == pytest.approx(1.25 * G) and rand["n_tasks"] == 4
    assert [(n, f) for n, f, _, _ in rand["points"]] == [(1, 1.25 * G), (8, 10 * G), (64, 80 * G)]
    assert R.baseline_at(rand, 1.2 * G) is None
    assert R.baseline_at(rand, 50 * G) == {"N": 8, "best": 0.2, "solve": 0.0, "held": False}
    assert R.baseline_at(rand, 80 * G)["held"] is False and R.baseline_at(rand, 90 * G)["held"] is True
    # a family: the task-weighted mean of its held-out cells (the train cell is not one of them)
    fb = R.baseline_flops(suite, "random search", "fb")
    assert fb["n_tasks"] == 4 and fb["points"][0][2] == pytest.approx((0.1 * 1 + 0.2 * 3) / 4)
    assert R.baseline_flops(suite, "random search", "fa")["points"][1][2] == pytest.approx(0.7)
    assert R.baseline_flops(R.load_suite(make_flops_suite(tmp_path / "noaudit", audit=False)), "random search") is None


def test_policy_baseline_at_the_sampling_flops_of_its_samples(tmp_path):
    """The policy's attempts are placed on the FLOPs axis exactly as random search's answers are."""
    suite = R.load_suite(make_flops_suite(tmp_path))
    pol = R.baseline_flops(suite, "policy")
    assert pol["per_sample"] == pytest.approx(1.25 * G) and pol["n_tasks"] == 4
    assert pol["points"] == [(1, 1.25 * G, 0.3, 0.0), (8, 10 * G, 0.5, 0.25), (64, 80 * G, 0.7, 0.5)]
    assert R.baseline_at(pol, 50 * G) == {"N": 8, "best": 0.5, "solve": 0.25, "held": False}
    # fb: (0.4 x 1 + 0.2 x 3) / 4 at N=8; fa: its one held-out cell
    assert R.baseline_flops(suite, "policy", "fb")["points"][0][2] == pytest.approx((0.4 * 1 + 0.2 * 3) / 4)
    assert R.baseline_flops(suite, "policy", "fa")["points"][1][2:] == pytest.approx((0.9, 0.5))
    held, _ = R.baseline_levels(suite, "policy")
    assert held["answer_reward"] == 0.35 and held["mean_best"]["64"] == 0.7
    # an audit from before the policy baseline: random search still, no policy anywhere
    old = R.load_suite(make_flops_suite(tmp_path / "old", audit=OLD_AUDIT))
    assert R.baseline_flops(old, "random search") is not None
    assert R.baseline_flops(old, "policy") is None and R.baseline_flops(old, "policy", "fa") is None
    assert R.baseline_levels(old, "policy")[0] is None and R.policy_answers(old)[0] is None
    assert "policy" not in R.flops_to_reach(old)[0]["at"]


def test_share_of_tasks_beating_the_policys_own_answer(tmp_path):
    """Strictly above the policy's own answer, over the tasks the audit has one for (a0, a1, b0)."""
    suite = R.load_suite(make_flops_suite(tmp_path))
    assert R.policy_answers(suite)[0] == {"a0": 0.3, "a1": 0.5, "b0": 0.5, "zz": 0.1}
    res = {r["run"]: r for r in R.run_results(suite)}
    # finals: best-of-N (FLOPs) 0.3, 0.5, 1.0 (only b0 beats: equal is not better); TTT main 0.9, 1.0, 0.7;
    # ttt_lr0 0.2, 0.6, 0.3; the samples-matched best-of-N 0.2, 0.5, 0.2
    for name, share in (("base_bestofn_flops_seed0", 1 / 3), ("ttt_main_seed0", 1.0), ("ttt_lr0_seed0", 1 / 3),
                        ("base_bestofn_seed0", 0.0)):
        r = res[name]
        assert r["beats_policy_n"] == 3 and r["beats_policy"] == pytest.approx(share), name
        assert r["beats_policy_ci"][0] <= r["beats_policy"] <= r["beats_policy_ci"][1]
    old = {r["run"]: r for r in R.run_results(R.load_suite(make_flops_suite(tmp_path / "old", audit=OLD_AUDIT)))}
    assert old["ttt_main_seed0"]["beats_policy"] is None and old["ttt_main_seed0"]["beats_policy_n"] == 0
    none = {r["run"]: r for r in R.run_results(R.load_suite(make_flops_suite(tmp_path / "none", audit=False)))}
    assert none["ttt_main_seed0"]["beats_policy"] is None and none["ttt_main_seed0"]["beats_policy_ci"] == (None, None)


def test_flops_to_reach_a_reward(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path))
    reach = {r["label"]: r for r in R.flops_to_reach(suite)}
    # levels: the samples-matched best-of-N's final mean (0.2 + 0.5 + 0.2 + 0.3) / 4, TTT main's, best-of-N's
    low = reach["best-of-N final (samples-matched)"]
    assert low["value"] == pytest.approx(0.3)
    # best-of-N: 0.225, 0.275, 0.3 at 10, 20, 30; TTT main 0.175 at 30, 0.575 at 60; ttt_lr0 0.225, 0.25, 0.35;
    # random search 0.2 at N=8 (10 GFLOPs), 0.6 at N=64 (80 GFLOPs); the policy 0.3 at N=1 (1.25 GFLOPs)
    assert low["at"] == {"best-of-N": 30 * G, "TTT main": 60 * G, "ttt_lr0": 45 * G, "random search": 80 * G,
                         "policy": 1.25 * G}
    top = reach["TTT main final"]
    assert top["value"] == pytest.approx(0.8)
    assert top["at"] == {"best-of-N": None, "TTT main": 90 * G, "ttt_lr0": None, "random search": None,
                         "policy": None}
    assert reach["best-of-N final (FLOPs-matched)"]["at"]["best-of-N"] == 80 * G


def test_crossover_on_runs(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path))
    (c,) = R.flops_crossover(suite)
    # the range starts at TTT main's first step (30 GFLOPs; before it TTT has no value, not a 0 best-of-N
    # leads) and ends at best-of-N's 80. Mean difference TTT main - best-of-N: below 0 at 30 (0.175 - 0.3),
    # +0.2 at 60 and after; every task is at or behind at 30 and ahead at 60, so a resample crosses at 60
    # (all-b0 resamples, level at 30, cross back at 80: fewer than 2.5%)
    assert c["x"] == 60 * G and c["ci95"] == [60 * G, 60 * G] and c["boot_share"] == 1.0
    assert c["direction"] == "treat overtakes" and c["range"] == [30 * G, 80 * G] and c["n"] == 4
    # a TTT that never catches up: no crossover in range
    low = {t: [0.5 * v for v in vals] for t, vals in TTT.items()}
    (c,) = R.flops_crossover(R.load_suite(make_flops_suite(tmp_path / "low", ttt=low)))
    assert c["x"] is None and c["ci95"] == [None, None] and c["boot_share"] == 0.0 and c["crossings"] == 0


def test_flops_series_feeds_the_figure(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path, seeds=(0, 1)))
    series = R.flops_series(suite, [25 * G, 85 * G], "fa")
    assert series["TTT main"][0] == []                   # below TTT's first step (30 GFLOPs): no value, not 0
    assert sorted(series["TTT main"][1]) == pytest.approx(sorted([0.6, 0.6, 0.3, 0.3]))
    assert series["best-of-N"][1] == []                 # beyond best-of-N's 80 GFLOPs


def test_suite_loading_and_budget(tmp_path):
    suite = R.load_suite(make_flops_suite(tmp_path, seeds=(0, 1)))
    wjsonl(str(tmp_path / "suite" / "ttt_train_seed0" / "summary.jsonl"), [{"task_id": "t", "best_reward": 0.5}])
    suite = R.load_suite(str(tmp_path / "suite"))
    assert "ttt_train_seed0" in suite.all_runs and "ttt_train_seed0" not in suite.runs
    assert suite.seeds == ["0", "1"] and suite.main_seeds == ["0", "1"]
    assert list(suite.runs)[:3] == ["base_bestofn_seed0", "base_bestofn_seed1", "ttt_main_seed0"]
    # 24 x {32, 128, 512, 960} / 960 = 0.8, 3.2, 12.8, 24 -> the nearest sample counts on the curves
    assert R.budget(suite)[0] == 24 and R.budget_grid(suite) == [8, 16, 24]
    assert R.paired(suite, "base_bestofn_seed0", "ttt_main_seed0", "best_reward")["mean_diff"] == pytest.approx(
        mean([TTT[t][-1] - BON[t][2] for t, _ in TASKS]))


# --- budget curves below an arm's first sample count -----------------------------------------------

BUDGET_STEPS, ROLLOUTS = 15, 32    # budget 480 -> N = 16, 64, 256, 480 on these curves
BON_SAMPLES = [1, 16, 32, 64, 256, 480]
BON_AT = {"a0": [0.1, 0.2, 0.2, 0.3, 0.4, 0.5], "a1": [0.0, 0.1, 0.3, 0.3, 0.3, 0.6],
          "b0": [0.2, 0.2, 0.2, 0.2, 0.5, 0.5], "b1": [0.1, 0.3, 0.3, 0.4, 0.4, 0.4]}
TTT_START = {"a0": 0.5, "a1": 0.3, "b0": 0.4, "b1": 0.2}   # + 0.05 per step of 32 samples


def ttt_points(tid):
    """TTT main's curve: one entry per step of 32 rollouts; b1's first step is missing (it starts at 64)."""
    pts = [{"samples": ROLLOUTS * k, "best_so_far": round(TTT_START[tid] + 0.05 * (k - 1), 6)}
           for k in range(1, BUDGET_STEPS + 1)]
    return pts[1:] if tid == "b1" else pts


def make_budget_suite(root):
    """Best-of-N's curves start at 1 sample, TTT main's at its first step (32 samples; b1 at 64)."""
    suite = str(root / "suite")
    cfg = {"ttt_steps": BUDGET_STEPS, "rollouts": ROLLOUTS}
    for name, mode, curve in (("base_bestofn_seed0", "bestofn",
                               lambda t: [{"samples": n, "best_so_far": v} for n, v in zip(BON_SAMPLES, BON_AT[t])]),
                              ("ttt_main_seed0", "ttt", ttt_points)):
        rows = [{"task_id": t, "family": f, "mode": mode, "best_reward": curve(t)[-1]["best_so_far"], "samples": 480,
                 "best_curve": curve(t)} for t, f in TASKS]
        wjsonl(os.path.join(suite, name, "summary.jsonl"), rows)
        wjson(os.path.join(suite, name, "config.json"), {"args": {**cfg, "mode": mode}})
    return suite


def test_budget_below_an_arms_first_sample_count_is_na(tmp_path):
    """At N = 16 TTT main has drawn nothing yet: no level (n/a), and the paired row is kept with no
    task and n/a, never 0.000; a paired difference is over the tasks both arms have a value at N for."""
    from discover_distill import registry_render as RR

    suite = R.load_suite(make_budget_suite(tmp_path))
    assert R.budget_grid(suite) == [16, 64, 256, 480]
    assert R.at_n(suite, "ttt_main_seed0", 16) == {}
    assert R.at_n(suite, "ttt_main_seed0", 32) == pytest.approx({"a0": 0.5, "a1": 0.3, "b0": 0.4})  # b1 from 64
    levels = {lv["arm"]: lv["at"] for lv in R.budget_levels(suite)}
    assert levels["TTT main"][16]["n"] == 0 and levels["TTT main"][16]["best"] is None
    assert levels["best-of-N"][16]["best"] == pytest.approx((0.2 + 0.1 + 0.2 + 0.3) / 4)
    assert levels["TTT main"][64]["n"] == 4 and levels["TTT main"][64]["best"] == pytest.approx(1.6 / 4)
    paired = {r["N"]: r for r in R.budget_paired(suite)}
    assert sorted(paired) == [16, 64, 256, 480]                       # the N=16 row is kept ...
    assert paired[16]["n"] == 0 and paired[16]["best"] is None and paired[16]["solve"] is None   # ... with no value
    # N = 64: all four tasks, TTT (0.55, 0.35, 0.45, 0.25) minus best-of-N (0.3, 0.3, 0.2, 0.4)
    assert paired[64]["n"] == 4 and paired[64]["best"]["mean_diff"] == pytest.approx((0.25 + 0.05 + 0.25 - 0.15) / 4)
    fams = R.budget_families(suite)
    assert 16 not in fams["fa"]["TTT main"] and fams["fa"]["best-of-N"][16]["best"] == pytest.approx(0.15)
    assert fams["fb"]["TTT main"][64]["n"] == 2
    # per family, paired over (seed, task): no row at N = 16 (TTT has drawn nothing), fa at 64 from a0, a1
    fam_paired = {(r["family"], r["N"]): r for r in R.budget_family_paired(suite)}
    assert ("fa", 16) not in fam_paired and fam_paired["fa", 64]["n"] == 2
    assert fam_paired["fa", 64]["best"]["mean_diff"] == pytest.approx((0.25 + 0.05) / 2)
    assert fam_paired["fb", 64]["best"]["mean_diff"] == pytest.approx((0.25 - 0.15) / 2)
    md, tex = RR.budget_section(suite)
    text = "\n".join(md)
    for title, at_64 in (("### Mean best reward at N", "0.400 ["), ("### Solve rate at N", "0.000 [")):
        ttt_row = next(l for l in text.split(title)[1].splitlines() if "| TTT main |" in l)
        assert ttt_row.split("|")[5].strip() == "n/a" and ttt_row.split("|")[6].strip().startswith(at_64), title
    assert "| 0 | 16 | 0 | n/a | n/a | n/a |" in text
    assert "| 0 | 64 | 4 | " in text
    per_family = text.split("### Per family: TTT main minus best-of-N at each N")[1]
    assert "| fa | 64 | 2 | " in per_family and "| fa | 16 |" not in per_family
    assert r"0 & 16 & 0 & n/a & n/a \\" in tex["budget_paired"]
    assert r"0 & TTT main & n/a & 0.000 / 0.400" in tex["budget"]


def test_budget_at_the_first_sample_count_of_both_arms(tmp_path):
    """At N = 32 both arms have a value: the paired difference is over the three tasks whose TTT curve
    starts there (b1's starts at 64, so it is in no mean at 32)."""
    suite = R.load_suite(make_budget_suite(tmp_path))
    a, b = R.at_n(suite, "base_bestofn_seed0", 32), R.at_n(suite, "ttt_main_seed0", 32)
    assert sorted(a) == ["a0", "a1", "b0", "b1"] and sorted(b) == ["a0", "a1", "b0"]
    assert sum(b[t] - a[t] for t in b) / 3 == pytest.approx((0.3 + 0.0 + 0.2) / 3)
