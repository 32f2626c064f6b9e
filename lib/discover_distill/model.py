"""Decoder-only transformer: RoPE, RMSNorm, SwiGLU, SDPA attention, tied embeddings, no biases,
with an mHC residual path (mhc.py) and a KV cache for incremental decoding.

Batches of prompts with different lengths are left-padded: `positions` gives every token its
RoPE position within its own row and `key_mask` marks the real (non-pad) keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .losses import linear_cross_entropy
from .mhc import MHCSublayer, collapse_streams, eager_form, expand_streams


def _eager_fp32(x: torch.Tensor) -> bool:
    """The hand-written autograd forms below serve eager fp32 on a CPU. Elsewhere the composite
    forms stay: Inductor fuses them under torch.compile, and GPU autocast keeps its dtype rules."""
    return eager_form(x) and x.dtype == torch.float32


class _RMSNormFn(torch.autograd.Function):
    """F.rms_norm in 3 passes forward and 4 backward. On a CPU F.rms_norm is composite (pow,
    mean, rsqrt, two muls), and its autograd graph adds a pass per op."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        C = x.shape[-1]
        r = torch.rsqrt(torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(C).add_(eps))
        x_hat = x * r
        ctx.save_for_backward(x_hat, r, weight)
        return x_hat * weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # y = w * x_hat, x_hat = x r: dx = r (g w - x_hat mean(g w x_hat)), dw = sum over rows of g x_hat
        x_hat, r, weight = ctx.saved_tensors
        C = x_hat.shape[-1]
        grad_w = (grad * x_hat).reshape(-1, C).sum(0) if ctx.needs_input_grad[1] else None
        g_w = grad * weight
        mean = torch.linalg.vecdot(g_w, x_hat, dim=-1).unsqueeze(-1).div_(-C)
        return g_w.addcmul_(x_hat, mean).mul_(r), grad_w, None


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _eager_fp32(x) and self.weight.dtype == torch.float32:
            return _RMSNormFn.apply(x, self.weight, self.eps)
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
    return freqs.cos(), freqs.sin()


def _rotate_into(out: torch.Tensor, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """out = x rotated by the angles (cos, sin), both halves written in place: 4 passes, no cat."""
    x1, x2 = x.chunk(2, dim=-1)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(x1, cos, out=o1).addcmul_(x2, sin, value=-1.0)
    torch.mul(x1, sin, out=o2).addcmul_(x2, cos)
    return out


class _RopeFn(torch.autograd.Function):
    """apply_rope with its backward, the rotation by the opposite angles."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        # outputs keep their input's strides: q and k are transposed views of a projection's
        # output, and a contiguous result would cost a copy when the gradient is transposed back
        return _rotate_into(torch.empty_like(x), x, cos, sin)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        cos, sin = ctx.saved_tensors
        return _rotate_into(torch.empty_like(grad), grad, cos, -sin), None, None


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, D]; cos/sin broadcastable to [B, 1, T, D/2] (rotate-half convention)."""
    if _eager_fp32(x) and not cos.requires_grad and not sin.requires_grad:
        return _RopeFn.apply(x, cos, sin)
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


def fused_linear(h: torch.Tensor, linears: tuple[nn.Module, ...], fuse: bool | None = None) -> tuple[torch.Tensor, ...]:
    """(l(h) for l in linears), on a GPU as one GEMM on the stacked weights (Q/K/V, gate/up): h is
    read once and one kernel runs instead of several. The parameters stay separate (checkpoints and
    LoRA targets unchanged); a LoRA-wrapped projection runs on its own. fuse: None = on CUDA only
    (on a 2-core CPU the stacked copy of the weights made a training step 2% slower, measured)."""
    if fuse is None:
        fuse = h.is_cuda
    if not fuse or not all(type(l) is nn.Linear and l.bias is None for l in linears):
        return tuple(l(h) for l in linears)
    w = torch.cat([l.weight for l in linears])
    return F.linear(h, w).split([l.out_features for l in linears], dim=-1)


class KVCache:
    """Per-layer key/value buffers [B, H, max_len, D] filled left to right."""

    def __init__(self, n_layers: int, batch: int, n_heads: int, head_dim: int, max_len: int, device, dtype):
        shape = (batch, n_heads, max_len, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.max_len = max_len

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    def select(self, rows: torch.Tensor) -> "KVCache":
        """A cache whose row i is this cache's row rows[i] (e.g. a prompt expanded to its rollouts)."""
        new = KVCache.__new__(KVCache)
        new.k = [k.index_select(0, rows) for k in self.k]
        new.v = [v.index_select(0, rows) for v in self.v]
        new.max_len = self.max_len
        return new

    def expand(self, n: int) -> "KVCache":
        """Every row repeated n times, consecutively."""
        rows = torch.arange(self.batch_size, device=self.k[0].device).repeat_interleave(n)
        return self.select(rows)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_index: int):
        super().__init__()
        self.n_heads, self.head_dim, self.layer_index = cfg.n_heads, cfg.head_dim, layer_index
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.wq = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wk = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wv = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wo = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None, pos: int = 0, mask=None):
        B, T, C = x.shape
        h = self.norm(x)
        q, k, v = (y.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
                   for y in fused_linear(h, (self.wq, self.wk, self.wv)))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            cache.k[self.layer_index][:, :, pos:pos + T] = k
            cache.v[self.layer_index][:, :, pos:pos + T] = v
            # the cache may be kept in another dtype than autocast's (e.g. fp32 under bf16)
            k = cache.k[self.layer_index][:, :, :pos + T].to(q.dtype)
            v = cache.v[self.layer_index][:, :, :pos + T].to(q.dtype)
        if mask is None and (cache is None or pos == 0):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.w1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)  # gate
        self.w3 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)  # up
        self.w2 = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)  # down

    def forward(self, x, **_):
        h = self.norm(x)
        gate, up = fused_linear(h, (self.w1, self.w3))
        return self.w2(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_index: int):
        super().__init__()
        mhc = dict(n=cfg.mhc_streams, d_model=cfg.d_model, sinkhorn_iters=cfg.mhc_sinkhorn_iters,
                   alpha_init=cfg.mhc_alpha_init, init_std=cfg.init_std)
        # sublayers 2l and 2l+1 rotate through the streams independently
        self.attn = MHCSublayer(Attention(cfg, layer_index), layer_index=2 * layer_index, **mhc)
        self.mlp = MHCSublayer(MLP(cfg), layer_index=2 * layer_index + 1, **mhc)

    def forward(self, x, cos, sin, cache=None, pos=0, mask=None):
        x = self.attn(x, cos=cos, sin=sin, cache=cache, pos=pos, mask=mask)
        return self.mlp(x)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # forward(idx, targets) returns (None, loss) through losses.linear_cross_entropy: set by
        # pretrain.py --fused_loss; off, the logits are materialised and returned with the loss
        self.fused_loss = False
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        std = self.cfg.init_std
        for name, p in self.named_parameters():
            if ".coef." in name:
                continue  # mHC coefficients initialise themselves
            if p.dim() == 2:
                out_proj = name.endswith(("wo.weight", "w2.weight"))
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.cfg.n_layers) if out_proj else std)

    def new_kv_cache(self, batch_size: int, max_len: int | None = None, device=None, dtype=None) -> KVCache:
        max_len = max_len or self.cfg.max_seq_len
        if max_len > self.cfg.max_seq_len:
            raise ValueError(f"KV cache length {max_len} exceeds max_seq_len {self.cfg.max_seq_len}")
        p = self.tok_emb.weight
        return KVCache(self.cfg.n_layers, batch_size, self.cfg.n_heads, self.cfg.head_dim, max_len,
                       device or p.device, dtype or p.dtype)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                pos: int = 0, positions: torch.Tensor | None = None, key_mask: torch.Tensor | None = None):
        """idx [B, T] -> (logits [B, T, V], mean cross-entropy or None); (None, loss) with fused_loss.

        kv_cache/pos: incremental decoding; the new tokens occupy cache slots pos..pos+T-1.
        positions [B, T]: per-row RoPE positions (left-padded batches); default pos + arange(T).
        key_mask [B, pos+T] bool: True for real tokens, False for padding.
        """
        B, T = idx.shape
        if pos + T > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {pos + T} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        if positions is None:
            cos, sin = self.rope_cos[pos:pos + T][None, None], self.rope_sin[pos:pos + T][None, None]
        else:
            cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]
        mask = None
        if key_mask is not None or (kv_cache is not None and pos > 0 and T > 1):
            S = pos + T
            q_idx = torch.arange(pos, S, device=idx.device)[:, None]
            allowed = torch.arange(S, device=idx.device)[None, :] <= q_idx            # causal, [T, S]
            if key_mask is not None:
                allowed = allowed[None] & key_mask[:, None, :S]
                allowed = allowed | (torch.arange(S, device=idx.device)[None, None, :] == q_idx[None])  # pads see themselves
                mask = allowed[:, None]                                                  # [B, 1, T, S]
            else:
                mask = allowed[None, None]
        x = expand_streams(self.tok_emb(idx), self.cfg.mhc_streams)
        if self.cfg.mhc_stream_dtype == "bf16" and self.cfg.mhc_streams > 1:
            x = x.to(torch.bfloat16)  # stored in bf16 between sublayers; each sublayer computes in fp32
        for layer in self.layers:
            x = layer(x, cos, sin, cache=kv_cache, pos=pos, mask=mask)
        h = self.norm_f(collapse_streams(x.to(self.tok_emb.weight.dtype)))
        if targets is not None and self.fused_loss:  # pretraining: the loss without [B, T, V] logits
            return None, linear_cross_entropy(h, self.tok_emb.weight, targets, ignore_index=-100)
        logits = F.linear(h, self.tok_emb.weight)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def compile_blocks(self) -> "GPT":
        """torch.compile each block in place (regional compilation). The blocks run the same code
        on same-shaped parameters, so they share one compiled graph: compile time does not grow
        with depth, and state_dict keys keep no `_orig_mod.` prefix. (CUDA graphs per block do not
        work: the blocks share one compiled function, so cudagraph trees reuse a block's output
        buffer for the next block; pretrain's `--compile graphs` compiles the whole model.)"""
        for layer in self.layers:
            layer.compile()
        return self

    def num_params(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.tok_emb.weight.numel() if exclude_embeddings else n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6 N (non-embedding matmuls + LM head) + 12 L C T (attention)."""
        n = self.num_params(exclude_embeddings=True) + self.tok_emb.weight.numel()  # tied head still multiplies
        return 6 * n + 12 * self.cfg.n_layers * self.cfg.d_model * seq_len

    def configure_optimizer(self, weight_decay: float, lr: float, betas=(0.9, 0.95), device_type: str = "cpu"):
        """AdamW (fused on CUDA). Weight decay on the projection matrices, mHC's phi included;
        none on the (tied) embedding, norm weights, mHC's static biases b (they set the residual
        topology, and decay would pull them towards uniform mixing) or its gate scalars alpha."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            is_matrix = p.dim() == 2 and name != "tok_emb.weight" and not name.endswith(".b_res")
            (decay if is_matrix else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == "cuda")


def load_model(ckpt_path: str, device: torch.device | str = "cpu") -> GPT:
    """A GPT from any checkpoint this project writes (pretrain, SDFT): its own config and weights,
    loaded with weights_only=True."""
    from .checkpoint import CheckpointError, load_checkpoint
    from .config import model_config_from_dict

    state = load_checkpoint(ckpt_path, map_location="cpu")
    if "model" not in state or "model_config" not in state:
        raise CheckpointError(f"{ckpt_path}: not a model checkpoint (needs 'model' and 'model_config')")
    model = GPT(model_config_from_dict(state["model_config"], source=ckpt_path))
    model.load_state_dict(state["model"])
    return model.to(device)
