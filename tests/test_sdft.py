import pytest
import torch

from discover_distill.sdft import ema_update, skip_mask, token_kl


def test_kl_zero_when_distributions_agree():
    logits = torch.randn(2, 3, 11)
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert token_kl(logits, logits.clone(), mask).abs().item() < 1e-6
    assert token_kl(logits, logits + 5.0, mask, kl="reverse").abs().item() < 1e-5  # shift-invariant


def test_kl_hand_computed_and_masked():
    s = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    t = torch.log(torch.tensor([[[0.25, 0.75], [0.1, 0.9]]]))
    fwd = 0.25 * torch.log(torch.tensor(0.5)) + 0.75 * torch.log(torch.tensor(1.5))
    got = token_kl(s, t, torch.tensor([[True, False]]))
    assert got.item() == pytest.approx(fwd.item(), abs=1e-6)
    rev = 0.5 * torch.log(torch.tensor(2.0)) + 0.5 * torch.log(torch.tensor(0.5 / 0.75))
    assert token_kl(s, t, torch.tensor([[True, False]]), kl="reverse").item() == pytest.approx(rev.item(), abs=1e-6)


def test_gradient_reaches_student_only():
    s = torch.randn(1, 4, 7, requires_grad=True)
    t = torch.randn(1, 4, 7, requires_grad=True)
    token_kl(s, t, torch.ones(1, 4, dtype=torch.bool)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_ema_and_skip_mask():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.25)
    assert torch.allclose(a.weight, 0.75 * before + 0.25 * b.weight)
    m = torch.tensor([[True, True, True, True, False], [True, True, False, False, False]])
    assert skip_mask(m, 1).tolist() == [[False, True, True, True, False], [False, True, False, False, False]]
    with pytest.raises(ValueError):
        token_kl(torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), torch.ones(1, 1, dtype=torch.bool), kl="sideways")
