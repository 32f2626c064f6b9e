"""paper/scripts/reading_bench.py: the per-family reading benchmark's profile per seed, and one
run end to end at smoke scale (corpus of two families -> pretrain -> probe -> table)."""
import importlib.util
import json
import os

import pytest

from conftest import ROOT, run_script
from discover_distill.config import load_profile

SCRIPT = "paper/scripts/reading_bench.py"


def load_script():
    spec = importlib.util.spec_from_file_location("reading_bench", os.path.join(ROOT, SCRIPT))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_seed_profile_overrides_corpus_pretraining_tasks_and_probe():
    rb = load_script()
    base, _ = load_profile("mini")
    args = rb.parse_args(["--out", "x", "--task_mix", "plain=1,step=1", "--corpus_extra", "--policy_noise 0.2",
                          "--pretrain_extra", "--lr 1e-3", "--steps", "700", "--per_family", "10"])
    prof = rb.seed_profile(base, args, 3, "tour,gridpath", "runs/reading/x/seed3")
    c, pre, t = prof["corpus"]["extra"], prof["pretrain"], prof["tasks"]["extra"]
    assert prof["corpus"]["seed"] == 3 and pre["seed"] == 3 and pre["steps"] == 700
    assert c.count("--task_mix") == 1 and c[c.index("--task_mix") + 1] == "plain=1,step=1"
    assert c[c.index("--families") + 1] == "tour,gridpath" and c[-2:] == ["--policy_noise", "0.2"]
    assert "--difficulties" in c   # the base profile's other corpus flags stay
    assert pre["extra"][-2:] == ["--lr", "1e-3"] and pre["model"] == base["pretrain"]["model"]
    assert t[t.index("--n_heldout") + 1] == "10" and t[t.index("--families") + 1] == "tour,gridpath"
    assert prof["probe"]["gate"] is None and prof["probe"]["gate_opt_out"]
    assert "sweep" in base and "sweep" not in prof  # 700 steps cannot hold the mini's sweep bases
    # the order lever reaches both the corpus and the policy answer the probe measures
    assert c[c.index("--answer_order") + 1] == "construction" == prof["probe"]["extra"][1]
    sorted_args = rb.parse_args(["--out", "x", "--answer_order", "sorted"])
    sp = rb.seed_profile(base, sorted_args, 0, "all", "r")
    assert sp["probe"]["extra"] == ["--answer_order", "sorted"] and "sorted" in sp["corpus"]["extra"]
    assert sp["pretrain"]["seq_len"] == base["pretrain"]["seq_len"]   # the profile's unless asked
    longer = rb.seed_profile(base, rb.parse_args(["--out", "x", "--seq_len", "160", "--micro_bs", "13"]), 0, "all", "r")
    assert (longer["pretrain"]["seq_len"], longer["pretrain"]["micro_bs"]) == (160, 13)
    assert "--cells" not in longer["corpus"]["extra"] + longer["tasks"]["extra"]
    # the format lever reaches the corpus and the probed tasks alike
    lab = rb.seed_profile(base, rb.parse_args(["--out", "x", "--cells", "labelled"]), 0, "all", "r")
    for extra in (lab["corpus"]["extra"], lab["tasks"]["extra"]):
        assert extra[extra.index("--cells") + 1] == "labelled"
    assert prof["runs_dir"] == "runs/reading/x/seed3/runs" and base["runs_dir"] == "runs/mini/runs"  # a copy
    assert rb.replace_flag(["--a", "1", "--b", "2"], "--a", None) == ["--b", "2"]


@pytest.mark.slow
def test_reading_bench_runs_end_to_end_and_writes_the_table(tmp_path):
    out = tmp_path / "bench"
    proc = run_script(SCRIPT, "--profile", "smoke", "--out", str(out), "--families", "knapsack,tour", "--seeds", "0",
                      "--steps", "4", "--train_lines", "300", "--per_family", "2", "--samples", "2", timeout=900)
    res = json.loads((out / "reading.json").read_text())
    assert [(r["family"], r["seed"]) for r in res["rows"]] == [("knapsack", 0), ("tour", 0), ("overall", 0)]
    assert all(r["policy_swap_gap"] is not None and r["val_loss"] is not None for r in res["rows"])
    md = (out / "reading.md").read_text()
    assert "swap gap, policy answer" in md and "| tour | 0 |" in md and "| tour | 0 |" in proc.stdout
    # by answer token: a tour answer is one letter per point and the EOS, and its gaps sum to the answer's
    tour = res["rows"][1]
    probe = json.loads((out / "seed0" / "runs" / "probe" / "probe.json").read_text())
    lengths = {r["policy_answer_tokens"] for r in probe["tasks"] if r["family"] == "tour"}
    assert lengths == {len(tour["policy_swap_gap_by_token"])} and lengths.pop() >= 9   # 8 points or more, EOS
    assert sum(tour["policy_swap_gap_by_token"]) == pytest.approx(tour["policy_swap_gap"], abs=1e-3)
    assert "by answer token" in md and "(EOS)" in md.split("by answer token")[1]
    corpus = (out / "seed0" / "data" / "raw" / "train.txt").read_text().splitlines()
    assert {l.split(":")[1].strip() for l in corpus if l.startswith("Q: ")} <= {"knapsack", "tour"}
    # a second invocation skips the finished seed and still reports its whole cost, not the skip's
    first = res["rows"][0]["minutes"]
    run_script(SCRIPT, "--profile", "smoke", "--out", str(out), "--families", "knapsack,tour", "--seeds", "0",
               "--steps", "4", "--train_lines", "300", "--per_family", "2", "--samples", "2", timeout=900)
    again = json.loads((out / "reading.json").read_text())["rows"][0]["minutes"]
    assert first > 0 and first <= again < first + 1
    bad = run_script(SCRIPT, "--out", str(out), "--families", "nope", check=False)
    assert bad.returncode == 2 and "--families" in bad.stderr and "Traceback" not in bad.stderr
