"""Manifold-constrained hyper-connections (mHC, arXiv 2512.24880; parent: hyper-connections,
arXiv 2409.19606), exactly as DESIGN §4 specifies.

The residual stream is x in R^{n x C} per token and persists across all blocks. Every sublayer
F (attention or MLP, each with its own pre-norm) updates it as

    x <- H_res x + H_post^T F(H_pre x)

with per-token coefficients computed from v = RMSNorm(flatten(x)) (over all nC values):
    h = v phi,  phi: nC x (n^2 + 2n)
    H_pre  = sigmoid(a_pre  h_pre  + b_pre)          (n)
    H_post = 2 sigmoid(a_post h_post + b_post)       (n)
    H_res  = Sinkhorn(exp(a_res h_res + b_res))      (n x n, doubly stochastic, 20 iterations)
The gates a (init 0.01) scale only the dynamic part; the static biases b are added after. All
coefficient math runs in fp32, outside autocast.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinkhorn(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Doubly-stochastic matrix from exp(logits) [..., n, n] by `iters` alternating column and
    row normalisations. Rows sum to 1 exactly after the last step; columns to within the
    convergence of `iters` iterations.

    Computed on the scaling vectors (P = diag(u) K diag(v)): each half-step is one batched
    mat-vec and a reciprocal, about half the cost of normalising the full matrix (it is in every
    sublayer's forward and backward). Logits are shifted by their max and floored 60 below it,
    so K is in [e^-60, 1] and no row or column sum can underflow to zero.
    """
    n = logits.shape[-1]
    batch = logits.shape[:-2]
    flat = logits.reshape(-1, n, n)
    top = flat.amax(dim=(-2, -1), keepdim=True)
    k = torch.exp(torch.maximum(flat, top - 60.0) - top)
    kt = k.transpose(-1, -2)
    u = torch.ones(flat.shape[0], n, 1, dtype=k.dtype, device=k.device)
    for _ in range(iters):
        v = torch.bmm(kt, u).reciprocal()   # column normalisation
        u = torch.bmm(k, v).reciprocal()    # row normalisation
    return (u * k * v.transpose(-1, -2)).reshape(*batch, n, n)


class MHCCoefficients(nn.Module):
    """Computes (H_pre, H_post, H_res) for one sublayer from the current residual streams."""

    def __init__(self, n: int, d_model: int, layer_index: int, sinkhorn_iters: int = 20, alpha_init: float = 0.01,
                 init_std: float = 0.02, eps: float = 1e-6):
        super().__init__()
        self.n, self.iters, self.eps = n, sinkhorn_iters, eps
        self.phi = nn.Parameter(torch.randn(n * d_model, n * n + 2 * n) * init_std)
        self.alpha_pre = nn.Parameter(torch.tensor(float(alpha_init)))
        self.alpha_post = nn.Parameter(torch.tensor(float(alpha_init)))
        self.alpha_res = nn.Parameter(torch.tensor(float(alpha_init)))
        # Static biases: the network starts close to a pre-norm residual net. One stream per layer
        # (rotating) dominates what F reads and receives F's full output, so the streams become
        # different from the first step instead of staying n identical copies.
        hot = torch.full((n,), -1.0)
        hot[layer_index % n] = 1.0
        self.b_pre = nn.Parameter(hot.clone())
        self.b_post = nn.Parameter(torch.where(hot > 0, torch.tensor(0.0), torch.tensor(-1.0)))
        self.b_res = nn.Parameter(torch.full((n, n), -3.0).fill_diagonal_(0.0))  # near-identity mixing

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.n
        with torch.autocast(device_type=x.device.type, enabled=False):
            v = F.rms_norm(x.float().flatten(-2), (x.shape[-2] * x.shape[-1],), eps=self.eps)  # [B, T, nC]
            h = v @ self.phi.float()                                       # [B, T, n^2 + 2n]
            h_pre, h_post, h_res = h.split([n, n, n * n], dim=-1)
            H_pre = torch.sigmoid(self.alpha_pre * h_pre + self.b_pre)
            H_post = 2.0 * torch.sigmoid(self.alpha_post * h_post + self.b_post)
            res_logits = self.alpha_res * h_res.unflatten(-1, (n, n)) + self.b_res
            H_res = sinkhorn(res_logits, self.iters)
        return H_pre, H_post, H_res


class MHCSublayer(nn.Module):
    """Wraps a sublayer F (with its own pre-norm) in the mHC update, or a plain residual for n = 1."""

    def __init__(self, fn: nn.Module, n: int, d_model: int, layer_index: int, sinkhorn_iters: int,
                 alpha_init: float, init_std: float):
        super().__init__()
        self.fn, self.n = fn, n
        self.coef = MHCCoefficients(n, d_model, layer_index, sinkhorn_iters, alpha_init, init_std) if n > 1 else None

    def forward(self, x: torch.Tensor, **kw) -> torch.Tensor:
        """x: [B, T, n, C] residual streams -> updated streams."""
        if self.coef is None:  # n = 1: exactly x + F(x)
            return x + self.fn(x[:, :, 0], **kw).unsqueeze(2)
        H_pre, H_post, H_res = self.coef(x)
        dt = x.dtype
        f_in = torch.einsum("btn,btnc->btc", H_pre.to(dt), x)
        y = self.fn(f_in, **kw)
        mixed = torch.einsum("btij,btjc->btic", H_res.to(dt), x)
        return mixed + H_post.to(y.dtype).unsqueeze(-1) * y.unsqueeze(2)


def expand_streams(h: torch.Tensor, n: int) -> torch.Tensor:
    """Embedding [B, T, C] -> n identical residual streams [B, T, n, C] (once, at the input)."""
    return h.unsqueeze(2).expand(-1, -1, n, -1).contiguous()


def collapse_streams(x: torch.Tensor) -> torch.Tensor:
    """Streams [B, T, n, C] -> their sum [B, T, C] (once, before the final norm)."""
    return x.sum(dim=2)
