"""Paired comparisons between two suite runs on the same tasks (bootstrap over tasks)."""
from __future__ import annotations

import json
import math
import os
import random

import numpy as np


def paired_bootstrap(a: list[float], b: list[float], n_boot: int = 4000, seed: int = 0) -> dict:
    """Mean of b - a over paired tasks with a 95% percentile bootstrap CI and a two-sided p-value
    (share of resampled means on the other side of 0, doubled)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two equally long, non-empty lists")
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    rng = random.Random(seed)
    boots = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    lo, hi = boots[int(0.025 * (n_boot - 1))], boots[int(0.975 * (n_boot - 1)) + 1]
    below = sum(x <= 0 for x in boots) / n_boot
    above = sum(x >= 0 for x in boots) / n_boot
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else float("nan")
    return {"n": n, "mean_diff": mean, "ci95": [lo, hi], "p_two_sided": min(1.0, 2 * min(below, above)),
            "sd_diff": sd, "discordant": sum(x != 0 for x in d) / n}


def tasks_needed(sd_diff: float, effect: float, z_alpha: float = 1.959964, z_power: float = 0.841621) -> int | None:
    """Tasks for a paired comparison whose per-task difference has s.d. `sd_diff` to exclude 0 from
    a two-sided 95% interval with 80% power when the true mean difference is `effect`:
    n = ((z_alpha + z_power) sd / effect)^2. For a solved/unsolved difference sd^2 = p_disc - d^2,
    p_disc the share of tasks on which exactly one arm succeeds."""
    if not (sd_diff == sd_diff) or effect <= 0:  # NaN: too few tasks to estimate
        return None
    return max(1, math.ceil(((z_alpha + z_power) * sd_diff / effect) ** 2))


# --- budget curves (DESIGN §7: "budget curves, not one point") --------------------------------

BUDGET_ANCHORS = (32, 128, 512, 960)   # the paper's table points, at the runbook budget
BUDGET_REFERENCE = 960                 # the runbook budget: 30 TTT steps x 32 rollouts


def budget_points(budget: float, available=(), anchors=BUDGET_ANCHORS, reference: float = BUDGET_REFERENCE
                  ) -> list[int]:
    """Sample counts N for the budget tables: each anchor scaled by budget / reference (the
    runbook's 960 gives the anchors as they are; a profile with budget 192 gives 6.4, 25.6, 102.4,
    192), rounded to the nearest sample count in `available` (ties to the smaller), duplicates
    dropped, order kept. Without `available` the scaled value is rounded to an integer >= 1."""
    if not budget or budget <= 0:
        raise ValueError(f"budget must be positive, got {budget!r}")
    avail = sorted({int(a) for a in available if a and a > 0})
    out: list[int] = []
    for a in anchors:
        target = a * budget / reference
        n = min(avail, key=lambda x: (abs(x - target), x)) if avail else max(1, int(round(target)))
        if n not in out:
            out.append(n)
    return out


def best_at(curve: list[dict], n: float, key: str = "samples", before: float | None = 0.0) -> float | None:
    """Best reward found within the first n samples (or, with key="flops", n FLOPs): the
    best_so_far of the last curve entry (entries ordered by `key`) with key <= n; `before` when there
    is none. On the samples axis the reports pass before=None: a run whose first entry lies above n
    (TTT draws a whole step's rollouts at once) has no value at n, and a 0 there is a number about
    nothing; within F FLOPs a task that has spent nothing yet has found nothing (0)."""
    best = before
    for c in sorted(curve, key=lambda c: c[key]):
        if c[key] > n:
            break
        best = max(0.0, float(c["best_so_far"]))
    return best


def metric_rows(task_dir: str, keys: tuple[str, ...]) -> list[dict]:
    """The rows of a TTT task's metrics.jsonl that carry every key as a number (unreadable lines and
    a missing file: skipped)."""
    rows = []
    try:
        with open(os.path.join(task_dir, "metrics.jsonl")) as f:
            for line in f:
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                if isinstance(m, dict) and all(isinstance(m.get(k), (int, float)) for k in keys):
                    rows.append(m)
    except OSError:
        pass
    return rows


def read_best_curve(task_dir: str, row: dict | None = None) -> list[dict] | None:
    """One task's best-so-far curve, [{"samples", "best_so_far"}] by samples: the summary row's
    "best_curve", else result.json's, else (TTT) the per-step metrics.jsonl; None when there is none
    or it cannot be read. best_so_far is floored at 0 (a TTT state starts below any reward)."""
    curve = (row or {}).get("best_curve")
    if not curve:
        try:
            with open(os.path.join(task_dir, "result.json")) as f:
                res = json.load(f)
            curve = res.get("best_curve") if isinstance(res, dict) else None
        except (OSError, ValueError):
            curve = None
    if not curve:
        curve = metric_rows(task_dir, ("samples", "best_so_far"))
    try:
        out = [{"samples": float(c["samples"]), "best_so_far": max(0.0, float(c["best_so_far"]))} for c in curve]
    except (KeyError, TypeError, ValueError):
        return None
    return sorted(out, key=lambda c: c["samples"]) or None


# --- curves against compute (DESIGN §7: "compute on the x-axis") -----------------------------

def _flops_points(curve) -> list[dict] | None:
    """[{"flops", "samples", "best_so_far"}] when every entry carries all three as numbers, else None."""
    try:
        out = [{"flops": float(c["flops"]), "samples": float(c["samples"]), "best_so_far": float(c["best_so_far"])}
               for c in curve]
    except (KeyError, TypeError, ValueError):
        return None
    return out or None


def read_flops_curve(task_dir: str, row: dict | None = None) -> tuple[list[dict] | None, str | None]:
    """One task's best-so-far against cumulative FLOPs, [{"flops", "samples", "best_so_far"}] by
    FLOPs (best_so_far floored at 0), and where its FLOPs come from:
    "recorded": the best_curve carries them (the suite writes them per round / step in both arms);
    "metrics": TTT's per-step metrics.jsonl (runs from before the curves carried FLOPs);
    "estimated": a best-of-N run from before: the task's total FLOPs spread over its curve in
    proportion to samples (a round costs its prompt's prefill plus its generated tokens, so this
    is close, not exact). (None, None) without a curve."""
    row = row or {}
    res = None
    try:
        with open(os.path.join(task_dir, "result.json")) as f:
            res = json.load(f)
    except (OSError, ValueError):
        pass
    res = res if isinstance(res, dict) else {}
    curve, source = None, None
    for cand in (row.get("best_curve"), res.get("best_curve")):
        if cand and (curve := _flops_points(cand)):
            source = "recorded"
            break
    if curve is None:
        metrics = metric_rows(task_dir, ("flops", "samples", "best_so_far"))
        if metrics and (curve := _flops_points(metrics)):
            source = "metrics"
    if curve is None:
        best = read_best_curve(task_dir, row)
        total = row.get("flops") if isinstance(row.get("flops"), (int, float)) else res.get("flops")
        samples = row.get("samples") if isinstance(row.get("samples"), (int, float)) else res.get("samples")
        if best and isinstance(total, (int, float)) and isinstance(samples, (int, float)) and samples > 0:
            curve = [{"flops": float(total) * c["samples"] / samples, "samples": c["samples"],
                      "best_so_far": c["best_so_far"]} for c in best]
            source = "estimated"
    if curve is None:
        return None, None
    for c in curve:
        c["best_so_far"] = max(0.0, c["best_so_far"])
    return sorted(curve, key=lambda c: (c["flops"], c["samples"])), source


def _round_sig2(x: float, how: str) -> float:
    """x at two significant digits, rounded down, up or to the nearest."""
    e = math.floor(math.log10(x)) - 1
    q = x / 10.0 ** e
    q = math.floor(q + 1e-9) if how == "down" else math.ceil(q - 1e-9) if how == "up" else round(q)
    return float(f"{q * 10.0 ** e:.1e}")


def log_levels(lo: float, hi: float, k: int) -> list[float]:
    """k log-spaced levels from lo to hi at two significant digits, all inside [lo, hi]: the first
    rounded up, the last down, the others to the nearest. Duplicates (a narrow range) are dropped;
    a range too narrow for any two-digit level gives [hi]."""
    if not 0 < lo <= hi or k < 1:
        raise ValueError(f"log_levels needs 0 < lo <= hi and k >= 1, got {lo!r}, {hi!r}, {k!r}")
    raw = [lo * (hi / lo) ** (i / (k - 1)) for i in range(k)] if k > 1 else [hi]
    out = []
    for i, x in enumerate(raw):
        v = _round_sig2(x, "down" if i == k - 1 else "up" if i == 0 else "nearest")
        if lo <= v <= hi and v not in out:
            out.append(v)
    return out or [float(hi)]


def step_matrix(curves: list[list[dict]], xs, key: str = "flops") -> np.ndarray:
    """(curves, len(xs)) array of best_at(curve, x, key): best_at vectorised over x."""
    xs = np.asarray(xs, dtype=float)
    out = np.zeros((len(curves), len(xs)))
    for i, c in enumerate(curves):
        pts = sorted(c, key=lambda p: p[key])
        ks = np.array([float(p[key]) for p in pts])
        vs = np.array([max(0.0, float(p["best_so_far"])) for p in pts])
        idx = np.searchsorted(ks, xs, side="right") - 1
        out[i] = np.where(idx >= 0, vs[np.maximum(idx, 0)], 0.0)
    return out


def first_reach(curves: list[list[dict]], target: float, key: str = "flops", tol: float = 1e-12) -> float | None:
    """The smallest x at which the mean over curves of best_at(curve, x) reaches `target`
    (exact: the mean changes only at curve points); None when it never does."""
    if not curves:
        return None
    xs = np.unique(np.concatenate([[float(p[key]) for p in c] for c in curves]))
    hit = np.nonzero(step_matrix(curves, xs, key).mean(axis=0) >= target - tol)[0]
    return float(xs[hit[0]]) if hit.size else None


def _first_crossings(means: np.ndarray, tol: float) -> np.ndarray:
    """Per row of `means` (a difference at increasing x): the index of the first point whose sign
    is opposite to the row's first non-zero sign (|d| <= tol counts as 0); -1 without one."""
    s = np.where(np.abs(means) <= tol, 0.0, np.sign(means))
    nz = s != 0
    first = nz.argmax(axis=1)
    s0 = s[np.arange(len(s)), first] * nz.any(axis=1)
    opp = (s == -s0[:, None]) & (s0[:, None] != 0)
    return np.where(opp.any(axis=1), opp.argmax(axis=1), -1)


def crossover(base: list[list[dict]], treat: list[list[dict]], n_boot: int = 2000, seed: int = 0,
              key: str = "flops", tol: float = 1e-12, chunk: int = 200) -> dict:
    """Where the mean best-so-far curve of `treat` crosses that of `base` against `key`; base[i] and
    treat[i] are the same task's curves (paired). Within the range both arms reach (from the larger
    of their cheapest first points, below which one arm has no value yet, to the smaller of their
    largest points) the difference
    d(x) = mean_i best_at(treat[i], x) - best_at(base[i], x) changes only at curve points; the
    crossover is the first point where d takes the sign opposite to its first non-zero sign.
    CI: 95% percentile bootstrap over tasks (the same resampled tasks on both arms) among the
    resamples that have a crossover; "boot_share" is their share.
    Returns {"range": [lo, hi], "x", "direction" ("treat overtakes" / "base overtakes" / None),
    "crossings" (sign changes of d), "ci95", "boot_share"}; x None: no crossover in range."""
    if len(base) != len(treat) or not base:
        raise ValueError("crossover needs two equally long, non-empty lists of curves")
    lo = max(min(float(p[key]) for c in base for p in c), min(float(p[key]) for c in treat for p in c))
    hi = min(max(float(p[key]) for c in base for p in c), max(float(p[key]) for c in treat for p in c))
    xs = np.unique(np.concatenate([[float(p[key]) for p in c] for c in base + treat]))
    xs = xs[(xs >= lo) & (xs <= hi)]
    if not xs.size:  # the arms' ranges do not overlap: nothing to compare
        return {"range": [lo, hi], "x": None, "direction": None, "crossings": 0, "ci95": [None, None],
                "boot_share": 0.0}
    d = step_matrix(treat, xs, key) - step_matrix(base, xs, key)
    means = d.mean(axis=0)
    j = int(_first_crossings(means[None, :], tol)[0])
    signs = [x for x in np.where(np.abs(means) <= tol, 0.0, np.sign(means)) if x != 0]
    rng = np.random.default_rng(seed)
    n = d.shape[0]
    boots = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = np.zeros((b, n))
        np.add.at(counts, (np.repeat(np.arange(b), n), rng.integers(0, n, size=b * n)), 1.0)
        idx = _first_crossings(counts @ d / n, tol)
        boots += [float(xs[i]) for i in idx if i >= 0]
    boots.sort()
    m = len(boots)
    ci = [boots[math.floor(0.025 * (m - 1))], boots[math.ceil(0.975 * (m - 1))]] if m else [None, None]
    return {"range": [float(xs[0]), float(hi)], "x": float(xs[j]) if j >= 0 else None,
            "direction": (("treat overtakes" if signs[0] < 0 else "base overtakes") if j >= 0 else None),
            "crossings": sum(a != b for a, b in zip(signs, signs[1:])), "ci95": ci, "boot_share": m / n_boot}


# --- consolidation: which step was promoted (DESIGN §4: always reported, all-rejected said in words)

def promotion_of(rec: dict | None) -> dict | None:
    """{"promoted_step", "all_rejected"} from an SDFT sdft_eval_report.json or a retention file's
    "promotion"; None without a promoted_step. A report without "all_rejected" (older runs) counts
    as all-rejected when it promoted step 0 although gated steps exist."""
    if not isinstance(rec, dict) or "promoted_step" not in rec:
        return None
    step = rec.get("promoted_step")
    rejected = rec.get("all_rejected")
    if rejected is None:
        rejected = step == 0 and any(isinstance(g, dict) and (g.get("step") or 0) > 0 for g in rec.get("gate") or [])
    return {"promoted_step": step, "all_rejected": bool(rejected)}


def read_sdft_report(ckpt: str | None) -> dict | None:
    """The sdft_eval_report.json beside a consolidated checkpoint (e.g. <sdft dir>/sdft_latest.pt)."""
    if not ckpt:
        return None
    try:
        with open(os.path.join(os.path.dirname(ckpt), "sdft_eval_report.json")) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return None
    return rep if isinstance(rep, dict) else None


def retention_promotion(ret: dict, resolve=lambda p: p) -> dict | None:
    """Promotion of the model a retention_ppl*.json measured: its "promotion" key, else the SDFT
    report beside its args.updated_ckpt (`resolve` maps a recorded path to a readable one)."""
    promo = promotion_of(ret.get("promotion")) if isinstance(ret, dict) else None
    if promo is None and isinstance(ret, dict) and isinstance(ret.get("args"), dict):
        upd = ret["args"].get("updated_ckpt")
        promo = promotion_of(read_sdft_report(resolve(upd) if upd else None))
    return promo
