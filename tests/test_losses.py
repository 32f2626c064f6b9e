"""losses.linear_cross_entropy: the LM head and the loss in row chunks equal the unfused
F.cross_entropy(F.linear(h, W).float(), y) in values and in the gradients of h and W."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_MODEL
from discover_distill.config import load_model_config
from discover_distill.losses import linear_cross_entropy
from discover_distill.model import GPT


def _both(h, w, y, autocast, chunk_rows):
    out = []
    for fused in (True, False):
        hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = (linear_cross_entropy(hh, ww, y, chunk_rows=chunk_rows) if fused else
                    F.cross_entropy(F.linear(hh, ww).float().view(-1, ww.shape[0]), y.view(-1), ignore_index=-100))
        (loss * 3.0).backward()  # a non-unit incoming gradient
        out.append((loss.detach(), hh.grad, ww.grad))
    return out


@pytest.mark.parametrize("chunk_rows", [5, 4096])
def test_fused_loss_equals_the_unfused_loss_in_fp32(chunk_rows):
    torch.manual_seed(0)
    h, w = torch.randn(3, 7, 16), torch.randn(40, 16) * 0.5
    y = torch.randint(0, 40, (3, 7))
    y[0, :3] = -100  # ignored positions count neither in the loss nor in its mean
    (lf, hf, wf), (lu, hu, wu) = _both(h, w, y, False, chunk_rows)
    torch.testing.assert_close(lf, lu, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hf, hu, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(wf, wu, rtol=1e-5, atol=1e-6)
    assert hf[0, :3].abs().max() == 0


def test_fused_loss_under_bf16_autocast_is_close_to_the_unfused_one():
    torch.manual_seed(0)
    h, w = torch.randn(4, 9, 32), torch.randn(64, 32) * 0.3
    y = torch.randint(0, 64, (4, 9))
    (lf, hf, wf), (lu, hu, wu) = _both(h, w, y, True, 7)
    assert abs(float(lf) - float(lu)) < 1e-2 * float(lu)
    assert (hf - hu).norm() < 2e-2 * hu.norm() and (wf - wu).norm() < 2e-2 * wu.norm()
    assert hf.dtype == torch.float32 and wf.dtype == torch.float32


def test_model_with_fused_loss_trains_like_the_unfused_model():
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=50, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=32)
    model = GPT(cfg)
    x = torch.randint(0, 50, (2, 10))
    y = torch.roll(x, -1, 1)
    y[:, -1] = -100
    grads = []
    for fused in (True, False):
        model.fused_loss = fused
        model.zero_grad()
        logits, loss = model(x, targets=y)
        assert (logits is None) == fused
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (lf, gf), (lu, gu) = grads
    torch.testing.assert_close(lf, lu, rtol=1e-6, atol=1e-6)
    for a, b in zip(gf, gu):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with torch.no_grad():  # evaluation without gradients: the loss alone
        model.fused_loss = True
        assert torch.allclose(model(x, targets=y)[1], lu, rtol=1e-6)
