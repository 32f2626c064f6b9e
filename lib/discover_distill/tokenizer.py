"""SentencePiece tokenizer: training with fixed special ids, and a small encode/decode wrapper.

Special ids are fixed (pad 0, unk 1, bos 2, eos 3) so every packed file, checkpoint and sampler
agrees without looking them up. Digits are split into single pieces (numbers stay compositional
for the arithmetic tasks) and byte fallback means no input is ever unencodable.

Training writes `<prefix>.model`, `<prefix>.vocab` and the sidecar `<prefix>.json` (model sha256,
vocabulary obtained, special ids, input sha256 and line count, the exact training arguments).
The model is trained in memory and written atomically, so its bytes depend only on the input and
the arguments: the same command gives the same sha256 whatever the output path.
"""
from __future__ import annotations

import hashlib
import io
import os
import re

import sentencepiece as spm

from .cli import UserError
from .fileio import atomic_write, atomic_write_json, atomic_write_text
from .tracker import sha256_file

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("bpe", "unigram")
MIN_VOCAB = 4 + 256  # specials + byte-fallback pieces, before any character of the input


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def sidecar_path(model_path: str) -> str:
    """`data/tokenizer/spm32k.model` -> `data/tokenizer/spm32k.json`."""
    return os.path.splitext(model_path)[0] + ".json"


class Tokenizer:
    """A trained SentencePiece model with the fixed special ids."""

    def __init__(self, model_path: str):
        if not os.path.isfile(model_path):
            raise UserError(f"tokenizer model not found: {model_path}")
        self.path = model_path
        try:
            self.sp = spm.SentencePieceProcessor(model_file=model_path)
        except (RuntimeError, OSError) as e:
            raise UserError(f"{model_path}: not a SentencePiece model ({str(e).strip()[:200]})") from None
        self.vocab_size: int = self.sp.get_piece_size()
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID
        got = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if got != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise UserError(f"{model_path}: special ids are pad/unk/bos/eos = {got}, not (0, 1, 2, 3) "
                            f"(train it with scripts/train_tokenizer.py)")
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str], add_bos: bool = False, add_eos: bool = False,
                     num_threads: int | None = None) -> list[list[int]]:
        """Encode many lines at once on sentencepiece's C++ thread pool (default: all usable CPUs)."""
        return self.sp.encode(texts, add_bos=add_bos, add_eos=add_eos,
                              num_threads=num_threads or available_cpus())

    def decode(self, ids) -> str:
        """Text of `ids`; ids with no piece (a model vocabulary larger than the tokenizer's) are
        dropped rather than raising, so decoding model output never tracebacks."""
        return self.sp.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size])

    def piece(self, token_id: int) -> str:
        return self.sp.id_to_piece(int(token_id))


# sentencepiece's own wording (trainer_interface.cc); parsed so the user gets one actionable line.
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def _training_error(msg: str, input_path: str, vocab_size: int) -> UserError:
    if m := _TOO_HIGH.search(msg):
        return UserError(f"--vocab_size {vocab_size} is too large for {input_path}: sentencepiece says the data "
                         f"supports at most {m.group(2)}")
    if m := _TOO_SMALL.search(msg):
        return UserError(f"--vocab_size {vocab_size} is too small for {input_path}: the special and byte-fallback "
                         f"pieces plus the input's characters need at least {m.group(2)}")
    last = msg.strip().splitlines()[-1] if msg.strip() else "no message"
    return UserError(f"sentencepiece training on {input_path} failed: {last}")


def _hash_and_count_lines(path: str, chunk: int = 1 << 20) -> tuple[str, int]:
    """sha256 and line count in one pass (a last line without a newline counts)."""
    h, n, last = hashlib.sha256(), 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            n += block.count(b"\n")
            last = block[-1:]
    return h.hexdigest(), n + (last != b"\n")


def train_tokenizer(input_path: str, model_prefix: str, vocab_size: int, model_type: str = "bpe",
                    input_sentence_size: int = 2_000_000, max_sentence_length: int = 16384) -> dict:
    """Train a SentencePiece model; writes <prefix>.model, <prefix>.vocab and <prefix>.json.

    `vocab_size` is exact (hard limit, specials included); a size the data cannot support is a
    UserError naming the maximum sentencepiece reports. Returns the sidecar dict.
    """
    if not os.path.isfile(input_path):
        raise UserError(f"--input: file not found: {input_path}")
    if os.path.getsize(input_path) == 0:
        raise UserError(f"--input: file is empty: {input_path}")
    if vocab_size < MIN_VOCAB:
        raise UserError(f"--vocab_size {vocab_size} is too small: the 4 special and 256 byte-fallback pieces alone "
                        f"need {MIN_VOCAB}, plus one per distinct input character")
    if model_type not in MODEL_TYPES:
        raise UserError(f"--model_type must be one of {', '.join(MODEL_TYPES)} (got {model_type!r})")
    if input_sentence_size < 0:
        raise UserError(f"--input_sentence_size must be >= 0 (got {input_sentence_size})")
    args = dict(
        model_type=model_type, vocab_size=vocab_size, hard_vocab_limit=True,
        character_coverage=1.0, split_digits=True, byte_fallback=True,
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
        # A random sample of at most this many lines trains the model; more adds time, not quality.
        input_sentence_size=input_sentence_size, shuffle_input_sentence=True,
        max_sentence_length=max_sentence_length)
    spm.set_random_generator_seed(0)  # the line sample is then the same on every run
    model = io.BytesIO()
    try:
        # minloglevel 2 silences sentencepiece's INFO/WARNING flood; failures still raise.
        spm.SentencePieceTrainer.train(input=input_path, model_writer=model, num_threads=available_cpus(),
                                       minloglevel=2, **args)
    except RuntimeError as e:
        raise _training_error(str(e), input_path, vocab_size) from None
    model_path = model_prefix + ".model"
    meta_path = sidecar_path(model_path)
    if os.path.exists(meta_path):
        os.unlink(meta_path)  # a stale sidecar must never vouch for the new model
    atomic_write(model_path, lambda f: f.write(model.getvalue()))
    tok = Tokenizer(model_path)
    atomic_write_text(model_prefix + ".vocab", "".join(
        f"{tok.piece(i)}\t{tok.sp.get_score(i):g}\n" for i in range(tok.vocab_size)))
    input_sha256, input_lines = _hash_and_count_lines(input_path)
    meta = {"model": model_path, "model_sha256": tok.sha256, "vocab_size": tok.vocab_size,
            "vocab_size_requested": vocab_size, "model_type": model_type,
            "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
            "input": input_path, "input_sha256": input_sha256, "input_lines": input_lines,
            "training_args": args, "sentencepiece_version": spm.__version__}
    atomic_write_json(meta_path, meta)  # last: a model without a sidecar is an unfinished run
    return meta
