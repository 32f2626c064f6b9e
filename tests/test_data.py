import json
import os

import numpy as np
import pytest
import torch

from conftest import run_script
from discover_distill.cli import UserError
from discover_distill.data import BatchIterator, PackedTokens, eval_batches, sidecar_path
from discover_distill.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer


def test_tokenizer_specials_digits_roundtrip(tiny_data):
    tok = Tokenizer(tiny_data["tokenizer"])
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tok.vocab_size == 320
    text = "Q: sort 12 345 A: 12 345"
    assert tok.decode(tok.encode(text)) == text
    pieces = [tok.sp.id_to_piece(i) for i in tok.encode("12345")]
    assert [p.strip("▁") for p in pieces if p.strip("▁")] == list("12345")
    assert tok.decode(tok.encode("ünïcödé ✓")) == "ünïcödé ✓"  # byte fallback
    meta = json.load(open(os.path.splitext(tiny_data["tokenizer"])[0] + ".json"))
    assert meta["model_sha256"] == tok.sha256 and meta["vocab_size"] == 320


def test_packed_file_starts_with_first_line_then_eos(tiny_data):
    tok = Tokenizer(tiny_data["tokenizer"])
    data = PackedTokens(tiny_data["train_bin"], expected_tokenizer_sha256=tok.sha256)
    first_line = open(os.path.join(os.path.dirname(tiny_data["train_bin"]), "train.txt")).readline().rstrip("\n")
    want = tok.encode(first_line) + [EOS_ID]
    assert data.tokens[:len(want)].tolist() == want
    assert data.tokens.dtype == np.uint16 and data.meta["num_docs"] == 3000
    assert int((np.asarray(data.tokens) == EOS_ID).sum()) == 3000


def test_chunk_size_does_not_change_output(tiny_data, tmp_path):
    src = os.path.join(os.path.dirname(tiny_data["train_bin"]), "val.txt")
    for chunk in ("7", "100000"):
        run_script("scripts/prepare_data.py", "--tokenizer", tiny_data["tokenizer"], "--input", src,
                   "--output", str(tmp_path / f"v{chunk}.bin"), "--chunk_lines", chunk)
    assert (tmp_path / "v7.bin").read_bytes() == (tmp_path / "v100000.bin").read_bytes()
    assert (tmp_path / "v7.bin").read_bytes() == open(tiny_data["val_bin"], "rb").read()


def test_tokenizer_mismatch_and_truncation_are_refused(tiny_data, tmp_path):
    with pytest.raises(UserError, match="differs from the one expected"):
        PackedTokens(tiny_data["train_bin"], expected_tokenizer_sha256="0" * 64)
    bad = tmp_path / "t.bin"
    bad.write_bytes(open(tiny_data["val_bin"], "rb").read()[:-2])
    open(sidecar_path(str(bad)), "w").write(open(sidecar_path(tiny_data["val_bin"])).read())
    with pytest.raises(UserError, match="truncated"):
        PackedTokens(str(bad))
    os.unlink(sidecar_path(str(bad)))
    with pytest.raises(UserError, match="sidecar"):
        PackedTokens(str(bad))


def test_batch_iterator_is_deterministic_and_resumes_exactly(tiny_data):
    data = PackedTokens(tiny_data["train_bin"])
    a = BatchIterator(data, 16, 4, seed=1)
    batches = [a.next_batch() for _ in range(5)]
    b = BatchIterator(data, 16, 4, seed=1)
    b.next_batch(); b.next_batch()
    state = b.state_dict()
    assert all(isinstance(v, int) for v in state.values())
    c = BatchIterator(data, 16, 4, seed=1)
    c.load_state_dict(state)
    for x, y in batches[2:]:
        cx, cy = c.next_batch()
        assert torch.equal(cx, x) and torch.equal(cy, y)
    x, y = batches[0]
    assert torch.equal(x[:, 1:], y[:, :-1]) and x.dtype == torch.int64
    assert not torch.equal(BatchIterator(data, 16, 4, seed=2).next_batch()[0], x)


def test_ranks_partition_the_global_batch(tiny_data):
    data = PackedTokens(tiny_data["train_bin"])
    single = BatchIterator(data, 16, 6, seed=0)
    ranks = [BatchIterator(data, 16, 2, seed=0, rank=r, world_size=3) for r in range(3)]
    for _ in range(3):
        x, _ = single.next_batch()
        parts = torch.cat([r.next_batch()[0] for r in ranks])
        assert torch.equal(parts, x)


def test_eval_batches_are_fixed_and_disjoint(tiny_data):
    data = PackedTokens(tiny_data["val_bin"])
    a = list(eval_batches(data, 16, 2, 3))
    b = list(eval_batches(data, 16, 2, 3))
    assert len(a) == 3 and all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    assert torch.equal(a[0][0][1, 0:1], torch.tensor([int(data.tokens[16])]))
