"""run_phase.py: planning, skip-if-complete, and a failing step named with its log."""
import json
import os

import pytest

from conftest import ROOT, run_script

pytestmark = pytest.mark.slow


def profile(tmp_path, model):
    smoke = json.load(open(f"{ROOT}/configs/profiles/smoke.json"))
    smoke.update(data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"), seeds=[0])
    smoke.pop("sweep")  # these tests are about the other steps; the sweep's own tests add one
    smoke["corpus"].update(train_lines=400, val_lines=100)
    smoke["tokenizer"].update(vocab_size=512)
    smoke["pretrain"]["seq_len"] = 192  # with 512 pieces a difficulty-1 task line is up to ~150 tokens: one row
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
    """DESIGN §7: ttt_lr0, base_bestofn_flops and the SFT arm (D-E) are paired with the main comparison,
    on every seed but a profile's main_only_seeds, which replicate the main comparison alone."""
    prof = json.load(open(f"{ROOT}/configs/profiles/{name}.json"))
    prof.update(data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"))  # nothing done: every command shown
    (tmp_path / "p.json").write_text(json.dumps(prof))
    out = run_script("paper/scripts/run_phase.py", "--profile", str(tmp_path / "p.json"), "--dry_run",
                     "--include-expected-ablation").stdout
    steps = {l.split(":")[0].split()[-1] for l in out.splitlines() if l.startswith("[") and ":" in l}
    seeds, sdft_steps = prof["seeds"], prof["sdft"]["steps"]
    assert seeds == [0, 1]
    main_only = prof.get("main_only_seeds", [])
    assert main_only == {"paper": [], "mini": [1]}[name]  # the paper runs everything on both seeds
    for s in seeds:
        for run in ("base_bestofn", "ttt_main"):
            assert f"{run}_seed{s}" in steps, (run, s)
        for run in ("ttt_lr0", "base_bestofn_flops", f"sdft{sdft_steps}_bestofn", f"sft{sdft_steps}_bestofn"):
            assert (f"{run}_seed{s}" in steps) == (s not in main_only), (run, s)
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
    data["pretrain"].update(steps=60, seq_len=192, micro_bs=2,
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


def phase_a_outputs(data, prof):
    """Stand-ins for what phase A makes (the corpus, the tokenizer, the packed bins)."""
    for rel in ("raw/train.txt", f"tokenizer/{prof['tokenizer']['name']}.model", "packed/train.bin", "packed/val.bin",
                "packed/val_filler.bin"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text("stand-in")


def tree(path):
    return sorted((str(p), p.stat().st_mtime_ns) for p in path.rglob("*"))


def test_a_phase_without_its_inputs_names_the_phase_that_makes_them_and_writes_nothing(tmp_path):
    """`make phase-C SEED=1 PROFILE=smoke` on a fresh clone: one line naming the missing input,
    the phase that makes it and the command that runs it; exit 2; nothing written."""
    prof = profile(tmp_path, "configs/model_mhc_tiny.json")
    before = tree(tmp_path)
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      "--seeds", "1", check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr
    assert err[0].startswith("error: phase C (") and "which phase A makes" in err[0]
    assert f"run_phase.py --profile {prof} --from-phase A --to-phase B --seeds 1" in err[0]
    assert tree(tmp_path) == before
    # with A's outputs in place, B's checkpoint is what C lacks: one phase, one command
    phase_a_outputs(tmp_path / "data", json.load(open(prof)))
    before = tree(tmp_path)
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "F",
                      check=False)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and proc.stdout == ""
    assert "needs the base checkpoint" in err[0] and "ckpt_latest.pt" in err[0]
    assert f"which phase B makes; run phase B first: make phase-B PROFILE={prof}" in err[0]
    assert tree(tmp_path) == before
    # a later phase's input from an earlier phase outside the range is checked before anything runs
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "F", "--to-phase", "F",
                      check=False)
    assert proc.returncode == 2 and "needs the suite runs" in proc.stderr
    assert "--from-phase C --to-phase E" in proc.stderr
    assert tree(tmp_path) == before
    # a dry run still shows the plan, with what a real run would stop on
    dry = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                     "--dry_run")
    assert dry.stdout.startswith("note: a real run stops here: phase C") and "[C] audit_tasks:" in dry.stdout
    assert tree(tmp_path) == before


def phase_c_ready(tmp_path, probe: dict | None, gate="paper"):
    """A smoke profile whose phase C has everything before the probe gate done (task files, audit, a
    stand-in checkpoint) and, when given, a probe.json newer than the checkpoint."""
    prof = json.loads(open(profile(tmp_path, "configs/model_mhc_tiny.json")).read())
    if gate in ("paper", "mini"):
        prof["probe"] = json.load(open(f"{ROOT}/configs/profiles/{gate}.json"))["probe"]
    d, r = tmp_path / "data" / "discovery", tmp_path / "runs"
    d.mkdir(parents=True)
    phase_a_outputs(tmp_path / "data", prof)
    for split in ("train", "heldout"):
        (d / f"{split}.jsonl").write_text(json.dumps({"task_id": f"t-{split}"}) + "\n")
    (d / "audit.json").write_text("{}")
    ckpt = r / prof["pretrain"]["run"] / "ckpt_latest.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    os.utime(ckpt, (1e9, 1e9))
    if probe is not None:
        (r / "probe").mkdir()
        (r / "probe" / "probe.json").write_text(json.dumps(probe))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prof))
    return str(path), r


BLIND = {"families": {"knapsack": {"swap_gap": 0.02}, "tour": {"swap_gap": -0.01}},
         "overall": {"well_formed": 0.4, "reward": 0.05, "random_reward": 0.05, "best_of_n": 0.2,
                     "random_best_of_n": 0.5}}


def test_a_blind_probe_stops_phase_c_before_any_suite_run(tmp_path):
    prof, runs = phase_c_ready(tmp_path, BLIND)
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: probe gate failed")
    for check in ("swap gap below 1 nats in 2 of 2 families", "well-formed share 0.40 < 0.9", "random answers'",
                  "random search's", str(runs / "probe" / "probe.json")):
        assert check in err[0], check
    assert "[C] skip probe (complete)" in proc.stdout and "base_bestofn" not in proc.stdout
    assert not (runs / "suite").exists()
    gate = json.load(open(runs / "probe" / "gate.json"))
    assert gate["passed"] is False and len(gate["failed"]) == 4 and gate["opt_out"] is None


def test_the_minis_partial_gate_passes_a_base_that_reads_three_families_and_records_its_note(tmp_path):
    # the mini's gate checks what both of its recipe's bases reach (a swap gap >= 1 nat in 3 families,
    # format, reward >= 1.5x random's, best-of-N) and gate.json carries the note naming what is not gated yet
    fams = {"knapsack": {"swap_gap": 2.1, "policy_swap_gap": 6.3}, "golomb": {"swap_gap": 0.1, "policy_swap_gap": 3.7},
            "partition": {"swap_gap": 0.3, "policy_swap_gap": 2.5}, "tour": {"swap_gap": -0.01, "policy_swap_gap": 0.02}}
    overall = dict(BLIND["overall"], well_formed=0.95, reward=0.08, best_of_n=0.55)   # reward 1.6x random's 0.05
    prof, runs = phase_c_ready(tmp_path, {"families": fams, "overall": overall}, gate="mini")
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      check=False)
    assert f"[C] probe_gate: passed ({runs / 'probe' / 'probe.json'})" in proc.stdout, proc.stdout + proc.stderr
    gate = json.load(open(runs / "probe" / "gate.json"))
    note = json.load(open(f"{ROOT}/configs/profiles/mini.json"))["probe"]["gate_note"]
    assert gate["passed"] is True and gate["failed"] == [] and gate["note"] == note and "swap gap" in note
    # the same base reading two families only (golomb's read on the optimal answer does not count) stops
    two = dict(fams, golomb={"swap_gap": 2.3, "policy_swap_gap": 0.1})
    (runs / "probe" / "probe.json").write_text(json.dumps({"families": two, "overall": overall}))
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      check=False)
    assert proc.returncode == 2 and "swap gap below 1 nats in 2 of 4 families" in proc.stderr, proc.stderr
    # and so does a base that reads but writes too few well-formed answers, or earns too little per sample
    for worse, says in ((dict(overall, well_formed=0.85), "well-formed share 0.85 < 0.9"),
                        (dict(overall, reward=0.07), "is not 1.5x random answers'")):
        (runs / "probe" / "probe.json").write_text(json.dumps({"families": fams, "overall": worse}))
        proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                          check=False)
        assert proc.returncode == 2 and says in proc.stderr and "swap gap" not in proc.stderr, proc.stderr


def test_an_opted_out_profile_passes_the_gate_with_its_reason_recorded(tmp_path):
    prof, runs = phase_c_ready(tmp_path, None, gate="smoke")
    reason = json.load(open(f"{ROOT}/configs/profiles/smoke.json"))["probe"]["gate_opt_out"]
    (runs / "probe").mkdir()
    (runs / "probe" / "probe.json").write_text(json.dumps(BLIND))   # blind, but the profile opted out
    proc = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      check=False)
    assert f"[C] probe_gate: opted out ({reason})" in proc.stdout
    assert "step tune failed" in proc.stderr   # past the gate: the tune step, the first to load the (fake) ckpt
    gate = json.load(open(runs / "probe" / "gate.json"))
    assert gate["passed"] is True and gate["opt_out"] == reason and gate["failed"] == []


def test_probe_reruns_when_older_than_the_checkpoint_and_profiles_must_gate_or_opt_out(tmp_path):
    prof, runs = phase_c_ready(tmp_path, BLIND)
    os.utime(runs / "probe" / "probe.json", (1e8, 1e8))   # older than the checkpoint: a stale probe
    out = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                     "--dry_run").stdout
    assert "[C] probe: " in out and "probe_base.py" in out and "--per_family 20 --samples 128" in out
    assert '[C] probe_gate: {"bestofn_vs_random": true, "min_reward_ratio": 2.0' in out
    data = json.load(open(prof))
    for block, msg in (({}, "no probe gate"), ({"gate": None}, "without a \"gate_opt_out\" reason")):
        data["probe"] = block
        open(prof, "w").write(json.dumps(data))
        bad = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "B", "--to-phase", "C",
                         "--dry_run", check=False)
        assert bad.returncode == 2 and msg in bad.stderr and not bad.stdout  # before anything runs
    data["probe"] = {"gate": {"min_swapgap": 1.0}}   # a typo in a threshold: named at the gate
    open(prof, "w").write(json.dumps(data))
    os.utime(runs / "probe" / "probe.json")
    typo = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      check=False)
    assert typo.returncode == 2 and "unknown probe gate threshold(s) min_swapgap" in typo.stderr


def test_tuned_flags_reach_every_suite_run_of_their_arm_and_a_controls_own_flags_still_win(tmp_path):
    prof, runs = phase_c_ready(tmp_path, None, gate="smoke")
    p = json.load(open(prof))
    p["suite"]["extra"] += ["--lr", "3e-3", "--groups", "2"]
    open(prof, "w").write(json.dumps(p))

    def dry():
        return run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "E",
                          "--dry_run").stdout
    out = dry()  # no tune result yet: the tune step is planned with the suite's setting as its base
    tune_line = next(l for l in out.splitlines() if l.startswith("[C] tune:"))
    assert "--base ttt_steps=4,rollouts=16,lr=3e-3,groups=2 " in tune_line and "--tasks_per_batch 10" in tune_line
    assert f"--tasks {tmp_path / 'data' / 'discovery' / 'train.jsonl'}" in tune_line and "heldout" not in tune_line
    assert "<ttt flags from" in out and "<bestofn flags from" in out
    (runs / "tune").mkdir()
    config = {"base": "ttt_steps=4,rollouts=16,lr=3e-3,groups=2", "grid": p["tune"]["grid"],
              "temperatures": p["tune"]["temperatures"], "per_family": p["tune"]["per_family"]}
    (runs / "tune" / "tune.json").write_text(json.dumps({
        "config": config, "ttt_flags": ["--lr", "0.01", "--ttt_steps", "2", "--rollouts", "32"],
        "bestofn_flags": ["--temperature", "0.8"]}))
    out = dry()
    assert "[C] skip tune (complete)" in out
    lines = {l.split(":")[0].split()[-1]: l for l in out.splitlines() if l.startswith("[") and ":" in l}
    for name in ("ttt_main_seed0", "ttt_lr0_seed0", "ttt_reuse0_seed0", "ttt_train_seed0"):
        assert "--lr 0.01 --ttt_steps 2 --rollouts 32" in lines[name], name
    assert lines["ttt_lr0_seed0"].split("--lr ")[-1].split()[0] == "0"          # the control's --lr 0 comes last
    assert lines["ttt_main_seed0"].index("--lr 3e-3") < lines["ttt_main_seed0"].index("--lr 0.01")  # tuned beats profile
    for name in ("base_bestofn_seed0", "base_bestofn_flops_seed0", "sdft20_bestofn_seed0"):
        assert "--temperature 0.8" in lines[name] and "--lr 0.01" not in lines[name], name
    assert f"--flops_from {runs / 'suite' / 'ttt_main_seed0'}" in lines["base_bestofn_flops_seed0"]
    config["grid"] = "lr=1e-3"  # the profile's grid changed: the tune step runs again
    (runs / "tune" / "tune.json").write_text(json.dumps({"config": config, "ttt_flags": [], "bestofn_flags": []}))
    assert "[C] tune:" in dry()


def test_another_base_model_has_its_own_runs_and_only_runs_the_named_steps(tmp_path):
    prof = profile(tmp_path, "configs/model_mhc_tiny.json")
    out = run_script("paper/scripts/run_phase.py", "--profile", prof, "--base_seed", "3", "--from-phase", "B",
                     "--to-phase", "C", "--only", "pretrain,base_bestofn_seed0,ttt_main_seed0", "--dry_run").stdout
    lines = {l.split(":")[0].split()[-1]: l for l in out.splitlines() if l.startswith("[")}
    runs = f"{tmp_path / 'runs'}_base3"
    assert f"--out {runs}/pretrain " in lines["pretrain"] and lines["pretrain"].rstrip().endswith("--seed 3")
    assert f"--ckpt {runs}/pretrain/ckpt_latest.pt" in lines["ttt_main_seed0"]
    assert f"--tasks {tmp_path / 'data' / 'discovery' / 'heldout.jsonl'}" in lines["base_bestofn_seed0"]  # shared data
    assert "[C] skip ttt_lr0_seed0 (not in --only)" in out and "[C] skip tune (not in --only)" in out
    assert "[C] probe_gate: opted out" in out   # the gate is never filtered out
    plain = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "B", "--to-phase", "B",
                       "--dry_run").stdout
    assert "--seed" not in plain   # a profile without a pretraining seed keeps pretrain.py's default (the runbook's B1)
    bad = run_script("paper/scripts/run_phase.py", "--profile", prof, "--only", "ttt_mian_seed0", "--dry_run",
                     check=False)
    assert bad.returncode == 2 and "--only: no step named ttt_mian_seed0" in bad.stderr


def sweep_lines(out):
    return {l.split(":")[0].split()[-1]: l for l in out.splitlines() if l.startswith("[C] sweep")}


def test_the_sweep_plan_names_its_checkpoints_keeps_them_and_skips_finished_points(tmp_path):
    """Issue 34: the sweep over priors runs the main comparison from earlier checkpoints of the one
    pretraining run (which keeps them), each probed first; a finished point is skipped on resume."""
    prof, runs = phase_c_ready(tmp_path, None, gate="smoke")
    p = json.load(open(prof))
    p["pretrain"].update(steps=400, extra=["--ckpt_every", "100"])
    p["sweep"] = {"steps": [200, 100], "seed": 0}
    open(prof, "w").write(json.dumps(p))
    pre = runs / "pretrain"
    out = run_script("paper/scripts/run_phase.py", "--profile", prof, "--dry_run").stdout
    assert "--keep_steps 100,200" in next(l for l in out.splitlines() if l.startswith("[B] pretrain:"))
    lines = sweep_lines(out)
    assert list(lines) == [f"sweep{x}_{r}" for x in (100, 200) for r in
                           ("probe", "base_bestofn_seed0", "ttt_main_seed0", "base_bestofn_flops_seed0")] + ["sweep_manifest"]
    for x in (100, 200):
        point = runs / "sweep" / f"step{x:05d}"
        assert f"--ckpt {pre}/ckpt_step_{x:07d}.pt " in lines[f"sweep{x}_probe"]
        assert f"--json_out {point}/probe/probe.json " in lines[f"sweep{x}_probe"]
        for r in ("base_bestofn_seed0", "ttt_main_seed0", "base_bestofn_flops_seed0"):
            assert f"--ckpt {pre}/ckpt_step_{x:07d}.pt " in lines[f"sweep{x}_{r}"]
            assert f"--out_root {point}/suite/{r} " in lines[f"sweep{x}_{r}"]
        # FLOPs-matched best-of-N is charged this base's TTT main, not the main base's
        assert f"--flops_from {point}/suite/ttt_main_seed0" in lines[f"sweep{x}_base_bestofn_flops_seed0"]
        assert "--objective entropic" in lines[f"sweep{x}_ttt_main_seed0"]
    # finish the step-100 point (checkpoint, a probe newer than it, all three runs); start step 200's best-of-N
    ck = pre / "ckpt_step_0000100.pt"
    ck.write_bytes(b"stand-in")
    os.utime(ck, (1e9, 1e9))
    point = runs / "sweep" / "step00100"
    (point / "probe").mkdir(parents=True)
    (point / "probe" / "probe.json").write_text("{}")
    for r in ("base_bestofn_seed0", "ttt_main_seed0", "base_bestofn_flops_seed0"):
        task = point / "suite" / r / "t-heldout"
        task.mkdir(parents=True)
        (task.parent / "summary.jsonl").write_text("{}\n")
        (task / "result.json").write_text("{}")
        if r.startswith("ttt"):
            (task / "metrics.jsonl").write_text("{}\n")
            (task / "adapter_step_1").mkdir()
            (task / "adapter_step_1" / "lora.pt").write_text("x")
    started = runs / "sweep" / "step00200" / "suite" / "base_bestofn_seed0" / "t-heldout"
    started.mkdir(parents=True)
    (started / "result.json").write_text("{}")
    out = run_script("paper/scripts/run_phase.py", "--profile", prof, "--sweep", "--dry_run").stdout
    for r in ("probe", "base_bestofn_seed0", "ttt_main_seed0", "base_bestofn_flops_seed0"):
        assert f"[C] skip sweep100_{r} (complete)" in out
    assert sweep_lines(out)["sweep200_base_bestofn_seed0"].rstrip().endswith("--resume")
    assert "[C] skip ttt_main_seed0 (not in --only)" in out and "[F] tables:" in out  # the sweep and phase F only
    # --only leaves the sweep out, manifest included (a second base's run writes no empty sweep), not the gate
    only = run_script("paper/scripts/run_phase.py", "--profile", prof, "--from-phase", "C", "--to-phase", "C",
                      "--only", "probe,base_bestofn_seed0", "--dry_run").stdout
    assert "[C] skip sweep_manifest (not in --only)" in only and "[C] probe_gate: " in only
    assert "[C] skip probe_gate" not in only
    # a seed without the controls has no sweep (make phase-C SEED=1 on a main-only seed still plans)
    p["main_only_seeds"], p["seeds"] = [1], [0, 1]
    open(prof, "w").write(json.dumps(p))
    one = run_script("paper/scripts/run_phase.py", "--profile", prof, "--seeds", "1", "--dry_run").stdout
    assert not sweep_lines(one) and "--keep_steps 100,200" in one  # pretraining still keeps them


def test_a_sweep_needs_its_checkpoints_and_says_how_to_get_them(tmp_path):
    prof, runs = phase_c_ready(tmp_path, None, gate="smoke")
    p = json.load(open(prof))
    p["sweep"] = {"steps": [150]}
    open(prof, "w").write(json.dumps(p))
    bad = run_script("paper/scripts/run_phase.py", "--profile", prof, "--dry_run", check=False)
    assert bad.returncode == 2 and '"sweep": "steps" [150] are not saved checkpoints' in bad.stderr
    p.pop("sweep")
    open(prof, "w").write(json.dumps(p))
    none = run_script("paper/scripts/run_phase.py", "--profile", prof, "--sweep", check=False)
    assert none.returncode == 2 and 'has no "sweep" block' in none.stderr
    # a finished pretraining run from before the sweep block: rerunning phase B would skip it, so say what to do
    p["sweep"] = {"steps": [100]}
    open(prof, "w").write(json.dumps(p))
    pre = runs / "pretrain"
    for name in ("ckpt_step_0000200.pt", "model_config.json", "pretrain_config.json", "metrics.jsonl"):
        (pre / name).write_text("stand-in")
    stale = run_script("paper/scripts/run_phase.py", "--profile", prof, "--sweep", check=False)
    assert stale.returncode == 2 and "finished without keeping step 100" in stale.stderr
    assert not (runs / "sweep").exists()  # nothing written
