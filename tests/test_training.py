"""The training loop's shared choices: which compile mode --compile picks where."""
import pytest
import torch

from discover_distill.cli import UserError
from discover_distill.training import resolve_compile

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("spec, device, world, mode", [
    ("auto", CUDA, 1, "graphs"), ("auto", CUDA, 2, "blocks"), ("auto", CPU, 1, "none"), ("auto", CPU, 2, "none"),
    ("1", CUDA, 1, "graphs"), ("1", CUDA, 4, "blocks"), ("1", CPU, 1, "blocks"),
    ("0", CUDA, 1, "none"), ("blocks", CUDA, 1, "blocks"), ("graphs", CPU, 1, "graphs"),
])
def test_resolve_compile(spec, device, world, mode):
    assert resolve_compile(spec, device, world) == mode


def test_resolve_compile_rejects_graphs_under_torchrun_and_unknown_modes():
    with pytest.raises(UserError, match="--compile graphs"):
        resolve_compile("graphs", CUDA, 2)
    with pytest.raises(UserError, match="unknown mode 'fast'"):
        resolve_compile("fast", CPU, 1)
