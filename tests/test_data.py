"""Packed token files (writer and reader) and the deterministic batch iterators."""
import hashlib
import json
import os

import numpy as np
import pytest
import torch

from discover_distill.cli import UserError
from discover_distill.data import (BatchIterator, PackedTokens, dtype_for_vocab, eval_batches, eval_token_range,
                                  pack_text_file,
                                   sidecar_path)
from discover_distill.tokenizer import BOS_ID, EOS_ID, Tokenizer


@pytest.fixture(scope="module")
def tok(tiny_data):
    return Tokenizer(tiny_data["tokenizer"])


@pytest.fixture(scope="module")
def val_txt(tiny_data):
    return os.path.join(os.path.dirname(tiny_data["val_bin"]), "val.txt")


def read_lines(path):
    return open(path, encoding="utf-8").read().splitlines()


# --- writing ------------------------------------------------------------------------------------


def test_packed_file_is_each_line_then_eos(tiny_data, tok, val_txt):
    data = PackedTokens(tiny_data["val_bin"], expected_tokenizer_sha256=tok.sha256)
    lines = read_lines(val_txt)
    want = [t for line in lines for t in tok.encode(line) + [EOS_ID]]
    assert data.tokens.dtype == np.dtype("<u2") and data.tokens.tolist() == want
    assert np.fromfile(tiny_data["val_bin"], dtype="<u2").tolist() == want  # plain np.fromfile reads it
    meta = json.load(open(sidecar_path(tiny_data["val_bin"])))
    assert meta["num_tokens"] == len(want) and meta["num_docs"] == len(lines) == 400
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 320 and meta["append_eos"] == 1
    assert meta["tokenizer_sha256"] == tok.sha256
    assert meta["source_sha256"] == hashlib.sha256(open(val_txt, "rb").read()).hexdigest()


def test_chunk_size_does_not_change_output(tiny_data, tok, val_txt, tmp_path):
    reference = open(tiny_data["val_bin"], "rb").read()
    for chunk in (1, 7, 100_000):
        out = str(tmp_path / f"v{chunk}.bin")
        pack_text_file(tok, val_txt, out, chunk_lines=chunk)
        assert open(out, "rb").read() == reference


def test_bos_blank_lines_and_crlf(tok, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"sort 3 1 2\r\n\n   \nthe alpha\n")
    meta = pack_text_file(tok, str(src), str(tmp_path / "o.bin"), append_eos=True, append_bos=True)
    want = [BOS_ID] + tok.encode("sort 3 1 2") + [EOS_ID, BOS_ID] + tok.encode("the alpha") + [EOS_ID]
    assert PackedTokens(str(tmp_path / "o.bin")).tokens.tolist() == want
    assert (meta["num_docs"], meta["blank_lines_skipped"], meta["append_bos"]) == (2, 2, 1)
    pack_text_file(tok, str(src), str(tmp_path / "n.bin"), append_eos=False)
    assert EOS_ID not in PackedTokens(str(tmp_path / "n.bin")).tokens.tolist()


def test_dtype_follows_vocab_size():
    assert dtype_for_vocab(65535) == np.dtype("<u2") and dtype_for_vocab(65536) == np.dtype("<u4")


def test_failed_pack_leaves_the_previous_output_intact(tok, tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("the alpha\n")
    bad.write_bytes(b"the alpha\n" * 5 + b"caf\xe9\n")
    out = str(tmp_path / "o.bin")
    pack_text_file(tok, str(good), out)
    before = (open(out, "rb").read(), open(sidecar_path(out)).read())
    with pytest.raises(UserError, match=r"bad\.txt:6: not valid UTF-8"):
        pack_text_file(tok, str(bad), out, chunk_lines=2)
    assert (open(out, "rb").read(), open(sidecar_path(out)).read()) == before
    assert sorted(os.listdir(tmp_path)) == ["bad.txt", "good.txt", "o.bin", "o.json"]  # no temp files left
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(UserError, match="no non-blank lines"):
        pack_text_file(tok, str(tmp_path / "blank.txt"), out)
    with pytest.raises(UserError, match=r"must end in \.bin"):
        pack_text_file(tok, str(good), str(tmp_path / "o.json"))


# --- reading ------------------------------------------------------------------------------------


def test_tokenizer_mismatch_names_both_files(tiny_data):
    with pytest.raises(UserError) as e:
        PackedTokens(tiny_data["val_bin"], expected_tokenizer_sha256="ab" * 32, expected_tokenizer="other.model")
    msg = str(e.value)
    assert tiny_data["val_bin"] in msg and tiny_data["tokenizer"] in msg and "other.model" in msg
    assert "differs from the one expected" in msg and "abababababab" in msg


def test_truncated_or_unfinished_bins_are_refused(tiny_data, tmp_path):
    bad = str(tmp_path / "t.bin")
    open(bad, "wb").write(open(tiny_data["val_bin"], "rb").read()[:-2])
    with pytest.raises(UserError, match="sidecar .* is missing"):
        PackedTokens(bad)
    open(sidecar_path(bad), "w").write(open(sidecar_path(tiny_data["val_bin"])).read())
    with pytest.raises(UserError, match="truncated"):
        PackedTokens(bad)
    open(sidecar_path(bad), "w").write("{not json")
    with pytest.raises(UserError, match="unreadable sidecar"):
        PackedTokens(bad)
    with pytest.raises(UserError, match="not found"):
        PackedTokens(str(tmp_path / "none.bin"))


# --- batches ------------------------------------------------------------------------------------


def test_batches_are_contiguous_windows_covering_the_whole_file():
    tokens = np.arange(40, dtype=np.uint16)  # a token's value is its position
    it = BatchIterator(tokens, seq_len=8, batch_size=64, seed=0)
    starts = set()
    for _ in range(10):
        x, y = it.next_batch()
        assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (64, 8)
        assert torch.equal(x - x[:, :1], torch.arange(8).expand(64, 8)) and torch.equal(y, x + 1)
        starts.update(x[:, 0].tolist())
    assert starts == set(range(40 - 8))  # every window, the one ending at the last token included


def test_batch_iterator_is_deterministic_and_resumes_exactly(tiny_data):
    data = PackedTokens(tiny_data["train_bin"])
    straight = BatchIterator(data, 16, 4, seed=1)
    batches = [straight.next_batch() for _ in range(6)]
    first = BatchIterator(data, 16, 4, seed=1)
    for x, y in batches[:3]:
        fx, fy = first.next_batch()
        assert torch.equal(fx, x) and torch.equal(fy, y)
    state = first.state_dict()
    assert all(type(v) is int for v in state.values())
    path = tiny_data["train_bin"] + ".state.pt"
    torch.save({"data": state}, path)
    restored = torch.load(path, weights_only=True)["data"]
    os.unlink(path)
    resumed = BatchIterator(data, 16, 4, seed=1)
    resumed.load_state_dict(restored)
    for x, y in batches[3:]:
        rx, ry = resumed.next_batch()
        assert torch.equal(rx, x) and torch.equal(ry, y)
    assert not torch.equal(BatchIterator(data, 16, 4, seed=2).next_batch()[0], batches[0][0])


def test_resume_refuses_a_different_batch_sequence(tiny_data):
    data = PackedTokens(tiny_data["train_bin"])
    state = BatchIterator(data, 16, 4, seed=1).state_dict()
    for other in (BatchIterator(data, 16, 4, seed=2), BatchIterator(data, 32, 4, seed=1),
                  BatchIterator(data, 16, 8, seed=1)):
        with pytest.raises(UserError, match="would not reproduce"):
            other.load_state_dict(state)


def test_ranks_partition_the_global_batch(tiny_data):
    data = PackedTokens(tiny_data["train_bin"])
    single = BatchIterator(data, 16, 6, seed=0)
    ranks = [BatchIterator(data, 16, 2, seed=0, rank=r, world_size=3) for r in range(3)]
    for _ in range(4):
        x, y = single.next_batch()
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    # A run saved on 3 ranks resumes exactly on 1 rank with the same global batch.
    resumed = BatchIterator(data, 16, 6, seed=0)
    resumed.load_state_dict(ranks[0].state_dict())
    assert torch.equal(resumed.next_batch()[0], single.next_batch()[0])
    with pytest.raises(UserError, match="rank 3"):
        BatchIterator(data, 16, 2, seed=0, rank=3, world_size=3)


def test_eval_batches_are_sequential_fixed_and_disjoint():
    tokens = np.arange(100, dtype=np.uint16)
    batches = list(eval_batches(tokens, seq_len=8, batch_size=3, max_batches=10))
    assert len(batches) == 4  # 12 windows of 8 (+1 target) fit in 100 tokens
    x = torch.cat([b[0] for b in batches])
    assert torch.equal(x.flatten(), torch.arange(96)) and torch.equal(torch.cat([b[1] for b in batches]), x + 1)
    again = list(eval_batches(tokens, 8, 3, 2))
    assert len(again) == 2 and all(torch.equal(a[0], b[0]) for a, b in zip(again, batches))
    short = list(eval_batches(np.arange(20, dtype=np.uint16), 8, 4, 5))  # 2 windows < one batch of 4
    assert len(short) == 1 and short[0][0].shape == (2, 8)
    assert list(eval_batches(np.arange(8, dtype=np.uint16), 8, 4, 5)) == []


def test_gate_batches_from_the_end_never_meet_retentions_for_the_runbook_shapes():
    """The SDFT gate (20 batches of 4 x 256, from the end) and E2 (50 of 4 x 256, from the start)
    read disjoint token ranges whenever val.bin holds both; the windows stay inside the ranges."""
    from discover_distill.evaluate import RETENTION_RUNBOOK_TOKENS
    need = 20 * 4 * 256 + 1 + 50 * 4 * 256 + 1
    assert RETENTION_RUNBOOK_TOKENS == 50 * 4 * 256 + 1
    for n in (need, need + 1, 400_000):
        gate = eval_token_range(n, 256, 4, 20, from_end=True)
        e2 = eval_token_range(n, 256, 4, 50)
        assert gate[1] == n and e2 == (0, RETENTION_RUNBOOK_TOKENS) and e2[1] <= gate[0]
        tokens = np.arange(n, dtype=np.uint32)  # token value = its position
        xs = [b for b in eval_batches(tokens, 256, 4, 20, from_end=True)]
        assert len(xs) == 20 and int(xs[0][0].min()) == gate[0] and int(xs[-1][1].max()) == n - 1
    gate = eval_token_range(need - 1, 256, 4, 20, from_end=True)
    assert gate[0] < eval_token_range(need - 1, 256, 4, 50)[1]  # one token short: they would meet
    tail = list(eval_batches(np.arange(100, dtype=np.uint16), 8, 3, 2, from_end=True))
    assert [b[0][0, 0].item() for b in tail] == [51, 75] and tail[-1][1][-1, -1].item() == 99
