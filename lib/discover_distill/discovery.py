"""Best-of-N and test-time training (TTT) on verifiable tasks (DESIGN §4): the loops over a batch
of tasks. The arithmetic of one TTT step (advantages, KL shaping, FLOPs) lives in ttt.py.

Both loops work on a batch of tasks at once: every task's rollouts go into one sampling call,
and in TTT every task trains its own LoRA adapter (rows carry their task's adapter id), so one
forward/backward serves all tasks of the batch while their adapters stay independent. Each task
samples from its own generator seeded by (seed, task_id), so its result does not depend on which
tasks share its batch or shard.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field

import torch

from . import prompts
from .archive import PuctArchive
from .fileio import append_jsonl
from .cli import UserError
from .lora import LoRAConfig, lora_disabled, lora_parameters, reset_adapter, save_lora
from .objectives import LN2, policy_gradient_loss
from .sampling import generate
from .tasks import SOLVED, load_tasks, reward_for_task
from .ttt import (base_params, clip_per_adapter, completion_logprobs, group_advantages, lora_update_norms, sampling_flops,
                  token_advantages, training_flops)

__all__ = ["DiscoveryConfig", "load_tasks", "run_bestofn", "run_ttt", "task_dir"]  # load_tasks lives in tasks/


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
    beta_target_kl: float = LN2       # adaptive beta: KL(softmax(beta r) || uniform) it aims for
    kl_lambda: float = 0.1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lr: float = 1e-3
    temperature: float = 1.0
    groups: int = 4                   # start states per step with reuse (rollouts are split among them;
                                      # 32 / 4 = 8 per state, the official group size)
    archive_cap: int = 1000           # the official PUCTSampler's max_buffer_size
    grad_clip: float = 1.0
    budget_match: str = "samples"     # samples | flops (best-of-N only)
    save_adapter_every: int = 10


# --- task files ------------------------------------------------------------------------------

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
    best-of-N gets (1 + 3 + [kl]) times the samples. This counts tokens as if prompts cost what
    answers cost; the FLOPs both arms actually spent are recorded per task (ttt.py's formulas),
    so the registry shows how close the match is."""
    n = cfg.ttt_steps * cfg.rollouts
    if cfg.budget_match == "flops":
        n *= 1 + 3 + (1 if cfg.kl_lambda else 0)
    return n


# --- best-of-N -------------------------------------------------------------------------------

def task_generators(tasks: list[dict], seed: int, device) -> list[torch.Generator]:
    """One sampling generator per task, seeded from (seed, task_id) only: a task's samples never
    depend on which tasks share its batch or shard (DESIGN §4, reproducibility)."""
    return [torch.Generator(device=device).manual_seed(hash_seed(seed, t["task_id"])) for t in tasks]


def run_bestofn(model, tok, tasks: list[dict], cfg: DiscoveryConfig, seed: int,
                dtype=torch.float32, log=print, flops_targets: list[float] | None = None) -> list[dict]:
    """Sample each task's budget in rounds of `rollouts`, all tasks of the batch per round.

    `flops_targets` (one per task): instead of a sample budget, sample each task in rounds until it
    has spent at least that many FLOPs (compute matched task by task to another run, e.g. the TTT
    run's per-task FLOPs); a task that has reached its target leaves the batch. A task's samples
    come from its own generator, so they are the same as a sample-budget run's, only more or fewer."""
    device = next(model.parameters()).device
    states = [TaskState(t) for t in tasks]
    gens = task_generators(tasks, seed, device)
    budget = bestofn_budget(cfg)
    if flops_targets is not None and len(flops_targets) != len(tasks):
        raise ValueError(f"flops_targets: {len(flops_targets)} targets for {len(tasks)} tasks")
    n_params = base_params(model)
    ids = [prompt_ids(tok, prompts.plain_prompt(t["prompt"])) for t in tasks]
    curves: list[list[dict]] = [[] for _ in tasks]  # best-so-far after each round (the budget curves)

    def wanted(k: int, r: int) -> int:
        if flops_targets is not None:
            return cfg.rollouts if states[k].flops < flops_targets[k] else 0
        return max(0, min(cfg.rollouts, budget - r * cfg.rollouts))
    r = 0
    while active := [k for k in range(len(tasks)) if wanted(k, r)]:
        s = generate(model, [ids[k] for k in active], [wanted(k, r) for k in active], max_new_tokens=cfg.max_new_tokens,
                     eos_id=tok.eos_id, pad_id=tok.pad_id, temperature=cfg.temperature,
                     stop_strings=prompts.STOP_STRINGS, decode=tok.decode, generator=[gens[k] for k in active],
                     vocab_limit=tok.vocab_size, dtype=dtype)
        owners = [active[i] for i in s.prompt_index.tolist()]
        answers, rewards = score(s, owners, states)
        gen_per_row = s.mask.sum(1).tolist()
        r += 1
        for k in active:
            st = states[k]
            rows = [i for i, o in enumerate(owners) if o == k]
            st.observe(r, [answers[i] for i in rows], [rewards[i] for i in rows])
            st.samples += len(rows)
            n_gen = int(sum(gen_per_row[i] for i in rows))
            st.generated_tokens += n_gen
            st.flops += sampling_flops(n_params, len(ids[k]), n_gen)
            curves[k].append({"samples": st.samples, "flops": st.flops, "best_so_far": max(0.0, st.best_reward)})
    extra = [{"budget": budget} if flops_targets is None else {"budget": st.samples, "flops_target": flops_targets[k]}
             for k, st in enumerate(states)]
    return [st.result(cfg, {**extra[k], "best_curve": curves[k]}) for k, st in enumerate(states)]


# --- TTT -------------------------------------------------------------------------------------

def run_ttt(model, tok, tasks: list[dict], cfg: DiscoveryConfig, out_dirs: list[str], seed: int,
            dtype=torch.float32, log=print) -> list[dict]:
    """Test-time LoRA training on each task of the batch (model must carry >= len(tasks) adapters).

    Every step: choose start states (PUCT archive), sample `rollouts` per task with the task's own
    adapter and generator, score, compute group advantages (constant-reward groups carry no signal),
    shape them per token by the KL to the base, and take one Adam step on every task's LoRA.
    """
    K = len(tasks)
    device = next(model.parameters()).device
    lcfg = LoRAConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha)
    for k, t in enumerate(tasks):
        reset_adapter(model, k, seed=hash_seed(seed, t["task_id"]))
    gens = task_generators(tasks, seed, device)
    params = lora_parameters(model)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.99))
    states = [TaskState(t, archive=PuctArchive(cap=cfg.archive_cap)) for t in tasks]
    curves: list[list[dict]] = [[] for _ in tasks]
    n_params = base_params(model)
    V = tok.vocab_size
    moved = False  # has any adapter left its fresh state (B = 0)? Read from the last step's update norms
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
        task_of_group = [k for k, _ in groups]
        # 2. sample with each task's own adapter and generator
        s = generate(model, group_prompts, counts, max_new_tokens=cfg.max_new_tokens, eos_id=tok.eos_id,
                     pad_id=tok.pad_id, temperature=cfg.temperature, stop_strings=prompts.STOP_STRINGS,
                     decode=tok.decode, generator=[gens[k] for k in task_of_group], adapter_ids=task_of_group,
                     vocab_limit=V, dtype=dtype)
        g_of_row = s.prompt_index.cpu()
        g_list = g_of_row.tolist()
        owners = [task_of_group[g] for g in g_list]
        answers, rewards = score(s, owners, states)
        # 3. advantages per group (same task, same start state)
        seq_adv, signal, betas = group_advantages(torch.tensor(rewards, dtype=torch.float64), g_of_row, len(groups),
                                                  cfg.objective, cfg.adaptive_beta, cfg.beta,
                                                  cfg.beta_target_kl)
        # 4. one Adam step on every task's LoRA
        comp = [[t for t, m in zip(s.tokens[i].tolist(), s.mask[i].tolist()) if m] for i in range(len(rewards))]
        keep = [i for i, c in enumerate(comp) if c]
        stats = {k: {} for k in range(K)}
        train_tokens = [0] * K
        learn = cfg.lr > 0  # --lr 0 (the ttt_lr0 control): reuse prompts and sampling, no learning
        base_pass = False
        if keep and learn:
            kept_groups = sorted({g_list[i] for i in keep})
            local = {g: j for j, g in enumerate(kept_groups)}  # the pass sees only groups with a trained row
            train_prompts = [group_prompts[g] for g in kept_groups]
            train_comps = [comp[i] for i in keep]
            row_group = [local[g_list[i]] for i in keep]
            for g in kept_groups:
                train_tokens[task_of_group[g]] += len(group_prompts[g])
            for i in keep:
                train_tokens[owners[i]] += len(comp[i])
            task_of_row = torch.tensor([owners[i] for i in keep], device=device)
            model.train()
            logp, mask = completion_logprobs(model, train_prompts, train_comps, row_group,
                                             [task_of_group[g] for g in kept_groups], dtype, vocab_limit=V)
            # base log-probs: the KL shaping needs them, and the KL-to-base metric is reported for
            # every learning variant (kl_lambda = 0 included; that forward is not charged to its FLOPs).
            # While every adapter is fresh (B = 0: the first step) the policy is the base, bit for bit.
            base_pass = moved
            if base_pass:
                with torch.no_grad(), lora_disabled(model):
                    logp_base, _ = completion_logprobs(model, train_prompts, train_comps, row_group, None, dtype,
                                                       vocab_limit=V)
            else:
                logp_base = logp.detach()
            tok_adv = token_advantages(seq_adv[keep].to(device), logp.detach(), logp_base, mask, task_of_row,
                                       signal[keep], cfg.kl_lambda)
            loss = policy_gradient_loss(tok_adv, logp, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norms = clip_per_adapter(model, K, cfg.grad_clip)
            if all(math.isfinite(g) for g in grad_norms):
                opt.step()
            else:  # never let one bad batch poison the adapters: skip the update, keep the record
                log(f"warning: non-finite TTT gradient at step {step}; update skipped")
            d = (logp.detach() - logp_base) * mask
            lp = logp.detach()
            for k in range(K):
                rk = task_of_row == k
                m = mask[rk]
                n_tok = max(1, int(m.sum()))
                stats[k] = {"kl_to_base": float(d[rk].sum() / n_tok), "entropy": float(-(lp[rk] * m).sum() / n_tok),
                            "loss": float(-(tok_adv[rk] * lp[rk]).sum()), "grad_norm": grad_norms[k]}
        elif keep:  # no learning: the adapters stay zero, so the policy is the base and no pass is needed
            row_task = torch.tensor(owners, device=s.logprobs.device)
            for k in range(K):
                m = s.mask[row_task == k]
                n_tok = max(1, int(m.sum()))
                stats[k] = {"kl_to_base": 0.0, "entropy": float(-(s.logprobs[row_task == k] * m).sum() / n_tok),
                            "loss": 0.0, "grad_norm": 0.0}
        update_norms = lora_update_norms(model, K)
        moved = any(n != 0.0 for n in update_norms)
        # 5. bookkeeping, archive, metrics, adapters
        gen_per_row = s.mask.sum(1).tolist()
        for k, st in enumerate(states):
            rows = [i for i, o in enumerate(owners) if o == k]
            rk = [rewards[i] for i in rows]
            st.observe(step, [answers[i] for i in rows], rk)
            st.samples += len(rows)
            n_gen = int(sum(gen_per_row[i] for i in rows))
            st.generated_tokens += n_gen
            prefill = sum(len(group_prompts[g]) for g, kk in enumerate(task_of_group) if kk == k)
            st.flops += sampling_flops(n_params, prefill, n_gen) + training_flops(
                n_params, train_tokens[k], cfg.kl_lambda != 0 and base_pass)
            if cfg.reuse:
                for i in rows:
                    parent = groups[g_list[i]][1]
                    if answers[i]:
                        st.archive.insert(parent, answers[i], rewards[i])
                    else:  # the official sampler still counts the visit of a rollout with no answer
                        st.archive.record_failed(parent)
                st.archive.flush()  # prune now, so archive_size is logged as the next step sees it
            task_groups = [g for g, kk in enumerate(task_of_group) if kk == k]
            task_betas = [betas[g] for g in task_groups if betas[g] is not None]
            curves[k].append({"samples": st.samples, "flops": st.flops, "best_so_far": max(0.0, st.best_reward)})
            row = {"step": step, "mean_reward": sum(rk) / len(rk), "max_reward": max(rk),
                   "best_so_far": st.best_reward, "samples": st.samples,
                   "generated_tokens": st.generated_tokens, "flops": st.flops,
                   "const_group_share": sum(not bool(signal[g_of_row == g].any())
                                            for g in task_groups) / len(task_groups),
                   "beta": (sum(task_betas) / len(task_betas)) if task_betas else None,
                   "archive_size": len(st.archive), "lora_update_norm": update_norms[k], **stats[k]}
            append_jsonl(os.path.join(out_dirs[k], "metrics.jsonl"), row)
            if step % cfg.save_adapter_every == 0 or step == cfg.ttt_steps:
                save_lora(model, lcfg, os.path.join(out_dirs[k], f"adapter_step_{step:04d}", "lora.pt"), index=k,
                          meta={"task_id": st.task["task_id"], "step": step, "best_reward": st.best_reward})
    return [st.result(cfg, {"best_curve": curves[k], "best_lineage": st.archive.lineage(st.archive.best().id)})
            for k, st in enumerate(states)]


def hash_seed(seed: int, task_id: str) -> int:
    """A per-task seed that does not depend on which other tasks share the batch."""
    return int(hashlib.sha256(f"{seed}/{task_id}".encode()).hexdigest()[:8], 16)
