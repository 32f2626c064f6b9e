"""TTT policy-gradient objectives (DESIGN §4): entropic leave-one-out advantages, the
expected-reward baseline and adaptive beta, per group and for all groups at once. Pure tensor
functions; the per-token KL shaping is ttt.token_advantages."""
from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)
BETA_CAP = 1e6
ADVANTAGE_CAP = 1e4


def entropic_advantages(rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """Leave-one-out entropic advantages for one group of N rollouts of the same prompt.

    e_n = exp(beta (r_n - r_max)),  Z_-n = sum_{m != n} e_m / (N - 1),  A_n = e_n / Z_-n - 1.
    Subtracting r_max keeps every e_n in (0, 1] (no overflow at large beta). At very large beta
    a unique best rollout's leave-one-out mean underflows towards 0 and its advantage towards
    infinity; it is capped at ADVANTAGE_CAP, which still makes that rollout dominate the update
    (Adam is invariant to the gradient's scale) without producing inf/NaN.
    """
    r = rewards.double()
    n = r.numel()
    if n < 2:
        return torch.zeros_like(rewards)
    e = torch.exp(beta * (r - r.max()))
    z_loo = (e.sum() - e) / (n - 1)
    return (e / z_loo.clamp_min(1e-300) - 1.0).clamp_max(ADVANTAGE_CAP).to(rewards.dtype)


def expected_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """The expected-reward objective's advantages: A_n = r_n - mean(r)."""
    return rewards - rewards.mean()


def kl_to_uniform(rewards: torch.Tensor, beta: float) -> float:
    """KL(softmax(beta r) || uniform) = log N - H(softmax(beta r)), in nats."""
    r = rewards.double()
    logq = torch.log_softmax(beta * r, dim=0)
    return float(math.log(r.numel()) + (logq.exp() * logq).sum())


def adaptive_beta(rewards: torch.Tensor, target_kl: float = LN2, tol: float = 1e-9, cap: float = BETA_CAP) -> float:
    """The beta at which KL(softmax(beta r) || uniform) = target_kl (default ln 2).

    The KL grows monotonically with beta from 0, so: bracket the target between two betas a
    factor 2 apart, doubling from [1/2, 1] until the KL reaches it (at most `cap`), or halving
    while it still does (reward spreads far above 1 need beta << 1); then bisect to a relative
    tolerance `tol` on beta, which pins the KL equally well at every reward scale (the KL depends
    on beta only through beta * r). When even `cap` cannot reach the target (e.g. more than half
    the group shares the maximum reward, or all rewards are equal) `cap` is returned.
    """
    if rewards.numel() < 2 or float(rewards.max() - rewards.min()) == 0.0:
        return cap
    lo, hi = 0.5, 1.0  # invariant once bracketed: KL(lo) < target <= KL(hi)
    if kl_to_uniform(rewards, hi) >= target_kl:
        while kl_to_uniform(rewards, lo) >= target_kl:
            lo, hi = lo / 2, lo
    else:
        while kl_to_uniform(rewards, hi) < target_kl:
            if hi >= cap:
                return cap
            lo, hi = hi, min(hi * 2.0, cap)
    for _ in range(200):  # the bracket starts within a factor 2: ~30 halvings reach tol = 1e-9
        if hi - lo <= tol * hi:
            break
        mid = 0.5 * (lo + hi)
        if kl_to_uniform(rewards, mid) < target_kl:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --- every group at once (one TTT step's groups, padded to the largest) ------------------------

def _kl_to_uniform_rows(r: torch.Tensor, valid: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Per row g: KL(softmax(beta_g r_g) || uniform) over the row's valid entries."""
    logq = torch.log_softmax((beta[:, None] * r).masked_fill(~valid, float("-inf")), dim=1)
    return torch.log(valid.sum(1).to(r.dtype)) + (logq.exp() * logq.masked_fill(~valid, 0.0)).sum(1)


def adaptive_betas(rewards: torch.Tensor, valid: torch.Tensor, target_kl: float = LN2, tol: float = 1e-9,
                   cap: float = BETA_CAP) -> torch.Tensor:
    """adaptive_beta for every row of a padded [G, n] reward matrix at once (valid marks real
    entries): the same bracketing and relative-tolerance bisection, as tensor operations with a
    per-row mask of rows still moving, so a step's groups cost one loop, not one loop each."""
    r = rewards.double()
    G = r.shape[0]
    lo, hi = torch.full((G,), 0.5, dtype=r.dtype), torch.ones(G, dtype=r.dtype)
    spread = r.masked_fill(~valid, float("-inf")).amax(1) - r.masked_fill(~valid, float("inf")).amin(1)
    live = (valid.sum(1) >= 2) & (spread > 0)
    kl = lambda b: _kl_to_uniform_rows(r, valid, b)  # noqa: E731
    reach = kl(hi) >= target_kl
    for _ in range(1100):  # halve while the target is still reached (spreads far above 1); 2^-1100 < any beta
        m = live & reach & (kl(lo) >= target_kl)
        if not bool(m.any()):
            break
        lo, hi = torch.where(m, lo / 2, lo), torch.where(m, lo, hi)
    capped = torch.zeros(G, dtype=torch.bool)
    for _ in range(64):  # double until the target is reached, at most `cap`
        m = live & ~reach & ~capped & (kl(hi) < target_kl)
        if not bool(m.any()):
            break
        capped |= m & (hi >= cap)
        m &= ~capped
        lo, hi = torch.where(m, hi, lo), torch.where(m, (hi * 2).clamp(max=cap), hi)
    for _ in range(200):
        active = live & ~capped & (hi - lo > tol * hi)
        if not bool(active.any()):
            break
        mid = 0.5 * (lo + hi)
        below = kl(mid) < target_kl
        lo, hi = torch.where(active & below, mid, lo), torch.where(active & ~below, mid, hi)
    return torch.where(live & ~capped, 0.5 * (lo + hi), torch.full_like(lo, cap))


def entropic_advantages_rows(rewards: torch.Tensor, valid: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """entropic_advantages for every row of a padded [G, n] reward matrix (0 at padding)."""
    r = rewards.double()
    rmax = r.masked_fill(~valid, float("-inf")).amax(1, keepdim=True)
    e = torch.exp(beta[:, None].double() * (r - rmax)).masked_fill(~valid, 0.0)
    n = valid.sum(1, keepdim=True).to(r.dtype)
    z_loo = (e.sum(1, keepdim=True) - e) / (n - 1).clamp_min(1.0)
    adv = (e / z_loo.clamp_min(1e-300) - 1.0).clamp_max(ADVANTAGE_CAP)
    return adv.masked_fill(~valid | (n < 2), 0.0)


def policy_gradient_loss(token_adv: torch.Tensor, logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """loss = -sum_t A_t logp_t over completion tokens (advantages are constants)."""
    return -(token_adv.detach() * logp * mask.to(logp.dtype)).sum()
