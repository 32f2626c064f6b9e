import json
import shutil

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


def test_filler_split_headline_and_promotion(tiny_data, tmp_path):
    """val_filler.bin beside --val_bin is picked up: its numbers under "filler", the headline; the
    SDFT report beside --updated_ckpt gives "promotion"; the gate's tokens are never measured."""
    packed = tmp_path / "packed"
    packed.mkdir()
    val = packed / "val.bin"
    shutil.copy(tiny_data["val_bin"], val)
    shutil.copy(tiny_data["val_bin"][:-4] + ".json", packed / "val.json")
    (tmp_path / "filler.txt").write_text("".join(f"the alpha of gamma {i % 7} to a beta delta\n" for i in range(300)))
    run_script("scripts/prepare_data.py", "--tokenizer", tiny_data["tokenizer"], "--input",
               str(tmp_path / "filler.txt"), "--output", str(packed / "val_filler.bin"), "--append_eos", "1")
    b, bc = make_ckpt(tmp_path, "base", 0)
    (tmp_path / "sdft").mkdir()
    u, uc = make_ckpt(tmp_path / "sdft", "upd", 1)
    n = json.load(open(packed / "val.json"))["num_tokens"]
    report = {"promoted_step": 0, "all_rejected": True,
              "gate_val": {"bin": str(val), "num_tokens": n, "source_sha256": None, "tokens": [n - 129, n]}}
    (tmp_path / "sdft" / "sdft_eval_report.json").write_text(json.dumps(report))
    args = ["paper/scripts/compute_retention_ppl.py", "--base_ckpt", b, "--base_cfg", bc, "--updated_ckpt", u,
            "--updated_cfg", uc, "--val_bin", str(val), "--seq_len", "32", "--batch_size", "2", "--max_batches", "4",
            "--device", "cpu", "--out", str(tmp_path / "ret.json")]
    proc = run_script(*args)
    r = json.load(open(tmp_path / "ret.json"))
    assert r["headline"] == "filler" and r["batches"] == 4 and r["token_range"] == [0, 4 * 2 * 32 + 1]
    for key in ("base_ppl", "updated_ppl", "delta_ppl", "rel_delta_ppl", "delta_ppl_ci95", "tokens", "batches"):
        assert key in r["filler"], key
    assert r["filler"]["batches"] == 4 and r["filler"]["base_ppl"] != r["base_ppl"]
    assert r["promotion"]["promoted_step"] == 0 and r["promotion"]["all_rejected"] is True
    assert "rejected every step" in proc.stdout and "headline" in proc.stdout
    none = run_script(*args[:-1], str(tmp_path / "none.json"), "--filler_val_bin", "none")
    r = json.load(open(tmp_path / "none.json"))
    assert r["headline"] == "val" and "filler" not in r and "filler-only" in none.stdout
    # E2's batches would reach into the tokens the gate chose the checkpoint on: refused
    report["gate_val"]["tokens"] = [200, n]
    (tmp_path / "sdft" / "sdft_eval_report.json").write_text(json.dumps(report))
    proc = run_script(*args[:-1], str(tmp_path / "bad.json"), check=False)
    assert proc.returncode == 2 and "[200," in proc.stderr and not (tmp_path / "bad.json").exists()
