import pytest
import torch
import torch.nn as nn

from discover_distill.lora import (LoRAConfig, LoRALinear, adapter_runs, adapters_for_rows, inject_lora, load_lora,
                                   lora_modules, lora_parameters, merge_lora, reset_adapter, save_lora)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.ModuleDict({"wq": nn.Linear(8, 8, bias=False)})
        self.mlp = nn.Sequential(nn.Linear(8, 16, bias=False), nn.ReLU(), nn.Linear(16, 8, bias=False))
        self.head = nn.Linear(8, 5, bias=False)

    def forward(self, x):
        return self.head(self.mlp(self.attn["wq"](x)))


def randomise_B(model, index, seed):
    g = torch.Generator().manual_seed(seed)
    for n, m in model.named_modules():
        if hasattr(m, "lora_B"):
            with torch.no_grad():
                m.lora_B[index].copy_(torch.randn(m.lora_B.shape[1:], generator=g))


def test_fresh_adapter_changes_nothing_and_base_is_frozen():
    torch.manual_seed(0)
    model = Toy()
    x = torch.randn(3, 4, 8)
    before = model(x)
    names = inject_lora(model, LoRAConfig(rank=2, alpha=4))
    assert names == ["attn.wq", "mlp.0", "mlp.2"]  # the head is not a target
    assert torch.equal(model(x), before)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(any(p is q for q in lora_parameters(model)) for p in trainable)


def test_per_row_adapters_match_separate_runs():
    torch.manual_seed(0)
    model = Toy()
    inject_lora(model, LoRAConfig(rank=2, alpha=4), n_adapters=3)
    for k in range(3):
        randomise_B(model, k, seed=k)
    x = torch.randn(3, 4, 8)
    with adapters_for_rows(model, torch.tensor([2, 0, 1])):
        mixed = model(x)
    for row, k in enumerate([2, 0, 1]):
        with adapters_for_rows(model, torch.tensor([k])):
            alone = model(x[row:row + 1])
        assert torch.allclose(mixed[row], alone[0], atol=1e-6)


def test_save_load_and_merge(tmp_path):
    torch.manual_seed(0)
    model = Toy()
    cfg = LoRAConfig(rank=2, alpha=4)
    inject_lora(model, cfg)
    randomise_B(model, 0, seed=1)
    x = torch.randn(2, 3, 8)
    adapted = model(x)
    save_lora(model, cfg, str(tmp_path / "lora.pt"), meta={"step": 3})
    data = torch.load(tmp_path / "lora.pt", weights_only=True)
    assert data["meta"] == {"step": 3} and all(k.endswith(("lora_A", "lora_B")) for k in data["weights"])
    reset_adapter(model, 0, seed=5)
    assert not torch.allclose(model(x), adapted)
    assert load_lora(model, str(tmp_path / "lora.pt")).rank == 2
    assert torch.allclose(model(x), adapted, atol=1e-6)
    merged = merge_lora(model)
    assert not any(hasattr(m, "lora_A") for m in merged.modules())
    assert torch.allclose(merged(x), adapted, atol=1e-5)


def test_bad_targets():
    with pytest.raises(ValueError, match="match no"):
        inject_lora(Toy(), LoRAConfig(targets=("nothing",)))


def lora_linear(dtype, n_adapters=4, seed=0):
    torch.manual_seed(seed)
    m = LoRALinear(nn.Linear(6, 5, bias=False), LoRAConfig(rank=3, alpha=6), n_adapters=n_adapters).to(dtype)
    with torch.no_grad():
        m.lora_B.normal_()
    return m


def value_and_grads(m, x, w, delta):
    """(output, d/dx, d/dA, d/dB) of sum(w * (base(x) + scale * delta(x)))."""
    x = x.clone().requires_grad_(True)
    out = m.base(x) + m.scale * delta(x)
    return (out, *torch.autograd.grad((w * out).sum(), [x, m.lora_A, m.lora_B]))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("ids", [[0, 0, 1, 1, 1, 3], [0, 0, 3, 3, 1, 1], [2, 2, 2, 2, 2, 2], [3, 0, 1, 0, 2, 3],
                                 [1, 0, 0, 1, 1, 0]])
@pytest.mark.parametrize("shape", [(6, 6), (6, 4, 6)])
def test_runs_form_equals_the_per_row_gather(dtype, tol, ids, shape):
    """Values and gradients (input, lora_A, lora_B) of the grouped-matmul form equal the per-row
    gather form, for contiguous and scattered adapter ids (a scattered id list runs as its maximal
    runs, an adapter in several of them), 2-D and 3-D inputs; adapter 2 unused in most cases."""
    m = lora_linear(dtype)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g, dtype=dtype)
    w = torch.randn(*shape[:-1], 5, generator=g, dtype=dtype)
    runs, t = adapter_runs(ids, contiguous_only=False), torch.tensor(ids)
    gather = value_and_grads(m, x, w, lambda x: m.delta_gather(x, t))
    for grouped in (value_and_grads(m, x, w, lambda x: m.delta_runs(x, runs)),
                    value_and_grads(m, x, w, lambda x: m.delta_runs(x, runs, t))):
        for a, b in zip(gather, grouped):
            assert torch.allclose(a, b, rtol=tol, atol=tol)
        assert grouped[2].abs().sum() > 0 and grouped[3].abs().sum() > 0


def test_adapter_runs_only_for_one_block_per_adapter():
    assert adapter_runs([0, 0, 1, 1, 1, 3]) == [(0, 2, 0), (2, 5, 1), (5, 6, 3)]
    assert adapter_runs(torch.tensor([2, 2])) == [(0, 2, 2)]
    assert adapter_runs([0, 1, 0]) is None  # adapter 0 in two blocks: the gather form
    assert adapter_runs([0, 1, 0], contiguous_only=False) == [(0, 1, 0), (1, 2, 1), (2, 3, 0)]
    m = lora_linear(torch.float32)
    with pytest.raises(ValueError, match="do not tile"):
        m.delta_runs(torch.randn(3, 6), [(0, 2, 0)])


def test_adapters_for_rows_picks_the_form():
    """Contiguous ids run as blocks, scattered ones as the gather; runs=None forces the gather;
    the model's output is the same either way."""
    torch.manual_seed(0)
    model = Toy()
    inject_lora(model, LoRAConfig(rank=2, alpha=4), n_adapters=3)
    for k in range(3):
        randomise_B(model, k, seed=k)
    x = torch.randn(4, 3, 8)
    mods = [m for _, m in lora_modules(model)]
    for ids, blocks in (([1, 1, 0, 2], [(0, 2, 1), (2, 3, 0), (3, 4, 2)]), ([1, 0, 1, 2], None)):
        with adapters_for_rows(model, torch.tensor(ids)):
            assert all(m.adapter_runs == blocks for m in mods)
            auto = model(x)
        with adapters_for_rows(model, torch.tensor(ids), runs=None):
            gathered = model(x)
        assert torch.allclose(auto, gathered, atol=1e-6)
    assert all(m.adapter_ids is None and m.adapter_runs is None for m in mods)


@pytest.mark.parametrize("ids,T,form", [([0, 0, 1, 1], 8, "runs"), ([0, 1, 1, 1], 1, "runs"), ([0, 1, 1, 1], 8, "gather"),
                                        ([0, 1, 0, 1], 1, "gather")])
def test_forward_takes_blocks_where_they_pay(ids, T, form):
    """Equal blocks always; unequal blocks (joined by a cat of T x out per row) only while that is
    no more than the gather's r x (in + out) per row (here r = 3, in = 6, out = 5: T <= 6)."""
    m = lora_linear(torch.float32)
    used = []
    for name in ("delta_runs", "delta_gather"):
        fn = getattr(m, name)
        setattr(m, name, lambda *a, fn=fn, name=name: used.append(name) or fn(*a))
    m.adapter_ids, m.adapter_runs = torch.tensor(ids), adapter_runs(ids)
    m(torch.randn(4, T, 6))
    assert used == ["delta_" + form]
