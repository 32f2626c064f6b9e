"""SDFT losses (DESIGN §4; "Self-Distillation Enables Continual Learning", arXiv 2601.19897).

The student sees only the prompt and samples its own answer; the teacher is the same network
(an EMA of the student's weights) given a demonstration in context. The loss is a per-token KL
over the full vocabulary along the student's own sample, with gradients through the student only.

Direction: the paper's text describes reverse KL, but its authors state that every reported result
used the per-token forward KL  sum_v p_T(v) (log p_T(v) - log p_S(v)); forward is our default and
`kl="reverse"` gives  sum_v p_S(v) (log p_S(v) - log p_T(v)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import prompts
from .sampling import generate


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
             kl: str = "forward") -> torch.Tensor:
    """Mean over valid positions of the per-token KL between teacher and student distributions.

    student_logits, teacher_logits: [B, T, V] at the same answer positions; mask [B, T].
    The teacher is detached: gradients reach the student only.
    """
    log_s = F.log_softmax(student_logits.float(), dim=-1)
    log_t = F.log_softmax(teacher_logits.detach().float(), dim=-1)
    if kl == "forward":
        per_token = (log_t.exp() * (log_t - log_s)).sum(-1)
    elif kl == "reverse":
        per_token = (log_s.exp() * (log_s - log_t)).sum(-1)
    else:
        raise ValueError(f"kl must be 'forward' or 'reverse', got {kl!r}")
    m = mask.to(per_token.dtype)
    return (per_token * m).sum() / m.sum().clamp_min(1.0)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, alpha: float) -> None:
    """phi <- alpha * theta + (1 - alpha) * phi, parameter by parameter (buffers copied)."""
    for pt, ps in zip(teacher.parameters(), student.parameters()):
        pt.lerp_(ps.detach().to(pt.dtype), alpha)
    for bt, bs in zip(teacher.buffers(), student.buffers()):
        bt.copy_(bs)


def skip_mask(mask: torch.Tensor, skip_tokens: int) -> torch.Tensor:
    """Drop the first `skip_tokens` valid answer tokens of every row from the loss (the reference
    code skips 3 of its long chat completions; our short answers skip none by default)."""
    if skip_tokens <= 0:
        return mask
    position = mask.long().cumsum(dim=1)
    return mask & (position > skip_tokens)


def student_answers(model, tok, prompt_ids: list[list[int]], *, max_new_tokens: int, temperature: float = 1.0,
                    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> list[list[int]]:
    """One sampled answer per prompt: token ids up to and including EOS or the token that completes
    a stop string (the suite's STOP_STRINGS, the convention of Samples.mask), so text after the
    answer (`|| score 0.62` ...) is never trained on. An empty sample counts as a lone EOS."""
    s = generate(model, prompt_ids, [1] * len(prompt_ids), max_new_tokens=max_new_tokens, eos_id=tok.eos_id,
                 pad_id=tok.pad_id, temperature=temperature, stop_strings=prompts.STOP_STRINGS, decode=tok.decode,
                 generator=generator, vocab_limit=tok.vocab_size, dtype=dtype)
    return [[t for t, m in zip(s.tokens[i].tolist(), s.mask[i].tolist()) if m] or [tok.eos_id]
            for i in range(len(prompt_ids))]


def student_prompt(task_prompt: str) -> str:
    """What the student sees: the task alone."""
    return prompts.plain_prompt(task_prompt)


def teacher_prompt(task_prompt: str, demonstration: str) -> str:
    """What the teacher sees: the task with the demonstration in context, in the corpus's format
    (the paper's pattern: question, an example response, then "answer with a response of your own")."""
    return prompts.demo_prompt(task_prompt, demonstration)


def answer_logits(model, prefix_ids: list[list[int]], answers: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [B, Ta, V] that predict each answer token after its own prefix, and the answer mask.

    Rows are right-padded; position j of row i is the prediction of answers[i][j].
    """
    device = next(model.parameters()).device
    seqs = [p + a for p, a in zip(prefix_ids, answers)]
    T = max(len(s) for s in seqs)
    Ta = max(1, max(len(a) for a in answers))
    idx = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        idx[i, :len(s)] = torch.tensor(s)
    logits, _ = model(idx.to(device))
    pos = torch.zeros(len(seqs), Ta, dtype=torch.long)
    mask = torch.zeros(len(seqs), Ta, dtype=torch.bool)
    for i, (p, a) in enumerate(zip(prefix_ids, answers)):
        pos[i, :len(a)] = torch.arange(len(p) - 1, len(p) - 1 + len(a))
        mask[i, :len(a)] = True
    rows = torch.arange(len(seqs))[:, None]
    return logits[rows.to(device), pos.to(device)], mask.to(device)
