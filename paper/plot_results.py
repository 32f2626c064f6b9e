#!/usr/bin/env python3
"""Result figures from the suite runs (runbook F1).

    python paper/plot_results.py --runs_dir runs/suite --fig_dir paper/figs

Figures (PNG + PDF): solve rate and mean best reward per run with 95% bootstrap CIs; mean best
reward per task family; best-so-far vs samples (TTT and best-of-N on one axis); beta and KL traces
of the TTT runs; the retention (perplexity) bar. Runs that are missing are skipped with a note.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from discover_distill.cli import UserError, run  # noqa: E402
from discover_distill.evaluate import bootstrap_ci  # noqa: E402

ORDER = ["base_bestofn", "ttt_main", "ttt_reuse0", "ttt_adapt0", "ttt_kl0", "ttt_expected", "sdft500_bestofn",
         "sdft_bestofn", "sft_bestofn"]


def run_key(name: str) -> tuple[int, str]:
    stem = name.rsplit("_seed", 1)[0]
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


def plot_curves(runs_dir: str, runs: dict, fig_dir: str) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for name, rows in runs.items():
        curves = []
        for r in rows:
            d = os.path.join(runs_dir, name, r["task_id"])
            if os.path.isfile(os.path.join(d, "metrics.jsonl")):
                curves.append([(m["samples"], max(0.0, m["best_so_far"])) for m in read_jsonl(os.path.join(d, "metrics.jsonl"))])
            elif os.path.isfile(os.path.join(d, "result.json")):
                with open(os.path.join(d, "result.json")) as f:
                    res = json.load(f)
                if res.get("best_curve"):
                    curves.append([(c["samples"], c["best_so_far"]) for c in res["best_curve"]])
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
    files = sorted(glob.glob(os.path.join(glob.escape(runs_dir), "retention_ppl*.json")))
    if not files:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.8))
    names, vals, errs = [], [], [[], []]
    for path in files:
        with open(path) as f:
            r = json.load(f)
        names.append(os.path.basename(path)[len("retention_ppl"):-len(".json")].strip("_") or "sdft")
        vals.append(r["delta_ppl"])
        lo, hi = r.get("delta_ppl_ci95", [r["delta_ppl"]] * 2)
        errs[0].append(r["delta_ppl"] - lo)
        errs[1].append(hi - r["delta_ppl"])
    ax.bar(names, vals, yerr=errs, capsize=4, color="#5b8db8")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("validation perplexity change")
    ax.set_title("retention after consolidation (95% CI)", fontsize=10)
    save(fig, fig_dir, "retention")
    return True


def main() -> int:
    p = argparse.ArgumentParser(description="Result figures from the suite runs.")
    p.add_argument("--runs_dir", default="runs/suite", help="directory holding the suite run directories")
    p.add_argument("--fig_dir", default="paper/figs", help="output directory")
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
        plot_overview(runs, args.fig_dir)
        plot_families(runs, args.fig_dir)
        if not plot_curves(args.runs_dir, runs, args.fig_dir):
            print("note: no per-step curves found; best_so_far figure skipped")
        if not plot_traces(args.runs_dir, runs, args.fig_dir):
            print("note: no TTT metrics found; beta/KL figure skipped")
    else:
        print(f"note: no summary.jsonl under {args.runs_dir}; run figures skipped")
    if not plot_retention(args.runs_dir, args.fig_dir):
        print(f"note: no retention_ppl*.json under {args.runs_dir}; retention figure skipped")
    return 0


if __name__ == "__main__":
    run(main)
