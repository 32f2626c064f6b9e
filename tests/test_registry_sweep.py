"""The sweep over priors (DESIGN §7, "the answer as a function of the prior") on hand-made bases:
each point a probe.json and a suite built with test_registry's FLOPs fixture (TTT main's rewards
scaled per base), the manifest as run_phase.py writes it. The registry section, the trend and its
sentence, an unfinished base, a missing manifest, the LaTeX table and macros and the figure.
Expected numbers are worked out here from the fixture's written rewards."""
import importlib.util
import os

import pytest

from conftest import ROOT, run_script, wjson, wjsonl
from test_registry import TTT, make_flops_suite
from discover_distill import registry_render as RR
from discover_distill import sweep_report as S

# finals of test_registry's fixture runs: samples-matched best-of-N (its first three rounds), the
# FLOPs-matched one, and TTT main (scaled per base below)
BON_FINAL = {"a0": 0.2, "a1": 0.5, "b0": 0.2, "b1": 0.3}
FLOPS_FINAL = {"a0": 0.3, "a1": 0.5, "b0": 1.0, "b1": 0.3}
TTT_FINAL = {t: v[-1] for t, v in TTT.items()}          # 0.9, 1.0, 0.7, 0.6
EARLY_SCALE = 0.25                                       # the step-1000 base's TTT rewards


def probe(gap, ci, fams, reward=0.2):
    """A probe.json: overall and per-family policy-answer swap gaps."""
    fam = {f: {"n_tasks": 2, "policy_swap_gap": g, "policy_swap_gap_ci95": [g - 0.1, g + 0.1], "swap_gap": g / 2,
               "reward": reward, "random_reward": 0.1, "reward_ratio": reward / 0.1} for f, g in fams.items()}
    return {"settings": {"per_family": 2, "samples": 8}, "families": fam,
            "overall": {"n_tasks": 4, "policy_swap_gap": gap, "policy_swap_gap_ci95": ci, "swap_gap": gap / 2,
                        "reward": reward, "random_reward": 0.1, "reward_ratio": reward / 0.1, "best_of_n": 0.6,
                        "random_best_of_n": 0.5, "well_formed": 0.9}}


def make_sweep(root, early_scale=EARLY_SCALE):
    """runs/ under root as run_phase lays it out: the main suite runs/suite with its probe runs/probe,
    bases at steps 1000 (finished) and 2000 (probed, its runs not started), the manifest
    runs/sweep/sweep.json. Returns (the main suite directory, the manifest path)."""
    runs = root / "runs"
    pre = runs / "pretrain"
    wjsonl(str(pre / "metrics.jsonl"), [{"step": 0, "val_loss": 7.5}, {"step": 50, "loss": 6.0},
                                        {"step": 1000, "val_loss": 4.5}, {"step": 2000, "val_loss": 3.5},
                                        {"step": 3750, "val_loss": 3.1}, {"step": 4000, "loss": 2.0}])
    main_suite = make_flops_suite(runs)
    wjson(str(runs / "probe" / "probe.json"), probe(1.5, [1.2, 1.8], {"fa": 2.0, "fb": 1.0}, reward=0.3))
    points = []
    for step, scale in ((1000, early_scale), (2000, None)):
        d = runs / "sweep" / f"step{step:05d}"
        wjson(str(d / "probe" / "probe.json"), probe(0.2 if step == 1000 else 0.8, [0.0, 0.4], {"fa": 0.3, "fb": 0.1}))
        if scale is not None:
            make_flops_suite(d, ttt={t: [scale * v for v in vals] for t, vals in TTT.items()})
        points.append({"step": step, "ckpt": str(pre / f"ckpt_step_{step:07d}.pt"), "probe_dir": str(d / "probe"),
                       "suite_dir": str(d / "suite"), "main": False})
    points.append({"step": 4000, "ckpt": str(pre / "ckpt_latest.pt"), "probe_dir": str(runs / "probe"),
                   "suite_dir": main_suite, "main": True})
    manifest = str(runs / "sweep" / "sweep.json")
    wjson(manifest, {"seed": 0, "pretrain_dir": str(pre), "tune": str(runs / "tune" / "tune.json"),
                     "hparams": "the main base's tune result for every point",
                     "runs": {"bestofn": "base_bestofn_seed0", "ttt": "ttt_main_seed0",
                              "flops": "base_bestofn_flops_seed0"},
                     "points": list(reversed(points))})   # any order: the report sorts by step
    return main_suite, manifest


def mean(xs):
    return sum(xs) / len(xs)


def edges(scale, base):
    return {t: scale * TTT_FINAL[t] - base[t] for t in TTT_FINAL}


def test_points_edges_and_trend(tmp_path):
    _, manifest = make_sweep(tmp_path)
    ev = S.read_sweep(manifest)
    assert [p["step"] for p in ev["points"]] == [1000, 2000, 4000] and ev["hparams"].startswith("the main base's")
    early, mid, main = ev["points"]
    assert main["main"] and (main["val_loss"], main["val_loss_step"]) == (3.1, 3750)   # the last eval before 4000
    assert (early["val_loss"], early["val_loss_step"]) == (4.5, 1000)
    assert main["probe"]["gap"] == 1.5 and main["probe"]["on"] == "policy answer"
    assert main["probe"]["reward_ratio"] == pytest.approx(3.0)
    # the main base: TTT (0.9, 1.0, 0.7, 0.6) minus best-of-N (0.2, 0.5, 0.2, 0.3) and minus FLOPs-matched
    # best-of-N (0.3, 0.5, 1.0, 0.3)
    assert main["edges"]["samples"]["mean_diff"] == pytest.approx(0.5) and main["edges"]["samples"]["n"] == 4
    assert main["edges"]["flops"]["mean_diff"] == pytest.approx(mean(list(edges(1.0, FLOPS_FINAL).values())))
    assert early["edges"]["samples"]["mean_diff"] == pytest.approx(mean(list(edges(EARLY_SCALE, BON_FINAL).values())))
    assert early["edges"]["samples"]["mean_diff"] == pytest.approx(-0.1)
    assert main["crossover"]["x"] == 60e9 and main["crossover"]["direction"] == "treat overtakes"
    assert main["bestofn"]["best"] == pytest.approx(0.3) and main["ttt"]["best"] == pytest.approx(0.8)
    # per family: fa = a0, a1; fb = b0, b1
    assert main["families"]["fa"]["samples"]["mean_diff"] == pytest.approx((0.7 + 0.5) / 2)
    assert main["families"]["fb"]["samples"]["n"] == 2
    assert main["probe"]["families"]["fb"]["gap"] == 1.0
    # the unfinished base: probed, no runs -> no level, no edge, no crossover
    assert mid["probe"]["gap"] == 0.8 and mid["bestofn"] is None and mid["ttt"] is None
    assert mid["edges"] == {"samples": None, "flops": None} and mid["crossover"] is None
    # trend: the main base's per-task edge minus the step-1000 base's, paired over the four tasks (step 2000
    # has no results); the best-of-N finals are the same at both, so it is (1 - 0.25) x TTT's finals
    for e in ("samples", "flops"):
        tr = ev["trend"][e]
        assert (tr["first"], tr["last"], tr["n"]) == (1000, 4000, 4)
        assert tr["mean_diff"] == pytest.approx(0.75 * mean(list(TTT_FINAL.values())))
        assert tr["ci95"][0] > 0 and tr["first_gap"] == 0.2 and tr["last_gap"] == 1.5
    sentence = S.trend_sentence(ev)
    assert "step 1000 (swap gap 0.20 nats) to the base at step 4000 (swap gap 1.50 nats)" in sentence
    assert sentence.count("it grows with the base's training") == 2 and "no trend" not in sentence


def test_no_trend_is_said_so(tmp_path):
    """The same TTT at both ends: the change is 0 and its interval contains 0, so no trend is stated."""
    _, manifest = make_sweep(tmp_path, early_scale=1.0)
    ev = S.read_sweep(manifest)
    assert ev["trend"]["samples"]["mean_diff"] == pytest.approx(0.0)
    sentence = S.trend_sentence(ev)
    assert sentence.count("the data show no trend") == 2 and "grows" not in sentence and "shrinks" not in sentence


def test_registry_section_tables_and_macros(tmp_path):
    _, manifest = make_sweep(tmp_path)
    md, tex = RR.sweep_section(S.read_sweep(manifest))
    text = "\n".join(md)
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip().strip("|").split("|")]
            for l in text.split("### Per family")[0].splitlines() if l.startswith("| ") and "---" not in l}
    main, early, mid = rows["4000 (main)"], rows["1000"], rows["2000"]
    assert main[1] == "3.100 (eval at 3750)" and main[2] == "1.500 [1.200, 1.800]" and main[3].endswith("(3.00x)")
    assert main[7] == "4" and main[8].startswith("+0.500 [") and main[9].startswith("+0.275 [")
    assert main[10] == "6.0e10 [6.0e10, 6.0e10] (TTT main overtakes best-of-N)"
    assert early[8].startswith("-0.100 [")
    assert mid[2].startswith("0.800 [") and mid[5:] == ["n/a", "n/a", "0", "n/a", "n/a", "n/a"]   # unfinished
    fam = text.split("### Per family")[1].split("### Trend")[0]
    assert "| fa | 4000 (main) | 2.000 [1.900, 2.100] | 2 | +0.600 [" in fam
    assert "| fb | 2000 | 0.100 [0.000, 0.200] | 0 | n/a | n/a |" in fam
    assert "step 1000 -> step 4000, 4 tasks: +0.600 [" in text and "it grows with the base's training" in text
    assert "the main base's tune result for every point" in text
    sweep_tex = tex["sweep"]
    assert r"4000 (main) & 3.100 (eval at 3750) & 1.500 [1.200, 1.800] & 3.00x" in sweep_tex
    assert r"$6.0{\times}10^{10}$" in sweep_tex and sweep_tex.count(r"\\") == 1 + 3
    items = {m: v for m, v, _, _ in RR.sweep_items(S.read_sweep(manifest))}
    assert items["ddSweepPoints"] == "3" and items["ddSweepSteps"] == "1000, 2000, 4000"
    assert items["ddSweepTrendSamples"] == "+0.600" and items["ddSweepTrendSamplesCI"].startswith("[+")
    assert (items["ddSweepFirstStep"], items["ddSweepLastStep"]) == ("1000", "4000")


def test_missing_manifest_and_unreadable_points(tmp_path):
    ev = S.read_sweep(str(tmp_path / "runs" / "sweep" / "sweep.json"))
    md, tex = RR.sweep_section(ev)
    assert md[-1] == f"_No sweep over priors (`{ev['path']}`: not found); `make sweep` runs it._"
    assert "no sweep over priors yet" in tex["sweep"]
    assert S.trend_sentence(ev) == "The sweep over base models has not been run (make sweep)."
    # a manifest whose bases point nowhere (and one that is not a manifest): n/a cells, no crash
    wjson(str(tmp_path / "m.json"), {"seed": 0, "runs": {"ttt": "ttt_main_seed0"},
                                     "points": [{"step": 10, "probe_dir": "nowhere", "suite_dir": "nowhere"}, "junk",
                                                {"step": "late", "probe_dir": 5, "suite_dir": ["x"]}]})
    ev = S.read_sweep(str(tmp_path / "m.json"))
    assert [p["step"] for p in ev["points"]] == [10, None] and ev["trend"] == {"samples": None, "flops": None}
    row = [l for l in RR.sweep_section(ev)[0] if l.startswith("| 10 |")][0]
    assert row.count("n/a") >= 9
    assert "Fewer than two bases" in S.trend_sentence(ev)
    wjson(str(tmp_path / "bad.json"), [1, 2])
    assert "not a sweep manifest" in S.read_sweep(str(tmp_path / "bad.json"))["why"]


@pytest.mark.slow
def test_fill_tables_writes_the_sweep_table_and_macros(tmp_path):
    suite, _ = make_sweep(tmp_path)
    reg, tex = tmp_path / "reg.md", tmp_path / "tables"
    run_script("paper/scripts/fill_tables.py", "--runs_dir", suite, "--registry", str(reg), "--latex_dir", str(tex))
    text, setup = reg.read_text(), (tex / "setup.tex").read_text()
    assert "## Sweep over priors" in text and "| 4000 (main) |" in text
    assert r"\newcommand{\ddSweepPoints}{3}" in setup and r"\newcommand{\ddSweepTrendSamples}{+0.600}" in setup
    assert r"\newcommand{\ddSweepTrendSentence}{From the base at pretraining step 1000" in setup
    assert r"\newcommand{\ddMainEdgeSamples}{+0.500}" in setup
    assert "4000 (main)" in (tex / "sweep.tex").read_text()
    # without a manifest: the one line, an empty table, the macros still defined
    os.remove(tmp_path / "runs" / "sweep" / "sweep.json")
    run_script("paper/scripts/fill_tables.py", "--runs_dir", suite, "--registry", str(reg), "--latex_dir", str(tex))
    assert "`make sweep` runs it._" in reg.read_text() and "no sweep over priors yet" in (tex / "sweep.tex").read_text()
    assert r"\newcommand{\ddSweepTrendSamples}{n/a}" in (tex / "setup.tex").read_text()


def test_sweep_figure(tmp_path, monkeypatch):
    _, manifest = make_sweep(tmp_path)
    spec = importlib.util.spec_from_file_location("plot_results", os.path.join(ROOT, "paper", "plot_results.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    figs = tmp_path / "figs"
    figs.mkdir()
    assert mod.plot_sweep(manifest, str(figs))
    assert (figs / "sweep.png").stat().st_size > 1000 and (figs / "sweep.pdf").exists()
    saved = []
    monkeypatch.setattr(mod, "save", lambda fig, fig_dir, name: saved.append(fig))
    assert mod.plot_sweep(manifest, str(figs))
    gap_ax, ratio_ax = saved[0].axes
    lines = {l.get_label(): l for l in gap_ax.get_lines()}
    ys = [c for c in gap_ax.containers]   # errorbar containers: samples, flops
    assert len(ys) == 2
    samples = ys[0].lines[0]
    assert list(samples.get_xdata()) == [0.2, 1.5]                       # the unfinished base is not drawn
    assert list(samples.get_ydata()) == pytest.approx([-0.1, 0.5])
    fam = lines["per family (best-of-N at equal samples)"]
    assert sorted(fam.get_xdata()) == [0.1, 0.3, 1.0, 2.0]
    assert list(ratio_ax.containers[0].lines[0].get_xdata()) == pytest.approx([2.0, 3.0])
    assert [t.get_text() for t in gap_ax.texts][:2] == ["step 1000", "step 4000"]
    # no manifest: skipped, said so
    assert not mod.plot_sweep(str(tmp_path / "none.json"), str(figs))
