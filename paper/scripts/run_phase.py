#!/usr/bin/env python3
"""Run the runbook's phases in order, skipping work that is already complete (runbook, "Unified
orchestration").

    python paper/scripts/run_phase.py --from-phase A --to-phase F --include-expected-ablation
    python paper/scripts/run_phase.py --from-phase C --to-phase F --profile smoke --seeds 0
    python paper/scripts/run_phase.py --profile mini --sweep

Each command is printed before it runs, with its output also saved to <runs_dir>/logs/. A step
whose artifacts are complete (artifacts.py) is skipped; an unfinished one gets its resume flag.
Before anything runs, every input that an earlier phase makes (the tokenizer, the base checkpoint,
the task files, ...) must exist: else one line names it, the phase that makes it and the command
that runs that phase, exit code 2, nothing written (--dry_run prints the line as a note).
On failure the orchestrator stops and names the command and its log. Phase C probes the base
model first (paper/scripts/probe_base.py) and stops before any suite run, exit code 2, when the
profile's probe gate fails ("probe": {"gate": {...}}, or "gate": null with a "gate_opt_out" reason). --profile paper uses the
runbook's exact arguments (configs/profiles/paper.json) plus the controls the runbook lacks
(ttt_lr0, base_bestofn_flops, the SFT arm) and the sweep over priors (a profile's "sweep" block: the
main comparison from earlier checkpoints of the pretraining run, each probed, last in phase C; --sweep
runs it alone, then phase F); smoke is the tiny CPU version (code paths), mini the
whole experiment on a 2-core CPU in under an hour (configs/profiles/mini.json).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable

from discover_distill.artifacts import check_artifacts
from discover_distill.cli import UserError, run
from discover_distill.config import load_profile, profile_outputs
from discover_distill.fileio import atomic_write_json
from discover_distill.stats import BUDGET_ANCHORS, budget_points

PHASES = "ABCDEF"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Step:
    phase: str
    name: str
    argv: list[str]
    done: bool = False          # artifacts complete: skip
    resume: list[str] = field(default_factory=list)  # flags added when partial output exists
    partial: bool = False
    check: Callable[[], str] | None = None  # an in-process step (argv: its description): returns its line
    always: bool = False        # runs whatever --only names (the probe gate: a filter must not skip it)
    needs: list[tuple[str, str, str]] = field(default_factory=list)  # inputs: (path, phase that makes it, what)
    skip_reason: str = "complete"
    tuned: str | None = None    # "ttt" | "bestofn": the tune step's flags for this arm go in at run time
    tuned_at: int = 0           # where in argv (after the profile's flags, before the run's own)


def task_ids(path: str) -> list[str] | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return [json.loads(l)["task_id"] for l in f if l.strip()]


def has_filler_retention(path: str) -> bool:
    """A retention file written before the filler split existed is redone."""
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return "filler" in json.load(f)


def probe_fresh(probe_dir: str, ckpt: str) -> bool:
    """The probe is done when its result exists and is newer than the checkpoint it probed."""
    path = os.path.join(probe_dir, "probe.json")
    return (check_artifacts(probe_dir, "probe")["complete"] and os.path.isfile(ckpt)
            and os.path.getmtime(path) >= os.path.getmtime(ckpt))


def probe_gate_settings(profile: dict) -> tuple[dict | None, str | None]:
    """(thresholds, None), or (None, the opt-out reason) from the profile's "probe" block. A profile
    must say one or the other: a blind base must never pass for want of a setting."""
    block = profile.get("probe")
    how = ('set "probe": {"gate": {thresholds}}, or opt out with "gate": null and "gate_opt_out": '
           '"<reason in words>"')
    if not isinstance(block, dict) or "gate" not in block:
        raise UserError(f"profile: no probe gate: {how}")
    if block["gate"] is None:
        reason = block.get("gate_opt_out")
        if not isinstance(reason, str) or not reason.strip():
            raise UserError(f'profile: "probe": "gate" is null without a "gate_opt_out" reason: {how}')
        return None, reason.strip()
    if not isinstance(block["gate"], dict):
        raise UserError(f'profile: "probe": "gate" must be an object of thresholds or null: {how}')
    note = block.get("gate_note")
    if note is not None and not isinstance(note, str):
        raise UserError('profile: "probe": "gate_note" must be a string (what the gate leaves out, and why)')
    return block["gate"], None


def gate_description(profile: dict, probe_dir: str) -> list[str]:
    block = profile.get("probe") or {}
    if block.get("gate") is None:
        return [f"opted out ({block.get('gate_opt_out')})"]
    return [f"{json.dumps(block['gate'], sort_keys=True)} on {probe_dir}/probe.json"]


def check_probe_gate(profile: dict, probe_dir: str) -> str:
    """The gate on the probe result: records <probe_dir>/gate.json (what the registry reports) and
    returns the line to print; a failed check is one UserError line naming every failed check and
    the probe file, so run_phase stops before any suite run with exit code 2."""
    thresholds, opt_out = probe_gate_settings(profile)
    path = os.path.join(probe_dir, "probe.json")
    failed: list[str] = []
    if opt_out is None:
        from discover_distill.probe import gate  # imports torch: only when the gate runs
        try:
            with open(path) as f:
                result = json.load(f)
            failed = gate(result, thresholds)
        except (OSError, ValueError) as e:  # an unreadable probe, or an unknown threshold in the profile
            raise UserError(f"probe gate: {e} ({path})") from None
    # gate_note: what a partial gate leaves out and why, said beside the outcome in the registry
    note = (profile.get("probe") or {}).get("gate_note") if opt_out is None else None
    atomic_write_json(os.path.join(probe_dir, "gate.json"), {"probe": path, "thresholds": thresholds,
                                                           "opt_out": opt_out, "note": note, "failed": failed,
                                                           "passed": not failed})
    if failed:
        raise UserError(f"probe gate failed, the base model does not read its task: {'; '.join(failed)} -- {path}")
    return f"opted out ({opt_out})" if opt_out else f"passed ({path})"


# The suite's TTT knobs the tune step varies, and the flag each one is (run_discovery_suite.py).
TUNE_FLAGS = {"lr": "--lr", "groups": "--groups", "lora_rank": "--lora_rank", "beta_target_kl": "--beta_target_kl"}


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value argparse would take for `flag` in argv (its last occurrence), or None."""
    return argv[len(argv) - argv[::-1].index(flag)] if flag in argv else None


def tune_base(suite: dict) -> str:
    """The tune step's starting setting: the profile's suite budget and whichever tuned knobs its
    extra flags set (the rest are run_discovery_suite.py's defaults, which tune_ttt.py shares)."""
    out = [f"ttt_steps={suite['ttt_steps']}", f"rollouts={suite['rollouts']}"]
    for knob, flag in TUNE_FLAGS.items():
        if (value := flag_value(suite.get("extra", []), flag)) is not None:
            out.append(f"{knob}={value}")
    return ",".join(out)


def tune_settings(profile: dict) -> dict | None:
    """The settings a profile's tune step runs with (also what a finished tune.json must match)."""
    block = profile.get("tune")
    if not block:
        return None
    return {"base": tune_base(profile["suite"]), "grid": block.get("grid", ""),
            "temperatures": str(block.get("temperatures", "1.0")), "per_family": int(block.get("per_family", 0))}


def tune_done(tune_dir: str, ckpt: str, settings: dict) -> bool:
    """The tune result exists, is newer than the checkpoint it tuned, and was made with these settings."""
    path = os.path.join(tune_dir, "tune.json")
    try:
        with open(path) as f:
            made = json.load(f).get("config", {})
    except (OSError, ValueError):
        return False
    return (os.path.isfile(ckpt) and os.path.getmtime(path) >= os.path.getmtime(ckpt)
            and all(made.get(k) == v for k, v in settings.items()))


def tuned_argv(step: Step, tune_dir: str, dry_run: bool) -> list[str]:
    """A suite step's argv with the tune step's flags for its arm (tune.json) in place."""
    if step.tuned is None:
        return step.argv
    path = os.path.join(tune_dir, "tune.json")
    try:
        with open(path) as f:
            flags = json.load(f)[f"{step.tuned}_flags"]
    except (OSError, ValueError, KeyError):
        if not dry_run:
            raise UserError(f"phase {step.phase} ({step.name}) needs the tune result {path}: "
                            f"run the tune step first (phase C)") from None
        flags = [f"<{step.tuned} flags from {path}>"]
    return step.argv[:step.tuned_at] + [str(f) for f in flags] + step.argv[step.tuned_at:]


def missing_input(steps: list[Step], phases: str, made_before: str) -> tuple[Step, str, str, str] | None:
    """(step, path, phase that makes it, what it is) for a pending step of `phases` whose input is
    missing and made by a phase before `made_before` (one this invocation does not run first); the
    earliest such phase when several are missing, so the advice that follows covers them all."""
    missing = [(PHASES.index(maker), n, (step, path, maker, what)) for n, step in enumerate(steps)
               if step.phase in phases and not step.done
               for path, maker, what in step.needs
               if PHASES.index(maker) < PHASES.index(made_before) and not os.path.exists(path)]
    return min(missing, key=lambda m: m[:2])[2] if missing else None


def missing_input_error(found: tuple[Step, str, str, str], made_before: str, profile_arg: str,
                        seeds_arg: str) -> UserError:
    """One line: what is missing, which phase makes it, and the command that runs the phases before."""
    step, path, maker, what = found
    last = PHASES[PHASES.index(made_before) - 1]
    seeds = f" --seeds {seeds_arg}" if seeds_arg else ""
    profile = shlex.quote(profile_arg)
    if maker == last:
        how = f"run phase {maker} first: make phase-{maker} PROFILE={profile}"
    else:
        how = (f"run phases {maker}-{last} first: python paper/scripts/run_phase.py --profile {profile} "
               f"--from-phase {maker} --to-phase {last}{seeds}")
    return UserError(f"phase {step.phase} ({step.name}) needs {what} {path}, which phase {maker} makes; {how}")


def plan(profile: dict, seeds: list[int], expected: bool) -> list[Step]:
    py = sys.executable
    D, R = profile["data_dir"], profile["runs_dir"]
    tok = profile["tokenizer"]
    tok_model = f"{D}/tokenizer/{tok['name']}.model"
    # val_filler: A2's filler-only held-out split, the headline retention text (DESIGN §4)
    raw = {s: f"{D}/raw/{s}.txt" for s in ("train", "val", "val_filler")}
    packed = {s: f"{D}/packed/{s}.bin" for s in ("train", "val", "val_filler")}
    tasks = {s: f"{D}/discovery/{s}.jsonl" for s in ("train", "heldout")}
    pre = profile["pretrain"]
    pre_dir = f"{R}/{pre['run']}"
    sweep = sweep_settings(profile)
    ckpt = f"{pre_dir}/ckpt_latest.pt"
    sd = profile["sdft"]
    suite = profile["suite"]
    demos = f"{D}/sdft/from_ttt_train.jsonl"
    consolidated = {m: f"{R}/{m}_from_ttt_steps{sd['steps']}" for m in sd["methods"]}
    steps: list[Step] = []

    def exists(*paths):
        return all(os.path.exists(p) for p in paths)

    def suite_flag(flag):
        """[flag, value] as the profile's suite extra sets it, else []."""
        value = flag_value(suite.get("extra", []), flag)
        return [] if value is None else [flag, value]

    # What one phase makes and a later one reads: path -> (the phase that makes it, what it is)
    made = {raw["train"]: ("A", "the corpus"), tok_model: ("A", "the tokenizer"),
            **{packed[s]: ("A", f"the packed {s} bin") for s in packed},
            ckpt: ("B", "the base checkpoint"), f"{pre_dir}/model_config.json": ("B", "the base model config"),
            **{tasks[s]: ("C", f"the {s} tasks") for s in tasks}, f"{R}/suite": ("C", "the suite runs"),
            demos: ("D", "the distillation demonstrations"),
            **{f"{d}/{f}": ("D", f"the {m.upper()} {what}") for m, d in consolidated.items()
               for f, what in (("sdft_latest.pt", "checkpoint"), ("model_config.json", "model config"))}}

    def needs(*paths):
        return [(p, *made[p]) for p in paths]

    c = profile["corpus"]
    steps.append(Step("A", "corpus", [py, "paper/scripts/gen_synthetic_corpus.py", "--seed", str(c["seed"]),
                                      "--train_lines", str(c["train_lines"]), "--val_lines", str(c["val_lines"]),
                                      "--train_out", raw["train"], "--val_out", raw["val"], *c.get("extra", [])],
                      done=exists(raw["train"], raw["val"], raw["val_filler"])))
    steps.append(Step("A", "tokenizer", [py, "scripts/train_tokenizer.py", "--input", raw["train"], "--model_prefix",
                                         tok_model[:-len(".model")], "--vocab_size", str(tok["vocab_size"]),
                                         "--model_type", tok["model_type"]],
                      done=exists(tok_model, tok_model[:-len(".model")] + ".json"), needs=needs(raw["train"])))
    for s in ("train", "val", "val_filler"):
        steps.append(Step("A", f"pack_{s}", [py, "scripts/prepare_data.py", "--tokenizer", tok_model, "--input", raw[s],
                                             "--output", packed[s], "--append_eos", "1",
                                             # a task line must fit one pretraining row (DESIGN §3)
                                             "--max_doc_tokens", str(pre["seq_len"] + 1),
                                             "--filler_input", "none"],  # the filler split is its own step
                          done=exists(packed[s], packed[s][:-len(".bin")] + ".json"), needs=needs(tok_model)))
    steps.append(Step("B", "pretrain", [py, "scripts/pretrain.py", "--train_bin", packed["train"], "--val_bin",
                                        packed["val"], "--out", pre_dir, "--model", pre["model"], "--steps",
                                        str(pre["steps"]), "--seq_len", str(pre["seq_len"]), "--micro_bs",
                                        str(pre["micro_bs"]), "--grad_accum", str(pre["grad_accum"]), *pre["extra"],
                                        *(["--seed", str(pre["seed"])] if "seed" in pre else []),
                                        # the sweep's bases: earlier checkpoints of this run, never pruned
                                        *(["--keep_steps", ",".join(map(str, sweep["steps"]))] if sweep else [])],
                      done=check_artifacts(pre_dir, "pretrain", steps=pre["steps"])["complete"],
                      resume=["--resume", "auto"], partial=exists(f"{pre_dir}/ckpt_latest.pt"),
                      needs=needs(packed["train"], packed["val"])))
    t = profile["tasks"]
    steps.append(Step("C", "tasks", [py, "paper/scripts/gen_discovery_tasks.py", "--seed", str(t["seed"]),
                                     "--out_train", tasks["train"], "--out_heldout", tasks["heldout"], *t["extra"]],
                      done=exists(tasks["train"], tasks["heldout"])))
    audit = f"{D}/discovery/audit.json"  # random-search baselines, answer lengths, split and corpus checks
    # random search at the runbook's points and at the budget-curve points of this profile's budget
    # (the registry puts it under best-of-N and TTT in the budget tables)
    per_round = suite["rollouts"]
    curve_points = budget_points(suite["ttt_steps"] * per_round, [per_round * i for i in range(1, suite["ttt_steps"] + 1)])
    audit_extra = profile.get("audit", {}).get("extra", [])
    audit_budgets = [] if "--budgets" in audit_extra else \
        ["--budgets", ",".join(str(n) for n in sorted({1, *BUDGET_ANCHORS, *curve_points}))]  # else the profile's
    steps.append(Step("C", "audit_tasks", [py, "paper/scripts/audit_tasks.py", "--tasks", tasks["heldout"], tasks["train"],
                                           "--tokenizer", tok_model, "--corpus", raw["train"], "--max_new_tokens",
                                           str(suite["max_new_tokens"]), *audit_budgets, "--json_out", audit,
                                           *audit_extra],
                      done=exists(audit), needs=needs(tasks["heldout"], tasks["train"], tok_model, raw["train"])))
    # Does the base read its task (DESIGN §7)? Probed on the held-out tasks, then gated before any suite run.
    pr = profile.get("probe") or {}
    probe_dir = f"{R}/probe"
    steps.append(Step("C", "probe", [py, "paper/scripts/probe_base.py", "--ckpt", ckpt, "--tokenizer", tok_model,
                                     "--tasks", tasks["heldout"], "--json_out", f"{probe_dir}/probe.json",
                                     "--per_family", str(pr.get("per_family", 20)), "--samples",
                                     str(pr.get("samples", 128)), "--max_new_tokens", str(suite["max_new_tokens"]),
                                     "--seed", str(pr.get("seed", 0)), *pr.get("extra", [])],
                      done=probe_fresh(probe_dir, ckpt), needs=needs(ckpt, tok_model, tasks["heldout"])))
    steps.append(Step("C", "probe_gate", gate_description(profile, probe_dir),
                      check=lambda: check_probe_gate(profile, probe_dir), always=True))
    # Both arms' hyper-parameters chosen on train-split tasks (DESIGN §7): tune_ttt.py writes
    # <runs_dir>/tune/tune.json, whose flags every suite run of that arm then carries.
    tuning = tune_settings(profile)
    tune_dir = f"{R}/tune"
    if tuning:
        steps.append(Step("C", "tune", [py, "paper/scripts/tune_ttt.py", "--tasks", tasks["train"], "--ckpt", ckpt,
                                        "--tokenizer", tok_model, "--out", tune_dir, "--base", tuning["base"],
                                        "--grid", tuning["grid"], "--temperatures", tuning["temperatures"],
                                        "--per_family", str(tuning["per_family"]), "--max_new_tokens",
                                        str(suite["max_new_tokens"]), *suite_flag("--tasks_per_batch"),
                                        *profile["tune"].get("extra", [])],
                          done=tune_done(tune_dir, ckpt, tuning), needs=needs(tasks["train"], ckpt, tok_model)))
    heldout_ids, train_ids = task_ids(tasks["heldout"]), task_ids(tasks["train"])

    def suite_step(phase, name, task_file, ids, ckpt_path, seed, mode, extra):
        out = f"{R}/suite/{name}"
        argv = [py, "paper/run_discovery_suite.py", "--tasks", task_file, "--ckpt", ckpt_path, "--tokenizer", tok_model,
                "--out_root", out, "--seed", str(seed), "--mode", mode, "--ttt_steps", str(suite["ttt_steps"]),
                "--rollouts", str(suite["rollouts"]), "--max_new_tokens", str(suite["max_new_tokens"]),
                *suite["extra"], *extra]  # the run's own flags last: a control's --lr 0 beats the profile's --lr
        kind = "suite_ttt" if mode == "ttt" else "suite_bestofn"
        done = ids is not None and check_artifacts(out, kind, task_ids=ids)["complete"]
        return Step(phase, name, argv, done=done, resume=["--resume"], partial=os.path.isdir(out) and
                    any(os.path.exists(os.path.join(out, i, "result.json")) for i in (ids or [])),
                    needs=needs(task_file, ckpt_path, tok_model), tuned=mode if tuning else None,
                    tuned_at=len(argv) - len(extra))

    main_flags = ["--objective", "entropic", "--reuse", "1", "--adaptive_beta", "1", "--kl_lambda", "0.1"]
    for seed in seeds:
        steps.append(suite_step("C", f"base_bestofn_seed{seed}", tasks["heldout"], heldout_ids, ckpt, seed, "bestofn", []))
        steps.append(suite_step("C", f"ttt_main_seed{seed}", tasks["heldout"], heldout_ids, ckpt, seed, "ttt", main_flags))
    # Controls (DESIGN §7), paired with the main comparison on every seed: TTT without learning
    # (reuse prompts and sampling only) isolates learning; best-of-N charged TTT's training FLOPs.
    controls = profile.get("controls", ["ttt_lr0", "base_bestofn_flops"])
    # a profile's main_only_seeds replicate the main comparison only (no controls, no E evaluation)
    full_seeds = [s for s in seeds if s not in profile.get("main_only_seeds", [])]
    for seed in full_seeds:
        if "ttt_lr0" in controls:
            steps.append(suite_step("C", f"ttt_lr0_seed{seed}", tasks["heldout"], heldout_ids, ckpt, seed, "ttt",
                                    main_flags + ["--lr", "0"]))
        if "base_bestofn_flops" in controls:
            # each task sampled until it has spent what TTT main spent on it (that run comes first)
            steps.append(suite_step("C", f"base_bestofn_flops_seed{seed}", tasks["heldout"], heldout_ids, ckpt, seed,
                                    "bestofn", ["--budget_match", "flops", "--flops_from",
                                                f"{R}/suite/ttt_main_seed{seed}"]))
    ablations = [("ttt_reuse0_seed0", ["--reuse", "0", "--adaptive_beta", "1", "--kl_lambda", "0.1"]),
                 ("ttt_adapt0_seed0", ["--reuse", "1", "--adaptive_beta", "0", "--kl_lambda", "0.1"]),
                 ("ttt_kl0_seed0", ["--reuse", "1", "--adaptive_beta", "1", "--kl_lambda", "0.0"])]
    if 0 not in seeds or not profile.get("ablations", True):  # the runbook's ablations are seed-0 runs
        ablations = []
    elif expected:
        ablations.append(("ttt_expected_seed0", ["--objective", "expected", "--reuse", "1", "--adaptive_beta", "1",
                                                 "--kl_lambda", "0.1"]))
    for name, flags in ablations:
        steps.append(suite_step("C", name, tasks["heldout"], heldout_ids, ckpt, 0, "ttt", flags))
    if sweep and sweep["seed"] in full_seeds:  # last in phase C: the main comparison from earlier checkpoints (DESIGN §7, the sweep over priors)
        steps += sweep_plan(profile, steps, heldout_ids)
    steps.append(suite_step("D", "ttt_train_seed0", tasks["train"], train_ids, ckpt, 0, "ttt", main_flags))
    steps.append(Step("D", "build_sdft", [py, "paper/scripts/build_sdft_from_suite.py", "--suite_root",
                                          f"{R}/suite/ttt_train_seed0", "--tasks_jsonl", tasks["train"], "--out_jsonl",
                                          demos, "--min_reward", str(sd["min_reward"]), *sd["build_extra"]],
                      done=exists(demos), needs=needs(tasks["train"])))
    for method in sd["methods"]:
        out = consolidated[method]
        steps.append(Step("D", f"{method}_train", [py, "scripts/sdft.py", "--ckpt", ckpt, "--tokenizer", tok_model,
                                                   "--data", demos, "--out", out, "--steps", str(sd["steps"]),
                                                   "--gate_val_bin", packed["val"], "--gate_val_seq_len",
                                                   str(sd["gate_val_seq_len"]), "--gate_val_bs", str(sd["gate_val_bs"]),
                                                   "--method", method, *sd["extra"]],
                          done=check_artifacts(out, "sdft", steps=sd["steps"])["complete"],
                          resume=["--resume", "auto"], partial=os.path.isdir(os.path.join(out, "_run_tracker")),
                          needs=needs(ckpt, tok_model, demos, packed["val"])))
        for seed in full_seeds:
            steps.append(suite_step("E", f"{method}{sd['steps']}_bestofn_seed{seed}", tasks["heldout"], heldout_ids,
                                    f"{out}/sdft_latest.pt", seed, "bestofn", []))
        ret = profile["retention"]
        ret_out = f"{R}/suite/retention_ppl.json" if method == "sdft" else f"{R}/suite/retention_ppl_{method}.json"
        steps.append(Step("E", f"retention_{method}", [py, "paper/scripts/compute_retention_ppl.py", "--base_ckpt", ckpt,
                                                       "--base_cfg", f"{pre_dir}/model_config.json", "--updated_ckpt",
                                                       f"{out}/sdft_latest.pt", "--updated_cfg",
                                                       f"{out}/model_config.json", "--val_bin", packed["val"],
                                                       "--seq_len", str(ret["seq_len"]), "--batch_size",
                                                       str(ret["batch_size"]), "--max_batches", str(ret["max_batches"]),
                                                       "--device", ret["device"], "--filler_val_bin",
                                                       packed["val_filler"], "--out", ret_out],
                          done=has_filler_retention(ret_out),
                          needs=needs(ckpt, f"{pre_dir}/model_config.json", f"{out}/sdft_latest.pt",
                                      f"{out}/model_config.json", packed["val"], packed["val_filler"])))
    outputs = profile_outputs(profile)  # paper/ for the paper profile; the smoke and mini keep theirs apart
    fig_dir = outputs["figs"]
    steps.append(Step("F", "pipeline_figure", [py, "paper/plot_pipeline_diagram.py", "--fig_dir", fig_dir]))
    steps.append(Step("F", "result_figures", [py, "paper/plot_results.py", "--runs_dir", f"{R}/suite", "--fig_dir",
                                              fig_dir], needs=needs(f"{R}/suite")))
    steps.append(Step("F", "tables", [py, "paper/scripts/fill_tables.py", "--runs_dir", f"{R}/suite", "--registry",
                                      outputs["registry"], "--latex_dir", outputs["tables"]],
                      needs=needs(f"{R}/suite")))
    return steps


# --- the sweep over priors ------------------------------------------------------------------------
# TTT against best-of-N from bases of increasing competence: earlier checkpoints of the one pretraining
# run (profile block "sweep": {"steps": [...], "seed": s}). Each point repeats the main comparison
# (best-of-N, TTT main, FLOPs-matched best-of-N) on the held-out tasks with the main base's tune
# result, after a probe of that checkpoint (no gate: a base that does not read is a point on the
# curve). The final checkpoint's point is the main comparison itself, not run twice.

SWEEP_RUNS = {"bestofn": "base_bestofn_seed{}", "ttt": "ttt_main_seed{}", "flops": "base_bestofn_flops_seed{}"}


def sweep_settings(profile: dict) -> dict | None:
    """{"steps": earlier checkpoints, ascending; "seed"} from the profile's "sweep" block, or None
    without one; a step pretraining never saves is one error line naming the profile key."""
    block = profile.get("sweep")
    if not block:
        return None
    pre = profile["pretrain"]
    every = int(flag_value(pre.get("extra", []), "--ckpt_every") or 1000)  # pretrain.py's default
    steps = block.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(x, int) for x in steps):
        raise UserError(f'profile: "sweep": "steps" must be a non-empty list of pretraining steps, got {steps!r}')
    bad = [x for x in steps if x < 1 or x >= pre["steps"] or x % every]
    if bad:
        raise UserError(f'profile: "sweep": "steps" {bad} are not saved checkpoints before the last: multiples of '
                        f'--ckpt_every {every} below "pretrain": "steps" {pre["steps"]} (the last is the main base)')
    seed = block.get("seed", profile["seeds"][0])
    if seed not in profile["seeds"]:
        raise UserError(f'profile: "sweep": "seed" {seed} is not one of the profile\'s seeds {profile["seeds"]}')
    return {"steps": sorted(set(steps)), "seed": seed}


def sweep_points(profile: dict) -> list[dict]:
    """The sweep's bases in order of pretraining steps: where each checkpoint is and where its probe
    and runs go (the manifest's "points"); the last is the main base, its probe and suite."""
    R, pre = profile["runs_dir"], profile["pretrain"]
    pre_dir = f"{R}/{pre['run']}"
    points = [{"step": x, "ckpt": f"{pre_dir}/ckpt_step_{x:07d}.pt", "probe_dir": f"{R}/sweep/step{x:05d}/probe",
               "suite_dir": f"{R}/sweep/step{x:05d}/suite", "main": False} for x in sweep_settings(profile)["steps"]]
    return points + [{"step": pre["steps"], "ckpt": f"{pre_dir}/ckpt_latest.pt", "probe_dir": f"{R}/probe",
                      "suite_dir": f"{R}/suite", "main": True}]


def set_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """argv with the value after `flag` replaced (same length: a tuned step's insertion point holds)."""
    i = argv.index(flag) + 1
    return argv[:i] + [value] + argv[i + 1:]


def sweep_manifest(profile: dict) -> dict:
    settings = sweep_settings(profile)
    R, seed = profile["runs_dir"], settings["seed"]
    return {"seed": seed, "pretrain_dir": f"{R}/{profile['pretrain']['run']}", "tune": f"{R}/tune/tune.json",
            "hparams": "the main base's tune result for every point" if tune_settings(profile)
            else "the profile's suite settings for every point (no tune step)",
            "runs": {k: v.format(seed) for k, v in SWEEP_RUNS.items()}, "points": sweep_points(profile)}


def write_sweep_manifest(profile: dict) -> str:
    path = os.path.join(profile["runs_dir"], "sweep", "sweep.json")
    manifest = sweep_manifest(profile)
    atomic_write_json(path, manifest)
    return f"{len(manifest['points'])} bases -> {path}"


def sweep_plan(profile: dict, steps: list[Step], heldout_ids: list[str] | None) -> list[Step]:
    """The sweep's steps, made from the main plan's probe and main-comparison steps (same flags, the
    tune result's included) with another checkpoint and output directory: sweep<step>_probe and
    sweep<step>_<run> per earlier checkpoint, then the manifest the registry reads."""
    settings = sweep_settings(profile)
    by_name = {s.name: s for s in steps}
    main_ckpt = by_name["probe"].argv[by_name["probe"].argv.index("--ckpt") + 1]
    names = {k: v.format(settings["seed"]) for k, v in SWEEP_RUNS.items()}
    out: list[Step] = []
    for point in sweep_points(profile)[:-1]:
        ckpt, x = point["ckpt"], point["step"]
        # pretrain.py keeps this checkpoint only with --keep_steps (added from the profile's block)
        need_ckpt = (ckpt, "B", f"the step-{x} checkpoint (kept by pretrain.py --keep_steps {x})")
        probe = by_name["probe"]
        argv = set_flag(set_flag(probe.argv, "--ckpt", ckpt), "--json_out", f"{point['probe_dir']}/probe.json")
        out.append(Step("C", f"sweep{x}_probe", argv, done=probe_fresh(point["probe_dir"], ckpt),
                        needs=[need_ckpt] + [n for n in probe.needs if n[0] != main_ckpt]))
        for key in ("bestofn", "ttt", "flops"):  # FLOPs-matched best-of-N reads this point's TTT main
            src = by_name.get(names[key])
            if src is None:
                raise UserError(f'profile: "sweep": "seed" {settings["seed"]} has no {names[key]} in the plan '
                                f'(a main_only seed has no FLOPs-matched best-of-N)')
            run_dir = f"{point['suite_dir']}/{names[key]}"
            argv = set_flag(set_flag(src.argv, "--ckpt", ckpt), "--out_root", run_dir)
            if key == "flops":
                argv = set_flag(argv, "--flops_from", f"{point['suite_dir']}/{names['ttt']}")
            kind = "suite_ttt" if key == "ttt" else "suite_bestofn"
            done = heldout_ids is not None and check_artifacts(run_dir, kind, task_ids=heldout_ids)["complete"]
            partial = os.path.isdir(run_dir) and any(os.path.exists(os.path.join(run_dir, i, "result.json"))
                                                     for i in (heldout_ids or []))
            out.append(Step("C", f"sweep{x}_{names[key]}", argv, done=done, resume=src.resume, partial=partial,
                            needs=[need_ckpt] + [n for n in src.needs if n[0] != main_ckpt],
                            tuned=src.tuned, tuned_at=src.tuned_at))
    out.append(Step("C", "sweep_manifest", [f"{len(out) // 4} earlier bases and the main one -> "
                                            f"{profile['runs_dir']}/sweep/sweep.json"],
                    check=lambda: write_sweep_manifest(profile)))
    return out


def stale_sweep_base(profile: dict, steps: list[Step]) -> None:
    """A finished pretraining run without a sweep checkpoint cannot make it by rerunning phase B (it is
    complete): say what to do instead, before anything runs."""
    settings = sweep_settings(profile)
    pre_dir = f"{profile['runs_dir']}/{profile['pretrain']['run']}"
    pending = {s.name for s in steps if s.name.startswith("sweep") and not s.done and s.check is None}
    if not settings or not pending or not check_artifacts(pre_dir, "pretrain", steps=profile["pretrain"]["steps"])["complete"]:
        return
    for point in sweep_points(profile)[:-1]:
        if any(n.startswith(f"sweep{point['step']}_") for n in pending) and not os.path.isfile(point["ckpt"]):
            raise UserError(f"sweep: no checkpoint {point['ckpt']}: the pretraining run {pre_dir} finished without "
                            f"keeping step {point['step']} (run before the profile's sweep block gave it --keep_steps); "
                            f"move {pre_dir} away and rerun phase B, or drop {point['step']} from the profile's sweep")


def with_base_seed(profile: dict, seed: int) -> dict:
    """The profile for another base model: pretraining seed `seed`, its runs under
    <runs_dir>_base<seed> (the data of phase A is shared). Spread across base models (DESIGN §7)."""
    out = json.loads(json.dumps(profile))
    out["pretrain"]["seed"] = seed
    out["runs_dir"] = f"{profile['runs_dir']}_base{seed}"
    return out


def select(steps: list[Step], only: set[str]) -> list[Step]:
    """--only: every step not named is treated as done, except the probe gate (`always`: a filter
    cannot skip it). In-process outputs such as the sweep manifest follow the filter like any step."""
    if not only:
        return steps
    for step in steps:
        if step.name not in only and not step.always:
            step.done, step.skip_reason = True, "not in --only"
    return steps


def main() -> int:
    p = argparse.ArgumentParser(description="Run runbook phases A-F with checkpoint-aware resume.")
    p.add_argument("--from-phase", dest="from_phase", default="A", choices=list(PHASES), help="first phase")
    p.add_argument("--to-phase", dest="to_phase", default="F", choices=list(PHASES), help="last phase")
    p.add_argument("--include-expected-ablation", dest="expected", action="store_true",
                   help="also run the expected-reward objective ablation")
    p.add_argument("--profile", default="paper", help="paper | mini | smoke, or a path to a profile JSON")
    p.add_argument("--seeds", default="", help="comma-separated seeds (default: the profile's)")
    p.add_argument("--dry_run", action="store_true", help="print the commands (and what is skipped); run nothing")
    p.add_argument("--base_seed", type=int, default=None,
                   help="pretrain another base model with this seed, its runs under <runs_dir>_base<seed> (phase A "
                        "data shared): the spread of a result across base models")
    p.add_argument("--sweep", action="store_true",
                   help="run only the profile's sweep over priors (its \"sweep\" block: the main comparison from "
                        "earlier checkpoints of the pretraining run, each probed) and phase F's tables and figures; "
                        "needs phases A-C done (make sweep)")
    p.add_argument("--only", default="",
                   help="comma-separated step names to run (e.g. pretrain,tasks,audit_tasks,probe,tune,"
                        "base_bestofn_seed0,ttt_main_seed0); the others are skipped, the probe gate still applies")
    args = p.parse_args()
    profile, _ = load_profile(args.profile)
    if args.base_seed is not None:
        profile = with_base_seed(profile, args.base_seed)
    os.chdir(ROOT)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if args.sweep:
        if not profile.get("sweep"):
            raise UserError(f'--sweep: profile {args.profile} has no "sweep" block (e.g. "sweep": {{"steps": '
                            f'[500, 1000, 2000], "seed": 0}}: earlier pretraining checkpoints)')
        if only or args.from_phase != "A" or args.to_phase != "F":
            raise UserError("--sweep runs the sweep and phase F: it takes no --only, --from-phase or --to-phase")
        args.from_phase = "C"
        only = {s.name for s in plan(profile, profile["seeds"], args.expected)
                if s.name.startswith("sweep") or s.phase == "F"}
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else profile["seeds"]
    except ValueError:
        raise UserError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    lo, hi = PHASES.index(args.from_phase), PHASES.index(args.to_phase)
    if lo > hi:
        raise UserError(f"--from-phase {args.from_phase} comes after --to-phase {args.to_phase}")
    if lo <= PHASES.index("C") <= hi:
        probe_gate_settings(profile)  # a profile without a gate or an opt-out stops now, not after B
    # Every input that a phase before --from-phase makes must exist before anything is written.
    known = {s.name for s in plan(profile, seeds, args.expected)}
    if only - known:
        raise UserError(f"--only: no step named {', '.join(sorted(only - known))} (steps: {', '.join(sorted(known))})")
    found = missing_input(select(plan(profile, seeds, args.expected), only), PHASES[lo:hi + 1], args.from_phase)
    if lo <= PHASES.index("C") <= hi and not args.dry_run:  # before the generic "run phase B first"
        stale_sweep_base(profile, select(plan(profile, seeds, args.expected), only))
    if found and args.dry_run:  # show the plan anyway, and what a real run would stop on
        print(f"note: a real run stops here: {missing_input_error(found, args.from_phase, args.profile, args.seeds)}",
              flush=True)
    elif found:
        raise missing_input_error(found, args.from_phase, args.profile, args.seeds)
    log_dir = os.path.join(profile["runs_dir"], "logs")
    tune_dir = os.path.join(profile["runs_dir"], "tune")
    for phase in PHASES[lo:hi + 1]:
        # plan again before each phase: later phases' completeness depends on what earlier ones wrote
        steps = select(plan(profile, seeds, args.expected), only)
        found = None if args.dry_run else missing_input(steps, phase, phase)  # what this run's earlier phases made
        if found:
            raise missing_input_error(found, phase, args.profile, args.seeds)
        for step in [s for s in steps if s.phase == phase]:
            argv = tuned_argv(step, tune_dir, args.dry_run or step.done)
            argv = argv + (step.resume if step.partial and not step.done else [])
            shown = " ".join(shlex.quote(a) for a in argv)
            if step.done:
                print(f"[{phase}] skip {step.name} ({step.skip_reason})", flush=True)
                continue
            if step.check is not None:
                print(f"[{phase}] {step.name}: {' '.join(step.argv) if args.dry_run else step.check()}", flush=True)
                continue
            print(f"[{phase}] {step.name}: {shown}", flush=True)
            if args.dry_run:
                continue
            os.makedirs(log_dir, exist_ok=True)
            log_path = os.path.join(log_dir, f"{step.name}.log")
            with open(log_path, "a") as log:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

                def forward() -> None:
                    for line in proc.stdout:
                        sys.stdout.write(line)
                        sys.stdout.flush()
                        log.write(line)

                try:
                    forward()
                except KeyboardInterrupt:  # the child got the same Ctrl+C and is pausing: show how it ends
                    try:
                        forward()
                    except KeyboardInterrupt:  # a second Ctrl+C: the child exits at once too
                        pass
                rc = proc.wait()
            if rc == 75:
                print(f"paused in {step.name}; rerun the same run_phase.py command to resume", flush=True)
                return 75
            if rc != 0:
                raise UserError(f"phase {phase} step {step.name} failed (exit {rc}): {shown} -- log: {log_path}")
    print(f"phases {args.from_phase}-{args.to_phase} done ({args.profile})", flush=True)
    return 0


if __name__ == "__main__":
    run(main)
