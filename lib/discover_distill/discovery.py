"""Best-of-N and test-time training (TTT) on verifiable tasks (DESIGN §4).

Both loops work on a batch of tasks at once: every task's rollouts go into one sampling call,
and in TTT every task trains its own LoRA adapter (rows carry their task's adapter id), so one
forward/backward serves all tasks of the batch while their adapters stay independent.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

import torch

from . import prompts
from .archive import PuctArchive
from .fileio import append_jsonl
from .cli import UserError
from .lora import LoRAConfig, adapters_for_rows, lora_disabled, lora_modules, lora_parameters, reset_adapter, save_lora
from .objectives import (adaptive_beta, entropic_advantages, expected_advantages, kl_shaped_advantages,
                         policy_gradient_loss)
from .sampling import generate
from .tasks import FAMILIES, SOLVED, TASK_ID_RE, TASK_KEYS, reward_for_task
from .training import autocast


TOP_SOLUTIONS = 8  # distinct best answers kept per task (the SDFT data builder draws from them)


@dataclass
class DiscoveryConfig:
    mode: str = "ttt"                 # bestofn | ttt
    ttt_steps: int = 30
    rollouts: int = 32
    max_new_tokens: int = 32
    objective: str = "entropic"       # entropic | expected
    reuse: bool = True
    adaptive_beta: bool = True
    beta: float = 2.0                 # fixed beta when adaptive_beta is off
    kl_lambda: float = 0.1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lr: float = 1e-3
    temperature: float = 1.0
    groups: int = 4                   # start states per step with reuse (rollouts are split among them)
    archive_cap: int = 64
    grad_clip: float = 1.0
    budget_match: str = "samples"     # samples | flops (best-of-N only)
    save_adapter_every: int = 10


# --- task files ------------------------------------------------------------------------------

def load_tasks(path: str) -> list[dict]:
    """Validated task lines; any bad line stops with one error naming file:line."""
    if not os.path.isfile(path):
        raise UserError(f"--tasks: file not found: {path}")
    tasks, seen = [], set()
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                task = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(task, dict) or set(TASK_KEYS) - set(task):
                raise UserError(f"{where}: a task needs the keys {', '.join(TASK_KEYS)}")
            tid = task["task_id"]
            if not isinstance(tid, str) or not TASK_ID_RE.match(tid) or tid in (".", ".."):
                raise UserError(f"{where}: unsafe task_id {tid!r} (allowed: letters, digits, . _ -, at most 128)")
            if task["family"] not in FAMILIES:
                raise UserError(f"{where}: unknown family {task['family']!r}")
            if tid in seen:
                raise UserError(f"{where}: duplicate task_id {tid}")
            seen.add(tid)
            tasks.append(task)
    if not tasks:
        raise UserError(f"--tasks: {path} contains no tasks")
    return tasks


def task_dir(out_root: str, task_id: str) -> str:
    """The task's directory, guaranteed inside out_root."""
    root = os.path.realpath(out_root)
    path = os.path.realpath(os.path.join(root, task_id))
    if os.path.dirname(path) != root:
        raise UserError(f"task_id {task_id!r} would write outside --out_root")
    return path


# --- bookkeeping -----------------------------------------------------------------------------

@dataclass
class TaskState:
    task: dict
    best_reward: float = -1.0
    best_solution: str = ""
    first_step_solved: int | None = None
    samples: int = 0
    generated_tokens: int = 0
    flops: float = 0.0
    started: float = field(default_factory=time.time)
    archive: PuctArchive | None = None
    seen: dict[str, float] = field(default_factory=dict)  # every distinct answer and its reward

    def observe(self, step: int, answers: list[str], rewards: list[float]) -> None:
        for a, r in zip(answers, rewards):
            if r > self.best_reward:
                self.best_reward, self.best_solution = r, a
            if a and (a not in self.seen or r > self.seen[a]):
                self.seen[a] = r
        if self.first_step_solved is None and self.best_reward >= SOLVED:
            self.first_step_solved = step

    def result(self, cfg: DiscoveryConfig, extra: dict | None = None) -> dict:
        return {"task_id": self.task["task_id"], "family": self.task["family"], "difficulty": self.task["difficulty"],
                "mode": cfg.mode, "best_reward": max(0.0, self.best_reward), "best_solution": self.best_solution,
                "solved": self.best_reward >= SOLVED, "samples": self.samples,
                "generated_tokens": self.generated_tokens, "flops": self.flops,
                "first_step_solved": self.first_step_solved, "wall_s": time.time() - self.started,
                "top_solutions": [{"solution": a, "reward": r} for a, r in
                                  sorted(self.seen.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SOLUTIONS]],
                **(extra or {})}


def prompt_ids(tok, text: str) -> list[int]:
    """Token ids of a prompt as the corpus showed it: a document starts right after EOS."""
    return [tok.eos_id] + tok.encode(text)


def score(samples, owners: list[int], states: list[TaskState]) -> tuple[list[str], list[float]]:
    answers = [prompts.extract_answer(t) for t in samples.texts]
    rewards = [reward_for_task(states[o].task, t) for o, t in zip(owners, samples.texts)]
    return answers, rewards


def bestofn_budget(cfg: DiscoveryConfig) -> int:
    """Samples per task. `samples`: ttt_steps x rollouts (the anchor paper's convention).
    `flops`: also charge TTT's training passes -- per rollout a backward-inclusive pass over its
    tokens (~3x a forward) plus, with KL shaping, one more forward for the base log-probs -- so
    best-of-N gets (1 + 3 + [kl]) times the samples."""
    n = cfg.ttt_steps * cfg.rollouts
    if cfg.budget_match == "flops":
        n *= 1 + 3 + (1 if cfg.kl_lambda else 0)
    return n


# --- best-of-N -------------------------------------------------------------------------------

def run_bestofn(model, tok, tasks: list[dict], cfg: DiscoveryConfig, generator: torch.Generator,
                dtype=torch.float32, log=print) -> list[dict]:
    """Sample each task's budget in rounds of `rollouts`, all tasks of the batch per round."""
    states = [TaskState(t) for t in tasks]
    budget = bestofn_budget(cfg)
    n_params = model.num_params()
    ids = [prompt_ids(tok, prompts.plain_prompt(t["prompt"])) for t in tasks]
    rounds = math.ceil(budget / cfg.rollouts)
    curves: list[list[dict]] = [[] for _ in tasks]  # best-so-far after each round (for the sample curves)
    for r in range(rounds):
        n = min(cfg.rollouts, budget - r * cfg.rollouts)
        s = generate(model, ids, [n] * len(tasks), max_new_tokens=cfg.max_new_tokens, eos_id=tok.eos_id,
                     pad_id=tok.pad_id, temperature=cfg.temperature, stop_strings=prompts.STOP_STRINGS,
                     decode=tok.decode, generator=generator, dtype=dtype)
        owners = s.prompt_index.tolist()
        answers, rewards = score(s, owners, states)
        gen_per_row = s.mask.sum(1).tolist()
        for k, st in enumerate(states):
            rows = [i for i, o in enumerate(owners) if o == k]
            st.observe(r + 1, [answers[i] for i in rows], [rewards[i] for i in rows])
            st.samples += len(rows)
            st.generated_tokens += int(sum(gen_per_row[i] for i in rows))
            st.flops += 2 * n_params * (len(ids[k]) + sum(gen_per_row[i] for i in rows))
            curves[k].append({"samples": st.samples, "best_so_far": max(0.0, st.best_reward)})
    return [st.result(cfg, {"budget": budget, "best_curve": curves[k]}) for k, st in enumerate(states)]


# --- TTT -------------------------------------------------------------------------------------

def completion_logprobs(model, seqs: list[list[int]], prompt_lens: list[int], comp_lens: list[int],
                        adapter_ids: torch.Tensor | None, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [N, Tc] of each completion token given its prompt (right-padded batch) and mask."""
    device = next(model.parameters()).device
    T = max(len(s) for s in seqs)
    Tc = max(comp_lens)
    idx = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        idx[i, :len(s)] = torch.tensor(s)
    idx = idx.to(device)
    with adapters_for_rows(model, adapter_ids), autocast(device, dtype):
        logits, _ = model(idx[:, :-1])
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    gather_pos = torch.zeros(len(seqs), Tc, dtype=torch.long)
    mask = torch.zeros(len(seqs), Tc, dtype=torch.bool)
    for i, (p, c) in enumerate(zip(prompt_lens, comp_lens)):
        gather_pos[i, :c] = torch.arange(p - 1, p - 1 + c)
        mask[i, :c] = True
    gather_pos, mask = gather_pos.to(device), mask.to(device)
    targets = idx.gather(1, (gather_pos + 1).clamp_max(T - 1))
    rows = torch.arange(len(seqs), device=device)[:, None]
    logp = logp_all[rows, gather_pos].gather(2, targets[..., None]).squeeze(-1)
    return logp * mask, mask


def run_ttt(model, tok, tasks: list[dict], cfg: DiscoveryConfig, generator: torch.Generator, out_dirs: list[str],
            seed: int, dtype=torch.float32, log=print) -> list[dict]:
    """Test-time LoRA training on each task of the batch (model must carry len(tasks) adapters)."""
    K = len(tasks)
    lcfg = LoRAConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha)
    for k, t in enumerate(tasks):
        reset_adapter(model, k, seed=hash_seed(seed, t["task_id"]))
    params = lora_parameters(model)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.99))
    states = [TaskState(t, archive=PuctArchive(cap=cfg.archive_cap)) for t in tasks]
    n_params = model.num_params()
    for step in range(1, cfg.ttt_steps + 1):
        # 1. start states and prompts: (task k, archive state) groups
        groups, group_prompts, counts = [], [], []
        for k, st in enumerate(states):
            chosen = st.archive.select(cfg.groups) if cfg.reuse else [st.archive.states[0]]
            split = [cfg.rollouts // len(chosen) + (1 if i < cfg.rollouts % len(chosen) else 0) for i in range(len(chosen))]
            for state, n in zip(chosen, split):
                if n == 0:
                    continue
                text = (prompts.plain_prompt(st.task["prompt"]) if state.solution is None else
                        prompts.improve_prompt(st.task["prompt"], state.solution, state.reward))
                groups.append((k, state.id))
                group_prompts.append(prompt_ids(tok, text))
                counts.append(n)
        adapter_of_group = [k for k, _ in groups]
        # 2. sample with each task's own adapter
        s = generate(model, group_prompts, counts, max_new_tokens=cfg.max_new_tokens, eos_id=tok.eos_id,
                     pad_id=tok.pad_id, temperature=cfg.temperature, stop_strings=prompts.STOP_STRINGS,
                     decode=tok.decode, generator=generator, adapter_ids=adapter_of_group, dtype=dtype)
        g_of_row = s.prompt_index.tolist()
        owners = [groups[g][0] for g in g_of_row]
        answers, rewards = score(s, owners, states)
        # 3. advantages per group (same task, same start state)
        r_t = torch.tensor(rewards, dtype=torch.float64)
        seq_adv = torch.zeros(len(rewards), dtype=torch.float64)
        betas = [[] for _ in range(K)]
        for g in range(len(groups)):
            rows = [i for i, x in enumerate(g_of_row) if x == g]
            rg = r_t[rows]
            if cfg.objective == "expected":
                seq_adv[rows] = expected_advantages(rg)
            else:
                beta = adaptive_beta(rg) if cfg.adaptive_beta else cfg.beta
                if float(rg.max() - rg.min()) > 0:  # constant groups carry no signal: keep them out of the trace
                    betas[groups[g][0]].append(beta)
                seq_adv[rows] = entropic_advantages(rg, beta)
        # 4. one Adam step on every task's LoRA
        comp = [[t for t, m in zip(s.tokens[i].tolist(), s.mask[i].tolist()) if m] for i in range(len(rewards))]
        keep = [i for i, c in enumerate(comp) if c]
        stats = {k: {} for k in range(K)}
        if keep:
            seqs = [group_prompts[g_of_row[i]] + comp[i] for i in keep]
            plens = [len(group_prompts[g_of_row[i]]) for i in keep]
            clens = [len(comp[i]) for i in keep]
            rows_adapter = torch.tensor([owners[i] for i in keep], device=s.tokens.device)
            model.train()
            logp, mask = completion_logprobs(model, seqs, plens, clens, rows_adapter, dtype)
            # base log-probs: the KL shaping needs them, and the KL-to-base metric is reported for
            # every variant (kl_lambda = 0 included; that forward is not charged to its FLOPs)
            with torch.no_grad(), lora_disabled(model):
                logp_base, _ = completion_logprobs(model, seqs, plens, clens, None, dtype)
            adv = seq_adv[keep].to(logp.device, torch.float32)
            tok_adv = torch.zeros_like(logp)
            for k in range(K):  # the KL baseline mean(d) is per task: tasks must not shape each other
                rk = torch.tensor([owners[i] == k for i in keep], device=logp.device)
                if rk.any():
                    tok_adv[rk] = kl_shaped_advantages(adv[rk], logp[rk].detach(), logp_base[rk], mask[rk], cfg.kl_lambda)
            loss = policy_gradient_loss(tok_adv, logp, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norms = clip_per_adapter(model, K, cfg.grad_clip)
            if all(math.isfinite(g) for g in grad_norms):
                opt.step()
            else:  # never let one bad batch poison the adapters: skip the update, keep the record
                log(f"warning: non-finite TTT gradient at step {step}; update skipped")
            d = (logp.detach() - logp_base) * mask
            for k in range(K):
                rk = torch.tensor([owners[i] == k for i in keep], device=logp.device)
                m = mask[rk]
                n_tok = max(1, int(m.sum()))
                stats[k] = {"kl_to_base": float(d[rk].sum() / n_tok), "entropy": float(-(logp.detach()[rk] * m).sum() / n_tok),
                            "loss": float(-(tok_adv[rk] * logp.detach()[rk]).sum()), "grad_norm": grad_norms[k]}
        # 5. bookkeeping, archive, metrics, adapters
        gen_per_row = s.mask.sum(1).tolist()
        for k, st in enumerate(states):
            rows = [i for i, o in enumerate(owners) if o == k]
            rk = [rewards[i] for i in rows]
            st.observe(step, [answers[i] for i in rows], rk)
            st.samples += len(rows)
            n_gen = int(sum(gen_per_row[i] for i in rows))
            n_prompt = sum(len(group_prompts[g_of_row[i]]) for i in rows)
            st.generated_tokens += n_gen
            train_mult = 2 + 6 + (2 if cfg.kl_lambda else 0)  # sample + train (fwd+bwd) + base forward
            st.flops += n_params * train_mult * (n_prompt + n_gen)
            if cfg.reuse:
                for i in rows:
                    if answers[i]:
                        st.archive.insert(groups[g_of_row[i]][1], answers[i], rewards[i])
            row = {"step": step, "mean_reward": sum(rk) / len(rk), "max_reward": max(rk),
                   "best_so_far": st.best_reward, "samples": st.samples,
                   "beta": (sum(betas[k]) / len(betas[k])) if betas[k] else None,
                   "archive_size": len(st.archive), **stats[k]}
            append_jsonl(os.path.join(out_dirs[k], "metrics.jsonl"), row)
            if step % cfg.save_adapter_every == 0 or step == cfg.ttt_steps:
                save_lora(model, lcfg, os.path.join(out_dirs[k], f"adapter_step_{step:04d}", "lora.pt"), index=k,
                          meta={"task_id": st.task["task_id"], "step": step, "best_reward": st.best_reward})
    return [st.result(cfg, {"best_lineage": st.archive.lineage(st.archive.best().id)}) for st in states]


def clip_per_adapter(model, n_adapters: int, max_norm: float) -> list[float]:
    """Clip each task's adapter gradient by its own norm (a global norm would couple tasks)."""
    mods = [m for _, m in lora_modules(model)]
    sq = torch.zeros(mods[0].lora_A.shape[0], device=mods[0].lora_A.device)  # every adapter the model holds
    for m in mods:
        for p in (m.lora_A, m.lora_B):
            if p.grad is not None:
                sq += p.grad.float().pow(2).flatten(1).sum(1)
    norms = sq.sqrt()
    if max_norm > 0:
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for m in mods:
            for p in (m.lora_A, m.lora_B):
                if p.grad is not None:
                    p.grad.mul_(scale.view(-1, *([1] * (p.grad.dim() - 1))).to(p.grad.dtype))
    return norms[:n_adapters].tolist()


def hash_seed(seed: int, task_id: str) -> int:
    """A per-task seed that does not depend on which other tasks share the batch."""
    import hashlib
    return int(hashlib.sha256(f"{seed}/{task_id}".encode()).hexdigest()[:8], 16)
