#!/usr/bin/env python3
"""Choose TTT's and best-of-N's hyper-parameters on train-split tasks only (DESIGN §7).

    python paper/scripts/tune_ttt.py --tasks data/discovery/train.jsonl --ckpt runs/pretrain/ckpt_latest.pt \
        --tokenizer data/tokenizer/spm32k.model --out runs/tune \
        --base lr=3e-3,ttt_steps=8,rollouts=16,lora_rank=8,groups=2,beta_target_kl=0.693 \
        --grid "lr=1e-3,1e-2;steps_x_rollouts=4x32,16x8;lora_rank=16;groups=4;beta_target_kl=0.35,1.4" \
        --temperatures 0.7,1.0,1.3

A comparison whose knobs were set with the evaluation tasks in view, for one arm and not the other,
is not compute-matched. So both arms are tuned here, on the train split, never on held-out tasks
(a held-out task in --tasks is refused):
- best-of-N: each temperature samples the profile's sample budget (ttt_steps x rollouts of --base);
  the one with the highest mean best reward there wins, and only it samples on until every task has
  spent more FLOPs than any TTT setting spent on it;
- TTT: the --base setting and every one-knob change of it from --grid (a one-at-a-time sweep:
  1 + sum(values) runs, not the full product). Each is scored by its mean best reward minus the
  chosen best-of-N's mean best reward at the same FLOPs, task by task (paired, 95% bootstrap CI);
  the highest score wins, the cheaper setting on a tie.

Writes <out>/tune.json: the table, the chosen setting, and the flags phase C appends to its TTT runs
(ttt_flags) and best-of-N runs (bestofn_flags). Each finished setting is cached in <out>/settings/, so
an interrupted tune resumes where it stopped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import tempfile
import time

from discover_distill import discovery as D
from discover_distill.cli import UserError, require_file, run
from discover_distill.fileio import atomic_write_json
from discover_distill.lora import LoRAConfig, inject_lora
from discover_distill.model import load_model
from discover_distill.stats import paired_bootstrap
from discover_distill.tokenizer import Tokenizer
from discover_distill.training import resolve_device, resolve_dtype, say

# The knobs a setting may set, their types, and the suite flag each becomes.
KNOBS = {"lr": float, "ttt_steps": int, "rollouts": int, "lora_rank": int, "groups": int, "beta_target_kl": float}
# TTT's main configuration (run_phase's main_flags): only the knobs above are tuned.
MAIN = {"objective": "entropic", "reuse": True, "adaptive_beta": True, "kl_lambda": 0.1}


def parse_setting(spec: str, flag: str) -> dict:
    """"lr=3e-3,ttt_steps=8" -> {"lr": 0.003, "ttt_steps": 8}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = part.partition("=")
        if key not in KNOBS or not value:
            raise UserError(f"{flag}: expected knob=value with knob in {', '.join(KNOBS)}, got {part!r}")
        try:
            out[key] = KNOBS[key](value)
        except ValueError:
            raise UserError(f"{flag}: {key}={value!r} is not a {KNOBS[key].__name__}") from None
    return out


def parse_grid(spec: str, base: dict) -> list[tuple[str, dict]]:
    """The base setting, then each one-knob change of it: "lr=1e-3,1e-2;steps_x_rollouts=4x32"
    -> [("base", base), ("lr=0.001", ...), ("lr=0.01", ...), ("steps_x_rollouts=4x32", ...)].
    steps_x_rollouts changes ttt_steps and rollouts together at a fixed number of samples."""
    settings = [("base", dict(base))]
    samples = base["ttt_steps"] * base["rollouts"]
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        key, _, values = part.partition("=")
        if not values:
            raise UserError(f"--grid: expected knob=v1,v2 in {part!r}")
        for v in values.split(","):
            v = v.strip()
            if key == "steps_x_rollouts":
                try:
                    steps, rollouts = (int(x) for x in v.split("x"))
                except ValueError:
                    raise UserError(f"--grid: steps_x_rollouts wants SxR (e.g. 4x32), got {v!r}") from None
                if steps * rollouts != samples:
                    raise UserError(f"--grid: steps_x_rollouts={v} is {steps * rollouts} samples, the base "
                                    f"setting's is {samples}: the sweep holds samples fixed")
                change = {"ttt_steps": steps, "rollouts": rollouts}
            else:
                change = parse_setting(f"{key}={v}", "--grid")
            setting = {**base, **change}
            if setting != base:
                settings.append((f"{key}={v}", setting))
    return settings


def check_train_split(tasks: list[dict], path: str) -> None:
    """Tuning on held-out tasks is what this step exists to prevent."""
    for t in tasks:
        if t.get("split") != "train" or "-heldout-" in t.get("task_id", ""):
            raise UserError(f"--tasks {path}: task {t.get('task_id')!r} is not a train-split task "
                            f"(split {t.get('split')!r}); tuning reads the train split only")


def pick_tasks(tasks: list[dict], per_family: int) -> list[dict]:
    """The first `per_family` tasks of each family, in file order (0 = all)."""
    if per_family <= 0:
        return tasks
    seen: dict[str, int] = {}
    out = []
    for t in tasks:
        if seen.get(t["family"], 0) < per_family:
            seen[t["family"]] = seen.get(t["family"], 0) + 1
            out.append(t)
    return out


def best_at_flops(curve: list[dict], flops: float) -> tuple[float, bool]:
    """Best-so-far of a best-of-N curve once it has spent at most `flops`; also whether the curve
    stopped short of `flops` (then its final best stands in: best-of-N got less compute)."""
    best = 0.0
    for c in curve:
        if c["flops"] > flops * (1 + 1e-9):
            return best, False
        best = c["best_so_far"]
    return best, curve[-1]["flops"] < flops * (1 - 1e-9)


def best_at_samples(curve: list[dict], samples: int) -> float:
    return max([c["best_so_far"] for c in curve if c["samples"] <= samples] or [0.0])


def cache_key(args, tasks: list[dict], what: dict) -> str:
    st = os.stat(args.ckpt)
    blob = json.dumps({"ckpt": os.path.abspath(args.ckpt), "ckpt_mtime": st.st_mtime_ns, "ckpt_size": st.st_size,
                       "tasks": [t["task_id"] for t in tasks], "seed": args.seed,
                       "max_new_tokens": args.max_new_tokens, **what}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached(args, key: str, compute) -> dict:
    """compute()'s result (with its wall time), from <out>/settings/<key>.json when already there."""
    path = os.path.join(args.out, "settings", f"{key}.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    t0 = time.time()
    result = {**compute(), "wall_s": round(time.time() - t0, 1)}
    atomic_write_json(path, result)
    return result


def run_batches(tasks, batch, fn) -> list[dict]:
    out = []
    for b in range(0, len(tasks), batch):
        out += fn(tasks[b:b + batch])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description="Tune TTT and best-of-N on train-split tasks (never held-out).")
    p.add_argument("--tasks", required=True, help="train-split task JSONL (gen_discovery_tasks.py --out_train)")
    p.add_argument("--ckpt", required=True, help="base model checkpoint")
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model of the checkpoint")
    p.add_argument("--out", required=True, help="output directory: tune.json and the per-setting cache")
    p.add_argument("--base", required=True, help="the starting setting, knob=value,... (knobs: " + ", ".join(KNOBS) +
                   "; a knob left out takes run_discovery_suite.py's default)")
    p.add_argument("--grid", default="", help="one-knob changes of --base, knob=v1,v2;knob=v3 (steps_x_rollouts=SxR "
                                              "holds samples fixed)")
    p.add_argument("--temperatures", default="1.0", help="best-of-N temperatures to try, comma-separated")
    p.add_argument("--per_family", type=int, default=0, help="tasks per family to tune on (0 = all in --tasks)")
    p.add_argument("--max_new_tokens", type=int, default=32, help="max tokens per sampled answer")
    p.add_argument("--tasks_per_batch", type=int, default=8, help="tasks sampled/trained together")
    p.add_argument("--seed", type=int, default=0, help="sampling / adapter-init seed")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU) | fp32 | bf16")
    args = p.parse_args()
    require_file(args.tasks, "--tasks")
    require_file(args.ckpt, "--ckpt")
    require_file(args.tokenizer, "--tokenizer")
    defaults = D.DiscoveryConfig()  # run_discovery_suite.py's defaults too: a knob --base leaves out is the suite's
    base = {**{k: getattr(defaults, k) for k in KNOBS}, **parse_setting(args.base, "--base")}
    settings = parse_grid(args.grid, base)
    try:
        temps = [float(x) for x in args.temperatures.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--temperatures: expected comma-separated numbers, got {args.temperatures!r}") from None
    if not temps or min(temps) <= 0:
        raise UserError(f"--temperatures: expected positive numbers, got {args.temperatures!r}")
    for s in [base] + [s for _, s in settings]:
        if min(s["ttt_steps"], s["rollouts"], s["lora_rank"], s["groups"]) < 1 or s["lr"] < 0 or s["beta_target_kl"] <= 0:
            raise UserError(f"--base/--grid: a setting out of range: {s}")
    all_tasks = D.load_tasks(args.tasks)
    check_train_split(all_tasks, args.tasks)
    tasks = pick_tasks(all_tasks, args.per_family)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    tok = Tokenizer(args.tokenizer)
    samples = base["ttt_steps"] * base["rollouts"]
    say(f"tune on {len(tasks)} train tasks ({args.tasks}) | {len(settings)} TTT settings, {len(temps)} "
        f"best-of-N temperatures | {samples} samples per task | device {device}")

    def fresh_model(rank: int | None):
        model = load_model(args.ckpt, device)
        for q in model.parameters():
            q.requires_grad_(False)
        if rank is not None:
            inject_lora(model, LoRAConfig(rank=rank, alpha=D.DiscoveryConfig.lora_alpha), n_adapters=args.tasks_per_batch)
        return model

    # TTT: every setting, each task's best reward and FLOPs
    ttt = []
    for name, s in settings:
        cfg = D.DiscoveryConfig(mode="ttt", ttt_steps=s["ttt_steps"], rollouts=s["rollouts"],
                                max_new_tokens=args.max_new_tokens, objective=MAIN["objective"], reuse=MAIN["reuse"],
                                adaptive_beta=MAIN["adaptive_beta"], kl_lambda=MAIN["kl_lambda"], lr=s["lr"],
                                lora_rank=s["lora_rank"], groups=s["groups"], beta_target_kl=s["beta_target_kl"],
                                save_adapter_every=s["ttt_steps"])

        def train(cfg=cfg, s=s):
            model = fresh_model(s["lora_rank"])
            with tempfile.TemporaryDirectory() as tmp:  # per-task metrics and adapters: not kept
                def one(batch):
                    dirs = [os.path.join(tmp, t["task_id"]) for t in batch]
                    for d in dirs:
                        os.makedirs(d)
                    return D.run_ttt(model, tok, batch, cfg, dirs, args.seed, dtype=dtype, log=lambda *a: None)
                res = run_batches(tasks, args.tasks_per_batch, one)
            return {"best": [r["best_reward"] for r in res], "flops": [r["flops"] for r in res]}
        ttt.append(cached(args, cache_key(args, tasks, {"ttt": cfg.__dict__}), train))
        say(f"TTT {name}: mean best {sum(ttt[-1]['best']) / len(tasks):.3f} ({ttt[-1]['wall_s']:.0f} s)")

    # best-of-N: every temperature samples the suite's budget and the best mean best reward there wins;
    # then only the chosen one samples on, far enough (+20%, sized by its screening run's FLOPs per
    # sample) to cover the most FLOPs any TTT setting spent on any task. A task's samples come from
    # its own generator, so the longer run repeats the screening run's samples and extends them.
    def bestofn(temp: float, rounds: int) -> list[list[dict]]:
        cfg = D.DiscoveryConfig(mode="bestofn", ttt_steps=rounds, rollouts=base["rollouts"],
                                max_new_tokens=args.max_new_tokens, temperature=temp)

        def sample():
            model = fresh_model(None)
            res = run_batches(tasks, args.tasks_per_batch, lambda b: D.run_bestofn(model, tok, b, cfg, args.seed, dtype=dtype))
            return {"curves": [r["best_curve"] for r in res]}
        return cached(args, cache_key(args, tasks, {"bestofn": cfg.__dict__}), sample)
    screen_rounds = math.ceil(samples / base["rollouts"])
    t_rows, screened = [], {}
    for temp in temps:
        run_ = bestofn(temp, screen_rounds)
        screened[temp] = run_["curves"]
        at_n = [best_at_samples(c, samples) for c in run_["curves"]]
        t_rows.append({"temperature": temp, "mean_best_at_samples": sum(at_n) / len(at_n), "samples": samples,
                       "mean_best_at_max": None, "max_samples": None, "wall_s": run_["wall_s"]})
        say(f"best-of-N T={temp}: mean best {t_rows[-1]['mean_best_at_samples']:.3f} at {samples} samples")
    chosen_row = max(t_rows, key=lambda r: (r["mean_best_at_samples"], -abs(r["temperature"] - 1.0)))
    chosen_t = chosen_row["temperature"]
    need = [max(r["flops"][k] for r in ttt) for k in range(len(tasks))]
    per_sample = [c[-1]["flops"] / c[-1]["samples"] for c in screened[chosen_t]]
    rounds = max(screen_rounds, math.ceil(1.2 * max(n / f for n, f in zip(need, per_sample)) / base["rollouts"]))
    long_run = bestofn(chosen_t, rounds)
    curves_bon = long_run["curves"]
    chosen_row.update(mean_best_at_max=sum(c[-1]["best_so_far"] for c in curves_bon) / len(tasks),
                      max_samples=rounds * base["rollouts"], wall_s=chosen_row["wall_s"] + long_run["wall_s"])
    say(f"best-of-N T={chosen_t}: {rounds * base['rollouts']} samples per task cover every TTT setting's "
        f"FLOPs; mean best {chosen_row['mean_best_at_max']:.3f} there")

    rows = []
    for (name, s), r in zip(settings, ttt):
        matched = [best_at_flops(c, f) for c, f in zip(curves_bon, r["flops"])]
        bon_best = [m for m, _ in matched]
        pb = paired_bootstrap(bon_best, r["best"])
        rows.append({"name": name, "setting": s, "ttt_mean_best": sum(r["best"]) / len(tasks),
                     "bestofn_mean_best_at_flops": sum(bon_best) / len(tasks), "score": pb["mean_diff"],
                     "score_ci95": pb["ci95"], "mean_flops": sum(r["flops"]) / len(tasks),
                     "bestofn_short_tasks": sum(short for _, short in matched), "wall_s": r["wall_s"]})
        say(f"TTT {name}: mean best {rows[-1]['ttt_mean_best']:.3f} | best-of-N T={chosen_t} at equal FLOPs "
            f"{rows[-1]['bestofn_mean_best_at_flops']:.3f} | score {pb['mean_diff']:+.3f} "
            f"[{pb['ci95'][0]:+.3f}, {pb['ci95'][1]:+.3f}]")
    chosen = max(rows, key=lambda r: (r["score"], -r["mean_flops"]))
    s = chosen["setting"]
    ttt_flags = ["--lr", repr(s["lr"]), "--ttt_steps", str(s["ttt_steps"]), "--rollouts", str(s["rollouts"]),
                 "--lora_rank", str(s["lora_rank"]), "--groups", str(s["groups"]),
                 "--beta_target_kl", repr(s["beta_target_kl"])]
    out = {"config": {"base": args.base, "grid": args.grid, "temperatures": args.temperatures,
                      "per_family": args.per_family},
           "tasks": args.tasks, "split": "train", "task_ids": [t["task_id"] for t in tasks], "ckpt": args.ckpt,
           "seed": args.seed, "samples": samples, "base": base, "grid": args.grid,
           "score": "TTT mean best reward minus best-of-N's (chosen temperature) at the same FLOPs, paired over "
                    "train tasks",
           "temperatures": t_rows, "settings": rows,
           "chosen": {"ttt": chosen["name"], "ttt_setting": s, "bestofn_temperature": chosen_t},
           "ttt_flags": ttt_flags, "bestofn_flags": ["--temperature", repr(chosen_t)]}
    atomic_write_json(os.path.join(args.out, "tune.json"), out)
    say(f"chosen: TTT {chosen['name']} ({' '.join(ttt_flags)}), best-of-N temperature {chosen_t} -> "
        f"{os.path.join(args.out, 'tune.json')}")
    return 0


if __name__ == "__main__":
    run(main)
