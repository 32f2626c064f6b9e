"""Dataclass configs with strict JSON loading: an unknown or a missing key is an error that
names the file and every offending key at once (no silent defaults).

Torch-free on purpose, like fileio.py: tools that only read configs stay fast to start.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from .cli import UserError
from .fileio import atomic_write_json

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], data: Any, source: str) -> T:
    """Build dataclass `cls` from a dict that names its fields (those with a default may be left
    out: files written before the field existed). Unknown keys, missing required keys and invalid
    values (the dataclass's own validation) become one UserError naming `source`."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object, got {type(data).__name__}")
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    required = {f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    unknown, missing = sorted(set(data) - names), sorted(required - set(data))
    problems = ([f"unknown keys: {', '.join(unknown)}"] if unknown else []) + \
               ([f"missing keys: {', '.join(missing)}"] if missing else [])
    if problems:
        raise UserError(f"{source}: {'; '.join(problems)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as e:
        raise UserError(f"{source}: {e}") from None


def dataclass_from_json(cls: type[T], path: str) -> T:
    """Load dataclass `cls` from a JSON file, strictly (see dataclass_from_dict)."""
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    return dataclass_from_dict(cls, data, path)


def check_fields(obj: Any, positive_ints: tuple[str, ...] = (), positive_floats: tuple[str, ...] = ()) -> list[str]:
    """Problems with a dataclass's numeric fields, one string each (empty when all are valid).
    JSON has no int/float distinction for whole numbers, so a float field accepts an int."""
    problems = []
    for name in positive_ints:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name} must be a positive integer, got {value!r}")
    for name in positive_floats:
        value = getattr(obj, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            problems.append(f"{name} must be a number > 0, got {value!r}")
    return problems


STREAM_DTYPES = ("fp32", "bf16")


@dataclass
class ModelConfig:
    vocab_size: int
    d_model: int            # C, the width of each residual stream
    n_layers: int           # blocks; each is an attention and an MLP sublayer
    n_heads: int
    d_ff: int               # SwiGLU hidden width
    max_seq_len: int        # RoPE table and KV cache limit, in tokens
    rope_theta: float
    norm_eps: float
    mhc_streams: int        # n residual streams; 1 = plain pre-norm residual network (mHC off)
    mhc_sinkhorn_iters: int  # column+row normalisation rounds for H_res
    mhc_alpha_init: float   # initial value of the gate scalars alpha_pre/post/res
    init_std: float         # std of the weight init (output projections get /sqrt(2 n_layers))
    # storage dtype of the n residual streams between sublayers: "fp32", or "bf16" as the mHC paper
    # stores them (§4.3; the coefficients and the stream arithmetic still run in fp32). n = 1 keeps fp32.
    mhc_stream_dtype: str = "fp32"

    def __post_init__(self):
        problems = check_fields(
            self,
            positive_ints=("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len", "mhc_streams",
                           "mhc_sinkhorn_iters"),
            positive_floats=("rope_theta", "norm_eps", "init_std"))
        alpha = self.mhc_alpha_init
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha >= 0:
            problems.append(f"mhc_alpha_init must be a number >= 0, got {alpha!r}")  # 0 = static coefficients at init
        if self.mhc_stream_dtype not in STREAM_DTYPES:
            problems.append(f"mhc_stream_dtype must be one of {', '.join(STREAM_DTYPES)}, got {self.mhc_stream_dtype!r}")
        if not problems and (self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2):
            problems.append(f"d_model {self.d_model} must split into {self.n_heads} heads of even size (RoPE)")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "model config") -> "ModelConfig":
        return dataclass_from_dict(cls, data, source)


def load_model_config(path: str) -> ModelConfig:
    return dataclass_from_json(ModelConfig, path)


def model_config_from_dict(data: dict, source: str = "checkpoint") -> ModelConfig:
    return ModelConfig.from_dict(data, source)


def save_model_config(cfg: ModelConfig, path: str) -> None:
    """Write the config as JSON atomically (temp file, fsync, rename)."""
    atomic_write_json(path, cfg.to_dict())


PROFILES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "configs", "profiles")


def load_profile(name: str) -> tuple[dict, str]:
    """(profile, path) for a pipeline profile: a name under configs/profiles/ (paper, mini, smoke,
    gpu_check) or a path to a JSON file."""
    path = name if name.endswith(".json") else os.path.join(PROFILES_DIR, f"{name}.json")
    if not os.path.isfile(path):
        known = ", ".join(sorted(f[:-5] for f in os.listdir(PROFILES_DIR) if f.endswith(".json")))
        raise UserError(f"--profile: {path} not found ({known}, or a JSON file)")
    with open(path) as f:
        return json.load(f), path


def profile_outputs(profile: dict) -> dict[str, str]:
    """Where phase F puts a profile's paper inputs, relative to the repository root: "figs" (the
    figures' PDFs and PNGs), "tables" (LaTeX tables and setup.tex) and "registry". The paper profile
    (runs_dir "runs") writes where paper/latex/main.tex reads (paper/figs, paper/latex/tables);
    every other profile under its own runs_dir, so a smoke or mini run never overwrites the paper's
    (`make pdf PROFILE=<name>` stages them where main.tex reads them)."""
    runs = profile["runs_dir"]
    if runs == "runs":
        return {"figs": "paper/figs", "tables": "paper/latex/tables", "registry": "paper/04_results_registry.md"}
    return {"figs": f"{runs}/figs", "tables": f"{runs}/latex_tables", "registry": f"{runs}/04_results_registry.md"}
