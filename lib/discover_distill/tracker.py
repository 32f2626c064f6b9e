"""Run tracker: heartbeat, event timeline, artifact status, provenance, graceful pause.

Layout inside a run directory (runbook, "Run Hygiene"):
    config.json                    all arguments + provenance (git commit, input sha256s, versions)
    _run_tracker/heartbeat.json    {status, phase, step, total, rate, eta_s, pid, host, updated_at}
    _run_tracker/events.jsonl      start / resume / checkpoint / pause / error / finish, with time and step
    _run_tracker/artifacts.json    required vs present, from artifacts.py

Signals only set a flag. The first SIGINT/SIGTERM asks the loop to stop at its next safe point
(`tracker.should_stop`); the loop saves a resumable checkpoint and calls `pause()`, which exits
with EXIT_PAUSED. A second signal exits at once with EXIT_FORCED; all files written so far are
complete because every write is atomic.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from . import artifacts as _artifacts
from .cli import say
from .fileio import append_jsonl, atomic_write_json

EXIT_PAUSED = 75   # EX_TEMPFAIL: "try again later" -- paused, resumable
EXIT_FORCED = 130  # second Ctrl+C: stopped at once
HEARTBEAT_EVERY_S = 2.0


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str | None:
    """The commit of the checkout this library runs from (None outside a git checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "sentencepiece"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # a missing optional library is recorded, not fatal
            versions[name] = "unavailable"
    return versions


def provenance(inputs: dict[str, str] | None = None, seed: int | None = None) -> dict[str, Any]:
    """Where a result came from: code version, exact inputs, seed, libraries, machine, time."""
    hashed = {}
    for name, path in (inputs or {}).items():
        hashed[name] = {"path": path, "sha256": sha256_file(path) if path and os.path.isfile(path) else None}
    return {"git_commit": git_commit(), "inputs": hashed, "seed": seed, "versions": library_versions(),
            "host": socket.gethostname(), "argv": sys.argv, "started_at": now_iso()}


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class RunTracker:
    """Tracks one run directory. Create it at the start of a long-running script.

    `kind` and `artifact_params` name the run's required artifacts (see artifacts.py).
    `enabled=False` (non-zero ranks) keeps the signal flag but writes nothing.
    """

    def __init__(self, run_dir: str, phase: str, total: int, *, kind: str | None = None,
                 artifact_params: dict | None = None, config: dict | None = None,
                 inputs: dict[str, str] | None = None, seed: int | None = None,
                 resumed_from_step: int | None = None, enabled: bool = True,
                 install_signal_handlers: bool = True):
        self.run_dir = run_dir
        self.dir = os.path.join(run_dir, "_run_tracker")
        self.phase, self.total, self.kind = phase, total, kind
        self.artifact_params = artifact_params or {}
        self.enabled = enabled
        self.should_stop = False
        self.stop_reason: str | None = None
        self.step = resumed_from_step or 0
        self._start_step = self.step
        self._start_time = time.time()
        self._last_beat = 0.0
        self._signals_seen = 0
        self._old_handlers: dict[int, Any] = {}
        if install_signal_handlers:
            self._install_handlers()
        if not enabled:
            return
        os.makedirs(self.dir, exist_ok=True)
        if config is not None:
            self.write_config(config, inputs=inputs, seed=seed)
        if resumed_from_step is None:
            self.event("start", step=self.step, total=total)
        else:
            self.event("resume", step=self.step, total=total)
        self.heartbeat("running", force=True)
        self.refresh_artifacts()

    # --- provenance ----------------------------------------------------------------------------
    def write_config(self, config: dict, inputs: dict[str, str] | None = None, seed: int | None = None) -> None:
        """config.json = arguments + provenance. On resume the original is kept and the new
        invocation is appended under "resumes" so nothing about the first start is lost."""
        path = os.path.join(self.run_dir, "config.json")
        record = {"args": config, "provenance": provenance(inputs, seed)}
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    old = json.load(f)
            except (OSError, json.JSONDecodeError):
                old = None
            if isinstance(old, dict) and "args" in old:
                old.setdefault("resumes", []).append(record)
                record = old
        atomic_write_json(path, record)

    # --- timeline and heartbeat ----------------------------------------------------------------
    def event(self, kind: str, step: int | None = None, **data: Any) -> None:
        if self.enabled:
            append_jsonl(os.path.join(self.dir, "events.jsonl"),
                         {"event": kind, "time": now_iso(), "step": self.step if step is None else step, **data})

    def rate_and_eta(self) -> tuple[float | None, float | None]:
        elapsed = time.time() - self._start_time
        done = self.step - self._start_step
        if done <= 0 or elapsed <= 0:
            return None, None
        rate = done / elapsed
        eta = (self.total - self.step) / rate if self.total else None
        return rate, eta

    def heartbeat(self, status: str = "running", force: bool = False, **extra: Any) -> None:
        if not self.enabled:
            return
        t = time.time()
        if not force and t - self._last_beat < HEARTBEAT_EVERY_S:
            return
        self._last_beat = t
        rate, eta = self.rate_and_eta()
        atomic_write_json(os.path.join(self.dir, "heartbeat.json"), {
            "status": status, "phase": self.phase, "step": self.step, "total": self.total,
            "rate": rate, "eta_s": eta, "pid": os.getpid(), "host": socket.gethostname(),
            "updated_at": now_iso(), "updated_at_unix": t, **extra})

    def update(self, step: int, **extra: Any) -> None:
        """Call once per step: records progress and refreshes the heartbeat every few seconds."""
        self.step = step
        self.heartbeat("running", **extra)

    def checkpoint(self, step: int, path: str) -> None:
        self.step = step
        self.event("checkpoint", step=step, path=path)
        self.heartbeat("running", force=True)
        self.refresh_artifacts()

    def refresh_artifacts(self) -> dict | None:
        if not self.enabled or self.kind is None:
            return None
        report = _artifacts.check_artifacts(self.run_dir, self.kind, **self.artifact_params)
        report.update(params=self.artifact_params, updated_at=now_iso())
        atomic_write_json(os.path.join(self.dir, "artifacts.json"), report)
        return report

    # --- endings -------------------------------------------------------------------------------
    def finish(self, step: int | None = None, **data: Any) -> None:
        if step is not None:
            self.step = step
        self.event("finish", **data)
        self.heartbeat("finished", force=True)
        self.refresh_artifacts()
        self._restore_handlers()

    def fail(self, message: str, step: int | None = None) -> None:
        if step is not None:
            self.step = step
        self.event("error", message=message)
        self.heartbeat("failed", force=True, error=message)
        self.refresh_artifacts()
        self._restore_handlers()

    def pause(self, resume_hint: str, step: int | None = None) -> None:
        """Record the graceful pause, tell the user how to resume, and exit with EXIT_PAUSED."""
        if step is not None:
            self.step = step
        self.event("pause", reason=self.stop_reason, resume=resume_hint)
        self.heartbeat("paused", force=True, resume=resume_hint)
        self.refresh_artifacts()
        msg = f"paused at step {self.step}/{self.total}; state saved in {self.run_dir}\nresume with: {resume_hint}"
        say(msg)
        if not sys.stdout.isatty():  # `| tee` may have died with the same Ctrl+C: tell the terminal too
            _stderr(msg)
        self._restore_handlers()
        sys.exit(EXIT_PAUSED)

    def __enter__(self) -> "RunTracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and not issubclass(exc_type, SystemExit):
            self.fail(f"{exc_type.__name__}: {exc}")
        return False

    # --- signals -------------------------------------------------------------------------------
    def _install_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _restore_handlers(self) -> None:
        for sig, handler in self._old_handlers.items():
            try:
                signal.signal(sig, handler)
            except ValueError:
                pass
        self._old_handlers = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals_seen += 1
        name = signal.Signals(signum).name
        if self._signals_seen == 1:
            self.should_stop = True
            self.stop_reason = name
            _stderr(f"\n{name} received: pausing after the current step and saving a checkpoint "
                    f"(send it again to exit immediately)")
            return
        _stderr(f"\n{name} received twice: exiting now")
        try:
            self.event("error", message=f"forced exit on second {name}")
            self.heartbeat("failed", force=True, error=f"forced exit on second {name}")
        finally:
            os._exit(EXIT_FORCED)


def _stderr(msg: str) -> None:
    try:
        print(msg, file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass
