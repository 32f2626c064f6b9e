#!/usr/bin/env python3
"""Live table of every tracked run under a root: phase, status, progress, rate, ETA, last event.

    python paper/scripts/run_status.py --root runs --watch 15

Status is running / paused / finished / failed, or stale when a run's heartbeat stopped and its
process is gone (a crash or a killed job). Ctrl+C leaves watch mode cleanly.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from discover_distill.cli import UserError, run
from discover_distill.runs import find_runs, read_run
from discover_distill.tracker import format_duration


def table(root: str) -> str:
    rows = [("run", "phase", "status", "step", "rate/s", "eta", "last event")]
    for path in find_runs(root):
        r = read_run(path, recheck_artifacts=False)
        hb, ev = r.heartbeat, r.last_event
        rate = hb.get("rate")
        step = f"{hb.get('step', '?')}/{hb.get('total', '?')}"
        last = f"{ev.get('event', '')} @{ev.get('step', '')} {ev.get('time', '')[11:19]}".strip() if ev else ""
        rows.append((os.path.relpath(path, root), str(hb.get("phase", "?")), r.status, step,
                     f"{rate:.2f}" if isinstance(rate, (int, float)) else "-",
                     format_duration(hb.get("eta_s")) if r.status == "running" else "-", last))
    if len(rows) == 1:
        return f"no tracked runs under {root}"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def main() -> int:
    p = argparse.ArgumentParser(description="Status of every tracked run under a root.")
    p.add_argument("--root", default="runs", help="directory to scan for runs")
    p.add_argument("--watch", type=float, default=0, help="refresh every N seconds until Ctrl+C (0 = print once)")
    args = p.parse_args()
    if not os.path.isdir(args.root):
        raise UserError(f"--root: not a directory: {args.root}")
    if args.watch <= 0:
        print(table(args.root))
        return 0
    try:
        while True:
            out = table(args.root)
            if sys.stdout.isatty():
                sys.stdout.write("\033[2J\033[H")
            print(f"{time.strftime('%H:%M:%S')}  (refresh {args.watch:g}s, Ctrl+C to quit)\n{out}", flush=True)
            time.sleep(args.watch)
    except KeyboardInterrupt:
        print()
        return 0


if __name__ == "__main__":
    run(main)
