"""Tokenizer training and the encode/decode wrapper, in-process on a few thousand generated lines."""
import hashlib
import json
import random

import pytest
import sentencepiece as spm

from discover_distill.cli import UserError
from discover_distill.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, sidecar_path, train_tokenizer

VOCAB = 400


def corpus_lines(n: int, seed: int) -> list[str]:
    """Task-like lines (numbers) and filler sentences from a small pseudo-word lexicon."""
    rng = random.Random(seed)
    lexicon = ["".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(1, 3)))
               for _ in range(300)]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            nums = [str(rng.randrange(1000)) for _ in range(rng.randint(3, 7))]
            out.append(f"Q: sort {' '.join(nums)} A: {' '.join(sorted(nums, key=int))}")
        else:
            out.append(" ".join(rng.choice(lexicon) for _ in range(rng.randint(4, 14))) + ".")
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    text = d / "train.txt"
    text.write_text("\n".join(corpus_lines(3000, 0)) + "\n")
    meta = train_tokenizer(str(text), str(d / "out" / "spm"), VOCAB, "bpe")
    return {"dir": d, "input": str(text), "meta": meta, "tok": Tokenizer(str(d / "out" / "spm.model"))}


def test_special_ids_are_fixed_and_vocab_is_exact(trained):
    tok = trained["tok"]
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert [tok.piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.vocab_size == VOCAB == trained["meta"]["vocab_size"]


def test_roundtrip_byte_fallback_and_batch_encode(trained):
    tok = trained["tok"]
    texts = ["Q: sort 12 345 7 A: 7 12 345", "bada kelo zupi.", "ünïcödé ✓ and a tab-free line", "x"]
    for text in texts:
        ids = tok.encode(text)
        assert UNK_ID not in ids and tok.decode(ids) == text
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
    assert tok.encode_batch(texts, add_bos=True, add_eos=True) == [[BOS_ID] + tok.encode(t) + [EOS_ID] for t in texts]
    assert tok.decode(tok.encode(texts[0]) + [EOS_ID]) == texts[0]  # specials decode to nothing


def test_digits_are_single_pieces(trained):
    tok = trained["tok"]
    for text in ("12345", "sort 2026 990"):
        digit_pieces = [p.lstrip("▁") for p in map(tok.piece, tok.encode(text)) if any(c.isdigit() for c in p)]
        assert all(len(p) == 1 for p in digit_pieces), digit_pieces
        assert "".join(digit_pieces) == "".join(c for c in text if c.isdigit())


def test_sidecar_records_model_input_and_arguments(trained):
    meta = json.loads(open(sidecar_path(trained["tok"].path)).read())
    assert meta == trained["meta"]
    assert meta["model_sha256"] == hashlib.sha256(open(trained["tok"].path, "rb").read()).hexdigest()
    assert meta["model_sha256"] == trained["tok"].sha256
    assert meta["input_sha256"] == hashlib.sha256(open(trained["input"], "rb").read()).hexdigest()
    assert meta["input_lines"] == 3000 and meta["model_type"] == "bpe"
    assert meta["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    args = meta["training_args"]
    assert args["split_digits"] and args["byte_fallback"] and args["hard_vocab_limit"]
    assert args["character_coverage"] == 1.0 and args["vocab_size"] == VOCAB
    vocab_lines = (trained["dir"] / "out" / "spm.vocab").read_text().splitlines()
    assert len(vocab_lines) == VOCAB and vocab_lines[3].split("\t")[0] == "</s>"
    assert sorted(p.name for p in (trained["dir"] / "out").iterdir()) == ["spm.json", "spm.model", "spm.vocab"]


def test_same_input_and_arguments_give_the_same_model_at_any_path(trained, tmp_path):
    meta = train_tokenizer(trained["input"], str(tmp_path / "elsewhere"), VOCAB, "bpe")
    assert meta["model_sha256"] == trained["meta"]["model_sha256"]


def test_too_large_vocab_names_the_maximum_and_that_maximum_trains(tmp_path):
    text = tmp_path / "small.txt"
    text.write_text("\n".join(corpus_lines(200, 1)) + "\n")
    with pytest.raises(UserError) as e:
        train_tokenizer(str(text), str(tmp_path / "t"), 32000, "bpe")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--vocab_size 32000 is too large") and "at most" in msg
    assert list(tmp_path.iterdir()) == [text]  # nothing half-written
    limit = int(msg.rsplit("at most ", 1)[1])
    assert 300 < limit < 32000
    assert train_tokenizer(str(text), str(tmp_path / "t"), limit, "bpe")["vocab_size"] == limit


def test_too_small_vocab_is_one_line(tmp_path):
    text = tmp_path / "small.txt"
    text.write_text("\n".join(corpus_lines(50, 2)) + "\n")
    with pytest.raises(UserError, match=r"^--vocab_size 100 is too small: .* need 260, plus one per distinct"):
        train_tokenizer(str(text), str(tmp_path / "t"), 100, "bpe")
    # Above the fixed pieces but short of the input's characters: sentencepiece's count, parsed.
    with pytest.raises(UserError, match=r"^--vocab_size 270 is too small for .* at least (2[89]\d|3\d\d)$"):
        train_tokenizer(str(text), str(tmp_path / "t"), 270, "bpe")


def test_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="--input: file not found"):
        train_tokenizer(str(tmp_path / "missing.txt"), str(tmp_path / "t"), VOCAB)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="--input: file is empty"):
        train_tokenizer(str(tmp_path / "empty.txt"), str(tmp_path / "t"), VOCAB)
    (tmp_path / "a.txt").write_text("a b c\n")
    with pytest.raises(UserError, match="--model_type"):
        train_tokenizer(str(tmp_path / "a.txt"), str(tmp_path / "t"), VOCAB, "word")
    with pytest.raises(UserError, match="tokenizer model not found"):
        Tokenizer(str(tmp_path / "nope.model"))
    with pytest.raises(UserError, match="not a SentencePiece model"):
        Tokenizer(str(tmp_path / "a.txt"))


def test_model_with_default_special_ids_is_refused(trained, tmp_path):
    # sentencepiece's defaults (unk 0, bos 1, eos 2, no pad) would silently shift every id.
    spm.SentencePieceTrainer.train(input=trained["input"], model_prefix=str(tmp_path / "default"),
                                   vocab_size=300, minloglevel=2)
    with pytest.raises(UserError, match="special ids"):
        Tokenizer(str(tmp_path / "default.model"))
