"""Packed token files: writing them from text, reading them back, and the batch iterators.

A packed file is raw little-endian tokens (`train.bin`; uint16 when the vocabulary fits, else
uint32; `np.fromfile` reads it) plus a JSON sidecar beside it, named by dropping `.bin`
(`train.json`): dtype, token and document counts, vocabulary size, tokenizer and source paths
with sha256, append_eos/bos. Both are written to temp files and renamed, the sidecar last, so a
.bin without a sidecar is an unfinished file and is refused.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from typing import Callable, Iterator

import numpy as np
import torch

from .cli import UserError
from .fileio import atomic_write_json
from .tokenizer import Tokenizer

_DTYPES = ("uint16", "uint32")


def sidecar_path(bin_path: str) -> str:
    """`data/packed/train.bin` -> `data/packed/train.json` (only .bin files have sidecars)."""
    if not bin_path.endswith(".bin"):
        raise UserError(f"{bin_path}: a packed token file must end in .bin (its sidecar is <name>.json)")
    return bin_path[:-len(".bin")] + ".json"


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """The narrowest little-endian dtype that holds every token id."""
    return np.dtype("<u2") if vocab_size <= 65535 else np.dtype("<u4")


# ---------------------------------------------------------------------------------------------
# Writing


def iter_line_chunks(path: str, chunk_lines: int, on_bytes: Callable[[bytes], None]) -> Iterator[list[str]]:
    """Lines of `path` (terminator stripped), `chunk_lines` at a time; every raw line goes to
    `on_bytes` (hashing, progress). Streaming keeps memory flat in the file size."""
    chunk: list[str] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            on_bytes(raw)
            try:
                chunk.append(raw.rstrip(b"\r\n").decode("utf-8"))
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start})") from None
            if len(chunk) >= chunk_lines:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def pack_text_file(tok: Tokenizer, input_path: str, output_path: str, append_eos: bool = True,
                   append_bos: bool = False, chunk_lines: int = 10_000,
                   progress: Callable[[int], None] | None = None) -> dict:
    """Tokenize `input_path` (one document per line) into `output_path` + sidecar; returns the sidecar.

    Blank lines are skipped (they would only add stray EOS tokens) and counted in the sidecar.
    `progress(n_bytes)` is called after each chunk with the bytes it consumed.
    """
    if chunk_lines < 1:
        raise UserError(f"--chunk_lines must be >= 1 (got {chunk_lines})")
    meta_path = sidecar_path(output_path)
    dtype = dtype_for_vocab(tok.vocab_size)
    hasher = hashlib.sha256()
    n_bytes = [0]  # consumed since the last progress call

    def consumed(raw: bytes) -> None:
        hasher.update(raw)
        n_bytes[0] += len(raw)

    n_tokens = n_docs = n_blank = 0
    out_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".tmp-{os.path.basename(output_path)}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for lines in iter_line_chunks(input_path, chunk_lines, consumed):
                docs = [line for line in lines if line.strip()]
                n_blank += len(lines) - len(docs)
                ids = tok.encode_batch(docs, add_bos=append_bos, add_eos=append_eos)
                count = sum(map(len, ids))
                np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=count).tofile(f)
                n_tokens += count
                n_docs += len(docs)
                if progress is not None:
                    progress(n_bytes[0])
                    n_bytes[0] = 0
            f.flush()
            os.fsync(f.fileno())
        if n_tokens == 0:
            raise UserError(f"--input: {input_path} has no non-blank lines, nothing to pack")
        if os.path.exists(meta_path):
            os.unlink(meta_path)  # a stale sidecar must never vouch for the new .bin
        os.replace(tmp, output_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta = {"dtype": dtype.name, "num_tokens": n_tokens, "num_docs": n_docs, "blank_lines_skipped": n_blank,
            "vocab_size": tok.vocab_size, "tokenizer": tok.path, "tokenizer_sha256": tok.sha256,
            "source": input_path, "source_sha256": hasher.hexdigest(),
            "append_eos": int(append_eos), "append_bos": int(append_bos)}
    atomic_write_json(meta_path, meta)
    return meta


# ---------------------------------------------------------------------------------------------
# Reading


class PackedTokens:
    """Read-only view of a packed token file (np.memmap), validated against its sidecar."""

    def __init__(self, bin_path: str, expected_tokenizer_sha256: str | None = None,
                 expected_tokenizer: str | None = None):
        """`expected_tokenizer` names where the expected sha256 comes from (a .model path or
        another .bin), for the error message only."""
        meta_path = sidecar_path(bin_path)
        if not os.path.isfile(bin_path):
            raise UserError(f"packed token file not found: {bin_path}")
        if not os.path.isfile(meta_path):
            raise UserError(f"{bin_path}: its sidecar {meta_path} is missing "
                            f"(unfinished scripts/prepare_data.py run? rerun it)")
        try:
            with open(meta_path) as f:
                self.meta: dict = json.load(f)
            dtype_name = self.meta["dtype"]
            self.num_tokens = int(self.meta["num_tokens"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{meta_path}: unreadable sidecar ({type(e).__name__}: {e})") from None
        if dtype_name not in _DTYPES or self.num_tokens < 1:
            raise UserError(f"{meta_path}: dtype {dtype_name!r} / num_tokens {self.num_tokens} is not a packed file")
        self.dtype = np.dtype(dtype_name).newbyteorder("<")
        size, want = os.path.getsize(bin_path), self.num_tokens * self.dtype.itemsize
        if size != want:
            raise UserError(f"{bin_path}: {size} bytes, but its sidecar says {self.num_tokens} tokens = {want} "
                            f"bytes: truncated or replaced; rerun scripts/prepare_data.py")
        self.tokenizer_sha256: str | None = self.meta.get("tokenizer_sha256")
        if expected_tokenizer_sha256 and self.tokenizer_sha256 != expected_tokenizer_sha256:
            where = f" ({expected_tokenizer})" if expected_tokenizer else ""
            raise UserError(f"{bin_path} was packed with tokenizer {self.meta.get('tokenizer', '?')} "
                            f"(sha256 {str(self.tokenizer_sha256)[:12]}), which differs from the one expected"
                            f"{where} (sha256 {expected_tokenizer_sha256[:12]}); repack it with that tokenizer")
        self.path = bin_path
        self.vocab_size = int(self.meta.get("vocab_size", 0))
        self.num_docs = int(self.meta.get("num_docs", 0))
        self.tokens = np.memmap(bin_path, dtype=self.dtype, mode="r", shape=(self.num_tokens,))

    def __len__(self) -> int:
        return self.num_tokens


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets of the windows tokens[s : s + seq_len + 1], as int64 [B, T]."""
    rows = np.asarray(tokens[starts[:, None] + np.arange(seq_len + 1)], dtype=np.int64)
    t = torch.from_numpy(rows)
    return t[:, :-1].contiguous(), t[:, 1:].contiguous()


def _token_array(data) -> tuple[np.ndarray, str]:
    """(tokens, name) from a PackedTokens or a plain 1-D array."""
    if isinstance(data, PackedTokens):
        return data.tokens, data.path
    return np.asarray(data), "tokens"


class BatchIterator:
    """Random contiguous windows of seq_len + 1 tokens, a pure function of (seed, step, row).

    At step s the whole world draws world_size * batch_size window starts from one generator
    seeded with (seed, s); rank r takes rows [r*B, (r+1)*B). So the union of the ranks'
    micro-batches equals the single-process batch of size world_size * B, and the state is the
    step counter: restoring it reproduces the following batches exactly, also on a different
    number of ranks as long as the global batch (world_size * B) is the same.
    """

    def __init__(self, data, seq_len: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.tokens, name = _token_array(data)
        if seq_len < 1 or batch_size < 1:
            raise UserError(f"seq_len ({seq_len}) and batch size ({batch_size}) must be >= 1")
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is not in [0, world_size={world_size})")
        if len(self.tokens) < seq_len + 1:
            raise UserError(f"{name}: {len(self.tokens)} tokens is too few for seq_len {seq_len}")
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.step = 0

    @property
    def global_batch(self) -> int:
        return self.world_size * self.batch_size

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.step])
        # Starts in [0, N - seq_len - 1]: every window, the file's last token included, can be drawn.
        starts = rng.integers(0, len(self.tokens) - self.seq_len, size=self.global_batch)
        self.step += 1
        mine = starts[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        return _windows(self.tokens, mine, self.seq_len)

    def state_dict(self) -> dict:
        """Plain ints only, so checkpoints load with torch.load(weights_only=True)."""
        return {"step": self.step, "seed": self.seed, "seq_len": self.seq_len, "global_batch": self.global_batch}

    def load_state_dict(self, state: dict) -> None:
        # Different seed, seq_len or global batch would silently change the batch sequence.
        for key in ("seed", "seq_len", "global_batch"):
            if key in state and int(state[key]) != getattr(self, key):
                raise UserError(f"data cursor was saved with {key} {state[key]}, this run has {getattr(self, key)}: "
                                f"resuming would not reproduce the same batches")
        self.step = int(state["step"])


def eval_window_starts(n_tokens: int, seq_len: int, batch_size: int, max_batches: int,
                       from_end: bool = False) -> list[np.ndarray]:
    """Window starts of each evaluation batch: sequential, non-overlapping windows of seq_len + 1
    tokens, the same on every call. From the start of the file (window i starts at i*seq_len), or,
    with `from_end`, the same layout packed against the file's end (the last window ends on its last
    token): the SDFT gate reads the end and retention (E2) the start, so they never share text.
    Batches are full, except that a file too short for one full batch gives a single smaller one.
    """
    n_windows = max(0, (n_tokens - 1) // seq_len)
    n_batches = min(max_batches, n_windows // batch_size)
    if n_batches == 0 and n_windows > 0 and max_batches > 0:
        n_batches, batch_size = 1, n_windows
    offset = n_tokens - 1 - n_batches * batch_size * seq_len if from_end else 0
    return [offset + (np.arange(batch_size) + b * batch_size) * seq_len for b in range(n_batches)]


def eval_token_range(n_tokens: int, seq_len: int, batch_size: int, max_batches: int,
                     from_end: bool = False) -> tuple[int, int]:
    """[start, end) of the tokens the evaluation batches read ((0, 0) when there are none)."""
    starts = eval_window_starts(n_tokens, seq_len, batch_size, max_batches, from_end)
    if not starts:
        return (0, 0)
    return int(starts[0][0]), int(starts[-1][-1]) + seq_len + 1


def eval_batches(data, seq_len: int, batch_size: int, max_batches: int,
                 from_end: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The evaluation batches of `eval_window_starts` as (inputs, targets)."""
    tokens, _ = _token_array(data)
    for starts in eval_window_starts(len(tokens), seq_len, batch_size, max_batches, from_end):
        yield _windows(tokens, starts, seq_len)
