"""run_phase.py: planning, skip-if-complete, and a failing step named with its log."""
import json
import os

import pytest

from conftest import ROOT, run_script

pytestmark = pytest.mark.slow


def profile(tmp_path, model):
    smoke = json.load(open(f"{ROOT}/configs/profiles/smoke.json"))
    smoke.update(data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"), seeds=[0])
    smoke["corpus"].update(train_lines=400, val_lines=100)
    smoke["tokenizer"].update(vocab_size=512)
    smoke["pretrain"]["model"] = model
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(smoke))
    return str(path)


def test_dry_run_lists_every_phase_in_order(tmp_path):
    out = run_script("paper/scripts/run_phase.py", "--profile", profile(tmp_path, "configs/model_mhc_tiny.json"),
                     "--dry_run", "--include-expected-ablation").stdout
    phases = [l[1] for l in out.splitlines() if l.startswith("[")]
    assert phases == sorted(phases) and set(phases) == set("ABCDEF")
    for name in ("ttt_main_seed0", "ttt_reuse0_seed0", "ttt_adapt0_seed0", "ttt_kl0_seed0", "ttt_expected_seed0",
                 "ttt_train_seed0", "sdft_train", "sft_train", "retention_sdft", "result_figures"):
        assert name in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    no_expected = run_script("paper/scripts/run_phase.py", "--profile", profile(tmp_path, "x.json"), "--dry_run").stdout
    assert "ttt_expected_seed0" not in no_expected


@pytest.mark.parametrize("name", ["paper", "mini"])
def test_profiles_run_every_control_on_every_seed(name, tmp_path):
    """DESIGN §7: ttt_lr0, base_bestofn_flops and the SFT arm (D-E) are paired with the main comparison."""
    prof = json.load(open(f"{ROOT}/configs/profiles/{name}.json"))
    prof.update(data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"))  # nothing done: every command shown
    (tmp_path / "p.json").write_text(json.dumps(prof))
    out = run_script("paper/scripts/run_phase.py", "--profile", str(tmp_path / "p.json"), "--dry_run",
                     "--include-expected-ablation").stdout
    steps = {l.split(":")[0].split()[-1] for l in out.splitlines() if l.startswith("[") and ":" in l}
    seeds, sdft_steps = prof["seeds"], prof["sdft"]["steps"]
    assert seeds == [0, 1]
    for s in seeds:
        for run in ("base_bestofn", "ttt_main", "ttt_lr0", "base_bestofn_flops", f"sdft{sdft_steps}_bestofn",
                    f"sft{sdft_steps}_bestofn"):
            assert f"{run}_seed{s}" in steps, (run, s)
    for step in ("audit_tasks", "pack_val_filler", "sdft_train", "sft_train", "retention_sdft", "retention_sft",
                 "ttt_reuse0_seed0", "ttt_adapt0_seed0", "ttt_kl0_seed0", "ttt_expected_seed0", "ttt_train_seed0"):
        assert step in steps, step
    if name == "paper":
        assert "--lr 0" in out and "--budget_match flops" in out and "--require_paper_mix" in out
    # random search is audited at the runbook's points and at this profile's budget-curve points
    want = {"paper": "1,32,128,512,960", "mini": "1,16,32,64,128,512,960"}[name]
    assert f"--budgets {want} " in next(l for l in out.splitlines() if "audit_tasks:" in l)
    for line in out.splitlines():  # argparse keeps the last --lr: the control's own flag must come last
        if "ttt_lr0_seed" in line.split(":")[0]:
            lrs = line.split("--lr ")[1:]
            assert lrs and lrs[-1].split()[0] == "0", line


def test_failure_names_command_and_log_then_skips_completed_work(tmp_path):
    prof = profile(tmp_path, str(tmp_path / "missing_model.json"))
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "A", "--to-phase", "B",
                      check=False)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()[-1]
    assert "step pretrain failed" in err and "scripts/pretrain.py" in err and "logs/pretrain.log" in err
    assert "--model" in (tmp_path / "runs" / "logs" / "pretrain.log").read_text()
    again = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "A", "--to-phase", "B",
                       "--dry_run").stdout
    assert again.count("skip") == 5 and "[B] pretrain:" in again  # corpus, tokenizer, 3 bins
    bad = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "D", "--to-phase", "B",
                     check=False)
    assert bad.returncode == 2 and "comes after" in bad.stderr


def test_ctrl_c_pauses_the_running_step_and_rerun_resumes(tmp_path):
    import signal
    import subprocess
    import sys

    prof = profile(tmp_path, "configs/model_mhc_tiny.json")
    data = json.load(open(prof))
    data["pretrain"].update(steps=60, seq_len=32, micro_bs=4,
                            extra=["--eval_every", "30", "--eval_batches", "2", "--ckpt_every", "30", "--log_every", "1"])
    open(prof, "w").write(json.dumps(data))
    args = [sys.executable, "paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "A", "--to-phase", "B"]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    for line in p.stdout:
        if line.startswith("step 3/60"):
            os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl+C reaches the whole process group
            break
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 75, out[-2000:]
    assert "paused in pretrain" in out and "resume with:" in out
    again = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "A", "--to-phase", "B").stdout
    assert again.count("skip") == 5 and "--resume auto" in again and "resuming from" in again
    assert "step 60/60" in again
