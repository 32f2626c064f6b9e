"""THE list of required artifacts per run kind: one source of truth for the tracker, the
artifact report (`paper/scripts/artifact_tracker.py`) and `run_phase.py`'s skip-if-done logic.

Paths are relative to the run directory; `*` patterns must match at least one file.
"""
from __future__ import annotations

import glob
import os

from .fileio import step_checkpoint_name  # torch-free: status tools start fast

RUN_KINDS = ("data", "pretrain", "probe", "suite_bestofn", "suite_ttt", "sdft", "retention")


def required_artifacts(kind: str, *, steps: int | None = None, task_ids: list[str] | None = None,
                       files: list[str] | None = None) -> list[str]:
    """Relative paths (or glob patterns) that must exist for a run of `kind` to count as complete.

    pretrain/sdft need `steps` (the final step checkpoint is required); suites need `task_ids`;
    "data" and "retention" take the explicit list of output `files`.
    """
    if kind == "pretrain":
        _need(kind, steps=steps)
        return ["ckpt_latest.pt", step_checkpoint_name("ckpt_step", steps), "model_config.json",
                "pretrain_config.json", "metrics.jsonl"]
    if kind == "sdft":
        _need(kind, steps=steps)
        return ["sdft_latest.pt", step_checkpoint_name("sdft_step", steps), "metrics.jsonl",
                "sdft_eval_report.json", "model_config.json"]
    if kind == "probe":  # paper/scripts/probe_base.py's result (its freshness against the checkpoint: run_phase)
        return ["probe.json"]
    if kind in ("suite_bestofn", "suite_ttt"):
        _need(kind, task_ids=task_ids)
        out = ["summary.jsonl"] + [f"{t}/result.json" for t in task_ids]
        if kind == "suite_ttt":
            out += [f"{t}/metrics.jsonl" for t in task_ids] + [f"{t}/adapter_step_*/lora.pt" for t in task_ids]
        return out
    if kind in ("data", "retention"):
        _need(kind, files=files)
        return list(files)
    raise ValueError(f"unknown run kind {kind!r}; known: {', '.join(RUN_KINDS)}")


def _need(kind: str, **params) -> None:
    for name, value in params.items():
        if value is None:
            raise ValueError(f"run kind {kind!r} needs {name}=")


def check_artifacts(run_dir: str, kind: str, **params) -> dict:
    """{"kind", "required", "present", "missing", "complete"} for the run in `run_dir`."""
    required = required_artifacts(kind, **params)
    present, missing = [], []
    for rel in required:
        pattern = os.path.join(glob.escape(run_dir), rel)
        ok = bool(glob.glob(pattern)) if "*" in rel else os.path.exists(pattern)
        (present if ok else missing).append(rel)
    return {"kind": kind, "required": required, "present": present, "missing": missing,
            "complete": not missing}
