#!/usr/bin/env python3
"""Train the SentencePiece tokenizer (runbook A3).

    python scripts/train_tokenizer.py --input data/raw/train.txt --model_prefix data/tokenizer/spm32k \\
      --vocab_size 32000 --model_type bpe

Writes <prefix>.model, <prefix>.vocab and the sidecar <prefix>.json (model sha256, vocabulary
obtained, special ids pad=0 unk=1 bos=2 eos=3, input sha256 and line count, training arguments).
Digits are split into single pieces; byte fallback is on; the vocabulary size is exact.
"""
from __future__ import annotations

import argparse
import time

from discover_distill.cli import require_file, run
from discover_distill.tokenizer import MODEL_TYPES, train_tokenizer


def main() -> int:
    p = argparse.ArgumentParser(description="Train a SentencePiece tokenizer with fixed special ids.",
                                allow_abbrev=False)
    p.add_argument("--input", required=True, help="training text, one document per line (UTF-8)")
    p.add_argument("--model_prefix", required=True,
                   help="output path prefix: writes <prefix>.model, <prefix>.vocab, <prefix>.json")
    p.add_argument("--vocab_size", type=int, required=True,
                   help="exact number of pieces, specials and the 256 byte pieces included (>= ~300)")
    p.add_argument("--model_type", default="bpe", choices=MODEL_TYPES, help="SentencePiece algorithm")
    p.add_argument("--input_sentence_size", type=int, default=2_000_000,
                   help="lines sampled from --input for training (count; 0 = all lines)")
    args = p.parse_args()
    require_file(args.input, "--input")
    t0 = time.time()
    meta = train_tokenizer(args.input, args.model_prefix, args.vocab_size, args.model_type,
                           args.input_sentence_size)
    print(f"tokenizer {meta['model']}: {meta['vocab_size']} pieces ({args.model_type}) from "
          f"{meta['input_lines']} lines in {time.time() - t0:.1f}s; sha256 {meta['model_sha256'][:16]}")
    return 0


if __name__ == "__main__":
    run(main)
