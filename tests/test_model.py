import dataclasses
import json

import pytest
import torch

from conftest import ROOT, TINY_MODEL
from discover_distill.cli import UserError
from discover_distill.config import load_model_config
from discover_distill.model import GPT


def small():
    return dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=101, d_model=32, n_layers=2, n_heads=2,
                               d_ff=64, max_seq_len=64)


@pytest.mark.parametrize("name,lo,hi", [("model_mhc_120m", 110e6, 130e6), ("model_plain_120m", 110e6, 130e6),
                                        ("model_mhc_tiny", 1e6, 3e6)])
def test_config_sizes(name, lo, hi):
    cfg = load_model_config(f"{ROOT}/configs/{name}.json")
    with torch.device("meta"):
        n = GPT(cfg).num_params()
    assert lo <= n <= hi, n
    assert (cfg.mhc_streams == 1) == (name == "model_plain_120m")


def test_unknown_and_missing_keys_are_errors(tmp_path):
    data = json.load(open(TINY_MODEL))
    bad = dict(data, dropout=0.1)
    del bad["rope_theta"]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(UserError, match=r"bad.json: unknown keys: dropout; missing keys: rope_theta"):
        load_model_config(str(p))
    p.write_text("{not json")
    with pytest.raises(UserError, match="invalid JSON at line 1"):
        load_model_config(str(p))
    p.write_text(json.dumps(dict(data, n_heads=5)))
    with pytest.raises(UserError, match="heads"):
        load_model_config(str(p))


def test_kv_cache_decoding_matches_full_recompute():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    idx = torch.randint(0, 101, (1, 14))
    full, _ = model(idx)
    cache = model.new_kv_cache(1, 32)
    first, _ = model(idx[:, :8], kv_cache=cache, pos=0)
    assert torch.allclose(first, full[:, :8], atol=1e-5)
    cache4 = cache.expand(4)
    for t in range(8, 14):
        step, _ = model(idx[:, t:t + 1].expand(4, 1), kv_cache=cache4, pos=t)
        assert torch.allclose(step, full[:, t:t + 1].expand(4, 1, -1), atol=1e-5)


def test_left_padded_batch_matches_unpadded_rows():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    a, b = torch.randint(4, 101, (1, 10)), torch.randint(4, 101, (1, 6))
    want_a, _ = model(a)
    want_b, _ = model(b)
    idx = torch.cat([a, torch.cat([torch.zeros(1, 4, dtype=torch.long), b], 1)])
    key_mask = torch.ones(2, 10, dtype=torch.bool)
    key_mask[1, :4] = False
    positions = (torch.arange(10)[None] - torch.tensor([[0], [4]])).clamp_min(0)
    got, _ = model(idx, positions=positions, key_mask=key_mask)
    assert torch.allclose(got[0], want_a[0], atol=1e-5) and torch.allclose(got[1, 4:], want_b[0], atol=1e-5)


def test_training_lowers_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = GPT(small())
    opt = model.configure_optimizer(weight_decay=0.1, lr=3e-3)
    idx = torch.randint(0, 101, (4, 24))
    losses = []
    for _ in range(25):
        _, loss = model(idx[:, :-1], targets=idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
