"""Atomic file writes, safe checkpoint loading, resume discovery and RNG state.

Every result or checkpoint is written to a temporary file in the same directory, fsynced and
renamed over the target, so a crash mid-write leaves either the old file or the new one, never
a half-written one. Checkpoints hold tensors and plain Python values only and are always loaded
with `torch.load(weights_only=True)`: a pickle that wants to run code is refused, not executed.
"""
from __future__ import annotations

import glob
import os
import random
import re
from typing import Any, Callable

import numpy as np
import torch

from .cli import UserError
from .fileio import (append_jsonl, atomic_write, atomic_write_json, atomic_write_text,  # noqa: F401 (re-exported)
                     step_checkpoint_name)


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, corrupt or unsafe to load."""


def atomic_torch_save(obj: Any, path: str) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with weights_only=True; any failure is one CheckpointError line."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad magic, or a pickle that wants to run code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot load checkpoint {path} safely (weights_only=True): {first[:200]}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} is not a dict of tensors and metadata")
    return obj


_STEP_RE = re.compile(r"_(\d{7})\.pt$")


def list_step_checkpoints(run_dir: str, prefix: str) -> list[tuple[int, str]]:
    """(step, path) of `<prefix>_NNNNNNN.pt` files in run_dir, newest step first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(run_dir), f"{prefix}_*.pt")):
        m = _STEP_RE.search(os.path.basename(path))
        if m and os.path.basename(path) == step_checkpoint_name(prefix, int(m.group(1))):
            found.append((int(m.group(1)), path))
    return sorted(found, reverse=True)


def find_resume_checkpoint(run_dir: str, latest_name: str | None, step_prefix: str,
                           log: Callable[[str], None] = print) -> tuple[str, dict] | None:
    """The newest checkpoint in run_dir that loads cleanly, or None if there is none at all.

    Tries `latest_name` (if given) and every step checkpoint, newest step first; a truncated or
    corrupt file is reported and skipped. Raises CheckpointError only when files exist but none
    is valid.
    """
    candidates = []
    latest = os.path.join(run_dir, latest_name) if latest_name else ""
    if latest and os.path.isfile(latest):
        candidates.append(latest)
    candidates += [p for _, p in list_step_checkpoints(run_dir, step_prefix)]
    best: tuple[int, str, dict] | None = None
    bad = []
    for path in candidates:
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            bad.append(path)
            log(f"warning: skipping unusable checkpoint: {e}")
            continue
        step = int(ckpt.get("step", -1))
        if best is None or step > best[0]:
            best = (step, path, ckpt)
    if best is None:
        if bad:
            raise CheckpointError(f"no valid checkpoint in {run_dir}: all of {len(bad)} candidates are corrupt "
                                  f"(move them away to start fresh)")
        return None
    return best[1], best[2]


def prune_step_checkpoints(run_dir: str, prefix: str, keep: int, protect: tuple[int, ...] = ()) -> None:
    """Delete all but the newest `keep` step checkpoints (never fewer than 1, never `protect` steps)."""
    for i, (step, path) in enumerate(list_step_checkpoints(run_dir, prefix)):
        if i >= max(1, keep) and step not in protect:
            os.unlink(path)


# --- RNG state, in a form weights_only=True can load (no numpy arrays) -------------------------

def capture_rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4]), "state": torch.from_numpy(np_state[1].astype(np.int64))},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    """random.setstate needs tuples; serialisation may hand back lists."""
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
