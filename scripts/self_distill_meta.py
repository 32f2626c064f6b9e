#!/usr/bin/env python3
"""JSON bookkeeping for scripts/self_distill.sh (so the shell never writes JSON by hand).

    self_distill_meta.py init META --run-id ID --config PATH [--teacher-checkpoint P] [--teacher-scorecard P]
    self_distill_meta.py stage META --stage NAME --status running|succeeded|failed|skipped [--command C] [--log L] [--rc N]
    self_distill_meta.py set META KEY VALUE
    self_distill_meta.py relabel-tags OUT --tag-file F [--teacher-scorecard P] [--teacher-checkpoint P]
    self_distill_meta.py promotion OUT --run-id ID --source P --target P [--backup P]

Every write is atomic (temp file + rename): metadata.json is valid JSON at every moment.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from discover_distill.fileio import atomic_write_json  # torch-free: this runs a dozen times per loop


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("init")
    a.add_argument("meta")
    a.add_argument("--run-id", required=True)
    a.add_argument("--config", required=True)
    a.add_argument("--teacher-checkpoint", default="")
    a.add_argument("--teacher-scorecard", default="")
    s = sub.add_parser("stage")
    s.add_argument("meta")
    s.add_argument("--stage", required=True)
    s.add_argument("--status", required=True, choices=["running", "succeeded", "failed", "skipped"])
    s.add_argument("--command", default="")
    s.add_argument("--log", default="")
    s.add_argument("--rc", type=int, default=None)
    k = sub.add_parser("set")
    k.add_argument("meta")
    k.add_argument("key")
    k.add_argument("value")
    r = sub.add_parser("relabel-tags")
    r.add_argument("out")
    r.add_argument("--tag-file", required=True)
    r.add_argument("--teacher-scorecard", default="")
    r.add_argument("--teacher-checkpoint", default="")
    m = sub.add_parser("promotion")
    m.add_argument("out")
    m.add_argument("--run-id", required=True)
    m.add_argument("--source", required=True)
    m.add_argument("--target", required=True)
    m.add_argument("--backup", default="")
    args = p.parse_args()

    if args.cmd == "init":
        atomic_write_json(args.meta, {
            "run_id": args.run_id, "started_at": now(), "completed_at": None, "status": "running",
            "config": os.path.abspath(args.config), "teacher_checkpoint": args.teacher_checkpoint or None,
            "teacher_scorecard": args.teacher_scorecard or None, "student_checkpoint": None, "stages": []})
    elif args.cmd == "stage":
        meta = load(args.meta)
        entries = [e for e in meta["stages"] if e["stage"] == args.stage]
        entry = entries[-1] if entries and entries[-1]["status"] == "running" else None
        if entry is None:
            entry = {"stage": args.stage, "status": args.status, "command": args.command, "log": args.log,
                     "started_at": now(), "finished_at": None}
            meta["stages"].append(entry)
        entry["status"] = args.status
        if args.command:
            entry["command"] = args.command
        if args.log:
            entry["log"] = args.log
        if args.status != "running":
            entry["finished_at"] = now()
            if args.rc is not None:
                entry["exit_code"] = args.rc
        atomic_write_json(args.meta, meta)
    elif args.cmd == "set":
        meta = load(args.meta)
        value: object = args.value
        if args.key == "completed_at" and args.value == "now":
            value = now()
        meta[args.key] = value
        atomic_write_json(args.meta, meta)
    elif args.cmd == "relabel-tags":
        atomic_write_json(args.out, {"planlet_tag_file": args.tag_file, "teacher_scorecard": args.teacher_scorecard or None,
                                     "teacher_checkpoint": args.teacher_checkpoint or None, "status": "pending",
                                     "created_at": now()})
    elif args.cmd == "promotion":
        atomic_write_json(args.out, {"run_id": args.run_id, "promoted_at": now(), "source_checkpoint": args.source,
                                     "target": args.target, "backup": args.backup or None,
                                     "rollback": (f"cp '{args.backup}' '{args.target}'" if args.backup else
                                                  f"rm '{args.target}' (no earlier checkpoint existed)")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
