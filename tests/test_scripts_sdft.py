"""scripts/sdft.py and build_sdft_from_suite.py end to end on a tiny model."""
import json
import os
import pickle
import random

import pytest
import torch

from conftest import make_tiny_checkpoint, run_script
from discover_distill.data import PackedTokens
from discover_distill.model import load_model
from discover_distill.sdft import student_prompt, teacher_prompt
from discover_distill.tasks import FAMILIES, make_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("sdft")
    make_tiny_checkpoint(d / "base.pt", max_seq_len=320)  # teacher prompts run to ~210 toy-tokenizer pieces
    rng = random.Random(0)
    records = []
    for f in ("knapsack", "golomb"):
        for _ in range(3):
            t = make_task(f, rng, 1, "train")
            records.append({"task_id": t["task_id"], "family": f, "split": "train", "task_prompt": t["prompt"],
                            "spec": t["spec"], "demonstration": FAMILIES[f].solve(t["spec"], rng), "reward": 1.0})
    (d / "demos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"ckpt": str(d / "base.pt"), "data": str(d / "demos.jsonl"), **tiny_data}


def sdft(setup, out, steps, *extra):
    return ["scripts/sdft.py", "--ckpt", setup["ckpt"], "--tokenizer", setup["tokenizer"], "--data", setup["data"],
            "--out", str(out), "--steps", str(steps), "--gate_val_bin", setup["val_bin"], "--gate_val_seq_len", "32",
            "--gate_val_bs", "2", "--gate_batches", "3", "--gate_every", "2", "--batch_size", "4",
            "--max_new_tokens", "8", "--eval_tasks", "4", "--eval_samples", "2", "--lr", "1e-3", "--device", "cpu", *extra]


def test_prompts_teacher_sees_demo_student_does_not():
    s, t = student_prompt("sort ascending: 3 1"), teacher_prompt("sort ascending: 3 1", "1 3")
    assert "1 3" not in s.split("sort ascending: 3 1")[1] and "example response: 1 3" in t
    assert s.endswith("A:") and t.endswith("A:")


@pytest.mark.parametrize("method", ["sdft", "sft"])
def test_artifacts_and_report(setup, tmp_path, method):
    out = tmp_path / method
    run_script(*sdft(setup, out, 4, "--method", method))
    for name in ("sdft_latest.pt", "sdft_step_0000004.pt", "metrics.jsonl", "sdft_eval_report.json", "model_config.json"):
        assert (out / name).exists(), name
    rep = json.load(open(out / "sdft_eval_report.json"))
    assert [g["step"] for g in rep["gate"]] == [0, 2, 4] and rep["method"] == method
    for key in ("base_ppl", "promoted_ppl", "promoted_step", "train_reward_before", "train_reward_after"):
        assert key in rep
    assert isinstance(rep["promoted_step"], int) and rep["all_rejected"] == (rep["promoted_step"] == 0)
    # the gate reads the END of the val tokens (E2 reads the start): 3 batches x 2 x 32 (+1 target)
    n = len(PackedTokens(setup["val_bin"]))
    assert rep["gate_val"]["tokens"] == [n - 3 * 2 * 32 - 1, n] and rep["gate_val"]["num_tokens"] == n
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
    # --skip_tokens defaults to 0: every answer token, the first one included, is in the loss
    assert all(r["loss_tokens"] == r["answer_tokens"] > 0 for r in rows)
    m = load_model(str(out / "sdft_latest.pt"))  # loads wherever a pretrain checkpoint does
    assert m.cfg.vocab_size == 320
    assert json.load(open(out / "_run_tracker" / "artifacts.json"))["complete"]


def test_gate_refuses_a_destructive_update(setup, tmp_path):
    out = tmp_path / "boom"
    proc = run_script(*sdft(setup, out, 4, "--method", "sft", "--lr", "3.0", "--gate_max_ppl_increase", "0.01"))
    rep = json.load(open(out / "sdft_eval_report.json"))
    assert rep["promoted_step"] == 0 and not any(g["passed"] for g in rep["gate"][1:])
    assert rep["all_rejected"] is True and "rejected every step" in proc.stdout and "BASE model" in proc.stdout
    assert torch.load(out / "sdft_latest.pt", weights_only=True)["step"] == 0
    # E2 on that run says so, in its JSON and in words
    e2 = ["paper/scripts/compute_retention_ppl.py", "--base_ckpt", setup["ckpt"], "--base_cfg",
          setup["ckpt"][:-3] + ".json", "--updated_ckpt", str(out / "sdft_latest.pt"), "--updated_cfg",
          str(out / "model_config.json"), "--val_bin", setup["val_bin"], "--seq_len", "32", "--batch_size", "2",
          "--max_batches", "3", "--device", "cpu", "--out", str(tmp_path / "ret.json")]
    proc = run_script(*e2)
    promo = json.load(open(tmp_path / "ret.json"))["promotion"]
    assert promo["promoted_step"] == 0 and promo["all_rejected"] is True
    assert "rejected every step" in proc.stdout and "BASE model" in proc.stdout
    # E2 refuses to read the val tokens the gate chose the checkpoint on (all windows -> overlap)
    proc = run_script(*e2[:-5], "100000", "--device", "cpu", "--out", str(tmp_path / "overlap.json"), check=False)
    assert proc.returncode == 2 and "SDFT gate" in proc.stderr and not (tmp_path / "overlap.json").exists()


def test_resume_is_exact(setup, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_script(*sdft(setup, straight, 4))
    run_script(*sdft(setup, split, 2))
    run_script(*sdft(setup, split, 4, "--resume", "auto"))
    a = torch.load(straight / "sdft_step_0000004.pt", weights_only=True)
    b = torch.load(split / "sdft_step_0000004.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["teacher"][k], b["teacher"][k]) for k in a["teacher"])


def test_malicious_checkpoint_refused(setup, tmp_path):
    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"model": Evil()}, f)
    args = sdft(setup, tmp_path / "x", 2)
    args[args.index("--ckpt") + 1] = str(tmp_path / "evil.pt")
    proc = run_script(*args, check=False)
    assert proc.returncode == 2 and "weights_only" in proc.stderr and not (tmp_path / "pwned").exists()


def test_build_sdft_from_suite_qc(setup, tmp_path):
    rng = random.Random(1)
    tasks = [make_task("knapsack", rng, 1, "train") for _ in range(3)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    suite = tmp_path / "suite"
    for i, t in enumerate(tasks):
        good = FAMILIES["knapsack"].solve(t["spec"], rng)
        tops = [{"solution": good, "reward": 1.0}, {"solution": good, "reward": 1.0},
                {"solution": good + " || A: x", "reward": 1.0}, {"solution": "1 2", "reward": 1.0}]
        os.makedirs(suite / t["task_id"])
        json.dump({"best_solution": good, "best_reward": 1.0, "top_solutions": tops},
                  open(suite / t["task_id"] / "result.json", "w"))
    out = tmp_path / "sdft" / "demos.jsonl"
    args = ["paper/scripts/build_sdft_from_suite.py", "--suite_root", str(suite), "--tasks_jsonl",
            str(tmp_path / "train.jsonl"), "--out_jsonl", str(out), "--min_reward", "0.99"]
    proc = run_script(*args)
    assert "accepted" in proc.stdout
    recs = [json.loads(l) for l in open(out)]
    assert len(recs) == 3
    qc = json.load(open(tmp_path / "sdft" / "demos.qc.json"))
    assert qc["duplicates"] == 3 and qc["format_leakage"] == 3 and qc["rejected"]["reward_not_reproduced"] == 3
    held = make_task("knapsack", rng, 1, "heldout")
    (tmp_path / "mixed.jsonl").write_text((tmp_path / "train.jsonl").read_text() + json.dumps(held) + "\n")
    bad = args[:]
    bad[bad.index("--tasks_jsonl") + 1] = str(tmp_path / "mixed.jsonl")
    proc = run_script(*bad, check=False)
    assert proc.returncode == 2 and "held-out" in proc.stderr
    strict = args + ["--min_records", "10"]
    proc = run_script(*strict, check=False)
    assert proc.returncode == 2 and "QC failed" in proc.stderr
    assert run_script(*strict, "--allow_qc_fail").returncode == 0
