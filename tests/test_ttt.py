"""One TTT step's arithmetic (ttt.py) and the TTT / best-of-N loops on a tiny model: constant-reward
groups, the FLOPs accounting, update norms, per-task reproducibility, spare vocabulary rows, and a
learner that learns."""
import dataclasses
import json
import math
import random

import pytest
import torch

from conftest import TINY_MODEL, make_tiny_checkpoint, run_script
from discover_distill import discovery as D
from discover_distill import tasks as T
from discover_distill.config import load_model_config
from discover_distill.lora import LoRAConfig, adapters_for_rows, inject_lora, lora_modules
from discover_distill.model import GPT, load_model
from discover_distill.sampling import generate
from discover_distill.tasks.base import TaskFamily
from discover_distill.tokenizer import Tokenizer
from discover_distill.ttt import completion_logprobs, group_advantages, length_buckets, lora_update_norms, token_advantages


def test_constant_reward_groups_carry_no_signal_and_stay_out_of_the_kl_mean():
    rewards = torch.tensor([0.5, 0.5, 0.2, 0.9, 0.7, 0.7], dtype=torch.float64)
    group = torch.tensor([0, 0, 1, 1, 2, 2])        # groups 0 and 2 constant, group 1 informative
    adv, signal, betas = group_advantages(rewards, group, 3, "entropic", True, 2.0)
    assert signal.tolist() == [False, False, True, True, False, False]
    assert betas[0] is None and betas[2] is None and betas[1] is not None
    assert adv[[0, 1, 4, 5]].abs().max() == 0
    torch.manual_seed(0)
    logp, base = -torch.rand(6, 3), -torch.rand(6, 3)
    mask = torch.ones(6, 3, dtype=torch.bool)
    task = torch.zeros(6, dtype=torch.long)         # one task: mean(d) over its signal rows only
    tok = token_advantages(adv.float(), logp, base, mask, task, signal, kl_lambda=0.5)
    d = logp - base
    mean_d = d[2:4].mean()
    assert torch.allclose(tok[2:4], adv[2:4, None].float() + 0.5 * (mean_d - d[2:4]))
    assert tok[[0, 1, 4, 5]].abs().max() == 0      # no policy loss and no KL shaping on constant groups


def test_kl_shaping_hand_computed():
    seq_adv = torch.tensor([1.0, -1.0])
    lp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    lb = torch.tensor([[-1.5, -2.0], [-1.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)
    task, signal = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.bool)
    # d = [[0.5, 0], [0.5, .]] -> mean over valid = 1/3
    got = token_advantages(seq_adv, lp, lb, mask, task, signal, kl_lambda=0.1)
    m = 1 / 3
    expected = torch.tensor([[1 + 0.1 * (m - 0.5), 1 + 0.1 * m], [-1 + 0.1 * (m - 0.5), 0.0]])
    assert torch.allclose(got, expected, atol=1e-7)
    assert torch.equal(token_advantages(seq_adv, lp, lb, mask, task, signal, 0.0), torch.tensor([[1.0, 1.0], [-1.0, 0.0]]))


def test_kl_mean_is_per_task():
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    logp, base = torch.tensor([[-1.0], [-2.0], [-5.0], [-6.0]]), torch.zeros(4, 1)
    mask = torch.ones(4, 1, dtype=torch.bool)
    tok = token_advantages(adv, logp, base, mask, torch.tensor([0, 0, 1, 1]), torch.ones(4, dtype=torch.bool), 1.0)
    # task 0: mean d = -1.5, shaping mean - d = -0.5, +0.5; task 1: mean d = -5.5, the same.
    # (one mean over all four rows, -3.5, would give 1 - 2.5, -1 - 1.5, 1 + 1.5, -1 + 2.5)
    assert tok.flatten().tolist() == [0.5, -0.5, 0.5, -0.5]


def test_lora_update_norm_equals_the_dense_delta_norm():
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=50, d_model=32, n_layers=1, n_heads=2, d_ff=64)
    m = GPT(cfg)
    inject_lora(m, LoRAConfig(rank=4, alpha=8.0), n_adapters=3)
    for _, mod in lora_modules(m):
        mod.lora_B.data.normal_()
    want = []
    torch.set_grad_enabled(False)
    for k in range(2):
        sq = sum(float(((mod.scale * mod.lora_B[k] @ mod.lora_A[k]) ** 2).sum()) for _, mod in lora_modules(m))
        want.append(math.sqrt(sq))
    torch.set_grad_enabled(True)
    assert lora_update_norms(m, 2) == pytest.approx(want, rel=1e-4)


def _reference_logprobs(model, prompts, comps, group_of_row, adapter_of_group):
    """The plain form: every row's prompt + completion as one right-padded sequence."""
    seqs = [prompts[g] + c for g, c in zip(group_of_row, comps)]
    T = max(map(len, seqs))
    idx = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        idx[i, :len(s)] = torch.tensor(s)
    rows = None if adapter_of_group is None else torch.tensor([adapter_of_group[g] for g in group_of_row])
    with adapters_for_rows(model, rows):
        logits, _ = model(idx[:, :-1])
    logp = torch.log_softmax(logits.float(), -1)
    out = torch.zeros(len(seqs), max(map(len, comps)))
    for i, (g, c) in enumerate(zip(group_of_row, comps)):
        p = len(prompts[g])
        out[i, :len(c)] = logp[i, p - 1:p - 1 + len(c)].gather(1, torch.tensor(c)[:, None]).squeeze(1)
    return out


def test_length_buckets_cut_where_padding_costs_most():
    assert length_buckets([3, 1, 4, 2, 3]) == [[0, 1, 2, 3, 4]]  # similar lengths: one pass
    lengths = [2] * 20 + [3] * 10 + [30]
    buckets = length_buckets(lengths)
    assert sorted(i for b in buckets for i in b) == list(range(31))
    assert buckets[-1] == [30] and len(buckets) >= 2  # the rambler runs alone
    assert all(b == sorted(b) for b in buckets)
    assert length_buckets([7]) == [[0]]


RAMBLER_COMPS = [[20, 21], [23], [24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34], [28, 29], [30, 31], [40], [41, 42]]


@pytest.mark.parametrize("comps", [None, RAMBLER_COMPS], ids=["similar", "rambler"])
@pytest.mark.parametrize("mhc", [4, 1])
def test_prompt_once_logprobs_equal_a_full_pass_per_row(mhc, comps):
    """Values and LoRA gradients of the prompt-once training pass equal the full pass per row,
    also when one long completion puts the rows into separate length buckets."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=60, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=64, mhc_streams=mhc)
    m = GPT(cfg)
    inject_lora(m, LoRAConfig(rank=4, alpha=8.0), n_adapters=2)
    for _, mod in lora_modules(m):
        mod.lora_B.data.normal_(0, 0.3)
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    if comps is None:
        comps = [[20, 21, 22], [23], [24, 25, 26, 27], [28, 29], [30, 31, 32]]
        group_of_row = [0, 0, 1, 2, 2]
    else:
        group_of_row = [0, 0, 1, 2, 2, 1, 0]
        assert len(length_buckets([len(c) for c in comps])) > 1
    adapter_of_group = [0, 1, 1]
    params = [p for _, mod in lora_modules(m) for p in (mod.lora_A, mod.lora_B)]
    weights = torch.randn(len(comps), max(len(c) for c in comps))

    def grads(fn):
        for p in params:
            p.grad = None
        lp = fn()
        (lp * weights[:, :lp.shape[1]]).sum().backward()
        return lp.detach(), [p.grad.clone() for p in params]

    got, g_got = grads(lambda: completion_logprobs(m, prompts, comps, group_of_row, adapter_of_group, torch.float32)[0])
    want, g_want = grads(lambda: _reference_logprobs(m, prompts, comps, group_of_row, adapter_of_group))
    assert torch.allclose(got, want, atol=1e-5)
    for a, b in zip(g_got, g_want):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    _, mask = completion_logprobs(m, prompts, comps, group_of_row, None, torch.float32)
    assert mask.sum(1).tolist() == [len(c) for c in comps]


# --- the loops on a tiny model ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("ttt")
    ckpt = make_tiny_checkpoint(d / "ckpt.pt", max_seq_len=256)
    rng = random.Random(0)
    fams = sorted(T.FAMILIES)
    tasks = [T.make_task(fams[i % len(fams)], rng, 1, "heldout") for i in range(3)]
    (d / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return {"dir": d, "ckpt": ckpt, "tasks": str(d / "tasks.jsonl"), "tokenizer": tiny_data["tokenizer"],
            "task_list": tasks}


def _cfg(**kw):
    base = dict(mode="ttt", ttt_steps=2, rollouts=6, max_new_tokens=5, groups=2, lr=1e-2)
    return D.DiscoveryConfig(**{**base, **kw})


def test_flops_are_counted_the_same_way_in_both_arms(tiny, tmp_path, monkeypatch):
    tok = Tokenizer(tiny["tokenizer"])
    model = load_model(tiny["ckpt"], torch.device("cpu"))
    task = tiny["task_list"][0]
    P = model.num_params()
    L = len(D.prompt_ids(tok, D.prompts.plain_prompt(task["prompt"])))
    res = D.run_bestofn(model, tok, [task], _cfg(mode="bestofn"), seed=0)[0]
    # 2 rounds: the prompt is prefilled once per round, every generated token decoded once
    assert res["flops"] == pytest.approx(2 * P * (2 * L + res["generated_tokens"]))
    inject_lora(model, LoRAConfig(), n_adapters=1)
    monkeypatch.setitem(T.FAMILIES, "digits", _Digits())  # a dense reward: the adapter moves at step 1
    task = {"task_id": "digits-0", "family": "digits", "split": "heldout", "prompt": "write digits", "spec": {},
            "difficulty": 1}
    L = len(D.prompt_ids(tok, D.prompts.plain_prompt(task["prompt"])))
    (tmp_path / "t").mkdir()
    res = D.run_ttt(model, tok, [task], _cfg(reuse=False, kl_lambda=0.1), [str(tmp_path / "t")], seed=0)[0]
    rows = [json.loads(x) for x in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    G1, G = rows[0]["generated_tokens"], res["generated_tokens"]
    assert rows[0]["lora_update_norm"] > 0
    # sampling as above; training: the prompt once per step and every completion token, forward +
    # backward (6), + the base's forward (2) from step 2 on (at step 1 the fresh adapters are the base)
    assert rows[0]["flops"] == pytest.approx(2 * P * (L + G1) + 6 * P * (L + G1))
    assert res["flops"] == pytest.approx(2 * P * (2 * L + G) + 6 * P * (L + G1) + 8 * P * (L + G - G1))
    assert rows[-1]["flops"] == res["flops"] and rows[-1]["generated_tokens"] == G


def _suite(tiny, out, *extra):
    return ["paper/run_discovery_suite.py", "--tasks", tiny["tasks"], "--ckpt", tiny["ckpt"], "--tokenizer",
            tiny["tokenizer"], "--out_root", str(out), "--seed", "3", "--ttt_steps", "2", "--rollouts", "6",
            "--max_new_tokens", "6", "--groups", "2", "--device", "cpu", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ttt", "bestofn"])
def test_a_tasks_result_does_not_depend_on_its_batch(tiny, tmp_path, mode):
    """The same task alone, and second in a batch of three, gives the same result.json."""
    run_script(*_suite(tiny, tmp_path / "batched", "--mode", mode, "--tasks_per_batch", "3"))
    run_script(*_suite(tiny, tmp_path / "alone", "--mode", mode, "--tasks_per_batch", "1", "--shard", "1/3"))
    tid = tiny["task_list"][1]["task_id"]
    a, b = (json.load(open(tmp_path / r / tid / "result.json")) for r in ("batched", "alone"))
    for r in (a, b):
        r.pop("wall_s")
    assert a == b
    if mode == "ttt":
        rows = [[json.loads(l) for l in open(tmp_path / r / tid / "metrics.jsonl")] for r in ("batched", "alone")]
        assert [x["mean_reward"] for x in rows[0]] == [x["mean_reward"] for x in rows[1]]


@pytest.mark.slow
def test_a_model_vocabulary_larger_than_the_tokenizer_never_samples_a_missing_piece(tiny, tmp_path):
    """Pretrain allows spare embedding rows; sampling must stay within the tokenizer's pieces."""
    from discover_distill.checkpoint import atomic_torch_save
    tok = Tokenizer(tiny["tokenizer"])
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=tok.vocab_size + 200, d_model=32,
                              n_layers=2, n_heads=2, d_ff=64, max_seq_len=256)
    m = GPT(cfg)
    with torch.no_grad():  # large spare rows (tied embeddings): an unmasked sampler would often pick them
        m.tok_emb.weight[tok.vocab_size:] *= 50
    s = generate(m, [[3, 5, 6]], [32], max_new_tokens=8, eos_id=tok.eos_id, generator=torch.Generator().manual_seed(0),
                 vocab_limit=tok.vocab_size)
    assert int(s.tokens[s.mask].max()) < tok.vocab_size
    assert tok.decode([5, tok.vocab_size + 7, 6]) == tok.decode([5, 6])
    ckpt = tmp_path / "wide.pt"
    atomic_torch_save({"model": m.state_dict(), "model_config": cfg.to_dict(), "step": 0}, str(ckpt))
    for mode in ("bestofn", "ttt"):
        args = _suite(tiny, tmp_path / mode, "--mode", mode)
        args[args.index("--ckpt") + 1] = str(ckpt)
        run_script(*args)


class _Digits(TaskFamily):
    """A dense toy reward: the share of answer characters that are digits."""
    name = "digits"

    def prompt(self, spec):
        return "write digits"

    def score(self, spec, answer):
        return sum(c.isdigit() for c in answer) / max(1, len(answer))


def test_ttt_raises_the_mean_sample_reward_on_a_dense_task(tiny, tmp_path, monkeypatch):
    """A property of the learner: with fixed seeds, TTT (no reuse, no KL) moves the policy towards
    higher reward; the same run with lr 0 (the ttt_lr0 control) does not."""
    monkeypatch.setitem(T.FAMILIES, "digits", _Digits())
    tok = Tokenizer(tiny["tokenizer"])
    task = {"task_id": "digits-0", "family": "digits", "split": "heldout", "prompt": "write digits", "spec": {},
            "difficulty": 1}

    def curve(lr):
        model = load_model(tiny["ckpt"], torch.device("cpu"))
        # A random init's tied embeddings (std 0.02, width 32) bound every logit by ~0.6: no adapter can
        # move that near-uniform policy. Scaled up, they give the logit range a trained model has.
        with torch.no_grad():
            model.tok_emb.weight.mul_(8.0)
        inject_lora(model, LoRAConfig(rank=8, alpha=16.0), n_adapters=1)
        out = tmp_path / f"lr{lr}"
        out.mkdir()
        cfg = _cfg(ttt_steps=12, rollouts=16, max_new_tokens=6, reuse=False, kl_lambda=0.0, lr=lr)
        D.run_ttt(model, tok, [task], cfg, [str(out)], seed=0)
        return [json.loads(l)["mean_reward"] for l in open(out / "metrics.jsonl")]

    learned, frozen = curve(3e-2), curve(0.0)
    first, last = sum(learned[:3]) / 3, sum(learned[-3:]) / 3
    assert last > first + 0.1, learned
    assert sum(frozen[-3:]) / 3 < first + 0.05, frozen


def test_group_advantages_at_once_equal_the_per_group_functions():
    """The padded, all-groups-at-once computation equals entropic/expected advantages and
    adaptive_beta group by group, for groups of unequal size whose rows are interleaved."""
    from discover_distill.objectives import adaptive_beta, entropic_advantages, expected_advantages
    gen = torch.Generator().manual_seed(0)
    sizes, scales = [5, 3, 8, 2, 4], [1e-3, 1.0, 1e4, 1.0, 1e9]
    group = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    group = group[torch.randperm(group.numel(), generator=gen)]
    rewards = torch.rand(group.numel(), generator=gen, dtype=torch.float64)
    rewards *= torch.tensor(scales, dtype=torch.float64)[group]
    rewards[group == 3] = 0.5                      # a constant group
    for objective, adaptive in (("entropic", True), ("entropic", False), ("expected", True)):
        adv, signal, betas = group_advantages(rewards, group, len(sizes), objective, adaptive, 2.0)
        for g in range(len(sizes)):
            rows = (group == g).nonzero().flatten()
            if g == 3:
                assert not signal[rows].any() and adv[rows].abs().max() == 0 and betas[g] is None
                continue
            if objective == "expected":
                want = expected_advantages(rewards[rows])
            else:
                b = adaptive_beta(rewards[rows]) if adaptive else 2.0
                assert betas[g] == pytest.approx(b, rel=1e-8)
                want = entropic_advantages(rewards[rows], b)
            assert torch.allclose(adv[rows], want, rtol=1e-6, atol=1e-9), (objective, g)


def test_curves_carry_cumulative_flops(tiny, tmp_path):
    """Both arms' best_curve records the FLOPs spent up to each round / step (the registry's
    curves against compute read them): increasing, ending at the task's total, and for TTT equal
    to its per-step metrics."""
    tok = Tokenizer(tiny["tokenizer"])
    model = load_model(tiny["ckpt"], torch.device("cpu"))
    task = tiny["task_list"][1]
    res = D.run_bestofn(model, tok, [task], _cfg(mode="bestofn", ttt_steps=3), seed=0)[0]
    curve = res["best_curve"]
    assert [c["samples"] for c in curve] == [6, 12, 18]
    assert 0 < curve[0]["flops"] < curve[1]["flops"] < curve[2]["flops"] == res["flops"]
    inject_lora(model, LoRAConfig(), n_adapters=1)
    (tmp_path / "t").mkdir()
    res = D.run_ttt(model, tok, [task], _cfg(), [str(tmp_path / "t")], seed=0)[0]
    rows = [json.loads(x) for x in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    assert [(c["samples"], c["flops"]) for c in res["best_curve"]] == [(r["samples"], r["flops"]) for r in rows]
    assert res["best_curve"][-1]["flops"] == res["flops"]
