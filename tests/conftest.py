"""Shared fixtures: a tiny tokenizer and packed bins built with the real Phase A scripts."""
import json
import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = os.path.join(ROOT, "configs", "model_mhc_tiny.json")


def run_script(*args, check=True, timeout=300, env=None, **kw):
    """Run a repo script with this interpreter from the repo root; returns CompletedProcess."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}")
    return proc


def wjson(path, obj):
    """Write obj as JSON at path, creating its folder (hand-made run files)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def wjsonl(path, rows):
    """Write rows as JSON lines at path, creating its folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))


def _toy_lines(n, seed):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "sort", "reverse", "marks", "target", "the", "a", "of", "to"]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            nums = [str(rng.randrange(100)) for _ in range(rng.randint(3, 6))]
            out.append(f"Q: sort {' '.join(nums)} A: {' '.join(sorted(nums, key=int))}")
        else:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 15))))
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """{"train_bin", "val_bin", "tokenizer"} for a 320-piece tokenizer on toy text."""
    d = tmp_path_factory.mktemp("tiny_data")
    (d / "train.txt").write_text("\n".join(_toy_lines(3000, 0)) + "\n")
    (d / "val.txt").write_text("\n".join(_toy_lines(400, 1)) + "\n")
    run_script("scripts/train_tokenizer.py", "--input", str(d / "train.txt"), "--model_prefix", str(d / "tok"),
               "--vocab_size", "320", "--model_type", "bpe")
    for split in ("train", "val"):
        run_script("scripts/prepare_data.py", "--tokenizer", str(d / "tok.model"), "--input", str(d / f"{split}.txt"),
                   "--output", str(d / f"{split}.bin"), "--append_eos", "1")
    return {"train_bin": str(d / "train.bin"), "val_bin": str(d / "val.bin"), "tokenizer": str(d / "tok.model")}


def make_tiny_checkpoint(path, seed=0, max_seq_len=128):
    """A randomly initialised micro model (vocab 320, matching `tiny_data`) saved as a checkpoint
    the scripts load like a pretrain one; its config is written beside it as <path minus .pt>.json."""
    import dataclasses

    import torch

    from discover_distill.checkpoint import atomic_torch_save
    from discover_distill.config import load_model_config, save_model_config
    from discover_distill.model import GPT

    torch.manual_seed(seed)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=320, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=max_seq_len)
    atomic_torch_save({"model": GPT(cfg).state_dict(), "model_config": cfg.to_dict(), "step": 0}, str(path))
    save_model_config(cfg, str(path)[:-3] + ".json")
    return str(path)
