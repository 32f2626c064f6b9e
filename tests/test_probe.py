"""The base-model probe (lib/discover_distill/probe.py): a model that reads its task has a large
swap gap, one trained to ignore it has none; the gate names every failed check."""
import dataclasses
import random

import pytest
import torch

from conftest import TINY_MODEL
from discover_distill import probe as P
from discover_distill.config import load_model_config
from discover_distill.model import GPT
from discover_distill.tasks.base import LABELS, TaskFamily

LETTERS = LABELS[:20]


class WordTokenizer:
    """One id per space-separated word (the sampler's host-side stop check handles its decode)."""
    pad_id, eos_id = 0, 3

    def __init__(self, words):
        self.pieces = ["<pad>", "<unk>", "<bos>", "<eos>"] + list(words)
        self.ids = {w: i for i, w in enumerate(self.pieces)}
        self.vocab_size = len(self.pieces)

    def encode(self, text):
        return [self.ids.get(w, 1) for w in text.split()]

    def decode(self, ids):
        return " ".join(self.pieces[i] for i in ids if 3 < i < self.vocab_size)


class CopyLetter(TaskFamily):
    """A toy family a tiny model learns in seconds: the answer is the letter the prompt names."""
    name = "copy"

    def prompt(self, spec):
        return f"copy the letter {spec['x']}"

    def score(self, spec, answer):
        return 1.0 if answer == spec["x"] else 0.1 if answer in LETTERS else 0.0

    def form_ok(self, spec, answer):
        return answer in LETTERS

    def solve(self, spec, rng):
        return spec["x"]

    def random_answer(self, spec, rng):
        return rng.choice(LETTERS)

    def heuristic(self, spec, rng, noise=0.0):   # the policy the toy corpus teaches: the named letter
        return spec["x"]


FAMILY = CopyLetter()
TOK = WordTokenizer(["Q:", "A:", "||", "copy", "the", "letter", *LETTERS])
TASKS = [{"task_id": f"copy-{x}", "family": "copy", "prompt": FAMILY.prompt({"x": x}), "spec": {"x": x}}
         for x in LETTERS]


def train_tiny(shuffled: bool, steps: int = 100, seed: int = 0) -> GPT:
    """A tiny GPT on corpus lines "Q: copy the letter x A: x" (EOS before and after, as packed),
    trained on the answer and its EOS; `shuffled`: every answer paired with another instance's
    prompt, so the prompt carries nothing. mHC off (n = 1): the probe does not depend on it, and
    the plain residual trains several times faster on a CPU."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=32, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=32, mhc_streams=1)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        rows = []
        for _ in range(32):
            x, y = rng.choice(LETTERS), rng.choice(LETTERS)
            rows.append([TOK.eos_id] + TOK.encode(f"Q: copy the letter {x} A: {y if shuffled else x}") + [TOK.eos_id])
        batch = torch.tensor(rows)
        targets = batch[:, 1:].clone()
        targets[:, :-2] = -100  # the answer letter and its EOS
        _, loss = model(batch[:, :-1], targets=targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def reader():
    return train_tiny(shuffled=False)


@pytest.fixture(scope="module")
def blind():
    return train_tiny(shuffled=True)


def test_answer_tokens_are_the_corpus_lines_tail_plus_eos():
    assert P.answer_ids(TOK, "Q: copy the letter b A:", "b") == [TOK.ids["b"], TOK.eos_id]


def test_swap_gap_is_large_for_a_reader_and_about_zero_for_a_blind_model(reader, blind):
    read = P.swap_nlls(reader, TOK, [(FAMILY, TASKS)], seed=0)
    gaps = [s - o for o, s, *_ in read]
    assert len(read) == len(TASKS) and all(n == 2 for _, _, n, _ in read)   # the letter and EOS
    assert sum(gaps) / len(gaps) > 1.0
    # per token: the gap sums to the answer's, and sits on the letter the prompt names, not on the EOS
    assert all(sum(by) == pytest.approx(s - o, abs=1e-4) for o, s, _, by in read)
    on_letter, on_eos = (sum(by[k] for *_, by in read) / len(read) for k in (0, 1))
    assert on_letter > 1.0 and on_letter > 0.75 * (on_letter + on_eos)   # most of it on the letter
    blind_gaps = [s - o for o, s, *_ in P.swap_nlls(blind, TOK, [(FAMILY, TASKS)], seed=0)]
    assert abs(sum(blind_gaps) / len(blind_gaps)) < 0.3
    # families share the batched pass without changing each other's numbers; one task: nothing to swap with
    both = P.swap_nlls(reader, TOK, [(FAMILY, TASKS[:1]), (FAMILY, TASKS[1:6])], seed=0)
    alone = P.swap_nlls(reader, TOK, [(FAMILY, TASKS[1:6])], seed=0)
    assert both[0] is None
    for x, y in zip(both[1:], alone):
        assert x[:3] == pytest.approx(y[:3], abs=1e-4) and x[3] == pytest.approx(y[3], abs=1e-4)


def test_token_nlls_batches_agree_with_one_at_a_time(reader):
    prompts = [t["prompt"] for t in TASKS[:5]]
    answers = [P.answer_ids(TOK, f"Q: {p} A:", "c") for p in prompts]
    together = P.token_nlls(reader, TOK, prompts, answers, batch=64)
    alone = [P.token_nlls(reader, TOK, [p], [a])[0] for p, a in zip(prompts, answers)]
    assert [len(x) for x in together] == [len(a) for a in answers]
    for x, y in zip(together, alone):
        assert x == pytest.approx(y, abs=1e-4)


def test_probe_result_reads_the_reader_and_flags_the_blind_model(reader, blind):
    s = P.ProbeSettings(per_family=8, samples=16, max_new_tokens=4, rows_per_batch=48)
    groups = [(FAMILY, P.select_tasks(TASKS, 8)["copy"])]
    good = P.probe(reader, TOK, groups, s, log=lambda _: None)
    fam = good["families"]["copy"]
    assert fam["n_tasks"] == 8 and fam["swap_gap"] > 1.0 and fam["swap_gap_ci95"][0] > 0
    # the policy's answer is the optimal one here: the same gap, and it is reported next to it
    assert fam["policy_swap_gap"] == pytest.approx(fam["swap_gap"]) and fam["policy_reward"] == 1.0
    assert all(r["policy_swap_gap"] is not None for r in good["tasks"])
    letter, eos = fam["policy_swap_gap_by_token"]          # the read is on the letter, not the EOS
    assert letter > 1.0 and letter > 0.75 * (letter + eos)
    assert letter + eos == pytest.approx(fam["policy_swap_gap"], abs=1e-4)
    header, rows = P.TABLE_HEADER, P.table(good)
    assert header[2].startswith("swap gap, policy answer") and rows[0][2] == rows[0][3]
    assert fam["well_formed"] > 0.9 and fam["random_well_formed"] == 1.0
    assert fam["reward"] > 2 * fam["random_reward"] and fam["distinct_greedy"] == 1.0
    assert fam["best_of_n"] >= fam["random_best_of_n"]
    assert good["overall"]["n_tasks"] == 8 and good["settings"]["samples"] == 16 and len(good["tasks"]) == 8
    thresholds = {"min_swap_gap": 1.0, "min_well_formed": 0.9, "min_reward_ratio": 2.0, "bestofn_vs_random": True}
    assert P.gate(good, thresholds) == []
    bad = P.probe(blind, TOK, groups, s, log=lambda _: None)
    assert bad["families"]["copy"]["distinct_greedy"] < 0.5
    assert any("swap gap" in r for r in P.gate(bad, thresholds))
    # the same settings and seed give the same result
    assert P.probe(reader, TOK, groups, s, log=lambda _: None)["overall"] == good["overall"]
    # a family without a policy: the policy gap is n/a, the optimal answer's is still measured
    no_policy = type("NoPolicy", (CopyLetter,), {"heuristic": TaskFamily.heuristic})()
    other = P.probe(reader, TOK, [(no_policy, groups[0][1])], s, log=lambda _: None)["families"]["copy"]
    assert other["policy_swap_gap"] is None and other["policy_reward"] is None and other["swap_gap"] > 1.0


def test_gap_by_token_averages_the_tasks_that_reach_each_token():
    rows = [{"policy_swap_gap_by_token": [2.0, 0.0, 1.0]}, {"policy_swap_gap_by_token": [1.0, 0.5]},
            {"policy_swap_gap_by_token": None}]
    assert P.gap_by_token(rows) == [1.5, 0.25, 1.0]
    assert P.gap_by_token([{"policy_swap_gap_by_token": None}]) == []


def result(gaps, well_formed=0.95, reward=0.3, random_reward=0.1, best=0.8, random_best=0.6):
    fams = {f"f{i}": {"swap_gap": g} for i, g in enumerate(gaps)}
    return {"families": fams, "overall": {"well_formed": well_formed, "reward": reward, "random_reward": random_reward,
                                          "best_of_n": best, "random_best_of_n": random_best}}


def test_gate_names_every_failed_check_and_passes_a_good_result():
    th = {"min_swap_gap": 1.0, "min_well_formed": 0.9, "min_reward_ratio": 2.0, "bestofn_vs_random": True}
    assert P.gate(result([3.0, 2.0]), th) == []
    failed = P.gate(result([0.01, None], well_formed=0.2, reward=0.1, random_reward=0.1, best=0.5), th)
    assert len(failed) == 4
    assert "swap gap below 1 nats in 2 of 2 families (f0 0.01, f1 n/a)" in failed[0]
    assert "well-formed share 0.20 < 0.9" in failed[1] and "random answers'" in failed[2]
    assert "random search's 0.600" in failed[3]
    # min_families: how many families must reach the gap
    assert P.gate(result([3.0, 0.1]), th) != [] and P.gate(result([3.0, 0.1]), {**th, "min_families": 1}) == []
    assert P.gate(result([0.0]), {}) == []                   # no thresholds: nothing to fail
    assert P.gate(result([3.0], random_reward=0.0), th) == []  # random scores nothing: any reward beats it
    # the gap the gate reads is the policy answer's where a family has one
    policy_low = result([3.0, 2.0])
    policy_low["families"]["f0"]["policy_swap_gap"] = 0.2
    assert "swap gap below 1 nats in 1 of 2 families (f0 0.20)" in P.gate(policy_low, th)[0]
    with pytest.raises(ValueError, match="min_swapgap"):
        P.gate(result([3.0]), {"min_swapgap": 1.0})
    with pytest.raises(ValueError, match="min_well_formed must be a number"):
        P.gate(result([3.0]), {"min_well_formed": "0.9"})


@pytest.mark.slow
def test_probe_base_script_writes_the_result_and_prints_one_table(tiny_data, tmp_path):
    import json

    from conftest import make_tiny_checkpoint, run_script
    from discover_distill.tasks import make_task

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt.pt", max_seq_len=256)
    rng = random.Random(0)
    tasks = [make_task(f, rng, 1, "heldout") for f in ("knapsack", "gridpath") for _ in range(3)]
    (tmp_path / "heldout.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    out = tmp_path / "probe" / "probe.json"
    proc = run_script("paper/scripts/probe_base.py", "--ckpt", ckpt, "--tokenizer", tiny_data["tokenizer"], "--tasks",
                      str(tmp_path / "heldout.jsonl"), "--json_out", str(out), "--per_family", "2", "--samples", "4",
                      "--max_new_tokens", "6", "--device", "cpu")
    res = json.loads(out.read_text())
    assert set(res["families"]) == {"gridpath", "knapsack"} and res["overall"]["n_tasks"] == 4
    assert res["settings"]["ckpt"] == ckpt and res["settings"]["samples"] == 4 and len(res["tasks"]) == 4
    lines = [l for l in proc.stdout.splitlines() if " | " in l and not l.startswith("probe")]
    assert [l.split()[0] for l in lines] == ["family", "gridpath", "knapsack", "overall"]
    bad = run_script("paper/scripts/probe_base.py", "--ckpt", str(tmp_path / "nope.pt"), "--tokenizer",
                     tiny_data["tokenizer"], "--tasks", str(tmp_path / "heldout.jsonl"), "--json_out", str(out),
                     check=False)
    assert bad.returncode == 2 and "--ckpt" in bad.stderr and "Traceback" not in bad.stderr


def test_policy_answer_in_the_corpus_order():
    from discover_distill.tasks import FAMILIES, make_task
    task = make_task("knapsack", random.Random(3), 2, "heldout")
    built = P.policy_answer(FAMILIES["knapsack"], task)
    ordered = P.policy_answer(FAMILIES["knapsack"], task, "sorted")
    assert sorted(built.split()) == ordered.split() and built == FAMILIES["knapsack"].heuristic(task["spec"], None)
    tour = make_task("tour", random.Random(3), 1, "heldout")
    assert P.policy_answer(FAMILIES["tour"], tour, "sorted") == P.policy_answer(FAMILIES["tour"], tour)
