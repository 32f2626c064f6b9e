"""One TTT step's arithmetic (DESIGN §4): completion log-probs, group advantages, KL-shaped token
advantages, per-adapter clipping, update norms and the FLOPs of both arms. discovery.py runs the
loop (sample -> score -> these -> Adam step); everything here is a function of tensors and the model.
"""
from __future__ import annotations

import itertools
from collections import Counter

import torch

from .lora import adapters_for_rows, lora_modules
from .objectives import LN2, adaptive_betas, entropic_advantages_rows
from .sampling import left_pad
from .training import autocast


# --- FLOPs (the same accounting for best-of-N and TTT) ---------------------------------------
# A forward pass costs 2 N FLOPs per token and a forward+backward 6 N (N = model parameters).
# Sampling prefills each distinct prompt once per sampling call (its KV cache is shared by that
# prompt's rollouts) and then decodes each generated token once, in both arms:
#     sampling = 2 N (sum of distinct prompt lengths + generated tokens)
# TTT's training pass runs each group's prompt once and every rollout's completion on top of it,
# forward and backward, plus the same forward of the frozen base for the KL shaping when
# kl_lambda != 0 and the adapters have moved (at the first step they are zero, the policy is the
# base and its log-probs serve; nothing is charged for a pass that did not run):
#     training = (6 + 2 [kl and a base pass ran]) N (sum of distinct prompt lengths + completion tokens)

def base_params(model) -> int:
    """N for the formulas: the base model's parameters (adapters are a rounding error, and a
    model carrying one adapter per task of the batch must not count the others)."""
    return sum(p.numel() for n, p in model.named_parameters() if ".lora_" not in n)


def sampling_flops(n_params: int, prefill_tokens: int, generated_tokens: int) -> float:
    return 2.0 * n_params * (prefill_tokens + generated_tokens)


def training_flops(n_params: int, sequence_tokens: int, with_base_forward: bool) -> float:
    return (6.0 + (2.0 if with_base_forward else 0.0)) * n_params * sequence_tokens


# --- log-probs -----------------------------------------------------------------------------

def length_buckets(lengths: list[int], max_buckets: int = 3) -> list[list[int]]:
    """Rows grouped by completion length (at most max_buckets groups, each a list of row indices in
    order): a pass over a group pads to its own longest row, not the batch's. The cut points
    minimise padded tokens plus one row-length of overhead per extra pass; short answers with one
    rambling row then stop paying for the rambler's length."""
    N = len(lengths)
    values = sorted(set(lengths))
    upto = list(itertools.accumulate(Counter(lengths)[v] for v in values))  # rows with length <= values[i]

    def cost(cuts: tuple[int, ...]) -> int:  # cuts: indices into values of every group's longest but the last
        total, below = 0, 0
        for i in list(cuts) + [len(values) - 1]:
            total += (upto[i] - below) * values[i]
            below = upto[i]
        return total + N * len(cuts)

    candidates = [()] + [(a,) for a in range(len(values) - 1)]
    if max_buckets >= 3:
        candidates += [(a, b) for a in range(len(values) - 1) for b in range(a + 1, len(values) - 1)]
    best = min(candidates, key=lambda c: (cost(c), len(c)))
    out, lo = [], -1
    for i in list(best) + [len(values) - 1]:
        out.append([r for r, x in enumerate(lengths) if lo < x <= values[i]])
        lo = values[i]
    return out


def completion_logprobs(model, prompts: list[list[int]], comps: list[list[int]], group_of_row: list[int],
                        adapter_of_group: list[int] | None, dtype, vocab_limit: int | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [N, Tc] of each row's completion tokens given its group's prompt, and the mask.

    Each distinct prompt (a group: one task, one start state) runs once, left-padded; its KV cache
    is expanded to the group's rows and the completions run on top of it, so a group's shared
    prompt is computed once instead of once per rollout. Gradients flow through the prompt's pass
    too (the adapter changes its keys and values), exactly as with a full pass per row. The
    completions run in up to 3 passes of rows of similar length (length_buckets).
    adapter_of_group[g]: the LoRA adapter of group g (None: no per-row adapters).
    vocab_limit: normalise over the first vocab_limit ids only, the distribution the sampler drew from.
    """
    device = next(model.parameters()).device
    ids, key_mask, positions = left_pad(prompts, 0, device)
    G, L = ids.shape
    N, Tc = len(comps), max(len(c) for c in comps)
    comp = torch.zeros(N, Tc, dtype=torch.long)
    mask = torch.zeros(N, Tc, dtype=torch.bool)
    for i, c in enumerate(comps):
        comp[i, :len(c)] = torch.tensor(c)
        mask[i, :len(c)] = True
    comp, mask = comp.to(device), mask.to(device)
    groups = None if adapter_of_group is None else torch.tensor(adapter_of_group, device=device)
    cache = model.new_kv_cache(G, L + Tc, device=device)
    with adapters_for_rows(model, groups), autocast(device, dtype):
        prompt_logits, _ = model(ids, kv_cache=cache, pos=0, positions=positions, key_mask=key_mask)
    first = prompt_logits[:, -1]                          # predicts each group's first completion token
    lengths = key_mask.sum(1)
    logp = None
    for bucket in length_buckets([len(c) for c in comps]):
        b = torch.tensor(bucket, device=device)
        rows = torch.tensor([group_of_row[i] for i in bucket], device=device)
        Tb = max(len(comps[i]) for i in bucket)
        logits = first[rows][:, None]
        if Tb > 1:
            full_mask = torch.cat([key_mask[rows], torch.ones(len(bucket), Tb - 1, dtype=torch.bool, device=device)], 1)
            with adapters_for_rows(model, None if groups is None else groups[rows]), autocast(device, dtype):
                comp_logits, _ = model(comp[b, :Tb - 1], kv_cache=cache.select(rows), pos=L,
                                       positions=lengths[rows][:, None] + torch.arange(Tb - 1, device=device),
                                       key_mask=full_mask)
            logits = torch.cat([logits, comp_logits], dim=1)
        if vocab_limit is not None:
            logits = logits[..., :vocab_limit]
        # the chosen token's logit minus the log-sum-exp: no [N, Tc, V] log-softmax is materialised
        chosen = logits.gather(2, comp[b, :Tb, None]).squeeze(-1).float()
        lp = torch.nn.functional.pad(chosen - torch.logsumexp(logits.float(), dim=-1), (0, Tc - Tb))
        logp = lp.new_zeros(N, Tc).index_copy(0, b, lp) if logp is None else logp.index_copy(0, b, lp)
    return logp * mask, mask


# --- advantages ----------------------------------------------------------------------------

def group_advantages(rewards: torch.Tensor, group_of_row: torch.Tensor, n_groups: int, objective: str,
                     adaptive: bool, beta: float, beta_target_kl: float = LN2
                     ) -> tuple[torch.Tensor, torch.Tensor, list[float | None]]:
    """(sequence advantages [N], signal [N] bool, beta per group) for rollouts grouped by start state.
    Adaptive beta: the beta at which KL(softmax(beta r) || uniform) = beta_target_kl, per group.

    A group whose rewards are all equal carries no signal (DESIGN §4): its advantages are 0, its
    rows are marked signal=False (no policy loss, left out of the KL mean) and its beta is None.
    All groups are computed at once on a padded [groups, largest group] matrix.
    """
    r = rewards.double()
    g = group_of_row.long()
    order = torch.argsort(g, stable=True)             # rows grouped, in their original order within a group
    counts = torch.bincount(g, minlength=n_groups)
    slot = torch.empty_like(g)                        # each row's position within its group
    slot[order] = torch.arange(g.numel()) - (counts.cumsum(0) - counts)[g[order]]
    width = int(slot.max()) + 1 if g.numel() else 1
    R = torch.zeros(n_groups, width, dtype=torch.float64)
    valid = torch.zeros(n_groups, width, dtype=torch.bool)
    R[g, slot], valid[g, slot] = r, True
    spread = R.masked_fill(~valid, float("-inf")).amax(1) - R.masked_fill(~valid, float("inf")).amin(1)
    live = (valid.sum(1) >= 2) & (spread > 0)
    if objective == "expected":
        mean = (R * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1)
        A = (R - mean) * valid
        betas_t = None
    else:
        betas_t = adaptive_betas(R, valid, target_kl=beta_target_kl) if adaptive else torch.full((n_groups,), float(beta), dtype=torch.float64)
        A = entropic_advantages_rows(R, valid, betas_t)
    A = A * live[:, None]
    betas: list[float | None] = [None] * n_groups if betas_t is None else \
        [b if ok else None for b, ok in zip(betas_t.tolist(), live.tolist())]
    return A[g, slot], live[g], betas


def token_advantages(seq_adv: torch.Tensor, logp: torch.Tensor, logp_base: torch.Tensor, mask: torch.Tensor,
                     task_of_row: torch.Tensor, signal: torch.Tensor, kl_lambda: float) -> torch.Tensor:
    """A_t = A_n + lambda (mean(d) - d_t) on signal rows, 0 elsewhere; d_t = logp - logp_base.

    mean(d) is per task (tasks sharing a batch must not shape each other) over the valid tokens of
    that task's signal rows only: constant-reward groups neither get shaping nor enter the mean.
    """
    live = mask & signal[:, None].to(mask.device)
    adv = seq_adv[:, None].to(logp.dtype).expand_as(logp) * live
    if kl_lambda == 0.0:
        return adv
    d = (logp - logp_base).detach() * live
    n_tasks = int(task_of_row.max()) + 1 if task_of_row.numel() else 0
    d_sum = torch.zeros(n_tasks, dtype=d.dtype, device=d.device).index_add_(0, task_of_row, d.sum(1))
    n_tok = torch.zeros(n_tasks, dtype=d.dtype, device=d.device).index_add_(0, task_of_row, live.sum(1).to(d.dtype))
    mean_d = (d_sum / n_tok.clamp_min(1.0))[task_of_row]
    return adv + kl_lambda * (mean_d[:, None] - d) * live


# --- per-adapter quantities ------------------------------------------------------------------

def _adapter_grad_params(model):
    return [p for _, m in lora_modules(model) for p in (m.lora_A, m.lora_B)]


def clip_per_adapter(model, n_adapters: int, max_norm: float) -> list[float]:
    """Clip each task's adapter gradient by its own norm (a global norm would couple tasks)."""
    params = _adapter_grad_params(model)
    sq = torch.zeros(params[0].shape[0], device=params[0].device)  # every adapter the model holds
    for p in params:
        if p.grad is not None:
            sq += p.grad.float().pow(2).flatten(1).sum(1)
    norms = sq.sqrt()
    if max_norm > 0:
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale.view(-1, *([1] * (p.grad.dim() - 1))).to(p.grad.dtype))
    return norms[:n_adapters].tolist()


@torch.no_grad()
def lora_update_norms(model, n_adapters: int) -> list[float]:
    """Per adapter, sqrt(sum over wrapped linears of ||scale B_k A_k||_F^2): how far the adapted
    weights have moved from the base. ||BA||_F^2 = tr((B^T B)(A A^T)) uses only r x r products."""
    total = None
    for _, m in lora_modules(model):
        a, b = m.lora_A[:n_adapters].float(), m.lora_B[:n_adapters].float()
        btb = b.transpose(1, 2) @ b                       # [K, r, r]
        aat = a @ a.transpose(1, 2)                       # [K, r, r]
        sq = (btb * aat).sum((1, 2)) * m.scale ** 2       # tr(X Y) for symmetric X, Y
        total = sq if total is None else total + sq
    return total.clamp_min(0).sqrt().tolist()
