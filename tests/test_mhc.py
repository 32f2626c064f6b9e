"""Pins what mHC reimplementations commonly get wrong (DESIGN §4)."""
import dataclasses

import torch
import torch.nn.functional as F

from conftest import TINY_MODEL
from discover_distill.config import load_model_config
from discover_distill.mhc import MHCCoefficients, sinkhorn
from discover_distill.model import GPT


def tiny(**overrides):
    cfg = load_model_config(TINY_MODEL)
    return dataclasses.replace(cfg, vocab_size=97, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_seq_len=64,
                               **overrides)


def test_sinkhorn_is_doubly_stochastic():
    torch.manual_seed(0)
    bias = torch.full((4, 4), -3.0).fill_diagonal_(0.0)  # the model's static part
    m = sinkhorn(bias + 0.2 * torch.randn(5, 7, 4, 4), 20)
    assert (m.sum(-1) - 1).abs().max() < 1e-5 and (m.sum(-2) - 1).abs().max() < 1e-3
    # extreme logits: the log-domain iteration stays finite and rows stay exact
    m = sinkhorn(torch.randn(5, 7, 4, 4) * 1e4, 20)
    assert torch.isfinite(m).all() and (m >= 0).all() and (m.sum(-1) - 1).abs().max() < 1e-5


def test_h_res_row_and_column_sums_in_the_model():
    torch.manual_seed(0)
    model = GPT(tiny())
    seen = []
    for layer in model.layers:
        for sub in (layer.attn, layer.mlp):
            sub.coef.alpha_res.data.fill_(1.0)  # 100x the init gate: the dynamic part matters
            sub.coef.register_forward_hook(lambda mod, inp, out: seen.append(out[2]))
    model(torch.randint(0, 97, (3, 10)))
    assert len(seen) == 4
    for h_res in seen:
        assert (h_res.sum(-1) - 1).abs().max() < 1e-3 and (h_res.sum(-2) - 1).abs().max() < 1e-3


def test_h_res_is_really_applied():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    sub = model.layers[1].attn
    x = torch.randn(2, 6, 4, 32)  # distinct streams
    cos, sin = model.rope_cos[:6][None, None], model.rope_sin[:6][None, None]
    out = sub(x, cos=cos, sin=sin)
    pre, post, res = sub.coef(x)
    f = sub.fn(torch.einsum("btn,btnc->btc", pre, x), cos=cos, sin=sin)
    want = torch.einsum("btij,btjc->btic", res, x) + post[..., None] * f[:, :, None]
    assert torch.allclose(out, want, atol=1e-5)  # x <- H_res x + H_post^T F(H_pre x), literally
    with torch.no_grad():
        sub.coef.b_res.add_(torch.randn(4, 4))
    assert (sub(x, cos=cos, sin=sin) - out).abs().max() > 0.1
    # and in the whole model, perturbing H_res changes the logits
    idx = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        sub.coef.b_res.sub_(sub.coef.b_res).add_(torch.full((4, 4), -3.0).fill_diagonal_(0.0))
    base, _ = model(idx)
    with torch.no_grad():
        sub.coef.b_res.add_(torch.randn(4, 4))
    assert (model(idx)[0] - base).abs().max() > 1e-6


def test_gates_scale_only_the_dynamic_part_and_biases_always_apply():
    coef = MHCCoefficients(n=4, d_model=8, layer_index=1)
    x = torch.randn(1, 3, 4, 8)
    with torch.no_grad():
        coef.alpha_pre.zero_(); coef.alpha_post.zero_(); coef.alpha_res.zero_()
    pre, post, res = coef(x)
    # with the gates at 0 only the static biases remain, and they are applied
    assert torch.allclose(pre, torch.sigmoid(coef.b_pre).expand_as(pre))
    assert torch.allclose(post, 2 * torch.sigmoid(coef.b_post).expand_as(post))
    assert torch.allclose(res, sinkhorn(coef.b_res.detach(), 20).expand_as(res), atol=1e-6)
    with torch.no_grad():
        coef.alpha_pre.fill_(1.0)
    assert not torch.allclose(coef(x)[0], pre)


def test_streams_persist_between_blocks_and_diverge_with_training():
    torch.manual_seed(0)
    model = GPT(tiny())
    captured = []
    model.layers[1].attn.register_forward_pre_hook(lambda mod, args, kwargs: captured.append(args[0].detach()),
                                                   with_kwargs=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    idx = torch.randint(0, 97, (4, 16))
    for _ in range(5):
        captured.clear()
        _, loss = model(idx, targets=torch.roll(idx, -1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = captured[-1]
    assert x.shape == (4, 16, 4, 32)  # n streams of width C between blocks, not collapsed
    spread = (x - x.mean(dim=2, keepdim=True)).abs().max()
    assert spread > 1e-3 * x.abs().max()


def test_expand_and_collapse_happen_once():
    torch.manual_seed(0)
    model = GPT(tiny())
    shapes = []
    for layer in model.layers:
        layer.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape)))
    model(torch.randint(0, 97, (2, 5)))
    assert shapes == [(2, 5, 4, 32), (2, 5, 4, 32)]


def test_n1_is_exactly_a_plain_prenorm_residual_net():
    torch.manual_seed(0)
    model = GPT(tiny(mhc_streams=1)).eval()
    assert not any(".coef." in n for n, _ in model.named_parameters())
    idx = torch.randint(0, 97, (2, 9))
    got, _ = model(idx)
    # hand-written pre-norm residual network with the same weights
    T = idx.shape[1]
    cos, sin = model.rope_cos[:T][None, None], model.rope_sin[:T][None, None]
    h = model.tok_emb(idx)
    for layer in model.layers:
        a = layer.attn.fn
        B, _, C = h.shape
        z = F.rms_norm(h, (C,), a.norm.weight, a.norm.eps)
        q, k, v = (w(z).view(B, T, a.n_heads, a.head_dim).transpose(1, 2) for w in (a.wq, a.wk, a.wv))
        from discover_distill.model import apply_rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        h = h + a.wo(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))
        m = layer.mlp.fn
        z = F.rms_norm(h, (C,), m.norm.weight, m.norm.eps)
        h = h + m.w2(F.silu(m.w1(z)) * m.w3(z))
    want = F.linear(F.rms_norm(h, (h.shape[-1],), model.norm_f.weight, model.norm_f.eps), model.tok_emb.weight)
    assert torch.allclose(got, want, atol=1e-6)


def test_coefficients_stay_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    model = GPT(tiny())
    dtypes = []
    model.layers[0].attn.coef.register_forward_hook(lambda mod, inp, out: dtypes.extend(o.dtype for o in out))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(torch.randint(0, 97, (1, 6)))
    assert dtypes == [torch.float32] * 3 and torch.isfinite(logits.float()).all()
