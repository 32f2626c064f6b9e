import dataclasses

import torch

from conftest import TINY_MODEL
from discover_distill.config import load_model_config
from discover_distill.lora import LoRAConfig, inject_lora
from discover_distill.model import GPT
from discover_distill.sampling import generate, generate_naive, sample_next

EOS = 3


def model():
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=50, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=64)
    return GPT(cfg).eval()


def test_greedy_batched_cached_equals_naive_full_recompute():
    m = model()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]
    s = generate(m, prompts, [2, 1, 3], max_new_tokens=8, eos_id=EOS, temperature=0)
    assert s.tokens.shape == (6, 8) and s.prompt_index.tolist() == [0, 0, 1, 2, 2, 2]
    for row in range(6):
        p = prompts[s.prompt_index[row]]
        want = generate_naive(m, p, 1, max_new_tokens=8, eos_id=EOS, temperature=0)[0]
        got = [t for t, k in zip(s.tokens[row].tolist(), s.mask[row].tolist()) if k]
        assert got == want


def test_sampling_is_deterministic_under_a_seed_and_masks_after_eos():
    m = model()
    run = lambda seed: generate(m, [[5, 6, 7]], [16], max_new_tokens=12, eos_id=EOS,
                                generator=torch.Generator().manual_seed(seed))
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    for row in range(16):
        toks, mask = a.tokens[row].tolist(), a.mask[row].tolist()
        if EOS in toks:
            k = toks.index(EOS)
            assert all(mask[:k + 1]) and not any(mask[k + 1:])
    assert torch.all(a.logprobs[a.mask] <= 0) and torch.all(a.logprobs[~a.mask] == 0)


def test_stop_strings_end_rows():
    m = model()
    decode = lambda ids: "".join("|" if i == 7 else "x" for i in ids)
    s = generate(m, [[5, 6]], [32], max_new_tokens=10, eos_id=EOS, stop_strings=("||",), decode=decode,
                 generator=torch.Generator().manual_seed(0), temperature=3.0)
    for row in range(32):
        toks = [t for t, k in zip(s.tokens[row].tolist(), s.mask[row].tolist()) if k]
        text = decode(toks)
        if "||" in text:
            assert text.endswith("||") and s.finished[row]


def test_top_p_keeps_the_nucleus_only():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next(logits, 1.0, 0.7, g)[0]) for _ in range(300)}
    assert seen == {0, 1}


def test_rows_use_their_own_adapter():
    m = model()
    inject_lora(m, LoRAConfig(rank=2, alpha=4), n_adapters=2)
    for _, mod in m.named_modules():
        if hasattr(mod, "lora_B"):
            with torch.no_grad():
                mod.lora_B[1].normal_(0, 1.0)
    prompts = [[5, 6, 7], [5, 6, 7]]
    s = generate(m, prompts, [1, 1], max_new_tokens=6, eos_id=EOS, temperature=0, adapter_ids=[0, 1])
    plain = generate(m, prompts[:1], [1], max_new_tokens=6, eos_id=EOS, temperature=0, adapter_ids=[0])
    assert torch.equal(s.tokens[0], plain.tokens[0]) and not torch.equal(s.tokens[0], s.tokens[1])
