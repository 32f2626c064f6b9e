"""Paired comparisons between two suite runs on the same tasks (bootstrap over tasks)."""
from __future__ import annotations

import json
import math
import os
import random


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


def best_at(curve: list[dict], n: float) -> float:
    """Best reward found within the first n samples: the best_so_far of the last curve entry
    (entries ordered by samples) with samples <= n; 0 when there is none."""
    best = 0.0
    for c in sorted(curve, key=lambda c: c["samples"]):
        if c["samples"] > n:
            break
        best = max(0.0, float(c["best_so_far"]))
    return best


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
        curve = []
        try:
            with open(os.path.join(task_dir, "metrics.jsonl")) as f:
                for line in f:
                    try:
                        m = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(m, dict) and isinstance(m.get("samples"), (int, float)) \
                            and isinstance(m.get("best_so_far"), (int, float)):
                        curve.append(m)
        except OSError:
            pass
    try:
        out = [{"samples": float(c["samples"]), "best_so_far": max(0.0, float(c["best_so_far"]))} for c in curve]
    except (KeyError, TypeError, ValueError):
        return None
    return sorted(out, key=lambda c: c["samples"]) or None


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
