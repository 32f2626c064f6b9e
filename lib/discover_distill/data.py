"""Packed token files and the deterministic batch iterators that read them.

A packed file is raw little-endian tokens (`train.bin`, uint16 when the vocabulary fits, else
uint32) plus a JSON sidecar beside it (`train.json`: dtype, token count, tokenizer and source
sha256). The sidecar is written last, so a .bin without one is an unfinished file.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from .cli import UserError


def sidecar_path(bin_path: str) -> str:
    """`data/packed/train.bin` -> `data/packed/train.json`."""
    return os.path.splitext(bin_path)[0] + ".json"


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


class PackedTokens:
    """Read-only view of a packed token file (np.memmap), validated against its sidecar."""

    def __init__(self, bin_path: str, expected_tokenizer_sha256: str | None = None):
        meta_path = sidecar_path(bin_path)
        if not os.path.isfile(bin_path):
            raise UserError(f"packed token file not found: {bin_path}")
        if not os.path.isfile(meta_path):
            raise UserError(f"{bin_path}: sidecar {meta_path} is missing (incomplete prepare_data.py run?)")
        try:
            with open(meta_path) as f:
                self.meta = json.load(f)
            self.dtype = np.dtype(self.meta["dtype"]).newbyteorder("<")
            self.num_tokens = int(self.meta["num_tokens"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{meta_path}: unreadable sidecar ({e})") from None
        expected_bytes = self.num_tokens * self.dtype.itemsize
        if os.path.getsize(bin_path) != expected_bytes:
            raise UserError(f"{bin_path}: size {os.path.getsize(bin_path)} bytes does not match its sidecar "
                            f"({self.num_tokens} tokens = {expected_bytes} bytes): truncated or replaced")
        if expected_tokenizer_sha256 and self.meta.get("tokenizer_sha256") != expected_tokenizer_sha256:
            raise UserError(f"{bin_path} was packed with tokenizer {self.meta.get('tokenizer', '?')} "
                            f"(sha256 {str(self.meta.get('tokenizer_sha256'))[:12]}), which differs from the one "
                            f"expected (sha256 {expected_tokenizer_sha256[:12]})")
        self.path = bin_path
        self.tokens = np.memmap(bin_path, dtype=self.dtype, mode="r", shape=(self.num_tokens,))
        self.vocab_size = int(self.meta.get("vocab_size", 0))
        self.tokenizer_sha256 = self.meta.get("tokenizer_sha256")

    def __len__(self) -> int:
        return self.num_tokens


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.stack([np.asarray(tokens[s:s + seq_len + 1], dtype=np.int64) for s in starts])
    t = torch.from_numpy(rows)
    return t[:, :-1].contiguous(), t[:, 1:].contiguous()


class BatchIterator:
    """Random contiguous windows of seq_len + 1 tokens, a pure function of (seed, step, row).

    At global step s the whole world draws world_size * batch_size window starts from one
    generator seeded with (seed, s); rank r takes rows [r*B, (r+1)*B). So the union of the ranks'
    micro-batches equals the single-process batch of size world_size * B, and the iterator's whole
    state is the step counter: restoring it reproduces the following batches exactly.
    """

    def __init__(self, data: PackedTokens, seq_len: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1):
        if len(data) < seq_len + 2:
            raise UserError(f"{data.path}: {len(data)} tokens is too few for seq_len {seq_len}")
        self.data, self.seq_len, self.batch_size = data, seq_len, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.step = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.step])
        starts = rng.integers(0, len(self.data) - self.seq_len - 1, size=self.world_size * self.batch_size)
        self.step += 1
        mine = starts[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        return _windows(self.data.tokens, mine, self.seq_len)

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise UserError(f"data cursor was saved with seed {state['seed']}, this run uses seed {self.seed}")
        self.step = int(state["step"])


def eval_batches(data: PackedTokens, seq_len: int, batch_size: int, max_batches: int):
    """Sequential, non-overlapping validation windows from the start of the file (same every call)."""
    n_windows = (len(data) - 1) // seq_len
    starts = np.arange(n_windows) * seq_len
    for b in range(min(max_batches, n_windows // batch_size)):
        yield _windows(data.tokens, starts[b * batch_size:(b + 1) * batch_size], seq_len)
