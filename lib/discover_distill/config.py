"""Dataclass configs with strict JSON loading: an unknown or a missing key is an error that
names the file and every offending key at once (no silent defaults)."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from .checkpoint import atomic_write_json
from .cli import UserError

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], data: Any, source: str) -> T:
    """Build dataclass `cls` from a dict that must name exactly its fields."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown, missing = sorted(set(data) - names), sorted(names - set(data))
    problems = ([f"unknown keys: {', '.join(unknown)}"] if unknown else []) + \
               ([f"missing keys: {', '.join(missing)}"] if missing else [])
    if problems:
        raise UserError(f"{source}: {'; '.join(problems)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as e:
        raise UserError(f"{source}: {e}") from None


def dataclass_from_json(cls: type[T], path: str) -> T:
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    return dataclass_from_dict(cls, data, path)


@dataclass
class ModelConfig:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int               # SwiGLU hidden width
    max_seq_len: int
    rope_theta: float
    norm_eps: float
    mhc_streams: int        # n residual streams; 1 = plain pre-norm residual network (mHC off)
    mhc_sinkhorn_iters: int
    mhc_alpha_init: float
    init_std: float

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len", "mhc_streams",
                     "mhc_sinkhorn_iters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"d_model {self.d_model} must split into {self.n_heads} heads of even size")
        if self.norm_eps <= 0 or self.init_std <= 0 or self.rope_theta <= 0:
            raise ValueError("norm_eps, init_std and rope_theta must be > 0")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_model_config(path: str) -> ModelConfig:
    return dataclass_from_json(ModelConfig, path)


def model_config_from_dict(data: dict, source: str = "checkpoint") -> ModelConfig:
    return dataclass_from_dict(ModelConfig, data, source)


def save_model_config(cfg: ModelConfig, path: str) -> None:
    atomic_write_json(path, cfg.to_dict())
