"""Atomic file writes (temp file in the same directory, fsync, rename) and append-only JSONL.

Torch-free on purpose: small tools (e.g. the self-distillation metadata helper) use it without
paying for importing torch.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call `write(f)` on a temp file beside `path`, fsync it, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + ".", dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; results should be as readable as any file
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def append_jsonl(path: str, row: dict) -> None:
    """Append one JSON row and flush it to disk (jsonl logs are append-only, never rewritten)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def step_checkpoint_name(prefix: str, step: int) -> str:
    """`ckpt_step_0005000.pt` style names: 7-digit zero-padded step, as the runbook lists them."""
    return f"{prefix}_{step:07d}.pt"
