"""SentencePiece tokenizer: training with fixed special ids, and a small encode/decode wrapper.

Special ids are fixed (pad 0, unk 1, bos 2, eos 3) so every packed file, checkpoint and sampler
agrees without looking them up. Digits are split into single pieces (numbers stay compositional
for the arithmetic tasks) and byte fallback means no input is ever unencodable.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile

import sentencepiece as spm

from .checkpoint import atomic_write_json
from .cli import UserError
from .tracker import sha256_file

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def sidecar_path(model_path: str) -> str:
    """`data/tokenizer/spm32k.model` -> `data/tokenizer/spm32k.json`."""
    return os.path.splitext(model_path)[0] + ".json"


class Tokenizer:
    def __init__(self, model_path: str):
        if not os.path.isfile(model_path):
            raise UserError(f"tokenizer model not found: {model_path}")
        self.path = model_path
        self.sp = spm.SentencePieceProcessor(model_file=model_path)
        self.vocab_size = self.sp.get_piece_size()
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise UserError(f"{model_path}: special ids are not pad=0 unk=1 bos=2 eos=3 "
                            f"(train it with scripts/train_tokenizer.py)")
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = -1) -> list[list[int]]:
        return self.sp.encode(texts, num_threads=num_threads)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([int(i) for i in ids])


_MAX_VOCAB = re.compile(r"<=\s*(\d+)")


def train_tokenizer(input_path: str, model_prefix: str, vocab_size: int, model_type: str = "bpe",
                    input_sentence_size: int = 2_000_000, seed_sentencepiece: int = 0) -> dict:
    """Train a SentencePiece model; writes <prefix>.model, <prefix>.vocab and <prefix>.json.

    Outputs are trained under a temporary prefix and renamed, so an interrupted or failed run
    leaves no half-written tokenizer. A vocabulary larger than the data supports is a UserError.
    """
    if not os.path.isfile(input_path):
        raise UserError(f"--input: file not found: {input_path}")
    if os.path.getsize(input_path) == 0:
        raise UserError(f"--input: file is empty: {input_path}")
    if vocab_size < 8:
        raise UserError(f"--vocab_size must be >= 8 (got {vocab_size})")
    out_dir = os.path.dirname(os.path.abspath(model_prefix))
    os.makedirs(out_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".spm-", dir=out_dir)
    tmp_prefix = os.path.join(tmp_dir, "spm")
    try:
        spm.SentencePieceTrainer.train(
            input=input_path, model_prefix=tmp_prefix, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, split_digits=True, byte_fallback=True, hard_vocab_limit=True,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            input_sentence_size=input_sentence_size, shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1, minloglevel=2, max_sentence_length=16384,
            seed_sentencepiece_size=1_000_000, train_extremely_large_corpus=False)
    except RuntimeError as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else "sentencepiece failed"
        m = _MAX_VOCAB.search(msg)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if "Vocabulary size" in msg or m:
            limit = f"; the data supports at most {m.group(1)}" if m else ""
            raise UserError(f"--vocab_size {vocab_size} is too large for {input_path}{limit}") from None
        raise UserError(f"sentencepiece training failed on {input_path}: {msg}") from None
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    for ext in (".model", ".vocab"):
        os.replace(tmp_prefix + ext, model_prefix + ext)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tok = Tokenizer(model_prefix + ".model")
    with open(input_path, "rb") as f:
        n_lines = sum(1 for _ in f)
    meta = {"model": model_prefix + ".model", "model_sha256": tok.sha256, "vocab_size": tok.vocab_size,
            "vocab_size_requested": vocab_size, "model_type": model_type,
            "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
            "split_digits": True, "byte_fallback": True,
            "input": input_path, "input_sha256": sha256_file(input_path), "input_lines": n_lines}
    atomic_write_json(sidecar_path(model_prefix + ".model"), meta)
    return meta
