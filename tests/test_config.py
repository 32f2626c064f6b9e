"""Model config loading is strict (unknown and missing keys are errors, all reported at once),
saving round-trips, and the shipped configs have the sizes the runbook and smoke profile need."""
import dataclasses
import json
import os

import pytest
import torch

from conftest import ROOT, TINY_MODEL
from discover_distill.cli import UserError
from discover_distill.config import (ModelConfig, dataclass_from_json, load_model_config, model_config_from_dict,
                                     save_model_config)
from discover_distill.model import GPT


def write(tmp_path, obj, name="cfg.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def tiny_dict():
    with open(TINY_MODEL) as f:
        return json.load(f)


def test_unknown_and_missing_keys_are_named_together_with_the_file(tmp_path):
    bad = dict(tiny_dict(), dropout=0.1, bias=True)
    del bad["rope_theta"], bad["d_ff"]
    with pytest.raises(UserError) as e:
        load_model_config(write(tmp_path, bad, "bad.json"))
    assert str(e.value) == f"{tmp_path}/bad.json: unknown keys: bias, dropout; missing keys: d_ff, rope_theta"


@pytest.mark.parametrize("change,needle", [
    ({"n_heads": 5}, "heads of even size"),
    ({"d_model": 96, "n_heads": 32}, "heads of even size"),   # head_dim 3 cannot carry RoPE pairs
    ({"vocab_size": 0}, "vocab_size must be a positive integer"),
    ({"n_layers": 2.5}, "n_layers must be a positive integer"),
    ({"mhc_streams": True}, "mhc_streams must be a positive integer"),
    ({"norm_eps": 0}, "norm_eps must be a number > 0"),
    ({"rope_theta": "1e4"}, "rope_theta must be a number > 0"),
    ({"mhc_alpha_init": -0.1}, "mhc_alpha_init must be a number >= 0"),
])
def test_invalid_values_are_user_errors(tmp_path, change, needle):
    path = write(tmp_path, dict(tiny_dict(), **change))
    with pytest.raises(UserError, match=needle) as e:
        load_model_config(path)
    assert str(e.value).startswith(path + ": ")


def test_every_invalid_value_is_reported_at_once(tmp_path):
    path = write(tmp_path, dict(tiny_dict(), vocab_size=-1, d_ff=0, init_std=-0.02))
    with pytest.raises(UserError) as e:
        load_model_config(path)
    msg = str(e.value)
    assert all(k in msg for k in ("vocab_size", "d_ff", "init_std")), msg


def test_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_model_config(str(tmp_path / "nope.json"))
    with pytest.raises(UserError, match="invalid JSON at line 2"):
        load_model_config(write(tmp_path, '{\n  "vocab_size": ,\n}'))
    with pytest.raises(UserError, match="expected a JSON object, got list"):
        load_model_config(write(tmp_path, "[1, 2]"))


def test_save_load_round_trip_and_dict_helpers(tmp_path):
    cfg = load_model_config(TINY_MODEL)
    path = str(tmp_path / "sub" / "model_config.json")
    save_model_config(cfg, path)
    assert load_model_config(path) == cfg
    assert os.listdir(tmp_path / "sub") == ["model_config.json"]  # no temp file left behind
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg == model_config_from_dict(cfg.to_dict())
    with pytest.raises(UserError, match="ckpt.pt: missing keys: init_std"):
        model_config_from_dict({k: v for k, v in cfg.to_dict().items() if k != "init_std"}, source="ckpt.pt")
    # a key with a default may be missing (checkpoints written before it existed); a bad value may not
    old = {k: v for k, v in cfg.to_dict().items() if k != "mhc_stream_dtype"}
    assert model_config_from_dict(old).mhc_stream_dtype == "fp32"
    with pytest.raises(UserError, match="mhc_stream_dtype must be one of fp32, bf16, got 'fp16'"):
        model_config_from_dict({**old, "mhc_stream_dtype": "fp16"}, source="ckpt.pt")
    assert cfg.head_dim == cfg.d_model // cfg.n_heads


def test_generic_loader_works_for_other_dataclasses(tmp_path):
    @dataclasses.dataclass
    class Other:
        lr: float
        steps: int

    assert dataclass_from_json(Other, write(tmp_path, {"lr": 0.1, "steps": 3})) == Other(0.1, 3)
    with pytest.raises(UserError, match="unknown keys: warmup"):
        dataclass_from_json(Other, write(tmp_path, {"lr": 0.1, "steps": 3, "warmup": 1}))


def param_count(name):
    cfg = load_model_config(os.path.join(ROOT, "configs", f"{name}.json"))
    with torch.device("meta"):  # no memory, no init time
        return cfg, GPT(cfg).num_params()


@pytest.mark.parametrize("name,lo,hi", [("model_mhc_120m", 110e6, 130e6), ("model_plain_120m", 110e6, 130e6),
                                        ("model_mhc_tiny", 1e6, 3e6)])
def test_shipped_config_sizes(name, lo, hi):
    cfg, n = param_count(name)
    assert lo <= n <= hi, n
    assert cfg.mhc_streams == (1 if name == "model_plain_120m" else 4)


def test_plain_config_is_the_mhc_config_with_mhc_off():
    mhc, n_mhc = param_count("model_mhc_120m")
    plain, n_plain = param_count("model_plain_120m")
    assert dataclasses.replace(mhc, mhc_streams=1) == plain
    # the only extra parameters are the coefficient maps: phi, 3 alphas, biases, per sublayer
    n = mhc.mhc_streams
    assert n_mhc - n_plain == 2 * mhc.n_layers * (n * mhc.d_model * (n * n + 2 * n) + 3 + 2 * n + n * n)


@pytest.mark.parametrize("lever", sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "configs", "levers"))))
def test_shape_levers_keep_the_minis_parameter_count(lever):
    """A model-shape lever of the reading benchmark (configs/levers/) changes heads, depth or width
    at equal parameters (within 1%), so a difference in reading is the shape's, not the size's."""
    mini, n_mini = param_count("model_mhc_mini")
    shape, n = param_count(os.path.join("levers", lever))
    assert abs(n - n_mini) <= 0.01 * n_mini, (n, n_mini)
    assert (shape.n_heads, shape.n_layers, shape.d_model) != (mini.n_heads, mini.n_layers, mini.d_model)
    assert shape.d_model % shape.n_heads == 0 and (shape.d_model // shape.n_heads) % 2 == 0  # RoPE pairs
