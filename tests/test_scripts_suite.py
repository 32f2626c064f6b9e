"""paper/run_discovery_suite.py end to end on a tiny model: artifacts, resume, bad task files."""
import json
import os
import random

import pytest
import torch

from conftest import make_tiny_checkpoint, run_script
from discover_distill.cli import UserError
from discover_distill.discovery import load_tasks
from discover_distill.tasks import make_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("suite")
    make_tiny_checkpoint(d / "ckpt.pt", max_seq_len=256)
    rng = random.Random(0)
    tasks = [make_task(f, rng, 1, "heldout") for f in ("knapsack", "partition", "golomb")]
    (d / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return {"ckpt": str(d / "ckpt.pt"), "tasks": str(d / "tasks.jsonl"), "tokenizer": tiny_data["tokenizer"],
            "ids": [t["task_id"] for t in tasks]}


def suite(setup, out, mode, *extra):
    return ["paper/run_discovery_suite.py", "--tasks", setup["tasks"], "--ckpt", setup["ckpt"], "--tokenizer",
            setup["tokenizer"], "--out_root", str(out), "--seed", "0", "--mode", mode, "--ttt_steps", "2",
            "--rollouts", "8", "--max_new_tokens", "6", "--tasks_per_batch", "2", "--groups", "2",
            "--device", "cpu", *extra]


def test_bestofn_artifacts_and_resume(setup, tmp_path):
    out = tmp_path / "bon"
    proc = run_script(*suite(setup, out, "bestofn"))
    assert "solve rate" in proc.stdout and "95% CI" in proc.stdout
    rows = [json.loads(l) for l in open(out / "summary.jsonl")]
    assert [r["task_id"] for r in rows] == setup["ids"]
    res = json.load(open(out / setup["ids"][0] / "result.json"))
    for key in ("best_reward", "best_solution", "solved", "samples", "generated_tokens", "flops",
                "first_step_solved", "wall_s"):
        assert key in res
    assert res["samples"] == 16 and json.load(open(out / "_run_tracker" / "artifacts.json"))["complete"]
    again = run_script(*suite(setup, out, "bestofn"), check=False)
    assert again.returncode == 2 and "--resume" in again.stderr
    keep = (out / setup["ids"][0] / "result.json").read_bytes()
    os.unlink(out / setup["ids"][2] / "result.json")
    proc = run_script(*suite(setup, out, "bestofn", "--resume"))
    assert "on 1 of 3 tasks" in proc.stdout
    assert (out / setup["ids"][0] / "result.json").read_bytes() == keep
    assert len(open(out / "summary.jsonl").readlines()) == 3
    run_script(*suite(setup, tmp_path / "bonf", "bestofn", "--budget_match", "flops", "--max_tasks", "1"))
    assert json.load(open(tmp_path / "bonf" / setup["ids"][0] / "result.json"))["samples"] == 16 * 5


@pytest.mark.parametrize("flags", [["--objective", "entropic", "--reuse", "1", "--adaptive_beta", "1", "--kl_lambda", "0.1"],
                                   ["--objective", "expected", "--reuse", "0", "--adaptive_beta", "0", "--kl_lambda", "0"]])
def test_ttt_artifacts(setup, tmp_path, flags):
    out = tmp_path / "ttt"
    run_script(*suite(setup, out, "ttt", "--save_adapter_every", "1", *flags))
    for tid in setup["ids"]:
        rows = [json.loads(l) for l in open(out / tid / "metrics.jsonl")]
        assert [r["step"] for r in rows] == [1, 2]
        for key in ("mean_reward", "max_reward", "best_so_far", "beta", "kl_to_base", "entropy", "loss", "grad_norm",
                    "archive_size"):
            assert key in rows[-1]
        assert (out / tid / "adapter_step_0001" / "lora.pt").exists() and (out / tid / "adapter_step_0002" / "lora.pt").exists()
        lora = torch.load(out / tid / "adapter_step_0002" / "lora.pt", weights_only=True)
        assert lora["meta"]["task_id"] == tid and lora["lora_config"]["rank"] == 8
    assert json.load(open(out / "_run_tracker" / "artifacts.json"))["complete"]


def test_bad_task_files_are_one_line_errors(setup, tmp_path):
    good = open(setup["tasks"]).readline()
    cases = {"badjson": good + "{not json\n", "unsafe": good.replace(json.loads(good)["task_id"], "../../etc"),
             "dup": good + good, "keys": '{"task_id": "x"}\n'}
    for name, text in cases.items():
        p = tmp_path / f"{name}.jsonl"
        p.write_text(text)
        with pytest.raises(UserError) as e:
            load_tasks(str(p))
        assert f"{name}.jsonl:" in str(e.value)
    out = tmp_path / "never"
    args = suite(setup, out, "bestofn")
    args[args.index("--tasks") + 1] = str(tmp_path / "unsafe.jsonl")
    proc = run_script(*args, check=False)
    assert proc.returncode == 2 and "unsafe task_id" in proc.stderr and "unsafe.jsonl:1" in proc.stderr
    assert not out.exists()


def test_shards_cover_the_task_list(setup, tmp_path):
    out = tmp_path / "sharded"
    for i in range(2):
        run_script(*suite(setup, out, "bestofn", "--shard", f"{i}/2", "--resume"))
    rows = [json.loads(l) for l in open(out / "summary.jsonl")]
    assert [r["task_id"] for r in rows] == setup["ids"]
    bad = run_script(*suite(setup, tmp_path / "x", "bestofn", "--shard", "2/2"), check=False)
    assert bad.returncode == 2 and "--shard" in bad.stderr


def test_sigint_pauses_between_batches_and_resume_keeps_finished_tasks(setup, tmp_path):
    import signal
    import subprocess
    import sys

    from conftest import ROOT
    out = tmp_path / "paused"
    args = suite(setup, out, "ttt")
    args[args.index("--tasks_per_batch") + 1] = "1"
    p = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("tasks 1/3"):
            p.send_signal(signal.SIGINT)
            break
    stdout, err = p.communicate(timeout=300)
    assert p.returncode == 75, err[-2000:]
    done = [t for t in setup["ids"] if (out / t / "result.json").exists()]
    assert 1 <= len(done) < 3
    before = {t: (out / t / "result.json").read_bytes() for t in done}
    run_script(*args, "--resume")
    assert all((out / t / "result.json").read_bytes() == b for t, b in before.items())
    assert all((out / t / "result.json").exists() for t in setup["ids"])


def test_bestofn_matches_each_tasks_ttt_flops(setup, tmp_path):
    """--flops_from: every task samples until it has spent the TTT run's FLOPs on it, and no further
    round; its first samples are the sample-budget run's (same per-task generator)."""
    ttt = tmp_path / "ttt"
    run_script(*suite(setup, ttt, "ttt", "--kl_lambda", "0.1"))
    out = tmp_path / "matched"
    proc = run_script(*suite(setup, out, "bestofn", "--budget_match", "flops", "--flops_from", str(ttt)))
    assert "to its FLOPs in" in proc.stdout
    plain = tmp_path / "plain"
    run_script(*suite(setup, plain, "bestofn"))
    for tid in setup["ids"]:
        target = json.load(open(ttt / tid / "result.json"))["flops"]
        res = json.load(open(out / tid / "result.json"))
        curve = res["best_curve"]
        assert res["flops"] >= target and res["flops_target"] == target
        assert len(curve) == 1 or curve[-2]["flops"] < target  # it stopped at the first round past the target
        assert res["flops"] == pytest.approx(curve[-1]["flops"]) and res["samples"] == 8 * len(curve)
        first = json.load(open(plain / tid / "result.json"))["best_curve"]
        assert curve[:len(first)] == first
    bad = run_script(*suite(setup, tmp_path / "x", "bestofn", "--budget_match", "flops", "--flops_from",
                            str(tmp_path / "nowhere")), check=False)
    assert bad.returncode == 2 and "--flops_from" in bad.stderr and "result.json" in bad.stderr
    bad = run_script(*suite(setup, tmp_path / "y", "bestofn", "--flops_from", str(ttt)), check=False)
    assert bad.returncode == 2 and "--budget_match flops" in bad.stderr
