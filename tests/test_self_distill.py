"""scripts/self_distill.sh: stages, metadata contract, failure handling, promotion, spaces in paths."""
import json
import os
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


def run_sd(tmp_path, run_id, retrain='printf student > "$CHECKPOINT_DIR/student model.pt"', *extra):
    cfg = tmp_path / "my config.env"
    cfg.write_text(CONFIG.replace("{retrain}", retrain))
    proc = subprocess.run(["bash", "scripts/self_distill.sh", "--config", str(cfg), "--run-id", run_id, *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    return proc, os.path.join(ROOT, "runs", "self_distill", run_id)


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
