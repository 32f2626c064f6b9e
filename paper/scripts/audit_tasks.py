#!/usr/bin/env python3
"""Audit discovery task files: does search keep paying on them, do the answers fit the sampling
budget, and is the train / held-out split clean (DESIGN.md §7).

    python paper/scripts/audit_tasks.py --tasks data/discovery/heldout.jsonl data/discovery/train.jsonl \\
      --tokenizer data/tokenizer/spm32k.model --corpus data/raw/train.txt --json_out runs/audit_tasks.json

Random search: per task, --samples uniformly random well-formed answers (each family's
`random_answer`: a random subset, permutation, path or set of marks). From them, per split x
family x difficulty, the expected solve rate and mean best reward of best-of-N at every budget N
(default 1, 32, 128, 960 = 30 TTT steps x 32 rollouts), computed exactly: the unbiased estimator of
E[max of N draws without replacement] over the sample set (so N = --samples is the sample's max).

Policy baseline, measured the same way: per task, --samples draws of the family's constructive
policy as the corpus teaches it (`attempt`: the policy's own answer half the time, else the policy
with per-step noise ~ U(0, POLICY_NOISE)), the same best-of-N levels at every budget (each cell's
and split's "policy"), and the reward of the policy's own answer (`heuristic` at noise 0) per task
("policy_answer_reward", by task_id) and its mean. The policy is the prior's teacher: an arm whose
best answer beats the policy's own answer has found something the corpus did not teach.

Hard limits (exit 1, with one line per failure):
  - an optimal answer + EOS longer than --max_new_tokens, or a prompt (as "Q: ... A:") longer than
    --max_prompt_tokens, under --tokenizer;
  - a canonical instance on both sides of the split, or a task whose instance hashes to the other split;
  - a held-out prompt occurring in the --corpus text;
  - a task whose solver's answer does not score 1.0.
Paper mix (reported; a failure too with --require_paper_mix): on the held-out tasks, random search
at the largest budget solves <= 10% overall with mean best reward <= 0.75, and no family x
difficulty cell solves more than 30%.
"""
from __future__ import annotations

import argparse
import functools
import math
import random
import sys
from collections import defaultdict

from discover_distill import prompts
from discover_distill.cli import UserError, require_file, run
from discover_distill.fileio import atomic_write_json
from discover_distill.tasks import FAMILIES, SOLVED, load_tasks, split_of
from discover_distill.tasks.base import POLICY_NOISE

PAPER_MAX_SOLVED, PAPER_MAX_MEAN_BEST, PAPER_MAX_CELL = 0.10, 0.75, 0.30


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Audit discovery task files (random-search baselines, lengths, split).")
    p.add_argument("--tasks", nargs="+", required=True, help="task JSONL files (e.g. train and held-out)")
    p.add_argument("--tokenizer", default=None, help="SentencePiece .model for token lengths (optional)")
    p.add_argument("--corpus", default=None, help="raw corpus text to check held-out prompts against (optional)")
    p.add_argument("--samples", type=int, default=960, help="random answers (and policy attempts) per task")
    p.add_argument("--budgets", default="1,32,128,960", help="best-of-N budgets (comma-separated)")
    p.add_argument("--max_new_tokens", type=int, default=32, help="limit for an optimal answer + EOS")
    p.add_argument("--max_prompt_tokens", type=int, default=128, help="limit for a plain prompt 'Q: ... A:'")
    p.add_argument("--seed", type=int, default=0, help="seed of the random answers and the policy's attempts")
    p.add_argument("--require_paper_mix", action="store_true", help="fail when the held-out paper-mix check fails")
    p.add_argument("--json_out", default=None, help="write the full report as JSON here")
    return p.parse_args(argv)


def load(paths: list[str]) -> list[dict]:
    """Every task of every file, each file checked line by line as the suite checks it."""
    return [t for path in paths for t in load_tasks(path)]


@functools.lru_cache(maxsize=None)
def order_weights(s: int, n: int) -> tuple[float, ...]:
    """w[i] = P(the i-th smallest of s values is the max of a uniform n-subset) = C(i, n-1) / C(s, n)."""
    total = math.comb(s, n)
    return tuple(math.comb(i, n - 1) / total for i in range(s))


def best_of(rewards: list[float], n: int) -> tuple[float, float]:
    """(expected best reward, probability of a solve) of best-of-n drawn from `rewards` without replacement."""
    r = sorted(rewards)
    s = len(r)
    solved = sum(x >= SOLVED for x in r)
    p_solve = 1.0 - math.comb(s - solved, n) / math.comb(s, n)
    return sum(w * x for w, x in zip(order_weights(s, n), r)), p_solve


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def levels(rows: list[dict], key: str, budgets: list[int]) -> dict:
    """Mean solve rate and mean best reward over `rows` at every budget, of their best-of-N under `key`."""
    return {"solve_rate": {str(n): mean(r[key][n][1] for r in rows) for n in budgets},
            "mean_best": {str(n): mean(r[key][n][0] for r in rows) for n in budgets}}


def policy_levels(rows: list[dict], budgets: list[int]) -> dict:
    """The policy baseline of `rows`: best-of-N of its attempts, and its own answer's mean reward and solve rate."""
    return {"n_tasks": len(rows), **levels(rows, "policy", budgets),
            "answer_reward": mean(r["policy_answer"] for r in rows),
            "answer_solve_rate": mean(r["policy_answer"] >= SOLVED for r in rows)}


def main() -> int:
    args = parse_args()
    try:
        budgets = sorted({int(b) for b in args.budgets.split(",")})
    except ValueError:
        raise UserError(f"--budgets: expected comma-separated integers, got {args.budgets!r}") from None
    if args.samples < 1 or budgets[0] < 1:
        raise UserError("--samples and every --budgets value must be >= 1")
    budgets = [b for b in budgets if b <= args.samples]  # a budget above the sample count cannot be estimated
    if not budgets:
        raise UserError(f"--samples {args.samples} is below every budget in --budgets")
    tasks = load(args.tasks)
    tok = None
    if args.tokenizer:
        from discover_distill.tokenizer import Tokenizer
        tok = Tokenizer(require_file(args.tokenizer, "--tokenizer"))
    failures: list[str] = []

    # Per task: random-search and policy rewards, solver check, token lengths.
    rows = []
    for t in tasks:
        fam = FAMILIES[t["family"]]
        rng = random.Random(f"audit/{args.seed}/{t['task_id']}")
        rewards = [fam.reward(t["spec"], fam.random_answer(t["spec"], rng)) for _ in range(args.samples)]
        prng = random.Random(f"audit-policy/{args.seed}/{t['task_id']}")   # its own stream: random search's is unchanged
        policy = [fam.reward(t["spec"], fam.attempt(t["spec"], prng)) for _ in range(args.samples)]
        answers = {fam.solve(t["spec"], random.Random(i)) for i in range(4)}  # optimal answers can differ in length
        if any(fam.reward(t["spec"], a) < 1.0 for a in answers):
            failures.append(f"{t['task_id']}: the solver's answer does not score 1.0")
        row = {"task": t, "best": {n: best_of(rewards, n) for n in budgets},
               "policy": {n: best_of(policy, n) for n in budgets},
               "policy_answer": fam.reward(t["spec"], fam.heuristic(t["spec"], random.Random(0)))}
        if tok:
            row["answer_tokens"] = max(len(tok.encode(a)) for a in answers) + 1   # + EOS
            row["prompt_tokens"] = len(tok.encode(prompts.plain_prompt(t["prompt"])))
            longest = max(answers, key=len)
            row["improve_tokens"] = len(tok.encode(prompts.with_answer(
                prompts.improve_prompt(t["prompt"], longest, 0.5), longest))) + 1
        rows.append(row)

    # Cells: split x family x difficulty.
    cells = defaultdict(list)
    for row in rows:
        t = row["task"]
        cells[(t["split"], t["family"], int(t["difficulty"]))].append(row)
    cell_out = []
    for (split, family, d), rs in sorted(cells.items()):
        c = {"split": split, "family": family, "difficulty": d, "n_tasks": len(rs), **levels(rs, "best", budgets),
             "policy": policy_levels(rs, budgets)}
        if tok:
            c.update(answer_tokens_max=max(r["answer_tokens"] for r in rs),
                     prompt_tokens_mean=mean(r["prompt_tokens"] for r in rs),
                     prompt_tokens_max=max(r["prompt_tokens"] for r in rs),
                     improve_tokens_max=max(r["improve_tokens"] for r in rs))
        cell_out.append(c)
    overall = {}
    for split in sorted({r["task"]["split"] for r in rows}):
        rs = [r for r in rows if r["task"]["split"] == split]
        overall[split] = {"n_tasks": len(rs), **levels(rs, "best", budgets), "policy": policy_levels(rs, budgets)}

    # Token limits.
    tokens = {"checked": tok is not None}
    if tok:
        tokens.update(tokenizer=args.tokenizer, max_new_tokens=args.max_new_tokens,
                      max_prompt_tokens=args.max_prompt_tokens,
                      answer_tokens_max=max(r["answer_tokens"] for r in rows),
                      prompt_tokens_max=max(r["prompt_tokens"] for r in rows),
                      improve_tokens_max=max(r["improve_tokens"] for r in rows))
        long_answers = [r for r in rows if r["answer_tokens"] > args.max_new_tokens]
        long_prompts = [r for r in rows if r["prompt_tokens"] > args.max_prompt_tokens]
        tokens.update(answers_over_limit=len(long_answers), prompts_over_limit=len(long_prompts))
        if long_answers:
            r = max(long_answers, key=lambda r: r["answer_tokens"])
            failures.append(f"{len(long_answers)} tasks have an optimal answer + EOS over --max_new_tokens "
                            f"{args.max_new_tokens} (longest: {r['answer_tokens']} tokens, {r['task']['task_id']})")
        if long_prompts:
            r = max(long_prompts, key=lambda r: r["prompt_tokens"])
            failures.append(f"{len(long_prompts)} prompts are over --max_prompt_tokens {args.max_prompt_tokens} "
                            f"(longest: {r['prompt_tokens']} tokens, {r['task']['task_id']})")

    # Split hygiene: canonical instances on both sides, and tasks filed under the wrong split.
    sides = defaultdict(set)
    mismatched = []
    for t in tasks:
        key = (t["family"], FAMILIES[t["family"]].canonical(t["spec"]))
        sides[key].add(t["split"])
        if split_of(t["family"], t["spec"]) != t["split"]:
            mismatched.append(t["task_id"])
    both = [k for k, s in sides.items() if len(s) > 1]
    overlap = {"canonical_in_both_splits": len(both), "split_mismatch": len(mismatched),
               "examples": [f"{f}: {c[:80]}" for f, c in both[:3]] + mismatched[:3]}
    if both:
        failures.append(f"{len(both)} canonical instances occur in more than one split (e.g. {overlap['examples'][0]})")
    if mismatched:
        failures.append(f"{len(mismatched)} tasks are filed under a split their instance does not hash to "
                        f"(e.g. {mismatched[0]})")

    # Contamination: held-out prompts in the corpus text.
    contamination = {"checked": bool(args.corpus)}
    if args.corpus:
        with open(require_file(args.corpus, "--corpus"), encoding="utf-8", errors="replace") as f:
            text = f.read()
        held = [t for t in tasks if t["split"] == "heldout"]
        leaked = [t["task_id"] for t in held if t["prompt"] in text]
        contamination.update(corpus=args.corpus, heldout_checked=len(held), heldout_prompts_in_corpus=len(leaked),
                             examples=leaked[:5])
        if leaked:
            failures.append(f"{len(leaked)} held-out prompts occur in the corpus {args.corpus} (e.g. {leaked[0]})")

    # The paper mix: held-out tasks at the largest budget.
    n_top = budgets[-1]
    held_cells = [c for c in cell_out if c["split"] == "heldout"]
    paper = {"checked": bool(held_cells), "budget": n_top,
             "limits": {"solved": PAPER_MAX_SOLVED, "mean_best": PAPER_MAX_MEAN_BEST, "cell_solved": PAPER_MAX_CELL}}
    if held_cells:
        worst = max(held_cells, key=lambda c: c["solve_rate"][str(n_top)])
        paper.update(solved=overall["heldout"]["solve_rate"][str(n_top)],
                     mean_best=overall["heldout"]["mean_best"][str(n_top)],
                     worst_cell={"family": worst["family"], "difficulty": worst["difficulty"],
                                 "solved": worst["solve_rate"][str(n_top)]})
        problems = []
        if paper["solved"] > PAPER_MAX_SOLVED:
            problems.append(f"solves {paper['solved']:.1%} > {PAPER_MAX_SOLVED:.0%}")
        if paper["mean_best"] > PAPER_MAX_MEAN_BEST:
            problems.append(f"mean best reward {paper['mean_best']:.3f} > {PAPER_MAX_MEAN_BEST}")
        if paper["worst_cell"]["solved"] > PAPER_MAX_CELL:
            problems.append(f"{worst['family']} d{worst['difficulty']} solves {paper['worst_cell']['solved']:.1%} "
                            f"> {PAPER_MAX_CELL:.0%}")
        paper["pass"] = not problems
        paper["problems"] = problems
        if problems and args.require_paper_mix:
            failures.append(f"paper mix: random best-of-{n_top} on held-out tasks " + "; ".join(problems))

    # Report.
    head = " ".join(f"{'@' + str(n):>6}" for n in budgets)
    tok_head = f" {'ans':>4} {'prompt':>11}" if tok else ""
    print(f"random search (uniform well-formed answers, {args.samples} per task): solve rate | mean best reward")
    print(f"{'split':<8} {'family':<10} {'d':>1} {'n':>4}  {head}  | {head}{tok_head}")
    for c in cell_out:
        line = (f"{c['split']:<8} {c['family']:<10} {c['difficulty']:>1} {c['n_tasks']:>4}  "
                + " ".join(f"{c['solve_rate'][str(n)]:>6.1%}" for n in budgets) + "  | "
                + " ".join(f"{c['mean_best'][str(n)]:>6.3f}" for n in budgets))
        if tok:
            line += f" {c['answer_tokens_max']:>4} {c['prompt_tokens_mean']:>5.0f}/{c['prompt_tokens_max']:<5}"
        print(line)
    for split, o in overall.items():
        print(f"{split:<8} {'ALL':<10} {'':>1} {o['n_tasks']:>4}  "
              + " ".join(f"{o['solve_rate'][str(n)]:>6.1%}" for n in budgets) + "  | "
              + " ".join(f"{o['mean_best'][str(n)]:>6.3f}" for n in budgets))
    print(f"policy (its own answer half the time, else per-step noise ~U(0, {POLICY_NOISE}); {args.samples} "
          f"attempts per task): solve rate | mean best reward | own answer's mean reward")
    print(f"{'split':<8} {'family':<10} {'d':>1} {'n':>4}  {head}  | {head}  | {'answer':>6}")
    for label, p in [((c["split"], c["family"], c["difficulty"]), c["policy"]) for c in cell_out] \
            + [((split, "ALL", ""), o["policy"]) for split, o in overall.items()]:
        print(f"{label[0]:<8} {label[1]:<10} {label[2]:>1} {p['n_tasks']:>4}  "
              + " ".join(f"{p['solve_rate'][str(n)]:>6.1%}" for n in budgets) + "  | "
              + " ".join(f"{p['mean_best'][str(n)]:>6.3f}" for n in budgets) + f"  | {p['answer_reward']:>6.3f}")
    if tok:
        print(f"tokens: optimal answer + EOS <= {tokens['answer_tokens_max']} (limit {args.max_new_tokens}), "
              f"prompt <= {tokens['prompt_tokens_max']} (limit {args.max_prompt_tokens}), "
              f"improve prompt + answer <= {tokens['improve_tokens_max']}")
    else:
        print("tokens: not checked (no --tokenizer)")
    print(f"split: {overlap['canonical_in_both_splits']} canonical instances in both splits, "
          f"{overlap['split_mismatch']} tasks under the wrong split")
    if args.corpus:
        print(f"contamination: {contamination['heldout_prompts_in_corpus']} of {contamination['heldout_checked']} "
              f"held-out prompts occur in {args.corpus}")
    else:
        print("contamination: not checked (no --corpus)")
    if held_cells:
        print(f"paper mix (held-out, random best-of-{n_top}): solved {paper['solved']:.1%} "
              f"(<= {PAPER_MAX_SOLVED:.0%}), "
              f"mean best {paper['mean_best']:.3f} (<= {PAPER_MAX_MEAN_BEST}), worst cell {worst['family']} "
              f"d{worst['difficulty']} {paper['worst_cell']['solved']:.1%} (<= {PAPER_MAX_CELL:.0%}): "
              + ("PASS" if paper["pass"] else "FAIL: " + "; ".join(paper["problems"])))
    report = {"args": vars(args), "budgets": budgets, "cells": cell_out, "overall": overall,
              "policy_answer_reward": {r["task"]["task_id"]: r["policy_answer"] for r in rows}, "tokens": tokens,
              "overlap": overlap, "contamination": contamination, "paper_mix": paper,
              "failures": failures, "pass": not failures}
    if args.json_out:
        atomic_write_json(args.json_out, report)
    if failures:
        for msg in failures:
            print(f"audit failed: {msg}", file=sys.stderr)
        return 1
    print("audit passed")
    return 0


if __name__ == "__main__":
    run(main)
