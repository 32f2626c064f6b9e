"""Pins what mHC reimplementations commonly get wrong (DESIGN §4): H_res computed but never
applied, nonlinearities applied to the dynamic part only, streams expanded/collapsed per block,
streams that stay identical, coefficient math in low precision, n = 1 not being a plain net."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

import discover_distill.model as model_module
from conftest import TINY_MODEL
from discover_distill.config import load_model_config
from discover_distill.mhc import MHCCoefficients, MHCSublayer, sinkhorn, static_biases
from discover_distill.model import GPT, apply_rope

V, C = 97, 32


def tiny(**overrides):
    cfg = load_model_config(TINY_MODEL)
    small = dict(vocab_size=V, d_model=C, n_layers=2, n_heads=2, d_ff=64, max_seq_len=64)
    return dataclasses.replace(cfg, **(small | overrides))


def sublayers(model):
    return [sub for layer in model.layers for sub in (layer.attn, layer.mlp)]


def reference_sinkhorn(logits, iters):
    """The textbook algorithm in float64: exp, then alternately divide by column and row sums."""
    p = logits.double().exp()
    for _ in range(iters):
        p = p / p.sum(-2, keepdim=True)
        p = p / p.sum(-1, keepdim=True)
    return p


def test_sinkhorn_is_the_alternating_column_row_normalisation():
    torch.manual_seed(0)
    logits = torch.randn(50, 4, 4)
    for iters in (1, 3, 20):
        assert torch.allclose(sinkhorn(logits, iters).double(), reference_sinkhorn(logits, iters), atol=1e-5)
    assert sinkhorn(logits, 20).dtype == torch.float32


def test_sinkhorn_is_doubly_stochastic_and_safe_for_large_logits():
    torch.manual_seed(0)
    for logits in (torch.randn(2000, 4, 4),                                       # random logits, std 1
                   static_biases(4, 0)[2] + 0.05 * torch.randn(2000, 4, 4),       # the model's init regime
                   torch.randn(300, 3, 3)):
        m = sinkhorn(logits, 20)
        assert (m.sum(-1) - 1).abs().max() < 1e-5 and (m.sum(-2) - 1).abs().max() < 1e-3
    # extreme logits: no overflow, no NaN, rows still exact, and the gradient stays finite
    logits = (torch.randn(64, 4, 4) * 1e4).requires_grad_()
    m = sinkhorn(logits, 20)
    assert torch.isfinite(m).all() and (m >= 0).all() and (m.sum(-1) - 1).abs().max() < 1e-5
    (m * torch.randn(64, 4, 4)).sum().backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_sinkhorn_gradient_matches_autograd_through_the_reference(scale):
    """The hand-written backward gives the gradient of the textbook algorithm, differentiated by
    autograd in float64."""
    torch.manual_seed(0)
    logits = torch.randn(64, 4, 4, dtype=torch.float64) * scale
    weights = torch.randn(64, 4, 4, dtype=torch.float64)
    for iters in (1, 3, 20):
        ref = logits.clone().requires_grad_()
        (reference_sinkhorn(ref, iters) * weights).sum().backward()
        x = logits.float().requires_grad_()
        out = sinkhorn(x, iters)
        (out.double() * weights).sum().backward()
        assert torch.allclose(out.double(), reference_sinkhorn(logits, iters), atol=1e-5)
        assert torch.allclose(x.grad.double(), ref.grad, atol=1e-4), iters


@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4), (1, 1, 4, 4)])
def test_sinkhorn_backward_with_a_single_matrix(shape):
    """B*T = 1 (one token, e.g. the first decode step): the permuted incoming gradient is then
    already contiguous; the backward must still return (and work on) a fresh tensor, since a
    custom op's output may not alias its input and the caller's gradient must stay untouched."""
    torch.manual_seed(0)
    logits = torch.randn(shape, dtype=torch.float64)
    weights = torch.randn(shape, dtype=torch.float64)
    ref = logits.clone().requires_grad_()
    (reference_sinkhorn(ref, 20) * weights).sum().backward()
    x = logits.float().requires_grad_()
    out = sinkhorn(x, 20)
    grad_out = weights.float()
    out.backward(grad_out)
    assert torch.allclose(x.grad.double(), ref.grad, atol=1e-4)
    assert torch.equal(grad_out, weights.float())


def test_model_forward_backward_on_a_single_token():
    torch.manual_seed(0)
    model = GPT(tiny())
    logits, _ = model(torch.randint(0, V, (1, 1)))
    logits.float().square().mean().backward()
    coef_grads = [sub.coef.alpha_res.grad for sub in sublayers(model)]
    assert all(g is not None and torch.isfinite(g) for g in coef_grads)


TRITON_CHECK = """
import torch
from discover_distill import mhc, mhc_triton
torch.manual_seed(0)
dev = "cuda" if torch.cuda.is_available() else "cpu"
for M, scale in ((1000, 1.0), (37, 5.0), (64, 1e4)):
    logits = (torch.randn(M, 4, 4) * scale).to(dev)
    grad = torch.randn(M, 4, 4).to(dev)
    want = mhc._sinkhorn_fwd_torch(logits.clone(), 20)
    got = mhc_triton.sinkhorn_fwd(logits, 20, mhc._FLOOR)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), (M, scale, (a - b).abs().max())
    g_want = mhc._sinkhorn_bwd_torch(grad, logits.clone(), *want[1:])
    g_got = mhc_triton.sinkhorn_bwd(grad, logits, *got[1:], mhc._FLOOR)
    assert torch.isfinite(g_got).all()
    assert torch.allclose(g_got, g_want, rtol=1e-4, atol=1e-5), (M, scale, (g_got - g_want).abs().max())
print("triton sinkhorn ok on", dev)
"""


def test_triton_sinkhorn_matches_the_torch_implementation():
    """The fused CUDA kernels compute what the torch code does, forward state and gradient. Runs
    on a GPU, or on CPU through Triton's interpreter where triton is installed; skipped otherwise."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"  # must be set before triton is imported
    res = subprocess.run([sys.executable, "-c", TRITON_CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "triton sinkhorn ok" in res.stdout


def test_h_res_row_and_column_sums_in_the_model():
    torch.manual_seed(0)
    model = GPT(tiny())
    seen = []
    for sub in sublayers(model):
        sub.coef.alpha_res.data.fill_(1.0)  # 100x the init gate: the dynamic part matters
        sub.coef.register_forward_hook(lambda mod, inp, out: seen.append(out[2]))
    model(torch.randint(0, V, (3, 10)))
    assert len(seen) == 4
    for h_res in seen:
        assert h_res.shape == (3, 10, 4, 4)
        assert (h_res.sum(-1) - 1).abs().max() < 1e-3 and (h_res.sum(-2) - 1).abs().max() < 1e-3
        assert h_res.std(dim=(0, 1)).max() > 1e-4  # per-token (dynamic), not one static matrix


def test_update_is_literally_h_res_x_plus_h_post_f_of_h_pre_x():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    sub = model.layers[1].attn
    with torch.no_grad():
        sub.coef.alpha_pre.fill_(0.5), sub.coef.alpha_post.fill_(0.5), sub.coef.alpha_res.fill_(0.5)
    x = torch.randn(2, 6, 4, C)  # distinct streams
    cos, sin = model.rope_cos[:6][None, None], model.rope_sin[:6][None, None]
    out = sub(x, cos=cos, sin=sin)
    pre, post, res = sub.coef(x)
    f = sub.fn(torch.einsum("btn,btnc->btc", pre, x), cos=cos, sin=sin)
    want = torch.einsum("btij,btjc->btic", res, x) + post[..., None] * f[:, :, None]
    assert torch.allclose(out, want, atol=1e-5)


@pytest.mark.parametrize("perturb", ["b_res", "phi_res"])
def test_h_res_is_really_applied(perturb):
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    sub = model.layers[0].mlp  # its input streams already differ (the attention wrote unevenly)
    x = torch.randn(2, 6, 4, C)
    out = sub(x)
    with torch.no_grad():
        if perturb == "b_res":
            sub.coef.b_res.add_(torch.randn(4, 4))
        else:  # the H_res columns of phi (the last n^2) only feed the Sinkhorn input
            sub.coef.phi[:, 8:].mul_(50.0)
            sub.coef.alpha_res.fill_(1.0)
    assert (sub(x) - out).abs().max() > 1e-2


def test_h_res_moves_content_between_streams_in_the_model():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    sub = model.layers[0].mlp
    seen = []
    sub.register_forward_hook(lambda mod, inp, o: seen.append((inp[0].detach(), o.detach())))
    idx = torch.randint(0, V, (2, 12))
    logits, _ = model(idx)
    with torch.no_grad():  # H_res ~ a cyclic permutation of the streams
        sub.coef.b_res.copy_(torch.full((4, 4), -10.0) + 20.0 * torch.eye(4).roll(1, dims=1))
    perm_logits, _ = model(idx)
    (x, before), (_, after) = seen
    spread = (x - x.mean(dim=2, keepdim=True)).abs().max()
    assert spread > 0
    # the streams leaving the sublayer differ by about the (small, at init) differences between
    # the streams entering it; their sum is unchanged, as H_res is doubly stochastic
    assert (after - before).abs().max() > 0.5 * spread
    assert torch.allclose(after.sum(2), before.sum(2), atol=1e-6)
    assert not torch.equal(perm_logits, logits)


def test_nonlinearities_act_on_static_plus_dynamic_coefficients():
    torch.manual_seed(0)
    coef = MHCCoefficients(n=4, d_model=8, layer_index=1)
    with torch.no_grad():
        coef.alpha_pre.fill_(0.7), coef.alpha_post.fill_(-0.4), coef.alpha_res.fill_(0.9)
        coef.b_pre.add_(torch.randn(4)), coef.b_post.add_(torch.randn(4)), coef.b_res.add_(torch.randn(4, 4))
    x = torch.randn(2, 3, 4, 8)
    pre, post, res = coef(x)
    flat = x.flatten(-2)
    h = (flat / flat.pow(2).mean(-1, keepdim=True).add(coef.eps).sqrt()) @ coef.phi  # v = RMSNorm(flatten(x))
    want_pre = torch.sigmoid(0.7 * h[..., :4] + coef.b_pre)
    want_post = 2 * torch.sigmoid(-0.4 * h[..., 4:8] + coef.b_post)
    want_res = reference_sinkhorn(0.9 * h[..., 8:].unflatten(-1, (4, 4)) + coef.b_res, 20)
    assert torch.allclose(pre, want_pre, atol=1e-6) and torch.allclose(post, want_post, atol=1e-6)
    assert torch.allclose(res.double(), want_res, atol=1e-5)
    # with the gates at 0 only the static part remains, still through the nonlinearities
    with torch.no_grad():
        coef.alpha_pre.zero_(), coef.alpha_post.zero_(), coef.alpha_res.zero_()
    pre, post, res = coef(x)
    assert torch.allclose(pre, torch.sigmoid(coef.b_pre).expand_as(pre))
    assert torch.allclose(post, 2 * torch.sigmoid(coef.b_post).expand_as(post))
    assert torch.allclose(res.double(), reference_sinkhorn(coef.b_res.detach(), 20).expand_as(res), atol=1e-5)


def test_init_favours_a_rotating_stream_near_identity_mixing():
    model = GPT(tiny(n_layers=3))
    favoured = [int(sub.coef.b_pre.argmax()) for sub in sublayers(model)]
    assert favoured == [0, 1, 2, 3, 0, 1]  # one per sublayer, so the streams diverge from the start
    for sub in sublayers(model):
        c = sub.coef
        alphas = [a.detach().item() for a in (c.alpha_pre, c.alpha_post, c.alpha_res)]
        assert alphas == pytest.approx([0.01] * 3)
        assert 0.015 < c.phi.detach().std().item() < 0.025
        assert torch.diagonal(sinkhorn(c.b_res.detach(), 20)).min() > 0.8


def test_streams_persist_between_blocks_and_diverge_with_training():
    torch.manual_seed(0)
    model = GPT(tiny())
    captured = []
    model.layers[1].attn.register_forward_pre_hook(lambda mod, args, kwargs: captured.append(args[0].detach()),
                                                   with_kwargs=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    idx = torch.randint(0, V, (4, 16))
    for _ in range(5):
        captured.clear()
        _, loss = model(idx, targets=torch.roll(idx, -1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = captured[-1]
    assert x.shape == (4, 16, 4, C)  # n streams of width C between blocks, not collapsed
    # not identical, and not mere rescaled copies of one another either
    spread = (x - x.mean(dim=2, keepdim=True)).abs().max()
    assert spread > 1e-2 * x.abs().max()
    unit = F.normalize(x, dim=-1)
    cosine = torch.einsum("btic,btjc->btij", unit, unit)
    off_diagonal = cosine[..., ~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.mean() < 0.999


def test_expand_and_collapse_happen_once(monkeypatch):
    torch.manual_seed(0)
    model = GPT(tiny(n_layers=3))
    calls = {"expand": 0, "collapse": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(model_module, "expand_streams", counted("expand", model_module.expand_streams))
    monkeypatch.setattr(model_module, "collapse_streams", counted("collapse", model_module.collapse_streams))
    shapes = []
    for layer in model.layers:
        layer.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape)))
    model(torch.randint(0, V, (2, 5)))
    assert calls == {"expand": 1, "collapse": 1}
    assert shapes == [(2, 5, 4, C)] * 3


def test_n1_is_exactly_a_plain_prenorm_residual_net():
    torch.manual_seed(0)
    model = GPT(tiny(mhc_streams=1)).eval()
    assert not any(".coef." in n for n, _ in model.named_parameters())
    idx = torch.randint(0, V, (2, 9))
    got, _ = model(idx)
    # hand-written pre-norm residual network with the same weights
    B, T = idx.shape
    cos, sin = model.rope_cos[:T][None, None], model.rope_sin[:T][None, None]
    h = model.tok_emb(idx)
    for layer in model.layers:
        a = layer.attn.fn
        z = F.rms_norm(h, (C,), a.norm.weight, a.norm.eps)
        q, k, v = (w(z).view(B, T, a.n_heads, a.head_dim).transpose(1, 2) for w in (a.wq, a.wk, a.wv))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        h = h + a.wo(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))
        m = layer.mlp.fn
        z = F.rms_norm(h, (C,), m.norm.weight, m.norm.eps)
        h = h + m.w2(F.silu(m.w1(z)) * m.w3(z))
    want = F.linear(F.rms_norm(h, (C,), model.norm_f.weight, model.norm_f.eps), model.tok_emb.weight)
    assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("streams", [4, 1])
def test_coefficients_and_residual_stay_fp32_under_bf16_autocast(streams):
    torch.manual_seed(0)
    model = GPT(tiny(mhc_streams=streams))
    coef_dtypes, stream_dtypes = [], []
    for sub in sublayers(model):
        if sub.coef is not None:
            sub.coef.register_forward_hook(lambda mod, inp, out: coef_dtypes.extend(o.dtype for o in out))
        sub.register_forward_hook(lambda mod, inp, out: stream_dtypes.append(out.dtype))
    idx = torch.randint(0, V, (2, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, targets=idx)
    loss.backward()
    assert coef_dtypes == ([torch.float32] * 12 if streams > 1 else [])
    assert stream_dtypes == [torch.float32] * 4  # only F runs in bf16, as in a plain x + F(x)
    assert torch.isfinite(logits.float()).all() and all(torch.isfinite(p.grad).all() for p in model.parameters())
    if streams > 1:  # bf16 changes F, not the structure: close to the fp32 model
        ref, _ = model(idx)
        assert (logits.float() - ref).abs().max() < 0.1 * ref.abs().max()


@pytest.mark.parametrize("autocast", [False, True])
def test_bf16_stream_storage_keeps_the_arithmetic_in_fp32(autocast):
    """mhc_stream_dtype "bf16" (the mHC paper's §4.3): the streams between sublayers are stored in
    bf16, the coefficients stay fp32, and the model stays close to the fp32-stream model with the
    same weights (values and gradients); n = 1 ignores the setting."""
    torch.manual_seed(0)
    ref_model = GPT(tiny())
    model = GPT(tiny(mhc_stream_dtype="bf16"))
    model.load_state_dict(ref_model.state_dict())
    stored, coef_dtypes = [], []
    for sub in sublayers(model):
        sub.register_forward_hook(lambda mod, inp, out: stored.append((inp[0].dtype, out.dtype)))
        sub.coef.register_forward_hook(lambda mod, inp, out: coef_dtypes.extend(o.dtype for o in out))
    idx = torch.randint(0, V, (2, 9))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False)
    outs = []
    for m in (model, ref_model):
        with ctx:
            logits, loss = m(idx, targets=idx)
        loss.backward()
        outs.append((logits.float(), loss, [p.grad for p in m.parameters()]))
    assert stored == [(torch.bfloat16, torch.bfloat16)] * 4
    assert coef_dtypes == [torch.float32] * 12
    (lg, loss, grads), (lg_ref, loss_ref, grads_ref) = outs
    assert (lg - lg_ref).abs().max() < 0.05 * lg_ref.abs().max()
    assert abs(float(loss) - float(loss_ref)) < 0.01 * float(loss_ref)
    for g, g_ref in zip(grads, grads_ref):
        assert torch.isfinite(g).all() and (g - g_ref).norm() <= 0.1 * g_ref.norm() + 1e-6
    plain = GPT(tiny(mhc_streams=1, mhc_stream_dtype="bf16"))
    plain_dtypes = []
    plain.layers[0].register_forward_pre_hook(lambda mod, args: plain_dtypes.append(args[0].dtype))
    plain(idx)
    assert plain_dtypes == [torch.float32]


class FixedWrite(torch.nn.Module):
    """A stand-in sublayer F whose fp32 output does not depend on autocast."""

    def forward(self, f_in):
        return torch.cos(f_in.float()) * 3.0


def test_coefficients_and_stream_mixing_are_not_rounded_by_autocast():
    torch.manual_seed(0)
    sub = MHCSublayer(FixedWrite(), n=4, d_model=C, layer_index=0, sinkhorn_iters=20, alpha_init=0.5, init_std=0.02)
    x = torch.randn(2, 5, 4, C) * 10
    want_coef, want = sub.coef(x), sub(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_coef, got = sub.coef(x), sub(x)
    for a, b in zip(got_coef, want_coef):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-6, atol=1e-5)


def test_eager_and_compiler_forms_of_the_stream_arithmetic_agree(monkeypatch):
    """The CPU (batched GEMM, hand-written backward) and CUDA (pointwise, fused by Inductor)
    forms of the coefficient projection and the stream read/write give the same values and
    gradients; a wrong term in either backward shows up here."""
    from discover_distill import mhc
    torch.manual_seed(0)
    sub = MHCSublayer(FixedWrite(), n=4, d_model=C, layer_index=2, sinkhorn_iters=20, alpha_init=0.5, init_std=0.2)
    x = (torch.randn(3, 7, 4, C) * 3).requires_grad_()
    g = torch.randn(3, 7, 4, C)
    results = []
    for eager in (True, False):
        monkeypatch.setattr(mhc, "eager_form", lambda t, eager=eager: eager)
        x.grad = None
        sub.zero_grad()
        out = sub(x)
        # the second term reaches the streams as a stride-0 (expanded) gradient, as a sum does
        ((out * g).sum() + out.sum(dim=2).square().sum()).backward()
        results.append([out.detach(), x.grad] + [p.grad for p in sub.parameters()])
    for got, want in zip(*results):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max(), (got - want).abs().max() / want.abs().max()
    assert all(r.abs().sum() > 0 for r in results[0])  # every gradient is exercised


def test_rms_normed_projection_gradient_matches_autograd_in_float64():
    from discover_distill.mhc import _RMSNormedProjection
    torch.manual_seed(0)
    x = (torch.randn(5, 6, 4, 6, dtype=torch.float64) * 4).requires_grad_()  # [B, T, n, C]
    phi = torch.randn(24, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _RMSNormedProjection.apply(a, b, 1e-6), (x, phi))


@pytest.mark.slow
def test_compiled_blocks_match_eager(tmp_path, monkeypatch):
    """The path a GPU takes by default (`--compile auto`: each block compiled, the Sinkhorn an
    opaque custom op, the stream arithmetic in its pointwise form) gives the eager model's loss
    and gradients. Runs Inductor's CPU backend here."""
    import copy
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    eager = GPT(tiny())
    with torch.no_grad():  # dynamic coefficients well away from their 0.01 init, so they matter
        for sub in sublayers(eager):
            for a in (sub.coef.alpha_pre, sub.coef.alpha_post, sub.coef.alpha_res):
                a.fill_(0.5)
    compiled = copy.deepcopy(eager).compile_blocks()
    idx = torch.randint(0, V, (2, 12))
    losses = []
    for model in (eager, compiled):
        _, loss = model(idx, targets=torch.roll(idx, -1, 1))
        loss.backward()
        losses.append(loss.detach())
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        assert (a.grad - b.grad).abs().max() <= 1e-4 * a.grad.abs().max() + 1e-9, name  # some are ~0


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a GPU"))])
def test_graphs_mode_accumulates_like_eager(tmp_path, monkeypatch, device):
    """`--compile graphs` (pretrain's default on one GPU): the whole model under CUDA graphs, with
    gradients accumulated in place over micro-batches as pretrain.py's loop does. Two optimizer
    steps of two micro-batches each give eager's losses and parameters. On a CPU Inductor
    compiles without graphs; on a GPU the graph's reused gradient buffers are exercised too."""
    import copy
    from discover_distill.training import compile_for_training
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    eager = GPT(tiny()).to(device)
    graphs = copy.deepcopy(eager)
    runs = {}
    for name, model in (("eager", eager), ("graphs", graphs)):
        fwd = compile_for_training(model, "graphs" if name == "graphs" else "none")
        if name == "graphs":  # gradients exist before the first backward, so it adds into them
            assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(2):
            for _ in range(2):
                idx = torch.randint(0, V, (2, 12), generator=gen).to(device)
                if name == "graphs":
                    torch.compiler.cudagraph_mark_step_begin()
                _, loss = fwd(idx, targets=torch.roll(idx, -1, 1))
                (loss / 2).backward()
                losses.append(loss.item())
            opt.step()
            opt.zero_grad(set_to_none=name == "eager")
        runs[name] = losses
    assert runs["graphs"] == pytest.approx(runs["eager"], abs=1e-4)
    for (pname, a), b in zip(eager.named_parameters(), graphs.parameters()):
        assert torch.allclose(a, b, atol=1e-4), pname
