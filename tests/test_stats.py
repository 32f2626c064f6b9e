import pytest

from discover_distill.stats import paired_bootstrap


def test_paired_bootstrap():
    a = [0.0] * 50 + [1.0] * 50
    r = paired_bootstrap(a, a)
    assert r["mean_diff"] == 0 and r["ci95"] == [0.0, 0.0] and r["p_two_sided"] == 1.0
    b = [x + 0.1 for x in a]
    r = paired_bootstrap(a, b)
    assert r["mean_diff"] == pytest.approx(0.1) and r["ci95"][0] == pytest.approx(0.1) and r["p_two_sided"] == 0.0
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [])
