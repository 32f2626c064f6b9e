#!/usr/bin/env python3
"""Required vs present artifacts for every tracked run under a root (from artifacts.py).

    python paper/scripts/artifact_tracker.py --root runs [--json]

Exit code 0 when every run is complete, 1 when anything is missing.
"""
from __future__ import annotations

import argparse
import json
import os

from discover_distill.cli import UserError, run
from discover_distill.runs import find_runs, read_run


def collect(root: str) -> list[dict]:
    out = []
    for path in find_runs(root):
        r = read_run(path)
        a = r.artifacts
        out.append({"run": os.path.relpath(path, root), "phase": r.heartbeat.get("phase"), "status": r.status,
                    "kind": a.get("kind"), "required": len(a.get("required", [])),
                    "present": len(a.get("present", [])), "missing": a.get("missing", []),
                    "complete": bool(a.get("complete")) if a.get("kind") else r.status == "finished"})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description="Artifact completeness of every tracked run under a root.")
    p.add_argument("--root", default="runs", help="directory to scan for runs")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of a table")
    args = p.parse_args()
    if not os.path.isdir(args.root):
        raise UserError(f"--root: not a directory: {args.root}")
    report = collect(args.root)
    complete = bool(report) and all(r["complete"] for r in report)
    if args.json:
        print(json.dumps({"root": args.root, "complete": complete, "runs": report}, indent=2))
    else:
        if not report:
            print(f"no tracked runs under {args.root}")
        for r in report:
            mark = "ok " if r["complete"] else "MISSING"
            print(f"{mark:7} {r['run']}  [{r['phase']}, {r['kind']}, {r['status']}]  "
                  f"{r['present']}/{r['required']} artifacts")
            for m in r["missing"][:10]:
                print(f"          missing: {m}")
            if len(r["missing"]) > 10:
                print(f"          ... and {len(r['missing']) - 10} more")
        print(f"{sum(r['complete'] for r in report)}/{len(report)} runs complete")
    return 0 if complete else 1


if __name__ == "__main__":
    run(main)
