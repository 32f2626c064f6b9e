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
