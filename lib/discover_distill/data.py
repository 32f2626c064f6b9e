"""Packed token files: writing them from text, reading them back, and the batch iterators.

A packed file is raw little-endian tokens (`train.bin`; uint16 when the vocabulary fits, else
uint32; `np.fromfile` reads it) plus a JSON sidecar beside it, named by dropping `.bin`
(`train.json`): dtype, token and document counts, vocabulary size, tokenizer and source paths
with sha256, append_eos/bos, document length stats. The document index `train.docs.npy` (int64
start offset of every document, for rows aligned to documents) is named in the sidecar with its
sha256. All are written to temp files and renamed, the sidecar last, so a .bin without a sidecar
is an unfinished file and is refused, and a stale index is detected.
"""
from __future__ import annotations

import bisect
import collections
import hashlib
import io
import itertools
import json
import os
from typing import Callable, Iterator

import numpy as np
import torch

from .cli import UserError
from .fileio import atomic_write, atomic_write_json
from .tokenizer import EOS_ID, PAD_ID, Tokenizer

_DTYPES = ("uint16", "uint32")
# Targets the model's losses skip (model.GPT: F.cross_entropy / linear_cross_entropy, ignore_index=-100),
# used for the padding after the last document of an aligned row.
IGNORE_INDEX = -100
TASK_PREFIX = "Q: "  # a corpus line that starts so is a task (prompt + answer): it must fit one row


def sidecar_path(bin_path: str) -> str:
    """`data/packed/train.bin` -> `data/packed/train.json` (only .bin files have sidecars)."""
    if not bin_path.endswith(".bin"):
        raise UserError(f"{bin_path}: a packed token file must end in .bin (its sidecar is <name>.json)")
    return bin_path[:-len(".bin")] + ".json"


def doc_index_path(bin_path: str) -> str:
    """`data/packed/train.bin` -> `data/packed/train.docs.npy`: int64 start offset of each document."""
    return sidecar_path(bin_path)[:-len(".json")] + ".docs.npy"


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
                   progress: Callable[[int], None] | None = None, max_doc_tokens: int = 0) -> dict:
    """Tokenize `input_path` (one document per line) into `output_path`, its document index and
    sidecar; returns the sidecar.

    Blank lines are skipped (they would only add stray EOS tokens) and counted in the sidecar.
    `progress(n_bytes)` is called after each chunk with the bytes it consumed. With
    `max_doc_tokens` > 0 a task line (TASK_PREFIX) longer than that many tokens (BOS/EOS included)
    stops the run with its line number before anything is written: such a task would be cut in
    pretraining, its answer cut off from its prompt; longer filler lines are only counted.
    """
    if chunk_lines < 1:
        raise UserError(f"--chunk_lines must be >= 1 (got {chunk_lines})")
    if max_doc_tokens < 0:
        raise UserError(f"--max_doc_tokens must be >= 0 (got {max_doc_tokens})")
    meta_path, index_path = sidecar_path(output_path), doc_index_path(output_path)
    dtype = dtype_for_vocab(tok.vocab_size)
    hasher = hashlib.sha256()
    n_bytes = [0]  # consumed since the last progress call

    def consumed(raw: bytes) -> None:
        hasher.update(raw)
        n_bytes[0] += len(raw)

    n_tokens = n_docs = n_blank = n_lines = 0
    doc_lens: list[np.ndarray] = []
    out_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".tmp-{os.path.basename(output_path)}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for lines in iter_line_chunks(input_path, chunk_lines, consumed):
                kept = [i for i, line in enumerate(lines) if line.strip()]
                docs = [lines[i] for i in kept]
                n_blank += len(lines) - len(docs)
                ids = tok.encode_batch(docs, add_bos=append_bos, add_eos=append_eos)
                lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
                for i in np.flatnonzero(lens > max_doc_tokens) if max_doc_tokens else ():
                    if docs[i].startswith(TASK_PREFIX):
                        raise UserError(f"{input_path}:{n_lines + kept[i] + 1}: task line of {lens[i]} tokens is "
                                        f"longer than --max_doc_tokens {max_doc_tokens} (one pretraining row); "
                                        f"shorten it or raise --seq_len")
                count = int(lens.sum())
                np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=count).tofile(f)
                doc_lens.append(lens)
                n_lines += len(lines)
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
    lens = np.concatenate(doc_lens)
    index = io.BytesIO()
    np.save(index, np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64))
    blob = index.getvalue()
    atomic_write(index_path, lambda out: out.write(blob))
    meta = {"dtype": dtype.name, "num_tokens": n_tokens, "num_docs": n_docs, "blank_lines_skipped": n_blank,
            "vocab_size": tok.vocab_size, "tokenizer": tok.path, "tokenizer_sha256": tok.sha256,
            "source": input_path, "source_sha256": hasher.hexdigest(),
            "append_eos": int(append_eos), "append_bos": int(append_bos),
            "doc_index": {"file": os.path.basename(index_path), "num_docs": n_docs,
                          "sha256": hashlib.sha256(blob).hexdigest()},
            "doc_tokens": {"max": int(lens.max()), "p99": int(np.percentile(lens, 99, method="higher")),
                           "mean": round(float(lens.mean()), 2), "max_doc_tokens": max_doc_tokens,
                           "over_max": int((lens > max_doc_tokens).sum()) if max_doc_tokens else None}}
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
        self._doc_starts: np.ndarray | None = None

    def __len__(self) -> int:
        return self.num_tokens

    @property
    def doc_starts(self) -> np.ndarray:
        """int64 start offset of every document (read on first use: only aligned pretraining needs it)."""
        if self._doc_starts is None:
            self._doc_starts = self._read_doc_starts()
        return self._doc_starts

    def _read_doc_starts(self) -> np.ndarray:
        rerun = "rerun scripts/prepare_data.py"
        index = self.meta.get("doc_index")
        if index:
            path = os.path.join(os.path.dirname(self.path), str(index.get("file")))
            try:
                with open(path, "rb") as f:
                    blob = f.read()
            except OSError:
                raise UserError(f"{self.path}: its document index {path} is missing; {rerun}") from None
            if hashlib.sha256(blob).hexdigest() != index.get("sha256"):
                raise UserError(f"{path}: does not match the sidecar of {self.path} (stale or replaced); {rerun}")
            starts = np.load(io.BytesIO(blob), allow_pickle=False)
        elif int(self.meta.get("append_eos", 0)) == 1:
            # packed before the index existed: every document ends with EOS, so the next starts after it
            ends = np.flatnonzero(np.asarray(self.tokens) == EOS_ID) + 1
            if not len(ends) or ends[-1] != self.num_tokens:
                raise UserError(f"{self.path}: has no document index and does not end with EOS; {rerun}")
            starts = np.concatenate([[0], ends[:-1]])
        else:
            raise UserError(f"{self.path}: has no document index ({doc_index_path(self.path)}) and, packed with "
                            f"--append_eos 0, no EOS to find documents by; {rerun}")
        starts = np.asarray(starts, dtype=np.int64)
        if (starts.ndim != 1 or not len(starts) or starts[0] != 0 or starts[-1] >= self.num_tokens
                or np.any(np.diff(starts) <= 0) or (self.num_docs and len(starts) != self.num_docs)):
            raise UserError(f"{self.path}: its document starts do not match the file "
                            f"({len(starts)} starts, sidecar num_docs {self.num_docs}); {rerun}")
        return starts


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

    packing = "random"

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
        _check_cursor(self, state, ("seed", "seq_len", "global_batch"))
        self.step = int(state["step"])


def best_fit_rows(doc_starts: np.ndarray, doc_lens: np.ndarray, order: np.ndarray, capacity: int,
                  buffer_size: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack documents, taken in `order`, into rows of `capacity` tokens by best fit.

    nanochat's BOS-aligned best-fit idea: `buffer_size` documents wait in a buffer; each row is
    filled by repeatedly taking the longest buffered document that still fits the room left, so a
    row starts at a document start and holds whole documents; what no document fits stays padding.
    A document longer than `capacity` is cut into pieces of `capacity` tokens (the last one
    shorter), and each piece opens a row of its own, ahead of the buffer.
    Returns (seg_start, seg_len, row_ptr): row i is the concatenation of the token ranges
    [seg_start[j], seg_start[j] + seg_len[j]) for j in [row_ptr[i], row_ptr[i + 1]).
    """
    starts, lens = doc_starts.tolist(), doc_lens.tolist()  # Python ints: the loop is per document
    buf_len: list[int] = []  # the buffer sorted by length, so bisect finds the best fit
    buf_start: list[int] = []
    pieces: collections.deque[tuple[int, int]] = collections.deque()
    seg_start: list[int] = []
    seg_len: list[int] = []
    row_ptr = [0]
    todo = iter(order.tolist())
    more = True
    while True:
        while more and len(buf_len) < buffer_size:
            d = next(todo, None)
            if d is None:
                more = False
            elif lens[d] > capacity:
                pieces.extend((starts[d] + o, min(capacity, lens[d] - o)) for o in range(0, lens[d], capacity))
            else:
                i = bisect.bisect_right(buf_len, lens[d])
                buf_len.insert(i, lens[d])
                buf_start.insert(i, starts[d])
        if not buf_len and not pieces:
            break
        room = capacity
        if pieces:
            s, n = pieces.popleft()
            seg_start.append(s)
            seg_len.append(n)
            room -= n
        while room:
            i = bisect.bisect_right(buf_len, room) - 1
            if i < 0:
                break
            room -= buf_len[i]
            seg_len.append(buf_len.pop(i))
            seg_start.append(buf_start.pop(i))
        row_ptr.append(len(seg_start))
    return (np.array(seg_start, dtype=np.int64), np.array(seg_len, dtype=np.int64),
            np.array(row_ptr, dtype=np.int64))


class AlignedBatchIterator:
    """Rows of seq_len + 1 tokens that start at a document start and hold whole documents.

    Each epoch the documents are shuffled by a permutation seeded with (seed, epoch) and packed
    by `best_fit_rows`; the rows of all epochs, one after another, are the global row sequence.
    Step s takes global rows [s*GB, (s+1)*GB) (GB = world_size * batch_size) and rank r rows
    [r*B, (r+1)*B) of those, as BatchIterator does, so the union of the ranks is the
    single-process batch and the step counter alone fixes the following batches (the epoch
    cursor in the state only saves repacking earlier epochs on resume). Positions after a row's
    last document are padding: input PAD_ID, target IGNORE_INDEX, which the model's loss skips.
    """

    packing = "aligned"

    def __init__(self, data, seq_len: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 doc_starts: np.ndarray | None = None, buffer_size: int = 1000):
        """`doc_starts`: the documents' start offsets; default `data.doc_starts` (a PackedTokens)."""
        self.tokens, name = _token_array(data)
        if seq_len < 1 or batch_size < 1 or buffer_size < 1:
            raise UserError(f"seq_len ({seq_len}), batch size ({batch_size}) and buffer size ({buffer_size}) "
                            f"must be >= 1")
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is not in [0, world_size={world_size})")
        if doc_starts is None:
            if not isinstance(data, PackedTokens):
                raise UserError("AlignedBatchIterator over a plain token array needs doc_starts")
            doc_starts = data.doc_starts
        self.doc_starts = np.asarray(doc_starts, dtype=np.int64)
        if (self.doc_starts.ndim != 1 or not len(self.doc_starts) or self.doc_starts[0] != 0
                or self.doc_starts[-1] >= len(self.tokens) or np.any(np.diff(self.doc_starts) <= 0)):
            raise UserError(f"{name}: document starts must rise strictly from 0 and stay below "
                            f"{len(self.tokens)} tokens")
        self.doc_lens = np.diff(np.append(self.doc_starts, len(self.tokens)))
        self.seq_len, self.batch_size, self.seed, self.buffer_size = seq_len, batch_size, seed, buffer_size
        self.rank, self.world_size = rank, world_size
        self.docs_cut = int((self.doc_lens > seq_len + 1).sum())
        self.step = 0
        self._epoch, self._epoch_first_row = 0, 0  # the packed epoch and its first global row
        self._rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def global_batch(self) -> int:
        return self.world_size * self.batch_size

    def _packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._rows is None:
            order = np.random.default_rng([self.seed, self._epoch]).permutation(len(self.doc_starts))
            self._rows = best_fit_rows(self.doc_starts, self.doc_lens, order, self.seq_len + 1, self.buffer_size)
        return self._rows

    def _row(self, g: int) -> np.ndarray:
        """The tokens of global row g (PAD_ID-free: its length is what the documents fill)."""
        if g < self._epoch_first_row:  # behind the cached epoch: count epochs again from the first
            self._epoch, self._epoch_first_row, self._rows = 0, 0, None
        while g >= self._epoch_first_row + len(self._packed()[2]) - 1:
            self._epoch_first_row += len(self._packed()[2]) - 1
            self._epoch, self._rows = self._epoch + 1, None
        seg_start, seg_len, row_ptr = self._packed()
        i = g - self._epoch_first_row
        starts, lens = seg_start[row_ptr[i]:row_ptr[i + 1]], seg_len[row_ptr[i]:row_ptr[i + 1]]
        # position p of the row reads tokens[start of its segment + p - the segment's offset in the row]
        index = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(lens.sum())
        return self.tokens[index]

    def epoch_stats(self) -> dict:
        """Rows, fill ratio (non-pad share of the row tokens) and cut documents of the current epoch."""
        _, seg_len, row_ptr = self._packed()
        rows = len(row_ptr) - 1
        return {"epoch": self._epoch, "rows": rows, "fill": float(seg_len.sum()) / (rows * (self.seq_len + 1)),
                "docs_cut": self.docs_cut}

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.step * self.global_batch + self.rank * self.batch_size
        self.step += 1
        rows = np.full((self.batch_size, self.seq_len + 1), PAD_ID, dtype=np.int64)
        targets = np.full((self.batch_size, self.seq_len), IGNORE_INDEX, dtype=np.int64)
        for b in range(self.batch_size):
            row = self._row(first + b)
            rows[b, :len(row)] = row
            targets[b, :len(row) - 1] = row[1:]
        return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(targets)

    def state_dict(self) -> dict:
        """Plain ints and the packing name, so checkpoints load with torch.load(weights_only=True)."""
        return {"packing": self.packing, "step": self.step, "seed": self.seed, "seq_len": self.seq_len,
                "global_batch": self.global_batch, "buffer_size": self.buffer_size,
                "num_docs": len(self.doc_starts), "num_tokens": len(self.tokens),
                "epoch": self._epoch, "epoch_first_row": self._epoch_first_row}

    def load_state_dict(self, state: dict) -> None:
        _check_cursor(self, state, ("seed", "seq_len", "global_batch", "buffer_size", "num_docs", "num_tokens"))
        self.step = int(state["step"])
        self._epoch, self._epoch_first_row = int(state.get("epoch", 0)), int(state.get("epoch_first_row", 0))
        self._rows = None


COPY_SALT = 0xC0B1  # separates the copy rows' random streams from every other use of the seed


def frequent_tokens(tokens: np.ndarray, k: int, chunk: int = 1 << 24) -> np.ndarray:
    """The k most frequent ordinary token ids (never pad/unk/bos/eos) of a token array, most
    frequent first, ties by id: the alphabet of `copy_rows` (for the task corpus: digits, the
    instance letters and the prompts' words, the tokens that reading an instance looks up)."""
    counts = np.zeros(EOS_ID + 1, dtype=np.int64)
    for i in range(0, len(tokens), chunk):  # one pass, one chunk of a memmap in memory at a time
        part = np.bincount(np.asarray(tokens[i:i + chunk], dtype=np.int64))
        if len(part) > len(counts):
            counts = np.pad(counts, (0, len(part) - len(counts)))
        counts[:len(part)] += part
    counts[:EOS_ID + 1] = -1
    order = np.argsort(-counts, kind="stable")
    return order[:k][counts[order[:k]] > 0]


def copy_rows(first_row: int, n_rows: int, seq_len: int, alphabet: np.ndarray, seed: int,
              min_len: int = 8, max_len: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic induction rows for `pretrain.py --copy_warmup`: each row of seq_len + 1 tokens is
    a random string s repeated, with targets from s's second occurrence on (each token predicts
    the next). s's length varies per row, so no fixed offset predicts the next token: only
    finding where the current token occurred before does. That content lookup (an induction
    head) is what reading a task instance needs, and a small model on a short task corpus does
    not form it by itself. Repetition makes most of a row a lookup target, which forms the head
    about 2-3x sooner than one copy after a gap (measured on a 2-layer model: ~200 against ~500 steps).

    Tokens are drawn uniformly from `alphabet` (token ids), the corpus's most frequent tokens
    (`frequent_tokens`). Its size matters (mini data, 1.2M-parameter model, 16 rows a step):
    512 tokens formed the head by step ~400, the whole 2,048-token vocabulary (each embedding
    trained 4x less often) and 64 tokens (repeats inside s make a one-token match ambiguous) had
    not by step 400. Row g's tokens depend on (seed, g) alone, so a batch is reproducible from
    its first global row (resume, and DDP ranks that split one global batch)."""
    max_len = min(max_len, (seq_len + 1) // 2)
    alphabet = np.asarray(alphabet, dtype=np.int64)
    if max_len < min_len or len(alphabet) < 2:
        raise UserError(f"copy rows need seq_len >= {2 * min_len - 1} and at least 2 tokens to draw from "
                        f"(got seq_len {seq_len}, {len(alphabet)} tokens)")
    rows = np.empty((n_rows, seq_len + 1), dtype=np.int64)
    targets = np.full((n_rows, seq_len), IGNORE_INDEX, dtype=np.int64)
    for b in range(n_rows):
        rng = np.random.default_rng([seed, COPY_SALT, first_row + b])
        n = int(rng.integers(min_len, max_len + 1))
        rows[b] = np.resize(alphabet[rng.integers(0, len(alphabet), size=n)], seq_len + 1)  # s, s, s, ... cut to fit
        targets[b, n:] = rows[b, n + 1:]  # from s's second occurrence: its next token is a lookup
    return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(targets)


def _check_cursor(it, state: dict, keys: tuple[str, ...]) -> None:
    """Refuse a data cursor that would not reproduce the saved run's batches."""
    saved = state.get("packing", "random")  # cursors from before aligned packing are random windows
    if saved != it.packing:
        raise UserError(f"data cursor was saved with {saved} packing, this run uses {it.packing}: "
                        f"resume with --packing {saved}")
    current = it.state_dict()
    for key in keys:
        if key in state and int(state[key]) != current[key]:
            raise UserError(f"data cursor was saved with {key} {state[key]}, this run has {current[key]}: "
                            f"resuming would not reproduce the same batches")


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
