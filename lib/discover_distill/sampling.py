"""Batched sampling with the KV cache: each distinct prompt is prefilled once (left-padded into
one batch), then expanded to its rollouts and decoded token by token.

Temperature and top-p sampling, EOS and stop strings, per-token log-probabilities and masks.
Deterministic under torch.Generators: one for the whole batch, or one per prompt, so that a task's
samples do not depend on which other tasks share its batch (prompts of one task share its
generator). Rows may use different LoRA adapters (one per task). `vocab_limit` keeps sampling to
the tokenizer's pieces when the model's embedding has spare rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .lora import adapters_for_rows
from .training import autocast


@dataclass
class Samples:
    """Rollouts, row-aligned: row i came from prompt `prompt_index[i]`."""
    tokens: torch.Tensor        # [N, T] sampled ids (pad after the end)
    mask: torch.Tensor          # [N, T] True for completion tokens (up to and including EOS / the stop)
    logprobs: torch.Tensor      # [N, T] log-prob of each sampled token under the sampling distribution
    texts: list[str]            # decoded completions (EOS excluded)
    prompt_index: torch.Tensor  # [N]
    finished: list[bool]        # ended by EOS or a stop string (not by max_new_tokens)

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    src = probs.cpu() if generator is not None and generator.device.type == "cpu" else probs
    return torch.multinomial(src, 1, generator=generator).squeeze(1).to(probs.device)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
                row_groups: Sequence[tuple[torch.Tensor, torch.Generator]] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids [N], their log-probs [N]) from last-position logits [N, V].

    row_groups: (row indices, generator) pairs; each group's rows are drawn from its own generator
    (rows in no group are left as 0). None: all rows from `generator`.
    """
    logits = logits.float()
    if temperature <= 0:  # greedy
        logp = torch.log_softmax(logits, dim=-1)
        tok = logits.argmax(dim=-1)
        return tok, logp.gather(1, tok[:, None]).squeeze(1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_logp, order = logp.sort(dim=-1, descending=True)
        cum = sorted_logp.exp().cumsum(dim=-1)
        drop = cum - sorted_logp.exp() >= top_p  # keep the smallest prefix reaching top_p (>= 1 token)
        sorted_logp = sorted_logp.masked_fill(drop, float("-inf"))
        logp = torch.full_like(logp, float("-inf")).scatter(1, order, sorted_logp)
        logp = torch.log_softmax(logp, dim=-1)
    probs = logp.exp()
    if row_groups is None:
        tok = _draw(probs, generator)
    else:
        tok = torch.zeros(probs.shape[0], dtype=torch.long, device=probs.device)
        for rows, g in row_groups:
            tok[rows] = _draw(probs[rows], g)
    return tok, logp.gather(1, tok[:, None]).squeeze(1)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids [P, L], key_mask [P, L], positions [P, L]) with prompts right-aligned."""
    L = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), L), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[i, L - len(p):] = True
    positions = (mask.long().cumsum(dim=1) - 1).clamp_min(0)
    return ids.to(device), mask.to(device), positions.to(device)


@torch.no_grad()
def generate(model: torch.nn.Module, prompts: Sequence[Sequence[int]], counts: Sequence[int], *,
             max_new_tokens: int, eos_id: int, pad_id: int = 0, temperature: float = 1.0, top_p: float = 1.0,
             stop_strings: Sequence[str] = (), decode: Callable[[list[int]], str] | None = None,
             generator: torch.Generator | Sequence[torch.Generator] | None = None,
             adapter_ids: Sequence[int] | None = None, vocab_limit: int | None = None,
             dtype: torch.dtype = torch.float32) -> Samples:
    """Sample counts[i] completions of prompts[i] for every i, in one batch.

    generator: one for all rows, or a list with prompt i's generator at i (prompts may share one;
    a generator's draws then depend only on its own prompts' rows: once all of them are done it
    is not drawn from again). adapter_ids[i] (optional): the LoRA adapter prompt i's rows use.
    vocab_limit: sample only ids < vocab_limit. Stop strings need `decode`.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids, key_mask, positions = left_pad(prompts, pad_id, device)
    P, L = ids.shape
    rows = torch.repeat_interleave(torch.arange(P, device=device), torch.tensor(list(counts), device=device))
    N = rows.numel()
    lengths = key_mask.sum(dim=1)[rows]
    row_adapters = None if adapter_ids is None else torch.tensor(list(adapter_ids), device=device)
    cache = model.new_kv_cache(P, L + max_new_tokens, device=device)
    with adapters_for_rows(model, row_adapters), autocast(device, dtype):
        logits, _ = model(ids, kv_cache=cache, pos=0, positions=positions, key_mask=key_mask)
    last = logits[:, -1][rows]
    cache = cache.select(rows)
    full_mask = torch.cat([key_mask[rows], torch.ones(N, max_new_tokens, dtype=torch.bool, device=device)], dim=1)
    row_adapters = None if row_adapters is None else row_adapters[rows]
    row_groups = None
    if isinstance(generator, (list, tuple)):
        if len(generator) != P:
            raise ValueError(f"generate: {len(generator)} generators for {P} prompts")
        owner = [next(j for j, g in enumerate(generator) if g is generator[i]) for i in range(P)]
        row_owner = torch.tensor(owner, device=device)[rows]
        row_groups = [((row_owner == j).nonzero().flatten(), generator[j]) for j in sorted(set(owner))]
    out_tok = torch.full((N, max_new_tokens), pad_id, dtype=torch.long, device=device)
    out_lp = torch.zeros((N, max_new_tokens), device=device)
    out_mask = torch.zeros((N, max_new_tokens), dtype=torch.bool, device=device)
    done = torch.zeros(N, dtype=torch.bool, device=device)
    finished = [False] * N
    for t in range(max_new_tokens):
        if vocab_limit is not None:
            last = last[:, :vocab_limit]
        live_groups = None if row_groups is None else [(r, g) for r, g in row_groups if not bool(done[r].all())]
        tok, lp = sample_next(last, temperature, top_p, generator, live_groups)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        out_tok[:, t], out_lp[:, t], out_mask[:, t] = tok, torch.where(done, 0.0, lp), ~done
        done = done | (tok == eos_id)
        if stop_strings and decode is not None:
            for i in (~done).nonzero().flatten().tolist():
                text = decode(out_tok[i, :t + 1].tolist())
                if any(s in text for s in stop_strings):
                    done[i] = True
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        with adapters_for_rows(model, row_adapters), autocast(device, dtype):
            logits, _ = model(tok[:, None], kv_cache=cache, pos=L + t, positions=(lengths + t)[:, None],
                              key_mask=full_mask[:, :L + t + 1])
        last = logits[:, -1]
    finished = done.tolist()
    texts = []
    for i in range(N):
        ids_i = [x for x, m in zip(out_tok[i].tolist(), out_mask[i].tolist()) if m and x != eos_id]
        texts.append(decode(ids_i) if decode is not None else "")
    if was_training:
        model.train()
    return Samples(out_tok, out_mask, out_lp, texts, rows, finished)


@torch.no_grad()
def generate_naive(model: torch.nn.Module, prompt: Sequence[int], n: int, *, max_new_tokens: int, eos_id: int,
                   temperature: float = 1.0, generator: torch.Generator | None = None) -> list[list[int]]:
    """Reference sampler: one prompt, rows one at a time, full recompute every token (no cache).
    Used by tests and as the peer in the sampling benchmark."""
    device = next(model.parameters()).device
    outs = []
    for _ in range(n):
        seq = list(prompt)
        for _ in range(max_new_tokens):
            logits, _ = model(torch.tensor([seq], device=device))
            tok, _ = sample_next(logits[:, -1], temperature, 1.0, generator)
            seq.append(int(tok))
            if int(tok) == eos_id:
                break
        outs.append(seq[len(prompt):])
    return outs
