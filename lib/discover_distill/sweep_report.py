"""The answer as a function of the prior (DESIGN §7): TTT against best-of-N from several bases of
increasing competence, read from the manifest paper/scripts/run_phase.py writes (`make sweep`).

    ev = read_sweep(manifest_path("runs/mini/runs/suite"))   # runs/mini/runs/sweep/sweep.json
    ev["points"], ev["trend"]["samples"], ev["trend"]["flops"]

The bases are checkpoints of one pretraining run. Per base: its validation loss at that step, its
probe (does it read its task: the swap gap on the policy's answer, per-sample reward over random
answers', best-of-N against random search), and from its suite the main comparison at the full
budget: best-of-N and TTT main, TTT minus best-of-N at equal samples, TTT minus FLOPs-matched
best-of-N (paired bootstrap over tasks, one seed), the FLOPs crossover, and both edges per family.
The trend is the change of each edge from the least to the most trained base with results, paired
over the tasks both share (every base runs the same held-out tasks): CIs over tasks at one point
cannot say whether the edge moves with the prior, this difference can. A missing manifest, probe
or run gives None (n/a), never an exception; registry_render.py writes it, plot_results.py draws it.
"""
from __future__ import annotations

import os

from .probe import read_probe
from .registry import fnum, flops_crossover, level, load_suite, read_json, read_jsonl, resolve, side
from .stats import paired_bootstrap

MAKE_SWEEP = "make sweep"
# edge -> (the manifest run TTT main is compared with, in words)
EDGES = {"samples": ("bestofn", "best-of-N at equal samples"),
         "flops": ("flops", "best-of-N given TTT's FLOPs")}
PROBE_KEYS = ("reward", "random_reward", "reward_ratio", "best_of_n", "random_best_of_n", "well_formed")


def manifest_path(runs_dir: str) -> str:
    """Where run_phase writes the manifest: sweep/sweep.json beside the suite directory."""
    return os.path.join(os.path.dirname(os.path.normpath(runs_dir)), "sweep", "sweep.json")


def number(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def where(path) -> str | None:
    """A manifest path as the registry resolves recorded paths (relative to the repository root)."""
    return resolve(path, "") if isinstance(path, str) and path else None


# --- one base --------------------------------------------------------------------------------

def val_loss_at(pre_dir: str | None, step) -> tuple[float | None, int | None]:
    """(val_loss, the step it was measured at): pretraining's last eval row at or before `step`
    (metrics.jsonl: eval rows carry val_loss, every --eval_every steps)."""
    if not pre_dir or number(step) is None:
        return None, None
    rows = [r for r in read_jsonl(os.path.join(pre_dir, "metrics.jsonl"))
            if number(r.get("val_loss")) is not None and number(r.get("step")) is not None and r["step"] <= step]
    if not rows:
        return None, None
    row = max(rows, key=lambda r: r["step"])
    return float(row["val_loss"]), int(row["step"])


def swap_gap(summary) -> dict:
    """{"gap", "ci", "on"}: the swap gap the gate reads (on the policy's answer where the probe has
    one, else on the optimal answer: probe.reading_gap), its 95% CI and which answer it is on."""
    summary = summary if isinstance(summary, dict) else {}
    key = "policy_swap_gap" if number(summary.get("policy_swap_gap")) is not None else "swap_gap"
    ci = summary.get(f"{key}_ci95")
    ci = (number(ci[0]), number(ci[1])) if isinstance(ci, list) and len(ci) == 2 else (None, None)
    gap = number(summary.get(key))
    return {"gap": gap, "ci": ci,
            "on": None if gap is None else "policy answer" if key == "policy_swap_gap" else "optimal answer"}


def competence(probe_dir: str | None) -> dict:
    """The base's probe.json (probe.read_probe): overall swap gap, per-sample reward against random
    answers', best-of-N against random search, well-formed share, and per family its swap gap and
    reward ratio; None values where the probe is missing."""
    ev = read_probe(probe_dir) if probe_dir else {"path": None, "result": None}
    res = ev["result"] or {}
    o = res.get("overall") if isinstance(res.get("overall"), dict) else {}
    fams = res.get("families") if isinstance(res.get("families"), dict) else {}
    out = {"path": ev["path"], "found": ev["result"] is not None, **swap_gap(o),
           **{k: number(o.get(k)) for k in PROBE_KEYS}}
    out["families"] = {f: {**swap_gap(v), "reward_ratio": number((v or {}).get("reward_ratio"))
                           if isinstance(v, dict) else None} for f, v in fams.items()}
    return out


def task_pairs(base: dict | None, treat: dict | None) -> dict[str, tuple[float, float]]:
    """task -> (base best reward, treat best reward) over the tasks both runs finished."""
    if not base or not treat:
        return {}
    return {t: (float(base[t]["best_reward"]), float(treat[t]["best_reward"])) for t in sorted(set(base) & set(treat))}


def edge(pairs: dict[str, tuple[float, float]]) -> dict | None:
    """treat minus base over the pairs (stats.paired_bootstrap: mean_diff, ci95, p_two_sided, n); None without one."""
    if not pairs:
        return None
    return paired_bootstrap([a for a, _ in pairs.values()], [b for _, b in pairs.values()])


def crossover_of(suite, seed, runs: dict) -> dict | None:
    """registry.flops_crossover for the manifest's seed, when its arms are the manifest's runs."""
    if suite is None or runs.get("ttt") not in suite.runs:
        return None
    return next((c for c in flops_crossover(suite) if c["seed"] == str(seed) and c["treat"] == runs["ttt"]), None)


def point_evidence(pt: dict, runs: dict, pre_dir: str | None, seed) -> dict:
    """One base of the sweep: step, validation loss, probe, levels, edges (overall and per family),
    crossover. A probe or run that is not there (an unfinished point) leaves its values None."""
    step = pt.get("step") if isinstance(pt.get("step"), int) else None
    vl, vl_step = val_loss_at(pre_dir, step)
    suite_dir = where(pt.get("suite_dir"))
    suite = load_suite(suite_dir) if suite_dir and os.path.isdir(suite_dir) else None
    rows = {k: suite.runs.get(runs.get(k, "")) if suite else None for k in ("bestofn", "ttt", "flops")}
    pairs = {e: task_pairs(rows[base], rows["ttt"]) for e, (base, _) in EDGES.items()}
    fam_of = {t: r.get("family", "?") for run in rows.values() if run for t, r in run.items()}
    probe = competence(where(pt.get("probe_dir")))
    families = {}
    for fam in sorted(set(fam_of.values()) | set(probe["families"])):
        families[fam] = {e: edge({t: p for t, p in pairs[e].items() if fam_of.get(t) == fam}) for e in EDGES}
    return {"step": step, "main": bool(pt.get("main")), "val_loss": vl, "val_loss_step": vl_step, "probe": probe,
            "suite_dir": suite_dir,
            "bestofn": level([float(r["best_reward"]) for r in rows["bestofn"].values()]) if rows["bestofn"] else None,
            "ttt": level([float(r["best_reward"]) for r in rows["ttt"].values()]) if rows["ttt"] else None,
            "pairs": pairs, "edges": {e: edge(p) for e, p in pairs.items()},
            "crossover": crossover_of(suite, seed, runs), "families": families}


# --- the sweep -------------------------------------------------------------------------------

def trend(points: list[dict], e: str) -> dict | None:
    """Edge e at the most trained base with results minus at the least trained one, paired over the
    tasks both have (paired_bootstrap of the per-task edges): {"first", "last" (steps), the two
    bases' swap gaps, "n", "mean_diff", "ci95", "p_two_sided"}; None with fewer than two such bases."""
    have = [p for p in points if p["pairs"][e]]
    if len(have) < 2:
        return None
    first, last = have[0], have[-1]
    common = sorted(set(first["pairs"][e]) & set(last["pairs"][e]))
    if not common:
        return None
    d_first, d_last = ([p["pairs"][e][t][1] - p["pairs"][e][t][0] for t in common] for p in (first, last))
    return {"first": first["step"], "last": last["step"], "first_gap": first["probe"]["gap"],
            "last_gap": last["probe"]["gap"], **paired_bootstrap(d_first, d_last)}


def read_sweep(path: str) -> dict:
    """The sweep's evidence: {"path", "manifest" (None: missing or unreadable, "why" says which),
    "seed", "hparams", "tune", "runs", "pretrain_dir", "points" (by step), "trend": {edge: trend}}."""
    m = read_json(path)
    empty = {"path": path, "manifest": None, "points": [], "trend": {e: None for e in EDGES}, "runs": {},
             "seed": None, "hparams": None, "tune": None, "pretrain_dir": None}
    if m is None:
        return {**empty, "why": "not found" if not os.path.exists(path) else "unreadable"}
    if not isinstance(m, dict) or not isinstance(m.get("points"), list):
        return {**empty, "why": "not a sweep manifest (no \"points\" list)"}
    runs = {k: v for k, v in (m.get("runs") or {}).items() if isinstance(v, str)} if isinstance(m.get("runs"), dict) \
        else {}
    pre_dir = where(m.get("pretrain_dir"))
    points = [point_evidence(p, runs, pre_dir, m.get("seed")) for p in m["points"] if isinstance(p, dict)]
    points.sort(key=lambda p: (p["step"] is None, p["step"] or 0))
    return {**empty, "why": None, "manifest": m, "seed": m.get("seed"), "hparams": m.get("hparams"),
            "tune": m.get("tune"), "runs": runs, "pretrain_dir": m.get("pretrain_dir"), "points": points,
            "trend": {e: trend(points, e) for e in EDGES}}


# --- in words (the manuscript's macros) ------------------------------------------------------

def signed_ci(pb: dict | None) -> tuple[str | None, str | None]:
    """("+0.120", "[+0.050, +0.190]") of a paired_bootstrap result; (None, None) without one."""
    if not pb:
        return None, None
    return fnum(pb["mean_diff"], "+.3f"), f"[{fnum(pb['ci95'][0], '+.3f')}, {fnum(pb['ci95'][1], '+.3f')}]"


def gap_words(g) -> str:
    return f"swap gap {fnum(g, '.2f')} nats" if g is not None else "swap gap n/a"


def trend_sentence(ev: dict) -> str:
    """The sweep's outcome in sentences that are true whichever way the data come out: a trend is
    stated only where its 95% CI excludes 0 (registry.side), else that the data show none."""
    if ev["manifest"] is None:
        return f"The sweep over base models has not been run ({MAKE_SWEEP})."
    t = ev["trend"]
    if t["samples"] is None and t["flops"] is None:
        return "Fewer than two bases of the sweep have results yet, so there is no trend to report."
    out, span = [], None
    for e, (_, what) in EDGES.items():
        tr = t[e]
        if tr is None:
            out.append(f"Against {what} fewer than two bases have results.")
            continue
        mean, ci = signed_ci(tr)
        verdict = {1: "it grows with the base's training", -1: "it shrinks with the base's training",
                   0: "the data show no trend"}[side(tr)]
        here = (tr["first"], tr["last"])
        lead = (f"From the base at pretraining step {tr['first']} ({gap_words(tr['first_gap'])}) to the base at step "
                f"{tr['last']} ({gap_words(tr['last_gap'])}), TTT's edge" if here != span else "Its edge")
        span = here
        out.append(f"{lead} over {what} changes by {mean} (95% CI {ci}, {tr['n']} tasks): {verdict}.")
    return " ".join(out)


def sweep_setup(ev: dict, add) -> None:
    """The sweep's macros (registry.setup's `add`): its bases, hyper-parameters and trends."""
    src = ev["path"] + ("" if ev["manifest"] is not None else f" ({ev.get('why')})")
    pts = ev["points"]
    add("ddSweepPoints", len(pts) if ev["manifest"] is not None else None, "bases in the sweep over priors", src)
    add("ddSweepSteps", ", ".join(str(p["step"]) for p in pts) or None, "pretraining steps of the sweep's bases",
        src + " points[].step")
    add("ddSweepSeed", ev["seed"], "seed of the sweep's runs", src + " seed")
    add("ddSweepHparams", ev["hparams"], "hyper-parameters of every base's runs", src + " hparams")
    for e, lab in (("samples", "Samples"), ("flops", "Flops")):
        tr = ev["trend"][e]
        mean, ci = signed_ci(tr)
        what = EDGES[e][1]
        add(f"ddSweepTrend{lab}", mean, f"trend: TTT minus {what}, most minus least trained base",
            src + " (paired over tasks)")
        add(f"ddSweepTrend{lab}CI", ci, "its 95% bootstrap CI over tasks", src)
    tr = ev["trend"]["samples"] or ev["trend"]["flops"]
    add("ddSweepFirstStep", tr["first"] if tr else None, "the trend's least trained base (step)", src)
    add("ddSweepLastStep", tr["last"] if tr else None, "the trend's most trained base (step)", src)
    add("ddSweepTrendSentence", trend_sentence(ev), "the sweep's trend in words (generated)", src)

