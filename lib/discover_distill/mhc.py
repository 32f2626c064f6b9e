"""Manifold-constrained hyper-connections (mHC, arXiv 2512.24880; parent: hyper-connections,
arXiv 2409.19606), exactly as DESIGN §4 specifies.

The residual stream is x in R^{n x C} per token and persists across all blocks: the embedding is
copied into the n streams once (`expand_streams`) and the streams are summed once before the
final norm (`collapse_streams`). Every sublayer F (attention or MLP, each with its own pre-norm)
updates the streams as

    x <- H_res x + H_post^T F(H_pre x)

with per-token coefficients computed from v = RMSNorm(flatten(x)) (over all nC values):
    h = v phi,  phi: nC x (n^2 + 2n)
    H_pre  = sigmoid(a_pre  h_pre  + b_pre)          (n)
    H_post = 2 sigmoid(a_post h_post + b_post)       (n)
    H_res  = Sinkhorn(exp(a_res h_res + b_res))      (n x n, doubly stochastic, 20 iterations)
The scalars a (init 0.01) scale only the dynamic part h; the nonlinearities (sigmoid, Sinkhorn)
act on the full pre-activation, static bias included. The coefficients and the stream mixing run
in fp32 outside autocast: under bf16 autocast only F itself runs in bf16, and the residual
streams stay in the model's parameter dtype, as a plain residual `x + F(x)` does.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinkhorn(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Doubly-stochastic matrix from exp(logits) [..., n, n]: `iters` rounds of a column then a
    row normalisation, so rows sum to 1 exactly and columns to within what `iters` rounds reach.

    Runs in the log domain (each normalisation subtracts a logsumexp) in fp32: no exp can overflow
    or underflow to a zero row, and the backward pass is a chain of softmax Jacobians, finite for
    any finite logits. (Iterating on scaling vectors with reciprocals is cheaper but its gradient
    overflows to inf once logits spread by a few tens.)
    """
    log_p = logits.float()
    for _ in range(iters):
        log_p = log_p - torch.logsumexp(log_p, dim=-2, keepdim=True)  # columns
        log_p = log_p - torch.logsumexp(log_p, dim=-1, keepdim=True)  # rows
    return log_p.exp()


def static_biases(n: int, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b_pre [n], b_post [n], b_res [n, n]) that start sublayer `index` close to a pre-norm
    residual step: H_res near the identity (0.87 on the diagonal), F reading mostly stream
    k = index mod n (H_pre 0.73 there, 0.27 elsewhere) and writing its full output there
    (H_post 1.0, 0.54 elsewhere). The favoured stream rotates with the sublayer index, so the n
    streams, identical copies of the embedding at the input, differ from the first sublayer on.
    """
    hot = torch.zeros(n, dtype=torch.bool)
    hot[index % n] = True
    b_pre = torch.where(hot, 1.0, -1.0)
    b_post = torch.where(hot, 0.0, -1.0)
    b_res = torch.full((n, n), -3.0).fill_diagonal_(0.0)
    return b_pre, b_post, b_res


class MHCCoefficients(nn.Module):
    """Computes (H_pre [B,T,n], H_post [B,T,n], H_res [B,T,n,n]) for one sublayer, in fp32."""

    def __init__(self, n: int, d_model: int, layer_index: int, sinkhorn_iters: int = 20, alpha_init: float = 0.01,
                 init_std: float = 0.02, eps: float = 1e-6):
        super().__init__()
        self.n, self.iters, self.eps = n, sinkhorn_iters, eps
        self.phi = nn.Parameter(torch.randn(n * d_model, n * n + 2 * n) * init_std)
        self.alpha_pre = nn.Parameter(torch.tensor(float(alpha_init)))
        self.alpha_post = nn.Parameter(torch.tensor(float(alpha_init)))
        self.alpha_res = nn.Parameter(torch.tensor(float(alpha_init)))
        b_pre, b_post, b_res = static_biases(n, layer_index)
        self.b_pre, self.b_post, self.b_res = nn.Parameter(b_pre), nn.Parameter(b_post), nn.Parameter(b_res)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.n
        with torch.autocast(device_type=x.device.type, enabled=False):
            flat = x.float().flatten(-2)                                   # [B, T, nC]
            v = F.rms_norm(flat, (flat.shape[-1],), eps=self.eps)
            h = v @ self.phi.float()                                       # [B, T, n^2 + 2n]
            h_pre, h_post, h_res = h.split([n, n, n * n], dim=-1)
            H_pre = torch.sigmoid(self.alpha_pre.float() * h_pre + self.b_pre.float())
            H_post = 2.0 * torch.sigmoid(self.alpha_post.float() * h_post + self.b_post.float())
            res_logits = self.alpha_res.float() * h_res.unflatten(-1, (n, n)) + self.b_res.float()
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
        """x: [B, T, n, C] residual streams -> updated streams, same shape and dtype."""
        if self.coef is None:  # n = 1: exactly x + F(x), no coefficients at all
            return x + self.fn(x[:, :, 0], **kw).unsqueeze(2)
        B, T, n, C = x.shape
        H_pre, H_post, H_res = self.coef(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            f_in = (H_pre.unsqueeze(-1) * xf).sum(dim=2)                   # H_pre x: [B, T, C]
        y = self.fn(f_in.to(x.dtype), **kw)
        with torch.autocast(device_type=x.device.type, enabled=False):
            # H_res x + H_post^T y as one batched GEMM over tokens (n x n times n x C each)
            write = H_post.reshape(B * T, n, 1) * y.float().reshape(B * T, 1, C)
            out = torch.baddbmm(write, H_res.reshape(B * T, n, n), xf.reshape(B * T, n, C))
        return out.view(B, T, n, C).to(x.dtype)


def expand_streams(h: torch.Tensor, n: int) -> torch.Tensor:
    """Embedding [B, T, C] -> n identical residual streams [B, T, n, C] (once, at the input)."""
    return h.unsqueeze(2).expand(-1, -1, n, -1).contiguous()


def collapse_streams(x: torch.Tensor) -> torch.Tensor:
    """Streams [B, T, n, C] -> their sum [B, T, C] (once, before the final norm)."""
    return x.sum(dim=2)
