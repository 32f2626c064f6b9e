#!/usr/bin/env python3
"""Write the paper's evidence from the runs (runbook F2): no number is typed by hand.

    python paper/scripts/fill_tables.py --runs_dir runs/suite

Writes paper/04_results_registry.md (every number with the run it came from) and, under
--latex_dir (default paper/latex/tables, which paper/latex/main.tex reads):
  setup.tex          \\newcommand macros: model, pretraining, budgets, task counts, seeds, promotion
  main_results.tex   held-out runs at the full budget
  budget.tex         solve rate / mean best reward at N samples, best-of-N vs TTT main
  budget_paired.tex  TTT main - best-of-N at each N (paired bootstrap CIs)
  paired.tex         every paired comparison at the full budget (arms, controls, ablations, E1)
  controls.tex       TTT main - ttt_lr0, TTT main - FLOPs-matched best-of-N, ablations, SDFT vs SFT
  retention.tex      retention of SDFT and SFT side by side (headline split first)
  learning.tex       TTT learning: mean sample reward at the first and last step, KL, update norm
  probe.tex          the base-model probe per family (swap gap, well-formed, reward, greedy, best-of-N)

Paired comparisons use the same tasks and seed on both sides (bootstrap over tasks). The train
split run (ttt_train_seed0, which feeds SDFT) never enters a held-out table. Missing inputs are
reported as n/a, never a crash. The setup numbers come from the pretraining run (--pretrain_dir,
default: the directory of the base runs' --ckpt), the suite configs and the task files they name.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
from collections import defaultdict

from discover_distill.cli import UserError, run
from discover_distill.evaluate import bootstrap_ci
from discover_distill.fileio import atomic_write_text
from discover_distill.probe import TABLE_HEADER as PROBE_HEADER, read_probe, table as probe_table
from discover_distill.stats import (BUDGET_ANCHORS, BUDGET_REFERENCE, best_at, budget_points, paired_bootstrap,
                                    promotion_of, read_best_curve, read_sdft_report, retention_promotion, tasks_needed)
from discover_distill.tasks.base import SOLVED

POWER_EFFECT = 0.05  # the difference (solve rate, mean best reward) the held-out set is sized to detect

GUARDRAILS = [
    "No claim of state of the art on real-world external benchmarks: every number is on this synthetic, verifiable suite.",
    "No causal claim about mHC without the dedicated on/off architecture comparison (configs/model_plain_120m.json).",
    "No zero-forgetting guarantee: retention is a measured perplexity change with its confidence interval.",
    "Claims are scoped to this suite and the reported budgets (samples, FLOPs, GPU time).",
]
NA = "n/a"
ABLATIONS = ("reuse0", "adapt0", "kl0", "expected")
E1_RE = re.compile(r"^(sdft|sft)(\d*)_bestofn_seed(\d+)$")
METHOD_LABEL = {"sdft": "SDFT", "sft": "SFT"}


# --- reading ---------------------------------------------------------------------------------

def read_json(path: str | None):
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_jsonl(path: str) -> list[dict]:
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    rows.append(obj)
    except OSError:
        pass
    return rows


def count_lines(path: str | None) -> int | None:
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return sum(1 for l in f if l.strip())
    except OSError:
        return None


def is_heldout(name: str) -> bool:
    """ttt_train_* runs are on the TRAIN split (they feed SDFT): never a held-out result."""
    return not name.startswith("ttt_train")


def seed_of(name: str) -> str | None:
    return name.rsplit("_seed", 1)[1] if "_seed" in name else None


RUN_ORDER = ["base_bestofn", "ttt_main", "ttt_lr0", "base_bestofn_flops", "ttt_reuse0", "ttt_adapt0", "ttt_kl0",
             "ttt_expected", "sdft", "sft", "ttt_train"]


def run_key(name: str) -> tuple:
    """Arms first, then controls, ablations, consolidated models, the train split; seeds in order."""
    stem, _, seed = name.rpartition("_seed")
    m = E1_RE.match(name)
    stem = m.group(1) if m else stem
    return (RUN_ORDER.index(stem) if stem in RUN_ORDER else len(RUN_ORDER), name.rsplit("_seed", 1)[0],
            int(seed) if seed.isdigit() else -1, name)


def load(runs_dir: str) -> dict[str, dict[str, dict]]:
    """run name -> {task_id: summary row} for every run directory with a non-empty summary.jsonl."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(runs_dir), "*", "summary.jsonl"))):
        rows = [r for r in read_jsonl(path) if "task_id" in r and isinstance(r.get("best_reward"), (int, float))]
        for r in rows:  # a row without "solved" is judged by its reward
            r["solved"] = bool(r.get("solved", r["best_reward"] >= SOLVED))
        if rows:
            runs[os.path.basename(os.path.dirname(path))] = {r["task_id"]: r for r in rows}
    return dict(sorted(runs.items(), key=lambda kv: run_key(kv[0])))


def run_args(runs_dir: str, name: str) -> dict:
    """A run's arguments from its config.json ({"args": ...} as tracker.py writes it; a flat dict
    is accepted too)."""
    cfg = read_json(os.path.join(runs_dir, name, "config.json"))
    if not isinstance(cfg, dict):
        return {}
    args = cfg.get("args", cfg)
    return args if isinstance(args, dict) else {}


def resolve(path: str | None, runs_dir: str) -> str | None:
    """A path recorded in a config (relative to where the run was started: the repository root)."""
    if not path:
        return None
    if os.path.isabs(path) or os.path.exists(path):
        return path
    # fall back to the repository root when fill_tables runs from elsewhere
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cand = os.path.join(root, path)
    return cand if os.path.exists(cand) else path


def task_curve(runs_dir: str, name: str, row: dict) -> list[dict] | None:
    """best_curve of one task: summary row, else result.json, else (TTT) metrics.jsonl."""
    return read_best_curve(os.path.join(runs_dir, name, row["task_id"]), row)


# --- formatting ------------------------------------------------------------------------------

def fnum(x, fmt: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return NA
    return format(x, fmt)


def ci_cell(mean, lo, hi, signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    if mean is None:
        return NA
    return f"{fnum(mean, f)} [{fnum(lo, f)}, {fnum(hi, f)}]"


def mean(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else None


def tex_escape(s) -> str:
    """Plain text -> LaTeX (the characters LaTeX treats specially)."""
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}
    return "".join(repl.get(ch, ch) for ch in str(s))


def tex_table(spec: str, header: list[str], rows: list[list[str]], empty: str) -> str:
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    if not rows:
        lines.append(rf"\multicolumn{{{len(header)}}}{{c}}{{\emph{{{empty}}}}} \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def human(n, unit: str = "") -> str:
    if not isinstance(n, (int, float)):
        return NA
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suf}{unit}"
    return f"{n:g}{unit}"


# --- the evidence ----------------------------------------------------------------------------

class Evidence:
    """Everything the registry and the LaTeX tables show, computed once from the files."""

    def __init__(self, runs_dir: str, pretrain_dir: str | None = None):
        self.runs_dir = runs_dir
        self.all_runs = load(runs_dir)
        self.runs = {n: r for n, r in self.all_runs.items() if is_heldout(n)}
        self.args = {n: run_args(runs_dir, n) for n in self.all_runs}
        self.seeds = sorted({s for n in self.runs if (s := seed_of(n)) is not None and s.isdigit()}, key=int)
        self.main_seeds = [s for s in self.seeds if f"ttt_main_seed{s}" in self.runs
                           and f"base_bestofn_seed{s}" in self.runs]
        self.pretrain_dir = pretrain_dir
        self._curves: dict[str, dict[str, list[dict] | None]] = {}
        self._memo: dict[str, list] = {}

    # shared helpers
    def curves(self, name: str) -> dict[str, list[dict] | None]:
        if name not in self._curves:
            self._curves[name] = {t: task_curve(self.runs_dir, name, r) for t, r in self.all_runs.get(name, {}).items()}
        return self._curves[name]

    def paired(self, base: str, treat: str, key: str) -> dict | None:
        a, b = self.runs.get(base) or self.all_runs.get(base), self.runs.get(treat) or self.all_runs.get(treat)
        if not a or not b:
            return None
        common = sorted(set(a) & set(b))
        if not common:
            return None
        return paired_bootstrap([float(a[t][key]) for t in common], [float(b[t][key]) for t in common])

    # budget
    def budget(self) -> tuple[int | None, str]:
        """Samples per task = ttt_steps x rollouts of the TTT main run's config (else a best-of-N
        run's; else the largest TTT main sample count)."""
        names = [f"ttt_main_seed{s}" for s in self.seeds] + [f"base_bestofn_seed{s}" for s in self.seeds]
        for name in names:
            a = self.args.get(name) or {}
            st, ro = a.get("ttt_steps"), a.get("rollouts")
            if isinstance(st, int) and isinstance(ro, int) and st > 0 and ro > 0:
                return st * ro, f"`{name}/config.json`: ttt_steps {st} x rollouts {ro}"
        samples = [r.get("samples") for n in self.runs if n.startswith("ttt_main") for r in self.runs[n].values()]
        samples = [x for x in samples if isinstance(x, (int, float)) and x > 0]
        if samples:
            return int(max(samples)), "largest `samples` in the ttt_main summaries (no config.json)"
        return None, "no ttt_main or best-of-N run"

    def budget_grid(self) -> list[int]:
        """The table's sample counts N (stats.budget_points on the sample counts the curves hold)."""
        if "grid" in self._memo:
            return self._memo["grid"]
        budget, _ = self.budget()
        if not budget:
            self._memo["grid"] = []
            return []
        avail = set()
        for s in self.main_seeds:
            for name in (f"base_bestofn_seed{s}", f"ttt_main_seed{s}"):
                for c in self.curves(name).values():
                    avail |= {int(p["samples"]) for p in (c or [])}
        self._memo["grid"] = budget_points(budget, avail)
        return self._memo["grid"]

    def random_baseline(self) -> tuple[dict | None, str]:
        """(held-out random-search levels {"n_tasks", "mean_best": {N: v}, "solve_rate": {N: v}}, source):
        the expected best of N uniformly random well-formed answers per task, from the audit.json
        that run_phase writes beside the held-out task file (paper/scripts/audit_tasks.py)."""
        for s in self.main_seeds:
            tasks = (self.args.get(f"base_bestofn_seed{s}") or {}).get("tasks")
            path = resolve(tasks, self.runs_dir)
            if not path:
                continue
            audit_path = os.path.join(os.path.dirname(path), "audit.json")
            audit = read_json(audit_path)
            held = ((audit or {}).get("overall") or {}).get("heldout") if isinstance(audit, dict) else None
            if isinstance(held, dict):
                return held, audit_path
        return None, "no audit.json beside the held-out tasks"

    def at_n(self, name: str, n: float) -> dict[str, float]:
        """task -> best reward within the first n samples (tasks with a curve only)."""
        return {t: best_at(c, n) for t, c in self.curves(name).items() if c}

    def level(self, values: list[float]) -> dict:
        solved = [float(v >= SOLVED) for v in values]
        if not values:
            return {"n": 0, "solve": None, "solve_ci": (None, None), "best": None, "best_ci": (None, None)}
        return {"n": len(values), "solve": sum(solved) / len(solved), "solve_ci": bootstrap_ci(solved),
                "best": sum(values) / len(values), "best_ci": bootstrap_ci(values)}

    def budget_levels(self) -> list[dict]:
        """Per seed and arm: solve rate and mean best reward at each N."""
        out = []
        for s in self.main_seeds:
            for arm, name in (("best-of-N", f"base_bestofn_seed{s}"), ("TTT main", f"ttt_main_seed{s}")):
                out.append({"seed": s, "arm": arm, "run": name,
                            "at": {n: self.level(list(self.at_n(name, n).values())) for n in self.budget_grid()},
                            "missing": sum(1 for c in self.curves(name).values() if not c)})
        return out

    def budget_paired(self) -> list[dict]:
        out = []
        for s in self.main_seeds:
            for n in self.budget_grid():
                a, b = self.at_n(f"base_bestofn_seed{s}", n), self.at_n(f"ttt_main_seed{s}", n)
                common = sorted(set(a) & set(b))
                if not common:
                    continue
                out.append({"seed": s, "N": n, "n": len(common),
                            "solve": paired_bootstrap([float(a[t] >= SOLVED) for t in common],
                                                      [float(b[t] >= SOLVED) for t in common]),
                            "best": paired_bootstrap([a[t] for t in common], [b[t] for t in common])})
        return out

    def budget_families(self) -> dict[str, dict[str, dict[int, dict]]]:
        """family -> arm -> N -> {solve, best, n}, seeds pooled (mean over tasks x seeds)."""
        fam = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        for s in self.main_seeds:
            for arm, name in (("best-of-N", f"base_bestofn_seed{s}"), ("TTT main", f"ttt_main_seed{s}")):
                for n in self.budget_grid():
                    for t, v in self.at_n(name, n).items():
                        fam[self.runs[name][t].get("family", "?")][arm][n].append(v)
        return {f: {arm: {n: {"n": len(v), "solve": mean([float(x >= SOLVED) for x in v]), "best": mean(v)}
                          for n, v in per_n.items()} for arm, per_n in arms.items()} for f, arms in sorted(fam.items())}

    # consolidation
    def sdft_report(self, ckpt: str | None) -> dict | None:
        return read_sdft_report(resolve(ckpt, self.runs_dir))

    def e1_runs(self) -> list[dict]:
        """E1 runs (sdft{STEPS}/sft{STEPS}_bestofn_seed{s}) with the promotion of their checkpoint."""
        if "e1" in self._memo:
            return self._memo["e1"]
        out = []
        for name in sorted(self.runs):
            m = E1_RE.match(name)
            if not m:
                continue
            ckpt = self.args.get(name, {}).get("ckpt")
            rep = self.sdft_report(ckpt)
            out.append({"run": name, "method": m.group(1), "steps": m.group(2), "seed": m.group(3), "ckpt": ckpt,
                        "promotion": promotion_of(rep)})
        self._memo["e1"] = out
        return out

    def retention(self) -> list[dict]:
        """retention_ppl*.json (retention_ppl.json = SDFT, retention_ppl_<method>.json), headline split
        = filler when measured (or as the file says), and the promotion of the measured model."""
        if "retention" in self._memo:
            return self._memo["retention"]
        out = []
        for path in sorted(glob.glob(os.path.join(glob.escape(self.runs_dir), "retention_ppl*.json"))):
            r = read_json(path)
            if not isinstance(r, dict):
                continue
            fname = os.path.basename(path)
            method = fname[len("retention_ppl"):-len(".json")].strip("_") or "sdft"
            promo = retention_promotion(r, lambda p: resolve(p, self.runs_dir))
            filler = r.get("filler") if isinstance(r.get("filler"), dict) else None
            headline = r.get("headline") or ("filler" if filler else "val")
            if headline == "filler" and not filler:
                headline = "val"
            out.append({"file": fname, "method": method, "val": r, "filler": filler, "headline": headline,
                        "promotion": promo})
        self._memo["retention"] = out
        return out

    def rejected_methods(self) -> set[str]:
        rej = {e["method"] for e in self.e1_runs() if e["promotion"] and e["promotion"]["all_rejected"]}
        return rej | {r["method"] for r in self.retention() if r["promotion"] and r["promotion"]["all_rejected"]}

    # comparisons at the full budget
    def comparisons(self) -> dict[str, list[tuple[str, str, str]]]:
        """section -> (label, baseline run, treatment run) for every pair present."""
        rej = self.rejected_methods()
        sec = {"main": [], "controls": [], "ablations": [], "consolidation": []}
        for s in self.seeds:
            sec["main"].append((f"TTT main vs best-of-N (seed {s})", f"base_bestofn_seed{s}", f"ttt_main_seed{s}"))
            sec["controls"].append((f"TTT main minus ttt_lr0, no learning (seed {s})", f"ttt_lr0_seed{s}",
                                    f"ttt_main_seed{s}"))
            sec["controls"].append((f"TTT main minus FLOPs-matched best-of-N (seed {s})",
                                    f"base_bestofn_flops_seed{s}", f"ttt_main_seed{s}"))
            for abl in ABLATIONS:
                sec["ablations"].append((f"ablation {abl} vs TTT main (seed {s})", f"ttt_main_seed{s}",
                                         f"ttt_{abl}_seed{s}"))
            e1 = [e for e in self.e1_runs() if e["seed"] == s]
            for e in e1:
                tag = " [gate rejected every step: base model]" if e["method"] in rej else ""
                sec["consolidation"].append((f"{e['method']}{e['steps']} best-of-N vs base best-of-N (seed {s}){tag}",
                                             f"base_bestofn_seed{s}", e["run"]))
            for e in (x for x in e1 if x["method"] == "sdft"):
                for f in (x for x in e1 if x["method"] == "sft" and x["steps"] == e["steps"]):
                    tag = "".join(f" [{m.upper()}: gate rejected every step]" for m in ("sdft", "sft") if m in rej)
                    sec["consolidation"].append((f"SDFT minus SFT, E1 best-of-N (seed {s}){tag}", f["run"], e["run"]))
        return {k: [p for p in v if p[1] in self.runs and p[2] in self.runs] for k, v in sec.items()}

    # TTT learning
    def learning(self) -> list[dict]:
        names = [f"ttt_main_seed{s}" for s in self.seeds] + [f"ttt_lr0_seed{s}" for s in self.seeds]
        names += sorted(n for n in self.all_runs if n.startswith("ttt_train"))
        out = []
        for name in names:
            if name not in self.all_runs:
                continue
            first, last, kl, upd, const = [], [], [], [], []
            for t in self.all_runs[name]:
                m = sorted((r for r in read_jsonl(os.path.join(self.runs_dir, name, t, "metrics.jsonl"))
                            if isinstance(r.get("step"), (int, float))), key=lambda r: r["step"])
                if not m or not isinstance(m[0].get("mean_reward"), (int, float)) \
                        or not isinstance(m[-1].get("mean_reward"), (int, float)):
                    continue
                first.append(float(m[0]["mean_reward"]))
                last.append(float(m[-1]["mean_reward"]))
                kl.append(m[-1].get("kl_to_base"))
                upd.append(m[-1].get("lora_update_norm"))
                const.append(m[-1].get("const_group_share"))
            if not first:
                continue
            split = "train" if name.startswith("ttt_train") else "held-out"
            role = "control (lr 0)" if name.startswith("ttt_lr0") else "TTT main"
            out.append({"run": name, "split": split, "role": role, "n": len(first), "first": mean(first),
                        "last": mean(last), "delta": paired_bootstrap(first, last), "kl": mean(kl),
                        "update_norm": mean(upd), "const_share": mean(const)})
        return out

    # setup numbers
    def setup(self) -> list[tuple[str, str, str, str]]:
        """(macro name, value, description, source) for the manuscript's setup macros."""
        items: list[tuple[str, str, str, str]] = []

        def add(macro, value, desc, source):
            items.append((macro, NA if value is None else str(value), desc, source))

        ref = next((n for n in [f"base_bestofn_seed{s}" for s in self.seeds] + [f"ttt_main_seed{s}" for s in self.seeds]
                    + sorted(n for n in self.runs if not E1_RE.match(n))
                    if n in self.args and self.args[n].get("ckpt")), None)
        pre_dir = self.pretrain_dir
        if not pre_dir and ref:
            ckpt = resolve(self.args[ref]["ckpt"], self.runs_dir)
            pre_dir = os.path.dirname(ckpt) if ckpt else None
        src_pre = f"{pre_dir}" if pre_dir else "no pretrain dir (no run config names a ckpt)"
        mcfg = read_json(os.path.join(pre_dir, "model_config.json")) if pre_dir else None
        pcfg = read_json(os.path.join(pre_dir, "pretrain_config.json")) if pre_dir else None
        mrows = read_jsonl(os.path.join(pre_dir, "metrics.jsonl")) if pre_dir else []
        mcfg, pcfg = mcfg if isinstance(mcfg, dict) else {}, pcfg if isinstance(pcfg, dict) else {}
        add("ddModelParams", human(pcfg.get("num_params")) if pcfg.get("num_params") else None,
            "model parameters", src_pre + "/pretrain_config.json num_params")
        for macro, key, desc in (("ddModelLayers", "n_layers", "layers"), ("ddModelWidth", "d_model", "width d_model"),
                                 ("ddModelHeads", "n_heads", "attention heads"), ("ddModelFF", "d_ff", "MLP width"),
                                 ("ddModelStreams", "mhc_streams", "mHC residual streams n"),
                                 ("ddSinkhornIters", "mhc_sinkhorn_iters", "Sinkhorn iterations"),
                                 ("ddMHCAlphaInit", "mhc_alpha_init", "mHC gate scale alpha at init"),
                                 ("ddVocabSize", "vocab_size", "vocabulary size"),
                                 ("ddContextLen", "max_seq_len", "maximum context")):
            add(macro, mcfg.get(key), desc, src_pre + f"/model_config.json {key}")
        add("ddPretrainSteps", pcfg.get("steps"), "pretraining steps", src_pre + "/pretrain_config.json steps")
        add("ddPretrainSeqLen", pcfg.get("seq_len"), "pretraining sequence length", src_pre + "/pretrain_config.json seq_len")
        add("ddPretrainBatchTokens", human(pcfg.get("tokens_per_step")) if pcfg.get("tokens_per_step") else None,
            "tokens per optimiser step", src_pre + "/pretrain_config.json tokens_per_step")
        seen = next((r["tokens_seen"] for r in reversed(mrows) if isinstance(r.get("tokens_seen"), (int, float))), None)
        if seen is None and isinstance(pcfg.get("steps"), int) and isinstance(pcfg.get("tokens_per_step"), int):
            seen = pcfg["steps"] * pcfg["tokens_per_step"]
        add("ddPretrainTokens", human(seen) if seen else None, "tokens seen in pretraining",
            src_pre + "/metrics.jsonl tokens_seen (last row; else steps x tokens_per_step)")
        add("ddCorpusTokens", human(pcfg.get("train_tokens")) if pcfg.get("train_tokens") else None,
            "training corpus tokens", src_pre + "/pretrain_config.json train_tokens")
        vppl = next((r["val_ppl"] for r in reversed(mrows) if isinstance(r.get("val_ppl"), (int, float))), None)
        add("ddPretrainValPPL", fnum(vppl, ".2f") if vppl is not None else None, "final validation perplexity",
            src_pre + "/metrics.jsonl val_ppl (last row)")
        # budgets and TTT hyper-parameters (TTT main's config)
        tm = next((n for n in (f"ttt_main_seed{s}" for s in self.seeds) if self.args.get(n)), None)
        ta = self.args.get(tm, {}) if tm else {}
        src_t = f"`{tm}/config.json`" if tm else "no ttt_main config.json"
        budget, bsrc = self.budget()
        for macro, key, desc in (("ddTTTSteps", "ttt_steps", "TTT steps"), ("ddRollouts", "rollouts", "rollouts per step"),
                                 ("ddMaxNewTokens", "max_new_tokens", "max new tokens per sample"),
                                 ("ddLoraRank", "lora_rank", "LoRA rank"), ("ddLoraAlpha", "lora_alpha", "LoRA alpha"),
                                 ("ddTTTLR", "lr", "TTT learning rate"), ("ddKLLambda", "kl_lambda", "KL shaping weight"),
                                 ("ddGroups", "groups", "start states per step (reuse)"),
                                 ("ddTemperature", "temperature", "sampling temperature")):
            add(macro, ta.get(key), desc, src_t + f" {key}")
        add("ddBudget", budget, "samples per task (ttt_steps x rollouts)", bsrc)
        add("ddBudgetPoints", ", ".join(str(n) for n in self.budget_grid()) or None, "table sample counts N",
            "budget x anchors / reference, nearest sample count on the curves")
        add("ddBudgetAnchors", ", ".join(str(a) for a in BUDGET_ANCHORS), "table points at the runbook budget",
            "discover_distill.stats.BUDGET_ANCHORS")
        add("ddBudgetReference", BUDGET_REFERENCE, "the runbook budget the anchors refer to",
            "discover_distill.stats.BUDGET_REFERENCE")
        flops = [r.get("samples") for n in self.runs if n.startswith("base_bestofn_flops")
                 for r in self.runs[n].values()]
        flops = [x for x in flops if isinstance(x, (int, float))]
        add("ddBudgetFlops", int(round(mean(flops))) if flops else None, "FLOPs-matched best-of-N samples per task",
            "base_bestofn_flops summaries, mean samples")
        # tasks
        def task_count(names, kind):
            for n in names:
                a = self.args.get(n) or {}
                c = count_lines(resolve(a.get("tasks"), self.runs_dir))
                if c is not None:
                    mt = a.get("max_tasks") or 0
                    return (min(c, mt) if mt else c), f"`{a.get('tasks')}` ({kind}, via `{n}/config.json`)"
            for n in names:
                if n in self.all_runs:
                    return len(self.all_runs[n]), f"`{n}/summary.jsonl` rows"
            return None, f"no {kind} run"
        held = [f"base_bestofn_seed{s}" for s in self.seeds] + [f"ttt_main_seed{s}" for s in self.seeds]
        n_held, src_h = task_count(held, "held-out")
        add("ddHeldoutTasks", n_held, "held-out tasks", src_h)
        n_train, src_tr = task_count(sorted(n for n in self.all_runs if n.startswith("ttt_train"))
                                     or ["ttt_train_seed0"], "train")
        add("ddTrainTasks", n_train, "train-split tasks (TTT for demonstrations)", src_tr)
        fams = sorted({r.get("family") for n in held if n in self.runs for r in self.runs[n].values() if r.get("family")})
        add("ddNumFamilies", len(fams) if fams else None, "task families (held-out)", "held-out summaries, family")
        add("ddFamilyList", ", ".join(fams) or None, "family names", "held-out summaries, family")
        add("ddSolvedThreshold", SOLVED, "reward at which a task counts as solved", "discover_distill.tasks.base.SOLVED")
        add("ddSeeds", ", ".join(self.seeds) or None, "seeds", "run directory names *_seed{s}")
        add("ddNumSeeds", len(self.seeds) if self.seeds else None, "number of seeds", "run directory names")
        abl = sorted({seed_of(n) for n in self.runs if n.startswith(tuple(f"ttt_{a}_seed" for a in ABLATIONS))}, key=int)
        add("ddAblationSeeds", ", ".join(abl) or None, "seeds of the ablation runs", "run directory names ttt_<ablation>_seed{s}")
        # consolidation
        e1 = self.e1_runs()
        for method in ("sdft", "sft"):
            lab = METHOD_LABEL[method]
            e = next((x for x in e1 if x["method"] == method), None)
            sdir = os.path.dirname(resolve(e["ckpt"], self.runs_dir)) if e and e["ckpt"] else None
            sargs = run_args(os.path.dirname(sdir), os.path.basename(sdir)) if sdir else {}
            src_s = f"{sdir}/config.json" if sdir else f"no {method} E1 run"
            add(f"dd{lab}Steps", sargs.get("steps"), f"{lab} training steps", src_s + " steps")
            if method == "sdft":
                add("ddDemos", count_lines(resolve(sargs.get("data"), self.runs_dir)), "SDFT demonstrations",
                    src_s + " data (lines)")
                add("ddEMAAlpha", sargs.get("ema_alpha"), "teacher EMA rate", src_s + " ema_alpha")
                add("ddKLDirection", sargs.get("kl"), "per-token KL direction", src_s + " kl")
                add("ddSDFTLR", sargs.get("lr"), "SDFT learning rate", src_s + " lr")
                add("ddGateEvery", sargs.get("gate_every"), "gate evaluation every N steps", src_s + " gate_every")
                inc = sargs.get("gate_max_ppl_increase")
                add("ddGateMaxIncrease", f"{100 * inc:g}%" if isinstance(inc, (int, float)) else None,
                    "largest relative gate perplexity increase a promoted step may have",
                    src_s + " gate_max_ppl_increase")
            promo = (e or {}).get("promotion") or next((r["promotion"] for r in self.retention()
                                                        if r["method"] == method and r["promotion"]), None)
            add(f"dd{lab}PromotedStep", promo["promoted_step"] if promo else None, f"{lab} promoted step",
                "sdft_eval_report.json / retention promotion: promoted_step")
            note = (f"The validation-perplexity gate rejected every {lab} step, so the {lab} rows measure the "
                    f"base model." if promo and promo["all_rejected"] else "")
            add(f"dd{lab}GateNote", note, f"{lab} gate statement (empty unless every step was rejected)",
                "all_rejected")
        ret = {r["method"]: r for r in self.retention()}
        head = (ret.get("sdft") or next(iter(ret.values()), None) or {}).get("headline")
        add("ddRetentionHeadline", {"filler": "filler-only held-out text", "val": "the runbook validation split"}.get(
            head) if head else None, "headline retention split", "retention_ppl*.json headline")
        return items


# --- writing ---------------------------------------------------------------------------------

def paired_md(label, base, treat, r) -> str:
    return (f"| {label} (`{treat}` - `{base}`) | {r['s']['n']} | "
            f"{ci_cell(r['s']['mean_diff'], *r['s']['ci95'], signed=True)} | "
            f"{ci_cell(r['b']['mean_diff'], *r['b']['ci95'], signed=True)} | {fnum(r['b']['p_two_sided'])} |")


def paired_tex(label, r) -> list[str]:
    return [tex_escape(label), str(r["s"]["n"]), ci_cell(r["s"]["mean_diff"], *r["s"]["ci95"], signed=True),
            ci_cell(r["b"]["mean_diff"], *r["b"]["ci95"], signed=True)]


def gate_words(gate: dict | None, gate_path: str) -> str:
    """The probe gate's outcome (run_phase's gate.json) in one sentence."""
    if gate is None:
        return f"No gate record (`{gate_path}`): whether the probe gate ran, and how it ended, is not known."
    if gate.get("opt_out"):
        return f"The profile opted out of the probe gate: {gate['opt_out']}. The suite ran whatever the probe shows."
    if gate.get("failed"):
        return (f"**The probe gate failed** ({'; '.join(map(str, gate['failed']))}): the base model does not read "
                f"its task, and run_phase stopped before the suite.")
    thresholds = ", ".join(f"{k} {v}" for k, v in sorted((gate.get("thresholds") or {}).items()))
    return f"The probe gate passed ({thresholds or 'no thresholds'})."


def probe_md(ev: dict) -> list[str]:
    """The registry's "Base model probe" section from read_probe's evidence."""
    md = ["", "## Base model probe (does the base read its task?)", ""]
    res = ev["result"]
    if res is None:
        md += [f"_No probe result (`{ev['path']}`)._", ""]
    else:
        st = res.get("settings") if isinstance(res.get("settings"), dict) else {}
        md += [f"From `{ev['path']}` (paper/scripts/probe_base.py: the first {st.get('per_family', NA)} held-out tasks "
               f"per family, {st.get('samples', NA)} samples per task at T = {st.get('temperature', NA)}, seed "
               f"{st.get('seed', NA)}). Swap gap: NLL of a task's optimal answer and its EOS after another instance's "
               "prompt minus after its own, nats per answer, 95% bootstrap CI over tasks (about 0 for a base that "
               "ignores its instance). Well-formed: share of samples with the shape the instance asks for (random "
               "answers' in brackets). Reward: mean per-sample reward / random answers' (ratio). Distinct greedy: "
               "distinct greedy answers / tasks. Best-of-N: mean best of the N samples / random search's best of N "
               "random answers.", "", "| " + " | ".join(PROBE_HEADER) + " |", "|---" * len(PROBE_HEADER) + "|"]
        md += ["| " + " | ".join(row) + " |" for row in probe_table(res)] + [""]
    return md + [gate_words(ev["gate"], ev["gate_path"])]


def probe_tex(ev: dict) -> str:
    rows = probe_table(ev["result"]) if ev["result"] is not None else []
    return tex_table("lr" + "c" * (len(PROBE_HEADER) - 2), [tex_escape(h) for h in PROBE_HEADER],
                     [[tex_escape(c) for c in r] for r in rows], "no probe result yet")


def main() -> int:
    p = argparse.ArgumentParser(description="Fill the paper's results tables from the runs.")
    p.add_argument("--runs_dir", default="runs/suite", help="suite run directories (+ retention_ppl*.json)")
    p.add_argument("--registry", default="paper/04_results_registry.md", help="output Markdown registry")
    p.add_argument("--latex_dir", default="paper/latex/tables", help="output directory for LaTeX tables and setup.tex")
    p.add_argument("--pretrain_dir", default="",
                   help="pretraining run (model_config.json, pretrain_config.json, metrics.jsonl); default: the "
                        "directory of the base runs' --ckpt")
    p.add_argument("--probe_dir", default="",
                   help="the base-model probe (probe.json, gate.json); default: probe/ beside --runs_dir")
    args = p.parse_args()
    if not os.path.isdir(args.runs_dir):
        raise UserError(f"--runs_dir: not a directory: {args.runs_dir}")
    ev = Evidence(args.runs_dir, args.pretrain_dir or None)
    tex: dict[str, str] = {}
    md = ["# Results registry", "",
          f"Generated by `paper/scripts/fill_tables.py --runs_dir {args.runs_dir}` from the runs' `config.json`, "
          "`summary.jsonl`, per-task `result.json` / `metrics.jsonl`, `retention_ppl*.json` and the SDFT runs' "
          "`sdft_eval_report.json`; do not edit numbers by hand. Held-out tables exclude the train-split run "
          "`ttt_train_seed0` (it feeds SDFT).", ""]
    if not ev.all_runs:
        md += ["_No finished suite runs were found; the tables below are empty._", ""]

    # setup
    setup = ev.setup()
    md += ["## Setup (read from the run files)", "", "| quantity | value | macro | source |", "|---|---|---|---|"]
    md += [f"| {d} | {v if v else '(none)'} | `\\{m}` | {s} |" for m, v, d, s in setup]
    tex["setup"] = ("% Generated by paper/scripts/fill_tables.py from the run files: do not edit.\n"
                    + "".join(f"\\newcommand{{\\{m}}}{{{tex_escape(v)}}}  % {d}\n" for m, v, d, _ in setup))

    # the base-model probe: does the base read its task (run_phase gates the suite on it)
    probe_ev = read_probe(args.probe_dir or os.path.join(os.path.dirname(os.path.normpath(args.runs_dir)), "probe"))
    md += probe_md(probe_ev)
    tex["probe"] = probe_tex(probe_ev)

    # suite runs
    md += ["", "## Suite runs (held-out, full budget)", "",
           "| run | tasks | solve rate [95% CI] | mean best reward [95% CI] | samples/task |", "|---|---|---|---|---|"]
    rej = ev.rejected_methods()
    main_rows, train_lines = [], []
    for name, rows in ev.all_runs.items():
        solved = [float(bool(r["solved"])) for r in rows.values()]
        best = [float(r["best_reward"]) for r in rows.values()]
        sr, br = mean(solved), mean(best)
        (slo, shi), (blo, bhi) = bootstrap_ci(solved), bootstrap_ci(best)
        samples = mean([r.get("samples") for r in rows.values()])
        m = E1_RE.match(name)
        tag = " (gate rejected every step: base model)" if m and m.group(1) in rej else ""
        line = (f"| `{name}`{tag} | {len(rows)} | {ci_cell(sr, slo, shi)} | {ci_cell(br, blo, bhi)} | "
                f"{fnum(samples, '.0f')} |")
        if not is_heldout(name):
            train_lines.append(line)
            continue
        md.append(line)
        main_rows.append([tex_escape(name + tag), str(len(rows)), ci_cell(sr, slo, shi), ci_cell(br, blo, bhi),
                          fnum(samples, ".0f")])
    if train_lines:
        md += ["", "Train split (feeds SDFT; not a held-out result):", "",
               "| run | tasks | solve rate [95% CI] | mean best reward [95% CI] | samples/task |",
               "|---|---|---|---|---|"] + train_lines
    tex["main_results"] = tex_table("lrccr", ["run", "tasks", "solve rate", "mean best reward", "samples/task"],
                                    main_rows, "no held-out runs yet")

    # budget curves
    grid = ev.budget_grid()
    budget, bsrc = ev.budget()
    md += ["", "## Budget curves (best-of-N vs TTT main at N samples per task)", "",
           f"Budget {budget if budget else NA} samples per task ({bsrc}); N = the runbook points "
           f"{', '.join(map(str, BUDGET_ANCHORS))} scaled by budget/{BUDGET_REFERENCE} and rounded to the nearest sample count on the curves: "
           f"{', '.join(str(n) for n in grid) or NA}. Best-so-far at N = the `best_so_far` of the last `best_curve` "
           f"entry with samples <= N (0 if none); solved at N = best-so-far >= {SOLVED}. 95% bootstrap CIs over tasks.",
           ""]
    levels = ev.budget_levels()
    rand, rand_src = ev.random_baseline()
    if rand:
        md += [f"Random search (last row of each table): the expected best of N uniformly random well-formed "
               f"answers per held-out task, from `{os.path.relpath(rand_src)}` (paper/scripts/audit_tasks.py, "
               f"its 960 answers per task); an arm below it searches worse than chance. {NA}: N not audited.", ""]
    for key, title in (("best", "Mean best reward at N"), ("solve", "Solve rate at N")):
        md += [f"### {title}", "", "| seed | arm | run | tasks | " + " | ".join(f"N={n}" for n in grid) + " |",
               "|---|---|---|---|" + "---|" * len(grid)]
        for lv in levels:
            n_tasks = max((lv["at"][n]["n"] for n in grid), default=0)
            md.append(f"| {lv['seed']} | {lv['arm']} | `{lv['run']}` | {n_tasks} | "
                      + " | ".join(ci_cell(lv["at"][n][key], *lv["at"][n][key + "_ci"]) for n in grid) + " |")
        if rand:
            vals = rand.get("mean_best" if key == "best" else "solve_rate") or {}
            md.append(f"| - | random search | `audit.json` | {rand.get('n_tasks', NA)} | "
                      + " | ".join(fnum(vals[str(n)]) if isinstance(vals.get(str(n)), (int, float)) else NA
                                   for n in grid) + " |")
        md.append("")
    missing = [f"`{lv['run']}`: {lv['missing']}" for lv in levels if lv["missing"]]
    if missing:
        md += ["Tasks without a best-so-far curve (left out of the budget tables): " + ", ".join(missing) + ".", ""]
    tex["budget"] = tex_table("ll" + "c" * len(grid), ["seed", "arm"] + [f"$N={n}$" for n in grid],
                              [[lv["seed"], lv["arm"]] + [f"{fnum(lv['at'][n]['solve'])} / {fnum(lv['at'][n]['best'])}"
                                                          for n in grid] for lv in levels], "no budget curves yet")
    bp = ev.budget_paired()
    md += ["### TTT main minus best-of-N at each N (paired: same tasks, same seed)", "",
           "| seed | N | tasks | delta solve rate [95% CI] | delta mean best reward [95% CI] | p (best reward) |",
           "|---|---|---|---|---|---|"]
    for r in bp:
        md.append(f"| {r['seed']} | {r['N']} | {r['n']} | {ci_cell(r['solve']['mean_diff'], *r['solve']['ci95'], True)} | "
                  f"{ci_cell(r['best']['mean_diff'], *r['best']['ci95'], True)} | {fnum(r['best']['p_two_sided'])} |")
    tex["budget_paired"] = tex_table("llrcc", ["seed", "$N$", "tasks", r"$\Delta$ solve rate", r"$\Delta$ best reward"],
                                     [[r["seed"], str(r["N"]), str(r["n"]),
                                       ci_cell(r["solve"]["mean_diff"], *r["solve"]["ci95"], True),
                                       ci_cell(r["best"]["mean_diff"], *r["best"]["ci95"], True)] for r in bp],
                                     "no paired budget curves yet")
    fams = ev.budget_families()
    md += ["", "### Per family (seeds pooled: mean over tasks x seeds; cell = solve rate / mean best reward)", "",
           "| family | arm | tasks x seeds | " + " | ".join(f"N={n}" for n in grid) + " |",
           "|---|---|---|" + "---|" * len(grid)]
    for f, arms in fams.items():
        for arm, per_n in arms.items():
            md.append(f"| {f} | {arm} | {max(v['n'] for v in per_n.values())} | "
                      + " | ".join(f"{fnum(per_n[n]['solve'])} / {fnum(per_n[n]['best'])}" if n in per_n else NA
                                   for n in grid) + " |")

    # paired comparisons at the full budget
    comps = ev.comparisons()
    results = {}
    for section, pairs in comps.items():
        for label, base, treat in pairs:
            s, b = ev.paired(base, treat, "solved"), ev.paired(base, treat, "best_reward")
            if s and b:
                results[(section, label)] = (label, base, treat, {"s": s, "b": b})
    hdr = ["| comparison | tasks | delta solve rate [95% CI] | delta mean best reward [95% CI] | p (best reward) |",
           "|---|---|---|---|---|"]
    md += ["", "## Paired comparisons (same tasks, same seed; treatment minus baseline, full budget)", ""] + hdr
    md += [paired_md(*v) for (sec, _), v in results.items() if sec == "main"]
    md += ["", "### Power (from this run's paired differences)", "",
           "Per-task s.d. of the paired difference and the share of discordant tasks (exactly one arm solved), and "
           f"the held-out tasks a paired comparison needs to exclude 0 with 80% power at a true difference of "
           f"{POWER_EFFECT} (`stats.tasks_needed`).", "",
           "| comparison | tasks | discordant (solve) | s.d. delta solve | tasks needed (solve) | s.d. delta best reward "
           "| tasks needed (best reward) |", "|---|---|---|---|---|---|---|"]
    for (sec, _), (label, base, treat, r) in results.items():
        if sec == "main":
            md.append(f"| {label} | {r['s']['n']} | {fnum(r['s']['discordant'])} | {fnum(r['s']['sd_diff'])} | "
                      f"{tasks_needed(r['s']['sd_diff'], POWER_EFFECT) or 'n/a'} | {fnum(r['b']['sd_diff'])} | "
                      f"{tasks_needed(r['b']['sd_diff'], POWER_EFFECT) or 'n/a'} |")
    md += ["", "## Controls", "", "### Learning and compute (TTT main minus control)", ""] + hdr
    md += [paired_md(*v) for (sec, _), v in results.items() if sec == "controls"]
    md += ["", "### Ablations (ablation minus TTT main)", ""] + hdr
    md += [paired_md(*v) for (sec, _), v in results.items() if sec == "ablations"]
    md += ["", "### Consolidation: SDFT vs SFT (E1 best-of-N with the consolidated checkpoints)", ""] + hdr
    md += [paired_md(*v) for (sec, _), v in results.items() if sec == "consolidation"]
    tex["paired"] = tex_table("lrcc", ["comparison", "tasks", r"$\Delta$ solve rate", r"$\Delta$ best reward"],
                              [paired_tex(v[0], v[3]) for v in results.values()], "no paired comparisons yet")
    tex["controls"] = tex_table("lrcc", ["comparison", "tasks", r"$\Delta$ solve rate", r"$\Delta$ best reward"],
                                [paired_tex(v[0], v[3]) for (sec, _), v in results.items() if sec != "main"],
                                "no controls yet")

    # promotion and the gate
    md += ["", "### Promoted checkpoints", ""]
    e1, ret = ev.e1_runs(), ev.retention()
    promo_lines = []
    for item, what in [(e, f"`{e['run']}`") for e in e1] + [(r, f"`{r['file']}`") for r in ret]:
        lab = METHOD_LABEL.get(item["method"], item["method"])
        pr = item["promotion"]
        if pr is None:
            promo_lines.append(f"- {what} ({lab}): promoted step {NA} (no promotion record found)")
        elif pr["all_rejected"]:
            promo_lines.append(f"- {what} ({lab}): promoted step {pr['promoted_step']}; **the gate rejected every "
                               f"step: {what} measures the base model.**")
        else:
            promo_lines.append(f"- {what} ({lab}): promoted step {pr['promoted_step']}"
                               + (" (the base model)" if pr["promoted_step"] == 0 else ""))
    md += promo_lines or ["_No consolidated runs yet._"]

    # retention side by side
    md += ["", "### Retention, SDFT and SFT side by side (headline split first; val.bin next to it)", "",
           "| method | file | promoted step | headline split | headline delta ppl [95% CI] | headline relative | "
           "val.bin delta ppl [95% CI] | val.bin relative |", "|---|---|---|---|---|---|---|---|"]
    ret_rows = []

    def delta_cells(r):
        if not isinstance(r, dict) or "delta_ppl" not in r:
            return NA, NA
        ci = r.get("delta_ppl_ci95") or [None, None]
        rel = r.get("rel_delta_ppl")
        return ci_cell(r["delta_ppl"], *ci, signed=True), (f"{100 * rel:+.2f}%" if isinstance(rel, (int, float)) else NA)

    for r in sorted(ret, key=lambda r: (r["method"] != "sdft", r["method"])):
        head = r["filler"] if r["headline"] == "filler" else r["val"]
        hd, hrel = delta_cells(head)
        vd, vrel = delta_cells(r["val"])
        lab = METHOD_LABEL.get(r["method"], r["method"])
        pr = r["promotion"]
        step = (f"{pr['promoted_step']}" + (" (all rejected: base model)" if pr["all_rejected"] else "")) if pr else NA
        md.append(f"| {lab} | `{r['file']}` | {step} | {r['headline']} | {hd} | {hrel} | {vd} | {vrel} |")
        ret_rows.append([lab, tex_escape(step), r["headline"], hd, hrel.replace("%", r"\%"), vd,
                         vrel.replace("%", r"\%")])
    tex["retention"] = tex_table("lllcccc", ["method", "promoted step", "headline split",
                                                        r"headline $\Delta$ppl", "rel.", r"val.bin $\Delta$ppl", "rel."],
                                 ret_rows, "no retention measurements yet")

    # TTT learning
    learn = ev.learning()
    md += ["", "## TTT learning (per-step metrics.jsonl; mean over tasks)", "",
           "Mean sample reward at the first and the last TTT step, with a paired bootstrap CI of last minus first "
           "over tasks; KL to the base, LoRA update norm and share of constant-reward groups at the last step. "
           "If the policy does not move, the TTT rows mean nothing.", "",
           "| run | split | role | tasks | mean reward first step | mean reward last step | last - first [95% CI] | "
           "KL to base (last) | LoRA update norm (last) | constant-group share (last) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in learn:
        md.append(f"| `{r['run']}` | {r['split']} | {r['role']} | {r['n']} | {fnum(r['first'])} | {fnum(r['last'])} | "
                  f"{ci_cell(r['delta']['mean_diff'], *r['delta']['ci95'], True)} | {fnum(r['kl'], '.4f')} | "
                  f"{fnum(r['update_norm'], '.4f')} | {fnum(r['const_share'])} |")
    if not learn:
        md.append("| _no TTT metrics.jsonl with mean_reward found_ | | | | | | | | | |")
    tex["learning"] = tex_table("lllrcccc", ["run", "split", "tasks", "first", "last", r"$\Delta$ (last$-$first)",
                                              "KL", "update norm"],
                                [[tex_escape(r["run"]), r["split"], str(r["n"]), fnum(r["first"]), fnum(r["last"]),
                                  ci_cell(r["delta"]["mean_diff"], *r["delta"]["ci95"], True), fnum(r["kl"], ".4f"),
                                  fnum(r["update_norm"], ".4f")] for r in learn], "no TTT metrics yet")

    # retention, every file and split
    md += ["", "## Retention (validation perplexity)", "",
           "| file | split | headline | base ppl | updated ppl | delta [95% CI] | relative |", "|---|---|---|---|---|---|---|"]
    for r in ret:
        for split, rec in (("filler", r["filler"]), ("val", r["val"])):
            if not isinstance(rec, dict) or "base_ppl" not in rec:
                continue
            ci = rec.get("delta_ppl_ci95") or [None, None]
            rel = rec.get("rel_delta_ppl")
            md.append(f"| `{r['file']}` | {'filler-only held-out' if split == 'filler' else 'val.bin'} | "
                      f"{'yes' if r['headline'] == split else ''} | {fnum(rec.get('base_ppl'))} | "
                      f"{fnum(rec.get('updated_ppl'))} | {ci_cell(rec.get('delta_ppl'), *ci, signed=True)} | "
                      f"{f'{100 * rel:+.2f}%' if isinstance(rel, (int, float)) else NA} |")
    md += ["", "## Claim-safety guardrails (runbook)", ""] + [f"- {g}" for g in GUARDRAILS] + [""]

    atomic_write_text(args.registry, "\n".join(md))
    os.makedirs(args.latex_dir, exist_ok=True)
    for name, text in tex.items():
        atomic_write_text(os.path.join(args.latex_dir, f"{name}.tex"), text)
    print(f"wrote {args.registry} and {args.latex_dir}/{{{','.join(tex)}}}.tex from {len(ev.all_runs)} runs "
          f"({len(ev.runs)} held-out)")
    return 0


if __name__ == "__main__":
    run(main)
