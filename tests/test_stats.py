import math

import pytest

from discover_distill.stats import paired_bootstrap


def test_paired_bootstrap():
    a = [0.0] * 50 + [1.0] * 50
    r = paired_bootstrap(a, a)
    assert r["mean_diff"] == 0 and r["ci95"] == [0.0, 0.0] and r["p_two_sided"] == 1.0
    b = [x + 0.1 for x in a]
    r = paired_bootstrap(a, b)
    assert r["mean_diff"] == pytest.approx(0.1) and r["ci95"][0] == pytest.approx(0.1) and r["p_two_sided"] == 0.0
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [])


def test_budget_points():
    from discover_distill.stats import budget_points

    grid = range(32, 961, 32)
    assert budget_points(960, grid) == [32, 128, 512, 960]          # the runbook budget: the anchors as they are
    # budget 192: 6.4, 25.6, 102.4, 192 -> nearest on the 32-grid, duplicates dropped
    assert budget_points(192, range(32, 193, 32)) == [32, 96, 192]
    assert budget_points(192) == [6, 26, 102, 192]                   # no grid: rounded
    assert budget_points(64, [16, 48]) == [16, 48]                   # ties go to the smaller count
    with pytest.raises(ValueError):
        budget_points(0)


def test_best_at():
    from discover_distill.stats import best_at

    curve = [{"samples": 64, "best_so_far": 0.5}, {"samples": 32, "best_so_far": 0.2},
             {"samples": 96, "best_so_far": 0.9}]
    assert best_at(curve, 31) == 0.0                  # nothing sampled yet
    assert best_at(curve, 32) == 0.2 and best_at(curve, 63) == 0.2
    assert best_at(curve, 64) == 0.5 and best_at(curve, 1000) == 0.9
    assert best_at([{"samples": 8, "best_so_far": -1.0}], 8) == 0.0
    assert best_at(curve, 31, before=None) is None    # below the first entry: no value, not 0
    assert best_at(curve, 32, before=None) == 0.2
    assert best_at([], 5) == 0.0


def test_read_best_curve(tmp_path):
    import json

    from discover_distill.stats import read_best_curve

    row_curve = [{"samples": 2, "best_so_far": 0.3}, {"samples": 1, "best_so_far": 0.1}]
    assert read_best_curve(str(tmp_path), {"best_curve": row_curve}) == [
        {"samples": 1.0, "best_so_far": 0.1}, {"samples": 2.0, "best_so_far": 0.3}]
    assert read_best_curve(str(tmp_path), {}) is None
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "samples": 4, "best_so_far": -1.0}) + "\nbad\n"
                                            + json.dumps({"step": 2, "samples": 8, "best_so_far": 0.7}) + "\n")
    assert read_best_curve(str(tmp_path)) == [{"samples": 4.0, "best_so_far": 0.0}, {"samples": 8.0, "best_so_far": 0.7}]
    (tmp_path / "result.json").write_text(json.dumps({"best_curve": [{"samples": 5, "best_so_far": 0.4}]}))
    assert read_best_curve(str(tmp_path)) == [{"samples": 5.0, "best_so_far": 0.4}]  # result.json before metrics


def test_promotion_of():
    from discover_distill.stats import promotion_of, retention_promotion

    assert promotion_of(None) is None and promotion_of({"gate": []}) is None
    assert promotion_of({"promoted_step": 20, "all_rejected": False}) == {"promoted_step": 20, "all_rejected": False}
    old = {"promoted_step": 0, "gate": [{"step": 0, "passed": True}, {"step": 10, "passed": False}]}
    assert promotion_of(old) == {"promoted_step": 0, "all_rejected": True}   # older report: inferred
    assert promotion_of({"promoted_step": 0, "gate": [{"step": 0}]})["all_rejected"] is False
    assert retention_promotion({"promotion": {"promoted_step": 5, "all_rejected": False}})["promoted_step"] == 5
    assert retention_promotion({"promotion": None, "args": {"updated_ckpt": "/nonexistent/x.pt"}}) is None


def test_tasks_needed_matches_the_normal_approximation():
    from discover_distill.stats import paired_bootstrap, tasks_needed
    # p_disc = 0.15, d = 0.05: sd = sqrt(0.15 - 0.0025) = 0.38406 -> (2.80159 * 0.38406 / 0.05)^2 = 463.07 -> 464
    assert tasks_needed(math.sqrt(0.15 - 0.05 ** 2), 0.05) == 464
    r = paired_bootstrap([0, 0, 1, 1], [1, 0, 1, 0])
    assert r["discordant"] == 0.5 and abs(r["sd_diff"] - math.sqrt(2 / 3)) < 1e-12
    assert tasks_needed(float("nan"), 0.05) is None


# --- curves against compute -------------------------------------------------------------------

def test_best_at_flops():
    from discover_distill.stats import best_at

    curve = [{"samples": 16, "flops": 30.0, "best_so_far": 0.4}, {"samples": 8, "flops": 10.0, "best_so_far": 0.1}]
    assert best_at(curve, 9.9, key="flops") == 0.0 and best_at(curve, 10, key="flops") == 0.1
    assert best_at(curve, 29, key="flops") == 0.1 and best_at(curve, 1e9, key="flops") == 0.4
    assert best_at(curve, 8) == 0.1  # the samples axis is unchanged


def test_read_flops_curve(tmp_path):
    import json

    from discover_distill.stats import read_flops_curve

    rec = [{"samples": 8, "flops": 200, "best_so_far": 0.5}, {"samples": 4, "flops": 100, "best_so_far": -1.0}]
    assert read_flops_curve(str(tmp_path), {"best_curve": rec}) == (
        [{"flops": 100.0, "samples": 4.0, "best_so_far": 0.0}, {"flops": 200.0, "samples": 8.0, "best_so_far": 0.5}],
        "recorded")
    assert read_flops_curve(str(tmp_path), {}) == (None, None)
    # an older best-of-N row: no FLOPs on the curve -> the task's total spread in proportion to samples
    old = {"best_curve": [{"samples": 4, "best_so_far": 0.2}, {"samples": 8, "best_so_far": 0.3}], "flops": 800,
           "samples": 8}
    assert read_flops_curve(str(tmp_path), old) == (
        [{"flops": 400.0, "samples": 4.0, "best_so_far": 0.2}, {"flops": 800.0, "samples": 8.0, "best_so_far": 0.3}],
        "estimated")
    # an older TTT task: the curve without FLOPs, the per-step metrics with them
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "samples": 4, "flops": 150, "best_so_far": 0.1}) + "\nbad\n"
        + json.dumps({"step": 2, "samples": 8, "flops": 330, "best_so_far": 0.6}) + "\n")
    assert read_flops_curve(str(tmp_path), old) == (
        [{"flops": 150.0, "samples": 4.0, "best_so_far": 0.1}, {"flops": 330.0, "samples": 8.0, "best_so_far": 0.6}],
        "metrics")
    (tmp_path / "result.json").write_text(json.dumps({"best_curve": [{"samples": 4, "flops": 90, "best_so_far": 0.7}]}))
    assert read_flops_curve(str(tmp_path), old) == ([{"flops": 90.0, "samples": 4.0, "best_so_far": 0.7}], "recorded")


def test_log_levels():
    from discover_distill.stats import log_levels

    # 3e10 x 3^(i/5): 3.00, 3.74, 4.66, 5.80, 7.22, 9.00 (e10) at two significant digits
    assert log_levels(3e10, 9e10, 6) == [3.0e10, 3.7e10, 4.7e10, 5.8e10, 7.2e10, 9.0e10]
    # the ends stay inside the range: the first rounded up, the last down
    assert log_levels(5.83e9, 1.16e11, 2) == [5.9e9, 1.1e11]
    assert log_levels(1.23, 1.24, 3) == [1.24]   # no two-digit level inside: the top itself
    assert log_levels(7.0, 7.0, 4) == [7.0]
    with pytest.raises(ValueError):
        log_levels(0, 1, 3)


def test_first_reach():
    from discover_distill.stats import first_reach

    curves = [[{"flops": 10, "best_so_far": 0.2}, {"flops": 30, "best_so_far": 0.6}], [{"flops": 20, "best_so_far": 0.4}]]
    # mean: 0.1 at 10, 0.3 at 20, 0.5 at 30
    assert first_reach(curves, 0.3) == 20 and first_reach(curves, 0.5) == 30 and first_reach(curves, 0.05) == 10
    assert first_reach(curves, 0.51) is None and first_reach([], 0.1) is None


def _flat(v, xs=(1, 1000)):
    return [{"flops": x, "best_so_far": v} for x in xs]


def _jump(x, v=1.0):
    return [{"flops": 1, "best_so_far": 0.0}, {"flops": x, "best_so_far": v}, {"flops": 1000, "best_so_far": v}]


def test_crossover_known_answers():
    from discover_distill.stats import crossover

    # every task the same: TTT (0 -> 0.8 at 10) overtakes a flat 0.5 at exactly 10, in every resample
    r = crossover([_flat(0.5)] * 5, [_jump(10, 0.8)] * 5)
    assert r["x"] == 10 and r["ci95"] == [10, 10] and r["boot_share"] == 1.0
    assert r["direction"] == "treat overtakes" and r["crossings"] == 1 and r["range"] == [1, 1000]
    r = crossover([_jump(10, 0.8)] * 5, [_flat(0.5)] * 5)
    assert r["x"] == 10 and r["direction"] == "base overtakes"
    # half the tasks jump at 10, half at 100: the mean difference is -0.5, then exactly 0 on [10, 100),
    # then +0.5, so the crossover is 100 (0 is no sign); a resample with more early tasks crosses at 10
    r = crossover([_flat(0.5)] * 20, [_jump(10)] * 10 + [_jump(100)] * 10)
    assert r["x"] == 100 and r["ci95"] == [10, 100] and r["boot_share"] == 1.0 and r["crossings"] == 1
    # 18 of 20 early: the point is 10, and a resample with at most half early ones is rarer than 2.5%
    r = crossover([_flat(0.5)] * 20, [_jump(10)] * 18 + [_jump(100)] * 2)
    assert r["x"] == 10 and r["ci95"] == [10, 10]
    # never crossing, and crossing only beyond the range both arms reach
    r = crossover([_flat(0.5)] * 4, [_jump(10, 0.3)] * 4)
    assert r["x"] is None and r["ci95"] == [None, None] and r["boot_share"] == 0 and r["direction"] is None
    r = crossover([_flat(0.5)] * 4, [[{"flops": 1, "best_so_far": 0.0}, {"flops": 5, "best_so_far": 0.1}]] * 4)
    assert r["x"] is None and r["range"] == [1, 5]
    # a TTT whose first step costs 10 and is ahead from it: below 10 it has no value (not a 0 that
    # best-of-N leads), so there is no crossover, and the range starts at its first point
    r = crossover([_flat(0.5)] * 4, [_flat(0.8, xs=(10, 1000))] * 4)
    assert r["x"] is None and r["range"] == [10, 1000] and r["crossings"] == 0
    r = crossover([_flat(0.5, xs=(1, 5))] * 2, [_flat(0.8, xs=(10, 20))] * 2)   # ranges apart: nothing to compare
    assert r["x"] is None and r["boot_share"] == 0.0
    with pytest.raises(ValueError):
        crossover([_flat(0.5)], [])
