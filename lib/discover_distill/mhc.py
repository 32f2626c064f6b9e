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
streams stay in the model's parameter dtype, as a plain residual `x + F(x)` does, unless the
config stores them in bf16 (`mhc_stream_dtype`, the paper's §4.3 choice): then each sublayer reads
the bf16 streams into fp32, computes as above, and rounds its updated streams to bf16 once.
"""
from __future__ import annotations

import torch
import torch.nn as nn


try:  # one fused kernel per direction on CUDA; the torch code below otherwise
    from . import mhc_triton as _triton
except ImportError:
    _triton = None

_FLOOR = -60.0  # exp(logits - max) is floored at e^-60, so no row or column sum can underflow


def _sinkhorn_fwd_torch(logits: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [M, n, n] -> (P [M, n, n], us [iters+1, n, M], vs [iters, n, M]).

    Runs on the scaling vectors: K = exp(logits - max), then `iters` rounds of v = 1 / K^T u
    (columns) and u = 1 / K v (rows); P = diag(u) K diag(v). u and v of every round are kept for
    the backward. Internally [n, n, M] (tokens last): every step is then a contiguous multiply
    and a reduction over an outer dimension; with tokens first the same steps are tiny-matrix
    bmm calls, 3-5x slower on CPU.
    """
    n, M = logits.shape[-1], logits.shape[0]
    k = torch.exp((logits - logits.amax(dim=(1, 2), keepdim=True)).clamp_min_(_FLOOR)).permute(1, 2, 0).contiguous()
    us = torch.empty(iters + 1, n, M, dtype=k.dtype, device=k.device)
    vs = torch.empty(iters, n, M, dtype=k.dtype, device=k.device)
    us[0].fill_(1.0)
    scratch = torch.empty_like(k)  # in-place steps: no allocation per half-step
    for t in range(iters):
        torch.sum(torch.mul(k, us[t][:, None], out=scratch), dim=0, out=vs[t]).reciprocal_()      # columns
        torch.sum(torch.mul(k, vs[t][None], out=scratch), dim=1, out=us[t + 1]).reciprocal_()  # rows
    p = us[-1][:, None] * k * vs[-1][None]
    return p.permute(2, 0, 1).contiguous(), us, vs


def _sinkhorn_bwd_torch(grad: torch.Tensor, logits: torch.Tensor, us: torch.Tensor, vs: torch.Tensor) -> torch.Tensor:
    """Vector-Jacobian product of `_sinkhorn_fwd_torch`, by hand in log space.

    Each half-step is X_t = X_{t-1} - logsumexp_d(X_{t-1}), whose VJP is
    g_{t-1} = g_t - P_t * sum_d(g_t), with P_t the matrix after that half-step. Only matrices
    with entries in [0, 1] appear, so the gradient stays finite for any finite logits (autograd
    through the reciprocals multiplies by 1/x^2 and overflows). Entries floored at max - 60 get
    no gradient (their weight in P is below 1e-26).
    """
    shifted = logits - logits.amax(dim=(1, 2), keepdim=True)
    live = (shifted > _FLOOR).permute(1, 2, 0)
    k = torch.exp(shifted.clamp_min_(_FLOOR)).permute(1, 2, 0).contiguous()   # [n, n, M]
    # the matrices P_t are rebuilt per half-step in two [n, n, M] buffers, not stored for all t:
    # on a CPU, fresh [iters, n, n, M] temporaries cost more than the extra multiplies
    k_v, p_col = torch.empty_like(k), torch.empty_like(k)
    # becomes the gradient w.r.t. log P below, updated in place: always a copy (with a single
    # matrix, M = 1, the permuted grad is already contiguous and .contiguous() would alias it)
    g = grad.permute(1, 2, 0).to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    for t in range(vs.shape[0] - 1, -1, -1):
        torch.mul(k, vs[t][None], out=k_v)                                           # K diag(v_t)
        if t == vs.shape[0] - 1:
            g.mul_(k_v).mul_(us[t + 1][:, None])                                     # dL/dP -> dL/dlog P
        # row half-step: P_t = diag(u_{t+1}) K diag(v_t)
        g.addcmul_(k_v, (g.sum(dim=1) * us[t + 1])[:, None], value=-1.0)
        # column half-step: P_t = diag(u_t) K diag(v_t)
        g.addcmul_(torch.mul(k_v, us[t][:, None], out=p_col), g.sum(dim=0, keepdim=True), value=-1.0)
    return g.mul_(live).permute(2, 0, 1).contiguous()


def _use_triton(x: torch.Tensor) -> bool:
    n = x.shape[-1]
    return _triton is not None and x.is_cuda and n & (n - 1) == 0


# Custom ops: torch.compile keeps them opaque (one kernel each on CUDA) instead of tracing the loop.
@torch.library.custom_op("discover_distill::sinkhorn_fwd", mutates_args=())
def _sinkhorn_fwd(logits: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if _use_triton(logits):
        return _triton.sinkhorn_fwd(logits, iters, _FLOOR)
    return _sinkhorn_fwd_torch(logits, iters)


@_sinkhorn_fwd.register_fake
def _(logits, iters):
    M, n, _ = logits.shape
    return torch.empty_like(logits), logits.new_empty(iters + 1, n, M), logits.new_empty(iters, n, M)


@torch.library.custom_op("discover_distill::sinkhorn_bwd", mutates_args=())
def _sinkhorn_bwd(grad: torch.Tensor, logits: torch.Tensor, us: torch.Tensor, vs: torch.Tensor) -> torch.Tensor:
    if _use_triton(logits):
        return _triton.sinkhorn_bwd(grad, logits, us, vs, _FLOOR)
    return _sinkhorn_bwd_torch(grad, logits, us, vs)


@_sinkhorn_bwd.register_fake
def _(grad, logits, us, vs):
    return torch.empty_like(logits)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], output[1], output[2])


def _backward(ctx, grad_p, _grad_us, _grad_vs):
    logits, us, vs = ctx.saved_tensors
    return _sinkhorn_bwd(grad_p.contiguous(), logits, us, vs), None


_sinkhorn_fwd.register_autograd(_backward, setup_context=_setup_context)


def sinkhorn(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Doubly-stochastic matrix from exp(logits) [..., n, n], in fp32: `iters` rounds of a
    column then a row normalisation, so rows sum to 1 exactly and columns to within what `iters`
    rounds reach. Differentiable by a hand-written backward (see _sinkhorn_bwd_torch)."""
    n = logits.shape[-1]
    p, _, _ = _sinkhorn_fwd(logits.float().reshape(-1, n, n).contiguous(), iters)
    return p.reshape(logits.shape)


# Two forms of the stream arithmetic below, the same math. Under torch.compile (on CUDA by
# default) Inductor fuses the pointwise form into a few kernels. In eager mode every pointwise op
# and every autograd temporary is a pass over [B, T, n, C]; on a CPU the batched-GEMM forms and
# the hand-written backward, which make no such temporaries, are faster there. (Eager CUDA keeps
# the pointwise form too: the form measured on the GPU.)
def eager_form(x: torch.Tensor) -> bool:
    return not x.is_cuda and not torch.compiler.is_compiling()


# The eager forms below write each result into a fresh tensor of its final shape (`out=` a view
# of it) rather than returning a reshaped view: autograd adds the three gradients of the streams
# (read, write, coefficients) in place only into a gradient that is not a view.
class _RMSNormedProjection(torch.autograd.Function):
    """RMSNorm(flatten(x)) @ phi computed as (flat @ phi) * r, r = rsqrt(mean(flat^2) + eps), so
    the normalised copy of flat never exists, forward or backward (dr/dflat = -r^3 flat / D)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, phi: torch.Tensor, eps: float) -> torch.Tensor:
        D, K = phi.shape
        flat = x.reshape(-1, D)
        r = torch.rsqrt(torch.linalg.vector_norm(flat, dim=-1, keepdim=True).square_().div_(D).add_(eps))  # [M, 1]
        u = flat @ phi                                                                                      # [M, K]
        ctx.save_for_backward(x, phi, u, r)
        return (u * r).view(*x.shape[:-2], K)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, phi, u, r = ctx.saved_tensors
        D, K = phi.shape
        flat, g = x.reshape(-1, D), grad.reshape(-1, K)
        g_u = g * r
        grad_x = grad_phi = None
        if ctx.needs_input_grad[0]:
            g_r = (g * u).sum(-1, keepdim=True).mul_(r.pow(3)).div_(-D)
            grad_x = torch.empty_like(x, memory_format=torch.contiguous_format)
            torch.mm(g_u, phi.t(), out=grad_x.view(-1, D)).addcmul_(flat, g_r)
        if ctx.needs_input_grad[1]:
            grad_phi = flat.t() @ g_u
        return grad_x, grad_phi, None


class _ReadStreams(torch.autograd.Function):
    """Eager form of read_streams. The incoming gradient is made contiguous first: a stride-0 one
    (from a sum) sends bmm down a per-token loop."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, H_pre: torch.Tensor) -> torch.Tensor:
        B, T, n, C = x.shape
        ctx.save_for_backward(x, H_pre)
        out = x.new_empty(B, T, C)
        torch.bmm(H_pre.reshape(B * T, 1, n), x.reshape(B * T, n, C), out=out.view(B * T, 1, C))
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, H_pre = ctx.saved_tensors
        B, T, n, C = x.shape
        g = grad.contiguous().view(B, T, 1, C)
        grad_pre = H_pre.new_empty(B, T, n)
        torch.bmm(x.reshape(B * T, n, C), g.view(B * T, 1, C).transpose(1, 2), out=grad_pre.view(B * T, n, 1))
        return H_pre.unsqueeze(-1) * g, grad_pre


class _WriteStreams(torch.autograd.Function):
    """Eager form of write_streams."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, H_res: torch.Tensor, H_post: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        B, T, n, C = x.shape
        ctx.save_for_backward(x, H_res, H_post, y)
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        torch.bmm(H_res.reshape(B * T, n, n), x.reshape(B * T, n, C), out=out.view(B * T, n, C))
        return out.addcmul_(H_post.unsqueeze(-1), y.unsqueeze(-2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, H_res, H_post, y = ctx.saved_tensors
        B, T, n, C = x.shape
        M = B * T
        g = grad.contiguous().view(M, n, C)
        grad_x, grad_res = torch.empty_like(x, memory_format=torch.contiguous_format), H_res.new_empty(B, T, n, n)
        grad_post, grad_y = H_post.new_empty(B, T, n), y.new_empty(B, T, C)
        torch.bmm(H_res.reshape(M, n, n).transpose(1, 2), g, out=grad_x.view(M, n, C))
        torch.bmm(g, x.reshape(M, n, C).transpose(1, 2), out=grad_res.view(M, n, n))
        torch.bmm(g, y.reshape(M, 1, C).transpose(1, 2), out=grad_post.view(M, n, 1))
        torch.bmm(H_post.reshape(M, 1, n), g, out=grad_y.view(M, 1, C))
        return grad_x, grad_res, grad_post, grad_y


def rms_normed_projection(x: torch.Tensor, phi: torch.Tensor, eps: float) -> torch.Tensor:
    """Streams x [..., n, C] -> RMSNorm(flatten(x)) @ phi [..., K] (no norm weight), in x's dtype."""
    if eager_form(x):
        return _RMSNormedProjection.apply(x, phi, eps)
    flat = x.flatten(-2)
    mean_sq = torch.linalg.vector_norm(flat, dim=-1, keepdim=True).square() / flat.shape[-1]
    return (flat @ phi) * torch.rsqrt(mean_sq + eps)


def read_streams(x: torch.Tensor, H_pre: torch.Tensor) -> torch.Tensor:
    """H_pre x: streams [B, T, n, C] weighted by H_pre [B, T, n] and summed -> [B, T, C]."""
    if eager_form(x):
        return _ReadStreams.apply(x, H_pre)
    return (H_pre.unsqueeze(-1) * x).sum(dim=2)


def write_streams(x: torch.Tensor, H_res: torch.Tensor, H_post: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """H_res x + H_post^T y: streams [B, T, n, C] mixed by H_res [B, T, n, n], plus the sublayer
    output y [B, T, C] written into stream i with weight H_post[..., i]."""
    if eager_form(x):
        return _WriteStreams.apply(x, H_res, H_post, y)
    # broadcast-multiply-and-sum, not a bmm over B*T n x n matrices: the compiler fuses this (and
    # its backward) into one pass over the streams instead of a batched GEMM with [M, n, C] temporaries
    return (H_res.unsqueeze(-1) * x.unsqueeze(-3)).sum(-2) + H_post.unsqueeze(-1) * y.unsqueeze(-2)


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
            h = rms_normed_projection(x.float(), self.phi.float(), self.eps)  # [B, T, n^2 + 2n]
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
            # (squeeze, not x[:, :, 0]: its backward is a view, where select's writes a zero-filled copy)
            return x + self.fn(x.squeeze(2), **kw).unsqueeze(2)
        xf = x.float()  # one fp32 view of the streams for the coefficients, the read and the write
        H_pre, H_post, H_res = self.coef(xf)
        with torch.autocast(device_type=x.device.type, enabled=False):
            f_in = read_streams(xf, H_pre)
        y = self.fn(f_in.to(self.coef.phi.dtype), **kw)  # F gets the parameters' dtype (bf16 streams or not)
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = write_streams(xf, H_res, H_post, y.float())
        return out.to(x.dtype)


def expand_streams(h: torch.Tensor, n: int) -> torch.Tensor:
    """Embedding [B, T, C] -> n identical residual streams [B, T, n, C] (once, at the input)."""
    return h.unsqueeze(2).expand(-1, -1, n, -1).contiguous()


def collapse_streams(x: torch.Tensor) -> torch.Tensor:
    """Streams [B, T, n, C] -> their sum [B, T, C] (once, before the final norm)."""
    return x.sum(dim=2)
