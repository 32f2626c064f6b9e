#!/usr/bin/env python3
"""Turn a TTT run on the train split into SDFT demonstrations (runbook D2), with QC.

    python paper/scripts/build_sdft_from_suite.py --suite_root runs/suite/ttt_train_seed0 \\
      --tasks_jsonl data/discovery/train.jsonl --out_jsonl data/sdft/from_ttt_train.jsonl --min_reward 0.99

Keeps up to --top_k distinct solutions per task whose reward (re-verified) is >= --min_reward.
Writes the JSONL, a QC report beside it (<out>.qc.json) and prints the QC table. QC thresholds
fail the build unless --allow_qc_fail; a held-out task in the input always fails it.
"""
from __future__ import annotations

import argparse
import json
import os

from discover_distill.checkpoint import atomic_write_json, atomic_write_text
from discover_distill.cli import UserError, require_file, run
from discover_distill.discovery import load_tasks
from discover_distill.sdft_data import collect, qc_failures


def main() -> int:
    p = argparse.ArgumentParser(description="Build SDFT demonstrations from a discovery suite.")
    p.add_argument("--suite_root", required=True, help="run directory of run_discovery_suite.py (train split)")
    p.add_argument("--tasks_jsonl", required=True, help="the task file that suite ran on")
    p.add_argument("--out_jsonl", required=True, help="output demonstrations JSONL")
    p.add_argument("--min_reward", type=float, default=0.99, help="keep solutions with reward >= this (re-verified)")
    p.add_argument("--top_k", type=int, default=4, help="distinct solutions kept per task")
    p.add_argument("--tokenizer", default="", help="tokenizer for length statistics (default: the suite's own)")
    p.add_argument("--min_records", type=int, default=1, help="QC: fewest demonstrations accepted")
    p.add_argument("--max_cut_share", type=float, default=0.5, help="QC: largest share that hit max_new_tokens")
    p.add_argument("--allow_qc_fail", action="store_true", help="write the output even when QC thresholds fail")
    args = p.parse_args()
    if not os.path.isdir(args.suite_root):
        raise UserError(f"--suite_root: not a directory: {args.suite_root}")
    require_file(args.tasks_jsonl, "--tasks_jsonl")
    tasks = load_tasks(args.tasks_jsonl)
    suite_cfg = {}
    cfg_path = os.path.join(args.suite_root, "config.json")
    if os.path.isfile(cfg_path):
        with open(cfg_path) as f:
            suite_cfg = json.load(f).get("args", {})
    tok_path = args.tokenizer or suite_cfg.get("tokenizer", "")
    count = None
    if tok_path and os.path.isfile(tok_path):
        from discover_distill.tokenizer import Tokenizer
        tok = Tokenizer(tok_path)
        count = lambda text: len(tok.encode(" " + text)) + 1  # the answer as sampled, plus its EOS
    records, qc = collect(args.suite_root, tasks, args.min_reward, args.top_k, count, suite_cfg.get("max_new_tokens"))
    qc.update(suite_root=args.suite_root, tasks_jsonl=args.tasks_jsonl, min_reward=args.min_reward, top_k=args.top_k)
    print(f"QC for {args.out_jsonl}: {qc['tasks_with_results']}/{qc['tasks_in_file']} tasks with results, "
          f"{qc['candidates']} candidates >= {args.min_reward}, {qc['accepted']} accepted ({qc['acceptance']:.0%})")
    print(f"  {'family':<10} {'cand':>5} {'acc':>5} {'rate':>6}")
    for fam, v in qc["per_family"].items():
        print(f"  {fam:<10} {v['candidates']:>5} {v['accepted']:>5} {v['acceptance']:>6.0%}")
    print(f"  rejected: {qc['rejected'] or 'none'} | tokens median {qc.get('median_tokens', '-')} max "
          f"{qc.get('max_tokens', '-')} | cut at max_new_tokens {qc.get('share_cut_at_max_new_tokens', 0):.0%}")
    report_path = os.path.splitext(args.out_jsonl)[0] + ".qc.json"
    if qc["heldout_tasks"]:
        atomic_write_json(report_path, {**qc, "passed": False})
        raise UserError(f"--tasks_jsonl {args.tasks_jsonl} contains {len(qc['heldout_tasks'])} held-out tasks "
                        f"(e.g. {qc['heldout_tasks'][0]}): consolidation data must come from the train split only")
    problems = qc_failures(qc, args.min_records, args.max_cut_share)
    qc["passed"] = not problems
    qc["problems"] = problems
    atomic_write_json(report_path, qc)
    if problems and not args.allow_qc_fail:
        raise UserError(f"QC failed for {args.out_jsonl}: {'; '.join(problems)} (see {report_path}; "
                        f"--allow_qc_fail writes anyway)")
    atomic_write_text(args.out_jsonl, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    print(f"wrote {len(records)} demonstrations -> {args.out_jsonl} (QC report {report_path})"
          + (f"; QC problems allowed: {'; '.join(problems)}" if problems else ""))
    return 0


if __name__ == "__main__":
    run(main)
