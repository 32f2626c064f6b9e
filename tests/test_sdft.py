import pytest
import torch

from discover_distill.sdft import ema_update, skip_mask, token_kl


def test_kl_zero_when_distributions_agree():
    logits = torch.randn(2, 3, 11)
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert token_kl(logits, logits.clone(), mask).abs().item() < 1e-6
    assert token_kl(logits, logits + 5.0, mask, kl="reverse").abs().item() < 1e-5  # shift-invariant


def test_kl_hand_computed_and_masked():
    s = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    t = torch.log(torch.tensor([[[0.25, 0.75], [0.1, 0.9]]]))
    fwd = 0.25 * torch.log(torch.tensor(0.5)) + 0.75 * torch.log(torch.tensor(1.5))
    got = token_kl(s, t, torch.tensor([[True, False]]))
    assert got.item() == pytest.approx(fwd.item(), abs=1e-6)
    rev = 0.5 * torch.log(torch.tensor(2.0)) + 0.5 * torch.log(torch.tensor(0.5 / 0.75))
    assert token_kl(s, t, torch.tensor([[True, False]]), kl="reverse").item() == pytest.approx(rev.item(), abs=1e-6)


def test_gradient_reaches_student_only():
    s = torch.randn(1, 4, 7, requires_grad=True)
    t = torch.randn(1, 4, 7, requires_grad=True)
    token_kl(s, t, torch.ones(1, 4, dtype=torch.bool)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_ema_and_skip_mask():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.25)
    assert torch.allclose(a.weight, 0.75 * before + 0.25 * b.weight)
    m = torch.tensor([[True, True, True, True, False], [True, True, False, False, False]])
    assert skip_mask(m, 1).tolist() == [[False, True, True, True, False], [False, True, False, False, False]]
    with pytest.raises(ValueError):
        token_kl(torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), torch.ones(1, 1, dtype=torch.bool), kl="sideways")


class CharTok:
    """Character-level stand-in for the tokenizer: pad 0, eos 3, one id per character."""
    pad_id, eos_id = 0, 3
    chars = " 0123456789|scoreQA:.x"
    vocab_size = 4 + len(chars)

    def encode(self, text):
        return [4 + self.chars.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.chars[i - 4] for i in ids if i >= 4)


class ScriptedLM(torch.nn.Module):
    """Emits `script` token by token whatever the prompt (generate's cached-decoding interface)."""

    def __init__(self, script, vocab=32):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.script, self.vocab, self.k = script, vocab, 0

    def new_kv_cache(self, batch_size, max_len=None, device=None, dtype=None):
        class Cache:
            def select(self, rows):
                return self
        return Cache()

    def forward(self, idx, targets=None, kv_cache=None, pos=0, positions=None, key_mask=None):
        if pos == 0:
            self.k = 0
        logits = torch.full((*idx.shape, self.vocab), -1e4)
        logits[:, -1, self.script[min(self.k, len(self.script) - 1)]] = 1e4
        self.k += 1
        return logits, None


def test_student_answers_stop_at_the_suites_stop_strings():
    """The answer ends at (and includes) the token completing `||`: the `score ...` after it is never
    trained on (Samples.mask convention); an EOS ends it the same way, EOS included."""
    from discover_distill.sdft import answer_logits, student_answers
    tok = CharTok()
    prompt = [tok.eos_id] + tok.encode("Q: x A:")
    g = torch.Generator().manual_seed(0)
    scored = ScriptedLM(tok.encode("1 3 5 || score 0.50") + [tok.eos_id])
    got = student_answers(scored, tok, [prompt, prompt], max_new_tokens=30, generator=g)
    assert got == [tok.encode("1 3 5 ||")] * 2
    eos = ScriptedLM(tok.encode("2 4") + [tok.eos_id] + tok.encode("99"))
    assert student_answers(eos, tok, [prompt], max_new_tokens=30, generator=g) == [tok.encode("2 4") + [tok.eos_id]]
    # the loss mask covers exactly those tokens, the first answer token included (--skip_tokens 0)
    _, mask = answer_logits(scored, [prompt, prompt[:3]], [got[0], got[0][:2]])
    assert mask.sum(1).tolist() == [len(got[0]), 2] and skip_mask(mask, 0)[:, 0].all()
