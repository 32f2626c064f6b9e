#!/usr/bin/env python3
"""Tokenize a text file into a packed token file (runbook A3).

    python scripts/prepare_data.py --tokenizer data/tokenizer/spm32k.model \\
      --input data/raw/train.txt --output data/packed/train.bin --append_eos 1

Streams the input in chunks of --chunk_lines lines (memory stays flat in the input size) and
encodes each chunk on all CPUs. Writes <output> (raw little-endian tokens: uint16 when the
vocabulary fits, else uint32), its document index <output minus .bin>.docs.npy (int64 start of
every document, for pretraining rows aligned to documents) and then its sidecar
<output minus .bin>.json (dtype, counts, tokenizer and source sha256, document length stats).
Blank lines are skipped. With --max_doc_tokens N (the pipeline passes pretraining seq_len + 1), a
task line ("Q: ...") longer than N tokens stops the run, naming its line, before anything is
written; longer filler lines are only counted.

Packing A2's val.txt also packs the filler-only held-out split A2 writes beside it (val_filler.txt
-> val_filler.bin beside --output), so the runbook's commands, as written, give E2 its headline
retention text. `--filler_input none` turns that off.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from tqdm import tqdm

from discover_distill.cli import UserError, require_file, run
from discover_distill.data import pack_text_file, sidecar_path
from discover_distill.tokenizer import Tokenizer


def main() -> int:
    p = argparse.ArgumentParser(description="Pack a text file (one document per line) into tokens.",
                                allow_abbrev=False)
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model from scripts/train_tokenizer.py")
    p.add_argument("--input", required=True, help="UTF-8 text file, one document per line")
    p.add_argument("--output", required=True, help="output path ending in .bin; the sidecar is <name>.json")
    p.add_argument("--append_eos", type=int, default=1, choices=[0, 1], help="1 = EOS (id 3) after every document")
    p.add_argument("--append_bos", type=int, default=0, choices=[0, 1], help="1 = BOS (id 2) before every document")
    p.add_argument("--chunk_lines", type=int, default=10_000,
                   help="lines encoded per batch (count, >= 1); bounds memory, does not change the output")
    p.add_argument("--max_doc_tokens", type=int, default=0,
                   help="tokens (EOS/BOS included); a task line longer than this is an error, longer filler lines "
                        "are counted; pass pretraining seq_len + 1; 0 = no check")
    p.add_argument("--filler_input", default="auto",
                   help="also pack this filler-only split to <--output dir>/val_filler.bin; auto = val_filler.txt "
                        "beside an --input named val.txt, when it exists; none = off")
    args = p.parse_args()
    require_file(args.tokenizer, "--tokenizer")
    require_file(args.input, "--input")
    if not args.output.endswith(".bin"):
        raise UserError(f"--output must end in .bin (its sidecar is <name>.json), got {args.output}")
    if os.path.isdir(args.output):
        raise UserError(f"--output {args.output} is a directory")
    if args.chunk_lines < 1:
        raise UserError(f"--chunk_lines must be >= 1 (got {args.chunk_lines})")
    if args.max_doc_tokens < 0:
        raise UserError(f"--max_doc_tokens must be >= 0 (got {args.max_doc_tokens})")
    if os.path.getsize(args.input) == 0:
        raise UserError(f"--input: file is empty: {args.input}")
    filler = args.filler_input
    if filler == "auto":
        beside = os.path.join(os.path.dirname(args.input), "val_filler.txt")
        filler = beside if os.path.basename(args.input) == "val.txt" and os.path.isfile(beside) else "none"
    elif filler != "none":
        require_file(filler, "--filler_input")
    tok = Tokenizer(args.tokenizer)
    pack(tok, args.input, args.output, args)
    if filler != "none":
        pack(tok, filler, os.path.join(os.path.dirname(args.output), "val_filler.bin"), args)
    return 0


def pack(tok: Tokenizer, src: str, out: str, args: argparse.Namespace) -> None:
    t0 = time.time()
    with tqdm(total=os.path.getsize(src), unit="B", unit_scale=True, desc="tokenizing",
              disable=not sys.stderr.isatty()) as bar:
        meta = pack_text_file(tok, src, out, append_eos=bool(args.append_eos),
                              append_bos=bool(args.append_bos), chunk_lines=args.chunk_lines, progress=bar.update,
                              max_doc_tokens=args.max_doc_tokens)
    dt = time.time() - t0
    lens = meta["doc_tokens"]
    over = f", {lens['over_max']} filler over {args.max_doc_tokens}" if args.max_doc_tokens else ""
    print(f"{out}: {meta['num_tokens']} tokens ({meta['dtype']}) from {meta['num_docs']} documents "
          f"(max {lens['max']}, p99 {lens['p99']} tokens{over}) in {dt:.1f}s "
          f"({meta['num_tokens'] / max(dt, 1e-9) / 1e6:.2f}M tok/s); sidecar {sidecar_path(out)}")


if __name__ == "__main__":
    run(main)
