"""Phase A runbook commands as subprocesses at small scale, and their bad-input errors."""
import json

import pytest

from conftest import run_script
from discover_distill.tokenizer import Tokenizer

pytestmark = pytest.mark.slow


def one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_phase_a_pipeline_small(tmp_path):
    raw = tmp_path / "raw"
    out = run_script("paper/scripts/gen_synthetic_corpus.py", "--seed", "0", "--train_lines", "3000", "--val_lines",
                     "300", "--train_out", str(raw / "train.txt"), "--val_out", str(raw / "val.txt")).stdout
    assert "policy attempts" in out and "golomb" in out
    first = (raw / "train.txt").read_bytes()
    run_script("paper/scripts/gen_synthetic_corpus.py", "--seed", "0", "--train_lines", "3000", "--val_lines", "300",
               "--train_out", str(tmp_path / "again.txt"), "--val_out", str(tmp_path / "again_val.txt"))
    assert (tmp_path / "again.txt").read_bytes() == first
    assert (raw / "val.txt").read_bytes() != first[:len((raw / "val.txt").read_bytes())]
    prefix = tmp_path / "tok" / "spm"
    run_script("scripts/train_tokenizer.py", "--input", str(raw / "train.txt"), "--model_prefix", str(prefix),
               "--vocab_size", "1000", "--model_type", "bpe")
    meta = json.load(open(f"{prefix}.json"))
    assert meta["vocab_size"] == 1000 and len(meta["model_sha256"]) == 64 and meta["input_lines"] == 3000
    for split in ("train", "val"):
        run_script("scripts/prepare_data.py", "--tokenizer", f"{prefix}.model", "--input", str(raw / f"{split}.txt"),
                   "--output", str(tmp_path / "packed" / f"{split}.bin"), "--append_eos", "1")
    side = json.load(open(tmp_path / "packed" / "train.json"))
    assert side["dtype"] == "uint16" and side["tokenizer_sha256"] == meta["model_sha256"]
    import numpy as np
    tok = Tokenizer(f"{prefix}.model")
    first_line = (raw / "train.txt").read_text().splitlines()[0]
    want = tok.encode(first_line) + [tok.eos_id]
    got = np.fromfile(tmp_path / "packed" / "train.bin", dtype=np.uint16)[:len(want)].tolist()
    assert got == want


def test_gen_discovery_tasks(tmp_path):
    args = ["paper/scripts/gen_discovery_tasks.py", "--seed", "0", "--out_train", str(tmp_path / "train.jsonl"),
            "--out_heldout", str(tmp_path / "heldout.jsonl"), "--n_train", "4", "--n_heldout", "6"]
    run_script(*args)
    train = [json.loads(l) for l in open(tmp_path / "train.jsonl")]
    held = [json.loads(l) for l in open(tmp_path / "heldout.jsonl")]
    assert len(train) == 24 and len(held) == 36
    assert {t["split"] for t in train} == {"train"} and {t["split"] for t in held} == {"heldout"}
    assert not {t["task_id"] for t in train} & {t["task_id"] for t in held}
    first = (tmp_path / "heldout.jsonl").read_bytes()
    run_script(*args)
    assert (tmp_path / "heldout.jsonl").read_bytes() == first
    one_line_error(run_script(*args, "--families", "chess", check=False), "--families", "chess")
    # labelled cells: the same instances (ids, specs' numbers), only assign's prompts differ
    run_script(*args[:6], str(tmp_path / "lab.jsonl"), *args[7:], "--cells", "labelled")
    lab = [json.loads(l) for l in open(tmp_path / "lab.jsonl")]
    assert [t["task_id"] for t in lab] == [t["task_id"] for t in held]
    for a, b in zip(lab, held):
        assert (a["prompt"] != b["prompt"]) == (a["family"] == "assign")
        assert a["spec"] == {**b["spec"], **({"cells": "labelled"} if a["family"] == "assign" else {})}


def test_bad_inputs_give_one_line_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    one_line_error(run_script("scripts/train_tokenizer.py", "--input", str(tmp_path / "missing.txt"),
                              "--model_prefix", str(tmp_path / "t"), "--vocab_size", "100", check=False), "--input")
    one_line_error(run_script("scripts/train_tokenizer.py", "--input", str(empty), "--model_prefix",
                              str(tmp_path / "t"), "--vocab_size", "100", check=False), "empty")
    small = tmp_path / "small.txt"
    small.write_text("hello world\nsort 1 2 3\n" * 20)
    one_line_error(run_script("scripts/train_tokenizer.py", "--input", str(small), "--model_prefix",
                              str(tmp_path / "t"), "--vocab_size", "32000", check=False), "--vocab_size 32000",
                   "at most")
    assert not list(tmp_path.glob("t.*"))  # nothing half-written
    proc = run_script("scripts/prepare_data.py", "--tokenizer", str(tmp_path / "nope.model"), "--input", str(small),
                      "--output", str(tmp_path / "x.bin"), "--bogus", check=False)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
    one_line_error(run_script("scripts/prepare_data.py", "--tokenizer", str(tmp_path / "nope.model"), "--input",
                              str(small), "--output", str(tmp_path / "x.bin"), check=False), "--tokenizer")
    one_line_error(run_script("paper/scripts/gen_synthetic_corpus.py", "--train_lines", "-5", "--val_lines", "1",
                              "--train_out", str(tmp_path / "a"), "--val_out", str(tmp_path / "b"), check=False),
                   "--train_lines")
    one_line_error(run_script("paper/scripts/gen_synthetic_corpus.py", "--train_lines", "5", "--val_lines", "1",
                              "--train_out", str(tmp_path), "--val_out", str(tmp_path / "b"), check=False),
                   "--train_out", "directory")
