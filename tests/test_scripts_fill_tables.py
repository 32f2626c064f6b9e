"""fill_tables.py on hand-made suite run directories: budget curves at N, controls, ablations,
SDFT vs SFT with a gate that rejected every step, retention with and without the filler split,
the TTT learning table, the setup macros, ttt_train kept out of held-out tables, and missing
inputs that must not crash. Expected values are computed here by hand, not by the script's code."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, run_script, wjson, wjsonl

pytestmark = pytest.mark.slow

ROLLOUTS, STEPS = 32, 6           # budget 192 -> N = 6.4, 25.6, 102.4, 192 -> 32, 96, 192 on the curve grid
GRID = [32 * k for k in range(1, STEPS + 1)]
TASKS = [("sort-h-0", "sort"), ("sort-h-1", "sort"), ("golomb-h-2", "golomb"), ("golomb-h-3", "golomb")]
# best_so_far after each round/step (samples 32, 64, ..., 192), per task, seed 0
BESTOFN = [[0.1, 0.1, 0.2, 0.2, 0.2, 0.3], [0.0, 0.5, 0.5, 0.5, 1.0, 1.0],
           [0.2, 0.2, 0.2, 0.2, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0, 0.4]]
TTT = [[0.2, 0.4, 0.6, 0.8, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0, 1.0, 1.0],
       [0.1, 0.1, 0.3, 0.3, 0.3, 0.5], [0.0, 0.2, 0.2, 0.2, 0.2, 0.2]]
FINAL = {  # final best reward per task for the other held-out runs (seed 0; seed 1 the same)
    "ttt_lr0": [0.5, 0.5, 0.5, 0.2],
    "base_bestofn_flops": [0.4, 1.0, 0.3, 0.2],
    "ttt_reuse0": [0.3, 0.3, 0.3, 0.3],
    "ttt_adapt0": [0.9, 0.9, 0.4, 0.2],
    "ttt_kl0": [1.0, 1.0, 0.5, 0.1],
    "ttt_expected": [0.6, 0.6, 0.6, 0.6],
    "sdft20_bestofn": [0.5, 1.0, 0.4, 0.4],
    "sft20_bestofn": [0.3, 1.0, 0.2, 0.4],
}
TRAIN_BEST = 0.777  # a value no held-out run has: it must not leak into held-out tables


def seed_scale(seed):
    return 1.0 if seed == 0 else 0.5






def write_run(suite, name, tasks, finals, *, mode, seed, config, curves=None, curve_in="summary", metrics=None,
              samples=STEPS * ROLLOUTS):
    """One suite run directory as run_discovery_suite.py writes it."""
    d = os.path.join(suite, name)
    rows = []
    for i, (tid, fam) in enumerate(tasks):
        row = {"task_id": tid, "family": fam, "difficulty": 1, "mode": mode, "best_reward": finals[i],
               "solved": finals[i] >= 0.99, "samples": samples, "generated_tokens": 100, "flops": 1e9,
               "first_step_solved": None, "wall_s": 1.0}
        curve = [{"samples": n, "best_so_far": b} for n, b in zip(GRID, curves[i])] if curves else None
        if curve and curve_in == "summary":
            row["best_curve"] = curve
        wjson(os.path.join(d, tid, "result.json"), {**row, "best_curve": curve} if curve and curve_in == "result"
              else row)
        if metrics:
            wjsonl(os.path.join(d, tid, "metrics.jsonl"), metrics(i))
        rows.append(row)
    wjsonl(os.path.join(d, "summary.jsonl"), rows)
    wjson(os.path.join(d, "config.json"), {"args": {**config, "mode": mode, "seed": seed}, "provenance": {}})


def ttt_metrics(curve, slope=0.05):
    """Per-step metrics of a TTT task whose best_so_far follows `curve` (mean reward = slope x step + 0.01 i)."""
    def rows(i):
        return [{"step": k, "mean_reward": slope * k + 0.01 * i, "max_reward": curve[i][k - 1],
                 "best_so_far": curve[i][k - 1], "samples": GRID[k - 1], "beta": 2.0, "archive_size": k,
                 "kl_to_base": 0.02 * (i + 1) * k / STEPS, "entropy": 1.0, "loss": 0.1, "grad_norm": 0.5,
                 "const_group_share": 0.25, "lora_update_norm": 0.1 * (i + 1) * k / STEPS} for k in range(1, STEPS + 1)]
    return rows


def make_suite(tmp_path, with_filler=True):
    """runs/suite-like layout under tmp_path; returns (suite dir, pretrain dir)."""
    suite, pre = str(tmp_path / "runs" / "suite"), str(tmp_path / "runs" / "pretrain")
    held, train = str(tmp_path / "heldout.jsonl"), str(tmp_path / "train.jsonl")
    wjsonl(held, [{"task_id": t, "family": f} for t, f in TASKS])
    train_tasks = [(f"sort-t-{i}", "sort") for i in range(3)]
    wjsonl(train, [{"task_id": t, "family": f} for t, f in train_tasks])
    wjson(os.path.join(pre, "model_config.json"), {"vocab_size": 320, "d_model": 64, "n_layers": 2, "n_heads": 2,
                                                    "d_ff": 192, "max_seq_len": 128, "mhc_streams": 4,
                                                    "mhc_sinkhorn_iters": 20})
    wjson(os.path.join(pre, "pretrain_config.json"), {"steps": 200, "seq_len": 128, "tokens_per_step": 2048,
                                                       "num_params": 1_234_567, "train_tokens": 5_000_000})
    wjsonl(os.path.join(pre, "metrics.jsonl"), [{"step": 0, "val_ppl": 300.0},
                                                {"step": 200, "tokens_seen": 409_600, "val_ppl": 12.5}])
    ckpt = os.path.join(pre, "ckpt_latest.pt")
    base_cfg = {"tasks": held, "ckpt": ckpt, "ttt_steps": STEPS, "rollouts": ROLLOUTS, "max_new_tokens": 24,
                "budget_match": "samples", "lora_rank": 8, "lora_alpha": 16.0, "lr": 0.001, "kl_lambda": 0.1,
                "groups": 4, "temperature": 1.0, "max_tasks": 0}
    for m in ("sdft", "sft"):
        sd = str(tmp_path / "runs" / f"{m}_from_ttt_steps20")
        wjson(os.path.join(sd, "config.json"), {"args": {"steps": 20, "data": str(tmp_path / "demos.jsonl"),
                                                         "method": m, "ema_alpha": 0.01, "kl": "forward",
                                                         "gate_every": 10, "gate_max_ppl_increase": 0.05}})
        rep = {"method": m, "base_ppl": 12.5, "gate": [{"step": 0, "ppl": 12.5, "passed": True},
                                                      {"step": 10, "ppl": 12.6, "passed": m == "sdft"},
                                                      {"step": 20, "ppl": 12.7, "passed": m == "sdft"}],
               "promoted_step": 20 if m == "sdft" else 0, "all_rejected": m == "sft"}
        wjson(os.path.join(sd, "sdft_eval_report.json"), rep)
    wjsonl(str(tmp_path / "demos.jsonl"), [{"prompt": "p", "demo": "d"}] * 5)
    for seed in (0, 1):
        k = seed_scale(seed)
        bon = [[k * x for x in c] for c in BESTOFN]
        ttt = [[k * x for x in c] for c in TTT]
        # seed 0 curves in summary.jsonl; seed 1: best-of-N in result.json, TTT only in metrics.jsonl
        write_run(suite, f"base_bestofn_seed{seed}", TASKS, [c[-1] for c in bon], mode="bestofn", seed=seed,
                  config=base_cfg, curves=bon, curve_in="summary" if seed == 0 else "result")
        write_run(suite, f"ttt_main_seed{seed}", TASKS, [c[-1] for c in ttt], mode="ttt", seed=seed, config=base_cfg,
                  curves=ttt if seed == 0 else None, metrics=ttt_metrics(ttt))
        for stem, finals in FINAL.items():
            if stem.startswith("ttt_") and stem != "ttt_lr0" and seed == 1:
                continue  # ablations are seed-0 runs
            cfg = dict(base_cfg)
            if stem.startswith(("sdft", "sft")):
                cfg["ckpt"] = str(tmp_path / "runs" / f"{stem[:-len('20_bestofn')]}_from_ttt_steps20" / "sdft_latest.pt")
            mode = "ttt" if stem.startswith("ttt_") else "bestofn"
            write_run(suite, f"{stem}_seed{seed}", TASKS, finals, mode=mode, seed=seed, config=cfg,
                      samples=960 if stem == "base_bestofn_flops" else STEPS * ROLLOUTS,
                      metrics=ttt_metrics([[f] * STEPS for f in finals], slope=0.0) if stem == "ttt_lr0" else None)
    write_run(suite, "ttt_train_seed0", train_tasks, [TRAIN_BEST] * 3, mode="ttt", seed=0,
              config={**base_cfg, "tasks": train},
              metrics=lambda i: [{"step": s, "mean_reward": 0.3 + 0.1 * s, "best_so_far": TRAIN_BEST,
                                  "samples": 32 * s, "kl_to_base": 0.5, "lora_update_norm": 2.0}
                                 for s in (1, 2)])
    ret = {"base_ppl": 10.0, "updated_ppl": 10.4, "base_loss": 2.3, "updated_loss": 2.34, "delta_ppl": 0.4,
           "rel_delta_ppl": 0.04, "delta_ppl_ci95": [0.1, 0.7], "tokens": 1000, "batches": 5, "args": {}}
    sdft_ret = dict(ret, promotion={"promoted_step": 20, "all_rejected": False})
    if with_filler:
        sdft_ret.update(headline="filler", filler={**ret, "delta_ppl": 0.1, "rel_delta_ppl": 0.01,
                                                   "delta_ppl_ci95": [0.05, 0.15], "updated_ppl": 10.1})
    wjson(os.path.join(suite, "retention_ppl.json"), sdft_ret)
    # SFT: no filler, no "promotion" key: the promotion comes from the report beside updated_ckpt
    wjson(os.path.join(suite, "retention_ppl_sft.json"),
          dict(ret, delta_ppl=0.9, rel_delta_ppl=0.09, delta_ppl_ci95=[0.6, 1.2],
               args={"updated_ckpt": str(tmp_path / "runs" / "sft_from_ttt_steps20" / "sdft_latest.pt")}))
    return suite, pre


def fill(tmp_path, suite, *extra):
    reg, tex = tmp_path / "reg.md", tmp_path / "tables"
    run_script("paper/scripts/fill_tables.py", "--runs_dir", suite, "--registry", str(reg), "--latex_dir", str(tex),
               *extra)
    return reg.read_text(), tex


def section(text, title):
    """The registry text from a '#' heading containing `title` to the next heading of that level or higher."""
    m = re.search(r"^(#+) [^\n]*" + re.escape(title) + r"[^\n]*$", text, re.M)
    assert m, f"no section {title!r}"
    level = len(m.group(1))
    rest = text[m.end():]
    nxt = re.search(r"^#{1,%d} " % level, rest, re.M)
    return rest[:nxt.start()] if nxt else rest


def table_row(text, *starts):
    """Cells of the first Markdown table row whose leading cells equal `starts`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[:len(starts)] == list(starts):
            return cells
    raise AssertionError(f"no row starting {starts}")


def close(cell, expected):
    """A table cell's leading number equals `expected` to the printed precision (3 decimals)."""
    return abs(float(cell.split(" [")[0].split(" / ")[0]) - expected) <= 0.0005 + 1e-9


def at(curve, n):
    """Best-so-far within n samples, by hand: the last point at or below n."""
    vals = [b for s, b in zip(GRID, curve) if s <= n]
    return vals[-1] if vals else 0.0


def test_budget_curves_at_each_n(tmp_path):
    suite, _ = make_suite(tmp_path)
    text, tex = fill(tmp_path, suite)
    budget = section(text, "Budget curves")
    assert "random search" not in budget  # no audit.json beside the held-out tasks: no row
    held = json.load(open(os.path.join(suite, "base_bestofn_seed0", "config.json")))["args"]["tasks"]
    wjson(os.path.join(os.path.dirname(held), "audit.json"),
          {"overall": {"heldout": {"n_tasks": 4, "mean_best": {"32": 0.25, "192": 0.5, "960": 0.9},
                                   "solve_rate": {"32": 0.0, "192": 0.125}}}})
    text, tex = fill(tmp_path, suite)
    budget = section(text, "Budget curves")
    assert table_row(section(budget, "Mean best reward at N"), "-", "random search")[3:] == ["4", "0.250", "n/a", "0.500"]
    assert table_row(section(budget, "Solve rate at N"), "-", "random search")[3:] == ["4", "0.000", "n/a", "0.125"]
    # an audit from before the policy baseline: no policy row, the share beating the policy n/a, no crash
    assert "| policy |" not in budget and "Policy (greedy" not in budget
    runs = section(text, "Suite runs")
    assert table_row(runs, "`ttt_main_seed0`")[5] == "n/a" and "n/a here: no policy_answer_reward" in runs
    assert r"\newcommand{\ddPolicyAnswerReward}{n/a}" in (tex / "setup.tex").read_text()
    assert "N=32 | N=96 | N=192 |" in budget and "N=128" not in budget  # 192/960 x {32,128,512,960}, on the grid
    best, solve = section(budget, "Mean best reward at N"), section(budget, "Solve rate at N")
    for seed in (0, 1):
        k = seed_scale(seed)
        for arm, curves, run in (("best-of-N", BESTOFN, f"base_bestofn_seed{seed}"),
                                 ("TTT main", TTT, f"ttt_main_seed{seed}")):
            b_cells = table_row(best, str(seed), arm, f"`{run}`")
            s_cells = table_row(solve, str(seed), arm, f"`{run}`")
            assert b_cells[3] == "4"
            for j, n in enumerate((32, 96, 192)):
                vals = [k * at(c, n) for c in curves]
                assert close(b_cells[4 + j], sum(vals) / 4), (run, n, b_cells)
                assert close(s_cells[4 + j], sum(v >= 0.99 for v in vals) / 4), (run, n, s_cells)
    # seed 0 by hand: TTT at N=96 = (0.6 + 1.0 + 0.3 + 0.2) / 4; best-of-N at N=192 solves 1 of 4
    assert table_row(best, "0", "TTT main", "`ttt_main_seed0`")[5].startswith("0.525 [")
    assert table_row(solve, "0", "best-of-N", "`base_bestofn_seed0`")[6].startswith("0.250 [")
    paired = section(budget, "TTT main minus best-of-N at each N")
    for seed in (0, 1):
        k = seed_scale(seed)
        for n in (32, 96, 192):
            d = sum(k * (at(t, n) - at(b, n)) for t, b in zip(TTT, BESTOFN)) / 4
            cells = table_row(paired, str(seed), str(n))
            assert cells[2] == "4" and close(cells[4], d), (seed, n, cells)
    fam = section(budget, "Per family")
    # sort tasks, TTT main, N=32, seeds pooled: (0.2 + 0.5 + 0.1 + 0.25) / 4 = 0.2625
    cell = table_row(fam, "sort", "TTT main", "4")[3]
    assert cell.startswith("0.000 / ") and close(cell.split(" / ")[1], (0.2 + 0.5 + 0.1 + 0.25) / 4)
    assert "$N=96$" in (tex / "budget.tex").read_text() and "0.525" in (tex / "budget.tex").read_text()
    assert (tex / "budget_paired.tex").read_text().count(r"\\") == 1 + 6  # header + 2 seeds x 3 N


def test_policy_baseline_and_the_share_beating_it(tmp_path):
    """The policy row under both arms at N, and per run the share of tasks whose best answer is
    strictly above the policy's own answer (golomb-h-3 has none in the audit: left out)."""
    suite, _ = make_suite(tmp_path)
    held = json.load(open(os.path.join(suite, "base_bestofn_seed0", "config.json")))["args"]["tasks"]
    wjson(os.path.join(os.path.dirname(held), "audit.json"),
          {"overall": {"heldout": {"n_tasks": 4, "mean_best": {"32": 0.25, "192": 0.5}, "solve_rate": {"32": 0.0},
                                   "policy": {"n_tasks": 4, "mean_best": {"32": 0.45, "96": 0.55, "192": 0.6},
                                              "solve_rate": {"32": 0.25, "96": 0.25, "192": 0.5},
                                              "answer_reward": 0.3333, "answer_solve_rate": 0.0}}},
           "policy_answer_reward": {"sort-h-0": 0.3, "sort-h-1": 0.5, "golomb-h-2": 0.2}})
    text, tex = fill(tmp_path, suite)
    budget = section(text, "Budget curves")
    assert table_row(section(budget, "Mean best reward at N"), "-", "policy")[2:] == ["`audit.json`", "4", "0.450",
                                                                                     "0.550", "0.600"]
    assert table_row(section(budget, "Solve rate at N"), "-", "policy")[4:] == ["0.250", "0.250", "0.500"]
    assert table_row(section(budget, "Solve rate at N"), "-", "random search")[4:] == ["0.000", "n/a", "n/a"]
    assert "Its own answer (noise 0) has mean reward 0.333 and solves 0.000" in budget
    # finals, seed 0: best-of-N 0.3, 1.0, 0.2 -> only sort-h-1 beats (equal is not better); TTT main 1.0, 1.0,
    # 0.5 -> all three; seed 1 halves them: best-of-N none, TTT main 0.5 > 0.3 and 0.25 > 0.2
    runs = section(text, "Suite runs")
    for run, share in (("base_bestofn_seed0", 1 / 3), ("ttt_main_seed0", 1.0), ("base_bestofn_seed1", 0.0),
                       ("ttt_main_seed1", 2 / 3)):
        assert close(table_row(runs, f"`{run}`")[5], share), run
    assert table_row(runs, "`ttt_train_seed0`")[5] == "n/a"   # train tasks are not in this audit
    main = (tex / "main_results.tex").read_text()
    assert "beats policy" in main and "ttt\\_main\\_seed0 & 4 &" in main and main.count("& 1.000 [") >= 1
    assert r"\newcommand{\ddPolicyAnswerReward}{0.333}" in (tex / "setup.tex").read_text()
    assert r"\newcommand{\ddPolicyAnswerSolved}{0.000}" in (tex / "setup.tex").read_text()


def test_budget_points_follow_the_runbook_budget(tmp_path):
    """The runbook's 30 x 32 = 960 gives N = 32, 128, 512, 960 as they are."""
    suite = str(tmp_path / "suite")
    grid = list(range(32, 961, 32))
    for name, mode in (("base_bestofn_seed0", "bestofn"), ("ttt_main_seed0", "ttt")):
        d = os.path.join(suite, name)
        wjsonl(os.path.join(d, "summary.jsonl"), [{"task_id": "t", "family": "f", "best_reward": 0.5, "solved": False,
                                                   "samples": 960, "best_curve": [{"samples": n, "best_so_far": n / 960 / 2}
                                                                                  for n in grid]}])
        wjson(os.path.join(d, "config.json"), {"args": {"ttt_steps": 30, "rollouts": 32, "mode": mode}})
    text, _ = fill(tmp_path, suite)
    assert "N=32 | N=128 | N=512 | N=960 |" in text
    row = table_row(section(text, "Mean best reward at N"), "0", "TTT main")
    assert all(close(c, n / 1920) for c, n in zip(row[4:8], (32, 128, 512, 960))), row


def test_controls_ablations_and_consolidation(tmp_path):
    suite, _ = make_suite(tmp_path)
    text, tex = fill(tmp_path, suite)
    ttt_final = [c[-1] for c in TTT]
    controls = section(text, "Learning and compute")

    def delta(a, b):
        return sum(y - x for x, y in zip(a, b)) / len(a)

    for seed in (0, 1):
        k = seed_scale(seed)
        main = [k * x for x in ttt_final]
        for label, other in ((f"TTT main minus ttt_lr0, no learning (seed {seed})", FINAL["ttt_lr0"]),
                             (f"TTT main minus FLOPs-matched best-of-N (seed {seed})", FINAL["base_bestofn_flops"])):
            cells = next(line for line in controls.splitlines() if line.startswith(f"| {label}")).split("|")
            assert cells[2].strip() == "4"
            assert close(cells[4].strip(), delta(other, main)), (label, cells)
            solved = delta([float(x >= 0.99) for x in other], [float(x >= 0.99) for x in main])
            assert close(cells[3].strip(), solved), (label, cells)
    abl = section(text, "Ablations (ablation minus TTT main)")
    for stem in ("reuse0", "adapt0", "kl0", "expected"):
        line = next(l for l in abl.splitlines() if l.startswith(f"| ablation {stem} vs TTT main (seed 0)"))
        assert close(line.split("|")[4].strip(), delta(ttt_final, FINAL["ttt_" + stem])), line
    assert "seed 1)" not in abl  # ablations are single-seed runs
    cons = section(text, "Consolidation: SDFT vs SFT")
    line = next(l for l in cons.splitlines() if l.startswith("| SDFT minus SFT, E1 best-of-N (seed 0)"))
    assert close(line.split("|")[4].strip(), delta(FINAL["sft20_bestofn"], FINAL["sdft20_bestofn"])), line
    bon0 = [c[-1] for c in BESTOFN]
    line = next(l for l in cons.splitlines() if l.startswith("| sdft20 best-of-N vs base best-of-N (seed 0)"))
    assert close(line.split("|")[4].strip(), delta(bon0, FINAL["sdft20_bestofn"])), line
    # the gate rejected every SFT step: said in words, and the SFT rows are labelled
    assert "the gate rejected every step: `sft20_bestofn_seed0` measures the base model" in text
    assert "the gate rejected every step: `retention_ppl_sft.json` measures the base model" in text
    assert "`sdft20_bestofn_seed0` (SDFT): promoted step 20" in text
    assert "rejected every step: `sdft20" not in text
    assert re.search(r"\| sft20 best-of-N vs base best-of-N \(seed 0\) \[gate rejected every step: base model\]", cons)
    suite_runs = section(text, "Suite runs")
    assert "`sft20_bestofn_seed1` (gate rejected every step: base model)" in suite_runs
    assert "`sdft20_bestofn_seed1` |" in suite_runs
    assert "ttt\\_lr0" in (tex / "controls.tex").read_text()


def test_retention_filler_headline_and_learning(tmp_path):
    suite, _ = make_suite(tmp_path)
    text, tex = fill(tmp_path, suite)
    side = section(text, "Retention, SDFT and SFT side by side")
    sdft = table_row(side, "SDFT", "`retention_ppl.json`")
    assert sdft[2:6] == ["20", "filler", "+0.100 [+0.050, +0.150]", "+1.00%"] and sdft[6:8] == [
        "+0.400 [+0.100, +0.700]", "+4.00%"]
    sft = table_row(side, "SFT", "`retention_ppl_sft.json`")
    assert sft[2].startswith("0 (all rejected") and sft[3] == "val" and sft[4] == "+0.900 [+0.600, +1.200]"
    assert r"filler & +0.100" in (tex / "retention.tex").read_text()
    per_file = section(text, "Retention (validation perplexity)")
    assert table_row(per_file, "`retention_ppl.json`", "filler-only held-out")[2] == "yes"
    assert table_row(per_file, "`retention_ppl.json`", "val.bin")[2] == ""
    learn = section(text, "TTT learning")
    row = table_row(learn, "`ttt_main_seed0`")
    # mean reward: step 1 = 0.05 + 0.01 i, step 6 = 0.30 + 0.01 i (i = 0..3); last - first = 0.25 for every task
    assert row[1:6] == ["held-out", "TTT main", "4", "0.065", "0.315"] and row[6] == "+0.250 [+0.250, +0.250]"
    assert row[7] == f"{sum(0.02 * (i + 1) for i in range(4)) / 4:.4f}"           # KL at the last step
    assert row[8] == f"{sum(0.1 * (i + 1) for i in range(4)) / 4:.4f}"            # LoRA update norm, last step
    assert table_row(learn, "`ttt_lr0_seed0`")[2:7] == ["control (lr 0)", "4", "0.015", "0.015",
                                                        "+0.000 [+0.000, +0.000]"]
    assert table_row(learn, "`ttt_train_seed0`")[1:7] == ["train", "TTT main", "3", "0.400", "0.500",
                                                          "+0.100 [+0.100, +0.100]"]
    # without filler the headline is val.bin
    other = tmp_path / "nofiller"
    other.mkdir()
    suite2, _ = make_suite(other, with_filler=False)
    text2, _ = fill(other, suite2)
    assert table_row(section(text2, "side by side"), "SDFT", "`retention_ppl.json`")[3] == "val"


def test_train_split_kept_out_of_heldout_tables(tmp_path):
    suite, _ = make_suite(tmp_path)
    text, tex = fill(tmp_path, suite)
    suite_runs = section(text, "Suite runs")
    held, train = suite_runs.split("Train split")
    assert "ttt_train" not in held and "`ttt_train_seed0` | 3 |" in train
    for title in ("Budget curves", "Paired comparisons", "Controls"):
        assert "ttt_train" not in section(text, title) and f"{TRAIN_BEST}" not in section(text, title)
    for name in ("main_results", "paired", "budget", "budget_paired", "controls"):
        assert "ttt\\_train" not in (tex / f"{name}.tex").read_text(), name
    assert r"\newcommand{\ddHeldoutTasks}{4}" in (tex / "setup.tex").read_text()


def test_setup_macros(tmp_path):
    suite, pre = make_suite(tmp_path)
    _, tex = fill(tmp_path, suite)
    setup = (tex / "setup.tex").read_text()
    expect = {"ddModelParams": "1.2M", "ddModelLayers": "2", "ddModelWidth": "64", "ddModelStreams": "4",
              "ddVocabSize": "320", "ddPretrainSteps": "200", "ddPretrainTokens": "409.6k", "ddCorpusTokens": "5.0M",
              "ddPretrainValPPL": "12.50", "ddTTTSteps": "6", "ddRollouts": "32", "ddMaxNewTokens": "24",
              "ddBudget": "192", "ddBudgetPoints": "32, 96, 192", "ddBudgetFlops": "960", "ddHeldoutTasks": "4",
              "ddTrainTasks": "3", "ddNumFamilies": "2", "ddFamilyList": "golomb, sort", "ddSeeds": "0, 1",
              "ddNumSeeds": "2", "ddSDFTSteps": "20", "ddDemos": "5", "ddEMAAlpha": "0.01",
              "ddSDFTPromotedStep": "20", "ddSFTPromotedStep": "0", "ddSDFTGateNote": "",
              "ddGateMaxIncrease": r"5\%", "ddRetentionHeadline": "filler-only held-out text",
              "ddBudgetAnchors": "32, 128, 512, 960", "ddBudgetReference": "960", "ddAblationSeeds": "0",
              "ddSolvedThreshold": "0.99", "ddPolicyNoise": "0.5", "ddPolicyAnswerReward": "n/a"}
    for macro, value in expect.items():
        assert f"\\newcommand{{\\{macro}}}{{{value}}}" in setup, macro
    assert re.search(r"\\newcommand\{\\ddSFTGateNote\}\{The validation-perplexity gate rejected every SFT step", setup)
    # an explicit --pretrain_dir wins over the ckpt's directory
    os.rename(pre, pre + "_moved")
    _, tex = fill(tmp_path, suite)
    assert r"\newcommand{\ddModelParams}{n/a}" in (tex / "setup.tex").read_text()
    _, tex = fill(tmp_path, suite, "--pretrain_dir", pre + "_moved")
    assert r"\newcommand{\ddModelParams}{1.2M}" in (tex / "setup.tex").read_text()


def test_missing_inputs_do_not_crash(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    text, tex = fill(tmp_path, str(empty))
    assert "No finished suite runs" in text and "guardrails" in text
    setup = (tex / "setup.tex").read_text()
    assert r"\newcommand{\ddModelParams}{n/a}" in setup and r"\newcommand{\ddBudget}{n/a}" in setup
    for name in ("main_results", "budget", "budget_paired", "paired", "controls", "retention", "learning"):
        assert r"\end{tabular}" in (tex / f"{name}.tex").read_text()
    # partial, broken and old-format inputs: no config, no curves, a bad line, a bare retention file
    suite = tmp_path / "partial"
    d = suite / "base_bestofn_seed0"
    d.mkdir(parents=True)
    (d / "summary.jsonl").write_text(json.dumps({"task_id": "a", "family": "f", "best_reward": 0.5, "solved": False,
                                                 "samples": 8}) + "\n{not json\n")
    (d / "config.json").write_text("{broken")
    t = suite / "ttt_main_seed0"
    (t / "a").mkdir(parents=True)
    (t / "summary.jsonl").write_text(json.dumps({"task_id": "a", "family": "f", "best_reward": 1.0, "solved": True,
                                                 "samples": 8}) + "\n")
    (t / "a" / "metrics.jsonl").write_text(json.dumps({"step": 1, "samples": 8, "best_so_far": 1.0}) + "\n")
    (suite / "sdft500_bestofn_seed0").mkdir()
    (suite / "sdft500_bestofn_seed0" / "summary.jsonl").write_text(
        json.dumps({"task_id": "a", "family": "f", "best_reward": 0.5, "solved": False, "samples": 8}) + "\n")
    (suite / "retention_ppl.json").write_text(json.dumps({"delta_ppl": 0.1}))
    (suite / "retention_ppl_sft.json").write_text("[]")
    text, tex = fill(tmp_path, str(suite))
    assert "TTT main vs best-of-N (seed 0)" in text
    assert "`base_bestofn_seed0`: 1" in text  # one task without a curve, reported
    assert "promoted step n/a (no promotion record found)" in text
    assert r"\newcommand{\ddBudget}{8}" in (tex / "setup.tex").read_text()


def test_missing_runs_dir_is_a_clear_error(tmp_path):
    proc = run_script("paper/scripts/fill_tables.py", "--runs_dir", str(tmp_path / "nope"), "--registry",
                      str(tmp_path / "r.md"), "--latex_dir", str(tmp_path / "t"), check=False)
    assert proc.returncode != 0 and "--runs_dir" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_latex_macros_have_placeholders(tmp_path):
    """Every macro fill_tables.py writes has a placeholder in paper/latex/defaults.tex, and every
    \\dd... macro the manuscript uses is one of them (so a missing run never breaks the build)."""
    suite, _ = make_suite(tmp_path)
    _, tex = fill(tmp_path, suite)
    generated = set(re.findall(r"\\newcommand\{\\(dd[A-Za-z]+)\}", (tex / "setup.tex").read_text()))
    latex = os.path.join(ROOT, "paper", "latex")
    provided = set(re.findall(r"\\providecommand\{\\(dd[A-Za-z]+)\}", open(os.path.join(latex, "defaults.tex")).read()))
    assert len(generated) > 30 and generated <= provided, generated - provided
    used = set()
    for name in ["main.tex"] + [os.path.join("sections", f) for f in os.listdir(os.path.join(latex, "sections"))]:
        used |= set(re.findall(r"\\(dd[A-Z][A-Za-z]*)", open(os.path.join(latex, name)).read()))
    assert used and used <= generated, used - generated
    # the results section states no number by hand: every digit is in a label, a reference or a macro
    results = open(os.path.join(latex, "sections", "05_results.tex")).read()
    prose = re.sub(r"(?<!\\)%.*", "", results)  # comments (not \\%)
    prose = re.sub(r"\\(label|ref|ddtable|ddfigure|citep|citet|begin|end)\{[^}]*\}(\{[^}]*\})?", "", prose)
    prose = re.sub(r"\[[a-z]+\]", "", prose)
    prose = prose.replace("95\\%", "").replace("0.6\\linewidth", "")   # interval level, figure width
    assert not re.findall(r"\d", prose), re.findall(r".{0,30}\d.{0,30}", prose)


# --- the manuscript ----------------------------------------------------------------------------

def latex_available():
    if shutil.which("make") is None or (shutil.which("latexmk") is None and shutil.which("pdflatex") is None):
        return "pdflatex/latexmk (or make) not installed"
    if shutil.which("kpsewhich"):
        for sty in ("booktabs.sty", "natbib.sty", "graphicx.sty", "amsmath.sty", "hyperref.sty", "geometry.sty"):
            if not subprocess.run(["kpsewhich", sty], capture_output=True, text=True).stdout.strip():
                return f"LaTeX package {sty} not installed"
    return None


def make_pdf(tmp_path, name):
    """make pdf for a profile whose runs_dir is tmp_path/name (phase F's tables in latex_tables/,
    figures in figs/, as profile_outputs says) into tmp_path/name_out; returns the LaTeX log."""
    prof = json.load(open(os.path.join(ROOT, "configs", "profiles", "smoke.json")))
    prof["runs_dir"] = str(tmp_path / name)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(prof))
    out_dir = str(tmp_path / f"{name}_out")
    proc = subprocess.run(["make", "--no-print-directory", "pdf", f"PROFILE={path}", f"PDF_DIR={out_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    pdf = os.path.join(out_dir, "main.pdf")
    assert os.path.getsize(pdf) > 10_000
    log = open(os.path.join(out_dir, "main.log"), errors="replace").read()
    assert "Undefined control sequence" not in log and "LaTeX Error" not in log
    unresolved = [l for l in log.splitlines() if ("Citation" in l or "Reference" in l) and "undefined" in l]
    assert not unresolved, unresolved[:5]
    return log


def pdf_text(pdf):
    if not shutil.which("pdftotext"):
        return None
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    return " ".join(out.split())


def test_manuscript_builds(tmp_path):
    """make pdf PROFILE=... builds paper/latex/main.tex before any run exists (placeholders) and
    with the generated tables, macros and figures of a synthetic suite (skipped without LaTeX)."""
    why = latex_available()
    if why:
        pytest.skip(why)
    (tmp_path / "bare").mkdir()
    make_pdf(tmp_path, "bare")
    text = pdf_text(tmp_path / "bare_out" / "main.pdf")
    if text is not None:
        assert "Not generated yet" in text and "n/a" in text
    full = tmp_path / "full"
    suite, _ = make_suite(tmp_path)
    figs = str(full / "figs")
    run_script("paper/scripts/fill_tables.py", "--runs_dir", suite, "--registry", str(tmp_path / "reg.md"),
               "--latex_dir", str(full / "latex_tables"))
    run_script("paper/plot_results.py", "--runs_dir", suite, "--fig_dir", figs)
    run_script("paper/plot_pipeline_diagram.py", "--fig_dir", figs)
    log = make_pdf(tmp_path, "full")
    for fig in ("pipeline", "budget_curves", "flops_curves", "ttt_learning", "retention", "solve_rate", "per_family",
                "beta_kl"):
        assert f"{fig}.pdf" in log, fig
    text = pdf_text(tmp_path / "full_out" / "main.pdf")
    if text is not None:
        assert "Not generated yet" not in text
        assert "budget per task is therefore 192" in text                       # \ddBudget from setup.tex
        assert "The validation-perplexity gate rejected every SFT step" in text  # \ddSFTGateNote


PROBE = {"settings": {"per_family": 20, "samples": 128, "temperature": 1.0, "seed": 0},
         "families": {"tour": {"n_tasks": 20, "swap_gap": 2.5, "swap_gap_ci95": [1.9, 3.1], "policy_swap_gap": 3.5,
                               "policy_swap_gap_ci95": [3.0, 4.0], "policy_reward": 0.45, "well_formed": 0.95,
                               "random_well_formed": 1.0, "reward": 0.4, "random_reward": 0.1, "reward_ratio": 4.0,
                               "distinct_greedy": 0.9, "best_of_n": 0.8, "random_best_of_n": 0.6},
                      "golomb": {"n_tasks": 20, "swap_gap": 0.05, "swap_gap_ci95": [-0.1, 0.2], "policy_swap_gap": 0.25,
                                 "policy_swap_gap_ci95": [0.0, 0.5], "policy_reward": 0.3, "well_formed": 0.5,
                                 "random_well_formed": 1.0, "reward": 0.1, "random_reward": 0.1, "reward_ratio": 1.0,
                                 "distinct_greedy": 0.05, "best_of_n": 0.3, "random_best_of_n": 0.4}},
         "overall": {"n_tasks": 40, "swap_gap": 1.275, "swap_gap_ci95": [0.6, 2.0], "well_formed": 0.725,
                     "random_well_formed": 1.0, "reward": 0.25, "random_reward": 0.1, "reward_ratio": 2.5,
                     "distinct_greedy": 0.475, "best_of_n": 0.55, "random_best_of_n": 0.5}}


def test_probe_section_and_the_gate_in_words(tmp_path):
    suite, _ = make_suite(tmp_path)
    probe = tmp_path / "runs" / "probe"   # beside --runs_dir, where run_phase writes it
    wjson(str(probe / "probe.json"), PROBE)
    wjson(str(probe / "gate.json"), {"probe": "p", "thresholds": {"min_swap_gap": 1.0}, "opt_out": None,
                                     "failed": ["swap gap below 1 nats in 1 of 2 families (golomb 0.05); 2 must reach it"],
                                     "passed": False})
    text, tex = fill(tmp_path, suite)
    sec = section(text, "Base model probe")
    assert table_row(sec, "golomb")[1:] == ["20", "0.250 [0.000, 0.500]", "0.050 [-0.100, 0.200]", "0.500 (1.000)",
                                            "0.100 / 0.100 (1.00x)", "0.300", "0.050", "0.300 / 0.400"]
    assert table_row(sec, "tour")[2:4] == ["3.500 [3.000, 4.000]", "2.500 [1.900, 3.100]"]
    assert table_row(sec, "overall")[1] == "40" and table_row(sec, "overall")[2] == "n/a [n/a, n/a]"  # an old probe.json
    assert [l.split("|")[1].strip() for l in sec.splitlines() if l.startswith("| ") and "---" not in l][1:] == \
        ["golomb", "tour", "overall"]
    assert "**The probe gate failed** (swap gap below 1 nats in 1 of 2 families (golomb 0.05)" in sec
    assert "20 held-out tasks per family, 128 samples" in sec.replace("the first ", "")
    ptex = (tex / "probe.tex").read_text()
    assert r"\end{tabular}" in ptex and "golomb & 20 & 0.250 [0.000, 0.500] & 0.050 [-0.100, 0.200]" in ptex
    assert "overall" in ptex
    assert "by answer token" not in sec   # an old probe.json has no per-token gap
    # a probe with the per-token gap: a second table, one row per family that has it, the EOS marked
    with_steps = json.loads(json.dumps(PROBE))
    with_steps["families"]["tour"]["policy_swap_gap_by_token"] = [3.0, 0.4, 0.1]
    wjson(str(probe / "probe.json"), with_steps)
    steps = section(fill(tmp_path, suite)[0], "Base model probe").split("by answer token")[1]
    assert table_row(steps, "tour") == ["tour", "+3.00", "+0.40", "+0.10 (EOS)"] and "| golomb |" not in steps
    wjson(str(probe / "probe.json"), PROBE)
    # a profile that opted out: said in words with its reason; a passed gate names its thresholds
    wjson(str(probe / "gate.json"), {"thresholds": None, "opt_out": "the smoke model is tiny", "failed": [],
                                     "passed": True})
    sec = section(fill(tmp_path, suite)[0], "Base model probe")
    assert "The profile opted out of the probe gate: the smoke model is tiny." in sec
    wjson(str(probe / "gate.json"), {"thresholds": {"min_swap_gap": 1.0, "bestofn_vs_random": True}, "opt_out": None,
                                     "failed": [], "passed": True})
    assert "The probe gate passed (bestofn_vs_random True, min_swap_gap 1.0)." in fill(tmp_path, suite)[0]
    # a partial gate's note (what it leaves out, and why) is said beside the outcome
    wjson(str(probe / "gate.json"), {"thresholds": {"min_well_formed": 0.9}, "opt_out": None,
                                     "note": "swap gap not gated at this size", "failed": [], "passed": True})
    assert ("The probe gate passed (min_well_formed 0.9). The gate's profile note: swap gap not gated at this "
            "size.") in fill(tmp_path, suite)[0]
    # no probe at all (or an explicit --probe_dir without one): said so, an empty LaTeX table
    text, tex = fill(tmp_path, suite, "--probe_dir", str(tmp_path / "nowhere"))
    assert "_No probe result" in section(text, "Base model probe") and "No gate record" in text
    assert "no probe result yet" in (tex / "probe.tex").read_text()


def test_flops_section(tmp_path):
    """The curves against compute as the registry and the LaTeX tables print them (the numbers are
    worked out in tests/test_registry.py, on the same hand-made runs)."""
    from test_registry import TTT, make_flops_suite

    text, tex = fill(tmp_path, make_flops_suite(tmp_path))
    sec = section(text, "Curves against compute")
    assert "(1.2e9 FLOPs per sample" in sec   # best-of-N: 80 GFLOPs for 64 samples
    arms = section(sec, "Arms on the FLOPs axis")
    assert table_row(arms, "0", "TTT main")[4:] == ["8.2e10 [6.0e10, 9.0e10]", "per step from metrics.jsonl 4"]
    assert table_row(arms, "0", "best-of-N")[2] == "`base_bestofn_flops_seed0`"
    best = section(sec, "Mean best reward within F FLOPs")
    assert "| F=3.0e10 | F=3.7e10 | F=4.7e10 | F=5.8e10 | F=7.2e10 | F=9.0e10 |" in best
    ttt = table_row(best, "0", "TTT main", "`ttt_main_seed0`")
    assert close(ttt[4], 0.175) and close(ttt[8], 0.575) and ttt[8].endswith(" †") and not ttt[7].endswith("†")
    assert table_row(best, "0", "best-of-N")[9] == "n/a" and table_row(best, "0", "ttt_lr0")[6:] == ["n/a"] * 4
    assert table_row(best, "-", "random search")[4:] == ["0.200 (N=8)"] * 5 + ["0.600 (N=64) †"]
    assert table_row(best, "-", "policy")[3:] == ["4"] + ["0.500 (N=8)"] * 5 + ["0.700 (N=64) †"]
    assert table_row(section(sec, "Solve rate within F FLOPs"), "-", "policy")[4] == "0.250 (N=8)"
    per_fam = section(sec, "Per family (seeds pooled")
    assert table_row(per_fam, "fa", "policy")[2] == "0.000 / 0.500 (N=8)"
    solve = section(sec, "Solve rate within F FLOPs")
    assert table_row(solve, "0", "best-of-N")[4:9] == ["0.000 [0.000, 0.000]"] * 4 + ["0.000 [0.000, 0.000]"]
    reach = section(sec, "FLOPs to reach a mean best reward")
    assert table_row(reach, "0", "best-of-N final (samples-matched)")[2:] == ["0.300", "3.0e10", "6.0e10", "4.5e10",
                                                                              "8.0e10", "1.2e9"]
    assert table_row(reach, "0", "TTT main final")[3:] == ["not reached", "9.0e10", "not reached", "not reached",
                                                           "not reached"]
    cross = section(sec, "Crossover of TTT main and best-of-N")
    assert table_row(cross, "0")[1:] == ["4", "3.0e10 - 8.0e10", "6.0e10 [6.0e10, 6.0e10]",
                                         "TTT main overtakes best-of-N", "1", "100.0%"]
    fam = section(sec, "Per family: TTT main minus best-of-N")
    assert table_row(fam, "fa", "3.0e10")[2] == "2"
    flops_tex = (tex / "flops.tex").read_text()
    assert r"$3.0{\times}10^{10}$" in flops_tex and r"0.575$^\dagger$" in flops_tex and "random search" in flops_tex
    assert r"- & policy & 0.250 / 0.500" in flops_tex and "policy" in (tex / "flops_crossover.tex").read_text()
    assert r"$6.0{\times}10^{10}$ [$6.0{\times}10^{10}$, $6.0{\times}10^{10}$]" in (tex / "flops_crossover.tex").read_text()
    # a TTT that never catches up, said in words
    low = tmp_path / "low"
    low.mkdir()
    text, tex = fill(low, make_flops_suite(low, ttt={t: [0.5 * v for v in vals] for t, vals in TTT.items()}))
    assert table_row(section(text, "Crossover of TTT main"), "0")[3] == "no crossover in range"
    assert "no crossover in range" in (tex / "flops_crossover.tex").read_text()


def test_tune_section_names_the_chosen_setting_and_its_source(tmp_path):
    suite, _ = make_suite(tmp_path)
    text, tex = fill(tmp_path, suite)
    assert "_No tune result" in section(text, "chosen on the train split")
    assert "hand-set" in (tex / "tune.tex").read_text()
    tune = {"tasks": "data/discovery/train.jsonl", "task_ids": ["a-train-1", "b-train-2"], "samples": 128,
            "temperatures": [{"temperature": 0.8, "mean_best_at_samples": 0.31, "samples": 128,
                              "mean_best_at_max": 0.5, "max_samples": 960},
                             {"temperature": 1.0, "mean_best_at_samples": 0.35, "samples": 128,
                              "mean_best_at_max": 0.55, "max_samples": 960}],
            "settings": [{"name": "base", "setting": {"lr": 0.003, "ttt_steps": 8, "rollouts": 16, "lora_rank": 8,
                                                      "groups": 2, "beta_target_kl": 0.693},
                          "ttt_mean_best": 0.3, "bestofn_mean_best_at_flops": 0.45, "score": -0.15,
                          "score_ci95": [-0.2, -0.1], "mean_flops": 9.8e10},
                         {"name": "lr=1e-2", "setting": {"lr": 0.01, "ttt_steps": 8, "rollouts": 16, "lora_rank": 8,
                                                         "groups": 2, "beta_target_kl": 0.693},
                          "ttt_mean_best": 0.36, "bestofn_mean_best_at_flops": 0.45, "score": -0.09,
                          "score_ci95": [-0.14, -0.04], "mean_flops": 9.7e10}],
            "chosen": {"ttt": "lr=1e-2", "bestofn_temperature": 1.0},
            "ttt_flags": ["--lr", "0.01"], "bestofn_flags": ["--temperature", "1.0"]}
    wjson(str(tmp_path / "runs" / "tune" / "tune.json"), tune)  # beside --runs_dir, where run_phase writes it
    text, tex = fill(tmp_path, suite)
    sec = section(text, "chosen on the train split")
    assert "2 tasks of the **train** split" in sec and "TTT **lr=1e-2** (`--lr 0.01`)" in sec
    assert "best-of-N temperature **1.0**" in sec
    assert table_row(sec, "lr=1e-2") == ["lr=1e-2", "0.01", "8 x 16", "8", "2", "0.69", "0.360", "0.450",
                                         "-0.090 [-0.140, -0.040]", "9.7e+10", "chosen"]
    assert table_row(sec, "base")[-1] == "" and table_row(sec, "1")[-1] == "chosen"
    assert r"lr=1e-2 & 0.01 & 8 x 16" in (tex / "tune.tex").read_text()
