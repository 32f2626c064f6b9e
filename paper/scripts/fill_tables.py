#!/usr/bin/env python3
"""Write the paper's evidence from the runs (runbook F2): no number is typed by hand.

    python paper/scripts/fill_tables.py --runs_dir runs/suite

Writes paper/04_results_registry.md (every number with the run it came from) and, under
--latex_dir (default paper/latex/tables, which paper/latex/main.tex reads):
  setup.tex          \\newcommand macros: model, pretraining, budgets, task counts, the policy baseline, seeds,
                     promotion, the headline results the abstract states (TTT main - best-of-N at equal samples
                     and at equal FLOPs, SDFT - SFT) and the sweep over priors (its bases and trends, in numbers
                     and in generated sentences)
  main_results.tex   held-out runs at the full budget, with the share of tasks beating the policy's own answer
  budget.tex         solve rate / mean best reward at N samples, best-of-N vs TTT main
  budget_paired.tex  TTT main - best-of-N at each N (paired bootstrap CIs)
  flops.tex          solve rate / mean best reward within F FLOPs: best-of-N, TTT main, ttt_lr0, random search,
                     policy
  flops_crossover.tex  where TTT main and best-of-N cross on the FLOPs axis (bootstrap CI), FLOPs to reach a level
  paired.tex         every paired comparison at the full budget (arms, controls, ablations, E1)
  controls.tex       TTT main - ttt_lr0, TTT main - FLOPs-matched best-of-N, ablations, SDFT vs SFT
  retention.tex      retention of SDFT and SFT side by side (headline split first)
  learning.tex       TTT learning: mean sample reward at the first and last step, KL, update norm
  probe.tex          the base-model probe per family (swap gap, well-formed, reward, greedy, best-of-N)
  tune.tex           the TTT settings tried on the train split, scored against best-of-N at equal FLOPs
  sweep.tex          the sweep over priors: per base (a checkpoint of the pretraining run) its val loss, probe
                     and TTT main - best-of-N at equal samples and at equal FLOPs (make sweep; --sweep)

Paired comparisons use the same tasks and seed on both sides (bootstrap over tasks). The train
split run (ttt_train_seed0, which feeds SDFT) never enters a held-out table. Missing inputs are
reported as n/a, never a crash. The setup numbers come from the pretraining run (--pretrain_dir,
default: the directory of the base runs' --ckpt), the suite configs and the task files they name.
The evidence is computed by discover_distill.registry and written by discover_distill.registry_render.
"""
from __future__ import annotations

import argparse
import os

from discover_distill.cli import UserError, run
from discover_distill.fileio import atomic_write_text
from discover_distill.probe import read_probe
from discover_distill.registry import load_suite, read_tune
from discover_distill.registry_render import render
from discover_distill.sweep_report import manifest_path, read_sweep


def main() -> int:
    p = argparse.ArgumentParser(description="Fill the paper's results tables from the runs.")
    p.add_argument("--runs_dir", default="runs/suite", help="suite run directories (+ retention_ppl*.json)")
    p.add_argument("--registry", default="paper/04_results_registry.md", help="output Markdown registry")
    p.add_argument("--latex_dir", default="paper/latex/tables", help="output directory for LaTeX tables and setup.tex")
    p.add_argument("--pretrain_dir", default="",
                   help="pretraining run (model_config.json, pretrain_config.json, metrics.jsonl); default: the "
                        "directory of the base runs' --ckpt")
    p.add_argument("--probe_dir", default="",
                   help="the base-model probe (probe.json, gate.json); default: probe/ beside --runs_dir")
    p.add_argument("--tune_dir", default="",
                   help="the tune step (tune.json: hyper-parameters chosen on the train split); default: tune/ "
                        "beside --runs_dir")
    p.add_argument("--sweep", default="",
                   help="the sweep over priors' manifest (run_phase.py --sweep writes it); default: sweep/sweep.json "
                        "beside --runs_dir")
    args = p.parse_args()
    if not os.path.isdir(args.runs_dir):
        raise UserError(f"--runs_dir: not a directory: {args.runs_dir}")
    suite = load_suite(args.runs_dir, args.pretrain_dir or None)
    probe = read_probe(args.probe_dir or os.path.join(os.path.dirname(os.path.normpath(args.runs_dir)), "probe"))
    beside = os.path.dirname(os.path.normpath(args.runs_dir))
    tune = read_tune(args.tune_dir or os.path.join(beside, "tune"))
    sweep = read_sweep(args.sweep or manifest_path(args.runs_dir))
    md, tex = render(suite, args.runs_dir, probe, tune, sweep)
    atomic_write_text(args.registry, md)
    os.makedirs(args.latex_dir, exist_ok=True)
    for name, text in tex.items():
        atomic_write_text(os.path.join(args.latex_dir, f"{name}.tex"), text)
    print(f"wrote {args.registry} and {args.latex_dir}/{{{','.join(tex)}}}.tex from {len(suite.all_runs)} runs "
          f"({len(suite.runs)} held-out)")
    return 0


if __name__ == "__main__":
    run(main)
