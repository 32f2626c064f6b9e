"""scripts/self_distill.sh: stages, metadata contract, failure handling, promotion, spaces in paths,
and that no run ever overwrites another run's directory or backup."""
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

CONFIG = """
CAPTURE_CMD='echo captured > "$ARTIFACT_DIR/capture file.txt"'
RELABEL_TAG_FILE="$ARTIFACT_DIR/tags with space.jsonl"
RELABEL_CMD='cp "$ARTIFACT_DIR/capture file.txt" "$RELABEL_TAG_FILE"'
RETRAIN_CMD='{retrain}'
EVAL_CMD='test -f "$STUDENT_CHECKPOINT" && echo "evaluated $STUDENT_CHECKPOINT"'
"""


def run_sd(tmp_path, run_id, retrain='printf student > "$CHECKPOINT_DIR/student model.pt"', *extra, env=None):
    """run_id None = the script's default id (read back from its output)."""
    cfg = tmp_path / "my config.env"
    cfg.write_text(CONFIG.replace("{retrain}", retrain))
    id_args = [] if run_id is None else ["--run-id", run_id]
    proc = subprocess.run(["bash", "scripts/self_distill.sh", "--config", str(cfg), *id_args, *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    if run_id is None:
        m = re.search(r"self_distill: run (\S+) -> ", proc.stdout)
        run_id = m and m.group(1)
    return proc, run_id and os.path.join(ROOT, "runs", "self_distill", run_id)


@pytest.fixture
def run_ids():
    ids = []
    yield ids
    for i in ids:
        subprocess.run(["rm", "-rf", os.path.join(ROOT, "runs", "self_distill", i)])


def test_full_loop_with_promotion(tmp_path, run_ids):
    teacher = tmp_path / "teacher dir" / "teacher.pt"
    teacher.parent.mkdir()
    teacher.write_text("t")
    score = tmp_path / "score card.json"
    score.write_text("{}")
    target = tmp_path / "stable dir" / "student_latest.pt"
    target.parent.mkdir()
    target.write_text("old student")
    run_ids.append("pytest-sd-ok")
    proc, run_dir = run_sd(tmp_path, "pytest-sd-ok", 'printf student > "$CHECKPOINT_DIR/student model.pt"',
                           "--teacher-checkpoint", str(teacher), "--teacher-scorecard", str(score),
                           "--promotion-target", str(target))
    assert proc.returncode == 0, proc.stderr
    for sub in ("logs", "checkpoints", "artifacts", "metadata"):
        assert os.path.isdir(os.path.join(run_dir, sub))
    meta = json.load(open(os.path.join(run_dir, "metadata", "metadata.json")))
    for key in ("run_id", "started_at", "completed_at", "config", "teacher_checkpoint", "teacher_scorecard",
                "student_checkpoint", "stages"):
        assert meta[key], key
    assert [s["stage"] for s in meta["stages"]] == ["capture", "relabel", "retrain", "eval"]
    assert all(s["status"] == "succeeded" and s["command"] and os.path.isfile(s["log"]) for s in meta["stages"])
    assert meta["student_checkpoint"].endswith("student model.pt")
    tags = json.load(open(os.path.join(run_dir, "metadata", "relabel_tags.json")))
    assert tags["planlet_tag_file"].endswith("tags with space.jsonl") and tags["status"] == "pending"
    assert tags["teacher_scorecard"] == str(score) and tags["teacher_checkpoint"] == str(teacher)
    assert target.read_text() == "student"
    backup = f"{target}.bak.pytest-sd-ok"
    assert open(backup).read() == "old student"
    promo = json.load(open(os.path.join(run_dir, "metadata", "promotion.json")))
    assert promo["backup"] == backup and promo["source_checkpoint"].endswith("student model.pt")
    assert "backup" in open(os.path.join(run_dir, "metadata", "storage_alert.txt")).read()


def test_failing_stage_stops_and_is_marked(tmp_path, run_ids):
    run_ids.append("pytest-sd-fail")
    proc, run_dir = run_sd(tmp_path, "pytest-sd-fail", "echo boom; exit 3")
    assert proc.returncode == 3 and "stage retrain failed" in proc.stderr
    meta = json.load(open(os.path.join(run_dir, "metadata", "metadata.json")))  # still valid JSON
    assert [(s["stage"], s["status"]) for s in meta["stages"]] == [("capture", "succeeded"), ("relabel", "succeeded"),
                                                                  ("retrain", "failed")]
    assert meta["status"] == "failed" and meta["completed_at"] and meta["student_checkpoint"] is None
    assert "boom" in open(os.path.join(run_dir, "logs", "retrain.log")).read()


def test_bad_arguments(tmp_path):
    proc = subprocess.run(["bash", "scripts/self_distill.sh", "--config", str(tmp_path / "nope.env")], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--config" in proc.stderr
    proc = subprocess.run(["bash", "scripts/self_distill.sh", "--bogus"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown argument" in proc.stderr


def test_default_run_ids_differ_within_one_second(tmp_path, run_ids):
    """Two runs started in the same second (a frozen clock) get two run directories."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "date").write_text("#!/bin/sh\necho 20250101T000000Z\n")
    (fake / "date").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    dirs = []
    for _ in range(2):
        proc, run_dir = run_sd(tmp_path, None, env=env)
        assert proc.returncode == 0 and run_dir, proc.stderr
        run_ids.append(os.path.basename(run_dir))
        dirs.append(run_dir)
    assert dirs[0] != dirs[1] and all(os.path.basename(d).startswith("20250101T000000Z") for d in dirs)
    for d in dirs:
        meta = json.load(open(os.path.join(d, "metadata", "metadata.json")))
        assert meta["run_id"] == os.path.basename(d) and meta["status"] == "succeeded"


def test_existing_run_id_is_refused_and_untouched(tmp_path, run_ids):
    run_ids.append("pytest-sd-dup")
    proc, run_dir = run_sd(tmp_path, "pytest-sd-dup")
    assert proc.returncode == 0, proc.stderr
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(run_dir) for f in fs)
    before = {f: (open(f, "rb").read(), os.stat(f).st_mtime_ns) for f in files}
    proc, _ = run_sd(tmp_path, "pytest-sd-dup", "echo second > \"$CHECKPOINT_DIR/x.pt\"")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "already exists" in proc.stderr
    assert sorted(os.path.join(r, f) for r, _, fs in os.walk(run_dir) for f in fs) == files
    assert {f: (open(f, "rb").read(), os.stat(f).st_mtime_ns) for f in files} == before


def test_promotion_never_overwrites_a_backup(tmp_path, run_ids):
    target = tmp_path / "stable" / "student_latest.pt"
    target.parent.mkdir()
    target.write_text("old student")
    backup = tmp_path / "stable" / "student_latest.pt.bak.pytest-sd-bak"
    backup.write_text("precious")
    run_ids.append("pytest-sd-bak")
    proc, run_dir = run_sd(tmp_path, "pytest-sd-bak", 'printf student > "$CHECKPOINT_DIR/s.pt"',
                           "--promotion-target", str(target))
    assert proc.returncode == 2 and "already exists" in proc.stderr and not os.path.exists(run_dir)
    # a backup that appears while the run is under way is not overwritten either
    backup.unlink()
    run_ids.append("pytest-sd-bak2")
    late = tmp_path / "stable" / "student_latest.pt.bak.pytest-sd-bak2"
    retrain = f'printf student > "$CHECKPOINT_DIR/s.pt"; printf precious > "{late}"'
    proc, run_dir = run_sd(tmp_path, "pytest-sd-bak2", retrain, "--promotion-target", str(target))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert late.read_text() == "precious" and target.read_text() == "old student"
    assert json.load(open(os.path.join(run_dir, "metadata", "metadata.json")))["status"] == "failed"
    assert [p.name for p in target.parent.iterdir() if ".tmp." in p.name] == []
