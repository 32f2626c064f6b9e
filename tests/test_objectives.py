import math

import pytest
import torch

from discover_distill.objectives import (BETA_CAP, LN2, adaptive_beta, entropic_advantages, expected_advantages,
                                         kl_to_uniform, policy_gradient_loss)


def test_entropic_loo_hand_computed():
    r = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    beta = 2.0
    e = [math.exp(2 * (0 - 1)), 1.0, math.exp(2 * (0.5 - 1))]
    expected = [e[0] / ((e[1] + e[2]) / 2) - 1, e[1] / ((e[0] + e[2]) / 2) - 1, e[2] / ((e[0] + e[1]) / 2) - 1]
    got = entropic_advantages(r, beta)
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert got[1] > 0 > got[0]  # the best rollout is pushed up, the worst down


def test_entropic_constant_group_has_no_signal_and_large_beta_is_finite():
    assert torch.equal(entropic_advantages(torch.full((4,), 0.3), 5.0), torch.zeros(4))
    a = entropic_advantages(torch.tensor([0.0, 1.0, 1.0, 0.0]), 1e6)
    assert torch.isfinite(a).all()
    assert a.tolist() == pytest.approx([-1.0, 2.0, 2.0, -1.0])  # a max rollout: 1 / ((1 + 0 + 0) / 3) - 1


def test_expected_advantages():
    assert expected_advantages(torch.tensor([1.0, 0.0, 0.5])).tolist() == pytest.approx([0.5, -0.5, 0.0])


@pytest.mark.parametrize("rewards", [[0.1, 0.5, 0.9, 0.2], [0.0] * 7 + [1.0], list(range(32))])
def test_adaptive_beta_hits_ln2(rewards):
    r = torch.tensor(rewards, dtype=torch.float64)
    beta = adaptive_beta(r)
    assert 0 < beta < BETA_CAP
    assert abs(kl_to_uniform(r, beta) - LN2) < 1e-6


@pytest.mark.parametrize("spread", [10.0 ** e for e in range(-6, 10)])
def test_adaptive_beta_hits_ln2_at_every_reward_scale(spread):
    """Scaled copies of one reward vector need beta ∝ 1 / spread; the KL must hit ln 2 all the
    same (an absolute tolerance on beta < 1 missed it by 0.059 for [1e9, -1e9, 0])."""
    for base in ([0.3, -1.2, 0.7, 0.1, 2.0, -0.4], [1.0, -1.0, 0.0]):
        r = torch.tensor(base, dtype=torch.float64) * spread
        beta = adaptive_beta(r)
        if kl_to_uniform(r, BETA_CAP) < LN2:  # needs beta beyond the cap (the smallest spreads)
            assert beta == BETA_CAP
        else:
            assert 0 < beta < BETA_CAP
            assert abs(kl_to_uniform(r, beta) - LN2) < 1e-6, (spread, beta)


def test_adaptive_beta_unreachable_is_capped():
    assert adaptive_beta(torch.tensor([1.0, 1.0, 1.0, 0.0])) == BETA_CAP  # 3 of 4 tied at the max
    assert adaptive_beta(torch.tensor([0.5, 0.5])) == BETA_CAP


def test_kl_to_uniform_hand_computed():
    # two rollouts, beta = ln 3: q = (1/4, 3/4); KL = ln2 + 1/4 ln(1/4) + 3/4 ln(3/4)
    kl = kl_to_uniform(torch.tensor([0.0, 1.0]), math.log(3))
    assert kl == pytest.approx(math.log(2) + 0.25 * math.log(0.25) + 0.75 * math.log(0.75))


def test_policy_gradient_loss_and_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    adv = torch.tensor([[2.0, 3.0]])
    loss = policy_gradient_loss(adv, logp, torch.tensor([[1, 0]]))
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert logp.grad.tolist() == [[-2.0, 0.0]]
