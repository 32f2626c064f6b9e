"""paper/plot_results.py's flops_curves figure on hand-made runs (tests/test_registry.py builds them;
the curves it draws are registry.flops_series, whose numbers test_registry checks)."""
import pytest

from conftest import run_script
from test_registry import make_flops_suite

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
