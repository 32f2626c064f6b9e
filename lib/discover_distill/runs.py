"""Reading run directories back: find tracked runs under a root, their live status and their
artifact completeness. Used by run_status.py, artifact_tracker.py and run_phase.py."""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field

from . import artifacts

TRACKER_DIR = "_run_tracker"
STALE_AFTER_S = 120.0


@dataclass
class RunInfo:
    path: str
    heartbeat: dict = field(default_factory=dict)
    last_event: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return derive_status(self.heartbeat)


def find_runs(root: str) -> list[str]:
    """Every directory under root that has a run tracker, sorted."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if TRACKER_DIR in dirnames:
            found.append(dirpath)
            dirnames.remove(TRACKER_DIR)
    return sorted(found)


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            obj = json.load(f)
        return obj if isinstance(obj, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _last_event(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {}


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def derive_status(hb: dict, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> str:
    """running / paused / finished / failed / stale (a "running" heartbeat that stopped beating
    and whose process is gone) / unknown."""
    status = hb.get("status", "unknown")
    if status != "running":
        return status
    now = time.time() if now is None else now
    age = now - float(hb.get("updated_at_unix", now))
    same_host = hb.get("host") == socket.gethostname()
    if age > stale_after_s and (not same_host or not pid_alive(hb.get("pid"))):
        return "stale"
    return "running"


def read_run(path: str, recheck_artifacts: bool = True) -> RunInfo:
    tdir = os.path.join(path, TRACKER_DIR)
    info = RunInfo(path, _read_json(os.path.join(tdir, "heartbeat.json")),
                   _last_event(os.path.join(tdir, "events.jsonl")), _read_json(os.path.join(tdir, "artifacts.json")))
    if recheck_artifacts and info.artifacts.get("kind"):
        try:  # the file may be older than the run's last write: check the disk again
            fresh = artifacts.check_artifacts(path, info.artifacts["kind"], **info.artifacts.get("params", {}))
            info.artifacts = {**info.artifacts, **fresh}
        except (ValueError, TypeError):
            pass
    return info
