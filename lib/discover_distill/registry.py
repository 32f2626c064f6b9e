"""The paper's evidence, read from the suite run directories (runbook F2; DESIGN §7).

    suite = load_suite("runs/suite")
    budget_levels(suite), flops_levels(suite, flops_grid(suite)), comparisons(suite), setup(suite) ...

Small functions over one `Suite` (the loaded summaries and configs) that return rows, pairs,
curves and levels; registry_render.py writes them as the Markdown registry and the LaTeX tables
(paper/scripts/fill_tables.py) and paper/plot_results.py draws the same numbers. Paired
comparisons use the same tasks and seed on both sides (bootstrap over tasks). The train-split run
(ttt_train_*, which feeds SDFT) never enters a held-out result. A missing or unreadable input
gives None or an empty list, never an exception.
"""
from __future__ import annotations

import glob
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

from .evaluate import bootstrap_ci
from .stats import (BUDGET_ANCHORS, BUDGET_REFERENCE, best_at, budget_points, crossover, first_reach, log_levels,
                    paired_bootstrap, promotion_of, read_best_curve, read_flops_curve, read_sdft_report,
                    retention_promotion)
from .tasks.base import POLICY_NOISE, SOLVED

NA = "n/a"
ABLATIONS = ("reuse0", "adapt0", "kl0", "expected")
E1_RE = re.compile(r"^(sdft|sft)(\d*)_bestofn_seed(\d+)$")
METHOD_LABEL = {"sdft": "SDFT", "sft": "SFT"}
RUN_ORDER = ["base_bestofn", "ttt_main", "ttt_lr0", "base_bestofn_flops", "ttt_reuse0", "ttt_adapt0", "ttt_kl0",
             "ttt_expected", "sdft", "sft", "ttt_train"]


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


def run_key(name: str) -> tuple:
    """Arms first, then controls, ablations, consolidated models, the train split; seeds in order."""
    stem, _, seed = name.rpartition("_seed")
    m = E1_RE.match(name)
    stem = m.group(1) if m else stem
    return (RUN_ORDER.index(stem) if stem in RUN_ORDER else len(RUN_ORDER), name.rsplit("_seed", 1)[0],
            int(seed) if seed.isdigit() else -1, name)


def load_runs(runs_dir: str) -> dict[str, dict[str, dict]]:
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
    # fall back to the repository root when the caller runs from elsewhere
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cand = os.path.join(root, path)
    return cand if os.path.exists(cand) else path


# --- small formatting the setup values need (the renderers build on these) -------------------

def fnum(x, fmt: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return NA
    s = format(x, fmt)
    if s.startswith("-") and not s.strip("-0.e+"):  # -0.000: float noise below the printed precision, no sign
        s = ("+" if "+" in fmt else "") + s[1:]
    return s


def human(n, unit: str = "") -> str:
    if not isinstance(n, (int, float)):
        return NA
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suf}{unit}"
    return f"{n:g}{unit}"


def mean(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else None


# --- the loaded suite ------------------------------------------------------------------------

@dataclass
class Suite:
    """The suite's runs as loaded once: summaries (`all_runs`; `runs` the held-out ones), each run's
    config arguments, the seeds, and a cache of the per-task curves read from the task directories."""
    runs_dir: str
    all_runs: dict[str, dict[str, dict]]
    args: dict[str, dict]
    pretrain_dir: str | None = None
    runs: dict[str, dict[str, dict]] = field(init=False)
    seeds: list[str] = field(init=False)
    main_seeds: list[str] = field(init=False)
    cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.runs = {n: r for n, r in self.all_runs.items() if is_heldout(n)}
        self.seeds = sorted({s for n in self.runs if (s := seed_of(n)) is not None and s.isdigit()}, key=int)
        self.main_seeds = [s for s in self.seeds if f"ttt_main_seed{s}" in self.runs
                           and f"base_bestofn_seed{s}" in self.runs]


def load_suite(runs_dir: str, pretrain_dir: str | None = None) -> Suite:
    all_runs = load_runs(runs_dir)
    return Suite(runs_dir, all_runs, {n: run_args(runs_dir, n) for n in all_runs}, pretrain_dir)


def curves(suite: Suite, name: str) -> dict[str, list[dict] | None]:
    """task -> best_curve ({samples, best_so_far}): summary row, else result.json, else (TTT) metrics.jsonl."""
    key = ("samples", name)
    if key not in suite.cache:
        suite.cache[key] = {t: read_best_curve(os.path.join(suite.runs_dir, name, t), r)
                            for t, r in suite.all_runs.get(name, {}).items()}
    return suite.cache[key]


def paired(suite: Suite, base: str, treat: str, key: str) -> dict | None:
    a = suite.runs.get(base) or suite.all_runs.get(base)
    b = suite.runs.get(treat) or suite.all_runs.get(treat)
    if not a or not b:
        return None
    common = sorted(set(a) & set(b))
    if not common:
        return None
    return paired_bootstrap([float(a[t][key]) for t in common], [float(b[t][key]) for t in common])


def level(values: list[float], ci: bool = True) -> dict:
    """Solve rate and mean best reward of per-task best rewards, each with a 95% bootstrap CI
    (with `ci`; else (None, None))."""
    solved = [float(v >= SOLVED) for v in values]
    if not values:
        return {"n": 0, "solve": None, "solve_ci": (None, None), "best": None, "best_ci": (None, None)}
    return {"n": len(values), "solve": sum(solved) / len(solved),
            "solve_ci": bootstrap_ci(solved) if ci else (None, None), "best": sum(values) / len(values),
            "best_ci": bootstrap_ci(values) if ci else (None, None)}


def run_results(suite: Suite) -> list[dict]:
    """Every run at its full budget: solve rate and mean best reward with CIs, samples per task, and
    the share of its tasks whose best answer beats the policy's own answer (beats_policy, with a CI
    and its task count; None without the audit's policy answers)."""
    rej = rejected_methods(suite)
    answers, _ = policy_answers(suite)
    out = []
    for name, rows in suite.all_runs.items():
        solved = [float(bool(r["solved"])) for r in rows.values()]
        best = [float(r["best_reward"]) for r in rows.values()]
        beats = [float(float(r["best_reward"]) > answers[t]) for t, r in rows.items() if t in (answers or {})]
        m = E1_RE.match(name)
        out.append({"run": name, "heldout": is_heldout(name), "n": len(rows), "solve": mean(solved),
                    "solve_ci": bootstrap_ci(solved), "best": mean(best), "best_ci": bootstrap_ci(best),
                    "samples": mean([r.get("samples") for r in rows.values()]),
                    "beats_policy": mean(beats), "beats_policy_ci": bootstrap_ci(beats) if beats else (None, None),
                    "beats_policy_n": len(beats), "rejected": bool(m and m.group(1) in rej)})
    return out


# --- budget curves (samples) -----------------------------------------------------------------

def budget(suite: Suite) -> tuple[int | None, str]:
    """Samples per task = ttt_steps x rollouts of the TTT main run's config (else a best-of-N
    run's; else the largest TTT main sample count)."""
    names = [f"ttt_main_seed{s}" for s in suite.seeds] + [f"base_bestofn_seed{s}" for s in suite.seeds]
    for name in names:
        a = suite.args.get(name) or {}
        st, ro = a.get("ttt_steps"), a.get("rollouts")
        if isinstance(st, int) and isinstance(ro, int) and st > 0 and ro > 0:
            return st * ro, f"`{name}/config.json`: ttt_steps {st} x rollouts {ro}"
    samples = [r.get("samples") for n in suite.runs if n.startswith("ttt_main") for r in suite.runs[n].values()]
    samples = [x for x in samples if isinstance(x, (int, float)) and x > 0]
    if samples:
        return int(max(samples)), "largest `samples` in the ttt_main summaries (no config.json)"
    return None, "no ttt_main or best-of-N run"


def budget_grid(suite: Suite) -> list[int]:
    """The table's sample counts N (stats.budget_points on the sample counts the curves hold)."""
    total, _ = budget(suite)
    if not total:
        return []
    avail = set()
    for s in suite.main_seeds:
        for name in (f"base_bestofn_seed{s}", f"ttt_main_seed{s}"):
            for c in curves(suite, name).values():
                avail |= {int(p["samples"]) for p in (c or [])}
    return budget_points(total, avail)


def audit(suite: Suite) -> tuple[dict | None, str]:
    """The audit.json run_phase writes beside the held-out task file (paper/scripts/audit_tasks.py)."""
    for s in suite.main_seeds:
        path = resolve((suite.args.get(f"base_bestofn_seed{s}") or {}).get("tasks"), suite.runs_dir)
        if not path:
            continue
        audit_path = os.path.join(os.path.dirname(path), "audit.json")
        rec = read_json(audit_path)
        if isinstance(rec, dict):
            return rec, audit_path
    return None, "no audit.json beside the held-out tasks"


# The audit's baselines, in table order: random search (uniformly random well-formed answers) and the
# policy (samples of the constructive policy the corpus teaches: the prior's teacher).
BASELINES = ("random search", "policy")


def audit_levels(block, baseline: str) -> dict | None:
    """One baseline's levels {"n_tasks", "mean_best": {N: v}, "solve_rate": {N: v}} in an audit cell or
    split: random search's are the block's own keys, the policy's its "policy" entry (None in an
    audit from before the policy baseline)."""
    if not isinstance(block, dict):
        return None
    levels = block if baseline == "random search" else block.get("policy")
    return levels if isinstance(levels, dict) else None


def baseline_levels(suite: Suite, baseline: str) -> tuple[dict | None, str]:
    """(held-out levels of a baseline, source): the expected best of N of its answers per task, from
    the audit; the policy's also carry its own answer's "answer_reward" and "answer_solve_rate"."""
    rec, path = audit(suite)
    if not rec:
        return None, path
    held = audit_levels((rec.get("overall") or {}).get("heldout"), baseline)
    return (held, path) if held else (None, f"no held-out {baseline} levels in {path}")


def policy_answers(suite: Suite) -> tuple[dict[str, float] | None, str]:
    """(task_id -> reward of the policy's own answer (noise 0), source) from the audit's
    policy_answer_reward; None in an audit without it."""
    rec, path = audit(suite)
    answers = rec.get("policy_answer_reward") if rec else None
    if not isinstance(answers, dict):
        return None, path if not rec else f"no policy_answer_reward in {path}"
    return {t: float(v) for t, v in answers.items() if isinstance(v, (int, float))}, path


def at_n(suite: Suite, name: str, n: float) -> dict[str, float]:
    """task -> best reward within the first n samples, for the tasks whose curve has an entry at or
    below n: a task whose curve starts above n (TTT main's first step draws all its rollouts at
    once) has no value at n, rather than a 0 that would be a number about nothing."""
    return {t: v for t, c in curves(suite, name).items() if c and (v := best_at(c, n, before=None)) is not None}


def budget_levels(suite: Suite) -> list[dict]:
    """Per seed and arm: solve rate and mean best reward at each N (over the tasks with a value at N;
    "n" 0 and None levels where the arm has none, e.g. below TTT's first step)."""
    grid = budget_grid(suite)
    out = []
    for s in suite.main_seeds:
        for arm, name in (("best-of-N", f"base_bestofn_seed{s}"), ("TTT main", f"ttt_main_seed{s}")):
            out.append({"seed": s, "arm": arm, "run": name,
                        "at": {n: level(list(at_n(suite, name, n).values())) for n in grid},
                        "missing": sum(1 for c in curves(suite, name).values() if not c)})
    return out


def budget_paired(suite: Suite) -> list[dict]:
    """TTT main minus best-of-N at each N, per seed, paired over the tasks both arms have a value
    at N for; a row with no such task is kept with "n" 0 and "solve", "best" None (rendered n/a)."""
    out = []
    for s in suite.main_seeds:
        for n in budget_grid(suite):
            a, b = at_n(suite, f"base_bestofn_seed{s}", n), at_n(suite, f"ttt_main_seed{s}", n)
            common = sorted(set(a) & set(b))
            if not common:
                out.append({"seed": s, "N": n, "n": 0, "solve": None, "best": None})
                continue
            out.append({"seed": s, "N": n, "n": len(common),
                        **solve_and_best([a[t] for t in common], [b[t] for t in common])})
    return out


def solve_and_best(base: list[float], treat: list[float]) -> dict:
    """Paired treat minus base over the same tasks: solve rate (best >= SOLVED) and best reward."""
    return {"solve": paired_bootstrap([float(x >= SOLVED) for x in base], [float(y >= SOLVED) for y in treat]),
            "best": paired_bootstrap(base, treat)}


def budget_families(suite: Suite) -> dict[str, dict[str, dict[int, dict]]]:
    """family -> arm -> N -> {solve, best, n}, seeds pooled (mean over tasks x seeds with a value at
    N; an N at which the arm has none is absent)."""
    fam = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    grid = budget_grid(suite)
    for s in suite.main_seeds:
        for arm, name in (("best-of-N", f"base_bestofn_seed{s}"), ("TTT main", f"ttt_main_seed{s}")):
            for n in grid:
                for t, v in at_n(suite, name, n).items():
                    fam[suite.runs[name][t].get("family", "?")][arm][n].append(v)
    return {f: {arm: {n: {"n": len(v), "solve": mean([float(x >= SOLVED) for x in v]), "best": mean(v)}
                      for n, v in per_n.items()} for arm, per_n in arms.items()} for f, arms in sorted(fam.items())}


def budget_family_paired(suite: Suite) -> list[dict]:
    """TTT main minus best-of-N at each N, per family, paired over the (seed, task) pairs both arms
    have a value at N for (the seeds pooled): where, family by family, TTT's samples pay. Rows with
    no such pair are left out."""
    grid, out = budget_grid(suite), []
    pairs = defaultdict(lambda: defaultdict(list))   # family -> N -> [(best-of-N, TTT)]
    for s in suite.main_seeds:
        base, treat = f"base_bestofn_seed{s}", f"ttt_main_seed{s}"
        for n in grid:
            a, b = at_n(suite, base, n), at_n(suite, treat, n)
            for t in sorted(set(a) & set(b)):
                pairs[suite.runs[base][t].get("family", "?")][n].append((a[t], b[t]))
    for fam in sorted(pairs):
        for n in grid:
            if ab := pairs[fam].get(n):
                out.append({"family": fam, "N": n, "n": len(ab),
                            **solve_and_best([x for x, _ in ab], [y for _, y in ab])})
    return out


# --- curves against compute (DESIGN §7: "compute on the x-axis") -----------------------------

FLOPS_ARMS = (("best-of-N", ("base_bestofn_flops", "base_bestofn")), ("TTT main", ("ttt_main",)),
              ("ttt_lr0", ("ttt_lr0",)))
FLOPS_LEVELS = 6                   # log-spaced FLOPs levels in the tables
FLOPS_SOURCES = {"recorded": "recorded in the curve", "metrics": "per step from metrics.jsonl",
                 "estimated": "estimated pro rata to samples"}


def flops_curves(suite: Suite, name: str) -> dict[str, tuple[list[dict] | None, str | None]]:
    """task -> (curve [{flops, samples, best_so_far}], source) (stats.read_flops_curve)."""
    key = ("flops", name)
    if key not in suite.cache:
        suite.cache[key] = {t: read_flops_curve(os.path.join(suite.runs_dir, name, t), r)
                            for t, r in suite.all_runs.get(name, {}).items()}
    return suite.cache[key]


def flops_seeds(suite: Suite) -> list[str]:
    """Seeds with a TTT main run and a best-of-N run."""
    return [s for s in suite.seeds if f"ttt_main_seed{s}" in suite.runs
            and any(f"{stem}_seed{s}" in suite.runs for stem in FLOPS_ARMS[0][1])]


def flops_arm_runs(suite: Suite, seed: str) -> list[tuple[str, str]]:
    """(arm, run) on the FLOPs axis for one seed: best-of-N is the FLOPs-matched run when there is
    one (it samples more, from the same per-task generators, so its curve extends the other's)."""
    out = []
    for arm, stems in FLOPS_ARMS:
        name = next((f"{st}_seed{seed}" for st in stems if f"{st}_seed{seed}" in suite.runs), None)
        if name:
            out.append((arm, name))
    return out


def task_flops_curves(suite: Suite, name: str, family: str | None = None) -> dict[str, list[dict]]:
    """task -> FLOPs curve for the tasks of a run that have one (of one family)."""
    rows = suite.all_runs.get(name, {})
    return {t: c for t, (c, _) in flops_curves(suite, name).items()
            if c and (family is None or rows[t].get("family", "?") == family)}


def flops_spent(suite: Suite, name: str) -> dict:
    """FLOPs per task at the end of a run (mean, min, max over tasks with a curve) and the curve sources."""
    cs = flops_curves(suite, name)
    ends = [c[-1]["flops"] for c, _ in cs.values() if c]
    sources = defaultdict(int)
    for c, src in cs.values():
        sources[src if c else "none"] += 1
    return {"n": len(ends), "mean": mean(ends), "min": min(ends, default=None), "max": max(ends, default=None),
            "sources": dict(sources)}


def flops_grid(suite: Suite, k: int = FLOPS_LEVELS) -> list[float]:
    """k log-spaced FLOPs levels from TTT main's cheapest first step to its most expensive task's
    total (all seeds), at two significant digits inside that range (stats.log_levels)."""
    firsts, ends = [], []
    for s in flops_seeds(suite):
        for c in task_flops_curves(suite, f"ttt_main_seed{s}").values():
            firsts.append(c[0]["flops"])
            ends.append(c[-1]["flops"])
    firsts, ends = [x for x in firsts if x > 0], [x for x in ends if x > 0]
    return log_levels(min(firsts), max(ends), k) if firsts and ends else []


def values_at(curves_by_task: dict, f: float) -> dict:
    """task -> best reward within f FLOPs (0 before its first point; its final best after its last)."""
    return {t: best_at(c, f, key="flops") for t, c in curves_by_task.items()}


def reaches(curves_by_task: dict, f: float) -> bool:
    """Is f within the arm's range: has some task of it a point at or below f (below its cheapest
    first point the arm has no value, as on the samples axis before TTT's first step), and does some
    task spend at least f FLOPs?"""
    return (bool(curves_by_task) and min(c[0]["flops"] for c in curves_by_task.values()) <= f
            <= max(c[-1]["flops"] for c in curves_by_task.values()))


def arm_level(curves_by_task: dict, f: float, ci: bool = True) -> dict | None:
    """level() within f FLOPs, with "held": some task's run ended below f (its final best is held: a
    lower bound); None outside the arm's range (below its cheapest first point, beyond its largest
    FLOPs)."""
    if not reaches(curves_by_task, f):
        return None
    lv = level(list(values_at(curves_by_task, f).values()), ci)
    lv["held"] = any(c[-1]["flops"] < f for c in curves_by_task.values())
    return lv


def flops_levels(suite: Suite, grid: list[float]) -> list[dict]:
    """Per seed and arm: level at each FLOPs level of the grid (None beyond the arm's range)."""
    out = []
    for s in flops_seeds(suite):
        for arm, name in flops_arm_runs(suite, s):
            cs = task_flops_curves(suite, name)
            out.append({"seed": s, "arm": arm, "run": name, "n": len(cs), "at": {f: arm_level(cs, f) for f in grid}})
    return out


def paired_at(base: dict, treat: dict, f: float) -> dict | None:
    """treat minus base within f FLOPs on their common tasks (keys), solved and best reward; None
    when either arm does not reach f or they share no task."""
    common = sorted(set(base) & set(treat))
    if not common or not reaches(base, f) or not reaches(treat, f):
        return None
    a, b = values_at({t: base[t] for t in common}, f), values_at({t: treat[t] for t in common}, f)
    return {"F": f, "n": len(common), **solve_and_best([a[t] for t in common], [b[t] for t in common])}


def flops_paired(suite: Suite, grid: list[float]) -> list[dict]:
    """TTT main and ttt_lr0 minus best-of-N at each FLOPs level both arms reach, per seed (paired on tasks)."""
    out = []
    for s in flops_seeds(suite):
        arms = dict(flops_arm_runs(suite, s))
        base = task_flops_curves(suite, arms["best-of-N"])
        for arm in ("TTT main", "ttt_lr0"):
            if arm not in arms:
                continue
            treat = task_flops_curves(suite, arms[arm])
            for f in grid:
                if (r := paired_at(base, treat, f)) is not None:
                    out.append({"seed": s, "label": f"{arm} - best-of-N", "base": arms["best-of-N"],
                                "treat": arms[arm], **r})
    return out


def pooled_flops_curves(suite: Suite, arm: str, family: str | None = None) -> dict[tuple[str, str], list[dict]]:
    """(seed, task) -> FLOPs curve of an arm over every seed (of one family)."""
    return {(s, t): c for s in flops_seeds(suite) for a, n in flops_arm_runs(suite, s) if a == arm
            for t, c in task_flops_curves(suite, n, family).items()}


def flops_families(suite: Suite, grid: list[float]) -> dict[str, dict]:
    """family -> {"levels": arm -> F -> level without CIs (None beyond the arm's range),
    "paired": [TTT main minus best-of-N at each F both reach]}, tasks x seeds pooled ((seed, task) pairs)."""
    fams = sorted({r.get("family", "?") for s in flops_seeds(suite) for _, n in flops_arm_runs(suite, s)
                   for r in suite.runs[n].values()})
    out = {}
    for fam in fams:
        pooled = {arm: pooled_flops_curves(suite, arm, fam) for arm, _ in FLOPS_ARMS}
        out[fam] = {"levels": {arm: {f: arm_level(cs, f, ci=False) for f in grid} for arm, cs in pooled.items() if cs},
                    "paired": [r for f in grid if (r := paired_at(pooled["best-of-N"], pooled["TTT main"], f))]}
    return out


def baseline_flops(suite: Suite, baseline: str, family: str | None = None) -> dict | None:
    """A baseline of the audit (BASELINES) on the FLOPs axis: random search and the policy run no
    model, so their N answers are placed at the sampling FLOPs of N best-of-N samples (what N samples
    of the model cost; best-of-N's FLOPs per sample: mean over its tasks x seeds, of the family).
    {"per_sample", "points": [(N, F, mean best, solve rate)], "n_tasks", "source"} from the audit
    (held-out: overall, or the task-weighted mean of the family's cells); None without either."""
    rec, path = audit(suite)
    if not rec:
        return None
    if family is None:
        cells = [audit_levels((rec.get("overall") or {}).get("heldout"), baseline)]
    else:
        cells = [audit_levels(c, baseline) for c in rec.get("cells") or [] if isinstance(c, dict)
                 and c.get("split") == "heldout" and c.get("family") == family]
    cells = [c for c in cells if c]
    per_sample = []
    for s in flops_seeds(suite):
        name = dict(flops_arm_runs(suite, s))["best-of-N"]
        per_sample += [r["flops"] / r["samples"] for r in suite.runs[name].values()
                       if (family is None or r.get("family", "?") == family)
                       and isinstance(r.get("flops"), (int, float)) and isinstance(r.get("samples"), (int, float))
                       and r["samples"] > 0]
    if not cells or not per_sample:
        return None
    cost = sum(per_sample) / len(per_sample)
    weights = [c.get("n_tasks") or 0 for c in cells]
    points = []
    for key in sorted({k for c in cells for k in (c.get("mean_best") or {})}, key=float):
        best = [(c.get("mean_best") or {}).get(key) for c in cells]
        solve = [(c.get("solve_rate") or {}).get(key) for c in cells]
        if not all(isinstance(x, (int, float)) for x in best + solve) or sum(weights) <= 0:
            continue
        n = float(key)
        points.append((n, n * cost, sum(w * x for w, x in zip(weights, best)) / sum(weights),
                       sum(w * x for w, x in zip(weights, solve)) / sum(weights)))
    return {"per_sample": cost, "points": points, "n_tasks": sum(weights), "source": path} if points else None


def baseline_at(rand: dict | None, f: float) -> dict | None:
    """A baseline (baseline_flops) within f FLOPs: the largest audited N whose FLOPs fit (a lower
    bound between audited N; "held" above the largest); None when no audited N fits."""
    pts = [p for p in (rand or {}).get("points", []) if p[1] <= f]
    if not pts:
        return None
    n, _, best, solve = pts[-1]
    return {"N": n, "best": best, "solve": solve, "held": pts[-1] is rand["points"][-1] and f > pts[-1][1]}


def reach_levels(suite: Suite, seed: str) -> list[tuple[str, float]]:
    """Mean best reward levels for "FLOPs to reach": each arm's final mean best reward at its full
    budget (best-of-N matched in samples, TTT main, best-of-N matched in FLOPs), for one seed."""
    out = []
    for label, name in (("best-of-N final (samples-matched)", f"base_bestofn_seed{seed}"),
                        ("TTT main final", f"ttt_main_seed{seed}"),
                        ("best-of-N final (FLOPs-matched)", f"base_bestofn_flops_seed{seed}")):
        rows = suite.runs.get(name)
        if rows:
            out.append((label, mean([float(r["best_reward"]) for r in rows.values()])))
    return out


def flops_to_reach(suite: Suite) -> list[dict]:
    """Per seed and reward level: the FLOPs at which each arm's mean best reward first reaches it
    (None: not within its range), random search's and the policy's from their audited points."""
    out = []
    bases = {b: f for b in BASELINES if (f := baseline_flops(suite, b))}
    for s in flops_seeds(suite):
        for label, value in reach_levels(suite, s):
            at = {arm: first_reach(list(task_flops_curves(suite, name).values()), value)
                  for arm, name in flops_arm_runs(suite, s)}
            for b, rand in bases.items():
                at[b] = next((p[1] for p in rand["points"] if p[2] >= value - 1e-12), None)
            out.append({"seed": s, "label": label, "value": value, "at": at})
    return out


def flops_crossover(suite: Suite, n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Per seed: where the mean best reward curves of TTT main and best-of-N cross on the FLOPs axis,
    with a bootstrap CI over tasks (paired across the arms; stats.crossover), within the range both
    arms reach."""
    out = []
    for s in flops_seeds(suite):
        arms = dict(flops_arm_runs(suite, s))
        a, b = task_flops_curves(suite, arms["best-of-N"]), task_flops_curves(suite, arms["TTT main"])
        common = sorted(set(a) & set(b))
        if not common:
            continue
        res = crossover([a[t] for t in common], [b[t] for t in common], n_boot=n_boot, seed=seed)
        out.append({"seed": s, "base": arms["best-of-N"], "treat": arms["TTT main"], "n": len(common), **res})
    return out


def flops_series(suite: Suite, xs: list[float], family: str | None = None) -> dict[str, list[list[float]]]:
    """arm -> at each x, the best rewards of every task x seed within x FLOPs ([] beyond the arm's
    range; for the figure)."""
    out = {}
    for arm, _ in FLOPS_ARMS:
        pooled = pooled_flops_curves(suite, arm, family)
        if pooled:
            out[arm] = [list(values_at(pooled, x).values()) if reaches(pooled, x) else [] for x in xs]
    return out


# --- consolidation ---------------------------------------------------------------------------

def e1_runs(suite: Suite) -> list[dict]:
    """E1 runs (sdft{STEPS}/sft{STEPS}_bestofn_seed{s}) with the promotion of their checkpoint."""
    out = []
    for name in sorted(suite.runs):
        m = E1_RE.match(name)
        if not m:
            continue
        ckpt = suite.args.get(name, {}).get("ckpt")
        rep = read_sdft_report(resolve(ckpt, suite.runs_dir))
        out.append({"run": name, "method": m.group(1), "steps": m.group(2), "seed": m.group(3), "ckpt": ckpt,
                    "promotion": promotion_of(rep)})
    return out


def retention(suite: Suite) -> list[dict]:
    """retention_ppl*.json (retention_ppl.json = SDFT, retention_ppl_<method>.json), headline split
    = filler when measured (or as the file says), and the promotion of the measured model."""
    out = []
    for path in sorted(glob.glob(os.path.join(glob.escape(suite.runs_dir), "retention_ppl*.json"))):
        r = read_json(path)
        if not isinstance(r, dict):
            continue
        fname = os.path.basename(path)
        method = fname[len("retention_ppl"):-len(".json")].strip("_") or "sdft"
        promo = retention_promotion(r, lambda p: resolve(p, suite.runs_dir))
        filler = r.get("filler") if isinstance(r.get("filler"), dict) else None
        headline = r.get("headline") or ("filler" if filler else "val")
        if headline == "filler" and not filler:
            headline = "val"
        out.append({"file": fname, "method": method, "val": r, "filler": filler, "headline": headline,
                    "promotion": promo})
    return out


def rejected_methods(suite: Suite) -> set[str]:
    """Consolidation methods whose gate rejected every step (their rows measure the base model)."""
    rej = {e["method"] for e in e1_runs(suite) if e["promotion"] and e["promotion"]["all_rejected"]}
    return rej | {r["method"] for r in retention(suite) if r["promotion"] and r["promotion"]["all_rejected"]}


# --- paired comparisons at the full budget ---------------------------------------------------

def comparisons(suite: Suite) -> dict[str, list[tuple[str, str, str]]]:
    """section -> (label, baseline run, treatment run) for every pair present."""
    rej = rejected_methods(suite)
    e1_all = e1_runs(suite)
    sec = {"main": [], "controls": [], "ablations": [], "consolidation": []}
    for s in suite.seeds:
        sec["main"].append((f"TTT main vs best-of-N (seed {s})", f"base_bestofn_seed{s}", f"ttt_main_seed{s}"))
        sec["controls"].append((f"TTT main minus ttt_lr0, no learning (seed {s})", f"ttt_lr0_seed{s}",
                                f"ttt_main_seed{s}"))
        sec["controls"].append((f"TTT main minus FLOPs-matched best-of-N (seed {s})",
                                f"base_bestofn_flops_seed{s}", f"ttt_main_seed{s}"))
        for abl in ABLATIONS:
            sec["ablations"].append((f"ablation {abl} vs TTT main (seed {s})", f"ttt_main_seed{s}",
                                     f"ttt_{abl}_seed{s}"))
        e1 = [e for e in e1_all if e["seed"] == s]
        for e in e1:
            tag = " [gate rejected every step: base model]" if e["method"] in rej else ""
            sec["consolidation"].append((f"{e['method']}{e['steps']} best-of-N vs base best-of-N (seed {s}){tag}",
                                         f"base_bestofn_seed{s}", e["run"]))
        for e in (x for x in e1 if x["method"] == "sdft"):
            for f in (x for x in e1 if x["method"] == "sft" and x["steps"] == e["steps"]):
                tag = "".join(f" [{m.upper()}: gate rejected every step]" for m in ("sdft", "sft") if m in rej)
                sec["consolidation"].append((f"SDFT minus SFT, E1 best-of-N (seed {s}){tag}", f["run"], e["run"]))
    return {k: [p for p in v if p[1] in suite.runs and p[2] in suite.runs] for k, v in sec.items()}


def paired_results(suite: Suite) -> dict[tuple[str, str], tuple[str, str, str, dict]]:
    """(section, label) -> (label, baseline, treatment, {"s": solved pair, "b": best-reward pair})."""
    out = {}
    for section, pairs in comparisons(suite).items():
        for label, base, treat in pairs:
            s, b = paired(suite, base, treat, "solved"), paired(suite, base, treat, "best_reward")
            if s and b:
                out[(section, label)] = (label, base, treat, {"s": s, "b": b})
    return out


# --- TTT learning ----------------------------------------------------------------------------

def learning(suite: Suite) -> list[dict]:
    """Per TTT run: mean sample reward at the first and last step (paired over tasks), KL to the
    base, LoRA update norm and constant-group share at the last step (metrics.jsonl)."""
    names = [f"ttt_main_seed{s}" for s in suite.seeds] + [f"ttt_lr0_seed{s}" for s in suite.seeds]
    names += sorted(n for n in suite.all_runs if n.startswith("ttt_train"))
    out = []
    for name in names:
        if name not in suite.all_runs:
            continue
        first, last, kl, upd, const = [], [], [], [], []
        for t in suite.all_runs[name]:
            m = sorted((r for r in read_jsonl(os.path.join(suite.runs_dir, name, t, "metrics.jsonl"))
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


# --- setup numbers ---------------------------------------------------------------------------

def pretrain_setup(suite: Suite, add) -> None:
    """Model and pretraining macros from the pretraining run (--pretrain_dir, else the ckpt's directory)."""
    ref = next((n for n in [f"base_bestofn_seed{s}" for s in suite.seeds] + [f"ttt_main_seed{s}" for s in suite.seeds]
                + sorted(n for n in suite.runs if not E1_RE.match(n))
                if n in suite.args and suite.args[n].get("ckpt")), None)
    pre_dir = suite.pretrain_dir
    if not pre_dir and ref:
        ckpt = resolve(suite.args[ref]["ckpt"], suite.runs_dir)
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


def budget_setup(suite: Suite, add) -> None:
    """TTT hyper-parameters (TTT main's config), the budget and its table points."""
    tm = next((n for n in (f"ttt_main_seed{s}" for s in suite.seeds) if suite.args.get(n)), None)
    ta = suite.args.get(tm, {}) if tm else {}
    src_t = f"`{tm}/config.json`" if tm else "no ttt_main config.json"
    total, bsrc = budget(suite)
    for macro, key, desc in (("ddTTTSteps", "ttt_steps", "TTT steps"), ("ddRollouts", "rollouts", "rollouts per step"),
                             ("ddMaxNewTokens", "max_new_tokens", "max new tokens per sample"),
                             ("ddLoraRank", "lora_rank", "LoRA rank"), ("ddLoraAlpha", "lora_alpha", "LoRA alpha"),
                             ("ddTTTLR", "lr", "TTT learning rate"), ("ddKLLambda", "kl_lambda", "KL shaping weight"),
                             ("ddGroups", "groups", "start states per step (reuse)"),
                             ("ddTemperature", "temperature", "sampling temperature")):
        add(macro, ta.get(key), desc, src_t + f" {key}")
    add("ddBudget", total, "samples per task (ttt_steps x rollouts)", bsrc)
    add("ddBudgetPoints", ", ".join(str(n) for n in budget_grid(suite)) or None, "table sample counts N",
        "budget x anchors / reference, nearest sample count on the curves")
    add("ddBudgetAnchors", ", ".join(str(a) for a in BUDGET_ANCHORS), "table points at the runbook budget",
        "discover_distill.stats.BUDGET_ANCHORS")
    add("ddBudgetReference", BUDGET_REFERENCE, "the runbook budget the anchors refer to",
        "discover_distill.stats.BUDGET_REFERENCE")
    flops = [r.get("samples") for n in suite.runs if n.startswith("base_bestofn_flops")
             for r in suite.runs[n].values()]
    flops = [x for x in flops if isinstance(x, (int, float))]
    add("ddBudgetFlops", int(round(mean(flops))) if flops else None, "FLOPs-matched best-of-N samples per task",
        "base_bestofn_flops summaries, mean samples")


def task_setup(suite: Suite, add) -> None:
    """Task counts, families, solved threshold and seeds."""
    def task_count(names, kind):
        for n in names:
            a = suite.args.get(n) or {}
            c = count_lines(resolve(a.get("tasks"), suite.runs_dir))
            if c is not None:
                mt = a.get("max_tasks") or 0
                return (min(c, mt) if mt else c), f"`{a.get('tasks')}` ({kind}, via `{n}/config.json`)"
        for n in names:
            if n in suite.all_runs:
                return len(suite.all_runs[n]), f"`{n}/summary.jsonl` rows"
        return None, f"no {kind} run"
    held = [f"base_bestofn_seed{s}" for s in suite.seeds] + [f"ttt_main_seed{s}" for s in suite.seeds]
    n_held, src_h = task_count(held, "held-out")
    add("ddHeldoutTasks", n_held, "held-out tasks", src_h)
    n_train, src_tr = task_count(sorted(n for n in suite.all_runs if n.startswith("ttt_train"))
                                 or ["ttt_train_seed0"], "train")
    add("ddTrainTasks", n_train, "train-split tasks (TTT for demonstrations)", src_tr)
    fams = sorted({r.get("family") for n in held if n in suite.runs for r in suite.runs[n].values() if r.get("family")})
    add("ddNumFamilies", len(fams) if fams else None, "task families (held-out)", "held-out summaries, family")
    add("ddFamilyList", ", ".join(fams) or None, "family names", "held-out summaries, family")
    add("ddSolvedThreshold", SOLVED, "reward at which a task counts as solved", "discover_distill.tasks.base.SOLVED")
    add("ddSeeds", ", ".join(suite.seeds) or None, "seeds", "run directory names *_seed{s}")
    add("ddNumSeeds", len(suite.seeds) if suite.seeds else None, "number of seeds", "run directory names")
    abl = sorted({seed_of(n) for n in suite.runs if n.startswith(tuple(f"ttt_{a}_seed" for a in ABLATIONS))}, key=int)
    add("ddAblationSeeds", ", ".join(abl) or None, "seeds of the ablation runs", "run directory names ttt_<ablation>_seed{s}")


def policy_setup(suite: Suite, add) -> None:
    """The policy baseline: its attempts' noise, and its own answer's mean reward and solve rate on the held-out tasks."""
    add("ddPolicyNoise", POLICY_NOISE, "largest per-step noise of the policy's attempts",
        "discover_distill.tasks.base.POLICY_NOISE")
    held = baseline_levels(suite, "policy")[0] or {}
    src = audit(suite)[1]
    for macro, key, desc in (("ddPolicyAnswerReward", "answer_reward",
                              "mean reward of the policy's own answer (noise 0), held-out tasks"),
                             ("ddPolicyAnswerSolved", "answer_solve_rate",
                              "share of held-out tasks the policy's own answer solves")):
        add(macro, fnum(held[key]) if isinstance(held.get(key), (int, float)) else None, desc,
            f"{src}: overall.heldout.policy.{key}")


def consolidation_setup(suite: Suite, add) -> None:
    """SDFT / SFT training settings, promoted steps, the gate statement and the headline retention split."""
    e1 = e1_runs(suite)
    ret_all = retention(suite)
    for method in ("sdft", "sft"):
        lab = METHOD_LABEL[method]
        e = next((x for x in e1 if x["method"] == method), None)
        sdir = os.path.dirname(resolve(e["ckpt"], suite.runs_dir)) if e and e["ckpt"] else None
        sargs = run_args(os.path.dirname(sdir), os.path.basename(sdir)) if sdir else {}
        src_s = f"{sdir}/config.json" if sdir else f"no {method} E1 run"
        add(f"dd{lab}Steps", sargs.get("steps"), f"{lab} training steps", src_s + " steps")
        if method == "sdft":
            add("ddDemos", count_lines(resolve(sargs.get("data"), suite.runs_dir)), "SDFT demonstrations",
                src_s + " data (lines)")
            add("ddEMAAlpha", sargs.get("ema_alpha"), "teacher EMA rate", src_s + " ema_alpha")
            add("ddKLDirection", sargs.get("kl"), "per-token KL direction", src_s + " kl")
            add("ddSDFTLR", sargs.get("lr"), "SDFT learning rate", src_s + " lr")
            add("ddGateEvery", sargs.get("gate_every"), "gate evaluation every N steps", src_s + " gate_every")
            inc = sargs.get("gate_max_ppl_increase")
            add("ddGateMaxIncrease", f"{100 * inc:g}%" if isinstance(inc, (int, float)) else None,
                "largest relative gate perplexity increase a promoted step may have",
                src_s + " gate_max_ppl_increase")
        promo = (e or {}).get("promotion") or next((r["promotion"] for r in ret_all
                                                    if r["method"] == method and r["promotion"]), None)
        add(f"dd{lab}PromotedStep", promo["promoted_step"] if promo else None, f"{lab} promoted step",
            "sdft_eval_report.json / retention promotion: promoted_step")
        note = (f"The validation-perplexity gate rejected every {lab} step, so the {lab} rows measure the "
                f"base model." if promo and promo["all_rejected"] else "")
        add(f"dd{lab}GateNote", note, f"{lab} gate statement (empty unless every step was rejected)",
            "all_rejected")
    ret = {r["method"]: r for r in ret_all}
    head = (ret.get("sdft") or next(iter(ret.values()), None) or {}).get("headline")
    add("ddRetentionHeadline", {"filler": "filler-only held-out text", "val": "the runbook validation split"}.get(
        head) if head else None, "headline retention split", "retention_ppl*.json headline")


def pooled_paired(suite: Suite, pairs: list[tuple[str, str]]) -> dict | None:
    """treat minus base best reward over every (run pair, common task): the seeds pooled as task-seed
    pairs (paired_bootstrap); None when no pair of runs shares a task."""
    a, b = [], []
    for base, treat in pairs:
        x, y = suite.runs.get(base), suite.runs.get(treat)
        for t in sorted(set(x or {}) & set(y or {})):
            a.append(float(x[t]["best_reward"]))
            b.append(float(y[t]["best_reward"]))
    return paired_bootstrap(a, b) if a else None


def side(pb: dict, tol: float = 1e-12) -> int:
    """+1 when a paired_bootstrap result's 95% CI lies above 0, -1 below, 0 when it contains 0 (a
    bound within `tol` of 0, float noise, counts as 0): nothing is claimed that the interval does not carry."""
    lo, hi = pb["ci95"]
    return 1 if lo > tol else -1 if hi < -tol else 0


def verdict(pb: dict, ahead: str, behind: str) -> str:
    """`ahead` when the 95% CI lies above 0, `behind` below, else no detectable difference."""
    return {1: ahead, -1: behind, 0: "no detectable difference"}[side(pb)]


def diff_words(pb: dict) -> str:
    return (f"{fnum(pb['mean_diff'], '+.3f')} (95% CI [{fnum(pb['ci95'][0], '+.3f')}, "
            f"{fnum(pb['ci95'][1], '+.3f')}], {pb['n']} task-seed pairs)")


def main_sentence(samples: dict | None, flops: dict | None) -> str:
    """The main comparison at the full budget in a sentence that is true whichever way it comes out."""
    if not samples and not flops:
        return "The main comparison has no finished held-out runs yet."
    parts = []
    for pb, what in ((samples, "best-of-N's at equal samples"), (flops, "that of best-of-N given TTT's FLOPs")):
        if pb:
            parts.append(f"TTT's mean best reward minus {what} is {diff_words(pb)}: "
                         + verdict(pb, "TTT is ahead", "best-of-N is ahead"))
        else:
            parts.append(f"there is no finished run to compare TTT with {what}")
    return f"At the full budget, {parts[0]}; {parts[1]}."


def consolidation_sentence(suite: Suite, pb: dict | None) -> str:
    """SDFT against SFT (best-of-N from the consolidated checkpoints), with the gate's caveat."""
    if not pb:
        return "SDFT and SFT have no finished held-out runs to compare yet."
    rej = rejected_methods(suite)
    note = "".join(f" The gate rejected every {METHOD_LABEL[m]} step, so that model is the base model."
                   for m in ("sdft", "sft") if m in rej)
    return (f"Best-of-N's held-out mean best reward from the SDFT checkpoint minus from the SFT checkpoint is "
            f"{diff_words(pb)}: " + verdict(pb, "SDFT is ahead", "SFT is ahead") + "." + note)


def headline_setup(suite: Suite, add) -> None:
    """The results the abstract states: TTT main minus best-of-N at equal samples and at equal FLOPs,
    SDFT minus SFT (held-out mean best reward, full budget, seeds pooled as task-seed pairs), each
    as numbers and as a generated sentence."""
    samples = pooled_paired(suite, [(f"base_bestofn_seed{s}", f"ttt_main_seed{s}") for s in suite.seeds])
    flops = pooled_paired(suite, [(f"base_bestofn_flops_seed{s}", f"ttt_main_seed{s}") for s in suite.seeds])
    e1 = e1_runs(suite)
    sdft = pooled_paired(suite, [(f["run"], e["run"]) for e in e1 if e["method"] == "sdft" for f in e1
                                 if f["method"] == "sft" and (f["steps"], f["seed"]) == (e["steps"], e["seed"])])
    for lab, pb, desc, src in (("MainEdgeSamples", samples, "TTT main minus best-of-N at equal samples",
                                "ttt_main_seed* - base_bestofn_seed*"),
                               ("MainEdgeFlops", flops, "TTT main minus FLOPs-matched best-of-N",
                                "ttt_main_seed* - base_bestofn_flops_seed*"),
                               ("SDFTMinusSFT", sdft, "SDFT minus SFT, best-of-N from the consolidated checkpoints",
                                "sdft*_bestofn_seed* - sft*_bestofn_seed*")):
        src += " summaries, best_reward, paired over task-seed pairs"
        add(f"dd{lab}", fnum(pb["mean_diff"], "+.3f") if pb else None, desc + " (mean best reward, full budget)", src)
        add(f"dd{lab}CI", f"[{fnum(pb['ci95'][0], '+.3f')}, {fnum(pb['ci95'][1], '+.3f')}]" if pb else None,
            "its 95% paired bootstrap CI", src)
    add("ddMainSentence", main_sentence(samples, flops), "the main comparison in words (generated)",
        "ddMainEdgeSamples, ddMainEdgeFlops")
    add("ddConsolidationSentence", consolidation_sentence(suite, sdft), "SDFT vs SFT in words (generated)",
        "ddSDFTMinusSFT and the gate's promotion records")


def setup(suite: Suite) -> list[tuple[str, str, str, str]]:
    """(macro name, value, description, source) for the manuscript's setup macros."""
    items: list[tuple[str, str, str, str]] = []

    def add(macro, value, desc, source):
        items.append((macro, NA if value is None else str(value), desc, source))

    for part in (pretrain_setup, budget_setup, task_setup, policy_setup, consolidation_setup, headline_setup):
        part(suite, add)
    return items


# --- hyper-parameters chosen on the train split (paper/scripts/tune_ttt.py) --------------------

def read_tune(tune_dir: str) -> dict:
    """The tune step's evidence: {"path", "result": tune.json or None (missing or unreadable)}."""
    path = os.path.join(tune_dir, "tune.json")
    result = read_json(path)
    return {"path": path, "result": result if isinstance(result, dict) else None}
