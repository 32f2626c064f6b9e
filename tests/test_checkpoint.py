import os
import pickle
import random

import numpy as np
import pytest
import torch

from discover_distill import checkpoint as ck


def test_atomic_write_json_roundtrip_and_no_temp_left(tmp_path):
    p = tmp_path / "sub" / "r.json"
    ck.atomic_write_json(str(p), {"a": 1})
    ck.atomic_write_json(str(p), {"a": 2})
    assert p.read_text().strip().startswith("{")
    assert '"a": 2' in p.read_text()
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "r.txt"
    ck.atomic_write_text(str(p), "old")

    def boom(f):
        f.write("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        ck.atomic_write(str(p), boom, mode="w")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["r.txt"]


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(ck.CheckpointError, match="weights_only"):
        ck.load_checkpoint(str(p))
    assert not marker.exists()


def test_find_resume_skips_corrupt_latest(tmp_path):
    d = str(tmp_path)
    ck.atomic_torch_save({"step": 10, "w": torch.ones(2)}, os.path.join(d, "ckpt_step_0000010.pt"))
    ck.atomic_torch_save({"step": 20, "w": torch.ones(2)}, os.path.join(d, "ckpt_step_0000020.pt"))
    ck.atomic_torch_save({"step": 20, "w": torch.ones(2)}, os.path.join(d, "ckpt_latest.pt"))
    # truncate the newest two
    for name in ("ckpt_latest.pt", "ckpt_step_0000020.pt"):
        path = os.path.join(d, name)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    logs = []
    path, ckpt = ck.find_resume_checkpoint(d, "ckpt_latest.pt", "ckpt_step", log=logs.append)
    assert path.endswith("ckpt_step_0000010.pt") and ckpt["step"] == 10
    assert len(logs) == 2 and all("skipping" in m for m in logs)


def test_find_resume_all_corrupt_is_one_clear_error(tmp_path):
    (tmp_path / "ckpt_latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ck.CheckpointError, match="no valid checkpoint"):
        ck.find_resume_checkpoint(str(tmp_path), "ckpt_latest.pt", "ckpt_step", log=lambda m: None)
    assert ck.find_resume_checkpoint(str(tmp_path / "empty"), "ckpt_latest.pt", "ckpt_step") is None


def test_prune_keeps_newest(tmp_path):
    for s in (1, 2, 3, 4):
        ck.atomic_torch_save({"step": s}, os.path.join(tmp_path, ck.step_checkpoint_name("ckpt_step", s)))
    ck.prune_step_checkpoints(str(tmp_path), "ckpt_step", keep=2)
    assert [s for s, _ in ck.list_step_checkpoints(str(tmp_path), "ckpt_step")] == [4, 3]
    assert ck.step_checkpoint_name("ckpt_step", 5000) == "ckpt_step_0005000.pt"


def test_rng_state_roundtrip_through_weights_only_save(tmp_path):
    random.seed(1); np.random.seed(2); torch.manual_seed(3)
    state = ck.capture_rng_state()
    p = str(tmp_path / "rng.pt")
    ck.atomic_torch_save({"rng": state}, p)
    expected = (random.random(), float(np.random.rand()), torch.rand(3))
    random.seed(9); np.random.seed(9); torch.manual_seed(9)
    ck.restore_rng_state(ck.load_checkpoint(p)["rng"])
    got = (random.random(), float(np.random.rand()), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])
