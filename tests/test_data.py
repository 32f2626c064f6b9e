"""Packed token files (writer and reader) and the deterministic batch iterators."""
import hashlib
import io
import json
import os
import time

import numpy as np
import pytest
import torch

from discover_distill.cli import UserError
from discover_distill.data import (IGNORE_INDEX, AlignedBatchIterator, BatchIterator, PackedTokens, best_fit_rows,
                                   copy_rows, doc_index_path, frequent_tokens, dtype_for_vocab, eval_batches, eval_token_range, pack_text_file,
                                   sidecar_path)
from discover_distill.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer


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
    lens = [len(tok.encode(line)) + 1 for line in lines]
    assert data.doc_starts.dtype == np.int64 and data.doc_starts.tolist() == np.cumsum([0] + lens[:-1]).tolist()
    assert meta["doc_index"]["file"] == "val.docs.npy" and meta["doc_index"]["num_docs"] == 400
    assert meta["doc_tokens"]["max"] == max(lens) and meta["doc_tokens"]["over_max"] is None
    assert meta["doc_tokens"]["p99"] == sorted(lens)[int(np.ceil(0.99 * 399))]


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
    before = (open(out, "rb").read(), open(sidecar_path(out)).read(), open(doc_index_path(out), "rb").read())
    with pytest.raises(UserError, match=r"bad\.txt:6: not valid UTF-8"):
        pack_text_file(tok, str(bad), out, chunk_lines=2)
    assert (open(out, "rb").read(), open(sidecar_path(out)).read(), open(doc_index_path(out), "rb").read()) == before
    assert sorted(os.listdir(tmp_path)) == ["bad.txt", "good.txt", "o.bin", "o.docs.npy", "o.json"]  # no temp files
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(UserError, match="no non-blank lines"):
        pack_text_file(tok, str(tmp_path / "blank.txt"), out)
    with pytest.raises(UserError, match=r"must end in \.bin"):
        pack_text_file(tok, str(good), str(tmp_path / "o.json"))


def test_over_long_task_lines_are_refused_and_filler_is_counted(tok, tmp_path):
    """A task line ("Q: ") longer than max_doc_tokens stops with file:line before anything is
    written; longer filler lines only show in the stats."""
    filler, task = "the alpha " * 10, "Q: sort " + " ".join(map(str, range(20))) + " A: 0"
    n_filler, n_task = len(tok.encode(filler)) + 1, len(tok.encode(task)) + 1
    limit = min(n_filler, n_task) - 1
    src = tmp_path / "in.txt"
    src.write_text(f"the alpha\n\n{filler}\nQ: sort 2 1 A: 1 2\n{task}\n")
    with pytest.raises(UserError, match=rf"in\.txt:5: task line of {n_task} tokens is longer than "
                                        rf"--max_doc_tokens {limit}"):
        pack_text_file(tok, str(src), str(tmp_path / "out" / "o.bin"), chunk_lines=2, max_doc_tokens=limit)
    assert os.listdir(tmp_path / "out") == []
    src.write_text(f"the alpha\n{filler}\nQ: sort 2 1 A: 1 2\n{filler}\n")
    meta = pack_text_file(tok, str(src), str(tmp_path / "o.bin"), max_doc_tokens=limit)
    assert meta["doc_tokens"]["over_max"] == 2 and meta["doc_tokens"]["max"] == n_filler
    assert meta["doc_tokens"]["max_doc_tokens"] == limit


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


def test_bins_without_a_doc_index_find_documents_by_eos(tok, tmp_path):
    """Bins packed before the index existed: documents end at each EOS; without EOS, a clear error."""
    src = tmp_path / "in.txt"
    src.write_text("sort 3 1 2\nthe alpha\n\nQ: sort 2 1 A: 1 2\n")
    for eos in (1, 0):
        out = str(tmp_path / f"o{eos}.bin")
        pack_text_file(tok, str(src), out, append_eos=bool(eos))
        want = PackedTokens(out).doc_starts.tolist()
        assert len(want) == 3
        meta = json.load(open(sidecar_path(out)))
        del meta["doc_index"]
        json.dump(meta, open(sidecar_path(out), "w"))
        os.unlink(doc_index_path(out))
        if eos:
            assert PackedTokens(out).doc_starts.tolist() == want
        else:
            data = PackedTokens(out)  # reading tokens (validation, retention) needs no index
            with pytest.raises(UserError, match=r"o0\.bin: has no document index .*rerun scripts/prepare_data\.py"):
                data.doc_starts
    # an index that does not belong to its .bin (another run's, or hand-copied) is refused
    out = str(tmp_path / "s.bin")
    pack_text_file(tok, str(src), out)
    pack_text_file(tok, str(tmp_path / "in.txt"), str(tmp_path / "t.bin"), append_bos=True)
    os.replace(doc_index_path(str(tmp_path / "t.bin")), doc_index_path(out))
    with pytest.raises(UserError, match=r"s\.docs\.npy: does not match the sidecar of .*s\.bin"):
        PackedTokens(out).doc_starts
    os.unlink(doc_index_path(out))
    with pytest.raises(UserError, match=r"s\.bin: its document index .* is missing"):
        PackedTokens(out).doc_starts


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


# --- rows aligned to documents ------------------------------------------------------------------


def synthetic_docs(n_docs, seed, max_len=40):
    """tokens[i] = i (so a row shows exactly which tokens it took) and the docs' start offsets."""
    lens = np.random.default_rng(seed).integers(1, max_len + 1, size=n_docs)
    return np.arange(lens.sum(), dtype=np.uint32), np.concatenate([[0], np.cumsum(lens)[:-1]]), lens


def epoch_rows(it):
    """Every row of the iterator's first epoch (batch_size 1) as (tokens, number of real tokens)."""
    rows = []
    for _ in range(it.epoch_stats()["rows"]):
        x, y = it.next_batch()
        n = 1 + int((y[0] != IGNORE_INDEX).sum())  # the padding is a suffix: targets after the last real token
        assert torch.all(y[0, n - 1:] == IGNORE_INDEX) and torch.all(x[0, n:] == PAD_ID)
        rows.append((torch.cat([x[0, :1], y[0, :n - 1]]).tolist(), n))
    return rows


def test_aligned_rows_hold_whole_documents_once_per_epoch():
    tokens, starts, lens = synthetic_docs(300, seed=0)
    seq_len = 15  # rows of 16 tokens: docs of up to 40 tokens, so some are cut
    it = AlignedBatchIterator(tokens, seq_len, batch_size=1, seed=3, doc_starts=starts)
    capacity = seq_len + 1
    whole = {s: l for s, l in zip(starts.tolist(), lens.tolist()) if l <= capacity}
    cut = [(s, l) for s, l in zip(starts.tolist(), lens.tolist()) if l > capacity]
    pieces = {s + o: min(capacity, l - o) for s, l in cut for o in range(0, l, capacity)}
    seen = []
    rows = epoch_rows(it)
    for row, n in rows:
        assert len(row) == n <= capacity
        p = 0
        while p < n:  # split the row into the documents it holds, a piece of a cut one only first
            t = row[p]
            assert t in whole or (p == 0 and t in pieces), (row, p)
            seg = whole.get(t) or pieces[t]
            assert row[p:p + seg] == list(range(t, t + seg))
            seen.append(t)
            p += seg
    assert sorted(seen) == sorted([*whole, *pieces])  # each document (or piece) exactly once, whole
    assert it.docs_cut == len(cut) > 0
    stats = it.epoch_stats()
    assert stats["rows"] == len(rows) and stats["fill"] == sum(n for _, n in rows) / (len(rows) * capacity)
    assert stats["fill"] > 0.8  # best fit leaves little padding (here the many cut pieces leave some)
    # the next epoch packs another permutation of the same documents
    assert rows[0][0] != it.next_batch()[0][0].tolist()[:rows[0][1]] and it.epoch_stats()["epoch"] == 1


def test_best_fit_packs_the_largest_fitting_document_first_and_is_fast():
    lens = np.array([3, 5, 2, 4, 1, 9])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    seg_start, seg_len, row_ptr = best_fit_rows(starts, lens, np.arange(6), capacity=8)
    rows = [seg_len[a:b].tolist() for a, b in zip(row_ptr[:-1], row_ptr[1:])]
    # the 9-token doc is cut: a full row, then its 1-token rest opens the next row; best fit fills the rest
    assert rows == [[8], [1, 5, 2], [4, 3, 1]]
    assert seg_start.tolist() == [15, 23, 3, 8, 10, 0, 14]
    rng = np.random.default_rng(0)
    lens = rng.integers(5, 300, size=200_000)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    t0 = time.perf_counter()
    _, seg_len, _ = best_fit_rows(starts, lens, rng.permutation(len(lens)), capacity=257)
    assert time.perf_counter() - t0 < 5.0 and seg_len.sum() == lens.sum()


def test_aligned_ranks_partition_the_global_batch_and_resume_exactly():
    tokens, starts, _ = synthetic_docs(20, seed=1, max_len=24)  # ~15 rows per epoch: batches cross epochs
    make = lambda B, **kw: AlignedBatchIterator(tokens, 15, B, seed=5, doc_starts=starts, **kw)  # noqa: E731
    single = make(6)
    ranks = [make(2, rank=r, world_size=3) for r in range(3)]
    straight = []
    for _ in range(12):
        x, y = single.next_batch()
        straight.append((x, y))
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    assert single.epoch_stats()["epoch"] >= 3
    again = make(6)
    for x, y in straight[:5]:
        assert all(torch.equal(a, b) for a, b in zip(again.next_batch(), (x, y)))
    state = again.state_dict()
    buf = io.BytesIO()  # plain ints and the packing name: loads with weights_only=True
    torch.save({"data": state}, buf)
    buf.seek(0)
    restored = torch.load(buf, weights_only=True)["data"]
    for resumed in (make(6), make(3, rank=1, world_size=2)):  # also on another number of ranks
        resumed.load_state_dict(restored)
        for x, y in straight[5:]:
            rx, ry = resumed.next_batch()
            lo = resumed.rank * resumed.batch_size
            assert torch.equal(rx, x[lo:lo + resumed.batch_size]) and torch.equal(ry, y[lo:lo + resumed.batch_size])
    # the step counter alone is enough: without the epoch cursor the epochs are counted again
    bare = make(6)
    bare.load_state_dict({k: v for k, v in restored.items() if k not in ("epoch", "epoch_first_row")})
    assert torch.equal(bare.next_batch()[0], straight[5][0])


def test_aligned_resume_refuses_another_packing_or_data():
    tokens, starts, _ = synthetic_docs(60, seed=1)
    aligned = AlignedBatchIterator(tokens, 15, 4, seed=0, doc_starts=starts)
    random_windows = BatchIterator(tokens, 15, 4, seed=0)
    with pytest.raises(UserError, match="saved with random packing, this run uses aligned: resume with --packing random"):
        aligned.load_state_dict(random_windows.state_dict())
    with pytest.raises(UserError, match="saved with aligned packing, this run uses random"):
        random_windows.load_state_dict(aligned.state_dict())
    other = AlignedBatchIterator(tokens, 15, 4, seed=0, doc_starts=starts[:-1])
    with pytest.raises(UserError, match="num_docs .*would not reproduce"):
        other.load_state_dict(aligned.state_dict())
    with pytest.raises(UserError, match="needs doc_starts"):
        AlignedBatchIterator(tokens, 15, 4, seed=0)
    with pytest.raises(UserError, match="must rise strictly from 0"):
        AlignedBatchIterator(tokens, 15, 4, seed=0, doc_starts=starts[1:])


def test_aligned_iterator_reads_a_packed_file(tiny_data):
    """On a real file (each document = a line + EOS): rows split at EOS into whole documents, but
    for a piece of a cut document, which only ever opens a row."""
    data = PackedTokens(tiny_data["train_bin"])
    it = AlignedBatchIterator(data, 32, 16, seed=0)
    x, y = it.next_batch()
    assert x.shape == y.shape == (16, 32) and x.dtype == y.dtype == torch.int64
    tokens = np.asarray(data.tokens, dtype=np.int64)
    docs = np.split(tokens, data.doc_starts[1:])
    whole = {tuple(d) for d in docs}
    pieces = {tuple(d[o:o + 33]) for d in docs if len(d) > 33 for o in range(0, len(d), 33)}
    assert it.docs_cut == len([d for d in docs if len(d) > 33]) > 0
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        n = 1 + int((row_y != IGNORE_INDEX).sum())
        row = np.append(row_x[:1], row_y[:n - 1])
        parts = [p for p in np.split(row, np.flatnonzero(row == EOS_ID) + 1) if len(p)]
        assert all(tuple(p) in whole or (i == 0 and tuple(p) in pieces) for i, p in enumerate(parts)), row


@pytest.mark.parametrize("fused", [False, True])
def test_padding_targets_are_ignored_by_the_loss(fused):
    """The loss of a padded batch is the mean cross-entropy over its real targets only (the fused
    loss too), and whatever sits in the padded inputs does not change it."""
    import dataclasses

    import torch.nn.functional as F

    from conftest import TINY_MODEL
    from discover_distill.config import load_model_config
    from discover_distill.model import GPT

    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=64, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=32)
    model = GPT(cfg).eval()
    lens = np.tile([9, 10, 11, 12], 4)  # two never fit one row of 16: every row is padded
    tokens, starts = np.arange(lens.sum()) % 64, np.concatenate([[0], np.cumsum(lens)[:-1]])
    x, y = AlignedBatchIterator(tokens, 15, 8, seed=0, doc_starts=starts).next_batch()
    real = y != IGNORE_INDEX
    padded_input = torch.arange(15) >= 1 + real.sum(1, keepdim=True)
    assert padded_input.any(1).all() and torch.all(x[padded_input] == PAD_ID)
    with torch.no_grad():
        logits, _ = model(x)
        per_token = F.cross_entropy(logits.reshape(-1, 64), y.clamp_min(0).reshape(-1), reduction="none")
        want = per_token[real.reshape(-1)].mean()
        model.fused_loss = fused
        _, loss = model(x, targets=y)
        _, loss2 = model(torch.where(padded_input, torch.randint_like(x, 64), x), targets=y)
    assert torch.allclose(loss, want, rtol=1e-5) and torch.allclose(loss2, loss, rtol=1e-5)


def test_copy_rows_repeat_a_string_of_varying_length_and_score_only_the_repeats():
    alphabet = np.arange(4, 100)
    x, y = copy_rows(first_row=10, n_rows=64, seq_len=48, alphabet=alphabet, seed=3)
    assert x.shape == y.shape == (64, 48)
    row = torch.cat([x, y[:, -1:]], 1)  # the last target is the row's last token
    periods = set()
    for r, t in zip(row, y):
        scored = (t != IGNORE_INDEX).nonzero().flatten()
        n = int(scored[0])  # scoring starts at s's second occurrence; each scored position predicts the next token
        assert scored.tolist() == list(range(n, 48)) and 8 <= n <= 24
        assert torch.equal(r[n:], r[:49 - n]) and torch.equal(t[n:], r[n + 1:])
        periods.add(n)
    assert len(periods) > 5  # no fixed offset predicts the next token
    # a row depends on (seed, global row) alone: two ranks' halves are the whole batch
    a, b = copy_rows(10, 32, 48, alphabet, 3), copy_rows(42, 32, 48, alphabet, 3)
    assert torch.equal(torch.cat([a[0], b[0]]), x) and torch.equal(torch.cat([a[1], b[1]]), y)
    assert not torch.equal(copy_rows(10, 64, 48, alphabet, 4)[0], x)
    assert set(copy_rows(0, 8, 48, np.array([7, 9]), 0)[0].unique().tolist()) == {7, 9}
    with pytest.raises(UserError, match="seq_len"):
        copy_rows(0, 1, 10, alphabet, 0)


def test_frequent_tokens_are_the_most_common_ordinary_ids():
    tokens = np.array([3, 3, 3, 3, 0, 9, 9, 9, 5, 5, 7, 2, 2, 2, 2, 2], dtype=np.uint16)
    assert frequent_tokens(tokens, 2).tolist() == [9, 5]  # specials (0-3) never count
    assert frequent_tokens(tokens, 10).tolist() == [9, 5, 7]  # only tokens that occur
    assert frequent_tokens(tokens, 3, chunk=4).tolist() == [9, 5, 7]  # counted chunk by chunk alike
