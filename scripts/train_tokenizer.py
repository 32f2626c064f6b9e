#!/usr/bin/env python3
"""Train the SentencePiece tokenizer (runbook A3).

    python scripts/train_tokenizer.py --input data/raw/train.txt --model_prefix data/tokenizer/spm32k \\
      --vocab_size 32000 --model_type bpe

Writes <prefix>.model, <prefix>.vocab and <prefix>.json (sha256 of the model, vocabulary
obtained, special ids, input sha256). Digits are split; byte fallback is on.
"""
from __future__ import annotations

import argparse
import time

from discover_distill.cli import run
from discover_distill.tokenizer import train_tokenizer


def main() -> int:
    p = argparse.ArgumentParser(description="Train a SentencePiece tokenizer.")
    p.add_argument("--input", required=True, help="training text, one document per line")
    p.add_argument("--model_prefix", required=True, help="output prefix: <prefix>.model/.vocab/.json")
    p.add_argument("--vocab_size", type=int, required=True, help="number of pieces, specials included")
    p.add_argument("--model_type", default="bpe", choices=["bpe", "unigram", "char", "word"],
                   help="SentencePiece model type")
    p.add_argument("--input_sentence_size", type=int, default=2_000_000,
                   help="max lines sampled for training (0 = all)")
    args = p.parse_args()
    t0 = time.time()
    meta = train_tokenizer(args.input, args.model_prefix, args.vocab_size, args.model_type, args.input_sentence_size)
    print(f"tokenizer {meta['model']}: vocab {meta['vocab_size']} ({args.model_type}, requested "
          f"{args.vocab_size}) from {meta['input_lines']} lines in {time.time() - t0:.1f}s; "
          f"sha256 {meta['model_sha256'][:16]}")
    return 0


if __name__ == "__main__":
    run(main)
