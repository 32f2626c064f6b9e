"""Sinkhorn for mHC's H_res as one Triton kernel forward and one backward (CUDA only).

Same algorithm, layout and saved state as the torch code in mhc.py (`_sinkhorn_fwd_torch`,
`_sinkhorn_bwd_torch`); each program holds BLOCK tokens' n x n matrices in registers and runs all
iterations there. Why: written as torch ops, the 20 iterations become ~40 tiny kernels per
sublayer forward (what inductor generated) and more backward, each a separate launch.

Imported only when triton is installed; `mhc.py` falls back to the torch code otherwise.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _load_block(logits_ptr, M, N: tl.constexpr, BLOCK: tl.constexpr):
    """This program's tokens: offsets of their [N, N] matrices and of their [N] vectors in an
    [N, M] slab, the masks, and logits - rowwise max."""
    t = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    r = tl.arange(0, N)
    tmask = t < M
    mat = t[:, None, None] * (N * N) + r[None, :, None] * N + r[None, None, :]  # [BLOCK, N, N]
    vec = r[None, :] * M + t[:, None]                                           # [BLOCK, N]
    x = tl.load(logits_ptr + mat, mask=tmask[:, None, None], other=0.0).to(tl.float32)
    top = tl.max(tl.max(x, axis=2), axis=1)
    return mat, vec, tmask[:, None, None], tmask[:, None], x - top[:, None, None]


@triton.jit
def _sinkhorn_fwd_kernel(logits_ptr, p_ptr, us_ptr, vs_ptr, M, ITERS: tl.constexpr, N: tl.constexpr,
                         BLOCK: tl.constexpr, FLOOR: tl.constexpr):
    mat, vec, mmask, vmask, shifted = _load_block(logits_ptr, M, N, BLOCK)
    k = tl.exp(tl.maximum(shifted, FLOOR))
    u = tl.full([BLOCK, N], 1.0, tl.float32)
    tl.store(us_ptr + vec, u, mask=vmask)
    v = u
    for it in range(ITERS):
        v = 1.0 / tl.sum(k * u[:, :, None], axis=1)   # columns
        tl.store(vs_ptr + it * N * M + vec, v, mask=vmask)
        u = 1.0 / tl.sum(k * v[:, None, :], axis=2)   # rows
        tl.store(us_ptr + (it + 1) * N * M + vec, u, mask=vmask)
    tl.store(p_ptr + mat, u[:, :, None] * k * v[:, None, :], mask=mmask)


@triton.jit
def _sinkhorn_bwd_kernel(grad_ptr, logits_ptr, us_ptr, vs_ptr, out_ptr, M, ITERS: tl.constexpr, N: tl.constexpr,
                         BLOCK: tl.constexpr, FLOOR: tl.constexpr):
    mat, vec, mmask, vmask, shifted = _load_block(logits_ptr, M, N, BLOCK)
    live = shifted > FLOOR
    k = tl.exp(tl.maximum(shifted, FLOOR))
    u = tl.load(us_ptr + ITERS * N * M + vec, mask=vmask, other=1.0)
    v = tl.load(vs_ptr + (ITERS - 1) * N * M + vec, mask=vmask, other=1.0)
    g = tl.load(grad_ptr + mat, mask=mmask, other=0.0).to(tl.float32) * (u[:, :, None] * k * v[:, None, :])
    for step in range(ITERS):
        it = ITERS - 1 - step
        v = tl.load(vs_ptr + it * N * M + vec, mask=vmask, other=1.0)
        kv = k * v[:, None, :]
        u_after = tl.load(us_ptr + (it + 1) * N * M + vec, mask=vmask, other=1.0)
        g = g - (u_after[:, :, None] * kv) * tl.sum(g, axis=2)[:, :, None]   # undo the row half-step
        u_before = tl.load(us_ptr + it * N * M + vec, mask=vmask, other=1.0)
        g = g - (u_before[:, :, None] * kv) * tl.sum(g, axis=1)[:, None, :]  # undo the column half-step
    tl.store(out_ptr + mat, tl.where(live, g, 0.0), mask=mmask)


def _block(n: int) -> int:
    return max(16, 1024 // (n * n))


def sinkhorn_fwd(logits: torch.Tensor, iters: int, floor: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [M, n, n] fp32 contiguous -> (P [M, n, n], us [iters+1, n, M], vs [iters, n, M]);
    kernel entries floored at exp(floor) relative to each matrix's largest."""
    M, n, _ = logits.shape
    p = torch.empty_like(logits)
    us = torch.empty(iters + 1, n, M, device=logits.device, dtype=torch.float32)
    vs = torch.empty(iters, n, M, device=logits.device, dtype=torch.float32)
    block = _block(n)
    _sinkhorn_fwd_kernel[(triton.cdiv(M, block),)](logits, p, us, vs, M, ITERS=iters, N=n, BLOCK=block,
                                                   FLOOR=floor)
    return p, us, vs


def sinkhorn_bwd(grad: torch.Tensor, logits: torch.Tensor, us: torch.Tensor, vs: torch.Tensor,
                 floor: float) -> torch.Tensor:
    M, n, _ = logits.shape
    out = torch.empty_like(logits)
    block = _block(n)
    _sinkhorn_bwd_kernel[(triton.cdiv(M, block),)](grad.contiguous(), logits, us, vs, out, M, ITERS=vs.shape[0],
                                                   N=n, BLOCK=block, FLOOR=floor)
    return out
