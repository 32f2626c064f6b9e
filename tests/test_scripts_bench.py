"""scripts/bench_pretrain.py runs end to end against a stand-in for the nanoGPT checkout (the real
one is fetched by hand and never needed by the tests) and reports its ratios consistently."""
import json

from conftest import TINY_MODEL, run_script

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


def test_bench_pretrain_without_the_peer_says_how_to_get_it(tmp_path):
    proc = run_script("scripts/bench_pretrain.py", "--model", TINY_MODEL, "--nanogpt_dir", str(tmp_path / "none"),
                      check=False)
    assert proc.returncode == 2 and "git clone https://github.com/karpathy/nanoGPT" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
