import dataclasses
import random

import pytest
import torch

from conftest import TINY_MODEL
from discover_distill import prompts as suite_prompts
from discover_distill.config import load_model_config
from discover_distill.lora import LoRAConfig, inject_lora, lora_modules
from discover_distill.model import GPT
from discover_distill.sampling import _CACHES, _draw_race, generate, generate_naive, release_kv_caches, sample_next
from discover_distill.stops import StopChecker, build_stop_table, stop_table_for
from discover_distill.tokenizer import Tokenizer, train_tokenizer

EOS = 3


def model():
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=50, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=64)
    return GPT(cfg).eval()


def test_greedy_batched_cached_equals_naive_full_recompute():
    m = model()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]
    s = generate(m, prompts, [2, 1, 3], max_new_tokens=8, eos_id=EOS, temperature=0)
    assert s.tokens.shape == (6, 8) and s.prompt_index.tolist() == [0, 0, 1, 2, 2, 2]
    for row in range(6):
        p = prompts[s.prompt_index[row]]
        want = generate_naive(m, p, 1, max_new_tokens=8, eos_id=EOS, temperature=0)[0]
        got = [t for t, k in zip(s.tokens[row].tolist(), s.mask[row].tolist()) if k]
        assert got == want


def test_sampling_is_deterministic_under_a_seed_and_masks_after_eos():
    m = model()
    run = lambda seed: generate(m, [[5, 6, 7]], [16], max_new_tokens=12, eos_id=EOS,
                                generator=torch.Generator().manual_seed(seed))
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    for row in range(16):
        toks, mask = a.tokens[row].tolist(), a.mask[row].tolist()
        if EOS in toks:
            k = toks.index(EOS)
            assert all(mask[:k + 1]) and not any(mask[k + 1:])
    assert torch.all(a.logprobs[a.mask] <= 0) and torch.all(a.logprobs[~a.mask] == 0)


def test_stop_strings_end_rows():
    m = model()
    decode = lambda ids: "".join("|" if i == 7 else "x" for i in ids)
    s = generate(m, [[5, 6]], [32], max_new_tokens=10, eos_id=EOS, stop_strings=("||",), decode=decode,
                 generator=torch.Generator().manual_seed(0), temperature=3.0)
    for row in range(32):
        toks = [t for t, k in zip(s.tokens[row].tolist(), s.mask[row].tolist()) if k]
        text = decode(toks)
        if "||" in text:
            assert text.endswith("||") and s.finished[row]


def test_top_p_keeps_the_nucleus_only():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next(logits, 1.0, 0.7, g)[0]) for _ in range(300)}
    assert seen == {0, 1}


def test_rows_use_their_own_adapter():
    m = model()
    inject_lora(m, LoRAConfig(rank=2, alpha=4), n_adapters=2)
    for _, mod in m.named_modules():
        if hasattr(mod, "lora_B"):
            with torch.no_grad():
                mod.lora_B[1].normal_(0, 1.0)
    prompts = [[5, 6, 7], [5, 6, 7]]
    s = generate(m, prompts, [1, 1], max_new_tokens=6, eos_id=EOS, temperature=0, adapter_ids=[0, 1])
    plain = generate(m, prompts[:1], [1], max_new_tokens=6, eos_id=EOS, temperature=0, adapter_ids=[0])
    assert torch.equal(s.tokens[0], plain.tokens[0]) and not torch.equal(s.tokens[0], s.tokens[1])


# --- the fast engine against the reference loop --------------------------------------------------

SUITE_STOPS = suite_prompts.STOP_STRINGS  # ("||", "\n")


@pytest.fixture(scope="module")
def pipe_tok(tmp_path_factory):
    """A tokenizer whose pieces include "|", "||", "▁|" and "▁||" (the answer separator of the
    suite); a newline only as the byte piece <0x0A>."""
    d = tmp_path_factory.mktemp("pipe_tok")
    rng = random.Random(0)
    lines = []
    for _ in range(600):
        a = " ".join(str(rng.randrange(50)) for _ in range(rng.randint(2, 5)))
        lines.append(rng.choice([f"Q: sort {a} A: {a} || score 0.{rng.randrange(10)}", f"{a}||{a}", f"x | y {a} |"]))
    (d / "t.txt").write_text("\n".join(lines) + "\n")
    train_tokenizer(str(d / "t.txt"), str(d / "tok"), 300)
    tok = Tokenizer(str(d / "tok.model"))
    assert {"|", "||", "▁|", "▁||"} <= {tok.piece(i) for i in range(tok.vocab_size)}
    return tok


@pytest.fixture(scope="module")
def tiny_tok(tiny_data):
    """conftest's 320-piece tokenizer: "|" and a newline exist only as byte pieces."""
    return Tokenizer(tiny_data["tokenizer"])


@pytest.fixture(params=["pipe", "tiny"])
def tok(request, pipe_tok, tiny_tok):
    return pipe_tok if request.param == "pipe" else tiny_tok


class Biased(torch.nn.Module):
    """A model whose logits get a fixed bias, so that stop strings, EOS and long rows all occur."""

    def __init__(self, gpt, bias):
        super().__init__()
        self.gpt = gpt
        self.register_buffer("bias", bias)

    def new_kv_cache(self, *args, **kw):
        return self.gpt.new_kv_cache(*args, **kw)

    def forward(self, idx, **kw):
        logits, loss = self.gpt(idx, **kw)
        return logits + self.bias.to(logits.dtype), loss


def biased_model(tok, spare=8, adapters=2):
    """Tiny GPT over tok's pieces plus `spare` unused embedding rows, favouring "|" pieces, the newline
    and EOS; with `adapters` LoRA adapters whose B is random (so rows differ by adapter)."""
    torch.manual_seed(0)
    V = tok.vocab_size + spare
    cfg = dataclasses.replace(load_model_config(TINY_MODEL), vocab_size=V, d_model=32, n_layers=2, n_heads=2,
                              d_ff=64, max_seq_len=64)
    bias = torch.zeros(V)
    for i in range(tok.vocab_size):
        piece = tok.piece(i)
        if "|" in piece or piece == "<0x7C>":
            bias[i] = 3.0 if "|" in piece else 4.5
        elif piece == "<0x0A>":
            bias[i] = 3.5
    bias[tok.eos_id] = 3.0
    m = Biased(GPT(cfg), bias)
    if adapters:
        inject_lora(m, LoRAConfig(rank=2, alpha=4), n_adapters=adapters)
        g = torch.Generator().manual_seed(1)
        for _, mod in lora_modules(m):
            with torch.no_grad():
                mod.lora_B.normal_(0, 0.5, generator=g)
    return m.eval()


def assert_same_samples(a, b):
    """Identical samples. Log-probs to float rounding only: the fast engine decodes a shrinking
    batch (finished rows leave it), and a GEMM's rounding may depend on its row count."""
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.logprobs, b.logprobs, rtol=0, atol=1e-5)
    assert torch.equal(a.prompt_index, b.prompt_index)
    assert a.texts == b.texts and a.finished == b.finished


def outcomes(s, tok):
    """How each row ended: "||", "\\n", "eos" or "length"."""
    out = []
    for row in range(s.tokens.shape[0]):
        toks = [t for t, k in zip(s.tokens[row].tolist(), s.mask[row].tolist()) if k]
        if not s.finished[row]:
            out.append("length")
        elif toks[-1] == tok.eos_id:
            out.append("eos")
        else:
            out.append("||" if tok.decode(toks).endswith("||") else "\n")
    return out


RUN_KINDS = {
    # name: (generators for the 3 prompts -> list or single, temperature, top_p, adapters)
    "per_task_generators": (lambda: (lambda a, b: [a, b, a])(torch.Generator().manual_seed(5),
                                                             torch.Generator().manual_seed(6)), 1.0, 1.0, [0, 1, 0]),
    "one_generator_top_p": (lambda: torch.Generator().manual_seed(7), 1.0, 0.9, None),
    "global_rng": (lambda: None, 1.3, 1.0, [1, 1, 0]),
    "greedy": (lambda: None, 0.0, 1.0, [0, 1, 1]),
}


def _generators(gen):
    return [] if gen is None else [gen] if isinstance(gen, torch.Generator) else list({id(g): g for g in gen}.values())


def run_engine(m, tok, kind, engine, **kw):
    make_gen, temperature, top_p, adapters = RUN_KINDS[kind]
    gen = make_gen()
    prompts = [tok.encode("Q: sort 3 1 2 A:"), tok.encode("x | y"), tok.encode("alpha beta the")]
    results = []
    for _ in range(2):  # a second call from where the generators were left
        torch.manual_seed(11)  # the global RNG, for kind global_rng
        results.append(generate(m, prompts, [4, 3, 5], max_new_tokens=12, eos_id=tok.eos_id, pad_id=tok.pad_id,
                                temperature=temperature, top_p=top_p, stop_strings=SUITE_STOPS, decode=tok.decode,
                                generator=gen, adapter_ids=adapters, vocab_limit=tok.vocab_size, engine=engine, **kw))
    return results, [g.get_state() for g in _generators(gen)]


@pytest.mark.parametrize("kind", sorted(RUN_KINDS))
@pytest.mark.parametrize("sync_every", [1, 3])
def test_fast_engine_equals_reference_token_for_token(tok, kind, sync_every):
    """Tokens, masks, log-probs, texts, finished and the generators' final states are identical,
    also on a second call that continues from the generators' states; rows end by "||", "\\n",
    EOS and length. sync_every=3: `done` read every third step, generators rewound."""
    m = biased_model(tok)
    ref, ref_states = run_engine(m, tok, kind, "reference")
    fast, fast_states = run_engine(m, tok, kind, "fast", sync_every=sync_every)
    for a, b in zip(ref, fast):
        assert_same_samples(a, b)
    assert all(torch.equal(a, b) for a, b in zip(ref_states, fast_states))
    if kind == "per_task_generators":  # the workload of TTT: every way of ending occurs
        assert set(outcomes(ref[0], tok)) | set(outcomes(ref[1], tok)) == {"||", "\n", "eos", "length"}


def test_fast_engine_stops_without_a_tokenizer(tok):
    """A decode the engine cannot see into: the stop check stays on the host (exact); with
    piece_text the device tables are used; both equal the reference."""
    m = biased_model(tok, adapters=0)
    decode = lambda ids: "".join("|" if i % 7 == 0 else "x" for i in ids)  # noqa: E731
    kw = dict(max_new_tokens=10, eos_id=tok.eos_id, stop_strings=("||",), decode=decode, temperature=3.0)
    runs = [generate(m, [[5, 6], [9]], [8, 8], generator=torch.Generator().manual_seed(0), engine=engine, **extra, **kw)
            for engine, extra in (("reference", {}), ("fast", {}),
                                  ("fast", {"piece_text": lambda i: "|" if i % 7 == 0 else "x"}))]
    assert any(t.endswith("||") for t in runs[0].texts)
    for other in runs[1:]:
        assert_same_samples(runs[0], other)


SPECIAL_PIECES = ["▁", "|", "||", "▁|", "▁||", "<0x0A>", "<0x7C>", "<0x20>", "<0xC3>", "<0xA9>", "<0xE2>", "<0x96>",
                  "<0x81>", "<unk>", "<pad>", "<s>", "</s>", "a", "▁a", "e"]


@pytest.mark.parametrize("stops", [SUITE_STOPS, (" |", "a b", "||"), ("é", "||"), ("\n\n", "|\n|")])
def test_stop_checker_matches_decoding_every_prefix(tok, stops):
    """Random token sequences, heavy in the pieces that make decoding context-dependent (the
    leading "▁", control pieces, byte pieces that merge into one character, spare ids the
    tokenizer drops): the step each row first contains a stop string is the one found by decoding
    every prefix. Non-ASCII stops make multi-byte pieces ambiguous (host check for those rows)."""
    V = tok.vocab_size + 4
    table = stop_table_for(stops, V, tok.decode, device="cpu")
    assert table is not None and table.has_ambiguous == any(ord(c) > 127 for s in stops for c in s)
    special = [tok.sp.piece_to_id(p) for p in SPECIAL_PIECES if tok.sp.piece_to_id(p) != tok.unk_id or p == "<unk>"]
    rng = random.Random("|".join(stops))  # (str seeds are stable across runs)
    N, T = 400, 10
    seqs = torch.tensor([[rng.choice(special) if rng.random() < 0.7 else rng.randrange(V) for _ in range(T)]
                         for _ in range(N)])
    checker = StopChecker(stops, tok.decode, table, N, "cpu")
    done = torch.zeros(N, dtype=torch.bool)
    got = [None] * N
    for t in range(T):
        hit = checker.update(seqs[:, t], ~done, seqs[:, :t + 1])
        for i in hit.nonzero().flatten().tolist():
            got[i] = t
        done |= hit
    want = [next((t for t in range(T) if any(s in tok.decode(seqs[i, :t + 1].tolist()) for s in stops)), None)
            for i in range(N)]
    assert got == want
    assert len({w for w in want if w is not None}) >= 3 and None in want  # stops at many steps, and rows with none


def test_stop_tables_are_cached_and_exact_for_the_suite(tok):
    V = tok.vocab_size + 8
    a = stop_table_for(SUITE_STOPS, V, tok.decode, device="cpu")
    assert stop_table_for(SUITE_STOPS, V, tok.decode, device="cpu") is a  # once per (tokenizer, stops, V)
    assert not a.has_ambiguous  # the suite's stops never need the host check
    assert stop_table_for(SUITE_STOPS, V, lambda ids: "") is None  # an opaque decode: host check


def test_build_stop_table_finds_a_stop_split_across_tokens():
    pieces = ["", "|", "x|", "|x", "||", "\n", "ab"]
    table = build_stop_table(("||", "\n"), len(pieces), pieces.__getitem__)
    checker = StopChecker(("||", "\n"), lambda ids: "".join(pieces[i] for i in ids), table, 1, "cpu")
    live = torch.ones(1, dtype=torch.bool)
    steps = [checker.update(torch.tensor([v]), live, torch.tensor([[v]])).item() for v in (2, 0, 6, 2, 0, 1)]
    assert steps == [False, False, False, False, False, True]  # "x|" "" "ab" "x|" "" "|": the last "|" closes "||"


def test_kv_caches_are_reused_for_the_same_shape_only(tok):
    m = biased_model(tok, adapters=0)
    kw = dict(max_new_tokens=6, eos_id=tok.eos_id, generator=None, temperature=0)
    first = generate(m, [[5, 6, 7]], [3], **kw)
    caches = _CACHES[m]
    again = generate(m, [[5, 6, 7]], [3], **kw)
    assert _CACHES[m] is caches
    fresh = generate(m, [[5, 6, 7]], [3], reuse_cache=False, **kw)
    assert_same_samples(first, again)
    assert_same_samples(first, fresh)
    generate(m, [[5, 6, 7], [8]], [3, 1], **kw)
    assert _CACHES[m] is not caches and _CACHES[m][0][:2] == (2, 4)
    release_kv_caches(m)
    assert m not in _CACHES


def test_draw_race_is_multinomial():
    """The fast engine's draw: the same ids and the same generator advance as torch.multinomial."""
    for seed in range(50):
        g = torch.Generator().manual_seed(seed)
        p = torch.softmax(torch.randn(1 + seed % 7, 3 + seed, generator=g) * 3, dim=-1)
        g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        assert torch.equal(torch.multinomial(p, 1, generator=g1).squeeze(1), _draw_race(p, g2))
        assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_invalid_probabilities_raise(engine):
    m = Biased(model(), torch.zeros(50))
    m.bias[7] = float("nan")
    with pytest.raises(RuntimeError, match="probability tensor"):
        generate(m, [[5, 6]], [2], max_new_tokens=4, eos_id=EOS, generator=torch.Generator().manual_seed(0),
                 engine=engine)


def test_finished_rows_leave_the_decode_batch(tok):
    """The fast engine decodes only rows still running once a quarter of the batch has ended,
    and its samples stay those of the reference engine (which decodes every row every step)."""
    m = biased_model(tok)
    sizes = []
    hook = m.register_forward_pre_hook(lambda mod, args: sizes.append(args[0].shape[0]))
    try:
        (fast, _), _ = run_engine(m, tok, "per_task_generators", "fast", sync_every=1)
    finally:
        hook.remove()
    (ref, _), _ = run_engine(m, tok, "per_task_generators", "reference")
    assert_same_samples(ref, fast)
    first_call = sizes[:sizes.index(3, 1)]  # run_engine samples twice; each call starts with a 3-prompt prefill
    decode_sizes = first_call[1:]
    live_after = ref.mask.sum(0).tolist()[1:]  # rows still running at each later step
    assert min(decode_sizes) < 12  # rows did leave the batch
    assert all(n >= live for n, live in zip(decode_sizes, live_after))  # but never a live one
