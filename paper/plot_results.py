#!/usr/bin/env python3
"""Result figures from the suite runs (runbook F1).

    python paper/plot_results.py --runs_dir runs/suite --fig_dir paper/figs

Figures (PNG + PDF): solve rate and mean best reward per run with 95% bootstrap CIs (solve_rate);
mean best reward per task family (per_family); best-so-far vs samples of every run (best_so_far);
the budget curves: solve rate and mean best reward vs samples for best-of-N and TTT main with 95%
bootstrap bands over tasks x seeds (budget_curves); TTT learning: mean sample reward per step
(and LoRA update norm) averaged over tasks, with 95% bands, TTT main and the lr 0 control
(ttt_learning); beta and KL traces of the TTT runs (beta_kl); mean best reward against FLOPs per
task (log x), best-of-N, TTT main, ttt_lr0, random search and the policy, overall and per family, as the
registry's FLOPs tables give it (flops_curves); the retention (perplexity) bars (retention); the sweep over
priors: TTT main minus best-of-N at equal samples and at equal FLOPs against the base's competence (its
probe's swap gap; its per-sample reward over random answers'), one marker per base, small ones per
family (sweep; from --sweep, default sweep/sweep.json beside --runs_dir). The
train-split run (ttt_train_*) is never drawn: every figure is held-out. Runs that are missing are
skipped with a note.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
from collections import defaultdict

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from discover_distill.cli import UserError, run  # noqa: E402
from discover_distill.evaluate import bootstrap_ci  # noqa: E402
from discover_distill.registry import (BASELINES, baseline_flops, flops_arm_runs, flops_grid,  # noqa: E402
                                       flops_seeds, flops_series, load_suite, pooled_flops_curves)
from discover_distill.stats import best_at, read_best_curve, retention_promotion  # noqa: E402
from discover_distill.sweep_report import EDGES, manifest_path, read_sweep  # noqa: E402
from discover_distill.tasks.base import SOLVED  # noqa: E402

ORDER = ["base_bestofn", "ttt_main", "ttt_lr0", "base_bestofn_flops", "ttt_reuse0", "ttt_adapt0", "ttt_kl0",
         "ttt_expected", "sdft_bestofn", "sft_bestofn"]


def run_key(name: str) -> tuple[int, str]:
    stem = name.rsplit("_seed", 1)[0]
    stem = re.sub(r"^(sdft|sft)\d+_bestofn$", r"\1_bestofn", stem)  # sdft500_bestofn -> sdft_bestofn
    return (ORDER.index(stem) if stem in ORDER else len(ORDER), name)


def load_runs(runs_dir: str) -> dict[str, list[dict]]:
    runs = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(runs_dir), "*", "summary.jsonl"))):
        name = os.path.basename(os.path.dirname(path))
        if name.startswith("ttt_train"):  # the train split feeds distillation; held-out figures only
            continue
        with open(path) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        if rows:
            runs[name] = rows
    return dict(sorted(runs.items(), key=lambda kv: run_key(kv[0])))


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def save(fig, fig_dir: str, name: str) -> None:
    for ext in ("png", "pdf"):
        fig.savefig(os.path.join(fig_dir, f"{name}.{ext}"), dpi=150, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {fig_dir}/{name}.png/.pdf")


def plot_overview(runs: dict, fig_dir: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    names = list(runs)
    for ax, key, label in ((axes[0], "solved", "solve rate"), (axes[1], "best_reward", "mean best reward")):
        vals = [[float(r[key]) for r in runs[n]] for n in names]
        means = [sum(v) / len(v) for v in vals]
        cis = [bootstrap_ci(v) for v in vals]
        err = [[m - lo for m, (lo, _) in zip(means, cis)], [hi - m for m, (_, hi) in zip(means, cis)]]
        colours = ["#888888" if "bestofn" in n else "#d9822b" for n in names]
        ax.bar(range(len(names)), means, yerr=err, capsize=3, color=colours)
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
        ax.set_title(f"{label} (95% bootstrap CI over tasks)", fontsize=10)
    save(fig, fig_dir, "solve_rate")


def plot_families(runs: dict, fig_dir: str) -> None:
    families = sorted({r["family"] for rows in runs.values() for r in rows})
    fig, ax = plt.subplots(figsize=(12, 4))
    width = 0.8 / len(runs)
    for i, (name, rows) in enumerate(runs.items()):
        per = defaultdict(list)
        for r in rows:
            per[r["family"]].append(r["best_reward"])
        ax.bar([f + i * width for f in range(len(families))], [sum(per[f]) / len(per[f]) if per[f] else 0
                                                                for f in families], width, label=name)
    ax.set_xticks([f + 0.4 - width / 2 for f in range(len(families))], families)
    ax.set_ylabel("mean best reward")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("mean best reward per task family", fontsize=10)
    save(fig, fig_dir, "per_family")


def mean_curve(points_per_task: list[list[tuple[float, float]]]) -> tuple[list[float], list[float]]:
    """Average best-so-far over tasks at each sample count all tasks reached."""
    n = min(len(p) for p in points_per_task)
    xs = [points_per_task[0][i][0] for i in range(n)]
    ys = [sum(p[i][1] for p in points_per_task) / len(points_per_task) for i in range(n)]
    return xs, ys


def task_curves(runs_dir: str, name: str, rows: list[dict]) -> list[list[dict]]:
    """Every task's best-so-far curve (summary row, result.json or metrics.jsonl)."""
    curves = [read_best_curve(os.path.join(runs_dir, name, r["task_id"]), r) for r in rows]
    return [c for c in curves if c]


def mean_band(values, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of the mean (vectorised: many points per figure)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, arr.size, size=(n_boot, arr.size))
    boots = arr[idx].mean(axis=1)
    return float(arr.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def arm_runs(runs: dict, stem: str) -> list[str]:
    return [n for n in runs if n.rsplit("_seed", 1)[0] == stem]


def plot_curves(runs_dir: str, runs: dict, fig_dir: str) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for name, rows in runs.items():
        curves = [[(c["samples"], c["best_so_far"]) for c in curve] for curve in task_curves(runs_dir, name, rows)]
        if curves:
            xs, ys = mean_curve(curves)
            ax.plot(xs, ys, marker="o", ms=3, label=name, ls="--" if "bestofn" in name else "-")
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("samples per task")
    ax.set_ylabel("mean best-so-far reward")
    ax.legend(fontsize=7)
    ax.set_title("best-so-far vs samples (TTT solid, best-of-N dashed)", fontsize=10)
    save(fig, fig_dir, "best_so_far")
    return True


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_search_levels(runs_dir: str, runs: dict) -> tuple[dict | None, str]:
    """(held-out random search {"n_tasks", "mean_best": {N: v}, "solve_rate": {N: v}, "policy": the
    same for the policy's attempts (newer audits)}, its source) or (None, why not): the expected best
    of N uniformly random well-formed answers per task, from the audit.json that run_phase writes
    beside the held-out task file the best-of-N runs name in their config.json
    (paper/scripts/audit_tasks.py; the registry's random-search and policy rows)."""
    for name in arm_runs(runs, "base_bestofn"):
        try:
            with open(os.path.join(runs_dir, name, "config.json")) as f:
                cfg = json.load(f)
        except (OSError, ValueError):
            continue
        tasks = (cfg.get("args", cfg) if isinstance(cfg, dict) else {}).get("tasks")
        if not isinstance(tasks, str):
            continue
        # a relative path is relative to where the run started: the repository root
        for path in (tasks, os.path.join(ROOT, tasks)):
            audit = os.path.join(os.path.dirname(path), "audit.json")
            try:
                with open(audit) as f:
                    held = (json.load(f).get("overall") or {}).get("heldout")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(held, dict) and held.get("mean_best"):
                return held, audit
    return None, "no audit.json beside the held-out tasks of a best-of-N run"


def plot_budget_curves(runs_dir: str, runs: dict, fig_dir: str) -> bool:
    """Solve rate and mean best reward within N samples, best-of-N vs TTT main, 95% bands over
    tasks x seeds (best-so-far at N = the last curve point with samples <= N; a task whose curve
    starts above N has no value there, and an N where an arm has none is not drawn: no 0 before
    TTT's first step), and random search at
    its audited N up to the arms' largest, and the policy's samples the same way (expected levels over
    the held-out tasks: no band)."""
    arms = [("best-of-N (samples-matched)", "base_bestofn", "#666666", "--"), ("TTT main", "ttt_main", "#d9822b", "-")]
    per_arm = {stem: [c for n in arm_runs(runs, stem) for c in task_curves(runs_dir, n, runs[n])] for _, stem, _, _ in arms}
    if not any(per_arm.values()):
        return False
    grid = sorted({int(p["samples"]) for cs in per_arm.values() for c in cs for p in c})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    used = []
    for label, stem, colour, ls in arms:
        curves = per_arm[stem]
        if not curves:
            continue
        used += arm_runs(runs, stem)
        at = {n: [v for c in curves if (v := best_at(c, n, before=None)) is not None] for n in grid}
        ns = [n for n in grid if at[n]]
        for ax, vals in ((axes[0], [[float(v >= SOLVED) for v in at[n]] for n in ns]), (axes[1], [at[n] for n in ns])):
            bands = [mean_band(v) for v in vals]
            ax.plot(ns, [b[0] for b in bands], color=colour, ls=ls, marker="o", ms=3,
                    label=f"{label} ({len(curves)} task-seeds)")
            ax.fill_between(ns, [b[1] for b in bands], [b[2] for b in bands], color=colour, alpha=0.2, lw=0)
    rand, source = random_search_levels(runs_dir, runs)
    if rand:
        pol = rand.get("policy") if isinstance(rand.get("policy"), dict) else None   # older audits have none
        for lv, name, what, colour, marker in ((rand, "random search", "uniform answers", "#2e7d32", "s"),
                                              (pol, "policy", "greedy, noisy samples", "#7b3294", "^")):
            if not lv or not lv.get("mean_best"):
                print(f"  no {name} line: not in {source}")
                continue
            audited = sorted(int(n) for n in lv["mean_best"] if str(n) in (lv.get("solve_rate") or {}))
            ns = [n for n in audited if n <= grid[-1]] or audited
            for ax, key in ((axes[0], "solve_rate"), (axes[1], "mean_best")):
                ax.plot(ns, [lv[key][str(n)] for n in ns], color=colour, ls=":", marker=marker, ms=3,
                        label=f"{name} ({what}; {lv.get('n_tasks', '?')} tasks, audit)")
            print(f"  {name} at N = {', '.join(map(str, ns))} from {source}")
    else:
        print(f"  no random-search line: {source}")
    for ax, ylabel in ((axes[0], "solve rate within N samples"), (axes[1], "mean best reward within N samples")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("samples per task N")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
        ax.set_title(f"{ylabel} (95% bootstrap band)", fontsize=10)
    save(fig, fig_dir, "budget_curves")
    print(f"  budget_curves from {', '.join(used)}")
    return True


def plot_learning(runs_dir: str, runs: dict, fig_dir: str) -> bool:
    """Mean sample reward per TTT step averaged over tasks x seeds (and the LoRA update norm when
    logged), TTT main and the lr 0 control, with 95% bootstrap bands."""
    arms = [("TTT main", "ttt_main", "#d9822b"), ("TTT lr 0 (no learning)", "ttt_lr0", "#5b8db8")]
    series = {}
    for label, stem, colour in arms:
        by_step = defaultdict(lambda: {"mean_reward": [], "lora_update_norm": []})
        names = arm_runs(runs, stem)
        for name in names:
            for r in runs[name]:
                path = os.path.join(runs_dir, name, r["task_id"], "metrics.jsonl")
                if not os.path.isfile(path):
                    continue
                for m in read_jsonl(path):
                    for key in ("mean_reward", "lora_update_norm"):
                        if isinstance(m.get(key), (int, float)) and isinstance(m.get("step"), (int, float)):
                            by_step[m["step"]][key].append(m[key])
        if any(v["mean_reward"] for v in by_step.values()):
            series[stem] = (label, colour, names, by_step)
    if not series:
        return False
    has_norm = any(v["lora_update_norm"] for _, _, _, by in series.values() for v in by.values())
    fig, axes = plt.subplots(1, 2 if has_norm else 1, figsize=(12 if has_norm else 6.5, 4.2), squeeze=False)
    used = []
    for stem, (label, colour, names, by_step) in series.items():
        used += names
        for ax, key in zip(axes[0], ("mean_reward", "lora_update_norm")):
            steps = [s for s in sorted(by_step) if by_step[s][key]]
            if not steps:
                continue
            bands = [mean_band(by_step[s][key]) for s in steps]
            ax.plot(steps, [b[0] for b in bands], color=colour, marker="o", ms=3, label=label)
            ax.fill_between(steps, [b[1] for b in bands], [b[2] for b in bands], color=colour, alpha=0.2, lw=0)
    titles = {"mean_reward": "mean sample reward per step (95% band over tasks)",
              "lora_update_norm": "LoRA update norm (95% band over tasks)"}
    for ax, key in zip(axes[0], ("mean_reward", "lora_update_norm")):
        ax.set_xlabel("TTT step")
        ax.set_ylabel(key.replace("_", " "))
        ax.set_title(titles[key], fontsize=10)
        ax.legend(fontsize=8)
    save(fig, fig_dir, "ttt_learning")
    print(f"  ttt_learning from {', '.join(used)}")
    return True


def plot_traces(runs_dir: str, runs: dict, fig_dir: str) -> bool:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    drawn = False
    for name, rows in runs.items():
        by_step = defaultdict(lambda: {"beta": [], "kl_to_base": []})
        for r in rows:
            path = os.path.join(runs_dir, name, r["task_id"], "metrics.jsonl")
            if not os.path.isfile(path):
                continue
            for m in read_jsonl(path):
                for key in ("beta", "kl_to_base"):
                    if isinstance(m.get(key), (int, float)):
                        by_step[m["step"]][key].append(m[key])
        if not by_step:
            continue
        steps = sorted(by_step)
        for ax, key in ((axes[0], "beta"), (axes[1], "kl_to_base")):
            pts = [(s, sorted(by_step[s][key])[len(by_step[s][key]) // 2]) for s in steps if by_step[s][key]]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=name)
                drawn = True
    if not drawn:
        plt.close(fig)
        return False
    axes[0].set_yscale("log")
    axes[0].set_title("adaptive beta (median over tasks)", fontsize=10)
    axes[1].set_title("KL to base on sampled tokens (median over tasks)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("TTT step")
        ax.legend(fontsize=7)
    save(fig, fig_dir, "beta_kl")
    return True


def plot_retention(runs_dir: str, fig_dir: str) -> bool:
    """Perplexity change per consolidated model: the filler-only split (the headline, when measured)
    next to val.bin; a model whose gate rejected every step is labelled as the base model."""
    files = sorted(glob.glob(os.path.join(glob.escape(runs_dir), "retention_ppl*.json")))
    records = []
    for path in files:
        try:
            with open(path) as f:
                r = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(r, dict) or not isinstance(r.get("delta_ppl"), (int, float)):
            continue
        name = os.path.basename(path)[len("retention_ppl"):-len(".json")].strip("_") or "sdft"
        promo = retention_promotion(r) or {}
        if promo.get("all_rejected"):
            name += "\n(all steps rejected:\nbase model)"
        elif "promoted_step" in promo:
            name += f"\n(step {promo['promoted_step']})"
        records.append((name, r))
    if not records:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    splits = [("filler", "filler-only held-out (headline)", "#2e7d32"), ("val", "val.bin", "#5b8db8")]
    width = 0.38
    for j, (split, label, colour) in enumerate(splits):
        xs, vals, errs = [], [], [[], []]
        for i, (_, r) in enumerate(records):
            rec = r.get("filler") if split == "filler" else r
            if not isinstance(rec, dict) or not isinstance(rec.get("delta_ppl"), (int, float)):
                continue
            lo, hi = rec.get("delta_ppl_ci95") or [rec["delta_ppl"]] * 2
            xs.append(i + (j - 0.5) * width)
            vals.append(rec["delta_ppl"])
            errs[0].append(rec["delta_ppl"] - lo)
            errs[1].append(hi - rec["delta_ppl"])
        if xs:
            ax.bar(xs, vals, width, yerr=errs, capsize=4, color=colour, label=label)
    ax.set_xticks(range(len(records)), [n for n, _ in records], fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("perplexity change (updated - base)")
    ax.legend(fontsize=7)
    ax.set_title("retention after consolidation (95% CI)", fontsize=10)
    save(fig, fig_dir, "retention")
    return True


def plot_flops_curves(runs_dir: str, fig_dir: str) -> bool:
    """Mean best reward within F FLOPs per task (log x) for best-of-N (the FLOPs-matched run),
    TTT main and ttt_lr0 with 95% bootstrap bands over tasks x seeds, and random search and the
    policy at the sampling FLOPs of their N answers (no band: the audit stores means); overall and
    per family.
    The curves are the registry's (discover_distill.registry), so figure and tables agree."""
    suite = load_suite(runs_dir)
    if not flops_grid(suite):
        return False
    arms = {"best-of-N": ("#666666", "--"), "TTT main": ("#d9822b", "-"), "ttt_lr0": ("#5b8db8", "-.")}
    ends = [p for arm in arms for c in pooled_flops_curves(suite, arm).values() for p in (c[0], c[-1])]
    xs = np.geomspace(min(p["flops"] for p in ends), max(p["flops"] for p in ends), 40)
    families = sorted({fam for s in flops_seeds(suite) for _, n in flops_arm_runs(suite, s)
                       for fam in (r.get("family", "?") for r in suite.runs[n].values())})
    panels = [None] + families
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, fam in zip(axes.flat, panels):
        for arm, vals in flops_series(suite, list(xs), fam).items():
            keep = [i for i, v in enumerate(vals) if v]
            bands = [mean_band(vals[i]) for i in keep]
            colour, ls = arms[arm]
            ax.plot(xs[keep], [b[0] for b in bands], color=colour, ls=ls, label=arm)
            ax.fill_between(xs[keep], [b[1] for b in bands], [b[2] for b in bands], color=colour, alpha=0.2, lw=0)
        for b, colour, marker in zip(BASELINES, ("#2e7d32", "#7b3294"), ("s", "^")):
            if rand := baseline_flops(suite, b, fam):
                # a step, as in the tables: within F, the largest audited N whose sampling FLOPs fit
                pts = [p for p in rand["points"] if xs[0] <= p[1] <= xs[-1]]
                ax.plot([p[1] for p in pts], [p[2] for p in pts], color=colour, ls=":", marker=marker, ms=3,
                        drawstyle="steps-post", label=f"{b} (at N best-of-N samples' FLOPs)")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("all held-out tasks" if fam is None else fam, fontsize=10)
        ax.set_xlabel("FLOPs per task")
        ax.set_ylabel("mean best reward within F")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("best-so-far against compute (95% bootstrap bands over tasks x seeds)", fontsize=11)
    fig.tight_layout()
    save(fig, fig_dir, "flops_curves")
    print(f"  flops_curves from {', '.join(n for s in flops_seeds(suite) for _, n in flops_arm_runs(suite, s))}")
    return True


SWEEP_STYLE = {"samples": ("#d9822b", "o"), "flops": ("#666666", "s")}


def sweep_axes(ev: dict) -> list[tuple[str, str, object]]:
    """(x key, x label, per-family x) panels the sweep can draw: those with a value at some base."""
    panels = [("gap", "swap gap, policy answer (nats per answer)", lambda fam: fam.get("gap")),
              ("reward_ratio", "per-sample reward / random answers'", lambda fam: fam.get("reward_ratio"))]
    return [pn for pn in panels if any(p["probe"][pn[0]] is not None for p in ev["points"])]


def plot_sweep(path: str, fig_dir: str) -> bool:
    """TTT main minus best-of-N at equal samples and at equal FLOPs (95% paired CIs over tasks) against
    the competence of each base of the sweep over priors, labelled with its pretraining step; the
    per-family edges as small markers at the family's own swap gap / reward ratio. The numbers are
    sweep_report's, as the registry prints them. False (skipped) without a manifest or a base with
    both a probe and an edge."""
    ev = read_sweep(path)
    if ev["manifest"] is None:
        print(f"note: no sweep over priors ({path}: {ev['why']}; make sweep runs it); sweep figure skipped")
        return False
    panels = sweep_axes(ev)
    drawn = [p for p in ev["points"] if any(p["edges"].values())]
    if not panels or not drawn:
        print(f"note: no base of the sweep ({path}) has both a probe and a finished comparison; sweep figure skipped")
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (key, xlabel, fam_x) in zip(axes[0], panels):
        for e, (_, what) in EDGES.items():
            colour, marker = SWEEP_STYLE[e]
            pts = [(p["probe"][key], p["edges"][e], p["step"]) for p in drawn
                   if p["probe"][key] is not None and p["edges"][e]]
            if pts:
                ys = [pb["mean_diff"] for _, pb, _ in pts]
                err = [[y - pb["ci95"][0] for y, (_, pb, _) in zip(ys, pts)],
                       [pb["ci95"][1] - y for y, (_, pb, _) in zip(ys, pts)]]
                ax.errorbar([x for x, _, _ in pts], ys, yerr=err, color=colour, marker=marker, ls="-", capsize=3,
                            label=f"TTT - {what}")
                for x, y, (_, _, step) in zip([x for x, _, _ in pts], ys, pts):
                    ax.annotate(f"step {step}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            fam = [(x, ed[e]["mean_diff"]) for p in drawn for f, ed in p["families"].items()
                   if ed[e] and (x := fam_x(p["probe"]["families"].get(f) or {})) is not None]
            if fam:
                ax.plot(*zip(*fam), ls="none", marker=marker, ms=3, color=colour, alpha=0.35,
                        label=f"per family ({what})")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("TTT main minus best-of-N, mean best reward")
        ax.legend(fontsize=7)
    fig.suptitle("the answer as a function of the prior: one marker per base (95% paired CIs over tasks)",
                 fontsize=10)
    fig.tight_layout()
    save(fig, fig_dir, "sweep")
    print(f"  sweep from {path}: bases at steps {', '.join(str(p['step']) for p in drawn)}")
    return True


def main() -> int:
    p = argparse.ArgumentParser(description="Result figures from the suite runs.")
    p.add_argument("--runs_dir", default="runs/suite", help="directory holding the suite run directories")
    p.add_argument("--fig_dir", default="paper/figs", help="output directory")
    p.add_argument("--sweep", default="",
                   help="the sweep over priors' manifest (run_phase.py --sweep); default: sweep/sweep.json beside "
                        "--runs_dir")
    args = p.parse_args()
    if not os.path.isdir(args.runs_dir):
        raise UserError(f"--runs_dir: not a directory: {args.runs_dir}")
    os.makedirs(args.fig_dir, exist_ok=True)
    runs = load_runs(args.runs_dir)
    missing = [s for s in ("base_bestofn", "ttt_main", "ttt_reuse0", "ttt_adapt0", "ttt_kl0")
               if not any(n.rsplit("_seed", 1)[0] == s for n in runs)]
    if missing:
        print(f"note: no finished runs for {', '.join(missing)} under {args.runs_dir}; skipped")
    if runs:
        print(f"held-out runs: {', '.join(runs)}")
        plot_overview(runs, args.fig_dir)
        plot_families(runs, args.fig_dir)
        if not plot_curves(args.runs_dir, runs, args.fig_dir):
            print("note: no per-step curves found; best_so_far figure skipped")
        if not plot_budget_curves(args.runs_dir, runs, args.fig_dir):
            print("note: no best-of-N / TTT main curves found; budget_curves figure skipped")
        if not plot_learning(args.runs_dir, runs, args.fig_dir):
            print("note: no TTT main metrics with mean_reward found; ttt_learning figure skipped")
        if not plot_traces(args.runs_dir, runs, args.fig_dir):
            print("note: no TTT metrics found; beta/KL figure skipped")
    else:
        print(f"note: no summary.jsonl under {args.runs_dir}; run figures skipped")
    if not plot_flops_curves(args.runs_dir, args.fig_dir):
        print("note: no TTT main run with a best-of-N run beside it; flops_curves figure skipped")
    if not plot_retention(args.runs_dir, args.fig_dir):
        print(f"note: no retention_ppl*.json under {args.runs_dir}; retention figure skipped")
    plot_sweep(args.sweep or manifest_path(args.runs_dir), args.fig_dir)
    return 0


if __name__ == "__main__":
    run(main)
