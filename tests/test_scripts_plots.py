"""Phase F figures from hand-made run directories; missing runs are skipped, never a crash."""
import json
import os

import pytest

from conftest import run_script

pytestmark = pytest.mark.slow


def write_run(root, name, ttt):
    d = root / name
    rows = []
    for i, fam in enumerate(["sort", "golomb", "sort"]):
        tid = f"{fam}-heldout-{i}"
        rows.append({"task_id": tid, "family": fam, "best_reward": 0.3 * i, "solved": i == 2, "samples": 8})
        os.makedirs(d / tid)
        if ttt:
            with open(d / tid / "metrics.jsonl", "w") as f:
                for s in (1, 2):
                    f.write(json.dumps({"step": s, "samples": 4 * s, "best_so_far": 0.1 * s * i, "beta": 2.0 + s,
                                        "kl_to_base": 0.01 * s, "mean_reward": 0.05 * s * i,
                                        "lora_update_norm": 0.1 * s}) + "\n")
        else:
            json.dump({"best_curve": [{"samples": 4, "best_so_far": 0.1}, {"samples": 8, "best_so_far": 0.2}]},
                      open(d / tid / "result.json", "w"))
    (d / "summary.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_plots(tmp_path):
    runs = tmp_path / "suite"
    write_run(runs, "base_bestofn_seed0", ttt=False)
    write_run(runs, "ttt_main_seed0", ttt=True)
    write_run(runs, "ttt_lr0_seed0", ttt=True)
    write_run(runs, "ttt_train_seed0", ttt=True)  # the train split: never in a held-out figure
    json.dump({"delta_ppl": 0.4, "delta_ppl_ci95": [0.1, 0.7]}, open(runs / "retention_ppl_sdft.json", "w"))
    json.dump({"delta_ppl": 0.4, "delta_ppl_ci95": [0.1, 0.7], "headline": "filler",
               "filler": {"delta_ppl": 0.1, "delta_ppl_ci95": [0.0, 0.2]},
               "promotion": {"promoted_step": 0, "all_rejected": True}}, open(runs / "retention_ppl_sft.json", "w"))
    figs = tmp_path / "figs"
    out = run_script("paper/plot_results.py", "--runs_dir", str(runs), "--fig_dir", str(figs)).stdout
    assert "ttt_reuse0" in out and "skipped" in out
    for name in ("solve_rate", "per_family", "best_so_far", "budget_curves", "ttt_learning", "beta_kl", "retention"):
        assert (figs / f"{name}.png").stat().st_size > 1000 and (figs / f"{name}.pdf").exists()
    assert "budget_curves from base_bestofn_seed0, ttt_main_seed0" in out
    assert "ttt_learning from ttt_main_seed0, ttt_lr0_seed0" in out
    assert "held-out runs: base_bestofn_seed0, ttt_main_seed0, ttt_lr0_seed0" in out and "ttt_train" not in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "skipped" in run_script("paper/plot_results.py", "--runs_dir", str(empty), "--fig_dir", str(figs)).stdout
    run_script("paper/plot_pipeline_diagram.py", "--fig_dir", str(figs))
    assert (figs / "pipeline.png").exists() and (figs / "pipeline.pdf").exists()


def test_fill_tables(tmp_path):
    runs = tmp_path / "suite"
    write_run(runs, "base_bestofn_seed0", ttt=False)
    write_run(runs, "ttt_main_seed0", ttt=True)
    json.dump({"base_ppl": 10.0, "updated_ppl": 10.4, "delta_ppl": 0.4, "rel_delta_ppl": 0.04,
               "delta_ppl_ci95": [0.1, 0.7]}, open(runs / "retention_ppl.json", "w"))
    reg, tex = tmp_path / "reg.md", tmp_path / "tex"
    run_script("paper/scripts/fill_tables.py", "--runs_dir", str(runs), "--registry", str(reg), "--latex_dir", str(tex))
    text = reg.read_text()
    assert "TTT main vs best-of-N (seed 0)" in text and "guardrails" in text and "+4.00%" in text
    assert "base\\_bestofn\\_seed0 & 3" in (tex / "main_results.tex").read_text()
    assert "\\midrule" in (tex / "paired.tex").read_text()


def test_budget_curves_draw_random_search_as_its_own_line(tmp_path, monkeypatch):
    """Random search (the audit's expected best of N uniformly random answers, which the tables
    report too) is a third, labelled line at its audited N up to the arms' largest N."""
    import importlib.util

    from conftest import ROOT
    runs = tmp_path / "suite"
    write_run(runs, "base_bestofn_seed0", ttt=False)
    write_run(runs, "ttt_main_seed0", ttt=True)
    tasks = tmp_path / "discovery" / "heldout.jsonl"
    tasks.parent.mkdir()
    tasks.write_text("")
    (runs / "base_bestofn_seed0" / "config.json").write_text(json.dumps({"args": {"tasks": str(tasks)}}))
    levels = {"n_tasks": 3, "mean_best": {"1": 0.1, "4": 0.3, "8": 0.45, "960": 0.9},
              "solve_rate": {"1": 0.0, "4": 0.0, "8": 1 / 3, "960": 1.0}}
    (tasks.parent / "audit.json").write_text(json.dumps({"overall": {"heldout": levels, "train": {}}}))
    spec = importlib.util.spec_from_file_location("plot_results", os.path.join(ROOT, "paper", "plot_results.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    saved = []
    monkeypatch.setattr(mod, "save", lambda fig, fig_dir, name: saved.append((name, fig)))
    assert mod.plot_budget_curves(str(runs), mod.load_runs(str(runs)), str(tmp_path))
    [(name, fig)] = saved
    assert name == "budget_curves"
    for ax, key in zip(fig.axes, ("solve_rate", "mean_best")):
        labels = [line.get_label() for line in ax.get_lines()]
        assert [l.split(" (")[0] for l in labels] == ["best-of-N", "TTT main", "random search"], labels
        rand = ax.get_lines()[2]
        assert "3 tasks" in rand.get_label()
        assert list(rand.get_xdata()) == [1, 4, 8]   # 960 lies beyond the arms' 8 samples
        assert list(rand.get_ydata()) == pytest.approx([levels[key][n] for n in ("1", "4", "8")])
    # an audit with the policy baseline: a fourth line, at its own levels
    pol = {"n_tasks": 3, "mean_best": {"1": 0.4, "4": 0.6, "8": 0.7, "960": 1.0},
           "solve_rate": {"1": 0.0, "4": 1 / 3, "8": 1 / 3, "960": 1.0}}
    (tasks.parent / "audit.json").write_text(json.dumps({"overall": {"heldout": {**levels, "policy": pol}}}))
    saved.clear()
    assert mod.plot_budget_curves(str(runs), mod.load_runs(str(runs)), str(tmp_path))
    for ax, key in zip(saved[0][1].axes, ("solve_rate", "mean_best")):
        assert [l.get_label().split(" (")[0] for l in ax.get_lines()] == ["best-of-N", "TTT main", "random search",
                                                                          "policy"]
        line = ax.get_lines()[3]
        assert list(line.get_xdata()) == [1, 4, 8]
        assert list(line.get_ydata()) == pytest.approx([pol[key][n] for n in ("1", "4", "8")])
    # without an audit beside the tasks the figure keeps its two arms and says why
    (tasks.parent / "audit.json").unlink()
    saved.clear()
    assert mod.plot_budget_curves(str(runs), mod.load_runs(str(runs)), str(tmp_path))
    assert [l.get_label().split(" (")[0] for l in saved[0][1].axes[0].get_lines()] == ["best-of-N", "TTT main"]
