"""Does the base model read its task? (DESIGN §7, "A prior that reads its task")

Both arms of the experiment start from the base model, so a base that answers the same whatever
the instance turns TTT into learning each instance from scratch, a different question. The probe
measures, per task family, on tasks the model never saw:

  swap gap         NLL (nats, summed over the answer tokens and the EOS the corpus puts after an
                   answer) of task t_i's optimal answer after t_{i+1 mod k}'s prompt (another
                   instance of the same family) minus after t_i's own prompt, mean over tasks with
                   a 95% bootstrap CI. About 0 for a model that ignores the instance.
  policy swap gap  the same for the family's policy answer (family.heuristic, noise 0): the answer
                   the corpus's plain lines teach, a function of the instance a small model can
                   compute; the gate's min_swap_gap reads this one where a family has a policy.
  well-formed      share of T = 1 samples whose answer has the instance's shape (family.well_formed),
                   next to uniformly random answers' (family.random_answer: 1.0 by construction).
  reward           mean per-sample reward of the T = 1 samples, random answers' and the ratio.
  distinct greedy  distinct greedy answers / tasks: 1/k for a model that answers one thing.
  best-of-N        mean over tasks of the best of the same N = samples T = 1 samples, against the
                   best of N seeded random answers per task (random search at the same N).

probe() returns (and probe_base.py writes as probe.json) {"settings", "families": {name: summary},
"overall": summary over all tasks, "tasks": per-task rows, "wall_s"}; a summary holds n_tasks,
swap_gap, swap_gap_ci95, own_nll, swapped_nll, answer_tokens, policy_swap_gap, policy_swap_gap_ci95,
policy_reward (the policy answer's reward), well_formed, random_well_formed, reward, random_reward,
reward_ratio, distinct_greedy, best_of_n, random_best_of_n (None: n/a).

The functions take family objects (`name`, `solve`, `random_answer`, `reward`, `well_formed`)
next to the task dicts, so a test can probe a toy family. `gate` turns a probe result and a
profile's thresholds into the list of failed checks (run_phase.py stops before phase C's suite
on any); `table` gives the rows every renderer (probe_base.py, fill_tables.py) shows.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass

import torch

from . import prompts
from .discovery import prompt_ids, task_generators
from .evaluate import bootstrap_ci
from .sampling import generate
from .ttt import completion_logprobs

THRESHOLD_KEYS = ("min_swap_gap", "min_well_formed", "min_reward_ratio", "bestofn_vs_random", "min_families")


@dataclass
class ProbeSettings:
    per_family: int = 20         # tasks per family (the first ones of the file)
    samples: int = 128           # T = 1 samples per task; also the best-of-N N
    max_new_tokens: int = 32     # as the suite samples
    seed: int = 0                # sampling generators and random answers
    temperature: float = 1.0
    rows_per_batch: int = 512    # sampled rows per generate call (tasks are batched up to it)
    answer_order: str = "construction"   # the policy answer's order, as the corpus wrote it (or "sorted")


def select_tasks(tasks: list[dict], per_family: int) -> dict[str, list[dict]]:
    """The first `per_family` tasks of each family, in file order."""
    out: dict[str, list[dict]] = {}
    for t in tasks:
        group = out.setdefault(t["family"], [])
        if len(group) < per_family:
            group.append(t)
    return out


def optimal_answer(family, task: dict, seed: int) -> str:
    """family.solve with a fixed rng per (seed, task): the same answer on every run."""
    return family.solve(task["spec"], random.Random(f"probe/{seed}/{task['task_id']}"))


def policy_answer(family, task: dict, order: str = "construction") -> str | None:
    """The family's policy answer (family.heuristic at noise 0: deterministic), in the order the
    corpus wrote it (gen_synthetic_corpus.py --answer_order); None for a family without a policy."""
    try:
        answer = family.heuristic(task["spec"], random.Random(0))
    except (AttributeError, NotImplementedError):
        return None
    return family.sorted_answer(answer) if order == "sorted" else answer


def answer_ids(tok, prompt_text: str, answer: str) -> list[int]:
    """The answer's tokens as its corpus line has them (the line "Q: ... A: answer" encoded whole,
    minus the prompt's tokens) plus the EOS prepare_data appends to every line. SentencePiece
    pieces do not cross the space before the answer, so the split is exact; should it ever not
    be, the answer is encoded alone, as the SDFT trainer does."""
    line, head = tok.encode(prompts.with_answer(prompt_text, answer)), tok.encode(prompt_text)
    body = line[len(head):] if line[:len(head)] == head else tok.encode(" " + answer)
    return body + [tok.eos_id]


@torch.no_grad()
def token_nlls(model, tok, prompt_texts: list[str], answers: list[list[int]], dtype=torch.float32,
               batch: int = 128) -> list[list[float]]:
    """NLL in nats of every token of `answers[i]` after the plain prompt `prompt_texts[i]` (a
    document starts right after EOS, as in the corpus), batched forwards with the prompt's cache."""
    out: list[list[float]] = []
    for b in range(0, len(prompt_texts), batch):
        ids = [prompt_ids(tok, prompts.plain_prompt(p)) for p in prompt_texts[b:b + batch]]
        chunk = answers[b:b + batch]
        logp, _ = completion_logprobs(model, ids, chunk, list(range(len(ids))), None, dtype,
                                      vocab_limit=tok.vocab_size)
        out += [(-row[:len(a)]).tolist() for row, a in zip(logp, chunk)]
    return out


def swap_nlls(model, tok, groups: list[tuple[object, list[dict]]], seed: int, dtype=torch.float32,
              answer=optimal_answer) -> list[tuple[float, float, int, list[float]] | None]:
    """For every task of every (family, tasks) group, in order: (own NLL, swapped NLL, answer
    tokens, swapped minus own NLL of each answer token) of its answer (`answer(family, task, seed)`:
    the optimal one by default) after its own prompt and after the next task's of the same family
    (cyclically; the same answer tokens both times); None in a family of one task or where `answer`
    gives None. One batched pass for all families: a forward costs the same fixed overhead whatever
    its rows."""
    own, swapped, answers, index = [], [], [], []
    for family, tasks in groups:
        for i, t in enumerate(tasks):
            text = answer(family, t, seed) if len(tasks) > 1 else None
            if text is None:
                index.append(None)
                continue
            own.append(t["prompt"])
            swapped.append(tasks[(i + 1) % len(tasks)]["prompt"])
            answers.append(answer_ids(tok, prompts.plain_prompt(t["prompt"]), text))
            index.append(len(answers) - 1)
    nll = token_nlls(model, tok, own + swapped, answers + answers, dtype) if answers else []
    k = len(answers)
    return [None if j is None else (sum(nll[j]), sum(nll[k + j]), len(answers[j]),
                                    [s - o for o, s in zip(nll[j], nll[k + j])]) for j in index]


def sample_completions(model, tok, tasks: list[dict], s: ProbeSettings, dtype=torch.float32,
                       greedy: bool = False, log=lambda _: None) -> list[list[str]]:
    """s.samples completions per task at s.temperature (one greedy completion with `greedy`), with
    the suite's sampler, stop strings and per-task generators (a task's samples do not depend on
    its batch), tasks of every family batched up to s.rows_per_batch rows per call."""
    device = next(model.parameters()).device
    n = 1 if greedy else s.samples
    per_call = max(1, s.rows_per_batch // n)
    out: list[list[str]] = []
    t0 = time.time()
    for b in range(0, len(tasks), per_call):
        batch = tasks[b:b + per_call]
        ids = [prompt_ids(tok, prompts.plain_prompt(t["prompt"])) for t in batch]
        got = generate(model, ids, [n] * len(batch), max_new_tokens=s.max_new_tokens, eos_id=tok.eos_id,
                       pad_id=tok.pad_id, temperature=0.0 if greedy else s.temperature,
                       stop_strings=prompts.STOP_STRINGS, decode=tok.decode,
                       generator=task_generators(batch, s.seed, device), vocab_limit=tok.vocab_size, dtype=dtype)
        owner = got.prompt_index.tolist()
        out += [[text for text, o in zip(got.texts, owner) if o == k] for k in range(len(batch))]
        log(f"probe {'greedy' if greedy else 'samples'}: {len(out)}/{len(tasks)} tasks | {time.time() - t0:.1f}s")
    return out


def random_answers(family, task: dict, n: int, seed: int) -> list[str]:
    """n uniformly random well-formed answers, seeded by (seed, task): random search's draws."""
    rng = random.Random(f"probe-random/{seed}/{task['task_id']}")
    return [family.random_answer(task["spec"], rng) for _ in range(n)]


def task_row(family, task: dict, texts: list[str], greedy_text: str, swap: tuple | None, s: ProbeSettings,
             policy_swap: tuple | None = None) -> dict:
    """Every per-task quantity the summary needs, for one task's samples against its random answers."""
    spec, rand = task["spec"], random_answers(family, task, s.samples, s.seed)
    rewards, rand_rewards = [family.reward(spec, x) for x in texts], [family.reward(spec, x) for x in rand]
    own, swapped, n_tok, _ = swap or (None, None, None, None)
    p_own, p_swapped, p_tok, p_by_token = policy_swap or (None, None, None, None)
    policy = policy_answer(family, task, s.answer_order)
    return {"task_id": task["task_id"], "family": family.name, "own_nll": own, "swapped_nll": swapped,
            "answer_tokens": n_tok, "swap_gap": None if swap is None else swapped - own,
            "policy_own_nll": p_own, "policy_swapped_nll": p_swapped, "policy_answer_tokens": p_tok,
            "policy_swap_gap": None if policy_swap is None else p_swapped - p_own,
            "policy_swap_gap_by_token": p_by_token,
            "policy_reward": None if policy is None else family.reward(spec, policy),
            "well_formed": _mean([float(family.well_formed(spec, x)) for x in texts]),
            "random_well_formed": _mean([float(family.well_formed(spec, x)) for x in rand]),
            "reward": _mean(rewards), "random_reward": _mean(rand_rewards),
            "best_of_n": max(rewards), "random_best_of_n": max(rand_rewards),
            "greedy_answer": prompts.extract_answer(greedy_text)}


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def gap_by_token(rows: list[dict]) -> list[float]:
    """The policy-answer swap gap at each answer token (the EOS last), averaged over the tasks whose
    answer reaches that token: which steps of the policy the base reads. Answers of a family mostly
    share a length (a permutation's letters); where they do not, later tokens average fewer tasks."""
    by_task = [r.get("policy_swap_gap_by_token") or [] for r in rows]
    longest = max((len(t) for t in by_task), default=0)
    return [_mean([t[k] for t in by_task if len(t) > k]) for k in range(longest)]


def summarise(rows: list[dict]) -> dict:
    """The five measures over task rows (one family's, or all of them pooled). Distinct greedy
    answers are counted within each family: over several families it is their task-weighted mean."""
    gaps = [r["swap_gap"] for r in rows if r["swap_gap"] is not None]
    lo, hi = bootstrap_ci(gaps) if len(gaps) > 1 else (None, None)
    p_gaps = [r.get("policy_swap_gap") for r in rows if r.get("policy_swap_gap") is not None]
    p_lo, p_hi = bootstrap_ci(p_gaps) if len(p_gaps) > 1 else (None, None)
    reward, rand = _mean([r["reward"] for r in rows]), _mean([r["random_reward"] for r in rows])
    return {"n_tasks": len(rows), "swap_gap": _mean(gaps), "swap_gap_ci95": [lo, hi],
            "policy_swap_gap": _mean(p_gaps), "policy_swap_gap_ci95": [p_lo, p_hi],
            "policy_swap_gap_by_token": gap_by_token(rows),
            "policy_reward": _mean([r.get("policy_reward") for r in rows]),
            "own_nll": _mean([r["own_nll"] for r in rows]), "swapped_nll": _mean([r["swapped_nll"] for r in rows]),
            "answer_tokens": _mean([r["answer_tokens"] for r in rows]),
            "well_formed": _mean([r["well_formed"] for r in rows]),
            "random_well_formed": _mean([r["random_well_formed"] for r in rows]),
            "reward": reward, "random_reward": rand,
            "reward_ratio": reward / rand if reward is not None and rand else None,
            "distinct_greedy": len({(r["family"], r["greedy_answer"]) for r in rows}) / len(rows) if rows else None,
            "best_of_n": _mean([r["best_of_n"] for r in rows]),
            "random_best_of_n": _mean([r["random_best_of_n"] for r in rows])}


def probe(model, tok, groups: list[tuple[object, list[dict]]], s: ProbeSettings, dtype=torch.float32,
          log=print) -> dict:
    """The probe over (family, its tasks) groups: {"settings", "families": {name: summary},
    "overall": summary of all tasks pooled, "tasks": the per-task rows, "wall_s"}. JSON-able.
    Every family's tasks share each batched pass (NLLs, samples, greedy answers)."""
    was_training = model.training
    model.eval()
    t0 = time.time()
    pairs = [(family, t) for family, tasks in groups for t in tasks]
    tasks = [t for _, t in pairs]
    try:
        swaps = swap_nlls(model, tok, groups, s.seed, dtype)
        policy_swaps = swap_nlls(model, tok, groups, s.seed, dtype,
                                 answer=lambda f, t, _: policy_answer(f, t, s.answer_order))
        log(f"probe swap NLLs: {len(tasks)} tasks | {time.time() - t0:.1f}s")
        samples = sample_completions(model, tok, tasks, s, dtype, log=log)
        greedy = sample_completions(model, tok, tasks, s, dtype, greedy=True)
    finally:
        if was_training:
            model.train()
    rows = [task_row(f, t, texts, g[0], sw, s, psw)
            for (f, t), texts, g, sw, psw in zip(pairs, samples, greedy, swaps, policy_swaps)]
    families = {f.name: summarise([r for r in rows if r["family"] == f.name]) for f, _ in groups}
    return {"settings": asdict(s), "families": families, "overall": summarise(rows), "tasks": rows,
            "wall_s": time.time() - t0}


def read_probe(probe_dir: str) -> dict:
    """The probe's evidence for the registry: {"path", "result": probe.json, "gate_path", "gate":
    gate.json (run_phase's gate writes it)}; a missing or unreadable file is None."""
    def load(path: str) -> dict | None:
        try:
            with open(path) as f:
                obj = json.load(f)
        except (OSError, ValueError):
            return None
        return obj if isinstance(obj, dict) else None

    path, gate_path = os.path.join(probe_dir, "probe.json"), os.path.join(probe_dir, "gate.json")
    return {"path": path, "result": load(path), "gate_path": gate_path, "gate": load(gate_path)}


TABLE_HEADER = ("family", "tasks", "swap gap, policy answer [95% CI]", "swap gap, optimal answer [95% CI]",
                "well-formed (random)", "reward / random (ratio)", "policy answer's reward", "distinct greedy",
                "best-of-N / random search")


def table(result: dict) -> list[list[str]]:
    """Rows of plain-text cells under TABLE_HEADER: each family, then "overall"."""
    rows = []
    fams = result.get("families") if isinstance(result.get("families"), dict) else {}
    for name, v in [*sorted(fams.items()), ("overall", result.get("overall"))]:
        v = v if isinstance(v, dict) else {}   # a hand-edited or truncated file: n/a cells, not a crash
        f = {k: _fmt(v.get(k)) for k in ("well_formed", "random_well_formed", "reward", "random_reward",
                                         "policy_reward", "distinct_greedy", "best_of_n", "random_best_of_n")}
        rows.append([name, str(v.get("n_tasks", "n/a")), _gap_cell(v, "policy_swap_gap"), _gap_cell(v, "swap_gap"),
                     f"{f['well_formed']} ({f['random_well_formed']})",
                     f"{f['reward']} / {f['random_reward']} ({_fmt(v.get('reward_ratio'), '.2f')}x)",
                     f["policy_reward"], f["distinct_greedy"], f"{f['best_of_n']} / {f['random_best_of_n']}"])
    return rows


def by_token_rows(result: dict, width: int = 12) -> list[list[str]]:
    """[family, cell per answer token] for each family with a per-token gap (gap_by_token), its
    first `width` tokens; the answer's last token (the EOS where the answer ends within `width`)
    is marked. [] for a probe written before the per-token gap."""
    fams = result.get("families") if isinstance(result.get("families"), dict) else {}
    rows = []
    for name, v in sorted(fams.items()):
        gaps = (v.get("policy_swap_gap_by_token") if isinstance(v, dict) else None) or []
        if gaps:
            rows.append([name] + [_fmt(g, "+.2f") + (" (EOS)" if k == len(gaps) - 1 else "")
                                  for k, g in enumerate(gaps[:width])])
    return rows


def _gap_cell(v: dict, key: str) -> str:
    ci = v.get(f"{key}_ci95")
    lo, hi = ci if isinstance(ci, list) and len(ci) == 2 else (None, None)
    return f"{_fmt(v.get(key))} [{_fmt(lo)}, {_fmt(hi)}]"


def reading_gap(summary: dict) -> float | None:
    """The swap gap the gate reads: on the policy's answer (what the corpus teaches) where the
    family has a policy, else on the optimal answer."""
    gap = summary.get("policy_swap_gap")
    return summary.get("swap_gap") if gap is None else gap


def gate(result: dict, thresholds: dict) -> list[str]:
    """The failed checks of a probe result, one sentence each ([] = pass). Thresholds (all optional):
    min_swap_gap (nats per answer, per family, on the policy's answer where the family has one
    (reading_gap); min_families of them must reach it, default all),
    min_well_formed (overall share), min_reward_ratio (overall per-sample reward / random's),
    bestofn_vs_random (overall best-of-N mean best >= random search's at the same N)."""
    unknown = sorted(set(thresholds) - set(THRESHOLD_KEYS))
    if unknown:
        raise ValueError(f"unknown probe gate threshold(s) {', '.join(unknown)}; known: {', '.join(THRESHOLD_KEYS)}")
    for k, v in thresholds.items():
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if v is not None and not (isinstance(v, bool) if k == "bestofn_vs_random" else number):
            kind = "true or false" if k == "bestofn_vs_random" else "a number"
            raise ValueError(f"probe gate threshold {k} must be {kind}, got {v!r}")
    fams = {f: v if isinstance(v, dict) else {} for f, v in (result.get("families") or {}).items()}
    o = result.get("overall") if isinstance(result.get("overall"), dict) else {}
    failed = []
    if thresholds.get("min_swap_gap") is not None:
        m = thresholds["min_swap_gap"]
        need = thresholds.get("min_families")
        need = len(fams) if need is None else need
        low = {f: reading_gap(v) for f, v in fams.items() if reading_gap(v) is None or reading_gap(v) < m}
        if not fams or len(fams) - len(low) < need:
            shown = ", ".join(f"{f} {_fmt(g, '.2f')}" for f, g in sorted(low.items()))
            failed.append(f"swap gap below {m:g} nats in {len(low)} of {len(fams)} families ({shown}); "
                          f"{need} must reach it")
    m = thresholds.get("min_well_formed")
    if m is not None and not _at_least(o.get("well_formed"), m):
        failed.append(f"well-formed share {_fmt(o.get('well_formed'), '.2f')} < {m:g}")
    if thresholds.get("min_reward_ratio") is not None:
        m, reward, rand = thresholds["min_reward_ratio"], o.get("reward"), o.get("random_reward")
        ok = reward is not None and rand is not None and (reward >= m * rand if rand > 0 else reward > 0)
        if not ok:
            failed.append(f"per-sample reward {_fmt(reward)} is not {m:g}x random answers' {_fmt(rand)}")
    if thresholds.get("bestofn_vs_random") and not _at_least(o.get("best_of_n"), o.get("random_best_of_n")):
        failed.append(f"best-of-N mean best {_fmt(o.get('best_of_n'))} < random search's "
                      f"{_fmt(o.get('random_best_of_n'))}")
    return failed


def _at_least(x, bound) -> bool:
    return x is not None and bound is not None and x >= bound


def _fmt(x, spec: str = ".3f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"
