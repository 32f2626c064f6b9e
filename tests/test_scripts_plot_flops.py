"""paper/plot_results.py's flops_curves figure on hand-made runs (tests/test_registry.py builds them;
the curves it draws are registry.flops_series, whose numbers test_registry checks)."""
import importlib.util
import os

import pytest

from conftest import ROOT, run_script
from test_registry import G, OLD_AUDIT, make_flops_suite

pytestmark = pytest.mark.slow


def test_flops_curves_figure(tmp_path):
    figs = tmp_path / "figs"
    out = run_script("paper/plot_results.py", "--runs_dir", make_flops_suite(tmp_path, seeds=(0, 1)), "--fig_dir",
                     str(figs)).stdout
    assert ("flops_curves from base_bestofn_flops_seed0, ttt_main_seed0, ttt_lr0_seed0, base_bestofn_flops_seed1, "
            "ttt_main_seed1, ttt_lr0_seed1") in out
    assert (figs / "flops_curves.png").stat().st_size > 1000 and (figs / "flops_curves.pdf").exists()
    # runs whose curves carry no FLOPs at all (and no totals to spread): no figure, said so
    bare = tmp_path / "bare"
    (bare / "ttt_main_seed0").mkdir(parents=True)
    (bare / "ttt_main_seed0" / "summary.jsonl").write_text(
        '{"task_id": "t", "family": "f", "best_reward": 0.5, "solved": false, "samples": 8}\n')
    (bare / "base_bestofn_seed0").mkdir()
    (bare / "base_bestofn_seed0" / "summary.jsonl").write_text(
        '{"task_id": "t", "family": "f", "best_reward": 0.4, "solved": false, "samples": 8}\n')
    out = run_script("paper/plot_results.py", "--runs_dir", str(bare), "--fig_dir", str(tmp_path / "f2")).stdout
    assert "flops_curves figure skipped" in out and not (tmp_path / "f2" / "flops_curves.png").exists()


def test_flops_curves_draw_random_search_and_the_policy(tmp_path, monkeypatch):
    """Both audit baselines are steps at the sampling FLOPs of their N answers (within the drawn
    range: N = 8 at 10 GFLOPs, N = 64 at 80); an old audit draws random search only."""
    spec = importlib.util.spec_from_file_location("plot_results", os.path.join(ROOT, "paper", "plot_results.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    saved = []
    monkeypatch.setattr(mod, "save", lambda fig, fig_dir, name: saved.append(fig))
    assert mod.plot_flops_curves(make_flops_suite(tmp_path), str(tmp_path))
    overall, fa = saved[0].axes[:2]
    lines = {l.get_label().split(" (")[0]: l for l in overall.get_lines()}
    assert {"random search", "policy"} <= set(lines)
    assert list(lines["policy"].get_xdata()) == [10 * G, 80 * G]
    assert list(lines["policy"].get_ydata()) == pytest.approx([0.5, 0.7])
    assert [l.get_ydata()[1] for l in fa.get_lines() if l.get_label().startswith("policy")] == pytest.approx([0.9])
    saved.clear()
    assert mod.plot_flops_curves(make_flops_suite(tmp_path / "old", audit=OLD_AUDIT), str(tmp_path))
    labels = [l.get_label().split(" (")[0] for l in saved[0].axes[0].get_lines()]
    assert "random search" in labels and "policy" not in labels
