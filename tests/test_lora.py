import pytest
import torch
import torch.nn as nn

from discover_distill.lora import (LoRAConfig, adapters_for_rows, inject_lora, load_lora, lora_parameters,
                                   merge_lora, reset_adapter, save_lora)


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
