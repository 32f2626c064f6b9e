"""LoRA adapters on the frozen base: injection, per-row adapters in one batch, save/load, merge.

Each targeted nn.Linear W becomes W x + (alpha / r) B_k A_k x, where k is the adapter of that
batch row. With several adapters (one per task) a single forward pass serves many tasks, which
keeps the GPU busy when each task's batch is small. B starts at zero, so a fresh adapter leaves
the model's output exactly unchanged.

Two forms of the per-row update, equal up to rounding (tests/test_lora.py holds them so, values
and gradients): when each adapter's rows form one contiguous block (a task's prompts adjacent, the
common case) every block is a matmul pair with its adapter's A and B (`x_run A_k^T B_k^T`; blocks
of equal size, as every task's rollouts are, as one bmm pair over the blocks); otherwise A and B
are gathered per row and applied with batched matmuls (the reference form, which copies
r x (in + out) weights per row: as much as the whole update costs when decoding one token).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .checkpoint import atomic_torch_save, load_checkpoint


@dataclass
class LoRAConfig:
    rank: int = 8
    alpha: float = 16.0
    # substrings of the qualified names of the nn.Linear modules to adapt (attention and MLP projections)
    targets: tuple[str, ...] = ("attn", "mlp")

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1 (got {self.rank})")
        self.targets = tuple(self.targets)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus `n_adapters` low-rank updates, selected per batch row."""

    def __init__(self, base: nn.Linear, cfg: LoRAConfig, n_adapters: int = 1):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scale = cfg.scale
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(n_adapters, cfg.rank, base.in_features, device=dev, dtype=dt))
        self.lora_B = nn.Parameter(torch.zeros(n_adapters, base.out_features, cfg.rank, device=dev, dtype=dt))
        for k in range(n_adapters):
            nn.init.kaiming_uniform_(self.lora_A.data[k], a=math.sqrt(5))
        self.adapter_ids: torch.Tensor | None = None  # [B] adapter index per row; None = adapter 0 for all
        self.adapter_runs: list[tuple[int, int, int]] | None = None  # the same as (start, stop, adapter) blocks
        self.disabled = False  # True: behave as the frozen base (reference log-probs for the KL term)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.disabled:
            return out
        if self.lora_A.shape[0] == 1 or self.adapter_ids is None:
            delta = (x @ self.lora_A[0].to(x.dtype).t()) @ self.lora_B[0].to(x.dtype).t()
        elif self.adapter_runs is not None and self._runs_pay(x, self.adapter_runs):
            delta = self.delta_runs(x, self.adapter_runs, self.adapter_ids)
        else:
            delta = self.delta_gather(x, self.adapter_ids)
        return out + self.scale * delta

    def _runs_pay(self, x: torch.Tensor, runs: list[tuple[int, int, int]]) -> bool:
        """Equal blocks always run as blocks (two bmm, no per-row copies). Unequal ones are joined with a
        cat, which copies T x out values per row where the gather copies r x (in + out): blocks
        when that is less (decoding, T = 1), the gather for long sequences."""
        n = runs[0][1] - runs[0][0]
        if all(e - s == n for s, e, _ in runs):
            return True
        T = x.numel() // max(1, x.shape[0] * x.shape[-1])
        r, out_f, in_f = self.lora_B.shape[2], self.lora_B.shape[1], self.lora_A.shape[2]
        return T * out_f <= r * (in_f + out_f)

    def delta_gather(self, x: torch.Tensor, adapter_ids: torch.Tensor) -> torch.Tensor:
        """B_k A_k x with k = adapter_ids[row] (rows: x's first dim), A and B gathered per row."""
        a = self.lora_A[adapter_ids].to(x.dtype)        # [B, r, in]
        b = self.lora_B[adapter_ids].to(x.dtype)        # [B, out, r]
        shape = x.shape
        x3 = x.reshape(shape[0], -1, shape[-1])         # [B, T, in]
        return torch.bmm(torch.bmm(x3, a.transpose(1, 2)), b.transpose(1, 2)).reshape(*shape[:-1], -1)

    def delta_runs(self, x: torch.Tensor, runs: list[tuple[int, int, int]],
                   adapter_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The same with rows [start, stop) of x all using adapter k, for each (start, stop, k) in
        order; the runs must tile x's first dim. Any tiling is exact; few long runs make it fast.
        adapter_ids (optional): the per-row ids on x's device, read instead of copying runs there."""
        if not runs or runs[0][0] != 0 or runs[-1][1] != x.shape[0] or any(
                r[1] != q[0] for r, q in zip(runs, runs[1:])):
            raise ValueError(f"adapter runs {runs[:4]}... do not tile the batch of {x.shape[0]} rows")
        n = runs[0][1]
        if all(e - s == n for s, e, _ in runs):  # equal blocks (every task the same rollouts): two bmm
            ks = (adapter_ids[::n] if adapter_ids is not None and adapter_ids.device == x.device
                  else torch.tensor([k for _, _, k in runs], device=x.device))
            xk = x.reshape(len(runs), -1, x.shape[-1])                               # [K, n*T, in]
            xa = torch.bmm(xk, self.lora_A[ks].to(x.dtype).transpose(1, 2))          # [K, n*T, r]
            return torch.bmm(xa, self.lora_B[ks].to(x.dtype).transpose(1, 2)).reshape(*x.shape[:-1], -1)
        # unbind and split: views whose backward stacks / concatenates the gradients once (indexing
        # lora_A[k] or slicing x per run would build a full-size zero gradient per run)
        a, b = self.lora_A.to(x.dtype).unbind(0), self.lora_B.to(x.dtype).unbind(0)
        xs = x.split([e - s for s, e, _ in runs], dim=0)
        return torch.cat([(xk @ a[k].t()) @ b[k].t() for xk, (_, _, k) in zip(xs, runs)], dim=0)


def _targets(model: nn.Module, cfg: LoRAConfig) -> list[tuple[str, nn.Linear]]:
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and any(t in name for t in cfg.targets)]
    if not found:
        raise ValueError(f"LoRA targets {cfg.targets} match no nn.Linear in the model")
    return found


def inject_lora(model: nn.Module, cfg: LoRAConfig, n_adapters: int = 1) -> list[str]:
    """Freeze the whole model and wrap every targeted nn.Linear; returns the wrapped names."""
    for p in model.parameters():
        p.requires_grad_(False)
    names = []
    for name, lin in _targets(model, cfg):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, LoRALinear(lin, cfg, n_adapters))
        names.append(name)
    return names


def lora_modules(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for _, m in lora_modules(model) for p in (m.lora_A, m.lora_B)]


def adapter_runs(adapter_ids, contiguous_only: bool = True) -> list[tuple[int, int, int]] | None:
    """[(start, stop, adapter)]: the maximal runs of equal consecutive ids, in order. With
    contiguous_only, None unless every adapter's rows are one block (one run per adapter): many
    short runs are slower as separate matmuls than the per-row gather."""
    ids = adapter_ids.tolist() if isinstance(adapter_ids, torch.Tensor) else [int(a) for a in adapter_ids]
    runs: list[list[int]] = []
    for i, k in enumerate(ids):
        if runs and runs[-1][2] == k:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, k])
    if not runs or (contiguous_only and len({k for _, _, k in runs}) != len(runs)):
        return None
    return [(s, e, k) for s, e, k in runs]


@contextmanager
def adapters_for_rows(model: nn.Module, adapter_ids: torch.Tensor | None,
                      runs: list[tuple[int, int, int]] | None | str = "auto"):
    """Within the block, batch row i uses adapter adapter_ids[i].

    runs: "auto" derives the contiguous blocks from adapter_ids (one host read of the ids; pass
    them precomputed, as the sampler does, to avoid it in a loop); None forces the gather form.
    """
    if isinstance(runs, str):
        if runs != "auto":
            raise ValueError(f"adapters_for_rows: runs must be 'auto', None or a list (got {runs!r})")
        runs = None if adapter_ids is None else adapter_runs(adapter_ids)
    mods = [m for _, m in lora_modules(model)]
    for m in mods:
        m.adapter_ids, m.adapter_runs = adapter_ids, runs
    try:
        yield
    finally:
        for m in mods:
            m.adapter_ids, m.adapter_runs = None, None


@contextmanager
def lora_disabled(model: nn.Module):
    """Within the block the model is exactly its frozen base."""
    mods = [m for _, m in lora_modules(model)]
    for m in mods:
        m.disabled = True
    try:
        yield
    finally:
        for m in mods:
            m.disabled = False


def reset_adapter(model: nn.Module, index: int, seed: int) -> None:
    """Re-initialise adapter `index` as fresh (A random, B zero) with a reproducible seed."""
    g = torch.Generator().manual_seed(seed)
    for _, m in lora_modules(model):
        a = torch.empty(m.lora_A.shape[1:])
        bound = 1.0 / math.sqrt(a.shape[1])  # kaiming_uniform(a=sqrt(5)) bound
        a.uniform_(-bound, bound, generator=g)
        with torch.no_grad():
            m.lora_A[index].copy_(a.to(m.lora_A.dtype))
            m.lora_B[index].zero_()


def adapter_state(model: nn.Module, index: int = 0) -> dict[str, torch.Tensor]:
    out = {}
    for n, m in lora_modules(model):
        out[f"{n}.lora_A"] = m.lora_A[index].detach().cpu().clone()
        out[f"{n}.lora_B"] = m.lora_B[index].detach().cpu().clone()
    return out


def save_lora(model: nn.Module, cfg: LoRAConfig, path: str, index: int = 0, meta: dict | None = None) -> None:
    """Adapter-only file: {"lora_config", "weights", "meta"} (loads with weights_only=True)."""
    atomic_torch_save({"lora_config": asdict(cfg) | {"targets": list(cfg.targets)},
                       "weights": adapter_state(model, index), "meta": meta or {}}, path)


def load_lora(model: nn.Module, path: str, index: int = 0) -> LoRAConfig:
    """Load an adapter file into adapter `index` of an injected model; returns its config."""
    state = load_checkpoint(path)
    cfg = LoRAConfig(**state["lora_config"])
    mods = dict(lora_modules(model))
    with torch.no_grad():
        for key, tensor in state["weights"].items():
            name, _, which = key.rpartition(".")
            if name not in mods:
                raise ValueError(f"{path}: adapter weight {key} has no matching LoRA module in the model")
            getattr(mods[name], which)[index].copy_(tensor)
    return cfg


def merge_lora(model: nn.Module, index: int = 0) -> nn.Module:
    """Fold adapter `index` into the base weights and remove the LoRA wrappers (for export)."""
    for name, m in lora_modules(model):
        with torch.no_grad():
            m.base.weight += m.scale * (m.lora_B[index] @ m.lora_A[index]).to(m.base.weight.dtype)
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, m.base)
    return model
