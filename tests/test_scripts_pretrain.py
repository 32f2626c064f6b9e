"""scripts/pretrain.py end to end on a tiny model: artifacts, exact resume, corrupt checkpoints,
NaN handling, and 2-process gloo equivalence."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_MODEL, run_script

pytestmark = pytest.mark.slow


def pretrain_args(data, out, steps, *extra):
    return ["scripts/pretrain.py", "--train_bin", data["train_bin"], "--val_bin", data["val_bin"], "--out", str(out),
            "--model", TINY_MODEL, "--steps", str(steps), "--seq_len", "32", "--micro_bs", "4", "--grad_accum", "2",
            "--eval_every", "5", "--eval_batches", "2", "--ckpt_every", "5", "--log_every", "1", "--warmup", "3",
            "--lr", "3e-3", "--device", "cpu", *extra]


def losses(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [(r["step"], r.get("loss"), r.get("val_loss")) for r in map(json.loads, f)]


def test_artifacts_and_tracker(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = run_script(*pretrain_args(tiny_data, out, 10))
    assert "step 10/10" in proc.stdout
    # rows aligned to documents by default; the packing summary is printed once
    assert proc.stdout.count("packing aligned:") == 1 and "documents longer than a row cut" in proc.stdout
    for name in ("ckpt_latest.pt", "ckpt_step_0000010.pt", "model_config.json", "pretrain_config.json",
                 "metrics.jsonl", "config.json"):
        assert (out / name).exists(), name
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(0, 11))
    assert "loss" not in rows[0] and rows[0]["val_loss"] > rows[-1]["val_loss"]
    rows = rows[1:]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"} <= set(rows[-1])
    assert "val_loss" in rows[4] and "val_ppl" in rows[-1] and "val_loss" not in rows[0]
    assert rows[-1]["loss"] < rows[0]["loss"]
    art = json.load(open(out / "_run_tracker" / "artifacts.json"))
    assert art["complete"], art["missing"]
    assert json.load(open(out / "_run_tracker" / "heartbeat.json"))["status"] == "finished"
    ckpt = torch.load(out / "ckpt_latest.pt", weights_only=True)
    assert ckpt["step"] == 10 and "model" in ckpt and "model_config" in ckpt
    config = json.load(open(out / "pretrain_config.json"))
    assert config["global_bs"] == 8 and config["packing"] == "aligned" and 0.5 < config["packing_fill"] <= 1
    assert ckpt["data"]["packing"] == "aligned" and ckpt["data"]["step"] == 20  # 10 steps x grad_accum 2
    # resuming with the other packing would change the batches: one line, no traceback
    other = run_script(*pretrain_args(tiny_data, out, 10, "--resume", "auto", "--packing", "random"), check=False)
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "--packing random differs" in other.stderr
    # rerunning into the same --out without --resume must not clobber the run
    again = run_script(*pretrain_args(tiny_data, out, 10), check=False)
    assert again.returncode == 2 and "--resume auto" in again.stderr and "Traceback" not in again.stderr


def test_fused_loss_trains_like_the_unfused_loss(tiny_data, tmp_path):
    """--fused_loss 1 (no [B, T, V] logits): the same training and validation curve to rounding."""
    curves = []
    for fused in ("0", "1"):
        out = tmp_path / f"fused{fused}"
        run_script(*pretrain_args(tiny_data, out, 10, "--fused_loss", fused))
        curves.append(losses(out))
    assert [s for s, _, _ in curves[0]] == [s for s, _, _ in curves[1]]
    for (_, a, va), (_, b, vb) in zip(*curves):
        for x, y in ((a, b), (va, vb)):
            assert (x is None) == (y is None) and (x is None or abs(x - y) < 1e-3 * abs(y))


@pytest.mark.parametrize("packing", [[], ["--packing", "random"], ["--copy_warmup", "6"]],
                         ids=["aligned", "random", "copy_warmup"])
def test_sigint_pause_and_resume_is_exact(tiny_data, tmp_path, packing):
    """N steps straight == pause + resume, for the default aligned rows, for random windows (resume
    across epochs: tests/test_data.py) and for a copy warm-up that the pause interrupts. 30 steps leave the pause at step 3 time to land
    mid-run on a loaded CPU."""
    steps = 30
    straight = tmp_path / "straight"
    run_script(*pretrain_args(tiny_data, straight, steps, *packing))
    paused = tmp_path / "paused"
    p = subprocess.Popen([sys.executable, *pretrain_args(tiny_data, paused, steps, *packing)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("step 3/"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=300)
    assert p.returncode == 75, err[-2000:]
    assert "resume with:" in out and "--resume auto" in out
    paused_at = json.load(open(paused / "_run_tracker" / "heartbeat.json"))["step"]
    assert 3 <= paused_at < steps
    run_script(*pretrain_args(tiny_data, paused, steps, *packing, "--resume", "auto"))
    assert losses(paused) == losses(straight)
    a = torch.load(straight / "ckpt_latest.pt", weights_only=True)["model"]
    b = torch.load(paused / "ckpt_latest.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    events = [json.loads(l)["event"] for l in open(paused / "_run_tracker" / "events.jsonl")]
    assert events[0] == "start" and "pause" in events and "resume" in events and events[-1] == "finish"


def test_copy_warmup_then_the_corpus_from_its_first_row(tiny_data, tmp_path):
    """--copy_warmup N: steps 1..N train on copy rows and say so; the corpus cursor starts moving
    only after them, so the corpus batches are the plain run's, shifted by N steps."""
    out = tmp_path / "warm"
    proc = run_script(*pretrain_args(tiny_data, out, 10, "--copy_warmup", "4"))
    assert "copy warm-up: steps 1-4" in proc.stdout and proc.stdout.count("| copy warm-up") == 4
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")][1:]
    assert [r["step"] for r in rows if r.get("copy_warmup")] == [1, 2, 3, 4]
    assert torch.load(out / "ckpt_latest.pt", weights_only=True)["data"]["step"] == 12  # (10 - 4) x grad_accum 2
    assert json.load(open(out / "pretrain_config.json"))["copy_warmup"] == 4
    # resuming with another warm-up would change the batches; a warm-up as long as the run is refused
    other = run_script(*pretrain_args(tiny_data, out, 10, "--resume", "auto", "--copy_warmup", "2"), check=False)
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "--copy_warmup 2 differs" in other.stderr
    bad = run_script(*pretrain_args(tiny_data, tmp_path / "bad", 10, "--copy_warmup", "10"), check=False)
    assert bad.returncode == 2 and "--copy_warmup 10" in bad.stderr and not (tmp_path / "bad").exists()


def test_corrupt_latest_falls_back(tiny_data, tmp_path):
    out = tmp_path / "run"
    run_script(*pretrain_args(tiny_data, out, 10, "--keep_ckpts", "3"))
    # corrupt the newest checkpoint (latest is a hard link to step 10: rewrite, don't truncate in place)
    os.unlink(out / "ckpt_latest.pt")
    (out / "ckpt_latest.pt").write_bytes(b"garbage")
    data = (out / "ckpt_step_0000010.pt").read_bytes()
    os.unlink(out / "ckpt_step_0000010.pt")
    (out / "ckpt_step_0000010.pt").write_bytes(data[: len(data) // 3])
    proc = run_script(*pretrain_args(tiny_data, out, 10, "--resume", "auto"))
    assert "resuming from" in proc.stdout and "ckpt_step_0000005.pt" in proc.stdout
    assert torch.load(out / "ckpt_latest.pt", weights_only=True)["step"] == 10
    # every candidate corrupt: one clear line, no traceback
    for f in out.glob("ckpt_*.pt"):
        os.unlink(f)
        f.write_bytes(b"junk")
    bad = run_script(*pretrain_args(tiny_data, out, 10, "--resume", "auto"), check=False)
    assert bad.returncode == 2 and "no valid checkpoint" in bad.stderr and "Traceback" not in bad.stderr


def test_keep_steps_survive_pruning(tiny_data, tmp_path):
    """--keep_steps: the sweep's bases stay on disk whatever --keep_ckpts prunes."""
    out = tmp_path / "run"
    run_script(*pretrain_args(tiny_data, out, 15, "--keep_ckpts", "1", "--keep_steps", "5"))
    assert sorted(p.name for p in out.glob("ckpt_step_*.pt")) == ["ckpt_step_0000005.pt", "ckpt_step_0000015.pt"]
    assert torch.load(out / "ckpt_step_0000005.pt", weights_only=True)["step"] == 5
    # a step that is never saved: one line naming the flag, before any training
    bad = run_script(*pretrain_args(tiny_data, tmp_path / "bad", 15, "--keep_steps", "7"), check=False)
    assert bad.returncode == 2 and "--keep_steps: 7 not a saved step" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = run_script(*pretrain_args(tiny_data, out, 10, "--debug_nan_at_step", "7"), check=False)
    assert proc.returncode == 1
    assert torch.load(out / "ckpt_latest.pt", weights_only=True)["step"] == 5
    events = [json.loads(l) for l in open(out / "_run_tracker" / "events.jsonl")]
    assert events[-1]["event"] == "error" and "non-finite" in events[-1]["message"]


def test_bad_input_is_one_line(tiny_data, tmp_path):
    proc = run_script(*pretrain_args(tiny_data, tmp_path / "r", 5, "--no_such_flag"), check=False)
    assert proc.returncode == 2
    missing = pretrain_args(tiny_data, tmp_path / "r", 5)
    missing[missing.index("--train_bin") + 1] = str(tmp_path / "nope.bin")
    proc = run_script(*missing, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--train_bin" in proc.stderr


def test_two_process_gloo_matches_single_process(tiny_data, tmp_path):
    """Two ranks split each global batch, copy warm-up rows (steps 1-2) included."""
    single = tmp_path / "single"
    base = pretrain_args(tiny_data, single, 4, "--copy_warmup", "2")
    base[base.index("--grad_accum") + 1] = "1"
    run_script(*base)
    ddp = tmp_path / "ddp"
    args = pretrain_args(tiny_data, ddp, 4, "--copy_warmup", "2")
    args[args.index("--grad_accum") + 1] = "1"
    args[args.index("--micro_bs") + 1] = "2"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_script("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args, env=env)
    a, b = losses(single)[1:], losses(ddp)[1:]
    assert [r[0] for r in a] == [r[0] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert abs(x[1] - y[1]) < 1e-4, (a, b)
    assert json.load(open(ddp / "pretrain_config.json"))["global_bs"] == 4
