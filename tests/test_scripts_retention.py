import json

import pytest
import torch

from conftest import make_tiny_checkpoint, run_script

pytestmark = pytest.mark.slow


def make_ckpt(d, name, seed):
    return make_tiny_checkpoint(d / f"{name}.pt", seed=seed, max_seq_len=64), str(d / f"{name}.json")


def test_retention_report(tiny_data, tmp_path):
    b, bc = make_ckpt(tmp_path, "base", 0)
    u, uc = make_ckpt(tmp_path, "upd", 1)
    args = ["paper/scripts/compute_retention_ppl.py", "--base_ckpt", b, "--base_cfg", bc, "--updated_ckpt", u,
            "--updated_cfg", uc, "--val_bin", tiny_data["val_bin"], "--seq_len", "32", "--batch_size", "2",
            "--max_batches", "5", "--device", "cpu", "--out", str(tmp_path / "ret.json")]
    run_script(*args)
    r = json.load(open(tmp_path / "ret.json"))
    assert r["batches"] == 5 and r["tokens"] == 5 * 2 * 32
    assert r["delta_ppl"] == pytest.approx(r["updated_ppl"] - r["base_ppl"])
    assert r["delta_ppl_ci95"][0] <= r["delta_ppl"] <= r["delta_ppl_ci95"][1]
    same = args[:]
    same[same.index("--updated_ckpt") + 1] = b
    same[same.index("--out") + 1] = str(tmp_path / "same.json")
    run_script(*same)
    assert json.load(open(tmp_path / "same.json"))["delta_ppl"] == 0.0


def test_cuda_without_gpu_and_bad_pickle(tiny_data, tmp_path):
    b, bc = make_ckpt(tmp_path, "base", 0)
    base = ["paper/scripts/compute_retention_ppl.py", "--base_ckpt", b, "--base_cfg", bc, "--updated_ckpt", b,
            "--updated_cfg", bc, "--val_bin", tiny_data["val_bin"], "--out", str(tmp_path / "r.json"), "--seq_len", "32"]
    if not torch.cuda.is_available():
        proc = run_script(*base, "--device", "cuda", check=False)
        assert proc.returncode == 2 and "--device cpu" in proc.stderr and proc.stderr.count("\n") == 1
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"model": Evil()}, f)
    bad = base[:]
    bad[bad.index("--updated_ckpt") + 1] = str(tmp_path / "evil.pt")
    proc = run_script(*bad, "--device", "cpu", check=False)
    assert proc.returncode == 2 and "weights_only" in proc.stderr and not (tmp_path / "pwned").exists()
    long = base[:-1] + ["300", "--device", "cpu"]
    proc = run_script(*long, check=False)
    assert proc.returncode == 2 and "--seq_len 300 exceeds" in proc.stderr
