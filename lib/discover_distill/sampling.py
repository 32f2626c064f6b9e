"""Batched sampling with the KV cache: each distinct prompt is prefilled once (left-padded into
one batch), then expanded to its rollouts and decoded token by token.

Temperature and top-p sampling, EOS and stop strings, per-token log-probabilities and masks.
Deterministic under torch.Generators: one for the whole batch, or one per prompt, so that a task's
samples do not depend on which other tasks share its batch (prompts of one task share its
generator). Rows may use different LoRA adapters (one per task). `vocab_limit` keeps sampling to
the tokenizer's pieces when the model's embedding has spare rows.

Two engines with identical outputs (tokens, masks, texts, finished, and the state each generator
is left in; log-probs to float rounding; tests/test_sampling.py holds them equal token for token):
- "reference": the plain loop. Every step it decodes each live row's whole prefix on the host to
  look for stop strings, and reads `done` back per generator group to decide who draws.
- "fast" (default): stop strings are found on the device by a small automaton driven by per-token
  tables built once per (tokenizer, stop strings) (stops.py); draws use the exponential race
  torch.multinomial itself uses for one sample, without its host-side validity read; `done` is
  read back every `sync_every` steps only (on a GPU), each generator being rewound to where it
  stood when its rows had all finished; the KV caches are allocated once per shape and reused;
  finished rows leave the decode batch (their cache rows are dropped when `done` is read and a
  quarter of the batch has ended), so a batch whose answers are short but whose longest rambles
  to max_new_tokens pays for the live rows only. Draws still cover every row of a live generator
  group (finished rows get uniform logits), so each generator's stream is unchanged.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .lora import adapter_runs, adapters_for_rows
from .stops import StopChecker, stop_table_for
from .training import autocast

ENGINES = ("fast", "reference")


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


def _draw_race(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """torch.multinomial(probs, 1) exactly (same ids, same generator advance): for one sample it
    takes argmax(p / q), q ~ Exp(1) drawn with `exponential_` on a tensor like probs. Done here
    directly, it skips multinomial's validity check, a host read per call (the fast engine checks
    validity on the device and reads the flag at its sync points)."""
    src = probs.cpu() if generator is not None and generator.device.type == "cpu" else probs
    q = torch.empty_like(src).exponential_(1, generator=generator)
    return (src / q).argmax(dim=-1).to(probs.device)


def next_token_logp(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Log-probs [N, V] (fp32) of the distribution the next token is drawn from (greedy: the plain
    softmax, whose argmax is taken on the logits)."""
    logits = logits.float()
    if temperature <= 0:
        return torch.log_softmax(logits, dim=-1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_logp, order = logp.sort(dim=-1, descending=True)
        cum = sorted_logp.exp().cumsum(dim=-1)
        drop = cum - sorted_logp.exp() >= top_p  # keep the smallest prefix reaching top_p (>= 1 token)
        sorted_logp = sorted_logp.masked_fill(drop, float("-inf"))
        logp = torch.full_like(logp, float("-inf")).scatter(1, order, sorted_logp)
        logp = torch.log_softmax(logp, dim=-1)
    return logp


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
                row_groups: Sequence[tuple[torch.Tensor, torch.Generator]] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids [N], their log-probs [N]) from last-position logits [N, V].

    row_groups: (row indices, generator) pairs; each group's rows are drawn from its own generator
    (rows in no group are left as 0). None: all rows from `generator`.
    """
    logp = next_token_logp(logits, temperature, top_p)
    if temperature <= 0:  # greedy
        tok = logits.float().argmax(dim=-1)
        return tok, logp.gather(1, tok[:, None]).squeeze(1)
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


# --- the engines -------------------------------------------------------------------------------

_CACHES: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _kv_caches(model, P: int, N: int, max_len: int, device, dtype, reuse: bool):
    """(prefill cache [P], decode cache [N]), both max_len long: the shapes the reference uses, so
    the attention reads the same strided views. With reuse, the newest shape per model is kept and
    handed out again: a cache is private to one generate call, every slot it reads is written in
    that call (prefill writes 0..L-1 of every row, step t writes L+t), so stale values are never
    seen. A model whose caches are no KVCache: (its cache, None), expanded by its own select."""
    key = (P, N, max_len, dtype, str(device))
    hit = _CACHES.get(model) if reuse else None
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    prefill = model.new_kv_cache(P, max_len, device=device, dtype=dtype)
    if not isinstance(getattr(prefill, "k", None), list):  # another cache type: expanded by its select
        return prefill, None
    caches = (prefill, model.new_kv_cache(N, max_len, device=device, dtype=dtype))
    if reuse:
        _CACHES[model] = (key, *caches)
    return caches


def release_kv_caches(model: torch.nn.Module | None = None) -> None:
    """Drop the sampler's kept KV caches (of one model, or all), e.g. before a memory-hungry phase."""
    if model is None:
        _CACHES.clear()
    else:
        _CACHES.pop(model, None)


def _generator_groups(generator, P: int, rows: list[int], device):
    """[(row index tensor or None for all rows, generator, member rows)] in the reference's order:
    prompts sharing one generator object form one group, ordered by their first prompt."""
    if not isinstance(generator, (list, tuple)):
        return [(None, generator, list(range(len(rows))))]
    if len(generator) != P:
        raise ValueError(f"generate: {len(generator)} generators for {P} prompts")
    owner = [next(j for j, g in enumerate(generator) if g is generator[i]) for i in range(P)]
    out = []
    for j in sorted(set(owner)):
        members = [r for r, p in enumerate(rows) if owner[p] == j]
        out.append((torch.tensor(members, dtype=torch.long, device=device), generator[j], members))
    return out


@torch.no_grad()
def generate(model: torch.nn.Module, prompts: Sequence[Sequence[int]], counts: Sequence[int], *,
             max_new_tokens: int, eos_id: int, pad_id: int = 0, temperature: float = 1.0, top_p: float = 1.0,
             stop_strings: Sequence[str] = (), decode: Callable[[list[int]], str] | None = None,
             generator: torch.Generator | Sequence[torch.Generator] | None = None,
             adapter_ids: Sequence[int] | None = None, vocab_limit: int | None = None,
             dtype: torch.dtype = torch.float32, engine: str = "fast",
             piece_text: Callable[[int], str] | None = None, sync_every: int | None = None,
             reuse_cache: bool = True) -> Samples:
    """Sample counts[i] completions of prompts[i] for every i, in one batch.

    generator: one for all rows, or a list with prompt i's generator at i (prompts may share one;
    a generator's draws then depend only on its own prompts' rows: once all of them are done it
    is not drawn from again). adapter_ids[i] (optional): the LoRA adapter prompt i's rows use.
    vocab_limit: sample only ids < vocab_limit. Stop strings need `decode`.
    engine: "fast" or "reference" (identical outputs; see the module docstring).
    piece_text (fast engine): per-token text for the device stop tables when `decode` is not a
    SentencePiece tokenizer's. sync_every (fast engine): steps between reads of `done` on the host
    (default 1 on a CPU, where a read costs nothing, 8 elsewhere; always 1 for the global RNG).
    reuse_cache (fast engine): keep the KV caches for the next call of the same shape.
    """
    if engine == "reference":
        return generate_reference(model, prompts, counts, max_new_tokens=max_new_tokens, eos_id=eos_id,
                                  pad_id=pad_id, temperature=temperature, top_p=top_p, stop_strings=stop_strings,
                                  decode=decode, generator=generator, adapter_ids=adapter_ids,
                                  vocab_limit=vocab_limit, dtype=dtype)
    if engine != "fast":
        raise ValueError(f"generate: engine must be one of {ENGINES} (got {engine!r})")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return _generate_fast(model, prompts, counts, device, max_new_tokens, eos_id, pad_id, temperature, top_p,
                              stop_strings, decode, generator, adapter_ids, vocab_limit, dtype, piece_text,
                              sync_every, reuse_cache)
    finally:
        if was_training:
            model.train()


def _generate_fast(model, prompts, counts, device, M, eos_id, pad_id, temperature, top_p, stop_strings, decode,
                   generator, adapter_ids, vocab_limit, dtype, piece_text, sync_every, reuse_cache) -> Samples:
    ids, key_mask, positions = left_pad(prompts, pad_id, device)
    P, L = ids.shape
    row_host = [p for p, c in enumerate(counts) for _ in range(int(c))]
    rows = torch.tensor(row_host, dtype=torch.long, device=device)
    N = len(row_host)
    lengths = key_mask.sum(dim=1)[rows]
    prompt_lora, row_lora, row_aid = (None, None), (None, None), None
    if adapter_ids is not None:  # runs precomputed here: no host read of the ids inside the loop
        aid = [int(a) for a in adapter_ids]
        row_aid = [aid[p] for p in row_host]
        prompt_lora = (torch.tensor(aid, device=device), adapter_runs(aid))
        row_lora = (torch.tensor(row_aid, device=device), adapter_runs(row_aid))
    # the cache in the compute dtype (keys/values are produced in it, so storing them there is
    # lossless); fp32 (the parameters' dtype) on a CPU, as the reference keeps it
    low = device.type != "cpu" and dtype in (torch.bfloat16, torch.float16)
    prefill, cache = _kv_caches(model, P, N, L + M, device, dtype if low else None, reuse_cache)
    with adapters_for_rows(model, *prompt_lora), autocast(device, dtype):
        logits, _ = model(ids, kv_cache=prefill, pos=0, positions=positions, key_mask=key_mask)
    last = logits[:, -1][rows]
    if cache is None:
        cache = prefill.select(rows)
    else:
        for src, dst in zip(prefill.k + prefill.v, cache.k + cache.v):
            torch.index_select(src, 0, rows, out=dst)
    full_mask = torch.cat([key_mask[rows], torch.ones(N, M, dtype=torch.bool, device=device)], dim=1)
    # the decode batch: rows `act` of the N (None: all of them, in order); lengths, mask, cache and
    # adapter ids below are the batch's own
    act, act_host = None, list(range(N))

    groups = _generator_groups(generator, P, row_host, device)
    greedy = temperature <= 0
    k = sync_every or (1 if device.type == "cpu" else 8)
    if not greedy and any(g is None for _, g, _ in groups):
        k = 1  # the global RNG has no cheap snapshot to rewind to
    checker = StopChecker(stop_strings, decode,
                          stop_table_for(stop_strings, logits.shape[-1], decode, piece_text, device), N, device)
    out_tok = torch.full((N, M), pad_id, dtype=torch.long, device=device)
    out_lp = torch.zeros((N, M), device=device)
    out_mask = torch.zeros((N, M), dtype=torch.bool, device=device)
    done = torch.zeros(N, dtype=torch.bool, device=device)
    done_at = torch.full((N,), M, dtype=torch.long, device=device)  # the step a row ended at
    invalid = torch.zeros((), dtype=torch.bool, device=device)
    live = [True] * len(groups)     # as last read on the host
    snapshots = [{} for _ in groups]  # step -> generator state before that step's draw (k > 1)
    for t in range(M):
        if vocab_limit is not None:
            last = last[:, :vocab_limit]
        logp = next_token_logp(last, temperature, top_p)
        if greedy:
            tok = last.float().argmax(dim=-1)
        else:
            probs = logp.exp()
            invalid |= (~((probs >= 0) & (probs < float("inf"))).all(dim=1) & ~done).any()
            tok = torch.zeros(N, dtype=torch.long, device=device)
            for j, (idx, g, _) in enumerate(groups):
                if not live[j]:
                    continue
                if k > 1:
                    snapshots[j][t] = g.get_state()
                if idx is None:
                    tok = _draw_race(probs, g)
                else:
                    tok[idx] = _draw_race(probs[idx], g)
        lp = logp.gather(1, tok[:, None]).squeeze(1)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        out_tok[:, t], out_lp[:, t], out_mask[:, t] = tok, torch.where(done, 0.0, lp), ~done
        ended = ~done & (tok == eos_id)
        ended |= checker.update(tok, ~done & ~ended, out_tok[:, :t + 1])
        done_at = torch.where(ended, t, done_at)
        done = done | ended
        if (t + 1) % k == 0 or t == M - 1:
            if bool(invalid):
                raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
            done_host = done.tolist()
            ended_at = done_at.tolist() if k > 1 and not greedy else None
            for j, (_, g, members) in enumerate(groups):
                if live[j] and all(done_host[i] for i in members):
                    live[j] = False
                    first_extra = max(ended_at[i] for i in members) + 1 if ended_at else t + 1
                    if first_extra <= t:  # drew after its rows had ended: rewind
                        g.set_state(snapshots[j][first_extra])
                snapshots[j].clear()
            if all(done_host):
                break
            still = [i for i in act_host if not done_host[i]]
            if t < M - 1 and len(still) <= 0.75 * len(act_host):  # drop the finished rows from the batch
                keep = torch.tensor([j for j, i in enumerate(act_host) if not done_host[i]], device=device)
                cache, lengths, full_mask = cache.select(keep), lengths[keep], full_mask[keep]
                act_host, act = still, torch.tensor(still, device=device)
                if row_aid is not None:
                    ids_act = [row_aid[i] for i in still]
                    row_lora = (torch.tensor(ids_act, device=device), adapter_runs(ids_act))
        if t == M - 1:
            break
        with adapters_for_rows(model, *row_lora), autocast(device, dtype):
            logits, _ = model((tok if act is None else tok[act])[:, None], kv_cache=cache, pos=L + t,
                              positions=(lengths + t)[:, None], key_mask=full_mask[:, :L + t + 1])
        if act is None:
            last = logits[:, -1]
        else:  # finished rows: uniform logits (never used; their draws only keep the streams aligned)
            last = logits.new_zeros(N, logits.shape[-1]).index_copy_(0, act, logits[:, -1])
    finished = done.tolist()
    texts = [""] * N
    if decode is not None:  # one read of the tokens, not one per row
        texts = [decode([x for x, m in zip(tr, mr) if m and x != eos_id])
                 for tr, mr in zip(out_tok.tolist(), out_mask.tolist())]
    return Samples(out_tok, out_mask, out_lp, texts, rows, finished)


@torch.no_grad()
def generate_reference(model: torch.nn.Module, prompts: Sequence[Sequence[int]], counts: Sequence[int], *,
                       max_new_tokens: int, eos_id: int, pad_id: int = 0, temperature: float = 1.0,
                       top_p: float = 1.0, stop_strings: Sequence[str] = (),
                       decode: Callable[[list[int]], str] | None = None,
                       generator: torch.Generator | Sequence[torch.Generator] | None = None,
                       adapter_ids: Sequence[int] | None = None, vocab_limit: int | None = None,
                       dtype: torch.dtype = torch.float32) -> Samples:
    """The plain decode loop (generate's semantics, engine="reference"): the tested reference of the
    fast engine. Stop strings by decoding each live row's prefix every step."""
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
