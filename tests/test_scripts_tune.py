"""paper/scripts/tune_ttt.py: tunes on train-split tasks only (an audit hook sees every file it
opens), scores each TTT setting against best-of-N at equal FLOPs, and resumes from its cache."""
import json
import os
import random
import runpy
import sys

import pytest

from conftest import ROOT, make_tiny_checkpoint
from discover_distill.cli import UserError
from discover_distill.tasks import make_task

pytestmark = pytest.mark.slow
SCRIPT = os.path.join(ROOT, "paper", "scripts", "tune_ttt.py")
OPENED: list[str] = []
_RECORDING = [False]


def _audit(event, args):
    if _RECORDING[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # cannot be removed; records only while a test runs the script


def tune(monkeypatch, argv):
    """Run the script in this process (so the audit hook sees its opens); returns what it opened."""
    monkeypatch.setattr(sys, "argv", [SCRIPT, *argv])
    OPENED.clear()
    _RECORDING[0] = True
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_path(SCRIPT, run_name="__main__")
    finally:
        _RECORDING[0] = False
    return e.value.code, list(OPENED)


@pytest.fixture(scope="module")
def setup(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    make_tiny_checkpoint(d / "ckpt.pt", max_seq_len=256)
    rng = random.Random(0)
    for split in ("train", "heldout"):
        tasks = [make_task(f, rng, 1, split) for f in ("knapsack", "partition") for _ in range(2)]
        (d / f"{split}.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return {"dir": d, "ckpt": str(d / "ckpt.pt"), "tokenizer": tiny_data["tokenizer"]}


def argv(setup, tasks, out):
    return ["--tasks", str(tasks), "--ckpt", setup["ckpt"], "--tokenizer", setup["tokenizer"], "--out", str(out),
            "--base", "lr=1e-2,ttt_steps=2,rollouts=4,groups=2", "--grid", "lr=0;steps_x_rollouts=1x8",
            "--temperatures", "0.7,1.0", "--max_new_tokens", "6", "--tasks_per_batch", "4", "--device", "cpu"]


def test_tune_reads_train_tasks_only_and_scores_at_equal_flops(setup, tmp_path, monkeypatch):
    heldout = str(setup["dir"] / "heldout.jsonl")
    code, opened = tune(monkeypatch, argv(setup, setup["dir"] / "train.jsonl", tmp_path))
    assert code == 0
    assert str(setup["dir"] / "train.jsonl") in opened  # the hook sees the script's reads...
    assert heldout not in opened and not any(p.endswith("heldout.jsonl") for p in opened)  # ...and no held-out file
    out = json.load(open(tmp_path / "tune.json"))
    assert out["split"] == "train" and all("-train-" in i for i in out["task_ids"])
    assert [r["name"] for r in out["settings"]] == ["base", "lr=0", "steps_x_rollouts=1x8"]
    assert out["settings"][2]["setting"]["ttt_steps"] == 1 and out["settings"][2]["setting"]["rollouts"] == 8
    for r in out["settings"]:
        assert r["score"] == pytest.approx(r["ttt_mean_best"] - r["bestofn_mean_best_at_flops"])
        assert r["bestofn_short_tasks"] == 0  # best-of-N sampled far enough to match every setting's FLOPs
        assert r["score_ci95"][0] <= r["score"] <= r["score_ci95"][1]
    best = max(out["settings"], key=lambda r: (r["score"], -r["mean_flops"]))
    assert out["chosen"]["ttt"] == best["name"]
    assert out["ttt_flags"][out["ttt_flags"].index("--ttt_steps") + 1] == str(best["setting"]["ttt_steps"])
    temps = {r["temperature"]: r["mean_best_at_samples"] for r in out["temperatures"]}
    assert temps[out["chosen"]["bestofn_temperature"]] == max(temps.values())
    assert out["bestofn_flags"] == ["--temperature", repr(out["chosen"]["bestofn_temperature"])]
    # only the chosen temperature samples past the suite's budget, and far enough to cover TTT's FLOPs
    for r in out["temperatures"]:
        chosen_t = r["temperature"] == out["chosen"]["bestofn_temperature"]
        assert (r["max_samples"] is not None) == chosen_t
        if chosen_t:
            assert r["max_samples"] >= r["samples"] and r["mean_best_at_max"] >= r["mean_best_at_samples"]

    # a rerun takes every setting from the cache: nothing is sampled or trained again
    from discover_distill import discovery

    def refuse(*a, **k):
        raise AssertionError("recomputed a cached setting")
    monkeypatch.setattr(discovery, "run_ttt", refuse)
    monkeypatch.setattr(discovery, "run_bestofn", refuse)
    before = (tmp_path / "tune.json").read_text()
    assert tune(monkeypatch, argv(setup, setup["dir"] / "train.jsonl", tmp_path))[0] == 0
    assert (tmp_path / "tune.json").read_text() == before


def test_tune_refuses_heldout_tasks_and_bad_grids(setup, tmp_path, monkeypatch, capsys):
    code, _ = tune(monkeypatch, argv(setup, setup["dir"] / "heldout.jsonl", tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and "not a train-split task" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "tune.json")
    bad = argv(setup, setup["dir"] / "train.jsonl", tmp_path)
    bad[bad.index("--grid") + 1] = "steps_x_rollouts=4x4"  # 16 samples against the base's 8
    code, _ = tune(monkeypatch, bad)
    assert code == 2 and "holds samples fixed" in capsys.readouterr().err
    bad[bad.index("--grid") + 1] = "momentum=0.9"
    assert tune(monkeypatch, bad)[0] == 2 and "knob=value" in capsys.readouterr().err


def test_best_at_flops_and_grid():
    mod = runpy.run_path(SCRIPT)
    curve = [{"samples": 4, "flops": 10.0, "best_so_far": 0.1}, {"samples": 8, "flops": 20.0, "best_so_far": 0.5}]
    assert mod["best_at_flops"](curve, 5.0) == (0.0, False)
    assert mod["best_at_flops"](curve, 10.0) == (0.1, False)
    assert mod["best_at_flops"](curve, 19.0) == (0.1, False)
    assert mod["best_at_flops"](curve, 25.0) == (0.5, True)  # short of the FLOPs asked: flagged
    assert mod["best_at_samples"](curve, 7) == 0.1
    grid = mod["parse_grid"]("lr=1e-3,3e-3;groups=1", {"lr": 3e-3, "ttt_steps": 2, "rollouts": 4, "groups": 2})
    assert [n for n, _ in grid] == ["base", "lr=1e-3", "groups=1"]  # lr=3e-3 is the base itself
    with pytest.raises(UserError, match="knob=value"):
        mod["parse_setting"]("lr", "--base")
