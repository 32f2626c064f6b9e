"""scripts/train_tokenizer.py and scripts/prepare_data.py as the runbook runs them, and their errors."""
import json

import numpy as np
import pytest

from conftest import run_script
from discover_distill.tokenizer import Tokenizer
from test_tokenizer import corpus_lines

pytestmark = pytest.mark.slow


def one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    (d / "train.txt").write_text("\n".join(corpus_lines(2000, 0)) + "\n")
    (d / "val.txt").write_text("\n".join(corpus_lines(300, 1)) + "\n")
    return d


def test_runbook_commands_quietly_build_tokenizer_and_bins(raw, tmp_path):
    prefix = str(tmp_path / "tokenizer" / "spm")
    proc = run_script("scripts/train_tokenizer.py", "--input", str(raw / "train.txt"), "--model_prefix", prefix,
                      "--vocab_size", "400", "--model_type", "bpe")
    assert proc.stderr == ""  # sentencepiece's log flood is silenced
    assert len(proc.stdout.splitlines()) == 1 and "400 pieces" in proc.stdout
    tok = Tokenizer(prefix + ".model")
    for split in ("train", "val"):
        out = str(tmp_path / "packed" / f"{split}.bin")
        proc = run_script("scripts/prepare_data.py", "--tokenizer", prefix + ".model", "--input",
                          str(raw / f"{split}.txt"), "--output", out, "--append_eos", "1")
        assert proc.stderr == "" and len(proc.stdout.splitlines()) == 1  # no progress bar off a terminal
        side = json.load(open(tmp_path / "packed" / f"{split}.json"))
        lines = (raw / f"{split}.txt").read_text().splitlines()
        assert side["num_docs"] == len(lines)
        assert side["num_tokens"] == sum(len(tok.encode(line)) + 1 for line in lines)
        got = np.fromfile(out, dtype="<u2")
        want = tok.encode(lines[0]) + [tok.eos_id]
        assert len(got) == side["num_tokens"] and got[:len(want)].tolist() == want
        starts = np.load(tmp_path / "packed" / f"{split}.docs.npy")  # the document index beside it
        assert side["doc_index"]["file"] == f"{split}.docs.npy" and len(starts) == len(lines)
        assert starts[1] == len(want) and f"max {side['doc_tokens']['max']}, p99" in proc.stdout
    # The same command again reproduces the same model bytes.
    run_script("scripts/train_tokenizer.py", "--input", str(raw / "train.txt"), "--model_prefix",
               str(tmp_path / "again"), "--vocab_size", "400", "--model_type", "bpe")
    assert Tokenizer(str(tmp_path / "again.model")).sha256 == tok.sha256


def test_train_tokenizer_errors(raw, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("\n".join(corpus_lines(100, 3)) + "\n")
    line = one_line_error(run_script("scripts/train_tokenizer.py", "--input", str(small), "--model_prefix",
                                     str(tmp_path / "t"), "--vocab_size", "32000", "--model_type", "bpe",
                                     check=False), "--vocab_size", "32000", "at most")
    assert int(line.rsplit("at most ", 1)[1]) < 32000
    assert not list(tmp_path.glob("t*"))
    one_line_error(run_script("scripts/train_tokenizer.py", "--input", str(tmp_path / "missing.txt"),
                              "--model_prefix", str(tmp_path / "t"), "--vocab_size", "400", check=False),
                   "--input", "missing.txt")
    proc = run_script("scripts/train_tokenizer.py", "--input", str(small), "--model_prefix", str(tmp_path / "t"),
                      "--vocab_size", "400", "--vocab", "1", check=False)  # no silent prefix matching
    assert proc.returncode == 2 and "unrecognized arguments: --vocab 1" in proc.stderr
    one_line_error(run_script("scripts/train_tokenizer.py", "--input", str(small), "--model_prefix",
                              str(tmp_path / "t"), "--vocab_size", "1", check=False), "--vocab_size 1 is too small")


def test_prepare_data_errors(raw, tiny_data, tmp_path):
    tok = tiny_data["tokenizer"]
    out = str(tmp_path / "x.bin")
    one_line_error(run_script("scripts/prepare_data.py", "--tokenizer", str(tmp_path / "nope.model"), "--input",
                              str(raw / "val.txt"), "--output", out, check=False), "--tokenizer", "nope.model")
    one_line_error(run_script("scripts/prepare_data.py", "--tokenizer", tok, "--input", str(tmp_path / "no.txt"),
                              "--output", out, check=False), "--input", "no.txt")
    (tmp_path / "empty.txt").write_text("")
    one_line_error(run_script("scripts/prepare_data.py", "--tokenizer", tok, "--input", str(tmp_path / "empty.txt"),
                              "--output", out, check=False), "--input", "empty")
    one_line_error(run_script("scripts/prepare_data.py", "--tokenizer", tok, "--input", str(raw / "val.txt"),
                              "--output", str(tmp_path / "x.dat"), check=False), "--output", ".bin")
    one_line_error(run_script("scripts/prepare_data.py", "--tokenizer", tok, "--input", str(raw / "val.txt"),
                              "--output", out, "--chunk_lines", "0", check=False), "--chunk_lines")
    proc = run_script("scripts/prepare_data.py", "--tokenizer", tok, "--input", str(raw / "val.txt"), "--output", out,
                      "--append_eos", "2", check=False)
    assert proc.returncode == 2 and "--append_eos" in proc.stderr
    proc = run_script("scripts/prepare_data.py", "--tokenizer", tok, "--input", str(raw / "val.txt"), "--output", out,
                      "--bogus", check=False)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
    assert not list(tmp_path.glob("x*"))


def test_prepare_data_refuses_an_over_long_task_line(tiny_data, tmp_path):
    """--max_doc_tokens: a task line that would not fit one pretraining row stops the run with its
    line number and nothing is written; filler lines over it are only counted."""
    src = tmp_path / "in.txt"
    long_task = "Q: sort " + " ".join(str(i) for i in range(40)) + " A: 0"
    src.write_text(f"the alpha beta\n\nQ: sort 1 2 A: 1 2\n{long_task}\n")
    out = tmp_path / "packed" / "x.bin"
    cmd = ["scripts/prepare_data.py", "--tokenizer", tiny_data["tokenizer"], "--input", str(src), "--output", str(out),
           "--max_doc_tokens", "20"]
    one_line_error(run_script(*cmd, check=False), "in.txt:4: task line of", "--max_doc_tokens 20")
    assert not list(tmp_path.rglob("x*")) and not list(tmp_path.rglob(".tmp-*"))
    src.write_text(f"the alpha beta\n{long_task.replace('Q: ', 'so: ')}\nQ: sort 1 2 A: 1 2\n")
    proc = run_script(*cmd)
    side = json.load(open(tmp_path / "packed" / "x.json"))
    assert side["doc_tokens"]["over_max"] == 1 and side["doc_tokens"]["max_doc_tokens"] == 20
    assert "1 filler over 20" in proc.stdout
    one_line_error(run_script(*cmd[:-1], "-1", check=False), "--max_doc_tokens")


def test_packing_val_also_packs_the_filler_split_beside_it(raw, tiny_data, tmp_path):
    """The runbook's A3 val command, as written, also packs A2's val_filler.txt (E2's headline text)."""
    src = tmp_path / "raw"
    src.mkdir()
    (src / "val.txt").write_text((raw / "val.txt").read_text())
    (src / "val_filler.txt").write_text("the cat sat on the mat .\nno dog ran .\n")
    out = tmp_path / "packed"
    proc = run_script("scripts/prepare_data.py", "--tokenizer", tiny_data["tokenizer"], "--input", str(src / "val.txt"),
                      "--output", str(out / "val.bin"), "--append_eos", "1")
    assert "val_filler.bin" in proc.stdout
    assert json.load(open(out / "val_filler.json"))["num_docs"] == 2
    run_script("scripts/prepare_data.py", "--tokenizer", tiny_data["tokenizer"], "--input", str(src / "val.txt"),
               "--output", str(tmp_path / "off" / "val.bin"), "--filler_input", "none")
    assert not (tmp_path / "off" / "val_filler.bin").exists()
