"""scripts/bench_pretrain.py runs end to end against a stand-in for the nanoGPT checkout (the real
one is fetched by hand and never needed by the tests) and reports its ratios consistently; so does
scripts/bench_sampling.py, against a stand-in for transformers' GPT-2 (the optional `.[bench]` extra)."""
import importlib.util
import json
import os

import pytest

from conftest import ROOT, TINY_MODEL, run_script

# The interface bench_pretrain.py uses from nanoGPT's model.py: GPTConfig, GPT(config),
# GPT.configure_optimizers(weight_decay, learning_rate, betas, device_type), GPT(idx, targets).
STAND_IN_PEER = '''
from dataclasses import dataclass
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    block_size: int
    vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float
    bias: bool


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.mix = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, idx, targets):
        logits = F.linear(torch.tanh(self.mix(self.emb(idx))), self.emb.weight)
        return logits, F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        return torch.optim.AdamW(self.parameters(), lr=learning_rate, betas=betas, weight_decay=weight_decay)
'''


def test_bench_pretrain_reports_ratios_against_the_peer(tmp_path):
    peer = tmp_path / "nanoGPT"
    peer.mkdir()
    (peer / "model.py").write_text(STAND_IN_PEER)
    out = tmp_path / "bench.json"
    proc = run_script("scripts/bench_pretrain.py", "--model", TINY_MODEL, "--nanogpt_dir", str(peer), "--seq_len", "16",
                      "--batch", "2", "--rounds", "2", "--steps", "2", "--warmup", "1", "--device", "cpu",
                      "--out", str(out))
    assert "ours/nanoGPT tokens/s ratio" in proc.stdout
    res = json.loads(out.read_text())
    models = res["models"]
    assert set(models) == {"ours", "ours_plain", "nanogpt"}
    assert models["ours"]["params"] > models["ours_plain"]["params"]  # mHC adds its coefficient parameters
    tok_s = {k: v["tokens_per_s"] for k, v in models.items()}
    assert abs(res["ratio_ours_vs_nanogpt"] - tok_s["ours"] / tok_s["nanogpt"]) < 1e-9
    assert abs(res["mhc_step_overhead"] - (tok_s["ours_plain"] / tok_s["ours"] - 1)) < 1e-9
    assert len(res["ratio_ours_vs_nanogpt_per_round"]) == 2 and all(r > 0 for r in res["ratio_ours_vs_nanogpt_per_round"])


def test_bench_pretrain_without_a_peer_and_with_the_profiler(tmp_path):
    """`--nanogpt_dir none` measures ours with and without mHC; --profile_dir writes each model's
    top-operator table and a per-step count; MFU's FLOPs per token follow the one formula."""
    out, prof = tmp_path / "bench.json", tmp_path / "prof"
    proc = run_script("scripts/bench_pretrain.py", "--model", TINY_MODEL, "--nanogpt_dir", "none", "--seq_len", "16",
                      "--batch", "2", "--rounds", "1", "--steps", "1", "--warmup", "1", "--device", "cpu",
                      "--out", str(out), "--profile_dir", str(prof), "--profile_steps", "2", "--bf16_streams", "1")
    assert "no peer" in proc.stdout and "ratio" not in proc.stdout
    res = json.loads(out.read_text())
    assert set(res["models"]) == {"ours", "ours_plain", "ours_bf16_streams"} and "ratio_ours_vs_nanogpt" not in res
    cfg = json.loads(open(TINY_MODEL).read())
    for name, row in res["models"].items():
        assert row["flops_per_token"] == 6 * row["params"] + 12 * cfg["n_layers"] * cfg["d_model"] * 16
        summary = res["profile"][name]
        assert summary["unit"] == "operators" and summary["per_step"] > 10
        assert (prof / summary["table"]).is_file() and "Self CPU" in (prof / summary["table"]).read_text()
        assert len(summary["top"]) == 10 and all(t["self_ms"] >= 0 for t in summary["top"])
    # mHC's stream arithmetic dispatches more operators per step than the plain residual
    assert res["profile"]["ours"]["per_step"] > res["profile"]["ours_plain"]["per_step"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    bad = run_script("scripts/bench_pretrain.py", "--model", TINY_MODEL, "--nanogpt_dir", "none", "--profile_dir",
                     str(not_a_dir), check=False)
    assert bad.returncode == 2 and "is not a directory" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_pretrain_without_the_peer_says_how_to_get_it(tmp_path):
    proc = run_script("scripts/bench_pretrain.py", "--model", TINY_MODEL, "--nanogpt_dir", str(tmp_path / "none"),
                      check=False)
    assert proc.returncode == 2 and "git clone https://github.com/karpathy/nanoGPT" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bench_pretrain_on_a_fresh_clone_measures_ours_and_says_how_to_add_the_peer(tmp_path):
    """`make bench` on a clone without .bench/nanoGPT: the default (auto) measures our models, exits
    0 and prints the clone command that adds the peer."""
    if os.path.isfile(os.path.join(ROOT, ".bench", "nanoGPT", "model.py")):
        pytest.skip(".bench/nanoGPT is checked out here")
    out = tmp_path / "bench.json"
    proc = run_script("scripts/bench_pretrain.py", "--model", TINY_MODEL, "--seq_len", "16", "--batch", "2",
                      "--rounds", "1", "--steps", "1", "--warmup", "0", "--device", "cpu", "--out", str(out))
    assert "nanoGPT peer skipped" in proc.stdout
    assert "git clone https://github.com/karpathy/nanoGPT .bench/nanoGPT" in proc.stdout
    res = json.loads(out.read_text())
    assert set(res["models"]) == {"ours", "ours_plain"} and res["nanogpt_dir"] is None


# The interface bench_sampling.py uses from transformers (the optional `.[bench]` extra):
# GPT2Config(**sizes), GPT2LMHeadModel(config).to().eval(), .generate(ids, attention_mask=, do_sample=,
# max_new_tokens=, min_new_tokens=, num_return_sequences=, pad_token_id=) -> [rows, prompt + new] ids.
STAND_IN_TRANSFORMERS = '''
import torch
import torch.nn as nn


class GPT2Config:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.vocab_size, config.n_embd)

    def generate(self, input_ids, attention_mask, do_sample, max_new_tokens, min_new_tokens, num_return_sequences,
                 pad_token_id):
        ids = input_ids.repeat_interleave(num_return_sequences, dim=0)
        for _ in range(max_new_tokens):
            logits = self.emb(ids[:, -1]) @ self.emb.weight.t()
            ids = torch.cat([ids, torch.multinomial(logits.float().softmax(-1), 1)], dim=1)
        return ids
'''


def bench_sampling(tmp_path, env=None):
    out = tmp_path / "bench_sampling.json"
    proc = run_script("scripts/bench_sampling.py", "--model", TINY_MODEL, "--tasks", "2", "--rollouts", "2",
                      "--prompt_len", "6", "--max_new_tokens", "4", "--lora_rank", "2", "--repeats", "1",
                      "--naive_samples", "3", "--device", "cpu", "--out", str(out), env=env)
    return proc, json.loads(out.read_text())


def test_bench_sampling_reports_engine_ratios_measured_in_one_run(tmp_path):
    """Each ratio compares two samplers that differ in one thing: the engine (same mHC model), the
    architecture (mHC on / off, same engine), and our engine against HF's generate on the same
    architecture class (mHC off, without LoRA, which generate has no form of)."""
    peer = tmp_path / "peer"
    (peer / "transformers").mkdir(parents=True)
    (peer / "transformers" / "__init__.py").write_text(STAND_IN_TRANSFORMERS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(peer), os.environ.get("PYTHONPATH")])))
    proc, res = bench_sampling(tmp_path, env)
    for line in ("engine: fast / reference engine", "outputs identical: yes", "batching: fast engine / naive",
                 "architecture: mHC on / mHC off, both on our fast engine",
                 "engine vs peer: ours / HF GPT-2 generate, both mHC off"):
        assert line in proc.stdout, line
    assert "mixed" not in proc.stdout and "fast/HF" not in proc.stdout
    tok_s = {k: v["tokens_per_s"] for k, v in res["samplers"].items()}
    assert set(tok_s) == {"fast", "reference", "naive", "fast_plain", "fast_plain_bare", "hf_gpt2"}
    assert res["identical"] is True
    assert res["samplers"]["naive"]["tokens"] == 3 * 4 and res["samplers"]["fast"]["tokens"] == 2 * 2 * 4
    for ratio, (a, b) in {"fast_vs_reference": ("fast", "reference"), "batched_vs_naive": ("fast", "naive"),
                          "mhc_on_vs_off": ("fast", "fast_plain"),
                          "engine_vs_hf_gpt2": ("fast_plain_bare", "hf_gpt2")}.items():
        assert abs(res["ratios"][ratio] - tok_s[a] / tok_s[b]) < 1e-9, ratio
    assert set(res["ratios"]) == {"fast_vs_reference", "batched_vs_naive", "mhc_on_vs_off", "engine_vs_hf_gpt2"}


def test_bench_sampling_without_transformers_skips_the_peer(tmp_path):
    if importlib.util.find_spec("transformers") is not None:
        pytest.skip("transformers is installed here")
    proc, res = bench_sampling(tmp_path)
    assert "engine vs peer: skipped, transformers is not installed" in proc.stdout
    assert "architecture: mHC on / mHC off" in proc.stdout  # the mHC ratio needs no peer
    assert "hf_gpt2" not in res["samplers"] and "engine_vs_hf_gpt2" not in res["ratios"]
    assert "fast_plain_bare" not in res["samplers"] and "mhc_on_vs_off" in res["ratios"]
