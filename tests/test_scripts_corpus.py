"""gen_synthetic_corpus.py as a subprocess: outputs, flags and one-line errors.
(The runbook A2->A3 chain at small scale is in test_scripts_phase_a.py.)"""
import importlib.util
import os

import pytest

from conftest import ROOT, run_script

pytestmark = pytest.mark.slow
SCRIPT = "paper/scripts/gen_synthetic_corpus.py"


def gen(tmp_path, *extra, train=400, val=50, check=True):
    return run_script(SCRIPT, "--seed", "1", "--train_lines", str(train), "--val_lines", str(val),
                      "--train_out", str(tmp_path / "deep" / "raw" / "train.txt"),
                      "--val_out", str(tmp_path / "deep" / "raw" / "val.txt"), *extra, check=check)


def one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_writes_exact_line_counts_creates_dirs_and_leaves_no_temp_files(tmp_path):
    out = gen(tmp_path).stdout
    raw = tmp_path / "deep" / "raw"
    train, val = (raw / "train.txt").read_text(), (raw / "val.txt").read_text()
    assert train.endswith("\n") and len(train.splitlines()) == 400 and len(val.splitlines()) == 50
    assert all(line.strip() for line in train.splitlines())
    assert not set(train.splitlines()[:50]) & set(val.splitlines()) - {""}  # independent streams
    assert sorted(p.name for p in raw.iterdir()) == ["train.txt", "val.txt", "val_filler.txt"]
    for needle in ("train lines by kind", "filler", "policy attempts", ">=.99"):
        assert needle in out, out


def test_filler_frac_zero_gives_only_task_lines(tmp_path):
    out = gen(tmp_path, "--filler_frac", "0").stdout
    lines = (tmp_path / "deep" / "raw" / "train.txt").read_text().splitlines()
    assert "filler" not in out.split("train lines by kind:")[1].splitlines()[0]
    assert all(line.startswith("Q: ") for line in lines)


def test_task_mix_and_difficulties(tmp_path):
    out = gen(tmp_path, "--filler_frac", "0.1", "--task_mix", "solved=1,improve=1", "--difficulties", "1").stdout
    kinds = out.split("train lines by kind:")[1].splitlines()[0]
    assert "solved" in kinds and "improve" in kinds and "plain" not in kinds and "demo" not in kinds
    assert "d1 100%" in out.split("task-line difficulties:")[1].splitlines()[0]
    lines = (tmp_path / "deep" / "raw" / "train.txt").read_text().splitlines()
    assert all("||" not in l or "improve on it" in l for l in lines if l.startswith("Q: "))
    default = gen(tmp_path / "d").stdout  # the held-out levels of the paper mix, weighted 3:1
    assert "gridpath: d1 20% d2 20% d3 60%" in default
    one_line_error(gen(tmp_path, "--task_mix", "solved=1,bogus=2", check=False), "--task_mix", "bogus")
    one_line_error(gen(tmp_path, "--difficulties", "4", check=False), "--difficulties")


def test_unknown_flag_and_bad_values(tmp_path):
    proc = gen(tmp_path, "--bogus", check=False)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
    one_line_error(gen(tmp_path, "--filler_frac", "1.5", check=False), "--filler_frac")
    one_line_error(gen(tmp_path, train=0, check=False), "--train_lines")
    one_line_error(run_script(SCRIPT, "--train_lines", "5", "--val_lines", "1", "--train_out",
                              str(tmp_path / "a.txt"), "--val_out", str(tmp_path), check=False), "--val_out", "directory")
    proc = gen(tmp_path, "--seed", "x", check=False)
    assert proc.returncode == 2 and "--seed" in proc.stderr
    assert not list(tmp_path.rglob("*.txt"))  # nothing written by a rejected run


def test_filler_only_heldout_split(tmp_path):
    """A2 also writes filler-only held-out text (the retention headline): beside --val_out by default,
    --val_lines lines, no task-format line, no line of the train text, not val.txt's filler lines."""
    gen(tmp_path, train=2000)
    raw = tmp_path / "deep" / "raw"
    train = set((raw / "train.txt").read_text().splitlines())
    val = (raw / "val.txt").read_text().splitlines()
    filler = (raw / "val_filler.txt").read_text().splitlines()
    assert len(filler) == 50 and all(line.strip() and not line.startswith("Q:") for line in filler)
    assert not set(filler) & train and not set(filler) & set(val)
    gen(tmp_path, "--filler_val_out", str(tmp_path / "f.txt"), "--filler_val_lines", "7")
    assert len((tmp_path / "f.txt").read_text().splitlines()) == 7
    one_line_error(gen(tmp_path, "--filler_val_lines", "0", check=False), "--filler_val_lines")


def test_filler_split_drops_lines_of_the_train_text(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_corpus", os.path.join(ROOT, SCRIPT))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    grammar = mod.FillerGrammar(size=200)
    mod.write_filler_split(str(tmp_path / "a.txt"), 30, 0, grammar, set())
    first = (tmp_path / "a.txt").read_text().splitlines()
    train = set(first[:10])  # pretend the train text holds the stream's first 10 lines
    dropped = mod.write_filler_split(str(tmp_path / "b.txt"), 30, 0, grammar, train)
    got = (tmp_path / "b.txt").read_text().splitlines()
    assert len(got) == 30 and not set(got) & train and dropped >= 10


def test_families_step_lines_and_policy_noise(tmp_path):
    out = gen(tmp_path, "--families", "tour,assign", "--task_mix", "plain=1,step=1", "--filler_frac", "0").stdout
    assert out.split("task lines by family:")[1].splitlines()[0].split()[::2] == ["assign", "tour"]
    lines = (tmp_path / "deep" / "raw" / "train.txt").read_text().splitlines()
    assert any(" || leftmost with y at most 15 not in " in l for l in lines) and any(" cheapest free column, used " in l for l in lines)
    # no noise: every plain line is the policy's own answer
    gen(tmp_path / "clean", "--families", "tour", "--task_mix", "plain=1", "--filler_frac", "0", "--policy_noise", "0")
    from discover_distill.tasks import FAMILIES
    from discover_distill.tasks.base import parse_labels
    import random
    for line in (tmp_path / "clean" / "deep" / "raw" / "train.txt").read_text().splitlines():
        prompt, answer = line[3:].split(" A: ")
        pts = [tuple(map(int, p[1:].split(","))) for p in prompt.split("points ")[1].split(", list")[0].split()]
        spec = {"points": [list(p) for p in pts]}
        assert answer == FAMILIES["tour"].heuristic(spec, random.Random(0))
        first = parse_labels(answer)[0]   # the leftmost point of the lower strip (or the rightmost if it is empty)
        assert pts[first][1] <= 15 or all(y > 15 for _, y in pts)
    one_line_error(gen(tmp_path, "--families", "tour,nope", check=False), "--families", "nope")
    one_line_error(gen(tmp_path, "--policy_noise", "2", check=False), "--policy_noise")
    gen(tmp_path / "sorted", "--families", "knapsack", "--task_mix", "plain=1", "--filler_frac", "0", "--answer_order",
        "sorted")
    for line in (tmp_path / "sorted" / "deep" / "raw" / "train.txt").read_text().splitlines():
        letters = line.split(" A: ")[1].split()
        assert letters == sorted(letters)
    bad = gen(tmp_path, "--answer_order", "random", check=False)
    assert bad.returncode == 2 and "--answer_order" in bad.stderr
    # labelled cells: every assign prompt labels its costs; the other families' prompts stay plain
    gen(tmp_path / "lab", "--families", "assign,gridpath", "--task_mix", "plain=1,step=1", "--filler_frac", "0",
        "--cells", "labelled")
    lines = (tmp_path / "lab" / "deep" / "raw" / "train.txt").read_text().splitlines()
    assert all(" cost rows a" in l and "; a" in l for l in lines if l.startswith("Q: assign:"))
    assert all(" rows a" not in l for l in lines if l.startswith("Q: gridpath:"))
    assert {l.split(":")[1] for l in lines} == {" assign", " gridpath"}
    bad = gen(tmp_path, "--cells", "bold", check=False)
    assert bad.returncode == 2 and "--cells" in bad.stderr
