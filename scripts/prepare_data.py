#!/usr/bin/env python3
"""Tokenize a text file into a packed token file (runbook A3).

    python scripts/prepare_data.py --tokenizer data/tokenizer/spm32k.model \\
      --input data/raw/train.txt --output data/packed/train.bin --append_eos 1

Streams the input in chunks (memory stays flat in the input size). Writes <output> (uint16
tokens when the vocabulary fits, else uint32) and its sidecar <output minus .bin>.json.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

from discover_distill.checkpoint import atomic_write_json
from discover_distill.cli import UserError, require_file, run
from discover_distill.data import dtype_for_vocab, sidecar_path
from discover_distill.tokenizer import Tokenizer


def read_chunks(path: str, chunk_lines: int, hasher, progress):
    """Lists of lines (newline stripped), chunk_lines at a time; feeds the bytes to hasher."""
    chunk = []
    with open(path, "rb") as f:
        for raw in f:
            hasher.update(raw)
            progress.update(len(raw))
            chunk.append(raw.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r"))
            if len(chunk) >= chunk_lines:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def main() -> int:
    p = argparse.ArgumentParser(description="Pack a text file into tokens.")
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model file")
    p.add_argument("--input", required=True, help="text file, one document per line")
    p.add_argument("--output", required=True, help="output .bin; the sidecar goes to <output minus .bin>.json")
    p.add_argument("--append_eos", type=int, default=1, choices=[0, 1], help="1 = EOS after every line")
    p.add_argument("--append_bos", type=int, default=0, choices=[0, 1], help="1 = BOS before every line")
    p.add_argument("--chunk_lines", type=int, default=8192, help="lines encoded per batch (memory bound)")
    args = p.parse_args()
    require_file(args.tokenizer, "--tokenizer")
    require_file(args.input, "--input")
    if args.chunk_lines < 1:
        raise UserError("--chunk_lines must be >= 1")
    if os.path.getsize(args.input) == 0:
        raise UserError(f"--input: file is empty: {args.input}")
    tok = Tokenizer(args.tokenizer)
    dtype = dtype_for_vocab(tok.vocab_size).newbyteorder("<")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    hasher = hashlib.sha256()
    n_tokens = n_docs = 0
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(args.output) + ".", dir=out_dir)
    progress = tqdm(total=os.path.getsize(args.input), unit="B", unit_scale=True, desc="tokenizing",
                    disable=not sys.stderr.isatty())
    try:
        with os.fdopen(fd, "wb") as f:
            for lines in read_chunks(args.input, args.chunk_lines, hasher, progress):
                ids = tok.encode_batch(lines)
                flat = []
                for row in ids:
                    if args.append_bos:
                        flat.append(tok.bos_id)
                    flat.extend(row)
                    if args.append_eos:
                        flat.append(tok.eos_id)
                np.asarray(flat, dtype=dtype).tofile(f)
                n_tokens += len(flat)
                n_docs += len(lines)
            f.flush()
            os.fsync(f.fileno())
        if n_tokens == 0:
            raise UserError(f"--input: {args.input} produced no tokens")
        if os.path.exists(sidecar_path(args.output)):
            os.unlink(sidecar_path(args.output))  # a stale sidecar must not vouch for the new bin
        os.replace(tmp, args.output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        progress.close()
    atomic_write_json(sidecar_path(args.output), {
        "dtype": dtype.name, "num_tokens": n_tokens, "num_docs": n_docs, "vocab_size": tok.vocab_size,
        "tokenizer": args.tokenizer, "tokenizer_sha256": tok.sha256, "source": args.input,
        "source_sha256": hasher.hexdigest(), "append_eos": args.append_eos, "append_bos": args.append_bos})
    dt = time.time() - t0
    print(f"{args.output}: {n_tokens} tokens ({dtype.name}) from {n_docs} lines in {dt:.1f}s "
          f"({n_tokens / max(dt, 1e-9) / 1e6:.2f}M tok/s)")
    return 0


if __name__ == "__main__":
    run(main)
