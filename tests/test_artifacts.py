import os

import pytest

from discover_distill.artifacts import check_artifacts, required_artifacts


def test_pretrain_requires_runbook_files():
    req = required_artifacts("pretrain", steps=5000)
    assert req == ["ckpt_latest.pt", "ckpt_step_0005000.pt", "model_config.json", "pretrain_config.json",
                   "metrics.jsonl"]


def test_suite_ttt_patterns(tmp_path):
    d = tmp_path
    (d / "summary.jsonl").write_text("")
    (d / "t1").mkdir()
    (d / "t1" / "result.json").write_text("{}")
    (d / "t1" / "metrics.jsonl").write_text("")
    rep = check_artifacts(str(d), "suite_ttt", task_ids=["t1"])
    assert not rep["complete"] and rep["missing"] == ["t1/adapter_step_*/lora.pt"]
    os.makedirs(d / "t1" / "adapter_step_0003")
    (d / "t1" / "adapter_step_0003" / "lora.pt").write_bytes(b"x")
    assert check_artifacts(str(d), "suite_ttt", task_ids=["t1"])["complete"]
    assert check_artifacts(str(d), "suite_bestofn", task_ids=["t1"])["complete"]


def test_unknown_kind_and_missing_params():
    with pytest.raises(ValueError, match="unknown run kind"):
        required_artifacts("nope")
    with pytest.raises(ValueError, match="steps"):
        required_artifacts("sdft")
