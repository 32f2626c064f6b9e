"""GPT: KV-cache decoding equals full recompute, left-padded batches, training sanity, parameter
and FLOP accounting, optimizer groups and init."""
import dataclasses
import math

import pytest
import torch

from conftest import TINY_MODEL
from discover_distill.config import load_model_config
from discover_distill.model import GPT

V = 101


def small(**overrides):
    cfg = load_model_config(TINY_MODEL)
    return dataclasses.replace(cfg, **(dict(vocab_size=V, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                                            max_seq_len=64) | overrides))


@pytest.mark.parametrize("streams", [4, 1])
def test_kv_cache_decoding_matches_full_recompute(streams):
    torch.manual_seed(0)
    model = GPT(small(mhc_streams=streams)).eval()
    prompt = torch.randint(0, V, (1, 8))
    # each of 4 rollouts continues the shared prompt with its own 6 tokens
    tails = torch.randint(0, V, (4, 6))
    seqs = torch.cat([prompt.expand(4, -1), tails], dim=1)
    full, _ = model(seqs)
    with torch.no_grad():
        cache = model.new_kv_cache(1, 32, device="cpu", dtype=torch.float32)
        first, _ = model(prompt[:, :5], kv_cache=cache, pos=0)         # prefill part of the prompt
        assert torch.allclose(first, full[:1, :5], atol=1e-5)
        for t in range(5, 8):                                           # then one token at a time
            step, _ = model(prompt[:, t:t + 1], kv_cache=cache, pos=t)
            assert torch.allclose(step, full[:1, t:t + 1], atol=1e-5)
        cache4 = cache.expand(4)                                        # the prompt's cache, 4 rollouts
        assert cache4.batch_size == 4 and cache.batch_size == 1
        step, _ = model(tails[:, :1], kv_cache=cache4, pos=8)
        assert torch.allclose(step, full[:, 8:9], atol=1e-5)
        chunk, _ = model(tails[:, 1:3], kv_cache=cache4, pos=9)          # several new tokens at pos > 0
        assert torch.allclose(chunk, full[:, 9:11], atol=1e-5)
        for t in range(11, 14):
            step, _ = model(seqs[:, t:t + 1], kv_cache=cache4, pos=t)
            assert torch.allclose(step, full[:, t:t + 1], atol=1e-5)


def test_kv_cache_under_bf16_autocast_matches_full_recompute():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    idx = torch.randint(0, V, (2, 10))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        full, _ = model(idx)
        cache = model.new_kv_cache(2, 16)  # fp32 cache, bf16 attention
        model(idx[:, :6], kv_cache=cache, pos=0)
        for t in range(6, 10):
            step, _ = model(idx[:, t:t + 1], kv_cache=cache, pos=t)
            assert torch.allclose(step.float(), full[:, t:t + 1].float(), atol=2e-2)


def test_sequence_and_cache_limits_are_checked():
    model = GPT(small(max_seq_len=16))
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        model.new_kv_cache(1, 32)
    assert model.new_kv_cache(3).k[0].shape == (3, 2, 16, 16)


def test_left_padded_batch_matches_unpadded_rows():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    a, b = torch.randint(4, V, (1, 10)), torch.randint(4, V, (1, 6))
    want_a, _ = model(a)
    want_b, _ = model(b)
    idx = torch.cat([a, torch.cat([torch.zeros(1, 4, dtype=torch.long), b], 1)])
    key_mask = torch.ones(2, 10, dtype=torch.bool)
    key_mask[1, :4] = False
    positions = (torch.arange(10)[None] - torch.tensor([[0], [4]])).clamp_min(0)
    got, _ = model(idx, positions=positions, key_mask=key_mask)
    assert torch.allclose(got[0], want_a[0], atol=1e-5) and torch.allclose(got[1, 4:], want_b[0], atol=1e-5)


def test_loss_is_mean_cross_entropy_with_ignore_index():
    torch.manual_seed(0)
    model = GPT(small())
    idx, targets = torch.randint(0, V, (2, 7)), torch.randint(0, V, (2, 7))
    targets[0, :3] = -100
    logits, loss = model(idx, targets=targets)
    keep = targets != -100
    want = -torch.log_softmax(logits, -1)[keep].gather(-1, targets[keep][:, None]).mean()
    assert torch.allclose(loss, want, atol=1e-6)
    assert model(idx)[1] is None


def test_training_lowers_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = GPT(small())
    opt = model.configure_optimizer(weight_decay=0.1, lr=3e-3)
    idx = torch.randint(0, V, (4, 24))
    losses = []
    for _ in range(20):
        _, loss = model(idx[:, :-1], targets=idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(V), rel=0.1)  # the init predicts ~uniformly
    assert losses[-1] < 0.7 * losses[0]


def test_embedding_is_tied_and_init_scales_output_projections():
    torch.manual_seed(0)
    cfg = small(d_model=256, n_heads=4, d_ff=512, n_layers=8)
    model = GPT(cfg)
    assert model.num_params() == sum(p.numel() for p in model.parameters())
    assert model.num_params() - model.num_params(exclude_embeddings=True) == V * 256  # one shared matrix
    assert not any(n.startswith(("lm_head", "head")) for n, _ in model.named_parameters())
    assert not any(n.endswith(".bias") for n, _ in model.named_parameters())
    block = model.layers[3]
    assert block.attn.fn.wq.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for w in (block.attn.fn.wo.weight, block.mlp.fn.w2.weight):
        assert w.std().item() == pytest.approx(0.02 / math.sqrt(2 * 8), rel=0.05)


def test_flops_per_token_is_6n_plus_attention():
    model = GPT(small())
    cfg = model.cfg
    assert model.flops_per_token(16) == 6 * model.num_params() + 12 * cfg.n_layers * cfg.d_model * 16


def test_optimizer_decays_matrices_only():
    model = GPT(small())
    opt = model.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    no_decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decay | no_decay == set(names.values()) and not decay & no_decay
    assert "layers.0.attn.fn.wq.weight" in decay and "layers.1.mlp.fn.w2.weight" in decay
    assert "layers.0.attn.coef.phi" in decay
    for name in ("tok_emb.weight", "norm_f.weight", "layers.0.attn.fn.norm.weight", "layers.0.attn.coef.b_res",
                 "layers.0.attn.coef.b_pre", "layers.0.mlp.coef.alpha_res"):
        assert name in no_decay
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


def test_eager_cpu_forms_of_rmsnorm_and_rope_match_the_composite_forms(monkeypatch):
    """On a CPU in eager fp32, RMSNorm and RoPE run as hand-written autograd Functions (fewer
    passes over memory). They must give the composite forms' values and gradients; gradcheck pins
    each backward, and the whole model's loss and gradients must not depend on the form."""
    import torch.nn.functional as F
    from discover_distill import model as model_module
    from discover_distill.model import RMSNorm, _RMSNormFn, _RopeFn, apply_rope

    torch.manual_seed(0)
    x64 = (torch.randn(2, 3, 5, 8, dtype=torch.float64) * 3).requires_grad_()
    w64 = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _RMSNormFn.apply(a, b, 1e-6), (x64, w64))
    cos, sin = torch.randn(1, 1, 5, 4, dtype=torch.float64), torch.randn(1, 1, 5, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: _RopeFn.apply(a, cos, sin), (x64,))

    # RMSNorm module (Function) against F.rms_norm, values and both gradients
    norm = RMSNorm(16, 1e-6)
    norm.weight.data.normal_()
    x = torch.randn(4, 6, 16, requires_grad=True)
    g = torch.randn(4, 6, 16)
    got = norm(x)
    got_grads = torch.autograd.grad(got, (x, norm.weight), g)
    want = F.rms_norm(x, (16,), norm.weight, 1e-6)
    want_grads = torch.autograd.grad(want, (x, norm.weight), g)
    assert torch.allclose(got, want, atol=1e-6)
    for a, b in zip(got_grads, want_grads):
        assert torch.allclose(a, b, atol=1e-5)

    # RoPE on q as the model makes it (a transposed view), with per-row positions: the rotation
    # written out by hand, and the output keeps the input's strides
    B, T, H, D = 2, 5, 3, 8
    q = torch.randn(B, T, H * D).view(B, T, H, D).transpose(1, 2).requires_grad_()
    angles = torch.rand(B, 1, T, D // 2) * 6
    cos, sin = angles.cos(), angles.sin()
    got = apply_rope(q, cos, sin)
    x1, x2 = q[..., :D // 2], q[..., D // 2:]
    want = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    g = torch.randn(B, H, T, D)
    assert got.stride() == q.stride() and torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(torch.autograd.grad(got, q, g)[0], torch.autograd.grad(want, q, g)[0], atol=1e-6)

    # the whole model, mHC on and off: same loss and gradients with either form
    for streams in (4, 1):
        torch.manual_seed(1)
        model = GPT(small(mhc_streams=streams))
        idx = torch.randint(0, V, (2, 12))
        results = []
        for eager in (True, False):
            monkeypatch.setattr(model_module, "_eager_fp32", lambda t, eager=eager: eager)
            model.zero_grad()
            _, loss = model(idx, idx)
            loss.backward()
            results.append([loss.detach()] + [p.grad.clone() for p in model.parameters()])
        for a, b in zip(*results):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (a - b).abs().max()


@pytest.mark.parametrize("streams", [4, 1])
def test_fused_qkv_and_gate_up_gemms_equal_the_separate_projections(streams, monkeypatch):
    """Q/K/V and gate/up run as one GEMM each on the stacked weights: same logits and the same
    gradient for every separate weight as projecting one by one; LoRA-wrapped ones stay separate."""
    import discover_distill.model as model_module
    from discover_distill.lora import LoRAConfig, inject_lora
    torch.manual_seed(0)
    model = GPT(dataclasses.replace(load_model_config(TINY_MODEL), mhc_streams=streams))
    idx = torch.randint(0, model.cfg.vocab_size, (2, 12))
    calls = []
    fused = model_module.fused_linear
    assert fused(torch.randn(2, 32), (torch.nn.Linear(32, 4, bias=False),))[0].shape == (2, 4)  # CPU: unfused
    monkeypatch.setattr(model_module, "fused_linear", lambda h, ls: calls.append(len(ls)) or fused(h, ls, fuse=True))
    results = []
    for split in (False, True):
        if split:
            monkeypatch.setattr(model_module, "fused_linear", lambda h, ls: tuple(l(h) for l in ls))
        model.zero_grad()
        logits, loss = model(idx, targets=idx)
        loss.backward()
        results.append([logits.detach()] + [p.grad.clone() for p in model.parameters()])
    assert calls == [3, 2] * model.cfg.n_layers
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    inject_lora(model, LoRAConfig(rank=2), n_adapters=1)
    monkeypatch.setattr(model_module, "fused_linear", fused)
    wrapped = model.layers[0].attn.fn
    h = torch.randn(1, 3, model.cfg.d_model)
    assert all(torch.equal(a, l(h)) for a, l in zip(fused(h, (wrapped.wq, wrapped.wk), fuse=True),
                                                    (wrapped.wq, wrapped.wk)))
