"""The LM head and the cross-entropy in one pass over row chunks, never holding [B, T, V] logits.

`F.cross_entropy(F.linear(h, W).float(), y)` writes the logits in the compute dtype, an fp32 copy
of them, and their softmax gradient, each [B*T, V]: at the 120M config (V = 32k) that is the
largest memory traffic of the step. Here each chunk of rows computes its logits, their
log-sum-exp, its loss and, since the loss is the last operation of the graph, already its
gradients with respect to h and W (softmax minus one-hot, in fp32, then one GEMM each); backward
only scales the stored gradients by the incoming scalar. Nothing is recomputed and no buffer the
size of the logits outlives its chunk.
"""
from __future__ import annotations

import torch


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int,
                chunk_rows: int) -> torch.Tensor:
        # the compute dtype of the GEMMs: autocast's when it is on (as F.linear would run), else h's
        dev = h.device.type
        cdt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else h.dtype
        with torch.autocast(device_type=dev, enabled=False):
            hc, wc = h.to(cdt), weight.to(cdt)
            valid = targets != ignore_index
            n_valid = valid.sum().clamp_min(1)
            want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
            grad_h = torch.empty_like(hc) if ctx.needs_input_grad[0] else None
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=h.device) if ctx.needs_input_grad[1] else None
            total = torch.zeros((), dtype=torch.float32, device=h.device)
            for s in range(0, h.shape[0], chunk_rows):
                rows = slice(s, s + chunk_rows)
                logits = (hc[rows] @ wc.t()).float()                    # [chunk, V]
                t, ok = targets[rows].clamp_min(0), valid[rows]
                lse = torch.logsumexp(logits, dim=-1)
                total += ((lse - logits.gather(1, t[:, None]).squeeze(1)) * ok).sum()
                if want_grad:  # d loss_sum / d logits = softmax - onehot, on the valid rows
                    g = logits.sub_(lse[:, None]).exp_()
                    g[torch.arange(g.shape[0], device=g.device), t] -= 1.0
                    g = (g * ok[:, None]).to(cdt)
                    if grad_h is not None:
                        grad_h[rows] = g @ wc
                    if grad_w is not None:  # the GEMM in the compute dtype, accumulated in fp32
                        grad_w += (g.t() @ hc[rows]).float()
        ctx.save_for_backward(*(x for x in (grad_h, grad_w) if x is not None))
        ctx.has = (grad_h is not None, grad_w is not None)
        ctx.n_valid, ctx.dtypes = n_valid, (h.dtype, weight.dtype)
        return total / n_valid

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        saved = list(ctx.saved_tensors)
        scale = grad_out / ctx.n_valid
        grad_h = (saved.pop(0) * scale).to(ctx.dtypes[0]) if ctx.has[0] else None
        grad_w = (saved.pop(0) * scale).to(ctx.dtypes[1]) if ctx.has[1] else None
        return grad_h, grad_w, None, None, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100,
                         chunk_rows: int = 4096) -> torch.Tensor:
    """mean over targets != ignore_index of cross_entropy(h @ weight^T, targets): h [..., C],
    weight [V, C], targets [...]. Equal to the unfused loss (values and gradients) up to rounding."""
    return _LinearCrossEntropy.apply(h.reshape(-1, h.shape[-1]), weight, targets.reshape(-1), ignore_index,
                                     chunk_rows)
