"""From discovery-suite results to SDFT demonstrations, with re-verification and a QC report.

Every demonstration is re-scored with its task's verifier; one whose reward does not reproduce
is rejected. Answers that carry prompt-format markers are rejected as leakage. A held-out task
anywhere in the input is a hard failure: consolidation must never see evaluation tasks.
"""
from __future__ import annotations

import json
import os
import statistics
from collections import Counter, defaultdict

from .tasks import reward_for_task, split_of

LEAK_MARKERS = ("||", "Q:", "A:", "\n", "previous attempt", "example response")
REPRODUCE_TOL = 1e-6


def collect(suite_root: str, tasks: list[dict], min_reward: float, top_k: int,
            count_tokens=None, max_new_tokens: int | None = None) -> tuple[list[dict], dict]:
    """(records, qc) for every task of `tasks` that has a result.json under suite_root."""
    qc: dict = {"tasks_in_file": len(tasks), "tasks_with_results": 0, "candidates": 0, "accepted": 0,
                "rejected": Counter(), "per_family": defaultdict(lambda: {"candidates": 0, "accepted": 0}),
                "heldout_tasks": []}
    records, lengths = [], []
    for task in tasks:
        if task.get("split") != "train" or split_of(task["family"], task["spec"]) != "train":
            qc["heldout_tasks"].append(task["task_id"])
            continue
        path = os.path.join(suite_root, task["task_id"], "result.json")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            result = json.load(f)
        qc["tasks_with_results"] += 1
        candidates = result.get("top_solutions") or [{"solution": result.get("best_solution", ""),
                                                      "reward": result.get("best_reward", 0.0)}]
        kept: list[str] = []
        for cand in candidates:
            answer, claimed = str(cand.get("solution", "")), float(cand.get("reward", 0.0))
            if claimed < min_reward:
                continue
            qc["candidates"] += 1
            fam = qc["per_family"][task["family"]]
            fam["candidates"] += 1
            reason = None
            if not answer.strip():
                reason = "empty"
            elif any(m in answer for m in LEAK_MARKERS):
                reason = "format_leakage"
            elif answer in kept:
                reason = "duplicate"
            elif len(kept) >= top_k:
                reason = "beyond_top_k"
            else:
                reward = reward_for_task(task, answer)
                if abs(reward - claimed) > REPRODUCE_TOL:
                    reason = "reward_not_reproduced"
                elif reward < min_reward:
                    reason = "below_min_reward"
            if reason:
                qc["rejected"][reason] += 1
                continue
            kept.append(answer)
            fam["accepted"] += 1
            qc["accepted"] += 1
            n_tok = count_tokens(answer) if count_tokens else None
            if n_tok is not None:
                lengths.append(n_tok)
            records.append({"task_id": task["task_id"], "family": task["family"], "split": task["split"],
                            "task_prompt": task["prompt"], "spec": task["spec"], "demonstration": answer,
                            "reward": claimed, "tokens": n_tok})
    qc["rejected"] = dict(qc["rejected"])
    qc["per_family"] = {f: {**v, "acceptance": v["accepted"] / v["candidates"] if v["candidates"] else 0.0}
                        for f, v in sorted(qc["per_family"].items())}
    qc["acceptance"] = qc["accepted"] / qc["candidates"] if qc["candidates"] else 0.0
    qc["duplicates"] = qc["rejected"].get("duplicate", 0)
    qc["format_leakage"] = qc["rejected"].get("format_leakage", 0)
    if lengths:
        qc["median_tokens"] = statistics.median(lengths)
        qc["max_tokens"] = max(lengths)
        if max_new_tokens:
            qc["share_cut_at_max_new_tokens"] = sum(n >= max_new_tokens for n in lengths) / len(lengths)
    return records, qc


def qc_failures(qc: dict, min_records: int, max_cut_share: float) -> list[str]:
    """Threshold violations (each a readable reason). Held-out tasks are checked separately."""
    problems = []
    if qc["accepted"] < min_records:
        problems.append(f"only {qc['accepted']} demonstrations accepted (need >= {min_records})")
    if qc.get("share_cut_at_max_new_tokens", 0.0) > max_cut_share:
        problems.append(f"{qc['share_cut_at_max_new_tokens']:.0%} of demonstrations hit max_new_tokens "
                        f"(allowed {max_cut_share:.0%}): answers are probably truncated")
    return problems
